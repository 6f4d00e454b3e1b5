"""The pure core: Scan → AnalysisResult. File and batch shells call this."""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import geometry
from ._logging import get_logger
from .config import AnalysisConfig
from .errors import ModelError
from .results import AnalysisResult, Disc, InputInfo, ModelInfo, Vertebra, vec3
from .scan import Scan

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
            ``grade_levels``); they override ``config``. Unknown names raise ConfigError.
        progress: called with each stage name of :data:`STAGES` as it starts (for progress bars).

    Example::

        result = openspine.analyze("study/", grade_levels="all")
        result.to_dataframe("discs")
    """
    base = config.to_dict() if config is not None else {}
    cfg = AnalysisConfig.from_mapping({**base, **options}) if options or config is None else config
    series, pixel_spacing = cfg.series, cfg.pixel_spacing
    detector, grader, grade_levels = cfg.detector, cfg.grader, cfg.grade_levels
    timings: dict[str, float] = {}
    step = progress or (lambda stage: None)
    t0 = time.perf_counter()
    step("read")
    if isinstance(source, Scan):
        scan = source
    else:
        from .io import load_scan

        scan = load_scan(Path(source), series=series, pixel_spacing=pixel_spacing)
    timings["read"] = time.perf_counter() - t0
    scan.check_analysable()
    view = scan.to_sagittal()

    vertebrae: tuple[Vertebra, ...] = ()
    discs: tuple[Disc, ...] = ()
    models: list[ModelInfo] = []
    flags: list[str] = []
    not_run: dict[str, str] = {}

    t = time.perf_counter()
    step("detect")
    detection: Any = None
    from .detection import detect

    try:
        detection = detect(view, model=detector)
    except ModelError as exc:
        if detector is not None:
            raise
        not_run["detection"] = f"no usable built-in detector: {exc}"
    timings["detection"] = time.perf_counter() - t
    if detection is not None:
        vertebrae, discs = detection.vertebrae, detection.discs
        models.extend(detection.models)
        flags.extend(detection.flags)
        t = time.perf_counter()
        step("grade")
        from .grading import grade

        try:
            graded = grade(view, detection, levels=grade_levels, grader=grader)
        except ModelError as exc:
            if grader is not None:
                raise
            not_run["grading"] = f"no usable built-in grader: {exc}"
        else:
            discs = graded.discs
            models.extend(graded.models)
            flags.extend(graded.flags)
        timings["grading"] = time.perf_counter() - t
    else:
        not_run.setdefault("grading", "grading needs detected discs")

    timings["total"] = time.perf_counter() - t0
    for stage, why in not_run.items():
        log.warning("%s not run: %s", stage, why)
    return AnalysisResult(
        input=input_info(scan),
        vertebrae=vertebrae,
        discs=discs,
        models=tuple(models),
        flags=tuple(flags),
        steps_not_run=not_run,
        parameters=cfg.to_dict(),
        timings_s=timings,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        view=view,
    )
