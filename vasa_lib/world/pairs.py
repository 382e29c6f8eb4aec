"""Training frames without clips: pairs of one person in two poses and expressions, rendered on
the fly on the batch's device (the face model of paper Sec. 3.1 needs frames, not speech).

A face model learns from two frames i, j of one video. The world can make such a pair from any
person and any two (pose, dynamics) vectors, so a batch needs no clip: the motion comes from a
*motion bank*, the frames of the world's train clips (natural poses and expressions, made once
with speech on the CPU and saved), and each value is replaced, with probability `uniform_share`,
by a uniform draw over its whole range so that the model also sees what natural motion seldom
shows (eyes shut, gaze to the side, a wide smile). With probability `same_pose` the driver keeps
the source's pose: then every pixel of the reconstruction error is about expression.

    bank = motion_bank("train", 200)                          # (N, 17), cached as safetensors
    dm = PairDataModule(bank, batch_size=64, framing="portrait")

A GPU machine without the speech engine reads the banks from a folder made beforehand:

    python -m vasa_lib.world.pairs runs/device_data      # then VASA_DATA_DIR=runs/device_data there

A batch is {"identity": (B, 38), "pose": (B, 2, 6), "dynamics": (B, 2, 11)} on the CPU; after
the transfer to the device it gains "frames" (B, 2, 3, H, W) and "parts" (B, 2, H, W)
(`vasa_lib.world.frame_tuples.render_batch`), so on a GPU the renders are made there.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import lightning as L
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, IterableDataset

from vasa_lib import paths
from vasa_lib.world.identity import IDENTITY_SPLITS, identity_from_id
from vasa_lib.world.params import DYNAMICS_LIMITS, POSE_DIM, POSE_LIMITS

LIMITS = torch.cat([POSE_LIMITS, DYNAMICS_LIMITS])               # (17, 2) low, high


def motion_bank_path(split: str, n_clips: int, cache_dir: str | Path | None = None) -> Path:
    """Where the motion bank of the first n_clips clips of a split is cached."""
    return paths.data_dir(cache_dir) / f"motion_bank_{split}_{n_clips}.safetensors"


def clip_code_key() -> str | None:
    """`source_hash` of the code that makes clips, or None where the speech engine is not
    installed (a GPU machine: it cannot make clips, and reads the banks it is given)."""
    from vasa_lib.world.clips import CLIP_CODE

    try:
        return paths.source_hash(*CLIP_CODE)
    except importlib.metadata.PackageNotFoundError:
        return None


def motion_bank(split: str, n_clips: int, cache_dir: str | Path | None = None,
                path: str | Path | None = None) -> torch.Tensor:
    """Every frame's [pose, dynamics] (N, 17) of the first n_clips clips of a split, read from
    `path` as it is, or from the data cache if the code that makes clips has not changed since
    (else made from the clips, with speech synthesis on the CPU, and saved there)."""
    key = None if path else clip_code_key()
    path = Path(path) if path else motion_bank_path(split, n_clips, cache_dir)
    if path.exists():
        with safe_open(str(path), framework="pt") as f:
            if key is None or (f.metadata() or {}).get("code") == key:
                return f.get_tensor("motion")
    from vasa_lib.world.clips import load_clip

    clips = [load_clip(i, split, cache_dir) for i in range(n_clips)]
    bank = torch.cat([torch.cat([torch.from_numpy(c.pose), torch.from_numpy(c.dynamics)], -1) for c in clips])
    metadata = {"split": split, "n_clips": str(n_clips), "code": key or clip_code_key() or ""}
    paths.write_atomic(path, lambda tmp: save_file({"motion": bank.contiguous()}, str(tmp), metadata=metadata))
    return bank


def draw_motion(natural: torch.Tensor, uniform_share: float, generator: torch.Generator) -> torch.Tensor:
    """Natural motion (N, 17) with each value replaced, with probability uniform_share, by a
    uniform draw over its whole range: (N, 17)."""
    uniform = LIMITS[:, 0] + (LIMITS[:, 1] - LIMITS[:, 0]) * torch.rand(natural.shape, generator=generator)
    return torch.where(torch.rand(natural.shape, generator=generator) < uniform_share, uniform, natural)


class PairBatches(IterableDataset):
    """Endless batches of frame pairs of train-split people (see the module docstring)."""

    def __init__(self, bank: torch.Tensor, batch_size: int, uniform_share: float = 0.2, same_pose: float = 0.3,
                 split: str = "train", seed: int = 0):
        self.bank, self.batch_size, self.seed = bank, batch_size, seed
        self.uniform_share, self.same_pose = uniform_share, same_pose
        self.people = identity_from_id(list(IDENTITY_SPLITS[split]))   # (P, 38), made once
        self.start = 0      # batches already trained on: a resumed run draws on from there

    def batch(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        b = self.batch_size
        pick = torch.randint(len(self.bank), (b, 2), generator=generator)
        motion = draw_motion(self.bank[pick], self.uniform_share, generator)          # (B, 2, 17)
        keep = torch.rand(b, generator=generator) < self.same_pose
        motion[keep, 1, :POSE_DIM] = motion[keep, 0, :POSE_DIM]
        person = torch.randint(len(self.people), (b,), generator=generator)
        return {"identity": self.people[person], "pose": motion[..., :POSE_DIM].contiguous(),
                "dynamics": motion[..., POSE_DIM:].contiguous()}

    def __iter__(self):
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0   # DDP: pairs of its own
        generator = torch.Generator().manual_seed(self.seed + 1000 * rank)
        for _ in range(self.start):      # skip what the run saw before it stopped (parameters only: fast)
            self.batch(generator)
        while True:
            yield self.batch(generator)


class PairDataModule(L.LightningDataModule):
    """Batches of `PairBatches`, rendered at `size` and `framing` on the device they are sent to."""

    def __init__(self, bank: torch.Tensor, batch_size: int, size: int = 128, framing: str = "wide",
                 uniform_share: float = 0.2, same_pose: float = 0.3, seed: int = 0):
        super().__init__()
        self.pairs = PairBatches(bank, batch_size, uniform_share, same_pose, seed=seed)
        self.size, self.framing = size, framing

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.pairs, batch_size=None)

    def state_dict(self) -> dict[str, int]:
        """Saved in Lightning's training state: how many batches the run has drawn."""
        return {"batches": self.trainer.global_step if self.trainer else 0}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """On resume: go on with the batches an unbroken run would have drawn next."""
        self.pairs.start = int(state["batches"])

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        from vasa_lib.world.frame_tuples import render_batch

        with torch.no_grad():
            batch["frames"], batch["parts"] = render_batch(batch, self.size, self.framing)
        return batch


BANKS = (("train", 200), ("test", 40))       # what the face v2 recipe and the reader's grade read


if __name__ == "__main__":
    import sys

    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else None        # the clips stay in the data cache
    for split, n_clips in BANKS:
        path = folder / motion_bank_path(split, n_clips).name if folder else None
        bank = motion_bank(split, n_clips, path=path)
        print(f"{split}: {len(bank)} frames of {n_clips} clips in {path or motion_bank_path(split, n_clips)}")
