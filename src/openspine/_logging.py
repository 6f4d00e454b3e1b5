"""Library logging: a NullHandler on the package logger; the CLI decides what is shown."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger("openspine")
logger.addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """A child of the package logger (``openspine.<name>``)."""
    return logger.getChild(name)


@contextmanager
def held_back(name: str) -> Iterator[None]:
    """Drop what the package logger ``openspine.<name>`` says while the block runs: a step that the caller repeats
    right after says it again (``openspine info`` lists a DICOM folder's series, then reads the chosen one, and each
    reading had warned about the same skipped files)."""
    target = get_logger(name)

    def drop(record: logging.LogRecord) -> bool:
        return False

    target.addFilter(drop)
    try:
        yield
    finally:
        target.removeFilter(drop)


@contextmanager
def log_file(
    path: Path, fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s", append: bool = False
) -> Iterator[None]:
    """Copy the package's log records of INFO and above into ``path`` while the block runs (a training log;
    ``append`` continues it, e.g. for a resumed run).

    Console handlers keep the level the CLI chose, so the file gets INFO without the console getting chattier;
    everything is restored afterwards.
    """
    handler = logging.FileHandler(path, mode="a" if append else "w")
    handler.setFormatter(logging.Formatter(fmt))
    prev_level = logger.level
    pinned = [h for h in logger.handlers if h.level == logging.NOTSET and not isinstance(h, logging.NullHandler)]
    for h in pinned:
        h.setLevel(prev_level or logging.WARNING)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if prev_level == logging.NOTSET else min(prev_level, logging.INFO))
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(prev_level)
        for h in pinned:
            h.setLevel(logging.NOTSET)


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """No tqdm progress bar while the block runs, whatever each bar's own ``disable`` says (``--log-format json``:
    stderr then carries JSON lines only). Every bar of openspine is made by ``from tqdm import tqdm`` at the moment
    it is needed, so a silent class in its place covers them all; the original is restored afterwards."""
    try:
        import tqdm as tqdm_module
    except ImportError:  # no tqdm, no bars
        yield
        return
    original = tqdm_module.tqdm

    class _Silent(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    tqdm_module.tqdm = _Silent  # type: ignore[misc]
    try:
        yield
    finally:
        tqdm_module.tqdm = original  # type: ignore[misc]


LINE_BAR_INTERVAL_S = 30.0  # a bar that writes to a file shows its state at most this often, one line each


class _Lines:
    """A stream wrapper for a bar writing to a file: each redraw (``\\r`` + state) becomes one line."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        state = text.replace("\r", "").strip()
        if state:
            self.stream.write(state + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


@contextmanager
def line_progress_bars() -> Iterator[None]:
    """tqdm bars as lines while the block runs, for a stderr that is no terminal (a cluster job's log file): a bar
    redrawn in place there becomes hundreds of fragments run into the log lines (training wrote 732 into 79 KB). Each
    bar then writes its state as one line, at most every :data:`LINE_BAR_INTERVAL_S` seconds and when it ends."""
    try:
        import tqdm as tqdm_module
    except ImportError:
        yield
        return
    original = tqdm_module.tqdm

    class _LineBar(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["file"] = _Lines(kwargs.get("file") or sys.stderr)
            kwargs["mininterval"] = max(float(kwargs.get("mininterval") or 0), LINE_BAR_INTERVAL_S)
            kwargs["ascii"] = True
            kwargs.pop("dynamic_ncols", None)
            kwargs["ncols"] = 100
            super().__init__(*args, **kwargs)

        # a new postfix or description shows with the next line, not as a line of its own
        def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
            super().set_postfix(ordered_dict, refresh=False, **kwargs)

        def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
            super().set_postfix_str(s, refresh=False)

        def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
            super().set_description(desc, refresh=False)

    tqdm_module.tqdm = _LineBar  # type: ignore[misc]
    try:
        yield
    finally:
        tqdm_module.tqdm = original  # type: ignore[misc]


class JsonFormatter(logging.Formatter):
    """One JSON object per log record (``--log-format json``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname.lower()}
        entry.update(logger=record.name, message=record.getMessage())
        case = getattr(record, "case", None)
        if case is not None:
            entry["case"] = case
        return json.dumps(entry)


# the batch case whose analysis is running in this thread (None: none): its records name it
_CASE: contextvars.ContextVar[str | None] = contextvars.ContextVar("openspine_case", default=None)
_factory_installed = False


def _naming_the_case(base: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        case = _CASE.get()
        if case is not None and (record.name == "openspine" or record.name.startswith("openspine.")):
            try:
                record.msg, record.args = f"case {case}: {record.getMessage()}", ()
            except Exception:  # a message whose arguments do not fit: logging itself reports it, as without a case
                return record
            record.case = case
        return record

    return factory


@contextmanager
def naming_case(case_id: str) -> Iterator[None]:
    """Every package log record made in this thread while the block runs starts ``case <id>: `` (and carries
    ``case`` in ``--log-format json``): a batch's per-case warnings ("grading not run: …") are otherwise anonymous
    once several workers write to one log. The record factory is wrapped once per process, on first use; outside
    such a block it changes nothing."""
    global _factory_installed
    if not _factory_installed:
        logging.setLogRecordFactory(_naming_the_case(logging.getLogRecordFactory()))
        _factory_installed = True
    token = _CASE.set(case_id)
    try:
        yield
    finally:
        _CASE.reset(token)


def say_last(line: str, log_format: str, level: int) -> None:
    """A command's closing line on stderr (shown even when quiet): as it is, or with ``--log-format json`` as one
    more JSON record, so a log reader parses every line."""
    if log_format == "json":
        record = logging.LogRecord("openspine", level, __file__, 0, "%s", (line,), None)
        line = JsonFormatter().format(record)
    print(line, file=sys.stderr)


class _ClearingLineFormatter(logging.Formatter):
    """Plain lines that clear the terminal's line first (where a progress bar is drawn)."""

    def __init__(self) -> None:
        super().__init__("\r\x1b[K%(levelname)s: %(message)s")


def log_to_stderr(level: int, json_lines: bool, clear_line: bool = False) -> None:
    """The package's log lines at ``level`` on stderr, one per line (JSON records with ``json_lines``; plain lines that
    clear the terminal's line first with ``clear_line``): the command line's setting, and that of a Dask worker,
    which would otherwise drop the per-case lines of a run."""
    handler = logging.StreamHandler(sys.stderr)
    plain = _ClearingLineFormatter() if clear_line else logging.Formatter("%(levelname)s: %(message)s")
    handler.setFormatter(JsonFormatter() if json_lines else plain)
    root = logging.getLogger("openspine")
    root.handlers = [h for h in root.handlers if isinstance(h, logging.NullHandler)] + [handler]
    root.setLevel(level)
    root.propagate = False


def console_setting() -> tuple[int, bool, bool]:
    """The level of the package's logger, whether its stderr lines are JSON records and whether they clear the
    terminal's line first (for :func:`log_to_stderr` in another process: a Dask worker)."""
    root = logging.getLogger("openspine")
    json_lines = any(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
    clear_line = any(isinstance(h.formatter, _ClearingLineFormatter) for h in root.handlers)
    return root.level or logging.WARNING, json_lines, clear_line


def log_lines_over_the_bar() -> None:
    """Start each of the package's plain log lines on a terminal by clearing the line: a progress bar redrawn in place
    leaves the cursor at its end, and the workers' lines had run on after it (``…1.22scan/s]INFO: case …``). The bar
    draws itself again below. Workers started afterwards inherit the setting."""
    for handler in logging.getLogger("openspine").handlers:
        stream = getattr(handler, "stream", None)
        plain = not isinstance(handler.formatter, JsonFormatter)  # a JSON record stays one clean line
        if isinstance(handler, logging.StreamHandler) and stream is not None and stream.isatty() and plain:
            handler.setFormatter(_ClearingLineFormatter())
