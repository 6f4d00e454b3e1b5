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


def test_a_missing_model_in_the_options_file_is_named_as_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from openspine.data import demo_scan_path

    options = tmp_path / "options.json"
    options.write_text(json.dumps({"grader": "no-such-folder/grader"}))
    argv = ["analyze", str(demo_scan_path()), "--out", str(tmp_path / "o"), "--config", str(options)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    # it had named '--grader', an option nobody gave
    assert f"'grader' in the options file {options}: no model folder at" in err and "--grader" not in err
    assert main([*argv, "--grader", str(tmp_path / "given")]) == 1  # given on the command line, it wins
    assert "--grader: no model folder at" in capsys.readouterr().err


def test_pixel_spacing_is_two_numbers_one_for_square_pixels_or_auto() -> None:
    assert AnalysisConfig.from_mapping({"pixel_spacing": [0.5, 0.6]}).pixel_spacing == (0.5, 0.6)
    assert AnalysisConfig.from_mapping({"pixel_spacing": 0.5}).pixel_spacing == (0.5, 0.5)
    assert AnalysisConfig.from_mapping({"t1_pixel_spacing": ["0.7"]}).t1_pixel_spacing == (0.7, 0.7)
    auto = AnalysisConfig.from_mapping({"pixel_spacing": "Auto"})
    assert auto.pixel_spacing == "auto" and auto.to_dict()["pixel_spacing"] == "auto"
    assert AnalysisConfig.from_mapping(auto.to_dict()) == auto
    for bad in ([0.5, 0.5, 0.5], "automatic", [0.0, 1.0], [float("nan"), 1.0], True, [True, 0.5]):  # True: not 1 mm
        with pytest.raises(ConfigError, match="pixel_spacing must be"):
            AnalysisConfig.from_mapping({"pixel_spacing": bad})


def test_cli_reads_pixel_spacing_auto_and_refuses_a_wrong_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from openspine.data import demo_scan_path

    # a file with geometry of its own keeps it: "auto" changes nothing there
    assert main(["-q", "analyze", str(demo_scan_path()), "--pixel-spacing", "auto", "--out", str(tmp_path / "o")]) == 0
    doc = json.loads((tmp_path / "o" / "result.json").read_text())
    assert doc["parameters"]["pixel_spacing"] == "auto"
    assert not [f for f in doc["flags"] if f.startswith("pixel_spacing_estimated")]
    assert main(["analyze", str(demo_scan_path()), "--pixel-spacing", "1", "2", "3", "--out", str(tmp_path / "x")]) == 2
    assert '--pixel-spacing must be [row_mm, col_mm] or "auto"' in capsys.readouterr().err


def test_a_config_made_directly_is_checked_and_normalised_as_from_mapping() -> None:
    """AnalysisConfig(...) in Python reads values as from_mapping and --config do: 'Auto' was taken as a pixel size
    of ['A','u','t','o'] (read at 1 mm, no estimate), 't2' withheld every grade, 'all' crashed in analyze."""
    from openspine.config import AUTO, AnalysisConfig
    from openspine.levels import DiscLevel

    made = AnalysisConfig(pixel_spacing="Auto", sequence="t2", grade_levels="all", grader=Path("m"))
    assert (made.pixel_spacing, made.sequence, made.grade_levels, made.grader) == (AUTO, "T2", None, "m")
    assert AnalysisConfig(pixel_spacing=0.6, grade_levels=["l4/l5"]).pixel_spacing == (0.6, 0.6)
    assert AnalysisConfig(grade_levels="L4-L5,L5-S1").grade_levels == (DiscLevel.L4_L5, DiscLevel.L5_S1)
    assert AnalysisConfig(**{"grade_levels": "lumbar"}) == AnalysisConfig()
    # numpy scalars, as nibabel and numpy code give them
    import numpy as np

    assert AnalysisConfig(pixel_spacing=np.float32(0.5)).pixel_spacing == (0.5, 0.5)
    assert AnalysisConfig(use_t1=np.bool_(False)).use_t1 is False
    for bad, match in (
        ({"engine": "foo"}, "engine must be one of"),
        ({"use_t1": "no"}, "use_t1 must be true or false"),
        ({"pixel_spacing": 0}, "two positive numbers"),
        ({"grade_levels": 5}, "grade_levels must be"),
        ({"sequence": "T3"}, "sequence must be one of"),
        ({"grade_levels": []}, "grade_levels is empty"),
    ):
        with pytest.raises(ConfigError, match=match):
            AnalysisConfig(**bad)


def test_levels_print_as_their_value() -> None:
    from openspine.levels import DiscLevel, Grading, Level

    assert f"{DiscLevel.L2_L3}" == "L2-L3" and str(Level.S1) == "S1" and f"{Grading.PFIRRMANN:>10}" == " pfirrmann"


def test_a_model_folder_in_an_options_file_is_found_beside_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "study" / "my-grader").mkdir(parents=True)
    options = tmp_path / "study" / "options.json"
    options.write_text(json.dumps({"grader": "my-grader", "detector": "detector"}))
    monkeypatch.chdir(tmp_path)  # elsewhere: the folder is still the one beside the file
    cfg = AnalysisConfig.from_file(options)
    assert cfg.grader == str((tmp_path / "study" / "my-grader").resolve())
    assert cfg.detector == "detector"  # a built-in model's name stays a name


def test_a_model_folder_given_relative_is_recorded_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a result read back in another working folder must still find the grader card its report legend comes from
    (tmp_path / "my-grader").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = AnalysisConfig(grader="my-grader", detector="detector", paired_grader="./gone")
    assert cfg.grader == str((tmp_path / "my-grader").resolve())
    assert cfg.detector == "detector"  # a built-in model's name, no folder here: as given
    assert cfg.paired_grader == "./gone"  # no such folder: as given, for the model check to name


def test_the_engine_in_the_options_file_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # --engine's command-line default had overridden the file's engine: openspine's models ran without a word
    from openspine import commands
    from openspine.data import demo_scan_path
    from openspine.errors import ConfigError

    seen: list[str] = []

    def stop(config: AnalysisConfig) -> None:
        seen.append(config.engine)
        raise ConfigError("stopped here")

    monkeypatch.setattr(commands, "_check_engine", stop)
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"engine": "spinenet"}))
    argv = ["analyze", str(demo_scan_path()), "--out", str(tmp_path / "o"), "--config", str(options)]
    assert main(argv) == 1 and seen == ["spinenet"]
    assert main([*argv, "--engine", "openspine"]) == 1 and seen[-1] == "openspine"  # the command line wins
    assert main(argv[:4]) == 1 and seen[-1] == "openspine"  # neither: openspine's own


def test_spinenet_weights_without_spinenet_s_engine_are_said_not_to_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """They had been ignored without a word (user test): the run reads openspine's own models, and says so on stderr
    and in result.json, as for other options that do not apply; an options file's weights under --engine openspine
    are the same case."""
    from openspine.data import demo_scan_path

    argv = ["analyze", str(demo_scan_path()), "--out", str(tmp_path / "o"), "--spinenet-weights", str(tmp_path)]
    assert main(argv) == 0
    assert "spinenet_weights (--spinenet-weights) applies to engine 'spinenet' only" in capsys.readouterr().err
    doc = json.loads((tmp_path / "o" / "result.json").read_text())
    assert "spinenet_weights" in doc["parameters"]["not_applied"]
