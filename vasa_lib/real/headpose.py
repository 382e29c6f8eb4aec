"""Head pose from the detector's six keypoints: the label a real video lacks.

MegaPortraits (and so VASA-1) take head pose from a pretrained head-pose estimator. Here the
estimator is the smallest that works: geometric features of BlazeFace's keypoints (eyes, nose,
mouth, ears) in the crop, mapped to the world's six pose units (yaw, pitch, roll, x, y,
distance) by a ridge regression fitted on renders of train people in natural poses. It is
graded on test people, and the face model trained with it instead of the world's labels shows
what a label-free real-video run loses (`python -m vasa_lib.train headpose` refits and grades).

    features (T, F) <- keypoints (T, 6, 2) in crop pixels, crop side `size`
    pose (T, 6)     <- [(features - mean) / std, 1] @ weights (F + 1, 6)
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np

from vasa_lib import paths

WEIGHTS = paths.BUNDLED_MODELS / "keypoint_pose.json"


def features(keypoints: np.ndarray, size: int) -> np.ndarray:
    """Pose features (T, 15) of keypoints (T, 6, 2) in pixels of a `size` crop: the keypoints
    in units of the crop, the eye line's angle and length, and the nose, mouth and ears relative
    to the eyes' midpoint in units of the eye distance."""
    k = keypoints / size
    eyes = k[:, 1] - k[:, 0]
    spacing = np.linalg.norm(eyes, axis=1, keepdims=True)
    mid = (k[:, 0] + k[:, 1]) / 2
    relative = (k[:, 2:] - mid[:, None]) / spacing[:, None]                  # nose, mouth, ears
    return np.concatenate([mid, k[:, 2], np.arctan2(eyes[:, 1:], eyes[:, :1]), spacing, 1 / spacing,
                           relative.reshape(len(k), -1)], 1)


@cache
def fitted() -> dict[str, np.ndarray]:
    saved = json.loads(WEIGHTS.read_text())
    return {k: np.array(saved[k], np.float64) for k in ("mean", "std", "weights")}


def design(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The regression's inputs (T, F + 1): standardised features and a constant."""
    return np.concatenate([(x - mean) / std, np.ones((len(x), 1))], 1)


def estimate_pose(keypoints: np.ndarray, size: int) -> np.ndarray:
    """Head pose (T, 6) in the world's units from keypoints (T, 6, 2) in a `size` crop."""
    w = fitted()
    return (design(features(keypoints, size), w["mean"], w["std"]) @ w["weights"]).astype(np.float32)
