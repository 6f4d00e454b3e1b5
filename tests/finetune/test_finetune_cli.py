"""`openspine finetune` without PyTorch: a clear error that names the extra to install; no torch on import."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from openspine.errors import MissingDependencyError


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path):
    import openspine._optional as optional
    from openspine.finetune import cli_main

    real = importlib.import_module

    def no_torch(name: str, *a: object, **k: object):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real(name, *a, **k)

    monkeypatch.setattr(optional.importlib, "import_module", no_torch)
    with pytest.raises(MissingDependencyError, match=r"openspine\[train\]"):
        cli_main(["--scans", str(tmp_path), "--labels", str(tmp_path / "l.csv"), "--out", str(tmp_path / "o")])


def test_importing_grading_and_finetune_does_not_import_torch():
    code = (
        "import sys, openspine.grading, openspine.finetune, openspine.evaluation.grading, openspine.training.grader; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
