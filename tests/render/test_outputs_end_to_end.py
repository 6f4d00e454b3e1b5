"""Every output file from real scans of the shared data, with the built-in models, checked for what a user
relies on: grids and affines, references to the source series, the overlay's size and orientation."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

from openspine.analysis import analyze
from openspine.levels import Level
from openspine.writers import write_result

pytestmark = pytest.mark.usefixtures("shared_data")


def _needs_detector() -> None:
    from openspine.models import BUILTIN_DIR

    if not (BUILTIN_DIR / "detector" / "card.json").is_file():
        pytest.skip("no built-in detector in this checkout")


def test_label_map_of_a_real_volume_matches_its_ground_truth(shared_data: Path, tmp_path: Path) -> None:
    _needs_detector()
    case = shared_data / "fastcleverseg" / "fcs-vb2-13"  # val split
    result = analyze(case / "image.nii.gz")
    files = write_result(result, tmp_path / "out", "json,nifti")
    img, gt_img = nib.load(str(files["labels.nii.gz"])), nib.load(str(case / "mask.nii.gz"))
    lab, gt = np.asanyarray(img.dataobj), np.asanyarray(gt_img.dataobj)
    assert lab.shape == gt.shape
    np.testing.assert_allclose(img.affine, gt_img.affine, atol=1e-5)
    found = [v.label for v in result.vertebrae if v.label is not None]
    overlaps = []
    for level in found:
        value = level.label_value
        if not (gt == value).any():
            continue  # a level outside the ground truth (e.g. the unlabelled sacrum)
        pred, true = lab == value, gt == value
        inter = (pred & true).sum()
        overlaps.append((inter / max(pred.sum(), 1), 2 * inter / (pred.sum() + true.sum())))
    assert len(overlaps) >= 6, f"levels found: {found}"
    precision, dice = np.median(np.array(overlaps), axis=0)
    # the filled bodies lie inside the ground-truth body of the same level and cover most of it
    assert precision > 0.85 and dice > 0.75, overlaps


def _dicom_series_of_real_volume(shared_data: Path, folder: Path) -> None:
    """A real val volume written as a thick-slice sagittal DICOM series (15 slices, 4 mm apart)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dicom_fixtures import write_series

    img = nib.load(str(shared_data / "fastcleverseg" / "fcs-vb2-13" / "image.nii.gz"))
    arr = np.asanyarray(img.dataobj)
    mid = arr.shape[2] // 2
    ks = np.arange(mid - 28, mid + 29, 4)[:15]
    aff = img.affine.copy()
    aff[:3, 3] = img.affine[:3, :3] @ np.array([0, 0, ks[0]]) + img.affine[:3, 3]
    aff[:3, 2] = img.affine[:3, 2] * 4
    write_series(folder, np.ascontiguousarray(arr[:, :, ks]), aff)


def test_dicom_outputs_from_a_real_series(shared_data: Path, tmp_path: Path) -> None:
    _needs_detector()
    hd = pytest.importorskip("highdicom")
    series = tmp_path / "series"
    _dicom_series_of_real_volume(shared_data, series)
    result = analyze(series)
    assert len(result.vertebrae) >= 6
    files = write_result(result, tmp_path / "out", "all")
    source_uids = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in series.iterdir()}
    seg = hd.seg.segread(files["vertebrae_seg.dcm"])
    labels = [d.segment_label for d in seg.SegmentSequence]
    for v in result.vertebrae:
        if v.label is not None:
            assert f"{v.label.value} vertebral body" in labels
    referenced = {
        i.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence
    }
    assert referenced and referenced <= source_uids
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == result.view.input.source.series_uid
    sr = hd.sr.srread(files["measurements_sr.dcm"])
    text = str(sr)
    assert all(f"vertebra {v.label.value}" in text for v in result.vertebrae if v.label)
    lab = nib.load(str(files["labels.nii.gz"]))
    assert lab.shape == result.view.input.shape
    np.testing.assert_allclose(lab.affine, result.view.input.affine, atol=1e-4)
    doc = json.loads(files["result.json"].read_text())
    assert doc["input"]["format"] == "dicom" and doc["input"]["shape"][2] == 15
    assert Image.open(files["overlay.png"]).width == 1000
    html = files["report.html"].read_text()
    assert html.count("<tr>") >= len(result.vertebrae) and "data:image/png;base64," in html
    # what each grade means, from the grader's card (a reader could not tell that marrow_change 2 is Modic type 2),
    # and the wide table in a box of its own that scrolls (it ran off the page at 1200 px)
    assert "<dt>marrow_change</dt><dd>Modic type 0 (none) / 1 / 2 / 3 (nominal)</dd>" in html
    assert "<th title='Pfirrmann grade I–V'>pfirrmann</th>" in html and "<div class='wide'><table>" in html


