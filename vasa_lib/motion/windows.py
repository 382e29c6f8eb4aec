"""Training windows for the motion generator (paper Sec. 3.2).

Each item is K + W consecutive frames of one clip: its motion (D numbers per frame), the log-mel
stacks of the same frames, and the clip's controls. The motion is what VASA-1 trains on, the
face model's latents [z_pose, z_dyn] of the clip's frames (`MotionWindows.from_latents`, with a
`LatentSet` from `vasa_lib.motion.latents`), or, to study the generator without a face model,
the world's ground-truth pose and dynamics (17 numbers, `MotionWindows.from_clips`).

Windows are drawn at random positions each time (`fixed=True`: always the same ones, for
validation); clips shorter than K + W frames are padded by repeating their last frame. With
`lead_in` > 0 a window may start up to that many frames before its clip, those frames filled with
the clip's first (the person sitting still in silence before speaking): a clip's first frames,
which generation's first window makes without a previous one, are then targets in training too.
With `margin` > 0 the audio reaches that many frames further on each side (the clip's first and
last frames repeated past its ends), for an audio encoder that pads by repetition
(`MelEncoderConfig.edges = "replicate"`): its features of the window's frames, cut from its output,
are then those it gives them in a whole clip.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from vasa_lib.audio.mel import audio_frame_features
from vasa_lib.motion.latents import LatentSet
from vasa_lib.world.clips import Clip
from vasa_lib.world.params import EMOTIONS


def clip_motion(clip: Clip) -> torch.Tensor:
    """A clip's ground-truth motion [pose, dynamics]: (T, 17)."""
    return torch.from_numpy(np.concatenate([clip.pose, clip.dynamics], axis=1)).float()


def motion_stats(motions: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std (D,) over all frames of motions [(T_i, D)]."""
    frames = torch.cat(list(motions))
    return frames.mean(0), frames.std(0)


class MotionWindows(Dataset):
    """Windows of K + W = `length` frames: {"motion": (K+W, D), "audio": (K+W + 2 margin, 320),
    "gaze": (2,), "distance": (1,), "emotion": ()}. `windows_per_clip` items per clip and epoch;
    `lead_in` frames of stillness before each clip; `margin` frames of audio either side (module
    docstring).

    motion [(T_i, D)], audio [(T_i, 320)] mel stacks and controls [{"gaze", "distance", "emotion"}]
    per clip; usually built with `from_latents` or `from_clips`.
    """

    def __init__(self, motion: Sequence[torch.Tensor], audio: Sequence[torch.Tensor],
                 controls: Sequence[dict[str, torch.Tensor]], length: int, windows_per_clip: int = 8,
                 fixed: bool = False, lead_in: int = 0, margin: int = 0):
        if not len(motion) == len(audio) == len(controls) > 0:
            raise ValueError(f"need as many motions, audios and controls (at least one), got "
                             f"{len(motion)}, {len(audio)}, {len(controls)}")
        bad = [i for i, (m, a) in enumerate(zip(motion, audio)) if len(m) != len(a) or len(m) == 0]
        if bad:
            raise ValueError(f"clip {bad[0]}: motion and audio must have the same number of frames (>= 1)")
        if length < 1 or lead_in < 0 or margin < 0:
            raise ValueError(f"need a window length >= 1, lead_in >= 0 and margin >= 0, "
                             f"got {length}, {lead_in}, {margin}")
        self.motion, self.audio, self.controls = list(motion), list(audio), list(controls)
        self.length, self.windows_per_clip, self.fixed = length, windows_per_clip, fixed
        self.lead_in, self.margin = lead_in, margin

    @classmethod
    def from_latents(cls, latents: LatentSet, length: int, windows_per_clip: int = 8,
                     fixed: bool = False, lead_in: int = 0, margin: int = 0) -> MotionWindows:
        """Windows of the face model's motion latents [z_pose, z_dyn] (what VASA-1 trains on)."""
        return cls(latents.split("motion"), latents.split("mel"), [latents.controls(i) for i in range(len(latents))],
                   length, windows_per_clip, fixed, lead_in, margin)

    @classmethod
    def from_clips(cls, clips: Sequence[Clip], length: int, windows_per_clip: int = 8,
                   fixed: bool = False) -> MotionWindows:
        """Windows of the world's ground-truth pose and dynamics (T, 17), a stand-in for latents."""
        controls = [{"gaze": torch.tensor(c.gaze, dtype=torch.float32),
                     "distance": torch.tensor([c.distance], dtype=torch.float32),
                     "emotion": torch.tensor(EMOTIONS.index(c.emotion))} for c in clips]
        return cls([clip_motion(c) for c in clips], [audio_frame_features(c.audio) for c in clips], controls,
                   length, windows_per_clip, fixed)

    def __len__(self) -> int:
        return len(self.motion) * self.windows_per_clip

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        i = index // self.windows_per_clip
        motion, audio = self.motion[i], self.audio[i]
        short, m = max(0, self.length - self.lead_in - len(motion)), self.margin
        # repeat the first frame lead_in (+ margin) times, the last to fill a short clip (+ margin)
        motion, audio = (F.pad(x.T[None], (self.lead_in + extra, short + extra), mode="replicate")[0].T
                         for x, extra in ((motion, 0), (audio, m)))
        spare = len(motion) - self.length
        start = (int(np.random.default_rng(index).integers(0, spare + 1)) if self.fixed
                 else int(torch.randint(0, spare + 1, ())))
        return {"motion": motion[start: start + self.length], "audio": audio[start: start + self.length + 2 * m],
                **self.controls[i]}
