"""The face latent space v2 groundwork: the portrait framing, the warp seen through it, frame
pairs without clips, the time-budgeted schedule, and the GPU recipe tried at tiny scale."""

from __future__ import annotations

import json
import math
from itertools import islice
from pathlib import Path

import pytest
import torch

from vasa_lib import optim, paths
from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.face.model import FaceConfig, FaceModel
from vasa_lib.face.warping import pose_transform, warp_from_canonical
from vasa_lib.train import main as train_main
from vasa_lib.world.identity import IDENTITY_SPLITS, identity_from_id
from vasa_lib.world.pairs import PairBatches, draw_motion
from vasa_lib.world.params import FRAMINGS, NEUTRAL_DYNAMICS, NEUTRAL_POSE, framing
from vasa_lib.world.renderer import PART_INDEX, render


def brow_to_chin(name: str, size: int = 128) -> float:
    """Brow-to-chin height over the frame height, at distance 1, averaged over test people."""
    ids = list(range(10_100, 10_108))
    _, parts = render(identity_from_id(ids), NEUTRAL_POSE.expand(8, -1), NEUTRAL_DYNAMICS.expand(8, -1),
                      size=size, parts=True, framing=name)
    spans = []
    for labels in parts:
        brow_top = (labels == PART_INDEX["brow"]).any(1).nonzero().min()
        face = torch.isin(labels, torch.tensor([PART_INDEX[p] for p in ("skin", "lips", "nose")]))
        chin = face[:, size // 2].nonzero().max()              # the lowest face pixel on the middle column
        spans.append(float(chin - brow_top) / size)
    return sum(spans) / len(spans)


def test_portrait_framing_fills_half_the_frame():
    assert 0.42 < brow_to_chin("portrait") < 0.58
    assert brow_to_chin("wide") < 0.4


def test_unknown_framing_is_named():
    with pytest.raises(ValueError, match="unknown framing 'close'"):
        framing("close")


@pytest.mark.parametrize("scale_depth", [True, False])
@pytest.mark.parametrize("name", sorted(FRAMINGS))
def test_rigid_warp_turns_about_the_heads_centre(name, scale_depth):
    """Through any framing, the head's centre (world (tx, ty, 0)) is where the posed canonical
    centre lands, whatever the rotation and distance."""
    camera = FRAMINGS[name]
    pose = torch.tensor([[0.4, -0.2, 0.3, 0.05, -0.04, 1.3], [-0.7, 0.5, -0.4, -0.1, 0.1, 0.7]])
    a, b = pose_transform(pose, camera, scale_depth)
    flip = torch.tensor([1.0, -1.0, 1.0])
    canonical_centre = flip * camera.zoom * torch.tensor([0.0, 0.0 - camera.centre_y, 0.0])
    posed = torch.einsum("bij,j->bi", a, canonical_centre) + b
    true = flip * camera.zoom * torch.stack([pose[:, 3], pose[:, 4] - camera.centre_y, torch.zeros(2)], -1)
    torch.testing.assert_close(posed, true)


def flat_face_warp_errors(distance: float, scale_depth: bool, padding: str) -> tuple[float, float]:
    """Mean error on the face and over the whole frame of a neutral portrait render at distance 1,
    lifted to a volume (the same image in every depth slice) and warped to `distance`, against the
    world's render at that distance (test person 0)."""
    person = identity_from_id([IDENTITY_SPLITS["test"][0]])
    source = render(person, NEUTRAL_POSE[None], NEUTRAL_DYNAMICS[None], framing="portrait")
    pose = torch.tensor([[0.0, 0, 0, 0, 0, distance]])
    target, parts = render(person, pose, NEUTRAL_DYNAMICS[None], framing="portrait", parts=True)
    face = torch.tensor([PART_INDEX[n] for n in ("skin", "eye_white", "iris", "lips", "nose", "brow")])
    on_face = torch.isin(parts, face)[:, None].expand_as(target)
    volume = source[:, :, None].expand(-1, -1, 8, -1, -1)
    error = (warp_from_canonical(volume, pose, None, FRAMINGS["portrait"], scale_depth, padding).mean(2) - target).abs()
    return error[on_face].mean().item(), error.mean().item()


@pytest.mark.parametrize("distance", [1.5, 0.7])
def test_weak_perspective_warp_moves_a_flat_face_as_the_world_camera_does(distance):
    """With scale_depth=False and border padding a flat face warped to another distance is the
    world's render there. The depth-scaling warp of the first models pushes a far head's outer
    slices out of the volume (a quarter at 1.3): its face comes out darker; zero padding blackens
    the frame around a far head."""
    on_face, whole = flat_face_warp_errors(distance, False, "border")
    assert on_face < 0.015 and whole < 0.03      # the neck and shoulders scale otherwise
    if distance > 1:
        assert flat_face_warp_errors(distance, True, "zeros")[0] > 0.1        # depth lost on the face
        on_face, whole = flat_face_warp_errors(distance, False, "zeros")
        assert on_face < 0.015 and whole > 0.1                                # black edges only


def test_unknown_padding_is_named():
    with pytest.raises(ValueError, match="padding must be 'zeros' or 'border'"):
        FaceModel(FaceConfig(size=64, padding="reflect"))


def test_part_crops_add_to_z_dyn_from_zero_and_do_not_train_the_pose():
    """With part_crops the motion encoder starts as the one without (the crop readers' last layers
    are zero), so a model trained without them can go on with them; the crops then feed z_dyn and
    are learnt, while the pose they are cut at is not trained through them."""
    torch.manual_seed(0)
    plain = FaceModel(FaceConfig(size=64, framing="portrait", motion_width=16, dyn_dim=8))
    cropped = FaceModel(FaceConfig(size=64, framing="portrait", motion_width=16, dyn_dim=8, part_crops=True))
    missing, unexpected = cropped.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith(("motion_encoder.eyes.", "motion_encoder.mouth."))
                                              for k in missing)
    person = identity_from_id([IDENTITY_SPLITS["train"][0]] * 2)
    images = render(person, NEUTRAL_POSE.expand(2, 6), NEUTRAL_DYNAMICS.expand(2, -1), size=64, framing="portrait")
    torch.testing.assert_close(cropped.encode_motion(images), plain.encode_motion(images))
    encoder = cropped.motion_encoder
    pose, dynamics = encoder(images)
    (dynamics - encoder.dyn_head(encoder.read_out(encoder.body(images).flatten(1)))).sum().backward()
    assert encoder.mouth.head[-1].weight.grad.abs().sum() > 0 and encoder.eyes.head[-1].weight.grad.abs().sum() > 0
    assert all(p.grad is None or not p.grad.any() for p in encoder.pose_head.parameters())


