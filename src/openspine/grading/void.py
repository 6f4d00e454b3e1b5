"""Signal voids: a disc, or a vertebral body beside it, that the image shows as black as air.

Metal (a titanium cage, screws, a disc prosthesis) and bone cement (vertebroplasty) leave no MR signal: the tissue
under them reads at the noise floor, and the grader, trained on native discs only, reads such a hole as a dark, worn
disc (a void drawn into a real slice's L4-L5 disc was graded Pfirrmann 4 with an endplate defect, without a word).
Native discs never get there: on the 1 759 discs of the shared train scans (SPIDER T2 and T1 slices, the
FastCleverSeg volumes; ``python scripts/void_survey.py``) at most 32 % of a disc's samples and 12 % of a
neighbouring body's lie below :data:`VOID_LEVEL`, the darkest of them included. A disc whose samples,
or a neighbouring body's, lie there for :data:`VOID_SHARE` or more is therefore not graded, and says why.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..detection.types import DiscGeometry
from .crop import DiscFrame, disc_frame, sample_plane
from .intensity import within_border

__all__ = ["VOID_LEVEL", "VOID_SHARE", "bright_level", "signal_void", "void_shares"]

# a sample darker than this fraction of the slice's bright level (99th percentile of its non-zero pixels) is void
VOID_LEVEL = 0.02
# the share of a region's samples that makes it a void (native train discs reach 0.32, their bodies 0.12)
VOID_SHARE = 0.5
# the regions measured, as (across the disc, fractions of its width; along it, from the disc's mid-height): the
# disc itself (its middle 80 % of height) and the bands of the bodies above and below that the crop's intensity
# reference is read from (crop.body_reference)
_ACROSS = (-0.45, 0.45)


# the bright level is read from about this many of the slice's pixels (every k-th row and column): the same
# percentile, at a fraction of the time of sorting a whole 512 × 512 slice for every disc
_BRIGHT_SAMPLE = 1 << 14


def _frame_points(
    fr: DiscFrame, spacing_rc: tuple[float, float], along_mm: tuple[float, float]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(rows, cols) of the region's sample grid: across the disc, fractions of its width; along it, mm."""
    a = np.linspace(_ACROSS[0], _ACROSS[1], 19) * fr.width_mm
    d = np.linspace(along_mm[0], along_mm[1], 9)
    aa, dd = np.meshgrid(a, d)
    x = fr.centre[0] + aa * fr.u[0] + dd * fr.v[0]
    y = fr.centre[1] + aa * fr.u[1] + dd * fr.v[1]
    return y / spacing_rc[0], x / spacing_rc[1]


def bright_level(plane: NDArray[Any]) -> float:
    """The 99th percentile of the slice's non-zero pixels (0 where it has none), read on a regular subsample."""
    step = max(1, int(np.sqrt(plane.size / _BRIGHT_SAMPLE)))
    sample = np.asarray(plane[::step, ::step])
    positive = sample[sample > 0]
    return float(np.percentile(positive, 99)) if positive.size else 0.0


def void_shares(plane: NDArray[Any], geometry: DiscGeometry, spacing_rc: tuple[float, float]) -> dict[str, float]:
    """The share of void samples (below :data:`VOID_LEVEL` of the slice's bright level) in the disc and in the
    bands of the vertebral bodies above and below it, on the disc's mid-sagittal ``plane`` (internal layout).
    Samples falling outside the image or on a padding border are left out.

    Raises:
        GeometryError: the disc's corners give no frame (:func:`~openspine.grading.crop.disc_frame`).
    """
    pl = np.asarray(plane, dtype=np.float32)
    fr = disc_frame(geometry, spacing_rc)
    bright = bright_level(pl)
    h, w = fr.height_mm / 2, fr.width_mm
    regions = {
        "disc": (-0.8 * h, 0.8 * h),
        "body above": (-h - 0.4 * w, -h - 0.1 * w),
        "body below": (h + 0.1 * w, h + 0.4 * w),
    }
    # samples count inside the image only, and not on a padding border (the rows and columns at its edges holding
    # nothing but the darkest value: a SPIDER slice's top rows above a cut body are black padding, not a void)
    inner = within_border(pl, float(pl.min())) if pl.size else None
    top, left, kept = inner if inner is not None else (0, 0, pl[:0, :0])
    out = {}
    for name, along in regions.items():
        rows, cols = _frame_points(fr, spacing_rc, along)
        # whole pixels inside: a sample interpolated with the zeros beyond the edge would read dark
        within = (rows >= top) & (rows <= top + kept.shape[0] - 1)
        within &= (cols >= left) & (cols <= left + kept.shape[1] - 1)
        if bright <= 0 or not within.any():
            out[name] = 0.0
            continue
        values = sample_plane(pl, rows, cols)
        out[name] = float(np.mean(values[within] < VOID_LEVEL * bright))
    return out


def signal_void(plane: NDArray[Any], geometry: DiscGeometry, spacing_rc: tuple[float, float]) -> str | None:
    """Why the disc must not be graded because it, or a vertebral body beside it, is a signal void (metal, bone
    cement), else ``None`` (see the module's text)."""
    shares = void_shares(plane, geometry, spacing_rc)
    void = [name for name, share in shares.items() if share >= VOID_SHARE]
    if not void:
        return None
    where = " and the ".join(void)
    share = max(shares[n] for n in void)
    return (
        f"a signal void fills the {where}, {share:.0%} of it as dark as air, as metal or bone cement leave it; "
        "the grader was trained on native discs only"
    )
