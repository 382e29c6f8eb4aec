"""Ingestion: a folder of talking-face videos -> a dataset of face clips the course trains on.

    python -m vasa_lib.real.ingest VIDEO_FOLDER --out DATASET_FOLDER

Each video (mp4, mkv, webm, mov; in VIDEO_FOLDER or one folder per person below it) is read
twice with PyAV, so memory holds a few frames whatever the video's length:
1. scan: frames resampled to 25 fps, each searched for faces (`detect.detect_faces`), a small
   grey thumbnail kept to find shot changes; the audio resampled to 16 kHz mono. Frames and sound
   share one clock, time 0 being the file's start (`start_time`: files need not start at 0);
2. cut: shots split where consecutive thumbnails differ by more than `cut`, shots longer than
   `max_seconds` split evenly; each piece is kept or rejected with one reason (`REASONS`);
3. crop: for a kept piece, a square crop per frame, framed as the world frames a head at its
   nominal distance (`FACE_SHARE`, `FACE_OFFSET`) and smoothed over `smooth_seconds`, so that
   the crop follows a camera's pan or a person's drift but the head's own motion (turns, nods,
   leaning in) stays visible in it; resized to `size` pixels. Parts of a crop outside the video
   are black. A crop normalises the head's size: a clip's mean distance reads as about 1, the
   world's nominal, whatever the camera's distance was. The second reading must give every
   frame of the first (`crop_pieces`).

A kept clip is one file `clips/{name}.npz`: frames (T, size, size, 3) uint8 at 25 fps, audio
(T * 640,) float32 at 16 kHz, crop (T, 3) its centre x, y and side in the video's pixels,
frame_size (2,) the video's width and height, the detector's keypoints (T, 6, 2) and the face's
landmarks (T, 478, 3) (`landmarks.face_landmarks`, found on the whole frame: more pixels than the
crop's) in crop pixels (in frames without a face, filled from their neighbours), person (the
folder or file it came from). Every file is written whole or not at all; each video's outcome
is recorded in `videos/{key}.json` (`video_key`: its path, content and the settings) once all its
clips are written, so an interrupted run resumes where it stopped, and `summary.json` lists what
was kept and why the rest was not. A file that cannot be decoded is recorded as "unreadable"; a
"read error" (of the disk, or of a file that changed while it was read) is not recorded, and the
next run tries that video again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter1d
from tqdm.auto import tqdm

from vasa_lib.paths import write_atomic
from vasa_lib.real.detect import detect_faces
from vasa_lib.real.labels import estimate
from vasa_lib.real.landmarks import POINTS, face_landmarks
from vasa_lib.real.speaker import MIN_CONFIDENCE, Sync, audio_visual_sync, frames_needed, in_step
from vasa_lib.video import to_uint8_frames
from vasa_lib.world.params import FPS, SAMPLE_RATE

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov")
HOP = SAMPLE_RATE // FPS
# The world's nominal framing as the detector sees it (`world_framing`, measured on renders of
# train people at distance 1, centred, in natural head rotations): the face box's side over the
# frame's side, and the box centre's offset from the frame centre, in units of the frame's side.
FACE_SHARE = 0.37
FACE_OFFSET = (0.0, 0.05)
CLIP_FORMAT = 2                  # what a clip file holds: 2 added the landmarks and the frame size
REASONS = {
    "unreadable": "the file cannot be decoded as a video",
    "read error": "the file could not be read this time (tried again on the next run)",
    "no audio": "the video has no sound track",
    "silent": "the sound track is silent",
    "no face": "no face is found in too many frames",
    "several faces": "more than one face is found in too many frames",
    "face too small": "the face is smaller than min_face pixels",
    "too short": "the shot is shorter than min_seconds",
    "not in sync": "the voice does not move the mouth on screen (a voice-over, a speaker off screen, a still "
                   "photograph) or is more than 0.5 s out of step",
}


@dataclass
class IngestConfig:
    """size: crop side in pixels; min_seconds, max_seconds: clip length; min_face: smallest face
    box side, in the video's pixels; face_share: share of frames that must show exactly one face;
    cut: mean absolute thumbnail difference (0..1) that marks a shot change; silence: RMS below
    which audio counts as silent; smooth_seconds: time scale of the crop's smoothing; min_sync:
    audio-visual sync confidence below which a piece is refused as not its speaker's
    (`speaker.audio_visual_sync`; 0 keeps every piece and corrects no offset)."""

    size: int = 128
    min_seconds: float = 2.0
    max_seconds: float = 10.0
    min_face: float = 40.0
    face_share: float = 0.9
    cut: float = 0.2
    silence: float = 1e-3
    smooth_seconds: float = 2.0
    min_sync: float = MIN_CONFIDENCE


class Unreadable(ValueError):
    """The file itself cannot be read as a video (no video stream, no frames)."""


@dataclass
class Scan:
    """What pass 1 found in a video of T frames at 25 fps: per frame the number of faces,
    the best face's box (T, 4) and keypoints (T, 6, 2) (NaN where none), the thumbnail change
    from the previous frame (T,); the audio (N,) at 16 kHz or None; the frame size (W, H)."""

    counts: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    change: np.ndarray
    audio: np.ndarray | None
    frame_size: tuple[int, int]


def start_time(container: av.container.InputContainer) -> float:
    """When a file starts, in seconds of its streams' timestamps (its first stream's start; MPEG-TS,
    some mkv and webm files and mp4 with edit lists do not start at 0): time 0 of its frames and
    its sound."""
    return 0.0 if container.start_time is None else container.start_time / av.time_base


def resampled_frames(path: Path) -> Iterator[np.ndarray]:
    """The video's frames at 25 fps as (H, W, 3) uint8: at each tick (from `start_time`) the
    latest frame shown."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise Unreadable("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin, tick, last, last_time = start_time(container), 0, None, 0.0
        for frame in container.decode(stream):
            time = float(frame.time) - origin if frame.time is not None else last_time
            while last is not None and tick / FPS < time:
                yield last
                tick += 1
            last, last_time = frame.to_ndarray(format="rgb24"), time
        rate = float(stream.average_rate or FPS)
        while last is not None and tick / FPS < last_time + 1 / rate:
            yield last
            tick += 1


