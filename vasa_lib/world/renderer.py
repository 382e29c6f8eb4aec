"""The renderer of the synthetic world: identity + head pose + facial dynamics -> RGB frames.

A small analytic ray caster, written as batched tensor arithmetic so that it renders training
data on the fly (well over a thousand 128 x 128 frames a second on two CPU cores).

Camera. Weak perspective: image coordinates x (right) and y (up) both span [-1, 1]; every pixel
casts a ray parallel to the z axis (z towards the viewer). Pixel rows are ordered top to bottom.

Geometry. The head lives in its own local frame (u right, v up, w out of the face), in head
units at distance 1. It is posed by world = c + R(yaw, pitch, roll) @ local / distance with
c = (tx, ty, 0) and R = Rz(roll) Ry(yaw) Rx(-pitch), so that yaw > 0 turns the nose to the image's
right, pitch > 0 tilts it up and roll > 0 turns the head counter-clockwise (see `params`).
Three ellipsoids are ray cast analytically: the cranium, the jaw (narrower by `jaw_width`, lowered
by `jaw_open`) and the nose. For an ellipsoid, the map from a world point to coordinates in
which it is the unit sphere is affine, p = T (x, y, z) + t0; so |p|^2 = 1 is a quadratic in the
depth z whose coefficients are polynomials in the pixel's x and y. Its discriminant, a quadratic
polynomial in (x, y), says whether the ray hits; the larger root is the visible front surface.
Per-frame coefficients broadcast over a (1, 1, W) row of x and a (1, H, 1) column of y.

Painting. The front surface point is mapped back to head-local (u, v, w), and every facial
feature (eyes, iris and pupil, eyelids, brows, lips, mouth cavity, teeth, tongue, hair cap,
glasses) is a soft region defined by a signed distance in (u, v): features live on the 3D head,
so they move, foreshorten and hide with the pose. The nose is its own ellipsoid, in front of the
face where it is nearer. Long hair, a bun, the neck, the shoulders and the background are flat
layers in image space behind the head.

Shading. Lambert diffuse from a key light (identity `light_yaw`, `light_pitch`) plus ambient and
a soft Blinn specular. The normal of an ellipsoid is approximated by its unit-sphere coordinate
p, which makes n . l an affine function of (x, y, z): two tensor operations per frame.

Anti-aliasing and compositing. Each region turns its signed distance d (positive inside) into a
coverage clamp(0.5 + d / pixel, 0, 1), a one-pixel ramp; for the ellipsoid silhouettes the
distance is the discriminant divided by the norm of its image gradient. Layers are composited
back to front with `lerp` (alpha blending). With `parts=True`, each pixel is also labelled with
the last layer that covers more than half of it.

Speed. Frames are rendered in chunks, so intermediate images stay small; per-frame constants
are (b, 1, 1) tensors, most operations run in place and no per-pixel work is spent on feature
bounding boxes: every feature costs a few full-chunk tensor operations.
"""

from __future__ import annotations

import ctypes
import functools
import math
import sys

import torch
from einops import rearrange
from torch import Tensor

from vasa_lib.world.identity import IDENTITY_DIM, unpack
from vasa_lib.world.params import DYNAMICS_NAMES, POSE_NAMES, check_params

PARTS: tuple[str, ...] = (
    "background", "skin", "hair", "eye_white", "iris", "lips", "mouth_cavity", "teeth",
    "tongue", "nose", "brow", "glasses", "neck", "shirt",
)
PART_INDEX: dict[str, int] = {name: i for i, name in enumerate(PARTS)}

AMBIENT, DIFFUSE, SPECULAR, SHININESS = 0.4, 0.62, 0.1, 16
MISS_DEPTH = 100.0  # how fast the depth of a missed ray falls off, so that it loses depth tests

# Hair cap on the head (unit-sphere coordinates p of the cranium): hair where
# p_v - kw * p_w + ku2 * p_u^2 + ku * p_u > h0.  One row per style; bald has no cap.
_HAIR_CAP = torch.tensor([
    # h0,   kw,   ku2,  ku
    [9.0,   0.0,  0.0,  0.0],   # bald (never)
    [0.22,  0.62, 0.12, 0.0],   # short
    [0.12,  0.75, 0.30, 0.0],   # long
    [0.05,  0.95, 0.05, 0.22],  # fringe, swept to one side
    [0.26,  0.62, 0.08, 0.0],   # bun
])
_SCLERA = (0.95, 0.93, 0.9)
_DARK = (0.06, 0.04, 0.04)
_CAVITY = (0.25, 0.06, 0.07)
_TEETH = (0.96, 0.94, 0.86)
_TONGUE = (0.85, 0.35, 0.38)


