"""Datasets of the synthetic world for training: clips, frame tuples, and a Lightning DataModule.

Audio and parameters are made once and cached on disk (`clips.load_clip`); frames are rendered
on the fly, after the batch reaches its device (`WorldDataModule.on_after_batch_transfer`), so a
GPU renders its own training images and a CPU run never stores pixels.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from einops import rearrange, repeat
from torch.utils.data import DataLoader, Dataset

from vasa_lib.world.clips import Clip, load_clip, prepare_clips
from vasa_lib.world.params import DEFAULT_FRAMING
from vasa_lib.world.renderer import render


class ClipDataset(Dataset):
    """Clips 0..n_clips-1 of a split, made once and cached under cache_dir."""

    def __init__(self, split: str, n_clips: int, cache_dir: str | Path | None = None):
        if n_clips < 1:
            raise ValueError(f"n_clips must be >= 1, got {n_clips}")
        self.split, self.n_clips, self.cache_dir = split, n_clips, cache_dir

    def __len__(self) -> int:
        return self.n_clips

    def __getitem__(self, index: int) -> Clip:
        return load_clip(index, self.split, self.cache_dir)


class FrameTuples(Dataset):
    """K frames of one clip per item, as parameters (rendered later, in a batch).

    Item: {"identity": (38,), "identity_id": (), "pose": (K, 6), "dynamics": (K, 11)}.
    Frames are drawn at random each time in training; validation (`fixed=True`) always draws
    the same frames for an item.
    """

    def __init__(self, clips: ClipDataset, frames: int = 2, fixed: bool = False):
        self.frames, self.fixed = frames, fixed
        loaded = [clips[i] for i in range(len(clips))]
        self.identity = torch.stack([c.identity for c in loaded])
        self.identity_id = torch.tensor([c.identity_id for c in loaded])
        self.pose = [torch.from_numpy(c.pose) for c in loaded]
        self.dynamics = [torch.from_numpy(c.dynamics) for c in loaded]

    def __len__(self) -> int:
        return len(self.pose)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        n = len(self.pose[index])
        if self.fixed:
            pick = torch.from_numpy(np.random.default_rng(index).integers(0, n, self.frames))
        else:
            pick = torch.randint(0, n, (self.frames,))
        return {"identity": self.identity[index], "identity_id": self.identity_id[index],
                "pose": self.pose[index][pick], "dynamics": self.dynamics[index][pick]}


def render_batch(batch: dict[str, torch.Tensor], size: int,
                 framing: str = DEFAULT_FRAMING) -> tuple[torch.Tensor, torch.Tensor]:
    """Render a batch of FrameTuples items (identity (B, 38), pose (B, K, 6), dynamics (B, K, 11)):
    frames (B, K, 3, size, size) and their part labels (B, K, size, size) indexing `renderer.PARTS`."""
    b, k = batch["pose"].shape[:2]
    images, parts = render(
        repeat(batch["identity"], "b d -> (b k) d", k=k),
        rearrange(batch["pose"], "b k d -> (b k) d"),
        rearrange(batch["dynamics"], "b k d -> (b k) d"),
        size=size, parts=True, chunk=len(batch["pose"]) * k if batch["pose"].is_cuda else 32, framing=framing,
    )
    return (rearrange(images, "(b k) c h w -> b k c h w", b=b), rearrange(parts, "(b k) h w -> b k h w", b=b))


class WorldDataModule(L.LightningDataModule):
    """Frame tuples of train/val/test clips; batches gain "frames" (B, K, 3, size, size)
    and their part labels "parts" (B, K, size, size), rendered on the batch's device."""

    def __init__(self, n_train: int = 1000, n_val: int = 50, n_test: int = 50, frames: int = 2,
                 size: int = 128, batch_size: int = 16, cache_dir: str | Path | None = None, num_workers: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.sets: dict[str, FrameTuples] = {}

    def prepare_data(self) -> None:
        h = self.hparams
        if h.cache_dir is not None:          # without a cache, clips are made when loaded
            for split, n in (("train", h.n_train), ("val", h.n_val), ("test", h.n_test)):
                prepare_clips(split, n, h.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        for split, n in (("train", h.n_train), ("val", h.n_val), ("test", h.n_test)):
            if split not in self.sets:
                self.sets[split] = FrameTuples(ClipDataset(split, n, h.cache_dir), h.frames, fixed=split != "train")

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(self.sets[split], batch_size=self.hparams.batch_size, shuffle=split == "train",
                          num_workers=self.hparams.num_workers, drop_last=split == "train")

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            batch["frames"], batch["parts"] = render_batch(batch, self.hparams.size)
        return batch


class MixedTuples(FrameTuples):
    """Frame tuples of one person whose last frame, with probability `mix_motion`, takes the pose
    and dynamics of a random frame of another clip, rendered on the item's own person: a longer
    "video" of the same person with more varied motion (within one short clip the head barely
    moves, and a decoder can score well by copying the source). With probability `same_pose`
    the last frame then keeps the first frame's pose: source and driver differ only in their
    facial dynamics, and every pixel of the reconstruction error is about expression."""

    def __init__(self, clips: ClipDataset, frames: int = 2, mix_motion: float = 0.0, same_pose: float = 0.0):
        super().__init__(clips, frames)
        self.mix_motion, self.same_pose = mix_motion, same_pose

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = super().__getitem__(index)
        if torch.rand(()) < self.mix_motion:
            other = int(torch.randint(len(self.pose), ()))
            t = int(torch.randint(len(self.pose[other]), ()))
            item["pose"] = torch.cat([item["pose"][:-1], self.pose[other][t:t + 1]])
            item["dynamics"] = torch.cat([item["dynamics"][:-1], self.dynamics[other][t:t + 1]])
        if torch.rand(()) < self.same_pose:
            item["pose"] = torch.cat([item["pose"][:-1], item["pose"][:1]])
        return item


class TrainClips(WorldDataModule):
    """`WorldDataModule` of the train split only, as `MixedTuples`; `workers` processes make the
    clips that are not cached yet."""

    def __init__(self, n_train: int, frames: int, size: int, batch_size: int, cache_dir: str | Path | None,
                 mix_motion: float = 0.0, same_pose: float = 0.0, workers: int = 1):
        super().__init__(n_train=n_train, frames=frames, size=size, batch_size=batch_size, cache_dir=cache_dir)
        self.mix_motion, self.same_pose, self.workers = mix_motion, same_pose, workers

    def prepare_data(self) -> None:
        prepare_clips("train", self.hparams.n_train, self.hparams.cache_dir, self.workers)

    def setup(self, stage: str | None = None) -> None:
        if "train" not in self.sets:
            self.sets["train"] = MixedTuples(ClipDataset("train", self.hparams.n_train, self.hparams.cache_dir),
                                             self.hparams.frames, self.mix_motion, self.same_pose)
