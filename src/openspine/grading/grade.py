"""Disc grading: :func:`grade` grades the detected discs of one scan.

For each requested disc it cuts a disc-aligned crop (see :mod:`.crop`) from the detector's geometry
(:mod:`.geometry`), runs the grader network (ONNX, CPU) on the mid-sagittal slice and its neighbours, averages their
logits, combines them with measured disc features where the model has a stacker (:mod:`.stacker`), and returns the
discs with calibrated class probabilities for every head of the model. Gradings that the model does not provide
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
from ..detection.types import Detection, DiscGeometry
from ..errors import GeometryError
from ..levels import LUMBAR_DISCS, DiscLevel, Grading, GradingName, grading_key
from ..results import Disc, Grade, ModelInfo
from ..scan import SagittalView
from ..scope import GroupedFlags, ModelScope
from .crop import CropSpec, disc_crop, slice_indices
from .features import FEATURE_NAMES, disc_features
from .geometry import disc_geometry
from .heads import HeadSpec, unavailable_note
from .model import GraderModel, load_grader, softmax

log = get_logger("grading")

__all__ = ["GradingOutput", "crops_for_discs", "grade", "grades_from_logits"]


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

    Raises:
        GeometryError: a disc's geometry gives no crop (:func:`~openspine.grading.crop.disc_crop`).
    """
    rows: list[NDArray[np.float32]] = []
    owners: list[list[int]] = []
    for g in geometries:
        mine = _unique_crops(view, g, spec)
        owners.append(list(range(len(rows), len(rows) + len(mine))))
        rows.extend(mine)
    h, w = spec.height, spec.width
    batch = np.stack(rows)[:, None] if rows else np.zeros((0, 1, h, w), np.float32)
    return batch, owners


def _unique_crops(view: SagittalView, g: DiscGeometry, spec: CropSpec) -> list[NDArray[np.float32]]:
    """The disc's crops, one per distinct slice its offsets land on."""
    arr = view.scan.array
    spacing = view.scan.spacing
    stack = disc_crop(arr, g, spacing, spec)
    idx = slice_indices(arr.shape[2], g.slice_index, spacing[2], spec.slice_offsets_mm)
    seen: set[int] = set()
    out: list[NDArray[np.float32]] = []
    for k, crop in zip(idx, stack):
        if k not in seen:
            seen.add(k)
            out.append(crop)
    return out


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
    detection: Detection,
    levels: tuple[DiscLevel, ...] | None = LUMBAR_DISCS,
    grader: str | os.PathLike[str] | None = None,
    sequence: Mapping[str, Any] | None = None,
) -> GradingOutput:
    """Grade the detected discs of one scan.

    Args:
        view: the scan in the internal sagittal layout (``scan.to_sagittal()``).
        detection: the detector's output (``openspine.detection.detect(view)``): its discs and their geometry (or,
            without it, their outlines or their neighbouring vertebrae's outlines).
        levels: disc levels to grade (default T12-L1 … L5-S1); ``None`` grades every labelled disc.
        grader: a grader model folder (e.g. made by ``openspine finetune``) or built-in name; ``None`` = built-in.
        sequence: what the scan was taken to be (``input.sequence`` of the result); a sequence outside the card's
            scope withholds every requested disc's grades, as a level outside it withholds that disc's.

    Returns:
        The discs (all of them, in the detection's order) with ``.grades`` filled for the graded ones, the grader's
        model info, and flags for discs not graded and why.

    Raises:
        ModelError: there is no grader model, or it is damaged.
    """
    model = load_grader(grader)
    model_scope = ModelScope.from_card(model.loaded.card.data)
    wrong_sequence = model_scope.why_not_sequence(sequence)
    discs: list[Disc] = list(detection.discs)
    flags = GroupedFlags()
    todo: list[_Prepared] = []
    wanted = set(levels) if levels is not None else None
    for i, d in enumerate(discs):
        name = d.level.value if d.level is not None else f"unlabelled disc #{i + 1}"
        if d.level is None:
            flags.add("not graded", name, "level unknown")
            continue
        if wanted is not None and d.level not in wanted:
            flags.add("not graded", name, "not requested")
            continue
        outside = wrong_sequence or model_scope.why_not_level(d.level)
        if outside is not None:  # the card's sequences and levels: no grade the model cannot back
            flags.add("grades_withheld", name, outside)
            discs[i] = replace(d, grades={**d.grades, **_not_graded(model, outside, "withheld")})
            continue
        # one disc's odd geometry drops that disc, never the scan
        try:
            todo.append(_prepare(model, view, detection, i, d.level))
        except GeometryError as exc:
            reason = str(exc)
        except Exception as exc:  # the per-disc boundary: an unforeseen failure becomes this disc's reason
            log.debug("grading %s failed", name, exc_info=True)
            reason = f"unexpected {type(exc).__name__}: {exc}"
        else:
            continue
        log.info("not graded: %s (%s)", name, reason)
        flags.add("not graded", name, reason)
        discs[i] = replace(d, grades={**d.grades, **_not_graded(model, reason)})
    if wanted is not None:
        found = {d.level for d in discs}
        for lv in levels or ():
            if lv not in found:
                flags.add("not graded", lv.value, "not detected")
    for p, g in zip(todo, _run(model, todo)):
        d = discs[p.index]
        if isinstance(g, str):
            name = d.level.value if d.level is not None else f"disc #{p.index + 1}"
            log.info("not graded: %s (%s)", name, g)
            flags.add("not graded", name, g)
            g = _not_graded(model, g)
        discs[p.index] = replace(d, grades={**d.grades, **g})
    return GradingOutput(discs=tuple(discs), models=(model.info,), flags=flags.lines())


