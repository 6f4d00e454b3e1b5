"""DICOM reader: find the series in a folder, pick one, and build a :class:`~openspine.scan.Scan` with exact geometry.

Geometry follows the standard (PS3.3 C.7.6.2.1.1) and highdicom's volume logic:

* the first triplet of ImageOrientationPatient (``X``) is the direction of increasing *column* index ``j``,
  scaled by ``PixelSpacing[1]`` (column spacing); the second triplet (``Y``) is the direction of increasing *row*
  index ``i``, scaled by ``PixelSpacing[0]`` (row spacing);
* slices are sorted by the projection of ImagePositionPatient on the slice normal ``X × Y`` – never by
  InstanceNumber or file name – and the slice step comes from the positions, never from SliceThickness;
* every slice must share orientation, size and pixel spacing, positions must be distinct and evenly spaced,
  otherwise a :class:`~openspine.errors.GeometryError` names the offending values.

The array is laid out ``[row, column, slice]``; the affine maps ``(i, j, k)`` to RAS+ mm (DICOM's LPS patient
coordinates are converted here, at the file boundary). No patient identifier is read into any output.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .. import geometry, scope
from .._logging import get_logger
from ..errors import GeometryError, ScanReadError, SeriesSelectionError, UnsupportedScanError
from ..recognition.header import (
    DIXON_IMAGE_TYPES,
    after_contrast,
    demoted_t2_reason,
    header_tokens,
    inversion_recovery,
    number_or_none,
    sequence_from_header,
    sequence_from_text,
)
from ..scan import Scan, ScanSource
from ..vocabulary import DICOM_FILES_UNREADABLE
from .image2d import PICTURE_SUFFIXES
from .paths import dicomdir_folder, not_a_regular_file
from .roles import HIGHER_STATION, LOWER_STATION, OTHER_STUDY, ROLE_MAIN, ROLE_NOT_USED, ROLE_STIR, ROLE_T1, SeriesRole
from .stations import STATION_MIN_SLICES, centre_mm, lowest_station, named_below_lumbar, other_station

log = get_logger("io.dicom")

__all__ = [
    "ChosenSeries",
    "SeriesInfo",
    "choose_series",
    "choose_series_why",
    "discover_series",
    "is_dicom_file",
    "not_an_image",
    "read_series",
    "series_roles",
]

# Two orientations closer than this (per direction-cosine component, about 0.06°) are the same orientation: direction
# cosines written with 4 decimals, or recomputed by a converter, differ by 1e-4 from image to image
ORIENTATION_TOL = 1e-3
# Pixel spacings closer than this (mm) are the same spacing.
PIXEL_SPACING_TOL_MM = 1e-4
# A slice gap is irregular when it differs from the median gap by more than both the relative bar and the absolute
# one: GAP_TOL_MM, plus what positions written to POSITION_ROUNDING_MM (0.1 mm: 3.33 mm slices stored as 3.3 and
# 3.4 mm gaps) can move a gap along the slice normal (more for an oblique stack: each coordinate rounds on its own).
# A missing slice (a 100 % jump) is always caught.
GAP_TOL_MM = 0.01
# two images at one position along the slice normal whose positions lie this far apart within the plane belong to
# stacks at different heights (a whole-spine study's stations under one series UID), not to echoes or repeats
STACKS_APART_MM = 20.0
GAP_TOL_REL = 0.01
POSITION_ROUNDING_MM = 0.1
# A slice normal whose largest component is at least this (within ~37° of a main axis) names a plane;
# tilted sagittal spine acquisitions (usually < 25°) still count as sagittal.
PLANE_MIN_COMPONENT = 0.8

_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_PIXEL_TAG_BYTES = {
    b"\xe0\x7f\x10\x00",  # (7FE0,0010) Pixel Data, little endian
    b"\xe0\x7f\x08\x00",  # (7FE0,0008) Float Pixel Data
    b"\xe0\x7f\x09\x00",  # (7FE0,0009) Double Float Pixel Data
    b"\x7f\xe0\x00\x10",  # big endian variants (retired transfer syntax, still found in old archives)
    b"\x7f\xe0\x00\x08",
    b"\x7f\xe0\x00\x09",
}
# Which pip package decodes which compressed transfer syntax (prefix of the UID → plugin).
_DECODER_PLUGINS: tuple[tuple[str, str], ...] = (
    ("1.2.840.10008.1.2.4.5", "pylibjpeg-libjpeg"),  # JPEG baseline / extended
    ("1.2.840.10008.1.2.4.7", "pylibjpeg-libjpeg"),  # JPEG lossless
    ("1.2.840.10008.1.2.4.8", "pylibjpeg-libjpeg (or pyjpegls)"),  # JPEG-LS
    ("1.2.840.10008.1.2.4.9", "pylibjpeg-openjpeg"),  # JPEG 2000
    ("1.2.840.10008.1.2.4.20", "pylibjpeg-openjpeg"),  # HTJ2K
    ("1.2.840.10008.1.2.5", "pylibjpeg-rle"),  # RLE lossless
)


# --------------------------------------------------------------------------------------------------------------
# file detection
# --------------------------------------------------------------------------------------------------------------
def _looks_like_raw_dicom(head: bytes) -> bool:
    """A DICOM stream without the 128-byte preamble starts with a group 0002 or 0008 element."""
    if len(head) < 8:
        return False
    group = int.from_bytes(head[0:2], "little")
    if group not in (0x0002, 0x0008):
        return False
    vr = head[4:6]
    explicit = vr.isalpha() and vr.isupper()
    # implicit VR: a 4-byte length follows the tag; a header element is never gigabytes long
    implicit = int.from_bytes(head[4:8], "little") < 1 << 24
    return explicit or implicit


def is_dicom_file(path: Path) -> bool:
    """True when ``path`` is a DICOM file: the 'DICM' marker at byte 128, or a parseable preamble-less stream."""
    path = Path(path)
    if not_a_regular_file(path) is not None:  # never open a FIFO: it blocks until a writer comes
        return False
    try:
        with open(path, "rb") as fp:
            head = fp.read(132)
    except OSError:
        return False
    if len(head) == 132 and head[128:132] == b"DICM":
        return True
    if not _looks_like_raw_dicom(head):
        return False
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:  # pydicom raises many exception types on non-DICOM bytes: all mean "not DICOM"
        return False
    return _identifies_as_dicom(ds)


def _identifies_as_dicom(ds: Dataset) -> bool:
    # forced parsing accepts almost any bytes; a real data set names its SOP class, instance, series or modality
    return any(k in ds for k in ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "Modality"))


_IMAGE_MODALITIES = frozenset({"MR", "CT", "PT", "NM", "CR", "DX", "MG", "XA", "RF", "US", "OT"})
# modalities of objects that are never images to analyse, for a SOP class pydicom does not know (a newer one)
_NON_IMAGE_MODALITIES = {
    "SEG": "a DICOM Segmentation",
    "SR": "a DICOM Structured Report",
    "PR": "a DICOM Presentation State",
    "KO": "a DICOM Key Object Selection",
    "DOC": "a DICOM encapsulated document",
    "REG": "a DICOM Registration",
    "RTSTRUCT": "a DICOM RT Structure Set",
    "RTDOSE": "a DICOM RT Dose",
    "RTPLAN": "a DICOM RT Plan",
    "RTRECORD": "a DICOM RT Treatment Record",
}


def not_an_image(ds: Dataset) -> str | None:
    """Why a DICOM object is not an image series to analyse (``"a DICOM Segmentation, not an image"``), or None for
    an image: only image storage SOP classes (MR Image Storage, Enhanced MR Image Storage, ...) are images. A
    Segmentation (openspine's own SEG written beside the scan), an SR, a presentation state or an RT object may hold
    pixel data laid out like slices, but reading one as the scan fails or analyses the wrong thing."""
    sop = str(ds.get("SOPClassUID", "") or "").strip()
    try:
        name = UID(sop).name if sop else ""
    except Exception:  # an unparseable UID names nothing: the modality decides
        name = ""
    if name and name != sop:  # a SOP class pydicom knows by name
        if _is_image_class(name):
            return None
        return f"a DICOM {name.removesuffix(' Storage')}, not an image"
    kind = _NON_IMAGE_MODALITIES.get(str(ds.get("Modality", "") or "").strip().upper())
    return f"{kind}, not an image" if kind else None


def _is_image_class(name: str) -> bool:
    """Whether a SOP class (by its name) stores images: "MR Image Storage", also "Digital X-Ray Image Storage - For
    Presentation" (read, then refused as no MR by the analysis, rather than skipped as no image)."""
    return "Image Storage" in name


def cut_short(ds: Dataset) -> bool:
    """Whether a data set read without pixel data is an image whose pixels are missing (a file cut short) rather
    than an object that has none (a report, a presentation state): an image storage SOP class, image rows, an image
    modality, or no modality at all (the header itself was cut)."""
    sop = ds.get("SOPClassUID")
    try:
        image_class = bool(sop) and _is_image_class(UID(str(sop)).name)
    except Exception:  # an unparseable UID names nothing
        image_class = False
    modality = str(ds.get("Modality", "") or "")
    if sop and not image_class:  # a class that is no image (a vendor's private report, Modality MR): none is cut
        # unless the file's meta header names an image class: the SOPClassUID itself was cut ('1.2.840.10' of an MR
        # image's first 400 bytes had been listed as a report; user test)
        return "Rows" in ds or _media_image_class(ds, str(sop))
    return image_class or "Rows" in ds or modality in _IMAGE_MODALITIES or not modality


def _media_image_class(ds: Dataset, sop: str) -> bool:
    """Whether the file meta header's MediaStorageSOPClassUID names an image class that ``sop`` (the data set's
    SOPClassUID) is the start of: the class value cut short with the file."""
    media = str(getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", "") or "")
    try:
        return media != sop and media.startswith(sop) and _is_image_class(UID(media).name)
    except Exception:  # an unparseable UID names nothing
        return False


class _UnreadableHeader(Exception):
    """A file that announces itself as DICOM ('DICM' marker) but whose header cannot be parsed."""


def _read_header(path: Path) -> tuple[Dataset, bool] | None:
    """The header of a DICOM file (no pixel data) and whether the file holds pixel data; None if not DICOM.

    Raises _UnreadableHeader for a file with the DICOM marker whose header cannot be parsed, ScanReadError for a
    path that cannot be read or is no regular file (a FIFO is never opened: that blocks).
    """
    special = not_a_regular_file(path)
    if special is not None:
        raise ScanReadError(f"cannot read '{path}': {special}")
    try:
        with open(path, "rb") as fp:
            head = fp.read(132)
            marked = len(head) == 132 and head[128:132] == b"DICM"
            if not marked and not _looks_like_raw_dicom(head):
                return None
            fp.seek(0)
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
            except Exception as exc:  # corrupt headers raise anything from EOFError to KeyError in pydicom
                if marked:
                    raise _UnreadableHeader(str(exc)) from exc
                return None
            # the reader stops right before the pixel data element, so the next 4 bytes are its tag if present
            has_pixels = fp.read(4) in _PIXEL_TAG_BYTES
    except OSError as exc:
        raise ScanReadError(f"cannot read '{path}': {exc}") from exc
    if len(ds) == 0 and marked:
        raise _UnreadableHeader("no data elements after the file meta information")
    if not marked and not _identifies_as_dicom(ds):
        return None
    if not has_pixels and "Rows" in ds:
        # a deflated transfer syntax reads through a decompressing buffer, so the file position says nothing
        meta = getattr(ds, "file_meta", None)
        ts = meta.get("TransferSyntaxUID") if meta is not None else None
        has_pixels = ts is not None and "Deflate" in UID(ts).name
    return ds, has_pixels


# --------------------------------------------------------------------------------------------------------------
# series discovery and choice
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeriesInfo:
    """One image series found on disk: header facts only (no pixels, no patient identifiers)."""

    series_uid: str
    study_uid: str | None
    series_number: int | None
    description: str | None
    modality: str | None
    n_slices: int  # number of image frames
    rows: int | None
    columns: int | None
    plane: str  # "sagittal" | "axial" | "coronal" | "oblique" | "mixed" | "unknown"
    files: tuple[Path, ...]
    multiframe: bool = False
    pixel_spacing: tuple[float, float] | None = None  # (row spacing, column spacing) mm of the first image
    manufacturer: str | None = None
    sequence_hint: str | None = None
    root: Path | None = None  # the folder or file the series was found under (for messages)
    # DICOM files under the same root whose header could not be read ("name (why)"): a slice the series misses may
    # be one of them, so a read error names them
    unreadable: tuple[str, ...] = ()
    # of those, the DICOM files that may have been this series' images (their series cannot be told, or is this one):
    # the result flags them (links, FIFOs and other series' damaged files are not)
    damaged_own: tuple[str, ...] = ()
    # files left out as copies of one of ``files`` (the same SOPInstanceUID): (the copy, the file it copies)
    copies: tuple[tuple[Path, Path], ...] = ()
    # files left out as the same image sent again under a new SOPInstanceUID (:func:`_without_resent_images`)
    resent: tuple[tuple[Path, Path], ...] = ()
    # why the series is no image to analyse (a Segmentation, an SR, ...: :func:`not_an_image`); None for an image
    # series
    not_image: str | None = None
    # a digest of the PatientID, never the ID itself: enough to tell that a folder holds several patients
    patient_key: str | None = None
    # (lowest, highest) patient height the images reach (LPS z, mm: larger is nearer the head), None where headers
    # lack the geometry; with the frame of reference it tells the stations of a whole-spine study apart
    height_mm: tuple[float, float] | None = None
    frame_of_reference_uid: str | None = None
    after_contrast: bool = False  # its header shows a contrast agent (:func:`~openspine.recognition.after_contrast`)
    # why its images, by their headers, do not form one regular volume (a missing slice, mixed orientations), or
    # (starting with MIXED_ACQUISITIONS) are of several acquisitions: the reading fails, so a default choice takes
    # another series where there is one; None where they form one
    problem: str | None = None
    derived: bool = False  # ImageType DERIVED: a reformat or a composed image, not an acquired series
    # StudyDate, and StudyTime after a space where given (``20240101 093000``; :func:`_study_when`), to tell a
    # patient's current study from a prior one in one folder (:func:`latest_study`); never written out (a date
    # identifies)
    study_when: str | None = None

    @property
    def is_image(self) -> bool:
        """Whether the series is an image series, a candidate to analyse."""
        return self.not_image is None

    def describe(self) -> str:
        """One short human line, e.g. ``#3 'T2 TSE SAG' MR sagittal, 15 slices of 384×384``."""
        num = f"#{self.series_number}" if self.series_number is not None else "#?"
        desc = f"'{self.description}'" if self.description else "(no description)"
        size = f" of {self.rows}×{self.columns}" if self.rows and self.columns else ""
        unit = "frame" if self.multiframe else "slice"
        plural = "" if self.n_slices == 1 else "s"
        stack = stack_words(self.series_uid)
        return f"{num} {desc}{stack} {self.modality or '?'} {self.plane}, {self.n_slices} {unit}{plural}{size}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: no file list, no paths, no patient names or IDs."""
        return {
            "series_uid": self.series_uid,
            "study_uid": self.study_uid,
            "series_number": self.series_number,
            "description": self.description,
            "modality": self.modality,
            "plane": self.plane,
            "n_slices": self.n_slices,
            "rows": self.rows,
            "columns": self.columns,
            "pixel_spacing": list(self.pixel_spacing) if self.pixel_spacing else None,
            "multiframe": self.multiframe,
            "n_files": len(self.files),
            "manufacturer": self.manufacturer,
            "sequence_hint": self.sequence_hint,
            "not_an_image": self.not_image,
            "height_mm": [round(v, 1) for v in self.height_mm] if self.height_mm else None,
        }


def _walk_files(root: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The regular files under ``root`` (symbolic links to regular files included) and the entries left out with the
    reason: broken or looping links, FIFOs, sockets and devices, which are never opened (opening a FIFO blocks)."""
    out: list[Path] = []
    left_out: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()  # deterministic order, hence deterministic series indices
        for name in sorted(filenames):
            path = Path(dirpath) / name
            why = not_a_regular_file(path)
            if why is None:
                out.append(path)
            else:
                left_out.append((path, why))
                log.warning("skipping '%s': %s", path, why)
    return out, left_out


def discover_series(root: Path, *, display_path: Path | None = None) -> list[SeriesInfo]:
    """Find the image series under ``root`` (a folder, walked recursively, or one DICOM file).

    Headers only are read. Non-DICOM files and DICOMDIR are skipped; DICOM objects without pixel data
    (structured reports, presentation states, ...) are not image series and are left out. Objects with pixel data
    that are no images (a Segmentation, such as openspine's own SEG written beside the scan) are listed with
    :attr:`SeriesInfo.not_image` set, and are never chosen. The list is sorted by SeriesNumber, then description
    and UID; its index is the one ``openspine info`` shows.
    ``display_path`` names the input in messages when ``root`` is a temporary folder (an extracted zip).
    """
    root = dicomdir_folder(Path(root))
    shown = dicomdir_folder(display_path) if display_path is not None else root
    if not root.exists():
        raise ScanReadError(f"'{shown}' does not exist")
    left_out: list[tuple[Path, str]] = []
    if root.is_dir():
        candidates, left_out = _walk_files(root)
        if not candidates and not left_out:
            raise ScanReadError(f"'{shown}' is an empty folder: no files to read")
        if not candidates:
            raise ScanReadError(
                f"'{shown}' holds no file that can be read, only {len(left_out)} link(s) or special file(s), e.g. "
                f"'{left_out[0][0]}': {left_out[0][1]}"
            )
    else:
        why = not_a_regular_file(root)
        if why is not None:
            raise ScanReadError(f"'{shown}' cannot be read: {why}")
        candidates = [root]

    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    n_dicom = 0
    no_pixels: Counter[str] = Counter()
    unreadable: list[tuple[Path, str]] = []
    damaged_in: dict[Path, str] = {}  # a damaged file whose header names its series → that series' UID
    first_copy: dict[tuple[str, str], Path] = {}  # (series, SOP instance) → the first file holding it
    copies: list[tuple[Path, Path]] = []  # (a later copy, the file it copies)
    for path in candidates:
        if path.name.upper() == "DICOMDIR":
            log.debug("skipping DICOMDIR %s", path)
            continue
        try:
            header = _read_header(path)
        except _UnreadableHeader as exc:
            # one damaged file must not hide the other series of a study folder: warn, and say so if nothing is left
            unreadable.append((path, str(exc)))
            log.warning("skipping '%s': DICOM file with an unreadable header (%s)", path, exc)
            continue
        if header is None:
            log.debug("skipping %s: not a DICOM file", path)
            continue
        ds, has_pixels = header
        n_dicom += 1
        if str(ds.get("SOPClassUID", "")) == _DICOMDIR_SOP_CLASS:
            no_pixels["DICOMDIR"] += 1
            continue
        if not has_pixels and cut_short(ds):
            # an image object without its pixels: a file cut short (a copy or transfer that broke off)
            unreadable.append((path, "an image object without pixel data: cut short?"))
            damaged_in[path] = str(ds.get("SeriesInstanceUID", "") or "")
            log.warning("skipping '%s': DICOM image object without pixel data (truncated?)", path)
            n_dicom -= 1  # counted with the unreadable files, not the readable ones
            continue
        if not has_pixels:
            no_pixels[str(ds.get("Modality", "?"))] += 1
            log.debug("skipping %s: DICOM without pixel data (modality %s)", path, ds.get("Modality", "?"))
            continue
        uid = str(ds.get("SeriesInstanceUID", "")) or "(no SeriesInstanceUID)"
        sop = str(ds.get("SOPInstanceUID", "") or "")
        if sop and (uid, sop) in first_copy:
            # the same image twice (a study exported twice under one root): one copy is read, the other skipped.
            # The longer file is kept: a copy cut short in its pixels has a whole header, and had been read before
            # the intact one (first by path), failing the whole study (user test)
            kept = first_copy[(uid, sop)]
            if _file_size(path) > _file_size(kept):
                members = groups[uid]
                members[next(i for i, (p, _) in enumerate(members) if p == kept)] = (path, ds)
                copies = [(c, path if f == kept else f) for c, f in copies]
                path, kept = kept, path
                first_copy[(uid, sop)] = kept
            copies.append((path, kept))
            log.debug("skipping '%s': a copy of '%s' (the same SOPInstanceUID)", path, kept)
            continue
        first_copy[(uid, sop)] = path
        groups.setdefault(uid, []).append((path, ds))

    if copies:  # one line: a study exported twice has as many copies as slices
        more = f" and {len(copies) - 1} more" if len(copies) > 1 else ""
        log.warning(
            "skipping %d DICOM file(s) that copy another (the same SOPInstanceUID): '%s' copies '%s'%s",
            len(copies), copies[0][0], copies[0][1], more,
        )  # fmt: skip
    if n_dicom == 0 and unreadable:
        raise ScanReadError(
            f"'{shown}' holds {len(unreadable)} DICOM file(s) whose header cannot be read (corrupt or truncated), "
            f"e.g. '{unreadable[0][0]}', and no readable DICOM file"
        )
    if n_dicom == 0:
        if root.is_file():
            raise ScanReadError(f"'{shown}' is not a DICOM file")
        pictures = [c for c in candidates if Path(c).suffix.lower() in PICTURE_SUFFIXES]
        niftis = [c for c in candidates if str(c).lower().endswith((".nii", ".nii.gz"))]
        hint = (
            f"; it holds {len(niftis)} NIfTI file(s), e.g. '{niftis[0]}': analyse the file itself, or all of them "
            f"with 'openspine batch {shown} --out DIR'"
            if niftis
            else f"; it holds {len(pictures)} PNG/JPEG picture(s): analyse one picture at a time (with "
            f"--pixel-spacing), or all of them with 'openspine batch {shown} --out DIR --pixel-spacing ROW_MM COL_MM' "
            "(or auto)"
            if pictures
            else ""
        )
        raise ScanReadError(f"no DICOM files found in '{shown}' ({len(candidates)} files looked at){hint}")
    if no_pixels:
        kinds = ", ".join(f"{n} {m}" for m, n in sorted(no_pixels.items()))
        log.debug("ignored %d DICOM objects without pixel data (%s)", sum(no_pixels.values()), kinds)
    if not groups:
        kinds = ", ".join(f"{n} {m}" for m, n in sorted(no_pixels.items()))
        raise ScanReadError(
            f"'{shown}' holds {n_dicom} DICOM files but none with image pixel data ({kinds}): these are reports, "
            "presentation states or similar objects, not images; point openspine at the image series"
        )
    # a broken link may be the slice a series misses: a read error names it with the damaged files
    damaged = tuple(f"{_rel_name(p, root)} ({why})" for p, why in [*unreadable, *left_out])
    found = []
    for uid, items in _stacks_apart(_localizers_apart(groups)).items():
        items, resent = _without_resent_images(items, root)
        own = {p for p, _ in items}
        series_copies = tuple((c, f) for c, f in copies if f in own)
        own_damage = tuple(
            f"{_rel_name(p, root)} ({why})" for p, why in unreadable if damaged_in.get(p, uid) in (uid, "")
        )
        info = _series_info(uid, items, root)
        found.append(
            replace(info, unreadable=damaged, damaged_own=own_damage, copies=series_copies, resent=tuple(resent))
        )
    found.sort(
        key=lambda s: (
            s.series_number is None,
            s.series_number or 0,
            s.description or "",
            _series_and_stack(s.series_uid),  # stack 2 before stack 10
        )
    )
    if not any(s.is_image for s in found):
        kinds = "; ".join(f"{s.describe()}: {s.not_image}" for s in found)
        raise ScanReadError(
            f"'{shown}' holds no image series to read, only {kinds}; point openspine at an image series"
        )
    return found


def _without_resent_images(
    items: list[tuple[Path, Dataset]], root: Path
) -> tuple[list[tuple[Path, Dataset]], list[tuple[Path, Path]]]:
    """``items`` less the images sent again under a new SOPInstanceUID, and (the copy, the file it repeats) for each:
    single-frame images whose headers place and scale them alike (position, orientation, size, pixel spacing,
    rescale, photometric interpretation, pixel representation and bits) and whose pixel data are the same bytes; the
    first by file name is kept. They had failed the series as "several images per position (echoes, time points …)",
    a wrong cause with no way on but deleting files by hand (user test). Only images that share a header key are read
    for their pixels; images that differ at one position (an echo, a header corrected on the second sending) still
    fail the series."""

    def key(ds: Dataset) -> tuple[Any, ...] | None:
        pos, iop = _try_floats(ds.get("ImagePositionPatient"), 3), _try_floats(ds.get("ImageOrientationPatient"), 6)
        if pos is None or iop is None or _n_frames(ds) != 1 or _is_enhanced(ds):
            return None
        words = ("Rows", "Columns", "PixelSpacing", "RescaleSlope", "RescaleIntercept", "PhotometricInterpretation",
                 "PixelRepresentation", "BitsAllocated", "BitsStored")  # fmt: skip
        return (
            *np.round(pos / POSITION_ROUNDING_MM).astype(int).tolist(),
            *np.round(iop, 4).tolist(),
            *(str(ds.get(w, "")) for w in words),
        )

    alike: dict[tuple[Any, ...], list[int]] = {}
    for i, (_, ds) in enumerate(items):
        k = key(ds)
        if k is not None:
            alike.setdefault(k, []).append(i)
    resent: list[tuple[Path, Path]] = []
    for members in alike.values():
        if len(members) < 2:
            continue
        kept: dict[str, Path] = {}
        for i in sorted(members, key=lambda m: _rel_name(items[m][0], root)):
            path = items[i][0]
            try:
                digest = hashlib.sha256(pydicom.dcmread(path, force=True).PixelData).hexdigest()
            except Exception:  # unreadable pixels: the read names the file
                continue
            if digest in kept:
                resent.append((path, kept[digest]))
            else:
                kept[digest] = path
    if not resent:
        return items, []
    gone = {c for c, _ in resent}
    more = f" and {len(resent) - 1} more" if len(resent) > 1 else ""
    log.warning(
        "skipping %d DICOM file(s) that repeat another image of their series under a new SOPInstanceUID (the same "
        "position, header and pixels): '%s' repeats '%s'%s",
        len(resent), _rel_name(resent[0][0], root), _rel_name(resent[0][1], root), more,
    )  # fmt: skip
    return [it for it in items if it[0] not in gone], resent


LOCALIZER_APART = " (its localizer images)"  # the key of a series' localizer images, set apart from its own


def _localizers_of_a_series(s: SeriesInfo) -> bool:
    """Whether ``s`` holds the localizer images set apart from a series (:func:`_localizers_apart`): they share its
    SeriesNumber, which names the series itself."""
    return s.series_uid.endswith(LOCALIZER_APART)


def _localizers_apart(groups: dict[str, list[tuple[Path, Dataset]]]) -> dict[str, list[tuple[Path, Dataset]]]:
    """Localizer images (ImageType LOCALIZER) filed under an image series' SeriesInstanceUID as a series of their
    own, under the UID with :data:`LOCALIZER_APART` appended: read as one with the series, three scout planes had
    failed a whole study as "several acquisitions", named after the scouts (user test). A series of localizers
    alone stays as it is."""
    out: dict[str, list[tuple[Path, Dataset]]] = {}
    for uid, items in groups.items():
        scouts = [(p, ds) for p, ds in items if "LOCALIZER" in header_tokens(ds.get("ImageType"))]
        if not scouts or len(scouts) == len(items):
            out[uid] = items
            continue
        apart = {p for p, _ in scouts}
        out[uid] = [(p, ds) for p, ds in items if p not in apart]
        out[uid + LOCALIZER_APART] = scouts
        log.info("%d localizer image(s) filed under series %s are read as a series of their own", len(scouts), uid)
    return out


def _stacks_apart(groups: dict[str, list[tuple[Path, Dataset]]]) -> dict[str, list[tuple[Path, Dataset]]]:
    """The stacks of single-frame images filed under one SeriesInstanceUID at different heights (a whole-spine study's
    stations saved as one series: images far apart within the plane, most often at the same positions along the slice
    normal)
    as series of their own, under the UID with `` (stack K of N)`` appended, K counted from the head: read as one,
    they had failed as duplicate slice positions (user test); apart, the study's rules choose the lowest station, as
    they do for stations saved as series of their own. Images are one stack where a chain of them lies within
    :data:`STACKS_APART_MM` of each other within the plane (a sheared stack drifts, slice by slice, but stays one)."""
    out: dict[str, list[tuple[Path, Dataset]]] = {}
    for uid, items in groups.items():
        # a series' own localizer images, set apart already, stay one series: the series is picked by its number
        stacks = [items] if uid.endswith(LOCALIZER_APART) else _stacks_within_the_plane(items)
        if len(stacks) < 2:
            out[uid] = items
            continue
        for k, stack in enumerate(stacks, 1):
            out[f"{uid}{STACK_WORDS.format(k=k, n=len(stacks))}"] = stack
        log.debug(
            "series %s holds %d stacks at different heights: each is read as a series of its own", uid, len(stacks)
        )
    return out


STACK_WORDS = " (stack {k} of {n})"  # appended to the UID of a stack set apart from the others of its series


_STACK_SUFFIX = re.compile(r" \(stack (\d+) of \d+\)$")


def stack_words(series_uid: str) -> str:
    """' (stack 2 of 3)' for a stack set apart from its series (:func:`_stacks_apart`), else ''."""
    found = _STACK_SUFFIX.search(series_uid)
    return found.group(0) if found else ""


def _series_and_stack(series_uid: str) -> tuple[str, int]:
    """The SeriesInstanceUID of a stack set apart and its K (from the head), or ``(series_uid, 0)`` for no stack."""
    found = _STACK_SUFFIX.search(series_uid)
    return (series_uid[: found.start()], int(found.group(1))) if found else (series_uid, 0)


def _stacks_within_the_plane(items: list[tuple[Path, Dataset]]) -> list[list[tuple[Path, Dataset]]]:
    """``items`` split into stacks (:func:`_stacks_apart`), highest first, or ``[items]`` where they form one: a
    series with a multi-frame file, or images without geometry or of several orientations, is left whole."""
    if len(items) < 4 or any(_is_enhanced(ds) or _n_frames(ds) > 1 for _, ds in items):
        return [items]
    positions, orientations = [], []
    for _, ds in items:
        pos, iop = _try_floats(ds.get("ImagePositionPatient"), 3), _try_floats(ds.get("ImageOrientationPatient"), 6)
        if pos is None or iop is None:
            return [items]
        positions.append(pos)
        orientations.append(iop)
    if np.abs(np.stack(orientations) - orientations[0]).max() > ORIENTATION_TOL:
        return [items]
    normal = np.cross(orientations[0][:3], orientations[0][3:])
    along = np.stack(positions) @ normal
    within = np.stack(positions) - along[:, None] * normal
    # single linkage over the distinct places (a stack's images share one, or drift by a little where sheared): a
    # place joins every stack holding one within STACKS_APART_MM of it; pairs found by a k-d tree, so that a long
    # drifting stack costs no all-pairs table (3 000 images had taken 700 MB; review)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    places, place_of = np.unique(np.round(within), axis=0, return_inverse=True)
    pairs = cKDTree(places).query_pairs(STACKS_APART_MM, output_type="ndarray")
    linked = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(places), len(places)))
    _, group = connected_components(linked, directed=False)
    label = group[place_of.reshape(-1)]
    names = np.unique(label)
    if len(names) < 2 or min(int((label == n).sum()) for n in names) < 3:  # a stray image is no station
        return [items]
    height = {n: float(within[label == n, 2].mean()) for n in names}  # LPS z: larger is nearer the head
    return [[items[i] for i in np.flatnonzero(label == n)] for n in sorted(names, key=lambda n: -height[n])]


# echo times of one acquisition's images; a pair further apart (PD and T2 echoes of one dual-echo series) are two
MIXED_TE_RATIO = 1.2
# inversion times further apart than this (ms, or this share of the larger) are two acquisitions; a TI of 0 is none
MIXED_TI_MS = 20.0
MIXED_TI_SHARE = 0.1
MIXED_ACQUISITIONS = "a series whose images are of"


def _acquisition_facts(ds: Dataset) -> dict[str, Any]:
    """What tells one acquisition's images from another's that a converter or PACS stored under the same
    SeriesInstanceUID, each None where the image does not say: its description (case and spacing aside), sequence
    type, the contrast its sequence name names and whether it names an inversion recovery (not the name itself: a
    variant suffix is no other contrast), Dixon image type, inversion and echo time. Not the sequence the header rules
    derive from them all, which a field left out on some images changes, nor TR, which varies from image to image
    under respiratory triggering."""
    head = _EnhancedHeader(ds) if _is_enhanced(ds) else ds
    ti = number_or_none(head.get("InversionTime"))
    image_type = header_tokens(ds.get("ImageType"))
    # an ImageType without a Dixon value says "no Dixon image" (a missing ImageType says nothing)
    dixon = "/".join(sorted(DIXON_IMAGE_TYPES & set(image_type[2:]))) or ("none" if image_type else "")
    scanning = "\\".join(sorted(header_tokens(head.get("ScanningSequence"))))
    description = " ".join(str(ds.get("SeriesDescription") or "").lower().split())
    name = str(ds.get("SequenceName") or "").strip()
    named = f"{sequence_from_text(name) or 'no contrast'}{', inversion recovery' if inversion_recovery(ds) else ''}"
    return {
        "description": description or None,
        "scanning sequence": scanning or None,
        "sequence name": named if name else None,
        "Dixon image type": dixon or None,
        "TI": ti if ti is not None and ti > 0 else None,  # 0: no inversion, as a missing TI
        "TE": number_or_none(head.get("EchoTime")),
    }


def mixed_acquisitions(items: list[tuple[Path, Dataset]]) -> str | None:
    """Why the images of one series are not one acquisition (e.g. a T2 and a STIR exported under one
    SeriesInstanceUID, a Dixon series' water and fat images, a dual-echo PD/T2 series), or None. Read as one volume,
    such a series interleaves two contrasts, and whether it passed for T2 depended on which image came first. Only
    values images state are compared: an element some images leave out or blank (a converter's gaps) says nothing."""
    facts = [_acquisition_facts(ds) for _, ds in items]
    differ = []
    for key in ("description", "scanning sequence", "sequence name", "Dixon image type"):
        values = sorted({str(f[key]) for f in facts if f[key]})
        if len(values) > 1:
            differ.append(f"{key} {' / '.join(f'{v!s}' for v in values[:3])}{' …' if len(values) > 3 else ''}")
    times = [f["TI"] for f in facts if f["TI"] is not None]
    if times and max(times) - min(times) > max(MIXED_TI_MS, MIXED_TI_SHARE * max(times)):
        differ.append(f"inversion times {min(times):g} to {max(times):g} ms")
    echoes = [f["TE"] for f in facts if f["TE"] is not None and f["TE"] > 0]
    if echoes and max(echoes) > MIXED_TE_RATIO * min(echoes):
        differ.append(f"echo times {min(echoes):g} to {max(echoes):g} ms")
    if not differ:
        return None
    return (
        f"{MIXED_ACQUISITIONS} several acquisitions under one SeriesInstanceUID ({'; '.join(differ)}): read as one "
        "volume it would interleave their contrasts, so it is not read; export each acquisition as its own series "
        "(e.g. split with dcm2niix)"
    )


def _stack_problem(items: list[tuple[Path, Dataset]], root: Path, multiframe: bool) -> str | None:
    """Why the images of a series, by their headers alone, do not form one regular volume (the checks of
    :func:`read_series`), or None: known before any pixel is read, so that a default choice passes over it."""
    names = [_rel_name(p, root) for p, _ in items]
    try:
        frames = [fr for idx, (_, ds) in enumerate(items) for fr in _frames_of(ds, idx, names[idx])]
        _stack_geometry(frames, names, "frames" if multiframe else "files")
    except (GeometryError, ScanReadError, UnsupportedScanError) as exc:
        return str(exc)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a malformed header: its read says more
        return f"its headers cannot be read as one volume ({type(exc).__name__}: {exc})"
    return None


def _series_info(uid: str, items: list[tuple[Path, Dataset]], root: Path) -> SeriesInfo:
    first = items[0][1]
    n_frames = 0
    multiframe = False
    orientations: list[NDArray[np.float64]] = []
    sizes: Counter[tuple[int, int]] = Counter()
    heights: list[float] = []
    for _, ds in items:
        frames = _n_frames(ds)
        n_frames += frames
        enhanced = _is_enhanced(ds)
        heights.extend(_frame_heights(ds, enhanced, frames))
        multiframe = multiframe or enhanced or frames > 1
        if "Rows" in ds and "Columns" in ds:
            sizes[(int(ds.Rows), int(ds.Columns))] += frames
        for f in range(frames) if enhanced else [0]:
            iop = _frame_attr(ds, f, "PlaneOrientationSequence", "ImageOrientationPatient") if enhanced else None
            iop = iop if iop is not None else ds.get("ImageOrientationPatient")
            values = _try_floats(iop, 6)
            if values is not None:
                orientations.append(values)
    rows, cols = sizes.most_common(1)[0][0] if sizes else (None, None)
    ps = _frame_attr(first, 0, "PixelMeasuresSequence", "PixelSpacing") if _is_enhanced(first) else None
    ps = _try_floats(ps if ps is not None else first.get("PixelSpacing"), 2)
    return SeriesInfo(
        series_uid=uid,
        study_uid=_str_or_none(first.get("StudyInstanceUID")),
        series_number=_int_or_none(first.get("SeriesNumber")),
        description=_str_or_none(first.get("SeriesDescription")),
        modality=_str_or_none(first.get("Modality")),
        n_slices=n_frames,
        rows=rows,
        columns=cols,
        plane=_plane_of(orientations),
        files=tuple(p for p, _ in items),
        multiframe=multiframe,
        pixel_spacing=(float(ps[0]), float(ps[1])) if ps is not None else None,
        manufacturer=_str_or_none(first.get("Manufacturer")),
        sequence_hint=_sequence_hint(first),
        after_contrast=after_contrast(first),
        derived=header_tokens(first.get("ImageType"))[:1] == ["DERIVED"],
        root=root,
        not_image=(not_image := not_an_image(first)),
        problem=None if not_image else mixed_acquisitions(items) or _stack_problem(items, root, multiframe),
        patient_key=_patient_key(first),
        height_mm=(float(min(heights)), float(max(heights))) if heights else None,
        frame_of_reference_uid=_str_or_none(first.get("FrameOfReferenceUID")),
        study_when=_study_when(first),
    )


def _study_when(ds: Dataset) -> str | None:
    """StudyDate (YYYYMMDD), with StudyTime (HHMMSS, its digits) after a space where it gives one; None without a
    valid StudyDate."""
    date = str(ds.get("StudyDate", "") or "").strip()
    if not re.fullmatch(r"\d{8}", date):
        return None
    time_ = re.sub(r"[^0-9]", "", str(ds.get("StudyTime", "") or "").split(".")[0])[:6]
    return f"{date} {time_.ljust(6, '0')}" if time_ else date


def latest_study(images: list[SeriesInfo]) -> str | None:
    """The StudyInstanceUID of the latest of several studies of one patient among ``images`` (by StudyDate, and by
    StudyTime within a day), where every series names its patient (one PatientID), every study is dated and one is
    surely later than all others (a day later, or later the same day where both give a time), and that study holds a
    sagittal series of more than :data:`KEY_IMAGE_SLICES` images (not a localizer or a few key images); else None. A
    folder holding a patient's prior and current studies had its prior read, with a flag naming neither (user test):
    the current one is what a reader of the folder expects. Studies of several patients, or of a series that names
    none, have no such order (review)."""
    studies: dict[str | None, set[str | None]] = {}
    for s in images:
        studies.setdefault(s.study_uid, set()).add(s.study_when)
    if len(studies) < 2 or any(s.patient_key is None for s in images) or len({s.patient_key for s in images}) > 1:
        return None
    when = {uid: dates.pop() for uid, dates in studies.items() if len(dates) == 1 and None not in dates}
    if len(when) < len(studies):
        return None
    ordered = sorted(when, key=lambda uid: str(when[uid]))
    last, before = str(when[ordered[-1]]), str(when[ordered[-2]])
    same_day = last[:8] == before[:8]
    if same_day and (len(last) == 8 or len(before) == 8 or last == before):
        return None
    if not any(s.study_uid == ordered[-1] and s.plane == "sagittal" and s.n_slices > KEY_IMAGE_SLICES for s in images):
        return None
    return ordered[-1]


def _frame_heights(ds: Dataset, enhanced: bool, frames: int) -> list[float]:
    """The patient heights (LPS z, mm) of the corners of the first and last frame of ``ds``; none where the
    geometry is missing or unreadable (discovery summarises, :func:`read_series` reports bad values)."""
    if "Rows" not in ds or "Columns" not in ds:
        return []
    out: list[float] = []
    for f in sorted({0, frames - 1}) if enhanced else [0]:
        ipp = _try_floats(_frame_or_top(ds, enhanced, f, "PlanePositionSequence", "ImagePositionPatient"), 3)
        iop = _try_floats(_frame_or_top(ds, enhanced, f, "PlaneOrientationSequence", "ImageOrientationPatient"), 6)
        ps = _try_floats(_frame_or_top(ds, enhanced, f, "PixelMeasuresSequence", "PixelSpacing"), 2)
        if ipp is None or iop is None or ps is None:
            continue
        # IOP: the direction along a row (columns grow), then down a column (rows grow); PixelSpacing: rows, columns
        across = (int(ds.Columns) - 1) * float(ps[1]) * iop[2]
        down = (int(ds.Rows) - 1) * float(ps[0]) * iop[5]
        out.extend(float(ipp[2]) + a + d for a in (0.0, across) for d in (0.0, down))
    return out


def _frame_or_top(ds: Dataset, enhanced: bool, frame: int, group: str, keyword: str) -> Any:
    """``keyword`` of ``frame``: from its functional group in an enhanced object, else from the top level."""
    value = _frame_attr(ds, frame, group, keyword) if enhanced else None
    return value if value is not None else ds.get(keyword)


def _patient_key(ds: Dataset) -> str | None:
    pid = _str_or_none(ds.get("PatientID"))
    return hashlib.sha256(pid.encode()).hexdigest()[:16] if pid else None


def _try_floats(value: Any, n: int) -> NDArray[np.float64] | None:
    """``n`` finite numbers from a header value, or None: discovery summarises, read_series reports bad values."""
    try:
        out = np.asarray([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        return None
    return out if out.shape == (n,) and bool(np.all(np.isfinite(out))) else None


def _plane_name(normal: NDArray[np.float64]) -> str:
    n = np.abs(normal) / max(float(np.linalg.norm(normal)), 1e-12)
    if float(n.max()) < PLANE_MIN_COMPONENT:
        return "oblique"
    return ("sagittal", "coronal", "axial")[int(np.argmax(n))]  # LPS: x = left-right, y = A-P, z = S-I


def _plane_of(orientations: list[NDArray[np.float64]]) -> str:
    if not orientations:
        return "unknown"
    clusters = _cluster(orientations, ORIENTATION_TOL)
    if len(clusters) > 1:
        return "mixed"
    iop = orientations[0]
    return _plane_name(np.cross(iop[:3], iop[3:]))


def _cluster(values: Sequence[NDArray[np.float64]], tol: float) -> list[list[int]]:
    """Group indices of vectors equal within ``tol`` per component (greedy, against each group's first)."""
    groups: list[list[int]] = []
    for idx, v in enumerate(values):
        for g in groups:
            if np.allclose(values[g[0]], v, rtol=0.0, atol=tol):
                g.append(idx)
                break
        else:
            groups.append([idx])
    return groups


# said where --series N names SeriesNumber N while the listing's index N is another series
INDEX_CLASH = "not the series listed at that index"


def choose_series(found: list[SeriesInfo], wanted: str | int | None, quiet: bool = False) -> SeriesInfo:
    """Pick one image series from ``found`` (a Segmentation, an SR or another object that is no image is never
    picked: :attr:`SeriesInfo.not_image`).

    ``wanted`` is matched, in this order of precedence, against the SeriesInstanceUID, then the SeriesNumber
    (an int or a digit string), then the list index that ``openspine info`` shows. With ``wanted=None`` the
    sagittal series whose header says T2 (:attr:`SeriesInfo.sequence_hint`) with the most slices is chosen; else
    the sagittal series whose header names no sequence with the most slices (it may well be the T2: anonymised
    exports often drop the words), else the sagittal series with the most slices; a lone image series is chosen
    whatever its plane. Within that choice an acquired series beats a derived one (ImageType DERIVED), a series
    named for the sacrum, coccyx or pelvis is left aside, the lowest of several stations of a whole-spine study is
    taken (:mod:`openspine.io.stations`), and ties on slices go to the later series (the higher SeriesNumber: a
    repeat). A sagittal MR series (or one naming no modality) is chosen before a sagittal series of another modality
    (a CT reformat), which no model reads. Unless ``quiet``, the choice and its reason are logged at INFO (at WARNING
    when the folder holds several studies or patients: :func:`several_studies`).
    """
    chosen, why = choose_series_why(found, wanted)
    if not quiet:
        note = several_studies(found, chosen) if wanted is None else None
        if note:
            log.warning("chose DICOM series %s: %s; %s", chosen.describe(), why, note)
        elif INDEX_CLASH in why:  # --series 2 meant as the listing's [2] would silently read another series
            log.warning("chose DICOM series %s: %s", chosen.describe(), why)
        else:
            log.info("chose DICOM series %s: %s", chosen.describe(), why)
    return chosen


def choose_series_why(found: list[SeriesInfo], wanted: str | int | None) -> tuple[SeriesInfo, str]:
    """:func:`choose_series` without logging: the series and the reason, in words."""
    images = [s for s in found if s.is_image]
    if not images:
        raise SeriesSelectionError("no image series to choose from")
    if wanted is None:
        return _default_choice(found)
    chosen, why = _match_wanted(found, wanted)
    if not chosen.is_image:
        raise SeriesSelectionError(
            f"series {chosen.describe()} is {chosen.not_image}; choose an image series: {_listing(found, images)}"
        )
    return chosen, why


def several_studies(found: list[SeriesInfo], chosen: SeriesInfo | None = None) -> str | None:
    """``"the folder holds 2 studies of 2 patients …"`` when the image series of ``found`` belong to more than one
    study (StudyInstanceUID) or patient (PatientID), else None: a default choice then picks one of them, which a
    PACS export mixing two patients would otherwise hide. Counts only: no identifier is named."""
    images = [s for s in found if s.is_image]
    studies = {s.study_uid for s in images}
    patients = {s.patient_key for s in images if s.patient_key}
    if len(studies) < 2 and len(patients) < 2:
        return None
    what = f"{len(studies)} studies (StudyInstanceUID)" if len(studies) > 1 else "one study"
    if len(patients) > 1:
        what += f" of {len(patients)} patients (PatientID)"
    elif chosen is not None and (latest := latest_study(images)) is not None:
        what += (
            " of one patient; the latest (StudyDate) is read"
            if chosen.study_uid == latest
            else " of one patient; an earlier one (StudyDate) is read: the latest holds no series of the kind read "
            "(a sagittal T2 comes first)"
        )
    return f"the folder holds {what}"


def _listing(found: list[SeriesInfo], among: list[SeriesInfo] | None = None) -> str:
    """The series of ``among`` (default: all), each with its index in ``found`` (the one ``info`` shows)."""
    keep = found if among is None else among
    return "; ".join(
        f"[{i}] {s.describe()} uid={s.series_uid}" for i, s in enumerate(found) if any(s is k for k in keep)
    )


def _most_slices(series: list[SeriesInfo]) -> SeriesInfo:
    """The series with the most slices; ties go to the later series (the highest SeriesNumber): a series is repeated
    when the first was degraded (motion), so of two alike the repeat is the one to read."""
    return min(series, key=lambda s: (-s.n_slices, s.series_number is None, -(s.series_number or 0)))


def _tie_note(chosen: SeriesInfo, among: list[SeriesInfo]) -> str:
    """Said where ``chosen`` won on its SeriesNumber alone: another of ``among`` has as many slices."""
    tied = [s for s in among if s is not chosen and s.n_slices == chosen.n_slices]
    if not tied:
        return ""
    numbers = ", ".join(f"#{s.series_number}" if s.series_number is not None else "#?" for s in tied)
    return f"; as many slices as {numbers}: the later series is read (a series is repeated when the first was degraded)"


# a series of this many slices or fewer may be key images (saved under the series' name), never a stand-in for it
KEY_IMAGE_SLICES = 4


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _readable_stand_ins(series: list[SeriesInfo]) -> list[SeriesInfo]:
    """The series of ``series`` that form one volume, where they can stand in for those that do not (a slice
    missing): a repeat can, a series of a few slices (a key image saved under the series' name) cannot, as it would
    be read as if it were the study's series: a stand-in holds half the broken one's slices, or more than
    :data:`KEY_IMAGE_SLICES`. Where none can, all of ``series``: the broken one is then read and fails, saying why."""
    # a series of several acquisitions counts the images of all: about half are one acquisition's
    most = max(
        (s.n_slices // 2 if s.problem.startswith(MIXED_ACQUISITIONS) else s.n_slices for s in series if s.problem),
        default=0,
    )
    need = min(KEY_IMAGE_SLICES + 1, (most + 1) // 2)  # a 2D T2 of 12 slices stands in for a 3D one of 40
    return [s for s in series if s.problem is None and s.n_slices >= need] or series


def _default_choice(listed: list[SeriesInfo]) -> tuple[SeriesInfo, str]:
    """The default main series among the image series of ``listed`` (the objects that are no image never count)."""
    found = [s for s in listed if s.is_image]
    # an MR series (or one that names no modality) beats one no model reads: a sagittal CT reformat in the same study
    sagittal = [s for s in found if s.plane == "sagittal"]
    sagittal = [s for s in sagittal if scope.modality_reason(s.modality) is None] or sagittal
    if sagittal:
        # T2 is what the grader reads: a sagittal T2 beats a sagittal T1 or STIR with more slices
        t2 = [s for s in sagittal if s.sequence_hint == "T2"]
        # a series whose header names no sequence may be the T2 (anonymised exports drop the words); one named as a
        # sequence the grader does not read (T1, STIR, other) is sure not to be, so it never wins over it
        unnamed = [s for s in sagittal if s.sequence_hint is None]
        tier = t2 or unnamed or sagittal
        # a series whose images cannot be read as one volume (a slice missing) would fail: another of its tier (a T2
        # beside the T2) is read where there is one; never one of a lower tier (a T1 for a broken T2), which would
        # pass for the study's reading while giving no grade
        broken = [s for s in tier if s.problem is not None]
        tier = _readable_stand_ins(tier)
        # an acquired series beats a derived one (an MPR of a 3D sequence, a composed whole spine): the grader was
        # trained on acquired 2D slices
        acquired = [s for s in tier if not s.derived]
        pool = acquired or tier
        # a series named for the sacrum or pelvis shows no lumbar spine to grade, in any frame of reference
        lumbar_named = [s for s in pool if not named_below_lumbar(s)]
        below = len(pool) - len(lumbar_named)
        pool = lumbar_named or pool
        # a patient's prior and current studies: the current one, among the series of the kind chosen (a prior T2
        # still beats a current T1, which the grader does not read)
        latest = latest_study(pool)
        pool = [s for s in pool if latest is None or s.study_uid == latest]
        best, stations = lowest_station(pool, _most_slices(pool), _most_slices)
        # which series the choice was among, and how it was made within them
        rule = (
            f"the lowest of {stations} stations (series of one frame of reference imaging different heights of the "
            "spine, as in a whole-spine study; the models read the lumbar spine)"
            if stations > 1
            else "the sagittal series with the most slices"
        )
        if len(found) == 1:
            why = "the only series"
        elif t2:
            why = f"{rule} among those whose header says T2 ({len(t2)} sagittal T2 of {len(found)} series)"
        elif unnamed and len(unnamed) < len(sagittal):
            why = (
                f"{rule} among those whose header names no sequence ({len(unnamed)} of {len(sagittal)} sagittal "
                "series; none says T2, the others name a sequence the grader does not read)"
            )
        else:
            why = f"{rule} ({len(sagittal)} sagittal of {len(found)} series, none whose header says T2)"
        if acquired and len(acquired) < len(tier):
            why += "; derived series (ImageType DERIVED: reformats, composed images) only where none is acquired"
        if below and lumbar_named:
            why += f"; {below} named for the sacrum, coccyx or pelvis left aside"
        if broken and best.problem is None:
            why += (
                f"; {len(broken)} sagittal series whose images cannot be read as one volume left aside "
                f"({', '.join(s.describe() for s in broken[:2])}{' …' if len(broken) > 2 else ''})"
            )
        return best, why + _tie_note(best, [s for s in pool if not other_station(s, best)])
    if len(found) == 1:
        return found[0], "the only series"
    planar = [s for s in found if s.plane in ("axial", "coronal")]
    if planar and all(s.plane in ("axial", "coronal", "mixed") for s in found):
        # a study of axial and coronal series only (beside a localiser of several planes, as nearly every study
        # holds): the analysis reads one to refuse it as out of scope (exit 3, result.json), as it refuses a single
        # axial series, rather than failing as if the choice were the problem
        localisers = len(found) - len(planar)
        besides = f", and {localisers} of several planes (a localiser)" if localisers else ""
        return _most_slices(planar), (
            f"no sagittal series among the {len(found)} ({len(planar)} axial or coronal{besides}): "
            f"{_listing(listed, found)}"
        )
    raise SeriesSelectionError(
        f"none of the {len(found)} series is sagittal, and openspine needs a sagittal series: "
        f"{_listing(listed, found)}. "
        "Choose one explicitly (series UID, SeriesNumber or index) if it is what you want."
    )


def series_roles(found: list[SeriesInfo], wanted: str | int | None = None) -> tuple[SeriesRole, ...]:
    """The role of every series in ``found`` (in its order), one rule for ``load_study``, ``info`` and batch.

    * main: the series ``wanted`` names, else the default of :func:`choose_series` (sagittal T2 by header, most
      slices; else the sagittal series naming no sequence, most slices; else the sagittal series with the most
      slices); its reason ends with :func:`several_studies`' note when the default choice picked one of several
      studies;
    * T1: a sagittal series of the main series' study (StudyInstanceUID) whose header says T1, the one with the
      most slices; never the main series itself, and none when the main series is T1;
    * STIR: a sagittal STIR series of that study, recorded but not read;
    * not used: everything else, with the reason (an object that is no image: what it is).

    Raises SeriesSelectionError when no main series can be chosen (as :func:`choose_series`).
    """
    main, why = choose_series_why(found, wanted)
    note = several_studies(found, main) if wanted is None else None
    if note:
        why = f"{why}; {note}: choose with --series"
    candidates = [
        s
        for s in found
        if s is not main
        and s.is_image
        and s.study_uid == main.study_uid
        # another PatientID under the same study UID (a merged export) is another patient's: analyze sets it aside,
        # and info had listed it as read beside (user test)
        and not _other_patient(s, main)
        and s.plane == "sagittal"
        and s.sequence_hint == "T1"
        and main.sequence_hint != "T1"
        and main.plane == "sagittal"  # a main series that is not sagittal is refused: nothing is read beside it
    ]
    # a T1 whose images do not form one volume would fail to be read: another is read beside the main series
    candidates = _readable_stand_ins(candidates)
    # a T1 of another station (the cervical T1 of a whole-spine study) shows other vertebrae than the main series;
    # where the stations lie in frames of reference of their own, which no height compares, the T1 of the main
    # series' frame is of its station (the cervical T1, of more slices, had been read beside a lumbar T2; review)
    same_part = [s for s in candidates if not other_station(s, main)]
    same_frame = [s for s in same_part if s.frame_of_reference_uid == main.frame_of_reference_uid]
    same_part = same_frame if main.frame_of_reference_uid is not None and same_frame else same_part
    # a T1 before contrast agent is the one the T1 models read (gadolinium brightens marrow and endplates)
    plain = [s for s in same_part if not s.after_contrast]
    t1 = _most_slices(plain or same_part) if same_part else None
    t1_tie = _tie_note(t1, plain or same_part) if t1 is not None else ""
    t1_index = next((i for i, s in enumerate(found) if s is t1), None)
    t1_note = ""  # what the listing adds to the T1's role: whether it was taken before or after contrast agent
    out = []
    for i, s in enumerate(found):
        if s is main:
            role, reason = ROLE_MAIN, why
        elif s is t1:
            role = ROLE_T1
            reason = "the sagittal series of the main series' study whose header says T1" + (
                f" with the most slices ({len(same_part)} such series)" if len(same_part) > 1 else ""
            )
            if len(same_part) < len(candidates):
                reason += " imaging the main series' part of the spine"
            if plain and len(plain) < len(same_part):
                t1_note = "before contrast agent by its header"
                reason += f", {t1_note}"
            elif not plain:
                t1_note = "its header shows a contrast agent (the study has no T1 without)"
                reason += f"; {t1_note}"
            reason += t1_tie
        else:
            role, reason = _unused_role(s, main, t1, t1_index)
        # the series' own localizer images set apart share its number and are picked by UID, the series by number
        sharing = [t for t in found if t.series_number == s.series_number]
        own = [t for t in sharing if not _localizers_of_a_series(t)]
        numbered = s.series_number is not None and (len(sharing) == 1 or (len(own) == 1 and own[0] is s))
        pick = str(s.series_number) if numbered else s.series_uid
        out.append(
            SeriesRole(
                i,
                role,
                s.sequence_hint,
                s.description or "",
                s.series_uid,
                reason,
                t1_note if s is t1 else note or "",
                s.modality,
                s.plane,
                pick,
            )
        )
    return tuple(out)


def _other_patient(s: SeriesInfo, main: SeriesInfo) -> bool:
    """Whether two series carry different PatientIDs (a series without one is not told apart)."""
    return None not in (s.patient_key, main.patient_key) and s.patient_key != main.patient_key


def _unused_role(s: SeriesInfo, main: SeriesInfo, t1: SeriesInfo | None, t1_index: int | None) -> tuple[str, str]:
    """The role and reason of a series that is neither the main series nor the T1 series read beside it."""
    if s.not_image is not None:
        return ROLE_NOT_USED, s.not_image
    if s.study_uid != main.study_uid:
        return ROLE_NOT_USED, f"{OTHER_STUDY} (its StudyInstanceUID differs from the main series')"
    if _other_patient(s, main):
        return ROLE_NOT_USED, "another patient's (its PatientID differs from the main series', in the same study)"
    if s.plane != "sagittal":
        return ROLE_NOT_USED, f"not sagittal ({s.plane})"
    if main.plane != "sagittal":
        return ROLE_NOT_USED, f"the main series is {main.plane}, not sagittal, so nothing is read beside it"
    if s.problem is not None:
        return ROLE_NOT_USED, s.problem if s.problem.startswith(MIXED_ACQUISITIONS) else (
            f"its images do not form one volume: {s.problem}"
        )
    seq = s.sequence_hint
    # a station is a series of several slices (the rule lowest_station chose by): a single slice is no station
    if other_station(s, main) and min(s.n_slices, main.n_slices) >= STATION_MIN_SLICES:
        where = HIGHER_STATION if centre_mm(s) > centre_mm(main) else LOWER_STATION
        return ROLE_NOT_USED, f"{where} of the spine than the main series (one station is read)"
    if seq == "STIR":
        return ROLE_STIR, "a sagittal STIR series of the study: recorded, not read"
    if seq == "T1" and main.sequence_hint == "T1":
        return ROLE_NOT_USED, "a T1 series, and the main series is T1 already"
    if seq == "T1" and s.after_contrast and t1 is not None and not t1.after_contrast:
        return ROLE_NOT_USED, f"a T1 after contrast agent by its header (the one read is [{t1_index}], before it)"
    if seq == "T1":
        if t1 is not None and s.frame_of_reference_uid != t1.frame_of_reference_uid == main.frame_of_reference_uid:
            why = "in the main series' frame of reference"  # the station's own T1, not the one of more slices
        elif t1 is not None and t1.n_slices == s.n_slices:
            why = "as many slices, a later series"
        else:
            why = "with more slices"
        return ROLE_NOT_USED, f"a second sagittal T1 series (the one read is [{t1_index}], {why})"
    if seq == "T2" and named_below_lumbar(s) and not named_below_lumbar(main):
        return ROLE_NOT_USED, "its name says sacrum, coccyx or pelvis: not the lumbar spine the models read"
    if seq == "T2" and s.derived and not main.derived:
        return ROLE_NOT_USED, "a derived sagittal T2 series (ImageType DERIVED: a reformat); the acquired one is read"
    if seq == "T2":
        return ROLE_NOT_USED, "another sagittal T2 series (one series is graded: the main one)"
    if seq is None:
        return ROLE_NOT_USED, "its header names no sequence (only a T1 series is read beside the main one)"
    return ROLE_NOT_USED, f"sequence {seq} by its header (only a T1 series is read beside the main one)"


class ChosenSeries(str):
    """A SeriesInstanceUID that a rule chose, not the user (batch discovery): the series is read by its UID, and the
    read gives the rule's ``reason`` for it (in the log and ``input.series.chosen_because``), not "as asked"."""

    reason: str

    def __new__(cls, uid: str, reason: str) -> ChosenSeries:
        chosen = super().__new__(cls, uid)
        chosen.reason = reason
        return chosen

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]  # pickled to batch's worker processes
        return str(self), self.reason


def _match_wanted(found: list[SeriesInfo], wanted: str | int) -> tuple[SeriesInfo, str]:
    if isinstance(wanted, bool) or not isinstance(wanted, (str, int)):
        raise SeriesSelectionError(f"series must be a UID, a SeriesNumber or an index, got {wanted!r}")
    text = str(wanted).strip()
    by_uid = [s for s in found if s.series_uid == text]
    if by_uid:
        return by_uid[0], wanted.reason if isinstance(wanted, ChosenSeries) else f"SeriesInstanceUID {text} as asked"
    stacks = _stacks_of(found, text)
    if stacks:  # the UID a viewer shows, of a series whose stacks were set apart: its lowest (review)
        return stacks[-1], f"SeriesInstanceUID {text} as asked{_lowest_stack_words(stacks)}"
    if re.fullmatch(r"[+-]?\d+", text):
        number = int(text)
        by_number = [s for s in found if s.series_number == number]
        # an object that is no image (a SEG) sharing the number of an image series does not make it ambiguous, nor
        # the series' own localizer images set apart (:func:`_localizers_apart`)
        by_number = [s for s in by_number if s.is_image] or by_number
        by_number = [s for s in by_number if not _localizers_of_a_series(s)] or by_number
        stacks = _stacks_of(by_number, _series_and_stack(by_number[0].series_uid)[0]) if by_number else []
        if len(by_number) > 1 and len(stacks) == len(by_number):  # one series, its stacks set apart: its lowest
            return stacks[-1], f"SeriesNumber {number} as asked{_lowest_stack_words(stacks)}"
        if len(by_number) == 1:
            clash = 0 <= number < len(found) and found[number] is not by_number[0]
            other = f"[{number}] {found[number].describe()}" if clash else ""
            also = f" ({INDEX_CLASH}: {other}; give its SeriesInstanceUID)" if clash else ""
            return by_number[0], f"SeriesNumber {number} as asked{also}"
        if len(by_number) > 1:
            raise SeriesSelectionError(
                f"{len(by_number)} series have SeriesNumber {number} (several studies?): "
                f"{_listing(found, by_number)}. Choose by SeriesInstanceUID instead."
            )
        if 0 <= number < len(found):
            return found[number], f"index {number} of the series list as asked"
    raise SeriesSelectionError(
        f"no series matches {wanted!r} (as SeriesInstanceUID, SeriesNumber or index); found: {_listing(found)}"
    )


def _stacks_of(found: list[SeriesInfo], uid: str) -> list[SeriesInfo]:
    """The stacks set apart from the series of SeriesInstanceUID ``uid`` (:func:`_stacks_apart`), highest first."""
    stacks = [(k, s) for s in found for base, k in [_series_and_stack(s.series_uid)] if k and base == uid]
    return [s for _, s in sorted(stacks, key=lambda ks: ks[0])]


def _lowest_stack_words(stacks: list[SeriesInfo]) -> str:
    return (
        f": its {len(stacks)} stacks at different heights are read apart, and the lowest is read (stack "
        f"{len(stacks)} of {len(stacks)}; --series '{stacks[0].series_uid}' or its index reads another)"
    )


# --------------------------------------------------------------------------------------------------------------
# reading one series
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Frame:
    """One 2D image of the series: where its pixels come from and where it sits in the patient (LPS)."""

    file: int  # index into the series' datasets
    frame: int  # frame index inside a multi-frame file (0 for single-frame files)
    position: NDArray[np.float64]  # ImagePositionPatient, LPS mm
    orientation: NDArray[np.float64]  # ImageOrientationPatient (6 values)
    rows: int
    columns: int
    pixel_spacing: NDArray[np.float64]  # (row spacing, column spacing) mm
    slope: float
    intercept: float
    thickness: float | None  # SpacingBetweenSlices, else SliceThickness: only used for a single slice
    frame_of_reference: str | None


def read_series(info: SeriesInfo, display_path: Path | None = None) -> Scan:
    """Read a series into a Scan: array ``[row, column, slice]`` and the affine to RAS+ mm, strictly checked."""
    if info.problem is not None and info.problem.startswith(MIXED_ACQUISITIONS):  # the geometry may well be regular
        raise ScanReadError(f"series {info.describe()} is {info.problem}")
    names = [_rel_name(p, info.root) for p in info.files]
    datasets = [_read_full(p, name) for p, name in zip(info.files, names)]
    frames = [fr for idx, ds in enumerate(datasets) for fr in _frames_of(ds, idx, names[idx])]
    unit = "frames" if info.multiframe else "files"
    try:
        ordered, affine_lps = _stack_geometry(frames, names, unit)
    except GeometryError as exc:
        if not info.unreadable:
            raise
        some = ", ".join(info.unreadable[:3]) + (" …" if len(info.unreadable) > 3 else "")
        raise GeometryError(
            f"{exc}; {len(info.unreadable)} DICOM file(s) beside it could not be read, a missing slice may be one of "
            f"them: {some}"
        ) from exc

    pixels: dict[int, NDArray[Any]] = {}
    for idx in sorted({fr.file for fr in ordered}):
        pixels[idx] = _decode(datasets[idx], names[idx])
        if "PixelData" in datasets[idx]:
            del datasets[idx].PixelData  # free the encoded bytes as soon as they are decoded
    padded = _mask_padding(pixels, datasets, names)
    array = _assemble(ordered, pixels)
    inverted = _monochrome1_frames(ordered, datasets)
    if inverted.any():
        array = _invert(array, inverted)
        log.info(
            "series %s is stored MONOCHROME1 (low values bright) in %d of %d slices: read inverted, high values bright",
            info.describe(),
            int(inverted.sum()),
            len(ordered),
        )

    first = datasets[ordered[0].file]
    extra: dict[str, Any] = {"transfer_syntax": _transfer_syntax(first).name}
    if inverted.any():
        extra["photometric_interpretation"] = "MONOCHROME1 (read inverted)"
    if padded:
        extra["pixel_padding"] = padded
    # SOP instance (and frame) of every slice in array order, so exports (DICOM SEG/SR) can reference them
    extra["slice_sop_instance_uids"] = [str(datasets[fr.file].get("SOPInstanceUID", "")) for fr in ordered]
    extra["slice_frames"] = [fr.frame for fr in ordered]
    thick = first.get("SliceThickness")
    if thick is None and _is_enhanced(first):
        thick = _frame_attr(first, ordered[0].frame, "PixelMeasuresSequence", "SliceThickness")
    if thick is not None:
        extra["slice_thickness_mm"] = _number(thick, 0.0, "SliceThickness", names[ordered[0].file]) or None
    demoted = demoted_t2_reason(_EnhancedHeader(first) if _is_enhanced(first) else first)
    if demoted:  # why a series named T2, or an unnamed gradient echo, is no T2 to grade: said with the withheld grades
        extra["sequence_why"] = demoted
    root = info.root if info.root is not None else (info.files[0].parent if info.files else None)
    source = ScanSource(
        path=str(display_path if display_path is not None else root),
        format="dicom",
        series_uid=info.series_uid,
        series_description=_str_or_none(first.get("SeriesDescription")),
        series_number=_int_or_none(first.get("SeriesNumber")),
        modality=_str_or_none(first.get("Modality")),
        sequence_hint=_sequence_hint(first),
        manufacturer=_str_or_none(first.get("Manufacturer")),
        study_uid=_str_or_none(first.get("StudyInstanceUID")),
        frame_of_reference_uid=ordered[0].frame_of_reference,
        extra=extra,
        dicom_headers=tuple(datasets[fr.file] for fr in ordered),
        header_flags=(_unreadable_flag(info.damaged_own),) if info.damaged_own else (),
    )
    try:
        return Scan(array, geometry.LPS_TO_RAS @ affine_lps, source)
    except UnsupportedScanError as exc:  # e.g. a gantry-tilted (sheared) stack: say which series and files
        where = names[ordered[0].file] if len(names) == 1 else f"{names[ordered[0].file]} … {names[ordered[-1].file]}"
        raise UnsupportedScanError(f"series {info.describe()} ({where}): {exc}") from None


def _unreadable_flag(damaged: tuple[str, ...]) -> str:
    """The flag of DICOM files under the input that were left out unread and may have been the series' (their header
    cannot say, or names this series): one may have been its first or last slice, whose loss leaves a regular volume
    behind (a missing middle slice fails the reading instead)."""
    some = ", ".join(damaged[:3]) + (" …" if len(damaged) > 3 else "")
    return (
        f"{DICOM_FILES_UNREADABLE}: {len(damaged)} file(s) under the input could not be read and were left out: "
        f"{some}; if one was an edge slice of the series read, the volume lacks it"
    )


def _rel_name(path: Path, root: Path | None) -> str:
    if root is not None and root.is_dir():
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return path.name


def _read_full(path: Path, name: str) -> Dataset:
    try:
        # force: preamble-less files are valid DICOM streams too (discover_series already vetted the header)
        return pydicom.dcmread(path, force=True)
    except Exception as exc:  # pydicom raises many types on truncated or corrupt files
        raise ScanReadError(f"cannot read DICOM file '{name}' (truncated or corrupt?): {exc}") from exc


def _is_enhanced(ds: Dataset) -> bool:
    return "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds


def _n_frames(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def _frame_attr(ds: Dataset, frame: int, group: str, keyword: str) -> Any:
    """``keyword`` from functional group ``group`` of ``frame``: per-frame first, then shared; None if absent."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    candidates = []
    if per_frame is not None and frame < len(per_frame):
        candidates.append(per_frame[frame])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        candidates.append(shared[0])
    for item in candidates:
        seq = item.get(group)
        if seq and keyword in seq[0]:
            return seq[0].get(keyword)
    return None


def _floats(value: Any, n: int, what: str, name: str) -> NDArray[np.float64]:
    try:
        out = np.asarray([float(v) for v in value], dtype=float)
    except (TypeError, ValueError) as exc:
        raise GeometryError(f"'{name}' has an unreadable {what}: {value!r}") from exc
    if out.shape != (n,) or not np.all(np.isfinite(out)):
        raise GeometryError(f"'{name}' has an invalid {what}: {value!r} (expected {n} finite numbers)")
    return out


def _frames_of(ds: Dataset, idx: int, name: str) -> list[_Frame]:
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise UnsupportedScanError(
            f"'{name}' holds colour images ({ds.get('PhotometricInterpretation', '?')}); openspine reads "
            "greyscale MRI only"
        )
    if "Rows" not in ds or "Columns" not in ds:
        raise ScanReadError(f"'{name}' has no Rows/Columns: it is not an image")
    enhanced = _is_enhanced(ds)
    n = _n_frames(ds)
    if n > 1 and not enhanced:
        raise GeometryError(
            f"'{name}' is a multi-frame object ({n} frames) without per-frame geometry (functional groups); "
            "openspine cannot place its frames in space"
        )
    if enhanced:
        per_frame = ds.get("PerFrameFunctionalGroupsSequence")
        if per_frame is not None and len(per_frame) != n:
            raise GeometryError(
                f"'{name}' declares {n} frames but has {len(per_frame)} per-frame functional group items"
            )
    rows, cols = int(ds.Rows), int(ds.Columns)
    for_uid = _str_or_none(ds.get("FrameOfReferenceUID"))
    out = []
    for f in range(n):

        def get(group: str, keyword: str, f: int = f) -> Any:
            return _frame_or_top(ds, enhanced, f, group, keyword)

        ipp, iop, ps = (
            get("PlanePositionSequence", "ImagePositionPatient"),
            get("PlaneOrientationSequence", "ImageOrientationPatient"),
            get("PixelMeasuresSequence", "PixelSpacing"),
        )
        where = f"'{name}'" + (f" frame {f + 1}" if enhanced else "")
        for value, keyword in ((ipp, "ImagePositionPatient"), (iop, "ImageOrientationPatient"), (ps, "PixelSpacing")):
            if value is None:
                raise GeometryError(
                    f"{where} has no {keyword}: without patient geometry openspine cannot build the volume "
                    "(screen captures and secondary captures cannot be analysed as DICOM: export the original series, "
                    "or save one slice as a PNG and give its pixel size with --pixel-spacing, which applies to "
                    "pictures only)"
                )
        slope = get("PixelValueTransformationSequence", "RescaleSlope")
        intercept = get("PixelValueTransformationSequence", "RescaleIntercept")
        spacing_between = get("PixelMeasuresSequence", "SpacingBetweenSlices")
        thickness = get("PixelMeasuresSequence", "SliceThickness")
        between = _number(spacing_between, 0.0, "SpacingBetweenSlices", name)
        thick = abs(between) or abs(_number(thickness, 0.0, "SliceThickness", name)) or None
        out.append(
            _Frame(
                file=idx,
                frame=f,
                position=_floats(ipp, 3, "ImagePositionPatient", name),
                orientation=_floats(iop, 6, "ImageOrientationPatient", name),
                rows=rows,
                columns=cols,
                pixel_spacing=_floats(ps, 2, "PixelSpacing", name),
                slope=_number(slope, 1.0, "RescaleSlope", name),
                intercept=_number(intercept, 0.0, "RescaleIntercept", name),
                thickness=thick,
                frame_of_reference=for_uid,
            )
        )
    return out


def _number(value: Any, default: float, keyword: str, name: str) -> float:
    """A numeric header value (DS/IS), ``default`` when absent or empty; ScanReadError when unreadable."""
    if value is None or value == "":
        return default
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ScanReadError(f"'{name}' has an unreadable {keyword}: {value!r}") from exc
    if not np.isfinite(out):
        raise ScanReadError(f"'{name}' has a non-finite {keyword}: {value!r}")
    return out


def _fmt(v: NDArray[np.float64]) -> str:
    return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"


def _mixed(what: str, groups: list[list[int]], labels: list[str], unit: str) -> GeometryError:
    parts = [f"{lab} ({len(g)} {unit})" for g, lab in zip(groups, labels)]
    listed = ", ".join(parts[:-1]) + " and " + parts[-1]
    return GeometryError(
        f"the series mixes {len(groups)} {what}: {listed}; it is not one volume (a localiser or several stacks "
        "saved as one series?). Choose another series or split this one."
    )


def _stack_geometry(frames: list[_Frame], names: list[str], unit: str) -> tuple[list[_Frame], NDArray[np.float64]]:
    """Check that the frames form one regular stack; return them sorted along the normal and the LPS affine."""
    _check_uniform(frames, unit)
    iop = frames[0].orientation
    x_dir, y_dir = iop[:3], iop[3:]  # X: increasing column index j; Y: increasing row index i
    nx, ny = float(np.linalg.norm(x_dir)), float(np.linalg.norm(y_dir))
    if abs(nx - 1) > 1e-3 or abs(ny - 1) > 1e-3 or abs(float(np.dot(x_dir, y_dir))) > 1e-3:
        raise GeometryError(
            f"ImageOrientationPatient {_fmt(iop)} is not two orthogonal unit vectors; the header is corrupt"
        )
    x_dir, y_dir = x_dir / nx, y_dir / ny
    normal = np.cross(x_dir, y_dir)
    row_spacing, col_spacing = (float(v) for v in frames[0].pixel_spacing)
    if row_spacing <= 0 or col_spacing <= 0:
        raise GeometryError(f"PixelSpacing {_fmt(frames[0].pixel_spacing)} must be positive")

    dist = np.asarray([float(f.position @ normal) for f in frames])
    order = np.argsort(dist, kind="stable")
    ordered = [frames[i] for i in order]
    dist = dist[order]

    def label(fr: _Frame) -> str:
        return f"'{names[fr.file]}'" + (f" frame {fr.frame + 1}" if unit == "frames" else "")

    # a single slice: one step of its thickness along the normal
    step = _regular_step(ordered, dist, label, normal) if len(ordered) > 1 else normal * (ordered[0].thickness or 1.0)

    affine = np.eye(4)
    affine[:3, 0] = y_dir * row_spacing  # row index i moves along Y by PixelSpacing[0]
    affine[:3, 1] = x_dir * col_spacing  # column index j moves along X by PixelSpacing[1]
    affine[:3, 2] = step
    affine[:3, 3] = ordered[0].position
    return ordered, affine


def _check_uniform(frames: list[_Frame], unit: str) -> None:
    """One orientation, image size, pixel spacing and frame of reference for all frames, or a GeometryError."""
    if not frames:
        raise ScanReadError("the series holds no image frames")
    orients = _cluster([f.orientation for f in frames], ORIENTATION_TOL)
    if len(orients) > 1:
        labels = [_fmt(frames[g[0]].orientation) for g in orients]
        raise _mixed("orientations (ImageOrientationPatient)", orients, labels, unit)
    sizes = _cluster([np.asarray([f.rows, f.columns], float) for f in frames], 0.5)
    if len(sizes) > 1:
        labels = [f"{frames[g[0]].rows}×{frames[g[0]].columns}" for g in sizes]
        raise _mixed("image sizes (Rows×Columns)", sizes, labels, unit)
    spacings = _cluster([f.pixel_spacing for f in frames], PIXEL_SPACING_TOL_MM)
    if len(spacings) > 1:
        labels = [_fmt(frames[g[0]].pixel_spacing) + " mm" for g in spacings]
        raise _mixed("pixel spacings (PixelSpacing)", spacings, labels, unit)
    fors = Counter(f.frame_of_reference for f in frames if f.frame_of_reference)
    if len(fors) > 1:
        raise GeometryError(
            f"the series mixes {len(fors)} frames of reference (FrameOfReferenceUID): its images were not "
            "acquired in one patient coordinate system and cannot form one volume"
        )


def _regular_step(
    ordered: list[_Frame], dist: NDArray[np.float64], label: Callable[[_Frame], str], normal: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The slice step (LPS mm) of frames sorted along the normal at distances ``dist``: distinct, evenly spaced
    positions on one straight line, or a GeometryError naming the offending frames."""
    gaps = np.diff(dist)
    # two positions each rounded per coordinate: their distance along the normal moves by up to the rounding times
    # the normal's L1 norm (1 for a stack along an axis, up to √3 for an oblique one)
    rounding = POSITION_ROUNDING_MM * float(np.abs(normal).sum())
    dup = np.flatnonzero(gaps < GAP_TOL_MM + rounding)
    if dup.size:
        k = int(dup[0])
        pair = f"{label(ordered[k])} and {label(ordered[k + 1])}"
        if gaps[k] >= GAP_TOL_MM:  # slices 0.1 mm apart had been said to lie at one position (user test)
            raise GeometryError(
                f"slices too close together ({dup.size} of {len(gaps)} steps under "
                f"{GAP_TOL_MM + rounding:.2f} mm): {pair} lie {gaps[k]:.3f} mm apart along the slice normal, closer "
                f"than openspine tells positions apart (it reads them to {POSITION_ROUNDING_MM:g} mm); no MR series "
                "is sliced so finely: check the positions (ImagePositionPatient) in the headers"
            )
        apart = float(np.linalg.norm(ordered[k].position - ordered[k + 1].position))
        if apart > STACKS_APART_MM:  # one position along the normal, far apart within the plane: two stacks
            raise GeometryError(
                f"duplicate slice positions ({dup.size} repeated): {pair} both lie at {dist[k]:.3f} mm along the "
                f"slice normal but {apart:.0f} mm apart within the plane. The series holds several stacks at "
                "different heights (the stations of a whole-spine study saved as one series?), which form no one "
                "volume; export each station as its own series, or give the lumbar station's files alone."
            )
        raise GeometryError(
            f"duplicate slice positions ({dup.size} repeated): {pair} both lie at {dist[k]:.3f} mm along the slice "
            "normal. The series holds several images per position (echoes, time points or a repeated "
            "acquisition); choose a series with one image per position."
        )
    median = float(np.median(gaps))
    tol = max(GAP_TOL_MM + rounding, GAP_TOL_REL * median)
    bad = np.flatnonzero(np.abs(gaps - median) > tol)
    if bad.size:
        k = int(bad[0])
        raise GeometryError(
            f"irregular slice spacing: the gap between slices {k} and {k + 1} (at {dist[k]:.3f} and "
            f"{dist[k + 1]:.3f} mm along the slice normal, {label(ordered[k])} and {label(ordered[k + 1])}) "
            f"is {gaps[k]:.3f} mm, but the median gap is {median:.3f} mm ({bad.size} irregular gap"
            f"{'s' if bad.size > 1 else ''}); a slice may be missing or the series holds several stacks"
        )
    # positions must lie on one straight line; the step from first to last keeps any (CT-like) shear exact
    step = (ordered[-1].position - ordered[0].position) / (len(ordered) - 1)
    expected = ordered[0].position + np.arange(len(ordered))[:, None] * step
    actual = np.stack([f.position for f in ordered])
    off = np.linalg.norm(actual - expected, axis=1)
    # a rounded position lies up to half the rounding per coordinate off its true place, and so do the two ends that
    # place the line: up to the rounding times √3 in all
    if float(off.max()) > max(tol, GAP_TOL_MM + POSITION_ROUNDING_MM * np.sqrt(3.0)):
        k = int(np.argmax(off))
        raise GeometryError(
            f"slice positions do not lie on a straight line: {label(ordered[k])} is {off[k]:.3f} mm away from "
            "the line through the first and last slice; the series is not one regular volume"
        )
    return step


def _plugin_for(ts: UID) -> str:
    for prefix, plugin in _DECODER_PLUGINS:
        if str(ts).startswith(prefix):
            return plugin
    return "pylibjpeg with its plugins (pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle)"


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts:
        return UID(ts)
    # a preamble-less file has no file meta: fall back to the encoding pydicom detected while parsing
    implicit, little = ds.original_encoding
    ts = ExplicitVRBigEndian if little is False else ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    if meta is None:
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    return UID(ts)


def _decode(ds: Dataset, name: str) -> NDArray[Any]:
    """The stored pixel values of a file as (frames, rows, columns)."""
    ts = _transfer_syntax(ds)
    rows, cols, n = int(ds.Rows), int(ds.Columns), _n_frames(ds)
    if "PixelData" in ds and not ts.is_compressed:
        bits = int(ds.get("BitsAllocated", 16) or 16)
        expected = rows * cols * n * bits // 8
        have = len(ds.PixelData)
        if bits >= 8 and have < expected:
            raise ScanReadError(
                f"DICOM file '{name}' is truncated: its pixel data has {have} bytes, {rows}×{cols}×{n} pixels of "
                f"{bits} bits need {expected}"
            )
        if bits >= 8 and have - expected >= max(2, cols * bits // 8):  # a row or more to spare, not an even pad
            # Columns cut by 100 had been read as a scrambled image without a word (user test)
            raise ScanReadError(
                f"DICOM file '{name}' has {have} bytes of pixel data, {have - expected} more than its {rows}×{cols}×"
                f"{n} pixels of {bits} bits need: its Rows and Columns do not match its pixels, which read so would "
                "be scrambled"
            )
    try:
        arr = ds.pixel_array
    except Exception as exc:  # decoders raise many types on corrupt or unsupported data
        if ts.is_compressed:
            plugin = _plugin_for(ts)
            try:
                from pydicom.pixels import get_decoder

                available = get_decoder(ts).is_available
            except (NotImplementedError, ValueError):
                available = False
            if not available:
                raise ScanReadError(
                    f"cannot decode '{name}': no installed decoder handles its transfer syntax {ts.name} ({ts}); "
                    f"install {plugin} (pip install {plugin.split()[0]})"
                ) from exc
            raise ScanReadError(
                f"cannot decode '{name}' ({ts.name}, {ts}): {exc}. The file may be corrupt; if it is not, "
                f"install or update the decoder plugin {plugin}"
            ) from exc
        raise ScanReadError(
            f"cannot read the pixel data of DICOM file '{name}' (truncated or corrupt?): {exc}"
        ) from exc
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.shape != (n, rows, cols):
        raise ScanReadError(
            f"DICOM file '{name}' decodes to pixels of shape {arr.shape}, its header says {n}×{rows}×{cols}"
        )
    return arr


def _padding_range(ds: Dataset) -> tuple[int, int] | None:
    """Stored values the header marks as padding (no image there): PixelPaddingValue up to PixelPaddingRangeLimit,
    read by their bit pattern as the pixels are stored (a value written as US 32768 on signed pixels is -32768)."""
    value = ds.get("PixelPaddingValue")
    if value is None:
        return None
    limit = ds.get("PixelPaddingRangeLimit", value)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    bits = int(ds.get("BitsAllocated", 16) or 16)
    try:
        ends = [_as_stored(int(v) if not isinstance(v, bytes) else _from_bytes(v, signed), signed, bits)
                for v in (value, limit)]  # fmt: skip
    except (TypeError, ValueError):
        return None  # an unreadable padding value marks nothing
    return min(ends), max(ends)


def _from_bytes(raw: bytes, signed: bool) -> int:
    # 'US or SS' is left as bytes where the reader could not resolve it; PixelRepresentation says which
    if len(raw) != 2:
        raise ValueError("padding value of unexpected length")
    return int.from_bytes(raw, "little", signed=signed)


def _as_stored(value: int, signed: bool, bits: int) -> int:
    """``value`` as the pixels' own type reads its bits (an encoder may write the other of US/SS)."""
    if signed and value >= 2 ** (bits - 1):
        return value - 2**bits
    if not signed and value < 0:
        return value + 2**bits
    return value


def _mask_padding(pixels: dict[int, NDArray[Any]], datasets: list[Dataset], names: list[str]) -> dict[str, Any]:
    """Set the pixels a header marks as padding (PixelPaddingValue) to the series' darkest image value.

    Padding is outside the image (a reformat's or a rotated slab's corners) and often an extreme value (-32768,
    65535): read as tissue it would set the intensity range and hide the spine. Done on stored values, before the
    rescale, as the standard defines it; a MONOCHROME1 file's darkest value is its highest stored one. A padding
    value that lies among the image's own values (pixels below and above it) is no padding a scanner writes, and
    masking it would blank tissue: it is not applied, with a warning."""
    masks = {}
    spans = {}
    for idx, arr in pixels.items():
        span = _padding_range(datasets[idx])
        if span is not None:
            mask = (arr >= span[0]) & (arr <= span[1])
            if mask.any():
                masks[idx], spans[idx] = mask, span
    if not masks:
        return {}
    kept_all = [pixels[idx][~masks[idx]] if idx in masks else pixels[idx].ravel() for idx in pixels]
    kept_all = [k for k in kept_all if k.size]
    if kept_all:
        lo, hi = min(int(k.min()) for k in kept_all), max(int(k.max()) for k in kept_all)
        inside = sorted({span for span in spans.values() if lo < span[0] and span[1] < hi})
        if inside:
            value = inside[0][0] if inside[0][0] == inside[0][1] else f"{inside[0][0]}–{inside[0][1]}"
            log.warning(
                "the header's PixelPaddingValue (%s, e.g. %s) lies among the image's own values (%d … %d): not "
                "applied, the pixels are read as image",
                value,
                names[min(masks)],
                lo,
                hi,
            )
            return {"not_applied": f"PixelPaddingValue {value} lies among the image's own values ({lo} … {hi})"}
    inverted = {
        idx: str(datasets[idx].get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1" for idx in pixels
    }
    for want_inverted in (False, True):
        group = [idx for idx in pixels if inverted[idx] == want_inverted]
        kept = [pixels[idx][~masks[idx]] if idx in masks else pixels[idx].ravel() for idx in group]
        ends = [int(k.max()) if want_inverted else int(k.min()) for k in kept if k.size]
        fill = (max(ends) if want_inverted else min(ends)) if ends else 0  # a series all padding: nothing to match
        for idx in group:
            if idx in masks:
                pixels[idx] = np.where(masks[idx], np.asarray(fill).astype(pixels[idx].dtype), pixels[idx])
    count = int(sum(int(m.sum()) for m in masks.values()))
    first = min(masks)
    log.info(
        "%d pixels of %d file(s) are marked as padding (PixelPaddingValue, e.g. %s): read as the darkest image value",
        count,
        len(masks),
        names[first],
    )
    return {"files": len(masks), "pixels": count}


def _assemble(ordered: list[_Frame], pixels: dict[int, NDArray[Any]]) -> NDArray[Any]:
    """Stack frames along the third axis; apply rescale slope/intercept (float32 only when it changes values)."""
    identity = all(f.slope == 1.0 and f.intercept == 0.0 for f in ordered)
    dtype = np.result_type(*[p.dtype for p in pixels.values()]) if identity else np.dtype(np.float32)
    rows, cols = ordered[0].rows, ordered[0].columns
    out = np.empty((rows, cols, len(ordered)), dtype=dtype)
    for k, fr in enumerate(ordered):
        plane = pixels[fr.file][fr.frame]
        if identity:
            out[:, :, k] = plane
        else:
            # float64 arithmetic, then one rounding to float32, so the result does not depend on the stored dtype
            out[:, :, k] = (plane.astype(np.float64) * fr.slope + fr.intercept).astype(np.float32)
    return out


def _monochrome1_frames(ordered: list[_Frame], datasets: list[Dataset]) -> NDArray[np.bool_]:
    """Which slices (in array order) are stored MONOCHROME1: their lowest value is shown white."""
    kinds = [str(datasets[fr.file].get("PhotometricInterpretation", "")).strip().upper() for fr in ordered]
    return np.asarray([k == "MONOCHROME1" for k in kinds], dtype=bool)


def _invert(array: NDArray[Any], which: NDArray[np.bool_]) -> NDArray[Any]:
    """The slices ``which`` (the last axis) as displayed: ``max - value`` after rescale, the max over all of those
    slices, so one tissue keeps one value across the series and what is shown black reads 0, as air does in a
    magnitude image. Writers invert with different constants (their maximum plus minimum, ``2**BitsStored - 1``);
    ``max + min - value`` had read the second kind thousands above 0, flagged as an offset under the scan. The dtype
    is kept where the range fits it."""
    part = array[:, :, which].astype(np.float64)  # float64: the difference can leave the stored integer type
    hi = float(np.max(part))
    flipped = hi - part
    dtype = array.dtype
    if np.issubdtype(dtype, np.integer) and float(flipped.max()) > np.iinfo(dtype).max:
        dtype = np.dtype(np.float32)  # a signed range wider than its type holds from 0 up
    out = array.astype(dtype, copy=True)
    out[:, :, which] = flipped.astype(dtype)
    return out


# --------------------------------------------------------------------------------------------------------------
# header text helpers
# --------------------------------------------------------------------------------------------------------------
def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _sequence_hint(ds: Dataset) -> str | None:
    """'T1', 'T2', 'STIR', 'other' or None: :func:`openspine.recognition.header.sequence_from_header` (an Enhanced MR
    object read through :class:`_EnhancedHeader`)."""
    return sequence_from_header(_EnhancedHeader(ds) if _is_enhanced(ds) else ds)


# where an Enhanced MR object keeps what a classic header has at its top level: (functional group, keyword)
_IN_GROUPS = {
    "RepetitionTime": ("MRTimingAndRelatedParametersSequence", "RepetitionTime"),
    "EchoTime": ("MREchoSequence", "EffectiveEchoTime"),
    "InversionTime": ("MRModifierSequence", "InversionTimes"),
}
_ECHO_TYPES = {"SPIN": ("SE",), "GRADIENT": ("GR",), "BOTH": ("SE", "GR")}  # EchoPulseSequence → ScanningSequence


class _EnhancedHeader:
    """An Enhanced MR object's header as the header rules read a classic one: its timing and inversion are in the
    functional groups of its first frame (``RepetitionTime``, ``EffectiveEchoTime``, ``InversionRecovery`` and
    ``InversionTimes``), and its echo type and fat suppression in ``EchoPulseSequence`` and
    ``SpectrallySelectedSuppression`` (an Enhanced STIR named "SAG" had been read as the T2 its image looks like)."""

    def __init__(self, ds: Dataset) -> None:
        self._ds = ds

    def get(self, key: str, default: Any = None) -> Any:
        value = self._ds.get(key)
        if value is not None and value != "":
            return value
        if key in _IN_GROUPS:
            found = _frame_attr(self._ds, 0, *_IN_GROUPS[key])
            return default if found is None else found
        if key == "ScanningSequence":
            tokens = list(_ECHO_TYPES.get(str(self._ds.get("EchoPulseSequence") or "").upper(), ()))
            inversion = _frame_attr(self._ds, 0, "MRModifierSequence", "InversionRecovery")
            tokens += ["IR"] if str(inversion or "").upper() == "YES" else []
            return "\\".join(tokens) if tokens else default
        if key == "ScanOptions":
            suppressed = str(self._ds.get("SpectrallySelectedSuppression") or "").upper()
            return "FS" if suppressed.startswith("FAT") else default
        return default
