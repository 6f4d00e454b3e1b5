"""Result records: JSON that follows the schema, CSV rows, DataFrames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openspine.levels import DiscLevel, Grading, Level
from openspine.results import AnalysisResult, Disc, Grade, InputInfo, ModelInfo, SliceOutline, Vertebra, vec3
from openspine.scan import Scan
from openspine.schema import SchemaError, validate_result

AFFINE = np.array([[0, 0, 4.0, 0], [0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]])


def _result() -> AnalysisResult:
    scan = Scan(np.ones((20, 20, 3)), AFFINE)
    corners = tuple(vec3(c) for c in ((1, 1, 1), (1, 5, 1), (5, 5, 1), (5, 1, 1)))
    outline = SliceOutline(1, corners, corners)  # type: ignore[arg-type]
    vertebra = Vertebra(Level.L4, 0.97, vec3((3, 3, 1)), vec3((4.0, -1.5, -1.5)), (outline,), 1)
    grades = {
        Grading.PFIRRMANN: Grade(3, {"1": 0.05, "2": 0.15, "3": 0.6, "4": 0.15, "5": 0.05}),
        Grading.CENTRAL_CANAL_STENOSIS: Grade(None, None, available=False, note="no built-in model"),
    }
    disc = Disc(DiscLevel.L4_L5, vec3((7, 3, 1)), vec3((4.0, -1.5, -3.5)), (), grades)
    return AnalysisResult(
        input=InputInfo.from_scan(scan),
        vertebrae=(vertebra,),
        discs=(disc,),
        models=(ModelInfo("detector", "1.0.0", "a" * 64),),
    )


def test_result_document_follows_the_schema_and_round_trips_through_json() -> None:
    doc = json.loads(_result().to_json())
    validate_result(doc)
    assert doc["schema_version"] == "1.5.0"
    assert doc["vertebrae"][0]["label"] == "L4"
    assert doc["discs"][0]["grades"]["pfirrmann"]["probabilities"]["3"] == pytest.approx(0.6)
    assert doc["discs"][0]["grades"]["central_canal_stenosis"]["available"] is False
    assert doc["input"]["orientation"] == "IPR"
    assert doc["input"]["world_convention"].startswith("RAS+")


def test_a_bare_result_prints_one_line_of_what_was_found() -> None:
    # a notebook showed a bare result as a 23 000-character repr (user test)
    from dataclasses import replace

    result = _result()
    assert repr(result) == ("AnalysisResult(input=None, vertebrae=1 (1 labelled), discs=1 (1 graded), flags=0)")
    refused = replace(result, out_of_scope="no spine", flags=("a: b",))
    assert repr(refused).endswith("flags=1, out_of_scope='no spine')")


def test_schema_rejects_a_document_without_required_fields() -> None:
    doc = _result().to_dict()
    del doc["vertebrae"]
    with pytest.raises(SchemaError, match="'vertebrae' is a required property"):
        validate_result(doc)
    doc = _result().to_dict()
    doc["vertebrae"][0]["label"] = "L9"
    with pytest.raises(SchemaError, match="vertebrae/0/label"):
        validate_result(doc)


def test_csv_rows_one_per_vertebra_and_one_per_disc_and_grading() -> None:
    result = _result()
    (vrow,) = result.vertebra_rows()
    assert vrow["label"] == "L4" and vrow["centroid_mm_x"] == 4.0
    drows = result.disc_rows()
    assert [r["grading"] for r in drows] == ["pfirrmann", "central_canal_stenosis"]
    assert drows[0]["grade"] == 3 and drows[0]["probability"] == pytest.approx(0.6)
    assert drows[1]["grade"] == ""


def test_dataframes() -> None:
    from dataclasses import replace

    pytest.importorskip("pandas")
    df = _result().to_dataframe("discs")
    assert list(df["level"]) == ["L4-L5", "L4-L5"]
    assert _result().to_dataframe("vertebrae").shape[0] == 1
    # numbers are numbers, a missing one NaN (the stenosis grade is not available): pandas arithmetic works
    assert df["grade"].dtype == "float64" and df["probability"].dtype == "float64"
    assert df["grade"].iloc[0] == 3 and df["grade"].isna().iloc[1] and df["grade"].mean() == 3
    # a missing text is None, as pandas reads the CSV's empty cell (an unlabelled body's label was '')
    unlabelled = replace(_result(), vertebrae=(replace(_result().vertebrae[0], label=None),))
    assert unlabelled.to_dataframe("vertebrae")["label"].isna().all()
    assert df["note"].isna().iloc[0] and df["note"].iloc[1] == "no built-in model"
    # no disc (out of scope): the same columns, no row
    from openspine.results import DISC_COLUMNS

    empty = replace(_result(), discs=()).to_dataframe("discs")
    assert list(empty.columns) == DISC_COLUMNS and len(empty) == 0 and empty[empty.grading == "pfirrmann"].empty
    # a case column, first, where the frames of several scans are concatenated (a notebook had no way to tell them
    # apart); the same columns otherwise
    named = _result().to_dataframe("discs", case="sub-01")
    assert list(named.columns) == ["case", *DISC_COLUMNS] and list(named["case"]) == ["sub-01", "sub-01"]
    assert named.drop(columns="case").equals(df)
    assert list(replace(_result(), discs=()).to_dataframe("discs", case="x").columns) == ["case", *DISC_COLUMNS]


def _mutations(node, path=()):
    """(path, replacement) pairs that break or bend a document in every place: drop a key, add an unknown one,
    change a value's type, empty a list, add an item to it."""
    if isinstance(node, dict):
        yield path, {**node, "unexpected_key": 1}
        for k, v in node.items():
            yield path, {kk: vv for kk, vv in node.items() if kk != k}
            yield from _mutations(v, (*path, k))
    elif isinstance(node, list):
        yield path, []
        if node:
            yield path, [*node, node[0]]
        for i, v in enumerate(node):
            yield from _mutations(v, (*path, i))
    elif isinstance(node, bool) or node is None:
        yield path, "text"
    elif isinstance(node, (int, float)):
        yield path, "text"
        yield path, -1e9
    elif isinstance(node, str):
        yield path, 12345
        yield path, ""


