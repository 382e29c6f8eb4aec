"""Training the motion generator and its regression baseline (paper Sec. 3.2).

A batch holds B windows of K + W consecutive frames:
    {"motion": (B, K+W, D) world units, "audio": (B, K+W, C) audio features or mel stacks (C = 320),
     "gaze": (B, 2), "distance": (B, 1), "emotion": (B,) long or (B, 5) float}
The first K frames are the previous-window condition (X_pre, A_pre), the last W the target.

Diffusion step: draw t ~ U{0 .. T-1} and noise, make x_t = q_sample(x0, t, noise), predict
x0_hat = H(x_t, t, C) with conditions dropped at random (classifier-free guidance), and minimise
||x0 - x0_hat||^2 (the paper's loss), optionally plus the same on frame-to-frame velocities (as
MDM does), on the head pose only and across the join with the previous window when asked.
Regression baseline: x0_hat = H(C), the same loss. `LitMotion` trains a
`MotionGenerator` (either kind), its learned mel encoder jointly.
"""

from __future__ import annotations

import lightning as L
import torch

from vasa_lib.motion.baseline import RegressionBaseline
from vasa_lib.motion.guidance import sample_drop
from vasa_lib.motion.model import MotionGenerator, MotionGeneratorConfig
from vasa_lib.motion.schedule import NoiseSchedule
from vasa_lib.motion.transformer import DropMask, MotionConditions, MotionTransformer


def split_batch(model: MotionTransformer, batch: dict[str, torch.Tensor],
                audio: torch.Tensor | None = None) -> tuple[torch.Tensor, MotionConditions]:
    """Normalised target windows x0 (B, W, D) and their conditions; W = model.config.window and
    K = K+W - W. `audio` (B, K+W, C_a) replaces batch["audio"] (e.g. after an audio encoder)."""
    motion = model.normalize(batch["motion"])
    audio = batch["audio"] if audio is None else audio
    k = motion.shape[1] - model.config.window
    if not 0 <= k <= model.config.context or audio.shape[:2] != motion.shape[:2]:
        raise ValueError(f"batch motion and audio must have K + W frames with W = {model.config.window}, "
                         f"K <= {model.config.context}; got {tuple(motion.shape)} and {tuple(audio.shape)}")
    cond = MotionConditions(audio=audio[:, k:], gaze=batch["gaze"], distance=batch["distance"],
                            emotion=batch["emotion"], prev_motion=motion[:, :k] if k else None,
                            prev_audio=audio[:, :k] if k else None)
    return motion[:, k:], cond


def velocity(motion: torch.Tensor) -> torch.Tensor:
    """Frame-to-frame change (B, W, D) -> (B, W - 1, D)."""
    return motion[:, 1:] - motion[:, :-1]


def motion_loss(pred: torch.Tensor, x0: torch.Tensor, velocity_weight: float = 0.0,
                velocity_dims: int | None = None, joined: torch.Tensor | None = None) -> torch.Tensor:
    """||x0 - pred||^2 plus velocity_weight times the same on velocities (mean); pred, x0 (B, W, D).

    velocity_dims: the velocity term covers the first velocity_dims numbers only (POSE_DIM: the
    head, whose smoothness delta_p measures; blinks and the mouth are fast by nature); None: all.
    joined (B,) bool: windows whose previous window the model was shown; for them the velocity term
    also covers the join, the step from the previous window's last frame into the first one. That
    step's error is the first frame's error (the previous frame is the same in both), and it is
    what makes a seam when windows are chained.
    """
    loss = (pred - x0).pow(2).mean((1, 2))
    if velocity_weight:
        p, x = pred[..., :velocity_dims], x0[..., :velocity_dims]
        steps = (velocity(p) - velocity(x)).pow(2).mean(2)                                  # (B, W - 1)
        if joined is not None:
            join = (p[:, :1] - x[:, :1]).pow(2).mean(2) * joined[:, None]                  # (B, 1)
            steps = torch.cat([join, steps], 1)
        loss = loss + velocity_weight * steps.mean(1)
    return loss.mean()


