"""The Gradio demo answers a real HTTP client on loopback with a labelled video (VASA-1 Sec. 4),
works on the first click (a portrait is selected), and answers bad input with a readable message
beside the outputs instead of a bare "Error"."""

import socket
import threading
import time

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from PIL import Image
from test_pipeline import PORTRAIT, tiny_talker

from vasa_lib import paths
from vasa_lib.demo import VOICES, Demo, build, world_portrait
from vasa_lib.pipeline import REAL_VIDEO_HINT
from vasa_lib.video import read_video
from vasa_lib.world.speech import FOREIGN_VOICES, TEST_VOICES, TRAIN_VOICES, synthesize

LONG_TEXT = ("This sentence takes much longer than five seconds to say out loud, "
             "because it just goes on and on and on.")


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


@pytest.fixture(scope="module")
def stream_client(client):
    # Streams answer with a frame per update. A client that downloads each one can race gradio
    # rewriting a cached frame of the same content (identical frames share a file name), and read
    # it truncated; these tests read the statuses, and the video's presence, not the files.
    return Client(client.src, verbose=False, download_files=False)


def inputs(text: str = "Hello there", audio=None, steps: int = 2, portrait=PORTRAIT, voice: str = "en-us",
           seed: int | None = 0) -> list:
    # portrait, audio, text, voice, theta, phi, distance, emotion, audio scale, gaze scale, steps, seed, intensity
    image = handle_file(str(portrait)) if portrait is not None else None
    return [image, audio, text, voice, 0.1, 0.0, 1.0, "happy", 0.5, 1.0, steps, seed, 1.0]


def video_path(video) -> str:
    return video["video"] if isinstance(video, dict) else video


def test_demo_answers_with_a_video(client):
    video, plot, status = client.predict(*inputs(), api_name="/generate")
    frames, sound, info = read_video(video_path(video))
    assert len(frames) > 10 and sound is not None
    assert abs(len(frames) / 25 - len(sound) / 16000) < 0.1
    assert "AI-generated" in info["metadata"]["comment"]
    assert "frames" in status and "Error" not in status and "Warning" not in status


def test_demo_streams_frames(stream_client):
    job = stream_client.submit(*inputs(), api_name="/stream")
    outputs = list(job)
    assert len(outputs) > 10                             # one update per frame, then the video
    assert outputs[-1][1] is not None
    assert "frames streamed" in outputs[-1][3]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"text": " "}, "text is empty"),                                 # no speech at all
    ({"text": LONG_TEXT}, "over the limit"),                           # too long
    ({"portrait": None}, "no portrait"),
    ({"voice": "xx-nowhere"}, "unknown voice"),
    ({"seed": None}, "whole numbers"),                                 # the seed box cleared
])
def test_demo_refuses_bad_input_with_a_readable_message(client, kwargs, message):
    video, plot, status = client.predict(*inputs(**kwargs), api_name="/generate")   # no exception: a status
    assert video is None and plot is None
    assert status.startswith("**Error:**") and message in status


def test_demo_refuses_unreadable_audio(client, stream_client, tmp_path):
    noise = tmp_path / "speech.wav"
    noise.write_bytes(b"RIFF this is not a wave file at all" * 10)
    video, _, status = client.predict(*inputs(audio=handle_file(str(noise))), api_name="/generate")
    assert video is None and status.startswith("**Error:**") and "cannot read audio" in status
    *_, (frame, video, _, status) = stream_client.submit(*inputs(audio=handle_file(str(noise))), api_name="/stream")
    assert frame is None and video is None and "cannot read audio" in status


def test_unreadable_portrait_keeps_its_warning_beside_the_video(client, stream_client, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (128, 128), (120, 120, 120)).save(blank)
    video, _, status = client.predict(*inputs(portrait=blank), api_name="/generate")
    assert video is not None                                          # a video all the same ...
    assert status.startswith("**Warning:**") and "almost uniform" in status and REAL_VIDEO_HINT in status
    assert "frames" in status                                         # ... and what was made
    updates = list(stream_client.submit(*inputs(portrait=blank), api_name="/stream"))
    assert all(REAL_VIDEO_HINT in status for *_, status in updates)    # stays while streaming, and after
    assert updates[-1][1] is not None


