"""Motion generator: schedule and DDIM against diffusers, the transformer's conditions, CFG,
window-by-window generation, and training that fits (sines, then the world's own motion)."""

import math

import lightning as L
import pytest
import torch
from diffusers import DDIMScheduler
from torch import nn
from torch.testing import assert_close
from torch.utils.data import DataLoader

import vasa_lib.motion.generate as gen
from vasa_lib.audio.encoder import MelEncoder, MelEncoderConfig, receptive_radius
from vasa_lib.motion.baseline import RegressionBaseline
from vasa_lib.motion.generate import Controls, generate
from vasa_lib.motion.guidance import DROP_PROBS, guided_x0, sample_drop
from vasa_lib.motion.lit import (
    LitMotion,
    diffusion_loss,
    dim_weight_list,
    motion_loss,
    regression_loss,
    shorten,
    split_batch,
)
from vasa_lib.motion.sampler import ddim_sample, ddim_step, ddim_timesteps
from vasa_lib.motion.schedule import NoiseSchedule
from vasa_lib.motion.transformer import CONDITIONS, MotionConditions, MotionConfig, MotionTransformer
from vasa_lib.motion.windows import MotionWindows, motion_stats
from vasa_lib.world.clips import make_clip
from vasa_lib.world.params import DYNAMICS_DIM, POSE_DIM, dyn_index

D, CA, W, K = 5, 6, 8, 3
TINY = MotionConfig(motion_dim=D, audio_dim=CA, window=W, context=K, width=32, depth=2, heads=2)
DIFFUSERS_KIND = {"cosine": "squaredcos_cap_v2", "linear": "linear"}


def diffusers_ddim(kind: str, steps: int) -> DDIMScheduler:
    s = DDIMScheduler(num_train_timesteps=1000, beta_schedule=DIFFUSERS_KIND[kind], prediction_type="sample",
                      clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing")
    s.set_timesteps(steps)
    return s


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """The model with all weights random (adaLN-Zero starts with a zero output)."""
    torch.manual_seed(seed)
    for p in model.parameters():
        nn.init.normal_(p, std=0.2)
    return model.eval()


def conditions(b: int = 3, k: int = K, seed: int = 1) -> MotionConditions:
    g = torch.Generator().manual_seed(seed)
    return MotionConditions(audio=torch.randn(b, W, CA, generator=g), gaze=torch.randn(b, 2, generator=g),
                            distance=1 + 0.1 * torch.randn(b, 1, generator=g), emotion=torch.arange(b) % 5,
                            prev_motion=torch.randn(b, k, D, generator=g) if k else None,
                            prev_audio=torch.randn(b, k, CA, generator=g) if k else None)


# --- schedule and sampler: reference tests against diffusers ---------------------------------------

@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_schedule_matches_diffusers(kind):
    ref, ours = diffusers_ddim(kind, 50), NoiseSchedule(1000, kind)
    assert_close(ours.betas, ref.betas)
    assert_close(ours.alphas_cumprod, ref.alphas_cumprod)
    x0, noise, t = torch.randn(4, W, D), torch.randn(4, W, D), torch.tensor([0, 10, 500, 999])
    assert_close(ours.q_sample(x0, t, noise), ref.add_noise(x0, noise, t))


@pytest.mark.parametrize("kind", ["cosine", "linear"])
@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_ddim_step_matches_diffusers(kind, eta):
    ref, ours = diffusers_ddim(kind, 50), NoiseSchedule(1000, kind)
    assert ddim_timesteps(1000, 50) == ref.timesteps.tolist()
    g = torch.Generator().manual_seed(0)
    for t in [999, 519, 19]:                                      # a first, a middle and the last step
        x_t, x0_hat, z = (torch.randn(2, W, D, generator=g) for _ in range(3))
        expected = ref.step(x0_hat, t, x_t, eta=eta, variance_noise=z).prev_sample
        assert_close(ddim_step(ours, x_t, x0_hat, t, t - 20, eta, z), expected)


def test_ddim_sampling_loop_matches_diffusers():
    ref, ours = diffusers_ddim("cosine", 10), NoiseSchedule()
    denoise = lambda x, t: torch.tanh(0.8 * x) + 1e-4 * t[:, None, None]  # any deterministic "model"
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, W, D, generator=g)
    for t in ref.timesteps:
        x = ref.step(denoise(x, t.repeat(2)), t, x).prev_sample
    assert_close(ddim_sample(denoise, (2, W, D), ours, 10, generator=torch.Generator().manual_seed(3)), x)


