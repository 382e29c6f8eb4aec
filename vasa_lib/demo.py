"""The Gradio demo: a portrait and a voice in, a talking face out, live (VASA-1 Sec. 4).

    python -m vasa_lib.demo                  # http://127.0.0.1:7860, this machine only
    python -m vasa_lib.demo --host 0.0.0.0   # reachable from the network: only if you mean it

Portrait: a gallery of held-out (test-split) people of the synthetic world, a random new face of
the world, or an upload. Speech: an upload, the microphone, or typed text spoken by the world's
text-to-speech in one of the world's voices (`VOICES`). The first gallery portrait is selected
when the page opens, so "Generate" works on the first click. Controls: gaze, head distance,
emotion, guidance scales, sampling steps, seed, motion intensity. "Generate" makes the whole clip
(offline mode); "Stream" shows the frames as they are made, window by window (streaming mode).
Both give the video with its sound and a plot of the generated head pose and mouth opening.
"Your own video" takes a webcam recording or an upload through the real-video path (notebook
09): what ingestion keeps or refuses, the crops with their landmarks, and the labels over time.

Every outcome is written in the status line beside the video: what was made, or why nothing was
(no portrait, no speech, unreadable audio, speech too long, unknown voice, ...). A request never
fails with a bare "Error": bad input is answered with a readable message (and a toast).

Safety: the server listens on 127.0.0.1 unless told otherwise, caps uploads (`MAX_UPLOAD`) and
speech length, and serves no files but the portraits it shows and the videos it wrote itself (in
a private temporary folder, the oldest deleted beyond `KEEP_VIDEOS`). Every video carries the
visible "AI-generated" mark and a provenance note in its metadata. The face model knows only the
synthetic world: an upload it cannot reconstruct gets a warning that says why, and the warning
stays beside its video.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from einops import rearrange
from matplotlib.figure import Figure

from vasa_lib import paths
from vasa_lib.motion.sampler import DEFAULT_STEPS
from vasa_lib.pipeline import REAL_VIDEO_HINT, Portrait, Settings, Talker, load_speech, provenance
from vasa_lib.video import write_video
from vasa_lib.world.identity import identity_from_id, sample_identity
from vasa_lib.world.params import EMOTIONS, FPS, NEUTRAL_DYNAMICS, NEUTRAL_POSE
from vasa_lib.world.renderer import render
from vasa_lib.world.speech import FOREIGN_VOICES, TEST_VOICES, TRAIN_VOICES

MAX_UPLOAD = "10mb"
MAX_SECONDS = 30.0          # longest speech the demo accepts
KEEP_VIDEOS = 20            # videos kept in the output folder
MAX_STEPS = 2 * DEFAULT_STEPS   # top of the sampling steps slider (its default: DEFAULT_STEPS)
VIDEO_SIZE = 384            # pixels: the 128 x 128 frames, shown enlarged
# The voice dropdown: (label, eSpeak NG voice). Another eSpeak voice can be typed in (e.g. "fr").
VOICES: list[tuple[str, str]] = (
    [("en-us (eSpeak's default voice)", "en-us")]
    + [(f"{v} (a training voice)", v) for v in TRAIN_VOICES]
    + [(f"{v} (an accent unseen in training)", v) for v in TEST_VOICES]
    + [(f"{v} (German: a language unseen in training)", v) for v in FOREIGN_VOICES])

log = logging.getLogger(__name__)


def world_portrait(person: int | None = None, seed: int = 0, size: int = 128) -> np.ndarray:
    """A frontal, neutral portrait (size, size, 3) uint8 of world identity number `person`, or of
    a new random person of the world (never one of the numbered ones) drawn with `seed`."""
    if person is not None:
        identity = identity_from_id(person)
    else:
        identity = sample_identity(np.random.default_rng([seed, 0xFACE]))
    image = render(identity[None], NEUTRAL_POSE[None], NEUTRAL_DYNAMICS[None], size=size)[0]
    return (rearrange(image, "c h w -> h w c") * 255).round().byte().numpy()


def to_uint8(frame: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8 for display."""
    return (rearrange(frame, "c h w -> h w c").clamp(0, 1) * 255).round().byte().cpu().numpy()


