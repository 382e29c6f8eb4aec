"""Face detection on real (and world) video: MediaPipe's BlazeFace, short range.

BlazeFace (Bazarevsky et al. 2019) is a single-shot detector for faces that fill a good part of
the image, as in talking-head video. The network (`models/face_detection_short_range.tflite`,
Apache-2.0, see `models/README.md`) ships inside the package and runs with LiteRT
(`ai-edge-litert`, installed with the course except on Windows, which it has no wheels for);
nothing is downloaded at run time. What the network leaves to us, written here: letterboxing the
image to its 128 x 128 input, its 896 SSD anchors, decoding boxes and six keypoints relative to
them, and weighted non-maximum suppression.

It finds real faces and the world's painted ones alike, which is what lets the course test the
real-video path on world clips whose head positions are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

from vasa_lib import paths

MODEL = paths.BUNDLED_MODELS / "face_detection_short_range.tflite"
INPUT = 128                      # the network's input side, pixels
KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")   # the subject's right and left
MIN_SCORE = 0.5
NMS_IOU = 0.3


@dataclass
class Face:
    """One detected face, in the pixels of the image it was found in.

    box (4,): x0, y0, x1, y1; keypoints (6, 2): x, y of `KEYPOINTS`; score in (0, 1)."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float

    @property
    def size(self) -> float:
        """The box's side (the mean of width and height), pixels."""
        return float((self.box[2] - self.box[0] + self.box[3] - self.box[1]) / 2)

    @property
    def centre(self) -> np.ndarray:
        """(2,): x, y of the box's centre, pixels."""
        return (self.box[:2] + self.box[2:]) / 2


@cache
def anchors() -> np.ndarray:
    """The SSD anchor centres of BlazeFace short range, (896, 2) in [0, 1]: 2 anchors on each
    cell of a 16 x 16 grid (stride 8), then 6 on each cell of an 8 x 8 grid (stride 16; three
    layers of that stride, merged). Boxes are decoded relative to them, anchor size 1."""
    out = []
    for grid, per_cell in ((16, 2), (8, 6)):
        centres = (np.arange(grid) + 0.5) / grid
        x, y = np.meshgrid(centres, centres)
        out.append(np.repeat(np.stack([x.ravel(), y.ravel()], 1), per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


@cache
def _interpreter():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise ImportError("face detection needs LiteRT (pip install ai-edge-litert), which has wheels for Linux "
                          "and macOS only: on Windows, use WSL or Colab") from error
    interpreter = Interpreter(model_path=str(MODEL), num_threads=1)
    interpreter.allocate_tensors()
    outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    return interpreter, interpreter.get_input_details()[0]["index"], outputs["regressors"], outputs["classificators"]


def _letterbox(image: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Pad (H, W, 3) uint8 to a square, resize to INPUT: the network input (1, 128, 128, 3) in
    [-1, 1], the image pixels per input unit, and the padding offset (2,) in image pixels."""
    h, w = image.shape[:2]
    side = max(h, w)
    offset = np.array([(side - w) / 2, (side - h) / 2])
    square = np.zeros((side, side, 3), np.uint8)
    square[int(offset[1]):int(offset[1]) + h, int(offset[0]):int(offset[0]) + w] = image
    small = np.asarray(Image.fromarray(square).resize((INPUT, INPUT), Image.BILINEAR), np.float32)
    return (small / 127.5 - 1)[None], float(side), np.floor(offset)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo, hi = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = lambda b: np.prod(b[..., 2:] - b[..., :2], axis=-1)
    return inter / (area(box) + area(boxes) - inter + 1e-9)


def _weighted_nms(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray) -> list[Face]:
    """MediaPipe's weighted NMS: each cluster of boxes overlapping the best remaining one by more
    than NMS_IOU becomes one face, its box and keypoints the score-weighted mean of the cluster."""
    faces, order = [], np.argsort(-scores)
    while len(order):
        cluster = order[_iou(boxes[order[0]], boxes[order]) > NMS_IOU]
        weight = scores[cluster] / scores[cluster].sum()
        faces.append(Face(np.einsum("n,nk->k", weight, boxes[cluster]),
                          np.einsum("n,nkd->kd", weight, points[cluster]), float(scores[order[0]])))
        order = np.setdiff1d(order, cluster, assume_unique=True)
        order = order[np.argsort(-scores[order])]
    return faces


def detect_faces(image: np.ndarray, min_score: float = MIN_SCORE) -> list[Face]:
    """Faces in one RGB image (H, W, 3) uint8, best first, in the image's pixel coordinates."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"detect_faces needs an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    interpreter, input_index, regressors, classificators = _interpreter()
    tensor, side, offset = _letterbox(image)
    interpreter.set_tensor(input_index, tensor)
    interpreter.invoke()
    raw = interpreter.get_tensor(regressors)[0] / INPUT                               # (896, 16)
    logits = interpreter.get_tensor(classificators)[0, :, 0].astype(np.float64)
    scores = 1 / (1 + np.exp(-np.clip(logits, -100, 100)))
    keep = scores >= min_score
    if not keep.any():
        return []
    centre = anchors()[keep]
    raw, scores = raw[keep], scores[keep]
    xy, half = centre + raw[:, :2], raw[:, 2:4] / 2
    boxes = np.concatenate([xy - half, xy + half], 1) * side - np.tile(offset, 2)
    points = (centre[:, None] + raw[:, 4:].reshape(-1, 6, 2)) * side - offset
    return _weighted_nms(boxes, points, scores)
