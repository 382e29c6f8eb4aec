"""How a synthetic person moves while talking: head pose, blinks, gaze, brows and emotion.

This is the world's ground truth for everything except the mouth shapes (those come from
`articulation`). It is built to have the property that makes VASA-1 use diffusion: the same
audio admits many plausible motions. Each signal is the sum of a part the audio drives and a
part drawn at random with a per-person style:

    pose(t) = rest + emotion offset
              + nods(t)                                  audio: a nod at each stressed syllable
              + k_pitch * pitch(t)                       audio: the head rises with the voice
              + activity(t) * energy(emotion) * style * noise(t)     random, smooth

- Prosody (`prosody`): per-frame loudness, voice pitch (autocorrelation) and speech activity
  from the waveform at 25 fps. Stressed syllables are loudness peaks.
- Head (`head_motion`): rest pose and amplitudes from the person's `Style`; noise is Gaussian
  noise low-passed twice (a smooth random walk with time constant `Style.tempo`). In pauses the
  head moves less (activity ~0.4) and settles.
- Blinks (`blinks`): a Poisson process at the person's rate (15-20 a minute), three times as likely
  in pauses, at least 0.4 s apart; each blink closes in ~2 frames and opens in ~3.
- Gaze (`gaze_track`): the clip's main direction (a control: theta, phi) plus saccades, small
  jumps to nearby targets every ~0.5-2 s.
- Brows: raised with the pitch of the voice and by emotion; the frown is an emotion.
- Emotion (`EMOTION_EFFECTS`): shifts mouth corners, eyelids, brows and head pitch, and scales
  how much the head moves (angry and happy people move more, sad people less).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks, lfilter

from vasa_lib.world.params import (
    DYNAMICS_DIM,
    DYNAMICS_LIMITS,
    EMOTIONS,
    FPS,
    POSE_LIMITS,
    SAMPLE_RATE,
    dyn_index,
)

# emotion -> (offsets on dynamics by name, head pitch offset, motion energy)
EMOTION_EFFECTS: dict[str, tuple[dict[str, float], float, float]] = {
    "neutral": ({}, 0.0, 1.0),
    "happy": ({"smile": 0.75, "eyelid": 0.15, "brow_raise": 0.2, "lip_spread": 0.3}, 0.04, 1.25),
    "sad": ({"smile": -0.6, "eyelid": 0.3, "brow_raise": 0.35, "brow_frown": 0.35}, -0.12, 0.55),
    "angry": ({"smile": -0.35, "brow_raise": -0.6, "brow_frown": 0.85, "eyelid": 0.1}, -0.05, 1.4),
    "surprised": ({"brow_raise": 0.9, "eyelid": -0.35, "jaw_open": 0.15}, 0.06, 1.1),
}


@dataclass(frozen=True)
class Style:
    """A person's way of moving (drawn once per identity).

    amplitude: (6,) standard deviations of the random head motion (yaw, pitch, roll rad; tx, ty;
    distance); rest: (6,) resting pose offset; tempo: time constant of the random motion (s);
    nod: nod strength; pitch_follow: how much the head rises with voice pitch; blink_rate: per
    minute while speaking.
    """

    amplitude: np.ndarray
    rest: np.ndarray
    tempo: float
    nod: float
    pitch_follow: float
    blink_rate: float

    @staticmethod
    def of(identity_id: int) -> "Style":
        """The motion style of identity number `identity_id` (deterministic)."""
        rng = np.random.default_rng([identity_id, 0x57])
        scale = rng.uniform(0.6, 1.4)
        return Style(
            amplitude=scale * np.array([0.14, 0.07, 0.05, 0.025, 0.02, 0.02]) * rng.uniform(0.7, 1.3, 6),
            rest=np.array([rng.normal(0, 0.08), rng.normal(0, 0.04), rng.normal(0, 0.05), 0.0, 0.0, 0.0]),
            tempo=rng.uniform(0.5, 1.2),
            nod=rng.uniform(0.04, 0.12),
            pitch_follow=rng.uniform(0.03, 0.1),
            blink_rate=rng.uniform(15, 20),
        )


@dataclass
class Prosody:
    """Per-frame audio features at 25 fps, each (T,): loudness in [0, 1], pitch (voice f0 as a
    z-score within the clip, 0 where unvoiced), activity (1 while speaking, 0 in pauses, smoothed)
    and stress (frame indices of stressed syllables)."""

    loudness: np.ndarray
    pitch: np.ndarray
    activity: np.ndarray
    stress: np.ndarray


def _frames(audio: np.ndarray, n_frames: int, window: int = 1024) -> np.ndarray:
    """Cut audio (N,) into n_frames windows (n_frames, window) centred on each video frame."""
    hop = SAMPLE_RATE // FPS
    padded = np.pad(audio, (window // 2, window + hop * n_frames))
    index = np.arange(n_frames)[:, None] * hop + hop // 2 + np.arange(window)[None, :]
    return padded[index]


def _f0(windows: np.ndarray, fmin: float = 70.0, fmax: float = 400.0) -> np.ndarray:
    """Voice pitch in Hz per window (0 where unvoiced), from the normalised autocorrelation."""
    w = windows * np.hanning(windows.shape[1])
    spectrum = np.fft.rfft(w, n=2 * windows.shape[1])
    ac = np.fft.irfft(np.abs(spectrum) ** 2)[:, : windows.shape[1]]
    ac = ac / np.maximum(ac[:, :1], 1e-9)
    lo, hi = int(SAMPLE_RATE / fmax), int(SAMPLE_RATE / fmin)
    lag = lo + ac[:, lo:hi].argmax(1)
    strength = ac[np.arange(len(ac)), lag]
    return np.where(strength > 0.4, SAMPLE_RATE / lag, 0.0)


def _smooth(x: np.ndarray, seconds: float) -> np.ndarray:
    """Zero-phase one-pole low-pass with time constant `seconds` (forward and backward)."""
    a = np.exp(-1.0 / (seconds * FPS))
    y = lfilter([1 - a], [1, -a], x, axis=0)
    return lfilter([1 - a], [1, -a], y[::-1], axis=0)[::-1]


def prosody(audio: np.ndarray, n_frames: int) -> Prosody:
    """Loudness, pitch, speech activity and stressed syllables of 16 kHz audio (N,), at 25 fps."""
    windows = _frames(np.asarray(audio, dtype=np.float32), n_frames)
    rms = np.sqrt((windows**2).mean(1) + 1e-10)
    db = 20 * np.log10(rms)
    loudness = np.clip((db - (db.max() - 45)) / 45, 0, 1)
    speaking = (loudness > 0.35).astype(float)
    activity = np.clip(_smooth(speaking, 0.15) * 1.5, 0, 1)
    f0 = _f0(windows)
    voiced = f0 > 0
    pitch = np.zeros(n_frames)
    if voiced.sum() > 2:
        logf = np.log(f0[voiced])
        pitch[voiced] = (logf - logf.mean()) / (logf.std() + 1e-6)
    stress, _ = find_peaks(_smooth(loudness, 0.04), prominence=0.12, distance=int(0.25 * FPS))
    return Prosody(loudness=loudness, pitch=pitch, activity=activity, stress=stress)


def _smooth_noise(rng: np.random.Generator, n: int, dims: int, tempo: float) -> np.ndarray:
    """Smooth random motion (n, dims) with unit standard deviation: white noise low-passed twice."""
    a = np.exp(-1.0 / (tempo * FPS))
    burn = int(6 * tempo * FPS)
    x = rng.normal(size=(n + burn, dims))
    impulse = np.zeros(burn + 1)
    impulse[0] = 1.0
    for _ in range(2):
        x = lfilter([1 - a], [1, -a], x, axis=0)
        impulse = lfilter([1 - a], [1, -a], impulse)
    return x[burn:] / np.sqrt((impulse**2).sum())


def head_motion(
    features: Prosody, style: Style, emotion: str, distance: float, rng: np.random.Generator
) -> np.ndarray:
    """Head pose (T, 6): yaw, pitch, roll, tx, ty, distance."""
    n = len(features.loudness)
    _, pitch_offset, energy = EMOTION_EFFECTS[emotion]
    # nods: the head dips and comes back around each stressed syllable (a smooth 0.4 s bump)
    kernel_t = np.arange(int(0.5 * FPS)) / FPS
    kernel = (kernel_t / 0.12) * np.exp(1 - kernel_t / 0.12)
    impulses = np.zeros(n)
    impulses[features.stress] = features.loudness[features.stress]
    nods = np.convolve(impulses, kernel)[:n]
    activity = 0.4 + 0.6 * features.activity
    pose = style.rest + energy * activity[:, None] * style.amplitude * _smooth_noise(rng, n, 6, style.tempo)
    pose[:, 1] += pitch_offset - style.nod * energy * nods + style.pitch_follow * _smooth(features.pitch, 0.1)
    pose[:, 0] += 0.5 * style.nod * energy * nods * rng.choice([-1, 1])
    pose[:, 5] += distance
    return np.clip(pose, POSE_LIMITS[:, 0].numpy(), POSE_LIMITS[:, 1].numpy())


def blinks(features: Prosody, style: Style, rng: np.random.Generator) -> np.ndarray:
    """Eyelid closure from blinking (T,) in [0, 1]."""
    n = len(features.activity)
    rate = style.blink_rate / 60 / FPS * (1 + 2 * (1 - features.activity))  # per frame, x3 in pauses
    shape = np.array([0.55, 1.0, 0.75, 0.4, 0.15])
    closure = np.zeros(n + len(shape))
    t = int(rng.integers(0, FPS))
    while t < n:
        if rng.random() < rate[t]:
            closure[t : t + len(shape)] = np.maximum(closure[t : t + len(shape)], shape)
            t += int(0.4 * FPS)
        else:
            t += 1
    return closure[:n]


def gaze_track(main: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaze (T, 2) = main direction (theta, phi) + saccades to nearby targets."""
    track = np.zeros((n, 2))
    t, target = 0, np.asarray(main, dtype=float)
    while t < n:
        hold = max(2, int(rng.exponential(1.0) * FPS))
        track[t : t + hold] = target
        t += hold
        target = np.asarray(main) + rng.normal(0, [0.08, 0.05])
    track[1:] = 0.5 * track[1:] + 0.5 * track[:-1]  # a saccade takes about two frames
    return track


