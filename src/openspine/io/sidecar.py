"""What the files beside a NIfTI file say of its acquisition: its JSON sidecar, and its BIDS name.

dcm2niix writes a sidecar by default (``scan.json`` beside ``scan.nii.gz``), and BIDS datasets keep them: the series
description, the scanning sequence and its options, the timing. Read as a header, it lets the same rules as for DICOM
(:mod:`openspine.recognition.header`) name the sequence of a NIfTI file: a STIR (an inversion recovery with a short
inversion time), a fat-suppressed T2 (``ScanOptions`` FS) or a T1 that the image alone may take for a plain T2.

What differs from DICOM is undone here. BIDS gives times in seconds (DICOM in ms); a sidecar written in ms by another
tool is told by any of its times that could not be seconds (a TE of 1 or more, a TR above 30, a TI of 5 or more).
dcm2niix joins the values of a multi-valued element with ``_`` (``GR_IR``, DICOM ``GR\\IR``). Numbers written as
text or as one-item lists are read as numbers, times of 0, infinite or absurdly long as absent; a text field given as
a list is joined.

For a file laid out as BIDS (``sub-<label>/[ses-<label>/]<datatype>/`` below a folder holding
``dataset_description.json``) the sidecars it inherits are read too, from the dataset's root down to the file's own
(``T2w.json`` at the root, ``sub-01/sub-01_T2w.json``, each applying to the files whose name carries its entities and
suffix), the nearer overriding the farther, as the BIDS inheritance principle says; and its name says the contrast
itself (:func:`bids_name_sequence`: ``_STIR``, ``_FLAIR``, ``_PDw``, ``_T2starw``, ``_T1w``, an ``acq-`` label such as
``acq-stir`` or ``acq-fs``). A sidecar that cannot be read is said and left out: the image is read without it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._logging import get_logger
from ..recognition.header import LONGEST_TIME_MS

log = get_logger("io.sidecar")

__all__ = [
    "BIDS_ENTITIES",
    "SidecarHeader",
    "bids_entities",
    "bids_name_reading",
    "bids_name_sequence",
    "inherited_sidecar",
    "read_sidecar",
    "sidecar_path",
    "sidecar_paths",
]

_TIMES = ("EchoTime", "RepetitionTime", "InversionTime")
_MULTI_VALUED = ("ScanningSequence", "SequenceVariant", "ScanOptions", "ImageType")
_TEXT = ("SeriesDescription", "ProtocolName", "SequenceName", "PulseSequenceName", "Modality", "Manufacturer")
# a TR above this is in ms (no spine sequence has a TR of 30 s); without a TR, a TE of 1 or more is (no TE is 1 s)
_TR_SECONDS_BELOW = 30.0
_TE_SECONDS_BELOW = 1.0
_LONGEST_TIME = LONGEST_TIME_MS  # ms: no MR time is longer (a larger value is no time)
_DATASET = "dataset_description.json"
_MAX_DEPTH = 6  # folders looked up for a BIDS dataset's root

_NII = re.compile(r"\.nii(\.gz)?$", re.IGNORECASE)
_ACQ_STIR = re.compile(r"stir|tirm")
_ACQ_OTHER = re.compile(r"fs$|^fs|fatsat|fatsup|spair|spir|dixon|water|flair|t2star|me2d|gre|ffe")
_ENTITY = re.compile(r"^([a-zA-Z]+)-([a-zA-Z0-9]+)$")
# BIDS suffixes that name a contrast, and what the header rules call it (T2w names nothing: the image decides)
_SUFFIX_SEQUENCE = {"T1w": "T1", "STIR": "STIR", "FLAIR": "other", "PDw": "other", "T2starw": "other",
                    "PDT2": "other", "UNIT1": "other", "inplaneT1": "T1", "inplaneT2": None, "T2w": None}  # fmt: skip


BIDS_ENTITIES = ("subject", "session", "acquisition", "run")
_BIDS_ENTITY = {
    "subject": re.compile(r"(?:^|_)sub-([A-Za-z0-9]+)"),
    "session": re.compile(r"(?:^|_)ses-([A-Za-z0-9]+)"),
    # two scans of one session (sub-01_run-1_T2w, sub-01_run-2_T2w) are two cases the tables tell apart by these;
    # a BIDS folder names only the subject and session
    "acquisition": re.compile(r"(?:^|_)acq-([A-Za-z0-9]+)"),
    "run": re.compile(r"(?:^|_)run-([A-Za-z0-9]+)"),
}
_FOLDER_ENTITIES = ("subject", "session")


def bids_entities(path: str | None) -> dict[str, str]:
    """The BIDS subject and session a file's name gives (``sub-01_ses-2_T2w.nii.gz``: subject 01, session 2), with its
    acquisition and run where it names them, or where its name gives no subject its folders
    (``sub-01/ses-2/anat/T2w.nii.gz``); none for a path without them. The cohort tables are joined on them, and a T1
    of another subject is told by them (:mod:`openspine.study.identity`)."""
    if not path:
        return {}
    name = Path(path).name
    found = {key: m[1] for key, rx in _BIDS_ENTITY.items() if (m := rx.search(name))}
    if "subject" not in found:  # the folders, nearest first: sub-01/ses-2/anat/
        folders = Path(path).parts[-4:-1][::-1]
        found = {key: m[1] for key in _FOLDER_ENTITIES for f in folders if (m := _BIDS_ENTITY[key].fullmatch(f))}
    return found if "subject" in found else {}


def sidecar_path(path: Path) -> Path | None:
    """``scan.json`` beside ``scan.nii.gz`` / ``scan.nii``, where it exists."""
    candidate = path.with_name(_NII.sub("", path.name) + ".json")
    return candidate if candidate.is_file() else None


def _bids_parts(name: str) -> tuple[dict[str, str], str] | None:
    """A BIDS file name's entities and suffix (``sub-01_acq-fs_T2w.nii.gz``: ({sub: 01, acq: fs}, T2w)), or None."""
    stem = _NII.sub("", name)
    stem = stem[: -len(".json")] if stem.endswith(".json") else stem
    parts = stem.split("_")
    entities = {}
    for part in parts[:-1]:
        m = _ENTITY.match(part)
        if m is None:
            return None
        entities[m[1]] = m[2]
    return entities, parts[-1]


