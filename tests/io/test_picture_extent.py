"""A pixel size in the wrong unit (70 for 0.70 mm) is refused in one line before any work, not run into memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openspine.cli import main
from openspine.config import AUTO, reading_spacing
from openspine.errors import ConfigError
from openspine.geometry import MAX_EXTENT_MM
from openspine.io import load_scan


def _picture(tmp_path: Path, shape: tuple[int, int] = (400, 380)) -> Path:
    path = tmp_path / "slice.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)).save(path)
    return path


def test_a_pixel_size_that_makes_the_picture_larger_than_any_spine_is_refused(tmp_path: Path) -> None:
    path = _picture(tmp_path)
    with pytest.raises(ConfigError, match=r"70 × 70 mm makes this 400 × 380 picture 28000 × 26600 mm"):
        load_scan(path, pixel_spacing=(70.0, 70.0))
    # the largest plausible size still reads
    edge = MAX_EXTENT_MM / 400
    assert load_scan(path, pixel_spacing=(edge, edge)).spacing[0] == pytest.approx(edge)


def test_cli_says_it_in_one_line_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-q", "analyze", str(_picture(tmp_path)), "--pixel-spacing", "70", "70", "--out", str(tmp_path / "o")])
    assert code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "give the pixel size in mm" in err[0]


def test_a_large_picture_whose_size_is_to_be_estimated_is_read(tmp_path: Path) -> None:
    # at the placeholder 1 mm an 8000-pixel picture (a screenshot at full resolution) had been refused as
    # 8000 mm although --pixel-spacing auto was given: the estimate rescales it before any use
    path = _picture(tmp_path, (2500, 120))
    assert load_scan(path, pixel_spacing=reading_spacing(AUTO)).shape[:2] == (2500, 120)
    with pytest.raises(ConfigError, match="larger than any spine picture"):
        load_scan(path, pixel_spacing=(1.0, 1.0))
