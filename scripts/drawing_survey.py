"""White or black drawn over one disc of a grey picture: is that disc, and only that disc, left ungraded?

For every SPIDER T2 slice of a split, renders the slice as an 8-bit grey picture (window 1st–99.5th percentile),
finds its L4-L5 disc (the analysis of the clean picture at its true pixel size), and draws on a copy, as figures in
papers, teaching files and PACS screenshots do: a white measuring line across the disc from front to back with end
ticks, a white line across its height, a white ellipse around it, a white arrow pointing at it from the front, the
white text "L4-L5" over it, and the measuring line in black, in grey (200 of 255), dashed (6 pixels drawn, 6 left out)
and saved as JPEG at quality 75. Each picture is analysed at its true pixel size; per
drawing it prints how many pictures were graded, how many have their L4-L5 grades withheld for a drawing over it
(:mod:`openspine.grading.strokes`, :mod:`openspine.grading.colour`), how many other discs were withheld so, and how
many L4-L5 Pfirrmann grades (and grades of any head) were given but differ from the clean picture's. The clean
pictures, and copies windowed so that the brightest 2 %, 5 % and 10 % of the pixels turn white (bright fluid and fat
saturated, as a PACS window leaves them), count the discs withheld for a drawing where none is (false alarms).

    python scripts/drawing_survey.py --data ../shared/data --split train      # about 8 minutes
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _survey import split_scans, survey_parser  # scripts/_survey.py
from PIL import Image, ImageDraw, ImageFont

NOTE = "drawn over the disc"
DRAWINGS = (
    "white line", "white height", "white ellipse", "white arrow", "white text", "black line",
    "grey line", "dashed line", "white line, JPEG 75",
)  # fmt: skip
WINDOWS = (98.0, 95.0, 90.0)  # percentiles turned white in the false-alarm copies


def _plane(path: Path) -> tuple[np.ndarray, float]:
    """The slice (rows head to feet, columns front to back) as float and its pixel size (mm)."""
    import openspine

    view = openspine.load_scan(path).to_sagittal().scan
    return np.asarray(view.array[:, :, view.shape[2] // 2], dtype=np.float32), float(view.spacing[0])


def _eight_bit(plane: np.ndarray, lo_pct: float, hi_pct: float) -> Image.Image:
    lo, hi = np.percentile(plane, [lo_pct, hi_pct])
    return Image.fromarray((np.clip((plane - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8))


def _draw(im: Image.Image, what: str, corners: np.ndarray) -> Image.Image:
    """A copy of ``im`` with ``what`` drawn over the disc whose outline corners (row, col; anterior-superior,
    posterior-superior, posterior-inferior, anterior-inferior) are given."""
    out = im.copy()
    d = ImageDraw.Draw(out)
    fill = 0 if what.startswith("black") else 200 if what.startswith("grey") else 255
    xy = corners[:, ::-1]  # (x = col, y = row)
    front, back = (xy[0] + xy[3]) / 2, (xy[1] + xy[2]) / 2
    top, bottom = (xy[0] + xy[1]) / 2, (xy[2] + xy[3]) / 2
    centre = (front + back) / 2
    width = float(np.linalg.norm(back - front))
    along = (back - front) / max(width, 1e-6)
    across = np.array([-along[1], along[0]])
    if what.startswith("dashed"):  # 6 pixels drawn, 6 left out
        for start in np.arange(0.0, width, 12.0):
            d.line([tuple(front + start * along), tuple(front + min(start + 6, width) * along)], fill=fill, width=2)
    elif "line" in what:
        d.line([tuple(front), tuple(back)], fill=fill, width=2)
        for end in (front, back):  # the calliper's ticks
            d.line([tuple(end - 4 * across), tuple(end + 4 * across)], fill=fill, width=2)
    elif what.endswith("height"):
        d.line([tuple(top), tuple(bottom)], fill=fill, width=2)
    elif what.endswith("ellipse"):
        r = np.array([width * 0.7, width * 0.35])
        d.ellipse([tuple(centre - r), tuple(centre + r)], outline=fill, width=2)
    elif what.endswith("arrow"):
        tip = front - 3 * along
        d.line([tuple(tip - 40 * along), tuple(tip)], fill=fill, width=3)
        d.polygon([tuple(tip), tuple(tip - 12 * along + 6 * across), tuple(tip - 12 * along - 6 * across)], fill=fill)
    else:  # text over the disc's front half
        font = ImageFont.load_default(size=max(10, int(width * 0.3)))
        d.text(tuple(centre - np.array([width * 0.45, width * 0.15])), "L4-L5", fill=fill, font=font)
    return out


def _l45(result: Any) -> np.ndarray | None:
    """The L4-L5 disc's outline corners (row, col pixels of the picture), or None."""
    for disc in result.discs:
        if disc.level is not None and disc.level.value == "L4-L5" and disc.outlines:
            return np.asarray(disc.outlines[0].corners_voxel, dtype=float)[:, :2]
    return None


