"""What write_result leaves in the output folder: DICOM SEG/SR skipped (not fatal) for a scan not read from DICOM,
an earlier run's outputs removed from a reused folder, file modes that honour the umask, the overlay marked as
openspine's own picture and drawn without missing-glyph boxes."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openspine import writers
from openspine.analysis import analyze
from openspine.results import AnalysisResult
from openspine.writers import FORMATS, OUTPUTS, atomic_write_bytes, write_result


@pytest.fixture(scope="module")
def nifti_result() -> AnalysisResult:
    """The analysed demo scan (a NIfTI file)."""
    from openspine.data import demo_scan_path

    return analyze(demo_scan_path())


@pytest.fixture
def log_records() -> Iterator[list[logging.LogRecord]]:
    """The package's log records while the test runs (the CLI may have stopped them reaching the root logger)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    pkg = logging.getLogger("openspine")
    before = pkg.level
    pkg.addHandler(handler)
    pkg.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        pkg.removeHandler(handler)
        pkg.setLevel(before)


def test_all_formats_on_a_nifti_scan_write_everything_but_dicom_seg_and_sr(
    nifti_result: AnalysisResult, tmp_path: Path, log_records: list[logging.LogRecord]
) -> None:
    files = write_result(nifti_result, tmp_path / "out", "all")
    dicom_files = {name for f in OUTPUTS if f.needs_dicom for name in f.files}
    assert set(files) == {name for f in OUTPUTS for name in f.files} - dicom_files
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(files)
    warnings = [r.getMessage() for r in log_records if r.levelno == logging.WARNING]
    assert warnings == ["DICOM SEG and DICOM SR not written: made for DICOM input only; this scan was read from nifti"]
    not_run = json.loads(files["result.json"].read_text())["steps_not_run"]
    assert not_run["seg output"].startswith("DICOM SEG is made for DICOM input only")
    assert "sr output" in not_run
    report = files["report.html"].read_text()  # in the report's own section, not among the flags
    assert "<h2>Steps not run (2)</h2>" in report and "<li>seg output: DICOM SEG is made for DICOM input" in report
    # asked for alone, too: result.json is still written
    assert set(write_result(nifti_result, tmp_path / "seg", "seg")) == {"result.json"}
    assert FORMATS[-2:] == ("seg", "sr")


def test_a_reused_folder_keeps_no_output_of_an_earlier_run(
    nifti_result: AnalysisResult, tmp_path: Path, log_records: list[logging.LogRecord]
) -> None:
    out = tmp_path / "out"
    write_result(nifti_result, out, "all")
    (out / "notes.txt").write_text("mine")
    (out / "overlay_copy.png").write_bytes((out / "overlay.png").read_bytes())
    log_records.clear()
    write_result(nifti_result, out, "json")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "overlay_copy.png", "result.json"]
    removed = [r.getMessage() for r in log_records if r.getMessage().startswith("removed ")]
    assert len(removed) == 1 and removed[0].startswith(
        "removed vertebrae.csv, discs.csv, overlay.png, report.html, labels.nii.gz from"
    )


def test_a_rerun_stopped_halfway_leaves_no_earlier_result_json(
    nifti_result: AnalysisResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the folder would look finished (result.json is the marker) while holding two scans' files
    out = tmp_path / "out"
    write_result(nifti_result, out)
    real = writers.atomic_write_bytes

    def disk_full_at_the_overlay(path: Path, data: bytes) -> None:
        if path.name == "overlay.png":
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(writers, "atomic_write_bytes", disk_full_at_the_overlay)
    with pytest.raises(writers.OutputError, match="No space left"):
        write_result(nifti_result, out)
    assert not (out / "result.json").exists()


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_files_get_the_mode_the_umask_gives(tmp_path: Path, umask: int) -> None:
    before = os.umask(umask)
    writers._new_file_mode.cache_clear()  # read once per process: read this test's umask
    try:
        atomic_write_bytes(tmp_path / "result.json", b"{}")
    finally:
        os.umask(before)
        writers._new_file_mode.cache_clear()
    assert (tmp_path / "result.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_the_overlay_is_marked_as_openspine_output(nifti_result: AnalysisResult, tmp_path: Path) -> None:
    from openspine import __version__

    files = write_result(nifti_result, tmp_path / "out", "png")
    with Image.open(files["overlay.png"]) as img:
        assert img.text["openspine-output"] == "overlay"
        assert img.text["Software"] == f"openspine {__version__}"


def test_a_non_latin_file_name_is_drawn_without_boxes(nifti_result: AnalysisResult) -> None:
    from openspine.render.overlay import printable

    assert printable("患者_腰椎.nii.gz") == "??_??.nii.gz"
    assert printable("Müller 384×384.nii") == "Muller 384x384.nii"

    def title(name: str) -> np.ndarray:
        result = dataclasses.replace(nifti_result, input=dataclasses.replace(nifti_result.input, path=f"/in/{name}"))
        return np.asarray(result.overlay())[:40]

    # the name the font cannot draw comes out as the '?' spelling, not as missing-glyph boxes
    np.testing.assert_array_equal(title("患者_腰椎.nii.gz"), title("??_??.nii.gz"))
