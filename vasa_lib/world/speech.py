"""Speech for the synthetic world: text -> 16 kHz audio with phoneme timings.

VASA-1 is driven by recorded speech (paper Sec. 3.2 takes Wav2Vec2 features of real audio). Our
world needs speech whose every phoneme is known in time, so that mouth motion can be generated
from it (`vasa_lib.world.articulation`) and lip sync can be graded exactly. We get both from
eSpeak NG, a formant text-to-speech engine, called through ctypes:

- the `espeakng-loader` wheel ships `libespeak-ng` and its data; we initialise it lazily, in
  synchronous mode with phoneme events that carry IPA symbols, so one viseme table serves
  every language;
- a synth callback collects the audio (22050 Hz, int16) and the events; each phoneme event
  gives the sample at which the phoneme starts;
- the audio is resampled to 16 kHz mono float32 in [-1, 1] and the phonemes become contiguous
  intervals that tile [0, duration].

One timing quirk is corrected. eSpeak emits the silent closure of a stop (the lips shut before
the /p/ of "papa") *before* the stop's event, so by the raw events the closure belongs to the
previous phoneme. We give a run of silence that ends where a phoneme starts to that phoneme
(up to `MAX_CLOSURE` seconds), which puts the lips' closure where the silence is.

Repeatability: eSpeak carries a little state from one utterance to the next (the phase of its
pitch "flutter", an echo buffer), so the same text spoken twice in one process may come out with
boundaries a pitch period apart. Where the operating system can fork (Linux, macOS), each
utterance is therefore synthesised in a forked child of a process that never synthesises
itself: every utterance starts from the same engine state, and the same text gives the same
samples, whatever was spoken before. Elsewhere synthesis runs in-process (repeatable to ~10 ms).
Variants with breath noise ("Alicia", "f2", "f3", "f5") draw it from eSpeak's own random
generator, which `espeak_Initialize` seeds with the clock (`espeak_srand(time(NULL))`): left so,
one clip's audio, and the phoneme times read from its silences, differ from one process or
machine to the next. Every utterance therefore first reseeds it with
`espeak_ng_SetRandSeed(RAND_SEED)`.

eSpeak NG is GPL-3.0 software; we only load the shared library shipped by `espeakng-loader`.
The engine is a process-wide singleton, so synthesis is serialised by a lock.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import resample_poly

from vasa_lib.world.params import SAMPLE_RATE

PAUSE = "_"                 # symbol of a silent interval (espeak's pause phonemes have no name)
MAX_TEXT_CHARS = 2000
RATE_RANGE = (80, 450)      # words per minute, espeakRATE_MINIMUM .. espeakRATE_MAXIMUM
PITCH_RANGE = (0, 100)      # espeakPITCH and espeakRANGE, 50 = the voice's normal
SILENCE_LEVEL = 0.01       # audio whose 2 ms peak envelope stays below this is silent
MAX_CLOSURE = 0.08          # seconds of preceding silence a phoneme may claim as its closure
MIN_PHONEME = 0.01          # seconds a phoneme always keeps when its successor claims silence
RAND_SEED = 0               # eSpeak's noise generator is reseeded with this before every utterance

TRAIN_VOICES: list[str] = [
    "en-us+m1", "en-us+m3", "en-us+f1", "en-us+f3", "en-us+Andy",
    "en+m2", "en+f2", "en-gb-x-rp+m4", "en-gb-x-rp+Annie",
    "en-gb-scotland+m5", "en-gb-scotland+f5", "en-029+m6", "en-029+Alicia",
    "en-gb-x-gbclan+m7",
]
TEST_VOICES: list[str] = ["en-us-nyc+f4", "en-gb-x-gbcwmd+m8"]   # accents and variants unseen in training
FOREIGN_VOICES: list[str] = ["de+m3", "de+f2"]                 # German: out-of-distribution speech

# ----------------------------------------------------------------------------------------------
# The espeak-ng C API (speak_lib.h), as much of it as we use.

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),   # milliseconds
        ("sample", ctypes.c_int),           # sample index in the native-rate audio
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))


class _Engine:
    """The loaded library, its native sample rate, the known variants and the callback buffers."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        data = str(espeakng_loader.get_data_path()).encode()
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA
        self.native_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, options)
        if self.native_rate <= 0:
            raise RuntimeError("libespeak-ng failed to initialise")
        self.lib = lib
        self.variants = self._variant_names()
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[int, str]] = []          # (native sample, raw IPA name)
        self.callback = _SynthCallback(self._collect)    # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self.callback)

    def _variant_names(self) -> set[str]:
        """File names of espeak's voice variants ("m3", "f2", "Annie", ...)."""
        spec = _Voice(languages=b"variant")
        listed = self.lib.espeak_ListVoices(ctypes.byref(spec))
        names, i = set(), 0
        while listed[i]:
            names.add(Path(listed[i].contents.identifier.decode()).name)
            i += 1
        return names

    def _collect(self, wav, n_samples: int, events) -> int:
        if n_samples > 0 and wav:
            self.chunks.append(np.ctypeslib.as_array(wav, (n_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_PHONEME:
                name = events[i].id.string.decode("utf-8", errors="ignore")
                self.events.append((events[i].sample, name))
            i += 1
        return 0   # 0 = continue synthesis

    def _speak_here(self, text: str, voice: str, settings: dict[int, int]) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """Set the voice and parameters, speak: int16 audio at the native rate and events."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ValueError(f"unknown voice {voice.partition('+')[0]!r} "
                             "(espeak-ng has no voice or language of that name)")
        for param, value in settings.items():
            self.lib.espeak_SetParameter(param, value, 0)
        self.chunks, self.events = [], []
        self.lib.espeak_ng_SetRandSeed(RAND_SEED)
        data = text.encode("utf-8")
        if self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None) != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed for {text!r}")
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        return audio, self.events

    def speak(self, text: str, voice: str, settings: dict[int, int]) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """Raw synthesis with a voice ("en-us+m3") and parameters {espeak parameter: value}.

        Runs in a forked child where possible, so that this process's engine stays as it was
        right after initialisation and every utterance starts from the same state.
        """
        base, _, variant = voice.partition("+")
        if variant and variant not in self.variants:
            raise ValueError(f"unknown voice variant {variant!r} in voice {voice!r}; "
                             f"known variants include {sorted(self.variants)[:12]}")
        if not hasattr(os, "fork"):
            return self._speak_here(text, voice, settings)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: speak, send the result (or the error) to the parent, exit
            try:
                os.close(read_fd)
                try:
                    audio, events = self._speak_here(text, voice, settings)
                    header = {"events": events}
                except (ValueError, RuntimeError) as error:
                    audio, header = np.zeros(0, np.int16), {"error": str(error), "kind": type(error).__name__}
                encoded = json.dumps(header).encode()
                with os.fdopen(write_fd, "wb") as pipe:
                    pipe.write(len(encoded).to_bytes(8, "little") + encoded + audio.astype("<i2").tobytes())
            finally:
                os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            payload = pipe.read()
        os.waitpid(pid, 0)
        if len(payload) < 8:
            raise RuntimeError(f"espeak synthesis crashed for {text!r}")
        size = int.from_bytes(payload[:8], "little")
        header = json.loads(payload[8 : 8 + size])
        if "error" in header:
            raise (ValueError if header["kind"] == "ValueError" else RuntimeError)(header["error"])
        events = [(int(sample), str(name)) for sample, name in header["events"]]
        return np.frombuffer(payload[8 + size :], dtype="<i2").copy(), events


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    """The process-wide engine, created on first use (call with `_LOCK` held)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


# ----------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class Phoneme:
    """One phoneme: IPA symbol without stress marks (or `PAUSE`), interval in seconds."""

    symbol: str
    start: float
    end: float
    stressed: bool = False   # carries primary stress (ˈ)

    @property
    def centre(self) -> float:
        """Middle of the interval, in seconds."""
        return 0.5 * (self.start + self.end)


@dataclass
class Speech:
    """A synthesised utterance: audio (N,) float32 at `sample_rate` and its phonemes.

    The phonemes tile the audio: the first starts at 0, each ends where the next starts, the
    last ends at `duration`; silences are `PAUSE` phonemes.
    """

    text: str
    voice: str
    audio: np.ndarray
    phonemes: list[Phoneme]
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        """Length of the audio in seconds."""
        return len(self.audio) / self.sample_rate


def _check_inputs(text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> None:
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty (or only whitespace)")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text is too long: {len(text)} characters > MAX_TEXT_CHARS = {MAX_TEXT_CHARS}")
    if not isinstance(voice, str) or not voice.strip():
        raise ValueError(f"voice must be a non-empty str such as 'en-us+m3', got {voice!r}")
    for name, value, (low, high) in [("rate", rate, RATE_RANGE), ("pitch", pitch, PITCH_RANGE),
                                     ("pitch_range", pitch_range, PITCH_RANGE)]:
        if not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")


LANGUAGE_SWITCH = re.compile(r"\([a-z-]+\)")      # eSpeak's "(en)", "(de)": the voice switched language


def _phoneme_starts(audio: np.ndarray, events: list[tuple[int, str]],
                    native_rate: int) -> list[tuple[float, str, bool]]:
    """Raw events -> phoneme starts in seconds, strictly increasing: (start, symbol, stressed).

    audio: (N,) int16 at `native_rate`. Steps:
    1. an event with no samples of its own (several at one sample, or one at the very end) is
       dropped;
    2. language-switch marks such as "(en)" (a German voice reading an English word) are dropped
       from names; events without an IPA name are pauses when their audio is mostly silent; the
       others are short linking sounds between vowels ("the_engine"), which join the previous
       phoneme; consecutive pauses merge;
    3. a run of silence (peak envelope below `SILENCE_LEVEL`) that ends where a phoneme starts
       is that phoneme's closure (at most `MAX_CLOSURE`, leaving the previous phoneme at least
       `MIN_PHONEME`);
    4. a pause is added at 0 if the first phoneme starts later.
    """
    n = len(audio)
    events = sorted((min(max(sample, 0), n), name) for sample, name in events)
    events = [e for e, later in zip(events, events[1:] + [(n, "")]) if e[0] < later[0]]
    envelope = maximum_filter1d(np.abs(audio.astype(np.float32)) / 32768.0, round(0.002 * native_rate))
    silent = envelope < SILENCE_LEVEL
    starts: list[list] = []                                  # [sample, symbol, stressed]
    for (sample, name), (end, _) in zip(events, events[1:] + [(n, "")]):
        symbol = LANGUAGE_SWITCH.sub("", name).replace("ˈ", "").replace("ˌ", "")
        if not symbol:
            if silent[sample:end].mean() < 0.5 or (starts and starts[-1][1] == PAUSE):
                continue
            symbol = PAUSE
        starts.append([sample, symbol, "ˈ" in name])

    # speech_until[k] = 1 + index of the last non-silent sample at or before k (0 if none)
    speech_until = np.maximum.accumulate(np.where(silent, 0, np.arange(1, n + 1)))
    max_closure, min_keep = round(MAX_CLOSURE * native_rate), round(MIN_PHONEME * native_rate)
    for i, (sample, symbol, _) in enumerate(starts):
        if symbol != PAUSE and sample > 0:
            floor = max(sample - max_closure, starts[i - 1][0] + min_keep if i else 0)
            starts[i][0] = min(sample, max(floor, int(speech_until[sample - 1])))
    if starts and starts[0][0] > 0:
        starts.insert(0, [0, PAUSE, False])
    return [(sample / native_rate, symbol, stressed) for sample, symbol, stressed in starts]


def _resample(audio: np.ndarray, native_rate: int) -> np.ndarray:
    """(N,) int16 at `native_rate` -> (M,) float32 in [-1, 1] at `SAMPLE_RATE`."""
    g = np.gcd(SAMPLE_RATE, native_rate)
    resampled = resample_poly(audio.astype(np.float32) / 32768.0, SAMPLE_RATE // g, native_rate // g)
    return np.clip(resampled, -1.0, 1.0).astype(np.float32)


def synthesize(text: str, voice: str = "en-us", rate: int = 170, pitch: int = 50,
               pitch_range: int = 50) -> Speech:
    """Speak `text` with an eSpeak NG voice ("en-us", "en-us+m3", "en+f2", "de", ...).

    rate: words per minute in [80, 450]; pitch, pitch_range: in [0, 100], 50 = the voice's normal.
    Returns a `Speech` whose audio is (N,) float32 in [-1, 1] at 16 kHz.
    Raises ValueError for bad text, an unknown voice or variant, or out-of-range parameters.
    """
    _check_inputs(text, voice, rate, pitch, pitch_range)
    with _LOCK:
        engine = _engine()
        settings = {_PARAM_RATE: int(rate), _PARAM_PITCH: int(pitch), _PARAM_RANGE: int(pitch_range)}
        raw_audio, events = engine.speak(text, voice, settings)
        native_rate = engine.native_rate
    starts = _phoneme_starts(raw_audio, events, native_rate)
    if not any(symbol != PAUSE for _, symbol, _ in starts):
        raise ValueError(f"text is unsynthesisable: {text!r} produced no speech sounds")
    audio = _resample(raw_audio, native_rate)
    duration = len(audio) / SAMPLE_RATE
    ends = [s for s, _, _ in starts[1:]] + [duration]
    phonemes = [Phoneme(symbol, start, end, stressed)
                for (start, symbol, stressed), end in zip(starts, ends)]
    return Speech(text=text, voice=voice, audio=audio, phonemes=phonemes)


def sample_voice(rng: np.random.Generator, split: str = "train") -> dict:
    """Random speaker settings for a split ("train", "test" or "foreign").

    Returns keyword arguments for `synthesize`: voice, rate (140-200 wpm), pitch and
    pitch_range (30-70), so `synthesize(text, **sample_voice(rng, "train"))` speaks a sentence.
    """
    voices = {"train": TRAIN_VOICES, "test": TEST_VOICES, "foreign": FOREIGN_VOICES}
    if split not in voices:
        raise ValueError(f"unknown split {split!r}; use one of {sorted(voices)}")
    return {
        "voice": str(rng.choice(voices[split])),
        "rate": int(rng.integers(140, 201)),
        "pitch": int(rng.integers(30, 71)),
        "pitch_range": int(rng.integers(30, 71)),
    }

