"""Batch shards into one output folder (``--part K/N``): failures.csv lists every shard's failed and out-of-scope
cases, also when the shards run at the same time; a failed case's folder records the failure."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from openspine.batch.runner import run_batch


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _cohort(root: Path) -> dict[str, str]:
    """Six small volumes (noise: out of scope) and two truncated ones (fail at read); {case: expected stage}."""
    root.mkdir(parents=True)
    expected = {}
    for i in range(6):
        data = np.random.default_rng(i).random((16, 16, 3)).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(root / f"s{i}.nii.gz"))
        expected[f"s{i}"] = "scope"
    for name in ("corrupt_a", "corrupt_b"):
        data = (root / "s0.nii.gz").read_bytes()
        (root / f"{name}.nii.gz").write_bytes(data[: len(data) // 2])
        expected[name] = "read"
    return expected


def test_each_shard_writes_every_shards_failures(tmp_path: Path) -> None:
    root, out = tmp_path / "in", tmp_path / "out"
    expected = _cohort(root)
    seen: dict[str, str] = {}
    for k in (1, 2, 3):
        summary = run_batch(root, out, formats=("json",), part=(k, 3))
        seen.update({s.case: s.stage for s in summary.failures})
        rows = _read_csv(out / "failures.csv")
        assert {r["case"]: r["stage"] for r in rows} == seen  # the earlier shards' rows are still there
    assert seen == expected
    rows = {r["case"]: r for r in _read_csv(out / "failures.csv")}
    assert rows["corrupt_a"]["error_type"] == "ScanReadError" and rows["s3"]["error_type"] == "OutOfScope"
    failure = json.loads((out / "cases" / "corrupt_b" / "failure.json").read_text())
    assert failure["stage"] == "read" and not (out / "cases" / "corrupt_b" / "result.json").exists()
    # a rerun of one shard keeps the others' rows; a fixed file leaves failures.csv and its failure record goes
    (root / "corrupt_a.nii.gz").write_bytes((root / "s1.nii.gz").read_bytes())
    for k in (1, 2, 3):
        run_batch(root, out, formats=("json",), part=(k, 3))
    rows = {r["case"]: r["stage"] for r in _read_csv(out / "failures.csv")}
    assert rows == {**expected, "corrupt_a": "scope"}
    assert not (out / "cases" / "corrupt_a" / "failure.json").exists()


def test_shards_run_at_the_same_time_lose_no_failure(tmp_path: Path) -> None:
    root, out = tmp_path / "in", tmp_path / "out"
    expected = _cohort(root)
    cmd = [sys.executable, "-m", "openspine", "-q", "batch", str(root), "--out", str(out), "--formats", "json"]
    procs = [
        subprocess.Popen([*cmd, "--part", f"{k}/4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for k in range(1, 5)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode in (1, 3), err.decode()[-2000:]
    assert {r["case"]: r["stage"] for r in _read_csv(out / "failures.csv")} == expected
    assert sorted(p.name for p in (out / "cases").iterdir()) == sorted(expected)


def test_a_part_whose_cases_another_part_built_into_the_tables_does_not_build_them_again(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Parts of one run finishing together used to rebuild the whole tables one after another (ten parts of a
    3 000-case cohort: 13 s each, in a queue). A part whose cases were final before another part started building
    leaves the tables as that part built them; one whose cases came later builds them."""
    from openspine.batch import runner

    root, out = tmp_path / "in", tmp_path / "out"
    _cohort(root)
    first = run_batch(root, out, formats=("json",), part=(1, 2))
    assert 0 < first.tables["cases"] == len(_read_csv(out / "cases.csv")) < 6  # this part's finished cases
    ticket = runner._tables_ticket

    def another_part_builds_after_this_one_finished(out_root: Path) -> int:  # type: ignore[no-untyped-def]
        mine = ticket(out_root)
        runner._tables_built(out_root, mine, cohort_seen[-1], {"cases": 6, "vertebrae": 0, "discs": 0}, 0)
        return mine

    cohort_seen: list[str] = []
    key = runner._cohort_key
    monkeypatch.setattr(runner, "_cohort_key", lambda r, f: cohort_seen.append(key(r, f)) or cohort_seen[-1])
    monkeypatch.setattr(runner, "_tables_ticket", another_part_builds_after_this_one_finished)
    monkeypatch.setattr(runner, "build_cohort_tables", lambda *a, **k: pytest.fail("built again"))
    second = run_batch(root, out, formats=("json",), part=(2, 2))
    assert second.tables == {"cases": 6, "vertebrae": 0, "discs": 0}
    monkeypatch.undo()  # this part's cases came after the last build
    third = run_batch(root, out, formats=("json",), part=(2, 2), overwrite=True)
    assert third.tables["cases"] == 6 and len(_read_csv(out / "cases.csv")) == 6


@pytest.mark.parametrize("state", ['{"finished": "x", "built": null}', '{"built": "9", "counts": 3}', "[1]", "{"])
def test_a_tables_state_file_holding_something_else_is_taken_as_empty(tmp_path: Path, state: str) -> None:
    root, out = tmp_path / "in", tmp_path / "out"
    _cohort(root)
    out.mkdir()
    (out / ".openspine-tables.json").write_text(state)
    summary = run_batch(root, out, formats=("json",))
    assert summary.tables["cases"] == 6 == len(_read_csv(out / "cases.csv"))
    assert json.loads((out / ".openspine-tables.json").read_text())["built"] == 1


def test_a_failure_message_is_one_line(tmp_path: Path) -> None:
    """nibabel's message on a truncated file spans two lines; failures.csv and the log had them split."""
    root, out = tmp_path / "in", tmp_path / "out"
    _cohort(root)
    run_batch(root, out, formats=("json",))
    rows = {r["case"]: r["message"] for r in _read_csv(out / "failures.csv")}
    assert rows["corrupt_a"] and all("\n" not in m for m in rows.values())
    from openspine.batch.case import one_line

    assert one_line("cannot read '/a  b/x.nii'\n - damaged?\r\n") == "cannot read '/a  b/x.nii' - damaged?"