def joined_windows(cond: MotionConditions, drop: DropMask | None, batch_size: int) -> torch.Tensor | None:
    """(B,) bool: the windows whose previous window the model sees (None when there is none)."""
    if cond.prev_motion is None:
        return None
    dropped = (drop or {}).get("previous")
    return torch.ones(batch_size, dtype=torch.bool, device=cond.audio.device) if dropped is None else ~dropped


def diffusion_loss(model: MotionTransformer, schedule: NoiseSchedule, x0: torch.Tensor, cond: MotionConditions,
                   drop: DropMask | None = None, velocity_weight: float = 0.0,
                   velocity_dims: int | None = None, velocity_join: bool = False,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """The x0-prediction diffusion loss of one batch of normalised windows x0 (B, W, D);
    velocity_dims and velocity_join (the join with the previous window): see `motion_loss`."""
    t = schedule.sample_t(x0.shape[0], x0.device, generator)
    noise = torch.randn(x0.shape, device=x0.device, generator=generator)
    return motion_loss(model(schedule.q_sample(x0, t, noise), t, cond, drop), x0, velocity_weight,
                       velocity_dims, joined_windows(cond, drop, len(x0)) if velocity_join else None)


def regression_loss(model: RegressionBaseline, x0: torch.Tensor, cond: MotionConditions,
                    drop: DropMask | None = None, velocity_weight: float = 0.0,
                    velocity_dims: int | None = None, velocity_join: bool = False) -> torch.Tensor:
    """The regression baseline's MSE on normalised windows x0 (B, W, D)."""
    return motion_loss(model(None, None, cond, drop), x0, velocity_weight, velocity_dims,
                       joined_windows(cond, drop, len(x0)) if velocity_join else None)


class LitMotion(L.LightningModule):
    """Trains a `MotionGenerator`: its mel encoder jointly with a MotionTransformer
    (model["diffusion"] true, the default) or a RegressionBaseline, on batches of mel stacks.

    model: MotionConfig fields; audio_encoder: MelEncoderConfig fields (its dim must equal
    model["audio_dim"]); drop_probs: per-condition dropout (default DROP_PROBS).
    Set the motion statistics first: `lit.model.transformer.set_motion_stats(mean, std)`.
    """

    def __init__(self, model: dict | None = None, audio_encoder: dict | None = None,
                 drop_probs: dict[str, float] | None = None, velocity_weight: float = 0.0,
                 velocity_dims: int | None = None, velocity_join: bool = False,
                 lr: float = 1e-3,
                 weight_decay: float = 0.01, max_steps: int = 10_000):
        super().__init__()
        self.save_hyperparameters()
        self.model = MotionGenerator(MotionGeneratorConfig(motion=model or {}, audio=audio_encoder or {}))
        config = self.model.transformer.config
        self.schedule = NoiseSchedule(config.diffusion_steps, config.schedule)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss of one batch of mel-stack windows (conditions dropped at random)."""
        transformer = self.model.transformer
        x0, cond = split_batch(transformer, batch, self.model.audio_encoder(batch["audio"]))
        drop = sample_drop(x0.shape[0], self.hparams.drop_probs, x0.device)
        h = self.hparams
        if transformer.config.diffusion:
            return diffusion_loss(transformer, self.schedule, x0, cond, drop, h.velocity_weight,
                                  h.velocity_dims, h.velocity_join)
        return regression_loss(transformer, x0, cond, drop, h.velocity_weight, h.velocity_dims, h.velocity_join)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        self.log("train/loss", loss.detach(), batch_size=batch["motion"].shape[0], prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.log("val/loss", self.loss(batch), batch_size=batch["motion"].shape[0])

    def configure_optimizers(self):
        h = self.hparams
        opt = torch.optim.AdamW(self.parameters(), lr=h.lr, weight_decay=h.weight_decay, betas=(0.9, 0.99))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=h.lr, total_steps=h.max_steps, pct_start=0.03,
                                                    anneal_strategy="cos", final_div_factor=20)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
