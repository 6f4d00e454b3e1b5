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
from ..errors import GeometryError, ModelError
from ..levels import LUMBAR_DISCS, DiscLevel, Grading, GradingName, grading_key
from ..results import NOT_ASKED, Disc, Grade, ModelInfo
from ..scan import SagittalView
from ..scope import GroupedFlags, ModelScope, never_evaluated
from ..vocabulary import LOW_SCORE, score_text
from .colour import ColourCheck
from .crop import BlankCheck, CropSpec, check_corners_in_view, disc_crop, slice_indices
from .features import FEATURE_NAMES, disc_features
from .geometry import disc_geometry
from .heads import HeadSpec, unavailable_note
from .intensity import without_black_level
from .model import GraderModel, load_grader, softmax
from .noise import noise_flag
from .pair import paired_crops
from .strokes import StrokeCheck
from .void import VoidCheck

log = get_logger("grading")

__all__ = [
    "PAIRED_GRADER",
    "GradingOutput",
    "SecondSeries",
    "crops_for_discs",
    "grade",
    "grades_from_logits",
    "paired_grader_available",
]

PAIRED_GRADER = "grader-t1t2"  # the built-in grader that reads a disc from its T2 and its T1 crop together


@dataclass(frozen=True)
class SecondSeries:
    """A second series of the same study (e.g. the sagittal T1 beside the graded T2), its detection, and which of
    its discs is which disc of the main series (``pairs``: main disc index → this series' disc index, e.g. from
    :func:`openspine.study.match_series`). Discs without a pair are graded from the main series alone."""

    name: str  # its sequence, e.g. "T1": what each grade read from it records
    view: SagittalView
    detection: Detection
    pairs: Mapping[int, int]


@dataclass(frozen=True)
class GradingOutput:
    """What :func:`grade` found."""

    discs: tuple[Disc, ...]  # the detection's discs with .grades filled for the requested levels
    models: tuple[ModelInfo, ...]
    flags: tuple[str, ...]  # e.g. "not graded: T12-L1 (not detected)"
    # why no disc of the image was graded (its sequence, its pixel size, the caller's ``withhold``), or None
    withheld: str | None = None


def _sure_neighbours(detection: Detection, level: DiscLevel) -> None:
    """GeometryError where both bodies beside the disc scored below :data:`~openspine.vocabulary.LOW_SCORE`: the
    network barely sees a body there, so the disc's place between them, and its level, are unsure. A picture turned
    5° had one body split in two, both scored 0.00, with a disc "T12-L1" graded inside it (user test). On the SPIDER
    train T2 slices as stored 7 of 687 graded discs lay so, with 4 of 7 Pfirrmann grades as the radiologists'
    (554 of 687 over all)."""
    scores = {v.label: float(v.score) for v in detection.vertebrae if v.label is not None}
    up, low = scores.get(level.upper_vertebra), scores.get(level.lower_vertebra)
    if up is not None and low is not None and max(up, low) < LOW_SCORE:
        raise GeometryError(
            f"the bodies beside it scored below {LOW_SCORE} ({level.upper_vertebra.value} {score_text(up)}, "
            f"{level.lower_vertebra.value} {score_text(low)}): the network barely sees a body there, so the disc's "
            "place and level are unsure"
        )


def not_graded_unlabelled(name: str) -> str:
    """An unlabelled disc's note, naming it as the flags and the overlay do (``unlabelled disc #2``)."""
    return f"not graded: {name}, its level is unknown (a body beside it has no label; the flags say why)"


def _missing_reason(level: DiscLevel, detection: Detection) -> str:
    """Why a disc level asked for has no disc: beyond the labelled vertebrae (another station of a whole-spine study
    or a narrow field of view shows it; user test: called "not detected", as if the detector had missed it in view),
    else not detected."""
    labelled = [v.label for v in detection.vertebrae if v.label is not None and not v.label.is_transitional]
    if not labelled:
        return "not detected"
    top, bottom = min(labelled, key=lambda lv: lv.ordinal), max(labelled, key=lambda lv: lv.ordinal)
    if level.lower_vertebra.ordinal <= top.ordinal:
        return f"above the highest vertebra found, {top.value}: out of view or not detected"
    if level.upper_vertebra.ordinal >= bottom.ordinal:
        return f"below the lowest vertebra found, {bottom.value}: out of view or not detected"
    return "not detected"


