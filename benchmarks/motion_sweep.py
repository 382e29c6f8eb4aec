"""What the sampler's settings buy (VASA-1 Sec. 3.2 and its guidance ablation, Sec. 4). Prints JSON.

    python benchmarks/motion_sweep.py --face world --json                 # the parameter-space generator
    python benchmarks/motion_sweep.py --json                               # the face-latent generator
    python benchmarks/motion_sweep.py --face world --condition gaze --json  # the gaze scale instead

On `--clips` held-out test clips (their audio and controls), the diffusion model is sampled
- with the guidance scale of one `--condition` (default audio) at each of `--scales` (the other
  scales at the model's own defaults, `MotionGenerator.scales`), at `--steps` DDIM steps;
- with each number of DDIM steps in `--step-counts`, at the model's own scales;
and each setting is graded with the per-clip metrics of `python -m vasa_lib.eval.motion` (lip sync,
SyncNet confidence, delta_p, gaze and distance error, emotion accuracy; blinks per minute in the
world's space), averaged over the clips. The truth's row is the same metrics on the clips' own motion.
`jaw_amplitude` is the std of the mouth opening (read by the jaw probe) over the true jaw's: whether
guidance, which extrapolates away from the audio-free prediction, widens timid mouths (amplitude
below 1) or only adds motion elsewhere.
"""

import argparse
import json
import time
from pathlib import Path

import torch

from vasa_lib import paths
from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.eval.motion import clip_metrics, generate_for, load_evaluators, shipped_models
from vasa_lib.motion.latents import WORLD, load_latents, motion_space
from vasa_lib.motion.model import MotionGenerator
from vasa_lib.motion.transformer import CONDITIONS
from vasa_lib.world.params import dyn_index

SHOWN = ("lip_sync_corr", "jaw_amplitude", "sync_conf", "delta_p", "gaze_err_deg", "distance_err", "emotion_acc",
         "blinks_per_min", "start_shut_share")


def averaged(per_clip: list[dict[str, float]]) -> dict[str, float]:
    """The SHOWN metrics averaged over clips."""
    return {k: round(sum(c[k] for c in per_clip) / len(per_clip), 4) for k in SHOWN if k in per_clip[0]}


def sweep(face: str | None, diffusion: str | None, n_clips: int, steps: int, condition: str, scales: list[float],
          step_counts: list[int], seed: int = 0, evaluators: str | None = None) -> dict:
    """The metrics at each guidance scale of `condition` and each number of steps (module docstring)."""
    face = motion_space(face or paths.checkpoint("face"))
    model = load_checkpoint(diffusion or shipped_models(face)[0], MotionGenerator)
    ev, _ = load_evaluators(face, Path(evaluators or paths.checkpoints_dir()))
    test = load_latents("test", n_clips, face)
    world = str(face) == WORLD

    true_jaw = test.true_dynamics[:, dyn_index("jaw_open")].split(test.lengths())

    def metrics(motions: list[torch.Tensor]) -> dict[str, float]:
        return averaged([clip_metrics(m, test, i, ev, world)
                         | {"jaw_amplitude": float(ev["probes"].read(m, "jaw_open").std() / true_jaw[i].std())}
                         for i, m in enumerate(motions)])

    def run(scales: dict[str, float], n_steps: int) -> dict[str, float]:
        start = time.perf_counter()
        motions = [generate_for(model, test, i, n_steps, scales, seed + i) for i in range(len(test))]
        return metrics(motions) | {"seconds": round(time.perf_counter() - start, 1)}

    return {"truth": metrics(test.split("motion")),
            f"by_{condition}_scale": {str(a): run(model.scales | {condition: a}, steps) for a in scales},
            "by_steps": {str(s): run(model.scales, s) for s in step_counts},
            "settings": {"face": str(face), "n_clips": len(test), "steps": steps, "scales": model.scales,
                         "seed": seed, "threads": torch.get_num_threads()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--face", help="'world' for the parameter-space generator (default: the shipped face model)")
    parser.add_argument("--diffusion", help="the diffusion checkpoint (default: the shipped one of that space)")
    parser.add_argument("--evaluators", help="folder of the eval_*.safetensors evaluators (default: the shipped ones)")
    parser.add_argument("--clips", type=int, default=16, help="held-out test clips")
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps of the scale sweep")
    parser.add_argument("--condition", default="audio", choices=CONDITIONS, help="the condition whose scale is swept")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--step-counts", type=int, nargs="+", default=[1, 2, 5, 10, 25, 50])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one line of JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = sweep(args.face, args.diffusion, args.clips, args.steps, args.condition, args.scales, args.step_counts,
                   args.seed, args.evaluators)
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
