"""Solutions to the exercises of notebook 05 · Classifier-free guidance.

Run from the repository root: `python solutions/05_classifier_free_guidance.py`. Each exercise is one function;
its asserts check the answer, so a wrong answer fails. About 15 s on a 2-core CPU: exercise 3 trains two tiny
models for 40 steps (scaled down from a full run: the answer is in what the training does to one parameter) and
exercise 2 sweeps two clips instead of eight.
"""

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.testing import assert_close
from torch.utils.data import DataLoader

from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.eval.motion import controls_of, generate_for, load_evaluators, pearson
from vasa_lib.motion.generate import Controls
from vasa_lib.motion.guidance import DROP_PROBS, guided_x0
from vasa_lib.motion.latents import load_latents
from vasa_lib.motion.lit import LitMotion
from vasa_lib.motion.model import MotionGenerator
from vasa_lib.motion.sampler import ddim_sample
from vasa_lib.motion.schedule import NoiseSchedule
from vasa_lib.motion.transformer import MotionConditions
from vasa_lib.motion.windows import MotionWindows
from vasa_lib.notebook import setup
from vasa_lib.train import read_config
from vasa_lib.world.clips import load_clip
from vasa_lib.world.params import EMOTIONS, dyn_index

cfg = setup(seed=0)
torch.set_num_threads(1)
STEPS = 10
face_ckpt = cfg.checkpoint_dir / "face.safetensors"
generator = load_checkpoint(cfg.checkpoint_dir / "motion.safetensors", MotionGenerator).eval()
model = generator.transformer
test = load_latents("test", 8, face_ckpt, cache_dir=cfg.data_dir)
evaluators, _ = load_evaluators(face_ckpt, cfg.checkpoint_dir, n_train=24,
                                settings={"syncnet": {"steps": 300}, "capp": {"steps": 100}, "emotion": {"steps": 100}})
probes = evaluators["probes"]


def lip_sync(motion, i):
    s, e = int(test.offsets[i]), int(test.offsets[i + 1])
    return pearson(probes.read(motion, "jaw_open"), test.true_dynamics[s:e, dyn_index("jaw_open")])


def jitter(motion):
    x = probes.normalize(motion)
    return float((x[2:] - 2 * x[1:-1] + x[:-2]).norm(dim=-1).mean())


def exercise_1():
    """Guide the emotion too: does the classifier agree more often, and what happens to lip sync?"""
    audio = torch.from_numpy(load_clip(2, "test", cfg.data_dir).audio)
    results = {}
    for name, scales in (("audio 0, gaze 1", {"audio": 0.0, "gaze": 1.0}),
                         ("+ emotion 1", {"audio": 0.0, "gaze": 1.0, "emotion": 1.0})):
        runs = [generator.generate(audio, Controls(emotion=e), steps=STEPS, scales=scales, seed=0) for e in EMOTIONS]
        agree = sum(EMOTIONS[evaluators["emotion"].predict(m)] == e for m, e in zip(runs, EMOTIONS))
        sync = np.mean([lip_sync(generate_for(generator, test, k, STEPS, scales, seed=k), k) for k in range(len(test))])
        results[name] = {"agree": agree, "lip sync": float(sync)}
        print(f"{name:16s}: classifier agrees on {agree} of 5 emotions; lip sync {sync:.3f}")
    plain, guided = results.values()
    # Whether the classifier agrees more often says little: it reads the true motion of these clips right only 3
    # times in 8 (notebook), so its counts here (1 and 3 of 5 for the shipped checkpoint) are no evidence either way.
    # Emotion guidance leaves lip sync where it was (within 0.02): the emotion's direction in the prediction is
    # small and mostly away from the mouth.
    assert abs(guided["lip sync"] - plain["lip sync"]) < 0.02


def exercise_2():
    """The audio sweep with 50 DDIM steps instead of 10: does the jitter at high scales change?"""
    rows = {}
    for steps in (10, 50):
        for scale in (0.0, 4.0):
            motions = [generate_for(generator, test, k, steps, {"audio": scale, "gaze": 1.0}, seed=k) for k in range(2)]
            rows[steps, scale] = float(np.mean([jitter(m) for m in motions]))
    print("jitter (2 test clips):", {f"{s} steps, audio {a:g}": round(v, 3) for (s, a), v in rows.items()})
    # At scale 4 the jitter is several times the unguided one with either step count: it comes from the guidance
    # (each step extrapolates 4x the difference the audio makes), not from too few steps. More steps apply the
    # extrapolation more often, and do not smooth it away.
    for steps in (10, 50):
        assert rows[steps, 4.0] > 2.5 * rows[steps, 0.0]
    assert rows[50, 4.0] > 0.8 * rows[10, 4.0]


