"""Real-time speed of the whole pipeline, and drift over long audio (VASA-1 Sec. 4). Prints JSON.

    python benchmarks/realtime.py --json                      # full: 50/25/10 steps, 300 s drift check
    python benchmarks/realtime.py --json --long-seconds 30    # quicker drift check

Speed, at the face model's resolution (128 x 128) on `--threads` CPU threads, for each number of
sampling steps, on `--seconds` of speech (the portrait is encoded once beforehand, `portrait_ms`):
- offline_fps: frames per second of offline generation (whole-clip motion, batched decoding);
- stream_fps and first_frame_latency_ms: the same through the streaming generator, and the time
  from starting it (all audio available) to the first frame. Streaming also waits for
  `lookahead_ms` of audio beyond each window (the audio encoder's receptive field);
- audio_features_ms_per_window, diffusion_ms_per_window, decoding_ms_per_frame: where the time goes;
- realtime_factor: stream_fps / 25 (above 1: faster than real time);
- live_latency_ms: from the first word of live speech to its first frame: the first window's
  frames (`--first-window`, short for live speech) and the look-ahead must have been spoken before
  it can be sampled, then its first-frame latency (at the fewest steps measured); live_stream_fps
  the stream's speed with that first window; live_latency_whole_window_ms the same with a whole
  first window of W frames.
VASA-1 reports 45 fps offline and 40 fps streaming with 170 ms latency at 512 x 512 on an RTX 4090.

Drift (`--long-seconds` of speech, streamed), first and last minute: whether the motion stays in
the training range (|z| of the normalised latents, share of frames within 4 standard deviations),
whether the head keeps moving (pose std), whether windows join without a seam (`seam_ratio`: the
head's turn across window borders over its turn inside windows, 1 = no seam), whether the identity
is kept (identity-network similarity of the first and last second of frames to the portrait) and
whether memory stays flat (resident set growth). `drift_world`: the same speech for the parameter
path (`motion_world`), against the world's own motion of the same person for the same sentences
(`world_drift`): the spread, range, blinks and lip sync of the truth are the yardstick.
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from vasa_lib import paths
from vasa_lib.audio.mel import SAMPLES_PER_FRAME
from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.eval.motion import blinks_per_minute, pearson, seam_ratio, shipped_models
from vasa_lib.motion.latents import WORLD
from vasa_lib.motion.model import MotionGenerator
from vasa_lib.motion.windows import clip_motion
from vasa_lib.pipeline import LIVE_FIRST_WINDOW, Settings, Talker, receptive_radius
from vasa_lib.world.clips import clip_from_speech
from vasa_lib.world.identity import IDENTITY_SPLITS
from vasa_lib.world.params import FPS, POSE_DIM, POSE_LIMITS, SAMPLE_RATE, dyn_index
from vasa_lib.world.sentences import sentence_for
from vasa_lib.world.speech import Speech, synthesize

PORTRAIT = "test_10100.png"   # in vasa_lib.paths.portraits_dir()
PAUSE = int(0.3 * SAMPLE_RATE)   # samples of silence between sentences


def sentences(seconds: float, voice: str = "en-us") -> list[Speech]:
    """Held-out sentences, as many as it takes to fill `seconds` with 0.3 s between them."""
    speeches, n = [], 0
    while n < seconds * SAMPLE_RATE:
        speeches.append(synthesize(sentence_for(len(speeches), "test"), voice=voice))
        n += len(speeches[-1].audio) + PAUSE
    return speeches


def speech_of(seconds: float, voice: str = "en-us") -> np.ndarray:
    """Held-out sentences read one after another with 0.3 s pauses, cut to `seconds`: (N,) 16 kHz."""
    pause = np.zeros(PAUSE, np.float32)
    return np.concatenate([part for s in sentences(seconds, voice) for part in (s.audio, pause)])[
        : int(seconds * SAMPLE_RATE)]


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def speed(talker: Talker, portrait, audio: np.ndarray, settings: Settings, repeats: int) -> dict:
    """Offline and streaming speed at these settings (best of `repeats` runs each)."""
    n_frames = int(np.ceil(len(audio) / SAMPLES_PER_FRAME))
    n_windows = int(np.ceil(n_frames / talker.motion.transformer.config.window))
    offline, stream, latency, stages = [], [], [], None
    for _ in range(repeats):
        talker.timings = {}
        start = time.perf_counter()
        motion = talker.motion_offline(audio, settings)
        for _ in talker.frames(portrait, [motion]):
            pass
        offline.append(time.perf_counter() - start)
        if stages is None or offline[-1] == min(offline):
            stages = dict(talker.timings)
        start = time.perf_counter()
        first = None
        for _ in talker.frames(portrait, talker.motion_stream(audio, settings)):
            first = first or time.perf_counter() - start
        stream.append(time.perf_counter() - start)
        latency.append(first)
    return {"offline_fps": round(n_frames / min(offline), 2), "stream_fps": round(n_frames / min(stream), 2),
            "first_frame_latency_ms": round(1000 * min(latency), 1),
            "audio_features_ms_per_window": round(1000 * stages["audio_features"] / n_windows, 2),
            "diffusion_ms_per_window": round(1000 * stages["diffusion"] / n_windows, 1),
            "decoding_ms_per_frame": round(1000 * stages["decoding"] / n_frames, 2),
            "realtime_factor": round(n_frames / min(stream) / FPS, 3)}


def drift(talker: Talker, portrait, seconds: float, steps: int) -> dict:
    """Stream `seconds` of speech; compare the first and the last minute (or fifth, if shorter)."""
    audio = speech_of(seconds)
    start, rss_start = time.perf_counter(), None
    windows = []
    for window in talker.motion_stream((audio[i: i + SAMPLE_RATE] for i in range(0, len(audio), SAMPLE_RATE)),
                                       Settings(steps=steps)):
        windows.append(window)
        rss_start = rss_start or rss_mb()
    motion = torch.cat(windows)
    span = min(60 * FPS, len(motion) // 5)
    t = talker.motion.transformer
    z = ((motion - t.motion_mean) / t.motion_std).abs()
    pose = motion[:, :5]

    def part(x: torch.Tensor, first: bool) -> torch.Tensor:
        return x[:span] if first else x[-span:]

    frames_first, frames_last = talker.render(portrait, motion[:FPS]), talker.render(portrait, motion[-FPS:])
    in_world = ((motion[:, :6] >= POSE_LIMITS[:, 0]) & (motion[:, :6] <= POSE_LIMITS[:, 1])).all(1).float()
    return {"seconds": round(len(audio) / SAMPLE_RATE, 1), "steps": steps, "frames": len(motion),
            "compared_seconds": round(span / FPS, 1),
            "within_4_std_first": round(float((part(z, True) <= 4).all(1).float().mean()), 4),
            "within_4_std_last": round(float((part(z, False) <= 4).all(1).float().mean()), 4),
            "mean_abs_z_first": round(float(part(z, True).mean()), 3),
            "mean_abs_z_last": round(float(part(z, False).mean()), 3),
            "seam_ratio": round(seam_ratio([motion[:, :POSE_DIM]], t.config.window), 3),
            "pose_in_world_range_last": round(float(part(in_world, False).mean()), 4),
            "pose_std_first": [round(v, 4) for v in part(pose, True).std(0).tolist()],
            "pose_std_last": [round(v, 4) for v in part(pose, False).std(0).tolist()],
            "id_similarity_first_second": round(float(talker.identity_similarity(portrait, frames_first).mean()), 4),
            "id_similarity_last_second": round(float(talker.identity_similarity(portrait, frames_last).mean()), 4),
            "rss_growth_mb": round(rss_mb() - rss_start, 1),
            "motion_seconds": round(time.perf_counter() - start, 1)}


def world_drift(seconds: float, steps: int, checkpoint: str | Path | None = None) -> dict:
    """The parameter path over long speech: the world-space generator (`motion_world`) against the
    world's own motion of the same test person for the same sentences, read back to back; the
    first and the last minute (or fifth, if shorter) compared. Pose spread in radians (yaw, pitch,
    roll) and world units (tx, ty, distance); "in the truth's range": the share of the 17 numbers
    of all frames that lie between the truth's 1st and 99th percentile over the whole speech, each
    range widened by a tenth of its width on both sides (a number the truth holds still, such as a
    person's resting tongue, has a range of width 0)."""
    person = int(IDENTITY_SPLITS["test"][0])
    clips = [clip_from_speech(s, person, motion_seed=i) for i, s in enumerate(sentences(seconds))]
    truth = torch.cat([clip_motion(c) for c in clips])
    model = load_checkpoint(checkpoint or shipped_models(WORLD)[0], MotionGenerator)
    start = time.perf_counter()
    motion = model.generate(torch.from_numpy(np.concatenate([c.audio for c in clips])), steps=steps)
    motion_seconds = time.perf_counter() - start
    span = min(60 * FPS, len(motion) // 5)
    low, high = torch.quantile(truth, torch.tensor([0.01, 0.99]), dim=0)
    margin = 0.1 * (high - low) + 1e-3
    low, high = low - margin, high + margin
    eyelid = POSE_DIM + dyn_index("eyelid")

    def figures(x: torch.Tensor) -> dict:
        first, last = x[:span], x[-span:]
        in_range = lambda p: round(float(((p >= low) & (p <= high)).float().mean()), 4)  # noqa: E731
        return {"pose_std_first": [round(v, 4) for v in first[:, :POSE_DIM].std(0).tolist()],
                "pose_std_last": [round(v, 4) for v in last[:, :POSE_DIM].std(0).tolist()],
                "in_truth_range_first": in_range(first), "in_truth_range_last": in_range(last),
                "blinks_per_min_first": round(blinks_per_minute(first[:, eyelid]), 1),
                "blinks_per_min_last": round(blinks_per_minute(last[:, eyelid]), 1)}

    jaw = POSE_DIM + dyn_index("jaw_open")
    return {"seconds": round(len(motion) / FPS, 1), "steps": steps, "compared_seconds": round(span / FPS, 1),
            "lip_sync_corr_first": round(pearson(motion[:span, jaw], truth[:span, jaw]), 4),
            "lip_sync_corr_last": round(pearson(motion[-span:, jaw], truth[-span:, jaw]), 4),
            "seam_ratio": round(seam_ratio([motion[:, :POSE_DIM]], model.transformer.config.window), 3),
            "generated": figures(motion), "truth": figures(truth), "motion_seconds": round(motion_seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of the models (see pipeline.num_threads)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoints", help="checkpoint folder (default: the shipped checkpoints)")
    parser.add_argument("--seconds", type=float, default=10.0, help="speech for the speed figures")
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 25, 10])
    parser.add_argument("--repeats", type=int, default=2, help="runs per figure (the best counts)")
    parser.add_argument("--long-seconds", type=float, default=300.0, help="speech for the drift check (0: skip)")
    parser.add_argument("--long-steps", type=int, default=10, help="sampling steps in the drift check")
    parser.add_argument("--first-window", type=int, default=LIVE_FIRST_WINDOW,
                        help="frames of the first window for live speech (Settings.first_window)")
    args = parser.parse_args()
    talker = Talker.from_checkpoints(args.checkpoints, device=args.device, threads=args.threads)
    talker.portrait(paths.portraits_dir() / PORTRAIT, strict=False)                               # warm-up
    start = time.perf_counter()
    portrait = talker.portrait(paths.portraits_dir() / PORTRAIT, strict=False)
    portrait_ms = 1000 * (time.perf_counter() - start)
    audio = speech_of(args.seconds)
    talker.motion_offline(audio[: SAMPLE_RATE], Settings(steps=2))        # warm-up
    m = receptive_radius(talker.motion.audio_encoder) + 1
    result = {"device": args.device if args.device != "cpu" else f"cpu ({platform.processor() or platform.machine()})",
              "threads": args.threads, "torch": torch.__version__, "size": talker.size,
              "window": talker.motion.transformer.config.window, "context": talker.motion.transformer.config.context,
              "lookahead_ms": m * 1000 // FPS, "portrait_ms": round(portrait_ms, 1),
              "portrait_psnr": round(portrait.psnr, 2),
              "portrait_id_similarity": round(portrait.identity_similarity, 3),
              "clip_seconds": args.seconds,
              "load_average": [round(x, 2) for x in os.getloadavg()]}
    with torch.inference_mode():
        result["by_steps"] = {str(s): speed(talker, portrait, audio, Settings(steps=s), args.repeats)
                              for s in args.steps}
        result.update(result["by_steps"][str(min(args.steps))], steps=min(args.steps))
        # live: the first window starts once its frames and the look-ahead M have been spoken
        live = speed(talker, portrait, audio, Settings(steps=min(args.steps), first_window=args.first_window),
                     args.repeats)
        result.update(first_window=args.first_window, live_stream_fps=live["stream_fps"],
                      live_latency_ms=round(args.first_window * 1000 / FPS + result["lookahead_ms"]
                                            + live["first_frame_latency_ms"], 1),
                      live_latency_whole_window_ms=round(result["window"] * 1000 / FPS + result["lookahead_ms"]
                                                         + result["first_frame_latency_ms"], 1))
        if args.long_seconds > 0:
            result["drift"] = drift(talker, portrait, args.long_seconds, args.long_steps)
            world = Path(args.checkpoints) / "motion_world.safetensors" if args.checkpoints else None
            result["drift_world"] = world_drift(args.long_seconds, args.long_steps, world)
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
