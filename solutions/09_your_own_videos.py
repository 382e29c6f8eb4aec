"""Solutions to the exercises of notebook 09 · Your own videos.

Run from the repository root: `python solutions/09_your_own_videos.py`. Each exercise is one function; its asserts
check the answer, so a wrong answer fails. About 20 s on a 2-core CPU (it makes its own small video folder).
"""

import tempfile
from pathlib import Path

import numpy as np
import torch

from vasa_lib.notebook import setup
from vasa_lib.real.dataset import VideoClip
from vasa_lib.real.ingest import IngestConfig, crop_track, ingest, scan
from vasa_lib.real.labels import PARAM_NAMES
from vasa_lib.real.own_video import look_at
from vasa_lib.real.samples import moving_photo_video, two_shot_video, world_video
from vasa_lib.video import write_video
from vasa_lib.world.clips import load_clip, make_clip, render_clip
from vasa_lib.world.params import FPS, pose_index

cfg = setup(seed=0)
torch.set_num_threads(1)
videos = Path(tempfile.mkdtemp()) / "videos"
first, second = load_clip(0, "test"), load_clip(1, "test")


def make_videos():
    """The small video folder of exercises 1 and 2: one video of two shots, `first` then `second`."""
    two_shot_video(first, second, videos / "two_shots.mp4")


def outcome(summary: dict, video: str) -> list[str]:
    record = next(r for r in summary["records"] if r["video"] == video)
    return [f"kept {c['stop'] - c['start']} frames" for c in record["kept"]] + [x["reason"] for x in record["rejected"]]


def exercise_1():
    """A cut threshold above the largest thumbnail change misses the cut: one clip of two people."""
    change = scan(videos / "two_shots.mp4").change
    print(f"largest change between thumbnails: {change.max():.3f} (default cut {IngestConfig().cut})")
    assert change.max() > IngestConfig().cut                       # the default finds the cut...
    assert np.sort(change)[-2] < IngestConfig().cut / 2            # ...and nothing else comes close
    summary = ingest(videos, videos.parent / "missed_cut", IngestConfig(cut=float(change.max()) + 0.01), progress=False)
    print("two_shots.mp4 with the cut missed:", outcome(summary, "two_shots.mp4"))
    assert outcome(summary, "two_shots.mp4") == [f"kept {first.n_frames + second.n_frames} frames"]
    # A missed cut makes one clip of two people: the face model's training pairs (two frames of one clip) would then
    # ask it to re-enact one person's frame from the other person's appearance, teaching it to copy identity from
    # the driver, which is exactly the leak l_cross_id fights.


def exercise_2():
    """A 1.5 s video is too short; 2.5 s is kept; only the new video is read when the dataset is ingested again."""
    dataset = videos.parent / "dataset"
    ingest(videos, dataset, progress=False)
    world_video(load_clip(5, "test"), videos / "short.mp4", seconds=1.5)
    summary = ingest(videos, dataset, progress=False)
    print("short.mp4 (1.5 s):", outcome(summary, "short.mp4"), "| resumed:", summary["resumed"])
    assert outcome(summary, "short.mp4") == ["too short"] and summary["resumed"] == 1   # two_shots.mp4 was not redone
    clip = load_clip(5, "test")
    world_video(clip, videos / "short.mp4", seconds=2.5)                           # a new file: its key changes
    summary = ingest(videos, dataset, progress=False)
    print(f"short.mp4 (2.5 s, the clip has {clip.n_frames / FPS:.2f} s):", outcome(summary, "short.mp4"))
    assert outcome(summary, "short.mp4") == [f"kept {min(clip.n_frames, int(2.5 * FPS))} frames"]


def wobble_and_stray(tracks: dict[float, np.ndarray]) -> tuple[dict[float, float], dict[float, float]]:
    """Crop tracks (T, 3) by smoothing time in seconds (0: none): the mean |second difference| of each one's
    centre x (px/frame^2), and its mean distance from the unsmoothed crop (px)."""
    wobble = {s: float(np.abs(np.diff(t[:, 0], n=2)).mean()) for s, t in tracks.items()}
    stray = {s: float(np.abs(t[:, 0] - tracks[0.0][:, 0]).mean()) for s, t in tracks.items()}
    return wobble, stray


def check_exercise_3(wobble: dict[float, float], stray: dict[float, float]) -> None:
    """`wobble_and_stray` of the crops smoothed over 0, 0.5 and 2 s."""
    assert wobble[0.0] > 5 * wobble[0.5] > 5 * wobble[2.0]          # smoothing removes the shaking
    assert stray[2.0] > stray[0.5]                                  # and the longer one strays further from the face


def exercise_3():
    """Without smoothing the crop shakes with the detector's noise; with more smoothing it flattens the face's quick
    moves (a centred average does not lag) and strays further from the face."""
    moving_photo_video(videos.parent / "photo" / "photo.mp4")
    found = scan(videos.parent / "photo" / "photo.mp4")
    wobble, stray = wobble_and_stray({s: crop_track(found.boxes, s * FPS) for s in (0.0, 0.5, 2.0)})
    print("wobble of the centre (px/frame^2):", {s: round(w, 3) for s, w in wobble.items()})
    print("distance from the per-frame crop (px):", {s: round(v, 2) for s, v in stray.items()})
    check_exercise_3(wobble, stray)


def turned_at(clip: VideoClip, threshold: float = 0.15) -> float | None:
    """The first time (s from the clip's start) at which the yaw estimated in the whole video passes `threshold`
    (a turn to the subject's own left: the nose goes to the image's right, yaw > 0), or None if it never does."""
    yaw = clip.video_params[:, PARAM_NAMES.index("yaw")]
    passed = np.flatnonzero(yaw > threshold)
    return float(passed[0] / FPS) if len(passed) else None


def turning_video(path: Path, at: float = 2.0) -> float:
    """A world clip written as a video whose head turns to the subject's left at `at` s (over 0.4 s, to a yaw of
    0.4) and holds; returns the time at which its true yaw passes 0.15."""
    clip = make_clip(6, "test", text="I look at the camera, then I turn my head to the left, and I stay there.")
    t = np.arange(clip.n_frames) / FPS
    clip.pose[:, pose_index("yaw")] = 0.4 * np.clip((t - at) / 0.4, 0, 1)
    write_video(path, render_clip(clip, size=256), clip.audio)
    return float(t[np.argmax(clip.pose[:, pose_index("yaw")] > 0.15)])


def check_exercise_4(turned_at) -> None:
    """`turned_at` finds a world head's turn at the time it happened, within 0.2 s."""
    truth = turning_video(videos.parent / "turn" / "turn.mp4")
    look = look_at(videos.parent / "turn" / "turn.mp4", IngestConfig(max_seconds=30.0))
    found = turned_at(look.clips[0])
    print(f"the head turns at {truth:.2f} s; turned_at says {found}")
    assert found is not None and abs(found - truth) < 0.2


def exercise_4():
    """The yaw estimated from the landmarks passes 0.15 within a frame or two of the true turn."""
    check_exercise_4(turned_at)


if __name__ == "__main__":
    make_videos()
    for exercise in (exercise_1, exercise_2, exercise_3, exercise_4):
        print(f"--- {exercise.__name__}: {exercise.__doc__}")
        exercise()
