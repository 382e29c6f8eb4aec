"""The motion diffusion transformer H(X_t, t, C) of VASA-1 (paper Sec. 3.2), in the style of DiT.

It denoises a window of W frames of motion vectors X (B, W, D), D = pose (6) + dynamics, and
predicts the clean window x0 directly (loss ||X0 - H(X_t, t, C)||^2). The conditions are
C = [X_pre, A_pre; A, g, d, e]. How each one enters:

- time-varying conditions are concatenated with the noisy input along time, as in the paper.
  The sequence is [K context tokens ; W current tokens] plus a learned position embedding:
    context token k = motion_in(X_pre[k]) + audio_in(A_pre[k])   (previous window's last K frames)
    current token w = motion_in(X_t[w])   + audio_in(A[w])       (noisy motion + its frame's audio)
  Attention is bidirectional over all K + W tokens; only the W current tokens are read out.
- clip-level controls and the diffusion step enter through adaLN-Zero modulation (DiT): the sum
  c = t_embed(t) + gaze_in(g) + distance_in(d) + emotion_in(e) sets a scale, shift and gate for
  every LayerNorm and residual branch (gates and the output layer start at zero). One global
  vector suits them: each holds for the whole window and should steer every frame.
  e is an index into `EMOTIONS` (B,) or a float vector of weights over them (B, 5), a blend of
  learned emotion embeddings (a one-hot vector equals the index; 0.5 happy + 0.5 surprised mixes).

Dropping a condition (for classifier-free guidance, `vasa_lib.motion.guidance`) swaps its
embedding for a learned null embedding, per sample, given a boolean mask: "audio" (A; its
tokens' audio term becomes `null_audio`), "gaze", "distance", "emotion" (their modulation terms
become null vectors) and "previous" (X_pre and A_pre together: the K context tokens become
`null_previous`). No previous window at all (`prev_motion=None`, the first window) is the same
as dropping a full-length (K = config.context) previous window, as training does.

Motion given to and returned by `forward` is normalised per dimension (`normalize`, with the
training data's mean and std kept as buffers); `vasa_lib.motion.generate` works in world units.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from vasa_lib.world.params import EMOTIONS

CONDITIONS: tuple[str, ...] = ("audio", "gaze", "distance", "emotion", "previous")
DropMask = dict[str, torch.Tensor]   # condition name -> (B,) bool, True = dropped; missing = kept
TIME_FREQS = 256                      # size of the sinusoidal timestep embedding (as DiT)


@dataclass
class MotionConfig:
    """Sizes of the motion transformer. Defaults fit a CPU; `MotionConfig.paper()` is VASA-1's
    8 layers x 512 wide x 8 heads. window W and context K are the longest windows it takes
    (positions are learned); the paper does not give its values, we use 1 s and 0.4 s.
    `diffusion=False` makes the regression baseline (no noisy input, no diffusion time)."""

    motion_dim: int = 17
    audio_dim: int = 128
    window: int = 25
    context: int = 10
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    diffusion_steps: int = 1000
    schedule: str = "cosine"
    diffusion: bool = True

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")
        if not 0 <= self.context <= self.window:
            raise ValueError(f"context K must be in 0 .. window W ({self.window}), got {self.context}")

    @classmethod
    def paper(cls, **overrides) -> MotionConfig:
        """The paper's size: 8 layers, width 512, 8 heads."""
        return cls(**{"width": 512, "depth": 8, "heads": 8, **overrides})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MotionConditions:
    """The conditions C of one batch of windows.

    audio (B, W, C_a); gaze (B, 2) (theta, phi); distance (B, 1); emotion (B,) long or (B, 5)
    float weights; prev_motion (B, K, D) normalised and prev_audio (B, K, C_a), or None for none.
    """

    audio: torch.Tensor
    gaze: torch.Tensor
    distance: torch.Tensor
    emotion: torch.Tensor
    prev_motion: torch.Tensor | None = None
    prev_audio: torch.Tensor | None = None

    def repeat(self, n: int) -> MotionConditions:
        """n copies stacked along the batch, copy-major: (B, ...) -> (n * B, ...)."""
        return MotionConditions(**{
            f.name: None if (v := getattr(self, f.name)) is None else repeat(v, "b ... -> (n b) ...", n=n)
            for f in fields(self)})


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of diffusion steps t (B,) -> (B, dim), as in DiT / the Transformer."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def mlp(d_in: int, width: int) -> nn.Sequential:
    """Two-layer embedding MLP (B, d_in) -> (B, width)."""
    return nn.Sequential(nn.Linear(d_in, width), nn.SiLU(), nn.Linear(width, width))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: x (B, N, C) * (1 + scale (B, C)) + shift (B, C)."""
    return x * (1 + scale[:, None]) + shift[:, None]


class Attention(nn.Module):
    """Multi-head self-attention over all tokens (B, N, C) -> (B, N, C)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        return self.proj(rearrange(F.scaled_dot_product_attention(q, k, v), "b h n d -> b n (h d)"))


