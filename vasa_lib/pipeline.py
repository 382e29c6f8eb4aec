"""Portrait + speech -> talking-face video, offline and streaming (VASA-1 Sec. 3.3 and Sec. 4, real time).

`Talker` loads the three shipped checkpoints once (face model, motion generator, identity
network) and runs the whole pipeline of the paper:

    portrait ──► FaceModel.encode ──► canonical volume, z_id                   (once per portrait)
    speech ────► MotionGenerator.audio_features (25 per second)
                     │ window by window: DDIM + classifier-free guidance, conditioned on the
                     │ previous window's last K frames, gaze, distance, emotion
                     ▼ [z_pose, z_dyn] (T, 6 + dyn_dim)
                 FaceModel.render, batched ──► frames (T, 3, H, W) ──► mp4 with the sound

Two modes give the same motion for the same seed:

- offline (`Talker.generate`, `Talker.write`): the motion of the whole clip at once, then the
  frames decoded in batches;
- streaming (`Talker.stream`): a generator that takes the audio as it arrives (an array or an
  iterable of chunks) and yields frames window by window. It keeps only the audio that the next
  window still needs, so memory stays flat however long the speech.

Streaming matches offline exactly because the audio encoder is local in time: a feature frame
depends on the mel frames within its receptive field (`receptive_radius` frames either side),
and a mel frame on the 32 ms around it. A window of frames [a, b) is therefore computed from the
audio of frames [a - M, b + M), M = radius + 1, and needs that much look-ahead (M / 25 s) before
it can start.

Every video is labelled: a small visible "AI-generated" mark in the corner (`stamp_label`) and a
provenance note in the mp4 metadata (`provenance`).
"""

from __future__ import annotations

import json
import math
import numbers
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from vasa_lib import __version__
from vasa_lib.audio.encoder import receptive_radius
from vasa_lib.audio.mel import SAMPLES_PER_FRAME, n_video_frames
from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.eval.probes import ridge
from vasa_lib.face.identity_net import IdentityNet, random_motion
from vasa_lib.face.losses import POSE_SPREAD
from vasa_lib.face.model import FaceLatent, FaceModel
from vasa_lib.motion.generate import Controls, emotion_tensor, generate, generate_window, windows
from vasa_lib.motion.guidance import check_scales
from vasa_lib.motion.model import MotionGenerator
from vasa_lib.motion.sampler import DEFAULT_STEPS
from vasa_lib.paths import checkpoints_dir
from vasa_lib.video import write_video
from vasa_lib.world.identity import identity_from_id
from vasa_lib.world.params import DYNAMICS_RANGES, NEUTRAL_POSE, POSE_LIMITS, POSE_RANGES, SAMPLE_RATE, dyn_index
from vasa_lib.world.renderer import render as render_world

MAX_AUDIO_SECONDS = 300.0      # longest speech accepted by default (5 minutes)
SILENCE_PEAK = 1e-3            # audio whose peak stays below this (-60 dBFS) is silent
# A portrait the face model reconstructs worse than MIN_PSNR (dB), or whose reconstruction the
# identity network does not recognise as the same person, is unreadable. Measured with the shipped
# face checkpoint: 40 held-out world portraits 23.5-29.5 dB (median 28.2) and similarity >= 0.98;
# a real photo (matplotlib's grace_hopper.jpg) 15.1 dB; noise about 11 dB.
MIN_PSNR = 20.0
MIN_IDENTITY_SIMILARITY = 0.6
MIN_CONTRAST = 0.02            # pixel std below this: a blank image, no face in it
MAX_INTENSITY = 3.0
LIVE_FIRST_WINDOW = 3          # frames of the first window for live speech (Settings.first_window): 120 ms to wait
LABEL_TEXT = "AI-generated"
REAL_VIDEO_HINT = ("The face model was trained only on the synthetic world's faces: to animate real photos, "
                   "train it on real talking-face video, as notebooks/09_your_own_videos.ipynb shows "
                   "(python -m vasa_lib.real.ingest VIDEOS --out DATA, then "
                   "python -m vasa_lib.train face --data DATA).")


# ----------------------------------------------------------------------------- settings

