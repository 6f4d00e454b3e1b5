"""DICOM reader: exact affines from the standard's equation and from real volumes, series choice, bad inputs."""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from numpy.testing import assert_allclose
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless, generate_uid

from dicom_fixtures import (
    FAKE_PATIENT_ID,
    FAKE_PATIENT_NAME,
    data_path,
    dicom_geometry,
    flip_k,
    make_affine,
    new_ids,
    real_crop,
    rotation,
    save,
    series_info,
    slice_dataset,
    world,
    write_enhanced,
    write_series,
    write_text_sr,
    zip_folder,
)
from openspine import geometry
from openspine.errors import GeometryError, ScanReadError, SeriesSelectionError, UnsupportedScanError
from openspine.io import dicom, list_series, load_scan, load_study
from openspine.io.dicom import (
    SeriesInfo,
    choose_series,
    choose_series_why,
    discover_series,
    is_dicom_file,
    read_series,
)
from openspine.scan import Scan

ATOL = 1e-4
SCT_T2 = "sct/sct-testing-t2/image.nii.gz"


def read_folder(root: Path, wanted: str | int | None = None) -> Scan:
    return read_series(choose_series(discover_series(root), wanted, quiet=True))


def synthetic_slice(rows: int, cols: int, offset: int) -> np.ndarray:
    """Pixels whose value encodes (row, column, slice): 100*slice + 10*row + column."""
    i, j = np.mgrid[0:rows, 0:cols]
    return (offset * 100 + 10 * i + j).astype(np.uint16)


# --------------------------------------------------------------------------------------------------------------
# the affine, proven against the standard's equation (no shared data needed)
# --------------------------------------------------------------------------------------------------------------
def _write_hand_series(folder: Path) -> list[float]:
    """Three sagittal slices of 5 rows × 4 columns, written out of position order; returns their LPS x."""
    ids = new_ids()
    iop = [0, 1, 0, 0, 0, -1]  # X: along a row (columns j) to posterior; Y: down a column (rows i) to the feet
    ps = [0.5, 0.8]  # [row spacing, column spacing]: rows are 0.5 mm apart, columns 0.8 mm
    xs = [16.0, 10.0, 13.0]
    for n, x in enumerate(xs):
        ds = slice_dataset(synthetic_slice(5, 4, n), [x, -20.0, 30.0], iop, ps, ids, instance_number=n + 1)
        save(ds, folder / f"slice{n}.dcm")
    return xs


def test_affine_matches_hand_computation_from_the_standard(tmp_path: Path) -> None:
    _write_hand_series(tmp_path)
    scan = read_folder(tmp_path)
    # normal = X × Y = (0,1,0) × (0,0,-1) = (-1,0,0) in LPS: ascending projection runs from LPS x = 16 to 10,
    # i.e. from the patient's left to right. Sorted files: slice0 (x 16), slice2 (x 13), slice1 (x 10).
    expected = np.array(
        [
            [0.0, 0.0, 3.0, -16.0],  # RAS x = -LPS x: k steps LPS 16 → 13, RAS -16 → -13
            [0.0, -0.8, 0.0, 20.0],  # column index j moves along X = LPS +y (posterior) by 0.8: RAS y -0.8
            [-0.5, 0.0, 0.0, 30.0],  # row index i moves along Y = LPS -z (feet) by 0.5
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    assert_allclose(scan.affine, expected, atol=ATOL)
    assert scan.orientation == ("I", "P", "R")
    assert scan.spacing == pytest.approx((0.5, 0.8, 3.0))
    assert scan.shape == (5, 4, 3)
    # pixel (row i, column j) of the file at sorted position k is array[i, j, k]
    for k, n in enumerate([0, 2, 1]):
        np.testing.assert_array_equal(scan.array[:, :, k], synthetic_slice(5, 4, n))


def test_every_pixel_sits_where_the_standard_equation_puts_it(tmp_path: Path) -> None:
    """PS3.3 C.7.6.2.1.1: P = S + X·Δc·c + Y·Δr·r (c: column index, Δc = PixelSpacing[1]; r: row index)."""
    xs = _write_hand_series(tmp_path)
    scan = read_folder(tmp_path)
    x_cos, y_cos = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0])
    d_row, d_col = 0.5, 0.8
    for k, n in enumerate([0, 2, 1]):
        s = np.array([xs[n], -20.0, 30.0])
        for r in range(5):
            for c in range(4):
                p_lps = s + x_cos * d_col * c + y_cos * d_row * r
                p_ras = geometry.LPS_TO_RAS[:3, :3] @ p_lps
                assert_allclose(scan.voxel_to_world(np.array([r, c, k])), p_ras, atol=ATOL)
                assert scan.array[r, c, k] == 100 * n + 10 * r + c


