"""Typed analysis options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openspine.cli import main
from openspine.config import AnalysisConfig
from openspine.errors import ConfigError
from openspine.levels import LUMBAR_DISCS, DiscLevel


def test_defaults_grade_the_lumbar_discs() -> None:
    assert AnalysisConfig().grade_levels == LUMBAR_DISCS
    assert AnalysisConfig.from_mapping({"grade_levels": "all"}).grade_levels is None
    cfg = AnalysisConfig.from_mapping({"grade_levels": "L4-L5,l5/s1"})
    assert cfg.grade_levels == (DiscLevel.L4_L5, DiscLevel.L5_S1)


def test_unknown_keys_are_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="unknown analysis option 'grader_dir'. Did you mean 'grader'"):
        AnalysisConfig.from_mapping({"grader_dir": "x"})


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    cfg = AnalysisConfig.from_mapping({"series": 7, "pixel_spacing": 0.5, "grade_levels": ["L1-L2"]})
    path = tmp_path / "options.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert AnalysisConfig.from_file(path) == cfg


def test_the_options_used_are_saved_in_the_result(tmp_path: Path) -> None:
    from openspine.data import demo_scan_path

    options = tmp_path / "options.json"
    options.write_text(json.dumps({"grade_levels": "all"}))
    assert main(["analyze", str(demo_scan_path()), "--out", str(tmp_path / "o"), "--config", str(options)]) == 0
    doc = json.loads((tmp_path / "o" / "result.json").read_text())
    assert doc["parameters"]["grade_levels"] == "all"


def test_bad_options_file_is_a_clear_cli_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from openspine.data import demo_scan_path

    options = tmp_path / "options.json"
    options.write_text(json.dumps({"levels": "all"}))
    assert main(["analyze", str(demo_scan_path()), "--out", str(tmp_path / "o"), "--config", str(options)]) == 1
    assert "unknown analysis option 'levels'" in capsys.readouterr().err
