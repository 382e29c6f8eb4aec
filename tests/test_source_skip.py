"""The source skip of the face decoder (`face.decoder.SourceSkip`): the composed warp points at the
source's own pixels, a fresh skip barely changes the painted image, and a model that copies pixels
says when it is not given them."""

from __future__ import annotations

import pytest
import torch

from vasa_lib.face.model import FaceConfig, FaceModel
from vasa_lib.world.params import NEUTRAL_POSE

TINY = dict(size=32, framing="portrait", volume_stride=2, flow_size=8, app_width=16, app_blocks=1, volume_channels=4,
            volume_depth=4, canonical_blocks=1, motion_width=16, id_dim=8, dyn_dim=4, warp_channels=8, features=16,
            generator_blocks=1, scale_depth=False, padding="border")


def tiny(**extra) -> FaceModel:
    torch.manual_seed(0)
    return FaceModel(FaceConfig(**TINY, **extra)).eval()


@torch.no_grad()
def test_an_open_mask_at_the_source_pose_copies_the_source():
    model = tiny(source_skip=True)
    torch.nn.init.constant_(model.skip.head.bias[-1:], 30.0)          # mask = 1: only copied pixels
    image = torch.rand(2, 3, 32, 32)
    latent = model.encode(image)
    out = model.decode(latent, latent.pose, latent.dynamics)            # fresh flows are zero: the identity map
    torch.testing.assert_close(out[..., 1:-1, 1:-1], image[..., 1:-1, 1:-1], atol=1e-4, rtol=0)


@torch.no_grad()
def test_a_turned_driver_reads_the_source_elsewhere():
    model = tiny(source_skip=True)
    torch.nn.init.constant_(model.skip.head.bias[-1:], 30.0)
    image = torch.rand(1, 3, 32, 32)
    latent = model.encode(image)
    turned = latent.pose.clone()
    turned[:, 3] += 0.05                                                 # tx: the head shifts right
    out = model.decode(latent, turned, latent.dynamics)
    assert (out - image).abs().mean() > 0.05


@torch.no_grad()
def test_a_fresh_skip_blends_five_percent_and_broadcasts_one_source():
    plain, skip = tiny(), tiny(source_skip=True)
    skip.load_state_dict(plain.state_dict(), strict=False)              # the same model but for the skip head
    image = torch.rand(1, 3, 32, 32)
    latent = skip.encode(image)
    canonical = skip.canonical(latent).expand(3, -1, -1, -1, -1)
    pose = NEUTRAL_POSE.expand(3, -1)
    dynamics = torch.randn(3, 4)
    painted = plain.render(canonical, latent.identity.expand(3, -1), pose, dynamics)
    out = skip.render(canonical, latent.identity.expand(3, -1), pose, dynamics, source=latent)
    assert out.shape == (3, 3, 32, 32)
    difference = (out - painted).abs().max()
    assert 0 < difference <= 0.05 + 1e-6


def test_a_skip_model_asks_for_its_source():
    model = tiny(source_skip=True)
    latent = model.encode(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="source="):
        model.render(model.canonical(latent), latent.identity, latent.pose, latent.dynamics)