def bids_name_reading(path: Path) -> tuple[str, str] | None:
    """The contrast a BIDS file name says (:func:`bids_name_sequence`) and the part of the name that says it
    (``_STIR``, ``acq-fs``), or None."""
    found, parts = bids_name_sequence(path), _bids_parts(path.name)
    if found is None or parts is None:
        return None
    entities, suffix = parts
    return found, f"_{suffix}" if _SUFFIX_SEQUENCE.get(suffix) is not None else f"acq-{entities.get('acq')}"


def bids_name_sequence(path: Path) -> str | None:
    """The contrast a BIDS file name says: its suffix (``_STIR`` STIR, ``_FLAIR``/``_PDw``/``_T2starw`` other, ``_T1w``
    T1), else an ``acq-`` label read by the header's text rules (``acq-stir`` STIR, ``acq-fs`` or ``acq-dixon``
    other, ``acq-t1`` T1); None where it says none (``_T2w`` alone: the image decides, as for any NIfTI)."""
    parts = _bids_parts(path.name)
    if parts is None or _bids_root(path, parts[0]) is None:  # a name that only looks like BIDS says nothing
        return None
    entities, suffix = parts
    named = _SUFFIX_SEQUENCE.get(suffix)
    if named is not None:
        return named
    acq = (entities.get("acq") or "").lower()
    # an acq- label is free text (acq-C2T1 names levels): only the names of contrasts that are no plain T2 count
    return "STIR" if _ACQ_STIR.search(acq) else "other" if _ACQ_OTHER.search(acq) else None


def sidecar_paths(path: Path) -> list[Path]:
    """The sidecars that apply to ``path``, farthest first: in a BIDS dataset the inherited ones from its root down
    (those whose entities are all in the file's name, with its suffix), then its own; elsewhere its own alone."""
    own = sidecar_path(path)
    parts = _bids_parts(path.name)
    root = _bids_root(path, parts[0]) if parts is not None else None
    if root is None or parts is None:
        return [own] if own is not None else []
    entities, suffix = parts
    found: list[Path] = []
    folders = [path.parent, *path.parent.parents]
    chain = folders[: folders.index(root) + 1][::-1]  # the root first, the file's own folder last
    for folder in chain:
        for candidate in sorted(folder.glob(f"*{suffix}.json")):
            theirs = _bids_parts(candidate.name)
            if theirs is None or theirs[1] != suffix or candidate == own:
                continue
            if all(entities.get(k) == v for k, v in theirs[0].items()):
                found.append(candidate)
    return [*found, *([own] if own is not None else [])]


def inherited_sidecar(path: Path) -> bool:
    """Whether the JSON file ``path`` is a sidecar of a BIDS dataset that images below it inherit (a name of entities
    and a suffix, such as ``T2w.json`` at the root or ``sub-01_T2w.json`` above ``sub-01/anat/``)."""
    parts = _bids_parts(path.name)
    if parts is None or parts[1] not in _SUFFIX_SEQUENCE:
        return False
    folders = [path.parent, *path.parent.parents][:_MAX_DEPTH]
    return any((f / _DATASET).is_file() and _inheritable_place(path.relative_to(f)) for f in folders)


