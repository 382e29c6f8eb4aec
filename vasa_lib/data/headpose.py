"""Head pose from the detector's six keypoints: the label a real video lacks.

MegaPortraits (and so VASA-1) take head pose from a pretrained head-pose estimator. Here the
estimator is the smallest that works: geometric features of BlazeFace's keypoints (eyes, nose,
mouth, ears) in the crop, mapped to the world's six pose units (yaw, pitch, roll, x, y,
distance) by a ridge regression fitted on renders of train people in natural poses. It is
graded on test people, and the face model trained with it instead of the world's labels shows
what a label-free real-video run loses (`python -m vasa_lib.data.headpose` refits and grades).

    features (T, F) <- keypoints (T, 6, 2) in crop pixels, crop side `size`
    pose (T, 6)     <- [(features - mean) / std, 1] @ weights (F + 1, 6)
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np

from vasa_lib import paths
from vasa_lib.data.detect import detect_faces
from vasa_lib.video import to_uint8_frames

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
def _fitted() -> dict[str, np.ndarray]:
    saved = json.loads(WEIGHTS.read_text())
    return {k: np.array(saved[k], np.float64) for k in ("mean", "std", "weights")}


def _design(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return np.concatenate([(x - mean) / std, np.ones((len(x), 1))], 1)


def estimate_pose(keypoints: np.ndarray, size: int) -> np.ndarray:
    """Head pose (T, 6) in the world's units from keypoints (T, 6, 2) in a `size` crop."""
    w = _fitted()
    return (_design(features(keypoints, size), w["mean"], w["std"]) @ w["weights"]).astype(np.float32)


def _render_keypoints(split: str, n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (m, 6, 2) detected on n renders of a split's people in natural poses, and the
    poses (m, 6) of the m renders where exactly one face was found."""
    import torch

    from vasa_lib.world.clips import natural_motion
    from vasa_lib.world.identity import IDENTITY_SPLITS, identity_from_id
    from vasa_lib.world.renderer import render

    rng = np.random.default_rng(seed)
    pose, dynamics = natural_motion(split, n, n_clips=32, seed=seed)
    ids = rng.choice(IDENTITY_SPLITS[split], n)
    images = render(identity_from_id(ids.tolist()), torch.as_tensor(pose), torch.as_tensor(dynamics), size=size)
    points, kept = [], []
    for i, image in enumerate(to_uint8_frames(images)):
        faces = detect_faces(image)
        if len(faces) == 1:
            points.append(faces[0].keypoints)
            kept.append(i)
    return np.stack(points), np.asarray(pose)[kept]


def fit(n_train: int = 3000, n_test: int = 600, size: int = 128, ridge: float = 1e-4, seed: int = 0) -> dict:
    """Fit the weights on train people, grade them on test people (R^2 per pose column) and save
    both to `WEIGHTS`; returns the report."""
    import torch

    from vasa_lib.eval.probes import r2_per_column
    from vasa_lib.world.params import POSE_NAMES

    points, pose = _render_keypoints("train", n_train, size, seed)
    raw = features(points, size)
    mean, std = raw.mean(0), raw.std(0) + 1e-9
    x = _design(raw, mean, std)
    weights = np.linalg.solve(x.T @ x + ridge * len(x) * np.eye(x.shape[1]), x.T @ pose)
    test_points, test_pose = _render_keypoints("test", n_test, size, seed + 1)
    x_test = _design(features(test_points, size), mean, std)
    r2 = r2_per_column(torch.from_numpy(x_test @ weights), torch.from_numpy(test_pose))
    report = {"command": "python -m vasa_lib.data.headpose", "n_train": len(points), "n_test": len(test_points),
              "size": size, "ridge": ridge, "seed": seed,
              "test_r2": {name: round(float(v), 4) for name, v in zip(POSE_NAMES, r2)},
              "mean": mean.round(6).tolist(), "std": std.round(6).tolist(), "weights": weights.round(6).tolist()}
    WEIGHTS.write_text(json.dumps(report, indent=1))
    _fitted.cache_clear()
    return report


if __name__ == "__main__":
    print(json.dumps({k: v for k, v in fit().items() if k not in ("mean", "std", "weights")}, indent=1))
