"""Command-line training for the models of the course.

    python -m vasa_lib.train identity --config configs/identity_net.toml
    python -m vasa_lib.train face --config configs/face_fast.toml
    python -m vasa_lib.train motion --config configs/motion_fast.toml
    python -m vasa_lib.train evaluators --config configs/motion_evaluators.toml
    python -m vasa_lib.train reader --config configs/reader.toml

face, identity and motion also train on real video: `--data DATASET_FOLDER`, a folder written by
`python -m vasa_lib.real.ingest` (notebook 09).

Configs are TOML files with a [model] table (the model's config), a [data] table, a [train] table
and, for the face model, a [loss] table, read into the typed run configs of `vasa_lib.run_config`
(every key with its default; a misspelt key fails with its name). Every run ends the same way
(`finish`), and the Lightning-trained ones fit the same way (`fit`). Training saves a safetensors
checkpoint (config stored inside and in a .json beside it) every few minutes, so a killed run
still leaves a usable model, and a card (.md) beside it at the end. The configs write under runs/:
a shipped checkpoint (assets/checkpoints) changes only when a command names it (`--checkpoint`,
`--out`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import tomllib
import torch
from lightning.pytorch.utilities import rank_zero_only

from vasa_lib import paths
from vasa_lib.checkpoint import load_grown, read_checkpoint, save_checkpoint
from vasa_lib.run_config import (
    EvaluatorsRun,
    FaceRun,
    IdentityRun,
    MotionRun,
    ReaderRun,
    TrainSettings,
    VideoFeatureRun,
    check_table,
    load_run,
)


def read_config(path: str | Path) -> dict[str, Any]:
    """A TOML config as a dict of tables ("configs/face.toml" is found from any folder)."""
    with open(paths.course_path(path), "rb") as f:
        return tomllib.load(f)


def _machine() -> str:
    """Where a run trained: the GPU's name, or the CPU's architecture and threads."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"{platform.machine()} {torch.get_num_threads()} threads"


class _Tee:
    """A text stream that writes to several (the terminal and a log file), flushing each write."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def __getattr__(self, name: str) -> Any:             # isatty, encoding, fileno: the terminal's
        return getattr(self.streams[0], name)


@contextlib.contextmanager
def log_to(folder: str | None, name: str) -> Iterator[None]:
    """Inside the block, copy everything printed (stdout and stderr) to folder/name, unbuffered;
    without a folder, do nothing."""
    if folder is None:
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    with open(Path(folder) / name, "a", buffering=1) as log:
        streams = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(streams[0], log), _Tee(streams[1], log)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = streams


def redirect(train: Any, out: str | None) -> None:
    """With an output folder `out`, [train]'s checkpoint (and run_dir, where it has one) move into it."""
    if out:
        train.checkpoint = str(Path(out) / Path(train.checkpoint).name)
        if hasattr(train, "run_dir"):
            train.run_dir = out


def earlier_weights(init: str) -> tuple[dict[str, torch.Tensor] | None, dict[str, Any]]:
    """The tensors of the checkpoint a run starts from (`[train] init`; "" for none), and the entry
    that records it in the new run's card: {"init": {"checkpoint", "earlier_run"}} or {}."""
    if not init:
        return None, {}
    tensors, earlier = read_checkpoint(paths.course_path(init))
    return tensors, {"init": {"checkpoint": init, "earlier_run": earlier.get("info", earlier)}}


def set_threads(threads: int) -> None:
    """[train] threads: torch's CPU threads (0 keeps torch's default)."""
    if threads:
        torch.set_num_threads(threads)


