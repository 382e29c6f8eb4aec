"""Training the motion generator and its regression baseline (paper Sec. 3.2).

A batch holds B windows of K + W consecutive frames:
    {"motion": (B, K+W, D) world units, "audio": (B, K+W, C) audio features or mel stacks (C = 320),
     "gaze": (B, 2), "distance": (B, 1), "emotion": (B,) long or (B, 5) float}
The first K frames are the previous-window condition (X_pre, A_pre), the last W the target.

Diffusion step: draw t ~ U{0 .. T-1} and noise, make x_t = q_sample(x0, t, noise), predict
x0_hat = H(x_t, t, C) with conditions dropped at random (classifier-free guidance), and minimise
||x0 - x0_hat||^2 (the paper's loss), optionally plus the same on frame-to-frame velocities (as
MDM does), on the head pose only, and on the join with the previous window (its first frame) when asked.
With `mel_shift` > 0 each training window's mel bins move by a random -mel_shift .. mel_shift
bins (`audio.mel.shift_mel_bins`): new voices from the training voices, for voices never heard.
Batches whose audio is longer than their motion carry a margin of audio either side
(`MotionWindows(margin=...)`), cut from the encoder's output. `dim_weights` (D,) weigh each
number's squared error (e.g. the eyelid, whose blinks are rare, short and large).
Regression baseline: x0_hat = H(C), the same loss. `LitMotion` trains a
`MotionGenerator` (either kind), its learned mel encoder jointly.
"""

from __future__ import annotations

import lightning as L
import torch

from vasa_lib.audio.mel import shift_mel_bins
from vasa_lib.motion.baseline import RegressionBaseline
from vasa_lib.motion.guidance import GUIDANCE_SCALES, sample_drop
from vasa_lib.motion.model import MotionGenerator, MotionGeneratorConfig
from vasa_lib.motion.schedule import NoiseSchedule
from vasa_lib.motion.transformer import DropMask, MotionConditions, MotionTransformer
from vasa_lib.world.params import DYNAMICS_DIM, DYNAMICS_NAMES, POSE_DIM, POSE_NAMES


def split_batch(model: MotionTransformer, batch: dict[str, torch.Tensor],
                audio: torch.Tensor | None = None, context: int | None = None) -> tuple[torch.Tensor, MotionConditions]:
    """Normalised target windows x0 (B, W, D) and their conditions; the first `context` = K of the
    K+W frames are the previous window (default: all but model.config.window). `audio`
    (B, K+W, C_a) replaces batch["audio"] (e.g. after an audio encoder)."""
    motion = model.normalize(batch["motion"])
    audio = batch["audio"] if audio is None else audio
    k = motion.shape[1] - model.config.window if context is None else context
    if not 0 <= k <= model.config.context or not 1 <= motion.shape[1] - k <= model.config.window \
            or audio.shape[:2] != motion.shape[:2]:
        raise ValueError(f"batch motion and audio must have K + W frames with W <= {model.config.window}, "
                         f"K <= {model.config.context}; got {tuple(motion.shape)} and {tuple(audio.shape)}")
    cond = MotionConditions(audio=audio[:, k:], gaze=batch["gaze"], distance=batch["distance"],
                            emotion=batch["emotion"], prev_motion=motion[:, :k] if k else None,
                            prev_audio=audio[:, :k] if k else None)
    return motion[:, k:], cond


