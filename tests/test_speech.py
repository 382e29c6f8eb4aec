"""Tests for the world's speech (eSpeak NG through ctypes) and its sentence generator."""

import os
import signal
import time

import numpy as np
import pytest

from vasa_lib.world import espeak
from vasa_lib.world.params import SAMPLE_RATE
from vasa_lib.world.sentences import foreign_sentence, make_sentence, sentence_for
from vasa_lib.world.speech import FOREIGN_VOICES, PAUSE, TEST_VOICES, TRAIN_VOICES, Speech, sample_voice, synthesize

ALL_VOICES = TRAIN_VOICES + TEST_VOICES + FOREIGN_VOICES


def _text_for(voice: str, index: int) -> str:
    return foreign_sentence(index) if voice in FOREIGN_VOICES else sentence_for(index, "train")


@pytest.mark.parametrize("voice", ALL_VOICES)
def test_audio_is_16khz_float_and_duration_fits_the_text(voice):
    text = _text_for(voice, 1)
    speech = synthesize(text, voice=voice, rate=170)
    assert isinstance(speech, Speech) and speech.sample_rate == SAMPLE_RATE == 16000
    assert speech.audio.dtype == np.float32 and speech.audio.ndim == 1
    assert np.abs(speech.audio).max() <= 1.0 and np.abs(speech.audio).max() > 0.1
    words_per_second = len(text.split()) / speech.duration
    assert 1.0 < words_per_second < 6.0


@pytest.mark.parametrize("voice", ALL_VOICES)
def test_phonemes_tile_the_audio_in_increasing_time(voice):
    for index in range(3):
        speech = synthesize(_text_for(voice, index), voice=voice)
        phonemes = speech.phonemes
        assert phonemes[0].start == 0.0 and phonemes[-1].end == speech.duration
        for p, q in zip(phonemes, phonemes[1:]):
            assert p.start < p.end == q.start
        assert all(p.symbol and "ˈ" not in p.symbol for p in phonemes)
        assert any(p.stressed for p in phonemes)


