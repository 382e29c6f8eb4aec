"""Motion latents extracted from video: the training data of the motion generator (paper Sec. 3.2).

VASA-1 does not train its motion generator on labels: it runs the face encoder over every frame
of its talking-face videos and learns to generate the resulting [z_pose, z_dyn] sequences. We do
the same on the synthetic world: render each clip's frames, encode them with the face model's
motion encoder, and keep per frame

    motion (F, 6 + dyn_dim)   [z_pose, z_dyn] in the face latent space (25 fps)
    mel    (F, 320)           the log-mel stack of the same frame (`vasa_lib.audio.mel`)
    true_pose (F, 6), true_dynamics (F, 11)   the world's hidden truth, for grading only

plus per clip the controls (gaze, distance, emotion), the person and whether the voice is one
never heard in training. All clips of a set are concatenated along frames; clip i owns frames
offsets[i] .. offsets[i + 1]. A set is cached on disk as one safetensors file keyed by the face
checkpoint's hash, a hash of the code that makes it (`LATENT_CODE`: the world, the renderer, the
face model, the mel front end and this module), the split and the clip range, with the
normalisation statistics of its motion.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from vasa_lib.audio.mel import audio_frame_features
from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.face.model import FaceModel
from vasa_lib.paths import course_path, data_dir, source_hash, write_atomic
from vasa_lib.world.clips import CLIP_CODE, Clip, load_clip, make_clip, render_clip
from vasa_lib.world.params import EMOTIONS, POSE_DIM
from vasa_lib.world.speech import TEST_VOICES

LATENTS_VERSION = 1   # bump when the stored format changes
LATENT_CODE = (*CLIP_CODE, "world/renderer.py", "face", "audio/mel.py", "motion/latents.py")
PER_FRAME = ("motion", "mel", "true_pose", "true_dynamics")
PER_CLIP = ("gaze", "distance", "emotion", "identity_id", "test_voice")


WORLD = "world"     # in place of a face checkpoint: the motion space of the world's own parameters


def file_hash(path: str | Path) -> str:
    """The first 12 hex digits of a file's SHA-256 (names a face checkpoint in cache keys)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def motion_space(face_checkpoint: str | Path) -> str | Path:
    """A config's face_checkpoint as load_latents takes it: WORLD as it is, a checkpoint path
    found from any folder (`paths.course_path`)."""
    return WORLD if str(face_checkpoint) == WORLD else course_path(face_checkpoint)


def space_key(face_checkpoint: str | Path) -> str:
    """What names a motion space: the face checkpoint's `file_hash`, or "world" for `WORLD`."""
    return WORLD if str(face_checkpoint) == WORLD else file_hash(face_checkpoint)


