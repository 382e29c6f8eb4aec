"""What training on video without the world's labels costs the face model (issue: your own videos).

    python benchmarks/face_label_free.py [--steps N] [--out assets/face_label_free.json]

On the world, where the truth is known: write train clips 0..n_train-1 (the config's) as mp4 files with sound, ingest
them as any video folder (`vasa_lib.real.ingest`), and train the face model of
`configs/face_video.toml` twice from the same seed for the same steps:
- `labels`: on the world's own renders of the same clips, with the world's pose labels;
- `video`: on the ingested crops of the same clips, with the pose estimated from the face's
  landmarks as the crop shows it (`vasa_lib.real.labels`), as a real-video run must.
Both are graded by `python -m vasa_lib.eval.face` on held-out people (pose_probe_r2, swap_psnr,
transfer_r2, ...). Prints and writes one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vasa_lib import paths
from vasa_lib.checkpoint import read_checkpoint
from vasa_lib.eval.face import evaluate
from vasa_lib.real.ingest import IngestConfig, ingest
from vasa_lib.real.samples import world_video
from vasa_lib.train import read_config, train_face
from vasa_lib.world.clips import load_clip

CONFIG = "configs/face_video.toml"
KEYS = ("self_psnr", "face_psnr", "swap_psnr", "cross_psnr", "pose_probe_r2", "mouth_probe_r2", "transfer_r2",
        "transfer_r2_pose", "transfer_r2_mouth", "pose_leak_r2", "id_similarity")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, help="override the config's max_steps")
    parser.add_argument("--out", default="assets/face_label_free.json")
    args = parser.parse_args(argv)
    n_clips = read_config(CONFIG)["data"]["n_train"]
    work = paths.data_dir() / f"label_free_{n_clips}"
    start = time.monotonic()
    for i in range(n_clips):
        target = work / "videos" / f"clip{i:04d}.mp4"
        if not target.exists():
            world_video(load_clip(i, "train", paths.data_dir()), target)
    # min_seconds 1: keep every clip (the world's sentences last 1.3 to 4 s), so both runs see the same 64
    # min_sync 0: the world's sound is in step by construction, and judging it drops short clips by chance
    summary = ingest(work / "videos", work / "dataset", IngestConfig(min_seconds=1.0, min_sync=0), progress=False)
    report = {"command": "python benchmarks/face_label_free.py", "config": CONFIG, "clips": n_clips,
              "ingest": {k: v for k, v in summary.items() if k not in ("records", "config")},
              "ingest_seconds": round(time.monotonic() - start, 1)}
    overrides = {"max_steps": args.steps} if args.steps else {}
    for run, data in (("labels", None), ("video", str(work / "dataset"))):
        checkpoint = f"runs/face_label_free/{run}.safetensors"
        path = train_face(CONFIG, {**overrides, "checkpoint": checkpoint, "run_dir": f"runs/face_label_free/{run}"},
                          command=f"python benchmarks/face_label_free.py ({run})", video_data=data)
        results = evaluate(path)
        trained = read_checkpoint(path)[1]["info"]
        report[run] = {"steps": trained["steps"], "train_seconds": trained["train_seconds"],
                       **{k: results[k] for k in KEYS if k in results}}
    report["seconds"] = round(time.monotonic() - start, 1)
    Path(paths.course_path(args.out)).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