# ----------------------------------------------------------------------------------------------
# Small helpers


def _coverage(sd: Tensor, inv_px: Tensor | float, bias: Tensor | float = 0.5) -> Tensor:
    """Soft coverage clamp(bias + sd * inv_px, 0, 1) of a signed distance (b, H, W), in place."""
    return sd.mul_(inv_px).add_(bias).clamp_(0.0, 1.0)


def _rgb(color: tuple[float, float, float], like: Tensor) -> Tensor:
    """A constant colour as a (1, 3, 1, 1) tensor on the device of `like`."""
    return torch.tensor(color, device=like.device).view(1, 3, 1, 1)


def _vec(t: Tensor) -> Tensor:
    """(b, 3) -> three per-frame scalars, each (b, 1, 1)."""
    return rearrange(t, "b i -> i b 1 1")


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise dot product of (b, 3) tensors -> (b, 1, 1)."""
    return (a * b).sum(-1).view(-1, 1, 1)


def _rot_x(angle: Tensor) -> Tensor:
    """Rotation about the x (u) axis; angle (b,) -> (b, 3, 3)."""
    c, s, one, zero = angle.cos(), angle.sin(), torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([one, zero, zero, zero, c, -s, zero, s, c], -1).view(-1, 3, 3)


def _rot_y(angle: Tensor) -> Tensor:
    c, s, one, zero = angle.cos(), angle.sin(), torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([c, zero, s, zero, one, zero, -s, zero, c], -1).view(-1, 3, 3)


def _rot_z(angle: Tensor) -> Tensor:
    c, s, one, zero = angle.cos(), angle.sin(), torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([c, -s, zero, s, c, zero, zero, zero, one], -1).view(-1, 3, 3)


class _Canvas:
    """An RGB buffer (b, 3, H, W) with optional part labels (b, H, W), painted back to front."""

    def __init__(self, rgb: Tensor, labels: Tensor | None):
        self.rgb, self.labels = rgb, labels

    def over(self, color: Tensor, alpha: Tensor, part: str | None) -> None:
        """Composite `color` ((b|1, 3, 1|H, 1|W)) with coverage `alpha` (b, H, W) on top."""
        self.rgb.lerp_(color.expand_as(self.rgb), alpha.unsqueeze(1))
        if self.labels is not None and part is not None:
            # labels <- part where alpha > 0.5, as float arithmetic (much faster than where)
            inside = (alpha - 0.5).sign_().clamp_(min=0.0)
            self.labels.addcmul_(inside, PART_INDEX[part] - self.labels)


# ----------------------------------------------------------------------------------------------
# Ellipsoids


class _Ellipsoid:
    """An ellipsoid posed in the world: p = T @ (x, y, z) + t0 maps it to the unit sphere.

    T: (b, 3, 3); t0: (b, 3); rot: (b, 3, 3) rotation from the ellipsoid's axes to the world.
    """

    def __init__(self, head_to_world: Tensor, distance: Tensor, centre: Tensor,
                 q0: Tensor, axes: Tensor, tilt: Tensor | None = None):
        """head_to_world: R (b, 3, 3); distance (b,); centre (b, 3) = (tx, ty, 0);
        q0 (b, 3) centre and axes (b, 3) semi-axes in head-local units; tilt (b,) about u."""
        rot_local = _rot_x(tilt) if tilt is not None else torch.eye(3, device=q0.device).expand_as(head_to_world)
        self.rot = head_to_world @ rot_local
        world_to_local = head_to_world.transpose(1, 2) * distance.view(-1, 1, 1)
        to_axes = rot_local.transpose(1, 2) / axes.unsqueeze(-1)
        self.T = to_axes @ world_to_local
        self.t0 = -(self.T @ centre.unsqueeze(-1)).squeeze(-1) - (to_axes @ q0.unsqueeze(-1)).squeeze(-1)

    def hit(self, x: Tensor, y: Tensor, inv_px: Tensor) -> tuple[Tensor, Tensor]:
        """Ray cast the pixels: x (1, 1, W), y (1, H, 1), inv_px (b, 1, 1) pixels per image unit.

        Returns the depth z of the front surface (b, H, W), pushed far back where the ray
        misses, and the anti-aliased silhouette coverage (b, H, W).
        """
        X, Y, G, Z0 = self.T[..., 0], self.T[..., 1], self.T[..., 2], self.t0
        # |X x + Y y + G z + Z0|^2 = 1  <=>  A z^2 + 2 (bx x + by y + b0) z + C(x, y) = 0
        A, bx, by, b0 = _dot(G, G), _dot(G, X), _dot(G, Y), _dot(G, Z0)
        kxx, kyy = bx * bx - A * _dot(X, X), by * by - A * _dot(Y, Y)
        kxy = 2 * (bx * by - A * _dot(X, Y))
        kx, ky = 2 * (bx * b0 - A * _dot(X, Z0)), 2 * (by * b0 - A * _dot(Y, Z0))
        k0 = b0 * b0 - A * (_dot(Z0, Z0) - 1)
        # discriminant, a quadratic polynomial of the pixel position, >= 0 where the ray hits
        disc = torch.add((kxx * x + kx) * x + k0, (kyy * y + ky) * y).addcmul_(kxy * x, y)
        # signed distance to the silhouette disc = 0 is about disc / |grad disc|
        gx = torch.add(2 * kxx * x + kx, kxy * y)
        gy = torch.add(kxy * x, 2 * kyy * y + ky)
        inv_grad = gx.mul_(gx).addcmul_(gy, gy).clamp_(min=1e-12).rsqrt_()
        cover = _coverage(inv_grad.mul_(disc), inv_px)
        inv_a = 1.0 / A
        z = torch.addcmul(-(bx * x + b0) * inv_a, disc.clamp(min=0.0).sqrt_(), inv_a).sub_(by * inv_a * y)
        return z.add_(disc.clamp_(max=0.0), alpha=MISS_DEPTH), cover

    def unit_coord(self, i: int, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        """Component i of the unit-sphere coordinate p at the points (x, y, z): (b, H, W)."""
        return _affine(self.T[:, i], self.t0[:, i], x, y, z)

    def facing(self, direction: Tensor, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        """n . direction for a world direction (b, 3), with the normal n approximated by p."""
        d = (self.rot.transpose(1, 2) @ direction.unsqueeze(-1)).squeeze(-1)  # in the ellipsoid frame
        return _affine((self.T.transpose(1, 2) @ d.unsqueeze(-1)).squeeze(-1), (self.t0 * d).sum(-1), x, y, z)


def _affine(k: Tensor, k0: Tensor, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
    """k . (x, y, z) + k0 over the pixels: k (b, 3), k0 (b,), x (1,1,W), y (1,H,1), z (b,H,W)."""
    kx, ky, kz = _vec(k)
    return torch.add(kx * x + k0.view(-1, 1, 1), ky * y).addcmul_(z, kz)


# ----------------------------------------------------------------------------------------------
# Inputs


def _check_inputs(identity: Tensor, pose: Tensor, dynamics: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor]:
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16 (pixels per side), got {size!r}")
    pose = check_params(pose, "pose")
    dynamics = check_params(dynamics, "dynamics").to(pose.device)
    if pose.ndim != 2 or dynamics.ndim != 2:
        raise ValueError(f"pose and dynamics must be batches (B, 6) and (B, 11), got "
                         f"{tuple(pose.shape)} and {tuple(dynamics.shape)}")
    if len(pose) != len(dynamics):
        raise ValueError(f"pose and dynamics batch sizes differ: {len(pose)} vs {len(dynamics)}")
    identity = torch.as_tensor(identity, dtype=torch.float32, device=pose.device)
    if identity.ndim == 1:
        identity = identity.unsqueeze(0)
    if identity.ndim != 2 or identity.shape[-1] != IDENTITY_DIM:
        raise ValueError(f"identity must have shape (B, {IDENTITY_DIM}) or ({IDENTITY_DIM},), "
                         f"got {tuple(identity.shape)}")
    if len(identity) == 1:
        identity = identity.expand(len(pose), -1)
    if len(identity) != len(pose):
        raise ValueError(f"identity batch size {len(identity)} does not match pose batch size {len(pose)}")
    if not torch.isfinite(identity).all():
        raise ValueError("identity contains non-finite values (NaN or inf)")
    return identity, pose, dynamics


def _named(identity: Tensor, pose: Tensor, dynamics: Tensor) -> dict[str, Tensor]:
    """Every named parameter as a per-frame tensor: scalars (B, 1, 1), colours (B, 3, 1, 1)."""
    named = {name: pose[:, i].view(-1, 1, 1) for i, name in enumerate(POSE_NAMES)}
    named |= {name: dynamics[:, i].view(-1, 1, 1) for i, name in enumerate(DYNAMICS_NAMES)}
    for name, value in unpack(identity).items():
        named[name] = value.reshape(-1, 3, 1, 1) if value.shape[-1] == 3 else value.reshape(-1, 1, 1)
    named["hair_style"] = named["hair_style"].round().clamp(0, 4)
    named["glasses"] = (named["glasses"] >= 0.5).float()
    return named


# ----------------------------------------------------------------------------------------------
# The public function


@functools.cache
def _keep_freed_memory() -> None:
    """Stop glibc from returning freed image-sized buffers to the kernel after every chunk.

    A chunk allocates and frees many (chunk, H, W) temporaries. By default glibc serves them
    with mmap or trims them off the heap when freed, so every chunk page-faults its memory in
    again, which costs more than the arithmetic (about 2x overall). Raising the mmap and trim
    thresholds (once, process-wide) keeps that memory for reuse. Linux with glibc only.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:
            return
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 256 << 20)


