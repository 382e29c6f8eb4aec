"""Classifier-free guidance with one scale per condition (paper Sec. 3.2; Ho & Salimans 2022).

Training: each condition is dropped (replaced by its learned null embedding) independently, with
its own probability: audio, gaze, distance and emotion 0.1, the previous window 0.5 (so the
model also learns the first window, which has no previous one).

Sampling: with scales lambda_c for the guided conditions c,

    X0_hat = (1 + sum_c lambda_c) H(X_t, t, C) - sum_c lambda_c H(X_t, t, C with c dropped)

which pushes the prediction away from what it would be without c. The 1 + n predictions (n =
conditions with a non-zero scale) run as one batched forward pass. The paper samples with
lambda_audio = 0.5 and lambda_gaze = 1.0 (`PAPER_SCALES`). Which scales work best depends on the
trained model, so each checkpoint carries its own defaults (`MotionGeneratorConfig.scales`, set by
the training config's [guidance] table); `GUIDANCE_SCALES` are those of a checkpoint that names none.
They leave the audio unguided: for the latent-space checkpoint, audio guidance lowers lip sync and
raises jitter at every scale above 0 (notebook 05's sweep). The world-space checkpoint samples with
the paper's scales: there audio guidance brings the head motion and the blink rate to the truth's
(its card, `benchmarks/motion_sweep.py --face world`).
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat

from vasa_lib.motion.transformer import CONDITIONS, DropMask, MotionConditions, MotionTransformer

DROP_PROBS: dict[str, float] = {"audio": 0.1, "gaze": 0.1, "distance": 0.1, "emotion": 0.1, "previous": 0.5}
PAPER_SCALES: dict[str, float] = {"audio": 0.5, "gaze": 1.0}
GUIDANCE_SCALES: dict[str, float] = {"audio": 0.0, "gaze": 1.0}


def sample_drop(batch_size: int, probs: dict[str, float] | None = None, device: torch.device | str = "cpu",
                generator: torch.Generator | None = None) -> DropMask:
    """Training-time condition dropout: name -> (B,) bool, each condition independently."""
    probs = DROP_PROBS if probs is None else probs
    unknown = set(probs) - set(CONDITIONS)
    if unknown:
        raise ValueError(f"unknown conditions {sorted(unknown)}; choose from {CONDITIONS}")
    return {name: torch.rand(batch_size, device=device, generator=generator) < p for name, p in probs.items()}


def check_scales(scales: dict[str, float]) -> None:
    """Guidance scales name conditions of `CONDITIONS` only."""
    unknown = set(scales) - set(CONDITIONS)
    if unknown:
        raise ValueError(f"unknown conditions {sorted(unknown)}; choose from {CONDITIONS}")


def guided_x0(model: MotionTransformer, x_t: torch.Tensor | None, t: torch.Tensor | None, cond: MotionConditions,
              scales: dict[str, float] | None = None, drop: DropMask | None = None) -> torch.Tensor:
    """Guided prediction X0_hat (B, W, D) from x_t (B, W, D), t (B,) and conditions.

    scales: condition -> lambda (default `GUIDANCE_SCALES`; all 0 gives the plain prediction);
    drop: conditions dropped in every branch (e.g. "previous" for the first window).
    """
    scales = GUIDANCE_SCALES if scales is None else scales
    check_scales(scales)
    guided = [name for name, s in scales.items() if s != 0]
    n, b = 1 + len(guided), cond.audio.shape[0]
    base = {name: torch.zeros(b, dtype=torch.bool, device=cond.audio.device) for name in CONDITIONS}
    base.update(drop or {})
    masks = {name: repeat(mask, "b -> n b", n=n).clone() for name, mask in base.items()}
    for i, name in enumerate(guided, start=1):
        masks[name][i] = True                            # branch i: condition `name` dropped
    batched = model(None if x_t is None else repeat(x_t, "b ... -> (n b) ...", n=n),
                    None if t is None else repeat(t, "b -> (n b)", n=n),
                    cond.repeat(n), {name: rearrange(m, "n b -> (n b)") for name, m in masks.items()})
    preds = rearrange(batched, "(n b) w d -> n b w d", n=n)
    total = sum(scales[name] for name in guided)
    return (1 + total) * preds[0] - sum(scales[name] * preds[i] for i, name in enumerate(guided, start=1))
