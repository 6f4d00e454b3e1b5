"""Signal voids: a disc, or a vertebral body beside it, that the image shows as black as air.

Metal (a titanium cage, screws, a disc prosthesis) and bone cement (vertebroplasty) leave no MR signal: the tissue
under them reads at the noise floor, and the grader, trained on native discs only, reads such a hole as a dark, worn
disc (a void drawn into a real slice's L4-L5 disc was graded Pfirrmann 4 with an endplate defect, without a word).
Native discs never get there: on the 1 759 discs of the shared train scans (SPIDER T2 and T1 slices, the
FastCleverSeg volumes; ``python scripts/void_survey.py``) at most 34 % of a disc's samples and 14 % of a
neighbouring body's lie below :data:`VOID_LEVEL`, the darkest of them included, and under a coil's strong shading
too. A disc whose samples, or a neighbouring body's, lie there for :data:`VOID_SHARE` or more is therefore not
graded, and says why. Only intensities as acquired are judged: not a picture (PNG, JPEG), whose display window and
gamma can leave a dark disc as dark as air, nor a scan whose window clipped the tissue around the disc
(:data:`MAX_CLIPPED`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..detection.types import DiscGeometry
from .crop import DiscFrame, disc_frame, sample_plane
from .intensity import within_border

__all__ = ["CLIPPED", "MAX_CLIPPED", "VOID_LEVEL", "VOID_SHARE", "VoidCheck", "signal_void", "void_shares"]

# a sample darker than this fraction of the tissue around the disc (the 75th percentile of a box two disc widths
# wide and the disc's height plus two widths high) is void: local, so that a coil's smooth shading, which leaves the
# front of a picture a tenth as bright as its back, does not make a dark disc read as air
VOID_LEVEL = 0.03
# the share of a region's samples that makes it a void (native train discs reach 0.34, their bodies 0.14, shaded or
# not: scripts/void_survey.py)
VOID_SHARE = 0.5
# a void is judged only where less than this share of the tissue in front of and behind the disc lies at the image's
# floor: a display window that blacks out the darkest tissue makes dark discs read as air (scripts/void_survey.py)
MAX_CLIPPED = 0.05
CLIPPED = "clipped"  # void_shares' key for that share
# the regions measured, as (across the disc, fractions of its width; along it, from the disc's mid-height): the
# disc itself (its middle 80 % of height) and the bands of the bodies above and below that the crop's intensity
# reference is read from (crop.body_reference)
_ACROSS = (-0.45, 0.45)


def _grid_points(
    fr: DiscFrame, spacing_rc: tuple[float, float], across: tuple[float, float], along_mm: tuple[float, float], n: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(rows, cols) of an n × n sample grid: across the disc in fractions of its width, along it in mm."""
    a = np.linspace(across[0], across[1], n) * fr.width_mm
    d = np.linspace(along_mm[0], along_mm[1], n)
    aa, dd = np.meshgrid(a, d)
    x = fr.centre[0] + aa * fr.u[0] + dd * fr.v[0]
    y = fr.centre[1] + aa * fr.u[1] + dd * fr.v[1]
    return y / spacing_rc[0], x / spacing_rc[1]


@dataclass(frozen=True)
class _Plane:
    """One slice as the void check reads it: float32, its floor, and its box within any padding border (the rows
    and columns at its edges holding nothing but the darkest value: a SPIDER slice's top rows above a cut body are
    black padding, not a void)."""

    pixels: NDArray[np.float32]
    floor: float
    top: int
    left: int
    bottom: int  # last row and column inside the box
    right: int

    @classmethod
    def of(cls, plane: NDArray[Any]) -> _Plane:
        pl = np.asarray(plane, dtype=np.float32)
        floor = float(pl.min()) if pl.size else 0.0
        inner = within_border(pl, floor) if pl.size else None
        top, left, kept = inner if inner is not None else (0, 0, pl[:0, :0])
        return cls(pl, floor, top, left, top + kept.shape[0] - 1, left + kept.shape[1] - 1)


