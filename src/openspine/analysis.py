"""The pure core: Scan → AnalysisResult. File and batch shells call this."""

from __future__ import annotations

import datetime as _dt
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import scope
from ._logging import get_logger
from .config import AUTO, AnalysisConfig, PixelSpacing, reading_spacing
from .errors import ConfigError, ModelError, OpenSpineError, OutOfScopeError
from .results import (
    AnalysisResult,
    Disc,
    InputInfo,
    ModelInfo,
    OtherSeries,
    SeriesMatchInfo,
    Vertebra,
)
from .scan import SagittalView, Scan
from .vocabulary import DICOM_FILES_UNREADABLE, EDGE_NEGATIVE, FRONT_TO_BACK, RIGHT_WAY_ROUND, SEQUENCES, T1_NOT_USED

if TYPE_CHECKING:  # imported where used: a partial install may lack the recogniser
    from .detection import Detection
    from .detection.scale import ScaleEstimate
    from .grading import SecondSeries
    from .levels import Level
    from .recognition import ImageRecognition
    from .study import SeriesMatch

SERIES_CHOICE = "chosen_because"  # the key of input.series that says why a study's series was the one read
log = get_logger("analysis")


STAGES = ("read", "detect", "grade")
# why a T1 series read beside the main one does not inform the grades where no grader reads both series
NO_PAIRED_GRADER = (
    "no grader that reads T1 beside T2 is installed (those trained on SPIDER showed no gain from T1 that held "
    "from cross-validation to val, see docs/grading.md); its discs were paired with the main series' by level"
)


def analyze(
    source: Scan | str | os.PathLike[str],
    config: AnalysisConfig | Mapping[str, Any] | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    t1: Scan | str | os.PathLike[str] | None = None,
    **options: Any,
) -> AnalysisResult:
    """Detect, label and grade the spine in one scan (with the study's T1 series beside it, when there is one).

    Args:
        source: a :class:`Scan` or anything :func:`openspine.load_scan` reads; a DICOM study with a sagittal T1
            series beside the main (T2) one reads both (:func:`openspine.io.load_study`).
        config: options as an :class:`~openspine.config.AnalysisConfig`, or a dict of its fields.
        t1: the sagittal T1 series of the same study, given separately (a :class:`Scan` or a path: NIfTI, DICOM
            folder or picture with ``t1_pixel_spacing``); it replaces a T1 series found in ``source``.
        **options: the same options as keywords (``series``, ``pixel_spacing``, ``detector``, ``grader``,
            ``grade_levels``, ``sequence``, ``use_t1``, ``t1_pixel_spacing``, ``paired_grader``, ``engine``,
            ``spinenet_weights``, ``check_orientation``: every field of :class:`~openspine.config.AnalysisConfig`);
            they override ``config``. Unknown names raise ConfigError.
        progress: called with each stage name of :data:`STAGES` as it starts (for progress bars).

    Example::

        result = openspine.analyze("study/", grade_levels="all")
        result = openspine.analyze("sub-01_T2w.nii.gz", t1="sub-01_T1w.nii.gz")
        result.to_dataframe("discs")
    """
    from .io.read import check_input_type

    check_input_type(source, "the scan given to openspine.analyze", scan_allowed=True)  # not an array: say how
    if t1 is not None:
        check_input_type(t1, "the t1 given to openspine.analyze", scan_allowed=True)
    if isinstance(config, Mapping):  # {"grade_levels": "all"}: the same options as a dict
        options = {**config, **options}
        config = None
    elif config is not None and not isinstance(config, AnalysisConfig):
        raise ConfigError(
            f"config must be an openspine.AnalysisConfig or a dict of its options, got {type(config).__name__}; "
            "or give the options as keywords: openspine.analyze(path, grade_levels='all')"
        )
    base = config.to_dict() if config is not None else {}
    cfg = AnalysisConfig.from_mapping({**base, **options}) if options or config is None else config
    if cfg.engine == "spinenet":
        return _with_spinenet(source, cfg, progress, t1)
    unread: list[tuple[str, str]] = []  # the study's sagittal series not read: (in words, SeriesInstanceUID)
    result = _analyze_configured(source, cfg, progress, t1, unread)
    return _lumbar_series_instead(result, unread, source, cfg, progress, t1)


# what a result's field of view shows of what the models read: the sacrum (levels anchored), the lumbar spine, neither
def _lumbar_reach(result: AnalysisResult) -> int:
    if result.out_of_scope is not None:
        return -1
    regions = (result.input.field_of_view or {}).get("regions") or ()
    return 2 if "sacral" in regions else 1 if "lumbar" in regions else 0


def _worth(result: AnalysisResult) -> tuple[int, int]:
    """What a series' analysis gives of what the models answer: its graded discs first, then how far down the lumbar
    spine it reaches (:func:`_lumbar_reach`)."""
    return sum(d.graded for d in result.discs), _lumbar_reach(result)


def _lumbar_series_instead(
    result: AnalysisResult,
    unread: list[tuple[str, str]],
    source: Scan | str | os.PathLike[str],
    cfg: AnalysisConfig,
    progress: Callable[[str], None] | None,
    t1: Scan | str | os.PathLike[str] | None,
) -> AnalysisResult:
    """Where the series a study's rules chose grades no disc and shows no lumbar spine down to the sacrum (flag
    ``other_series_unread``), and the user named no series, the study's other sagittal series that may show it are
    analysed, and the one that grades the most discs (then reaches furthest down) becomes the result, flagged
    ``series_switched``, if it shows lumbar vertebrae and gives more than the first. The stations of a whole-spine
    study in frames of reference of their own cannot be told apart by their headers: the cervical one, with more
    slices, had been read and nothing graded (user test). A first series that grades discs stays (the flag names the
    others): a series that shows the sacrum may grade fewer."""
    if not any(f.startswith(OTHER_SERIES_UNREAD) for f in result.flags) or any(d.graded for d in result.discs):
        return result
    from .io.dicom import ChosenSeries

    if cfg.series is not None and not isinstance(cfg.series, ChosenSeries):  # the user's choice stands
        return result
    seq = result.input.sequence or {}
    shows = (
        _not_t2_words(seq) if _reads_as_no_t2(seq) and _lumbar_reach(result) == 2 else f"shows {_reach_words(result)}"
    )
    first = f"the series chosen first, {_series_words(result)}, {shows}"
    best, best_words = result, ""
    tried = time.perf_counter()
    for words, uid in unread:
        why = f"{first}; {words} was read instead"
        try:  # quietly: the progress of the analysis the user waits for was shown once
            other = _analyze_configured(source, replace(cfg, series=ChosenSeries(uid, why)), None, t1, [])
        except Exception as exc:  # a series that cannot be analysed stays unread, as it was
            log.info("the study's other series %s was not analysed instead: %s", words, exc)
            continue
        if _lumbar_reach(other) >= 1 and _worth(other) > _worth(best):
            best, best_words = other, words
            if _worth(other) >= (1, 2):  # graded, down to the sacrum: no other station shows more
                break
    if best is result:
        return result
    why = f"{first}; {best_words} was read instead"
    log.warning("%s", why)
    left = [w for w, _ in unread if w != best_words]
    # the study's own flag, said of the first choice only: it names the series analysed first
    study = [f"{f} (read instead: see series_switched)" for f in result.flags if f.startswith(SEVERAL_STUDIES)]
    flags = [f for f in best.flags if not f.startswith(OTHER_SERIES_UNREAD)]
    if _lumbar_reach(best) < 2 and left:  # the others stay named, as they were
        flags.append(_other_series_flag(left, best.input.field_of_view or {"value": None, "regions": ()}))
    timings = {**best.timings_s, "series_tried": time.perf_counter() - tried}
    timings["total"] = result.timings_s.get("total", 0.0) + timings["series_tried"]
    # the options stay those given (no series named): the same call reads the same series again
    return replace(
        best, flags=(f"series_switched: {why}", *study, *flags), parameters=result.parameters, timings_s=timings
    )


def _series_words(result: AnalysisResult) -> str:
    """'T2_TSE_SAG_1 (--series 1)': a series as the flags name it, with what --series takes."""
    from .io.dicom import stack_words

    series = result.input.series or {}
    stack = stack_words(str(series.get("series_uid") or ""))
    name = (series.get("series_description") or "unnamed series") + stack
    number = series.get("series_number")
    if stack:  # the stacks of one series share its number: their UID with the stack names them
        return f"{name} (--series '{series['series_uid']}')"
    return f"{name} (--series {number})" if number is not None else name


def _reach_words(result: AnalysisResult) -> str:
    fov = (result.input.field_of_view or {}).get("value")
    return f"{_lacks(result.input.field_of_view or {})} (field of view: {fov})" if fov else "no lumbar vertebra"


def _lacks(field_of_view: Mapping[str, Any]) -> str:
    """What a field of view lacks of the lumbar spine down to the sacrum, in words."""
    return "no sacrum" if "lumbar" in (field_of_view.get("regions") or ()) else "no lumbar vertebra"


