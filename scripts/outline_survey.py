"""How far the vertebral-body outlines lie from the bodies, slice by slice, and how the label map overlaps them.

For every FastCleverSeg VB2/VB3 volume of a split (body masks labelled by level), the built-in analysis runs and each
labelled body's outline on each slice is compared with the mask's section of that level on that slice: the distance
(mm) between the outline's centre and the section's centre, or "no section" where the mask has none there. The
label map (``labels.nii.gz``, :func:`openspine.render.labelmap.label_map`) is scored against the masks by Dice, body
by body. ``--min-share S`` also scores the rule tried against the outlines of the outermost side slices: a body's
outline left out where its area is below S × the area of its outline on its mid slice.

    python scripts/outline_survey.py --data ../shared/data --split train --min-share 0.5   # about 2 min
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np

import openspine
from openspine.io import load_scan
from openspine.render.labelmap import label_map
from openspine.results import AnalysisResult, SliceOutline, Vertebra

FAR_MM = 5.0


def _plane(outline: SliceOutline, spacing: tuple[float, ...]) -> tuple[np.ndarray, float, int, list[int]]:
    """The outline's centre and area in mm on its slice, the slice axis of the input array and the other two axes."""
    c = np.asarray(outline.corners_voxel, dtype=float)
    axis = int(np.argmin(np.ptp(c, axis=0)))  # the corners share their slice coordinate
    other = [a for a in range(3) if a != axis]
    q = c[:, other] * np.array([spacing[a] for a in other])
    x, y = q[:, 0], q[:, 1]
    return q.mean(axis=0), 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))), axis, other


def _kept(v: Vertebra, spacing: tuple[float, ...], share: float) -> tuple[SliceOutline, ...]:
    mid = next((o for o in v.outlines if o.slice_index == v.mid_slice), None)
    if mid is None:
        return v.outlines
    largest = _plane(mid, spacing)[1]
    return tuple(o for o in v.outlines if _plane(o, spacing)[1] >= share * largest)


def _distances(res: AnalysisResult, mask: np.ndarray, spacing: tuple[float, ...]) -> list[float]:
    """Per outline of a labelled body: mm from its centre to the mask's section on its slice (NaN: no section)."""
    out = []
    for v in res.vertebrae:
        if v.label is None:
            continue
        body = mask == v.label.label_value
        if not body.any():
            continue
        for o in v.outlines:
            centre, _, axis, other = _plane(o, spacing)
            section = np.take(body, round(o.corners_voxel[0][axis]), axis=axis)
            if not section.any():
                out.append(float("nan"))
                continue
            g = np.argwhere(section).mean(axis=0) * np.array([spacing[a] for a in other])
            out.append(float(np.linalg.norm(centre - g)))
    return out


def _dice(labels: np.ndarray, mask: np.ndarray) -> list[float]:
    return [
        2 * float(((labels == v) & (mask == v)).sum()) / float((labels == v).sum() + (mask == v).sum())
        for v in np.unique(mask)
        if 0 < v < 30 and (labels == v).any()
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--min-share", type=float, default=None, help="also score outlines kept at this area share")
    args = ap.parse_args(argv)
    with (args.data / "index.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["id"].startswith(("fcs-vb2", "fcs-vb3")) and r["split"] == args.split]
    runs = {"as shipped": 0.0, **({f"outlines below {args.min_share} of the mid one left out": args.min_share}
                                  if args.min_share else {})}  # fmt: skip
    far: dict[str, list[float]] = {k: [] for k in runs}
    dice: dict[str, list[float]] = {k: [] for k in runs}
    for r in rows:
        folder = args.data / r["path"]
        scan = load_scan(folder / r["image"])
        res = openspine.analyze(scan)
        mask = np.asarray(nib.load(str(folder / r["mask"])).dataobj)
        view = scan.to_sagittal()
        for name, share in runs.items():
            shown = res if not share else replace(
                res, vertebrae=[replace(v, outlines=_kept(v, scan.spacing, share)) for v in res.vertebrae]
            )  # fmt: skip
            far[name] += _distances(shown, mask, scan.spacing)
            dice[name] += _dice(label_map(view, shown), mask)
        print(f"{r['id']}: {len(res.vertebrae)} bodies", file=sys.stderr)
    for name in runs:
        d = np.array(far[name])
        print(
            f"{args.split}, {name}: {len(d)} outlines, median {np.nanmedian(d):.2f} mm from the mask's section, "
            f"{int((d > FAR_MM).sum())} more than {FAR_MM:g} mm off, {int(np.isnan(d).sum())} on a slice without "
            f"the body; label map mean Dice {np.mean(dice[name]):.3f} over {len(dice[name])} bodies"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
