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
from vasa_lib.real.dataset import load_dataset
from vasa_lib.real.ingest import IngestConfig, ingest
from vasa_lib.real.labels import PARAM_NAMES
from vasa_lib.real.samples import world_video
from vasa_lib.world.clips import load_clip


def grade(n_clips: int = 8, size: int = 256) -> dict:
    """Ingest n_clips test clips rendered at `size` pixels and grade both estimates on the truth:
    {"frames", "video": {name: R^2}, "crop": {name: R^2}}."""
    with tempfile.TemporaryDirectory() as tmp:
        clips = {f"clip{i:03d}.mp4": load_clip(i, "test") for i in range(n_clips)}
        for name, clip in clips.items():
            world_video(clip, Path(tmp) / "videos" / name, size=size)
        # min_seconds 1: keep every clip (the world's sentences last 1.3 to 4 s); min_sync 0: the world's sound is
        # in step by construction, and judging it would only drop short clips by chance
        summary = ingest(Path(tmp) / "videos", Path(tmp) / "out", IngestConfig(min_seconds=1.0, min_sync=0),
                         progress=False)
        ingested = {c.name: c for c in load_dataset(Path(tmp) / "out")}
        records = json.loads((Path(tmp) / "out" / "summary.json").read_text())["records"]
        truth, video, crop = [], [], []
        for record in records:
            clip = clips[record["video"]]
            for kept in record["kept"]:
                found = ingested[kept["clip"]]
                true = np.concatenate([clip.pose, clip.dynamics], 1)[kept["start"]:kept["stop"]]
                truth.append(true)              # an mp4 may hold a frame more than the clip: graded where both are
                video.append(found.video_params[:len(true)])
                crop.append(found.params[:len(true)])
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
