"""NIfTI reader (.nii, .nii.gz): 3D volumes and single slices, the affine taken from the header.

A header whose sform and qform codes are both 0 gives no orientation (nibabel then makes one up from the voxel
sizes). Such a file is read as a picture is: each slice as displayed, its first in-plane axis head to feet and its
second front to back, the slices left to right (:func:`as_displayed_affine`), and ``ScanSource.orientation_unknown``
says so; the analysis judges its plane from the image, as a picture's.

Which transform is read where the header holds two (sform and qform codes both above 0): the sform, as nibabel does,
unless it is a template's or another scan's (code 2–5: aligned, Talairach, MNI 152, template) and the qform is the
scanner's (code 1): then the qform, the patient's own position. Two transforms that place the image more than
:data:`DISAGREE_MM` or :data:`DISAGREE_DEGREES` apart give the flag ``nifti_transforms_disagree``, naming the one read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import geometry
from .._logging import get_logger
from ..errors import GeometryError, ScanReadError, UnsupportedScanError
from ..scan import NiftiTransforms, Scan, ScanSource

log = get_logger("io.nifti")

ORIENTATION_UNKNOWN = (
    "the NIfTI's sform and qform codes are 0, so its header gives no orientation; each slice was read as a picture "
    "is, as displayed (rows head to feet, columns front to back), its plane judged from the image, and positions in "
    "mm are in that assumed frame, not the patient's"
)

# NIfTI-1 xform codes (nifti1.h; 5 = another template, NIfTI-2 and nibabel)
XFORM_NAMES = {0: "unknown", 1: "scanner", 2: "aligned", 3: "Talairach", 4: "MNI 152", 5: "template"}
SCANNER = 1
# sform and qform further apart than this (at any corner of the grid, or between any axis' directions) are flagged:
# the qform is stored in float32 and holds no shear, so a few hundredths of a mm between the two is normal
DISAGREE_MM = 1.0
DISAGREE_DEGREES = 1.0
# the header fields that hold the two transforms (pixdim: the qform's voxel sizes and its handedness, qfac), and
# their unit (a file in metres gets a label map in metres)
TRANSFORM_FIELDS = (
    "sform_code", "qform_code", "srow_x", "srow_y", "srow_z", "quatern_b", "quatern_c", "quatern_d",
    "qoffset_x", "qoffset_y", "qoffset_z", "pixdim", "xyzt_units",
)  # fmt: skip


def _single_precision(arr: NDArray[Any]) -> NDArray[Any]:
    """A float64 image as float32, where its values fit: MR intensities need no more precision, and every later copy
    of the volume is half the size (a 2.5 GB float64 volume had peaked at 10 GB; user test)."""
    if arr.dtype.kind != "f" or arr.dtype.itemsize != 8:  # big-endian float64 (>f8) too
        return arr
    finite = np.isfinite(arr)  # a mask an eighth of the volume's size, not a copy of it
    top = float(np.finfo(np.float32).max)
    if np.max(arr, initial=0.0, where=finite) >= top or np.min(arr, initial=0.0, where=finite) <= -top:
        return arr  # beyond float32: left for the range checks to scale (Scan.in_safe_range)
    return arr.astype(np.float32)


def read_nifti(path: Path) -> Scan:
    import nibabel as nib

    try:
        img: Any = nib.load(str(path))
        shape = tuple(int(n) for n in img.shape)
        if any(n < 0 for n in shape):  # a damaged header: numpy's own message ("negative count") says nothing
            raise ScanReadError(f"'{path}' has a damaged header: it gives the shape {shape}, with a negative size")
        if 0 in shape:  # nibabel reads an empty image as shape (0,), which would hide the header's shape
            raise UnsupportedScanError(f"'{path}' holds no voxels: its header gives the shape {shape}")
        arr = np.asanyarray(img.dataobj)
    except (UnsupportedScanError, ScanReadError):
        raise
    except Exception as exc:  # nibabel raises many types for a damaged file
        raise ScanReadError(f"cannot read '{path}' as NIfTI: {exc}") from exc
    # NIfTI stores extra singleton dimensions for 2D and some 3D exports; drop only trailing ones
    while arr.ndim > 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim > 3:
        raise UnsupportedScanError(
            f"'{path}' is a {arr.ndim}D NIfTI of shape {arr.shape}; openspine analyses one 3D volume. "
            "Extract the volume you want first (e.g. nibabel: img.slicer[..., 0])."
        )
    if arr.ndim == 2:
        arr = arr[:, :, None]
    single = _single_precision(arr)
    # what the file stores, where it is not what is read (info shows both)
    stored = {"stored_dtype": arr.dtype.name} if single is not arr else {}
    if stored:
        log.info("'%s' holds float64 voxels: read as float32 (precision enough for MR, half the memory)", path.name)
    arr = single
    stored_shape = shape if shape != arr.shape else None  # the label map is written back in it
    header = img.header
    codes = {"sform": int(header.get("sform_code", 0) or 0), "qform": int(header.get("qform_code", 0) or 0)}
    to_mm, units_flag = _to_millimetres(header)
    stored_zooms = tuple(z * to_mm for z in _stored_zooms(path, img))
    if not any(codes.values()):
        zooms = stored_zooms + (1.0,) * (3 - len(stored_zooms))
        source = ScanSource(
            path=str(path),
            format="nifti",
            orientation_unknown=ORIENTATION_UNKNOWN,
            header_flags=(units_flag,) if units_flag else (),
            stored_shape=stored_shape,
            extra=stored,
        )
        return Scan(arr, as_displayed_affine(arr.shape, zooms, path), _with_sidecar(source, path))
    try:
        transforms = {"sform": header.get_sform(), "qform": header.get_qform()}
    except Exception as exc:  # a damaged quaternion
        raise ScanReadError(f"'{path}' has no usable affine in its header: {exc}") from exc
    which, flag = choose_transform(codes, transforms, arr.shape)
    flags = [
        flag,
        _voxel_size_missing_flag(stored_zooms, arr.shape) if which == "qform" else None,
        default_affine_flag(np.asarray(transforms[which], dtype=float), which),
        units_flag,
    ]
    affine = np.asarray(transforms[which], dtype=float)
    affine[:3, :] *= to_mm  # the header's unit → mm (its stored transforms, copied to the label map, keep theirs)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise GeometryError(
            f"'{path}' has no usable orientation: the {which} of its header (code {codes[which]}) is singular or "
            f"not finite: {geometry.matrix_text(affine)}; fix the header's {which}"
        )
    transforms_kept = NiftiTransforms({k: np.array(header[k]) for k in TRANSFORM_FIELDS}, affine)
    source = ScanSource(
        path=str(path),
        format="nifti",
        header_flags=tuple(f for f in flags if f),
        nifti_transforms=transforms_kept,
        stored_shape=stored_shape,
        extra=stored,
    )
    return Scan(arr, affine, _with_sidecar(source, path))


def _with_sidecar(source: ScanSource, path: Path) -> ScanSource:
    """``source`` with what the files beside it say (:mod:`.sidecar`): the sequence by the DICOM header rules on its
    JSON sidecar(s), or by its BIDS name where that names another contrast than the T2 a sidecar may say; the
    series' description, number, modality, manufacturer and study; unchanged where nothing is said."""
    from dataclasses import replace

    from ..recognition.header import demoted_t2_reason, sequence_from_header
    from .sidecar import bids_name_reading, read_sidecar

    reading = bids_name_reading(path)
    named, by_name = reading if reading is not None else (None, "")
    by_name = f"BIDS file name ({by_name})"  # which part of the name said it: acq-fs, _STIR
    read = read_sidecar(path)
    if read is None:
        if named is None:
            return source
        return replace(source, sequence_hint=named, extra={**source.extra, "sequence_named_by": by_name})
    header, where = read

    def text(key: str) -> str | None:
        value = header.get(key)
        return str(value).strip() or None if value is not None else None

    hint = sequence_from_header(header)
    # a file named for another contrast (acq-stir_T2w, _STIR) is not graded as the T2 its sidecar may name
    by = by_name if named is not None and named != hint and hint in (None, "T2") else "sidecar"
    number = text("SeriesNumber")
    return replace(
        source,
        sequence_hint=hint if by == "sidecar" else named,
        series_description=text("SeriesDescription"),
        series_number=_series_number(number),
        modality=text("Modality"),
        manufacturer=text("Manufacturer"),
        study_uid=text("StudyInstanceUID"),
        extra={
            **source.extra,
            # the sidecar(s) read: the file's own by name, inherited ones by their path from the file's folder
            "sidecar": ", ".join(os.path.relpath(w, path.parent) for w in where),
            **({"sequence_named_by": by} if (hint if by == "sidecar" else named) is not None else {}),
            **({"sequence_why": why} if by == "sidecar" and (why := demoted_t2_reason(header)) else {}),
        },
    )


