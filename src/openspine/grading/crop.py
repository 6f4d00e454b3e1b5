"""Disc-aligned crops: the view of one intervertebral disc that the grader sees.

A crop is a pure function of a sagittal array in the internal layout (rows superior→inferior, columns
anterior→posterior, slices left→right), the pixel spacing and the disc's geometry: the two corners of the
upper body's inferior endplate and of the lower body's superior endplate on the mid-sagittal slice
(:class:`~openspine.detection.types.DiscGeometry`, the detector's record of the disc).

* **Rotation**: the crop's horizontal axis follows the mean direction of the two endplates (anterior → posterior),
  so a tilted disc comes out level, anterior on the left, superior at the top.
* **Scale**: the crop spans ``width_factor`` × the disc's antero-posterior width across and ``height_factor`` ×
  that width vertically; the disc width stands for the size of the vertebral bodies, so big and small spines and
  any pixel spacing give crops of the same anatomy.
* **Intensity**: values are divided by the median intensity of the two neighbouring vertebral bodies (sampled just
  above and below the endplates), the only tissue whose T2 signal is comparable across scans and scanners.
* **Slices**: the mid-sagittal slice and its neighbours (``slice_offsets_mm`` around it, rounded to the nearest
  slice and clipped to the scan); a single-slice scan gives the mid slice for every offset.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..detection.types import DiscGeometry, Point
from ..errors import ConfigError, GeometryError

__all__ = [
    "BlankCheck",
    "CropSpec",
    "DiscFrame",
    "DiscGeometry",
    "Jitter",
    "Point",
    "body_reference",
    "check_corners_in_view",
    "check_corners_on_image",
    "check_in_plane",
    "disc_crop",
    "disc_frame",
    "sample_plane",
    "slice_indices",
    "straight_edge",
]


@dataclass(frozen=True)
class CropSpec:
    """How a disc crop is made; stored in the grader's model card so inference rebuilds the same crop."""

    height: int = 48  # pixels, along the disc's superior→inferior axis
    width: int = 96  # pixels, along its anterior→posterior axis
    width_factor: float = 2.0  # crop width / disc antero-posterior width
    height_factor: float = 1.0  # crop height / disc antero-posterior width
    posterior_shift: float = 0.1  # crop centre moved posteriorly by this × disc width (canal side matters more)
    slice_offsets_mm: tuple[float, ...] = (-3.5, 0.0, 3.5)
    clip: float = 4.0  # normalised intensities are clipped to [0, clip]

    def __post_init__(self) -> None:
        if self.height < 8 or self.width < 8:
            raise ConfigError(f"crop size must be at least 8×8 pixels, got {self.height}×{self.width}")
        if self.width_factor <= 0 or self.height_factor <= 0:
            raise ConfigError("crop width_factor and height_factor must be positive")
        if not self.slice_offsets_mm:
            raise ConfigError("slice_offsets_mm needs at least one offset (0.0 is the mid-sagittal slice)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["slice_offsets_mm"] = list(self.slice_offsets_mm)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CropSpec:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown crop settings {sorted(unknown)}; known: {sorted(known)}")
        kw = dict(d)
        if "slice_offsets_mm" in kw:
            kw["slice_offsets_mm"] = tuple(float(x) for x in kw["slice_offsets_mm"])
        return cls(**kw)


@dataclass(frozen=True)
class Jitter:
    """A small perturbation of the crop frame (training augmentation; identity by default)."""

    angle_deg: float = 0.0
    scale: float = 1.0
    shift_u: float = 0.0  # along the disc axis, as a fraction of the disc width
    shift_v: float = 0.0  # across it


@dataclass(frozen=True)
class DiscFrame:
    """The disc's own coordinate frame in millimetres of the slice plane (x = column mm, y = row mm)."""

    centre: NDArray[np.float64]  # (x, y) mm
    u: NDArray[np.float64]  # unit vector anterior → posterior along the endplates
    v: NDArray[np.float64]  # unit vector superior → inferior, perpendicular to u
    width_mm: float  # mean antero-posterior length of the two endplates
    height_mm: float  # mean distance between the endplates


