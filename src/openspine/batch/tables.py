"""Cohort tables: every finished case's rows in one CSV (and Parquet) per kind, rebuilt from the case
folders so that reruns, resumes and shards can never duplicate or lose a row.

The rows come from each case's result.json (written whatever ``--formats`` says), through the same row builder
as the per-case CSV files (:func:`openspine.results.vertebra_rows_from_dict`, ``disc_rows_from_dict``).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from .._logging import get_logger
from ..writers import atomic_write_bytes, atomic_write_text
from .case import CASES_DIR, TMP_PREFIX, CaseStatus, is_finished
from .discover import Skipped

log = get_logger("batch")

FAILURE_COLUMNS = ["case", "stage", "error_type", "message"]
SKIPPED_COLUMNS = ["path", "reason"]


def _rows_of(case_folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The vertebra and disc rows of one finished case, from its result.json."""
    from ..results import disc_rows_from_dict, vertebra_rows_from_dict

    try:
        doc = json.loads((case_folder / "result.json").read_text())
    except (OSError, ValueError) as exc:  # is_finished read it a moment ago; a rerun writing it now
        log.warning("case %s: result.json not readable (%s); its rows are left out", case_folder.name, exc)
        return {"vertebrae": [], "discs": []}
    case = {"case": case_folder.name}
    return {
        "vertebrae": [{**case, **row} for row in vertebra_rows_from_dict(doc)],
        "discs": [{**case, **row} for row in disc_rows_from_dict(doc)],
    }


def _write_table(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def prefetch_parquet_writer() -> None:
    """Load pyarrow in a background thread while cases are being processed.

    Loading it takes 0.5-0.9 s on a 2-core machine (its first conversion of Python values also imports pandas
    when installed), which otherwise adds to the end of every batch run. Start this only after the worker
    processes have been forked (forking while a thread runs is unsafe).
    """
    import threading

    def load() -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet

            pa.array([0.0])
        except ImportError:  # reported when the tables are written
            pass

    threading.Thread(target=load, name="openspine-import-pyarrow", daemon=True).start()


def _write_parquet(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> bool:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    table = (
        pa.table({c: [_typed(r.get(c, "")) for r in rows] for c in columns})
        if rows
        else pa.table({c: pa.array([], type=pa.string()) for c in columns})
    )
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    atomic_write_bytes(path, buf.getvalue().to_pybytes())
    return True


def _typed(value: Any) -> Any:
    """A cell → number where it is one (also a number written as text), so Parquet columns get numeric types."""
    if value == "" or value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def build_cohort_tables(out_root: Path) -> dict[str, int]:
    """Write OUT/vertebrae.csv and OUT/discs.csv (+ .parquet with pyarrow) from all finished cases."""
    base = out_root / CASES_DIR
    folders = (
        sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(TMP_PREFIX)) if base.is_dir() else []
    )
    finished = [p for p in folders if is_finished(p)]
    rows_of = [_rows_of(folder) for folder in finished]
    counts: dict[str, int] = {}
    parquet_ok = True
    for kind in ("vertebrae", "discs"):
        rows = [row for case_rows in rows_of for row in case_rows[kind]]
        columns = ["case", *_default_columns(kind)]
        for row in rows:  # columns a newer result carries come after the known ones
            columns.extend(c for c in row if c not in columns)
        _write_table(out_root / f"{kind}.csv", rows, columns)
        parquet_ok = _write_parquet(out_root / f"{kind}.parquet", rows, columns) and parquet_ok
        counts[kind] = len(rows)
    if not parquet_ok:
        log.warning("Parquet tables not written: install pyarrow (pip install 'openspine[batch]')")
    counts["cases"] = len(finished)
    return counts


def _default_columns(kind: str) -> list[str]:
    from ..results import DISC_COLUMNS, VERTEBRA_COLUMNS

    return list(VERTEBRA_COLUMNS if kind == "vertebrae" else DISC_COLUMNS)


def write_skipped(out_root: Path, skipped: list[Skipped]) -> Path:
    """OUT/skipped.csv: every file under the input root that is no case, with the reason (path relative to it)."""
    path = out_root / "skipped.csv"
    _write_table(path, [{"path": s.path, "reason": s.reason} for s in skipped], SKIPPED_COLUMNS)
    return path


def write_failures(out_root: Path, failures: list[CaseStatus]) -> Path:
    rows = [{"case": f.case_id, "stage": f.stage, "error_type": f.error_type, "message": f.message} for f in failures]
    path = out_root / "failures.csv"
    _write_table(path, rows, FAILURE_COLUMNS)
    return path
