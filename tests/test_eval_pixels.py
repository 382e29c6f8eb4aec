"""Motion judged from pixels (vasa_lib.eval.pixels) and the FVD analogue's video network
(vasa_lib.eval.video_features)."""

import json

import pytest
import torch

from vasa_lib import paths
from vasa_lib.checkpoint import load_checkpoint, read_checkpoint
from vasa_lib.eval.motion import load_evaluators
from vasa_lib.eval.pixels import PIXEL_KEYS, frames_of, load_reader, read_metrics, reader_ceiling
from vasa_lib.eval.reader import renders
from vasa_lib.eval.video_features import (
    WINDOW,
    VideoFeatureConfig,
    VideoFeatureNet,
    frechet_video_distance,
    video_features,
    video_windows,
)
from vasa_lib.eval.video_features import main as video_features_main
from vasa_lib.face.model import FaceModel
from vasa_lib.motion.latents import WORLD, load_latents
from vasa_lib.train import main as train_main

TINY = VideoFeatureConfig(size=32, widths=(8, 16), dim=16, feature_dim=4, render_size=32)


@pytest.fixture(scope="module")
def world():
    return load_latents("test", 2, WORLD)


def test_video_windows_and_features():
    torch.manual_seed(0)
    net = VideoFeatureNet(TINY).eval()
    video = torch.rand(60, 3, 32, 32)
    assert video_windows(video).shape == (3, WINDOW, 3, 32, 32)          # starts 0, 12, 24
    assert video_windows(video[:20]).shape == (0, WINDOW, 3, 32, 32)
    assert video_features(net, [video, video[:30]]).shape == (4, 12)
    params, logits = net(video[None, :WINDOW])
    assert params.shape == (1, WINDOW, 17) and logits.shape == (1, 5)
    with pytest.raises(ValueError, match="clips"):
        net(video)


def test_fvd_is_zero_against_itself_and_sees_shuffled_frames():
    torch.manual_seed(0)
    net = VideoFeatureNet(TINY).eval()
    videos = [torch.rand(1, 3, 1, 1).expand(50, 3, 32, 32) * torch.linspace(0, 1, 50)[:, None, None, None]
              + 0.05 * torch.rand(50, 3, 32, 32) for _ in range(6)]
    shuffled = [v[torch.randperm(50)] for v in videos]
    same = frechet_video_distance(net, videos, videos)
    assert abs(same) < 1e-6
    assert frechet_video_distance(net, shuffled, videos) > 1e-4


def test_frames_of_renders_and_decodes(world):
    motion = world.split("motion")[0][:10]
    rendered = frames_of(motion, world, 0, framing="wide", size=64)
    assert torch.equal(rendered, renders(world.identity_id[0].repeat(10), motion, 64, "wide"))
    face = load_checkpoint(paths.checkpoint("face"), FaceModel)
    truth = load_latents("test", 1, paths.checkpoint("face")).motion[:10]
    decoded = frames_of(truth, world, 0, face)
    assert decoded.shape == (10, 3, face.config.size, face.config.size)
    assert decoded.min() >= 0 and decoded.max() <= 1


def test_read_metrics_on_the_truth(world):
    """The portrait reader reads the world's truth back: its jaw follows the audio's true jaw, and
    the truth's read gaze and distance lie near the controls."""
    reader, ev = load_reader("portrait"), load_evaluators(WORLD)[0]
    ceiling = reader_ceiling(world, "portrait", reader, ev)
    assert set(ceiling) == set(PIXEL_KEYS)
    assert ceiling["lip_sync_corr"] > 0.8
    assert ceiling["distance_err"] < 0.05
    # a face that never moves its mouth: the jaw read from its pixels follows nothing
    still = world.split("motion")[0].clone()
    still[:, 6:] = still[:, 6:].mean(0)
    frozen = read_metrics(frames_of(still, world, 0), world, 0, reader, ev)
    assert frozen["lip_sync_corr"] < ceiling["lip_sync_corr"] - 0.3


def test_train_video_cli_writes_a_checkpoint_and_card(tmp_path, capsys):
    config = tmp_path / "video.toml"
    config.write_text(f"""[model]\nsize = 32\nwidths = [8, 16]\ndim = 16\nfeature_dim = 4\nrender_size = 32\n
[train]\nsteps = 2\nbatch = 2\nn_clips = 2\ngrade_clips = 2\nthreads = 1
checkpoint = "{tmp_path / 'video.safetensors'}"\n""")
    train_main(["video", "--config", str(config)])
    net = load_checkpoint(tmp_path / "video.safetensors", VideoFeatureNet)
    assert net.config.widths == (8, 16)
    grade = read_checkpoint(tmp_path / "video.safetensors")[1]["info"]["grade"]
    assert {"r2_mouth", "emotion_acc", "fvd_truth", "fvd_shuffled_frames", "fvd_blurred"} <= set(grade)
    assert "python -m vasa_lib.train video" in (tmp_path / "video.md").read_text()
    video_features_main(["--checkpoint", str(tmp_path / "video.safetensors"), "--clips", "2", "--threads", "1",
                         "--json"])
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["fvd_truth"] == grade["fvd_truth"]
