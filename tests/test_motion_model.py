"""The MotionGenerator contract (speech -> face motion latents): shapes, seeds, checkpoints."""

import pytest
import torch
from torch.testing import assert_close

from vasa_lib.checkpoint import load_checkpoint, save_checkpoint
from vasa_lib.motion.generate import Controls
from vasa_lib.motion.model import MotionGenerator, MotionGeneratorConfig

TINY = MotionGeneratorConfig(motion=dict(motion_dim=38, audio_dim=16, window=8, context=3, width=32, depth=1, heads=2),
                             audio=dict(dim=16, layers=1, kernel_size=3))


def random_generator(config: MotionGeneratorConfig = TINY) -> MotionGenerator:
    torch.manual_seed(0)
    model = MotionGenerator(config)
    for p in model.parameters():                      # adaLN-Zero starts at zero output: make it move
        torch.nn.init.normal_(p, std=0.2)
    model.transformer.set_motion_stats(torch.linspace(-1, 1, 38), torch.full((38,), 0.3))
    return model.eval()


def test_generate_shape_and_seed():
    model = random_generator()
    audio = 0.1 * torch.randn(16_000 + 100)           # 1 s and a bit: ceil(16100 / 640) = 26 frames
    assert model.audio_features(audio).shape == (26, 16)
    motion = model.generate(audio, Controls(emotion="happy"), steps=3, seed=1)
    assert motion.shape == (26, 38) and torch.isfinite(motion).all()
    assert_close(model.generate(audio, Controls(emotion="happy"), steps=3, seed=1), motion)
    assert not torch.allclose(model.generate(audio, Controls(emotion="happy"), steps=3, seed=2), motion)


def test_save_load_round_trip(tmp_path):
    for diffusion in (True, False):
        config = MotionGeneratorConfig(motion={**TINY.motion, "diffusion": diffusion}, audio=TINY.audio)
        model = random_generator(config)
        path = save_checkpoint(model, tmp_path / f"m{diffusion}.safetensors", {"note": "test"})
        loaded = load_checkpoint(path, MotionGenerator)
        assert loaded.diffusion == diffusion and loaded.motion_dim == 38
        audio = 0.1 * torch.randn(4000)
        assert_close(loaded.generate(audio, steps=2, seed=0), model.generate(audio, steps=2, seed=0))


def test_bad_inputs():
    model = random_generator()
    with pytest.raises(ValueError, match="one waveform"):
        model.audio_features(torch.zeros(2, 640))
    with pytest.raises(ValueError, match="audio_dim"):
        MotionGeneratorConfig(motion=dict(audio_dim=8), audio=dict(dim=16))
