"""Who is speaking: does the voice on the sound track move the mouth on screen, and in step?

A talking-head model learns lip sync only from pieces where the face on screen is the voice we
hear. A voice-over, an interviewer off screen, a still photograph with speech laid over it, or
sound out of step with the picture teach it the wrong thing. SyncNet (Chung & Zisserman, "Out of
time", 2016) answers both questions at once: slide the audio against the mouth and find the
offset where they agree best; a clear best offset is the speaker, and where it lies is the
constant offset to correct.

Ours is the course's SyncNet-style model on the world's parameters (`eval.syncnet`, the shipped
`eval_syncnet_world` checkpoint), fed the face's parameters as the landmarks estimate them
(`labels.estimate`): the mouth (jaw, lips, tongue) of each 5-frame window against the audio's
log-mel window, at every offset up to +-`MAX_OFFSET` frames (0.48 s). Its confidence (median
minus least distance over the offsets) must reach `MIN_CONFIDENCE`. On 23 ingested world test
clips of 2 to 4 s, the clip's own sound scored 0.09 to 0.32 (2 below 0.11) and another clip's
sound 0.04 to 0.17 (4 of 23 above 0.11); the best offset found a shift of up to 12 frames
exactly in 102 of 115 cases and within a frame in 111. Longer pieces average over more frames
and separate better.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

from vasa_lib import paths
from vasa_lib.world.clips import HOP
from vasa_lib.world.params import POSE_DIM

MAX_OFFSET = 12                  # frames searched either way: 0.48 s
MIN_CONFIDENCE = 0.11            # below it, the voice is not the face's


@dataclass
class Sync:
    """offset: frames by which the sound lags the picture (> 0: sound late; move it `offset`
    frames earlier to correct); confidence: how clearly that offset beats the others."""

    offset: int
    confidence: float


@cache
def _syncnet():
    from vasa_lib.checkpoint import load_checkpoint
    from vasa_lib.eval.syncnet import SyncNet

    return load_checkpoint(paths.checkpoint("eval_syncnet_world"), SyncNet).eval()


def frames_needed() -> int:
    """The shortest piece whose sync can be judged over every offset."""
    return 2 * MAX_OFFSET + _syncnet().config.frames + 1


def audio_visual_sync(params: np.ndarray, audio: np.ndarray) -> Sync:
    """The sync of T frames of estimated parameters (T, 17) with their audio (T * 640,) at 16 kHz.
    ValueError if the piece is shorter than `frames_needed`."""
    from vasa_lib.audio.mel import audio_frame_features

    if len(params) < frames_needed():
        raise ValueError(f"judging sync needs at least {frames_needed()} frames, got {len(params)}")
    net = _syncnet()
    mel = audio_frame_features(np.asarray(audio[: len(params) * HOP], np.float32))[: len(params)]
    with torch.no_grad():
        curve = net.distance_curve(mel, torch.as_tensor(params[:, POSE_DIM:], dtype=torch.float32), MAX_OFFSET)
    best = int(curve.argmin())
    return Sync(offset=MAX_OFFSET - best, confidence=float(curve.median() - curve.min()))


def in_step(audio: np.ndarray, start: int, stop: int, offset: int) -> np.ndarray:
    """The sound of frames start..stop of a video whose sound lags by `offset` frames: samples
    ((stop - start) * 640,), taken `offset` frames later, silence where the track ends."""
    first, last = (start + offset) * HOP, (stop + offset) * HOP
    padded = np.pad(audio, (max(0, -first), max(0, last - len(audio))))
    return padded[max(0, first): max(0, first) + (stop - start) * HOP]