def exercise_3():
    """Training without audio dropout: what does H(X_t, t, C | audio dropped) predict, and what does guidance do?"""
    config = read_config(cfg.root / "configs" / "motion_fast.toml")
    latents = load_latents("train", config["data"]["n_train"], face_ckpt, cache_dir=cfg.data_dir)
    windows = MotionWindows.from_latents(latents, 35, 8)
    nulls = {}
    for p_audio in (0.0, 0.1):           # scaled down: 40 steps of the fast config instead of a full run
        torch.manual_seed(0)
        lit = LitMotion({**config["model"], "motion_dim": latents.motion.shape[1], "audio_dim": config["audio"]["dim"]},
                        config["audio"], drop_probs={**DROP_PROBS, "audio": p_audio},
                        velocity_weight=config["train"]["velocity_weight"], lr=config["train"]["lr"], max_steps=40)
        lit.model.transformer.set_motion_stats(*latents.stats())
        before = lit.model.transformer.null_audio.detach().clone()
        optimizers = lit.configure_optimizers()
        opt, schedule = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
        loader = DataLoader(windows, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
        batches = (batch for _ in range(10) for batch in loader)       # a few epochs' worth
        for _ in range(40):
            loss = lit.loss(next(batches))
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
        after = lit.model.transformer.null_audio.detach()
        nulls[p_audio] = float(F.cosine_similarity(before, after, dim=0))
    print("cosine between the null audio embedding before and after training:",
          {f"p_audio = {p}": round(v, 4) for p, v in nulls.items()})
    # With p_audio = 0 the null audio embedding never takes part in a prediction that is graded: it gets zero
    # gradient, and only weight decay shrinks it (its direction is its random initialisation). So
    # H(X_t, t, C | audio dropped) is the network run on an input it never saw: not "motion for no audio in
    # particular" but an arbitrary prediction. Guidance then extrapolates from that arbitrary point through the
    # conditional prediction: lambda (H(C) - H(C | audio dropped)) is noise amplified, not the audio's effect.
    assert nulls[0.0] > 1 - 1e-6 and nulls[0.1] < 0.99


def first_window() -> tuple[torch.Tensor, torch.Tensor, MotionConditions]:
    """x_t (pure noise), t = 500 and the conditions of test clip 0's first window, with the gaze (0.3, 0) asked."""
    W, s = model.config.window, int(test.offsets[0])
    with torch.no_grad():
        feats = generator.audio_encoder(test.mel[s: s + W][None])
    cond = MotionConditions(audio=feats, **Controls(gaze=(0.3, 0.0)).tensors(1))
    x_t = torch.randn(1, W, model.config.motion_dim, generator=torch.Generator().manual_seed(0))
    return x_t, torch.tensor([500]), cond


def gaze_runs() -> tuple[dict, dict]:
    """Test clip 0 generated with lambda_gaze = -1 and +1 for two gazes asked (the same seed): the motions, and
    the gaze the probe reads back from them, by (lambda_gaze, gaze asked)."""
    audio = torch.from_numpy(load_clip(0, "test", cfg.data_dir).audio)
    motions, gazes = {}, {}
    for scale in (-1.0, 1.0):
        for asked in ((0.3, 0.0), (-0.3, 0.1)):
            motions[scale, asked] = m = generator.generate(audio, Controls(gaze=asked), steps=STEPS,
                                                           scales={"audio": 0.0, "gaze": scale}, seed=0)
            gazes[scale, asked] = probes(m)[:, 1:3].mean(0)
    return motions, gazes


def check_exercise_4(guided: torch.Tensor, dropped: torch.Tensor, motions: dict, gazes: dict) -> None:
    """guided: `first_window`'s prediction guided with lambda_gaze = -1; dropped: the prediction it equals (the
    answer); motions, gazes: `gaze_runs`."""
    assert_close(guided, dropped)
    assert_close(motions[-1.0, (0.3, 0.0)], motions[-1.0, (-0.3, 0.1)])
    assert_close(gazes[-1.0, (0.3, 0.0)], gazes[-1.0, (-0.3, 0.1)])
    assert not torch.allclose(motions[1.0, (0.3, 0.0)], motions[1.0, (-0.3, 0.1)])


def exercise_4():
    """Negative scales: what does lambda_gaze = -1 generate?"""
    x_t, t, cond = first_window()
    with torch.no_grad():
        guided = guided_x0(model, x_t, t, cond, {"gaze": -1.0})
        # lambda = -1: (1 - 1) H(C) + 1 * H(C | gaze dropped): the gaze condition removed altogether
        dropped = model(x_t, t, cond, {"gaze": torch.ones(1, dtype=torch.bool)})
    # So with lambda = -1 the asked gaze cannot matter: two different gazes asked give the same motion, hence the
    # same gaze read back by the probe, while with lambda = +1 they differ. (Had lambda = -1 turned the eyes
    # away from the asked gaze, the two asked gazes would read back differently.)
    motions, gazes = gaze_runs()
    for (scale, asked), gaze in gazes.items():
        print(f"lambda_gaze = {scale:+g}, gaze {asked} asked: read back", [round(float(v), 3) for v in gaze])
    check_exercise_4(guided, dropped, motions, gazes)
    # lambda = -1 generates as if no gaze had been asked (below -1 it would push away from the asked gaze). How
    # far the gaze read back at +1 follows the gaze asked is up to the models, and the figures above say: with the
    # shipped models at the time of writing, hardly at all (both asked gazes read back about the same, far from
    # 0.3), because the face model's z_dyn does not carry the eyes' direction (the gaze probe's R^2 on test latents
    # is about 0).


def sample(denoise_fn, i, steps, seed):
    """Clip i of the test set window by window, as `vasa_lib.motion.generate.generate`, with a custom guided
    prediction denoise_fn(x_t, t, cond, drop) -> x0."""
    mel = test.mel[test.offsets[i]: test.offsets[i + 1]]
    controls = controls_of(test, i)
    W, K = model.config.window, model.config.context
    with torch.no_grad():
        feats = generator.audio_encoder(mel[None])[0]
    n = math.ceil(len(feats) / W)
    feats = torch.cat([feats, feats[-1:].expand(n * W - len(feats), -1)])[None]
    schedule = NoiseSchedule(model.config.diffusion_steps, model.config.schedule)
    g = torch.Generator().manual_seed(seed)
    out, prev_motion, prev_audio = [], None, None
    for k in range(n):
        a = feats[:, k * W:(k + 1) * W]
        cond = MotionConditions(audio=a, **controls.tensors(1), prev_audio=prev_audio,
                                prev_motion=None if prev_motion is None else model.normalize(prev_motion))
        with torch.no_grad():
            x0 = ddim_sample(lambda x_t, t, cond=cond: denoise_fn(x_t, t, cond), (1, W, model.config.motion_dim),
                             schedule, steps, generator=g)
        motion = model.denormalize(x0)
        out.append(motion[0])
        prev_motion, prev_audio = motion[:, -K:], a[:, -K:]
    return torch.cat(out)[:int(test.offsets[i + 1] - test.offsets[i])]


def exercise_5():
    """Guidance against the fully unconditional prediction, against the per-condition formula, at the same total."""
    scales = {"audio": 0.5, "gaze": 1.0}
    total = sum(scales.values())
    everything = {name: torch.ones(1, dtype=torch.bool) for name in ("audio", "gaze", "distance", "emotion")}

    def per_condition(x_t, t, cond):
        return guided_x0(model, x_t, t, cond, scales)

    def joint(x_t, t, cond):     # X0 = H(C) + total * (H(C) - H(nothing but the previous window))
        full = model(x_t, t, cond)
        return full + total * (full - model(x_t, t, cond, everything))

    with torch.no_grad():        # our window loop with the library's guidance is the library's generator
        assert_close(sample(per_condition, 0, STEPS, 0), generate_for(generator, test, 0, STEPS, scales, seed=0))
    rows = {name: [sample(fn, i, STEPS, i) for i in range(len(test))]
            for name, fn in (("per condition", per_condition), ("joint", joint))}
    sync = {name: float(np.mean([lip_sync(m, i) for i, m in enumerate(ms)])) for name, ms in rows.items()}
    jit = {name: float(np.mean([jitter(m) for m in ms])) for name, ms in rows.items()}
    print(f"total scale {total}: lip sync {sync}, jitter {jit}")
    # Against the fully unconditional prediction, the whole scale of 1.5 extrapolates the audio's direction too
    # (where the per-condition formula gives it 0.5), and every other condition's: for this model, whose lip sync
    # only falls with audio guidance (section 5), that is worse lip sync and more jitter at the same total.
    assert sync["joint"] < sync["per condition"] - 0.03 and jit["joint"] > jit["per condition"]


if __name__ == "__main__":
    for exercise in (exercise_1, exercise_2, exercise_3, exercise_4, exercise_5):
        start = time.time()
        exercise()
        print(f"--- {exercise.__name__} passed in {time.time() - start:.1f} s\n")
