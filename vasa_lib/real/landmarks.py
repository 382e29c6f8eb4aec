"""Face landmarks on real (and world) video: MediaPipe's face mesh and iris networks.

The face mesh (Kartynnik et al., "Real-time Facial Surface Geometry from Monocular Video on Mobile
GPUs", 2019) places 468 points on a face, x and y in pixels and z, depth, in the same scale; the
iris network (Ablavatski et al., "Real-time Pupil Tracking from Monocular Video for Digital
Puppetry", 2020) places each iris's centre and four points on its rim in a crop of one eye. Both
ship inside the package (`models/`, Apache-2.0, see `models/README.md`) and run with LiteRT, as
the detector does (`detect.py`). What the networks leave to us, written here, as MediaPipe's
graphs do it:

    box (BlazeFace) -> square region 1.5 x the box -> 192 x 192 in [0, 1] -> mesh (468, 3)
    mesh -> region around the mesh, turned upright by the eyes' angle -> mesh again (twice)
    mesh eye corners -> square 2.3 x the eye's width, 64 x 64 (one eye mirrored)
                     -> eye contour (71, 3), replacing the mesh's points there, and iris (5, 2)

Points are returned in the image's pixels in MediaPipe's 478-point layout: the 468 mesh points,
then the iris of the subject's right eye (468..472, centre first), then of the left (473..477).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image

from vasa_lib import paths

MESH_MODEL = paths.BUNDLED_MODELS / "face_landmark.tflite"
IRIS_MODEL = paths.BUNDLED_MODELS / "iris_landmark.tflite"
MESH_INPUT, IRIS_INPUT = 192, 64          # the networks' input sides, pixels
MESH_POINTS, POINTS = 468, 478            # mesh points; with both irises
FACE_SCALE, EYE_SCALE = 1.5, 2.3          # region side over the face box's side, over the eye's width
REFINE = 2                                # passes of the mesh on a region placed by the mesh before
# Mesh indices of the outer and inner corner of the subject's right eye and of the left eye.
EYE_CORNERS = ((33, 133), (362, 263))
# The mesh points that the iris network's 71 eye-contour points (lids, brows and the rings between)
# replace, for the right eye and the left (MediaPipe's update_face_landmarks_calculator.cc).
EYE_CONTOURS = np.array([
    [33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173, 130, 25, 110, 24, 23, 22, 26, 112,
     243, 247, 30, 29, 27, 28, 56, 190, 226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221,
     189, 35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245, 156, 70, 63, 105, 66, 107, 55, 193],
    [263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398, 359, 255, 339, 254, 253, 252,
     256, 341, 463, 467, 260, 259, 257, 258, 286, 414, 446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444,
     443, 442, 441, 413, 265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465, 383, 300, 293,
     334, 296, 336, 285, 417]])


@cache
def _interpreter(model: str):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise ImportError("face landmarks need LiteRT (pip install ai-edge-litert), which has wheels for Linux "
                          "and macOS only: on Windows, use WSL or Colab") from error
    interpreter = Interpreter(model_path=model, num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def _run(model: str, tensor: np.ndarray) -> list[np.ndarray]:
    interpreter = _interpreter(model)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


def region(image: np.ndarray, centre: np.ndarray, side: float, angle: float, n: int,
           mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The square of `side` pixels around `centre` (2,) of an (H, W, 3) uint8 image, turned by
    `angle` radians and mirrored left-right if asked, as (1, n, n, 3) float in [0, 1]; and the
    affine map (2, 3) from its pixels (u, v, 1) back to the image's."""
    c, s, k = np.cos(angle), np.sin(angle), side / n
    linear = np.array([[c, -s], [s, c]]) * k
    if mirror:
        linear[:, 0] *= -1
    to_image = np.concatenate([linear, (centre - linear @ np.full(2, n / 2))[:, None]], 1)
    square = Image.fromarray(image).transform((n, n), Image.AFFINE, to_image.ravel().tolist(), Image.BILINEAR)
    return np.asarray(square, np.float32)[None] / 255, to_image


def _mesh(image: np.ndarray, centre: np.ndarray, side: float, angle: float) -> tuple[np.ndarray, float]:
    tensor, to_image = region(image, centre, side, angle, MESH_INPUT)
    points, logit = _run(str(MESH_MODEL), tensor)
    points = points.reshape(MESH_POINTS, 3)
    xy = points[:, :2] @ to_image[:, :2].T + to_image[:, 2]
    z = points[:, 2:] * side / MESH_INPUT
    return np.concatenate([xy, z], 1), float(1 / (1 + np.exp(-np.clip(logit.ravel()[0], -100, 100))))


def _eyes(image: np.ndarray, mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each eye's contour (2, 71, 3), for the mesh points `EYE_CONTOURS`, and iris centre and rim
    (2, 5, 2), the subject's right eye first (on the image's left). The network was trained on
    the other eye, so the left one is mirrored, as in MediaPipe."""
    contours, irises = [], []
    for (a, b), mirror in zip(EYE_CORNERS, (False, True)):
        ends = mesh[[a, b], :2]
        side = EYE_SCALE * np.linalg.norm(ends[1] - ends[0])
        tensor, to_image = region(image, ends.mean(0), side, 0.0, IRIS_INPUT, mirror)
        contour, iris = (x.reshape(-1, 3) for x in _run(str(IRIS_MODEL), tensor))
        contours.append(np.concatenate([contour[:, :2] @ to_image[:, :2].T + to_image[:, 2],
                                        contour[:, 2:] * side / IRIS_INPUT], 1))
        irises.append(iris[:, :2] @ to_image[:, :2].T + to_image[:, 2])
    return np.stack(contours), np.stack(irises)


def face_landmarks(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float]:
    """Landmarks (478, 3) of the face in `box` (4,) x0, y0, x1, y1 of an RGB (H, W, 3) uint8
    image, in its pixels (the irises' z is 0), and the mesh network's face score in (0, 1)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"face_landmarks needs an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    box = np.asarray(box, np.float64)
    mesh, score = _mesh(image, (box[:2] + box[2:]) / 2, FACE_SCALE * np.mean(box[2:] - box[:2]), 0.0)
    for _ in range(REFINE):
        low, high = mesh[:, :2].min(0), mesh[:, :2].max(0)
        eyes = mesh[EYE_CORNERS[1][1], :2] - mesh[EYE_CORNERS[0][0], :2]
        mesh, score = _mesh(image, (low + high) / 2, FACE_SCALE * (high - low).max(), np.arctan2(eyes[1], eyes[0]))
    contours, irises = _eyes(image, mesh)
    mesh[EYE_CONTOURS] = contours
    irises = np.concatenate([irises.reshape(10, 2), np.zeros((10, 1))], 1)
    return np.concatenate([mesh, irises]).astype(np.float32), score
