"""Does the T1 slice's marrow signal next to the endplates tell Modic change and endplate defects? (train only)

Modic change is defined by the marrow signal next to the endplates on T1 and T2 (type 1: T1 dark / T2 bright,
type 2: T1 bright, type 3: both dark). The two-series grader's network found no gain from the T1 crop
(docs/grading.md); this asks the question with measured numbers instead of a network: for each graded disc of the
SPIDER train patients that have a T1 slice (discs paired by detected level, as ``openspine train grader-t1t2``
pairs them), the marrow band just beyond each endplate is compared with the middle of the same vertebral body, on
the T2 slice and on the T1 slice. A class-balanced logistic regression, 5-fold cross-validated by patient, is fitted
on the T2 disc features (the grader's stacker features), with and without these marrow features of T2, and of T2
and T1; the balanced accuracy on the lumbar discs is printed per head.

    python scripts/t1_marrow_experiment.py --data ../shared/data --cache runs/t1t2-work/paired-detections.json

Val is never read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openspine.detection.types import DiscGeometry
from openspine.errors import GeometryError
from openspine.grading.crop import disc_frame, sample_plane
from openspine.grading.features import features_for_discs
from openspine.levels import LUMBAR_DISCS
from openspine.training.metrics import balanced_accuracy
from openspine.training.paired import paired_samples
from openspine.training.stacking import fit_head, patient_folds

HEADS = ("marrow_change", "endplate_defect_upper", "endplate_defect_lower")
MARROW_NAMES = tuple(
    f"{body}_{what}"
    for body in ("upper_body", "lower_body")
    for what in ("band_over_centre", "band_p90", "band_p10", "anterior_over_centre", "posterior_over_centre")
)


def marrow_features(plane: NDArray[Any], geometry: DiscGeometry, spacing_rc: tuple[float, ...]) -> list[float]:
    """Log ratios of the marrow band beyond each endplate (3 % … 22 % of the disc width) to the middle of the same
    body (35 % … 55 %), on the disc's mid-sagittal plane."""
    pl = np.asarray(plane, np.float32)
    fr = disc_frame(geometry, (float(spacing_rc[0]), float(spacing_rc[1])))
    w, h = fr.width_mm, fr.height_mm

    def grid(u: tuple[float, float], v_mm: tuple[float, float], n_u: int = 16, n_v: int = 6) -> NDArray[np.float32]:
        a = np.linspace(u[0], u[1], n_u) * w
        d = np.linspace(v_mm[0], v_mm[1], n_v)
        aa, dd = np.meshgrid(a, d)
        x = fr.centre[0] + aa * fr.u[0] + dd * fr.v[0]
        y = fr.centre[1] + aa * fr.u[1] + dd * fr.v[1]
        return sample_plane(pl, y / spacing_rc[0], x / spacing_rc[1])

    out: list[float] = []
    for sign in (-1.0, 1.0):  # the body above (towards −v), then below
        edge = sign * h / 2

        def beyond(lo: float, hi: float, e: float = edge, s: float = sign) -> tuple[float, float]:
            a, b = e + s * lo * w, e + s * hi * w
            return (min(a, b), max(a, b))

        band = grid((-0.4, 0.4), beyond(0.03, 0.22))
        centre = float(np.median(grid((-0.3, 0.3), beyond(0.35, 0.55)))) + 1.0
        ant, post = band[:, :8], band[:, 8:]
        for value in (
            np.median(band),
            np.percentile(band, 90),
            np.percentile(band, 10),
            np.median(ant),
            np.median(post),
        ):
            out.append(float(np.log((float(value) + 1.0) / centre)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=None, help="paired detections cache (as grader-t1t2's WORK)")
    ap.add_argument("--c", type=float, default=0.03, help="L2 strength of the regression (as the stacker's)")
    args = ap.parse_args(argv)
    data = paired_samples(args.data, ("train",), args.cache)
    rows, keep = [], []
    for s in data.samples:
        t1, g1 = s.second_view, s.second_geometry
        if t1 is None or g1 is None:
            continue
        try:
            disc = features_for_discs(s.array, [s.geometry], s.spacing, [s.level])[0]
            marrow_t2 = marrow_features(s.array[:, :, s.geometry.slice_index], s.geometry, s.spacing[:2])
            marrow_t1 = marrow_features(np.asarray(t1.scan.array)[:, :, g1.slice_index], g1, t1.scan.spacing[:2])
        except GeometryError:
            continue
        rows.append((disc, marrow_t2, marrow_t1))
        keep.append(s)
    f2 = np.stack([r[0] for r in rows])
    m2 = np.array([r[1] for r in rows])
    m1 = np.array([r[2] for r in rows])
    folds = patient_folds([s.case for s in keep], 5, 0)
    lumbar = np.array([s.level in LUMBAR_DISCS for s in keep])
    print(f"{len(keep)} paired discs of {len({s.case for s in keep})} train patients ({lumbar.sum()} lumbar)")
    variants = {
        "T2 disc features": f2,
        "+ T2 marrow": np.hstack([f2, m2]),
        "+ T2 and T1 marrow": np.hstack([f2, m2, m1]),
        "T2 and T1 marrow alone": np.hstack([m2, m1]),
    }
    for head in HEADS:
        y = np.array([s.labels.get(head, -1) for s in keep])
        if head == "marrow_change":
            y = np.where(y > 0, 1, y)  # any vs none
        lab = y >= 0
        for name, x in variants.items():
            pred = np.full(len(y), -1)
            for f in range(5):
                tr, te = lab & (folds != f), folds == f
                empty = np.zeros((int(te.sum()), 0))
                st = fit_head(x[tr], y[tr], 2, args.c)
                pred[te] = st.balanced(empty, x[te]).argmax(axis=1)
            m = lab & lumbar
            print(f"{head:24s} {name:24s} balanced accuracy {100 * balanced_accuracy(y[m], pred[m], 2):.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
