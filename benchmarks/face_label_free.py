"""What training on video without the world's labels costs the face model (issue: your own videos).

    python benchmarks/face_label_free.py [--steps N] [--out assets/face_label_free.json]

On the world, where the truth is known: write train clips 0..n_train-1 (the config's) as mp4 files with sound, ingest
them as any video folder (`vasa_lib.real.ingest`), and train the face model of
`configs/face_video.toml` twice from the same seed for the same steps:
- `labels`: on the world's own renders of the same clips, with the world's pose labels;
- `video`: on the ingested crops of the same clips, with the pose estimated from the face's
  landmarks as the crop shows it (`vasa_lib.real.labels`), as a real-video run must.
Both are graded by `python -m vasa_lib.eval.face` on held-out people (pose_probe_r2, swap_psnr,
transfer_r2, ...), on the world's whole renders, and on crops made as ingestion makes them (`crop_grade`:
held-out clips written as videos and ingested): self_psnr_crop and rotation_probe_r2_crop. Prints and
writes one JSON object. `--grade-only` grades the two checkpoints of an earlier run again.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from vasa_lib import paths
from vasa_lib.checkpoint import load_checkpoint, read_checkpoint
from vasa_lib.eval.face import evaluate
from vasa_lib.eval.probes import r2_per_column, ridge
from vasa_lib.face.losses import psnr
from vasa_lib.face.model import FaceModel
from vasa_lib.real.dataset import VideoClip
from vasa_lib.real.grade import ingested_with_truth
from vasa_lib.train import read_config, train_face
from vasa_lib.world.clips import load_clip

CONFIG = "configs/face_video.toml"
KEYS = ("self_psnr", "face_psnr", "swap_psnr", "cross_psnr", "pose_probe_r2", "mouth_probe_r2", "transfer_r2",
        "transfer_r2_pose", "transfer_r2_mouth", "pose_leak_r2", "id_similarity")


@torch.inference_mode()
def crop_grade(path: str | Path, train: list[tuple[VideoClip, np.ndarray]],
               test: list[tuple[VideoClip, np.ndarray]]) -> dict[str, float]:
    """A face model graded on ingested crops: self_psnr_crop, each test crop clip's first frame re-enacted with
    the motion encoded from its other frames; rotation_probe_r2_crop (and per angle), a ridge probe of the true
    yaw, pitch and roll from z_pose, fit on the train crops and scored on the test crops. Position and distance
    are left out: in a crop that follows the head they are not the world's."""
    model = load_checkpoint(path, FaceModel).eval()

    def rotations(pairs):
        z = torch.cat([model.encode_motion(clip.images(slice(0, len(truth))))[0] for clip, truth in pairs])
        return z, torch.cat([torch.from_numpy(truth[:, :3]).float() for _, truth in pairs])   # yaw, pitch, roll

    (x_fit, y_fit), (x_test, y_test) = rotations(train), rotations(test)
    weight, bias = ridge(x_fit, y_fit, 1e-3)
    r2 = r2_per_column(x_test @ weight + bias, y_test)
    scores = []
    for clip, truth in test:
        frames = clip.images(slice(0, len(truth)))
        latent = model.encode(frames[:1])
        canonical, n = model.canonical(latent), len(frames) - 1
        pose, dynamics = model.encode_motion(frames[1:])
        out = model.render(canonical.expand(n, *canonical.shape[1:]), latent.identity.expand(n, -1), pose, dynamics,
                           source=latent)
        scores.append(psnr(out, frames[1:]))
    return {"self_psnr_crop": round(float(torch.cat(scores).mean()), 4),
            "rotation_probe_r2_crop": round(float(r2.mean()), 4),
            **{f"{name}_probe_r2_crop": round(float(v), 4) for name, v in zip(("yaw", "pitch", "roll"), r2)}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, help="override the config's max_steps")
    parser.add_argument("--out", default="assets/face_label_free.json")
    parser.add_argument("--grade-only", action="store_true", help="grade the checkpoints of an earlier run on crops "
                        "again and add the figures to --out")
    parser.add_argument("--test-clips", type=int, default=32, help="held-out clips for the crop grade")
    args = parser.parse_args(argv)
    n_clips = read_config(CONFIG)["data"]["n_train"]
    work = paths.data_dir() / f"label_free_{n_clips}"
    start = time.monotonic()
    clips = {split: {f"clip{i:04d}.mp4": load_clip(i, split, paths.data_dir()) for i in range(n)}
             for split, n in (("train", n_clips), ("test", args.test_clips))}
    train, summary = ingested_with_truth(work / "videos", work / "dataset", clips["train"])
    test, _ = ingested_with_truth(work / "test_videos", work / "test_dataset", clips["test"])
    if args.grade_only:
        report = json.loads(Path(paths.course_path(args.out)).read_text())
        for run in ("labels", "video"):
            report[run].update(crop_grade(f"runs/face_label_free/{run}.safetensors", train, test))
        report["crop_grade"] = {"test_clips": args.test_clips, "command": "python benchmarks/face_label_free.py "
                                "--grade-only"}
        Path(paths.course_path(args.out)).write_text(json.dumps(report, indent=1) + "\n")
        print(json.dumps(report))
        return
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
                       **{k: results[k] for k in KEYS if k in results}, **crop_grade(path, train, test)}
    report["crop_grade"] = {"test_clips": args.test_clips}
    report["seconds"] = round(time.monotonic() - start, 1)
    Path(paths.course_path(args.out)).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
