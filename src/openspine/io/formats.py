"""The input formats openspine reads, each declared once: its name, file suffixes, content sniffing, reader and
series lister. :func:`openspine.io.load_scan`, ``openspine info`` and batch discovery all look formats up here, so
a new reader is one more :class:`Reader` in :data:`READERS` (and, if it writes a new ``ScanSource.format``, that name
in the schema's ``input.format``: a test checks the two agree).

A file is matched by its suffix first (in the order of :data:`READERS`), then by sniffing its content; a folder is
read by the reader that reads folders (DICOM). The reader modules are imported only when a scan is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ScanReadError, SeriesSelectionError
from .image2d import PICTURE_SUFFIXES

if TYPE_CHECKING:
    from ..scan import Scan
    from .dicom import SeriesInfo

__all__ = [
    "LABEL_MAP",
    "READERS",
    "SCAN_FORMATS",
    "ReadRequest",
    "Reader",
    "convert_hint",
    "looks_like_label_map",
    "reader_for",
    "reader_for_name",
]


@dataclass(frozen=True)
class ReadRequest:
    """What the caller asks of a reader: a series of a multi-series input, the pixel spacing of a 2D picture."""

    series: str | int | None = None
    pixel_spacing: tuple[float, float] | float | None = None


SeriesList = list[dict[str, object]]


@dataclass(frozen=True)
class Reader:
    """One input format.

    Attributes:
        name: the reader's name (also the case kind of a batch case read by it).
        format: what :attr:`openspine.scan.ScanSource.format` says of a scan it reads (``result.json`` →
            ``input.format``).
        label: how messages name the format.
        suffixes: lower-case file name endings it reads ("" none: recognised by content only).
        load: reads a path into a Scan.
        sniff: tells from a file's content whether it reads it (for files whose name says nothing).
        list_series: the series a path holds (``openspine info``), given the main series asked for (None: the
            default); None for a single image.
        folders: whether it reads a folder.
        batch_skip: when set, batch discovery does not make a case of such a file but lists it as skipped with
            this reason (None: a file of this format is a batch case).
    """

    name: str
    format: str
    label: str
    suffixes: tuple[str, ...]
    load: Callable[[Path, ReadRequest], Scan]
    sniff: Callable[[Path], bool] | None = None
    list_series: Callable[[Path, str | int | None], SeriesList] | None = None
    folders: bool = False
    batch_skip: str | None = None

    def matches_name(self, name: str) -> bool:
        return bool(self.suffixes) and name.lower().endswith(self.suffixes)

    def stem(self, name: str) -> str:
        """``name`` without this format's suffix."""
        for suffix in self.suffixes:
            if name.lower().endswith(suffix):
                return name[: -len(suffix)]
        return name


# --- NIfTI ------------------------------------------------------------------------------------------------------
def _load_nifti(path: Path, request: ReadRequest) -> Scan:
    from .nifti import read_nifti

    return read_nifti(path)


def _list_nifti(path: Path, series: str | int | None = None) -> SeriesList:
    """The one series a NIfTI file holds, by its header alone (its voxels are read once, by the load that follows:
    reading them here too had doubled ``openspine info``'s time and its warnings)."""
    import nibabel as nib

    try:
        image: Any = nib.load(str(path))  # a NIfTI image: its header gives the shape
        shape = [int(n) for n in image.shape]
    except Exception:  # a damaged file: the load says why
        return [{"index": 0, "chosen": True, "format": "nifti"}]
    while len(shape) > 3 and shape[-1] == 1:  # as the reader keeps it: trailing singleton axes dropped
        shape.pop()
    return [{"index": 0, "chosen": True, "format": "nifti", "shape": shape + [1] * (3 - len(shape))}]


# --- 2D pictures -------------------------------------------------------------------------------------------------
def _load_image(path: Path, request: ReadRequest) -> Scan:
    from .image2d import read_image

    return read_image(path, request.pixel_spacing)


# --- DICOM: folders, single files, zips ---------------------------------------------------------------------------
def _load_dicom(path: Path, request: ReadRequest) -> Scan:
    return _read_dicom(path, request.series, display_path=path)


def _load_dicom_zip(path: Path, request: ReadRequest) -> Scan:
    from .archive import extracted_zip

    with extracted_zip(path) as folder:
        return _read_dicom(folder, request.series, display_path=path)


def _read_dicom(root: Path, series: str | int | None, display_path: Path) -> Scan:
    from .dicom import choose_series, discover_series, read_series

    found = discover_series(root, display_path=display_path)
    return read_series(choose_series(found, series), display_path=display_path)


def _list_dicom(path: Path, series: str | int | None = None) -> SeriesList:
    from .dicom import discover_series

    return _describe(discover_series(path), series)


def _list_dicom_zip(path: Path, series: str | int | None = None) -> SeriesList:
    from .archive import extracted_zip
    from .dicom import discover_series

    with extracted_zip(path) as folder:
        return _describe(discover_series(folder, display_path=path), series)


