"""Optimiser and learning-rate schedules shared by every model of the course.

- `param_groups`: AdamW groups that exempt norms, biases and embeddings from weight decay (as
  nanoGPT does: decay only the weights of matrix products and convolutions).
- `one_cycle`: warm-up then cosine decay over a known number of steps (OneCycleLR), with a
  warm-up of at least two steps (OneCycleLR divides by its length).
- `TimedCycle`: the same shape over a *time* budget, for runs that must end by a deadline (a GPU
  run of fixed minutes): the learning rate always reaches its floor when the time is up,
  however fast the machine.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weights of dimension >= 2 decay, the rest (norms, biases, embeddings
    stored as 1-D vectors) do not."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and "embed" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def one_cycle(optimizer: torch.optim.Optimizer, lr: float, total_steps: int, warmup: float = 0.03,
              final_div_factor: float = 20.0) -> torch.optim.lr_scheduler.OneCycleLR:
    """OneCycleLR (cosine) with a warm-up of `warmup` of the steps, and at least two steps."""
    total_steps = max(total_steps, 4)
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps,
                                               pct_start=max(warmup, 2 / total_steps), anneal_strategy="cos",
                                               final_div_factor=final_div_factor)


class TimedCycle(torch.optim.lr_scheduler.LRScheduler):
    """Linear warm-up over `warmup_steps` steps, then cosine decay from the peak to
    peak / final_div_factor as the elapsed time goes from 0 to `seconds` (counted from the
    first step). Step it once per optimiser step, like any scheduler. Its state holds the time
    used so far, so a resumed run goes on where it stopped."""

    def __init__(self, optimizer: torch.optim.Optimizer, seconds: float, warmup_steps: int = 100,
                 final_div_factor: float = 20.0):
        self.seconds, self.warmup_steps, self.floor = seconds, max(warmup_steps, 1), 1 / final_div_factor
        self.start: float | None = None
        self.used = 0.0                                   # seconds used before `start` (earlier runs)
        super().__init__(optimizer)

    def fraction(self) -> float:
        """Share of the time budget used, in [0, 1]."""
        if self.start is None:
            return min(self.used / self.seconds, 1.0)
        return min((self.used + time.monotonic() - self.start) / self.seconds, 1.0)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "start": None, "used": self.fraction() * self.seconds}

    def get_lr(self) -> list[float]:
        if self.start is None and self.last_epoch > 0:
            self.start = time.monotonic()
        warm = min((self.last_epoch + 1) / self.warmup_steps, 1.0)
        cosine = self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * self.fraction()))
        return [base * warm * cosine for base in self.base_lrs]
