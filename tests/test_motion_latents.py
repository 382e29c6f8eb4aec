"""Motion latents from video (VASA-1 Sec. 3.2 data): extraction, the on-disk cache, training
windows, and the `motion` training command on a tiny config."""

import pytest
import torch
from torch.testing import assert_close

import vasa_lib.motion.latents as lat
from vasa_lib.checkpoint import load_checkpoint, save_checkpoint
from vasa_lib.face.model import FaceConfig, FaceModel
from vasa_lib.motion.generate import Controls
from vasa_lib.motion.latents import LatentSet, encode_clips, load_latents, subset
from vasa_lib.motion.model import MotionGenerator
from vasa_lib.motion.windows import MotionWindows
from vasa_lib.train import main as train_main
from vasa_lib.world.clips import make_clip
from vasa_lib.world.params import EMOTIONS

TINY_FACE = FaceConfig(size=32, app_width=8, app_blocks=1, volume_channels=4, volume_depth=2, canonical_blocks=1,
                       motion_width=8, id_dim=8, dyn_dim=4, warp_channels=4, features=8, generator_blocks=1)


@pytest.fixture(scope="module")
def face_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(FaceModel(TINY_FACE), tmp_path_factory.mktemp("face") / "face.safetensors")


def test_encode_clips_shapes(face_checkpoint):
    face = load_checkpoint(face_checkpoint, FaceModel)
    clips = [make_clip(i, "train") for i in range(2)]
    latents = encode_clips(face, clips, batch_size=16)
    frames = sum(c.n_frames for c in clips)
    assert len(latents) == 2 and latents.lengths() == [c.n_frames for c in clips]
    assert latents.motion.shape == (frames, 6 + 4) and latents.mel.shape == (frames, 320)
    assert latents.true_pose.shape == (frames, 6) and latents.true_dynamics.shape == (frames, 11)
    assert latents.gaze.shape == (2, 2) and latents.distance.shape == (2, 1)
    assert latents.emotion.tolist() == [EMOTIONS.index(c.emotion) for c in clips]
    # the first frame's latent is the face encoder's output for the rendered first frame
    from vasa_lib.world.clips import render_clip
    pose, dyn = face.encode_motion(render_clip(clips[1], size=32, stop=1))
    assert_close(latents.split("motion")[1][0], torch.cat([pose, dyn], -1)[0])
    mean, std = latents.stats()
    assert mean.shape == std.shape == (10,)


def test_cache_round_trip_and_slicing(face_checkpoint, tmp_path, monkeypatch):
    first = load_latents("val", 3, face_checkpoint, cache_dir=tmp_path)
    files = list((tmp_path / "motion_latents").glob("*.safetensors"))
    key = lat.file_hash(face_checkpoint) + lat.source_hash(*lat.LATENT_CODE)     # the face model and the code
    assert [f.name for f in files] == [f"{key}-val-0-3.safetensors"]

    def no_encoding(*args, **kwargs):
        raise AssertionError("should come from the cache")

    monkeypatch.setattr(lat, "encode_clips", no_encoding)
    again = load_latents("val", 3, face_checkpoint, cache_dir=tmp_path)
    for name in ("motion", "mel", "true_pose", "offsets", "gaze", "distance", "emotion", "test_voice"):
        assert_close(getattr(again, name), getattr(first, name))
    two = load_latents("val", 2, face_checkpoint, cache_dir=tmp_path)          # sliced from the 3-clip file
    assert len(two) == 2
    assert_close(two.motion, subset(first, [0, 1]).motion)
    assert_close(two.offsets, first.offsets[:3])
    files[0].write_bytes(b"broken")
    with pytest.raises(ValueError, match="not a readable latent set"):
        LatentSet.load(files[0])
    with pytest.raises(ValueError, match="count"):
        load_latents("val", 0, face_checkpoint, cache_dir=tmp_path)


def test_latents_of_other_code_are_not_read(face_checkpoint, tmp_path, monkeypatch):
    load_latents("val", 1, face_checkpoint, cache_dir=tmp_path)
    encoded, encode = [], lat.encode_clips
    monkeypatch.setattr(lat, "encode_clips", lambda *args, **kwargs: encoded.append(1) or encode(*args, **kwargs))
    load_latents("val", 1, face_checkpoint, cache_dir=tmp_path)                 # same code: from the cache
    monkeypatch.setattr(lat, "source_hash", lambda *modules: "othercode123")    # as if the world's code changed
    load_latents("val", 1, face_checkpoint, cache_dir=tmp_path)
    assert encoded == [1]


def test_windows_of_latents(face_checkpoint, tmp_path):
    latents = load_latents("val", 2, face_checkpoint, cache_dir=tmp_path)
    windows = MotionWindows.from_latents(latents, length=30, windows_per_clip=4, fixed=True)
    item = windows[5]
    assert len(windows) == 8
    assert item["motion"].shape == (30, 10) and item["audio"].shape == (30, 320)
    assert item["gaze"].shape == (2,) and item["distance"].shape == (1,) and item["emotion"].ndim == 0
    assert_close(windows[5]["motion"], item["motion"])                          # fixed windows repeat
    with pytest.raises(ValueError, match="same number of frames"):
        MotionWindows([torch.zeros(5, 3)], [torch.zeros(4, 320)], [{}], length=4)


