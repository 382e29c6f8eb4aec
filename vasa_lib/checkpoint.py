"""Checkpoints as safetensors (never pickles), with the model's config stored beside the weights.

The config is kept twice: as JSON in the safetensors metadata (so one file is enough) and in a
readable `.json` file next to it. Loading checks every tensor's name and shape and raises a
ValueError naming the first problem (truncated file, missing, unexpected or wrong-shaped tensor).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from vasa_lib.paths import write_atomic


def save_checkpoint(model: nn.Module, path: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Write model.state_dict() to `path` (.safetensors) and `path` with suffix .json.

    The model must have a dataclass `config`; `info` (JSON-serialisable: training step, metrics,
    command) is stored with it. The file is written atomically (a killed run never leaves half a file).
    """
    path = Path(path)
    record = {"model": type(model).__name__, "config": asdict(model.config), "info": info or {}}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata={"vasa_lib": json.dumps(record)}))
    path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and the stored record {"model", "config", "info"} of a checkpoint file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ValueError(f"{path} is not a readable safetensors checkpoint (truncated or damaged?): {err}") from err
    if "vasa_lib" not in metadata:
        raise ValueError(f"{path} has no vasa_lib metadata (model config); was it written by save_checkpoint?")
    return tensors, json.loads(metadata["vasa_lib"])


def check_state(model: nn.Module, tensors: dict[str, torch.Tensor], path: str | Path = "checkpoint") -> None:
    """Raise ValueError naming the first missing, unexpected or wrong-shaped tensor."""
    expected = model.state_dict()
    for name, value in expected.items():
        if name not in tensors:
            raise ValueError(f"{path}: tensor '{name}' is missing")
        if tensors[name].shape != value.shape:
            raise ValueError(f"{path}: tensor '{name}' has shape {tuple(tensors[name].shape)}, "
                             f"the model expects {tuple(value.shape)}")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise ValueError(f"{path}: unexpected tensor '{unexpected[0]}' (and {len(unexpected) - 1} more)")


def load_grown(model: nn.Module, tensors: dict[str, torch.Tensor], path: str | Path = "checkpoint") -> list[str]:
    """Load an earlier, smaller model's `tensors` into `model` (fine-tuning after adding a part,
    such as `FaceConfig.part_crops`). Returns the names of the model's tensors the checkpoint
    lacks: they keep their initialisation. Unexpected or wrong-shaped tensors raise as in
    `check_state`."""
    expected = model.state_dict()
    new = [name for name in expected if name not in tensors]
    check_state(model, {**{name: expected[name] for name in new}, **tensors}, path)
    model.load_state_dict(tensors, strict=False)
    return new


def load_checkpoint(path: str | Path, model_class: type[nn.Module],
                    map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild `model_class(config)` from a checkpoint and load its weights (eval mode)."""
    tensors, record = read_checkpoint(path)
    if record.get("model") != model_class.__name__:
        raise ValueError(f"{path} holds a {record.get('model')}, not a {model_class.__name__}")
    try:
        config = model_class.config_class(**record["config"])
    except TypeError as err:
        raise ValueError(f"{path}: config does not fit {model_class.__name__}: {err}") from err
    model = model_class(config)
    check_state(model, tensors, path)
    model.load_state_dict(tensors)
    return model.to(map_location).eval()


def write_evaluation(checkpoint: str | Path, command: str, results: dict[str, Any]) -> Path:
    """Put evaluation results (and the command that produced them) in the checkpoint's card (the
    .md beside it), replacing an earlier evaluation section; returns the card's path."""
    card = Path(checkpoint).with_suffix(".md")
    text = card.read_text() if card.exists() else ""
    text = text.split("\n## Evaluation")[0].rstrip() + "\n\n## Evaluation (held-out test identities)\n\n"
    card.write_text(text + f"Command: `{command}`\n\n```json\n{json.dumps(results, indent=2)}\n```\n")
    return card
