"""The contract between detection and grading: what :func:`~openspine.detection.detect` returns.

:class:`Detection` holds the result records (input voxel and RAS+ mm coordinates, :mod:`openspine.results`) and the
internal geometry behind them: :class:`VertebraGeometry` per vertebra and :class:`DiscGeometry` per disc, in the
internal sagittal layout (rows superior→inferior, columns anterior→posterior, slices left→right; voxel indices).

The grader (:mod:`openspine.grading`) imports these types; this module imports nothing of the grader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..levels import DiscLevel, Level
from ..results import Disc, ModelInfo, Vertebra

Point = tuple[float, float]  # (row, column) in internal voxel units

# the fields that place a disc for cropping and measuring (what a detection cache stores)
ENDPLATE_FIELDS = ("upper_anterior", "upper_posterior", "lower_anterior", "lower_posterior", "slice_index")

__all__ = ["ENDPLATE_FIELDS", "Detection", "DiscGeometry", "Point", "VertebraGeometry"]


@dataclass(frozen=True)
class DiscGeometry:
    """A disc on its mid-sagittal slice, from the endplates of its two neighbouring vertebral bodies.

    Points are (row, column) internal voxel indices. The four corners and the slice are what a disc crop and the
    disc features need; the detector also records the disc's level, centre and measured heights (``None`` where
    the geometry was read from outlines instead).
    """

    upper_anterior: Point  # anterior-inferior corner of the vertebral body above
    upper_posterior: Point  # posterior-inferior corner of the body above
    lower_anterior: Point  # anterior-superior corner of the body below
    lower_posterior: Point  # posterior-superior corner of the body below
    slice_index: int  # the disc's mid-sagittal slice (internal slice axis; both bodies seen there)
    level: DiscLevel | None = None
    centre: tuple[float, float, float] | None = None  # internal (row, col, slice)
    upper_height_mm: float | None = None  # vertebral-body heights of the two neighbours
    lower_height_mm: float | None = None
    height_anterior_mm: float | None = None  # disc height at its anterior and posterior edges
    height_posterior_mm: float | None = None

    def points(self) -> NDArray[np.float64]:
        """The four corners as a (4, 2) array: upper anterior, upper posterior, lower anterior, lower posterior."""
        return np.array([self.upper_anterior, self.upper_posterior, self.lower_anterior, self.lower_posterior], float)

    def endplates(self) -> DiscGeometry:
        """The corners and slice alone (as floats and an int), without the detector's measurements."""
        p = self.points()
        return DiscGeometry(
            upper_anterior=(float(p[0, 0]), float(p[0, 1])),
            upper_posterior=(float(p[1, 0]), float(p[1, 1])),
            lower_anterior=(float(p[2, 0]), float(p[2, 1])),
            lower_posterior=(float(p[3, 0]), float(p[3, 1])),
            slice_index=int(self.slice_index),
        )

    def to_dict(self) -> dict[str, Any]:
        """The corners and slice as plain JSON values (a detection cache's entry)."""
        return {
            "upper_anterior": list(self.upper_anterior),
            "upper_posterior": list(self.upper_posterior),
            "lower_anterior": list(self.lower_anterior),
            "lower_posterior": list(self.lower_posterior),
            "slice_index": int(self.slice_index),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DiscGeometry:
        """Inverse of :meth:`to_dict` (extra keys are ignored)."""

        def pt(v: Any) -> Point:
            return float(v[0]), float(v[1])

        return cls(
            upper_anterior=pt(d["upper_anterior"]),
            upper_posterior=pt(d["upper_posterior"]),
            lower_anterior=pt(d["lower_anterior"]),
            lower_posterior=pt(d["lower_posterior"]),
            slice_index=int(d["slice_index"]),
        )


@dataclass(frozen=True)
class VertebraGeometry:
    """A detected body in the internal layout (rows S→I, cols A→P, slices L→R; voxel indices, floats).

    ``corners`` maps an internal slice index to the body's four corners on it, (row, col) in the order
    anterior-superior, posterior-superior, posterior-inferior, anterior-inferior.
    """

    label: Level | None
    mid_slice: int  # internal slice index of the body's largest cross-section
    centre: tuple[float, float, float]  # internal (row, col, slice)
    corners: dict[int, tuple[Point, Point, Point, Point]]
    height_mm: float  # mean of the anterior and posterior heights on the mid slice
    level_estimate: float  # the network's raw estimate of the level's ordinal (:attr:`Level.ordinal`)


@dataclass(frozen=True)
class Detection:
    """What :func:`~openspine.detection.detect` found in one scan.

    The geometry tuples are empty for a detection made from records alone (e.g. read back from a result); the
    grader then reads each disc's endplates from its outline, or from its neighbours' outlines.
    """

    vertebrae: tuple[Vertebra, ...]  # top to bottom
    discs: tuple[Disc, ...]  # between detected neighbours, top to bottom; grades empty
    flags: tuple[str, ...]
    models: tuple[ModelInfo, ...]
    vertebra_geometry: tuple[VertebraGeometry, ...] = ()  # one per vertebra, same order (or none)
    disc_geometry: tuple[DiscGeometry, ...] = ()  # one per disc, same order (or none)
    slices_used: tuple[int, ...] = ()  # internal slice indices the network saw (slab centres)
    # the one-level shift (+1 closer to the sacrum, -1 further) that the labelling_alternative flag names; 0: none
    alternative_shift: int = 0
    # whether the labels count from a sacrum in view (False: from the bodies' appearance alone; None: not known, e.g.
    # a detection read back from records)
    sacrum_seen: bool | None = None
