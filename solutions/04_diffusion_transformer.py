"""Solutions to the exercises of notebook 04 · The diffusion transformer.

Run from the repository root: `python solutions/04_diffusion_transformer.py`. Each exercise is one function; its
asserts check the answer, so a wrong answer fails. About 15-20 s on a 2-core CPU: exercise 2 trains two small models
for 100 steps each (scaled down from the config's 300).
"""

import csv
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.motion.generate import Controls, generate, generate_window
from vasa_lib.motion.model import MotionGenerator
from vasa_lib.motion.schedule import NoiseSchedule
from vasa_lib.notebook import setup
from vasa_lib.train import train_motion
from vasa_lib.world.clips import make_clip

cfg = setup(seed=0)
torch.set_num_threads(1)
T = 1000


def snr(schedule):
    ab = schedule.alphas_cumprod.double()
    return ab / (1 - ab)


def exercise_1():
    """sqrt(alpha_bar) and the SNR of both schedules: where does each reach SNR = 1?"""
    crossing = {kind: int(torch.nonzero(snr(NoiseSchedule(T, kind)) < 1)[0]) for kind in ("cosine", "linear")}
    print("first step with SNR < 1:", crossing)
    # (to plot: ax.semilogy(snr(NoiseSchedule(T, kind))) for both kinds, and ax.plot(alphas_cumprod.sqrt()))
    # SNR = 1 means alpha_bar = 1/2: the cosine schedule gets there half-way (its f(t) = cos^2 is 1/2 at
    # t/T ~ 0.5); the linear schedule about twice as fast, after 27% of the steps.
    assert 490 <= crossing["cosine"] <= 505 and 250 <= crossing["linear"] <= 290


def exercise_2():
    """The fast model with the linear schedule: why does the loss at large t teach it so little?"""
    # At large t the linear schedule has destroyed the motion: x_t holds almost no x_0. Where the SNR is below
    # 1/10 (x_0's amplitude under a third of the noise's), the best a model can do is close to predicting x_0
    # from the conditions alone: the regression baseline's problem, not denoising. Count those steps:
    hopeless = {kind: float((snr(NoiseSchedule(T, kind)) < 0.1).double().mean()) for kind in ("cosine", "linear")}
    print("share of training steps with SNR < 0.1:", {k: round(v, 2) for k, v in hopeless.items()})
    assert hopeless["linear"] > 0.5 and hopeless["cosine"] < 0.2     # half the linear schedule's training steps
    # A scaled-down run of each (100 steps instead of 300): same data, seed and model; only the schedule differs.
    base = (cfg.root / "configs" / "motion_fast.toml").read_text()
    losses = {}
    for kind in ("cosine", "linear"):
        with tempfile.TemporaryDirectory(prefix=f"motion_{kind}_") as tmp:
            run = Path(tmp)
            config = run / "config.toml"
            config.write_text(re.sub(r"^\[model\]$", f'[model]\nschedule = "{kind}"', base, count=1, flags=re.M))
            train_motion(str(config), {"checkpoint": str(run / "m.safetensors"), "run_dir": str(run),
                                       "max_steps": 100, "log_every": 20, "max_minutes": 5.0})
            rows = list(csv.DictReader(open(next(run.glob("**/metrics.csv")))))
            losses[kind] = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
            assert load_checkpoint(run / "m.safetensors", MotionGenerator).transformer.config.schedule == kind
    print("validation loss (each run with its own schedule's t):", {k: round(v[-1], 3) for k, v in losses.items()})
    # Each validation loss averages over its own schedule's noise levels, so the linear run's is dominated by
    # steps where nothing can be denoised: its loss stays higher, whatever the model learns.
    assert losses["linear"][-1] > losses["cosine"][-1]


def pose_velocity_std(motion):
    return float(motion[:, :3].diff(dim=0).std(dim=0).mean())


def jitter(motion):
    return float(motion[:, :3].diff(dim=0).diff(dim=0).abs().mean())


def exercise_3():
    """DDIM with eta = 1, and with 1, 5 and 50 steps: smoothness and liveliness."""
    model = load_checkpoint(cfg.checkpoint_dir / "motion.safetensors", MotionGenerator).eval()
    W, n_seeds = model.transformer.config.window, 4
    with torch.no_grad():      # the first window of 4 test clips, 4 samples each, sampled as one batch
        audio = torch.stack([model.audio_features(torch.from_numpy(make_clip(i, "test").audio))[:W]
                             for i in range(4)]).repeat_interleave(n_seeds, 0)
    rows = {}
    for eta in (0.0, 1.0):
        for steps in (1, 5, 50):
            with torch.no_grad():
                m = generate_window(model.transformer, audio, Controls(), steps=steps, eta=eta,
                                    generator=torch.Generator().manual_seed(0))
            velocity = m[:, :, :3].diff(dim=1)
            rows[eta, steps] = {"liveliness": float(velocity.std(dim=1).mean()),       # pose velocity std
                                "jitter": float(velocity.diff(dim=1).abs().mean()),    # mean |acceleration|
                                "spread": float(m.view(4, n_seeds, W, -1)[..., 0].std(dim=1).mean()),  # yaw, seeds
                                "motion": m}
            print(f"eta {eta:g}, {steps:2d} steps: " + ", ".join(f"{k} {v:.4f}" for k, v in rows[eta, steps].items()
                                                                if k != "motion"))
    # One step is the same for both: a single jump from noise to the model's x_0 estimate, no noise re-added.
    assert torch.equal(rows[0.0, 1]["motion"], rows[1.0, 1]["motion"])
    for eta in (0.0, 1.0):
        one, fifty = rows[eta, 1], rows[eta, 50]
        # One step lands near the conditional mean: the samples barely differ, and the head moves least ...
        assert one["spread"] < 0.6 * fifty["spread"]
        # ... more steps give livelier motion, and a little more jitter with it
        assert one["liveliness"] < fifty["liveliness"] and one["jitter"] < fifty["jitter"]
    # eta = 1 (fresh noise at every step) changes little for this model: at 50 steps liveliness and jitter are
    # within 10% of eta = 0, the spread within the noise of 4 seeds. Stochastic sampling needs its steps too (at
    # 5 steps it is no livelier than at 50), and is no smoother for them.
    for key, tolerance in (("liveliness", 0.1), ("jitter", 0.1), ("spread", 0.2)):
        assert abs(rows[1.0, 50][key] / rows[0.0, 50][key] - 1) < tolerance, key


