"""vasa_lib.paths finds the course's files from any folder, however the library was installed."""

import os
import subprocess
import venv
from pathlib import Path

import numpy as np
import pytest
import torch

from vasa_lib import paths

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_lookup(monkeypatch):
    monkeypatch.delenv("VASA_HOME", raising=False)
    monkeypatch.delenv("VASA_CHECKPOINT_DIR", raising=False)
    paths.course_root.cache_clear()
    yield
    paths.course_root.cache_clear()


def test_the_checkout_is_found_from_another_folder(fresh_lookup, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.course_root() == ROOT
    assert paths.checkpoint("face").exists() and (paths.portraits_dir() / "test_10100.png").exists()
    assert paths.course_path("configs/face_fast.toml") == ROOT / "configs" / "face_fast.toml"


def test_vasa_home_comes_first(fresh_lookup, tmp_path, monkeypatch):
    (tmp_path / "assets" / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("VASA_HOME", str(tmp_path))
    assert paths.course_root() == tmp_path


def test_nowhere_names_every_folder_it_looked_in(fresh_lookup, tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "PACKAGE_DIR", tmp_path / "site-packages" / "vasa_lib")
    monkeypatch.setattr(paths, "INSTALLED_NAME", Path("share") / "no-such-course")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(paths.CourseFilesNotFound, match="VASA_HOME") as error:
        paths.course_root()
    assert str(tmp_path / "site-packages") in str(error.value) and str(tmp_path) in str(error.value)


def test_pip_install_dot_then_generate_from_another_folder(tmp_path):
    # a plain (not editable) install copies the checkpoints, portraits and configs to <prefix>/share/vasa_lib
    env_dir = tmp_path / "env"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(ROOT)],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    portrait = env_dir / "share" / "vasa_lib" / "assets" / "portraits" / "test_10100.png"
    run = subprocess.run([python, "-m", "vasa_lib.generate", "--image", str(portrait), "--text", "Hello there",
                          "--out", "hello.mp4", "--steps", "2"], cwd=elsewhere, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert (elsewhere / "hello.mp4").stat().st_size > 1000
    where = subprocess.run([python, "-c", "import vasa_lib.paths as p; print(p.course_root(), p.__file__)"],
                           cwd=elsewhere, capture_output=True, text=True)
    course, module = where.stdout.split()
    assert Path(course) == env_dir / "share" / "vasa_lib" and str(env_dir) in module
    # the face detector of the real-video path ships inside the package
    faces = subprocess.run([python, "-c", "from vasa_lib.real.detect import detect_faces, MODEL; "
                            "from vasa_lib.real.samples import photo; print(len(detect_faces(photo())), MODEL)"],
                           cwd=elsewhere, capture_output=True, text=True)
    count, model = faces.stdout.split()
    assert count == "1" and str(env_dir) in model, faces.stderr[-2000:]


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VASA_DATA_DIR", str(tmp_path))
    assert paths.data_dir() == tmp_path and paths.data_dir("elsewhere") == Path("elsewhere")


def test_write_atomic_writes_whole_files_or_none(tmp_path):
    path = tmp_path / "folder" / "x.npz"
    assert paths.write_atomic(path, lambda tmp: np.savez(tmp, x=np.ones(3))) == path
    assert np.load(path)["x"].sum() == 3

    def killed(tmp):
        tmp.write_bytes(b"half a fi")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        paths.write_atomic(path, killed)
    assert np.load(path)["x"].sum() == 3 and os.listdir(path.parent) == ["x.npz"]


def _checkpoint(folder: Path) -> list[Path]:
    from vasa_lib.checkpoint import save_checkpoint
    from vasa_lib.face.identity_net import IdentityNet, IdentityNetConfig

    return [save_checkpoint(IdentityNet(IdentityNetConfig(widths=(4,), embed_dim=4)), folder / "net.safetensors")]


def _video(folder: Path) -> list[Path]:
    from vasa_lib.video import write_video

    return [write_video(folder / "clip.mp4", torch.rand(2, 3, 16, 16), np.zeros(1280, np.float32))]


def _ingested(folder: Path) -> list[Path]:
    from vasa_lib.real.ingest import ingest
    from vasa_lib.video import write_video

    noise = np.random.default_rng(0).normal(0, 0.1, 6400).astype(np.float32)
    write_video(folder / "videos" / "short.mp4", torch.rand(10, 3, 32, 32), noise)
    ingest(folder / "videos", folder / "dataset", progress=False)
    return [folder / "dataset" / "summary.json", *(folder / "dataset" / "videos").glob("*.json")]


def _latents(folder: Path) -> list[Path]:
    from vasa_lib.motion.latents import LatentSet

    frames, clips = 4, 1
    latents = LatentSet(torch.zeros(frames, 8), torch.zeros(frames, 320), torch.zeros(frames, 6),
                        torch.zeros(frames, 11), torch.tensor([0, frames]), torch.zeros(clips, 2),
                        torch.ones(clips, 1), torch.zeros(clips, dtype=torch.long),
                        torch.zeros(clips, dtype=torch.long), torch.zeros(clips, dtype=torch.bool))
    return [latents.save(folder / "latents.safetensors")]


def _clip(folder: Path) -> list[Path]:
    from vasa_lib.world.clips import make_clip, save_clip

    save_clip(make_clip(0, "test"), folder / "clip.npz")
    return [folder / "clip.npz"]


@pytest.mark.parametrize("write", [_checkpoint, _video, _ingested, _latents, _clip], ids=lambda f: f.__name__[1:])
def test_written_files_get_ordinary_permissions(write, tmp_path):
    umask = os.umask(0o027)
    try:
        written = write(tmp_path)
    finally:
        os.umask(umask)
    assert written and {oct(path.stat().st_mode & 0o777) for path in written} == {oct(0o640)}
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]          # no temporary file left
