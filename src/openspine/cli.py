"""The ``openspine`` command: a thin layer over the Python API.

``main(argv) -> int`` never lets an :class:`~openspine.errors.OpenSpineError` escape as a traceback: it
prints one line saying what is wrong and returns a non-zero exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from itertools import pairwise
from pathlib import Path

from ._command_parser import HelpFormatter
from ._logging import line_progress_bars, log_to_stderr, no_progress_bars, say_last
from ._version import __version__
from .errors import BatchInterrupted, OpenSpineError, OutputInUseError, UsageError
from .vocabulary import SEQUENCES

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
# another batch run holds the output folder: EX_TEMPFAIL of sysexits.h, "try again later" (not a failed case)
EXIT_IN_USE = 75
# the reader of the output stopped early (`| head`): 128 + SIGPIPE, the status of a shell tool killed by the signal
EXIT_BROKEN_PIPE = 141

# `openspine train KIND ...` and `openspine evaluate KIND ...` hand the rest of the command line to the
# module that owns that kind; each has its own argparse and --help.
TRAIN_KINDS = {
    "detector": "openspine.training.detector",
    "grader": "openspine.train_grader_cli",
    "grader-t1t2": "openspine.training.paired",
    "levels": "openspine.training.levels",
    "midline": "openspine.training.midline",
    "orientation": "openspine.training.orientation",
    "recognizer": "openspine.training.recognizer",
}
EVALUATE_KINDS = {
    "detection": "openspine.evaluation.detection",
    "grading": "openspine.evaluation.grading",
    "recognition": "openspine.evaluation.recognition",
}

_EPILOG_INFO = """examples:
  openspine info /data/study42/            # a DICOM study folder: lists every series, marks the chosen one
  openspine info scan.nii.gz
  openspine info study.zip --json
"""
_EPILOG_ANALYZE = """examples:
  openspine analyze /data/study42/ --out results/study42
  openspine analyze /data/study42/ --out out/ --series 7        # a DICOM folder: series number 7
  openspine analyze slice.png --pixel-spacing 0.5 0.5 --out out/
  openspine analyze figure.jpg --pixel-spacing auto --out out/   # pixel size unknown: estimated, flagged
  openspine analyze scan.nii.gz --out out/ --levels all --grader my-finetuned-grader/
  openspine analyze scan.nii.gz --out out/ --config options.json   # {"grade_levels": "lumbar"}
  openspine analyze t1_slice.png --pixel-spacing 0.6 0.6 --sequence T1 --out out/

exit status: 0 analysed; 1 error (one line says why); 2 bad command line (an unknown option, or an option
  value refused, e.g. --pixel-spacing 0 0: one line says why);
  3 nothing in scope: no vertebral body found (in a picture: fewer than three; or every body scored below
  0.25); no MR magnitude image (a CT or radiograph by its DICOM Modality, Hounsfield units); not sagittal (an axial or
  coronal series, a picture or a NIfTI without orientation that looks axial or coronal, a volume whose header
  names the wrong axes); an image without contrast (all one value) or of fewer than 32 intensities (a mask);
  a file whose name says label map (mask, labels, seg …); a picture openspine wrote (its overlay); or the
  image is stored upside down or facing backwards
  (result.json is still written, with the reason in "out_of_scope"; one line on stderr says it);
  130 interrupted (Ctrl-C), 143 stopped by SIGTERM; 141 the reader of the output stopped early (| head: the outputs
  are written, the status says nothing more of the scan).
The summary line names every flag. A model answers only inside the scope on its card (modality, sequences, regions,
levels): outside it a label or grade is withheld, with the reason in result.json, the CSV files, the
report and the overlay.
"""
_EPILOG_BATCH = """examples:
  openspine batch /data/cohort --out results/ --dry-run      # what would be processed, what skipped and why
  openspine batch /data/cohort --out results/ --workers 2
  openspine batch /data/cohort --out results/ --part 3/100   # job array task 3 of 100 (e.g. SLURM)
  openspine batch /data/cohort --out results/ --cluster local:4
  openspine batch /data/cohort --out results/ --scheduler tcp://10.0.0.5:8786
  openspine batch /data/pictures --out results/ --pixel-spacing auto   # PNG/JPEG slices, pixel size estimated
  openspine batch /data/pictures --out results/ --pixel-spacing-table sizes.csv   # each picture's own pixel size
