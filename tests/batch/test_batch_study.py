"""Batch reads a study, not one series: a DICOM study's T1 series and a BIDS T1w file beside its T2w join the case
of the main (T2) series; the series a case does not read stay in skipped.csv with their role; nothing vanishes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dicom_fixtures import T1T2Study, make_affine, new_ids, write_series
from openspine.batch.case import process_case
from openspine.batch.discover import Case, discover_cases
from openspine.cli import main
from openspine.config import AnalysisConfig

SPIDER_ID = "31"  # a SPIDER patient with a T2 and a T1 slice (val split)


def _cohort(root: Path, study: T1T2Study, shared: Path) -> None:
    """The real T2/T1 DICOM study (plus a STIR series and an axial localiser of that study) and a BIDS dataset:
    sub-01 has a T2w and a T1w of one patient (SPIDER), sub-02 a T1w only; sidecars beside them."""
    shutil.copytree(study.folder, root / "dicom" / "study1")
    arr = study.t2_array
    write_series(root / "dicom" / "study1" / "series4_stir", arr[100:164, 100:164, 20:28].copy(), study.affine,
                 ids=new_ids(study.t2.study_uid), series_number=4, description="STIR SAG")  # fmt: skip
    axial = make_affine(np.eye(3)[:, [1, 0, 2]], (1.0, 1.0, 10.0), (0.0, 0.0, 0.0))
    write_series(root / "dicom" / "study1" / "series1_loc", arr[:48, :48, :3].copy(), axial,
                 ids=new_ids(study.t2.study_uid), series_number=1, description="localizer")  # fmt: skip
    anat = root / "bids" / "sub-01" / "anat"
    anat.mkdir(parents=True)
    shutil.copy(shared / "spider" / SPIDER_ID / "image.nii.gz", anat / "sub-01_T2w.nii.gz")
    shutil.copy(shared / "spider" / SPIDER_ID / "t1.nii.gz", anat / "sub-01_T1w.nii.gz")
    (anat / "sub-01_T2w.json").write_text("{}")
    lone = root / "bids" / "sub-02" / "anat"
    lone.mkdir(parents=True)
    shutil.copy(shared / "spider" / SPIDER_ID / "t1.nii.gz", lone / "sub-02_T1w.nii.gz")


def _every_file(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _accounted(root: Path, cases: list[Case], skipped: list[Any]) -> set[str]:
    """Every file a case reads or skipped.csv lists (a skipped folder stands for the files under it)."""
    from openspine.io.dicom import discover_series

    out: set[str] = set()
    for c in cases:
        if c.kind == "dicom":
            uids = {c.series, c.t1_series}
            out |= {str(f.relative_to(root)) for s in discover_series(Path(c.path)) if s.series_uid in uids
                    for f in s.files}  # fmt: skip
        else:
            out |= {str(Path(p).relative_to(root)) for p in (c.path, c.t1) if p}
    for s in skipped:
        folder = root / s.path
        out |= (
            {str(p.relative_to(root)) for p in folder.rglob("*") if p.is_file()}
            if s.path.endswith(os.sep)
            else {s.path}
        )
    return out


def test_discovery_makes_one_case_per_study_with_its_t1(
    tmp_path: Path, t1_t2_study: T1T2Study, shared_data: Path
) -> None:
    root = tmp_path / "in"
    _cohort(root, t1_t2_study, shared_data)
    cases, skipped = discover_cases(root)
    by_id = {c.case_id: c for c in cases}
    assert set(by_id) == {"dicom__study1", "sub-01_T2w", "sub-02_T1w"}
    study = by_id["dicom__study1"]
    assert study.series == t1_t2_study.t2.series_uid and study.t1_series == t1_t2_study.t1.series_uid
    assert study.t1 is None  # the analysis finds the study's T1 series itself
    pair = by_id["sub-01_T2w"]
    assert pair.path == str(root / "bids" / "sub-01" / "anat" / "sub-01_T2w.nii.gz")
    assert pair.t1 == str(root / "bids" / "sub-01" / "anat" / "sub-01_T1w.nii.gz") and pair.kind == "bids"
    assert by_id["sub-02_T1w"].t1 is None and not by_id["sub-02_T1w"].has_t1  # unpaired: its own case
    assert sum(c.has_t1 for c in cases) == 2
    reasons = {s.path: s.reason for s in skipped}
    assert "STIR (recorded, not read)" in reasons[str(Path("dicom/study1/series4_stir")) + os.sep]
    assert "not used: not sagittal (axial)" in reasons[str(Path("dicom/study1/series1_loc")) + os.sep]
    assert not any("series2_t1" in p for p in reasons)  # the T1 series is part of the case, not skipped
    assert reasons[str(Path("bids/sub-01/anat/sub-01_T2w.json"))] == "the sidecar of sub-01_T2w.nii.gz, read with it"
    assert _accounted(root, cases, skipped) == _every_file(root)  # nothing vanishes


def test_a_t1w_beside_several_t2w_or_with_other_entities_is_not_paired(tmp_path: Path, shared_data: Path) -> None:
    anat = tmp_path / "sub-03" / "ses-1" / "anat"
    anat.mkdir(parents=True)
    src = shared_data / "spider" / SPIDER_ID
    for name, file in (("sub-03_ses-1_acq-sag_T2w.nii.gz", "image.nii.gz"), ("sub-03_ses-1_acq-sag_T1w.nii.gz",
                       "t1.nii.gz"), ("sub-03_ses-1_T1w.nii.gz", "t1.nii.gz")):  # fmt: skip
        shutil.copy(src / file, anat / name)
    cases, _ = discover_cases(tmp_path)
    by_id = {c.case_id: c for c in cases}
    assert set(by_id) == {"sub-03_ses-1_acq-sag_T2w", "sub-03_ses-1_T1w"}
    assert by_id["sub-03_ses-1_acq-sag_T2w"].t1 == str(anat / "sub-03_ses-1_acq-sag_T1w.nii.gz")
    assert by_id["sub-03_ses-1_T1w"].t1 is None


def test_a_bids_datasets_derivatives_and_sourcedata_are_no_cases(tmp_path: Path, shared_data: Path) -> None:
    """Their images (a copy of a raw scan, a processed one) had become cases beside the raw scans: a subject counted
    three times in the cohort tables, and the raw scan's case id suffixed to tell the copies apart (user test)."""
    root = tmp_path / "ds"
    src = shared_data / "spider" / SPIDER_ID / "image.nii.gz"
    (root / "sub-01" / "anat").mkdir(parents=True)
    shutil.copy(src, root / "sub-01" / "anat" / "sub-01_T2w.nii.gz")
    for folder in ("derivatives/preproc/sub-01/anat", "sourcedata/sub-01/anat", "code"):
        (root / folder).mkdir(parents=True)
        shutil.copy(src, root / folder / "sub-01_T2w.nii.gz")
    (root / "derivatives" / "preproc" / "dataset_description.json").write_text("{}")
    without_description, _ = discover_cases(root)
    assert len(without_description) == 4  # no dataset_description.json: no BIDS dataset, every folder walked
    (root / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.9.0"}')
    cases, skipped = discover_cases(root)
    assert [c.case_id for c in cases] == ["sub-01_T2w"]
    reasons = {s.path: s.reason for s in skipped}
    assert reasons["derivatives" + os.sep].startswith("BIDS derivatives (processed data, not raw scans)")
    assert reasons["sourcedata" + os.sep].startswith("BIDS sourcedata") and "code" + os.sep in reasons
    assert _accounted(root, cases, skipped) == _every_file(root)  # nothing vanishes
    # a derivative dataset given as the input root is analysed
    assert [c.case_id for c in discover_cases(root / "derivatives" / "preproc")[0]] == ["sub-01_T2w"]


def test_dry_run_says_which_cases_read_a_t1(
    tmp_path: Path, t1_t2_study: T1T2Study, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "in"
    _cohort(root, t1_t2_study, shared_data)
    assert main(["-q", "batch", str(root), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 case(s) found" in out and "(2 with a T1 series read beside the main one)" in out
    study = next(line for line in out.splitlines() if line.strip().startswith("dicom__study1"))
    assert f"series {t1_t2_study.t2.series_uid} + T1 series {t1_t2_study.t1.series_uid}" in study
    pair = next(line for line in out.splitlines() if line.strip().startswith("sub-01_T2w"))
    assert "+ T1 " in pair and pair.endswith("sub-01_T1w.nii.gz")
    assert "3 file(s) skipped" in out  # the STIR and localiser folders and the sidecar
    assert "STIR (recorded, not read)" in out


def test_process_case_passes_a_paired_t1_file_and_the_study_series(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, Any, dict[str, Any]]] = []

    def fake_analyze(path: str, config: AnalysisConfig, **kwargs: Any) -> Any:
        calls.append((path, config.series, {k: v for k, v in kwargs.items() if k != "progress"}))
        raise RuntimeError("stop here")  # the call is what this test looks at

    import openspine.analysis

    monkeypatch.setattr(openspine.analysis, "analyze", fake_analyze)
    config = AnalysisConfig()
    process_case(Case("pair", "/x/sub-01_T2w.nii.gz", "bids", t1="/x/sub-01_T1w.nii.gz"), str(tmp_path), ("json",),
                 config)  # fmt: skip
    process_case(Case("study", "/x/study", "dicom", series="1.2.3", t1_series="1.2.4"), str(tmp_path), ("json",),
                 config)  # fmt: skip
    process_case(Case("single", "/x/a.nii.gz", "nifti"), str(tmp_path), ("json",), config)
    assert calls == [
        ("/x/sub-01_T2w.nii.gz", None, {"t1": "/x/sub-01_T1w.nii.gz"}),
        ("/x/study", "1.2.3", {}),  # load_study in the analysis finds the study's T1 series
        ("/x/a.nii.gz", None, {}),
    ]


def test_a_batch_run_reads_the_t1_beside_the_t2(
    tmp_path: Path, t1_t2_study: T1T2Study, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, out = tmp_path / "in", tmp_path / "out"
    _cohort(root, t1_t2_study, shared_data)
    code = main(["-q", "batch", str(root), "--out", str(out), "--formats", "json"])
    line = capsys.readouterr().out
    assert code in (0, 3), line
    assert "0 failed" in line and "3 file(s) not analysed (skipped.csv)" in line
    for case in ("dicom__study1", "sub-01_T2w"):
        doc = json.loads((out / "cases" / case / "result.json").read_text())
        assert [o["role"] for o in doc.get("other_series", [])] == ["T1"], (case, doc.get("flags"))
    doc = json.loads((out / "cases" / "sub-02_T1w" / "result.json").read_text())
    assert not doc.get("other_series")
    # why the study's series was read: discovery's reason, not "as asked" (the case passes the series by its UID)
    doc = json.loads((out / "cases" / "dicom__study1" / "result.json").read_text())
    why = doc["input"]["series"]["chosen_because"]
    assert why.startswith("the sagittal series with the most slices among those whose header says T2"), why
    assert why.endswith("(chosen by batch discovery)")
    # the cohort tables can be joined on BIDS subjects (a BIDS file's case id is its name alone)
    import pandas as pd

    pytest.importorskip("pyarrow")
    for table in (pd.read_csv(out / "discs.csv", dtype=str), pd.read_parquet(out / "discs.parquet")):
        by_case = table.groupby("case")[["subject", "input"]].first()
        assert by_case.loc["sub-01_T2w", "subject"] == "01" and pd.isna(by_case.loc["dicom__study1", "subject"])
        assert by_case.loc["dicom__study1", "input"].endswith("study1")


def test_the_log_gives_discoverys_reason_for_a_studys_series_not_as_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the case passes its series to the analysis by UID: every DICOM case's log line had said "… as asked"
    import logging

    import numpy as np

    from dicom_fixtures import make_affine, write_series
    from openspine.batch.runner import run_batch

    volume = np.random.default_rng(0).integers(0, 1000, (32, 32, 5)).astype(np.int16)
    sagittal = make_affine([[0, 0, 1], [0, -1, 0], [-1, 0, 0]], (1.0, 1.0, 3.5), (0, 0, 0))
    write_series(tmp_path / "in" / "study" / "t2", volume, sagittal)
    with caplog.at_level(logging.INFO, logger="openspine"):
        run_batch(tmp_path / "in", tmp_path / "out", formats="json")
    said = [r.getMessage() for r in caplog.records if "series [0]" in r.getMessage()]
    assert said and all("(chosen by batch discovery)" in m and "as asked" not in m for m in said), said
    doc = json.loads((tmp_path / "out" / "cases" / "study__t2" / "result.json").read_text())
    assert doc["input"]["series"]["chosen_because"].endswith("(chosen by batch discovery)")


def test_skipped_csv_lists_the_series_a_case_set_aside_not_the_one_it_read(tmp_path: Path, shared_data: Path) -> None:
    """A whole-spine study whose stations lie in frames of reference of their own: discovery chooses the cervical
    station, the analysis reads the lumbar one instead (``series_switched``); skipped.csv, written before the
    analysis, had listed the lumbar station's files as a series the case does not read (review): it now lists the
    cervical station's, read first and set aside, and the run's count of files not analysed says so."""
    import pandas as pd

    from dicom_fixtures import whole_spine_study
    from openspine.batch.runner import run_batch

    whole_spine_study(tmp_path / "in" / "study", one_frame=False)
    summary = run_batch(tmp_path / "in", tmp_path / "out", formats="json")
    doc = json.loads((tmp_path / "out" / "cases" / "study" / "result.json").read_text())
    assert doc["flags"][0].startswith("series_switched: ") and doc["input"]["series"]["series_number"] == 2
    skipped = pd.read_csv(tmp_path / "out" / "skipped.csv", dtype=str)
    assert not skipped["path"].str.contains("L").any(), skipped  # the lumbar station's files (prefix "L"): read
    assert len(skipped) == 52 == summary.files_skipped  # the cervical station's 52 slices
    said = "read first and set aside: the series chosen first, T2_TSE_SAG_1 (--series 1), shows no lumbar vertebra"
    assert all(r.startswith("another series of case study (") and said in r for r in skipped["reason"])


def test_bids_runs_share_the_session_s_t1w_and_a_name_of_the_suffix_alone_is_a_case(tmp_path: Path) -> None:
    """Two T2w runs and one T1w were three cases, the T1w read beside neither; 'T2w.nii.gz' inside sub-19/anat/ was
    skipped as 'not an anatomical image' (user test of BIDS data)."""
    from openspine.batch.discover import discover_cases

    anat = tmp_path / "sub-02" / "ses-01" / "anat"
    anat.mkdir(parents=True)
    for name in ("sub-02_ses-01_run-1_T2w", "sub-02_ses-01_run-2_T2w", "sub-02_ses-01_T1w"):
        (anat / f"{name}.nii.gz").write_bytes(b"x")  # discovery reads names (an empty file is skipped)
    plain = tmp_path / "sub-19" / "anat"
    plain.mkdir(parents=True)
    (plain / "T2w.nii.gz").write_bytes(b"x")
    cases, skipped = discover_cases(tmp_path)
    runs = {Path(c.path).name: Path(c.t1).name if c.t1 else None for c in cases if "sub-02" in c.path}
    assert runs == {"sub-02_ses-01_run-1_T2w.nii.gz": "sub-02_ses-01_T1w.nii.gz",
                    "sub-02_ses-01_run-2_T2w.nii.gz": "sub-02_ses-01_T1w.nii.gz"}  # fmt: skip
    # the cohort tables tell the two runs apart by their own column, not only by case id or file (user test)
    from openspine.io.sidecar import bids_entities

    assert bids_entities(str(anat / "sub-02_ses-01_acq-sag_run-2_T2w.nii.gz")) == {
        "subject": "02", "session": "01", "acquisition": "sag", "run": "2"
    }  # fmt: skip
    assert bids_entities(str(plain / "T2w.nii.gz")) == {"subject": "19"}  # folders name no run
    assert any(c.path == str(plain / "T2w.nii.gz") for c in cases)
    assert not any("T2w.nii.gz" in s.path and "anatomical" in s.reason for s in skipped)


def test_names_that_are_no_entities_are_not_paired_across_patients_and_suffix_only_names_pair(tmp_path: Path) -> None:
    """'alice_T2w' beside 'bob_T1w' had been paired (their non-entity parts dropped); 'T2w.nii.gz' beside
    'T1w.nii.gz' in sub-19/ses-2/anat/ were two cases with no subject (regression sweep)."""
    from openspine.batch.discover import discover_cases
    from openspine.io.sidecar import bids_entities

    mixed = tmp_path / "sub-02" / "anat"
    plain = tmp_path / "sub-19" / "ses-2" / "anat"
    for folder, names in ((mixed, ("alice_T2w", "bob_T1w")), (plain, ("T2w", "T1w"))):
        folder.mkdir(parents=True)
        for name in names:
            (folder / f"{name}.nii.gz").write_bytes(b"x")
    cases, _ = discover_cases(tmp_path)
    by_name = {Path(c.path).name: c for c in cases if "sub-02" in c.path}
    assert set(by_name) == {"alice_T2w.nii.gz", "bob_T1w.nii.gz"} and by_name["alice_T2w.nii.gz"].t1 is None
    (pair,) = [c for c in cases if "sub-19" in c.path]
    assert Path(pair.path).name == "T2w.nii.gz" and pair.t1 == str(plain / "T1w.nii.gz")
    assert "sub-19" in pair.case_id and bids_entities(pair.path) == {"subject": "19", "session": "2"}


def test_analyze_names_the_t1w_that_batch_would_read_beside_a_t2w(tmp_path: Path) -> None:
    # analyze read the T2w alone without a word of the session's T1w beside it (user test of BIDS data)
    from openspine.batch.discover import bids_t1_beside

    anat = tmp_path / "sub-02" / "ses-01" / "anat"
    anat.mkdir(parents=True)
    for name in ("sub-02_ses-01_run-1_T2w", "sub-02_ses-01_T1w", "sub-03_ses-01_T1w", "alice_T2w", "bob_T1w"):
        (anat / f"{name}.nii.gz").write_bytes(b"x")
    assert bids_t1_beside(anat / "sub-02_ses-01_run-1_T2w.nii.gz") == anat / "sub-02_ses-01_T1w.nii.gz"
    assert bids_t1_beside(anat / "sub-02_ses-01_T1w.nii.gz") is None  # a T1w itself
    assert bids_t1_beside(anat / "alice_T2w.nii.gz") is None  # another name: not paired
    assert bids_t1_beside(tmp_path / "missing" / "sub-02_T2w.nii.gz") is None
    flat = tmp_path / "flat"  # no BIDS anat folder: batch pairs nothing there, so nothing is said
    flat.mkdir()
    for name in ("sub-02_T2w", "sub-02_T1w"):
        (flat / f"{name}.nii.gz").write_bytes(b"x")
    assert bids_t1_beside(flat / "sub-02_T2w.nii.gz") is None