@dataclass
class LatentSet:
    """Motion latents of n clips, concatenated over their F frames in total.

    Per frame: motion (F, D), mel (F, 320), true_pose (F, 6), true_dynamics (F, 11).
    Per clip: offsets (n + 1,), gaze (n, 2), distance (n, 1), emotion (n,) index into EMOTIONS,
    identity_id (n,), test_voice (n,) bool. info: where the set comes from (face checkpoint
    and its hash, split, clip indices, motion seeds).
    """

    motion: torch.Tensor
    mel: torch.Tensor
    true_pose: torch.Tensor
    true_dynamics: torch.Tensor
    offsets: torch.Tensor
    gaze: torch.Tensor
    distance: torch.Tensor
    emotion: torch.Tensor
    identity_id: torch.Tensor
    test_voice: torch.Tensor
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def pose(self) -> torch.Tensor:
        """z_pose (F, 6)."""
        return self.motion[:, :POSE_DIM]

    @property
    def dynamics(self) -> torch.Tensor:
        """z_dyn (F, dyn_dim)."""
        return self.motion[:, POSE_DIM:]

    def lengths(self) -> list[int]:
        """Frames per clip."""
        return self.offsets.diff().tolist()

    def split(self, name: str) -> list[torch.Tensor]:
        """A per-frame tensor cut into clips: name in PER_FRAME -> [(T_i, ...)]."""
        if name not in PER_FRAME:
            raise ValueError(f"{name!r} is not a per-frame tensor; choose one of {PER_FRAME}")
        return list(torch.split(getattr(self, name), self.lengths()))

    def controls(self, i: int) -> dict[str, torch.Tensor]:
        """Clip i's controls as the motion model takes them: gaze (2,), distance (1,), emotion ()."""
        return {"gaze": self.gaze[i], "distance": self.distance[i], "emotion": self.emotion[i]}

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalisation statistics of the motion: per-dimension mean and std (D,)."""
        return self.motion.mean(0), self.motion.std(0)

    def save(self, path: str | Path) -> Path:
        """Write the set (and its statistics) as one safetensors file, atomically."""
        mean, std = self.stats()
        tensors = {name: getattr(self, name).contiguous() for name in (*PER_FRAME, "offsets", *PER_CLIP)}
        tensors.update(motion_mean=mean, motion_std=std)
        metadata = {"vasa_lib_latents": json.dumps({"version": LATENTS_VERSION, **self.info})}
        return write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))

    @classmethod
    def load(cls, path: str | Path) -> LatentSet:
        """Read a set written by `save`; ValueError if it is damaged or of another format version."""
        try:
            with safe_open(str(path), framework="pt") as f:
                info = json.loads((f.metadata() or {}).get("vasa_lib_latents", "{}"))
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as err:  # safetensors raises several types for damaged files
            raise ValueError(f"{path} is not a readable latent set: {err}") from err
        if info.pop("version", None) != LATENTS_VERSION:
            raise ValueError(f"{path} has another latent format version (expected {LATENTS_VERSION})")
        return cls(**{name: tensors[name] for name in (*PER_FRAME, "offsets", *PER_CLIP)}, info=info)


def offsets_of(lengths: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Clip i owns frames offsets[i] .. offsets[i + 1]: (n + 1,) from the n clips' lengths."""
    return torch.cat([torch.zeros(1, dtype=torch.long), torch.as_tensor(lengths, dtype=torch.long).cumsum(0)])


@torch.inference_mode()
def encode_frames(face: FaceModel, clip_frames: Iterable[torch.Tensor], batch_size: int = 64) -> torch.Tensor:
    """[z_pose, z_dyn] (F, 6 + dyn_dim) of every frame of clips given one at a time as (T, 3, H, W),
    encoded in batches by the face model's motion encoder (Sec. 3.1) on its device: memory holds
    one clip's frames, however many clips there are."""
    face.eval()
    device = next(face.parameters()).device
    motion = [torch.cat(face.encode_motion(batch.to(device)), dim=1).float().cpu()
              for frames in clip_frames for batch in frames.split(batch_size)]
    return torch.cat(motion)


def encode_clips(face: FaceModel, clips: Sequence[Clip], batch_size: int = 64, info: dict | None = None) -> LatentSet:
    """Render every frame of the clips (one clip at a time), encode it with the face model's
    motion encoder (`encode_frames`) and gather the LatentSet."""
    if not clips:
        raise ValueError("encode_clips needs at least one clip")
    device = next(face.parameters()).device
    frames = (render_clip(c, size=face.config.size, device=device, framing=face.config.framing) for c in clips)
    return clip_set(clips, encode_frames(face, frames, batch_size), info)


def world_parameters(clips: Sequence[Clip], info: dict | None = None) -> LatentSet:
    """The clips' own parameters as motion, [pose (6), dynamics (11)] per frame: the motion space
    of a perfect parametric face model (a 3DMM, as SadTalker uses), rendered by the world."""
    if not clips:
        raise ValueError("world_parameters needs at least one clip")
    truth = torch.cat([torch.from_numpy(np.concatenate([c.pose, c.dynamics], -1)) for c in clips]).float()
    return clip_set(clips, truth, info)


def clip_set(clips: Sequence[Clip], motion: torch.Tensor, info: dict | None = None) -> LatentSet:
    """A LatentSet of the clips with the given motion (F, D): their audio features, truth and controls."""
    return LatentSet(
        motion=motion,
        mel=torch.cat([audio_frame_features(c.audio) for c in clips]),
        true_pose=torch.from_numpy(np.concatenate([c.pose for c in clips])).float(),
        true_dynamics=torch.from_numpy(np.concatenate([c.dynamics for c in clips])).float(),
        offsets=offsets_of([c.n_frames for c in clips]),
        gaze=torch.tensor([c.gaze for c in clips], dtype=torch.float32),
        distance=torch.tensor([[c.distance] for c in clips], dtype=torch.float32),
        emotion=torch.tensor([EMOTIONS.index(c.emotion) for c in clips]),
        identity_id=torch.tensor([c.identity_id for c in clips]),
        test_voice=torch.tensor([c.voice in TEST_VOICES for c in clips]),
        info=info or {},
    )


