"""The face decoder (paper Sec. 3.1, after MegaPortraits): canonical 3D network, projection of
the warped volume to a 2D feature map, and the 2D generator that paints the image.

    canonical volume (B, C, D, h, w) --warp to driving pose and dynamics--> (B, C, D, h, w)
    --projection: "b c d h w -> b (c d) h w" + 1x1 conv--> (B, F, h, w)
    --2D generator: residual blocks modulated by [z_id, z_dyn], x2 upsamplings--> (B, 3, H, W)
    --optionally `SourceSkip`: blend in the source image's own pixels along the composed warp

Unlike MegaPortraits, the generator also sees z_dyn. Our warps are small (a 16 x 16 flow) and a
warp can only move what the source volume holds: a closed mouth has no teeth or tongue to move.
The dynamics code therefore also modulates the generator, which paints what the warp cannot.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vasa_lib.face.layers import ResBlock2d, ResBlock3d, norm


class CanonicalNet(nn.Module):
    """3D residual network applied in canonical space: (B, C, D, H, W) -> same shape."""

    def __init__(self, channels: int, blocks: int):
        super().__init__()
        self.blocks = nn.Sequential(*[ResBlock3d(channels) for _ in range(blocks)])

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        return self.blocks(volume)


class Projection(nn.Module):
    """Fold depth into channels and mix with a 1x1 convolution: (B, C, D, H, W) -> (B, F, H, W)."""

    def __init__(self, channels: int, depth: int, features: int):
        super().__init__()
        self.mix = nn.Conv2d(channels * depth, features, 1)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        return self.mix(rearrange(volume, "b c d h w -> b (c d) h w"))


class Generator2d(nn.Module):
    """2D generator: features (B, F, h, w) and a style code (B, style_dim), here [z_id, z_dyn],
    -> image (B, 3, s h, s w) in [0, 1], s = `stride` (4 or 2, the appearance volume's).

    `blocks` FiLM-modulated residual blocks at h x w; for s = 4, nearest x2 upsampling and a
    residual block with F/2 channels at 2h x 2w; a 3x3 convolution to 3 x 2 x 2 channels and a
    pixel shuffle to the full resolution (cheap on a CPU: no convolution runs at s h x s w).
    """

    def __init__(self, features: int, style_dim: int, blocks: int = 2, stride: int = 4):
        super().__init__()
        f = features
        self.blocks = nn.ModuleList([ResBlock2d(f, f, style_dim) for _ in range(blocks)])
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.up = ResBlock2d(f, f // 2, style_dim) if stride == 4 else None
        f_out = f // 2 if stride == 4 else f
        self.to_rgb = nn.Sequential(norm(f_out), nn.SiLU(), nn.Conv2d(f_out, 3 * 4, 3, padding=1))

    def features(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """The last feature map before the colours: (B, F, h, w) for s = 2, (B, F/2, 2h, 2w) for s = 4."""
        for block in self.blocks:
            x = block(x, style)
        return x if self.up is None else self.up(self.upsample(x), style)

    def to_image(self, features: torch.Tensor) -> torch.Tensor:
        """The last feature map -> image (B, 3, H, W) in [0, 1]."""
        rgb = rearrange(self.to_rgb(features), "b (c i j) h w -> b c (h i) (w j)", i=2, j=2)
        return torch.sigmoid(rgb)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.to_image(self.features(x, style))


class SourceSkip(nn.Module):
    """Copy the source's own pixels where the warp can (FOMM's occlusion-masked warp, LivePortrait's
    warped features), so fine detail is moved rather than repainted.

    The decoder's two warps compose into one map: every driving voxel q shows the source point
    T_s(c + f_sc(c)), c = T_d^-1(q) + f_cd(...) (`warping.canonical_points`, then `posed_points`);
    its (x, y) is a position in the source image. A 3x3 convolution on the generator's last features
    (B, F, h, w) gives, per pixel, logits over the D depths (which voxel of the column is the
    surface) and a mask logit. The 2D flow is the softmax-weighted mean over depth of the points'
    (x, y), upsampled to the image; the image is mask * (source image sampled at the flow) +
    (1 - mask) * painted. It starts at a uniform depth average and a mask of sigmoid(-3) = 0.05.
    """

    def __init__(self, features: int, depth: int):
        super().__init__()
        self.head = nn.Conv2d(features, depth + 1, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        nn.init.constant_(self.head.bias[-1:], -3.0)

    def forward(self, features: torch.Tensor, points: torch.Tensor, source: torch.Tensor,
                painted: torch.Tensor) -> torch.Tensor:
        """features (B, F, h', w'), points (B, D, h, w, 3) in the source's grid coordinates, source
        and painted images (B, 3, H, W) -> image (B, 3, H, W)."""
        logits = self.head(features).float()
        depth = F.interpolate(logits[:, :-1], size=points.shape[2:4], mode="area").softmax(1)   # (B, D, h, w)
        flow = torch.einsum("bdhw,bdhwc->bchw", depth, points[..., :2].float())  # (B, 2, h, w)
        size = painted.shape[-2:]
        flow = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
        mask = torch.sigmoid(F.interpolate(logits[:, -1:], size=size, mode="bilinear", align_corners=False))
        copied = F.grid_sample(source.float(), rearrange(flow, "b c h w -> b h w c"), mode="bilinear",
                               padding_mode="border", align_corners=False)
        return mask * copied + (1 - mask) * painted.float()
