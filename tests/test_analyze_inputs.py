"""What openspine.analyze and load_scan take: a path or a Scan; an array or a nibabel image is refused with the way
to pass it, and a Scan without voxels with its shape."""

from __future__ import annotations

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
