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
    # Siemens' FLAIR is a TIRM "dark-fluid": no STIR (a T1 one is T1, a T2 one other)
    ({"SeriesDescription": "t1_tirm_sag_dark-fluid"}, "T1"),
    ({"SeriesDescription": "t2_tirm_tra_dark-fluid"}, "other"),
    ({"SeriesDescription": "T12-L1 level", "ProtocolName": "t1 sag"}, "T1"),
    ({"ProtocolName": "pd_tse_sag"}, "other"),
    ({"SeriesDescription": "sag DWI b800"}, "other"),
    ({"SeriesDescription": "t2* medic"}, "other"),
    # localisers: planning images whose short TR and TE would otherwise read as T1
    ({"SeriesDescription": "localizer", "SequenceName": "*tse2d1_15"}, "other"),
    ({"SeriesDescription": "3-Plane Loc", "RepetitionTime": 4.0, "EchoTime": 1.5}, "other"),
    ({"SeriesDescription": "AAHead_Scout_32ch"}, "other"),
    ({"SeriesDescription": "AAHScout", "RepetitionTime": 8.6, "EchoTime": 4.0}, "other"),  # Siemens auto-align
    # a range of vertebrae names no contrast: "T1" in "C2-T1" or "T1-T12" is a level
    ({"SeriesDescription": "T2 SAG C2-T1"}, "T2"),
    ({"SeriesDescription": "T2 sag BWS T1-T12"}, "T2"),
    ({"SeriesDescription": "T2 SAG C7/T1"}, "T2"),
    ({"SeriesDescription": "T1-weighted sag"}, "T1"),
    # a short-TI inversion recovery under a "T2" name is a STIR (fat nulled), whatever the name
    ({"SeriesDescription": "T2W_TSE SAG", "ScanningSequence": ["SE", "IR"], "InversionTime": 160}, "STIR"),
    ({"SeriesDescription": "Sag T2", "ScanningSequence": ["SE", "IR"], "InversionTime": 150}, "STIR"),
    # GE names its inversion recovery in ScanOptions
    (
        {"SeriesDescription": "SAG T2", "ScanningSequence": "SE", "ScanOptions": ["IR_GEMS"], "InversionTime": 150},
        "STIR",
    ),
    ({"SeriesDescription": "t1 sag", "ScanningSequence": ["SE", "IR"], "InversionTime": 150}, None),
    ({"SeriesDescription": "Survey", "RepetitionTime": 11, "EchoTime": 4.6}, "other"),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"], "RepetitionTime": 4.0, "EchoTime": 1.5}, "other"),
    ({"SeriesDescription": "t2_tse_sag_block", "RepetitionTime": 3500, "EchoTime": 95}, "T2"),  # not a "loc"
    # timing when the text says nothing
    ({"SeriesDescription": "sag", "RepetitionTime": 550, "EchoTime": 10}, "T1"),
    ({"SeriesDescription": "sag", "RepetitionTime": 3500, "EchoTime": 95}, "T2"),
    ({"ScanningSequence": ["SE", "IR"], "InversionTime": 150, "RepetitionTime": 4000, "EchoTime": 60}, "STIR"),
    # a long-TI inversion recovery is a FLAIR (fluid nulled): no plain T2 (it had read as T2 and been graded)
    ({"ScanningSequence": ["SE", "IR"], "InversionTime": 2500, "RepetitionTime": 9000, "EchoTime": 120}, "other"),
    # an inversion recovery whose TI the header omits, named T2 (a STIR or a FLAIR): no plain T2 either
    ({"SeriesDescription": "Sag T2 IR", "ScanningSequence": "IR", "RepetitionTime": 3500, "EchoTime": 95}, "other"),
    ({"ScanningSequence": "IR", "RepetitionTime": 3500, "EchoTime": 95}, "other"),
    ({"ScanningSequence": ["SE", "IR"]}, "other"),  # an inversion recovery nothing places: a STIR reads as T2
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


