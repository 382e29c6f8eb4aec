"""Face latent model (vasa_lib.face): block shapes and gradients, warping, checkpoints, losses."""

import math

import pytest
import torch
from safetensors.torch import save_file

from vasa_lib.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from vasa_lib.face.decoder import CanonicalNet, Generator2d, Projection
from vasa_lib.face.encoders import AppearanceEncoder, MotionEncoder
from vasa_lib.face.identity_net import IdentityNet, IdentityNetConfig
from vasa_lib.face.lit import LitFace
from vasa_lib.face.losses import (
    POSE_SPREAD,
    consistency_loss,
    cross_identity_loss,
    detail_weights,
    expression_loss,
    gradient_loss,
    pose_loss,
    psnr,
    reconstruction_loss,
    ssim,
)
from vasa_lib.face.model import FaceConfig, FaceModel
from vasa_lib.face.reader import ParameterReader, ReaderConfig
from vasa_lib.face.warping import WarpGenerator, rotation_matrix, warp_from_canonical, warp_to_canonical
from vasa_lib.world.identity import identity_from_id
from vasa_lib.world.params import DYNAMICS_NAMES, NEUTRAL_DYNAMICS, NEUTRAL_POSE, POSE_LIMITS
from vasa_lib.world.renderer import PART_INDEX, render

TINY = FaceConfig(size=64, app_width=16, app_blocks=1, volume_channels=4, volume_depth=4, canonical_blocks=1,
                  motion_width=16, id_dim=8, dyn_dim=8, warp_channels=8, features=16, generator_blocks=1)


def neutral(b: int) -> torch.Tensor:
    return NEUTRAL_POSE.expand(b, 6).clone()


def assert_all_grads(module: torch.nn.Module) -> None:
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def test_encoders_shapes_and_gradients():
    image = torch.rand(2, 3, 64, 64)
    app = AppearanceEncoder(width=16, volume_channels=4, volume_depth=4, id_dim=8, blocks=1)
    volume, identity = app(image)
    assert volume.shape == (2, 4, 4, 16, 16) and identity.shape == (2, 8)
    (volume.mean() + identity.mean()).backward()
    assert_all_grads(app)
    motion = MotionEncoder(width=16, dyn_dim=8, size=image.shape[-1])
    pose, dynamics = motion(image)
    assert pose.shape == (2, 6) and dynamics.shape == (2, 8)
    assert (pose >= POSE_LIMITS[:, 0]).all() and (pose <= POSE_LIMITS[:, 1]).all()  # world units and ranges
    (pose.sum() + dynamics.sum()).backward()
    assert_all_grads(motion)


def test_decoder_blocks_shapes_and_gradients():
    volume = torch.randn(2, 4, 4, 16, 16, requires_grad=True)
    canonical = CanonicalNet(4, blocks=1)
    assert canonical(volume).shape == volume.shape
    projection = Projection(4, 4, 16)
    features = projection(canonical(volume))
    assert features.shape == (2, 16, 16, 16)
    generator = Generator2d(16, style_dim=8, blocks=1)
    image = generator(features, torch.randn(2, 8))
    assert image.shape == (2, 3, 64, 64) and image.min() >= 0 and image.max() <= 1
    image.mean().backward()
    for module in (canonical, projection, generator):
        assert_all_grads(module)
    assert volume.grad.abs().sum() > 0


def test_warp_generator_starts_rigid_and_learns():
    warp = WarpGenerator(dyn_dim=8, depth=4, channels=8)
    flow = warp(torch.randn(3, 8))
    assert flow.shape == (3, 3, 4, 16, 16)
    assert flow.abs().max() == 0  # zero-initialised last layer: a new model warps rigidly
    flow.sum().backward()
    assert warp.body[-1].weight.grad.abs().sum() > 0


def test_neutral_pose_and_zero_flow_leave_the_volume_unchanged():
    volume = torch.randn(2, 3, 8, 12, 12)
    zero_flow = torch.zeros(2, 3, 4, 6, 6)
    for warp in (warp_to_canonical, warp_from_canonical):
        torch.testing.assert_close(warp(volume, neutral(2)), volume)
        torch.testing.assert_close(warp(volume, neutral(2), zero_flow), volume)


def test_rotation_matrix_is_a_rotation_with_world_conventions():
    angles = torch.rand(3, 5) - 0.5
    rot = rotation_matrix(*angles)
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(5, 3, 3))
    nose = torch.tensor([0.0, 0.0, 1.0])
    yaw, pitch, roll = torch.tensor([0.3]), torch.tensor([0.3]), torch.tensor([0.3])
    zero = torch.zeros(1)
    assert (rotation_matrix(yaw, zero, zero) @ nose)[0, 0] > 0     # yaw > 0: the nose goes right
    assert (rotation_matrix(zero, pitch, zero) @ nose)[0, 1] > 0   # pitch > 0: the nose goes up
    x_axis = torch.tensor([1.0, 0.0, 0.0])
    assert (rotation_matrix(zero, zero, roll) @ x_axis)[0, 1] > 0  # roll > 0: counter-clockwise


