"""nbval compares no video or image bytes, and no decimal: what it compares is the same on every machine.

Training, decoding and encoding are not bit-identical from one processor to another, so the bytes of a video, a
sound or a figure differ between machines. nbval leaves image/png and image/jpeg out of its comparison; the rules
of .nbval_sanitize.cfg blank the base64 payload of every data: URI (<video>, <audio>, <img>) and every decimal
number before the rest is compared. These tests read the committed notebooks as nbval reads them.
"""

import configparser
import re
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import IPyNbFile, find_comment_markers, find_metadata_tags, get_sanitize_patterns

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SANITIZE_FILE = ROOT / ".nbval_sanitize.cfg"
RULES = get_sanitize_patterns(SANITIZE_FILE.read_text())   # nbval's own reading of the file
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{256,}")


def sanitize(text: str) -> str:
    """As nbval does: each rule of the file in turn, in the file's order."""
    for regex, replace in RULES:
        text = re.sub(regex, replace, text)
    return text


@pytest.fixture
def not_compared(request) -> set[str]:
    """The output keys nbval leaves out of its comparison, asked of nbval with this run's options: image/png and
    image/jpeg among them (unless --nbdime is given). Any other image/* type would be compared byte for byte."""
    return set(IPyNbFile.from_parent(request.session, path=NOTEBOOKS[0]).skip_compare)


def compared_outputs(path: Path, not_compared: set[str]):
    """(nbval's cell number, output key, sanitized text) for each output nbval compares in the notebook."""
    code_cells = [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    for number, cell in enumerate(code_cells):
        options = dict(find_metadata_tags(cell.metadata))
        options.update(find_comment_markers(cell.source))
        if options.get("skip") or not options.get("check", True) or cell.execution_count is None:
            continue
        for output in cell.outputs:
            for key, value in output.items():
                if key in not_compared:
                    continue
                for data_key, text in value.items() if key == "data" else [(key, value)]:
                    if data_key not in not_compared and isinstance(text, str):
                        yield number, data_key, sanitize(text)


def test_the_sanitize_file_reads_the_same_to_nbval_and_to_configparser():
    """A rule that nbval's reading skips (a blank line inside it, a stray space) would silently not apply."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(SANITIZE_FILE.read_text())
    assert RULES == [(parser[name]["regex"], parser[name]["replace"]) for name in parser.sections()]


@pytest.mark.parametrize("left, right", [
    ('<video><source src="data:video/mp4;base64,AAAAIGZ0eXBpc29t+/9=" type="video/mp4"></video>',
     '<video><source src="data:video/mp4;base64,AAAAIGZ0eXBpc28yYXZj" type="video/mp4"></video>'),
    ('<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA">', '<img src="data:image/png;base64,iVBORw0KGgo=">'),
    ("steps  ms/window\n    1        3.6\n   25       63.3", "steps  ms/window\n    1       10.1\n   25      103.0"),
    ("centre offset (-0.01, +0.02)", "centre offset (0.00, -0.02)"),
    ("smoothed: [0. 0. 0.]", "smoothed: [0.01 0.   0.  ]"),
], ids=["video", "img", "padded column", "sign", "numpy array"])
def test_the_rules_blank_bytes_decimals_and_their_padding(left, right):
    assert sanitize(left) == sanitize(right)


def test_the_rules_keep_what_is_the_same_everywhere():
    assert sanitize("5 clips kept, shape (4, 3, 128, 128)") != sanitize("6 clips kept, shape (4, 3, 128, 128)")
    assert sanitize("a figure sent as data:image/webp;base64, 700 x 440") != sanitize(
        "a figure sent as data:image/webp;base64, 640 x 440")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbval_compares_no_video_or_image_bytes(path, not_compared):
    outputs = list(compared_outputs(path, not_compared))
    images = [(number, key) for number, key, _ in outputs if key.startswith("image/")]
    assert not images, f"nbval would compare these images byte for byte (cell, type): {images}"
    left = [(number, key, len(run.group())) for number, key, text in outputs for run in BASE64_RUN.finditer(text)]
    assert not left, f"base64 that nbval would still compare after .nbval_sanitize.cfg (cell, type, length): {left}"
