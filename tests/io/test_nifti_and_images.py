"""NIfTI and 2D image reading, on real files of the shared data and on small written files."""

from __future__ import annotations

import errno
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


def test_a_float64_nifti_is_read_in_single_precision(tmp_path: Path) -> None:
    # every later copy of the volume is half the size (a 2.5 GB float64 volume had peaked at 10 GB)
    data = np.random.default_rng(0).random((8, 9, 3)) * 1000
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / "f64.nii.gz"))
    scan = load_scan(tmp_path / "f64.nii.gz")
    assert scan.array.dtype == np.float32
    from openspine.results import InputInfo

    assert InputInfo.from_scan(scan).to_dict()["series"]["stored_dtype"] == "float64"  # result.json, info too
    np.testing.assert_allclose(scan.array, data, rtol=1e-6)
    huge = data.copy()
    huge[0, 0, 0] = 1e300  # beyond float32: kept, for the range checks to scale
    nib.save(nib.Nifti1Image(huge, np.eye(4)), str(tmp_path / "huge.nii.gz"))
    assert load_scan(tmp_path / "huge.nii.gz").array.dtype == np.float64


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
    with pytest.raises(FileNotFoundError) as info:  # as Python code that opens files expects (a notebook user test)
        load_scan(tmp_path / "nope.nii.gz")
    assert info.value.errno == errno.ENOENT and str(info.value).endswith("does not exist")
    (tmp_path / "dangling.nii.gz").symlink_to(tmp_path / "gone.nii.gz")
    with pytest.raises(FileNotFoundError, match="symbolic link to nothing"):
        load_scan(tmp_path / "dangling.nii.gz")
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(ScanReadError, match="not a file type openspine reads"):
        load_scan(other)


def test_a_multi_page_tiff_is_refused_not_read_by_its_first_page(tmp_path: Path) -> None:
    pages = [Image.fromarray(np.full((40, 30), v, dtype=np.uint8)) for v in (10, 120, 240)]
    path = tmp_path / "stack.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    with pytest.raises(UnsupportedScanError, match="'stack.tif' holds 3 pictures"):
        load_scan(path, pixel_spacing=(0.5, 0.5))
    pages[0].save(tmp_path / "one.tif")
    assert load_scan(tmp_path / "one.tif", pixel_spacing=(0.5, 0.5)).shape == (40, 30, 1)
    # a camera's JPEG with an embedded second image (MPO) is one picture: its first frame
    pages[0].save(tmp_path / "photo.jpg", format="MPO", save_all=True, append_images=pages[1:2])
    with Image.open(tmp_path / "photo.jpg") as im:
        assert im.n_frames == 2
    assert load_scan(tmp_path / "photo.jpg", pixel_spacing=(0.5, 0.5)).shape == (40, 30, 1)


def test_an_rgb_nifti_is_refused_by_name(tmp_path: Path) -> None:
    from openspine.errors import ImageContentError

    rgb = np.zeros((20, 16, 1), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), tmp_path / "colour.nii.gz")
    with pytest.raises(ImageContentError, match="'colour.nii.gz' holds colour \\(RGB\\) voxels"):
        load_scan(tmp_path / "colour.nii.gz").check_analysable()


def test_a_picture_past_pillows_pixel_limit_is_a_read_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a 20000 × 20000 picture had ended in Pillow's DecompressionBombError and a traceback
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10 000 pixels: past twice the limit, as 400 M are
    with pytest.raises(ScanReadError, match="exceeds limit.*no spine picture needs that many pixels"):
        load_scan(path, pixel_spacing=(0.6, 0.6))


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


def _without_orientation(path: Path, arr: np.ndarray, zooms: tuple[float, float, float]) -> Path:
    """A NIfTI whose sform and qform codes are both 0 (its header gives no orientation)."""
    img = nib.Nifti1Image(arr, np.diag([*zooms, 1.0]))
    img.set_sform(None, code=0)
    img.set_qform(None, code=0)
    img.header.set_zooms(zooms)
    nib.save(img, str(path))
    return path


