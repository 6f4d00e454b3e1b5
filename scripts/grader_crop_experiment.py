"""Experiments on the grader's disc crop, run through ``openspine train grader-t1t2``'s cross-validation on train.

* ``--band LO HI``: the intensity reference that every crop and disc feature is divided by is sampled from ``LO`` to
  ``HI`` × the disc width beyond the disc's mid-height instead of the shipped 0.10–0.40
  (:func:`openspine.grading.crop.body_reference`). The shipped band covers the endplate marrow, where Modic change lies,
  so a bright (type 2) band also raises the reference; 0.45–0.80 samples the middle of the bodies.
* ``--height-factor F --height PX``: the crop spans ``F`` × the disc width vertically (shipped 1.0, 48 px) and so shows
  more of the marrow above and below the disc.

Everything after ``--`` goes to ``openspine train grader-t1t2``; the figures land in ``WORK/cross-validation.json`` as
for that command (docs/grading.md). Val is not used::

    python scripts/grader_crop_experiment.py --band 0.45 0.80 -- --data ../shared/data --out runs/mid --work runs/mid-w
    python scripts/grader_crop_experiment.py --height-factor 1.6 --height 64 -- --data ../shared/data --out runs/tall \
        --work runs/tall-w
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

import numpy as np

import openspine.grading.crop as crop
import openspine.grading.features as features
import openspine.training.paired as paired
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
    argv = sys.argv[1:]
    rest = argv[argv.index("--") + 1 :] if "--" in argv else []
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--band", nargs=2, type=float, metavar=("LO", "HI"))
    ap.add_argument("--height-factor", type=float)
    ap.add_argument("--height", type=int)
    args = ap.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.band:
        crop.body_reference = features.body_reference = band_reference(*args.band)  # type: ignore[assignment]
    if args.height_factor or args.height:
        shape = {k: v for k, v in (("height_factor", args.height_factor), ("height", args.height)) if v}
        paired.CropSpec = functools.partial(crop.CropSpec, **shape)  # type: ignore[misc,assignment]
    sys.argv = ["openspine", "train", "grader-t1t2", *rest]
    sys.exit(main())
