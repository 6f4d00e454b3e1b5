"""How much an additive intensity offset (a pedestal under the whole image) moves the Pfirrmann grades.

The grader reads crops and disc features in units of the vertebral bodies' median intensity: unchanged by any scaling
of the image, but not by an offset (``openspine.grading.intensity`` removes one only where the image cannot be raw
magnitude: negative values, or a darkest voxel above 2 % of the bright level). This adds ``f`` times each SPIDER
slice's 99.5th percentile to every voxel and counts, per offset, the Pfirrmann grades equal to those of the slice as
stored, and those equal to the radiologists' grade (``spider/gradings.csv``).

    python scripts/offset_survey.py --data ../shared/data --split val [--offsets 0.02 0.05 0.1 0.2]
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--split", default="val", choices=("train", "val"))
    ap.add_argument("--offsets", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.2])
    args = ap.parse_args(argv)
    logging.getLogger("openspine").setLevel(logging.ERROR)
    import openspine
    from openspine.levels import Grading
    from openspine.scan import Scan

    with (args.data / "index.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"] == "spider" and r["split"] == args.split]
    with (args.data / "spider" / "gradings.csv").open() as f:
        truth = {(r["Patient"], r["level"]): int(r["Pfirrman grade"]) for r in csv.DictReader(f)}
    offsets = [0.0, *args.offsets]
    same = {f: [0, 0] for f in offsets}
    right = {f: [0, 0] for f in offsets}
    for r in rows:
        scan = openspine.load_scan(args.data / r["path"] / "image.nii.gz")
        arr = np.asarray(scan.array, np.float32)
        bright = float(np.percentile(arr, 99.5))
        patient = Path(r["path"]).name
        stored: dict[str, int] = {}
        for f in offsets:
            result = openspine.analyze(Scan(arr + f * bright, scan.affine, scan.source))
            grades = {
                d.level.value: g.grade
                for d in result.discs
                if d.level is not None
                and (g := d.grades.get(Grading.PFIRRMANN)) is not None
                and g.available
                and g.grade is not None
            }
            if f == 0.0:
                stored = grades
            for level, grade in grades.items():
                if level in stored:
                    same[f][0] += grade == stored[level]
                    same[f][1] += 1
                if (patient, level) in truth:
                    right[f][0] += grade == truth[(patient, level)]
                    right[f][1] += 1
    for f in offsets:
        print(
            f"offset {f:.2f} × the 99.5th percentile: {same[f][0]}/{same[f][1]} Pfirrmann grades as stored, "
            f"{right[f][0]}/{right[f][1]} equal to the radiologists'"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