@torch.no_grad()
def render(identity: Tensor, pose: Tensor, dynamics: Tensor, size: int = 128,
           parts: bool = False, chunk: int = 32) -> Tensor | tuple[Tensor, Tensor]:
    """Render talking-head frames.

    identity: (B, IDENTITY_DIM), or one person (IDENTITY_DIM,) / (1, IDENTITY_DIM) for all frames.
    pose: (B, 6) yaw, pitch, roll, tx, ty, distance. dynamics: (B, 11) (see `params`).
    size: output resolution (size x size), >= 16. chunk: frames rendered together.
    Returns images (B, 3, size, size) float32 in [0, 1] on pose's device; with parts=True also
    labels (B, size, size) int64 indexing PARTS.
    """
    identity, pose, dynamics = _check_inputs(identity, pose, dynamics, size)
    named = _named(identity, pose, dynamics)
    n, device = len(pose), pose.device
    if device.type == "cpu":
        _keep_freed_memory()
    coords = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    x, y = coords.view(1, 1, size), -coords.view(1, size, 1)
    images = torch.empty(n, 3, size, size, device=device)
    labels = torch.empty(n, size, size, device=device) if parts else None
    for start in range(0, n, chunk):
        frame = {name: value[start:start + chunk] for name, value in named.items()}
        canvas = _Canvas(images[start:start + chunk], labels[start:start + chunk] if parts else None)
        _render_chunk(canvas, frame, x, y, size)
    images.clamp_(0.0, 1.0)
    return (images, labels.long()) if parts else images


