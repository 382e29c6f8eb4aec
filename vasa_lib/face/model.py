"""The face latent model of VASA-1 (paper Sec. 3.1), after MegaPortraits.

An image is encoded once into an appearance volume V_app, an identity code z_id, a head pose
z_pose and a dynamics code z_dyn. Decoding warps V_app from the source's pose and dynamics
to canonical space, refines it with a 3D network, warps it to the driving pose and dynamics,
projects it to 2D and paints the image (the generator modulated by z_id and z_dyn):

    latent = model.encode(portrait)                          # once per portrait
    canonical = model.canonical(latent)                      # once per portrait, cacheable
    frame = model.render(canonical, latent.identity, pose, dynamics, source=latent)   # per frame

`model.decode(latent, pose, dynamics)` does the last two steps; `model.reenact(source, driver)`
gives the source person with the driver's pose and dynamics. With `source_skip` the decoder also
copies the source image's own pixels along the composed warp (`decoder.SourceSkip`), so `render`
needs the source's latent, which then keeps the image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from vasa_lib.face.decoder import CanonicalNet, Generator2d, Projection, SourceSkip
from vasa_lib.face.encoders import AppearanceEncoder, MotionEncoder
from vasa_lib.face.warping import WarpGenerator, base_grid, canonical_points, posed_points, sample, warp_to_canonical
from vasa_lib.world.params import framing


@dataclass
class FaceConfig:
    """Sizes of the face model. The volume is (volume_channels, volume_depth, size/s, size/s) with
    s = volume_stride; flows are (3, volume_depth, flow_size, flow_size). `framing` is the camera
    framing of the images it works on (a key of `vasa_lib.world.params.FRAMINGS`)."""

    size: int = 128
    framing: str = "wide"
    volume_stride: int = 4       # 4, or 2 for a finer volume that keeps more of the source's detail
    flow_size: int = 16
    app_width: int = 64          # appearance encoder channels at size/4
    app_blocks: int = 2
    volume_channels: int = 16
    volume_depth: int = 8
    canonical_blocks: int = 2
    motion_width: int = 64       # motion encoder channels at size/8 (2x at size/16)
    id_dim: int = 64
    dyn_dim: int = 32
    warp_channels: int = 32
    max_flow: float = 0.25
    scale_depth: bool = True     # False: distance scales the image plane only, as the world's camera does
    padding: str = "zeros"       # what a warp reads outside the volume: "zeros" or "border" (face.warping)
    part_crops: bool = False     # z_dyn also read from crops of the eyes and mouth at z_pose (face.crops)
    features: int = 128          # 2D generator channels at size/4
    generator_blocks: int = 2
    source_skip: bool = False    # also copy the source image's pixels along the warp (decoder.SourceSkip)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FaceLatent:
    """The latent of a batch of images: app_volume (B, C, D, H/s, W/s), identity (B, id_dim),
    pose (B, 6) in world units, dynamics (B, dyn_dim) and, for a model with `source_skip`, the
    images themselves (B, 3, H, W), whose pixels the decoder copies."""

    app_volume: torch.Tensor
    identity: torch.Tensor
    pose: torch.Tensor
    dynamics: torch.Tensor
    image: torch.Tensor | None = None

    def __getitem__(self, index: torch.Tensor | slice | int) -> FaceLatent:
        """The latents of some images of the batch (an int keeps a batch of one)."""
        index = [index] if isinstance(index, int) else index
        return FaceLatent(*(None if t is None else t[index] for t in
                            (self.app_volume, self.identity, self.pose, self.dynamics, self.image)))

    @property
    def motion(self) -> torch.Tensor:
        """[z_pose, z_dyn]: (B, 6 + dyn_dim), the vector the motion generator produces."""
        return torch.cat([self.pose, self.dynamics], dim=-1)


class FaceModel(nn.Module):
    """Encoders, warping generators and decoder of the face latent space (Sec. 3.1)."""

    config_class = FaceConfig

    def __init__(self, config: FaceConfig | None = None):
        super().__init__()
        self.config = c = config or FaceConfig()
        if c.size % 16:
            raise ValueError(f"image size must be a multiple of 16, got {c.size}")
        if c.padding not in ("zeros", "border"):
            raise ValueError(f"padding must be 'zeros' or 'border', got {c.padding!r}")
        self.camera = framing(c.framing)
        self.appearance = AppearanceEncoder(c.app_width, c.volume_channels, c.volume_depth, c.id_dim, c.app_blocks,
                                            c.volume_stride)
        self.motion_encoder = MotionEncoder(c.motion_width, c.dyn_dim, c.size, c.framing if c.part_crops else None)
        self.warp_to_canonical = WarpGenerator(c.dyn_dim, c.volume_depth, c.warp_channels, c.max_flow, c.flow_size)
        self.warp_from_canonical = WarpGenerator(c.dyn_dim, c.volume_depth, c.warp_channels, c.max_flow, c.flow_size)
        self.canonical_net = CanonicalNet(c.volume_channels, c.canonical_blocks)
        self.projection = Projection(c.volume_channels, c.volume_depth, c.features)
        self.generator = Generator2d(c.features, c.id_dim + c.dyn_dim, c.generator_blocks, c.volume_stride)
        f_last = c.features // 2 if c.volume_stride == 4 else c.features
        self.skip = SourceSkip(f_last, c.volume_depth) if c.source_skip else None

    def _check_image(self, image: torch.Tensor) -> None:
        s = self.config.size
        if image.ndim != 4 or image.shape[1:] != (3, s, s):
            raise ValueError(f"images must have shape (B, 3, {s}, {s}), got {tuple(image.shape)}")

    def encode(self, image: torch.Tensor) -> FaceLatent:
        """Image (B, 3, H, W) in [0, 1] -> FaceLatent."""
        self._check_image(image)
        app_volume, identity = self.appearance(image)
        pose, dynamics = self.motion_encoder(image)
        return FaceLatent(app_volume, identity, pose, dynamics, image if self.skip is not None else None)

    def encode_motion(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Only the motion: image (B, 3, H, W) -> pose (B, 6), dynamics (B, dyn_dim)."""
        self._check_image(image)
        return self.motion_encoder(image)

    def canonical(self, latent: FaceLatent) -> torch.Tensor:
        """Source -> canonical warp and the canonical 3D network: (B, C, D, h, w)."""
        c = self.config
        flow = self.warp_to_canonical(latent.dynamics)
        volume = warp_to_canonical(latent.app_volume, latent.pose, flow, self.camera, c.scale_depth, c.padding)
        return self.canonical_net(volume)

    def render(self, canonical: torch.Tensor, identity: torch.Tensor, pose: torch.Tensor,
               dynamics: torch.Tensor, source: FaceLatent | None = None) -> torch.Tensor:
        """Canonical volume (B, C, D, h, w), z_id (B, id_dim), driving pose (B, 6) and dynamics
        (B, dyn_dim) -> image (B, 3, H, W) in [0, 1]. `source`: the latent (batch B or 1) the
        canonical volume came from, needed by a model with `source_skip` (its pixels are copied)."""
        c = self.config
        flow = self.warp_from_canonical(dynamics)
        points = canonical_points(base_grid(len(pose), canonical.shape[2:], canonical), pose, flow, self.camera,
                                  c.scale_depth)                    # = warp_from_canonical, its points kept
        volume = sample(canonical, points, c.padding)
        features = self.generator.features(self.projection(volume), torch.cat([identity, dynamics], dim=-1))
        painted = self.generator.to_image(features)
        if self.skip is None:
            return painted
        if source is None or source.image is None:
            raise ValueError("this face model copies the source's pixels (source_skip): pass source=, the "
                             "FaceLatent the canonical volume came from")
        image, source_pose = source.image, source.pose
        source_flow = self.warp_to_canonical(source.dynamics)       # once per source, then shared
        if len(source_pose) == 1 < len(pose):
            image, source_pose, source_flow = (t.expand(len(pose), *t.shape[1:])
                                               for t in (image, source_pose, source_flow))
        points = posed_points(points, source_pose, source_flow, self.camera, c.scale_depth)
        return self.skip(features, points, image, painted)

    def decode(self, latent: FaceLatent, pose: torch.Tensor, dynamics: torch.Tensor) -> torch.Tensor:
        """The latent's person and appearance with another pose (B, 6) and dynamics (B, dyn_dim):
        image (B, 3, H, W)."""
        return self.render(self.canonical(latent), latent.identity, pose, dynamics, source=latent)

    def reenact(self, source: torch.Tensor, driver: torch.Tensor) -> torch.Tensor:
        """The source image's person (B, 3, H, W) with the driver image's pose and dynamics."""
        pose, dynamics = self.encode_motion(driver)
        return self.decode(self.encode(source), pose, dynamics)

    def forward(self, source: torch.Tensor, driver: torch.Tensor) -> torch.Tensor:
        return self.reenact(source, driver)
