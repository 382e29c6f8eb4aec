"""Evaluation of the motion generator (paper Sec. 4.1) on held-out TEST identities.

    python -m vasa_lib.eval.motion --json [--clips 48] [--steps 50] [--seed 0]

Test clips have people, sentences and (for about half of them) voices never seen in training.
Three systems are scored side by side on the same clips, audio and controls:
- "diffusion": the shipped motion diffusion transformer (assets/checkpoints/motion.safetensors);
- "baseline": the regression baseline with the same backbone (motion_baseline.safetensors);
- "ground_truth": the face-encoded latents of the true clips (what the models learn to imitate).
All motion lives in the face model's latent space [z_pose, z_dyn]; with `--face world`, in the
world's own parameters [pose (6), dynamics (11)] (`motion_world*.safetensors`, graded by the
`eval_*_world` evaluators): the ceiling that a perfect face model would allow. Metrics:
- lip_sync_corr: Pearson correlation, per clip, of the mouth opening read from z_dyn (a linear
  probe, `vasa_lib.eval.probes`) with the world's true jaw opening for that audio; mean over clips;
- sync_conf, sync_dist: a SyncNet-style audio-mouth model (`vasa_lib.eval.syncnet`), like Sc, Sd;
- capp: a CLIP-style audio-pose model on 3 s windows (`vasa_lib.eval.capp`);
- delta_p: mean head rotation change between adjacent frames, degrees (|| d(yaw, pitch, roll) ||);
- seam_ratio: that change across the borders of the generator's windows over the change inside
  them (1: no seam; the truth has no windows, so its value is about 1);
- motion_fd: Frechet distance between windows (1 s, stride 0.5 s) of the system's motion and of
  the true latents of OTHER test clips, on per-window features [mean, std of the velocity] of the
  normalised motion (so ground_truth's value is the sampling floor, not 0);
- diversity: std across 3 samples (seeds) for the same audio, of the normalised motion, averaged
  over frames, dimensions and clips (ground truth: the world's motion for other motion seeds);
- gaze_err_deg: angle between the clip's mean gaze (probed from z_dyn) and the gaze control;
- distance_err: |mean head distance (probed from z_pose) - the distance control|;
- emotion_acc: share of clips whose emotion classifier (`vasa_lib.eval.emotion`) output is the
  emotion control;
- in the world's parameters, from the eyelid: blinks_per_min (closings past 0.5), half_blinks_per_min
  (dips past 0.2 that never close) and start_shut_share (clips whose eyes shut in their first
  0.24 s), each a mean over clips.
settings.probe_r2_test says how much of the true mouth, gaze and distance the probes read from
the test clips' latents: the ceiling of the latent-space metrics, set by the face model.
The evaluators are trained on TRAIN-identity latents (`python -m vasa_lib.train evaluators`),
with fixed seeds; when their checkpoints are missing or belong to another face model they are
trained here first (not saved).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vasa_lib import paths
from vasa_lib.checkpoint import load_checkpoint, read_checkpoint, write_evaluation
from vasa_lib.eval.capp import Capp, CappConfig, train_capp
from vasa_lib.eval.emotion import EmotionClassifier, EmotionConfig, train_emotion
from vasa_lib.eval.probes import MotionProbes, ProbeConfig
from vasa_lib.eval.syncnet import SyncNet, SyncNetConfig, train_syncnet
from vasa_lib.eval.windows import crop, sliding_windows
from vasa_lib.motion.generate import Controls, generate, window_bounds
from vasa_lib.motion.latents import WORLD, LatentSet, load_latents, motion_space, space_key
from vasa_lib.motion.model import MotionGenerator
from vasa_lib.motion.sampler import DEFAULT_STEPS
from vasa_lib.world.params import EMOTIONS, FPS, POSE_DIM, dyn_index

EVALUATORS: dict[str, type] = {"probes": MotionProbes, "syncnet": SyncNet, "capp": Capp, "emotion": EmotionClassifier}
KEYS = ("lip_sync_corr", "sync_conf", "sync_dist", "capp", "delta_p", "seam_ratio", "motion_fd", "diversity",
        "gaze_err_deg", "distance_err", "emotion_acc")
EYELID_KEYS = ("blinks_per_min", "half_blinks_per_min", "start_shut_share")   # in the world's parameters only


# --- metrics on plain tensors ----------------------------------------------------------------------

def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson correlation of two (T,) series (0 when either is constant)."""
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    denominator = (x.norm() * y.norm()).item()
    return float(x @ y) / denominator if denominator > 1e-12 else 0.0