def _inheritable_place(rel: Path) -> bool:
    """Whether a sidecar at ``rel`` below a dataset's root sits where BIDS lets files below inherit it: the root,
    ``sub-<label>/``, ``sub-<label>/ses-<label>/`` or a datatype folder under them."""
    folders = rel.parts[:-1]
    if not folders:
        return True
    if not folders[0].startswith("sub-") or len(folders) > 3:
        return False
    return len(folders) < 3 or folders[1].startswith("ses-")


def _bids_root(path: Path, entities: Mapping[str, str]) -> Path | None:
    """The root of the BIDS dataset ``path`` lies in, where it lies as BIDS lays files out (``sub-<label>/
    [ses-<label>/]<datatype>/`` below a folder holding ``dataset_description.json``, its name's ``sub-`` and ``ses-``
    those of its folders); None elsewhere (a stray description file makes no dataset of a plain folder)."""
    for folder in [path.parent, *path.parent.parents][:_MAX_DEPTH]:
        if (folder / _DATASET).is_file():
            rel = path.relative_to(folder).parts[:-1]
            if not _bids_layout(path.relative_to(folder)):
                return None
            if entities.get("sub") not in (None, rel[0][4:]) or (
                len(rel) == 3 and entities.get("ses") not in (None, rel[1][4:])
            ):
                return None
            return folder
    return None


def _bids_layout(rel: Path) -> bool:
    """Whether a path below a dataset's root runs ``sub-<label>/[ses-<label>/]<datatype>/<file>``."""
    folders = rel.parts[:-1]
    if len(folders) not in (2, 3) or not folders[0].startswith("sub-"):
        return False
    return len(folders) == 2 or folders[1].startswith("ses-")


class SidecarHeader(Mapping[str, Any]):
    """A sidecar's entries with DICOM's units and value separators, read like a DICOM header (``get(keyword)``)."""

    def __init__(self, entries: Mapping[str, Any]) -> None:
        times = {k: t for k in _TIMES if (t := _positive_number(entries.get(k))) is not None}
        scale = 1000.0 if _in_seconds(times) else 1.0
        self._entries = {str(k): _as_dicom(str(k), v) for k, v in entries.items() if str(k) not in _TIMES}
        self._entries.update({k: t * scale for k, t in times.items()})

    def __getitem__(self, key: str) -> Any:
        return self._entries[key]

    def __iter__(self) -> Any:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, default: Any = None) -> Any:  # the header rules' reading (a pydicom Dataset's signature)
        return self._entries.get(key, default)


def _positive_number(value: Any) -> float | None:
    """A time as a number: ``0.095``, ``"0.095"`` or ``[0.095]``; None for 0, text or anything else."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0 < number < _LONGEST_TIME else None  # NaN, inf and a TR of a day say nothing


def _in_seconds(times: Mapping[str, float]) -> bool:
    """Whether a sidecar gives its times in seconds (BIDS) rather than ms, judged on all of them together."""
    tr, te, ti = times.get("RepetitionTime"), times.get("EchoTime"), times.get("InversionTime")
    if not times:
        return False
    # each time that is there must fit seconds: a TE of 3 is ms whatever the TR (a GRE's TR of 6 ms reads as 6 s)
    return (
        (te is None or te < _TE_SECONDS_BELOW)
        and (tr is None or tr < _TR_SECONDS_BELOW)
        and (ti is None or ti < 5.0)  # no TI is 5 s
    )


def _as_dicom(key: str, value: Any) -> Any:
    if key in _MULTI_VALUED and isinstance(value, str):
        parts = value.replace("\\", "_").split("_")
        return "\\".join(dict.fromkeys([value, *parts]))  # "GR_IR" keeps its whole value beside GR and IR
    if key in _TEXT and isinstance(value, list):
        return " ".join(str(v) for v in value if isinstance(v, (str, int, float)))  # ["MR"] is MR
    if key in _TEXT and not isinstance(value, (str, int, float)):
        return None  # an object or null where text belongs says nothing
    return value


def read_sidecar(path: Path) -> tuple[SidecarHeader, list[Path]] | None:
    """The sidecars of the NIfTI file ``path`` (:func:`sidecar_paths`), merged into one header, nearer entries over
    farther, and their paths; None where there is none or none can be read (a warning says why)."""
    merged: dict[str, Any] = {}
    read: list[Path] = []
    for found in sidecar_paths(path):
        try:
            entries = json.loads(found.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError, RecursionError) as exc:  # RecursionError: arrays nested past Python's stack
            log.warning("the sidecar '%s' cannot be read and is left out (%s)", found, str(exc)[:200])
            continue
        if not isinstance(entries, dict):
            log.warning("the sidecar '%s' holds no JSON object and is left out", found)
            continue
        merged.update(entries)
        read.append(found)
    return (SidecarHeader(merged), read) if read else None
