"""The renderer of the synthetic world: identity + head pose + facial dynamics -> RGB frames.

A small analytic ray caster written as batched tensor arithmetic, fast enough to render the
training data on the fly (about a thousand 128 x 128 frames a second on two CPU cores).

Camera. Weak perspective: image coordinates x (right) and y (up) both span [-1, 1]; each pixel
casts a ray parallel to the z axis (z towards the viewer). Pixel rows run from top to bottom. The
framing (`params.Framing`) maps a pixel's image coordinates to the world: x / zoom and
centre_y + y / zoom; every painter works in world units, with zoom * size / 2 pixels per unit.

Geometry. The head has its own frame (u right, v up, w out of the face) in head units at
distance 1, posed by world = c + R @ local / distance with c = (tx, ty, 0) and
R = Rz(roll) Ry(yaw) Rx(-pitch): yaw > 0 turns the nose to the image's right, pitch > 0 up,
roll > 0 turns the head counter-clockwise (the conventions of `params`). The head is the
intersection of two ellipsoids: the cranium (semi-axes head_width, head_height, head_depth) and
a tall, deep "jaw" ellipsoid that trims the lower corners of the face (narrower for a small
`jaw_width`, lowered with `jaw_open`). The nose is a third, small tilted ellipsoid.
For an ellipsoid, the map p = T (x, y, z) + t0 from a world point to the coordinates in which it
is the unit sphere is affine, so |p|^2 = 1 is a quadratic equation in the depth z whose
coefficients are polynomials of the pixel's (x, y). Its discriminant, a quadratic polynomial of
(x, y), is positive where the ray hits; the larger root is the visible front surface. All
coefficients are computed per frame and broadcast over a (1, 1, W) row of x and a (1, H, 1)
column of y.

Painting. The visible surface point is mapped back to head-local (u, v). Every facial feature
(eye whites, iris and pupil, eyelids and lashes, brows, lips, mouth cavity, teeth, tongue, ears,
hair cap, glasses) is a soft region given by a signed distance in (u, v) or in the cranium's
unit-sphere coordinates, so features live on the 3D head: they move, foreshorten and hide with
the pose. The nose is painted where its ellipsoid is nearer than the face (and may stick out of
the cheek's outline). Hair behind the head, the outer halves of the ears, a bun, the neck, the
shoulders and the background are flat image-space layers behind the head.

Shading. Lambert diffuse from a key light (identity `light_yaw`, `light_pitch`) plus ambient
light and a soft specular highlight. The normal of an ellipsoid is approximated by its
unit-sphere coordinate p, which makes n . l an affine function of (x, y, z).

Anti-aliasing and compositing. Each region turns a signed distance d (positive inside) into the
coverage clamp(0.5 + d / pixel, 0, 1), a one-pixel ramp. For an ellipsoid's silhouette, d is the
discriminant divided by its typical gradient norm on the outline. Layers are composited back to
front with alpha blending (`lerp`): the features onto the head's albedo, which is then shaded and
blended over the background layers with the head's coverage. With `parts=True`, every pixel is
also labelled with the last layer that covers more than half of it.

Speed. Per-frame constants (rotations, quadric and field coefficients, feature sizes) are
computed once for the whole batch. Frames are then painted in chunks of 32 (at 128 x 128),
mostly with in-place operations, so that the intermediates stay in cache; the head is painted
only on the pixel rows where some frame of the chunk shows it, the facial features only where
they can be. Frames are sorted so that a chunk shares optional layers (glasses, a bun) and the
height of the face; the output is in the input's order. On Linux, glibc is asked to keep freed
memory and the output is put on huge pages: page faults would otherwise cost more than painting.
"""

from __future__ import annotations

import ctypes
import functools
import math
import sys

import torch
from einops import rearrange
from torch import Tensor

from vasa_lib.world.identity import HAIR_STYLES, IDENTITY_DIM, unpack
from vasa_lib.world.params import DEFAULT_FRAMING, DYNAMICS_NAMES, POSE_NAMES, Framing, check_params
from vasa_lib.world.params import framing as get_framing

PARTS: tuple[str, ...] = (
    "background", "skin", "hair", "eye_white", "iris", "lips", "mouth_cavity", "teeth",
    "tongue", "nose", "brow", "glasses", "neck", "shirt",
)
PART_INDEX: dict[str, int] = {name: i for i, name in enumerate(PARTS)}

AMBIENT, DIFFUSE, SPECULAR = 0.5, 0.55, 0.12
BALD, LONG, BUN = (HAIR_STYLES.index(style) for style in ("bald", "long", "bun"))
EYE_Y = 0.1                                                       # height of the eyes on the head

# Hair cap on the cranium, in its unit-sphere coordinates p: hair where
# p_v - kw p_w + ku p_u + ku2 p_u^2 > h0. One row per hair style (identity.HAIR_STYLES).
_HAIRLINE = torch.tensor([
    # h0    kw    ku    ku2
    [9.0,  0.0,  0.0,  0.0],    # bald: never
    [0.15, 0.6,  0.0,  0.1],    # short
    [0.2,  0.5,  0.0,  1.2],    # long, framing the face
    [-0.3, 0.85, 0.1,  0.1],    # fringe swept to one side
    [0.2,  0.6,  0.0,  0.05],   # bun
])
_DARK = (0.08, 0.05, 0.05)
_SCLERA = (0.93, 0.91, 0.88)
_PUPIL = (0.02, 0.02, 0.02)
_WHITE = (1.0, 1.0, 1.0)
_CAVITY = (0.22, 0.05, 0.06)
_TEETH = (0.95, 0.93, 0.85)
_TONGUE = (0.82, 0.33, 0.36)


# ----------------------------------------------------------------------------------------------
# The public function


