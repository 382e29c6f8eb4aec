"""Losses of the face model (paper Sec. 3.1): reconstruction (L1 + SSIM), VASA-1's consistency
loss l_consist and cross-identity loss l_cross_id, the pose supervision of the pose encoder, and
a part-perceptual loss on the eyes and the mouth.

No ImageNet/VGG weights are available: the structural term is SSIM, the face-recognition
network of l_cross_id is the project's own `IdentityNet`, and the perceptual network is an
expression network trained on the world (a `ParameterReader`'s part readers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vasa_lib.face.crops import PartReader, eye_and_mouth_crops
from vasa_lib.world.renderer import PART_INDEX


def _gaussian_window(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity per image: x, y (B, C, H, W) in [0, 1] -> (B,) (Wang et al. 2004,
    Gaussian window, valid region only). Always in float32, also under mixed precision: the
    variances are differences of means, which bfloat16 can turn negative (an infinite loss)."""
    with torch.autocast(x.device.type, enabled=False):
        x, y = x.float(), y.float()
        g = _gaussian_window(window, sigma, x)
        c = x.shape[1]
        kx = g.view(1, 1, 1, -1).expand(c, 1, 1, window)
        ky = g.view(1, 1, -1, 1).expand(c, 1, window, 1)

        def blur(t: torch.Tensor) -> torch.Tensor:
            return F.conv2d(F.conv2d(t, kx, groups=c), ky, groups=c)

        mx, my = blur(x), blur(y)
        vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        c1, c2 = 0.01**2, 0.03**2
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        return s.mean(dim=(1, 2, 3))


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB: x, y (B, C, H, W) in [0, 1] -> (B,)."""
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return -10 * torch.log10(mse)


def reconstruction_loss(x: torch.Tensor, y: torch.Tensor, ssim_weight: float = 0.5,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
    """L1 at full and half resolution plus ssim_weight * (1 - SSIM): a scalar.

    weight (B, 1, H, W), optional: per-pixel L1 weights (see `detail_weights`), mean 1 or more.
    Like every loss here it is computed in float32, also from bfloat16 images (mixed precision).
    """
    x, y = x.float(), y.float()
    weight = torch.ones_like(x[:, :1]) if weight is None else weight
    l1 = ((x - y).abs() * weight).mean() + ((F.avg_pool2d(x, 2) - F.avg_pool2d(y, 2)).abs()
                                            * F.avg_pool2d(weight, 2)).mean()
    return l1 + ssim_weight * (1 - ssim(x, y)).mean()


def gradient_loss(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L1 between the horizontal and vertical pixel differences of x and y (B, C, H, W): a scalar.
    An average of plausible images is blurred, with weaker edges than any of them; this term
    asks for the target's edges where they are (weight (B, 1, H, W) as in `reconstruction_loss`)."""
    x, y = x.float(), y.float()
    weight = torch.ones_like(x[:, :1]) if weight is None else weight
    dx = ((x.diff(dim=3) - y.diff(dim=3)).abs() * weight[..., 1:]).mean()
    dy = ((x.diff(dim=2) - y.diff(dim=2)).abs() * weight[..., 1:, :]).mean()
    return dx + dy


DETAIL_PARTS: tuple[str, ...] = ("lips", "mouth_cavity", "teeth", "tongue", "eye_white", "iris", "brow")


def detail_weights(parts: torch.Tensor, boost: float) -> torch.Tensor:
    """Pixel weights (B, 1, H, W) from the world's part labels (B, H, W): 1 + boost on the mouth,
    eyes and brows. These regions are small but carry the facial dynamics; MegaPortraits stresses
    them with face-recognition and gaze losses, we with a weighted L1 (the labels weight the loss,
    they never supervise z_dyn)."""
    detail = torch.zeros_like(parts, dtype=torch.bool)
    for name in DETAIL_PARTS:
        detail |= parts == PART_INDEX[name]
    return (1 + boost * detail.float())[:, None]


# The spread (standard deviation) of the world's natural head poses, in world units:
# yaw, pitch, roll (radians), tx, ty, distance (measured over 200 training clips).
POSE_SPREAD = torch.tensor([0.17, 0.11, 0.075, 0.031, 0.022, 0.15])


def pose_loss(predicted: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the pose (B, 6), each parameter in units of its natural spread
    (pose encoder pre-training; a unit loss means no better than guessing the mean pose)."""
    spread = POSE_SPREAD.to(true.device)
    return F.mse_loss(predicted.float() / spread, true.float() / spread)


def expression_loss(parts: tuple[PartReader, PartReader], output: torch.Tensor, target: torch.Tensor,
                    pose: torch.Tensor, framing: str) -> torch.Tensor:
    """Part-perceptual loss: the mean L1 between a frozen expression network's features of the
    output's and the target's head-aligned eye and mouth crops (images (B, 3, H, W), crops taken
    at the target's pose (B, 6)), at every conv stage and at the read parameters: a scalar.

    `parts`: the network's (eyes, mouth) part readers, which read eyelids, gaze, brows, jaw, lips
    and smile. An iris a pixel off or a half-shut lid costs little L1, and an average of plausible
    eyes (a blur) costs least; to this network they read as another gaze or another blink.
    MegaPortraits compares its outputs with a gaze network and a face network for the same reason.
    The network never sees labels here and z_dyn gets none: only the target image."""
    eyes, mouth = eye_and_mouth_crops(output.float(), pose.detach().float(), framing)
    with torch.no_grad():
        true_eyes, true_mouth = eye_and_mouth_crops(target.float(), pose.detach().float(), framing)
        wanted = [parts[0].stages(true_eyes), parts[1].stages(true_mouth)]
    terms = [(a - b).abs().mean() for reader, crops, true in zip(parts, (eyes, mouth), wanted)
             for a, b in zip(reader.stages(crops), true)]
    return torch.stack(terms).mean()


def consistency_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """l_consist (VASA-1 Sec. 3.1): L1 between decode(app_j, pose_i, dyn_j) (a) and
    decode(app_i, pose_i, dyn_j) (b), images (B, 3, H, W)."""
    return (a.float() - b.float()).abs().mean()


def cross_identity_loss(source_embedding: torch.Tensor, reenacted_embedding: torch.Tensor) -> torch.Tensor:
    """l_cross_id (VASA-1 Sec. 3.1): 1 - cosine similarity of face-recognition embeddings (B, E)
    of the source and of the source re-enacted with another person's motion."""
    return 1 - F.cosine_similarity(source_embedding.float(), reenacted_embedding.float(), dim=-1).mean()
