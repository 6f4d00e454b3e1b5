"""The fine-tuning labels file: one row per (scan, disc level), one column per grading.

Columns:

* ``scan`` – the scan, as a path relative to ``--scans`` (a DICOM series folder, NIfTI file, …) or absolute;
* ``level`` – the disc level (``L4-L5``, ``l4_l5`` and ``L4/L5`` are all accepted);
* ``split`` – optional: ``train`` or ``val`` (otherwise ``--val-fraction`` of the patients is held out);
* ``patient`` – optional: the patient a scan belongs to (all of a patient's scans land on one side of the split);
  without it, the first folder of the scan path is the patient (``p01/t2.nii.gz`` and ``p01/t1.nii.gz``: ``p01``),
  and a scan directly under ``--scans`` is a patient of its own;
* every other column is a grading, named as in result.json (``central_canal_stenosis``, ``bulging``, …). An empty
  cell, or a missing-value marker (``NA``, ``N/A``, ``NaN``, ``None``, ``null``, ``.``, ``-``; unless declared as a
  class), means "not graded".
  Integer classes are inferred from the values (sorted numerically) unless declared with
  ``--classes name=a,b,c`` (then that order, and other values are refused). Text classes (``normal``, ``mild``,
  ``severe``) must be declared: their order, which becomes the reported grades 0, 1, 2, cannot be guessed (sorted
  by name, ``mild`` would read as 0 and ``normal`` as 1). A column of integers with a text value among them (a typo
  such as ``maybe`` in a 0/1 column) is refused with the value's line: it would make a class of its own.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._logging import get_logger
from ..errors import ConfigError
from ..grading.heads import is_int
from ..levels import DiscLevel, grading_key

log = get_logger("finetune.labels")

RESERVED = ("scan", "level", "split", "patient")


@dataclass
class LabelTable:
    """The parsed labels: scan → level → grading → class string, plus the classes of each grading."""

    path: Path
    gradings: tuple[str, ...]
    classes: dict[str, tuple[str, ...]]
    labels: dict[str, dict[DiscLevel, dict[str, str]]] = field(default_factory=dict)
    splits: dict[str, str] = field(default_factory=dict)  # scan → train/val where a split column exists
    scan_paths: dict[str, Path] = field(default_factory=dict)
    patients: dict[str, str] = field(default_factory=dict)  # scan → patient where a patient column exists
    lines: dict[tuple[str, DiscLevel], int] = field(default_factory=dict)  # (scan, level) → its line in the file
    declared: frozenset[str] = frozenset()  # the gradings whose classes --classes declared (not inferred)

    def groups(self) -> dict[str, str]:
        """The patient of each scan: the ``patient`` column, else the scan path's first folder, else the scan."""
        out = {}
        for scan in self.labels:
            parts = Path(scan).parts
            out[scan] = self.patients.get(scan) or (
                parts[0] if len(parts) > 1 and not Path(scan).is_absolute() else scan
            )
        return out

    @property
    def n_rows(self) -> int:
        return sum(len(v) for v in self.labels.values())


