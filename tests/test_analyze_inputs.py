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
