"""Articulation: phonemes -> mouth trajectories (the world's ground-truth lip motion).

This is not part of VASA-1. VASA-1 learns mouth motion from real videos; our synthetic world
needs a mouth that moves with its speech, so that a model can learn (and we can grade) lip sync.
We write that mapping down by hand, in two steps.

1. Visemes. Every phoneme has a target for the five mouth dynamics of
   `params.DYNAMICS_NAMES[:5]`: jaw_open [0, 1], lip_spread [-1, 1], lip_round [0, 1],
   lip_close [0, 1] and tongue [0, 1] (teeth and tongue visible). Vowels get their target from
   their IPA features: height opens the jaw, front unrounded vowels spread the lips, rounded
   vowels round them. Consonants get the target of their place of articulation: bilabials
   /p b m/ close the lips, labiodentals /f v/ put the lower lip to the teeth, dentals /θ ð/
   show the tongue, and so on. The symbols come from eSpeak NG in IPA, so one table serves
   every language. A symbol is normalised first (stress, length and diacritics dropped) and
   split into its parts: a diphthong /aɪ/ glides from /a/ to /ɪ/, an affricate /tʃ/ is /t/
   then /ʃ/, each part taking an equal share of the phoneme's time.

2. Coarticulation (Cohen & Massaro, 1993). Real mouths never jump from target to target:
   neighbouring phonemes overlap and blend. Each segment i has a target T_i, a centre t_i and
   a dominance that falls off with distance in time,

        D_i(t) = alpha_i * exp(-theta_i |t - t_i|^c),   theta_i = 1 / width_i^c,

   and the trajectory is the dominance-weighted average  y(t) = sum_i D_i T_i / sum_i D_i.
   alpha is given per mouth parameter, so a segment can insist on some parameters and leave
   the others to its neighbours: /p/ dominates lip closure strongly (the lips really close)
   but leaves lip rounding free (the /p/ of "pool" is rounded); /h/ dominates nothing and takes
   the shape of the vowel after it. Silence is a rest target. Segments longer than
   `MAX_SEGMENT` are split into copies, so a long vowel or pause holds its target throughout.

The trajectory is sampled at frame centres, (k + 1/2) / fps. Being a weighted average of
in-range targets, it stays inside `params.DYNAMICS_RANGES`.
"""

from __future__ import annotations

import math
import unicodedata

import numpy as np

from vasa_lib.world.params import DYNAMICS_NAMES, FPS
from vasa_lib.world.speech import PAUSE, Phoneme

MOUTH_NAMES = DYNAMICS_NAMES[:5]   # jaw_open, lip_spread, lip_round, lip_close, tongue
REST = np.array([0.02, 0.0, 0.0, 0.5, 0.0])   # relaxed: jaw nearly shut, lips lightly together
REST.flags.writeable = False
EXPONENT = 2.0         # c in the dominance function
MAX_SEGMENT = 0.08     # seconds; longer segments are split into copies of themselves
STRESS_JAW = 1.2       # stressed vowels open the jaw this much wider

# Vowels by IPA features: (height 0 close .. 1 open, backness 0 front .. 1 back, rounding 0 .. 1)
VOWELS: dict[str, tuple[float, float, float]] = {
    "i": (0.0, 0.0, 0.0), "y": (0.0, 0.0, 1.0), "ɨ": (0.0, 0.5, 0.0), "ʉ": (0.0, 0.5, 1.0),
    "ɯ": (0.0, 1.0, 0.0), "u": (0.0, 1.0, 1.0),
    "ɪ": (0.17, 0.1, 0.0), "ʏ": (0.17, 0.1, 1.0), "ᵻ": (0.17, 0.5, 0.0), "ʊ": (0.17, 0.9, 1.0),
    "e": (0.33, 0.0, 0.0), "ø": (0.33, 0.0, 1.0), "ɘ": (0.33, 0.5, 0.0), "ɵ": (0.33, 0.5, 1.0),
    "ɤ": (0.33, 1.0, 0.0), "o": (0.33, 1.0, 1.0),
    "ə": (0.5, 0.5, 0.0), "ɚ": (0.5, 0.5, 0.4), "ɝ": (0.6, 0.5, 0.4),
    "ɛ": (0.67, 0.0, 0.0), "œ": (0.67, 0.0, 1.0), "ɜ": (0.67, 0.5, 0.0), "ɞ": (0.67, 0.5, 1.0),
    "ʌ": (0.67, 1.0, 0.0), "ɔ": (0.67, 1.0, 1.0),
    "æ": (0.83, 0.0, 0.0), "ɐ": (0.83, 0.5, 0.0),
    "a": (1.0, 0.0, 0.0), "ɶ": (1.0, 0.0, 1.0), "ɑ": (1.0, 1.0, 0.0), "ɒ": (1.0, 1.0, 1.0),
}

