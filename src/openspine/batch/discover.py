"""Find the cases under a cohort folder: DICOM studies, NIfTI files, BIDS datasets.

Every candidate becomes a case, also a broken one (an empty folder, a study without a sagittal series): it
then fails in the run and is reported in failures.csv, instead of silently vanishing. Only files that are not
scans at all (label maps, sidecars, other BIDS modalities) are skipped, and ``--dry-run`` says why.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .._logging import get_logger

log = get_logger("batch")

NIFTI_SUFFIXES = (".nii.gz", ".nii")
# BIDS anatomical suffixes that can be sagittal spine images
BIDS_ANAT = re.compile(r"_(T1w|T2w|T2starw|STIR|PDw|FLAIR|UNIT1|acq-[^_]+_T2w)\.nii(\.gz)?$")
LABEL_NAME = re.compile(r"(^|[_\-.])(mask|masks|label|labels|seg|dseg|points|roi)([_\-.]|$)", re.IGNORECASE)
BIDS_DATATYPES = ("anat", "dwi", "func", "fmap", "perf", "pet", "micr", "beh", "eeg", "meg", "ieeg")
NOT_SCANS = {".json", ".tsv", ".csv", ".txt", ".md", ".bval", ".bvec", ".html", ".png", ".jpg", ".pdf"}


@dataclass(frozen=True)
class Case:
    """One scan to analyse. ``problem`` is set when discovery already knows it cannot be analysed."""

    case_id: str
    path: str
    kind: str  # "dicom", "nifti", "bids", "empty"
    series: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._\-]+", "_", text).strip("._") or "case"


def _strip_nifti(name: str) -> str:
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


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
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        if not filenames and not dirnames and here != root:
            cases.append(Case(_safe_id(str(rel_dir)), str(here), "empty", problem=f"'{here}' is an empty folder"))
            continue
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root)
            if name.startswith("."):
                continue
            if name.lower().endswith(NIFTI_SUFFIXES):
                if LABEL_NAME.search(_strip_nifti(name)):
                    skipped.append(Skipped(str(rel), "looks like a label map, not an image"))
                elif _is_bids(rel):
                    if rel.parts[-2] != "anat" or not BIDS_ANAT.search(name):
                        skipped.append(Skipped(str(rel), "BIDS file that is not an anatomical image"))
                    else:
                        cases.append(Case(_safe_id(_strip_nifti(name)), str(path), "bids"))
                else:
                    cases.append(Case(_safe_id(_strip_nifti(str(rel)).replace(os.sep, "__")), str(path), "nifti"))
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
    return unique, skipped


def _dicom_cases(root: Path, files: list[Path], skipped: list[Skipped]) -> list[Case]:
    """One case per DICOM study: its sagittal series, chosen as single-scan mode does."""
    from ..errors import ScanReadError, SeriesSelectionError
    from ..io.dicom import SeriesInfo, choose_series, discover_series, is_dicom_file

    dicom_files = {f for f in files if is_dicom_file(f)}
    for f in files:
        if f not in dicom_files:
            skipped.append(Skipped(str(f.relative_to(root)), "not a DICOM, NIfTI or known file type"))
    if not dicom_files:
        return []
    try:
        series = discover_series(root)
    except ScanReadError as exc:  # DICOM files, but none with images: one failing case says so
        return [Case(_safe_id(root.name), str(root), "dicom", problem=str(exc))]
    studies: dict[str, list[SeriesInfo]] = defaultdict(list)
    for s in series:
        studies[s.study_uid or f"folder:{s.files[0].parent}"].append(s)
    out: list[Case] = []
    for members in studies.values():
        folder = Path(os.path.commonpath([str(p.parent) for s in members for p in s.files]))
        case_id = _safe_id(str(folder.relative_to(root)) if folder != root else members[0].series_uid)
        try:
            chosen = choose_series(members, None, quiet=True)
            out.append(Case(case_id, str(folder), "dicom", series=chosen.series_uid))
        except SeriesSelectionError as exc:
            out.append(Case(case_id, str(folder), "dicom", problem=str(exc)))
    return out
