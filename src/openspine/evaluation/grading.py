"""Evaluate the grader against the radiologists' SPIDER gradings: ``openspine evaluate grading``.

The full pipeline runs on every slice of the split (built-in detector → grader), each graded disc is matched by
level to the reference row of ``spider/gradings.csv``, and per grading we report: number of discs, accuracy,
balanced accuracy, Cohen's κ (linearly weighted for ordered gradings, unweighted for nominal ones), the
confusion matrix, patient-level bootstrap 95 % intervals, and the expected calibration error of the reported
probabilities (and of the uncalibrated ones, recovered exactly from the card's temperature).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .._command_parser import command_parser
from .._logging import get_logger
from ..errors import ConfigError, OpenSpineError, OutputError
from ..levels import LUMBAR_DISCS, DiscLevel
from ..training.metrics import Collected, format_float, format_percent, head_metrics, rounded

log = get_logger("evaluation.grading")

_EPILOG = """examples:
  openspine evaluate grading --data ../shared/data --split val
  openspine evaluate grading --data ../shared/data --split val --out grading-val.json
  openspine evaluate grading --data ../shared/data --grader my-finetuned-model/ --levels all
"""


def evaluate(
    data_dir: str | os.PathLike[str],
    split: str = "val",
    grader: str | os.PathLike[str] | None = None,
    levels: tuple[DiscLevel, ...] | None = LUMBAR_DISCS,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda x: x,
) -> dict[str, Any]:
    """Run detection and grading on every SPIDER slice of ``split`` and compare with the reference gradings."""
    from ..detection import detect
    from ..grading import grade
    from ..grading.model import load_grader
    from ..training.datasets.discs import load_view
    from ..training.datasets.spider import read_spider

    model = load_grader(grader)
    cases = read_spider(data_dir, (split,))
    if not cases:
        raise ConfigError(f"no SPIDER cases in split '{split}' under '{data_dir}'")
    collected = {h.name: Collected(h) for h in model.heads}
    n_ref = n_matched = 0
    missed: list[str] = []
    failed: dict[str, str] = {}
    t0 = time.perf_counter()
    for case in progress(cases):
        wanted = [lv for lv in case.labels if levels is None or lv in levels]
        n_ref += len(wanted)
        try:
            view = load_view(case.image)
            det = detect(view)
            out = grade(view, det, levels=levels, grader=grader)
        except OpenSpineError as exc:
            failed[case.patient] = str(exc)
            missed += [f"{case.patient} {lv.value}" for lv in wanted]
            continue
        # a disc that could not be graded carries only unavailable grades (with the reason): not matched
        graded = {d.level: d for d in out.discs if d.level is not None and any(g.available for g in d.grades.values())}
        for lv in wanted:
            d = graded.get(lv)
            if d is None:
                missed.append(f"{case.patient} {lv.value}")
                continue
            n_matched += 1
            for h in model.heads:
                ref = case.labels[lv].get(h.name)
                g = d.grades.get(h.grading)
                if ref is None or ref not in h.classes or g is None or g.probabilities is None or g.grade is None:
                    continue
                c = collected[h.name]
                c.y_true.append(h.classes.index(ref))
                probs = [float(g.probabilities[str(h.grade_of(i))]) for i in range(len(h.classes))]
                grades = [h.grade_of(i) for i in range(len(h.classes))]
                c.y_pred.append(grades.index(g.grade))
                c.y_balanced.append(None if g.balanced_grade is None else grades.index(g.balanced_grade))
                c.probs.append(probs)
                c.patients.append(case.patient)
    seconds = time.perf_counter() - t0
    return {
        "data": str(data_dir),
        "split": split,
        "grader": model.info.to_dict() | {"folder": str(model.folder)},
        "levels": [lv.value for lv in levels] if levels is not None else "all",
        "patients": len(cases),
        "reference_discs": n_ref,
        "graded_and_matched": n_matched,
        "coverage": rounded(n_matched / n_ref) if n_ref else None,
        "missed": missed,
        "failed_scans": failed,
        "bootstrap": {"resamples": n_boot, "unit": "patient", "seed": seed, "interval": "percentile 95 %"},
        "seconds": round(seconds, 1),
        "gradings": {name: head_metrics(c, n_boot, seed) for name, c in collected.items()},
    }


def _levels_text(res: dict[str, Any]) -> str:
    lv = res["levels"]
    return lv if isinstance(lv, str) else ", ".join(lv)


def format_report(res: dict[str, Any]) -> str:
    """Human-readable summary of :func:`evaluate`'s result."""
    lines = [
        f"grader {res['grader']['name']} {res['grader']['version']} on SPIDER split '{res['split']}': "
        f"{res['patients']} patients, {res['graded_and_matched']}/{res['reference_discs']} reference discs graded "
        f"(coverage {100 * (res['coverage'] or 0):.1f} %), levels {_levels_text(res)}",
        "",
        "grade = the most probable class; balanced = the class-balanced decision (balanced_grade), where the head "
        "has one",
        "",
        f"{'grading':24s} {'n':>4s}  {'balanced acc [95% CI]':>24s}  {'kappa [95% CI]':>26s}  {'ECE cal/raw':>12s}"
        f"  {'balanced: BA / kappa':>20s}",
    ]
    for name, m in res["gradings"].items():
        if not m.get("n"):
            lines.append(f"{name:24s} {0:>4d}  (no reference labels)")
            continue
        ba, ka = m["balanced_accuracy"], m["kappa"]
        lines.append(
            f"{name:24s} {m['n']:>4d}  {format_percent(ba['value'])} "
            f"[{format_percent(ba['ci95'][0])}, {format_percent(ba['ci95'][1])}]  "
            f"{format_float(ka['value'])} [{format_float(ka['ci95'][0])}, {format_float(ka['ci95'][1])}] "
            f"{ka['weights'][:3]:>3s}  "
            f"{format_float(m['ece']['calibrated'])}/{format_float(m['ece']['uncalibrated'])}"
            + (
                f"  {format_percent(m['balanced_grade']['balanced_accuracy']['value'])} / "
                f"{format_float(m['balanced_grade']['kappa']['value'])}"
                if "balanced_grade" in m
                else ""
            )
        )
    lines.append("")
    for name, m in res["gradings"].items():
        if not m.get("n"):
            continue
        lines.append(f"{name}: confusion matrix (rows = reference, columns = prediction; classes {m['classes']})")
        for cls, row in zip(m["classes"], m["confusion_matrix"]["matrix"]):
            lines.append(f"  {cls:>6s} | " + " ".join(f"{v:4d}" for v in row))
    if res["failed_scans"]:
        lines.append(f"scans that failed: {res['failed_scans']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "openspine evaluate grading",
        "Grade every SPIDER slice of a split (detector + grader) and compare with the radiologists' "
        "gradings: balanced accuracy, kappa, confusion matrices, bootstrap 95 % intervals, calibration error.",
        _EPILOG,
        show_defaults=False,
    )
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder (index.csv)")
    p.add_argument("--split", default="val", choices=("train", "val"), help="which split to evaluate")
    p.add_argument("--grader", default=None, help="grader model folder (default: the built-in grader)")
    p.add_argument("--levels", default="lumbar", help="'lumbar' (T12-L1 … L5-S1), 'all', or comma-separated levels")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (patients)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--out", type=Path, default=None, help="write the full result as JSON here")
    p.add_argument(
        "--update-card",
        action="store_true",
        help="write the result into the grader's card.json 'metrics' (for the model you just trained)",
    )
    return p