def motion_plot(talker: Talker, motion: torch.Tensor) -> Figure:
    """Head pose (yaw, pitch, roll in degrees) and mouth opening of generated motion (T, D) against time."""
    t = np.arange(len(motion)) / FPS
    fig = Figure(figsize=(7, 4.4), layout="constrained")
    fig.suptitle("Generated head pose and mouth opening")
    pose, mouth = fig.subplots(2, 1, sharex=True)
    for i, name in enumerate(("yaw", "pitch", "roll")):
        pose.plot(t, np.degrees(motion[:, i].cpu().numpy()), label=name)
    pose.set_ylabel("head pose (°)")
    pose.legend(loc="upper right", ncols=3, fontsize="small")
    mouth.plot(t, talker.mouth_opening(motion).cpu().numpy(), color="C3")
    mouth.set_ylabel("mouth opening")
    mouth.set_xlabel("time (s)")
    return fig


class Demo:
    """The app's state: one Talker (checkpoints loaded once) and a private output folder."""

    def __init__(self, talker: Talker, max_seconds: float = MAX_SECONDS):
        self.talker, self.max_seconds = talker, max_seconds
        self.out_dir = Path(tempfile.mkdtemp(prefix="vasa_demo_"))

    def _new_video_path(self) -> Path:
        videos = sorted(self.out_dir.glob("*.mp4"), key=lambda p: p.stat().st_mtime)
        for old in videos[: max(0, len(videos) - KEEP_VIDEOS + 1)]:
            old.unlink(missing_ok=True)
        return self.out_dir / f"{uuid.uuid4().hex}.mp4"

    def _inputs(self, image: np.ndarray | None, audio: str | None, text: str | None, voice: str | None,
                theta: float, phi: float, distance: float, emotion: str, audio_scale: float, gaze_scale: float,
                steps: float | None, seed: float | None, intensity: float
                ) -> tuple[Portrait, np.ndarray, Settings, str]:
        """Checked inputs and the warning to show beside the video ("" if none); ValueError with a
        readable message for input that cannot make a video."""
        if image is None:
            raise ValueError("no portrait: click one in the gallery, make a random face, or upload one")
        if not audio and not (text or "").strip():
            raise ValueError("no speech: the text is empty and no audio was given. Type something to say, "
                             "or upload or record audio")
        if seed is None or steps is None:
            raise ValueError("the seed and the sampling steps must be whole numbers")
        settings = Settings(gaze=(theta, phi), distance=distance, emotion=emotion,
                            scales={"audio": audio_scale, "gaze": gaze_scale}, steps=int(steps), seed=int(seed),
                            intensity=intensity)
        self.talker.check(settings)
        speech = (load_speech(audio, max_seconds=self.max_seconds) if audio
                  else load_speech(text=text, voice=voice or "en-us", max_seconds=self.max_seconds))
        portrait = self.talker.portrait(image, strict=False)
        if not portrait.problem:
            return portrait, speech, settings, ""
        warning = (f"the face model cannot read this portrait: {portrait.problem}. Expect a poor video. "
                   f"{REAL_VIDEO_HINT}")
        gr.Warning(warning, title="Unreadable portrait")
        return portrait, speech, settings, f"**Warning:** {warning}\n\n"

    def generate(self, *inputs) -> tuple[str | None, Figure | None, str]:
        """Offline mode: the whole clip. Returns the video path, the motion plot and the status
        (the portrait's warning, then what was made); on failure no video and the reason."""
        try:
            portrait, speech, settings, note = self._inputs(*inputs)
            self.talker.timings = {}
            motion = self.talker.motion_offline(speech, settings)
            path = write_video(self._new_video_path(), (c.frames for c in self.talker.frames(portrait, [motion])),
                               speech, metadata=provenance(settings))
        except Exception as err:
            return None, None, failure(err)
        seconds = sum(self.talker.timings.values())
        status = (f"{len(motion)} frames ({len(motion) / FPS:.1f} s) in {seconds:.1f} s: "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in self.talker.timings.items()))
        return str(path), motion_plot(self.talker, motion), note + status

    def stream(self, *inputs) -> Iterator[tuple[np.ndarray | None, str | None, Figure | None, str]]:
        """Streaming mode: each frame as soon as it is made, then the video and the plot; on
        failure no video and the reason."""
        try:
            portrait, speech, settings, note = self._inputs(*inputs)
            frames, motion = [], []
            for chunk in self.talker.frames(portrait, self.talker.motion_stream(speech, settings)):
                frames.append(chunk.frames)
                motion.append(chunk.motion)
                for i, frame in enumerate(chunk.frames):
                    yield to_uint8(frame), None, None, f"{note}frame {chunk.start + i + 1}"
            motion = torch.cat(motion)
            path = write_video(self._new_video_path(), frames, speech, metadata=provenance(settings))
        except Exception as err:
            yield None, None, None, failure(err)
            return
        status = f"{note}{len(motion)} frames streamed"
        yield to_uint8(frames[-1][-1]), str(path), motion_plot(self.talker, motion), status


