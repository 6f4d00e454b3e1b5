"""NIfTI reader (.nii, .nii.gz): 3D volumes and single slices, the affine taken from the header."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ScanReadError, UnsupportedScanError
from ..scan import Scan, ScanSource


def read_nifti(path: Path) -> Scan:
    import nibabel as nib

    try:
        img: Any = nib.load(str(path))
        arr = np.asanyarray(img.dataobj)
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
    affine = img.affine
    if affine is None:
        raise ScanReadError(f"'{path}' has no usable affine in its header")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return Scan(arr, np.asarray(affine, dtype=float), ScanSource(path=str(path), format="nifti"))
