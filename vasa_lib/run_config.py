"""Typed run configs for `vasa_lib.train`: each table of a training TOML is a dataclass holding
every key it may have, with its default, so that a misspelt or misplaced key fails with its name
instead of being silently ignored (nanoGPT and DiT keep a run's settings the same way: one place,
read top to bottom).

    run = load_run("configs/face_gpu_v2.toml", FaceRun)      # run.train.lr, run.data.batch_size, ...

The [model] table (and the face model's [loss], the motion model's [audio] and [guidance]) stay
dicts: the model's own config dataclass checks them when the model is built (`check_table` here,
so that a misspelt model key fails before any data is made).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import tomllib

from vasa_lib import paths

Run = TypeVar("Run")


@dataclass
class TrainSettings:
    """[train] of the Lightning-trained models (face, motion): how long, how fast, where to.

    schedule "steps": the learning rate follows one cycle over max_steps; "time": it decays over
    max_minutes (`optim.TimedCycle`), so a run on any machine ends annealed. A run stops at
    max_steps or max_minutes, whichever comes first. threads 0: torch's default. init: start from
    this checkpoint's weights (fine-tuning). devices: GPUs (Lightning's DDP when more than one)."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_steps: int = 10_000
    max_minutes: float = 60.0
    schedule: str = "steps"
    precision: str = "32-true"           # or "bf16-mixed" on a GPU
    grad_clip: float = 1.0
    threads: int = 0
    devices: int = 1
    checkpoint: str = "runs/model.safetensors"
    run_dir: str = "runs"
    checkpoint_every_minutes: float = 5.0
    log_every: int = 20
    init: str = ""

    def __post_init__(self) -> None:
        if self.schedule not in ("steps", "time"):
            raise ValueError(f"[train] schedule must be 'steps' or 'time', got {self.schedule!r}")


@dataclass
class FaceTrain(TrainSettings):
    """[train] of the face model: also the identity network of l_cross_id, the expression network
    of the part-perceptual loss, and how many batches of test-people pairs grade a pairs run at
    its end."""

    run_dir: str = "runs/face"
    identity_net: str = ""
    expression_net: str = ""             # the frozen network of the part-perceptual loss ([loss] expression)
    held_out_batches: int = 4


@dataclass
class FaceData:
    """[data] of the face model. source "clips": frame pairs from n_train cached world clips
    (mix_motion: share of frames re-rendered with another clip's motion; same_pose: share of
    drivers in the source's pose); "pairs": pairs of train people rendered on the fly from the
    motion of n_clips clips (`world.pairs`; uniform_share of the values drawn over their range)."""

    source: str = "clips"
    batch_size: int = 8
    seed: int = 0
    n_train: int = 64
    n_clips: int = 200
    mix_motion: float = 0.0
    same_pose: float = 0.0
    uniform_share: float = 0.2
    workers: int = 1
    cache_dir: str = ""

    def __post_init__(self) -> None:
        if self.source not in ("clips", "pairs"):
            raise ValueError(f"[data] source must be 'clips' or 'pairs', got {self.source!r}")


@dataclass
class FaceRun:
    """A face model run: [model] FaceConfig fields, [data], [loss] FaceLossConfig fields, [train]."""

    model: dict = field(default_factory=dict)
    data: FaceData = field(default_factory=FaceData)
    loss: dict = field(default_factory=dict)
    train: FaceTrain = field(default_factory=FaceTrain)


@dataclass
class MotionTrain(TrainSettings):
    """[train] of the motion generator: the extra loss terms of `motion.lit.LitMotion`, and how
    often the validation loss is computed."""

    weight_decay: float = 0.01
    run_dir: str = "runs/motion"
    log_every: int = 50
    checkpoint_every_minutes: float = 4.0
    velocity_weight: float = 0.0
    velocity_dims: int = 0               # 0: every number
    join_weight: float = 0.0
    short_share: float = 0.0
    mel_shift: int = 0                   # largest random mel-bin shift of a training window (new voices)
    dim_weights: dict = field(default_factory=dict)   # loss weight by motion number name (lit.dim_weight_list)
    val_every_epochs: int = 1


@dataclass
class MotionData:
    """[data] of the motion generator and its evaluators: the face checkpoint whose latents it
    learns ("world": the world's own parameters), clips and windows."""

    face_checkpoint: str = "assets/checkpoints/face.safetensors"
    n_train: int = 300
    n_val: int = 16
    windows_per_clip: int = 8
    batch_size: int = 32
    seed: int = 0
    cache_dir: str = ""
    voices: str = "world"                # "many": train and val clips spoken by speech.MANY_VOICES instead of 14
    lead_in: int = 0                     # frames a training window may start before its clip (motion.windows)