def _analyze_configured(
    source: Scan | str | os.PathLike[str],
    cfg: AnalysisConfig,
    progress: Callable[[str], None] | None,
    t1: Scan | str | os.PathLike[str] | None,
    unread: list[tuple[str, str]],
) -> AnalysisResult:
    """:func:`analyze` with its options checked, the study's sagittal series left unread collected in ``unread``."""
    detector = cfg.detector
    timings: dict[str, float] = {}
    step = progress or (lambda stage: None)
    t0 = time.perf_counter()
    step("read")
    read_flags: list[str] = []
    scan, t1_scan = _read(source, cfg, read_flags, unread)
    if t1 is not None and cfg.use_t1:
        if t1_scan is not None:  # the user's choice, but the study's own T1 must not vanish without a word
            log.warning(
                "the T1 given (t1 / --t1) is read instead of the study's own T1 series %s",
                _series_name(t1_scan) or "(unnamed)",
            )
        read_flags[:] = [f for f in read_flags if not f.startswith(T1_NOT_USED)]  # the study's T1 is not wanted
        t1_scan = _read_t1(t1, cfg, read_flags)
    _say_not_applied(_t1_not_applied(cfg, t1_scan if cfg.use_t1 else None))  # said once the T1 is known
    read_flags.extend(_header_flags(scan, t1_scan if cfg.use_t1 else None))
    scan, non_finite = scan.with_finite_voxels()  # before any use, a refusal's picture too
    read_flags.extend([non_finite] if non_finite else [])
    timings["read"] = time.perf_counter() - t0
    try:
        scan, view, image_plane = _analysable(scan, read_flags, detector)
    except OutOfScopeError as exc:  # nothing to look at: refused as read, the result says why
        return _not_analysed(scan, t1_scan if cfg.use_t1 else None, exc, cfg, read_flags, timings, t0)

    state = _State(flags=read_flags)
    step("detect")
    seen = _look(scan, view, cfg.sequence, detector, state, timings, cfg.check_orientation)
    detection, sequence, scan, view = seen.detection, seen.sequence, seen.scan, seen.view
    if sequence.get("value") is None and _size_given_for_picture(scan, cfg):  # a suspect the messages name
        sequence["pixel_size_given_mm"] = round(float(scan.spacing[0]), 4)
    others: tuple[OtherSeries, ...] = ()
    second = None
    if detection is not None and t1_scan is not None and cfg.use_t1:
        t = time.perf_counter()
        other, second = _read_beside(t1_scan, scan, view, detection, sequence, detector, state, cfg.paired_grader)
        others = (other,)
        timings["t1"] = time.perf_counter() - t
    if detection is not None and ("grading" not in state.not_run or state.unfit is not None):
        t = time.perf_counter()
        step("grade")
        # an unfit image (a negative, drawings in colour) is not graded, but each disc's gradings say why
        _grade(view, detection, cfg, sequence, state, second)
        timings["grading"] = time.perf_counter() - t
    elif state.out_of_scope:
        step_withheld = "labelling" if "labelling" in state.not_run else "detection"  # the detector ran, or not
        state.not_run.update({step_withheld: state.out_of_scope, "grading": state.out_of_scope})
    else:
        state.not_run.setdefault("grading", "grading needs detected discs")
    unsure = None if state.out_of_scope else scope.uncertain_sequence_flag(sequence)  # nothing was graded anyway
    state.flags.extend(f for f in (unsure, scope.low_score_flag(state.vertebrae)) if f)
    fov = scope.field_of_view((v.label for v in state.vertebrae), seen.cervical_probability)
    if unread and "sacral" not in fov["regions"]:  # no lumbar spine seen down to the sacrum: another may show it
        state.flags.append(_other_series_flag([words for words, _ in unread], fov))
    elif unread and _reads_as_no_t2(sequence) and not state.out_of_scope and not any(d.graded for d in state.discs):
        # not graded for its sequence, while the study's other series name none: one may be the T2 (two unnamed
        # series of an anonymised export, the T1 with more slices read and the T2 left unsaid; user test)
        state.flags.append(_other_series_flag([words for words, _ in unread], fov, sequence))

    timings["total"] = time.perf_counter() - t0
    _say_not_run(state.not_run)
    ungraded = state.not_run.get("grading")
    if ungraded:  # each disc says it too (its CSV row's note), not only the result's steps_not_run
        state.discs = [d if d.grades or d.note else replace(d, note=f"not graded: {ungraded}") for d in state.discs]
    return AnalysisResult(
        input=replace(
            InputInfo.from_scan(scan),
            sequence=sequence,
            plane=image_plane or seen.plane,
            field_of_view=fov,
            way_round=seen.way_round,
            midline=state.midline,
        ),
        vertebrae=tuple(state.vertebrae),
        discs=tuple(state.discs),
        models=tuple(dict.fromkeys(state.models)),
        flags=tuple(dict.fromkeys(state.flags)),
        steps_not_run=state.not_run,
        out_of_scope=state.out_of_scope,
        parameters=_parameters(cfg, scan, t1_scan if cfg.use_t1 else None),
        timings_s=timings,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        view=view.without_input_voxels(),  # the input's geometry, not a second copy of its voxels
        other_series=others,
    )


@dataclass(frozen=True)
class _Seen:
    """What one series shows: its sequence and plane, the detection (labels within the detector's scope)."""

    sequence: dict[str, Any]
    plane: dict[str, Any]
    detection: Detection | None
    cervical_probability: float | None
    way_round: dict[str, Any] | None
    scan: Scan  # as read, or a picture read mirrored (:func:`_front_on_the_left`)
    view: SagittalView


def _look(
    scan: Scan,
    view: SagittalView,
    user_sequence: str | None,
    detector: str | None,
    state: _State,
    timings: dict[str, float],
    check_orientation: bool,
) -> _Seen:
    """Recognise, detect and label one series (the main one, or one read beside it) into ``state``."""
    t = time.perf_counter()
    recognition = _recognise(view, state)
    sequence, plane = _sequence_and_plane(scan, recognition, user_sequence, state)
    first_flag = len(state.flags)
    mirrored: dict[str, Any] | None = None
    if check_orientation and _read_as_picture(scan) and not state.out_of_scope:
        scan, view, mirrored = _front_on_the_left(scan, view, state)
        if mirrored is not None and recognition is not None:  # sequence and neck read again, as the picture is analysed
            recognition = _recognise(view, state)
            image_seq = recognition.sequence_probabilities if recognition is not None else None
            sequence = _decide_sequence(user_sequence, scan, image_seq)
    timings["recognition"] = timings.get("recognition", 0.0) + time.perf_counter() - t
    t = time.perf_counter()
    cervical_p = recognition.cervical_probability if recognition is not None else None
    detection = None if state.out_of_scope else _detect(view, detector, state, cervical_p)
    way_round: dict[str, Any] | None = None
    if detection is not None:
        # two spines side by side first: the scope's rules read one column of bodies (their spacing, their count)
        detection = _one_spine(view, detection, state, first_flag, cervical_p)
    if detection is not None:
        # the scope comes next: labels it withholds (a cervical field of view) cannot vouch for the orientation
        detection = _label_scope(detection, detector, cervical_p, state, front_or_back_cut(view))
    if detection is not None:
        detection = _few_bodies_in_a_picture(view, detection, state, first_flag)
    if detection is not None:
        if check_orientation:
            planes = recognition.plane_probabilities if recognition is not None else None
            detection, way_round = _check_orientation(scan, view, detection, state, first_flag, planes)
            way_round = mirrored if mirrored is not None and detection is not None else way_round
        else:
            way_round = {"value": RIGHT_WAY_ROUND, "source": "user"}
    if detection is not None:
        detection = _unscaled_picture(view, detection, state, first_flag)
    if detection is not None:
        _labels_across_the_estimated_size(scan, detection, detector, state)
    if detection is not None:
        from .grading.features import csf_over_body
        from .grading.intensity import without_black_level

        _, offset = without_black_level(view)  # the fluid check reads without it: said also where nothing is graded
        state.flags.extend([offset] if offset else [])
        _withhold_grades_of_an_unfit_image(view, detection, state)
        csf = csf_over_body(view, detection)
        _withhold_grades_of_unseen_contrast(csf, sequence, state)
        image_seq = recognition.sequence_probabilities if recognition is not None else None
        sequence = scope.check_sequence_by_fluid(sequence, csf, image_seq)
        sequence = scope.check_named_sequence(sequence, image_seq, csf)  # a header or the user against the image
        sequence = _not_read_from_the_image(sequence, state)
    detection = _said_as_panels(view, state, detection, first_flag)
    timings["detection"] = timings.get("detection", 0.0) + time.perf_counter() - t
    return _Seen(sequence, plane, detection, cervical_p, way_round, scan, view)


# flags of an image whose grey levels are no MR contrast the sequence could be read from, and what that image is.
# Only the edge rule's negatives: the skewness rule also reads display gammas, narrow windows and a real T1 slice,
# whose calls are mostly right (and patient 1's T1 slice had been recorded T1)
_NO_MR_CONTRAST = {"picture_in_colour: ": "a picture in colour", f"intensity_inverted: {EDGE_NEGATIVE}": "a negative"}


def _not_read_from_the_image(sequence: dict[str, Any], state: _State) -> dict[str, Any]:
    """No sequence from an image whose grey levels are no MR contrast: a picture in colour around its spine (a
    false-colour rendering of a T2 slice had read as T1, and its grades were withheld as 'this scan is T1') or a
    negative told by its bright edges (inverted T1 slices had been recorded as T2 in input.sequence; user test). The
    image's guess stays as ``best_guess``. A sequence given by the user or a header is kept."""
    if sequence.get("source") != "image" or sequence.get("value") is None:
        return sequence
    what = next((w for flag, w in _NO_MR_CONTRAST.items() if any(f.startswith(flag) for f in state.flags)), None)
    if what is None:
        return sequence
    kept = {k: v for k, v in sequence.items() if k not in ("value", "settled_by")}
    return {**kept, "value": None, "best_guess": sequence["value"], "not_read_from": what}


def _withhold_grades_of_an_unfit_image(view: SagittalView, detection: Detection, state: _State) -> None:
    """No grade from an image the grader cannot trust: a negative
    (:func:`openspine.grading.intensity.inverted_contrast`: a negative turns disc signal round), a picture with
    drawings in colour over its spine (:func:`openspine.scope.drawn_in_colour_reason`) or a single slice cut off the
    midline (:func:`openspine.scope.off_midline_reason`). Its bodies and labels stay, flagged."""
    from .grading.intensity import clipped_white_reason, inverted_contrast

    picture = view.input
    centres = [(v.centroid_voxel[0], v.centroid_voxel[1]) for v in detection.vertebrae]  # a picture's own pixels
    coloured = scope.drawn_in_colour_reason(picture.source.colour_mask, centres, picture.spacing[:2])
    p_off = _off_midline_probability(view, detection, state)
    if p_off is not None:  # near misses too, so that they can be looked for
        state.midline = {"off_midline_probability": p_off, "source": "image", "bar": scope.OFF_MIDLINE_PROBABILITY}
    off_midline = scope.off_midline_reason(p_off)
    for flag, why in (
        ("intensity_inverted", inverted_contrast(view)),
        ("intensity_clipped", clipped_white_reason(view)),
        ("picture_in_colour", coloured),
        ("off_midline", off_midline),
    ):
        if why is None:
            continue
        state.flags.append(f"{flag}: {why}")
        if "grading" not in state.not_run:
            state.not_run["grading"] = why
            state.unfit = why  # each disc's gradings are withheld with it (:func:`_grade`)