def exercise_4():
    """Generation without the previous-window context: the yaw at window borders."""
    model = load_checkpoint(cfg.checkpoint_dir / "motion.safetensors", MotionGenerator).eval()
    clip = make_clip(4, "test")
    with torch.no_grad():
        feats = model.audio_features(torch.from_numpy(clip.audio))
    W = model.transformer.config.window

    def border_ratio(motion):
        jumps = motion[1:, 0].sub(motion[:-1, 0]).abs()
        border = torch.zeros(len(jumps), dtype=torch.bool)
        border[W - 1::W] = True
        return float(jumps[border].mean() / jumps[~border].mean())

    ratio = {}
    for context in (None, 0):
        runs = [generate(model.transformer, feats, steps=10, seed=s, context=context) for s in range(3)]
        ratio[context] = float(np.mean([border_ratio(m) for m in runs]))
    print(f"yaw change at window borders / inside windows: with context {ratio[None]:.1f}, without {ratio[0]:.1f}")
    # Without context each window starts from fresh noise and settles on a head pose of its own: the yaw jumps
    # at every border (every 25 frames). The audio does not pin the pose down (one audio, many motions), so
    # nothing ties the new window to where the last one ended.
    assert ratio[0] > 4 and ratio[0] > 2 * ratio[None]


def exercise_5():
    """The regression baseline plus Gaussian noise against the diffusion samples."""
    model = load_checkpoint(cfg.checkpoint_dir / "motion.safetensors", MotionGenerator).eval()
    baseline = load_checkpoint(cfg.checkpoint_dir / "motion_baseline.safetensors", MotionGenerator).eval()
    clip = make_clip(4, "test")
    audio = torch.from_numpy(clip.audio)
    controls = Controls(gaze=clip.gaze, distance=clip.distance, emotion=clip.emotion)
    with torch.no_grad():
        samples = [model.generate(audio, controls, steps=25, seed=s) for s in range(3)]
        regressed = baseline.generate(audio, controls)
    target = np.mean([pose_velocity_std(m) for m in samples])
    # white noise of standard deviation s adds about s * sqrt(2) to the pose velocity's std: pick s to match
    s = np.sqrt(max(target ** 2 - pose_velocity_std(regressed) ** 2, 0) / 2)
    pose_only = torch.cat([torch.ones(3), torch.zeros(regressed.shape[1] - 3)])
    noisy = [regressed + s * pose_only * torch.randn(regressed.shape, generator=torch.Generator().manual_seed(k))
             for k in range(3)]

    def slow_yaw(m, frames=9):      # the yaw averaged over 9 frames (0.36 s): turns and nods, not shake
        return torch.nn.functional.avg_pool1d(m[None, None, :, 0], frames, stride=1)[0, 0]

    def slow_spread(motions):       # how different the slow motions of several draws are (rad)
        return float(torch.stack([slow_yaw(m) for m in motions]).std(dim=0).mean())

    def lag1(m):                    # lag-1 correlation of the pose velocity, averaged over yaw, pitch, roll
        v = m[:, :3].diff(dim=0)
        return float(np.mean([np.corrcoef(v[1:, k], v[:-1, k])[0, 1] for k in range(3)]))

    stats = {name: {"velocity std": np.mean([pose_velocity_std(m) for m in ms]),
                    "lag-1": np.mean([lag1(m) for m in ms]), "slow spread": slow_spread(ms)}
             for name, ms in (("diffusion", samples), ("baseline + noise", noisy))}
    for name, row in stats.items():
        print(f"{name:16s}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()))
    diffusion, noise = stats["diffusion"], stats["baseline + noise"]
    # Matched in frame-to-frame velocity, the two are not alike. The noise is white: it changes direction every
    # frame (negative lag-1 correlation of the velocity), and averaged over a third of a second it is gone, so
    # three noisy draws make the same slow motion, the baseline's average. The diffusion samples differ in what
    # matters: whole turns and nods, several times more than the noisy draws do. Noise adds shake, not
    # plausible alternatives; the missing variety is in the distribution of motions, which only a generative
    # model learns.
    assert abs(noise["velocity std"] / diffusion["velocity std"] - 1) < 0.15
    assert noise["lag-1"] < 0 < diffusion["lag-1"]
    assert diffusion["slow spread"] > 3 * noise["slow spread"]


if __name__ == "__main__":
    for exercise in (exercise_1, exercise_2, exercise_3, exercise_4, exercise_5):
        start = time.time()
        exercise()
        print(f"--- {exercise.__name__} passed in {time.time() - start:.1f} s\n")
