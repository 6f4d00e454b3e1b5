"""Typed analysis options: unknown keys are refused (with a suggestion), and the options used are saved in
every result (``result.json`` → ``parameters``) so each output says how it was made."""

from __future__ import annotations

import difflib
import json
import math
import numbers
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError
from .levels import LUMBAR_DISCS, DiscLevel
from .vocabulary import SEQUENCES

ENGINES = ("openspine", "spinenet")  # whose models run (see openspine.engines)
MODEL_OPTIONS = ("detector", "grader", "paired_grader", "spinenet_weights")  # options naming a model folder or file
AUTO: Literal["auto"] = "auto"  # a picture's pixel size estimated from its anatomy
PixelSpacing = tuple[float, float] | Literal["auto"]


@dataclass(frozen=True)
class AnalysisConfig:
    """Options of one analysis.

    Attributes:
        series: DICOM series to use (SeriesInstanceUID, SeriesNumber or index); None = the sagittal one.
        pixel_spacing: (row, column) mm for PNG/JPEG input, or ``"auto"``: estimated from the anatomy
            (:mod:`openspine.detection.scale`; positions and lengths in mm then carry the estimate's error, flagged).
        detector: detector model folder; None = the built-in detector.
        grader: grader model folder (e.g. from ``openspine finetune``); None = the built-in grader.
        grade_levels: disc levels to grade; None = every detected disc. Default T12-L1 … L5-S1.
        sequence: the scan's sequence ("T1", "T2", "STIR" or "other"), overriding what the header or the image
            says; None = recognised (header first, else the image).
        use_t1: read the study's sagittal T1 series beside the main one, when the input holds one (a DICOM study)
            or one is given (``analyze(..., t1=...)``, ``--t1``); False = the main series alone.
        t1_pixel_spacing: (row, column) mm of a T1 given as a PNG/JPEG picture, or ``"auto"``.
        paired_grader: a grader model folder that reads the T2 and the T1 crop of a disc together (e.g. made by
            ``openspine train grader-t1t2``); None = the built-in one, where the installation has one.
        engine: whose models run: ``"openspine"`` (its own, the default) or ``"spinenet"`` (SpineNet's, through its
            user-installed package and weights: :mod:`openspine.engines.spinenet`).
        spinenet_weights: the folder of SpineNet's weights (``engine="spinenet"``); None = its package's own.
        check_orientation: where the labelling is unsure, ask the orientation recogniser whether the image is stored
            upside down, backwards or turned (:mod:`openspine.recognition.orientation`), and refuse it if so;
            False = trust the header (or, for a picture, that it is head up with the front on the left).
    """

    series: str | int | None = None
    pixel_spacing: PixelSpacing | None = None
    detector: str | None = None
    grader: str | None = None
    grade_levels: tuple[DiscLevel, ...] | None = LUMBAR_DISCS
    sequence: str | None = None
    use_t1: bool = True
    t1_pixel_spacing: PixelSpacing | None = None
    paired_grader: str | None = None
    engine: str = "openspine"
    spinenet_weights: str | None = None
    check_orientation: bool = True

    def __post_init__(self) -> None:
        """Every option checked and brought to its one form, however the config was made (``AnalysisConfig(...)``,
        :meth:`from_mapping`, ``dataclasses.replace``): ``pixel_spacing="Auto"`` or ``0.6``, ``grade_levels="all"``
        or ``["L4-L5"]``, ``sequence="t2"`` are read as meant; a value that cannot be is a ConfigError."""

        def put(key: str, value: Any) -> None:
            object.__setattr__(self, key, value)  # frozen: set once, here

        for key in ("pixel_spacing", "t1_pixel_spacing"):
            if getattr(self, key) is not None:
                put(key, parse_pixel_spacing(getattr(self, key), key))
        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        for key in ("use_t1", "check_orientation"):
            value = getattr(self, key)
            if getattr(getattr(value, "dtype", None), "kind", None) == "b":  # a numpy bool
                put(key, bool(value))
            elif not isinstance(value, bool):
                raise ConfigError(f"{key} must be true or false, got {value!r}")
        put("grade_levels", parse_grade_levels(self.grade_levels))
        if self.sequence is not None:
            put("sequence", parse_sequence(self.sequence))
        for key in MODEL_OPTIONS:
            if getattr(self, key) is not None:
                put(key, _absolute_if_found(str(getattr(self, key))))

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> AnalysisConfig:
        """Build from plain values (JSON, CLI), refusing unknown keys and malformed values."""
        known = [f.name for f in fields(cls)]
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else f" Known options: {', '.join(known)}."
                raise ConfigError(f"unknown analysis option '{key}'.{hint}")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> AnalysisConfig:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read the options file '{p}': {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"the options file '{p}' must hold a JSON object")
        for key in MODEL_OPTIONS:  # beside the file, as written in it
            value = data.get(key)
            if isinstance(value, str) and not Path(value).expanduser().is_absolute() and (p.parent / value).exists():
                data[key] = str(p.parent / value)
        return cls.from_mapping(data)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["grade_levels"] = [lv.value for lv in self.grade_levels] if self.grade_levels is not None else "all"
        for key in ("pixel_spacing", "t1_pixel_spacing"):
            ps = getattr(self, key)
            d[key] = ps if ps is None or ps == AUTO else list(ps)
        return d


