"""Evaluation of gradings: per-head metrics, intervals, uncalibrated ECE recovery, report and card forms."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from openspine.evaluation.grading import build_parser, card_metrics, format_report, parse_levels, update_card
from openspine.grading.heads import BUILTIN_HEADS, HeadSpec
from openspine.grading.model import softmax
from openspine.levels import LUMBAR_DISCS, DiscLevel
from openspine.training.metrics import Collected, head_metrics, kappa_weights
from openspine.training.metrics import uncalibrated as _uncalibrated


def _collected(head: HeadSpec, n_patients: int = 20, seed: int = 0) -> Collected:
    rng = np.random.default_rng(seed)
    c = Collected(head)
    k = len(head.classes)
    for p in range(n_patients):
        for _ in range(6):
            t = int(rng.integers(0, k))
            z = rng.normal(0, 1, k)
            z[t] += 2.0
            probs = softmax(z[None], head.temperature)[0]
            c.y_true.append(t)
            c.y_pred.append(int(np.argmax(probs)))
            c.probs.append(probs.tolist())
            c.patients.append(f"p{p}")
    return c


def test_head_metrics_values_and_intervals():
    head = HeadSpec("pfirrmann", ("1", "2", "3", "4", "5"), ordinal=True, temperature=1.5)
    c = _collected(head)
    m = head_metrics(c, n_boot=200)
    assert m["n"] == 120 and m["patients"] == 20 and sum(m["support"]) == 120
    assert m["kappa"]["weights"] == "linear"
    cm = np.array(m["confusion_matrix"]["matrix"])
    assert cm.sum() == 120
    assert m["accuracy"]["value"] == pytest.approx(np.trace(cm) / 120, abs=1e-4)
    for key in ("accuracy", "balanced_accuracy", "kappa"):
        lo, hi = m[key]["ci95"]
        assert lo <= m[key]["value"] <= hi
    assert 0 <= m["ece"]["calibrated"] <= 1 and m["ece"]["temperature"] == 1.5


def test_uncalibrated_probabilities_are_recovered_exactly():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, (50, 4))
    for t in (0.5, 1.0, 2.7):
        np.testing.assert_allclose(_uncalibrated(softmax(z, t), t), softmax(z), atol=1e-9)


def test_kappa_weights_follow_the_head():
    by_name = {h.name: h for h in BUILTIN_HEADS}
    assert kappa_weights(by_name["pfirrmann"]) == "linear"
    assert kappa_weights(by_name["marrow_change"]) == "none"  # Modic type is nominal
    assert kappa_weights(by_name["narrowing"]) == "none"  # two classes: linear = unweighted


def test_report_card_and_cli_options(tmp_path: Path):
    heads = [h for h in BUILTIN_HEADS if h.name in ("pfirrmann", "bulging")]
    res = {
        "split": "val",
        "patients": 20,
        "grader": {"name": "grader", "version": "1.0.0"},
        "levels": [lv.value for lv in LUMBAR_DISCS],
        "reference_discs": 125,
        "graded_and_matched": 120,
        "coverage": 0.96,
        "failed_scans": {},
        "gradings": {h.name: head_metrics(_collected(h), n_boot=50) for h in heads},
    }
    text = format_report(res)
    assert "pfirrmann" in text and "confusion matrix" in text and "120/125" in text
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "card.json").write_text(json.dumps({"name": "grader", "metrics": {}}))
    update_card(folder, res)
    card = json.loads((folder / "card.json").read_text())
    assert card["metrics"] == json.loads(json.dumps(card_metrics(res)))
    assert set(card["metrics"]["gradings"]) == {"pfirrmann", "bulging"}
    assert parse_levels("lumbar") == LUMBAR_DISCS
    assert parse_levels("all") is None
    assert parse_levels("L4-L5,l5_s1") == (DiscLevel.L4_L5, DiscLevel.L5_S1)
    args = build_parser().parse_args(["--split", "val", "--out", "x.json"])
    assert args.out == Path("x.json") and args.bootstrap == 1000
