"""Fitting the grader's stacker: folds by patient, the logistic regression, and the keep-or-drop choice."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from openspine.grading.features import FEATURE_NAMES
from openspine.grading.heads import HeadSpec
from openspine.levels import DiscLevel
from openspine.training import stacking

pytestmark = pytest.mark.train
torch = pytest.importorskip("torch")

LUMBAR = (DiscLevel.L1_L2, DiscLevel.L2_L3, DiscLevel.L3_L4, DiscLevel.L4_L5, DiscLevel.L5_S1)


def test_patient_folds_keep_patients_together_and_balance():
    cases = [f"p{i // 6}" for i in range(120)]  # 20 patients × 6 discs
    folds = stacking.patient_folds(cases, 5, seed=0)
    for p in set(cases):
        assert len({f for c, f in zip(cases, folds) if c == p}) == 1
    assert sorted(np.bincount(folds)) == [24] * 5
    assert (stacking.patient_folds(cases, 5, seed=0) == folds).all()


def test_logistic_regression_reaches_its_optimum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = np.digitize(x[:, 0] + 0.3 * rng.normal(size=300), [-0.8, 0.8])  # 3 classes, ordered by x0
    c = 0.5
    coef, bias = stacking.fit_logistic(x, y, 3, c)
    assert (np.argmax(x @ coef + bias, axis=1) == y).mean() > 0.75  # the noise caps it near 0.8
    # the gradient of the (class-weighted, L2-penalised) objective vanishes at the solution
    counts = np.bincount(y, minlength=3)
    w = (len(y) / (3 * counts))[y]
    z = x @ coef + bias
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    r = (p - np.eye(3)[y]) * w[:, None]
    np.testing.assert_allclose(x.T @ r + coef / c, 0.0, atol=1e-4)
    np.testing.assert_allclose(r.sum(0), 0.0, atol=1e-4)


def _samples(y: np.ndarray, head: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(case=f"p{i // 5}", level=LUMBAR[i % 5], labels={head: int(v)}) for i, v in enumerate(y)]


def test_stacker_is_kept_only_where_it_beats_the_network():
    rng = np.random.default_rng(1)
    n = 400
    y = rng.integers(0, 2, n)
    feats = rng.normal(size=(n, len(FEATURE_NAMES)))
    feats[:, 3] += 2.5 * (y - 0.5) * 2  # one informative feature
    heads = [HeadSpec("narrowing", ("0", "1")), HeadSpec("bulging", ("0", "1"))]
    samples = [
        SimpleNamespace(case=s.case, level=s.level, labels={"narrowing": int(v), "bulging": int(v)})
        for s, v in zip(_samples(y, "narrowing"), y)
    ]
    logits = {
        "narrowing": rng.normal(size=(n, 2)),  # the network knows nothing: the features must win
        "bulging": np.stack([-(y - 0.5) * 8, (y - 0.5) * 8], axis=1),  # perfect network: nothing to add
    }
    folds = stacking.patient_folds([s.case for s in samples], 5, seed=0)
    st, report = stacking.fit_stacker(heads, logits, feats, samples, folds)
    assert report["narrowing"]["kept"] and "narrowing" in st.heads
    assert report["narrowing"]["cv_with_stacker"]["balanced_accuracy"] > 0.9
    assert report["narrowing"]["cv_network_only"]["balanced_accuracy"] < 0.65
    assert not report["bulging"]["kept"] and "bulging" not in st.heads
    pred = st.heads["narrowing"].balanced(logits["narrowing"], feats).argmax(1)
    assert (pred == y).mean() > 0.9
    np.testing.assert_allclose(np.exp(st.heads["narrowing"].log_prior).sum(), 1.0)


def test_out_of_fold_predictions_never_come_from_a_network_that_saw_the_sample():
    samples = _samples(np.zeros(50, int), "bulging")
    folds = stacking.patient_folds([s.case for s in samples], 5, seed=0)
    trained_on: dict[int, set[int]] = {}

    def train_fold(train, fold):
        trained_on[fold] = {id(s) for s in train}

        def predict(test):
            assert not trained_on[fold] & {id(s) for s in test}
            return {"bulging": np.full((len(test), 2), float(fold))}

        return predict

    out = stacking.out_of_fold_logits(samples, folds, train_fold)
    np.testing.assert_array_equal(out["bulging"][:, 0], folds)
    assert sorted(trained_on) == [0, 1, 2, 3, 4]


def test_cross_validation_judges_the_grade_not_the_most_probable_class():
    """Rare positives: the balanced decision finds most of them, the prior-weighted argmax would not."""
    rng = np.random.default_rng(2)
    n = 600
    y = (rng.random(n) < 0.08).astype(int)
    feats = rng.normal(size=(n, len(FEATURE_NAMES)))
    feats[:, 0] += 2.5 * y
    samples = _samples(y, "herniation")
    folds = stacking.patient_folds([s.case for s in samples], 5, seed=0)
    heads = [HeadSpec("herniation", ("0", "1"))]
    st, report = stacking.fit_stacker(heads, {"herniation": rng.normal(size=(n, 2))}, feats, samples, folds)
    assert report["herniation"]["cv_with_stacker"]["balanced_accuracy"] > 0.78
    h = st.heads["herniation"]
    balanced = h.balanced(np.zeros((n, 2)), feats).argmax(1)
    most_probable = h.apply(np.zeros((n, 2)), feats).argmax(1)
    assert balanced[y == 1].mean() > 0.6 > most_probable[y == 1].mean()


def test_out_of_fold_inputs_are_saved_for_later_study(tmp_path):
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0])
    samples = _samples(y, "narrowing")
    samples[3].labels = {}  # a disc without this grading keeps -1
    heads = [HeadSpec("narrowing", ("0", "1"))]
    logits = {"narrowing": np.arange(20, dtype=np.float32).reshape(10, 2)}
    feats = np.ones((10, len(FEATURE_NAMES)))
    folds = stacking.patient_folds([s.case for s in samples], 2, seed=0)
    stacking.save_out_of_fold(tmp_path / "oof.npz", heads, logits, feats, samples, folds)
    d = np.load(tmp_path / "oof.npz")
    np.testing.assert_array_equal(d["logits_narrowing"], logits["narrowing"])
    assert d["labels_narrowing"].tolist() == [0, 1, 1, -1, 1, 0, 0, 1, 1, 0]
    assert d["features"].shape == (10, len(FEATURE_NAMES))
    assert d["folds"].tolist() == folds.tolist()
    assert d["cases"].tolist() == [s.case for s in samples]
    assert d["levels"].tolist()[:5] == [lv.value for lv in LUMBAR]
