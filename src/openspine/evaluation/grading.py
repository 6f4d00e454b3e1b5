"""Evaluate the grader against the radiologists' SPIDER gradings: ``openspine evaluate grading``.

The full pipeline runs on every slice of the split (built-in detector → grader), each graded disc is matched by
level to the reference row of ``spider/gradings.csv``, and per grading we report: number of discs, accuracy,
balanced accuracy, Cohen's κ (linearly weighted for ordered gradings, unweighted for nominal ones), the
confusion matrix, patient-level bootstrap 95 % intervals, and the expected calibration error of the reported
probabilities (and of the uncalibrated ones, recovered exactly from the card's temperature).

``--t1`` (:func:`evaluate_t1`) compares, on the split's SPIDER patients that also have a T1 slice and on the same
discs, the T2 grader alone with the grading that also reads the T1 slice (the T1 slice detected too, its discs
matched by level with :func:`openspine.study.match_series`, the two-series grader ``grader-t1t2`` answering its heads
for each paired disc), side by side, plus marrow (Modic) change as any type against none and per type.
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
from ..errors import ConfigError, ModelError, OpenSpineError, OutputError
from ..grading.heads import HeadSpec
from ..levels import LUMBAR_DISCS, DiscLevel
from ..study import MISMATCH_FLAG
from ..training.metrics import Collected, format_float, format_percent, head_metrics, rounded

log = get_logger("evaluation.grading")

_EPILOG = """examples:
  openspine evaluate grading --data ../shared/data --split val
  openspine evaluate grading --data ../shared/data --split val --out grading-val.json
  openspine evaluate grading --data ../shared/data --grader my-finetuned-model/ --levels all
  openspine train grader-t1t2 --data ../shared/data --out t1t2-model     # none ships: train one first
  openspine evaluate grading --data ../shared/data --split val --t1 --paired-grader t1t2-model --out grading-val-t1.json
