"""Metrics and evaluators of the motion generator (vasa_lib.eval): the math on known inputs, and
small evaluators trained on synthetic latents whose answers are known."""

import json
import math

import numpy as np
import pytest
import torch
from scipy import linalg

from vasa_lib.eval.capp import Capp, CappConfig
from vasa_lib.eval.emotion import EmotionClassifier, EmotionConfig
from vasa_lib.eval.motion import (
    KEYS,
    blinks_per_minute,
    clip_metrics,
    delta_p,
    diversity,
    frechet_distance,
    half_blinks_per_minute,
    parse_scales,
    pearson,
    seam_ratio,
    shut_at_start,
    window_features,
)
from vasa_lib.eval.probes import MotionProbes, ProbeConfig
from vasa_lib.eval.syncnet import SyncNet, SyncNetConfig, train_syncnet
from vasa_lib.eval.windows import crop, sliding_windows
from vasa_lib.motion.latents import LatentSet

DYN = 4


def synthetic_latents(n_clips: int = 24, frames: int = 60, seed: int = 0) -> LatentSet:
    """Clips whose mouth (z_dyn[0]) follows the audio's loudness frame by frame, like speech;
    the other dynamics and the pose are noise. true jaw_open = 0.5 z_dyn[0] + 0.2."""
    g = torch.Generator().manual_seed(seed)
    n = n_clips * frames
    loud = torch.randn(n_clips, frames + 4, generator=g).unfold(1, 5, 1).mean(-1).reshape(n)   # smooth in time
    mel = loud[:, None] * torch.linspace(0.5, 1.5, 320) + 0.3 * torch.randn(n, 320, generator=g)
    dyn = torch.cat([loud[:, None], torch.randn(n, DYN - 1, generator=g)], dim=1)
    true_dyn = torch.zeros(n, 11)
    true_dyn[:, 0] = 0.5 * loud + 0.2
    true_pose = torch.zeros(n, 6)
    true_pose[:, 5] = 1.0 + 0.1 * torch.randn(n, generator=g)
    pose = torch.cat([0.1 * torch.randn(n, 5, generator=g), true_pose[:, 5:] * 2 - 1], dim=1)
    return LatentSet(motion=torch.cat([pose, dyn], 1), mel=mel, true_pose=true_pose, true_dynamics=true_dyn,
                     offsets=torch.arange(n_clips + 1) * frames, gaze=torch.zeros(n_clips, 2),
                     distance=torch.ones(n_clips, 1), emotion=torch.arange(n_clips) % 5,
                     identity_id=torch.arange(n_clips), test_voice=torch.zeros(n_clips, dtype=torch.bool))


def test_metric_math():
    t = torch.arange(50.0)
    assert pearson(t, 3 * t + 1) == pytest.approx(1.0) and pearson(t, -t) == pytest.approx(-1.0)
    assert pearson(t, torch.ones(50)) == 0.0
    pose = torch.zeros(11, 6)
    pose[:, 0] = 0.01 * torch.arange(11)                             # yaw turns 0.01 rad per frame
    assert delta_p(pose) == pytest.approx(math.degrees(0.01), rel=1e-5)
    same = torch.randn(3, 20, 5).expand(4, 3, 20, 5)
    assert diversity(same[:, 0]) == 0.0 and diversity(torch.randn(4, 20, 5)) > 0.5
    features = window_features(torch.randn(60, 5))
    assert features.shape == (len(range(0, 36, 12)), 10)


def test_blinks_and_half_blinks():
    eyelid = torch.zeros(25 * 60)                                     # one minute, eyes open
    eyelid[100:104] = torch.tensor([0.4, 1.0, 1.0, 0.3])              # a blink: shut
    eyelid[500:503] = torch.tensor([0.3, 0.4, 0.25])                  # a flicker: half shut, never closed
    eyelid[900:902] = 0.1                                             # too small to count
    eyelid[-2:] = 0.35                                                # a flicker cut off at the end
    assert blinks_per_minute(eyelid) == 1.0
    assert half_blinks_per_minute(eyelid) == 2.0
    assert shut_at_start(eyelid) == 0.0
    eyelid[:3] = 1.0                                                  # shut as the clip starts: no closing to count
    assert blinks_per_minute(eyelid) == 1.0 and shut_at_start(eyelid) == 1.0


