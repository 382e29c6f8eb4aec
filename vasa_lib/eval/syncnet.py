"""A SyncNet-style audio-mouth sync model on motion latents, for the Sc / Sd metrics of VASA-1
(paper Sec. 4.1; Chung & Zisserman, "Out of time", 2016).

SyncNet embeds 0.2 s of audio and 0.2 s of mouth video; in sync, the two embeddings are close.
Ours sees the same 5 video frames (200 ms) as the face model's dynamics z_dyn (5, dyn_dim) and
as log-mel stacks (5, 320); two small encoders map each to a unit vector. It is trained
contrastively (InfoNCE) on TRAIN-identity latents: the matching audio is the positive; mouths
of other clips and of the same clip shifted by 2 .. max_offset frames are the negatives.

Scoring a clip (as syncnet_python does): for every offset o in -N .. N, the mean over frames of
the distance ||a_t - m_{t+o}|| between the audio and mouth embeddings gives a curve d(o);
    sync_dist (Sd) = min_o d(o)                  (lower: better sync)
    sync_conf (Sc) = median_o d(o) - min_o d(o)  (higher: a clear, confident minimum)
and the best offset argmin_o d(o) (0 for perfect sync). Distances of unit vectors lie in [0, 2],
so the values are on another scale than the paper's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vasa_lib.audio.mel import FRAME_FEATURE_DIM
from vasa_lib.eval.windows import fit, info_nce
from vasa_lib.motion.latents import LatentSet
from vasa_lib.world.params import POSE_DIM


@dataclass
class SyncNetConfig:
    """dyn_dim: z_dyn size; frames: window (5 = 200 ms, as SyncNet); embed: embedding size;
    max_offset: offsets searched when scoring (+-N frames) and the largest shift used as a negative."""

    dyn_dim: int = 32
    frames: int = 5
    width: int = 256
    embed: int = 64
    max_offset: int = 8
    temperature: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


def branch(in_dim: int, width: int, embed: int) -> nn.Sequential:
    """MLP over a flattened window (B, in_dim) -> (B, embed)."""
    return nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, width), nn.GELU(), nn.Linear(width, width),
                         nn.GELU(), nn.Linear(width, embed))


class SyncNet(nn.Module):
    """Audio (B, F, 320) and mouth dynamics (B, F, dyn_dim) windows -> unit embeddings (B, embed)."""

    config_class = SyncNetConfig

    def __init__(self, config: SyncNetConfig | None = None):
        super().__init__()
        self.config = c = config or SyncNetConfig()
        self.audio = branch(c.frames * FRAME_FEATURE_DIM, c.width, c.embed)
        self.mouth = branch(c.frames * c.dyn_dim, c.width, c.embed)
        self.register_buffer("dyn_mean", torch.zeros(c.dyn_dim))
        self.register_buffer("dyn_std", torch.ones(c.dyn_dim))

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio(rearrange(mel, "b f c -> b (f c)")), dim=-1)

    def embed_mouth(self, dynamics: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mouth(rearrange((dynamics - self.dyn_mean) / self.dyn_std, "b f c -> b (f c)")), dim=-1)

    def frame_embeddings(self, mel: torch.Tensor, dynamics: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of every window of a clip: mel (T, 320), dynamics (T, dyn_dim) ->
        audio (T - F + 1, E), mouth (T - F + 1, E); row t covers frames t .. t + F - 1."""
        f = self.config.frames
        if len(mel) != len(dynamics) or len(mel) < f:
            raise ValueError(f"mel and dynamics need the same length >= {f} frames, got {len(mel)}, {len(dynamics)}")
        a = mel.unfold(0, f, 1)                                 # (T - F + 1, 320, F)
        m = dynamics.unfold(0, f, 1)
        return (self.embed_audio(rearrange(a, "n c f -> n f c")), self.embed_mouth(rearrange(m, "n c f -> n f c")))

    @torch.no_grad()
    def distance_curve(self, mel: torch.Tensor, dynamics: torch.Tensor, max_offset: int | None = None) -> torch.Tensor:
        """d(o) for o = -N .. N (2N + 1,): mean distance between audio window t and mouth window t + o;
        N = max_offset, by default the config's."""
        a, m = self.frame_embeddings(mel, dynamics)
        n, big = max_offset or self.config.max_offset, len(a)
        if big <= 2 * n:
            raise ValueError(f"a clip needs more than {2 * n + self.config.frames - 1} frames to search +-{n} offsets")
        t = torch.arange(n, big - n)                            # frames with every offset inside the clip
        return torch.stack([(a[t] - m[t + o]).norm(dim=-1).mean() for o in range(-n, n + 1)])

    def scores(self, mel: torch.Tensor, motion: torch.Tensor) -> dict[str, float]:
        """sync_conf, sync_dist and the best offset of one clip: mel (T, 320), motion (T, D)."""
        d = self.distance_curve(mel, motion[:, POSE_DIM:])
        best = int(d.argmin())
        return {"sync_conf": float(d.median() - d.min()), "sync_dist": float(d.min()),
                "offset": best - self.config.max_offset}


def train_syncnet(latents: LatentSet, config: SyncNetConfig, steps: int, batch: int = 128, lr: float = 2e-3,
                  seed: int = 0, log_every: int = 0) -> tuple[SyncNet, list[float]]:
    """Fit a SyncNet on a (train) latent set; returns it (eval mode) and its losses."""
    model = SyncNet(config)
    mean, std = latents.stats()
    model.dyn_mean.copy_(mean[POSE_DIM:])
    model.dyn_std.copy_(std[POSE_DIM:].clamp_min(1e-6))
    mel, dyn = latents.mel, latents.dynamics
    f, n = config.frames, config.max_offset
    # window starts t with t - N .. t + N + F - 1 inside one clip
    starts = torch.cat([torch.arange(s + n, e - n - f + 1) for s, e in zip(latents.offsets[:-1], latents.offsets[1:])])
    if len(starts) == 0:
        raise ValueError(f"no clip is longer than {2 * n + f} frames")
    frames = torch.arange(f)

    def loss(generator: torch.Generator) -> torch.Tensor:
        t = starts[torch.randint(0, len(starts), (batch,), generator=generator)]
        shift = torch.randint(2, n + 1, (batch,), generator=generator)
        shift = shift * (torch.randint(0, 2, (batch,), generator=generator) * 2 - 1)
        a = model.embed_audio(mel[t[:, None] + frames])
        m = model.embed_mouth(dyn[torch.cat([t, t + shift])[:, None] + frames])   # aligned, then shifted
        return info_nce(a, m, config.temperature)

    return model, fit(model, loss, steps, lr, seed, log_every)
