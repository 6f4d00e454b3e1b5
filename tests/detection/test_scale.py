"""A picture's pixel size read from its anatomy (``pixel_spacing="auto"``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import openspine
from openspine.data import demo_scan_path
from openspine.detection.scale import (
    HEIGHTS_MM,
    candidate_sizes,
    estimate_pixel_size,
    fallback_size,
    with_pixel_size,
)
from openspine.evaluation.detection import spider_sequence_ok
from openspine.io.image2d import picture_affine


def _demo_picture(tmp_path: Path) -> tuple[Path, float]:
    """The embedded example slice saved as a PNG (rows head to feet, columns front to back), and its pixel size."""
    scan = openspine.load_scan(demo_scan_path())
    assert scan.orientation[:2] == ("I", "P")
    png = tmp_path / "demo.png"
    Image.fromarray(np.asarray(scan.array[:, :, 0], dtype=np.uint8)).save(png)
    return png, float(scan.spacing[0])


def test_with_pixel_size_rescales_the_two_picture_axes_and_keeps_the_layout() -> None:
    scan = openspine.Scan(np.zeros((40, 30), np.float32), np.diag([0.5, 0.7, 3.0, 1.0]))
    out = with_pixel_size(scan, 0.9)
    assert out.spacing == pytest.approx((0.9, 0.9, 3.0))
    assert out.orientation == scan.orientation and out.array is scan.array


def test_candidate_sizes_span_the_picture_heights() -> None:
    sizes = candidate_sizes(500)
    assert sizes[0] * 500 == pytest.approx(HEIGHTS_MM[0])
    assert sizes[-1] * 500 <= HEIGHTS_MM[1] and sizes[-1] * 500 * 1.1 > HEIGHTS_MM[1]


def test_a_blank_picture_has_no_estimate() -> None:
    scan = openspine.Scan(np.zeros((200, 160), np.uint8), picture_affine(1.0, 1.0))  # as load_scan reads a PNG
    estimate = estimate_pixel_size(scan)
    assert estimate.spacing_mm is None and all(support == 0 for _, support in estimate.tried)


def test_the_example_slice_as_a_picture_gets_its_pixel_size_back_and_a_full_analysis(tmp_path: Path) -> None:
    png, true_mm = _demo_picture(tmp_path)
    estimate = estimate_pixel_size(openspine.load_scan(png, pixel_spacing=(1.0, 1.0)))
    assert estimate.spacing_mm is not None
    # a hard case: this patient's bodies lie 49 mm apart centre to centre (the SPIDER train median is 34 mm), so
    # the estimate comes out 0.48 mm for 0.68 mm; the detection and labelling at it are still complete
    assert 1 / 1.5 < estimate.spacing_mm / true_mm < 1.5
    result = openspine.analyze(png, pixel_spacing="auto")
    assert spider_sequence_ok(result)  # L1-L2 … L5-S1 found and labelled in order
    assert result.input.spacing_mm[0] == pytest.approx(estimate.spacing_mm, rel=1e-3)
    assert result.parameters["pixel_spacing"] == "auto"
    (flag,) = [f for f in result.flags if f.startswith("pixel_spacing_estimated: ")]
    # the grades are read at the estimate too: the flag says so, not only that lengths in mm are off
    assert "grades may differ from those at the true pixel size" in flag and "lengths in mm" in flag
    assert any(d.grades and d.grades["pfirrmann"].available for d in result.discs)


def test_a_picture_whose_pixel_size_cannot_be_read_off_its_anatomy_is_out_of_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No size showed a column of three sure bodies: what the detector finds at a guessed size (stripes of an axial
    cut widened by repeating its edge had been labelled T12 … L2) is no spine to label or grade; exit status 3."""
    from openspine.cli import main
    from openspine.detection import scale

    png, _ = _demo_picture(tmp_path)
    monkeypatch.setattr(scale, "estimate_pixel_size", lambda scan, model=None: scale.ScaleEstimate(None, ()))
    result = openspine.analyze(png, pixel_spacing="auto")
    assert result.out_of_scope is not None and "cannot be read off its anatomy" in result.out_of_scope
    assert not any(d.grades and d.grades["pfirrmann"].available for d in result.discs)
    assert all(v.label is None for v in result.vertebrae)
    assert main(["-q", "analyze", str(png), "--pixel-spacing", "auto", "-o", str(tmp_path / "out")]) == 3
    assert "--pixel-spacing" in capsys.readouterr().err
    # with its pixel size given, the same picture is analysed
    assert openspine.analyze(png, pixel_spacing=(0.68, 0.68)).out_of_scope is None
    # a T1 picture beside it whose pixel size cannot be read is set aside, not read at a guessed size
    paired = openspine.analyze(png, pixel_spacing=(0.68, 0.68), t1=png, t1_pixel_spacing="auto")
    assert paired.out_of_scope is None
    (aside,) = [f for f in paired.flags if f.startswith("t1_not_used: ")]
    assert "pixel size could not be read off its anatomy" in aside