def test_a_nifti_without_orientation_is_read_as_a_picture_is_and_says_so(tmp_path: Path) -> None:
    from openspine.io.nifti import ORIENTATION_UNKNOWN

    arr = np.arange(10 * 12 * 3, dtype=np.int16).reshape(10, 12, 3)
    scan = load_scan(_without_orientation(tmp_path / "slices.nii.gz", arr, (0.5, 0.6, 4.0)))
    assert scan.source.orientation_unknown == ORIENTATION_UNKNOWN
    assert "sform and qform codes are 0" in ORIENTATION_UNKNOWN
    # each slice as displayed (rows head to feet, columns front to back), the slices left to right: no reorientation
    assert scan.orientation == ("I", "P", "R") and scan.spacing == pytest.approx((0.5, 0.6, 4.0))
    np.testing.assert_array_equal(scan.to_sagittal().scan.array, arr)
    # the slice axis is the thick one wherever it is stored; the in-plane axes keep the file's order
    stacked_first = load_scan(_without_orientation(tmp_path / "first.nii.gz", np.moveaxis(arr, 2, 0), (4.0, 0.5, 0.6)))
    np.testing.assert_array_equal(stacked_first.to_sagittal().scan.array, arr)
    # a header with an orientation is not touched
    nib.save(nib.Nifti1Image(arr, np.diag([0.5, 0.6, 4.0, 1.0])), str(tmp_path / "oriented.nii.gz"))
    assert load_scan(tmp_path / "oriented.nii.gz").source.orientation_unknown is None


def _two_transforms(path: Path, sform: np.ndarray, sform_code: int, qform: np.ndarray, qform_code: int) -> Path:
    """A NIfTI whose header holds the given sform and qform with their codes."""
    img = nib.Nifti1Image(SLICES, sform)
    img.set_sform(sform, code=sform_code)
    img.set_qform(qform, code=qform_code)
    nib.save(img, str(path))
    return path


