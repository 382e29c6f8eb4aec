"""An emotion classifier on motion latents, for emotion_acc: does generated motion show the
emotion it was asked for? (VASA-1 Sec. 3.2 controls; the synthetic world's emotions.)

A `TemporalEncoder` reads 2 s windows (50 frames) of normalised motion [z_pose, z_dyn] and
predicts one of `EMOTIONS`; a clip's prediction averages the logits of its windows. Trained on
TRAIN-identity latents with their clips' emotion labels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vasa_lib.eval.windows import TemporalEncoder, fit, random_windows, sliding_windows
from vasa_lib.motion.latents import LatentSet
from vasa_lib.world.params import EMOTIONS


@dataclass
class EmotionConfig:
    """motion_dim D = 6 + dyn_dim; frames: window length (50 = 2 s)."""

    motion_dim: int = 38
    frames: int = 50
    width: int = 64
    layers: int = 3

    def to_dict(self) -> dict:
        return asdict(self)


class EmotionClassifier(nn.Module):
    """Motion windows (B, L, D) with a mask (B, L) -> logits over EMOTIONS (B, 5)."""

    config_class = EmotionConfig

    def __init__(self, config: EmotionConfig | None = None):
        super().__init__()
        self.config = c = config or EmotionConfig()
        self.net = TemporalEncoder(c.motion_dim, c.width, len(EMOTIONS), c.layers)
        self.register_buffer("motion_mean", torch.zeros(c.motion_dim))
        self.register_buffer("motion_std", torch.ones(c.motion_dim))

    def forward(self, motion: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.net((motion - self.motion_mean) / self.motion_std, mask)

    @torch.no_grad()
    def predict(self, motion: torch.Tensor) -> int:
        """The emotion index of one clip's motion (T, D): logits averaged over 2 s windows (stride 1 s)."""
        windows, mask = sliding_windows(motion, self.config.frames, self.config.frames // 2)
        return int(self(windows, mask).mean(0).argmax())


def train_emotion(latents: LatentSet, config: EmotionConfig, steps: int, batch: int = 64, lr: float = 2e-3,
                  seed: int = 0, log_every: int = 0) -> tuple[EmotionClassifier, list[float]]:
    """Fit the classifier on a (train) latent set; returns it (eval mode) and its losses."""
    model = EmotionClassifier(config)
    mean, std = latents.stats()
    model.motion_mean.copy_(mean)
    model.motion_std.copy_(std.clamp_min(1e-6))
    motions = latents.split("motion")

    def loss(generator: torch.Generator) -> torch.Tensor:
        (motion,), mask, clips, _ = random_windows([motions], config.frames, batch, generator)
        return F.cross_entropy(model(motion, mask), latents.emotion[clips])

    return model, fit(model, loss, steps, lr, seed, log_every)
