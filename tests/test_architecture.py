"""The package's layers hold (import-linter contracts in pyproject.toml), and the contracts really catch an upward
import and a cycle (checked on a copy of the package with one bad import added)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _lint(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([lint, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_layers_and_has_no_cycle() -> None:
    done = _lint(REPO, REPO / "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "broken"),
    [
        ("detection/types.py", "from openspine import analysis", "Layers"),  # a step importing the pipeline
        ("grading/grade.py", "from openspine.training import metrics", "Layers"),  # inference importing learning
        ("levels.py", "from openspine import geometry", "Layers"),  # two independent siblings
    ],
)
def test_the_contracts_catch_an_upward_import(tmp_path: Path, module: str, bad_import: str, broken: str) -> None:
    shutil.copytree(REPO / "src" / "openspine", tmp_path / "src" / "openspine")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "src" / "openspine" / module
    path.write_text(path.read_text() + f"\n{bad_import}  # added by the test\n")
    done = _lint(tmp_path, tmp_path / "src")
    assert done.returncode != 0
    assert f"{broken}" in done.stdout and "BROKEN" in done.stdout


def test_the_contracts_catch_a_cycle_inside_a_package(tmp_path: Path) -> None:
    shutil.copytree(REPO / "src" / "openspine", tmp_path / "src" / "openspine")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "src" / "openspine" / "detection" / "types.py"  # records imports types: types → records closes it
    path.write_text(path.read_text() + "\nfrom openspine.detection import records  # added by the test\n")
    done = _lint(tmp_path, tmp_path / "src")
    assert done.returncode != 0
    assert "No import cycle" in done.stdout and "BROKEN" in done.stdout
