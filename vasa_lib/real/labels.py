"""The labels a real video lacks, read from face landmarks: head pose and facial parameters.

MegaPortraits (and so VASA-1) take head pose from a pretrained head-pose estimator; SadTalker-style
systems read expression from a 3D face fit. Here both come from MediaPipe's landmarks
(`landmarks.face_landmarks`), in two steps:

1. a rigid fit (Umeyama 1991): the 468 mesh points ~ s R canonical + t, with MediaPipe's
   canonical face. R is the head's rotation, s its size (nearer is larger), t where it is;
   what the fit leaves, the mesh in the head's own frame less the canonical face, is the
   expression; the irises, in the head's frame too, are the gaze;
2. a ridge regression from those features to the world's 17 parameters (yaw, pitch, roll, x,
   y, distance; jaw, lips, tongue, smile, eyelid, gaze, brows), fitted on landmarks of renders
   of train people in natural poses and expressions, graded on test people
   (`python -m vasa_lib.train labels` refits, grades and writes `WEIGHTS`). Only x, y and
   distance read the head's place and size in the frame, so that everything else reads the
   same in a crop that follows the head.

Points are given in the pixels of a frame of (W, H) pixels and measured in units of its height
from its centre, as the world's camera measures a square frame. In a crop, the estimate is the
head as the crop shows it; in the whole video (the crop's points taken back through its track,
`VideoClip.video_pose`), where the head is and how near the camera.

    features (T, F) <- points (T, 478, 3), frame (W, H)
    params (T, 17)  <- [(features - mean) / std, 1] @ weights (F + 1, 17)
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
from safetensors.numpy import load_file, save_file

from vasa_lib import paths
from vasa_lib.real.landmarks import MESH_POINTS
from vasa_lib.world.params import DYNAMICS_LIMITS, DYNAMICS_NAMES, POSE_LIMITS, POSE_NAMES

WEIGHTS = paths.BUNDLED_MODELS / "landmark_labels.safetensors"
CANONICAL = paths.BUNDLED_MODELS / "canonical_face.npy"
PARAM_NAMES = POSE_NAMES + DYNAMICS_NAMES
LIMITS = np.concatenate([POSE_LIMITS.numpy(), DYNAMICS_LIMITS.numpy()]).astype(np.float64)    # (17, 2) low, high
PLACEMENT = ("tx", "ty", "distance")            # where the head is in the frame, and how near
PLACEMENT_FEATURES = np.arange(9, 13)           # the features that say so: log scale, 1 / scale, centre x, y


@cache
def canonical_face() -> np.ndarray:
    """MediaPipe's canonical face (468, 3), centred at its mean; y up, in centimetres."""
    face = np.load(CANONICAL).astype(np.float64)
    return face - face.mean(0)


def rigid_fit(mesh: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """The similarity that best maps the canonical face onto mesh (468, 3), least squares
    (Umeyama 1991): rotation R (3, 3), scale s, translation t (3,) with mesh ~ s canonical R^T + t."""
    canonical = canonical_face()
    t = mesh.mean(0)
    u, singular, vt = np.linalg.svd((mesh - t).T @ canonical)
    flip = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])          # a rotation, not a mirror
    rotation = u @ flip @ vt
    return rotation, float((singular * np.diag(flip)).sum() / (canonical**2).sum()), t


def features(points: np.ndarray, frame: tuple[int, int]) -> np.ndarray:
    """Features (T, F) of landmarks (T, 478, 3) in the pixels of a (W, H) frame: the rigid fit's
    rotation (9), log scale and inverse scale, centre x and y; the mesh in the head's frame less
    the canonical face (468 * 3); the ten iris points in the head's frame (20)."""
    width, height = frame
    unit = np.asarray(points, np.float64) / height
    unit[..., :2] -= np.array([width / 2, height / 2]) / height
    rows = []
    for p in unit:
        rotation, scale, t = rigid_fit(p[:MESH_POINTS])
        shape = (p[:MESH_POINTS] - t) @ rotation / scale - canonical_face()
        irises = (p[MESH_POINTS:, :2] - t[:2]) @ rotation[:2, :2] / scale
        rows.append(np.concatenate([rotation.ravel(), [np.log(scale), 1 / scale], t[:2], shape.ravel(),
                                    irises.ravel()]))
    return np.array(rows).reshape(len(unit), -1)


def design(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The regression's inputs (T, F + 1): standardised features and a constant."""
    return np.concatenate([(x - mean) / std, np.ones((len(x), 1))], 1)


def fit(x: np.ndarray, y: np.ndarray, ridge: float) -> dict[str, np.ndarray]:
    """Ridge regression of targets y (N, 17) on features x (N, F): {"mean", "std", "weights"}.
    Only x, y and distance may use where the head is and how large (`PLACEMENT_FEATURES`): the
    rotations and the face's parameters must read the same in a crop that follows the head."""
    mean, std = x.mean(0), x.std(0) + 1e-9
    inputs = design(x, mean, std)
    placed = np.isin(np.arange(len(PARAM_NAMES)), [PARAM_NAMES.index(n) for n in PLACEMENT])
    weights = np.zeros((inputs.shape[1], len(PARAM_NAMES)))
    for outputs, columns in ((placed, np.arange(inputs.shape[1])),
                             (~placed, np.setdiff1d(np.arange(inputs.shape[1]), PLACEMENT_FEATURES))):
        a = inputs[:, columns]
        weights[np.ix_(columns, outputs)] = np.linalg.solve(a.T @ a + ridge * len(x) * np.eye(len(columns)),
                                                            a.T @ y[:, outputs])
    return {"mean": mean, "std": std, "weights": weights}


def save(fitted: dict[str, np.ndarray], report: dict) -> None:
    """Write the fitted regression to `WEIGHTS`, its report (grade, command) as metadata."""
    save_file({k: v.astype(np.float32) for k, v in fitted.items()}, str(WEIGHTS), {"report": json.dumps(report)})
    load.cache_clear()


@cache
def load() -> dict[str, np.ndarray]:
    return {k: v.astype(np.float64) for k, v in load_file(str(WEIGHTS)).items()}


def report() -> dict:
    """The shipped regression's report: its command, data and grade on test people."""
    from safetensors import safe_open

    with safe_open(str(WEIGHTS), "np") as f:
        return json.loads(f.metadata()["report"])


def predict(x: np.ndarray, fitted: dict[str, np.ndarray]) -> np.ndarray:
    """Parameters (T, 17) from features (T, F) with a fitted regression, each clamped into the world's
    range (`LIMITS`: a real face, or a head far from the camera, can read beyond them)."""
    return np.clip(design(x, fitted["mean"], fitted["std"]) @ fitted["weights"], LIMITS[:, 0], LIMITS[:, 1])


def estimate(points: np.ndarray, frame: tuple[int, int]) -> np.ndarray:
    """The world's 17 parameters (T, 17), `PARAM_NAMES`, from landmarks (T, 478, 3) in the pixels
    of a (W, H) frame, with the shipped regression (`predict`)."""
    if len(points) == 0:
        return np.zeros((0, len(PARAM_NAMES)), np.float32)
    return predict(features(points, frame), load()).astype(np.float32)
