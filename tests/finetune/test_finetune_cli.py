"""`openspine finetune` without PyTorch: a clear error that names the extra to install; no torch on import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from openspine.errors import MissingDependencyError


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path):
    from openspine.finetune import cli_main

    monkeypatch.setitem(sys.modules, "torch", None)  # looks uninstalled: import fails, find_spec finds nothing
    (tmp_path / "l.csv").write_text("scan,level,bulging\nscan.nii.gz,L4-L5,1\n")
    with pytest.raises(MissingDependencyError, match=r"openspine\[train\]"):
        cli_main(["--scans", str(tmp_path), "--labels", str(tmp_path / "l.csv"), "--out", str(tmp_path / "o")])


def test_importing_grading_and_finetune_does_not_import_torch():
    code = (
        "import sys, openspine.grading, openspine.finetune, openspine.evaluation.grading, openspine.training.grader; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
