"""Behaviour: prosody features, head motion, blinks, gaze and emotion (vasa_lib.world.behaviour)."""

import numpy as np
import pytest

from vasa_lib.world.behaviour import Style, animate, blinks, gaze_track, prosody
from vasa_lib.world.params import DYNAMICS_LIMITS, FPS, POSE_LIMITS, SAMPLE_RATE, dyn_index


def babble(seconds: float, seed: int = 0) -> np.ndarray:
    """Syllable-like bursts of a pitched tone with pauses: a stand-in for speech."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    rng = np.random.default_rng(seed)
    envelope = (np.sin(2 * np.pi * 3 * t) > 0.2) * (np.sin(2 * np.pi * 0.25 * t) > -0.5)
    voiced = 0.3 * envelope * np.sin(2 * np.pi * (140 + 30 * np.sin(t)) * t)
    return (voiced + 1e-3 * rng.normal(size=len(t))).astype(np.float32)


def test_prosody_finds_activity_pitch_and_stress():
    audio = babble(8.0)
    features = prosody(audio, 8 * FPS)
    assert features.activity.max() > 0.9 and features.activity.min() < 0.1  # speech and pauses
    assert len(features.stress) > 5
    assert np.abs(features.pitch).max() > 0  # voiced frames have a pitch


def test_animate_ranges_and_one_to_many():
    audio, mouth = babble(6.0), np.zeros((6 * FPS, 5))
    args = (audio, mouth, 7, "neutral", (0.1, -0.05), 1.1)
    pose_a, dyn_a = animate(*args, rng=np.random.default_rng(0))
    pose_b, dyn_b = animate(*args, rng=np.random.default_rng(1))
    for values, limits in ((pose_a, POSE_LIMITS), (dyn_a, DYNAMICS_LIMITS)):
        assert np.all(values >= limits[:, 0].numpy() - 1e-6) and np.all(values <= limits[:, 1].numpy() + 1e-6)
    assert np.abs(pose_a - pose_b).mean() > 0.01  # same audio, different motion
    np.testing.assert_array_equal(animate(*args, rng=np.random.default_rng(0))[0], pose_a)  # deterministic
    assert abs(pose_a[:, 5].mean() - 1.1) < 0.05  # the head distance control holds


def test_blink_rate_is_human():
    features = prosody(babble(60.0, seed=3), 60 * FPS)
    closure = blinks(features, Style.of(11), np.random.default_rng(0))
    onsets = np.sum((closure[1:] >= 0.99) & (closure[:-1] < 0.99))
    assert 10 <= onsets <= 40, onsets


def test_gaze_stays_near_main_direction():
    track = gaze_track(np.array([0.2, -0.1]), 500, np.random.default_rng(0))
    np.testing.assert_allclose(track.mean(0), [0.2, -0.1], atol=0.03)
    assert np.abs(np.diff(track, axis=0)).max() > 0.02  # saccades happen


def test_emotions_shape_the_face():
    audio, mouth = babble(4.0), np.zeros((4 * FPS, 5))
    face = {e: animate(audio, mouth, 3, e, (0.0, 0.0), 1.0, np.random.default_rng(0))[1]
            for e in ("neutral", "happy", "sad", "angry", "surprised")}
    smile, frown, brow = dyn_index("smile"), dyn_index("brow_frown"), dyn_index("brow_raise")
    assert face["happy"][:, smile].mean() > face["neutral"][:, smile].mean() + 0.4
    assert face["sad"][:, smile].mean() < face["neutral"][:, smile].mean() - 0.3
    assert face["angry"][:, frown].mean() > 0.6
    assert face["surprised"][:, brow].mean() > face["neutral"][:, brow].mean() + 0.5


def test_unknown_emotion_is_rejected():
    with pytest.raises(ValueError, match="unknown emotion 'bored'"):
        animate(babble(1.0), np.zeros((25, 5)), 0, "bored", (0.0, 0.0), 1.0, np.random.default_rng(0))
