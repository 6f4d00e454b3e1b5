"""Paired crops of one disc from two series of one study (e.g. the sagittal T2 and T1 series), for a grader whose
network reads both (``input.channels`` of its card, e.g. ``["T2", "T1"]``).

Each series is cut in its own pixel grid from its own detected geometry of the disc: the two series are not
registered (position, field of view and pixel spacing differ), so the pairing is by anatomy (the disc's level, see
:func:`openspine.study.match_series`), never by pixel. Both crops follow the same :class:`~.crop.CropSpec`, so the
disc sits at the same place, at the same scale and with the same intensity normalisation in both channels.
Training (:mod:`openspine.training.paired`) and grading cut their crops here, so the two see the same input.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..detection.types import DiscGeometry
from ..errors import GeometryError
from ..scan import SagittalView
from .crop import CropSpec, disc_crop, slice_indices

__all__ = ["PAIRED_CHANNELS", "paired_crops"]

# channel order of a two-series grader's input: the main (T2) series first, the second (T1) series next
PAIRED_CHANNELS: tuple[str, str] = ("T2", "T1")


def paired_crops(
    main_view: SagittalView,
    main_geometry: DiscGeometry,
    second_view: SagittalView,
    second_geometry: DiscGeometry,
    spec: CropSpec,
    names: tuple[str, str] = PAIRED_CHANNELS,
) -> NDArray[np.float32]:
    """The crops of one disc in two series, stacked as channels.

    Channel 0 is the main series' crop exactly as single-series grading cuts it: one row per distinct slice that
    ``spec.slice_offsets_mm`` lands on around the disc's mid slice. Channel 1 is the second series' crop of its own
    matched disc, cut with the same spec at the same offset (mm) from its own mid slice, clamped to its slices.

    Args:
        main_view, main_geometry: the main series (the grader's first channel) and the disc's geometry in it.
        second_view, second_geometry: the second series and the same disc's geometry in that series.
        spec: the grader's crop recipe (``GraderModel.crop``).
        names: the two series' names, for error messages.

    Returns:
        float32 array (n, 2, spec.height, spec.width), n = the number of distinct main-series slices.

    Raises:
        GeometryError: either crop cannot be cut (degenerate, crossed or reversed endplates, a disc outside its
            image or slices) or has non-finite values; the message names the series.
    """
    stacks = []
    for name, view, geometry in ((names[0], main_view, main_geometry), (names[1], second_view, second_geometry)):
        try:
            stack = disc_crop(view.scan.array, geometry, view.scan.spacing, spec)
        except GeometryError as exc:
            raise GeometryError(f"{name} series: {exc}") from None
        if not np.all(np.isfinite(stack)):
            raise GeometryError(f"{name} series: the disc's crop has non-finite values")
        stacks.append(stack)
    arr, spacing = main_view.scan.array, main_view.scan.spacing
    idx = slice_indices(arr.shape[2], main_geometry.slice_index, spacing[2], spec.slice_offsets_mm)
    # one row per distinct main-series slice, as grading.grade cuts single-series crops
    seen: set[int] = set()
    rows: list[NDArray[np.float32]] = []
    for j, k in enumerate(idx):
        if k in seen:
            continue
        seen.add(k)
        rows.append(np.stack([stacks[0][j], stacks[1][j]]))
    return np.stack(rows).astype(np.float32, copy=False)
