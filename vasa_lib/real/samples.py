"""Videos we can make, to test and teach ingestion without downloading any.

- world clips written as mp4 with their sound, optionally placed on a larger canvas at a known
  offset (the crop must land on the world's head);
- a real photograph that ships with matplotlib (Grace Hopper), moved and zoomed over time and
  given a synthetic voice;
- the cases ingestion must refuse: two faces, no face, no or a silent sound track, a shot too
  short, a face too small, a truncated file; and a video with a cut between two shots;
- a flash and a beep at the same moment, in files whose picture and sound do not start at 0.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from einops import rearrange
from matplotlib import cbook
from PIL import Image

from vasa_lib.video import write_video
from vasa_lib.world import speech as tts
from vasa_lib.world.clips import HOP, Clip, render_clip
from vasa_lib.world.params import FPS, SAMPLE_RATE

PHOTO = "grace_hopper.jpg"    # in matplotlib's sample data: a real portrait that ships with a package


def photo() -> np.ndarray:
    """The real portrait, (H, W, 3) uint8."""
    return np.asarray(Image.open(cbook.get_sample_data(PHOTO, asfileobj=False)).convert("RGB"))


def world_video(clip: Clip, path: Path, size: int = 256, canvas: int | None = None,
                offset: tuple[int, int] = (0, 0), audio: str = "speech", seconds: float | None = None) -> Path:
    """Write a world clip as an mp4: rendered at `size` pixels and, with `canvas`, pasted at
    `offset` (x, y) on a grey canvas of that side; audio "speech" (the clip's), "silence" (a
    silent track) or "none" (no track); the first `seconds` only, if given."""
    stop = None if seconds is None else int(seconds * FPS)
    frames = render_clip(clip, size=size, stop=stop)
    if canvas:
        board = torch.full((len(frames), 3, canvas, canvas), 0.5)
        board[:, :, offset[1]:offset[1] + size, offset[0]:offset[0] + size] = frames
        frames = board
    sound = {"speech": clip.audio[: len(frames) * HOP], "silence": np.zeros(len(frames) * HOP, np.float32),
             "none": None}[audio]
    return write_video(path, frames, sound)


def two_shot_video(first: Clip, second: Clip, path: Path, size: int = 256) -> Path:
    """Two world clips one after the other, as an edited video cuts from one shot to the next."""
    frames = torch.cat([render_clip(first, size=size), render_clip(second, size=size)])
    return write_video(path, frames, np.concatenate([first.audio, second.audio]))


def _speech(text: str, voice: str = "en-us+f3") -> np.ndarray:
    return tts.synthesize(text, voice=voice).audio


def moving_photo_video(path: Path, text: str = "Hello. I am reading this sentence to the camera, slowly.",
                       side: int = 256, copies: int = 1) -> Path:
    """The photograph seen by a camera that pans and zooms, `copies` times side by side, saying
    `text`: (side, side * copies) frames for the length of the speech."""
    audio = _speech(text)
    n = -(-len(audio) // HOP)
    image = photo()
    h, w = image.shape[:2]
    # the print on a wall of its border's colour: the portrait is cut close above the hair and at the
    # shoulders, tighter than the world frames a head, and the view must hold ingestion's whole crop
    margin = w // 4
    wall = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).mean(0)
    canvas = np.empty((h + 2 * margin, w + 2 * margin, 3), np.uint8)
    canvas[:] = wall.round().astype(np.uint8)
    canvas[margin:margin + h, margin:margin + w] = image
    t = np.linspace(0, 1, n)
    frames = []
    for k in range(n):
        zoom = 1.25 + 0.1 * np.sin(2 * np.pi * t[k])            # view side over the photo's width
        s = zoom * w
        cx = margin + 0.52 * w + 0.03 * w * np.sin(2 * np.pi * t[k])     # around the face: pan and zoom
        cy = margin + 0.36 * h + 0.02 * h * np.cos(2 * np.pi * t[k])
        x0, y0 = cx - s / 2, cy - s / 2
        view = Image.fromarray(canvas).crop((int(x0), int(y0), int(x0 + s), int(y0 + s))).resize((side, side))
        frames.append(np.concatenate([np.asarray(view)] * copies, 1))
    video = rearrange(torch.from_numpy(np.stack(frames)), "t h w c -> t c h w").float() / 255
    return write_video(path, video, np.pad(audio, (0, n * HOP - len(audio))))


def faceless_video(path: Path, seconds: float = 3.0, side: int = 256) -> Path:
    """Drifting smooth colour noise, with speech: no face anywhere."""
    rng = np.random.default_rng(0)
    n = int(seconds * FPS)
    coarse = torch.from_numpy(rng.random((1, 3, 8, 8), dtype=np.float32))
    base = torch.nn.functional.interpolate(coarse, size=(2 * side, 2 * side), mode="bicubic").clamp(0, 1)[0]
    frames = torch.stack([base[:, k:k + side, k:k + side] for k in range(n)])
    audio = _speech("There is nobody here at all.")
    return write_video(path, frames, np.resize(audio, n * HOP))


def truncated_copy(source: Path, path: Path, share: float = 0.5) -> Path:
    """The first `share` of a video file's bytes: what an interrupted download leaves."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])
    return path


