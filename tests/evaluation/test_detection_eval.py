"""Scoring rules of ``openspine evaluate detection`` on synthetic detections with exact answers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from openspine.evaluation.detection import (
    ScanResult,
    _overall,
    build_parser,
    format_report,
    score_volume,
    spider_sequence_ok,
)
from openspine.levels import DiscLevel, Level

AFF = np.array([[0, 0, 1.0, 0], [0, -1.0, 0, 0], [-1.0, 0, 0, 0], [0, 0, 0, 1]])  # [S→I, A→P, L→R], 1 mm


def _mask() -> np.ndarray:
    m = np.zeros((120, 60, 5), np.int32)
    m[20:40, 10:40, :] = 23  # L4
    m[50:70, 10:40, :] = 24  # L5
    m[80:90, 10:40, :] = 124  # L5-S1 disc
    return m


def _v(label: str, vox: tuple[float, float, float]) -> SimpleNamespace:
    mm = tuple(float(x) for x in AFF[:3, :3] @ np.array(vox) + AFF[:3, 3])
    return SimpleNamespace(label=Level(label), centroid_voxel=vox, centroid_mm=mm)


def test_scoring_counts_detections_false_positives_and_unscored() -> None:
    det = SimpleNamespace(
        vertebrae=[
            _v("L3", (5.0, 25.0, 2.0)),  # above the annotated span: unscored
            _v("L4", (29.5, 24.5, 2.0)),  # in L4's mask, right level, at its centroid
            _v("L4", (31.0, 24.5, 2.0)),  # a second prediction in the same mask: a false positive
            _v("S1", (60.0, 24.5, 2.0)),  # in L5's mask with the wrong label
            _v("L5", (45.0, 50.0, 2.0)),  # inside the span, in no mask: a false positive
        ],
        discs=[SimpleNamespace(level=DiscLevel.L5_S1, centroid_voxel=(85.0, 25.0, 2.0))],
        flags=("x",),
    )
    res = score_volume(det, _mask(), AFF, True, ScanResult("s", "VB2", True))
    assert (res.n_gt, res.detected, res.false_positives, res.unscored) == (2, 2, 2, 1)
    assert (res.level_checked, res.level_correct) == (2, 1)
    assert res.errors_mm[0] == pytest.approx(0.0, abs=1e-6)
    assert res.errors_mm[1] == pytest.approx(0.5, abs=1e-6)
    assert (res.gt_discs, res.discs_detected, res.disc_level_correct) == (1, 1, 1)
    o = _overall([res], [{"complete": True}, {"complete": False}])
    assert o["detection_rate"] == 1.0 and o["false_positives_per_scan"] == 2.0 and o["level_accuracy"] == 0.5
    assert o["spider_lumbar_sequence_complete"] == 0.5
    assert o["targets_met"]["detection_rate"] and not o["targets_met"]["false_positives_per_scan"]
    text = format_report({"split": "val", "model": "m", "scans": [res.to_dict()], "spider": [], "overall": o})
    assert "detection_rate" in text and "NOT met" in text


def _d(level: str, z: float) -> SimpleNamespace:
    return SimpleNamespace(level=DiscLevel(level), centroid_mm=(0.0, 0.0, z))


def test_spider_sequence_needs_all_five_in_order() -> None:
    good = SimpleNamespace(
        discs=[_d("T12-L1", 60), _d("L1-L2", 40), _d("L2-L3", 20), _d("L3-L4", 0), _d("L4-L5", -20), _d("L5-S1", -40)]
    )
    assert spider_sequence_ok(good)
    assert not spider_sequence_ok(SimpleNamespace(discs=good.discs[:-1]))
    swapped = SimpleNamespace(
        discs=[_d("L1-L2", 40), _d("L2-L3", 20), _d("L3-L4", -30), _d("L4-L5", -20), _d("L5-S1", -40)]
    )
    assert not spider_sequence_ok(swapped)


def test_cli_help_has_examples(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert "openspine evaluate detection --data ../shared/data --split val" in capsys.readouterr().out
