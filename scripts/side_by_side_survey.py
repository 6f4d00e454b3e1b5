"""Two spines side by side or one above the other in one picture (a montage, a screenshot of two viewports): refused,
and never a real scan.

Montages: for every SPIDER patient of the split, the T2 slice beside its T1 slice (scaled to the same height), and
each T2 slice beside the next patient's, analysed as pictures (pixel size 0.6 mm, about SPIDER's); counted: refused
with ``spines_side_by_side`` (two columns of bodies) or ``picture_panels`` (a band of one value between the two
pictures, which names the refusal of a picture that is refused or left unlabelled anyway); ``--abut`` crops each
picture to its content first, so that no band is left. The same pairs one above the other (scaled to the same
width): refused with ``spines_stacked``. Real scans: every item of the split (volumes, SPIDER T2 and T1 slices, SCT)
as stored, mirrored and in ``--crops`` crops (the views of ``openspine evaluate detection``); counted: any of them
refused any of these ways.

``--figures`` also counts, without analysing, where the band rule alone (:func:`openspine.scope.picture_panels`,
on the picture as openspine reads it) tells the panels of each patient's T1 | T2 figure: bands 2, 4, 8 and 16
pixels wide, black and white, saved as PNG and as JPEG at quality 95 and 75; and every slice of every scan of the
split with a band (none should have one).

    python scripts/side_by_side_survey.py --data ../shared/data --split val
    python scripts/side_by_side_survey.py --data ../shared/data --split val --figures --crops 0
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import numpy as np
from _survey import survey_parser  # scripts/_survey.py
from PIL import Image

import openspine
from openspine.evaluation.detection import _rng_for, apply_variant, make_variants, si_axis, spider_t1_rows
from openspine.io.image2d import picture_affine
from openspine.scan import Scan, ScanSource
from openspine.scope import picture_panels

FLAG = "spines_side_by_side"
STACKED_FLAG = "spines_stacked"
PANELS_FLAG = "picture_panels"


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


def montages(data: Path, split: str, stacked: bool = False, abut: bool = False) -> tuple[dict[str, int], int]:
    t1 = {r["patient_id"]: data / r["path"] / r["png"] for r in spider_t1_rows(data, split)}
    with open(data / "index.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split and r["dataset"] == "spider"]
    t2 = [(r["id"].split("-")[-1], data / r["path"] / "image.png") for r in rows]
    pairs = [(a, t1[pid]) for pid, a in t2 if pid in t1 and t1[pid].is_file()]
    pairs += [(t2[i][1], t2[i + 1][1]) for i in range(len(t2) - 1)]
    flags = (STACKED_FLAG,) if stacked else (PANELS_FLAG, FLAG)
    refused = {flag: 0 for flag in (*flags, "any")}
    for left, right in pairs:
        join = _one_above_the_other if stacked else _side_by_side
        pictures = [Image.open(p).convert("L") for p in (left, right)]
        if abut:
            pictures = [im.crop(im.getbbox()) for im in pictures]
        image = join(*pictures)
        picture = Scan(image[:, :, None], picture_affine(0.6, 0.6), ScanSource(str(left), format="image"))
        result = openspine.analyze(picture)
        for flag in flags:
            refused[flag] += _refused(result, (flag,))
        refused["any"] += _refused(result, flags)
    return refused, len(pairs)


def split_scans(data: Path, split: str) -> list[tuple[str, Path]]:
    """Every scan of the split: each item of index.csv (its first image) and each SPIDER T1 slice."""
    with open(data / "index.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    items = [(r["id"], data / r["path"] / r["image"].split(";")[0]) for r in rows]
    return items + [(r["id"], data / r["path"] / r["image"]) for r in spider_t1_rows(data, split)]


def real_scans(data: Path, split: str, crops: int) -> tuple[list[str], int]:
    refused, views = [], 0
    for item, path in split_scans(data, split):
        scan = openspine.load_scan(path)
        arr = np.asarray(scan.array)
        ax, sup_low = si_axis(scan.affine)
        n = arr.shape[ax]
        units = [(int(n * f), int(n * f) + max(2, n // 12)) for f in np.linspace(0.1, 0.8, 6)]  # stand-in bodies
        for variant in make_variants(units, n, sup_low, crops, _rng_for(0, item)):
            (a,), affine = apply_variant([arr], scan.affine, variant)
            views += 1
            if _refused(openspine.analyze(Scan(a, affine, scan.source)), (FLAG, STACKED_FLAG, PANELS_FLAG)):
                refused.append(f"{item}:{variant.name}")
    return refused, views


def figures(data: Path, split: str) -> dict[tuple[str, int, int], tuple[int, int]]:
    """Per (format, band width, band value): how many T1 | T2 figures the band rule reads as 2 panels, of how many."""
    counts: dict[tuple[str, int, int], tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for row in spider_t1_rows(data, split):
            t1 = np.asarray(Image.open(data / row["path"] / row["png"]).convert("L"))
            t2 = np.asarray(Image.open(data / row["path"] / "image.png").convert("L"))
            rows = max(t1.shape[0], t2.shape[0])
            for band in (2, 4, 8, 16):
                for value in (0, 255):
                    left, right = (np.pad(a, ((0, rows - a.shape[0]), (0, 0)), constant_values=value) for a in (t1, t2))
                    figure = np.hstack([left, np.full((rows, band), value, np.uint8), right])
                    for fmt, quality in (("png", None), ("jpeg95", 95), ("jpeg75", 75)):
                        path = Path(tmp) / f"figure.{'png' if quality is None else 'jpg'}"
                        Image.fromarray(figure).save(path, quality=quality or 95)
                        picture = openspine.load_scan(path, pixel_spacing=(0.6, 0.6))
                        found, total = counts.get((fmt, band, value), (0, 0))
                        counts[(fmt, band, value)] = (found + (picture_panels(picture.array[:, :, 0]) == 2), total + 1)
    return counts


def slices_with_a_band(data: Path, split: str) -> tuple[list[str], int]:
    """Every sagittal slice of every scan of the split (as the analysis reads it) that the band rule splits."""
    found, n = [], 0
    for item, path in split_scans(data, split):
        view = openspine.load_scan(path).to_sagittal().scan.array
        for k in range(view.shape[2]):
            n += 1
            for image in (view[:, :, k], view[:, ::-1, k]):
                if picture_panels(image) > 1:
                    found.append(f"{item}:{k}")
    return found, n


def main() -> int:
    ap = survey_parser(__doc__)
    ap.add_argument("--crops", type=int, default=6)
    ap.add_argument("--abut", action="store_true", help="crop each picture to its content before joining them")
    ap.add_argument("--figures", action="store_true", help="also count the band rule on T1 | T2 figures and slices")
    args = ap.parse_args()
    if args.figures:
        for (fmt, band, value), (found, total) in sorted(figures(args.data, args.split).items()):
            colour = "black" if value == 0 else "white"
            print(f"{args.split}: T1 | T2 figure, {fmt}, {band}-pixel {colour} band: read as 2 panels {found}/{total}")
        banded, n = slices_with_a_band(args.data, args.split)
        print(f"{args.split}: real sagittal slices (and their mirror images) with a band {len(banded)}/{n}")
    r, n = montages(args.data, args.split, abut=args.abut)
    ways = f"{r[FLAG]} found two columns of bodies, {r[PANELS_FLAG]} said as panels"
    print(f"{args.split}: montages of two SPIDER slices side by side refused {r['any']}/{n} ({ways})")
    r, n = montages(args.data, args.split, stacked=True, abut=args.abut)
    print(f"{args.split}: montages of two SPIDER slices one above the other refused {r[STACKED_FLAG]}/{n}")
    wrong, views = real_scans(args.data, args.split, args.crops)
    print(f"{args.split}: real scans as stored, mirrored and cropped refused as two spines {len(wrong)}/{views}")
    for w in wrong:
        print(f"  {w}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
