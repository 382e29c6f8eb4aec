"""The pipeline (VASA-1 Sec. 3.3 / 4): streaming equals offline, memory stays flat, every bad
input gets its message, videos carry the label, and the command line exits 2 on bad input.

Mechanics are tested with tiny random models (fast); the shipped face checkpoint is used where
the question is about it (can it read a portrait?)."""

import os
from pathlib import Path

import matplotlib.cbook as cbook
import numpy as np
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from vasa_lib import paths
from vasa_lib.checkpoint import save_checkpoint
from vasa_lib.face.identity_net import IdentityNet, IdentityNetConfig
from vasa_lib.face.model import FaceConfig, FaceModel
from vasa_lib.generate import main as generate_main
from vasa_lib.motion.generate import window_bounds
from vasa_lib.motion.guidance import GUIDANCE_SCALES, PAPER_SCALES
from vasa_lib.motion.model import MotionGenerator, MotionGeneratorConfig
from vasa_lib.pipeline import (
    LABEL_TEXT,
    Settings,
    Talker,
    label_mask,
    load_image,
    load_speech,
    read_audio,
    receptive_radius,
)
from vasa_lib.video import read_video
from vasa_lib.world.params import SAMPLE_RATE

PORTRAIT = paths.portraits_dir() / "test_10100.png"


def tiny_models(seed: int = 0) -> tuple[FaceModel, MotionGenerator, IdentityNet]:
    """Random face model (32 x 32), motion generator (window 8, context 3) and identity network."""
    torch.manual_seed(seed)
    face = FaceModel(FaceConfig(size=32, app_width=8, app_blocks=1, volume_channels=4, volume_depth=4,
                                canonical_blocks=1, motion_width=8, id_dim=8, dyn_dim=8, warp_channels=8,
                                features=16, generator_blocks=1))
    motion = MotionGenerator(MotionGeneratorConfig(
        motion={"motion_dim": 14, "audio_dim": 16, "window": 8, "context": 3, "width": 32, "depth": 2, "heads": 2},
        audio={"dim": 16, "layers": 2, "kernel_size": 5}))
    for p in motion.transformer.parameters():       # adaLN-Zero starts at zero output: randomise all
        nn.init.normal_(p, std=0.2)
    return face, motion, IdentityNet(IdentityNetConfig(input_size=16, widths=(8, 8), embed_dim=8))


def tiny_talker(**kwargs) -> Talker:
    """A Talker on tiny random models that accepts any portrait."""
    return Talker(*tiny_models(), min_psnr=-np.inf, min_identity_similarity=-np.inf, **kwargs)


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like noise: (N,) float32 with a syllable-rate envelope."""
    n = int(seconds * SAMPLE_RATE)
    rng = np.random.default_rng(seed)
    envelope = 0.5 + 0.5 * np.sin(np.arange(n) * 2 * np.pi * 4 / SAMPLE_RATE)
    return (0.3 * envelope * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def talker() -> Talker:
    return tiny_talker()


@pytest.mark.parametrize("seconds, first_window", [(0.3, None), (2.0, None), (3.37, None), (2.0, 3), (0.1, 3)])
def test_streaming_equals_offline(talker, seconds, first_window):
    """Same seed, same motion: whole clip at once, streamed whole, or streamed in 1000-sample chunks."""
    audio, settings = speech(seconds), Settings(steps=4, seed=7, emotion="happy", first_window=first_window)
    offline = talker.motion_offline(audio, settings)
    assert offline.shape == (int(np.ceil(len(audio) / 640)), 14)
    streamed = torch.cat(list(talker.motion_stream(audio, settings)))
    chunked = torch.cat(list(talker.motion_stream((audio[i:i + 1000] for i in range(0, len(audio), 1000)), settings)))
    assert_close(streamed, offline, atol=1e-4, rtol=1e-4)
    assert_close(chunked, offline, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(offline, talker.motion_offline(audio, Settings(steps=4, seed=8)))


def test_stream_waits_only_for_its_lookahead(talker):
    """A window is yielded as soon as the audio of its frames plus M = radius + 1 frames has arrived."""
    w, m = talker.motion.transformer.config.window, receptive_radius(talker.motion.audio_encoder) + 1
    audio = speech(3.0)
    ready = (w + m) * 640
    chunks = [audio[:ready - 1], audio[ready - 1:ready], audio[ready:]]
    stream = talker.motion_stream(iter(chunks), Settings(steps=2))
    first = next(stream)                                       # needs chunks 0 and 1 only
    assert first.shape == (w, 14)
    short = 3                                                  # a short first window needs less audio
    stream = talker.motion_stream(iter([audio[:(short + m) * 640], audio[(short + m) * 640:]]),
                                  Settings(steps=2, first_window=short))
    assert next(stream).shape == (short, 14) and next(stream).shape == (w, 14)


def test_settings_without_scales_use_the_checkpoints_own():
    """Settings(scales=None), the default, samples with the motion checkpoint's stored scales."""
    talker = tiny_talker()
    talker.motion.config.scales = dict(PAPER_SCALES)
    audio = speech(1.1)
    own = talker.motion_offline(audio, Settings(steps=2))
    assert torch.equal(own, talker.motion_offline(audio, Settings(steps=2, scales=PAPER_SCALES)))
    assert not torch.allclose(own, talker.motion_offline(audio, Settings(steps=2, scales=GUIDANCE_SCALES)))
    assert_close(torch.cat(list(talker.motion_stream(audio, Settings(steps=2)))), own, atol=1e-4, rtol=1e-4)


