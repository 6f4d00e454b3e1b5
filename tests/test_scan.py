"""The Scan type: validation, derived geometry, the sagittal analysis layout and its map back to the input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openspine.errors import (
    ImageContentError,
    NoContrastError,
    NotSagittalError,
    OutOfScopeError,
    UnsupportedScanError,
)
from openspine.scan import Scan

SAGITTAL_IPR = np.array([[0, 0, 4.0, 0], [0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]])


def test_spacing_and_orientation_come_from_the_affine() -> None:
    scan = Scan(np.zeros((10, 8, 3)), SAGITTAL_IPR)
    assert scan.spacing == pytest.approx((0.5, 0.5, 4.0))
    assert scan.orientation == ("I", "P", "R")
    assert scan.slice_axis == 2


@pytest.mark.parametrize(
    ("zooms", "axis"),
    [
        ((0.6, 0.6, 4.0), 2),
        ((4.0, 0.7, 0.7), 0),
        ((1.0, 1.0, 1.0), None),
        ((2.5, 2.5, 2.5), None),
        ((2.0, 2.0, 1.0), None),
    ],
)
def test_the_slice_axis_is_the_one_coarsest_axis(zooms: tuple[float, float, float], axis: int | None) -> None:
    # two equally coarse axes (2 × 2 × 1 mm) leave no single axis to call the slices: a 3D volume, not "axial"
    assert Scan(np.zeros((8, 8, 8)), np.diag([*zooms, 1.0])).slice_axis == axis


def test_a_volume_of_two_coarse_axes_and_a_fine_one_is_read_as_3d() -> None:
    view = Scan(np.random.default_rng(0).random((30, 20, 40)), np.diag([1.0, 2.0, 2.0, 1.0])).to_sagittal()
    assert view.scan.spacing == pytest.approx((2.0, 2.0, 1.0))  # rows S→I, columns A→P, slices L→R


def test_2d_array_becomes_one_slice() -> None:
    assert Scan(np.zeros((4, 5)), SAGITTAL_IPR).shape == (4, 5, 1)


@pytest.mark.parametrize("shape", [(2, 2, 2, 2), (5,)])
def test_refuses_arrays_that_are_not_2d_or_3d(shape: tuple[int, ...]) -> None:
    with pytest.raises(UnsupportedScanError, match="3D volume or a 2D slice"):
        Scan(np.zeros(shape), np.eye(4))


def test_refuses_a_singular_affine() -> None:
    with pytest.raises(UnsupportedScanError, match="invertible") as refused:
        Scan(np.zeros((2, 2, 2)), np.zeros((4, 4)))
    # one line, the matrix written out (a numpy repr would take four)
    message = str(refused.value)
    assert "\n" not in message and "[[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]" in message


def test_refuses_a_sheared_affine_naming_the_angle() -> None:
    sheared = SAGITTAL_IPR.copy()
    sheared[:3, 1] += [0, 0, 0.25]  # the column axis tilted towards the row axis: 26.6° off perpendicular
    with pytest.raises(UnsupportedScanError, match="voxel axes 0 and 1 are 26.6° off perpendicular") as refused:
        Scan(np.zeros((2, 2, 2)), sheared)
    assert "\n" not in str(refused.value) and "resample" in str(refused.value)


def test_refuses_an_affine_that_is_no_matrix_of_numbers() -> None:
    for bad in ("abc", [[1, 2], [3]]):
        with pytest.raises(UnsupportedScanError, match="the affine must be a finite, invertible 4×4 matrix"):
            Scan(np.zeros((2, 2, 2)), bad)  # type: ignore[arg-type]


def test_refuses_a_matrix_whose_bottom_row_is_not_0_0_0_1() -> None:
    projective = SAGITTAL_IPR.copy()
    projective[3] = [0, 0, 1, 1]
    with pytest.raises(UnsupportedScanError, match=r"bottom row must be \[0, 0, 0, 1\], got \[0, 0, 1, 1\]"):
        Scan(np.zeros((2, 2, 2)), projective)


def _rotation(axis: str, degrees: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    r = np.eye(4)
    r[:3, :3] = Rotation.from_euler(axis, degrees, degrees=True).as_matrix()
    return r


def test_nearly_perpendicular_and_oblique_affines_are_accepted() -> None:
    # a DICOM orientation rounded to 4 decimals, a slice step off the normal by 0.5°, an oblique 30° volume
    rounded = _rotation("x", 17.0) @ SAGITTAL_IPR
    rounded[:3, :3] = np.round(rounded[:3, :3] / [0.5, 0.5, 4.0], 4) * [0.5, 0.5, 4.0]
    nudged = SAGITTAL_IPR.copy()
    nudged[:3, 1] += [0, 0, 0.5 * np.tan(np.radians(0.5))]
    for affine in (rounded, nudged, _rotation("z", 30.0) @ _rotation("x", 12.0) @ SAGITTAL_IPR):
        assert Scan(np.zeros((2, 2, 2)), affine).shape == (2, 2, 2)


def test_lone_axial_slice_is_refused_with_the_reason() -> None:
    axial = np.diag([0.5, 0.5, 5.0, 1.0])  # R, A, S: one slice along S
    with pytest.raises(UnsupportedScanError, match="a single axial slice, which shows no sagittal plane"):
        Scan(np.ones((64, 64, 1)), axial).to_sagittal()


def test_a_picture_converted_to_nifti_is_refused_with_a_way_out() -> None:
    # converters write an unrotated affine, so a sagittal picture's single slice reads as axial
    from openspine.scan import ScanSource

    nifti = ScanSource(path="picture.nii.gz", format="nifti")
    with pytest.raises(UnsupportedScanError, match="converting a picture to NIfTI.*--pixel-spacing"):
        Scan(np.ones((64, 48, 1)), np.eye(4), nifti).to_sagittal()
    with pytest.raises(UnsupportedScanError) as refused:  # an axial series with a real, turned header: no hint
        Scan(np.ones((64, 64, 1)), np.diag([-0.5, -0.5, 5.0, 1.0])).to_sagittal()
    assert "converting a picture" not in str(refused.value)


def test_thick_coronal_stack_is_refused() -> None:
    coronal = np.array([[0.6, 0, 0, 0], [0, 0, 5.0, 0], [0, 0.6, 0, 0], [0, 0, 0, 1]])  # R, S, A(thick)
    message = "this is a coronal acquisition \\(12 slices, 5.0 mm apart"
    with pytest.raises(UnsupportedScanError, match=message) as refused:
        Scan(np.ones((64, 64, 12)), coronal).to_sagittal()
    # out of scope, not an error: the analysis reports it (exit status 3) with the plane the geometry shows
    assert isinstance(refused.value, NotSagittalError) and isinstance(refused.value, OutOfScopeError)
    assert refused.value.plane == {"value": "coronal", "source": "geometry"}


def test_a_scan_not_analysed_is_shown_as_stored_and_maps_back_exactly() -> None:
    # an axial stack whose slice axis is the first: the view puts it last, rows and columns as in the file
    arr = np.random.default_rng(2).random((6, 20, 16))
    aff = np.array([[0, 0, 0.7, 3], [0, 0.7, 0, 4], [5.0, 0, 0, 5], [0, 0, 0, 1]])
    scan = Scan(arr, aff)
    with pytest.raises(NotSagittalError, match="this is an axial acquisition \\(6 slices"):
        scan.to_sagittal()
    view = scan.as_stored()
    assert view.scan.shape == (20, 16, 6) and view.input is scan
    np.testing.assert_array_equal(view.scan.array[:, :, 2], arr[2])
    np.testing.assert_allclose(view.to_input_voxel(np.array([7, 9, 2])), [2, 7, 9])
    np.testing.assert_allclose(view.to_world(np.array([7, 9, 2])), scan.voxel_to_world(np.array([2, 7, 9])))
    assert view.input_slice_index(4) == 4
    assert Scan(arr, SAGITTAL_IPR).as_stored().scan.shape == arr.shape  # slices already last: as it is


def test_isotropic_axial_volume_is_reformatted_to_sagittal_exactly() -> None:
    rng = np.random.default_rng(1)
    arr = rng.random((20, 24, 16))  # R, A, S at 1 mm
    aff = np.eye(4)
    aff[:3, 3] = [-10, -12, -8]
    scan = Scan(arr, aff)
    view = scan.to_sagittal()
    assert view.scan.orientation == ("I", "P", "R")
    assert view.scan.shape == (16, 24, 20)
    # internal voxel (i, j, k) = (S flipped, A flipped, R) -> input (k, 23 - j, 15 - i)
    i, j, k = 3, 5, 7
    np.testing.assert_allclose(view.to_input_voxel(np.array([i, j, k])), [k, 23 - j, 15 - i])
    assert view.scan.array[i, j, k] == arr[k, 23 - j, 15 - i]
    np.testing.assert_allclose(view.to_world(np.array([i, j, k])), scan.voxel_to_world(np.array([k, 23 - j, 15 - i])))
    assert view.input_slice_index(k) == k


def test_sagittal_stack_stored_right_to_left_maps_slices_back() -> None:
    # columns A->P, rows S->I, slices R->L (flipped third axis)
    aff = np.array([[0, 0, -3.0, 0], [0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]])
    arr = np.zeros((8, 8, 5))
    arr[..., 0] = 1  # the rightmost slice
    view = Scan(arr, aff).to_sagittal()
    assert view.scan.array[..., 4].max() == 1  # it is the last slice left->right
    assert view.input_slice_index(4) == 0
    assert view.input_slice_index(0) == 4


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.full((4, 4, 2), np.nan), "NaN or infinite"),
        (np.array([[[np.inf, 1.0]]]), "NaN or infinite"),
        (np.zeros((4, 4, 2)), "no contrast: every voxel equals 0"),
        (np.full((4, 4, 2), 7, dtype=np.int16), "no contrast: every voxel equals 7"),
    ],
)
def test_voxel_values_that_cannot_be_analysed(values: np.ndarray, message: str) -> None:
    with pytest.raises(ImageContentError, match=message) as refused:
        Scan(values, SAGITTAL_IPR).check_analysable()
    # an image of one value is no spine image (out of scope); NaN or infinite voxels are an error to fix
    assert isinstance(refused.value, NoContrastError) == ("no contrast" in message)
    assert isinstance(refused.value, OutOfScopeError) == ("no contrast" in message)


def test_non_finite_voxels_are_read_as_the_lowest_finite_value_with_a_flag() -> None:
    arr = np.array([[[np.nan, 3.0], [np.inf, -2.0]], [[5.0, -np.inf], [1.0, 0.5]]], dtype=np.float32)
    filled, flag = Scan(arr, SAGITTAL_IPR).with_finite_voxels()
    assert filled.array.dtype == np.float32 and np.isfinite(filled.array).all()
    assert filled.array[0, 0, 0] == filled.array[0, 1, 0] == filled.array[1, 0, 1] == -2.0
    assert flag is not None and flag.startswith("non_finite_voxels: 3 NaN or infinite voxels (37.5 %")
    for clean in (np.ones((2, 2, 1), np.float32), np.ones((2, 2, 1), np.int16), np.full((2, 2, 1), np.nan)):
        scan = Scan(clean, SAGITTAL_IPR)
        assert scan.with_finite_voxels() == (scan, None)  # nothing to fill, or nothing to fill it with


@pytest.mark.parametrize("shape", [(0, 10, 1), (4, 0, 2), (0, 0, 0)])
def test_an_array_without_voxels_is_refused_with_its_shape(shape: tuple[int, int, int]) -> None:
    with pytest.raises(UnsupportedScanError, match=rf"holds no voxels: its array has shape \({shape[0]}, {shape[1]}"):
        Scan(np.zeros(shape), SAGITTAL_IPR).check_analysable()


def test_a_picture_openspine_wrote_is_out_of_scope() -> None:
    from openspine.scan import ScanSource

    source = ScanSource(path="overlay.png", format="image", not_a_scan="this picture is an openspine output")
    with pytest.raises(OutOfScopeError, match="openspine output"):
        Scan(np.arange(8, dtype=np.uint8).reshape(2, 2, 2), SAGITTAL_IPR, source).check_analysable()
    assert "not_a_scan" not in source.to_dict()


def test_ordinary_image_is_analysable() -> None:
    Scan(np.arange(8, dtype=np.uint8).reshape(2, 2, 2), SAGITTAL_IPR).check_analysable()


def test_oblique_isotropic_volume_is_resliced_to_sagittal() -> None:
    from openspine import geometry

    rng = np.random.default_rng(2)
    arr = rng.random((24, 24, 24)).astype(np.float32)
    c, s = np.cos(np.radians(35)), np.sin(np.radians(35))
    aff = np.eye(4)
    aff[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])  # axial volume rotated 35° about S
    scan = Scan(arr, aff)
    view = scan.to_sagittal()
    assert view.scan.orientation == ("I", "P", "R")
    np.testing.assert_allclose(geometry.axis_directions(view.scan.affine), [[0, 0, 1], [0, -1, 0], [-1, 0, 0]])
    # a voxel well inside: its interpolated value matches the input at the same world point
    ijk = np.array(view.scan.shape) // 2
    src = view.to_input_voxel(ijk)
    from scipy import ndimage

    expected = ndimage.map_coordinates(arr, src.reshape(3, 1), order=1)[0]
    assert view.scan.array[tuple(ijk)] == pytest.approx(expected, abs=1e-5)
    np.testing.assert_allclose(view.to_world(ijk), scan.voxel_to_world(src), atol=1e-6)
    # its internal slices cross the input's: a slice index given back (mid_slice, outlines, the overlay's title) is
    # the input voxel's nearest to a point of the slice, within the input (offset + sign * k had given -76 … 137)
    plain = Scan(np.zeros((4, 5, 6), np.float32), SAGITTAL_IPR).to_sagittal()  # permuted: the plain index
    assert view.resliced and not plain.resliced and plain.input_slice_index(3) == 3
    ax = int(np.argmax(np.abs(np.linalg.inv(aff[:3, :3])[:, 0])))  # the input axis closest to left-right
    for k in (0, view.scan.shape[2] // 2, view.scan.shape[2] - 1):
        index = view.input_slice_index(k)
        assert 0 <= index < arr.shape[ax]
        middle = ((view.scan.shape[0] - 1) / 2, (view.scan.shape[1] - 1) / 2)
        expected_index = view.to_input_voxel(np.array([[*middle, k]]))[0, ax]
        assert index == min(max(round(float(expected_index)), 0), arr.shape[ax] - 1)


def test_an_oblique_volume_reads_two_ways_only_where_its_grid_is_near_sagittal() -> None:
    """A near-isotropic volume turned more than 20° can be resliced onto world axes or read on its own grid (its axis
    nearest left-right within 45° of it); a stack, or a volume turned less, reads one way."""

    def rotation(axis: int, degrees: float) -> np.ndarray:
        c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
        i, j = [(1, 2), (0, 2), (0, 1)][axis]
        rot = np.eye(3)
        rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
        return rot

    def turned(
        axis: int, degrees: float, spacing: tuple[float, float, float] = (1.0, 1.0, 1.0), then: float = 0.0
    ) -> Scan:
        rot = rotation(1, then) @ rotation(axis, degrees)
        aff = np.eye(4)
        ipr = SAGITTAL_IPR[:3, :3] / np.linalg.norm(SAGITTAL_IPR[:3, :3], axis=0)  # unit axes: rows I, cols P, R
        aff[:3, :3] = rot @ ipr @ np.diag(spacing)
        return Scan(np.zeros((20, 20, 20), np.float32), aff)

    assert turned(1, 30).reads_two_ways and turned(2, 40).reads_two_ways and turned(0, 35).reads_two_ways
    assert not turned(1, 15).reads_two_ways  # permuted, as before
    assert turned(2, 50).reads_two_ways  # another of its axes now lies within 45° of left-right
    # turned about two axes so that every axis lies 55° off left-right: no grid slice is sagittal, resliced only
    assert not turned(2, 45, then=35.26).reads_two_ways
    assert not turned(1, 30, (1.0, 1.0, 4.0)).reads_two_ways  # a stack: read on its own grid always
    grid, world = turned(1, 30).to_sagittal(reslice=False), turned(1, 30).to_sagittal()
    assert not grid.resliced and world.resliced and grid.scan.shape == (20, 20, 20)


def test_a_picture_read_mirrored_keeps_its_voxels_and_shows_the_front_on_the_other_side() -> None:
    from openspine.io.image2d import picture_affine

    arr = np.zeros((6, 5, 1), np.float32)
    arr[2, 0, 0] = 1.0  # a bright pixel in the first column: the front of the picture as displayed
    scan = Scan(arr, picture_affine(0.5, 0.5))
    mirrored = scan.mirrored_front_to_back()
    assert mirrored.array is scan.array and mirrored.spacing == scan.spacing
    assert scan.to_sagittal().scan.array[2, 0, 0] == 1.0  # front (anterior) on the left of the internal layout
    view = mirrored.to_sagittal()
    assert view.scan.array[2, 4, 0] == 1.0  # now at the back
    np.testing.assert_allclose(view.to_input_voxel(np.array([2.0, 4.0, 0.0])), [2.0, 0.0, 0.0])
    # the affine alone is reversed: the world point of column j is that of column 4 - j before
    np.testing.assert_allclose(
        mirrored.voxel_to_world(np.array([2.0, 1.0, 0.0])), scan.voxel_to_world(np.array([2.0, 3.0, 0.0]))
    )


def test_values_too_large_for_float32_arithmetic_are_scaled_by_a_power_of_two() -> None:
    from openspine.scan import MAX_ANALYSED_MAGNITUDE

    arr = (np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 5) * np.float32(1e36)  # near float32's largest
    scan = Scan(arr, SAGITTAL_IPR)
    safe = scan.in_safe_range()
    assert safe.array.dtype == np.float32 and float(np.abs(safe.array).max()) <= MAX_ANALYSED_MAGNITUDE
    ratio = arr.astype(np.float64)[arr != 0] / safe.array.astype(np.float64)[arr != 0]
    assert np.all(ratio == ratio[0]) and np.log2(ratio[0]).is_integer()  # one exact power of two: ratios, signs kept
    assert np.all(safe.array[arr == 0] == 0) and safe.affine is scan.affine and safe.source is scan.source
    ordinary = Scan(np.arange(8, dtype=np.float32).reshape(2, 2, 2) * 1e6, SAGITTAL_IPR)
    assert ordinary.in_safe_range() is ordinary
    assert Scan(np.arange(8, dtype=np.int16).reshape(2, 2, 2), SAGITTAL_IPR).in_safe_range().array.dtype == np.int16


@pytest.mark.parametrize(
    ("offset", "dtype"), [(2**31, np.uint32), (2**32 - 256, np.int64), (-(2**40), np.int64), (2**64 - 256, np.uint64)]
)
def test_integers_stored_with_a_large_offset_keep_every_grey_level(offset: int, dtype: type) -> None:
    # read as float32 such an image had kept a few grey levels of its 256, and the detector lost bodies
    grey = np.arange(256, dtype=np.int64).reshape(4, 8, 8)
    arr = np.array([int(v) + offset for v in grey.ravel()], dtype=object).astype(dtype).reshape(grey.shape)
    scan = Scan(arr, SAGITTAL_IPR)
    scan.check_analysable()  # compared in its own type: not "no contrast"
    safe = scan.in_safe_range()
    assert np.array_equal(safe.array.astype(np.float32), grey.astype(np.float32))
    assert safe.affine is scan.affine and safe.source is scan.source
    small = Scan(grey.astype(np.int32) + 1000, SAGITTAL_IPR)
    assert small.in_safe_range() is small  # within float32's exact integers: as it is


@pytest.mark.parametrize("dtype", ["timedelta64[s]", "datetime64[s]", "complex64", "bool", "object"])
def test_voxels_that_are_no_real_numbers_are_refused_in_one_line(dtype: str) -> None:
    from openspine.errors import OpenSpineError

    arr = np.ones((4, 4, 2)).astype(dtype)
    with pytest.raises(OpenSpineError, match="not grey intensities: openspine reads one real number per voxel"):
        Scan(arr, SAGITTAL_IPR).check_analysable()


def test_colour_voxels_are_called_colour() -> None:
    """An RGB NIfTI's voxels are records of three bytes; the message said 'voxel type [('R', 'u1'), …]'."""
    from openspine.errors import ImageContentError

    rgb = np.zeros((4, 4, 2), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    with pytest.raises(ImageContentError, match=r"^the image holds colour \(RGB\) voxels, not grey intensities"):
        Scan(rgb, SAGITTAL_IPR).check_analysable()


@pytest.mark.parametrize("shape", [(1, 448, 1), (448, 1, 1), (1, 1, 30)])
def test_a_line_of_pixels_is_out_of_scope_and_called_a_line(shape: tuple[int, int, int]) -> None:
    """A one-row picture was refused as 'an axial acquisition (a single slice, 0.6 mm apart)'."""
    from openspine.errors import OutOfScopeError

    with pytest.raises(OutOfScopeError, match="the image is a line of pixels"):
        Scan(np.ones(shape, dtype=np.float32), SAGITTAL_IPR).to_sagittal()


def test_a_scan_built_in_python_with_an_unrotated_affine_is_told_what_to_give_not_a_header_and_a_cli_option() -> None:
    """A notebook user's Scan(slice, numpy.eye(4)) had been told about its file's header and --pixel-spacing (user
    test); a file converted from a picture still is."""
    from openspine.scan import ScanSource

    for source, said, not_said in (
        (ScanSource(), "give the Scan the affine of its voxels in mm", "--pixel-spacing"),
        (ScanSource(path="x.nii.gz", format="nifti"), "--pixel-spacing", "give the Scan the affine"),
    ):
        with pytest.raises(NotSagittalError) as refused:
            Scan(np.zeros((40, 30, 1)), np.eye(4), source).to_sagittal()
        assert said in str(refused.value) and not_said not in str(refused.value)
    with pytest.raises(UnsupportedScanError, match="4×4 matrix of numbers, got None"):
        Scan(np.zeros((4, 4, 2)), None)  # type: ignore[arg-type]


def test_a_voxel_size_below_any_mr_images_is_refused_in_one_line() -> None:
    # 1e-6 mm (a header in other units) had asked the detector's grid for 364 GiB and ended in a MemoryError
    tiny = Scan(np.random.default_rng(0).random((32, 32, 3)).astype(np.float32), np.diag([1e-6, 1e-6, 3.0, 1.0]))
    with pytest.raises(UnsupportedScanError, match=r"voxel size 1e-06 × 1e-06 × 3 mm is below any MR image's"):
        tiny.check_analysable()
    # a single slice's thickness is never used: a tiny one is no reason to refuse the slice
    slice_ = Scan(np.random.default_rng(0).random((32, 32, 1)).astype(np.float32), np.diag([0.5, 0.5, 5e-4, 1.0]))
    slice_.check_analysable()


def test_a_view_kept_without_its_input_voxels_keeps_the_input_geometry_and_no_copy() -> None:
    """A kept result had held the image twice: the analysed layout and the input's own voxels (user test: 22 MB per
    volume result, 530 MB for 25 kept in a notebook)."""
    affine = np.array([[0, 0, 1.0, 0], [0, -0.7, 0, 0], [-0.7, 0, 0, 0], [0, 0, 0, 1]])
    scan = Scan(np.random.default_rng(0).random((20, 30, 5)).astype(np.float32)[:, :, ::-1], affine)
    view = scan.to_sagittal()
    kept = view.without_input_voxels()
    assert kept.scan is view.scan
    assert kept.input.shape == scan.shape and kept.input.array.dtype == scan.array.dtype
    np.testing.assert_array_equal(kept.input.affine, scan.affine)
    assert kept.input.array.strides == (0, 0, 0)  # no memory of its own
    # what reads the stored voxels reads the analysed ones there, not the placeholder's zeros
    assert view.has_input_voxels and not kept.has_input_voxels and kept.stored_voxels is view.scan.array
    np.testing.assert_allclose(kept.to_input_voxel(np.array([1.0, 2.0, 3.0])), view.to_input_voxel([1.0, 2.0, 3.0]))


def test_a_result_keeps_one_copy_of_the_image(shared_data: Path) -> None:
    import openspine

    result = openspine.analyze(shared_data / "fastcleverseg" / "fcs-vb2-13" / "image.nii.gz")
    assert result.view is not None and result.view.input.array.strides == (0, 0, 0)
    assert result.view.scan.array.size == result.view.input.array.size  # the overlay's image, kept once


def test_a_kept_views_input_pickles_as_its_geometry_and_a_scan_as_its_voxels() -> None:
    import pickle

    affine = np.array([[0, 0, 1.0, 0], [0, -0.7, 0, 0], [-0.7, 0, 0, 0], [0, 0, 0, 1]])
    scan = Scan(np.random.default_rng(1).random((40, 30, 20)).astype(np.float32), affine)
    kept = scan.to_sagittal().without_input_voxels()
    back = pickle.loads(pickle.dumps(kept))
    assert len(pickle.dumps(kept.input)) < 2000  # not 40 × 30 × 20 float32 voxels
    assert back.input.shape == scan.shape and back.input.array.dtype == np.float32
    np.testing.assert_array_equal(back.input.affine, scan.affine)
    np.testing.assert_array_equal(back.scan.array, kept.scan.array)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(scan)).array, scan.array)  # a scan keeps its voxels
