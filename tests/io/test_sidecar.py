"""The JSON sidecar beside a NIfTI file (dcm2niix, BIDS): read as the DICOM header it came from, so that the header
rules name the sequence of a NIfTI scan too (a STIR, a fat-suppressed T2, a T1 named T2), on a real SPIDER slice."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

import openspine
from openspine.batch.discover import discover_cases
from openspine.io.sidecar import SidecarHeader, sidecar_path

from ..conftest import shared_data_or_skip

PLAIN_T2 = {"SeriesDescription": "T2_TSE_SAG", "ScanningSequence": "SE", "SequenceVariant": "SK_SP_OSP",
            "EchoTime": 0.1, "RepetitionTime": 3.5, "Modality": "MR", "SeriesNumber": 4}  # fmt: skip


def test_bids_units_and_separators_become_dicom_s() -> None:
    h = SidecarHeader({"EchoTime": 0.102, "RepetitionTime": 3.8, "InversionTime": 0.16, "ScanningSequence": "SE_IR",
                       "ScanOptions": "FS_PFP", "ImageType": ["ORIGINAL", "PRIMARY", "M"]})  # fmt: skip
    assert h.get("EchoTime") == pytest.approx(102.0) and h.get("RepetitionTime") == pytest.approx(3800.0)
    assert h.get("InversionTime") == pytest.approx(160.0)
    assert h.get("ScanningSequence") == "SE_IR\\SE\\IR" and "FS" in h.get("ScanOptions").split("\\")
    assert SidecarHeader({"RepetitionTime": 3500}).get("RepetitionTime") == 3500  # already in ms: kept
    assert h.get("missing") is None


def _with_sidecar(tmp_path: Path, name: str, entries: object, source: str = "image.nii.gz") -> Path:
    data = shared_data_or_skip()
    image = tmp_path / f"{name}.nii.gz"
    shutil.copy(data / "spider" / "32" / source, image)
    (tmp_path / f"{name}.json").write_text(entries if isinstance(entries, str) else json.dumps(entries))
    assert sidecar_path(image) == tmp_path / f"{name}.json"
    return image


def _graded(result: openspine.AnalysisResult) -> int:
    return sum(g.available for d in result.discs for g in d.grades.values())


@pytest.mark.parametrize(
    ("entries", "sequence", "graded"),
    [
        (PLAIN_T2, "T2", True),
        # a STIR named T2 (a short-TI inversion recovery): the image alone reads it as T2
        (
            {
                "SeriesDescription": "T2_SAG",
                "ScanningSequence": "SE_IR",
                "InversionTime": 0.16,
                "EchoTime": 0.07,
                "RepetitionTime": 4.0,
            },
            "STIR",
            False,
        ),
        ({**PLAIN_T2, "ScanOptions": "FS_PFP"}, "other", False),  # fat-suppressed: not what the grader saw
    ],
    ids=["t2", "stir-named-t2", "fat-suppressed"],
)
def test_a_sidecar_names_the_sequence_of_a_nifti_scan(
    tmp_path: Path, entries: dict[str, object], sequence: str, graded: bool
) -> None:
    result = openspine.analyze(_with_sidecar(tmp_path, "scan", entries))
    seq = result.input.sequence
    assert (seq["value"], seq["source"]) == (sequence, "header")
    assert (_graded(result) > 0) == graded
    assert result.input.series["sidecar"] == "scan.json"
    assert result.input.series["series_description"] == entries["SeriesDescription"]


def test_a_t1_whose_sidecar_says_t2_is_set_aside_by_the_image(tmp_path: Path) -> None:
    result = openspine.analyze(_with_sidecar(tmp_path, "t1", PLAIN_T2, source="t1.nii.gz"))
    assert result.input.sequence["contradicted_by"] == "image" and _graded(result) == 0


def test_a_ct_sidecar_is_refused_and_an_unreadable_one_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    refused = openspine.analyze(_with_sidecar(tmp_path, "ct", {"Modality": "CT"}))
    assert refused.out_of_scope is not None and "CT" in refused.out_of_scope
    with caplog.at_level(logging.WARNING, logger="openspine"):
        scan = openspine.load_scan(_with_sidecar(tmp_path, "bad", "{not json"))
    assert scan.source.sequence_hint is None and "sidecar" not in scan.source.extra
    assert any("bad.json' cannot be read" in r.getMessage() for r in caplog.records)


def test_batch_lists_a_sidecar_as_read_with_its_image(tmp_path: Path) -> None:
    _with_sidecar(tmp_path, "scan", PLAIN_T2)
    cases, skipped = discover_cases(tmp_path)
    assert len(cases) == 1
    assert [(s.path, s.reason) for s in skipped] == [("scan.json", "the sidecar of scan.nii.gz, read with it")]


def test_times_are_read_in_the_unit_the_whole_sidecar_uses() -> None:
    """A PD sidecar in ms (TE 12) had read as TE 12 s, a T2; times as text, lists or 0 had read as ms (user test)."""
    ms = SidecarHeader({"EchoTime": 12, "RepetitionTime": 2500})
    assert (ms.get("EchoTime"), ms.get("RepetitionTime")) == (12.0, 2500.0)
    seconds = SidecarHeader({"EchoTime": "0.095", "RepetitionTime": [3.5], "InversionTime": 0.15})
    assert seconds.get("EchoTime") == pytest.approx(95.0) and seconds.get("RepetitionTime") == pytest.approx(3500.0)
    assert seconds.get("InversionTime") == pytest.approx(150.0)
    assert SidecarHeader({"EchoTime": 0, "RepetitionTime": "n/a"}).get("EchoTime") is None
    assert SidecarHeader({"EchoTime": 11}).get("EchoTime") == 11.0  # no TR: a TE of 11 is in ms
    gre = SidecarHeader({"RepetitionTime": 6, "EchoTime": 3})  # a GRE in ms: its TE could be no seconds
    assert (gre.get("RepetitionTime"), gre.get("EchoTime")) == (6.0, 3.0)
    assert SidecarHeader({"RepetitionTime": "inf", "EchoTime": 1e308}).get("EchoTime") is None
    odd = SidecarHeader({"Modality": ["MR"], "SeriesDescription": {"a": 1}, "ImageType": "DERIVED_PRIMARY_DIXON_W"})
    assert odd.get("Modality") == "MR" and odd.get("SeriesDescription") is None
    assert "DIXON" in odd.get("ImageType").split("\\")


@pytest.mark.parametrize(
    ("name", "sequence"),
    [("sub-30_STIR", "STIR"), ("sub-30_acq-stir_T2w", "STIR"), ("sub-30_acq-fs_T2w", "other"),
     ("sub-30_FLAIR", "other"), ("sub-30_PDw", "other"), ("sub-30_T2starw", "other"), ("sub-30_T1w", "T1"),
     ("sub-30_T2w", None), ("sub-30_acq-sag_T2w", None), ("image", None), ("t1", None)],
)  # fmt: skip
def test_a_bids_name_says_its_contrast(tmp_path: Path, name: str, sequence: str | None) -> None:
    from openspine.io.sidecar import bids_name_sequence

    anat = _dataset(tmp_path) / "sub-30" / "anat"
    anat.mkdir(parents=True)
    assert bids_name_sequence(anat / f"{name}.nii.gz") == sequence
    # outside a BIDS dataset's layout a name that looks BIDS says nothing (a plain folder; a description file above
    # a folder that is no sub-*; a level range in acq-)
    assert bids_name_sequence(tmp_path / f"{name}.nii.gz") is None
    assert bids_name_sequence(tmp_path / "p1" / f"{name}.nii.gz") is None
    assert bids_name_sequence(anat / "sub-30_acq-C2T1_T2w.nii.gz") is None


def _dataset(root: Path) -> Path:
    (root / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.8.0"}')
    return root


def _in_dataset(root: Path, subject: str, name: str) -> Path:
    """SPIDER patient 32's T2 slice as ``sub-<subject>/anat/<name>`` of a BIDS dataset at ``root``."""
    data = shared_data_or_skip()
    anat = _dataset(root) / f"sub-{subject}" / "anat"
    anat.mkdir(parents=True)
    shutil.copy(data / "spider" / "32" / "image.nii.gz", anat / name)
    return anat / name


