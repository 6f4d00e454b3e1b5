"""Pictures shown with the front of the body on the right: read mirrored, or as shown.

Every SPIDER T2 and T1 slice of the split is analysed as a picture (no header; its true pixel size given) three
ways: as stored (front on the left), mirrored left to right (front on the right) as ``openspine analyze`` reads it,
and mirrored with ``check_orientation=False`` (``--trust-orientation``: read as shown, as every picture was before
mirrored pictures were recognised). Counts per way: refused, read mirrored, and the same disc labels and the same
Pfirrmann grades as the stored picture.

    python scripts/mirrored_pictures.py --data ../shared/data --split val
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from _survey import survey_parser  # scripts/_survey.py

import openspine
from openspine.detection.scale import with_pixel_size
from openspine.evaluation.detection import spider_t1_rows
from openspine.io.image2d import picture_affine
from openspine.scan import Scan, ScanSource

WAYS = ("stored", "mirrored", "mirrored, read as shown")


def _slices(data: Path, split: str) -> list[tuple[str, Path]]:
    with open(data / "index.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split and r["dataset"] == "spider"]
    t2 = [(r["id"], data / r["path"] / "image.nii.gz") for r in rows]
    return t2 + [(r["id"], data / r["path"] / r["image"]) for r in spider_t1_rows(data, split)]


def _read(item: str, image: np.ndarray, spacing: float, trust: bool) -> dict[str, Any]:
    picture = Scan(np.ascontiguousarray(image)[:, :, None], picture_affine(1.0, 1.0), ScanSource(item, format="image"))
    result = openspine.analyze(with_pixel_size(picture, spacing), check_orientation=not trust)
    return {
        "refused": result.out_of_scope is not None,
        "read_mirrored": bool((result.input.way_round or {}).get("read_mirrored")),
        "levels": [d.level.value if d.level else None for d in result.discs],
        "pfirrmann": [d.to_dict()["grades"].get("pfirrmann", {}).get("grade") for d in result.discs],
    }


def main() -> int:
    ap = survey_parser(__doc__)
    args = ap.parse_args()
    tally: Counter[tuple[str, str]] = Counter()
    slices = _slices(args.data, args.split)
    for item, path in slices:
        view = openspine.load_scan(path).to_sagittal()
        image, spacing = np.asarray(view.scan.array)[:, :, 0], float(view.scan.spacing[0])
        reads = {
            "stored": _read(item, image, spacing, False),
            "mirrored": _read(item, image[:, ::-1], spacing, False),
            "mirrored, read as shown": _read(item, image[:, ::-1], spacing, True),
        }
        for way, r in reads.items():
            tally[(way, "refused")] += r["refused"]
            tally[(way, "read mirrored")] += r["read_mirrored"]
            answered = not r["refused"] and not reads["stored"]["refused"]
            tally[(way, "same labels")] += answered and r["levels"] == reads["stored"]["levels"]
            tally[(way, "same Pfirrmann")] += answered and r["pfirrmann"] == reads["stored"]["pfirrmann"]
    print(f"{len(slices)} SPIDER {args.split} slices (T2 and T1) as pictures")
    for way in WAYS:
        figures = ", ".join(f"{what} {tally[(way, what)]}" for what in ("refused", "read mirrored"))
        same = ", ".join(f"{what} {tally[(way, what)]}" for what in ("same labels", "same Pfirrmann"))
        print(f"  {way:24s} {figures}" + ("" if way == "stored" else f"; as stored: {same}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
