"""The parameter reader: image -> the world's pose and facial parameters (the synthetic world's
stand-in for the landmark, gaze and head-pose detectors that papers on real video grade with).

VASA-1 judges its faces with networks trained on real faces: SyncNet for the lips, a gaze
estimator, a head-pose estimator (paper Sec. 4.1). Our world knows every parameter of every
frame, so we train one network to read them back from pixels: a strided CNN over the image
(B, 3, H, W) whose flattened last map (position matters, for tx and ty) feeds an MLP that
predicts pose (6) and dynamics (11), standardised by their spread in the world's natural motion.

Fine features need a closer look. At the portrait framing the eye is about 14 pixels wide, and
the natural spread of the gaze (0.14 rad) moves the iris by under a pixel; a CNN whose first layer
halves the image reads pose well but barely the gaze. So, with `crops`, the reader does what gaze
and landmark estimators on real faces do: it reads the pose first, then looks again at
head-aligned crops of the eyes (with the brows) and the mouth, resampled at about twice the
image's resolution along the head's own axes (`face.crops.part_crops`, the analogue of ETH-XGaze's
normalised eye patches), and reads the facial parameters from them with small part CNNs.

It is trained on renders of TRAIN-split people, with motion drawn from the world's clips (each
parameter replaced, with probability `uniform_share`, by a uniform draw over its whole range, so
that requests far from the natural motion are read too), and graded on TEST-split people before
anything is graded with it (`grade`). `vasa_lib.eval.face` reads decoded faces with it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vasa_lib.checkpoint import check_state
from vasa_lib.eval.probes import r2_per_column
from vasa_lib.face.crops import EYE_BOX, MOUTH_BOX, PartReader, conv_stages, eye_and_mouth_crops
from vasa_lib.optim import TimedCycle, one_cycle, param_groups
from vasa_lib.world.identity import IDENTITY_SPLITS, identity_from_id
from vasa_lib.world.pairs import draw_motion, motion_bank
from vasa_lib.world.params import DYNAMICS_NAMES, POSE_DIM, POSE_NAMES
from vasa_lib.world.renderer import render

NAMES: tuple[str, ...] = POSE_NAMES + DYNAMICS_NAMES
GROUPS: dict[str, tuple[str, ...]] = {
    "pose": POSE_NAMES,
    "mouth": ("jaw_open", "lip_spread", "lip_round", "lip_close", "tongue", "smile"),
    "eyes": ("eyelid",),
    "gaze": ("gaze_yaw", "gaze_pitch"),
    "brows": ("brow_raise", "brow_frown"),
}


@dataclass
class ReaderConfig:
    """size: image side; widths: channels of the stride-2 conv stages (the map after them is
    size / 2**len(widths) on a side); hidden: MLP width; framing: of the images it reads."""

    size: int = 128
    widths: tuple[int, ...] = (32, 48, 64, 96, 128)
    hidden: int = 256
    framing: str = "wide"          # the camera framing it reads (`vasa_lib.world.params.FRAMINGS`)
    crops: bool = False            # read the facial parameters from head-aligned part crops
    part_widths: tuple[int, ...] = (32, 64, 96)

    def __post_init__(self) -> None:
        self.widths, self.part_widths = tuple(self.widths), tuple(self.part_widths)

    def to_dict(self) -> dict:
        return asdict(self)


class ParameterReader(nn.Module):
    """Images (B, 3, size, size) in [0, 1] -> parameters (B, 17) in world units, in `NAMES` order.

    With `crops`, the pose comes from the whole image and the facial parameters from the part
    crops taken at that pose (`part_crops`): both eyes (mirrored boxes, one shared CNN) and the
    mouth."""

    config_class = ReaderConfig

    def __init__(self, config: ReaderConfig | None = None):
        super().__init__()
        self.config = c = config or ReaderConfig()
        self.features = conv_stages(3, c.widths)
        side = c.size // 2 ** len(c.widths)
        self.head = nn.Sequential(nn.Linear(c.widths[-1] * side * side, c.hidden), nn.SiLU(),
                                  nn.Linear(c.hidden, len(NAMES)))
        if c.crops:
            self.eyes = PartReader(EYE_BOX, 2, c.part_widths, c.hidden)
            self.mouth = PartReader(MOUTH_BOX, 1, c.part_widths, c.hidden)
            self.part_index = [NAMES.index(n) for n in EYE_BOX.reads + MOUTH_BOX.reads]
        self.register_buffer("mean", torch.zeros(len(NAMES)))
        self.register_buffer("std", torch.ones(len(NAMES)))

    def whole(self, images: torch.Tensor) -> torch.Tensor:
        """Standardised parameters (B, 17) read from the whole image."""
        return self.head(rearrange(self.features(images * 2 - 1), "b c h w -> b (c h w)"))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Standardised parameters (B, 17)."""
        out = self.whole(images)
        if not self.config.crops:
            return out
        return self.refine(images, out)

    def refine(self, images: torch.Tensor, whole: torch.Tensor) -> torch.Tensor:
        """The whole image's read (B, 17) with the facial parameters replaced by the part
        readers' (crops at the read pose, which is not trained through them)."""
        pose = (whole * self.std + self.mean)[:, :POSE_DIM].detach()
        eyes, mouth = eye_and_mouth_crops(images, pose, self.config.framing)
        out = whole.clone()
        out[:, self.part_index] = torch.cat([self.eyes(eyes), self.mouth(mouth)], -1)
        return out

    @torch.no_grad()
    def read(self, images: torch.Tensor, batch: int = 64) -> torch.Tensor:
        """Parameters (B, 17) in world units, read in batches."""
        out = torch.cat([self(images[i:i + batch]) for i in range(0, len(images), batch)])
        return out * self.std + self.mean


