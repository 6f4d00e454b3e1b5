"""Output files from a scan read from DICOM: label map on the input grid, DICOM SEG and SR that reference
the source series, the overlay and the HTML report.

The records here are written by the test (a unit test of the exporters, independent of the models); the
end-to-end tests with real detections are in test_outputs_end_to_end.py.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest

from openspine.analysis import analyze
from openspine.levels import DiscLevel, Grading, Level
from openspine.results import AnalysisResult, Disc, Grade, SliceOutline, Vertebra, vec3
from openspine.writers import write_result


def _quad(view, rows: tuple[float, float], cols: tuple[float, float], k: int) -> SliceOutline:  # type: ignore[no-untyped-def]
    internal = [(rows[0], cols[0], k), (rows[0], cols[1], k), (rows[1], cols[1], k), (rows[1], cols[0], k)]
    vox = tuple(vec3(view.to_input_voxel(np.array(p, dtype=float))) for p in internal)
    mm = tuple(vec3(view.to_world(np.array(p, dtype=float))) for p in internal)
    return SliceOutline(view.input_slice_index(k), vox, mm)  # type: ignore[arg-type]


@pytest.fixture
def dicom_result(tmp_path: Path):  # type: ignore[no-untyped-def]
    from dicom_fixtures import real_crop, write_series

    arr, aff = real_crop(shape=(64, 64, 6))
    write_series(tmp_path / "series", arr, aff)
    result = analyze(tmp_path / "series")
    view = result.view
    outline = _quad(view, (10, 30), (12, 40), 2)
    centre = np.array([20.0, 26.0, 2.0])
    vertebra = Vertebra(
        Level.L3,
        0.9,
        vec3(view.to_input_voxel(centre)),
        vec3(view.to_world(centre)),
        (outline, _quad(view, (10, 30), (12, 40), 3)),
        2,
    )
    disc_c = np.array([34.0, 26.0, 2.0])
    grades = {Grading.PFIRRMANN: Grade(3, {"1": 0.1, "2": 0.2, "3": 0.5, "4": 0.1, "5": 0.1})}
    disc = Disc(
        DiscLevel.L3_L4,
        vec3(view.to_input_voxel(disc_c)),
        vec3(view.to_world(disc_c)),
        (_quad(view, (31, 37), (12, 40), 2),),
        grades,
    )
    return dataclasses.replace(result, vertebrae=(vertebra,), discs=(disc,)), tmp_path / "series", arr, aff


def test_label_map_is_on_the_input_grid(dicom_result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result, _, arr, aff = dicom_result
    files = write_result(result, tmp_path / "out", "nifti")
    img = nib.load(str(files["labels.nii.gz"]))
    lab = np.asanyarray(img.dataobj)
    assert lab.shape == arr.shape
    np.testing.assert_allclose(img.affine, result.view.input.affine, atol=1e-4)
    np.testing.assert_allclose(img.affine, aff, atol=1e-3)
    assert set(np.unique(lab)) == {0, Level.L3.label_value, DiscLevel.L3_L4.label_value}
    # the filled body contains its centroid's voxel
    c = np.rint(result.vertebrae[0].centroid_voxel).astype(int)
    assert lab[tuple(c)] == Level.L3.label_value


def test_dicom_seg_and_sr_reference_the_source_series(dicom_result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hd = pytest.importorskip("highdicom")
    result, series_dir, _, _ = dicom_result
    files = write_result(result, tmp_path / "out", "seg,sr")
    source_uids = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in series_dir.iterdir()}
    series_uid = result.view.input.source.series_uid

    seg = hd.seg.segread(files["vertebrae_seg.dcm"])
    assert seg.Modality == "SEG"
    assert [d.segment_label for d in seg.SegmentSequence] == ["L3 vertebral body", "L3-L4 disc"]
    referenced = {
        i.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence
    }
    assert referenced <= source_uids and seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series_uid
    assert "PatientName" not in seg or str(seg.PatientName) == str(
        pydicom.dcmread(next(series_dir.iterdir())).PatientName
    )

    sr = hd.sr.srread(files["measurements_sr.dcm"])
    assert sr.Modality == "SR"
    evidence = {i.ReferencedSOPInstanceUID for s in sr.CurrentRequestedProcedureEvidenceSequence
                for r in s.ReferencedSeriesSequence for i in r.ReferencedSOPSequence}  # fmt: skip
    assert evidence == source_uids
    groups = sr.content.get_observation_groups() if hasattr(sr.content, "get_observation_groups") else None
    text = str(sr)
    assert "disc L3-L4" in text and "pfirrmann=3" in text and "vertebra L3" in text
    del groups
    # what made it: one contributing-equipment item per model, with its version and sha256
    made_by = {item.ManufacturerModelName: item.ContributionDescription for item in sr.ContributingEquipmentSequence}
    assert set(made_by) == {m.name for m in result.models}
    assert all(f"sha256 {m.sha256}" in made_by[m.name] for m in result.models)


def test_the_sr_says_why_a_label_or_grade_is_withheld_and_carries_the_flags(dicom_result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A withheld grade or label was an empty group in the SR, and no flag was in it: a PACS reader saw silent gaps
    where result.json, the CSVs and the report say why (user test)."""
    pytest.importorskip("highdicom")
    result, _, _, _ = dicom_result
    disc = result.discs[0]
    withheld = Grade(None, None, available=False, note="withheld: the sequence is uncertain")
    grades = {Grading.PFIRRMANN: withheld, Grading.MARROW_CHANGE: withheld, Grading.HERNIATION: Grade(0, {"0": 0.9})}
    # '…' as the flags write it: without a character set the SR had '?' in its place (user test)
    body = dataclasses.replace(result.vertebrae[0], label=None, note="label withheld: outside T11 … S1")
    flags = ("sequence_uncertain: the image looks most like T2 (probability 0.70)",)
    result = dataclasses.replace(
        result, vertebrae=(body,), discs=(dataclasses.replace(disc, grades=grades),), flags=flags
    )
    files = write_result(result, tmp_path / "out", "sr")
    comments: list[str] = []

    def walk(items: Any) -> None:
        for item in items:
            if item.get("ValueType") == "TEXT" and item.ConceptNameCodeSequence[0].CodeMeaning == "Comment":
                comments.append(str(item.TextValue))
            walk(item.get("ContentSequence", []))

    walk(pydicom.dcmread(files["measurements_sr.dcm"]).ContentSequence)
    assert comments == [
        "label withheld: outside T11 … S1",
        "pfirrmann, marrow_change: withheld: the sequence is uncertain",
        flags[0],
    ], comments


