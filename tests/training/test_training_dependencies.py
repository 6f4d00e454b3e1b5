"""Every training command checks for the whole train extra before it starts: without onnx, training would run to
the end and fail at the ONNX export, leaving a checkpoint behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from openspine.errors import MissingDependencyError


@pytest.mark.parametrize("kind", ["recognizer", "orientation"])
def test_missing_onnx_is_said_before_training(kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from openspine.training.orientation import train_orientation
    from openspine.training.recognizer import train_recognizer

    monkeypatch.setitem(sys.modules, "onnx", None)  # looks uninstalled: import fails, find_spec finds nothing
    train = train_recognizer if kind == "recognizer" else train_orientation
    with pytest.raises(MissingDependencyError, match=r"onnx.*openspine\[train\]"):
        train(tmp_path / "data", tmp_path / "out")
    assert not (tmp_path / "out").exists()