def test_seam_ratio_sees_a_jump_at_each_window_border():
    steady = torch.zeros(100, 6)
    steady[:, 0] = 0.01 * torch.arange(100)                          # one turn at a constant speed
    assert seam_ratio([steady], window=25) == pytest.approx(1.0)
    seams = steady.clone()
    seams[:, 0] += 0.02 * (torch.arange(100) // 25)                  # each window starts 0.02 rad on
    assert seam_ratio([seams], window=25) == pytest.approx(3.0)      # 0.03 rad across a border, 0.01 inside
    late = steady.clone()
    late[:, 0] += 0.02 * ((torch.arange(100) + 21) // 25)            # a first window of 4 frames, then 25 each
    assert seam_ratio([late], window=25, first_window=4) == pytest.approx(3.0)
    assert seam_ratio([late], window=25) < 1.0                       # the wrong borders miss the seams


def test_frechet_distance_matches_scipy():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 6, generator=g), 0.5 * torch.randn(200, 6, generator=g) + 1.0
    s_x, s_y = np.cov(x.numpy().T), np.cov(y.numpy().T)
    expected = (((x.mean(0) - y.mean(0)) ** 2).sum().item() + np.trace(s_x + s_y)
                - 2 * np.trace(linalg.sqrtm(s_x @ s_y).real))
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_windows_pad_and_mask():
    seq = torch.arange(10.0)[:, None]
    part, mask = crop(seq, 7, 5)
    assert part[:, 0].tolist() == [7, 8, 9, 9, 9] and mask.tolist() == [True] * 3 + [False] * 2
    windows, masks = sliding_windows(seq, 4, 3)
    assert windows.shape == (3, 4, 1) and masks.all()


def test_probes_read_what_is_linear_in_the_latents():
    latents = synthetic_latents()
    probes = MotionProbes(ProbeConfig(motion_dim=6 + DYN, alpha=1e-6))
    r2 = probes.fit(latents)
    assert r2["jaw_open"] > 0.99 and r2["distance"] > 0.99
    assert torch.allclose(probes.read(latents.motion, "jaw_open"), latents.true_dynamics[:, 0], atol=1e-3)
    assert (probes.weight[:6, 0] == 0).all() and (probes.weight[6:, 3] == 0).all()   # each reads its own part
    with pytest.raises(ValueError, match="unknown probe"):
        probes.read(latents.motion, "smile")


def test_syncnet_finds_sync_and_rejects_shifted_audio():
    latents = synthetic_latents()
    model, losses = train_syncnet(latents, SyncNetConfig(dyn_dim=DYN, width=64, embed=32, max_offset=6),
                                  steps=150, batch=64, seed=0)
    assert sum(losses[-20:]) / 20 < 0.7 * sum(losses[:20]) / 20
    test = synthetic_latents(n_clips=6, seed=1)
    mels, motions = test.split("mel"), test.split("motion")
    true = [model.scores(m, x) for m, x in zip(mels, motions)]
    shifted = [model.scores(m, x.roll(4, 0)) for m, x in zip(mels, motions)]   # mouth 4 frames late
    other = [model.scores(mels[(i + 1) % 6], x) for i, x in enumerate(motions)]  # another clip's audio
    assert all(s["offset"] == 0 for s in true) and all(s["offset"] == 4 for s in shifted)
    mean = lambda scores, k: sum(s[k] for s in scores) / len(scores)  # noqa: E731
    assert mean(true, "sync_conf") > 3 * mean(other, "sync_conf")
    assert mean(true, "sync_dist") < mean(other, "sync_dist")


def test_capp_and_emotion_shapes():
    latents = synthetic_latents(n_clips=2)
    capp = Capp(CappConfig(width=16, layers=1, embed=8))
    score = capp.score(latents.split("mel")[0], latents.split("motion")[0])     # 60 frames < 75: one padded window
    assert -1 <= score <= 1
    classifier = EmotionClassifier(EmotionConfig(motion_dim=6 + DYN, width=16, layers=1))
    assert 0 <= classifier.predict(latents.split("motion")[0]) < 5
    with pytest.raises(ValueError, match="same length"):
        capp.score(latents.split("mel")[0], latents.split("motion")[0][:-1])
    with pytest.raises(ValueError, match="multiple of segments"):
        Capp(CappConfig(frames=75, segments=4))


def test_capp_embeddings_keep_time():
    """Pooled over segments, a pose window and the same window reversed embed differently; pooled
    over the whole window (one segment), they cannot."""
    torch.manual_seed(0)
    pose, mask = torch.randn(1, 75, 6), torch.ones(1, 75, dtype=torch.bool)
    for segments, differ in ((1, False), (5, True)):
        capp = Capp(CappConfig(width=16, layers=0, embed=8, segments=segments))
        forward, backward = capp.embed_pose(pose, mask), capp.embed_pose(pose.flip(1), mask)
        assert torch.allclose(forward, backward, atol=1e-5) != differ


def test_clip_metrics_of_the_true_motion():
    latents = synthetic_latents(n_clips=3)
    probes = MotionProbes(ProbeConfig(motion_dim=6 + DYN, alpha=1e-6))
    probes.fit(latents)
    ev = {"probes": probes, "syncnet": SyncNet(SyncNetConfig(dyn_dim=DYN, max_offset=6)),
          "capp": Capp(CappConfig(width=16, layers=1, embed=8)),
          "emotion": EmotionClassifier(EmotionConfig(motion_dim=6 + DYN, width=16, layers=1))}
    motion = latents.split("motion")[1]
    metrics = clip_metrics(motion, latents, 1, ev)
    assert set(KEYS) - {"motion_fd", "diversity", "seam_ratio"} <= set(metrics)
    assert metrics["lip_sync_corr"] == pytest.approx(1.0, abs=1e-4)       # the mouth reader sees the true mouth
    assert metrics["distance_err"] < 0.05 and metrics["gaze_err_deg"] < 1.0
    assert metrics["emotion_acc"] in (0.0, 1.0)
    flipped = clip_metrics(torch.cat([motion[:, :6], -motion[:, 6:]], 1), latents, 1, ev)
    assert flipped["lip_sync_corr"] == pytest.approx(-1.0, abs=1e-4)


def test_parse_scales():
    assert parse_scales(["audio=0.5", "gaze=1"]) == {"audio": 0.5, "gaze": 1.0}
    assert parse_scales(None) is None
    with pytest.raises(ValueError, match="condition=value"):
        parse_scales(["audio"])


def test_write_card_flag_adds_the_results_to_both_cards(tmp_path, monkeypatch, capsys):
    # the evaluation itself is tested above; here the command line's --write-card path runs end to end
    from vasa_lib.eval import motion as eval_motion

    results = {"diffusion": {"lip_sync_corr": 0.5}, "settings": {"steps": 2}}
    monkeypatch.setattr(eval_motion, "evaluate", lambda *args, **kwargs: results)
    models = [tmp_path / "motion.safetensors", tmp_path / "motion_baseline.safetensors"]
    (tmp_path / "motion.md").write_text("# Motion card\n")
    eval_motion.main(["--json", "--write-card", "--diffusion", str(models[0]), "--baseline", str(models[1])])
    assert json.loads(capsys.readouterr().out) == results
    for model in models:
        card = model.with_suffix(".md").read_text()
        assert "## Evaluation" in card and "--write-card" in card and '"lip_sync_corr": 0.5' in card
    assert (tmp_path / "motion.md").read_text().startswith("# Motion card")     # the card's text is kept
