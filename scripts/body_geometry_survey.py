"""How far apart the labelled vertebral bodies lie, and which bodies lie off the column, on every shared real scan.

Runs ``openspine.analyze`` on every item of ``index.csv`` and every SPIDER T1 slice (``spider/t1.csv``), both splits,
and prints per scan the median distance between the centres of consecutive labelled bodies (the figure that
``openspine.scope.body_spacing_reason`` bounds), the median depth of the bodies labelled lumbar (the figure that
``openspine.scope.body_depth_reason`` bounds), the bodies the detection set aside as off the column
(``openspine.detection.decode.drop_off_column``) and the largest fall of the network's level estimates from one body
to the next (``openspine.scope.spines_stacked`` refuses a fall of ``STACKED_DROP_LEVELS`` as two spines one above
the other), then the range of the medians and the largest fall over all scans.

``--rescaled`` instead counts the scans that, with their intensities rescaled to [-1, 1] (as for a network) or
centred on their mean, read as no MR magnitude image (``openspine.scope.signed_values_reason``: a CT or a phase
image), without analysing them.

    python scripts/body_geometry_survey.py --data ../shared/data
    python scripts/body_geometry_survey.py --data ../shared/data --rescaled
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
from openspine import scope
from openspine.detection import decode, records
from openspine.scope import (
    MAX_BODY_SPACING_MM,
    MIN_BODY_SPACING_MM,
    MIN_LUMBAR_BODY_DEPTH_MM,
    STACKED_DROP_LEVELS,
    body_spacing_mm,
    lumbar_body_depth_mm,
    signed_values_reason,
)


def scans(data: Path) -> list[tuple[str, Path]]:
    """Every image of the shared data: the index's items and the SPIDER T1 slices."""
    with (data / "index.csv").open(newline="") as f:
        items = [(r["id"], data / r["path"] / r["image"]) for r in csv.DictReader(f)]
    t1 = sorted((data / "spider").glob("*/t1.nii.gz"), key=lambda p: int(p.parent.name))
    return items + [(f"spider-{p.parent.name}-t1", p) for p in t1]


def rescaled(data: Path) -> int:
    """How many scans, rescaled to [-1, 1] or centred on their mean, would be refused as a CT or a phase image."""
    refused: dict[str, list[str]] = {"[-1, 1]": [], "mean-centred": []}
    items = scans(data)
    for item, path in items:
        a = np.asarray(openspine.load_scan(path).array, dtype=np.float64)
        ways = {"[-1, 1]": 2 * (a - a.min()) / max(float(np.ptp(a)), 1e-12) - 1, "mean-centred": a - a.mean()}
        for way, stored in ways.items():
            if signed_values_reason(stored) is not None:
                refused[way].append(item)
    for way, names in refused.items():
        print(f"{way}: {len(names)} of {len(items)} scans read as no MR magnitude image {names[:10]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder (with index.csv)")
    ap.add_argument("--rescaled", action="store_true", help="count rescaled scans read as no MR magnitude image")
    args = ap.parse_args(argv)
    logging.disable(logging.WARNING)
    if args.rescaled:
        return rescaled(args.data)
    dropped: list[Any] = []
    keep = decode.drop_off_column

    def counting(groups: list[decode.Group], spacing: float) -> list[decode.Group]:
        out = keep(groups, spacing)
        gone = [g for g in groups if not any(g is o for o in out)]
        dropped.extend((round(g.score, 3), [round(float(x) * spacing) for x in g.centroid]) for g in gone)
        return out

    records._decode.drop_off_column = counting  # type: ignore[attr-defined]
    falls: list[float] = []
    stacked = scope.spines_stacked

    def falling(estimates: Any, centres_mm: Any) -> int | None:
        p = np.asarray(estimates, dtype=float)
        falls.append(float(np.max(p[:-1] - p[1:])) if len(p) > 1 else float("-inf"))
        return stacked(estimates, centres_mm)

    scope.spines_stacked = falling  # type: ignore[assignment]
    worst: tuple[float, str] = (float("-inf"), "")
    medians: list[tuple[float, str]] = []
    depths: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    for item, path in scans(args.data):
        before, seen = len(dropped), len(falls)
        result = openspine.analyze(path)
        fall = max(falls[seen:], default=float("-inf"))
        worst = max(worst, (fall, item))
        gap = body_spacing_mm(result.vertebrae)
        depth = lumbar_body_depth_mm(result.vertebrae)
        off = dropped[before:]
        if gap is not None:
            medians.append((gap, item))
        if depth is not None:
            depths.append((depth, item))
        off_text = f"; off the column: {off}" if off else ""
        fall_text = f"; largest fall of the level estimates {fall:.2f}" if fall > float("-inf") else ""
        depth_text = f"; lumbar bodies {depth:.1f} mm deep" if depth is not None else ""
        print(f"{item}: {'-' if gap is None else f'{gap:.1f}'} mm{depth_text}{off_text}{fall_text}", flush=True)
    medians.sort()
    values = np.array([m for m, _ in medians])
    print(
        f"\n{len(medians)} scans with labelled neighbours ({time.perf_counter() - t0:.0f} s): median spacing "
        f"{values.min():.1f} ({medians[0][1]}) to {values.max():.1f} mm ({medians[-1][1]}); bounds used "
        f"{MIN_BODY_SPACING_MM:g}-{MAX_BODY_SPACING_MM:g} mm; bodies set aside as off the column: {len(dropped)}; "
        f"largest fall of the level estimates from one body to the next {worst[0]:.2f} ({worst[1]}; refused as two "
        f"spines at {STACKED_DROP_LEVELS:g})"
    )
    if depths:
        depths.sort()
        print(
            f"{len(depths)} scans with bodies labelled lumbar: their median depth {depths[0][0]:.1f} ({depths[0][1]}) "
            f"to {depths[-1][0]:.1f} mm ({depths[-1][1]}); labels withheld below {MIN_LUMBAR_BODY_DEPTH_MM:g} mm"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
