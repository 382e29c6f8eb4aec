"""Solutions to the exercises of notebook 07 · Evaluation.

Run from the repository root: `python solutions/07_evaluation.py`. Each exercise is one function; its asserts
check the answer, so a wrong answer fails. About 10 s on a 2-core CPU. Every assert is about the student's
computation or about evaluators checked on known inputs, never about how good a shipped generator is.
"""

import math

import torch
import torch.nn.functional as F

from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.eval.motion import delta_p, frechet_distance, load_evaluators
from vasa_lib.eval.pixels import frames_of
from vasa_lib.eval.realism import detector_accuracy, train_detector
from vasa_lib.eval.video_features import VideoFeatureNet, frechet_video_distance
from vasa_lib.motion.latents import WORLD, load_latents
from vasa_lib.notebook import setup
from vasa_lib.world.params import FPS

cfg = setup(seed=0)
torch.set_num_threads(1)


def shifted(motion: torch.Tensor, k: int) -> torch.Tensor:
    """The motion moved k frames later (k > 0) or earlier (k < 0), the ends repeated: (T, D)."""
    if k >= 0:
        return torch.cat([motion[:1].expand(k, -1), motion[: len(motion) - k]])
    return torch.cat([motion[-k:], motion[-1:].expand(-k, -1)])


def exercise_1():
    """The SyncNet's best offset follows a shifted mouth within its search range; beyond it, the offset is
    never found and the curve has no clear minimum left (Sc collapses)."""
    test = load_latents("test", 8, WORLD)
    syncnet = load_evaluators(WORLD)[0]["syncnet"]
    i = max(range(len(test)), key=lambda j: test.lengths()[j])
    s, e = int(test.offsets[i]), int(test.offsets[i + 1])
    mel, motion = test.mel[s:e], test.motion[s:e]
    found = {k: syncnet.scores(mel, shifted(motion, k))["offset"] for k in range(-3, 4)}
    print("mouth moved by k frames -> best offset:", found)
    assert found == {k: k for k in range(-3, 4)}, found           # the minimum of d(o) moves with the mouth
    n = syncnet.config.max_offset
    beyond = syncnet.scores(mel, shifted(motion, n + 4))
    inside = syncnet.scores(mel, shifted(motion, 3))
    print(f"moved by {n + 4} frames (search range +-{n}): best offset {beyond['offset']}, "
          f"Sc {beyond['sync_conf']:.3f} (moved by 3: Sc {inside['sync_conf']:.3f})")
    assert beyond["sync_conf"] < 0.5 * inside["sync_conf"]         # and no clear minimum is left


def exercise_2():
    """Frechet distance: ~0 for the same Gaussian, ~||mu1 - mu2||^2 when only the means differ."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 4, generator=g)
    b = torch.randn(20000, 4, generator=g)
    shift = torch.tensor([1.0, -2.0, 0.0, 0.5])
    same, moved = frechet_distance(a, b), frechet_distance(a, b + shift)
    print(f"FD same Gaussian {same:.4f}; means moved by {shift.tolist()}: {moved:.3f} "
          f"(||mu1 - mu2||^2 = {float(shift.square().sum()):.3f})")
    assert same < 0.01
    assert abs(moved - float(shift.square().sum())) < 0.05


def check_exercise_3(answers: dict[int, float]) -> None:
    """answers: delta_p of a head turning at 10 degrees per second, by frame rate (25 and 50 fps)."""
    assert math.isclose(answers[25], 0.4, rel_tol=1e-4)
    assert math.isclose(answers[50], 0.2, rel_tol=1e-4)      # per frame: halves when the frame rate doubles


def exercise_3():
    """Delta-P of a head turning at 10 degrees per second: 0.4 degrees per frame at 25 fps, 0.2 at 50 fps."""
    answers = {}
    for fps in (FPS, 50):
        t = torch.arange(2 * fps) / fps                       # 2 s
        pose = torch.zeros(len(t), 6)
        pose[:, 0] = torch.deg2rad(10.0 * t)                  # yaw at 10 degrees per second
        answers[fps] = delta_p(pose)
    print("delta_p (degrees per frame):", {k: round(v, 4) for k, v in answers.items()})
    check_exercise_3(answers)


def random_walks(n: int, frames: int, dim: int, smooth: int, seed: int) -> list[torch.Tensor]:
    """n random walks (frames, dim); smooth > 1 averages the steps over that many frames."""
    g = torch.Generator().manual_seed(seed)
    steps = torch.randn(n, frames + smooth - 1, dim, generator=g)
    steps = steps.unfold(1, smooth, 1).mean(-1) * math.sqrt(smooth)      # same step size, correlated in time
    return list(steps.cumsum(1) * 0.1)


def exercise_4():
    """A two-sample test: near 0.5 with no difference, well above with one."""
    a_train, a_test = random_walks(24, 75, 3, 1, seed=1), random_walks(24, 75, 3, 1, seed=2)
    b_train, b_test = random_walks(24, 75, 3, 1, seed=3), random_walks(24, 75, 3, 1, seed=4)
    no_signal = detector_accuracy(train_detector(a_train, b_train, steps=200), a_test, b_test)
    c_train, c_test = random_walks(24, 75, 3, 5, seed=3), random_walks(24, 75, 3, 5, seed=4)
    signal = detector_accuracy(train_detector(a_train, c_train, steps=200), a_test, c_test)
    print(f"held-out accuracy: same process {no_signal:.2f}, smoother process {signal:.2f}")
    assert abs(no_signal - 0.5) < 0.15
    assert signal > 0.8


def check_exercise_5(fvd: dict[int, float]) -> None:
    """fvd: the pixel FVD to the truth under another motion seed, for each box-blur width (1: none)."""
    widths = sorted(fvd)
    assert all(fvd[a] < fvd[b] for a, b in zip(widths, widths[1:])), fvd      # more blur, farther
    assert fvd[widths[-1]] > 3 * fvd[1], fvd                                   # a strong blur: far


def exercise_5():
    """The pixel FVD sees blur: it grows with the width of a box blur applied to the true renders
    (the reference, the truth under another motion seed, stays sharp)."""
    net = load_checkpoint(cfg.checkpoint_dir / "eval_video_features.safetensors", VideoFeatureNet)
    test, other = load_latents("test", 8, WORLD), load_latents("test", 8, WORLD, motion_seed=1)
    framing = net.config.framing
    truth = [frames_of(m, test, i, framing=framing) for i, m in enumerate(test.split("motion"))]
    reference = [frames_of(m, other, i, framing=framing) for i, m in enumerate(other.split("motion"))]
    fvd = {w: frechet_video_distance(net, [F.avg_pool2d(v, w, 1, w // 2, count_include_pad=False) for v in truth],
                                     reference) for w in (1, 3, 5, 9)}
    print("box-blur width -> FVD:", {w: round(d, 1) for w, d in fvd.items()})
    check_exercise_5(fvd)


if __name__ == "__main__":
    for exercise in (exercise_1, exercise_2, exercise_3, exercise_4, exercise_5):
        print(f"--- {exercise.__name__}: {exercise.__doc__}")
        exercise()
