"""Command line: one portrait and speech in, a talking-face mp4 with the sound out (VASA-1 Sec. 4).

    python -m vasa_lib.generate --image assets/portraits/test_10100.png --text "Hello there" --out /tmp/out.mp4
    python -m vasa_lib.generate --image me.png --audio speech.wav --out out.mp4 --emotion happy --steps 25

Bad input (not an image, a portrait the face model cannot read, unreadable, silent, empty or too
long audio, empty text, impossible control values) prints one clear message on stderr and exits
with status 2; the output file is then not written (videos are written atomically). Every video
carries a small visible "AI-generated" mark and a provenance note in its metadata.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vasa_lib.motion.sampler import DEFAULT_STEPS
from vasa_lib.pipeline import MAX_AUDIO_SECONDS, Settings, Talker, load_speech
from vasa_lib.world.params import EMOTIONS, SAMPLE_RATE


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vasa_lib.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--image", required=True, help="portrait image (PNG, JPEG, ...), a face of the synthetic world")
    speech = p.add_mutually_exclusive_group(required=True)
    speech.add_argument("--audio", help="speech audio file (WAV, FLAC, MP3, ...), any sample rate")
    speech.add_argument("--text", help="text spoken by the world's text-to-speech (eSpeak NG)")
    p.add_argument("--voice", default="en-us", help="eSpeak NG voice for --text, e.g. en-us+f3 (default en-us)")
    p.add_argument("--out", required=True, help="output .mp4")
    p.add_argument("--gaze", type=float, nargs=2, default=(0.0, 0.0), metavar=("THETA", "PHI"),
                   help="main gaze direction in radians (default 0 0: at the camera)")
    p.add_argument("--distance", type=float, default=1.0, help="head distance, 1 = nominal (default 1)")
    p.add_argument("--emotion", default="neutral", choices=EMOTIONS)
    p.add_argument("--audio-scale", type=float,
                   help="classifier-free guidance scale of the audio (the paper: 0.5; default: the motion "
                        "checkpoint's own)")
    p.add_argument("--gaze-scale", type=float,
                   help="classifier-free guidance scale of the gaze (default: the motion checkpoint's own)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"DDIM sampling steps per window (default {DEFAULT_STEPS}; 10 is ~5x faster)")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same motion")
    p.add_argument("--intensity", type=float, default=1.0, help="head motion intensity (0 = still, default 1)")
    p.add_argument("--stream", action="store_true", help="streaming mode (window by window; the same video)")
    p.add_argument("--max-seconds", type=float, default=MAX_AUDIO_SECONDS, help="longest speech accepted")
    p.add_argument("--checkpoints", default=None,
                   help="folder with the face, motion and identity_net checkpoints (default: the shipped ones)")
    p.add_argument("--no-label", action="store_true",
                   help="leave out the visible AI-generated mark (the metadata keeps it)")
    p.add_argument("--force", action="store_true", help="animate a portrait even if the face model reads it poorly")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    start = time.perf_counter()
    try:
        out = Path(args.out)
        if out.suffix.lower() != ".mp4":
            raise ValueError(f"--out must end in .mp4, got {args.out}")
        talker = Talker.from_checkpoints(args.checkpoints, max_seconds=args.max_seconds, label=not args.no_label)
        given = {name: s for name, s in (("audio", args.audio_scale), ("gaze", args.gaze_scale)) if s is not None}
        settings = Settings(gaze=tuple(args.gaze), distance=args.distance, emotion=args.emotion,
                            scales=talker.motion.scales | given, steps=args.steps,
                            seed=args.seed, intensity=args.intensity)
        talker.check(settings)
        audio = load_speech(args.audio, args.text, args.voice, args.max_seconds)
        portrait = talker.portrait(args.image, strict=not args.force)
        if portrait.problem:
            print(f"warning: the face model reads this portrait poorly: {portrait.problem}", file=sys.stderr)
        talker.write(out, portrait, audio, settings, streaming=args.stream)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    stages = ", ".join(f"{name} {t:.1f} s" for name, t in talker.timings.items())
    print(f"wrote {out} ({len(audio) / SAMPLE_RATE:.1f} s of video) in {seconds:.1f} s ({stages})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
