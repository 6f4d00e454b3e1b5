"""``openspine train grader``: the argparse wrapper of :func:`openspine.training.grader.train_grader`.

It sits above both learning layers it joins: it trains with :mod:`openspine.training.grader` and then (unless
``--holdout`` or ``--no-evaluate``) evaluates the written model on val with :mod:`openspine.evaluation.grading`
and stores those metrics in its card, so :mod:`openspine.training` never imports :mod:`openspine.evaluation`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from ._command_parser import command_parser
from .training.common import add_version_option, options_from
from .training.grader import GraderTrainingOptions, train_grader

_DESCRIPTION = "Train the disc grader on the SPIDER train split, calibrate on val, export ONNX with a card."
_EPILOG = """examples:
  openspine train grader --data ../shared/data --out grader-model
  openspine train grader --data ../shared/data --out grader-model --epochs 40 --seed 1
  openspine train grader --data ../shared/data --out /tmp/dev --holdout 24   # develop without touching val

Reproduces the built-in model: same data, seed and options give the same weights on the same machine (CPU: the
network is trained 6 times, 5 for the stacker's cross-validation and once on all of train; about 10 minutes
on 2 idle cores, as measured in the README; --stack-folds 0 trains once, without a stacker). The log and the
detection cache go to WORK (default OUT/work): WORK/train.log, WORK/detections.json, WORK/evaluation-val.json.
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("openspine train grader", _DESCRIPTION, _EPILOG, show_defaults=False)
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder (index.csv)")
    p.add_argument("--out", type=Path, required=True, help="model folder to write (model.onnx, weights.npz, card.json)")
    p.add_argument(
        "--work",
        type=Path,
        default=None,
        help="folder for the detection cache, train.log and the stacker's out-of-fold inputs (default: OUT/work)",
    )
    p.add_argument("--epochs", type=int, default=60, help="training epochs")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW, cosine schedule)")
    p.add_argument(
        "--class-weight-power",
        type=float,
        default=0.5,
        help="class weights ∝ frequency^-power (0 plain, 1 fully balanced)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    p.add_argument(
        "--holdout",
        type=int,
        default=0,
        help="development: validate on the last N train patients instead of val; the model is not evaluated on val",
    )
    p.add_argument(
        "--heads",
        default=None,
        help="comma-separated subset of the built-in gradings to train (default: all), e.g. to hold one "
        "out and learn it later by fine-tuning",
    )
    p.add_argument(
        "--stack-folds",
        type=int,
        default=5,
        help="folds of train patients for fitting the stacker over network logits and disc features (0: none)",
    )
    p.add_argument(
        "--stack-c", type=float, default=0.03, help="inverse L2 strength of the stacker's logistic regressions"
    )
    p.add_argument("--name", default="grader", help="model name written into the card")
    add_version_option(p, "grader", "1.0.0")
    p.add_argument("--no-evaluate", action="store_true", help="skip the final evaluation on val")
    return p


def options_from_args(args: argparse.Namespace) -> GraderTrainingOptions:
    """The typed options of a parsed ``openspine train grader`` command line."""
    heads = tuple(args.heads.split(",")) if args.heads else ()
    return options_from(GraderTrainingOptions, args, heads=heads)


def cli_main(argv: Sequence[str], quiet: bool = False) -> int:
    """``openspine train grader``: returns 0 on success."""
    args = build_parser().parse_args(list(argv))
    options = options_from_args(args)
    evaluate_val: Callable[[Path], None] | None = None
    if not options.holdout and not args.no_evaluate:

        def evaluate_val(folder: Path) -> None:
            from .evaluation.grading import format_report, record_val_evaluation

            res = record_val_evaluation(options.data, folder, options.work_dir)
            if not quiet:
                print(format_report(res))

    res = train_grader(options, quiet, "openspine train grader " + " ".join(argv), evaluate_val)
    if not quiet:
        print(f"model written to {res.folder} (log: {res.work / 'train.log'})")
    return 0
