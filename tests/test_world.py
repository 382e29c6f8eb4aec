"""The world end to end: clips from seeds, lips in rendered pixels, caching, datasets, bad input."""

import numpy as np
import pytest
import torch

from vasa_lib.world.clips import clip_from_speech, load_clip, make_clip, prepare_clips, render_clip
from vasa_lib.world.frame_tuples import WorldDataModule
from vasa_lib.world.identity import IDENTITY_SPLITS, split_of
from vasa_lib.world.params import FPS, SAMPLE_RATE
from vasa_lib.world.renderer import PARTS
from vasa_lib.world.speech import MANY_VOICES, TEST_VOICES, TRAIN_VOICES, synthesize


@pytest.fixture(scope="module")
def speech():
    return synthesize("Bob may pay a papa more. Ah, father!", voice="en-us")


def mouth_pixels(clip, frame: int) -> int:
    """Pixels of open mouth (cavity, teeth, tongue) in a rendered frame, counted from the part labels."""
    from vasa_lib.world.renderer import render

    _, labels = render(clip.identity[None], torch.from_numpy(clip.pose[frame:frame + 1]),
                       torch.from_numpy(clip.dynamics[frame:frame + 1]), size=128, parts=True)
    inside = [PARTS.index(p) for p in ("mouth_cavity", "teeth", "tongue")]
    return int(sum((labels == i).sum() for i in inside))


def test_lips_close_on_bilabials_and_open_on_a(speech):
    clip = clip_from_speech(speech, identity_id=1, motion_seed=0)
    centre = lambda p: min(int((p.start + p.end) / 2 * FPS), clip.n_frames - 1)
    closed = [mouth_pixels(clip, centre(p)) for p in speech.phonemes if p.symbol in ("p", "b", "m")]
    opened = [mouth_pixels(clip, centre(p)) for p in speech.phonemes if p.symbol.startswith(("a", "ɑ", "æ"))]
    assert closed and opened
    assert max(closed) <= 2, closed  # the lips meet: (almost) no mouth interior
    assert min(opened) > 20, opened  # the mouth is open: teeth, tongue or cavity show
    # and in the RGB image itself: the mouth region is darker when open
    frames = render_clip(clip)
    dark = lambda i: float((frames[i].mean(0) < 0.25).sum())
    assert np.mean([dark(centre(p)) for p in speech.phonemes if p.symbol.startswith(("a", "ɑ", "æ"))]) > \
        np.mean([dark(centre(p)) for p in speech.phonemes if p.symbol in ("p", "b", "m")])


def test_clip_is_deterministic_and_consistent():
    a, b = make_clip(5, "val"), make_clip(5, "val")
    assert a.text == b.text and a.voice == b.voice and a.identity_id == b.identity_id
    np.testing.assert_array_equal(a.audio, b.audio)
    np.testing.assert_array_equal(a.pose, b.pose)
    np.testing.assert_array_equal(a.dynamics, b.dynamics)
    assert split_of(a.identity_id) == "val"
    assert len(a.audio) == a.n_frames * SAMPLE_RATE // FPS and a.dynamics.shape == (a.n_frames, 11)
    assert make_clip(6, "val").text != a.text


def test_test_split_holds_out_people():
    test_ids = {make_clip(i, "test").identity_id for i in range(4)}
    assert all(i in IDENTITY_SPLITS["test"] for i in test_ids)


def test_many_voices_change_only_the_voice_and_keep_test_voices_unheard(tmp_path):
    world, many = [make_clip(i, "train") for i in range(6)], [make_clip(i, "train", "many") for i in range(6)]
    assert all(m.voice in MANY_VOICES for m in many)
    assert sum(w.voice != m.voice for w, m in zip(world, many)) >= 5
    for w, m in zip(world, many):   # the same clip otherwise: text, person, controls, motion seed
        assert (w.text, w.identity_id, w.emotion, w.gaze, w.distance) == (m.text, m.identity_id, m.emotion, m.gaze,
                                                                          m.distance)
    assert set(TRAIN_VOICES) <= set(MANY_VOICES)
    for voice in TEST_VOICES:      # neither the accent nor the variant of a test voice is among them
        accent, variant = voice.split("+")
        assert not any(v.startswith(accent + "+") or v.endswith("+" + variant) for v in MANY_VOICES)
    cached = load_clip(2, "train", tmp_path, "many")
    assert cached.voice == many[2].voice and load_clip(2, "train", tmp_path).voice == world[2].voice
    with pytest.raises(ValueError, match="test clips keep the world's voices"):
        make_clip(0, "test", "many")
    with pytest.raises(ValueError, match="unknown voices"):
        make_clip(0, "train", "some")


def test_cache_round_trip(tmp_path):
    fresh = load_clip(2, "train", tmp_path)
    cached = load_clip(2, "train", tmp_path)
    assert cached.text == fresh.text and cached.emotion == fresh.emotion and cached.gaze == fresh.gaze
    assert [p.symbol for p in cached.phonemes] == [p.symbol for p in fresh.phonemes]
    np.testing.assert_array_equal(cached.dynamics, fresh.dynamics)
    (path,) = tmp_path.rglob("*.npz")
    path.write_bytes(b"damaged")
    np.testing.assert_array_equal(load_clip(2, "train", tmp_path).pose, fresh.pose)  # rebuilt


def test_prepare_clips_in_parallel_matches_one_process(tmp_path):
    prepare_clips("val", 3, tmp_path / "two", workers=2)
    prepare_clips("val", 3, tmp_path / "one", workers=1)
    for i in range(3):
        a, b = load_clip(i, "val", tmp_path / "two"), load_clip(i, "val", tmp_path / "one")
        np.testing.assert_array_equal(a.audio, b.audio)
        np.testing.assert_array_equal(a.pose, b.pose)
    assert len(list((tmp_path / "two").rglob("*.npz"))) == 3


def test_datamodule_renders_batches(tmp_path):
    dm = WorldDataModule(n_train=4, n_val=2, n_test=2, frames=3, batch_size=2, size=48, cache_dir=tmp_path)
    dm.prepare_data()
    dm.setup()
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["frames"].shape == (2, 3, 3, 48, 48)
    assert batch["pose"].shape == (2, 3, 6) and batch["identity"].shape == (2, 38)
    val = [dm.sets["val"][0]["pose"] for _ in range(2)]
    torch.testing.assert_close(val[0], val[1])  # validation frames are fixed


@pytest.mark.parametrize("kwargs, message", [
    (dict(emotion="bored"), "unknown emotion"),
    (dict(gaze=(float("nan"), 0.0)), "gaze theta"),
    (dict(distance=5.0), "distance"),
])
def test_bad_controls(speech, kwargs, message):
    with pytest.raises(ValueError, match=message):
        clip_from_speech(speech, identity_id=0, **kwargs)


def test_bad_clip_requests():
    with pytest.raises(ValueError, match="unknown split"):
        make_clip(0, "holiday")
    with pytest.raises(ValueError, match="unknown clip settings"):
        make_clip(0, "train", colour="red")
    with pytest.raises(ValueError, match="outside every split"):
        split_of(10**9)
