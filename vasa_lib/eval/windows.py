"""Fixed-length windows of motion sequences and a small training loop, shared by the learned
evaluators of the motion generator (`syncnet`, `capp`, `emotion`; paper Sec. 4.1 metrics).

Sequences are lists of per-clip tensors (T_i, C). A window of length L starting at s holds frames
s .. s + L - 1; a clip shorter than L is padded by repeating its last frame, and a mask
(L,) marks its real frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def crop(sequence: torch.Tensor, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames start .. start + length - 1 of a (T, C) sequence, padded by repeating the last frame:
    ((length, C), mask (length,) bool, True on real frames)."""
    part = sequence[start: start + length]
    n = len(part)
    if n == 0:
        raise ValueError(f"window start {start} is past the sequence's end ({len(sequence)} frames)")
    if n < length:
        part = rearrange(F.pad(rearrange(part, "t c -> 1 c t"), (0, length - n), mode="replicate"), "1 c t -> t c")
    return part, torch.arange(length) < n


def random_windows(sequences: Sequence[Sequence[torch.Tensor]], length: int, n: int,
                   generator: torch.Generator) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    """n windows at random clips and positions, cut the same way from each list of sequences
    (e.g. mel and motion of the same clips): ([(n, length, C_k)], mask (n, length), clip (n,), start (n,))."""
    n_clips = len(sequences[0])
    clips = torch.randint(0, n_clips, (n,), generator=generator)
    lengths = torch.tensor([len(s) for s in sequences[0]])[clips]
    starts = (torch.rand(n, generator=generator) * (lengths - length + 1).clamp_min(1)).long()
    cut = [[crop(seqs[c], s, length) for c, s in zip(clips.tolist(), starts.tolist())] for seqs in sequences]
    return [torch.stack([w for w, _ in parts]) for parts in cut], torch.stack([m for _, m in cut[0]]), clips, starts


def sliding_windows(sequence: torch.Tensor, length: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of a (T, C) sequence at starts 0, stride, ... (at least one): ((n, length, C), mask (n, length))."""
    starts = range(0, max(len(sequence) - length, 0) + 1, stride)
    windows, masks = zip(*(crop(sequence, s, length) for s in starts))
    return torch.stack(windows), torch.stack(masks)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP) of unit embeddings a (N, E), b (M >= N, E): a[i] matches b[i];
    the other rows of b (and of a) are negatives."""
    logits = a @ b.T / temperature                                   # (N, M)
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits[:, : len(a)].T, target))


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over time of x (B, T, C) where mask (B, T) is True: (B, C)."""
    m = mask.to(x.dtype)[..., None]
    return (x * m).sum(1) / m.sum(1).clamp_min(1)


class TemporalEncoder(nn.Module):
    """Per-frame features (B, T, C_in) -> one embedding (B, E): a linear input layer, residual
    1D convolutions over time (kernel 5), masked mean pooling, a linear head.

    With `segments` S > 1 the mean is taken over S equal spans of time (T must be a multiple of
    S) and the S means are concatenated before the head: the embedding then keeps *when* things
    happen, which one mean over the window throws away (CAPP needs it: a nod on a stressed
    syllable matches that syllable only at its time)."""

    def __init__(self, in_dim: int, width: int, out_dim: int, layers: int, segments: int = 1):
        super().__init__()
        self.segments = segments
        self.input = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, width))
        self.convs = nn.ModuleList(nn.Conv1d(width, width, 5, padding=2) for _ in range(layers))
        self.head = nn.Sequential(nn.LayerNorm(segments * width), nn.Linear(segments * width, out_dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame features (B, T, width)."""
        h = self.input(x)
        for conv in self.convs:
            h = h + rearrange(conv(F.gelu(rearrange(h, "b t c -> b c t"))), "b c t -> b t c")
        return h

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None else mask
        if x.shape[1] % self.segments:
            raise ValueError(f"{x.shape[1]} frames do not split into {self.segments} equal segments")
        split = "b (s l) ... -> (b s) l ..."
        means = masked_mean(rearrange(self.features(x), split, s=self.segments),
                            rearrange(mask, split, s=self.segments))
        return self.head(rearrange(means, "(b s) c -> b (s c)", s=self.segments))


def fit(model: nn.Module, loss_fn: Callable[[torch.Generator], torch.Tensor], steps: int, lr: float,
        seed: int, log_every: int = 0) -> list[float]:
    """AdamW with cosine decay for `steps` steps on loss_fn(generator) (which draws its batch);
    reproducible for a seed. Returns the losses."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    model.train()
    for step in range(steps):
        loss = loss_fn(generator)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"  {type(model).__name__} step {step + 1} loss {sum(losses[-log_every:]) / log_every:.4f}",
                  flush=True)
    model.eval()
    return losses