# Consonants by place of articulation: symbols and target (jaw, spread, round, close, tongue).
# Modifier letters count as the sound they stand for (ʲ palatalised, ʷ labialised, ʰ aspirated).
CONSONANTS: dict[str, tuple[str, tuple[float, float, float, float, float]]] = {
    "bilabial":     ("pbmɸβʙ",          (0.04, 0.0, 0.0, 1.0, 0.0)),
    "labiodental":  ("fvɱʋ",            (0.12, 0.1, 0.0, 0.6, 0.5)),
    "dental":       ("θð",              (0.2, 0.2, 0.0, 0.0, 1.0)),
    "alveolar":     ("tdnɾrʈɖɳɽ",       (0.2, 0.15, 0.0, 0.0, 0.4)),
    "lateral":      ("lɫɬɮɭʎɺ",         (0.3, 0.15, 0.0, 0.0, 0.7)),
    "sibilant":     ("szʂʐ",            (0.12, 0.4, 0.0, 0.0, 0.6)),
    "postalveolar": ("ʃʒɕʑ",            (0.12, -0.4, 0.7, 0.0, 0.5)),
    "rhotic":       ("ɹɻ˞",             (0.2, -0.2, 0.45, 0.0, 0.2)),
    "palatal":      ("jçʝɲcɟʲ",         (0.15, 0.5, 0.0, 0.0, 0.3)),
    "velar":        ("kgɡŋxɣɰ",         (0.3, 0.1, 0.0, 0.0, 0.1)),
    "uvular":       ("qɢɴχʁʀħʕ",        (0.35, 0.0, 0.0, 0.0, 0.05)),
    "glottal":      ("hɦʔʰ",            (0.3, 0.05, 0.0, 0.0, 0.1)),
    "labial":       ("wʍʷ",             (0.1, -0.8, 1.0, 0.0, 0.0)),
    "labiopalatal": ("ɥ",               (0.1, -0.6, 0.9, 0.0, 0.1)),
}

# Dominance of each class: alpha per mouth parameter (jaw, spread, round, close, tongue), width (s)
DOMINANCE: dict[str, tuple[tuple[float, float, float, float, float], float]] = {
    "rest":         ((1.0, 1.0, 1.0, 1.0, 1.0), 0.06),
    "vowel":        ((1.0, 1.0, 1.0, 1.0, 1.0), 0.06),
    "bilabial":     ((0.5, 0.3, 0.2, 20.0, 0.3), 0.035),
    "labiodental":  ((0.5, 0.3, 0.2, 6.0, 4.0), 0.04),
    "dental":       ((0.6, 0.3, 0.2, 1.0, 6.0), 0.04),
    "alveolar":     ((0.8, 0.3, 0.2, 1.0, 1.5), 0.04),
    "lateral":      ((0.8, 0.3, 0.2, 1.0, 2.0), 0.04),
    "sibilant":     ((1.5, 1.0, 0.5, 1.0, 2.0), 0.04),
    "postalveolar": ((1.5, 2.0, 3.0, 1.0, 2.0), 0.04),
    "rhotic":       ((0.8, 1.0, 1.5, 1.0, 1.0), 0.04),
    "palatal":      ((0.8, 1.0, 0.5, 1.0, 1.0), 0.04),
    "velar":        ((0.6, 0.2, 0.2, 1.0, 0.5), 0.04),
    "uvular":       ((0.6, 0.2, 0.2, 1.0, 0.5), 0.04),
    "glottal":      ((0.1, 0.1, 0.1, 0.3, 0.1), 0.04),
    "labial":       ((0.6, 4.0, 4.0, 1.0, 0.5), 0.05),
    "labiopalatal": ((0.6, 3.0, 3.0, 1.0, 0.5), 0.05),
}

IGNORED = set("ˈˌːˑ:.‿|‖-ʼ")   # stress, length, syllable and tie marks (combining marks also go)


def _vowel_target(height: float, backness: float, rounding: float) -> np.ndarray:
    """Mouth target of a vowel from its IPA features, shape (5,)."""
    jaw = 0.15 + 0.75 * height
    round_ = rounding * (0.9 - 0.4 * height)
    spread = (1 - rounding) * (0.7 - 0.4 * height) * (1 - 0.6 * backness) - 0.8 * round_
    tongue = 0.3 * (1 - rounding) * (1 - backness)
    return np.array([jaw, spread, round_, 0.0, tongue])