def read_audio(path: Path) -> np.ndarray | None:
    """The first sound track as 16 kHz mono float32 (N,), sample 0 at time 0 of `start_time` (the
    frames' clock: silence before a track that starts later), or None if there is none."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        origin, first, chunks = start_time(container), None, []
        for frame in container.decode(container.streams.audio[0]):
            if first is None:
                first = origin if frame.time is None else float(frame.time)
            chunks += [f.to_ndarray()[0] for f in resampler.resample(frame)]
        chunks += [f.to_ndarray()[0] for f in resampler.resample(None)]
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    lead = 0 if first is None else round((first - origin) * SAMPLE_RATE)
    return np.pad(audio, (lead, 0)) if lead >= 0 else audio[-lead:]


def _thumbnail(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).convert("L").resize((32, 32), Image.BILINEAR), np.float32) / 255


def scan(path: Path) -> Scan:
    """Pass 1 over a video (see `Scan`)."""
    counts, boxes, keypoints, change, previous, size = [], [], [], [], None, (0, 0)
    for image in resampled_frames(path):
        faces = detect_faces(image)
        counts.append(len(faces))
        boxes.append(faces[0].box if faces else np.full(4, np.nan))
        keypoints.append(faces[0].keypoints if faces else np.full((6, 2), np.nan))
        thumb = _thumbnail(image)
        change.append(0.0 if previous is None else float(np.abs(thumb - previous).mean()))
        previous, size = thumb, (image.shape[1], image.shape[0])
    if not counts:
        raise Unreadable("no frames")
    return Scan(np.array(counts), np.array(boxes), np.array(keypoints), np.array(change), read_audio(path), size)


def pieces(change: np.ndarray, cut: float, max_frames: int) -> list[tuple[int, int]]:
    """Frame ranges [start, stop) of the shots (split where change > cut), each longer than
    max_frames split into equal parts no longer than that."""
    bounds = [0, *np.flatnonzero(change > cut).tolist(), len(change)]
    out = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        n = -(-(stop - start) // max_frames)
        edges = np.linspace(start, stop, n + 1).round().astype(int)
        out += list(zip(edges[:-1].tolist(), edges[1:].tolist()))
    return out


def judge(found: Scan, start: int, stop: int, config: IngestConfig) -> str | None:
    """Why frames start..stop cannot make a clip (a key of `REASONS`), or None if they can."""
    counts = found.counts[start:stop]
    if stop - start < config.min_seconds * FPS:
        return "too short"
    if (counts > 1).mean() > 1 - config.face_share:
        return "several faces"
    if (counts == 1).mean() < config.face_share:
        return "no face"
    sides = (found.boxes[start:stop, 2:] - found.boxes[start:stop, :2]).mean(1)
    if np.nanmedian(sides) < config.min_face:
        return "face too small"
    return None


def fill_gaps(values: np.ndarray) -> np.ndarray:
    """Per-frame values (T, ...) with NaN in the frames without a face (a box, keypoints), each
    gap filled by linear interpolation between its neighbours (held at the ends)."""
    flat = values.reshape(len(values), -1)
    t, ok = np.arange(len(flat)), ~np.isnan(flat).any(1)
    if not ok.any():
        raise ValueError("fill_gaps needs a face in at least one frame")
    return np.stack([np.interp(t, t[ok], column[ok]) for column in flat.T], 1).reshape(values.shape)


def crop_track(boxes: np.ndarray, smooth_frames: float) -> np.ndarray:
    """Square crops (T, 3): centre x, y and side in the video's pixels, framed like the world at
    its nominal distance, from face boxes (T, 4) (NaN rows, frames without a face, are filled
    from their neighbours: `fill_gaps`) smoothed with a Gaussian of `smooth_frames` frames."""
    filled = fill_gaps(boxes)
    side = (filled[:, 2] - filled[:, 0] + filled[:, 3] - filled[:, 1]) / 2 / FACE_SHARE
    centre = (filled[:, :2] + filled[:, 2:]) / 2 - np.asarray(FACE_OFFSET) * side[:, None]
    track = np.concatenate([centre, side[:, None]], 1)
    return gaussian_filter1d(track, smooth_frames, axis=0, mode="nearest") if smooth_frames > 0 else track


def crop(image: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """The square (cx, cy, side) of an (H, W, 3) image, resized to (size, size, 3); parts outside
    the image are black."""
    x0, y0, s = int(round(cx - side / 2)), int(round(cy - side / 2)), max(int(round(side)), 1)
    return np.asarray(Image.fromarray(image).crop((x0, y0, x0 + s, y0 + s)).resize((size, size), Image.LANCZOS))


def world_framing(n_people: int = 64, size: int = 256) -> tuple[float, tuple[float, float]]:
    """Measure `FACE_SHARE` and `FACE_OFFSET` on renders of train people in natural head
    rotations and expressions (`clips.natural_motion`), centred at distance 1."""
    from vasa_lib.world.clips import natural_motion
    from vasa_lib.world.identity import IDENTITY_SPLITS, identity_from_id
    from vasa_lib.world.params import NEUTRAL_POSE, pose_index
    from vasa_lib.world.renderer import render

    ids = list(IDENTITY_SPLITS["train"])[:n_people]
    pose, dynamics = natural_motion("train", len(ids), n_clips=16, seed=0)
    placed = [pose_index(name) for name in ("tx", "ty", "distance")]
    pose[:, placed] = NEUTRAL_POSE[placed]
    images = render(identity_from_id(ids), pose, dynamics, size=size)
    faces = [detect_faces(image)[0] for image in to_uint8_frames(images)]
    offset = np.mean([(f.centre - size / 2) / size for f in faces], 0)
    return float(np.mean([f.size / size for f in faces])), (float(offset[0]), float(offset[1]))


def crop_pieces(path: Path, plan: list[tuple[int, int, np.ndarray]], boxes: np.ndarray, size: int,
                n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pass 2 over a video of n frames: for each planned piece (start, stop, crop track (stop -
    start, 3)) its crops (stop - start, size, size, 3) uint8 and the face's landmarks
    (stop - start, 478, 3) in the video's pixels (`landmarks.face_landmarks` on the whole frame,
    in the face box (T, 4) of pass 1; NaN where pass 1 found no face). OSError if the video does
    not give the n frames of pass 1 again (it changed while it was read)."""
    pieces = [(np.empty((stop - start, size, size, 3), np.uint8), np.full((stop - start, POINTS, 3), np.nan))
              for start, stop, _ in plan]
    count = 0
    for t, image in enumerate(resampled_frames(path)):
        for (start, stop, track), (frames, points) in zip(plan, pieces):
            if start <= t < stop:
                frames[t - start] = crop(image, *track[t - start], size)
                if not np.isnan(boxes[t]).any():
                    points[t - start] = face_landmarks(image, boxes[t])[0]
        count = t + 1
    if count != n:
        raise OSError(f"{path.name} gave {count} frames on its second reading and {n} on its first")
    return pieces