@dataclass
class Settings:
    """What the user controls (paper Sec. 3.2 conditions and Sec. 3.3 sampling).

    gaze (theta, phi) radians, main gaze direction; distance: head distance (1 = nominal, larger
    = smaller head); emotion: a name in `EMOTIONS`, its index or weights over them; scales:
    classifier-free guidance scale per condition (None: the motion checkpoint's own,
    `MotionGenerator.scales`); steps: DDIM steps per
    window; seed: the same seed gives the same motion; intensity: scales the head's rotation and
    shift around the training mean (0 = still head, 1 = as generated); first_window: frames of the
    first window (None: a whole window; fewer: live speech waits less for the first frame,
    `motion.generate.window_bounds`).
    """

    gaze: tuple[float, float] = (0.0, 0.0)
    distance: float = 1.0
    emotion: str | int | tuple[float, ...] = "neutral"
    scales: dict[str, float] | None = None
    steps: int = DEFAULT_STEPS
    seed: int = 0
    intensity: float = 1.0
    first_window: int | None = None

    def check(self, max_steps: int, window: int) -> None:
        """Raise ValueError naming the first impossible value."""
        if len(self.gaze) != 2:
            raise ValueError(f"gaze must be two angles (theta, phi), got {self.gaze!r}")
        for name, value, (low, high) in (("gaze theta", self.gaze[0], DYNAMICS_RANGES["gaze_yaw"]),
                                         ("gaze phi", self.gaze[1], DYNAMICS_RANGES["gaze_pitch"]),
                                         ("distance", self.distance, POSE_RANGES["distance"]),
                                         ("intensity", self.intensity, (0.0, MAX_INTENSITY))):
            if not (isinstance(value, numbers.Real) and math.isfinite(value) and low <= value <= high):
                raise ValueError(f"{name} = {value!r} is outside [{low}, {high}]")
        emotion_tensor(self.emotion)                                    # raises on unknown emotions
        check_scales(self.scales or {})
        for name, s in (self.scales or {}).items():
            if not (isinstance(s, numbers.Real) and math.isfinite(s) and 0 <= s <= 10):
                raise ValueError(f"guidance scale for {name} = {s!r} must be a number in [0, 10]")
        if not (isinstance(self.steps, numbers.Integral) and 1 <= self.steps <= max_steps):
            raise ValueError(f"steps = {self.steps!r} must be an integer in 1 .. {max_steps}")
        if not (isinstance(self.seed, numbers.Integral) and 0 <= self.seed < 2**63):
            raise ValueError(f"seed = {self.seed!r} must be a non-negative integer")
        if self.first_window is not None and not (isinstance(self.first_window, numbers.Integral)
                                                  and 1 <= self.first_window <= window):
            raise ValueError(f"first_window = {self.first_window!r} must be an integer in 1 .. {window} (or None)")

    def controls(self) -> Controls:
        return Controls(tuple(map(float, self.gaze)), float(self.distance), self.emotion)


# ----------------------------------------------------------------------------- inputs

