"""Colour drawn over one disc of a picture: is that disc, and only that disc, left ungraded?

For every SPIDER T2 slice of a split, renders the slice as an 8-bit RGB picture (window 1st–99.5th percentile), finds
its L4-L5 disc (the analysis of the clean picture at its true pixel size), and draws on a copy a red arrow pointing at
the disc from the front, a yellow one, and a red ellipse around the disc (3 px lines), as figures in papers and
teaching files do. Each picture is analysed at its true pixel size and with ``--pixel-spacing auto``; per drawing it
prints how many pictures were graded at all, how many have their L4-L5 Pfirrmann grade withheld for colour over it
(:mod:`openspine.grading.colour`), how many other discs were withheld so, and how many L4-L5 grades were given but
differ from the clean picture's.

    python scripts/colour_survey.py --data ../shared/data --split val      # about 3 minutes
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _survey import split_scans, survey_parser  # scripts/_survey.py
from PIL import Image, ImageDraw

COLOUR_NOTE = "colour drawn over the disc"
DRAWINGS = ("red arrow", "yellow arrow", "red ellipse")


def _picture(path: Path) -> tuple[Image.Image, float]:
    """The slice as an 8-bit RGB picture (rows head to feet, columns front to back) and its pixel size (mm)."""
    import openspine

    scan = openspine.load_scan(path)
    view = scan.to_sagittal().scan
    plane = np.asarray(view.array[:, :, view.shape[2] // 2], dtype=np.float32)
    lo, hi = np.percentile(plane, [1.0, 99.5])
    grey = (np.clip((plane - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB"), float(view.spacing[0])


def _draw(im: Image.Image, what: str, row: float, col: float, width_px: float) -> Image.Image:
    """A copy of ``im`` with ``what`` drawn at the disc centred at (row, col) pixels, ``width_px`` wide."""
    out = im.copy()
    d = ImageDraw.Draw(out)
    colour = (255, 0, 0) if what.startswith("red") else (255, 220, 0)
    if what.endswith("arrow"):  # from the front (the left), its tip 3 px before the disc's front
        tip = (col - width_px / 2 - 3, row)
        d.line([(tip[0] - 40, row), tip], fill=colour, width=4)
        d.polygon([tip, (tip[0] - 14, row - 7), (tip[0] - 14, row + 7)], fill=colour)
    else:
        d.ellipse(
            [col - width_px * 0.7, row - width_px * 0.35, col + width_px * 0.7, row + width_px * 0.35],
            outline=colour,
            width=3,
        )
    return out


def _l45(result: Any) -> tuple[tuple[float, float], float] | None:
    """The L4-L5 disc's centre (row, col pixels of the picture) and its width (pixels), or None."""
    for disc in result.discs:
        if disc.level is not None and disc.level.value == "L4-L5" and disc.outlines:
            corners = np.asarray(disc.outlines[0].corners_voxel, dtype=float)[:, :2]
            width = float(np.linalg.norm(corners[1] - corners[0]))
            return (float(disc.centroid_voxel[0]), float(disc.centroid_voxel[1])), width
    return None


def _pfirrmann(result: Any) -> dict[str, Any]:
    """Each labelled disc's Pfirrmann grade, or the note why it has none."""
    out = {}
    for disc in result.discs:
        g = disc.grades.get("pfirrmann") if disc.level is not None else None
        if g is not None:
            out[disc.level.value] = g.grade if g.available else (g.note or "")
    return out


def main(argv: list[str] | None = None) -> int:
    import openspine

    args = survey_parser(__doc__).parse_args(argv)
    counts: dict[tuple[str, str], list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in split_scans(args.data, args.split):
            if name != "spider":
                continue
            im, mm = _picture(path)
            clean_png = Path(tmp) / "clean.png"
            im.save(clean_png)
            clean = openspine.analyze(clean_png, pixel_spacing=(mm, mm))
            found = _l45(clean)
            if found is None:
                continue
            (row, col), width = found
            modes = (("true size", (mm, mm)), ("auto", "auto"))
            base = {mode: _pfirrmann(openspine.analyze(clean_png, pixel_spacing=sp)) for mode, sp in modes}
            for what in DRAWINGS:
                png = Path(tmp) / "drawn.png"
                _draw(im, what, row, col, width).save(png)
                for mode, spacing in modes:
                    grades = _pfirrmann(openspine.analyze(png, pixel_spacing=spacing))
                    row_counts = counts.setdefault((what, mode), [0, 0, 0, 0, 0])
                    row_counts[0] += 1
                    row_counts[1] += any(isinstance(v, int) for v in grades.values())
                    target = grades.get("L4-L5")
                    row_counts[2] += isinstance(target, str) and COLOUR_NOTE in target
                    row_counts[3] += sum(
                        1 for k, v in grades.items() if k != "L4-L5" and isinstance(v, str) and COLOUR_NOTE in v
                    )
                    row_counts[4] += isinstance(target, int) and target != base[mode].get("L4-L5")
    print(f"split {args.split}: SPIDER T2 pictures with a drawing at L4-L5")
    print("drawing        pixel size  pictures  graded  L4-L5 withheld (colour)  other discs withheld  L4-L5 changed")
    for (what, mode), (n, graded, held, others, changed) in counts.items():
        print(f"{what:14s} {mode:10s} {n:9d} {graded:7d} {held:24d} {others:21d} {changed:14d}")
    print(json.dumps({f"{w}|{m}": c for (w, m), c in counts.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