def disc_frame(geometry: DiscGeometry, spacing_rc: tuple[float, float]) -> DiscFrame:
    """The disc's centre, axes and size (mm) from its endplate corners.

    Raises:
        GeometryError: the corners are not finite, degenerate (zero-length endplates), or the endplates are
            perpendicular or point in opposite directions (crossed or reversed corners).
    """
    sr, sc = float(spacing_rc[0]), float(spacing_rc[1])
    p = geometry.points()
    if not np.all(np.isfinite(p)):
        raise GeometryError("disc endplate corners have non-finite coordinates")
    xy = np.stack([p[:, 1] * sc, p[:, 0] * sr], axis=1)  # (x=col mm, y=row mm)
    up = xy[1] - xy[0]
    lo = xy[3] - xy[2]
    nu, nl = float(np.linalg.norm(up)), float(np.linalg.norm(lo))
    if not (math.isfinite(nu) and math.isfinite(nl)):
        raise GeometryError("disc endplate corners are too far apart to measure")
    if nu < 1e-6 or nl < 1e-6:
        raise GeometryError(f"disc endplate corners are degenerate (endplate lengths {nu:.3g} and {nl:.3g} mm)")
    if float(np.dot(up, lo)) <= 0:
        angle = math.degrees(math.acos(max(-1.0, min(1.0, float(np.dot(up, lo)) / (nu * nl)))))
        raise GeometryError(
            f"the upper and lower endplates of a disc point in opposite directions ({angle:.0f}° apart)"
        )
    u = up / nu + lo / nl
    u /= np.linalg.norm(u)
    v = np.array([-u[1], u[0]])  # u rotated +90° in image axes (x right, y down): posterior → inferior
    centre = xy.mean(axis=0)
    mid_up, mid_lo = (xy[0] + xy[1]) / 2, (xy[2] + xy[3]) / 2
    height = float(abs(np.dot(mid_lo - mid_up, v)))
    return DiscFrame(centre=centre, u=u, v=v, width_mm=(nu + nl) / 2, height_mm=height)


def check_in_plane(frame: DiscFrame, plane_shape: tuple[int, ...], spacing_rc: tuple[float, float]) -> None:
    """Refuse a disc that the image does not show: its centre outside the slice, or endplates longer than the
    slice is wide or high (a crop of it would be mostly padding, its grade meaningless).

    Raises:
        GeometryError: naming what is wrong.
    """
    sr, sc = float(spacing_rc[0]), float(spacing_rc[1])
    rows, cols = int(plane_shape[0]), int(plane_shape[1])
    r, c = float(frame.centre[1]) / sr, float(frame.centre[0]) / sc
    if not (-0.5 <= r <= rows - 0.5 and -0.5 <= c <= cols - 0.5):
        raise GeometryError(f"the disc's centre (row {r:.1f}, column {c:.1f}) is outside the {rows}×{cols} image")
    extent = max(rows * sr, cols * sc)
    if frame.width_mm > extent:
        raise GeometryError(f"the disc's endplates ({frame.width_mm:.0f} mm) are longer than the image is wide")


# a disc endplate corner closer than this (pixels) to the image's edge: the disc is cut by the edge of the field of
# view, part of it (and of the canal or the front of the bodies the grader reads beside it) out of view
EDGE_MARGIN_PX = 1.0


def check_corners_in_view(geometry: DiscGeometry, plane_shape: tuple[int, ...]) -> None:
    """Refuse to grade a disc whose endplate corners reach the edge of the image (internal layout: rows
    superior→inferior, columns anterior→posterior): a field of view cut through the bodies in front (a crop, a small
    field of view) had been graded, four of five discs moving by two or three Pfirrmann grades. Checked where a disc
    is graded, not where training cuts crops (the shipped models were trained with such discs among the others).

    Raises:
        GeometryError: naming the edge.
    """
    rows, cols = int(plane_shape[0]), int(plane_shape[1])
    p = geometry.points()
    edges = (
        ("front", p[:, 1] < EDGE_MARGIN_PX),
        ("back", p[:, 1] > cols - 1 - EDGE_MARGIN_PX),
        ("top", p[:, 0] < EDGE_MARGIN_PX),
        ("bottom", p[:, 0] > rows - 1 - EDGE_MARGIN_PX),
    )
    for name, hit in edges:
        if np.any(hit):
            raise GeometryError(
                f"the disc reaches the {name} edge of the image: part of it is out of the field of view"
            )