def test_the_seg_holds_the_label_map_voxel_for_voxel(dicom_result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Each segment's frames are its structure in labels.nii.gz on the source slice they reference (the SEG is
    written label-map style: one volume of boolean planes per segment took gigabytes on a 400-slice series)."""
    hd = pytest.importorskip("highdicom")
    result, series_dir, _, _ = dicom_result
    files = write_result(result, tmp_path / "out", "nifti,seg")
    lab = np.asanyarray(nib.load(str(files["labels.nii.gz"])).dataobj)  # the input grid: [row, column, slice]
    seg = hd.seg.segread(files["vertebrae_seg.dcm"])
    value_of = {1: Level.L3.label_value, 2: DiscLevel.L3_L4.label_value}  # segment number → label value
    assert [d.segment_label for d in seg.SegmentSequence] == ["L3 vertebral body", "L3-L4 disc"]

    def along_normal(ds: pydicom.Dataset) -> float:
        row, col = np.reshape(np.asarray(ds.ImageOrientationPatient, dtype=float), (2, 3))
        return float(np.dot(np.cross(row, col), np.asarray(ds.ImagePositionPatient, dtype=float)))

    headers = (pydicom.dcmread(f, stop_before_pixels=True) for f in series_dir.iterdir())
    by_position = sorted(headers, key=along_normal)
    uids = [str(ds.SOPInstanceUID) for ds in by_position]
    frames = seg.get_pixels_by_source_instance(uids, combine_segments=True, skip_overlap_checks=True)
    for k, plane in enumerate(frames):
        expected = np.zeros(plane.shape, dtype=np.uint8)
        for number, value in value_of.items():
            expected[plane == number] = value
        np.testing.assert_array_equal(expected, lab[:, :, k])
    assert any(np.any(p) for p in frames)


def test_an_unlabelled_disc_is_in_the_label_map_and_the_seg(dicom_result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hd = pytest.importorskip("highdicom")
    result, _, _, _ = dicom_result
    unlabelled = dataclasses.replace(result.discs[0], level=None, grades={})
    result = dataclasses.replace(result, discs=(unlabelled,))
    files = write_result(result, tmp_path / "out", "nifti,seg")
    lab = np.asanyarray(nib.load(str(files["labels.nii.gz"])).dataobj)
    assert set(np.unique(lab)) == {0, Level.L3.label_value, 151}  # 150 + its rank from the top among the discs
    seg = hd.seg.segread(files["vertebrae_seg.dcm"])
    assert [d.segment_label for d in seg.SegmentSequence] == ["L3 vertebral body", "disc 1 (level unknown)"]


def test_seg_and_sr_do_not_read_the_source_series_again(dicom_result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("highdicom")
    result, series_dir, _, _ = dicom_result
    assert len(result.view.input.source.dicom_headers) == result.view.input.shape[2]
    shutil.rmtree(series_dir)  # the headers SEG/SR reference were kept on the scan when it was read
    files = write_result(result, tmp_path / "out", "seg,sr")
    assert files["vertebrae_seg.dcm"].stat().st_size > 0 and files["measurements_sr.dcm"].stat().st_size > 0
    assert "dicom_headers" not in result.to_dict()["input"]["series"]


def test_seg_needs_dicom_input(tmp_path: Path) -> None:
    pytest.importorskip("highdicom")
    from openspine.data import demo_scan_path

    result = analyze(demo_scan_path())
    files = write_result(result, tmp_path / "o", "seg")  # skipped, with the reason in result.json
    assert list(files) == ["result.json"]
    assert "DICOM input only" in json.loads(files["result.json"].read_text())["steps_not_run"]["seg output"]


def test_overlay_and_report(dicom_result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    result, _, _, _ = dicom_result
    files = write_result(result, tmp_path / "out", "png,html")
    img = Image.open(files["overlay.png"])
    assert img.width == 1000 and img.height > 300
    html = files["report.html"].read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    assert "<td>L3-L4</td>" in html and "3 (0.50)" in html and "class='low'" in html
    assert "not a medical device" in html


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    if shutil.which("chromium") is None:
        pytest.skip("chromium not installed (apt-get install chromium); see scripts/screenshot_report.py")
    from PIL import Image

    from openspine.data import demo_scan_path

    files = write_result(analyze(demo_scan_path()), tmp_path / "out", "png,html")
    shot = tmp_path / "shot.png"
    script = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_report.py"
    subprocess.run([sys.executable, str(script), str(files["report.html"]), str(shot)], check=True, timeout=180)
    img = np.asarray(Image.open(shot).convert("L"))
    assert img.shape[1] == 1200
    assert (img < 40).mean() > 0.05  # the embedded (dark) MR overlay is drawn, not a broken-image icon


@pytest.mark.parametrize(("p", "shown", "low"), [(0.5968, "1 (0.60)", False), (0.594, "1 (0.59)", True)])
def test_a_grade_is_highlighted_as_its_probability_is_shown(p: float, shown: str, low: bool) -> None:
    """A probability of 0.5968 is shown as 0.60: it is not highlighted as 'below 60 %' (it was)."""
    import numpy as np

    from openspine.levels import DiscLevel, Grading
    from openspine.render.report import render_report
    from openspine.results import AnalysisResult, Disc, Grade, InputInfo, vec3
    from openspine.scan import Scan

    scan = Scan(np.ones((8, 8, 1)), np.diag([0.5, 0.5, 1.0, 1.0]))
    grade = Grade(1, {"0": 1 - p, "1": p})
    disc = Disc(DiscLevel.L4_L5, vec3((1, 1, 0)), vec3((1, 1, 0)), (), {Grading.BULGING: grade})
    html = render_report(AnalysisResult(input=InputInfo.from_scan(scan), discs=(disc,)), None)
    assert f"<td class='low'>{shown}" in html if low else f"<td>{shown}" in html


def _one_disc_result(p: float, **input_changes: object) -> AnalysisResult:
    """A one-slice result with one L1 body and one T12-L1 disc graded Pfirrmann 3 at probability ``p``."""
    from openspine.results import InputInfo
    from openspine.scan import Scan

    scan = Scan(np.ones((8, 8, 1)), np.diag([0.5, 0.5, 1.0, 1.0]))
    grade = Grade(3, {"1": 0.0, "2": 0.02, "3": p, "4": 0.98 - p, "5": 0.0})
    disc = Disc(DiscLevel.T12_L1, vec3((1, 1, 0)), vec3((1, 1, 0)), (), {Grading.PFIRRMANN: grade})
    body = Vertebra(Level.L1, 0.9, vec3((2, 2, 0)), vec3((1, 1, 0)))
    info = dataclasses.replace(InputInfo.from_scan(scan), **input_changes)  # type: ignore[arg-type]
    return AnalysisResult(input=info, vertebrae=(body,), discs=(disc,))


@pytest.mark.parametrize(("p", "mark"), [(0.49, "T12-L1  P3 (0.49)"), (0.5968, "T12-L1  P3"), (0.9, "T12-L1  P3")])
def test_the_overlay_gives_an_unsure_grade_its_probability(p: float, mark: str) -> None:
    """A near tie (P3 at 0.49 beside P4 at 0.46, the user test's SPIDER slice) was drawn as a firm P3; it carries
    its probability now, below the bar the report highlights (0.6, as the report rounds)."""
    from openspine.render.overlay import PFIRRMANN_COLOURS, disc_labels

    assert disc_labels(_one_disc_result(p)) == [(mark, PFIRRMANN_COLOURS[3])]


def test_disc_text_is_legible_on_a_dark_image_and_the_dot_keeps_the_scale_colour() -> None:
    from openspine.render.overlay import PFIRRMANN_COLOURS, legible

    def lum(c: tuple[int, int, int]) -> float:
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    dark_green = PFIRRMANN_COLOURS[1]  # Pfirrmann 1: the dimmest text in the user test's healthy volumes
    assert lum(dark_green) < 150 <= lum(legible(dark_green))
    g = legible(dark_green)
    assert g[1] > g[0] and g[1] > g[2]  # still green
    assert all(legible(c) == c for c in (PFIRRMANN_COLOURS[3], (255, 255, 255)))  # light colours unchanged


def test_the_report_names_a_pictures_frame_and_reads_no_orientation_of_a_refused_axial_picture() -> None:
    from openspine.render.report import render_report

    header = "centroid (mm from the picture's top-left corner, axes RAS+)"
    assert header in render_report(_one_disc_result(0.9, format="image"), None)
    assert "centroid (mm, RAS+)" in render_report(_one_disc_result(0.9, format="nifti"), None)
    # the levels asked, as given: the paragraph had named the default under --levels (user test)
    default = _one_disc_result(0.9)
    levels = ["T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    default = dataclasses.replace(default, parameters={**default.parameters, "grade_levels": levels})
    assert "Discs outside the levels asked for (default T12-L1 … L5-S1;" in render_report(default, None)
    asked = _one_disc_result(0.9)
    asked = dataclasses.replace(asked, parameters={**asked.parameters, "grade_levels": ["L4-L5", "L5-S1"]})
    assert "Discs outside the levels asked for (here L4-L5, L5-S1;" in render_report(asked, None)
    # read mirrored (front on the right), its positions count from the top-right corner (user test: "top-left")
    mirrored = _one_disc_result(0.9, format="image")
    mirrored = dataclasses.replace(
        mirrored, input=dataclasses.replace(mirrored.input, way_round={"value": "x", "read_mirrored": True})
    )
    assert "centroid (mm from the picture's top-right corner, axes RAS+)" in render_report(mirrored, None)
    refused = dataclasses.replace(
        _one_disc_result(0.9, plane={"value": "axial", "source": "image"}), out_of_scope="the image looks axial"
    )
    html = render_report(refused, None)
    assert "not read (the image looks axial, not sagittal)" in html and "<dd>IPR</dd>" not in html


def test_an_empty_disc_table_says_why_no_disc_was_graded() -> None:
    from openspine.render.report import render_report
    from openspine.results import InputInfo
    from openspine.scan import Scan

    scan = Scan(np.ones((8, 8, 1)), np.diag([0.5, 0.5, 1.0, 1.0]))
    disc = Disc(None, vec3((1, 1, 0)), vec3((1, 1, 0)), (), {})
    why = "no disc level is known (the image shows the cervical spine)"
    result = AnalysisResult(input=InputInfo.from_scan(scan), discs=(disc,), steps_not_run={"grading": why})
    assert f"No disc was graded: {why}" in render_report(result, None)


def test_an_empty_disc_table_under_levels_that_name_no_disc_found_says_so() -> None:
    from openspine.render.report import render_report
    from openspine.results import InputInfo
    from openspine.scan import Scan

    scan = Scan(np.ones((8, 8, 1)), np.diag([0.5, 0.5, 1.0, 1.0]))
    disc = Disc(DiscLevel.L4_L5, vec3((1, 1, 0)), vec3((1, 1, 0)), (), {})
    result = AnalysisResult(input=InputInfo.from_scan(scan), discs=(disc,), parameters={"grade_levels": ["T1-T2"]})
    assert "No disc was graded: no disc found is among the levels asked for (T1-T2)" in render_report(result, None)


def test_a_disc_not_graded_for_what_was_seen_reads_not_graded_not_n_a() -> None:
    """'n/a' is a grading the model lacks; a disc not graded because the bodies beside it are unsure had read 'n/a'
    too (user test)."""
    from openspine.render.report import render_report
    from openspine.results import Grade, InputInfo
    from openspine.scan import Scan

    scan = Scan(np.ones((8, 8, 1)), np.diag([0.5, 0.5, 1.0, 1.0]))
    unsure = "not graded: the bodies beside it scored below 0.25 (L3 0.06, L4 0.18)"
    grades = {
        "pfirrmann": Grade(None, None, available=False, note=unsure),
        "central_canal_stenosis": Grade(None, None, available=False, note="not available from the built-in grader"),
    }
    disc = Disc(DiscLevel.L3_L4, vec3((1, 1, 0)), vec3((1, 1, 0)), (), grades)
    html = render_report(AnalysisResult(input=InputInfo.from_scan(scan), discs=(disc,)), None)
    assert f"title='{unsure}'>not graded</td>" in html
    assert ">n/a</td>" in html and "'not graded' = not graded for what was seen at the disc" in html
