"""The evaluation report (vasa_lib.eval.report) and the realism detector (vasa_lib.eval.realism):
small and fast, on the world's own parameters."""

import json

import pytest
import torch

from vasa_lib.eval.pixels import PIXEL_KEYS
from vasa_lib.eval.realism import detector_accuracy, shuffle_frames, train_detector
from vasa_lib.eval.report import COLUMNS, PIXEL_COLUMNS, SYSTEMS, evaluate_space, main, markdown


def walks(n, frames=60, dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return list((0.1 * torch.randn(n, frames, dim, generator=g)).cumsum(1))


def test_detector_sees_shuffled_frames_and_not_the_same_process():
    real_train, real_test = walks(16, seed=1), walks(16, seed=2)
    shuffled = detector_accuracy(train_detector(real_train, [shuffle_frames(m, i) for i, m in enumerate(real_train)],
                                                steps=300),
                                 real_test, [shuffle_frames(m, i) for i, m in enumerate(real_test)])
    same = detector_accuracy(train_detector(real_train, walks(16, seed=3), steps=150), real_test, walks(16, seed=4))
    assert shuffled > 0.8                   # shuffled random walks: caught on most held-out windows
    assert abs(same - 0.5) < 0.2


def test_shuffle_frames_keeps_the_frames():
    m = torch.randn(30, 4)
    s = shuffle_frames(m, seed=1)
    assert not torch.equal(s, m)
    assert torch.equal(s.sort(0).values, m.sort(0).values)


def test_report_rows_on_the_world():
    systems = {"baseline": SYSTEMS["baseline"], "diffusion_10_steps": ("diffusion", 2, {"gaze": 1.0}, None)}
    result = evaluate_space("world", n_clips=2, n_train=2, n_diversity=2, systems=systems, detector_steps=10)
    assert list(result["rows"]) == ["ground_truth", "baseline", "diffusion_10_steps"]
    for row in result["rows"].values():
        assert set(row) == set(COLUMNS) | set(PIXEL_COLUMNS)
        assert all(isinstance(v, float) and v == v for v in row.values())
    assert result["rows"]["baseline"]["diversity"] == 0.0               # regression: one motion per audio
    assert result["rows"]["diffusion_10_steps"]["diversity"] > 0.0
    assert result["rows"]["ground_truth"]["lip_sync_corr"] > 0.99       # the probe reads the world's jaw
    assert "evaluator_grades" in result["settings"]
    # read from the portrait renders, the truth's jaw still follows the audio's true jaw
    assert result["rows"]["ground_truth"]["px_lip_sync_corr"] > 0.8
    assert set(result["settings"]["reader_ceiling"]) == {f"px_{k}" for k in PIXEL_KEYS}
    table = markdown({"columns": list(COLUMNS), "rows": result["rows"]})
    assert table.count("\n") == 4 and "| baseline |" in table


def test_report_rejects_an_unknown_space():
    with pytest.raises(ValueError, match="space"):
        evaluate_space("pixels")


def test_main_prints_json(monkeypatch, capsys):
    def fake_report(n_clips, n_train, n_div, seed, spaces):
        return {"rows": {"ground_truth": dict.fromkeys(COLUMNS, 0.5)}, "columns": list(COLUMNS),
                "settings": {"args": [n_clips, n_train, n_div, seed, list(spaces)]}}

    monkeypatch.setattr("vasa_lib.eval.report.report", fake_report)
    main(["--json", "--clips", "3", "--space", "world"])
    out = json.loads(capsys.readouterr().out)
    assert out["settings"]["args"] == [3, 16, 3, 0, ["world"]]
