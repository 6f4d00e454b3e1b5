"""Fine-tune a grader on a user's labelled discs (PyTorch; imported only by ``openspine finetune``).

1. read the labels (:mod:`.labels`), find each scan's discs with the built-in detector (cached);
2. rebuild the base grader in PyTorch from its folder (card + ``weights.npz``);
3. add or re-initialise the heads named in the labels file; with a frozen backbone (default) keep every other
   head of the base model, with an unfrozen one drop them (the features they read change);
4. train, checking afterwards – when frozen – that every weight except the trained heads equals the base model's;
5. calibrate the trained heads on the validation scans (temperature), measure them there, and write a model
   folder (ONNX + weights + card) that ``openspine analyze --grader DIR`` uses.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._logging import get_logger
from ..errors import ConfigError, ModelError
from ..grading.grade import MIN_VALIDATION_DISCS, MIN_VALIDATION_PATIENTS, thin_validation, unvalidated_heads
from ..grading.heads import HeadSpec, is_int
from ..grading.model import load_grader
from ..levels import DiscLevel, Grading, grading_key
from ..models import sha256_of
from ..scan import SagittalView
from ..training import grader_network as engine
from ..training.datasets.discs import (
    DetectionCache,
    DiscSample,
    build_samples,
    detector_id,
    load_view,
    locate_discs,
    view_fingerprint,
)
from ..training.grader import calibrate, write_model_folder
from ..training.metrics import TEMPERATURE_BOUNDS, Collected, head_metrics
from .labels import LabelTable
from .options import FinetuneOptions, FinetuneResult

log = get_logger("finetune")


def rebuild_base(base: str | os.PathLike[str] | None) -> tuple[engine.DiscNet, Any, Path]:
    """The base grader as a PyTorch network (weights from its ``weights.npz``, checked against the card)."""
    model = load_grader(base)
    card = model.loaded.card.data
    if card.get("architecture", {}).get("type") != engine.ARCHITECTURE:
        raise ModelError(
            f"grader '{model.name}' has architecture {card.get('architecture', {}).get('type')!r}; fine-tuning "
            f"needs a '{engine.ARCHITECTURE}' model"
        )
    w = card.get("weights", {})
    wpath = model.folder / str(w.get("file", "weights.npz"))
    if not wpath.is_file():
        raise ModelError(f"grader '{model.name}' has no training weights ({wpath}); it cannot be fine-tuned")
    if w.get("sha256") and sha256_of(wpath) != w["sha256"]:
        raise ModelError(f"'{wpath}' does not match the sha256 in its card; the file is damaged or was replaced")
    cfg = engine.NetConfig.from_dict(card["architecture"]["config"])
    net = engine.DiscNet(cfg, model.crop, model.heads)
    engine.load_weights(net, wpath)
    return net, model, wpath


def scan_sequence(view: Any) -> str | None:
    """A training scan's sequence as the analysis reads it: the header's word checked against the image recogniser,
    else the recogniser's sure call (the spinal-fluid check of the analysis needs a detection and is left out)."""
    from .. import scope
    from ..vocabulary import SEQUENCES

    hint = view.scan.source.sequence_hint
    header = (hint if hint in SEQUENCES else "other") if hint else None
    image = None
    try:
        from ..recognition import recognise

        image = recognise(view).sequence_probabilities
    except (ImportError, ModelError) as exc:
        log.debug("no image recogniser for the training scans' sequence: %s", exc)
    seq = scope.check_named_sequence(scope.decide_sequence(None, header, image), image, None)
    value = seq.get("value")
    return str(value) if value is not None else None


def _ordered_levels(names: set[str]) -> list[str]:
    return [lv.value for lv in DiscLevel if lv.value in names]


_HEAD_SCOPE_KEYS = ("sequences", "levels", "max_pixel_spacing_mm")  # what one head of a grader's card may bound
PIXEL_MARGIN = 1.25  # a head answers for pixels up to this factor coarser than the coarsest it was trained on