def to_crop(points: np.ndarray, track: np.ndarray, size: int) -> np.ndarray:
    """Points (T, K, D) in the video's pixels (x, y, then any depth in the same scale) -> in the
    pixels of the `size` crops of track (T, 3)."""
    scale = size / track[:, 2, None, None]
    moved = points.copy()
    moved[..., :2] -= track[:, None, :2]
    return moved * scale + np.r_[size / 2, size / 2, np.zeros(points.shape[-1] - 2)]


def from_crop(points: np.ndarray, track: np.ndarray, size: int) -> np.ndarray:
    """The inverse of `to_crop`: points (T, K, D) in the pixels of the `size` crops of track (T, 3) ->
    in the video's pixels."""
    moved = points * (track[:, 2, None, None] / size)
    moved[..., :2] += track[:, None, :2] - track[:, None, 2:] / 2
    return moved


def video_key(path: Path, root: Path, config: IngestConfig) -> str:
    """A file name for a video's record: its path below root, and a hash of that path, its content,
    the settings and `CLIP_FORMAT` (an edited video, other settings or clips of an older format
    ingest again; a copy does not)."""
    rel = path.relative_to(root).as_posix()
    with open(path, "rb") as f:
        content = hashlib.file_digest(f, "sha256").hexdigest()
    settings = json.dumps({**asdict(config), "format": CLIP_FORMAT}, sort_keys=True)
    digest = hashlib.sha256(f"{rel}|{content}|{settings}".encode()).hexdigest()[:10]
    return f"{rel.rsplit('.', 1)[0].replace('/', '__')}-{digest}"


