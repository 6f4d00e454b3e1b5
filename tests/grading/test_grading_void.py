"""Signal voids (metal, bone cement): the disc is not graded, says why, and the scan goes on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from grading_helpers import LEVELS, SPACING, fake_detection, spine_scan, synthetic_spine

from openspine.levels import DiscLevel, Grading

# synthetic spines: bodies 100, background 15; a disc at 0.5 is as dark as air, one at 5 is a black (worn) disc


def _plane_and_geometry(disc_values: list[float], level: DiscLevel) -> tuple[np.ndarray, object]:
    arr, geoms = synthetic_spine(disc_values)
    return arr[:, :, 0], geoms[level]


def test_a_void_disc_and_no_other_is_measured_as_void():
    from openspine.grading.void import VOID_SHARE, signal_void, void_shares

    plane, g = _plane_and_geometry([60, 60, 60, 0.5, 60], DiscLevel.L4_L5)
    shares = void_shares(plane, g, SPACING[:2])
    assert shares["disc"] >= 0.9 and shares["body above"] == 0 and shares["body below"] == 0
    why = signal_void(plane, g, SPACING[:2])
    assert why is not None and "signal void fills the disc" in why and "metal or bone cement" in why
    plane, g = _plane_and_geometry([60, 60, 60, 0.5, 60], DiscLevel.L3_L4)
    assert max(void_shares(plane, g, SPACING[:2]).values()) < VOID_SHARE


def test_a_black_disc_is_no_void():
    from openspine.grading.void import signal_void

    plane, g = _plane_and_geometry([60, 60, 60, 5.0, 60], DiscLevel.L4_L5)  # 5 % of the bodies' signal
    assert signal_void(plane, g, SPACING[:2]) is None


def test_a_void_body_names_the_body():
    from openspine.grading.void import signal_void

    arr, geoms = synthetic_spine([60] * 5)
    plane = arr[:, :, 0].copy()
    g = geoms[DiscLevel.L4_L5]
    below = round(max(g.lower_anterior[0], g.lower_posterior[0]))  # the body below L4-L5 starts here
    body = (plane[below : below + 30] > 90) & (plane[below : below + 30] < 110)
    plane[below : below + 30][body] = 0.3  # cement fills it
    why = signal_void(plane, g, SPACING[:2])
    assert why is not None and "body below" in why


def test_padding_above_a_cut_body_is_no_void():
    # the top rows of a SPIDER slice are black padding: a body cut by them is not a void
    from openspine.grading.void import signal_void

    arr, geoms = synthetic_spine([60] * 5)
    plane = arr[:, :, 0].copy()
    g = geoms[DiscLevel.L1_L2]
    top = round(min(g.upper_anterior[0], g.upper_posterior[0]))
    plane[: top - 8] = 0.0  # nothing but 0 on these rows: padding cutting the body above
    assert signal_void(plane, g, SPACING[:2]) is None
    plane[: top - 20] = 0.0  # padding further up, and a void filling the body between it and the disc: a void
    plane[top - 20 : top - 2, 100:180] = 0.0
    assert "body above" in (signal_void(plane, g, SPACING[:2]) or "")


def test_grade_withholds_the_void_disc_only():
    from openspine.grading import grade

    scan, geoms = spine_scan([60, 60, 60, 0.5, 60], n_slices=3)
    view = scan.to_sagittal()
    out = grade(view, fake_detection(view, geoms))
    by_level = {d.level: d for d in out.discs}
    void = by_level[DiscLevel.L4_L5].grades[Grading.PFIRRMANN]
    assert (void.grade, void.available) == (None, False)
    assert (void.note or "").startswith("withheld: a signal void fills the disc")
    for lv in LEVELS:
        if lv is not DiscLevel.L4_L5:
            assert by_level[lv].grades[Grading.PFIRRMANN].available
    assert any(f.startswith("grades_withheld: L4-L5 (a signal void") for f in out.flags)


def test_a_window_that_clipped_the_tissue_beside_the_disc_is_not_judged():
    # an exported picture whose window blacks out the darkest tissue leaves dark discs as dark as a void
    from openspine.grading.void import CLIPPED, MAX_CLIPPED, signal_void, void_shares

    arr, geoms = synthetic_spine([60, 60, 60, 0.5, 60])
    plane, g = arr[:, :, 0].copy(), geoms[DiscLevel.L4_L5]
    assert signal_void(plane, g, SPACING[:2]) is not None
    plane[plane < 20] = float(plane.min())  # the background beside the spine clipped to the floor
    assert void_shares(plane, g, SPACING[:2])[CLIPPED] >= MAX_CLIPPED
    assert signal_void(plane, g, SPACING[:2]) is None


def test_a_picture_is_not_judged_for_voids():
    # a picture's window and gamma are unknown: its dark discs are graded as before
    from dataclasses import replace

    from openspine.grading import grade

    scan, geoms = spine_scan([60, 60, 60, 0.5, 60], n_slices=3)
    picture = replace(scan, source=replace(scan.source, format="image"))
    view = picture.to_sagittal()
    out = grade(view, fake_detection(view, geoms))
    assert {d.level: d.grades[Grading.PFIRRMANN].available for d in out.discs}[DiscLevel.L4_L5]
    assert not any("signal void" in f for f in out.flags)


def _void_at(image: Path, level: str, out: Path) -> Path:
    """A copy of a real slice with an elliptic signal void over the disc ``level`` that the built-in detector finds,
    drawn as ``scripts/void_survey.py`` draws it (what a titanium cage leaves on a T2 image)."""
    import importlib.util

    import nibabel as nib

    from openspine.detection import detect
    from openspine.io import load_scan

    spec = importlib.util.spec_from_file_location(
        "void_survey", Path(__file__).parents[2] / "scripts" / "void_survey.py"
    )
    assert spec is not None and spec.loader is not None
    survey = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(survey)
    img = nib.load(str(image))
    disc = next(d for d in detect(load_scan(image).to_sagittal()).discs if d.level and d.level.value == level)
    c = disc.centroid_voxel
    arr = survey.draw_void(np.asarray(img.dataobj), (c[0], c[1]), tuple(img.header.get_zooms()[:2]), (10.0, 14.0))
    nib.save(nib.Nifti1Image(arr, img.affine, img.header), str(out))
    return out


def test_a_real_slice_with_a_cage_like_void_keeps_every_other_grade(shared_data: Path, tmp_path: Path):
    src = shared_data / "spider" / "1" / "image.nii.gz"  # a train patient
    scan_path = _void_at(src, "L4-L5", tmp_path / "void.nii.gz")
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "openspine", "analyze", str(scan_path), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "grades_withheld: L4-L5 (a signal void fills the disc" in run.stdout + run.stderr
    result = json.loads((out / "result.json").read_text())
    grades = {d["level"]: d["grades"].get("pfirrmann", {}) for d in result["discs"]}
    assert grades["L4-L5"]["available"] is False and "signal void" in grades["L4-L5"]["note"]
    assert all(grades[lv]["available"] for lv in ("L1-L2", "L2-L3", "L3-L4", "L5-S1"))
    # the same slice without the void: no disc withheld
    from openspine import analyze

    assert not any("signal void" in f for f in analyze(src).flags)
