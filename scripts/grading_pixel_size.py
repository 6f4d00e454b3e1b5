"""How the Pfirrmann grades hold up as the pixels get coarser: SPIDER slices downsampled, graded against the
radiologists.

Each SPIDER T2 slice of the split is analysed as it is and downsampled (box average, then linear interpolation) to
in-plane pixels of 1.0, 1.25, 1.5, 2.0 and 3.0 mm (sizes not coarser than the slice's own are skipped). Per size it
prints the discs graded and the share whose Pfirrmann grade equals the radiologists' (exact) or is within one. The
analysis here is told to ignore the grader's pixel-size bound (``scope.max_pixel_spacing_mm`` of its card), so that
the grades past it can be measured; ``openspine analyze`` withholds them.

    python scripts/grading_pixel_size.py --data ../shared/data --split train
    python scripts/grading_pixel_size.py --data ../shared/data --split val

The grader was trained on the train slices: their figures show the trend, not the accuracy (val does).
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from pathlib import Path
from unittest import mock

import numpy as np
from scipy import ndimage

import openspine
from openspine.scan import Scan
from openspine.scope import ModelScope

SIZES_MM = (None, 1.0, 1.25, 1.5, 2.0, 3.0)  # None: the slice as it is


def downsample(scan: Scan, pixel_mm: float) -> Scan:
    """``scan`` (an (H, W, 1) slice) with in-plane pixels of ``pixel_mm``, the same field of view."""
    a = np.asarray(scan.array, dtype=np.float32)
    own = float(np.linalg.norm(scan.affine[:3, 0]))
    f = own / pixel_mm
    b = ndimage.zoom(ndimage.uniform_filter(a, size=(1 / f, 1 / f, 1)), (f, f, 1), order=1)
    aff = scan.affine.copy()
    aff[:3, 0] /= f
    aff[:3, 1] /= f
    aff[:3, 3] += (aff[:3, 0] - scan.affine[:3, 0]) / 2 + (aff[:3, 1] - scan.affine[:3, 1]) / 2  # same edges
    return Scan(b, aff, scan.source)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="val")
    args = ap.parse_args()
    logging.getLogger("openspine").setLevel(logging.ERROR)
    with (args.data / "index.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"] == "spider" and r["split"] == args.split]
    with (args.data / "spider" / "gradings.csv").open(newline="") as f:
        truth = {(g["Patient"], g["level"]): int(g["Pfirrman grade"]) for g in csv.DictReader(f)}
    counts = {s: [0, 0, 0] for s in SIZES_MM}  # discs, exact, within one
    t0 = time.time()
    with mock.patch.object(ModelScope, "why_not_pixels", lambda self, pixel_mm: None):
        for r in rows:
            patient = r["id"].split("-", 1)[1]
            scan = openspine.load_scan(args.data / r["path"] / "image.nii.gz")
            own = float(np.linalg.norm(scan.affine[:3, 0]))
            for size in SIZES_MM:
                if size is not None and size <= own * 1.05:
                    continue
                result = openspine.analyze(scan if size is None else downsample(scan, size))
                for d in result.discs:
                    g = d.grades.get("pfirrmann")
                    key = (patient, d.level.value) if d.level is not None else None
                    if g is None or not g.available or g.grade is None or key not in truth:
                        continue
                    c = counts[size]
                    c[0] += 1
                    c[1] += int(g.grade == truth[key])
                    c[2] += int(abs(g.grade - truth[key]) <= 1)
    print(f"SPIDER {args.split}: {len(rows)} T2 slices ({time.time() - t0:.0f} s)")
    print(f"{'pixels':>10} {'discs':>6} {'exact':>6} {'within 1':>9}")
    for size, (n, exact, within) in counts.items():
        name = "as is" if size is None else f"{size:g} mm"
        print(f"{name:>10} {n:>6} {exact / max(n, 1):>6.3f} {within / max(n, 1):>9.3f}")


if __name__ == "__main__":
    main()
