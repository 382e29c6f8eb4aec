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

Repeatability: every utterance is spoken from the engine's freshly initialised state, with its
noise generator reseeded, so the same text gives the same samples in any process and after any
other text (`vasa_lib.world.espeak` says how: a single-threaded server process forks per utterance).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import resample_poly

from vasa_lib.world import espeak
from vasa_lib.world.params import SAMPLE_RATE

PAUSE = "_"                 # symbol of a silent interval (espeak's pause phonemes have no name)
MAX_TEXT_CHARS = 2000
RATE_RANGE = (80, 450)      # words per minute, espeakRATE_MINIMUM .. espeakRATE_MAXIMUM
PITCH_RANGE = (0, 100)      # espeakPITCH and espeakRANGE, 50 = the voice's normal
SILENCE_LEVEL = 0.01       # audio whose 2 ms peak envelope stays below this is silent
MAX_CLOSURE = 0.08          # seconds of preceding silence a phoneme may claim as its closure
MIN_PHONEME = 0.01          # seconds a phoneme always keeps when its successor claims silence

TRAIN_VOICES: list[str] = [
    "en-us+m1", "en-us+m3", "en-us+f1", "en-us+f3", "en-us+Andy",
    "en+m2", "en+f2", "en-gb-x-rp+m4", "en-gb-x-rp+Annie",
    "en-gb-scotland+m5", "en-gb-scotland+f5", "en-029+m6", "en-029+Alicia",
    "en-gb-x-gbclan+m7",
]
TEST_VOICES: list[str] = ["en-us-nyc+f4", "en-gb-x-gbcwmd+m8"]   # accents and variants unseen in training
FOREIGN_VOICES: list[str] = ["de+m3", "de+f2"]                 # German: out-of-distribution speech
# Many voices, for training on more than the 14 (issue 19; `clips.make_clip(..., voices="many")`):
# eSpeak NG's English accents and human voice variants, less the test voices' accents (nyc, gbcwmd)
# and variants (f4, m8). 6 x 76 = 456 voices, the 14 training voices among them.
MANY_ACCENTS: list[str] = ["en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan"]
MANY_VARIANTS: list[str] = """
    m1 m2 m3 m4 m5 m6 m7 f1 f2 f3 f5 Alex Alicia Andrea Andy Annie AnxiousAndy Denis Diogo Gene Gene2
    Henrique Hugo Jacky Lee Marco Mario Michael Mike Nguyen Reed Storm adam anika announcer antonio aunty
    belinda benjamin boris caleb david ed edward edward2 grandma grandpa gustave ian iven iven2 iven3 iven4
    john kaukovalta linda marcelo max michel miguel mike2 norbert pablo paul pedro quincy rob robert sandro
    shelby steph steph2 steph3 travis victor zac""".split()
MANY_VOICES: list[str] = [f"{accent}+{variant}" for accent in MANY_ACCENTS for variant in MANY_VARIANTS]

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
    raw_audio, events, native_rate = espeak.speak(text, voice, rate, pitch, pitch_range)
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

