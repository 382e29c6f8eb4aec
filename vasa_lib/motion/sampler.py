"""DDIM sampling for an x0-predicting model, with any number of steps (paper Sec. 3.2; Song et al. 2021).

The model H predicts the clean signal x0_hat = H(x_t, t). One DDIM step from t to an earlier
step t' (alpha_bar written a):

    eps_hat  = (x_t - sqrt(a_t) x0_hat) / sqrt(1 - a_t)
    sigma    = eta * sqrt((1 - a_t') / (1 - a_t)) * sqrt(1 - a_t / a_t')
    x_t'     = sqrt(a_t') x0_hat + sqrt(1 - a_t' - sigma^2) eps_hat + sigma z

eta = 0 is deterministic (DDIM); eta = 1 is DDPM-like. The S sampling steps are spaced
"trailing" (t = T-1, T-1-T/S, ..., T/S - 1, then the clean end t' = -1 with a = 1), so even a
single step starts from pure noise and returns the model's x0 prediction. With 50 steps this is
`diffusers.DDIMScheduler(timestep_spacing="trailing", prediction_type="sample")`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vasa_lib.motion.schedule import NoiseSchedule

DEFAULT_STEPS = 50   # DDIM steps per window, the paper's default (10 are ~5x faster)
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # (x_t (B, ...), t (B,)) -> x0_hat (B, ...)


def ddim_timesteps(num_train_steps: int, steps: int) -> list[int]:
    """The S = steps sampling steps, noisiest first, "trailing" spacing: e.g. 1000, 4 -> [999, 749, 499, 249]."""
    if not 1 <= steps <= num_train_steps:
        raise ValueError(f"steps must be in 1 .. {num_train_steps}, got {steps}")
    ratio = num_train_steps / steps
    return [round(num_train_steps - i * ratio) - 1 for i in range(steps)]


def ddim_step(schedule: NoiseSchedule, x_t: torch.Tensor, x0_hat: torch.Tensor, t: int, t_prev: int,
              eta: float = 0.0, noise: torch.Tensor | None = None) -> torch.Tensor:
    """x_t (B, ...) at step t -> x_{t_prev} given the predicted x0_hat (B, ...); t_prev = -1 is the end."""
    a_t = schedule.alpha_bar(torch.tensor([t], device=x_t.device), x_t.ndim)
    a_prev = schedule.alpha_bar(torch.tensor([t_prev], device=x_t.device), x_t.ndim)
    eps_hat = (x_t - a_t.sqrt() * x0_hat) / (1 - a_t).sqrt()
    sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
    x_prev = a_prev.sqrt() * x0_hat + (1 - a_prev - sigma**2).clamp_min(0).sqrt() * eps_hat
    if eta > 0:
        x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
    return x_prev


@torch.no_grad()
def ddim_sample(denoise: Denoiser, shape: tuple[int, ...], schedule: NoiseSchedule, steps: int = DEFAULT_STEPS,
                eta: float = 0.0, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Draw x_T ~ N(0, I) of `shape` (B, ...) and denoise it in `steps` DDIM steps -> x0 (B, ...).

    `generator` (on `device`) makes the result reproducible.
    """
    x = torch.randn(shape, generator=generator, device=device)
    timesteps = ddim_timesteps(schedule.num_steps, steps)
    for t, t_prev in zip(timesteps, timesteps[1:] + [-1]):
        x0_hat = denoise(x, torch.full((shape[0],), t, device=device, dtype=torch.long))
        noise = torch.randn(shape, generator=generator, device=device) if eta > 0 else None
        x = ddim_step(schedule, x, x0_hat, t, t_prev, eta, noise)
    return x
