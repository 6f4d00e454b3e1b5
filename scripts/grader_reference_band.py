"""An experiment on the grader's intensity reference: ``openspine train grader-t1t2`` with the band that every crop
and disc feature is divided by moved away from the endplates.

Shipped, :func:`openspine.grading.crop.body_reference` samples the neighbouring vertebral bodies from 10 % to 40 % of
the disc width beyond the disc's mid-height: the endplate marrow, where Modic change lies, so a bright (type 2) band
also raises the reference. This script replaces the band by ``LO``–``HI`` (e.g. 0.45–0.80: the middle of the bodies)
for the crops and the disc features, then runs the two-series trainer's cross-validation on train (val untouched)::

    python scripts/grader_reference_band.py 0.45 0.80 --data ../shared/data --out runs/ref-mid --work runs/ref-mid-work

Every argument after ``LO HI`` goes to ``openspine train grader-t1t2``; the figures land in
``WORK/cross-validation.json`` as for that command (docs/grading.md).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

import openspine.grading.crop as crop
import openspine.grading.features as features
from openspine.cli import main


def band_reference(lo: float, hi: float) -> Any:
    def body_reference(plane: Any, frame: Any, spacing_rc: tuple[float, float], floor: float = 1e-3) -> float:
        sr, sc = spacing_rc
        a = np.linspace(-0.35, 0.35, 9) * frame.width_mm
        d = frame.height_mm / 2 + np.linspace(lo, hi, 7) * frame.width_mm
        aa, dd = np.meshgrid(a, d)
        vals = []
        for sign in (-1.0, 1.0):
            x = frame.centre[0] + aa * frame.u[0] + sign * dd * frame.v[0]
            y = frame.centre[1] + aa * frame.u[1] + sign * dd * frame.v[1]
            vals.append(crop.sample_plane(plane, y / sr, x / sc))
        ref = float(np.median(np.concatenate([v.ravel() for v in vals])))
        return ref if ref > floor else float(np.percentile(plane, 95)) / 2 or 1.0

    return body_reference


if __name__ == "__main__":
    lo, hi, rest = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
    crop.body_reference = features.body_reference = band_reference(lo, hi)  # type: ignore[assignment]
    sys.argv = ["openspine", "train", "grader-t1t2", *rest]
    sys.exit(main())
