"""Batch discovery of entries that are no scan: broken and looping symbolic links, named pipes, empty folders, an
empty root, and an output folder refused for lying inside the input. Small synthetic inputs, no analysis."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from openspine.batch.discover import Case, Skipped, discover_cases
from openspine.batch.runner import run_batch
from openspine.cli import main
from openspine.errors import ConfigError, ScanReadError

SAGITTAL = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # columns: i → inferior, j → A, k → R


def _study(folder: Path) -> None:
    """A small sagittal DICOM series (4 slices of 16 × 16)."""
    from dicom_fixtures import make_affine, write_series

    arr = np.arange(16 * 16 * 4, dtype=np.uint16).reshape(16, 16, 4)
    write_series(folder, arr, make_affine(SAGITTAL, (1.0, 1.0, 4.0), (0.0, 0.0, 0.0)))


def _reasons(skipped: list[Skipped]) -> dict[str, str]:
    return {s.path: s.reason for s in skipped}


def test_a_study_whose_files_lie_in_the_root_takes_the_root_s_name(tmp_path: Path) -> None:
    """Not its SeriesInstanceUID, which had named the case folder and the tables' rows."""
    _study(tmp_path / "patB")
    (cases,) = discover_cases(tmp_path / "patB")[0]
    assert cases.case_id == "patB"


def test_broken_and_looping_links_are_skipped_and_the_study_is_still_found(tmp_path: Path) -> None:
    _study(tmp_path / "patA")
    (tmp_path / "old_link.nii.gz").symlink_to("/nonexistent")
    (tmp_path / "self.dcm").symlink_to("self.dcm")
    (tmp_path / "patA" / "IM9999.dcm").symlink_to(tmp_path / "gone.dcm")  # inside the study folder too
    (tmp_path / "elsewhere").symlink_to(tmp_path / "patA", target_is_directory=True)
    cases, skipped = discover_cases(tmp_path)
    assert [c.case_id for c in cases] == ["patA"] and cases[0].series and cases[0].path == str(tmp_path / "patA")
    reasons = _reasons(skipped)
    assert reasons == {
        "old_link.nii.gz": "cannot be read: a broken symbolic link (its target '/nonexistent' does not exist)",
        "self.dcm": "cannot be read: a loop of symbolic links",
        str(Path("patA/IM9999.dcm")): f"cannot be read: a broken symbolic link (its target '{tmp_path}/gone.dcm' "
        "does not exist)",
        "elsewhere" + os.sep: "symbolic link to a folder (not followed)",
    }


def test_a_run_over_a_loop_of_links_finishes_with_its_tables(tmp_path: Path) -> None:
    # the run had analysed every case and then died resolving the loop when listing stale case folders
    root, out = tmp_path / "in", tmp_path / "out"
    _study(root / "patA")
    (root / "loopA").symlink_to("loopB")
    (root / "loopB").symlink_to("loopA")
    summary = run_batch(root, out)
    assert (out / "skipped.csv").read_text().count("a loop of symbolic links") == 2
    assert (out / "cases.csv").is_file() and (out / "stale_cases.csv").is_file()
    assert summary is not None


def _discover_or_fail(root: Path, fifo: Path) -> tuple[list[Case], list[Skipped]]:
    """discover_cases(root) in a thread; fails the test (after unblocking it) if it opens the named pipe."""
    found: list[tuple[list[Case], list[Skipped]]] = []
    worker = threading.Thread(target=lambda: found.append(discover_cases(root)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():
        while worker.is_alive():  # a reader blocked in open(): give it a writer so that it returns
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                time.sleep(0.05)
        pytest.fail("batch discovery opened the named pipe and waited on it")
    return found[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_a_named_pipe_is_skipped_without_being_opened(tmp_path: Path) -> None:
    _study(tmp_path / "patA")
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    cases, skipped = _discover_or_fail(tmp_path, fifo)
    assert [c.case_id for c in cases] == ["patA"]
    assert _reasons(skipped) == {"pipe.dcm": "not a regular file (a named pipe)"}


def test_an_empty_folder_is_skipped_not_a_failing_case(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.float32), np.eye(4)), str(tmp_path / "scan.nii.gz"))
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    cases, skipped = discover_cases(tmp_path)
    assert [c.case_id for c in cases] == ["scan"]
    assert _reasons(skipped) == {str(Path("empty/deeper")) + os.sep: "empty folder"}


def test_an_empty_file_with_an_image_name_is_skipped_not_a_failing_case(tmp_path: Path) -> None:
    """A zero-byte 'zero.nii.gz' (a copy that never finished) became a case that failed at reading; other empty
    files were already skipped as such."""
    (tmp_path / "zero.nii.gz").touch()
    (tmp_path / "zero.png").touch()
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), np.uint8), np.eye(4)), str(tmp_path / "scan.nii.gz"))
    cases, skipped = discover_cases(tmp_path, pictures=True)
    assert [c.case_id for c in cases] == ["scan"]
    assert Skipped("zero.nii.gz", "empty file") in skipped and Skipped("zero.png", "empty file") in skipped