@dataclass
class MotionRun:
    """A motion run: [model] MotionConfig fields, [audio] MelEncoderConfig fields, [data], [train],
    [guidance] the default sampling scales."""

    model: dict = field(default_factory=dict)
    audio: dict = field(default_factory=dict)
    data: MotionData = field(default_factory=MotionData)
    train: MotionTrain = field(default_factory=MotionTrain)
    guidance: dict | None = None


@dataclass
class EvaluatorTrain:
    """[train] of the motion evaluators: where they go."""

    checkpoint_dir: str = "runs/evaluators"
    threads: int = 0
    log_every: int = 100


@dataclass
class EvaluatorsRun:
    """The motion evaluators: [data], [train] and one table of settings per evaluator."""

    data: MotionData = field(default_factory=MotionData)
    train: EvaluatorTrain = field(default_factory=EvaluatorTrain)
    probes: dict = field(default_factory=dict)
    syncnet: dict = field(default_factory=dict)
    capp: dict = field(default_factory=dict)
    emotion: dict = field(default_factory=dict)


@dataclass
class ReaderTrain:
    """[train] of the parameter reader (`eval.reader.train_reader`'s arguments)."""

    steps: int = 2000
    max_minutes: float = 0.0             # 0: no time limit, one cycle over `steps`
    batch: int = 64
    lr: float = 2e-3
    uniform_share: float = 0.3
    n_clips: int = 200
    seed: int = 0
    threads: int = 0
    log_every: int = 0
    checkpoint: str = "runs/reader/eval_reader.safetensors"
    init: str = ""                       # start from the weights of this checkpoint (a second cycle)


@dataclass
class ReaderRun:
    """The parameter reader: [model] ReaderConfig fields and [train]."""

    model: dict = field(default_factory=dict)
    train: ReaderTrain = field(default_factory=ReaderTrain)


@dataclass
class VideoFeatureTrain:
    """[train] of the FVD analogue's video network (`eval.video_features.train_video_features`)."""

    steps: int = 3000
    batch: int = 16
    lr: float = 2e-3
    n_clips: int = 1000
    grade_clips: int = 16
    seed: int = 0
    threads: int = 0
    log_every: int = 0
    checkpoint: str = "runs/video_features/eval_video_features.safetensors"


@dataclass
class VideoFeatureRun:
    """The video feature network: [model] VideoFeatureConfig fields and [train]."""

    model: dict = field(default_factory=dict)
    train: VideoFeatureTrain = field(default_factory=VideoFeatureTrain)


@dataclass
class IdentityArgs:
    """[train_args] of the identity network (`face.identity_net.train_identity_net`'s arguments)."""

    n_identities: int = 2000
    steps: int = 600
    people_per_batch: int = 32
    size: int = 128
    lr: float = 2e-3
    scale: float = 16.0
    margin: float = 0.1
    seed: int = 0


@dataclass
class IdentityTrain:
    checkpoint: str = "runs/identity_net/identity_net.safetensors"
    threads: int = 0


@dataclass
class IdentityRun:
    """The identity network: [model] IdentityNetConfig fields, [train_args], [train]."""

    model: dict = field(default_factory=dict)
    train_args: IdentityArgs = field(default_factory=IdentityArgs)
    train: IdentityTrain = field(default_factory=IdentityTrain)


def from_dict(cls: type[Run], table: dict[str, Any], file: str, name: str = "") -> Run:
    """An instance of the dataclass `cls` from the TOML table `name` of `file` (the top level
    without a name); nested dataclass fields from sub-tables. ValueError names an unknown key and
    where it is."""
    where = f"{file} [{name}]" if name else f"{file} (top level)"
    check_table(cls, table, where)
    values = {}
    for f in fields(cls):
        if f.name not in table:
            continue
        value, sub = table[f.name], _dataclass_named(f.type)
        if sub is not None:
            if not isinstance(value, dict):
                raise ValueError(f"{where}: {f.name} must be a table [{f.name}], got {value!r}")
            value = from_dict(sub, value, file, f.name)
        values[f.name] = value
    return cls(**values)


def _dataclass_named(annotation: str) -> type | None:
    """The dataclass of this module that a field annotation (a string, with postponed
    annotations) names, if any."""
    target = globals().get(str(annotation))
    return target if dataclasses.is_dataclass(target) else None


def check_table(config_class: type, table: dict[str, Any], where: str) -> None:
    """Fail early, naming the key and `where` it is, when a table holds a key its dataclass lacks."""
    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; the keys it may hold: {', '.join(sorted(known))}")


def load_run(path: str | Path, cls: type[Run], overrides: dict[str, Any] | None = None) -> Run:
    """The run config of a TOML file ("configs/face.toml" is found from any folder) as `cls`;
    `overrides` replace [train] values (command-line options)."""
    with open(paths.course_path(path), "rb") as f:
        run = from_dict(cls, tomllib.load(f), str(path))
    if overrides:
        check_table(type(run.train), overrides, f"{path} [train] override")
        run.train = dataclasses.replace(run.train, **overrides)
    return run
