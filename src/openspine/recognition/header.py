"""The sequence (contrast) a DICOM header names: ``"T1"``, ``"T2"``, ``"STIR"``, ``"other"`` or ``None``.

Rules, first match wins:

1. header text (SeriesDescription, SequenceName, PulseSequenceName, ScanningSequence, ProtocolName, in that order;
   the first element that names a contrast decides): ``stir`` / ``tirm`` → STIR; ``t1`` (not ``t12``, a level
   name) → T1; ``t2`` → T2; a named non-T1/T2 contrast (proton density, diffusion, Dixon / water / fat, T2*,
   FLAIR, MEDIC) → other; but when the text says T1 and the timing (rule 3) says T2, or the other way round, the
   header contradicts itself and says nothing (``None``: the image decides);
2. timing: an inversion-recovery sequence (``IR`` in ScanningSequence, or an InversionTime) with a short inversion
   time (≤ 250 ms) → STIR;
3. TR < 1000 ms and TE < 30 ms → T1; TE > 60 ms and TR > 1500 ms → T2;
4. otherwise ``None`` (not known).

Works on a :class:`pydicom.dataset.Dataset` or any mapping-like object with ``get(keyword)``; pydicom is not
imported here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Protocol

from ..vocabulary import SEQUENCES

SEQUENCE_VALUES = SEQUENCES  # what the header rules can answer (besides None)
TEXT_KEYWORDS: tuple[str, ...] = (
    "SeriesDescription",
    "SequenceName",
    "PulseSequenceName",
    "ScanningSequence",
    "ProtocolName",
)
STIR_MAX_TI_MS = 250.0

_TEXT_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("STIR", re.compile(r"stir|tirm")),
    ("T1", re.compile(r"t1(?!\d)")),  # "t1", "t1w", "sag_t1" – not "t12" (a level name)
    ("T2", re.compile(r"t2(?!\d)(?!\s*\*)(?!star)")),  # "t2", "t2w" – not "t2*" / "t2star" (gradient echo)
    ("other", re.compile(r"(?<![a-z])(pd|pdw|dwi|adc|dixon|flair|medic|t2\s*\*|t2star|diffusion|proton)(?![a-z])")),
)


class _HeaderLike(Protocol):
    def get(self, key: str, default: Any = ...) -> Any: ...


def _text(value: Any) -> str:
    if isinstance(value, (str, bytes)):
        return value.decode(errors="replace") if isinstance(value, bytes) else value
    if isinstance(value, Iterable):
        return " ".join(str(v) for v in value)
    return str(value)


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        items = list(value)
        if not items:
            return None
        value = items[0]
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if x == x else None  # NaN → None


def sequence_from_text(text: str) -> str | None:
    """The contrast one piece of header text names, or None."""
    low = text.lower()
    for name, pattern in _TEXT_RULES:
        if pattern.search(low):
            return name
    return None


def sequence_from_timing(
    tr_ms: float | None, te_ms: float | None, ti_ms: float | None = None, inversion_recovery: bool = False
) -> str | None:
    """The contrast that the timing parameters imply (rules 2 and 3 of the module doc), or None."""
    if (inversion_recovery or ti_ms is not None) and ti_ms is not None and 0 < ti_ms <= STIR_MAX_TI_MS:
        return "STIR"
    if tr_ms is None or te_ms is None:
        return None
    if tr_ms < 1000 and te_ms < 30:
        return "T1"
    if te_ms > 60 and tr_ms > 1500:
        return "T2"
    return None


def sequence_from_header(ds: _HeaderLike) -> str | None:
    """``"T1"``, ``"T2"``, ``"STIR"``, ``"other"`` or ``None`` from a DICOM header (see the module doc)."""
    scanning = ds.get("ScanningSequence")
    ir = scanning is not None and "IR" in _text(scanning).upper().replace("\\", " ").split()
    timed = sequence_from_timing(
        _number(ds.get("RepetitionTime")), _number(ds.get("EchoTime")), _number(ds.get("InversionTime")), ir
    )
    for keyword in TEXT_KEYWORDS:
        value = ds.get(keyword)
        if value is None:
            continue
        found = sequence_from_text(_text(value))
        if found is not None:
            # a description copied from another protocol: T1 timing under a "T2" name (or the reverse)
            return None if {found, timed} == {"T1", "T2"} else found
    return timed
