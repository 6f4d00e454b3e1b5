"""The ways a sagittal image can be stored the wrong way round, and when a labelling shows it is the right way round.

A NIfTI or DICOM file places its voxels in the body by its orientation header, and a picture has none (openspine
reads it head up, anterior on the left, as displayed). A wrong header, or a picture shown the other way round, puts
the spine upside down or facing backwards in front of the detector, which may then label and grade it all the same:
wrong levels, upper and lower endplates swapped. :data:`TURNS` names the seven wrong ways (every way a picture can
lie but the right one); the orientation recogniser (:mod:`openspine.recognition.orientation`) reads which one an
image shows, and the analysis asks it only where the labelling is not sure (:func:`sure_labelling`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..levels import Level
from ..vocabulary import FRONT_TO_BACK
from .flags import labelling_flagged
from .types import Detection

MIN_LABELLED = 4  # bodies with a level in a sure labelling
# each way an image may be stored the wrong way round (how it looks), and how to turn the internal layout (rows:
# head → feet, columns: front → back) back
TURNS: tuple[tuple[str, Callable[[NDArray[Any]], NDArray[Any]]], ...] = (
    ("upside down", lambda a: a[::-1]),
    (FRONT_TO_BACK, lambda a: a[:, ::-1]),
    ("turned by 180°", lambda a: a[::-1, ::-1]),
    ("turned a quarter turn clockwise", lambda a: np.rot90(a, 1)),
    ("turned a quarter turn anticlockwise", lambda a: np.rot90(a, -1)),
    ("transposed (rows and columns swapped)", lambda a: a.transpose(1, 0, *range(2, a.ndim))),
    ("transposed across the other diagonal", lambda a: np.rot90(a, 2).transpose(1, 0, *range(2, a.ndim))),
)


def turn_to_look(undo: Callable[[NDArray[Any]], NDArray[Any]]) -> Callable[[NDArray[Any]], NDArray[Any]]:
    """The turn of :data:`TURNS` that ``undo`` turns back: it makes a right-way-round image look as that entry
    names (training pictures, tests, surveys)."""
    probe = np.arange(6).reshape(2, 3, 1)
    return next(t for _, t in TURNS if np.array_equal(undo(t(probe)), probe))


def sure_labelling(detection: Detection) -> bool:
    """Whether a detection labels the spine without doubt: S1 found, at least :data:`MIN_LABELLED` labelled bodies,
    no labelling flag. Such a labelling reads the image the right way round; the orientation is not questioned."""
    labels = [v.label for v in detection.vertebrae if v.label is not None]
    return Level.S1 in labels and len(labels) >= MIN_LABELLED and not labelling_flagged(detection.flags)
