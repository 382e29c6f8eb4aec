"""The parameter reader's network: image (B, 3, H, W) -> the world's pose (6) and facial
parameters (11), standardised by their spread in the world's natural motion.

A strided CNN over the image whose flattened last map (position matters, for tx and ty) feeds an
MLP; with `crops`, the facial parameters are read again from head-aligned crops of the eyes and
the mouth taken at the read pose (`face.crops`). `vasa_lib.eval.reader` trains it and grades faces
with it (the judge); frozen, a second one trained on its own is the expression network of the face
model's part-perceptual loss (`face.losses.expression_loss`), as `face.identity_net` is l_cross_id's
face recognition. It lives on the face floor so that the face model's training can load it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from einops import rearrange
from torch import nn

from vasa_lib.face.crops import EYE_BOX, MOUTH_BOX, PartReader, conv_stages, eye_and_mouth_crops
from vasa_lib.world.params import DYNAMICS_NAMES, POSE_DIM, POSE_NAMES

NAMES: tuple[str, ...] = POSE_NAMES + DYNAMICS_NAMES


@dataclass
class ReaderConfig:
    """size: image side; widths: channels of the stride-2 conv stages (the map after them is
    size / 2**len(widths) on a side); hidden: MLP width; framing: of the images it reads."""

    size: int = 128
    widths: tuple[int, ...] = (32, 48, 64, 96, 128)
    hidden: int = 256
    framing: str = "wide"          # the camera framing it reads (`vasa_lib.world.params.FRAMINGS`)
    crops: bool = False            # read the facial parameters from head-aligned part crops
    part_widths: tuple[int, ...] = (32, 64, 96)

    def __post_init__(self) -> None:
        self.widths, self.part_widths = tuple(self.widths), tuple(self.part_widths)

    def to_dict(self) -> dict:
        return asdict(self)


class ParameterReader(nn.Module):
    """Images (B, 3, size, size) in [0, 1] -> parameters (B, 17) in world units, in `NAMES` order.

    With `crops`, the pose comes from the whole image and the facial parameters from the part
    crops taken at that pose (`part_crops`): both eyes (mirrored boxes, one shared CNN) and the
    mouth."""

    config_class = ReaderConfig

    def __init__(self, config: ReaderConfig | None = None):
        super().__init__()
        self.config = c = config or ReaderConfig()
        self.features = conv_stages(3, c.widths)
        side = c.size // 2 ** len(c.widths)
        self.head = nn.Sequential(nn.Linear(c.widths[-1] * side * side, c.hidden), nn.SiLU(),
                                  nn.Linear(c.hidden, len(NAMES)))
        if c.crops:
            self.eyes = PartReader(EYE_BOX, 2, c.part_widths, c.hidden)
            self.mouth = PartReader(MOUTH_BOX, 1, c.part_widths, c.hidden)
            self.part_index = [NAMES.index(n) for n in EYE_BOX.reads + MOUTH_BOX.reads]
        self.register_buffer("mean", torch.zeros(len(NAMES)))
        self.register_buffer("std", torch.ones(len(NAMES)))

    def whole(self, images: torch.Tensor) -> torch.Tensor:
        """Standardised parameters (B, 17) read from the whole image."""
        return self.head(rearrange(self.features(images * 2 - 1), "b c h w -> b (c h w)"))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Standardised parameters (B, 17)."""
        out = self.whole(images)
        if not self.config.crops:
            return out
        return self.refine(images, out)

    def refine(self, images: torch.Tensor, whole: torch.Tensor) -> torch.Tensor:
        """The whole image's read (B, 17) with the facial parameters replaced by the part
        readers' (crops at the read pose, which is not trained through them)."""
        pose = (whole * self.std + self.mean)[:, :POSE_DIM].detach()
        eyes, mouth = eye_and_mouth_crops(images, pose, self.config.framing)
        out = whole.clone()
        out[:, self.part_index] = torch.cat([self.eyes(eyes), self.mouth(mouth)], -1)
        return out

    @torch.no_grad()
    def read(self, images: torch.Tensor, batch: int = 64) -> torch.Tensor:
        """Parameters (B, 17) in world units, read in batches."""
        out = torch.cat([self(images[i:i + batch]) for i in range(0, len(images), batch)])
        return out * self.std + self.mean
