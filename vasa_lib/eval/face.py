"""Evaluation of the face latent model (paper Sec. 3.1) on held-out TEST identities.

    python -m vasa_lib.eval.face --json [--checkpoint PATH]

prints one JSON object:
- self_psnr, self_ssim: each test clip's first frame re-enacted with the motion (encoded from the
  frames) of its other frames, against those frames; face_psnr: the same over the head's pixels
  only (the part labels: all but background, neck and shirt); sharpness: the image-gradient energy
  of those re-enactments over the truth's, on the face's pixels (1 = as sharp; blur shows here
  first);
- swap_psnr: the source person with the pose encoded from frame i and the dynamics encoded from
  frame j of the same clip (drawn independently), against the world's render of exactly that
  combination: what l_consist promises, graded against the truth;
- cross_psnr: person A re-enacted with the pose and dynamics encoded from B's frame, against the
  world's true render of A in B's pose and expression, render(identity_A, pose_B, dynamics_B);
- transfer_r2 (and transfer_r2_pose, _mouth, _eyes, _gaze, _brows): those cross re-enactments read
  by the parameter reader (`vasa_lib.eval.reader`), against B's true parameters: does the decoded
  face do what the driver did? reader_r2_*: the reader's own grade on true renders of test people;
- id_similarity: identity-network cosine between the source and its cross re-enactments
  (with id_similarity_true, the same for the true renders, and id_similarity_other_person,
  between different people, as reference points);
- pose_probe_r2, pose_leak_r2: a ridge probe of the true pose from z_pose and from z_dyn;
  pose_direct_r2: z_pose itself (in world units) against the true pose, no probe;
- mouth_probe_r2, blink_probe_r2, gaze_probe_r2, brow_probe_r2, smile_probe_r2: ridge probes of
  the true jaw_open, eyelid, gaze (both angles), brows (raise and frown) and smile from z_dyn;
- id_leak_acc: nearest-centroid identification of test people from z_dyn (id_leak_chance is
  1 / number of people; id_from_identity_acc does the same from z_id, for comparison);
- decode_fps_128: frames per second of the per-frame decoder (warp from the cached canonical
  volume, projection, 2D generator), batched, on this machine's CPU.

Probes are fit on latents of train-split people and scored on test-split people. Each image is
a person rendered with one frame of motion drawn at random from the clips of the same split
(the natural distribution of poses and expressions, independent of the person). Identification
uses test people only (each person's images split into a fitting half and a scoring half); as
each image has its own random clip frame, z_dyn cannot tell people apart by a clip's emotion.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vasa_lib import paths
from vasa_lib.checkpoint import load_checkpoint, write_evaluation
from vasa_lib.eval.probes import r2_per_column, ridge
from vasa_lib.eval.reader import grade, group_r2
from vasa_lib.face.identity_net import IdentityNet, random_motion
from vasa_lib.face.losses import psnr, ssim
from vasa_lib.face.model import FaceModel
from vasa_lib.face.reader import ParameterReader
from vasa_lib.world.clips import load_clip, natural_motion
from vasa_lib.world.identity import IDENTITY_SPLITS, identity_from_id
from vasa_lib.world.params import dyn_index
from vasa_lib.world.renderer import PART_INDEX, render


def ridge_r2(x_fit: torch.Tensor, y_fit: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
             alpha: float = 1e-3) -> float:
    """Ridge regression (`vasa_lib.eval.probes.ridge`) fit on (N, D) -> (N, K), scored on the
    test set: R^2 averaged over the K targets."""
    weight, bias = ridge(x_fit, y_fit, alpha)
    return r2_score(x_test @ weight + bias, y_test)


def r2_score(pred: torch.Tensor, true: torch.Tensor) -> float:
    """R^2 of predictions (N, K) against the truth, averaged over the K columns."""
    return float(r2_per_column(pred, true).mean())


def centroid_accuracy(x: torch.Tensor, labels: torch.Tensor, fit: torch.Tensor) -> float:
    """Nearest-centroid classification: centroids (standardised) from rows where `fit`, accuracy on the rest."""
    mean, std = x[fit].mean(0), x[fit].std(0).clamp_min(1e-6)
    z = (x - mean) / std
    classes = labels.unique()
    centres = torch.stack([z[fit & (labels == c)].mean(0) for c in classes])
    pred = classes[torch.cdist(z[~fit], centres).argmin(1)]
    return float((pred == labels[~fit]).float().mean())


def batched(fn, *tensors: torch.Tensor, batch: int = 32):
    """Apply fn to matching slices of tensors and concatenate the results (tensor or tuple of tensors)."""
    outs = [fn(*(t[i:i + batch] for t in tensors)) for i in range(0, len(tensors[0]), batch)]
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outs))
    return torch.cat(outs)


HEAD_OFF = torch.tensor([PART_INDEX[p] for p in ("background", "neck", "shirt")])        # face_psnr: all but these
FACE_OFF = torch.tensor([PART_INDEX[p] for p in ("background", "hair", "neck", "shirt")])  # sharpness: the face


def masked_psnr(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PSNR per image (dB) over the pixels where mask (B, H, W) is true: x, y (B, 3, H, W) -> (B,)."""
    error = ((x - y) ** 2).mean(1) * mask
    return -10 * torch.log10((error.sum((1, 2)) / mask.sum((1, 2)).clamp_min(1)).clamp_min(1e-10))


