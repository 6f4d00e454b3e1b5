"""The command line: help, version, the golden demo run, and clear errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from openspine import __version__
from openspine.cli import main
from openspine.schema import validate_result


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize("command", ["info", "analyze", "demo", "train", "evaluate", "batch"])
def test_every_command_has_help_with_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: openspine " + command in out
    if command in ("info", "analyze", "demo", "batch"):
        assert "examples:" in out


DELEGATED = [
    ["finetune"], ["train", "detector"], ["train", "grader"], ["evaluate", "detection"], ["evaluate", "grading"],
]  # fmt: skip


@pytest.mark.parametrize("argv", [[*a, "--help"] for a in DELEGATED])
def test_delegated_commands_show_their_own_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and "example" in out.lower()


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_import_has_no_side_effects() -> None:
    code = (
        "import sys, openspine; "
        "heavy = [m for m in ('torch', 'onnxruntime', 'pydicom', 'nibabel', 'numpy') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_golden_demo_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed
    doc = json.loads((out / "result.json").read_text())
    validate_result(doc)
    assert doc["input"]["shape"] == [503, 384, 1]
    assert doc["input"]["spacing_mm"] == pytest.approx([0.677, 0.677, 4.0])
    assert doc["input"]["orientation"] == "IPR"
    assert (out / "vertebrae.csv").read_text().startswith("label,score,")
    assert (out / "discs.csv").read_text().startswith("level,")
    # the built-in models on this real lumbar slice (val split: no model was trained on it)
    labels = [v["label"] for v in doc["vertebrae"]]
    assert labels[-6:] == ["L1", "L2", "L3", "L4", "L5", "S1"], labels
    levels = [d["level"] for d in doc["discs"]]
    assert levels[-5:] == ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"], levels
    for d in doc["discs"]:
        grade = d["grades"]["pfirrmann"]
        assert grade["grade"] in (1, 2, 3, 4, 5) and sum(grade["probabilities"].values()) == pytest.approx(1, abs=1e-3)
        assert d["grades"]["central_canal_stenosis"]["available"] is False
    # no stray temporary files from the atomic writes
    assert sorted(p.name for p in out.iterdir()) == [
        "discs.csv",
        "overlay.png",
        "report.html",
        "result.json",
        "vertebrae.csv",
    ]


def test_demo_grades_agree_with_the_radiologists(tmp_path: Path, shared_data: Path) -> None:
    import csv

    assert main(["-q", "demo", "--out", str(tmp_path / "demo")]) == 0
    doc = json.loads((tmp_path / "demo" / "result.json").read_text())
    with open(shared_data / "spider" / "gradings.csv") as f:
        truth = {r["level"]: int(r["Pfirrman grade"]) for r in csv.DictReader(f) if r["Patient"] == "21"}
    predicted = {d["level"]: d["grades"]["pfirrmann"]["grade"] for d in doc["discs"] if d["level"] in truth}
    assert len(predicted) == 6
    assert all(abs(predicted[k] - truth[k]) <= 1 for k in predicted), (predicted, truth)


def test_info_on_a_nifti(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from openspine.data import demo_scan_path

    assert main(["info", str(demo_scan_path()), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [503, 384, 1]
    assert info["orientation"] == "IPR"
    assert info["analysable"] is True


def _nifti(tmp_path: Path, name: str, arr: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path = tmp_path / name
    nib.save(nib.Nifti1Image(arr, np.eye(4) if affine is None else affine), str(path))
    return path


AXIAL = np.diag([1, 1, 5.0, 1])
SAG = np.array([[0, 0, 4.0, 0], [0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.nii.gz", "does not exist"),
        (lambda d: _nifti(d, "four_d.nii.gz", np.zeros((4, 4, 4, 2), np.float32)), "4D NIfTI"),
        (lambda d: _nifti(d, "nan.nii.gz", np.full((8, 8, 3), np.nan, np.float32), SAG), "NaN or infinite"),
        (lambda d: _nifti(d, "zeros.nii.gz", np.zeros((8, 8, 3), np.float32), SAG), "no contrast"),
        (lambda d: _nifti(d, "axial.nii.gz", np.arange(64, dtype=np.float32).reshape(8, 8, 1), AXIAL), "axial"),
    ],
    ids=["missing", "4d", "nan", "all-zero", "lone-axial-slice"],
)
def test_bad_input_gives_one_line_and_exit_1(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    path = make(tmp_path)
    before = path.read_bytes() if path.exists() else None
    assert main(["analyze", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "openspine: error:" in err and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "result.json").exists()
    if before is not None:
        assert path.read_bytes() == before  # inputs are never modified


def test_png_without_spacing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    png = tmp_path / "slice.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(png)
    assert main(["analyze", str(png), "--out", str(tmp_path / "out")]) == 1
    assert "--pixel-spacing" in capsys.readouterr().err


def test_output_folder_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from openspine.data import demo_scan_path

    target = tmp_path / "taken"
    target.write_text("not a folder")
    assert main(["analyze", str(demo_scan_path()), "--out", str(target)]) == 1
    assert "is an existing file" in capsys.readouterr().err
    assert target.read_text() == "not a folder"


def test_console_script_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "openspine"
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_json_log_format_is_machine_readable(tmp_path: Path) -> None:
    from openspine.data import demo_scan_path

    proc = subprocess.run(
        [sys.executable, "-m", "openspine", "--log-format", "json", "analyze", str(demo_scan_path()),
         "--out", str(tmp_path / "o"), "--formats", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["message"] == "stage: detect" for r in records)


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    from openspine.data import demo_scan_path

    proc = subprocess.run(
        [sys.executable, "-m", "openspine", "-q", "analyze", str(demo_scan_path()), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert proc.stdout == "" and proc.stderr == ""


def test_result_in_python_without_files() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import openspine
    from openspine.data import demo_scan_path

    result = openspine.analyze(demo_scan_path())
    assert json.loads(result.to_json())["vertebrae"]
    assert set(result.to_dataframe("discs")["grading"]) >= {"pfirrmann", "bulging"}
    fig = result.plot()
    assert fig.get_size_inches()[0] == pytest.approx(10.0)
