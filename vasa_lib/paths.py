"""Where the course's files are: checkpoints, configs, portraits, and the data cache; and how a
file is written whole or not at all (`write_atomic`).

This module is the one place that knows. The course's folder holds `assets/checkpoints/`,
`assets/portraits/` and `configs/`; it is the first of
1. `$VASA_HOME`, when set;
2. the checkout this package was imported from (a clone, `pip install -e`, or `sys.path`);
3. the copy that `pip install .` puts under `<prefix>/share/vasa_lib` (pyproject's data-files);
4. the current folder or one of its parents;
that holds `assets/checkpoints/`. When none does, `CourseFilesNotFound` names every folder it
looked in. `$VASA_CHECKPOINT_DIR` points at another folder of checkpoints.

Data (the world's clips, encoded motion latents) is cached under `$VASA_DATA_DIR`, else
`~/.cache/vasa_lib`. A cache entry is keyed by `source_hash` of the code that made it, so a cache
written by other code, or on another version of the course, is never read as current.

Every file the library writes for later (checkpoints, videos, cached clips and latents, ingested
clips and records) goes through `write_atomic`: a killed run never leaves half a file, and the
file gets the permissions of any file a program makes (0666 less the umask: 0644 usually).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import secrets
import site
import sysconfig
from collections.abc import Callable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_MODELS = PACKAGE_DIR / "real" / "models"   # small networks for real video that ship inside the package
MARKER = Path("assets") / "checkpoints"
INSTALLED_NAME = Path("share") / "vasa_lib"


class CourseFilesNotFound(FileNotFoundError):
    """The course's folder (assets/checkpoints, configs) is in none of the places looked in."""


def _candidates() -> list[Path]:
    found = [Path(os.environ["VASA_HOME"])] if os.environ.get("VASA_HOME") else []
    found.append(PACKAGE_DIR.parent)
    found += [Path(base) / INSTALLED_NAME for base in (sysconfig.get_path("data"), site.USER_BASE) if base]
    cwd = Path.cwd().resolve()
    found += [cwd, *cwd.parents]
    return found


@functools.cache
def course_root() -> Path:
    """The course's folder (see the module docstring); raises CourseFilesNotFound."""
    looked = _candidates()
    for folder in looked:
        if (folder / MARKER).is_dir():
            return folder
    listed = "\n  ".join(str(folder) for folder in looked)
    raise CourseFilesNotFound(
        f"vasa_lib cannot find the course's files ({MARKER}/, configs/). Looked in:\n  {listed}\n"
        "Run from a clone of the repository, install it with `pip install -e .`, or set VASA_HOME "
        "to the clone's folder.")


def checkpoints_dir() -> Path:
    """The shipped checkpoints: $VASA_CHECKPOINT_DIR, else <course>/assets/checkpoints."""
    return Path(os.environ.get("VASA_CHECKPOINT_DIR") or course_root() / MARKER)


def checkpoint(name: str) -> Path:
    """A shipped checkpoint by name: checkpoint("face") -> .../assets/checkpoints/face.safetensors."""
    return checkpoints_dir() / f"{name}.safetensors"


def portraits_dir() -> Path:
    """The sample portraits of held-out people of the world."""
    return course_root() / "assets" / "portraits"


def course_path(path: str | Path) -> Path:
    """A path as given if it exists or is absolute, else relative to the course's folder
    ("configs/face_fast.toml" works from any folder)."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return course_root() / path


def data_dir(path: str | Path | None = None) -> Path:
    """Where data is cached: `path`, else $VASA_DATA_DIR, else ~/.cache/vasa_lib."""
    return Path(path or os.environ.get("VASA_DATA_DIR") or Path.home() / ".cache" / "vasa_lib")


@functools.cache
def source_hash(*modules: str) -> str:
    """12 hex digits of SHA-256 over the source of the named modules or packages of vasa_lib
    ("world", "audio/mel.py", ...) and the version of the speech engine's data: the key of
    anything cached that this code makes."""
    digest = hashlib.sha256(importlib.metadata.version("espeakng-loader").encode())
    for module in modules:
        target = PACKAGE_DIR / module
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for file in files:
            digest.update(file.relative_to(PACKAGE_DIR).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Write a file whole or not at all: `write(tmp)` writes a temporary file beside `path` (a
    hidden name, unique to the call, with path's suffix, so that np.savez adds none), which then
    replaces `path` in one step. An error or Ctrl-C half-way leaves no file behind and keeps an
    existing `path`. The file gets the permissions of a file created the ordinary way (0666 less
    the umask), whatever `write` gives it (safetensors and mkstemp make files private). Returns
    `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}-{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        tmp.touch(exist_ok=False)
        mode = tmp.stat().st_mode & 0o777
        write(tmp)
        tmp.chmod(mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