def _render_chunk(canvas: _Canvas, f: dict[str, Tensor], x: Tensor, y: Tensor, size: int) -> None:
    """Paint one chunk of b frames into `canvas`. f: named parameters (b, 1, 1) / (b, 3, 1, 1)."""
    b = len(f["yaw"])
    scale = 1.0 / f["distance"]                                   # head units -> image units
    inv_px = size / 2.0 / scale                                   # pixels per head unit
    head_to_world = _rot_z(f["roll"].view(-1)) @ _rot_y(f["yaw"].view(-1)) @ _rot_x(-f["pitch"].view(-1))
    centre = torch.stack([f["tx"].view(-1), f["ty"].view(-1), torch.zeros(b, device=x.device)], -1)
    light = torch.stack([f["light_yaw"].sin() * f["light_pitch"].cos(), f["light_pitch"].sin(),
                         f["light_yaw"].cos() * f["light_pitch"].cos()], -1).view(-1, 3)

    # background gradient, then the layers behind the head
    t = (1.0 - y).mul(0.5).unsqueeze(1)                           # (1, 1, H, 1) 0 at top, 1 at bottom
    canvas.rgb.copy_(torch.lerp(f["background_top"], f["background_bottom"], t).expand_as(canvas.rgb))
    if canvas.labels is not None:
        canvas.labels.fill_(PART_INDEX["background"])
    _draw_body(canvas, f, x, y, scale, head_to_world, size)

    # the head: the cranium ellipsoid intersected with a tall, deep "jaw" ellipsoid that trims
    # the lower corners (narrower for a small jaw_width) and leaves the rest alone
    a, bh, c = f["head_width"].view(-1), f["head_height"].view(-1), f["head_depth"].view(-1)
    zero = torch.zeros_like(a)
    distance = f["distance"].view(-1)
    drop = 0.05 * f["jaw_open"].view(-1)                          # an open jaw lowers the chin
    cranium = _Ellipsoid(head_to_world, distance, centre, torch.stack([zero, -0.5 * drop, zero], -1),
                         torch.stack([a, bh + 0.5 * drop, c], -1))
    jaw = _Ellipsoid(head_to_world, distance, centre, torch.stack([zero, 0.45 * bh - drop, -0.3 * c], -1),
                     torch.stack([a * (1.25 * f["jaw_width"].view(-1) + 0.2), 1.5 * bh, 2.2 * c], -1))
    z_cranium, cover = cranium.hit(x, y, inv_px * scale)
    z_jaw, cover_jaw = jaw.hit(x, y, inv_px * scale)
    cover = torch.minimum(cover, cover_jaw)
    z = torch.minimum(z_cranium, z_jaw)                           # the ray enters both: the nearer entry is later
    on_jaw = _coverage(z_cranium - z_jaw, 25.0)                   # blend the normals over 0.04
    half = torch.nn.functional.normalize(light + torch.tensor([0.0, 0.0, 1.0], device=x.device), dim=-1)
    lit = torch.lerp(cranium.facing(light, x, y, z), jaw.facing(light, x, y, z), on_jaw)
    gloss = torch.lerp(cranium.facing(half, x, y, z), jaw.facing(half, x, y, z), on_jaw)

    world_to_local = head_to_world.transpose(1, 2) / scale.view(-1, 1, 1)
    local_origin = -(world_to_local @ centre.unsqueeze(-1)).squeeze(-1)
    u, v = (_affine(world_to_local[:, i], local_origin[:, i], x, y, z) for i in range(2))

    face = _Canvas(f["skin"].expand(b, 3, size, size).clone(),
                   torch.full_like(z, PART_INDEX["skin"]) if canvas.labels is not None else None)
    _draw_eyes(face, f, u, v, inv_px, light, head_to_world)
    _draw_brows(face, f, u, v, inv_px)
    _draw_mouth(face, f, u, v, inv_px)
    _draw_hair_cap(face, f, cranium, x, y, z, u, inv_px)
    nose = _draw_nose(face, f, head_to_world, centre, scale, x, y, z, inv_px)
    lit.lerp_(nose.facing(light, x, y, nose.z), nose.cover)
    gloss.lerp_(nose.facing(half, x, y, nose.z), nose.cover)
    _draw_glasses(face, f, u, v, inv_px)

    # shade: albedo * (ambient + diffuse max(n.l, 0)) + specular max(n.h, 0)^k
    shade = lit.clamp_(min=0.0).mul_(DIFFUSE).add_(AMBIENT)
    spec = gloss.clamp_(min=0.0)
    for _ in range(int(math.log2(SHININESS))):
        spec.mul_(spec)
    face.rgb.mul_(shade.unsqueeze(1)).add_(spec.mul_(SPECULAR).unsqueeze(1))
    canvas.rgb.lerp_(face.rgb, cover.unsqueeze(1))
    if canvas.labels is not None:
        inside = (cover - 0.5).sign_().clamp_(min=0.0)
        canvas.labels.addcmul_(inside, face.labels - canvas.labels)


