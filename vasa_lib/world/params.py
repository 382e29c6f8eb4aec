"""The hidden factors of the synthetic world: names, units and valid ranges.

Every frame of a talking head is described by two vectors, the same split VASA-1 makes in its
latent space (paper Sec. 3.1): a head pose (6 numbers, the rigid part) and facial dynamics
(11 numbers, everything that moves on the face). A person is described by an `Identity`
(see `vasa_lib.world.identity`). The models never see these labels; the labels grade them.

Conventions (image space, weak-perspective camera looking down -z):
- x to the right of the image, y up, angles in radians.
- yaw > 0 turns the face towards the image's right (the nose tip moves right);
  pitch > 0 tilts the face up (the nose tip moves up); roll > 0 tilts the head
  counter-clockwise in the image.
- tx, ty shift the head in normalised image units (the image spans [-1, 1]).
- distance scales the head by 1 / distance (1 = nominal size).

The camera frames the world with a `Framing`: the image shows world x in
[-1/zoom, 1/zoom] and world y in centre_y + [-1/zoom, 1/zoom]. "wide" (zoom 1) shows the head
and shoulders, the face a third of the frame; "portrait" frames the face the way VoxCeleb and HDTF
crops do: at distance 1, brow to chin spans about half the frame height. Models record the
framing they were trained at in their config.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

POSE_NAMES: tuple[str, ...] = ("yaw", "pitch", "roll", "tx", "ty", "distance")
POSE_RANGES: dict[str, tuple[float, float]] = {
    "yaw": (-0.9, 0.9),
    "pitch": (-0.6, 0.6),
    "roll": (-0.5, 0.5),
    "tx": (-0.4, 0.4),
    "ty": (-0.4, 0.4),
    "distance": (0.6, 1.8),
}

DYNAMICS_NAMES: tuple[str, ...] = (
    "jaw_open",     # 0 closed .. 1 wide open
    "lip_spread",   # -1 pursed .. 1 wide (as in /i/)
    "lip_round",    # 0 .. 1 rounded and protruded (as in /u/)
    "lip_close",    # 0 .. 1 lips pressed together (as in /p b m/)
    "tongue",       # 0 .. 1 teeth and tongue visible (as in /th l/)
    "smile",        # -1 corners down .. 1 corners up
    "eyelid",       # -0.4 wide open .. 0 rest .. 1 closed (blink)
    "gaze_yaw",     # eye rotation relative to the head, > 0 looks to the image's right
    "gaze_pitch",   # > 0 looks up
    "brow_raise",   # -1 lowered .. 1 raised
    "brow_frown",   # 0 .. 1 inner ends pulled down and together
)
DYNAMICS_RANGES: dict[str, tuple[float, float]] = {
    "jaw_open": (0.0, 1.0),
    "lip_spread": (-1.0, 1.0),
    "lip_round": (0.0, 1.0),
    "lip_close": (0.0, 1.0),
    "tongue": (0.0, 1.0),
    "smile": (-1.0, 1.0),
    "eyelid": (-0.4, 1.0),
    "gaze_yaw": (-0.6, 0.6),
    "gaze_pitch": (-0.45, 0.45),
    "brow_raise": (-1.0, 1.0),
    "brow_frown": (0.0, 1.0),
}

POSE_DIM = len(POSE_NAMES)
DYNAMICS_DIM = len(DYNAMICS_NAMES)
NEUTRAL_POSE = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
NEUTRAL_DYNAMICS = torch.zeros(DYNAMICS_DIM)



@dataclass(frozen=True)
class Framing:
    """The camera: image = zoom * (world - (0, centre_y)), in normalised image units."""

    zoom: float
    centre_y: float


FRAMINGS: dict[str, Framing] = {
    "wide": Framing(zoom=1.0, centre_y=0.0),
    "portrait": Framing(zoom=1.45, centre_y=-0.12),
}
DEFAULT_FRAMING = "wide"      # the shipped models' framing; "portrait" once the face model v2 ships


def framing(name: str) -> Framing:
    """The `Framing` called `name` (a key of FRAMINGS); ValueError names the choices."""
    if name not in FRAMINGS:
        raise ValueError(f"unknown framing {name!r}; choose one of {sorted(FRAMINGS)}")
    return FRAMINGS[name]


EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "surprised")

FPS = 25
SAMPLE_RATE = 16_000


def pose_index(name: str) -> int:
    """Position of a pose parameter in the pose vector."""
    return POSE_NAMES.index(name)


def dyn_index(name: str) -> int:
    """Position of a dynamics parameter in the dynamics vector."""
    return DYNAMICS_NAMES.index(name)


def _ranges_tensor(names: tuple[str, ...], ranges: dict[str, tuple[float, float]]) -> torch.Tensor:
    return torch.tensor([ranges[n] for n in names])


POSE_LIMITS = _ranges_tensor(POSE_NAMES, POSE_RANGES)            # (6, 2) low, high
DYNAMICS_LIMITS = _ranges_tensor(DYNAMICS_NAMES, DYNAMICS_RANGES)  # (11, 2)


def clamp_params(values: torch.Tensor, kind: str) -> torch.Tensor:
    """A (..., D) pose or dynamics tensor with each value clamped into its range (generated motion
    can step slightly outside the world's ranges)."""
    limits = {"pose": POSE_LIMITS, "dynamics": DYNAMICS_LIMITS}[kind].to(values.device)
    return values.clamp(limits[:, 0], limits[:, 1])


def check_params(values: torch.Tensor, kind: str) -> torch.Tensor:
    """Validate a (..., D) pose or dynamics tensor: right size, finite, inside its ranges.

    Raises ValueError naming the offending parameter. Returns the tensor as float32.
    """
    names, limits = {"pose": (POSE_NAMES, POSE_LIMITS), "dynamics": (DYNAMICS_NAMES, DYNAMICS_LIMITS)}[kind]
    values = torch.as_tensor(values, dtype=torch.float32)
    if values.ndim == 0 or values.shape[-1] != len(names):
        raise ValueError(f"{kind} must have shape (..., {len(names)}) ({', '.join(names)}), got {tuple(values.shape)}")
    flat = values.reshape(-1, len(names))
    bad = ~torch.isfinite(flat)
    if bad.any():
        name = names[int(bad.any(0).nonzero()[0])]
        raise ValueError(f"{kind} parameter '{name}' is not finite (NaN or inf)")
    tol = 1e-4
    low, high = limits[:, 0].to(values.device), limits[:, 1].to(values.device)
    out = (flat < low - tol) | (flat > high + tol)
    if out.any():
        i = int(out.any(0).nonzero()[0])
        v = flat[:, i][out[:, i]][0].item()
        raise ValueError(f"{kind} parameter '{names[i]}' = {v:.3g} is outside its range [{low[i]:.3g}, {high[i]:.3g}]")
    return values
