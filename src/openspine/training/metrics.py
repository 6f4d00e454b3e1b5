"""Agreement and calibration metrics for gradings (NumPy only): the one place the learning side scores a grader.

Training, stacking, fine-tuning, ``openspine evaluate grading`` and the scripts all score through this module:
one κ weighting rule (:func:`kappa_weights`), one disc-level score (:func:`score`), one per-head report with
bootstrap intervals (:func:`head_metrics`).

* balanced accuracy – the mean recall over the classes present in the reference labels;
* Cohen's κ, unweighted or linearly / quadratically weighted (for ordered classes);
* confusion matrices (rows = reference, columns = prediction);
* patient-level bootstrap intervals (discs of one patient are resampled together: they are not independent);
* expected calibration error (top-label, equal-width bins) and temperature scaling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from ..errors import ConfigError
from ..grading.heads import HeadSpec

KappaWeights = Literal["none", "linear", "quadratic"]


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> NDArray[np.int64]:
    """Counts of (reference class, predicted class); labels are class indices 0 … n_classes-1."""
    t = np.asarray(y_true, dtype=int)
    p = np.asarray(y_pred, dtype=int)
    if t.shape != p.shape:
        raise ConfigError(f"reference and prediction differ in length: {t.shape} vs {p.shape}")
    if t.size and (t.min() < 0 or p.min() < 0 or t.max() >= n_classes or p.max() >= n_classes):
        raise ConfigError(f"class indices must lie in 0 … {n_classes - 1}")
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def balanced_accuracy(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """Mean per-class recall over the classes that occur in ``y_true`` (NaN when there are no labels)."""
    m = confusion_matrix(y_true, y_pred, n_classes)
    support = m.sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(m)[present] / support[present]))


def cohen_kappa(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int, weights: KappaWeights = "none") -> float:
    """Cohen's κ between reference and prediction; ``linear`` / ``quadratic`` weight disagreements by distance.

    Returns NaN when κ is undefined (every label and prediction in one class).
    """
    m = confusion_matrix(y_true, y_pred, n_classes).astype(float)
    n = m.sum()
    if n == 0:
        return float("nan")
    i, j = np.indices((n_classes, n_classes))
    if weights == "none":
        w = (i != j).astype(float)
    elif weights == "linear":
        w = np.abs(i - j) / max(n_classes - 1, 1)
    elif weights == "quadratic":
        w = ((i - j) / max(n_classes - 1, 1)) ** 2
    else:
        raise ConfigError(f"weights must be 'none', 'linear' or 'quadratic', got {weights!r}")
    expected = np.outer(m.sum(axis=1), m.sum(axis=0)) / n
    denom = float((w * expected).sum())
    if denom == 0:
        return float("nan")
    return float(1.0 - (w * m).sum() / denom)


def bootstrap_ci(
    statistic: Callable[[NDArray[np.int64]], float],
    groups: Sequence[object],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``statistic(row_indices)`` over bootstrap resamples of whole groups (patients).

    ``groups[i]`` is the group of row ``i``; each resample draws as many groups as there are, with replacement,
    and passes the rows of the drawn groups (repeated as drawn). Resamples where the statistic is NaN are skipped.
    """
    g = np.asarray([str(x) for x in groups])
    uniq = np.unique(g)
    if len(uniq) == 0:
        return float("nan"), float("nan")
    rows_of = [np.flatnonzero(g == u) for u in uniq]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([rows_of[k] for k in pick])
        v = statistic(idx)
        if np.isfinite(v):
            vals.append(v)
    if not vals:
        return float("nan"), float("nan")
    lo, hi = np.percentile(vals, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def expected_calibration_error(probs: ArrayLike, y_true: ArrayLike, n_bins: int = 10) -> float:
    """Top-label ECE: the sample-weighted mean |accuracy − confidence| over equal-width confidence bins."""
    p = np.asarray(probs, dtype=float)
    t = np.asarray(y_true, dtype=int)
    if len(t) == 0:
        return float("nan")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == t).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def log_softmax(z: NDArray[np.floating]) -> NDArray[np.float64]:
    a = np.asarray(z, dtype=np.float64)
    a = a - a.max(axis=1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=1, keepdims=True))  # type: ignore[no-any-return]


