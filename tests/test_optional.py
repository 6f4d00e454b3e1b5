"""Commands check their optional packages, inputs and output folder before any long work, and fail in one line
that names the extra to install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from openspine._optional import is_installed, require_optional
from openspine.cli import main
from openspine.errors import MissingDependencyError
from openspine.writers import require_for_formats


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` look uninstalled (an import raises ImportError, find_spec returns None)."""
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("openspine: error: ")
    return lines[0]


def test_require_optional_names_every_missing_module_and_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "onnx", "onnxscript")
    assert not is_installed("onnx") and is_installed("json")
    with pytest.raises(MissingDependencyError) as info:
        require_optional(("json", "onnx", "onnxscript"), "training")
    message = str(info.value)
    assert "'onnx', 'onnxscript'" in message and "pip install 'openspine[train]'" in message
    assert "\n" not in message
    # and how to get the CPU-only PyTorch: pip's default Linux wheel is the CUDA build, several GB
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in message
    require_optional(("json",), "nothing")  # all there: no error


def test_require_for_formats_checks_highdicom_only_for_seg_and_sr(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "highdicom")
    require_for_formats(("json", "csv"), "batch")
    with pytest.raises(MissingDependencyError, match=r"openspine\[dicom\]"):
        require_for_formats(("json", "seg"), "batch")


def test_unknown_module_gets_a_plain_pip_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "no_such_openspine_module")
    with pytest.raises(MissingDependencyError, match="pip install no_such_openspine_module"):
        require_optional(("no_such_openspine_module",), "a test")


@pytest.mark.parametrize("missing", ["onnx", "onnxscript", "torch"])
def test_finetune_without_an_export_package_fails_before_training(
    missing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _hide(monkeypatch, missing)
    monkeypatch.delitem(sys.modules, "openspine.finetune.core", raising=False)
    labels = tmp_path / "labels.csv"
    labels.write_text("scan,level,bulging\nscan.nii.gz,L4-L5,1\n")
    rc = main(["finetune", "--scans", str(tmp_path), "--labels", str(labels), "--out", str(tmp_path / "model")])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 1
    assert f"'{missing}'" in line and "openspine[train]" in line and "openspine finetune" in line
    assert "openspine.finetune.core" not in sys.modules  # the training code was never loaded
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("kind", ["detector", "grader"])
def test_train_without_onnx_fails_before_training(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _hide(monkeypatch, "onnx")
    import openspine.training.detector as detector

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr(detector, "train", no_training)
    monkeypatch.setattr(detector, "build_cache", no_training)
    data = tmp_path / "data"
    data.mkdir()
    (data / "index.csv").write_text("")
    rc = main(["train", kind, "--data", str(data), "--out", str(tmp_path / "model")])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 1
    assert "'onnx'" in line and "openspine[train]" in line and f"openspine train {kind}" in line
    assert not (tmp_path / "model").exists()


def test_train_refuses_a_missing_input_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if not all(is_installed(m) for m in ("torch", "onnx", "onnxscript")):
        pytest.skip("needs openspine[train] installed (the package check comes first)")
    rc = main(["train", "detector", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "model")])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 1 and "--data" in line and "does not exist" in line
    assert not (tmp_path / "model").exists()


def test_batch_cluster_without_dask_fails_before_any_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _hide(monkeypatch, "distributed")
    import openspine.batch.runner as runner

    def no_discovery(*args: object, **kwargs: object) -> None:
        raise AssertionError("cases were discovered")

    monkeypatch.setattr(runner, "discover_cases", no_discovery)
    (tmp_path / "in").mkdir()
    rc = main(["batch", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--cluster", "local:2"])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 1 and "'distributed'" in line and "openspine[distributed]" in line
    assert not (tmp_path / "out").exists()


def _tiny_dicom_series(folder: Path) -> None:
    import numpy as np

    if str(Path(__file__).parent) not in sys.path:
        sys.path.insert(0, str(Path(__file__).parent))
    from dicom_fixtures import write_series

    write_series(folder, np.zeros((8, 8, 3), np.uint16), np.diag([1.0, 1.0, 4.0, 1.0]))


def test_batch_seg_without_highdicom_fails_before_any_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _hide(monkeypatch, "highdicom")
    _tiny_dicom_series(tmp_path / "in" / "case1")
    rc = main(["batch", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--formats", "json,seg"])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 1 and "'highdicom'" in line and "openspine[dicom]" in line
    assert not (tmp_path / "out").exists()


def test_formats_all_without_highdicom_needs_it_only_for_dicom_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SEG/SR are written for DICOM input only, so a NIfTI run with --formats all does not need highdicom: it is
    analysed and result.json says why SEG/SR were not written. A batch root of NIfTI files passes the check too."""
    import json
    import shutil

    from openspine.batch import runner
    from openspine.data import demo_scan_path

    _hide(monkeypatch, "highdicom")
    code = main(["--quiet", "analyze", str(demo_scan_path()), "--formats", "all", "--out", str(tmp_path / "out")])
    assert code == 0
    not_run = json.loads((tmp_path / "out" / "result.json").read_text())["steps_not_run"]
    assert any("SEG" in str(v) for v in not_run.values()), not_run
    (tmp_path / "in").mkdir()
    shutil.copy(demo_scan_path(), tmp_path / "in" / demo_scan_path().name)
    runner._require_for_formats(("json", "seg", "sr"), tmp_path / "in", runner.AnalysisConfig())
    _tiny_dicom_series(tmp_path / "in" / "case2")
    with pytest.raises(MissingDependencyError, match="openspine\\[dicom\\]"):
        runner._require_for_formats(("json", "seg", "sr"), tmp_path / "in", runner.AnalysisConfig())


def test_analyze_with_seg_output_and_no_highdicom_fails_before_the_analysis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:

    _hide(monkeypatch, "highdicom")
    _tiny_dicom_series(tmp_path / "dicom")
    code = main(["analyze", str(tmp_path / "dicom"), "--formats", "json,seg", "--out", str(tmp_path / "out")])
    assert code == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "openspine[dicom]" in line
    assert not (tmp_path / "out").exists()  # nothing written, no analysis run


def test_a_package_installed_but_broken_fails_the_check_before_long_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package found on the path that raises on import had passed the check (it only looked the package up): a
    broken onnx let a 10-minute training start and fail at its ONNX export (user test)."""
    from openspine._optional import require_optional
    from openspine.errors import MissingDependencyError

    (tmp_path / "brokenpkg_for_test").mkdir()
    (tmp_path / "brokenpkg_for_test" / "__init__.py").write_text("raise ImportError('libfoo.so: cannot open')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingDependencyError) as err:
        require_optional(["json", "brokenpkg_for_test"], "openspine train grader")
    said = str(err.value)
    assert "'brokenpkg_for_test' (ImportError: libfoo.so: cannot open)" in said and "do not import" in said, said
    assert "\n" not in said
    require_optional(["json"], "anything")  # installed and importing: nothing said
