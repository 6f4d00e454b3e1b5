"""How the grader's accuracy grows with the number of training patients (train split only; val is never read).

Usage::

    .venv/bin/python scripts/grading_learning_curve.py --data ../shared/data --fractions 0.25 0.5 1.0 --json lc.json

The SPIDER train patients are split into the same 5 patient folds as ``openspine train grader`` uses for its
stacker (seed 0). For each fraction and each fold, the grader network (the shipped recipe: ``TrainConfig()``
defaults, seed 0) is trained on that fraction of the other folds' patients (a seeded random subset) and predicts the
held-out fold; a class-balanced logistic regression on the measured disc features alone is fitted on the same
patients. Balanced accuracy and κ (linear weights for ordinal gradings) are scored on the held-out lumbar discs
(T12-L1 … L5-S1) of all folds together. Fraction 1.0 is the network-alone cross-validation in the grader card.

About 5.5 minutes per network training at fraction 1.0 on 2 CPU cores (5 per fraction), less for smaller
fractions: 49 minutes for 0.25, 0.5 and 1.0 together. ``--work DIR`` keeps the detector's disc positions between runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--heads", default="pfirrmann,narrowing,bulging", help="gradings to report (comma-separated)")
    p.add_argument("--work", type=Path, default=Path("learning-curve-work"), help="detections cache folder")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from openspine.grading.heads import BUILTIN_HEADS
    from openspine.levels import LUMBAR_DISCS
    from openspine.training import grader_network as engine
    from openspine.training import stacking
    from openspine.training.datasets.discs import located_samples
    from openspine.training.datasets.spider import read_spider
    from openspine.training.metrics import score

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    cases = read_spider(args.data, ("train",))
    samples = located_samples(
        ((c.patient, c.image) for c in cases),
        {c.patient: c.labels for c in cases},
        {h.name: h.classes for h in BUILTIN_HEADS},
        args.work / "detections.json",
    ).samples
    heads = list(BUILTIN_HEADS)
    report_heads = [h for h in heads if h.name in args.heads.split(",")]
    folds = stacking.patient_folds([s.case for s in samples], args.folds, 0)
    features = stacking.sample_features(samples)
    lumbar = np.array([s.level in LUMBAR_DISCS for s in samples])
    y = {h.name: np.array([s.labels.get(h.name, -1) for s in samples]) for h in heads}

    results = []
    for frac in args.fractions:
        t0 = time.perf_counter()
        net_logits = {h.name: np.zeros((len(samples), len(h.classes))) for h in report_heads}
        feat_scores = {h.name: np.zeros((len(samples), len(h.classes))) for h in report_heads}
        n_patients = []
        for f in range(args.folds):
            pool = sorted({s.case for s, g in zip(samples, folds) if g != f})
            keep = set(np.random.default_rng(100 + f).permutation(pool)[: max(2, round(frac * len(pool)))])
            n_patients.append(len(keep))
            train_idx = [i for i, s in enumerate(samples) if folds[i] != f and s.case in keep]
            test_idx = np.nonzero(folds == f)[0]
            net = engine.fresh_network(heads, 0)
            engine.train(net, [samples[i] for i in train_idx], heads, engine.TrainConfig(seed=0))
            lg = engine.predict_logits(net, [samples[i] for i in test_idx])
            for h in report_heads:
                net_logits[h.name][test_idx] = lg[h.name]
                yt = y[h.name][train_idx]
                ok = yt >= 0
                feat_fit = stacking.fit_head(features[train_idx][ok], yt[ok], len(h.classes), 0.03)
                feat_scores[h.name][test_idx] = feat_fit.balanced(np.zeros((len(test_idx), 0)), features[test_idx])
            print(
                f"fraction {frac}: fold {f + 1}/{args.folds} ({len(keep)} patients) done", file=sys.stderr, flush=True
            )
        row = {"fraction": frac, "patients_per_fold": n_patients, "minutes": round((time.perf_counter() - t0) / 60, 1)}
        for h in report_heads:
            m = lumbar & (y[h.name] >= 0)
            for name, s in (("network", net_logits[h.name]), ("features", feat_scores[h.name])):
                row[f"{h.name}_{name}"] = score(y[h.name][m], s.argmax(1)[m], h)
        results.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
