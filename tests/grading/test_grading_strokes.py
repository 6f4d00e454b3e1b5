"""White drawn over one disc of a grey picture (a calliper, an arrow, an outline) withholds that disc's grades, and
only that disc's; bright anatomy is no drawing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from grading_helpers import only_disc_withheld  # tests/grading/grading_helpers.py
from PIL import Image, ImageDraw

import openspine
from openspine.data import demo_scan_path
from openspine.grading.strokes import strokes

SPACING = (0.5, 0.5)


def _texture(shape: tuple[int, int] = (200, 200), seed: int = 0) -> np.ndarray:
    """Grey tissue: mid-grey noise, never white."""
    return np.random.default_rng(seed).normal(110, 20, shape).clip(0, 200).astype(np.uint8)


def _draw(grey: np.ndarray, what: str) -> np.ndarray:
    im = Image.fromarray(grey)
    d = ImageDraw.Draw(im)
    if what == "line":
        d.line([(40, 100), (160, 110)], fill=255, width=2)
    elif what == "ellipse":
        d.ellipse([(50, 70), (150, 130)], outline=255, width=2)
    elif what == "block":  # a white area: bright fluid or fat saturated by the window
        d.rectangle([(60, 60), (140, 140)], fill=255)
    elif what == "short":  # a white speck 2 mm long
        d.line([(100, 100), (104, 100)], fill=255, width=2)
    return np.asarray(im)


def test_a_white_line_is_a_stroke_along_its_direction() -> None:
    found = strokes(_draw(_texture(), "line"), SPACING)
    assert len(found) == 1
    x, y = found[0].direction  # (column, row)
    assert abs(x) > 0.99 and abs(np.degrees(np.arctan2(abs(y), abs(x))) - np.degrees(np.arctan2(10, 120))) < 2
    assert len(found[0].rows) >= 120  # the whole line, 120 columns long


def test_an_outline_is_a_stroke() -> None:
    assert len(strokes(_draw(_texture(), "ellipse"), SPACING)) == 1


def test_white_areas_specks_and_grey_pictures_are_no_strokes() -> None:
    for what in ("block", "short", "none"):
        assert strokes(_draw(_texture(), what), SPACING) == [], what
    assert strokes(np.full((50, 50), 7.0), SPACING) == []  # no contrast


def test_two_lines_into_one_small_white_box_bring_its_pixels_once() -> None:
    """A calliper with a label box in its middle: both halves are strokes of one white area, counted once."""
    im = Image.fromarray(_texture())
    d = ImageDraw.Draw(im)
    d.line([(30, 100), (170, 100)], fill=255, width=2)
    d.rectangle([(95, 96), (105, 104)], fill=255)
    found = strokes(np.asarray(im), SPACING)
    pixels = [(int(r), int(c)) for s in found for r, c in zip(s.rows, s.cols)]
    assert len(found) >= 1 and len(pixels) == len(set(pixels))


def test_a_line_over_white_tissue_is_no_stroke() -> None:
    """Beside a stroke the picture must be darker: a line drawn inside a white area leaves none to see."""
    grey = _draw(_texture(), "block")
    im = Image.fromarray(grey)
    ImageDraw.Draw(im).line([(70, 100), (130, 100)], fill=255, width=2)
    assert strokes(np.asarray(im), SPACING) == []


def test_a_white_calliper_across_one_disc_withholds_that_disc_only(tmp_path: Path) -> None:
    """A white measuring line across a SPIDER slice's L4-L5 (``scripts/drawing_survey.py``: on the train pictures it
    changed the L4-L5 Pfirrmann grade of 47 of 115 without a word)."""
    scan = openspine.load_scan(demo_scan_path())
    grey = np.asarray(scan.array[:, :, 0], dtype=np.uint8)  # rows head to feet, columns front to back
    spacing = (float(scan.spacing[0]), float(scan.spacing[1]))
    Image.fromarray(grey).save(tmp_path / "demo.png")
    clean = openspine.analyze(tmp_path / "demo.png", pixel_spacing=spacing)
    assert not any("drawn over the disc" in f for f in clean.flags)
    target = next(d for d in clean.discs if d.level is not None and d.level.value == "L4-L5")
    c = np.asarray(target.outlines[0].corners_voxel, dtype=float)[:, 1::-1]  # (x = column, y = row)
    front, back = (c[0] + c[3]) / 2, (c[1] + c[2]) / 2
    im = Image.fromarray(grey)
    ImageDraw.Draw(im).line([tuple(front), tuple(back)], fill=255, width=2)
    im.save(tmp_path / "calliper.png")
    drawn = openspine.analyze(tmp_path / "calliper.png", pixel_spacing=spacing)
    only_disc_withheld(clean, drawn, "L4-L5", "white drawn over the disc")
    assert any("white drawn over the disc" in f for f in drawn.flags)
