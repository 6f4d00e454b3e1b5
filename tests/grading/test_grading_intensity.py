"""The image's black level (``openspine.grading.intensity``): raw magnitude is read as it is, an offset image
(z-scored, shifted) is read as the raw image it came from, with a flag; on a real SPIDER val slice its grades do
not move."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from grading_helpers import AFFINE, synthetic_spine

from openspine.grading.intensity import RAW_BLACK_FRACTION, black_level, without_black_level
from openspine.scan import Scan

FLAG = "intensity_offset_removed: "


def _raw() -> np.ndarray:
    """A synthetic spine as raw magnitude: background 15 ± 2, bodies 100, discs up to 300, one voxel of air (0)."""
    arr, _ = synthetic_spine([300, 250, 200, 120, 60])
    arr = np.clip(arr, 1.0, None)
    arr[0, 0, 0] = 0.0
    return arr


def test_raw_magnitude_is_read_as_it_is():
    assert black_level(_raw()) == (0.0, None)
    assert black_level(np.clip(_raw(), 1.0, None)) == (0.0, None)  # no voxel of 0: its darkest is 0.3 % of bright
    spider_like = np.zeros((64, 64), np.uint8)
    spider_like[10:50, 10:50] = 255
    assert black_level(spider_like) == (0.0, None)
    # a floor below the threshold (1 % of the bright level: the shared data's darkest voxels reach 0.3 %)
    floor = np.clip(_raw(), 0.01 * 300, None)
    assert floor.min() < RAW_BLACK_FRACTION * np.percentile(floor, 99.5)
    assert black_level(floor) == (0.0, None)
    # int16 stored with scl_slope 0.1 and scl_inter 50: its black 0 reads back as -7e-07 in float32 (user test)
    scaled = _raw().astype(np.float32)
    scaled[0, 0, 0] = np.float32(-500) * np.float32(0.1) + np.float32(50.0) - np.float32(7.451e-07)
    assert black_level(scaled) == (0.0, None)
    scaled[0, 0, 0] = -0.5  # a real negative value still is one
    assert black_level(scaled)[1] is not None


def test_a_pedestal_under_the_whole_image_is_removed():
    """A grey background (a display window's level, a pedestal: 5 % and 16 % of the bright level, FastCleverSeg VB2
    without its zero edge) had moved up to a third of the Pfirrmann grades, 5 to 3, with no flag."""
    for share in (0.05, 0.16):
        level, why = black_level(_raw() + share * 300)
        assert level == pytest.approx(share * 300) and why is not None and "darkest voxel" in why


def test_shifted_data_is_shifted_back():
    raw = _raw()
    level, why = black_level(raw + 1000)
    assert level == 1000.0 and why is not None and "darkest voxel" in why
    z = ((raw - raw.mean()) / raw.std()).astype(np.float32)
    level, why = black_level(z)
    assert level == pytest.approx(float(z.min())) and why is not None and "negative" in why
    np.testing.assert_allclose((z - level) * raw.std(), raw, atol=1e-3)
    low = raw.astype(np.float32) - 1e6
    level, why = black_level(low)
    assert level == -1e6 and why is not None
    np.testing.assert_allclose(low - level, raw, atol=0.07)  # float32 holds 1e6 - x to 1/16


def test_the_flag_comes_only_with_a_shift():
    raw = _raw()
    view = Scan(raw, AFFINE).to_sagittal()
    same, flag = without_black_level(view)
    assert same is view and flag is None
    moved, flag = without_black_level(Scan(raw + 1000, AFFINE).to_sagittal())
    assert flag is not None and flag.startswith(FLAG + "the image's black level is 1000 (")
    assert "shifted by -1000 before" in flag
    np.testing.assert_allclose(moved.scan.array, view.scan.array, atol=1e-3)  # the view holds float32
    np.testing.assert_array_equal(moved.scan.affine, view.scan.affine)
    _, flag = without_black_level(Scan(raw - 1e6, AFFINE).to_sagittal(), "T1")
    assert flag is not None and flag.startswith(FLAG + "the T1 series' black level is -1000000 (it holds negative")
    assert "shifted by +1000000 before" in flag


# --- a real SPIDER val T2 slice, graded by the built-in detector and grader ---------------------------------------


@pytest.fixture(scope="module")
def spider_slice():
    """(scan, its view, the built-in detector's detection) of SPIDER val patient 31."""
    from openspine.detection import detect
    from openspine.errors import ModelError
    from openspine.grading.model import load_grader
    from openspine.io import load_scan

    data = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # as tests/conftest.py finds it
    image = data / "spider" / "31" / "image.nii.gz"
    if not image.is_file():
        pytest.skip(f"real test data not found at {image}")
    scan = load_scan(image)
    view = scan.to_sagittal()
    try:
        load_grader(None)
        detection = detect(view)
    except ModelError as exc:
        pytest.skip(f"built-in models not available: {exc}")
    return scan, view, detection


def _variants(scan: Scan) -> dict[str, Scan]:
    """The slice as preprocessing pipelines leave it (float32, as NIfTI tools write them)."""
    a = np.asarray(scan.array, np.float32)
    arrays = {"+1000": a + 1000, "z-scored": (a - a.mean()) / a.std(), "-1e6": a - 1e6}
    return {name: Scan(arr.astype(np.float32), scan.affine, scan.source) for name, arr in arrays.items()}


def _grades(discs) -> dict[tuple[str, str], tuple]:
    return {
        (d.level.value, k.value): (g.grade, g.balanced_grade, g.probabilities)
        for d in discs
        if d.level is not None
        for k, g in d.grades.items()
        if g.available
    }


def test_real_slice_grades_do_not_move_with_an_offset(spider_slice):
    from openspine.grading import grade
    from openspine.grading.features import csf_over_body

    scan, view, detection = spider_slice
    original = grade(view, detection)
    assert not any(f.startswith(FLAG) for f in original.flags)
    want = _grades(original.discs)
    assert len({lv for lv, _ in want}) == 6  # T12-L1 … L5-S1 graded
    csf = csf_over_body(view, detection)
    assert csf is not None
    for name, variant in _variants(scan).items():
        v = variant.to_sagittal()
        out = grade(v, detection)  # the same discs: the grader, not the detector, is under test
        got = _grades(out.discs)
        assert got.keys() == want.keys(), name
        for key, (g, balanced, probs) in want.items():
            assert got[key][:2] == (g, balanced), (name, key)
            for cls, p in probs.items():
                assert got[key][2][cls] == pytest.approx(p, abs=1e-4), (name, key, cls)
        assert sum(f.startswith(FLAG) for f in out.flags) == 1, name
        assert csf_over_body(v, detection) == pytest.approx(csf, rel=1e-4), name


def test_real_slice_analysis_flags_the_shift(spider_slice):
    import openspine

    scan, _, _ = spider_slice
    plain = openspine.analyze(scan)
    shifted = openspine.analyze(_variants(scan)["+1000"])
    assert not any(f.startswith(FLAG) for f in plain.flags)
    assert [f for f in shifted.flags if f.startswith(FLAG)] == [
        FLAG + "the image's black level is 1000 (its darkest voxel is 80 % of its 99.5th percentile, where raw MR "
        "magnitude has voxels near 0); intensities were shifted by -1000 before the discs were measured (grading, "
        "spinal-fluid check)"
    ]
    assert shifted.input.sequence.get("csf_over_body") == plain.input.sequence.get("csf_over_body")
    assert _grades(shifted.discs).keys() == _grades(plain.discs).keys()
    assert {k: v[:2] for k, v in _grades(shifted.discs).items()} == {k: v[:2] for k, v in _grades(plain.discs).items()}


def test_a_padding_voxel_and_a_tiny_scale_leave_the_grades_as_they_are(spider_slice):
    # one voxel of -32768 (DICOM pixel padding) had been taken for the black level: every intensity shifted by
    # +32768, 13-25 of 48 grades of a slice changed; a slice scaled by 1e-6 had 14 of 48 changed by the measures'
    # fixed floors
    from openspine.grading import grade
    from openspine.grading.intensity import padding_fill

    scan, view, detection = spider_slice
    want = _grades(grade(view, detection).discs)
    padded = np.asarray(scan.array).astype(np.int16)
    padded[0, 0, 0] = -32768
    tiny = np.asarray(scan.array, np.float64) * 1e-6
    for name, arr, flagged in (("padding", padded, True), ("x1e-6", tiny, False)):
        out = grade(Scan(arr, scan.affine, scan.source).to_sagittal(), detection)
        got = _grades(out.discs)
        assert {k: v[:2] for k, v in got.items()} == {k: v[:2] for k, v in want.items()}, name
        for key, (_, _, probs) in want.items():
            for cls, p in probs.items():
                assert got[key][2][cls] == pytest.approx(p, abs=1e-3), (name, key, cls)
        said = [f for f in out.flags if f.startswith(FLAG)]
        assert bool(said) is flagged, (name, said)
    assert padding_fill(padded) == (-32768.0, float(np.asarray(scan.array).min()), 1)
    said = [
        f for f in grade(Scan(padded, scan.affine, scan.source).to_sagittal(), detection).flags if f.startswith(FLAG)
    ]
    assert said[0].startswith(FLAG + "1 voxel(s) of the image hold -32768, far below its darkest other value")
    # a z-scored image's darkest values lie close together: no fill
    a = np.asarray(scan.array, np.float32)
    assert padding_fill((a - a.mean()) / a.std()) is None


def test_a_picture_whose_window_clipped_the_bright_tissue_is_not_graded():
    """Windowed at its 70th percentile, a real slice has half its middle at white: its discs read alike, and the
    grades had moved by two in a user test; as stored (the SPIDER slices are 8-bit, windowed once) it is graded."""
    import nibabel as nib

    import openspine

    from ..conftest import shared_data_or_skip

    data = shared_data_or_skip()
    img = nib.load(data / "spider" / "100" / "image.nii.gz")
    arr = np.asarray(img.dataobj, dtype=np.float32)
    stored = openspine.analyze(openspine.Scan(arr, img.affine))
    assert not any(f.startswith("intensity_clipped") for f in stored.flags)
    windowed = np.clip(arr / np.percentile(arr, 70) * 255, 0, 255).round()
    result = openspine.analyze(openspine.Scan(windowed, img.affine))
    said = [f for f in result.flags if f.startswith("intensity_clipped: ")]
    assert said and "a display window clipped the bright tissue" in said[0]
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert result.vertebrae  # bodies and labels stay
    framed = np.full((arr.shape[0] + 400, arr.shape[1] + 400, 1), 255.0, np.float32)  # a picture in a white frame
    framed[200:-200, 200:-200] = arr
    from openspine.grading.intensity import clipped_white

    assert clipped_white(openspine.Scan(framed, img.affine).to_sagittal()) < 0.25


def test_a_blank_middle_slice_of_a_volume_is_not_read_as_clipped() -> None:
    """A volume whose middle slice is blank (NaN, read as its lowest value, or 0) had had every grade withheld as
    clipped at white, 100 % of that slice being at its own brightest value (user test); the nearest slice with
    contrast is read, and a slice windowed at white still is."""
    from openspine.grading.intensity import clipped_white

    rng = np.random.default_rng(0)
    view = Scan(rng.uniform(0, 1000, (9, 64, 64)).astype(np.float32), np.eye(4)).to_sagittal()
    blank = np.array(view.scan.array)  # the analysis layout: slices left to right on the last axis
    blank[:, :, blank.shape[2] // 2] = 0.0
    assert clipped_white(Scan(blank, view.scan.affine).to_sagittal()) < 0.05
    clipped = np.minimum(blank, 300.0)  # windowed: the slices beside it are mostly white
    assert clipped_white(Scan(clipped, view.scan.affine).to_sagittal()) > 0.5
