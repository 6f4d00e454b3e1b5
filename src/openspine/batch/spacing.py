"""A pixel-size table for a cohort of pictures: each PNG/JPEG's own pixel size (pictures carry none), so that one
batch run reads pictures exported at different sizes, each at its own.

The table is a CSV with the columns ``path`` (the picture, relative to the batch input folder, or absolute),
``row_mm`` and ``col_mm`` (the pixel's height and width in mm; ``col_mm`` may be left empty for square pixels).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..io.paths import resolved

COLUMNS = ("path", "row_mm", "col_mm")


@dataclass(frozen=True)
class PictureSpacings:
    """The pixel sizes a table gives, by the resolved path of each picture."""

    path: Path  # the table file
    sizes: dict[str, tuple[float, float]] = field(default_factory=dict)

    def of(self, picture: str | os.PathLike[str]) -> tuple[float, float] | None:
        """The table's pixel size of ``picture``, or None when it is not listed."""
        return self.sizes.get(str(resolved(picture)))

    def unlisted(self, pictures: set[str]) -> list[str]:
        """The table's paths that name none of ``pictures`` (resolved paths): a typo, or a picture not under the
        input folder."""
        return sorted(p for p in self.sizes if p not in pictures)


def read_spacing_table(table: str | os.PathLike[str], root: str | os.PathLike[str]) -> PictureSpacings:
    """Read a pixel-size table (see the module); relative paths are taken from ``root``, the batch input folder.

    Raises:
        ConfigError: the file is missing, lacks a column, or a row has more cells than columns, an empty path, a size
            that is not a positive number in mm, or a picture listed twice; the message names the file and line.
    """
    p = Path(table)
    if not p.is_file():
        raise ConfigError(f"pixel-size table '{p}' does not exist")
    rows: list[tuple[int, dict[str, str]]] = []
    with open(p, newline="", encoding="utf-8-sig") as f:  # Excel's "CSV UTF-8" starts with a BOM
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in ("path", "row_mm") if c not in columns]
        if missing:
            raise ConfigError(
                f"pixel-size table '{p}' needs the columns {', '.join(COLUMNS)} (col_mm may be empty for square "
                f"pixels); it has {columns}"
            )
        for r in reader:
            where = f"{p}:{reader.line_num}"  # the file's line (blank lines are skipped by the reader)
            if None in r:  # DictReader files cells beyond the header under None
                raise ConfigError(f"{where}: more cells than the columns {', '.join(columns)}")
            rows.append((reader.line_num, {(k or "").strip(): (v or "").strip() for k, v in r.items()}))
    sizes: dict[str, tuple[float, float]] = {}
    for line, r in rows:
        where = f"{p}:{line}"
        if not r["path"]:
            raise ConfigError(f"{where}: empty 'path'")
        picture = Path(r["path"]).expanduser()
        key = str(resolved(picture if picture.is_absolute() else Path(root) / picture))
        if key in sizes:
            raise ConfigError(f"{where}: '{r['path']}' is listed twice")
        sizes[key] = _size(r.get("row_mm", ""), r.get("col_mm", ""), f"{where}: the pixel size of '{r['path']}'")
    return PictureSpacings(p, sizes)


def _size(row: str, col: str, what: str) -> tuple[float, float]:
    """(row, col) mm from a table's cells (an empty ``col`` = square pixels)."""
    try:
        size = (float(row), float(col or row))
    except ValueError:
        size = None
    if size is None or not all(math.isfinite(x) and x > 0 for x in size):
        given = f"{row!r}, {col!r}" if col else repr(row)
        hint = " (for estimated sizes use --pixel-spacing auto)" if "auto" in (row.lower(), col.lower()) else ""
        raise ConfigError(f"{what} must be a positive number of mm (row_mm, col_mm), got {given}{hint}")
    return size