Every file under the input is a case or listed in results/skipped.csv with the reason (hidden, not an image,
truncated or unreadable DICOM, a series of a study that is not read). Reruns skip a finished case only when its
folder holds the same input's result made with the same options and every output asked now; the others are analysed
again, with a warning (--overwrite redoes every case). A failed case goes to results/failures.csv. A case out of
scope (nothing in scope found: no vertebral body, not a sagittal plane, no contrast) keeps its outputs and is listed
in failures.csv with stage 'scope'. Cohort tables and failures.csv are built from each case folder of the cases found
under the input now (every --part shard's); folders whose input is gone are kept and listed in
results/stale_cases.csv. Exit code: 2 for a bad command line (e.g. --part 0/3); 75 when another run holds the
output folder (try again once it ends); 1 if any case failed or no case at all is found under the input, else 3 if
any case is out of scope (as 'analyze'), else 0.
Optional packages (openspine[distributed] for --cluster/--scheduler, openspine[dicom] for --formats seg,sr when a
case is DICOM) are checked before the first case.
"""
_EPILOG_DEMO = """examples:
  openspine demo                 # analyses the embedded example scan, prints where the outputs are
  openspine demo --out demo-out
"""


def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path",
        help="DICOM folder, DICOM file, zip of DICOM files, NIfTI file, or picture of one slice (PNG, JPEG, TIFF, BMP)",
    )
    p.add_argument("--series", default=None, help="series to use: SeriesInstanceUID, SeriesNumber or index")
    _add_pixel_spacing_option(
        p,
        "PNG/JPEG input: ROW_MM COL_MM (one value: square pixels), or 'auto' to estimate it from the vertebral bodies "
        "(flagged: lengths in mm "
        "then carry its error)",
    )


def _add_pixel_spacing_option(p: argparse.ArgumentParser, of_what: str) -> None:
    p.add_argument("--pixel-spacing", nargs="+", metavar="MM", default=None, help=f"pixel size of {of_what}")


def _add_sequence_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sequence",
        default=None,
        type=_sequence_word,
        choices=SEQUENCES,
        help="the scan's sequence, overriding the header and the image recogniser (grading needs T2)",
    )


def _sequence_word(text: str) -> str:
    """A sequence name in any case as result.json spells it (T1, T2, STIR, other); anything else as given, for
    argparse to refuse with the choices."""
    from .config import parse_sequence

    try:
        return parse_sequence(text)
    except OpenSpineError:
        return text


def _add_t1_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--t1",
        default=None,
        type=Path,
        metavar="T1_SCAN",
        help="the same study's sagittal T1 series (NIfTI, DICOM folder or PNG/JPEG slice), read beside the main "
        "(T2) one: its discs are matched by level and graded from both series where the T1+T2 grader answers. "
        "A DICOM study folder holding a T1 series uses it without this option",
    )
    p.add_argument(
        "--t1-pixel-spacing",
        nargs="+",
        metavar="MM",
        default=None,
        help="pixel size of a T1 given as a PNG/JPEG slice: ROW_MM COL_MM or 'auto' (its own: the two series "
        "need not match)",
    )
    p.add_argument("--no-t1", action="store_true", help="read the main series alone, even where a T1 series exists")
    _add_orientation_option(p)
    _add_paired_grader_option(p)


def _add_orientation_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-orientation",
        action="store_true",
        help="skip the check that the image is not stored upside down or facing backwards (made where the "
        "labelling is unsure; a scan that fails it exits 3)",
    )


def _add_paired_grader_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--paired-grader",
        default=None,
        metavar="DIR",
        help="a grader model folder that reads each disc's T2 and T1 crops together (made by 'openspine train "
        "grader-t1t2'); the built-in installation has none (docs/grading.md says why)",
    )


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=("openspine", "spinenet"),
        default=None,  # not given: an options file's engine, else openspine's own
        help="whose models: openspine's own (default), or SpineNet's through its installed package and your "
        "downloaded weights (non-commercial licence, which covers the outputs; docs/spinenet.md)",
    )
    p.add_argument(
        "--spinenet-weights",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of SpineNet's weights (detect-vfr/, appearance/, context/, grading/); default: its package's",
    )


def _add_formats_option(p: argparse.ArgumentParser) -> None:
    from .writers import DEFAULT_FORMATS, formats_help

    p.add_argument(
        "--formats",
        default=",".join(DEFAULT_FORMATS),
        help=formats_help(),
    )


def _add_global_options(p: argparse.ArgumentParser, defaults: bool) -> None:
    """-v, -q and --log-format: with their defaults on the main parser, without (SUPPRESS) on a command's."""
    unset = {} if defaults else {"default": argparse.SUPPRESS}
    p.add_argument("-v", "--verbose", action="store_true", help="show debug messages", **unset)  # type: ignore[arg-type]
    p.add_argument("-q", "--quiet", action="store_true", help="show only errors", **unset)  # type: ignore[arg-type]
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text" if defaults else argparse.SUPPRESS,
        help="format of log messages on stderr",
    )