def test_one_ddim_step_returns_the_x0_prediction():
    target = torch.randn(2, W, D)
    seen = []

    def denoise(x, t):
        seen.append(int(t[0]))
        return target

    assert_close(ddim_sample(denoise, (2, W, D), NoiseSchedule(), steps=1), target)
    assert seen == [999]                                          # from pure noise, in one step


def test_schedule_and_sampler_reject_bad_settings():
    with pytest.raises(ValueError, match="schedule"):
        NoiseSchedule(1000, "quadratic")
    with pytest.raises(ValueError, match="steps"):
        ddim_timesteps(1000, 0)


# --- the transformer -----------------------------------------------------------------------------

def test_shapes_gradients_and_zero_init():
    model = MotionTransformer(TINY)
    x, t, cond = torch.randn(3, W, D), torch.tensor([0, 500, 999]), conditions()
    assert model(x, t, cond).abs().max() == 0                     # adaLN-Zero: starts at zero
    model = randomized(model).train()
    drop = {c: torch.tensor([True, False, False]) for c in CONDITIONS}   # the nulls get gradients too
    model(x, t, cond, drop).square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0] == []


@pytest.mark.parametrize("name", CONDITIONS)
def test_dropping_a_condition_changes_only_that_sample(name):
    model = randomized(MotionTransformer(TINY))
    x, t, cond = torch.randn(3, W, D), torch.tensor([3, 400, 900]), conditions()
    with torch.no_grad():
        full = model(x, t, cond)
        dropped = model(x, t, cond, {name: torch.tensor([False, True, False])})
    assert (dropped[1] - full[1]).abs().max() > 1e-3
    assert_close(dropped[[0, 2]], full[[0, 2]])


def test_no_previous_window_equals_dropping_it_and_emotion_weights_equal_indices():
    model = randomized(MotionTransformer(TINY))
    x, t, cond = torch.randn(3, W, D), torch.tensor([3, 400, 900]), conditions()
    with torch.no_grad():
        dropped = model(x, t, cond, {"previous": torch.ones(3, dtype=torch.bool)})
        first = model(x, t, MotionConditions(cond.audio, cond.gaze, cond.distance, cond.emotion))
        assert_close(first, dropped)
        one_hot = nn.functional.one_hot(cond.emotion, 5).float()
        assert_close(model(x, t, MotionConditions(cond.audio, cond.gaze, cond.distance, one_hot,
                                                  cond.prev_motion, cond.prev_audio)), model(x, t, cond))


