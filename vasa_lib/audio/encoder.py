"""Audio encoders: speech to one feature vector per video frame, 25 per second (paper Sec. 3.2).

VASA-1 conditions its motion generator on Wav2Vec2 features. Two encoders share one interface,
`encode(audio (B, N) 16 kHz) -> (B, T, dim)` with T = ceil(N / 640), so either can drive the
motion model:

- `MelEncoder` (the course default, nothing to download): a small stack of residual 1D
  convolutions over the per-frame log-mel stack of `vasa_lib.audio.mel`, trained jointly with
  the motion model. Its `forward` takes the mel stack (B, T, 320), so datasets can precompute it.
- `PretrainedSpeechEncoder`: a Hugging Face `transformers` Wav2Vec2 or HuBERT model, given as an
  instance or a local folder (never downloaded). These run at 50 Hz (a 320-sample stride), so
  their hidden states are linearly resampled to 25 fps, which averages pairs of frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vasa_lib.audio.mel import FRAME_FEATURE_DIM, SAMPLES_PER_FRAME, audio_frame_features, check_audio, n_video_frames


class AudioEncoder(Protocol):
    """What the motion model needs from an audio encoder."""

    dim: int

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """16 kHz audio (B, N) -> features (B, ceil(N / 640), dim)."""
        ...


EDGES: tuple[str, ...] = ("zeros", "replicate")


@dataclass
class MelEncoderConfig:
    """Sizes of the learned mel encoder: `dim` output channels, `layers` residual conv blocks
    with temporal kernel `kernel_size` (receptive field: layers * (kernel_size - 1) + 1 frames).

    edges: what the convolutions see past the ends of their input. "zeros" (the checkpoints
    trained before 2026-12-07): zero padding, so a frame's features depend on where the input ends,
    and a clip's first frames, which training windows never had as targets, get features unseen in
    training (a model so trained shut the eyes at the start of every clip). "replicate": the first
    and last frames are repeated `receptive_radius` times (the speaker still before and after), so
    features computed over a whole clip equal those of a training window given that many frames
    of audio margin (`MotionWindows(margin=...)`).
    """

    dim: int = 128
    layers: int = 3
    kernel_size: int = 5
    edges: str = "zeros"

    def __post_init__(self) -> None:
        if self.edges not in EDGES:
            raise ValueError(f"edges must be one of {EDGES}, got {self.edges!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class ConvBlock(nn.Module):
    """Pre-norm residual block over time: x + Linear(GELU(Conv1d(LayerNorm(x)))), (B, T, C) -> same."""

    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = rearrange(self.conv(rearrange(self.norm(x), "b t c -> b c t")), "b c t -> b t c")
        return x + self.proj(F.gelu(h))


def receptive_radius(encoder: MelEncoder) -> int:
    """Video frames either side that one audio feature frame sees (its centred convolutions)."""
    return encoder.config.layers * (encoder.config.kernel_size // 2)


class MelEncoder(nn.Module):
    """Learned audio encoder: log-mel frame stacks (B, T, 320) -> features (B, T, dim)."""

    config_class = MelEncoderConfig

    def __init__(self, config: MelEncoderConfig | None = None):
        super().__init__()
        self.config = config = config or MelEncoderConfig()
        if config.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (centred convolution), got {config.kernel_size}")
        self.dim = config.dim
        self.input = nn.Sequential(nn.LayerNorm(FRAME_FEATURE_DIM), nn.Linear(FRAME_FEATURE_DIM, config.dim))
        self.blocks = nn.Sequential(*(ConvBlock(config.dim, config.kernel_size) for _ in range(config.layers)))
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, mel_frames: torch.Tensor) -> torch.Tensor:
        """mel_frames (B, T, 320) from `mel.frame_features` -> (B, T, dim); the ends as `config.edges` says."""
        if mel_frames.ndim != 3 or mel_frames.shape[-1] != FRAME_FEATURE_DIM:
            raise ValueError(f"expected mel frame stacks (B, T, {FRAME_FEATURE_DIM}), got {tuple(mel_frames.shape)}")
        x = self.input(mel_frames)   # per frame, so repeating its frames is repeating the mel frames
        r = receptive_radius(self) if self.config.edges == "replicate" else 0
        if r:
            x = rearrange(F.pad(rearrange(x, "b t c -> b c t"), (r, r), mode="replicate"), "b c t -> b t c")
        x = self.norm(self.blocks(x))
        return x[:, r: x.shape[1] - r]

    def encode(self, audio: torch.Tensor | np.ndarray) -> torch.Tensor:
        """16 kHz audio (B, N) -> (B, ceil(N / 640), dim)."""
        audio = check_audio(audio)
        if audio.ndim != 2:
            raise ValueError(f"encode takes a batch of audio (B, N), got {tuple(audio.shape)}")
        return self(audio_frame_features(audio.to(self.norm.weight.device)))


class PretrainedSpeechEncoder(nn.Module):
    """A `transformers` Wav2Vec2 / HuBERT model as a 25 fps audio encoder.

    model: a model instance (e.g. `Wav2Vec2Model`, `HubertModel`) or a local folder written by
    `save_pretrained` (loaded with `local_files_only=True`: nothing is downloaded).
    layer: which hidden state to use (0 = after the feature projection, None = the last layer).
    normalize: zero-mean, unit-variance audio per utterance, as `Wav2Vec2FeatureExtractor` does
    for the models trained that way (e.g. wav2vec2-large-lv60; off for wav2vec2-base).
    trainable: fine-tune with the motion model; by default the weights are frozen and the model
    stays in eval mode (no dropout).
    """

    def __init__(self, model: nn.Module | str | Path, layer: int | None = None, normalize: bool = True,
                 trainable: bool = False):
        super().__init__()
        if isinstance(model, (str, Path)):
            from transformers import AutoModel

            if not Path(model).is_dir():
                raise ValueError(f"{model} is not a local model folder (this wrapper never downloads weights)")
            model = AutoModel.from_pretrained(str(model), local_files_only=True)
        self.model, self.layer, self.normalize, self.trainable = model, layer, normalize, trainable
        self.dim: int = model.config.hidden_size
        self.model.requires_grad_(trainable)
        self.train(False)

    def train(self, mode: bool = True) -> PretrainedSpeechEncoder:
        super().train(mode)
        self.model.train(mode and self.trainable)
        return self

    def forward(self, audio: torch.Tensor | np.ndarray) -> torch.Tensor:
        """16 kHz audio (N,) or (B, N) -> (T, dim) or (B, T, dim), T = ceil(N / 640)."""
        audio = check_audio(audio).float()
        single = audio.ndim == 1
        audio = audio[None] if single else audio
        n_frames = n_video_frames(audio.shape[-1])
        audio = F.pad(audio, (0, n_frames * SAMPLES_PER_FRAME - audio.shape[-1]))
        if self.normalize:
            audio = (audio - audio.mean(-1, keepdim=True)) / torch.sqrt(audio.var(-1, keepdim=True) + 1e-7)
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            out = self.model(audio.to(self.model.device), output_hidden_states=self.layer is not None)
            hidden = out.last_hidden_state if self.layer is None else out.hidden_states[self.layer]  # (B, L, dim)
        # L is about 2T at 50 Hz; linear resampling to T frames averages neighbouring pairs
        feats = F.interpolate(rearrange(hidden, "b l c -> b c l"), size=n_frames, mode="linear", align_corners=False)
        feats = rearrange(feats, "b c t -> b t c")
        return feats[0] if single else feats

    encode = forward
