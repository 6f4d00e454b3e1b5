"""Library logging: a NullHandler on the package logger; the CLI decides what is shown."""

from __future__ import annotations

import logging
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
