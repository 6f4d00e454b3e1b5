"""The spinal fluid's signal over bone (``csf_over_body``) on the SPIDER T1 and T2 slices of one split: the measurement
behind the analysis's second check of an image's T1/T2 call (``openspine.scope.check_sequence_by_fluid``).

    python scripts/fluid_signal.py --data ../shared/data --split train

Prints, per sequence, the number of slices and the percentiles of ``csf_over_body`` (median over each slice's
detected discs), and how many slices fall below ``CSF_T1_BELOW``, between, and above ``CSF_T2_ABOVE``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

import numpy as np


def slices(data: Path, split: str) -> list[tuple[str, Path]]:
    out = []
    with (data / "index.csv").open() as f:
        out += [("T2", data / r["path"] / "image.nii.gz") for r in csv.DictReader(f)
                if r["dataset"] == "spider" and r["split"] == split]  # fmt: skip
    with (data / "spider" / "t1.csv").open() as f:
        out += [("T1", data / r["path"] / r["image"]) for r in csv.DictReader(f) if r["split"] == split]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--split", default="train", choices=("train", "val"))
    args = ap.parse_args(argv)
    logging.getLogger("openspine").setLevel(logging.ERROR)
    from openspine import load_scan
    from openspine.detection import detect
    from openspine.grading.features import csf_over_body
    from openspine.scope import CSF_T1_BELOW, CSF_T2_ABOVE

    values: dict[str, list[float]] = {"T1": [], "T2": []}
    for seq, path in slices(args.data, args.split):
        view = load_scan(path).to_sagittal()
        v = csf_over_body(view, detect(view))
        if v is not None:
            values[seq].append(v)
    for seq, vs in values.items():
        a = np.array(vs)
        p = np.percentile(a, [2, 5, 50, 95, 98]).round(2)
        low, high = int(np.sum(a < CSF_T1_BELOW)), int(np.sum(a > CSF_T2_ABOVE))
        print(
            f"{seq} ({args.split}, {len(a)} slices): percentiles 2/5/50/95/98 = {p.tolist()}; "
            f"below {CSF_T1_BELOW} {low}, between {len(a) - low - high}, above {CSF_T2_ABOVE} {high}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
