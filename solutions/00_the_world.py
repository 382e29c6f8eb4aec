"""Solutions to the exercises of notebook 00 · The world.

Run from the repository root: `python solutions/00_the_world.py`. Each exercise is one function; its asserts
check the answer, so a wrong answer fails. Fast: a few seconds on a 2-core CPU.
"""

import dataclasses
import time

import numpy as np
import torch

from vasa_lib.notebook import setup
from vasa_lib.world import behaviour
from vasa_lib.world.articulation import MOUTH_NAMES, articulate, components, viseme
from vasa_lib.world.clips import clip_from_speech
from vasa_lib.world.identity import identity_from_id
from vasa_lib.world.params import FPS, NEUTRAL_DYNAMICS, NEUTRAL_POSE, dyn_index, pose_index
from vasa_lib.world.renderer import PARTS, render
from vasa_lib.world.sentences import sentence_for
from vasa_lib.world.speech import FOREIGN_VOICES, synthesize

cfg = setup(seed=0)
torch.set_num_threads(1)


def exercise_1():
    """A foreign voice: which phonemes are new, and which visemes did they get?"""
    german = synthesize("Über die Brücke fährt ein grüner Wagen nach Köln.", voice=FOREIGN_VOICES[0])
    mouth = articulate(german.phonemes, int(np.ceil(german.duration * FPS)))
    english = {part for i in range(40) for p in synthesize(sentence_for(i, "train"), voice="en-us").phonemes
               for part in components(p.symbol)}
    spoken = {part for p in german.phonemes for part in components(p.symbol)}
    new = sorted(spoken - english)
    print("German phonemes:", " ".join(p.symbol for p in german.phonemes))
    print("new to English training speech:", new)
    for symbol in new:
        print(f"  /{symbol}/", {name: round(float(v), 2) for name, v in zip(MOUTH_NAMES, viseme(symbol))})
    # (to plot it: vasa_lib.notebook.plot_tracks({"jaw_open": mouth[:, 0], ...}, phonemes=german.phonemes))
    assert mouth.shape == (int(np.ceil(german.duration * FPS)), 5)
    # German brings the front rounded vowels /y ʏ œ/ ("über", "Brücke", "Köln") and the velar fricative /x/ ("nach")
    assert {"y", "ʏ", "œ", "x"} <= set(new)
    # their visemes follow their IPA features: rounded lips (lip_round > 0.5, lips pulled in: spread < 0) ...
    for vowel in ("y", "ʏ", "œ"):
        jaw, spread, rounding, close, _ = viseme(vowel)
        assert rounding > 0.5 and spread < 0 and close == 0
    assert viseme("œ")[0] > viseme("y")[0] + 0.3          # ... the open-mid /œ/ opens the jaw more than close /y/
    np.testing.assert_allclose(viseme("x"), viseme("k"))   # /x/ shares the velar place of /k/: the same mouth


def exercise_2():
    """Blink more: the rate lives in `behaviour.Style.blink_rate` (15-20 a minute), used by `behaviour.blinks`."""
    speech = synthesize("Honestly, I think we should paint the whole house blue, and then we can rest.", voice="en-us")
    original = behaviour.Style.of

    def blinks_per_clip(factor):
        behaviour.Style.of = staticmethod(lambda i: dataclasses.replace(original(i), blink_rate=factor *
                                                                        original(i).blink_rate))
        try:
            clips = [clip_from_speech(speech, identity_id=42, motion_seed=s) for s in range(60)]
        finally:
            behaviour.Style.of = staticmethod(original)
        eyelid = np.stack([c.dynamics[:, dyn_index("eyelid")] for c in clips])
        return float((eyelid >= 0.999).sum(1).mean()), float(eyelid.mean())   # a blink peaks at closure 1

    (normal, lid_normal), (double, lid_double) = blinks_per_clip(1.0), blinks_per_clip(2.0)
    print(f"blinks per clip: {normal:.2f} -> {double:.2f}; mean eyelid closure {lid_normal:.3f} -> {lid_double:.3f}")
    # the eyelid track has about twice as many blinks, each of the same shape, so the mean closure doubles too.
    # (A little under 2x: blinks are at least 0.4 s apart.)
    assert 1.6 < double / normal < 2.3 and 1.6 < lid_double / lid_normal < 2.3