def test_affine_agrees_with_nibabel_dicom_wrapper(tmp_path: Path) -> None:
    """An independent implementation (nibabel.nicom) gives the same in-plane axes and origin per slice."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # nibabel calls its DICOM readers experimental
        from nibabel.nicom import dicomwrappers

    _write_hand_series(tmp_path)
    scan = read_folder(tmp_path)
    for k, n in enumerate([0, 2, 1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # nibabel calls its DICOM readers experimental
            w = dicomwrappers.wrapper_from_data(pydicom.dcmread(tmp_path / f"slice{n}.dcm"))
            nib_ras = geometry.LPS_TO_RAS @ w.affine  # nibabel: LPS, first axis = rows, like openspine
            nib_pixels = w.get_data()
        assert_allclose(scan.affine[:3, :2], nib_ras[:3, :2], atol=ATOL)
        assert_allclose(scan.voxel_to_world(np.array([0, 0, k])), nib_ras[:3, 3], atol=ATOL)
        np.testing.assert_array_equal(scan.array[:, :, k], nib_pixels)


def test_pydicom_test_file_single_slice_affine() -> None:
    """MR_small.dcm: axial, IOP [1,0,0,0,1,0], IPP [-83.9063,-91.2,6.6406], PixelSpacing 0.3125, 0.8 mm thick."""
    scan = load_scan(get_testdata_file("MR_small.dcm"))
    expected = np.array(
        [
            [0.0, -0.3125, 0.0, 83.9063],
            [-0.3125, 0.0, 0.0, 91.2],
            [0.0, 0.0, 0.8, 6.6406],  # single slice: SliceThickness along the normal (LPS +z)
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    assert_allclose(scan.affine, expected, atol=ATOL)
    assert scan.shape == (64, 64, 1)
    np.testing.assert_array_equal(scan.array[:, :, 0], pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array)


# --------------------------------------------------------------------------------------------------------------
# real volumes written as DICOM in many orientations
# --------------------------------------------------------------------------------------------------------------


def axes(i: tuple[int, int, int], j: tuple[int, int, int], k: tuple[int, int, int]) -> np.ndarray:
    """Direction matrix (columns) from the RAS direction of the i (row), j (column) and k (slice) axes."""
    return np.column_stack([i, j, k]).astype(float)


SAG = axes(i=(0, 0, -1), j=(0, -1, 0), k=(1, 0, 0))  # I, P, R: the internal layout
SAG_R_TO_L = axes(i=(0, 0, -1), j=(0, -1, 0), k=(-1, 0, 0))  # I, P, L
AXIAL = axes(i=(0, -1, 0), j=(-1, 0, 0), k=(0, 0, 1))  # P, L, S (radiological axial)
AXIAL_HEAD_TO_FEET = axes(i=(0, -1, 0), j=(-1, 0, 0), k=(0, 0, -1))  # P, L, I
CORONAL = axes(i=(0, 0, -1), j=(-1, 0, 0), k=(0, -1, 0))  # I, L, P

# name: (directions, reader reverses k?, plane). The reversal is derived by hand: the reader sorts along
# normal = X × Y with X = LPS(j direction), Y = LPS(i direction); e.g. sagittal X = (0,1,0), Y = (0,0,-1),
# normal = (-1,0,0) LPS = +R, so a stack written right → left comes back left → right.
ORIENTATIONS = {
    "sagittal": (SAG, False, "sagittal"),
    "sagittal_right_to_left": (SAG_R_TO_L, True, "sagittal"),
    "axial": (AXIAL, False, "axial"),  # normal (1,0,0) × (0,1,0) = +z LPS = superior
    "axial_head_to_feet": (AXIAL_HEAD_TO_FEET, True, "axial"),
    "coronal": (CORONAL, False, "coronal"),  # normal (1,0,0) × (0,0,-1) = +y LPS = posterior
    "sagittal_oblique_15_about_x": (rotation("x", 15) @ SAG, False, "sagittal"),
    "sagittal_double_oblique": (rotation("z", 10) @ rotation("x", 15) @ SAG, False, "sagittal"),
    "oblique_45_about_z": (rotation("z", 45) @ SAG, False, "oblique"),
}
SPACING = (0.7, 0.9, 3.5)  # anisotropic: row spacing ≠ column spacing ≠ slice spacing
ORIGIN = (12.3, -45.6, 78.9)


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_orientations_roundtrip_exactly(tmp_path: Path, name: str) -> None:
    dirs, reversed_k, plane = ORIENTATIONS[name]
    arr, _ = real_crop()
    affine = make_affine(dirs, SPACING, ORIGIN)
    write_series(tmp_path, arr, affine)

    found = discover_series(tmp_path)
    assert [s.plane for s in found] == [plane]
    scan = read_series(found[0])
    n = arr.shape[2]
    expected_affine = flip_k(affine, n) if reversed_k else affine
    expected_array = arr[:, :, ::-1] if reversed_k else arr
    assert_allclose(scan.affine, expected_affine, atol=ATOL)
    np.testing.assert_array_equal(scan.array, expected_array)
    assert scan.array.dtype == arr.dtype
    assert scan.spacing == pytest.approx(SPACING, abs=ATOL)
    # the same voxel is at the same world position in the source and in the DICOM-read scan
    for i, j, k in [(0, 0, 0), (63, 0, 5), (10, 47, 11), (63, 63, 0)]:
        k_read = n - 1 - k if reversed_k else k
        assert scan.array[i, j, k_read] == arr[i, j, k]
        assert_allclose(scan.voxel_to_world(np.array([i, j, k_read])), world(affine, (i, j, k)), atol=ATOL)


def test_written_pixel_spacing_is_row_then_column(tmp_path: Path) -> None:
    arr, _ = real_crop(shape=(64, 48, 4))
    affine = make_affine(SAG, (0.6, 1.1, 4.0), ORIGIN)
    _, files = write_series(tmp_path, arr, affine)
    ds = pydicom.dcmread(files[0])
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.6, 1.1])
    assert (ds.Rows, ds.Columns) == (64, 48)
    scan = read_folder(tmp_path)
    assert scan.shape == (64, 48, 4)
    assert scan.spacing == pytest.approx((0.6, 1.1, 4.0), abs=ATOL)  # rows 0.6 apart, columns 1.1 apart
    assert_allclose(scan.affine, affine, atol=ATOL)


def test_real_nifti_affine_reproduced_fastcleverseg(tmp_path: Path) -> None:
    arr, affine = real_crop()  # fcs-vb2-05 crop, [S→I, A→P, L→R]
    write_series(tmp_path, arr, affine)
    scan = read_folder(tmp_path)
    assert_allclose(scan.affine, affine, atol=ATOL)
    np.testing.assert_array_equal(scan.array, arr)
    assert scan.orientation == ("I", "P", "R")
    view = scan.to_sagittal()  # the internal layout needs no reorientation for this input
    np.testing.assert_array_equal(view.scan.array, arr)


def test_real_scanner_affine_reproduced_sct(tmp_path: Path) -> None:
    import nibabel as nib

    img = nib.load(str(data_path(SCT_T2)))
    arr = np.asanyarray(img.dataobj)
    write_series(tmp_path, arr, img.affine)
    scan = read_folder(tmp_path)
    assert_allclose(scan.affine, img.affine, atol=ATOL)
    np.testing.assert_array_equal(scan.array, arr)
    assert scan.array.dtype == np.int16
    rng = np.random.default_rng(1)
    ijk = rng.integers(0, np.array(arr.shape), size=(20, 3))
    assert_allclose(scan.voxel_to_world(ijk), nib.affines.apply_affine(img.affine, ijk), atol=ATOL)


def test_file_order_and_instance_numbers_do_not_matter(tmp_path: Path) -> None:
    arr, affine = real_crop()
    _, files = write_series(tmp_path / "shuffled", arr, affine, shuffle_seed=7)
    write_series(tmp_path / "ordered", arr, affine, shuffle_seed=None)
    # the shuffled files really are out of order, by name and by InstanceNumber
    numbers = [int(pydicom.dcmread(f).InstanceNumber) for f in files]
    assert numbers != sorted(numbers) and numbers != sorted(numbers, reverse=True)
    assert [f.name for f in files] != sorted(f.name for f in files)
    a, b = read_folder(tmp_path / "shuffled"), read_folder(tmp_path / "ordered")
    np.testing.assert_array_equal(a.array, b.array)
    assert_allclose(a.affine, b.affine, atol=1e-9)
    np.testing.assert_array_equal(a.array, arr)


# --------------------------------------------------------------------------------------------------------------
# pixel values
# --------------------------------------------------------------------------------------------------------------
def test_rescale_slope_intercept_applied(tmp_path: Path) -> None:
    arr, affine = real_crop(shape=(32, 32, 4))
    stored = arr.astype(np.uint16) * 7
    write_series(tmp_path, stored, affine, slope=0.5, intercept=-100.0)
    scan = read_folder(tmp_path)
    assert scan.array.dtype == np.float32
    np.testing.assert_array_equal(scan.array, (stored.astype(np.float64) * 0.5 - 100.0).astype(np.float32))


def test_identity_rescale_keeps_integer_dtype(tmp_path: Path) -> None:
    arr, affine = real_crop(shape=(32, 32, 4))
    write_series(tmp_path, arr.astype(np.uint16), affine, slope=1.0, intercept=0.0)
    scan = read_folder(tmp_path)
    assert scan.array.dtype == np.uint16
    np.testing.assert_array_equal(scan.array, arr)


def test_rescale_per_slice(tmp_path: Path) -> None:
    """Some scanners scale each slice differently: each slice gets its own slope."""
    ids = new_ids()
    affine = make_affine(SAG, (1.0, 1.0, 2.0), ORIGIN)
    for k in range(3):
        ipp, iop, ps = dicom_geometry(affine, k)
        pix = synthetic_slice(4, 4, k)
        save(slice_dataset(pix, ipp, iop, ps, ids, slope=k + 1.0, intercept=5.0), tmp_path / f"{k}.dcm")
    scan = read_folder(tmp_path)
    for k in range(3):
        np.testing.assert_array_equal(scan.array[:, :, k], synthetic_slice(4, 4, k) * (k + 1.0) + 5.0)


@pytest.mark.parametrize("transfer_syntax", [RLELossless, JPEG2000Lossless], ids=["rle", "j2k_lossless"])
@pytest.mark.parametrize("source", ["fcs_uint8", "sct_int16"])
def test_compressed_series_decode_losslessly(tmp_path: Path, transfer_syntax: str, source: str) -> None:
    if source == "fcs_uint8":
        arr, affine = real_crop(shape=(48, 40, 6))
    else:
        arr, affine = real_crop(SCT_T2, start=(0, 0, 20), shape=(60, 55, 6))
    _, files = write_series(tmp_path, arr, affine, transfer_syntax=transfer_syntax)
    assert pydicom.dcmread(files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID == transfer_syntax
    scan = read_folder(tmp_path)
    np.testing.assert_array_equal(scan.array, arr)
    assert scan.array.dtype == arr.dtype
    assert_allclose(scan.affine, affine, atol=ATOL)
    assert scan.source.extra["transfer_syntax"] == pydicom.uid.UID(transfer_syntax).name


def test_jpeg_ls_lossless_series(tmp_path: Path) -> None:
    """No JPEG-LS encoder is installed: build a series from pydicom's JPEG-LS lossless test file."""
    reference = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
    series_uid = generate_uid()
    for k in [2, 0, 1]:
        ds = pydicom.dcmread(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
        assert ds.file_meta.TransferSyntaxUID == JPEGLSLossless
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.ImagePositionPatient = [-83.9063, -91.2, 6.6406 + 2.5 * k]
        ds.save_as(tmp_path / f"jls{k}.dcm")
    scan = read_folder(tmp_path)
    np.testing.assert_array_equal(scan.array, np.stack([reference] * 3, axis=2))
    expected = np.array(
        [[0.0, -0.3125, 0.0, 83.9063], [-0.3125, 0.0, 0.0, 91.2], [0.0, 0.0, 2.5, 6.6406], [0.0, 0.0, 0.0, 1.0]]
    )
    assert_allclose(scan.affine, expected, atol=ATOL)
    assert scan.source.extra["transfer_syntax"] == JPEGLSLossless.name


@pytest.mark.parametrize(
    "name", ["MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm", "MR_small_implicit.dcm"]
)
def test_pydicom_compressed_test_files_match_uncompressed(name: str) -> None:
    ref = load_scan(get_testdata_file("MR_small.dcm"))
    scan = load_scan(get_testdata_file(name))
    np.testing.assert_array_equal(scan.array, ref.array)
    assert_allclose(scan.affine, ref.affine, atol=1e-9)


def test_corrupt_compressed_data_names_transfer_syntax_and_plugin(tmp_path: Path) -> None:
    arr, affine = real_crop(shape=(32, 32, 3))
    _, files = write_series(tmp_path, arr, affine, transfer_syntax=JPEG2000Lossless)
    ds = pydicom.dcmread(files[1])
    frames = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00" * len(frames[0])])
    ds.save_as(files[1])
    with pytest.raises(ScanReadError, match="JPEG 2000") as err:
        read_folder(tmp_path)
    assert "pylibjpeg-openjpeg" in str(err.value)
    assert files[1].name in str(err.value)


def test_missing_decoder_plugin_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arr, affine = real_crop(shape=(16, 16, 2))
    write_series(tmp_path, arr, affine, transfer_syntax=RLELossless)

    class _Unavailable:
        is_available = False

    def _no_pixels(self: Dataset) -> None:
        raise RuntimeError("Unable to decompress 'RLE Lossless' pixel data because all plugins are missing")

    monkeypatch.setattr(Dataset, "pixel_array", property(_no_pixels))
    monkeypatch.setattr(pydicom.pixels, "get_decoder", lambda uid: _Unavailable())
    with pytest.raises(ScanReadError, match="no installed decoder handles its transfer syntax RLE Lossless") as err:
        read_folder(tmp_path)
    assert "pip install pylibjpeg-rle" in str(err.value)


def test_enhanced_mr_multiframe(tmp_path: Path) -> None:
    arr, _ = real_crop()
    affine = make_affine(rotation("x", 15) @ SAG, SPACING, ORIGIN)
    write_enhanced(tmp_path / "enhanced.dcm", arr.astype(np.uint16), affine, slope=2.0, intercept=-10.0)
    found = discover_series(tmp_path)
    assert len(found) == 1
    info = found[0]
    assert (info.multiframe, info.n_slices, info.plane, info.rows, info.columns) == (True, 12, "sagittal", 64, 64)
    assert info.pixel_spacing == pytest.approx((0.7, 0.9))
    scan = read_series(info)
    assert_allclose(scan.affine, affine, atol=ATOL)
    assert scan.array.dtype == np.float32
    np.testing.assert_array_equal(scan.array, arr.astype(np.float32) * 2 - 10)


def test_enhanced_mr_frames_in_shuffled_order(tmp_path: Path) -> None:
    arr, affine = real_crop(shape=(32, 32, 6))
    write_enhanced(tmp_path / "e.dcm", arr, affine, frame_order=[3, 0, 5, 1, 4, 2])
    scan = read_folder(tmp_path)
    assert scan.array.dtype == np.uint8  # no PixelValueTransformation: stored values unchanged
    np.testing.assert_array_equal(scan.array, arr)
    assert_allclose(scan.affine, affine, atol=ATOL)


def test_an_enhanced_mr_inversion_recovery_is_read_from_its_functional_groups(tmp_path: Path) -> None:
    """An Enhanced MR STIR whose description names nothing keeps its inversion in the functional groups: it must not
    pass for the T2 its image looks like."""
    from pydicom.sequence import Sequence as DicomSequence

    arr, affine = real_crop(shape=(32, 32, 6))
    write_enhanced(tmp_path / "e.dcm", arr, affine, description="SAG")
    ds = pydicom.dcmread(tmp_path / "e.dcm")
    assert dicom._sequence_hint(ds) is None  # nothing named, nothing timed
    modifier, echo, timing = Dataset(), Dataset(), Dataset()
    modifier.InversionRecovery, modifier.InversionTimes = "YES", [150.0]
    echo.EffectiveEchoTime = 60.0
    timing.RepetitionTime = 4000.0
    shared = ds.SharedFunctionalGroupsSequence[0]
    shared.MRModifierSequence = DicomSequence([modifier])
    shared.MREchoSequence = DicomSequence([echo])
    shared.MRTimingAndRelatedParametersSequence = DicomSequence([timing])
    ds.EchoPulseSequence = "SPIN"
    assert dicom._sequence_hint(ds) == "STIR"
    del modifier.InversionTimes  # an inversion recovery of unknown TI: no T2 either
    assert dicom._sequence_hint(ds) == "other"
    modifier.InversionRecovery = "NO"
    echo.EffectiveEchoTime = 100.0
    assert dicom._sequence_hint(ds) == "T2"
    ds.SpectrallySelectedSuppression = "FAT"  # a fat-suppressed T2
    assert dicom._sequence_hint(ds) == "other"


@pytest.mark.parametrize("tilt", [0.0, 19.0])
def test_positions_and_orientations_written_with_few_decimals_are_one_regular_series(
    tmp_path: Path, tilt: float
) -> None:
    """3.33 mm slices whose positions are written to 0.1 mm (gaps of 3.3 and 3.4 mm; more spread on an oblique
    stack, each coordinate rounded on its own) and direction cosines that differ by 1e-4 from image to image had
    been refused as irregular or as mixing orientations."""
    arr, _ = real_crop(shape=(32, 32, 9))
    affine = make_affine(rotation("x", tilt) @ rotation("z", tilt / 3) @ SAG, (0.8, 0.8, 3.33), (29.71, 39.24, -41.46))
    _, files = write_series(tmp_path, arr, affine, shuffle_seed=None)
    rng = np.random.default_rng(0)
    for f in files:
        ds = pydicom.dcmread(f)
        ds.ImagePositionPatient = [f"{float(v):.1f}" for v in ds.ImagePositionPatient]
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient]) + rng.uniform(-1e-4, 1e-4, 6)
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
        ds.save_as(f)
    scan = load_scan(tmp_path)
    assert scan.shape == (32, 32, 9) and scan.spacing[2] == pytest.approx(3.33, abs=0.02)
    _, files = write_series(tmp_path / "missing", arr, affine, shuffle_seed=None)
    files[4].unlink()  # a missing slice is still caught
    with pytest.raises(GeometryError, match="irregular slice spacing"):
        load_scan(tmp_path / "missing")