def test_generate_waits_for_a_running_stream():
    """/generate and /stream share one Talker, which must not run two requests at once: a /generate sent while a
    /stream runs waits until the stream is over. No timing decides it: the stream is held until the /generate
    either runs beside it (the defect) or waits in the stream's own queue."""
    talker = tiny_talker()
    offline, stream = talker.motion_offline, talker.motion_stream
    events, streaming, release = [], threading.Event(), threading.Event()

    def held_stream(*args, **kwargs):
        events.append("stream starts")
        streaming.set()
        release.wait(120)
        yield from stream(*args, **kwargs)
        events.append("stream ends")

    def logged_offline(*args, **kwargs):
        events.append("generate starts")
        release.set()                                  # it runs beside the stream: let the stream go on
        return offline(*args, **kwargs)

    talker.motion_stream, talker.motion_offline = held_stream, logged_offline
    app = build(talker, max_seconds=5.0)
    app.queue(default_concurrency_limit=1).launch(server_name="127.0.0.1", server_port=free_port(),
                                                  prevent_thread_lock=True, quiet=True)
    try:
        clients = [Client(app.local_url, verbose=False, download_files=False) for _ in range(2)]
        stream_job = clients[0].submit(*inputs(), api_name="/stream")
        assert streaming.wait(120), "the stream never reached the Talker"
        generate_job = clients[1].submit(*inputs(), api_name="/generate")
        # gradio's queue of the stream's concurrency group: a /generate waiting there is queued behind the stream
        group = next(fn.concurrency_id for fn in app.fns.values() if fn.api_name == "stream")
        waiting = app._queue.event_queue_per_concurrency_id[group].queue
        deadline = time.monotonic() + 120                  # a guard against hanging, not part of the verdict
        while not release.is_set() and not any(e.fn.api_name == "generate" for e in waiting):
            assert time.monotonic() < deadline, "the /generate neither ran nor waited in the stream's queue"
            time.sleep(0.01)
        release.set()
        stream_job.result(timeout=120)
        generate_job.result(timeout=120)
    finally:
        app.close()
    assert events == ["stream starts", "stream ends", "generate starts"]


def test_unexpected_failure_is_reported_not_raised():
    demo = Demo(tiny_talker())

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    demo.talker.motion_offline = broken
    with pytest.warns(UserWarning, match="boom"):                     # the toast, outside a running app
        video, plot, status = demo.generate(np.asarray(Image.open(PORTRAIT)), None, "Hello", "en-us",
                                            0.0, 0.0, 1.0, "neutral", 0.0, 1.0, 2, 0, 1.0)
    assert video is None and plot is None and "RuntimeError: boom" in status


def test_page_opens_with_a_portrait_selected():
    app = build(tiny_talker())
    first = sorted(paths.portraits_dir().glob("*.png"))[0].name
    blocks = {getattr(b, "label", None): b for b in app.blocks.values()}
    assert blocks["Portrait"].value["orig_name"] == first                          # loaded in the input ...
    assert blocks["Held-out people of the world (click one)"].selected_index == 0  # ... and shown selected
    assert blocks["voice (eSpeak NG)"].value == "en-us"


def test_every_listed_voice_speaks():
    voices = [value for _, value in VOICES]
    assert voices == ["en-us", *TRAIN_VOICES, *TEST_VOICES, *FOREIGN_VOICES]
    for voice in voices:
        audio = synthesize("Hi there.", voice=voice).audio
        assert len(audio) > 1600 and np.abs(audio).max() > 0.05, voice       # > 0.1 s, not silent


def test_world_portrait():
    a, b = world_portrait(10100), world_portrait(seed=3)
    assert a.shape == b.shape == (128, 128, 3) and a.dtype == np.uint8 and not np.array_equal(a, b)
