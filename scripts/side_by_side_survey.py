"""Two spines side by side or one above the other in one picture (a montage, a screenshot of two viewports): refused,
and never a real scan.

Montages: for every SPIDER patient of the split, the T2 slice beside its T1 slice (scaled to the same height), and
each T2 slice beside the next patient's, analysed as pictures (pixel size 0.6 mm, about SPIDER's); counted: refused
with ``spines_side_by_side``. The same pairs one above the other (scaled to the same width): refused with
``spines_stacked``. Real scans: every item of the split (volumes, SPIDER T2 and T1 slices, SCT) as stored,
mirrored and in ``--crops`` crops (the views of ``openspine evaluate detection``); counted: any of them refused
either way.

    python scripts/side_by_side_survey.py --data ../shared/data --split val
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from _survey import survey_parser  # scripts/_survey.py
from PIL import Image

import openspine
from openspine.evaluation.detection import _rng_for, apply_variant, make_variants, si_axis, spider_t1_rows
from openspine.io.image2d import picture_affine
from openspine.scan import Scan, ScanSource

FLAG = "spines_side_by_side"
STACKED_FLAG = "spines_stacked"


def _side_by_side(left: Image.Image, right: Image.Image) -> np.ndarray:
    right = right.resize((round(right.size[0] * left.size[1] / right.size[1]), left.size[1]))
    out = Image.new("L", (left.size[0] + right.size[0], left.size[1]))
    out.paste(left, (0, 0))
    out.paste(right, (left.size[0], 0))
    return np.asarray(out)


def _one_above_the_other(upper: Image.Image, lower: Image.Image) -> np.ndarray:
    lower = lower.resize((upper.size[0], round(lower.size[1] * upper.size[0] / lower.size[0])))
    out = Image.new("L", (upper.size[0], upper.size[1] + lower.size[1]))
    out.paste(upper, (0, 0))
    out.paste(lower, (0, upper.size[1]))
    return np.asarray(out)


def _refused(result: openspine.AnalysisResult, flags: tuple[str, ...] = (FLAG,)) -> bool:
    return any(f.startswith(flags) for f in result.flags)


def montages(data: Path, split: str, stacked: bool = False) -> tuple[int, int]:
    t1 = {r["patient_id"]: data / r["path"] / r["png"] for r in spider_t1_rows(data, split)}
    with open(data / "index.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split and r["dataset"] == "spider"]
    t2 = [(r["id"].split("-")[-1], data / r["path"] / "image.png") for r in rows]
    pairs = [(a, t1[pid]) for pid, a in t2 if pid in t1 and t1[pid].is_file()]
    pairs += [(t2[i][1], t2[i + 1][1]) for i in range(len(t2) - 1)]
    refused = 0
    for left, right in pairs:
        join = _one_above_the_other if stacked else _side_by_side
        image = join(Image.open(left).convert("L"), Image.open(right).convert("L"))
        picture = Scan(image[:, :, None], picture_affine(0.6, 0.6), ScanSource(str(left), format="image"))
        refused += _refused(openspine.analyze(picture), (STACKED_FLAG if stacked else FLAG,))
    return refused, len(pairs)


def real_scans(data: Path, split: str, crops: int) -> tuple[list[str], int]:
    with open(data / "index.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    items = [(r["id"], data / r["path"] / r["image"].split(";")[0]) for r in rows]
    items += [(r["id"], data / r["path"] / r["image"]) for r in spider_t1_rows(data, split)]
    refused, views = [], 0
    for item, path in items:
        scan = openspine.load_scan(path)
        arr = np.asarray(scan.array)
        ax, sup_low = si_axis(scan.affine)
        n = arr.shape[ax]
        units = [(int(n * f), int(n * f) + max(2, n // 12)) for f in np.linspace(0.1, 0.8, 6)]  # stand-in bodies
        for variant in make_variants(units, n, sup_low, crops, _rng_for(0, item)):
            (a,), affine = apply_variant([arr], scan.affine, variant)
            views += 1
            if _refused(openspine.analyze(Scan(a, affine, scan.source)), (FLAG, STACKED_FLAG)):
                refused.append(f"{item}:{variant.name}")
    return refused, views


def main() -> int:
    ap = survey_parser(__doc__)
    ap.add_argument("--crops", type=int, default=6)
    args = ap.parse_args()
    r, n = montages(args.data, args.split)
    print(f"{args.split}: montages of two SPIDER slices side by side refused {r}/{n}")
    r, n = montages(args.data, args.split, stacked=True)
    print(f"{args.split}: montages of two SPIDER slices one above the other refused {r}/{n}")
    wrong, views = real_scans(args.data, args.split, args.crops)
    print(f"{args.split}: real scans as stored, mirrored and cropped refused as two spines {len(wrong)}/{views}")
    for w in wrong:
        print(f"  {w}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