# gradient-echo T2* (MEDIC, MERGE, multi-echo), steady-state and Dixon series are no T2 spin echo, whatever the name
NOT_T2 = [
    {"SeriesDescription": "t2_me2d_sag", "SequenceName": "*me2d1r3", "ScanningSequence": "GR"},
    {"SeriesDescription": "t2_me2d_sag", "SequenceName": "*me2d1r3"},  # the name alone
    {"SeriesDescription": "t2_tse_sag", "ScanningSequence": "GR"},  # the scanning sequence alone
    {"SeriesDescription": "SAG T2*", "ScanningSequence": "GR"},
    {"SeriesDescription": "sag t2 medic"},
    {"SeriesDescription": "Sag T2 MERGE", "ScanningSequence": "GR"},
    {"SeriesDescription": "T2W_FFE", "ScanningSequence": "GR"},
    {"SeriesDescription": "t2 fiesta sag"},
    {"SeriesDescription": "t2_trufi_sag"},
    {"SeriesDescription": "sT2W_bFFE"},
    {"SeriesDescription": "t2_tse_dixon_sag_W", "ImageType": ["DERIVED", "PRIMARY", "DIXON", "WATER"]},
    {"SeriesDescription": "t2_tse_dixon_sag_opp"},
    {"SeriesDescription": "t2_tse_sag_W", "ImageType": ["DERIVED", "PRIMARY", "DIXON", "WATER"]},
    {"SeriesDescription": "t2_tse_sag_F", "ImageType": ["DERIVED", "PRIMARY", "DIXON", "FAT"]},
    {"SeriesDescription": "t2_tse_sag_in", "ImageType": ["DERIVED", "PRIMARY", "DIXON", "IN_PHASE"]},
    {"SeriesDescription": "sag", "ScanningSequence": "GR", "RepetitionTime": 3500, "EchoTime": 95},  # timing alone
    {"SeriesDescription": "T2W_mDIXON_TSE", "ImageType": ["ORIGINAL", "PRIMARY", "W", "W"]},  # Philips
    {"SeriesDescription": "sag T2", "ImageType": ["ORIGINAL", "PRIMARY", "W", "W"]},  # Philips' water image alone
    {"SeriesDescription": "Sag T2 FLAIR"},
    {"SeriesDescription": "t2_tse_fs_sag", "ScanningSequence": "SE"},  # fat suppressed: not what the grader saw
    {"SeriesDescription": "T2 SPAIR sag"},
    {"SeriesDescription": "SAG T2 FAT SAT"},
    {"SeriesDescription": "Sag T2", "ScanOptions": ["FS", "PFP"], "ScanningSequence": "SE"},
    # fat suppression and Dixon as other vendors and languages name them
    {"SeriesDescription": "Sag T2 TSE fettgesättigt"},
    {"SeriesDescription": "SAG T2 FSAT"},
    {"SeriesDescription": "T2W_TSE_CHESS SAG"},
    {"SeriesDescription": "T2W_TSE ProSet SAG"},
    {"SeriesDescription": "Sag T2 FSE FLEX WATER"},
    {"SeriesDescription": "T2 SAG WFS Water"},
    # vendor headers a user test wrote: an inversion named by its time alone (a STIR whose ScanningSequence says SE,
    # or a spectral fat suppression), a gradient echo named T2 under T1 timing, water excitation, Dixon's "OUT PHASE"
    {"SeriesDescription": "T2 TSE SAG", "InversionTime": 100},
    {
        "SeriesDescription": "Sag T2",
        "ScanningSequence": "SE",
        "InversionTime": 160,
        "RepetitionTime": 4000,
        "EchoTime": 60,
    },
    {"SeriesDescription": "Sag T2", "ScanningSequence": "GR", "RepetitionTime": 600, "EchoTime": 15},
    {"SeriesDescription": "t2_tse_sag", "ScanOptions": ["WE"], "ScanningSequence": "SE"},
    {"SeriesDescription": "Sag T2", "ImageType": ["DERIVED", "PRIMARY", "OUT PHASE"]},
    {"SeriesDescription": "sPDW_TSE", "RepetitionTime": 2800, "EchoTime": 30},  # Philips' proton density
    {"SeriesDescription": "sPDW_TSE", "RepetitionTime": 3000, "EchoTime": 90},
]


