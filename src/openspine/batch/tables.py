"""Cohort tables: every finished case's rows in one CSV (and Parquet) per kind, rebuilt from the case
folders so that reruns, resumes and shards can never duplicate or lose a row.

The rows come from each case's result.json (written whatever ``--formats`` says), through the same row builder
as the per-case CSV files (:func:`openspine.results.vertebra_rows_from_dict`, ``disc_rows_from_dict``).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import pickle
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .._logging import get_logger
from .._optional import install_hint
from ..io.paths import resolved
from ..io.sidecar import BIDS_ENTITIES, bids_entities
from ..vocabulary import T1_NOT_USED
from ..writers import atomic_file, atomic_write_text, utf8_bytes
from .case import (
    CASES_DIR,
    SCOPE_STAGE,
    TMP_PREFIX,
    CaseStatus,
    case_dir,
    finished_status,
    holds_case,
    is_finished,
    recorded_failure,
    recorded_name,
    recorded_source,
)
from .discover import Case, Skipped

log = get_logger("batch")

# cases.csv: one row per finished case, what its result.json says of the scan as a whole, so a cohort is screened
# (which cases carry a labelling flag, which were out of scope, which series a DICOM study was read from) without
# opening every folder
CASE_COLUMNS = [
    "format",
    "series_description",
    "series_uid",
    "chosen_because",
    "sequence",
    "sequence_source",
    "sequence_best_guess",
    "field_of_view",
    "vertebrae",
    "labelled",
    "discs",
    "graded",
    "levels_asked",
    "labelling_flagged",
    "t1",
    "t1_discs_matched",
    "t1_used_for_grading",
    "t1_not_used",
    "out_of_scope",
    "withheld",
    "all_flags",
    "models",
]
# the flags that say labels or grades were withheld (outside a model's scope): a case in scope that answers nothing
# (a cervical scan: no label, no grade) must still stand out when a cohort is screened
WITHHELD_FLAGS = ("labels_withheld:", "grades_withheld:")
FLAG_SEPARATOR = " | "
FAILURE_COLUMNS = ["case", "input", "stage", "error_type", "message"]
SKIPPED_COLUMNS = ["path", "reason"]
STALE_COLUMNS = ["case", "input", "reason"]
SHOWN = 5  # case ids named in a log line about many cases


def input_text(path: str | Path, input_root: Path | None) -> str:
    """A case's input as the tables name it: relative to the input root (``site1/sub-01_T2w.nii.gz``) where it lies
    under it, else (and for the root itself) absolute. One spelling whatever the run's working folder and however the
    root was typed, so the tables of several runs (resumes, shards) join on it."""
    # absolute, links not followed: a DataLad/git-annex dataset's files are links into .git/annex, and a file is
    # named by where it lies under the root, not by where its link points
    full = Path(os.path.abspath(path))
    if input_root is not None:
        try:
            below = full.relative_to(os.path.abspath(input_root))
        except ValueError:  # outside the root (a T1 given by an absolute path)
            below = None
        if below is not None and below.parts:  # the root itself (a DICOM study in it) is named in full
            return below.as_posix()
    return str(full)


def _rows_of(case_folder: Path, input_path: str) -> dict[str, list[dict[str, Any]]]:
    """The vertebra and disc rows of one finished case, from its result.json (``input_path``: the tables' name of
    its input, :func:`input_text`)."""
    from ..results import disc_rows_from_dict, vertebra_rows_from_dict

    try:
        doc = json.loads((case_folder / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # is_finished read it a moment ago; a rerun writing it now
        log.warning("case %s: result.json not readable (%s); its rows are left out", case_folder.name, exc)
        return {"cases": [], "vertebrae": [], "discs": []}
    # the input beside the case id: a BIDS file's id is its name alone, and its subject and session are in its path
    source = doc.get("input") if isinstance(doc.get("input"), dict) else {}
    case = {"case": case_folder.name, "input": input_path, **bids_entities(source.get("path"))}
    return {
        "cases": [{**case, **_case_row(doc, source)}],
        "vertebrae": [{**case, **row} for row in vertebra_rows_from_dict(doc)],
        "discs": [{**case, **row} for row in disc_rows_from_dict(doc)],
    }


def _graded(disc: dict[str, Any]) -> bool:
    """Whether a disc of result.json got a grade: a withheld grading is there too, with ``available`` false."""
    grades = disc.get("grades")
    if not isinstance(grades, dict):
        return False
    return any(isinstance(g, dict) and g.get("available", True) and g.get("grade") is not None for g in grades.values())


def _case_row(doc: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """The row of cases.csv of one result.json (:data:`CASE_COLUMNS`)."""
    from ..detection.flags import labelling_flagged

    def reading(key: str) -> dict[str, Any]:
        value = source.get(key)
        return value if isinstance(value, dict) else {}

    series = reading("series")
    flags = [str(f) for f in doc.get("flags") or []]
    vertebrae = [v for v in doc.get("vertebrae") or [] if isinstance(v, dict)]
    discs = [d for d in doc.get("discs") or [] if isinstance(d, dict)]
    return {
        "format": source.get("format"),
        "series_description": series.get("series_description"),
        # several studies in one folder give cases of one input and series name; the series told apart (user test)
        "series_uid": series.get("series_uid"),
        "chosen_because": series.get("chosen_because"),
        "sequence": reading("sequence").get("value"),
        "sequence_source": reading("sequence").get("source"),
        # where the sequence is unknown: the likeliest one (a header's word set aside had shown an empty sequence
        # beside source "header", as if the header had said nothing; user test)
        "sequence_best_guess": reading("sequence").get("best_guess"),
        "field_of_view": reading("field_of_view").get("value"),
        "vertebrae": len(vertebrae),
        "labelled": sum(1 for v in vertebrae if v.get("label")),
        "discs": len(discs),
        "graded": sum(1 for d in discs if _graded(d)),
        "levels_asked": _levels_asked(doc.get("parameters")),
        "labelling_flagged": labelling_flagged(flags),
        **_t1_columns(doc, flags),
        "out_of_scope": doc.get("out_of_scope") or "",
        "withheld": FLAG_SEPARATOR.join(f for f in flags if f.startswith(WITHHELD_FLAGS)),
        "all_flags": FLAG_SEPARATOR.join(flags),  # not "flags": a DataFrame's .flags is pandas' own
        "models": _models_text(doc.get("models")),
    }


def _levels_asked(parameters: Any) -> str:
    """The disc levels the case was asked to grade (``parameters.grade_levels``), ``;``-joined, or ``all``: a cohort
    analysed with ``--levels`` in some runs had shown discs left ungraded with no column saying why (user test)."""
    if not isinstance(parameters, dict) or "grade_levels" not in parameters:
        return ""
    asked = parameters["grade_levels"]
    return ";".join(str(a) for a in asked) if isinstance(asked, list) else "all" if asked is None else str(asked)


def _models_text(models: Any) -> str:
    """The models a case ran, ``name version (sha256's first 12[, card its card's first 12])`` joined by ``; ``:
    cases of a cohort analysed with other weights or another card (an upgrade, a grader fine-tuned again, a card
    edited by hand) tell themselves apart."""
    if not isinstance(models, list):
        return ""
    said = []
    for m in models:
        if isinstance(m, dict):
            card = f", card {str(m['card_sha256'])[:12]}" if m.get("card_sha256") else ""
            said.append(f"{m.get('name')} {m.get('version')} ({str(m.get('sha256') or '')[:12]}{card})")
    return "; ".join(said)


def _mapping(value: Any) -> dict[str, Any]:
    """``value`` where result.json holds an object there, else an empty one (a hand-edited or older file)."""
    return value if isinstance(value, dict) else {}


def _t1_columns(doc: dict[str, Any], flags: list[str]) -> dict[str, Any]:
    """Which T1 series was read beside the main one (series number and description, else its file), how many discs
    were matched, whether grading read it, and why it was not used (the ``t1_not_used`` flag's reason, which also
    says when a study's T1 could not be read at all); where no T1 was read, ``t1`` is empty, no disc is matched and
    grading read none (a count and a yes/no without gaps: a Parquet column of booleans with nulls had read in pandas as
    objects, which ``query("t1_used_for_grading")`` refuses; user test)."""
    from ..render.report import series_text

    other = next((o for o in doc.get("other_series") or [] if isinstance(o, dict) and o.get("role") == "T1"), None)
    why = next((f.split(": ", 1)[-1] for f in flags if f.startswith(f"{T1_NOT_USED}:")), "")
    if other is None:
        return {"t1": "", "t1_discs_matched": 0, "t1_used_for_grading": False, "t1_not_used": why}
    source = _mapping(other.get("input"))
    series, file = series_text(_mapping(source.get("series"))), Path(str(source.get("path") or "")).name
    # a file's name too (sidecars' descriptions repeat across a dataset); a DICOM series' path is its study's folder
    name = f"{file} ({series})" if series and file and source.get("format") != "dicom" else series or file
    match = _mapping(other.get("match"))
    return {
        "t1": name,
        "t1_discs_matched": len(match.get("discs") or []),
        "t1_used_for_grading": bool(other.get("used_for_grading")),
        "t1_not_used": why,
    }


def _write_table(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def prefetch_parquet_writer() -> threading.Thread:
    """Load pyarrow in a background thread while cases are being processed; returns the thread, which
    :func:`parquet_writer_loaded` waits for before the tables are written.

    Loading it takes 0.5-0.9 s on a 2-core machine (its first conversion of Python values also imports pandas
    when installed), which otherwise adds to the end of every batch run. Start this only after the worker
    processes have been forked (forking while a thread runs is unsafe).
    """

    def load() -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet

            pa.array([0.0])
        except ImportError:  # reported when the tables are written
            pass

    thread = threading.Thread(target=load, name="openspine-import-pyarrow", daemon=True)
    thread.start()
    return thread


def parquet_writer_loaded(thread: threading.Thread | None) -> None:
    """Wait for :func:`prefetch_parquet_writer`'s thread before the tables are written. The main thread must not
    import pyarrow while that thread does: a Ctrl-C that fell while it waited for the import's module lock had left
    the run hanging for good (user test, 2 of 45 interruptions). Waiting here is interruptible and holds no lock."""
    if thread is not None:
        thread.join()


def _write_parquet(path: Path, spool: _Spool, columns: list[str], batch: int = 10000) -> bool:
    """The spooled rows as Parquet, ``batch`` rows at a time, each column of one type throughout
    (:class:`_ColumnStats`); False without pyarrow."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    if not spool.count:
        table = pa.table({c: pa.array([], type=pa.string()) for c in columns})
        with atomic_file(path) as f:
            pq.write_table(table, f)
        return True
    empty = _ColumnStats()
    schema = pa.schema([(c, spool.stats.get(c, empty).arrow_type(c)) for c in columns])
    with atomic_file(path) as f, pq.ParquetWriter(f, schema) as writer:
        rows = spool.rows()
        while chunk := list(itertools.islice(rows, batch)):
            arrays = [
                pa.array(_typed_cells([r.get(c, "") for r in chunk], field.type), type=field.type)
                for c, field in zip(columns, schema)
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    return True


def _typed_cells(values: list[Any], arrow_type: Any) -> list[Any]:
    """One column's cells as the column's type (:class:`_ColumnStats`) takes them: an empty cell is null."""
    import pyarrow as pa

    cells = [None if v is None or v == "" else v for v in values]
    if arrow_type == pa.bool_() or arrow_type == pa.null():
        return cells
    if arrow_type in (pa.int64(), pa.float64()):
        return [v if type(v) in (int, float) else None if v is None else _number(v) for v in cells]
    return [None if v is None else _valid_text(str(v)) for v in cells]


def _valid_text(text: str) -> str:
    """``text`` that Parquet can store: a file name the locale could not decode (``LC_ALL=C``: its bytes kept as
    surrogates) is decoded again as UTF-8."""
    return utf8_bytes(text).decode("utf-8", errors="replace")


_TEXT_COLUMNS = frozenset(
    {"case", "input", "subject", "session", "acquisition", "run"}
    | {"label", "level", "grading", "probabilities", "series", "note"}
    | {"format", "series_description", "series_uid", "chosen_because", "sequence", "sequence_source"}
    | {"sequence_best_guess", "field_of_view", "levels_asked"}
    | {"t1", "t1_not_used", "out_of_scope", "withheld", "all_flags", "models"}
)  # a subject 01 stays 01; a column of cases.csv empty in one cohort is still text


def _number(value: Any) -> int | float | None:
    """``value`` as an int (an int, or text of one) or a float, or None when it is no number (a bool is none)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal():  # not isdigit: "²" is a digit, no int
        return int(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def build_cohort_tables(out_root: Path, cases: list[Case], input_root: Path | None = None) -> dict[str, int]:
    """Write OUT/cases.csv, OUT/vertebrae.csv and OUT/discs.csv (+ .parquet with pyarrow) from the finished folders
    of ``cases`` (every case found under the root now, whichever shard ran it) that hold their own input's result: a
    folder left without input, or holding another scan's result, adds no row. ``input_root``: the folder the cases
    were found under, which their ``input`` is relative to (:func:`input_text`).

    The rows are spooled to temporary files case by case and written from there, so memory does not grow with the
    cohort (holding every row had taken 120 kB per case: gigabytes at tens of thousands of cases)."""
    t0 = time.perf_counter()
    folders = [(c, case_dir(out_root, c.case_id)) for c in sorted(cases, key=lambda c: c.case_id)]
    finished = [(c, p) for c, p in folders if is_finished(p) and holds_case(c, p)]
    log.info("building the cohort tables from %d finished case(s)", len(finished))
    spools: dict[str, _Spool] = {}
    try:
        for kind in TABLE_KINDS:
            spools[kind] = _Spool(out_root)
        for i, (c, folder) in enumerate(finished, start=1):
            if i % PROGRESS_EVERY == 0:
                log.info("cohort tables: %d of %d cases read", i, len(finished))
            for kind, rows in _rows_of(folder, input_text(c.path, input_root)).items():
                for row in rows:
                    spools[kind].add(row)
        counts: dict[str, int] = {}
        parquet_ok = True
        for kind, spool in spools.items():
            bids = [e for e in BIDS_ENTITIES if e in spool.stats]  # only where a case is a BIDS file
            columns = ["case", "input", *bids, *_default_columns(kind)]
            columns.extend(c for c in spool.stats if c not in columns)  # a newer result's columns come after
            with atomic_file(out_root / f"{kind}.csv") as f:
                text = io.TextIOWrapper(f, encoding="utf-8", errors="surrogateescape", newline="")
                writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
                writer.writeheader()
                writer.writerows(spool.rows())
                text.flush()
                text.detach()
            parquet_ok = _write_parquet(out_root / f"{kind}.parquet", spool, columns) and parquet_ok
            counts[kind] = spool.count
    finally:
        for spool in spools.values():
            spool.close()
    if not parquet_ok:
        log.warning("Parquet tables not written: install pyarrow (%s)", install_hint(["pyarrow"]))
    counts["cases"] = len(finished)
    log.info("cohort tables built in %.1f s", time.perf_counter() - t0)
    return counts


TABLE_KINDS = ("cases", "vertebrae", "discs")
PROGRESS_EVERY = 5000  # cases read between two log lines while the tables are built (about 20 s)


class _ColumnStats:
    """What one column's cells are, learnt cell by cell, to type the column for Parquet as a whole, never cell by cell
    (a case id '001' stays text beside 'sub-02'): all booleans stay boolean (labelling_flagged, as the CSV reads
    back); a column all of whose cells are numbers becomes numbers (integers stay integers: int64, as the CSV reads
    back), unless it is one of the text columns (a subject 01 stays 01); the rest is text; a column of empty cells
    only is null."""

    def __init__(self) -> None:
        self.filled = 0  # cells neither empty nor None
        self.all_bool = True
        self.all_number = True
        self.any_float = False

    def see(self, value: Any) -> None:
        if value is None or value == "":
            return
        self.filled += 1
        if not (self.all_bool or self.all_number):  # text whatever comes next
            return
        if type(value) is bool:  # no number
            self.all_number = False
            return
        self.all_bool = False
        if type(value) is int:
            return
        number = value if type(value) is float else _number(value)
        self.all_number = self.all_number and number is not None
        self.any_float = self.any_float or isinstance(number, float)

    def arrow_type(self, name: str) -> Any:
        import pyarrow as pa

        if not self.filled:
            return pa.null()
        if self.all_bool:
            return pa.bool_()
        if name not in _TEXT_COLUMNS and self.all_number:
            return pa.float64() if self.any_float else pa.int64()
        return pa.string()


class _Spool:
    """The rows of one table, kept in a temporary file (pickled one after another: they are only read back here)
    while their columns and the types of their cells are learnt."""

    def __init__(self, folder: Path) -> None:
        # closed by close(), whatever ends the build
        self._file = tempfile.TemporaryFile(dir=folder, prefix=".openspine-rows-")  # noqa: SIM115
        self.stats: dict[str, _ColumnStats] = {}  # in the order the columns were first seen
        self.count = 0

    def add(self, row: dict[str, Any]) -> None:
        pickle.dump(row, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        for name, value in row.items():
            self.stats.setdefault(name, _ColumnStats()).see(value)
        self.count += 1

    def rows(self) -> Iterator[dict[str, Any]]:
        self._file.seek(0)
        for _ in range(self.count):
            yield pickle.load(self._file)  # written by add() above, in this process

    def close(self) -> None:
        self._file.close()


def _default_columns(kind: str) -> list[str]:
    from ..results import DISC_COLUMNS, VERTEBRA_COLUMNS

    return list({"cases": CASE_COLUMNS, "vertebrae": VERTEBRA_COLUMNS}.get(kind, DISC_COLUMNS))


def write_skipped(out_root: Path, skipped: list[Skipped]) -> Path:
    """OUT/skipped.csv: every file under the input root that is no case, with the reason (path relative to it)."""
    path = out_root / "skipped.csv"
    _write_table(path, [{"path": s.path, "reason": s.reason} for s in skipped], SKIPPED_COLUMNS)
    return path


SWITCHED = "series_switched: "  # the flag of a case that read another series of its study than discovery chose


def switched_series(out_root: Path, root: Path, cases: Sequence[Case], skipped: list[Skipped]) -> list[Skipped]:
    """``skipped`` as the analysis left it: where a case read another series of its study than the one discovery
    chose (flag ``series_switched``), the series read leaves the list and the one chosen first, read and set aside,
    joins it. skipped.csv is written before the analysis, and had listed the series read as one the case does not
    read (review)."""
    from ..io.dicom import discover_series
    from .discover import series_entries

    read: set[str] = set()
    set_aside: list[Skipped] = []
    for case in cases:
        folder = case_dir(out_root, case.case_id)
        if case.series is None or not holds_case(case, folder) or not is_finished(folder):
            continue
        try:
            doc = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):  # unreadable: the tables leave its rows out and say so
            continue
        flags, source = doc.get("flags"), doc.get("input")
        why = next((f for f in flags if isinstance(f, str) and f.startswith(SWITCHED)), None) if flags else None
        series = source.get("series") if isinstance(source, dict) else None
        uid = series.get("series_uid") if isinstance(series, dict) else None
        if not why or not isinstance(uid, str) or uid == case.series:
            continue
        try:
            study = discover_series(Path(case.path))
        except Exception as exc:  # moved or unreadable since: the list stays as discovery wrote it
            log.warning("case %s: its series could not be listed again for skipped.csv (%s)", case.case_id, exc)
            continue
        first = next((s for s in study if s.series_uid == case.series), None)
        if first is None:
            continue
        read.add(uid)
        files = [p for p in Path(case.path).rglob("*") if p.is_file()]
        set_aside += series_entries(
            root, first, case.case_id, files, f"read first and set aside: {why[len(SWITCHED) :]}"
        )
    kept = [s for s in skipped if s.series_uid not in read]
    return sorted(kept + set_aside, key=lambda s: s.path) if read else skipped


def failure_rows(out_root: Path, cases: list[Case], this_run: list[CaseStatus]) -> list[CaseStatus]:
    """The failed and out-of-scope cases among ``cases``, sorted by id: what each case folder records (so every
    shard's cases are listed, whichever shard writes the file), with the statuses of ``this_run`` on top."""
    rows: dict[str, CaseStatus] = {}
    for case in cases:
        folder = case_dir(out_root, case.case_id)
        if not holds_case(case, folder):  # no record, or another scan's: its shard analyses it again
            continue
        status = finished_status(case.case_id, folder) if is_finished(folder) else recorded_failure(folder)
        if status is not None and (status.status == "failed" or status.stage == SCOPE_STAGE):
            rows[case.case_id] = status
    found = {c.case_id for c in cases}
    rows.update({s.case_id: s for s in this_run if s.case_id in found})
    return [rows[k] for k in sorted(rows)]


def write_failures(
    out_root: Path, failures: list[CaseStatus], cases: Sequence[Case] = (), input_root: Path | None = None
) -> Path:
    """failures.csv: each failed or out-of-scope case with its input (as cases.csv gives it: a failed case had no
    row to join it to its file; user test), stage, error type and message."""
    inputs = {c.case_id: input_text(c.path, input_root) for c in cases}
    rows = [
        {"case": f.case, "input": inputs.get(f.case, ""), "stage": f.stage, "error_type": f.error_type,
         "message": f.message}
        for f in failures
    ]  # fmt: skip
    path = out_root / "failures.csv"
    _write_table(path, rows, FAILURE_COLUMNS)
    return path


def find_stale_cases(
    out_root: Path, cases: list[Case], skipped: Sequence[Skipped] = (), input_root: Path | None = None
) -> list[dict[str, str]]:
    """The case folders of ``out_root`` that no case found under the root now has (its input renamed, moved or
    deleted, or skipped in this run, e.g. a picture without --pixel-spacing; or a case id that changed): rows for
    stale_cases.csv. They are left in place, never deleted, and add no row to the cohort tables or failures.csv.
    ``skipped``: the files discovery passed over, their paths relative to ``input_root``."""
    base = out_root / CASES_DIR
    if not base.is_dir():
        return []
    ids = {c.case_id for c in cases}
    by_source = {str(resolved(c.path)): c.case_id for c in cases}
    skipped_why = {str(resolved((input_root or Path()).joinpath(s.path))): s.reason for s in skipped}
    rows = []
    for folder in sorted(base.iterdir()):
        if folder.name in ids or folder.name.startswith(TMP_PREFIX) or not folder.is_dir():
            continue
        source, named = recorded_source(folder), recorded_name(folder)
        now = by_source.get(str(resolved(source))) if source else None
        if source is None or named is None:
            reason = "the folder records no input (no case.json or result.json)"
        elif now is not None:
            reason = f"its input is case {now} now (case ids changed); that case is analysed in its own folder"
        elif not Path(named).exists() or not Path(source).exists():  # a removed link, or the file it pointed to
            reason = "its input is no longer there (renamed, moved or deleted)"
        elif (skip := skipped_why.get(str(resolved(source)))) is not None:  # a picture without --pixel-spacing
            reason = f"its input is skipped in this run (skipped.csv): {skip}"
        else:
            reason = "its input is no longer found as a case under the root"
        rows.append({"case": folder.name, "input": input_text(named, input_root) if named else "", "reason": reason})
    return rows


def write_stale(out_root: Path, rows: list[dict[str, str]]) -> Path:
    """OUT/stale_cases.csv: the case folders whose input is gone from the root (kept, left out of the tables)."""
    path = out_root / "stale_cases.csv"
    _write_table(path, rows, STALE_COLUMNS)
    if rows:
        shown = ", ".join(r["case"] for r in rows[:SHOWN])
        more = f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
        log.warning(
            "%d case folder(s) have no case under the root in this run (%s%s): kept, left out of the tables, "
            "listed with the reason in %s",
            len(rows), shown, more, path,
        )  # fmt: skip
    return path
