"""Audio front end and encoders: log-mel against librosa, frame alignment, bad input, Wav2Vec2/HuBERT wrapper."""

import librosa
import numpy as np
import pytest
import torch
from torch.testing import assert_close

from vasa_lib.audio.encoder import MelEncoder, MelEncoderConfig, PretrainedSpeechEncoder, receptive_radius
from vasa_lib.audio.mel import (
    FRAME_FEATURE_DIM,
    audio_frame_features,
    frame_features,
    log_mel,
    mel_filterbank,
    mel_spectrogram,
    shift_mel_bins,
)

LIBROSA_ARGS = dict(sr=16000, n_fft=512, hop_length=160, win_length=400, n_mels=80)


def speechlike(n: int, seed: int = 0) -> np.ndarray:
    """A chirp with a pitch-like harmonic, an amplitude envelope and a little noise, float64."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    y = 0.4 * np.sin(2 * np.pi * (120 + 900 * t) * t) + 0.2 * np.sin(2 * np.pi * 2300 * t)
    return (y * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(n)).astype(np.float64)


def test_filterbank_matches_librosa():
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=80, dtype=np.float64)
    assert_close(mel_filterbank(), torch.from_numpy(ref), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("n_samples", [640 * 7, 1000])
def test_power_mel_matches_librosa_float64(n_samples):
    y = speechlike(n_samples)
    t = -(-n_samples // 640)
    padded = np.pad(y, (0, t * 640 - n_samples))                 # our convention: pad to whole video frames
    ref = librosa.feature.melspectrogram(y=padded, dtype=np.float64, **LIBROSA_ARGS).T[: 4 * t]
    ours = mel_spectrogram(torch.from_numpy(y))
    assert ours.shape == (4 * t, 80)
    assert_close(ours, torch.from_numpy(ref), rtol=1e-9, atol=1e-12 * ref.max())


def test_power_mel_matches_librosa_float32_batched():
    y = np.stack([speechlike(640 * 5, seed) for seed in range(2)]).astype(np.float32)
    ref = np.stack([librosa.feature.melspectrogram(y=x, **LIBROSA_ARGS).T[:20] for x in y])
    ours = mel_spectrogram(torch.from_numpy(y))
    assert ours.dtype == torch.float32 and ours.shape == (2, 20, 80)
    assert_close(ours, torch.from_numpy(ref), rtol=1e-4, atol=1e-6 * ref.max())


def test_shapes_and_frame_stacking():
    audio = torch.from_numpy(speechlike(640 * 6)).float()
    mel = log_mel(audio)
    assert mel.shape == (24, 80)
    assert_close(log_mel(torch.stack([audio, audio]))[1], mel)
    feats = frame_features(mel)
    assert feats.shape == (6, FRAME_FEATURE_DIM)
    assert_close(feats[3, 80:160], mel[13])                     # video frame 3 holds mel frames 12 .. 15
    assert audio_frame_features(audio[None]).shape == (1, 6, 320)
    assert audio_frame_features(np.zeros(641, np.float32)).shape == (2, 320)   # T = ceil(N / 640)


def test_a_burst_lands_in_its_video_frame():
    audio = torch.zeros(640 * 8)
    audio[640 * 5 + 100: 640 * 5 + 540] = torch.sin(torch.arange(440) * 0.7)
    energy = audio_frame_features(audio).exp().sum(-1)
    assert int(energy.argmax()) == 5
    assert energy[5] > 10 * energy[[0, 1, 2, 3, 7]].max()


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(1, 2, 640), "shape"),
    (torch.zeros(0), "empty"),
    (torch.tensor([0.0, float("nan")]), "NaN"),
    (torch.tensor([0.0, float("inf")]), "NaN or inf"),
    (torch.zeros(640, dtype=torch.int16), "float"),
])
def test_bad_audio_raises(bad, message):
    with pytest.raises(ValueError, match=message):
        log_mel(bad)


def test_frame_features_rejects_partial_frames():
    with pytest.raises(ValueError, match="4T"):
        frame_features(torch.zeros(1, 10, 80))


def test_shift_mel_bins_moves_each_stacked_frame_and_repeats_the_edge():
    frames = torch.arange(2 * 3 * FRAME_FEATURE_DIM, dtype=torch.float32).reshape(2, 3, FRAME_FEATURE_DIM)
    up = shift_mel_bins(frames, torch.tensor([2, -1]))
    bins, moved = frames.reshape(2, 3, 4, 80), up.reshape(2, 3, 4, 80)
    assert torch.equal(moved[0, ..., 2:], bins[0, ..., :-2])
    assert torch.equal(moved[0, ..., :2], bins[0, ..., :1].expand(-1, -1, 2))
    assert torch.equal(moved[1, ..., :-1], bins[1, ..., 1:]) and torch.equal(moved[1, ..., -1], bins[1, ..., -1])
    assert torch.equal(shift_mel_bins(frames[0], 0), frames[0])
    with pytest.raises(ValueError, match="one shift per clip"):
        shift_mel_bins(frames, 1)


def test_mel_encoder_shapes_and_gradients():
    enc = MelEncoder(MelEncoderConfig(dim=24, layers=2, kernel_size=3))
    mel = audio_frame_features(torch.from_numpy(speechlike(640 * 9)).float()[None]).requires_grad_()
    out = enc(mel)
    assert out.shape == (1, 9, 24)
    out.square().sum().backward()
    assert mel.grad.abs().sum() > 0
    assert all(p.grad is not None for p in enc.parameters())
    assert enc.encode(torch.zeros(2, 1300)).shape == (2, 3, 24)
    with pytest.raises(ValueError, match="mel frame stacks"):
        enc(torch.zeros(1, 9, 80))


def test_mel_encoder_edges():
    """"replicate" repeats the first and last frames past the ends: only the frames within the
    receptive radius of an end change against zero padding."""
    torch.manual_seed(0)
    mel = audio_frame_features(torch.from_numpy(speechlike(640 * 20)).float()[None])
    zeros = MelEncoder(MelEncoderConfig(dim=24, layers=2, kernel_size=3))
    replicate = MelEncoder(MelEncoderConfig(dim=24, layers=2, kernel_size=3, edges="replicate"))
    replicate.load_state_dict(zeros.state_dict())
    r = receptive_radius(zeros)
    a, b = zeros(mel), replicate(mel)
    assert b.shape == a.shape == (1, 20, 24)
    assert_close(a[:, r:-r], b[:, r:-r])
    assert not torch.allclose(a[:, 0], b[:, 0]) and not torch.allclose(a[:, -1], b[:, -1])
    with pytest.raises(ValueError, match="edges"):
        MelEncoderConfig(edges="reflect")


# --- Wav2Vec2 / HuBERT through transformers, tiny random configs, nothing downloaded -------------

@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers")   # a dev dependency; the mel tests run without it


def tiny_config(cls, rf: int = 10):
    """A tiny config with a 320-sample stride (50 Hz, as the real models); first kernel rf."""
    return cls(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
               conv_dim=(16, 16, 16, 16), conv_kernel=(rf, 4, 4, 4), conv_stride=(5, 4, 4, 4),
               num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=8)


@pytest.fixture(scope="module")
def wav2vec2(transformers):
    torch.manual_seed(0)
    return transformers.Wav2Vec2Model(tiny_config(transformers.Wav2Vec2Config))


def test_wav2vec2_gives_25_fps_features(wav2vec2):
    enc = PretrainedSpeechEncoder(wav2vec2)
    audio = torch.from_numpy(speechlike(640 * 7)).float()
    feats = enc(torch.stack([audio, -audio]))
    assert feats.shape == (2, 7, 32) and enc.dim == 32
    assert enc(audio).shape == (7, 32)
    assert enc.encode(audio[None, :3000]).shape == (1, 5, 32)    # ceil(3000 / 640) frames
    assert not feats.requires_grad and not enc.model.training
    enc.train()
    assert not enc.model.training                               # frozen: stays in eval mode (no dropout)


def test_50hz_states_are_averaged_in_pairs(transformers):
    torch.manual_seed(0)
    model = transformers.Wav2Vec2Model(tiny_config(transformers.Wav2Vec2Config, rf=5)).eval()  # exactly 2T states
    audio = torch.from_numpy(speechlike(640 * 6)).float()[None]
    enc = PretrainedSpeechEncoder(model, normalize=False)
    with torch.no_grad():
        hidden = model(audio).last_hidden_state
    assert hidden.shape[1] == 12
    assert_close(enc(audio), hidden.reshape(1, 6, 2, 32).mean(2))


def test_layer_choice_trainable_and_local_folder(wav2vec2, tmp_path):
    audio = torch.from_numpy(speechlike(640 * 4)).float()[None]
    last, first = PretrainedSpeechEncoder(wav2vec2)(audio), PretrainedSpeechEncoder(wav2vec2, layer=0)(audio)
    assert first.shape == last.shape and not torch.allclose(first, last)
    wav2vec2.save_pretrained(tmp_path)
    assert_close(PretrainedSpeechEncoder(tmp_path)(audio), last)
    tuned = PretrainedSpeechEncoder(wav2vec2, trainable=True)
    tuned(audio).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tuned.parameters())
    with pytest.raises(ValueError, match="local model folder"):
        PretrainedSpeechEncoder(tmp_path / "missing")


def test_hubert_works_too(transformers):
    model = transformers.HubertModel(tiny_config(transformers.HubertConfig))
    assert PretrainedSpeechEncoder(model)(torch.zeros(2, 640 * 3)).shape == (2, 3, 32)
