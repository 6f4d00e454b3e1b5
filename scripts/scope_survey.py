"""What the analysis takes every shared real scan to be, and what it withholds or refuses.

Runs ``openspine.analyze`` on every item of ``index.csv`` and every SPIDER T1 slice (``spider/t1.csv``) and counts,
per data set and split: the recognised sequence against the known one, scans refused as out of scope, cervical
fields of view, scans with withheld labels or grades. A lumbar T2 scan refused or ungraded here is a false alarm
of the scope rules; a T1 slice graded here is a miss.

    python scripts/scope_survey.py --data ../shared/data [--split val] [--out survey.csv]
    python scripts/scope_survey.py --data ../shared/data --pictures     # the SPIDER slices as PNG pictures
    python scripts/scope_survey.py --data ../shared/data --header truth     # as if a DICOM header named the sequence
    python scripts/scope_survey.py --data ../shared/data --header swapped   # … named T1 for T2 and T2 for T1
    python scripts/scope_survey.py --data ../shared/data --header t2        # … named T2 whatever the scan is
    python scripts/scope_survey.py --data ../shared/data --header swapped --tilt 15   # … each scan tilted 15°

``--header`` gives every T1 and T2 scan the header word (``ScanSource.sequence_hint``) its DICOM series would carry:
the right one (a header set aside here is a false alarm of ``scope.check_named_sequence``) or the other one (a T1
scan graded here is a header error that got through). ``--header t2`` describes every scan as T2, the water-fat
and mixed-sequence volumes too (a series exported as "T2_TSE_SAG" whatever it holds). ``--tilt DEG`` turns every
scan by DEG degrees in its sagittal plane first (resampled, affine kept: a spine imaged at a slant), which makes the
image's sequence call less sure; the image's reading of each scan is printed per group as quartiles.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import openspine


def _spacing(value: object) -> str:
    """One pixel size in mm (square pixels) from a meta.json value or a 'row;col' text."""
    first = value[0] if isinstance(value, list) else str(value).split(";")[0]
    return str(float(first))


def picture_items(data: Path, split: str | None) -> list[dict[str, str]]:
    """The SPIDER T2 and T1 slices as the 8-bit PNG pictures, with their pixel size (no geometry in the file)."""
    rows = []
    with (data / "index.csv").open() as f:
        for r in csv.DictReader(f):
            if r["dataset"] != "spider" or (split and r["split"] != split):
                continue
            px = _spacing(json.loads((data / r["path"] / "meta.json").read_text())["pixel_spacing_mm"])
            rows.append({"id": r["id"], "path": str(data / r["path"] / "image.png"), "group": "spider-t2-png",
                         "truth": "T2", "split": r["split"], "pixel_mm": px})  # fmt: skip
    with (data / "spider" / "t1.csv").open() as f:
        for r in csv.DictReader(f):
            if split and r["split"] != split:
                continue
            rows.append({"id": r["id"], "path": str(data / r["path"] / r["png"]), "group": "spider-t1-png",
                         "truth": "T1", "split": r["split"], "pixel_mm": _spacing(r["pixel_spacing_mm"])})  # fmt: skip
    return rows


def items(data: Path, split: str | None) -> list[dict[str, str]]:
    rows = []
    with (data / "index.csv").open() as f:
        for r in csv.DictReader(f):
            if split and r["split"] != split:
                continue
            seq = "T2" if r["dataset"] == "spider" else r.get("sequence", "")
            path = str(data / r["path"] / r["image"].split(";")[0])
            group = f"{r['dataset']}-{r.get('subset') or ''}".rstrip("-")
            rows.append({"id": r["id"], "path": path, "group": group, "truth": seq, "split": r["split"]})
    with (data / "spider" / "t1.csv").open() as f:
        for r in csv.DictReader(f):
            if split and r["split"] != split:
                continue
            rows.append({"id": r["id"], "path": str(data / r["path"] / r["image"]), "group": "spider-t1",
                         "truth": "T1", "split": r["split"]})  # fmt: skip
    return rows


SWAPPED = {"T1": "T2", "T2": "T1"}


def tilted(scan: Any, degrees: float) -> Any:
    """``scan`` turned by ``degrees`` in its sagittal plane (resampled about the middle, affine kept)."""
    import numpy as np
    from scipy import ndimage

    from openspine import geometry

    codes = geometry.axcodes(scan.affine)
    axes = tuple(next(i for i, c in enumerate(codes) if c in pair) for pair in ("SI", "AP"))
    array = ndimage.rotate(np.asarray(scan.array, np.float32), degrees, axes=axes, reshape=False, order=1)
    return replace(scan, array=array)


def survey(row: dict[str, str], header: str | None = None, tilt: float = 0.0) -> dict[str, Any]:
    px = float(row["pixel_mm"]) if row.get("pixel_mm") else None
    source: Any = row["path"]
    if tilt or header == "t2" or (header and row["truth"] in SWAPPED):
        scan = openspine.load_scan(row["path"], pixel_spacing=(px, px) if px else None)
        source = tilted(scan, tilt) if tilt else scan
    if header == "t2" or (header and row["truth"] in SWAPPED):
        said = "T2" if header == "t2" else row["truth"] if header == "truth" else SWAPPED[row["truth"]]
        source = replace(source, source=replace(source.source, sequence_hint=said))
    r = openspine.analyze(source, pixel_spacing=(px, px) if px and isinstance(source, str) else None)
    levels = {d.level.value for d in r.discs if d.level is not None}
    seq = r.input.sequence or {}
    fov = r.input.field_of_view or {}
    graded = [g for d in r.discs for g in d.grades.values() if g.available]
    withheld_grades = any((g.note or "").startswith("withheld") for d in r.discs for g in d.grades.values())
    return {
        **row,
        "sequence": seq.get("value") or "",
        "sequence_source": seq.get("source") or "",
        "image_reading": _reading(seq),
        "csf_over_body": seq.get("csf_over_body", ""),
        "header_set_aside": seq.get("contradicted_by") == "image",
        "all_bodies_unsure": bool(r.vertebrae) and all(v.score < 0.25 for v in r.vertebrae),
        "field_of_view": fov.get("value", ""),
        "out_of_scope": r.out_of_scope or "",
        "vertebrae": len(r.vertebrae),
        "unlabelled": sum(v.label is None for v in r.vertebrae),
        "graded_discs": len({id(d) for d in r.discs if any(g.available for g in d.grades.values())}),
        "grades": len(graded),
        "grades_withheld": withheld_grades,
        "lumbar_discs_complete": {"L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"} <= levels,
        "flags": " | ".join(r.flags),
    }


def _reading(seq: dict[str, Any]) -> str:
    """The image recogniser's call as ``T1 0.83`` (whichever source decided the sequence), or ''."""
    reading = seq.get("image_reading") or seq.get("image_disagrees")
    if reading:
        return f"{reading['value']} {reading['probability']:.2f}"
    if seq.get("source") == "image":
        value = seq.get("value") or seq.get("best_guess")
        return f"{value} {seq.get('probability', 0):.2f}" if value else ""
    return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--split", default=None, choices=("train", "val"), help="one split (default: both)")
    ap.add_argument("--out", type=Path, default=None, help="CSV with one row per scan")
    ap.add_argument("--pictures", action="store_true", help="the SPIDER slices as PNG pictures instead (no geometry)")
    ap.add_argument(
        "--header",
        choices=("truth", "swapped", "t2"),
        default=None,
        help="give each T1/T2 scan the header word its DICOM series would carry: right, or swapped; or every scan T2",
    )
    ap.add_argument("--tilt", type=float, default=0.0, help="turn each scan by this many degrees in its sagittal plane")
    args = ap.parse_args(argv)
    logging.getLogger("openspine").setLevel(logging.ERROR)
    rows, t0 = [], time.perf_counter()
    for row in (picture_items if args.pictures else items)(args.data, args.split):
        rows.append(survey(row, args.header, args.tilt))
    if args.out:
        with args.out.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[r["group"]].append(r)
    print(f"{len(rows)} scans in {time.perf_counter() - t0:.0f} s (columns: scans; 'graded' = with any grade)")
    print(f"{'group':22s} {'n':>4s}  {'sequence called':28s} {'out of scope':>12s} {'cervical':>8s} "
          f"{'unlabelled':>10s} {'grades withheld':>15s} {'graded':>6s} {'L1-L2…L5-S1':>11s} "
          f"{'header set aside':>16s} {'all bodies < 0.25':>17s}")  # fmt: skip
    for group, rs in sorted(by.items()):
        seqs = Counter(r["sequence"] or "unknown" for r in rs)
        print(
            f"{group:22s} {len(rs):>4d}  {', '.join(f'{k} {v}' for k, v in seqs.most_common()):28s} "
            f"{sum(bool(r['out_of_scope']) for r in rs):>12d} {sum('cervical' in r['field_of_view'] for r in rs):>8d} "
            f"{sum(r['unlabelled'] > 0 for r in rs):>10d} {sum(bool(r['grades_withheld']) for r in rs):>15d} "
            f"{sum(r['grades'] > 0 for r in rs):>6d} {sum(r['lumbar_discs_complete'] for r in rs):>11d} "
            f"{sum(r['header_set_aside'] for r in rs):>16d} {sum(r['all_bodies_unsure'] for r in rs):>17d}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
