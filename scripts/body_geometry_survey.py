"""How far apart the labelled vertebral bodies lie, and which bodies lie off the column, on every shared real scan.

Runs ``openspine.analyze`` on every item of ``index.csv`` and every SPIDER T1 slice (``spider/t1.csv``), both splits,
and prints per scan the median distance between the centres of consecutive labelled bodies (the figure that
``openspine.scope.body_spacing_reason`` bounds) and the bodies the detection set aside as off the column
(``openspine.detection.decode.drop_off_column``), then the range of the medians over all scans.

    python scripts/body_geometry_survey.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

import openspine
from openspine.detection import decode, records
from openspine.scope import MAX_BODY_SPACING_MM, MIN_BODY_SPACING_MM, body_spacing_mm


def scans(data: Path) -> list[tuple[str, Path]]:
    """Every image of the shared data: the index's items and the SPIDER T1 slices."""
    with (data / "index.csv").open(newline="") as f:
        items = [(r["id"], data / r["path"] / r["image"]) for r in csv.DictReader(f)]
    t1 = sorted((data / "spider").glob("*/t1.nii.gz"), key=lambda p: int(p.parent.name))
    return items + [(f"spider-{p.parent.name}-t1", p) for p in t1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder (with index.csv)")
    args = ap.parse_args(argv)
    logging.disable(logging.WARNING)
    dropped: list[Any] = []
    keep = decode.drop_off_column

    def counting(groups: list[decode.Group], spacing: float) -> list[decode.Group]:
        out = keep(groups, spacing)
        gone = [g for g in groups if not any(g is o for o in out)]
        dropped.extend((round(g.score, 3), [round(float(x) * spacing) for x in g.centroid]) for g in gone)
        return out

    records._decode.drop_off_column = counting  # type: ignore[attr-defined]
    medians: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    for item, path in scans(args.data):
        before = len(dropped)
        result = openspine.analyze(path)
        gap = body_spacing_mm(result.vertebrae)
        off = dropped[before:]
        if gap is not None:
            medians.append((gap, item))
        off_text = f"; off the column: {off}" if off else ""
        print(f"{item}: {'-' if gap is None else f'{gap:.1f}'} mm{off_text}", flush=True)
    medians.sort()
    values = np.array([m for m, _ in medians])
    print(
        f"\n{len(medians)} scans with labelled neighbours ({time.perf_counter() - t0:.0f} s): median spacing "
        f"{values.min():.1f} ({medians[0][1]}) to {values.max():.1f} mm ({medians[-1][1]}); bounds used "
        f"{MIN_BODY_SPACING_MM:g}-{MAX_BODY_SPACING_MM:g} mm; bodies set aside as off the column: {len(dropped)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