def _write_two_acquisitions_under_one_uid(folder: Path, second: dict[str, object]) -> None:
    """A T2 (6 slices) and a second acquisition (``second``'s header fields, 6 slices 1 mm beside) written under
    one SeriesInstanceUID, their slices interleaved."""
    arr, affine = real_crop(shape=(32, 32, 12))
    ids = new_ids()
    _, files = write_series(folder, arr, affine, ids=ids, description="t2_tse_sag", shuffle_seed=None)
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.EchoTime, ds.RepetitionTime, ds.ImageType = 100.0, 4000.0, ["ORIGINAL", "PRIMARY", "M", "ND"]
        for k, v in second.items() if i % 2 else ():
            setattr(ds, k, v)
        ds.save_as(f)


@pytest.mark.parametrize(
    ("second", "said"),
    [
        ({"SeriesDescription": "t2_tirm_sag", "ScanningSequence": ["SE", "IR"], "InversionTime": 150}, "t2_tirm_sag"),
        ({"ImageType": ["DERIVED", "PRIMARY", "WATER"]}, "Dixon image type WATER / none"),
        ({"EchoTime": 12.0}, "echo times"),
    ],
)
def test_a_series_of_two_acquisitions_under_one_uid_is_not_read_as_one(
    tmp_path: Path, second: dict[str, object], said: str
) -> None:
    """A T2 and a STIR (or a Dixon series' water images, a dual-echo series) under one SeriesInstanceUID: read as one
    volume it interleaves two contrasts, and whether it passed for T2 depended on which image came first."""
    _write_two_acquisitions_under_one_uid(tmp_path / "mixed", second)
    with pytest.raises(ScanReadError, match="not read; export each acquisition as its own series") as err:
        load_scan(tmp_path / "mixed")  # alone in its folder: said why
    assert said in str(err.value)
    arr, affine = real_crop(shape=(32, 32, 4))  # beside a plain T2 series with fewer slices: that one is read
    ids, _ = write_series(tmp_path / "plain", arr, affine, series_number=5)
    mixed = next(s for s in discover_series(tmp_path) if s.n_slices == 12)
    assert "under one SeriesInstanceUID" in (mixed.problem or "")
    assert load_scan(tmp_path).source.series_uid == ids.series_uid


def test_localizer_images_filed_under_a_series_uid_are_a_series_of_their_own(tmp_path: Path) -> None:
    """Three scout planes stored under the sagittal series' SeriesInstanceUID had failed the whole study as "several
    acquisitions", named after the scouts."""
    arr, affine = real_crop(shape=(32, 32, 8))
    ids, _ = write_series(tmp_path / "t2", arr, affine, series_number=3)
    scouts = write_series(tmp_path / "loc", arr[:, :, 3:6], affine, ids=ids, series_number=3, description="loc")[1]
    for i, f in enumerate(scouts):
        ds = pydicom.dcmread(f)
        ds.ImageType, ds.EchoTime = ["ORIGINAL", "PRIMARY", "LOCALIZER"], 3.0
        if i:  # two of them in other planes
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0] if i == 1 else [1, 0, 0, 0, 0, -1]
        ds.save_as(f)
    found = discover_series(tmp_path)
    assert sorted(s.n_slices for s in found) == [3, 8]
    t2 = next(s for s in found if s.n_slices == 8)
    assert t2.series_uid == ids.series_uid and t2.problem is None and t2.description == "t2_tse_sag"
    read = load_scan(tmp_path)
    assert read.shape[2] == 8 and read.source.series_uid == ids.series_uid
    # the scouts share the series' number: asked for by that number, the series itself is read (not "2 series")
    assert load_scan(tmp_path, series=3).shape[2] == 8
    from openspine.io.dicom import series_roles

    picks = {found[r.index].n_slices: r.pick for r in series_roles(found)}
    assert picks[8] == "3" and picks[3] != "3"
    only_scouts = tmp_path / "loc"  # a series of localizers alone stays one series
    assert [s.n_slices for s in discover_series(only_scouts)] == [3]


@pytest.mark.parametrize(
    "second",
    [
        {"InversionTime": 0},  # 0 on some images, absent on the others: no inversion on any
        {"SequenceName": ""},  # a converter's blank or missing element says nothing
        {"SeriesDescription": None},
        {"SeriesDescription": "T2_TSE_SAG"},  # the same words in other case
        {"SequenceName": "*tse2d1rs15"},  # a variant of the same sequence's name
        {"SequenceName": "*tir2d1_13"},  # named on half the images only: the sequence the header rules derive differs
        {"ScanningSequence": ["SE", "IR"], "InversionTime": 145.4, "SeriesDescription": "stir"},
    ],
)
def test_gaps_and_rounding_in_one_acquisition_s_headers_are_no_second_acquisition(
    tmp_path: Path, second: dict[str, object]
) -> None:
    """A regression sweep's series, each one acquisition, that a first version of the rule had refused."""
    if "InversionTime" in second and second["InversionTime"] == 145.4:  # TI jitter of 0.8 ms on a STIR
        _write_two_acquisitions_under_one_uid(tmp_path, {**second})
        for i, f in enumerate(sorted(tmp_path.iterdir())):
            ds = pydicom.dcmread(f)
            ds.ScanningSequence, ds.SeriesDescription, ds.InversionTime = ["SE", "IR"], "stir", 144.6 + 0.8 * (i % 2)
            ds.save_as(f)
    elif second.get("SeriesDescription", "") is None:
        _write_two_acquisitions_under_one_uid(tmp_path, {})
        for f in sorted(tmp_path.iterdir())[::4]:
            ds = pydicom.dcmread(f)
            del ds.SeriesDescription
            ds.save_as(f)
    else:
        _write_two_acquisitions_under_one_uid(tmp_path, second)
    (info,) = discover_series(tmp_path)
    assert info.problem is None, info.problem
    assert load_scan(tmp_path).shape[2] == 12


def test_one_acquisition_whose_tr_varies_is_read(tmp_path: Path) -> None:
    """TR varies from image to image under respiratory triggering: still one acquisition."""
    _write_two_acquisitions_under_one_uid(tmp_path, {"RepetitionTime": 3300.0})
    (info,) = discover_series(tmp_path)
    assert info.is_image and load_scan(tmp_path).shape[2] == 12


