"""Disc grading: Pfirrmann grade and other degenerative findings for each detected disc.

``grade(view, detection)`` cuts a disc-aligned crop for each requested disc (see :mod:`.crop`), runs the grader
network (ONNX, CPU) on the mid-sagittal slice and its neighbours, averages their logits, combines them with
measured disc features where the model has a stacker (:mod:`.stacker`), and returns the discs with calibrated
class probabilities for every head of the model. Gradings that the model does not provide
(canal and foraminal stenosis for the built-in grader) are reported as unavailable, never guessed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._logging import get_logger
from ..errors import GeometryError
from ..levels import LUMBAR_DISCS, DiscLevel, Grading, GradingName, grading_key
from ..results import Disc, Grade, ModelInfo
from ..scan import SagittalView
from .crop import CropSpec, DiscGeometry, disc_crop, slice_indices
from .features import features_for_discs
from .geometry import disc_geometry
from .heads import HeadSpec, unavailable_note
from .model import GraderModel, load_grader, softmax

log = get_logger("grading")

__all__ = [
    "CropSpec",
    "DiscGeometry",
    "GradingOutput",
    "crops_for_discs",
    "disc_crop",
    "disc_geometry",
    "grade",
    "grades_from_logits",
    "load_grader",
]

# The disc levels the built-in grader saw in training (SPIDER grades T9-T10 … L5-S1).
TRAINED_LEVELS: frozenset[DiscLevel] = frozenset(
    DiscLevel.parse(s) for s in ("T9-T10", "T10-T11", "T11-T12", "T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
)


@dataclass(frozen=True)
class GradingOutput:
    """What :func:`grade` found."""

    discs: tuple[Disc, ...]  # the detection's discs with .grades filled for the requested levels
    models: tuple[ModelInfo, ...]
    flags: tuple[str, ...]  # e.g. "not graded: C5-C6 (not requested)"


def crops_for_discs(
    view: SagittalView, geometries: Sequence[DiscGeometry], spec: CropSpec
) -> tuple[NDArray[np.float32], list[list[int]]]:
    """Crops of several discs as one batch (N, 1, H, W), and for each disc the batch rows that belong to it.

    Offsets that land on the same slice (a single-slice scan, thick slices) are cut once.
    """
    arr = view.scan.array
    spacing = view.scan.spacing
    rows: list[NDArray[np.float32]] = []
    owners: list[list[int]] = []
    for g in geometries:
        stack = disc_crop(arr, g, spacing, spec)
        idx = slice_indices(arr.shape[2], g.slice_index, spacing[2], spec.slice_offsets_mm)
        mine: list[int] = []
        seen: set[int] = set()
        for k, crop in zip(idx, stack):
            if k in seen:
                continue
            seen.add(k)
            mine.append(len(rows))
            rows.append(crop)
        owners.append(mine)
    h, w = spec.height, spec.width
    batch = np.stack(rows)[:, None] if rows else np.zeros((0, 1, h, w), np.float32)
    return batch, owners


def grades_from_logits(
    heads: Sequence[HeadSpec],
    logits: dict[str, NDArray[np.floating]],
    decision_offsets: Mapping[str, NDArray[np.floating]] | None = None,
) -> dict[str, Grade]:
    """Grades of one disc from its (slice-averaged) logits: calibrated probabilities and their most probable class
    (``grade``), and where the head has a decision offset (a stacked head: −log prior, see :mod:`.stacker`) the
    class-balanced decision, the argmax of the logits plus that offset (``balanced_grade``)."""
    out: dict[str, Grade] = {}
    offsets = decision_offsets or {}
    for h in heads:
        z = np.asarray(logits[h.name], dtype=np.float64)
        p = softmax(z[None], h.temperature)[0]
        balanced = h.grade_of(int(np.argmax(z + offsets[h.name]))) if h.name in offsets else None
        probs = {str(h.grade_of(i)): float(p[i]) for i in range(len(h.classes))}
        out[h.name] = Grade(
            grade=h.grade_of(int(np.argmax(p))), probabilities=probs, available=True, balanced_grade=balanced
        )
    return out


def grade(
    view: SagittalView,
    detection: Any,
    levels: tuple[DiscLevel, ...] | None = LUMBAR_DISCS,
    grader: str | os.PathLike[str] | None = None,
) -> GradingOutput:
    """Grade the detected discs of one scan.

    Args:
        view: the scan in the internal sagittal layout (``scan.to_sagittal()``).
        detection: the detector's output (``openspine.detection.detect(view)``): ``.discs`` and the geometry of
            their neighbouring vertebral bodies.
        levels: disc levels to grade (default T12-L1 … L5-S1); ``None`` grades every labelled disc.
        grader: a grader model folder (e.g. made by ``openspine finetune``) or built-in name; ``None`` = built-in.

    Returns:
        The discs (all of them, in the detection's order) with ``.grades`` filled for the graded ones, the grader's
        model info, and flags for discs not graded and why.

    Raises:
        ModelError: there is no grader model, or it is damaged.
    """
    model = load_grader(grader)
    discs: list[Disc] = list(detection.discs)
    flags: list[str] = []
    todo: list[int] = []
    todo_levels: list[DiscLevel] = []
    geoms: list[DiscGeometry] = []
    wanted = set(levels) if levels is not None else None
    for i, d in enumerate(discs):
        name = d.level.value if d.level is not None else f"disc #{i + 1} (unlabelled)"
        if d.level is None:
            flags.append(f"not graded: {name} (level unknown)")
            continue
        if wanted is not None and d.level not in wanted:
            flags.append(f"not graded: {name} (not requested)")
            continue
        try:
            geoms.append(disc_geometry(view, detection, i))
        except GeometryError as exc:
            flags.append(f"not graded: {name} ({exc})")
            continue
        todo.append(i)
        todo_levels.append(d.level)
        if d.level not in TRAINED_LEVELS:
            flags.append(f"graded outside the training levels (T9-T10 … L5-S1): {name}; treat with caution")
    if wanted is not None:
        found = {d.level for d in discs}
        for lv in levels or ():
            if lv not in found:
                flags.append(f"not graded: {lv.value} (not detected)")
    if todo:
        new = _run(model, view, geoms, todo_levels)
        for i, g in zip(todo, new):
            discs[i] = replace(discs[i], grades={**discs[i].grades, **g})
    return GradingOutput(discs=tuple(discs), models=(model.info,), flags=tuple(flags))


def _run(
    model: GraderModel, view: SagittalView, geoms: Sequence[DiscGeometry], levels: Sequence[DiscLevel]
) -> list[dict[GradingName, Grade]]:
    batch, owners = crops_for_discs(view, geoms, model.crop)
    logits = model.logits(batch)
    per_disc_logits = {h.name: np.stack([logits[h.name][rows].mean(axis=0) for rows in owners]) for h in model.heads}
    offsets = None
    if model.stacker is not None:
        feats = features_for_discs(view.scan.array, geoms, view.scan.spacing, levels)
        per_disc_logits = model.stacker.apply(per_disc_logits, feats)
        offsets = model.stacker.decision_offsets()
    present = {h.name for h in model.heads}
    out: list[dict[GradingName, Grade]] = []
    for j in range(len(owners)):
        per_disc = {h.name: per_disc_logits[h.name][j] for h in model.heads}
        g: dict[GradingName, Grade] = {
            grading_key(k): v for k, v in grades_from_logits(model.heads, per_disc, offsets).items()
        }
        for grading in Grading:
            if grading.value not in present:
                g[grading] = Grade(
                    grade=None, probabilities=None, available=False, note=unavailable_note(grading.value, model.name)
                )
        out.append(g)
    return out