def derive_scope(
    base_card: dict[str, Any],
    kept: Sequence[HeadSpec],
    trained: Sequence[HeadSpec],
    train_s: Sequence[DiscSample],
    sequences: dict[str, str | None],
    labels_name: str,
    validated: Mapping[str, tuple[set[str], set[str]]] | None = None,
) -> dict[str, Any]:
    """The new card's scope: per head (``scope.heads``) the sequences and levels it may answer, the union on top.

    A trained head answers on the sequences of the scans it was trained on, at the levels that carried its labels
    and for in-plane pixels up to ``PIXEL_MARGIN`` times the coarsest of those scans' (the built-in grader's bound,
    1.25 mm, is SPIDER's coarsest 1.0 mm so widened); a kept base head keeps the base model's scope (its weights are
    the base's). Where the model was validated (``validated``: per trained head, the sequences and levels of the
    validation discs in its figures), a head answers only where it was also measured: trained on one T1 scan beside
    T2 ones but validated on T2 alone, it does not answer on T1, and a sequence or level left out is named in its
    scope's ``not_validated``. Without validation (``None``: --no-validation) the training scope stands, and the
    analysis flags every grade of such a head ``grader_not_validated``."""
    base = base_card.get("scope") or {}
    base_heads = base.get("heads") or {}
    per_head: dict[str, dict[str, Any]] = {}
    for h in kept:
        own = base_heads.get(h.name, base)
        per_head[h.name] = {k: own[k] for k in _HEAD_SCOPE_KEYS if own.get(k) is not None}
    seen = sorted({q for c, q in sequences.items() if q is not None and c in {s.case for s in train_s}})
    for h in trained:
        cases = {s.case for s in train_s if h.name in s.labels}
        levels = _ordered_levels({s.level.value for s in train_s if h.name in s.labels})
        seqs = sorted({q for c in cases if (q := sequences.get(c)) is not None})
        trained_seqs = seqs  # the basis counts every training scan, validated sequence or not
        dropped: list[str] = []
        unknown_validation = False
        if validated is not None:
            val_seqs, val_levels = validated.get(h.name, (set(), set()))
            if val_seqs:
                dropped += [q for q in seqs if q not in val_seqs]
                seqs = [q for q in seqs if q in val_seqs]
            elif val_levels and seqs:  # validated on scans of unknown sequence only: the training sequences stand
                unknown_validation = True
                log.warning(
                    "%s: its validation scans have no clear sequence, so validation did not check the sequences it "
                    "answers on (%s)",
                    h.name,
                    "/".join(seqs),
                )
            dropped += [lv for lv in levels if lv not in val_levels]
            levels = [lv for lv in levels if lv in val_levels]
            if not levels:
                log.warning(
                    "%s: no validation disc lies where it was trained (sequence and level): it answers nowhere; "
                    "label validation discs at its levels",
                    h.name,
                )
            elif dropped:
                log.warning(
                    "%s: trained on, but not validated on, %s: it does not answer there (label validation discs "
                    "there to measure it)",
                    h.name,
                    ", ".join(dropped),
                )
        # the base grader's rule: up to a quarter coarser than the coarsest training pixel, of the scans of the
        # sequences it answers on (coarser T1 slices beside T2 ones had widened a T2-only head's bound; user test)
        answered = [s for s in train_s if h.name in s.labels and (not seqs or sequences.get(s.case) in seqs)]
        coarsest = max(float(max(s.spacing[:2])) for s in answered or [s for s in train_s if h.name in s.labels])
        entry: dict[str, Any] = {"levels": levels, "max_pixel_spacing_mm": round(coarsest * PIXEL_MARGIN, 3)}
        if seqs:  # no known sequence (no recogniser, unclear scans): the head is not restricted by sequence
            entry["sequences"] = seqs
        if dropped:
            entry["not_validated"] = dropped
        if unknown_validation:
            entry["validation_sequence_unknown"] = True
        by_seq = [f"{sum(sequences.get(c) == q for c in cases)} {q}" for q in trained_seqs]
        unknown = sum(sequences.get(c) is None for c in cases)
        counts = ", ".join(by_seq + ([f"{unknown} sequence unknown"] if unknown else []))
        entry["basis"] = f"fine-tuned on {len(cases)} scans ({counts}) of {labels_name}" + (
            "; not validated (--no-validation)"
            if validated is None
            else f"; not validated on {', '.join(dropped)}, where it does not answer"
            if dropped
            else ""
        )
        per_head[h.name] = entry
    # the pixel bound is per head (above): the base's bound is not the trained heads'
    out: dict[str, Any] = {k: v for k, v in base.items() if k not in ("heads", "basis", *_HEAD_SCOPE_KEYS)}
    for key in ("sequences", "levels"):
        if all(key in e for e in per_head.values()):  # one head without the restriction lifts the union's
            union = {x for e in per_head.values() for x in e[key]}
            out[key] = sorted(union) if key == "sequences" else _ordered_levels(union)
    kept_basis = _kept_basis(base_card, kept)
    out["basis"] = (
        f"{kept_basis}fine-tuned heads: {', '.join(h.name for h in trained)} on {'/'.join(seen) or '?'} scans"
    )
    out["heads"] = per_head
    return out


