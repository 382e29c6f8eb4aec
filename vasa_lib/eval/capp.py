"""CAPP: a CLIP-style contrastive audio-pose model, for VASA-1's CAPP score (paper Sec. 4.1).

VASA-1 trains "a CLIP-like model" on pairs of 3-second audio and head pose sequences and scores
generated motion by the similarity of the two embeddings: how well the head motion fits the
speech (rhythm, stress, pauses), whatever its exact path. Ours: two `TemporalEncoder`s map
75 frames (3 s) of log-mel stacks (75, 320) and of head pose z_pose (75, 6) to unit vectors,
trained with the symmetric InfoNCE loss of CLIP on TRAIN-identity latents. The pose enters
normalised (train statistics) and centred on its window mean, so the score is about motion,
not where the head rests or how far it is. Clips shorter than 3 s are padded and masked.
Each encoder pools its per-frame features over `segments` spans of the window (0.2 s each by
default) rather than over the whole of it, so the embeddings keep the timing of stresses and
nods: pooled over the whole window, they can only match a voice's loudness with a head's
amount of motion, which says more about the person than about the speech.

    capp = mean over windows of cos(audio embedding, pose embedding)      (higher: better)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vasa_lib.audio.mel import FRAME_FEATURE_DIM
from vasa_lib.eval.windows import TemporalEncoder, fit, info_nce, masked_mean, random_windows, sliding_windows
from vasa_lib.motion.latents import LatentSet
from vasa_lib.world.params import POSE_DIM


@dataclass
class CappConfig:
    """frames: window length (75 = 3 s); segments: time spans each encoder pools over (frames
    must be a multiple); width, layers: the encoders; embed: embedding size."""

    frames: int = 75
    segments: int = 15
    width: int = 64
    layers: int = 3
    embed: int = 64
    temperature: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


class Capp(nn.Module):
    """Audio (B, L, 320) and pose (B, L, 6) windows with a mask (B, L) -> unit embeddings (B, embed)."""

    config_class = CappConfig

    def __init__(self, config: CappConfig | None = None):
        super().__init__()
        self.config = c = config or CappConfig()
        if c.frames % c.segments:
            raise ValueError(f"CAPP frames {c.frames} must be a multiple of segments {c.segments}")
        self.audio = TemporalEncoder(FRAME_FEATURE_DIM, c.width, c.embed, c.layers, c.segments)
        self.pose = TemporalEncoder(POSE_DIM, c.width, c.embed, c.layers, c.segments)
        self.register_buffer("pose_std", torch.ones(POSE_DIM))

    def embed_audio(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio(mel, mask), dim=-1)

    def embed_pose(self, pose: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        centred = (pose - masked_mean(pose, mask)[:, None]) / self.pose_std
        return F.normalize(self.pose(centred, mask), dim=-1)

    @torch.no_grad()
    def score(self, mel: torch.Tensor, motion: torch.Tensor) -> float:
        """CAPP of one clip: mel (T, 320), motion (T, D) (z_pose first); windows of `frames`
        at a stride of a third of a window, cosine similarities averaged."""
        if len(mel) != len(motion):
            raise ValueError(f"mel and motion need the same length, got {len(mel)} and {len(motion)}")
        f = self.config.frames
        a, mask = sliding_windows(mel, f, f // 3)
        p, _ = sliding_windows(motion[:, :POSE_DIM], f, f // 3)
        return float((self.embed_audio(a, mask) * self.embed_pose(p, mask)).sum(-1).mean())


def train_capp(latents: LatentSet, config: CappConfig, steps: int, batch: int = 64, lr: float = 2e-3,
               seed: int = 0, log_every: int = 0) -> tuple[Capp, list[float]]:
    """Fit CAPP on a (train) latent set; returns it (eval mode) and its losses."""
    model = Capp(config)
    model.pose_std.copy_(latents.pose.std(0).clamp_min(1e-6))
    sequences = [latents.split("mel"), [m[:, :POSE_DIM] for m in latents.split("motion")]]

    def loss(generator: torch.Generator) -> torch.Tensor:
        (mel, pose), mask, _, _ = random_windows(sequences, config.frames, batch, generator)
        return info_nce(model.embed_audio(mel, mask), model.embed_pose(pose, mask), config.temperature)

    return model, fit(model, loss, steps, lr, seed, log_every)
