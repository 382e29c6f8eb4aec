"""Solutions to the exercises of notebook 08 · The Gradio demo.

Run from the repository root: `python solutions/08_gradio_demo.py`. Each exercise is one function; its asserts
check the answer, so a wrong answer fails. About 20 s on a 2-core CPU. Exercise 1 stands in synthetic voices for
your microphone (a voice the model never heard, and German), so that the answer can be checked against the
world's true mouth; exercise 4 starts the app on a free local port and closes it again, and reads what the queue
did from the server's order of events, not from timings.
"""

import contextlib
import io
import socket
import threading
import time

import matplotlib.cbook as cbook
import numpy as np
import torch

from vasa_lib.eval.motion import pearson
from vasa_lib.notebook import setup
from vasa_lib.pipeline import MIN_IDENTITY_SIMILARITY, MIN_PSNR, Settings, Talker
from vasa_lib.world.clips import clip_from_speech
from vasa_lib.world.params import dyn_index
from vasa_lib.world.speech import FOREIGN_VOICES, TEST_VOICES, TRAIN_VOICES, synthesize

cfg = setup(seed=0)
torch.set_num_threads(1)
talker = Talker.from_checkpoints(cfg.checkpoint_dir)
PORTRAIT = cfg.root / "assets" / "portraits" / "test_10104.png"
portrait = talker.portrait(PORTRAIT)


def exercise_1():
    """A voice the model never heard, and another language: how does the mouth follow?"""
    sentences = {"en": ["Maybe the baker will open a bigger shop.", "Did you really bring the map to the party?"],
                 "de": ["Über die Brücke fährt ein grüner Wagen.", "Morgen gehen wir mit dem Hund spazieren."]}
    sync = {}
    for name, voice, language in (("training voice", TRAIN_VOICES[0], "en"), ("unseen accent", TEST_VOICES[0], "en"),
                                  ("German", FOREIGN_VOICES[0], "de")):
        values = []
        for text in sentences[language]:
            clip = clip_from_speech(synthesize(text, voice=voice), identity_id=10104)   # the world's true mouth
            motion = talker.motion_offline(clip.audio, Settings(steps=10))
            true_jaw = torch.from_numpy(clip.dynamics[:, dyn_index("jaw_open")])
            values.append(pearson(talker.mouth_opening(motion), true_jaw))
        sync[name] = float(np.mean(values))
    print("lip sync (correlation with the world's jaw opening):", {k: round(v, 2) for k, v in sync.items()})
    # The mouth follows an unseen accent, and even German, as well as a training voice (here better: 0.79 and 0.82
    # against 0.65, on two sentences each, a small sample): what drives the jaw is when the mouth opens for loud
    # vowels and closes for consonants and pauses, which sounds alike in any voice or language, and the audio
    # encoder keys on that, not on the speaker. (The finer mouth shapes, e.g.
    # the rounding of German /y/, are not measured here: the jaw probe reads the opening only.) A real microphone
    # is a harder test: room noise, and a real voice further from eSpeak than any of these.
    assert min(sync.values()) > 0.6


def exercise_2():
    """A photo of a real person: which check refuses it, and why a warning is better than a silently bad video."""
    photo = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    read = talker.portrait(photo, strict=False)
    print(f"photo: PSNR {read.psnr:.1f} dB (needs {MIN_PSNR:g}), identity similarity {read.identity_similarity:.2f} "
          f"(needs {MIN_IDENTITY_SIMILARITY:g}); world portrait: PSNR {portrait.psnr:.1f} dB")
    print("problem:", read.problem)
    try:
        talker.portrait(photo)
    except ValueError as error:
        message = str(error)
    else:
        raise AssertionError("a strict read of the photo should refuse it")
    # The PSNR check refuses it: the face model (trained only on the world's faces) cannot reconstruct a real
    # photo, so its reconstruction is far from it. The checks run in order (blank, PSNR, identity) and the first
    # failure is named. A warning is better than a silently bad video: the person sees why the video will look
    # wrong and what would fix it (a face model trained on real video), instead of blaming their photo or
    # trusting a poor result; and a video is still made, for whoever wants it anyway.
    assert read.psnr < MIN_PSNR and "PSNR" in read.problem and "PSNR" in message
    assert portrait.problem is None and portrait.psnr > MIN_PSNR


