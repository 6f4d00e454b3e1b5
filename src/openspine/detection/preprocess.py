"""Slice preprocessing shared by inference and training: intensity normalisation and in-plane resampling.

The detector sees each sagittal slice resampled to its own square pixel size (``spacing_mm`` in the model card)
and normalised by the slice's 0.5 / 99.5 percentiles to [0, 1]. Training uses the very same
:func:`normalise` so the two can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

PERCENTILES: tuple[float, float] = (0.5, 99.5)


def normalise(img: NDArray[np.floating], valid: NDArray[np.bool_] | None = None) -> NDArray[np.float32]:
    """Map the 0.5 / 99.5 percentiles of ``img`` (over ``valid`` pixels, default all) to 0 / 1 and clip to [0, 1]."""
    a = np.asarray(img, dtype=np.float32)
    vals = a[valid] if valid is not None else a
    if vals.size == 0:
        return np.zeros_like(a)
    lo, hi = np.percentile(vals, PERCENTILES)
    if not hi > lo:
        hi = lo + 1.0
    out = (a - np.float32(lo)) / np.float32(hi - lo)
    np.clip(out, 0.0, 1.0, out=out)
    if valid is not None:
        out[~valid] = 0.0
    return out


@dataclass(frozen=True)
class PlaneGrid:
    """How the model grid of one slice maps to the slice's own pixels (separately per axis).

    A model pixel ``p`` along an axis sits at slice pixel ``scale * p + offset``; both grids cover the same field
    of view and share their centre (pixel centres at ``(i + 0.5) * spacing``).
    """

    shape: tuple[int, int]  # model grid size (rows, cols), before padding
    padded: tuple[int, int]  # after padding to a multiple of the network stride (zeros at bottom / right)
    scale: tuple[float, float]  # slice pixels per model pixel (rows, cols)
    offset: tuple[float, float]

    def to_slice(self, pts: NDArray[np.floating]) -> NDArray[np.float64]:
        """Model-grid (row, col) points → slice pixel (row, col)."""
        p = np.asarray(pts, dtype=float)
        return p * np.asarray(self.scale) + np.asarray(self.offset)

    def to_model(self, pts: NDArray[np.floating]) -> NDArray[np.float64]:
        """Slice pixel (row, col) points → model-grid (row, col)."""
        p = np.asarray(pts, dtype=float)
        return (p - np.asarray(self.offset)) / np.asarray(self.scale)


def plane_grid(
    in_shape: tuple[int, int], in_spacing: tuple[float, float], model_spacing: float, multiple: int
) -> PlaneGrid:
    """The model grid for a slice of ``in_shape`` pixels of ``in_spacing`` mm."""
    shape = tuple(max(1, int(np.ceil(n * s / model_spacing - 1e-6))) for n, s in zip(in_shape, in_spacing))
    padded = tuple(int(np.ceil(n / multiple) * multiple) for n in shape)
    scale = tuple(model_spacing / s for s in in_spacing)
    # centre-aligned: model pixel p covers mm [(p) * ms, (p + 1) * ms) from the same origin as the slice
    offset = tuple(0.5 * sc - 0.5 for sc in scale)
    return PlaneGrid((int(shape[0]), int(shape[1])), (int(padded[0]), int(padded[1])), scale, offset)  # type: ignore[arg-type]


# a step of this many pixels or more first averages blocks of a quarter of it: a Gaussian of sigma (step - 1) / 2
# over an 8000-pixel picture had taken minutes; a block's own blur is far below that sigma, which tops it up
BLOCK_FROM_STEP = 8


def sample_grid(
    img: NDArray[np.floating], rows: NDArray[np.floating], cols: NDArray[np.floating], step: tuple[float, float]
) -> NDArray[np.float32]:
    """``img`` sampled (linear) at the grid of source pixel coordinates ``rows`` × ``cols`` whose points lie
    ``step`` source pixels apart (rows, cols), anti-aliased: blurred first with a Gaussian of ``(step - 1) / 2``
    pixels so small pixels do not alias. Outside the image the nearest edge pixel is taken."""
    a = np.asarray(img, dtype=np.float32)
    r, c = np.asarray(rows, dtype=float), np.asarray(cols, dtype=float)
    blocks = tuple(max(1, int(f // (BLOCK_FROM_STEP // 2))) if f >= BLOCK_FROM_STEP else 1 for f in step)
    sigma = [max(0.0, (f - 1.0) / 2.0) for f in step]
    if blocks != (1, 1):
        (kr, kc), (h, w) = blocks, a.shape
        padded = np.pad(a, ((0, -h % kr), (0, -w % kc)), mode="edge")
        a = padded.reshape(padded.shape[0] // kr, kr, padded.shape[1] // kc, kc).mean(axis=(1, 3), dtype=np.float32)
        # block j averages source pixels j·k … j·k + k − 1 (centre j·k + (k − 1) / 2), a blur of variance (k² − 1) / 12
        r, c = (r - (kr - 1) / 2.0) / kr, (c - (kc - 1) / 2.0) / kc
        sigma = [float(np.sqrt(max(0.0, s * s - (k * k - 1) / 12.0))) / k for s, k in zip(sigma, blocks)]
    if max(sigma) > 0.05:
        a = ndimage.gaussian_filter(a, sigma=sigma, mode="nearest")
    rr, cc = np.meshgrid(r, c, indexing="ij")
    out: NDArray[np.float32] = ndimage.map_coordinates(
        a, np.stack([rr, cc]), order=1, mode="nearest", prefilter=False
    ).astype(np.float32, copy=False)
    return out


def resample_slices(
    slices: NDArray[np.floating], in_spacing: tuple[float, float], grid: PlaneGrid
) -> NDArray[np.float32]:
    """Resample (N, H, W) slices onto the model grid with linear interpolation and anti-aliasing
    (:func:`sample_grid`), then pad with zeros."""
    stack = np.asarray(slices, dtype=np.float32)
    n = stack.shape[0]
    out = np.zeros((n, *grid.padded), dtype=np.float32)
    rows = grid.to_slice(np.stack([np.arange(grid.shape[0]), np.zeros(grid.shape[0])], 1))[:, 0]
    cols = grid.to_slice(np.stack([np.zeros(grid.shape[1]), np.arange(grid.shape[1])], 1))[:, 1]
    for i in range(n):
        out[i, : grid.shape[0], : grid.shape[1]] = sample_grid(stack[i], rows, cols, grid.scale)
    return out


def choose_slices(n_slices: int, slice_spacing: float, target_mm: float = 3.0, max_slices: int = 32) -> list[list[int]]:
    """Which input slices to run the network on, as groups averaged into one network input.

    Thick-slice series (≥ ``target_mm``) run on every slice. Thin-slice volumes are grouped into slabs of about
    ``target_mm`` (averaging a slab mimics the thick clinical slices the model was trained for and saves time);
    at most ``max_slices`` slabs, spread evenly, are used.
    """
    if n_slices <= 0:
        return []
    width = max(1, round(float(target_mm / max(slice_spacing, 1e-6))))
    groups = [list(range(s, min(s + width, n_slices))) for s in range(0, n_slices, width)]
    if len(groups) > max_slices:
        pick = np.linspace(0, len(groups) - 1, max_slices).round().astype(int)
        groups = [groups[i] for i in sorted(set(pick.tolist()))]
    return groups
