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
anything is graded with it (`grade`). `vasa_lib.eval.face` reads decoded faces with it. The
network itself is `face.reader.ParameterReader` (the face floor's expression loss uses one too).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from vasa_lib.checkpoint import check_state
from vasa_lib.eval.probes import r2_per_column
from vasa_lib.face.reader import NAMES, ParameterReader, ReaderConfig
from vasa_lib.optim import TimedCycle, one_cycle, param_groups
from vasa_lib.world.identity import IDENTITY_SPLITS, identity_from_id
from vasa_lib.world.pairs import draw_motion, motion_bank
from vasa_lib.world.params import POSE_DIM, POSE_NAMES
from vasa_lib.world.renderer import render

GROUPS: dict[str, tuple[str, ...]] = {
    "pose": POSE_NAMES,
    "mouth": ("jaw_open", "lip_spread", "lip_round", "lip_close", "tongue", "smile"),
    "eyes": ("eyelid",),
    "gaze": ("gaze_yaw", "gaze_pitch"),
    "brows": ("brow_raise", "brow_frown"),
}


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
