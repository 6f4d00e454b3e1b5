"""Endplate corners of a vertebral body (or disc) from its 2D mask on one sagittal slice.

Points are ``(row, col)`` on a sagittal slice of the internal layout (rows superior→inferior, columns
anterior→posterior). All directions are computed in millimetres, so anisotropic pixels are handled.

The four corners are the extreme points of the mask along the diagonal directions ``±u ± v``, where ``u`` is the
spine's inferior direction at this body and ``v`` the posterior direction perpendicular to it. For a convex
quadrilateral whose edges are within 45° of ``u`` and ``v`` this picks its four corners exactly; the estimate
averages the few pixels nearest the extreme so one noisy boundary pixel does not move a corner.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

#: corner order of every outline: anterior-superior, posterior-superior, posterior-inferior, anterior-inferior
CORNER_NAMES: tuple[str, str, str, str] = (
    "anterior_superior",
    "posterior_superior",
    "posterior_inferior",
    "anterior_inferior",
)

DOWN: NDArray[np.float64] = np.array([1.0, 0.0])


def posterior_of(u: NDArray[np.floating]) -> NDArray[np.float64]:
    """The unit vector perpendicular to the inferior direction ``u`` that points posteriorly (+col)."""
    v = np.array([-float(u[1]), float(u[0])])
    if v[1] < 0:
        v = -v
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else np.array([0.0, 1.0])


def unit_down(u: NDArray[np.floating] | None) -> NDArray[np.float64]:
    """Normalise an inferior direction (row component made positive); ``None`` or zero gives straight down."""
    if u is None:
        return DOWN.copy()
    a = np.asarray(u, dtype=float)
    n = float(np.linalg.norm(a))
    if not np.isfinite(n) or n < 1e-9:
        return DOWN.copy()
    a = a / n
    return a if a[0] >= 0 else -a


def quad_corners(
    points: NDArray[Any],
    down: NDArray[np.floating] | None = None,
    spacing: tuple[float, float] = (1.0, 1.0),
    tol_px: float = 0.75,
) -> NDArray[np.float64]:
    """The four corners (AS, PS, PI, AI) of the region covered by ``points``.

    Args:
        points: (N, 2) pixel coordinates (row, col) of the region's pixels.
        down: the spine's inferior direction at this region, in mm (row, col); default straight down.
        spacing: (row, col) pixel size in mm.
        tol_px: pixels whose projection lies within this many pixels of the extreme are averaged.

    Returns:
        (4, 2) corner coordinates in pixels, in the order of :data:`CORNER_NAMES`.
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(pts) == 0:
        return np.full((4, 2), np.nan)
    sp = np.asarray(spacing, dtype=float)
    mm = pts * sp
    u = unit_down(down)
    v = posterior_of(u)
    out = np.empty((4, 2))
    tol = tol_px * float(sp.mean())
    for i, d in enumerate((-u - v, -u + v, u + v, u - v)):
        d = d / np.linalg.norm(d)
        proj = mm @ d
        near = proj >= proj.max() - tol
        out[i] = pts[near].mean(axis=0)
    return out


def mask_corners(
    mask: NDArray[np.bool_], down: NDArray[np.floating] | None = None, spacing: tuple[float, float] = (1.0, 1.0)
) -> NDArray[np.float64]:
    """:func:`quad_corners` of a boolean 2D mask."""
    return quad_corners(np.argwhere(mask), down, spacing)


def principal_down(points: NDArray[Any], spacing: tuple[float, float] = (1.0, 1.0)) -> NDArray[np.float64]:
    """A best guess of the inferior direction from one region alone, for a body without neighbours.

    A lumbar body is wider (antero-posterior) than tall, so the minor principal axis points along the spine; when
    the region is nearly round that axis is meaningless and straight down is returned.
    """
    mm = np.asarray(points, dtype=float).reshape(-1, 2) * np.asarray(spacing, dtype=float)
    if len(mm) < 5:
        return DOWN.copy()
    c = np.cov((mm - mm.mean(axis=0)).T)
    w, vecs = np.linalg.eigh(c)
    if w[1] < 1.3 * max(w[0], 1e-9):
        return DOWN.copy()
    u = unit_down(vecs[:, 0])
    # a body is never tilted by more than ~45° in a sagittal image; beyond that the axes are confused
    return u if u[0] >= np.cos(np.radians(50)) else DOWN.copy()


def spine_directions(centres: NDArray[np.floating], spacing: tuple[float, float] = (1.0, 1.0)) -> NDArray[np.float64]:
    """The inferior direction (in mm) at each of ``centres`` (top-to-bottom (N, 2) pixel coordinates).

    Uses the neighbours' centres (central differences; one-sided at the ends); a single centre gets straight down.
    """
    c = np.asarray(centres, dtype=float).reshape(-1, 2) * np.asarray(spacing, dtype=float)
    n = len(c)
    out = np.tile(DOWN, (n, 1))
    if n < 2:
        return out
    for i in range(n):
        a, b = c[max(i - 1, 0)], c[min(i + 1, n - 1)]
        out[i] = unit_down(b - a)
    return out


def quad_height_mm(corners: NDArray[np.floating], spacing: tuple[float, float] = (1.0, 1.0)) -> float:
    """Mean of the anterior (AS–AI) and posterior (PS–PI) edge lengths of a corner quadrilateral, in mm."""
    c = np.asarray(corners, dtype=float) * np.asarray(spacing, dtype=float)
    return float((np.linalg.norm(c[3] - c[0]) + np.linalg.norm(c[2] - c[1])) / 2.0)


def quad_area(corners: NDArray[np.floating]) -> float:
    """Area of a quadrilateral (shoelace formula), in squared pixel units."""
    c = np.asarray(corners, dtype=float)
    x, y = c[:, 1], c[:, 0]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
