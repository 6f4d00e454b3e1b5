"""Library logging: a NullHandler on the package logger; the CLI decides what is shown."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger("openspine")
logger.addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """A child of the package logger (``openspine.<name>``)."""
    return logger.getChild(name)


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


class JsonFormatter(logging.Formatter):
    """One JSON object per log record (``--log-format json``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname.lower()}
        entry.update(logger=record.name, message=record.getMessage())
        return json.dumps(entry)


def say_last(line: str, log_format: str, level: int) -> None:
    """A command's closing line on stderr (shown even when quiet): as it is, or with ``--log-format json`` as one
    more JSON record, so a log reader parses every line."""
    if log_format == "json":
        record = logging.LogRecord("openspine", level, __file__, 0, "%s", (line,), None)
        line = JsonFormatter().format(record)
    print(line, file=sys.stderr)