# NIfTI's spatial units (xyzt_units) other than mm, as nibabel names them, and their size in mm; "unknown" (0), by
# far the most common, is read as mm, as the NIfTI standard's tools do
_UNITS_IN_MM = {"meter": 1000.0, "micron": 0.001}


def _to_millimetres(header: Any) -> tuple[float, str | None]:
    """The factor that turns the header's lengths into mm, and the flag that says so (None for mm or unknown): a
    file in metres had been read as 0.001 mm voxels, one in microns as 1000 mm voxels."""
    try:
        unit = str(header.get_xyzt_units()[0])
    except Exception:  # an unreadable units field: no unit named, as most files
        return 1.0, None
    factor = _UNITS_IN_MM.get(unit)
    if factor is None:
        return 1.0, None
    word = {"meter": "metres", "micron": "micrometres"}[unit]
    return factor, f"nifti_units: the header gives its lengths in {word}; they were converted to mm"


def choose_transform(
    codes: dict[str, int], transforms: dict[str, NDArray[np.floating]], shape: tuple[int, ...]
) -> tuple[str, str | None]:
    """Which of a header's transforms to read (``"sform"`` or ``"qform"``; at least one code is above 0) and the
    ``nifti_transforms_disagree`` flag where both are coded and place the grid of ``shape`` apart, else None."""
    if not codes["sform"]:
        return "qform", None
    if not codes["qform"]:
        return "sform", None
    # a template's or another scan's sform beside the scanner's qform: the qform is where the patient lay
    which = "qform" if codes["sform"] != SCANNER and codes["qform"] == SCANNER else "sform"
    mm, degrees = transforms_apart(transforms["sform"], transforms["qform"], shape)
    if mm <= DISAGREE_MM and degrees <= DISAGREE_DEGREES:
        return which, None
    named = {k: f"{k} (code {codes[k]}, {XFORM_NAMES.get(codes[k], 'unknown')})" for k in ("sform", "qform")}
    why = "the scanner's transform, the sform not being one" if which == "qform" else "nibabel's rule"
    return which, (
        f"nifti_transforms_disagree: the header's {named['sform']} and {named['qform']} place the image up to "
        f"{mm:.1f} mm and {degrees:.1f}° apart; the {which} was used ({why}); check the header"
    )