def test_a_bids_stir_without_a_sidecar_and_one_named_t2_by_its_sidecar_are_not_graded(tmp_path: Path) -> None:
    """The user test's BIDS _STIR, _FLAIR, _PDw, acq-stir_T2w files had been graded as T2 from the image."""
    stir = _in_dataset(tmp_path, "30", "sub-30_STIR.nii.gz")
    anat = stir.parent
    result = openspine.analyze(stir)
    assert result.input.sequence["value"] == "STIR" and _graded(result) == 0
    assert result.input.series["sequence_named_by"] == "BIDS file name (_STIR)"
    named = _with_sidecar(anat, "sub-30_acq-stir_T2w", PLAIN_T2)  # the sidecar says T2, the name STIR
    assert openspine.analyze(named).input.sequence["value"] == "STIR"


def test_sidecars_a_bids_file_inherits_are_read(tmp_path: Path) -> None:
    """A fat-suppression written once at the dataset's root applies to every T2w below it (BIDS inheritance); the
    file's own sidecar wins where both say."""
    data = shared_data_or_skip()
    _dataset(tmp_path)
    (tmp_path / "T2w.json").write_text(json.dumps({**PLAIN_T2, "ScanOptions": "FS"}))
    anat = tmp_path / "sub-05" / "anat"
    anat.mkdir(parents=True)
    image = anat / "sub-05_T2w.nii.gz"
    shutil.copy(data / "spider" / "32" / "image.nii.gz", image)
    scan = openspine.load_scan(image)
    assert scan.source.sequence_hint == "other" and scan.source.extra["sidecar"] == os.path.join("..", "..", "T2w.json")
    (anat / "sub-05_T2w.json").write_text(json.dumps({"ScanOptions": "NONE"}))  # its own: no fat suppression
    assert openspine.load_scan(image).source.sequence_hint == "T2"
    cases, skipped = discover_cases(tmp_path)
    assert [c.path for c in cases] == [str(image)]
    reasons = dict((s.path, s.reason) for s in skipped)
    assert reasons["T2w.json"] == "a BIDS sidecar that the images below it inherit, read with them"
    (tmp_path / "sub-05" / "sub-05_T2w.json").write_text("{}")  # a subject's, inherited as the root's is
    reasons = dict((s.path, s.reason) for s in discover_cases(tmp_path)[1])
    assert reasons[os.path.join("sub-05", "sub-05_T2w.json")].startswith("a BIDS sidecar that the images below")
    # a description file above a folder that is no subject's makes no dataset: its root sidecar is not inherited
    plain = tmp_path / "p1"
    plain.mkdir()
    shutil.copy(image, plain / "T2w.nii.gz")
    assert "sidecar" not in openspine.load_scan(plain / "T2w.nii.gz").source.extra