def test_yaw_of_90_degrees_rotates_the_volume():
    n = 8
    volume = torch.zeros(1, 1, n, n, n)  # (B, C, D, H, W): D is depth z (towards the viewer), W is x
    volume[0, 0, n - 1, 3, 3] = 1.0       # a bright "nose tip" at the front
    pose = torch.tensor([[math.pi / 2, 0, 0, 0, 0, 1.0]])
    turned = warp_from_canonical(volume, pose)
    d, h, w = (int(i) for i in torch.unravel_index(turned.argmax(), (n, n, n)))
    assert (d, h, w) == (n - 1 - 3, 3, n - 1)  # the nose went to the right edge (+x)
    random_volume = torch.randn(1, 2, n, n, n)
    torch.testing.assert_close(warp_from_canonical(random_volume, pose), torch.rot90(random_volume, 1, dims=(2, 4)))
    torch.testing.assert_close(warp_to_canonical(random_volume, pose), torch.rot90(random_volume, -1, dims=(2, 4)))


def test_translation_and_distance_move_and_scale_the_volume():
    volume = torch.zeros(1, 1, 4, 16, 16)
    volume[0, 0, :, 6:10, 6:10] = 1.0
    shifted = warp_from_canonical(volume, torch.tensor([[0, 0, 0, 0.25, 0.25, 1.0]]))  # right and up by 2 voxels
    torch.testing.assert_close(shifted, torch.roll(volume, (-2, 2), dims=(3, 4)))
    near = warp_from_canonical(volume, torch.tensor([[0, 0, 0, 0, 0, 0.5]]))  # twice as big
    assert near.sum() == pytest.approx(4 * volume.sum().item(), rel=0.05)


def test_face_model_encode_decode_reenact():
    model = FaceModel(TINY)
    source, driver = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    latent = model.encode(source)
    assert latent.app_volume.shape == (2, 4, 4, 16, 16)
    assert latent.identity.shape == (2, 8) and latent.pose.shape == (2, 6) and latent.dynamics.shape == (2, 8)
    assert latent.motion.shape == (2, 14)
    out = model.reenact(source, driver)
    assert out.shape == (2, 3, 64, 64)
    canonical = model.canonical(latent)
    torch.testing.assert_close(model.render(canonical, latent.identity, latent.pose, latent.dynamics),
                               model.decode(latent, latent.pose, latent.dynamics))
    out.mean().backward()
    assert_all_grads(model)
    with pytest.raises(ValueError, match="images must have shape"):
        model.encode(torch.rand(2, 3, 32, 32))


def test_identity_net_embeds_on_the_unit_sphere():
    net = IdentityNet(IdentityNetConfig(widths=(8, 8, 16, 16), embed_dim=12))
    emb = net(torch.rand(3, 3, 64, 64))
    assert emb.shape == (3, 12)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    emb.sum().backward()
    assert_all_grads(net)


def test_losses():
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    assert (ssim(x, torch.rand_like(x)) < 0.2).all()
    assert psnr(x, (x + 0.1).clamp(0, 1)).min() > 19
    assert reconstruction_loss(x, x) == 0