# --------------------------------------------------------------------------------------------------------------
# several series in one folder
# --------------------------------------------------------------------------------------------------------------
def _write_study(root: Path) -> dict[str, str]:
    """Axial localiser (#1, 3 slices), sagittal T1 (#2, 8 slices), sagittal T2 (#3, 12 slices), and an SR."""
    arr, _ = real_crop()
    study = generate_uid()
    uids = {}
    loc = make_affine(AXIAL, (1.0, 1.0, 10.0), ORIGIN)
    uids["loc"] = write_series(root / "s1", arr[:, :, :3], loc, ids=new_ids(study), series_number=1,
                               description="localizer")[0].series_uid  # fmt: skip
    sag = make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN)
    uids["t1"] = write_series(root / "s2", arr[:, :, :8], sag, ids=new_ids(study), series_number=2,
                              description="t1_tse_sag")[0].series_uid  # fmt: skip
    uids["t2"] = write_series(root / "s3", arr, sag, ids=new_ids(study), series_number=3,
                              description="t2_tse_sag")[0].series_uid  # fmt: skip
    write_text_sr(root / "sr" / "report.dcm", new_ids(study))
    (root / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    (root / "notes.txt").write_text("not DICOM")
    return uids


def test_study_folder_lists_image_series_only(tmp_path: Path) -> None:
    uids = _write_study(tmp_path)
    found = discover_series(tmp_path)
    assert [s.series_uid for s in found] == [uids["loc"], uids["t1"], uids["t2"]]  # by SeriesNumber
    assert [s.plane for s in found] == ["axial", "sagittal", "sagittal"]
    assert [s.n_slices for s in found] == [3, 8, 12]
    assert [s.sequence_hint for s in found] == ["other", "T1", "T2"]  # the localiser is no T1 or T2
    assert len({s.study_uid for s in found}) == 1


def test_a_series_with_a_missing_slice_gives_way_to_one_that_can_be_read(tmp_path: Path) -> None:
    """A repeated T2 missing a slice (the bigger one) had failed the study although an intact T2 was beside it; a
    bigger T1 missing a slice had left the study without a T1 although another T1 was there."""
    from openspine.io.dicom import series_roles

    arr, _ = real_crop()
    study = generate_uid()
    sag = make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN)
    t2 = write_series(tmp_path / "t2", arr[:, :, :6], sag, ids=new_ids(study), series_number=3)[0].series_uid
    files = write_series(tmp_path / "t2b", arr, sag, ids=new_ids(study), series_number=7)[1]
    files[5].unlink()
    t1 = write_series(tmp_path / "t1", arr[:, :, :6], sag, ids=new_ids(study), series_number=2,
                      description="t1_tse_sag")[0].series_uid  # fmt: skip
    files = write_series(tmp_path / "t1b", arr, sag, ids=new_ids(study), series_number=6, description="t1_tse_sag")[1]
    files[5].unlink()
    study_read = load_study(tmp_path)
    assert study_read.main.source.series_uid == t2 and study_read.t1 is not None
    assert study_read.t1.source.series_uid == t1
    found = discover_series(tmp_path)
    roles = {found[r.index].series_number: r for r in series_roles(found)}
    assert "1 sagittal series whose images cannot be read as one volume left aside (#7" in roles[3].reason
    for broken in (6, 7):
        assert roles[broken].role == "not used"
        assert roles[broken].reason.startswith("its images do not form one volume: irregular slice spacing")
    with pytest.raises(GeometryError, match="irregular slice spacing"):  # asked for, it fails as before
        load_scan(tmp_path, series=7)


def test_a_broken_t2_is_not_replaced_by_a_t1_of_the_study(tmp_path: Path) -> None:
    """Passing over a T2 missing a slice for the T1 beside it would pass for the study's reading while giving no
    grade: the study fails with the T2's reason, as before."""
    arr, _ = real_crop()
    study = generate_uid()
    sag = make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN)
    files = write_series(tmp_path / "t2", arr, sag, ids=new_ids(study), series_number=3)[1]
    files[5].unlink()
    write_series(tmp_path / "t1", arr[:, :, :6], sag, ids=new_ids(study), series_number=2, description="t1_tse_sag")
    with pytest.raises(GeometryError, match="irregular slice spacing"):
        load_study(tmp_path)


def test_a_key_image_does_not_stand_in_for_a_broken_series(tmp_path: Path) -> None:
    """A one-slice series saved under the T2's name (a key image) beside a T2 missing a slice had been read as the
    study's T2 with no flag (user test): the study fails with the T2's reason. The same for a T1: the broken T1 keeps
    its role, cannot be read, and the study goes on without a T1, saying so."""
    from openspine.io.dicom import series_roles

    arr, _ = real_crop()
    study = generate_uid()
    sag = make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN)
    files = write_series(tmp_path / "t2", arr, sag, ids=new_ids(study), series_number=3)[1]
    files[5].unlink()
    write_series(tmp_path / "key", arr[:, :, 5:6], sag, ids=new_ids(study), series_number=1003)
    with pytest.raises(GeometryError, match="irregular slice spacing"):
        load_study(tmp_path)
    # a repeat with half the slices or more still stands in for it
    write_series(tmp_path / "t2r", arr[:, :, :6], sag, ids=new_ids(study), series_number=4)
    assert load_study(tmp_path).main.shape[2] == 6

    # a 2D T2 of several slices stands in for a 3D T2 of many more that misses one (the review's case)
    big = tmp_path / "big"
    arr3d = np.concatenate([arr, arr, arr], axis=2)  # 36 slices
    files = write_series(big / "space", arr3d, sag, ids=new_ids(study), series_number=5)[1]
    files[18].unlink()
    write_series(big / "tse", arr[:, :, :6], sag, ids=new_ids(study), series_number=3)
    assert load_study(big).main.shape[2] == 6

    # beside a T2 of two acquisitions under one UID (not read), a key image is no T2 either
    mixed = tmp_path / "mixed"
    _write_two_acquisitions_under_one_uid(mixed / "t2", {"EchoTime": 200.0})
    write_series(mixed / "key", arr[:, :, 5:6], sag, ids=new_ids(), series_number=1003, description="t2_tse_sag")
    with pytest.raises(ScanReadError, match="several acquisitions"):
        load_study(mixed)

    t1_study = tmp_path / "with_t1"
    write_series(t1_study / "t2", arr, sag, ids=new_ids(study), series_number=3)
    files = write_series(t1_study / "t1", arr, sag, ids=new_ids(study), series_number=2, description="t1_tse_sag")[1]
    files[5].unlink()
    write_series(t1_study / "k", arr[:, :, 5:6], sag, ids=new_ids(study), series_number=1002, description="t1_tse_sag")
    found = discover_series(t1_study)
    roles = {found[r.index].series_number: r.role for r in series_roles(found)}
    assert roles[2] == "T1" and roles[1002] == "not used"
    read = load_study(t1_study)
    assert read.t1 is None and any(f.startswith("t1_not_used") for f in read.flags)


def test_files_left_out_unread_are_flagged_in_the_series_read(tmp_path: Path) -> None:
    """A damaged file at the edge of a series leaves a regular volume behind: the scan had been read one slice short
    with only a warning on stderr (user test); its header flags now name the file for result.json."""
    arr, affine = real_crop(shape=(16, 16, 3))
    write_series(tmp_path / "ok", arr, affine)
    (tmp_path / "IM0000").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"\x01" * 10)
    scan = read_series(discover_series(tmp_path)[0])
    (flag,) = scan.source.header_flags
    assert flag.startswith("dicom_files_unreadable: 1 file(s)") and "IM0000" in flag
    assert read_series(discover_series(tmp_path / "ok")[0]).source.header_flags == ()
    # not flagged: a broken link, a vendor's non-image object without pixels (a Siemens PhoenixZIPReport, Modality
    # MR), an image of another series cut short (its header names its series)
    (tmp_path / "IM0000").unlink()
    (tmp_path / "notes.txt").symlink_to(tmp_path / "nowhere")
    report = pydicom.dcmread(next((tmp_path / "ok").iterdir()))
    del report.PixelData, report.Rows
    report.SOPClassUID, report.SOPInstanceUID = "1.3.12.2.1107.5.9.1", generate_uid()
    report.save_as(tmp_path / "phoenix.dcm")
    other, other_files = write_series(tmp_path / "other", arr, affine, series_number=7)
    cut = pydicom.dcmread(other_files[0])
    del cut.PixelData
    cut.SOPInstanceUID = generate_uid()
    cut.save_as(tmp_path / "other" / "cut.dcm")
    found = discover_series(tmp_path)
    ok = next(s for s in found if s.series_uid != other.series_uid)
    assert read_series(ok).source.header_flags == ()
    (flag,) = read_series(next(s for s in found if s.series_uid == other.series_uid)).source.header_flags
    assert "cut.dcm" in flag and "phoenix" not in flag and "notes" not in flag


def test_a_t1_keeps_its_own_header_flags_only_the_study_s_unreadable_files_are_said_once() -> None:
    from openspine.analysis import _header_flags
    from openspine.scan import Scan, ScanSource

    def scan(*flags: str) -> Scan:
        return Scan(np.zeros((4, 4, 2)), np.eye(4), ScanSource(path="x", format="nifti", header_flags=flags))

    units, damage = "nifti_units: the header gives its lengths in metres", "dicom_files_unreadable: 1 file(s) …"
    assert _header_flags(scan(units, damage), scan(units, damage)) == [units, damage, units.replace(":", " (T1):", 1)]


def test_a_one_slice_series_is_no_station(tmp_path: Path) -> None:
    """A single slice far below a many-slice series of the same frame of reference is no station of a whole-spine
    study: its role must not say so beside a main series chosen for its slices."""
    from openspine.io.dicom import series_roles

    arr, _ = real_crop()
    study, frame = generate_uid(), generate_uid()
    high = make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN + np.array([0.0, 0.0, 400.0]))
    low = make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN)
    write_series(tmp_path / "hi", arr, high, ids=new_ids(study, frame), series_number=8)
    write_series(tmp_path / "lo", arr[:, :, :1], low, ids=new_ids(study, frame), series_number=3)
    found = discover_series(tmp_path)
    roles = {found[r.index].series_number: r for r in series_roles(found)}
    assert roles[8].role == "main" and "another station" not in roles[3].reason