# the thinnest blank fill counted (mm): a reslice's wedge or a canvas is wide, while tissue that a display window
# cuts to black (cortex, ligaments, a flow void) reaches a disc's corners only in thin strands
FILL_MIN_WIDTH_MM = 4.0
# the fill is judged on blocks of about this size (mm): a 4 mm criterion needs no finer pixels, and a 2 000-pixel
# screenshot's opening at its own pixels had taken seconds per disc
FILL_GRID_MM = 0.5


def blank_fill(plane: NDArray[Any], spacing_rc: tuple[float, float]) -> NDArray[np.bool_]:
    """The pixels of a 2D plane that hold no image: its lowest value, in a region at least
    :data:`FILL_MIN_WIDTH_MM` wide throughout that reaches the image's edge (the wedges a resliced oblique volume
    leaves, the canvas a picture was pasted on; not dark tissue joined to the edge by narrow strands, nor a thin
    black border)."""
    flat = np.asarray(plane) == np.asarray(plane).min()
    rows, cols = flat.shape
    f = [max(1, int(FILL_GRID_MM // float(s))) for s in spacing_rc]
    blocks = np.ones((-(-rows // f[0]) * f[0], -(-cols // f[1]) * f[1]), bool)
    blocks[:rows, :cols] = flat
    coarse = blocks.reshape(blocks.shape[0] // f[0], f[0], blocks.shape[1] // f[1], f[1]).all(axis=(1, 3))
    size = [2 * max(1, round(FILL_MIN_WIDTH_MM / 2 / (float(s) * k))) + 1 for s, k in zip(spacing_rc, f)]
    # an opening by a square that must fit inside the image (separable min/max filters: a disk's took most of the
    # time of a picture's analysis)
    eroded = ndimage.minimum_filter(coarse.astype(np.uint8), size=size, mode="constant", cval=0)
    opened = ndimage.maximum_filter(eroded, size=size, mode="constant", cval=0) > 0
    labels, _ = ndimage.label(opened)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    fill = np.isin(labels, edge[edge > 0])
    return np.asarray(np.repeat(np.repeat(fill, f[0], axis=0), f[1], axis=1)[:rows, :cols] & flat)


def check_corners_on_image(
    geometry: DiscGeometry,
    plane: NDArray[Any],
    spacing_rc: tuple[float, float],
    fill_of: Callable[[], NDArray[np.bool_]] | None = None,
) -> None:
    """Refuse to grade a disc whose endplate corners lie in a 2D plane's blank fill (:func:`blank_fill`, or
    ``fill_of()`` where the caller keeps it): the edge of the field of view runs through it inside the image (a
    resliced volume, a padded picture), which :func:`check_corners_in_view` cannot see. Corners that are not finite
    are left to the checks that refuse them.

    Raises:
        GeometryError: saying so.
    """
    values = np.asarray(plane)
    rows, cols = values.shape
    p = geometry.points()
    if not np.all(np.isfinite(p)):
        return
    r0 = np.clip(np.floor(p[:, 0] - EDGE_MARGIN_PX), 0, rows - 1).astype(int)
    r1 = np.clip(np.ceil(p[:, 0] + EDGE_MARGIN_PX), 0, rows - 1).astype(int)
    c0 = np.clip(np.floor(p[:, 1] - EDGE_MARGIN_PX), 0, cols - 1).astype(int)
    c1 = np.clip(np.ceil(p[:, 1] + EDGE_MARGIN_PX), 0, cols - 1).astype(int)
    lowest = values.min()
    near = [(slice(a, b + 1), slice(c, d + 1)) for a, b, c, d in zip(r0, r1, c0, c1)]
    if not any(np.any(values[w] == lowest) for w in near):  # the usual case: no fill value near any corner
        return
    fill = fill_of() if fill_of is not None else blank_fill(values, spacing_rc)
    if any(np.any(fill[w]) and straight_edge(fill, (float(r), float(c)), spacing_rc) for w, (r, c) in zip(near, p)):
        raise GeometryError(
            "a corner of the disc lies in a flat black area reaching the image's edge: no image there (a resliced or "
            "padded image's blank, or tissue a display window cut to black), part of the disc may be out of view"
        )


# the blank's edge near a disc corner, judged within this distance (mm), must run straight to within this spread
# (mm, the rms distance of its pixels from their line): a canvas's, a crop's and a reslice's edges do (a user test:
# 0.00-0.27 mm), tissue a display window cut to black follows the anatomy (1.0 mm or more, median 3.6 mm)
EDGE_NEAR_MM = 10.0
MAX_EDGE_SPREAD_MM = 0.5


def straight_edge(fill: NDArray[np.bool_], corner_rc: tuple[float, float], spacing_rc: tuple[float, float]) -> bool:
    """Whether the edge of ``fill`` (the image's own border left out) within :data:`EDGE_NEAR_MM` of a corner (row,
    column pixels) runs straight (:data:`MAX_EDGE_SPREAD_MM`)."""
    sr, sc = float(spacing_rc[0]), float(spacing_rc[1])
    r, c = corner_rc
    r0, r1 = max(0, int(r - EDGE_NEAR_MM / sr)), min(fill.shape[0], int(r + EDGE_NEAR_MM / sr) + 2)
    c0, c1 = max(0, int(c - EDGE_NEAR_MM / sc)), min(fill.shape[1], int(c + EDGE_NEAR_MM / sc) + 2)
    near = fill[r0:r1, c0:c1]
    edge = near & ~ndimage.binary_erosion(near, border_value=1)  # the window's and the image's border are no edge
    rows, cols = np.nonzero(edge)
    if rows.size < 5:
        return False
    xy = np.stack([cols * sc, rows * sr], axis=1)
    spread = float(np.sqrt(max(np.linalg.eigvalsh(np.cov(xy, rowvar=False))[0], 0.0)))
    return spread <= MAX_EDGE_SPREAD_MM


class BlankCheck:
    """:func:`check_corners_on_image` for the discs of one view, on every slice a disc's crop reads (a volume
    resliced with a tilt across its slices has its blank move from slice to slice), each slice's fill computed
    once."""

    def __init__(self, array: NDArray[Any], spacing: tuple[float, float, float], spec: CropSpec) -> None:
        self._array = np.asarray(array) if np.asarray(array).ndim == 3 else np.asarray(array)[:, :, None]
        self._spacing = spacing
        self._spec = spec
        self._fills: dict[int, NDArray[np.bool_]] = {}

    def _fill(self, k: int) -> NDArray[np.bool_]:
        if k not in self._fills:
            self._fills[k] = blank_fill(self._array[:, :, k], (self._spacing[0], self._spacing[1]))
        return self._fills[k]

    def check(self, geometry: DiscGeometry) -> None:
        """Raises GeometryError where a corner of the disc lies in the blank fill of a slice its crop reads."""
        n = self._array.shape[2]
        if not 0 <= int(geometry.slice_index) < n:
            return  # a disc outside the slices: refused where its crop is cut
        spacing_rc = (self._spacing[0], self._spacing[1])
        for k in sorted(set(slice_indices(n, geometry.slice_index, self._spacing[2], self._spec.slice_offsets_mm))):
            check_corners_on_image(geometry, self._array[:, :, k], spacing_rc, partial(self._fill, k))


def sample_plane(plane: NDArray[Any], rows: NDArray[np.float64], cols: NDArray[np.float64]) -> NDArray[np.float32]:
    """Bilinear samples of a 2D plane at fractional (row, column) positions; 0 outside."""
    out = ndimage.map_coordinates(plane, [rows.ravel(), cols.ravel()], order=1, mode="constant", cval=0.0)
    return np.asarray(out, dtype=np.float32).reshape(rows.shape)


def body_reference(
    plane: NDArray[Any], frame: DiscFrame, spacing_rc: tuple[float, float], floor: float = 1e-3
) -> float:
    """Median intensity of the two vertebral bodies next to the disc, on one slice.

    Samples a band inside each body from 15 % to 45 % of the disc width beyond the disc's mid-height, over the
    central 70 % of the endplate, where neither the endplate nor the body's cortex dominates.
    """
    sr, sc = spacing_rc
    a = np.linspace(-0.35, 0.35, 9) * frame.width_mm
    d = frame.height_mm / 2 + np.linspace(0.10, 0.40, 7) * frame.width_mm
    aa, dd = np.meshgrid(a, d)
    vals = []
    for sign in (-1.0, 1.0):  # above (upper body) and below (lower body)
        x = frame.centre[0] + aa * frame.u[0] + sign * dd * frame.v[0]
        y = frame.centre[1] + aa * frame.u[1] + sign * dd * frame.v[1]
        vals.append(sample_plane(plane, y / sr, x / sc))
    ref = float(np.median(np.concatenate([v.ravel() for v in vals])))
    if ref <= floor:
        # dark bodies (or the crop falls outside the image): fall back to the slice's bright tissue
        ref = float(np.percentile(plane, 95)) / 2 or 1.0
    return ref


def slice_indices(n_slices: int, mid: int, slice_spacing_mm: float, offsets_mm: Sequence[float]) -> list[int]:
    """Slice indices for the requested offsets (mm) around ``mid``, rounded and clipped to the scan."""
    if not 0 <= mid < n_slices:
        raise GeometryError(f"mid-sagittal slice {mid} is outside the scan's {n_slices} slices")
    step = max(float(slice_spacing_mm), 1e-6)
    return [int(min(max(mid + round(o / step), 0), n_slices - 1)) for o in offsets_mm]


def disc_crop(
    array: NDArray[Any],
    geometry: DiscGeometry,
    spacing: tuple[float, float, float],
    spec: CropSpec | None = None,
    jitter: Jitter | None = None,
) -> NDArray[np.float32]:
    """Cut the disc-aligned, intensity-normalised crop of one disc.

    Args:
        array: the sagittal array in the internal layout, shape (rows, columns, slices); a 2D array is one slice.
        geometry: the disc's endplate corners and mid-sagittal slice (internal voxel indices).
        spacing: voxel size in mm along (rows, columns, slices).
        spec: crop size and extent (default :class:`CropSpec`).
        jitter: optional perturbation of the frame (for augmentation).

    Returns:
        float32 array (len(spec.slice_offsets_mm), spec.height, spec.width): one crop per slice offset, superior at
        the top and anterior on the left, in units of the neighbouring bodies' median intensity.

    Raises:
        GeometryError: the geometry gives no crop: degenerate, crossed or reversed endplates, non-finite corners, a
            disc outside the image (:func:`check_in_plane`) or a mid-sagittal slice outside the scan.
    """
    spec = spec or CropSpec()
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise GeometryError(f"a disc crop needs a 2D slice or 3D sagittal array, got shape {arr.shape}")
    sr, sc, ss = (float(s) for s in spacing)
    frame = disc_frame(geometry, (sr, sc))
    check_in_plane(frame, arr.shape, (sr, sc))
    u, v, centre, w = frame.u, frame.v, frame.centre.copy(), frame.width_mm
    if jitter is not None:
        t = math.radians(jitter.angle_deg)
        rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        u, v = rot @ u, rot @ v
        centre = centre + (jitter.shift_u * u + jitter.shift_v * v) * w
        w = w * jitter.scale
    centre = centre + spec.posterior_shift * w * u
    # pixel centres of the output grid, in mm offsets along u and v
    half_w, half_h = spec.width_factor * w / 2, spec.height_factor * w / 2
    gu = (np.arange(spec.width) + 0.5) / spec.width * 2 * half_w - half_w
    gv = (np.arange(spec.height) + 0.5) / spec.height * 2 * half_h - half_h
    uu, vv = np.meshgrid(gu, gv)  # (H, W)
    x = centre[0] + uu * u[0] + vv * v[0]
    y = centre[1] + uu * u[1] + vv * v[1]
    rows, cols = y / sr, x / sc
    idx = slice_indices(arr.shape[2], geometry.slice_index, ss, spec.slice_offsets_mm)
    mid_plane = np.asarray(arr[:, :, geometry.slice_index], dtype=np.float32)
    ref = body_reference(mid_plane, frame, (sr, sc))
    planes: dict[int, NDArray[np.float32]] = {}
    out = np.empty((len(idx), spec.height, spec.width), dtype=np.float32)
    for i, k in enumerate(idx):
        if k not in planes:
            plane = mid_plane if k == geometry.slice_index else np.asarray(arr[:, :, k], dtype=np.float32)
            planes[k] = np.clip(sample_plane(plane, rows, cols) / ref, 0.0, spec.clip)
        out[i] = planes[k]
    return out