class PeriodicCheckpoint(L.Callback):
    """Every `every_minutes` of training and at the end, save the model (safetensors, at `path`)
    and the whole training state (`resume`: optimizer, schedule, step, time used; Lightning's
    format) that `--resume` goes on from; print losses every `log_every` steps (for logs of runs
    in the background)."""

    def __init__(self, path: Path, resume: Path, every_minutes: float, log_every: int, info: dict[str, Any]):
        self.path, self.resume, self.info = path, resume, info
        self.every_s, self.log_every = 60 * every_minutes, log_every
        self.start = self.last_save = time.monotonic()
        self.first_step = 0

    def on_train_start(self, trainer, module) -> None:
        self.start = self.last_save = time.monotonic()
        self.first_step = trainer.global_step                 # > 0 when resumed

    def save(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        trainer.save_checkpoint(self.resume, weights_only=False)   # every process takes part; the first writes
        self.save_model(trainer, module)
        self.last_save = time.monotonic()

    @rank_zero_only
    def save_model(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        info = {**self.info, "step": trainer.global_step, "train_seconds": round(time.monotonic() - self.start, 1),
                "last_losses": {k: round(float(v), 5) for k, v in trainer.callback_metrics.items()}}
        save_checkpoint(module.model, self.path, info)
        print(f"saved {self.path} at step {trainer.global_step}", flush=True)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.log_every and step % self.log_every == 0:
            metrics = " ".join(f"{k.split('/')[-1]} {float(v):.4f}" for k, v in trainer.callback_metrics.items()
                               if k.startswith("train/"))
            rate = (step - self.first_step) / max(time.monotonic() - self.start, 1e-9)
            print(f"step {step} {metrics} | {rate:.2f} steps/s {time.monotonic() - self.start:.1f}s", flush=True)
        if trainer.strategy.broadcast(time.monotonic() - self.last_save > self.every_s):   # one decision for all
            self.save(trainer, module)

    def on_train_end(self, trainer, module) -> None:
        self.save(trainer, module)


def write_card(path: Path, title: str, config_path: str, command: str, info: dict[str, Any]) -> Path:
    """A short model card (.md) beside a checkpoint: what, how it was trained, how long, results."""
    card = path.with_suffix(".md")
    lines = [f"# {title}", "", f"Checkpoint: `{path.name}` (safetensors; config in its metadata and in "
             f"`{path.with_suffix('.json').name}`).", "", "## Training", "", f"Command: `{command}`", "",
             f"Config: `{config_path}`", "", "```toml", paths.course_path(config_path).read_text().strip(), "```", "",
             "## Run", "", "```json", json.dumps(info, indent=2), "```", ""]
    card.write_text("\n".join(lines))
    return card


@rank_zero_only                     # with DDP, the first process saves and reports
def finish(model: torch.nn.Module, path: str | Path, info: dict[str, Any], title: str, config_path: str,
           command: str) -> Path:
    """The end of every run: the checkpoint (safetensors, `info` in its metadata), the run's record
    printed as JSON, and the card beside it. Returns the checkpoint path."""
    path = save_checkpoint(model, paths.course_path(path), info)
    print(json.dumps(info), flush=True)
    write_card(path, title, config_path, command, info)
    return path


def fit(lit: L.LightningModule, train: TrainSettings, path: Path, info: dict[str, Any], resume: bool = False,
        **data: Any) -> dict[str, Any]:
    """Fit a Lightning module as [train] says, saving its model to `path` and the training state
    to run_dir/resume.ckpt every few minutes and at the end (`PeriodicCheckpoint`), with a CSV log
    in run_dir; `resume` goes on from that state (max_steps and max_minutes count the earlier
    runs too). `data` goes to `Trainer.fit` (datamodule=, or train_dataloaders= and
    val_dataloaders=). Returns what the run measured: steps, seconds, parameters, final metrics.
    `--devices N` trains on N GPUs with Lightning's DDP; a progress bar shows where there is a
    terminal, log lines every log_every steps always."""
    state = paths.course_path(train.run_dir) / "resume.ckpt"
    if resume and not state.exists():
        raise ValueError(f"nothing to resume: {state} does not exist (run without --resume first)")
    trainer = L.Trainer(
        max_steps=train.max_steps, max_time={"minutes": train.max_minutes}, accelerator="auto",
        devices=train.devices, strategy="ddp" if train.devices > 1 else "auto", precision=train.precision,
        logger=L.pytorch.loggers.CSVLogger(paths.course_path(train.run_dir), name=""),
        callbacks=[periodic := PeriodicCheckpoint(path, state, train.checkpoint_every_minutes, train.log_every, info)],
        enable_progress_bar=sys.stderr.isatty(), enable_checkpointing=False, enable_model_summary=False,
        log_every_n_steps=train.log_every, gradient_clip_val=train.grad_clip,
        limit_val_batches=None if "val_dataloaders" in data else 0,
        check_val_every_n_epoch=getattr(train, "val_every_epochs", 1),
    )
    start = time.monotonic()
    trainer.fit(lit, ckpt_path=state if resume else None, weights_only=False, **data)   # our own file
    seconds = time.monotonic() - start
    return {"steps": trainer.global_step, "train_seconds": round(seconds, 1), "resumed_at_step": periodic.first_step,
            "steps_per_second": round((trainer.global_step - periodic.first_step) / seconds, 3),
            "parameters": sum(p.numel() for p in lit.model.parameters()),
            "final_metrics": {k: round(float(v), 5) for k, v in trainer.callback_metrics.items()}}


def train_clips(n_train: int, frames: int, size: int, batch_size: int, cache_dir: Path,
                mix_motion: float = 0.0, same_pose: float = 0.0, workers: int = 1) -> L.LightningDataModule:
    """The face model's training clips: `vasa_lib.world.frame_tuples.TrainClips` (train split only;
    the face model is graded on test people by `vasa_lib.eval.face`, so training runs no
    validation loop)."""
    from vasa_lib.world.frame_tuples import TrainClips

    return TrainClips(n_train, frames, size, batch_size, cache_dir, mix_motion, same_pose, workers)


def train_face(config_path: str, overrides: dict[str, Any] | None = None, command: str = "",
               video_data: str | None = None, out: str | None = None, resume: bool = False) -> Path:
    """Train the face latent model as the config says (`run_config.FaceRun`), on the world or,
    with `video_data`, on an ingested folder (pose labels estimated from keypoints); returns the
    checkpoint path.

    [data] source = "pairs" draws frame pairs of train people from the motion bank of the first
    n_clips train clips and renders them on the fly (`vasa_lib.world.pairs`); otherwise frames
    come from n_train cached clips. With `out`, the checkpoint, its card and the CSV log go to that
    folder (the command line also copies its output there, `log_to`)."""
    from vasa_lib.face.lit import FaceLossConfig, LitFace
    from vasa_lib.face.model import FaceConfig
    from vasa_lib.world.pairs import PairDataModule, motion_bank

    run = load_run(config_path, FaceRun, overrides)
    check_table(FaceConfig, run.model, f"{config_path} [model]")
    check_table(FaceLossConfig, run.loss, f"{config_path} [loss]")
    data, train = run.data, run.train
    redirect(train, out)
    L.seed_everything(data.seed, workers=True)
    set_threads(train.threads)
    size, framing = run.model.get("size", 128), run.model.get("framing", "wide")
    if video_data:
        from vasa_lib.real.dataset import VideoDataModule  # needs PyAV, which a world run does not

        dm = VideoDataModule(video_data, data.batch_size)
        dm.setup()
        n_train = len(dm.train)
    elif data.source == "pairs":
        bank = motion_bank("train", data.n_clips, data.cache_dir or None)
        dm = PairDataModule(bank, data.batch_size, size, framing, data.uniform_share, data.same_pose, data.seed)
        n_train = f"pairs from the motion of {data.n_clips} clips"
    else:
        dm = train_clips(data.n_train, 2, size, data.batch_size, paths.data_dir(data.cache_dir or None),
                         data.mix_motion, data.same_pose, data.workers)
        n_train = data.n_train
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")    # TF32 matrix products on a GPU
        torch.backends.cudnn.benchmark = True
    lit = LitFace(run.model, run.loss, lr=train.lr, weight_decay=train.weight_decay, max_steps=train.max_steps,
                  identity_net=str(paths.course_path(train.identity_net)) if train.identity_net else None,
                  max_minutes=train.max_minutes if train.schedule == "time" else None,
                  expression_net=str(paths.course_path(train.expression_net)) if train.expression_net else None)
    tensors, started_from = earlier_weights(train.init)
    if tensors is not None:      # the config may add parts to the earlier model: they start fresh
        new = load_grown(lit.model, tensors, train.init)
        started_from["init"]["new_tensors"] = len(new)
        if new:
            parts = sorted({name.rsplit(".", 2)[0] for name in new})
            print(f"{len(new)} tensors not in {train.init} start fresh: {', '.join(parts)}")
    path = paths.course_path(train.checkpoint)
    command = command or f"python -m vasa_lib.train face --config {config_path}"
    info = {"command": command, "config_file": str(config_path), "data_seed": data.seed, "video_data": video_data,
            "n_train_clips": n_train, "data": dataclasses.asdict(data), "loss": run.loss,
            "schedule": train.schedule, "max_minutes": train.max_minutes, "precision": train.precision,
            "batch_size": data.batch_size, "torch": torch.__version__, "machine": _machine(), **started_from}
    info |= fit(lit, train, path, info, resume, datamodule=dm)
    info["images_per_second"] = round(2 * data.batch_size * info["steps_per_second"], 2)
    if data.source == "pairs" and not video_data:
        info["held_out_psnr"] = held_out_psnr(lit.model, bank, framing, train.held_out_batches)
    return finish(lit.model, path, info, "Face latent model (VASA-1 Sec. 3.1)", config_path, command)


@torch.no_grad()
def held_out_psnr(model: torch.nn.Module, bank: torch.Tensor, framing: str, batches: int = 4,
                  batch_size: int = 64) -> dict[str, float]:
    """Mean re-enactment PSNR (dB) on frame pairs of TEST-split people, same pose and not: a quick
    grade that needs no speech (the full one is `python -m vasa_lib.eval.face`)."""
    from vasa_lib.face.losses import psnr
    from vasa_lib.world.frame_tuples import render_batch
    from vasa_lib.world.pairs import PairBatches

    model.eval()
    device = next(model.parameters()).device
    pairs = PairBatches(bank, batch_size, uniform_share=0.0, same_pose=0.0, split="test", seed=1)
    generator, scores = torch.Generator().manual_seed(1), []
    for _ in range(batches):
        batch = {k: v.to(device) for k, v in pairs.batch(generator).items()}
        frames, _ = render_batch(batch, model.config.size, framing)
        scores.append(psnr(model.reenact(frames[:, 0], frames[:, 1]), frames[:, 1]).cpu())
    return {"test_people_psnr": round(float(torch.cat(scores).mean()), 3)}


def train_identity(config_path: str, overrides: dict[str, Any] | None = None, command: str = "",
                   video_data: str | None = None) -> Path:
    """Train the identity network (for l_cross_id) as the config says (`run_config.IdentityRun`),
    on world renders or, with `video_data`, on the people of an ingested folder; returns the
    checkpoint path."""
    from vasa_lib.face.identity_net import IdentityNetConfig, train_identity_net
    from vasa_lib.real.dataset import load_dataset, person_images

    run = load_run(config_path, IdentityRun, overrides)
    set_threads(run.train.threads)
    args = dataclasses.asdict(run.train_args)
    if video_data:
        clips = load_dataset(video_data)
        args.update(n_identities=len({c.person for c in clips}), size=clips[0].frames.shape[1],
                    images_of=person_images(clips))
    net, record = train_identity_net(config=IdentityNetConfig(**run.model), **args)
    record["video_data"] = video_data
    record["command"] = command or f"python -m vasa_lib.train identity --config {config_path}"
    return finish(net, run.train.checkpoint, record, "Identity network (for VASA-1's l_cross_id)", config_path,
                  record["command"])


def ingested_latents(folder: str, face_checkpoint: Path) -> dict[str, Any]:
    """Motion latents of an ingested folder: {"train": ..., "val": ...}, the last tenth of the
    clips (at least one) for validation; a folder of one clip trains and validates on it."""
    from vasa_lib.checkpoint import load_checkpoint
    from vasa_lib.face.model import FaceModel
    from vasa_lib.motion.latents import file_hash
    from vasa_lib.real.dataset import load_dataset, video_latents

    clips = load_dataset(folder)
    face = load_checkpoint(face_checkpoint, FaceModel)
    n_val = max(1, len(clips) // 10)
    train, val = (clips[:-n_val], clips[-n_val:]) if len(clips) > 1 else (clips, clips)
    info = {"face_checkpoint": str(face_checkpoint), "face_hash": file_hash(face_checkpoint), "video_data": folder}
    return {"train": video_latents(face, train, info=info), "val": video_latents(face, val, info=info)}


def train_motion(config_path: str, overrides: dict[str, Any] | None = None, command: str = "",
                 video_data: str | None = None, resume: bool = False) -> Path:
    """Train the motion generator (diffusion or regression baseline) on face-encoded motion
    latents of train-split clips or, with `video_data`, of an ingested folder, as the config
    says (`run_config.MotionRun`: [model] MotionConfig fields, motion_dim from the latents;
    [audio] MelEncoderConfig fields, audio_dim = its dim; [data]; [train]; [guidance] the model's
    default sampling scales, condition = scale, default `GUIDANCE_SCALES`); returns the checkpoint
    path. `overrides` replace [train] values, and face_checkpoint the [data] one."""
    from torch.utils.data import DataLoader

    from vasa_lib.audio.encoder import MelEncoderConfig, receptive_radius
    from vasa_lib.motion.latents import load_latents, motion_space
    from vasa_lib.motion.lit import LitMotion, dim_weight_list
    from vasa_lib.motion.transformer import MotionConfig
    from vasa_lib.motion.windows import MotionWindows

    overrides = dict(overrides or {})
    face_checkpoint = overrides.pop("face_checkpoint", None)
    run = load_run(config_path, MotionRun, overrides)
    check_table(MotionConfig, run.model, f"{config_path} [model]")
    check_table(MelEncoderConfig, run.audio, f"{config_path} [audio]")
    data, train = run.data, run.train
    data.face_checkpoint = face_checkpoint or data.face_checkpoint
    set_threads(train.threads)
    face = motion_space(data.face_checkpoint)
    if video_data:
        latents = ingested_latents(video_data, face)
    else:
        latents = {split: load_latents(split, getattr(data, f"n_{split}"), face, cache_dir=data.cache_dir or None,
                                       verbose=True, voices=data.voices) for split in ("train", "val")}
    # seeded after the data: encoding uncached latents builds a face model (random init draws from
    # torch's generator), and a run must not depend on what the cache held
    L.seed_everything(data.seed, workers=True)
    model = {**run.model, "motion_dim": latents["train"].motion.shape[1], "audio_dim": run.audio.get("dim", 128)}
    lit = LitMotion(model, run.audio, velocity_weight=train.velocity_weight, velocity_dims=train.velocity_dims or None,
                    join_weight=train.join_weight, short_share=train.short_share, mel_shift=train.mel_shift,
                    dim_weights=dim_weight_list(train.dim_weights, model["motion_dim"]), lr=train.lr,
                    weight_decay=train.weight_decay, max_steps=train.max_steps, scales=run.guidance)
    lit.model.transformer.set_motion_stats(*latents["train"].stats())
    length = model.get("context", 10) + model.get("window", 25)
    encoder = lit.model.audio_encoder
    margin = receptive_radius(encoder) if encoder.config.edges == "replicate" else 0
    windows = {split: MotionWindows.from_latents(latents[split], length, data.windows_per_clip, fixed=split == "val",
                                                 lead_in=data.lead_in, margin=margin) for split in latents}
    loaders = {split: DataLoader(windows[split], batch_size=data.batch_size, shuffle=split == "train",
                                 drop_last=split == "train") for split in windows}
    path = paths.course_path(train.checkpoint)
    command = command or f"python -m vasa_lib.train motion --config {config_path}"
    info = {"command": command, "config_file": str(config_path), "data_seed": data.seed,
            "face_checkpoint": data.face_checkpoint, "face_hash": latents["train"].info["face_hash"],
            "video_data": video_data, "voices": data.voices, "n_train_clips": len(latents["train"]),
            "n_train_frames": len(latents["train"].motion), "n_val_clips": len(latents["val"]),
            "torch": torch.__version__, "machine": _machine()}
    info |= fit(lit, train, path, info, resume, train_dataloaders=loaders["train"], val_dataloaders=loaders["val"])
    kind = "diffusion transformer" if model.get("diffusion", True) else "regression baseline"
    return finish(lit.model, path, info, f"Motion generator, {kind} (VASA-1 Sec. 3.2)", config_path, command)


def train_evaluators(config_path: str, command: str = "", out: str | None = None) -> list[Path]:
    """Fit the motion evaluators (probes, SyncNet, CAPP, emotion classifier) on train latents and
    save each as eval_{name}.safetensors with a card in the folder `out`, else [train]
    checkpoint_dir (`run_config.EvaluatorsRun`); returns the paths."""
    from vasa_lib.eval.motion import EVALUATORS, evaluator_path
    from vasa_lib.eval.motion import train_evaluators as fit_evaluators
    from vasa_lib.motion.latents import WORLD, load_latents, motion_space

    run = load_run(config_path, EvaluatorsRun)
    set_threads(run.train.threads)
    face = motion_space(run.data.face_checkpoint)
    latents = load_latents("train", run.data.n_train, face, cache_dir=run.data.cache_dir or None, verbose=True,
                           voices=run.data.voices)
    models, report = fit_evaluators(latents, {name: getattr(run, name) for name in EVALUATORS},
                                    log_every=run.train.log_every)
    command = command or f"python -m vasa_lib.train evaluators --config {config_path}"
    info = {"command": command, "config_file": str(config_path), "face_checkpoint": run.data.face_checkpoint,
            "face_hash": latents.info["face_hash"], "voices": run.data.voices, "n_train_clips": run.data.n_train,
            "n_train_frames": len(latents.motion), "torch": torch.__version__, **report}
    folder = paths.course_path(out or run.train.checkpoint_dir)
    return [finish(model, evaluator_path(name, folder, str(face) == WORLD), info,
                   f"Motion evaluator: {name} (for vasa_lib.eval.motion)", config_path, command)
            for name, model in models.items()]


def train_reader(config_path: str, overrides: dict[str, Any] | None = None, command: str = "",
                 out: str | None = None) -> Path:
    """Fit the parameter reader (`vasa_lib.eval.reader`) on renders of train-split people and save
    it with a card at [train] checkpoint (`run_config.ReaderRun`; `overrides` replace [train]
    values); returns the checkpoint path. With `out`, checkpoint and card go to that folder."""
    from vasa_lib.eval.reader import train_reader as fit_reader
    from vasa_lib.face.reader import ReaderConfig

    run = load_run(config_path, ReaderRun, overrides)
    check_table(ReaderConfig, run.model, f"{config_path} [model]")
    train = run.train
    redirect(train, out)
    set_threads(train.threads)
    init, started_from = earlier_weights(train.init)
    model, report = fit_reader(ReaderConfig(**run.model), train.steps, train.batch, train.lr, train.uniform_share,
                               train.n_clips, train.seed, train.log_every, max_minutes=train.max_minutes or None,
                               init=init)
    command = command or f"python -m vasa_lib.train reader --config {config_path}"
    info = {"command": command, "config_file": str(config_path), "machine": _machine(), "torch": torch.__version__,
            "lr": train.lr, "seed": train.seed, "max_minutes": train.max_minutes, **report, **started_from}
    return finish(model, train.checkpoint, info,
                  "Parameter reader: image -> pose and facial parameters (vasa_lib.eval.reader)", config_path, command)


def train_video_features(config_path: str, overrides: dict[str, Any] | None = None, command: str = "") -> Path:
    """Fit the FVD analogue's video network (`vasa_lib.eval.video_features`) on renders of train
    clips and save it with a card at [train] checkpoint (`run_config.VideoFeatureRun`)."""
    from vasa_lib.eval.video_features import VideoFeatureConfig
    from vasa_lib.eval.video_features import train_video_features as fit_video

    run = load_run(config_path, VideoFeatureRun, overrides)
    check_table(VideoFeatureConfig, run.model, f"{config_path} [model]")
    train = run.train
    set_threads(train.threads)
    model, report = fit_video(VideoFeatureConfig(**run.model), train.steps, train.batch, train.lr, train.n_clips,
                              train.seed, train.log_every, train.grade_clips)
    command = command or f"python -m vasa_lib.train video --config {config_path}"
    info = {"command": command, "config_file": str(config_path), "machine": _machine(), "torch": torch.__version__,
            "lr": train.lr, **report}
    return finish(model, train.checkpoint, info, "Video feature network for the FVD analogue (vasa_lib.eval)",
                  config_path, command)


def render_landmarks(split: str, n: int, size: int, seed: int,
                     wide_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks (m, 478, 3) on n renders of a split's people in natural poses and expressions,
    the head turned uniformly over the middle half of each rotation's range in a `wide_share` of
    them, and their parameters (m, 17), for the m renders where exactly one face was found."""
    from vasa_lib.real.detect import detect_faces
    from vasa_lib.real.landmarks import face_landmarks
    from vasa_lib.video import to_uint8_frames
    from vasa_lib.world.clips import natural_motion
    from vasa_lib.world.identity import IDENTITY_SPLITS, identity_from_id
    from vasa_lib.world.params import POSE_LIMITS, pose_index
    from vasa_lib.world.renderer import render

    rng = np.random.default_rng(seed)
    pose, dynamics = natural_motion(split, n, n_clips=32, seed=seed)
    wide, turns = int(wide_share * n), [pose_index(name) for name in ("yaw", "pitch", "roll")]
    pose[:wide, turns] = torch.from_numpy(rng.uniform(-0.5, 0.5, (wide, 3))).float() * POSE_LIMITS[turns, 1]
    ids = rng.choice(IDENTITY_SPLITS[split], n)
    images = render(identity_from_id(ids.tolist()), pose, dynamics, size=size)
    points, kept = [], []
    for i, image in enumerate(to_uint8_frames(images)):
        faces = detect_faces(image)
        if len(faces) == 1:
            points.append(face_landmarks(image, faces[0].box)[0])
            kept.append(i)
    return np.stack(points), torch.cat([pose, dynamics], 1).numpy()[kept]


def train_labels(n_train: int = 3000, n_test: int = 600, size: int = 256, ridge: float = 1e-4,
                 wide_share: float = 0.5, seed: int = 0) -> dict:
    """Fit the landmark regression of `vasa_lib.real.labels` on renders of train people (a
    `wide_share` of them turned over wider ranges than natural motion, so that the regression
    sees each rotation apart from the others), grade it on test people in natural poses (R^2 per
    parameter) and save both to its `WEIGHTS`; returns the report."""
    from vasa_lib.eval.probes import r2_per_column
    from vasa_lib.real import labels

    points, params = render_landmarks("train", n_train, size, seed, wide_share)
    fitted = labels.fit(labels.features(points, (size, size)), params, ridge)
    test_points, test_params = render_landmarks("test", n_test, size, seed + 1)
    predicted = labels.predict(labels.features(test_points, (size, size)), fitted)
    r2 = r2_per_column(torch.from_numpy(predicted), torch.from_numpy(test_params.astype(np.float64)))
    report = {"command": "python -m vasa_lib.train labels", "n_train": len(points), "n_test": len(test_points),
              "size": size, "ridge": ridge, "wide_share": wide_share, "seed": seed,
              "test_r2": {name: round(float(v), 4) for name, v in zip(labels.PARAM_NAMES, r2)}}
    labels.save(fitted, report)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vasa_lib.train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="model", required=True)
    face = sub.add_parser("face", help="the face latent model (encoders, warping, decoder)")
    face.add_argument("--config", default="configs/face_fast.toml")
    face.add_argument("--max-minutes", type=float, help="override [train] max_minutes")
    face.add_argument("--max-steps", type=int, help="override [train] max_steps")
    face.add_argument("--checkpoint", help="override [train] checkpoint")
    face.add_argument("--init", help="start from the weights of this checkpoint (fine-tuning)")
    face.add_argument("--lr", type=float, help="override [train] lr (the peak of the one-cycle schedule)")
    face.add_argument("--identity-net", help="override [train] identity_net (the network of l_cross_id)")
    face.add_argument("--out", help="write the checkpoint, its card and logs to this folder")
    face.add_argument("--devices", type=int, help="override [train] devices (GPUs; more than one: DDP)")
    face.add_argument("--resume", action="store_true", help="go on from the training state in run_dir (or --out)")
    ident = sub.add_parser("identity", help="the identity network used by l_cross_id")
    ident.add_argument("--config", default="configs/face_identity_net.toml")
    ident.add_argument("--checkpoint", help="override [train] checkpoint")
    motion = sub.add_parser("motion", help="the motion generator (diffusion transformer or regression baseline)")
    motion.add_argument("--config", default="configs/motion_fast.toml")
    motion.add_argument("--max-minutes", type=float, help="override [train] max_minutes")
    motion.add_argument("--max-steps", type=int, help="override [train] max_steps")
    motion.add_argument("--checkpoint", help="override [train] checkpoint")
    motion.add_argument("--devices", type=int, help="override [train] devices (GPUs; more than one: DDP)")
    motion.add_argument("--resume", action="store_true", help="go on from the training state in run_dir")
    motion.add_argument("--face-checkpoint", help="override [data] face_checkpoint (the face model whose latents "
                        "it learns)")
    evaluators = sub.add_parser("evaluators", help="the motion evaluators (probes, SyncNet, CAPP, emotion)")
    evaluators.add_argument("--config", default="configs/motion_evaluators.toml")
    evaluators.add_argument("--out", help="write the evaluators and their cards to this folder "
                            "(default: [train] checkpoint_dir)")
    reader = sub.add_parser("reader", help="the parameter reader (image -> pose and facial parameters)")
    reader.add_argument("--config", default="configs/reader.toml")
    reader.add_argument("--checkpoint", help="override [train] checkpoint")
    reader.add_argument("--max-minutes", type=float, help="override [train] max_minutes")
    reader.add_argument("--batch", type=int, help="override [train] batch")
    reader.add_argument("--init", help="start from the weights of this checkpoint (a second cycle)")
    reader.add_argument("--lr", type=float, help="override [train] lr")
    reader.add_argument("--seed", type=int, help="override [train] seed (a second cycle: draw other renders)")
    reader.add_argument("--out", help="write the checkpoint, its card and the log to this folder")
    video = sub.add_parser("video", help="the video feature network of the FVD analogue (vasa_lib.eval.video_features)")
    video.add_argument("--config", default="configs/video_features.toml")
    video.add_argument("--checkpoint", help="override [train] checkpoint")
    sub.add_parser("labels", help="pose and face parameters from landmarks, for real video (vasa_lib.real.labels)")
    for video_trained in (face, ident, motion):
        video_trained.add_argument("--data", help="train on this folder of ingested video "
                                   "(python -m vasa_lib.real.ingest) instead of the world")
    args = parser.parse_args(argv)
    command = "python -m vasa_lib.train " + " ".join(argv or sys.argv[1:])
    if args.model == "face":
        overrides = {k: v for k, v in (("max_minutes", args.max_minutes), ("max_steps", args.max_steps),
                                       ("checkpoint", args.checkpoint), ("init", args.init), ("lr", args.lr),
                                       ("identity_net", args.identity_net), ("devices", args.devices))
                     if v is not None}
        with log_to(args.out, "train_face.log"):
            train_face(args.config, overrides, command, args.data, args.out, args.resume)
    elif args.model == "motion":
        overrides = {k: v for k, v in (("max_minutes", args.max_minutes), ("max_steps", args.max_steps),
                                       ("checkpoint", args.checkpoint), ("devices", args.devices)) if v is not None}
        if args.face_checkpoint:
            overrides["face_checkpoint"] = args.face_checkpoint
        train_motion(args.config, overrides, command, args.data, args.resume)
    elif args.model == "evaluators":
        train_evaluators(args.config, command, args.out)
    elif args.model == "reader":
        with log_to(args.out, "train_reader.log"):
            overrides = {k: v for k, v in (("checkpoint", args.checkpoint), ("max_minutes", args.max_minutes),
                                           ("batch", args.batch), ("init", args.init), ("lr", args.lr),
                                           ("seed", args.seed))
                         if v is not None}
            train_reader(args.config, overrides, command, args.out)
    elif args.model == "video":
        train_video_features(args.config, {"checkpoint": args.checkpoint} if args.checkpoint else {}, command)
    elif args.model == "labels":
        report = train_labels()
        print(json.dumps(report, indent=1))
    else:
        overrides = {"checkpoint": args.checkpoint} if args.checkpoint else {}
        train_identity(args.config, overrides, command, args.data)


if __name__ == "__main__":
    main()
