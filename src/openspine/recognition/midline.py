"""Whether a sagittal slice runs through the middle of the spine, read from the image by the midline recogniser.

A small network (the recogniser's CNN with one output, trained by ``openspine train midline``) reads the central
slices of a scan in the internal layout, as the image recogniser does, and gives the probability that the slice lies
:data:`OFF_MM` mm or more to one side of the midline: through the pedicles, facet joints and foramina rather than the
middle of the discs and the spinal canal, where the grader was trained.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .._logging import get_logger
from ..scan import SagittalView, Scan
from ..scope import AT_MIDLINE_MM, OFF_MIDLINE_MM
from .model import read_central_slices

log = get_logger("recognition.midline")

MODEL_NAME = "midline"
OFF_MM = OFF_MIDLINE_MM  # trained as off the midline from this far to one side ...
AT_MM = AT_MIDLINE_MM  # ... and as at the midline up to this far

__all__ = ["AT_MM", "MODEL_NAME", "OFF_MM", "off_midline_probability"]


def off_midline_probability(
    view: SagittalView, model: str | os.PathLike[str] | None = None, scales: Sequence[float] = (1.0,)
) -> float:
    """The probability that a scan's central sagittal slices lie off the midline (averaged over them). With
    ``scales``, the slices are read as if their pixels were each of those times the size the view gives, and the
    probabilities are averaged: for a pixel size estimated from the anatomy, whose error runs to 15 % and more, a val
    slice 25 mm off the midline read 0.97 at its true size but 0.44 at an estimate 1.12 times it (user test); averaged
    over the estimate and 15 % either way it reads 0.69, while a mid-sagittal slice is not called off more often
    than at one size (``python scripts/midline_survey.py --scales``).

    Raises:
        ModelError: the model is missing or damaged.
    """
    p = float(np.mean([read_central_slices(_at_scale(view, s), MODEL_NAME, model).mean() for s in scales]))
    log.debug("off the midline: probability %.3f", p)
    return round(p, 4)


def _at_scale(view: SagittalView, scale: float) -> SagittalView:
    """``view`` with its in-plane pixel size ``scale`` times as large (the same pixels)."""
    if scale == 1.0:
        return view
    affine = np.array(view.scan.affine, dtype=np.float64)
    affine[:3, :2] *= scale  # rows and columns: the analysis layout keeps the slice axis last
    return SagittalView(Scan(view.scan.array, affine, view.scan.source), view.input)