def failure(err: Exception) -> str:
    """The status for a request that made no video, also shown as a toast. A ValueError is bad
    input and says what to change; anything else is a bug: logged with its traceback."""
    if isinstance(err, ValueError):
        message = str(err)
    else:
        log.exception("the demo failed")
        message = f"something went wrong ({type(err).__name__}: {err}); the server's log has the details"
    gr.Warning(message, title="No video")
    return f"**Error:** {message}"


def look_at_video(path: str | None) -> tuple[Figure | None, str]:
    """The "Your own video" panel: ingest a recorded or uploaded video alone, as training data
    would be (`real.own_video.look_at`), and draw its crops, landmarks and labels over time."""
    if not path:
        return None, "Record or upload a video first."
    try:
        from vasa_lib.real.ingest import REASONS
        from vasa_lib.real.own_video import look_at, look_figure

        look = look_at(path)
    except (ImportError, ValueError) as err:
        return None, failure(ValueError(str(err)))
    if not look.clips:
        reasons = "; ".join(f"{r}: {REASONS[r]}" for r in dict.fromkeys(look.refusals))
        return None, f"Ingestion kept nothing of this video. {reasons}"
    return look_figure(look), (f"Kept {len(look.clips)} clip(s). Turning to your left raises the yaw; "
                               "jaw_open moves while you speak.")


def _pick(files: list[str]):
    """Gallery click -> that portrait as an (H, W, 3) array."""
    from PIL import Image

    def pick(evt: gr.SelectData) -> np.ndarray:
        with Image.open(files[evt.index]) as img:
            return np.asarray(img.convert("RGB"))
    return pick


