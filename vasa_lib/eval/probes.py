"""Linear probes that read the world's hidden factors out of motion latents (for the motion
generator's metrics, paper Sec. 4.1; the synthetic world's stand-in for landmark and gaze nets).

A probe is a ridge regression fitted on TRAIN-identity latents, frame by frame:
    jaw_open              <- z_dyn   (the mouth reader, for lip_sync_corr)
    gaze_yaw, gaze_pitch  <- z_dyn   (for gaze_err_deg)
    distance              <- z_pose  (for distance_err)
All four live in one linear map of the whole motion vector (D = 6 + dyn_dim) whose weights are
zero outside each probe's inputs. The module also keeps the train latents' mean and std, the
normalisation the other evaluators share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vasa_lib.motion.latents import LatentSet
from vasa_lib.world.params import POSE_DIM, dyn_index, pose_index

PROBES: dict[str, str] = {"jaw_open": "dynamics", "gaze_yaw": "dynamics", "gaze_pitch": "dynamics",
                          "distance": "pose"}   # target -> which part of the latent reads it


@dataclass
class ProbeConfig:
    """motion_dim D = 6 + dyn_dim; alpha: ridge strength (times the number of frames)."""

    motion_dim: int = 38
    alpha: float = 1e-3

    def to_dict(self) -> dict:
        return asdict(self)


def ridge(x: torch.Tensor, y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge regression y ~ x @ w + b on standardised x (N, D) -> (N, K), in float64:
    weights (D, K) and bias (K,) for the raw x."""
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    a = F.pad((x - mean) / std, (0, 1), value=1.0).double()
    eye = torch.eye(a.shape[1], dtype=a.dtype, device=a.device)
    w = torch.linalg.solve(a.T @ a + alpha * len(a) * eye, a.T @ y.double())
    weight = w[:-1] / std[:, None].double()
    return weight.float(), (w[-1] - (mean.double() @ weight)).float()


def r2_per_column(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """R^2 of predictions (N, K) against the truth (N, K), per column: (K,)."""
    return 1 - ((pred - true) ** 2).sum(0) / ((true - true.mean(0)) ** 2).sum(0).clamp_min(1e-12)


class MotionProbes(nn.Module):
    """motion (..., D) -> probed factors (..., 4) in world units, in the order of PROBES."""

    config_class = ProbeConfig

    def __init__(self, config: ProbeConfig | None = None):
        super().__init__()
        self.config = config = config or ProbeConfig()
        self.register_buffer("weight", torch.zeros(config.motion_dim, len(PROBES)))
        self.register_buffer("bias", torch.zeros(len(PROBES)))
        self.register_buffer("motion_mean", torch.zeros(config.motion_dim))
        self.register_buffer("motion_std", torch.ones(config.motion_dim))

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        if motion.shape[-1] != self.config.motion_dim:
            raise ValueError(f"motion must be (..., {self.config.motion_dim}), got {tuple(motion.shape)}")
        return motion @ self.weight + self.bias

    def read(self, motion: torch.Tensor, name: str) -> torch.Tensor:
        """One probed factor: motion (..., D) -> (...)."""
        if name not in PROBES:
            raise ValueError(f"unknown probe {name!r}; choose one of {tuple(PROBES)}")
        return self(motion)[..., list(PROBES).index(name)]

    def normalize(self, motion: torch.Tensor) -> torch.Tensor:
        """Motion (..., D) -> zero mean, unit std per dimension (train latents' statistics)."""
        return (motion - self.motion_mean) / self.motion_std

    @torch.no_grad()
    def fit(self, latents: LatentSet) -> dict[str, float]:
        """Fit every probe on the frames of a (train) latent set; returns each probe's R^2 there."""
        mean, std = latents.stats()
        self.motion_mean.copy_(mean)
        self.motion_std.copy_(std.clamp_min(1e-6))
        truth = truth_of(latents)
        parts = {"pose": slice(0, POSE_DIM), "dynamics": slice(POSE_DIM, self.config.motion_dim)}
        self.weight.zero_()
        for k, part in enumerate(PROBES.values()):
            w, b = ridge(latents.motion[:, parts[part]], truth[:, [k]], self.config.alpha)
            self.weight[parts[part], k] = w[:, 0]
            self.bias[k] = b[0]
        return self.r2(latents)

    @torch.no_grad()
    def r2(self, latents: LatentSet) -> dict[str, float]:
        """R^2 of each probe on the frames of a latent set (how well its latents carry the factor)."""
        r2 = r2_per_column(self(latents.motion), truth_of(latents))
        return {name: round(float(v), 4) for name, v in zip(PROBES, r2)}


def truth_of(latents: LatentSet) -> torch.Tensor:
    """The world's true values of the probed factors, per frame: (F, 4) in the order of PROBES."""
    return torch.stack([latents.true_pose[:, pose_index(name)] if part == "pose"
                        else latents.true_dynamics[:, dyn_index(name)] for name, part in PROBES.items()], dim=-1)
