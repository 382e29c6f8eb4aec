"""Tests of the synthetic world's renderer: shapes, determinism, pose and expression control
(measured on the part labels), anti-aliasing and input validation."""

import pytest
import torch

from vasa_lib.world.identity import IDENTITY_SLICES, identity_from_id
from vasa_lib.world.params import NEUTRAL_DYNAMICS, NEUTRAL_POSE, dyn_index, pose_index
from vasa_lib.world.renderer import PARTS, render

SIZE = 96


def frames(n: int = 1, **values: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Neutral pose and dynamics (n, 6), (n, 11) with some named values set."""
    pose, dynamics = NEUTRAL_POSE.repeat(n, 1), NEUTRAL_DYNAMICS.repeat(n, 1)
    for name, value in values.items():
        if name in ("yaw", "pitch", "roll", "tx", "ty", "distance"):
            pose[:, pose_index(name)] = value
        else:
            dynamics[:, dyn_index(name)] = value
    return pose, dynamics


def person(i: int = 3, **fields: float) -> torch.Tensor:
    """Identity i with some fields overridden (glasses off unless asked)."""
    identity = identity_from_id(i)
    identity[IDENTITY_SLICES["glasses"]] = 0.0
    for name, value in fields.items():
        identity[IDENTITY_SLICES[name]] = value
    return identity


def labels_of(*settings: dict[str, float], size: int = SIZE) -> torch.Tensor:
    """Part labels (n, size, size) of person() in n frames, each neutral but for its settings."""
    poses, dynamics = zip(*(frames(**values) for values in settings))
    return render(person(), torch.cat(poses), torch.cat(dynamics), size=size, parts=True)[1]


def centroid(mask: torch.Tensor) -> torch.Tensor:
    """(row, column) centre of a boolean mask (H, W)."""
    assert mask.any()
    return mask.nonzero().float().mean(0)


@pytest.mark.parametrize("size", [64, 128, 200])
def test_shape_range_dtype(size):
    pose, dynamics = frames(3, yaw=0.3, jaw_open=0.5)
    images, labels = render(identity_from_id([0, 1, 2]), pose, dynamics, size=size, parts=True)
    assert images.shape == (3, 3, size, size) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert labels.shape == (3, size, size) and labels.dtype == torch.int64
    assert labels.min() >= 0 and labels.max() < len(PARTS)


def test_deterministic_and_batch_independent():
    g = torch.Generator().manual_seed(0)
    pose = torch.tensor([[0.4, -0.2, 0.1, 0.1, -0.1, 1.2], [-0.3, 0.1, -0.2, 0.0, 0.05, 0.9]])
    dynamics = torch.rand(2, 11, generator=g) * 0.4                     # inside every range
    identity = identity_from_id([5, 6])
    a, b = render(identity, pose, dynamics, 64), render(identity, pose, dynamics, 64)
    assert torch.equal(a, b)
    single = render(identity[1], pose[1:], dynamics[1:], 64)             # same frame alone
    assert (single[0] - a[1]).abs().max() < 1e-4


def test_single_identity_broadcasts():
    pose, dynamics = frames(4)
    a = render(identity_from_id(2), pose, dynamics, 32)
    b = render(identity_from_id([2, 2, 2, 2]), pose, dynamics, 32)
    assert torch.equal(a, b)


def test_yaw_and_pitch_move_the_nose():
    nose = labels_of(dict(yaw=-0.5), dict(yaw=0.5), dict(pitch=-0.5), dict(pitch=0.5)) == PARTS.index("nose")
    left, right, down, up = (centroid(mask) for mask in nose)
    assert right[1] - left[1] > 0.05 * SIZE                             # moves to the image's right
    assert down[0] - up[0] > 0.05 * SIZE                                # rows grow downwards


def test_roll_turns_the_eyes_counter_clockwise():
    eyes = labels_of(dict(roll=0.4))[0] == PARTS.index("eye_white")
    half = SIZE // 2
    left, right = centroid(eyes[:, :half]), centroid(eyes[:, half:])
    assert right[0] < left[0] - 2                                      # the right eye is higher


def test_mouth_opens_with_the_jaw_and_closes_with_the_lips():
    labels = labels_of({}, dict(jaw_open=1.0), dict(jaw_open=1.0, lip_close=1.0), dict(jaw_open=0.6),
                       dict(jaw_open=0.6, tongue=1.0), size=128)
    cavity = (labels == PARTS.index("mouth_cavity")).sum((1, 2))
    assert cavity[0] == 0 and cavity[1] > 30 and cavity[2] == 0
    assert (labels[3] == PARTS.index("teeth")).sum() > 0
    assert (labels[4] == PARTS.index("tongue")).sum() > (labels[3] == PARTS.index("tongue")).sum()


def test_lip_spread_and_round_change_the_mouth_width():
    lips = labels_of({}, dict(lip_spread=1.0), dict(lip_round=1.0), size=128) == PARTS.index("lips")
    columns = lips.any(1)
    width = [c.nonzero().max() - c.nonzero().min() for c in columns]
    assert width[1] > width[0] > width[2]


def test_eyelid_hides_the_iris():
    labels = labels_of(*(dict(eyelid=e) for e in (-0.4, 0.0, 0.6, 1.0)), size=128)
    iris = (labels == PARTS.index("iris")).sum((1, 2))
    assert iris[0] >= iris[1] > iris[2] > 0 and iris[1] > 10
    assert iris[3] == 0 and (labels[3] == PARTS.index("eye_white")).sum() == 0


def test_gaze_moves_the_iris():
    iris = labels_of(*(dict(gaze_yaw=g) for g in (-0.5, 0.5)), *(dict(gaze_pitch=g) for g in (-0.4, 0.4)),
                     size=128) == PARTS.index("iris")
    left, right, low, high = (centroid(mask) for mask in iris)
    assert right[1] - left[1] > 3
    assert low[0] - high[0] > 1


def test_brows_move():
    brows = labels_of(dict(brow_raise=-1.0), dict(brow_raise=1.0), {}, dict(brow_frown=1.0),
                      size=128) == PARTS.index("brow")
    low, high = (centroid(mask) for mask in brows[:2])
    assert low[0] - high[0] > 2
    inner = slice(56, 72)                                               # near the face's middle
    rest, frown = (centroid(mask[:, inner]) for mask in brows[2:])
    assert frown[0] - rest[0] > 0.5                                     # inner ends pulled down


def test_identities_differ():
    pose, dynamics = frames(6)
    images = render(identity_from_id(list(range(6))), pose, dynamics, 64)
    for i in range(6):
        for j in range(i):
            assert (images[i] - images[j]).abs().mean() > 0.05


def test_optional_layers():
    pose, dynamics = frames()
    hair = PARTS.index("hair")
    assert (render(person(hair_style=0.0), pose, dynamics, 64, parts=True)[1] == hair).sum() == 0
    for style in (1.0, 2.0, 3.0, 4.0):
        assert (render(person(hair_style=style), pose, dynamics, 64, parts=True)[1] == hair).sum() > 50
    glasses = render(person(glasses=1.0), pose, dynamics, 128, parts=True)[1]
    assert (glasses == PARTS.index("glasses")).sum() > 20


def test_silhouette_is_anti_aliased():
    """On a black background, the pixels just outside the top of a bald head are not black:
    they are partly covered (a hard edge would leave them exactly black)."""
    identity = person(hair_style=0.0, background_top=0.0, background_bottom=0.0)
    image, labels = render(identity, *frames(), size=SIZE, parts=True)
    top = slice(0, SIZE // 3)                                           # only head and background
    background = labels[0, top] == PARTS.index("background")
    near_head = torch.nn.functional.max_pool2d((~background).float()[None], 3, 1, 1)[0].bool()
    edge = image[0, :, top].sum(0)[background & near_head]
    assert len(edge) > 10
    assert (edge > 0.02).float().mean() > 0.25


@pytest.mark.parametrize("bad, match", [
    (dict(pose=torch.tensor([[float("nan"), 0, 0, 0, 0, 1.0]])), "yaw"),
    (dict(dynamics=torch.tensor([[2.0] + [0.0] * 10])), "jaw_open"),
    (dict(pose=torch.zeros(1, 5)), "pose"),
    (dict(pose=NEUTRAL_POSE), "pose"),
    (dict(dynamics=torch.zeros(2, 11)), "batch"),
    (dict(identity=torch.zeros(1, 7)), "identity"),
    (dict(identity=identity_from_id([1, 2, 3])), "identity"),
    (dict(identity=torch.full((1, identity_from_id(0).numel()), float("inf"))), "identity"),
    (dict(size=0), "size"),
    (dict(size=8), "size"),
    (dict(size=64.0), "size"),
])
def test_bad_inputs_raise(bad, match):
    args = dict(identity=identity_from_id(0), pose=NEUTRAL_POSE[None], dynamics=NEUTRAL_DYNAMICS[None], size=32)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        render(**args)