def test_an_empty_root_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "in"
    root.mkdir()
    with pytest.raises(ScanReadError, match="no inputs found under .*: it is empty"):
        run_batch(root, tmp_path / "out", formats=("json",))
    assert not (tmp_path / "out").exists()  # the folder it made is removed: nothing in it to read (user test)
    with pytest.raises(ScanReadError, match="it is empty"):
        run_batch(root, tmp_path / "nx" / "y" / "z", formats=("json",))
    assert not (tmp_path / "nx").exists()  # and the parents it made for it (review)
    (root / "notes.txt").write_text("no scan here")
    assert main(["-q", "batch", str(root), "--out", str(tmp_path / "out2")]) == 1
    err = capsys.readouterr().err
    assert "no inputs found under" in err and "the 1 entry there is listed in" in err
    assert len(err.strip().splitlines()) == 1
    assert {p.name for p in (tmp_path / "out2").iterdir()} == {"skipped.csv", ".openspine-batch-1-of-1.lock"}
    # pointed at the output folder of an earlier run, it says that the tables there are not this run's
    (tmp_path / "out2" / "cases.csv").write_text("case\n")
    assert main(["-q", "batch", str(root), "--out", str(tmp_path / "out2")]) == 1
    assert f"; the cohort tables in '{tmp_path / 'out2'}' are an earlier run's" in capsys.readouterr().err
    # a dry run says the same, after listing what it passed over
    assert main(["-q", "batch", str(root), "--out", str(tmp_path / "out3"), "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert "notes.txt" in captured.out and "no inputs found under" in captured.err


def test_an_output_folder_inside_the_input_is_refused_before_it_is_made(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.float32), np.eye(4)), str(tmp_path / "scan.nii.gz"))
    with pytest.raises(ConfigError, match="lies inside the input folder"):
        run_batch(tmp_path, tmp_path / "results", formats=("json",))
    assert not (tmp_path / "results").exists()


def test_a_link_to_a_file_of_another_case_is_not_a_second_case(tmp_path: Path) -> None:
    img = nib.Nifti1Image(np.zeros((8, 8, 4), np.float32), np.eye(4))
    nib.save(img, tmp_path / "scan.nii.gz")
    (tmp_path / "a_copy.nii.gz").symlink_to(tmp_path / "scan.nii.gz")  # sorts first: the file is kept anyway
    cases, skipped = discover_cases(tmp_path)
    assert [Path(c.path).name for c in cases] == ["scan.nii.gz"]
    assert _reasons(skipped) == {"a_copy.nii.gz": "the same file as 'scan.nii.gz' (a link)"}


def test_t1_files_sharing_their_content_stay_paired_with_their_own_t2(tmp_path: Path) -> None:
    # git-annex (DataLad) links files of equal content to one object: the T1s must not be taken as one case's copy
    for sub, value in (("01", 1.0), ("02", 2.0)):
        anat = tmp_path / f"sub-{sub}" / "anat"
        anat.mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.full((8, 8, 4), value, np.float32), np.eye(4)), anat / f"sub-{sub}_T2w.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4), np.float32), np.eye(4)), tmp_path / "t1-object.nii.gz")
    for sub in ("01", "02"):
        (tmp_path / f"sub-{sub}" / "anat" / f"sub-{sub}_T1w.nii.gz").symlink_to(tmp_path / "t1-object.nii.gz")
    cases, _ = discover_cases(tmp_path)
    with_t1 = {Path(c.path).name: Path(c.t1).name for c in cases if c.t1}
    assert with_t1 == {"sub-01_T2w.nii.gz": "sub-01_T1w.nii.gz", "sub-02_T2w.nii.gz": "sub-02_T1w.nii.gz"}


def _scan(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.float32), np.eye(4)), str(path))


def test_folders_that_cannot_be_listed_or_entered_are_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as root every permission passes, so the system's refusals are played here: a folder that cannot be listed
    # (chmod 000) had vanished from the run, and one that can be listed but not entered (chmod 444) crashed it
    for name in ("good", "locked", "noexec"):
        _scan(tmp_path / name / "scan.nii.gz")
    real_scandir, real_stat = os.scandir, os.stat

    def scandir(path: object = ".") -> object:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    def stat(path: object, *args: object, **kwargs: object) -> object:
        if str(path).endswith(os.path.join("noexec", ".")):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "stat", stat)
    cases, skipped = discover_cases(tmp_path)
    assert [c.case_id for c in cases] == ["good__scan"]
    reasons = {s.path: s.reason for s in skipped}
    assert reasons["locked" + os.sep] == "folder cannot be read (Permission denied)"
    assert reasons["noexec" + os.sep] == "folder cannot be entered (Permission denied)"


def test_an_input_root_that_cannot_be_read_is_said_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # it had read "no inputs found … listed in skipped.csv", whose one row was "./, folder cannot be read"
    _scan(tmp_path / "root" / "scan.nii.gz")
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if str(path).endswith("root"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(ConfigError, match=r"batch input '.*root': folder cannot be read \(Permission denied\)"):
        discover_cases(tmp_path / "root")
