"""3D warping of the appearance volume by head pose and facial dynamics (paper Sec. 3.1).

After MegaPortraits, a warp is a rigid transform T (from the explicit pose) composed with a
non-rigid flow predicted from the dynamics code by a small warping generator:

    source -> canonical:  V_c(p) = V_s( T_s(p + f_sc(p)) )        for every canonical point p
    canonical -> driving: V_d(q) = V_c( u + f_cd(u) ),  u = T_d^-1(q)   for every driving point q

with T(p) = s R p + t (rotation R from yaw, pitch, roll; shift t = (tx, ty, 0); scale
s = 1 / distance), in the world's units and conventions (`vasa_lib.world.params`: x right,
y up, z towards the viewer), seen through the camera's framing: with image = zoom (world - c),
c = (0, centre_y, 0), the map in image units is T(p) = s R p + zoom (s R c + t - c), a rotation
about the head's centre wherever the camera puts it. Flows live in canonical space and depend
on the dynamics only, so expression and pose stay apart.

The world's camera is weak-perspective: distance shrinks the image plane, and depth is never
seen. With `scale_depth=False` the scale s applies to x and y only, S = diag(s, s, 1) in place of
s: a far head's volume then keeps its whole depth, where a scaled depth pushes its outer slices
out of the volume (a head at distance 1.3 loses a quarter of its slices; the first face models
were trained that way, the default here). `padding` says what a point outside the volume reads:
"zeros", or "border" (the nearest edge value: a shrunken head's frame is filled with the edge's
background instead of black).

Volumes are (B, C, D, H, W) and span [-1, 1]^3 like the image; `F.grid_sample` addresses them
with (x, y, z) = (W, H, D) positions where y runs down the image, hence the flip of y below.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vasa_lib.world.params import FRAMINGS, Framing

# world (x right, y up, z to the viewer) <-> grid_sample (x right, y down, z along D)
_FLIP = torch.tensor([1.0, -1.0, 1.0])


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Head rotation R = R_roll @ R_yaw @ R_pitch in world coordinates (the renderer's order): (B,) x 3 -> (B, 3, 3).

    yaw > 0 turns the nose towards +x, pitch > 0 raises it towards +y, roll > 0 turns the head
    counter-clockwise in the image (the world's conventions).
    """
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    cy, sy, cp, sp, cr, sr = yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin(), roll.cos(), roll.sin()
    r_yaw = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1)
    r_pitch = torch.stack([one, zero, zero, zero, cp, sp, zero, -sp, cp], -1)
    r_roll = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1)
    r_yaw, r_pitch, r_roll = (rearrange(m, "b (i j) -> b i j", i=3) for m in (r_yaw, r_pitch, r_roll))
    return r_roll @ r_yaw @ r_pitch


