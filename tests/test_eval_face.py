"""Pieces of the face model's evaluation: masked PSNR, sharpness, and the parameter reader."""

import torch
import torch.nn.functional as F

from vasa_lib.eval.face import gradient_energy, masked_psnr
from vasa_lib.eval.reader import GROUPS, NAMES, ParameterReader, ReaderConfig, group_r2, train_reader
from vasa_lib.face.losses import psnr
from vasa_lib.world.pairs import draw_motion
from vasa_lib.world.params import DYNAMICS_LIMITS, POSE_LIMITS


def test_masked_psnr_and_sharpness():
    images, noisy = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    everywhere = torch.ones(2, 16, 16, dtype=torch.bool)
    torch.testing.assert_close(masked_psnr(noisy, images, everywhere), psnr(noisy, images))
    left = torch.zeros_like(everywhere)
    left[..., :8] = True
    half = images.clone()
    half[..., 8:] = 0                                      # errors only where the mask is off
    assert (masked_psnr(half, images, left) > 90).all()
    blurred = F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
    assert (gradient_energy(blurred, everywhere) < 0.5 * gradient_energy(images, everywhere)).all()


def test_group_r2_and_motion_draws():
    true = torch.randn(64, len(NAMES))
    assert all(abs(v - 1) < 1e-6 for v in group_r2(true, true).values())
    assert set(group_r2(true, true)) == set(GROUPS) and sum(len(g) for g in GROUPS.values()) == len(NAMES)
    limits = torch.cat([POSE_LIMITS, DYNAMICS_LIMITS])
    natural = torch.zeros(500, len(NAMES)) + limits.mean(1)
    drawn = draw_motion(natural, 0.5, torch.Generator().manual_seed(0))
    assert ((drawn >= limits[:, 0]) & (drawn <= limits[:, 1])).all()
    changed = (drawn != natural).float().mean()
    assert 0.4 < changed < 0.6


def test_reader_trains_and_reads_world_units():
    config = ReaderConfig(size=32, widths=(8, 8, 16), hidden=16)
    # 10 steps: a warm-up of a tenth of the steps lasted one step, and OneCycleLR divided by zero
    reader, report = train_reader(config, steps=10, batch=4, n_clips=2)
    assert set(report["grade_r2_test_people"]) == set(GROUPS) and report["steps"] == 10
    read = reader.read(torch.rand(5, 3, 32, 32))
    assert read.shape == (5, len(NAMES)) and torch.isfinite(read).all()
    assert 0.8 < float(reader.mean[NAMES.index("distance")]) < 1.4   # standardised by the natural motion
    assert ParameterReader(config)(torch.rand(2, 3, 32, 32)).shape == (2, len(NAMES))


def test_part_crops_follow_the_head():
    """The eye and mouth boxes, posed with each frame's head pose, land on the eyes and the lips
    of the renderer's part labels (and a crop at a wrong pose does not)."""
    from vasa_lib.face.crops import EYE_BOX, MOUTH_BOX, part_crops
    from vasa_lib.world.identity import IDENTITY_SPLITS, identity_from_id
    from vasa_lib.world.pairs import motion_bank
    from vasa_lib.world.params import POSE_DIM
    from vasa_lib.world.renderer import PART_INDEX, render

    params = motion_bank("test", 2)[::8][:24]
    params = params[params[:, POSE_DIM + 6] < 0.5]                  # eyes open
    people = identity_from_id([IDENTITY_SPLITS["test"][i % 8] for i in range(len(params))])
    _, labels = render(people, params[:, :POSE_DIM], params[:, POSE_DIM:], size=128, parts=True,
                       framing="portrait")

    def share(pose, box, parts, mirror=False):
        mask = sum((labels == PART_INDEX[p]).float() for p in parts).unsqueeze(1)
        return part_crops(mask, pose, box, "portrait", mirror).mean((1, 2, 3))

    pose, eye = params[:, :POSE_DIM], ("eye_white", "iris")
    for mirror in (False, True):
        assert (share(pose, EYE_BOX, eye, mirror) > 0.03).all()
    assert (share(pose, MOUTH_BOX, ("lips", "mouth_cavity", "teeth", "tongue")) > 0.06).all()
    moved = pose + torch.tensor([0.0, 0.0, 0.0, 0.2, 0.0, 0.0])
    assert share(moved, EYE_BOX, eye).mean() < 0.3 * share(pose, EYE_BOX, eye).mean()


def test_crop_reader_trains_and_reads():
    config = ReaderConfig(size=32, widths=(8, 8, 16), hidden=16, framing="portrait", crops=True,
                          part_widths=(8, 16))
    reader, report = train_reader(config, steps=3, batch=4, n_clips=2)
    assert set(report["grade_r2_test_people"]) == set(GROUPS)
    read = reader.read(torch.rand(5, 3, 32, 32))
    assert read.shape == (5, len(NAMES)) and torch.isfinite(read).all()


def test_train_reader_cli_writes_a_checkpoint_and_card(tmp_path):
    from vasa_lib.checkpoint import load_checkpoint, read_checkpoint
    from vasa_lib.train import main

    config = tmp_path / "reader.toml"
    config.write_text(f"""[model]\nsize = 32\nwidths = [8, 8, 16]\nhidden = 16\n
[train]\nsteps = 2\nbatch = 4\nlr = 0.001\nuniform_share = 0.3\nn_clips = 2\nseed = 0\nthreads = 1
checkpoint = "{tmp_path / 'reader.safetensors'}"\n""")
    main(["reader", "--config", str(config)])
    reader = load_checkpoint(tmp_path / "reader.safetensors", ParameterReader)
    assert reader.config.widths == (8, 8, 16)
    card = (tmp_path / "reader.md").read_text()
    assert "grade_r2_test_people" in card and "python -m vasa_lib.train reader" in card
    # a second cycle starts from the first's weights and records where it started
    main(["reader", "--config", str(config), "--init", str(tmp_path / "reader.safetensors"),
          "--checkpoint", str(tmp_path / "again.safetensors"), "--lr", "0.0005", "--seed", "1"])
    info = read_checkpoint(tmp_path / "again.safetensors")[1]["info"]
    assert info["init"]["checkpoint"] == str(tmp_path / "reader.safetensors")
    assert info["init"]["earlier_run"]["steps"] == 2 and info["lr"] == 0.0005 and info["seed"] == 1
