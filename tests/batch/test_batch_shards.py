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