def pose_transform(pose: torch.Tensor, camera: Framing = FRAMINGS["wide"],
                   scale_depth: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Rigid map canonical -> posed in grid coordinates, p' = A p + b, seen by `camera`.

    pose: (B, 6) yaw, pitch, roll, tx, ty, distance. Returns A (B, 3, 3) and b (B, 3).
    scale_depth: whether 1 / distance also scales depth (see the module docstring).
    """
    yaw, pitch, roll, tx, ty, distance = pose.unbind(-1)
    flip = _FLIP.to(pose)
    rot = rotation_matrix(yaw, pitch, roll) / distance[:, None, None]           # s R
    if not scale_depth:
        rot = torch.cat([rot[:, :2], rot[:, 2:] * distance[:, None, None]], 1)   # S R, S = diag(s, s, 1)
    centre = torch.tensor([0.0, camera.centre_y, 0.0]).to(pose)
    shift = torch.stack([tx, ty, torch.zeros_like(tx)], -1) + rot @ centre - centre
    return flip[:, None] * rot * flip[None, :], flip * camera.zoom * shift       # F s R F, F zoom (...)


def base_grid(batch: int, shape: tuple[int, int, int], like: torch.Tensor) -> torch.Tensor:
    """Voxel-centre positions of a (D, H, W) volume in [-1, 1]: (B, D, H, W, 3) as (x, y, z)."""
    eye = torch.eye(3, 4, dtype=like.dtype, device=like.device).expand(batch, 3, 4)
    return F.affine_grid(eye, [batch, 1, *shape], align_corners=False)


def sample(volume: torch.Tensor, points: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Trilinear look-up: volume (B, C, D, H, W) at points (B, D', H', W', 3) -> (B, C, D', H', W');
    outside the volume it reads `padding` ("zeros" or "border")."""
    return F.grid_sample(volume, points, mode="bilinear", padding_mode=padding, align_corners=False)


def flow_at(flow: torch.Tensor | None, points: torch.Tensor) -> torch.Tensor:
    """A flow field (B, 3, d, h, w) read at points (B, D, H, W, 3) -> displacements (B, D, H, W, 3)."""
    if flow is None:
        return torch.zeros_like(points)
    return rearrange(sample(flow, points), "b c d h w -> b d h w c")


def posed_points(points: torch.Tensor, pose: torch.Tensor, flow: torch.Tensor | None = None,
                 camera: Framing = FRAMINGS["wide"], scale_depth: bool = True) -> torch.Tensor:
    """Canonical points p (B, D, H, W, 3) -> the posed points T(p + f(p)) they are read from."""
    a, b = pose_transform(pose, camera, scale_depth)
    p = points + flow_at(flow, points)
    return torch.einsum("bij,bdhwj->bdhwi", a, p) + b[:, None, None, None]


def canonical_points(points: torch.Tensor, pose: torch.Tensor, flow: torch.Tensor | None = None,
                     camera: Framing = FRAMINGS["wide"], scale_depth: bool = True) -> torch.Tensor:
    """Posed points q (B, D, H, W, 3) -> the canonical points u + f(u), u = T^-1(q), they show."""
    a, b = pose_transform(pose, camera, scale_depth)
    u = torch.einsum("bij,bdhwj->bdhwi", torch.linalg.inv(a), points - b[:, None, None, None])
    return u + flow_at(flow, u)


def warp_to_canonical(volume: torch.Tensor, pose: torch.Tensor, flow: torch.Tensor | None = None,
                      camera: Framing = FRAMINGS["wide"], scale_depth: bool = True,
                      padding: str = "zeros") -> torch.Tensor:
    """Source -> canonical: V_c(p) = V_s(T_s(p + f(p))). volume (B, C, D, H, W), pose (B, 6),
    flow (B, 3, d, h, w) or None; camera: the images' framing; scale_depth and padding: see the
    module docstring. Returns (B, C, D, H, W)."""
    p = base_grid(volume.shape[0], volume.shape[2:], volume)
    return sample(volume, posed_points(p, pose, flow, camera, scale_depth), padding)


def warp_from_canonical(volume: torch.Tensor, pose: torch.Tensor, flow: torch.Tensor | None = None,
                        camera: Framing = FRAMINGS["wide"], scale_depth: bool = True,
                        padding: str = "zeros") -> torch.Tensor:
    """Canonical -> driving: V_d(q) = V_c(u + f(u)), u = T_d^-1(q). Arguments as `warp_to_canonical`."""
    q = base_grid(volume.shape[0], volume.shape[2:], volume)
    return sample(volume, canonical_points(q, pose, flow, camera, scale_depth), padding)


class WarpGenerator(nn.Module):
    """Non-rigid 3D flow from the dynamics code: z_dyn (B, dyn_dim) -> flow (B, 3, D, S, S),
    S = `size` (16 by default).

    A linear layer makes a (C, D/4, 4, 4) seed that two 3D up-convolution stages grow to
    (D, S, S); the last layer starts at zero, so a new model warps rigidly.
    """

    def __init__(self, dyn_dim: int, depth: int, channels: int = 32, max_flow: float = 0.25, size: int = 16):
        super().__init__()
        self.seed_shape = (channels, max(depth // 4, 1), 4, 4)
        self.depth, self.max_flow = depth, max_flow
        self.seed = nn.Linear(dyn_dim, channels * self.seed_shape[1] * 16)
        self.body = nn.Sequential(
            nn.SiLU(), nn.Conv3d(channels, channels, 3, padding=1), nn.Upsample(scale_factor=2, mode="trilinear"),
            nn.SiLU(), nn.Conv3d(channels, channels // 2, 3, padding=1),
            nn.Upsample(size=(depth, size, size), mode="trilinear"),
            nn.SiLU(), nn.Conv3d(channels // 2, 3, 3, padding=1),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, dynamics: torch.Tensor) -> torch.Tensor:
        c, d, h, w = self.seed_shape
        x = rearrange(self.seed(dynamics), "b (c d h w) -> b c d h w", c=c, d=d, h=h, w=w)
        return self.max_flow * torch.tanh(self.body(x))
