"""Talking-head clips of the synthetic world: speech, motion and ground truth, from a seed.

A clip is everything VASA-1 would see in a training video plus everything it never sees: the
text, the voice, the 16 kHz audio, the phoneme timeline, the person (identity number and
parameters), the clip-level controls (emotion, main gaze direction, head distance) and the
per-frame ground truth pose (T, 6) and dynamics (T, 11) at 25 fps. Frames are not stored: they
are rendered on demand (`render_clip`), which is cheap.

`make_clip(index, split)` is deterministic: the same index and split give the same clip on every
machine (`tests/world_fingerprint.json` holds a fingerprint of a few clips of each split).
`load_clip` caches the audio and parameters on disk as .npz (no pickles), in a folder keyed by a
hash of the code that makes clips (`CLIP_CODE`), so a cache written by other code is never read.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from vasa_lib.paths import source_hash, write_atomic
from vasa_lib.world import speech as tts
from vasa_lib.world.articulation import articulate
from vasa_lib.world.behaviour import animate
from vasa_lib.world.identity import IDENTITY_SPLITS, identity_from_id
from vasa_lib.world.params import (
    DEFAULT_FRAMING,
    DYNAMICS_RANGES,
    EMOTIONS,
    FPS,
    POSE_DIM,
    POSE_RANGES,
    SAMPLE_RATE,
    clamp_params,
)
from vasa_lib.world.renderer import render
from vasa_lib.world.sentences import sentence_for

WORLD_VERSION = 1  # seeds every clip's draws: bump to draw a new world
CLIP_CODE = tuple(f"world/{name}.py" for name in
                  ("params", "identity", "speech", "sentences", "articulation", "behaviour", "clips"))
SPLITS = tuple(IDENTITY_SPLITS)
VOICES = ("world", "many")  # whose voices speak a clip: the split's own, or speech.MANY_VOICES (train and val only)
HOP = SAMPLE_RATE // FPS  # audio samples per video frame


@dataclass
class Clip:
    """One talking-head clip. audio (N,) with N = n_frames * 640; pose (T, 6); dynamics (T, 11)."""

    split: str
    index: int
    text: str
    voice: str
    audio: np.ndarray
    phonemes: list[tts.Phoneme]
    identity_id: int
    emotion: str
    gaze: tuple[float, float]
    distance: float
    pose: np.ndarray
    dynamics: np.ndarray
    identity: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.identity = identity_from_id(self.identity_id)

    @property
    def n_frames(self) -> int:
        return len(self.pose)

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def _check_controls(emotion: str, gaze: tuple[float, float], distance: float) -> None:
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; choose one of {EMOTIONS}")
    for name, value, (low, high) in (
        ("gaze theta", gaze[0], DYNAMICS_RANGES["gaze_yaw"]),
        ("gaze phi", gaze[1], DYNAMICS_RANGES["gaze_pitch"]),
        ("distance", distance, POSE_RANGES["distance"]),
    ):
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"{name} = {value} is outside [{low}, {high}]")


def clip_from_speech(
    speech: tts.Speech,
    identity_id: int,
    emotion: str = "neutral",
    gaze: tuple[float, float] = (0.0, 0.0),
    distance: float = 1.0,
    motion_seed: int = 0,
    split: str = "custom",
    index: int = -1,
) -> Clip:
    """Animate a person speaking `speech`: the same speech with another motion_seed gives another
    plausible motion (the one-to-many mapping of audio to motion)."""
    _check_controls(emotion, gaze, distance)
    n_frames = max(1, math.ceil(len(speech.audio) / HOP))
    audio = np.pad(speech.audio, (0, n_frames * HOP - len(speech.audio))).astype(np.float32)
    mouth = articulate(speech.phonemes, n_frames, fps=FPS)
    rng = np.random.default_rng([identity_id, motion_seed, 0xC1])
    pose, dynamics = animate(audio, mouth, identity_id, emotion, gaze, distance, rng)
    return Clip(split, index, speech.text, speech.voice, audio, list(speech.phonemes), identity_id,
                emotion, (float(gaze[0]), float(gaze[1])), float(distance), pose, dynamics)


def make_clip(index: int, split: str = "train", voices: str = "world", **overrides) -> Clip:
    """Clip number `index` of a split, deterministic. Keyword overrides (text, voice, identity_id,
    emotion, gaze, distance, motion_seed) replace the drawn choice. voices="many": the same clip
    (text, person, controls, motion seed, speaking rate and pitch) spoken by one of the 456
    `speech.MANY_VOICES` instead, drawn from its own seed; train and val clips only, so that the
    test split's unheard voices stay unheard."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    if voices not in VOICES:
        raise ValueError(f"unknown voices {voices!r}; choose one of {VOICES}")
    if voices == "many" and split == "test":
        raise ValueError("test clips keep the world's voices (half of them are never heard in training)")
    if index < 0:
        raise ValueError(f"clip index must be >= 0, got {index}")
    rng = np.random.default_rng([index, SPLITS.index(split), WORLD_VERSION])
    ids = IDENTITY_SPLITS[split]
    # test clips: half with voices never heard in training
    voice = tts.sample_voice(rng, "test" if split == "test" and rng.random() < 0.5 else "train")
    choice = {
        "text": sentence_for(int(rng.integers(1 << 30)), "test" if split == "test" else "train"),
        "identity_id": int(ids[int(rng.integers(len(ids)))]),
        "emotion": str(rng.choice(EMOTIONS, p=[0.4, 0.15, 0.15, 0.15, 0.15])),
        "gaze": (float(np.clip(rng.normal(0, 0.15), -0.4, 0.4)), float(np.clip(rng.normal(0, 0.08), -0.25, 0.25))),
        "distance": float(rng.uniform(0.85, 1.35)),
        "motion_seed": int(rng.integers(1 << 30)),
        "voice": voice["voice"],
    }
    if voices == "many":
        voice_rng = np.random.default_rng([index, SPLITS.index(split), WORLD_VERSION, 1])
        choice["voice"] = str(voice_rng.choice(tts.MANY_VOICES))
    unknown = set(overrides) - set(choice)
    if unknown:
        raise ValueError(f"unknown clip settings {sorted(unknown)}; allowed: {sorted(choice)}")
    choice.update(overrides)
    speech = tts.synthesize(choice["text"], voice=choice["voice"], rate=voice["rate"], pitch=voice["pitch"],
                            pitch_range=voice["pitch_range"])
    return clip_from_speech(speech, choice["identity_id"], choice["emotion"], choice["gaze"], choice["distance"],
                            choice["motion_seed"], split=split, index=index)


