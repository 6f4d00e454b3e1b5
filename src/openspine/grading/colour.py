"""Colour drawn over a disc in a picture: an arrow, an outline or a measurement that the grader would read as anatomy.

A picture in colour is not graded where colour covers :data:`openspine.scope.MAX_COLOUR_SHARE` of the region
around its spine (:func:`openspine.scope.drawn_in_colour_reason`). Below that share one arrow can still lie over one
disc: a red arrow pointing at a SPIDER val slice's L4-L5 moved its Pfirrmann grade from 4 to 3 without a word, and
whether the share was reached depended on the picture's pixel size. Each disc is therefore also checked on its own:
where :data:`MIN_COLOUR_MM2` or more of the region its grader crop covers is in colour, that disc is not graded. Grey
MR has no colour (a grey picture saved as JPEG neither: :data:`openspine.io.image2d.COLOUR_CHROMA`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._logging import get_logger
from ..detection.types import DiscGeometry
from ..scan import SagittalView, Scan
from .crop import CropSpec, disc_frame

__all__ = ["MIN_COLOUR_MM2", "ColourCheck", "colour_in_crop"]

log = get_logger("grading.colour")

# colour in a disc's crop region that withholds its grades: a few pixels of an arrow's tip, and above the stray
# coloured pixels a JPEG leaves along a drawing's edge
MIN_COLOUR_MM2 = 2.0


def colour_in_crop(
    mask: NDArray[Any], geometry: DiscGeometry, spacing_rc: tuple[float, float], spec: CropSpec
) -> float:
    """The area (mm²) of ``mask`` (a 2D slice in the internal layout, True where the picture is in colour) inside the
    rectangle the disc's grader crop covers (:func:`openspine.grading.crop.disc_crop`: its frame, width and height
    factors and posterior shift)."""
    rows, cols = np.nonzero(np.asarray(mask))
    return _area_in_crop(rows, cols, geometry, spacing_rc, spec)


def _area_in_crop(
    rows: NDArray[Any], cols: NDArray[Any], geometry: DiscGeometry, spacing_rc: tuple[float, float], spec: CropSpec
) -> float:
    """:func:`colour_in_crop` of the pixels at ``rows``, ``cols``."""
    if np.asarray(rows).size == 0:
        return 0.0
    inside = in_crop(rows, cols, geometry, spacing_rc, spec)[2]
    return float(inside.sum()) * float(spacing_rc[0]) * float(spacing_rc[1])


def in_crop(
    rows: NDArray[Any], cols: NDArray[Any], geometry: DiscGeometry, spacing_rc: tuple[float, float], spec: CropSpec
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Where pixels at ``rows``, ``cols`` lie in a disc's frame: their mm along its axis anterior → posterior and
    superior → inferior from its crop's centre, and whether they are inside the rectangle its grader crop covers
    (:func:`openspine.grading.crop.disc_crop`: its frame, width and height factors and posterior shift)."""
    sr, sc = float(spacing_rc[0]), float(spacing_rc[1])
    frame = disc_frame(geometry, (sr, sc))
    centre = frame.centre + spec.posterior_shift * frame.width_mm * frame.u
    xy = np.stack([np.asarray(cols) * sc, np.asarray(rows) * sr], axis=1) - centre  # (x = column mm, y = row mm)
    a, b = xy @ frame.u, xy @ frame.v
    inside = (np.abs(a) <= spec.width_factor * frame.width_mm / 2) & (
        np.abs(b) <= spec.height_factor * frame.width_mm / 2
    )
    return a, b, inside


class ColourCheck:
    """:func:`colour_in_crop` for the discs of one picture, its colour mask laid out as the analysis reads it."""

    def __init__(self, view: SagittalView, spec: CropSpec) -> None:
        self._spec = spec
        self._spacing = (float(view.scan.spacing[0]), float(view.scan.spacing[1]))
        picture = view.input
        mask = np.asarray(picture.source.colour_mask).reshape(picture.array.shape).astype(np.uint8)
        # the picture's own pixels → the internal layout (a picture read mirrored is turned with its mask)
        self._mask = np.asarray(Scan(mask, picture.affine).to_sagittal().scan.array) > 0
        self._pixels: dict[int, tuple[NDArray[Any], NDArray[Any]]] = {}  # each slice's colour pixels, found once

    @classmethod
    def of(cls, view: SagittalView, spec: CropSpec) -> ColourCheck | None:
        """The check for a picture with colour in it, else None."""
        mask = view.input.source.colour_mask
        if mask is None or not np.any(mask):
            return None
        if np.asarray(mask).size != view.input.array.size:  # a picture's mask is made from its own pixels
            log.warning(
                "the picture's colour mask %s does not match its pixels %s: not checked per disc",
                np.shape(mask),
                view.input.array.shape,
            )
            return None
        return cls(view, spec)

    def why(self, geometry: DiscGeometry) -> str | None:
        """Why the disc must not be graded (colour over it), else ``None``."""
        k = min(max(int(geometry.slice_index), 0), self._mask.shape[2] - 1)
        if k not in self._pixels:
            rows, cols = np.nonzero(self._mask[:, :, k])
            self._pixels[k] = (rows, cols)
        area = _area_in_crop(*self._pixels[k], geometry, self._spacing, self._spec)
        if area < MIN_COLOUR_MM2:
            return None
        return (
            f"colour drawn over the disc ({area:.0f} mm² of the region the grader reads is in colour: an arrow, an "
            "outline or a measurement, which it would read as anatomy); give the picture without drawings"
        )
