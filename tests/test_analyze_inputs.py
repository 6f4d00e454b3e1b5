"""What openspine.analyze and load_scan take: a path or a Scan; an array or a nibabel image is refused with the way
to pass it, and a Scan without voxels with its shape."""

from __future__ import annotations

import importlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import openspine
from openspine.errors import InputTypeError, OpenSpineError, UnsupportedScanError

SAG = np.array([[0, 0, 4.0, 0], [0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]])


def test_an_array_is_refused_with_how_to_wrap_it() -> None:
    with pytest.raises(
        InputTypeError, match=r"got numpy\.ndarray: pass its file's path, or wrap it in openspine\.Scan\("
    ):
        openspine.analyze(np.zeros((8, 8, 3)))
    # also a TypeError, as Python code expects of a wrong argument type; load_scan reads files only
    with pytest.raises(TypeError, match=r"must be a path \(str or os\.PathLike\), got numpy\.ndarray: pass its file"):
        openspine.load_scan(np.zeros((8, 8, 3)))  # type: ignore[arg-type]


def test_a_nibabel_image_is_refused_with_how_to_pass_it(tmp_path: Path) -> None:
    img = nib.Nifti1Image(np.zeros((8, 8, 3), np.int16), SAG)
    with pytest.raises(
        InputTypeError, match=r"Nifti1Image: pass its file's path, or wrap it in openspine\.Scan\(np\.asany"
    ):
        openspine.analyze(img)  # type: ignore[arg-type]
    with pytest.raises(OpenSpineError, match="the t1 given to openspine.analyze must be a path"):
        openspine.analyze(tmp_path / "missing.nii.gz", t1=img)  # type: ignore[arg-type]


def test_a_scan_without_voxels_is_refused_with_its_shape() -> None:
    with pytest.raises(UnsupportedScanError, match=r"holds no voxels: its array has shape \(0, 10, 1\)"):
        openspine.analyze(openspine.Scan(np.zeros((0, 10, 1)), np.eye(4)))


def test_an_empty_path_is_refused_not_read_as_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from openspine.batch.runner import run_batch
    from openspine.cli import main
    from openspine.errors import ConfigError, ScanReadError

    monkeypatch.chdir(tmp_path)  # "" had meant this folder, searched recursively for a scan
    for empty in ("", "  "):
        with pytest.raises(ScanReadError, match="is an empty path"):
            openspine.analyze(empty)
        with pytest.raises(ScanReadError, match="is an empty path"):
            openspine.load_scan(empty)
        with pytest.raises(ConfigError, match="empty path"):
            run_batch(empty, tmp_path / "out")
    assert main(["analyze", "", "--out", str(tmp_path / "a")]) == 1
    assert "the input is an empty path" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["batch", "", "--out", str(tmp_path / "b")])
    assert stop.value.code == 2 and "an empty path" in capsys.readouterr().err


def test_a_path_under_an_unexpanded_tilde_says_so() -> None:
    from openspine.errors import ScanReadError

    with pytest.raises(ScanReadError, match="'~' is expanded by a shell, not in Python"):
        openspine.load_scan("~/no-such-scan-here.nii.gz")


def test_config_as_a_dict_is_taken_and_anything_else_refused() -> None:
    from openspine.data import demo_scan_path
    from openspine.errors import ConfigError

    as_dict = openspine.analyze(demo_scan_path(), {"grade_levels": "L4-L5", "detector": None})
    assert [d.level.value for d in as_dict.discs if d.grades and d.level is not None] == ["L4-L5"]
    with pytest.raises(ConfigError, match="unknown"):
        openspine.analyze(demo_scan_path(), {"grade_level": "all"})
    with pytest.raises(
        ConfigError, match="config must be an openspine.AnalysisConfig or a dict of its options, got str"
    ):
        openspine.analyze(demo_scan_path(), "lumbar")  # type: ignore[arg-type]


