"""A pixel size in the wrong unit (70 for 0.70 mm) is refused in one line before any work, not run into memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openspine.cli import main
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