def test_pairs_are_one_person_with_motion_in_range():
    bank = torch.tensor([[0.1, 0.0, 0.0, 0.0, 0.0, 1.0] + [0.2] * 11, [-0.1, 0.1, 0.0, 0.0, 0.0, 1.1] + [0.3] * 11])
    batch = PairBatches(bank, batch_size=16, uniform_share=0.5, same_pose=0.5).batch(torch.Generator().manual_seed(0))
    assert batch["identity"].shape == (16, 38) and batch["pose"].shape == (16, 2, 6)
    assert batch["dynamics"].shape == (16, 2, 11)
    images = render(batch["identity"].repeat_interleave(2, 0), batch["pose"].flatten(0, 1),
                    batch["dynamics"].flatten(0, 1), size=32)     # raises if any value is out of range
    assert images.shape == (32, 3, 32, 32)
    kept = (batch["pose"][:, 0] == batch["pose"][:, 1]).all(-1)
    assert 0 < kept.sum() < 16                                    # some drivers keep the pose, not all


def test_draw_motion_replaces_the_share_asked_for():
    natural = torch.zeros(4000, 17)
    drawn = draw_motion(natural, 0.25, torch.Generator().manual_seed(0))
    assert abs((drawn != 0).float().mean().item() - 0.25) < 0.02
    assert (drawn == draw_motion(natural, 0.0, torch.Generator())).sum() < drawn.numel()


def test_timed_cycle_anneals_by_the_clock(monkeypatch):
    """The learning rate warms up by steps, then falls with the elapsed share of the budget and
    reaches its floor when the time is up (a fake clock: no real waiting)."""
    clock = [100.0]
    monkeypatch.setattr(optim.time, "monotonic", lambda: clock[0])
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = optim.TimedCycle(opt, seconds=60, warmup_steps=2, final_div_factor=10)
    rates = []
    for now in (100.0, 100.0, 130.0, 160.0, 200.0):
        clock[0] = now
        opt.step()
        schedule.step()
        rates.append(opt.param_groups[0]["lr"])
    assert rates[1] == pytest.approx(1.0, abs=1e-6)               # warmed up, no time elapsed
    assert rates[2] == pytest.approx(0.55, abs=1e-6)              # half the time: half-way down the cosine
    assert rates[3] == pytest.approx(0.1) and rates[4] == pytest.approx(0.1)
    assert schedule.fraction() == 1.0


def test_one_cycle_survives_few_steps():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = optim.one_cycle(opt, 1.0, total_steps=3)
    for _ in range(3):
        opt.step()
        schedule.step()


def test_param_groups_exempt_norms_and_biases():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    decay, no_decay = optim.param_groups(model, 0.1)
    assert [p.shape for p in decay["params"]] == [(4, 3)] and len(no_decay["params"]) == 3


def tiny(config: str, tmp_path: Path, **replacements: str) -> str:
    """A copy of a shipped config with some lines replaced (the same recipe at tiny scale)."""
    text = paths.course_path(config).read_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / Path(config).name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("recipe, init, sizes", [
    ("face_gpu_v2", "face_v2_cpu", {"batch_size = 128": "batch_size = 2", "max_minutes = 5.0": "max_minutes = 0.05",
                                    "consist_pairs = 16": "consist_pairs = 1", "cross_pairs = 16": "cross_pairs = 1"}),
    ("face_cpu_v2", "face_v2_run1", {"batch_size = 8": "batch_size = 2", "max_minutes = 120.0": "max_minutes = 0.05",
                                     "consist_pairs = 2": "consist_pairs = 1"})], ids=["gpu", "cpu"])