def delta_p(pose: torch.Tensor) -> float:
    """Mean head rotation change between adjacent frames, in degrees: pose (T, 6) world units."""
    if len(pose) < 2:
        raise ValueError("delta_p needs at least 2 frames")
    return math.degrees(float(pose[1:, :3].sub(pose[:-1, :3]).norm(dim=-1).mean()))


def window_jumps(pose: torch.Tensor, window: int, first_window: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Head rotation change into each frame, in degrees, of pose (T, 6) generated in windows of
    `window` frames after a first one of `first_window` (`window_bounds`): (changes across a window
    border (the last frame of a window -> the first of the next), changes inside windows)."""
    jumps = torch.rad2deg(pose[1:, :3].sub(pose[:-1, :3]).norm(dim=-1))          # (T - 1,)
    at_border = torch.zeros(len(jumps), dtype=torch.bool)
    borders = [start - 1 for start, _ in window_bounds(len(pose), window, first_window)[1:] if start < len(pose)]
    at_border[borders] = True
    return jumps[at_border], jumps[~at_border]


def seam_ratio(poses: list[torch.Tensor], window: int, first_window: int | None = None) -> float:
    """Mean head rotation change at window borders over the mean inside windows, pooled over clips
    (poses: [(T_i, 6)]): 1 when windows join as smoothly as frames within them (the truth's value)."""
    border, inside = map(torch.cat, zip(*(window_jumps(p, window, first_window) for p in poses)))
    return float(border.mean() / inside.mean())


def window_features(motion: torch.Tensor, length: int = FPS, stride: int = FPS // 2) -> torch.Tensor:
    """Features of motion windows for motion_fd: normalised motion (T, D) -> (n, 2D) =
    [mean over the window, std of the frame-to-frame velocity]."""
    windows, _ = sliding_windows(motion, length, stride)                  # (n, L, D)
    return torch.cat([windows.mean(1), windows.diff(dim=1).std(1)], dim=-1)


def frechet_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to samples x (N, F) and y (M, F):
    ||mu_x - mu_y||^2 + tr(S_x + S_y - 2 (S_x S_y)^(1/2)), in float64."""
    x, y = x.double(), y.double()
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = torch.cov(x.T), torch.cov(y.T)
    vals, vecs = torch.linalg.eigh(s_x)
    root_x = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(root_x @ s_y @ root_x).clamp_min(0).sqrt().sum()   # tr((S_x S_y)^(1/2))
    return float((mu_x - mu_y).square().sum() + s_x.trace() + s_y.trace() - 2 * cross)


def diversity(samples: torch.Tensor) -> float:
    """Spread across S samples for one audio: samples (S, T, D) normalised -> mean std over S."""
    if samples.shape[0] < 2:
        raise ValueError("diversity needs at least 2 samples")
    return float(samples.std(0).mean())


def blinks_per_minute(eyelid: torch.Tensor, threshold: float = 0.5) -> float:
    """Blinks in an eyelid sequence (T,) at 25 fps (0 open .. 1 shut): closings across `threshold`,
    per minute."""
    closed = eyelid > threshold
    return float((closed[1:] & ~closed[:-1]).sum()) * 60 * FPS / len(eyelid)


def shut_at_start(eyelid: torch.Tensor, frames: int = 6, threshold: float = 0.5) -> float:
    """1.0 when an eyelid sequence (T,) passes `threshold` within its first `frames` frames (0.24 s
    at 25 fps), else 0.0. Its mean over clips (start_shut_share) shows a generator that closes
    the eyes as every video starts, which per-clip blink counts of short clips can hide (the
    truth's: 0.021 on the 48 test clips of the evaluation)."""
    return float(eyelid[:frames].max() > threshold)


def half_blinks_per_minute(eyelid: torch.Tensor, low: float = 0.2, threshold: float = 0.5) -> float:
    """Half-blinks in an eyelid sequence (T,) at 25 fps, per minute: dips that close the eye past
    `low` but never to `threshold`, which `blinks_per_minute` does not count (a flicker of the lid,
    not a blink)."""
    closing = F.pad((eyelid > low).float(), (1, 1))
    edges = closing.diff()
    starts, ends = (edges == 1).nonzero()[:, 0], (edges == -1).nonzero()[:, 0]
    peaks = [float(eyelid[s:e].max()) for s, e in zip(starts.tolist(), ends.tolist())]
    return sum(p <= threshold for p in peaks) * 60 * FPS / len(eyelid)


# --- evaluators ------------------------------------------------------------------------------------

def train_evaluators(latents: LatentSet, settings: dict[str, dict[str, Any]] | None = None,
                     log_every: int = 0) -> tuple[dict[str, torch.nn.Module], dict[str, Any]]:
    """Fit the probes, SyncNet, CAPP and the emotion classifier on (train) latents.

    settings: per evaluator, its config fields plus "steps", "batch", "lr", "seed" (see
    configs/motion_evaluators.toml). Returns the models and a report (fit R^2, final losses, seconds).
    """
    settings = settings or {}
    dyn_dim = latents.motion.shape[1] - POSE_DIM
    report: dict[str, Any] = {}

    def split(name: str, defaults: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        s = {**defaults, **settings.get(name, {})}
        run = {k: s.pop(k) for k in ("steps", "batch", "lr", "seed") if k in s}
        return s, run

    start = time.perf_counter()
    probe_cfg, _ = split("probes", {})
    probes = MotionProbes(ProbeConfig(motion_dim=latents.motion.shape[1], **probe_cfg))
    report["probes_train_r2"] = probes.fit(latents)
    models: dict[str, torch.nn.Module] = {"probes": probes}
    trainers = {"syncnet": (train_syncnet, SyncNetConfig, {"dyn_dim": dyn_dim, "steps": 1500, "batch": 128}),
                "capp": (train_capp, CappConfig, {"steps": 600, "batch": 48}),
                "emotion": (train_emotion, EmotionConfig, {"motion_dim": latents.motion.shape[1], "steps": 500,
                                                           "batch": 48})}
    for name, (trainer, config_class, defaults) in trainers.items():
        cfg, run = split(name, defaults)
        t0 = time.perf_counter()
        models[name], losses = trainer(latents, config_class(**cfg), log_every=log_every, **run)
        report[f"{name}_final_loss"] = round(sum(losses[-50:]) / len(losses[-50:]), 4)
        report[f"{name}_seconds"] = round(time.perf_counter() - t0, 1)
    report["seconds"] = round(time.perf_counter() - start, 1)
    return models, report


def evaluator_path(name: str, folder: Path | None = None, world: bool = False) -> Path:
    """Where an evaluator's checkpoint lives: assets/checkpoints/eval_{name}.safetensors, or
    eval_{name}_world.safetensors for the world's parameter space."""
    return (folder or paths.checkpoints_dir()) / f"eval_{name}{'_world' if world else ''}.safetensors"


def load_evaluators(face_checkpoint: str | Path, folder: Path | None = None, settings: dict | None = None,
                    n_train: int = 300) -> tuple[dict[str, torch.nn.Module], str]:
    """The evaluators fitted to this motion space (a face model's latents, or WORLD): loaded when
    their checkpoints match its key, else trained now on n_train train clips. Returns (models, how)."""
    key = space_key(face_checkpoint)
    files = {name: evaluator_path(name, folder, key == WORLD) for name in EVALUATORS}
    if all(p.exists() and read_checkpoint(p)[1]["info"].get("face_hash") == key for p in files.values()):
        return {name: load_checkpoint(files[name], cls) for name, cls in EVALUATORS.items()}, "loaded"
    latents = load_latents("train", n_train, face_checkpoint, verbose=True)
    return train_evaluators(latents, settings)[0], f"trained now on {n_train} train clips (no matching checkpoints)"


@torch.no_grad()
def evaluator_grades(ev: dict[str, torch.nn.Module], test: LatentSet, shift: int = 5, n_windows: int = 32,
                     ) -> dict[str, float]:
    """Each evaluator graded on the held-out truth before it grades anything:
    - syncnet_offset_zero_share: clips whose best audio offset is 0 frames;
    - syncnet_truth_over_shifted_share: clips whose audio and mouth lie closer (the SyncNet
      distance at offset 0) than the same audio with the mouth moved `shift` frames (0.2 s) late;
    - capp_top1, capp_chance: the audio of a 3 s window retrieves its own pose window among
      `n_windows` windows of different clips (the longest clips' first 3 s, shorter ones padded);
    - emotion_acc_truth: the emotion classifier on the true motion."""
    syncnet, capp, emotion = ev["syncnet"], ev["capp"], ev["emotion"]
    offset_zero, over_shifted, correct = [], [], []
    for i in range(len(test)):
        s, e = test.offsets[i], test.offsets[i + 1]
        mel, motion = test.mel[s:e], test.motion[s:e]
        scores = syncnet.scores(mel, motion)
        offset_zero.append(scores["offset"] == 0)
        at_zero = syncnet.config.max_offset                       # the distance curve's offset-0 entry
        over_shifted.append(syncnet.distance_curve(mel, motion[:, POSE_DIM:])[at_zero]
                            < syncnet.distance_curve(mel[shift:], motion[:-shift, POSE_DIM:])[at_zero])
        correct.append(emotion.predict(motion) == int(test.emotion[i]))
    f, mels, motions = capp.config.frames, test.split("mel"), test.split("motion")
    longest = torch.tensor(test.lengths()).argsort(descending=True, stable=True)[:n_windows].tolist()
    mel, mask = map(torch.stack, zip(*(crop(mels[i], 0, f) for i in longest)))     # shorter clips: padded
    pose = torch.stack([crop(motions[i][:, :POSE_DIM], 0, f)[0] for i in longest])
    similarity = capp.embed_audio(mel, mask) @ capp.embed_pose(pose, mask).T
    top1 = (similarity.argmax(1) == torch.arange(len(longest))).float().mean()
    mean = lambda xs: sum(map(float, xs)) / len(xs)  # noqa: E731
    return {"syncnet_offset_zero_share": mean(offset_zero), "syncnet_truth_over_shifted_share": mean(over_shifted),
            "capp_top1": float(top1), "capp_chance": 1 / len(longest), "emotion_acc_truth": mean(correct)}


# --- the evaluation --------------------------------------------------------------------------------

def clip_metrics(motion: torch.Tensor, latents: LatentSet, i: int, ev: dict[str, torch.nn.Module],
                 world: bool = False) -> dict[str, float]:
    """Per-clip metrics of motion (T, D) generated for (or encoded from) clip i of the test set;
    in the world's parameter space (`world`) also the blinks and half-blinks per minute of its eyelid
    and whether it shuts in the first frames (start_shut_share, as a mean over clips)."""
    probes: MotionProbes = ev["probes"]
    s, e = latents.offsets[i], latents.offsets[i + 1]
    mel = latents.mel[s:e]
    true_mouth = latents.true_dynamics[s:e, dyn_index("jaw_open")]
    gaze = torch.stack([probes.read(motion, "gaze_yaw"), probes.read(motion, "gaze_pitch")], -1).mean(0)
    sync = ev["syncnet"].scores(mel, motion)
    eyelid = motion[:, POSE_DIM + dyn_index("eyelid")] if world else None
    return {
        "lip_sync_corr": pearson(probes.read(motion, "jaw_open"), true_mouth),
        "sync_conf": sync["sync_conf"], "sync_dist": sync["sync_dist"], "sync_offset_abs": abs(sync["offset"]),
        "capp": ev["capp"].score(mel, motion),
        "delta_p": delta_p(motion[:, :POSE_DIM]),
        "gaze_err_deg": math.degrees(float((gaze - latents.gaze[i]).norm())),
        "distance_err": float((probes.read(motion, "distance").mean() - latents.distance[i, 0]).abs()),
        "emotion_acc": float(ev["emotion"].predict(motion) == int(latents.emotion[i])),
    } | ({"blinks_per_min": blinks_per_minute(eyelid), "half_blinks_per_min": half_blinks_per_minute(eyelid),
          "start_shut_share": shut_at_start(eyelid)} if world else {})


def controls_of(latents: LatentSet, i: int) -> Controls:
    """Clip i's controls (gaze, distance, emotion) as generation takes them."""
    return Controls(gaze=tuple(latents.gaze[i].tolist()), distance=float(latents.distance[i, 0]),
                    emotion=EMOTIONS[int(latents.emotion[i])])


def generate_for(model: MotionGenerator, latents: LatentSet, i: int, steps: int, scales: dict[str, float] | None,
                 seed: int) -> torch.Tensor:
    """A system's motion (T, D) for clip i: its audio (the clip's mel stacks through the model's
    audio encoder, as `MotionGenerator.audio_features` computes them) and controls; scales: None
    for the model's own (`MotionGenerator.scales`)."""
    mel = latents.mel[latents.offsets[i]: latents.offsets[i + 1]]
    with torch.no_grad():
        features = model.audio_encoder(mel[None])[0]
    return generate(model.transformer, features, controls_of(latents, i), steps,
                    model.scales if scales is None else scales, seed)


def shipped_models(face: str | Path | None) -> tuple[Path, Path]:
    """The shipped diffusion model and regression baseline of a motion space: motion(_baseline),
    or motion_world(_baseline) for WORLD."""
    space = "_world" if str(face) == WORLD else ""
    return paths.checkpoint(f"motion{space}"), paths.checkpoint(f"motion{space}_baseline")


def evaluate(diffusion: str | Path | None = None, baseline: str | Path | None = None, face: str | Path | None = None,
             n_clips: int = 48, n_diversity: int = 12, n_samples: int = 3, steps: int = DEFAULT_STEPS,
             scales: dict[str, float] | None = None, seed: int = 0,
             evaluators: str | Path | None = None) -> dict[str, Any]:
    """All metrics of the module docstring for the three systems, with the settings.
    evaluators: the folder of the evaluator checkpoints (eval_*.safetensors); scales: guidance
    scales for both models (default: each model's own, `MotionGenerator.scales`). Every path
    defaults to the shipped checkpoint."""
    face = motion_space(face or paths.checkpoint("face"))
    shipped = shipped_models(face)
    diffusion, baseline = diffusion or shipped[0], baseline or shipped[1]
    evaluators = evaluators or paths.checkpoints_dir()
    torch.manual_seed(seed)
    start = time.perf_counter()
    models = {"diffusion": load_checkpoint(diffusion, MotionGenerator),
              "baseline": load_checkpoint(baseline, MotionGenerator)}
    key, window = space_key(face), models["diffusion"].transformer.config.window
    for name, path in (("diffusion", diffusion), ("baseline", baseline)):
        trained_on = read_checkpoint(path)[1]["info"].get("face_hash")
        if trained_on != key:
            raise ValueError(f"the {name} model {path} was trained on latents of face model {trained_on}, "
                             f"but {face} is {key}; retrain it or pass --face")
    ev, how = load_evaluators(face, Path(evaluators))
    test = load_latents("test", n_clips, face, verbose=True)
    reference = load_latents("test", n_clips, face, start=n_clips, verbose=True)     # other clips, for motion_fd
    reseeded = [load_latents("test", n_diversity, face, motion_seed=s, verbose=True) for s in range(1, n_samples)]
    probes: MotionProbes = ev["probes"]
    ref_features = torch.cat([window_features(probes.normalize(m)) for m in reference.split("motion")])

    systems: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {}
    for name in ("diffusion", "baseline", "ground_truth"):
        t0 = time.perf_counter()
        if name == "ground_truth":
            motions = test.split("motion")
            samples = [torch.stack([test.split("motion")[i]] + [r.split("motion")[i] for r in reseeded])
                       for i in range(n_diversity)]
        else:
            model = models[name]
            motions = [generate_for(model, test, i, steps, scales, seed + i) for i in range(len(test))]
            samples = [torch.stack([motions[i]] + [generate_for(model, test, i, steps, scales, seed + 1000 * s + i)
                                                   for s in range(1, n_samples)]) for i in range(n_diversity)]
            timings[f"{name}_seconds"] = round(time.perf_counter() - t0, 1)
            n_frames = sum(len(m) for m in motions) + sum((n_samples - 1) * len(s[0]) for s in samples)
            timings[f"{name}_realtime_factor"] = round(n_frames / FPS / (time.perf_counter() - t0), 2)
        per_clip = [clip_metrics(m, test, i, ev, key == WORLD) for i, m in enumerate(motions)]
        row = {k: sum(c[k] for c in per_clip) / len(per_clip) for k in per_clip[0]}
        row["motion_fd"] = frechet_distance(torch.cat([window_features(probes.normalize(m)) for m in motions]),
                                            ref_features)
        row["diversity"] = sum(diversity(probes.normalize(s)) for s in samples) / len(samples)
        row["seam_ratio"] = seam_ratio([m[:, :POSE_DIM] for m in motions], window)
        systems[name] = {k: round(row[k], 4) for k in (*KEYS, "sync_offset_abs", *EYELID_KEYS) if k in row}

    true_pose = test.true_pose.split(test.lengths())
    settings = {
        "n_clips": len(test), "n_test_voice_clips": int(test.test_voice.sum()),
        "n_reference_clips": len(reference), "n_diversity_clips": n_diversity, "samples_per_audio": n_samples,
        "steps": steps, "scales": {name: m.scales if scales is None else dict(scales) for name, m in models.items()},
        "seed": seed, "face_checkpoint": str(face), "face_hash": key,
        "diffusion_checkpoint": str(diffusion), "baseline_checkpoint": str(baseline), "evaluators": how,
        "probe_r2_test": probes.r2(test),
        "evaluator_grades": {k: round(v, 4) for k, v in evaluator_grades(ev, test).items()},
        "world_truth_delta_p": round(sum(delta_p(p) for p in true_pose) / len(true_pose), 4),
        "threads": torch.get_num_threads(), **timings,
        "eval_seconds": round(time.perf_counter() - start, 1),
    }
    return {**systems, "settings": settings}


def parse_scales(items: list[str] | None) -> dict[str, float] | None:
    """["audio=0.5", "gaze=1"] -> {"audio": 0.5, "gaze": 1.0}."""
    if not items:
        return None
    scales = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            scales[name] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"a guidance scale is written condition=value (e.g. audio=0.5), got {item!r}")
    return scales


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vasa_lib.eval.motion", description=__doc__.split("\n")[0])
    parser.add_argument("--diffusion", help="motion diffusion checkpoint (default: the shipped motion.safetensors)")
    parser.add_argument("--baseline", help="regression baseline (default: the shipped motion_baseline.safetensors)")
    parser.add_argument("--face", help="the face model whose latents the models generate (default: the shipped one), "
                        "or 'world': the world's own parameters (then motion_world*.safetensors by default)")
    parser.add_argument("--evaluators", help="folder of the eval_*.safetensors evaluators (default: the shipped ones)")
    parser.add_argument("--clips", type=int, default=48, help="test clips")
    parser.add_argument("--diversity-clips", type=int, default=12, help="test clips sampled 3 times for diversity")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="DDIM steps per window")
    parser.add_argument("--scale", action="append",
                        help="guidance scales for both models, e.g. --scale audio=0.5 --scale gaze=1 "
                             "(default: each model's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--write-card", action="store_true", help="add the results to both models' cards")
    args = parser.parse_args(argv)
    shipped = shipped_models(args.face)
    args.diffusion, args.baseline = args.diffusion or str(shipped[0]), args.baseline or str(shipped[1])
    torch.set_num_threads(args.threads)
    results = evaluate(args.diffusion, args.baseline, args.face, n_clips=args.clips,
                       n_diversity=args.diversity_clips, steps=args.steps, scales=parse_scales(args.scale),
                       seed=args.seed, evaluators=args.evaluators)
    if args.write_card:
        command = "python -m vasa_lib.eval.motion " + " ".join(argv if argv is not None else sys.argv[1:])
        for path in (args.diffusion, args.baseline):
            write_evaluation(path, command, results)
    if args.json:
        print(json.dumps(results))
    else:
        systems = ("diffusion", "baseline", "ground_truth")
        print(f"{'metric':16s}" + "".join(f"{name:>14s}" for name in systems))
        for k in KEYS:
            print(f"{k:16s}" + "".join(f"{results[name][k]:14.4f}" for name in systems))
        print(json.dumps(results["settings"], indent=2))


if __name__ == "__main__":
    main()
