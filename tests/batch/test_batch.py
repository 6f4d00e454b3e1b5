"""Batch mode: discovery, failure isolation, resume after a kill, sharding, locking, Dask."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from openspine.batch.discover import discover_cases
from openspine.batch.runner import OutputLock, parse_part, run_batch, select_part
from openspine.cli import main
from openspine.config import AnalysisConfig
from openspine.errors import ConfigError

SPIDER_IDS = ("21", "31", "33", "34")  # real lumbar slices (val split)


def _cohort(root: Path, shared: Path, n_good: int = 3, broken: bool = True) -> dict[str, str]:
    """A cohort folder of real scans plus broken ones; returns {case_id: expected 'done'|'failed'|'scope'} ('scope':
    analysed, out of scope, listed in failures.csv with stage 'scope')."""
    from dicom_fixtures import real_crop, write_series

    expected: dict[str, str] = {}
    for pid in SPIDER_IDS[:n_good]:
        dst = root / "nifti" / f"patient{pid}.nii.gz"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared / "spider" / pid / "image.nii.gz", dst)
        expected[f"nifti__patient{pid}"] = "done"
    # a real volume written as a DICOM study (sagittal)
    arr, aff = real_crop(shape=(64, 64, 8))
    write_series(root / "dicom" / "good", arr, aff)
    expected["dicom__good"] = "done"
    if broken:
        # truncated DICOM: one slice of an otherwise good series cut in half
        _, files = write_series(root / "dicom" / "truncated", arr, aff)
        data = files[3].read_bytes()
        files[3].write_bytes(data[: len(data) // 2])
        expected["dicom__truncated"] = "failed"
        # an axial-only study: thick axial slices (read, but no sagittal plane in it: out of scope)
        axial = np.diag([0.8, 0.8, 5.0, 1.0])
        write_series(root / "dicom" / "axial", arr, axial, description="t2_tse_tra")
        expected["dicom__axial"] = "scope"
        (root / "empty").mkdir()  # no case: listed in skipped.csv as an empty folder
        nan = np.full((32, 32, 3), np.nan, dtype=np.float32)
        nib.save(nib.Nifti1Image(nan, np.diag([1.0, 1.0, 1.0, 1.0])), str(root / "nifti" / "nan.nii.gz"))
        expected["nifti__nan"] = "failed"
    return expected


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_discovery_finds_each_kind_and_says_what_it_skips(tmp_path: Path, shared_data: Path) -> None:
    root = tmp_path / "in"
    expected = _cohort(root, shared_data)
    bids = root / "bids" / "sub-07" / "ses-1" / "anat"
    bids.mkdir(parents=True)
    shutil.copy(shared_data / "spider" / "21" / "image.nii.gz", bids / "sub-07_ses-1_T2w.nii.gz")
    (bids / "sub-07_ses-1_T2w.json").write_text("{}")
    shutil.copy(shared_data / "fastcleverseg" / "fcs-vb3-08" / "mask.nii.gz", root / "nifti" / "mask.nii.gz")
    cases, skipped = discover_cases(root)
    ids = {c.case_id for c in cases}
    assert ids == set(expected) | {"sub-07_ses-1_T2w"}
    by_id = {c.case_id: c for c in cases}
    assert by_id["sub-07_ses-1_T2w"].kind == "bids"
    assert by_id["dicom__good"].series is not None
    reasons = {s.path: s.reason for s in skipped}
    assert reasons["nifti/mask.nii.gz"].startswith("looks like a label map")
    assert reasons[str(Path("bids/sub-07/ses-1/anat/sub-07_ses-1_T2w.json"))] == (
        "the sidecar of sub-07_ses-1_T2w.nii.gz, read with it"
    )


def test_bad_cases_are_isolated_and_reported(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, out = tmp_path / "in", tmp_path / "out"
    expected = _cohort(root, shared_data)
    assert main(["-q", "batch", str(root), "--out", str(out), "--workers", "2"]) == 1
    summary = capsys.readouterr().out
    n_good = sum(v == "done" for v in expected.values())
    n_bad = sum(v == "failed" for v in expected.values())
    assert f"{n_good} succeeded, 0 skipped (finished earlier), {n_bad} failed, 1 out of scope" in summary
    failures = {r["case"]: r for r in _read_csv(out / "failures.csv")}
    assert set(failures) == {k for k, v in expected.items() if v != "done"}
    assert {"path": "empty" + os.sep, "reason": "empty folder"} in _read_csv(out / "skipped.csv")
    assert "NaN" in failures["nifti__nan"]["message"]
    assert failures["dicom__axial"]["stage"] == "scope" and "axial acquisition" in failures["dicom__axial"]["message"]
    assert failures["dicom__truncated"]["stage"] == "read"
    # each row names its input as cases.csv does (a failed case had no row to join it to its file; user test)
    assert failures["nifti__nan"]["input"] == str(Path("nifti") / "nan.nii.gz")
    assert failures["dicom__truncated"]["input"] == str(Path("dicom") / "truncated")
    assert sorted(p.name for p in (out / "cases").iterdir()) == sorted(expected)
    for case, what in expected.items():
        folder = out / "cases" / case
        if what == "failed":  # no outputs: the record of its failure, which failures.csv is built from
            assert sorted(p.name for p in folder.iterdir()) == ["case.json", "failure.json"]
            assert json.loads((folder / "failure.json").read_text())["stage"] == failures[case]["stage"]
        else:
            assert json.loads((folder / "result.json").read_text())["schema_version"]
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == {
        "cases", "failures.csv", "skipped.csv", "stale_cases.csv", "cases.csv", "vertebrae.csv", "discs.csv",
        "cases.parquet", "vertebrae.parquet", "discs.parquet",
    }  # fmt: skip
    # one row per case with a result: what it was taken to be, its counts and flags, whether it was out of scope
    rows = {r["case"]: r for r in _read_csv(out / "cases.csv")}
    assert set(rows) == {k for k, v in expected.items() if v != "failed"}
    assert "axial" in rows["dicom__axial"]["out_of_scope"] and rows["dicom__axial"]["labelled"] == "0"
    assert rows["dicom__good"]["format"] == "dicom" and rows["dicom__good"]["chosen_because"].startswith("the only")
    dicom_doc = json.loads((out / "cases" / "dicom__good" / "result.json").read_text())
    assert rows["dicom__good"]["series_uid"] == dicom_doc["input"]["series"]["series_uid"] != ""
    case = f"nifti__patient{SPIDER_IDS[0]}"
    good = rows[case]
    assert good["format"] == "nifti" and good["chosen_because"] == "" and int(good["labelled"]) >= 3
    assert good["out_of_scope"] == "" and good["labelling_flagged"] in ("True", "False")
    doc = json.loads((out / "cases" / case / "result.json").read_text())
    assert good["all_flags"] == " | ".join(doc["flags"])
    detector = next(m for m in doc["models"] if m["name"] == "detector")  # which weights made the case
    said = f"detector {detector['version']} ({detector['sha256'][:12]}, card {detector['card_sha256'][:12]})"
    assert said in good["models"].split("; ")
    # each input relative to the root, however the root was typed: the tables of several runs join on it
    assert all(
        not Path(r["input"]).is_absolute() and (root / r["input"]).is_file()
        for r in rows.values()
        if r["format"] != "dicom"
    )
    import pandas as pd  # the docs' screening query, on both tables (Parquet had kept the booleans as text)

    pytest.importorskip("pyarrow")
    for table in (pd.read_csv(out / "cases.csv"), pd.read_parquet(out / "cases.parquet")):
        assert table["labelling_flagged"].dtype == bool
        # no T1 in this cohort: a yes/no and a count without gaps (a boolean column with nulls read as objects)
        assert table["t1_used_for_grading"].dtype == bool and table["t1_discs_matched"].dtype == "int64"
        assert table.query("t1_used_for_grading").empty
        screened = table.query("labelling_flagged or out_of_scope.notna() or withheld.notna()")
        assert "dicom__axial" in set(screened["case"])
    available = [
        d for d in doc["discs"] if any(g["available"] and g["grade"] is not None for g in d["grades"].values())
    ]
    assert int(good["graded"]) == len(available) > 0
    # a rerun skips what is finished (the out-of-scope case too, listed again) and retries only the failures
    assert main(["-q", "batch", str(root), "--out", str(out)]) == 1
    # each case counted once: the out-of-scope case finished earlier is counted as out of scope, not also skipped
    assert f"0 succeeded, {n_good} skipped (finished earlier), {n_bad} failed, 1 out of scope" in (
        capsys.readouterr().out
    )


def test_killed_run_resumes_with_every_case_exactly_once(tmp_path: Path, shared_data: Path) -> None:
    root, out = tmp_path / "in", tmp_path / "out"
    expected = _cohort(root, shared_data, n_good=4, broken=False)
    cmd = [sys.executable, "-m", "openspine", "-q", "batch", str(root), "--out", str(out)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill as soon as one case is finished, mid-way through the cohort
        cases = out / "cases"
        if cases.is_dir() and any((p / "result.json").exists() for p in cases.iterdir()):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = [p.name for p in (out / "cases").iterdir() if (p / "result.json").exists()]
    assert 1 <= len(finished_before) < len(expected)
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    names = sorted(p.name for p in (out / "cases").iterdir())
    assert names == sorted(expected)  # no leftover temporary folder, no missing case
    for kind in ("vertebrae", "discs"):
        rows = _read_csv(out / f"{kind}.csv")
        per_case = sum(len(_read_csv(out / "cases" / c / f"{kind}.csv")) for c in names)
        assert len(rows) == per_case
        keys = [tuple(r.values()) for r in rows]
        assert len(keys) == len(set(keys))


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:  # the run has just ended
        return kids
    for task in tasks:
        try:
            kids += [int(x) for x in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):  # a thread ended between the listing and the read
            continue
    return kids


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the worker processes through /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_worker_loses_no_case(tmp_path: Path, shared_data: Path, sig: signal.Signals) -> None:
    """Kill one of two worker processes mid-run: the run still finishes every case, exactly once. SIGTERM too: a
    worker had caught it as the command line's Ctrl-C, and the whole run stopped, exit 130."""
    root, out = tmp_path / "in", tmp_path / "out"
    expected = _cohort(root, shared_data, n_good=4, broken=False)
    for i in range(4):  # more cases, so that the kill lands while some are still queued
        for pid in SPIDER_IDS:
            shutil.copy(shared_data / "spider" / pid / "image.nii.gz", root / "nifti" / f"copy{i}_{pid}.nii.gz")
            expected[f"nifti__copy{i}_{pid}"] = "done"
    cmd = [sys.executable, "-m", "openspine", "batch", str(root), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    killed = None
    while time.time() < deadline and proc.poll() is None:
        cases = out / "cases"
        workers = _children(proc.pid)
        if len(workers) >= 2 and cases.is_dir() and any((p / "result.json").exists() for p in cases.iterdir()):
            killed = workers[0]
            os.kill(killed, sig)
            break
        time.sleep(0.02)
    summary, err = proc.communicate(timeout=300)
    assert killed is not None, "the run ended before a worker could be killed"
    assert proc.returncode == 0, err[-2000:]
    assert "worker process died" in err
    names = sorted(p.name for p in (out / "cases").iterdir())
    assert names == sorted(expected)
    assert all((out / "cases" / n / "result.json").is_file() for n in names)
    assert _read_csv(out / "failures.csv") == []
    rows = _read_csv(out / "vertebrae.csv")
    assert len(rows) == sum(len(_read_csv(out / "cases" / n / "vertebrae.csv")) for n in names)
    # a fresh output folder: every case was analysed by this run, none "finished earlier" (a case handed out again
    # after the death, found finished by a worker of this run, had been counted so)
    assert f"{len(expected)} succeeded, 0 skipped (finished earlier)" in summary


def _dies_on_poison(case, *args):  # stands in for process_case inside forked workers
    from openspine.batch.case import CaseStatus

    if "poison" in case.case_id:
        os._exit(1)  # as a crash in a native library or the out-of-memory killer would end the process
    time.sleep(0.05)
    return CaseStatus(case.case_id, "done")


def _forked_stand_in(monkeypatch: pytest.MonkeyPatch, stand_in: Any) -> Any:
    """Make ``stand_in`` the process_case that forked workers run; returns the runner module."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import openspine.batch.case as case_module
    import openspine.batch.runner as runner

    # pickled by reference, so the forked workers look it up where the real one lives
    stand_in.__module__, stand_in.__qualname__ = case_module.__name__, "process_case"
    monkeypatch.setattr(case_module, "process_case", stand_in)
    monkeypatch.setattr(runner, "process_case", stand_in)
    # forked workers see the stand-in (a spawned one would import the real function); other tests of the session
    # may have left threads behind, which would otherwise make the runner choose spawn
    monkeypatch.setattr(runner, "_new_pool", lambda n: ProcessPoolExecutor(n, mp_context=mp.get_context("fork")))
    return runner


def _statuses(runner: Any, cases: list[Any], out: Path) -> list[Any]:
    from openspine.config import AnalysisConfig

    return list(runner._local_statuses(cases, out, ("json",), AnalysisConfig(), False, workers=2))


def test_case_that_kills_its_worker_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openspine.batch.discover import Case

    runner = _forked_stand_in(monkeypatch, _dies_on_poison)
    cases = [Case(f"case{i:02d}", str(tmp_path / f"{i}.nii.gz"), "nifti") for i in range(10)]
    cases.insert(4, Case("poison", str(tmp_path / "poison.nii.gz"), "nifti"))
    statuses = _statuses(runner, cases, tmp_path)
    by_case = {s.case_id: s for s in statuses}
    assert len(statuses) == len(cases) == len(by_case)  # every case reported exactly once
    assert by_case["poison"].status == "failed" and by_case["poison"].error_type == runner.WORKER_DIED
    assert all(s.status == "done" for c, s in by_case.items() if c != "poison")


def _stubborn_once(case, *args):  # stands in for process_case: ignores SIGTERM the first time, as a library may
    from openspine.batch.case import CaseStatus

    marker = Path(case.path).with_name("stubborn.seen")
    if case.case_id == "stubborn" and not marker.exists():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        marker.touch()  # after the signal is ignored
        time.sleep(60)
    if case.case_id == "poison":
        deadline = time.time() + 30
        while not marker.exists() and time.time() < deadline:  # once the stubborn case ignores SIGTERM
            time.sleep(0.01)
        os._exit(1)
    return CaseStatus(case.case_id, "done")


def test_a_worker_that_outlives_sigterm_does_not_hang_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the pool only sends SIGTERM to a broken pool's other workers and then waits for them: one that ignored it had
    # hung the run for good
    from openspine.batch.discover import Case

    runner = _forked_stand_in(monkeypatch, _stubborn_once)
    cases = [Case(name, str(tmp_path / f"{name}.nii.gz"), "nifti") for name in ("stubborn", "poison", "other")]
    t0 = time.time()
    statuses = _statuses(runner, cases, tmp_path)
    assert time.time() - t0 < 60
    by_case = {s.case_id: s.status for s in statuses}
    assert by_case == {"stubborn": "done", "poison": "failed", "other": "done"}


def test_two_runs_on_one_output_folder_do_not_both_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    out.mkdir()
    # one case: shard 1/2 holds it, shard 2/2 nothing to analyse
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.float32), np.eye(4)), str(root / "scan.nii.gz"))
    with OutputLock(out, (1, 1)):
        # 75, "try again later" (sysexits.h): a job script tells it from a failed case (1)
        assert main(["batch", str(root), "--out", str(out)]) == 75
    assert "another openspine batch" in capsys.readouterr().err
    with OutputLock(out, (1, 2)):  # other shards of the same folder may run side by side
        assert main(["-q", "batch", str(root), "--out", str(out), "--part", "2/2"]) == 0


def test_parts_are_disjoint_and_cover_every_case(tmp_path: Path, shared_data: Path) -> None:
    root = tmp_path / "in"
    _cohort(root, shared_data)
    cases, _ = discover_cases(root)
    parts = [select_part(cases, (k, 3)) for k in (1, 2, 3)]
    ids = [c.case_id for p in parts for c in p]
    assert sorted(ids) == sorted(c.case_id for c in cases) and len(ids) == len(set(ids))
    assert parse_part("2/5") == (2, 5)
    for bad in ("0/3", "4/3", "x"):
        with pytest.raises(ConfigError):
            parse_part(bad)


def test_run_batch_refuses_a_part_or_worker_count_the_command_line_refuses(tmp_path: Path) -> None:
    # from Python, part=(0, 3) had analysed no case and reported success, part=(1, 0) a ZeroDivisionError
    (tmp_path / "in").mkdir()
    for part in ((0, 3), (4, 3), (-1, 2), (1, 0), (1,), "0/2", "1/2/3", (1.0, 2)):
        with pytest.raises(ConfigError, match="part"):
            run_batch(tmp_path / "in", tmp_path / "out", part=part)  # type: ignore[arg-type]
    for workers in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="--workers must be at least 1"):
            run_batch(tmp_path / "in", tmp_path / "out", workers=workers)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()  # refused before any work
    with pytest.raises(ConfigError, match="config must be an openspine.AnalysisConfig or a dict"):
        run_batch(tmp_path / "in", tmp_path / "out", config=5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown analysis option 'grade_level'"):
        run_batch(tmp_path / "in", tmp_path / "out", config={"grade_level": "all"})


def test_run_batch_reads_a_part_as_the_command_line_writes_it_and_options_as_a_dict() -> None:
    from openspine.batch.runner import _checked_config, checked_part

    assert checked_part("2/5") == checked_part((2, 5)) == (2, 5)
    assert _checked_config({"grade_levels": "all"}) == AnalysisConfig(grade_levels="all")


def test_output_inside_input_is_refused(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    with pytest.raises(ConfigError, match="inside the input folder"):
        run_batch(tmp_path / "in", tmp_path / "in" / "out", formats=("json",))


def test_dask_local_cluster_gives_the_same_outputs(tmp_path: Path, shared_data: Path) -> None:
    pytest.importorskip("distributed")
    root, out = tmp_path / "in", tmp_path / "out"
    expected = _cohort(root, shared_data, n_good=2)
    summary = run_batch(root, out, formats=("json", "csv"), cluster="local:2")
    assert summary.done == sum(v == "done" for v in expected.values())
    assert summary.failed == sum(v == "failed" for v in expected.values())
    assert summary.out_of_scope == sum(v == "scope" for v in expected.values())
    assert {r["case"] for r in _read_csv(out / "failures.csv")} == {k for k, v in expected.items() if v != "done"}
    again = run_batch(root, out, formats=("json", "csv"), cluster="local:2")
    assert again.done == 0 and again.skipped == summary.done and again.out_of_scope == summary.out_of_scope


def test_dask_workers_write_the_per_case_log_lines_as_local_workers_do(tmp_path: Path, shared_data: Path) -> None:
    # the Dask workers' log lines had been lost: only the run's own "failed at" lines reached stderr
    pytest.importorskip("distributed")
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(shared_data / "spider" / SPIDER_IDS[0] / "image.nii.gz", root / "one.nii.gz")
    cmd = [
        sys.executable,
        "-m",
        "openspine",
        "batch",
        str(root),
        "--out",
        str(tmp_path / "out"),
        "--cluster",
        "local:1",
    ]
    done = subprocess.run([*cmd, "--formats", "json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "INFO: case one: wrote result.json" in done.stderr


def test_dry_run_lists_cases_and_skips_and_writes_nothing(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, out = tmp_path / "in", tmp_path / "out"
    expected = _cohort(root, shared_data, n_good=1)
    shutil.copy(shared_data / "fastcleverseg" / "fcs-vb3-08" / "mask.nii.gz", root / "nifti" / "mask.nii.gz")
    assert main(["batch", str(root), "--out", str(out), "--dry-run", "--part", "1/1"]) == 0
    printed = capsys.readouterr().out
    assert f"{len(expected)} case(s) found" in printed
    assert f"empty{os.sep}: empty folder" in printed
    assert "nifti/mask.nii.gz: looks like a label map" in printed
    assert not out.exists()


def test_overwrite_redoes_finished_cases(tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, out = tmp_path / "in", tmp_path / "out"
    _cohort(root, shared_data, n_good=1, broken=False)
    assert main(["-q", "batch", str(root), "--out", str(out), "--formats", "json,csv"]) == 0
    capsys.readouterr()
    first = (out / "cases" / "nifti__patient21" / "result.json").stat().st_mtime_ns
    assert main(["-q", "batch", str(root), "--out", str(out), "--formats", "json,csv", "--overwrite"]) == 0
    assert "2 succeeded, 0 skipped (finished earlier), 0 failed" in capsys.readouterr().out
    assert (out / "cases" / "nifti__patient21" / "result.json").stat().st_mtime_ns > first
    rows = _read_csv(out / "vertebrae.csv")
    assert len(rows) >= 6  # real detections, each case once
    assert len(rows) == sum(len(_read_csv(p / "vertebrae.csv")) for p in (out / "cases").iterdir())


def test_another_scan_saved_under_a_finished_case_s_name_is_analysed_again(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rerun kept the old patient's result (and put it in the cohort tables) when another scan had been saved
    under the same file name: the case record only named the path. It now keeps the file's size and time."""
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    scan = root / "pat.nii.gz"
    shutil.copy(shared_data / "spider" / "21" / "image.nii.gz", scan)
    args = ["-q", "batch", str(root), "--out", str(out), "--formats", "json,csv"]
    assert main(args) == 0
    assert main(args) == 0  # unchanged: finished earlier
    assert "0 succeeded, 1 skipped (finished earlier)" in capsys.readouterr().out
    shutil.copy(shared_data / "spider" / "31" / "image.nii.gz", scan)  # another patient, same name
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "1 finished earlier, analysed again (input, options, model weights or formats changed)" in said
    doc = json.loads((out / "cases" / "pat" / "result.json").read_text())
    assert doc["input"]["shape"] == list(nib.load(shared_data / "spider" / "31" / "image.nii.gz").shape)
    # a case folder recorded before file stamps were kept still counts as finished (no cohort redone on upgrade)
    record = json.loads((out / "cases" / "pat" / "case.json").read_text())
    del record["source"]["stamps"]
    (out / "cases" / "pat" / "case.json").write_text(json.dumps(record))
    assert main(args) == 0
    assert "0 succeeded, 1 skipped (finished earlier)" in capsys.readouterr().out


def test_a_changed_t1_of_a_bids_pair_is_named_when_its_case_is_analysed_again(
    tmp_path: Path, shared_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    anat = tmp_path / "in" / "sub-01" / "anat"
    anat.mkdir(parents=True)
    shutil.copy(shared_data / "spider" / "32" / "image.nii.gz", anat / "sub-01_T2w.nii.gz")
    shutil.copy(shared_data / "spider" / "32" / "t1.nii.gz", anat / "sub-01_T1w.nii.gz")
    assert run_batch(tmp_path / "in", tmp_path / "out", formats=("json",)).done == 1
    t1 = anat / "sub-01_T1w.nii.gz"
    os.utime(t1, ns=(t1.stat().st_atime_ns, t1.stat().st_mtime_ns + 10**9))  # saved again
    caplog.set_level("WARNING", logger="openspine")
    again = run_batch(tmp_path / "in", tmp_path / "out", formats=("json",))
    assert again.done == 1 and again.redone == 1
    assert "sub-01_T1w.nii.gz' changed" in caplog.text and "T2w.nii.gz' changed" not in caplog.text


def test_progress_goes_to_log_lines_where_stderr_is_no_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bar redrawn in place ran into the log lines of a cluster job's log file; there, progress lines instead."""
    from openspine.batch.runner import progress_lines, tqdm_progress
    from openspine.data import demo_scan_path

    statuses = list(range(20))
    with pytest.MonkeyPatch.context() as mp:
        lines: list[str] = []
        mp.setattr("openspine.batch.runner.log.info", lambda msg, *a: lines.append(msg % a))
        assert list(progress_lines(statuses, 20)) == statuses  # type: ignore[arg-type]
    assert len(lines) == 10 and lines[0].startswith("2 of 20 cases done (10 %)") and "left" in lines[0]
    assert lines[-1].startswith("20 of 20 cases done (100 %)") and "left" not in lines[-1]
    assert lines[0].endswith(" s left")  # a quick run: seconds, not "about 0 min"
    from openspine.batch.runner import _duration

    assert [_duration(s) for s in (0.2, 42, 95, 3599, 3600 * 5 + 60 * 7)] == [
        "1 s",
        "42 s",
        "2 min",
        "1 h 00 min",
        "5 h 07 min",
    ]
    # the command line: stderr captured (no terminal) carries lines, no bar; quiet, neither
    (tmp_path / "in").mkdir()
    shutil.copy(demo_scan_path(), tmp_path / "in" / "a.nii.gz")
    assert main(["batch", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--formats", "json"]) == 0
    err = capsys.readouterr().err
    assert "1 of 1 cases done (100 %)" in err and "\r" not in err
    assert list(tqdm_progress(quiet=True)(statuses, 20)) == statuses  # type: ignore[arg-type]


def test_parquet_columns_are_typed_by_column(tmp_path: Path) -> None:
    """Case ids that look like numbers stay text beside others ('001' beside 'sub-02' had made the Parquet writer
    fail, and '001' would have become 1.0); integer columns are int64, as the CSV reads back."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    from openspine.data import demo_scan_path

    (tmp_path / "in").mkdir()
    for name in ("001.nii.gz", "sub-02.nii.gz"):
        shutil.copy(demo_scan_path(), tmp_path / "in" / name)
    run_batch(tmp_path / "in", tmp_path / "out", formats=("json",))
    table = pd.read_parquet(tmp_path / "out" / "vertebrae.parquet")
    assert sorted(set(table["case"])) == ["001", "sub-02"]
    as_csv = pd.read_csv(tmp_path / "out" / "vertebrae.csv")
    assert table["mid_slice"].dtype == as_csv["mid_slice"].dtype == "int64"
    discs = pd.read_parquet(tmp_path / "out" / "discs.parquet")
    assert discs["probability"].dtype == "float64" and discs["grading"].dtype != "float64"


def test_workers_are_not_forked_beside_pytorch(monkeypatch: pytest.MonkeyPatch) -> None:
    """After PyTorch has run in the process (a model trained in the same notebook) forked workers hung for ever
    (a two-channel grader trained, then run_batch(workers=2): tests/grading/test_pair.py before tests/batch): the
    workers then start from a fresh interpreter."""
    from openspine.batch.runner import _new_pool

    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch") or object())
    pool = _new_pool(1)
    try:
        assert pool._mp_context.get_start_method() == "spawn"
    finally:
        pool.shutdown()


def test_workers_are_not_forked_after_an_analysis_in_the_same_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """openspine.analyze on one scan, then run_batch(workers=2) in the same notebook: forked workers hung for ever in
    their first onnxruntime session, although they had dropped the parent's sessions (its runtime's threads are not
    in the child). The workers then start from a fresh interpreter, and the cohort is analysed."""
    from openspine.batch.runner import _new_pool
    from openspine.models import registry

    monkeypatch.setattr(registry, "_sessions_started", False)
    registry.forget_sessions()  # sessions cached by earlier tests would not be started again by the analysis below
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr("threading.active_count", lambda: 1)
    pool = _new_pool(1)
    try:
        assert pool._mp_context.get_start_method() == "fork"  # nothing has run here: forking is safe and fast
    finally:
        pool.shutdown()
    import openspine
    from openspine.data import DEMO_SCAN

    openspine.analyze(DEMO_SCAN)  # the demo scan, in this process
    assert registry.sessions_started()
    pool = _new_pool(1)
    try:
        assert pool._mp_context.get_start_method() == "spawn"
    finally:
        pool.shutdown()


def test_a_forked_worker_drops_the_parents_model_sessions() -> None:
    from openspine.models import forget_sessions, load_model
    from openspine.models.registry import _session

    load_model("detector")
    assert _session.cache_info().currsize >= 1
    forget_sessions()  # as a forked worker does first: the parent's sessions' thread pools are not in the child
    assert _session.cache_info().currsize == 0


def test_a_scheduler_address_with_no_scheduler_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """`batch --scheduler ADDRESS` with nothing listening there had ended in Dask's 63-line traceback."""
    pytest.importorskip("distributed")
    import socket

    from openspine.batch import distributed as dist
    from openspine.errors import ConfigError

    with socket.socket() as s:  # a free port: nothing listens on it once the socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT_S", 2.0)
    with pytest.raises(ConfigError, match=f"no Dask scheduler answered at 'tcp://127.0.0.1:{port}' within 2 s"):
        dist._client(f"tcp://127.0.0.1:{port}", None)


def test_a_malformed_or_empty_scheduler_address_fails_in_one_line(tmp_path: Path) -> None:
    """The dashboard's http:// address or a port that is no number had ended in a traceback; an empty one (an unset
    variable in a job script) had run the cohort here instead."""
    pytest.importorskip("distributed")
    from openspine.batch import distributed as dist
    from openspine.batch.runner import run_batch
    from openspine.errors import ConfigError

    for address in ("http://127.0.0.1:8787", "tcp://127.0.0.1:notaport"):
        with pytest.raises(ConfigError, match="is no Dask scheduler address"):
            dist._client(address, None)
    with pytest.raises(ConfigError, match="the host of 'tcp://no-such-host.invalid:8786' cannot be found"):
        dist._client("tcp://no-such-host.invalid:8786", None)  # the docs' placeholder host had ended in a traceback
    (tmp_path / "in").mkdir()
    with pytest.raises(ConfigError, match="--scheduler is empty"):
        run_batch(tmp_path / "in", tmp_path / "out", scheduler="")


def test_a_case_row_counts_only_discs_with_a_grade() -> None:
    """A T1 scan's discs carry their gradings withheld (available false): they are not graded in cases.csv."""
    from openspine.batch.tables import _case_row

    withheld = {"pfirrmann": {"grade": None, "available": False, "note": "withheld: the grader was trained on T2 only"}}
    graded = {"pfirrmann": {"grade": 3, "available": True}}
    doc = {"discs": [{"grades": withheld}, {"grades": graded}, {"grades": {}}], "flags": ["a", "b"], "vertebrae": []}
    row = _case_row(doc, {"format": "nifti"})
    assert (row["discs"], row["graded"], row["all_flags"], row["labelling_flagged"]) == (3, 1, "a | b", False)
    assert row["withheld"] == ""


def test_a_case_row_names_what_was_withheld() -> None:
    """A cervical scan in scope with every label withheld answers nothing: its row says so, for screening."""
    from openspine.batch.tables import _case_row

    labels = "labels_withheld: every body (6) and disc (5) (the image shows the cervical spine; …)"
    grades = "grades_withheld: L4-L5 (the grader was trained on T2 only; this scan is T1)"
    doc = {"flags": ["cervical_field_of_view: …", labels, "low_confidence: …", grades], "vertebrae": [], "discs": []}
    assert _case_row(doc, {"format": "nifti"})["withheld"] == f"{labels} | {grades}"


def test_a_case_input_is_named_relative_to_the_root_or_absolute_outside_it(tmp_path: Path) -> None:
    from openspine.batch.tables import input_text

    root = tmp_path / "cohort"
    (root / "site1").mkdir(parents=True)
    (root / "site1" / "a.nii.gz").write_bytes(b"")
    assert input_text(root / "site1" / "a.nii.gz", root) == "site1/a.nii.gz"
    assert input_text(str(root / "site1" / ".." / "site1" / "a.nii.gz"), root / ".") == "site1/a.nii.gz"
    outside = tmp_path / "t1.nii.gz"
    assert input_text(outside, root) == str(outside.absolute())
    assert input_text(outside, None) == str(outside.absolute())
    assert input_text(root, root) == str(root.absolute())  # a study in the root itself: not "."
    store = tmp_path / "annex" / "SHA256E-s12--beef.nii.gz"  # a DataLad dataset's file: a link into its store
    store.parent.mkdir()
    store.write_bytes(b"")
    (root / "site1" / "b.nii.gz").symlink_to(store)
    assert input_text(root / "site1" / "b.nii.gz", root) == "site1/b.nii.gz"


def test_a_full_output_disk_stops_the_run_in_one_line_and_keeps_what_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a full disk had failed every remaining case one by one (287 lines) and then crashed writing failures.csv
    import openspine.writers as writers
    from openspine.errors import OutputError

    root, out = tmp_path / "in", tmp_path / "out"
    for i in range(4):
        (root / f"s{i}").mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.float32), np.eye(4)), str(root / f"s{i}" / "scan.nii.gz"))
    writes: list[str] = []

    def write_result(result: object, folder: Path, formats: object) -> None:
        writes.append(str(folder))
        raise OutputError(f"cannot write results into '{folder}': {os.strerror(28)}")

    monkeypatch.setattr(writers, "write_result", write_result)  # imported by the case when it runs
    assert main(["-q", "batch", str(root), "--out", str(out), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "the output disk is full: case s0__scan could not be written" in err and "Traceback" not in err
    assert len(writes) == 1  # the run stopped at the first case that found the disk full


def test_runs_of_two_splits_into_parts_do_not_share_an_output_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a whole run (1/1) beside part 1/2 on one folder had analysed the cases of part 1/2 twice, side by side
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    out.mkdir()
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.float32), np.eye(4)), str(root / "scan.nii.gz"))
    with OutputLock(out, (1, 2)):
        assert main(["-q", "batch", str(root), "--out", str(out)]) == 75
        assert "another openspine batch runs (or starts) part 1/2 of this output folder" in capsys.readouterr().err
        assert main(["-q", "batch", str(root), "--out", str(out), "--part", "2/2"]) == 0  # the same split: fine
    # once it is done the whole run goes ahead (exit 3: the blank scan is out of scope)
    assert main(["-q", "batch", str(root), "--out", str(out)]) == 3


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--formats", ""], "no output format given"),
        (["--cluster", "local:0"], "--cluster must look like local:N"),
        (["--cluster", "local:2", "--workers", "2"], "--workers sets local worker processes"),
    ],
)
def test_batch_options_that_make_no_sense_are_refused_as_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], words: str
) -> None:
    root = tmp_path / "in"
    root.mkdir()
    assert main(["batch", str(root), "--out", str(tmp_path / "out"), *options]) == 2
    assert words in capsys.readouterr().err


def test_a_dry_run_refuses_an_output_folder_inside_the_input_as_the_run_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.float32), np.eye(4)), str(tmp_path / "scan.nii.gz"))
    for dry in (["--dry-run"], []):
        assert main(["batch", str(tmp_path), "--out", str(tmp_path / "out"), *dry]) == 1
        assert "lies inside the input folder" in capsys.readouterr().err


def test_a_batch_without_pyarrow_says_so_before_the_first_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without pyarrow the Parquet tables are not written; that was said only once every case was done (user test)."""
    import openspine._optional as optional
    from openspine.batch.runner import run_batch
    from openspine.errors import OpenSpineError

    installed = optional.is_installed
    monkeypatch.setattr(optional, "is_installed", lambda m: m != "pyarrow" and installed(m))
    (tmp_path / "in").mkdir()
    with caplog.at_level(logging.WARNING, logger="openspine"), pytest.raises(OpenSpineError, match="no inputs"):
        run_batch(tmp_path / "in", tmp_path / "out")  # an empty root: stopped at discovery, after the warning
    assert any("Parquet tables will not be written: install pyarrow" in r.getMessage() for r in caplog.records)
