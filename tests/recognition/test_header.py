"""Sequence from the DICOM header: text first, then timing; io.dicom's series hint uses the same rules."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from openspine.io import dicom
from openspine.recognition import sequence_from_header, sequence_from_timing


def _ds(**fields: object) -> Dataset:
    ds = Dataset()
    for k, v in fields.items():
        setattr(ds, k, v)
    return ds


CASES = [
    ({"SeriesDescription": "t2_tse_sag_384"}, "T2"),
    ({"SeriesDescription": "SAG T1W"}, "T1"),
    ({"SeriesDescription": "tirm_sag"}, "STIR"),
    ({"SeriesDescription": "T2 STIR"}, "STIR"),
    ({"SeriesDescription": "T12-L1 level", "ProtocolName": "t1 sag"}, "T1"),
    ({"ProtocolName": "pd_tse_sag"}, "other"),
    ({"SeriesDescription": "sag DWI b800"}, "other"),
    ({"SeriesDescription": "t2* medic"}, "other"),
    ({"SeriesDescription": "localizer", "SequenceName": "*tse2d1_15"}, None),
    # timing when the text says nothing
    ({"SeriesDescription": "sag", "RepetitionTime": 550, "EchoTime": 10}, "T1"),
    ({"SeriesDescription": "sag", "RepetitionTime": 3500, "EchoTime": 95}, "T2"),
    ({"ScanningSequence": ["SE", "IR"], "InversionTime": 150, "RepetitionTime": 4000, "EchoTime": 60}, "STIR"),
    ({"ScanningSequence": ["SE", "IR"], "InversionTime": 2500, "RepetitionTime": 9000, "EchoTime": 120}, "T2"),
    ({"ScanningSequence": ["SE", "IR"]}, None),
    ({"RepetitionTime": 2000, "EchoTime": 40}, None),  # intermediate: not decided
    ({"RepetitionTime": 800, "EchoTime": 40}, None),
    ({}, None),
]


@pytest.mark.parametrize(("fields", "expected"), CASES)
def test_sequence_from_header(fields: dict[str, object], expected: str | None) -> None:
    ds = _ds(**fields)
    assert sequence_from_header(ds) == expected
    assert dicom._sequence_hint(ds) == expected  # the series hint is the same function


def test_text_beats_undecided_timing_and_a_self_contradicting_header_says_nothing() -> None:
    # the description decides where the timing is silent or agrees
    assert sequence_from_header(_ds(SeriesDescription="t2_tse", RepetitionTime=2000, EchoTime=40)) == "T2"
    assert sequence_from_header(_ds(SeriesDescription="t2_tse", RepetitionTime=3500, EchoTime=95)) == "T2"
    assert sequence_from_header(_ds(SeriesDescription="sag tirm", RepetitionTime=3500, EchoTime=95)) == "STIR"
    # a T2-named series with T1 timing (a description copied from another protocol), or the reverse: the header
    # contradicts itself, so it says nothing and the image decides
    assert sequence_from_header(_ds(SeriesDescription="t2_tse", RepetitionTime=500, EchoTime=12)) is None
    assert sequence_from_header(_ds(SeriesDescription="T1 SAG", RepetitionTime=3500, EchoTime=95)) is None


def test_timing_rules_edges() -> None:
    assert sequence_from_timing(999.0, 29.0) == "T1"
    assert sequence_from_timing(1000.0, 29.0) is None
    assert sequence_from_timing(1501.0, 61.0) == "T2"
    assert sequence_from_timing(1500.0, 61.0) is None
    assert sequence_from_timing(None, 10.0) is None
    assert sequence_from_timing(4000.0, 50.0, ti_ms=160.0, inversion_recovery=True) == "STIR"