def parse_classes(items: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``["name=a,b,c", ...]`` → ``{"name": ("a", "b", "c")}``."""
    out: dict[str, tuple[str, ...]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        vals = tuple(v.strip() for v in values.split(",") if v.strip())
        if not sep or not name.strip() or len(vals) < 2:
            raise ConfigError(f"--classes expects NAME=CLASS1,CLASS2[,...] with at least two classes, got {item!r}")
        out[name.strip()] = vals
    return out


def _inferred_classes(path: Path, grading: str, first_line: Mapping[str, int]) -> tuple[str, ...]:
    """The classes of an undeclared grading column: its integer values in numerical order. Text values are refused,
    with the line of the first one: among integers it is a typo that would become a class of its own; alone, their
    order (the grades they are reported as) cannot be guessed."""
    text = sorted((v for v in first_line if not is_int(v)), key=lambda v: first_line[v])
    ints = sorted((v for v in first_line if is_int(v)), key=int)
    if text and ints:
        v = text[0]
        raise ConfigError(
            f"{path}:{first_line[v]}: {grading} = {v!r} is not an integer, in a column of integer classes {ints}: a "
            f"typo? correct it (leave the cell empty where the disc is not graded), or declare every class in order "
            f"with --classes {grading}=..."
        )
    if text:
        raise ConfigError(
            f"grading '{grading}' has text classes ({', '.join(text)}) in '{path}': their order, which becomes "
            f"the reported grades 0, 1, 2, …, cannot be guessed; declare it with --classes {grading}=A,B,… listing "
            "them from none (or the lowest) to the most severe"
        )
    return tuple(ints)


# what R (write.csv: NA), pandas and spreadsheets write for a missing value: read as an empty cell, "not graded"
MISSING_MARKERS = frozenset({"na", "n/a", "nan", "none", "null", ".", "-"})


def _norm(v: str) -> str:
    """Cell value → class string (``2.0`` → ``2``; a missing-value marker such as ``NA`` → ``""``)."""
    s = v.strip()
    if s.lower() in MISSING_MARKERS:
        return ""
    try:
        f = float(s)
    except ValueError:
        return s
    return str(int(f)) if f.is_integer() else s


def read_labels(
    path: str | os.PathLike[str],
    scans_dir: str | os.PathLike[str] | None = None,
    declared: Mapping[str, tuple[str, ...]] | None = None,
) -> LabelTable:
    """Read and check a labels file.

    Raises:
        ConfigError: a missing column, an unknown grading or level, a value outside the declared classes, a grading
            with fewer than two classes, a duplicated (scan, level) row, or a bad split value.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"labels file '{p}' does not exist")
    root = Path(scans_dir) if scans_dir is not None else p.parent
    with open(p, newline="", encoding="utf-8-sig") as f:  # Excel's "CSV UTF-8" starts with a BOM
        reader = csv.DictReader(f)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): (v or "") for k, v in r.items()} for r in reader]
    if not cols:
        raise ConfigError(f"labels file '{p}' is empty: it needs a header row (scan,level,<grading>,…) and rows")
    for c in ("scan", "level"):
        if c not in cols:
            sep = next((d for d in (";", "\t", "|") if len(cols) == 1 and d in cols[0]), None)
            hint = f" (its columns are separated by {sep!r}: save it comma-separated)" if sep else ""
            raise ConfigError(f"labels file '{p}' needs a '{c}' column; it has {cols}{hint}")
    gradings = tuple(c for c in cols if c not in RESERVED)
    if not gradings:
        raise ConfigError(f"labels file '{p}' has no grading column (columns besides {RESERVED})")
    for g in gradings:
        _check_grading_name(g)
    declared = dict(declared or {})
    for name in declared:
        if name not in gradings:
            raise ConfigError(f"--classes names '{name}', which is not a column of '{p}' ({', '.join(gradings)})")
    table = LabelTable(path=p, gradings=gradings, classes={})
    first_line: dict[str, dict[str, int]] = {g: {} for g in gradings}  # grading → value → line first seen
    for n, r in enumerate(rows, start=2):
        scan = r["scan"].strip()
        if not scan:
            raise ConfigError(f"{p}:{n}: empty 'scan'")
        try:
            level = DiscLevel.parse(r["level"])
        except ConfigError as exc:
            raise ConfigError(f"{p}:{n}: {exc}") from None
        by_level = table.labels.setdefault(scan, {})
        if level in by_level:
            raise ConfigError(f"{p}:{n}: scan '{scan}' level {level.value} appears twice")
        grades: dict[str, str] = {}
        for g in gradings:
            raw = r.get(g, "").strip()
            v = raw if raw in declared.get(g, ()) else _norm(raw)  # a declared class named "none" stays one
            if v == "":
                continue
            if g in declared and v not in declared[g]:
                raise ConfigError(f"{p}:{n}: {g} = {v!r} is not one of the declared classes {list(declared[g])}")
            grades[g] = v
            first_line[g].setdefault(v, n)
        by_level[level] = grades
        table.lines[(scan, level)] = n
        split = r.get("split", "").strip().lower()
        if "split" in cols:
            if split not in ("train", "val"):
                raise ConfigError(f"{p}:{n}: split must be 'train' or 'val', got {r.get('split')!r}")
            if table.splits.setdefault(scan, split) != split:
                raise ConfigError(f"{p}:{n}: scan '{scan}' is in both splits; a scan belongs to one split")
        if "patient" in cols:
            patient = r.get("patient", "").strip()
            if not patient:
                raise ConfigError(f"{p}:{n}: empty 'patient'")
            if table.patients.setdefault(scan, patient) != patient:
                raise ConfigError(f"{p}:{n}: scan '{scan}' has two patients ({table.patients[scan]!r}, {patient!r})")
        sp = Path(scan)
        table.scan_paths[scan] = sp if sp.is_absolute() else root / sp
    empty = [g for g in gradings if not first_line[g]]
    if empty and len(empty) == len(gradings):
        raise ConfigError(f"every grading column of '{p}' is empty ({', '.join(empty)}): nothing to learn")
    if empty:  # a column kept for later (nothing graded yet) need not stop the others
        log.warning("grading column(s) %s of '%s' hold no grade: left out", ", ".join(empty), p)
        gradings = tuple(g for g in gradings if g not in empty)
        table.gradings = gradings
    for g in gradings:
        cls = declared.get(g) or _inferred_classes(p, g, first_line[g])
        if len(cls) < 2:
            raise ConfigError(f"grading '{g}' has only the value(s) {sorted(first_line[g])} in '{p}': nothing to learn")
        table.classes[g] = tuple(cls)
    table.declared = frozenset(declared)
    return table


def _check_grading_name(name: str) -> None:
    """A built-in grading, or a new one; a near-miss of a built-in name is taken for a typo and refused."""
    import difflib

    from ..errors import ConfigError
    from ..levels import Grading

    key = grading_key(name)
    if isinstance(key, Grading):
        return
    close = difflib.get_close_matches(key, [g.value for g in Grading], n=1, cutoff=0.85)
    if close:
        raise ConfigError(
            f"unknown grading '{name}'. Did you mean '{close[0]}'? (A new grading needs a name that is not a "
            "near-miss of a built-in one.)"
        )