def test_timings_match_the_audio():
    """Pauses are silent, vowels are loud and a stop's interval starts with its closure."""
    rms = {"pause": [], "vowel": [], "closure": []}
    for index in range(10):
        speech = synthesize(sentence_for(index) + " Papa bought a map.", voice=TRAIN_VOICES[index])
        for p in speech.phonemes:
            a, b = int(p.start * SAMPLE_RATE), int(p.end * SAMPLE_RATE)
            if p.symbol == PAUSE and p.end - p.start > 0.05:
                rms["pause"].append(np.sqrt(np.mean(speech.audio[a:b] ** 2)))
            if p.symbol in ("a", "æ", "ɑː", "ɔː"):
                rms["vowel"].append(np.sqrt(np.mean(speech.audio[a:b] ** 2)))
            if p.symbol == "p":
                rms["closure"].append(np.sqrt(np.mean(speech.audio[a:(a + b) // 2] ** 2)))
    pause, vowel, closure = (np.median(rms[k]) for k in ("pause", "vowel", "closure"))
    assert pause < 0.005 and closure < 0.2 * vowel and vowel > 0.05


def _median_f0(audio: np.ndarray) -> float:
    """Median fundamental frequency (Hz) of the loud 40 ms frames, by autocorrelation."""
    f0 = []
    for a in range(0, len(audio) - 640, 320):
        frame = audio[a:a + 640]
        if np.sqrt(np.mean(frame ** 2)) > 0.05:
            corr = np.correlate(frame, frame, "full")[639:]
            low, high = SAMPLE_RATE // 400, SAMPLE_RATE // 60
            f0.append(SAMPLE_RATE / (low + np.argmax(corr[low:high])))
    return float(np.median(f0))


def test_rate_changes_duration_and_pitch_changes_f0():
    text = sentence_for(4)
    slow, fast = synthesize(text, rate=120), synthesize(text, rate=300)
    assert slow.duration > 1.8 * fast.duration
    low, high = synthesize(text, pitch=20), synthesize(text, pitch=80)
    assert [p.symbol for p in low.phonemes if p.symbol != PAUSE] == \
           [p.symbol for p in high.phonemes if p.symbol != PAUSE]
    assert _median_f0(high.audio) > 1.3 * _median_f0(low.audio)
    male, female = synthesize(text, voice="en-us+m3"), synthesize(text, voice="en-us+f1")
    assert _median_f0(female.audio) > 1.3 * _median_f0(male.audio)


def test_same_input_gives_the_same_speech_whatever_came_before():
    """eSpeak keeps state between utterances; the speech server speaks each utterance in a fresh fork
    of its engine, so every utterance starts from the same state and the samples are identical
    (where fork exists)."""
    text, voice = sentence_for(7), "en-us+f3"
    first = synthesize(text, voice=voice)
    synthesize(sentence_for(8), voice="en+m2")
    again = synthesize(text, voice=voice)
    assert [(p.symbol, p.start) for p in first.phonemes] == [(p.symbol, p.start) for p in again.phonemes]
    if hasattr(os, "fork"):
        np.testing.assert_array_equal(first.audio, again.audio)


@pytest.mark.parametrize("kwargs, message", [
    (dict(text=""), "empty"),
    (dict(text="   \n"), "empty"),
    (dict(text=None), "must be a str"),
    (dict(text="word " * 500), "too long"),
    (dict(text="... ,,,"), "unsynthesisable"),
    (dict(text="hello", voice="xx-nowhere"), "unknown voice 'xx-nowhere'"),
    (dict(text="hello", voice="en-us+nobody"), "unknown voice variant 'nobody'"),
    (dict(text="hello", voice=""), "voice must be"),
    (dict(text="hello", rate=20), "rate must be"),
    (dict(text="hello", rate=170.5), "rate must be"),
    (dict(text="hello", pitch=101), "pitch must be"),
    (dict(text="hello", pitch_range=-1), "pitch_range must be"),
])
def test_bad_inputs_raise_value_errors_naming_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthesize(**kwargs)


def test_voice_splits_and_sampling():
    assert not set(TEST_VOICES) & set(TRAIN_VOICES)
    assert all(v.startswith("en") for v in TRAIN_VOICES + TEST_VOICES)
    assert all(not v.startswith("en") for v in FOREIGN_VOICES)
    assert 10 <= len(TRAIN_VOICES) <= 16
    rng = np.random.default_rng(0)
    for split, voices in [("train", TRAIN_VOICES), ("test", TEST_VOICES), ("foreign", FOREIGN_VOICES)]:
        settings = sample_voice(rng, split)
        assert settings["voice"] in voices
        assert 140 <= settings["rate"] <= 200 and 30 <= settings["pitch"] <= 70
        assert synthesize("Hello there.", **settings).duration > 0.3
    with pytest.raises(ValueError, match="unknown split"):
        sample_voice(rng, "validation")


def test_sentences_are_deterministic_plain_and_split():
    assert sentence_for(3, "train") == sentence_for(3, "train")
    assert sentence_for(3, "test") == sentence_for(3, "test")
    train = {sentence_for(i, "train") for i in range(2000)}
    test = [sentence_for(i, "test") for i in range(300)]
    assert len(train) > 1900 and not train.intersection(test)
    rng = np.random.default_rng(0)
    for sentence in list(train)[:500] + test + [make_sentence(rng) for _ in range(100)]:
        assert 4 <= len(sentence.split()) <= 14
        assert sentence[0].isupper() and sentence[-1] in ".?"
    with pytest.raises(ValueError, match="unknown split"):
        sentence_for(0, "dev")
    with pytest.raises(ValueError, match="index"):
        sentence_for(-1)


def test_foreign_sentences_are_german():
    assert foreign_sentence(0) == foreign_sentence(0) != foreign_sentence(1)
    speech = synthesize(foreign_sentence(0), voice=FOREIGN_VOICES[0])
    assert speech.duration > 1.0
    with pytest.raises(ValueError, match="index"):
        foreign_sentence(-2)


def test_a_foreign_voice_reading_english_words_gives_no_language_switch_marks():
    from vasa_lib.world.clips import clip_from_speech

    speech = synthesize("Hello, this is a computer talking.", voice=FOREIGN_VOICES[0])
    assert not any("(" in p.symbol for p in speech.phonemes)
    assert clip_from_speech(speech, 0).n_frames == int(np.ceil(speech.duration * 25))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the speech server runs where the OS can fork")
def test_a_stopped_speech_server_is_restarted():
    """The eSpeak server is a process of its own (forking is unsafe from this multi-threaded one):
    if it stops, the next utterance starts a new one and comes out the same."""
    text = sentence_for(3)
    first = synthesize(text, voice="en-us+m1")
    server = espeak._SPEAKER.process
    server.kill()
    server.wait()
    again = synthesize(text, voice="en-us+m1")
    assert espeak._SPEAKER.process.pid != server.pid
    np.testing.assert_array_equal(first.audio, again.audio)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through Linux's /proc")
def test_the_speech_server_has_one_thread():
    """It forks a child per utterance, which is only safe from a process with a single thread."""
    synthesize("One thread.")
    assert len(os.listdir(f"/proc/{espeak._SPEAKER.process.pid}/task")) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the speech server runs where the OS can fork")
def test_ctrl_c_is_left_to_the_client():
    """A Jupyter kernel's shutdown or a terminal's Ctrl-C sends SIGINT to the whole process group:
    the server lets its client decide (it stops when the client closes its stdin), instead of
    dying mid-utterance with a traceback."""
    synthesize("Still here.")
    server = espeak._SPEAKER.process
    server.send_signal(signal.SIGINT)
    time.sleep(0.2)
    synthesize("Still here.")
    assert server.poll() is None and espeak._SPEAKER.process.pid == server.pid
