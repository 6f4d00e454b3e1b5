"""Find the cases under a cohort folder: DICOM studies, NIfTI files, BIDS datasets.

Every candidate becomes a case, also a broken one (an empty folder, a study without a sagittal series): it
then fails in the run and is reported in failures.csv, instead of silently vanishing. Every other file under the
root is listed as skipped with the reason: label maps, sidecars, other BIDS modalities, files that are not
scans, hidden files and folders, DICOM files that are unreadable or truncated or hold no image, and the other
series of a DICOM study (one case analyses one series). ``--dry-run`` lists them, a run writes them to
skipped.csv: nothing under the root vanishes unaccounted for.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._logging import get_logger
from ..io.formats import Reader, reader_for_name

if TYPE_CHECKING:
    from ..io.dicom import SeriesInfo

log = get_logger("batch")

# BIDS anatomical suffixes that can be sagittal spine images
BIDS_ANAT = re.compile(r"_(T1w|T2w|T2starw|STIR|PDw|FLAIR|UNIT1|acq-[^_]+_T2w)\.nii(\.gz)?$")
LABEL_NAME = re.compile(r"(^|[_\-.])(mask|masks|label|labels|seg|dseg|points|roi)([_\-.]|$)", re.IGNORECASE)
BIDS_DATATYPES = ("anat", "dwi", "func", "fmap", "perf", "pet", "micr", "beh", "eeg", "meg", "ieeg")
# sidecars and documents beside the scans (the file types the readers know come from openspine.io.formats)
NOT_SCANS = {".json", ".tsv", ".csv", ".txt", ".md", ".bval", ".bvec", ".html", ".pdf"}


@dataclass(frozen=True)
class Case:
    """One scan to analyse. ``problem`` is set when discovery already knows it cannot be analysed."""

    case_id: str
    path: str
    kind: str  # a reader's name ("dicom", "nifti"), "bids" or "empty"
    series: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._\-]+", "_", text).strip("._") or "case"


def _is_bids(rel: Path) -> bool:
    parts = rel.parts  # .../sub-XX/[ses-YY/]<datatype>/file, possibly below a dataset folder
    return len(parts) >= 3 and any(p.startswith("sub-") for p in parts[:-2]) and parts[-2] in BIDS_DATATYPES


def discover_cases(root: str | os.PathLike[str]) -> tuple[list[Case], list[Skipped]]:
    """All cases under ``root``, sorted by case id, and the files passed over with the reason."""
    root = Path(root)
    cases: list[Case] = []
    skipped: list[Skipped] = []
    other_files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        skipped.extend(Skipped(str(rel_dir / d) + os.sep, "hidden") for d in dirnames if d.startswith("."))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if not filenames and not dirnames and here != root:
            cases.append(Case(_safe_id(str(rel_dir)), str(here), "empty", problem=f"'{here}' is an empty folder"))
            continue
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root)
            if name.startswith("."):
                skipped.append(Skipped(str(rel), "hidden"))
                continue
            reader = reader_for_name(name)
            if reader is not None:
                cases.extend(_file_case(reader, path, rel, skipped))
            elif path.suffix.lower() in NOT_SCANS or name == "DICOMDIR":
                skipped.append(Skipped(str(rel), "not an image file"))
            else:
                other_files.append(path)
    if other_files:
        cases.extend(_dicom_cases(root, other_files, skipped))
    seen: dict[str, int] = defaultdict(int)
    unique: list[Case] = []
    for c in sorted(cases, key=lambda c: (c.case_id, c.path, c.series or "")):
        seen[c.case_id] += 1
        n = seen[c.case_id]
        unique.append(c if n == 1 else Case(f"{c.case_id}__{n}", c.path, c.kind, c.series, c.problem))
    return unique, sorted(skipped, key=lambda s: s.path)


def _file_case(reader: Reader, path: Path, rel: Path, skipped: list[Skipped]) -> list[Case]:
    """The case of a file that a reader knows by its suffix, or none (the file then listed in ``skipped``)."""
    stem = reader.stem(path.name)
    if reader.batch_skip is not None:
        skipped.append(Skipped(str(rel), reader.batch_skip))
    elif LABEL_NAME.search(stem):
        skipped.append(Skipped(str(rel), "looks like a label map, not an image"))
    elif _is_bids(rel):
        if rel.parts[-2] != "anat" or not BIDS_ANAT.search(path.name):
            skipped.append(Skipped(str(rel), "BIDS file that is not an anatomical image"))
        else:
            return [Case(_safe_id(stem), str(path), "bids")]
    else:
        return [Case(_safe_id(reader.stem(str(rel)).replace(os.sep, "__")), str(path), reader.name)]
    return []


def _dicom_cases(root: Path, files: list[Path], skipped: list[Skipped]) -> list[Case]:
    """One case per DICOM study: its sagittal series, chosen as single-scan mode does.

    Every file in ``files`` ends up in a case (a member of the chosen series, or of a study that fails as a
    whole) or in ``skipped`` with the reason (not DICOM, unreadable, truncated, no image, another series).
    """
    from ..errors import ScanReadError, SeriesSelectionError
    from ..io.dicom import choose_series, discover_series, is_dicom_file

    dicom_files: list[Path] = []
    for f in files:
        if is_dicom_file(f):
            dicom_files.append(f)
        else:
            skipped.append(Skipped(str(f.relative_to(root)), _why_not_dicom(f)))
    if not dicom_files:
        return []
    try:
        series = discover_series(root)
    except ScanReadError as exc:  # DICOM files, but none with images: each is listed as skipped below
        log.debug("no DICOM image series under %s: %s", root, exc)
        series = []
    studies: dict[str, list[SeriesInfo]] = defaultdict(list)
    for s in series:
        if all(_hidden(p.relative_to(root)) for p in s.files):
            continue  # under a hidden folder, listed as skipped ("hidden") already
        studies[s.study_uid or f"folder:{s.files[0].parent}"].append(s)
    out: list[Case] = []
    accounted: set[Path] = set()
    for members in studies.values():
        folder = Path(os.path.commonpath([str(p.parent) for s in members for p in s.files]))
        case_id = _safe_id(str(folder.relative_to(root)) if folder != root else members[0].series_uid)
        try:
            chosen = choose_series(members, None, quiet=True)
        except SeriesSelectionError as exc:
            out.append(Case(case_id, str(folder), "dicom", problem=str(exc)))
            accounted.update(p for s in members for p in s.files)  # all part of the failing case
            continue
        out.append(Case(case_id, str(folder), "dicom", series=chosen.series_uid))
        accounted.update(chosen.files)
        for other in members:
            if other is not chosen:
                skipped.extend(_other_series(root, other, case_id, files))
                accounted.update(other.files)
    for f in dicom_files:
        if f not in accounted:
            skipped.append(Skipped(str(f.relative_to(root)), _why_no_series(f)))
    return out


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _why_not_dicom(path: Path) -> str:
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if size == 0:
        return "empty file"
    return "not a DICOM, NIfTI or known file type"


def _other_series(root: Path, series: SeriesInfo, case_id: str, files: list[Path]) -> list[Skipped]:
    """A study's series that its case does not analyse: one entry for a folder holding only that series, else
    one per file."""
    reason = f"another series of case {case_id} ({series.describe()}): not the series analysed"
    members = set(series.files)
    folder = Path(os.path.commonpath([str(p.parent) for p in members]))
    if folder != root and {f for f in files if f.is_relative_to(folder)} <= members:
        return [Skipped(str(folder.relative_to(root)) + os.sep, reason)]
    return [Skipped(str(p.relative_to(root)), reason) for p in sorted(members)]


_IMAGE_MODALITIES = {"MR", "CT", "PT", "NM", "CR", "DX", "MG", "XA", "RF", "US", "OT"}


def _why_no_series(path: Path) -> str:
    """Why a file that looked like DICOM is in no image series: unreadable, truncated, or not an image."""
    from ..errors import ScanReadError
    from ..io.dicom import _DICOMDIR_SOP_CLASS, _read_header, _UnreadableHeader

    if path.name.upper() == "DICOMDIR":
        return "DICOMDIR (an index of the media, not an image)"
    try:
        header = _read_header(path)
    except _UnreadableHeader as exc:
        return f"DICOM file with an unreadable header (corrupt or truncated): {exc}"
    except ScanReadError as exc:
        return f"cannot be read: {exc}"
    if header is None:
        return "not a DICOM file (its header does not parse)"
    ds, has_pixels = header
    modality = str(ds.get("Modality", "") or "")
    if str(ds.get("SOPClassUID", "")) == _DICOMDIR_SOP_CLASS:
        return "DICOMDIR (an index of the media, not an image)"
    if not has_pixels and ("Rows" in ds or modality in _IMAGE_MODALITIES or not modality):
        return f"truncated or incomplete DICOM file: no image pixel data after its header ({len(ds)} data elements)"
    if not has_pixels:
        return f"DICOM object without image pixel data (modality {modality}): a report or similar, not an image"
    return "DICOM image in no series that discovery found"
