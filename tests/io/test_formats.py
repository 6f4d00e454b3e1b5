"""The registry of input formats: one entry per reader, used by load_scan, batch discovery and the schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from openspine.errors import ScanReadError
from openspine.io.formats import READERS, SCAN_FORMATS, reader_for, reader_for_name
from openspine.schema import result_schema


def test_the_schema_lists_every_format_a_reader_writes() -> None:
    schema = result_schema()
    node = schema["properties"]["input"]
    if "$ref" in node:  # the input record may be a shared definition (#/$defs/input)
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    enum = node["properties"]["format"]["enum"]
    assert set(enum) == set(SCAN_FORMATS)


def test_suffixes_are_declared_once_and_do_not_overlap() -> None:
    suffixes = [s for r in READERS for s in r.suffixes]
    assert len(suffixes) == len(set(suffixes))
    assert reader_for_name("SCAN.NII.GZ") is reader_for_name("a.nii")
    assert reader_for_name("study.zip") is not None and reader_for_name("notes.txt") is None
    assert sum(r.folders for r in READERS) == 1


def test_a_file_is_matched_by_suffix_then_by_content(tmp_path: Path) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    assert reader_for(folder).folders
    unknown = tmp_path / "notes.bin"
    unknown.write_bytes(b"not a scan")
    with pytest.raises(ScanReadError, match="not a file type openspine reads"):
        reader_for(unknown)
    # what 3D Slicer, ITK-SNAP or FreeSurfer save: the message says how to give the scan as NIfTI
    for name, tool in (("scan.nrrd", "3D Slicer"), ("scan.mha", "SimpleITK"), ("brain.mgz", "mri_convert")):
        (tmp_path / name).write_bytes(b"not a scan")
        with pytest.raises(ScanReadError, match=f"save it as NIfTI .*{tool}"):
            reader_for(tmp_path / name)


def test_batch_discovery_takes_its_file_types_from_the_registry(tmp_path: Path) -> None:
    from openspine.batch.discover import discover_cases
    from openspine.io.formats import DICOM_ZIP, IMAGE

    for name in ("a.png", "b.TIFF", "c.zip", "d.nii.gz", "d_seg.nii.gz"):
        (tmp_path / name).write_bytes(b"\0")  # not empty: an empty file is skipped as such whatever its name
    cases, skipped = discover_cases(tmp_path)
    reasons = {s.path: s.reason for s in skipped}
    assert [(c.case_id, c.kind) for c in cases] == [("d", "nifti")]
    assert reasons["a.png"] == reasons["b.TIFF"] == IMAGE.batch_skip and reasons["c.zip"] == DICOM_ZIP.batch_skip
    assert reasons["d_seg.nii.gz"] == "looks like a label map, not an image"


@pytest.mark.parametrize(
    ("name", "label_map"),
    [
        ("sub-01_T2w_seg.nii.gz", True),
        ("mask_as_image.nii.gz", True),
        ("Labels.PNG", True),
        ("case-roi.nii", True),
        ("sub-01_T2w.nii.gz", False),
        ("segment7.nii.gz", False),  # a word of the name, not a part of one
        ("masked_t2.png", False),
        ("labels.zip", False),  # a zip of DICOM is never judged by its name
        ("seg", False),  # a DICOM folder neither
    ],
)
def test_one_rule_says_from_a_name_that_a_file_is_a_label_map(name: str, label_map: bool, tmp_path: Path) -> None:
    from openspine.batch.discover import discover_cases
    from openspine.io.formats import LABEL_MAP, looks_like_label_map

    assert looks_like_label_map(tmp_path / name) is label_map
    if name.endswith((".nii.gz", ".nii")):  # batch discovery skips by the same rule
        (tmp_path / name).write_bytes(b"\0")
        _, skipped = discover_cases(tmp_path)
        assert any(s.reason == LABEL_MAP for s in skipped) is label_map