def _levels_text(levels: Sequence[DiscLevel]) -> str:
    """``T12-L1 … L5-S1`` for a run of levels, else the levels listed."""
    names = [lv.value for lv in levels]
    return f"{names[0]} … {names[-1]}" if len(names) > 3 else ", ".join(names)


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
    second: SecondSeries | None = None,
    paired_grader: str | os.PathLike[str] | None = None,
    withhold: str | None = None,
    sure_neighbours: bool = False,
) -> GradingOutput:
    """Grade the detected discs of one scan.

    Args:
        view: the scan in the internal sagittal layout (``scan.to_sagittal()``).
        detection: the detector's output (``openspine.detection.detect(view)``): its discs and their geometry (or,
            without it, their outlines or their neighbouring vertebrae's outlines).
        levels: disc levels to grade (default T12-L1 … L5-S1); ``None`` grades every labelled disc.
        grader: a grader model folder (e.g. made by ``openspine finetune``) or built-in name; ``None`` = built-in.
        sequence: what the scan was taken to be (``input.sequence`` of the result); a sequence outside the card's
            scope withholds every requested disc's grades, as a level outside it withholds that disc's (and so do
            pixels coarser than the card's ``max_pixel_spacing_mm``).
        second: a second series of the study (e.g. T1) with its matched discs: the heads of the paired grader
            (``paired_grader``, default the built-in ``grader-t1t2``) are then read from both series' crops for each
            paired disc; every grade records the series it was read from (``Grade.series``).
        paired_grader: a grader model folder or built-in name whose card lists two input channels (main, second).
        withhold: why no disc of this image may be graded (an image whose intensities the grader cannot trust, e.g.
            a negative): every requested disc's gradings are then withheld with that note (after the card's
            sequence reason, where there is one too); nothing is cropped or run.
        sure_neighbours: leave a disc whose two neighbouring bodies both score below 0.25 ungraded, with the reason
            (the analysis's rule, :func:`_sure_neighbours`; the grader's own evaluation grades every disc found).

    Returns:
        The discs (all of them, in the detection's order) with ``.grades`` filled for the graded ones, the grader's
        model info, and flags for discs not graded and why, and ``intensity_offset_removed`` where a series cannot
        be raw MR magnitude and was read without its black level (:mod:`.intensity`).

    Raises:
        ModelError: there is no grader model, or it is damaged.
    """
    model = load_grader(grader)
    model_scope = ModelScope.from_card(model.loaded.card.data)
    wrong_sequence = model_scope.why_not_sequence(sequence)
    pixel_mm = float(max(view.scan.spacing[:2]))  # in-plane: rows, columns
    coarse = model_scope.why_not_pixels(pixel_mm)
    whole_image = "; ".join(r for r in (wrong_sequence, coarse, withhold) if r) or None
    # crops and features are in units of the bodies' intensity: an offset (z-scored, shifted data) is removed first
    view, offset_flag = without_black_level(view)
    offset_flags = [offset_flag] if offset_flag else []  # the second series' too, where it is read
    discs: list[Disc] = list(detection.discs)
    flags = GroupedFlags()
    todo: list[_Prepared] = []
    wanted = set(levels) if levels is not None else None
    checks = _DiscChecks.of(view, model.crop)
    for i, d in enumerate(discs):
        name = d.level.value if d.level is not None else f"unlabelled disc #{i + 1}"
        if d.level is None:
            flags.add("not graded", name, "level unknown")
            discs[i] = replace(d, note=not_graded_unlabelled(name))
            continue
        if wanted is not None and d.level not in wanted:  # left out as asked: not a warning, so no flag, a note
            discs[i] = replace(d, note=f"{NOT_ASKED} ({_levels_text(levels or ())})")
            continue
        # every reason that holds for the whole image (its sequence, its pixels, its intensities), else the level's
        outside = whole_image or model_scope.why_not_level(d.level)
        reason = ""
        if outside is None:  # the card's sequences and levels: no grade the model cannot back
            # one disc's odd geometry drops that disc, never the scan
            try:
                if sure_neighbours:
                    _sure_neighbours(detection, d.level)
                todo.append(_prepare(model, view, detection, i, d.level, checks))
                continue
            except _Withheld as exc:  # an image the grader was never trained on at this disc (a signal void)
                log.info("withheld: %s (%s)", name, exc)
                outside = str(exc)
            except GeometryError as exc:
                reason = str(exc)
            except Exception as exc:  # the per-disc boundary: an unforeseen failure becomes this disc's reason
                log.debug("grading %s failed", name, exc_info=True)
                reason = f"unexpected {type(exc).__name__}: {exc}"
        if outside is not None:
            flags.add("grades_withheld", name, outside)
            discs[i] = replace(d, grades={**d.grades, **_not_graded(model, outside, "withheld")})
            continue
        log.info("not graded: %s (%s)", name, reason)
        flags.add("not graded", name, reason)
        discs[i] = replace(d, grades={**d.grades, **_not_graded(model, reason)})
    if wanted is not None:
        found = {d.level for d in discs}
        for lv in levels or ():
            if lv not in found:
                flags.add("not graded", lv.value, _missing_reason(lv, detection))
    declared = sorted(model_scope.sequences or ())
    # the series' name in each grade: what the scan was taken to be, else the one sequence the grader reads
    main_name = str((sequence or {}).get("value") or (declared[0] if len(declared) == 1 else "main"))
    graded = _run(model, [np.stack(p.crops)[:, None] for p in todo], [p.features for p in todo])
    graded = [g if isinstance(g, str) else _with_series(g, (main_name,)) for g in graded]
    models = [model.info]
    if second is not None and todo:
        graded, paired_info = _read_with_second(
            view, todo, graded, second, paired_grader, main_name, flags, offset_flags
        )
        models.extend([paired_info] if paired_info is not None else [])
    for p, g in zip(todo, graded):
        d = discs[p.index]
        name = d.level.value if d.level is not None else f"disc #{p.index + 1}"
        if isinstance(g, str):
            log.info("not graded: %s (%s)", name, g)
            flags.add("not graded", name, g)
            g = _not_graded(model, g)
        else:
            g = _head_scope(model_scope, sequence, pixel_mm, p.level, name, g, flags)
        discs[p.index] = replace(d, grades={**d.grades, **g})
    unvalidated = not_validated_flag(model.loaded.card.data, discs)
    noisy = noise_flag(view) if todo else None  # said where grades are given: they move with the noise
    return GradingOutput(
        discs=tuple(discs),
        models=tuple(models),
        flags=(*offset_flags, *([noisy] if noisy else []), *flags.lines(), *([unvalidated] if unvalidated else [])),
        withheld=whole_image,
    )


