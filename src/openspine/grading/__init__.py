"""Disc grading: Pfirrmann grade and other degenerative findings for each detected disc.

``grade(view, detection)`` (:mod:`.grade`) cuts a disc-aligned crop for each requested disc (:mod:`.crop`, from the
detector's geometry: :mod:`.geometry`), runs the grader network (:mod:`.model`, ONNX, CPU), combines its logits
with measured disc features (:mod:`.features`) where the model has a stacker (:mod:`.stacker`), and returns the
discs with calibrated class probabilities for every head (:mod:`.heads`) of the model.
"""

from __future__ import annotations

from ..detection.types import DiscGeometry
from .crop import CropSpec, disc_crop
from .geometry import disc_geometry
from .grade import (
    PAIRED_GRADER,
    GradingOutput,
    SecondSeries,
    crops_for_discs,
    grade,
    grades_from_logits,
    paired_grader_available,
)
from .model import load_grader

__all__ = [
    "PAIRED_GRADER",
    "CropSpec",
    "DiscGeometry",
    "GradingOutput",
    "SecondSeries",
    "crops_for_discs",
    "disc_crop",
    "disc_geometry",
    "grade",
    "grades_from_logits",
    "load_grader",
    "paired_grader_available",
]
