"""DICOM SEG and SR are extras: a source header without SliceThickness still gives a valid SEG, and a SEG or SR that
cannot be built (an enhanced multi-frame source, a header highdicom refuses) is left out with one warning and a
``steps_not_run`` entry while every other output is written. Synthetic series, hand-made records: no model runs."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest

import openspine
from dicom_fixtures import make_affine, write_enhanced, write_series
from openspine.levels import Level
from openspine.results import AnalysisResult, InputInfo, SliceOutline, Vertebra, vec3
from openspine.writers import OUTPUTS, write_result

pytest.importorskip("highdicom")

# a sagittal stack (i: anterior → posterior rows, j: superior → inferior columns, k: left → right), 3.3 mm apart
AFFINE = make_affine([[0, 0, 1], [0, -1, 0], [-1, 0, 0]], [0.9, 0.9, 3.3], [10.0, 40.0, 80.0])
ALL_FILES = {name for f in OUTPUTS for name in f.files}
DICOM_FILES = {name for f in OUTPUTS if f.needs_dicom for name in f.files}


def _array() -> np.ndarray:
    rng = np.random.default_rng(3)
    arr = rng.integers(20, 60, size=(48, 48, 5)).astype(np.uint16)
    arr[12:30, 14:34, :] += 400  # a bright block: the "vertebral body"
    return arr


def _result(folder: Path) -> AnalysisResult:
    """One labelled body outlined on slices 1 and 2 of the series read from ``folder``."""
    view = openspine.load_scan(folder).to_sagittal()

    def outline(k: int) -> SliceOutline:
        corners = [(12, 14, k), (12, 34, k), (30, 34, k), (30, 14, k)]
        vox = tuple(vec3(view.to_input_voxel(np.array(p, dtype=float))) for p in corners)
        mm = tuple(vec3(view.to_world(np.array(p, dtype=float))) for p in corners)
        return SliceOutline(view.input_slice_index(k), vox, mm)  # type: ignore[arg-type]

    centre = np.array([21.0, 24.0, 2.0])
    body = Vertebra(
        Level.L3, 0.9, vec3(view.to_input_voxel(centre)), vec3(view.to_world(centre)), (outline(1), outline(2)), 2
    )
    return AnalysisResult(input=InputInfo.from_scan(view.input), vertebrae=(body,), discs=(), view=view)


class _Warnings(logging.Handler):
    """The WARNING messages logged under the package while a test runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    handler = _Warnings()
    pkg = logging.getLogger("openspine")
    pkg.addHandler(handler)
    try:
        yield handler.messages
    finally:
        pkg.removeHandler(handler)


def test_a_series_without_slice_thickness_gets_a_seg_drawn_at_its_slice_spacing(tmp_path: Path) -> None:
    """SliceThickness is Type 2 and often absent: highdicom used to raise AttributeError and nothing was written."""
    import highdicom as hd

    _, files = write_series(tmp_path / "series", _array(), AFFINE)
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.SliceThickness
        ds.save_as(f)
    written = write_result(_result(tmp_path / "series"), tmp_path / "out", "all")
    assert set(written) == ALL_FILES
    seg = hd.seg.segread(written["vertebrae_seg.dcm"])
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SliceThickness) == pytest.approx(3.3)
    assert [d.segment_label for d in seg.SegmentSequence] == ["L3 vertebral body"]
    not_run = json.loads(written["result.json"].read_text()).get("steps_not_run") or {}
    assert "seg output" not in not_run and "sr output" not in not_run


def test_an_enhanced_source_writes_every_output_but_seg_and_sr(tmp_path: Path, warnings: list[str]) -> None:
    """An Enhanced MR file with --formats all used to exit 1 with no output at all."""
    write_enhanced(tmp_path / "enh" / "enh.dcm", _array(), AFFINE)
    written = write_result(_result(tmp_path / "enh"), tmp_path / "out", "all")
    assert set(written) == ALL_FILES - DICOM_FILES
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(written)
    not_run = json.loads(written["result.json"].read_text())["steps_not_run"]
    assert "enhanced (multi-frame)" in not_run["seg output"] and "enhanced (multi-frame)" in not_run["sr output"]
    assert warnings == [
        "DICOM SEG and DICOM SR not written: the source is an enhanced (multi-frame) DICOM series, which SEG/SR do "
        "not support yet"
    ]


