"""Closed vocabularies: vertebral levels, disc levels and grading names.

Enums accept plain strings at the boundary (``Level("L4")``, ``Level.parse("l4")``). One numbering of the levels:
the standard sequence C1 … L5, S1 (:meth:`Level.standard_sequence`). From it derive

* :attr:`Level.ordinal` – the position in that sequence (C1 = 1 … L5 = 24, S1 = 25), what the detector learns and
  estimates;
* :attr:`Level.label_value` – the VerSe label convention (the ordinal from C1 to L5; L6 = 25, S1 = 26, T13 = 28),
  the label value written into ``labels.nii.gz``.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import TypeVar

from .errors import ConfigError

E = TypeVar("E", bound=Enum)


class _NamedByValue(str, Enum):
    """A vocabulary whose members print as their value: ``f"{disc.level}"`` gives ``L4-L5``, not ``DiscLevel.L4_L5``
    (as ``enum.StrEnum`` does from Python 3.11)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


def _parse(cls: type[E], value: object, key: str, what: str) -> E:
    """``cls(key)``, or a ConfigError naming the bad value and the closest valid one."""
    if isinstance(value, cls):
        return value
    try:
        return cls(key)
    except ValueError:
        import difflib

        names = [str(m.value) for m in cls]
        close = difflib.get_close_matches(key, names, n=3)
        if close and "level" in what and _letters(close[0]) != _letters(key):
            close = []  # 'L7-L8' is no typo of 'T7-T8': a level from another region misleads
        # every match as close as the closest: 'L4-L6' is as near 'L4-L5' as 'L5-L6' (naming one misled; user test)
        best = max((difflib.SequenceMatcher(None, key, c).ratio() for c in close), default=0.0)
        close = sorted((c for c in close if difflib.SequenceMatcher(None, key, c).ratio() == best), key=names.index)
        if close:
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?"
        elif "level" in what:
            hint = f" {what.capitalize()}s run {names[0]} … {names[-1]}."
        else:
            hint = ""
        raise ConfigError(f"unknown {what} '{value}'.{hint}") from None


_SHORTHAND = re.compile(r"([CTLS])(\d+)-(\d+)")  # 'L4-5': the lower vertebra named by its number alone


def _letters(name: str) -> str:
    return "".join(c for c in name if c.isalpha())


class Level(_NamedByValue):
    """A vertebra, named by its anatomical level (the sacrum is S1)."""

    C1 = "C1"
    C2 = "C2"
    C3 = "C3"
    C4 = "C4"
    C5 = "C5"
    C6 = "C6"
    C7 = "C7"
    T1 = "T1"
    T2 = "T2"
    T3 = "T3"
    T4 = "T4"
    T5 = "T5"
    T6 = "T6"
    T7 = "T7"
    T8 = "T8"
    T9 = "T9"
    T10 = "T10"
    T11 = "T11"
    T12 = "T12"
    T13 = "T13"
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    L4 = "L4"
    L5 = "L5"
    L6 = "L6"
    S1 = "S1"

    @classmethod
    def parse(cls, value: str | Level) -> Level:
        """Accept a level in any case (``"l4"``); raise a helpful error for anything else."""
        return _parse(cls, value, str(value).strip().upper(), "vertebral level")

    @property
    def label_value(self) -> int:
        """The VerSe-convention label value (C1 = 1 … L5 = 24, L6 = 25, S1 = 26, T13 = 28)."""
        return _LABEL_VALUE[self]

    @property
    def ordinal(self) -> int:
        """The position in the standard sequence, C1 = 1 … L5 = 24, S1 = 25: the detector's level target and
        estimate. Equal to :attr:`label_value` from C1 to L5; the transitional T13 and L6 have none.

        Raises:
            ConfigError: for T13 and L6.
        """
        if self.is_transitional:
            raise ConfigError(f"the transitional level {self.value} has no ordinal in the standard sequence")
        return Level.standard_sequence().index(self) + 1

    @classmethod
    def from_ordinal(cls, ordinal: int) -> Level:
        """Inverse of :attr:`ordinal`.

        Raises:
            ConfigError: no level has this ordinal.
        """
        seq = cls.standard_sequence()
        if not 1 <= int(ordinal) <= len(seq):
            raise ConfigError(f"no vertebral level has ordinal {ordinal} (C1 = 1 … S1 = {len(seq)})")
        return seq[int(ordinal) - 1]

    @property
    def is_transitional(self) -> bool:
        return self in (Level.T13, Level.L6)

    @property
    def region(self) -> str:
        return {"C": "cervical", "T": "thoracic", "L": "lumbar", "S": "sacral"}[self.value[0]]

    @classmethod
    def from_label_value(cls, value: int) -> Level:
        for level, v in _LABEL_VALUE.items():
            if v == value:
                return level
        raise ConfigError(f"no vertebral level has label value {value}")

    @classmethod
    def standard_sequence(cls) -> list[Level]:
        """C1 … S1 without the transitional T13 and L6, top to bottom."""
        return [lv for lv in cls if not lv.is_transitional]

    def below(self) -> Level | None:
        """The next level caudally in the standard sequence (None below S1)."""
        seq = Level.standard_sequence()
        if self.is_transitional:
            return Level.L1 if self is Level.T13 else Level.S1
        i = seq.index(self)
        return seq[i + 1] if i + 1 < len(seq) else None


