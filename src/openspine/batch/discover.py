"""Find the cases under a cohort folder: DICOM studies, NIfTI files, BIDS datasets, and PNG/JPEG pictures when the
run is given their pixel spacing.

Every candidate becomes a case, also a broken one (a study without a sagittal series): it then fails in the run
and is reported in failures.csv, instead of silently vanishing. Every other file under the root is listed as
skipped with the reason: label maps, sidecars, other BIDS modalities, files that are not scans, hidden files and
folders, empty folders, broken or looping symbolic links and anything that is not a regular file (a named pipe is
never opened), DICOM files that are unreadable or truncated or hold no image, and the series of a
DICOM study that its case does not read (STIR, a second T1, axial series, ...; the role rule of
:func:`openspine.io.load_study`). A DICOM study's sagittal T1 series is part of its case, read beside the main
series; in a BIDS ``anat`` folder a ``_T2w`` and a ``_T1w`` file whose other entities agree are one case (the T2w
graded, the T1w beside it). ``--dry-run`` lists the cases and the skipped files, a run writes the skipped files to
skipped.csv: nothing under the root vanishes unaccounted for.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .._logging import get_logger, held_back
from ..errors import ConfigError
from ..io.formats import LABEL_MAP, Reader, convert_hint, looks_like_label_map, reader_for_name
from ..io.paths import NOT_REGULAR, not_a_regular_file, resolved
from ..io.sidecar import inherited_sidecar

if TYPE_CHECKING:
    from ..io.dicom import SeriesInfo
    from .spacing import PictureSpacings

log = get_logger("batch")

# BIDS anatomical suffixes that can be sagittal spine images
# an anatomical BIDS file (a name of the suffix alone, "T2w.nii.gz" inside sub-01/anat/, too)
BIDS_ANAT = re.compile(r"(?:^|_)(T1w|T2w|T2starw|STIR|PDw|FLAIR|UNIT1|acq-[^_]+_T2w)\.nii(\.gz)?$")
BIDS_DATATYPES = ("anat", "dwi", "func", "fmap", "perf", "pet", "micr", "beh", "eeg", "meg", "ieeg")
# sidecars and documents beside the scans (the file types the readers know come from openspine.io.formats)
ID_HASH_CHARS = 6  # hex digits of the suffix that tells apart cases whose paths give the same id
NOT_SCANS = {".json", ".tsv", ".csv", ".txt", ".md", ".bval", ".bvec", ".html", ".pdf"}


@dataclass(frozen=True)
class Case:
    """One scan to analyse. ``problem`` is set when discovery already knows it cannot be analysed.

    Attributes:
        series: the main series of a DICOM study (its SeriesInstanceUID).
        t1: a T1 file read beside the main scan (a BIDS ``_T1w`` paired with the case's ``_T2w``).
        t1_series: the SeriesInstanceUID of the study's T1 series that the analysis reads beside the main series
            (it finds it in the study folder itself: see :func:`openspine.io.load_study`).
        series_reason: why discovery chose the main series (the role rule's words), which result.json keeps in
            ``input.series.chosen_because`` (the analysis, given the series by its UID, would say "as asked").
    """

    case_id: str
    path: str
    kind: str  # a reader's name ("dicom", "nifti") or "bids"
    series: str | None = None
    problem: str | None = None
    t1: str | None = None
    t1_series: str | None = None
    pixel_spacing: tuple[float, float] | None = None  # a picture's own (row, column) mm, from a pixel-size table
    series_reason: str | None = None

    @property
    def has_t1(self) -> bool:
        """Whether a T1 series or file is read beside the main scan."""
        return bool(self.t1 or self.t1_series)


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str
    # the SeriesInstanceUID of a study's series its case does not read: the case may read it instead
    # (``series_switched``), which the run amends in skipped.csv (:func:`openspine.batch.tables.switched_series`)
    series_uid: str | None = field(default=None, compare=False)


def _not_an_image_reason(path: Path) -> str:
    """Why a document beside the scans is no case: a NIfTI file's JSON sidecar, or one a BIDS dataset's images below
    it inherit, is read with those images (its header names the sequence); any other is not an image file."""
    if path.suffix.lower() == ".json":
        for suffix in (".nii.gz", ".nii"):
            image = path.with_name(path.name[: -len(".json")] + suffix)
            if image.is_file():
                return f"the sidecar of {image.name}, read with it"
        if inherited_sidecar(path):
            return "a BIDS sidecar that the images below it inherit, read with them"
    return "not an image file"


# the longest case id a path gives as it is: a case folder's name may be 255 bytes at most, and a suffix that tells
# apart paths giving the same id (:func:`_unique_ids`) must still fit (an id from a 248-byte file name in a folder had
# failed the case at its very end, "File name too long", and left it in no list; user test)
MAX_ID_CHARS = 200


def _safe_id(text: str) -> str:
    """A case id from a path: characters a file name may hold everywhere; one longer than :data:`MAX_ID_CHARS` is
    cut and ends in a digest of the whole, so that it stays one path's own id."""
    safe = re.sub(r"[^A-Za-z0-9._\-]+", "_", text).strip("._") or "case"
    if len(safe) <= MAX_ID_CHARS:
        return safe
    digest = hashlib.sha1(safe.encode(), usedforsecurity=False).hexdigest()[:12]
    return f"{safe[: MAX_ID_CHARS - len(digest) - 2].rstrip('._-')}__{digest}"


def _is_bids(rel: Path) -> bool:
    parts = rel.parts  # .../sub-XX/[ses-YY/]<datatype>/file, possibly below a dataset folder
    return len(parts) >= 3 and any(p.startswith("sub-") for p in parts[:-2]) and parts[-2] in BIDS_DATATYPES


# the folders of a BIDS dataset that hold no raw data (BIDS specification, "Common principles"): processed outputs,
# data before conversion, code. Walked into, their images became cases beside the raw scans they copy (a subject
# counted three times in the cohort tables, and the raw scan's case id suffixed to tell the copies apart; user test)
BIDS_NOT_RAW = {
    "derivatives": "BIDS derivatives (processed data, not raw scans): give the derivative dataset as the input root "
    "to analyse it",
    "sourcedata": "BIDS sourcedata (the data before conversion, not the dataset's raw scans)",
    "code": "BIDS code folder",
}


def _bids_not_raw(folder: Path, subfolders: list[str]) -> dict[str, str]:
    """The subfolders of a BIDS dataset's root (one holding ``dataset_description.json``) that hold no raw scans,
    with the reason; none elsewhere (a folder named derivatives outside a BIDS dataset is walked as any other)."""
    if not (folder / "dataset_description.json").is_file():
        return {}
    return {d: why for d, why in BIDS_NOT_RAW.items() if d in subfolders}


def _without_linked_copies(root: Path, cases: list[Case], skipped: list[Skipped]) -> list[Case]:
    """``cases`` less the file cases that are a symbolic link to a file another case reads (each listed in
    ``skipped``): one scan, one case, so that no scan's rows enter the cohort tables twice. The file itself is kept
    over a link to it; between links, the first."""
    by_target: dict[Path, list[Case]] = defaultdict(list)
    for c in cases:
        if c.kind != "dicom" and Path(c.path).is_file():
            by_target[resolved(c.path)].append(c)
    dropped: set[int] = set()
    for same in by_target.values():
        if len(same) < 2:
            continue
        kept = next((c for c in same if not Path(c.path).is_symlink()), same[0])
        for c in same:
            if c is not kept:
                dropped.add(id(c))
                where = Path(kept.path).relative_to(root)
                skipped.append(Skipped(str(Path(c.path).relative_to(root)), f"the same file as '{where}' (a link)"))
    return [c for c in cases if id(c) not in dropped]


def discover_cases(
    root: str | os.PathLike[str],
    pictures: bool = False,
    log_counts: bool = True,
    spacings: PictureSpacings | None = None,
) -> tuple[list[Case], list[Skipped]]:
    """All cases under ``root``, sorted by case id, and the files passed over with the reason. ``pictures``: each
    PNG/JPEG picture is a case too (the run has a pixel spacing for them); otherwise pictures are skipped, except
    those that ``spacings`` (a pixel-size table, :func:`.spacing.read_spacing_table`) gives their own size.
    ``log_counts``: log how many were found (off for a look before the run)."""
    root = Path(root)
    why_not = _not_enterable(str(root))
    try:
        with os.scandir(root):
            pass
    except OSError as exc:
        why_not = why_not or f"folder cannot be read ({exc.strerror or exc})"
    if why_not is not None:  # the root itself: no case at all, said as such, not as an empty cohort
        raise ConfigError(f"batch input '{root}': {why_not}")
    cases: list[Case] = []
    skipped: list[Skipped] = []
    other_files: list[Path] = []

    def unlistable(err: OSError) -> None:  # os.walk passes over a folder it cannot list without a word
        where = Path(err.filename).relative_to(root) if err.filename else Path(".")
        skipped.append(Skipped(str(where) + os.sep, f"folder cannot be read ({err.strerror or err})"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlistable):
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        if not filenames and not dirnames and here != root:
            skipped.append(Skipped(str(rel_dir) + os.sep, "empty folder"))  # no case: nothing in it to fail
            continue
        why_not = _not_enterable(dirpath)
        if why_not is not None:  # listed but not entered (no search permission): nothing in it can be read
            skipped.append(Skipped(str(rel_dir) + os.sep, why_not))
            dirnames[:] = []
            continue
        not_raw = _bids_not_raw(here, dirnames)
        for d in dirnames:
            if d.startswith("."):
                skipped.append(Skipped(str(rel_dir / d) + os.sep, "hidden"))
            elif (here / d).is_symlink():  # os.walk does not follow it
                skipped.append(Skipped(str(rel_dir / d) + os.sep, "symbolic link to a folder (not followed)"))
            elif d in not_raw:
                skipped.append(Skipped(str(rel_dir / d) + os.sep, not_raw[d]))
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not (here / d).is_symlink() and d not in not_raw
        )
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root)
            if name.startswith("."):
                skipped.append(Skipped(str(rel), "hidden"))
                continue
            why = _not_a_readable_file(path)
            if why is not None:
                skipped.append(Skipped(str(rel), why))
                continue
            reader = reader_for_name(name)
            if reader is not None and _empty(path):  # a copy that never finished: nothing to analyse or fail
                skipped.append(Skipped(str(rel), "empty file"))
            elif reader is not None:
                cases.extend(_file_case(reader, path, rel, skipped, pictures, spacings))
            elif path.suffix.lower() in NOT_SCANS or name == "DICOMDIR":
                skipped.append(Skipped(str(rel), _not_an_image_reason(path)))
            else:
                other_files.append(path)
    if other_files:
        cases.extend(_dicom_cases(root, other_files, skipped))
    # after pairing: a T1 read beside its T2 is no case of its own, whatever file it shares its content with
    unique = _unique_ids(root, _without_linked_copies(root, _pair_bids_t1(cases), skipped))
    n_t1 = sum(c.has_t1 for c in unique)
    (log.info if log_counts else log.debug)(
        "discovered %d case(s) under %s (%d with a T1 series read beside the main one); %d file(s) skipped",
        len(unique), root, n_t1, len(skipped),
    )  # fmt: skip
    return unique, sorted(skipped, key=lambda s: s.path)


def _not_enterable(folder: str) -> str | None:
    """Why the files of a folder that could be listed cannot be opened (a folder without search permission), or
    None. Its entries' names are known, but every look at them fails."""
    try:
        os.stat(os.path.join(folder, "."))  # resolving a name inside needs the folder's search permission
    except OSError as exc:
        return f"folder cannot be entered ({exc.strerror or exc})"
    return None


def _unique_ids(root: Path, cases: list[Case]) -> list[Case]:
    """``cases`` sorted by id, where paths that give the same id are told apart by a suffix from a hash of their
    path under the root (and series): a case keeps its id when files are added or removed beside it (an order
    number would move, and a resume would then take one scan's finished folder for another's). An id that no
    other case shares stays as the path gives it."""
    groups: dict[str, list[Case]] = defaultdict(list)
    for c in cases:
        groups[c.case_id].append(c)
    taken = {case_id for case_id, members in groups.items() if len(members) == 1}
    unique = [members[0] for members in groups.values() if len(members) == 1]
    for case_id, members in groups.items():
        if len(members) == 1:
            continue
        for c in sorted(members, key=lambda c: (c.path, c.series or "")):
            key = f"{Path(os.path.relpath(c.path, root)).as_posix()}\0{c.series or ''}"
            digest = hashlib.sha1(key.encode("utf-8", "surrogateescape"), usedforsecurity=False).hexdigest()
            n = ID_HASH_CHARS
            while f"{case_id}__{digest[:n]}" in taken:  # a file named like another's suffixed id: longer suffix
                n += 2
            taken.add(f"{case_id}__{digest[:n]}")
            unique.append(replace(c, case_id=f"{case_id}__{digest[:n]}"))
    return sorted(unique, key=lambda c: c.case_id)


BIDS_PAIR = re.compile(r"^(?:(?P<entities>.+)_)?(?P<suffix>T1w|T2w)\.nii(\.gz)?$")
# entities that tell apart acquisitions of one session, not patients or sessions: a T2w run-2 is read beside the
# session's one T1w as run-1 is
_LOOSE_ENTITIES = ("run", "acq", "rec")


def _pair_bids_t1(cases: list[Case]) -> list[Case]:
    """One case for a BIDS ``_T2w`` file and the ``_T1w`` file beside it: the T2w is graded, the T1w read beside it.
    The T1w whose other entities are all equal (same folder, same ``sub-``/``ses-``/``acq-``/... entities) is taken
    where there is one; else the one T1w of the folder whose entities differ only in ``run-``, ``acq-`` or ``rec-``
    (two T2w runs and one T1w: both runs read it). A T1w read beside a T2w is no case of its own; one that is not
    (none, or several candidates) stays a case of its own."""
    parsed = []
    for c in cases:
        m = BIDS_PAIR.match(Path(c.path).name) if c.kind == "bids" else None
        if m:
            parts = m["entities"].split("_") if m["entities"] else []
            entities = dict(part.split("-", 1) for part in parts if "-" in part)
            # name parts that are no entity ("alice_T2w", "bob_T1w") must match as they are: not two patients' pair
            entities[""] = "_".join(part for part in parts if "-" not in part)
            parsed.append((c, str(Path(c.path).parent), entities, m["suffix"]))
    t1s = [p for p in parsed if p[3] == "T1w"]

    def loose(entities: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in entities.items() if k not in _LOOSE_ENTITIES}

    beside: dict[str, str] = {}  # T2w path → the T1w path read beside it
    for c, folder, entities, suffix in parsed:
        if suffix != "T2w":
            continue
        exact = [t for t in t1s if t[1] == folder and t[2] == entities]
        near = exact or [t for t in t1s if t[1] == folder and loose(t[2]) == loose(entities)]
        if len(near) == 1:
            beside[c.path] = near[0][0].path
    used = set(beside.values())
    return [replace(c, t1=beside[c.path]) if c.path in beside else c for c in cases if c.path not in used]


def bids_t1_beside(path: Path) -> Path | None:
    """The BIDS ``_T1w`` file that batch would read beside the ``_T2w`` file ``path`` (:func:`_pair_bids_t1`), or
    None; only in a BIDS ``anat`` folder (``sub-XX/[ses-YY/]anat/``), where batch pairs them."""

    def suffix(name: str) -> str | None:
        m = BIDS_PAIR.match(name)
        return m["suffix"] if m else None

    if suffix(path.name) != "T2w" or path.parent.name != "anat" or not _is_bids(Path(*path.absolute().parts[-4:])):
        return None
    try:
        t1s = sorted(p for p in path.parent.iterdir() if suffix(p.name) == "T1w")
    except OSError:
        return None
    cases = [Case(str(i), str(p), "bids") for i, p in enumerate([path, *t1s])]
    paired = next((c for c in _pair_bids_t1(cases) if c.path == str(path)), None)
    return Path(paired.t1) if paired is not None and paired.t1 else None


def _file_case(
    reader: Reader, path: Path, rel: Path, skipped: list[Skipped], pictures: bool, spacings: PictureSpacings | None
) -> list[Case]:
    """The case of a file that a reader knows by its suffix, or none (the file then listed in ``skipped``)."""
    stem = reader.stem(path.name)
    own = spacings.of(path) if spacings is not None and reader.name == "image" else None
    if own is not None:
        if looks_like_label_map(path):  # a mask is no scan, whatever size it is given
            skipped.append(Skipped(str(rel), LABEL_MAP))
            return []
        return [Case(_safe_id(reader.stem(str(rel)).replace(os.sep, "__")), str(path), reader.name, pixel_spacing=own)]
    if reader.batch_skip is not None and not (pictures and reader.name == "image"):
        why = reader.batch_skip
        if spacings is not None and reader.name == "image":
            why = (
                f"2D picture not listed in the pixel-size table {spacings.path.name}, and no --pixel-spacing for others"
            )
        skipped.append(Skipped(str(rel), why))
    elif looks_like_label_map(path):
        skipped.append(Skipped(str(rel), LABEL_MAP))
    elif _is_bids(rel):
        if rel.parts[-2] != "anat" or not BIDS_ANAT.search(path.name):
            skipped.append(Skipped(str(rel), "BIDS file that is not an anatomical image"))
        elif "sub-" not in path.name:  # a name of the suffix alone: its folders tell it from the others
            return [Case(_safe_id(reader.stem(str(rel)).replace(os.sep, "__")), str(path), "bids")]
        else:
            return [Case(_safe_id(stem), str(path), "bids")]
    else:
        return [Case(_safe_id(reader.stem(str(rel)).replace(os.sep, "__")), str(path), reader.name)]
    return []


def _empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def _not_a_readable_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file (:func:`openspine.io.paths.not_a_regular_file`), as skipped.csv says
    it, or None."""
    why = not_a_regular_file(path)
    if why is None or why.startswith(NOT_REGULAR):
        return why
    return f"cannot be read: {why}"


def _dicom_cases(root: Path, files: list[Path], skipped: list[Skipped]) -> list[Case]:
    """One case per DICOM study: its main series and the T1 series beside it, by the role rule of
    :func:`openspine.io.load_study` (the main series as single-scan mode chooses it).

    Every file in ``files`` ends up in a case (a member of the main or T1 series, or of a study that fails as a
    whole) or in ``skipped`` with the reason (not DICOM, unreadable, truncated, no image, a series the case does
    not read).
    """
    from ..errors import ScanReadError, SeriesSelectionError
    from ..io.dicom import discover_series, is_dicom_file, series_roles
    from ..io.roles import ROLE_MAIN, ROLE_T1

    dicom_files: list[Path] = []
    for f in files:
        if is_dicom_file(f):
            dicom_files.append(f)
        else:
            skipped.append(Skipped(str(f.relative_to(root)), _why_not_dicom(f)))
    if not dicom_files:
        return []
    try:
        # its warnings about single files are not said here: the case that reads the file says them again (each
        # had been said twice), and a file in no case is listed in skipped.csv
        with held_back("io.dicom"):
            series = discover_series(root)  # it leaves out the entries that are not regular files, as here
    except ScanReadError as exc:  # DICOM files, but none with images: each is listed as skipped below
        log.debug("no DICOM image series under %s: %s", root, exc)
        series = []
    studies: dict[str, list[SeriesInfo]] = defaultdict(list)
    for s in series:
        if all(_hidden(p.relative_to(root)) for p in s.files):
            continue  # under a hidden folder, listed as skipped ("hidden") already
        studies[s.study_uid or f"folder:{s.files[0].parent}"].append(s)
    for key in [k for k, members in studies.items() if all(s.not_image is not None for s in members)]:
        del studies[key]  # a SEG or SR on its own (openspine's outputs under the root) is no case: skipped below
    out: list[Case] = []
    accounted: set[Path] = set()
    for members in studies.values():
        folder = Path(os.path.commonpath([str(p.parent) for s in members for p in s.files]))
        # the folder's path under the root, its folders joined by "__" as a file case's are; a study whose files
        # lie in the root itself takes the root's name (a DICOM UID had named it), several such studies a suffix
        # each (:func:`_unique_ids`)
        typed_name = Path(os.path.abspath(root)).name or "study"  # the name as typed: a linked root's, not its target's
        case_id = _safe_id(str(folder.relative_to(root)).replace(os.sep, "__") if folder != root else typed_name)
        try:
            roles = series_roles(members, None)
        except SeriesSelectionError as exc:
            out.append(Case(case_id, str(folder), "dicom", problem=str(exc)))
            accounted.update(p for s in members for p in s.files)  # all part of the failing case
            continue
        main_role = next(r for r in roles if r.role == ROLE_MAIN)
        main = members[main_role.index]
        t1 = next((members[r.index] for r in roles if r.role == ROLE_T1), None)
        t1_uid = t1.series_uid if t1 else None
        out.append(
            Case(
                case_id, str(folder), "dicom", series=main.series_uid, t1_series=t1_uid, series_reason=main_role.reason
            )
        )
        for r in roles:
            member = members[r.index]
            if r.role not in (ROLE_MAIN, ROLE_T1):
                skipped.extend(series_entries(root, member, case_id, files, r.text()))
            accounted.update(member.files)
        for member in members:  # the same image twice under the root: the copy is listed, the case reads one
            for copy, first in member.copies:
                why = f"a copy of {first.relative_to(root)} (the same SOPInstanceUID), read once in case {case_id}"
                why += _shorter_words(copy, first)
                skipped.append(Skipped(str(copy.relative_to(root)), why))
                accounted.add(copy)
            for copy, first in member.resent:
                why = (
                    f"the image of {first.relative_to(root)} sent again under a new SOPInstanceUID (the same position, "
                    f"header and pixels), read once in case {case_id}"
                )
                skipped.append(Skipped(str(copy.relative_to(root)), why))
                accounted.add(copy)
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
    return f"not a DICOM, NIfTI or known file type{convert_hint(path)}"


def series_entries(root: Path, series: SeriesInfo, case_id: str, files: list[Path], role: str) -> list[Skipped]:
    """A study's series that its case does not read (``role``: its role in words): one entry for a folder holding
    only that series, else one per file."""
    reason = f"another series of case {case_id} ({series.describe()}): {role}"
    members = set(series.files)
    folder = Path(os.path.commonpath([str(p.parent) for p in members]))
    if folder != root and {f for f in files if f.is_relative_to(folder)} <= members:
        return [Skipped(str(folder.relative_to(root)) + os.sep, reason, series.series_uid)]
    return [Skipped(str(p.relative_to(root)), reason, series.series_uid) for p in sorted(members)]


def _shorter_words(copy: Path, first: Path) -> str:
    """'; this copy is shorter (400 of 148 230 bytes): truncated, or stripped of header elements' where ``copy`` is
    shorter than the file read in its place (the longer of the two is read): a truncated copy had been listed as a
    plain copy (user test); an anonymised copy is shorter too, so its size alone does not say which."""
    try:
        mine, theirs = copy.stat().st_size, first.stat().st_size
    except OSError:
        return ""
    return (
        f"; this copy is shorter ({mine} of {theirs} bytes): truncated, or stripped of header elements"
        if mine < theirs
        else ""
    )


def _why_no_series(path: Path) -> str:
    """Why a file that looked like DICOM is in no image series: unreadable, truncated, or not an image."""
    from ..errors import ScanReadError
    from ..io.dicom import _DICOMDIR_SOP_CLASS, _read_header, _UnreadableHeader, cut_short, not_an_image

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
    if not has_pixels and cut_short(ds):
        return f"truncated or incomplete DICOM file: no image pixel data after its header ({len(ds)} data elements)"
    if not has_pixels:
        return f"DICOM object without image pixel data (modality {modality}): a report or similar, not an image"
    return not_an_image(ds) or "DICOM image in no series that discovery found"
