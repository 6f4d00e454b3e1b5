"""Agreement and calibration metrics against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from openspine.errors import ConfigError
from openspine.grading.model import softmax
from openspine.training.metrics import (
    balanced_accuracy,
    bootstrap_ci,
    cohen_kappa,
    confusion_matrix,
    expected_calibration_error,
    fit_temperature,
    nll,
)


def test_confusion_matrix_rows_are_reference():
    m = confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    with pytest.raises(ConfigError):
        confusion_matrix([0, 3], [0, 0], 3)


def test_balanced_accuracy_by_hand():
    # recalls: class 0 1/2, class 1 2/2 → 0.75; plain accuracy would be 0.75 too, so also an unbalanced case
    assert balanced_accuracy([0, 0, 1, 1], [0, 1, 1, 1], 2) == pytest.approx(0.75)
    # 9 of class 0 all right, 1 of class 1 wrong: accuracy 0.9, balanced accuracy 0.5
    assert balanced_accuracy([0] * 9 + [1], [0] * 10, 2) == pytest.approx(0.5)
    # absent classes do not count
    assert balanced_accuracy([0, 2], [0, 1], 5) == pytest.approx(0.5)
    assert np.isnan(balanced_accuracy([], [], 3))


def test_cohen_kappa_by_hand():
    # po = 3/4, pe = (2·1 + 2·3)/16 = 1/2 → κ = 0.5
    assert cohen_kappa([0, 0, 1, 1], [0, 1, 1, 1], 2) == pytest.approx(0.5)
    # linear weights, 3 classes: observed weighted disagreement 0.5, expected 7/6 → κ = 1 − 3/7 = 4/7
    assert cohen_kappa([0, 1, 2], [1, 1, 2], 3, "linear") == pytest.approx(4 / 7)
    # two classes: linear weights change nothing
    t, p = [0, 1, 1, 0, 1, 0, 0], [0, 1, 0, 0, 1, 1, 0]
    assert cohen_kappa(t, p, 2, "linear") == pytest.approx(cohen_kappa(t, p, 2))
    assert cohen_kappa([0, 1, 2, 3], [0, 1, 2, 3], 4, "linear") == pytest.approx(1.0)
    assert np.isnan(cohen_kappa([1, 1], [1, 1], 3))  # undefined: one class only
    with pytest.raises(ConfigError):
        cohen_kappa([0], [0], 2, "cubic")  # type: ignore[arg-type]


def test_linear_kappa_penalises_far_errors_more():
    t = [0, 1, 2, 3, 4] * 4
    near = [min(x + 1, 4) for x in t]
    far = [4 - x for x in t]
    assert cohen_kappa(t, near, 5, "linear") > cohen_kappa(t, far, 5, "linear")


def test_bootstrap_interval_contains_the_estimate_and_resamples_groups():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 2, 200)
    p = np.where(rng.random(200) < 0.8, t, 1 - t)
    groups = np.repeat(np.arange(40), 5)
    lo, hi = bootstrap_ci(lambda i: float(np.mean(t[i] == p[i])), groups, n_boot=300)
    est = float(np.mean(t == p))
    assert lo < est < hi
    assert 0.05 < hi - lo < 0.25
    # every group identical: no spread at all
    lo, hi = bootstrap_ci(lambda i: 1.0, groups, n_boot=20)
    assert lo == hi == 1.0


def test_ece_by_hand():
    probs = np.tile([0.9, 0.1], (10, 1))
    assert expected_calibration_error(probs, [0] * 9 + [1]) == pytest.approx(0.0)
    assert expected_calibration_error(probs, [0] * 10) == pytest.approx(0.1)
    # two bins: confidence 0.6 (all right → gap 0.4) and 0.95 (half right → gap 0.45), equal weight
    probs = np.array([[0.6, 0.4]] * 2 + [[0.95, 0.05]] * 2)
    assert expected_calibration_error(probs, [0, 0, 0, 1]) == pytest.approx(0.425)


def test_temperature_recovers_overconfidence():
    rng = np.random.default_rng(0)
    z_true = rng.normal(0, 1.5, size=(20000, 5))
    p = softmax(z_true)
    y = np.array([rng.choice(5, p=row) for row in p])
    z_over = 3.0 * z_true  # an overconfident network
    t = fit_temperature(z_over, y)
    assert t == pytest.approx(3.0, rel=0.05)
    assert nll(z_over, y, t) < nll(z_over, y)
    before = expected_calibration_error(softmax(z_over), y)
    after = expected_calibration_error(softmax(z_over, t), y)
    assert after < 0.02 < before