def _nonempty_path(text: str) -> Path:
    """A path argument; an empty one ("$UNSET_VARIABLE") is refused rather than read as the working folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path: give the folder that holds the scans")
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openspine",
        description="Detect, label and grade the spine in sagittal MRI. Research software, not a medical device.",
        formatter_class=HelpFormatter,
        epilog="Run 'openspine COMMAND --help' for the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"openspine {__version__}")
    _add_global_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # -q/-v/--log-format also after the command's name (before it, they are the main parser's): no default here,
    # so a command that is not given one keeps the main parser's value
    common = argparse.ArgumentParser(add_help=False)
    _add_global_options(common, defaults=False)

    p = sub.add_parser(
        "info", parents=[common], help="describe what was read: series, shape, spacing, orientation",
        formatter_class=HelpFormatter, epilog=_EPILOG_INFO,
    )  # fmt: skip
    _add_input_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = sub.add_parser(
        "analyze", parents=[common], help="analyse one scan and write result.json and CSV files",
        formatter_class=HelpFormatter, epilog=_EPILOG_ANALYZE,
    )  # fmt: skip
    _add_input_options(p)
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder (created if needed)")
    p.add_argument("--detector", default=None, help="detector model folder (default: built-in)")
    p.add_argument("--grader", default=None, help="grader model folder, e.g. from 'openspine finetune'")
    p.add_argument(
        "--levels",
        default=None,
        help="disc levels to grade: 'lumbar' (T12-L1…L5-S1, the default), 'all', or a list like L4-L5,L5-S1",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="JSON file of analysis options (see docs); a relative model folder in it is looked for beside the file "
        "first",
    )
    _add_sequence_option(p)
    _add_t1_options(p)
    _add_formats_option(p)
    _add_engine_options(p)

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="analyse the embedded example scan",
        formatter_class=HelpFormatter,
        epilog=_EPILOG_DEMO,
    )
    p.add_argument("-o", "--out", type=Path, default=Path("openspine-demo"), help="output folder")
    _add_formats_option(p)

    p = sub.add_parser(
        "batch", parents=[common], help="analyse every scan under a folder: resumable, sharded, failures isolated",
        formatter_class=HelpFormatter, epilog=_EPILOG_BATCH,
    )  # fmt: skip
    p.add_argument(
        "input_root",
        type=_nonempty_path,
        help="folder of DICOM studies, NIfTI files, a BIDS dataset or PNG/JPEG pictures",
    )
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder: cases/<case>/ plus cohort tables")
    p.add_argument("--dry-run", action="store_true", help="list the cases found and what is skipped, then stop")
    p.add_argument("--overwrite", action="store_true", help="redo cases that are already finished")
    p.add_argument("--part", default=None, metavar="K/N", help="process the K-th of N deterministic shares")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (models loaded once each)")
    p.add_argument("--scheduler", default=None, help="address of a Dask scheduler, e.g. tcp://HOST:8786")
    p.add_argument("--cluster", default=None, metavar="local:N", help="start a local Dask cluster of N workers")
    p.add_argument("--grader", default=None, help="grader model folder, e.g. from 'openspine finetune'")
    p.add_argument("--levels", default=None, help="disc levels to grade: lumbar (default), all, or a list")
    _add_pixel_spacing_option(
        p,
        "the PNG/JPEG pictures under the root (without it they are skipped): ROW_MM COL_MM for all (one value: square "
        "pixels), or 'auto' to "
        "estimate each one's from its vertebral bodies (flagged); with --pixel-spacing-table, the pictures it does "
        "not list",
    )
    p.add_argument(
        "--pixel-spacing-table",
        default=None,
        metavar="CSV",
        help="each picture's own pixel size: a CSV with the columns path (relative to the input folder, e.g. "
        "site1/p01.png, or absolute), row_mm, col_mm",
    )
    _add_sequence_option(p)
    p.add_argument("--no-t1", action="store_true", help="read each case's main series alone, even with a T1 beside it")
    _add_orientation_option(p)
    _add_paired_grader_option(p)
    _add_engine_options(p)
    _add_formats_option(p)

    p = sub.add_parser(
        "finetune",
        help="teach the grader new or existing gradings from your labelled scans; 'openspine finetune --help'",
        add_help=False,  # --help goes to the fine-tuning command's own parser
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)

    for name, kinds, what in (("train", TRAIN_KINDS, "train a model"), ("evaluate", EVALUATE_KINDS, "evaluate")):
        p = sub.add_parser(
            name,
            help=f"{what} ({', '.join(kinds)}); 'openspine {name} KIND --help' for options",
            formatter_class=HelpFormatter,
            add_help=True,
        )
        p.add_argument("kind", choices=sorted(kinds), help="what to " + name)
        p.add_argument("rest", nargs=argparse.REMAINDER, help="options of that kind")
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.ERROR if args.quiet else logging.INFO
    log_to_stderr(level, args.log_format == "json")


def _printable_streams() -> None:
    """Let stdout and stderr print any text: in a locale whose encoding is not UTF-8 (``LC_ALL=C`` with
    ``PYTHONUTF8=0``, a legacy code page) a dash or a non-ASCII file name had ended the command with a traceback;
    such characters are now written as ``?``."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and str(getattr(stream, "encoding", "utf-8")).lower().replace("-", "") != "utf8":
            reconfigure(errors="replace")