# A head measured on fewer patients or discs than these has figures that say little (a patient-bootstrap interval
# from one patient is a single point): its grades are flagged like those of an unvalidated head.
MIN_VALIDATION_PATIENTS = 5
MIN_VALIDATION_DISCS = 15
NO_VALIDATION = "trained without validation (openspine finetune --no-validation)"
NOT_EVALUATED = "trained but never evaluated (--no-evaluate or --holdout; openspine evaluate grading --update-card)"


def thin_validation(n: Any, patients: Any, support: Any) -> str | None:
    """Why one head's validation figures say little, as words that follow "the head was" (None: they do not, or
    the card does not record enough to tell): discs of one class only (its balanced accuracy is that class's recall
    and kappa is undefined), or fewer than ``MIN_VALIDATION_PATIENTS`` patients or ``MIN_VALIDATION_DISCS`` discs."""
    if isinstance(support, list) and sum(1 for x in support if x) == 1:
        return "validated on discs of one class only"
    if not (isinstance(n, int) and isinstance(patients, int)):
        return None  # an older card without the counts: nothing to judge by
    if patients < MIN_VALIDATION_PATIENTS or n < MIN_VALIDATION_DISCS:
        return f"validated on only {n} disc{'s' if n != 1 else ''} of {patients} patient{'s' if patients != 1 else ''}"
    return None