def nll(logits: ArrayLike, y_true: ArrayLike, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under softmax(logits / temperature)."""
    z = np.asarray(logits, dtype=float) / temperature
    t = np.asarray(y_true, dtype=int)
    return float(-log_softmax(z)[np.arange(len(t)), t].mean())


TEMPERATURE_BOUNDS = (0.05, 20.0)  # the search range of a fitted temperature


def fit_temperature(logits: ArrayLike, y_true: ArrayLike, bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """The temperature T > 0 that minimises the NLL of softmax(logits / T) (Guo et al. 2017)."""
    z = np.asarray(logits, dtype=float)
    t = np.asarray(y_true, dtype=int)
    if len(t) == 0:
        return 1.0
    res = optimize.minimize_scalar(
        lambda log_t: nll(z, t, float(np.exp(log_t))),
        bounds=(np.log(bounds[0]), np.log(bounds[1])),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(res.x))


@dataclass
class Collected:
    """Reference and prediction of one head over the matched discs."""

    head: HeadSpec
    y_true: list[int] = field(default_factory=list)
    y_pred: list[int] = field(default_factory=list)  # the reported grade: the most probable class
    y_balanced: list[int | None] = field(default_factory=list)  # the class-balanced decision, where the head has one
    probs: list[list[float]] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)


def kappa_weights(head: HeadSpec) -> KappaWeights:
    """Linear weights for ordered gradings with more than two classes, none otherwise (they are equal for two)."""
    return "linear" if head.ordinal and len(head.classes) > 2 else "none"


def score(y_true: ArrayLike, y_pred: ArrayLike, head: HeadSpec) -> dict[str, float]:
    """Balanced accuracy and κ (weighted by :func:`kappa_weights`) of one head's decisions, rounded to 4 decimals."""
    k = len(head.classes)
    return {
        "balanced_accuracy": round(balanced_accuracy(y_true, y_pred, k), 4),
        "kappa": round(cohen_kappa(y_true, y_pred, k, kappa_weights(head)), 4),
    }


def head_metrics(c: Collected, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Metrics of one head with patient-level bootstrap 95 % intervals."""
    k = len(c.head.classes)
    t = np.asarray(c.y_true, dtype=int)
    p = np.asarray(c.y_pred, dtype=int)
    w = kappa_weights(c.head)
    out: dict[str, Any] = {
        "classes": list(c.head.classes),
        "ordinal": c.head.ordinal,
        "n": len(t),
        "patients": len(set(c.patients)),
        "support": np.bincount(t, minlength=k).tolist() if len(t) else [0] * k,
    }
    if not len(t):
        return out
    pr = np.asarray(c.probs, dtype=float)
    raw = uncalibrated(pr, c.head.temperature)
    out.update(_decision_metrics(t, p, c, k, w, n_boot, seed))
    if c.y_balanced and all(b is not None for b in c.y_balanced):
        out["balanced_grade"] = _decision_metrics(t, np.asarray(c.y_balanced, dtype=int), c, k, w, n_boot, seed)
    out["ece"] = {
        "calibrated": rounded(expected_calibration_error(pr, t)),
        "uncalibrated": rounded(expected_calibration_error(raw, t)),
        "temperature": c.head.temperature,
        "bins": 10,
    }
    return out


def _decision_metrics(
    t: np.ndarray, p: np.ndarray, c: Collected, k: int, w: KappaWeights, n_boot: int, seed: int
) -> dict[str, Any]:
    """Accuracy, balanced accuracy and κ (patient-bootstrap intervals) and the confusion matrix of one decision."""

    def ba(idx: np.ndarray) -> float:
        return balanced_accuracy(t[idx], p[idx], k)

    def kap(idx: np.ndarray) -> float:
        return cohen_kappa(t[idx], p[idx], k, w)

    def acc(idx: np.ndarray) -> float:
        return float(np.mean(t[idx] == p[idx]))

    out: dict[str, Any] = {}
    all_idx = np.arange(len(t))
    for name, fn in (("accuracy", acc), ("balanced_accuracy", ba), ("kappa", kap)):
        lo, hi = bootstrap_ci(fn, c.patients, n_boot=n_boot, seed=seed)
        out[name] = {"value": rounded(fn(all_idx)), "ci95": [rounded(lo), rounded(hi)]}
    out["kappa"]["weights"] = w
    out["confusion_matrix"] = {
        "rows": "reference",
        "columns": "prediction",
        "matrix": confusion_matrix(t, p, k).tolist(),
    }
    return out


def uncalibrated(p: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities before temperature scaling: softmax(T · log p) inverts softmax(z / T)."""
    z = temperature * np.log(np.clip(p, 1e-12, 1.0))
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def rounded(x: float) -> float | None:
    """A metric as stored in reports and cards: 4 decimals, ``None`` when undefined (NaN)."""
    return None if not np.isfinite(x) else round(float(x), 4)


def format_percent(x: float | None) -> str:
    """A fraction as a percentage, 6 characters wide (``n/a`` for a missing value)."""
    return "   n/a" if x is None else f"{100 * x:5.1f}%"


def format_float(x: float | None) -> str:
    """A metric with two decimals, 5 characters wide (``n/a`` for a missing value)."""
    return "  n/a" if x is None else f"{x:5.2f}"
