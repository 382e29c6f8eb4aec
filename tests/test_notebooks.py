"""The notebooks' shared structure: one install cell everywhere, a header that says what a run takes and what it
needs, and an end with a summary and exercises whose solutions exist.

(nbval, run by `pytest` on notebooks/, executes them and checks their outputs and asserts.)
"""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REPOSITORY = "https://github.com/vasa-course/vasa-from-scratch"


def cells(path: Path, kind: str) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == kind]


def test_every_notebook_has_the_same_install_cell():
    install = {path.name: cells(path, "code")[0] for path in NOTEBOOKS}
    first = install[NOTEBOOKS[0].name]
    assert all(text == first for text in install.values()), \
        f"install cells differ: {[name for name, text in install.items() if text != first]}"
    # outside a checkout: clone, install, make importable without a restart; a GPU is detected and said
    for needed in (REPOSITORY, "git", "clone", "pip", "install", "sys.path.insert", "torch.cuda.is_available()"):
        assert needed in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_header_opens_in_colab_and_states_the_run_time(path):
    header = cells(path, "markdown")[0]
    assert f"colab.research.google.com/github/vasa-course/vasa-from-scratch/blob/main/notebooks/{path.name}" in header
    assert re.search(r"Run time:.*fast mode on a 2-core CPU.*full mode.*GPU", header, re.S), \
        "the header must state the run time in fast mode (2-core CPU) and in full mode (GPU)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_header_says_what_you_need_and_the_end_has_a_summary_and_exercises_with_solutions(path):
    markdown = cells(path, "markdown")
    assert "What you need" in markdown[0], "the header must say what you need (earlier notebooks, CPU or GPU)"
    assert any(text.startswith("## Summary") for text in markdown), "a markdown cell must start with '## Summary'"
    exercises = [text for text in markdown if text.startswith("## Exercises")]
    assert exercises, "a markdown cell must start with '## Exercises'"
    named = set(re.findall(r"solutions/[\w.-]+\.py", "".join(exercises)))
    assert named, "the exercises must name their solutions (solutions/NN_name.py)"
    root = path.parent.parent
    missing = sorted(name for name in named if not (root / name).is_file())
    assert not missing, f"the exercises name solutions that do not exist: {missing}"
