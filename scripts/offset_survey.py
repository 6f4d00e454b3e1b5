"""How much an additive intensity offset (a pedestal under the whole image), or a display gamma, moves the Pfirrmann
grades.

The grader reads crops and disc features in units of the vertebral bodies' median intensity: unchanged by any scaling
of the image, but not by an offset (``openspine.grading.intensity`` removes one only where the image cannot be raw
magnitude: negative values, or a darkest voxel above 2 % of the bright level). This adds ``f`` times each SPIDER
slice's 99.5th percentile to every voxel and counts, per offset, the Pfirrmann grades equal to those of the slice as
stored, and those equal to the radiologists' grade (``spider/gradings.csv``). ``--gammas`` does the same with each
slice's intensities raised to a power instead (``b * (x / b) ** gamma``, ``b`` the 99.5th percentile: below 1 a
picture brightened for display), and counts the discs graded: no rule tells a display gamma from the scan's own
contrast (it maps every ratio of two tissues' intensities r to r ** gamma, within their natural range), so what the
grades do under it is a limit, measured here.

    python scripts/offset_survey.py --data ../shared/data --split val [--offsets 0.02 0.05 0.1 0.2]
    python scripts/offset_survey.py --data ../shared/data --split val --offsets --gammas 0.5 0.7 1.5
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
    ap.add_argument("--offsets", type=float, nargs="*", default=[0.02, 0.05, 0.1, 0.2])
    ap.add_argument("--gammas", type=float, nargs="*", default=[], help="display gammas to apply instead")
    args = ap.parse_args(argv)
    logging.getLogger("openspine").setLevel(logging.ERROR)
    import openspine
    from openspine.levels import Grading
    from openspine.scan import Scan

    with (args.data / "index.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"] == "spider" and r["split"] == args.split]
    with (args.data / "spider" / "gradings.csv").open() as f:
        truth = {(r["Patient"], r["level"]): int(r["Pfirrman grade"]) for r in csv.DictReader(f)}
    changes = [("as stored", 0.0), *[("offset", f) for f in args.offsets], *[("gamma", g) for g in args.gammas]]
    same = {c: [0, 0] for c in changes}
    right = {c: [0, 0] for c in changes}
    graded = {c: [0, 0] for c in changes}
    for r in rows:
        scan = openspine.load_scan(args.data / r["path"] / "image.nii.gz")
        arr = np.asarray(scan.array, np.float32)
        bright = float(np.percentile(arr, 99.5))
        patient = Path(r["path"]).name
        stored: dict[str, int] = {}
        for c in changes:
            kind, f = c
            changed = bright * np.clip(arr / bright, 0, None) ** f if kind == "gamma" else arr + f * bright
            result = openspine.analyze(Scan(changed.astype(np.float32), scan.affine, scan.source))
            graded[c][0] += sum(d.graded for d in result.discs)
            graded[c][1] += len(result.discs)
            grades = {
                d.level.value: g.grade
                for d in result.discs
                if d.level is not None
                and (g := d.grades.get(Grading.PFIRRMANN)) is not None
                and g.available
                and g.grade is not None
            }
            if kind == "as stored":
                stored = grades
            for level, grade in grades.items():
                if level in stored:
                    same[c][0] += grade == stored[level]
                    same[c][1] += 1
                if (patient, level) in truth:
                    right[c][0] += grade == truth[(patient, level)]
                    right[c][1] += 1
    for c in changes:
        kind, f = c
        name = "as stored" if kind == "as stored" else (
            f"offset {f:.2f} × the 99.5th percentile" if kind == "offset" else f"gamma {f:g}"
        )  # fmt: skip
        print(
            f"{name}: {graded[c][0]}/{graded[c][1]} discs graded, {same[c][0]}/{same[c][1]} Pfirrmann grades as "
            f"stored, {right[c][0]}/{right[c][1]} equal to the radiologists'"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