# ----------------------------------------------------------------------------------------------
# Layers behind the head (flat, in image space)


def _draw_body(canvas: _Canvas, f: dict[str, Tensor], x: Tensor, y: Tensor, scale: Tensor,
               head_to_world: Tensor, size: int) -> None:
    """Shoulders (shirt), hair behind the head, neck and bun: flat image-space layers."""
    inv_px = size / 2.0
    dx, dy = x - f["tx"], y - f["ty"]                             # (b, 1, W), (b, H, 1)

    # shoulders: a wide ellipse below the head, a little darker downwards
    sx, sy = 1.25 * scale, 0.75 * scale
    r2 = torch.add((dx / sx) ** 2, ((dy + 1.4 * scale) / sy) ** 2)
    shirt = f["shirt_color"] * (1.0 + 0.3 * (dy + 0.65 * scale) / scale).clamp(0.6, 1.0).unsqueeze(1)
    canvas.over(shirt, _coverage(r2.sub_(1.0), -0.5 * sy * inv_px), "shirt")

    # hair behind the head: a rotated ellipse around the head (long hair: down to the shoulders)
    long = (f["hair_style"] == 2).float()
    hx, hy = _project(head_to_world, f, scale, 0.0, 0.05 - 0.35 * long, -0.3)
    ax = (1.08 + 0.1 * long) * f["head_width"] * scale
    ay = (1.02 + 0.45 * long) * f["head_height"] * scale
    cos_r, sin_r = f["roll"].cos(), f["roll"].sin()
    ex, ey = x - hx, y - hy
    across = torch.add(ex * (cos_r / ax), ey * (sin_r / ax))     # ellipse axes turn with the roll
    along = torch.add(ex * (-sin_r / ay), ey * (cos_r / ay))
    cut = _coverage(along + (0.1 + 0.55 * long), ay * inv_px)      # short hair stops above the ears
    hair = _coverage(across.square_().addcmul_(along, along).sub_(1.0), -0.5 * ax * inv_px)
    hair.mul_(cut).mul_(f["hair_style"] != 0)
    canvas.over(f["hair_color"] * 0.75, hair, "hair")

    # neck: a vertical band from under the chin down to a U-shaped collar
    nw = 0.45 * f["head_width"] * f["jaw_width"].sqrt() * scale
    collar = f["ty"] - 0.78 * scale + 1.2 * dx * dx / scale       # (b, 1, W)
    neck = torch.minimum(torch.minimum(nw - dx.abs(), -0.2 * scale - dy), y - collar)
    side = (1.0 - (dx / nw) ** 2).clamp(0, 1)
    neck_color = f["skin"] * (0.55 + 0.3 * side).unsqueeze(1)
    canvas.over(neck_color, _coverage(neck, inv_px), "neck")

    # bun (style 4): a shaded sphere on the top back of the head
    bx, by = _project(head_to_world, f, scale, 0.0, 0.8, -0.55)
    rb = 0.17 * scale
    ex, ey = x - bx, y - by
    r2 = torch.add(ex * ex, ey * ey)
    light_x, light_y = f["light_yaw"].sin(), f["light_pitch"].sin()
    bun_shade = torch.add(ex * (0.3 * light_x / rb), ey * (0.3 * light_y / rb)).add_(0.75).sub_(r2, alpha=0.25)
    bun = _coverage(r2.sub_(rb * rb).neg_(), 0.5 / rb * inv_px).mul_(f["hair_style"] == 4)
    canvas.over(f["hair_color"] * bun_shade.unsqueeze(1), bun, "hair")