def test_nan_outside_a_resampled_field_of_view_is_read_as_blank_and_flagged(tmp_path: Path) -> None:
    """A NIfTI resampled by SPM, ANTs or FSL carries NaN where it lies outside the field of view it came from: the
    scan had failed as a whole (user test); its NaN are read as blank, flagged, and the spine it shows is analysed as
    it is without them. A volume of NaN alone is still refused."""
    from .conftest import shared_data_or_skip

    data = shared_data_or_skip()
    img = nib.load(data / "spider/32/image.nii.gz")
    arr = np.asarray(img.dataobj).astype(np.float32)
    arr[:, -40:] = np.nan  # a band at the back of the picture, behind the spine
    arr[:6, :6] = np.inf
    nib.save(nib.Nifti1Image(arr, img.affine), tmp_path / "resampled.nii.gz")
    plain = openspine.analyze(data / "spider/32/image.nii.gz")
    result = openspine.analyze(tmp_path / "resampled.nii.gz")
    (flag,) = [f for f in result.flags if f.startswith("non_finite_voxels:")]
    assert f"{int(np.count_nonzero(~np.isfinite(arr)))} NaN or infinite voxels" in flag
    assert [v.label for v in result.vertebrae] == [v.label for v in plain.vertebrae]
    assert sum(bool(d.grades) for d in result.discs) == sum(bool(d.grades) for d in plain.discs) >= 5
    nib.save(nib.Nifti1Image(np.full((8, 8, 2), np.nan, np.float32), img.affine), tmp_path / "nan.nii.gz")
    with pytest.raises(OpenSpineError, match="NaN or infinite"):
        openspine.analyze(tmp_path / "nan.nii.gz")


def test_a_picture_refused_before_its_pixel_size_was_estimated_says_its_sizes_are_a_placeholder(
    tmp_path: Path,
) -> None:
    """A mask saved as a picture, read with --pixel-spacing auto, is refused as read; its result had recorded the
    reader's placeholder, 0.01 mm per pixel, as the picture's size, and the report showed it unmarked (user test)."""
    from PIL import Image

    path = tmp_path / "mask.png"
    Image.fromarray((np.random.default_rng(0).integers(0, 8, (200, 150)) * 30).astype(np.uint8)).save(path)
    result = openspine.analyze(path, pixel_spacing="auto")
    assert result.out_of_scope is not None
    said = [f for f in result.flags if f.startswith("pixel_spacing_estimated:")]
    assert said and "not estimated" in said[0] and "placeholder" in said[0], result.flags
    from openspine.render.report import render_report

    assert "estimated, not from the file" in render_report(result, None)


def test_an_oblique_volume_is_read_where_its_spine_reads_more_surely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1 mm volume turned 30° about the front-to-back axis: whose affine alone is turned (the spine lies along its
    grid, as a slab planned along it) had been resliced onto the world axes and lost its labels and grades (user
    test); it is now read on its own grid. The same anatomy resampled onto a turned grid (the spine along the world
    axes) is still resliced. Each keeps the lumbar labels of the volume as stored (a train volume).
    An oblique volume costs one detection more than one read as stored: that of the layout not chosen (the chosen
    one's detection is not made again, as it had been)."""
    from scipy import ndimage

    from .conftest import shared_data_or_skip

    data = shared_data_or_skip()
    img = nib.load(data / "fastcleverseg/fcs-vb2-07/image.nii.gz")
    arr, aff = np.asarray(img.dataobj).astype(np.float32), np.asarray(img.affine, float)
    a = np.radians(30.0)
    turn = np.eye(4)
    turn[0, 0], turn[0, 2], turn[2, 0], turn[2, 2] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a)  # about A-P (y)
    centre = aff @ np.r_[(np.array(arr.shape) - 1) / 2, 1.0]
    to_origin, back = np.eye(4), np.eye(4)
    to_origin[:3, 3], back[:3, 3] = -centre[:3], centre[:3]
    turned = back @ turn @ to_origin @ aff
    nib.save(nib.Nifti1Image(arr, turned), tmp_path / "grid.nii.gz")  # the affine alone turned
    m = np.linalg.inv(aff) @ turned  # the anatomy kept where it was, sampled on the turned grid
    world = ndimage.affine_transform(arr, m[:3, :3], offset=m[:3, 3], order=1)
    nib.save(nib.Nifti1Image(world, turned), tmp_path / "world.nii.gz")
    stored = [v.label for v in openspine.analyze(data / "fastcleverseg/fcs-vb2-07/image.nii.gz").vertebrae]
    calls: list[int] = []
    detection = importlib.import_module("openspine.detection")
    detect = detection.detect
    monkeypatch.setattr(detection, "detect", lambda *a, **k: calls.append(1) or detect(*a, **k))
    for name, how in (("grid", "read on its own grid"), ("world", "resliced onto the scanner's axes")):
        calls.clear()
        result = openspine.analyze(tmp_path / f"{name}.nii.gz")
        assert len(calls) == 2, name
        (flag,) = [f for f in result.flags if f.startswith("oblique_volume: ")]
        assert f"lie 30° off the scanner's; it was {how}" in flag, flag
        # the turned grid of the resampled one cuts the volume's corners: some bodies at its ends are lost
        labels = {v.label.value for v in result.vertebrae if v.label is not None}
        assert {"L1", "L2", "L3", "L4", "L5"} <= labels <= {lv.value for lv in stored if lv is not None}, name
        assert sum(d.graded for d in result.discs) >= 4, name