def flash_and_beep(path: Path, video_start: float, audio_start: float, at: float = 1.2,
                   seconds: float = 2.0) -> Path:
    """A dark 64-pixel video whose picture flashes white at `at` seconds while its sound beeps, its
    picture's timestamps starting at `video_start` and its sound's at `audio_start` (as in MPEG-TS,
    some mkv and webm, and mp4 with edit lists); the container follows the file's suffix. Read in
    step, the flash and the beep come at the same time."""
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for k in range(round(video_start * FPS), round((video_start + seconds) * FPS)):
            image = np.full((64, 64, 3), 255 if k == round(at * FPS) else 0, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        audio = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
        beep = round((at - audio_start) * SAMPLE_RATE)
        audio[beep:beep + HOP] = 0.5 * np.sin(2 * np.pi * 1000 / SAMPLE_RATE * np.arange(HOP))
        first = round(audio_start * SAMPLE_RATE)
        for start in range(0, len(audio), 1024):
            frame = av.AudioFrame.from_ndarray(audio[None, start:start + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, first + start, Fraction(1, SAMPLE_RATE)
            container.mux(sound.encode(frame))
        container.mux(sound.encode())
    return path


def make_sample_folder(folder: str | Path, clips: list[Clip]) -> dict[str, str | None]:
    """A folder of test videos: each world clip in a person folder of its own, then one video for
    each reason of refusal (the photograph, whose mouth does not move with its voice; the first
    clip made silent, short, small, ...).
    Returns the expected outcome of each file (its relative path): None for kept, or the rejection
    reason; "two_shots.mp4" (the first two clips cut together) gives two kept clips."""
    folder = Path(folder)
    expected: dict[str, str | None] = {}
    for clip in clips:
        name = f"person{clip.identity_id}/{clip.split}{clip.index}.mp4"
        world_video(clip, folder / name)
        expected[name] = None
    moving_photo_video(folder / "photo.mp4")
    expected["photo.mp4"] = "not in sync"             # a still photograph with a voice laid over it
    moving_photo_video(folder / "two_faces.mp4", copies=2)
    expected["two_faces.mp4"] = "several faces"
    faceless_video(folder / "no_face.mp4")
    expected["no_face.mp4"] = "no face"
    world_video(clips[0], folder / "no_sound_track.mp4", audio="none")
    expected["no_sound_track.mp4"] = "no audio"
    world_video(clips[0], folder / "silent.mp4", audio="silence")
    expected["silent.mp4"] = "silent"
    world_video(clips[0], folder / "short.mp4", seconds=1.0)
    expected["short.mp4"] = "too short"
    world_video(clips[0], folder / "small_face.mp4", size=96)
    expected["small_face.mp4"] = "face too small"
    two_shot_video(clips[0], clips[1], folder / "two_shots.mp4")
    expected["two_shots.mp4"] = None
    truncated_copy(folder / f"person{clips[0].identity_id}/{clips[0].split}{clips[0].index}.mp4",
                   folder / "truncated.mp4")
    expected["truncated.mp4"] = "unreadable"
    return expected
