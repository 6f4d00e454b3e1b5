"""How often the T2 and T1 series of one SPIDER patient match by level (``openspine.study.match_series``).

For every patient of the split with a T1 slice (``spider/t1.csv``), detects on the T2 slice
(``spider/<patient>/image.nii.gz``) and on the T1 slice (``t1.nii.gz``), matches the two by level (no shared frame of
reference: the slices come from separate, unregistered series) and counts the pairs that agree and those flagged
``series_mismatch``, with each flag.

    python scripts/match_series_survey.py --data ../shared/data [--split val] [--out match.json] [--other-patients]

``--other-patients`` pairs each T2 slice with another patient's T1 slice instead: how many such pairs the level
match lets through (why a T1 given separately is also checked by what its file names: ``openspine.study.identity``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from openspine.detection import detect
from openspine.io import load_scan
from openspine.study import match_series


def survey(data: Path, split: str, other_patients: bool = False) -> list[dict[str, Any]]:
    out = []
    with (data / "spider" / "t1.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    for i, r in enumerate(rows):
        folder = data / r["path"]
        # --other-patients: each T2 beside the next patient's T1 (the last beside the first's)
        t1_row = rows[(i + 1) % len(rows)] if other_patients else r
        t = time.perf_counter()
        v2 = load_scan(folder / "image.nii.gz").to_sagittal()
        v1 = load_scan(data / t1_row["path"] / t1_row["image"]).to_sagittal()
        d2, d1 = detect(v2), detect(v1)
        m = match_series(d2, v2, d1, v1, names=("T2", "T1"))
        out.append(
            {
                "patient": r["patient_id"] if not other_patients else f"{r['patient_id']}+{t1_row['patient_id']}",
                "agree": m.agree,
                "vertebrae": [p.level.value for p in m.vertebrae],
                "discs": [p.level.value for p in m.discs],
                "t2_levels": [lv.value for lv in m.first_levels],
                "t1_levels": [lv.value for lv in m.second_levels],
                "flags": list(m.flags),
                "seconds": round(time.perf_counter() - t, 2),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument(
        "--other-patients",
        action="store_true",
        help="pair each T2 slice with the next patient's T1: how often a wrong patient's T1 still matches",
    )
    args = p.parse_args(argv)
    res = survey(args.data, args.split, args.other_patients)
    agree = [r for r in res if r["agree"]]
    for r in res:
        state = "agree " if r["agree"] else "FLAGGED"
        sys.stdout.write(
            f"{r['patient']:>4} {state} T2 {' '.join(r['t2_levels'])} | T1 {' '.join(r['t1_levels'])} | "
            f"{len(r['vertebrae'])} bodies, {len(r['discs'])} discs paired\n"
        )
        for fl in r["flags"]:
            sys.stdout.write(f"       {fl}\n")
    sys.stdout.write(
        f"{args.split}: {len(agree)}/{len(res)} T2/T1 pairs match with agreeing level sequences, "
        f"{len(res) - len(agree)} flagged; median paired discs "
        f"{sorted(len(r['discs']) for r in agree)[len(agree) // 2] if agree else 0}\n"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
