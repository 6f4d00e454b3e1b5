"""Reading a study, not one series: the main (T2) series and the T1 series beside it, each series' role from its
header, on a real two-series study (fcs-vb1-07 as T2, fcs-vb1-06 as T1; see dicom_fixtures.write_t1_t2_study)."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from numpy.testing import assert_allclose
from pydicom.uid import generate_uid

from dicom_fixtures import (
    T1T2Study,
    make_affine,
    new_ids,
    real_crop,
    series_info,
    whole_spine_study,
    write_series,
    write_t1_t2_study,
    zip_folder,
)
from openspine.errors import SeriesSelectionError
from openspine.io import SeriesRole, Study, list_series, load_scan, load_study
from openspine.io.dicom import choose_series, choose_series_why, series_roles


def _roles(study: Study) -> dict[str, str]:
    return {r.description: r.role for r in study.roles}


def _synthetic(n: int) -> tuple[np.ndarray, np.ndarray]:
    """A small sagittal volume of ``n`` slices with contrast, and its affine (no shared data needed)."""
    i, j, k = np.mgrid[0:32, 0:32, 0:n]
    volume = (50 + 20 * k + 3 * i + j).astype(np.uint16)
    return volume, make_affine(np.array([[0, 0, 1], [0, -1, 0], [-1, 0, 0]], float), (0.8, 0.8, 3.5), (0, 0, 0))


# --------------------------------------------------------------------------------------------------------------
# the real two-series study
# --------------------------------------------------------------------------------------------------------------
def test_the_t2_is_main_and_the_t1_is_read_beside_it(t1_t2_study: T1T2Study, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="openspine"):
        study = load_study(t1_t2_study.folder)
    assert study.main.source.series_uid == t1_t2_study.t2.series_uid
    assert study.main.source.sequence_hint == "T2" and study.main.source.series_description == "T2 TSE SAG"
    assert study.t1 is not None
    assert study.t1.source.series_uid == t1_t2_study.t1.series_uid
    assert study.t1.source.sequence_hint == "T1"
    # one study, one frame of reference: the two series can be compared in world millimetres
    assert study.main.source.study_uid == study.t1.source.study_uid
    assert study.main.source.frame_of_reference_uid == study.t1.source.frame_of_reference_uid
    assert study.main.source.frame_of_reference_uid == t1_t2_study.t2.frame_of_reference_uid
    np.testing.assert_array_equal(study.main.array, t1_t2_study.t2_array)
    np.testing.assert_array_equal(study.t1.array, t1_t2_study.t1_array)
    assert_allclose(study.main.affine, t1_t2_study.affine, atol=1e-6)
    assert_allclose(study.t1.affine, study.main.affine, atol=1e-6)
    # listed as info lists them (by SeriesNumber: the T1 is #2, the T2 #3)
    series = {"T1": (t1_t2_study.t1, "T1 TSE SAG"), "main": (t1_t2_study.t2, "T2 TSE SAG")}
    assert study.roles == tuple(
        SeriesRole(i, role, seq, desc, ids.series_uid, study.roles[i].reason, "", "MR", "sagittal", str(i + 2))
        for i, (role, seq) in enumerate((("T1", "T1"), ("main", "T2")))
        for ids, desc in [series[role]]
    )
    assert "says T2" in study.roles[1].reason and "says T1" in study.roles[0].reason
    assert "T1 TSE SAG" in caplog.text and "main" in caplog.text
    # load_scan picks the same main series
    assert load_scan(t1_t2_study.folder).source.series_uid == t1_t2_study.t2.series_uid


def test_shuffled_file_names_in_one_folder_give_the_same_study(tmp_path: Path) -> None:
    written = write_t1_t2_study(tmp_path, shuffle_names=True)
    assert all(p.name.startswith("IM") and p.suffix == "" for p in tmp_path.iterdir())  # names say nothing
    study = load_study(tmp_path)
    assert study.main.source.series_uid == written.t2.series_uid
    assert study.t1 is not None and study.t1.source.series_uid == written.t1.series_uid
    np.testing.assert_array_equal(study.main.array, written.t2_array)
    np.testing.assert_array_equal(study.t1.array, written.t1_array)


def test_a_t1_only_study_has_the_t1_as_main_and_no_t1_beside_it(tmp_path: Path) -> None:
    written = write_t1_t2_study(tmp_path, t2=False)
    study = load_study(tmp_path)
    assert study.main.source.series_uid == written.t1.series_uid and study.main.source.sequence_hint == "T1"
    assert study.t1 is None
    assert [r.role for r in study.roles] == ["main"]


def test_a_t2_only_study_has_no_t1(tmp_path: Path) -> None:
    written = write_t1_t2_study(tmp_path, t1=False)
    study = load_study(tmp_path)
    assert study.main.source.series_uid == written.t2.series_uid
    assert study.t1 is None and [r.role for r in study.roles] == ["main"]


def test_a_stir_series_is_recorded_not_read(tmp_path: Path) -> None:
    write_t1_t2_study(tmp_path, stir_crop=True)
    study = load_study(tmp_path)
    assert _roles(study) == {"T1 TSE SAG": "T1", "T2 TSE SAG": "main", "STIR SAG": "STIR"}
    assert study.t1 is not None and study.main.source.sequence_hint == "T2"


def test_asking_for_the_t1_makes_it_main_and_reads_no_t1_beside_it(t1_t2_study: T1T2Study) -> None:
    study = load_study(t1_t2_study.folder, series=2)  # SeriesNumber 2: the T1
    assert study.main.source.series_uid == t1_t2_study.t1.series_uid
    assert study.t1 is None
    t2 = next(r for r in study.roles if r.series_uid == t1_t2_study.t2.series_uid)
    assert t2.role == "not used" and "T2" in t2.reason


def test_a_t1_that_cannot_be_read_leaves_the_main_series(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    arr, aff = real_crop(shape=(48, 48, 6))
    study_uid, frame = generate_uid(), generate_uid()
    t2 = write_series(tmp_path / "t2", arr, aff, ids=new_ids(study_uid, frame), series_number=3,
                      description="T2 TSE SAG")[0]  # fmt: skip
    _, files = write_series(tmp_path / "t1", arr, aff, ids=new_ids(study_uid, frame), series_number=2,
                            description="T1 TSE SAG")  # fmt: skip
    data = files[2].read_bytes()
    files[2].write_bytes(data[: len(data) - 500])  # its pixel data cut short
    with caplog.at_level(logging.WARNING, logger="openspine"):
        study = load_study(tmp_path)
    assert study.main.source.series_uid == t2.series_uid and study.t1 is None
    t1 = next(r for r in study.roles if r.description == "T1 TSE SAG")
    assert t1.role == "not used" and "cannot be read" in t1.reason
    assert "goes on without it" in caplog.text


def test_a_zip_of_a_study_reads_both_series(tmp_path: Path) -> None:
    arr, aff = real_crop(shape=(48, 48, 6))
    study_uid = generate_uid()
    folder = tmp_path / "export"
    t2 = write_series(folder / "a", arr, aff, ids=new_ids(study_uid), series_number=3, description="T2 TSE SAG")[0]
    t1 = write_series(folder / "b", arr[:, :, :5], aff, ids=new_ids(study_uid), series_number=2,
                      description="T1 TSE SAG")[0]  # fmt: skip
    study = load_study(zip_folder(folder, tmp_path / "study.zip"))
    assert study.main.source.series_uid == t2.series_uid
    assert study.t1 is not None and study.t1.source.series_uid == t1.series_uid
    assert study.main.source.path == str(tmp_path / "study.zip")
    assert [d["role"] for d in list_series(tmp_path / "study.zip")] == ["T1", "main"]


def test_a_single_scan_is_a_study_of_one_series(shared_data: Path) -> None:
    path = shared_data / "spider" / "21" / "image.nii.gz"
    study = load_study(path)
    assert study.t1 is None and study.roles == ()
    assert study.main.shape == load_scan(path).shape
    picture = load_study(path.with_suffix("").with_suffix(".png"), pixel_spacing=0.5)
    assert picture.t1 is None and picture.main.shape[:2] == study.main.shape[:2]


# --------------------------------------------------------------------------------------------------------------
# the role rule on header facts
# --------------------------------------------------------------------------------------------------------------
_info = series_info  # header facts of one series (short name: the rules' tests list many)


def test_the_default_main_series_is_the_sagittal_t2_even_with_fewer_slices() -> None:
    found = [_info(1, "sagittal", 19, "T1"), _info(2, "sagittal", 15, "T2"), _info(3, "sagittal", 17, "STIR")]
    assert choose_series(found, None, quiet=True).series_number == 2
    # without a T2 header, a series naming no sequence (maybe the T2, its words lost) beats a named T1 or STIR
    found = [_info(1, "sagittal", 19, "T1"), _info(2, "sagittal", 15, None), _info(3, "sagittal", 21, "STIR")]
    main, why = choose_series_why(found, None)
    assert main.series_number == 2 and "names no sequence" in why
    # without such a series, the most slices
    found = [_info(1, "sagittal", 19, "T1"), _info(3, "sagittal", 17, "STIR")]
    assert choose_series(found, None, quiet=True).series_number == 1


def test_a_sagittal_mr_series_is_main_over_a_ct_reformat_with_more_slices() -> None:
    ct = dataclasses.replace(_info(4, "sagittal", 200, None), modality="CT")
    found = [ct, _info(2, "sagittal", 15, None), _info(3, "sagittal", 17, "T1")]
    assert choose_series(found, None, quiet=True).series_number == 2
    # a CT alone is still chosen (and the analysis refuses it with the reason), not a failed choice
    assert choose_series([ct], None, quiet=True).series_number == 4


def test_an_unnamed_sagittal_t2_is_main_over_a_t1_with_more_slices(tmp_path: Path) -> None:
    """An anonymised export: the T2 is 'SAG SPINE' without TR/TE, the T1 'T1 TSE SAG' has more slices. The T1
    used to be main (not graded); now the T2 is main and the T1 is read beside it."""
    arr, aff = _synthetic(6)
    ids = new_ids()
    t2, _ = write_series(tmp_path / "s", arr, aff, ids=ids, series_number=3, description="SAG SPINE", prefix="A")
    more = np.concatenate([arr, arr[:, :, :2]], axis=2)
    t1 = new_ids(study_uid=ids.study_uid, frame_of_reference_uid=ids.frame_of_reference_uid)
    write_series(tmp_path / "s", more, aff, ids=t1, series_number=4, description="T1 TSE SAG", prefix="B")
    study = load_study(tmp_path / "s")
    assert study.main.source.series_uid == t2.series_uid
    assert study.t1 is not None and study.t1.source.series_uid == t1.series_uid


def test_every_series_gets_a_role_and_a_reason() -> None:
    found = [
        _info(1, "axial", 3, None, description="localizer"),
        _info(2, "sagittal", 15, "T1"),
        _info(3, "sagittal", 15, "T2"),
        _info(4, "sagittal", 15, "STIR"),
        _info(5, "sagittal", 12, "T1"),
        _info(6, "axial", 30, "T2"),
        _info(7, "sagittal", 15, "T2"),
        _info(8, "sagittal", 18, "T1", study="9.9.9"),
        _info(9, "sagittal", 15, "other"),
    ]
    roles = series_roles(found)
    assert [r.index for r in roles] == list(range(len(found)))
    by_number = {found[r.index].series_number: r for r in roles}
    assert {n: r.role for n, r in by_number.items()} == {
        1: "not used", 2: "T1", 3: "not used", 4: "STIR", 5: "not used", 6: "not used", 7: "main", 8: "not used",
        9: "not used",
    }  # fmt: skip
    assert "not sagittal (axial)" in by_number[1].reason
    assert "second sagittal T1" in by_number[5].reason and "[1]" in by_number[5].reason
    # ties go to the later series (a repeat is taken when the first was degraded), and the reason says so
    assert "another sagittal T2" in by_number[3].reason
    assert "; as many slices as #3: the later series is read (a series is repeated when the first was degraded)" in (
        by_number[7].reason
    )
    assert "another study" in by_number[8].reason  # a T1 of another study is never read beside this one
    assert "sequence other" in by_number[9].reason
    assert by_number[1].text().startswith("not used: not sagittal")
    # series 8 belongs to another study: the listing of the main series says the folder holds two
    assert by_number[7].text() == (
        "main (graded if the image agrees); the folder holds 2 studies (StudyInstanceUID): choose with --series"
    )
    assert by_number[2].text() == "T1 (read beside the main series)"


def test_roles_follow_the_series_asked_for() -> None:
    found = [_info(2, "sagittal", 15, "T1"), _info(3, "sagittal", 15, "T2"), _info(4, "sagittal", 15, "T1")]
    roles = series_roles(found, 4)
    assert [r.role for r in roles] == ["not used", "not used", "main"]
    assert "main series is T1 already" in roles[0].reason
    with pytest.raises(SeriesSelectionError, match="no series matches"):
        series_roles(found, "1.2.3.99")


def test_info_shows_each_series_role_next_to_its_sequence(
    t1_t2_study: T1T2Study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from openspine.cli import main

    assert main(["info", str(t1_t2_study.folder)]) == 0
    out = capsys.readouterr().out
    t2_line = next(line for line in out.splitlines() if "T2 TSE SAG" in line)
    t1_line = next(line for line in out.splitlines() if "T1 TSE SAG" in line)
    assert t2_line.lstrip().startswith("* [1]") and "  T2  " in t2_line
    assert "main (graded if the image agrees)" in t2_line
    assert "  T1  " in t1_line and "T1 (read beside the main series)" in t1_line
    assert main(["info", str(t1_t2_study.folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["chosen_series"] == t1_t2_study.t2.series_uid and info["t1_series"] == t1_t2_study.t1.series_uid
    assert [(s["role"], s["sequence_hint"]) for s in info["series_found"]] == [("T1", "T1"), ("main", "T2")]
    # the same study with the STIR and an axial localiser beside it
    folder = tmp_path / "study"
    shutil.copytree(t1_t2_study.folder, folder)
    loc = make_affine(np.eye(3)[:, [1, 0, 2]], (1.0, 1.0, 10.0), (0.0, 0.0, 0.0))
    write_series(folder / "loc", t1_t2_study.t2_array[:48, :48, :3].copy(), loc, series_number=1,
                 description="localizer", ids=new_ids(t1_t2_study.t2.study_uid))  # fmt: skip
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "not used: not sagittal" in next(line for line in out.splitlines() if "localizer" in line)


def test_the_main_series_text_says_whether_analyze_grades_it() -> None:
    """The role text follows the grader's card scope, as analyze does: a STIR or other main series is not graded."""
    from openspine.io.roles import grading_withheld

    texts = {seq: series_roles([_info(3, "sagittal", 15, seq)])[0].text() for seq in ("T2", "STIR", "other", "T1")}
    assert texts == {
        "T2": "main (graded if the image agrees)",
        "STIR": "main (not graded: STIR)",
        "other": "main (not graded: other sequence)",
        "T1": "main (not graded: T1)",
    }
    assert series_roles([_info(3, "sagittal", 15, None)])[0].text() == "main (graded if the image reads as T2)"
    assert grading_withheld("T2") is None and "trained on T2 only" in str(grading_withheld("STIR"))