@pytest.mark.parametrize("fields", NOT_T2)
def test_gradient_echo_and_dixon_series_are_not_t2(fields: dict[str, object]) -> None:
    assert sequence_from_header(_ds(**fields)) == "other"


# real T2 spin-echo headers keep their call, and a T1 gradient echo stays T1
STILL = [
    ({"SeriesDescription": "t2_tse_sag", "SequenceName": "*tse2d1_15", "ScanningSequence": "SE"}, "T2"),
    ({"SeriesDescription": "T2W_TSE", "ScanningSequence": "SE", "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"]}, "T2"),
    ({"SeriesDescription": "Sag T2 FSE", "ScanningSequence": ["SE"], "RepetitionTime": 3000, "EchoTime": 100}, "T2"),
    ({"SeriesDescription": "T2 GRASE", "ScanningSequence": ["SE", "GR"]}, "T2"),  # a spin echo train
    ({"SeriesDescription": "t1_fl2d_sag", "ScanningSequence": "GR"}, "T1"),
    ({"SeriesDescription": "t1_tse_dixon_sag_W", "ImageType": ["DERIVED", "PRIMARY", "DIXON", "WATER"]}, "T1"),
    ({"SeriesDescription": "t2_tirm_sag", "SequenceName": "*tir2d1_15"}, "STIR"),
    # each name read on its own: "Sag T2" before Siemens' sequence name "*tse2d1_17" is no "t2 *" (a T2*)
    ({"SeriesDescription": "Sag T2", "SequenceName": "*tse2d1_17"}, "T2"),
    ({"SeriesDescription": "LWS sag T2", "SequenceName": "*tse2d1_17", "ScanningSequence": "SE"}, "T2"),
    ({"SeriesDescription": "Sag T2 flexion"}, "T2"),  # not GE's FLEX (Dixon)
    ({"SeriesDescription": "SAG T2 FLEX"}, "T2"),  # a flexion study's series, not a FLEX water or fat image
    ({"SeriesDescription": "sT2W_TSE", "ScanningSequence": "SE", "InversionTime": 0}, "T2"),  # GE's 0: no inversion
    ({"SeriesDescription": "t2_tse_sag", "ScanningSequence": "SE", "InversionTime": 0.5}, "T2"),  # a rounding of 0
    ({"SeriesDescription": "t2_tse_sag", "InversionTime": [1.797e308]}, "T2"),  # a placeholder, no time
    ({"SeriesDescription": "Sag T2", "ScanOptions": ["SAT_GEMS", "FAST_GEMS"]}, "T2"),  # a saturation band, no fat sat
    ({"SeriesDescription": "Sag T2", "ScanningSequence": "SE IR", "InversionTime": 150}, "STIR"),  # space-separated
]


@pytest.mark.parametrize(("fields", "expected"), STILL)
def test_spin_echo_t2_and_other_calls_are_unchanged(fields: dict[str, object], expected: str) -> None:
    assert sequence_from_header(_ds(**fields)) == expected
    assert dicom._sequence_hint(_ds(**fields)) == expected


def test_images_after_a_contrast_agent_are_told_by_the_header() -> None:
    from openspine.recognition.header import after_contrast

    for name in ("T1 SAG FS +C", "Sag T1 POST GAD", "t1_tse_sag_KM", "SAG T1 C+", "T1 post contrast", "T1 Gd"):
        assert after_contrast(_ds(SeriesDescription=name)), name
    assert after_contrast(_ds(SeriesDescription="T1 SAG", ContrastBolusAgent="Gadovist"))
    for name in ("T1 SAG", "T1 SAG POST OP", "t1_tse_sag posterior", "T2 SAG", "sag_t1_fs"):
        assert not after_contrast(_ds(SeriesDescription=name)), name
    assert not after_contrast(_ds(SeriesDescription="T1 SAG", ContrastBolusAgent=""))
    # one word after; names saying before win, also over an agent copied into every series of the study (user test)
    for name in ("T1 SAG POSTCONTRAST", "SAG T1 POSTGAD"):
        assert after_contrast(_ds(SeriesDescription=name)), name
    before = ("SAG T1 PRE GAD", "T1 SAG PRE CONTRAST", "T1 SAG NON-CONTRAST", "T1 SAG W/O CONTRAST", "T1 SAG ohne KM")
    for name in (*before, "t1_tse_sag_precontrast", "T1 SAG nativ"):
        assert not after_contrast(_ds(SeriesDescription=name, ContrastBolusAgent="Gadovist")), name