def test_a_sidecar_s_odd_series_number_or_deep_nesting_is_no_crash(tmp_path: Path) -> None:
    """A SeriesNumber of '²' or 5000 digits, and arrays nested 200 000 deep, had ended the read in a traceback."""
    image = _with_sidecar(tmp_path, "odd", {"SeriesNumber": "²", "SeriesDescription": "T2_TSE_SAG"})
    assert openspine.load_scan(image).source.series_number is None
    image = _with_sidecar(tmp_path, "long", {"SeriesNumber": "9" * 5000})
    assert openspine.load_scan(image).source.series_number is None
    deep = _with_sidecar(tmp_path, "deep", '{"a":' + "[" * 200_000 + "]" * 200_000 + "}")
    assert "sidecar" not in openspine.load_scan(deep).source.extra


def test_a_contrast_from_a_file_name_is_said_to_be_the_file_name_s(tmp_path: Path) -> None:
    """A T2 image named _T1w: the grades were withheld 'this scan is T1 (from the header)' with no header there."""
    result = openspine.analyze(_in_dataset(tmp_path, "03", "sub-03_T1w.nii.gz"))
    assert result.input.sequence["header_is"] == "BIDS file name (_T1w)"
    said = " ".join(result.flags)
    assert "BIDS file name" in said and "from the header" not in said and "the header says" not in said


def test_info_reads_a_nifti_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`openspine info` had read the voxels twice (listing, then loading), and said a bad sidecar's warning twice."""
    from openspine.cli import main

    image = _with_sidecar(tmp_path, "bad", "{not json")
    assert main(["info", str(image)]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("cannot be read") == 1 and "shape        (549, 448, 1)" in captured.out


def test_a_t2_name_set_aside_by_its_header_says_why_where_people_look(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A STIR named 'Sag T2' with an inversion time and SE only lost its grades with no word of why (user test)."""
    from openspine.cli import main

    image = _with_sidecar(tmp_path, "stir", {**PLAIN_T2, "SeriesDescription": "Sag T2", "InversionTime": 0.16})
    result = openspine.analyze(image)
    why = "named T2, but an inversion time of 160 ms (a STIR or a spectral fat suppression)"
    assert result.input.sequence["value"] == "other" and result.input.sequence["why"] == why
    assert _graded(result) == 0 and any(why in f for f in result.flags if f.startswith("grades_withheld"))
    assert main(["info", str(image)]) == 0
    assert f"sequence     other (from the sidecar: {why};" in capsys.readouterr().out
    plain = openspine.analyze(_with_sidecar(tmp_path, "plain", PLAIN_T2))  # a plain T2 says no such thing
    assert "why" not in plain.input.sequence and _graded(plain) > 0
