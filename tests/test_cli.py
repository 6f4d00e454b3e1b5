"""The command line: help, version, the golden demo run, and clear errors for bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from openspine import __version__
from openspine.cli import main
from openspine.errors import BatchInterrupted
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


def test_dir_lists_the_api_for_tab_completion() -> None:
    code = "import openspine; print(sorted(n for n in dir(openspine) if not n.startswith('_')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    names = ["AnalysisConfig", "AnalysisResult", "Scan", "analyze", "list_series", "load_scan", "load_study"]
    assert out.strip() == str(names)


def test_the_analysis_options_are_importable_from_the_package() -> None:
    import openspine
    from openspine.config import AnalysisConfig

    assert openspine.AnalysisConfig is AnalysisConfig


def test_demo_runs_in_a_locale_that_is_not_utf8(tmp_path: Path) -> None:
    # model cards were read, and a dash printed, in the locale's encoding: a traceback under LC_ALL=C
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    env.update(LC_ALL="C", PYTHONUTF8="0", PYTHONIOENCODING="ascii")
    run = subprocess.run(
        [sys.executable, "-m", "openspine", "demo", "--out", str(tmp_path / "demo")],
        capture_output=True,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr.decode("ascii", "replace")
    assert b"Traceback" not in run.stderr and (tmp_path / "demo" / "result.json").is_file()


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


def test_out_has_the_short_form_o() -> None:
    # `-o DIR`, as most command-line tools write it, was refused as "the following arguments are required: --out"
    from openspine.cli import build_parser

    parser = build_parser()
    for command in (["analyze", "scan.nii.gz"], ["batch", "in"], ["demo"]):
        assert parser.parse_args([*command, "-o", "res"]).out == Path("res")


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


def test_info_says_what_a_float64_nifti_stores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import nibabel as nib

    path = tmp_path / "f64.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 9, 3)) * 1000, np.eye(4)), str(path))
    assert main(["info", str(path)]) == 0
    assert "data type    float32 (stored as float64, read in single precision)" in capsys.readouterr().out
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["dtype"], info["stored_dtype"]) == ("float32", "float64")


def test_info_calls_unanalysable_what_analyze_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A script screening files with info --json is told what analyze refuses before any model looks: a label map
    had read as analysable (analyze exits 3 on it), and so had a mask of a few values."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 1000, (40, 40, 5)).astype(np.int16)
    for name, arr, why in (
        ("mask.nii.gz", image, "looks like a label map"),
        ("scan.nii.gz", (image > 500).astype(np.uint8) * 3, "distinct intensities"),
    ):
        assert main(["info", str(_nifti(tmp_path, name, arr, SAG)), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["analysable"] is False and why in doc["why_not"], doc
        assert main(["-q", "analyze", str(tmp_path / name), "--out", str(tmp_path / name.split(".")[0])]) == 3
        capsys.readouterr()


def _nifti(tmp_path: Path, name: str, arr: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path = tmp_path / name
    nib.save(nib.Nifti1Image(arr, np.eye(4) if affine is None else affine), str(path))
    return path


AXIAL = np.diag([1, 1, 5.0, 1])
SAG = np.array([[0, 0, 4.0, 0], [0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]])
CORONAL = np.array([[0.7, 0, 0, 0], [0, 0, 4.0, 0], [0, 0.7, 0, 0], [0, 0, 0, 1]])  # R, S, A (thick)
SLICES = np.arange(16 * 16 * 6, dtype=np.float32).reshape(16, 16, 6)


def _zero_sform(tmp_path: Path) -> Path:
    """A NIfTI whose header's sform (code 1) is all zeros: nibabel gives a zero affine."""
    img = nib.Nifti1Image(np.arange(64, dtype=np.int16).reshape(4, 4, 4), np.eye(4))
    img.set_qform(None, code=0)
    img.header["sform_code"] = 1
    for row in ("srow_x", "srow_y", "srow_z"):
        img.header[row] = np.zeros(4)
    path = tmp_path / "affine_zero.nii.gz"
    nib.save(nib.Nifti1Image(img.dataobj, None, header=img.header), str(path))
    return path


def _picture(tmp_path: Path, name: str, arr: np.ndarray) -> Path:
    from PIL import Image

    path = tmp_path / name
    Image.fromarray(arr).save(path)
    return path


OWN_OUTPUT = "this picture is an openspine output (overlay), not a scan: analyse the scan it was made from"


