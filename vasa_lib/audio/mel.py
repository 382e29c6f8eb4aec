"""Log-mel front end: 16 kHz speech to 4 mel frames per video frame (paper Sec. 3.2, audio features).

VASA-1 feeds Wav2Vec2 features to its motion generator; the course's default is a small audio
encoder trained jointly with it (`vasa_lib.audio.encoder`), on top of the classic log-mel
spectrogram computed here. The numbers are chosen so audio and video line up exactly:

    16 000 samples/s, hop 160  ->  100 mel frames/s  =  4 mel frames per video frame (25 fps)

A clip of T video frames has T * 640 samples; `log_mel` gives 4T mel frames, frame k centred on
sample 160 k (the STFT is centred, like librosa's), so video frame t owns mel frames 4t .. 4t+3.
`frame_features` stacks those four into one 320-dim vector per video frame. Parameters match
`librosa.feature.melspectrogram(sr=16000, n_fft=512, hop_length=160, win_length=400, n_mels=80)`:
Hann window, zero padding, power spectrum, Slaney mel scale with Slaney (area) normalisation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from einops import rearrange

from vasa_lib.world.params import FPS, SAMPLE_RATE

N_FFT = 512
WIN_LENGTH = 400                 # 25 ms
HOP_LENGTH = 160                 # 10 ms
N_MELS = 80
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS          # 640 audio samples per video frame
MELS_PER_FRAME = SAMPLES_PER_FRAME // HOP_LENGTH  # 4 mel frames per video frame
FRAME_FEATURE_DIM = MELS_PER_FRAME * N_MELS     # 320
LOG_EPS = 1e-5


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = math.log(6.4) / 27.0
    linear = hz / f_sp
    log = min_log_hz / f_sp + torch.log(hz.clamp_min(min_log_hz) / min_log_hz) / logstep
    return torch.where(hz >= min_log_hz, log, linear)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    """Inverse of `hz_to_mel`."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    log = min_log_hz * torch.exp(logstep * (mel - min_log_mel))
    return torch.where(mel >= min_log_mel, log, f_sp * mel)


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
                   fmin: float = 0.0, fmax: float | None = None) -> torch.Tensor:
    """Triangular mel filters (n_mels, n_fft // 2 + 1), float64, Slaney-normalised (each filter
    has unit area in Hz), as `librosa.filters.mel` with its defaults."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_hz = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    low, high = hz_to_mel(torch.tensor([fmin, fmax], dtype=torch.float64)).tolist()
    edges_mel = torch.linspace(low, high, n_mels + 2, dtype=torch.float64)
    edges = mel_to_hz(edges_mel)                                 # (n_mels + 2,) filter edges in Hz
    widths = edges.diff()                                        # (n_mels + 1,)
    ramps = edges[:, None] - fft_hz[None, :]                     # (n_mels + 2, n_freqs)
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = torch.minimum(rising, falling).clamp_min(0)
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def check_audio(audio: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Validate 16 kHz mono audio (N,) or (B, N): float, non-empty, finite. Returns a tensor."""
    audio = torch.as_tensor(audio)
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must have shape (N,) or (B, N), got {tuple(audio.shape)}")
    if audio.shape[-1] == 0:
        raise ValueError("audio is empty (0 samples)")
    if not audio.is_floating_point():
        raise ValueError(f"audio must be float in [-1, 1], got dtype {audio.dtype} (convert int16 with x / 32768)")
    if not torch.isfinite(audio).all():
        raise ValueError("audio contains NaN or inf")
    return audio


def n_video_frames(n_samples: int) -> int:
    """Video frames covered by n_samples of audio: ceil(N / 640), as `clips.clip_from_speech` pads."""
    return math.ceil(n_samples / SAMPLES_PER_FRAME)


def mel_spectrogram(audio: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Power mel spectrogram, time first: audio (..., N) -> (..., 4T, 80) with T = ceil(N / 640).

    The audio is zero-padded to T * 640 samples; the centred STFT then has 4T + 1 frames and the
    last one (centred on the first sample after the clip) is dropped. Computed in the audio's dtype.
    """
    audio = check_audio(audio)
    n_frames = n_video_frames(audio.shape[-1])
    audio = torch.nn.functional.pad(audio, (0, n_frames * SAMPLES_PER_FRAME - audio.shape[-1]))
    window = torch.hann_window(WIN_LENGTH, periodic=True, dtype=audio.dtype, device=audio.device)
    spec = torch.stft(audio, N_FFT, HOP_LENGTH, WIN_LENGTH, window, center=True, pad_mode="constant",
                      return_complex=True)                       # (..., 257, 4T + 1)
    power = spec.abs().square()[..., : n_frames * MELS_PER_FRAME]
    filters = mel_filterbank().to(audio)                         # (80, 257)
    return torch.einsum("mf,...ft->...tm", filters, power)


def log_mel(audio: torch.Tensor | np.ndarray, eps: float = LOG_EPS) -> torch.Tensor:
    """log(mel + eps): audio (N,) or (B, N) -> (4T, 80) or (B, 4T, 80), T = ceil(N / 640)."""
    return torch.log(mel_spectrogram(audio) + eps)


def frame_features(mel: torch.Tensor) -> torch.Tensor:
    """Stack the 4 mel frames of each video frame: (..., 4T, 80) -> (..., T, 320)."""
    if mel.ndim < 2 or mel.shape[-1] != N_MELS or mel.shape[-2] % MELS_PER_FRAME:
        raise ValueError(f"mel must have shape (..., 4T, {N_MELS}), got {tuple(mel.shape)}")
    return rearrange(mel, "... (t k) m -> ... t (k m)", k=MELS_PER_FRAME)


def audio_frame_features(audio: torch.Tensor | np.ndarray) -> torch.Tensor:
    """`frame_features(log_mel(audio))`: (N,) or (B, N) -> (T, 320) or (B, T, 320), float32."""
    return frame_features(log_mel(check_audio(audio).float()))


def shift_mel_bins(frames: torch.Tensor, shift: int | torch.Tensor) -> torch.Tensor:
    """Move each of the 4 stacked mel frames' 80 bins up by `shift` bins (down if negative),
    repeating the edge bin: a crude vocal-tract-length perturbation, i.e. a new voice from an old
    one. frames (..., T, 320); shift an int or a tensor of the leading shape (...) (one shift per
    clip) -> frames' shape."""
    shift = torch.as_tensor(shift, device=frames.device)
    if frames.shape[-1] != FRAME_FEATURE_DIM or shift.shape != frames.shape[:-2]:
        raise ValueError(f"expected frames (..., T, {FRAME_FEATURE_DIM}) and one shift per clip, got "
                         f"{tuple(frames.shape)} and shift {tuple(shift.shape)}")
    bins = rearrange(frames, "... t (s b) -> ... t s b", s=MELS_PER_FRAME)
    source = (torch.arange(N_MELS, device=frames.device) - shift[..., None]).clamp(0, N_MELS - 1)
    source = source.reshape(*shift.shape, 1, 1, N_MELS).expand(bins.shape)
    return rearrange(bins.gather(-1, source), "... t s b -> ... t (s b)")