SLICES = np.arange(16 * 16 * 6, dtype=np.int16).reshape(16, 16, 6)
SAG = np.array([[0, 0, 4.0, 0], [0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]])  # rows I, columns P, slices R
SAG_SHIFTED = SAG + np.array([[0, 0, 0, 50.0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])  # 50 mm to the right


def test_a_nifti_whose_sform_and_qform_disagree_is_read_by_the_sform_and_flagged(tmp_path: Path) -> None:
    scan = load_scan(_two_transforms(tmp_path / "disagree.nii.gz", SAG, 1, SAG_SHIFTED, 1))
    np.testing.assert_allclose(scan.affine, SAG)  # nibabel's rule: the scanner sform
    (flag,) = scan.source.header_flags
    assert flag.startswith(
        "nifti_transforms_disagree: the header's sform (code 1, scanner) and qform (code 1, scanner)"
    )
    assert "up to 50.0 mm and 0.0° apart; the sform was used (nibabel's rule); check the header" in flag
    assert "header_flags" not in scan.source.to_dict()  # reported as a flag of the result, not in input


@pytest.mark.parametrize("code", [2, 3, 4, 5], ids=["aligned", "talairach", "mni", "template"])
def test_a_template_sform_beside_a_scanner_qform_is_read_by_the_qform(tmp_path: Path, code: int) -> None:
    scan = load_scan(_two_transforms(tmp_path / "template.nii.gz", np.eye(4), code, SAG, 1))
    np.testing.assert_allclose(scan.affine, SAG, atol=1e-6)  # the scanner's transform: the image reads sagittal
    assert scan.orientation == ("I", "P", "R")
    (flag,) = scan.source.header_flags
    assert f"sform (code {code}, " in flag and "qform (code 1, scanner)" in flag
    assert "the qform was used (the scanner's transform, the sform not being one)" in flag


@pytest.mark.parametrize(
    ("sform_code", "qform", "qform_code", "read"),
    [(1, SAG, 1, SAG), (2, SAG, 1, SAG), (1, SAG_SHIFTED, 0, SAG), (2, SAG_SHIFTED, 2, SAG)],
    ids=["same-scanner", "same-aligned", "qform-uncoded", "neither-scanner"],
)
def test_transforms_that_agree_or_are_not_both_coded_give_no_flag(
    tmp_path: Path, sform_code: int, qform: np.ndarray, qform_code: int, read: np.ndarray
) -> None:
    scan = load_scan(_two_transforms(tmp_path / "t.nii.gz", SAG, sform_code, qform, qform_code))
    np.testing.assert_allclose(scan.affine, read, atol=1e-6)
    # neither a scanner transform (both code 2): nibabel's rule, the sform, and a flag since they disagree
    assert bool(scan.source.header_flags) == (sform_code == qform_code == 2)


def test_the_header_transforms_are_kept_as_stored(tmp_path: Path) -> None:
    path = _two_transforms(tmp_path / "t.nii.gz", np.eye(4), 4, SAG, 1)
    stored = load_scan(path).source.nifti_transforms
    header = nib.load(str(path)).header
    assert stored is not None and int(stored.fields["sform_code"]) == 4 and int(stored.fields["qform_code"]) == 1
    for key in ("srow_x", "quatern_b", "qoffset_y", "pixdim"):
        np.testing.assert_array_equal(stored.fields[key], header[key])


@pytest.mark.parametrize("sform", [np.zeros((4, 4)), np.diag([1.0, 1.0, 0.0, 1.0])], ids=["zero", "singular"])
def test_a_nifti_whose_affine_is_singular_is_refused_in_one_line(tmp_path: Path, sform: np.ndarray) -> None:
    from openspine.errors import GeometryError

    img = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4))
    img.set_qform(None, code=0)
    img.header["sform_code"] = 1
    for i, row in enumerate(("srow_x", "srow_y", "srow_z")):
        img.header[row] = sform[i]
    path = tmp_path / "bad_affine.nii.gz"
    nib.save(nib.Nifti1Image(img.dataobj, None, header=img.header), str(path))
    with pytest.raises(GeometryError, match="no usable orientation: the sform of its header \\(code 1\\)") as refused:
        load_scan(path)
    assert "\n" not in str(refused.value) and "fix the header's sform" in str(refused.value)


def test_a_nifti_header_with_a_negative_size_is_called_damaged(tmp_path: Path) -> None:
    import struct

    path = tmp_path / "neg.nii"
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 4), np.uint8), np.eye(4)), str(path))
    raw = bytearray(path.read_bytes())
    struct.pack_into("<8h", raw, 40, 3, -5, 16, 4, 1, 1, 1, 1)  # dim[1] = -5 ("negative count" from numpy before)
    path.write_bytes(bytes(raw))
    with pytest.raises(ScanReadError, match=r"has a damaged header: it gives the shape \(-5, 16, 4\), with a negative"):
        load_scan(path)


def test_a_nifti_without_voxels_names_its_real_shape(tmp_path: Path) -> None:
    path = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((0, 10, 3), np.uint8), np.eye(4)), str(path))
    with pytest.raises(UnsupportedScanError, match=r"holds no voxels: its header gives the shape \(0, 10, 3\)"):
        load_scan(path)


def _upright() -> np.ndarray:
    """A picture with no symmetry: any turn or mirror of it differs from it."""
    i, j = np.mgrid[0:40, 0:30]
    return (3 * i + j + (i * j) % 7).astype(np.uint8)


