"""Read any supported input into a :class:`~openspine.scan.Scan`, the format found in :mod:`openspine.io.formats`.

Supported: a DICOM folder (several series allowed), a single DICOM file, a zip of DICOM files, NIfTI
(``.nii``/``.nii.gz``), and a 2D PNG/JPEG when the pixel spacing is given.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._logging import get_logger
from ..errors import InputTypeError, ScanNotFoundError, ScanReadError
from ..scan import Scan
from .formats import ReadRequest, reader_for
from .paths import dicomdir_folder, not_a_regular_file

log = get_logger("io.read")

__all__ = ["check_input_type", "list_series", "load_scan"]


def existing_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path (a DICOMDIR file: its folder), or ScanReadError when nothing is there."""
    check_input_type(path)
    p = Path(path)
    if not p.exists():
        if p.is_symlink():
            raise ScanNotFoundError(f"'{p}' is a symbolic link to nothing: {not_a_regular_file(p)}")
        hint = " ('~' is expanded by a shell, not in Python: os.path.expanduser)" if str(path).startswith("~") else ""
        raise ScanNotFoundError(f"'{p}' does not exist{hint}")
    folder = dicomdir_folder(p)
    if folder != p:
        log.info("'%s' is a DICOMDIR index: reading the folder it indexes, '%s'", p, folder)
    return folder


def check_input_type(source: object, what: str = "the input", scan_allowed: bool = False) -> None:
    """Refuse, with the way out, an input that is neither a path nor (where ``scan_allowed``) a Scan: a numpy array,
    a nibabel image. InputTypeError (a TypeError too) names what was given."""
    if isinstance(source, (str, os.PathLike)) and not str(os.fspath(source)).strip():
        # Path("") is the working folder: it would have been searched, recursively, for a scan
        raise ScanReadError(f"{what} is an empty path: give a DICOM folder or file, a NIfTI file or a picture")
    if isinstance(source, (str, os.PathLike)) or (scan_allowed and isinstance(source, Scan)):
        return
    kind = f"{type(source).__module__}.{type(source).__qualname__}"
    takes = "a path (str or os.PathLike) or an openspine.Scan" if scan_allowed else "a path (str or os.PathLike)"
    nibabel = hasattr(source, "affine") and hasattr(source, "dataobj")
    as_scan = (
        "openspine.Scan(np.asanyarray(image.dataobj), image.affine)" if nibabel else "openspine.Scan(array, affine)"
    )
    if scan_allowed:
        how = f"pass its file's path, or wrap it in {as_scan} (affine: voxel → RAS+ mm)"
    else:  # load_scan reads files: what is already in memory becomes a scan without it
        how = f"pass its file's path; what is already in memory needs no reading: {as_scan} is a scan"
    raise InputTypeError(f"{what} must be {takes}, got {kind}: {how}")


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
            chosen, else the sagittal series whose header names no sequence with the most slices, else the
            sagittal series with the most slices (the main series of :func:`~openspine.io.load_study`, which also
            reads the study's T1 series); objects that are no image (a DICOM SEG or SR) are never chosen.
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
