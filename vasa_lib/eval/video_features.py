"""A video feature network trained on the world, for the FVD analogue (VASA-1 Sec. 4.1).

    python -m vasa_lib.eval.video_features --json      # the shipped network's grade on test clips

The paper's FVD compares generated and real videos in the feature space of I3D, a video network
trained on real video (Kinetics). Ours is trained on the world's renders: a 25-frame clip
(B, 25, 3, H, W) in [0, 1], its central `crop` share (where the head is: at the wide framing the
central half of the frame, at native resolution) area-resized to `size`, goes through a strided
CNN per frame (one vector per frame), then two residual temporal convolutions (kernel 5) that
mix neighbouring frames into h (B, 25, dim). Two heads teach h what matters in a talking head:
- each frame's 17 world parameters (pose and face, standardised) from h;
- the clip's emotion from the pooled feature below.
The clip's feature is the mean and the spread over time of a `feature_dim` projection of h, and
the spread of its frame-to-frame change: what the face shows, how much it moves, how smoothly.
`frechet_video_distance` fits a Gaussian to the features of two sets of 25-frame windows and
returns the Frechet distance between them, as FVD does.

Trained on the motion and emotions of TRAIN-split clips, each window rendered with a random one
of the 10,000 TRAIN-split people (with each clip's own person it memorises the clips: a first run
on 200 clips read their gaze at R^2 0.89 and a test person's at -1.6), at the framing of the
shipped face model; graded on TEST-split clips (`grade`): the per-group R^2 of the frame
read, the emotion accuracy, and FVD's own sanity checks: the distance between true clips and the
same clips under another motion seed (the floor) must be smaller than from the clips shuffled in
time or blurred. The reference is always the same people saying the same sentences, so that the
distance measures the motion and the image, not who is on screen.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vasa_lib import paths
from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.eval.motion import frechet_distance
from vasa_lib.eval.pixels import frames_of
from vasa_lib.eval.reader import GROUPS, NAMES, group_r2, renders
from vasa_lib.face.crops import conv_stages
from vasa_lib.motion.latents import WORLD, LatentSet, load_latents
from vasa_lib.optim import one_cycle, param_groups
from vasa_lib.world.identity import IDENTITY_SPLITS
from vasa_lib.world.params import EMOTIONS, FPS

WINDOW = FPS          # 25 frames, FVD's clip length


@dataclass
class VideoFeatureConfig:
    """crop: the central share of the frame's side that is kept; size: its side after resizing;
    widths: the per-frame CNN (each stage halves the side); dim: h's width; feature_dim: the
    projection whose statistics over time are the feature (3 * feature_dim numbers); framing
    and render_size: the renders it is trained on."""

    crop: float = 0.5
    size: int = 64
    widths: tuple[int, ...] = (16, 32, 64, 96)
    dim: int = 128
    feature_dim: int = 32
    framing: str = "wide"
    render_size: int = 128

    def __post_init__(self) -> None:
        self.widths = tuple(self.widths)

    def to_dict(self) -> dict:
        return asdict(self)


class TemporalBlock(nn.Module):
    """x + Conv1d(GELU(LayerNorm(x))) over time: (B, T, C) -> same."""

    def __init__(self, dim: int, kernel_size: int = 5):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.norm(x))
        return x + rearrange(self.conv(rearrange(h, "b t c -> b c t")), "b c t -> b t c")


class VideoFeatureNet(nn.Module):
    """Clips (B, T, 3, H, W) in [0, 1] -> per-frame hidden states (B, T, dim), parameters and features."""

    config_class = VideoFeatureConfig

    def __init__(self, config: VideoFeatureConfig | None = None):
        super().__init__()
        self.config = c = config or VideoFeatureConfig()
        side = c.size // 2 ** len(c.widths)
        self.frame = nn.Sequential(conv_stages(3, c.widths), nn.Flatten(), nn.Linear(c.widths[-1] * side * side, c.dim))
        self.time = nn.Sequential(TemporalBlock(c.dim), TemporalBlock(c.dim), nn.LayerNorm(c.dim))
        self.params = nn.Linear(c.dim, len(NAMES))
        self.project = nn.Linear(c.dim, c.feature_dim)
        self.emotion = nn.Linear(2 * c.feature_dim, len(EMOTIONS))
        self.register_buffer("mean", torch.zeros(len(NAMES)))
        self.register_buffer("std", torch.ones(len(NAMES)))

    def hidden(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, T, dim)."""
        if clips.ndim != 5 or clips.shape[2] != 3:
            raise ValueError(f"expected clips (B, T, 3, H, W), got {tuple(clips.shape)}")
        b, side = clips.shape[0], clips.shape[-1]
        keep = round(side * self.config.crop)
        first = (side - keep) // 2
        frames = rearrange(clips[..., first:first + keep, first:first + keep], "b t c h w -> (b t) c h w")
        if keep != self.config.size:
            frames = F.interpolate(frames, size=(self.config.size,) * 2, mode="area")
        frames = frames * 2 - 1
        return self.time(rearrange(self.frame(frames), "(b t) d -> b t d", b=b))

    def pooled(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) -> (B, 2 * feature_dim): [mean, std over time] of the projection (the emotion
    head's input)."""
        p = self.project(h)
        return torch.cat([p.mean(1), p.std(1)], -1)

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised parameters (B, T, 17) and emotion logits (B, 5)."""
        h = self.hidden(clips)
        return self.params(h), self.emotion(self.pooled(h))

    @torch.no_grad()
    def frame_features(self, video: torch.Tensor) -> torch.Tensor:
        """Per-frame features (T, feature_dim) of a whole video (T, 3, H, W): the projection of h,
        each frame seen with its neighbours (the realism detector's input on pixels)."""
        return self.project(self.hidden(video[None]))[0]

    def clip_features(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) -> the FVD features (B, 3 * feature_dim): `pooled` and the spread of the
        projection's frame-to-frame change (how much the clip jitters: without it, frames in any
        order have the same features)."""
        return torch.cat([self.pooled(h), self.project(h).diff(dim=1).std(1)], -1)

    @torch.no_grad()
    def features(self, clips: torch.Tensor, batch: int = 16) -> torch.Tensor:
        """The FVD features (B, 3 * feature_dim) of clips (B, T, 3, H, W), in batches."""
        return torch.cat([self.clip_features(self.hidden(clips[i:i + batch])) for i in range(0, len(clips), batch)])


def video_windows(video: torch.Tensor, stride: int = WINDOW // 2) -> torch.Tensor:
    """The 25-frame windows of a video (T, 3, H, W) every `stride` frames: (n, 25, 3, H, W)
    (none when T < 25)."""
    starts = range(0, len(video) - WINDOW + 1, stride)
    return torch.stack([video[s:s + WINDOW] for s in starts]) if len(starts) else video.new_zeros(0, WINDOW,
                                                                                                    *video.shape[1:])


def video_features(net: VideoFeatureNet, videos: Sequence[torch.Tensor], stride: int = WINDOW // 2) -> torch.Tensor:
    """Features (n, 2 * feature_dim) of every window of every video (T_i, 3, H, W)."""
    return torch.cat([net.features(video_windows(v, stride)) for v in videos])


def frechet_video_distance(net: VideoFeatureNet, videos: Sequence[torch.Tensor],
                           reference: Sequence[torch.Tensor] | torch.Tensor, stride: int = WINDOW // 2) -> float:
    """FVD analogue: the Frechet distance between the window features of `videos` and of
    `reference` (videos, or their features from `video_features`)."""
    ref = reference if isinstance(reference, torch.Tensor) else video_features(net, reference, stride)
    return frechet_distance(video_features(net, videos, stride), ref)


def draw_windows(latents: LatentSet, n: int, generator: torch.Generator) -> list[tuple[int, int]]:
    """n random (clip, first frame) pairs of 25-frame windows."""
    lengths = torch.tensor(latents.lengths())
    clips = torch.nonzero(lengths >= WINDOW)[:, 0]
    chosen = clips[torch.randint(len(clips), (n,), generator=generator)]
    return [(int(c), int(torch.randint(int(lengths[c]) - WINDOW + 1, (), generator=generator))) for c in chosen]


def window_batch(latents: LatentSet, windows: list[tuple[int, int]], config: VideoFeatureConfig,
                 device: str = "cpu", people: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rendered windows (B, 25, 3, S, S), their parameters (B, 25, 17) and emotions (B,); each
    window shows its clip's person, or people[b] when given (person ids (B,))."""
    rows = torch.tensor([int(latents.offsets[c]) + s + k for c, s in windows for k in range(WINDOW)])
    if people is None:
        people = torch.tensor([int(latents.identity_id[c]) for c, _ in windows])
    ids = people.repeat_interleave(WINDOW)
    params = latents.motion[rows].to(device)
    clips = renders(ids, params, config.render_size, config.framing)
    shape = {"b": len(windows), "t": WINDOW}
    return (rearrange(clips, "(b t) c h w -> b t c h w", **shape), rearrange(params, "(b t) d -> b t d", **shape),
            latents.emotion[[c for c, _ in windows]].to(device))


def train_video_features(config: VideoFeatureConfig, steps: int, batch: int = 16, lr: float = 2e-3,
                         n_clips: int = 1000, seed: int = 0, log_every: int = 0, grade_clips: int = 16,
                         ) -> tuple[VideoFeatureNet, dict]:
    """Fit the network on rendered windows of n_clips TRAIN clips (their motion and emotions,
    random TRAIN people); returns it (eval mode, on the CPU) and a report with its grade on 2 * grade_clips
    TEST clips (`grade`)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    train = load_latents("train", n_clips, WORLD)
    people = torch.tensor(IDENTITY_SPLITS["train"])
    net = VideoFeatureNet(config).to(device)
    net.mean.copy_(train.motion.mean(0))
    net.std.copy_(train.motion.std(0).clamp_min(1e-3))
    optimiser = torch.optim.AdamW(param_groups(net, 1e-4), lr=lr)
    schedule = one_cycle(optimiser, lr, steps, warmup=0.05, final_div_factor=1e3)
    start, losses = time.perf_counter(), []
    net.train()
    for step in range(1, steps + 1):
        who = people[torch.randint(len(people), (batch,), generator=generator)]
        clips, params, emotion = window_batch(train, draw_windows(train, batch, generator), config, device, who)
        pred, logits = net(clips)
        loss = F.smooth_l1_loss(pred, (params - net.mean) / net.std) + 0.5 * F.cross_entropy(logits, emotion)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if log_every and step % log_every == 0:
            print(f"video features step {step} loss {sum(losses[-log_every:]) / log_every:.4f} "
                  f"| {time.perf_counter() - start:.0f} s", flush=True)
    net.eval().cpu()
    report = {"steps": steps, "batch": batch, "n_train_clips": n_clips, "device": device,
              "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
              "train_seconds": round(time.perf_counter() - start, 1), "grade": grade(net, grade_clips)}
    return net, report


@torch.no_grad()
def grade(net: VideoFeatureNet, n_clips: int = 16, seed: int = 3) -> dict:
    """The network graded on TEST clips before it grades anything: R^2 per group of the frame
    read and emotion accuracy on random windows of 2 * n_clips clips; the FVD of n_clips true
    clips against the same clips under another motion seed (the floor: same people and speech,
    another sample of their motion), and of the true clips with frames shuffled in time, and
    blurred, against the same reference."""
    generator = torch.Generator().manual_seed(seed)
    test = load_latents("test", 2 * n_clips, WORLD)
    clips, params, emotion = window_batch(test, draw_windows(test, 64, generator), net.config)
    pred, logits = [], []
    for i in range(0, len(clips), 16):
        p, e = net(clips[i:i + 16])
        pred.append(p)
        logits.append(e)
    read = torch.cat(pred).flatten(0, 1) * net.std + net.mean
    r2 = group_r2(read, params.flatten(0, 1))
    reseeded = load_latents("test", n_clips, WORLD, motion_seed=1)
    c = net.config
    videos, reference = ([frames_of(m, latents, i, framing=c.framing, size=c.render_size)
                          for i, m in enumerate(latents.split("motion")[:n_clips])] for latents in (test, reseeded))
    reference = video_features(net, reference)
    shuffled = [v[torch.randperm(len(v), generator=generator)] for v in videos]
    blurred = [F.avg_pool2d(v, 5, stride=1, padding=2, count_include_pad=False) for v in videos]
    return {"r2_" + g: round(r2[g], 4) for g in GROUPS} | {
        "emotion_acc": round(float((torch.cat(logits).argmax(-1) == emotion).float().mean()), 4),
        "fvd_truth": round(frechet_video_distance(net, videos, reference), 3),
        "fvd_shuffled_frames": round(frechet_video_distance(net, shuffled, reference), 3),
        "fvd_blurred": round(frechet_video_distance(net, blurred, reference), 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vasa_lib.eval.video_features",
                                     description="The video feature network's grade on test clips (`grade`).")
    parser.add_argument("--checkpoint", default=str(paths.checkpoint("eval_video_features")))
    parser.add_argument("--clips", type=int, default=16, help="clips for the FVD checks (twice as many for the read)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"checkpoint": args.checkpoint, **grade(load_checkpoint(args.checkpoint, VideoFeatureNet), args.clips)}
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
