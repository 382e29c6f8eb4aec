"""How well can the jaw be read from the audio features at all? The ceiling of lip sync. Prints JSON.

    python benchmarks/jaw_from_audio.py --json          # four variants, 1500 steps each (about 3 min each, one thread)
    python benchmarks/jaw_from_audio.py --json --voices many --variants plain   # trained on 456 voices instead of 14

The motion generator's lip sync (`lip_sync_corr`, `vasa_lib.eval.motion`) is the per-clip Pearson
correlation of its jaw opening with the world's true one. Issue 19 asks for 0.9 on held-out
people, sentences and, in about half the clips, voices never heard in training. This benchmark
asks what the log-mel features allow, with no motion model around them: a 3-layer convolutional
regressor (receptive field 13 frames, as the motion model's audio encoder) is trained for a fixed
number of steps to map the (T, 320) mel stacks of 1200 train clips to their true jaw opening, and graded on
the 48 test clips of `eval.motion`, split by the voice (heard in training or not). Variants:

- plain: the mel stacks standardised with the training set's statistics;
- cmn: each clip's mel mean over time subtracted first (cepstral mean normalisation: it removes a
  voice's constant colour, at the price of needing the whole clip or a running mean);
- shift: in training, each clip's 80 mel bins shifted by a random -4..4 bins (a vocal-tract-length
  perturbation: a crude new voice);
- cmn_shift: both.

`--voices many` speaks the same training clips with the 456 voices of `speech.MANY_VOICES` instead
of the world's 14 (`clips.make_clip`); the test clips keep theirs.
"""

import argparse
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vasa_lib.audio.mel import shift_mel_bins
from vasa_lib.eval.motion import pearson
from vasa_lib.motion.latents import WORLD, LatentSet, load_latents
from vasa_lib.world.clips import VOICES
from vasa_lib.world.params import DYNAMICS_NAMES

JAW = DYNAMICS_NAMES.index("jaw_open")
VARIANTS = ("plain", "cmn", "shift", "cmn_shift")
MAX_SHIFT = 4   # mel bins


def per_clip(latents: LatentSet) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(mel (T, 320), true jaw (T,)) of each clip."""
    bounds = latents.offsets.tolist()
    return [(latents.mel[a:b], latents.true_dynamics[a:b, JAW]) for a, b in zip(bounds[:-1], bounds[1:])]


def regressor() -> nn.Module:
    """(1, 320, T) -> (1, 1, T): three convolutions of width 5 (13 frames seen), as the mel encoder."""
    return nn.Sequential(nn.Conv1d(320, 256, 5, padding=2), nn.GELU(), nn.Conv1d(256, 256, 5, padding=2), nn.GELU(),
                         nn.Conv1d(256, 256, 5, padding=2), nn.GELU(), nn.Conv1d(256, 1, 1))


def run(variant: str, train: list, test: list, test_voice: list[bool], mean: torch.Tensor, std: torch.Tensor,
        steps: int, seed: int = 0) -> dict:
    """Train one variant for `steps` batches of 16 clips and grade it on the test clips."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net, cmn = regressor(), "cmn" in variant
    optimiser = torch.optim.AdamW(net.parameters(), 2e-3)

    def jaw(mel: torch.Tensor) -> torch.Tensor:
        if cmn:
            mel = mel - mel.mean(0, keepdim=True) + mean
        return net(rearrange((mel - mean) / std, "t c -> 1 c t"))[0, 0]

    start = time.perf_counter()
    for _ in range(steps):
        loss = 0.0
        for i in rng.integers(len(train), size=16):
            mel, true = train[i]
            if "shift" in variant:
                mel = shift_mel_bins(mel, int(rng.integers(-MAX_SHIFT, MAX_SHIFT + 1)))
            loss = loss + F.mse_loss(jaw(mel), true) / 16
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        corr = [pearson(jaw(mel), true) for mel, true in test]
    heard = [c for c, new in zip(corr, test_voice) if not new]
    unheard = [c for c, new in zip(corr, test_voice) if new]
    return {"seconds": round(time.perf_counter() - start, 1), "lip_sync_corr": round(float(np.mean(corr)), 4),
            "heard_voices": round(float(np.mean(heard)), 4), "unheard_voices": round(float(np.mean(unheard)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-clips", type=int, default=1200)
    parser.add_argument("--clips", type=int, default=48, help="test clips (those of eval.motion)")
    parser.add_argument("--steps", type=int, default=1500, help="training batches (16 clips) of each variant")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--voices", default="world", choices=VOICES, help="who speaks the training clips")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_set = load_latents("train", args.train_clips, WORLD, voices=args.voices)
    test_set = load_latents("test", args.clips, WORLD)
    train, test = per_clip(train_set), per_clip(test_set)
    mean, std = train_set.mel.mean(0), train_set.mel.std(0) + 1e-5
    voices = test_set.test_voice.tolist()
    report = {"command": " ".join(["python benchmarks/jaw_from_audio.py", *sys.argv[1:]]),
              "train_clips": args.train_clips, "voices": args.voices, "test_clips": args.clips,
              "unheard_voice_clips": int(sum(voices)),
              "steps": args.steps,
              "threads": args.threads,
              **{v: run(v, train, test, voices, mean, std, args.steps) for v in args.variants}}
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