def _cache_path(cache_dir: Path, split: str, index: int, voices: str = "world") -> Path:
    folder = split if voices == "world" else f"{split}-{voices}-voices"
    return Path(cache_dir) / f"world-{source_hash(*CLIP_CODE)}" / folder / f"{index:07d}.npz"


def save_clip(clip: Clip, path: Path) -> None:
    """Store a clip's audio, parameters and metadata as .npz (written atomically)."""
    write_atomic(path, lambda tmp: np.savez(
        tmp, audio=clip.audio, pose=clip.pose, dynamics=clip.dynamics,
        symbols=np.array([p.symbol for p in clip.phonemes], dtype=str),
        times=np.array([[p.start, p.end] for p in clip.phonemes], dtype=np.float64).reshape(-1, 2),
        meta=np.array([clip.split, str(clip.index), clip.text, clip.voice, str(clip.identity_id), clip.emotion,
                       str(clip.gaze[0]), str(clip.gaze[1]), str(clip.distance)]),
    ))


def read_clip(path: Path) -> Clip:
    """Load a clip written by `save_clip`."""
    with np.load(path, allow_pickle=False) as f:
        split, index, text, voice, identity_id, emotion, g0, g1, distance = f["meta"].tolist()
        phonemes = [tts.Phoneme(str(s), float(a), float(b)) for s, (a, b) in zip(f["symbols"], f["times"])]
        return Clip(split, int(index), text, voice, f["audio"], phonemes, int(identity_id), emotion,
                    (float(g0), float(g1)), float(distance), f["pose"], f["dynamics"])


