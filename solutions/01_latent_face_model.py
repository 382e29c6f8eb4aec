"""Solutions to the exercises of notebook 01 · The latent face model.

Run from the repository root: `python solutions/01_latent_face_model.py`. Each exercise is one function; its asserts
check the answer, so a wrong answer fails. About 10 s on a 2-core CPU (exercise 4 trains for a few seconds only:
a scaled-down version of the exercise's training run).
"""

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.eval.face import ridge_r2
from vasa_lib.face.losses import DETAIL_PARTS, psnr, reconstruction_loss
from vasa_lib.face.model import FaceConfig, FaceLatent, FaceModel
from vasa_lib.face.warping import base_grid, pose_transform, warp_from_canonical, warp_to_canonical
from vasa_lib.notebook import setup
from vasa_lib.train import read_config
from vasa_lib.world.clips import load_clip
from vasa_lib.world.identity import IDENTITY_SPLITS, identity_from_id
from vasa_lib.world.params import DYNAMICS_LIMITS, NEUTRAL_DYNAMICS, NEUTRAL_POSE, dyn_index, pose_index
from vasa_lib.world.renderer import PARTS, render

cfg = setup(seed=0)
torch.set_num_threads(1)
fast_config = read_config(cfg.root / "configs" / "face_fast.toml")


def posed(**values):
    pose = NEUTRAL_POSE.clone()
    for name, v in values.items():
        pose[pose_index(name)] = v
    return pose


