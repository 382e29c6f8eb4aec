"""Solutions to the exercises of notebook 04 · The diffusion transformer.

Run from the repository root: `python solutions/04_diffusion_transformer.py`. Each exercise is one function; its
asserts check the answer, so a wrong answer fails. About 30 s on a 2-core CPU: exercise 2 trains two small models
for 100 steps each (scaled down from the config's 300) and compares them at equal noise levels and by their samples.
"""

import csv
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.eval.motion import controls_of
from vasa_lib.motion.generate import Controls, generate, generate_window
from vasa_lib.motion.latents import load_latents
from vasa_lib.motion.lit import split_batch
from vasa_lib.motion.model import MotionGenerator
from vasa_lib.motion.schedule import NoiseSchedule
from vasa_lib.motion.windows import MotionWindows
from vasa_lib.notebook import setup
from vasa_lib.train import train_motion
from vasa_lib.world.clips import make_clip

cfg = setup(seed=0)
torch.set_num_threads(1)
T = 1000


def snr(schedule):
    ab = schedule.alphas_cumprod.double()
    return ab / (1 - ab)


def check_exercise_1(crossing: dict[str, int]) -> None:
    """crossing: the first step with SNR < 1 of the "cosine" and the "linear" schedule."""
    assert 490 <= crossing["cosine"] <= 505 and 250 <= crossing["linear"] <= 290


def exercise_1():
    """sqrt(alpha_bar) and the SNR of both schedules: where does each reach SNR = 1?"""
    crossing = {kind: int(torch.nonzero(snr(NoiseSchedule(T, kind)) < 1)[0]) for kind in ("cosine", "linear")}
    print("first step with SNR < 1:", crossing)
    # (to plot: ax.semilogy(snr(NoiseSchedule(T, kind))) for both kinds, and ax.plot(alphas_cumprod.sqrt()))
    # SNR = 1 means alpha_bar = 1/2: the cosine schedule gets there half-way (its f(t) = cos^2 is 1/2 at
    # t/T ~ 0.5); the linear schedule about twice as fast, after 27% of the steps.
    check_exercise_1(crossing)