@dataclass(frozen=True)
class _Prepared:
    """What the grader needs of one disc: its crops (one per distinct slice) and, for a stacker, its features."""

    index: int  # in the detection's discs
    level: DiscLevel
    crops: tuple[NDArray[np.float32], ...]
    features: NDArray[np.float64] | None


def _prepare(model: GraderModel, view: SagittalView, detection: Detection, index: int, level: DiscLevel) -> _Prepared:
    """Geometry, crops and features of one disc.

    Raises:
        GeometryError: the disc cannot be graded; the message says why (degenerate, crossed or reversed endplates,
            non-finite corners, a disc outside the image or its slices).
    """
    g = disc_geometry(view, detection, index)
    crops = _unique_crops(view, g, model.crop)
    if not all(np.all(np.isfinite(c)) for c in crops):
        raise GeometryError("the disc's crop has non-finite values")
    feats = None
    if model.stacker is not None:
        arr, spacing = view.scan.array, view.scan.spacing
        feats = disc_features(arr[:, :, g.slice_index], g, (spacing[0], spacing[1]), level)
        bad = [n for n, x in zip(FEATURE_NAMES, feats) if not np.isfinite(x)]
        if bad:
            raise GeometryError(f"measured disc features are not finite: {', '.join(bad)}")
    return _Prepared(index=index, level=level, crops=tuple(crops), features=feats)


def _not_graded(model: GraderModel, reason: str, word: str = "not graded") -> dict[GradingName, Grade]:
    """The grades of a disc that was not graded (or whose grades were withheld): every head unavailable, with the
    reason."""
    out: dict[GradingName, Grade] = {
        grading_key(h.name): Grade(grade=None, probabilities=None, available=False, note=f"{word}: {reason}")
        for h in model.heads
    }
    out.update(_lacking(model))
    return out


def _lacking(model: GraderModel) -> dict[GradingName, Grade]:
    """The built-in gradings that the model has no head for: unavailable, with the note its card explains."""
    present = {h.name for h in model.heads}
    return {
        grading: Grade(
            grade=None, probabilities=None, available=False, note=unavailable_note(grading.value, model.loaded.card)
        )
        for grading in Grading
        if grading.value not in present
    }


def _run(model: GraderModel, prepared: Sequence[_Prepared]) -> list[dict[GradingName, Grade] | str]:
    """The grades of each prepared disc, or the reason it has none (the grader's output for it is not finite)."""
    if not prepared:
        return []
    owners: list[list[int]] = []
    rows: list[NDArray[np.float32]] = []
    for p in prepared:
        owners.append(list(range(len(rows), len(rows) + len(p.crops))))
        rows.extend(p.crops)
    logits = model.logits(np.stack(rows)[:, None])
    per_disc_logits = {h.name: np.stack([logits[h.name][r].mean(axis=0) for r in owners]) for h in model.heads}
    offsets = None
    if model.stacker is not None:
        feats = np.stack([p.features for p in prepared if p.features is not None])
        per_disc_logits = model.stacker.apply(per_disc_logits, feats)
        offsets = model.stacker.decision_offsets()
    out: list[dict[GradingName, Grade] | str] = []
    for j in range(len(prepared)):
        per_disc = {h.name: per_disc_logits[h.name][j] for h in model.heads}
        bad = [name for name, z in per_disc.items() if not np.all(np.isfinite(z))]
        if bad:
            out.append(f"the grader's output is not finite for {', '.join(bad)}")
            continue
        g: dict[GradingName, Grade] = {
            grading_key(k): v for k, v in grades_from_logits(model.heads, per_disc, offsets).items()
        }
        g.update(_lacking(model))
        out.append(g)
    return out
