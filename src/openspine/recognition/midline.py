"""Whether a sagittal slice runs through the middle of the spine, read from the image by the midline recogniser.

A small network (the recogniser's CNN with one output, trained by ``openspine train midline``) reads the central
slices of a scan in the internal layout, as the image recogniser does, and gives the probability that the slice lies
:data:`OFF_MM` mm or more to one side of the midline: through the pedicles, facet joints and foramina rather than the
middle of the discs and the spinal canal, where the grader was trained.
"""

from __future__ import annotations

import os

from .._logging import get_logger
from ..scan import SagittalView
from ..scope import AT_MIDLINE_MM, OFF_MIDLINE_MM
from .model import read_central_slices

log = get_logger("recognition.midline")

MODEL_NAME = "midline"
OFF_MM = OFF_MIDLINE_MM  # trained as off the midline from this far to one side ...
AT_MM = AT_MIDLINE_MM  # ... and as at the midline up to this far

__all__ = ["AT_MM", "MODEL_NAME", "OFF_MM", "off_midline_probability"]


def off_midline_probability(view: SagittalView, model: str | os.PathLike[str] | None = None) -> float:
    """The probability that a scan's central sagittal slices lie off the midline (averaged over them).

    Raises:
        ModelError: the model is missing or damaged.
    """
    p = float(read_central_slices(view, MODEL_NAME, model).mean())
    log.debug("off the midline: probability %.3f", p)
    return round(p, 4)