def test_default_choice_is_sagittal_with_most_slices(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    uids = _write_study(tmp_path)
    found = discover_series(tmp_path)
    with caplog.at_level(logging.INFO, logger="openspine"):
        chosen = choose_series(found, None)
    assert chosen.series_uid == uids["t2"]
    assert "the sagittal series with the most slices" in caplog.text
    scan = load_scan(tmp_path)
    assert scan.source.series_uid == uids["t2"]
    assert scan.shape == (64, 64, 12)


def test_choose_quiet_logs_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write_study(tmp_path)
    found = discover_series(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="openspine"):
        choose_series(found, None, quiet=True)
    assert caplog.text == ""


def test_choose_by_uid_number_and_index(tmp_path: Path) -> None:
    uids = _write_study(tmp_path)
    found = discover_series(tmp_path)
    assert choose_series(found, uids["t1"], quiet=True).series_uid == uids["t1"]
    assert choose_series(found, 2, quiet=True).series_uid == uids["t1"]  # SeriesNumber 2
    assert choose_series(found, " 2 ", quiet=True).series_uid == uids["t1"]
    # SeriesNumber takes precedence over the index: 1 is the localiser's number (index 1 would be T1) ...
    assert choose_series(found, 1, quiet=True).series_uid == uids["loc"]
    # ... and an integer that is no SeriesNumber is an index
    assert choose_series(found, 0, quiet=True).series_uid == uids["loc"]
    assert choose_series(found, "0", quiet=True).series_uid == uids["loc"]
    scan = load_scan(tmp_path, series=uids["t1"])
    assert scan.shape == (64, 64, 8)


@pytest.mark.parametrize("wanted", [7, "7", "1.2.3.4.does.not.exist", -1])
def test_choose_unknown_series_lists_what_exists(tmp_path: Path, wanted: str | int) -> None:
    _write_study(tmp_path)
    found = discover_series(tmp_path)
    with pytest.raises(SeriesSelectionError, match="no series matches") as err:
        choose_series(found, wanted, quiet=True)
    for s in found:
        assert s.series_uid in str(err.value)
        assert s.description is not None and s.description in str(err.value)


def _info(number: int, plane: str, n: int) -> SeriesInfo:
    return series_info(number, plane, n, None)


def test_default_choice_ties_go_to_the_later_series() -> None:
    """A series is repeated when the first was degraded (motion): of two alike, the repeat is read."""
    found = [_info(5, "sagittal", 15), _info(4, "sagittal", 15), _info(6, "sagittal", 12), _info(1, "axial", 30)]
    chosen, why = choose_series_why(found, None)
    assert chosen.series_number == 5 and why.endswith("as many slices as #4: the later series is read (a series is "
                                                      "repeated when the first was degraded)")  # fmt: skip


def test_default_choice_without_a_sagittal_series() -> None:
    # only axial and coronal series: the largest is read, for the analysis to refuse it as not sagittal (exit 3)
    found = [_info(1, "axial", 20), _info(2, "coronal", 24)]
    assert choose_series(found, None, quiet=True).series_number == 2
    # ... also beside a localiser of several planes, as nearly every study holds (it had failed as a read error)
    found = [_info(1, "mixed", 3), _info(4, "axial", 60)]
    chosen, why = choose_series_why(found, None)
    assert chosen.series_number == 4 and "1 axial or coronal, and 1 of several planes (a localiser)" in why
    # a series whose plane is not known (oblique) beside them: the choice is the user's
    found = [_info(1, "axial", 20), _info(2, "oblique", 20)]
    with pytest.raises(SeriesSelectionError, match="none of the 2 series is sagittal") as err:
        choose_series(found, None, quiet=True)
    assert "series 1" in str(err.value) and "series 2" in str(err.value)


def test_lone_non_sagittal_series_is_chosen() -> None:
    assert choose_series([_info(1, "axial", 20)], None, quiet=True).series_number == 1


def test_series_number_shared_by_two_series_is_ambiguous() -> None:
    found = [_info(3, "sagittal", 10), SeriesInfo(**{**_info(3, "sagittal", 9).__dict__, "series_uid": "9.9"})]
    with pytest.raises(SeriesSelectionError, match="2 series have SeriesNumber 3"):
        choose_series(found, 3, quiet=True)


def test_describe_and_to_dict_hold_no_identifiers(tmp_path: Path) -> None:
    _write_study(tmp_path)
    found = discover_series(tmp_path)
    for s in found:
        d = s.to_dict()
        text = json.dumps(d) + s.describe()  # JSON-able
        assert "files" not in d
        assert FAKE_PATIENT_NAME not in text and FAKE_PATIENT_ID not in text
        assert str(tmp_path) not in text
    assert found[2].describe() == "#3 't2_tse_sag' MR sagittal, 12 slices of 64×64"
    listed = list_series(tmp_path)
    assert [d["chosen"] for d in listed] == [False, False, True]
    assert [d["index"] for d in listed] == [0, 1, 2]
    json.dumps(listed)


def test_scan_source_filled_without_identifiers(tmp_path: Path) -> None:
    arr, affine = real_crop(shape=(16, 16, 3))
    ids, _ = write_series(tmp_path, arr, affine, series_number=4, description="T2 STIR sag")
    scan = load_scan(tmp_path)
    src = scan.source
    assert (src.format, src.path, src.series_uid) == ("dicom", str(tmp_path), ids.series_uid)
    assert (src.series_number, src.series_description, src.modality) == (4, "T2 STIR sag", "MR")
    assert (src.study_uid, src.frame_of_reference_uid) == (ids.study_uid, ids.frame_of_reference_uid)
    assert (src.manufacturer, src.sequence_hint) == ("OpenSpineTest", "STIR")
    text = json.dumps(src.to_dict())
    assert FAKE_PATIENT_NAME not in text and FAKE_PATIENT_ID not in text


@pytest.mark.parametrize(
    ("fields", "hint"),
    [
        ({"SeriesDescription": "t2_tse_sag_384"}, "T2"),
        ({"SeriesDescription": "SAG T1W"}, "T1"),
        ({"SeriesDescription": "tirm_sag"}, "STIR"),
        ({"SeriesDescription": "T2 STIR"}, "STIR"),
        ({"SeriesDescription": "T12-L1 level", "ProtocolName": "t1 sag"}, "T1"),
        ({"SeriesDescription": "localizer", "SequenceName": "*tse2d1_15"}, "other"),
        # an inversion recovery nothing places is no T2 (a STIR reads as one): not graded
        ({"ScanningSequence": ["SE", "IR"]}, "other"),
        ({"SequenceName": "*tir2d1_13", "SeriesDescription": "SAG"}, "other"),
        ({"SequenceName": "*tir2d1_13", "InversionTime": 150}, "STIR"),
        ({"ScanningSequence": ["SE", "IR"], "SeriesDescription": "T1 FLAIR SAG"}, "T1"),
        ({"SequenceName": "*tse2d1_17", "ScanningSequence": "SE"}, None),
        ({}, None),
    ],
)
def test_sequence_hint(fields: dict[str, object], hint: str | None) -> None:
    ds = Dataset()
    for k, v in fields.items():
        setattr(ds, k, v)
    assert dicom._sequence_hint(ds) == hint


# --------------------------------------------------------------------------------------------------------------
# inputs: single files, zips, preamble-less files
# --------------------------------------------------------------------------------------------------------------
def test_load_scan_zip_equals_folder(tmp_path: Path) -> None:
    arr, affine = real_crop()
    write_series(tmp_path / "series", arr, affine, transfer_syntax=RLELossless)
    zip_path = zip_folder(tmp_path / "series", tmp_path / "study.zip")
    a, b = load_scan(tmp_path / "series"), load_scan(zip_path)
    np.testing.assert_array_equal(a.array, b.array)
    assert_allclose(a.affine, b.affine, atol=1e-9)
    assert b.source.path == str(zip_path)
    assert a.source.series_uid == b.source.series_uid
    assert [d["n_slices"] for d in list_series(zip_path)] == [12]


def test_single_file_reads_as_one_slice(tmp_path: Path) -> None:
    arr, affine = real_crop(shape=(64, 64, 3))
    _, files = write_series(tmp_path, arr, affine)
    scan = load_scan(files[1])
    assert scan.shape == (64, 64, 1)
    np.testing.assert_array_equal(scan.array[:, :, 0], arr[:, :, 1])
    expected = affine.copy()
    expected[:3, 3] = world(affine, (0, 0, 1))
    assert_allclose(scan.affine, expected, atol=ATOL)  # third axis: SliceThickness (1 mm) along the normal
    assert scan.source.path == str(files[1])


def test_preamble_less_file(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    bare_ds = Dataset()
    for elem in ds:  # the data set alone: no file meta, no preamble
        bare_ds.add(elem)
    bare = tmp_path / "bare"
    pydicom.dcmwrite(bare, bare_ds, implicit_vr=True, little_endian=True)
    assert bare.read_bytes()[128:132] != b"DICM"
    assert is_dicom_file(bare)
    assert discover_series(bare)[0].n_slices == 1
    scan = load_scan(bare)
    np.testing.assert_array_equal(scan.array[:, :, 0], ds.pixel_array)


def test_is_dicom_file_negatives(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "text.dcm").write_text("hello, I am not DICOM " * 20)
    (tmp_path / "short").write_bytes(b"\x08\x00")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 200)
    (tmp_path / "dir").mkdir()
    for name in ("empty", "text.dcm", "short", "png", "dir", "missing"):
        assert not is_dicom_file(tmp_path / name), name
    assert is_dicom_file(Path(get_testdata_file("MR_small.dcm")))


# --------------------------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------------------------
def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    with pytest.raises(ScanReadError, match="empty folder"):
        discover_series(tmp_path)


def test_folder_without_dicom(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "c.bin").write_bytes(b"\0" * 1000)
    with pytest.raises(ScanReadError, match=r"no DICOM files found in .* \(3 files looked at\)"):
        discover_series(tmp_path)
    with pytest.raises(ScanReadError, match="no DICOM files found") as refused:
        load_scan(tmp_path)
    assert "1 PNG/JPEG picture(s)" in str(refused.value) and "openspine batch" in str(refused.value)  # a way out
    (tmp_path / "deep" / "scan.nii.gz").write_bytes(b"\0" * 10)  # a NIfTI beside them: pointed at
    with pytest.raises(ScanReadError, match=r"it holds 1 NIfTI file\(s\), e.g. '.*scan.nii.gz': analyse the file"):
        load_scan(tmp_path)


def test_truncated_file_is_named(tmp_path: Path) -> None:
    arr, affine = real_crop(shape=(32, 32, 4))
    _, files = write_series(tmp_path, arr, affine)
    files[2].write_bytes(files[2].read_bytes()[:-300])
    with pytest.raises(ScanReadError, match="truncated") as err:
        read_folder(tmp_path)
    assert files[2].name in str(err.value)


def test_pixel_data_longer_than_rows_and_columns_need_is_refused(tmp_path: Path) -> None:
    # Columns cut by 4 with the pixels unchanged had been read as a scrambled image without a word (user test)
    arr, affine = real_crop(shape=(32, 32, 4))
    _, files = write_series(tmp_path, arr, affine)
    for f in files:
        ds = pydicom.dcmread(f)
        ds.Columns = 28
        ds.save_as(f)
    with pytest.raises(ScanReadError, match=r"more than its 32×28×1 pixels of .* need: its Rows and Columns do not"):
        read_folder(tmp_path)


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # the UID cut in the middle
def test_a_file_cut_inside_its_header_is_named_where_the_series_misses_its_slice(tmp_path: Path) -> None:
    """The first 400 bytes of a slice parse as an image object without pixel data: not a report to skip quietly,
    but a damaged file the read error names (the series misses that slice)."""
    arr, affine = real_crop(shape=(32, 32, 5))
    _, files = write_series(tmp_path / "series", arr, affine, shuffle_seed=None)
    files[2].write_bytes(files[2].read_bytes()[:400])
    with pytest.raises(GeometryError, match="irregular slice spacing") as err:
        read_folder(tmp_path / "series")
    assert f"could not be read, a missing slice may be one of them: {files[2].name}" in str(err.value)
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / files[2].name).write_bytes(files[2].read_bytes())
    with pytest.raises(ScanReadError, match=r"holds 1 DICOM file\(s\) whose header cannot be read"):
        read_folder(alone)