def void_shares(plane: NDArray[Any], geometry: DiscGeometry, spacing_rc: tuple[float, float]) -> dict[str, float]:
    """The share of void samples (below :data:`VOID_LEVEL` of the tissue around the disc) in the disc and in the
    bands of the vertebral bodies above and below it, on the disc's mid-sagittal ``plane`` (internal layout), and
    under :data:`CLIPPED` the share of the tissue around it at the image's floor. Samples falling outside the image
    or on a padding border are left out (whole pixels inside: a sample interpolated with the zeros beyond the edge
    would read dark).

    Raises:
        GeometryError: the disc's corners give no frame (:func:`~openspine.grading.crop.disc_frame`).
    """
    return _shares(_Plane.of(plane), geometry, spacing_rc)


def _shares(pl: _Plane, geometry: DiscGeometry, spacing_rc: tuple[float, float]) -> dict[str, float]:
    """:func:`void_shares` on a slice read once (:class:`_Plane`)."""
    fr = disc_frame(geometry, spacing_rc)
    h, w = fr.height_mm / 2, fr.width_mm
    grids = {
        "around": ((-1.0, 1.0), (-h - w, h + w), 25),
        "disc": (_ACROSS, (-0.8 * h, 0.8 * h), 13),
        "body above": (_ACROSS, (-h - 0.4 * w, -h - 0.1 * w), 13),
        "body below": (_ACROSS, (h + 0.1 * w, h + 0.4 * w), 13),
        # in front of and behind the disc and bodies: a void (a cage, cement) lies within their width
        "in front": ((-1.0, -0.5), (-h - w, h + w), 13),
        "behind": ((0.5, 1.0), (-h - w, h + w), 13),
    }
    points = {name: _grid_points(fr, spacing_rc, *grid) for name, grid in grids.items()}
    rows = np.concatenate([r.ravel() for r, _ in points.values()])
    cols = np.concatenate([c.ravel() for _, c in points.values()])
    inside = (rows >= pl.top) & (rows <= pl.bottom) & (cols >= pl.left) & (cols <= pl.right)
    values = np.full(rows.shape, np.nan, np.float32)
    if inside.any():  # one interpolation for every grid
        values[inside] = sample_plane(pl.pixels, rows[inside], cols[inside])
    split = np.cumsum([r.size for r, _ in points.values()])[:-1]
    read = {name: v[~np.isnan(v)] for name, v in zip(points, np.split(values, split))}
    tissue = float(np.percentile(read["around"], 75)) if read["around"].size else 0.0
    out = {}
    for name in ("disc", "body above", "body below"):
        v = read[name]
        out[name] = float(np.mean(v < VOID_LEVEL * tissue)) if v.size and tissue > 0 else 0.0
    # a display window that blacks out the darkest tissue (an exported picture) leaves dark discs as dark as a void
    # leaves metal, and clips some of the tissue beside them too
    beside = np.concatenate([read["in front"], read["behind"]])
    out[CLIPPED] = float(np.mean(beside <= pl.floor)) if beside.size else 0.0
    return out


def signal_void(plane: NDArray[Any], geometry: DiscGeometry, spacing_rc: tuple[float, float]) -> str | None:
    """Why the disc must not be graded because it, or a vertebral body beside it, is a signal void (metal, bone
    cement), else ``None`` (see the module's text)."""
    return _why(void_shares(plane, geometry, spacing_rc))


def _why(shares: dict[str, float]) -> str | None:
    """:func:`signal_void`'s answer from the disc's :func:`void_shares`."""
    clipped = shares.pop(CLIPPED)
    void = [name for name, share in shares.items() if share >= VOID_SHARE]
    if not void or clipped >= MAX_CLIPPED:  # a clipped window: a void cannot be told from a dark disc
        return None
    where = " and the ".join(void)
    share = max(shares[n] for n in void)
    return (
        f"a signal void fills the {where}, {share:.0%} of it as dark as air, as metal or bone cement leave it; "
        "the grader was trained on native discs only"
    )


class VoidCheck:
    """:func:`signal_void` for the discs of one view, each slice prepared once (its float copy, floor and box)."""

    def __init__(self, array: NDArray[Any], spacing_rc: tuple[float, float]) -> None:
        self._array = array
        self._spacing = spacing_rc
        self._planes: dict[int, _Plane] = {}

    def why(self, geometry: DiscGeometry) -> str | None:
        """Why the disc must not be graded (:func:`signal_void`), else ``None``."""
        k = geometry.slice_index
        if k not in self._planes:
            self._planes[k] = _Plane.of(self._array[:, :, k])
        return _why(_shares(self._planes[k], geometry, self._spacing))