@torch.no_grad()
def render(identity: Tensor, pose: Tensor, dynamics: Tensor, size: int = 128,
           parts: bool = False, chunk: int = 32,
           framing: str = DEFAULT_FRAMING) -> Tensor | tuple[Tensor, Tensor]:
    """Render talking-head frames.

    identity: (B, IDENTITY_DIM), or one person (IDENTITY_DIM,) or (1, IDENTITY_DIM) for all frames.
    pose: (B, 6) yaw, pitch, roll, tx, ty, distance. dynamics: (B, 11), see `params`.
    size: output resolution (size x size pixels), >= 16.
    parts: also return the part labels.
    chunk: frames painted together (at 128 x 128; scaled down for larger images).
    framing: the camera's framing, a key of `params.FRAMINGS` ("wide" or "portrait").
    Returns images (B, 3, size, size) float32 in [0, 1] on pose's device, and with parts=True
    also labels (B, size, size) int64 indexing `PARTS`.
    """
    identity, pose, dynamics = _check_inputs(identity, pose, dynamics, size)
    camera = get_framing(framing)
    n, device = len(pose), pose.device
    if device.type == "cpu":
        _keep_freed_memory()
    named = _named(identity, pose, dynamics)
    k = _constants(named, size, camera)
    # Chunks of similar frames paint fewer pixels: frames with the same optional layers go
    # together (see _render_chunk), ordered by the height of their face. Undone at the end.
    group = named["glasses"].view(-1) * 8 + named["hair_style"].view(-1)
    order = torch.argsort(group * 4 * size + k["face_rows"].mean(-1))
    k = {name: value[order] for name, value in k.items()}
    coords = ((torch.arange(size, device=device, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0) / camera.zoom
    x, y = coords.view(1, 1, size), camera.centre_y - coords.view(1, size, 1)   # pixel centres in the world
    images = _empty((n, 3, size, size), torch.float32, device)
    labels = _empty((n, size, size), torch.long, device) if parts else None
    chunk = max(1, chunk * 128 * 128 // (size * size))
    canvas = _Canvas(torch.empty(min(n, chunk), 3, size, size, device=device),
                     torch.empty(min(n, chunk), size, size, device=device) if parts else None)
    for start in range(0, n, chunk):
        frames = order[start:start + chunk]
        part = canvas.first(len(frames))
        _render_chunk(part, {name: value[start:start + chunk] for name, value in k.items()}, x, y)
        images.index_copy_(0, frames, part.rgb.clamp_(0.0, 1.0))
        if parts:
            labels.index_copy_(0, frames, part.labels.long())
    return (images, labels) if parts else images


# Memory on Linux CPUs. Page faults, not arithmetic, would dominate: glibc returns the freed
# temporaries of every chunk to the kernel, and a fresh output is faulted in 4 KiB at a time.


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


@functools.cache
def _keep_freed_memory() -> None:
    """Let glibc keep freed image-sized buffers for reuse (raise its mmap and trim thresholds,
    once, process-wide), so that the next chunk need not page-fault them in again."""
    if (libc := _libc()) is not None:
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 256 << 20)


def _empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """torch.empty, asking the kernel for transparent huge pages for a large CPU tensor."""
    out = torch.empty(shape, dtype=dtype, device=device)
    libc, huge = _libc(), 2 << 20
    if device.type == "cpu" and libc is not None and out.nbytes >= 2 * huge:
        start = -(-out.data_ptr() // huge) * huge                # the whole 2 MiB pages inside
        end = (out.data_ptr() + out.nbytes) // huge * huge
        madv_hugepage = 14
        libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), madv_hugepage)
    return out


def _check_inputs(identity: Tensor, pose: Tensor, dynamics: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Validate and broadcast the inputs; raise ValueError naming the problem."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16 (pixels per side), got {size!r}")
    pose = check_params(pose, "pose")
    dynamics = check_params(dynamics, "dynamics").to(pose.device)
    if pose.ndim != 2 or dynamics.ndim != 2:
        raise ValueError(f"pose and dynamics must be batches (B, 6) and (B, 11), got "
                         f"{tuple(pose.shape)} and {tuple(dynamics.shape)}")
    if len(pose) != len(dynamics):
        raise ValueError(f"pose and dynamics batch sizes differ: {len(pose)} vs {len(dynamics)}")
    identity = torch.as_tensor(identity, dtype=torch.float32).to(pose.device)
    if identity.ndim == 1:
        identity = identity.unsqueeze(0)
    if identity.ndim != 2 or identity.shape[-1] != IDENTITY_DIM:
        raise ValueError(f"identity must have shape (B, {IDENTITY_DIM}) or ({IDENTITY_DIM},), "
                         f"got {tuple(identity.shape)}")
    if not torch.isfinite(identity).all():
        raise ValueError("identity contains non-finite values (NaN or inf)")
    if len(identity) == 1:
        identity = identity.expand(len(pose), -1)
    if len(identity) != len(pose):
        raise ValueError(f"identity batch size {len(identity)} does not match pose batch size {len(pose)}")
    return identity, pose, dynamics


def _named(identity: Tensor, pose: Tensor, dynamics: Tensor) -> dict[str, Tensor]:
    """Every named parameter per frame: scalars (B, 1, 1), colours (B, 3, 1, 1)."""
    named = {name: pose[:, i].reshape(-1, 1, 1) for i, name in enumerate(POSE_NAMES)}
    named |= {name: dynamics[:, i].reshape(-1, 1, 1) for i, name in enumerate(DYNAMICS_NAMES)}
    for name, value in unpack(identity).items():
        named[name] = value.reshape(-1, 3, 1, 1) if value.shape[-1] == 3 else value.reshape(-1, 1, 1)
    named["hair_style"] = named["hair_style"].round().clamp(0, len(HAIR_STYLES) - 1)
    named["glasses"] = (named["glasses"] >= 0.5).float()
    return named


# ----------------------------------------------------------------------------------------------
# Small helpers


def _coverage_(sd: Tensor, scale: Tensor | float, bias: Tensor | float = 0.5) -> Tensor:
    """In place: coverage clamp(bias + sd * scale, 0, 1) of a signed distance map (b, H, W).

    With scale = pixels per unit and bias = 0.5 this is a one-pixel anti-aliased edge;
    bias = 0.5 + offset * scale moves the edge outwards by `offset`."""
    return sd.mul_(scale).add_(bias).clamp_(0.0, 1.0)


def _coverage(sd: Tensor, scale: Tensor | float, bias: Tensor | float = 0.5) -> Tensor:
    """`_coverage_` into a new tensor, leaving sd as it is."""
    return _coverage_(sd * scale, 1.0, bias)


def _rgb(color: tuple[float, float, float], like: Tensor) -> Tensor:
    """A constant colour as a (1, 3, 1, 1) tensor on the device of `like`."""
    return torch.tensor(color, device=like.device).view(1, 3, 1, 1)


def _scalars(t: Tensor) -> Tensor:
    """Columns of a (b, n) tensor as n per-frame scalars: (n, b, 1, 1)."""
    return rearrange(t, "b n -> n b 1 1")


def _rotation(yaw: Tensor, pitch: Tensor, roll: Tensor) -> Tensor:
    """Head-to-world rotation Rz(roll) Ry(yaw) Rx(-pitch): (B,) angles -> (B, 3, 3)."""
    cy, sy, cp, sp, cr, sr = yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin(), roll.cos(), roll.sin()
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    rz = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).view(-1, 3, 3)
    rx = torch.stack([one, zero, zero, zero, cp, sp, zero, -sp, cp], -1).view(-1, 3, 3)
    return rz @ ry @ rx