def test_window_bounds():
    assert window_bounds(60, 25) == [(0, 25), (25, 50), (50, 75)]
    assert window_bounds(60, 25, 4) == [(0, 4), (4, 29), (29, 54), (54, 79)]
    assert window_bounds(3, 25, 4) == [(0, 4)]
    with pytest.raises(ValueError, match="first_window"):
        window_bounds(60, 25, 26)


def test_frames_video_and_label(talker, tmp_path):
    audio = speech(1.1)
    out = talker.generate(PORTRAIT, audio, Settings(steps=2))
    assert out.frames.shape == (28, 3, 32, 32) and out.motion.shape == (28, 14)
    assert {"portrait", "audio_features", "diffusion", "decoding"} <= set(out.timings)
    unlabelled = Talker(*tiny_models(), label=False, min_psnr=-np.inf, min_identity_similarity=-np.inf)
    plain = unlabelled.generate(PORTRAIT, audio, Settings(steps=2)).frames
    mask = label_mask(32)[0] > 0
    assert (out.frames - plain).abs().amax(dim=(0, 1))[mask].mean() > 0.1        # the mark is visible ...
    assert_close(out.frames[..., ~mask], plain[..., ~mask])                      # ... and only there
    path = talker.write(tmp_path / "clip.mp4", PORTRAIT, audio, Settings(steps=2), streaming=True)
    frames, sound, info = read_video(path)
    assert frames.shape[0] == 28 and abs(len(sound) - len(audio)) < 2048
    assert info["metadata"]["title"] == LABEL_TEXT and "AI-generated" in info["metadata"]["comment"]
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]                  # no temporary files left


def test_intensity_scales_head_motion_only(talker):
    audio, s = speech(1.0), Settings(steps=2)
    base = talker.motion_offline(audio, s)
    still = talker.motion_offline(audio, Settings(steps=2, intensity=0.0))
    assert_close(still[:, :5], talker.motion.transformer.motion_mean[:5].expand(len(still), 5))
    assert_close(still[:, 5:], base[:, 5:])


