"""Face landmarks (MediaPipe's mesh and iris networks) and the rigid fit that reads the head's pose
from them: on a real photo, on the world with its truth, and mirrored."""

import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from vasa_lib.real import labels
from vasa_lib.real.detect import detect_faces
from vasa_lib.real.landmarks import EYE_CORNERS, MESH_POINTS, POINTS, face_landmarks
from vasa_lib.real.samples import photo
from vasa_lib.video import to_uint8_frames
from vasa_lib.world.identity import identity_from_id
from vasa_lib.world.params import DYNAMICS_NAMES, NEUTRAL_DYNAMICS, NEUTRAL_POSE, pose_index
from vasa_lib.world.renderer import render


def test_rigid_fit_recovers_a_known_rotation_scale_and_place():
    rotation = Rotation.from_euler("yxz", [0.3, -0.2, 0.1]).as_matrix()
    mesh = 2.5 * labels.canonical_face() @ rotation.T + [10.0, -4.0, 1.0]
    found, scale, place = labels.rigid_fit(mesh)
    assert np.allclose(found, rotation) and np.isclose(scale, 2.5) and np.allclose(place, [10.0, -4.0, 1.0])


def test_landmarks_on_a_real_face_lie_on_it():
    image = photo()
    face = detect_faces(image)[0]
    points, score = face_landmarks(image, face.box)
    assert points.shape == (POINTS, 3) and score > 0.9
    x0, y0, x1, y1 = face.box
    inside = (points[:, 0] > x0 - 10) & (points[:, 0] < x1 + 10) & (points[:, 1] > y0 - 20) & (points[:, 1] < y1 + 10)
    assert inside.mean() > 0.95
    for eye, (outer, inner) in enumerate(EYE_CORNERS):           # each iris between its eye's corners
        centre = points[MESH_POINTS + 5 * eye, :2]
        low, high = np.sort(points[[outer, inner], 0])
        assert low < centre[0] < high
    with pytest.raises(ValueError, match="uint8"):
        face_landmarks(image[..., 0], face.box)


def test_a_mirrored_face_reads_as_turned_and_looking_the_other_way():
    pose = NEUTRAL_POSE.repeat(2, 1)
    pose[:, pose_index("yaw")] = torch.tensor([0.3, -0.3])
    dynamics = NEUTRAL_DYNAMICS.repeat(2, 1)
    dynamics[:, DYNAMICS_NAMES.index("gaze_yaw")] = 0.4
    images = to_uint8_frames(render(identity_from_id([10107, 10107]), pose, dynamics, size=256))
    images = [images[0], images[0][:, ::-1].copy()]
    points = np.stack([face_landmarks(image, detect_faces(image)[0].box)[0] for image in images])
    estimate = labels.estimate(points, (256, 256))
    yaw, gaze = estimate[:, pose_index("yaw")], estimate[:, labels.PARAM_NAMES.index("gaze_yaw")]
    assert yaw[0] > 0.15 and abs(yaw[0] + yaw[1]) < 0.05, yaw
    assert gaze[0] > 0.15 and abs(gaze[0] + gaze[1]) < 0.1, gaze


def test_the_label_grade_on_ingested_world_video(capsys):
    from vasa_lib.real.grade import main

    main(["--clips", "2", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["clips_kept"] == 2 and result["frames"] > 100
    assert result["video"]["yaw"] > 0.8 and result["video"]["roll"] > 0.8
    assert abs(result["crop"]["yaw"] - result["video"]["yaw"]) < 0.01   # rotations read alike in crop and video
    assert result["crop"]["distance"] < result["video"]["distance"]    # the crop hides the distance