def part_pixels(yaw: float) -> dict[str, list[tuple[int, int]]]:
    """Face 3 at 256 x 256, front-on and turned to `yaw`: each feature's pixels in the image's (left half, right
    half), front-on and turned."""
    pose = NEUTRAL_POSE.expand(2, -1).clone()
    pose[1, pose_index("yaw")] = yaw
    _, labels = render(identity_from_id(3), pose, NEUTRAL_DYNAMICS.expand(2, -1), size=256, parts=True)
    left, right = labels[:, :, :128], labels[:, :, 128:]        # yaw > 0 turns the nose to the image's right
    return {name: [(int((left[k] == i).sum()), int((right[k] == i).sum())) for k in range(2)]
            for i, name in enumerate(PARTS) if name in ("eye_white", "iris", "brow", "lips", "nose")}


def check_exercise_3(count: dict[str, list[tuple[int, int]]]) -> None:
    """`part_pixels(0.9)`: the far-side features (the image's left half) are hidden, the near ones are not."""
    for name in ("eye_white", "iris", "brow", "lips"):
        assert count[name][0][0] > 0 and count[name][1][0] == 0, name    # on the far side: hidden
        assert count[name][1][1] > 0, name                               # on the near side: still there
    assert all(sum(turned) < sum(front) for front, turned in count.values())


def exercise_3():
    """One face at yaw 0.9, 256 x 256: which features disappear behind the head, and why?"""
    count = part_pixels(0.9)
    for name, (front, turned) in count.items():
        print(f"{name:9s} pixels (left half, right half): front {front}, yaw 0.9 {turned}")
    # The far eye, its iris and brow, and the far half of the lips are gone: features are painted on the head's
    # surface in head coordinates, so at yaw 0.9 (52 degrees) they turn onto the side that faces away from the
    # camera, and each pixel's ray hits the nearer surface first (the ellipsoid occludes them). Every part
    # shows fewer pixels in all, the near eye a few more (it now faces the camera a little more squarely).
    check_exercise_3(count)


def exercise_4():
    """Why a regression model cannot produce the two takes: it predicts their average."""
    speech = synthesize("Honestly, I think we should paint the whole house blue.", voice="en-us+f3")
    takes = np.stack([clip_from_speech(speech, identity_id=42, motion_seed=s).pose for s in range(1, 65)])
    yaw = takes[:, :, pose_index("yaw")]                           # 64 equally right answers (T frames each)
    average = yaw.mean(0)                                          # what minimising the squared error converges to
    mse_average = float(((yaw - average) ** 2).mean())
    mse_take = float(((yaw[:, None] - yaw[None]) ** 2).mean())     # predicting a real take instead (any one)
    motion_average = float(np.abs(np.diff(average)).mean())
    motion_takes = float(np.abs(np.diff(yaw, axis=1)).mean())
    print(f"squared error: the average {mse_average:.5f}, one real take {mse_take:.5f} (twice as much, for any data)")
    print(f"head motion (mean |yaw change| per frame): the average {motion_average:.5f}, a take {motion_takes:.5f}")
    # Trained on (audio, motion) pairs where one audio comes with many motions, regression learns the
    # conditional mean: it has the lowest squared error of all, yet it is no one's motion. The random parts of
    # the takes cancel, so only what the audio determines (nods at stressed syllables, the pitch) is left: a
    # stiff head. It cannot produce take 1 *and* take 2; a diffusion model samples one of them.
    # Check the claim by training: the prediction for this audio that gradient descent on the squared error over
    # all 64 takes converges to (started from take 1, as if the model had memorised one) is the average, not a
    # take, nor the median, nor a constant.
    target = torch.from_numpy(yaw).double()
    learned = target[0].clone().requires_grad_()
    opt = torch.optim.SGD([learned], lr=0.25)
    for _ in range(60):
        opt.zero_grad()
        (learned - target).square().mean(0).sum().backward()   # the squared error, averaged over the takes
        opt.step()
    learned = learned.detach().numpy()
    print(f"gradient descent's prediction: {np.abs(learned - average).max():.1e} from the average at most, "
          f"{np.abs(learned - np.median(yaw, 0)).mean():.3f} from the median on average")
    assert np.abs(learned - average).max() < 1e-4
    assert motion_average < 0.5 * motion_takes


if __name__ == "__main__":
    for exercise in (exercise_1, exercise_2, exercise_3, exercise_4):
        start = time.time()
        exercise()
        print(f"--- {exercise.__name__} passed in {time.time() - start:.1f} s\n")
