"""Ablation of VASA-1's disentanglement losses (paper Sec. 3.1) at notebook scale.

    python benchmarks/face_ablation.py [--steps 300] [--out assets/face_ablation.json]

Trains the fast face config (configs/face_fast.toml) four times, from the same seed and data, with
l_consist and l_cross_id each on or off, for the same number of steps; grades every run with the
metrics of `python -m vasa_lib.eval.face` (held-out test identities) and with one more leak measure,
`dyn_transfer_pose_leak`: decode a person with its own pose and the dynamics of another frame of the
same person, and project the result on the world's true renders of the two possible answers (head
kept in its pose, or moved to the other frame's pose): 0 = no leak, 1 = the dynamics carry the whole
pose. Notebook 02 explains the measure. Prints and writes one JSON object.

The runs are small (fast config, a few hundred steps on 2 CPU cores): differences between them are
indicative, not conclusive; the JSON records the settings and times.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from vasa_lib import paths
from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.eval.face import evaluate
from vasa_lib.face.model import FaceModel
from vasa_lib.train import read_config, train_face
from vasa_lib.world.clips import load_clip
from vasa_lib.world.renderer import render

REPO_ROOT = paths.course_root()

VARIANTS = {  # name: (consist weight, cross_id weight)
    "both losses": (1.0, 0.1),
    "without l_consist": (0.0, 0.1),
    "without l_cross_id": (1.0, 0.0),
    "without both": (0.0, 0.0),
}


def toml_value(v) -> str:
    return json.dumps(v) if not isinstance(v, bool) else str(v).lower()


def write_config(base: dict, path: Path, consist: float, cross_id: float, steps: int, run_dir: Path,
                 threads: int) -> Path:
    """The fast config with the loss weights and step count of one variant, as a TOML file."""
    tables = {k: dict(v) for k, v in base.items()}
    tables["loss"].update(consist=consist, cross_id=cross_id)
    tables["train"].update(max_steps=steps, max_minutes=600.0, checkpoint=str(run_dir / "face.safetensors"),
                           run_dir=str(run_dir), checkpoint_every_minutes=600.0, log_every=50,
                           threads=threads)
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


@torch.inference_mode()
def dyn_transfer_pose_leak(model: FaceModel, n_clips: int = 12, per_clip: int = 4, seed: int = 0,
                           cache_dir: str | None = None) -> dict[str, float]:
    """Notebook 02's leak of head pose through z_dyn. Frame a of test clip i, frame b = the same person
    in the pose and expression of a frame of clip i + n_clips; decode a with its own pose and b's
    dynamics (out). With the truth T = render(id, pose_a, dyn_b) and the fully leaked answer
    I_b = render(id, pose_b, dyn_b): lambda = sum <out - T, I_b - T> / sum |I_b - T|^2 (0 = the head
    stays, 1 = it follows b's pose). Also the PSNR of out against T."""
    from vasa_lib.face.losses import psnr

    rng = np.random.default_rng(seed)
    num, den, scores = 0.0, 0.0, []
    for i in range(n_clips):
        clip, other = load_clip(i, "test", cache_dir), load_clip(i + n_clips, "test", cache_dir)
        a, c = rng.integers(0, clip.n_frames, per_clip), rng.integers(0, other.n_frames, per_clip)
        ident = clip.identity.expand(per_clip, -1)
        pose_a, pose_b = torch.from_numpy(clip.pose[a]), torch.from_numpy(other.pose[c])
        dyn_a, dyn_b = torch.from_numpy(clip.dynamics[a]), torch.from_numpy(other.dynamics[c])
        img_a, img_b, truth = render(ident, pose_a, dyn_a), render(ident, pose_b, dyn_b), render(ident, pose_a, dyn_b)
        latent = model.encode(img_a)
        out = model.decode(latent, latent.pose, model.encode_motion(img_b)[1])
        num += float(((out - truth) * (img_b - truth)).sum())
        den += float(((img_b - truth) ** 2).sum())
        scores.append(psnr(out, truth))
    return {"dyn_transfer_pose_leak": num / den, "dyn_transfer_psnr": float(torch.cat(scores).mean())}


def run_variant(name: str, args: argparse.Namespace) -> dict:
    """Train and grade one variant (runs in its own process with `args.threads` threads)."""
    consist, cross_id = VARIANTS[name]
    torch.set_num_threads(args.threads)
    run_dir = REPO_ROOT / args.runs / name.replace(" ", "_")
    run_dir.mkdir(parents=True, exist_ok=True)
    config = write_config(read_config(REPO_ROOT / args.config), run_dir / "config.toml", consist, cross_id, args.steps,
                          run_dir, args.threads)
    start = time.monotonic()
    checkpoint = train_face(str(config), command=f"python -m vasa_lib.train face --config {config}")
    train_seconds = time.monotonic() - start
    metrics = evaluate(checkpoint, n_clips=args.clips, cache_dir=args.cache_dir)
    metrics.pop("checkpoint", None)
    metrics.update(dyn_transfer_pose_leak(load_checkpoint(checkpoint, FaceModel), cache_dir=args.cache_dir))
    result = {"consist": consist, "cross_id": cross_id, "train_seconds": round(train_seconds, 1),
              **{k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}}
    print(json.dumps({name: result}), flush=True)
    return result


def library_version() -> str:
    """The git commit of the checkout, with a note when vasa_lib/face has uncommitted changes."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "vasa_lib/face", "vasa_lib/eval/face.py", "configs/face_fast.toml")
    except OSError:
        return "unknown"
    return commit + (" + uncommitted changes to the face model, its evaluation or config" if dirty else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--config", default="configs/face_fast.toml")
    parser.add_argument("--runs", default="runs/face_ablation", help="where the ablation checkpoints go")
    parser.add_argument("--clips", type=int, default=40, help="test clips for the re-enactment metrics")
    parser.add_argument("--only", nargs="*", help="run only these variants (names as in the JSON)")
    parser.add_argument("--cache-dir", default=str(paths.data_dir()),
                        help="where clips are cached")
    parser.add_argument("--jobs", type=int, default=1, help="variants trained at the same time (processes)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads per job")
    parser.add_argument("--out", default="assets/face_ablation.json")
    args = parser.parse_args(argv)
    out_path = REPO_ROOT / args.out
    record = json.loads(out_path.read_text()) if args.only and out_path.exists() else {}
    command = "python benchmarks/face_ablation.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    record.update({"command": command,
                   "config": args.config, "steps": args.steps, "library": library_version(), "torch": torch.__version__,
                   "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                              f"{args.jobs} job(s) x {args.threads} thread(s)"})
    names = [n for n in VARIANTS if not args.only or n in args.only]
    # load the clips once, so that parallel jobs do not make the same clip at the same time
    for split, n in (("train", read_config(REPO_ROOT / args.config)["data"]["n_train"]), ("train", 100), ("test", 40)):
        for i in range(n):
            load_clip(i, split, args.cache_dir)
    start = time.monotonic()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = dict(zip(names, pool.map(run_variant, names, [args] * len(names))))
    else:
        results = {name: run_variant(name, args) for name in names}
    record.setdefault("variants", {}).update(results)
    record["variants"] = {n: record["variants"][n] for n in VARIANTS if n in record["variants"]}
    record["wall_seconds"] = round(time.monotonic() - start, 1)
    out_path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
