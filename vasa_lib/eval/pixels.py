"""Motion judged from pixels: each system's motion made into video and read back (paper Sec. 4.1;
issue 20: "each row also gives the world's exact per-parameter errors read from pixels").

VASA-1 grades its videos, not its latents: SyncNet, gaze and pose estimators run on the frames.
Here each row's motion becomes the video a user would see:
- in the world's parameters: the world's renderer draws the clip's person with them;
- in the face model's latent space: the face model decodes [z_pose, z_dyn] onto the clip's
  person, its appearance taken from the clip's first true frame (the portrait).
The parameter reader trained at the video's framing (`eval.reader`) reads the world's 17
parameters back from every frame, and the world's evaluators grade them as they grade the
world's own motion (`eval.motion.clip_metrics`): the jaw read from the pixels against the true
jaw of the audio, the gaze and distance read against the controls, the blinks counted on the
eyelid read, the emotion classified. A row is then judged on what its frames show, including
what the face model fails to draw. `reader_ceiling` gives the same metrics on the world's own
renders of the truth: what the reader can read at that framing at all.

`frames_of` also gives the FVD analogue (`eval.video_features`) its videos.
"""

from __future__ import annotations

import torch
from einops import repeat

from vasa_lib import paths
from vasa_lib.checkpoint import load_checkpoint
from vasa_lib.eval.face import framed
from vasa_lib.eval.motion import clip_metrics
from vasa_lib.face.model import FaceModel
from vasa_lib.face.reader import ParameterReader
from vasa_lib.motion.latents import LatentSet
from vasa_lib.world.clips import render_motion
from vasa_lib.world.identity import identity_from_id
from vasa_lib.world.params import POSE_DIM

PIXEL_KEYS = ("lip_sync_corr", "sync_conf", "gaze_err_deg", "distance_err", "blinks_per_min", "emotion_acc")
WORLD_FRAMING = "portrait"      # world rows are read at the framing the best reader was trained for


def load_reader(framing: str) -> ParameterReader:
    """The shipped parameter reader for images of `framing`."""
    return load_checkpoint(paths.checkpoint(framed("eval_reader", framing)), ParameterReader)


@torch.inference_mode()
def frames_of(motion: torch.Tensor, world: LatentSet, i: int, face: FaceModel | None = None,
              framing: str = WORLD_FRAMING, size: int = 128, batch: int = 64) -> torch.Tensor:
    """The video (T, 3, H, W) of motion (T, D) for clip i of a WORLD LatentSet: rendered by the
    world at `framing` and `size` when `face` is None (D = 17, each value clamped into its range,
    `world.clips.render_motion`), else decoded by the face model
    (D = 6 + dyn_dim) at its own framing from the clip's first true frame."""
    s = int(world.offsets[i])
    person = identity_from_id(int(world.identity_id[i]))
    if face is None:
        return render_motion(person, motion, size, framing)
    c = face.config
    portrait = render_motion(person, world.motion[s:s + 1], c.size, c.framing)
    latent = face.encode(portrait)
    canonical = face.canonical(latent)
    out = []
    for block in motion.split(batch):
        n = len(block)
        out.append(face.render(repeat(canonical, "1 ... -> n ...", n=n), repeat(latent.identity, "1 d -> n d", n=n),
                               block[:, :POSE_DIM], block[:, POSE_DIM:], source=latent))
    return torch.cat(out)


def read_metrics(video: torch.Tensor, world: LatentSet, i: int, reader: ParameterReader,
                 ev_world: dict[str, torch.nn.Module]) -> dict[str, float]:
    """`PIXEL_KEYS` of the video (T, 3, H, W) of clip i of a WORLD LatentSet: read by the reader,
    graded by the world's evaluators against the clip's truth and controls."""
    metrics = clip_metrics(reader.read(video), world, i, ev_world, world=True)
    return {k: metrics[k] for k in PIXEL_KEYS}


def mean_metrics(per_clip: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each key over clips."""
    return {k: sum(c[k] for c in per_clip) / len(per_clip) for k in per_clip[0]}


def reader_ceiling(world: LatentSet, framing: str, reader: ParameterReader,
                   ev_world: dict[str, torch.nn.Module]) -> dict[str, float]:
    """`read_metrics` of the world's renders of the true motion at `framing`, averaged over
    clips: the best any row can score there, set by the reader (compare with the truth's own
    metrics)."""
    return mean_metrics([read_metrics(frames_of(m, world, i, framing=framing), world, i, reader, ev_world)
                         for i, m in enumerate(world.split("motion"))])
