"""Each learning command is a typed function; its argparse wrapper only fills the options (same defaults)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openspine.errors import ConfigError
from openspine.training.common import options_from


def test_train_grader_command_defaults_are_the_function_defaults(tmp_path: Path):
    from openspine.train_grader_cli import build_parser, options_from_args
    from openspine.training.grader import GraderTrainingOptions

    args = build_parser().parse_args(["--out", str(tmp_path / "m")])
    assert options_from_args(args) == GraderTrainingOptions(data=Path("../shared/data"), out=tmp_path / "m")
    args = build_parser().parse_args(["--out", "m", "--heads", "pfirrmann,bulging", "--stack-folds", "0"])
    options = options_from_args(args)
    assert options.heads == ("pfirrmann", "bulging") and options.stack_folds == 0


def test_finetune_command_defaults_are_the_function_defaults():
    from openspine.finetune import FinetuneOptions, build_parser

    args = build_parser().parse_args(["--out", "m"])
    assert options_from(FinetuneOptions, args) == FinetuneOptions()
    args = build_parser().parse_args(["--out", "m", "--no-freeze-backbone", "--epochs", "3"])
    assert options_from(FinetuneOptions, args) == FinetuneOptions(freeze_backbone=False, epochs=3)


def test_train_detector_command_defaults_are_the_config_defaults():
    from openspine.training.detector import TrainConfig, build_parser

    args = build_parser().parse_args(["--data", "d", "--out", "o"])
    assert options_from(TrainConfig, args) == TrainConfig()


def test_train_grader_checks_its_data_folder(tmp_path: Path):
    for module in ("torch", "onnx", "onnxscript"):
        pytest.importorskip(module)
    from openspine.training.grader import GraderTrainingOptions, train_grader

    with pytest.raises(ConfigError, match="not the shared data folder"):
        train_grader(GraderTrainingOptions(data=tmp_path, out=tmp_path / "model"))