# EXIF orientation → the transpose that makes the stored pixels out of the upright picture (its inverse is what a
# viewer applies): 6 = stored turned 90° anticlockwise (shown after a clockwise turn), 8 = the other way, 3 = 180°
@pytest.mark.parametrize(
    ("orientation", "stored_as"),
    [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270), (3, Image.Transpose.ROTATE_180)],
)
@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_picture_is_read_as_its_exif_orientation_shows_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, orientation: int, stored_as: Image.Transpose, suffix: str
) -> None:
    import logging

    path = tmp_path / f"turned{suffix}"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(_upright()).transpose(stored_as).save(
        path, exif=exif, **({"quality": 100} if suffix == ".jpg" else {})
    )
    with caplog.at_level(logging.INFO, logger="openspine"):
        scan = load_scan(path, pixel_spacing=0.5)
    assert scan.shape == (40, 30, 1)
    tol = 3 if suffix == ".jpg" else 0  # JPEG is lossy even at quality 100
    np.testing.assert_allclose(scan.array[:, :, 0], _upright(), atol=tol)
    assert any("EXIF orientation" in r.getMessage() for r in caplog.records)


def test_a_picture_without_exif_orientation_is_read_as_stored(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.fromarray(_upright()).save(path)
    np.testing.assert_array_equal(load_scan(path, pixel_spacing=0.5).array[:, :, 0], _upright())


def test_an_openspine_overlay_is_refused_as_out_of_scope(tmp_path: Path) -> None:
    from PIL.PngImagePlugin import PngInfo

    from openspine.errors import OutOfScopeError

    info = PngInfo()
    info.add_text("Software", "openspine 0.0")
    info.add_text("openspine-output", "overlay")
    path = tmp_path / "overlay.png"
    Image.fromarray(_upright()).save(path, pnginfo=info)
    scan = load_scan(path, pixel_spacing=0.5)  # read, so that the analysis can say why it stops
    with pytest.raises(OutOfScopeError, match=r"openspine output \(overlay\), not a scan: analyse the scan it was"):
        scan.check_analysable()
    assert "not_a_scan" not in scan.source.to_dict()  # kept out of result.json's input
    # what openspine's overlay writer makes is refused the same way
    from openspine.render.overlay import overlay_png_bytes

    (tmp_path / "written.png").write_bytes(overlay_png_bytes(Image.fromarray(_upright()).convert("RGB")))
    with pytest.raises(OutOfScopeError, match="openspine output"):
        load_scan(tmp_path / "written.png", pixel_spacing=0.5).check_analysable()
    # the same picture without openspine's key is a picture like any other
    Image.fromarray(_upright()).save(tmp_path / "plain.png", pnginfo=PngInfo())
    load_scan(tmp_path / "plain.png", pixel_spacing=0.5).check_analysable()


def test_a_nifti_without_voxel_sizes_is_refused_or_flagged_not_read_at_1_mm(tmp_path: Path) -> None:
    """nibabel reads a voxel size of 0 as 1 mm, saying so only in a log line."""
    from openspine.errors import GeometryError

    arr = np.arange(24 * 20 * 3, dtype=np.int16).reshape(24, 20, 3)
    bare = nib.Nifti1Image(arr, None)  # sform and qform codes 0: no orientation
    bare.header["pixdim"][1:4] = 0
    nib.save(bare, tmp_path / "bare.nii.gz")
    with pytest.raises(GeometryError, match=r"no usable voxel size \(pixdim \[0.0, 0.0, 0.0\]\)"):
        load_scan(tmp_path / "bare.nii.gz")
    coded = nib.Nifti1Image(arr, None)
    coded.header.set_qform(np.diag([1.0, 1.0, 1.0, 1.0]), code=1)
    coded.header["pixdim"][1:4] = [0.8, 0, 3.0]
    nib.save(coded, tmp_path / "coded.nii.gz")
    flags = load_scan(tmp_path / "coded.nii.gz").source.header_flags
    assert [f for f in flags if f.startswith("nifti_voxel_size_missing: the header gives no voxel size along array")]
    # a negative size is a size (nibabel's qform takes its absolute value): no flag saying 1 mm was assumed
    coded.header["pixdim"][1:4] = [-0.8, -0.8, -3.0]
    nib.save(coded, tmp_path / "negative.nii.gz")
    scan = load_scan(tmp_path / "negative.nii.gz")
    assert not [f for f in scan.source.header_flags if f.startswith("nifti_voxel_size_missing")]
    assert np.allclose(scan.spacing, (0.8, 0.8, 3.0))


def test_an_identity_affine_is_flagged_a_scanners_is_not(tmp_path: Path, shared_data: Path) -> None:
    arr = np.arange(24 * 20 * 3, dtype=np.int16).reshape(24, 20, 3)
    nib.save(nib.Nifti1Image(arr, np.eye(4)), tmp_path / "eye.nii.gz")
    nib.save(nib.Nifti1Image(arr, np.diag([0.8, 0.8, 3.0, 1.0])), tmp_path / "scaled.nii.gz")
    for name in ("eye", "scaled"):
        flags = load_scan(tmp_path / f"{name}.nii.gz").source.header_flags
        assert [f for f in flags if f.startswith("nifti_default_affine: the header's sform only scales")], name
    real = load_scan(shared_data / "fastcleverseg" / "fcs-vb2-13" / "image.nii.gz")
    assert not [f for f in real.source.header_flags if f.startswith("nifti_default_affine")]


def test_a_big_endian_float64_nifti_is_read_in_single_precision_too(tmp_path: Path) -> None:
    data = np.random.default_rng(1).random((6, 5, 2)) * 100
    header = nib.Nifti1Header(endianness=">")
    header.set_data_dtype(">f8")
    nib.save(nib.Nifti1Image(data.astype(">f8"), np.eye(4), header), str(tmp_path / "be.nii"))
    assert np.asanyarray(nib.load(str(tmp_path / "be.nii")).dataobj).dtype == np.dtype(">f8")
    scan = load_scan(tmp_path / "be.nii")
    assert scan.array.dtype == np.float32
    assert scan.source.to_dict()["stored_dtype"] == "float64"  # said in result.json's input and by info
    np.testing.assert_allclose(scan.array, data, rtol=1e-6)


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_a_pictures_transparent_pixels_are_read_as_black_not_as_the_colour_under_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    import logging

    grey = _upright()
    alpha = np.zeros_like(grey)
    alpha[5:35, 5:25] = 255  # the slice; around it transparent pixels whose stored colour is white
    shown = np.where(alpha > 0, grey, 255).astype(np.uint8)
    if mode == "LA":
        picture = Image.fromarray(np.stack([shown, alpha], axis=-1), mode="LA")
    else:
        picture = Image.fromarray(np.stack([shown, shown, shown, alpha], axis=-1), mode="RGBA")
    path = tmp_path / f"transparent-{mode}.png"
    picture.save(path)
    with caplog.at_level(logging.INFO, logger="openspine"):
        arr = load_scan(path, pixel_spacing=0.5).array[:, :, 0]
    np.testing.assert_allclose(arr[alpha > 0], grey[alpha > 0], atol=1)
    assert np.all(arr[alpha == 0] == 0)
    assert any("transparent pixels" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("alpha", [255, 0])
def test_an_opaque_or_an_empty_alpha_channel_changes_nothing(tmp_path: Path, alpha: int) -> None:
    # all 0: an exporter's empty channel, not a cut-out (it would have read as an all-black picture)
    grey = _upright()
    path = tmp_path / "opaque.png"
    Image.fromarray(np.stack([grey, np.full_like(grey, alpha)], axis=-1), mode="LA").save(path)
    np.testing.assert_array_equal(load_scan(path, pixel_spacing=0.5).array[:, :, 0], grey)


def test_a_grey_pictures_transparent_colour_key_is_read_as_black(tmp_path: Path) -> None:
    grey = _upright().copy()
    grey[:, :4] = 255  # a white margin made transparent by a colour key (PNG tRNS), as a cut-out figure is saved
    path = tmp_path / "keyed.png"
    Image.fromarray(grey, mode="L").save(path, transparency=255)
    arr = load_scan(path, pixel_spacing=0.5).array[:, :, 0]
    assert np.all(arr[:, :4] == 0) and np.array_equal(arr[:, 4:], grey[:, 4:])