class PoseTalker(Talker):
    """A Talker with a pose control: a fixed head yaw, set after sampling (as `_adjust` sets the intensity)."""

    fixed_yaw: float | None = None
    yaw_column: int = 0          # the yaw's place in the pose (yaw, pitch, roll, tx, ty, distance)

    def _adjust(self, motion, settings):
        motion = super()._adjust(motion, settings)
        if self.fixed_yaw is not None:
            motion = motion.clone()
            motion[:, self.yaw_column] = self.fixed_yaw
        return motion


def pose_control(posed: PoseTalker) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """One sentence through a PoseTalker: the motion sampled free and with the yaw fixed at -0.15; which of the
    motion's numbers asking another gaze changes (the same seed); the yaw read back from the frames of the two."""
    speech = synthesize("Hello there! Nice to see you again.", voice="en-us").audio
    free = posed.motion_offline(speech, Settings(steps=10))
    posed.fixed_yaw = -0.15
    fixed = posed.motion_offline(speech, Settings(steps=10))
    # (In the app: a gr.Slider(-0.4, 0.4) for the yaw, passed on to the Talker as `fixed_yaw`.)
    with torch.no_grad():
        seen = {name: talker.face.encode_motion(talker.render(portrait, m))[0][:, 0] for name, m in
                (("sampled", free), ("fixed at -0.15", fixed))}
    conditioned = posed.motion_offline(speech, Settings(steps=10, gaze=(0.2, 0.0)))
    changed = (conditioned - free).abs().amax(0) > 1e-4                   # which of the motion's numbers moved
    return free, fixed, changed, seen


def check_exercise_3(free: torch.Tensor, fixed: torch.Tensor, changed: torch.Tensor,
                     seen: dict[str, torch.Tensor]) -> None:
    """`pose_control`'s answers: the edit is exact and alone, a condition moves everything, the frames turn."""
    assert torch.all(fixed[:, 0] == -0.15) and torch.equal(fixed[:, 1:], free[:, 1:])
    assert changed.all()
    assert float(seen["fixed at -0.15"].mean()) < float(seen["sampled"].mean()) - 0.05   # the edit reaches the frames


def exercise_3():
    """A "pose" control: a slider that fixes the head's yaw. A condition or a post-hoc edit?"""
    free, fixed, changed, seen = pose_control(PoseTalker(talker.face, talker.motion, talker.identity_net))
    print("yaw read back from the rendered frames (mean, std over frames):",
          {k: (round(float(v.mean()), 3), round(float(v.std()), 4)) for k, v in seen.items()})
    # A post-hoc edit: the model never sees it. It is exact in z_pose (yaw -0.15 in every frame, checked below) and
    # changes nothing else: the rest of the motion is the sample drawn for the free yaw, so nothing (nods, gaze,
    # z_dyn) adapts to the new yaw. A condition (like gaze or distance) is an input of the model: the sampled
    # motion as a whole is drawn to fit it, so changing it changes every part of the motion (but only as well as
    # the model learned to follow it, and it must be trained in). Compare: the same seed with another gaze asked.
    print(f"numbers of the motion changed: by the yaw edit {int((fixed != free).any(0).sum())} of {free.shape[1]}, "
          f"by asking another gaze {int(changed.sum())} of {free.shape[1]}")
    check_exercise_3(free, fixed, changed, seen)
    # What shows in the frames is up to the face model (the figures above): at the time of writing the head turns,
    # but the rendered yaw does not hold still, because the sampled z_dyn still carries part of the sampled head
    # motion (the pose leak of notebook 02), and this face model turns heads only partly (notebook 01; try +0.15:
    # this head hardly turns right at all).


