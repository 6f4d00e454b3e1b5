"""The spinal fluid's signal over bone (``csf_over_body``) on the SPIDER T1 and T2 slices of one split: the measurement
behind the analysis's second check of an image's T1/T2 call (``openspine.scope.check_sequence_by_fluid``).

    python scripts/fluid_signal.py --data ../shared/data --split train [--volumes]

Prints, per sequence, the number of slices and the percentiles of ``csf_over_body`` (median over each slice's
detected discs), and how many slices fall below ``CSF_T1_BELOW``, between, and above ``CSF_T2_ABOVE``; and the
highest, with how many lie above ``CSF_UNSEEN_ABOVE`` (fluid brighter than on any T2 the grader saw). ``--volumes``
adds the split's other scans that index.csv calls T2 (FastCleverSeg, SCT) as "T2 volumes". ``--gamma G`` reads
each scan under a display gamma of G first (its grey levels scaled to 0–1 between the 0.5th and 99.5th percentile,
raised to the power G): what the ``intensity_unusual`` rule catches of a changed contrast. ``--black-percentile P``
windows each scan first so that its darkest P % are black (a narrow display window): what the rule costs there.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

import numpy as np


def slices(data: Path, split: str, volumes: bool = False) -> list[tuple[str, Path]]:
    out = []
    with (data / "index.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    out += [("T2", data / r["path"] / "image.nii.gz") for r in rows if r["dataset"] == "spider"]
    if volumes:
        out += [("T2 volumes", data / r["path"] / r["image"].split(";")[0]) for r in rows
                if r["dataset"] != "spider" and r["sequence"] == "T2"]  # fmt: skip
    with (data / "spider" / "t1.csv").open() as f:
        out += [("T1", data / r["path"] / r["image"]) for r in csv.DictReader(f) if r["split"] == split]
    return out


def with_gamma(scan, gamma: float, black: float = 0.5):  # type: ignore[no-untyped-def]
    """``scan`` with its grey levels under a display gamma (``black``-th to 99.5th percentile to 0-1, to the power
    ``gamma``)."""
    from dataclasses import replace

    a = np.asarray(scan.array, dtype=np.float32)
    lo, hi = np.percentile(a, [black, 99.5])
    return replace(scan, array=(np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1) ** gamma * 1000).astype(np.float32))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--split", default="train", choices=("train", "val"))
    ap.add_argument("--volumes", action="store_true", help="add the split's other T2 scans (FastCleverSeg, SCT)")
    ap.add_argument("--gamma", type=float, default=None, help="read each scan under this display gamma")
    ap.add_argument("--black-percentile", type=float, default=None, help="window each scan: its darkest P %% black")
    args = ap.parse_args(argv)
    logging.getLogger("openspine").setLevel(logging.ERROR)
    from openspine import load_scan
    from openspine.detection import detect
    from openspine.grading.features import csf_over_body
    from openspine.scope import CSF_T1_BELOW, CSF_T2_ABOVE, CSF_UNSEEN_ABOVE

    values: dict[str, list[float]] = {"T1": [], "T2": [], "T2 volumes": []}
    for seq, path in slices(args.data, args.split, args.volumes):
        scan = load_scan(path)
        if args.black_percentile is not None:
            scan = with_gamma(scan, 1.0, args.black_percentile)
        if args.gamma is not None:
            scan = with_gamma(scan, args.gamma)
        view = scan.to_sagittal()
        v = csf_over_body(view, detect(view))
        if v is not None:
            values[seq].append(v)
    for seq, vs in values.items():
        if not vs:
            continue
        a = np.array(vs)
        p = np.percentile(a, [2, 5, 50, 95, 98]).round(2)
        low, high = int(np.sum(a < CSF_T1_BELOW)), int(np.sum(a > CSF_T2_ABOVE))
        print(
            f"{seq} ({args.split}, {len(a)} slices): percentiles 2/5/50/95/98 = {p.tolist()}; "
            f"below {CSF_T1_BELOW} {low}, between {len(a) - low - high}, above {CSF_T2_ABOVE} {high}; highest "
            f"{a.max():.2f}, above {CSF_UNSEEN_ABOVE} {int(np.sum(a > CSF_UNSEEN_ABOVE))}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
