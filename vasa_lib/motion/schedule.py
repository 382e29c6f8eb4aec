"""The forward (noising) process of the motion diffusion model (paper Sec. 3.2, after DDPM).

    q(x_t | x_0) = N( sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I ),   t = 0 .. num_steps - 1

with alpha_bar_t = prod_{s <= t} (1 - beta_s). The paper does not give its schedule; we default
to the cosine schedule of Nichol & Dhariwal (2021), as MDM (the x0-predicting motion diffusion
model VASA-1's generator resembles) does: the linear schedule of DDPM destroys a low-dimensional
signal such as a 17-number motion vector within the first few hundred steps, so most training
steps see pure noise; the cosine schedule spreads the signal-to-noise ratio evenly over t.
`kind="linear"` (DDPM's beta 1e-4 .. 0.02) is there to compare. Both match `diffusers`
("squaredcos_cap_v2" and "linear").
"""

from __future__ import annotations

import math

import torch
from torch import nn


def cosine_betas(num_steps: int, max_beta: float = 0.999) -> torch.Tensor:
    """betas (num_steps,) with alpha_bar(s) = cos^2((s + 0.008) / 1.008 * pi / 2), s = t / num_steps."""
    def alpha_bar(s: float) -> float:
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta) for i in range(num_steps)]
    return torch.tensor(betas, dtype=torch.float32)


def linear_betas(num_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """DDPM's betas (num_steps,), evenly spaced from beta_start to beta_end."""
    return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float32)


class NoiseSchedule(nn.Module):
    """Betas and cumulative alphas as buffers (they follow the model to its device).

    betas, alphas_cumprod: (num_steps,) float32.
    """

    def __init__(self, num_steps: int = 1000, kind: str = "cosine"):
        super().__init__()
        if kind not in ("cosine", "linear"):
            raise ValueError(f"unknown noise schedule {kind!r}; choose 'cosine' or 'linear'")
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        self.num_steps, self.kind = num_steps, kind
        betas = cosine_betas(num_steps) if kind == "cosine" else linear_betas(num_steps)
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alphas_cumprod", torch.cumprod(1 - betas, dim=0), persistent=False)

    def alpha_bar(self, t: torch.Tensor, ndim: int) -> torch.Tensor:
        """alpha_bar at integer steps t (B,), shaped (B, 1, ..., 1) to broadcast over ndim dims;
        t = -1 means "before the first step" (alpha_bar = 1, the clean signal)."""
        ab = torch.where(t >= 0, self.alphas_cumprod[t.clamp_min(0)], torch.ones_like(self.alphas_cumprod[0]))
        return ab.reshape(-1, *([1] * (ndim - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Noisy x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise; x0, noise (B, ...), t (B,)."""
        ab = self.alpha_bar(t, x0.ndim)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def sample_t(self, batch_size: int, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Training steps t (B,), uniform over 0 .. num_steps - 1."""
        return torch.randint(0, self.num_steps, (batch_size,), device=device, generator=generator)
