"""Fit the grader's stacker (:mod:`openspine.grading.stacker`) on the training patients only.

1. The network is trained K times, each time without one fold of patients, and predicts that fold: every training
   disc gets logits from a network that never saw it (out-of-fold).
2. Per head, a class-balanced multinomial logistic regression over [out-of-fold logits, disc features] (plus the
   log of the training class frequencies, for its probabilities) is cross-validated on the same folds against the
   network alone (balanced accuracy on the lumbar discs, as ``openspine evaluate grading`` measures); the head
   keeps its stacker only where it wins.
3. The kept stackers are refitted on all training discs.

No val disc is used at any step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._logging import get_logger
from ..grading.heads import HeadSpec
from ..grading.stacker import HeadStacker, Stacker
from ..levels import LUMBAR_DISCS
from .metrics import score

log = get_logger("training.stacking")

MIN_GAIN = 0.005  # balanced accuracy a stacker must add in cross-validation to be kept


def patient_folds(cases: Sequence[str], k: int, seed: int) -> NDArray[np.int64]:
    """Fold index (0 … k-1) per sample; all samples of one patient share a fold."""
    uniq = sorted(set(cases))
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold_of = {uniq[j]: i % k for i, j in enumerate(order)}
    return np.array([fold_of[c] for c in cases], dtype=np.int64)


def fit_logistic(
    x: NDArray[np.floating],
    y: NDArray[np.integer],
    n_classes: int,
    c: float,
    weights: NDArray[np.floating] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Multinomial logistic regression with an L2 penalty ||W||² / (2c) on the weighted, summed loss (deterministic
    L-BFGS); returns coef (D, K) and intercept (K,). ``weights`` per sample; default: class-balanced."""
    import torch
    import torch.nn.functional as F

    if weights is None:
        counts = np.bincount(y, minlength=n_classes).astype(float)
        present = np.count_nonzero(counts)
        weights = np.where(counts > 0, len(y) / (present * np.maximum(counts, 1)), 0.0)[y]
    xt = torch.tensor(np.asarray(x, float), dtype=torch.float64)
    yt = torch.tensor(np.asarray(y, np.int64))
    wt = torch.tensor(np.asarray(weights, float), dtype=torch.float64)
    coef = torch.zeros(xt.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [coef, bias], lr=1.0, max_iter=500, tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        ce = F.cross_entropy(xt @ coef + bias, yt, reduction="none")
        loss = (wt * ce).sum() + (coef**2).sum() / (2 * c)
        loss.backward()
        return loss

    opt.step(closure)
    return coef.detach().numpy(), bias.detach().numpy()


def fit_head(x: NDArray[np.float64], y: NDArray[np.int64], n_classes: int, c: float) -> HeadStacker:
    """Standardise ``x`` (columns: logits then features) and fit :func:`fit_logistic` on it, as one head's stacker."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    coef, intercept = fit_logistic((x - mean) / scale, y, n_classes, c)
    counts = np.bincount(y, minlength=n_classes) + 0.5  # a class absent from training keeps a small prior
    return HeadStacker(mean=mean, scale=scale, coef=coef, intercept=intercept, log_prior=np.log(counts / counts.sum()))


def fit_stacker(
    heads: Sequence[HeadSpec],
    oof_logits: Mapping[str, NDArray[np.floating]],
    features: NDArray[np.floating],
    samples: Sequence[Any],
    folds: NDArray[np.int64],
    c: float = 0.03,
) -> tuple[Stacker, dict[str, Any]]:
    """Cross-validate and fit a stacker per head (see the module docstring); returns it and a report per head."""
    lumbar = np.array([s.level in LUMBAR_DISCS for s in samples])
    kept: dict[str, HeadStacker] = {}
    report: dict[str, Any] = {}
    for h in heads:
        y_all = np.array([s.labels.get(h.name, -1) for s in samples], dtype=np.int64)
        lab = y_all >= 0
        if lab.sum() < 20 or len(np.unique(y_all[lab])) < 2:
            report[h.name] = {"kept": False, "note": "too few labels"}
            continue
        x = np.hstack([np.asarray(oof_logits[h.name], float), np.asarray(features, float)])
        stacked = np.zeros(len(y_all), dtype=np.int64)
        for f in np.unique(folds):
            tr, te = lab & (folds != f), folds == f
            stacked[te] = (
                fit_head(x[tr], y_all[tr], len(h.classes), c)
                .balanced(x[te, : len(h.classes)], x[te, len(h.classes) :])
                .argmax(axis=1)
            )
        m = lab & lumbar
        net_only = score(y_all[m], np.asarray(oof_logits[h.name])[m].argmax(axis=1), h)
        with_stacker = score(y_all[m], stacked[m], h)
        keep = with_stacker["balanced_accuracy"] >= net_only["balanced_accuracy"] + MIN_GAIN
        report[h.name] = {
            "kept": bool(keep),
            "discs": int(m.sum()),
            "cv_network_only": net_only,
            "cv_with_stacker": with_stacker,
        }
        log.info(
            "stacker %s: network %s, stacked %s -> %s", h.name, net_only, with_stacker, "kept" if keep else "dropped"
        )
        if keep:
            kept[h.name] = fit_head(x[lab], y_all[lab], len(h.classes), c)
    return Stacker(heads=kept), report


def sample_features(samples: Sequence[Any]) -> NDArray[np.float64]:
    """Disc features (:mod:`openspine.grading.features`) of training samples, as grading computes them."""
    from ..grading.features import FEATURE_NAMES, features_for_discs

    rows = [features_for_discs(s.array, [s.geometry], s.spacing, [s.level])[0] for s in samples]
    return np.stack(rows) if rows else np.zeros((0, len(FEATURE_NAMES)))


def save_out_of_fold(
    path: Path,
    heads: Sequence[HeadSpec],
    oof_logits: Mapping[str, NDArray[np.floating]],
    features: NDArray[np.floating],
    samples: Sequence[Any],
    folds: NDArray[np.int64],
) -> None:
    """Write what the stacker was fitted on (out-of-fold logits, features, labels, folds, cases, levels) as one
    ``.npz``, so stacker choices can be re-examined without training the networks again."""
    arrays: dict[str, Any] = {f"logits_{h.name}": np.asarray(oof_logits[h.name]) for h in heads}
    arrays |= {f"labels_{h.name}": np.array([s.labels.get(h.name, -1) for s in samples]) for h in heads}
    arrays |= {
        "features": np.asarray(features),
        "folds": np.asarray(folds),
        "cases": np.array([str(s.case) for s in samples]),
        "levels": np.array([s.level.value for s in samples]),
    }
    np.savez_compressed(path, **arrays)


def out_of_fold_logits(
    samples: Sequence[Any],
    folds: NDArray[np.int64],
    train_fold: Callable[[Sequence[Any], int], Callable[[Sequence[Any]], Mapping[str, NDArray[np.floating]]]],
) -> dict[str, NDArray[np.float32]]:
    """Logits of every sample from a network trained without its fold.

    ``train_fold(train_samples, fold)`` trains a network and returns its prediction function.
    """
    out: dict[str, NDArray[np.float32]] = {}
    for f in np.unique(folds):
        test = [s for s, g in zip(samples, folds) if g == f]
        predict = train_fold([s for s, g in zip(samples, folds) if g != f], int(f))
        for name, z in predict(test).items():
            if name not in out:
                out[name] = np.zeros((len(samples), np.asarray(z).shape[1]), np.float32)
            out[name][folds == f] = z
    return out
