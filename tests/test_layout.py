"""The library is built in floors: a module imports only from floors below its own (or from its own
package), so each floor can be read, tested and taught before the ones above it. Imports inside
functions count too: an import moved into a function to dodge a cycle still runs upward."""

import ast
from pathlib import Path

import pytest

import vasa_lib

PACKAGE = Path(vasa_lib.__file__).parent
FLOORS = [
    {"__init__", "paths"},                               # where files are, the version
    {"world", "checkpoint", "optim", "run_config"},      # the synthetic world; saving, schedules, configs
    {"video", "audio"},                                  # video files; audio features
    {"face"},                                            # the face latent model
    {"motion"},                                          # the motion generator
    {"eval"},                                            # evaluators and metrics
    {"real"},                                            # real video: ingested, labelled, judged by the evaluators
    {"pipeline", "notebook"},                            # portrait + speech -> video; notebook helpers
    {"demo", "generate", "train"},                       # what a user runs
]
FLOOR = {part: level for level, parts in enumerate(FLOORS) for part in parts}


def part_of(path: Path) -> str:
    """The library part a file belongs to: its subpackage, or its own name for a top-level module."""
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def imported_parts(path: Path) -> set[str]:
    """Library parts a file imports from, anywhere in it."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vasa_lib":
            names = node.module.split(".")
            parts |= {names[1]} if len(names) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            parts |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("vasa_lib.")}
    return parts


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_has_a_floor():
    parts = {part_of(path) for path in SOURCES}
    assert parts <= FLOOR.keys(), f"place these in FLOORS: {sorted(parts - FLOOR.keys())}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down(path):
    here = part_of(path)
    upward = {part for part in imported_parts(path) - {here} if FLOOR.get(part, -1) >= FLOOR[here]}
    assert not upward, f"{path.relative_to(PACKAGE)} (floor {FLOOR[here]}) imports from {sorted(upward)}"


def test_the_checker_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("def f():\n    from vasa_lib.motion.latents import LatentSet\n    import vasa_lib.eval.probes\n")
    assert imported_parts(source) == {"motion", "eval"}