def test_pydicom_truncated_test_file() -> None:
    with pytest.raises(ScanReadError, match="MR_truncated.dcm"):
        load_scan(get_testdata_file("MR_truncated.dcm"))


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # pydicom's own complaint about the garbage
def test_unreadable_header_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    arr, affine = real_crop(shape=(16, 16, 3))
    write_series(tmp_path / "ok", arr, affine)
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"\x01" * 10)
    with caplog.at_level(logging.WARNING, logger="openspine"):
        found = discover_series(tmp_path)
    assert [s.n_slices for s in found] == [3]
    assert "bad.dcm" in caplog.text
    with pytest.raises(ScanReadError, match="header cannot be read"):
        discover_series(bad)


def test_only_objects_without_pixel_data(tmp_path: Path) -> None:
    write_text_sr(tmp_path / "sr1.dcm")
    write_text_sr(tmp_path / "sr2.dcm")
    with pytest.raises(ScanReadError, match="none with image pixel data"):
        discover_series(tmp_path)


def test_image_without_pixel_data_is_left_out(tmp_path: Path) -> None:
    arr, affine = real_crop(shape=(16, 16, 3))
    _, files = write_series(tmp_path, arr, affine)
    ds = pydicom.dcmread(files[0])
    del ds.PixelData
    ds.SOPInstanceUID = generate_uid()
    ds.ImagePositionPatient = [0, 0, 0]
    ds.save_as(tmp_path / "no_pixels.dcm")
    found = discover_series(tmp_path)
    assert [s.n_slices for s in found] == [3]
    np.testing.assert_array_equal(read_series(found[0]).array, arr)


def test_mixed_orientations_are_named(tmp_path: Path) -> None:
    arr, _ = real_crop()
    ids = new_ids()
    write_series(tmp_path, arr, make_affine(SAG, (1, 1, 3), ORIGIN), ids=ids, prefix="SAG")
    write_series(tmp_path, arr[:, :, :3], make_affine(AXIAL, (1, 1, 3), ORIGIN), ids=ids, prefix="AX")
    found = discover_series(tmp_path)
    assert found[0].plane == "mixed"
    with pytest.raises(GeometryError, match="mixes 2 orientations") as err:
        read_series(found[0])
    msg = str(err.value)
    assert "(12 files)" in msg and "(3 files)" in msg
    assert "[0, 1, 0, 0, 0, -1]" in msg  # the sagittal ImageOrientationPatient


def test_irregular_gap_is_named(tmp_path: Path) -> None:
    arr, affine = real_crop()
    affine = make_affine(SAG, (1, 1, 3), ORIGIN)
    _, files = write_series(tmp_path, arr, affine)
    files[5].unlink()  # a missing slice
    with pytest.raises(GeometryError, match="irregular slice spacing") as err:
        read_folder(tmp_path)
    msg = str(err.value)
    assert "is 6.000 mm" in msg and "median gap is 3.000 mm" in msg
    assert "between slices 4 and 5" in msg


def test_an_image_sent_again_under_a_new_uid_is_read_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The same position, header and pixels as an image of the series: it had failed the series as "several images
    per position (echoes, time points …)" (user test), and discovery had counted it as a slice of its own (review)."""
    arr, affine = real_crop(shape=(16, 16, 4))
    _, files = write_series(tmp_path, arr, affine)
    ds = pydicom.dcmread(files[1])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(tmp_path / "zz-resent.dcm")
    with caplog.at_level("WARNING", logger="openspine"):
        (info,) = discover_series(tmp_path)
    assert info.n_slices == 4 and info.problem is None
    assert info.resent == ((tmp_path / "zz-resent.dcm", files[1]),)
    assert "'zz-resent.dcm' repeats" in caplog.text and "new SOPInstanceUID" in caplog.text
    np.testing.assert_array_equal(read_folder(tmp_path).array, arr)
    # sent again with a header set right (another pixel spacing): not the same image, the series still fails
    ds.PixelSpacing = [0.6, 0.6]
    ds.save_as(tmp_path / "zz-resent.dcm")
    with pytest.raises(GeometryError, match="duplicate slice positions|pixel spacings"):
        read_folder(tmp_path)


def test_duplicate_positions(tmp_path: Path) -> None:
    arr, affine = real_crop(shape=(16, 16, 4))
    _, files = write_series(tmp_path, arr, affine)
    ds = pydicom.dcmread(files[1])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    pixels = ds.pixel_array.copy()
    pixels[0, 0] += 1  # a second echo at the same position: other pixels
    ds.PixelData = pixels.tobytes()
    ds.save_as(tmp_path / "echo2.dcm")
    with pytest.raises(GeometryError, match="duplicate slice positions") as err:
        read_folder(tmp_path)
    assert "echo2.dcm" in str(err.value) and files[1].name in str(err.value) and "both lie at" in str(err.value)
    assert "echoes, time points" in str(err.value)
    # slices 0.1 mm apart: too close to tell apart, and not said to lie at one position (they had been)
    close = tmp_path / "close"
    step = affine.copy()
    step[:3, 2] = step[:3, 2] / np.linalg.norm(step[:3, 2]) * 0.1
    write_series(close, arr, step)
    with pytest.raises(GeometryError, match=r"slices too close together \(3 of 3 steps.*lie 0\.100 mm apart along"):
        read_folder(close)


def test_two_stacks_at_different_heights_under_one_series_are_read_apart(tmp_path: Path) -> None:
    """A whole-spine study's two stations saved under one series UID had been refused as duplicate slice positions
    (and before that as "echoes, time points"), though their images lie 290 mm apart (user test): each stack is a
    series of its own (a real one: tests/io/test_study.py)."""
    arr, affine = real_crop(shape=(16, 16, 4))
    ids, _ = write_series(tmp_path, arr, affine, prefix="LO")
    upper = affine.copy()
    upper[:3, 3] += (0.0, 0.0, 290.0)  # the same slices 290 mm higher
    write_series(tmp_path, arr, upper, ids=ids, prefix="UP")
    found = list_series(tmp_path)
    assert [s["series_uid"] for s in found] == [f"{ids.series_uid} (stack 1 of 2)", f"{ids.series_uid} (stack 2 of 2)"]
    assert [s["n_files"] for s in found] == [4, 4] and found[0]["height_mm"][0] > found[1]["height_mm"][1]
    lower = read_folder(tmp_path, f"{ids.series_uid} (stack 2 of 2)")
    assert lower.shape == arr.shape and lower.source.series_uid == f"{ids.series_uid} (stack 2 of 2)"
    assert read_folder(tmp_path, f"{ids.series_uid} (stack 1 of 2)").affine[2, 3] == lower.affine[2, 3] + 290
    # an image 290 mm off its stack's others, alone: no station, so the series stays whole and is refused
    stray = tmp_path / "stray"
    write_series(stray, arr, affine, ids=(one := new_ids()), prefix="LO")
    ds = pydicom.dcmread(next(stray.glob("LO*.dcm")))
    ds.ImagePositionPatient = [float(v) for v in ds.ImagePositionPatient[:2]] + [
        float(ds.ImagePositionPatient[2]) + 290
    ]
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(stray / "UP.dcm")
    assert [s["series_uid"] for s in list_series(stray)] == [one.series_uid]
    with pytest.raises(GeometryError, match="290 mm apart within the plane.*several stacks at different heights"):
        read_folder(stray)


def test_a_series_stacks_are_named_by_its_uid_or_number_and_scouts_or_a_sheared_stack_stay_whole(
    tmp_path: Path,
) -> None:
    """Review of the stack split: the UID a viewer shows, or the SeriesNumber, read the lowest stack (they had found
    "no series" and "2 series have SeriesNumber 1 (several studies?)"); localizer images at two heights filed under a
    series' UID stay its localizers (split into stacks, the number had become ambiguous); a stack drifting 1.5 mm a
    slice within the plane, 60 mm over its length, is one stack."""
    arr, affine = real_crop(shape=(16, 16, 4))
    two = tmp_path / "two"
    ids, _ = write_series(two, arr, affine, prefix="LO")
    upper = affine.copy()
    upper[:3, 3] += (0.0, 0.0, 290.0)
    write_series(two, arr, upper, ids=ids, prefix="UP")
    for wanted in (ids.series_uid, 1):
        scan = read_folder(two, wanted)
        assert scan.source.series_uid == f"{ids.series_uid} (stack 2 of 2)", wanted
    _, why = choose_series_why(discover_series(two), ids.series_uid)
    assert "its 2 stacks at different heights are read apart, and the lowest is read" in why, why
    # scouts at two heights under the series' UID: the series is still picked by its number
    scouted = tmp_path / "scouted"
    ids, _ = write_series(scouted / "t2", *real_crop(shape=(32, 32, 8)), series_number=5)
    for k, lift in enumerate((0.0, 300.0)):
        shifted = affine.copy()
        shifted[:3, 3] += (0.0, 0.0, lift)
        files = write_series(scouted / f"loc{k}", arr[:, :, :3], shifted, ids=ids, series_number=5, prefix=f"S{k}")[1]
        for f in files:
            ds = pydicom.dcmread(f)
            ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
            ds.save_as(f)
    assert load_scan(scouted, series=5).shape[2] == 8
    # a sheared stack: each slice 1.5 mm further within the plane than the last
    sheared = affine.copy()
    sheared[:3, 2] += sheared[:3, 0] / np.linalg.norm(sheared[:3, 0]) * 1.5
    drift = tmp_path / "drift"
    write_series(drift, np.repeat(arr, 10, axis=2), sheared)
    assert len(discover_series(drift)) == 1