def test_losses_are_float32_under_bfloat16_autocast():
    """Mixed-precision training (precision "bf16-mixed", the CPU recipe) must not change the losses:
    in bfloat16 SSIM's variances of flat skin come out negative (an infinite loss), and small terms
    such as l_consist round to steps of 1/256."""
    poses = NEUTRAL_POSE.expand(2, 6).clone()
    poses[1, 0] = 0.1
    images = render(identity_from_id([0, 1]), poses, NEUTRAL_DYNAMICS.expand(2, -1), size=64)
    target = images.flip(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = ssim(images, target)
        loss = reconstruction_loss(images, target)
    assert mixed.dtype == torch.float32 and torch.isfinite(loss)
    torch.testing.assert_close(mixed, ssim(images, target))
    half = images.bfloat16()
    terms = [reconstruction_loss(half, target), gradient_loss(half, target), consistency_loss(half, target),
             cross_identity_loss(half[:, 0, 0], target[:, 0, 0]), pose_loss(poses.bfloat16(), poses)]
    assert all(t.dtype == torch.float32 for t in terms)


def test_detail_weights_stress_mouth_and_eyes_and_pose_loss_is_in_spreads():
    images, parts = render(identity_from_id([0]), NEUTRAL_POSE[None], NEUTRAL_DYNAMICS[None], size=64, parts=True)
    weights = detail_weights(parts, boost=4.0)
    assert weights.shape == (1, 1, 64, 64)
    lips, skin = parts == PART_INDEX["lips"], parts == PART_INDEX["skin"]
    assert lips.any() and (weights[:, 0][lips] == 5).all() and (weights[:, 0][skin] == 1).all()
    true = NEUTRAL_POSE[None].repeat(4, 1)
    assert torch.isclose(pose_loss(true + POSE_SPREAD, true), torch.tensor(1.0))


def test_lit_face_step_has_every_loss(tmp_path):
    net = IdentityNet(IdentityNetConfig(widths=(8, 8, 8, 8), embed_dim=8))
    net_path = save_checkpoint(net, tmp_path / "id.safetensors")
    expression_path = save_checkpoint(tiny_expression_net(), tmp_path / "expression.safetensors")
    lit = LitFace(vars(TINY), {"consist_pairs": 2, "cross_pairs": 2, "expression": 1.0}, identity_net=str(net_path),
                  expression_net=str(expression_path))
    batch = {"frames": torch.rand(3, 2, 3, 64, 64), "parts": torch.randint(0, 14, (3, 2, 64, 64)),
             "pose": neutral(6).view(3, 2, 6)}
    out = lit.losses(batch)
    assert {"recon", "pose", "consist", "cross_id", "expression", "loss"} <= set(out)
    out["loss"].backward()
    for frozen in (lit.identity_net, lit.expression_net):
        assert all(p.grad is None for p in frozen.parameters())
    with pytest.raises(ValueError, match="identity network"):
        LitFace(vars(TINY), {"cross_id": 0.1}, identity_net=str(tmp_path / "missing.safetensors"))
    with pytest.raises(ValueError, match="expression network"):
        LitFace(vars(TINY), {"cross_id": 0.0, "expression": 1.0}, expression_net=str(tmp_path / "missing.safetensors"))
    portrait = save_checkpoint(tiny_expression_net("portrait"), tmp_path / "portrait.safetensors")
    with pytest.raises(ValueError, match="framing"):
        LitFace(vars(TINY), {"cross_id": 0.0, "expression": 1.0}, expression_net=str(portrait))


def tiny_expression_net(framing: str = "wide") -> ParameterReader:
    return ParameterReader(ReaderConfig(size=64, widths=(8, 8), hidden=8, framing=framing, crops=True,
                                        part_widths=(8, 8))).eval()


def test_expression_loss_sees_the_eyes_and_trains_only_the_output():
    torch.manual_seed(0)
    net = tiny_expression_net().requires_grad_(False)
    pose = neutral(2)
    dyn = NEUTRAL_DYNAMICS.expand(2, -1).clone()
    target = render(identity_from_id([0, 1]), pose, dyn, size=64)
    dyn[:, DYNAMICS_NAMES.index("eyelid")] = 1.0                  # the same faces, eyes shut
    shut = render(identity_from_id([0, 1]), pose, dyn, size=64)
    parts = (net.eyes, net.mouth)
    assert expression_loss(parts, target, target, pose, "wide") == 0
    output = shut.clone().requires_grad_(True)
    loss = expression_loss(parts, output, target, pose, "wide")
    assert loss > 0
    loss.backward()
    assert output.grad.abs().sum() > 0 and all(p.grad is None for p in net.parameters())


def test_checkpoint_round_trip(tmp_path):
    model = FaceModel(TINY).eval()
    path = save_checkpoint(model, tmp_path / "face.safetensors", {"step": 7})
    assert path.with_suffix(".json").exists()
    loaded = load_checkpoint(path, FaceModel)
    assert loaded.config == TINY and read_checkpoint(path)[1]["info"] == {"step": 7}
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, x), model(x, x))


def test_bad_checkpoints_give_clear_errors(tmp_path):
    path = save_checkpoint(FaceModel(TINY), tmp_path / "face.safetensors")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_checkpoint(truncated, FaceModel)
    tensors, _ = read_checkpoint(path)
    metadata = {"vasa_lib": path.with_suffix(".json").read_text()}
    name = "generator.to_rgb.2.weight"
    wrong = dict(tensors, **{name: torch.zeros(5, 5)})
    save_file(wrong, tmp_path / "wrong.safetensors", metadata=metadata)
    with pytest.raises(ValueError, match=f"'{name}' has shape"):
        load_checkpoint(tmp_path / "wrong.safetensors", FaceModel)
    save_file({k: v for k, v in tensors.items() if k != name}, tmp_path / "missing.safetensors", metadata=metadata)
    with pytest.raises(ValueError, match=f"'{name}' is missing"):
        load_checkpoint(tmp_path / "missing.safetensors", FaceModel)
    with pytest.raises(ValueError, match="not a FaceModel"):
        load_checkpoint(save_checkpoint(IdentityNet(), tmp_path / "id.safetensors"), FaceModel)


@pytest.mark.parametrize("name", ["face_fast", "face"])
def test_face_configs_build(name):
    from vasa_lib.face.lit import FaceLossConfig
    from vasa_lib.train import read_config

    cfg = read_config(f"configs/{name}.toml")
    model = FaceModel(FaceConfig(**cfg["model"]))
    FaceLossConfig(**cfg["loss"])
    assert {"lr", "max_steps", "max_minutes", "checkpoint"} <= set(cfg["train"])
    assert sum(p.numel() for p in model.parameters()) * 4 < 25e6  # the checkpoint stays under 25 MB


def test_train_cli_has_a_face_command(capsys):
    from vasa_lib.train import main

    with pytest.raises(SystemExit):
        main(["face", "--help"])
    assert "--config" in capsys.readouterr().out