def check_exercise_1(centre: torch.Tensor, corner: torch.Tensor, read: torch.Tensor, out: torch.Tensor) -> None:
    """Distance 2: where the canonical centre and corner (1, 1, 1) read the source (3,); where each voxel of an
    odd (n, n, n) volume reads it, through warp_to_canonical (1, 3, n, n, n); and a volume of ones warped
    canonical -> distance 2 (1, 1, n, n, n)."""
    assert_close(centre, torch.zeros(3))                          # T(p) = p / 2: the centre stays the centre ...
    assert_close(corner, torch.full((3,), 0.5))                   # ... and the corner reads half-way in
    n = read.shape[-1]
    assert_close(read[0, :, n // 2, n // 2, n // 2], torch.zeros(3), atol=1e-6, rtol=0)
    last = (2 * (n - 1) + 1) / n - 1                              # the corner voxel's centre, 8/9 for n = 9
    assert_close(read[0, :, -1, -1, -1], torch.full((3,), last / 2), atol=1e-5, rtol=0)
    assert float(out[0, 0, -1, -1, -1]) == 0.0 and float(out[0, 0, n // 2, n // 2, n // 2]) == 1.0


def exercise_1():
    """warp_to_canonical for a pose with distance 2: where do the centre and the corner (1, 1, 1) read?"""
    pose = posed(distance=2.0)[None]
    A, b = pose_transform(pose)
    centre, corner = A[0] @ torch.zeros(3) + b[0], A[0] @ torch.ones(3) + b[0]
    print("canonical centre reads the source at", centre.tolist(), "| the corner (1, 1, 1) at", corner.tolist())
    # The same, through the warp itself: a volume whose voxels hold their own (x, y, z) shows where each reads.
    n = 9                                                         # odd: a voxel sits exactly at the centre
    where = base_grid(1, (n, n, n), torch.zeros(1)).permute(0, 4, 1, 2, 3)   # (1, 3, D, H, W): x, y, z per voxel
    read = warp_to_canonical(where, pose, torch.zeros(1, 3, n, n, n))
    # A head twice as far away is small in the source image; the canonical volume magnifies it by reading the
    # middle half of the source box. Every read lies inside the box, so padding_mode="zeros" never acts here.
    # It acts in the opposite warp: canonical -> a driving pose at distance 2 reads at u = 2 q, outside the box
    # for |q| > 1/2, and those voxels become zeros: empty space around the small head.
    out = warp_from_canonical(torch.ones(1, 1, n, n, n), pose)
    print(f"canonical -> distance 2: corner voxel {float(out[0, 0, -1, -1, -1]):.2f}, "
          f"centre voxel {float(out[0, 0, n // 2, n // 2, n // 2]):.2f} (a volume of ones)")
    check_exercise_1(centre, corner, read, out)


def composite(volume, background=1.0):
    """The hand-made projection of section 6: front-to-back alpha compositing of a (B, 4, D, H, W) volume
    (colour premultiplied by density, density) -> image (B, 3, H, W)."""
    density = volume[:, 3:].clamp(0, 1)
    alpha = 1 - (1 - density) ** (8 / volume.shape[2])
    colour = volume[:, :3] / volume[:, 3:].clamp_min(1e-3)
    image, transmittance = 0, torch.ones_like(alpha[:, :, 0])
    for k in reversed(range(volume.shape[2])):
        image = image + transmittance * alpha[:, :, k] * colour[:, :, k]
        transmittance = transmittance * (1 - alpha[:, :, k])
    return image + transmittance * background


class CompositingProjection(nn.Module):
    """Compositing in place of the learned projection: 4 channels -> RGB -> a 1x1 convolution to the generator's
    feature channels (the generator expects `features` channels)."""

    def __init__(self, features):
        super().__init__()
        self.to_features = nn.Conv2d(3, features, 1)

    def forward(self, volume):
        return self.to_features(composite(volume))


def exercise_2():
    """The learned projection replaced by compositing, in a copy of FaceModel with 4 volume channels."""
    config = FaceConfig(**{**fast_config["model"], "volume_channels": 4})
    torch.manual_seed(0)
    learned = FaceModel(config).eval()
    composited = copy.deepcopy(learned)
    composited.projection = CompositingProjection(config.features)
    images = render(identity_from_id([0, 1]), NEUTRAL_POSE.expand(2, -1), NEUTRAL_DYNAMICS.expand(2, -1))
    with torch.no_grad():
        assert composited.reenact(images, images.flip(0)).shape == images.shape     # the copy runs end to end

    # A volume whose front depth slice is opaque (density 1): what reaches the generator from behind it?
    volume = torch.rand(1, 4, config.volume_depth, 32, 32, requires_grad=True)
    with torch.no_grad():
        volume[:, 3, -1] = 1.0                                                  # the front (last D index) is opaque
    grads = {}
    for name, projection in (("learned", learned.projection), ("compositing", composited.projection)):
        volume.grad = None
        projection(volume).square().sum().backward()
        grads[name] = float(volume.grad[:, :, :-1].abs().sum())                # behind the front slice
    print("gradient reaching the generator's input from behind an opaque front:", grads)
    assert grads["compositing"] == 0.0 and grads["learned"] > 0

    # What reaches the generator: 3 numbers per pixel (the visible colour), however many feature channels.
    with torch.no_grad():
        feats = {"learned": learned.projection(volume), "compositing": composited.projection(volume)}
    ranks = {name: int(torch.linalg.matrix_rank(f[0].flatten(1))) for name, f in feats.items()}
    print(f"rank of the {config.features} feature channels over the pixels:", ranks)
    assert ranks["compositing"] <= 4 < ranks["learned"]                         # RGB + the bias
    # Answer. The 2D generator loses everything that is not the visible colour: hidden surfaces (the far cheek
    # a turn is about to reveal, the teeth behind closed lips), depth, and the free feature channels it could
    # use to paint details. The warps gain a fixed, correct occlusion rule: when a head turns, what moves
    # behind the front is hidden by construction, where the learned 1x1 mix must learn it from data.


def toy_head(D=32, H=64, W=64):
    """Section 6's toy head: (1, 4, D, H, W), colour premultiplied, density."""
    gx, gy, gz = base_grid(1, (D, H, W), torch.zeros(1))[0].unbind(-1)

    def ellipsoid(cx, cy, cz, rx, ry, rz, sharpness=25.0):
        r = (((gx - cx) / rx) ** 2 + ((gy - cy) / ry) ** 2 + ((gz - cz) / rz) ** 2).sqrt()
        return torch.sigmoid(sharpness * (1 - r))

    density = ellipsoid(0, 0, 0, 0.55, 0.68, 0.55)
    colour = torch.tensor([0.87, 0.68, 0.52])[:, None, None, None].repeat(1, D, H, W)
    parts = [(ellipsoid(0, -0.5, -0.05, 0.56, 0.28, 0.56), (0.35, 0.22, 0.12)),
             (ellipsoid(-0.22, -0.15, 0.45, 0.09, 0.07, 0.09, 40), (0.1, 0.1, 0.35)),
             (ellipsoid(0.22, -0.15, 0.45, 0.09, 0.07, 0.09, 40), (0.1, 0.1, 0.35)),
             (ellipsoid(0, 0.05, 0.58, 0.09, 0.09, 0.09, 40), (0.9, 0.25, 0.25)),
             (ellipsoid(0, 0.36, 0.42, 0.2, 0.045, 0.1, 30), (0.35, 0.02, 0.06))]
    for mask, rgb in parts:
        colour = torch.lerp(colour, torch.tensor(rgb)[:, None, None, None], mask)
        density = torch.maximum(density, mask)
    return torch.cat([colour * density, density[None]])[None], gx, gy


def exercise_3():
    """The jaw flow of section 6 scaled by s in [0, 1]: the same opening at yaw -0.6 and 0.6."""
    toy, gx, gy = toy_head()
    jaw = torch.zeros(1, 3, *toy.shape[2:])
    jaw[0, 1] = -(gy - 0.36).clamp(min=0).clamp(max=0.15) * torch.sigmoid((0.45 - gx.abs()) / 0.05)

    def mouth_pixels(image):
        return int(((image[:, 0] < 0.45) & (image[:, 1] < 0.15) & (image[:, 2] < 0.2)).sum())

    views = torch.stack([posed(yaw=-0.6), posed(yaw=0.6)])
    opening = {}
    for s in (0.0, 0.5, 1.0):
        flow = (s * jaw).expand(2, -1, -1, -1, -1)
        images = composite(warp_from_canonical(toy.expand(2, -1, -1, -1, -1), views, flow))
        opening[s] = (mouth_pixels(images[:1]), mouth_pixels(images[1:]))
        # The order of the second warp: V_d(q) = V_c(u + f(u)), u = T^-1(q). The flow is read and applied at u,
        # in canonical space, *before* the pose: so posing the flowed volume is the same as posing a canonical
        # head whose jaw was opened first. The flow cannot know the pose; the opening cannot depend on it.
        opened_first = warp_from_canonical(toy, NEUTRAL_POSE[None], s * jaw)
        for k in range(2):
            direct = warp_from_canonical(toy, views[k:k + 1], s * jaw)
            two_step = warp_from_canonical(opened_first, views[k:k + 1])
            error = float((direct - two_step).abs().mean() / direct.abs().mean())
            assert error < 0.05, error                         # equal up to one more trilinear resampling
    print("dark mouth pixels at (yaw -0.6, yaw 0.6) for s = 0, 0.5, 1:", opening)
    for left, right in opening.values():
        assert abs(left - right) <= 0.1 * max(left, right)    # the same opening either way
    assert opening[0.0][0] < opening[0.5][0] < opening[1.0][0]  # and s controls it


def exercise_4():
    """z_dyn set to zeros: which frames can the model still reconstruct?"""

    class NoDynamics(FaceModel):
        def encode(self, image):
            latent = super().encode(image)
            return FaceLatent(latent.app_volume, latent.identity, latent.pose, torch.zeros_like(latent.dynamics))

        def encode_motion(self, image):
            pose, dynamics = super().encode_motion(image)
            return pose, torch.zeros_like(dynamics)

    # 1. What it can do at best. Its output depends on the driver only through the driver's 6 pose numbers, so the
    # best it can ever draw is the source's face in the driver's pose: render(identity, pose_driver, dyn_source).
    clip = load_clip(0, "train", cfg.data_dir)
    source = torch.from_numpy(clip.dynamics[0]).clone()
    source[dyn_index("jaw_open")], source[dyn_index("eyelid")] = 0.05, 0.0        # mouth shut, eyes open
    expression = source[None].clone()                                            # same pose, another face:
    expression[0, dyn_index("jaw_open")], expression[0, dyn_index("eyelid")] = 0.8, 1.0   # mouth open, eyes shut
    pose = torch.from_numpy(clip.pose[[0]])
    drivers = {"pose only": (posed(yaw=0.25, tx=0.1)[None], source[None]), "expression only": (pose, expression)}
    detail_ids = torch.tensor([PARTS.index(p) for p in DETAIL_PARTS])
    for name, (driver_pose, driver_dyn) in drivers.items():
        truth, parts = render(clip.identity, driver_pose, driver_dyn, parts=True)
        best, best_parts = render(clip.identity, driver_pose, source[None], parts=True)
        detail = (torch.isin(parts, detail_ids) | torch.isin(best_parts, detail_ids))[0]
        wrong = (best - truth).abs().amax(1)[0] > 0.1
        print(f"{name:15s}: best possible PSNR {float(psnr(best, truth)):.1f} dB; wrong pixels: "
              f"{100 * float(wrong[detail].float().mean()):.0f}% of the mouth, eyes and brows, "
              f"{100 * float(wrong[~detail].float().mean()):.1f}% of the rest")
        if name == "pose only":
            assert_close(best, truth)                                     # pose changes: reconstructable
        else:                                                             # expression changes: not, and the
            assert wrong[detail].float().mean() > 0.5 > 0.05 > wrong[~detail].float().mean()   # error is there

    # 2. A short training run (scaled down from the notebook's 120 steps to 24: the point is the structure, not the
    # quality): the model trains, and its output ignores the driver's expression whatever it learned.
    torch.manual_seed(0)
    model = NoDynamics(FaceConfig(**fast_config["model"]))
    opt = torch.optim.AdamW(model.parameters(), lr=fast_config["train"]["lr"])
    g = torch.Generator().manual_seed(0)
    clips = [load_clip(i, "train", cfg.data_dir) for i in range(16)]
    losses = []
    for _ in range(24):
        pick = torch.randint(0, len(clips), (4,), generator=g).tolist()
        frames = [(c, torch.randint(0, c.n_frames, (2,), generator=g).tolist()) for c in (clips[p] for p in pick)]
        ident = torch.stack([c.identity for c, _ in frames])
        src = render(ident, torch.stack([torch.from_numpy(c.pose[i]) for c, (i, _) in frames]),
                     torch.stack([torch.from_numpy(c.dynamics[i]) for c, (i, _) in frames]))
        drv = render(ident, torch.stack([torch.from_numpy(c.pose[j]) for c, (_, j) in frames]),
                     torch.stack([torch.from_numpy(c.dynamics[j]) for c, (_, j) in frames]))
        loss = reconstruction_loss(model.reenact(src, drv), drv)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"24 steps without z_dyn: loss {np.mean(losses[:4]):.3f} -> {np.mean(losses[-4:]):.3f}")
    assert np.mean(losses[-4:]) < np.mean(losses[:4])
    model.eval()
    # Through `reenact`, the path training takes, the only thing of a driver that reaches the output is its pose:
    # each output is the source decoded with the driver's encoded pose and zero dynamics. (Zeroing z_dyn in
    # `encode` alone is not enough: `reenact` reads the driver with `encode_motion`, and its dynamics would pass.)
    source_image = render(clip.identity, pose, source[None])
    with torch.no_grad():
        latent = model.encode(source_image)
        for dyn in (source[None], expression):
            driver = render(clip.identity, pose, dyn)
            driver_pose, driver_dynamics = model.encode_motion(driver)
            assert torch.equal(model.reenact(source_image, driver),
                               model.decode(latent, driver_pose, torch.zeros_like(driver_dynamics)))
    # Answer: without z_dyn the model reconstructs the frames that differ from the source in head pose only
    # (turns, shifts, distance) and none of the changes of expression: the mouth, eyelids, brows and gaze stay
    # as in the source. z_dyn must carry all of the face's non-rigid motion.


def smile_direction(z, smile):
    """Section 11's recipe for a label y (here the smile) and codes z (N, D): the probe (w, c), fit by least
    squares, y ~ w.z + c, and the direction delta = b / (w.b), b the slope of z on y: Cov(z, y) / Var(y)."""
    probe = torch.linalg.lstsq(F.pad(z, (0, 1), value=1.0).double(), smile[:, None].double()).solution.float()[:, 0]
    slope = ((z - z.mean(0)) * (smile - smile.mean())[:, None]).mean(0) / smile.var(correction=0)
    return probe, slope / (probe[:-1] @ slope)


def read(probe, z):
    return F.pad(z, (0, 1), value=1.0) @ probe


def steered(probe, direction, z, value):
    """The slider: z moved along the direction until the probe reads `value` (in the notebook, `steer` gets
    ("smile", smile) in its loop, and explore() a smile slider)."""
    return z + (value - read(probe, z))[:, None] * direction


def exercise_5():
    """A direction for `smile`, found as section 11 finds jaw_open, and a smile slider."""
    face = load_checkpoint(cfg.checkpoint_dir / "face.safetensors", FaceModel).eval()
    names = ("jaw_open", "eyelid", "smile")

    def labelled_dynamics(split, n_clips, n, seed):
        """As section 11, with the smile redrawn uniformly over its range too: true dynamics (n, 11), images."""
        rng = np.random.default_rng(seed)
        clips = [load_clip(i, split, cfg.data_dir) for i in range(n_clips)]
        which = rng.integers(0, n_clips, n)
        frames = [int(rng.integers(0, clips[c].n_frames)) for c in which]
        pose = torch.stack([torch.from_numpy(clips[c].pose[k]) for c, k in zip(which, frames)])
        dyn = torch.stack([torch.from_numpy(clips[c].dynamics[k]) for c, k in zip(which, frames)])
        for name in names:
            low, high = DYNAMICS_LIMITS[dyn_index(name)].tolist()
            dyn[:, dyn_index(name)] = torch.from_numpy(rng.uniform(low, high, n)).float()
        return dyn, render(torch.stack([clips[c].identity for c in which]), pose, dyn)

    true_dyn, images = labelled_dynamics("train", 64, 384, seed=1)
    test_dyn, test_images = labelled_dynamics("test", 20, 160, seed=2)
    smile, k = true_dyn[:, dyn_index("smile")], dyn_index("smile")
    values = torch.linspace(-1, 1, 5)

    # 1. The recipe on an encoder that does carry the smile, where the answer is known: codes that mix the
    # world's 11 true dynamics linearly into 16 numbers, plus noise, decoded back by the pseudo-inverse. Any
    # correct recipe finds the smile there (probe R^2 near 1) and its slider sets the decoded smile to the value
    # asked (gain 1), leaving the other expressions nearly alone (they move by about 0.1: the sample's chance
    # correlations with the smile). A wrong one does not: the probe's weights w / |w|^2 as the direction move
    # the other expressions more than the smile, and a slope not divided by w.b misses the value asked.
    mix = torch.randn(11, 16, generator=torch.Generator().manual_seed(0))

    def encode_known(dyn, seed):
        return dyn @ mix + 0.02 * torch.randn(len(dyn), 16, generator=torch.Generator().manual_seed(seed))

    z_known = encode_known(true_dyn, 1)
    probe, direction = smile_direction(z_known, smile)
    known_r2 = ridge_r2(z_known, true_dyn[:, [k]], encode_known(test_dyn, 2), test_dyn[:, [k]])
    start = encode_known(NEUTRAL_DYNAMICS[None].expand(5, -1), 3)
    z = steered(probe, direction, start, values)
    assert_close(read(probe, z), values)
    decoded = z @ torch.linalg.pinv(mix)
    known_gain = float(decoded[-1, k] - decoded[0, k]) / 2
    others = float((decoded - decoded[0]).abs()[:, [i for i in range(11) if i != k]].max())
    print(f"an encoder that carries the smile: probe R^2 on test people {known_r2:.3f}, slider gain {known_gain:.3f},"
          f" the other dynamics move by {others:.3f} at most")
    assert known_r2 > 0.95 and abs(known_gain - 1) < 0.05 and others < 0.3

    # 2. The same recipe on the shipped face model's z_dyn.
    with torch.no_grad():
        z_dyn = torch.cat([face.encode_motion(x)[1] for x in images.split(64)])
        z_dyn_test = torch.cat([face.encode_motion(x)[1] for x in test_images.split(64)])
    r2 = {name: ridge_r2(z_dyn, true_dyn[:, [dyn_index(name)]], z_dyn_test, test_dyn[:, [dyn_index(name)]])
          for name in names}
    probe, direction = smile_direction(z_dyn, smile)
    person = identity_from_id(IDENTITY_SPLITS["test"][3])
    with torch.no_grad():
        source = face.encode(render(person, NEUTRAL_POSE[None], NEUTRAL_DYNAMICS[None]))
        canonical = face.canonical(source)
    z = steered(probe, direction, source.dynamics.expand(5, -1), values)
    with torch.no_grad():
        sweep = face.render(canonical.expand(5, -1, -1, -1, -1), source.identity.expand(5, -1),
                            source.pose.expand(5, -1), z)
        seen = read(probe, face.encode_motion(sweep)[1])
    gain = float(seen[-1] - seen[0]) / 2
    print("probe R^2 on test people:", {k: round(v, 2) for k, v in r2.items()})
    print("smile slider -1 .. 1: read back from the images", ", ".join(f"{float(v):.2f}" for v in seen),
          f"(gain {gain:.2f})")
    assert_close(read(probe, z), values)            # the slider sets the probe's reading in z_dyn exactly
    # Whether the slider works is then up to the face model, and the figures above say. With the shipped model at
    # the time of writing it does not: the smile's probe R^2 on test people is below 0 (-0.16), where the same
    # recipe finds the jaw (0.34), and what the decoder draws along the direction does not read back as a smile
    # (gain -0.14): its z_dyn does not carry the smile. The world's smile moves the mouth corners by a pixel or
    # two at 128 x 128, and the reconstruction loss has not made the model notice: a face model trained longer on
    # expressions, or at a larger size, is the fix. Part 1 shows the recipe is not the problem.


if __name__ == "__main__":
    for exercise in (exercise_1, exercise_2, exercise_3, exercise_4, exercise_5):
        start = time.time()
        exercise()
        print(f"--- {exercise.__name__} passed in {time.time() - start:.1f} s\n")
