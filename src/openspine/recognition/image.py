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


# A line or band drawn over a picture from edge to edge (a stripe of one exact value across the anatomy) is no anatomy:
# read as it is, an 8-pixel white stripe across a cervical slice turned the recogniser's cervical call from 0.99 to
# 0.01 (that slice was then labelled L2 … S1 and graded), a white stripe across a row made a sagittal slice read
# axial, and stripes let upside-down slices through the orientation check. Such bands are filled from the pixels on
# either side before the recognisers read a picture. Real scans have bands of one value too, but in air (stored as one
# value): of the 293 such runs in the 2 972 sagittal slices of the shared data, none has a side that differs from it by
# a tenth of the bright level in any row; a drawn band crosses the anatomy, whose pixels beside it differ along much of
# its length. No band wider than an eighth of the picture is filled (the background between the panels of a figure)
MIN_CROSSED_SHARE = 1 / 3  # of the band's length along which a side differs from it
MIN_SIDE_DIFFERENCE = 0.1  # of the picture's bright level (99.5th percentile)
MAX_FILLED_BAND_SHARE = 0.125


def without_drawn_bands(image: NDArray[Any]) -> NDArray[Any]:
    """``image`` (2D) with the bands drawn across it (:data:`MIN_CROSSED_SHARE`, :data:`MAX_FILLED_BAND_SHARE`) filled
    by linear interpolation between the columns (rows) on either side; the image itself where it has none."""
    a = np.asarray(image)
    if a.ndim != 2 or a.size == 0:
        return a
    out: NDArray[Any] | None = None
    bright: float | None = None
    # columns (a band from top to bottom), rows, then columns again: a row drawn over a column band breaks its one
    # value, which the row's filling restores
    for axis in (1, 0, 1):
        b = a if out is None else out
        b = b if axis == 1 else b.T
        runs = inner_runs(b.min(axis=0) == b.max(axis=0), int(MAX_FILLED_BAND_SHARE * b.shape[1]))
        if not runs:
            continue
        if bright is None:
            finite = a[np.isfinite(a)]
            bright = float(np.percentile(finite, 99.5)) if finite.size else 0.0
        filled = np.array(b, dtype=np.float32)
        changed = False
        for lo, hi in runs:
            left, right = filled[:, lo - 1], filled[:, hi]
            if not crossed_share(left, right, filled[0, lo], bright) >= MIN_CROSSED_SHARE:
                continue  # air beside air
            w = (np.arange(lo, hi, dtype=np.float32) - (lo - 1)) / np.float32(hi - lo + 1)
            filled[:, lo:hi] = left[:, None] + (right - left)[:, None] * w  # exact where both sides agree
            changed = True
        if changed:
            out = filled if axis == 1 else filled.T
    return a if out is None else out


def crossed_share(left: NDArray[Any], right: NDArray[Any], value: float, bright: float) -> float:
    """The share of a band's length (of one ``value``, between the pixels ``left`` and ``right`` of it) along which a
    side differs from it by :data:`MIN_SIDE_DIFFERENCE` of the picture's ``bright`` level: the anatomy it crosses."""
    sides = np.maximum(np.abs(left - value), np.abs(right - value))
    return float(np.mean(sides > MIN_SIDE_DIFFERENCE * abs(bright)))


def inner_runs(uniform: NDArray[np.bool_], max_len: int) -> list[tuple[int, int]]:
    """The ``[start, stop)`` runs of True in ``uniform`` with a False on both sides, at most ``max_len`` long."""
    flags = np.concatenate([[0], uniform.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flags))
    runs = zip(edges[::2], edges[1::2])
    return [(int(lo), int(hi)) for lo, hi in runs if lo > 0 and hi < len(uniform) and hi - lo <= max_len]


def widened(img: NDArray[Any], width: int) -> NDArray[Any]:
    """``img`` with its columns reflected outwards on both sides to ``width`` columns (as it is where wider): an
    augmentation and a test view for the recogniser, whose axial and coronal training cuts are narrow strips."""
    extra = width - img.shape[1]
    if extra <= 0:
        return img
    return np.pad(img, ((0, 0), (extra // 2, extra - extra // 2)), mode="symmetric")
