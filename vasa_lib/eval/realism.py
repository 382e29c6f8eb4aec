"""Realism as a two-sample test: a detector of generated motion (the DESIGN's realism test; the
paper's responsible-AI section, Sec. 5, on telling generated video from real).

A small classifier sees 1 s windows (25 frames) of motion, normalised, and says "generated" or
"the world's own". It is trained on windows of TRAIN-identity clips (a system's motion for their
audio and controls against their true motion) and graded on TEST-identity clips (people, and
often voices, it never saw). Its accuracy on the held-out windows is the score:

    50%  the detector cannot tell the system's motion from the truth (indistinguishable);
    100% every window gives the system away.

It works on motion sequences (the world's 17 parameters, or the face model's [z_pose, z_dyn]),
not on pixels: cheap, and where a face model decodes, what the pixels add on top is the face
model's own artefacts, which notebook 01 grades. The network: `windows.TemporalEncoder` over
each frame's [motion, velocity] (residual 1D convolutions over time, mean pooling) -> one logit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vasa_lib.eval.windows import TemporalEncoder, fit, sliding_windows

WINDOW = 25     # 1 s at 25 fps, as FVD's 25-frame clips


@dataclass
class DetectorConfig:
    motion_dim: int = 17
    frames: int = WINDOW
    stride: int = 5
    width: int = 48
    layers: int = 2


class RealismDetector(nn.Module):
    """Motion windows (B, frames, D) in world units (or latents) -> logit (B,): > 0 says generated."""

    def __init__(self, config: DetectorConfig | None = None):
        super().__init__()
        self.config = c = config or DetectorConfig()
        self.encoder = TemporalEncoder(2 * c.motion_dim, c.width, 1, c.layers)
        self.register_buffer("mean", torch.zeros(c.motion_dim))
        self.register_buffer("std", torch.ones(c.motion_dim))
        self.register_buffer("velocity_std", torch.ones(c.motion_dim))

    def inputs(self, windows: torch.Tensor) -> torch.Tensor:
        """Per frame [normalised motion, normalised velocity] (B, frames, 2 D)."""
        x = (windows - self.mean) / self.std
        v = F.pad(windows.diff(dim=1), (0, 0, 1, 0)) / self.velocity_std
        return torch.cat([x, v], dim=-1)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.inputs(windows))[:, 0]


def motion_windows(motions: Sequence[torch.Tensor], frames: int = WINDOW, stride: int = 5) -> torch.Tensor:
    """Every window of `frames` frames (at `stride`) of clips at least that long: (N, frames, D)."""
    parts = [sliding_windows(m, frames, stride)[0] for m in motions if len(m) >= frames]
    if not parts:
        raise ValueError(f"no clip has {frames} frames")
    return torch.cat(parts)


def train_detector(real: Sequence[torch.Tensor], fake: Sequence[torch.Tensor], config: DetectorConfig | None = None,
                   steps: int = 300, batch: int = 64, lr: float = 3e-3, seed: int = 0) -> RealismDetector:
    """Fit a detector on clips of true (`real`) and generated (`fake`) motion, each [(T_i, D)]."""
    config = config or DetectorConfig(motion_dim=real[0].shape[-1])
    torch.manual_seed(seed)                       # the initial weights too: the same detector whatever ran before
    model = RealismDetector(config)
    r = motion_windows(real, config.frames, config.stride)
    f = motion_windows(fake, config.frames, config.stride)
    everything = torch.cat([r, f]).flatten(0, 1)
    model.mean.copy_(everything.mean(0))
    model.std.copy_(everything.std(0).clamp_min(1e-6))
    model.velocity_std.copy_(torch.cat([r, f]).diff(dim=1).flatten(0, 1).std(0).clamp_min(1e-6))
    half = batch // 2

    def loss(generator: torch.Generator) -> torch.Tensor:
        x = torch.cat([r[torch.randint(0, len(r), (half,), generator=generator)],
                       f[torch.randint(0, len(f), (half,), generator=generator)]])
        y = torch.cat([torch.zeros(half), torch.ones(half)])
        return F.binary_cross_entropy_with_logits(model(x), y)

    fit(model, loss, steps, lr, seed)
    return model


@torch.no_grad()
def detector_accuracy(model: RealismDetector, real: Sequence[torch.Tensor], fake: Sequence[torch.Tensor]) -> float:
    """Balanced accuracy on held-out clips: the mean of the shares of true windows called real
    and of generated windows called generated (0.5: indistinguishable)."""
    c = model.config
    r, f = motion_windows(real, c.frames, c.stride), motion_windows(fake, c.frames, c.stride)
    return 0.5 * (float((model(r) <= 0).float().mean()) + float((model(f) > 0).float().mean()))


def shuffle_frames(motion: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The frames of a clip (T, D) in a random order: every frame is real, the motion is not.
    A detector that cannot tell this from the truth measures nothing."""
    return motion[torch.randperm(len(motion), generator=torch.Generator().manual_seed(seed))]


def saliency(model: RealismDetector, windows: torch.Tensor) -> torch.Tensor:
    """What the detector looks at: mean |d logit / d input| per motion dimension, with the
    inputs in the detector's normalised units (motion and velocity together): (D,)."""
    x = model.inputs(windows).detach().requires_grad_(True)
    model.encoder(x).sum().backward()
    d = model.config.motion_dim
    return (x.grad.abs()[..., :d] + x.grad.abs()[..., d:]).mean((0, 1))