def _kept_basis(base_card: Mapping[str, Any], kept: Sequence[HeadSpec]) -> str:
    """The kept heads' part of the new card's basis: the base model's, and where its card does not vouch for their
    validation, why (an old card's basis said "trained and validated" though its metrics were empty)."""
    basis = (base_card.get("scope") or {}).get("basis")
    if not kept or not basis:
        return ""
    why = _kept_not_validated(base_card, kept)
    if not why:
        return f"kept base heads: {basis}; "
    return f"kept base heads: {basis} (but {'; '.join(f'{h} was {w}' for h, w in why.items())} in the base model); "


def _kept_not_validated(base_card: Mapping[str, Any], kept: Sequence[HeadSpec]) -> dict[str, str]:
    """The kept base heads whose validation the base model's card does not vouch for, and why: the analysis reads
    the fine-tuned card alone, so it carries the verdict."""
    every, per_head = unvalidated_heads(base_card)
    return {h.name: why for h in kept if (why := per_head.get(h.name, every)) is not None}


def _say_sequences(sequences: dict[str, str | None], train_s: Sequence[DiscSample], base_card: dict[str, Any]) -> None:
    """Log the training scans' sequences; warn where they are unknown or not what the base model was trained on."""
    train_cases = {s.case for s in train_s}
    counts: dict[str, int] = {}
    for c in train_cases:
        q = sequences.get(c) or "unknown"
        counts[q] = counts.get(q, 0) + 1
    log.info("training scans by sequence: %s", ", ".join(f"{n} {q}" for q, n in sorted(counts.items())))
    if counts.get("unknown"):
        log.warning(
            "%d training scans have no clear sequence (header or image); the new heads' scope lists only the others",
            counts["unknown"],
        )
    base_seqs = set((base_card.get("scope") or {}).get("sequences") or ())
    other = sorted(q for q in counts if q != "unknown" and base_seqs and q not in base_seqs)
    if other:
        log.warning(
            "%s of the %d training scans are %s, which the base model was not trained on (%s): the new heads answer "
            "on the sequences they were trained and validated on, the kept base heads on %s only",
            " and ".join(str(counts[q]) for q in other),
            len(train_cases),
            "/".join(other),
            "/".join(sorted(base_seqs)),
            "/".join(sorted(base_seqs)),
        )


# a temperature that ends on a bound of fit_temperature's search (TEMPERATURE_BOUNDS) did not settle (discs of one
# class drive it to the top one: every probability flattened); within this factor of a bound counts as on it
AT_BOUND = 1.01


def _temperature_at_bound(t: float) -> bool:
    low, high = TEMPERATURE_BOUNDS
    return t <= low * AT_BOUND or t >= high / AT_BOUND


def _calibration_if_it_helps(head: HeadSpec, report: dict[str, Any], one_class: bool = False) -> HeadSpec:
    """Keep a fitted temperature only where it lowers the cross-fitted ECE (the in-sample one always looks better),
    did not end on its search bound (a fit that did not settle) and was fitted on validation discs of more than one
    class (``one_class``: on one, any temperature that makes that class surer looks better; user test: 11.6 applied)."""
    before, after = report.get("ece_before"), report.get("ece_after_2fold_cv")
    applied = before is not None and after is not None and after < before
    fitted = report.get("temperature")
    if applied and one_class:
        applied = False
        report["not_applied_because"] = (
            "its validation discs hold one class only: a temperature fitted there is no calibration"
        )
        log.info("%s: temperature not applied: %s", head.name, report["not_applied_because"])
    elif applied and isinstance(fitted, (int, float)) and _temperature_at_bound(float(fitted)):
        applied = False
        report["not_applied_because"] = (
            f"the fitted temperature {fitted:g} lies on its search bound {TEMPERATURE_BOUNDS}: the fit did not "
            "settle (validation discs of one class drive it there)"
        )
        log.info("%s: temperature not applied: %s", head.name, report["not_applied_because"])
    if report:
        report["applied"] = applied
        report["decided_by"] = "2-fold cross-fitted ECE by patient (fit on one half, measured on the other)"
    if not applied and head.temperature != 1.0:
        if "not_applied_because" not in report:
            log.info("%s: temperature not applied (cross-fitted ECE %s, uncalibrated %s)", head.name, after, before)
        return replace(head, temperature=1.0)
    return head


def _cross_fitted_ece(m: dict[str, Any], report: dict[str, Any]) -> None:
    """The card's ECE of a trained head: the uncalibrated one and, where a temperature is applied, its
    cross-fitted figure (the in-sample one is measured on the discs the temperature was fitted on)."""
    if "ece" not in m:
        return
    applied = bool(report.get("applied"))
    m["ece"]["calibrated"] = report.get("ece_after_2fold_cv") if applied else m["ece"]["uncalibrated"]
    m["ece"]["calibration_applied"] = applied
    m["ece"]["measured"] = "2-fold cross-fitted by patient" if applied else "no temperature applied"
    if report.get("not_applied_because"):
        m["ece"]["not_applied_because"] = report["not_applied_because"]


