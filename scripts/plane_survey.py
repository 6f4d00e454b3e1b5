"""Pictures in other planes, degraded as exported pictures are: refused, and how sure the plane call is.

The volumes of the split are cut in the axial and coronal planes (the pictures of ``openspine evaluate
recognition``), rendered as 8-bit pictures and changed three ways: JPEG at quality 40, framed by a 50-pixel black
border, and with burned-in text. Each is analysed at its true pixel size and with ``--pixel-spacing auto``; printed:
how many are refused (exit status 3). Then the recogniser's probability of "sagittal" on the SPIDER T2 and T1 slices
of the split as pictures (as stored, JPEG 30, framed by 100 black pixels, burned-in text, shrunk to 256 rows,
gamma 2, mirrored) and on the coronal cuts: what a stricter plane rule (refuse below a probability) would cost.

    python scripts/plane_survey.py --data ../shared/data --split val
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


def refusals(data: Path, split: str) -> Counter[tuple[str, str, str, bool]]:
    tally: Counter[tuple[str, str, str, bool]] = Counter()
    for pic in split_pictures(data, split):
        if pic.source != "volume" or pic.plane == "sagittal":
            continue
        im = _eight_bit(pic.image)
        changed = {"8-bit": im, "jpeg40": _jpeg(im, 40), "border": _framed(im, 50), "text": _text(im, "AX T2 TSE")}
        for name, picture in changed.items():
            scan = Scan(np.asarray(picture)[:, :, None], picture_affine(1.0, 1.0), ScanSource(pic.id, format="image"))
            for how in ("true", "auto"):
                read = with_pixel_size(scan, pic.spacing[0]) if how == "true" else picture_with_pixel_size(scan)[0]
                tally[(pic.plane, name, how, openspine.analyze(read).out_of_scope is not None)] += 1
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
    args = ap.parse_args()
    tally = refusals(args.data, args.split)
    print(f"{args.split}: axial and coronal volume cuts as pictures, refused at the true pixel size / estimated")
    for plane in ("axial", "coronal"):
        for name in ("8-bit", "jpeg40", "border", "text"):
            counts = [
                (tally[(plane, name, how, True)], tally[(plane, name, how, True)] + tally[(plane, name, how, False)])
                for how in ("true", "auto")
            ]
            print(f"  {plane:8s} {name:7s} " + " / ".join(f"{r}/{n}" for r, n in counts))
    print(f"{args.split}: probability of 'sagittal'; pictures a rule 'refuse below p' would refuse, for p = {RULES}")
    for name, values in sagittal_probabilities(args.data, args.split).items():
        v = np.asarray(values)
        below = ", ".join(str(int((v < p).sum())) for p in RULES)
        print(f"  {name:22s} {len(v):4d} pictures, lowest {v.min():.3f}, highest {v.max():.3f}; refused: {below}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
