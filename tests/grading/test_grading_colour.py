"""Colour drawn over one disc of a picture withholds that disc's grades, and only that disc's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from grading_helpers import only_disc_withheld  # tests/grading/grading_helpers.py
from PIL import Image, ImageDraw

import openspine
from openspine.data import demo_scan_path
from openspine.detection.types import DiscGeometry
from openspine.grading.colour import MIN_COLOUR_MM2, colour_in_crop
from openspine.grading.crop import CropSpec

# a level disc 40 px (20 mm) wide at rows 100-110, columns 80-120 (0.5 mm pixels)
DISC = DiscGeometry((100.0, 80.0), (100.0, 120.0), (110.0, 80.0), (110.0, 120.0), slice_index=0)
SPACING = (0.5, 0.5)


def test_colour_is_counted_inside_the_region_the_grader_reads() -> None:
    mask = np.zeros((300, 300), bool)
    assert colour_in_crop(mask, DISC, SPACING, CropSpec()) == 0.0
    mask[103:107, 66:76] = True  # an arrow's tip in front of the disc: inside the crop (two disc widths wide)
    assert colour_in_crop(mask, DISC, SPACING, CropSpec()) == 40 * 0.25
    far = np.zeros((300, 300), bool)
    far[250:260, 250:290] = True  # a label in a corner
    assert colour_in_crop(far, DISC, SPACING, CropSpec()) == 0.0


def test_the_region_turns_with_a_tilted_disc_on_rectangular_pixels() -> None:
    """The grader's crop follows the disc's tilt and is measured in mm: so is the region colour is counted in."""
    spacing = (0.8, 0.4)  # rows, columns (mm)
    t = np.radians(30)
    u = np.array([np.cos(t), np.sin(t)])  # along the endplates, (x = column mm, y = row mm)
    v = np.array([-u[1], u[0]])
    centre = np.array([60.0, 60.0])  # mm

    def px(xy):  # (x, y) mm -> (row, col) pixels
        return (xy[1] / spacing[0], xy[0] / spacing[1])

    ends = [centre + s * 10 * u + h * 2 * v for h in (-1, 1) for s in (-1, 1)]
    disc = DiscGeometry(px(ends[0]), px(ends[1]), px(ends[2]), px(ends[3]), slice_index=0)
    mask = np.zeros((150, 300), bool)
    for along, inside in ((-17.0, True), (0.0, True), (30.0, False)):  # the crop spans ±20 mm along u from its centre
        mask[:] = False
        r, c = (round(x) for x in px(centre + (along + 2.0) * u))  # the crop's centre is 2 mm behind the disc's
        mask[r, c] = True
        assert (colour_in_crop(mask, disc, spacing, CropSpec()) > 0) is inside, along
    mask[:] = False
    r, c = (round(x) for x in px(centre + 2.0 * u + 15 * v))  # 15 mm below: outside (the crop is 20 mm high)
    mask[r, c] = True
    assert colour_in_crop(mask, disc, spacing, CropSpec()) == 0.0


def test_a_red_arrow_at_one_disc_withholds_that_disc_only(tmp_path: Path) -> None:
    """A red arrow pointing at a SPIDER val slice's L4-L5 (0.3 % of the region around the spine in colour, under the
    whole picture's bar) had moved its Pfirrmann grade from 4 to 3 without a word."""
    scan = openspine.load_scan(demo_scan_path())
    grey = np.asarray(scan.array[:, :, 0], dtype=np.uint8)  # rows head to feet, columns front to back
    spacing = (float(scan.spacing[0]), float(scan.spacing[1]))
    png = tmp_path / "demo.png"
    Image.fromarray(grey).convert("RGB").save(png)
    clean = openspine.analyze(png, pixel_spacing=spacing)
    target = next(d for d in clean.discs if d.level is not None and d.level.value == "L4-L5")
    row, col = float(target.centroid_voxel[0]), float(target.centroid_voxel[1])
    corners = np.asarray(target.outlines[0].corners_voxel, dtype=float)[:, :2]
    tip = col - float(np.linalg.norm(corners[1] - corners[0])) / 2 - 3
    im = Image.fromarray(grey).convert("RGB")
    draw = ImageDraw.Draw(im)
    draw.line([(tip - 40, row), (tip, row)], fill=(255, 0, 0), width=4)
    draw.polygon([(tip, row), (tip - 14, row - 7), (tip - 14, row + 7)], fill=(255, 0, 0))
    im.save(tmp_path / "arrow.png")
    drawn = openspine.analyze(tmp_path / "arrow.png", pixel_spacing=spacing)
    assert not any(f.startswith("picture_in_colour") for f in drawn.flags)  # under the whole picture's bar
    g = only_disc_withheld(clean, drawn, "L4-L5", "colour drawn over the disc")
    assert float(g.note.split("(")[1].split(" mm²")[0]) >= MIN_COLOUR_MM2
    assert any("colour drawn over the disc" in f for f in drawn.flags)
