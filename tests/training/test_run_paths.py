"""Every training, evaluation and fine-tuning command checks its data folder, its output path and its options before
any work, and says what is wrong in one line (exit status 1 or 2): they had failed with a traceback, or after the
work, or ended with status 0 having written nothing (user test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openspine.cli import main
from openspine.errors import ConfigError, OutputError
from openspine.training.common import check_run_paths


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "index.csv").write_text("id,split\n", encoding="utf-8")
    return data


def test_the_data_folder_and_the_output_folder_are_checked_in_one_place(tmp_path: Path) -> None:
    data = _data(tmp_path)
    with pytest.raises(ConfigError, match="is not the shared data folder: it has no index.csv"):
        check_run_paths(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match="'.*afile' is an existing file; choose another --out"):
        check_run_paths(data, tmp_path / "afile")
    with pytest.raises(ConfigError, match="lies inside the data folder"):
        check_run_paths(data, data / "model")
    assert not (data / "model").exists()
    assert check_run_paths(data, tmp_path / "out").is_dir()
    assert check_run_paths(None, tmp_path / "out2").is_dir()  # a detector trained from a cache has no --data


@pytest.mark.parametrize("kind", ["midline", "orientation", "recognizer", "grader", "levels"])
def test_every_training_kind_says_in_one_line_what_is_wrong_with_its_paths(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data(tmp_path)
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    for args, said in (
        (["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m")], "is not the shared data folder"),
        (["--data", str(data), "--out", str(tmp_path / "afile")], "is an existing file"),
        (["--data", str(data), "--out", str(data / "m")], "lies inside the data folder"),
    ):
        assert main(["-q", "train", kind, *args]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0] and "Traceback" not in err[0], err


def test_detector_epochs_0_without_a_cache_to_write_is_refused(tmp_path: Path) -> None:
    from openspine.training.detector import TrainConfig, train_detector

    with pytest.raises(ConfigError, match="--epochs 0 trains nothing: .* --write-cache"):
        train_detector(out=tmp_path / "m", data=_data(tmp_path), config=TrainConfig(epochs=0))


def test_grader_heads_and_holdout_are_checked_before_the_discs_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openspine.training import grader

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the discs were looked for before the options were checked")

    monkeypatch.setattr("openspine.training.datasets.discs.located_samples", no_work)
    data = _data(tmp_path)
    with pytest.raises(ConfigError, match=r"--heads: unknown gradings \['bogus'\]"):
        grader.train_grader(grader.GraderTrainingOptions(data=data, out=tmp_path / "m", heads=("bogus",)))
    with pytest.raises(ConfigError, match="--holdout must be 0"):
        grader.train_grader(grader.GraderTrainingOptions(data=data, out=tmp_path / "m", holdout=-1))
    with pytest.raises(ConfigError, match="--heads names no grading"):
        grader.train_grader(grader.GraderTrainingOptions(data=data, out=tmp_path / "m", heads=(" ",)))


def test_a_holdout_of_every_train_patient_is_refused_before_the_discs_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It had failed with a KeyError in the stacker, after every scan's discs were found (user test)."""
    from openspine.training import grader

    from ..conftest import shared_data_or_skip

    data = shared_data_or_skip()

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the discs were looked for before the holdout was checked")

    monkeypatch.setattr("openspine.training.datasets.discs.located_samples", no_work)
    with pytest.raises(ConfigError, match="--holdout 100000 leaves no training patient: the train split has 120"):
        grader.train_grader(grader.GraderTrainingOptions(data=data, out=tmp_path / "m", holdout=100000))
