"""Your own recording through the real-video path: record or upload a clip, then see what
ingestion makes of it (notebook 09, sections 3-7; the demo's "Your video" tab).

    recording = Recording(folder)   # Colab: records from the webcam now; Jupyter: shows an upload box
    path = recording.path()         # the video file, once recorded or uploaded
    look = look_at(path)            # ingest it alone: kept clips, refusals, crops, landmarks, labels
    look_figure(look)               # crop frames with the landmarks, and the head's pose over time

In Colab the browser records (its MediaRecorder, with sound) in a webm file. In Jupyter a
notebook cell cannot reach the webcam without a browser extension, so the box takes an upload:
record with your computer's camera app first (mp4, mov, webm or mkv, a few seconds, with your
voice).
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from vasa_lib.real.dataset import VideoClip, load_dataset
from vasa_lib.real.ingest import VIDEO_SUFFIXES, IngestConfig, ingest
from vasa_lib.real.labels import PARAM_NAMES
from vasa_lib.real.landmarks import MESH_POINTS
from vasa_lib.world.params import FPS

RECORD_SECONDS = 8
TRACES = ("yaw", "pitch", "roll", "distance", "jaw_open", "gaze_yaw")     # what `look_figure` plots

# The webcam recorder for Colab: a preview and a Stop button, then the recording as base64 webm.
_RECORDER_JS = """
async function record(seconds) {
  const stream = await navigator.mediaDevices.getUserMedia({video: true, audio: true});
  const box = document.createElement('div');
  const preview = document.createElement('video');
  preview.srcObject = stream; preview.muted = true; preview.width = 400;
  const stop = document.createElement('button'); stop.textContent = 'Stop recording';
  box.append(preview, document.createElement('br'), stop);
  document.body.appendChild(box);
  google.colab.output.setIframeHeight(document.documentElement.scrollHeight, true);
  await preview.play();
  const recorder = new MediaRecorder(stream, {mimeType: 'video/webm'});
  const chunks = [];
  recorder.ondataavailable = e => chunks.push(e.data);
  const done = new Promise(resolve => recorder.onstop = resolve);
  recorder.start();
  await Promise.race([new Promise(r => stop.onclick = r), new Promise(r => setTimeout(r, seconds * 1000))]);
  recorder.stop(); await done;
  stream.getTracks().forEach(t => t.stop()); box.remove();
  const data = await new Blob(chunks, {type: 'video/webm'}).arrayBuffer();
  let text = ''; const bytes = new Uint8Array(data);
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
  return btoa(text);
}
"""


def in_colab() -> bool:
    try:
        import google.colab  # noqa: F401
    except ImportError:
        return False
    return True


class Recording:
    """A video of yours, in `folder`: in Colab recorded from the webcam when made (at most
    `seconds`, or until Stop); elsewhere an upload box is shown, and `path` saves its file."""

    def __init__(self, folder: str | Path, seconds: float = RECORD_SECONDS):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.recorded: Path | None = None
        self.box = None
        if in_colab():
            from google.colab.output import eval_js

            data = eval_js(_RECORDER_JS + f"record({float(seconds)})", timeout_sec=seconds + 60)
            self.recorded = self.folder / "recording.webm"
            self.recorded.write_bytes(base64.b64decode(data))
        else:
            import ipywidgets
            from IPython.display import display

            self.box = ipywidgets.FileUpload(accept=",".join(VIDEO_SUFFIXES), multiple=False,
                                             description="Your video")
            display(self.box)

    def path(self) -> Path:
        """The recorded or uploaded video; ValueError if nothing has been uploaded yet."""
        if self.recorded is not None:
            return self.recorded
        if not self.box.value:
            raise ValueError("no video uploaded yet: choose a file in the upload box above, then run this cell again")
        upload = self.box.value[0]
        name = Path(upload["name"]).name
        if Path(name).suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"{name} is not one of the video types ingestion reads ({', '.join(VIDEO_SUFFIXES)})")
        target = self.folder / name
        target.write_bytes(bytes(upload["content"]))
        return target


@dataclass
class Look:
    """What ingestion made of one video: its record (kept pieces and refusals with their reasons)
    and the clips it kept."""

    record: dict
    clips: list[VideoClip]

    @property
    def refusals(self) -> list[str]:
        return [r["reason"] for r in self.record["rejected"]]


def look_at(path: str | Path, config: IngestConfig | None = None) -> Look:
    """Ingest one video alone (in a temporary folder) with `config` (the defaults if None)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"{path.name} is not one of the video types ingestion reads ({', '.join(VIDEO_SUFFIXES)})")
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp) / "videos"
        videos.mkdir()
        shutil.copy(path, videos / path.name)
        summary = ingest(videos, Path(tmp) / "dataset", config, progress=False)
        clips = load_dataset(Path(tmp) / "dataset") if summary["clips_kept"] else []
    return Look(summary["records"][0], clips)


def look_figure(look: Look, frames: int = 4) -> Figure:
    """Each kept clip's crop at `frames` moments with its landmarks, and below, its labels over time
    (`TRACES`, estimated in the whole video)."""
    if not look.clips:
        raise ValueError(f"ingestion kept nothing of {look.record['video']}: {', '.join(look.refusals)}")
    fig = Figure(figsize=(10, 5.6 * len(look.clips)))
    grid = fig.add_gridspec(2 * len(look.clips), frames, height_ratios=[3, 2] * len(look.clips))
    for row, clip in enumerate(look.clips):
        start = look.record["kept"][row]["start"] / FPS
        for k, t in enumerate(np.linspace(0, len(clip.frames) - 1, frames).round().astype(int)):
            ax = fig.add_subplot(grid[2 * row, k])
            ax.imshow(clip.frames[t])
            ax.scatter(*clip.landmarks[t, :MESH_POINTS, :2].T, s=1, color="yellow", alpha=0.6)
            ax.scatter(*clip.landmarks[t, MESH_POINTS:, :2].T, s=4, color="tab:red")
            ax.set_title(f"{start + t / FPS:.2f} s", fontsize=10)
            ax.axis("off")
        ax = fig.add_subplot(grid[2 * row + 1, :])
        params, seconds = clip.video_params, start + np.arange(len(clip.frames)) / FPS
        for name in TRACES:
            ax.plot(seconds, params[:, PARAM_NAMES.index(name)], label=name)
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.set_xlabel("time in the video (s)")
        ax.legend(fontsize=8, ncol=len(TRACES), loc="center left", bbox_to_anchor=(0, 0.7))
        ax.set_title("estimated in the whole video: turns in radians (yaw > 0: the nose to the image's right), "
                     "distance (1 = nominal), mouth 0..1", fontsize=10)
    fig.tight_layout()
    return fig