def test_info_shows_the_estimated_pixel_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from openspine.cli import main

    png, true_mm = _demo_picture(tmp_path)
    assert main(["-q", "info", str(png), "--pixel-spacing", "auto", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert 1 / 1.5 < summary["spacing_mm"][0] / true_mm < 1.5
    assert summary["pixel_spacing_estimated"].startswith("pixel_spacing_estimated: ")
    # the text form marks the estimate on the line that gives it (it had been said in a log line only)
    assert main(["-q", "info", str(png), "--pixel-spacing", "auto"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("spacing (mm)"))
    assert line.endswith("(estimated from the vertebral bodies: --pixel-spacing auto)"), line


def test_sizes_tried_keep_a_wide_short_picture_within_what_the_detector_reads() -> None:
    """A picture 67 rows tall and 221 wide (an axial cut turned on its side) was tried at sizes chosen for its
    height alone, up to 12 mm per pixel: 2 650 mm wide, which the detector refuses as a voxel size in the wrong unit."""
    from openspine.geometry import MAX_EXTENT_MM

    sizes = candidate_sizes(67, 221)
    assert len(sizes) and sizes.max() * 221 <= MAX_EXTENT_MM
    assert sizes[0] * 67 == pytest.approx(HEIGHTS_MM[0])
    assert len(candidate_sizes(67)) > len(sizes)  # without the width the range was longer
    assert fallback_size(10, 10_000) * 10_000 <= MAX_EXTENT_MM


def test_a_wide_short_picture_is_estimated_without_an_error() -> None:
    """Every size tried is one the detector reads (before, sizes above 9 mm per pixel raised UnsupportedScanError
    with a message about the header, which a picture does not have)."""
    rng = np.random.default_rng(0)
    scan = openspine.Scan(rng.integers(0, 255, (67, 221), dtype=np.uint8), picture_affine(1.0, 1.0))
    estimate = estimate_pixel_size(scan)
    assert max(size for size, _ in estimate.tried) * 221 <= 2000.0


def test_labels_that_change_with_the_estimated_pixel_size_are_flagged_and_not_graded(shared_data: Path) -> None:
    """Val patient 73's slice read with ``auto``: at the estimate and 10 % larger its bodies carry other labels, so
    the labels rest on the estimate's error; patient 32's do not, and it is graded as before."""
    from openspine.analysis import LABELS_DEPEND_ON_SIZE

    unsure = openspine.analyze(shared_data / "spider" / "73" / "image.png", pixel_spacing="auto")
    (flag,) = [f for f in unsure.flags if f.startswith(LABELS_DEPEND_ON_SIZE)]
    assert "--pixel-spacing" in flag and "10 % larger" in flag and "labelled bodies" in flag
    (alternative,) = [f for f in unsure.flags if f.startswith("labelling_alternative: ")]
    assert "further from the sacrum" in alternative  # read larger, T11 would be T10
    assert unsure.discs and not any(g.available for d in unsure.discs for g in d.grades.values())
    assert any(v.label is not None for v in unsure.vertebrae)  # the labels stay, flagged
    sure = openspine.analyze(shared_data / "spider" / "32" / "image.png", pixel_spacing="auto")
    assert not any(f.startswith(LABELS_DEPEND_ON_SIZE) for f in sure.flags)
    assert any(d.grades and d.grades["pfirrmann"].available for d in sure.discs)
    # with its pixel size given, nothing is read again
    given = openspine.analyze(shared_data / "spider" / "73" / "image.png", pixel_spacing=(0.729, 0.729))
    assert not any(f.startswith(LABELS_DEPEND_ON_SIZE) for f in given.flags)


def test_a_picture_estimated_at_the_largest_size_is_not_read_larger(shared_data: Path, tmp_path: Path) -> None:
    """Val patient 73's slice padded to 2 800 pixels wide: its estimate read 10 % larger would exceed the largest
    picture the detector reads (2 000 mm on the longer side), which had failed the whole run (code review)."""
    image = np.asarray(Image.open(shared_data / "spider" / "73" / "image.png").convert("L"))
    wide = np.random.default_rng(0).integers(0, 4, size=(image.shape[0], 2800)).astype(np.uint8)
    wide[:, : image.shape[1]] = image
    png = tmp_path / "wide.png"
    Image.fromarray(wide).save(png)
    result = openspine.analyze(png, pixel_spacing="auto")
    assert result.input.spacing_mm[0] * 2800 * 1.1 > 2000.0  # the size that is not tried
    assert result.out_of_scope is None and any(v.label is not None for v in result.vertebrae)
