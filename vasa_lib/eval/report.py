"""The paper's evaluation table (VASA-1 Sec. 4.1, Table 1), reproduced on the world.

    python -m vasa_lib.eval.report --json [--clips 8] [--train-clips 16] [--full]

One row per system, each scored on the same held-out TEST clips (people, sentences and often
voices never seen in training) by the evaluators of `vasa_lib.eval.motion`, graded first on the
truth (settings.<space>.evaluator_grades):
- in the face model's latent space [z_pose, z_dyn] (VASA-1 itself): the ground truth (the face
  encoder's latents of the true clips), the regression baseline, diffusion at 50 and at 10 DDIM
  steps, diffusion at the paper's guidance scales (audio 0.5, gaze 1; 10 steps), and diffusion
  without the previous-window condition (context 0, 10 steps);
- the same rows in the world's own 17 parameters (`--face world` of eval.motion, prefix "world/"):
  the motion generator at its ceiling, as a perfect parametric face model would allow.
Columns: sync_conf (Sc, up), sync_dist (Sd, down), capp (up), delta_p (degrees per frame; compare
with the truth), motion_fd (the FVD analogue: Frechet distance of 1 s motion windows, down; the
truth's value is the sampling floor), lip_sync_corr, diversity, gaze_err_deg, distance_err,
emotion_acc (see eval.motion), and realism_acc: the accuracy of a detector trained to tell the
row's motion from the truth (`vasa_lib.eval.realism`; 0.5 = indistinguishable). The ground-truth
row's realism_acc compares the truth with the truth under other motion seeds (a control: ~0.5).

From pixels (`vasa_lib.eval.pixels`, `vasa_lib.eval.video_features`): each row's motion is made
into video (the world rows rendered by the world, the latent rows decoded by the shipped face
model onto the clip's person) and judged on its frames:
- fvd: the FVD analogue, the Frechet distance between 25-frame windows of the row's videos and
  of the world's renders of the same test clips under another motion seed (the same people and
  speech), in the features of a video network trained on the world (down; the world's
  ground-truth row gives the sampling floor);
- px_realism_acc: the realism detector's test on pixels: the same detector, trained on what the
  video network sees of each frame of the row's videos against the world's own renders of the
  truth (train people), graded on held-out people (0.5 = indistinguishable; in the world's
  ground-truth row, a control: renders of the truth under another motion seed);
- px_*: the parameter reader reads the world's 17 parameters from every frame, and the world's
  evaluators grade them (`eval.pixels.PIXEL_KEYS`): the errors a viewer would see.
settings.<space>.reader_ceiling gives the px_ metrics of the world's renders of the truth at the
same framing: what the reader can read there at all.

Fast by default (8 test clips, 16 training clips for the detector: about a minute on one CPU
thread); --full uses 48 and 64.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from typing import Any

import torch

from vasa_lib import paths
from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.eval.motion import (
    KEYS,
    clip_metrics,
    controls_of,
    diversity,
    evaluator_grades,
    frechet_distance,
    load_evaluators,
    shipped_models,
    window_features,
)
from vasa_lib.eval.pixels import (
    PIXEL_KEYS,
    WORLD_FRAMING,
    frames_of,
    load_reader,
    mean_metrics,
    read_metrics,
    reader_ceiling,
)
from vasa_lib.eval.realism import detector_accuracy, train_detector
from vasa_lib.eval.video_features import VideoFeatureNet, video_features
from vasa_lib.face.model import FaceModel
from vasa_lib.motion.generate import generate
from vasa_lib.motion.guidance import PAPER_SCALES
from vasa_lib.motion.latents import WORLD, LatentSet, load_latents, motion_space
from vasa_lib.motion.model import MotionGenerator

# row -> (model, steps, guidance scales (None: the model's own), context (None: the model's))
SYSTEMS: dict[str, tuple[str, int, dict[str, float] | None, int | None]] = {
    "baseline": ("baseline", 1, None, None),
    "diffusion_50_steps": ("diffusion", 50, None, None),
    "diffusion_10_steps": ("diffusion", 10, None, None),
    "diffusion_paper_scales": ("diffusion", 10, PAPER_SCALES, None),
    "diffusion_no_previous": ("diffusion", 10, None, 0),
}
COLUMNS = ("sync_conf", "sync_dist", "capp", "delta_p", "motion_fd", "realism_acc", "lip_sync_corr", "diversity",
           "gaze_err_deg", "distance_err", "emotion_acc")
PIXEL_COLUMNS = ("fvd", "px_realism_acc", *(f"px_{k}" for k in PIXEL_KEYS))
SPACES = ("latent", "world")


def system_motion(model: MotionGenerator, latents: LatentSet, i: int, steps: int, scales: dict[str, float] | None,
                  context: int | None, seed: int) -> torch.Tensor:
    """A system's motion (T, D) for clip i of a set: its audio and controls, as eval.motion's
    `generate_for` (scales None: the model's own), with the context (previous-window frames) as given."""
    mel = latents.mel[latents.offsets[i]: latents.offsets[i + 1]]
    with torch.no_grad():
        features = model.audio_encoder(mel[None])[0]
    return generate(model.transformer, features, controls_of(latents, i), steps,
                    model.scales if scales is None else scales, seed, context=context)


def evaluate_space(space: str, n_clips: int = 8, n_train: int = 16, n_diversity: int = 3, seed: int = 0,
                   systems: dict[str, tuple] | None = None, detector_steps: int = 300) -> dict[str, Any]:
    """Every row of one motion space ("latent": the shipped face model's; "world": the world's
    parameters): {"rows": {row: {column: value}}, "settings": {...}}."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    systems = SYSTEMS if systems is None else systems
    start = time.perf_counter()
    face = WORLD if space == "world" else motion_space(paths.checkpoint("face"))
    models = {name: load_checkpoint(path, MotionGenerator)
              for name, path in zip(("diffusion", "baseline"), shipped_models(face))}
    ev, how = load_evaluators(face)
    ev_world = ev if space == "world" else load_evaluators(WORLD)[0]
    face_model = None if space == "world" else load_checkpoint(face, FaceModel)
    px_framing = WORLD_FRAMING if face_model is None else face_model.config.framing
    reader = load_reader(px_framing)
    video_net = load_checkpoint(paths.checkpoint("eval_video_features"), VideoFeatureNet)
    fvd_framing = video_net.config.framing
    if face_model is not None and face_model.config.framing != fvd_framing:
        raise ValueError(f"the video feature network was trained at the {fvd_framing} framing, the face model "
                         f"draws at {face_model.config.framing}: retrain it (python -m vasa_lib.train video)")
    world_test = load_latents("test", n_clips, WORLD)
    world_reseeded = load_latents("test", n_clips, WORLD, motion_seed=1)     # same people and speech
    ref_videos = (frames_of(m, world_reseeded, i, framing=fvd_framing)
                  for i, m in enumerate(world_reseeded.split("motion")))
    ref_fvd = torch.cat([video_features(video_net, [v]) for v in ref_videos])
    test = load_latents("test", n_clips, face)
    reference = load_latents("test", n_clips, face, start=n_clips)          # other clips, for motion_fd
    reseeded = load_latents("test", n_clips, face, motion_seed=1)          # the truth under another motion seed
    train = load_latents("train", n_train, face)
    normalize = ev["probes"].normalize
    ref_features = torch.cat([window_features(normalize(m)) for m in reference.split("motion")])
    truth_train = train.split("motion")
    truth_test = test.split("motion")

    def seen(motions: list[torch.Tensor], world: LatentSet, face: FaceModel | None = face_model) -> list[torch.Tensor]:
        """What the video network sees of motion made into video at its framing (decoded by `face`,
        or rendered by the world when None): (T_i, F) per clip."""
        return [video_net.frame_features(frames_of(m, world, i, face, fvd_framing)) for i, m in enumerate(motions)]

    world_train = load_latents("train", n_train, WORLD)
    seen_truth_train = seen(world_train.split("motion"), world_train, face=None)
    seen_truth_test = seen(world_test.split("motion"), world_test, face=None)

    def score(motions: list[torch.Tensor], samples: list[torch.Tensor], train_fake: list[torch.Tensor],
              test_fake: list[torch.Tensor]) -> dict[str, float]:
        per_clip = [clip_metrics(m, test, i, ev) for i, m in enumerate(motions)]
        row = {k: sum(c[k] for c in per_clip) / len(per_clip) for k in KEYS if k in per_clip[0]}
        row["motion_fd"] = frechet_distance(torch.cat([window_features(normalize(m)) for m in motions]), ref_features)
        row["diversity"] = sum(diversity(normalize(s)) for s in samples) / len(samples)
        detector = train_detector(truth_train, train_fake, steps=detector_steps, seed=seed)
        row["realism_acc"] = detector_accuracy(detector, truth_test, test_fake)
        pixels, seen_test = from_pixels(motions)
        if test_fake is not motions:
            seen_test = seen(test_fake, world_test)
        detector = train_detector(seen_truth_train, seen(train_fake, world_train), steps=detector_steps, seed=seed)
        pixels["px_realism_acc"] = detector_accuracy(detector, seen_truth_test, seen_test)
        return {k: round(v, 4) for k, v in (row | pixels).items() if k in COLUMNS + PIXEL_COLUMNS}

    def from_pixels(motions: list[torch.Tensor]) -> tuple[dict[str, float], list[torch.Tensor]]:
        """The row's pixel metrics (each clip's video read by the reader; the FVD of its windows)
        and what the video network sees of each clip (T_i, F)."""
        per_clip, windows, frames = [], [], []
        for i, m in enumerate(motions):
            video = frames_of(m, world_test, i, face_model, px_framing)
            per_clip.append(read_metrics(video, world_test, i, reader, ev_world))
            if face_model is None:
                video = frames_of(m, world_test, i, framing=fvd_framing)
            windows.append(video_features(video_net, [video]))
            frames.append(video_net.frame_features(video))
        row = {f"px_{k}": v for k, v in mean_metrics(per_clip).items()}
        row["fvd"] = frechet_distance(torch.cat(windows), ref_fvd)
        return row, frames

    rows: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {}
    # the truth: its realism control is the truth under another motion seed (same audio, people, controls)
    other = reseeded.split("motion")
    samples = [torch.stack([truth_test[i], other[i]]) for i in range(n_diversity)]
    train_other = load_latents("train", n_train, face, motion_seed=1).split("motion")
    rows["ground_truth"] = score(truth_test, samples, train_other, other)
    for row, (name, steps, scales, context) in systems.items():
        t0 = time.perf_counter()
        run = functools.partial(system_motion, models[name], steps=steps, scales=scales, context=context)
        motions = [run(test, i, seed=seed + i) for i in range(len(test))]
        samples = [torch.stack([motions[i], run(test, i, seed=seed + 1000 + i)]) for i in range(n_diversity)]
        fake_train = [run(train, i, seed=seed + 7000 + i) for i in range(len(train))]
        rows[row] = score(motions, samples, fake_train, motions)
        timings[row] = round(time.perf_counter() - t0, 1)
    if max(test.lengths()) >= ev["capp"].config.frames:
        grades = {k: round(v, 4) for k, v in evaluator_grades(ev, test).items()}
    else:
        grades = {"note": f"no test clip has {ev['capp'].config.frames} frames: no grades (take more clips)"}
    ceiling = reader_ceiling(world_test, px_framing, reader, ev_world)
    settings = {"face_checkpoint": str(face), "evaluators": how, "n_test_clips": len(test),
                "pixel_framing": px_framing, "fvd_framing": fvd_framing,
                "reader_ceiling": {f"px_{k}": round(v, 4) for k, v in ceiling.items()},
                "n_train_clips_detector": len(train), "n_diversity_clips": n_diversity, "seed": seed,
                "evaluator_grades": grades,
                "seconds_per_row": timings, "seconds": round(time.perf_counter() - start, 1)}
    return {"rows": rows, "settings": settings}


def report(n_clips: int = 8, n_train: int = 16, n_diversity: int = 3, seed: int = 0,
           spaces: tuple[str, ...] = SPACES, systems: dict[str, list[str]] | None = None,
           detector_steps: int = 300) -> dict[str, Any]:
    """The table: {"rows": {row: {column: value}}, "settings": {space: {...}}}; the world's rows
    are prefixed "world/". systems: per space, the rows of `SYSTEMS` to run (default: all)."""
    torch.manual_seed(seed)
    rows, settings = {}, {}
    for space in spaces:
        chosen = None if systems is None or space not in systems else {k: SYSTEMS[k] for k in systems[space]}
        result = evaluate_space(space, n_clips, n_train, n_diversity, seed, chosen, detector_steps)
        prefix = "world/" if space == "world" else ""
        rows.update({prefix + name: values for name, values in result["rows"].items()})
        settings[space] = result["settings"]
    settings["threads"] = torch.get_num_threads()
    return {"rows": rows, "columns": list(COLUMNS), "pixel_columns": list(PIXEL_COLUMNS), "settings": settings}


def markdown(result: dict[str, Any], key: str = "columns") -> str:
    """The table as Markdown (one line per row): the motion columns, or with key "pixel_columns"
    those judged from pixels."""
    columns = result[key]
    lines = ["| system | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, values in result["rows"].items():
        lines.append(f"| {name} | " + " | ".join(f"{values[c]:.3f}" for c in columns) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vasa_lib.eval.report", description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=8, help="test clips per row")
    parser.add_argument("--train-clips", type=int, default=16, help="train clips for each realism detector")
    parser.add_argument("--full", action="store_true", help="48 test clips, 64 train clips, 12 diversity clips")
    parser.add_argument("--space", choices=SPACES, action="append", help="only this space (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_clips, n_train, n_div = (48, 64, 12) if args.full else (args.clips, args.train_clips, 3)
    result = report(n_clips, n_train, n_div, args.seed, tuple(args.space or SPACES))
    if args.json:
        print(json.dumps(result))
    else:
        print(markdown(result))
        print()
        print(markdown(result, "pixel_columns"))
        print(json.dumps(result["settings"], indent=2))


if __name__ == "__main__":
    main()
