"""The documentation stays true: the site builds strictly, and every tutorial runs on the real data.

(a) ``mkdocs build --strict`` (broken links, missing anchors and missing API references fail it) into a temporary
folder, and the generated pages (command line, model cards, tutorials, outputs) are there and current;
(b) each tutorial ``docs/tutorials/*.py`` (jupytext percent format) is converted to a notebook and executed with
nbclient on a kernel of this interpreter, skipping with the reason where the shared data is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.py"))
# CI clones the repository to another folder with shared/ beside it, so look next to the repository root
DATA_ROOT = REPO.parent / "shared" / "data"
BUILD_TIMEOUT_S = 240
CELL_TIMEOUT_S = 240


def test_site_builds_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs packages are not installed: pip install -e '.[docs]'")
    pytest.importorskip("material", reason="mkdocs-material is not installed: pip install -e '.[docs]'")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed: pip install -e '.[docs]'")
    pytest.importorskip("jupytext", reason="jupytext is not installed: pip install -e '.[docs]'")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(REPO / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    assert time.perf_counter() - t0 < BUILD_TIMEOUT_S

    cli = (site / "cli.html").read_text(encoding="utf-8")
    for text in ("openspine analyze", "--pixel-spacing", "openspine batch", "--scheduler", "openspine finetune",
                 "--freeze-backbone", "openspine train detector", "openspine evaluate grading"):  # fmt: skip
        assert text in cli, f"{text!r} missing from the generated command-line page"

    for name in ("detector", "grader", "recognizer"):
        page = site / "models" / f"{name}.html"
        assert page.is_file(), f"model card page {name} not generated"
        card = json.loads((REPO / "src" / "openspine" / "models" / name / "card.json").read_text(encoding="utf-8"))
        html = page.read_text(encoding="utf-8")
        assert card["sha256"] in html, f"the {name} page does not show the shipped model's sha256"
        assert "Licence" in html and "Training data" in html
    assert (site / "models" / "index.html").is_file()

    for tutorial in TUTORIALS:
        assert (site / "tutorials" / f"{tutorial.stem}.html").is_file(), f"tutorial {tutorial.name} not rendered"
    assert (site / "outputs-gallery.html").is_file()
    assert (site / "img" / "generated" / "demo-overlay.png").stat().st_size > 10_000
    api = (site / "api.html").read_text(encoding="utf-8")
    assert "openspine.analysis.analyze" in api or "analyze" in api
    for page in ("index", "getting-started", "reading-scans", "outputs", "cohorts", "accuracy", "spinenet", "cite",
                 "detection", "grading", "tutorial-finetune"):  # fmt: skip
        assert (site / f"{page}.html").is_file(), f"{page}.md is not part of the site"


@pytest.mark.slow
@pytest.mark.parametrize("tutorial", TUTORIALS, ids=[t.stem for t in TUTORIALS])
def test_tutorial_runs(tutorial: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jupytext = pytest.importorskip("jupytext", reason="jupytext is not installed: pip install -e '.[docs]'")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed: pip install -e '.[docs]'")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed: pip install -e '.[docs]'")
    if not DATA_ROOT.is_dir():
        pytest.skip(f"shared data not found at {DATA_ROOT} (the tutorials run on real scans from it)")

    # a kernel of this very interpreter, whatever kernels the machine has registered
    kernel_dir = tmp_path / "jupyter" / "kernels" / "openspine-docs"
    kernel_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "openspine docs",
        "language": "python",
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("OPENSPINE_DATA", str(DATA_ROOT))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    work = tmp_path / "work"
    work.mkdir()
    # the tutorials write under a new temporary folder each run: here under the test's own, which pytest prunes
    # (under /tmp, 46 runs of each had left 1.9 GB)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))

    nb = jupytext.read(tutorial)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="openspine-docs",
        resources={"metadata": {"path": str(work)}},
    )
    t0 = time.perf_counter()
    try:
        client.execute()
    finally:
        # keep the executed notebook next to the test's temporary files, for a look when it fails
        import nbformat

        nbformat.write(nb, str(tmp_path / f"{tutorial.stem}.ipynb"))
    seconds = time.perf_counter() - t0
    print(f"{tutorial.name}: executed in {seconds:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
