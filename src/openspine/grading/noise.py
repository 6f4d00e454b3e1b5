"""Image noise, measured: a scan far noisier than any the grader learnt from is flagged where its discs are graded.

Noise moves grades: in a user test, Rician noise of 6 % of the bright level added to the val FastCleverSeg volumes
changed 12 of 24 Pfirrmann grades, 8 by two or more, with nothing said. The noise is measured on the middle
sagittal slice with Immerkær's estimator (the mean absolute response to a Laplacian-difference mask, which cancels
smooth structure), on the tissue's flattest pixels only (the 30 % with the weakest gradient inside the body, so that
edges and text do not count), in units of the tissue's median intensity. ``python scripts/noise_survey.py --split
train``: the SPIDER T2 slices the grader learnt from reach 0.034, the FastCleverSeg volumes 0.038, the 3D scans of
the Spinal Cord Toolbox examples (0.7-1 mm voxels) 0.073-0.115. Added Rician noise of 6 % of the 99.5th percentile
lifts SPIDER slices to 0.09-0.10 (grades move little: in the user test 24 of 172 val grades changed, 4 by two or
more) and 12 % to 0.16 or more (62 of 173 changed, 12 by two or more; the mean absolute difference from the
radiologists' grades rose from 0.44 to 0.73). A scan above :data:`NOISY_ABOVE` carries the flag ``image_noisy``;
its grades are kept (a flag, not a refusal: the answers degrade with noise gradually, and no real scan of the
shared data is that noisy). Pixel-scale noise only: a scan reconstructed on a finer grid than it was acquired (a
256 matrix shown at 512) spreads its noise over neighbouring pixels and reads far lower (12 % of added noise,
then enlarged twofold: 0.02-0.03).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..scan import SagittalView

__all__ = ["NOISY_ABOVE", "noise_flag", "noise_ratio"]

# over three times the noisiest SPIDER T2 slice (0.034), above every shared scan as stored (0.115), below
# 12 % of added Rician noise on any of them (0.16)
NOISY_ABOVE = 0.12
_FOREGROUND = 0.1  # a pixel above this fraction of the slice's 99.5th percentile is tissue
_FLATTEST = 30.0  # the percentile of the gradient below which a tissue pixel counts as flat
_LAPLACE_DIFFERENCE = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
_MIN_PIXELS = 200  # fewer flat tissue pixels than this: no measure


def noise_ratio(plane: NDArray[Any]) -> float | None:
    """The noise of one 2D slice in units of its tissue's median intensity (see the module doc), or None where the
    slice holds too little tissue to measure."""
    m = np.asarray(plane, dtype=np.float64)
    if m.ndim != 2 or min(m.shape) < 8:
        return None
    bright = float(np.percentile(m, 99.5))
    if not np.isfinite(bright) or bright <= 0:
        return None
    tissue = ndimage.binary_erosion(m > _FOREGROUND * bright, iterations=2)
    if np.count_nonzero(tissue) < _MIN_PIXELS:
        return None
    gradient = np.hypot(ndimage.sobel(m, 0), ndimage.sobel(m, 1))
    flat = tissue & (gradient < np.percentile(gradient[tissue], _FLATTEST))
    level = float(np.median(m[tissue]))
    if np.count_nonzero(flat) < _MIN_PIXELS or level <= 0:
        return None
    response = np.abs(ndimage.convolve(m, _LAPLACE_DIFFERENCE, mode="nearest"))
    sigma = np.sqrt(np.pi / 2) * float(np.mean(response[flat])) / 6.0
    return sigma / level


def noise_flag(view: SagittalView) -> str | None:
    """``image_noisy: …`` where the view's middle sagittal slice is noisier than :data:`NOISY_ABOVE`, else None."""
    arr = view.scan.array
    ratio = noise_ratio(np.asarray(arr[:, :, arr.shape[2] // 2]))
    if ratio is None or ratio <= NOISY_ABOVE:
        return None
    return (
        f"image_noisy: the image's noise is about {100 * ratio:.0f} % of its tissue signal, far above the scans the "
        "grader was trained on (at most 4 %): grades may move with it, read them with care"
    )
