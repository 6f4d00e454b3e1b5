"""Read any supported input into a :class:`~openspine.scan.Scan` (see :mod:`openspine.io.read`); the formats are
declared in :mod:`openspine.io.formats`."""

from __future__ import annotations

from .read import list_series, load_scan

__all__ = ["list_series", "load_scan"]
