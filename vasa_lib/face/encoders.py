"""Encoders of the face latent space (paper Sec. 3.1, after MegaPortraits).

From one image (B, 3, 128, 128):
- `AppearanceEncoder`: the 3D appearance volume V_app (B, C, D, H/s, W/s) and the identity code
  z_id (B, id_dim);
- `MotionEncoder`: the head pose z_pose (B, 6: yaw, pitch, roll, tx, ty, distance, in the world's
  units and inside the world's ranges) and the facial dynamics code z_dyn (B, dyn_dim), optionally
  read also from head-aligned crops of the eyes and the mouth taken at z_pose (`face.crops`).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from vasa_lib.face.crops import EYE_BOX, MOUTH_BOX, PartReader, eye_and_mouth_crops
from vasa_lib.face.layers import ResBlock2d, down2d, norm
from vasa_lib.world.params import POSE_LIMITS


class AppearanceEncoder(nn.Module):
    """Image (B, 3, H, W) -> V_app (B, C, D, H/s, W/s) and z_id (B, id_dim), s = `stride` (4 or 2).

    Strided convolutions down to H/s and residual blocks there, then a 1x1 convolution to C*D
    channels lifted to a volume ("b (c d) h w -> b c d h w"). A finer volume (s = 2) keeps more of
    the source's detail for the warps to move.
    """

    def __init__(self, width: int, volume_channels: int, volume_depth: int, id_dim: int, blocks: int = 2,
                 stride: int = 4):
        super().__init__()
        if stride not in (2, 4):
            raise ValueError(f"the appearance volume's stride must be 2 or 4, got {stride}")
        self.c, self.d = volume_channels, volume_depth
        downs = [down2d(width // 4, width // 2), nn.SiLU(), down2d(width // 2, width)] if stride == 4 else \
            [down2d(width // 4, width)]
        self.stem = nn.Sequential(nn.Conv2d(3, width // 4, 3, padding=1), nn.SiLU(), *downs)
        self.blocks = nn.ModuleList([ResBlock2d(width, width) for _ in range(blocks)])
        self.to_volume = nn.Sequential(norm(width), nn.SiLU(), nn.Conv2d(width, volume_channels * volume_depth, 1))
        self.to_identity = nn.Linear(width, id_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(image)
        for block in self.blocks:
            x = block(x)
        volume = rearrange(self.to_volume(x), "b (c d) h w -> b c d h w", c=self.c, d=self.d)
        return volume, self.to_identity(x.mean(dim=(2, 3)))


class MotionEncoder(nn.Module):
    """Image (B, 3, H, W) -> pose (B, 6) in world units and dynamics z_dyn (B, dyn_dim).

    A strided CNN down to H/16, flattened (not pooled: where the head and the mouth are matters),
    a shared linear layer, then two heads. The pose head ends in a sigmoid scaled to the world's
    pose ranges (`POSE_LIMITS`), so z_pose is explicit and can drive the rigid warp directly;
    z_dyn is free (learned without labels).

    With `crops` (the images' framing), z_dyn adds what two small CNNs read from head-aligned crops
    at z_pose (not trained through them): both eyes with their brows, and the mouth, at about twice
    the image's resolution. The parameter reader needs them to read gaze at all (`face.crops`).
    Their last layers start at zero, so a model trained without them starts unchanged.
    """

    def __init__(self, width: int, dyn_dim: int, size: int = 128, crops: str | None = None):
        super().__init__()
        w, self.framing = width, crops
        self.body = nn.Sequential(
            nn.Conv2d(3, w // 4, 3, padding=1), nn.SiLU(),
            down2d(w // 4, w // 4), ResBlock2d(w // 4, w // 2),   # H/2
            down2d(w // 2, w // 2), ResBlock2d(w // 2, w // 2),   # H/4
            down2d(w // 2, w), ResBlock2d(w, w),                  # H/8
            down2d(w, 2 * w), ResBlock2d(2 * w, 2 * w),           # H/16
            norm(2 * w), nn.SiLU(),
        )
        self.read_out = nn.Sequential(nn.Linear(2 * w * (size // 16) ** 2, 2 * w), nn.SiLU())
        self.pose_head = nn.Sequential(nn.Linear(2 * w, w), nn.SiLU(), nn.Linear(w, 6))
        self.dyn_head = nn.Sequential(nn.Linear(2 * w, w), nn.SiLU(), nn.Linear(w, dyn_dim))
        self.register_buffer("pose_low", POSE_LIMITS[:, 0].clone(), persistent=False)
        self.register_buffer("pose_high", POSE_LIMITS[:, 1].clone(), persistent=False)
        if crops:
            widths = (w // 2, w, w)
            self.eyes = PartReader(EYE_BOX, 2, widths, 2 * w, dyn_dim)
            self.mouth = PartReader(MOUTH_BOX, 1, widths, 2 * w, dyn_dim)
            for part in (self.eyes, self.mouth):
                nn.init.zeros_(part.head[-1].weight)
                nn.init.zeros_(part.head[-1].bias)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.read_out(rearrange(self.body(image), "b c h w -> b (c h w)"))
        pose = self.pose_low + (self.pose_high - self.pose_low) * torch.sigmoid(self.pose_head(h))
        dynamics = self.dyn_head(h)
        if self.framing:
            eyes, mouth = eye_and_mouth_crops(image, pose.detach(), self.framing)
            dynamics = dynamics + self.eyes(eyes) + self.mouth(mouth)
        return pose, dynamics