def _project(head_to_world: Tensor, f: dict[str, Tensor], scale: Tensor,
             u: float | Tensor, v: float | Tensor, w: float | Tensor) -> tuple[Tensor, Tensor]:
    """Image position (x, y), each (b, 1, 1), of the head-local point (u, v, w) given in units of
    the head's semi-axes (width, height, depth); u, v, w are floats or (b, 1, 1)."""
    q = torch.cat([u * f["head_width"], v * f["head_height"], w * f["head_depth"]], -1).view(-1, 3, 1)
    p = (head_to_world @ q).view(-1, 3, 1, 1) * scale.unsqueeze(1)
    return f["tx"] + p[:, 0], f["ty"] + p[:, 1]


# ----------------------------------------------------------------------------------------------
# Features painted on the head (signed distances in head-local units u, v)


def _draw_eyes(face: _Canvas, f: dict[str, Tensor], u: Tensor, v: Tensor, inv_px: Tensor,
               light: Tensor, head_to_world: Tensor) -> None:
    """Almond eye whites, iris and pupil (moved by the gaze), catchlight, eyelid and lashes."""
    size = f["eye_size"]
    ew, eh, ri = 0.058 * size, 0.027 * size, 0.024 * size          # half width, half height, iris
    side = u.sign()
    du = u.abs().sub_(f["eye_spacing"])                           # mirrored: both eyes at once
    dv = v - 0.1
    t2 = (du / ew).square_()
    h = torch.addcmul(eh, t2, -eh)                                # almond half height eh (1 - t^2)
    almond = h - dv.abs()
    closure = 0.15 + 0.9 * f["eyelid"]                            # 0 open .. 1 lid on the lower edge
    lid = torch.addcmul(-dv, h, 1 - 2 * closure)                  # > 0 below the upper lid
    lash = 0.006
    face.over(_rgb(_DARK, u), _coverage(almond + lash, inv_px).mul_(_coverage(lid + lash, inv_px)), None)
    opened = ((1.0 - f["eyelid"]) * 50).clamp(max=1.0)             # exactly 0 when closed
    white = _coverage(almond, inv_px).mul_(_coverage(lid, inv_px)).mul_(opened)
    face.over(_rgb(_SCLERA, u), white, "eye_white")

    # iris and pupil: discs around the gaze point; squared distance -> coverage
    ix = torch.addcmul(-0.055 * f["gaze_yaw"], side, du)          # u - eye centre - gaze offset
    iy = dv - 0.035 * f["gaze_pitch"]
    r2 = torch.addcmul(ix * ix, iy, iy)
    iris = _coverage(ri * ri - r2, inv_px / (2 * ri)).mul_(white)
    face.over(f["eye_color"], iris, "iris")
    rp = 0.45 * ri
    face.over(_rgb((0.02, 0.02, 0.02), u), _coverage(rp * rp - r2, inv_px / (2 * rp)).mul_(white), "iris")
    # catchlight: a small bright spot towards the light (light direction in the head frame)
    l_local = (head_to_world.transpose(1, 2) @ light.unsqueeze(-1)).view(-1, 3, 1, 1)
    rc = 0.3 * ri
    cx, cy = 0.45 * ri * l_local[:, 0], 0.45 * ri * l_local[:, 1] + 0.3 * ri
    spot = torch.addcmul((ix - cx).square_(), iy - cy, iy - cy)
    face.over(_rgb((1.0, 1.0, 1.0), u), _coverage(rc * rc - spot, inv_px / (2 * rc)).mul_(white), None)


