"""mp4 with sound through PyAV, and the notebook helpers (vasa_lib.video, vasa_lib.notebook)."""

import numpy as np
import pytest
import torch

from vasa_lib.notebook import image_grid, setup, video_html
from vasa_lib.video import read_video, write_video


def test_write_read_round_trip(tmp_path):
    t = torch.linspace(0, 1, 64)
    frames = torch.stack([torch.stack([t.expand(64, 64) * (i / 24), t[:, None].expand(64, 64),
                                       torch.full((64, 64), 0.5)]) for i in range(25)])
    audio = (0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    path = write_video(tmp_path / "clip.mp4", frames, audio, metadata={"comment": "AI-generated"})
    video, sound, info = read_video(path)
    assert video.shape == (25, 3, 64, 64) and info["fps"] == 25 and info["sample_rate"] == 16000
    assert (video - frames).abs().mean() < 0.02  # H.264 at crf 20 is close to lossless here
    assert abs(len(sound) - 16000) < 2048  # AAC adds a little padding
    peak = np.abs(np.fft.rfft(sound[1024:15000])).argmax() * 16000 / len(sound[1024:15000])
    assert abs(peak - 440) < 5
    assert info["metadata"]["comment"] == "AI-generated"


def test_odd_sizes_are_padded(tmp_path):
    video, sound, _ = read_video(write_video(tmp_path / "odd.mp4", torch.rand(3, 3, 31, 45)))
    assert video.shape == (3, 3, 32, 46) and sound is None


@pytest.mark.parametrize("frames, message", [
    (torch.rand(4, 64, 64), "shape"), (torch.zeros(0, 3, 8, 8), "empty"),
    (torch.full((2, 3, 8, 8), float("nan")), "NaN"),
])
def test_bad_frames_leave_no_file(tmp_path, frames, message):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"an older good file")
    with pytest.raises(ValueError, match=message):
        write_video(target, frames)
    assert target.read_bytes() == b"an older good file"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_unreadable_video(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="cannot read video"):
        read_video(bad)
    with pytest.raises(ValueError, match="no video file"):
        read_video(tmp_path / "missing.mp4")


def test_setup_and_helpers(monkeypatch, tmp_path):
    monkeypatch.setenv("VASA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VASA_FAST", "0")
    cfg = setup(seed=3)
    assert not cfg.fast and cfg.data_dir.is_dir() and cfg.device.type in ("cpu", "cuda")
    first = torch.rand(1).item()
    setup(seed=3)
    assert torch.rand(1).item() == first
    monkeypatch.setenv("VASA_FAST", "1")
    assert setup().fast
    html = video_html(torch.rand(5, 3, 32, 32), np.zeros(3200, np.float32))
    assert html.startswith("<video") and "base64," in html
    assert image_grid(torch.rand(5, 3, 8, 8), nrow=3).shape == (16, 24, 3)


def test_side_by_side_labels_each_video():
    from vasa_lib.notebook import side_by_side

    black, white = torch.zeros(2, 3, 40, 40), torch.ones(2, 3, 40, 30)
    frames = side_by_side([black, white], ["a", "b"], bar=16)
    assert frames.shape == (2, 3, 56, 70)
    assert torch.equal(frames[:, :, 16:], torch.cat([black, white], dim=-1))     # the videos, untouched
    header = frames[0, :, :16]
    assert header[:, :, :40].min() < 0.5 and header[:, :, 40:].min() < 0.5      # a label drawn over each one
    with pytest.raises(ValueError, match="labels"):
        side_by_side([black], ["a", "b"])