_LABEL_VALUE: dict[Level, int] = {lv: i + 1 for i, lv in enumerate(Level.standard_sequence()) if lv != Level.S1}
_LABEL_VALUE.update({Level.L6: 25, Level.S1: 26, Level.T13: 28})


class DiscLevel(_NamedByValue):
    """An intervertebral disc, named by the two vertebrae around it (``"L4-L5"``)."""

    C2_C3 = "C2-C3"
    C3_C4 = "C3-C4"
    C4_C5 = "C4-C5"
    C5_C6 = "C5-C6"
    C6_C7 = "C6-C7"
    C7_T1 = "C7-T1"
    T1_T2 = "T1-T2"
    T2_T3 = "T2-T3"
    T3_T4 = "T3-T4"
    T4_T5 = "T4-T5"
    T5_T6 = "T5-T6"
    T6_T7 = "T6-T7"
    T7_T8 = "T7-T8"
    T8_T9 = "T8-T9"
    T9_T10 = "T9-T10"
    T10_T11 = "T10-T11"
    T11_T12 = "T11-T12"
    T12_L1 = "T12-L1"
    T12_T13 = "T12-T13"
    T13_L1 = "T13-L1"
    L1_L2 = "L1-L2"
    L2_L3 = "L2-L3"
    L3_L4 = "L3-L4"
    L4_L5 = "L4-L5"
    L5_S1 = "L5-S1"
    L5_L6 = "L5-L6"
    L6_S1 = "L6-S1"

    @classmethod
    def parse(cls, value: str | DiscLevel) -> DiscLevel:
        """Accept ``"L4-L5"``, ``"l4/l5"``, ``"L4_L5"`` or the clinical shorthand ``"L4-5"`` (the lower vertebra in
        the upper one's region: ``"T12-1"`` is no T12-L1)."""
        key = str(value).strip().upper().replace("/", "-").replace("_", "-")
        short = _SHORTHAND.fullmatch(key)
        if short:
            key = f"{short[1]}{short[2]}-{short[1]}{short[3]}"
        return _parse(cls, value, key, "disc level")

    @classmethod
    def between(cls, upper: Level, lower: Level) -> DiscLevel:
        return cls.parse(f"{upper.value}-{lower.value}")

    @property
    def upper_vertebra(self) -> Level:
        return Level(self.value.split("-")[0])

    @property
    def lower_vertebra(self) -> Level:
        return Level(self.value.split("-")[1])

    @property
    def label_value(self) -> int:
        """100 + the label value of the vertebra above (the shared data's disc convention)."""
        return 100 + self.upper_vertebra.label_value

    @property
    def is_lumbar(self) -> bool:
        """T12-L1 … L5-S1 (and transitional lumbar discs): the levels graded by default."""
        return self.lower_vertebra.region in ("lumbar", "sacral")


LUMBAR_DISCS: tuple[DiscLevel, ...] = (
    DiscLevel.T12_L1,
    DiscLevel.L1_L2,
    DiscLevel.L2_L3,
    DiscLevel.L3_L4,
    DiscLevel.L4_L5,
    DiscLevel.L5_S1,
)


def levels_given(asked: object) -> list[str] | None:
    """The disc levels a run was asked to grade, as result.json's ``parameters.grade_levels`` holds them, where they
    are a list other than the default (:data:`LUMBAR_DISCS`: --levels named them); else None ("all", the default)."""
    if not isinstance(asked, list) or not asked or asked == [lv.value for lv in LUMBAR_DISCS]:
        return None
    return [str(a) for a in asked]


class Grading(_NamedByValue):
    """Names of disc gradings as written in result.json."""

    PFIRRMANN = "pfirrmann"
    NARROWING = "narrowing"
    SPONDYLOLISTHESIS = "spondylolisthesis"
    ENDPLATE_DEFECT_UPPER = "endplate_defect_upper"
    ENDPLATE_DEFECT_LOWER = "endplate_defect_lower"
    MARROW_CHANGE = "marrow_change"
    HERNIATION = "herniation"
    BULGING = "bulging"
    CENTRAL_CANAL_STENOSIS = "central_canal_stenosis"
    FORAMINAL_STENOSIS_LEFT = "foraminal_stenosis_left"
    FORAMINAL_STENOSIS_RIGHT = "foraminal_stenosis_right"

    @classmethod
    def parse(cls, value: str | Grading) -> Grading:
        return _parse(cls, value, str(value).strip().lower(), "grading")


GradingName = Grading | str  # a built-in grading, or a user's own (fine-tuned) grading name


def grading_key(name: str | Grading) -> GradingName:
    """The built-in :class:`Grading` for a known name, else the name itself (a user-defined grading).

    User-defined names must be lower-case identifiers (``[a-z][a-z0-9_]*``) so they work as JSON keys,
    CSV values and DICOM code values alike.
    """
    if isinstance(name, Grading):
        return name
    key = str(name).strip().lower()
    try:
        return Grading(key)
    except ValueError:
        import re

        if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
            raise ConfigError(f"grading name '{name}' must be a lower-case identifier like 'modic_type'") from None
        return key


def grading_name(g: GradingName) -> str:
    """The plain string of a grading key."""
    return g.value if isinstance(g, Grading) else str(g)