def _draw_brows(face: _Canvas, f: dict[str, Tensor], u: Tensor, v: Tensor, inv_px: Tensor) -> None:
    """Arched brows above the eyes: raised by brow_raise, inner ends pulled down and in by brow_frown."""
    frown = f["brow_frown"]
    bw = 0.068
    t = u.abs().sub_(f["eye_spacing"] - 0.012 * frown).div_(bw)  # -1 inner end .. 1 outer end
    t2 = t * t
    # centre line: by + arch (1 - t^2) + tilt t, tilt pulls the inner end down when frowning
    by = 0.17 + 0.028 * f["brow_raise"] - 0.008 * frown
    arch, tilt = 0.014, 0.025 * frown
    dvb = (v - (by + arch)).add_(t2, alpha=arch).addcmul_(t, -tilt).abs_()
    half = 0.0085 * f["brow_thickness"]
    thick = torch.addcmul(half, t, -0.25 * half).addcmul_(t2, -0.35 * half)
    brow = torch.minimum(thick.sub_(dvb), t2.mul_(-0.5 * bw).add_(0.5 * bw))
    face.over(f["hair_color"] * 0.55, _coverage(brow, inv_px), "brow")


def _draw_mouth(face: _Canvas, f: dict[str, Tensor], u: Tensor, v: Tensor, inv_px: Tensor) -> None:
    """Lips around an opening (jaw_open, lip_close, lip_spread, lip_round, smile) with the dark
    cavity, upper teeth and tongue inside."""
    jaw, spread, rnd, smile = f["jaw_open"], f["lip_spread"], f["lip_round"], f["smile"]
    mw = 0.072 * (1 + 0.22 * spread - 0.3 * rnd + 0.06 * smile)   # half width of the opening
    opening = (0.12 * jaw + 0.015 * f["tongue"] + 0.02 * rnd) * (1 - f["lip_close"])
    hh = 0.5 * opening                                            # half height at the middle
    mid = -0.235 - 0.4 * opening                                  # the lower lip drops with the jaw
    fullness = f["lip_fullness"] * (1 + 0.4 * rnd)
    upper, lower = 0.014 * fullness, 0.019 * fullness
    t2 = (u / mw).square_()
    dv = torch.addcmul(v - mid, t2, -0.025 * smile)               # corners up when smiling
    lens = 1 - t2                                                 # lens profile, 0 at the corners
    outer = 1 - t2 * (mw / (mw + 0.012)) ** 2                     # lips reach past the opening
    lips = torch.minimum(torch.addcmul(-dv, outer, hh + upper), torch.addcmul(dv, outer, hh + lower))
    lips = _coverage(lips, inv_px)
    face.over(f["lip_color"], lips, "lips")
    face.over(f["lip_color"] * 0.78, lips.mul_(_coverage(dv.clone(), inv_px)), "lips")  # upper lip
    cavity = _coverage(torch.addcmul(-dv.abs(), lens, hh), inv_px).mul_((opening * inv_px).clamp(max=1.0))
    face.over(_rgb(_CAVITY, u), cavity, "mouth_cavity")
    teeth = _coverage(torch.addcmul(dv, lens, -hh), inv_px, 0.5 + 0.022 * inv_px).mul_(cavity)
    face.over(_rgb(_TEETH, u), teeth, "teeth")
    tw, th = 0.65 * mw, 0.35 * hh + 0.012 * f["tongue"] + 1e-4
    ty = hh * (0.55 + 0.3 * f["tongue"]) - hh                     # tongue centre, rises with `tongue`
    r2 = torch.addcmul(t2 * (mw / tw) ** 2, dv - ty, (dv - ty) / (th * th))
    tongue = _coverage(r2.sub_(1.0), -0.5 * th * inv_px).mul_(cavity)
    face.over(_rgb(_TONGUE, u), tongue, "tongue")