def test_overlay_is_the_same_whatever_the_stored_orientation(shared_data: Path, tmp_path: Path) -> None:
    """A slice stored head-down and posterior-first gives the same overlay (anterior left, head up)."""
    _needs_detector()
    src = nib.load(str(shared_data / "spider" / "21" / "image.nii.gz"))
    arr = np.asanyarray(src.dataobj)
    flipped = arr[::-1, ::-1, :].transpose(1, 0, 2)  # rows now P->A, columns I->S
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1, arr.shape[0] - 1
    flip[1, 1], flip[1, 3] = -1, arr.shape[1] - 1
    swap = np.eye(4)[[1, 0, 2, 3]]
    aff = src.affine @ flip @ swap
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    nib.save(nib.Nifti1Image(arr, src.affine), str(tmp_path / "a" / "scan.nii.gz"))
    nib.save(nib.Nifti1Image(flipped, aff), str(tmp_path / "b" / "scan.nii.gz"))
    ra, rb = analyze(tmp_path / "a" / "scan.nii.gz"), analyze(tmp_path / "b" / "scan.nii.gz")
    assert rb.view.input.orientation != ra.view.input.orientation
    assert [v.label for v in ra.vertebrae] == [v.label for v in rb.vertebrae]
    assert Level.L5 in [v.label for v in ra.vertebrae]
    np.testing.assert_allclose([v.centroid_mm for v in ra.vertebrae], [v.centroid_mm for v in rb.vertebrae], atol=1e-3)
    ia, ib = np.asarray(ra.overlay()), np.asarray(rb.overlay())
    assert ia.shape == ib.shape and ia.shape[1] == 1000
    assert np.mean(ia != ib) < 0.001
    # anterior left: the vertebral bodies (the spine's front) lie left of the bright canal, labels further left
    vox = [rb.view.input.world_to_voxel(np.array(v.centroid_mm)) for v in rb.vertebrae]
    np.testing.assert_allclose(vox, [v.centroid_voxel for v in rb.vertebrae], atol=1e-2)


def test_report_legend_survives_a_relative_grader_path_read_back_elsewhere(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A result made with ``--grader`` given relative to one working folder (a fine-tuned grader: its card has its
    own name), read back and rendered again from another folder, still says what each grade means: the relative
    path had no longer led to the card, and the legend was lost."""
    import shutil

    from openspine.models import BUILTIN_DIR
    from openspine.render.report import render_report
    from openspine.results import AnalysisResult
    from openspine.writers import grading_descriptions

    _needs_detector()
    if not (BUILTIN_DIR / "grader" / "card.json").is_file():
        pytest.skip("no built-in grader in this checkout")
    work = tmp_path / "work"
    shutil.copytree(BUILTIN_DIR / "grader", work / "my-grader")
    card_path = work / "my-grader" / "card.json"
    card = json.loads(card_path.read_text())
    card["name"] = "my-finetuned-grader"
    card_path.write_text(json.dumps(card))
    monkeypatch.chdir(work)
    write_result(analyze(shared_data / "spider" / "21" / "image.nii.gz", grader="my-grader"), work / "out", "json")
    monkeypatch.chdir(tmp_path)
    again = AnalysisResult.read(work / "out" / "result.json")
    html = render_report(again, None, grading_descriptions(again))
    assert "<dt>marrow_change</dt><dd>Modic type 0 (none) / 1 / 2 / 3 (nominal)</dd>" in html
