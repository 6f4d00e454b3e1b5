"""A picture pasted on a light canvas, or framed by a light border, is read as on a black one: its canvas had made it
read as a negative (grades withheld), mirrored, or as an axial image. A negative's own light background is no canvas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import openspine
from openspine.io.image2d import without_light_canvas

from ..conftest import shared_data_or_skip

VAL_T2 = "spider/32"  # a SPIDER val patient


def _slice_like(rng: np.random.Generator, shape: tuple[int, int] = (120, 90)) -> np.ndarray:
    """Dark background with brighter structures, as an MR slice."""
    a = rng.integers(0, 20, shape).astype(np.uint8)
    a[20:100, 20:70] = rng.integers(60, 200, (80, 50)).astype(np.uint8)
    return a


def test_a_light_canvas_around_a_picture_is_set_to_its_darkest_value() -> None:
    rng = np.random.default_rng(0)
    image = _slice_like(rng)
    for value in (255, 128):
        canvas = np.full((260, 200), value, np.uint8)
        canvas[10:130, 100:190] = image  # off-centre, near two edges
        out, flags, where = without_light_canvas(canvas)
        assert out[0, 0] == image.min() and out[200, 50] == image.min()
        assert np.array_equal(out[10:130, 100:190], image)  # the picture itself is kept as it is
        said = f"picture_canvas: a uniform canvas or frame of grey value {value}"
        assert len(flags) == 1 and flags[0].startswith(said)
        assert where is not None and where[0, 0] and not where[50, 150]


def test_no_canvas_where_the_background_is_dark_or_a_negative_s_own() -> None:
    rng = np.random.default_rng(1)
    image = _slice_like(rng)
    black = np.zeros((260, 200), np.uint8)
    black[10:130, 100:190] = image
    assert without_light_canvas(black)[1] == ()  # as dark as the image's own background
    assert without_light_canvas(image)[1] == ()  # noise at the edges: no uniform canvas
    # a negative: a light background around an outline (a body-shaped blob), not a rectangle
    yy, xx = np.mgrid[0:200, 0:160]
    body = (xx - 40) ** 2 / 60.0**2 + (yy - 100) ** 2 / 120.0**2 < 1  # runs off the left, top and bottom edges
    negative = np.where(body, rng.integers(90, 250, body.shape), 255).astype(np.uint8)
    out, flags, _ = without_light_canvas(negative)
    assert flags == () and np.array_equal(out, negative)


def _spacing(folder: Path) -> tuple[float, float]:
    row, col = json.loads((folder / "meta.json").read_text())["pixel_spacing_mm"][:2]
    return float(row), float(col)


@pytest.mark.parametrize(
    ("colour", "name"),
    [
        (255, "page.png"),
        (128, "page.png"),
        (255, "page.jpg"),  # JPEG's ringing past the slice's edge had hidden the rectangle it frames
        ((200, 220, 255), "page.png"),  # a pale blue page had read as colour drawings around the spine
    ],
)
def test_a_real_slice_on_a_light_canvas_reads_as_the_slice(tmp_path: Path, colour: object, name: str) -> None:
    folder = shared_data_or_skip() / VAL_T2
    slice_ = Image.open(folder / "image.png").convert("L")
    w, h = slice_.size
    mode = "RGB" if isinstance(colour, tuple) else "L"
    page = Image.new(mode, (2 * w, 2 * h), colour)  # type: ignore[arg-type]
    page.paste(slice_.convert(mode), (w - w // 8, h // 8))
    page.save(tmp_path / name, **({"quality": 50} if name.endswith(".jpg") else {}))
    alone = openspine.analyze(folder / "image.png", pixel_spacing=_spacing(folder))
    pasted = openspine.analyze(tmp_path / name, pixel_spacing=_spacing(folder))
    assert any(f.startswith("picture_canvas") for f in pasted.flags)
    unwanted = ("intensity_inverted", "picture_mirrored", "picture_in_colour")
    assert not any(f.startswith(unwanted) for f in pasted.flags), pasted.flags
    assert [v.label for v in pasted.vertebrae] == [v.label for v in alone.vertebrae]
    assert any(g.available for d in pasted.discs for g in d.grades.values())


def test_the_negative_of_a_real_slice_is_still_a_negative(tmp_path: Path) -> None:
    folder = shared_data_or_skip() / VAL_T2
    image = np.asarray(Image.open(folder / "image.png").convert("L"))
    Image.fromarray(255 - image).save(tmp_path / "negative.png")
    result = openspine.analyze(tmp_path / "negative.png", pixel_spacing=_spacing(folder))
    assert not any(f.startswith("picture_canvas") for f in result.flags)
    assert any(f.startswith("intensity_inverted") for f in result.flags)
    assert not any(g.available for d in result.discs for g in d.grades.values())
