"""Lightning module for training the face latent model (paper Sec. 3.1).

Each batch holds two frames i, j of B clips. One step, all self-supervised except the pose:
- encode both frames; warp each appearance volume to canonical space;
- re-enactment: frame i's appearance with frame j's pose and dynamics must give frame j (and
  the other way round): L1 + SSIM, the L1 weighted up on the mouth, eyes and brows;
- pose: the pose encoder regresses the world's pose labels (MegaPortraits pre-trains its pose
  estimator the same way); the warps use the pose detached, so the reconstruction cannot pull
  z_pose away from the world's units (the pose head learns from the labels only); the dynamics
  code gets no labels;
- l_consist: decode(app_j, pose_i, dyn_j) must equal decode(app_i, pose_i, dyn_j);
- l_cross_id: frame i re-enacted with the next clip's (another person's) pose and dynamics must
  keep frame i's identity embedding (a frozen `IdentityNet`);
- optionally, the part-perceptual loss: the re-enactment's eyes and mouth must look like the
  target's to a frozen expression network (`losses.expression_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import lightning as L
import torch

from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.face.identity_net import IdentityNet
from vasa_lib.face.losses import (
    consistency_loss,
    cross_identity_loss,
    detail_weights,
    expression_loss,
    gradient_loss,
    pose_loss,
    psnr,
    reconstruction_loss,
)
from vasa_lib.face.model import FaceConfig, FaceModel
from vasa_lib.face.reader import ParameterReader
from vasa_lib.optim import TimedCycle, one_cycle


@dataclass
class FaceLossConfig:
    """Loss weights; `detail` is the extra L1 weight on mouth, eyes and brows; `expression` the
    weight of the part-perceptual loss (0: off, no expression network needed); `consist_pairs` /
    `cross_pairs` are how many clips of a batch get the extra
    decodes of l_consist / l_cross_id (each decode costs as much as a re-enactment)."""

    ssim: float = 0.5
    grad: float = 0.0            # L1 on image gradients (`gradient_loss`): sharp edges
    detail: float = 4.0
    pose: float = 1.0
    consist: float = 1.0
    cross_id: float = 0.1
    expression: float = 0.0
    consist_pairs: int = 4
    cross_pairs: int = 4


class LitFace(L.LightningModule):
    """Trains a FaceModel on batches of WorldDataModule(frames=2) or, from video, VideoDataModule."""

    def __init__(self, model: dict | None = None, loss: dict | None = None, lr: float = 1e-3,
                 weight_decay: float = 1e-4, max_steps: int = 10_000, identity_net: str | None = None,
                 max_minutes: float | None = None, expression_net: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.model = FaceModel(FaceConfig(**(model or {})))
        self.loss_config = FaceLossConfig(**(loss or {}))
        self.identity_net: IdentityNet | None = None
        if self.loss_config.cross_id > 0:
            if not identity_net or not Path(identity_net).exists():
                raise ValueError(f"cross_id > 0 needs a trained identity network checkpoint, got {identity_net!r} "
                                 "(train it with `python -m vasa_lib.train identity`)")
            self.identity_net = load_checkpoint(identity_net, IdentityNet).requires_grad_(False)
        self.expression_net: ParameterReader | None = None
        if self.loss_config.expression > 0:
            if not expression_net or not Path(expression_net).exists():
                raise ValueError(f"expression > 0 needs a trained expression network checkpoint, got "
                                 f"{expression_net!r} (train it with `python -m vasa_lib.train reader --config "
                                 "configs/expression_net_portrait.toml`)")
            self.expression_net = load_checkpoint(expression_net, ParameterReader).requires_grad_(False)
            if not self.expression_net.config.crops or self.expression_net.config.framing != self.model.config.framing:
                raise ValueError(f"the expression network must read part crops at the face model's framing "
                                 f"({self.model.config.framing!r}), got crops={self.expression_net.config.crops} "
                                 f"at {self.expression_net.config.framing!r}")

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """All loss terms of one batch (frames (B, 2, 3, H, W), pose (B, 2, 6) and, from the world,
        parts (B, 2, H, W))."""
        c, m = self.loss_config, self.model
        frames = batch["frames"]
        b = frames.shape[0]
        images = torch.cat([frames[:, 0], frames[:, 1]])               # (2B, 3, H, W): all i, then all j
        latent = m.encode(images)
        pose = latent.pose                                              # learns from the labels only,
        latent = replace(latent, pose=pose.detach())                    # as MegaPortraits' frozen pose net
        canonical = m.canonical(latent)
        partner = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(frames.device)
        reenacted = m.render(canonical, latent.identity, latent.pose[partner], latent.dynamics[partner],
                             source=latent)
        weights = None                                                  # video has no part labels
        if "parts" in batch:
            parts = torch.cat([batch["parts"][:, 0], batch["parts"][:, 1]])
            weights = detail_weights(parts[partner], c.detail)
        out = {"recon": reconstruction_loss(reenacted, images[partner], c.ssim, weights)
               + c.grad * gradient_loss(reenacted, images[partner], weights),
               "pose": pose_loss(pose, torch.cat([batch["pose"][:, 0], batch["pose"][:, 1]]))}
        if self.expression_net is not None:
            net = self.expression_net
            out["expression"] = expression_loss((net.eyes, net.mouth), reenacted, images[partner],
                                                latent.pose[partner], m.config.framing)
        with torch.no_grad():
            out["psnr"] = psnr(reenacted, images[partner]).mean()
        if c.consist > 0:
            i = torch.arange(min(c.consist_pairs, b), device=frames.device)
            j = i + b
            a = m.render(canonical[j], latent.identity[j], latent.pose[i], latent.dynamics[j], source=latent[j])
            bb = m.render(canonical[i], latent.identity[i], latent.pose[i], latent.dynamics[j], source=latent[i])
            out["consist"] = consistency_loss(a, bb)
        if self.identity_net is not None:
            i = torch.arange(min(c.cross_pairs, b), device=frames.device)
            other = (i + 1) % b + b                                      # frame j of the next clip
            crossed = m.render(canonical[i], latent.identity[i], latent.pose[other], latent.dynamics[other],
                               source=latent[i])
            with torch.no_grad():
                source_embedding = self.identity_net(images[i])
            out["cross_id"] = cross_identity_loss(source_embedding, self.identity_net(crossed))
        out["loss"] = out["recon"] + c.pose * out["pose"] + sum(
            getattr(c, k) * out[k] for k in ("consist", "cross_id", "expression") if k in out)
        return out

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.losses(batch)
        self.log_dict({f"train/{k}": v.detach() for k, v in out.items()}, batch_size=batch["frames"].shape[0])
        return out["loss"]

    def configure_optimizers(self):
        """AdamW; the learning rate decays over max_steps or, with max_minutes, over the time."""
        h = self.hparams
        opt = torch.optim.AdamW(self.model.parameters(), lr=h.lr, weight_decay=h.weight_decay, betas=(0.9, 0.99))
        sched = TimedCycle(opt, 60 * h.max_minutes, warmup_steps=200) if h.max_minutes \
            else one_cycle(opt, h.lr, h.max_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

