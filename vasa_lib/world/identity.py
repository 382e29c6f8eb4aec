"""Who is talking: the appearance parameters of a synthetic person.

An identity is a flat float vector of `IDENTITY_DIM` numbers with a named layout (like pose and
dynamics in `vasa_lib.world.params`), so that batches of people are plain tensors (B, IDENTITY_DIM)
that collate, index, move between devices and repeat like any other tensor. `unpack` gives the
named fields. Categorical fields (hair style, glasses) are stored as floats and rounded.

Identities are numbered. Number i always gives the same person (`identity_from_id`), and the
numbers are split into train, validation and held-out test people (`IDENTITY_SPLITS`), so a
model can be graded on faces it never saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

# field name -> (size, low, high); colours are RGB in [0, 1]
IDENTITY_FIELDS: dict[str, tuple[int, float, float]] = {
    "head_width": (1, 0.36, 0.46),    # semi-axis of the head ellipsoid, image units at distance 1
    "head_height": (1, 0.46, 0.56),
    "head_depth": (1, 0.38, 0.46),
    "jaw_width": (1, 0.7, 1.0),       # lower face width relative to the head
    "skin": (3, 0.0, 1.0),
    "hair_style": (1, 0, 4),          # 0 bald, 1 short, 2 long, 3 fringe, 4 bun
    "hair_color": (3, 0.0, 1.0),
    "eye_color": (3, 0.0, 1.0),
    "eye_spacing": (1, 0.13, 0.19),
    "eye_size": (1, 0.8, 1.2),
    "brow_thickness": (1, 0.6, 1.4),
    "nose_width": (1, 0.8, 1.25),
    "nose_length": (1, 0.8, 1.25),
    "lip_fullness": (1, 0.7, 1.3),
    "lip_color": (3, 0.0, 1.0),
    "glasses": (1, 0, 1),
    "glasses_color": (3, 0.0, 1.0),
    "shirt_color": (3, 0.0, 1.0),
    "background_top": (3, 0.0, 1.0),
    "background_bottom": (3, 0.0, 1.0),
    "light_yaw": (1, -0.8, 0.8),      # direction of the key light, radians
    "light_pitch": (1, -0.2, 0.8),
}

IDENTITY_SLICES: dict[str, slice] = {}
_offset = 0
for _name, (_size, _, _) in IDENTITY_FIELDS.items():
    IDENTITY_SLICES[_name] = slice(_offset, _offset + _size)
    _offset += _size
IDENTITY_DIM = _offset

HAIR_STYLES = ("bald", "short", "long", "fringe", "bun")
IDENTITY_SPLITS: dict[str, range] = {
    "train": range(0, 10_000),
    "val": range(10_000, 10_100),
    "test": range(10_100, 10_200),
}

_SKIN_TONES = np.array([  # light to dark
    [0.96, 0.80, 0.69], [0.92, 0.72, 0.58], [0.85, 0.64, 0.49], [0.74, 0.53, 0.38],
    [0.60, 0.42, 0.29], [0.45, 0.30, 0.20], [0.33, 0.22, 0.15],
])
_HAIR_COLORS = np.array([
    [0.08, 0.06, 0.05], [0.25, 0.16, 0.10], [0.45, 0.30, 0.17], [0.72, 0.55, 0.32],
    [0.55, 0.22, 0.10], [0.62, 0.62, 0.62], [0.88, 0.80, 0.60],
])
_EYE_COLORS = np.array([
    [0.30, 0.18, 0.10], [0.20, 0.35, 0.60], [0.25, 0.45, 0.30], [0.45, 0.40, 0.30], [0.15, 0.10, 0.08],
])


def split_of(identity_id: int) -> str:
    """Name of the split ('train', 'val' or 'test') that an identity number belongs to."""
    for name, ids in IDENTITY_SPLITS.items():
        if identity_id in ids:
            return name
    raise ValueError(f"identity id {identity_id} is outside every split {dict(IDENTITY_SPLITS)}")


def unpack(identity: torch.Tensor) -> dict[str, torch.Tensor]:
    """Named fields of a (..., IDENTITY_DIM) identity tensor, each (..., size)."""
    if identity.shape[-1] != IDENTITY_DIM:
        raise ValueError(f"identity must have shape (..., {IDENTITY_DIM}), got {tuple(identity.shape)}")
    return {name: identity[..., s] for name, s in IDENTITY_SLICES.items()}


def _jitter(rng: np.random.Generator, color: np.ndarray, amount: float) -> np.ndarray:
    return np.clip(color + rng.normal(0, amount, 3), 0.0, 1.0)


def sample_identity(rng: np.random.Generator) -> torch.Tensor:
    """Draw one new person from the world's distribution of faces. Returns (IDENTITY_DIM,)."""
    fields: dict[str, np.ndarray] = {}
    for name, (size, low, high) in IDENTITY_FIELDS.items():
        fields[name] = rng.uniform(low, high, size)
    fields["skin"] = _jitter(rng, _SKIN_TONES[rng.integers(len(_SKIN_TONES))], 0.03)
    fields["hair_style"] = np.array([float(rng.choice(5, p=[0.1, 0.3, 0.25, 0.2, 0.15]))])
    fields["hair_color"] = _jitter(rng, _HAIR_COLORS[rng.integers(len(_HAIR_COLORS))], 0.04)
    fields["eye_color"] = _jitter(rng, _EYE_COLORS[rng.integers(len(_EYE_COLORS))], 0.04)
    fields["lip_color"] = np.clip(fields["skin"] * np.array([0.95, 0.62, 0.62]) + rng.normal(0, 0.03, 3), 0, 1)
    fields["glasses"] = np.array([float(rng.random() < 0.25)])
    fields["glasses_color"] = rng.uniform(0.0, 0.5, 3) * rng.uniform(0.3, 1.0)
    hue = rng.uniform(0.1, 0.9, 3)
    fields["background_top"] = hue
    fields["background_bottom"] = np.clip(hue * rng.uniform(0.5, 0.9), 0, 1)
    vec = np.concatenate([fields[name] for name in IDENTITY_FIELDS])
    return torch.tensor(vec, dtype=torch.float32)


def identity_from_id(ids: int | Sequence[int]) -> torch.Tensor:
    """The person with number `ids` (B ids -> (B, IDENTITY_DIM); one id -> (IDENTITY_DIM,)).

    Deterministic: the same number gives the same face on every machine.
    """
    if isinstance(ids, (int, np.integer)):
        if ids < 0:
            raise ValueError(f"identity id must be >= 0, got {ids}")
        return sample_identity(np.random.default_rng([int(ids), 0x1D]))
    return torch.stack([identity_from_id(int(i)) for i in ids]) if len(ids) else torch.zeros(0, IDENTITY_DIM)
