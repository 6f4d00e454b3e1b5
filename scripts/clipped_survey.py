"""How much of the middle of each shared scan lies at its brightest value, as stored and windowed again.

For every scan of a split (the items of index.csv and the SPIDER T1 slices), prints per data set the share of the
middle of its middle sagittal slice at the slice's brightest value (:func:`openspine.grading.intensity.clipped_white`)
as stored, and for the SPIDER slices windowed again at their 90th, 80th and 70th percentile (what a display window
that clips the bright tissue leaves), with how many reach :data:`openspine.grading.intensity.MAX_AT_WHITE`, the bar
of the flag ``intensity_clipped``.

    python scripts/clipped_survey.py --data ../shared/data --split train
"""

from __future__ import annotations

import sys

import numpy as np
from _survey import split_scans, survey_parser  # scripts/_survey.py


def main(argv: list[str] | None = None) -> int:
    from openspine.grading.intensity import MAX_AT_WHITE, clipped_white
    from openspine.io import load_scan
    from openspine.scan import Scan

    args = survey_parser(__doc__).parse_args(argv)
    items = split_scans(args.data, args.split)
    windows = (90.0, 80.0, 70.0)
    table: dict[str, list[list[float]]] = {}
    for name, path in items:
        scan = load_scan(path)
        row = [clipped_white(scan.to_sagittal())]
        if name.startswith("spider"):
            for p in windows:
                bright = float(np.percentile(scan.array, p))
                clipped = np.clip(scan.array.astype(np.float32) / bright * 255.0, 0, 255).round()
                row.append(clipped_white(Scan(clipped, scan.affine).to_sagittal()))
        table.setdefault(name, []).append(row)
    print(f"share of the middle at the brightest value, split {args.split}; intensity_clipped from {MAX_AT_WHITE}")
    for name, rows in sorted(table.items()):
        v = np.asarray(rows)
        parts = [f"{name:14s} n={len(v):3d} as stored: median {np.median(v[:, 0]):.3f}, max {v[:, 0].max():.3f}"]
        for k, p in enumerate(windows, start=1) if v.shape[1] > 1 else ():
            col = v[:, k]
            flagged = int(np.sum(col >= MAX_AT_WHITE))
            parts.append(f"window at p{p:g}: p5 {np.percentile(col, 5):.3f}, median {np.median(col):.3f}, {flagged}")
        print("; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