def test_long_audio_streams_in_bounded_memory(talker):
    """60 s of audio in 0.1 s chunks: the kept audio never exceeds one window plus look-ahead and
    context, and the process does not grow while frames are produced."""
    def rss_mb() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    audio = speech(60.0)
    chunks = (audio[i:i + 1600] for i in range(0, len(audio), 1600))
    n, rss = 0, []
    for chunk in talker.stream(PORTRAIT, chunks, Settings(steps=1)):
        n += len(chunk.frames)
        rss.append(rss_mb())
    assert n == 1500
    assert max(rss[len(rss) // 2:]) - max(rss[: len(rss) // 4]) < 30, "memory grows with the audio's length"


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("image, message", [
    ("nonexistent.png", "no image file"),
    (__file__, "is not an image"),
    (np.zeros((4, 4)), "must be (H, W, 3)"),
    (torch.full((3, 32, 32), float("nan")), "NaN"),
    (torch.full((3, 32, 32), 2.0), "must lie in [0, 1]"),
    ([1, 2, 3], "not an image"),
])
def test_bad_images(image, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_image(image, 32)


@pytest.mark.parametrize("audio, message", [
    (np.zeros(0, np.float32), "empty"),
    (np.zeros(16000, np.float32), "silent"),
    (np.full(16000, np.nan, np.float32), "NaN"),
    (np.zeros(16000, np.int16), "must be float"),
    (np.zeros((2, 16000), np.float32), "mono"),
    (speech(3.0), "over the limit of 2 s"),
])
def test_bad_audio(audio, message):
    with pytest.raises(ValueError, match=message):
        load_speech(audio, max_seconds=2.0)


def test_bad_audio_files_and_text(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 10)
    with pytest.raises(ValueError, match="cannot read audio"):
        read_audio(junk)
    with pytest.raises(ValueError, match="no audio file"):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="text is empty"):
        load_speech(text="   ")
    with pytest.raises(ValueError, match="either audio"):
        load_speech()


def test_audio_files_are_resampled(tmp_path):
    import soundfile as sf

    t = np.arange(44100) / 44100
    sf.write(tmp_path / "a.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100)
    audio = read_audio(tmp_path / "a.wav")
    assert abs(len(audio) - SAMPLE_RATE) < 200 and 0.4 < np.abs(audio).max() < 0.6


@pytest.mark.parametrize("settings, message", [
    (Settings(gaze=(2.0, 0.0)), "gaze theta"),
    (Settings(gaze=(0.0, float("nan"))), "gaze phi"),
    (Settings(distance=0.0), "distance"),
    (Settings(intensity=-1), "intensity"),
    (Settings(emotion="furious"), "unknown emotion"),
    (Settings(scales={"voice": 1.0}), "unknown conditions"),
    (Settings(scales={"audio": -1.0}), "guidance scale"),
    (Settings(steps=0), "steps"),
    (Settings(steps=2.5), "steps"),
    (Settings(seed=-3), "seed"),
    (Settings(first_window=0), "first_window"),
    (Settings(first_window=100), "first_window"),
])
def test_bad_settings(talker, settings, message):
    with pytest.raises(ValueError, match=message):
        talker.motion_offline(speech(0.5), settings)


@pytest.fixture(scope="module")
def shipped_face_talker() -> Talker:
    """The shipped face model and identity network with a tiny random motion generator that fits them."""
    from vasa_lib.checkpoint import load_checkpoint

    face = load_checkpoint(paths.checkpoint("face"), FaceModel)
    motion = MotionGenerator(MotionGeneratorConfig(
        motion={"motion_dim": 6 + face.config.dyn_dim, "audio_dim": 16, "window": 8, "context": 3, "width": 32,
                "depth": 1, "heads": 2}, audio={"dim": 16, "layers": 1}))
    return Talker(face, motion, load_checkpoint(paths.checkpoint("identity_net"), IdentityNet))


def test_unreadable_portrait_is_flagged(shipped_face_talker):
    """The shipped face model reads a held-out world portrait; noise, a real photo and a blank image are
    refused with the reason."""
    good = shipped_face_talker.portrait(PORTRAIT)
    assert good.problem is None, good.problem
    noise = torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="cannot read this portrait.*real talking-face video"):
        shipped_face_talker.portrait(noise)
    assert shipped_face_talker.portrait(noise, strict=False).problem
    photo = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)       # a real photo, shipped with matplotlib
    with pytest.raises(ValueError, match="reconstructs it poorly"):
        shipped_face_talker.portrait(photo)
    with pytest.raises(ValueError, match="almost uniform"):
        shipped_face_talker.portrait(torch.full((3, 128, 128), 0.5))


# ----------------------------------------------------------------------------- command line

@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    """A checkpoint folder with the tiny models."""
    folder = tmp_path_factory.mktemp("checkpoints")
    for model, name in zip(tiny_models(), ("face", "motion", "identity_net")):
        save_checkpoint(model, folder / f"{name}.safetensors")
    return folder


def test_cli_writes_a_video(checkpoints, tmp_path, capsys):
    import soundfile as sf

    sf.write(tmp_path / "speech.wav", speech(1.0), SAMPLE_RATE)
    out = tmp_path / "out.mp4"
    code = generate_main(["--image", str(PORTRAIT), "--audio", str(tmp_path / "speech.wav"), "--out", str(out),
                          "--steps", "2", "--checkpoints", str(checkpoints), "--force", "--stream"])
    assert code == 0
    assert f"wrote {out}" in capsys.readouterr().out
    frames, sound, info = read_video(out)
    assert len(frames) == 25 and abs(len(sound) - SAMPLE_RATE) < 2048


@pytest.mark.parametrize("args, message", [
    (["--image", "missing.png", "--text", "Hi"], "no image file"),
    (["--image", __file__, "--text", "Hi"], "is not an image"),
    (["--image", str(PORTRAIT), "--text", "  "], "text is empty"),
    (["--image", str(PORTRAIT), "--audio", __file__], "cannot read audio"),
    (["--image", str(PORTRAIT), "--text", "Hi", "--distance", "-1"], "distance"),
    (["--image", str(PORTRAIT), "--text", "Hi", "--steps", "0"], "steps"),
    (["--image", str(PORTRAIT), "--text", "Hello there, this is long.", "--max-seconds", "0.5"], "over the limit"),
])
def test_cli_bad_input_exits_2(checkpoints, tmp_path, capsys, args, message):
    out = tmp_path / "out.mp4"
    code = generate_main([*args, "--out", str(out), "--checkpoints", str(checkpoints), "--force"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