def _withhold_grades_of_unseen_contrast(csf: float | None, sequence: Mapping[str, Any], state: _State) -> None:
    """No grade where the spinal fluid is brighter over bone than on any T2 the grader learnt from
    (:func:`openspine.scope.fluid_too_bright_reason`), flagged ``intensity_unusual``; bodies and labels stay. Not said
    of a scan named another sequence (a header's STIR), which is not graded anyway."""
    if sequence.get("value") in _NOT_GRADED_SEQUENCES:
        return
    why = scope.fluid_too_bright_reason(csf)
    if why is not None:
        state.flags.append(f"intensity_unusual: {why}")
        state.contrast_unseen = why


def _off_midline_probability(view: SagittalView, detection: Detection, state: _State) -> float | None:
    """The midline recogniser's probability that a single sagittal slice, or a slab thinner than
    :data:`openspine.scope.THIN_SLAB_MM`, lies off the middle of the spine. None for a wider volume (its middle slice
    is found from the bodies), where no disc has a level to grade (a cervical view: the model never saw one, and
    there is no grade to withhold) or where the model cannot run (said in ``steps_not_run``)."""
    n = view.scan.array.shape[2]
    if n > 1 and n * view.scan.spacing[2] >= scope.THIN_SLAB_MM:
        return None
    if not any(d.level is not None for d in detection.discs):
        return None
    try:
        from .recognition.midline import MODEL_NAME, off_midline_probability

        # an estimated pixel size (--pixel-spacing auto) is read at it and 15 % either way, the calls averaged
        p = off_midline_probability(view, scales=scope.ESTIMATE_SCALES if _size_estimated(state) else (1.0,))
    except (ImportError, ModelError) as exc:
        state.not_run["midline"] = f"no usable midline recogniser: {exc}"
        return None
    from .models import load_model

    state.models.append(load_model(MODEL_NAME).card.info())
    return p


def _front_on_the_left(
    scan: Scan, view: SagittalView, state: _State
) -> tuple[Scan, SagittalView, dict[str, Any] | None]:
    """A picture (no header says where the front is) shown with the front of the body on the right is read
    mirrored: its affine is reversed along the columns, so the analysis sees the front on the left while every
    voxel coordinate stays the picture's own pixel. Returns the scan and view to analyse and, when mirrored, its
    ``input.way_round``. Only this turn is undone: the front on the right is a display convention, whereas a picture
    upside down or turned is left to :func:`_check_orientation` (refused where the labelling is unsure)."""
    try:
        from .recognition.orientation import MODEL_NAME, read_orientation

        reading = read_orientation(view)
    except (ImportError, ModelError) as exc:
        state.not_run["orientation"] = f"no usable orientation recogniser: {exc}"
        return scan, view, None
    from .models import load_model

    state.models.append(load_model(MODEL_NAME).card.info())  # it decided, either way
    # no probability floor: for a picture the front is on one side or the other, and the right way round was never
    # read as mirrored on the SPIDER slices (docs/reading-scans.md)
    if reading.likeliest != FRONT_TO_BACK:
        return scan, view, None
    state.flags.append(scope.picture_mirrored_flag(reading.probability))
    mirrored = scan.mirrored_front_to_back()
    way_round = {"value": FRONT_TO_BACK, "source": "image", "probability": reading.probability,
                 "read_mirrored": True}  # fmt: skip
    return mirrored, mirrored.to_sagittal(), way_round


def _read_beside(
    t1_scan: Scan,
    scan: Scan,
    view: SagittalView,
    detection: Detection,
    sequence: dict[str, Any],
    detector: str | None,
    state: _State,
    paired_grader: str | None = None,
) -> tuple[OtherSeries, SecondSeries | None]:
    """Read the study's T1 series beside the main one: detect on it, match its structures to the main series' by
    level (:func:`openspine.study.match_series`), and say whether grading may read it. Nothing here fails the
    analysis: a T1 series that cannot be used is reported with the reason (a flag and ``other_series[].note``)."""
    from .grading import SecondSeries, paired_grader_available
    from .study import match_series
    from .study.identity import ties, why_other_subject

    role = "T1"
    own = _State()
    seen: _Seen | None = None
    t1_view: SagittalView | None = None
    why: str | None = None
    try:
        if any(f.startswith(_of_series(UNSCALED, f" ({role})")) for f in state.flags):  # as a main picture's
            raise OutOfScopeError(f"its pixel size could not be read off its anatomy ({UNSCALED_WHY})")
        t1_scan, non_finite = t1_scan.with_finite_voxels()
        state.flags.extend([_of_series(non_finite, f" ({role})")] if non_finite else [])
        refuse_unseen(t1_scan)  # what the main series is refused as read (a label map, no contrast) sets it aside
        oblique: list[str] = []  # an oblique T1 volume is read as the main one is, the surer way (review)
        t1_view = _oblique_view(t1_scan, detector, oblique) if t1_scan.reads_two_ways else t1_scan.to_sagittal()
        state.flags.extend(_of_series(f, f" ({role})") for f in oblique)
        seen = _look(t1_scan, t1_view, None, detector, own, {}, True)
        t1_scan, t1_view = seen.scan, seen.view
    except OpenSpineError as exc:
        t1_view, why = None, f"the {role} series cannot be analysed: {exc}"
    info = InputInfo.from_scan(t1_scan)
    if seen is None or seen.detection is None or t1_view is None:
        why = why if seen is None else (own.out_of_scope or "no vertebral body detected on it")
        state.flags.append(f"{T1_NOT_USED}: {why}")
        if seen is not None:
            info = replace(info, sequence=seen.sequence, plane=seen.plane, way_round=seen.way_round)
        kept = t1_view.without_input_voxels() if t1_view is not None else None
        return OtherSeries(role=role, input=info, note=why, view=kept), None
    info = replace(info, sequence=seen.sequence, plane=seen.plane, way_round=seen.way_round)
    state.models.extend(m for m in own.models if m not in state.models)
    # what the overlay's T1 panel draws dashed or as "?" is said where people read, as for the main series
    state.flags.extend(_of_series(f, f" ({role})") for f in _said_of_beside(own))
    main_name = str(sequence.get("value") or "main")
    if main_name == role:  # a main series that reads T1 too: 'the T1 series … the T1 series' says nothing
        main_name = f"main ({role})"
    tied_by = ties(scan.source, t1_scan.source)
    foreign = why_other_subject(scan.source, t1_scan.source)
    # never paired: another subject's (two lumbar spines' levels match whoever's they are), or one that reads as
    # another sequence (a T2 filed as the T1 had been matched with the T2 itself, "7 discs matched", and drawn as the
    # T1; a water image given as the T1 had the T2's grades drawn on it; user tests). One whose sequence is merely
    # unclear is still matched, as a check of the levels
    why = f"it is of {foreign}" if foreign is not None else None
    if why is None and _reads_as(seen.sequence) not in (None, role):
        why = scope.why_not_second_series(seen.sequence, role)
    if why is not None:
        state.flags.append(f"{T1_NOT_USED}: {why}")
        empty = SeriesMatchInfo(agree=False, shared_frame=False, same_patient_by=tied_by)
        kept = t1_view.without_input_voxels()
        return OtherSeries(role, info, tuple(own.vertebrae), tuple(own.discs), empty, note=why, view=kept), None
    frame = scan.source.frame_of_reference_uid
    match = match_series(
        detection, view, seen.detection, t1_view,
        shared_frame=frame is not None and frame == t1_scan.source.frame_of_reference_uid,
        names=(main_name, role),
    )  # fmt: skip
    state.flags.extend(match.flags)
    why = scope.why_not_second_series(seen.sequence, role) or (None if match.agree else _mismatch_reason(match))
    if why is not None and not any(f.startswith(T1_NOT_USED) for f in state.flags):
        state.flags.append(f"{T1_NOT_USED}: {why}")
    if why is None and not paired_grader_available(paired_grader):
        why = NO_PAIRED_GRADER  # a fact of the installation, not of this scan: a note, not a flag
    index = {id(d): i for i, d in enumerate(seen.detection.discs)}
    main_index = {id(d): i for i, d in enumerate(detection.discs)}
    pairs = {main_index[id(m.first)]: index[id(m.second)] for m in match.discs}
    other = OtherSeries(
        role=role,
        input=info,
        vertebrae=tuple(own.vertebrae),
        discs=tuple(own.discs),
        match=SeriesMatchInfo(
            agree=match.agree,
            shared_frame=match.shared_frame,
            vertebrae=tuple(m.level.value for m in match.vertebrae),
            discs=tuple(m.level.value for m in match.discs),
            flags=match.flags,
            same_patient_by=tied_by,
        ),
        used_for_grading=why is None,
        note=why,
        view=t1_view.without_input_voxels(),
    )
    if why is not None:
        return other, None
    return other, SecondSeries(name=role, view=t1_view, detection=seen.detection, pairs=pairs)


def _said_of_beside(own: _State) -> list[str]:
    """The flags of a series read beside the main one that a reader must see: bodies scored low and labels withheld
    (the rest, of a labelling the match checks against the main series', stays with it)."""
    low = scope.low_score_flag(own.vertebrae)
    return [f for f in own.flags if f.startswith("labels_withheld:")] + ([low] if low else [])


def _reads_as(sequence: Mapping[str, Any]) -> str | None:
    """The sequence a scan positively reads as: its value, or the reading (the image's call, or the spinal fluid's
    signal) that set a header's word aside."""
    value = sequence.get("value")
    if value is None and sequence.get("contradicted_by") == "image":
        value = sequence.get("best_guess")
    return str(value) if value is not None else None


def _mismatch_reason(match: SeriesMatch) -> str:
    """Why two series whose match failed are not read together, as the match's first ``series_mismatch`` flag says
    (levels, spacings or, in one frame of reference, positions), or that nothing was paired."""
    from .study import MISMATCH_FLAG

    first = next((f for f in match.flags if f.startswith(MISMATCH_FLAG)), None)
    if first is None:
        return f"no structure could be paired with the {match.names[0]} series'"
    return f"it does not match the {match.names[0]} series: {first.split(': ', 1)[1]}"


