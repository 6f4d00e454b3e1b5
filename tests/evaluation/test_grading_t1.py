"""``openspine evaluate grading --t1``: the T2 grader alone against T2 + T1 read together (a tiny untrained
two-channel grader here), on the same discs of a few real SPIDER patients with a T1 slice (train patients: a check
of the machinery, not a measurement), and marrow change as any type against none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openspine.training.metrics import Collected

from ..model_fixtures import tiny_paired_grader


def test_marrow_change_any_against_none_and_per_type() -> None:
    from openspine.evaluation.grading import _any_marrow, _per_type
    from openspine.grading.heads import HeadSpec
    from openspine.training.metrics import head_metrics

    c = Collected(HeadSpec("marrow_change", ("0", "1", "2", "3")))
    c.y_true = [0, 0, 1, 2, 3, 0]
    c.y_pred = [0, 2, 2, 0, 3, 0]  # any/none: right, wrong, right, wrong, right, right
    c.y_balanced = [None] * 6
    c.probs = [[0.7, 0.1, 0.1, 0.1]] * 6
    c.patients = ["a", "a", "b", "b", "c", "c"]
    a = _any_marrow(c)
    assert (a.y_true, a.y_pred) == ([0, 0, 1, 1, 1, 0], [0, 1, 1, 0, 1, 0])
    assert a.probs[0] == pytest.approx([0.7, 0.3])
    m = head_metrics(a, n_boot=20)
    assert m["balanced_accuracy"]["value"] == pytest.approx((2 / 3 + 2 / 3) / 2, abs=1e-4)
    per = _per_type(["0", "1", "2", "3"], head_metrics(c, n_boot=20))
    assert per["0"] == {
        "support": 3,
        "recall": pytest.approx(2 / 3, abs=1e-4),
        "precision": pytest.approx(2 / 3, abs=1e-4),
    }
    assert per["1"]["recall"] == 0.0 and per["1"]["precision"] is None  # never called
    assert per["3"]["recall"] == 1.0


@pytest.mark.train
def test_t1_evaluation_compares_the_same_discs(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from openspine.evaluation.grading import build_parser, card_metrics_t1, evaluate_t1, format_report_t1, update_card

    if not (shared_data / "spider" / "t1.csv").is_file():
        pytest.skip("the shared data has no SPIDER T1 slices")
    folder = tiny_paired_grader(tmp_path / "paired", ("marrow_change", "endplate_defect_lower"))
    res = evaluate_t1(shared_data, "train", paired_grader=folder, n_boot=20, patients=3)
    assert res["patients"] == 3 and res["mode"] == "t1"
    assert res["paired_grader"]["heads"] == ["endplate_defect_lower", "marrow_change"]
    a, b = res["gradings"]["t2_only"], res["gradings"]["t1_t2"]
    assert set(a) == set(b)
    for name in a:  # the same discs in both columns
        assert a[name]["n"] == b[name]["n"] > 0 and a[name]["support"] == b[name]["support"]
    agreeing = res["patients"] - len(res["series_mismatch"])
    for name in res["paired_grader"]["heads"]:  # read from both series where the two series agree
        assert (res["read_from_both_series"][name] > 0) == (agreeing > 0)
    others = set(a) - set(res["paired_grader"]["heads"])
    assert others and all(res["read_from_both_series"][n] == 0 for n in others)  # heads it lacks: T2 alone
    for n in others:  # and there the two columns are the same grades
        assert a[n]["balanced_accuracy"] == b[n]["balanced_accuracy"]
    assert set(res["marrow_change_any_vs_none"]) == {"t2_only", "t1_t2"}
    text = format_report_t1(res)
    assert "T2 alone" in text and "marrow_change any/none" in text
    update_card(folder, res, card_metrics_t1)
    card = json.loads((folder / "card.json").read_text())["metrics"]
    assert set(card["gradings"]) == set(card["t2_grader_alone_same_discs"]) == set(res["paired_grader"]["heads"])
    assert "marrow_change_any_vs_none" in card
    args = build_parser().parse_args(["--t1", "--paired-grader", "x", "--split", "val"])
    assert args.t1 and args.paired_grader == "x"