def _global_options_from_rest(args: argparse.Namespace) -> None:
    """Take -q and -v given after the command (``openspine evaluate grading … -q``), as every other command takes
    them: the options handed on to the kind's own parser had been refused there."""
    rest = list(args.rest)
    end = rest.index("--") if "--" in rest else len(rest)

    def global_flags(a: str) -> str:  # "-qv" → "qv"; "" for any other argument
        long = {"--quiet": "q", "--verbose": "v"}
        return long.get(a, a[1:] if len(a) > 1 and a[0] == "-" and set(a[1:]) <= {"q", "v"} else "")

    for letter, attr in (("q", "quiet"), ("v", "verbose")):
        if any(letter in global_flags(a) for a in rest[:end]):
            setattr(args, attr, True)
    args.rest = [a for i, a in enumerate(rest) if i >= end or not global_flags(a)]


def main(argv: Sequence[str] | None = None) -> int:
    _printable_streams()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    with _usage_errors_as_json(argv):
        args, unknown = parser.parse_known_args(argv)
        if args.command == "finetune":  # everything after the word belongs to the fine-tuning parser (--help too)
            args.rest = argv[argv.index("finetune") + 1 :]
        elif unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        if args.command in ("train", "evaluate", "finetune"):
            _global_options_from_rest(args)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    _configure_logging(args)
    bars = (
        no_progress_bars()
        if args.log_format == "json"
        else contextlib.nullcontext()
        if sys.stderr.isatty()
        else line_progress_bars()
    )
    terminated: list[int] = []  # the signal that ended the command, when SIGTERM did
    try:
        with bars, _cleaning_up_on_sigterm(args.command, terminated):
            status = _run(args)
        sys.stdout.flush()  # a reader that stopped early fails this write here, not at interpreter exit
        return status
    except BrokenPipeError:
        # the reader stopped early (`| head`): no traceback, and nothing more is written to the closed pipe (the
        # interpreter flushes stdout again at exit); as the Python docs recommend for SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except UsageError as exc:  # an option value refused: a bad command line, as argparse's own refusals
        _say_error(args, f"openspine {args.command}: error: {exc}")
        return EXIT_USAGE
    except OpenSpineError as exc:
        logging.getLogger("openspine").debug("error details", exc_info=True)
        _say_error(args, f"openspine: error: {exc}")
        return EXIT_IN_USE if isinstance(exc, OutputInUseError) else EXIT_ERROR
    except KeyboardInterrupt as exc:
        # a batch keeps every case finished before the interruption, and the same command goes on with the rest
        how_far = f": {exc.progress()}" if isinstance(exc, BatchInterrupted) else ""
        resumes = (
            f"{how_far}; the cases finished are kept, and the same command goes on with the rest"
            if args.command == "batch"
            else ""
        )
        by = " by SIGTERM" if terminated else ""
        _say_error(args, f"openspine: interrupted{by}{resumes}")
        return 128 + terminated[0] if terminated else 130