def unvalidated_heads(card: Mapping[str, Any]) -> tuple[str | None, dict[str, str]]:
    """What a grader's card says of its validation: why no head is vouched for (None: that is not so) and why single
    heads are not. Read from what cards record, older ones included: ``metrics.validated`` false (a fine-tune written
    with ``--no-validation``; a trained grader before its evaluation, with ``metrics.reason``), empty metrics beside a
    training command that skipped the evaluation, each head's ``n``, ``patients`` and ``support`` in
    ``metrics.gradings``, and a fine-tune's ``metrics.kept_heads_not_validated`` (its base model's verdicts)."""
    metrics = card.get("metrics") or {}
    trained = (card.get("finetuning") or {}).get("trained_heads")
    every: str | None = None
    per_head: dict[str, str] = {}
    if metrics.get("validated") is False:
        if trained:  # a fine-tune: its kept base heads keep the base model's figures
            per_head.update(dict.fromkeys((str(h) for h in trained), NO_VALIDATION))
        else:
            every = str(metrics.get("reason") or NO_VALIDATION)
    elif never_evaluated(card):
        every = NOT_EVALUATED
    for head, m in (metrics.get("gradings") or {}).items():
        why = thin_validation(m.get("n"), m.get("patients"), m.get("support")) if isinstance(m, dict) else None
        if why is not None:
            per_head[str(head)] = why
    kept = metrics.get("kept_heads_not_validated")
    if isinstance(kept, dict):
        per_head.update({str(h): f"{why} (in its base model)" for h, why in kept.items()})
    return every, per_head


def not_validated_flag(card: Mapping[str, Any], discs: Sequence[Disc]) -> str | None:
    """The flag for grades given by heads whose validation the card does not vouch for (:func:`unvalidated_heads`:
    never validated, or on too few patients or discs, or on discs of one class); None where every head that gave a
    grade was validated, or none gave one. Such grades had been given without a word."""
    every, per_head = unvalidated_heads(card)
    given = sorted({str(getattr(k, "value", k)) for d in discs for k, g in d.grades.items() if g.available})
    by_reason: dict[str, list[str]] = {}
    for h in given:
        why = per_head.get(h, every)
        if why is not None:
            by_reason.setdefault(why, []).append(h)
    if not by_reason:
        return None
    said = [f"{', '.join(heads)}{' of the grader ' + repr(card.get('name', '?')) if i == 0 else ''} "
            f"{'were' if len(heads) > 1 else 'was'} {why}"
            for i, (why, heads) in enumerate(by_reason.items())]  # fmt: skip
    named = {h for heads in by_reason.values() for h in heads}
    base_heads = set((card.get("finetuning") or {}).get("kept_base_heads") or ())
    others = [h for h in given if h not in named]
    # said only where the heads not named are a fine-tune's kept base heads (not its own, nor any model's)
    kept = (
        " (its other heads are its base model's, with their measured figures)"
        if others and set(others) <= base_heads
        else ""
    )
    their = "their grades have" if len(named) > 1 else "its grades have"
    return (
        f"grader_not_validated: {'; '.join(said)}: {their} no measured accuracy, or one that says little, and "
        f"{'their' if len(named) > 1 else 'its'} probabilities may not be calibrated{kept}"
    )


def _head_scope(
    model_scope: ModelScope,
    sequence: Mapping[str, Any] | None,
    pixel_mm: float,
    level: DiscLevel,
    name: str,
    grades: dict[GradingName, Grade],
    flags: GroupedFlags,
) -> dict[GradingName, Grade]:
    """Withhold each grade whose head's own scope (``scope.heads`` of the card) excludes this sequence, pixel size or
    level: a fine-tuned head answers only where it was trained, beside base heads that keep theirs."""
    if not model_scope.heads:
        return grades
    out = dict(grades)
    heads_of: dict[str, list[str]] = {}
    for key, gr in grades.items():
        head = str(getattr(key, "value", key))
        why = model_scope.head_reason(head, sequence, level, pixel_mm) if gr.available else None
        if why is not None:
            heads_of.setdefault(why, []).append(head)
            out[key] = Grade(grade=None, probabilities=None, available=False, note=f"withheld: {why}")
    for why, heads in heads_of.items():  # one flag line per reason and set of heads, naming the discs
        flags.add("grades_withheld", name, f"{', '.join(heads)}: {why}")
    return out


