"""The recogniser's view of a picture: one grey 2D image on a fixed grid of fixed-size pixels.

Any 2D image is resampled (linear, with Gaussian anti-aliasing when shrinking) onto a square grid of
:data:`MODEL_SIZE` × :data:`MODEL_SIZE` pixels of :data:`MODEL_SPACING_MM` mm, centred on the image centre (or on a
chosen point), cropped where the image is larger and padded with zeros where it is smaller. Intensities are then
normalised by the 0.5 / 99.5 percentiles of the pixels the image covers, exactly as the detector normalises
(:func:`openspine.detection.preprocess.normalise`). Training draws its augmented samples through the same
:func:`model_input`, so training and inference cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..detection.preprocess import normalise, sample_grid
from ..errors import ImageContentError

MODEL_SPACING_MM = 2.0
MODEL_SIZE = 128
PLANES: tuple[str, ...] = ("sagittal", "axial", "coronal")
SEQUENCES: tuple[str, ...] = ("T1", "T2", "other")


def model_input(
    image: NDArray[np.generic],
    spacing_mm: tuple[float, float],
    *,
    centre: tuple[float, float] | None = None,
    out_spacing_mm: float = MODEL_SPACING_MM,
    size: int = MODEL_SIZE,
    blur: bool = True,
) -> NDArray[np.float32]:
    """``image`` (rows, cols) with pixels of ``spacing_mm`` → the normalised (size, size) model grid.

    ``centre`` is the (row, col) source pixel the grid is centred on (default: the image centre). Model pixels
    outside the image are 0.
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise ImageContentError(f"the recogniser needs one 2D image, got an array of shape {img.shape}")
    sr, sc = (float(spacing_mm[0]), float(spacing_mm[1]))
    if not (sr > 0 and sc > 0 and np.isfinite(sr) and np.isfinite(sc)):
        raise ImageContentError(f"pixel spacing must be positive and finite, got {spacing_mm}")
    a = img.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    h, w = a.shape
    cr, cc = ((h - 1) / 2.0, (w - 1) / 2.0) if centre is None else (float(centre[0]), float(centre[1]))
    fr, fc = out_spacing_mm / sr, out_spacing_mm / sc  # source pixels per model pixel
    offs = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    rows = cr + offs * fr
    cols = cc + offs * fc
    vr = (rows >= -0.5) & (rows <= h - 0.5)
    vc = (cols >= -0.5) & (cols <= w - 0.5)
    out = np.zeros((size, size), dtype=np.float32)
    if vr.any() and vc.any():
        out[np.ix_(vr, vc)] = sample_grid(a, rows[vr], cols[vc], (fr, fc) if blur else (1.0, 1.0))
    valid = np.outer(vr, vc)
    return normalise(out, valid)


def widened(img: NDArray[Any], width: int) -> NDArray[Any]:
    """``img`` with its columns reflected outwards on both sides to ``width`` columns (as it is where wider): an
    augmentation and a test view for the recogniser, whose axial and coronal training cuts are narrow strips."""
    extra = width - img.shape[1]
    if extra <= 0:
        return img
    return np.pad(img, ((0, 0), (extra // 2, extra - extra // 2)), mode="symmetric")
