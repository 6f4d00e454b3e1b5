"""Read any supported input into a :class:`~openspine.scan.Scan` (see :mod:`openspine.io.read`), or a study into
its main series and the T1 series beside it (:mod:`openspine.io.study`); the formats are declared in
:mod:`openspine.io.formats`."""

from __future__ import annotations

from .read import list_series, load_scan
from .roles import SeriesRole
from .study import Study, load_study

__all__ = ["SeriesRole", "Study", "list_series", "load_scan", "load_study"]