def test_a_seg_highdicom_refuses_costs_no_other_output(
    tmp_path: Path, warnings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from openspine.render import dicom_objects

    def refuse(*args: object) -> bytes:
        raise AttributeError("'FileDataset' object has no attribute 'SomethingElse'")

    monkeypatch.setattr(dicom_objects, "_segmentation", refuse)
    write_series(tmp_path / "series", _array(), AFFINE)
    written = write_result(_result(tmp_path / "series"), tmp_path / "out", "all")
    assert set(written) == ALL_FILES - {"vertebrae_seg.dcm"}  # the SR is still written
    not_run = json.loads(written["result.json"].read_text())["steps_not_run"]
    assert "AttributeError" in not_run["seg output"] and "SomethingElse" in not_run["seg output"]
    assert "sr output" not in not_run
    assert len(warnings) == 1 and warnings[0].startswith("DICOM SEG not written: highdicom could not build it")


def test_a_result_with_nothing_to_segment_still_writes_its_result(tmp_path: Path) -> None:
    write_series(tmp_path / "series", _array(), AFFINE)
    empty = dataclasses.replace(_result(tmp_path / "series"), vertebrae=())
    written = write_result(empty, tmp_path / "out", "seg")
    assert list(written) == ["result.json"]
    assert "no structure" in json.loads(written["result.json"].read_text())["steps_not_run"]["seg output"]


def test_the_seg_written_beside_the_series_is_not_read_as_a_series(tmp_path: Path) -> None:
    """openspine's own SEG in the study folder (more frames than the series) used to become the main series and
    the study could no longer be read (duplicate slice positions)."""
    from openspine.io import list_series, load_study

    ids, _ = write_series(tmp_path / "study", _array(), AFFINE, description="SAG SPINE")
    write_result(_result(tmp_path / "study"), tmp_path / "study" / "openspine", "all")
    study = load_study(tmp_path / "study")
    assert study.main.source.series_uid == ids.series_uid
    np.testing.assert_array_equal(study.main.array, _array())
    listed = {s["modality"]: s for s in list_series(tmp_path / "study")}
    assert set(listed) == {"MR", "SEG"}  # the SR holds no pixel data: not listed at all
    assert listed["SEG"]["role_text"] == "not used: a DICOM Segmentation, not an image"
    assert listed["SEG"]["not_an_image"] == "a DICOM Segmentation, not an image" and not listed["SEG"]["chosen"]


def test_batch_lists_its_own_seg_as_skipped_and_makes_no_case_of_it(tmp_path: Path) -> None:
    """Under a batch root, openspine's SEG beside the series is skipped as no image; a SEG alone (copied to another
    root) is no case at all (before: a case that failed, 'no sagittal image series')."""
    import shutil

    from openspine.batch.discover import discover_cases

    write_series(tmp_path / "root" / "study", _array(), AFFINE, description="SAG SPINE")
    write_result(_result(tmp_path / "root" / "study"), tmp_path / "root" / "study" / "openspine", "all")
    cases, skipped = discover_cases(tmp_path / "root")
    assert len(cases) == 1 and cases[0].problem is None
    why = {Path(s.path).name: s.reason for s in skipped}
    assert "Segmentation, not an image" in why["vertebrae_seg.dcm"]
    (tmp_path / "alone").mkdir()
    shutil.copy(tmp_path / "root" / "study" / "openspine" / "vertebrae_seg.dcm", tmp_path / "alone" / "seg.dcm")
    cases, skipped = discover_cases(tmp_path / "alone")
    assert cases == [] and [s.reason for s in skipped] == ["a DICOM Segmentation, not an image"]
