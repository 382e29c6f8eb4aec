"""The whole motion generator of VASA-1 (paper Sec. 3.2): speech in, face motion latents out.

`MotionGenerator` bundles the learned audio encoder (`MelEncoder`, trained jointly) with the
diffusion transformer (or, for comparison, the regression baseline with the same backbone) and
the normalisation statistics of the training latents (buffers of the transformer). It is what
the shipped checkpoints hold and what the pipeline calls:

    model = load_checkpoint("assets/checkpoints/motion.safetensors", MotionGenerator)
    motion = model.generate(audio, Controls(gaze=(0.1, 0.0), emotion="happy"))   # (T, 38)
    pose, dynamics = motion[:, :6], motion[:, 6:]      # the face model's z_pose and z_dyn

The motion is in the face latent space's own units: z_pose (6, world units: yaw, pitch, roll,
tx, ty, distance) and z_dyn (the face model's dyn_dim numbers), 25 frames per second, ready for
`FaceModel.render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from vasa_lib.audio.encoder import MelEncoder, MelEncoderConfig
from vasa_lib.audio.mel import audio_frame_features, check_audio
from vasa_lib.motion.baseline import RegressionBaseline
from vasa_lib.motion.generate import Controls, generate
from vasa_lib.motion.guidance import GUIDANCE_SCALES, check_scales
from vasa_lib.motion.sampler import DEFAULT_STEPS
from vasa_lib.motion.transformer import MotionConfig, MotionTransformer
from vasa_lib.world.params import POSE_DIM


@dataclass
class MotionGeneratorConfig:
    """motion: `MotionConfig` fields (motion_dim = 6 + the face model's dyn_dim, 38 for the
    shipped face model; audio_dim = the audio encoder's dim); audio: `MelEncoderConfig` fields;
    scales: the classifier-free guidance scales this model samples with when none are given (the
    training config's [guidance] table, chosen by a sweep such as `benchmarks/motion_sweep.py`;
    `GUIDANCE_SCALES` for a checkpoint that names none), as a generation config ships with a model."""

    motion: dict = field(default_factory=lambda: {"motion_dim": POSE_DIM + 32})
    audio: dict = field(default_factory=dict)
    scales: dict = field(default_factory=lambda: dict(GUIDANCE_SCALES))

    def __post_init__(self) -> None:
        check_scales(self.scales)
        motion, audio = MotionConfig(**self.motion), MelEncoderConfig(**self.audio)
        if motion.audio_dim != audio.dim:
            raise ValueError(f"motion audio_dim {motion.audio_dim} must equal the audio encoder's dim {audio.dim}")


class MotionGenerator(nn.Module):
    """Audio encoder + motion transformer: 16 kHz speech (N,) -> motion latents (T, D), T = ceil(N / 640)."""

    config_class = MotionGeneratorConfig

    def __init__(self, config: MotionGeneratorConfig | None = None):
        super().__init__()
        self.config = config = config or MotionGeneratorConfig()
        motion = MotionConfig(**config.motion)
        self.audio_encoder = MelEncoder(MelEncoderConfig(**config.audio))
        self.transformer = MotionTransformer(motion) if motion.diffusion else RegressionBaseline(motion)

    @property
    def motion_dim(self) -> int:
        """D = 6 + dyn_dim."""
        return self.transformer.config.motion_dim

    @property
    def scales(self) -> dict[str, float]:
        """The guidance scales this model samples with by default (`MotionGeneratorConfig.scales`)."""
        return dict(self.config.scales)

    @property
    def diffusion(self) -> bool:
        """True for the diffusion model, False for the regression baseline."""
        return self.transformer.config.diffusion

    def audio_features(self, audio: torch.Tensor) -> torch.Tensor:
        """16 kHz waveform (N,) -> audio features (T, C_a), T = ceil(N / 640)."""
        audio = check_audio(audio)
        if audio.ndim != 1:
            raise ValueError(f"audio_features takes one waveform (N,), got {tuple(audio.shape)}")
        mel = audio_frame_features(audio.float()).to(self.audio_encoder.norm.weight.device)
        return self.audio_encoder(mel[None])[0]

    @torch.no_grad()
    def generate(self, audio: torch.Tensor, controls: Controls | None = None, steps: int = DEFAULT_STEPS,
                 scales: dict[str, float] | None = None, seed: int = 0) -> torch.Tensor:
        """Motion latents [z_pose, z_dyn] (T, D) for a 16 kHz waveform (N,), window by window.

        controls: gaze, distance, emotion (default `Controls()`); steps: DDIM steps per window
        (ignored by the baseline); scales: classifier-free guidance scales per condition (default
        `self.scales`); seed: the same seed gives the same motion. Puts the model in eval mode.
        """
        self.eval()
        return generate(self.transformer, self.audio_features(audio), controls, steps,
                        self.scales if scales is None else scales, seed)