def load_image(image: str | Path | np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """A portrait as the face model takes it: (1, 3, size, size) float in [0, 1].

    image: a file path (PNG, JPEG, ...), an (H, W, 3) uint8 or float array, or a (3, H, W) or
    (1, 3, H, W) tensor in [0, 1]. Non-square images are centre-cropped, then resized (area).
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, (str, Path)):
        if not Path(image).is_file():
            raise ValueError(f"no image file at {image}")
        try:
            with Image.open(image) as img:
                image = np.asarray(img.convert("RGB"))
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"{image} is not an image (PNG, JPEG, ...): {err}") from err
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ValueError(f"an image array must be (H, W, 3) RGB, got shape {image.shape}")
        scale = 255.0 if image.dtype == np.uint8 else 1.0
        image = rearrange(torch.from_numpy(image[..., :3].astype(np.float32) / scale), "h w c -> c h w")
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"not an image: {type(image).__name__} (give a file path, an array or a tensor)")
    image = image.float()[None] if image.ndim == 3 else image.float()
    if image.ndim != 4 or image.shape[:2] != (1, 3) or min(image.shape[2:]) < 16:
        raise ValueError(f"an image tensor must be (3, H, W) or (1, 3, H, W) with H, W >= 16, got {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise ValueError("the image contains NaN or inf values")
    if image.min() < 0 or image.max() > 1:
        raise ValueError(f"image values must lie in [0, 1], got [{image.min():.3g}, {image.max():.3g}]")
    h, w = image.shape[2:]
    s = min(h, w)
    image = image[:, :, (h - s) // 2: (h - s) // 2 + s, (w - s) // 2: (w - s) // 2 + s]
    return image if s == size else F.interpolate(image, size=(size, size), mode="area").clamp(0, 1)


def read_audio(path: str | Path, max_seconds: float = MAX_AUDIO_SECONDS) -> np.ndarray:
    """Decode any audio file PyAV reads (WAV, FLAC, MP3, OGG, WebM, ...) to 16 kHz mono float32 (N,).

    Stops with a ValueError as soon as the audio is longer than max_seconds.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no audio file at {path}")
    limit = int(max_seconds * SAMPLE_RATE)
    chunks, total = [], 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ValueError(f"{path} has no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += len(chunks[-1])
                if total > limit:
                    raise ValueError(f"audio is longer than the limit of {max_seconds:g} s")
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read audio from {path}: {err}") from err
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def check_speech(audio: np.ndarray | torch.Tensor, max_seconds: float = MAX_AUDIO_SECONDS) -> np.ndarray:
    """Validate 16 kHz mono speech (N,): float, finite, not empty, not silent, not too long."""
    audio = np.asarray(audio.detach().cpu() if isinstance(audio, torch.Tensor) else audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono 16 kHz with shape (N,), got shape {audio.shape}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"audio must be float in [-1, 1], got {audio.dtype} (convert int16 with x / 32768)")
    if len(audio) == 0:
        raise ValueError("audio is empty (0 samples)")
    if not np.isfinite(audio).all():
        raise ValueError("audio contains NaN or inf values")
    if len(audio) > max_seconds * SAMPLE_RATE:
        raise ValueError(f"audio is {len(audio) / SAMPLE_RATE:.1f} s long, over the limit of {max_seconds:g} s")
    peak = float(np.abs(audio).max())
    if peak < SILENCE_PEAK:
        raise ValueError(f"audio is silent (peak amplitude {peak:.2g} < {SILENCE_PEAK:g}): no speech to animate")
    return audio.astype(np.float32)


def load_speech(audio: str | Path | np.ndarray | torch.Tensor | None = None, text: str | None = None,
                voice: str = "en-us", max_seconds: float = MAX_AUDIO_SECONDS) -> np.ndarray:
    """Speech as 16 kHz mono float32 (N,): an audio file, a waveform, or text spoken by the world's TTS."""
    if (audio is None) == (text is None):
        raise ValueError("give either audio (a file or a 16 kHz waveform) or text, not both or neither")
    if text is not None:
        from vasa_lib.world.speech import synthesize

        if not text.strip():
            raise ValueError("text is empty: type something to say")
        audio = synthesize(text, voice=voice).audio
    elif isinstance(audio, (str, Path)):
        audio = read_audio(audio, max_seconds)
    return check_speech(audio, max_seconds)


# ----------------------------------------------------------------------------- labels

def provenance(settings: Settings | None = None) -> dict[str, str]:
    """mp4 metadata of a generated video: what made it, and that it shows no real recording."""
    note = (f"AI-generated video: a synthetic talking face made by vasa_lib {__version__} (a teaching "
            f"re-implementation of VASA-1) from one portrait and a speech clip. It is not a recording.")
    meta = {"comment": note, "title": LABEL_TEXT}
    if settings is not None:
        meta["description"] = json.dumps({"generator": f"vasa_lib {__version__}", **asdict(settings)})
    return meta


def label_mask(size: int) -> torch.Tensor:
    """The visible "AI-generated" mark, bottom left: (2, size, size) in [0, 1], a box behind the
    text and the text itself (anti-aliased)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=max(8, size // 14))
    box, text = Image.new("L", (size, size), 0), Image.new("L", (size, size), 0)
    left, top, right, bottom = ImageDraw.Draw(text).textbbox((0, 0), LABEL_TEXT, font=font)
    pad = max(1, size // 64)
    x, y = 2 * pad - left, size - 3 * pad - bottom
    ImageDraw.Draw(box).rectangle((pad, y + top - pad, x + right + pad, size - pad), fill=255)
    ImageDraw.Draw(text).text((x, y), LABEL_TEXT, fill=255, font=font)
    return torch.from_numpy(np.stack([np.asarray(box), np.asarray(text)]).astype(np.float32) / 255)


def stamp_label(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Frames (T, 3, H, W) with the mark (mask from `label_mask`): white text on a darkened box."""
    box, text = mask
    return frames * (1 - 0.55 * box) * (1 - text) + text


# ----------------------------------------------------------------------------- the pipeline

@dataclass
class Portrait:
    """A portrait encoded once (Sec. 3.1): image (1, 3, H, W); latent; canonical volume
    (1, C, D, h, w), cached for every frame; reconstruction (1, 3, H, W) of the image from its own
    latent; psnr (dB) and identity_similarity (identity network, reconstruction vs image) say how
    well the face model reads it; problem: why it cannot, or None."""

    image: torch.Tensor
    latent: FaceLatent
    canonical: torch.Tensor
    reconstruction: torch.Tensor
    embedding: torch.Tensor
    psnr: float
    identity_similarity: float
    problem: str | None


@dataclass
class Chunk:
    """Consecutive frames from `Talker.stream` or `Talker.frames`: frames (n, 3, H, W), their
    motion (n, D) and the index of the first frame in the clip."""

    frames: torch.Tensor
    motion: torch.Tensor
    start: int


@dataclass
class Generated:
    """A whole clip: frames (T, 3, H, W), motion (T, D), audio (N,) 16 kHz, seconds per stage."""

    frames: torch.Tensor
    motion: torch.Tensor
    audio: np.ndarray
    timings: dict[str, float]


@contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Run the block on n CPU threads. Our models are small (the motion transformer sees a few dozen
    tokens, the decoder 32 x 32 feature maps): OpenMP's synchronisation between threads costs more
    than it saves, up to 30x on a busy machine (measured: decoding 14 ms a frame on one thread,
    38 ms on two while another process uses the cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Talker:
    """The VASA-1 pipeline: portrait + speech + settings -> frames, offline or streaming.

    face: the face latent model; motion: the motion generator (its motion_dim must be 6 + the face
    model's dyn_dim); identity_net: scores how well a portrait is read and whether identity is kept.
    max_seconds: longest speech accepted; batch: frames decoded together (first_batch for the very
    first frames, to show them sooner); label: stamp the "AI-generated" mark on every frame (keep
    it on for anything you share); min_psnr, min_identity_similarity: when a portrait counts as
    unreadable (see `portrait`); threads: CPU threads of the models (1 is fastest for models this
    small, see `num_threads`).
    """

    def __init__(self, face: FaceModel, motion: MotionGenerator, identity_net: IdentityNet,
                 max_seconds: float = MAX_AUDIO_SECONDS, batch: int = 25, first_batch: int = 2,
                 label: bool = True,
                 min_psnr: float = MIN_PSNR, min_identity_similarity: float = MIN_IDENTITY_SIMILARITY,
                 threads: int = 1):
        if motion.motion_dim != 6 + face.config.dyn_dim:
            raise ValueError(f"the motion generator makes {motion.motion_dim} numbers per frame, the face model "
                             f"takes 6 + {face.config.dyn_dim}: they were not trained together")
        self.face, self.motion, self.identity_net = face.eval(), motion.eval(), identity_net.eval()
        self.max_seconds, self.batch, self.first_batch, self.label = max_seconds, batch, first_batch, label
        self.min_psnr, self.min_identity_similarity = min_psnr, min_identity_similarity
        self.threads = threads
        self.size = face.config.size
        self.mask = label_mask(self.size)
        self.timings: dict[str, float] = {}
        self._mouth_probe: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def from_checkpoints(cls, folder: str | Path | None = None, device: str = "cpu", **kwargs) -> Talker:
        """Load face.safetensors, motion.safetensors and identity_net.safetensors from `folder`
        (default: the shipped checkpoints, `vasa_lib.paths.checkpoints_dir()`)."""
        folder = checkpoints_dir() if folder is None else folder
        models = {}
        for name, model_class, config in (("face", FaceModel, "face"), ("motion", MotionGenerator, "motion"),
                                          ("identity_net", IdentityNet, "face_identity_net")):
            path = Path(folder) / f"{name}.safetensors"
            if not path.exists():
                command = (f"python -m vasa_lib.train {name.split('_')[0]} --config configs/{config}.toml "
                           f"--checkpoint {path}")
                raise FileNotFoundError(f"no checkpoint at {path}: train it with `{command}`")
            models[name] = load_checkpoint(path, model_class, device)
        return cls(models["face"], models["motion"], models["identity_net"], **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.face.parameters()).device

    def _tick(self, stage: str, start: float) -> float:
        """Add the seconds since `start` to timings[stage]; returns now."""
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - start
        return now

    # -- portrait (Sec. 3.1: encoded once, the canonical volume cached)

    @torch.inference_mode()
    def portrait(self, image: str | Path | np.ndarray | torch.Tensor | Portrait, strict: bool = True) -> Portrait:
        """Encode a portrait once. strict: raise ValueError if the face model cannot read it: a blank
        image, a reconstruction PSNR below `min_psnr` or an identity similarity (reconstruction vs
        image) below `min_identity_similarity`. This is no face detector: it asks whether the face
        model can reproduce the picture, which is what animating it needs."""
        if isinstance(image, Portrait):
            return image
        start = time.perf_counter()
        x = load_image(image, self.size).to(self.device)
        with num_threads(self.threads):
            latent = self.face.encode(x)
            canonical = self.face.canonical(latent)
            recon = self.face.render(canonical, latent.identity, latent.pose, latent.dynamics, source=latent)
            embedding = self.identity_net(x)
            similarity = float((self.identity_net(recon) * embedding).sum())
        psnr = float(-10 * torch.log10(F.mse_loss(recon, x).clamp_min(1e-10)))
        problem = None
        if float(x.std()) < MIN_CONTRAST:
            problem = f"the image is almost uniform (pixel std {float(x.std()):.3f}): there is no face in it"
        elif psnr < self.min_psnr:
            problem = f"the face model reconstructs it poorly (PSNR {psnr:.1f} dB < {self.min_psnr:g} dB)"
        elif similarity < self.min_identity_similarity:
            problem = (f"its reconstruction does not look like the same person (identity similarity "
                       f"{similarity:.2f} < {self.min_identity_similarity:g})")
        if problem and strict:
            raise ValueError(f"the face model cannot read this portrait: {problem}. {REAL_VIDEO_HINT}")
        self._tick("portrait", start)
        return Portrait(x, latent, canonical, recon, embedding, psnr, similarity, problem)

    # -- motion (Sec. 3.2-3.3)

    def _adjust(self, motion: torch.Tensor, settings: Settings) -> torch.Tensor:
        """Motion intensity: rotation and shift (yaw, pitch, roll, tx, ty) scaled around the training mean."""
        if settings.intensity == 1:
            return motion
        mean = self.motion.transformer.motion_mean[:5]
        return torch.cat([mean + settings.intensity * (motion[:, :5] - mean), motion[:, 5:]], dim=1)

    def check(self, settings: Settings) -> None:
        """Raise ValueError if a setting is impossible for this motion generator."""
        config = self.motion.transformer.config
        settings.check(config.diffusion_steps, config.window)

    def scales(self, settings: Settings) -> dict[str, float]:
        """The guidance scales a generation uses: the settings', or the motion checkpoint's own."""
        return self.motion.scales if settings.scales is None else settings.scales

    @torch.inference_mode()
    def motion_offline(self, audio: np.ndarray | torch.Tensor, settings: Settings) -> torch.Tensor:
        """Offline motion of a whole clip: 16 kHz speech (N,) -> [z_pose, z_dyn] (T, D), T = ceil(N / 640)."""
        audio = torch.from_numpy(check_speech(audio, self.max_seconds)).to(self.device)
        self.check(settings)
        start = time.perf_counter()
        with num_threads(self.threads):
            feats = self.motion.audio_features(audio)
            start = self._tick("audio_features", start)
            motion = generate(self.motion.transformer, feats, settings.controls(), settings.steps,
                              self.scales(settings), settings.seed, first_window=settings.first_window)
        self._tick("diffusion", start)
        return self._adjust(motion, settings)

    @torch.inference_mode()
    def motion_stream(self, audio: np.ndarray | torch.Tensor | Iterable[np.ndarray], settings: Settings
                      ) -> Iterator[torch.Tensor]:
        """Streaming motion: yields windows (n <= W, D) as soon as the audio they need has arrived.

        audio: the whole waveform or an iterable of 16 kHz chunks (N_i,) (e.g. from a microphone).
        Window [a, b) needs the audio of frames [a - M, b + M) (see the module docstring); only that
        is kept. The first window (settings.first_window frames, default W) has no previous one; each
        later one (W frames) is conditioned on the last K frames of motion and audio features before
        it. Same result as `motion_offline`.
        """
        self.check(settings)
        chunks = [audio] if isinstance(audio, (np.ndarray, torch.Tensor)) else audio
        t = self.motion.transformer
        k = t.config.context
        m = receptive_radius(self.motion.audio_encoder) + 1
        controls = settings.controls()
        generator = torch.Generator(self.device).manual_seed(settings.seed)
        buffer, buffer_start = np.zeros(0, np.float32), 0   # audio samples kept, and where they start
        total, prev_motion, prev_audio = 0, None, None
        bounds = windows(t.config.window, settings.first_window)
        a, b = next(bounds)

        def window(end: int | None) -> torch.Tensor:
            """Motion of frames [a, b) (cut at `end`, the clip's length, if the audio has ended)."""
            nonlocal prev_motion, prev_audio
            start = time.perf_counter()
            first = max(0, a - m)                               # first audio frame of the segment
            stop = None if end is not None else (b + m) * SAMPLES_PER_FRAME - buffer_start
            segment = torch.from_numpy(buffer[first * SAMPLES_PER_FRAME - buffer_start: stop]).to(self.device)
            with num_threads(self.threads):
                feats = self.motion.audio_features(segment)[a - first: b - first]           # (n, C_a)
                n = len(feats)
                feats = F.pad(rearrange(feats, "t c -> 1 c t"), (0, b - a - n), mode="replicate")   # as `generate` pads
                feats = rearrange(feats, "1 c t -> 1 t c")
                start = self._tick("audio_features", start)
                motion = generate_window(t, feats, controls, prev_motion, prev_audio, settings.steps,
                                         self.scales(settings), 0.0, generator)
            self._tick("diffusion", start)
            if k > 0:
                prev_motion, prev_audio = motion[:, -k:], feats[:, -k:]
            return self._adjust(motion[0, :n], settings)

        for chunk in chunks:
            chunk = np.asarray(chunk.detach().cpu() if isinstance(chunk, torch.Tensor) else chunk, np.float32)
            if chunk.ndim != 1 or not np.isfinite(chunk).all():
                raise ValueError("audio chunks must be finite mono 16 kHz waveforms (N,)")
            total += len(chunk)
            if total > self.max_seconds * SAMPLE_RATE:
                raise ValueError(f"audio is longer than the limit of {self.max_seconds:g} s")
            buffer = np.concatenate([buffer, chunk])
            while buffer_start + len(buffer) >= (b + m) * SAMPLES_PER_FRAME:
                yield window(None)
                a, b = next(bounds)
                drop = max(0, a - m) * SAMPLES_PER_FRAME - buffer_start   # audio no window needs any more
                buffer, buffer_start = buffer[drop:], buffer_start + drop
        if total == 0:
            raise ValueError("audio is empty (0 samples)")
        while a < n_video_frames(total):
            yield window(n_video_frames(total))
            a, b = next(bounds)

    # -- frames (Sec. 3.1 decoder, batched)

    @torch.inference_mode()
    def render(self, portrait: Portrait, motion: torch.Tensor) -> torch.Tensor:
        """Frames (n, 3, H, W) of the portrait's person with motion (n, 6 + dyn_dim), one batch."""
        start = time.perf_counter()
        n = len(motion)
        canonical = repeat(portrait.canonical, "1 ... -> n ...", n=n)
        identity = repeat(portrait.latent.identity, "1 d -> n d", n=n)
        with num_threads(self.threads):
            frames = self.face.render(canonical, identity, motion[:, :6], motion[:, 6:], source=portrait.latent)
        if self.label:
            frames = stamp_label(frames, self.mask.to(frames.device))
        self._tick("decoding", start)
        return frames

    def frames(self, portrait: Portrait, motion: Iterable[torch.Tensor]) -> Iterator[Chunk]:
        """Decode motion (T, D) or windows of it [(n, D)] in batches of at most `batch` frames; the
        first `first_batch` frames go alone, so that the first frame shows sooner."""
        start = 0
        for block in motion:
            i = 0
            while i < len(block):
                part = block[i: i + (self.first_batch if start == 0 else self.batch)]
                yield Chunk(self.render(portrait, part), part, start)
                i, start = i + len(part), start + len(part)

    def stream(self, image: str | Path | np.ndarray | torch.Tensor | Portrait,
               audio: np.ndarray | torch.Tensor | Iterable[np.ndarray], settings: Settings | None = None
               ) -> Iterator[Chunk]:
        """Streaming generation: frames window by window as the audio arrives (see `motion_stream`)."""
        portrait = self.portrait(image)
        if isinstance(audio, (np.ndarray, torch.Tensor)):
            audio = check_speech(audio, self.max_seconds)
        return self.frames(portrait, self.motion_stream(audio, settings or Settings()))

    def generate(self, image: str | Path | np.ndarray | torch.Tensor | Portrait, audio: np.ndarray | torch.Tensor,
                 settings: Settings | None = None) -> Generated:
        """Offline generation of a whole (short) clip, all frames in memory: see `write` for long ones."""
        self.timings = {}
        portrait = self.portrait(image)
        audio = check_speech(audio, self.max_seconds)
        motion = self.motion_offline(audio, settings or Settings())
        frames = torch.cat([c.frames for c in self.frames(portrait, [motion])])
        return Generated(frames, motion, audio, dict(self.timings))

    def write(self, path: str | Path, image: str | Path | np.ndarray | torch.Tensor | Portrait,
              audio: np.ndarray | torch.Tensor, settings: Settings | None = None, streaming: bool = False) -> Path:
        """Generate and write an mp4 with the sound, frames decoded and encoded batch by batch
        (memory flat however long the audio), atomically, with the provenance note in its metadata."""
        settings = settings or Settings()
        portrait = self.portrait(image)
        audio = check_speech(audio, self.max_seconds)
        motion = self.motion_stream(audio, settings) if streaming else [self.motion_offline(audio, settings)]
        chunks = (c.frames for c in self.frames(portrait, motion))
        return write_video(path, chunks, audio, metadata=provenance(settings))

    # -- measures

    @torch.inference_mode()
    def mouth_opening(self, motion: torch.Tensor) -> torch.Tensor:
        """The world's jaw_open (T,) read from generated motion (T, 6 + dyn_dim) by a linear probe.

        z_dyn has no named axes, so a ridge regression from z_dyn to the true jaw opening is fitted
        once, on the face model's codes of 512 world renders: random people and expressions, head
        poses drawn around the front view with the world's natural spread (z_dyn also carries some
        pose, so a probe fitted on extreme poses reads the pose instead of the mouth).
        """
        if self._mouth_probe is None:
            g = torch.Generator().manual_seed(0)
            ids = torch.randint(0, 10_000, (512,), generator=g)
            _, dynamics = random_motion(512, g)
            pose = (NEUTRAL_POSE + POSE_SPREAD * torch.randn(512, len(POSE_SPREAD), generator=g)).clamp(
                POSE_LIMITS[:, 0], POSE_LIMITS[:, 1])
            images = render_world(identity_from_id(ids.tolist()), pose, dynamics, size=self.size).to(self.device)
            with num_threads(self.threads):
                _, z = self.face.encode_motion(images)
            self._mouth_probe = ridge(z, dynamics[:, [dyn_index("jaw_open")]].to(z.device), alpha=1e-3)
        weight, bias = self._mouth_probe
        return (motion[:, 6:] @ weight + bias)[:, 0]

    @torch.inference_mode()
    def identity_similarity(self, portrait: Portrait, frames: torch.Tensor) -> torch.Tensor:
        """Identity-network cosine similarity of each frame (T, 3, H, W) to the portrait: (T,)."""
        with num_threads(self.threads):
            return self.identity_net(frames) @ portrait.embedding[0]