def _build_table() -> dict[str, tuple[np.ndarray, str]]:
    """Every known base symbol -> (target (5,), dominance class)."""
    table = {PAUSE: (REST, "rest")}
    table.update({v: (_vowel_target(*features), "vowel") for v, features in VOWELS.items()})
    for place, (symbols, target) in CONSONANTS.items():
        table.update({s: (np.array(target), place) for s in symbols})
    return table


_TABLE = _build_table()


def components(symbol: str) -> list[str]:
    """Split an IPA symbol into base symbols: "ˈaɪə" -> ["a", "ɪ", "ə"], "t̪ʃ" -> ["t", "ʃ"].

    Stress and length marks, tie bars and diacritics are dropped. Raises ValueError if a part
    is not in the viseme table (or nothing is left).
    """
    if not isinstance(symbol, str):
        raise ValueError(f"phoneme symbol must be a str, got {type(symbol).__name__}")
    if symbol == PAUSE:
        return [PAUSE]
    parts = [ch for ch in unicodedata.normalize("NFD", symbol)
             if not unicodedata.combining(ch) and ch not in IGNORED]
    unknown = [ch for ch in parts if ch not in _TABLE]
    if unknown or not parts:
        raise ValueError(f"unknown phoneme symbol {symbol!r}: no viseme for {unknown or 'an empty symbol'}")
    return parts


def viseme(symbol: str) -> np.ndarray:
    """Mouth target of an IPA symbol, shape (5,) in the order of `MOUTH_NAMES`.

    For a diphthong or affricate it is the mean of its parts' targets. Raises ValueError for an
    unknown symbol.
    """
    return np.mean([_TABLE[part][0] for part in components(symbol)], axis=0)


def _segments(phonemes: list[Phoneme], total: float) -> list[tuple[float, float, str, bool]]:
    """(start, end, base symbol, stressed) covering [0, total]: phonemes split into their parts,
    gaps filled with pauses, and everything longer than `MAX_SEGMENT` split into copies."""
    pieces, now = [], 0.0
    for p in phonemes:
        if not p.start <= p.end or p.start < now - 1e-9:
            raise ValueError(f"phonemes must be in time order with start <= end; got {p} after t = {now:.3f}")
        if p.start > now:
            pieces.append((now, p.start, PAUSE, False))
        parts = components(p.symbol)
        step = (p.end - p.start) / len(parts)
        pieces += [(p.start + k * step, p.start + (k + 1) * step, part, p.stressed)
                   for k, part in enumerate(parts)]
        now = p.end
    if total > now:
        pieces.append((now, total, PAUSE, False))
    segments = []
    for start, end, part, stressed in pieces:
        n = max(1, math.ceil((end - start) / MAX_SEGMENT))
        step = (end - start) / n
        segments += [(start + k * step, start + (k + 1) * step, part, stressed) for k in range(n)]
    return segments


def articulate(phonemes: list[Phoneme], n_frames: int, fps: int = FPS) -> np.ndarray:
    """Mouth trajectory of an utterance: (n_frames, 5) float32, columns `MOUTH_NAMES`.

    phonemes: in time order (as `speech.synthesize` returns them); time they do not cover is
    silence. Frame k shows the mouth at time (k + 1/2) / fps. Deterministic.
    """
    if not isinstance(n_frames, (int, np.integer)) or n_frames < 0:
        raise ValueError(f"n_frames must be an int >= 0, got {n_frames!r}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    segments = _segments(phonemes, n_frames / fps)
    if not segments:
        return np.zeros((0, len(MOUTH_NAMES)), np.float32)
    centres = np.array([0.5 * (s + e) for s, e, _, _ in segments])                 # (S,)
    targets = np.stack([_TABLE[part][0] for _, _, part, _ in segments])           # (S, 5)
    stressed_vowel = np.array([st and _TABLE[part][1] == "vowel" for _, _, part, st in segments])
    targets[stressed_vowel, 0] = np.minimum(1.0, targets[stressed_vowel, 0] * STRESS_JAW)
    alpha = np.array([DOMINANCE[_TABLE[part][1]][0] for _, _, part, _ in segments])  # (S, 5)
    width = np.array([DOMINANCE[_TABLE[part][1]][1] for _, _, part, _ in segments])  # (S,)

    times = (np.arange(n_frames) + 0.5) / fps                                      # (F,)
    shape = np.exp(-(np.abs(times[:, None] - centres[None]) / width) ** EXPONENT)   # (F, S)
    trajectory = (shape @ (alpha * targets)) / (shape @ alpha)                     # (F, 5)
    return trajectory.astype(np.float32)