class Block(nn.Module):
    """DiT block with adaLN-Zero: tokens (B, N, C) and conditioning vector c (B, C) -> (B, N, C)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=-1)
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1))
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FinalLayer(nn.Module):
    """adaLN then a linear read-out: (B, N, C), c (B, C) -> (B, N, D)."""

    def __init__(self, width: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.linear = nn.Linear(width, out_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.ada(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


def _null_where(dropped: torch.Tensor | None, null: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Per sample: `null` where dropped (B,) is True, else value (B, ...)."""
    if dropped is None:
        return value
    return torch.where(dropped.reshape(-1, *([1] * (value.ndim - 1))), null.to(value.dtype), value)


class MotionTransformer(nn.Module):
    """H(X_t, t, C): noisy motion windows (B, W, D), steps t (B,), conditions -> clean x0 (B, W, D)."""

    config_class = MotionConfig

    def __init__(self, config: MotionConfig):
        super().__init__()
        self.config = c = config
        w = c.width
        self.motion_in = nn.Linear(c.motion_dim, w)
        self.audio_in = nn.Sequential(nn.LayerNorm(c.audio_dim), nn.Linear(c.audio_dim, w))
        self.pos = nn.Parameter(torch.zeros(c.context + c.window, w))
        self.t_embed = mlp(TIME_FREQS, w) if c.diffusion else None
        self.gaze_in, self.distance_in = mlp(2, w), mlp(1, w)
        self.emotion_in = nn.Embedding(len(EMOTIONS), w)
        self.null_audio, self.null_gaze, self.null_distance, self.null_emotion = (
            nn.Parameter(torch.zeros(w)) for _ in range(4))
        self.null_previous = nn.Parameter(torch.zeros(c.context, w))
        self.blocks = nn.ModuleList(Block(w, c.heads, c.mlp_ratio) for _ in range(c.depth))
        self.final = FinalLayer(w, c.motion_dim)
        self.register_buffer("motion_mean", torch.zeros(c.motion_dim))
        self.register_buffer("motion_std", torch.ones(c.motion_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DiT's initialisation: Xavier linears, small embeddings, zero adaLN and read-out (adaLN-Zero)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for p in (self.pos, self.emotion_in.weight, self.null_audio, self.null_gaze, self.null_distance,
                  self.null_emotion, self.null_previous):
            nn.init.normal_(p, std=0.02)
        for layer in [b.ada[-1] for b in self.blocks] + [self.final.ada[-1], self.final.linear]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def set_motion_stats(self, mean: torch.Tensor, std: torch.Tensor, min_std: float = 1e-3) -> None:
        """Per-dimension mean and std (D,) of the training motion, used by normalize / denormalize."""
        self.motion_mean.copy_(torch.as_tensor(mean))
        self.motion_std.copy_(torch.as_tensor(std).clamp_min(min_std))

    def normalize(self, motion: torch.Tensor) -> torch.Tensor:
        """World units (..., D) -> zero mean, unit std per dimension."""
        return (motion - self.motion_mean) / self.motion_std

    def denormalize(self, motion: torch.Tensor) -> torch.Tensor:
        """Inverse of `normalize`."""
        return motion * self.motion_std + self.motion_mean

    def embed_controls(self, t: torch.Tensor | None, cond: MotionConditions, drop: DropMask) -> torch.Tensor:
        """The adaLN conditioning vector c (B, width) from t, g, d and e."""
        emotion = (cond.emotion.to(self.emotion_in.weight.dtype) @ self.emotion_in.weight
                   if cond.emotion.is_floating_point() else self.emotion_in(cond.emotion))
        c = (_null_where(drop.get("gaze"), self.null_gaze, self.gaze_in(cond.gaze))
             + _null_where(drop.get("distance"), self.null_distance, self.distance_in(cond.distance))
             + _null_where(drop.get("emotion"), self.null_emotion, emotion))
        return c if self.t_embed is None else c + self.t_embed(timestep_embedding(t, TIME_FREQS))

    def embed_tokens(self, x_t: torch.Tensor | None, cond: MotionConditions, drop: DropMask) -> torch.Tensor:
        """The token sequence (B, K + W, width): context tokens, then current tokens, plus positions.

        K = prev_motion's length (up to config.context; without one, config.context null tokens),
        W = audio's length.
        """
        w = cond.audio.shape[1]
        tokens = _null_where(drop.get("audio"), self.null_audio, self.audio_in(cond.audio))      # (B, W, C)
        if x_t is not None:
            tokens = tokens + self.motion_in(x_t)
        k0 = self.config.context                             # the first current token's position
        if cond.prev_motion is None:                         # no previous window: all K0 null tokens
            context = repeat(self.null_previous, "k c -> b k c", b=tokens.shape[0])
        else:
            k = cond.prev_motion.shape[1]
            context = self.motion_in(cond.prev_motion) + self.audio_in(cond.prev_audio)          # (B, K, C)
            context = _null_where(drop.get("previous"), self.null_previous[k0 - k:], context)
        tokens = torch.cat([context.to(tokens.dtype), tokens], dim=1)
        return tokens + self.pos[k0 - context.shape[1]: k0 + w]

    def check_inputs(self, x_t: torch.Tensor | None, t: torch.Tensor | None, cond: MotionConditions) -> None:
        """Raise ValueError for inputs that do not fit the model."""
        c = self.config
        if cond.audio.ndim != 3 or cond.audio.shape[-1] != c.audio_dim or not 1 <= cond.audio.shape[1] <= c.window:
            raise ValueError(f"audio must be (B, W <= {c.window}, {c.audio_dim}), got {tuple(cond.audio.shape)}")
        b, w = cond.audio.shape[:2]
        if c.diffusion != (x_t is not None and t is not None):
            raise ValueError("a diffusion model needs x_t and t; the regression baseline takes neither")
        if x_t is not None and x_t.shape != (b, w, c.motion_dim):
            raise ValueError(f"x_t must be {(b, w, c.motion_dim)} (B, W, D), got {tuple(x_t.shape)}")
        if cond.gaze.shape != (b, 2) or cond.distance.shape != (b, 1):
            raise ValueError(f"gaze must be ({b}, 2) and distance ({b}, 1), got {tuple(cond.gaze.shape)}, "
                             f"{tuple(cond.distance.shape)}")
        if cond.emotion.shape not in ((b,), (b, len(EMOTIONS))):
            raise ValueError(f"emotion must be ({b},) indices or ({b}, {len(EMOTIONS)}) weights, "
                             f"got {tuple(cond.emotion.shape)}")
        if cond.prev_motion is not None:
            k = cond.prev_motion.shape[1]
            if (cond.prev_motion.shape != (b, k, c.motion_dim) or k > c.context or cond.prev_audio is None
                    or cond.prev_audio.shape != (b, k, c.audio_dim)):
                raise ValueError(f"prev_motion must be (B, K <= {c.context}, {c.motion_dim}) with prev_audio "
                                 f"(B, K, {c.audio_dim})")

    def forward(self, x_t: torch.Tensor | None, t: torch.Tensor | None, cond: MotionConditions,
                drop: DropMask | None = None) -> torch.Tensor:
        """Predict the clean window x0 (B, W, D), normalised.

        x_t (B, W, D) noisy motion and t (B,) steps (None for the regression baseline);
        drop: condition name -> (B,) bool, True where that condition is replaced by its null.
        """
        drop = drop or {}
        unknown = set(drop) - set(CONDITIONS)
        if unknown:
            raise ValueError(f"unknown conditions {sorted(unknown)}; choose from {CONDITIONS}")
        self.check_inputs(x_t, t, cond)
        c = self.embed_controls(t, cond, drop)
        h = self.embed_tokens(x_t, cond, drop)
        for block in self.blocks:
            h = block(h, c)
        w = cond.audio.shape[1]
        return self.final(h[:, -w:], c)
