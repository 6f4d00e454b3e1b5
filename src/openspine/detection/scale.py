"""A picture's pixel size read from its anatomy, for pictures nobody gave one (``--pixel-spacing auto``).

A PNG or JPEG carries no geometry. The detector was trained at one pixel size and finds bodies confidently only
near the right scale, so the picture is tried at a series of pixel sizes (picture heights of
:data:`HEIGHTS_MM`, a factor :data:`STEP` apart) and the size whose bodies score highest in sum is kept, refined
between its neighbours. That estimate is averaged (on a log scale) with a second one from the anatomy: the bodies
found there lie a median :data:`BODY_PITCH_MM` apart, centre to centre (the median of the SPIDER train slices).
This settles the scale well enough to detect and label; positions and lengths in mm carry the estimate's error
(vertebrae differ in size between people), and some grades move with it (``docs/reading-scans.md`` gives both).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..geometry import MAX_EXTENT_MM
from ..scan import Scan
from ..scope import body_columns
from ..vocabulary import LOW_SCORE
from .detect import detect

HEIGHTS_MM = (120.0, 800.0)  # picture heights tried: a tight crop of L1-S1 … a whole spine
STEP = 1.1
BODY_PITCH_MM = 34.0  # median centre-to-centre distance of neighbouring bodies (T10 … S1), SPIDER train slices
# the same distance in the cervical spine: 17.5–18 mm per level between the SCT cord points (C3–C5, C3–T4)
CERVICAL_BODY_PITCH_MM = 17.5
SURE_BODY = LOW_SCORE  # bodies scored at least this (not drawn as low-confidence) count for the pitch
MIN_SURE_BODIES = 3  # a size is considered only where at least this many sure bodies are found
FALLBACK_HEIGHT_MM = 300.0  # without an estimate, the picture is read as this tall (a common lumbar field of view)


@dataclass(frozen=True)
class ScaleEstimate:
    """The estimated pixel size (mm, square pixels; None when no size showed a column of
    :data:`MIN_SURE_BODIES` sure bodies) and the summed body score counted at each size tried."""

    spacing_mm: float | None
    tried: tuple[tuple[float, float], ...]  # (pixel size mm, summed body score)


def with_pixel_size(scan: Scan, spacing_mm: float) -> Scan:
    """The same picture with square pixels of ``spacing_mm`` (its first two axes rescaled, the layout kept)."""
    aff = np.array(scan.affine, dtype=float)
    for axis in (0, 1):
        aff[:3, axis] *= spacing_mm / float(np.linalg.norm(aff[:3, axis]))
    return Scan(scan.array, aff, scan.source)


def largest_size(rows: int, cols: int) -> float:
    """The largest pixel size at which a picture of ``rows`` × ``cols`` pixels stays within what the detector reads
    (:data:`~openspine.geometry.MAX_EXTENT_MM` on its longer side): a wide, short picture (a turned axial cut, a
    strip of several slices) must not be blown up past it by a size chosen for its height."""
    return MAX_EXTENT_MM / max(rows, cols, 1)


def fallback_size(rows: int, cols: int = 0) -> float:
    """The pixel size that makes a picture of ``rows`` rows :data:`FALLBACK_HEIGHT_MM` tall (at most
    :func:`largest_size`)."""
    return min(FALLBACK_HEIGHT_MM / max(rows, 1), largest_size(rows, cols))


def candidate_sizes(rows: int, cols: int = 0) -> np.ndarray:
    """Pixel sizes (mm) that make a picture of ``rows`` rows :data:`HEIGHTS_MM` tall, a factor :data:`STEP` apart,
    up to :func:`largest_size`."""
    lo, hi = HEIGHTS_MM
    n = int(np.floor(np.log(hi / lo) / np.log(STEP))) + 1
    sizes = lo * STEP ** np.arange(n) / max(rows, 1)
    return sizes[sizes <= largest_size(rows, cols)]


def _pitches(centres_mm: list[tuple[float, float]]) -> np.ndarray:
    """The distances (mm) between neighbouring bodies of each column: two panels of a spine side by side (a T1 | T2
    figure) must not be measured across, from one panel's body to the other's (the estimate then fell to a size at
    which no body is found, and the picture was refused as showing none, not as two spines side by side)."""
    columns = [np.asarray(col) for col in body_columns(centres_mm) if len(col) > 1]
    gaps = [np.linalg.norm(np.diff(col, axis=0), axis=1) for col in columns]
    return np.concatenate(gaps) if gaps else np.zeros(0)


def estimate_pixel_size(scan: Scan, model: str | os.PathLike[str] | None = None) -> ScaleEstimate:
    """Estimate the pixel size of a one-slice picture (as :func:`openspine.load_scan` reads it: rows head to feet)
    from where the detector (``model``; None = built-in) finds its vertebral bodies most surely, and from how far
    apart they lie."""
    rows, cols = (int(n) for n in scan.array.shape[:2])
    sizes = candidate_sizes(rows, cols)
    support, pitch_px = [], []
    for s in sizes:
        detection = detect(with_pixel_size(scan, float(s)).to_sagittal(), model=model)
        bodies = detection.vertebrae
        sure = [
            (g.centre[0] * float(s), g.centre[1] * float(s))
            for v, g in zip(bodies, detection.vertebra_geometry)
            if v.score >= SURE_BODY
        ]
        # a size counts only where it shows a column of bodies: one body-like blob (an axial cut through a
        # vertebra, a coronal kidney) is no spine, and must not set the scale at which the plane is then judged
        support.append(sum(v.score for v in bodies) if len(sure) >= MIN_SURE_BODIES else 0.0)
        gaps = _pitches(sure) if len(sure) >= 3 else np.zeros(0)
        pitch_px.append(float(np.median(gaps)) / float(s) if len(gaps) else float("nan"))
    y = np.array(support)
    tried = tuple((round(float(s), 4), round(float(v), 3)) for s, v in zip(sizes, y))
    if not np.any(y > 0):
        return ScaleEstimate(None, tried)
    k = int(np.argmax(y))
    offset = 0.0
    if 0 < k < len(sizes) - 1:  # the peak of a parabola through the best size and its neighbours (log scale)
        curvature = y[k - 1] - 2 * y[k] + y[k + 1]
        offset = float(np.clip(0.5 * (y[k - 1] - y[k + 1]) / curvature, -0.5, 0.5)) if curvature < 0 else 0.0
    by_score = float(sizes[k] * STEP**offset)
    if not np.isfinite(pitch_px[k]) or pitch_px[k] <= 0:
        return ScaleEstimate(by_score, tried)
    return ScaleEstimate(min(float(np.sqrt(by_score * BODY_PITCH_MM / pitch_px[k])), largest_size(rows, cols)), tried)
