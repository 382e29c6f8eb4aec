"""How much of the parameter reader's shortfall is its prior? Prints JSON.

    python benchmarks/reader_prior.py --json        # about a minute on 2 cores

The reader (`vasa_lib.eval.reader`) is trained with 30% of the values drawn over their whole
range, so that requests far from natural motion are read too; its grade is on natural motion of
test people. Where the pixels confound two parameters (pressed lips hide how far the jaw is open,
shut eyes hide the gaze) its read is the mean under the training mix, not under natural motion.
This benchmark fits, by least squares on renders of train people, an affine read-out of the 11
facial parameters from the reader's own 11 reads, once on natural motion and once on the training
mix, and grades each (R^2 per `GROUPS`) on test people with natural motion (the reader's grade)
and with every value drawn over its whole range.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from vasa_lib import paths
from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.eval.reader import group_r2, renders
from vasa_lib.face.reader import ParameterReader
from vasa_lib.world.identity import IDENTITY_SPLITS
from vasa_lib.world.pairs import draw_motion, motion_bank
from vasa_lib.world.params import POSE_DIM


def reads(reader: ParameterReader, split: str, n: int, uniform_share: float, seed: int,
          n_clips: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(reads, truth), each (n, 17): renders of `split` people, motion from that split's clips with
    `uniform_share` of the values drawn over their whole range."""
    generator = torch.Generator().manual_seed(seed)
    bank = motion_bank(split, n_clips)
    true = bank[torch.randint(len(bank), (n,), generator=generator)]
    people = torch.tensor(IDENTITY_SPLITS[split])
    ids = people[torch.randint(len(people), (n,), generator=generator)]     # drawn as `eval.reader.grade` draws
    true = draw_motion(true, uniform_share, generator)
    return reader.read(renders(ids, true, reader.config.size, reader.config.framing)), true


def with_ones(read: torch.Tensor) -> torch.Tensor:
    """The facial reads (N, 11) and a column of ones: (N, 12)."""
    return torch.cat([read[:, POSE_DIM:], torch.ones(len(read), 1)], 1)


def recalibrated(read: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Reads (N, 17) with the facial ones replaced by the affine read-out `weights` (12, 11)."""
    return torch.cat([read[:, :POSE_DIM], with_ones(read) @ weights], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reader", default=str(paths.checkpoint("eval_reader_portrait")))
    parser.add_argument("--fit", type=int, default=2048, help="renders of train people the read-out is fit on")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    reader = load_checkpoint(args.reader, ParameterReader).eval()
    tests = {"natural": reads(reader, "test", 512, 0.0, 2, 40),       # the reader's own grade set
             "whole_range": reads(reader, "test", 512, 1.0, 3, 40)}
    report = {"command": " ".join(["python benchmarks/reader_prior.py", *sys.argv[1:]]),
              "reader": args.reader, "fit_renders": args.fit,
              "as_trained": {name: group_r2(read, true) for name, (read, true) in tests.items()}}
    for fit_name, share in (("fit_on_natural", 0.0), ("fit_on_training_mix", 0.3)):
        read, true = reads(reader, "train", args.fit, share, 5, 200)
        weights = torch.linalg.lstsq(with_ones(read), true[:, POSE_DIM:]).solution
        report[fit_name] = {name: group_r2(recalibrated(r, weights), t) for name, (r, t) in tests.items()}
    for key in ("as_trained", "fit_on_natural", "fit_on_training_mix"):
        report[key] = {name: {g: round(v, 4) for g, v in grades.items()} for name, grades in report[key].items()}
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
