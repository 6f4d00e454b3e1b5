"""Pictures in other planes, degraded as exported pictures are: refused, and how sure the plane call is.

The volumes of the split are cut in the axial and coronal planes (the pictures of ``openspine evaluate
recognition``), rendered as 8-bit pictures and changed four ways: JPEG at quality 40, framed by a 50-pixel black
border, with burned-in text, and turned by 90° (an axial strip turned on its side is wide and short). Each is analysed
at its true pixel size and with ``--pixel-spacing auto``; printed: how many are refused (exit status 3), and how many
of the rest are graded. ``--changes`` runs only some of them (``--changes turned``: the turned pictures alone). Then
the recogniser's probability of "sagittal" on the SPIDER T2 and T1 slices of the split as pictures (as stored, JPEG 30,
framed by 100 black pixels, burned-in text, shrunk to 256 rows, gamma 2, mirrored) and on the coronal cuts: what a
stricter plane rule (refuse below a probability) would cost.

    python scripts/plane_survey.py --data ../shared/data --split val
    python scripts/plane_survey.py --data ../shared/data --split train --changes turned
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import numpy as np
from _survey import survey_parser  # scripts/_survey.py
from PIL import Image, ImageDraw, ImageOps

import openspine
from openspine.analysis import picture_with_pixel_size
from openspine.detection.scale import with_pixel_size
from openspine.evaluation.detection import spider_t1_rows
from openspine.evaluation.recognition import split_pictures
from openspine.io.image2d import picture_affine
from openspine.recognition import recognise_image
from openspine.scan import Scan, ScanSource

RULES = (0.5, 0.75, 0.9)  # refuse a picture whose probability of "sagittal" is below this
CHANGES = ("8-bit", "jpeg40", "border", "text", "turned")


def _eight_bit(a: np.ndarray) -> Image.Image:
    a = a.astype(np.float32)
    lo, hi = np.percentile(a, [0.5, 99.5])
    return Image.fromarray((np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8))


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("L")


def _framed(im: Image.Image, border: int) -> Image.Image:
    out = Image.new("L", (im.size[0] + 2 * border, im.size[1] + 2 * border))
    out.paste(im, (border, border))
    return out


def _text(im: Image.Image, words: str) -> Image.Image:
    out = im.copy()
    ImageDraw.Draw(out).text((5, 5), words, fill=255)
    return out


def _changed(im: Image.Image, name: str) -> Image.Image:
    if name == "jpeg40":
        return _jpeg(im, 40)
    if name == "border":
        return _framed(im, 50)
    if name == "text":
        return _text(im, "AX T2 TSE")
    return im.transpose(Image.Transpose.ROTATE_90) if name == "turned" else im


def _graded(result: openspine.AnalysisResult) -> bool:
    return any(g.available and g.grade is not None for d in result.discs for g in d.grades.values())


def refusals(data: Path, split: str, changes: tuple[str, ...] = CHANGES) -> Counter[tuple[str, str, str, str]]:
    """Per (plane, change, pixel size true/auto, outcome): how many cuts were refused, analysed and graded, or
    analysed without a grade."""
    tally: Counter[tuple[str, str, str, str]] = Counter()
    for pic in split_pictures(data, split):
        if pic.source != "volume" or pic.plane == "sagittal":
            continue
        im = _eight_bit(pic.image)
        for name in changes:
            picture = _changed(im, name)
            scan = Scan(np.asarray(picture)[:, :, None], picture_affine(1.0, 1.0), ScanSource(pic.id, format="image"))
            for how in ("true", "auto"):
                read = with_pixel_size(scan, pic.spacing[0]) if how == "true" else picture_with_pixel_size(scan)[0]
                result = openspine.analyze(read)
                outcome = "refused" if result.out_of_scope is not None else "graded" if _graded(result) else "kept"
                tally[(pic.plane, name, how, outcome)] += 1
    return tally


def sagittal_probabilities(data: Path, split: str) -> dict[str, list[float]]:
    with open(data / "index.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split and r["dataset"] == "spider"]
    pngs = [data / r["path"] / "image.png" for r in rows] + [
        data / r["path"] / "t1.png" for r in spider_t1_rows(data, split)
    ]
    out: dict[str, list[float]] = {}
    for png in pngs:
        im = Image.open(png).convert("L")
        w, h = im.size
        gamma = Image.fromarray((255 * (np.asarray(im) / 255.0) ** 2).astype(np.uint8))
        changed = {
            "as stored": im, "jpeg30": _jpeg(im, 30), "border": _framed(im, 100), "text": _text(im, "L-SPINE SAG T2"),
            "256 rows": im.resize((w * 256 // h, 256)), "gamma 2": gamma, "mirrored": ImageOps.mirror(im),
        }  # fmt: skip
        for name, picture in changed.items():
            a = np.asarray(picture)
            spacing = 0.6 * h / a.shape[0]  # SPIDER's pixels are about 0.6 mm; shrinking enlarges them
            out.setdefault(f"sagittal, {name}", []).append(
                recognise_image(a, (spacing, spacing)).plane_probabilities["sagittal"]
            )
    for pic in split_pictures(data, split):
        if pic.source == "volume" and pic.plane == "coronal":
            p = recognise_image(pic.image, pic.spacing).plane_probabilities["sagittal"]
            out.setdefault("coronal cuts", []).append(p)
    return out


def main() -> int:
    ap = survey_parser(__doc__)
    ap.add_argument("--changes", nargs="+", choices=CHANGES, default=list(CHANGES))
    args = ap.parse_args()
    changes = tuple(args.changes)
    tally = refusals(args.data, args.split, changes)
    print(f"{args.split}: axial and coronal volume cuts as pictures, refused (graded) at the true / estimated size")
    for plane in ("axial", "coronal"):
        for name in changes:
            counts = []
            for how in ("true", "auto"):
                n = sum(tally[(plane, name, how, o)] for o in ("refused", "graded", "kept"))
                counts.append(f"{tally[(plane, name, how, 'refused')]}/{n} ({tally[(plane, name, how, 'graded')]})")
            print(f"  {plane:8s} {name:7s} " + " / ".join(counts))
    if changes != CHANGES:
        return 0
    print(f"{args.split}: probability of 'sagittal'; pictures a rule 'refuse below p' would refuse, for p = {RULES}")
    for name, values in sagittal_probabilities(args.data, args.split).items():
        v = np.asarray(values)
        below = ", ".join(str(int((v < p).sum())) for p in RULES)
        print(f"  {name:22s} {len(v):4d} pictures, lowest {v.min():.3f}, highest {v.max():.3f}; refused: {below}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
