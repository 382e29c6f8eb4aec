"""Generating a whole motion sequence, window by window (paper Sec. 3.2, "long sequences").

The audio features are cut into windows of W frames. Each window is sampled with DDIM (or
predicted at once by the regression baseline), conditioned on its audio, the controls (gaze,
distance, emotion) and the previous window's last K generated frames and their audio, so
consecutive windows join smoothly. The first window has no previous one (that condition is
dropped, as in training). `generate_window` is one such step: the building block of streaming,
where windows are generated as the audio arrives. The first window may be shorter
(`first_window`): live speech then waits less for its first frame.

Everything here is in world units (the model's normalisation is applied inside).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange

from vasa_lib.motion.guidance import GUIDANCE_SCALES, guided_x0
from vasa_lib.motion.sampler import DEFAULT_STEPS, ddim_sample
from vasa_lib.motion.schedule import NoiseSchedule
from vasa_lib.motion.transformer import MotionConditions, MotionTransformer
from vasa_lib.world.params import EMOTIONS


def emotion_tensor(emotion: str | int | Sequence[float]) -> torch.Tensor:
    """An emotion as the model takes it: a name or index -> () long; weights over EMOTIONS -> (5,) float."""
    if isinstance(emotion, str):
        if emotion not in EMOTIONS:
            raise ValueError(f"unknown emotion {emotion!r}; choose one of {EMOTIONS}")
        return torch.tensor(EMOTIONS.index(emotion))
    if isinstance(emotion, int):
        if not 0 <= emotion < len(EMOTIONS):
            raise ValueError(f"emotion index must be in 0 .. {len(EMOTIONS) - 1}, got {emotion}")
        return torch.tensor(emotion)
    weights = torch.as_tensor(emotion, dtype=torch.float32)
    if weights.shape != (len(EMOTIONS),) or not torch.isfinite(weights).all():
        raise ValueError(f"emotion weights must be {len(EMOTIONS)} finite numbers (one per {EMOTIONS}), got {emotion}")
    return weights


@dataclass
class Controls:
    """Clip-level controls: main gaze (theta, phi) in radians, head distance (1 = nominal) and
    emotion: a name in `EMOTIONS`, its index, or weights over `EMOTIONS` (an emotion offset)."""

    gaze: tuple[float, float] = (0.0, 0.0)
    distance: float = 1.0
    emotion: str | int | Sequence[float] = "neutral"

    def tensors(self, batch_size: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """{"gaze": (B, 2), "distance": (B, 1), "emotion": (B,) long or (B, 5) float}."""
        emotion = emotion_tensor(self.emotion).to(device)
        return {"gaze": torch.tensor([self.gaze], dtype=torch.float32, device=device).expand(batch_size, 2),
                "distance": torch.tensor([[self.distance]], dtype=torch.float32, device=device).expand(batch_size, 1),
                "emotion": emotion.expand(batch_size, *emotion.shape)}


@torch.no_grad()
def generate_window(model: MotionTransformer, audio: torch.Tensor, controls: Controls,
                    prev_motion: torch.Tensor | None = None, prev_audio: torch.Tensor | None = None,
                    steps: int = DEFAULT_STEPS, scales: dict[str, float] | None = None, eta: float = 0.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """One window of motion (B, W, D) in world units.

    audio (B, W, C_a) this window's features; prev_motion (B, K, D) (world units) and
    prev_audio (B, K, C_a) the previous window's last K frames, or None for the first window.
    """
    b, w = audio.shape[:2]
    cond = MotionConditions(audio=audio, **controls.tensors(b, audio.device),
                            prev_motion=None if prev_motion is None else model.normalize(prev_motion),
                            prev_audio=prev_audio)
    scales = GUIDANCE_SCALES if scales is None else scales
    if model.config.diffusion:
        schedule = NoiseSchedule(model.config.diffusion_steps, model.config.schedule).to(audio.device)
        x0 = ddim_sample(lambda x_t, t: guided_x0(model, x_t, t, cond, scales), (b, w, model.config.motion_dim),
                         schedule, steps, eta, generator, audio.device)
    else:
        x0 = guided_x0(model, None, None, cond, scales)
    return model.denormalize(x0)


def windows(window: int, first_window: int | None = None) -> Iterator[tuple[int, int]]:
    """The windows [start, stop) one after another, without end: a first one of `first_window`
    frames (default `window`; shorter, for live speech: its first frame needs less audio), then
    `window` each. Offline generation (`window_bounds`) and streaming (`Talker.motion_stream`)
    both walk it."""
    first = window if first_window is None else first_window
    if not 1 <= first <= window:
        raise ValueError(f"first_window must be in 1 .. {window}, got {first_window}")
    start, stop = 0, first
    while True:
        yield start, stop
        start, stop = stop, stop + window


def window_bounds(n_frames: int, window: int, first_window: int | None = None) -> list[tuple[int, int]]:
    """The `windows` that cover n_frames frames. The last one may reach past n_frames (its audio
    is padded)."""
    bounds = []
    for start, stop in windows(window, first_window):
        bounds.append((start, stop))
        if stop >= n_frames:
            break
    return bounds


@torch.no_grad()
def generate(model: MotionTransformer, audio_features: torch.Tensor, controls: Controls | None = None,
             steps: int = DEFAULT_STEPS, scales: dict[str, float] | None = None, seed: int = 0,
             window: int | None = None, context: int | None = None, eta: float = 0.0,
             first_window: int | None = None) -> torch.Tensor:
    """Motion (T, D) in world units for audio features (T, C_a) at 25 fps.

    window W and context K default to the model's; first_window: the first window's length
    (default W, see `window_bounds`); the last window is padded by repeating the last audio frame
    and cut back to T frames. `seed` makes the result reproducible; `scales` are the guidance
    scales (default `GUIDANCE_SCALES`); `steps` DDIM steps per window. Puts the model in eval mode.
    """
    c = model.config
    window, context = window or c.window, c.context if context is None else context
    if not 1 <= window <= c.window or not 0 <= context <= min(c.context, window):
        raise ValueError(f"need 1 <= window <= {c.window} and 0 <= context <= min({c.context}, window), "
                         f"got window={window}, context={context}")
    if audio_features.ndim != 2 or len(audio_features) == 0:
        raise ValueError(f"audio_features must be (T, C_a) with T >= 1, got {tuple(audio_features.shape)}")
    model.eval()
    device = audio_features.device
    generator = torch.Generator(device).manual_seed(seed)
    n_frames = len(audio_features)
    bounds = window_bounds(n_frames, window, first_window)
    audio = F.pad(rearrange(audio_features, "t c -> 1 c t"), (0, bounds[-1][1] - n_frames), mode="replicate")
    audio = rearrange(audio, "1 c t -> 1 t c")
    out, prev_motion, prev_audio = [], None, None
    for start, stop in bounds:
        a = audio[:, start:stop]
        motion = generate_window(model, a, controls or Controls(), prev_motion, prev_audio, steps, scales, eta,
                                 generator)
        out.append(motion[0])
        if context > 0:
            prev_motion, prev_audio = motion[:, -context:], a[:, -context:]
    return torch.cat(out)[:n_frames]