def shorten(motion: torch.Tensor, audio: torch.Tensor, context: int, generator: torch.Generator | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A batch of K+W frames (K = context) cut to k in 1 .. K previous frames and w in 2 .. W
    target frames, drawn at random: (motion (B, k+w, D), audio (B, k+w, C), k). Streaming with a
    short first window (`generate.window_bounds`) asks for such windows: a short one, then one
    whose previous window is short."""
    w_max = motion.shape[1] - context
    k = int(torch.randint(1, context + 1, (), generator=generator))
    w = int(torch.randint(2, w_max + 1, (), generator=generator))
    return motion[:, context - k: context + w], audio[:, context - k: context + w], k


def velocity(motion: torch.Tensor) -> torch.Tensor:
    """Frame-to-frame change (B, W, D) -> (B, W - 1, D)."""
    return motion[:, 1:] - motion[:, :-1]


def motion_loss(pred: torch.Tensor, x0: torch.Tensor, velocity_weight: float = 0.0,
                velocity_dims: int | None = None, joined: torch.Tensor | None = None,
                join_weight: float = 0.0, dim_weights: torch.Tensor | None = None) -> torch.Tensor:
    """||x0 - pred||^2 plus velocity_weight times the same on velocities (mean); pred, x0 (B, W, D).

    dim_weights (D,): the first term's weight for each number (None: 1 each).
    velocity_dims: the velocity terms cover the first velocity_dims numbers only (POSE_DIM: the
    head, whose smoothness delta_p measures; blinks and the mouth are fast by nature); None: all.
    joined (B,) bool: windows whose previous window the model was shown; for them join_weight
    times the squared error of the join, the step from the previous window's last frame into the
    first one, is added. That step's error is the first frame's error (the previous frame is the
    same in both), and it is what makes a seam when windows are chained.
    """
    err = (pred - x0).pow(2)
    loss = (err if dim_weights is None else err * dim_weights).mean((1, 2))
    p, x = pred[..., :velocity_dims], x0[..., :velocity_dims]
    if velocity_weight:
        loss = loss + velocity_weight * (velocity(p) - velocity(x)).pow(2).mean((1, 2))
    if join_weight and joined is not None:
        loss = loss + join_weight * (p[:, 0] - x[:, 0]).pow(2).mean(1) * joined
    return loss.mean()


def dim_weight_list(weights: dict[str, float], motion_dim: int) -> list[float] | None:
    """{name: weight} -> one loss weight per motion number (D,), 1 for those not named; None for
    none. Names: the head pose's `POSE_NAMES` (the first 6 numbers of every motion space) and, in
    the world's own parameters (D = 17), `DYNAMICS_NAMES`."""
    if not weights:
        return None
    names = POSE_NAMES + (DYNAMICS_NAMES if motion_dim == POSE_DIM + DYNAMICS_DIM else ())
    unknown = set(weights) - set(names)
    if unknown:
        raise ValueError(f"no motion number is named {sorted(unknown)} here; choose from {names}")
    return [float(weights.get(name, 1.0)) for name in names] + [1.0] * (motion_dim - len(names))


def joined_windows(cond: MotionConditions, drop: DropMask | None, batch_size: int) -> torch.Tensor | None:
    """(B,) bool: the windows whose previous window the model sees (None when there is none)."""
    if cond.prev_motion is None:
        return None
    dropped = (drop or {}).get("previous")
    return torch.ones(batch_size, dtype=torch.bool, device=cond.audio.device) if dropped is None else ~dropped


def diffusion_loss(model: MotionTransformer, schedule: NoiseSchedule, x0: torch.Tensor, cond: MotionConditions,
                   drop: DropMask | None = None, velocity_weight: float = 0.0,
                   velocity_dims: int | None = None, join_weight: float = 0.0,
                   dim_weights: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """The x0-prediction diffusion loss of one batch of normalised windows x0 (B, W, D);
    velocity_dims, join_weight (the join with the previous window) and dim_weights: see `motion_loss`."""
    t = schedule.sample_t(x0.shape[0], x0.device, generator)
    noise = torch.randn(x0.shape, device=x0.device, generator=generator)
    return motion_loss(model(schedule.q_sample(x0, t, noise), t, cond, drop), x0, velocity_weight,
                       velocity_dims, joined_windows(cond, drop, len(x0)), join_weight, dim_weights)


def regression_loss(model: RegressionBaseline, x0: torch.Tensor, cond: MotionConditions,
                    drop: DropMask | None = None, velocity_weight: float = 0.0,
                    velocity_dims: int | None = None, join_weight: float = 0.0,
                    dim_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The regression baseline's MSE on normalised windows x0 (B, W, D)."""
    return motion_loss(model(None, None, cond, drop), x0, velocity_weight, velocity_dims,
                       joined_windows(cond, drop, len(x0)), join_weight, dim_weights)


class LitMotion(L.LightningModule):
    """Trains a `MotionGenerator`: its mel encoder jointly with a MotionTransformer
    (model["diffusion"] true, the default) or a RegressionBaseline, on batches of mel stacks.

    model: MotionConfig fields; audio_encoder: MelEncoderConfig fields (its dim must equal
    model["audio_dim"]); mel_shift: the largest random mel-bin shift in training; dim_weights:
    the loss weight of each motion number (D values; None: 1 each); drop_probs:
    per-condition dropout (default DROP_PROBS); scales: the guidance scales the trained model
    samples with by default (`MotionGeneratorConfig.scales`).
    Set the motion statistics first: `lit.model.transformer.set_motion_stats(mean, std)`.
    """

    def __init__(self, model: dict | None = None, audio_encoder: dict | None = None,
                 drop_probs: dict[str, float] | None = None, velocity_weight: float = 0.0,
                 velocity_dims: int | None = None, join_weight: float = 0.0,
                 short_share: float = 0.0, mel_shift: int = 0, dim_weights: list[float] | None = None,
                 lr: float = 1e-3, weight_decay: float = 0.01, max_steps: int = 10_000,
                 scales: dict[str, float] | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.model = MotionGenerator(MotionGeneratorConfig(
            motion=model or {}, audio=audio_encoder or {}, scales=dict(GUIDANCE_SCALES if scales is None else scales)))
        config = self.model.transformer.config
        self.schedule = NoiseSchedule(config.diffusion_steps, config.schedule)
        if dim_weights is not None and len(dim_weights) != config.motion_dim:
            raise ValueError(f"dim_weights needs one weight per motion number ({config.motion_dim}), "
                             f"got {len(dim_weights)}")
        weights = None if dim_weights is None else torch.tensor(dim_weights)
        self.register_buffer("dim_weights", weights, persistent=False)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss of one batch of mel-stack windows (conditions dropped at random)."""
        transformer, mel, shift = self.model.transformer, batch["audio"], self.hparams.mel_shift
        if self.training and shift:
            mel = shift_mel_bins(mel, torch.randint(-shift, shift + 1, mel.shape[:1], device=mel.device))
        motion, audio, k = batch["motion"], self.model.audio_encoder(mel), None
        m = (audio.shape[1] - motion.shape[1]) // 2      # the audio margin either side (MotionWindows)
        audio = audio[:, m: audio.shape[1] - m]
        if self.training and self.hparams.short_share and float(torch.rand(())) < self.hparams.short_share:
            motion, audio, k = shorten(motion, audio, motion.shape[1] - transformer.config.window)
        x0, cond = split_batch(transformer, {**batch, "motion": motion}, audio, k)
        drop = sample_drop(x0.shape[0], self.hparams.drop_probs, x0.device)
        h = self.hparams
        if transformer.config.diffusion:
            return diffusion_loss(transformer, self.schedule, x0, cond, drop, h.velocity_weight,
                                  h.velocity_dims, h.join_weight, self.dim_weights)
        return regression_loss(transformer, x0, cond, drop, h.velocity_weight, h.velocity_dims, h.join_weight,
                               self.dim_weights)

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