def animate(
    audio: np.ndarray,
    mouth: np.ndarray,
    identity_id: int,
    emotion: str,
    gaze: tuple[float, float],
    distance: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """All motion of one clip.

    audio (N,) 16 kHz; mouth (T, 5) articulation (jaw, spread, round, close, tongue).
    Returns pose (T, 6) and dynamics (T, 11), float32, inside the ranges of `params`.
    """
    if emotion not in EMOTION_EFFECTS:
        raise ValueError(f"unknown emotion {emotion!r}; choose one of {EMOTIONS}")
    n = len(mouth)
    style = Style.of(identity_id)
    features = prosody(audio, n)
    offsets, _, energy = EMOTION_EFFECTS[emotion]
    dynamics = np.zeros((n, DYNAMICS_DIM))
    dynamics[:, :5] = mouth
    for name, value in offsets.items():
        dynamics[:, dyn_index(name)] += value
    dynamics[:, dyn_index("eyelid")] += blinks(features, style, rng) * (1 - dynamics[:, dyn_index("eyelid")])
    dynamics[:, [dyn_index("gaze_yaw"), dyn_index("gaze_pitch")]] = gaze_track(np.asarray(gaze), n, rng)
    brow_noise = 0.15 * _smooth_noise(rng, n, 1, 0.8)[:, 0]
    dynamics[:, dyn_index("brow_raise")] += 0.35 * np.clip(_smooth(features.pitch, 0.1), 0, None) + brow_noise
    dynamics[:, dyn_index("smile")] += 0.1 * energy * _smooth_noise(rng, n, 1, 1.5)[:, 0]
    dynamics = np.clip(dynamics, DYNAMICS_LIMITS[:, 0].numpy(), DYNAMICS_LIMITS[:, 1].numpy())
    pose = head_motion(features, style, emotion, distance, rng)
    return pose.astype(np.float32), dynamics.astype(np.float32)
