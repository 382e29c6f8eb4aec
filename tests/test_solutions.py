"""The exercises' solutions (solutions/NN_*.py): each runs as a script and checks its answers with asserts."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py"))


def test_there_are_solutions():
    assert SOLUTIONS, "no solutions/NN_*.py found"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_runs_and_its_asserts_pass(path):
    result = subprocess.run([sys.executable, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{path.name} failed (exit {result.returncode}):\n{result.stderr[-6000:]}"
