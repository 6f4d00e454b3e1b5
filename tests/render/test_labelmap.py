"""labels.nii.gz: the NIfTI input's own transforms and codes copied, a value for discs of unknown level, the same bytes
from identical runs."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from openspine.analysis import analyze
from openspine.render.labelmap import UNKNOWN_DISC_BASE, UNKNOWN_LEVEL_BASE, label_map, write_label_map
from openspine.results import AnalysisResult
from openspine.writers import write_result


def _demo_with(path: Path, sform: np.ndarray, sform_code: int, qform: np.ndarray, qform_code: int) -> Path:
    """The demo scan (a sagittal T2 slice) saved with the given sform and qform and their codes."""
    from openspine.data import demo_scan_path

    demo = nib.load(str(demo_scan_path()))
    img = nib.Nifti1Image(np.asanyarray(demo.dataobj), demo.affine)
    img.set_sform(sform, code=sform_code)
    img.set_qform(qform, code=qform_code)
    nib.save(img, str(path))
    return path


@pytest.fixture(scope="module")
def demo_affine() -> np.ndarray:
    from openspine.data import demo_scan_path

    return np.asarray(nib.load(str(demo_scan_path())).affine)


@pytest.fixture(scope="module")
def disagreeing(tmp_path_factory: pytest.TempPathFactory, demo_affine: np.ndarray) -> tuple[Path, AnalysisResult]:
    """The demo scan whose qform (code 1) lies 50 mm to the right of its sform (code 1), analysed."""
    shifted = demo_affine.copy()
    shifted[0, 3] += 50.0
    path = _demo_with(tmp_path_factory.mktemp("in") / "disagree.nii.gz", demo_affine, 1, shifted, 1)
    return path, analyze(path)


def _transforms(img: nib.Nifti1Image) -> tuple[np.ndarray, int, np.ndarray, int]:
    sform, sform_code = img.header.get_sform(coded=True)
    qform, qform_code = img.header.get_qform(coded=True)
    return sform, int(sform_code), qform, int(qform_code)


def _assert_same_transforms(written: Path, source: Path) -> None:
    got, want = _transforms(nib.load(str(written))), _transforms(nib.load(str(source)))
    assert got[1::2] == want[1::2]  # the codes
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[2], want[2])


def test_disagreeing_transforms_are_flagged_and_both_copied_into_the_label_map(
    disagreeing: tuple[Path, AnalysisResult], tmp_path: Path
) -> None:
    path, result = disagreeing
    flags = [f for f in result.to_dict()["flags"] if f.startswith("nifti_transforms_disagree:")]
    assert len(flags) == 1 and "50.0 mm" in flags[0] and "the sform was used (nibabel's rule)" in flags[0]
    files = write_result(result, tmp_path / "out", "nifti")
    _assert_same_transforms(files["labels.nii.gz"], path)
    labels = np.asanyarray(nib.load(str(files["labels.nii.gz"])).dataobj)
    np.testing.assert_array_equal(labels, label_map(result.view, result))


def test_a_template_sform_is_passed_over_for_the_scanner_qform_and_kept_in_the_label_map(
    tmp_path: Path, demo_affine: np.ndarray
) -> None:
    path = _demo_with(tmp_path / "template.nii.gz", np.eye(4), 4, demo_affine, 1)
    result = analyze(path)
    assert any("the qform was used (the scanner's transform" in f for f in result.flags)
    # read as the scanner placed it: the demo's lumbar levels, as the plain demo gets them
    assert [v.label.value for v in result.vertebrae if v.label][-3:] == ["L4", "L5", "S1"]
    np.testing.assert_allclose(result.view.input.affine, demo_affine, atol=1e-4)
    files = write_result(result, tmp_path / "out", "nifti")
    _assert_same_transforms(files["labels.nii.gz"], path)


def test_a_scan_not_read_from_nifti_gets_the_affine_it_was_read_with(
    disagreeing: tuple[Path, AnalysisResult], tmp_path: Path, demo_affine: np.ndarray
) -> None:
    from openspine.scan import Scan

    path, _ = disagreeing
    result = analyze(Scan(np.asanyarray(nib.load(str(path)).dataobj), demo_affine))
    sform, sform_code, qform, qform_code = _transforms(
        nib.load(str(write_result(result, tmp_path, "nifti")["labels.nii.gz"]))
    )
    assert (sform_code, qform_code) == (1, 1)
    np.testing.assert_allclose(sform, demo_affine, atol=1e-4)
    np.testing.assert_allclose(qform, demo_affine, atol=1e-4)


def test_a_pictures_label_map_says_its_frame_is_aligned_anatomy_not_the_scanners(
    tmp_path: Path, shared_data: Path
) -> None:
    # its frame is head up, front left, from the picture's top-left corner: code 1 had claimed scanner coordinates
    result = analyze(shared_data / "spider" / "20" / "image.png", pixel_spacing=(0.6, 0.6))
    labels = nib.load(str(write_result(result, tmp_path, "nifti")["labels.nii.gz"]))
    sform, sform_code, qform, qform_code = _transforms(labels)
    assert (sform_code, qform_code) == (2, 2)
    np.testing.assert_allclose(sform, result.view.input.affine, atol=1e-4)
    np.testing.assert_allclose(qform, result.view.input.affine, atol=1e-4)


def test_an_unlabelled_disc_gets_150_plus_its_rank(disagreeing: tuple[Path, AnalysisResult]) -> None:
    _, result = disagreeing
    assert result.discs[0].level is not None and len(result.discs) > 2
    unlabelled = dataclasses.replace(result.discs[1], level=None)
    changed = dataclasses.replace(result, discs=(result.discs[0], unlabelled, *result.discs[2:]))
    values = set(np.unique(label_map(changed.view, changed)).tolist())
    assert UNKNOWN_DISC_BASE + 2 in values and result.discs[1].level.label_value not in values
    # between every disc value (100 + v, v at most 28) and the bodies of unknown level
    assert 128 < UNKNOWN_DISC_BASE + 2 < UNKNOWN_LEVEL_BASE


def test_identical_runs_write_identical_bytes(disagreeing: tuple[Path, AnalysisResult], tmp_path: Path) -> None:
    _, result = disagreeing
    first = write_label_map(result.view, result)
    assert first[4:8] == b"\0\0\0\0"  # the gzip header's time stamp: none
    assert write_label_map(result.view, result) == first
    a = write_result(result, tmp_path / "a", "nifti")["labels.nii.gz"].read_bytes()
    b = write_result(result, tmp_path / "b", "nifti")["labels.nii.gz"].read_bytes()
    assert a == b == first and gzip.decompress(a)


@pytest.mark.parametrize(("unit", "per_mm"), [("meter", 0.001), ("micron", 1000.0)])
def test_a_nifti_in_metres_or_microns_is_read_in_mm_and_its_label_map_keeps_its_unit(
    tmp_path: Path, demo_affine: np.ndarray, unit: str, per_mm: float
) -> None:
    # the header's unit had been ignored: a file in metres read as 0.001 mm voxels, exit 3 'no vertebral body'
    from openspine.data import demo_scan_path

    scaled = demo_affine.copy()
    scaled[:3, :] *= per_mm
    img = nib.Nifti1Image(np.asanyarray(nib.load(str(demo_scan_path())).dataobj), scaled)
    img.header.set_xyzt_units(unit)
    nib.save(img, str(tmp_path / "in.nii.gz"))
    result = analyze(tmp_path / "in.nii.gz")
    np.testing.assert_allclose(result.view.input.affine, demo_affine, atol=1e-4)
    assert [v.label.value for v in result.vertebrae if v.label][-3:] == ["L4", "L5", "S1"]
    assert any(f.startswith("nifti_units: the header gives its lengths in ") for f in result.flags)
    written = nib.load(str(write_result(result, tmp_path / "out", "nifti")["labels.nii.gz"]))
    _assert_same_transforms(tmp_path / "out" / "labels.nii.gz", tmp_path / "in.nii.gz")
    assert written.header.get_xyzt_units()[0] == unit  # placed as the input is, by a viewer that reads the unit


@pytest.mark.parametrize("shape", ["2d", "4d"])
def test_the_label_map_of_a_2d_or_4d_file_has_the_files_shape(
    tmp_path: Path, demo_affine: np.ndarray, shape: str
) -> None:
    # it came back 3D: label * image then broadcast silently, (381, 381, 1) against (381, 381)
    from openspine.data import demo_scan_path

    arr = np.asanyarray(nib.load(str(demo_scan_path())).dataobj)
    stored = np.squeeze(arr) if shape == "2d" else arr[..., None]
    nib.save(nib.Nifti1Image(stored, demo_affine), str(tmp_path / "in.nii.gz"))
    result = analyze(tmp_path / "in.nii.gz")
    labels = np.asanyarray(nib.load(str(write_result(result, tmp_path / "out", "nifti")["labels.nii.gz"])).dataobj)
    assert labels.shape == stored.shape
    np.testing.assert_array_equal(labels.reshape(-1), label_map(result.view, result).reshape(-1))
