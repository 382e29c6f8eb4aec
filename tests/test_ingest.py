"""The real-video path on videos we can make: detection, framing, ingestion with its reasons,
resuming, the landmark labels, and a tiny end-to-end run (ingest -> face -> latents -> motion ->
generate)."""

import json
import os
import shutil
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from vasa_lib import train
from vasa_lib.eval.probes import r2_per_column
from vasa_lib.real import ingest as ingest_module
from vasa_lib.real import labels
from vasa_lib.real.dataset import load_dataset
from vasa_lib.real.detect import anchors, detect_faces
from vasa_lib.real.ingest import (
    FACE_OFFSET,
    FACE_SHARE,
    IngestConfig,
    ingest,
    read_audio,
    resampled_frames,
    world_framing,
)
from vasa_lib.real.samples import flash_and_beep, make_sample_folder, photo, world_video
from vasa_lib.video import write_video
from vasa_lib.world.clips import HOP, load_clip, make_clip, render_clip
from vasa_lib.world.params import FPS, SAMPLE_RATE


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("videos")
    return folder, make_sample_folder(folder, [load_clip(i, "test") for i in range(2)])


@pytest.fixture(scope="module")
def dataset(samples, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("dataset")
    return out, ingest(samples[0], out, progress=False)


@pytest.fixture
def one_video(samples, tmp_path) -> Path:
    """A folder holding a copy of one world video of the samples (it makes one clip)."""
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(next(samples[0].glob("person*/*.mp4")), folder / "talk.mp4")
    return folder


def test_anchors_cover_the_image_in_two_grids():
    a = anchors()
    assert a.shape == (896, 2) and a.min() > 0 and a.max() < 1
    assert np.allclose(a[0], [1 / 32, 1 / 32]) and np.allclose(a[512], [1 / 16, 1 / 16])


def test_detector_finds_one_real_face_two_faces_and_none():
    image = photo()
    faces = detect_faces(image)
    assert len(faces) == 1 and faces[0].score > 0.8
    right_eye, left_eye, nose, mouth = faces[0].keypoints[:4]
    assert right_eye[0] < nose[0] < left_eye[0] and nose[1] < mouth[1]      # the subject's right is on the left
    x0, y0, x1, y1 = faces[0].box
    assert x0 < nose[0] < x1 and y0 < nose[1] < y1
    assert len(detect_faces(np.concatenate([image, image], 1))) == 2
    assert detect_faces(np.full((120, 160, 3), 128, np.uint8)) == []
    with pytest.raises(ValueError, match="uint8"):
        detect_faces(image.astype(np.float32))


def test_framing_constants_match_the_world():
    share, offset = world_framing(n_people=16)
    assert abs(share - FACE_SHARE) < 0.02 and np.abs(np.subtract(offset, FACE_OFFSET)).max() < 0.02


def test_every_case_is_kept_or_rejected_with_its_reason(samples, dataset):
    _, expected = samples
    _, summary = dataset
    outcome = {r["video"]: [x["reason"] for x in r["rejected"]] for r in summary["records"]}
    assert set(outcome) == set(expected)
    for video, reason in expected.items():
        assert outcome[video] == ([] if reason is None else [reason]), video
    two_shots = next(r for r in summary["records"] if r["video"] == "two_shots.mp4")
    first = load_clip(0, "test").n_frames
    assert [(c["start"], c["stop"]) for c in two_shots["kept"]] == [(0, first), (first, two_shots["frames"])]
    assert summary["clips_kept"] == 4 and summary["videos"] == len(expected)


def test_kept_clips_are_complete_training_material(dataset):
    out, summary = dataset
    clips = load_dataset(out)
    assert len(clips) == summary["clips_kept"] and not list((out / "clips").glob(".*"))   # no temporary files
    for clip in clips:
        assert clip.frames.shape[1:] == (128, 128, 3) and clip.frames.dtype == np.uint8
        assert len(clip.audio) == 640 * len(clip.frames) and np.abs(clip.audio).max() > 0.01
        assert clip.pose.shape == (len(clip.frames), 6) and np.isfinite(clip.pose).all()
        assert clip.landmarks.shape == (len(clip.frames), 478, 3) and np.isfinite(clip.video_params).all()
    assert {c.person for c in clips} == {"person10107", "person10113", "two_shots"}


def test_crop_lands_on_the_world_head(tmp_path):
    clip = make_clip(3, "test", distance=1.0)
    world_video(clip, tmp_path / "videos" / "placed.mp4", size=256, canvas=384, offset=(40, 70))
    ingest(tmp_path / "videos", tmp_path / "out", progress=False)
    crop = np.load(next((tmp_path / "out" / "clips").glob("*.npz")))["crop"]
    # at distance 1 the world frames the head as its own 256-pixel render, placed at (40, 70); the
    # side varies more (faces differ in size from person to person, and a turned face's box shrinks)
    assert np.abs(crop[:, :2].mean(0) - [40 + 128, 70 + 128]).max() < 4
    assert abs(crop[:, 2].mean() - 256) < 256 * 0.12


def test_an_interrupted_run_resumes_without_redoing_finished_videos(samples, tmp_path, monkeypatch):
    folder, expected = samples
    real, done = ingest_module.ingest_video, []

    def interrupted(path, *args):
        if len(done) == 3:
            raise KeyboardInterrupt
        done.append(path)
        return real(path, *args)

    monkeypatch.setattr(ingest_module, "ingest_video", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest(folder, tmp_path, progress=False)
    assert len(list((tmp_path / "videos").glob("*.json"))) == 3 and not (tmp_path / "summary.json").exists()
    with pytest.raises(ValueError, match="ingestion has not finished"):
        load_dataset(tmp_path)
    monkeypatch.setattr(ingest_module, "ingest_video", real)
    summary = ingest(folder, tmp_path, progress=False)
    assert summary["resumed"] == 3 and summary["videos"] == len(expected) and summary["clips_kept"] == 4
    assert json.loads((tmp_path / "summary.json").read_text())["clips_kept"] == 4
    assert len(load_dataset(tmp_path)) == 4
    again = ingest(folder, tmp_path, ingest_module.IngestConfig(min_seconds=2.5), progress=False)
    assert again["resumed"] == 0 and len(load_dataset(tmp_path)) == again["clips_kept"] < 4  # other settings: redone


def test_command_line_prints_the_summary_and_refuses_a_missing_folder(samples, tmp_path, capsys):
    ingest_module.main([str(samples[0]), "--out", str(tmp_path), "--min-seconds", "3"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["config"]["min_seconds"] == 3.0 and summary["rejected"]["too short"] >= 2
    assert summary["outcome"]["short.mp4"] == ["too short"] and summary["outcome"]["truncated.mp4"] == ["unreadable"]
    with pytest.raises(SystemExit, match="no folder of videos"):
        ingest_module.main([str(tmp_path / "nowhere"), "--out", str(tmp_path)])


def test_frames_without_a_face_get_keypoints_from_their_neighbours(tmp_path):
    # a kept clip may have a tenth of its frames without a face (face_share): their keypoints, and
    # so the pose label of the face model and the motion generator's distance control, must be numbers
    clip = load_clip(0, "test")
    frames = render_clip(clip, size=256)
    frames[20:23] = 0.5                                              # three frames without a face
    write_video(tmp_path / "videos" / "gaps.mp4", frames, clip.audio[: len(frames) * HOP])
    summary = ingest(tmp_path / "videos", tmp_path / "out", IngestConfig(cut=1.0, min_sync=0), progress=False)
    assert summary["clips_kept"] == 1
    (kept,) = load_dataset(tmp_path / "out")
    assert np.isfinite(kept.keypoints).all() and np.isfinite(kept.landmarks).all() and np.isfinite(kept.pose).all()


@pytest.mark.parametrize("name, video_start, audio_start", [("late.mkv", 0.52, 0.52), ("audio_late.mp4", 0.0, 0.3),
                                                             ("video_late.mp4", 0.32, 0.0), ("broadcast.ts", 1.4, 1.4)])
def test_sound_and_picture_stay_in_step_in_files_that_do_not_start_at_zero(tmp_path, name, video_start, audio_start):
    path = flash_and_beep(tmp_path / name, video_start, audio_start, at=round(max(video_start, audio_start)) + 1.0)
    flash = np.argmax([image.mean() for image in resampled_frames(path)]) / FPS
    beep = np.argmax(np.abs(read_audio(path)) > 0.1) / SAMPLE_RATE
    assert abs(flash - beep) < 1 / FPS, (flash, beep)


def test_a_second_reading_short_of_frames_writes_no_clip_and_is_tried_again(one_video, tmp_path, monkeypatch):
    real, readings = ingest_module.resampled_frames, []

    def short_second_reading(path):
        readings.append(path)
        return real(path) if len(readings) == 1 else islice(real(path), 30)

    monkeypatch.setattr(ingest_module, "resampled_frames", short_second_reading)
    summary = ingest(one_video, tmp_path / "out", progress=False)
    assert summary["clips_kept"] == 0 and summary["rejected"] == {"read error": 1}
    assert not list((tmp_path / "out").glob("clips/*.npz"))
    monkeypatch.setattr(ingest_module, "resampled_frames", real)
    again = ingest(one_video, tmp_path / "out", progress=False)
    assert again["resumed"] == 0 and again["clips_kept"] == 1


def test_a_passing_read_error_is_tried_again_and_a_copy_is_not_ingested_again(one_video, tmp_path, monkeypatch):
    def failing_disk(path):
        raise OSError(5, "Input/output error", str(path))

    real = ingest_module.scan
    monkeypatch.setattr(ingest_module, "scan", failing_disk)
    first = ingest(one_video, tmp_path / "out", progress=False)
    assert first["rejected"] == {"read error": 1} and not list((tmp_path / "out" / "videos").glob("*.json"))
    monkeypatch.setattr(ingest_module, "scan", real)
    second = ingest(one_video, tmp_path / "out", progress=False)
    assert second["resumed"] == 0 and second["clips_kept"] == 1
    os.utime(one_video / "talk.mp4", (0, 0))                  # a copy that kept the content, not the timestamps
    third = ingest(one_video, tmp_path / "out", progress=False)
    assert third["resumed"] == 1 and third["clips_kept"] == 1
    assert len(list((tmp_path / "out" / "clips").glob("*.npz"))) == 1


def test_command_line_options_follow_the_settings_types(tmp_path, monkeypatch):
    @dataclass
    class WithSwitch(IngestConfig):
        sync: bool = True
        strict: bool = False

    given = []
    monkeypatch.setattr(ingest_module, "IngestConfig", WithSwitch)
    monkeypatch.setattr(ingest_module, "ingest", lambda videos, out, config: given.append(config) or {"records": []})
    ingest_module.main(["videos", "--out", str(tmp_path), "--no-sync", "--strict", "--size", "96"])
    ingest_module.main(["videos", "--out", str(tmp_path)])
    assert given[0].sync is False and given[0].strict is True and given[0].size == 96
    assert given[1].sync is True and given[1].strict is False and given[1].size == 128


def test_landmark_labels_follow_the_head_on_test_people():
    points, truth = train.render_landmarks("test", 120, 256, seed=5)
    r2 = dict(zip(labels.PARAM_NAMES, r2_per_column(torch.from_numpy(labels.estimate(points, (256, 256))).double(),
                                                    torch.from_numpy(truth).double()).tolist()))
    assert min(r2["yaw"], r2["roll"], r2["distance"]) > 0.9, r2
    assert min(r2["pitch"], r2["tx"], r2["gaze_yaw"]) > 0.6, r2


def test_the_video_estimate_finds_where_the_head_is_and_the_crop_hides_it(tmp_path):
    # the same clip at distance 1, whole and shrunk to half the frame's height at its left edge:
    # in the crop both heads look alike; in the video the small one is twice as far and to the left
    clip = make_clip(3, "test", distance=1.0)
    world_video(clip, tmp_path / "videos" / "whole.mp4", size=256, seconds=2)
    world_video(clip, tmp_path / "videos" / "small.mp4", size=128, canvas=256, offset=(0, 64), seconds=2)
    ingest(tmp_path / "videos", tmp_path / "out", progress=False)
    whole, small = sorted(load_dataset(tmp_path / "out"), key=lambda c: c.person, reverse=True)
    distance, x = labels.PARAM_NAMES.index("distance"), labels.PARAM_NAMES.index("tx")
    assert abs(np.median(whole.video_params[:, distance]) - 1.0) < 0.1
    assert abs(np.median(small.video_params[:, distance]) - 2.0) < 0.25
    assert np.median(small.video_params[:, x]) < np.median(whole.video_params[:, x]) - 0.15
    assert abs(np.median(small.params[:, distance]) - np.median(whole.params[:, distance])) < 0.15


def test_a_voice_over_is_refused_and_late_sound_is_put_back_in_step(tmp_path):
    # about 8 s of speech each: real pieces are that long, and sync is judged over their frames
    speaker = make_clip(3, "test", text="The quiet river runs past the old mill, and every morning the baker walks "
                        "along it to open the shop before the town wakes up.")
    other = make_clip(4, "test", text="Numbers on the board changed twice today, so the class counted again, "
                      "slowly and carefully, until everyone agreed on the final total.")
    frames, n = render_clip(speaker, size=256), speaker.n_frames * HOP
    late = round(0.3 * SAMPLE_RATE)
    write_video(tmp_path / "videos" / "speaker.mp4", frames, speaker.audio)
    write_video(tmp_path / "videos" / "late_sound.mp4", frames, np.pad(speaker.audio, (late, 0))[:n])
    write_video(tmp_path / "videos" / "voice_over.mp4", frames, np.resize(other.audio, n))
    summary = ingest(tmp_path / "videos", tmp_path / "out", IngestConfig(cut=1.0), progress=False)
    records = {r["video"]: r for r in summary["records"]}
    assert [r["reason"] for r in records["voice_over.mp4"]["rejected"]] == ["not in sync"]
    (kept,) = records["speaker.mp4"]["kept"]
    (shifted,) = records["late_sound.mp4"]["kept"]
    assert kept["sync_offset"] == 0 and shifted["sync_offset"] in (7, 8)          # 0.3 s = 7.5 frames
    clips = {c.person: c for c in load_dataset(tmp_path / "out")}
    m = (n - late) // HOP
    loudness = lambda audio: np.sqrt(np.mean(audio[: m * HOP].reshape(m, HOP) ** 2, 1))      # per frame
    truth, put_back = loudness(speaker.audio), loudness(clips["late_sound"].audio)
    as_filmed = loudness(np.pad(speaker.audio, (late, 0)))
    assert np.corrcoef(truth, put_back)[0, 1] > 0.7 > 0.2 > np.corrcoef(truth, as_filmed)[0, 1]   # within 20 ms


def test_clips_of_an_older_ingestion_are_refused_with_the_way_out(dataset, tmp_path):
    out, _ = dataset
    shutil.copytree(out, tmp_path / "old")
    for file in (tmp_path / "old" / "clips").glob("*.npz"):
        arrays = dict(np.load(file))
        del arrays["landmarks"]
        np.savez(file, **arrays)
    with pytest.raises(ValueError, match="older ingestion.*ingest"):
        load_dataset(tmp_path / "old")


def test_tiny_end_to_end_run_on_ingested_video(dataset, tmp_path):
    from vasa_lib.pipeline import Settings, Talker

    out, _ = dataset
    identity = tmp_path / "identity.toml"
    identity.write_text(Path(train.paths.course_path("configs/face_identity_net.toml")).read_text()
                        .replace("steps = 1200", "steps = 3"))
    train.main(["identity", "--config", str(identity), "--data", str(out),
                "--checkpoint", str(tmp_path / "models" / "identity_net.safetensors")])
    face = tmp_path / "face.toml"
    face.write_text(Path(train.paths.course_path("configs/face_video.toml")).read_text().replace(
        "assets/checkpoints/identity_net.safetensors", str(tmp_path / "models" / "identity_net.safetensors")))
    train.main(["face", "--config", str(face), "--data", str(out), "--max-steps", "3",
                "--checkpoint", str(tmp_path / "models" / "face.safetensors")])
    train.main(["motion", "--config", "configs/motion_fast.toml", "--data", str(out), "--max-steps", "3",
                "--face-checkpoint", str(tmp_path / "models" / "face.safetensors"),
                "--checkpoint", str(tmp_path / "models" / "motion.safetensors")])
    talker = Talker.from_checkpoints(tmp_path / "models")
    clip = load_dataset(out)[0]
    video = talker.generate(talker.portrait(clip.frames[0], strict=False), clip.audio[:16000], Settings(steps=2))
    assert video.frames.shape == (25, 3, 128, 128) and torch.isfinite(video.frames).all()
