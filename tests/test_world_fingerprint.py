"""One world on every machine: clips match a committed fingerprint, and caches are keyed by code.

`python tests/test_world_fingerprint.py` rewrites tests/world_fingerprint.json; do that only when
the world is meant to change (and say so in the commit), never to make this test pass.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vasa_lib import paths
from vasa_lib.paths import source_hash
from vasa_lib.world import clips
from vasa_lib.world.clips import CLIP_CODE, fingerprint, load_clip, make_clip

FINGERPRINT = Path(__file__).with_name("world_fingerprint.json")
CLIPS = [(split, index) for split in clips.SPLITS for index in range(3)]


def _close(a, b) -> bool:
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return abs(a - b) <= 2e-5
    return a == b


@pytest.mark.parametrize("split, index", CLIPS)
def test_clip_matches_the_committed_fingerprint(split, index):
    expected = json.loads(FINGERPRINT.read_text())[f"{split}/{index}"]
    got = fingerprint(make_clip(index, split))
    for key in expected:
        assert _close(got[key], expected[key]), f"{split} clip {index}: {key} differs: {got[key]} vs {expected[key]}"


def test_breathy_voices_repeat_across_utterances():
    # en-029+Alicia and en+f2 add breath noise from eSpeak's clock-seeded generator (reseeded now)
    from vasa_lib.world.speech import synthesize

    for voice in ("en-029+Alicia", "en+f2"):
        a, b = (synthesize("Honestly, the boat was blue.", voice=voice) for _ in range(2))
        np.testing.assert_array_equal(a.audio, b.audio)


def test_cache_written_by_other_code_is_not_read(tmp_path, monkeypatch):
    clip = load_clip(0, "val", tmp_path)
    written = next(tmp_path.rglob("*.npz"))
    assert source_hash(*CLIP_CODE) in str(written)
    # the same index under the key of other world code: the stale file must not be what loads
    monkeypatch.setattr(clips, "source_hash", lambda *modules: "othercode123")
    stale = clips._cache_path(tmp_path, "val", 0)
    stale.parent.mkdir(parents=True)
    np.savez(stale, nonsense=np.zeros(1))
    monkeypatch.undo()
    assert fingerprint(load_clip(0, "val", tmp_path)) == fingerprint(clip)


def test_source_hash_follows_the_code(tmp_path, monkeypatch):
    assert source_hash("world/clips.py") != source_hash("world/speech.py")
    # source_hash is cached for the process (the code does not change under it): recompute with the uncached one.
    fresh_hash = source_hash.__wrapped__
    # A copy of the clip code elsewhere hashes the same (the key is the code, not where it lies) ...
    key = source_hash(*CLIP_CODE)
    for module in CLIP_CODE:
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(paths.PACKAGE_DIR / module, tmp_path / module)
    monkeypatch.setattr(paths, "PACKAGE_DIR", tmp_path)
    assert fresh_hash(*CLIP_CODE) == key
    # ... and one more line in any one of its files changes it.
    for module in CLIP_CODE:
        original = (tmp_path / module).read_bytes()
        (tmp_path / module).write_bytes(original + b"# edited\n")
        assert fresh_hash(*CLIP_CODE) != key, module
        (tmp_path / module).write_bytes(original)


if __name__ == "__main__":
    table = {f"{split}/{index}": fingerprint(make_clip(index, split)) for split, index in CLIPS}
    FINGERPRINT.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {FINGERPRINT} ({len(table)} clips)")