def test_shorter_windows_and_bad_inputs():
    model = randomized(MotionTransformer(TINY))
    cond = conditions(k=2)
    assert model(torch.randn(3, W, D), torch.zeros(3, dtype=torch.long), cond).shape == (3, W, D)
    with pytest.raises(ValueError, match="x_t must be"):
        model(torch.randn(3, W, D + 1), torch.zeros(3, dtype=torch.long), cond)
    with pytest.raises(ValueError, match="needs x_t and t"):
        model(None, None, cond)
    with pytest.raises(ValueError, match="unknown conditions"):
        model(torch.randn(3, W, D), torch.zeros(3, dtype=torch.long), cond, {"pitch": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="audio must be"):
        model(torch.randn(3, W, D), torch.zeros(3, dtype=torch.long),
              MotionConditions(torch.randn(3, W + 1, CA), cond.gaze, cond.distance, cond.emotion))
    with pytest.raises(ValueError, match="divisible"):
        MotionConfig(width=30, heads=4)
    assert MotionConfig.paper().width == 512 and MotionConfig.paper().depth == 8 and MotionConfig.paper().heads == 8


# --- classifier-free guidance ------------------------------------------------------------------------

def test_cfg_with_zero_scales_is_the_conditional_prediction():
    model = randomized(MotionTransformer(TINY))
    x, t, cond = torch.randn(3, W, D), torch.tensor([3, 400, 900]), conditions()
    with torch.no_grad():
        assert_close(guided_x0(model, x, t, cond, {"audio": 0.0, "gaze": 0.0}), model(x, t, cond))


def test_cfg_combines_branches_as_in_the_paper_in_one_pass():
    model = randomized(MotionTransformer(TINY))
    x, t, cond = torch.randn(3, W, D), torch.tensor([3, 400, 900]), conditions()
    scales = {"audio": 0.5, "gaze": 1.0, "previous": 0.3}
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        guided = guided_x0(model, x, t, cond, scales)
        assert len(calls) == 1
        full = model(x, t, cond)
        expected = (1 + sum(scales.values())) * full - sum(
            s * model(x, t, cond, {c: torch.ones(3, dtype=torch.bool)}) for c, s in scales.items())
    assert_close(guided, expected)


def test_training_dropout_rates():
    drop = sample_drop(20_000, generator=torch.Generator().manual_seed(0))
    for name, p in DROP_PROBS.items():
        assert abs(drop[name].float().mean().item() - p) < 0.015
    assert (drop["audio"] & drop["gaze"]).float().mean() < 0.02   # independent: about 0.01


def test_motion_loss_terms():
    """The velocity term on chosen numbers only, and the join with the previous window."""
    x0 = torch.zeros(2, W, D)
    shifted = x0 + 1.0                                   # off by a constant: no velocity error inside the window
    assert motion_loss(shifted, x0, velocity_weight=5.0) == pytest.approx(1.0)
    joined = torch.tensor([True, False])                 # the first window saw its previous window, the second not
    with_join = motion_loss(shifted, x0, velocity_weight=5.0, joined=joined, join_weight=2.0)
    assert with_join == pytest.approx(1.0 + 2.0 * 0.5)           # the first frame's error, in one window of two
    jumpy = x0.clone()
    jumpy[:, W // 2:, D - 1] = 1.0                        # one step in the last number only
    head_only = motion_loss(jumpy, x0, velocity_weight=1.0, velocity_dims=D - 1)
    assert head_only == pytest.approx(float(jumpy.square().mean()))     # the step lies outside the velocity term
    assert motion_loss(jumpy, x0, velocity_weight=1.0) > head_only
    weights = torch.ones(D)
    weights[-1] = 4.0                                     # the last number's error counts four times
    assert motion_loss(jumpy, x0, dim_weights=weights) == pytest.approx(4 * float(jumpy.square().mean()))


def test_dim_weights_by_name():
    """[train] dim_weights name the world's numbers; 1 for the rest; a latent space names its pose only."""
    weights = dim_weight_list({"eyelid": 8.0, "yaw": 2.0}, POSE_DIM + DYNAMICS_DIM)
    assert len(weights) == 17 and weights[0] == 2.0 and weights[POSE_DIM + dyn_index("eyelid")] == 8.0
    assert sum(weights) == 17 + 1 + 7
    assert dim_weight_list({}, 17) is None and dim_weight_list({"distance": 3.0}, 38)[5] == 3.0
    with pytest.raises(ValueError, match="eyelid"):
        dim_weight_list({"eyelid": 8.0}, 38)                 # z_dyn has no named numbers
    with pytest.raises(ValueError, match="one weight per motion number"):
        LitMotion(model=dict(motion_dim=17, audio_dim=32), audio_encoder=dict(dim=32), dim_weights=[1.0] * 3)


# --- generation --------------------------------------------------------------------------------------

def test_generate_slides_over_windows_and_is_deterministic(monkeypatch):
    model = randomized(MotionTransformer(TINY))
    model.set_motion_stats(torch.arange(D).float(), torch.full((D,), 0.5))
    audio = torch.randn(28, CA)                                   # 3.5 windows of 8 frames
    calls = []
    window_fn = gen.generate_window

    def recording(model, audio, controls, prev_motion=None, prev_audio=None, *args):
        out = window_fn(model, audio, controls, prev_motion, prev_audio, *args)
        calls.append((audio, prev_motion, prev_audio, out))
        return out

    monkeypatch.setattr(gen, "generate_window", recording)
    controls = Controls(gaze=(0.1, -0.05), distance=1.1, emotion="happy")
    motion = generate(model, audio, controls, steps=4, seed=7)
    assert motion.shape == (28, D) and torch.isfinite(motion).all()
    assert len(calls) == 4 and calls[0][1] is None                # the first window has no previous one
    for (a, _, _, out), (_, prev_motion, prev_audio, _) in zip(calls, calls[1:]):
        assert_close(prev_motion, out[:, -K:])                    # conditioned on the last K generated frames
        assert_close(prev_audio, a[:, -K:])
    assert_close(calls[-1][0][0, 4:], audio[-1:].expand(4, CA))    # last window padded with the last frame
    assert_close(torch.cat([c[3][0] for c in calls])[:28], motion)
    monkeypatch.undo()
    assert_close(generate(model, audio, controls, steps=4, seed=7), motion)
    assert not torch.allclose(generate(model, audio, controls, steps=4, seed=8), motion)
    blend = Controls(emotion=[0, 0.5, 0, 0, 0.5])
    assert generate(model, audio[:5], blend, steps=2, window=4, context=2).shape == (5, D)


def test_generate_with_the_regression_baseline_and_bad_settings():
    baseline = randomized(RegressionBaseline(TINY))
    audio = torch.randn(20, CA)
    assert_close(generate(baseline, audio, seed=0), generate(baseline, audio, seed=1))   # no randomness
    with pytest.raises(ValueError, match="window"):
        generate(baseline, audio, window=W + 1)
    with pytest.raises(ValueError, match="unknown emotion"):
        generate(baseline, audio, Controls(emotion="bored"))


# --- training --------------------------------------------------------------------------------------

def sine_windows(b: int = 8, length: int = K + W):
    """Motion made of sines whose phase the audio features carry: one right answer per window."""
    frames = torch.arange(length) / 25
    angle = 2 * math.pi * 1.5 * frames[None] + torch.linspace(0, 2 * math.pi, b + 1)[:-1, None]   # (B, K+W)
    return {"motion": torch.stack([(angle * (d + 1)).sin() for d in range(D)], -1),
            "audio": torch.stack([angle.sin(), angle.cos()] + [torch.zeros_like(angle)] * (CA - 2), -1),
            "gaze": torch.zeros(b, 2), "distance": torch.ones(b, 1), "emotion": torch.zeros(b, dtype=torch.long)}


@pytest.mark.parametrize("diffusion", [True, False])
def test_a_tiny_model_overfits_sine_motion(diffusion):
    torch.manual_seed(0)
    model = MotionTransformer(TINY) if diffusion else RegressionBaseline(TINY)
    schedule = NoiseSchedule()
    x0, cond = split_batch(model, sine_windows())

    def loss(generator=None):
        if diffusion:
            return diffusion_loss(model, schedule, x0, cond, generator=generator)
        return regression_loss(model, x0, cond, velocity_weight=1.0)

    def evaluate():
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            return sum(loss(g).item() for _ in range(10)) / 10

    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    before = evaluate()
    for _ in range(300 if diffusion else 150):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert evaluate() < before / 10


@pytest.fixture(scope="module")
def world_windows():
    clips = [make_clip(i, "train") for i in range(3)]
    return MotionWindows.from_clips(clips, length=4 + 8, windows_per_clip=32)


def world_lit() -> LitMotion:
    torch.manual_seed(0)
    return LitMotion(model=dict(motion_dim=17, audio_dim=32, window=8, context=4, width=32, depth=2, heads=2),
                     audio_encoder=dict(dim=32, layers=1, kernel_size=3), lr=5e-3, max_steps=200)


def test_windows_of_world_clips(world_windows):
    item = world_windows[5]
    assert item["motion"].shape == (12, 17) and item["audio"].shape == (12, 320)
    assert item["gaze"].shape == (2,) and item["distance"].shape == (1,) and item["emotion"].dtype == torch.long
    mean, std = motion_stats(world_windows.motion)
    assert mean.shape == std.shape == (17,)


def test_lead_in_makes_a_clips_first_frames_targets():
    """lead_in = K: windows may start K frames early, filled with the clip's first frame, so the target (the
    last W frames) can be the clip's first W; without it the first K frames are never a target."""
    motion, audio = torch.arange(40.0)[:, None].repeat(1, 3), torch.zeros(40, 320)
    controls = [{"gaze": torch.zeros(2), "distance": torch.ones(1), "emotion": torch.tensor(0)}]
    plain, early = (MotionWindows([motion], [audio], controls, length=12, windows_per_clip=400, fixed=True,
                                  lead_in=lead_in) for lead_in in (0, 4))
    assert min(float(item["motion"][4, 0]) for item in plain) == 4
    starts = [item["motion"][:, 0] for item in early]
    assert min(float(m[4]) for m in starts) == 0 and max(float(m[-1]) for m in starts) == 39
    assert any(torch.equal(m, torch.tensor([0.0] * 5 + list(range(1, 8)))) for m in starts)
    with pytest.raises(ValueError, match="lead_in"):
        MotionWindows([motion], [audio], controls, length=12, lead_in=-1)


def test_audio_margins_give_a_window_the_features_of_its_whole_clip():
    """An encoder with replicate edges, given windows with its receptive radius of audio margin (the
    clip's ends repeated), computes for their frames the features it computes over the whole clip,
    as generation does; so the first frames of a clip, and the last of every window, are seen in
    training as in generation."""
    torch.manual_seed(0)
    motion, audio = torch.arange(30.0)[:, None].repeat(1, 3), torch.randn(30, 320)
    controls = [{"gaze": torch.zeros(2), "distance": torch.ones(1), "emotion": torch.tensor(0)}]
    encoder = MelEncoder(MelEncoderConfig(dim=16, layers=2, kernel_size=3, edges="replicate")).eval()
    r = receptive_radius(encoder)
    windows = MotionWindows([motion], [audio], controls, length=12, windows_per_clip=50, fixed=True, margin=r)
    starts = set()
    with torch.no_grad():
        whole = encoder(audio[None])[0]
        for item in windows:
            assert item["audio"].shape == (12 + 2 * r, 320)
            frames = item["motion"][:, 0].long()                 # which clip frame each window frame is
            assert_close(encoder(item["audio"][None])[0, r: r + 12], whole[frames])
            starts.add(int(frames[0]))
    assert {0, 30 - 12} <= starts                                # windows at both ends of the clip
    with pytest.raises(ValueError, match="margin"):
        MotionWindows([motion], [audio], controls, length=12, margin=-1)


def test_training_on_the_worlds_motion_lowers_the_loss(world_windows):
    """Ground-truth pose + dynamics (17 dims) stand in for the face model's latents; the mel
    encoder trains jointly; conditions are dropped as in real training."""
    lit = world_lit()
    lit.model.transformer.set_motion_stats(*motion_stats(world_windows.motion))
    fixed = next(iter(DataLoader(world_windows, batch_size=96)))

    def evaluate():
        torch.manual_seed(123)
        with torch.no_grad():
            return sum(lit.loss(fixed).item() for _ in range(5)) / 5

    opt = torch.optim.AdamW(lit.parameters(), lr=5e-3)
    before = evaluate()
    for _ in range(25):                                           # 25 epochs of 6 batches
        for batch in DataLoader(world_windows, batch_size=16, shuffle=True):
            opt.zero_grad()
            lit.loss(batch).backward()
            opt.step()
    assert evaluate() < before / 3


def test_short_windows(world_windows):
    """shorten cuts a K+W batch to k <= K previous and 2 <= w <= W target frames, aligned; training
    with short_share = 1 uses only such batches."""
    batch = next(iter(DataLoader(world_windows, batch_size=4)))
    motion, audio = batch["motion"], torch.randn(4, 12, 32)
    seen = set()
    for seed in range(40):
        m, a, k = shorten(motion, audio, 4, torch.Generator().manual_seed(seed))
        w = m.shape[1] - k
        assert 1 <= k <= 4 and 2 <= w <= 8 and a.shape[:2] == m.shape[:2]
        assert_close(m, motion[:, 4 - k: 4 + w])                 # the frames around the window's start
        seen.add((k, w))
    assert len(seen) > 10
    lit = LitMotion(model=dict(motion_dim=17, audio_dim=32, window=8, context=4, width=32, depth=2, heads=2),
                    audio_encoder=dict(dim=32, layers=1, kernel_size=3), join_weight=1.0, short_share=1.0)
    lit.model.transformer.set_motion_stats(*motion_stats(world_windows.motion))
    assert torch.isfinite(lit.train().loss(batch))


def test_mel_shift_moves_the_training_mels_only(world_windows):
    """With mel_shift, the audio encoder sees a training batch's mels with their bins moved (one
    shift per window); in evaluation it sees them as they are."""
    batch = next(iter(DataLoader(world_windows, batch_size=8, shuffle=True,
                                 generator=torch.Generator().manual_seed(0))))
    lit = LitMotion(model=dict(motion_dim=17, audio_dim=32, window=8, context=4, width=32, depth=2, heads=2),
                    audio_encoder=dict(dim=32, layers=1, kernel_size=3), mel_shift=4)
    lit.model.transformer.set_motion_stats(*motion_stats(world_windows.motion))
    seen = []
    lit.model.audio_encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    torch.manual_seed(0)
    lit.train().loss(batch)
    lit.eval().loss(batch)
    assert not torch.equal(seen[0], batch["audio"])
    assert torch.equal(seen[1], batch["audio"])


def test_lightning_fit_runs(world_windows):
    lit = world_lit()
    trainer = L.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=1)
    trainer.fit(lit, DataLoader(world_windows, batch_size=8, shuffle=True), DataLoader(world_windows, batch_size=8))
    assert trainer.global_step == 3
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def test_a_checkpoint_carries_its_default_guidance_scales(tmp_path):
    from vasa_lib.checkpoint import load_checkpoint, save_checkpoint
    from vasa_lib.motion.guidance import GUIDANCE_SCALES, PAPER_SCALES
    from vasa_lib.motion.model import MotionGenerator, MotionGeneratorConfig

    lit = LitMotion({"motion_dim": D, "audio_dim": 16, "window": W, "context": K, "width": 32, "depth": 1, "heads": 2},
                    {"dim": 16, "layers": 1}, scales=PAPER_SCALES)
    model = randomized(lit.model)
    assert model.scales == PAPER_SCALES
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "m.safetensors"), MotionGenerator)
    assert loaded.scales == PAPER_SCALES                                   # stored with the weights
    audio = torch.randn(16000)
    own = loaded.generate(audio, steps=2)
    assert torch.equal(own, loaded.generate(audio, steps=2, scales=PAPER_SCALES))
    assert not torch.allclose(own, loaded.generate(audio, steps=2, scales=GUIDANCE_SCALES))
    assert MotionGeneratorConfig().scales == GUIDANCE_SCALES              # a checkpoint that names none
    with pytest.raises(ValueError, match="unknown conditions"):
        MotionGeneratorConfig(scales={"pitch": 1.0})
