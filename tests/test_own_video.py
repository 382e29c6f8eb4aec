"""A student's own recording through the real-video path (`vasa_lib.real.own_video`) and the demo's
"Your own video" panel, on videos made here."""

from datetime import datetime, timezone
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from vasa_lib.demo import look_at_video
from vasa_lib.real.own_video import Recording, look_at, look_figure
from vasa_lib.real.samples import moving_photo_video, world_video
from vasa_lib.world.clips import load_clip


@pytest.fixture(scope="module")
def talking(tmp_path_factory) -> Path:
    return world_video(load_clip(1, "test"), tmp_path_factory.mktemp("own") / "me.mp4")


def test_a_recording_is_looked_at_alone_and_drawn(talking):
    look = look_at(talking)
    assert look.refusals == [] and len(look.clips) == 1
    figure = look_figure(look)
    assert isinstance(figure, Figure) and len(figure.axes) == 5          # four crops and the labels over time


def test_a_refused_recording_says_why(tmp_path):
    look = look_at(moving_photo_video(tmp_path / "photo.mp4"))
    assert look.clips == [] and look.refusals == ["not in sync"]
    with pytest.raises(ValueError, match="not in sync"):
        look_figure(look)
    figure, status = look_at_video(str(tmp_path / "photo.mp4"))
    assert figure is None and "not in sync" in status and "voice does not move the mouth" in status


def test_the_demo_panel_answers_every_input(talking, tmp_path):
    figure, status = look_at_video(str(talking))
    assert isinstance(figure, Figure) and "Kept 1 clip" in status
    assert look_at_video(None) == (None, "Record or upload a video first.")
    (tmp_path / "notes.txt").write_text("not a video")
    figure, status = look_at_video(str(tmp_path / "notes.txt"))
    assert figure is None and "not one of the video types" in status


def test_an_upload_is_saved_or_its_absence_named(talking, tmp_path):
    recording = Recording(tmp_path / "mine")                             # outside Colab: an upload box
    with pytest.raises(ValueError, match="no video uploaded yet"):
        recording.path()
    recording.box.value = ({"name": "me.mp4", "type": "video/mp4", "size": talking.stat().st_size,
                            "content": memoryview(talking.read_bytes()),
                            "last_modified": datetime.now(timezone.utc)},)
    assert recording.path().read_bytes() == talking.read_bytes()
