"""Speed of the synthetic world: batched rendering and text-to-speech. Prints one JSON object.

    python benchmarks/world_speed.py [--threads 2] [--batch 256] [--size 128] [--framing portrait]

render_fps_128: frames per second of `render` on batches of real clip parameters, at the framing
asked for (the default framing if none);
tts_realtime_factor: seconds of speech synthesised per second of compute (one thread);
clip_seconds_per_second: whole clips (speech + articulation + behaviour) made per second of compute,
in seconds of audio.
"""

import argparse
import json
import platform
import time

import numpy as np
import torch

from vasa_lib.world.clips import clip_from_speech
from vasa_lib.world.identity import identity_from_id
from vasa_lib.world.params import DEFAULT_FRAMING, FRAMINGS
from vasa_lib.world.renderer import render
from vasa_lib.world.sentences import sentence_for
from vasa_lib.world.speech import synthesize


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--sentences", type=int, default=12)
    parser.add_argument("--framing", default=DEFAULT_FRAMING, choices=sorted(FRAMINGS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    speech_seconds, speech_compute, clip_compute, clips = 0.0, 0.0, 0.0, []
    for i in range(args.sentences):
        text = sentence_for(i, "train")
        start = time.perf_counter()
        speech = synthesize(text)
        speech_compute += time.perf_counter() - start
        speech_seconds += speech.duration
        start = time.perf_counter()
        clips.append(clip_from_speech(speech, identity_id=i, motion_seed=i))
        clip_compute += time.perf_counter() - start

    pose = torch.from_numpy(np.concatenate([c.pose for c in clips]))
    dynamics = torch.from_numpy(np.concatenate([c.dynamics for c in clips]))
    identity = identity_from_id([i for i, c in enumerate(clips) for _ in range(c.n_frames)])
    pick = torch.randperm(len(pose), generator=torch.Generator().manual_seed(0))[: args.batch]
    with torch.inference_mode():
        seconds = best_time(lambda: render(identity[pick], pose[pick], dynamics[pick], size=args.size,
                                            framing=args.framing), repeats=5)

    print(json.dumps({
        f"render_fps_{args.size}": round(len(pick) / seconds, 1),
        "tts_realtime_factor": round(speech_seconds / speech_compute, 1),
        "clip_seconds_per_second": round(speech_seconds / (speech_compute + clip_compute), 1),
        "framing": args.framing,
        "batch": len(pick),
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
    }))


if __name__ == "__main__":
    main()
