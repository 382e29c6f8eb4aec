"""Head-aligned part crops: the eyes (with the brows) and the mouth, cut from an image along the
head's own axes at a given pose, and the small CNN that reads them.

At the portrait framing an eye is about 14 pixels wide and the natural spread of the gaze moves
the iris by under a pixel: a CNN whose first layer halves the whole image reads the pose but
barely the gaze (the parameter reader without crops: gaze R^2 0.04). Gaze, landmark and
expression estimators on real faces first find the head, then look again at normalised eye and
mouth patches (ETH-XGaze's normalised eye images); `part_crops` does the same for the world's
heads, resampling each part at about twice the image's resolution. The parameter reader
(`vasa_lib.eval.reader`) reads the facial parameters from these crops, and the face model's motion
encoder can read z_dyn from them (`FaceConfig.part_crops`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vasa_lib.world.params import framing as get_framing
from vasa_lib.world.renderer import _rotation as head_rotation


@dataclass(frozen=True)
class PartBox:
    """A head-aligned crop: centre (u, v) and half extents in head units (the renderer's head
    frame at distance 1: u right, v up; the eyes sit at v = 0.1, the mouth near v = -0.27),
    resampled to `rows` x `cols` pixels; `reads` names the parameters read from it."""

    u: float
    v: float
    half_u: float
    half_v: float
    rows: int
    cols: int
    reads: tuple[str, ...]


HEAD_SEMI_AXES = (0.41, 0.51, 0.42)   # the mean head of `world.identity` (width, height, depth)
EYE_BOX = PartBox(u=0.16, v=0.14, half_u=0.13, half_v=0.11, rows=40, cols=48,   # an eye and its brow
                  reads=("eyelid", "gaze_yaw", "gaze_pitch", "brow_raise", "brow_frown"))
MOUTH_BOX = PartBox(u=0.0, v=-0.29, half_u=0.17, half_v=0.13, rows=40, cols=48,
                    reads=("jaw_open", "lip_spread", "lip_round", "lip_close", "tongue", "smile"))


LAYERS_PER_STAGE = 6


def conv_stages(channels: int, widths: tuple[int, ...]) -> nn.Sequential:
    """Stride-2 conv stages (each conv, norm, SiLU, conv, norm, SiLU: `LAYERS_PER_STAGE` layers)
    from `channels` inputs."""
    layers = []
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.GroupNorm(8, width), nn.SiLU(),
                   nn.Conv2d(width, width, 3, padding=1), nn.GroupNorm(8, width), nn.SiLU()]
        channels = width
    return nn.Sequential(*layers)


def part_crops(images: torch.Tensor, pose: torch.Tensor, box: PartBox, framing: str, mirror: bool = False,
               ) -> torch.Tensor:
    """Head-aligned crops (B, 3, rows, cols) of images (B, 3, H, W) seen at head poses (B, 6).

    The box's centre, on the mean head's surface, and its u and v axes are posed like the
    renderer poses the head (world = t + R q / distance) and framed by the camera, so the crop
    turns, shrinks and foreshortens with the head. `mirror` takes the box at -u (the other eye)."""
    camera = get_framing(framing)
    a, b, c = HEAD_SEMI_AXES
    u = -box.u if mirror else box.u
    w = c * max(1.0 - (u / a) ** 2 - (box.v / b) ** 2, 0.0) ** 0.5
    rot = head_rotation(*pose[:, :3].unbind(-1)) / pose[:, 5].view(-1, 1, 1)    # (B, 3, 3) head -> world
    centre = pose[:, 3:5] + rot[:, :2] @ pose.new_tensor([u, box.v, w])        # (B, 2) world x, y
    to_grid = pose.new_tensor([camera.zoom, -camera.zoom])                     # grid_sample's x right, y down
    theta = torch.stack([rot[:, :2, 0] * box.half_u * to_grid, -rot[:, :2, 1] * box.half_v * to_grid,
                         (centre - pose.new_tensor([0.0, camera.centre_y])) * to_grid], -1)   # (B, 2, 3)
    grid = F.affine_grid(theta, [len(images), 3, box.rows, box.cols], align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="border")


def eye_and_mouth_crops(images: torch.Tensor, pose: torch.Tensor, framing: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Both eyes (B, 2, 3, rows, cols), the second mirrored, and the mouth (B, 1, 3, rows, cols) of
    images (B, 3, H, W) at head poses (B, 6): the views `PartReader`s take."""
    eyes = torch.stack([part_crops(images, pose, EYE_BOX, framing, mirror) for mirror in (False, True)], 1)
    return eyes, part_crops(images, pose, MOUTH_BOX, framing).unsqueeze(1)


class PartReader(nn.Module):
    """Crops (B, n, 3, rows, cols), n views of a part (both eyes, or the mouth) -> `outputs`
    numbers (B, outputs), by default its parameters (len(box.reads), standardised): shared conv
    stages per view, the views' maps flattened and joined, then an MLP."""

    def __init__(self, box: PartBox, views: int, widths: tuple[int, ...], hidden: int, outputs: int | None = None):
        super().__init__()
        self.features = conv_stages(3, widths)
        cells = (box.rows // 2 ** len(widths)) * (box.cols // 2 ** len(widths))
        self.head = nn.Sequential(nn.Linear(views * widths[-1] * cells, hidden), nn.SiLU(),
                                  nn.Linear(hidden, outputs or len(box.reads)))

    def stages(self, crops: torch.Tensor) -> list[torch.Tensor]:
        """The map after each conv stage ((B n, width, rows / 2^k, cols / 2^k), k = 1, 2, ...) and,
        last, the read numbers (B, outputs): what a perceptual loss compares (`face.losses`)."""
        x, maps = rearrange(crops * 2 - 1, "b n c h w -> (b n) c h w"), []
        for index, layer in enumerate(self.features, 1):
            x = layer(x)
            if index % LAYERS_PER_STAGE == 0:
                maps.append(x)
        return maps + [self.head(rearrange(x, "(b n) c h w -> b (n c h w)", b=len(crops)))]

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.stages(crops)[-1]
