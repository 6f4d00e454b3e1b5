"""Modic (any vs none) from the grader's out-of-fold logits: can a stacker or the patient's other discs help?

Reads WORK/stacking-oof.npz, which ``openspine train grader --work WORK`` writes (train patients only: every disc's
logits come from a network trained without its fold). Scores, on the lumbar discs, the balanced accuracy of "any
Modic change" of:

* the network alone (the argmax of its four types, as the shipped grader reports ``grade``);
* a stacker over [logits, disc features] fitted per fold, with class weights balancing the four types (the
  stacker rule of ``openspine train grader``), balancing none against any (``group``), or as one binary regression;
* the same with the patient's other discs' mean "any" logit as one more input (Modic change clusters in patients);
* the network's "any" logit plus that patient mean, with the threshold picked on the other folds.

Each figure is "argmax of the balanced scores / argmax after adding back the class frequencies" for the stackers.
Val is not read.

    python scripts/modic_stacker_experiment.py runs/grader/work/stacking-oof.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from openspine.levels import LUMBAR_DISCS
from openspine.training.stacking import fit_logistic


def any_vs_none(y: NDArray[np.int64], pred: NDArray[np.int64]) -> float:
    """Balanced accuracy of "any change" (class > 0) against none."""
    t, p = y > 0, pred > 0
    return float(0.5 * (p[t].mean() + (~p[~t]).mean()))


def patient_mean_of_others(score: NDArray[np.float64], cases: NDArray[np.str_]) -> NDArray[np.float64]:
    """Per disc, the mean ``score`` of the other discs of its patient (0 for a patient's only disc)."""
    out = np.zeros(len(score))
    for c in np.unique(cases):
        idx = np.nonzero(cases == c)[0]
        total = score[idx].sum()
        out[idx] = (total - score[idx]) / max(len(idx) - 1, 1)
    return out


def cross_validate(
    x: NDArray[np.float64],
    y: NDArray[np.int64],
    labelled: NDArray[np.bool_],
    folds: NDArray[np.int64],
    mode: str,
    c: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Out-of-fold (balanced argmax, prior-corrected argmax) of one stacker variant."""
    balanced, probable = np.zeros(len(y), np.int64), np.zeros(len(y), np.int64)
    for f in np.unique(folds):
        tr, te = labelled & (folds != f), folds == f
        mean, std = x[tr].mean(0), x[tr].std(0)
        std = np.where(std > 1e-9, std, 1.0)
        xs_tr, xs_te, yt = (x[tr] - mean) / std, (x[te] - mean) / std, y[tr]
        if mode == "binary":
            target, k = (yt > 0).astype(np.int64), 2
            coef, bias = fit_logistic(xs_tr, target, k, c)
            counts = np.bincount(target, minlength=2).astype(float)
        elif mode == "group":
            target, k = yt, 4
            n0, n1 = (yt == 0).sum(), (yt > 0).sum()
            coef, bias = fit_logistic(xs_tr, yt, 4, c, np.where(yt == 0, len(yt) / (2 * n0), len(yt) / (2 * n1)))
            counts = np.array([n0, n1, n1, n1], float)
        else:
            target, k = yt, 4
            coef, bias = fit_logistic(xs_tr, yt, 4, c)
            counts = np.bincount(yt, minlength=4).astype(float) + 0.5
        scores = xs_te @ coef + bias
        balanced[te] = scores.argmax(1)
        probable[te] = (scores + np.log(counts + 0.5)).argmax(1)
    return balanced, probable


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("oof", type=Path, help="WORK/stacking-oof.npz of an 'openspine train grader' run")
    args = p.parse_args()
    d = np.load(args.oof)
    y = d["labels_marrow_change"].astype(np.int64)
    z = d["logits_marrow_change"].astype(float)
    features, folds, cases = d["features"].astype(float), d["folds"], d["cases"]
    lumbar = np.isin(d["levels"], [lv.value for lv in LUMBAR_DISCS])
    labelled = y >= 0
    m = labelled & lumbar
    print(f"lumbar discs {m.sum()}, Modic types {np.bincount(y[m], minlength=4).tolist()}")
    print(f"network alone (argmax of the four types): {any_vs_none(y[m], z[m].argmax(1)):.3f}")
    prob = np.exp(z - z.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    any_logit = np.log(prob[:, 1:].sum(1) + 1e-9) - np.log(prob[:, 0] + 1e-9)
    context = patient_mean_of_others(any_logit, cases)[:, None]
    for c in (0.01, 0.03, 0.1):
        row = []
        for name, x in (("stacker", np.hstack([z, features])), ("+ patient", np.hstack([z, features, context]))):
            for mode in ("four", "group", "binary"):
                bal, pro = cross_validate(x, y, labelled, folds, mode, c)
                row.append(f"{name} {mode} {any_vs_none(y[m], bal[m]):.3f}/{any_vs_none(y[m], pro[m]):.3f}")
        print(f"c={c}: " + "; ".join(row))
    for alpha in (0.0, 0.25, 0.5, 0.75, 1.0):
        s = any_logit + alpha * context[:, 0]
        pred = np.zeros(len(y), np.int64)
        for f in np.unique(folds):
            tr, te = m & (folds != f), folds == f
            grid = np.quantile(s[tr], np.linspace(0.05, 0.95, 91))
            best = max(grid, key=lambda t: any_vs_none(y[tr], (s[tr] > t).astype(np.int64)))
            pred[te] = s[te] > best
        score = any_vs_none(y[m], pred[m])
        print(f"network 'any' logit + {alpha} x patient mean, threshold from the other folds: {score:.3f}")


if __name__ == "__main__":
    main()
