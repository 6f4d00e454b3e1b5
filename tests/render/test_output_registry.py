"""The registry of outputs: --formats help, validation and the files written all come from writers.OUTPUTS."""

from __future__ import annotations

from pathlib import Path

import pytest

from openspine.errors import ConfigError
from openspine.writers import DEFAULT_FORMATS, FORMATS, OUTPUTS, formats_help, parse_formats, write_result


def test_help_and_validation_come_from_the_registry() -> None:
    names = [f.name for f in OUTPUTS]
    assert tuple(names) == FORMATS and set(DEFAULT_FORMATS) <= set(FORMATS)
    assert ",".join(names) in formats_help() and "openspine[dicom]" in formats_help()
    assert parse_formats("all") == FORMATS
    with pytest.raises(ConfigError, match="choose from " + ", ".join(names)):
        parse_formats("json,tiff")


def test_each_output_writes_the_files_it_declares(tmp_path: Path) -> None:
    from openspine.analysis import analyze
    from openspine.data import demo_scan_path

    result = analyze(demo_scan_path())
    chosen = [f for f in OUTPUTS if not f.needs_dicom]
    files = write_result(result, tmp_path / "out", [f.name for f in chosen])
    assert sorted(files) == sorted(name for f in chosen for name in f.files)
    assert list(files)[-1] == "result.json"  # written last: it marks a finished case