"""


def evaluate(
    data_dir: str | os.PathLike[str],
    split: str = "val",
    grader: str | os.PathLike[str] | None = None,
    levels: tuple[DiscLevel, ...] | None = LUMBAR_DISCS,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda x: x,
    detector: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run detection (``detector``: a model folder, default the built-in one) and grading on every SPIDER slice
    of ``split`` and compare with the reference gradings."""
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
            det = detect(view, model=detector)
            out = grade(view, det, levels=levels, grader=grader)
        except OpenSpineError as exc:
            failed[case.patient] = str(exc)
            missed += [f"{case.patient} {lv.value}" for lv in wanted]
            continue
        graded = _graded_by_level(out.discs)
        for lv in wanted:
            d = graded.get(lv)
            if d is None:
                missed.append(f"{case.patient} {lv.value}")
                continue
            n_matched += 1
            for h in model.heads:
                _collect(collected[h.name], h, case.labels[lv].get(h.name), d.grades.get(h.grading), case.patient)
    seconds = time.perf_counter() - t0
    res: dict[str, Any] = {
        "data": str(data_dir),
        "split": split,
        "grader": model.info.to_dict() | {"folder": str(model.folder)},
        "detector": str(detector) if detector is not None else "built-in",
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
    if "marrow_change" in collected:  # how the Modic targets are stated: any type against none
        res["marrow_change_any_vs_none"] = head_metrics(_any_marrow(collected["marrow_change"]), n_boot, seed)
    return res


def _graded_by_level(discs: Iterable[Any]) -> dict[DiscLevel, Any]:
    """The graded discs by level; a disc that could not be graded carries only unavailable grades (with the
    reason) and is left out (not matched)."""
    return {d.level: d for d in discs if d.level is not None and any(g.available for g in d.grades.values())}


def _collect(c: Collected, h: Any, ref: str | None, g: Any, patient: str) -> bool:
    """Add one disc's reference and grade of head ``h`` to ``c``; False when either is missing."""
    if ref is None or ref not in h.classes or g is None or g.probabilities is None or g.grade is None:
        return False
    c.y_true.append(h.classes.index(ref))
    grades = [h.grade_of(i) for i in range(len(h.classes))]
    c.y_pred.append(grades.index(g.grade))
    c.y_balanced.append(None if g.balanced_grade is None else grades.index(g.balanced_grade))
    c.probs.append([float(g.probabilities[str(h.grade_of(i))]) for i in range(len(h.classes))])
    c.patients.append(patient)
    return True


# marrow change as any type (1-3) against none: the decision is "any" when the reported type is not 0
_ANY_MARROW = HeadSpec(name="marrow_change_any", classes=("0", "1"), description="Modic change: none / any type")
_VARIANTS = {"t2_only": "T2 grader alone", "t1_t2": "T2 and T1 read together"}


def _any_marrow(c: Collected) -> Collected:
    """The marrow change decisions of ``c`` as none (0) / any type (1), probability of any = 1 − P(none)."""
    out = Collected(_ANY_MARROW)
    out.y_true = [int(t > 0) for t in c.y_true]
    out.y_pred = [int(p > 0) for p in c.y_pred]
    out.y_balanced = [None if b is None else int(b > 0) for b in c.y_balanced]
    out.probs = [[p[0], 1.0 - p[0]] for p in c.probs]
    out.patients = list(c.patients)
    return out


def _per_type(classes: Sequence[str], m: dict[str, Any]) -> dict[str, Any]:
    """Recall and precision of each class from a decision's confusion matrix (rows reference, columns prediction)."""
    import numpy as np

    cm = np.asarray(m["confusion_matrix"]["matrix"], dtype=float)
    out: dict[str, Any] = {}
    for i, cls in enumerate(classes):
        support, called = cm[i].sum(), cm[:, i].sum()
        out[cls] = {
            "support": int(support),
            "recall": rounded(cm[i, i] / support) if support else None,
            "precision": rounded(cm[i, i] / called) if called else None,
        }
    return out


def evaluate_t1(
    data_dir: str | os.PathLike[str],
    split: str = "val",
    grader: str | os.PathLike[str] | None = None,
    paired_grader: str | os.PathLike[str] | None = None,
    levels: tuple[DiscLevel, ...] | None = LUMBAR_DISCS,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda x: x,
    patients: int = 0,
) -> dict[str, Any]:
    """On the split's SPIDER patients with a T1 slice: the T2 grader alone against T2 and T1 read together, on the
    same discs (``patients`` > 0: only the first that many, for tests).

    Both series are detected; their discs are matched by level (:func:`openspine.study.match_series`); a patient
    whose series disagree is graded from T2 alone in both columns (as ``openspine analyze`` does) and counted.

    Raises:
        ConfigError: no such patients.
        ModelError: a grader is missing or is not what it should be (the paired one must read two series).
    """
    from ..detection import detect
    from ..grading import PAIRED_GRADER, SecondSeries, grade
    from ..grading.model import load_grader
    from ..grading.pair import PAIRED_CHANNELS
    from ..models import BUILTIN_DIR
    from ..study import match_series
    from ..training.datasets.discs import load_view
    from ..training.datasets.spider import read_spider
    from ..training.paired import read_t1_slices

    model = load_grader(grader)
    paired_key = paired_grader if paired_grader is not None else PAIRED_GRADER
    if paired_grader is None and not (BUILTIN_DIR / PAIRED_GRADER / "card.json").is_file():
        raise ModelError(
            f"this installation has no built-in {PAIRED_GRADER} (no head gained from T1 in its cross-validation); "
            "train one with 'openspine train grader-t1t2' and pass it with --paired-grader"
        )
    paired = load_grader(paired_key)
    if len(paired.channels) != 2:
        raise ModelError(f"grader '{paired.name}' reads {len(paired.channels)} series; --paired-grader needs two")
    t1 = read_t1_slices(data_dir)
    cases = [c for c in read_spider(data_dir, (split,)) if c.patient in t1]
    if patients:
        cases = cases[:patients]
    if not cases:
        raise ConfigError(f"no SPIDER patients with a T1 slice in split '{split}' under '{data_dir}'")
    both_heads = {h.name: h for h in paired.heads}
    collected = {
        "t2_only": {h.name: Collected(h) for h in model.heads},
        "t1_t2": {h.name: Collected(both_heads.get(h.name, h)) for h in model.heads},
    }
    read_both = {h.name: 0 for h in model.heads}
    sequence = {"value": PAIRED_CHANNELS[0], "source": "SPIDER T2 series"}
    n_ref = n_matched = 0
    missed: list[str] = []
    failed: dict[str, str] = {}
    mismatched: dict[str, list[str]] = {}
    t0 = time.perf_counter()
    for case in progress(cases):
        wanted = [lv for lv in case.labels if levels is None or lv in levels]
        n_ref += len(wanted)
        try:
            v2, v1 = load_view(case.image), load_view(t1[case.patient][0])
            d2, d1 = detect(v2), detect(v1)
            alone = grade(v2, d2, levels=levels, grader=grader, sequence=sequence)
            match = match_series(d2, v2, d1, v1, names=PAIRED_CHANNELS)
            second = None
            if match.agree:
                i2 = {id(d): i for i, d in enumerate(d2.discs)}
                i1 = {id(d): i for i, d in enumerate(d1.discs)}
                pairs = {i2[id(m.first)]: i1[id(m.second)] for m in match.discs}
                second = SecondSeries(name=PAIRED_CHANNELS[1], view=v1, detection=d1, pairs=pairs)
            else:
                mismatched[case.patient] = [f for f in match.flags if f.startswith(MISMATCH_FLAG)]
            together = grade(
                v2, d2, levels=levels, grader=grader, sequence=sequence, second=second, paired_grader=paired_key
            )
        except OpenSpineError as exc:
            failed[case.patient] = str(exc)
            missed += [f"{case.patient} {lv.value}" for lv in wanted]
            continue
        ga, gb = _graded_by_level(alone.discs), _graded_by_level(together.discs)
        for lv in wanted:
            da, db = ga.get(lv), gb.get(lv)
            if da is None or db is None:
                missed.append(f"{case.patient} {lv.value}")
                continue
            n_matched += 1
            for h in model.heads:
                ref = case.labels[lv].get(h.name)
                _collect(collected["t2_only"][h.name], h, ref, da.grades.get(h.grading), case.patient)
                g = db.grades.get(h.grading)
                hb = both_heads.get(h.name, h)
                if _collect(collected["t1_t2"][h.name], hb, ref, g, case.patient) and g.series == PAIRED_CHANNELS:
                    read_both[h.name] += 1
    seconds = time.perf_counter() - t0
    gradings = {v: {name: head_metrics(c, n_boot, seed) for name, c in cs.items()} for v, cs in collected.items()}
    res: dict[str, Any] = {
        "data": str(data_dir),
        "split": split,
        "mode": "t1",
        "grader": model.info.to_dict() | {"folder": str(model.folder)},
        "paired_grader": paired.info.to_dict() | {"folder": str(paired.folder), "heads": list(both_heads)},
        "variants": _VARIANTS,
        "levels": [lv.value for lv in levels] if levels is not None else "all",
        "patients": len(cases),
        "series_mismatch": mismatched,
        "reference_discs": n_ref,
        "graded_and_matched": n_matched,
        "coverage": rounded(n_matched / n_ref) if n_ref else None,
        "read_from_both_series": read_both,
        "missed": missed,
        "failed_scans": failed,
        "bootstrap": {"resamples": n_boot, "unit": "patient", "seed": seed, "interval": "percentile 95 %"},
        "seconds": round(seconds, 1),
        "gradings": gradings,
    }
    if "marrow_change" in collected["t2_only"]:
        res["marrow_change_any_vs_none"] = {
            v: head_metrics(_any_marrow(cs["marrow_change"]), n_boot, seed) for v, cs in collected.items()
        }
        per_type: dict[str, Any] = {}
        for v, g in gradings.items():
            m = g["marrow_change"]
            per_type[v] = {}
            if "confusion_matrix" in m:
                per_type[v]["grade"] = _per_type(m["classes"], m)
            if "confusion_matrix" in m.get("balanced_grade", {}):
                per_type[v]["balanced_grade"] = _per_type(m["classes"], m["balanced_grade"])
        res["marrow_change_per_type"] = per_type
    return res


def format_report_t1(res: dict[str, Any]) -> str:
    """Human-readable side-by-side summary of :func:`evaluate_t1`'s result."""
    g2, g12 = res["gradings"]["t2_only"], res["gradings"]["t1_t2"]
    lines = [
        f"T2 grader {res['grader']['name']} {res['grader']['version']} alone against T2 + T1 "
        f"({res['paired_grader']['name']} {res['paired_grader']['version']} for "
        f"{', '.join(res['paired_grader']['heads'])}) on SPIDER split '{res['split']}': {res['patients']} patients "
        f"with a T1 slice, {res['graded_and_matched']}/{res['reference_discs']} reference discs graded (coverage "
        f"{100 * (res['coverage'] or 0):.1f} %), levels {_levels_text(res)}; T2 and T1 levels disagree for "
        f"{len(res['series_mismatch'])} patients ({', '.join(res['series_mismatch']) or 'none'}): T2 alone there",
        "",
        "balanced accuracy [95 % CI, patient bootstrap]; grade = the most probable class, balanced = the "
        "class-balanced decision where the head has one; read = discs read from both series",
        "",
        f"{'grading':24s} {'n':>4s} {'read':>4s}  {'T2 alone':>24s}  {'T2 + T1':>24s}  {'delta':>6s}"
        f"  {'balanced: T2 / T2+T1':>20s}",
    ]

    def ba(m: dict[str, Any]) -> str:
        v = m["balanced_accuracy"]
        return f"{format_percent(v['value'])} [{format_percent(v['ci95'][0])}, {format_percent(v['ci95'][1])}]"

    rows = [(name, g2[name], g12[name], res["read_from_both_series"].get(name, 0)) for name in g2]
    if "marrow_change_any_vs_none" in res:
        a = res["marrow_change_any_vs_none"]
        rows.append(("marrow_change any/none", a["t2_only"], a["t1_t2"], res["read_from_both_series"]["marrow_change"]))
    for name, a, b, read in rows:
        if not a.get("n"):
            lines.append(f"{name:24s} {0:>4d}  (no reference labels)")
            continue
        delta = (b["balanced_accuracy"]["value"] or 0) - (a["balanced_accuracy"]["value"] or 0)
        bal = ""
        if "balanced_grade" in a or "balanced_grade" in b:
            bal = "  " + " / ".join(
                format_percent(m["balanced_grade"]["balanced_accuracy"]["value"]) if "balanced_grade" in m else "   n/a"
                for m in (a, b)
            )
        lines.append(f"{name:24s} {a['n']:>4d} {read:>4d}  {ba(a)}  {ba(b)}  {100 * delta:+5.1f}{bal}")
    if "marrow_change_per_type" in res:
        lines.append("")
        lines.append("marrow change per type (grade): recall / precision (support)")
        for v, label in res["variants"].items():
            per = res["marrow_change_per_type"][v].get("grade", {})
            cells = [
                f"{cls}: {format_percent(r['recall'])} / {format_percent(r['precision'])} ({r['support']})"
                for cls, r in per.items()
            ]
            lines.append(f"  {label:24s} " + "; ".join(cells))
    if res["failed_scans"]:
        lines.append(f"scans that failed: {res['failed_scans']}")
    return "\n".join(lines)


def card_metrics_t1(res: dict[str, Any]) -> dict[str, Any]:
    """The compact form of :func:`evaluate_t1`'s result kept in the two-series grader's card: its heads read from
    both series, and the T2 grader alone on the same discs."""
    keys = ("n", "accuracy", "balanced_accuracy", "kappa", "ece", "balanced_grade")
    heads = res["paired_grader"]["heads"]

    def compact(m: dict[str, Any]) -> dict[str, Any]:
        return {k: _compact(m[k]) for k in keys if k in m}

    out: dict[str, Any] = {
        "evaluated_on": f"SPIDER split '{res['split']}', the {res['patients']} patients with a T1 slice "
        f"({res['graded_and_matched']} discs, levels {_levels_text(res)})",
        "pipeline": "built-in detector on the T2 and the T1 slice, discs matched by level (openspine.study."
        "match_series), the T2 grader plus this grader on each paired disc (openspine evaluate grading --t1)",
        "decisions": "metrics of `grade` (the most probable class); `balanced_grade`: those of the class-balanced "
        "decision, for heads that have one",
        "coverage": res["coverage"],
        "patients_series_mismatch": len(res["series_mismatch"]),
        "read_from_both_series": {h: res["read_from_both_series"][h] for h in heads},
        "gradings": {h: compact(res["gradings"]["t1_t2"][h]) for h in heads},
        "t2_grader_alone_same_discs": {h: compact(res["gradings"]["t2_only"][h]) for h in heads},
    }
    if "marrow_change" in heads and "marrow_change_any_vs_none" in res:
        a = res["marrow_change_any_vs_none"]
        out["marrow_change_any_vs_none"] = {v: compact(a[v]) for v in ("t1_t2", "t2_only")}
        out["marrow_change_per_type"] = res["marrow_change_per_type"]
    return out


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
    any_marrow = res.get("marrow_change_any_vs_none") or {}
    if any_marrow.get("n"):
        ba = any_marrow["balanced_accuracy"]
        lines.append(
            f"{'marrow_change any/none':24s} {any_marrow['n']:>4d}  {format_percent(ba['value'])} "
            f"[{format_percent(ba['ci95'][0])}, {format_percent(ba['ci95'][1])}]  (type 1, 2 or 3 against none)"
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
    p.add_argument("--detector", default=None, help="detector model folder that finds the discs (default: built-in)")
    p.add_argument("--levels", default="lumbar", help="'lumbar' (T12-L1 … L5-S1), 'all', or comma-separated levels")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (patients)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument(
        "--t1",
        action="store_true",
        help="the split's patients with a T1 slice: the T2 grader alone against T2 + T1 read together, same discs",
    )
    p.add_argument(
        "--paired-grader",
        default=None,
        help="with --t1: the grader that reads T2 and T1 together, e.g. from 'openspine train grader-t1t2' (default: "
        "the built-in grader-t1t2, where an installation has one; openspine ships none)",
    )
    p.add_argument("--out", type=Path, default=None, help="write the full result as JSON here")
    p.add_argument(
        "--update-card",
        action="store_true",
        help="write the result into the grader's card.json 'metrics' (for the model you just trained; with --t1, "
        "into the paired grader's card)",
    )
    return p


def parse_levels(text: str) -> tuple[DiscLevel, ...] | None:
    """``--levels``: read as the analysis reads ``grade_levels`` (``lumbar``, ``all`` = None, or a list)."""
    from ..config import parse_grade_levels

    return parse_grade_levels(text)


def card_metrics(res: dict[str, Any]) -> dict[str, Any]:
    """The compact form of an evaluation kept in a model card."""
    keys = ("n", "accuracy", "balanced_accuracy", "kappa", "ece", "balanced_grade")
    g = {name: {k: _compact(m[k]) for k in keys if k in m} for name, m in res["gradings"].items()}
    return {
        "evaluated_on": f"SPIDER split '{res['split']}' ({res['patients']} patients, "
        f"{res['graded_and_matched']} discs, levels {_levels_text(res)})",
        "pipeline": "built-in detector + this grader (openspine evaluate grading)",
        **({"command": res["command"]} if "command" in res else {}),
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


def update_card(
    folder: Path, res: dict[str, Any], compact: Callable[[dict[str, Any]], dict[str, Any]] | None = None
) -> None:
    """Store evaluation metrics (``compact(res)``, default :func:`card_metrics`) in a grader's card (the ONNX file
    and its checksum are unchanged)."""
    path = folder / "card.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    card["metrics"] = (compact or card_metrics)(res)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def record_val_evaluation(data_dir: Path, folder: Path, work: Path) -> dict[str, Any]:
    """Evaluate a freshly trained grader on val, keep the result in ``work/evaluation-val.json`` and its card.

    ``openspine train grader``'s last step; returns :func:`evaluate`'s result.
    """
    res = evaluate(data_dir, "val", folder)
    (work / "evaluation-val.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    update_card(folder, res)
    log.info("evaluation on val:\n%s", format_report(res))
    return res


def cli_main(argv: Sequence[str], quiet: bool = False) -> int:
    """``openspine evaluate grading``: returns 0, or 1 when a scan failed."""
    args = build_parser().parse_args(list(argv))
    from tqdm import tqdm

    def bar(x: Iterable[Any]) -> Iterable[Any]:
        return tqdm(x, desc="grading", unit="scan", disable=quiet, file=sys.stderr)

    if args.t1 and args.detector is not None:
        raise ConfigError("--detector is not used with --t1 yet (its pairs come from the built-in detector)")
    if args.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be 0 (no intervals) or more, got {args.bootstrap}")
    if args.out is not None:
        from ..writers import check_output_file

        check_output_file(args.out)
    if args.t1:
        res = evaluate_t1(
            args.data,
            args.split,
            args.grader,
            args.paired_grader,
            parse_levels(args.levels),
            args.bootstrap,
            args.seed,
            bar,
        )
    else:
        if args.paired_grader is not None:
            raise ConfigError("--paired-grader needs --t1")
        res = evaluate(
            args.data, args.split, args.grader, parse_levels(args.levels), args.bootstrap, args.seed, bar, args.detector
        )
    if args.out is not None:
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write '{args.out}': {exc}") from exc
    if args.update_card:
        from ..grading.model import load_grader

        res["command"] = "openspine evaluate grading " + " ".join(argv)  # the card says how to measure it again

        if args.t1:
            update_card(Path(res["paired_grader"]["folder"]), res, card_metrics_t1)
        else:
            update_card(load_grader(args.grader).folder, res)
    if not quiet:
        print(format_report_t1(res) if args.t1 else format_report(res))
        if args.out is not None:
            print(f"\nwritten: {args.out}")
    return 1 if res["failed_scans"] else 0