def person_of(path: Path, root: Path) -> str:
    """Videos in a folder below root belong to that folder's person; a video directly in root is
    a person of its own."""
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else path.stem


def ingest_video(path: Path, root: Path, out: Path, config: IngestConfig, key: str) -> dict:
    """Ingest one video into out/clips, its clips named after its `video_key`; returns its record:
    the clips kept and the pieces rejected, each with its frame range and reason (or the whole
    video's reason: "unreadable" if it cannot be decoded, "read error" if reading it failed)."""
    record = {"video": path.relative_to(root).as_posix(), "person": person_of(path, root), "kept": [],
              "rejected": []}
    try:
        found = scan(path)
        n = len(found.counts)
        record.update(frames=n, seconds=round(n / FPS, 2), frame_size=list(found.frame_size))
        if found.audio is None:
            return {**record, "rejected": [{"reason": "no audio"}]}
        audio = np.pad(found.audio, (0, max(0, n * HOP - len(found.audio))))[: n * HOP]
        if np.sqrt(np.mean(audio**2)) < config.silence:
            return {**record, "rejected": [{"reason": "silent"}]}
        plan = []
        for start, stop in pieces(found.change, config.cut, int(config.max_seconds * FPS)):
            reason = judge(found, start, stop, config)
            if reason:
                record["rejected"].append({"start": start, "stop": stop, "reason": reason})
            else:
                plan.append((start, stop, crop_track(found.boxes[start:stop], config.smooth_seconds * FPS)))
        cropped = crop_pieces(path, plan, found.boxes, config.size, n) if plan else []
    except OSError as error:                # first: PyAV's errors of the file system are OSErrors too
        return {**record, "rejected": [{"reason": "read error", "detail": str(error)}]}
    except (av.error.FFmpegError, Unreadable) as error:
        return {**record, "rejected": [{"reason": "unreadable", "detail": str(error)}]}
    for k, ((start, stop, track), (frames, landmarks)) in enumerate(zip(plan, cropped)):
        points = to_crop(fill_gaps(landmarks), track, config.size)
        sync = judge_sync(points, audio, start, stop, config)
        if sync and sync.confidence < config.min_sync:
            record["rejected"].append({"start": start, "stop": stop, "reason": "not in sync",
                                       "sync_confidence": round(sync.confidence, 3)})
            continue
        offset = sync.offset if sync else 0
        name = f"{key}-{k:03d}"
        arrays = {"frames": frames, "audio": in_step(audio, start, stop, offset).astype(np.float32),
                  "crop": track.astype(np.float32), "frame_size": np.array(found.frame_size),
                  "keypoints": to_crop(fill_gaps(found.keypoints[start:stop]), track, config.size).astype(np.float32),
                  "landmarks": points.astype(np.float32), "person": np.array(record["person"])}
        write_atomic(out / "clips" / f"{name}.npz", lambda tmp, a=arrays: np.savez(tmp, **a))
        record["kept"].append({"clip": name, "start": start, "stop": stop, "sync_offset": offset,
                               **({"sync_confidence": round(sync.confidence, 3)} if sync else {})})
    return record


