"""NIfTI and 2D image reading, on real files of the shared data and on small written files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from openspine.errors import ConfigError, ScanReadError, UnsupportedScanError
from openspine.io import list_series, load_scan


def test_real_lumbar_volume_keeps_array_and_affine(shared_data: Path) -> None:
    path = shared_data / "fastcleverseg" / "fcs-vb2-05" / "image.nii.gz"
    img = nib.load(str(path))
    scan = load_scan(path)
    np.testing.assert_array_equal(scan.array, np.asanyarray(img.dataobj))
    np.testing.assert_allclose(scan.affine, img.affine)
    assert scan.orientation == ("I", "P", "R")
    assert scan.source.format == "nifti"


def test_real_psr_volume_maps_internal_voxels_back_exactly(shared_data: Path) -> None:
    path = shared_data / "sct" / "sct-testing-t2" / "image.nii.gz"
    scan = load_scan(path)
    assert scan.orientation == nib.aff2axcodes(scan.affine)
    view = scan.to_sagittal()
    assert view.scan.orientation == ("I", "P", "R")
    rng = np.random.default_rng(0)
    for _ in range(20):
        ijk = np.array([rng.integers(0, n) for n in view.scan.shape])
        src = view.to_input_voxel(ijk)
        np.testing.assert_allclose(src, np.rint(src), atol=1e-6)
        assert view.scan.array[tuple(ijk)] == scan.array[tuple(np.rint(src).astype(int))]
        np.testing.assert_allclose(view.to_world(ijk), scan.voxel_to_world(src), atol=1e-6)


def test_real_single_slice_nifti(shared_data: Path) -> None:
    scan = load_scan(shared_data / "spider" / "21" / "image.nii.gz")
    assert scan.shape == (503, 384, 1)
    assert scan.spacing == pytest.approx((0.677083, 0.677083, 4.0), abs=1e-5)
    assert scan.to_sagittal().scan.shape == (503, 384, 1)


def test_4d_nifti_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fmri.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), dtype=np.float32), np.eye(4)), str(path))
    with pytest.raises(UnsupportedScanError, match="4D NIfTI of shape \\(4, 4, 4, 3\\)"):
        load_scan(path)


def test_trailing_singleton_dimensions_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "vol.nii"
    nib.save(nib.Nifti1Image(np.ones((4, 5, 6, 1), dtype=np.int16), np.eye(4)), str(path))
    assert load_scan(path).shape == (4, 5, 6)
    assert list_series(path)[0]["shape"] == [4, 5, 6]


def test_corrupt_nifti_gives_a_read_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ScanReadError, match="cannot read .* as NIfTI"):
        load_scan(path)


def test_missing_path_and_unknown_file_type(tmp_path: Path) -> None:
    with pytest.raises(ScanReadError, match="does not exist"):
        load_scan(tmp_path / "nope.nii.gz")
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(ScanReadError, match="not a file type openspine reads"):
        load_scan(other)


def test_png_needs_pixel_spacing(tmp_path: Path) -> None:
    path = tmp_path / "slice.png"
    Image.fromarray(np.arange(200, dtype=np.uint8).reshape(10, 20)).save(path)
    with pytest.raises(ConfigError, match="--pixel-spacing"):
        load_scan(path)


def test_png_with_spacing_is_a_sagittal_slice(tmp_path: Path) -> None:
    path = tmp_path / "slice.png"
    pixels = np.arange(200, dtype=np.uint8).reshape(10, 20)
    Image.fromarray(pixels).save(path)
    scan = load_scan(path, pixel_spacing=(0.5, 0.8))
    assert scan.shape == (10, 20, 1)
    np.testing.assert_array_equal(scan.array[:, :, 0], pixels)
    assert scan.spacing == pytest.approx((0.5, 0.8, 1.0))
    assert scan.orientation == ("I", "P", "R")


@pytest.mark.parametrize("spacing", [(0.0, 1.0), (-1.0, 1.0), (float("nan"), 1.0)])
def test_png_with_bad_spacing(tmp_path: Path, spacing: tuple[float, float]) -> None:
    path = tmp_path / "slice.png"
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(path)
    with pytest.raises(ConfigError, match="two positive numbers"):
        load_scan(path, pixel_spacing=spacing)
