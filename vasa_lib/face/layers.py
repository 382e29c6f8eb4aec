"""Building blocks of the face model: residual conv blocks in 2D and 3D, and FiLM modulation.

Used by the encoders, the canonical 3D network and the 2D generator (paper Sec. 3.1, after
MegaPortraits, which builds all of them from residual blocks with group normalisation).
"""

from __future__ import annotations

import torch
from torch import nn


def norm(channels: int) -> nn.GroupNorm:
    """Group normalisation with up to 8 groups (works for any channel count >= 1)."""
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class ResBlock2d(nn.Module):
    """Pre-activation residual block: (B, C_in, H, W) -> (B, C_out, H, W).

    With `cond_dim`, the second normalisation is modulated by a code (FiLM: x * (1 + gamma) + beta),
    which is how the 2D generator is steered by the identity code z_id.
    """

    def __init__(self, c_in: int, c_out: int, cond_dim: int = 0):
        super().__init__()
        self.norm1, self.conv1 = norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.film = nn.Linear(cond_dim, 2 * c_out) if cond_dim else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = self.norm2(h)
        if self.film is not None:
            gamma, beta = self.film(cond)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + gamma) + beta
        return self.skip(x) + self.conv2(self.act(h))


class ResBlock3d(nn.Module):
    """Pre-activation residual block on feature volumes: (B, C, D, H, W) -> same shape."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            norm(channels), nn.SiLU(), nn.Conv3d(channels, channels, 3, padding=1),
            norm(channels), nn.SiLU(), nn.Conv3d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def down2d(c_in: int, c_out: int) -> nn.Conv2d:
    """Strided 3x3 convolution halving the resolution: (B, C_in, H, W) -> (B, C_out, H/2, W/2)."""
    return nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