def transforms_apart(
    first: NDArray[np.floating], second: NDArray[np.floating], shape: tuple[int, ...]
) -> tuple[float, float]:
    """How far apart two affines place a grid of ``shape``: the largest distance in mm between a corner's two
    positions, and the largest angle in degrees between an axis' two directions (inf where one is not finite or
    singular)."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf"), float("inf")
    corners = np.array([[i, j, k] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1) for k in (0, shape[2] - 1)])
    mm = float(np.max(np.linalg.norm(geometry.apply_affine(a, corners) - geometry.apply_affine(b, corners), axis=1)))
    norms = np.linalg.norm(a[:3, :3], axis=0) * np.linalg.norm(b[:3, :3], axis=0)
    if np.any(norms == 0):
        return mm, float("inf")
    cosines = np.sum(a[:3, :3] * b[:3, :3], axis=0) / norms
    return mm, float(np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0))).max())


def is_default_affine(affine: NDArray[np.float64]) -> bool:
    """Whether ``affine`` only scales the voxel axes (positive sizes), with its origin at the first voxel."""
    m = np.asarray(affine, dtype=float)
    return not (
        np.any(m[:3, 3] != 0) or np.any(m[:3, :3] != np.diag(np.diag(m[:3, :3]))) or np.any(np.diag(m)[:3] <= 0)
    )


def default_affine_flag(affine: NDArray[np.float64], which: str) -> str | None:
    """The flag for a transform that only scales the voxel axes, with its origin at the first voxel: what a program
    writes when given no orientation (nibabel's ``Nifti1Image(array, np.eye(4))``), never a scanner's placement (its
    origin lies near the magnet's centre). The axes it names (the array's first axis left to right, its second back
    to front, its third feet to head) may not be the patient's: a sagittal array stored as displayed and saved this
    way is read as cut across its true axes. None for any other transform."""
    if not is_default_affine(affine):
        return None
    return (
        f"nifti_default_affine: the header's {which} only scales the voxel axes, with its origin at the first voxel "
        "(what a program writes when given no orientation, e.g. nibabel's Nifti1Image(array, numpy.eye(4))), not a "
        "scanner's placement: the axes it names may not be the patient's; check the overlay, or save the file with "
        "its real affine"
    )


def _stored_zooms(path: Path, img: Any) -> tuple[float, ...]:
    """The voxel sizes as the file stores them (pixdim): nibabel replaces a size of 0 by 1 mm when it loads a file,
    saying so only in a log line, which would hide a header without voxel sizes."""
    from nibabel.openers import ImageOpener

    try:
        with ImageOpener(str(path)) as f:
            raw = img.header.__class__.from_fileobj(f, check=False)
        return tuple(float(z) for z in raw["pixdim"][1 : 1 + min(3, len(img.shape))])
    except Exception:  # a header nibabel read but cannot read again unchecked: its own sizes
        return tuple(float(z) for z in img.header.get_zooms()[:3])


def _voxel_size_missing_flag(zooms: tuple[float, ...], shape: tuple[int, ...]) -> str | None:
    """The flag for a qform read with a voxel size of 0 (nibabel's 1 mm in its place), or None. A negative size is
    a size: nibabel's qform takes its absolute value."""
    missing = [i for i, (z, n) in enumerate(zip(zooms, shape)) if n > 1 and not (np.isfinite(z) and z != 0)]
    if not missing:
        return None
    return (
        f"nifti_voxel_size_missing: the header gives no voxel size along array axis {', '.join(map(str, missing))} "
        f"(pixdim {[float(z) for z in zooms]}); 1 mm was assumed, so positions and sizes in mm, and the labels, rest "
        "on that guess"
    )


def as_displayed_affine(shape: tuple[int, ...], zooms: tuple[float, ...], path: Path) -> NDArray[np.float64]:
    """The affine that reads an array the way a picture is read (:func:`openspine.io.image2d.picture_affine`): the
    slice axis (a length-1 axis, else one clearly thicker than the others, else the last) runs left to right, and
    of the two in-plane axes, in the file's order, the first runs head to feet and the second front to back.
    ``zooms`` are the voxel sizes in mm of the array's axes (that of a length-1 axis may be missing: 1 mm)."""
    sizes = [abs(z) if n > 1 or (np.isfinite(z) and z > 0) else 1.0 for z, n in zip(zooms[:3], shape[:3])]
    if not all(np.isfinite(z) and z > 0 for z in sizes):
        raise GeometryError(
            f"'{path}' gives no orientation (sform and qform codes 0) and no usable voxel size (pixdim "
            f"{[float(z) for z in zooms[:3]]}); give it a voxel size or its real orientation"
        )
    probe = Scan(np.broadcast_to(np.zeros((), np.uint8), tuple(shape[:3])), np.diag([*sizes, 1.0]))
    axis = probe.slice_axis
    axis = 2 if axis is None else axis
    first, second = (a for a in range(3) if a != axis)
    affine = np.zeros((4, 4))
    affine[3, 3] = 1.0
    affine[2, first] = -sizes[first]  # head to feet: down the rows, as a picture is shown
    affine[1, second] = -sizes[second]  # front to back: along the columns
    affine[0, axis] = sizes[axis]  # the slices left to right
    return affine


def _series_number(text: str | None) -> int | None:
    """A sidecar's SeriesNumber as a number, None where it is none (text, "²", thousands of digits)."""
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 9:
        return None
    return int(text)