def exercise_2():
    """The fast model with the linear schedule: why does the loss at large t teach it so little?"""
    # At large t the linear schedule has all but destroyed the motion. Where the SNR is below 1/10 (x_0's amplitude
    # under a third of the noise's in each number), x_t holds little of x_0, and towards 1/1000 nothing a model can
    # use: there the best it can do is predict x_0 from the conditions alone, the regression baseline's problem,
    # not denoising. Count those steps:
    hopeless = {kind: float((snr(NoiseSchedule(T, kind)) < 0.1).double().mean()) for kind in ("cosine", "linear")}
    print("share of training steps with SNR < 0.1:", {k: round(v, 2) for k, v in hopeless.items()})
    assert hopeless["linear"] > 0.5 and hopeless["cosine"] < 0.2     # half the linear schedule's training steps
    # A scaled-down run of each (100 steps instead of 300): same data, seed and model; only the schedule differs.
    base = (cfg.root / "configs" / "motion_fast.toml").read_text()
    losses, models = {}, {}
    for kind in ("cosine", "linear"):
        with tempfile.TemporaryDirectory(prefix=f"motion_{kind}_") as tmp:
            run = Path(tmp)
            config = run / "config.toml"
            config.write_text(re.sub(r"^\[model\]$", f'[model]\nschedule = "{kind}"', base, count=1, flags=re.M))
            train_motion(str(config), {"checkpoint": str(run / "m.safetensors"), "run_dir": str(run),
                                       "max_steps": 100, "log_every": 20, "max_minutes": 5.0})
            rows = list(csv.DictReader(open(next(run.glob("**/metrics.csv")))))
            losses[kind] = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
            models[kind] = load_checkpoint(run / "m.safetensors", MotionGenerator).eval()
            assert models[kind].transformer.config.schedule == kind
    print("validation loss as logged (each run with its own schedule's t):",
          {k: round(v[-1], 3) for k, v in losses.items()})
    # Those two numbers cannot be compared: each averages over its own schedule's noise levels, and the linear
    # run's are mostly levels where nothing can be denoised, so its loss is higher whatever the model learned.
    # Compare the two models where their inputs are alike: at the same signal-to-noise ratios, on the same
    # validation windows and the same noise (x_t = sqrt(ab) x0 + sqrt(1 - ab) noise: equal ab, equal inputs; only
    # the step t each model is told differs).
    latents = load_latents("val", 4, cfg.checkpoint_dir / "face.safetensors", cache_dir=cfg.data_dir)
    config = models["cosine"].transformer.config
    windows = MotionWindows.from_latents(latents, config.context + config.window, 16, fixed=True)
    batch = next(iter(DataLoader(windows, batch_size=64)))
    noise = torch.randn(batch["motion"][:, -config.window:].shape, generator=torch.Generator().manual_seed(0))
    fresh = torch.randn(noise.shape, generator=torch.Generator().manual_seed(1))
    levels = (10.0, 1.0, 0.1, 0.01, 0.001)
    error = {}
    for kind, generator in models.items():
        transformer = generator.transformer
        with torch.no_grad():
            x0, cond = split_batch(transformer, batch, generator.audio_encoder(batch["audio"]))
        ratio = snr(NoiseSchedule(T, kind))
        for level in levels:
            t = torch.full((len(x0),), int((ratio.log() - np.log(level)).abs().argmin()))
            ab = float(NoiseSchedule(T, kind).alphas_cumprod[t[0]])
            x_t = ab ** 0.5 * x0 + (1 - ab) ** 0.5 * noise
            with torch.no_grad():
                error[kind, level] = float(F.mse_loss(transformer(x_t, t, cond), x0))
                if level == levels[-1]:     # the same step with an x_t that holds nothing of x0
                    error[kind, "none"] = float(F.mse_loss(transformer(fresh, t, cond), x0))
    for kind in models:
        print(f"{kind:6s} x0 error at SNR " + ", ".join(f"{level:g}: {error[kind, level]:.3f}" for level in levels)
              + f"; with x_t pure noise: {error[kind, 'none']:.3f}")
    # Why the large t teach so little: there the loss is the largest, yet x_t helps the model hardly at all: at
    # SNR 1/1000 its error is close to that of a prediction from the conditions alone (x_t replaced by noise),
    # less than a quarter of the way from there to its error at SNR 10. Most of the loss at those steps is what
    # no denoiser can remove, and its gradient teaches the conditional mean, not denoising. (x_t still helps
    # at SNR 1/10 and 1/100: the motion is smooth over the window's 25 frames and the noise is not, so the model
    # can average it out.) The linear schedule spends a sixth of its steps below SNR 1/1000, the cosine one 2%.
    for kind in models:
        assert error[kind, 0.001] > error[kind, 1.0] > error[kind, 10.0]
        help_at_large_t = (error[kind, "none"] - error[kind, 0.001]) / (error[kind, "none"] - error[kind, 10.0])
        assert help_at_large_t < 0.25, (kind, help_at_large_t)
    # Compared where their inputs are alike, the model trained on the cosine schedule predicts better at every
    # noise level: the linear one spent its steps where there was little to learn.
    assert all(error["linear", level] > error["cosine", level] for level in levels)
    # And the samples, both models on the same validation clips, audio and seed, against the clips' true motion:
    # how much they move (velocity std) and how far they range (std over frames), in units of the data's spread.
    for kind, generator in models.items():
        stats = []
        for i, (motion, mel) in enumerate(zip(latents.split("motion"), latents.split("mel"))):
            with torch.no_grad():
                sample = generate(generator.transformer, generator.audio_encoder(mel[None])[0],
                                  controls_of(latents, i), steps=10, seed=i)
            spread = latents.motion.std(0)
            stats.append([float((sample.diff(dim=0).std(0) / motion.diff(dim=0).std(0)).mean()),
                          float((sample.std(0) / spread).mean()), float((motion.std(0) / spread).mean())])
        velocity, rng, truth = np.mean(stats, 0)
        print(f"{kind:6s} samples: velocity std {velocity:.2f} x the truth's; range {rng:.2f} (the truth's: "
              f"{truth:.2f})")
    # (Figures, not asserts: after 100 steps both sample poorly, jittery and narrow. Which samples better in what
    # matters needs the full runs and notebook 05's lip-sync evaluators.)


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
        # One step lands near the conditional mean: the samples differ less, and the head moves least ...
        assert one["spread"] < fifty["spread"]
        # ... more steps give livelier motion, and a little more jitter with it
        assert one["liveliness"] < fifty["liveliness"] and one["jitter"] < fifty["jitter"]
    # What eta = 1 (fresh noise at every step) changes is the model's to say, not a rule: for the shipped checkpoint
    # at 50 steps liveliness and jitter stay within 5% of eta = 0, while the seeds' spread is smaller (0.067 against
    # 0.117 rad on these 4 clips): the re-added noise is denoised again, and the samples end nearer one another.


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
    # white noise of standard deviation s has a velocity std of about s * sqrt(2): give it the samples' own
    s = target / np.sqrt(2)
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
    # With at least the samples' frame-to-frame velocity, the noisy baseline is still not like them. The noise is
    # white: it changes direction every frame (negative lag-1 correlation of the velocity), and averaged over a
    # third of a second it is gone, so three noisy draws make the same slow motion, the baseline's average. The
    # diffusion samples differ in what matters: whole turns and nods, several times more than the noisy draws do.
    # Noise adds shake, not plausible alternatives; the missing variety is in the distribution of motions, which
    # only a generative model learns.
    assert noise["velocity std"] > diffusion["velocity std"]
    assert noise["lag-1"] < 0 < diffusion["lag-1"]
    assert diffusion["slow spread"] > 3 * noise["slow spread"]


if __name__ == "__main__":
    for exercise in (exercise_1, exercise_2, exercise_3, exercise_4, exercise_5):
        start = time.time()
        exercise()
        print(f"--- {exercise.__name__} passed in {time.time() - start:.1f} s\n")
