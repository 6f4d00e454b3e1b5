"""Read any supported input into a :class:`~openspine.scan.Scan`, the format found in :mod:`openspine.io.formats`.

Supported: a DICOM folder (several series allowed), a single DICOM file, a zip of DICOM files, NIfTI
(``.nii``/``.nii.gz``), and a 2D PNG/JPEG when the pixel spacing is given.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ScanReadError
from ..scan import Scan
from .formats import ReadRequest, reader_for

__all__ = ["list_series", "load_scan"]


def existing_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path, or ScanReadError when nothing is there."""
    p = Path(path)
    if not p.exists():
        raise ScanReadError(f"'{p}' does not exist")
    return p


def load_scan(
    path: str | os.PathLike[str],
    series: str | int | None = None,
    pixel_spacing: tuple[float, float] | float | None = None,
) -> Scan:
    """Read a scan from ``path``.

    Args:
        path: DICOM folder, DICOM file, zip of DICOM files, NIfTI file, or PNG/JPEG slice.
        series: for DICOM inputs holding several series, the SeriesInstanceUID, SeriesNumber or the index
            shown by ``openspine info``; by default the sagittal series whose header says T2 with the most slices is
            chosen, else the sagittal series with the most slices (the main series of
            :func:`~openspine.io.load_study`, which also reads the study's T1 series).
        pixel_spacing: row and column spacing in mm, required for PNG/JPEG input.
    """
    p = existing_path(path)
    return reader_for(p).load(p, ReadRequest(series, pixel_spacing))


def list_series(path: str | os.PathLike[str], series: str | int | None = None) -> list[dict[str, object]]:
    """Describe the series found at ``path`` (one dict each), marking the one chosen by default (``chosen``).

    For a DICOM input each dict also says the series' ``role`` in the study whose main series is ``series``
    (default: the default choice) and the ``role_reason`` (see :func:`openspine.io.load_study`).
    """
    p = existing_path(path)
    reader = reader_for(p)
    if reader.list_series is None:
        raise ScanReadError(f"'{p}' holds no series list: it is a single image; use load_scan")
    return reader.list_series(p, series)