def group_r2(pred: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """R^2 of read parameters (N, 17) against the truth, averaged within each of `GROUPS`."""
    per_name = dict(zip(NAMES, r2_per_column(pred, true).tolist()))
    return {group: sum(per_name[n] for n in names) / len(names) for group, names in GROUPS.items()}


def renders(ids: torch.Tensor, params: torch.Tensor, size: int, framing: str = "wide") -> torch.Tensor:
    """Person ids (N,) rendered with parameters (N, 17) on params' device: images (N, 3, size, size)."""
    people = identity_from_id(ids.tolist()).to(params.device)
    return render(people, params[:, :POSE_DIM], params[:, POSE_DIM:], size=size, framing=framing)


@torch.no_grad()
def grade(reader: ParameterReader, n: int = 512, n_clips: int = 40, seed: int = 2,
          cache_dir: str | None = None) -> dict[str, float]:
    """The reader's own grade: R^2 per group on renders of TEST-split people with natural test motion."""
    generator = torch.Generator().manual_seed(seed)
    bank = motion_bank("test", n_clips, cache_dir)
    true = bank[torch.randint(len(bank), (n,), generator=generator)]
    test_ids = torch.tensor(IDENTITY_SPLITS["test"])
    ids = test_ids[torch.randint(len(test_ids), (n,), generator=generator)]
    device = next(reader.parameters()).device
    images = renders(ids, true.to(device), reader.config.size, reader.config.framing)
    return group_r2(reader.read(images).cpu(), true)


def train_reader(config: ReaderConfig, steps: int, batch: int = 64, lr: float = 2e-3, uniform_share: float = 0.3,
                 n_clips: int = 200, seed: int = 0, log_every: int = 0, cache_dir: str | None = None,
                 max_minutes: float | None = None, init: dict[str, torch.Tensor] | None = None
                 ) -> tuple[ParameterReader, dict]:
    """Fit the reader on renders of train-split people (see the module docstring), on the GPU when
    there is one; returns it (eval mode, on the CPU) and a report: its grade on test people, the
    final loss, seconds. With `max_minutes`, training stops at that time or at `steps`, whichever
    comes first, and the learning rate decays over the time (`optim.TimedCycle`). `init`: the
    tensors of an earlier reader of the same config to start from."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    natural = motion_bank("train", n_clips, cache_dir)
    people = identity_from_id(list(IDENTITY_SPLITS["train"])).to(device)
    model = ParameterReader(config).to(device)
    model.mean.copy_(natural.mean(0))
    model.std.copy_(natural.std(0).clamp_min(1e-3))
    if init is not None:
        check_state(model, init, "init")
        model.load_state_dict(init)
    optimiser = torch.optim.AdamW(param_groups(model, 1e-4), lr=lr)
    schedule = TimedCycle(optimiser, 60 * max_minutes, warmup_steps=100) if max_minutes else \
        one_cycle(optimiser, lr, steps, warmup=0.1, final_div_factor=1e4)
    start, losses = time.perf_counter(), []
    model.train()
    for step in range(1, steps + 1):
        params = draw_motion(natural[torch.randint(len(natural), (batch,), generator=generator)], uniform_share,
                             generator).to(device)
        who = people[torch.randint(len(people), (batch,), generator=generator).to(device)]
        images = render(who, params[:, :POSE_DIM], params[:, POSE_DIM:], size=config.size, framing=config.framing,
                        chunk=batch if device == "cuda" else 32)
        target, whole = (params - model.mean) / model.std, model.whole(images)
        loss = F.smooth_l1_loss(whole, target)          # the pose the crops are taken at is learnt here
        if config.crops:
            loss = loss + F.smooth_l1_loss(model.refine(images, whole), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if log_every and step % log_every == 0:
            print(f"reader step {step} loss {sum(losses[-log_every:]) / log_every:.4f} "
                  f"| {time.perf_counter() - start:.0f} s", flush=True)
        if max_minutes and schedule.fraction() >= 1.0:
            break
    model.eval()
    report = {"steps": step, "batch": batch, "device": device,
              "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
              "train_seconds": round(time.perf_counter() - start, 1),
              "grade_r2_test_people": {k: round(v, 4) for k, v in grade(model, cache_dir=cache_dir).items()}}
    return model.cpu(), report