def reseeded_clip(index: int, split: str, motion_seed: int, voices: str = "world") -> Clip:
    """Clip `index` of a split with the same speech, person and controls but another motion:
    another sample of the one-to-many mapping from audio to motion."""
    return make_clip(index, split, voices,
                     motion_seed=int(np.random.default_rng([index, motion_seed]).integers(1 << 30)))


def load_latents(split: str, count: int, face_checkpoint: str | Path, start: int = 0, motion_seed: int | None = None,
                 cache_dir: str | Path | None = None, batch_size: int = 64, verbose: bool = False,
                 voices: str = "world") -> LatentSet:
    """Latents of clips start .. start + count - 1 of a split, encoded with the face checkpoint, or
    with face_checkpoint = WORLD the clips' own parameters (`world_parameters`).

    Cached under cache_dir/motion_latents/ (see `data_dir`) as
    `{face hash}{code hash}-{split}-{start}-{count}[-seed{motion_seed}][-many].safetensors`; a larger
    cached set with the same start is sliced. motion_seed: encode `reseeded_clip`s instead of the
    clips. voices: "many" speaks train and val clips with more voices (`clips.make_clip`).
    """
    if count < 1 or start < 0:
        raise ValueError(f"need count >= 1 and start >= 0, got count={count}, start={start}")
    face_hash = space_key(face_checkpoint)
    key = face_hash + source_hash(*LATENT_CODE)
    folder = data_dir(cache_dir) / "motion_latents"
    suffix = ("" if motion_seed is None else f"-seed{motion_seed}") + ("" if voices == "world" else f"-{voices}")
    for cached in sorted(folder.glob(f"{key}-{split}-{start}-*{suffix}.safetensors")):
        n = cached.name.removesuffix(".safetensors").removesuffix(suffix).split("-")[-1]
        if n.isdigit() and int(n) >= count:
            try:
                return subset(LatentSet.load(cached), range(count))
            except ValueError:
                cached.unlink(missing_ok=True)      # damaged: rebuilt below
    clip_dir = data_dir(cache_dir)
    indices = range(start, start + count)
    clips = [load_clip(i, split, clip_dir, voices) if motion_seed is None
             else reseeded_clip(i, split, motion_seed, voices) for i in indices]
    if verbose:
        how = "taking the world's parameters of" if face_hash == WORLD else "encoding"
        print(f"{how} {sum(c.n_frames for c in clips)} frames of {count} {split} clips"
              + ("" if face_hash == WORLD else f" with {face_checkpoint}"), file=sys.stderr, flush=True)
    info = {"face_checkpoint": str(face_checkpoint), "face_hash": face_hash, "split": split, "start": start,
            "count": count, "motion_seed": motion_seed, "voices": voices}
    if face_hash == WORLD:
        latents = world_parameters(clips, info)
    else:
        latents = encode_clips(load_checkpoint(face_checkpoint, FaceModel), clips, batch_size, info)
    latents.save(folder / f"{key}-{split}-{start}-{count}{suffix}.safetensors")
    return latents


def subset(latents: LatentSet, clips: Sequence[int] | range) -> LatentSet:
    """The set restricted to the given clip numbers (in that order)."""
    clips = list(clips)
    if not clips or min(clips) < 0 or max(clips) >= len(latents):
        raise ValueError(f"clip numbers must be in 0 .. {len(latents) - 1}, got {clips[:5]}...")
    frames = torch.cat([torch.arange(latents.offsets[i], latents.offsets[i + 1]) for i in clips])
    lengths = latents.offsets.diff()[clips]
    per_frame = {name: getattr(latents, name)[frames] for name in PER_FRAME}
    per_clip = {name: getattr(latents, name)[clips] for name in PER_CLIP}
    return LatentSet(**per_frame, **per_clip, offsets=offsets_of(lengths),
                     info={**latents.info, "count": len(clips)})