def _with_spinenet(
    source: Scan | str | os.PathLike[str],
    cfg: AnalysisConfig,
    progress: Callable[[str], None] | None,
    t1: Scan | str | os.PathLike[str] | None,
) -> AnalysisResult:
    """SpineNet's models on openspine's reading and records (``engine="spinenet"``); openspine's own model options
    do not apply to them, and saying so beats silently ignoring them."""
    from .engines.spinenet import analyze as spinenet_analyze

    default = AnalysisConfig()
    # every option of openspine's own analysis, given otherwise than its default (paired_grader, use_t1 and
    # check_orientation had been dropped without a word)
    ignored = [
        name
        for name in ("detector", "grader", "paired_grader", "grade_levels", "sequence", "use_t1", "check_orientation")
        if getattr(cfg, name) != getattr(default, name)
    ] + (["t1"] if t1 is not None else [])
    if ignored:
        log.warning("the SpineNet engine runs SpineNet's own models and ignores: %s", ", ".join(ignored))
    if cfg.pixel_spacing == AUTO:
        raise ConfigError("the SpineNet engine needs the picture's pixel size: give --pixel-spacing ROW_MM COL_MM")
    spacing = reading_spacing(cfg.pixel_spacing)
    result = spinenet_analyze(source, cfg.spinenet_weights, series=cfg.series, pixel_spacing=spacing, progress=progress)
    if not ignored:
        return result
    why = "openspine's own analysis option: the SpineNet engine runs SpineNet's models"
    return replace(result, parameters={**result.parameters, "not_applied": dict.fromkeys(ignored, why)})


def _read(
    source: Scan | str | os.PathLike[str],
    cfg: AnalysisConfig,
    flags: list[str],
    unread: list[tuple[str, str]] | None = None,
) -> tuple[Scan, Scan | None]:
    """The main series, and the study's T1 series when the input holds one (a DICOM study); a flag in ``flags``
    when a picture's pixel size was estimated or the main series was chosen among several studies; in ``unread``
    the study's other sagittal series that are not read (``description (--series N)``)."""
    if isinstance(source, Scan):
        _say_not_applied(_main_not_applied(cfg, source))  # kept in result.json too (parameters.not_applied)
        return source, None
    from .io import load_study
    from .io.roles import HIGHER_STATION, LOWER_STATION, OTHER_STUDY, ROLE_MAIN, ROLE_NOT_USED

    study = load_study(
        Path(source), series=cfg.series, pixel_spacing=reading_spacing(cfg.pixel_spacing), read_t1=cfg.use_t1
    )
    flags.extend(study.flags)  # several studies in the folder: the choice is said; so is a T1 that cannot be read
    main_role = next((r for r in study.roles if r.role == ROLE_MAIN), None)
    if main_role is not None:  # result.json says why this series of the study was read (input.series)
        study = replace(study, main=with_series_choice(study.main, main_role.reason))
    if unread is not None:
        # the study's other sagittal series that may show the lumbar spine the main one misses: one the grader may
        # read, or a lower station of any sequence (a whole-spine study's lumbar T1 station below a cervical T2 one:
        # its bodies can be labelled); not another study's, nor a station above the main one
        unread.extend(
            (
                f"{r.description or 'unnamed series'} "
                f"({'' if r.sequence in ('T2', None) else f'{r.sequence}, '}--series {r.pick})",
                r.series_uid,
            )
            for r in study.roles
            if r.role == ROLE_NOT_USED
            and r.plane == "sagittal"
            and (r.sequence in ("T2", None) or r.reason.startswith(LOWER_STATION))
            and not r.reason.startswith((OTHER_STUDY, HIGHER_STATION))
        )
    _say_not_applied(_main_not_applied(cfg, study.main))  # said now, and kept in result.json
    return _picture_size(study.main, cfg.pixel_spacing, cfg.detector, flags, ""), study.t1


def _say_not_applied(not_applied: dict[str, str]) -> None:
    """A warning for each option given that did not apply, named as the Python keyword and the command-line option."""
    for option, why in not_applied.items():
        log.warning("%s (--%s) %s", option, option.replace("_", "-"), why)


def with_series_choice(scan: Scan, reason: str) -> Scan:
    """``scan`` whose source records why it was the series read of its study (``input.series.chosen_because``)."""
    return replace(scan, source=replace(scan.source, extra={**scan.source.extra, SERIES_CHOICE: reason}))


OTHER_SERIES_UNREAD = "other_series_unread:"
SEVERAL_STUDIES = "several_studies:"


def _other_series_flag(
    unread: list[str], field_of_view: Mapping[str, Any], sequence: Mapping[str, Any] | None = None
) -> str:
    """Said where the series analysed shows no lumbar spine down to the sacrum while the study holds other sagittal
    T2 series (or series naming no sequence): one of them may (the other station of a whole-spine study whose heights
    the headers cannot compare, a second T2); or, given its ``sequence``, where it reads as no T2 and no disc was
    graded: one of them may be the T2."""
    if sequence is not None:
        return (
            f"{OTHER_SERIES_UNREAD} the series analysed {_not_t2_words(sequence)}; the study's other sagittal series, "
            f"not analysed: {', '.join(unread)}; one may be a T2 (openspine info lists them)"
        )
    return (
        f"{OTHER_SERIES_UNREAD} the series analysed shows {_lacks(field_of_view)} (field of view: "
        f"{field_of_view['value']}); the "
        f"study's other sagittal series, not analysed: {', '.join(unread)}; one may show the lumbar spine (openspine "
        "info lists them)"
    )


# the sequences the grader does not read (it was trained on T2): a scan surely of one gets no grade whatever else holds
_NOT_GRADED_SEQUENCES = ("T1", "STIR", "other")


def _reads_as_no_t2(sequence: Mapping[str, Any]) -> bool:
    """Whether a series surely reads as a sequence the grader does not read (T1, STIR, other), by its header or image:
    not an unsure call (it may be the T2), nor the user's word (which the series read instead would be given too)."""
    return sequence.get("value") in _NOT_GRADED_SEQUENCES and sequence.get("source") != "user"


def _not_t2_words(sequence: Mapping[str, Any]) -> str:
    """'reads as T1 (image), which the grader does not read': a series not graded for its sequence, in words."""
    value = sequence.get("value")
    said = f"reads as {value} ({sequence.get('source')})" if value else "reads as no clear sequence"
    return f"{said}, which the grader does not read"


def _spacing_unused(scan: Scan, requested: PixelSpacing | None) -> str | None:
    """Why a requested pixel size was not used: it applies to pictures only (a NIfTI or DICOM has its own)."""
    if requested is None or scan.source.format == "image":
        return None
    own = {"nifti": "NIfTI", "dicom": "DICOM"}.get(scan.source.format, scan.source.format)
    return f"applies to pictures only; the {own}'s own spacing was used"


def _series_unused(scan: Scan, requested: int | str | None) -> str | None:
    """Why a requested series was not used: it picks one series of a DICOM folder (a NIfTI or picture is one)."""
    if requested is None or scan.source.format == "dicom":
        return None
    own = {"nifti": "a NIfTI file", "image": "a picture"}.get(scan.source.format, "this input")
    return f"picks a series of a DICOM folder; {own} holds one image, which was read"


def _main_not_applied(cfg: AnalysisConfig, scan: Scan) -> dict[str, str]:
    """Each option for the main series given that did not apply to ``scan``, and why: an option ignored without a
    word reads as one that worked (``--series`` on a NIfTI had been)."""
    unused = {
        "pixel_spacing": _spacing_unused(scan, cfg.pixel_spacing),
        "series": _series_unused(scan, cfg.series),
        # SpineNet's weights beside openspine's own engine: it had been ignored without a word
        "spinenet_weights": "applies to engine 'spinenet' only; openspine's own models were used"
        if cfg.spinenet_weights is not None and cfg.engine != "spinenet"
        else None,
    }
    return {k: why for k, why in unused.items() if why}


def _t1_not_applied(cfg: AnalysisConfig, t1: Scan | None) -> dict[str, str]:
    """``--t1-pixel-spacing`` where it did not apply: to a T1 that is no picture, or with no T1 read at all."""
    if cfg.t1_pixel_spacing is None:
        return {}
    if t1 is None:
        why = "applies to a T1 picture given with --t1; no T1 series was read" + (
            " (--no-t1)" if not cfg.use_t1 else ""
        )
        return {"t1_pixel_spacing": why}
    why_t1 = _spacing_unused(t1, cfg.t1_pixel_spacing)
    return {"t1_pixel_spacing": why_t1} if why_t1 else {}


def _not_applied(cfg: AnalysisConfig, scan: Scan, t1: Scan | None) -> dict[str, str]:
    """Each option given that did not apply to ``scan`` and the T1 series read beside it (``None``: none), and why."""
    return {**_main_not_applied(cfg, scan), **_t1_not_applied(cfg, t1)}


def _parameters(cfg: AnalysisConfig, scan: Scan, t1: Scan | None) -> dict[str, Any]:
    """result.json's ``parameters``: the options, and under ``not_applied`` each one given that did not apply (said in
    a warning when the scan is read)."""
    not_applied = _not_applied(cfg, scan, t1)
    return {**cfg.to_dict(), **({"not_applied": not_applied} if not_applied else {})}


def _read_t1(source: Scan | str | os.PathLike[str], cfg: AnalysisConfig, flags: list[str]) -> Scan | None:
    """A T1 series given on its own (its own pixel size for a picture). A DICOM folder holding several series gives
    its T1 series (the one a study's reading would put beside its main series), not its main (T2) one; None (and a
    ``t1_not_used`` flag) where that T1 series cannot be read."""
    if isinstance(source, Scan):
        return source
    from .io import load_study
    from .io.formats import reader_for
    from .io.read import existing_path

    path = existing_path(Path(source))
    if cfg.t1_pixel_spacing is None and reader_for(path).format == "image":
        raise ConfigError(
            f"the T1 '{path.name}' is a 2D picture, which carries no pixel size. Give it with --t1-pixel-spacing "
            "ROW COL (mm), or t1_pixel_spacing=(row_mm, col_mm) in Python (the main series' --pixel-spacing is "
            "its own); where it is unknown, --t1-pixel-spacing auto estimates it from the vertebral bodies."
        )
    study = load_study(path, pixel_spacing=reading_spacing(cfg.t1_pixel_spacing))
    unreadable = [f for f in study.flags if f.startswith(T1_NOT_USED)]
    if unreadable:  # its T1 series cannot be read: said so, and its other (T2) series does not stand in for it
        flags.extend(unreadable)
        return None
    scan = study.main
    if study.t1 is not None:
        log.info("the T1 given holds several series: its T1 series %s is read", _series_name(study.t1) or "")
        scan = study.t1
    return _picture_size(scan, cfg.t1_pixel_spacing, cfg.detector, flags, " (T1)")