def parse_levels(text: str) -> tuple[DiscLevel, ...] | None:
    t = text.strip().lower()
    if t == "lumbar":
        return LUMBAR_DISCS
    if t == "all":
        return None
    return tuple(DiscLevel.parse(s) for s in text.split(","))


def card_metrics(res: dict[str, Any]) -> dict[str, Any]:
    """The compact form of an evaluation kept in a model card."""
    keys = ("n", "accuracy", "balanced_accuracy", "kappa", "ece", "balanced_grade")
    g = {name: {k: _compact(m[k]) for k in keys if k in m} for name, m in res["gradings"].items()}
    return {
        "evaluated_on": f"SPIDER split '{res['split']}' ({res['patients']} patients, "
        f"{res['graded_and_matched']} discs, levels {_levels_text(res)})",
        "pipeline": "built-in detector + this grader (openspine evaluate grading)",
        "decisions": "metrics of `grade` (the most probable class); `balanced_grade`: those of the class-balanced "
        "decision, for heads that have one",
        "coverage": res["coverage"],
        "gradings": g,
    }


def _compact(value: Any) -> Any:
    """A metric as the card keeps it: a decision's confusion matrix is left out."""
    if isinstance(value, dict) and "confusion_matrix" in value:
        return {k: v for k, v in value.items() if k != "confusion_matrix"}
    return value


def update_card(folder: Path, res: dict[str, Any]) -> None:
    """Store evaluation metrics in a grader's card (the ONNX file and its checksum are unchanged)."""
    path = folder / "card.json"
    card = json.loads(path.read_text())
    card["metrics"] = card_metrics(res)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    tmp.replace(path)


def record_val_evaluation(data_dir: Path, folder: Path, work: Path) -> dict[str, Any]:
    """Evaluate a freshly trained grader on val, keep the result in ``work/evaluation-val.json`` and its card.

    ``openspine train grader``'s last step; returns :func:`evaluate`'s result.
    """
    res = evaluate(data_dir, "val", folder)
    (work / "evaluation-val.json").write_text(json.dumps(res, indent=2) + "\n")
    update_card(folder, res)
    log.info("evaluation on val:\n%s", format_report(res))
    return res


def cli_main(argv: Sequence[str], quiet: bool = False) -> int:
    """``openspine evaluate grading``: returns 0, or 1 when a scan failed."""
    args = build_parser().parse_args(list(argv))
    from tqdm import tqdm

    def bar(x: Iterable[Any]) -> Iterable[Any]:
        return tqdm(x, desc="grading", unit="scan", disable=quiet, file=sys.stderr)

    res = evaluate(args.data, args.split, args.grader, parse_levels(args.levels), args.bootstrap, args.seed, bar)
    if args.out is not None:
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(res, indent=2) + "\n")
        except OSError as exc:
            raise OutputError(f"cannot write '{args.out}': {exc}") from exc
    if args.update_card:
        from ..grading.model import load_grader

        update_card(load_grader(args.grader).folder, res)
    if not quiet:
        print(format_report(res))
        if args.out is not None:
            print(f"\nwritten: {args.out}")
    return 1 if res["failed_scans"] else 0
