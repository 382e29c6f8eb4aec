"""Is the realism detector calibrated? Its control, run many times. Prints JSON.

    python benchmarks/detector_control.py --json                       # the world's parameters
    python benchmarks/detector_control.py --space latent --json        # the shipped face model's latents

The report's ground-truth rows (`vasa_lib.eval.report`) train the detector of `vasa_lib.eval.realism`
to tell the truth from the truth under another motion seed, where nothing can be told apart: a
calibrated detector scores 0.5 on held-out people, up to the noise of a small test set. Here that
control runs for `--repeats` detector seeds, each on another block of held-out clips (clips
r * clips .. (r + 1) * clips - 1 of the test split), with the report's sizes. A mean below 0.5 by
more than its standard error would be a bias of the test, not chance.
"""

import argparse
import json
import statistics
import time

import torch

from vasa_lib import paths
from vasa_lib.eval.realism import detector_accuracy, train_detector
from vasa_lib.motion.latents import WORLD, load_latents


def control(space: str, n_clips: int, n_train: int, repeats: int, detector_steps: int = 300) -> dict:
    """The control's held-out accuracy for each repeat, with their mean and standard error."""
    face = WORLD if space == "world" else paths.checkpoint("face")
    truth_train = load_latents("train", n_train, face).split("motion")
    other_train = load_latents("train", n_train, face, motion_seed=1).split("motion")
    accuracies = []
    for r in range(repeats):
        truth = load_latents("test", n_clips, face, start=r * n_clips).split("motion")
        other = load_latents("test", n_clips, face, start=r * n_clips, motion_seed=1).split("motion")
        detector = train_detector(truth_train, other_train, steps=detector_steps, seed=r)
        accuracies.append(round(detector_accuracy(detector, truth, other), 4))
    mean = statistics.mean(accuracies)
    sem = statistics.stdev(accuracies) / len(accuracies) ** 0.5 if repeats > 1 else float("nan")
    return {"accuracies": accuracies, "mean": round(mean, 4), "standard_error": round(sem, 4),
            "bias_below_half": bool(mean < 0.5 - 2 * sem)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=("world", "latent"), default="world")
    parser.add_argument("--clips", type=int, default=16, help="held-out test clips per repeat (the report's 16)")
    parser.add_argument("--train-clips", type=int, default=32, help="train clips for the detector (the report's 32)")
    parser.add_argument("--repeats", type=int, default=6, help="detector seeds, each on its own held-out clips")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    result = control(args.space, args.clips, args.train_clips, args.repeats)
    result["settings"] = {"space": args.space, "clips": args.clips, "train_clips": args.train_clips,
                          "repeats": args.repeats, "threads": args.threads,
                          "seconds": round(time.perf_counter() - start, 1)}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