def _say_split_groups(split: dict[str, str], groups: dict[str, str]) -> str | None:
    """Warn where one patient has scans on both sides of a fixed split (its val figures are then not held out);
    returns the warning (None: no such patient), which the card keeps among its metrics' caveats."""
    sides: dict[str, set[str]] = {}
    for scan, side in split.items():
        sides.setdefault(groups.get(scan, scan), set()).add(side)
    both = sorted(g for g, v in sides.items() if len(v) > 1)
    if not both:
        return None
    said = f"{len(both)} patients have scans in both 'train' and 'val' (e.g. {both[0]}): the validation figures are "
    log.warning("%s", said + "optimistic")
    return said + "optimistic"


def _base_fingerprints(base_card: Mapping[str, Any]) -> list[str] | None:
    """The content fingerprints of the base model's training scans its card lists (None: it lists none)."""
    listed = ((base_card.get("training_data") or {}).get("patient_scans") or {}).get("fingerprints")
    return [str(f) for f in listed] if isinstance(listed, list) else None


def _warn_base_overlap(base_card: dict[str, Any], val_views: Mapping[str, SagittalView]) -> str | None:
    """Warn when validation scans are scans of the base model's training patients (its card lists their content
    fingerprints): the base model has learnt them, so the validation figures are optimistic. Returns the warning
    (None: no overlap, or nothing to compare with), which the card keeps among its metrics' caveats: it had been
    said on the console only, while the card travelled with figures far above those on unseen patients."""
    listed = _base_fingerprints(base_card)
    if listed is None or not val_views:
        return None
    known = set(listed)
    seen = sorted(case for case, view in val_views.items() if view_fingerprint(view) in known)
    if not seen:
        return None
    said = (
        f"{len(seen)} of {len(val_views)} validation scans are scans of the base model's training patients (e.g. "
        f"{seen[0]}): the validation figures are optimistic; validate on other patients"
    )
    log.warning("%s", said)
    return said


# a class inferred from the labels with fewer training rows than this is said out loud: one alone is what a typo
# looks like (a single 2 among 0/1 had made a three-class ordinal head without a word; user test), but real gradings
# have such classes too (SPIDER's Modic 1 and 3: one patient and two), so it is a warning and a caveat, not a refusal
MIN_CLASS_EXAMPLES = 2


