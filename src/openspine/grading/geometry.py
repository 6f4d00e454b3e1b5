"""From a detection to the endplate geometry of one disc (:class:`~openspine.detection.types.DiscGeometry`).

The grader needs, for each disc, the two corners of the upper body's inferior endplate and of the lower body's
superior endplate on the disc's mid-sagittal slice, in the internal layout. In order of preference:

0. the detector's own internal geometry (:attr:`Detection.disc_geometry`, one record per disc, same order);
1. the disc's own outline (:class:`~openspine.results.SliceOutline`) on its mid-sagittal slice – a disc outline's
   corners are, in order, the upper body's anterior-inferior and posterior-inferior corners and the lower body's
   posterior-superior and anterior-superior corners;
2. otherwise the outlines of the two labelled vertebrae around the disc on a slice they share.

Outline corners are stored in the *input* voxel grid (as results are), so they are mapped to the internal layout
with the view's exact transform.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..detection.types import Detection, DiscGeometry
from ..errors import GeometryError
from ..results import SliceOutline
from ..scan import SagittalView


def _internal(view: SagittalView, outline: SliceOutline) -> np.ndarray:
    """The outline's four corners as internal (row, col, slice) voxel coordinates, shape (4, 3)."""
    return np.asarray(view.from_input_voxel(np.asarray(outline.corners_voxel, dtype=float)), dtype=float)


def _mid_outline(outlines: Sequence[SliceOutline], mid: float | None) -> SliceOutline:
    if mid is None:
        ks = sorted(o.slice_index for o in outlines)
        mid = ks[len(ks) // 2]
    return min(outlines, key=lambda o: abs(o.slice_index - mid))


def _check(points: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(points)):
        raise GeometryError(f"{what} has non-finite corner coordinates")


def disc_geometry(view: SagittalView, detection: Detection, index: int) -> DiscGeometry:
    """The endplate geometry of ``detection.discs[index]`` in the internal layout.

    Raises:
        GeometryError: the detection has no outline for this disc nor for both of its neighbouring vertebrae, or
            the geometry it has is not finite.
    """
    if len(detection.disc_geometry) == len(detection.discs):
        g = detection.disc_geometry[index]
        _check(g.points(), "the detector's disc geometry")
        return g.endplates()
    return _from_outlines(view, detection, index)


def _from_outlines(view: SagittalView, detection: Detection, index: int) -> DiscGeometry:
    """The disc's geometry from its own outline, else from its two neighbouring vertebrae's outlines."""
    disc = detection.discs[index]
    centroid = view.from_input_voxel(np.asarray(disc.centroid_voxel, dtype=float))
    mid = float(centroid[2]) if np.all(np.isfinite(centroid)) else None
    if disc.outlines:
        o = _mid_outline(disc.outlines, mid)
        c = _internal(view, o)
        _check(c, "the disc outline")
        k = round(float(np.median(c[:, 2])))
        # disc outline corners: AS (= upper AI), PS (= upper PI), PI (= lower PS), AI (= lower AS)
        return DiscGeometry(
            upper_anterior=(float(c[0, 0]), float(c[0, 1])),
            upper_posterior=(float(c[1, 0]), float(c[1, 1])),
            lower_anterior=(float(c[3, 0]), float(c[3, 1])),
            lower_posterior=(float(c[2, 0]), float(c[2, 1])),
            slice_index=k,
        )
    level = disc.level
    if level is None:
        raise GeometryError("the disc has no outline and no level to find its vertebrae by")
    by_label = {v.label: v for v in detection.vertebrae if v.label is not None and v.outlines}
    up, lo = by_label.get(level.upper_vertebra), by_label.get(level.lower_vertebra)
    if up is None or lo is None:
        raise GeometryError("no outline of the disc or of both neighbouring vertebrae")
    shared = {o.slice_index for o in up.outlines} & {o.slice_index for o in lo.outlines}
    if not shared:
        raise GeometryError("the neighbouring vertebrae have no outline on a common slice")
    target = mid if mid is not None else float(sorted(shared)[len(shared) // 2])
    k0 = min(shared, key=lambda k: abs(k - target))
    cu = _internal(view, next(o for o in up.outlines if o.slice_index == k0))
    cl = _internal(view, next(o for o in lo.outlines if o.slice_index == k0))
    _check(cu, "the upper vertebra's outline")
    _check(cl, "the lower vertebra's outline")
    # vertebra outline corners: AS, PS, PI, AI
    return DiscGeometry(
        upper_anterior=(float(cu[3, 0]), float(cu[3, 1])),
        upper_posterior=(float(cu[2, 0]), float(cu[2, 1])),
        lower_anterior=(float(cl[0, 0]), float(cl[0, 1])),
        lower_posterior=(float(cl[1, 0]), float(cl[1, 1])),
        slice_index=round(float(np.median(np.concatenate([cu[:, 2], cl[:, 2]])))),
    )
