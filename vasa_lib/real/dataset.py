"""Training sets from an ingested folder (`vasa_lib.real.ingest`): the real-video counterparts of
the world's datasets, for `python -m vasa_lib.train face|identity|motion --data FOLDER`.

No world labels exist there: they are estimated from the face's landmarks (`labels.estimate`).
The face model's pose label is the head as the crop shows it (`VideoClip.pose`); the identity
network learns that clips of one person (one folder or file of the video folder) show the same
face; the motion generator's controls are what video gives: the head's distance to the camera
and the gaze, estimated in the whole video (`VideoClip.video_params`), and a neutral emotion.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from einops import rearrange
from torch.utils.data import DataLoader, Dataset

from vasa_lib.audio.mel import audio_frame_features
from vasa_lib.face.model import FaceModel
from vasa_lib.motion.latents import LatentSet, encode_frames, offsets_of
from vasa_lib.real import labels
from vasa_lib.real.ingest import CLIP_FORMAT, from_crop
from vasa_lib.world.params import DYNAMICS_DIM, DYNAMICS_NAMES, EMOTIONS, POSE_DIM, pose_index


@dataclass
class VideoClip:
    """One ingested clip: frames (T, S, S, 3) uint8, audio (T * 640,) float32, the detector's
    keypoints (T, 6, 2) and the landmarks (T, 478, 3) in crop pixels, the crop (T, 3) centre x, y
    and side in the video's pixels, the video's frame size (W, H), its person's name and number
    in the dataset."""

    name: str
    person: str
    person_id: int
    frames: np.ndarray
    audio: np.ndarray
    keypoints: np.ndarray
    landmarks: np.ndarray
    crop: np.ndarray
    frame_size: tuple[int, int]

    @property
    def params(self) -> np.ndarray:
        """The world's 17 parameters (T, 17) estimated as the crop shows the head (`labels.PARAM_NAMES`)."""
        size = self.frames.shape[1]
        return labels.estimate(self.landmarks, (size, size))

    @property
    def pose(self) -> np.ndarray:
        """The head pose (T, 6) in the world's units, as the crop shows it: the face model's label."""
        return self.params[:, :POSE_DIM]

    @property
    def video_params(self) -> np.ndarray:
        """The 17 parameters (T, 17) estimated in the whole video (the landmarks taken back through
        the crop): where the head is in the picture and how near the camera, which the crop hides."""
        return labels.estimate(from_crop(self.landmarks, self.crop, self.frames.shape[1]), self.frame_size)

    def images(self, pick: torch.Tensor | slice = slice(None)) -> torch.Tensor:
        """Frames `pick` as (K, 3, S, S) float in [0, 1]."""
        return rearrange(torch.from_numpy(self.frames[pick]), "k h w c -> k c h w").float() / 255


def load_dataset(folder: str | Path) -> list[VideoClip]:
    """The clips its summary.json lists as kept (files of an interrupted or earlier run with other
    settings are not), sorted by name; people numbered in order of their names."""
    folder = Path(folder)
    run = f"`python -m vasa_lib.real.ingest VIDEO_FOLDER --out {folder}`"
    if not (folder / "summary.json").exists():
        raise ValueError(f"{folder} has no summary.json: ingestion has not finished there; run {run}")
    kept = sorted(c["clip"] for r in json.loads((folder / "summary.json").read_text())["records"] for c in r["kept"])
    if not kept:
        raise ValueError(f"ingestion kept no clip in {folder} (see its summary.json for the reasons)")
    files = [folder / "clips" / f"{name}.npz" for name in kept]
    loaded = [dict(np.load(f)) for f in files]
    if any("landmarks" not in d for d in loaded):
        raise ValueError(f"{folder} holds clips of an older ingestion, without landmarks (format {CLIP_FORMAT} has "
                         f"them): run {run} again, which ingests every video again")
    people = sorted({str(d["person"]) for d in loaded})
    return [VideoClip(f.stem, str(d["person"]), people.index(str(d["person"])), d["frames"], d["audio"],
                      d["keypoints"], d["landmarks"], d["crop"], tuple(int(v) for v in d["frame_size"]))
            for f, d in zip(files, loaded)]


class VideoFrameTuples(Dataset):
    """K random frames of one clip per item: {"frames": (K, 3, S, S), "pose": (K, 6) estimated,
    "identity_id": () the person's number}; the face model's batches, without part labels."""

    def __init__(self, clips: list[VideoClip], frames: int = 2):
        self.clips, self.frames = clips, frames
        self.pose = [torch.from_numpy(c.pose) for c in clips]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip = self.clips[index]
        pick = torch.randint(0, len(clip.frames), (self.frames,))
        return {"frames": clip.images(pick.numpy()), "pose": self.pose[index][pick],
                "identity_id": torch.tensor(clip.person_id)}


class VideoDataModule(L.LightningDataModule):
    """Train batches of `VideoFrameTuples` from an ingested folder."""

    def __init__(self, folder: str | Path, batch_size: int, frames: int = 2):
        super().__init__()
        self.folder, self.batch_size, self.frames = folder, batch_size, frames
        self.train: VideoFrameTuples | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train is None:
            self.train = VideoFrameTuples(load_dataset(self.folder), self.frames)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=min(self.batch_size, len(self.train)), shuffle=True, drop_last=True)


def person_images(clips: list[VideoClip]):
    """For the identity network: a function (people (P,), generator) -> (P, 3, S, S), one random
    frame of a random clip of each person."""
    by_person: dict[int, list[VideoClip]] = {}
    for clip in clips:
        by_person.setdefault(clip.person_id, []).append(clip)

    def draw(people: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        images = []
        for person in people.tolist():
            options = by_person[person]
            clip = options[int(torch.randint(len(options), (), generator=generator))]
            t = int(torch.randint(len(clip.frames), (), generator=generator))
            images.append(clip.images(slice(t, t + 1)))
        return torch.cat(images)

    return draw


def video_latents(face: FaceModel, clips: Sequence[VideoClip], batch_size: int = 64,
                  info: dict | None = None) -> LatentSet:
    """The motion generator's training set from ingested clips: a `LatentSet` whose motion is
    the face model's [z_pose, z_dyn] of every frame; true_pose holds the head pose estimated in
    the whole video (`VideoClip.video_params`) and true_dynamics NaN (unknown on video);
    controls: that estimate's mean distance and mean gaze, neutral emotion."""
    params = [torch.from_numpy(c.video_params) for c in clips]
    gaze = [POSE_DIM + DYNAMICS_NAMES.index(name) for name in ("gaze_yaw", "gaze_pitch")]
    n = len(clips)
    motion = encode_frames(face, (c.images() for c in clips), batch_size)
    return LatentSet(
        motion=motion, mel=torch.cat([audio_frame_features(c.audio) for c in clips]),
        true_pose=torch.cat([p[:, :POSE_DIM] for p in params]),
        true_dynamics=torch.full((len(motion), DYNAMICS_DIM), float("nan")),
        offsets=offsets_of([len(c.frames) for c in clips]),
        gaze=torch.stack([p[:, gaze].mean(0) for p in params]),
        distance=torch.stack([p[:, pose_index("distance")].mean(0, keepdim=True) for p in params]),
        emotion=torch.full((n,), EMOTIONS.index("neutral")), identity_id=torch.tensor([c.person_id for c in clips]),
        test_voice=torch.zeros(n, dtype=torch.bool), info=info or {})
