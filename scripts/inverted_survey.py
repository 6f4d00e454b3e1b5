"""Negatives and masks: the two content rules that keep an image from being graded, on every shared scan.

For each scan of the split (SPIDER T2 and T1 slices, FastCleverSeg and SCT volumes), whether
:func:`openspine.grading.intensity.inverted_contrast` reads it as a negative (its central slab's skewness at most
``MAX_SKEWNESS_INVERTED``, or, up to ``MAX_SKEWNESS_BRIGHT_BORDER``, edges bright where MR shows dark air), with the
skewness, for the image as stored, cropped to its central 70 % and 50 % (views with little air around the body),
windowed so that its brightest 10 or 30 % are white (a narrow display window burned into an exported picture),
framed in black and laid on a white page (a border of a quarter of its size on each side: a screenshot, a figure cut
from a paper) or in a thin white margin (3 and 6 % of its size on each side: a figure cut close), and inverted (max +
min - value, a MONOCHROME1 image read without inversion): bare, framed, cropped to its central 70 % and 50 %, and in
a white margin of 3 %; and the number of distinct intensities :func:`openspine.scope.few_values_reason` counts, for
the image and for the FastCleverSeg masks (label maps). Printed: how many real images each rule refuses (false
alarms) and how many inverted images and masks it catches.

    python scripts/inverted_survey.py --data ../shared/data --split train
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from _survey import survey_parser  # scripts/_survey.py

import openspine
from openspine import scope
from openspine.evaluation.detection import spider_t1_rows
from openspine.grading.intensity import MAX_SKEWNESS_INVERTED, intensity_skewness, inverted_contrast
from openspine.scan import Scan


def _items(data: Path, split: str) -> list[tuple[str, Path, Path | None]]:
    """(id, image, label map or None) of the split."""
    with (data / "index.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    out: list[tuple[str, Path, Path | None]] = []
    for r in rows:
        mask = r["mask"].split(";")[0] if r["dataset"] == "fastcleverseg" and r["mask"] else ""
        out.append((r["id"], data / r["path"] / r["image"].split(";")[0], data / r["path"] / mask if mask else None))
    out += [(r["id"] + "-t1", data / r["path"] / r["image"], None) for r in spider_t1_rows(data, split)]
    return out


def _crop(view_scan: Scan, share: float) -> Scan:
    arr = np.asarray(view_scan.array)
    h, w = arr.shape[:2]
    dh, dw = int(h * (1 - share) / 2), int(w * (1 - share) / 2)
    return Scan(np.ascontiguousarray(arr[dh : h - dh, dw : w - dw]), view_scan.affine)


def _padded(arr: np.ndarray, like: Scan, value: float, share: float = 0.25) -> Scan:
    """``arr`` (rows, cols, slices) inside a uniform border of ``value``, ``share`` of its size on each side: a black
    frame (a viewer's screenshot, a slide) or a white page (a figure cut from a paper)."""
    h, w = arr.shape[:2]
    out = np.full((h + 2 * int(h * share), w + 2 * int(w * share), arr.shape[2]), value, dtype=np.float32)
    out[int(h * share) : int(h * share) + h, int(w * share) : int(w * share) + w] = arr
    return Scan(out, like.affine)


def main(argv: list[str] | None = None) -> int:
    args = survey_parser(__doc__).parse_args(argv)
    reads: dict[str, list[tuple[float, bool, str]]] = {}  # kind: (skewness, read as a negative, item)

    def read(kind: str, scan: Scan, item: str) -> None:
        view = scan.to_sagittal()
        reads.setdefault(kind, []).append((intensity_skewness(view), inverted_contrast(view) is not None, item))

    refused_values: list[str] = []
    masks, masks_refused = 0, 0
    for item, image, mask in _items(args.data, args.split):
        scan = openspine.load_scan(image)
        view = scan.to_sagittal()
        arr = np.asarray(view.scan.array, dtype=np.float32)
        read("as stored", view.scan, item)
        for share in (0.7, 0.5):
            read(f"central {round(share * 100)} %", _crop(view.scan, share), item)
        for white in (10, 30):
            low, high = np.percentile(arr, [0, 100 - white])
            read(
                f"{white} % white",
                Scan(np.clip((arr - low) / max(high - low, 1e-6), 0, 1) * 255, view.scan.affine),
                item,
            )
        read("framed", _padded(arr, view.scan, arr.min()), item)
        read("on a page", _padded(arr, view.scan, arr.max()), item)
        for share in (0.03, 0.06):  # a picture cut close from a page: a thin white margin
            read(f"white margin {round(share * 100)} %", _padded(arr, view.scan, arr.max(), share), item)
        negative = Scan(arr.max() + arr.min() - arr, view.scan.affine)
        read("inverted", negative, item)
        read("inverted, framed", _padded(np.asarray(negative.array), negative, float(np.min(negative.array))), item)
        for share in (0.7, 0.5):
            read(f"inverted, central {round(share * 100)} %", _crop(negative, share), item)
        read(
            "inverted, white margin 3 %",
            _padded(np.asarray(negative.array), negative, float(np.max(negative.array)), 0.03),
            item,
        )
        if scope.few_values_reason(scan.array) is not None:
            refused_values.append(item)
        if mask is not None and mask.is_file():
            masks += 1
            masks_refused += scope.few_values_reason(openspine.load_scan(mask).array) is not None
    n = len(reads["as stored"])
    print(f"{args.split}: {n} scans; read as a negative at skewness ≤ {MAX_SKEWNESS_INVERTED}, or bright edges")
    for kind, values in reads.items():
        v = np.array([s for s, _, _ in values])
        flagged = sum(f for _, f, _ in values)
        by_skew = int((v <= MAX_SKEWNESS_INVERTED).sum())
        lowest = ", ".join(f"{s:.2f} {i}" for s, _, i in sorted(values)[:3])
        print(f"  {kind:22s} read as a negative {flagged:4d} of {n} ({by_skew} by skewness)   skewness min "
              f"{v.min():.2f} max {v.max():.2f}   lowest: {lowest}")  # fmt: skip
    print(f"  fewer than {scope.MIN_DISTINCT_VALUES} distinct intensities: images {len(refused_values)} of {n} "
          f"{refused_values or ''}; FastCleverSeg masks {masks_refused} of {masks}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
