"""A pixel-size table gives each picture of a batch its own pixel size: pictures exported at different sizes are each
read at theirs; a picture it does not list takes --pixel-spacing, else is skipped with the reason."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import pytest

from openspine.batch.runner import run_batch
from openspine.batch.spacing import read_spacing_table
from openspine.cli import main
from openspine.config import AnalysisConfig
from openspine.errors import ConfigError


def _table(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("file,row_mm\na.png,0.5\n", r"needs the columns path, row_mm, col_mm"),
        ("path,row_mm,col_mm\na.png,0,0.5\n", r"t.csv:2: the pixel size of 'a.png' must be a positive number of mm"),
        ("path,row_mm,col_mm\na.png,x,0.5\n", r"t.csv:2: the pixel size of 'a.png' must be .*got 'x', '0.5'$"),
        ("path,row_mm,col_mm\na.png,0.5,0.5\n./a.png,0.6,0.6\n", r"t.csv:3: './a.png' is listed twice"),
        ("path,row_mm,col_mm\n,0.5,0.5\n", r"t.csv:2: empty 'path'"),
        ("path,row_mm,col_mm\na.png,auto,\n", r"got 'auto' \(for estimated sizes use --pixel-spacing auto\)"),
        ("path,row_mm,col_mm\na.png,0.5,0.5\nb.png,0.5,0.5,extra\n", r"t.csv:3: more cells than the columns"),
        (
            "path,row_mm,col_mm\na.png,0.5,0.5\n\n\nb.png,abc,\n",
            r"t.csv:5: the pixel size of 'b.png'",
        ),  # the file's line
    ],
)
def test_a_bad_table_is_refused_naming_file_and_line(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        read_spacing_table(_table(tmp_path / "t.csv", text), tmp_path)


def test_square_pixels_and_absolute_paths(tmp_path: Path) -> None:
    table = read_spacing_table(
        _table(tmp_path / "t.csv", f"path,row_mm,col_mm\na.png,0.5,\n{tmp_path}/b.png,0.4,0.6\n"), tmp_path
    )
    assert table.of(tmp_path / "a.png") == (0.5, 0.5)
    assert table.of(tmp_path / "sub" / ".." / "b.png") == (0.4, 0.6)
    assert table.of(tmp_path / "c.png") is None


def _pictures(shared_data: Path, root: Path) -> dict[str, tuple[float, float]]:
    """Three real SPIDER T2 pictures at their own pixel sizes (from each patient's meta.json)."""
    sizes = {}
    for patient, rel in (("1", "a/p1.png"), ("100", "b/p100.png"), ("104", "p104.png")):
        folder = shared_data / "spider" / patient
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / "image.png", root / rel)
        row, col = json.loads((folder / "meta.json").read_text())["pixel_spacing_mm"]
        sizes[rel] = (float(row), float(col))
    return sizes


def test_each_picture_is_read_at_its_own_size(shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    root, out = tmp_path / "in", tmp_path / "out"
    sizes = _pictures(shared_data, root)
    listed = {k: v for k, v in sizes.items() if k != "p104.png"}
    rows = [f"{rel},{r},{c}" for rel, (r, c) in listed.items()] + ["gone.png,1,1"]
    table = _table(tmp_path / "sizes.csv", "path,row_mm,col_mm\n" + "\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING, logger="openspine"):
        summary = run_batch(root, out, formats=("json",), pixel_spacing_table=table)
    assert summary.done == 2
    assert "1 of 3 rows of the pixel-size table " in caplog.text
    assert "sizes.csv name no picture under the input folder (e.g. " in caplog.text and "gone.png)" in caplog.text
    for rel, (row, col) in listed.items():
        doc = json.loads((out / "cases" / rel.removesuffix(".png").replace("/", "__") / "result.json").read_text())
        assert doc["input"]["spacing_mm"][:2] == [round(row, 3), round(col, 3)]
        assert not any(f.startswith("pixel_spacing_estimated") for f in doc["flags"])
        assert [v["label"] for v in doc["vertebrae"]][-2:] == ["L5", "S1"]
    with open(out / "skipped.csv", newline="") as f:
        (skipped,) = list(csv.DictReader(f))
    assert skipped["path"] == "p104.png" and "not listed in the pixel-size table sizes.csv" in skipped["reason"]
    # --pixel-spacing then covers the pictures the table does not list; the listed ones are kept as finished
    # (formats default to the command line's: json, csv, png, html; the two finished cases lack png and html)
    summary = run_batch(root, out, config=AnalysisConfig(pixel_spacing=(0.7, 0.7)), pixel_spacing_table=table)
    assert (summary.done, summary.skipped, summary.redone) == (3, 0, 2)
    assert {"overlay.png", "report.html", "discs.csv"} <= {p.name for p in (out / "cases" / "p104").iterdir()}
    doc = json.loads((out / "cases" / "p104" / "result.json").read_text())
    assert doc["input"]["spacing_mm"][:2] == [0.7, 0.7]


def test_a_mask_listed_in_the_table_is_still_skipped(shared_data: Path, tmp_path: Path) -> None:
    from openspine.batch.discover import discover_cases

    root = tmp_path / "in"
    _pictures(shared_data, root)
    shutil.copy(root / "p104.png", root / "p104_mask.png")
    table = read_spacing_table(
        _table(tmp_path / "t.csv", "path,row_mm,col_mm\np104.png,0.7,\np104_mask.png,0.7,\n"), root
    )
    cases, skipped = discover_cases(root, spacings=table)
    assert [c.case_id for c in cases] == ["p104"]
    assert {s.path: s.reason for s in skipped}["p104_mask.png"].startswith("looks like a label map")


def test_cli_dry_run_shows_each_size(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "in"
    _pictures(shared_data, root)
    table = _table(tmp_path / "sizes.csv", "path,row_mm,col_mm\na/p1.png,0.625,0.625\n")
    argv = ["batch", str(root), "--out", str(tmp_path / "out"), "--pixel-spacing-table", str(table), "--dry-run"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "a__p1  [image]" in out and "(pixel 0.625 x 0.625 mm)" in out
    assert "1 case(s) found" in out and "p104.png: 2D picture not listed in the pixel-size table" in out


def test_a_dry_run_warns_of_table_rows_naming_no_picture_as_the_run_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    from PIL import Image

    root = tmp_path / "in"
    root.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "p1.png")
    table = _table(tmp_path / "sizes.csv", "path,row_mm,col_mm\np1.png,0.7,0.7\ngone.png,1,1\n")
    argv = ["batch", str(root), "--pixel-spacing-table", str(table), "--dry-run", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "1 of 2 rows of the pixel-size table " in err and "gone.png)" in err
    assert "1 case(s) found" in out and out.rstrip().endswith("0 file(s) skipped")  # no colon before nothing
