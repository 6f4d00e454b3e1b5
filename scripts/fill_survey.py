"""Discs whose corners lie in an image's blank fill: as stored, resliced, and cut to black by a display window.

For every scan of a split (the items of index.csv and the SPIDER T1 slices), analyses the scan as stored and turned
by ±``--angle`` degrees in its sagittal plane on the same grid (linear interpolation, zero fill: what reslicing an
oblique acquisition leaves in the corners), and counts per data set the discs graded and the discs not graded
because a corner lies in the blank fill (:func:`openspine.grading.crop.check_corners_on_image`). Also with every
value below the 30th and 60th percentile raised to it, and with the tissue below its 20th or 35th percentile set to
black: windows that cut dark tissue to the lowest value, where the rule could fire falsely. Prints one line per data
set and variant, and names the scans where a disc was not graded for it in a variant other than the reslice.

    python scripts/fill_survey.py --data ../shared/data --split val
"""

from __future__ import annotations

import sys

import numpy as np
from _survey import split_scans, survey_parser  # scripts/_survey.py

NO_DATA = "flat black area reaching the image's edge"


def _turned(scan, degrees: float):  # type: ignore[no-untyped-def]
    """The scan with its sagittal planes turned by ``degrees`` on the same grid, zero outside the turned image."""
    from scipy import ndimage

    from openspine.scan import Scan

    view = scan.to_sagittal().scan
    arr = np.asarray(view.array, dtype=np.float32)
    arr = arr - min(float(arr.min()), 0.0)  # zero is the fill: keep the image at or above it
    out = ndimage.rotate(arr, degrees, axes=(0, 1), reshape=False, order=1, mode="constant", cval=0.0)
    return Scan(np.clip(out, 0, None), view.affine)


def _dark_clipped(scan, percentile: float):  # type: ignore[no-untyped-def]
    """The scan with everything below its ``percentile`` set to that value (a display window that clips the dark
    tissue: large areas at the lowest value that are not blank fill, the rule's false alarms)."""
    from openspine.scan import Scan

    arr = np.asarray(scan.array, dtype=np.float32)
    return Scan(np.maximum(arr, np.float32(np.percentile(arr, percentile))), scan.affine)


def _tissue_cut(scan, percentile: float):  # type: ignore[no-untyped-def]
    """The scan with everything below its tissue's ``percentile`` (of the values above 8 % of its 99th percentile) set
    to zero: a window that cuts the dark tissue in front of the spine to black while the rest keeps its values."""
    from openspine.scan import Scan

    arr = np.asarray(scan.array, dtype=np.float32)
    arr = arr - float(arr.min())
    tissue = arr[arr > 0.08 * float(np.percentile(arr, 99))]
    cut = float(np.percentile(tissue, percentile)) if tissue.size else 0.0
    return Scan(np.where(arr < cut, np.float32(0.0), arr), scan.affine)


def _count(result) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(discs graded, discs not graded because a corner lies in the blank fill)."""
    graded = filled = 0
    for disc in result.discs:
        notes = [g.note or "" for g in disc.grades.values()] + [disc.note or ""]
        if any(NO_DATA in n for n in notes):
            filled += 1
        elif any(g.available for g in disc.grades.values()):
            graded += 1
    return graded, filled


def main(argv: list[str] | None = None) -> int:
    import openspine
    from openspine.errors import OpenSpineError
    from openspine.io import load_scan

    ap = survey_parser(__doc__)
    ap.add_argument("--angle", type=float, default=20.0, help="degrees the sagittal planes are turned (both ways)")
    args = ap.parse_args(argv)
    table: dict[tuple[str, str], list[int]] = {}
    named: list[str] = []
    for name, path in split_scans(args.data, args.split):
        scan = load_scan(path)
        variants = {"as stored": scan}
        variants.update({f"turned {a:+.0f}°": _turned(scan, a) for a in (args.angle, -args.angle)})
        variants.update({f"dark cut p{p:.0f}": _dark_clipped(scan, p) for p in (30.0, 60.0)})
        variants.update({f"tissue cut p{p:.0f}": _tissue_cut(scan, p) for p in (20.0, 35.0)})
        for variant, s in variants.items():
            try:
                result = openspine.analyze(s, t1=None)
            except OpenSpineError:
                continue
            graded, filled = _count(result)
            row = table.setdefault((name, variant), [0, 0, 0])
            row[0], row[1], row[2] = row[0] + 1, row[1] + graded, row[2] + filled
            if filled and not variant.startswith("turned"):  # every variant but the reslice
                named.append(str(path))
    print(f"split {args.split}: discs graded / not graded for a corner in the blank fill")
    for (name, variant), (n, graded, filled) in sorted(table.items()):
        print(f"{name:14s} {variant:12s} {n:4d} scans  {graded:5d} graded  {filled:4d} in the fill")
    print("as stored, dark cut or tissue cut, a disc in the fill:", ", ".join(named) if named else "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