def _describe(found: list[SeriesInfo], series: str | int | None = None) -> SeriesList:
    """One dict per series, marking the one chosen (``series``, else the default), with its role in the study whose
    main series it is (the roles None when no main series can be chosen: reading the input says why)."""
    from .dicom import choose_series, series_roles

    def pick(wanted: str | int | None) -> SeriesInfo | None:
        try:
            return choose_series(found, wanted, quiet=True)
        except SeriesSelectionError:
            return None

    chosen = pick(series)
    default = pick(None) if series is not None else chosen
    try:
        roles = series_roles(found, series)
    except SeriesSelectionError:
        roles = None
    out = []
    for i, s in enumerate(found):
        d = s.to_dict()
        d["index"] = i
        d["chosen"] = s is chosen  # the series read: --series's, else the default
        d["default"] = s is default  # the one read without --series
        d["role"] = roles[i].role if roles else None
        d["role_reason"] = roles[i].reason if roles else None
        d["role_text"] = roles[i].text() if roles else None
        out.append(d)
    return out


def _sniff_dicom(path: Path) -> bool:
    from .dicom import is_dicom_file

    return is_dicom_file(path)


NIFTI = Reader("nifti", "nifti", ".nii, .nii.gz", (".nii", ".nii.gz"), _load_nifti, list_series=_list_nifti)
IMAGE = Reader(
    "image",
    "image",
    ".png, .jpg, .tif, .bmp",
    PICTURE_SUFFIXES,
    _load_image,
    batch_skip=(
        "2D picture: give batch --pixel-spacing (ROW_MM COL_MM, or auto), or each picture its own in "
        "--pixel-spacing-table, to analyse the pictures too"
    ),
)
DICOM_ZIP = Reader(
    "dicom-zip",
    "dicom",
    "zip of DICOM",
    (".zip",),
    _load_dicom_zip,
    list_series=_list_dicom_zip,
    batch_skip="zip archive: batch does not extract archives (unzip it under the input folder)",
)
DICOM = Reader("dicom", "dicom", "DICOM", (), _load_dicom, _sniff_dicom, _list_dicom, folders=True)

# in the order a file is matched: by suffix, then by content
READERS: tuple[Reader, ...] = (DICOM_ZIP, NIFTI, IMAGE, DICOM)
# every ScanSource.format: those of the readers, and "array" for a Scan built in memory (result.schema.json lists them)
SCAN_FORMATS: tuple[str, ...] = (*dict.fromkeys(r.format for r in READERS), "array")


def reader_for_name(name: str) -> Reader | None:
    """The reader whose suffix ``name`` ends with, or None (no content sniffing)."""
    return next((r for r in READERS if r.matches_name(name)), None)


def reader_for(path: Path) -> Reader:
    """The reader of an existing ``path``: a folder's, else by suffix, else by content; ScanReadError if none."""
    if not path.is_file():
        return next(r for r in READERS if r.folders)
    by_name = reader_for_name(path.name)
    if by_name is not None:
        return by_name
    for r in READERS:
        if r.sniff is not None and r.sniff(path):
            return r
    labels = ", ".join(r.label for r in sorted(READERS, key=lambda r: not r.folders))
    raise ScanReadError(f"'{path}' is not a file type openspine reads ({labels}){convert_hint(path)}")


def convert_hint(path: Path) -> str:
    """'; save it as NIfTI …' for a file that 3D Slicer, ITK-SNAP, FreeSurfer or older tools save, else ''."""
    return next((h for ends, h in CONVERT_HINTS if path.name.lower().endswith(ends)), "")


# formats that 3D Slicer, ITK-SNAP, FreeSurfer and older tools save: how to give openspine the scan instead
_TO_NIFTI = "save it as NIfTI (.nii.gz)"
CONVERT_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    ((".nrrd", ".nhdr"), f"; {_TO_NIFTI}: in 3D Slicer choose .nii.gz when saving, or convert with SimpleITK"),
    ((".mha", ".mhd"), f"; {_TO_NIFTI}: convert with SimpleITK (sitk.WriteImage(sitk.ReadImage(f), 'scan.nii.gz'))"),
    ((".mgz", ".mgh"), f"; {_TO_NIFTI}: mri_convert, or nibabel (nib.save(nib.load(f), 'scan.nii.gz'))"),
    ((".hdr", ".img"), f"; {_TO_NIFTI}: nibabel reads the Analyze/NIfTI pair (nib.save(nib.load(f), 'scan.nii.gz'))"),
)


# a file name that says label map: a word of it (between _ - . or the ends) is one of these
LABEL_NAME = re.compile(r"(^|[_\-.])(mask|masks|label|labels|seg|dseg|points|roi)([_\-.]|$)", re.IGNORECASE)
LABEL_MAP = "looks like a label map, not an image"


def looks_like_label_map(path: str | os.PathLike[str]) -> bool:
    """Whether a NIfTI file's or a picture's name says it is a label map (a word ``mask``, ``labels``, ``seg``,
    ``dseg``, ``roi`` … in it, e.g. ``sub-01_T2w_seg.nii.gz``) rather than an image. The one rule by which batch
    discovery skips such a file and ``analyze`` refuses it as out of scope; DICOM inputs are never judged by name."""
    name = os.path.basename(os.fspath(path).rstrip("/\\"))
    reader = reader_for_name(name)
    return reader is not None and reader.format != "dicom" and bool(LABEL_NAME.search(reader.stem(name)))