def rare_class_caveats(
    table: LabelTable, split: Mapping[str, str], known: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """Warn of each inferred class that fewer than :data:`MIN_CLASS_EXAMPLES` training rows hold, naming the file,
    line and value and how to declare the classes, and return the warnings (kept among the card's caveats). Declared
    classes (--classes) are the user's own list; the classes ``known`` to a head that starts from the base model's
    (a built-in grading's Pfirrmann 5, seen in validation rows only) are learnt already."""
    known = known or {}
    said: list[str] = []
    for g in table.gradings:
        if g in table.declared:
            continue
        trained = Counter(
            grades[g]
            for scan, by in table.labels.items()
            if split.get(scan) == "train"
            for grades in by.values()
            if g in grades
        )
        for c in table.classes[g]:
            if trained[c] >= MIN_CLASS_EXAMPLES or c in known.get(g, ()):
                continue
            line = min(n for (scan, lv), n in table.lines.items() if table.labels[scan][lv].get(g) == c)
            where = "in no training row" if not trained[c] else f"in only {trained[c]} training row"
            every = ",".join(table.classes[g])
            said.append(
                f"{table.path.name}:{line}: {g} = {c!r} is {where}, so the head can hardly learn it: if it is a typo, "
                f"correct it; declare the classes (--classes {g}={every}) to have other values refused as they are read"
            )
            log.warning("%s", said[-1])
    return said


def _one_class_caveat(name: str, m: dict[str, Any]) -> str | None:
    """Where a head's validation discs hold one class only: its balanced accuracy is that class's recall and kappa
    is undefined, so kappa is reported as None (it had read 0.00 [0.00, 0.00]). Returns the caveat (None: more
    classes)."""
    present = [c for c, k in zip(m.get("classes") or (), m.get("support") or ()) if k]
    if len(present) != 1:
        return None
    for block in (m, m.get("balanced_grade") or {}):
        if "kappa" in block:
            block["kappa"] = {**block["kappa"], "value": None, "ci95": [None, None], "undefined": "one class"}
    said = (
        f"{name}: its validation discs hold class {present[0]} only: its balanced accuracy is that class's recall "
        "and kappa is undefined; label validation discs of every class"
    )
    log.warning("%s", said)
    return said


def _thin_caveat(name: str, m: Mapping[str, Any]) -> str | None:
    """Where a head was measured on fewer than MIN_VALIDATION_PATIENTS patients or MIN_VALIDATION_DISCS discs: its
    figures and their patient-bootstrap intervals say little (one patient's interval is a single point)."""
    why = thin_validation(m.get("n"), m.get("patients"), None) if m.get("n") else None
    if why is None:
        return None
    said = (
        f"{name}: {why} (fewer than {MIN_VALIDATION_PATIENTS} patients or {MIN_VALIDATION_DISCS} discs): its "
        "figures say little, and the analysis flags its grades grader_not_validated"
    )
    log.warning("%s", said)
    return said


def _missed_outside_detector(missed: Sequence[str]) -> tuple[int, str | None]:
    """How many of the labelled discs the detector did not find lie at a level it never labels (C4-C5 on a lumbar
    scan had read as "not found by the detector"), and the levels it labels ("T11 … S1"; None: not known)."""
    from ..models import builtin_model_dir, read_card

    try:
        labelled = [str(v) for v in (read_card(builtin_model_dir("detector")).data.get("scope") or {})["levels"]]
    except (ModelError, KeyError, TypeError):
        return 0, None
    outside = sum(any(v not in labelled for v in m.rsplit(" ", 1)[-1].split("-")) for m in missed)
    return outside, f"{labelled[0]} … {labelled[-1]}"


def _answers_on(
    head: str, train_s: Sequence[DiscSample], sequences: Mapping[str, str | None]
) -> Callable[[DiscSample], bool]:
    """Whether a trained head answers on a validation disc, by the scope :func:`derive_scope` gives it: a scan of a
    sequence it was trained on (any, where none of its training scans had a known one) at a level that carried its
    labels. Validation discs outside it (T1 slices for a head trained on T2) had been counted in its figures."""
    mine = [s for s in train_s if head in s.labels]
    seqs = {q for c in {s.case for s in mine} if (q := sequences.get(c)) is not None}
    levels = {s.level for s in mine}

    def answers(s: DiscSample) -> bool:
        q = sequences.get(s.case)
        return s.level in levels and (not seqs or q is None or q in seqs)

    return answers


def _new_grading_description(labels_file: str, classes: Sequence[str]) -> str:
    """What a new head's grades mean, as the report's legend shows it: text classes are reported by their number
    (0, 1, …), so the names go here (they had reached no output; the card's classes alone kept them)."""
    text = f"fine-tuned from {labels_file}"
    if all(is_int(c) for c in classes):
        return text
    return text + "; grades " + ", ".join(f"{i} = {name}" for i, name in enumerate(classes))


def split_scans(table: LabelTable, fraction: float, seed: int) -> dict[str, str]:
    """train/val per scan: the labels file's split column, else a seeded hash choice of ``fraction`` of the patients
    (:meth:`LabelTable.groups`), every scan of a patient on the same side."""
    if table.splits:
        return dict(table.splits)
    if not 0 < fraction < 1:  # 0 (allowed by the options, for --no-validation) holds out no patient
        raise ConfigError(
            f"--val-fraction {fraction:g} holds out no patient: give a fraction above 0 and below 1 (e.g. 0.2), a "
            "split column in the labels, or --no-validation to write a model that is not validated"
        )
    groups = table.groups()
    patients = sorted(set(groups.values()))
    # by patient: a patient's other scans (T1 beside T2, a second visit) must not sit on the other side
    order = sorted(patients, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    n_val = max(1, round(fraction * len(patients))) if len(patients) > 1 else 0
    side = {p: ("val" if i < n_val else "train") for i, p in enumerate(order)}
    return {s: side[groups[s]] for s in table.labels}


def _train_heads_on_embeddings(
    net: engine.DiscNet,
    samples: Sequence[DiscSample],
    heads: Sequence[HeadSpec],
    opts: FinetuneOptions,
    progress: Callable[..., Any] | None,
) -> list[float]:
    """Frozen backbone: embed each disc once clean and ``augment_copies`` times augmented, then fit the heads."""
    rng = np.random.default_rng(opts.seed)
    torch.manual_seed(opts.seed)
    embs = [engine.embed(net, samples)]
    copies = range(opts.augment_copies)
    for _ in progress(copies, desc="embedding", unit="pass") if progress else copies:
        embs.append(engine.embed(net, samples, rng))
    x = torch.cat(embs)
    reps = len(embs)
    targets = {h.name: torch.tensor([s.labels.get(h.name, -1) for s in samples] * reps) for h in heads}
    params = [p for h in heads for p in net.heads[h.name].parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    lr = opts.lr if opts.lr is not None else 1e-2
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-3)
    cfg = engine.TrainConfig(class_weight_power=opts.class_weight_power, label_smoothing=0.05)
    weights = {h.name: engine.class_weights(samples, h, opts.class_weight_power) for h in heads}
    n = len(x)
    losses = []
    epochs = range(opts.epochs)
    bar = progress(epochs, desc="training heads", unit="epoch") if progress else epochs
    drop = nn.Dropout(net.config.dropout)
    for _ in bar:
        order = torch.from_numpy(rng.permutation(n))
        run = 0.0
        for b in range(0, n, opts.batch_size):
            idx = order[b : b + opts.batch_size]
            e = drop(x[idx])
            logits = {h.name: net.heads[h.name](e) for h in heads}
            loss = engine._loss(logits, {k: v[idx] for k, v in targets.items()}, heads, weights, cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            run += float(loss.detach()) * len(idx)
        losses.append(run / n)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    for p in net.parameters():
        p.requires_grad_(True)
    net.eval()
    return losses


def finetune(
    table: LabelTable,
    out: str | os.PathLike[str],
    opts: FinetuneOptions,
    progress: Callable[..., Any] | None = None,
    work: str | os.PathLike[str] | None = None,
    validate: bool = True,
) -> FinetuneResult:
    """Fine-tune a grader on ``table`` and write the new model folder to ``out``.

    ``validate=False`` writes a model although no disc is held out (its card says "not validated"); otherwise a run
    without a validation disc is refused before training."""
    from .._optional import TRAIN_MODULES, require_optional

    require_optional(TRAIN_MODULES, "fine-tuning")  # the ONNX export at the end needs onnx and onnxscript
    threads = torch.get_num_threads()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    try:
        return _finetune(table, out, opts, progress, work, validate)
    finally:
        torch.set_num_threads(threads)


def _finetune(
    table: LabelTable,
    out: str | os.PathLike[str],
    opts: FinetuneOptions,
    progress: Callable[..., Any] | None,
    work: str | os.PathLike[str] | None,
    validate: bool = True,
) -> FinetuneResult:
    from ..grading.model import softmax
    from ..grading.stacker import Stacker

    t0 = time.perf_counter()
    out = Path(out)
    work_dir = Path(work) if work is not None else out / "work"
    net, base, base_weights = rebuild_base(opts.base)
    base_heads = {h.name: h for h in base.heads}

    # heads: one per grading column; start from the base head when it has the same classes
    trained: list[HeadSpec] = []
    reinit: list[str] = []
    for g in table.gradings:
        cls = table.classes[g]
        old = base_heads.get(g)
        if old is not None and old.classes != cls and isinstance(grading_key(g), Grading):
            # the same name with other classes would change what the grading means in every result.json
            subset = set(cls) <= set(old.classes)  # values that are built-in classes, not all of them used
            fix = f"declare all of them: --classes {g}={','.join(old.classes)}" if subset else "recode the values"
            raise ConfigError(
                f"'{g}' in '{table.path.name}' has classes {list(cls)}, the built-in {g} grading {list(old.classes)}; "
                f"{fix}, or name the column otherwise (e.g. {g}_own) for a grading of your own"
            )
        ordinal = all(c.lstrip("-").isdigit() for c in cls) and len(cls) > 2
        if old is not None and old.classes == cls and not opts.fresh_heads:
            trained.append(replace(old, temperature=1.0))
        else:
            trained.append(
                HeadSpec(
                    g,
                    cls,
                    ordinal=old.ordinal if old and old.classes == cls else ordinal,
                    description=_new_grading_description(table.path.name, cls),
                )
            )
            reinit.append(g)
    trained_names = {h.name for h in trained}
    if opts.freeze_backbone:
        kept = [h for h in base.heads if h.name not in trained_names]
    else:
        kept = []
        dropped = [h.name for h in base.heads if h.name not in trained_names]
        if dropped:
            log.warning("backbone unfrozen: the base heads %s are dropped (their features change)", dropped)
    all_heads = [*kept, *trained]
    new_net = engine.DiscNet(net.config, net.spec, all_heads)
    new_net.backbone.load_state_dict(net.backbone.state_dict())
    for h in all_heads:
        if h.name in base_heads and h.name not in reinit:
            new_net.heads[h.name].load_state_dict(net.heads[h.name].state_dict())
    if reinit:
        torch.manual_seed(opts.seed)
        for name in reinit:
            layer = new_net.heads[name]
            assert isinstance(layer, nn.Linear)
            layer.reset_parameters()
    net = new_net

    # data
    groups = table.groups()
    if validate or table.splits:
        split = split_scans(table, opts.val_fraction, opts.seed)
    else:  # --no-validation without a split column: every scan trains
        split = dict.fromkeys(table.labels, "train")
    starting = {h.name: h.classes for h in trained if h.name not in reinit}  # heads that start from the base's
    rare = rare_class_caveats(table, split, starting)
    cache = DetectionCache.open(work_dir / "detections.json", detector_id())
    bar = (lambda x: progress(x, desc="detecting discs", unit="scan")) if progress else (lambda x: x)
    views, geoms, failed = locate_discs(((s, table.scan_paths[s]) for s in table.labels), cache, load_view, bar)
    samples, missed = build_samples(views, geoms, table.labels, table.classes)
    sequences = {case: scan_sequence(views[case]) for case in sorted({s.case for s in samples})}
    # on the scans that are used: a missing scan's patient on the other side had been reported as a leak
    used = {s.case for s in samples}
    caveats = [c for c in (_say_split_groups({k: v for k, v in split.items() if k in used}, groups),) if c] + rare
    train_s = [s for s in samples if split.get(s.case) == "train"]
    val_s = [s for s in samples if split.get(s.case) == "val"]
    outside, detector_levels = _missed_outside_detector(missed)
    log.info(
        "fine-tuning on %d discs (%d scans), validating on %d discs (%d scans); %d labelled discs not "
        "found by the detector (%d at levels outside those it labels, %s), %d scans failed",
        len(train_s),
        len({s.case for s in train_s}),
        len(val_s),
        len({s.case for s in val_s}),
        len(missed),
        outside,
        detector_levels or "unknown",
        len(failed),
    )
    unread = {k: why for k, why in failed.items() if Path(table.scan_paths[k]).exists()}  # the missing: said before
    if unread:
        log.warning(
            "%d of %d labelled scans gave no disc and are left out (e.g. %s: %s)",
            len(unread),
            len(table.labels),
            *next(iter(unread.items())),
        )
    if not train_s:
        raise ConfigError("no training disc: the detector found none of the labelled discs of the training scans")
    if not val_s and validate:
        raise ConfigError(
            "no validation disc: no labelled disc of a 'val' scan was found; mark other scans 'val', or give "
            "--no-validation to write a model that is not validated"
        )
    overlap = _warn_base_overlap(base.loaded.card.data, {s.case: views[s.case] for s in val_s})
    caveats += [overlap] if overlap else []
    _say_sequences(sequences, train_s, base.loaded.card.data)

    if opts.freeze_backbone:
        losses = _train_heads_on_embeddings(net, train_s, trained, opts, progress)
        changed = engine.compare_to_base(net, base_weights, list(trained_names))
        if changed:
            raise ModelError(f"frozen backbone changed during fine-tuning: {changed[:5]}")
        n_checked = len([k for k in net.state_dict() if not any(k.startswith(f"heads.{h}.") for h in trained_names)])
        frozen_check = f"passed: {n_checked} backbone and kept-head tensors identical to the base model"
    else:
        cfg = engine.TrainConfig(
            epochs=opts.epochs,
            batch_size=opts.batch_size,
            lr=opts.lr if opts.lr is not None else 1e-3,
            class_weight_power=opts.class_weight_power,
            seed=opts.seed,
            warmup_epochs=1,
        )
        losses = engine.train(net, train_s, trained, cfg, progress=progress)
        frozen_check = "not applicable: backbone trained"
    log.info("final training loss %.4f; frozen check: %s", losses[-1] if losses else float("nan"), frozen_check)

    # calibrate and measure on val
    metrics: dict[str, Any] = {}
    calib: dict[str, Any] = {}
    validated: dict[str, tuple[set[str], set[str]]] = {}  # per trained head: the sequences and levels measured
    if val_s:
        logits = engine.predict_logits(net, val_s)
        # folds by patient: a temperature fitted on one of a patient's scans must not be measured on another
        by_patient = [replace(s, case=groups[s.case]) for s in val_s]
        cal_heads, calib = calibrate(trained, logits, by_patient, opts.seed)
        one_class = {h.name: len({s.labels[h.name] for s in val_s if h.name in s.labels}) < 2 for h in cal_heads}
        by_name = {h.name: _calibration_if_it_helps(h, calib.get(h.name, {}), one_class[h.name]) for h in cal_heads}
        trained = [by_name[h.name] for h in trained]
        for h in trained:
            c = Collected(h)
            answers = _answers_on(h.name, train_s, sequences)
            outside = 0
            for i, s in enumerate(val_s):
                if h.name in s.labels:
                    if not answers(s):  # the analysis withholds this head's grade there: no figure either
                        outside += 1
                        continue
                    p = softmax(logits[h.name][i][None], h.temperature)[0]
                    seqs, levels = validated.setdefault(h.name, (set(), set()))
                    if (q := sequences.get(s.case)) is not None:
                        seqs.add(q)
                    levels.add(s.level.value)
                    c.y_true.append(s.labels[h.name])
                    c.y_pred.append(int(np.argmax(p)))
                    c.probs.append(p.tolist())
                    c.patients.append(groups[s.case])
            metrics[h.name] = head_metrics(c, n_boot=500, seed=opts.seed)
            _cross_fitted_ece(metrics[h.name], calib.get(h.name, {}))
            said = (_one_class_caveat(h.name, metrics[h.name]), _thin_caveat(h.name, metrics[h.name]))
            caveats += [c for c in said if c]
            if outside:
                metrics[h.name]["left_out_outside_scope"] = outside
                log.warning(
                    "%s: %d validation disc(s) outside what the head was trained on (sequence or level) are not "
                    "in its figures: the analysis withholds its grade there too",
                    h.name,
                    outside,
                )
    else:
        log.warning("no validation disc (--no-validation): the model is written NOT VALIDATED and not calibrated")
    final_heads = [*kept, *trained]
    # a kept head's logits are the base model's (frozen backbone and head), so its stacker still applies; a
    # trained head's logits are new, and it has none
    stacker = None
    if base.stacker is not None:
        stacker = Stacker(heads={h.name: base.stacker.heads[h.name] for h in kept if h.name in base.stacker.heads})
    minutes = (time.perf_counter() - t0) / 60
    extra = {
        "base_model": base.info.to_dict(),
        "training_data": {
            "labels": str(table.path),
            "gradings": {g: list(table.classes[g]) for g in table.gradings},
            "scans": {"train": len({s.case for s in train_s}), "val": len({s.case for s in val_s})},
            "patients": {"train": len({groups[s.case] for s in train_s}), "val": len({groups[s.case] for s in val_s})},
            "patient_of_scan": "the labels' 'patient' column"
            if table.patients
            else "the first folder of the scan path (a scan directly under --scans is its own patient)",
            "discs": {"train": len(train_s), "val": len(val_s)},
            "discs_missed_by_detector": len(missed),
            "scans_failed": failed,
            "disc_positions": "built-in detector (" + cache.detector + ")",
            # the base model's training scans and these: a model fine-tuned from this one warns on them too
            "patient_scans": {
                "what": "content fingerprints (openspine.training.datasets.discs.view_fingerprint) of the base "
                "model's training scans and of this fine-tuning's: openspine finetune warns when validation scans "
                "are among them",
                "fingerprints": sorted(
                    set(_base_fingerprints(base.loaded.card.data) or ())
                    | {view_fingerprint(views[c]) for c in {s.case for s in train_s}}
                ),
            },
        },
        "finetuning": {
            "options": opts.to_dict(),
            "trained_heads": sorted(trained_names),
            "reinitialised_heads": reinit,
            "kept_base_heads": [h.name for h in kept],
            "kept_base_stackers": sorted(stacker.heads) if stacker is not None else [],
            "frozen_backbone_check": frozen_check,
            "final_loss": round(losses[-1], 4) if losses else None,
            "minutes_cpu": round(minutes, 2),
        },
        "calibration": calib,
        "metrics": {
            "evaluated_on": f"fine-tuning validation scans ({len({s.case for s in val_s})} scans of "
            f"{len({groups[s.case] for s in val_s})} patients, {len(val_s)} discs)",
            "gradings": {
                # support: the analysis tells a one-class validation by it (grading.grade.unvalidated_heads)
                k: {
                    m: v[m]
                    for m in ("n", "patients", "support", "accuracy", "balanced_accuracy", "kappa", "ece")
                    if m in v
                }
                for k, v in metrics.items()
            },
            "base_heads_note": "kept base heads carry the base model's metrics (see the base card)",
            "kept_heads_not_validated": _kept_not_validated(base.loaded.card.data, kept),
            # why the figures may be optimistic, as the run warned (the card travels without the console)
            "caveats": caveats,
        }
        if val_s
        else {
            "validated": False,
            "evaluated_on": None,
            "gradings": None,
            "note": "not validated: no disc was held out (--no-validation); the trained heads are not calibrated",
            "kept_heads_not_validated": _kept_not_validated(base.loaded.card.data, kept),
        },
        "intended_use": "research; not a medical device",
        # what each head may answer: the trained heads' sequences and levels are those they were trained on
        "scope": derive_scope(
            base.loaded.card.data, kept, trained, train_s, sequences, table.path.name, validated if val_s else None
        ),
        **opts.extra,
    }
    write_model_folder(out, net, final_heads, extra, opts.name, opts.version, stacker)
    (work_dir / "finetune-metrics.json").parent.mkdir(parents=True, exist_ok=True)
    (work_dir / "finetune-metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return FinetuneResult(
        out, trained, metrics, calib, len(train_s), len(val_s), missed, failed, frozen_check, tuple(caveats),
        missed_outside=outside, detector_levels=detector_levels,
    )  # fmt: skip
