"""The Gradio demo answers a real HTTP client on loopback with a labelled video (VASA-1 Sec. 4)."""

import socket

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from test_pipeline import PORTRAIT, tiny_talker

from vasa_lib.demo import build, world_portrait
from vasa_lib.video import read_video


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    app = build(tiny_talker(), max_seconds=5.0)
    app.queue(default_concurrency_limit=1).launch(server_name="127.0.0.1", server_port=free_port(),
                                                  prevent_thread_lock=True, quiet=True)
    yield Client(app.local_url, verbose=False)
    app.close()
    torch.set_num_threads(threads)


def inputs(text: str = "Hello there", audio=None, steps: int = 2) -> list:
    # portrait, audio, text, voice, theta, phi, distance, emotion, audio scale, gaze scale, steps, seed, intensity
    return [handle_file(str(PORTRAIT)), audio, text, "en-us", 0.1, 0.0, 1.0, "happy", 0.5, 1.0, steps, 0, 1.0]


def test_demo_answers_with_a_video(client):
    video, plot, status = client.predict(*inputs(), api_name="/generate")
    frames, sound, info = read_video(video["video"] if isinstance(video, dict) else video)
    assert len(frames) > 10 and sound is not None
    assert abs(len(frames) / 25 - len(sound) / 16000) < 0.1
    assert "AI-generated" in info["metadata"]["comment"]
    assert "frames" in status


def test_demo_streams_frames(client):
    job = client.submit(*inputs(), api_name="/stream")
    outputs = list(job)
    assert len(outputs) > 10                             # one update per frame, then the video
    assert outputs[-1][1] is not None


def test_demo_refuses_bad_input(client):
    with pytest.raises(Exception, match="text is empty"):
        client.predict(*inputs(text=" "), api_name="/generate")
    with pytest.raises(Exception, match="over the limit"):
        client.predict(*inputs(text="This sentence takes much longer than five seconds to say out loud, "
                                    "because it just goes on and on and on."), api_name="/generate")


def test_world_portrait():
    a, b = world_portrait(10100), world_portrait(seed=3)
    assert a.shape == b.shape == (128, 128, 3) and a.dtype == np.uint8 and not np.array_equal(a, b)
