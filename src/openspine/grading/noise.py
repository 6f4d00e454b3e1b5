"""Image noise, measured: a scan far noisier than any the grader learnt from is flagged where its discs are graded.

Noise moves grades: in a user test, Rician noise of 6 % of the bright level added to the val FastCleverSeg volumes
changed 12 of 24 Pfirrmann grades, 8 by two or more, with nothing said. The noise is measured on the central part of
the middle sagittal slice with Immerkær's estimator (the mean absolute response to a Laplacian-difference mask,
which cancels smooth structure), on the tissue's flattest pixels only (the 30 % with the weakest gradient, so that
edges and text do not count), in units of the tissue's median intensity. ``python scripts/noise_survey.py --split
train``: the SPIDER T2 slices the grader learnt from reach 0.053, the FastCleverSeg volumes 0.041, the SPIDER T1
slices 0.074, the 3D scans of the Spinal Cord Toolbox examples (0.7-1 mm voxels) 0.087-0.167. Added Rician noise of
6 % of the 99.5th percentile lifts SPIDER slices to 0.095 or more (median 0.126; in the user test 24 of 172 val
grades changed, 4 by two or more) and 12 % to 0.178 or more (median 0.228; 62 of 173 changed, 12 by two or more, the
mean absolute difference from the radiologists' grades rising from 0.44 to 0.73). A scan above :data:`NOISY_ABOVE`
carries the flag ``image_noisy``; its grades are kept (a flag, not a refusal: the answers degrade with noise
gradually, and no real scan of the shared data is that noisy). Pixel-scale noise only: a scan reconstructed on a
finer grid than it was acquired (a 256 matrix shown at 512) spreads its noise over neighbouring pixels and reads far
lower (SPIDER val slices with 12 % added, then enlarged twofold: 0.011-0.036).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..scan import SagittalView

__all__ = ["NOISY_ABOVE", "noise_flag", "noise_ratio"]

# nearly four times the noisiest SPIDER T2 slice (0.053), above every shared scan as stored (0.167), reached by
# most SPIDER slices with 12 % of Rician noise added (median 0.228)
NOISY_ABOVE = 0.2
_FOREGROUND = 0.1  # a pixel above this fraction of the slice's 99.5th percentile is tissue
_FLATTEST = 30.0  # the percentile of the gradient below which a tissue pixel counts as flat
_MIN_PIXELS = 200  # fewer flat tissue pixels than this: no measure
_CENTRAL = 0.6  # the share of each side of the slice that is read, about its centre
HOT_ABOVE = 2.0  # voxels brighter than this many times the 99.5th percentile are read at that value (outliers)


def noise_ratio(plane: NDArray[Any]) -> float | None:
    """The noise of one 2D slice in units of its tissue's median intensity (see the module doc), or None where the
    slice holds too little tissue to measure. Read on the slice's central part (:data:`_CENTRAL` of each side, where
    the spine and the tissue around it lie), in float32, with finite differences for the gradient: a few ms."""
    m = np.asarray(plane)
    if m.ndim != 2 or min(m.shape) < 16:
        return None
    r0, c0 = (int(n * (1 - _CENTRAL) / 2) for n in m.shape)
    m = m[r0 : m.shape[0] - r0, c0 : m.shape[1] - c0].astype(np.float32)
    bright = float(np.percentile(m, 99.5))
    if not np.isfinite(bright) or bright <= 0:
        return None
    # a lone hot voxel (1e6 in a slice of hundreds) enters the Laplacian response of its flat diagonal neighbours and
    # had lifted the mean into the flag on 5 of 22 real scans (user test); tissue never reaches twice the 99.5th
    # percentile, so this changes no real scan's measure
    m = np.minimum(m, np.float32(HOT_ABOVE * bright))
    inner = m[1:-1, 1:-1]
    # the Laplacian-difference response, from shifted views (no convolution pass)
    response = np.abs(
        m[:-2, :-2]
        + m[:-2, 2:]
        + m[2:, :-2]
        + m[2:, 2:]
        - 2 * (m[:-2, 1:-1] + m[2:, 1:-1] + m[1:-1, :-2] + m[1:-1, 2:])
        + 4 * inner
    )
    gradient = np.abs(m[2:, 1:-1] - m[:-2, 1:-1]) + np.abs(m[1:-1, 2:] - m[1:-1, :-2])
    tissue = inner > _FOREGROUND * bright
    if np.count_nonzero(tissue) < _MIN_PIXELS:
        return None
    flat = tissue & (gradient < np.percentile(gradient[tissue], _FLATTEST))
    level = float(np.median(inner[tissue]))
    if np.count_nonzero(flat) < _MIN_PIXELS or level <= 0:
        return None
    sigma = np.sqrt(np.pi / 2) * float(np.mean(response[flat], dtype=np.float64)) / 6.0
    return sigma / level


def noise_flag(view: SagittalView) -> str | None:
    """``image_noisy: …`` where the view's middle sagittal slice is noisier than :data:`NOISY_ABOVE`, else None."""
    arr = view.scan.array
    ratio = noise_ratio(np.asarray(arr[:, :, arr.shape[2] // 2]))
    if ratio is None or ratio <= NOISY_ABOVE:
        return None
    return (
        f"image_noisy: the image's noise is about {100 * ratio:.0f} % of its tissue signal, far above the scans the "
        "grader was trained on (at most 5 %): grades may move with it, read them with care"
    )
