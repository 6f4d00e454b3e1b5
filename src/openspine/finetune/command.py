"""``openspine finetune``: :func:`run_finetune` (typed) and its argparse wrapper :func:`cli_main`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._command_parser import command_parser
from .._logging import get_logger
from .._optional import TRAIN_MODULES, require_optional
from ..errors import ConfigError
from ..training.common import options_from
from .labels import parse_classes, read_labels
from .options import FinetuneOptions, FinetuneResult
from .rsna import CLASSES as RSNA_CLASSES
from .rsna import RsnaSummary, prepare_rsna

log = get_logger("finetune")

_DESCRIPTION = "Fine-tune the disc grader on your own labelled scans and write a new grader model folder."
_EPILOG = """labels.csv: one row per (scan, disc level), one column per grading, e.g.

  scan,level,central_canal_stenosis,bulging
  patient01/,L4-L5,1,0
  patient01/,L5-S1,2,1
  patient02.nii.gz,L4-L5,0,

  'scan' is relative to --scans (a DICOM series folder, NIfTI file, ...); an empty cell = not graded; an optional
  'split' column (train/val) fixes the validation scans, otherwise --val-fraction of the scans is held out.
  Grading names are those of result.json (pfirrmann, narrowing, spondylolisthesis, endplate_defect_upper,
  endplate_defect_lower, marrow_change, herniation, bulging, central_canal_stenosis, foraminal_stenosis_left,
  foraminal_stenosis_right) or a new grading of your own, named as a lower-case identifier (e.g. modic_type).

examples:
  openspine finetune --scans scans/ --labels labels.csv --out my-grader
  openspine finetune --scans scans/ --labels labels.csv --out my-grader --classes bulging=0,1 --fresh-heads
  openspine finetune --scans scans/ --labels labels.csv --out my-grader --no-freeze-backbone --epochs 20
  openspine finetune --rsna rsna-2024-lumbar/ --out rsna-grader          # RSNA 2024 challenge layout
  openspine analyze study/ --grader my-grader --out results/             # use the fine-tuned model

With a frozen backbone (the default) the new model keeps every grading of the base model and the run checks that
all their weights are unchanged; with --no-freeze-backbone only the gradings in labels.csv are kept.
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("openspine finetune", _DESCRIPTION, _EPILOG, show_defaults=False)
    src = p.add_argument_group("data (either --scans and --labels, or --rsna)")
    src.add_argument("--scans", type=Path, default=None, help="folder the 'scan' column is relative to")
    src.add_argument("--labels", type=Path, default=None, help="labels CSV (see below)")
    src.add_argument(
        "--rsna",
        type=Path,
        default=None,
        help="an RSNA 2024 lumbar spine challenge folder (train.csv, train_images/, ...)",
    )
    p.add_argument("--out", type=Path, required=True, help="model folder to write")
    p.add_argument("--base", default=None, help="grader to start from (default: the built-in grader)")
    p.add_argument(
        "--classes",
        action="append",
        default=[],
        metavar="NAME=A,B,C",
        help="declare the classes of a grading in order (reported as grades 0, 1, …); needed for text classes "
        "(e.g. disc_state=normal,mild,severe); repeatable",
    )
    p.add_argument(
        "--freeze-backbone",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train only the heads of the gradings in the labels (keeps all other gradings)",
    )
    p.add_argument(
        "--fresh-heads",
        action="store_true",
        help="re-initialise heads that the base model already has instead of starting from them",
    )
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-2 frozen, 1e-3 unfrozen)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="fraction of scans held out for validation when labels.csv has no 'split' column",
    )
    p.add_argument("--augment-copies", type=int, default=8, help="frozen backbone: augmented views per disc")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--name", default="grader-finetuned", help="model name written into the card")
    p.add_argument("--version", default="1.0.0", help="model version written into the card")
    p.add_argument("--work", type=Path, default=None, help="cache folder (detections; default OUT/work)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier 'openspine finetune' model in --out (any other non-empty folder is refused)",
    )
    p.add_argument(
        "--no-validation",
        action="store_true",
        help="write the model although no disc is held out for validation (its card then says 'not validated')",
    )
    return p


