"""SPIDER slices pasted on a light canvas, framed, shown in a viewer's screenshot or saved as negatives: how they read.

Each SPIDER T2 and T1 slice of the split (PNG, at its own pixel size) is altered as exported pictures are and
analysed as a picture: pasted off-centre on a white (also saved as JPEG) and on a grey canvas twice its size,
framed by a 20-pixel white border, shown in a screenshot of a viewer (a grey background, a light toolbar with text,
a side panel of text lines or of blank grey boxes) and saved as its negative. Counted per alteration and sequence:
pictures refused (exit status 3), with the full L1-L2 … L5-S1 disc sequence, graded, and flagged `picture_canvas`
(a light canvas read as black), `intensity_inverted` (read as a negative) or `picture_mirrored`. A light canvas
should read as the slice on black; a negative should stay flagged and ungraded.

    python scripts/canvas_survey.py --data ../shared/data --split val
"""

from __future__ import annotations

import io
import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from _survey import survey_parser  # scripts/_survey.py
from PIL import Image, ImageDraw

import openspine
from openspine.evaluation.detection import spider_t1_rows
from openspine.training.datasets.volumes import read_index

LUMBAR = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
FLAGS = ("picture_canvas", "intensity_inverted", "picture_mirrored")


def _pasted(im: Image.Image, value: int) -> Image.Image:
    w, h = im.size
    page = Image.new("L", (2 * w, 2 * h), value)
    page.paste(im, (int(0.8 * w), int(0.15 * h)))  # off-centre: near the top and right edges
    return page


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    """The picture as a JPEG of that quality decodes (its artefacts kept)."""
    buffer = io.BytesIO()
    im.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def _bordered(im: Image.Image) -> Image.Image:
    page = Image.new("L", (im.size[0] + 40, im.size[1] + 40), 255)
    page.paste(im, (20, 20))
    return page


def _screenshot(im: Image.Image, panel: str) -> Image.Image:
    w, h = im.size
    bar, margin = max(24, h // 18), 10
    shot = Image.new("L", (w + 2 * margin + 120, h + bar + 2 * margin), 45)
    draw = ImageDraw.Draw(shot)
    draw.rectangle([0, 0, shot.size[0], bar], fill=200)
    draw.text((6, bar // 3), "File  Edit  View  Tools  |  Study: LSPINE  |  Series 5: SAG", fill=0)
    for k in range(4):
        box = [w + 2 * margin + 10, bar + 10 + k * 90, w + 2 * margin + 110, bar + 90 + k * 90]
        if panel == "text":
            draw.text((box[0], box[1] + 30), f"Series {k + 1}\n{15 + k} images", fill=220)
        else:
            draw.rectangle(box, fill=90)
    shot.paste(im, (margin, bar + margin))
    return shot


ALTERATIONS = {
    "white canvas": lambda im: _pasted(im, 255),
    "white canvas, JPEG 75": lambda im: _jpeg(_pasted(im, 255), 75),
    "grey canvas": lambda im: _pasted(im, 128),
    "white border": _bordered,
    "screenshot, text panel": lambda im: _screenshot(im, "text"),
    "screenshot, grey boxes": lambda im: _screenshot(im, "boxes"),
    "negative": lambda im: Image.fromarray(255 - np.asarray(im)),
}


def slices(data: Path, split: str) -> list[tuple[str, Path, tuple[float, float]]]:
    """(sequence, PNG, pixel size) of the split's SPIDER T2 and T1 slices."""
    out = []
    for r in read_index(data):
        if r["dataset"] == "spider" and r["split"] == split:
            folder = data / r["path"]
            row, col = json.loads((folder / "meta.json").read_text())["pixel_spacing_mm"][:2]
            out.append(("T2", folder / "image.png", (float(row), float(col))))
    for r in spider_t1_rows(data, split):
        row, col = (float(x) for x in r["pixel_spacing_mm"].split(";")[:2])
        out.append(("T1", data / r["path"] / r["png"], (row, col)))
    return out


def main() -> int:
    args = survey_parser(__doc__).parse_args()
    tally: dict[tuple[str, str], Counter[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for sequence, png, spacing in slices(args.data, args.split):
            im = Image.open(png).convert("L")
            for name, alter in ALTERATIONS.items():
                path = Path(tmp) / "picture.png"
                alter(im).save(path)
                result = openspine.analyze(path, pixel_spacing=spacing)
                levels = {d.level.value for d in result.discs if d.level is not None}
                t = tally.setdefault((name, sequence), Counter())
                t["pictures"] += 1
                t["refused"] += result.out_of_scope is not None
                t["L1-L2…L5-S1"] += all(level in levels for level in LUMBAR)
                t["graded"] += any(g.available for d in result.discs for g in d.grades.values())
                for flag in FLAGS:
                    t[flag] += any(f.startswith(flag) for f in result.flags)
    columns = ("pictures", "refused", "L1-L2…L5-S1", "graded", *FLAGS)
    print(f"{'alteration':24} seq " + " ".join(f"{c:>18}" for c in columns))
    for (name, sequence), t in tally.items():
        print(f"{name:24} {sequence:3} " + " ".join(f"{t[c]:>18}" for c in columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