def test_info_says_a_stir_main_series_is_not_graded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from openspine.cli import main

    i, j, k = np.mgrid[0:32, 0:32, 0:4]
    volume = (50 + 20 * k + 3 * i + j).astype(np.uint16)
    sag = make_affine(np.array([[0, 0, 1], [0, -1, 0], [-1, 0, 0]], float), (0.7, 0.7, 3.5), (0.0, 0.0, 0.0))
    write_series(tmp_path / "tirm", volume, sag, description="t2_tirm_sag")
    assert main(["info", str(tmp_path / "tirm")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "t2_tirm_sag" in x)
    assert "STIR" in line and line.endswith("— main (not graded: STIR)"), line


# --------------------------------------------------------------------------------------------------------------
# objects that are no image, and folders holding several studies
# --------------------------------------------------------------------------------------------------------------
def test_an_object_that_is_no_image_is_never_main() -> None:
    seg = dataclasses.replace(
        _info(9001, "sagittal", 155, None), modality="SEG", not_image="a DICOM Segmentation, not an image"
    )
    found = [_info(3, "sagittal", 15, None), seg]
    assert choose_series(found, None, quiet=True).series_number == 3
    roles = series_roles(found)
    assert roles[1].role == "not used" and roles[1].text() == "not used: a DICOM Segmentation, not an image"
    with pytest.raises(SeriesSelectionError, match="is a DICOM Segmentation, not an image; choose an image series"):
        choose_series(found, 9001)
    with pytest.raises(SeriesSelectionError, match="no image series"):
        choose_series([seg], None)


def test_a_folder_of_two_patients_is_read_with_a_flag(tmp_path: Path) -> None:
    """A PACS export mixing two patients' studies: one is analysed, and result.json says the folder holds two (the
    choice used to be an INFO line only). Asking for a series says nothing: the choice is the user's."""
    arr, aff = _synthetic(5)
    first, _ = write_series(tmp_path / "mix", arr, aff, series_number=3, description="T2 TSE SAG", prefix="A")
    _, other = write_series(tmp_path / "mix", arr, aff, series_number=2, description="t2_tse_sag", prefix="B")
    for f in other:  # another patient
        ds = pydicom.dcmread(f)
        ds.PatientID = "OTHER-99"
        ds.save_as(f)
    study = load_study(tmp_path / "mix")
    assert len(study.flags) == 1 and study.flags[0].startswith(
        "several_studies: the folder holds 2 studies (StudyInstanceUID) of 2 patients (PatientID); analysed series [1]"
    )
    assert "OTHER-99" not in study.flags[0] and "choose another with --series" in study.flags[0]
    main = next(r for r in study.roles if r.role == "main")
    assert "2 studies" in main.text() and "2 studies" in main.reason
    assert load_study(tmp_path / "mix", series=first.series_uid).flags == ()
    for f in other:  # one study of one patient left: no flag
        f.unlink()
    assert load_study(tmp_path / "mix").flags == ()


def _date_visits(prior: list[Path], current: list[Path]) -> None:
    """A prior study on 2023-01-01 and a current one on 2024-01-01, both at 09:30."""
    for files, date in ((prior, "20230101"), (current, "20240101")):
        for f in files:
            ds = pydicom.dcmread(f)
            ds.StudyDate, ds.StudyTime = date, "093000"
            ds.save_as(f)


def test_a_current_study_of_key_images_only_does_not_displace_a_prior_series(tmp_path: Path) -> None:
    """A latest study holding a 3-image sagittal series only (a localizer, key images) had been chosen over the
    prior study's 6-slice series (review)."""
    arr, aff = _synthetic(6)
    # neither names a sequence: one tier, where the latest study would be read first
    _, prior = write_series(tmp_path / "visits", arr, aff, series_number=3, description=None, prefix="A")
    _, current = write_series(tmp_path / "visits", arr[:, :, :3], aff, series_number=1, description=None, prefix="B")
    _date_visits(prior, current)
    study = load_study(tmp_path / "visits")
    assert study.main.array.shape[2] == 6 and "latest" not in study.flags[0]


def test_of_a_patients_prior_and_current_studies_the_current_is_read(tmp_path: Path) -> None:
    """A folder holding one patient's prior study (more slices) and current one: the prior had been read by the
    most-slices rule, with a flag that named neither (user test). The dates themselves are never written out."""
    arr, aff = _synthetic(6)
    _, prior = write_series(tmp_path / "visits", arr, aff, series_number=3, description="T2 TSE SAG", prefix="A")
    current_uid, current = write_series(
        tmp_path / "visits", arr[:, :, :5], aff, series_number=3, description="T2 TSE SAG", prefix="B"
    )
    _date_visits(prior, current)
    study = load_study(tmp_path / "visits")
    assert study.main.source.series_uid == current_uid.series_uid and study.main.array.shape[2] == 5
    assert study.flags[0].startswith(
        "several_studies: the folder holds 2 studies (StudyInstanceUID) of one patient; the latest (StudyDate) is read"
    )
    assert "2024" not in study.flags[0]
    main = next(r for r in study.roles if r.role == "main")
    assert main.reason.count("the latest (StudyDate) is read") == 1  # said once (review: it had been twice)
    # a study that names no patient: no order (review: it had been counted as the same patient's)
    for f in prior:
        ds = pydicom.dcmread(f)
        del ds.PatientID
        ds.save_as(f)
    study = load_study(tmp_path / "visits")
    assert study.main.array.shape[2] == 6 and "latest" not in study.flags[0]
    for f in prior:
        ds = pydicom.dcmread(f)
        ds.PatientID = pydicom.dcmread(current[0]).PatientID
        ds.save_as(f)
    # the same day, one study without a time: no order (it had counted as midnight)
    for f in current:
        ds = pydicom.dcmread(f)
        ds.StudyDate = "20230101"
        del ds.StudyTime
        ds.save_as(f)
    assert load_study(tmp_path / "visits").main.array.shape[2] == 6
    for f in current:  # the same day and time: no order, the most slices as before
        ds = pydicom.dcmread(f)
        ds.StudyDate, ds.StudyTime = "20230101", "093000"
        ds.save_as(f)
    study = load_study(tmp_path / "visits")
    assert study.main.array.shape[2] == 6 and "latest" not in study.flags[0]
    # a current study with a sagittal T1 only: the prior T2 is read, which the grader reads, and the flag says so
    for f in current:
        ds = pydicom.dcmread(f)
        ds.StudyDate, ds.SeriesDescription = "20240101", "T1 TSE SAG"
        ds.save_as(f)
    study = load_study(tmp_path / "visits")
    assert study.main.array.shape[2] == 6
    assert (
        "of one patient; an earlier one (StudyDate) is read: the latest holds no series of the kind read"
        in (study.flags[0])
    )


# --------------------------------------------------------------------------------------------------------------
# whole-spine studies: one sagittal series per station (cervical, thoracic, lumbar) in one frame of reference
# --------------------------------------------------------------------------------------------------------------
def _station(number: int, n: int, seq: str | None, centre_mm: float, frame: str = "9.8.7") -> object:
    """A 380 mm tall sagittal series centred ``centre_mm`` above the frame's origin (LPS z)."""
    height = (centre_mm - 190.0, centre_mm + 190.0)
    return dataclasses.replace(_info(number, "sagittal", n, seq), height_mm=height, frame_of_reference_uid=frame)


def test_a_whole_spine_study_analyses_its_lowest_station() -> None:
    """The cervical station is usually the first series, with as many slices as the others: the most-slices rule
    had chosen it, and the analysis then withheld every label as cervical while the lumbar station lay unread."""
    found = [_station(2, 15, "T2", 300.0), _station(3, 15, "T2", 0.0), _station(4, 15, "T2", -300.0)]
    main, why = choose_series_why(found, None)
    assert main.series_number == 4
    assert why.startswith("the lowest of 3 stations (series of one frame of reference imaging different heights")
    assert why.endswith("read the lumbar spine) among those whose header says T2 (3 sagittal T2 of 3 series)")
    assert "the models read the lumbar spine" in why
    # the T1 read beside it is the lumbar one; the cervical T1 and the other T2 stations say why they are not read
    found += [_station(5, 15, "T1", 300.0), _station(6, 13, "T1", -310.0)]
    roles = {found[r.index].series_number: r for r in series_roles(found)}
    assert {n: r.role for n, r in roles.items()} == {2: "not used", 3: "not used", 4: "main", 5: "not used", 6: "T1"}
    assert roles[2].reason == (
        "another station: it images a higher part of the spine than the main series (one station is read)"
    )
    assert "another station" in roles[5].reason
    assert roles[6].reason.endswith("imaging the main series' part of the spine")
    # only a cervical T1 beside a lumbar T2: nothing is read beside it
    roles_t1 = series_roles([*found[:3], found[3]])
    assert [r.role for r in roles_t1] == ["not used", "not used", "main", "not used"]


def test_series_of_one_part_of_the_spine_keep_the_most_slices_rule() -> None:
    # two lumbar T2 series a little apart: one station, the one with the most slices is main, as before
    found = [_station(2, 17, "T2", 40.0), _station(3, 15, "T2", -20.0)]
    assert choose_series(found, None, quiet=True).series_number == 2
    # heights of different frames of reference cannot be compared
    found = [_station(2, 17, "T2", 300.0), _station(3, 15, "T2", -300.0, frame="1.1.1")]
    assert choose_series(found, None, quiet=True).series_number == 2
    # a lower series of fewer than 5 slices is no station (a scout)
    found = [_station(2, 17, "T2", 300.0), _station(3, 4, "T2", -300.0)]
    assert choose_series(found, None, quiet=True).series_number == 2
    # slice counts are not compared: a lumbar station of 19 thick slices beside a cervical one of 52 thin ones
    found = [_station(1, 52, "T2", 300.0), _station(2, 38, "T2", 0.0), _station(3, 19, "T2", -300.0)]
    main, why = choose_series_why(found, None)
    assert main.series_number == 3 and why.startswith("the lowest of 3 stations")
    # headers without geometry: the rule cannot tell, and the most slices win
    found = [_info(2, "sagittal", 17, "T2"), _info(3, "sagittal", 15, "T2")]
    assert choose_series(found, None, quiet=True).series_number == 2
    # a series asked for is read whatever its station, and the T1 beside it is of its part of the spine
    found = [_station(2, 15, "T2", 300.0), _station(4, 15, "T2", -300.0), _station(5, 15, "T1", 300.0)]
    assert [r.role for r in series_roles(found, 2)] == ["main", "not used", "T1"]
    # a dedicated sacrum series lies lower than the lumbar one, but is no lumbar station ("lumbosacral" is)
    lumbar = dataclasses.replace(_station(2, 15, "T2", 0.0), description="T2 SAG LUMBOSACRAL")
    sacrum = dataclasses.replace(_station(3, 15, "T2", -260.0), description="t2_tse_sag_sacrum")
    assert choose_series([lumbar, sacrum], None, quiet=True).series_number == 2
    neck = dataclasses.replace(_station(1, 15, "T2", 360.0), description="T2 SAG C-SPINE")
    assert choose_series([neck, lumbar], None, quiet=True).series_number == 2
    for name in ("T2 SAG SACROCOCCYGEAL", "SACROILIAC", "KREUZBEIN", "T2_TSE_SAG_SAC", "S-SPINE/COCCYX"):
        below = dataclasses.replace(sacrum, description=name)
        assert choose_series([lumbar, below], None, quiet=True).series_number == 2, name
    # a lumbar station whose name mentions the sacrum too is a lumbar station (the neck had been read: user test)
    both = dataclasses.replace(lumbar, description="T2 SAG LUMBAR + SACRUM")
    assert choose_series([neck, both], None, quiet=True).series_number == 2
    # an acquired series beats a derived one (an MPR of a 3D sequence) with more slices
    mpr = dataclasses.replace(_info(9, "sagittal", 113, "T2", description="T2 SPACE SAG MPR"), derived=True)
    chosen, why = choose_series_why([_info(3, "sagittal", 57, "T2"), mpr], None)
    assert chosen.series_number == 3 and "derived series (ImageType DERIVED" in why
    assert series_roles([_info(3, "sagittal", 57, "T2"), mpr])[1].reason.startswith("a derived sagittal T2 series")
    # a sacrum series with more slices, in its own frame of reference (no station rule), is still left aside
    own = dataclasses.replace(sacrum, n_slices=60, frame_of_reference_uid="5.5.5")
    chosen, why = choose_series_why([lumbar, own], None)
    assert chosen.series_number == 2 and why.endswith("; 1 named for the sacrum, coccyx or pelvis left aside")
    assert series_roles([lumbar, own])[1].reason.startswith("its name says sacrum, coccyx or pelvis")
    assert choose_series([mpr], None, quiet=True).series_number == 9  # alone, it is read
    # the T1 read beside the T2 is one before contrast agent, whatever the slice counts
    post = dataclasses.replace(_info(4, "sagittal", 19, "T1", description="T1 SAG FS +C"), after_contrast=True)
    found = [_info(2, "sagittal", 15, "T2"), post, _info(5, "sagittal", 15, "T1", description="T1 SAG")]
    roles = series_roles(found)
    assert [r.role for r in roles] == ["main", "not used", "T1"]
    assert roles[2].reason.endswith(", before contrast agent by its header")
    assert roles[1].reason == "a T1 after contrast agent by its header (the one read is [2], before it)"
    assert roles[2].text() == "T1 (read beside the main series); before contrast agent by its header"  # info says so
    roles = series_roles(found[:2])  # no T1 without: the one after contrast is read, and said so
    assert roles[1].role == "T1" and roles[1].reason.endswith("(the study has no T1 without)")
    assert roles[1].text().endswith("; its header shows a contrast agent (the study has no T1 without)")
    assert series_roles(found[::2])[1].text() == "T1 (read beside the main series)"  # one T1: nothing to add
    # what --series takes to read each series: its number, or its UID where two series share the number
    twins = [_info(3, "sagittal", 15, "T2"), dataclasses.replace(_info(4, "sagittal", 12, "T2"), series_number=3)]
    assert [r.pick for r in series_roles(twins)] == ["1.2.3.3", "1.2.3.4"]
    assert [r.pick for r in series_roles(found)] == ["2", "4", "5"]


def test_a_real_whole_spine_study_grades_its_lumbar_station(shared_data: Path, tmp_path: Path) -> None:
    """The lumbar station is analysed and graded; the cervical one is listed as another station."""
    import openspine

    ids = whole_spine_study(tmp_path / "study")
    study = load_study(tmp_path / "study")
    assert study.main.source.series_uid == ids.series_uid
    assert [r.role for r in study.roles] == ["not used", "main"]
    assert study.roles[0].reason.startswith("another station: it images a higher part of the spine")
    result = openspine.analyze(tmp_path / "study")
    assert result.input.series["chosen_because"].startswith("the lowest of 2 stations")  # kept in result.json
    labels = [v.label.value for v in result.vertebrae if v.label is not None]
    assert {"L1", "L2", "L3", "L4", "L5"} <= set(labels)
    graded = [d for d in result.discs if any(g.available and g.grade is not None for g in d.grades.values())]
    assert len(graded) >= 5
    assert not any(f.startswith("other_series_unread") for f in result.flags)


def test_stations_whose_heights_cannot_be_compared_read_the_one_that_shows_the_lumbar_spine(
    shared_data: Path, tmp_path: Path
) -> None:
    """Each station in its own frame of reference: the heights cannot be compared, so the series with the most
    slices (the cervical one) is chosen first; it shows no lumbar vertebra, so the other sagittal series is read
    instead, and the result says so (it had read the cervical station and graded nothing: user test)."""
    import openspine

    whole_spine_study(tmp_path / "study", one_frame=False)
    result = openspine.analyze(tmp_path / "study")
    assert {"L1", "L2", "L3", "L4", "L5"} <= {v.label.value for v in result.vertebrae if v.label is not None}
    assert [d for d in result.discs if d.graded]
    said = (
        "the series chosen first, T2_TSE_SAG_1 (--series 1), shows no lumbar vertebra (field of view: cervical); "
        "T2_TSE_SAG_2 (--series 2) was read instead"
    )
    assert result.flags[0] == f"series_switched: {said}", result.flags
    assert result.input.series["chosen_because"] == said and result.input.series["series_number"] == 2
    assert not any(f.startswith("other_series_unread") for f in result.flags)
    assert result.parameters["series"] is None  # the options as given: the same call reads the same series
    assert result.timings_s["total"] > result.timings_s["series_tried"] > 0  # both analyses' time
    # a series the user names is read whatever it shows, with the flag that names the others
    neck = openspine.analyze(tmp_path / "study", series="1")
    assert not any(f.startswith("series_switched") for f in neck.flags)
    flag = next(f for f in neck.flags if f.startswith("other_series_unread"))
    assert flag == (
        "other_series_unread: the series analysed shows no lumbar vertebra (field of view: cervical); the study's "
        "other sagittal series, not analysed: T2_TSE_SAG_2 (--series 2); one may show the lumbar spine (openspine "
        "info lists them)"
    )


def test_stations_saved_as_one_series_are_read_as_stations(shared_data: Path, tmp_path: Path) -> None:
    """Two stations of a lumbar volume (fcs-vb2-13: rows 0–249 and 120–380, overlapping) saved under one series UID
    and number: read as one they had failed the study as duplicate slice positions (user test); now each stack is a
    series of its own, the lower station is read and graded, and the upper one is named with its stack."""
    import openspine
    from dicom_fixtures import _load_nifti

    arr, affine = _load_nifti("fastcleverseg/fcs-vb2-13/image.nii.gz")
    shift = np.eye(4)
    shift[2, 3] = 18
    arr, affine = np.array(arr[:, :, 18:58]), affine @ shift
    ids, _ = write_series(tmp_path, np.array(arr[:250]), affine, prefix="UP")
    shift = np.eye(4)
    shift[0, 3] = 120
    write_series(tmp_path, np.array(arr[120:]), affine @ shift, ids=ids, prefix="LO")
    result = openspine.analyze(tmp_path)
    assert result.input.series["series_uid"] == f"{ids.series_uid} (stack 2 of 2)"
    assert result.input.series["chosen_because"].startswith("the lowest of 2 stations")
    assert "S1" in {v.label.value for v in result.vertebrae if v.label is not None}
    assert sum(d.graded for d in result.discs) >= 4
    upper = openspine.analyze(tmp_path, series=f"{ids.series_uid} (stack 1 of 2)")
    assert upper.input.series["series_uid"].endswith("(stack 1 of 2)")


def test_a_lower_t1_station_is_named_where_the_t2_read_shows_no_lumbar_spine(shared_data: Path, tmp_path: Path) -> None:
    """A cervical T2 station above a lumbar T1 station (user test: the T2 was read, every label withheld, and the
    only series showing the lumbar spine was named nowhere but in a log line)."""
    import openspine

    whole_spine_study(tmp_path / "study", lumbar="T1_TSE_SAG")
    study = load_study(tmp_path / "study")
    assert study.roles[1].sequence == "T1" and study.roles[1].reason.startswith("another station: it images a lower")
    neck = openspine.analyze(tmp_path / "study", series="1")
    flag = next(f for f in neck.flags if f.startswith("other_series_unread"))
    assert "not analysed: T1_TSE_SAG (T1, --series 2); one may show the lumbar spine" in flag
    # chosen by the study's rules, the T2 station shows no lumbar spine: the T1 station is read instead, labelled
    # down to the sacrum, and not graded (the grader reads T2 only)
    result = openspine.analyze(tmp_path / "study")
    assert any(f.startswith("series_switched: ") and "T1_TSE_SAG (T1, --series 2)" in f for f in result.flags)
    assert "sacral" in result.input.field_of_view["regions"] and not any(d.graded for d in result.discs)


def test_a_higher_station_is_not_offered_for_the_lumbar_spine(shared_data: Path, tmp_path: Path) -> None:
    """The lowest station read shows no sacrum: the station above it cannot show the lumbar spine below (user test:
    the flag offered it)."""
    import openspine

    whole_spine_study(tmp_path / "study", lumbar_rows=slice(0, 230))  # the lower station's top: no sacrum
    result = openspine.analyze(tmp_path / "study")
    assert result.input.series["chosen_because"].startswith("the lowest of 2 stations")
    assert "sacral" not in result.input.field_of_view["regions"]
    assert not any(f.startswith("other_series_unread") for f in result.flags)


def test_the_flag_names_what_the_series_read_lacks() -> None:
    """A thoraco-lumbar series read beside a lumbar one it cannot be compared with (user test: no grade and no word of
    the other series): the flag fires wherever the sacrum is not seen, and says what is missing."""
    from openspine.analysis import _other_series_flag

    upper = {"value": "thoracic+lumbar", "regions": ["thoracic", "lumbar"]}
    assert _other_series_flag(["T2 SAG LUMBAR (--series 5)"], upper).startswith(
        "other_series_unread: the series analysed shows no sacrum (field of view: thoracic+lumbar); the study's other "
        "sagittal series, not analysed: T2 SAG LUMBAR (--series 5)"
    )
    neck = {"value": "cervical", "regions": ["cervical"]}
    assert "shows no lumbar vertebra (field of view: cervical)" in _other_series_flag(["x (--series 2)"], neck)


def test_the_series_read_instead_is_the_one_that_gives_most_and_a_series_that_grades_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rules of the switch, on results made up for them: a first series that grades discs stays (one showing the
    sacrum had replaced a series that graded 5 discs by one grading 3; review); of the others, the one that grades
    the most discs is read, a station reaching no lumbar vertebra never (a refused first series had been replaced by
    a cervical one); the series not read stay named; the study's own flags stay."""
    import numpy as np

    from openspine import analysis
    from openspine.config import AnalysisConfig
    from openspine.results import AnalysisResult, Disc, Grade, InputInfo
    from openspine.scan import Scan

    base = InputInfo.from_scan(Scan(np.zeros((4, 4, 1), np.float32), np.eye(4)))

    def made(number: int, regions: tuple[str, ...], graded: int, out: str | None = None) -> AnalysisResult:
        discs = tuple(
            Disc(None, (0, 0, 0), (0, 0, 0), grades={"pfirrmann": Grade(2, {"2": 1.0})}) for _ in range(graded)
        )
        fov = {"value": "+".join(regions) or "none", "regions": list(regions)}
        series = {"series_number": number, "series_description": f"S{number}"}
        return AnalysisResult(
            input=dataclasses.replace(base, field_of_view=fov, series=series), discs=discs, out_of_scope=out,
            flags=("other_series_unread: …",) if "sacral" not in regions else (), timings_s={"total": 1.0},
        )  # fmt: skip

    def switched(first: AnalysisResult, others: dict[str, AnalysisResult]) -> AnalysisResult:
        def analysed(source: object, cfg: AnalysisConfig, *args: object) -> AnalysisResult:
            return others[str(cfg.series)]

        monkeypatch.setattr(analysis, "_analyze_configured", analysed)
        unread = [(f"S{k} (--series {k})", k) for k in others]
        return analysis._lumbar_series_instead(first, unread, "study", AnalysisConfig(), None, None)

    upper = made(1, ("thoracic", "lumbar"), 5)
    assert switched(upper, {"2": made(2, ("lumbar", "sacral"), 3)}) is upper  # it grades: it stays
    neck = made(1, ("cervical",), 0)
    neck = dataclasses.replace(neck, flags=("several_studies: the folder holds 2 studies", *neck.flags))
    thoraco_lumbar, lumbar = made(2, ("thoracic", "lumbar"), 0), made(3, ("lumbar", "sacral"), 5)
    best = switched(neck, {"2": thoraco_lumbar, "3": lumbar})
    assert best.input.series["series_number"] == 3, best.flags
    assert best.flags[0].startswith("series_switched: the series chosen first, S1 (--series 1), shows no lumbar")
    assert "several_studies: the folder holds 2 studies (read instead: see series_switched)" in best.flags
    # no sacrum anywhere: the thoraco-lumbar station is read instead of the neck, and the series not read is named
    only = switched(neck, {"2": thoraco_lumbar, "4": made(4, ("cervical",), 0)})
    assert only.input.series["series_number"] == 2
    assert any(f.startswith("other_series_unread:") and "S4 (--series 4)" in f for f in only.flags), only.flags
    refused = made(1, (), 0, out="no spine")
    assert switched(refused, {"2": made(2, ("cervical",), 0)}) is refused  # no lumbar vertebra: no better


def test_the_t1_read_beside_is_of_the_main_series_frame_of_reference() -> None:
    """Stations in frames of reference of their own, which no height compares: the T1 of the lumbar T2's frame is
    read beside it, not the cervical T1 of more slices (review: read after a series switch)."""
    neck_t2, lumbar_t2 = _info(1, "sagittal", 52, "T2"), _info(2, "sagittal", 40, "T2")
    neck_t1, lumbar_t1 = _info(11, "sagittal", 52, "T1"), _info(12, "sagittal", 30, "T1")
    neck, lumbar = "1.2.9.1", "1.2.9.2"
    found = [
        dataclasses.replace(neck_t2, frame_of_reference_uid=neck),
        dataclasses.replace(lumbar_t2, frame_of_reference_uid=lumbar),
        dataclasses.replace(neck_t1, frame_of_reference_uid=neck),
        dataclasses.replace(lumbar_t1, frame_of_reference_uid=lumbar),
    ]
    roles = series_roles(found, 2)
    assert [r.role for r in roles] == ["not used", "main", "not used", "T1"], [r.reason for r in roles]
    assert (
        roles[2].reason == "a second sagittal T1 series (the one read is [3], in the main series' frame of reference)"
    )
    # one frame for all (or none known): the T1 of more slices, as before
    same = [dataclasses.replace(s, frame_of_reference_uid=None) for s in found]
    assert [r.role for r in series_roles(same, 2)] == ["not used", "main", "T1", "not used"]


def test_two_unnamed_series_whose_first_choice_reads_t1_read_the_other_one(shared_data: Path, tmp_path: Path) -> None:
    """An anonymised export without descriptions: a T2 (series 3) and a T1 (series 4) of one patient, the same
    number of slices; the later series, the T1, is chosen by the header rules and graded nothing, and the T2 had been
    left unsaid (user test). The T1's image reads T1, so the other series is read instead, and the flag says so."""
    import openspine
    from dicom_fixtures import T1_VOLUME, T2_VOLUME, _load_nifti

    study, frame = generate_uid(), generate_uid()
    for number, volume in ((3, T2_VOLUME), (4, T1_VOLUME)):
        arr, affine = _load_nifti(volume)
        write_series(tmp_path / f"s{number}", np.array(arr), affine, ids=new_ids(study, frame),
                     series_number=number, description=None)  # fmt: skip
    result = openspine.analyze(tmp_path)
    assert result.input.series["series_number"] == 3 and result.input.sequence["value"] == "T2"
    assert [d for d in result.discs if d.graded]
    switched = next(f for f in result.flags if f.startswith("series_switched: "))
    assert (
        "unnamed series (--series 4), reads as T1 (image), which the grader does not read; unnamed series (--series 3) "
        "was read instead" in switched
    )


def test_a_t1_of_another_patient_in_the_same_study_is_not_read_beside_and_info_says_why() -> None:
    """One StudyInstanceUID, two PatientIDs (a merged export): analyze set the T1 aside as another patient's while
    info listed it as read beside the main series (user test). The roles now agree."""
    t2 = dataclasses.replace(_info(3, "sagittal", 15, "T2"), patient_key="a")
    t1 = dataclasses.replace(_info(4, "sagittal", 15, "T1"), patient_key="b")
    roles = series_roles([t2, t1])
    assert roles[1].role == "not used" and "another patient's (its PatientID differs" in roles[1].reason
    same = series_roles([t2, dataclasses.replace(t1, patient_key="a")])
    assert same[1].role == "T1"
    unknown = series_roles([t2, dataclasses.replace(t1, patient_key=None)])  # no PatientID: not told apart
    assert unknown[1].role == "T1"


def test_only_a_sure_non_t2_reading_that_is_not_the_users_sends_for_the_studys_other_series() -> None:
    """An unsure call may be the T2 itself, and the user's --sequence would be given to the other series too: neither
    flags the unnamed series as maybe the T2 (review)."""
    from openspine.analysis import _reads_as_no_t2

    assert _reads_as_no_t2({"value": "T1", "source": "image"}) and _reads_as_no_t2(
        {"value": "other", "source": "header"}
    )
    assert not _reads_as_no_t2({"value": "T2", "source": "image"})
    assert not _reads_as_no_t2({"value": None, "source": "image", "best_guess": "T1"})
    assert not _reads_as_no_t2({"value": "T1", "source": "user"})


def test_fluid_beyond_any_t2_is_not_flagged_on_a_scan_named_another_sequence() -> None:
    from openspine.analysis import _State, _withhold_grades_of_unseen_contrast

    for value, flagged in (("STIR", False), ("other", False), ("T2", True), (None, True)):
        state = _State()
        _withhold_grades_of_unseen_contrast(7.3, {"value": value, "source": "header"}, state)
        assert any(f.startswith("intensity_unusual:") for f in state.flags) is flagged, value
        assert (state.contrast_unseen is not None) is flagged
