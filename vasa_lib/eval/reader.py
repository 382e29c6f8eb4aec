"""The parameter reader: image -> the world's pose and facial parameters (the synthetic world's
stand-in for the landmark, gaze and head-pose detectors that papers on real video grade with).

VASA-1 judges its faces with networks trained on real faces: SyncNet for the lips, a gaze
estimator, a head-pose estimator (paper Sec. 4.1). Our world knows every parameter of every
frame, so we train one network to read them back from pixels: a strided CNN over the image
(B, 3, H, W) whose flattened last map (position matters, for tx and ty) feeds an MLP that
predicts pose (6) and dynamics (11), standardised by their spread in the world's natural motion.

It is trained on renders of TRAIN-split people, with motion drawn from the world's clips (each
parameter replaced, with probability `uniform_share`, by a uniform draw over its whole range, so
that requests far from the natural motion are read too), and graded on TEST-split people before
anything is graded with it (`grade`). `vasa_lib.eval.face` reads decoded faces with it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vasa_lib.eval.probes import r2_per_column
from vasa_lib.world.clips import natural_motion
from vasa_lib.world.identity import IDENTITY_SPLITS, identity_from_id
from vasa_lib.world.params import DYNAMICS_LIMITS, DYNAMICS_NAMES, POSE_DIM, POSE_LIMITS, POSE_NAMES
from vasa_lib.world.renderer import render

NAMES: tuple[str, ...] = POSE_NAMES + DYNAMICS_NAMES
GROUPS: dict[str, tuple[str, ...]] = {
    "pose": POSE_NAMES,
    "mouth": ("jaw_open", "lip_spread", "lip_round", "lip_close", "tongue", "smile"),
    "eyes": ("eyelid",),
    "gaze": ("gaze_yaw", "gaze_pitch"),
    "brows": ("brow_raise", "brow_frown"),
}


@dataclass
class ReaderConfig:
    """size: image side; widths: channels of the stride-2 conv stages (the map after them is
    size / 2**len(widths) on a side); hidden: MLP width."""

    size: int = 128
    widths: tuple[int, ...] = (32, 48, 64, 96, 128)
    hidden: int = 256

    def __post_init__(self) -> None:
        self.widths = tuple(self.widths)

    def to_dict(self) -> dict:
        return asdict(self)


class ParameterReader(nn.Module):
    """Images (B, 3, size, size) in [0, 1] -> parameters (B, 17) in world units, in `NAMES` order."""

    config_class = ReaderConfig

    def __init__(self, config: ReaderConfig | None = None):
        super().__init__()
        self.config = c = config or ReaderConfig()
        layers, channels = [], 3
        for width in c.widths:
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.GroupNorm(8, width), nn.SiLU(),
                       nn.Conv2d(width, width, 3, padding=1), nn.GroupNorm(8, width), nn.SiLU()]
            channels = width
        self.features = nn.Sequential(*layers)
        side = c.size // 2 ** len(c.widths)
        self.head = nn.Sequential(nn.Linear(channels * side * side, c.hidden), nn.SiLU(),
                                  nn.Linear(c.hidden, len(NAMES)))
        self.register_buffer("mean", torch.zeros(len(NAMES)))
        self.register_buffer("std", torch.ones(len(NAMES)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Standardised parameters (B, 17)."""
        return self.head(rearrange(self.features(images * 2 - 1), "b c h w -> b (c h w)"))

    @torch.no_grad()
    def read(self, images: torch.Tensor, batch: int = 64) -> torch.Tensor:
        """Parameters (B, 17) in world units, read in batches."""
        out = torch.cat([self(images[i:i + batch]) for i in range(0, len(images), batch)])
        return out * self.std + self.mean


def group_r2(pred: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """R^2 of read parameters (N, 17) against the truth, averaged within each of `GROUPS`."""
    per_name = dict(zip(NAMES, r2_per_column(pred, true).tolist()))
    return {group: sum(per_name[n] for n in names) / len(names) for group, names in GROUPS.items()}


def draw_motion(pose: torch.Tensor, dynamics: torch.Tensor, uniform_share: float,
                generator: torch.Generator) -> torch.Tensor:
    """Natural motion (N, 6), (N, 11) with each value replaced, with probability uniform_share,
    by a uniform draw over its whole range: (N, 17)."""
    natural = torch.cat([pose, dynamics], -1)
    limits = torch.cat([POSE_LIMITS, DYNAMICS_LIMITS])
    uniform = limits[:, 0] + (limits[:, 1] - limits[:, 0]) * torch.rand(natural.shape, generator=generator)
    return torch.where(torch.rand(natural.shape, generator=generator) < uniform_share, uniform, natural)


def renders(ids: torch.Tensor, params: torch.Tensor, size: int) -> torch.Tensor:
    """Person ids (N,) rendered with parameters (N, 17): images (N, 3, size, size)."""
    return render(identity_from_id(ids.tolist()), params[:, :POSE_DIM], params[:, POSE_DIM:], size=size)


@torch.no_grad()
def grade(reader: ParameterReader, n: int = 512, n_clips: int = 40, seed: int = 2,
          cache_dir: str | None = None) -> dict[str, float]:
    """The reader's own grade: R^2 per group on renders of TEST-split people with natural test motion."""
    pose, dynamics = natural_motion("test", n, n_clips, seed, cache_dir)
    test_ids = torch.tensor(IDENTITY_SPLITS["test"])
    ids = test_ids[torch.randint(len(test_ids), (n,), generator=torch.Generator().manual_seed(seed))]
    true = torch.cat([pose, dynamics], -1)
    return group_r2(reader.read(renders(ids, true, reader.config.size)), true)


def train_reader(config: ReaderConfig, steps: int, batch: int = 64, lr: float = 2e-3, uniform_share: float = 0.3,
                 n_clips: int = 200, seed: int = 0, log_every: int = 0,
                 cache_dir: str | None = None) -> tuple[ParameterReader, dict]:
    """Fit the reader on renders of train-split people (see the module docstring); returns it
    (eval mode) and a report: its grade on test people, the final loss, seconds."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    pose, dynamics = natural_motion("train", 20_000, n_clips, seed, cache_dir)
    train_ids = torch.tensor(IDENTITY_SPLITS["train"])
    model = ParameterReader(config)
    natural = torch.cat([pose, dynamics], -1)
    model.mean.copy_(natural.mean(0))
    model.std.copy_(natural.std(0).clamp_min(1e-3))
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, lr, total_steps=steps, pct_start=0.1)
    start, losses = time.perf_counter(), []
    model.train()
    for step in range(1, steps + 1):
        pick = torch.randint(len(natural), (batch,), generator=generator)
        params = draw_motion(pose[pick], dynamics[pick], uniform_share, generator)
        ids = train_ids[torch.randint(len(train_ids), (batch,), generator=generator)]
        loss = F.smooth_l1_loss(model(renders(ids, params, config.size)), (params - model.mean) / model.std)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if log_every and step % log_every == 0:
            print(f"reader step {step} loss {sum(losses[-log_every:]) / log_every:.4f} "
                  f"| {time.perf_counter() - start:.0f} s", flush=True)
    model.eval()
    report = {"steps": steps, "batch": batch, "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
              "train_seconds": round(time.perf_counter() - start, 1),
              "grade_r2_test_people": {k: round(v, 4) for k, v in grade(model, cache_dir=cache_dir).items()}}
    return model, report
