"""White drawn over a disc in a grey picture: a measuring line, an arrow or an outline that the grader would read as
anatomy.

Colour is found by its chroma (:mod:`.colour`); a drawing in white is not, yet a calliper drawn across a disc makes it
read brighter (``python scripts/drawing_survey.py``: on the train pictures a white line across L4-L5 changed its
Pfirrmann grade in 47 of 115). A white drawing is a stroke: pixels at the top of the picture's range, narrower than
:data:`THIN_PX` pixels (no square of that size fits inside), running on for :data:`MIN_LENGTH_MM` or more, much
brighter than the pixels beside it; the white area it runs into, where no larger than a few times the stroke (an
arrowhead), belongs to it. Bright anatomy is mostly areas (fluid and fat left white by a window), and its thin rims
are dimmer only a little beside them. What remains alike is the thin white band of fluid in the spinal canal: it runs
along the spine, behind the discs. So a stroke counts against a disc where it runs across the disc (within 45° of its
endplates: callipers, an arrow from the front, the long sides of an outline) and reaches beyond the disc's core (the
nucleus of a flat disc, left white by a window, is a thin band across it too, but stays within its dark annulus), or
where it lies inside the disc itself (a line across its height). Where :data:`MIN_STROKE_MM2` or more of such strokes
lie in the region a disc's grader crop covers, that disc is not graded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..detection.types import DiscGeometry
from ..scan import SagittalView
from .colour import in_crop
from .crop import CropSpec, disc_frame

__all__ = ["MIN_STROKE_MM2", "Stroke", "StrokeCheck", "strokes"]

THIN_PX = 5  # a stroke is narrower than this (pixels): a drawing tool's line is 1–4 pixels wide
MIN_LENGTH_MM = 4.0  # it is longer than this along its main direction
MIN_LENGTH_PX = 12  # and than this many pixels (a tiny picture's noise)
BRIGHT_SHARE = 0.06  # of the picture's range below its top value still counts as white (a JPEG's blur)
MIN_CONTRAST = 0.4  # the pixels beside it are darker than its own by this share of the range (median)
DISC_CORE = 0.9  # a disc's nucleus stays within this share of its width (the annulus is dark on either side)
ACROSS = float(np.cos(np.radians(45.0)))  # a stroke within 45° of a disc's endplates runs across it
MAX_HEAD = 3.0  # the white area a stroke is part of, up to this many times its size, is drawn with it (a head)
MIN_STROKE_MM2 = 2.0  # strokes in a disc's crop region that withhold its grades


@dataclass(frozen=True)
class Stroke:
    """One white stroke of a plane: its pixels and its main direction (unit vector, x = column mm, y = row mm)."""

    rows: NDArray[np.int64]
    cols: NDArray[np.int64]
    direction: NDArray[np.float64]


def strokes(plane: NDArray[Any], spacing_rc: tuple[float, float]) -> list[Stroke]:
    """The white strokes of a 2D grey plane (see the module's description)."""
    a = np.asarray(plane)
    if a.ndim != 2 or a.size == 0:
        return []
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        if not finite.any():
            return []
        lo, hi = float(a[finite].min()), float(a[finite].max())
    else:
        finite, lo, hi = None, float(a.min()), float(a.max())
    if hi <= lo:
        return []
    bright = a >= hi - BRIGHT_SHARE * (hi - lo)
    if finite is not None:
        bright &= finite
    # an opening by a THIN_PX square, as separable minimum and maximum filters (the same pixels, a few times faster)
    opened = ndimage.maximum_filter(ndimage.minimum_filter(bright.view(np.uint8), THIN_PX, mode="constant"), THIN_PX)
    thin = bright & ~opened.astype(bool)
    labels, _ = ndimage.label(thin, structure=np.ones((3, 3), dtype=bool))
    sr, sc = float(spacing_rc[0]), float(spacing_rc[1])
    sizes = np.bincount(labels.ravel())
    boxes = ndimage.find_objects(labels)
    # most pieces are specks: too few pixels, or a box too small to hold the length, before any fitting
    candidates = [
        i
        for i, box in enumerate(boxes, start=1)
        if box is not None
        and sizes[i] >= MIN_LENGTH_PX
        and np.hypot(box[0].stop - box[0].start, box[1].stop - box[1].start) >= MIN_LENGTH_PX
        and np.hypot((box[0].stop - box[0].start) * sr, (box[1].stop - box[1].start) * sc) >= MIN_LENGTH_MM
    ]
    if not candidates:
        return []
    pixels = ndimage.value_indices(labels, ignore_value=0)
    regions: NDArray[Any] | None = None
    taken: set[int] = set()  # white areas already given whole to a stroke
    out: list[Stroke] = []
    for i in candidates:
        rows, cols = pixels[i]
        length_px, direction = _extent(rows, cols, 1.0, 1.0)
        if length_px < MIN_LENGTH_PX:
            continue
        if sr != sc:
            length_mm, direction = _extent(rows, cols, sr, sc)
        else:
            length_mm = length_px * sr
        if length_mm < MIN_LENGTH_MM or _contrast(a, labels, i, boxes[i - 1], hi) < MIN_CONTRAST * (hi - lo):
            continue
        if regions is None:
            regions, _ = ndimage.label(bright, structure=np.ones((3, 3), dtype=bool))
            region_sizes, region_boxes = np.bincount(regions.ravel()), ndimage.find_objects(regions)
        region = int(regions[rows[0], cols[0]])
        if region in taken:  # another piece of the same drawing brought these pixels already
            continue
        if region_sizes[region] <= MAX_HEAD * rows.size:  # with its arrowhead (a white area of its own size)
            taken.add(region)
            box = region_boxes[region - 1]
            rows, cols = np.nonzero(regions[box] == region)
            rows, cols = rows + box[0].start, cols + box[1].start
        out.append(Stroke(rows, cols, direction))
    return out


def _extent(rows: NDArray[Any], cols: NDArray[Any], sr: float, sc: float) -> tuple[float, NDArray[np.float64]]:
    """The extent of a set of pixels along its main direction, and that direction (x = column, y = row)."""
    xy = np.stack([cols * sc, rows * sr], axis=1).astype(float)
    xy -= xy.mean(axis=0)
    _, vecs = np.linalg.eigh(xy.T @ xy)
    along = xy @ vecs[:, -1]
    return float(along.max() - along.min()), vecs[:, -1]


def _contrast(a: NDArray[np.float32], labels: NDArray[Any], i: int, box: tuple[slice, ...], hi: float) -> float:
    """How much darker than the top value the pixels 2–3 pixels beside component ``i`` are (median)."""
    r0, c0 = max(box[0].start - 3, 0), max(box[1].start - 3, 0)
    r1, c1 = box[0].stop + 3, box[1].stop + 3
    part = labels[r0:r1, c0:c1] == i
    near = ndimage.binary_dilation(part, iterations=1)
    ring = ndimage.binary_dilation(near, iterations=2) & ~near
    values = a[r0:r1, c0:c1][ring]
    values = values[np.isfinite(values)]
    return float(hi - np.median(values)) if values.size else 0.0


class StrokeCheck:
    """White strokes over the discs of one grey picture (each slice's strokes found once)."""

    def __init__(self, view: SagittalView, spec: CropSpec) -> None:
        self._spec = spec
        self._spacing = (float(view.scan.spacing[0]), float(view.scan.spacing[1]))
        self._array: NDArray[Any] = np.asarray(view.scan.array).reshape(view.scan.shape)
        self._slices = int(view.scan.shape[2])
        self._strokes: dict[int, list[Stroke]] = {}

    def why(self, geometry: DiscGeometry) -> str | None:
        """Why the disc must not be graded (white drawn over it), else ``None``."""
        k = min(max(int(geometry.slice_index), 0), self._slices - 1)
        if k not in self._strokes:
            self._strokes[k] = strokes(self._array[:, :, k], self._spacing)
        if not self._strokes[k]:
            return None
        frame = disc_frame(geometry, self._spacing)
        pixel_mm2 = self._spacing[0] * self._spacing[1]
        area = 0.0
        for s in self._strokes[k]:
            a, b, inside = in_crop(s.rows, s.cols, geometry, self._spacing, self._spec)
            if not inside.any():
                continue
            a = a + self._spec.posterior_shift * frame.width_mm  # from the crop's centre to the disc's
            in_disc = (np.abs(a) <= DISC_CORE * frame.width_mm / 2) & (np.abs(b) <= frame.height_mm / 2 + 1.0)
            if abs(float(s.direction @ frame.u)) < ACROSS:  # along the spine: only where it lies in the disc itself
                inside &= in_disc
            elif in_disc.all():  # across the disc, never leaving it: a bright nucleus's thin band, no drawing
                continue
            area += float(inside.sum()) * pixel_mm2
        if area < MIN_STROKE_MM2:
            return None
        return (
            f"white drawn over the disc ({area:.0f} mm² of the region the grader reads is thin white strokes: a "
            "measuring line, an arrow or an outline, which it would read as anatomy); give the picture without "
            "drawings"
        )