class _Canvas:
    """An RGB buffer (b, 3, H, W), with optional float part labels (b, H, W), painted back to front."""

    def __init__(self, rgb: Tensor, labels: Tensor | None):
        self.rgb, self.labels = rgb, labels

    def first(self, n: int) -> _Canvas:
        """The canvas of the first n frames (a view)."""
        return _Canvas(self.rgb[:n], self.labels[:n] if self.labels is not None else None)

    def rows(self, rows: slice) -> _Canvas:
        """The canvas of some pixel rows (a view)."""
        return _Canvas(self.rgb[:, :, rows], self.labels[:, rows] if self.labels is not None else None)

    def over(self, color: Tensor, alpha: Tensor, part: str | Tensor | None) -> None:
        """Blend `color` (broadcastable to (b, 3, H, W)) over the canvas with coverage `alpha`
        (b, H, W); label the pixels it covers by more than half as `part` (a name or a map)."""
        self.rgb.lerp_(color, alpha.unsqueeze(1))
        if self.labels is not None and part is not None:
            value = PART_INDEX[part] if isinstance(part, str) else part
            inside = (alpha - 0.5).sign_().clamp_(min=0.0)        # float arithmetic beats `where`
            self.labels.addcmul_(inside, value - self.labels)


# ----------------------------------------------------------------------------------------------
# Ellipsoids and affine fields: per-frame coefficients, per-pixel evaluation


def _ellipsoid(head_to_world: Tensor, centre: Tensor, distance: Tensor, q0: Tensor, axes: Tensor,
               tilt: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """Pose an ellipsoid given in the head frame: centre q0 (B, 3), semi-axes (B, 3), turned by
    `tilt` radians about the head's u axis. Returns T (B, 3, 3) and t0 (B, 3) with
    p = T @ (x, y, z) + t0 on the unit sphere for world points on the ellipsoid, and the rotation
    (B, 3, 3) from the ellipsoid's axes to the world."""
    c, s = math.cos(tilt), math.sin(tilt)
    tilt_rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], device=q0.device)
    to_axes = tilt_rot.T / axes.unsqueeze(-1)                     # head frame -> unit sphere
    T = to_axes @ head_to_world.transpose(1, 2) * distance.view(-1, 1, 1)
    t0 = -(T @ centre.unsqueeze(-1)).squeeze(-1) - (to_axes @ q0.unsqueeze(-1)).squeeze(-1)
    return T, t0, head_to_world @ tilt_rot


def _quadric(T: Tensor, t0: Tensor, pixels: float) -> Tensor:
    """Per-frame coefficients (B, 10) to ray cast the ellipsoid |T (x, y, z) + t0| = 1 (`_cast`).

    Along the ray (x, y, z), |X x + Y y + G z + Z0|^2 = 1 reads A z^2 + 2 b z + c = 0 with b
    affine and c quadratic in (x, y). The discriminant D = b^2 - A c is a quadratic polynomial of
    (x, y), positive inside the silhouette. Dividing it by its typical gradient norm on the
    outline, 2 sqrt(D_max) det(M)^(1/4) where D = D_max - (r - r0)^T M (r - r0), turns it into a
    signed distance; scaled to pixels and shifted by 0.5, clamping gives the coverage. Columns:
    the six coefficients of that map (xx, xy, yy, x, y, 1), then (f, zx, zy, z0) for the depth
    z = f sqrt(max(map - 0.5, 0)) - zx x - zy y - z0.
    """
    X, Y, G, Z0 = T[..., 0], T[..., 1], T[..., 2], t0
    dot = lambda p, q: (p * q).sum(-1)  # noqa: E731
    A, bx, by, b0 = dot(G, G), dot(G, X), dot(G, Y), dot(G, Z0)
    kxx, kyy, kxy = bx * bx - A * dot(X, X), by * by - A * dot(Y, Y), 2 * (bx * by - A * dot(X, Y))
    kx, ky = 2 * (bx * b0 - A * dot(X, Z0)), 2 * (by * b0 - A * dot(Y, Z0))
    k0 = b0 * b0 - A * (dot(Z0, Z0) - 1)
    det = 4 * kxx * kyy - kxy * kxy                               # of the gradient's 2 x 2 system
    x0, y0 = (kxy * ky - 2 * kyy * kx) / det, (kxy * kx - 2 * kxx * ky) / det
    peak = (k0 + 0.5 * (kx * x0 + ky * y0)).clamp(min=1e-12)      # D at the silhouette's centre
    scale = pixels / (2 * peak.sqrt() * (det / 4).clamp(min=1e-12) ** 0.25)
    coverage = torch.stack([kxx, kxy, kyy, kx, ky, k0], -1) * scale.unsqueeze(-1)
    coverage[:, 5] += 0.5
    depth = torch.stack([1 / (A * scale.sqrt()), bx / A, by / A, b0 / A], -1)
    return torch.cat([coverage, depth], -1)


