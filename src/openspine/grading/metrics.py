"""Agreement and calibration metrics for gradings (NumPy only).

* balanced accuracy – the mean recall over the classes present in the reference labels;
* Cohen's κ, unweighted or linearly / quadratically weighted (for ordered classes);
* confusion matrices (rows = reference, columns = prediction);
* patient-level bootstrap intervals (discs of one patient are resampled together: they are not independent);
* expected calibration error (top-label, equal-width bins) and temperature scaling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from ..errors import ConfigError


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


def cohen_kappa(
    y_true: ArrayLike, y_pred: ArrayLike, n_classes: int, weights: Literal["none", "linear", "quadratic"] = "none"
) -> float:
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


def fit_temperature(logits: ArrayLike, y_true: ArrayLike, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
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