def _series_name(scan: Scan) -> str:
    """'#4 T1 TSE SAG' for a DICOM series (number and description), else the file's name."""
    from .render.report import series_text

    src = scan.source
    named = series_text({"series_number": src.series_number, "series_description": src.series_description})
    return named or (Path(src.path).name if src.path else "")


def _header_flags(scan: Scan, t1: Scan | None) -> list[str]:
    """What the files' headers say that the result must flag (:attr:`ScanSource.header_flags`: a NIfTI whose sform
    and qform disagree), the T1 series' named so."""
    # unreadable files of one study folder, which both series' reading met, are said once
    shared = {f for f in scan.source.header_flags if f.startswith(DICOM_FILES_UNREADABLE)}
    t1_flags = [f.replace(":", " (T1):", 1) for f in t1.source.header_flags if f not in shared] if t1 else []
    return [*scan.source.header_flags, *_array_affine_flags(scan), *t1_flags]


def _array_affine_flags(scan: Scan) -> list[str]:
    """A Scan built in Python whose affine only scales its axes (``Scan(array, numpy.eye(4))``) is flagged as a
    NIfTI file saved so is (``nifti_default_affine``): its axes may not be the patient's, and nothing had said so."""
    from .io.nifti import is_default_affine

    if scan.source.format != "array" or not is_default_affine(scan.affine):
        return []
    return [
        "default_affine: the scan's affine only scales the voxel axes, with its origin at the first voxel (as "
        "numpy.eye(4) does), not a scanner's placement: the axes it names (the array's first axis left to right, its "
        "second back to front, its third feet to head) may not be the patient's; check the overlay, or give the "
        "scan its real affine"
    ]


def _picture_size(
    scan: Scan, requested: PixelSpacing | None, detector: str | None, flags: list[str], which: str
) -> Scan:
    """:func:`picture_with_pixel_size` where ``requested`` is ``"auto"``, its flag (``which`` names the series)
    added to ``flags``; anything else as it is."""
    if requested != AUTO:
        return scan
    try:
        refuse_unseen(scan)
    except OutOfScopeError:  # refused as read (a label map, no contrast): no pixel size to measure
        # its sizes are the reader's placeholder, which the result and report must not pass off as the picture's
        if scan.source.format == "image":
            flags.append(_of_series(NOT_MEASURED.format(size=float(scan.spacing[0])), which))
        return scan
    scan, said = picture_at_estimated_size(scan, detector)
    flags.extend(_of_series(flag, which) for flag in said)
    return scan


def _of_series(flag: str, which: str) -> str:
    """A flag said of one series: ``which`` (e.g. " (T1)") after its name, "" for the main series."""
    return flag.replace(":", f"{which}:", 1)


def picture_with_pixel_size(scan: Scan, detector: str | None = None) -> tuple[Scan, str | None]:
    """A picture (PNG/JPEG, read with any pixel size) rescaled to the pixel size its anatomy suggests
    (:mod:`openspine.detection.scale`), and a ``pixel_spacing_estimated`` flag saying so; a scan with geometry of
    its own (DICOM, NIfTI) as it is, without a flag. :func:`picture_at_estimated_size` gives every flag."""
    scan, flags = picture_at_estimated_size(scan, detector)
    return scan, flags[0] if flags else None


def picture_at_estimated_size(scan: Scan, detector: str | None = None) -> tuple[Scan, list[str]]:
    """:func:`picture_with_pixel_size` with all its flags: the ``pixel_spacing_estimated`` one, and a
    ``labelling_ambiguous`` one where the picture may show a cervical spine read at twice its size."""
    if scan.source.format != "image":
        return scan, []
    from .detection.scale import (
        BODY_PITCH_MM,
        CERVICAL_BODY_PITCH_MM,
        FALLBACK_HEIGHT_MM,
        fallback_size,
        with_pixel_size,
    )

    size = fallback_size(*scan.shape[:2])
    fallback = with_pixel_size(scan, size)
    read_as = f"read at {size:.3f} mm per pixel (a {FALLBACK_HEIGHT_MM:.0f} mm tall picture)"
    # the plane is judged first at a common field of view: a rescaling that suits a blob in an axial or coronal
    # picture must not carry it past the plane check (the analysis then refuses it at this same size)
    not_sagittal = _not_sagittal_plane(_recognise_picture(fallback))
    if not_sagittal is not None:
        return fallback, [f"pixel_spacing_estimated: not estimated, the picture looks {not_sagittal}; {read_as}"]
    # the detector reads the front of the body on the left: a picture shown the other way is measured mirrored
    measured = scan.mirrored_front_to_back() if _shows_front_right(fallback) else scan
    estimate = _estimate_with_panels(measured, detector)
    if estimate.spacing_mm is None:
        return fallback, [f"{UNSCALED}; {read_as}"]
    # the estimate takes the bodies for lumbar ones: a cervical spine (bodies half as far apart) comes out twice its
    # size and then looks lumbar. Read at the size cervical bodies would give, it looks cervical again: then it is
    # read so, and the analysis withholds its labels. A lumbar spine shrunk so can look cervical too, hence the
    # higher bar (chosen on the train volumes cut sagittally: lumbar cuts up to 0.69, cervical ones 0.95 and more)
    as_cervical = estimate.spacing_mm * CERVICAL_BODY_PITCH_MM / BODY_PITCH_MM
    seen = _recognise_picture(with_pixel_size(measured, as_cervical))
    if seen is not None and seen.cervical_probability >= MIN_CERVICAL_AT_CERVICAL_SIZE:
        return with_pixel_size(scan, as_cervical), [
            f"pixel_spacing_estimated: {as_cervical:.3f} mm per pixel, read as a cervical spine (no pixel size "
            f"given; at the size cervical bodies give, the image looks cervical with probability "
            f"{seen.cervical_probability:.2f}); positions and lengths in mm are rough"
        ]
    # the grader's crops and features are cut at this scale too: grades move with the estimate, not only lengths
    flag = (
        f"pixel_spacing_estimated: {estimate.spacing_mm:.3f} {ESTIMATED_FROM_BODIES} (no pixel size given); grades may "
        "differ from those at the true pixel size, and positions and lengths in mm carry its error (often 10 %, "
        "sometimes 30 % or more: docs/reading-scans.md)"
    )
    flags = [flag]
    if seen is not None and seen.cervical_probability >= CERVICAL_DOUBT_AT_CERVICAL_SIZE:
        # read as lumbar, but at the size cervical bodies give the image looks more cervical than any shared lumbar
        # picture or crop: the labels are flagged, which withholds the grades (:func:`_flagged_at_an_estimated_size`)
        flags.append(
            f"labelling_ambiguous: the picture may show a cervical spine read at twice its size (no pixel size given; "
            f"at the size cervical bodies give, the image looks cervical with probability "
            f"{seen.cervical_probability:.2f}), {scope.LABELS_MAY_BE_WRONG}; --pixel-spacing gives the picture's own"
        )
    return with_pixel_size(scan, estimate.spacing_mm), flags


def _estimate_with_panels(picture: Scan, detector: str | None) -> ScaleEstimate:
    """:func:`~openspine.detection.scale.estimate_pixel_size` of a picture; where bands of one value part it into
    panels (:func:`openspine.scope.panel_ranges`), also of its widest panel alone, and of the two sizes the one at
    which the whole picture shows more body evidence (summed scores). A figure's estimate measured across its
    panels ended where no body was found (it is then refused as panels at its widest panel's size); a slice that a
    stripe of one value parts keeps its own estimate (its widest part alone had been read 10-20 % off)."""
    from .detection import detect
    from .detection.scale import estimate_pixel_size, with_pixel_size

    whole = estimate_pixel_size(picture, detector)
    panels = scope.panel_ranges(picture.array[:, :, 0])
    if not panels:
        return whole
    import numpy as np

    lo, hi = max(panels, key=lambda r: r[1] - r[0])
    part = Scan(np.ascontiguousarray(picture.array[:, lo:hi]), picture.affine, picture.source)
    widest = estimate_pixel_size(part, detector)
    if whole.spacing_mm is None or widest.spacing_mm is None:
        return whole if widest.spacing_mm is None else widest

    def evidence(size: float) -> float:
        return sum(v.score for v in detect(with_pixel_size(picture, size).to_sagittal(), model=detector).vertebrae)

    return widest if evidence(widest.spacing_mm) > evidence(whole.spacing_mm) else whole


def _shows_front_right(picture: Scan) -> bool:
    """Whether the orientation recogniser reads a picture (at a guessed pixel size) as showing the front of the body
    on the right with at least :data:`~openspine.scope.MIN_TURN_PROBABILITY` (False when it cannot run). The floor,
    unlike the analysis' own check at the estimated size: at a guessed size one SPIDER slice shown the usual way was
    read mirrored (probability 0.47), none with 0.9."""
    try:
        from .recognition.orientation import read_orientation

        reading = read_orientation(picture.to_sagittal())
    except (ImportError, ModelError):
        return False
    return reading.likeliest == FRONT_TO_BACK and reading.probability >= scope.MIN_TURN_PROBABILITY


# a picture read at the size cervical bodies would give is taken as cervical from this probability (see above)
MIN_CERVICAL_AT_CERVICAL_SIZE = 0.9
# ... and its lumbar labels are flagged from this one: the SPIDER train T2 and T1 pictures read at most 0.26 there,
# windows of the cervical volume the recogniser was trained on mostly 0.6-0.9 (it had labelled some L1 ... S1 and
# graded them, no flag; user test). A neck it does not know reads lower (docs/accuracy.md): this catches only some
CERVICAL_DOUBT_AT_CERVICAL_SIZE = 0.5


def _recognise_picture(picture: Scan) -> ImageRecognition | None:
    """The image recogniser's reading of a picture at a guessed pixel size; None when it cannot run."""
    try:
        from .recognition import recognise

        return recognise(picture.to_sagittal())
    except (ImportError, ModelError):
        return None


