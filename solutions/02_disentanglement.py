"""Solutions to the exercises of notebook 02 · Disentanglement.

Run from the repository root: `python solutions/02_disentanglement.py`. Each exercise is one function; its asserts
check the answer, so a wrong answer fails. About 40 s on a 2-core CPU: exercise 1's training runs are scaled down
from the notebook's 80 steps to 24 (long enough for the identity similarity on training people to tell the two runs
apart; the committed 300-step runs of `benchmarks/face_ablation.py`, where it shows on test people too, are printed for
comparison).
"""

import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from vasa_lib.checkpoint import load_checkpoint, read_checkpoint
from vasa_lib.face.identity_net import IdentityNet
from vasa_lib.face.lit import LitFace
from vasa_lib.face.losses import consistency_loss, psnr
from vasa_lib.face.model import FaceModel
from vasa_lib.notebook import setup
from vasa_lib.train import read_config, train_clips
from vasa_lib.world.clips import load_clip, natural_motion
from vasa_lib.world.renderer import PARTS, render

cfg = setup(seed=0)
torch.set_num_threads(1)
fast_config = read_config(cfg.root / "configs" / "face_fast.toml")
IDNET = cfg.checkpoint_dir / "identity_net.safetensors"
face = load_checkpoint(cfg.checkpoint_dir / "face.safetensors", FaceModel).eval()
idnet = load_checkpoint(IDNET, IdentityNet).eval()


def frames_of(clip, ks, identity=None):
    identity = clip.identity if identity is None else identity
    return render(identity.expand(len(ks), -1), torch.from_numpy(clip.pose[ks]), torch.from_numpy(clip.dynamics[ks]))