def gradient_energy(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of squared horizontal and vertical pixel differences where mask (B, H, W) holds at both
    ends: images (B, 3, H, W) -> (B,)."""
    dx = ((images[..., :, 1:] - images[..., :, :-1]) ** 2).sum(1) * (mask[..., :, 1:] & mask[..., :, :-1])
    dy = ((images[..., 1:, :] - images[..., :-1, :]) ** 2).sum(1) * (mask[..., 1:, :] & mask[..., :-1, :])
    return dx.sum((1, 2)) + dy.sum((1, 2))


@torch.inference_mode()
def reenactment_metrics(model: FaceModel, idnet: IdentityNet, reader: ParameterReader, n_clips: int, n_frames: int,
                        size: int, cache_dir: str | None, framing: str = "wide") -> dict[str, float]:
    """self_psnr / self_ssim / face_psnr / sharpness / swap_psnr / cross_psnr / transfer_r2 /
    id_similarity on test clips (see the module docstring)."""
    clips = [load_clip(i, "test", cache_dir) for i in range(n_clips)]
    self_psnr, self_ssim, face_psnr, cross_psnr, swap_psnr, id_sim, id_true, id_other = ([] for _ in range(8))
    energy, energy_true, read, driven = [], [], [], []
    generator = torch.Generator().manual_seed(0)
    for a, clip in enumerate(clips):
        other = clips[(a + 1) % n_clips]
        pick = np.linspace(1, clip.n_frames - 1, n_frames).astype(int)
        pose, dyn = torch.from_numpy(clip.pose), torch.from_numpy(clip.dynamics)
        identity = clip.identity.expand(n_frames, -1)
        source = render(clip.identity[None], pose[:1], dyn[:1], size=size, framing=framing)
        drivers, parts = render(identity, pose[pick], dyn[pick], size=size, parts=True, framing=framing)
        latent = model.encode(source)
        canonical = model.canonical(latent)
        ident = latent.identity.expand(n_frames, -1)
        can = canonical.expand(n_frames, *canonical.shape[1:])
        d_pose, d_dyn = model.encode_motion(drivers)
        out = model.render(can, ident, d_pose, d_dyn, source=latent)
        self_psnr.append(psnr(out, drivers))
        self_ssim.append(ssim(out, drivers))
        face_psnr.append(masked_psnr(out, drivers, ~torch.isin(parts, HEAD_OFF)))
        face = ~torch.isin(parts, FACE_OFF)
        energy.append(gradient_energy(out, face))
        energy_true.append(gradient_energy(drivers, face))
        # swap: this person's pose from frame i, dynamics from frame j (drawn independently)
        i, j = (torch.randint(clip.n_frames, (n_frames,), generator=generator) for _ in range(2))
        s_pose, _ = model.encode_motion(render(identity, pose[i], dyn[i], size=size, framing=framing))
        _, s_dyn = model.encode_motion(render(identity, pose[j], dyn[j], size=size, framing=framing))
        swap_truth = render(identity, pose[i], dyn[j], size=size, framing=framing)
        swap_psnr.append(psnr(model.render(can, ident, s_pose, s_dyn, source=latent), swap_truth))
        # cross: A (this clip's person) with B's (the next clip's) motion
        o_pick = np.linspace(0, other.n_frames - 1, n_frames).astype(int)
        o_pose, o_dyn = torch.from_numpy(other.pose[o_pick]), torch.from_numpy(other.dynamics[o_pick])
        b_frames = render(other.identity.expand(n_frames, -1), o_pose, o_dyn, size=size, framing=framing)
        truth = render(identity, o_pose, o_dyn, size=size, framing=framing)
        c_pose, c_dyn = model.encode_motion(b_frames)
        crossed = model.render(can, ident, c_pose, c_dyn, source=latent)
        cross_psnr.append(psnr(crossed, truth))
        read.append(reader.read(crossed))
        driven.append(torch.cat([o_pose, o_dyn], -1))
        e_src, e_cross, e_true, e_other = idnet(source), idnet(crossed), idnet(truth), idnet(b_frames)
        id_sim.append(e_cross @ e_src[0])
        id_true.append(e_true @ e_src[0])
        id_other.append(e_other @ e_src[0])
    mean = lambda xs: float(torch.cat(xs).mean())  # noqa: E731
    transfer = group_r2(torch.cat(read), torch.cat(driven))
    return {"self_psnr": mean(self_psnr), "self_ssim": mean(self_ssim), "face_psnr": mean(face_psnr),
            "sharpness": float(torch.cat(energy).sum() / torch.cat(energy_true).sum()),
            "swap_psnr": mean(swap_psnr), "cross_psnr": mean(cross_psnr),
            "transfer_r2": sum(transfer.values()) / len(transfer),
            **{f"transfer_r2_{group}": value for group, value in transfer.items()},
            "id_similarity": mean(id_sim), "id_similarity_true": mean(id_true),
            "id_similarity_other_person": mean(id_other)}


@torch.inference_mode()
def latents_of_renders(model: FaceModel, ids: list[int], pose: torch.Tensor, dyn: torch.Tensor, size: int,
                       framing: str = "wide"):
    """Render person ids[k // per_id] with motion k (per_id = len(pose) // len(ids)) and encode:
    (z_pose, z_dyn, z_id, labels)."""
    labels = torch.tensor(ids).repeat_interleave(len(pose) // len(ids))
    images = batched(lambda p, d, i: render(identity_from_id(i.tolist()), p, d, size=size, framing=framing),
                     pose, dyn, labels)
    z_pose, z_dyn, z_id = batched(lambda x: (*model.encode_motion(x), model.appearance(x)[1]), images)
    return z_pose, z_dyn, z_id, labels


def probe_metrics(model: FaceModel, n_train_ids: int, n_test_ids: int, per_id: int, size: int,
                  cache_dir: str | None, framing: str = "wide") -> dict[str, float]:
    """Linear probes and identity leakage (see the module docstring)."""
    train_ids = list(IDENTITY_SPLITS["train"])[:n_train_ids]
    test_ids = list(IDENTITY_SPLITS["test"])[:n_test_ids]
    p_fit, d_fit = natural_motion("train", n_train_ids * per_id, 100, seed=1, cache_dir=cache_dir)
    p_test, d_test = natural_motion("test", n_test_ids * per_id, 40, seed=2, cache_dir=cache_dir)
    zp_fit, zd_fit, _, _ = latents_of_renders(model, train_ids, p_fit, d_fit, size, framing)
    zp_test, zd_test, zi_test, labels = latents_of_renders(model, test_ids, p_test, d_test, size, framing)
    fit_half = (torch.arange(len(labels)) % per_id) < per_id // 2

    def dyn_probe(*names: str) -> float:
        columns = [dyn_index(name) for name in names]
        return ridge_r2(zd_fit, d_fit[:, columns], zd_test, d_test[:, columns])

    return {
        "pose_probe_r2": ridge_r2(zp_fit, p_fit, zp_test, p_test),
        "pose_direct_r2": r2_score(zp_test, p_test),
        "pose_leak_r2": ridge_r2(zd_fit, p_fit, zd_test, p_test),
        "mouth_probe_r2": dyn_probe("jaw_open"),
        "blink_probe_r2": dyn_probe("eyelid"),
        "gaze_probe_r2": dyn_probe("gaze_yaw", "gaze_pitch"),
        "brow_probe_r2": dyn_probe("brow_raise", "brow_frown"),
        "smile_probe_r2": dyn_probe("smile"),
        "dynamics_probe_r2": ridge_r2(zd_fit, d_fit, zd_test, d_test),
        "id_leak_acc": centroid_accuracy(zd_test, labels, fit_half),
        "id_from_identity_acc": centroid_accuracy(zi_test, labels, fit_half),
        "id_leak_chance": 1 / n_test_ids,
    }


def framed(name: str, framing: str) -> str:
    """The shipped checkpoint `name` for images of `framing` ("eval_reader" -> "eval_reader_portrait")."""
    return name if framing == "wide" else f"{name}_{framing}"


@torch.inference_mode()
def decode_fps(model: FaceModel, batch: int = 16, repeats: int = 5) -> float:
    """Frames per second of the per-frame decoder at the model's size (cached canonical volume)."""
    size = model.config.size
    latent = model.encode(torch.rand(1, 3, size, size))
    canonical = model.canonical(latent).expand(batch, -1, -1, -1, -1)
    identity = latent.identity.expand(batch, -1)
    pose, _ = random_motion(batch)
    dyn = torch.randn(batch, model.config.dyn_dim)
    model.render(canonical, identity, pose, dyn, source=latent)  # warm up
    start = time.perf_counter()
    for _ in range(repeats):
        model.render(canonical, identity, pose, dyn, source=latent)
    return batch * repeats / (time.perf_counter() - start)


def evaluate(checkpoint: str | Path | None = None, identity_net: str | Path | None = None,
             reader: str | Path | None = None,
             n_clips: int = 40, n_frames: int = 8, n_train_ids: int = 200, n_test_ids: int = 50, per_id: int = 6,
             cache_dir: str | None = None) -> dict[str, float]:
    """All metrics of the module docstring as a dict (default: the shipped checkpoints)."""
    torch.manual_seed(0)
    checkpoint = checkpoint or paths.checkpoint("face")
    model = load_checkpoint(checkpoint, FaceModel)
    framing = model.config.framing
    reader_net = load_checkpoint(reader or paths.checkpoint(framed("eval_reader", framing)), ParameterReader)
    idnet = load_checkpoint(identity_net or paths.checkpoint(framed("identity_net", framing)), IdentityNet)
    for name, net in (("parameter reader", reader_net), ("identity network", idnet)):
        if net.config.framing != framing:
            raise ValueError(f"the {name} reads {net.config.framing!r} framing, the face model {framing!r}: "
                             f"give one trained at {framing!r}")
    size = model.config.size
    start = time.perf_counter()
    results = {"checkpoint": str(checkpoint), "n_test_clips": n_clips}
    results.update({f"reader_r2_{group}": value for group, value in grade(reader_net, cache_dir=cache_dir).items()})
    results.update(reenactment_metrics(model, idnet, reader_net, n_clips, n_frames, size, cache_dir, framing))
    results.update(probe_metrics(model, n_train_ids, n_test_ids, per_id, size, cache_dir, framing))
    results[f"decode_fps_{size}"] = decode_fps(model)
    results["threads"] = torch.get_num_threads()
    results["eval_seconds"] = time.perf_counter() - start
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vasa_lib.eval.face", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="face checkpoint (default: the shipped face.safetensors)")
    parser.add_argument("--identity-net", help="identity network (default: the shipped one of the model's framing)")
    parser.add_argument("--reader", help="parameter reader (default: the shipped one of the model's framing)")
    parser.add_argument("--clips", type=int, default=40, help="test clips for the re-enactment metrics")
    parser.add_argument("--cache-dir", default=None, help="where clips are cached (default: made on the fly)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--write-card", action="store_true",
                        help="also add the results to the checkpoint's card (.md beside it)")
    args = parser.parse_args(argv)
    args.checkpoint = args.checkpoint or str(paths.checkpoint("face"))
    results = evaluate(args.checkpoint, args.identity_net, args.reader, n_clips=args.clips, cache_dir=args.cache_dir)
    if args.write_card:
        command = "python -m vasa_lib.eval.face " + " ".join(argv if argv is not None else sys.argv[1:])
        write_evaluation(args.checkpoint, command, results)
    if args.json:
        print(json.dumps(results))
    else:
        for k, v in results.items():
            print(f"{k:28s} {v}")


if __name__ == "__main__":
    main()