def test_mixed_image_sizes(tmp_path: Path) -> None:
    arr, affine = real_crop(shape=(16, 16, 3))
    ids, _ = write_series(tmp_path, arr, affine)
    ipp, iop, ps = dicom_geometry(affine, 3)
    save(slice_dataset(np.zeros((8, 16), np.uint8), ipp, iop, ps, ids), tmp_path / "small.dcm")
    with pytest.raises(GeometryError, match=r"mixes 2 image sizes.*16×16 \(3 files\) and 8×16 \(1 files\)"):
        read_folder(tmp_path)


def test_mixed_pixel_spacing(tmp_path: Path) -> None:
    arr, affine = real_crop(shape=(16, 16, 3))
    ids, _ = write_series(tmp_path, arr, affine)
    ipp, iop, _ = dicom_geometry(affine, 3)
    save(slice_dataset(arr[:, :, 0], ipp, iop, [1.0, 0.5], ids), tmp_path / "other.dcm")
    with pytest.raises(GeometryError, match="mixes 2 pixel spacings"):
        read_folder(tmp_path)


def test_missing_geometry(tmp_path: Path) -> None:
    arr, affine = real_crop(shape=(16, 16, 2))
    _, files = write_series(tmp_path, arr, affine)
    ds = pydicom.dcmread(files[0])
    del ds.ImagePositionPatient
    ds.save_as(files[0])
    with pytest.raises(GeometryError, match="has no ImagePositionPatient"):
        read_folder(tmp_path)


def test_positions_off_a_line(tmp_path: Path) -> None:
    ids = new_ids()
    affine = make_affine(SAG, (1.0, 1.0, 2.0), ORIGIN)
    for k in range(4):
        ipp, iop, ps = dicom_geometry(affine, k)
        if k == 2:
            ipp[1] += 5.0  # in-plane jump of one slice
        save(slice_dataset(synthetic_slice(4, 4, k), ipp, iop, ps, ids), tmp_path / f"{k}.dcm")
    with pytest.raises(GeometryError, match="do not lie on a straight line"):
        read_folder(tmp_path)


def test_cli_info_lists_the_series_and_marks_the_chosen_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from openspine.cli import main

    uids = _write_study(tmp_path)
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "* [2] series 3 t2_tse_sag" in out and "(* = chosen; pick another with --series)" in out
    assert "axial" in out and "localizer" in out
    chosen = next(line for line in out.splitlines() if "t2_tse_sag" in line)
    assert "  T2  " in chosen  # each series' sequence, from its header
    assert main(["info", str(tmp_path), "--series", "2", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["chosen_series"] == uids["t1"]
    # the series read is marked (it had stayed on the default, while 'main' moved: user test), the default apart
    assert [s["chosen"] for s in info["series_found"]] == [False, True, False]
    assert [s["default"] for s in info["series_found"]] == [False, False, True]
    assert [s["role"] for s in info["series_found"]][1] == "main"
    # '--series 2' is SeriesNumber 2, not the listing's [2]: the listing marks it, and a warning says so
    assert main(["info", str(tmp_path), "--series", "2"]) == 0
    captured = capsys.readouterr()
    assert "* [1] series 2" in captured.out
    assert "not the series listed at that index: [2] #3 't2_tse_sag'" in captured.err
    assert info["shape"] == [64, 64, 8] and info["analysable"] is True
    # analyze says it as a warning too, which -q still shows (it was an INFO line there: user test)
    logger = logging.getLogger("openspine")
    logger.addHandler(caplog.handler)  # the CLI run above may have stopped the package's logger propagating
    try:
        load_study(tmp_path, series="2")
    finally:
        logger.removeHandler(caplog.handler)
    assert any(
        r.levelno == logging.WARNING and "not the series listed at that index" in r.message for r in caplog.records
    )


def test_an_axial_study_with_a_three_plane_localiser_is_out_of_scope_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from openspine.cli import main

    arr, _ = real_crop()
    study = generate_uid()
    loc_ids = new_ids(study)
    for k, plane in enumerate((AXIAL, SAG, CORONAL)):  # one localiser series, one slice in each plane
        ipp, iop, ps = dicom_geometry(make_affine(plane, (1.0, 1.0, 5.0), ORIGIN), 0)
        ds = slice_dataset(arr[:, :, k].copy(), ipp, iop, ps, loc_ids, instance_number=k + 1, description="localizer")
        save(ds, tmp_path / "loc" / f"{k}.dcm")
    write_series(tmp_path / "ax", arr, make_affine(AXIAL, (0.7, 0.7, 4.0), ORIGIN), ids=new_ids(study),
                 series_number=4, description="t2_tse_tra")  # fmt: skip
    # it had exited 1 with no result.json ("none of the 2 series is sagittal"); batch stage read, not scope
    assert main(["-q", "analyze", str(tmp_path), "--out", str(tmp_path / "out")]) == 3
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert "axial" in doc["out_of_scope"] and doc["input"]["series"]["series_description"] == "t2_tse_tra"
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if "t2_tse_tra" in row)
    # it had read 'main (graded)' above 'analysable no'
    assert line.startswith(" * [") and "main (not analysable: axial, not sagittal)" in line
    assert "not used: not sagittal (mixed)" in out and "analysable   no:" in out


# --------------------------------------------------------------------------------------------------------------
# MONOCHROME1, links and special files, a DICOMDIR given as a file
# --------------------------------------------------------------------------------------------------------------
def _gradient_volume() -> np.ndarray:
    """Pixels with no symmetry between low and high values, so an inverted copy never reads as the original."""
    i, j, k = np.mgrid[0:24, 0:20, 0:4]
    return (40 + 30 * k + 7 * i + 3 * j + (i * j) % 11).astype(np.uint16)


def _as_monochrome1(
    folder: Path, stored: np.ndarray, affine: np.ndarray, top: int | None = None, **options: object
) -> None:
    """The volume written as MONOCHROME1 stores it: ``top - value``, shown low-is-white by viewers; ``top`` the
    writer's constant (by default its maximum plus minimum)."""
    top = int(stored.max()) + int(stored.min()) if top is None else top
    flipped = (top - stored.astype(np.int64)).astype(stored.dtype)
    _, files = write_series(folder, flipped, affine, **options)  # type: ignore[arg-type]
    for f in files:
        ds = pydicom.dcmread(f)
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.save_as(f, enforce_file_format=True)


@pytest.mark.parametrize("top", [None, 4095], ids=["max+min", "12 bits"])
@pytest.mark.parametrize("rescale", [{}, {"slope": 0.5, "intercept": -100.0}], ids=["stored", "rescaled"])
def test_monochrome1_reads_as_its_monochrome2_copy_its_black_at_0(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, rescale: dict[str, float], top: int | None
) -> None:
    """Whatever constant the writer inverted with, what a viewer shows black reads 0: inverted as ``max + min -
    value``, a series written as ``4095 - value`` had read thousands above 0 and was flagged as lying on an offset
    (user test)."""
    stored = _gradient_volume()
    affine = make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN)
    write_series(tmp_path / "mono2", stored, affine, **rescale)  # type: ignore[arg-type]
    _as_monochrome1(tmp_path / "mono1", stored, affine, top, **rescale)
    mono2 = read_folder(tmp_path / "mono2")
    with caplog.at_level(logging.INFO, logger="openspine"):
        mono1 = read_folder(tmp_path / "mono1")
    assert mono1.array.dtype == mono2.array.dtype
    # high values bright, as in the MONOCHROME2 copy, its darkest at 0
    np.testing.assert_array_equal(mono1.array, mono2.array - mono2.array.min())
    assert_allclose(mono1.affine, mono2.affine, atol=1e-9)
    assert any("MONOCHROME1" in r.getMessage() and "inverted" in r.getMessage() for r in caplog.records)
    assert mono1.source.extra["photometric_interpretation"] == "MONOCHROME1 (read inverted)"
    assert "photometric_interpretation" not in mono2.source.extra


def _series_with_bad_entries(root: Path) -> Path:
    write_series(root, _gradient_volume(), make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN))
    os.symlink("/nonexistent/IM9999.dcm", root / "IM9999.dcm")  # dangling
    os.symlink("self.dcm", root / "self.dcm")  # a loop
    os.symlink(root / "IM0000.dcm", root / "alias.dcm")  # a link to a readable file: read like the file itself
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.dcm")  # opening it would block until a writer came
    return root


def test_broken_links_loops_and_fifos_are_skipped_and_the_series_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    root = _series_with_bad_entries(tmp_path / "study")
    got: dict[str, object] = {}

    def read() -> None:
        try:
            got["scan"] = load_scan(root)
        except Exception as exc:  # reported below, with the test's own assertion
            got["error"] = exc

    with caplog.at_level(logging.WARNING, logger="openspine"):
        worker = threading.Thread(target=read, daemon=True)  # a FIFO that is opened blocks: never wait on it
        worker.start()
        worker.join(timeout=60)
    assert not worker.is_alive(), "discovery opened a FIFO and hangs"
    assert "error" not in got, got.get("error")
    scan = got["scan"]
    assert isinstance(scan, Scan)
    np.testing.assert_array_equal(scan.array, _gradient_volume())
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "IM9999.dcm': a broken symbolic link" in said and "self.dcm': a loop of symbolic links" in said
    if hasattr(os, "mkfifo"):
        assert "pipe.dcm': not a regular file (a named pipe)" in said
        assert not is_dicom_file(root / "pipe.dcm")  # sniffing a FIFO does not open it either
    # the copy behind the link is the same image, left out as such rather than read twice
    assert [s.n_slices for s in discover_series(root)] == [4]


