"""Batch mode accounts for everything: files that are no case go to skipped.csv (and the dry-run listing), cases
whose result is out of scope keep their outputs and are listed in failures.csv with stage "scope", and the cohort
tables come from result.json whatever --formats says."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from openspine.batch.discover import discover_cases
from openspine.cli import main
from openspine.results import disc_rows_from_dict, vertebra_rows_from_dict

SPIDER_IDS = ("21", "31")  # real lumbar slices (val split)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _cohort(root: Path, shared: Path) -> None:
    """Two real scans, one scan with no spine in it, a truncated DICOM file, a hidden file and a non-image."""
    from dicom_fixtures import real_crop, write_series

    for pid in SPIDER_IDS:
        dst = root / "nifti" / f"patient{pid}.nii.gz"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared / "spider" / pid / "image.nii.gz", dst)
    # noise on a sagittal grid: readable, but no vertebral body in it (out of scope)
    noise = np.random.default_rng(0).normal(100.0, 20.0, (3, 96, 96)).astype(np.float32)
    nib.save(nib.Nifti1Image(noise, np.diag([3.0, 0.8, 0.8, 1.0])), str(root / "nifti" / "noise.nii.gz"))
    # the first 400 bytes of a real DICOM slice (cut inside its header)
    arr, aff = real_crop(shape=(32, 32, 2))
    _, files = write_series(root / "tmp-series", arr, aff)
    (root / "dicom" / "cut").mkdir(parents=True)
    (root / "dicom" / "cut" / "IM0001.dcm").write_bytes(files[0].read_bytes()[:400])
    shutil.rmtree(root / "tmp-series")
    (root / ".DS_Store").write_bytes(b"\0\1\2")
    (root / "nifti" / "notes.bin").write_bytes(b"not an image " * 20)
    (root / "nifti" / "scan.nrrd").write_bytes(b"NRRD0004\n")  # 3D Slicer's format: skipped with how to convert


EXPECTED_SKIPS = {
    str(Path("dicom/cut/IM0001.dcm")): "truncated",
    ".DS_Store": "hidden",
    str(Path("nifti/notes.bin")): "not a DICOM, NIfTI or known file type",
    str(Path("nifti/scan.nrrd")): "not a DICOM, NIfTI or known file type; save it as NIfTI (.nii.gz): in 3D Slicer",
}


def test_nothing_vanishes_and_json_only_gives_the_same_tables(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "in"
    _cohort(root, shared_data)

    # the dry run lists every file that is no case, with the reason
    assert main(["-q", "batch", str(root), "--out", str(tmp_path / "dry"), "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert "3 case(s) found" in listing and "4 file(s) skipped" in listing
    for path, reason in EXPECTED_SKIPS.items():
        assert any(path in line and reason in line for line in listing.splitlines()), (path, listing)

    # a run with the default formats and one with result.json only; the noise scan is out of scope: exit 3
    out_all, out_json = tmp_path / "all", tmp_path / "json"
    assert main(["-q", "batch", str(root), "--out", str(out_all)]) == 3
    line = capsys.readouterr().out
    assert "2 succeeded, 0 skipped (finished earlier), 0 failed, 1 out of scope" in line
    assert "4 file(s) not analysed (skipped.csv)" in line
    assert main(["-q", "batch", str(root), "--out", str(out_json), "--formats", "json"]) == 3
    capsys.readouterr()

    for out in (out_all, out_json):
        skipped = {r["path"]: r["reason"] for r in _read_csv(out / "skipped.csv")}
        assert set(skipped) == set(EXPECTED_SKIPS)
        for path, reason in EXPECTED_SKIPS.items():
            assert reason in skipped[path]
        failures = _read_csv(out / "failures.csv")
        assert [(f["case"], f["stage"], f["error_type"]) for f in failures] == [("nifti__noise", "scope", "OutOfScope")]
        assert "no vertebral body" in failures[0]["message"]
        doc = json.loads((out / "cases" / "nifti__noise" / "result.json").read_text())
        assert doc["out_of_scope"]  # the out-of-scope case keeps its outputs
    assert not (out_json / "cases" / "nifti__patient21" / "discs.csv").exists()

    # the cohort tables do not depend on --formats, and equal the per-case CSV files (one row builder)
    for kind in ("vertebrae", "discs"):
        assert (out_json / f"{kind}.csv").read_text() == (out_all / f"{kind}.csv").read_text()
        assert (out_json / f"{kind}.parquet").read_bytes() == (out_all / f"{kind}.parquet").read_bytes()
        table = _read_csv(out_all / f"{kind}.csv")
        assert table and {r["case"] for r in table} >= {f"nifti__patient{pid}" for pid in SPIDER_IDS}
        for pid in SPIDER_IDS:
            case = f"nifti__patient{pid}"
            per_case = _read_csv(out_all / "cases" / case / f"{kind}.csv")
            own = [r for r in table if r["case"] == case]
            assert [{k: v for k, v in r.items() if k not in ("case", "input")} for r in own] == per_case
            # the input beside the case id (a BIDS user joins on its subject and session)
            assert {Path(r["input"]).name for r in own} == {f"patient{pid}.nii.gz"}
    doc = json.loads((out_all / "cases" / "nifti__patient21" / "result.json").read_text())
    assert disc_rows_from_dict(doc) and vertebra_rows_from_dict(doc)

    # a rerun skips the finished cases and still lists the out-of-scope one
    assert main(["-q", "batch", str(root), "--out", str(out_json), "--formats", "json"]) == 3
    # each case counted once (the out-of-scope one had been counted as skipped too, so reruns added up to more)
    line = "0 succeeded, 2 skipped (finished earlier), 0 failed, 1 out of scope (in failures.csv, 1 finished earlier)"
    assert line in capsys.readouterr().out
    assert [f["stage"] for f in _read_csv(out_json / "failures.csv")] == ["scope"]


def test_a_study_of_only_a_truncated_dicom_is_no_case(tmp_path: Path) -> None:
    from dicom_fixtures import real_crop, write_series

    arr, aff = real_crop(shape=(32, 32, 2))
    _, files = write_series(tmp_path / "series", arr, aff)
    root = tmp_path / "in"
    (root / "study").mkdir(parents=True)
    (root / "study" / "IM1").write_bytes(files[0].read_bytes()[:400])
    (root / "study" / "IM2").write_bytes(files[1].read_bytes()[:200])  # cut inside the file meta information
    (root / ".hidden-folder").mkdir()
    (root / ".hidden-folder" / "x.dcm").write_bytes(files[0].read_bytes())
    cases, skipped = discover_cases(root)
    assert cases == []
    reasons = {s.path: s.reason for s in skipped}
    assert reasons[str(Path("study/IM1"))].startswith("truncated or incomplete DICOM file")
    assert reasons[str(Path("study/IM2"))].startswith("DICOM file with an unreadable header")
    assert reasons[".hidden-folder" + "/"] == "hidden"


def test_discovery_leaves_the_warning_of_a_damaged_file_to_the_case_that_reads_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # each had been said twice in a batch: once by discovery, once by the case reading its folder
    from dicom_fixtures import real_crop, write_series

    arr, aff = real_crop(shape=(32, 32, 4))
    root = tmp_path / "in"
    _, files = write_series(root / "study", arr, aff)
    (root / "study" / "cut.dcm").write_bytes(files[0].read_bytes()[:400])
    with caplog.at_level(logging.WARNING, logger="openspine"):
        cases, skipped = discover_cases(root)
    assert len(cases) == 1 and [s.path for s in skipped] == [str(Path("study/cut.dcm"))]
    assert not [r for r in caplog.records if "cut.dcm" in r.getMessage()]


def test_a_study_exported_twice_is_one_case_and_the_copies_are_listed(tmp_path: Path) -> None:
    """The same images twice under one root (a study exported twice) used to merge into one series with every slice
    position doubled, and the case failed: now each image is read once and each copy is listed as skipped."""
    from dicom_fixtures import real_crop, write_series
    from openspine.io import load_scan

    arr, aff = real_crop(shape=(32, 32, 4))
    root = tmp_path / "in"
    _, files = write_series(root / "export1", arr, aff)
    (root / "export2").mkdir()
    for f in files:
        shutil.copy(f, root / "export2" / f.name)
    cases, skipped = discover_cases(root)
    assert len(cases) == 1 and cases[0].problem is None
    copies = {s.path: s.reason for s in skipped if "a copy of" in s.reason}
    assert len(copies) == len(files), skipped
    assert all("(the same SOPInstanceUID)" in why for why in copies.values())
    scan = load_scan(root)  # single-scan mode reads the series once too
    assert scan.shape[2] == 4 and np.array_equal(
        np.asarray(scan.array, dtype=float), np.asarray(load_scan(root / "export1").array, dtype=float)
    )


def test_an_image_sent_again_under_a_new_uid_is_listed_and_the_case_reads_it_once(tmp_path: Path) -> None:
    from dicom_fixtures import real_crop, write_series

    arr, aff = real_crop(shape=(32, 32, 4))
    root = tmp_path / "in"
    _, files = write_series(root / "study", arr, aff)
    ds = pydicom.dcmread(files[2])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(root / "study" / "zz-resent.dcm")
    cases, skipped = discover_cases(root)
    assert len(cases) == 1 and cases[0].problem is None
    (entry,) = [s for s in skipped if "sent again" in s.reason]
    assert entry.path == str(Path("study/zz-resent.dcm")) and str(Path("study") / files[2].name) in entry.reason


def test_of_two_copies_of_an_image_the_one_cut_short_is_left_out(tmp_path: Path) -> None:
    """A copy cut short in its pixels, first by path, had been read and the intact one listed as its copy: the whole
    study failed as truncated (user test). The longer file is read, wherever it lies."""
    from dicom_fixtures import real_crop, write_series
    from openspine.io import load_scan

    arr, aff = real_crop(shape=(32, 32, 4))
    root = tmp_path / "in"
    _, files = write_series(root / "study", arr, aff)
    (root / "a-cut").mkdir()
    (root / "a-cut" / "cut.dcm").write_bytes(files[1].read_bytes()[:-300])  # before study/ by path
    cases, skipped = discover_cases(root)
    assert len(cases) == 1 and cases[0].problem is None
    copies = {s.path: s.reason for s in skipped if "a copy of" in s.reason}
    assert list(copies) == [str(Path("a-cut/cut.dcm"))], skipped
    assert (
        "; this copy is shorter (" in copies[str(Path("a-cut/cut.dcm"))]
        and "truncated" in copies[str(Path("a-cut/cut.dcm"))]
    )
    scan = load_scan(root)
    assert np.array_equal(np.asarray(scan.array), np.asarray(load_scan(root / "study").array))


def test_pictures_are_skipped_without_a_pixel_spacing_and_analysed_with_one(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    root = tmp_path / "pictures"
    root.mkdir()
    shutil.copy(shared_data / "spider" / "21" / "image.png", root / "p21.png")
    stored = np.asarray(Image.open(shared_data / "spider" / "31" / "image.png"))
    Image.fromarray(np.ascontiguousarray(stored[:, ::-1])).save(root / "p31-front-right.png")  # as some viewers show it
    cases, skipped = discover_cases(root)
    assert cases == [] and all("--pixel-spacing" in s.reason for s in skipped) and len(skipped) == 2
    # no case at all: an error, and skipped.csv says why each picture was passed over
    assert main(["-q", "batch", str(root), "--out", str(tmp_path / "skip")]) == 1
    assert "no inputs found under" in capsys.readouterr().err
    assert len(_read_csv(tmp_path / "skip" / "skipped.csv")) == 2
    cases, skipped = discover_cases(root, pictures=True)
    assert sorted(c.case_id for c in cases) == ["p21", "p31-front-right"] and skipped == []
    out = tmp_path / "out"
    assert main(["-q", "batch", str(root), "--out", str(out), "--pixel-spacing", "auto"]) == 0
    assert "2 succeeded" in capsys.readouterr().out
    for case in ("p21", "p31-front-right"):
        doc = json.loads((out / "cases" / case / "result.json").read_text())
        assert doc["parameters"]["pixel_spacing"] == "auto"
        assert any(f.startswith("pixel_spacing_estimated: ") for f in doc["flags"])
        assert {"L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"} <= {d["level"] for d in doc["discs"]}
    assert json.loads((out / "cases" / "p31-front-right" / "result.json").read_text())["input"]["way_round"][
        "read_mirrored"
    ]
    discs = _read_csv(out / "discs.csv")
    assert {r["case"] for r in discs} == {"p21", "p31-front-right"}


def test_scans_refused_as_read_are_out_of_scope_cases_and_errors_stay_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not sagittal (NIfTI and DICOM), no contrast (volume and picture): stage 'scope' in failures.csv with the
    analysis' reason, outputs kept, as a picture that looks axial. A label map is skipped by the rule analyze refuses
    it by; a NIfTI with a zero affine fails at 'read' with its message on one line."""
    from PIL import Image

    from dicom_fixtures import write_series
    from openspine.io.formats import LABEL_MAP

    root = tmp_path / "in"
    root.mkdir()
    slices = np.arange(16 * 16 * 6, dtype=np.int16).reshape(16, 16, 6)
    nib.save(nib.Nifti1Image(slices, np.diag([0.7, 0.7, 4.0, 1.0])), str(root / "axial.nii.gz"))
    write_series(root / "study", slices, np.diag([0.7, 0.7, 4.0, 1.0]), description="t2_tse_tra")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), np.int16), np.diag([3.0, 0.8, 0.8, 1.0])), str(root / "zeros.nii.gz"))
    Image.fromarray(np.zeros((64, 48), np.uint8)).save(root / "black.png")
    nib.save(nib.Nifti1Image(np.ones((8, 8, 3), np.uint8), np.eye(4)), str(root / "sub-01_T2w_seg.nii.gz"))
    img = nib.Nifti1Image(np.arange(64, dtype=np.int16).reshape(4, 4, 4), np.eye(4))
    img.set_qform(None, code=0)
    img.header["sform_code"] = 1
    for row in ("srow_x", "srow_y", "srow_z"):
        img.header[row] = np.zeros(4)
    nib.save(nib.Nifti1Image(img.dataobj, None, header=img.header), str(root / "affine_zero.nii.gz"))

    out = tmp_path / "out"
    assert main(["-q", "batch", str(root), "--out", str(out), "--pixel-spacing", "0.7", "0.7"]) == 1  # the zero affine
    assert "0 succeeded, 0 skipped (finished earlier), 1 failed, 4 out of scope" in capsys.readouterr().out
    failures = {f["case"]: f for f in _read_csv(out / "failures.csv")}
    expected = {
        "axial": "this is an axial acquisition (6 slices, 4.0 mm apart)",
        "study": "this is an axial acquisition (6 slices, 4.0 mm apart)",
        "zeros": "the image has no contrast: every voxel equals 0; this is not a spine image",
        "black": "the image has no contrast: every voxel equals 0; this is not a spine image",
    }
    for case, reason in expected.items():
        row = failures[case]
        assert (row["stage"], row["error_type"]) == ("scope", "OutOfScope") and reason in row["message"], row
        doc = json.loads((out / "cases" / case / "result.json").read_text())
        assert doc["out_of_scope"] == row["message"]
        assert (out / "cases" / case / "overlay.png").exists()
    bad = failures["affine_zero"]
    assert (bad["stage"], bad["error_type"]) == ("read", "GeometryError")
    assert "singular or not finite: [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]" in bad["message"]
    assert "\n" not in bad["message"] and len((out / "failures.csv").read_text().splitlines()) == 1 + len(failures)
    skipped = {r["path"]: r["reason"] for r in _read_csv(out / "skipped.csv")}
    assert skipped["sub-01_T2w_seg.nii.gz"] == LABEL_MAP


def test_a_file_cut_inside_its_sop_class_uid_is_listed_as_truncated_not_as_a_report(tmp_path: Path) -> None:
    """Cut inside the SOPClassUID, the class read '1.2.840.10', no image class, and the file was listed as 'a report
    or similar' (user test): the file meta header's class names the image it was."""
    from dicom_fixtures import real_crop, write_series

    arr, aff = real_crop(shape=(32, 32, 2))
    _, files = write_series(tmp_path / "tmp-series", arr, aff)
    data = files[0].read_bytes()
    sop_class = b"1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage, in the data set after the file meta header
    at = data.index(sop_class, data.index(sop_class) + 1) + len("1.2.840.10")
    root = tmp_path / "in"
    (root / "cut").mkdir(parents=True)
    (root / "cut" / "IM0001.dcm").write_bytes(data[:at])
    _, skipped = discover_cases(root)
    assert [s.path for s in skipped] == [str(Path("cut/IM0001.dcm"))]
    assert skipped[0].reason.startswith("truncated or incomplete DICOM file"), skipped