def _cast(quadric: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Ray cast pixels x (1, 1, W), y (1, H, 1) at an ellipsoid given by `_quadric` (b, 10).
    Returns the depth of its front surface (b, H, W) (meaningless where the ray misses) and the
    anti-aliased coverage of its silhouette (b, H, W)."""
    qxx, qxy, qyy, qx, qy, q0, f, zx, zy, z0 = _scalars(quadric)
    d = torch.add((qxx * x + qx) * x + q0, (qyy * y + qy) * y).addcmul_(qxy * x, y)
    cover = d.clamp(0.0, 1.0)
    z = d.sub_(0.5).clamp_(min=1e-12).sqrt_().mul_(f).sub_(zx * x + z0).sub_(zy * y)  # sqrt(0) is slow
    return z, cover


def _field(k: Tensor, k0: Tensor) -> Tensor:
    """An affine function of the world point, k . (x, y, z) + k0, as (B, 4) coefficients."""
    return torch.cat([k, k0.unsqueeze(-1)], -1)


def _eval(field: Tensor, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
    """Evaluate a `_field` (b, 4) at the pixels x (1, 1, W), y (1, H, 1) of depth z (b, H, W)."""
    kx, ky, kz, k0 = _scalars(field)
    return torch.add(kx * x + k0, ky * y).addcmul_(z, kz)


def _facing(T: Tensor, t0: Tensor, rot: Tensor, direction: Tensor, gain: float = 1.0,
            offset: float = 0.0) -> Tensor:
    """The field gain * (n . direction) + offset on an ellipsoid, with the normal n approximated by
    the unit-sphere coordinate p = T (x, y, z) + t0 (exact for a sphere); direction (B, 3)."""
    d = (rot.transpose(1, 2) @ direction.unsqueeze(-1)) * gain    # in the ellipsoid's axes
    return _field((T.transpose(1, 2) @ d).squeeze(-1), (t0 * d.squeeze(-1)).sum(-1) + offset)


# ----------------------------------------------------------------------------------------------
# Per-frame constants (computed once for the whole batch)


def _constants(p: dict[str, Tensor], size: int, camera: Framing) -> dict[str, Tensor]:
    """Everything the painters need per frame, from the named parameters `p` (see `_named`) and
    the camera: the parameters themselves, (B, 1, 1) sizes and positions, and (B, n) coefficient
    rows."""
    flat = {name: value.view(-1) for name, value in p.items() if value.shape[1:] == (1, 1)}
    a, bh, c, distance = flat["head_width"], flat["head_height"], flat["head_depth"], flat["distance"]
    zero = torch.zeros_like(a)
    head_to_world = _rotation(flat["yaw"], flat["pitch"], flat["roll"])
    centre = torch.stack([flat["tx"], flat["ty"], zero], -1)
    pixels = size / 2.0 * camera.zoom                             # pixels per world unit
    light = torch.stack([flat["light_yaw"].sin() * flat["light_pitch"].cos(), flat["light_pitch"].sin(),
                         flat["light_yaw"].cos() * flat["light_pitch"].cos()], -1)
    half = torch.nn.functional.normalize(light + torch.tensor([0.0, 0.0, 1.0], device=a.device), dim=-1)
    k = dict(p)
    k["px"] = pixels * p["distance"]                              # pixels per head unit
    k["scale"] = 1.0 / p["distance"]                              # head units -> image units
    k["pixels"] = torch.full_like(p["distance"], pixels)

    # the head: cranium intersected with the jaw ellipsoid; an open jaw lowers the chin
    drop = 0.05 * flat["jaw_open"]
    cranium = _ellipsoid(head_to_world, centre, distance, torch.stack([zero, -0.5 * drop, zero], -1),
                         torch.stack([a, bh + 0.5 * drop, c], -1))
    jaw = _ellipsoid(head_to_world, centre, distance, torch.stack([zero, 0.45 * bh - drop, -0.3 * c], -1),
                     torch.stack([a * (1.25 * flat["jaw_width"] + 0.2), 1.5 * bh, 2.2 * c], -1))
    k["cranium"], k["jaw"] = _quadric(*cranium[:2], pixels), _quadric(*jaw[:2], pixels)
    k["head_light"] = _facing(*cranium, light, DIFFUSE)
    k["head_gloss"] = _facing(*cranium, half, 5.0, -4.0)          # (n . h - 0.8) / 0.2
    world_to_local = head_to_world.transpose(1, 2) * distance.view(-1, 1, 1)
    origin = -(world_to_local @ centre.unsqueeze(-1)).squeeze(-1)
    k["u"], k["v"] = _field(world_to_local[:, 0], origin[:, 0]), _field(world_to_local[:, 1], origin[:, 1])

    # hair cap: the hairline field of the cranium, pre-scaled to a coverage
    h0, kw, ku, ku2 = _HAIRLINE.to(a.device)[flat["hair_style"].long()].unbind(-1)
    T, t0 = cranium[0], cranium[1]
    sharp = 0.7 * bh * k["px"].view(-1)
    k["hairline"] = _field((T[:, 1] - kw[:, None] * T[:, 2] + ku[:, None] * T[:, 0]) * sharp[:, None],
                           (t0[:, 1] - kw * t0[:, 2] + ku * t0[:, 0] - h0) * sharp + 0.5)
    k["hairline_u2"] = (ku2 * sharp / (a * a)).view(-1, 1, 1)
    # ears on the sides of the cranium: an ellipse in its unit coordinates (p_v, p_w)
    k["ear_pv"] = _field(T[:, 1] / 0.22, (t0[:, 1] + 0.05) / 0.22)
    k["ear_pw"] = _field(T[:, 2] / 0.15, (t0[:, 2] + 0.1) / 0.15)
    k["ear_sharp"] = 0.5 * 0.15 * p["head_depth"] * k["px"]

    # the nose: a tilted ellipsoid, its bottom forwards; nostril fields in its unit coordinates
    nose = _ellipsoid(head_to_world, centre, distance, torch.stack([zero, zero - 0.04, 0.95 * c - 0.01], -1),
                      torch.stack([0.045 * flat["nose_width"], 0.13 * flat["nose_length"], zero + 0.055], -1),
                      tilt=-0.4)
    k["nose"] = _quadric(*nose[:2], pixels)
    k["nose_light"], k["nose_gloss"] = _facing(*nose, light, DIFFUSE), _facing(*nose, half, 5.0, -4.0)
    k["nostril_u"] = _field(nose[0][:, 0] / 0.22, nose[1][:, 0] / 0.22)
    k["nostril_v"] = _field(nose[0][:, 1] / 0.14, (nose[1][:, 1] + 0.8) / 0.14)
    k["nostril_sharp"] = 0.5 * 0.14 * 0.13 * p["nose_length"] * k["px"]

    # pixel rows that can show the head, and the facial features, from boxes in the head frame
    rows = functools.partial(_rows, head_to_world, centre, distance, size, camera)
    k["head_rows"] = rows(torch.stack([-1.1 * a, -bh - 0.06, -c], -1),
                          torch.stack([1.1 * a, bh + 0.01, c + 0.1], -1))
    k["face_rows"] = rows(torch.stack([-1.1 * a, zero - 0.5, -0.3 * c], -1),
                          torch.stack([1.1 * a, zero + 0.3, c + 0.1], -1))

    light_in_head = (head_to_world.transpose(1, 2) @ light.unsqueeze(-1)).view(-1, 3, 1, 1)
    k |= _eye_constants(p, k["px"], light_in_head)
    k |= _brow_constants(p)
    k |= _mouth_constants(p, k["px"])
    k |= _body_constants(p, head_to_world)
    return k


def _rows(head_to_world: Tensor, centre: Tensor, distance: Tensor, size: int, camera: Framing, low: Tensor,
          high: Tensor) -> Tensor:
    """First and last pixel row (B, 2) that can show a box of the head frame, given by its corners
    low and high (B, 3), with a margin for the anti-aliasing."""
    corners = torch.stack([torch.stack([u, v, w], -1) for u in (low[:, 0], high[:, 0])
                           for v in (low[:, 1], high[:, 1]) for w in (low[:, 2], high[:, 2])], 1)  # (B, 8, 3)
    y = centre[:, 1:2] + (corners @ head_to_world[:, 1].unsqueeze(-1)).squeeze(-1) / distance.unsqueeze(-1)
    rows = (1.0 - (y - camera.centre_y) * camera.zoom) * (size / 2.0)
    return torch.stack([rows.amin(1) - 2.0, rows.amax(1) + 2.0], -1)


def _project(head_to_world: Tensor, p: dict[str, Tensor], u: float | Tensor, v: float | Tensor,
             w: float | Tensor) -> tuple[Tensor, Tensor]:
    """Image position (x, y), each (B, 1, 1), of the head-local point (u, v, w) given in units of
    the head's semi-axes (width, height, depth); u, v, w are floats or (B, 1, 1)."""
    q = torch.cat([u * p["head_width"], v * p["head_height"], w * p["head_depth"]], -1).view(-1, 3, 1)
    xy = (head_to_world @ q).view(-1, 3, 1, 1)[:, :2] / p["distance"].unsqueeze(1)
    return p["tx"] + xy[:, 0], p["ty"] + xy[:, 1]


# ----------------------------------------------------------------------------------------------
# Painting a chunk of frames


def _render_chunk(canvas: _Canvas, k: dict[str, Tensor], x: Tensor, y: Tensor) -> None:
    """Paint a chunk of b frames into `canvas`; k: their constants (`_constants`), x (1, 1, W)
    and y (1, H, 1) the pixel centres."""
    top, bottom = k["background_top"], k["background_bottom"]
    canvas.rgb.copy_(torch.lerp(top, bottom, (0.5 - 0.5 * y).unsqueeze(1)).expand_as(canvas.rgb))
    if canvas.labels is not None:
        canvas.labels.fill_(PART_INDEX["background"])
    _paint_body(canvas, k, x, y)

    # The head is painted on its own canvas, only on the rows where some frame shows it, and the
    # facial features only on the rows where they can be (views with the suffix _f).
    head = _band(k["head_rows"], 0, y.shape[1])
    face_rows = _band(k["face_rows"], head.start, head.stop)
    rows_f = slice(face_rows.start - head.start, face_rows.stop - head.start)
    y, y_f = y[:, head], y[:, face_rows]
    z, cover = _cast(k["cranium"], x, y)                         # the head's surface: the nearer entry
    z_jaw, cover_jaw = _cast(k["jaw"], x, y)                     # into both cranium and jaw ellipsoid
    torch.minimum(z, z_jaw, out=z)
    torch.minimum(cover, cover_jaw, out=cover)
    del z_jaw, cover_jaw
    face = _Canvas(k["skin"].expand(-1, 3, *z.shape[1:]).clone(),
                   torch.full_like(z, PART_INDEX["skin"]) if canvas.labels is not None else None)
    lit, gloss = _eval(k["head_light"], x, y, z), _eval(k["head_gloss"], x, y, z)
    u = _eval(k["u"], x, y, z)
    face_f, z_f, u_f, cover_f = face.rows(rows_f), z[:, rows_f], u[:, rows_f], cover[:, rows_f]
    v_f = _eval(k["v"], x, y_f, z_f)
    _paint_eyes(face_f, k, u_f, v_f)
    _paint_brows(face_f, k, u_f, v_f)
    _paint_mouth(face_f, k, u_f, v_f)
    _paint_ears(face_f, k, x, y_f, z_f)
    _paint_hair_cap(face, k, x, y, z, u)
    nose_cover = _paint_nose(face_f, k, x, y_f, z_f, lit[:, rows_f], gloss[:, rows_f])
    torch.maximum(cover_f, nose_cover, out=cover_f)              # the nose may stick out
    if k["glasses"].any():
        _paint_glasses(face_f, k, u_f, v_f)

    # shade (ambient + diffuse, plus a specular highlight) and put the head over the rest
    shade = lit.clamp_(min=0.0).add_(AMBIENT)
    highlight = gloss.clamp_(0.0, 1.0).square_()
    face.rgb.mul_(shade.unsqueeze(1)).add_(highlight.unsqueeze(1), alpha=SPECULAR)
    canvas.rows(head).over(face.rgb, cover, face.labels)


def _band(rows: Tensor, first: int, stop: int) -> slice:
    """The pixel rows that cover the rows [top, bottom] (b, 2) of every frame, within [first, stop)."""
    start = min(max(int(rows[:, 0].min()), first), stop)
    return slice(start, max(min(int(rows[:, 1].max()) + 1, stop), start))


# ----------------------------------------------------------------------------------------------
# Layers behind the head: shoulders, hair, neck, bun (flat, in image space)


def _body_constants(p: dict[str, Tensor], head_to_world: Tensor) -> dict[str, Tensor]:
    s, a, bh = 1.0 / p["distance"], p["head_width"], p["head_height"]
    long = (p["hair_style"] == LONG).float()
    hx, hy = _project(head_to_world, p, 0.0, 0.05 - 0.35 * long, -0.3)
    ax, ay = (1.05 + 0.13 * long) * a * s, (1.03 + 0.44 * long) * bh * s
    cos_r, sin_r = p["roll"].cos(), p["roll"].sin()
    bun_x, bun_y = _project(head_to_world, p, 0.0, 0.8, -0.55)
    ear_x, ear_y = _project(head_to_world, p, 0.0, -0.05, -0.1)   # midway between the ears
    ear_w, ear_h = 0.05 * s, 0.2 * bh * s
    return {
        "shoulder_w": 1.25 * s, "shoulder_h": 0.75 * s, "shoulder_y": p["ty"] - 1.4 * s,
        # hair behind the head: an ellipse turned with the roll, in units of its semi-axes
        "hair_across": _axis(hx, hy, cos_r, sin_r, ax), "hair_along": _axis(hx, hy, -sin_r, cos_r, ay),
        "hair_ax": ax, "hair_ay": ay, "hair_cut": 0.85 * long - 0.2,
        "neck_w": 0.45 * a * p["jaw_width"].sqrt() * s,
        "bun_x": bun_x, "bun_y": bun_y, "bun_r": 0.17 * s,
        # the ears' outer halves, sticking out of the silhouette, mirrored across the head
        "ear_across": _axis(ear_x, ear_y, cos_r, sin_r, ear_w), "ear_along": _axis(ear_x, ear_y, -sin_r, cos_r, ear_h),
        "ear_offset": a * s * p["yaw"].cos() / ear_w, "ear_w": ear_w,
    }


def _axis(x0: Tensor, y0: Tensor, dx: Tensor, dy: Tensor, unit: Tensor) -> Tensor:
    """An image-space coordinate ((x, y) - (x0, y0)) . (dx, dy) / unit as (B, 3) coefficients
    (of x, of y, constant); arguments (B, 1, 1)."""
    return torch.cat([dx / unit, dy / unit, -(x0 * dx + y0 * dy) / unit], -1).view(-1, 3)


def _eval_axis(axis: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Evaluate an `_axis` (b, 3) at the pixels x (1, 1, W), y (1, H, 1): (b, H, W)."""
    kx, ky, k0 = _scalars(axis)
    return torch.add(kx * x + k0, ky * y)


def _paint_body(canvas: _Canvas, k: dict[str, Tensor], x: Tensor, y: Tensor) -> None:
    """Shoulders, hair behind the head, neck and bun."""
    pixels, s = k["pixels"], k["scale"]
    dx, dy = x - k["tx"], y - k["ty"]                             # (b, 1, W), (b, H, 1)

    # shoulders: the top of a wide ellipse, continued straight down, darker downwards
    h = k["shoulder_h"]
    r2 = torch.add((dx / k["shoulder_w"]).square_(), ((y - k["shoulder_y"]).clamp(min=0.0) / h).square_())
    shirt = k["shirt_color"] * (1.0 + 0.3 * (dy + 0.65 * s) / s).clamp(0.6, 1.0).unsqueeze(1)
    canvas.over(shirt, _coverage_(r2, -0.5 * h * pixels, 0.5 + 0.5 * h * pixels), "shirt")

    # ears (their parts beyond the head's outline; `_paint_ears` paints them on the head)
    across = _eval_axis(k["ear_across"], x, y).abs_().sub_(k["ear_offset"]).square_()
    r2 = across.add_(_eval_axis(k["ear_along"], x, y).square_())
    w_px = 0.5 * k["ear_w"] * pixels
    canvas.over(k["skin"] * 0.8, _coverage_(r2, -w_px, 0.5 + w_px), "skin")

    # hair behind the head (all styles but bald); long hair reaches the shoulders
    across, along = _eval_axis(k["hair_across"], x, y), _eval_axis(k["hair_along"], x, y)
    cut = (along + k["hair_cut"]).mul_(k["hair_ay"])             # short hair ends above the ears
    ellipse = across.square_().addcmul_(along, along).sub_(1.0).mul_(-0.5 * k["hair_ax"])
    hair = _coverage_(torch.minimum(ellipse, cut, out=ellipse), pixels)
    canvas.over(k["hair_color"] * 0.75, hair.mul_(k["hair_style"] != BALD), "hair")

    # neck: a vertical band from under the chin down to a U-shaped collar
    nw = k["neck_w"]
    collar = k["ty"] - 0.78 * s + 1.2 * dx * dx / s               # (b, 1, W)
    neck = torch.minimum(y - collar, nw - dx.abs())
    torch.minimum(neck, -0.2 * s - dy, out=neck)
    neck_color = k["skin"] * (0.55 + 0.3 * (1.0 - (dx / nw).square()).clamp(min=0.0)).unsqueeze(1)
    canvas.over(neck_color, _coverage_(neck, pixels), "neck")

    # bun: a shaded sphere at the top back of the head
    if (k["hair_style"] == BUN).any():
        r = k["bun_r"]
        ex, ey = (x - k["bun_x"]) / r, (y - k["bun_y"]) / r
        r2 = torch.add(ex * ex, ey * ey)
        shade = torch.add(ex * (0.3 * k["light_yaw"].sin()) + 0.75, ey * (0.3 * k["light_pitch"].sin()))
        color = k["hair_color"] * shade.sub_(r2, alpha=0.25).unsqueeze(1)
        cover = _coverage_(r2, -0.5 * r * pixels, 0.5 + 0.5 * r * pixels).mul_(k["hair_style"] == BUN)
        canvas.over(color, cover, "hair")


# ----------------------------------------------------------------------------------------------
# Features painted on the head: signed distances in head-local units (u, v)


def _eye_constants(p: dict[str, Tensor], px: Tensor, light_in_head: Tensor) -> dict[str, Tensor]:
    size, lid = p["eye_size"], p["eyelid"]
    ew, eh, iris, pupil, catch = 0.075 * size, 0.034 * size, 0.031 * size, 0.014 * size, 0.009 * size
    cx = 0.35 * iris * light_in_head[:, 0]                        # catchlight: towards the light
    cy = 0.35 * iris * light_in_head[:, 1] + 0.3 * iris
    return {
        "eye_inv_w": 1.0 / ew, "eye_h": eh,
        "lid": 1.0 - 2.0 * (0.2 + 0.85 * lid),                   # upper lid height / almond height
        "eye_open": ((1.0 - lid) * 50.0).clamp(max=1.0),          # exactly 0 when closed
        "gaze_u": 0.07 * p["gaze_yaw"], "gaze_v": 0.05 * p["gaze_pitch"],
        # discs as coverages of the squared distance r2: clamp(0.5 + (r^2 - r2) px / 2r)
        "iris_k": px / (2 * iris), "iris_b": 0.5 + iris * px / 2,
        "pupil_k": px / (2 * pupil), "pupil_b": 0.5 + pupil * px / 2,
        "catch_x": -2 * cx, "catch_y": -2 * cy, "catch_k": px / (2 * catch),
        "catch_b": 0.5 + (catch * catch - cx * cx - cy * cy) * px / (2 * catch),
    }


def _paint_eyes(face: _Canvas, k: dict[str, Tensor], u: Tensor, v: Tensor) -> None:
    """Almond eye whites with lashes and an upper eyelid; iris, pupil and catchlight moved by the gaze."""
    px = k["px"]
    side = u.sign()
    du = u.abs().sub_(k["eye_spacing"])                          # mirrored: both eyes at once
    dv = v - EYE_Y
    h = (du * k["eye_inv_w"]).square_().mul_(-k["eye_h"]).add_(k["eye_h"])  # almond: eh (1 - t^2)
    almond = dv.abs().neg_().add_(h)                             # > 0 inside the almond
    lid = (h * k["lid"]).sub_(dv)                                # > 0 below the upper lid
    visible = torch.minimum(almond, lid, out=almond)
    face.over(_rgb(_DARK, u), _coverage(visible, px, 0.5 + 0.006 * px), None)  # lashes around
    white = _coverage_(visible, px).mul_(k["eye_open"])
    face.over(_rgb(_SCLERA, u), white, "eye_white")
    ix, iy = side.mul_(du).sub_(k["gaze_u"]), dv.sub_(k["gaze_v"])
    r2 = (ix * ix).addcmul_(iy, iy)
    face.over(k["eye_color"], _coverage(r2, -k["iris_k"], k["iris_b"]).mul_(white), "iris")
    face.over(_rgb(_PUPIL, u), _coverage(r2, -k["pupil_k"], k["pupil_b"]).mul_(white), "iris")
    spot = r2.addcmul_(ix, k["catch_x"]).addcmul_(iy, k["catch_y"])  # squared distance to the spot
    face.over(_rgb(_WHITE, u), _coverage_(spot, -k["catch_k"], k["catch_b"]).mul_(white), None)


def _brow_constants(p: dict[str, Tensor]) -> dict[str, Tensor]:
    frown, half = p["brow_frown"], 0.013 * p["brow_thickness"]
    return {
        "brow_x": p["eye_spacing"] - 0.015 * frown,               # frowning pulls them together
        "brow_y": EYE_Y + 0.094 + 0.03 * p["brow_raise"] - 0.008 * frown,   # top of the arch
        "brow_tilt": 0.035 * frown,                               # and the inner ends down
        "brow_half": half, "brow_taper": -0.25 * half,
    }


def _paint_brows(face: _Canvas, k: dict[str, Tensor], u: Tensor, v: Tensor) -> None:
    """Arched brows, thick at the inner end and tapering outwards; centre line
    v = brow_y - 0.014 t^2 + tilt t for t in [-1 (inner), 1 (outer)]."""
    t = u.abs().sub_(k["brow_x"]).mul_(1.0 / 0.08)
    t2 = t * t
    off = (v - k["brow_y"]).add_(t2, alpha=0.014).addcmul_(t, -k["brow_tilt"]).abs_()
    half = k["brow_half"]
    brow = t2.mul_(-half).add_(half).addcmul_(t, k["brow_taper"]).sub_(off)   # half (1 - t^2) - 0.25 half t
    face.over(k["hair_color"] * 0.4, _coverage_(brow, k["px"]), "brow")


def _mouth_constants(p: dict[str, Tensor], px: Tensor) -> dict[str, Tensor]:
    rnd, tongue = p["lip_round"], p["tongue"]
    mw = 0.095 * (1 + 0.22 * p["lip_spread"] - 0.3 * rnd + 0.06 * p["smile"])  # opening half width
    opening = (0.13 * p["jaw_open"] + 0.015 * tongue + 0.02 * rnd) * (1 - p["lip_close"])
    hh = 0.5 * opening
    fullness = p["lip_fullness"] * (1 + 0.4 * rnd)
    upper, lower = hh + 0.022 * fullness, hh + 0.03 * fullness
    q = (mw / (mw + 0.014)) ** 2                                  # the lips reach past the opening
    th = 0.35 * hh + 0.012 * tongue + 1e-4                        # tongue half height
    return {
        "mouth_inv_w": 1.0 / mw, "mouth_y": -0.255 - 0.4 * opening,   # the lower lip drops
        "mouth_curve": -0.025 * p["smile"],                       # corners up when smiling
        "mouth_hh": hh, "upper_lip": upper, "upper_lip_q": -upper * q, "lower_lip": lower,
        "lower_lip_q": -lower * q, "mouth_open": (opening * px).clamp(max=1.0),
        "teeth_b": 0.5 + 0.022 * px,
        "tongue_y": hh * (0.3 * tongue - 0.45), "tongue_inv_h": 1.0 / th,
        "tongue_u2": (1 / 0.65) ** 2 * torch.ones_like(mw), "tongue_k": 0.5 * th * px,
    }


def _paint_mouth(face: _Canvas, k: dict[str, Tensor], u: Tensor, v: Tensor) -> None:
    """Lips (upper one darker) around a lens-shaped opening with cavity, upper teeth and tongue."""
    px, hh = k["px"], k["mouth_hh"]
    t2 = (u * k["mouth_inv_w"]).square_()                       # 0 at the middle, 1 at a corner
    dv = (v - k["mouth_y"]).addcmul_(t2, k["mouth_curve"])
    upper = (t2 * k["upper_lip_q"]).add_(k["upper_lip"]).sub_(dv)
    lower = (t2 * k["lower_lip_q"]).add_(k["lower_lip"]).add_(dv)
    lips = _coverage_(torch.minimum(upper, lower, out=upper), px)
    face.over(k["lip_color"], lips, "lips")
    face.over(k["lip_color"] * 0.78, lips.mul_(_coverage(dv, px)), "lips")
    cavity = _coverage_((t2 * -hh).add_(hh).sub_(dv.abs()), px).mul_(k["mouth_open"])
    face.over(_rgb(_CAVITY, u), cavity, "mouth_cavity")
    teeth = _coverage_((t2 * hh).sub_(hh).add_(dv), px, k["teeth_b"]).mul_(cavity)
    face.over(_rgb(_TEETH, u), teeth, "teeth")
    r2 = dv.sub_(k["tongue_y"]).mul_(k["tongue_inv_h"]).square_().addcmul_(t2, k["tongue_u2"])
    tongue = _coverage_(r2, -k["tongue_k"], 0.5 + k["tongue_k"]).mul_(cavity)
    face.over(_rgb(_TONGUE, u), tongue, "tongue")


def _paint_ears(face: _Canvas, k: dict[str, Tensor], x: Tensor, y: Tensor, z: Tensor) -> None:
    """The ears where they lie on the sides of the cranium, with a darker hollow."""
    r2 = _eval(k["ear_pv"], x, y, z).square_().add_(_eval(k["ear_pw"], x, y, z).square_())
    sharp = k["ear_sharp"]
    face.over(k["skin"] * 0.9, _coverage(r2, -sharp, 0.5 + sharp), "skin")
    face.over(k["skin"] * 0.72, _coverage_(r2, -sharp, 0.5 + 0.35 * sharp), "skin")


def _paint_hair_cap(face: _Canvas, k: dict[str, Tensor], x: Tensor, y: Tensor, z: Tensor, u: Tensor) -> None:
    """Hair on the cranium above a hairline that depends on the style (none when bald)."""
    hair = _eval(k["hairline"], x, y, z).addcmul_(u * u, k["hairline_u2"]).clamp_(0.0, 1.0)
    face.over(k["hair_color"], hair, "hair")


def _paint_nose(face: _Canvas, k: dict[str, Tensor], x: Tensor, y: Tensor, z_face: Tensor,
                lit: Tensor, gloss: Tensor) -> Tensor:
    """Paint the nose where its ellipsoid is nearer than the face, with two nostrils; switch the
    shading fields `lit` and `gloss` to the nose's normal there. Returns its coverage."""
    z, cover = _cast(k["nose"], x, y)
    cover.mul_(_coverage_(z - z_face, k["pixels"]))
    face.over(k["skin"], cover, "nose")
    nostrils = _eval(k["nostril_u"], x, y, z).abs_().sub_(2.0).square_()
    nostrils.add_(_eval(k["nostril_v"], x, y, z).square_())
    sharp = k["nostril_sharp"]
    face.over(k["skin"] * 0.5, _coverage_(nostrils, -sharp, 0.5 + sharp).mul_(cover), "nose")
    lit.lerp_(_eval(k["nose_light"], x, y, z), cover)
    gloss.lerp_(_eval(k["nose_gloss"], x, y, z), cover)
    return cover


def _paint_glasses(face: _Canvas, k: dict[str, Tensor], u: Tensor, v: Tensor) -> None:
    """Round rims around the eyes joined by a bridge and temple arms, with lightly tinted lenses."""
    radius, rim, px, on = 0.095, 0.0055, k["px"], k["glasses"]
    du = u.abs().sub_(k["eye_spacing"])
    dv = v - EYE_Y
    r = (du * du).addcmul_(dv, dv, value=1.3).sqrt_()
    face.over(k["glasses_color"] * 0.5 + 0.5, _coverage(r, -px, 0.5 + radius * px).mul_(0.12 * on), None)
    ring = _coverage_(r.sub_(radius).abs_(), -px, 0.5 + rim * px)
    du.abs_()
    arms = torch.minimum(du - radius, 0.2 - du)                  # bridge and temple arms
    bar = torch.minimum(dv.sub_(0.02).abs_().neg_().add_(rim), arms, out=arms)
    frame = torch.maximum(ring, _coverage_(bar, px), out=ring).mul_(on)
    face.over(k["glasses_color"], frame, "glasses")
