"""Tests for articulation: phonemes -> mouth trajectories (visemes + coarticulation)."""

import numpy as np
import pytest

from vasa_lib.world.articulation import CONSONANTS, MOUTH_NAMES, REST, VOWELS, articulate, components, viseme
from vasa_lib.world.params import DYNAMICS_LIMITS, DYNAMICS_NAMES, FPS
from vasa_lib.world.sentences import foreign_sentence, sentence_for
from vasa_lib.world.speech import FOREIGN_VOICES, PAUSE, TEST_VOICES, TRAIN_VOICES, Phoneme, synthesize

LOW, HIGH = DYNAMICS_LIMITS[:5, 0].numpy(), DYNAMICS_LIMITS[:5, 1].numpy()
JAW, SPREAD, ROUND, CLOSE, TONGUE = range(5)


def _in_range(values: np.ndarray) -> bool:
    return bool(np.all(values >= LOW - 1e-6) and np.all(values <= HIGH + 1e-6))


@pytest.fixture(scope="module")
def utterances():
    """~20 sentences for every voice, each with its mouth trajectory at 25 fps."""
    out = []
    for voice in TRAIN_VOICES + TEST_VOICES + FOREIGN_VOICES:
        for i in range(20):
            if voice in FOREIGN_VOICES:
                text = foreign_sentence(i)
            else:
                text = sentence_for(i, "test" if voice in TEST_VOICES else "train")
            speech = synthesize(text, voice=voice)
            n_frames = int(np.ceil(speech.duration * FPS))
            out.append((speech, articulate(speech.phonemes, n_frames)))
    return out


def test_mouth_names_follow_params():
    assert MOUTH_NAMES == DYNAMICS_NAMES[:5]


def test_every_emitted_symbol_has_a_viseme_in_range(utterances):
    symbols = {p.symbol for speech, _ in utterances for p in speech.phonemes}
    assert len(symbols) > 60
    for symbol in symbols:
        assert viseme(symbol).shape == (5,) and _in_range(viseme(symbol)), symbol


def test_table_targets_are_in_range():
    for symbol in list(VOWELS) + [s for symbols, _ in CONSONANTS.values() for s in symbols] + [PAUSE]:
        assert _in_range(viseme(symbol)), symbol


def test_visemes_follow_phonetics():
    for bilabial in "pbm":
        assert viseme(bilabial)[CLOSE] == 1.0 and viseme(bilabial)[JAW] < 0.1
    assert viseme("f")[CLOSE] > 0.4 and viseme("f")[TONGUE] > 0.3       # lower lip to upper teeth
    assert viseme("θ")[TONGUE] == 1.0                                    # tongue between the teeth
    assert viseme("a")[JAW] > 0.8 and viseme("ɑ")[JAW] > 0.8 and viseme("æ")[JAW] > 0.7
    assert viseme("i")[JAW] < viseme("e")[JAW] < viseme("ɛ")[JAW] < viseme("a")[JAW]
    assert viseme("i")[SPREAD] > 0.5 and viseme("e")[SPREAD] > 0.4
    assert viseme("u")[ROUND] > 0.8 and viseme("o")[ROUND] > 0.6 and viseme("u")[SPREAD] < 0
    assert viseme("w")[ROUND] == 1.0
    np.testing.assert_array_equal(viseme(PAUSE), REST)


def test_symbols_are_normalised_and_split():
    np.testing.assert_array_equal(viseme("ˈaː"), viseme("a"))
    np.testing.assert_array_equal(viseme("t̪"), viseme("t"))
    assert components("ˈaɪə") == ["a", "ɪ", "ə"]
    assert components("t͡ʃ") == ["t", "ʃ"]
    np.testing.assert_allclose(viseme("aɪ"), (viseme("a") + viseme("ɪ")) / 2)


@pytest.mark.parametrize("symbol", ["Q", "", "ˈ", "4", "@"])
def test_unknown_symbols_raise(symbol):
    with pytest.raises(ValueError, match="unknown phoneme symbol"):
        viseme(symbol)


def test_trajectory_shape_range_and_determinism(utterances):
    for speech, mouth in utterances[::7]:
        assert mouth.dtype == np.float32 and mouth.shape == (int(np.ceil(speech.duration * FPS)), 5)
        assert _in_range(mouth)
        np.testing.assert_array_equal(mouth, articulate(speech.phonemes, len(mouth)))


def _frames_at(utterances, symbols):
    """Trajectory values at the frames holding the centres of phonemes in `symbols`, (K, 5)."""
    return np.array([mouth[min(int(p.centre * FPS), len(mouth) - 1)]
                     for speech, mouth in utterances for p in speech.phonemes if p.symbol in symbols])


def test_lips_close_on_bilabials(utterances):
    close = _frames_at(utterances, {"p", "b", "m"})[:, CLOSE]
    assert len(close) > 100 and close.min() > 0.8 and close.mean() > 0.93


def test_jaw_opens_on_open_vowels(utterances):
    open_jaw = _frames_at(utterances, {"a", "aː", "ɑː", "æ", "ɑ"})[:, JAW]
    close_jaw = _frames_at(utterances, {"i", "iː", "ɪ"})[:, JAW]
    assert len(open_jaw) > 50 and open_jaw.mean() > 0.7 and open_jaw.mean() > close_jaw.mean() + 0.3
    assert _frames_at(utterances, {"uː"})[:, ROUND].mean() > 0.7
    assert _frames_at(utterances, {"θ", "ð"})[:, TONGUE].mean() > 0.8


def test_rest_in_silence_and_coarticulation():
    phonemes = [Phoneme(PAUSE, 0.0, 0.4), Phoneme("m", 0.4, 0.48), Phoneme("a", 0.48, 0.64, True),
                Phoneme("p", 0.64, 0.72), Phoneme(PAUSE, 0.72, 1.2)]
    mouth = articulate(phonemes, 40)                   # 1.6 s: after 1.2 s nothing is said
    np.testing.assert_allclose(mouth[:5], np.tile(REST, (5, 1)), atol=1e-3)
    np.testing.assert_allclose(mouth[-5:], np.tile(REST, (5, 1)), atol=1e-3)
    assert mouth[int(0.44 * FPS), CLOSE] > 0.9 and mouth[int(0.56 * FPS), JAW] > 0.8
    np.testing.assert_allclose(articulate([], 3), np.tile(REST, (3, 1)))
    assert articulate(phonemes, 0).shape == (0, 5)

    def s_between(vowel: str) -> np.ndarray:                 # /s/ takes the lips of its vowels
        seq = [Phoneme(vowel, 0.0, 0.12), Phoneme("s", 0.12, 0.2), Phoneme(vowel, 0.2, 0.32)]
        return articulate(seq, 8)[int(0.16 * FPS)]
    assert s_between("u")[ROUND] > s_between("i")[ROUND] + 0.3


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="n_frames"):
        articulate([], -1)
    with pytest.raises(ValueError, match="time order"):
        articulate([Phoneme("a", 0.5, 0.6), Phoneme("m", 0.1, 0.2)], 10)
    with pytest.raises(ValueError, match="unknown phoneme symbol"):
        articulate([Phoneme("Q", 0.0, 0.1)], 10)
