"""The grader's stacker: its arithmetic, its card entry, and that grade() applies it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from grading_helpers import fake_detection, spine_scan, tiny_grader

from openspine.errors import ModelError
from openspine.grading.features import FEATURE_NAMES
from openspine.grading.stacker import HeadStacker, Stacker
from openspine.levels import Grading

N_F = len(FEATURE_NAMES)


def _head(k: int, rng: np.random.Generator) -> HeadStacker:
    return HeadStacker(
        mean=rng.normal(size=k + N_F),
        scale=rng.uniform(0.5, 2.0, k + N_F),
        coef=rng.normal(size=(k + N_F, k)),
        intercept=rng.normal(size=k),
        log_prior=np.log(rng.dirichlet(np.ones(k))),
    )


def test_apply_is_a_standardised_linear_map_and_others_pass_through():
    rng = np.random.default_rng(0)
    h = _head(5, rng)
    z, f = rng.normal(size=(3, 5)), rng.normal(size=(3, N_F))
    x = np.hstack([z, f])
    balanced = ((x - h.mean) / h.scale) @ h.coef + h.intercept
    np.testing.assert_allclose(h.balanced(z, f), balanced, rtol=1e-12)
    st = Stacker(heads={"pfirrmann": h})
    out = st.apply({"pfirrmann": z, "bulging": z[:, :2]}, f)
    np.testing.assert_allclose(out["pfirrmann"], balanced + h.log_prior, rtol=1e-12)  # for the probabilities
    np.testing.assert_array_equal(out["bulging"], z[:, :2])
    # the grade's decision undoes the prior: argmax of the balanced scores
    off = st.decision_offsets()
    assert set(off) == {"pfirrmann"}
    np.testing.assert_array_equal((out["pfirrmann"] + off["pfirrmann"]).argmax(1), balanced.argmax(1))


def test_card_round_trip_and_refusals():
    rng = np.random.default_rng(1)
    st = Stacker(heads={"pfirrmann": _head(5, rng), "narrowing": _head(2, rng)})
    d = json.loads(json.dumps(st.to_dict()))
    back = Stacker.from_card(d, {"pfirrmann": 5, "narrowing": 2, "bulging": 2}, "m")
    assert back is not None and set(back.heads) == {"pfirrmann", "narrowing"}
    np.testing.assert_allclose(back.heads["pfirrmann"].coef, st.heads["pfirrmann"].coef, atol=1e-6)
    assert Stacker.from_card(None, {}, "m") is None
    with pytest.raises(ModelError, match="features"):
        Stacker.from_card({**d, "features_version": "disc-features-0"}, {"pfirrmann": 5, "narrowing": 2}, "m")
    with pytest.raises(ModelError, match="does not have"):
        Stacker.from_card(d, {"pfirrmann": 5}, "m")
    with pytest.raises(ModelError, match="damaged"):
        Stacker.from_card(d, {"pfirrmann": 4, "narrowing": 2}, "m")  # 5 classes stored, 4 declared


@pytest.mark.train
def test_grade_applies_the_cards_stacker(tmp_path: Path):
    pytest.importorskip("torch")
    from openspine.grading import grade

    base = tiny_grader(tmp_path / "tiny")
    scan, geoms = spine_scan([300, 250, 200, 120, 60])
    view = scan.to_sagittal()
    plain = grade(view, fake_detection(view, geoms), grader=base)

    # a stacker that ignores its inputs: balanced scores = intercept (grade 5 is the balanced choice), while the
    # training prior makes grade 3 the most probable class
    stacked = tmp_path / "stacked"
    shutil.copytree(base, stacked)
    card = json.loads((stacked / "card.json").read_text())
    k = 5
    intercept = [0.0, 0.0, 0.0, 1.0, 3.0]
    log_prior = np.log([0.05, 0.05, 0.85, 0.04, 0.01])
    card["outputs"]["stacker"] = Stacker(
        heads={
            "pfirrmann": HeadStacker(
                mean=np.zeros(k + N_F),
                scale=np.ones(k + N_F),
                coef=np.zeros((k + N_F, k)),
                intercept=np.array(intercept),
                log_prior=log_prior,
            )
        }
    ).to_dict()
    (stacked / "card.json").write_text(json.dumps(card))
    out = grade(view, fake_detection(view, geoms), grader=stacked)
    t = next(h["temperature"] for h in card["outputs"]["heads"] if h["name"] == "pfirrmann")
    z = (np.array(intercept) + log_prior) / t
    want = np.exp(z) / np.exp(z).sum()
    assert int(np.argmax(want)) == 2  # grade 3 is the most probable …
    for disc, before in zip(out.discs, plain.discs):
        g = disc.grades[Grading.PFIRRMANN]
        assert g.grade == 3  # … and so it is the grade, agreeing with its probability;
        assert g.balanced_grade == 5  # grade 5 is the class-balanced decision: highest relative to its frequency
        assert disc.grades[Grading.BULGING].balanced_grade is None  # no stacker, no separate decision
        np.testing.assert_allclose(list(g.probabilities.values()), want, atol=1e-9)
        # heads without a stacker are untouched
        assert disc.grades[Grading.BULGING] == before.grades[Grading.BULGING]
