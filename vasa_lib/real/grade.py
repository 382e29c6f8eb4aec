"""How well the labels of real video are estimated, graded where the truth is known.

    python -m vasa_lib.real.grade --json        # 8 test clips, about a minute

Real video has no labels: the course estimates them from the face's landmarks
(`vasa_lib.real.labels`). Here world test clips (held-out people) are written as mp4 files and
ingested exactly as real video is (`vasa_lib.real.ingest`: detection, crop, landmarks on the
whole frame), and the estimates are graded on the world's truth, R^2 per parameter:
- `video`: the estimate in the whole video (`VideoClip.video_params`): the labels of the motion
  generator (distance and gaze controls, true pose);
- `crop`: the estimate as the crop shows the head (`VideoClip.params`): the face model's pose
  label. Rotations and the face's parameters are the same in both; x, y and distance in the crop
  are the head relative to a crop that follows it, so their truth there is not the world's, and
  their R^2 says how much of the world's motion the crop keeps.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from vasa_lib.eval.probes import r2_per_column
from vasa_lib.real.dataset import VideoClip, load_dataset
from vasa_lib.real.ingest import IngestConfig, ingest
from vasa_lib.real.labels import PARAM_NAMES
from vasa_lib.real.samples import world_video
from vasa_lib.world.clips import Clip, load_clip


def ingested_with_truth(videos: Path, out: Path, clips: dict[str, Clip],
                        size: int = 256) -> tuple[list[tuple[VideoClip, np.ndarray]], dict]:
    """Write world clips as `size`-pixel videos in `videos`, named as the keys of `clips` (a video already
    there is kept), and ingest them into `out`: each kept clip with the world's 17 true parameters of its
    frames (T, 17) (an mp4 may hold a frame more than the clip: T counts the frames both have), and
    ingestion's summary. min_seconds 1 keeps every clip (the world's sentences last 1.3 to 4 s); min_sync
    0: the world's sound is in step by construction, and judging it would only drop short clips by chance."""
    for name, clip in clips.items():
        if not (videos / name).exists():
            world_video(clip, videos / name, size=size)
    summary = ingest(videos, out, IngestConfig(min_seconds=1.0, min_sync=0), progress=False)
    found = {c.name: c for c in load_dataset(out)}
    pairs = []
    for record in json.loads((out / "summary.json").read_text())["records"]:
        clip = clips[record["video"]]
        for kept in record["kept"]:
            truth = np.concatenate([clip.pose, clip.dynamics], 1)[kept["start"]:kept["stop"]]
            pairs.append((found[kept["clip"]], truth[: len(found[kept["clip"]].frames)]))
    return pairs, summary


def grade(n_clips: int = 8, size: int = 256) -> dict:
    """Ingest n_clips test clips rendered at `size` pixels and grade both estimates on the truth:
    {"frames", "video": {name: R^2}, "crop": {name: R^2}}."""
    with tempfile.TemporaryDirectory() as tmp:
        clips = {f"clip{i:03d}.mp4": load_clip(i, "test") for i in range(n_clips)}
        pairs, summary = ingested_with_truth(Path(tmp) / "videos", Path(tmp) / "out", clips, size)
        truth = [t for _, t in pairs]
        video = [found.video_params[: len(t)] for found, t in pairs]
        crop = [found.params[: len(t)] for found, t in pairs]
    truth_t = torch.from_numpy(np.concatenate(truth).astype(np.float64))
    r2 = {name: r2_per_column(torch.from_numpy(np.concatenate(estimate).astype(np.float64)), truth_t)
          for name, estimate in (("video", video), ("crop", crop))}
    return {"clips": n_clips, "clips_kept": summary["clips_kept"], "frames": len(truth_t), "size": size,
            **{name: {p: round(float(v), 3) for p, v in zip(PARAM_NAMES, values)} for name, values in r2.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vasa_lib.real.grade",
                                     description="The landmark labels of ingested world video, graded on the truth.")
    parser.add_argument("--clips", type=int, default=8, help="test clips to write, ingest and grade")
    parser.add_argument("--size", type=int, default=256, help="the videos' side, pixels")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = {"command": "python -m vasa_lib.real.grade", **grade(args.clips, args.size)}
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
