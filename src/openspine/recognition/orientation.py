"""Which way round a sagittal picture is stored, read from the image by the orientation recogniser.

A small network (the recogniser's CNN with one eight-way head, trained by ``openspine train orientation``) reads the
central slices of the scan in the internal layout (rows head → feet, columns front → back, as the header or the
display convention places them) and gives the probability of each way the picture may lie: the right way round, or
as an entry of :data:`openspine.detection.orientation.TURNS` names (upside down, reversed front to back, …).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .._logging import get_logger
from ..detection.orientation import TURNS
from ..scan import SagittalView
from ..vocabulary import RIGHT_WAY_ROUND
from .model import read_central_slices

log = get_logger("recognition.orientation")

MODEL_NAME = "orientation"
ORIENTATIONS: tuple[str, ...] = (RIGHT_WAY_ROUND, *(name for name, _ in TURNS))
__all__ = ["MODEL_NAME", "ORIENTATIONS", "RIGHT_WAY_ROUND", "OrientationReading", "read_orientation"]


@dataclass(frozen=True)
class OrientationReading:
    """The probability of each way round (:data:`ORIENTATIONS`) and the likeliest."""

    probabilities: dict[str, float]

    @property
    def likeliest(self) -> str:
        return max(self.probabilities, key=lambda k: self.probabilities[k])

    @property
    def probability(self) -> float:
        return self.probabilities[self.likeliest]


def read_orientation(view: SagittalView, model: str | os.PathLike[str] | None = None) -> OrientationReading:
    """The orientation recogniser's reading of a scan's central sagittal slices (probabilities averaged).

    Raises:
        ModelError: the model is missing or damaged.
    """
    probs = read_central_slices(view, MODEL_NAME, model).mean(axis=0)
    reading = OrientationReading({name: round(float(p), 4) for name, p in zip(ORIENTATIONS, probs)})
    log.debug("orientation: %s", reading)
    return reading