def build(talker: Talker, max_seconds: float = MAX_SECONDS) -> gr.Blocks:
    """The Blocks app around a Talker. Its API: "/generate" (offline) and "/stream"."""
    demo = Demo(talker, max_seconds)
    gallery_files = sorted(str(p) for p in paths.portraits_dir().glob("*.png"))
    with gr.Blocks(title="VASA-1 from scratch") as app:
        gr.Markdown("# VASA-1 from scratch: a talking face from one portrait and speech\n"
                    "People and voices come from the course's synthetic world. Every video is marked "
                    "**AI-generated**.")
        with gr.Row():
            with gr.Column():
                portrait = gr.Image(gallery_files[0], label="Portrait", type="numpy", image_mode="RGB",
                                    sources=["upload"], height=256)
                gallery = gr.Gallery(gallery_files, label="Held-out people of the world (click one)", columns=6,
                                     height=150, allow_preview=False, selected_index=0)
                with gr.Row():
                    face_seed = gr.Number(0, label="new face seed", precision=0)
                    random_face = gr.Button("Random new face")
                audio = gr.Audio(label="Speech (upload or record)", sources=["upload", "microphone"], type="filepath")
                text = gr.Textbox("Hello there! I am a talking head from a synthetic world.",
                                  label="...or text to speak (used when no audio is given)", max_length=500)
                voice = gr.Dropdown(VOICES, value="en-us", label="voice (eSpeak NG)", allow_custom_value=True,
                                    info="one of the world's voices, or type another eSpeak voice (e.g. fr)")
                with gr.Accordion("Controls", open=True):
                    with gr.Row():
                        theta = gr.Slider(-0.4, 0.4, 0.0, step=0.05, label="gaze theta (rad, + right)")
                        phi = gr.Slider(-0.25, 0.25, 0.0, step=0.05, label="gaze phi (rad, + up)")
                    with gr.Row():
                        distance = gr.Slider(0.85, 1.35, 1.0, step=0.05, label="head distance")
                        emotion = gr.Dropdown(list(EMOTIONS), value="neutral", label="emotion")
                    with gr.Row():
                        own = talker.motion.scales                 # the motion checkpoint's own scales
                        audio_scale = gr.Slider(0, 3, own.get("audio", 0.0), step=0.1,
                                                label="audio guidance (the paper: 0.5)")
                        gaze_scale = gr.Slider(0, 3, own.get("gaze", 0.0), step=0.1, label="gaze guidance")
                    with gr.Row():
                        steps = gr.Slider(1, MAX_STEPS, DEFAULT_STEPS, step=1, label="sampling steps")
                        seed = gr.Number(0, label="seed", precision=0, minimum=0)
                        intensity = gr.Slider(0, 2, 1.0, step=0.1, label="motion intensity")
            with gr.Column():
                with gr.Row():
                    go = gr.Button("Generate", variant="primary")
                    live = gr.Button("Stream")
                status = gr.Markdown("Choose a portrait and speech, then click **Generate** (or **Stream**).",
                                     elem_id="status")
                video = gr.Video(label="Video (with sound)", height=VIDEO_SIZE, interactive=False)
                live_frame = gr.Image(label="Streaming frames", type="numpy", height=256, interactive=False)
                plot = gr.Plot(label="Generated head pose and mouth opening", show_label=False)  # the figure's title
        with gr.Accordion("Your own video: what ingestion makes of it (crop, landmarks, labels)", open=False):
            with gr.Row():
                own_video = gr.Video(label="Record (webcam) or upload a few seconds of you speaking",
                                     sources=["webcam", "upload"], include_audio=True, height=256)
                with gr.Column():
                    look = gr.Button("Look at it")
                    own_status = gr.Markdown("Say something and turn your head to your left at about 2 s.")
            own_plot = gr.Plot(label="The kept clips: crops with landmarks, labels over time", show_label=False)
        inputs = [portrait, audio, text, voice, theta, phi, distance, emotion, audio_scale, gaze_scale, steps, seed,
                  intensity]
        gallery.select(_pick(gallery_files), None, portrait, api_name=False)
        random_face.click(lambda s: world_portrait(seed=int(s or 0)), face_seed, portrait, api_name="random_face")
        # one queue for both: they share one Talker, which must not run two requests at once
        go.click(demo.generate, inputs, [video, plot, status], api_name="generate", concurrency_id="talker",
                 concurrency_limit=1)
        live.click(demo.stream, inputs, [live_frame, video, plot, status], api_name="stream", concurrency_id="talker",
                   concurrency_limit=1)
        look.click(look_at_video, own_video, [own_plot, own_status], api_name="look_at_video")
    return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m vasa_lib.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--max-seconds", type=float, default=MAX_SECONDS, help="longest speech accepted")
    p.add_argument("--checkpoints", help="checkpoint folder (default: the shipped checkpoints)")
    args = p.parse_args(argv)
    talker = Talker.from_checkpoints(args.checkpoints, max_seconds=args.max_seconds)
    build(talker, args.max_seconds).queue(default_concurrency_limit=1, max_size=8).launch(
        server_name=args.host, server_port=args.port, max_file_size=MAX_UPLOAD)


if __name__ == "__main__":
    main()