def _own_overlay(tmp_path: Path) -> Path:
    """A picture carrying the PNG text openspine writes into its overlay.png."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("openspine-output", "overlay")
    path = tmp_path / "overlay.png"
    Image.fromarray((np.arange(64 * 48) % 251).astype(np.uint8).reshape(64, 48)).save(path, pnginfo=info)
    return path


def _dicom_axial(tmp_path: Path) -> Path:
    tests = str(Path(__file__).resolve().parent)
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from dicom_fixtures import write_series

    write_series(tmp_path / "axial", SLICES.astype(np.int16), np.diag([0.7, 0.7, 4.0, 1.0]), description="t2_tse_tra")
    return tmp_path / "axial"


def _dicom_study_without_sagittal(tmp_path: Path) -> Path:
    """A study of an axial (6 slices) and a coronal (4 slices) series: no sagittal series to analyse."""
    _dicom_axial(tmp_path / "study")
    from dicom_fixtures import new_ids, write_series

    study = str(pydicom_study_uid(tmp_path / "study" / "axial"))
    coronal = SLICES[:, :, :4].astype(np.int16)
    write_series(tmp_path / "study" / "coronal", coronal, CORONAL, ids=new_ids(study), series_number=2)
    return tmp_path / "study"


def pydicom_study_uid(folder: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True).StudyInstanceUID)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.nii.gz", "does not exist"),
        (lambda d: _nifti(d, "four_d.nii.gz", np.zeros((4, 4, 4, 2), np.float32)), "4D NIfTI"),
        (lambda d: _nifti(d, "nan.nii.gz", np.full((8, 8, 3), np.nan, np.float32), SAG), "NaN or infinite"),
        (_zero_sform, "has no usable orientation: the sform of its header (code 1) is singular or not finite: [[0, 0"),
        (
            lambda d: _nifti(d, "empty.nii.gz", np.zeros((0, 10, 3), np.uint8)),
            "holds no voxels: its header gives the shape (0, 10, 3)",
        ),
    ],
    ids=["missing", "4d", "nan", "zero-affine", "no-voxels"],
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
    said = [line for line in err.splitlines() if line.startswith("openspine: error:")]
    assert len(said) == 1 and message in said[0], err  # the whole message on its one line
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "result.json").exists()
    if before is not None:
        assert path.read_bytes() == before  # inputs are never modified


AXIAL_PLANE = {"value": "axial", "source": "geometry"}


@pytest.mark.parametrize(
    ("make", "options", "message", "plane"),
    [
        (lambda d: _nifti(d, "thick.nii.gz", SLICES, np.diag([0.7, 0.7, 4.0, 1.0])), [],
         "this is an axial acquisition (6 slices, 4.0 mm apart)", AXIAL_PLANE),
        (lambda d: _nifti(d, "coronal.nii.gz", SLICES, CORONAL), [],
         "this is a coronal acquisition (6 slices, 4.0 mm apart)", {"value": "coronal", "source": "geometry"}),
        (_dicom_axial, [], "this is an axial acquisition (6 slices, 4.0 mm apart)", AXIAL_PLANE),
        (_dicom_study_without_sagittal, [], "this is an axial acquisition (6 slices, 4.0 mm apart)", AXIAL_PLANE),
        (lambda d: _nifti(d, "axial.nii.gz", np.arange(64, dtype=np.float32).reshape(8, 8, 1), AXIAL), [],
         "this is a single axial slice, which shows no sagittal plane of the spine", AXIAL_PLANE),
        (lambda d: _nifti(d, "zeros.nii.gz", np.zeros((8, 8, 3), np.int16), SAG), [],
         "the image has no contrast: every voxel equals 0; this is not a spine image", None),
        (lambda d: _picture(d, "black.png", np.zeros((64, 48), np.uint8)), ["--pixel-spacing", "0.7", "0.7"],
         "every voxel equals 0; this is not a spine image", None),
        (lambda d: _picture(d, "white.png", np.full((64, 48), 255, np.uint8)), ["--pixel-spacing", "auto"],
         "every voxel equals 255; this is not a spine image", None),
        (lambda d: _picture(d, "one_px.png", np.zeros((1, 1), np.uint8)), ["--pixel-spacing", "0.7", "0.7"],
         "no contrast", None),
        (lambda d: _nifti(d, "sub-01_T2w_seg.nii.gz", np.repeat(np.arange(8, dtype=np.uint8), 24).reshape(8, 8, 3),
                          SAG), [],
         "'sub-01_T2w_seg.nii.gz' looks like a label map, not an image", None),
        (_own_overlay, ["--pixel-spacing", "0.7", "0.7"], OWN_OUTPUT, None),
        (_own_overlay, ["--pixel-spacing", "auto"], OWN_OUTPUT, None),
    ],
    ids=["thick-axial-nifti", "thick-coronal-nifti", "axial-dicom", "axial-and-coronal-study", "lone-axial-slice",
         "all-zero-nifti", "black-picture", "white-picture-auto", "one-pixel-picture", "label-map", "own-overlay",
         "own-overlay-auto"],
)  # fmt: skip
def test_nothing_in_scope_gives_one_line_exit_3_and_result_json(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make,  # type: ignore[no-untyped-def]
    options: list[str],
    message: str,
    plane: dict[str, str] | None,
) -> None:
    """A scan read but holding nothing to analyse (not sagittal, no contrast, a label map) is out of scope as a picture
    that looks axial is: one line, exit status 3, result.json (and the other outputs) written with the reason."""
    path = make(tmp_path)
    out = tmp_path / "out"
    assert main(["-q", "analyze", str(path), "--out", str(out), *options]) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("openspine: out of scope: ") and message in err[0], err
    assert err[0].endswith(f" ({path}); result.json says so") and ". (" not in err[0]
    doc = json.loads((out / "result.json").read_text())
    validate_result(doc)
    assert message in doc["out_of_scope"]
    assert doc["vertebrae"] == doc["discs"] == [] and doc["steps_not_run"]["grading"] == doc["out_of_scope"]
    assert doc["input"].get("plane") == plane
    assert main(["analyze", str(path), "--out", str(out), *options]) == 3  # not quiet: its flags on stdout too
    printed = capsys.readouterr().out.splitlines()
    assert [line for line in printed if line.startswith("  flag: ")] == [f"  flag: {f}" for f in doc["flags"]]
    assert {"overlay.png", "report.html", "vertebrae.csv"} <= {p.name for p in out.iterdir()}


def test_info_says_when_a_nifti_header_gives_no_orientation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = nib.Nifti1Image(SLICES, np.eye(4))
    img.set_sform(None, code=0)
    img.set_qform(None, code=0)
    nib.save(img, str(tmp_path / "codes0.nii.gz"))
    assert main(["info", str(tmp_path / "codes0.nii.gz"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["orientation"] == "IPR" and "sform and qform codes are 0" in info["orientation_unknown"]
    assert main(["info", str(tmp_path / "codes0.nii.gz")]) == 0
    assert "assumed: the header gives none, sform and qform codes 0" in capsys.readouterr().out


def test_info_of_a_nifti_lists_no_series_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nib.save(nib.Nifti1Image(SLICES, np.diag([0.5, 0.5, 4.0, 1.0])), str(tmp_path / "one.nii.gz"))
    assert main(["info", str(tmp_path / "one.nii.gz")]) == 0
    out = capsys.readouterr().out
    assert " [0] series" not in out and "--series" not in out  # one volume: no series to list or pick


def test_info_json_describes_a_file_it_cannot_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A script screening files with --json gets a document for every file: a 4D NIfTI of two volumes included."""
    from openspine.data import demo_scan_path

    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3, 2), np.float32), np.eye(4)), str(tmp_path / "two.nii.gz"))
    assert main(["info", str(tmp_path / "two.nii.gz"), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["readable"] is False and doc["analysable"] is False and "4D NIfTI" in doc["why_not"]
    assert main(["info", str(demo_scan_path()), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["readable"] is True
    (tmp_path / "notes.txt").write_text("no scan")  # a file type it does not read; a picture without its pixel size
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "p.png")
    for name, why in (("notes.txt", "not a file type openspine reads"), ("p.png", "carries no pixel size")):
        assert main(["info", str(tmp_path / name), "--json"]) == 1
        doc = json.loads(capsys.readouterr().out)
        assert doc["readable"] is False and why in doc["why_not"], doc


def test_info_lists_a_study_s_series_before_the_error_of_the_one_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text-mode info had printed only the error, not the series to choose from with --series."""
    sys.path.insert(0, str(Path(__file__).parent))
    from dicom_fixtures import real_crop, write_series

    arr, affine = real_crop(shape=(32, 32, 8))
    files = write_series(tmp_path, arr, affine, series_number=7)[1]
    files[3].unlink()  # a slice missing: the series cannot be read
    assert main(["info", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "[0] series 7 t2_tse_sag" in captured.out and "irregular slice spacing" in captured.err


def test_info_shows_the_reading_flags_that_analyze_gives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sag = np.array([[0, 0, 4.0, 0], [0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]])
    img = nib.Nifti1Image(SLICES, sag)
    img.set_qform(sag + np.array([[0, 0, 0, 50.0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]), code=1)
    nib.save(img, str(tmp_path / "disagree.nii.gz"))
    assert main(["info", str(tmp_path / "disagree.nii.gz"), "--json"]) == 0
    (flag,) = json.loads(capsys.readouterr().out)["header_flags"]
    assert flag.startswith("nifti_transforms_disagree: ")
    assert main(["info", str(tmp_path / "disagree.nii.gz")]) == 0
    assert "flag         nifti_transforms_disagree: the header's sform" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze", "{png}", "--pixel-spacing", "0", "0", "--out", "{out}"],
        ["analyze", "{png}", "--pixel-spacing", "nan", "nan", "--out", "{out}"],
        ["analyze", "{png}", "--pixel-spacing", "0.5", "--t1-pixel-spacing", "-1", "--out", "{out}"],
        ["analyze", "{png}", "--pixel-spacing", "0.5", "--levels", "L9-L10", "--out", "{out}"],
        ["analyze", "{png}", "--pixel-spacing", "0.5", "--formats", "foo", "--out", "{out}"],
        ["info", "{png}", "--pixel-spacing", "0", "0"],
        ["demo", "--formats", "foo", "--out", "{out}"],
        ["batch", "{root}", "--part", "0/3", "--out", "{out}"],
        ["batch", "{root}", "--formats", "foo", "--out", "{out}"],
        ["batch", "{root}", "--workers", "0", "--out", "{out}"],
        ["batch", "{root}", "--pixel-spacing", "0", "0", "--out", "{out}"],
    ],
    ids=["spacing-0", "spacing-nan", "t1-spacing", "levels", "formats", "info-spacing", "demo-formats",
         "batch-part", "batch-formats", "batch-workers", "batch-spacing"],
)  # fmt: skip
def test_a_bad_option_value_exits_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """The documented exit status of a bad command line (2), as argparse gives for an unknown option, with the
    value's own one-line message; nothing is written."""
    png = _picture(tmp_path, "slice.png", (np.arange(64 * 48) % 251).astype(np.uint8).reshape(64, 48))
    names = {"png": png, "out": tmp_path / "out", "root": tmp_path}
    assert main([a.format(**names) for a in argv]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"openspine {argv[0]}: error: "), err
    assert not (tmp_path / "out").exists()


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


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    from openspine.data import demo_scan_path

    proc = subprocess.Popen(
        [sys.executable, "-m", "openspine", "info", str(demo_scan_path())],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before anything is written, as with `| true` (or `| head` done reading)
    err = proc.stderr.read().decode()
    assert proc.wait() == 141  # 128 + SIGPIPE, as a shell tool killed by the signal
    assert "Traceback" not in err and "BrokenPipe" not in err
    proc.stderr.close()


def test_a_reader_that_stops_early_leaves_the_demo_outputs_written(tmp_path: Path) -> None:
    # the demo printed two lines before its analysis: `openspine demo | true` ended with no output at all
    proc = subprocess.Popen(
        [sys.executable, "-m", "openspine", "demo", "--out", str(tmp_path / "demo")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and "Traceback" not in err
    assert "analysing the embedded example scan" in err
    assert (tmp_path / "demo" / "result.json").is_file()
    proc.stderr.close()


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


GRADER_DIR = Path(__file__).resolve().parents[1] / "src" / "openspine" / "models" / "grader"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["analyze", "SCAN", "--out", "OUT", "--detector", str(GRADER_DIR)], "is a grader model, not a detector"),
        (["analyze", "SCAN", "--out", "OUT", "--grader", "./my-gradr"], "--grader: no model folder at './my-gradr'"),
        (["batch", "IN", "--out", "OUT", "--grader", "./my-gradr"], "--grader: no model folder at './my-gradr'"),
        (["analyze", "SCAN", "--out", "OUT", "--grader", "gradr"], "built-in: detector, grader"),
        (["evaluate", "detection", "--data", "IN", "--model", str(GRADER_DIR)], "is a grader model, not a detector"),
        (["evaluate", "recognition", "--data", "IN", "--model", str(GRADER_DIR)], "not a recognizer"),
    ],
    ids=["detector-is-grader", "missing-grader", "batch-missing-grader", "unknown-name", "eval-det", "eval-rec"],
)
def test_a_wrong_model_option_is_one_line_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    from openspine.data import demo_scan_path

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "index.csv").write_text("id,dataset,split\n")
    shutil.copy(demo_scan_path(), tmp_path / "in" / demo_scan_path().name)
    subs = {"SCAN": str(demo_scan_path()), "OUT": str(tmp_path / "out"), "IN": str(tmp_path / "in")}
    assert main([subs.get(a, a) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()  # stopped before any case or output


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--lr", "-1"], "--lr must be a positive number"),
        (["--batch-size", "0"], "--batch-size must be a whole number of at least 1, got 0"),
        (["--augment-copies", "-1"], "--augment-copies must be a whole number of at least 0"),
        (["--threads", "0"], "--threads must be a whole number of at least 1"),
        (["--base", "./my-base"], "--base: no model folder at './my-base'"),
    ],
)
def test_finetune_refuses_bad_values_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("scan,level,bulging\nmissing.nii.gz,L4-L5,1\n")
    argv = ["finetune", "--scans", str(tmp_path), "--labels", str(labels), "--out", str(tmp_path / "m"), *option]
    assert main(argv) in (1, 2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "m").exists()


def test_json_logs_have_no_progress_bars_and_a_json_error(tmp_path: Path) -> None:
    from openspine.data import demo_scan_path

    (tmp_path / "in").mkdir()
    shutil.copy(demo_scan_path(), tmp_path / "in" / demo_scan_path().name)
    run = [sys.executable, "-m", "openspine", "--log-format", "json"]
    proc = subprocess.run(
        [*run, "batch", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--formats", "json"],
        capture_output=True, text=True,
    )  # fmt: skip
    lines = [line for line in proc.stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert lines and all(json.loads(line)["message"] for line in lines), proc.stderr  # every line a record
    proc = subprocess.run([*run, "analyze", str(tmp_path / "nothing.nii.gz"), "--out", str(tmp_path / "x")],
                          capture_output=True, text=True)  # fmt: skip
    record = json.loads(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 1 and record["level"] == "error" and "does not exist" in record["message"]


def test_bars_written_to_a_file_are_lines_not_redraws(tmp_path: Path) -> None:
    """A training run logged to a file wrote 732 redrawn bar fragments into 79 KB: where stderr is no terminal, each
    bar writes a line at most every 30 s and when it ends, and a new postfix waits for the next line."""
    code = (
        "import sys\n"
        "from openspine.cli import main\n"
        "def fake(args):\n"
        "    from tqdm import tqdm\n"
        "    bar = tqdm(total=500, desc='training', file=sys.stderr)\n"
        "    for i in range(500):\n"
        "        bar.update(1); bar.set_postfix(loss=i)\n"
        "    bar.close()\n"
        "    return 0\n"
        "import openspine.cli as cli\n"
        "cli._run = fake\n"
        "sys.exit(main(['info', 'x']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("training")]
    assert 1 <= len(lines) <= 3 and "500/500" in lines[-1], proc.stderr


def test_json_logs_give_the_out_of_scope_line_as_a_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    picture = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128)).astype(np.uint8)).save(picture)
    argv = ["-q", "--log-format", "json", "analyze", str(picture), "--pixel-spacing", "0.5", "--out", str(tmp_path)]
    assert main(argv) == 3
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["level"] == "warning" and record["message"].startswith("openspine: out of scope: ")


def test_pixel_spacing_of_a_nifti_is_said_unused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from openspine.analysis import _parameters
    from openspine.config import AnalysisConfig
    from openspine.io import load_scan

    scan = load_scan(_nifti(tmp_path, "s.nii.gz", np.ones((8, 8, 3), np.float32), SAG))
    params = _parameters(AnalysisConfig(pixel_spacing=(0.5, 0.5)), scan, None)
    assert params["not_applied"] == {"pixel_spacing": "applies to pictures only; the NIfTI's own spacing was used"}
    assert "not_applied" not in _parameters(AnalysisConfig(), scan, None)
    # --series on a NIfTI had been ignored without a word
    params = _parameters(AnalysisConfig(series=7), scan, None)
    assert params["not_applied"] == {
        "series": "picks a series of a DICOM folder; a NIfTI file holds one image, which was read"
    }
    # ... and said once when the scan is read
    from openspine.analysis import _read

    _read(tmp_path / "s.nii.gz", AnalysisConfig(series=7, pixel_spacing=(0.5, 0.5)), [])
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "pixel_spacing (--pixel-spacing) applies to pictures only; the NIfTI's own spacing was used",
        "series (--series) picks a series of a DICOM folder; a NIfTI file holds one image, which was read",
    ]
    # a Scan made in Python is said so too (it had been ignored without a word)
    caplog.clear()
    _read(load_scan(tmp_path / "s.nii.gz"), AnalysisConfig(pixel_spacing=(0.5, 0.5)), [])
    assert [r.getMessage() for r in caplog.records] == [
        "pixel_spacing (--pixel-spacing) applies to pictures only; the NIfTI's own spacing was used"
    ]


def test_t1_pixel_spacing_without_a_t1_is_said_unused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from openspine.analysis import _parameters
    from openspine.config import AnalysisConfig
    from openspine.io import load_scan

    scan = load_scan(_nifti(tmp_path, "s.nii.gz", np.ones((8, 8, 3), np.float32), SAG))
    params = _parameters(AnalysisConfig(t1_pixel_spacing=(0.5, 0.5)), scan, None)
    assert params["not_applied"] == {
        "t1_pixel_spacing": "applies to a T1 picture given with --t1; no T1 series was read"
    }
    params = _parameters(AnalysisConfig(t1_pixel_spacing=(0.5, 0.5), use_t1=False), scan, None)
    assert params["not_applied"]["t1_pixel_spacing"].endswith("(--no-t1)")
    params = _parameters(AnalysisConfig(t1_pixel_spacing=(0.5, 0.5)), scan, scan)  # a NIfTI T1 has its own
    assert params["not_applied"] == {"t1_pixel_spacing": "applies to pictures only; the NIfTI's own spacing was used"}
    # said once by the analysis, not only kept in result.json (it had been ignored without a word)
    out = tmp_path / "out"
    main(["analyze", str(tmp_path / "s.nii.gz"), "--t1-pixel-spacing", "0.5", "0.5", "--out", str(out)])
    said = [line for line in capsys.readouterr().err.splitlines() if "--t1-pixel-spacing" in line]
    assert said == [
        "WARNING: t1_pixel_spacing (--t1-pixel-spacing) applies to a T1 picture given with --t1; no T1 series was read"
    ]
    written = json.loads((out / "result.json").read_text())["parameters"]["not_applied"]
    assert written == {"t1_pixel_spacing": "applies to a T1 picture given with --t1; no T1 series was read"}


def test_global_options_also_after_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "none.nii.gz"), "--out", str(tmp_path / "o"), "-q"]) == 1
    assert main(["analyze", str(tmp_path / "none.nii.gz"), "--out", str(tmp_path / "o"), "--log-format", "json"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("openspine: error:") and json.loads(err[-1])["level"] == "error"


def test_help_shows_each_default_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["evaluate", "detection", "--help"])
    out = capsys.readouterr().out
    joined = " ".join(out.split())
    assert "(default: None)" not in joined and "(default: the built-in detector) (default" not in joined
    assert "(default: 0)" in out  # a real default is still shown


@pytest.mark.parametrize(
    "kind", ["recognizer", "orientation", "midline", "levels", "detector", "grader", "grader-t1t2"]
)
def test_a_locally_trained_model_never_claims_the_shipped_version(kind: str) -> None:
    import importlib

    from openspine.cli import TRAIN_KINDS
    from openspine.models import BUILTIN_DIR

    version = importlib.import_module(TRAIN_KINDS[kind]).build_parser().get_default("version")
    assert version.endswith("+local")
    shipped = BUILTIN_DIR / kind / "card.json"
    if shipped.is_file():
        assert version == json.loads(shipped.read_text())["version"] + "+local"


def test_sigterm_ends_analyze_through_its_clean_up(tmp_path: Path) -> None:
    # a zip's extracted images were left in the temporary folder when analyze was killed while reading it
    script = f"""
import os, signal, sys, tempfile
from openspine import cli, commands

def reading_a_zip(args):
    with tempfile.TemporaryDirectory(dir={str(tmp_path)!r}) as tmp:
        open(os.path.join(tmp, "IM0001.dcm"), "wb").close()
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()
    return 0

commands.run_analyze = reading_a_zip
sys.exit(cli.main(["analyze", "scan.zip", "--out", {str(tmp_path / "out")!r}]))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 128 + 15, run.stderr
    assert "Traceback" not in run.stderr and list(tmp_path.iterdir()) == []


def test_a_non_ascii_file_name_is_analysed_in_a_locale_that_is_not_utf8(tmp_path: Path) -> None:
    # its name, decoded to surrogates under LC_ALL=C, had failed the write of report.html and the cohort's Parquet
    from openspine.data import demo_scan_path

    (tmp_path / "in").mkdir()
    shutil.copy(demo_scan_path(), tmp_path / "in" / "Müller.nii.gz")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    env.update(LC_ALL="C", PYTHONUTF8="0", PYTHONIOENCODING="ascii")
    for command in (["analyze", str(tmp_path / "in" / "Müller.nii.gz")], ["batch", str(tmp_path / "in")]):
        run = subprocess.run(
            [sys.executable, "-m", "openspine", *command, "--out", str(tmp_path / command[0]), "-q"],
            capture_output=True,
            env=env,
        )
        assert run.returncode == 0, run.stderr.decode("ascii", "replace")
    assert "Müller.nii.gz" in (tmp_path / "analyze" / "report.html").read_text(encoding="utf-8")
    assert "Müller.nii.gz" in (tmp_path / "batch" / "cases.csv").read_text(encoding="utf-8")


def test_an_interrupted_batch_says_a_rerun_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from openspine import commands

    def interrupted(args: object) -> int:
        raise BatchInterrupted(finished=3, to_analyse=40, earlier=12)

    monkeypatch.setattr(commands, "run_batch", interrupted)
    assert main(["batch", str(tmp_path), "--out", str(tmp_path / "out")]) == 130
    assert (
        "openspine: interrupted: 3 of the 40 cases to analyse were finished, 12 more earlier; the cases finished"
        " are kept, and the same command goes on with the rest" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-format", "json", "analyze", "x.nii.gz", "--out", "o", "--bogus"],
        ["analyze", "x.nii.gz", "--log-format=json"],
        ["--log-format", "json", "frobnicate"],
    ],
    ids=["unknown-option", "missing-out", "unknown-command"],
)
def test_a_refused_command_line_is_one_json_record_under_log_format_json(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # argparse's usage and error lines had come out as plain text, the only lines of such a log not in JSON
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["level"] == "error" and "error: " in record["message"]


@pytest.mark.parametrize(
    ("sequence", "says"),
    [
        ({"value": "T2", "source": "header"}, "T2 (header)"),
        (
            {"value": None, "source": "image", "probability": 0.57, "best_guess": "T2"},
            "sequence unsure (image, T2 likeliest)",
        ),
        ({"value": None, "source": None}, "sequence unsure (not read)"),
        (
            {"value": None, "source": "header", "header": "T2", "best_guess": "T1", "contradicted_by": "image"},
            "sequence unsure (the header says T2, the image reads T1)",
        ),
        (  # the fluid's signal set it aside against an image call that leant to the header's own word
            {
                "value": None,
                "source": "header",
                "header": "T2",
                "best_guess": "T1",
                "contradicted_by": "image",
                "fluid_says": "T1",
                "image_reading": {"value": "T2", "probability": 0.84},
            },
            "sequence unsure (the header says T2, the spinal fluid reads T1)",
        ),
    ],
)
def test_the_summary_line_names_the_sequence_also_when_unsure(sequence: dict, says: str) -> None:
    # an unsure reading (value null) had left the sequence out of the line, as if none had been read
    from types import SimpleNamespace

    from openspine.commands import summary_line

    result = SimpleNamespace(
        vertebrae=[], discs=[], flags=["sequence_uncertain: …"],
        input=SimpleNamespace(sequence=sequence, field_of_view={"value": "lumbar"}),
    )  # fmt: skip
    line = summary_line(Path("scan.png"), result)
    assert f"0 discs, {says}, field of view lumbar; 1 flag (below)" in line, line


@pytest.mark.parametrize("command", [["evaluate", "grading"], ["train", "detector"], ["finetune"]])
def test_quiet_after_a_command_that_hands_on_its_options_is_taken(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    # `openspine evaluate grading --data d -q` had been refused by the kind's own parser ("unrecognized arguments")
    import importlib

    from openspine import cli

    module = "openspine.finetune" if command == ["finetune"] else (
        cli.EVALUATE_KINDS if command[0] == "evaluate" else cli.TRAIN_KINDS
    )[command[-1]]  # fmt: skip
    seen: list[tuple[list[str], bool]] = []
    record = lambda rest, quiet: seen.append((rest, quiet)) or 0  # noqa: E731
    monkeypatch.setattr(importlib.import_module(module), "cli_main", record)
    assert main([*command, "--data", "d", "-q", "--", "-v"]) == 0
    assert seen == [(["--data", "d", "--", "-v"], True)]  # after "--" an option is the kind's own
    assert main([*command, "-qv", "--data", "d"]) == 0 and seen[-1] == (["--data", "d"], True)  # combined too


def test_log_lines_clear_the_progress_bar_line_on_a_terminal_only() -> None:
    # on a terminal the workers' lines had run on after the bar ("…1.22scan/s]INFO: case …")
    import io
    import logging

    from openspine._logging import JsonFormatter, console_setting, log_lines_over_the_bar, log_to_stderr

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    root = logging.getLogger("openspine")
    saved = (list(root.handlers), root.level, root.propagate)
    try:
        for stream, json_lines, cleared in (
            (Terminal(), False, True),
            (io.StringIO(), False, False),
            (Terminal(), True, False),
        ):
            log_to_stderr(logging.INFO, json_lines)
            handler = root.handlers[-1]
            handler.setStream(stream)  # type: ignore[attr-defined]
            log_lines_over_the_bar()
            logging.getLogger("openspine.test").info("case x: wrote result.json")
            assert stream.getvalue().startswith("\r\x1b[KINFO: case x") is cleared, stream.getvalue()
            assert isinstance(handler.formatter, JsonFormatter) is json_lines
            # what a Dask worker is given: the same lines, clearing the line where the command's do
            assert console_setting() == (logging.INFO, json_lines, cleared)
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]


def test_the_summary_line_counts_one_body_and_one_disc_in_the_singular() -> None:
    from types import SimpleNamespace

    from openspine.commands import summary_line
    from openspine.results import Disc

    result = SimpleNamespace(
        vertebrae=[SimpleNamespace(label=None)], discs=[Disc(None, (0, 0, 0), (0, 0, 0))], flags=[],
        input=SimpleNamespace(sequence={}, field_of_view={}),
    )  # fmt: skip
    line = summary_line(Path("scan.png"), result)
    assert line == "scan.png: 1 vertebra (1 unlabelled), 1 disc (none graded); no flags", line


def test_the_summary_line_says_how_many_discs_were_graded() -> None:
    """A scan whose every grade was withheld read '5 discs' like a graded one; the flags said why, the line nothing."""
    from types import SimpleNamespace

    from openspine.commands import summary_line
    from openspine.results import Disc, Grade

    graded, withheld = Grade(2, {"2": 0.9}), Grade(None, None, available=False, note="withheld")

    def line(*discs: dict) -> str:
        result = SimpleNamespace(
            vertebrae=[], discs=[Disc(None, (0, 0, 0), (0, 0, 0), grades=g) for g in discs], flags=[],
            input=SimpleNamespace(sequence={}, field_of_view={}),
        )  # fmt: skip
        return summary_line(Path("scan.png"), result)

    assert "2 discs (all graded);" in line({"pfirrmann": graded}, {"pfirrmann": graded})
    assert "2 discs (1 graded);" in line({"pfirrmann": graded, "modic": withheld}, {"pfirrmann": withheld})
    assert "2 discs (none graded);" in line({"pfirrmann": withheld}, {})
    assert "0 discs;" in line()
    # discs left out of the levels asked are not counted against the grading (T11-T12 of a lumbar scan)
    from openspine.grading.grade import not_graded_unlabelled
    from openspine.levels import DiscLevel
    from openspine.results import NOT_ASKED

    def with_left_out(*discs: dict) -> str:
        levels = [DiscLevel.parse(x) for x in ("L3-L4", "L4-L5", "L5-S1")]
        result = SimpleNamespace(
            vertebrae=[], flags=[], input=SimpleNamespace(sequence={}, field_of_view={}),
            discs=[Disc(DiscLevel.parse("T11-T12"), (0, 0, 0), (0, 0, 0), note=f"{NOT_ASKED} (lumbar)"),
                   Disc(None, (0, 0, 0), (0, 0, 0), note=not_graded_unlabelled("unlabelled disc #2")),
                   *(Disc(lv, (0, 0, 0), (0, 0, 0), grades=g) for lv, g in zip(levels, discs))],
        )  # fmt: skip
        return summary_line(Path("scan.png"), result)

    # an unlabelled disc is at no level asked (it had been counted: "2 of 3" with two levels asked; user test)
    assert "4 discs (all 2 at the levels asked graded);" in with_left_out({"p": graded}, {"p": graded})
    assert "4 discs (1 of 2 at the levels asked graded);" in with_left_out({"p": graded}, {"p": withheld})
    assert "3 discs (none of 1 at the levels asked graded);" in with_left_out({"p": withheld})
    # levels asked where no disc was found count too (a void over L4 and L5 had read 'all 3 … graded'; user test)
    result = SimpleNamespace(
        vertebrae=[], flags=[], input=SimpleNamespace(sequence={}, field_of_view={}),
        parameters={"grade_levels": ["L1-L2", "L2-L3", "L3-L4", "L4-L5"]},
        discs=[Disc(DiscLevel.parse(x), (0, 0, 0), (0, 0, 0), grades={"p": graded}) for x in ("L1-L2", "L2-L3")],
    )  # fmt: skip
    assert "2 discs (2 of 4 at the levels asked graded; L3-L4, L4-L5 not found);" in summary_line(
        Path("scan.png"), result
    )


def test_a_failed_run_leaves_no_earlier_run_s_result_in_its_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A script that checks for result.json after a run on a damaged file had found the earlier scan's (user test)."""
    out = tmp_path / "out"
    assert main(["demo", "--out", str(out), "-q"]) == 0
    (out / "notes.txt").write_text("mine")
    damaged = tmp_path / "damaged.nii.gz"
    damaged.write_bytes(os.urandom(1000))
    assert main(["analyze", str(damaged), "--out", str(out)]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # the earlier outputs went, nothing else
    fresh = tmp_path / "fresh"
    assert main(["analyze", str(damaged), "--out", str(fresh / "deeper")]) == 1
    assert not fresh.exists()  # the folders this run made, left empty: gone too (the outer one had stayed)
    # files of the user's own under output names, with no openspine result among them, are never touched (review)
    own = tmp_path / "own"
    own.mkdir()
    for name in ("report.html", "result.json", "discs.csv"):
        (own / name).write_text("mine")
    assert main(["analyze", str(damaged), "--out", str(own)]) == 1
    assert sorted(p.read_text() for p in own.iterdir()) == ["mine"] * 3


def test_a_failed_re_run_of_the_same_scan_keeps_its_earlier_result(tmp_path: Path) -> None:
    """A good result of this same scan is no other scan's: a failed re-run (a damaged --t1) must not cost it."""
    from openspine.commands import _clear_after_failure

    out = tmp_path / "out"
    assert main(["demo", "--out", str(out), "-q"]) == 0
    scan = Path(json.loads((out / "result.json").read_text())["input"]["path"])
    _clear_after_failure(out, scan, None)
    assert (out / "result.json").is_file() and (out / "overlay.png").is_file()


def test_an_output_folder_name_too_long_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lo").mkdir()
    out = tmp_path / "lo" / ("y" * 300)
    assert main(["demo", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "cannot be used" in err and "Traceback" not in err


def test_a_batch_at_estimated_sizes_names_the_pixel_spacing_table_where_pictures_were_not_all_graded(
    tmp_path: Path,
) -> None:
    """Each result's reason names --pixel-spacing, which a batch gives every picture alike; the run's last lines name
    the table that gives each picture its own size, and only where such a picture lost grades."""
    import csv

    from openspine.commands import estimated_size_hint

    def hint(*rows: dict[str, str]) -> str | None:
        path = tmp_path / "cases.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=["case", "format", "withheld", "all_flags"])
            w.writeheader()
            w.writerows(rows)
        return estimated_size_hint(path)

    estimated = "pixel_spacing_estimated: 0.600 mm per pixel ... | labelling_ambiguous: no sacrum visible"
    for_it = "grades_withheld: L1-L2 (the labels are flagged and the pixel size was estimated from the bodies ...)"
    graded = {"case": "a", "format": "image", "withheld": "", "all_flags": estimated}
    withheld = {"case": "b", "format": "image", "withheld": for_it, "all_flags": estimated}
    other = {"case": "c", "format": "image", "withheld": "grades_withheld: L1 (a void)", "all_flags": estimated}
    given = {"case": "d", "format": "image", "withheld": for_it, "all_flags": "grades_withheld: ..."}
    volume = {"case": "e", "format": "nifti", "withheld": for_it, "all_flags": estimated}
    assert hint(graded, other, given, volume) is None
    said = hint(graded, withheld, given)
    assert (
        said is not None
        and said.startswith("1 picture(s) read at an estimated pixel size")
        and ("--pixel-spacing-table" in said)
    ), said
    assert estimated_size_hint(tmp_path / "none.csv") is None