def test_a_series_exported_twice_is_read_once_with_one_warning_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each copy had its own warning line (77 lines for a 77-slice series exported twice)."""
    import shutil

    write_series(tmp_path / "study" / "a", _gradient_volume(), make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN))
    shutil.copytree(tmp_path / "study" / "a", tmp_path / "study" / "b")
    with caplog.at_level(logging.WARNING, logger="openspine"):
        (series,) = discover_series(tmp_path / "study")
    assert series.n_slices == 4 and len(series.copies) == 4
    lines = [r.getMessage() for r in caplog.records if "SOPInstanceUID" in r.getMessage()]
    assert (
        len(lines) == 1 and lines[0].startswith("skipping 4 DICOM file(s) that copy another") and "3 more" in lines[0]
    )
    # openspine info lists the series, then reads the chosen one: the warning once, not once for each (user test)
    from openspine.cli import main

    assert main(["info", str(tmp_path / "study")]) == 0
    assert capsys.readouterr().err.count("copy another") == 1


def test_a_folder_holding_only_a_broken_link_says_so(tmp_path: Path) -> None:
    (tmp_path / "study").mkdir()
    os.symlink("/nonexistent/IM0001.dcm", tmp_path / "study" / "IM0001.dcm")
    with pytest.raises(ScanReadError, match="no file that can be read.*a broken symbolic link"):
        discover_series(tmp_path / "study")


def test_a_dicomdir_file_is_read_as_its_folder(tmp_path: Path) -> None:
    from pydicom.fileset import FileSet

    write_series(tmp_path / "plain", _gradient_volume(), make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN))
    fs = FileSet()
    for f in sorted((tmp_path / "plain").iterdir()):
        ds = pydicom.dcmread(f)
        ds.StudyDate, ds.StudyTime, ds.StudyID = "20240101", "120000", "1"  # a file set's study record needs them
        fs.add(ds)
    fs.write(tmp_path / "cd")
    dicomdir = tmp_path / "cd" / "DICOMDIR"
    assert dicomdir.is_file()
    np.testing.assert_array_equal(load_scan(dicomdir).array, load_scan(tmp_path / "cd").array)
    assert [s["n_slices"] for s in list_series(dicomdir)] == [4]
    assert [s.n_slices for s in discover_series(dicomdir)] == [4]


@pytest.mark.parametrize(
    ("sop_class", "modality", "why"),
    [
        ("1.2.840.10008.5.1.4.1.1.4", "MR", None),  # MR Image Storage
        ("1.2.840.10008.5.1.4.1.1.4.1", "MR", None),  # Enhanced MR Image Storage
        ("1.2.840.10008.5.1.4.1.1.7", "OT", None),  # Secondary Capture Image Storage: read, refused for geometry
        ("1.2.840.10008.5.1.4.1.1.1.1", "DX", None),  # Digital X-Ray Image Storage - For Presentation: read, then
        # refused by the analysis as no MR (exit 3), not skipped as no image
        ("1.2.840.10008.5.1.4.1.1.66.4", "SEG", "a DICOM Segmentation, not an image"),
        ("1.2.840.10008.5.1.4.1.1.481.2", "RTDOSE", "a DICOM RT Dose, not an image"),
        ("1.2.840.10008.5.1.4.1.1.30", "MR", "a DICOM Parametric Map, not an image"),
        ("1.2.999.1", "SEG", "a DICOM Segmentation, not an image"),  # a SOP class pydicom does not know yet
        ("", "MR", None),
        ("", "", None),
    ],
)
def test_only_image_storage_classes_are_images(sop_class: str, modality: str, why: str | None) -> None:
    from openspine.io.dicom import not_an_image

    ds = Dataset()
    if sop_class:
        ds.SOPClassUID = sop_class
    if modality:
        ds.Modality = modality
    assert not_an_image(ds) == why


def test_a_folder_of_segmentations_only_names_what_it_holds(tmp_path: Path) -> None:
    arr, aff = np.arange(16 * 16 * 3, dtype=np.uint16).reshape(16, 16, 3), np.diag([1.0, 1.0, 3.0, 1.0])
    _, files = write_series(tmp_path / "seg", arr, aff, series_number=9001)
    for f in files:  # the same pixels, declared a Segmentation
        ds = pydicom.dcmread(f)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
        ds.Modality = "SEG"
        ds.save_as(f)
    with pytest.raises(
        ScanReadError, match=r"holds no image series to read, only #9001 .*: a DICOM Segmentation, not an image"
    ):
        load_scan(tmp_path / "seg")


def test_a_sheared_series_is_refused_naming_the_series_and_its_files(tmp_path: Path) -> None:
    # slices stepping 20° off their normal (a gantry-tilted stack): no perpendicular grid holds it
    affine = make_affine(np.eye(3)[:, [2, 1, 0]], (0.5, 0.5, 4.0), (0, 0, 0))
    affine[:3, 2] += np.array([0.0, 0.0, 4.0 * np.tan(np.radians(20))])
    write_series(tmp_path / "tilted", np.ones((16, 16, 5), np.uint16) * 100, affine, description="t2 tilted")
    with pytest.raises(
        UnsupportedScanError, match=r"series #1 't2 tilted' .* \(IM\d{4}\.dcm … IM\d{4}\.dcm\): the affine"
    ) as e:
        load_scan(tmp_path / "tilted")
    assert "off perpendicular" in str(e.value)


# --------------------------------------------------------------------------------------------------------------
# PixelPaddingValue: pixels outside the image
# --------------------------------------------------------------------------------------------------------------
def _with_padding(files: list[Path], value: int, limit: int | None = None) -> None:
    for f in files:
        ds = pydicom.dcmread(f)
        vr = "SS" if int(ds.PixelRepresentation) == 1 else "US"  # 'US or SS' is written as the pixels are stored
        ds.add_new(0x00280120, vr, value)  # PixelPaddingValue
        if limit is not None:
            ds.add_new(0x00280121, vr, limit)  # PixelPaddingRangeLimit
        ds.save_as(f, enforce_file_format=True)


def test_padding_pixels_read_as_the_darkest_image_value(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    image = _gradient_volume().astype(np.int16)
    padded = image.copy()
    padded[:5, :7, :] = -32768  # a reformat's corner: no image there
    padded[-2:, :, 1] = -32760  # inside the declared range
    _, files = write_series(tmp_path / "pad", padded, make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN))
    _with_padding(files, -32768, -32700)
    with caplog.at_level(logging.INFO, logger="openspine"):
        scan = read_folder(tmp_path / "pad")
    outside = padded < -32000
    np.testing.assert_array_equal(scan.array[~outside], image[~outside])  # the image itself untouched
    assert (scan.array[outside] == image[~outside].min()).all()
    assert scan.source.extra["pixel_padding"] == {"files": 4, "pixels": int(outside.sum())}
    assert any("PixelPaddingValue" in r.getMessage() for r in caplog.records)
    # without the header's word the same stored values are image values
    write_series(tmp_path / "plain", padded, make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN))
    assert read_folder(tmp_path / "plain").array.min() == -32768


def test_padding_of_a_monochrome1_series_reads_dark(tmp_path: Path) -> None:
    stored = _gradient_volume()
    affine = make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN)
    _as_monochrome1(tmp_path / "mono1", stored, affine)
    files = sorted((tmp_path / "mono1").glob("*.dcm"))
    for f in files:  # the corner set to a padding value above every stored one: white if read as image
        ds = pydicom.dcmread(f)
        arr = ds.pixel_array.copy()
        arr[:4, :4] = 4000
        ds.PixelData = arr.tobytes()
        ds.add_new(0x00280120, "US", 4000)  # PixelPaddingValue
        ds.save_as(f, enforce_file_format=True)
    scan = read_folder(tmp_path / "mono1")
    rest = scan.array[4:, :, :].astype(np.int64)
    assert (scan.array[:4, :4, :] == scan.array.min()).all()  # displayed black: the darkest value after inversion
    assert len(np.unique(rest - stored[4:, :, :])) == 1  # the image itself high-is-bright, as stored before


def test_a_padded_real_scan_is_analysed_as_the_unpadded_one(tmp_path: Path) -> None:
    import nibabel as nib

    from openspine import analyze

    img = nib.load(str(data_path("fastcleverseg/fcs-vb2-13/image.nii.gz")))
    arr = np.asarray(img.dataobj).astype(np.int16)
    padded = arr.copy()
    padded[:, :12, :] = -32768  # a block of padding in front of the body, as a rotated reformat leaves
    write_series(tmp_path / "plain", arr, img.affine)
    _, files = write_series(tmp_path / "pad", padded, img.affine)
    _with_padding(files, -32768)
    plain, pad = analyze(tmp_path / "plain"), analyze(tmp_path / "pad")
    assert [v.label for v in plain.vertebrae] == [v.label for v in pad.vertebrae]
    assert len(pad.vertebrae) >= 6


def test_padding_written_as_unsigned_on_signed_pixels_is_read_by_its_bits(tmp_path: Path) -> None:
    """(0028,0120) written as US 32768 on signed pixels: the same bits as -32768 (regression sweep)."""
    image = _gradient_volume().astype(np.int16)
    padded = image.copy()
    padded[:5, :7, :] = -32768
    _, files = write_series(tmp_path, padded, make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN))
    for f in files:
        ds = pydicom.dcmread(f)
        ds.add_new(0x00280120, "US", 32768)
        ds.save_as(f, enforce_file_format=True)
    scan = read_folder(tmp_path)
    outside = np.zeros(image.shape, bool)
    outside[:5, :7, :] = True
    assert (scan.array[outside] == image[~outside].min()).all()
    assert scan.source.extra["pixel_padding"]["pixels"] == 5 * 7 * 4


def test_a_padding_value_among_the_image_s_own_values_is_not_applied(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A PixelPaddingValue at the image's median had blanked 13 555 tissue pixels and changed a grade (regression
    sweep): a scanner's padding lies outside the image's values."""
    image = _gradient_volume()
    _, files = write_series(tmp_path, image, make_affine(SAG, (0.7, 0.7, 3.5), ORIGIN))
    _with_padding(files, int(np.median(image)))
    with caplog.at_level(logging.WARNING, logger="openspine"):
        scan = read_folder(tmp_path)
    np.testing.assert_array_equal(scan.array, image)
    assert scan.source.extra["pixel_padding"]["not_applied"].startswith("PixelPaddingValue")
    assert any("lies among the image's own values" in r.getMessage() for r in caplog.records)
