"""Lines drawn across a picture: a stripe of one value from edge to edge over the SPIDER slices of a split, stored
head up and upside down, and over the cervical slices of the shared data.

Every SPIDER T2 slice of the split is analysed as a picture (its true pixel size given) plain and with one stripe
drawn across it: down a column or along a row, 4 or 8 pixels wide, at 30, 50 or 70 % of the width (height), white or
black (24 stripes). Counted per way the slice is stored: stripes whose labels and refusal match the plain picture's,
and stripes whose analysis labels and grades where the plain one does not (the head-up plain slices are all
analysed, the upside-down ones never graded), i.e. a line that made a wrong picture pass. The middle sagittal
slice of each SCT cervical volume is read the same way (its voxel size given): a stripe must leave it cervical, with
no lumbar label and no grade. (Before ``openspine.recognition.image.without_drawn_bands``, an 8-pixel white stripe
turned one of them lumbar: L2 … S1, graded.)

``--real`` instead counts, over every sagittal slice of every shared scan (both splits, the SPIDER T1 slices too),
the runs of one value that span a slice with image on both sides, and the slices the filling changes (none may).

    python scripts/stripe_survey.py --data ../shared/data --split val
    python scripts/stripe_survey.py --data ../shared/data --real
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from _survey import survey_parser  # scripts/_survey.py

import openspine
from openspine.detection.scale import with_pixel_size
from openspine.io.image2d import picture_affine
from openspine.recognition.image import MAX_FILLED_BAND_SHARE, crossed_share, inner_runs, without_drawn_bands
from openspine.scan import Scan, ScanSource
from openspine.training.datasets.volumes import read_index


def stripes(image: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """``image`` with each of the 24 stripes drawn across it, named like ``col8@0.3=255``."""
    h, w = image.shape
    white = float(image.max())
    for axis in ("col", "row"):
        for width in (4, 8):
            for share in (0.3, 0.5, 0.7):
                for value in (white, 0.0):
                    out = image.copy()
                    if axis == "col":
                        out[:, int(share * w) : int(share * w) + width] = value
                    else:
                        out[int(share * h) : int(share * h) + width] = value
                    yield f"{axis}{width}@{share}={value:g}", out


def _read(item: str, image: np.ndarray, spacing: float) -> dict[str, Any]:
    picture = Scan(np.ascontiguousarray(image)[:, :, None], picture_affine(1.0, 1.0), ScanSource(item, format="image"))
    result = openspine.analyze(with_pixel_size(picture, spacing))
    return {
        "refused": result.out_of_scope is not None,
        "labels": [v.label.value if v.label else None for v in result.vertebrae],
        "graded": any(g.get("grade") is not None for d in result.discs for g in d.to_dict()["grades"].values()),
        "lumbar": any(v.label is not None and v.label.region in ("lumbar", "sacral") for v in result.vertebrae),
    }


def real_slices(data: Path) -> int:
    """Bands of one value in the shared scans' sagittal slices, and the slices :func:`without_drawn_bands` changes."""
    paths = [data / r["path"] / r["image"] for r in read_index(data)]
    paths += sorted((data / "spider").glob("*/t1.nii.gz"))
    slices = runs = changed = 0
    most = 0.0  # the largest share of a run's length along which its sides differ from it (filled from 1/3)
    for path in paths:
        arr = np.asarray(openspine.load_scan(path).to_sagittal().scan.array, dtype=np.float32)
        for k in range(arr.shape[2]):
            image = arr[:, :, k]
            slices += 1
            bright = float(np.percentile(image, 99.5))
            for b in (image, image.T):
                found = inner_runs(b.min(axis=0) == b.max(axis=0), int(MAX_FILLED_BAND_SHARE * b.shape[1]))
                runs += len(found)
                for lo, hi in found:
                    most = max(most, crossed_share(b[:, lo - 1], b[:, hi], float(b[0, lo]), bright))
            changed += without_drawn_bands(image) is not image
    print(
        f"{slices} sagittal slices of {len(paths)} scans: {runs} runs of one value across a slice, {changed} filled; "
        f"the largest share of a run's length whose sides differ from it: {most:.3f}"
    )
    return 0


def main() -> int:
    ap = survey_parser(__doc__)
    ap.add_argument("--real", action="store_true", help="count bands in every shared scan instead")
    args = ap.parse_args()
    if args.real:
        return real_slices(args.data)
    rows = [r for r in read_index(args.data) if r["split"] == args.split and r["dataset"] == "spider"]
    tally: Counter[tuple[str, str]] = Counter()
    passed: list[str] = []
    for row in rows:
        view = openspine.load_scan(args.data / row["path"] / "image.nii.gz").to_sagittal()
        stored, spacing = np.asarray(view.scan.array, dtype=np.float32)[:, :, 0], float(view.scan.spacing[0])
        for way, image in (("head up", stored), ("upside down", stored[::-1])):
            plain = _read(row["id"], image, spacing)
            tally[(way, "plain graded")] += plain["graded"]
            for name, striped in stripes(image):
                r = _read(row["id"], striped, spacing)
                tally[(way, "stripes")] += 1
                tally[(way, "as plain")] += r["labels"] == plain["labels"] and r["refused"] == plain["refused"]
                if r["graded"] and not plain["graded"]:
                    tally[(way, "graded, the plain picture not")] += 1
                    passed.append(f"{row['id']} {way} {name}")
    print(f"{len(rows)} SPIDER {args.split} T2 slices as pictures, 24 stripes each")
    for way in ("head up", "upside down"):
        print(
            f"  {way:12s} plain graded {tally[(way, 'plain graded')]} of {len(rows)}; "
            f"stripes {tally[(way, 'stripes')]}: labels and refusal as plain {tally[(way, 'as plain')]}, "
            "graded where the plain picture is not "
            f"{tally[(way, 'graded, the plain picture not')]}"
        )
    if passed:
        print("  graded where the plain picture is not: " + "; ".join(passed))
    cervical = [r for r in read_index(args.data) if r["dataset"] == "sct" and "cervical" in r["region"]]
    for row in cervical:
        view = openspine.load_scan(args.data / row["path"] / row["image"]).to_sagittal()
        arr = np.asarray(view.scan.array, dtype=np.float32)
        mid, spacing = arr[:, :, arr.shape[2] // 2], float(view.scan.spacing[0])
        reads = [_read(row["id"], striped, spacing) for _, striped in stripes(mid)]
        lumbar = sum(r["lumbar"] for r in reads)
        graded = sum(r["graded"] for r in reads)
        print(f"{row['id']} ({row['split']}), middle slice, 24 stripes: lumbar labels {lumbar}, graded {graded}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
