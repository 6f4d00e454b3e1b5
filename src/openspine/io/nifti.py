"""NIfTI reader (.nii, .nii.gz): 3D volumes and single slices, the affine taken from the header.

A header whose sform and qform codes are both 0 gives no orientation (nibabel then makes one up from the voxel
sizes). Such a file is read as a picture is: each slice as displayed, its first in-plane axis head to feet and its
second front to back, the slices left to right (:func:`as_displayed_affine`), and ``ScanSource.orientation_unknown``
says so; the analysis judges its plane from the image, as a picture's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import geometry
from ..errors import GeometryError, ScanReadError, UnsupportedScanError
from ..scan import Scan, ScanSource

ORIENTATION_UNKNOWN = (
    "the NIfTI's sform and qform codes are 0, so its header gives no orientation; each slice was read as a picture "
    "is, as displayed (rows head to feet, columns front to back), its plane judged from the image, and positions in "
    "mm are in that assumed frame, not the patient's"
)


def read_nifti(path: Path) -> Scan:
    import nibabel as nib

    try:
        img: Any = nib.load(str(path))
        shape = tuple(int(n) for n in img.shape)
        if 0 in shape:  # nibabel reads an empty image as shape (0,), which would hide the header's shape
            raise UnsupportedScanError(f"'{path}' holds no voxels: its header gives the shape {shape}")
        arr = np.asanyarray(img.dataobj)
    except UnsupportedScanError:
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
    header = img.header
    codes = {"sform": int(header.get("sform_code", 0) or 0), "qform": int(header.get("qform_code", 0) or 0)}
    if not any(codes.values()):
        zooms = tuple(float(z) for z in header.get_zooms()[:3]) + (1.0,) * (3 - len(header.get_zooms()[:3]))
        source = ScanSource(path=str(path), format="nifti", orientation_unknown=ORIENTATION_UNKNOWN)
        return Scan(arr, as_displayed_affine(arr.shape, zooms, path), source)
    affine = img.affine
    if affine is None:
        raise ScanReadError(f"'{path}' has no usable affine in its header")
    affine = np.asarray(affine, dtype=float)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        which = "sform" if codes["sform"] else "qform"
        raise GeometryError(
            f"'{path}' has no usable orientation: the {which} of its header (code {codes[which]}) is singular or "
            f"not finite: {geometry.matrix_text(affine)}; fix the header's {which}"
        )
    return Scan(arr, affine, ScanSource(path=str(path), format="nifti"))


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