def _not_sagittal_plane(seen: ImageRecognition | None) -> str | None:
    """The plane the image recogniser sees in a picture when it is not sagittal (as the analysis would refuse it);
    None when it looks sagittal or the recogniser could not run."""
    if seen is None:
        return None
    probabilities = seen.plane_probabilities
    _, why, _ = scope.decide_plane("image", probabilities)
    return None if why is None else max(probabilities, key=lambda k: probabilities[k])


def _sequence_and_plane(
    scan: Scan, recognition: ImageRecognition | None, user_sequence: str | None, state: _State
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sequence (option, header, image) and the plane of the scan; a picture that is not sagittal is out of
    scope (``state.out_of_scope``)."""
    image_seq = recognition.sequence_probabilities if recognition is not None else None
    sequence = _decide_sequence(user_sequence, scan, image_seq)
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
    unfit: str | None = None  # why the image's intensities cannot be graded (its discs' gradings are withheld)
    labels_doubt: str | None = None  # why the labels may be wrong (turned image, estimated size): no grade
    # why the image's contrast is none the grader saw (fluid brighter over bone than on any T2): no grade, after the
    # reasons of scope and size, which say more of what the image is
    contrast_unseen: str | None = None
    midline: dict[str, Any] | None = None  # the midline recogniser's reading of a single slice (input.midline)
    bodies_seen: list[tuple[float, float]] = field(default_factory=list)  # (row, col) of every body the detector found
    refused_for_bodies: bool = False  # out of scope for what the bodies show (none, two columns, too few, unsure)


def _decide_sequence(user: str | None, scan: Scan, image: Mapping[str, float] | None) -> dict[str, Any]:
    """:func:`openspine.scope.decide_sequence` on the scan's header hint, saying (``header_is``) where that hint is a
    NIfTI file's JSON sidecar's or BIDS name's rather than a DICOM header's, so that messages name what said it."""
    sequence = scope.decide_sequence(user, _header_sequence(scan), image)
    named_by = scan.source.extra.get("sequence_named_by")
    if named_by and sequence.get("source") == "header":  # a NIfTI's sidecar or BIDS name: say which
        sequence["header_is"] = named_by
    why = scan.source.extra.get("sequence_why")
    if why and sequence.get("source") == "header" and sequence.get("value") == "other":  # a T2 name set aside: why
        sequence["why"] = why
    if named_by and sequence.get("header_disagrees"):  # the header a --sequence overrules
        sequence["header_disagrees"]["named_by"] = named_by
    return sequence


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


# the detection of an oblique volume's chosen reading (:func:`_oblique_view`), taken by :func:`_detect` for that view
_detected = threading.local()


def _detection_of(view: SagittalView, detector: str | None) -> Detection:
    """``detect(view)``, or the one :func:`_oblique_view` made of this very view with this detector."""
    from .detection import detect

    kept = getattr(_detected, "entry", None)
    _detected.entry = None
    if kept is not None and kept[0]() is view and kept[1] == detector:
        return kept[2]  # type: ignore[no-any-return]
    return detect(view, model=detector)


def _detect(view: SagittalView, detector: str | None, state: _State, cervical_p: float | None) -> Detection | None:
    from .detection import BUILTIN_MODEL
    from .models import load_model

    try:
        detection = _detection_of(view, detector)
    except ModelError as exc:
        if detector is not None:
            raise
        state.not_run["detection"] = f"no usable built-in detector: {exc}"
        return None
    state.models.extend(detection.models)
    state.bodies_seen = [(g.centre[0], g.centre[1]) for g in detection.vertebra_geometry]
    if not detection.vertebrae:  # the reason says it: the detector's own "no vertebral body" flag would repeat it
        state.flags.extend(f for f in detection.flags if f != scope.NO_BODY)
        rows, cols = view.scan.shape[:2]
        extent = (rows * float(view.scan.spacing[0]), cols * float(view.scan.spacing[1]))
        state.out_of_scope = scope.no_body_reason(load_model(detector or BUILTIN_MODEL).card.data, cervical_p, extent)
        state.refused_for_bodies = True
        return None
    state.flags.extend(detection.flags)
    return detection


def _check_orientation(
    scan: Scan,
    view: SagittalView,
    detection: Detection,
    state: _State,
    first_flag: int,
    planes: Mapping[str, float] | None = None,
) -> tuple[Detection | None, dict[str, Any] | None]:
    """The detection and how the image lies (``input.way_round``; None when it could not be read). The detection
    is None, with the scan out of scope, when the image is stored the wrong way round: the labelling as stored (the
    labels the detector's scope leaves) is unsure and the orientation recogniser reads a turn with at least
    :data:`~openspine.scope.MIN_TURN_PROBABILITY` (:mod:`openspine.recognition.orientation`), or, for a scan with
    geometry, the image recogniser reads another plane than the header's (``planes``; at least
    :data:`~openspine.scope.MIN_PLANE_CONFLICT_PROBABILITY`; where the labelling is sure, at least
    :data:`~openspine.scope.MIN_PLANE_CONFLICT_PROBABILITY_SURE`). A refusal drops what was found from ``state``: the
    bodies and every flag raised since ``state.flags[first_flag]``. Where the labelling is unsure and a turn is the
    likeliest reading below the refusal (at least :data:`~openspine.scope.MIN_TURN_DOUBT_PROBABILITY`), the labels
    are kept with an ``orientation_suspect`` flag and no disc is graded (``state.labels_doubt``)."""
    from .detection.orientation import sure_labelling

    sure = sure_labelling(detection)
    conflict = None if _read_as_picture(scan) else scope.plane_conflict(planes, sure)
    if sure and conflict is None:  # the usual case: a sure labelling reads the image the right way round
        return detection, {"value": RIGHT_WAY_ROUND, "source": "labelling"}
    way_round: dict[str, Any] | None = None
    turn = None
    if not sure:  # a turn within the plane is named first: it says best what to do
        try:
            from .recognition.orientation import MODEL_NAME, read_orientation

            reading = read_orientation(view)
        except (ImportError, ModelError) as exc:
            state.not_run["orientation"] = f"no usable orientation recogniser: {exc}"
            reading = None
        if reading is not None:
            from .models import load_model

            state.models.append(load_model(MODEL_NAME).card.info())
            way_round = {"value": reading.likeliest, "source": "image", "probability": reading.probability}
            turn = scope.wrong_way_round(reading.probabilities)
        if turn is not None and reading is not None:
            why = scope.wrong_way_round_reason(turn, reading.probability, scan.source.format == "image")
            _drop_detection(state, first_flag, why)
            state.flags.append(f"orientation_suspect: the image looks {turn} (probability {reading.probability:.2f})")
            return None, way_round
        lean = scope.MIN_TURN_DOUBT_PROBABILITY
        doubt = None if reading is None else scope.wrong_way_round(reading.probabilities, lean)
        if doubt is not None and reading is not None:  # a turn the likeliest, below the refusal: flagged, not graded
            flag = scope.maybe_wrong_way_round_flag(doubt, reading.probability, scan.source.format == "image")
            state.flags.append(flag)
            state.labels_doubt = flag.split(": ", 1)[1]
    if conflict is None:
        return detection, way_round
    _drop_detection(state, first_flag, scope.plane_conflict_reason(*conflict, sure))
    if not any(f.startswith("plane_suspect") for f in state.flags):  # decide_plane flags it where p >= 0.9
        state.flags.append(scope.plane_suspect_flag(*conflict))
    return None, way_round


def _drop_detection(state: _State, first_flag: int, why: str, for_bodies: bool = False) -> None:
    """Put the scan out of scope for ``why`` after detection: its bodies and every flag raised since
    ``state.flags[first_flag]`` are about labels no longer reported. ``for_bodies``: for what the bodies show (two
    columns, too few), not for how the image lies (:attr:`_State.refused_for_bodies`)."""
    del state.flags[first_flag:]
    state.vertebrae, state.discs = [], []
    state.out_of_scope = why
    state.refused_for_bodies = for_bodies
    state.not_run["labelling"] = why  # the detector ran; its labels are not reported


def _one_spine(
    view: SagittalView, detection: Detection, state: _State, first_flag: int, cervical_p: float | None
) -> Detection | None:
    """The detection, or None with the scan out of scope when its labelled bodies stand in two or more columns side
    by side (a montage, a screenshot of several viewports), or form two spines one above the other (the network's
    level estimates start again: :func:`openspine.scope.spines_stacked`): one sequence of labels cannot run through
    two spines.
    A detection without labels, or of a cervical field of view (whose labels the scope withholds next), is left as
    it is: nothing is counted through it (detections in the pharynx beside a cervical spine read with 3 mm slices
    had stood as a second column, and the volume was refused as a montage)."""
    if not any(v.label is not None for v in detection.vertebrae):
        return detection
    if cervical_p is not None and cervical_p >= scope.MIN_CERVICAL_PROBABILITY:
        return detection
    sp = view.scan.spacing
    picture = view.input.source.format == "image"
    centres = [(g.centre[0] * sp[0], g.centre[1] * sp[1]) for g in detection.vertebra_geometry]
    n = scope.spines_side_by_side(centres)
    if n >= 2:
        # the flags raised so far are about a sequence of labels that ran through both columns
        _drop_detection(state, first_flag, scope.side_by_side_reason(n, picture), for_bodies=True)
        state.flags.append(f"spines_side_by_side: {n} columns of vertebral bodies side by side")
        return None
    estimates = [g.level_estimate for g in detection.vertebra_geometry]
    lower = scope.spines_stacked(estimates, centres)
    if lower is None:
        return detection
    why = scope.stacked_reason(estimates[lower - 1], estimates[lower], picture)
    _drop_detection(state, first_flag, why, for_bodies=True)
    state.flags.append(f"spines_stacked: the level count starts again below body {lower} of {len(estimates)}")
    return None


def _size_given_for_picture(scan: Scan, cfg: AnalysisConfig) -> bool:
    """Whether the user gave the picture its pixel size (``--pixel-spacing ROW COL``), which nothing checks."""
    return scan.source.format == "image" and cfg.pixel_spacing is not None and cfg.pixel_spacing != AUTO


def _read_as_picture(scan: Scan) -> bool:
    """Whether nothing but the image says how a scan lies: a picture, or a NIfTI whose header gives no orientation
    (read as displayed)."""
    return scan.source.format == "image" or scan.source.orientation_unknown is not None


# the flag of a picture whose pixel size could not be read off its anatomy (``--pixel-spacing auto``)
UNSCALED = "pixel_spacing_estimated: no column of vertebral bodies at any pixel size tried"
NOT_MEASURED = (
    "pixel_spacing_estimated: not estimated, the picture was refused as read; its sizes in mm ({size:g} mm per pixel) "
    "are a placeholder"
)
ESTIMATED_FROM_BODIES = "mm per pixel, from the size and spacing of the vertebral bodies"
# the detector reads the level from the anatomy at its scale, and an estimated pixel size is often 10 % off and
# sometimes 30 % (docs/reading-scans.md): a picture is read again this factor larger and smaller than the estimate
SIZE_CHECK_FACTOR = 1.1
SAME_BODY_MM = 10.0  # a body found at another size is the same one where their centres lie this close
LABELS_DEPEND_ON_SIZE = "labelling_ambiguous: the labels depend on the estimated pixel size"
UNSCALED_WHY = "no column of three vertebral bodies scored 0.25 or more was found at any pixel size tried"


def _few_bodies_in_a_picture(
    view: SagittalView, detection: Detection, state: _State, first_flag: int
) -> Detection | None:
    """A picture (or a scan read as one) in which fewer than three bodies are found is out of scope: without geometry
    nothing but the image says it is a sagittal spine, and one or two body-like shapes are what axial and coronal
    pictures and noise give (on the real sagittal views of the shared data, 1 detection in 2 343 had fewer than three
    bodies). A scan with geometry keeps such bodies, unlabelled (:func:`openspine.scope.too_few_bodies_reason`)."""
    why = scope.too_few_bodies_reason(len(detection.vertebrae))
    if why is None or not _read_as_picture(view.input):
        return detection
    why = f"{why}; a picture needs at least three to be read as a sagittal spine image"
    _drop_detection(state, first_flag, why, for_bodies=True)
    return None


def _unscaled_picture(view: SagittalView, detection: Detection, state: _State, first_flag: int) -> Detection | None:
    """A picture whose pixel size was to be read off its anatomy (``--pixel-spacing auto``) where no size showed a
    column of three sure bodies (:data:`UNSCALED`) is out of scope: what is found at a guessed size is no spine to
    label or grade (stripes of an axial cut widened by repeating its edge had been labelled T12 … L2). Of the 285
    SPIDER pictures one has no such column, and it is refused first as upside down. A T1 picture beside the main
    series is set aside so (:func:`_read_beside`)."""
    if not _read_as_picture(view.input) or not any(f.startswith(UNSCALED) for f in state.flags):
        return detection
    _drop_detection(
        state,
        first_flag,
        f"{UNSCALED_WHY}, so the picture's pixel size cannot be read off its anatomy and what it shows is no spine to "
        "label; give its pixel size (--pixel-spacing) if it is a sagittal spine picture",
    )
    return None


def bodies_labelled_otherwise(
    ours: Sequence[Vertebra], theirs: Sequence[Vertebra], mm_per_pixel: float
) -> list[tuple[Level, Level]]:
    """(our label, their label) of each labelled body of ``ours`` whose nearest body of ``theirs`` (two detections of
    one picture, positions in its own pixels of ``mm_per_pixel``) lies within :data:`SAME_BODY_MM` and carries
    another label."""
    import numpy as np

    out = []
    for v in ours:
        if v.label is None or not theirs:
            continue
        centre = np.asarray(v.centroid_voxel[:2], dtype=float)
        near = min(theirs, key=lambda o: float(np.linalg.norm(np.asarray(o.centroid_voxel[:2]) - centre)))
        far = float(np.linalg.norm(np.asarray(near.centroid_voxel[:2]) - centre)) * mm_per_pixel
        if far < SAME_BODY_MM and near.label is not None and near.label != v.label:
            out.append((v.label, near.label))
    return out


def _labels_across_the_estimated_size(scan: Scan, detection: Detection, detector: str | None, state: _State) -> None:
    """A picture whose pixel size was read off its bodies (``--pixel-spacing auto``) is detected again
    :data:`SIZE_CHECK_FACTOR` larger and smaller (within the largest size the detector reads); where a body labelled
    at the estimate is labelled otherwise at either size (:func:`bodies_labelled_otherwise`), the labels rest on the
    estimate's error: flagged ``labelling_ambiguous`` (with the ``labelling_alternative`` it points to) and no disc
    is graded (``state.labels_doubt``). Chosen on the SPIDER train pictures (docs/reading-scans.md); the T2 slice of
    val patient 100, a level off at its estimate and graded (user test), is not caught by it."""
    if _size_said(state) != scope.SIZE_ESTIMATED or not _read_as_picture(scan):
        return
    import numpy as np

    from .detection import detect
    from .detection.flags import alternative_flags
    from .detection.scale import largest_size, with_pixel_size

    size = float(scan.spacing[0])
    labelled = [v for v in detection.vertebrae if v.label is not None]
    for factor in (SIZE_CHECK_FACTOR, 1 / SIZE_CHECK_FACTOR):
        if size * factor > largest_size(*scan.shape[:2]):
            continue  # the estimate sits at the largest size the detector reads
        there = detect(with_pixel_size(scan, size * factor).to_sagittal(), model=detector).vertebrae
        moved = bodies_labelled_otherwise(labelled, there, size)
        if not moved:
            continue
        (was, now), larger = moved[0], factor > 1
        why = (
            f"{LABELS_DEPEND_ON_SIZE.split(': ', 1)[1]}: read {abs(factor - 1) * 100:.0f} % "
            f"{'larger' if larger else 'smaller'}, {len(moved)} of its {len(labelled)} labelled bodies are labelled "
            f"otherwise ({was.value} would be {now.value}); give the picture's pixel size (--pixel-spacing)"
        )
        state.flags.append(f"labelling_ambiguous: {why}")
        steps = [b.ordinal - a.ordinal for a, b in moved if not (a.is_transitional or b.is_transitional)]
        named = any(f.startswith("labelling_alternative: ") for f in state.flags)  # the labelling's own says it
        if not named and steps and len(set(np.sign(steps))) == 1 and abs(int(np.median(steps))) == 1:
            ordinals = np.array([v.label.ordinal for v in labelled if v.label and not v.label.is_transitional])
            state.flags.extend(alternative_flags(int(np.median(steps)), ordinals))
        state.labels_doubt = state.labels_doubt or f"{why}; so no disc is graded"
        return


def _label_scope(
    detection: Detection, detector: str | None, cervical_p: float | None, state: _State, cut: scope.BodyCut
) -> Detection | None:
    """Withhold the labels the detector's card cannot back (cervical field of view, levels outside its scope); None
    with the scan out of scope where every body is too unsure to be a spine
    (:func:`openspine.scope.unsure_spine_reason`)."""
    from .detection import BUILTIN_MODEL
    from .models import load_model

    card = load_model(detector or BUILTIN_MODEL).card.data
    unsure = scope.unsure_spine_reason(detection.vertebrae)
    vertebrae, discs, flags, nothing = scope.labels_in_scope(
        detection.vertebrae, detection.discs, card, cervical_p, _size_said(state), cut
    )
    if nothing is not None:  # the detector's flags speak of labels that are not given (sacrum, T12 … L5)
        own = set(detection.flags)
        state.flags[:] = [f for f in state.flags if f not in own]
        state.not_run["grading"] = f"no disc level is known ({nothing})"
    state.flags.extend(flags)
    state.vertebrae, state.discs = vertebrae, discs
    if nothing is not None and nothing == unsure:
        # too unsure that this is a spine at all (a photo, noise, a region or scale the detector never saw): nothing
        # is in scope; its bodies stay in the result, unlabelled and drawn dashed, to show what was seen
        state.out_of_scope = nothing
        state.not_run["labelling"] = nothing
        state.refused_for_bodies = True
        return None
    return replace(detection, vertebrae=tuple(vertebrae), discs=tuple(discs))


def _size_said(state: _State) -> str:
    """How the unseen-size reasons name the scale: a picture's estimate (``--pixel-spacing auto``), or the size
    given (a header's, or the user's)."""
    return scope.SIZE_ESTIMATED if _size_estimated(state) else scope.SIZE_GIVEN


def _size_estimated(state: _State) -> bool:
    """Whether the pixel size was estimated from the bodies (``--pixel-spacing auto``)."""
    return any(f.startswith("pixel_spacing_estimated: ") and ESTIMATED_FROM_BODIES in f for f in state.flags)


# a body outline this close to the front or back edge of the image (mm) is cut by it: the detector places corners on
# a 1.25 mm grid, so a cut body's corners stop about half a cell inside the edge; a lumbar body lies centimetres from
# either edge of any field of view that shows it whole (the belly in front, the canal and the back muscles behind)
BODY_EDGE_MARGIN_MM = 2.0


def front_or_back_cut(view: SagittalView) -> scope.BodyCut:
    """Whether a body's outline comes within :data:`BODY_EDGE_MARGIN_MM` of the front or back edge of the analysed
    image: a field of view cut through the bodies shows only part of their depth (a crop of a val volume through the
    front of its bodies read them 15 mm deep and had lost every grade to the depth rule). A blank canvas around a
    picture or a reslice's wedges are not taken for an edge here."""
    import numpy as np

    cols = view.scan.shape[1]  # the internal layout's front-to-back axis
    margin = BODY_EDGE_MARGIN_MM / float(view.scan.spacing[1])

    def cut(v: Vertebra) -> bool:
        for outline in v.outlines:
            ap = view.from_input_voxel(np.asarray(outline.corners_voxel, dtype=float))[:, 1]
            if float(ap.min()) < margin or float(ap.max()) > cols - 1 - margin:
                return True
        return False

    return cut


def _unseen_size_withheld(detection: Detection, state: _State, view: SagittalView) -> str | None:
    """Why no grade is given where the bodies' spacing or depth lies outside what the detector was trained on
    (:func:`openspine.scope.unseen_size_reasons`): a grade under a level one off is a wrong row in a cohort table,
    and the grader's crops are cut at the scale the pixel size gives."""
    why = "; ".join(scope.unseen_size_reasons(detection.vertebrae, _size_said(state), front_or_back_cut(view)))
    if not why:
        return None
    return (
        f"{why}; {scope.LABELS_MAY_BE_WRONG}, and the grader's crops may be cut at a wrong scale; so no grade is given"
    )


def _flagged_at_an_estimated_size(state: _State) -> str | None:
    """Why no grade is given to a picture read at a pixel size estimated from its own bodies whose labels are
    flagged (:func:`openspine.detection.flags.labelling_flagged`): the estimate makes any spine's bodies lumbar-sized,
    so neither their size nor their spacing can tell a neck or an upper back from a lumbar spine, and the flag is all
    that says the labels may not be lumbar. Windows of the shared cervical volume cut as pictures (enlarged twice,
    as pictures in papers and teaching files are larger than 1 mm pixels make them) and read as a neck the image
    recogniser does not know had been labelled T11 ... S1 and graded, 31 of 32 of them flagged
    (``python scripts/thoracic_view_survey.py --data ../shared/data --picture-windows --unknown-neck --upscale 2``)."""
    from .detection.flags import labelling_flagged

    if _size_said(state) != scope.SIZE_ESTIMATED or not labelling_flagged(state.flags):
        return None
    return scope.FLAGGED_AT_AN_ESTIMATED_SIZE


def _grade(
    view: SagittalView,
    detection: Detection,
    cfg: AnalysisConfig,
    sequence: dict[str, Any],
    state: _State,
    second: SecondSeries | None = None,
) -> None:
    from .grading import grade

    try:
        graded = grade(
            view,
            detection,
            levels=cfg.grade_levels,
            grader=cfg.grader,
            sequence=sequence,
            second=second,
            paired_grader=cfg.paired_grader,
            withhold=state.unfit
            or state.labels_doubt
            or scope.unanchored_levels_reason(detection.sacrum_seen, detection.vertebrae)
            or _unseen_size_withheld(detection, state, view)
            or _flagged_at_an_estimated_size(state)
            # after the rules of scope and size, whose reasons say more of what the image is
            or state.contrast_unseen
            or scope.missed_body_reason(detection.flags)
            or scope.unsure_fit_reason(detection.flags),
            sure_neighbours=True,
        )
    except ModelError as exc:
        if cfg.grader is not None:
            raise
        state.not_run["grading"] = f"no usable built-in grader: {exc}"
        return
    state.models.extend(graded.models)
    state.flags.extend(graded.flags)
    state.discs = list(graded.discs)
    if state.unfit is not None and graded.withheld:  # the whole reason, as each disc gives it (the sequence first)
        state.not_run["grading"] = graded.withheld


def refuse_unseen(scan: Scan) -> None:
    """Refuse, before any model looks at it, a scan with nothing to analyse: a label map given as an image (by its
    name: the rule by which batch skips such a file, :func:`openspine.io.formats.looks_like_label_map`), an image
    without contrast, one that is not an MR magnitude image (:func:`openspine.scope.not_mr_magnitude_reason`: a CT,
    a radiograph, an MR phase image), or one of a few intensity values (a mask, a thresholded picture: by its content,
    :func:`openspine.scope.few_values_reason`) (:class:`~openspine.errors.OutOfScopeError`); NaN or infinite voxels
    stay an error."""
    from .io.formats import LABEL_MAP, looks_like_label_map

    if scan.source.path and looks_like_label_map(scan.source.path):
        raise OutOfScopeError(
            f"'{Path(scan.source.path).name}' {LABEL_MAP}: its name says so (a word such as mask, labels or seg); "
            "openspine analyses images: rename the file if it is one"
        )
    scan.check_analysable()
    why = scope.not_mr_magnitude_reason(scan) or scope.few_values_reason(scan.array)
    if why is not None:
        raise OutOfScopeError(why)


def _said_as_panels(
    view: SagittalView, state: _State, detection: Detection | None, first_flag: int
) -> Detection | None:
    """A one-image scan that is a figure of panels side by side (:func:`openspine.scope.panel_ranges`) is refused as
    such where what its bodies show explains no other way: refused for its bodies (none found, two columns, too few,
    too unsure) with none found or bodies in two panels, or every body left unlabelled with bodies in two panels at
    about one height (:func:`openspine.scope.bodies_in_panels_side_by_side`). With the pixel size estimated such a
    figure had been refused as showing no vertebral body, or analysed with three bodies across both panels and every
    label withheld (user test). The band rule alone refuses nothing, nor renames another refusal: a stripe of one value
    across a slice (a dead column, a line drawn over it) reads as a band too (user test, code review). Returns the
    detection, or None where the scan is refused."""
    if view.scan.shape[2] != 1 or not (state.out_of_scope or detection is not None):
        return detection
    unlabelled = detection is not None and not any(v.label is not None for v in state.vertebrae)
    if not (state.refused_for_bodies or unlabelled):
        return detection
    ranges = scope.panel_ranges(view.scan.array[:, :, 0])
    if len(ranges) < 2:
        return detection
    if state.out_of_scope:
        if state.bodies_seen and len({scope.panel_of(c, ranges) for _, c in state.bodies_seen} - {None}) < 2:
            return detection  # the bodies stand in one panel: the refusal is theirs
    elif not scope.bodies_in_panels_side_by_side(state.bodies_seen, ranges, view.scan.spacing[0]):
        return detection
    reason = scope.panels_reason(len(ranges))
    if detection is not None:  # the detector's bodies and what was said of them are not reported
        _drop_detection(state, first_flag, reason)
    state.out_of_scope = reason
    state.flags.append(f"{scope.PANELS_FLAG}: {len(ranges)} panels side by side")
    return None


OBLIQUE_VOLUME = "oblique_volume"


def reading_sureness(detection: Detection) -> tuple[bool, float]:
    """How surely a detection reads a spine, to compare two readings of one scan (the larger the surer): whether its
    labelling carries no labelling flag, then its bodies' mean score."""
    from .detection.flags import labelling_flagged

    scores = [float(v.score) for v in detection.vertebrae]
    return not labelling_flagged(detection.flags), sum(scores) / len(scores) if scores else 0.0


def _oblique_view(scan: Scan, detector: str | None, flags: list[str]) -> SagittalView:
    """A near-isotropic volume turned more than 20° off the world axes (:attr:`Scan.reads_two_ways`), in the layout
    where the detector reads its spine more surely: resliced onto the world axes (the anatomy lies along them, the
    grid was turned) or on its own grid (a slab planned along the spine). Each is detected; the one whose labelling
    carries no labelling flag, then whose bodies score higher on average, is kept, and the flag says which. Chosen on
    the train volumes turned 25° and 35° about each axis, both ways (``python scripts/oblique_survey.py``,
    docs/detection.md): either reading alone lost half or more of the turns about the front-to-back axis of the
    other kind."""
    from . import geometry
    from .detection import detect

    degrees = geometry.obliquity_degrees(scan.affine)
    views = {
        "resliced onto the scanner's axes (interpolated)": scan.to_sagittal(),
        "read on its own grid": scan.to_sagittal(reslice=False),
    }

    detections: dict[str, Detection] = {}

    def sureness(how: str, view: SagittalView) -> tuple[bool, float]:
        try:
            detections[how] = detect(view, model=detector)
        except ModelError:
            return False, 0.0
        return reading_sureness(detections[how])

    rated = {how: sureness(how, view) for how, view in views.items()}
    how = max(rated, key=lambda h: rated[h])
    if how in detections:  # the analysis detects the chosen reading again: it takes this one (review)
        _detected.entry = (weakref.ref(views[how]), detector, detections[how])
    other = next(h for h in views if h != how)
    flags.append(
        f"{OBLIQUE_VOLUME}: the volume's axes lie {degrees:.0f}° off the scanner's; it was {how}, where the spine "
        f"reads more surely than {other.split(' (')[0].replace('read ', '')}"
    )
    return views[how]


def _analysable(
    scan: Scan, flags: list[str], detector: str | None = None
) -> tuple[Scan, SagittalView, dict[str, Any] | None]:
    """The scan to analyse (values too large for float32 arithmetic scaled down: :meth:`Scan.in_safe_range`), it in
    the analysis layout and, for a scan whose header gives no orientation (flagged in ``flags``), its plane as the
    image recogniser reads it. Raises OutOfScopeError for a scan with nothing to analyse (:func:`refuse_unseen`), an
    axial or coronal acquisition, or a scan of unknown orientation whose image does not look sagittal (judged as a
    picture's)."""
    refuse_unseen(scan)
    scan = scan.in_safe_range()
    view = _oblique_view(scan, detector, flags) if scan.reads_two_ways else scan.to_sagittal()
    if scan.source.orientation_unknown is None:
        return scan, view, None
    flags.append(f"orientation_unknown: {scan.source.orientation_unknown}")
    try:
        from .recognition import recognise

        probabilities: dict[str, float] | None = dict(recognise(view).plane_probabilities)
    except (ImportError, ModelError):
        probabilities = None
    plane, why, _ = scope.decide_plane("image", probabilities)
    if why is not None:
        raise OutOfScopeError(
            f"the image looks {plane['value']} (probability {plane['probability']:.2f}), not sagittal, and its header "
            "gives no orientation: openspine analyses sagittal images; give the file its real orientation",
            plane=plane,
        )
    return scan, view, plane


def _say_not_run(not_run: Mapping[str, str]) -> None:
    """One warning per reason, naming every step it stopped ('detection and grading not run: …'): a refusal had said
    its reason twice before the command's own line said it a third time (user test)."""
    by_reason: dict[str, list[str]] = {}
    for stage, why in not_run.items():
        by_reason.setdefault(why, []).append(stage)
    for why, stages in by_reason.items():
        log.warning("%s not run: %s", " and ".join(stages), why)


def _not_analysed(
    scan: Scan,
    t1: Scan | None,
    refusal: OutOfScopeError,
    cfg: AnalysisConfig,
    flags: list[str],
    timings: dict[str, float],
    t0: float,
) -> AnalysisResult:
    """The result of a scan refused as read (:func:`_analysable`): out of scope with the reason, nothing detected,
    the scan shown as stored (:meth:`Scan.as_stored`)."""
    reason = str(refusal)
    not_run = {"detection": reason, "grading": reason}
    _say_not_run(not_run)
    timings["total"] = time.perf_counter() - t0
    return AnalysisResult(
        input=replace(InputInfo.from_scan(scan), plane=refusal.plane),
        flags=tuple(dict.fromkeys(flags)),
        steps_not_run=not_run,
        out_of_scope=reason,
        parameters=_parameters(cfg, scan, t1),
        timings_s=timings,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        view=scan.as_stored(),
    )