def test_face_v2_recipes_at_tiny_scale(tmp_path, monkeypatch, recipe, init, sizes):
    """The GPU command of the face model v2 (scripts/gpu_face_v2.sh, from the CPU run's weights)
    and the CPU recipe (bfloat16 mixed precision, from GPU run 1's weights, whose missing part-crop
    readers and source skip start fresh), on the CPU for a few steps: checkpoint, card, log and CSV in the output
    folder, run from another folder, the part-perceptual loss on, and a model that loads."""
    config = tiny(f"configs/{recipe}.toml", tmp_path, **sizes, **{
        "n_clips = 200": "n_clips = 2", "held_out_batches = 4": "held_out_batches = 1"})
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    train_main(["face", "--config", config, "--out", str(out), "--init", str(paths.checkpoint(init))])
    model = load_checkpoint(out / "face.safetensors", FaceModel)
    c = model.config
    assert c.framing == "portrait" and c.volume_stride == 2 and c.part_crops and c.source_skip
    info = json.loads((out / "face.json").read_text())["info"]
    grown = init == "face_v2_run1"                 # run 1 has no part crops and no source skip
    assert (info["init"]["new_tensors"] > 0) == grown
    assert ("start fresh: motion_encoder.eyes" in (out / "train_face.log").read_text()) == grown
    assert info["steps"] >= 1 and info["schedule"] == "time" and "test_people_psnr" in info["held_out_psnr"]
    assert math.isfinite(info["final_metrics"]["train/loss"])
    assert "train/expression" in info["final_metrics"]       # the part-perceptual loss is on in both recipes
    assert "held_out_psnr" in (out / "face.md").read_text()
    assert "saved" in (out / "train_face.log").read_text()
    assert list(out.glob("version_*/metrics.csv"))
    image = torch.rand(1, 3, 128, 128)
    assert model.reenact(image, image).shape == (1, 3, 128, 128)


def test_a_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    """--resume goes on from the training state: the step count, and the time used, which the
    time-budgeted schedule counts on (`optim.TimedCycle`)."""
    config = tiny("configs/face_gpu_v2.toml", tmp_path, **{
        "batch_size = 128": "batch_size = 2", "consist_pairs = 16": "consist_pairs = 1",
        "cross_pairs = 16": "cross_pairs = 1", "n_clips = 200": "n_clips = 2",
        "held_out_batches = 4": "held_out_batches = 1"})
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    train_main(["face", "--config", config, "--out", str(out), "--max-steps", "2"])
    assert (out / "resume.ckpt").exists()
    train_main(["face", "--config", config, "--out", str(out), "--max-steps", "4", "--resume"])
    info = json.loads((out / "face.json").read_text())["info"]
    assert info["steps"] == 4 and info["resumed_at_step"] == 2
    saved = torch.load(out / "resume.ckpt", weights_only=False)
    assert saved["lr_schedulers"][0]["used"] > 0 and saved["lr_schedulers"][0]["last_epoch"] == 4
    assert saved["PairDataModule"] == {"batches": 4}       # the pairs go on where they stopped


def test_resumed_pairs_go_on_where_an_unbroken_run_would():
    bank = torch.rand(10, 17)
    unbroken, resumed = PairBatches(bank, 3), PairBatches(bank, 3)
    resumed.start = 2
    expected = list(islice(iter(unbroken), 4))[2:]
    for want, got in zip(expected, islice(iter(resumed), 2)):
        assert all(torch.equal(want[key], got[key]) for key in want)


def test_resume_without_a_state_says_so(tmp_path):
    config = tiny("configs/face_gpu_v2.toml", tmp_path)
    with pytest.raises(ValueError, match="nothing to resume"):
        train_main(["face", "--config", config, "--out", str(tmp_path / "none"), "--resume"])


@pytest.mark.parametrize("name", ["eval_reader_portrait", "expression_net_portrait"])
def test_reader_recipes_at_tiny_scale(tmp_path, name):
    """The judge's recipe and that of the expression network of the part-perceptual loss."""
    config = tiny(f"configs/{'reader_portrait' if name == 'eval_reader_portrait' else name}.toml", tmp_path, **{
        "steps = 100000": "steps = 2", "batch = 64": "batch = 4", "n_clips = 200": "n_clips = 2"})
    out = tmp_path / "reader"
    train_main(["reader", "--config", config, "--out", str(out)])
    from vasa_lib.eval.reader import ParameterReader

    reader = load_checkpoint(out / f"{name}.safetensors", ParameterReader)
    assert reader.config.framing == "portrait" and reader.config.crops
    assert "grade_r2_test_people" in (out / f"{name}.md").read_text()
