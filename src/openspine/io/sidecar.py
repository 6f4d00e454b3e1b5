"""The JSON sidecar beside a NIfTI file: what the DICOM header said, kept by the converter.

dcm2niix writes one by default (``scan.nii.gz`` beside ``scan.json``), and BIDS datasets keep it: the series
description, the scanning sequence and its options, the timing. Read as a header, it lets the same rules as for DICOM
(:mod:`openspine.recognition.header`) name the sequence of a NIfTI file: a STIR (an inversion recovery with a short
inversion time), a fat-suppressed T2 (``ScanOptions`` FS) or a T1 that the image alone may take for a plain T2.

Two differences from DICOM are undone here: BIDS gives times in seconds (DICOM in ms), and dcm2niix joins the values
of a multi-valued element with ``_`` (``GR_IR``, DICOM ``GR\\IR``). Only the sidecar of the same name beside the file
is read (not BIDS' inherited sidecars higher up the tree). One that cannot be read is said and left out: the image
is read without it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._logging import get_logger

log = get_logger("io.sidecar")

__all__ = ["SidecarHeader", "read_sidecar", "sidecar_path"]

_TIMES = ("EchoTime", "RepetitionTime", "InversionTime")
_MULTI_VALUED = ("ScanningSequence", "SequenceVariant", "ScanOptions")
# a time above this is taken as already in ms (a sidecar not written to BIDS' seconds): no spine sequence has a TR of
# 30 s, nor a TE or TI of 30 ms written in seconds
_SECONDS_BELOW = 30.0


def sidecar_path(path: Path) -> Path | None:
    """``scan.json`` beside ``scan.nii.gz`` / ``scan.nii``, where it exists."""
    name = path.name
    stem = name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else name.rsplit(".", 1)[0]
    candidate = path.with_name(stem + ".json")
    return candidate if candidate.is_file() else None


class SidecarHeader(Mapping[str, Any]):
    """A sidecar's entries with DICOM's units and value separators, read like a DICOM header (``get(keyword)``)."""

    def __init__(self, entries: Mapping[str, Any]) -> None:
        self._entries = {str(k): _as_dicom(str(k), v) for k, v in entries.items()}

    def __getitem__(self, key: str) -> Any:
        return self._entries[key]

    def __iter__(self) -> Any:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, default: Any = None) -> Any:  # the header rules' reading (a pydicom Dataset's signature)
        return self._entries.get(key, default)


def _as_dicom(key: str, value: Any) -> Any:
    if key in _TIMES and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) * 1000.0 if 0 < value < _SECONDS_BELOW else float(value)
    if key in _MULTI_VALUED and isinstance(value, str):
        parts = value.replace("\\", "_").split("_")
        return "\\".join(dict.fromkeys([value, *parts]))  # "GR_IR" keeps its whole value beside GR and IR
    return value


def read_sidecar(path: Path) -> tuple[SidecarHeader, Path] | None:
    """The sidecar of the NIfTI file ``path`` as a header, and its path; None where there is none or it cannot be
    read (a warning says why)."""
    found = sidecar_path(path)
    if found is None:
        return None
    try:
        entries = json.loads(found.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        log.warning("the sidecar '%s' cannot be read and is left out (%s)", found.name, exc)
        return None
    if not isinstance(entries, dict):
        log.warning("the sidecar '%s' holds no JSON object and is left out", found.name)
        return None
    return SidecarHeader(entries), found