@dataclass(frozen=True)
class _Prepared:
    """What the grader needs of one disc: its crops (one per distinct slice) and, for a stacker, its features."""

    index: int  # in the detection's discs
    level: DiscLevel
    geometry: DiscGeometry
    crops: tuple[NDArray[np.float32], ...]
    features: NDArray[np.float64] | None


@dataclass(frozen=True)
class _DiscChecks:
    """What is checked at each disc of one view before it is graded, each check prepared once for the view: a signal
    void (:mod:`.void`; intensities as acquired only: a picture's window and gamma can leave a dark disc as dark as
    air), colour or white strokes drawn over it (:mod:`.colour`, :mod:`.strokes`; pictures only) and the blank a
    field of view leaves (:class:`~.crop.BlankCheck`)."""

    voids: VoidCheck | None
    colours: ColourCheck | None
    strokes: StrokeCheck | None
    blanks: BlankCheck

    @classmethod
    def of(cls, view: SagittalView, spec: CropSpec) -> _DiscChecks:
        picture = view.scan.source.format == "image"
        return cls(
            voids=None if picture else VoidCheck(view.scan.array, view.scan.spacing[:2]),
            colours=ColourCheck.of(view, spec) if picture else None,
            strokes=StrokeCheck(view, spec) if picture else None,
            blanks=BlankCheck(view.scan.array, view.scan.spacing, spec),
        )

    def drawn(self, geometry: DiscGeometry) -> str | None:
        """Why the disc's crop would show a drawing (colour or white strokes over it), else None."""
        for check in (self.colours, self.strokes):
            why = check.why(geometry) if check is not None else None
            if why is not None:
                return why
        return None

    def withheld(self, geometry: DiscGeometry) -> str | None:
        """Why the disc's grades are withheld (a signal void, a drawing over it), else None."""
        void = self.voids.why(geometry) if self.voids is not None else None
        return void or self.drawn(geometry)


class _Withheld(Exception):
    """A disc the grader must not answer for (its reason is the message); the scan goes on."""


def _prepare(
    model: GraderModel,
    view: SagittalView,
    detection: Detection,
    index: int,
    level: DiscLevel,
    checks: _DiscChecks,
) -> _Prepared:
    """Geometry, crops and features of one disc.

    Raises:
        _Withheld: the disc or a body beside it is a signal void (:mod:`.void`), or colour is drawn over it
            (:mod:`.colour`).
        GeometryError: the disc cannot be graded; the message says why (degenerate, crossed or reversed endplates,
            non-finite corners, a disc outside the image or its slices).
    """
    g = disc_geometry(view, detection, index)
    unfit = checks.withheld(g)
    if unfit is not None:
        raise _Withheld(unfit)
    check_corners_in_view(g, view.scan.array.shape)
    checks.blanks.check(g)
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
    return _Prepared(index=index, level=level, geometry=g, crops=tuple(crops), features=feats)


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


def _run(
    model: GraderModel,
    batches: Sequence[NDArray[np.float32]],
    features: Sequence[NDArray[np.float64] | None],
) -> list[dict[GradingName, Grade] | str]:
    """The grades of each disc from its crops (``batches[j]``: (n_j, channels, H, W), one row per slice; their logits
    are averaged) and its measured features (for a stacker), or the reason it has none (the grader's output for it
    is not finite)."""
    if not batches:
        return []
    owners: list[list[int]] = []
    start = 0
    for b in batches:
        owners.append(list(range(start, start + len(b))))
        start += len(b)
    logits = model.logits(np.concatenate(batches))
    per_disc_logits = {h.name: np.stack([logits[h.name][r].mean(axis=0) for r in owners]) for h in model.heads}
    offsets = None
    if model.stacker is not None:
        feats = np.stack([f for f in features if f is not None])
        per_disc_logits = model.stacker.apply(per_disc_logits, feats)
        offsets = model.stacker.decision_offsets()
    out: list[dict[GradingName, Grade] | str] = []
    for j in range(len(batches)):
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