def identity_similarity(model, split="test"):
    """Section 3's measure: 4 sources x 5 drivers (people of `split`), cosine of the identity embeddings of the
    cross re-enactments and of their sources; and the PSNR of the re-enactments against the world's truth."""
    sources = [load_clip(s, split, cfg.data_dir) for s in range(4)]
    drivers = [load_clip(d, split, cfg.data_dir) for d in range(4, 9)]
    source_images = torch.cat([frames_of(c, [0]) for c in sources])
    driver_images = torch.cat([frames_of(c, [c.n_frames // 2]) for c in drivers])
    with torch.no_grad():
        latent = model.encode(source_images)
        canonical = model.canonical(latent)
        d_pose, d_dyn = model.encode_motion(driver_images)
        sims, psnrs = [], []
        for s, source in enumerate(sources):
            grid = model.render(canonical[s:s + 1].expand(5, -1, -1, -1, -1), latent.identity[s:s + 1].expand(5, -1),
                                d_pose, d_dyn)
            truth = torch.cat([frames_of(d, [d.n_frames // 2], identity=source.identity) for d in drivers])
            sims.append(idnet(grid) @ idnet(source_images[s:s + 1])[0])
            psnrs.append(psnr(grid, truth))
    return float(torch.cat(sims).mean()), float(torch.cat(psnrs).mean())


def batches(batch_size, seed=0):
    data = train_clips(n_train=fast_config["data"]["n_train"], frames=2, size=128, batch_size=batch_size,
                       cache_dir=cfg.data_dir, mix_motion=fast_config["data"]["mix_motion"])
    data.prepare_data()
    data.setup()
    torch.manual_seed(seed)
    while True:
        for batch in data.train_dataloader():
            yield data.on_after_batch_transfer(batch, 0)


def exercise_1():
    """The fast model with cross_id = 0 and 1.0: identity similarity, and how high the weight can go."""
    steps = 24                                   # scaled down: the notebook's run has 80 steps, the ablation 300

    def train(cross_id):
        torch.manual_seed(0)
        lit = LitFace(fast_config["model"], {**fast_config["loss"], "cross_id": cross_id, "consist_pairs": 2,
                                             "cross_pairs": 2},
                      lr=fast_config["train"]["lr"], max_steps=steps, identity_net=str(IDNET))
        optimizers = lit.configure_optimizers()
        opt, schedule = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
        data = batches(4)
        for _ in range(steps):
            terms = lit.losses(next(data))
            # the weight enters the loss exactly as the formula says
            expected = terms["recon"] + terms["pose"] + terms["consist"] + cross_id * terms.get("cross_id", 0.0)
            assert_close(terms["loss"], expected)
            opt.zero_grad()
            terms["loss"].backward()
            opt.step()
            schedule.step()
        return lit.model.eval()

    similarity, cross_psnr, on_training_people = {}, {}, {}
    for weight in (0.0, 1.0):
        model = train(weight)
        similarity[weight], cross_psnr[weight] = identity_similarity(model)
        on_training_people[weight] = identity_similarity(model, "train")[0]
        print(f"cross_id = {weight}: after {steps} steps identity similarity {similarity[weight]:.2f} on test people "
              f"({on_training_people[weight]:.2f} on training people), cross PSNR {cross_psnr[weight]:.1f} dB")
    # The two runs differ only in the weight (same seed, same batches), and the cross-identity term maximises
    # exactly what section 3 measures, phi's cosine between a cross re-enactment and its source, on training
    # people: there the run with it scores higher, even as blobs after 24 steps. (A weight that never reaches the
    # gradient, e.g. a term computed without it, gives no gain.) On test people the gain needs longer training to
    # show: at 24 steps it goes either way with the seed.
    assert on_training_people[1.0] > on_training_people[0.0] + 0.05
    # For comparison, the committed 300-step ablation (benchmarks/face_ablation.py, weights 0.1 and 0): the
    # similarity rises from about 0.6 to about 0.9, and the PSNR against the world's truth does not improve.
    variants = json.loads((cfg.root / "assets" / "face_ablation.json").read_text())["variants"]
    on, off = variants["both losses"], variants["without l_cross_id"]
    print(f"the committed 300-step ablation: identity similarity {off['id_similarity']:.2f} -> "
          f"{on['id_similarity']:.2f}, cross PSNR {off['cross_psnr']:.2f} -> {on['cross_psnr']:.2f} dB")

    # How high can the weight go? Compare the pull of the two terms on the decoder: the weight at which
    # w * |grad l_cross_id| equals |grad L_rec| is where the identity term starts to steer the decoder more than
    # the pictures do, and re-enactment quality pays. Measured on the shipped model and on the batch above.
    lit = LitFace(read_checkpoint(cfg.checkpoint_dir / "face.safetensors")[1]["config"],
                  {"consist": 0.0, "cross_id": 1.0, "cross_pairs": 4}, identity_net=str(IDNET))
    lit.model.load_state_dict(face.state_dict())
    batch = next(batches(4))
    decoder = [p for name, p in lit.model.named_parameters() if name.startswith(("generator", "projection"))]
    terms = lit.losses(batch)
    norm = {k: float(torch.cat([g.flatten() for g in torch.autograd.grad(terms[k], decoder, retain_graph=True)])
                     .norm()) for k in ("recon", "cross_id")}
    balance = norm["recon"] / norm["cross_id"]
    print(f"gradient norms on the decoder: recon {norm['recon']:.3g}, cross_id {norm['cross_id']:.3g}: "
          f"the two pull equally at a weight of about {balance:.2f}")
    # The balance point is a measurement of the model at hand, printed, not a fixed answer. On the shipped model at
    # the time of writing the identity term pulls on the decoder as hard as the pictures do at a weight of about
    # 0.6 (its gradient is larger, though its value is small): the recipe's 0.1 leaves the reconstruction in
    # charge; at 1.0 the identity network, not the pixels, decides more of what the decoder draws, and
    # re-enactment quality starts to pay (the runs above: a lower cross PSNR at 1.0; the 300-step runs already
    # show a shade lower PSNR at 0.1). So: well below the balance point, a few tenths at most; measure it on your
    # own model, as here.


def supervised_consistency(generated: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """l_consist made supervised: the mean L1 distance of a transfer from the world's truth."""
    return (generated - truth).abs().mean()


def check_exercise_2(frames: torch.Tensor, truth: torch.Tensor) -> None:
    """frames (B, 2, 3, H, W): frames i and j of B clips; truth (B, 3, H, W): person j in pose i with dynamics j."""
    assert float(supervised_consistency(truth, truth)) == 0.0
    # Against the truth, the loss also grades how well each transfer is drawn, not only whether the two agree: it
    # cannot be satisfied by two transfers that are equally wrong. Two "transfers" that both return frame i
    # unchanged (dynamics i, not j) agree perfectly, and only the supervised variant sees it.
    wrong = frames[:, 0]
    assert float(consistency_loss(wrong, wrong)) == 0.0 < float(supervised_consistency(wrong, truth))
    # Why VASA-1 cannot: the truth is a frame that was never filmed. Person j in frame i's pose with frame j's
    # expression is neither frame i nor frame j (unless the two happen to share a pose); a real video holds only
    # the frames that happened, so only the generated-vs-generated form is available.
    differs = [float((truth - frames[:, k]).abs().amax()) for k in range(2)]
    assert min(differs) > 0.1


def exercise_2():
    """l_consist against the world's truth: D(V_j, z_id_j, z_pose_i, z_dyn_j) vs render(id, pose_i, dyn_j)."""
    batch = next(batches(4))
    frames, b = batch["frames"], batch["frames"].shape[0]
    images = torch.cat([frames[:, 0], frames[:, 1]])
    i, j = torch.arange(b), torch.arange(b) + b
    with torch.no_grad():
        latent = face.encode(images)
        canonical = face.canonical(latent)
        pose_transfer = face.render(canonical[j], latent.identity[j], latent.pose[i], latent.dynamics[j])
        dyn_transfer = face.render(canonical[i], latent.identity[i], latent.pose[i], latent.dynamics[j])
    truth = render(batch["identity"], batch["pose"][:, 0], batch["dynamics"][:, 1])   # person, pose i, dynamics j
    l_consist = float(consistency_loss(pose_transfer, dyn_transfer))
    l_truth = float(supervised_consistency(pose_transfer, truth))
    print(f"l_consist (two generated images) {l_consist:.4f}; against the truth {l_truth:.4f}")
    check_exercise_2(frames, truth)


def exercise_3():
    """A pose meter that does not depend on the model: image -> nose position, fitted on the world's label maps."""
    def nose_position(labels):
        mask = (labels == PARTS.index("nose")).float()
        cols = torch.arange(labels.shape[-1]).float()
        x = (mask * cols).sum((1, 2)) / mask.sum((1, 2)).clamp_min(1)
        y = (mask * cols[:, None]).sum((1, 2)) / mask.sum((1, 2)).clamp_min(1)
        return torch.stack([x, y], 1)

    def pixels(images):
        return F.pad(F.interpolate(images, size=16, mode="area").flatten(1), (0, 1), value=1.0).double()

    def fit_meter(identity, seed, n=200, n_fit=160):
        """A ridge regression from a 16 x 16 thumbnail to the nose position (x, y) in pixels, for one person,
        fitted on n_fit renders in the world's poses and expressions; R^2 on the other n - n_fit."""
        pose, dyn = natural_motion("test", n, 20, seed, cfg.data_dir)
        images, labels = render(identity, pose, dyn, parts=True)
        x, y = pixels(images), nose_position(labels).double()
        w = torch.linalg.solve(x[:n_fit].T @ x[:n_fit] + 1e-3 * torch.eye(x.shape[1], dtype=x.dtype),
                               x[:n_fit].T @ y[:n_fit])
        pred, true = x[n_fit:] @ w, y[n_fit:]
        r2 = float((1 - (pred - true).square().sum(0) / (true - true.mean(0)).square().sum(0)).mean())
        return (lambda im: (pixels(im) @ w).float()), r2

    # Section 1's leak slope, with the nose meter in place of pixels: where is the nose of "a's pose, b's dynamics",
    # between the nose of the truth (pose a) and of frame b (pose b)?
    rng = np.random.default_rng(0)
    num, den, r2s = {}, 0.0, []
    for k in range(12):
        clip, other = load_clip(k, "test", cfg.data_dir), load_clip(k + 12, "test", cfg.data_dir)
        meter, r2 = fit_meter(clip.identity, seed=k)
        r2s.append(r2)
        a, c = rng.integers(0, clip.n_frames, 4), rng.integers(0, other.n_frames, 4)
        ident = clip.identity.expand(4, -1)
        pose_a, pose_b = torch.from_numpy(clip.pose[a]), torch.from_numpy(other.pose[c])
        dyn_a, dyn_b = torch.from_numpy(clip.dynamics[a]), torch.from_numpy(other.dynamics[c])
        img_b, truth = render(ident, pose_b, dyn_b), render(ident, pose_a, dyn_b)
        with torch.no_grad():
            latent = face.encode(render(ident, pose_a, dyn_a))
            out = face.decode(latent, latent.pose, face.encode_motion(img_b)[1])
        # Known leaks to calibrate the meter: the world's own renders with half and a quarter of the pose change
        # from a to b let through (b's dynamics). A meter that measures the leak reads them as 0.5 and 0.25.
        known = {f: render(ident, pose_a + f * (pose_b - pose_a), dyn_b) for f in (0.5, 0.25)}
        n_b, n_truth = meter(img_b), meter(truth)
        for name, image in (("model", out), *known.items()):
            num[name] = num.get(name, 0.0) + float(((meter(image) - n_truth) * (n_b - n_truth)).sum())
        den += float((n_b - n_truth).square().sum())
    leak = {name: value / den for name, value in num.items()}
    print(f"nose meters on held-out renders: R^2 {min(r2s):.2f} .. {max(r2s):.2f}; known leaks of 0.5 and 0.25 "
          f"read as {leak[0.5]:.2f} and {leak[0.25]:.2f}")
    print(f"pose leak of the shipped model measured by the nose: {leak['model']:.2f} (the notebook's pixel "
          "projection, at the time of writing: 0.27)")
    assert min(r2s) > 0.8                     # the meter reads the nose of the world's renders ...
    assert abs(leak[0.5] - 0.5) < 0.1 and abs(leak[0.25] - 0.25) < 0.1   # ... and the leak, where it is known
    # The shipped model's figure is a measurement, not a fixed answer: a model with less leak reads lower.
    # (A single meter for all people, linear in pixels, does poorly (R^2 about 0.35): skin, hair and background
    # change the pixels more than the nose does. A per-person meter, or a small CNN trained longer, fixes that.)


def exercise_4():
    """A weak identity network: can the face model fool it without keeping the identity?"""
    source = frames_of(load_clip(0, "test", cfg.data_dir), [0])
    target = idnet(source).detach()
    driver = load_clip(5, "test", cfg.data_dir)
    other = frames_of(driver, [driver.n_frames // 2])        # another person (section 3's second driver)
    # Change the other person's image by at most 8/255 per pixel so that phi takes it for the source's person:
    # a few steps of projected gradient ascent on the cosine (what a decoder trained on l_cross_id could learn).
    budget, delta = 8 / 255, torch.zeros_like(other, requires_grad=True)
    for _ in range(40):
        similarity = (idnet((other + delta).clamp(0, 1)) * target).sum()
        (grad,) = torch.autograd.grad(similarity, delta)
        with torch.no_grad():
            delta += budget / 5 * grad.sign()
            delta.clamp_(-budget, budget)
    fooled = (other + delta).clamp(0, 1).detach()
    with torch.no_grad():
        before, after = float(idnet(other) @ target[0]), float(idnet(fooled) @ target[0])
    print(f"similarity to the source's person: the other person {before:.2f}, after a change of at most 8/255 "
          f"per pixel {after:.2f}; the image still matches the other person at {float(psnr(fooled, other)):.0f} dB")
    assert before < 0.3 and after > 0.9 and float((fooled - other).abs().max()) <= budget + 1e-6
    assert float(psnr(fooled, other)) > 28                # still the other person's picture
    # The committed 300-step ablation shows the mild form of this (printed: its figures belong to the models it
    # trained): with l_cross_id the blurred blobs score about 0.9 with phi, close to the true renders' 0.99, while
    # their PSNR against the truth is no better.
    both = json.loads((cfg.root / "assets" / "face_ablation.json").read_text())["variants"]["both losses"]
    print(f"the 300-step ablation with both losses: identity similarity {both['id_similarity']:.2f}, cross PSNR "
          f"{both['cross_psnr']:.1f} dB")
    # Answer: l_cross_id is only as good as phi. A weak phi looks at a few cues (colours of skin, hair, shirt and
    # background), so the decoder is rewarded for getting those cues right, not the person; and phi's gradients
    # can be satisfied by changes no one sees. So yes: the model can fool phi without keeping the identity. A
    # stronger, independent recogniser (and grading with a different network than the one trained against) is
    # the defence.


if __name__ == "__main__":
    for exercise in (exercise_1, exercise_2, exercise_3, exercise_4):
        start = time.time()
        exercise()
        print(f"--- {exercise.__name__} passed in {time.time() - start:.1f} s\n")
