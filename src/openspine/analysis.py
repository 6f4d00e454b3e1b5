"""The pure core: Scan → AnalysisResult. File and batch shells call this."""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import geometry, scope
from ._logging import get_logger
from .config import AnalysisConfig
from .errors import ModelError
from .results import AnalysisResult, Disc, InputInfo, ModelInfo, Vertebra, vec3
from .scan import SagittalView, Scan
from .vocabulary import SEQUENCES

if TYPE_CHECKING:  # imported where used: a partial install may lack the recogniser
    from .detection import Detection
    from .recognition import ImageRecognition

log = get_logger("analysis")


def input_info(scan: Scan) -> InputInfo:
    src = scan.source
    series = {k: v for k, v in src.to_dict().items() if v is not None and k not in ("path", "format")}
    return InputInfo(
        path=src.path,
        format=src.format,
        shape=scan.shape,
        spacing_mm=vec3(scan.spacing),
        orientation=scan.orientation,
        affine=tuple(tuple(round(float(x), 6) for x in row) for row in scan.affine),
        world_convention=geometry.WORLD_CONVENTION,
        series=series,
    )


STAGES = ("read", "detect", "grade")


def analyze(
    source: Scan | str | os.PathLike[str],
    config: AnalysisConfig | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> AnalysisResult:
    """Detect, label and grade the spine in one scan.

    Args:
        source: a :class:`Scan` or anything :func:`openspine.load_scan` reads.
        config: options as an :class:`~openspine.config.AnalysisConfig`.
        **options: the same options as keywords (``series``, ``pixel_spacing``, ``detector``, ``grader``,
            ``grade_levels``, ``sequence``); they override ``config``. Unknown names raise ConfigError.
        progress: called with each stage name of :data:`STAGES` as it starts (for progress bars).

    Example::

        result = openspine.analyze("study/", grade_levels="all")
        result.to_dataframe("discs")
    """
    base = config.to_dict() if config is not None else {}
    cfg = AnalysisConfig.from_mapping({**base, **options}) if options or config is None else config
    detector = cfg.detector
    timings: dict[str, float] = {}
    step = progress or (lambda stage: None)
    t0 = time.perf_counter()
    step("read")
    scan = _read(source, cfg)
    timings["read"] = time.perf_counter() - t0
    scan.check_analysable()
    view = scan.to_sagittal()

    state = _State()
    t = time.perf_counter()
    recognition = _recognise(view, state)
    sequence, plane = _sequence_and_plane(scan, recognition, cfg, state)
    timings["recognition"] = time.perf_counter() - t

    t = time.perf_counter()
    step("detect")
    detection = None if state.out_of_scope else _detect(view, detector, state)
    timings["detection"] = time.perf_counter() - t
    cervical_p = recognition.cervical_probability if recognition is not None else None
    if detection is not None:
        detection = _label_scope(detection, detector, cervical_p, state)
        from .grading.features import csf_over_body

        sequence = scope.check_sequence_by_fluid(sequence, csf_over_body(view, detection))
        t = time.perf_counter()
        step("grade")
        _grade(view, detection, cfg, sequence, state)
        timings["grading"] = time.perf_counter() - t
    elif state.out_of_scope:
        state.not_run.update(detection=state.out_of_scope, grading=state.out_of_scope)
    else:
        state.not_run.setdefault("grading", "grading needs detected discs")
    unsure = None if state.out_of_scope else scope.uncertain_sequence_flag(sequence)  # nothing was graded anyway
    state.flags.extend(f for f in (unsure, scope.low_score_flag(state.vertebrae)) if f)
    fov = scope.field_of_view((v.label for v in state.vertebrae), cervical_p)

    timings["total"] = time.perf_counter() - t0
    for stage, why in state.not_run.items():
        log.warning("%s not run: %s", stage, why)
    return AnalysisResult(
        input=replace(input_info(scan), sequence=sequence, plane=plane, field_of_view=fov),
        vertebrae=tuple(state.vertebrae),
        discs=tuple(state.discs),
        models=tuple(state.models),
        flags=tuple(dict.fromkeys(state.flags)),
        steps_not_run=state.not_run,
        out_of_scope=state.out_of_scope,
        parameters=cfg.to_dict(),
        timings_s=timings,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        view=view,
    )


def _read(source: Scan | str | os.PathLike[str], cfg: AnalysisConfig) -> Scan:
    if isinstance(source, Scan):
        return source
    from .io import load_scan

    return load_scan(Path(source), series=cfg.series, pixel_spacing=cfg.pixel_spacing)


def _sequence_and_plane(
    scan: Scan, recognition: ImageRecognition | None, cfg: AnalysisConfig, state: _State
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sequence (option, header, image) and the plane of the scan; a picture that is not sagittal is out of
    scope (``state.out_of_scope``)."""
    image_seq = recognition.sequence_probabilities if recognition is not None else None
    sequence = scope.decide_sequence(cfg.sequence, _header_sequence(scan), image_seq)
    plane, state.out_of_scope, plane_flag = scope.decide_plane(
        scan.source.format, recognition.plane_probabilities if recognition is not None else None
    )
    state.flags.extend([plane_flag] if plane_flag else [])
    return sequence, plane


@dataclass
class _State:
    """What one analysis has found so far (records, flags, reasons)."""

    vertebrae: list[Vertebra] = field(default_factory=list)
    discs: list[Disc] = field(default_factory=list)
    models: list[ModelInfo] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)
    out_of_scope: str | None = None


def _header_sequence(scan: Scan) -> str | None:
    hint = scan.source.sequence_hint
    if not hint:
        return None
    return hint if hint in SEQUENCES else "other"  # a hint set by hand outside the vocabulary: not T2, so no grades


def _recognise(view: SagittalView, state: _State) -> ImageRecognition | None:
    """The image recogniser's view of the scan (plane, sequence, cervical), or None when it cannot run."""
    try:
        from .recognition import recognise
    except ImportError as exc:  # a partial install: the analysis goes on with the header alone
        state.not_run["recognition"] = f"recogniser not installed: {exc}"
        return None
    try:
        rec = recognise(view)
    except ModelError as exc:
        state.not_run["recognition"] = f"no usable built-in recogniser: {exc}"
        return None
    from .models import load_model
    from .recognition.model import MODEL_NAME

    state.models.append(load_model(MODEL_NAME).card.info())  # the session is cached: this reads the card
    return rec


def _detect(view: SagittalView, detector: str | None, state: _State) -> Detection | None:
    from .detection import detect

    try:
        detection = detect(view, model=detector)
    except ModelError as exc:
        if detector is not None:
            raise
        state.not_run["detection"] = f"no usable built-in detector: {exc}"
        return None
    state.models.extend(detection.models)
    state.flags.extend(detection.flags)
    if not detection.vertebrae:
        state.out_of_scope = "no vertebral body detected: this does not look like a sagittal spine image"
        return None
    return detection


def _label_scope(detection: Detection, detector: str | None, cervical_p: float | None, state: _State) -> Detection:
    """Withhold the labels the detector's card cannot back (cervical field of view, levels outside its scope)."""
    from .detection import BUILTIN_MODEL
    from .models import load_model

    card = load_model(detector or BUILTIN_MODEL).card.data
    det_scope = scope.ModelScope.from_card(card)
    cervical = cervical_p is not None and cervical_p >= scope.MIN_CERVICAL_PROBABILITY
    reason_of = scope.detector_label_reason(det_scope, cervical)
    vertebrae, discs, flags = scope.withhold_labels(detection.vertebrae, detection.discs, reason_of)
    if cervical:
        flags.insert(0, f"cervical_field_of_view: the image shows the cervical spine (probability {cervical_p:.2f})")
    state.flags.extend(flags)
    state.vertebrae, state.discs = vertebrae, discs
    return replace(detection, vertebrae=tuple(vertebrae), discs=tuple(discs))


def _grade(
    view: SagittalView, detection: Detection, cfg: AnalysisConfig, sequence: dict[str, Any], state: _State
) -> None:
    from .grading import grade

    try:
        graded = grade(view, detection, levels=cfg.grade_levels, grader=cfg.grader, sequence=sequence)
    except ModelError as exc:
        if cfg.grader is not None:
            raise
        state.not_run["grading"] = f"no usable built-in grader: {exc}"
        return
    state.models.extend(graded.models)
    state.flags.extend(graded.flags)
    state.discs = list(graded.discs)