def judge_sync(points: np.ndarray, audio: np.ndarray, start: int, stop: int, config: IngestConfig) -> Sync | None:
    """The audio-visual sync of a piece from its landmarks (T, 478, 3) in crop pixels and the
    video's whole sound track, or None where it is not judged (min_sync 0, or a piece shorter
    than `speaker.frames_needed`)."""
    if config.min_sync <= 0 or stop - start < frames_needed():
        return None
    return audio_visual_sync(estimate(points, (config.size, config.size)), audio[start * HOP: stop * HOP])


def find_videos(folder: Path) -> list[Path]:
    """Video files in folder and one level of person folders below it, sorted."""
    return sorted(p for pattern in ("*", "*/*") for p in folder.glob(pattern)
                  if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))


def ingest(folder: str | Path, out: str | Path, config: IngestConfig | None = None, progress: bool = True) -> dict:
    """Ingest every video of a folder (see the module's docstring) and write out/summary.json;
    videos already recorded in out/videos are not done again, nor recorded after a read error.
    Returns the summary."""
    folder, out, config = Path(folder), Path(out), config or IngestConfig()
    if not folder.is_dir():
        raise ValueError(f"no folder of videos at {folder}")
    videos = find_videos(folder)
    if not videos:
        raise ValueError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) in {folder}")
    records, resumed = [], 0
    for path in tqdm(videos, desc="ingesting", unit="video", disable=not progress):
        key = video_key(path, folder, config)
        done = out / "videos" / f"{key}.json"
        if done.exists():
            records.append(json.loads(done.read_text()))
            resumed += 1
            continue
        record = ingest_video(path, folder, out, config, key)
        if all(x["reason"] != "read error" for x in record["rejected"]):    # else tried again next time
            write_atomic(done, lambda tmp, r=record: tmp.write_text(json.dumps(r, indent=1)))
        records.append(record)
    kept = [c for r in records for c in r["kept"]]
    reasons = [x["reason"] for r in records for x in r["rejected"]]
    summary = {"videos": len(videos), "resumed": resumed, "clips_kept": len(kept),
               "seconds_kept": round(sum(c["stop"] - c["start"] for c in kept) / FPS, 2),
               "people": len({r["person"] for r in records if r["kept"]}),
               "rejected": {reason: reasons.count(reason) for reason in REASONS if reason in reasons},
               "config": asdict(config), "records": records}
    write_atomic(out / "summary.json", lambda tmp: tmp.write_text(json.dumps(summary, indent=1)))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vasa_lib.real.ingest", description=__doc__.split("\n")[0])
    parser.add_argument("videos", help="a folder of videos, or of one folder of videos per person")
    parser.add_argument("--out", required=True, help="the dataset folder to write (resumed if it exists)")
    for name, value in asdict(IngestConfig()).items():
        option = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):         # --name / --no-name: type=bool would read "False" as True
            parser.add_argument(option, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(option, type=type(value), default=value)
    args = parser.parse_args(argv)
    config = IngestConfig(**{name: getattr(args, name) for name in asdict(IngestConfig())})
    try:
        summary = ingest(args.videos, args.out, config)
    except ValueError as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        done = len(list(Path(args.out, "videos").glob("*.json")))
        sys.exit(f"interrupted with {done} videos done: run the same command again to go on from there")
    outcome = {r["video"]: [f"kept {c['clip']}" for c in r["kept"]] + [x["reason"] for x in r["rejected"]]
               for r in summary["records"]}
    print(json.dumps({**{k: v for k, v in summary.items() if k != "records"}, "outcome": outcome}, indent=1))


if __name__ == "__main__":
    main()
