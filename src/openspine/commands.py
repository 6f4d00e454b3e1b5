"""Implementations of the CLI commands; each takes the parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._logging import get_logger, held_back, say_last
from .config import AUTO, MODEL_OPTIONS, AnalysisConfig, PixelSpacing, parse_pixel_spacing, reading_spacing
from .errors import ConfigError, OpenSpineError, ScanReadError, UsageError
from .vocabulary import T1_NOT_USED, set_aside_by
from .writers import parse_formats, require_for_formats

log = get_logger("cli")

# analyze/demo: nothing in scope (no vertebral body, not a sagittal plane, no contrast, a label map); see --help
EXIT_OUT_OF_SCOPE = 3


@contextmanager
def _option_values() -> Iterator[None]:
    """Checks of the command line's option values: a value refused there is a bad command line (UsageError, exit
    status 2), not a failed analysis."""
    try:
        yield
    except UsageError:
        raise
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _series_arg(value: str | None) -> str | int | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def _spacing_arg(values: list[str] | None, what: str = "--pixel-spacing") -> PixelSpacing | None:
    """``--pixel-spacing`` values: ``auto``, one number (square pixels) or two (row, column mm)."""
    if not values:
        return None
    return parse_pixel_spacing("auto" if values == ["auto"] else values, what)


def _series_lines(series_list: list[dict[str, Any]]) -> list[str]:
    """``openspine info``'s lines of a study's DICOM series: index, number, description, plane, sequence, size and
    role (a NIfTI's one entry names no series: no line)."""
    from .io.dicom import stack_words

    rows = [s for s in series_list if "series_uid" in s]
    lines = []
    for s in rows:
        mark = "*" if s.get("chosen") else " "
        stack = stack_words(s["series_uid"])  # kept whole: the descriptions of a series' stacks are alike
        desc = (s.get("description") or "")[: 30 - len(stack)] + stack
        lines.append(
            f" {mark} [{s['index']}] series {s.get('series_number', '')} {desc!s:30.30}  {s.get('plane', '')}"
            f"  {s.get('sequence_hint') or 'sequence ?'}  {s.get('n_slices', '')} slices"
            f"  {s.get('rows', '')}x{s.get('columns', '')}" + (f"  — {s['role_text']}" if s.get("role_text") else "")
        )
    if len(rows) > 1:
        lines.append("   (* = chosen; pick another with --series)")
    return lines


def run_info(args: argparse.Namespace) -> int:
    from .io import load_scan
    from .io.formats import reader_for

    path = Path(args.path)
    with _option_values():
        spacing = _spacing_arg(args.pixel_spacing)
    wanted = _series_arg(args.series)
    series_list: list[dict[str, Any]] = []
    try:
        reader = reader_for(path) if path.exists() else None  # load_scan says why a path is missing
        # each series' role in the study whose main series is the one read (the rule of load_study)
        with held_back("io.dicom"):  # reading the chosen series below says the same once
            series_list = reader.list_series(path, wanted) if reader and reader.list_series else []
        scan = load_scan(path, series=wanted, pixel_spacing=reading_spacing(spacing))
    except (ScanReadError, ConfigError) as exc:  # not a file type it reads, a picture without its pixel size, …
        listed = _series_lines(series_list)  # a DICOM study's series (a NIfTI's one entry gives no line)
        if not args.json and listed and not isinstance(exc, UsageError):
            # the study's series are known: listed with their roles before the error, so that the user sees which
            # one failed and what else there is to choose with --series
            print("\n".join([f"{path}  (dicom)", *listed]))
        if not args.json or isinstance(exc, UsageError):
            raise
        # a script screening files with --json gets a document for a file it cannot read too (exit status 1)
        doc = {"path": str(path), "readable": False, "analysable": False, "why_not": str(exc)}
        print(json.dumps({**doc, "series_found": series_list}, indent=2))
        return 1
    estimated: str | None = None
    if spacing == AUTO:
        from .analysis import picture_with_pixel_size

        scan, estimated = picture_with_pixel_size(scan)
        log.info("%s", estimated or "the pixel size comes from the file's own geometry ('auto' not needed)")
    summary: dict[str, Any] = {
        "path": str(path),
        "readable": True,
        "format": scan.source.format,
        "series_found": series_list,
        "chosen_series": scan.source.series_uid,
        "t1_series": next((s["series_uid"] for s in series_list if s.get("role") == "T1"), None),
        "shape": list(scan.shape),
        "spacing_mm": [round(s, 4) for s in scan.spacing],
        "orientation": "".join(scan.orientation),
        "dtype": str(scan.array.dtype),
        **{k: scan.source.extra[k] for k in ("stored_dtype", "sequence_why") if k in scan.source.extra},
        "sequence_hint": scan.source.sequence_hint,
        "header_flags": list(scan.source.header_flags),  # what analyze flags about the reading (transforms, studies)
    }
    if scan.source.format == "nifti":  # what the files beside it say (its JSON sidecar, its BIDS name)
        extra = scan.source.extra
        said = {"sidecar": extra.get("sidecar"), "sequence_named_by": extra.get("sequence_named_by"),
                "series_description": scan.source.series_description, "modality": scan.source.modality}  # fmt: skip
        summary.update({k: v for k, v in said.items() if v})
    if estimated:
        summary["pixel_spacing_estimated"] = estimated
    if scan.source.orientation_unknown:
        summary["orientation_unknown"] = scan.source.orientation_unknown
    from .analysis import refuse_unseen

    try:
        # what analyze refuses before any model looks: a label map (it had read as analysable), no contrast, an
        # openspine output, no MR magnitude image
        scan, non_finite = scan.with_finite_voxels()  # as analyze reads NaN outside a resampled field of view
        summary["header_flags"] += [non_finite] if non_finite else []
        refuse_unseen(scan)
        view = scan.to_sagittal()
        summary["analysis_layout"] = {"shape": list(view.scan.shape), "orientation": "".join(view.scan.orientation)}
        if scan.reads_two_ways:  # analyze detects both and reads the surer (info detects nothing)
            grid = scan.to_sagittal(reslice=False).scan
            summary["analysis_layout"]["or_on_its_own_grid"] = {
                "shape": list(grid.shape),
                "orientation": "".join(grid.orientation),
            }
        summary["analysable"] = True
    except Exception as exc:  # the reason is shown, not raised: info describes, analyze refuses
        summary["analysable"] = False
        summary["why_not"] = str(exc)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    lines = [f"{summary['path']}  ({summary['format']})", *_series_lines(series_list)]
    lines += [
        f"shape        {tuple(scan.shape)}",
        f"spacing (mm) {tuple(round(s, 4) for s in scan.spacing)}"
        # the estimate marked where the figure is read, not in a log line above it (user test)
        + (" (estimated from the vertebral bodies: --pixel-spacing auto)" if estimated else ""),
        f"orientation  {summary['orientation']} (direction each array axis points to, RAS+ world"
        + ("; assumed: the header gives none, sform and qform codes 0)" if scan.source.orientation_unknown else ")"),
        f"data type    {summary['dtype']}"
        + (f" (stored as {summary['stored_dtype']}, read in single precision)" if summary.get("stored_dtype") else ""),
    ]
    if summary.get("sidecar"):
        desc = f": {summary['series_description']}" if summary.get("series_description") else ""
        lines.append(f"sidecar      {summary['sidecar']}{desc}")
    if summary["sequence_hint"]:
        # analyze checks a header's word against the image (a T1 under a T2 header is set aside)
        by = summary.get("sequence_named_by") or "header"
        why = f": {summary['sequence_why']}" if summary.get("sequence_why") else ""
        checks = "analyze checks it against the image"
        lines.append(f"sequence     {summary['sequence_hint']} (from the {by}{why}; {checks})")
    lines += [f"flag         {f}" for f in summary["header_flags"]]
    t1 = next((s for s in series_list if s.get("role") == "T1"), None)
    if t1 is not None:
        lines.append(f"T1 series    [{t1['index']}] series {t1.get('series_number', '')} read beside the main one")
    layout = summary.get("analysis_layout") or {}
    on_grid = layout.get("or_on_its_own_grid")
    either = (
        f" resliced, or {'x'.join(str(n) for n in on_grid['shape'])} on its own grid (an oblique volume: analyze reads "
        "the one whose spine reads more surely)"
        if on_grid
        else ""
    )
    lines.append(
        "analysable   yes, as sagittal " + "x".join(str(n) for n in layout["shape"]) + either
        if summary["analysable"]
        else f"analysable   no: {summary['why_not']}"
    )
    print("\n".join(lines))
    return 0


class StageProgress:
    """Progress of one analysis, stage by stage: a bar on a terminal, log lines otherwise, silent if quiet."""

    def __init__(self, stages: tuple[str, ...], quiet: bool, log_format: str) -> None:
        self.bar: Any = None
        self.quiet = quiet
        if not quiet and log_format == "text" and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=len(stages), desc="openspine", unit="stage", leave=False)

    def __call__(self, stage: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(stage)
            self.bar.update(1)
        elif not self.quiet:
            log.info("stage: %s", stage)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _read_from_dicom(path: Path) -> bool:
    """Whether ``path`` reads as DICOM (a folder, a DICOM file or zip); True when its type cannot be told here (the
    read itself then says what is wrong)."""
    from .errors import ScanReadError
    from .io.formats import reader_for

    try:
        return reader_for(path).format == "dicom"
    except (ScanReadError, OSError):
        return True


def _analyze_to(
    path: Path,
    out: Path,
    config: AnalysisConfig,
    args: argparse.Namespace,
    t1: Path | None = None,
    named: Mapping[str, str] | None = None,
    intro: str | None = None,
) -> int:
    """Analyse ``path`` into ``out``; ``intro`` is logged once the options and the output folder are checked."""
    from .analysis import STAGES, analyze
    from .writers import check_output_dir, prepare_output_dir, write_result

    with _option_values():
        formats = parse_formats(getattr(args, "formats", None))  # refuse a bad --formats before any work
    require_for_formats(formats, "--formats seg/sr", _read_from_dicom(path))  # and a missing extra
    check_models(config, named)
    _check_engine(config)
    made = _first_missing(check_output_dir(out))
    prepare_output_dir(out)  # fail before the slow part if the folder is unusable
    if intro:  # on stderr: a reader that stops early (`| head`) must not end the run before its outputs are written
        log.info("%s", intro)
    progress = StageProgress((*STAGES, "write"), args.quiet, args.log_format)
    try:
        result = analyze(path, config, progress=progress, t1=t1)
        progress("write")
        files = write_result(result, out, formats)
    except OpenSpineError:
        _clear_after_failure(out, path, made)
        raise
    finally:
        progress.close()
    if result.out_of_scope:
        # one line, even when quiet: the exit status alone would not say why
        reason = str(result.out_of_scope).rstrip(".")
        say_last(f"openspine: out of scope: {reason} ({path}); result.json says so", args.log_format, logging.WARNING)
        if not args.quiet:  # the flags, as for an analysed scan (the scope check's own flag among them)
            for flag in result.flags:
                print(f"  flag: {flag}")
            for name in files.values():
                print(f"  {name}")
        return EXIT_OUT_OF_SCOPE
    if args.quiet:
        return 0
    print(summary_line(path, result) + f"; outputs in {out.resolve()}")
    for flag in result.flags:
        print(f"  flag: {flag}")
    for name in files.values():
        print(f"  {name}")
    return 0


def _first_missing(out: Path) -> Path | None:
    """The outermost folder of ``out`` (``out`` itself or a parent) that does not exist yet, or None."""
    missing = None
    for folder in (out, *out.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def _clear_after_failure(out: Path, path: Path, made: Path | None) -> None:
    """After a run that failed: an earlier openspine result of another scan in ``out`` must not stay to mark the
    folder finished for this one (user test: a script found the earlier scan's result.json after a run on a damaged
    file): its outputs go (:func:`openspine.writers.remove_outputs`). A folder whose result names no input (files of
    the user's own under output names), or this same scan, is left with everything in it (a failed re-run must not
    cost a good result; review). The folders this run made (``made`` and those inside it down to ``out``), left
    empty, go too."""
    from .batch.case import recorded_source
    from .io.paths import resolved
    from .writers import remove_outputs

    source = recorded_source(out)  # the input the folder's result names, as batch reads a case folder
    removed: list[str] = []
    try:
        if source is not None and resolved(source) != resolved(path):
            removed = remove_outputs(out, path)
        if made is not None:
            for folder in (out, *out.parents):
                if not folder.is_dir() or any(folder.iterdir()):
                    break
                folder.rmdir()
                if folder == made:
                    break
    except OSError:  # the failure itself may be the folder's (full, read-only): it is said already
        return
    if removed:
        log.warning("removed %s from '%s': the outputs of an earlier run on '%s'", ", ".join(removed), out, source)


def check_models(config: AnalysisConfig, named: Mapping[str, str] | None = None) -> None:
    """The model options (--detector, --grader, --paired-grader) before any scan is read: a path that does not
    exist, a name that is no built-in model, or a model of the wrong kind is one line here, not a failure after
    reading and detecting (or one failure per case of a batch). ``named``: how to name an option that came from
    elsewhere than the command line (an options file's key)."""
    from .models import resolve_model

    for option, key, kind in (
        ("--detector", "detector", "detector"),
        ("--grader", "grader", "grader"),
        ("--paired-grader", "paired_grader", "grader"),
    ):
        value = getattr(config, key)
        if value is not None:
            resolve_model(value, kind, (named or {}).get(key, option))


def _check_engine(config: AnalysisConfig) -> None:
    """SpineNet's package and weights, before the first case (one line naming the recipe when either is missing)."""
    if config.engine == "spinenet":
        from .engines.spinenet import find_checkpoints

        find_checkpoints(config.spinenet_weights)


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """--engine and --spinenet-weights as analysis options (None = not given)."""
    weights = getattr(args, "spinenet_weights", None)
    return {"engine": getattr(args, "engine", None), "spinenet_weights": str(weights) if weights else None}


def _discs(n: int) -> str:
    return f"{n} disc{'' if n == 1 else 's'}"


def _graded(discs: Sequence[Any], levels_asked: Any = None) -> str:
    """' (all graded)', ' (3 graded)', ' (none graded)' after the disc count, counted among the discs at the levels
    asked (' (all 6 at the levels asked graded)'), and the levels asked (``levels_asked``: the analysis's
    ``grade_levels``, a list of names) where no disc was found (' (3 of 6 at the levels asked graded; L3-L4, L4-L5,
    L5-S1 not found)'); '' where there is no disc. A line that named only the discs found read the same for a scan
    whose every grade was withheld, and counted only the levels found (a void over L4 and L5: 'all 3 at the levels
    asked graded'; user test)."""
    if not discs:
        return ""
    # an unlabelled disc is at no level asked (it had been counted as one: "2 of 3" with two levels asked; user test)
    asked = [d for d in discs if d.asked and d.level is not None]
    n = sum(d.graded for d in asked)
    if not asked:  # no disc labelled at a level asked (labels withheld): what was graded of all
        n = sum(d.graded for d in discs)
        return f" ({'all' if n == len(discs) else n or 'none'} graded)"
    found = {d.level.value for d in asked}
    missing = [str(lv) for lv in levels_asked if str(lv) not in found] if isinstance(levels_asked, list) else []
    if len(asked) == len(discs) and not missing:
        return f" ({'all' if n == len(discs) else n or 'none'} graded)"
    total = len(asked) + len(missing)
    said = f"all {n}" if n == total and n else f"{n} of {total}" if n else f"none of {total}"
    return f" ({said} at the levels asked graded{'; ' + ', '.join(missing) + ' not found' if missing else ''})"


def _levels_asked(result: Any) -> Any:
    parameters = getattr(result, "parameters", None)
    return parameters.get("grade_levels") if isinstance(parameters, dict) else None


def summary_line(path: Path, result: Any) -> str:
    """'scan: 6 vertebrae (1 unlabelled), 5 discs (all graded), T2 (header), lumbar; 2 flags'."""
    n_v, n_d = len(result.vertebrae), len(result.discs)
    unlabelled = sum(v.label is None for v in result.vertebrae)
    seq = result.input.sequence or {}
    fov = result.input.field_of_view or {}
    bodies = f"{n_v} vertebra{'' if n_v == 1 else 'e'}"
    discs = _discs(n_d) + _graded(result.discs, _levels_asked(result))
    parts = [bodies + (f" ({unlabelled} unlabelled)" if unlabelled else ""), discs]
    if seq.get("value"):
        parts.append(f"{seq['value']} ({seq.get('header_is') or seq.get('source')})")  # 'BIDS file name', not header
    elif seq.get("contradicted_by") == "image":  # the header's word set aside: the header itself was sure
        said_by = seq.get("header_is") or "header"
        parts.append(
            f"sequence unsure (the {said_by} says {seq.get('header')}, the {set_aside_by(seq)} reads "
            f"{seq.get('best_guess')})"
        )
    elif seq.get("contradicted_by") == "csf_over_body":  # two witnesses that disagree, both named
        reading = seq.get("image_reading") or {}
        parts.append(
            f"sequence unsure (the image reads {reading.get('value')}, the spinal fluid {seq.get('best_guess')})"
        )
    elif seq:  # the line names the sequence always: an unsure reading says so (its flag follows)
        guess = f", {seq['best_guess']} likeliest" if seq.get("best_guess") else ""
        parts.append(f"sequence unsure ({seq.get('source') or 'not read'}{guess})")
    if fov.get("value"):
        parts.append(f"field of view {fov['value']}")
    for other in getattr(result, "other_series", ()):
        if other.used_for_grading:
            parts.append(f"with {other.role} ({_discs(len(other.match.discs))} matched, graded from both)")
        elif not any(f.startswith(T1_NOT_USED) for f in result.flags):  # matched, but no grader reads it
            parts.append(f"with {other.role} ({_discs(len(other.match.discs))} matched, not used for grading)")
        else:  # set aside: its flag says why
            parts.append(f"{other.role} series set aside (flag {T1_NOT_USED})")
    if not getattr(result, "other_series", ()) and any(f.startswith(T1_NOT_USED) for f in result.flags):
        parts.append(f"T1 series set aside (flag {T1_NOT_USED})")  # a study's T1 that could not even be read
    flags = len(result.flags)
    return f"{path}: {', '.join(parts)}; " + (
        f"{flags} flag{'s' if flags != 1 else ''} (below)" if flags else "no flags"
    )


def run_analyze(args: argparse.Namespace) -> int:
    if args.t1 is not None and args.no_t1:  # which one was meant cannot be guessed (it had dropped the T1 unsaid)
        raise UsageError("--t1 and --no-t1 contradict each other: give one of them")
    with _option_values():
        given = {
            "series": _series_arg(args.series),
            "pixel_spacing": _spacing_arg(args.pixel_spacing),
            "detector": args.detector,
            "grader": args.grader,
            "grade_levels": args.levels,
            "sequence": args.sequence,
            "t1_pixel_spacing": _spacing_arg(args.t1_pixel_spacing, "--t1-pixel-spacing"),
            "use_t1": False if args.no_t1 else None,
            "check_orientation": False if args.trust_orientation else None,
            "paired_grader": args.paired_grader,
            **_engine_options(args),
        }
        given = {k: v for k, v in given.items() if v is not None}
        AnalysisConfig.from_mapping(given)  # the command line's own values, apart from an options file's (exit 1)
    options: dict[str, Any] = AnalysisConfig.from_file(args.config).to_dict() if args.config else {}
    # a model the options file names is named so in an error, not as the command-line option nobody gave
    named = {k: f"'{k}' in the options file {args.config}" for k in MODEL_OPTIONS if options.get(k) and k not in given}
    options.update(given)
    config = AnalysisConfig.from_mapping(options)
    if args.t1 is not None and not args.t1.exists():
        from .errors import ScanReadError

        raise ScanReadError(f"--t1 '{args.t1}' does not exist")  # before the main series is read
    from .io.read import check_input_type

    check_input_type(args.path, "the input")  # "" would read the working folder, as Path("") is "."
    if args.t1 is None and config.use_t1:  # batch pairs a BIDS T2w with its T1w; analyze reads what it is given
        import shlex

        from .batch.discover import bids_t1_beside

        beside = bids_t1_beside(Path(args.path))
        if beside is not None:
            log.info(
                "the T1 file beside it, %s, is not read: give --t1 %s to read it (batch pairs them)",
                beside.name,
                shlex.quote(str(beside)),
            )
    return _analyze_to(Path(args.path), Path(args.out), config, args, t1=args.t1, named=named)


def run_demo(args: argparse.Namespace) -> int:
    from .data import DEMO_ATTRIBUTION, demo_scan_path

    intro = (
        f"analysing the embedded example scan {demo_scan_path().name} (a real lumbar T2 slice from SPIDER, "
        f"CC BY 4.0: see {DEMO_ATTRIBUTION})"
    )
    return _analyze_to(demo_scan_path(), Path(args.out), AnalysisConfig(), args, intro=intro)


def run_batch(args: argparse.Namespace) -> int:
    from .batch.discover import discover_cases
    from .batch.distributed import checked_cluster
    from .batch.runner import (
        checked_workers,
        parse_part,
        run_batch,
        say_unlisted,
        select_part,
        tqdm_progress,
    )
    from .batch.spacing import read_spacing_table
    from .writers import refuse_output_inside

    with _option_values():
        part = parse_part(args.part)
        formats = parse_formats(args.formats)
        checked_workers(args.workers)
        if args.scheduler and args.cluster:
            raise ConfigError("give either --scheduler or --cluster, not both")
        if args.cluster is not None:
            checked_cluster(args.cluster)
        if (args.scheduler or args.cluster) and args.workers != 1:  # which would run the cases was not said
            raise ConfigError("--workers sets local worker processes; with --scheduler or --cluster Dask's do the work")
    if args.dry_run:
        if not Path(args.input_root).is_dir():
            raise ConfigError(f"batch input '{args.input_root}' is not a folder")
        refuse_output_inside(Path(args.input_root), Path(args.out))  # as the run itself would
        table = args.pixel_spacing_table
        spacings = read_spacing_table(table, args.input_root) if table is not None else None
        cases, skipped = discover_cases(args.input_root, pictures=args.pixel_spacing is not None, spacings=spacings)
        if spacings is not None:  # as the run itself warns
            say_unlisted(spacings, cases)
        mine = select_part(cases, part)
        n_t1 = sum(c.has_t1 for c in cases)
        print(
            f"{len(cases)} case(s) found under {args.input_root} ({n_t1} with a T1 series read beside the main one); "
            f"{len(mine)} in part {part[0]}/{part[1]}:"
        )
        for c in mine:
            note = f"  (will fail: {c.problem})" if c.problem else ""
            note += f"  (pixel {c.pixel_spacing[0]:g} x {c.pixel_spacing[1]:g} mm)" if c.pixel_spacing else ""
            series = f" series {c.series}" if c.series else ""
            t1 = f" + T1 {c.t1}" if c.t1 else f" + T1 series {c.t1_series}" if c.t1_series else ""
            print(f"  {c.case_id}  [{c.kind}] {c.path}{series}{t1}{note}")
        print(f"{len(skipped)} file(s) skipped" + (":" if skipped else ""))
        for s in skipped:
            print(f"  {s.path}: {s.reason}")
        if not cases:  # as the run itself would say
            raise ScanReadError(f"no inputs found under '{args.input_root}'")
        return 0
    with _option_values():
        given = {
            "pixel_spacing": _spacing_arg(args.pixel_spacing),
            "grader": args.grader,
            "grade_levels": args.levels,
            "sequence": args.sequence,
            "use_t1": False if args.no_t1 else None,
            "check_orientation": False if args.trust_orientation else None,
            "paired_grader": args.paired_grader,
            **_engine_options(args),
        }
        config = AnalysisConfig.from_mapping({k: v for k, v in given.items() if v is not None})  # before work
    check_models(config)  # once, before the first case (not a failure of every case)
    _check_engine(config)
    summary = run_batch(
        args.input_root,
        args.out,
        formats=formats,
        config=config,
        overwrite=args.overwrite,
        part=part,
        workers=args.workers,
        scheduler=args.scheduler,
        cluster=args.cluster,
        pixel_spacing_table=args.pixel_spacing_table,
        progress=tqdm_progress(args.quiet),
    )
    print(f"openspine batch: {summary.line()}")
    tables = ", ".join(str(Path(args.out) / f"{kind}.csv") for kind in ("cases", "vertebrae", "discs"))
    print(f"  cohort tables: {tables}")
    if summary.failed or summary.out_of_scope:  # both are listed there (stage 'scope' for the latter)
        print(f"  failures: {Path(args.out) / 'failures.csv'}")
    if config.pixel_spacing == AUTO and (hint := estimated_size_hint(Path(args.out) / "cases.csv")):
        print(f"  {hint}")
    return summary.exit_code


def estimated_size_hint(cases_csv: Path) -> str | None:
    """What a batch run with ``--pixel-spacing auto`` says where pictures read at an estimated pixel size were not
    all graded: each result's reason names ``--pixel-spacing``, which a batch gives every picture alike, so the line
    names the table that gives each its own. None where there is no such picture (or no cases.csv)."""
    import csv

    from .batch.spacing import COLUMNS

    try:
        with open(cases_csv, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None

    def for_the_estimate(row: dict[str, str]) -> bool:  # the reasons that rest on the estimate say "estimated"
        estimated = row.get("format") == "image" and "pixel_spacing_estimated" in (row.get("all_flags") or "")
        return estimated and "estimated" in (row.get("withheld") or "")

    n = sum(for_the_estimate(r) for r in rows)
    if not n:
        return None
    return (
        f"{n} picture(s) read at an estimated pixel size have grades withheld for a reason that names the estimate "
        f"(cases.csv, column withheld); list each one's own pixel size in --pixel-spacing-table (a CSV with the "
        f"columns {','.join(COLUMNS)}) and run again"
    )