def check_out(out: Path, base_dir: Path, overwrite: bool) -> None:
    """Refuse an --out that would overwrite the base model (in ``base_dir``), a folder of other files, or (without
    ``overwrite``) an earlier fine-tuned model."""
    import json

    if out.resolve() == base_dir.resolve():
        raise ConfigError(f"--out '{out}' is the base model's folder; write the fine-tuned model to another folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    # an interrupted run's own cache (a file manager's hidden files beside it): the rerun resumes from it
    if {p.name for p in out.iterdir() if not p.name.startswith(".")} == {"work"}:
        log.info(
            "--out '%s' holds the work folder of an earlier, unfinished run: its cached disc positions are used", out
        )
        return
    try:
        earlier = "finetuning" in json.loads((out / "card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        earlier = False
    if not earlier:
        raise ConfigError(
            f"--out '{out}' is a non-empty folder that is not a fine-tuned model; give an empty or new one"
        )
    if not overwrite:
        raise ConfigError(f"--out '{out}' holds a fine-tuned model already; give --overwrite to replace it")


def run_finetune(
    out: str | os.PathLike[str],
    options: FinetuneOptions | None = None,
    scans: str | os.PathLike[str] | None = None,
    labels: str | os.PathLike[str] | None = None,
    rsna: str | os.PathLike[str] | None = None,
    classes: Mapping[str, tuple[str, ...]] | None = None,
    work: str | os.PathLike[str] | None = None,
    progress: Callable[..., Any] | None = None,
    on_rsna: Callable[[RsnaSummary], None] | None = None,
    overwrite: bool = False,
    no_validation: bool = False,
) -> FinetuneResult:
    """``openspine finetune`` as a function: fine-tune a grader on ``labels`` (or an RSNA folder), write ``out``.

    Give either ``scans`` and ``labels`` or ``rsna``; ``classes`` declares the classes (and their order) of
    gradings; ``options`` are the training options (default :class:`FinetuneOptions`); ``on_rsna`` receives what
    was read from an RSNA folder before training starts. ``out`` must be new, empty, or (with ``overwrite``) an
    earlier fine-tuned model; ``no_validation`` writes a model although no disc is held out (else refused).

    Raises:
        ConfigError: the data, the options or the output folder are not usable.
        MissingDependencyError: the ``train`` extra is not installed.
    """
    # before any detection or training: the packages (the ONNX export at the end needs onnx and onnxscript)
    # and the output folder
    require_optional(TRAIN_MODULES, "openspine finetune")
    from ..models import resolve_model
    from ..writers import prepare_output_dir

    opts = options if options is not None else FinetuneOptions()
    # a missing, damaged or wrong-kind --base is one line here, not after detecting every scan
    check_out(Path(out), resolve_model(opts.base, "grader", "--base"), overwrite)
    if work is not None and Path(work).exists() and not Path(work).is_dir():
        raise ConfigError(f"--work '{work}' is an existing file; give a folder (new or an earlier run's)")
    prepare_output_dir(Path(out))
    from .core import finetune

    if opts.epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {opts.epochs}")
    with tempfile.TemporaryDirectory(prefix="openspine-rsna-") as tmp:
        if rsna is not None:
            if scans is not None or labels is not None:
                raise ConfigError("give either --rsna or --scans/--labels, not both")
            summary = prepare_rsna(rsna, Path(tmp) / "rsna-labels.csv")
            log.info(
                "RSNA: %d studies, %d disc rows (%d left out)", summary.studies, summary.rows, len(summary.skipped)
            )
            if on_rsna is not None:
                on_rsna(summary)
            # the reader writes fixed grades: declared, so a subset that lacks one keeps the class (0, 1, 2)
            table = read_labels(summary.labels_csv, summary.scans_dir, {**RSNA_CLASSES, **(classes or {})})
        else:
            if scans is None or labels is None:
                raise ConfigError("fine-tuning needs --scans DIR and --labels FILE (or --rsna DIR)")
            if not Path(scans).is_dir():
                raise ConfigError(f"--scans folder '{scans}' does not exist")
            table = read_labels(labels, scans, classes or None)
        _check_scans_exist(table, scans if rsna is None else None)
        if table.splits and "val" not in table.splits.values() and not no_validation:
            raise ConfigError(
                f"the 'split' column of '{table.path.name}' has no 'val' row: nothing to validate on; "
                "mark some scans 'val' or give --no-validation"
            )
        return finetune(table, out, opts, progress=progress, work=work, validate=not no_validation)


def _check_scans_exist(table: Any, scans: str | os.PathLike[str] | None) -> None:
    """One line when none of the labelled scans exists (a wrong --scans), a warning naming the count when some do
    not."""
    missing = [s for s, p in table.scan_paths.items() if not Path(p).exists()]
    if not missing:
        return
    if len(missing) == len(table.scan_paths):
        where = f"--scans folder '{scans}'" if scans is not None else "the data folder"
        raise ConfigError(
            f"none of the {len(missing)} labelled scans exists in the {where} (e.g. '{table.scan_paths[missing[0]]}')"
        )
    log.warning(
        "%d of %d labelled scans do not exist and are left out (e.g. '%s')",
        len(missing),
        len(table.scan_paths),
        table.scan_paths[missing[0]],
    )


def cli_main(argv: Sequence[str], quiet: bool = False) -> int:
    """``openspine finetune``: returns 0 on success."""
    args = build_parser().parse_args(list(argv))
    declared = parse_classes(args.classes)
    opts = options_from(FinetuneOptions, args)  # every training option of the command line

    def bar(x: object, **kw: object) -> object:
        from tqdm import tqdm

        return tqdm(x, disable=quiet, file=sys.stderr, **kw)  # type: ignore[call-overload]

    def said(summary: RsnaSummary) -> None:
        if not quiet:
            print(f"RSNA: {summary.studies} studies, {summary.rows} disc rows ({len(summary.skipped)} left out)")

    res = run_finetune(
        args.out, opts, args.scans, args.labels, args.rsna, declared, args.work, bar, said,
        overwrite=args.overwrite, no_validation=args.no_validation,
    )  # fmt: skip
    if not quiet:
        from ..training.metrics import format_float, format_percent

        checked = f"validated on {res.n_val} discs" if res.n_val else "NOT VALIDATED (no held-out disc)"
        print(f"fine-tuned on {res.n_train} discs, {checked}; frozen check: {res.frozen_check}")
        for name, m in res.metrics.items():
            left_out = (
                f" ({m['left_out_outside_scope']} outside its scope left out)"
                if m.get("left_out_outside_scope")
                else ""
            )
            if not m.get("n"):  # none of the validation discs could measure it: said, not passed over
                print(f"  {name:26s} n=   0  no validation disc where it was trained{left_out}: it answers nowhere")
            else:
                ba, ka = m["balanced_accuracy"], m["kappa"]
                print(
                    f"  {name:26s} n={m['n']:4d}  balanced accuracy {format_percent(ba['value'])} "
                    f"[{format_percent(ba['ci95'][0])}, {format_percent(ba['ci95'][1])}]  "
                    f"kappa {format_float(ka['value'])} "
                    f"[{format_float(ka['ci95'][0])}, {format_float(ka['ci95'][1])}]  "
                    f"ECE {format_float(m['ece']['calibrated'])} ({m['ece'].get('measured', '')}){left_out}"
                )
        for caveat in res.caveats:  # kept in card.json beside the figures they qualify
            print(f"  caveat: {caveat}")
        if res.missed_outside:
            print(
                f"  {res.missed_outside} labelled discs lie at levels outside those the detector labels "
                f"({res.detector_levels}) and were left out"
            )
        if len(res.missed) > res.missed_outside:
            found_not = len(res.missed) - res.missed_outside
            print(f"  {found_not} labelled discs were not found by the detector and were left out")
        if res.failed:
            case, why = next(iter(res.failed.items()))
            print(
                f"  {len(res.failed)} labelled scans were left out (e.g. {case}: {why}; all in card.json, "
                "training_data.scans_failed)"
            )
        print(f"model written to {res.folder}; use it with: openspine analyze SCAN --grader {res.folder} --out OUT")
    return 0
