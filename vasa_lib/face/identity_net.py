"""The identity network: a small face-recognition CNN, in place of ArcFace (paper Sec. 3.1).

VASA-1's cross-identity loss l_cross_id compares face-recognition embeddings of a source image
and of the source re-enacted with another person's motion. ArcFace cannot be downloaded here, so
the project trains its own: rendering is free, so every training image is a new random pose and
expression of one of `n_identities` train-split people, and a cosine-softmax head with an
additive margin (CosFace) teaches the embedding to recognise people whatever their pose and
expression. The background, the shirt and the light are part of a world identity, but not of a
face: training images get random ones (`NUISANCE_FIELDS`), so the network must look at the face
and hair.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vasa_lib.face.layers import ResBlock2d, down2d, norm
from vasa_lib.optim import one_cycle
from vasa_lib.world.identity import IDENTITY_FIELDS, IDENTITY_SLICES, IDENTITY_SPLITS, identity_from_id
from vasa_lib.world.params import DYNAMICS_LIMITS, POSE_LIMITS

NUISANCE_FIELDS = ("background_top", "background_bottom", "shirt_color", "light_yaw", "light_pitch")


@dataclass
class IdentityNetConfig:
    """Images are resized to `input_size` (area averaging), then four stages of `widths` channels
    run at input_size/2, /4, /8, /16; the embedding has `embed_dim` numbers. `framing`: the
    camera framing of the world renders it is trained on (`vasa_lib.world.params.FRAMINGS`)."""

    input_size: int = 64
    widths: tuple[int, ...] = (16, 32, 64, 128)
    embed_dim: int = 128
    framing: str = "wide"

    def __post_init__(self) -> None:
        self.widths = tuple(self.widths)


class IdentityNet(nn.Module):
    """Image (B, 3, H, W) in [0, 1], any size -> unit-length identity embedding (B, embed_dim)."""

    config_class = IdentityNetConfig

    def __init__(self, config: IdentityNetConfig | None = None):
        super().__init__()
        self.config = c = config or IdentityNetConfig()
        layers: list[nn.Module] = []
        c_in = 3
        for w in c.widths:
            layers += [down2d(c_in, w), ResBlock2d(w, w)]
            c_in = w
        self.body = nn.Sequential(*layers, norm(c_in), nn.SiLU())
        self.embed = nn.Linear(c_in, c.embed_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(image, size=self.config.input_size, mode="area") - 0.5
        return F.normalize(self.embed(self.body(x).mean(dim=(2, 3))), dim=-1)


def random_motion(n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniformly random poses (n, 6) and dynamics (n, 11) inside the world's ranges."""
    def draw(limits: torch.Tensor) -> torch.Tensor:
        u = torch.rand(n, len(limits), generator=generator)
        return limits[:, 0] + (limits[:, 1] - limits[:, 0]) * u
    return draw(POSE_LIMITS), draw(DYNAMICS_LIMITS)


def render_people(ids: torch.Tensor, size: int, generator: torch.Generator | None = None,
                  nuisance: bool = True, framing: str = "wide") -> torch.Tensor:
    """Images (B, 3, size, size) of identities `ids` (B,) in random poses and expressions and,
    if `nuisance`, with random backgrounds, shirts and lights, seen with `framing`."""
    from vasa_lib.world.renderer import render

    pose, dynamics = random_motion(len(ids), generator)
    identity = identity_from_id(ids.tolist())
    if nuisance:
        for name in NUISANCE_FIELDS:
            size_, low, high = IDENTITY_FIELDS[name]
            identity[:, IDENTITY_SLICES[name]] = low + (high - low) * torch.rand(len(ids), size_, generator=generator)
    return render(identity, pose, dynamics, size=size, framing=framing)


@torch.no_grad()
def identification_accuracy(net: IdentityNet, ids: list[int], size: int = 128, seed: int = 0) -> float:
    """Top-1 identification among `ids`: a gallery image and a probe image per person, each in its
    own random pose and expression; the fraction of probes whose nearest gallery embedding is theirs."""
    g = torch.Generator().manual_seed(seed)
    people = torch.tensor(ids)
    framing = net.config.framing
    gallery, probe = (net(render_people(people, size, g, framing=framing)) for _ in range(2))
    return (probe @ gallery.T).argmax(1).eq(torch.arange(len(ids))).float().mean().item()


def train_identity_net(n_identities: int = 2000, steps: int = 600, people_per_batch: int = 32, size: int = 128,
                       lr: float = 2e-3, scale: float = 16.0, margin: float = 0.1, seed: int = 0,
                       config: IdentityNetConfig | None = None, log_every: int = 50,
                       images_of: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                       ) -> tuple[IdentityNet, dict]:
    """Train an IdentityNet on renders of train identities 0..n_identities-1.

    Each step draws `people_per_batch` people and two images of each (random pose, expression,
    background, light). The head is a cosine softmax whose class weights are the embeddings of
    the other image of each person in the batch (as GE2E / prototypical networks), with an
    additive margin (CosFace): loss = CE(scale * (cos(a_i, b_j) - margin * [i = j]), i), both
    ways. Class weights computed from the batch need no warm-up, and the embedding must work
    for any person, which is what a loss on unseen people needs. Returns the net and a record
    of the run, with the identification accuracy on the held-out test identities.

    images_of: (people (P,), generator) -> images (P, 3, size, size) of people 0..n_identities-1,
    for training on video (`vasa_lib.real.dataset.person_images`); by default, world renders.
    """
    if n_identities < 2:
        raise ValueError("the identity network needs at least 2 people to tell apart")
    if images_of is None and n_identities > len(IDENTITY_SPLITS["train"]):
        raise ValueError(f"n_identities must be <= {len(IDENTITY_SPLITS['train'])}")
    config = config or IdentityNetConfig()
    images_of = images_of or (lambda people, g: render_people(people, size, g, framing=config.framing))
    people_per_batch = min(people_per_batch, n_identities)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = IdentityNet(config)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = one_cycle(opt, lr, steps, warmup=0.05, final_div_factor=1e4)
    start = time.time()
    target = torch.arange(people_per_batch)
    for step in range(steps):
        ids = torch.randperm(n_identities, generator=g)[:people_per_batch]
        with torch.no_grad():
            images = images_of(ids.repeat(2), g)
        a, b = net(images).chunk(2)
        logits = scale * (a @ b.T - margin * torch.eye(people_per_batch))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log_every and (step % log_every == 0 or step == steps - 1):
            acc = (logits.argmax(1) == target).float().mean().item()
            print(f"step {step} loss {loss.item():.3f} in-batch acc {acc:.3f} {time.time() - start:.0f}s", flush=True)
    net.eval()
    test_ids = list(IDENTITY_SPLITS["test"])
    record = {"n_identities": n_identities, "steps": steps, "people_per_batch": people_per_batch, "size": size,
              "lr": lr, "scale": scale, "margin": margin, "seed": seed, "train_seconds": round(time.time() - start, 1),
              "test_identification_top1": identification_accuracy(net, test_ids, size),
              "test_identification_chance": 1 / len(test_ids)}
    return net, record
