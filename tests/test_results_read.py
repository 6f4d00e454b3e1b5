"""Reading results back: result.json → AnalysisResult, the same records, rows and document as were written."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from openspine.errors import OutputError
from openspine.levels import DiscLevel, Grading, Level
from openspine.results import (
    AnalysisResult,
    Disc,
    Grade,
    InputInfo,
    ModelInfo,
    OtherSeries,
    SeriesMatchInfo,
    SliceOutline,
    Vertebra,
    vec3,
)
from openspine.scan import Scan
from openspine.schema import SchemaError

AFFINE = np.array([[0, 0, 4.0, 0], [0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]])


def _result() -> AnalysisResult:
    """A result using every record: outlines, a withheld label, built-in and user gradings, a T1 series."""
    scan = Scan(np.ones((20, 20, 3)), AFFINE)
    corners = tuple(vec3(c) for c in ((1, 1, 1), (1, 5, 1), (5, 5, 1), (5, 1, 1)))
    outline = SliceOutline(1, corners, corners)  # type: ignore[arg-type]
    body = Vertebra(Level.L4, 0.97, vec3((3, 3, 1)), vec3((4.0, -1.5, -1.5)), (outline,), 1)
    unlabelled = Vertebra(None, 0.41, vec3((9, 3, 1)), vec3((4.0, -1.5, -4.5)), (), None, note="label withheld")
    grades = {
        Grading.PFIRRMANN: Grade(3, {"1": 0.05, "2": 0.15, "3": 0.6, "4": 0.15, "5": 0.05}, balanced_grade=4,
                                 series=("T2",)),
        Grading.CENTRAL_CANAL_STENOSIS: Grade(None, None, available=False, note="no built-in model"),
        "disc_bulge_own": Grade(1, {"0": 0.3, "1": 0.7}, series=("T2", "T1")),
    }  # fmt: skip
    disc = Disc(DiscLevel.L4_L5, vec3((7, 3, 1)), vec3((4.0, -1.5, -3.5)), (outline,), grades)
    left_out = Disc(DiscLevel.T11_T12, vec3((2, 3, 1)), vec3((4.0, -1.5, -1.0)), (), {}, note="not graded: outside …")
    info = replace(
        InputInfo.from_scan(scan),
        sequence={"value": "T2", "source": "image", "probability": 0.97},
        field_of_view={"value": "lumbar", "source": "labels"},
    )
    t1 = OtherSeries(
        role="T1",
        input=InputInfo.from_scan(scan),
        vertebrae=(body,),
        discs=(replace(disc, grades={}),),
        match=SeriesMatchInfo(True, True, ("L4",), ("L4-L5",), ()),
        used_for_grading=True,
    )
    return AnalysisResult(
        input=info,
        vertebrae=(body, unlabelled),
        discs=(left_out, disc),
        models=(ModelInfo("detector", "1.3.0", "a" * 64),),
        flags=("labelling_ambiguous: no sacrum visible",),
        steps_not_run={"grading": "example"},
        parameters={"grade_levels": "lumbar"},
        timings_s={"total": 1.5},
        created="2026-01-01T00:00:00+00:00",
        other_series=(t1,),
    )


def test_every_record_round_trips() -> None:
    written = _result()
    read = AnalysisResult.from_json(written.to_json())
    assert read.to_dict() == written.to_dict()
    assert read.vertebrae == written.vertebrae and read.discs == written.discs
    assert read.other_series[0].match == written.other_series[0].match
    assert read.discs[0].note == "not graded: outside …" and read.disc_rows()[0]["note"] == "not graded: outside …"
    grades = read.discs[1].grades
    assert grades[Grading.PFIRRMANN].probability == pytest.approx(0.6)  # keys are the Grading members again
    assert grades["disc_bulge_own"].series == ("T2", "T1")  # a user's grading keeps its name
    assert read.disc_rows() == written.disc_rows() and read.vertebra_rows() == written.vertebra_rows()


def test_a_written_analysis_reads_back_from_its_folder(tmp_path: Path) -> None:
    import openspine
    from openspine.data import demo_scan_path
    from openspine.writers import write_result

    result = openspine.analyze(demo_scan_path())
    write_result(result, tmp_path, ("json", "csv"))
    read = AnalysisResult.read(tmp_path)  # the folder, or the file itself
    assert read.to_dict() == json.loads((tmp_path / "result.json").read_text())
    assert AnalysisResult.read(tmp_path / "result.json").discs == read.discs
    # as written: probabilities rounded to 4 decimals, as in result.json
    assert [d.to_dict() for d in read.discs] == [d.to_dict() for d in result.discs] and read.flags == result.flags
    with pytest.raises(OutputError, match="holds no image"):
        read.overlay()


def test_a_write_stopped_by_a_full_disk_leaves_no_half_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the CSVs had stayed without their result.json
    import errno

    import openspine
    from openspine import writers
    from openspine.data import demo_scan_path

    result = openspine.analyze(demo_scan_path())
    write = writers.atomic_write_bytes

    def full(path: Path, data: bytes) -> None:
        if path.name == "result.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        write(path, data)

    monkeypatch.setattr(writers, "atomic_write_bytes", full)
    with pytest.raises(OutputError, match="No space left on device; the 2 file.s. it had written were removed"):
        writers.write_result(result, tmp_path / "out", ("json", "csv"))
    assert list((tmp_path / "out").iterdir()) == []


def test_what_cannot_be_read_is_said(tmp_path: Path) -> None:
    doc = _result().to_dict()
    with pytest.raises(OutputError, match="reads schema 1.5.0 and older 1.x"):
        AnalysisResult.from_dict({**doc, "schema_version": "2.0.0"})
    with pytest.raises(OutputError, match="schema 1.6.0"):
        AnalysisResult.from_dict({**doc, "schema_version": "1.6.0"})
    older = AnalysisResult.from_dict({**doc, "schema_version": "1.2.0"})  # an older 1.x reads (fields it lacks: None)
    assert older.discs == AnalysisResult.from_dict(doc).discs
    with pytest.raises(OutputError, match="not an openspine result"):
        AnalysisResult.from_dict({"vertebrae": []})
    with pytest.raises(SchemaError, match="vertebrae/0/label"):
        bad = json.loads(json.dumps(doc))
        bad["vertebrae"][0]["label"] = "L9"
        AnalysisResult.from_dict(bad)
    with pytest.raises(OutputError, match="no result.json at"):
        AnalysisResult.read(tmp_path)
    batch_out, failed = tmp_path / "batch", tmp_path / "batch" / "cases" / "bad"
    failed.mkdir(parents=True)
    (failed / "failure.json").write_text("{}")
    with pytest.raises(OutputError, match=r"batch output folder; each case's result is in cases/<case>/result.json"):
        AnalysisResult.read(batch_out)
    with pytest.raises(OutputError, match="the case failed; its failure.json says why"):
        AnalysisResult.read(failed)
    (tmp_path / "result.json").write_text("{not json")
    with pytest.raises(OutputError, match=r"result.json': not JSON"):
        AnalysisResult.read(tmp_path)