def _replaced(doc, path, value):
    if not path:
        return value
    out = json.loads(json.dumps(doc))
    target = out
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return out


def test_fast_validator_agrees_with_the_reference_validator() -> None:
    """result.json is validated with the compiled schema (fastjsonschema) for speed; on every mutation of a real
    result document it must accept and reject exactly what the reference JSON Schema validator does."""
    import fastjsonschema
    import jsonschema

    from openspine.schema.validation import _fast_validator, result_schema

    reference = jsonschema.Draft202012Validator(result_schema())
    fast = _fast_validator()
    doc = json.loads(_result().to_json())
    checked = rejected = 0
    for path, value in _mutations(doc):
        mutated = _replaced(doc, path, value)
        ref_ok = not any(True for _ in reference.iter_errors(mutated))
        try:
            fast(mutated)
            fast_ok = True
        except fastjsonschema.JsonSchemaException:
            fast_ok = False
        assert fast_ok == ref_ok, (path, value)
        checked += 1
        rejected += not ref_ok
    assert checked > 100 and rejected > 50  # the mutations reach deep and most of them break the document


def test_a_tiny_voxel_size_is_recorded_not_rounded_to_zero() -> None:
    # three decimals had written 0.0 for a 0.0001 mm voxel, and the result of a refused file failed the schema
    info = InputInfo.from_scan(Scan(np.zeros((4, 4, 2), np.float32), np.diag([1e-4, 2e-4, 3.0, 1.0])))
    assert info.spacing_mm == (0.0001, 0.0002, 3.0)
