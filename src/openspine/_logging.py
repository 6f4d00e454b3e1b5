"""Library logging: a NullHandler on the package logger; the CLI decides what is shown."""

from __future__ import annotations

import logging

logger = logging.getLogger("openspine")
logger.addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """A child of the package logger (``openspine.<name>``)."""
    return logger.getChild(name)