@contextlib.contextmanager
def _usage_errors_as_json(argv: Sequence[str]) -> Iterator[None]:
    """With ``--log-format json``, argparse's refusal of the command line (an unknown option, a missing one) as one
    JSON record on stderr, as every other line then is; its usage lines are left out (``--help`` shows them)."""
    if not any(a == "--log-format=json" or (a == "--log-format" and b == "json") for a, b in pairwise([*argv, ""])):
        yield
        return
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    except SystemExit as exc:
        said = captured.getvalue().strip().splitlines()
        if exc.code == EXIT_USAGE and said:
            say_last(said[-1], "json", logging.ERROR)
        else:
            sys.stderr.write(captured.getvalue())
        raise
    sys.stderr.write(captured.getvalue())


@contextlib.contextmanager
def _cleaning_up_on_sigterm(command: str, terminated: list[int]) -> Iterator[None]:
    """Let SIGTERM (``kill``, a job scheduler's time limit) end a command as Ctrl-C does, through its clean-up: a
    zip's extracted images in the temporary folder had been left behind, and a batch ended without a word. A batch
    stops as on Ctrl-C (its workers finish the cases they hold, and it says how far it got); the signal's number is
    put in ``terminated`` for the exit status. A command run outside the main thread (from Python) cannot set a
    handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def stop(signum: int, frame: object) -> None:
        terminated.append(signum)
        if command == "batch":
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say_error(args: argparse.Namespace, line: str) -> None:
    """The final error line on stderr: as it is, or with ``--log-format json`` as one more JSON record."""
    say_last(line, args.log_format, logging.ERROR)


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit status."""
    if args.command == "finetune":
        return int(importlib.import_module("openspine.finetune").cli_main(list(args.rest), quiet=args.quiet))
    if args.command in ("train", "evaluate"):
        kinds = TRAIN_KINDS if args.command == "train" else EVALUATE_KINDS
        module = importlib.import_module(kinds[args.kind])
        return int(module.cli_main(list(args.rest), quiet=args.quiet))
    commands = importlib.import_module(".commands", __package__)
    return int(getattr(commands, f"run_{args.command}")(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
