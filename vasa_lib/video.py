"""Video files with sound: write and read H.264 + AAC mp4 through PyAV.

Frames are float tensors (T, 3, H, W) in [0, 1] (the library's image convention); audio is
16 kHz mono float32 in [-1, 1]. Writing is atomic: the file appears complete or not at all, so
an error half-way never leaves a broken video behind or replaces a good one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from einops import rearrange

from vasa_lib.paths import write_atomic
from vasa_lib.world.params import FPS, SAMPLE_RATE


def to_uint8_frames(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) float in [0, 1] -> (T, H, W, 3) uint8, with clear errors for bad input."""
    frames = torch.as_tensor(frames)
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must have shape (T, 3, H, W), got {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise ValueError("frames is empty: a video needs at least one frame")
    if not torch.isfinite(frames).all():
        raise ValueError("frames contain NaN or inf values")
    frames = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return rearrange(frames, "t c h w -> t h w c").numpy()


def write_video(
    path: str | os.PathLike,
    frames: torch.Tensor | Iterable[torch.Tensor],
    audio: np.ndarray | None = None,
    fps: int = FPS,
    sample_rate: int = SAMPLE_RATE,
    metadata: dict[str, str] | None = None,
    crf: int = 20,
) -> Path:
    """Write frames (T, 3, H, W) and optional mono audio (N,) to an mp4 (H.264 + AAC).

    frames may also be an iterable of chunks [(n, 3, H, W)], encoded as they arrive, one chunk in
    memory at a time (long streamed videos). Odd frame sizes are padded by one pixel (H.264 needs
    even sizes). Atomic: the file appears complete or not at all (an error or Ctrl-C half-way
    leaves nothing behind, and an existing file at `path` is kept). Returns the path.
    """
    path = Path(path)
    chunks = [frames] if isinstance(frames, torch.Tensor) else frames
    if audio is not None:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"audio must be mono with shape (N,), got {audio.shape}")
        if not np.isfinite(audio).all():
            raise ValueError("audio contains NaN or inf values")

    def encode(tmp: Path) -> None:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            for key, value in (metadata or {}).items():
                container.metadata[key] = value
            video = None
            for chunk in chunks:
                pixels = to_uint8_frames(chunk)
                pixels = np.pad(pixels, ((0, 0), (0, pixels.shape[1] % 2), (0, pixels.shape[2] % 2), (0, 0)),
                                mode="edge")
                if video is None:
                    video = container.add_stream("libx264", rate=fps)
                    video.width, video.height = pixels.shape[2], pixels.shape[1]
                    video.pix_fmt = "yuv420p"
                    video.options = {"crf": str(crf), "preset": "veryfast"}
                    video.codec_context.thread_count = 1  # same bytes on every run
                    sound = container.add_stream("aac", rate=sample_rate, layout="mono") if audio is not None else None
                for image in pixels:
                    container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            if video is None:
                raise ValueError("frames is empty: a video needs at least one frame")
            container.mux(video.encode())
            if sound is not None:
                for start in range(0, len(audio), 1024):
                    block = audio[None, start : start + 1024].clip(-1, 1)
                    frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
                    frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
                    container.mux(sound.encode(frame))
                container.mux(sound.encode())

    return write_atomic(path, encode)


def read_video(path: str | os.PathLike) -> tuple[torch.Tensor, np.ndarray | None, dict]:
    """Read an mp4: frames (T, 3, H, W) float in [0, 1], mono audio (N,) or None, and info.

    info holds 'fps', 'sample_rate' (or None) and the container's 'metadata'.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no video file at {path}")
    try:
        with av.open(str(path)) as container:
            info = {"metadata": dict(container.metadata), "fps": None, "sample_rate": None}
            frames, chunks = [], []
            if container.streams.video:
                info["fps"] = float(container.streams.video[0].average_rate or 0) or None
            if container.streams.audio:
                info["sample_rate"] = container.streams.audio[0].rate
            for frame in container.decode(*container.streams.video, *container.streams.audio):
                if isinstance(frame, av.VideoFrame):
                    frames.append(frame.to_ndarray(format="rgb24"))
                else:
                    chunks.append(frame.to_ndarray().astype(np.float32).mean(0))
    except av.error.FFmpegError as error:
        raise ValueError(f"cannot read video {path}: {error}") from error
    if not frames:
        raise ValueError(f"video {path} has no frames")
    video = rearrange(torch.from_numpy(np.stack(frames)), "t h w c -> t c h w").float() / 255
    return video, (np.concatenate(chunks) if chunks else None), info