def _with_series(grades: Mapping[GradingName, Grade], series: tuple[str, ...]) -> dict[GradingName, Grade]:
    """The grades with the series they were read from (available grades only)."""
    return {k: replace(g, series=series) if g.available else g for k, g in grades.items()}


def paired_grader_available(paired_grader: str | os.PathLike[str] | None = None) -> bool:
    """Whether a grader that reads two series is at hand: the one named, else the built-in one (optional).

    Raises:
        ModelError: the named grader is missing, damaged or does not read two series.
    """
    return _paired_model(paired_grader) is not None


def _paired_model(paired_grader: str | os.PathLike[str] | None) -> GraderModel | None:
    """The grader that reads two series, or None when the installation has none (the built-in one is optional)."""
    try:
        model = load_grader(paired_grader if paired_grader is not None else PAIRED_GRADER)
    except ModelError:
        if paired_grader is not None:
            raise
        return None
    if len(model.channels) != 2:
        raise ModelError(
            f"grader '{model.name}' reads {len(model.channels)} series per crop; a paired grader reads two "
            '(its card\'s input.channels, e.g. ["T2", "T1"])'
        )
    return model


def _read_with_second(
    view: SagittalView,
    todo: Sequence[_Prepared],
    graded: list[dict[GradingName, Grade] | str],
    second: SecondSeries,
    paired_grader: str | os.PathLike[str] | None,
    main_name: str,
    flags: GroupedFlags,
    offset_flags: list[str],
) -> tuple[list[dict[GradingName, Grade] | str], ModelInfo | None]:
    """Replace, for each disc the second series also shows, the paired grader's heads by its reading of both
    crops; a disc whose second crop cannot be cut keeps its main-series grades (flagged). The second series is read
    without its black level where it cannot be raw magnitude (its flag added to ``offset_flags``)."""
    model = _paired_model(paired_grader)
    if model is None:
        flags.add(f"{second.name} series not used for grading", "all discs", f"no grader reads {second.name} here")
        return graded, None
    second_view, offset_flag = without_black_level(second.view, second.name)
    offset_flags.extend([offset_flag] if offset_flag else [])
    paired_scope = ModelScope.from_card(model.loaded.card.data)
    checks = _DiscChecks.of(second_view, model.crop)
    jobs: list[tuple[int, NDArray[np.float32], NDArray[np.float64] | None]] = []
    for j, p in enumerate(todo):
        k = second.pairs.get(p.index)
        if k is None or isinstance(graded[j], str):  # no partner, or not graded at all
            continue
        outside = paired_scope.why_not_level(p.level)
        if outside is not None:  # the paired grader's own card: no grade it cannot back; the T2 grades stand
            flags.add(f"{second.name} series not used for grading", p.level.value, outside)
            continue
        try:
            g2 = disc_geometry(second_view, second.detection, k)
            check_corners_in_view(g2, second_view.scan.array.shape)
            checks.blanks.check(g2)
            drawn = checks.drawn(g2)
            if drawn is not None:
                raise GeometryError(drawn)
            crops = paired_crops(view, p.geometry, second_view, g2, model.crop)
            feats = p.features
            if model.stacker is not None and feats is None:
                arr, spacing = view.scan.array, view.scan.spacing
                feats = disc_features(arr[:, :, p.geometry.slice_index], p.geometry, (spacing[0], spacing[1]), p.level)
        except GeometryError as exc:
            flags.add(f"{second.name} series not used for grading", p.level.value, str(exc))
            continue
        jobs.append((j, crops, feats))
    paired = _run(model, [c for _, c, _ in jobs], [f for _, _, f in jobs])
    out = list(graded)
    names = {grading_key(h.name) for h in model.heads}
    for (j, _, _), g in zip(jobs, paired):
        if isinstance(g, str):
            flags.add(f"{second.name} series not used for grading", todo[j].level.value, g)
            continue
        both = {k: replace(v, series=(main_name, second.name)) for k, v in g.items() if k in names}
        out[j] = {**graded[j], **both}  # type: ignore[dict-item]  # jobs hold graded discs only
    return out, model.info if jobs else None
