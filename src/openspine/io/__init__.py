"""Read any supported input into a :class:`~openspine.scan.Scan`.

Supported: a DICOM folder (several series allowed), a single DICOM file, a zip of DICOM files, NIfTI
(``.nii``/``.nii.gz``), and a 2D PNG/JPEG when the pixel spacing is given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .._logging import get_logger
from ..errors import ScanReadError
from ..scan import Scan

if TYPE_CHECKING:
    from .dicom import SeriesInfo

log = get_logger("io")

__all__ = ["list_series", "load_scan"]


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise ScanReadError(f"'{path}' does not exist")


def load_scan(
    path: str | os.PathLike[str],
    series: str | int | None = None,
    pixel_spacing: tuple[float, float] | float | None = None,
) -> Scan:
    """Read a scan from ``path``.

    Args:
        path: DICOM folder, DICOM file, zip of DICOM files, NIfTI file, or PNG/JPEG slice.
        series: for DICOM inputs holding several series, the SeriesInstanceUID, SeriesNumber or the index
            shown by ``openspine info``; by default the sagittal series with the most slices is chosen.
        pixel_spacing: row and column spacing in mm, required for PNG/JPEG input.
    """
    p = Path(path)
    _check_exists(p)
    from . import image2d, nifti

    if p.is_file():
        if nifti.is_nifti(p):
            return nifti.read_nifti(p)
        if image2d.is_image(p):
            return image2d.read_image(p, pixel_spacing)
        if p.suffix.lower() == ".zip":
            from .archive import extracted_zip

            with extracted_zip(p) as folder:
                return _read_dicom(folder, series, display_path=p)
        from . import dicom

        if dicom.is_dicom_file(p):
            return _read_dicom(p, series, display_path=p)
        raise ScanReadError(
            f"'{p}' is not a file type openspine reads (DICOM, zip of DICOM, .nii, .nii.gz, .png, .jpg)"
        )
    return _read_dicom(p, series, display_path=p)


def _read_dicom(root: Path, series: str | int | None, display_path: Path) -> Scan:
    from . import dicom

    found = dicom.discover_series(root, display_path=display_path)
    chosen = dicom.choose_series(found, series)
    return dicom.read_series(chosen, display_path=display_path)


def list_series(path: str | os.PathLike[str]) -> list[dict[str, object]]:
    """Describe the series found at ``path`` (one dict each), marking the one chosen by default."""
    p = Path(path)
    _check_exists(p)
    from . import nifti

    if nifti.is_nifti(p):
        scan = load_scan(p)
        return [{"index": 0, "chosen": True, "format": scan.source.format, "shape": list(scan.shape)}]
    from . import dicom

    if p.is_file() and p.suffix.lower() == ".zip":
        from .archive import extracted_zip

        with extracted_zip(p) as folder:
            return _describe(dicom.discover_series(folder, display_path=p))
    if p.is_dir() or dicom.is_dicom_file(p):
        return _describe(dicom.discover_series(p))
    raise ScanReadError(f"'{p}' holds no series list: it is a single image; use load_scan")


def _describe(found: list[SeriesInfo]) -> list[dict[str, object]]:
    from ..errors import SeriesSelectionError
    from . import dicom

    try:
        chosen = dicom.choose_series(found, None, quiet=True)
    except SeriesSelectionError:
        chosen = None
    out = []
    for i, s in enumerate(found):
        d = s.to_dict()
        d["index"] = i
        d["chosen"] = s is chosen
        out.append(d)
    return out