def _draw_hair_cap(face: _Canvas, f: dict[str, Tensor], cranium: _Ellipsoid,
                   x: Tensor, y: Tensor, z: Tensor, u: Tensor, inv_px: Tensor) -> None:
    """Hair on the top of the cranium, bounded by a hairline that depends on the style."""
    h0, kw, ku2, ku = _vec(_HAIR_CAP.to(u.device)[f["hair_style"].long().view(-1)])
    pu = u / f["head_width"]
    # hairline field: p_v - kw p_w + ku p_u + ku2 p_u^2 - h0 (linear part evaluated in world space)
    k = cranium.T[:, 1] - kw.view(-1, 1) * cranium.T[:, 2]
    k0 = cranium.t0[:, 1] - kw.view(-1) * cranium.t0[:, 2] - h0.view(-1)
    field = _affine(k, k0, x, y, z).addcmul_(pu, ku).addcmul_(pu * pu, ku2)
    face.over(f["hair_color"], _coverage(field, inv_px * f["head_height"] * 0.7), "hair")


class _Nose:
    """The nose ellipsoid as seen: depth z, coverage in front of the face, shading hook."""

    def __init__(self, ellipsoid: _Ellipsoid, z: Tensor, cover: Tensor):
        self.ellipsoid, self.z, self.cover = ellipsoid, z, cover

    def facing(self, direction: Tensor, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        return self.ellipsoid.facing(direction, x, y, z)


def _draw_nose(face: _Canvas, f: dict[str, Tensor], head_to_world: Tensor, centre: Tensor,
               scale: Tensor, x: Tensor, y: Tensor, z_face: Tensor, inv_px: Tensor) -> _Nose:
    """A tilted ellipsoid sticking out of the face, visible where it is nearer than the face;
    two dark nostrils on its underside."""
    c = f["head_depth"].view(-1)
    zero = torch.zeros_like(c)
    nose = _Ellipsoid(head_to_world, 1 / scale.view(-1), centre,
                      torch.stack([zero, zero - 0.045, 0.96 * c - 0.025], -1),
                      torch.stack([0.042 * f["nose_width"].view(-1), 0.085 * f["nose_length"].view(-1),
                                   zero + 0.05], -1),
                      tilt=zero - 0.45)
    image_inv_px = inv_px * scale
    z, cover = nose.hit(x, y, image_inv_px)
    cover.mul_(_coverage(z - z_face, image_inv_px))
    face.over(f["skin"], cover, "nose")
    pu = nose.unit_coord(0, x, y, z).abs_().sub_(0.42).div_(0.28).square_()
    pv = nose.unit_coord(1, x, y, z).add_(0.72).div_(0.2).square_()
    nostrils = _coverage(pu.add_(pv).sub_(1.0), -0.5 * 0.2 * 0.085 * inv_px).mul_(cover)
    face.over(f["skin"] * 0.35, nostrils, "nose")
    return _Nose(nose, z, cover)


def _draw_glasses(face: _Canvas, f: dict[str, Tensor], u: Tensor, v: Tensor, inv_px: Tensor) -> None:
    """Round rims around the eyes joined by a bridge and temple arms (glasses >= 0.5)."""
    radius, rim = 0.082, 0.0055
    du = u.abs().sub_(f["eye_spacing"])
    dv = v - 0.105
    r = torch.addcmul(du * du, dv, dv * 1.3).sqrt_()
    lens = _coverage(radius - r, inv_px)
    face.over(f["glasses_color"] * 0.5 + 0.5, lens.mul_(0.12 * f["glasses"]), None)
    ring = _coverage(rim - (r - radius).abs_(), inv_px)
    bar = torch.minimum(rim - (dv - 0.02).abs_(), du.abs_().sub_(radius))
    frame = torch.maximum(ring, _coverage(bar, inv_px)).mul_(f["glasses"])
    face.over(f["glasses_color"], frame, "glasses")