def tiny_motion_config(tmp_path, face_checkpoint, name: str, audio: str = "", train: str = ""):
    """A motion config at toy scale on the latents of `face_checkpoint` (or lat.WORLD), writing
    tmp_path/{name}.safetensors; `audio` and `train`: more lines for those tables."""
    config = tmp_path / f"{name}_tiny.toml"
    config.write_text(f"""
[model]
window = 8
context = 3
width = 16
depth = 1
heads = 2
[audio]
dim = 16
layers = 1
kernel_size = 3
{audio}
[data]
face_checkpoint = "{face_checkpoint}"
cache_dir = "{tmp_path}"
n_train = 2
n_val = 1
windows_per_clip = 4
batch_size = 4
[train]
lr = 0.001
max_steps = 3
max_minutes = 1.0
checkpoint = "{tmp_path / (name + '.safetensors')}"
run_dir = "{tmp_path / 'runs'}"
threads = 1
{train}
""")
    return config


def test_train_motion_cli_on_a_tiny_config(face_checkpoint, tmp_path):
    train_main(["motion", "--config", str(tiny_motion_config(tmp_path, face_checkpoint, "motion"))])
    model = load_checkpoint(tmp_path / "motion.safetensors", MotionGenerator)
    assert model.motion_dim == 10 and model.diffusion
    assert (tmp_path / "motion.md").read_text().startswith("# Motion generator, diffusion transformer")
    stats = load_latents("train", 2, face_checkpoint, cache_dir=tmp_path).stats()
    assert_close(model.transformer.motion_mean, stats[0])                      # normalisation of the latents
    motion = model.generate(0.1 * torch.randn(16_000), Controls(emotion="sad"), steps=2)
    assert motion.shape == (25, 10) and torch.isfinite(motion).all()


def test_world_space_is_the_clips_own_parameters(tmp_path):
    """face_checkpoint = WORLD: the motion is each frame's [pose, dynamics], no face model involved."""
    latents = load_latents("train", 2, lat.WORLD, cache_dir=tmp_path)
    assert latents.info["face_hash"] == lat.WORLD and latents.motion.shape[1] == 17
    assert_close(latents.motion, torch.cat([latents.true_pose, latents.true_dynamics], -1))
    assert_close(load_latents("train", 1, lat.WORLD, cache_dir=tmp_path).motion,       # the cached set, sliced
                 latents.motion[: latents.lengths()[0]])
    assert lat.motion_space("world") == lat.WORLD and lat.space_key(lat.WORLD) == lat.WORLD


def test_many_voices_are_a_set_of_their_own(tmp_path):
    """voices="many": the same clips spoken by other voices, cached apart from the world's own."""
    world = load_latents("train", 2, lat.WORLD, cache_dir=tmp_path)
    many = load_latents("train", 2, lat.WORLD, cache_dir=tmp_path, voices="many")
    assert many.info["voices"] == "many" and world.info["voices"] == "world"
    assert not torch.equal(world.mel[:20], many.mel[:20])                      # other voices, other audio
    assert_close(load_latents("train", 1, lat.WORLD, cache_dir=tmp_path).motion, world.motion[: world.lengths()[0]])
    assert_close(load_latents("train", 1, lat.WORLD, cache_dir=tmp_path, voices="many").mel,
                 many.mel[: many.lengths()[0]])


def test_motion_and_evaluators_train_in_the_world_space(tmp_path):
    """The motion generator and its evaluators train on the world's parameters with the same
    commands (configs/motion_world.toml, motion_evaluators_world.toml at tiny scale), with its
    encoder's edges and loss weights."""
    from vasa_lib.eval.motion import evaluator_path

    config = tiny_motion_config(tmp_path, lat.WORLD, "motion_world", audio='edges = "replicate"',
                                train="dim_weights = { eyelid = 4.0 }")
    train_main(["motion", "--config", str(config)])
    model = load_checkpoint(tmp_path / "motion_world.safetensors", MotionGenerator)
    assert model.motion_dim == 17 and model.audio_encoder.config.edges == "replicate"
    evaluators = tmp_path / "evaluators.toml"
    evaluators.write_text(f"""
[data]
face_checkpoint = "world"
cache_dir = "{tmp_path}"
n_train = 2
[syncnet]
steps = 2
batch = 4
[capp]
frames = 25
segments = 5
steps = 2
batch = 2
[emotion]
frames = 25
steps = 2
batch = 2
[train]
checkpoint_dir = "{tmp_path}"
""")
    train_main(["evaluators", "--config", str(evaluators)])
    for name in ("probes", "syncnet", "capp", "emotion"):
        assert evaluator_path(name, tmp_path, world=True).name == f"eval_{name}_world.safetensors"
        assert evaluator_path(name, tmp_path, world=True).exists()