def _grades(result: Any) -> dict[str, dict[str, Any]]:
    """Each labelled disc's grades (head → grade, or the note why there is none)."""
    out: dict[str, dict[str, Any]] = {}
    for disc in result.discs:
        if disc.level is not None:
            out[disc.level.value] = {k: g.grade if g.available else (g.note or "") for k, g in disc.grades.items()}
    return out


def _withheld(grades: dict[str, Any]) -> bool:
    return any(isinstance(v, str) and NOTE in v for v in grades.values())


def main(argv: list[str] | None = None) -> int:
    import openspine

    parser = survey_parser(__doc__)
    parser.add_argument("--limit", type=int, default=None, help="only the first N pictures of the split")
    args = parser.parse_args(argv)
    counts: dict[str, list[int]] = {}
    alarms: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "picture.png"
        pictures = [path for name, path in split_scans(args.data, args.split) if name == "spider"]
        for path in pictures[: args.limit]:
            plane, mm = _plane(path)
            im = _eight_bit(plane, 1.0, 99.5)
            im.save(png)
            clean = openspine.analyze(png, pixel_spacing=(mm, mm))
            base = _grades(clean)
            a = alarms.setdefault("as rendered", [0, 0, 0])
            a[0] += 1
            a[1] += len(base)
            a[2] += sum(_withheld(g) for g in base.values())
            for pct in WINDOWS:
                _eight_bit(plane, 1.0, pct).save(png)
                grades = _grades(openspine.analyze(png, pixel_spacing=(mm, mm)))
                a = alarms.setdefault(f"top {100 - pct:.0f} % white", [0, 0, 0])
                a[0] += 1
                a[1] += len(grades)
                a[2] += sum(_withheld(g) for g in grades.values())
            corners = _l45(clean)
            if corners is None or not isinstance(base.get("L4-L5", {}).get("pfirrmann"), int):
                continue
            for what in DRAWINGS:
                drawn = Path(tmp) / ("drawn.jpg" if "JPEG" in what else "drawn.png")
                _draw(im, what, corners).save(drawn, quality=75)
                grades = _grades(openspine.analyze(drawn, pixel_spacing=(mm, mm)))
                c = counts.setdefault(what, [0, 0, 0, 0, 0, 0])
                target = grades.get("L4-L5", {})
                c[0] += 1
                c[1] += any(isinstance(v, int) for g in grades.values() for v in g.values())
                c[2] += _withheld(target)
                c[3] += sum(1 for k, g in grades.items() if k != "L4-L5" and _withheld(g))
                pf = target.get("pfirrmann")
                c[4] += isinstance(pf, int) and pf != base["L4-L5"]["pfirrmann"]
                c[5] += any(isinstance(v, int) and v != base["L4-L5"].get(k) for k, v in target.items())
    print(f"split {args.split}: SPIDER T2 pictures with a grey drawing at L4-L5 (true pixel size)")
    print("drawing              pictures  graded  L4-L5 withheld  other discs withheld  Pfirrmann changed  any changed")
    for what, (n, graded, held, others, pf, anyc) in counts.items():
        print(f"{what:20s} {n:8d} {graded:7d} {held:15d} {others:21d} {pf:18d} {anyc:12d}")
    print("false alarms: discs withheld for a drawing on pictures without one")
    print("picture              pictures  discs  withheld")
    for what, (n, discs, held) in alarms.items():
        print(f"{what:20s} {n:8d} {discs:6d} {held:9d}")
    print(json.dumps({"drawings": counts, "false_alarms": alarms}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
