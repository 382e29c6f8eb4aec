"""The exercises' solutions (solutions/NN_*.py): each runs as a script and checks its answers with asserts, and
each notebook's solution has a check (`check_exercise_N`) that rejects a plausible wrong answer."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py"))


def test_there_are_solutions():
    assert SOLUTIONS, "no solutions/NN_*.py found"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_runs_and_its_asserts_pass(path):
    result = subprocess.run([sys.executable, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{path.name} failed (exit {result.returncode}):\n{result.stderr[-6000:]}"


# One case per notebook: (solution module) -> (its check, a correct answer, a plausible wrong one, a piece of the
# assert that must reject the wrong one). Each case's comment says what the mistake is.
CASES = {}


def case(stem):
    def register(build):
        CASES[stem] = build
        return build
    return register


@case("00_the_world")
def yaw_sign(m):
    # A sign error in yaw: the head turned to -0.9, away from the image's right, so the features the answer names
    # as hidden (the image's left half) are the ones still in view.
    return m.check_exercise_3, (m.part_pixels(0.9),), (m.part_pixels(-0.9),), "count[name][1][0] == 0"


@case("01_latent_face_model")
def warps_swapped(m):
    pose, n = m.posed(distance=2.0)[None], 9
    A, b = m.pose_transform(pose)
    where = m.base_grid(1, (n, n, n), torch.zeros(1)).permute(0, 4, 1, 2, 3)
    ones, no_flow = torch.ones(1, 1, n, n, n), torch.zeros(1, 3, n, n, n)
    right = (A[0] @ torch.zeros(3) + b[0], A[0] @ torch.ones(3) + b[0], m.warp_to_canonical(where, pose, no_flow),
             m.warp_from_canonical(ones, pose))
    # The two warps' directions swapped: canonical -> source read with the inverse map u = 2 q of canonical ->
    # driving (a far head "needs magnifying"), so the corner (1, 1, 1) reads the source at 2, not half-way in.
    wrong = (torch.linalg.solve(A[0], -b[0]), torch.linalg.solve(A[0], torch.ones(3) - b[0]),
             m.warp_from_canonical(where, pose), m.warp_to_canonical(ones, pose, no_flow))
    return m.check_exercise_1, right, wrong, "assert_close(corner"


@case("02_disentanglement")
def truth_is_frame_j(m):
    batch = next(m.batches(4))
    identity, pose, dynamics = batch["identity"], batch["pose"], batch["dynamics"]
    right = m.render(identity, pose[:, 0], dynamics[:, 1])
    # Frame j's pose in place of frame i's (an index slip in D(V_j, z_id_j, z_pose_i, z_dyn_j)): the "truth" is
    # then frame j itself, a frame that was filmed, which the exercise's answer says it never is.
    wrong = m.render(identity, pose[:, 1], dynamics[:, 1])
    return m.check_exercise_2, (batch["frames"], right), (batch["frames"], wrong), "min(differs) > 0.1"


@case("03_audio_features")
def field_off_by_one(m):
    reach = torch.arange(18, 43)      # what the exercise measures: output frame 30 sees input frames 18 .. 42
    # An off-by-one in the receptive field: 4 layers x 7 frames = 28, as if neighbouring layers' windows did not
    # share a frame (it is 4 (7 - 1) + 1 = 25).
    return m.check_exercise_3, (4 * (7 - 1) + 1, reach), (4 * 7, reach), "len(reach) == predicted"


@case("04_diffusion_transformer")
def amplitude_for_power(m):
    def first(below):
        return int(torch.nonzero(below)[0])

    schedules = {kind: m.NoiseSchedule(m.T, kind) for kind in ("cosine", "linear")}
    right = {kind: first(m.snr(s) < 1) for kind, s in schedules.items()}
    # SNR = 1 read off the plotted sqrt(alpha_bar) at 1/2, the amplitude instead of alpha_bar itself: that is
    # SNR = 1/3, at steps 664 and 368 instead of 496 and 259.
    wrong = {kind: first(s.alphas_cumprod.sqrt() < 0.5) for kind, s in schedules.items()}
    return m.check_exercise_1, (right,), (wrong,), "490 <= crossing"


@case("05_classifier_free_guidance")
def negative_scale_mirrored(m):
    x_t, t, cond = m.first_window()
    with torch.no_grad():
        guided = m.guided_x0(m.model, x_t, t, cond, {"gaze": -1.0})
        plain, dropped = m.model(x_t, t, cond), m.model(x_t, t, cond, {"gaze": torch.ones(1, dtype=torch.bool)})
    motions, gazes = m.gaze_runs()
    # lambda = -1 read as the mirror of +1, pushing away from the gaze asked (w = -1 in the other convention,
    # H_u + w (H_c - H_u)): 2 H(C | gaze dropped) - H(C), where (1 + lambda) H(C) - lambda H(C | gaze dropped)
    # leaves H(C | gaze dropped) itself.
    mirrored = 2 * dropped - plain
    return (m.check_exercise_4, (guided, dropped, motions, gazes), (guided, mirrored, motions, gazes),
            "assert_close(guided, dropped)")


@case("06_real_time_sampling")
def padded_on_the_right(m):
    encoder = m.talker.motion.audio_encoder
    radius = m.receptive_radius(encoder)
    reach, corr = m.field(encoder), {ahead: m.heard_correlation(ahead) for ahead in (0, 2, radius + 1)}
    # The causal encoder with F.pad's pair read as (right, left): the padding goes after the input, so each
    # output frame sees only the future, the opposite of a causal encoder.
    anticausal = m.MelEncoder(encoder.config)
    for block in anticausal.blocks:
        conv = next(x for x in block.modules() if isinstance(x, torch.nn.Conv1d))
        pad, conv.padding = conv.padding[0], (0,)
        conv.register_forward_pre_hook(lambda _, args, pad=pad: (F.pad(args[0], (0, 2 * pad)),))
    right = (radius, reach, m.field(m.causal_encoder(encoder.config)), corr)
    wrong = (radius, reach, m.field(anticausal), corr)
    return m.check_exercise_2, right, wrong, "int(causal_reach.max()) == 20"


@case("07_evaluation")
def one_clock_for_both(m):
    def turning(fps, clock):
        """delta_p of a head turning at 10 degrees per second, filmed at `fps`, frame k at time k / clock."""
        pose = torch.zeros(2 * fps, 6)
        pose[:, 0] = torch.deg2rad(10.0 * torch.arange(2 * fps) / clock)
        return m.delta_p(pose)

    right = {fps: turning(fps, clock=fps) for fps in (25, 50)}
    # The 50 fps clip's frame times taken from the world's clock, frame k at k / FPS (25 fps): it then turns 0.4
    # degrees per frame too, as if delta_p were a rate per second that does not depend on the frame rate.
    wrong = {fps: turning(fps, clock=m.FPS) for fps in (25, 50)}
    return m.check_exercise_3, (right,), (wrong,), "answers[50]"


@case("08_gradio_demo")
def pitch_for_yaw(m):
    # The PoseTalker with the slider's value written into the motion's second number, taking the pose for (pitch,
    # yaw, roll): the world's is (yaw, pitch, roll), so this fixes the pitch and leaves the yaw as sampled.
    pitch = m.PoseTalker(m.talker.face, m.talker.motion, m.talker.identity_net)
    pitch.yaw_column = 1
    right = m.pose_control(m.PoseTalker(m.talker.face, m.talker.motion, m.talker.identity_net))
    wrong = m.pose_control(pitch)
    return m.check_exercise_3, right, wrong, "torch.all(fixed[:, 0] == -0.15)"


@case("09_your_own_videos")
def seconds_as_frames(m):
    video = m.videos.parent / "photo" / "photo.mp4"       # in the solution's own temporary folder
    m.moving_photo_video(video)
    boxes = m.scan(video).boxes
    right = m.wobble_and_stray({s: m.crop_track(boxes, s * m.FPS) for s in (0.0, 0.5, 2.0)})
    # The smoothing time in seconds passed where crop_track takes frames: a Gaussian of 0.5 and 2 frames, which
    # hardly smooths the detector's shake at all.
    wrong = m.wobble_and_stray({s: m.crop_track(boxes, s) for s in (0.0, 0.5, 2.0)})
    return m.check_exercise_3, right, wrong, "wobble[0.0] > 5 * wobble[0.5]"


def test_every_solution_has_a_wrong_answer_case():
    assert sorted(CASES) == [p.stem for p in SOLUTIONS]


def load_solution(path):
    """The solution module at `path`, imported (its module-level set-up runs; its exercises do not)."""
    spec = importlib.util.spec_from_file_location(f"solution_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_check_rejects_a_plausible_wrong_answer(path):
    check, right, wrong, reason = CASES[path.stem](load_solution(path))
    check(*right)                                         # the correct answer passes the check ...
    with pytest.raises(AssertionError) as failure:
        check(*wrong)                                     # ... the wrong one does not,
    failed = [entry for entry in failure.traceback if Path(entry.path) == path][-1]
    assert reason in str(failed.statement), f"rejected by another assert: {failed.statement}"   # for its reason