def load_clip(index: int, split: str = "train", cache_dir: str | Path | None = None, voices: str = "world") -> Clip:
    """`make_clip(index, split, voices)`, cached on disk under cache_dir when one is given."""
    if cache_dir is None:
        return make_clip(index, split, voices)
    path = _cache_path(Path(cache_dir), split, index, voices)
    if path.exists():
        try:
            return read_clip(path)
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged cache entry is rebuilt
    clip = make_clip(index, split, voices)
    save_clip(clip, path)
    return clip


def _cache_one(index: int, split: str, cache_dir: Path) -> None:
    load_clip(index, split, cache_dir)


def prepare_clips(split: str, count: int, cache_dir: str | Path, workers: int = 1) -> None:
    """Make and cache clips 0 .. count - 1 of a split, in `workers` processes (each clip is
    independent and deterministic, so the cache is the same whatever the number of workers)."""
    missing = [i for i in range(count) if not _cache_path(Path(cache_dir), split, i).exists()]
    if workers <= 1 or len(missing) < 2:
        for i in missing:
            load_clip(i, split, cache_dir)
        return
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(partial(_cache_one, split=split, cache_dir=Path(cache_dir)), missing, chunksize=4))


def fingerprint(clip: Clip) -> dict:
    """What makes a clip, in numbers that are the same on every machine up to rounding: text,
    voice and lengths exactly; phoneme times, audio and motion as rounded summaries."""
    def summary(values: np.ndarray) -> list[float]:
        values = np.asarray(values, dtype=np.float64)
        return [round(float(v), 5) for v in (values.mean(), values.std(), np.abs(values).max())]

    return {
        "split": clip.split, "index": clip.index, "text": clip.text, "voice": clip.voice,
        "identity_id": clip.identity_id, "emotion": clip.emotion, "n_samples": len(clip.audio),
        "n_frames": clip.n_frames, "phonemes": " ".join(p.symbol for p in clip.phonemes),
        "phoneme_ends": [round(p.end, 5) for p in clip.phonemes],
        "audio": summary(clip.audio), "pose": [summary(column) for column in clip.pose.T],
        "dynamics": [summary(column) for column in clip.dynamics.T],
    }


def natural_motion(split: str, n: int, n_clips: int, seed: int,
                   cache_dir: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n frames of motion (pose (n, 6), dynamics (n, 11)) drawn at random from the first n_clips
    clips of a split: the poses and expressions of the world, whoever the person."""
    clips = [load_clip(i, split, cache_dir) for i in range(n_clips)]
    pose = torch.from_numpy(np.concatenate([c.pose for c in clips]))
    dyn = torch.from_numpy(np.concatenate([c.dynamics for c in clips]))
    pick = torch.randint(0, len(pose), (n,), generator=torch.Generator().manual_seed(seed))
    return pose[pick], dyn[pick]


def render_clip(clip: Clip, size: int = 128, start: int = 0, stop: int | None = None,
                device: str | torch.device = "cpu", framing: str = DEFAULT_FRAMING) -> torch.Tensor:
    """Render frames start..stop of a clip: (T, 3, size, size) in [0, 1]."""
    pose = torch.from_numpy(clip.pose[start:stop]).to(device)
    dynamics = torch.from_numpy(clip.dynamics[start:stop]).to(device)
    return render(clip.identity.to(device).expand(len(pose), -1), pose, dynamics, size=size, framing=framing)


def render_motion(identity: torch.Tensor, motion: torch.Tensor, size: int = 128,
                  framing: str = DEFAULT_FRAMING) -> torch.Tensor:
    """A person (IDENTITY_DIM,) moving with world-space motion (T, 17) = [pose, dynamics], as a
    motion generator trained on the world's parameters makes it, each value clamped into its
    range: frames (T, 3, size, size)."""
    pose = clamp_params(motion[:, :POSE_DIM], "pose")
    dynamics = clamp_params(motion[:, POSE_DIM:], "dynamics")
    return render(identity.expand(len(motion), -1), pose, dynamics, size=size, framing=framing)


def with_motion(clip: Clip, pose: np.ndarray, dynamics: np.ndarray) -> Clip:
    """The same clip (speech, person, controls) with other motion, e.g. a generated one."""
    return replace(clip, pose=np.asarray(pose, dtype=np.float32), dynamics=np.asarray(dynamics, dtype=np.float32))