def parse_grade_levels(levels: Any) -> tuple[DiscLevel, ...] | None:
    """``"lumbar"``, ``"all"`` (None: every detected disc), a comma-separated string or a list of disc levels → the
    levels as :class:`DiscLevel` (None for all)."""
    if levels is None:
        return None
    if isinstance(levels, str):
        levels = {"lumbar": LUMBAR_DISCS, "all": None}.get(levels.strip().lower(), levels.split(","))
        if levels is None:
            return None
    try:
        parsed = tuple(DiscLevel.parse(lv) for lv in levels)
    except TypeError:
        raise ConfigError(f"grade_levels must be 'lumbar', 'all' or a list of disc levels, got {levels!r}") from None
    if not parsed:  # nothing would be graded, and nothing would say why
        raise ConfigError("grade_levels is empty: give 'lumbar' (the default), 'all' or at least one disc level")
    return parsed


def parse_sequence(value: Any) -> str:
    """A user's sequence name (any case) → one of :data:`SEQUENCES`."""
    by_lower = {s.lower(): s for s in SEQUENCES}
    name = by_lower.get(str(value).strip().lower())
    if name is None:
        raise ConfigError(f"sequence must be one of {', '.join(SEQUENCES)}, got {value!r}")
    return name


def parse_pixel_spacing(value: Any, what: str = "pixel_spacing") -> PixelSpacing:
    """``"auto"``, one number (square pixels) or two (row, column mm) → ``"auto"`` or ``(row_mm, col_mm)``."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    if isinstance(value, bool) or (isinstance(value, (list, tuple)) and any(isinstance(x, bool) for x in value)):
        # True is a number to Python (1 mm), never a pixel size
        raise ConfigError(f'{what} must be [row_mm, col_mm] or "auto", got {value!r}')
    try:
        # one number (also a numpy scalar, e.g. nibabel's get_zooms()[0]) is a square pixel
        ps = [value, value] if isinstance(value, (numbers.Real, str)) else list(value)
        ps = ps * 2 if len(ps) == 1 else ps
        row, col = (float(x) for x in ps)
    except (TypeError, ValueError):
        raise ConfigError(f'{what} must be [row_mm, col_mm] or "auto", got {value!r}') from None
    if not (row > 0 and col > 0 and math.isfinite(row) and math.isfinite(col)):
        raise ConfigError(f"{what} must be two positive numbers in mm, got {value!r}")
    return (row, col)


# what a picture whose pixel size is to be estimated is read with: every step rescales it first, and it is small
# enough that no picture reads as larger than any spine picture (1 mm had refused an 8000-pixel picture given auto)
ESTIMATE_PLACEHOLDER_MM = 0.01


def reading_spacing(requested: PixelSpacing | None) -> tuple[float, float] | None:
    """What a reader is given for ``requested``: a placeholder (:data:`ESTIMATE_PLACEHOLDER_MM`) where the pixel
    size is to be estimated."""
    return (ESTIMATE_PLACEHOLDER_MM, ESTIMATE_PLACEHOLDER_MM) if isinstance(requested, str) else requested


def _absolute_if_found(value: str) -> str:
    """A model option as result.json records it: a folder or file that exists, as its absolute path (a result read
    back in another working folder still finds the grader card its report legend comes from); anything else, such
    as a built-in model's name, as given."""
    p = Path(value).expanduser()
    return str(p.resolve()) if p.exists() else value
