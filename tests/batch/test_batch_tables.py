"""The cohort tables are written from spooled rows: each Parquet column gets the type it had when every row was held
in memory (:func:`_typed_as_before`, the rule the tables were written by then), whatever order its cells come in."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from openspine.batch.tables import _TEXT_COLUMNS, _ColumnStats, _number, _Spool, _typed_cells, _valid_text
from openspine.results import NUMERIC_COLUMNS

pa = pytest.importorskip("pyarrow")

COLUMNS = {
    "grade": [1, 2, None, "", 3],
    "probability": [0.5, 1, "", 0.25],
    "labelling_flagged": [True, False, None, ""],
    "subject": ["01", "02", ""],  # a text column stays text: 01 stays 01
    "level": ["L4-L5", "", None],
    "mixed": [True, 1, "x"],
    "number_text": ["12", "-3", ""],
    "empty": ["", None, ""],
    "note": ["", "withheld: …", "3"],
    "series_description": ["²", "t2_tse"],  # a digit that is no number: int("²") raises
    "centroid_mm_x": [1.5, float("nan"), 2],
}


def _typed_as_before(values: list[Any], name: str) -> list[Any]:
    """A column's cells as the tables typed them with every row in memory (before the rows were spooled)."""
    cells = [None if v is None or v == "" else v for v in values]
    if cells and all(isinstance(v, bool) for v in cells if v is not None) and any(v is not None for v in cells):
        return cells
    numbers = [None if v is None else _number(v) for v in cells]
    every_one = all(n is not None for n, v in zip(numbers, cells) if v is not None)
    if name not in _TEXT_COLUMNS and every_one and (name in NUMERIC_COLUMNS or any(n is not None for n in numbers)):
        return numbers
    return [None if v is None else _valid_text(str(v)) for v in cells]


def _same(value: object) -> object:
    """A cell as compared: NaN equal to NaN."""
    return "nan" if isinstance(value, float) and value != value else value


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_a_column_is_typed_as_when_all_its_cells_were_at_hand(name: str) -> None:
    for cells in itertools.permutations(COLUMNS[name]):
        expected = pa.array(_typed_as_before(list(cells), name))
        stats = _ColumnStats()
        for v in cells:
            stats.see(v)
        kind = stats.arrow_type(name)
        assert kind == expected.type, (name, cells)
        got = pa.array(_typed_cells(list(cells), kind), type=kind)
        assert [_same(v) for v in got.to_pylist()] == [_same(v) for v in expected.to_pylist()]


def test_the_spool_gives_back_its_rows_in_order(tmp_path: Path) -> None:
    spool = _Spool(tmp_path)
    rows = [{"case": f"c{i}", "grade": i, "name": "sub-\udcff"} for i in range(5)]  # an undecodable file name too
    for row in rows:
        spool.add(row)
    assert list(spool.rows()) == rows and list(spool.rows()) == rows and spool.count == 5
    assert list(spool.stats) == ["case", "grade", "name"]
    spool.close()
    assert list(tmp_path.iterdir()) == []  # nothing left in the output folder


def test_cases_csv_gives_the_likeliest_sequence_where_it_is_unknown() -> None:
    """A header's word set aside had shown an empty sequence beside source "header", as if the header had said
    nothing (user test); the likeliest sequence is in its own column."""
    from openspine.batch.tables import CASE_COLUMNS, _case_row

    sequence = {"value": None, "source": "header", "header": "T2", "best_guess": "other", "contradicted_by": "image"}
    row = _case_row({"flags": []}, {"sequence": sequence})
    assert (row["sequence"], row["sequence_source"], row["sequence_best_guess"]) == (None, "header", "other")
    assert list(row) == CASE_COLUMNS
    sure = _case_row({"flags": []}, {"sequence": {"value": "T2", "source": "header"}})
    assert sure["sequence_best_guess"] is None


def test_cases_csv_names_the_levels_each_case_was_asked_to_grade() -> None:
    from openspine.batch.tables import _case_row

    def asked(parameters: object) -> str:
        return str(_case_row({"flags": [], "parameters": parameters}, {})["levels_asked"])

    assert asked({"grade_levels": ["L4-L5", "L5-S1"]}) == "L4-L5;L5-S1"
    assert asked({"grade_levels": "all"}) == asked({"grade_levels": None}) == "all"  # --levels all: every disc found
    assert asked({}) == asked(None) == ""  # a result.json written without its parameters
