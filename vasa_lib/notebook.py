"""Helpers for the course notebooks: setup, inline video with sound, and plots.

Every notebook starts with `cfg = setup()`. Fast mode (tiny data and short training runs, so a
notebook finishes in minutes on a 2-core CPU) is on in CI and on CPU machines unless the
environment variable VASA_FAST=0 switches it off; on a GPU it is off unless VASA_FAST=1.
"""

from __future__ import annotations

import base64
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vasa_lib import paths
from vasa_lib.video import write_video
from vasa_lib.world.params import FPS, SAMPLE_RATE


@dataclass(frozen=True)
class Setup:
    """What `setup()` decided: seed, device, fast mode and folders."""

    seed: int
    device: torch.device
    fast: bool
    data_dir: Path
    checkpoint_dir: Path
    root: Path          # the course's folder (configs/, assets/), `vasa_lib.paths.course_root()`


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    return value.strip().lower() not in ("0", "false", "no", "off")


def setup(seed: int = 0, fast: bool | None = None, device: str | None = None) -> Setup:
    """Seed everything, pick the device, fast mode and folders.

    Folders: the data cache and the shipped checkpoints, as `vasa_lib.paths` finds them
    (VASA_DATA_DIR, default ~/.cache/vasa_lib; VASA_CHECKPOINT_DIR, default assets/checkpoints).
    """
    seed_everything(seed)
    dev = torch.device(device or os.environ.get("VASA_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu"))
    if fast is None:
        fast = _flag("VASA_FAST")
    if fast is None:
        fast = bool(_flag("CI")) or dev.type == "cpu"
    data_dir, checkpoint_dir = paths.data_dir(), paths.checkpoints_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    return Setup(seed=seed, device=dev, fast=fast, data_dir=data_dir, checkpoint_dir=checkpoint_dir,
                 root=paths.course_root())


def video_html(
    frames: torch.Tensor, audio: np.ndarray | None = None, fps: int = FPS, width: int = 256, crf: int = 26
) -> str:
    """An HTML5 <video> tag with the mp4 (frames (T, 3, H, W), optional 16 kHz audio) inlined."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_video(Path(tmp) / "clip.mp4", frames, audio, fps=fps, sample_rate=SAMPLE_RATE, crf=crf)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<video width="{width}" controls loop><source src="data:video/mp4;base64,{data}" type="video/mp4"></video>'


def show_video(frames: torch.Tensor, audio: np.ndarray | None = None, fps: int = FPS, width: int = 256):
    """Display a video with sound inline in a notebook. Returns the IPython HTML object."""
    from IPython.display import HTML

    return HTML(video_html(frames, audio, fps=fps, width=width))


def side_by_side(videos: list[torch.Tensor], labels: list[str], bar: int = 18) -> torch.Tensor:
    """Videos of one length, each (T, 3, H, W) in [0, 1], put side by side under a white bar with
    each one's label written into it: (T, 3, bar + H, sum of W). The labels are part of the
    frames, so they stay with the video wherever it is saved or shown."""
    from PIL import Image, ImageDraw, ImageFont

    if len(videos) != len(labels):
        raise ValueError(f"{len(videos)} videos but {len(labels)} labels")
    frames = torch.cat(videos, dim=-1)
    strip = Image.new("RGB", (frames.shape[-1], bar), "white")
    draw, font, x = ImageDraw.Draw(strip), ImageFont.load_default(size=bar - 6), 0
    for video, label in zip(videos, labels):
        w = video.shape[-1]
        draw.text((x + w / 2, bar / 2), label, fill="black", font=font, anchor="mm")
        x += w
    header = torch.from_numpy(np.array(strip)).permute(2, 0, 1).to(frames.dtype) / 255
    return torch.cat([header.expand(len(frames), -1, -1, -1), frames], dim=-2)


def image_grid(images: torch.Tensor, nrow: int) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> one (rows*H, nrow*W, 3) array, padded with white."""
    n, _, h, w = images.shape
    rows = -(-n // nrow)
    grid = torch.ones(rows * nrow, 3, h, w)
    grid[:n] = images.detach().float().cpu().clamp(0, 1)
    return grid.reshape(rows, nrow, 3, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, nrow * w, 3).numpy()


def show_images(images: torch.Tensor, nrow: int = 8, titles: list[str] | None = None, scale: float = 1.4):
    """Plot (N, 3, H, W) images in a grid, with optional titles. Returns the figure."""
    import matplotlib.pyplot as plt

    n = images.shape[0]
    rows = -(-n // nrow)
    fig, axes = plt.subplots(rows, nrow, figsize=(nrow * scale, rows * scale * 1.1), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy())
            if titles:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def plot_tracks(tracks: dict[str, np.ndarray], fps: int = FPS, phonemes=None, ax=None, title: str | None = None):
    """Plot per-frame signals {name: (T,)} against time; phonemes (with .symbol, .start, .end)
    are written along the top as the timeline. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 2.6))
    for name, values in tracks.items():
        values = np.asarray(values)
        ax.plot(np.arange(len(values)) / fps, values, label=name)
    if phonemes:
        top = ax.get_ylim()[1]
        for p in phonemes:
            ax.axvline(p.start, color="0.85", lw=0.5, zorder=0)
            ax.text((p.start + p.end) / 2, top, p.symbol, ha="center", va="bottom", fontsize=7)
    ax.set_xlabel("time (s)")
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title, pad=14)
    return ax