class LoggedTalker(Talker):
    """The Talker, writing in `log` when its two entry points start and end (on the server, in the order they
    happen). A stream waits at its start until `go_on` is set, so that a second request surely arrives while it
    runs; a /generate that starts sets it (it did not wait)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log, self.streaming, self.go_on = [], threading.Event(), threading.Event()

    def motion_offline(self, *args, **kwargs):
        self.log.append("generate starts")
        self.go_on.set()
        motion = super().motion_offline(*args, **kwargs)
        self.log.append("generate ends")
        return motion

    def motion_stream(self, *args, **kwargs):
        self.log.append("stream starts")
        self.streaming.set()
        self.go_on.wait(120)
        yield from super().motion_stream(*args, **kwargs)
        self.log.append("stream ends")


def exercise_4():
    """/generate from a second client while a /stream job runs: what does the queue do?"""
    from gradio_client import Client, handle_file
    from gradio_client.utils import Status

    from vasa_lib.demo import MAX_UPLOAD, build

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logged = LoggedTalker(talker.face, talker.motion, talker.identity_net)
    app = build(logged)
    with contextlib.redirect_stdout(io.StringIO()):
        app.queue(default_concurrency_limit=1, max_size=8).launch(
            server_name="127.0.0.1", server_port=port, max_file_size=MAX_UPLOAD, prevent_thread_lock=True, quiet=True)

    def inputs(text):
        return [handle_file(str(PORTRAIT)), None, text, "en-us", 0.0, 0.0, 1.0, "neutral", 0.0, 1.0, 10, 0, 1.0]

    try:
        clients = Client(app.local_url, verbose=False), Client(app.local_url, verbose=False)
        stream = clients[0].submit(*inputs("Streaming, frame by frame, while another comes in."), api_name="/stream")
        assert logged.streaming.wait(120)                   # the stream is running on the server ...
        generate = clients[1].submit(*inputs("Hello."), api_name="/generate")   # ... when the /generate is sent
        deadline = time.monotonic() + 120                   # a guard against hanging, nothing is timed
        while not logged.go_on.is_set() and generate.status().code not in (Status.IN_QUEUE, Status.PROCESSING):
            assert time.monotonic() < deadline, "the server never took the /generate"
            time.sleep(0.02)                                # until the server has it: waiting, or running
        status = generate.status().code
        logged.go_on.set()
        stream.result(timeout=120)
        generate.result(timeout=120)
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            app.close()
    print(f"the /generate sent during the /stream: {status.value} on the client; on the server:",
          " -> ".join(logged.log))
    # The demo gives both buttons one queue: `concurrency_id="talker"` with `concurrency_limit=1` on both listeners
    # (vasa_lib/demo.py), because they share one Talker. So a /generate sent during a /stream waits in the queue
    # ("in queue" on its client) and starts only once the stream is over, however short it is; a second /generate
    # waits for the first the same way. (`default_concurrency_limit=1` alone would not do it: it is a limit *per
    # event listener*, and a /generate would run beside a /stream, both on the same Talker.) The client's own
    # "done" can come later for a stream than for the /generate behind it, because the stream's client is still
    # downloading its frames: only the server's order says what the queue did.
    # Why one worker at a time is right on a CPU: each job already uses a core (the models run on one thread;
    # the other serves the page and encodes video). Two jobs at once each run at half speed or worse, so both
    # finish later than one after the other would, a stream falls below real time, and memory doubles; with a
    # queue the first request gets the whole machine and the others see their place in line.
    assert status == Status.IN_QUEUE
    assert logged.log == ["stream starts", "stream ends", "generate starts", "generate ends"]


if __name__ == "__main__":
    for exercise in (exercise_1, exercise_2, exercise_3, exercise_4):
        start = time.time()
        exercise()
        print(f"--- {exercise.__name__} passed in {time.time() - start:.1f} s\n")