def test_a_t2_name_set_aside_says_what_in_the_header_did_it() -> None:
    from openspine.recognition.header import demoted_t2_reason

    said = {
        "a gradient echo (ScanningSequence GR)": _ds(SeriesDescription="Sag T2", ScanningSequence="GR",
                                                     RepetitionTime=600, EchoTime=15),
        "fat suppression (ScanOptions WE)": _ds(SeriesDescription="t2_tse_sag", ScanOptions=["WE"]),
        "a Dixon image (ImageType OUT_PHASE)": _ds(SeriesDescription="Sag T2",
                                                   ImageType=["DERIVED", "PRIMARY", "OUT PHASE"]),
    }  # fmt: skip
    for why, ds in said.items():
        assert demoted_t2_reason(ds) == f"named T2, but {why}"
    assert demoted_t2_reason(_ds(SeriesDescription="t2_tse_sag", ScanningSequence="SE")) is None  # a plain T2
    assert demoted_t2_reason(_ds(SeriesDescription="t1_tse_sag", ScanOptions=["FS"])) is None  # no T2 name


def test_a_reason_is_given_only_where_a_t2_name_was_set_aside() -> None:
    """A PD, a DWI or a localiser that a protocol name calls T2 is 'other' for its own reason, not the one a T2 gets."""
    from openspine.recognition.header import demoted_t2_reason

    assert demoted_t2_reason(_ds(SeriesDescription="Sag PD", ProtocolName="t2_tse_sag", ScanOptions=["FS"])) is None
    assert demoted_t2_reason(_ds(SeriesDescription="DWI", ProtocolName="t2_sag", ScanningSequence=["SE", "IR"])) is None
    assert demoted_t2_reason(_ds(SeriesDescription="Sag T2 localizer", ScanningSequence="GR")) is None
    # a T2 name beside a word of another sequence is read as other at once, and now says why (it had said nothing,
    # and the image's T2 call beside it pointed the user to --sequence T2; user test)
    flair = demoted_t2_reason(_ds(SeriesDescription="T2 FLAIR sag"))
    assert flair is not None and flair.startswith("named T2, but ") and "'flair'" in flair
    assert "'fs'" in (demoted_t2_reason(_ds(SeriesDescription="T2 FS")) or "")
    assert demoted_t2_reason(_ds(SeriesDescription="SAG T2*")) is None  # a T2* of its own: no T2 name set aside
    named = demoted_t2_reason(_ds(SeriesDescription="t2_sag", SequenceName="*fl2d1"))
    assert named == "named T2, but a gradient echo (its name says 'fl2d')"


def test_an_unnamed_gradient_echo_is_other_whatever_its_timing_and_says_why() -> None:
    """A gradient echo's TR and TE say nothing of its weighting by the spin-echo rules: unnamed, it had been read
    T2 by the image and graded, and at TR 700 ms, TE 25 ms (a T2* gradient echo) read as T1 by its timing and
    paired with a T2 as its T1 (user test). A name still places it (a T1 FLASH is T1)."""
    from openspine.recognition.header import demoted_t2_reason, sequence_from_header

    for timing in ({}, {"RepetitionTime": 700, "EchoTime": 25}, {"RepetitionTime": 600, "EchoTime": 15}):
        ds = _ds(ScanningSequence="GR", **timing)
        assert sequence_from_header(ds) == "other"
        assert "a gradient echo (ScanningSequence GR) that no name places" in (demoted_t2_reason(ds) or "")
    assert sequence_from_header(_ds(SeriesDescription="T1 FLASH sag", ScanningSequence="GR")) == "T1"
    assert demoted_t2_reason(_ds(SeriesDescription="T1 FLASH sag", ScanningSequence="GR")) is None
    spin = _ds(ScanningSequence="SE", RepetitionTime=700, EchoTime=15)
    assert sequence_from_header(spin) == "T1" and demoted_t2_reason(spin) is None  # a spin echo's timing still reads
