"""Train the built-in disc grader on SPIDER: ``openspine train grader``.

Steps (seeded, CPU):

1. read the SPIDER train and val slices and their radiologists' gradings (shared data folder);
2. find every disc with the built-in detector (cached in ``WORK/detections.json``) – discs are never placed by hand,
   a graded disc the detector misses is left out and counted;
3. fit the stacker (:mod:`openspine.training.stacking`): train the network once per fold of the train patients
   (``--stack-folds``, default 5), and per head a logistic regression over its out-of-fold logits and measured disc
   features, kept only where it beats the network in that cross-validation;
   then train the grader network (:mod:`openspine.training.grader_network`) on all of ``train``, with augmentation;
4. fit one temperature per head on ``val`` (calibration) and report the expected calibration error before and
   after, also 2-fold cross-validated across val patients (the in-sample figure flatters);
5. export ONNX + ``weights.npz`` + ``card.json`` into ``OUT``;
6. evaluate the exported model with the full pipeline on ``val`` (``openspine evaluate grading``) and write those
   metrics into the card.

``--holdout N`` is for development: it keeps the last N train patients apart as the validation set instead of
``val`` (so choices can be made without looking at ``val``) and skips step 6.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._logging import get_logger, log_file
from .._optional import TRAIN_MODULES, import_optional, require_optional
from .._version import __version__
from ..errors import ConfigError

log = get_logger("training.grader")

_EPILOG = """examples:
  openspine train grader --data ../shared/data --out grader-model
  openspine train grader --data ../shared/data --out grader-model --epochs 40 --seed 1
  openspine train grader --data ../shared/data --out /tmp/dev --holdout 24   # develop without touching val

Reproduces the built-in model: same data, seed and options give the same weights on the same machine (CPU: the
network is trained 6 times, 5 for the stacker's cross-validation and once on all of train; 35 minutes on 2
idle cores; --stack-folds 0 trains once, without a stacker). The log and the detection cache go to WORK
(default OUT/work): WORK/train.log, WORK/detections.json, WORK/evaluation-val.json.
"""


# What the trained model may answer (see openspine.scope): the SPIDER training data's sequence and levels.
GRADER_SCOPE = {
    "sequences": ["T2"],
    "planes": ["sagittal"],
    "regions": ["thoracic", "lumbar"],
    "levels": ["T9-T10", "T10-T11", "T11-T12", "T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"],
    "basis": "trained and validated on SPIDER mid-sagittal lumbar T2 slices graded T9-T10 ... L5-S1",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="openspine train grader",
        description="Train the disc grader on the SPIDER train split, calibrate on val, export ONNX with a card.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder (index.csv)")
    p.add_argument("--out", type=Path, required=True, help="model folder to write (model.onnx, weights.npz, card.json)")
    p.add_argument("--work", type=Path, default=None, help="cache folder for detections (default: OUT/work)")
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
    p.add_argument("--version", default="1.0.0", help="model version written into the card")
    p.add_argument("--no-evaluate", action="store_true", help="skip the final evaluation on val")
    return p


def _split_holdout(patients: Sequence[str], n: int) -> set[str]:
    """A deterministic pseudo-random choice of ``n`` patients (by hash), for development validation."""
    order = sorted(patients, key=lambda p: hashlib.sha256(f"grader-holdout:{p}".encode()).hexdigest())
    return set(order[:n])


def calibrate(
    heads: Sequence[Any], logits: dict[str, np.ndarray], samples: Sequence[Any], seed: int = 0
) -> tuple[list[Any], dict[str, Any]]:
    """Fit a temperature per head on these samples; report ECE before / after (in-sample and 2-fold by patient)."""
    from dataclasses import replace

    from ..grading.model import softmax
    from .metrics import expected_calibration_error, fit_temperature, nll

    out_heads = []
    report: dict[str, Any] = {}
    cases = np.array([s.case for s in samples])
    uniq = np.unique(cases)
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(rng.permutation(uniq), np.arange(len(uniq)) % 2))
    folds = np.array([fold_of[c] for c in cases])
    for h in heads:
        m = np.array([h.name in s.labels for s in samples])
        y = np.array([s.labels.get(h.name, -1) for s in samples])[m]
        z = logits[h.name][m]
        if len(y) < 10:
            out_heads.append(h)
            report[h.name] = {"n": len(y), "note": "too few labels to calibrate; temperature 1"}
            continue
        t = fit_temperature(z, y)
        # 2-fold cross-validated ECE: fit T on one half of the patients, measure on the other
        cv = np.zeros_like(z, dtype=float)
        for f in (0, 1):
            tr, te = folds[m] != f, folds[m] == f
            tf = fit_temperature(z[tr], y[tr]) if tr.sum() >= 5 else 1.0
            cv[te] = softmax(z[te], tf)
        report[h.name] = {
            "n": len(y),
            "temperature": round(t, 4),
            "ece_before": round(expected_calibration_error(softmax(z), y), 4),
            "ece_after_in_sample": round(expected_calibration_error(softmax(z, t), y), 4),
            "ece_after_2fold_cv": round(expected_calibration_error(cv, y), 4),
            "nll_before": round(nll(z, y), 4),
            "nll_after": round(nll(z, y, t), 4),
        }
        out_heads.append(replace(h, temperature=t))
    return out_heads, report


def write_model_folder(
    out: Path,
    net: Any,
    heads: Sequence[Any],
    card_extra: dict[str, Any],
    name: str,
    version: str,
    stacker: Any = None,
) -> Path:
    """Export ONNX and weights and write the card; returns the folder."""
    from ..models import sha256_of
    from .grader_network import ARCHITECTURE, export_onnx, param_count, save_weights

    out.mkdir(parents=True, exist_ok=True)
    net.head_specs = list(heads)
    export_onnx(net, out / "model.onnx")
    save_weights(net, out / "weights.npz")
    card = {
        "name": name,
        "version": version,
        "file": "model.onnx",
        "sha256": sha256_of(out / "model.onnx"),
        "architecture": {
            "type": ARCHITECTURE,
            "config": net.config.to_dict(),
            "parameters": param_count(net),
            "framework": "PyTorch → ONNX (opset 17)",
        },
        "input": {
            "name": "crops",
            "shape": [None, 1, net.spec.height, net.spec.width],
            "dtype": "float32",
            "crop": net.spec.to_dict(),
            "normalisation": "divided by the median intensity of the two neighbouring vertebral bodies, clipped",
        },
        "outputs": {
            "heads": [h.to_dict() for h in heads],
            "embedding": "embedding",
            "logits": "logits_<head name>; probabilities = softmax(logits / temperature)",
            "slice_aggregation": "mean_logits",
            **({"stacker": stacker.to_dict()} if stacker is not None and stacker.heads else {}),
        },
        "weights": {"file": "weights.npz", "sha256": sha256_of(out / "weights.npz"), "format": "numpy npz state dict"},
        "openspine_version": __version__,
        **card_extra,
    }
    card.setdefault("metrics", {})
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return out


def cli_main(argv: Sequence[str], quiet: bool = False) -> int:
    """``openspine train grader``."""
    args = build_parser().parse_args(list(argv))
    # before any detection or training: the packages (the ONNX export at the end needs onnx and onnxscript),
    # the data and the output folder
    require_optional(TRAIN_MODULES, "openspine train grader")
    if not (Path(args.data) / "index.csv").is_file():
        raise ConfigError(f"--data '{args.data}' is not the shared data folder (no index.csv in it)")
    from ..writers import prepare_output_dir

    prepare_output_dir(args.out)
    torch = import_optional("torch", "training the grader")
    from tqdm import tqdm

    from ..grading.crop import CropSpec
    from ..grading.heads import BUILTIN_HEADS
    from . import grader_network as engine
    from . import stacking
    from .datasets.discs import DetectionCache, build_samples, detector_id, load_view, locate_discs
    from .datasets.spider import SPIDER_COLUMNS, read_spider

    if args.epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {args.epochs}")
    if args.stack_folds == 1 or args.stack_folds < 0:
        raise ConfigError(f"--stack-folds must be 0 (no stacker) or at least 2, got {args.stack_folds}")
    out: Path = args.out
    work: Path = args.work or out / "work"
    work.mkdir(parents=True, exist_ok=True)
    with log_file(work / "train.log"):
        torch.set_num_threads(args.threads)
        t0 = time.perf_counter()
        log.info("train grader: %s", json.dumps({k: str(v) for k, v in vars(args).items()}))
        cases = read_spider(args.data, ("train", "val"))
        train_ids = [c.patient for c in cases if c.split == "train"]
        if args.holdout:
            dev = _split_holdout(train_ids, args.holdout)
            split_of = {c.patient: ("val" if c.patient in dev else "train") for c in cases if c.split == "train"}
        else:
            split_of = {c.patient: c.split for c in cases}
        cache = DetectionCache.open(work / "detections.json", detector_id())

        def bar(x: Any) -> Any:
            return tqdm(x, desc="detecting discs", unit="scan", disable=quiet, file=sys.stderr)

        views, geoms, failed = locate_discs(
            ((c.patient, c.image) for c in cases if c.patient in split_of), cache, load_view, bar
        )
        for case, why in failed.items():
            log.warning("SPIDER %s: %s", case, why)
        classes = {h.name: h.classes for h in BUILTIN_HEADS}
        labels = {c.patient: c.labels for c in cases if c.patient in split_of}
        samples, missing = build_samples(views, geoms, labels, classes)
        n_labelled = sum(len(c.labels) for c in cases if c.patient in split_of)
        log.info("%d of %d graded discs found by the detector (%d missed)", len(samples), n_labelled, len(missing))
        train_s = [s for s in samples if split_of[s.case] == "train"]
        val_s = [s for s in samples if split_of[s.case] == "val"]
        log.info(
            "training discs: %d (%d patients); validation discs: %d (%d patients)",
            len(train_s),
            len({s.case for s in train_s}),
            len(val_s),
            len({s.case for s in val_s}),
        )

        heads = list(BUILTIN_HEADS)
        if args.heads:
            wanted = [h.strip() for h in args.heads.split(",") if h.strip()]
            unknown = [h for h in wanted if h not in SPIDER_COLUMNS]
            if unknown:
                raise ConfigError(f"--heads: unknown gradings {unknown}; built-in ones are {list(SPIDER_COLUMNS)}")
            heads = [h for h in BUILTIN_HEADS if h.name in wanted]
        cfg = engine.TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            class_weight_power=args.class_weight_power,
            seed=args.seed,
        )

        def train_net(discs: Sequence[Any], what: str) -> Any:
            torch.manual_seed(args.seed)
            net = engine.DiscNet(engine.NetConfig(), CropSpec(), heads)
            log.info(
                "network %s (%d parameters) on %d discs: %s",
                engine.ARCHITECTURE,
                engine.param_count(net),
                len(discs),
                what,
            )
            losses = engine.train(
                net,
                discs,
                heads,
                cfg,
                progress=None if quiet else tqdm,
                on_epoch=lambda e, loss: log.info("epoch %d/%d loss %.4f", e + 1, cfg.epochs, loss),
            )
            return net, losses

        stacker, stack_report = None, None
        if args.stack_folds:
            folds = stacking.patient_folds([s.case for s in train_s], args.stack_folds, args.seed)

            def train_fold(discs: Sequence[Any], fold: int) -> Any:
                net_f, _ = train_net(discs, f"stacker cross-validation, without fold {fold + 1}/{args.stack_folds}")
                return lambda ss: engine.predict_logits(net_f, ss)

            oof = stacking.out_of_fold_logits(train_s, folds, train_fold)
            stacker, stack_report = stacking.fit_stacker(
                heads, oof, stacking.sample_features(train_s), train_s, folds, args.stack_c
            )
        net, losses = train_net(train_s, "all training discs")
        val_logits: dict[str, Any] = dict(engine.predict_logits(net, val_s))
        if stacker is not None:
            val_logits = stacker.apply(val_logits, stacking.sample_features(val_s))
        heads, calib = calibrate(heads, val_logits, val_s, args.seed)
        offsets = stacker.decision_offsets() if stacker is not None else {}
        quick = _quick_metrics(heads, val_logits, val_s, offsets)
        for name, r in calib.items():
            log.info("calibration %s: %s", name, r)
        for name, r in quick.items():
            log.info("validation %s: %s", name, r)
        minutes = (time.perf_counter() - t0) / 60
        extra = {
            "training_data": {
                "dataset": "SPIDER (van der Graaf et al. 2024, CC BY 4.0), mid-sagittal lumbar T2 slices",
                "split": "train" if not args.holdout else f"train minus {args.holdout} holdout patients",
                "patients": len({s.case for s in train_s}),
                "discs": len(train_s),
                "levels": "T9-T10 … L5-S1 as graded in SPIDER",
                "labels": {h.name: SPIDER_COLUMNS[h.name] for h in heads},
                "disc_positions": "built-in detector (" + cache.detector + ")",
                "discs_missed_by_detector": {
                    sp: sum(1 for m in missing if split_of.get(m.split(" ")[0]) == sp) for sp in ("train", "val")
                },
                "calibration": "temperature per head fitted on " + ("val" if not args.holdout else "holdout"),
            },
            "training": {
                "config": cfg.to_dict(),
                "network": net.config.to_dict(),
                "final_loss": round(losses[-1], 4),
                "minutes_cpu": round(minutes, 1),
                "threads": args.threads,
                "command": "openspine train grader " + " ".join(argv),
            },
            "calibration": calib,
            **(
                {"stacking": {"folds": args.stack_folds, "c": args.stack_c, "heads": stack_report}}
                if stack_report is not None
                else {}
            ),
            "validation_quick": {"note": "crops from cached detections, for training logs only", **quick},
            "scope": GRADER_SCOPE,
            "intended_use": "research: grading degenerative findings of lumbar discs on sagittal T2 MRI; "
            "not a medical device",
        }
        write_model_folder(out, net, heads, extra, args.name, args.version, stacker)
        log.info("model written to %s (%.1f min)", out, minutes)
        if not args.holdout and not args.no_evaluate:
            from ..evaluation.grading import evaluate, format_report, update_card

            res = evaluate(args.data, "val", out)
            (work / "evaluation-val.json").write_text(json.dumps(res, indent=2) + "\n")
            update_card(out, res)
            log.info("evaluation on val:\n%s", format_report(res))
            if not quiet:
                print(format_report(res))
        if not quiet:
            print(f"model written to {out} (log: {work / 'train.log'})")
        return 0


def _quick_metrics(
    heads: Sequence[Any], logits: dict[str, np.ndarray], samples: Sequence[Any], offsets: dict[str, Any]
) -> dict[str, Any]:
    from ..levels import LUMBAR_DISCS
    from .metrics import score

    out: dict[str, Any] = {}
    for h in heads:
        # lumbar discs only, as the evaluation grades by default
        m = np.array([h.name in s.labels and s.level in LUMBAR_DISCS for s in samples])
        if not m.any():
            continue
        y = np.array([s.labels.get(h.name, -1) for s in samples])[m]
        p = (logits[h.name][m] + offsets.get(h.name, 0.0)).argmax(axis=1)  # the grade's decision rule
        out[h.name] = {"n": int(m.sum()), **score(y, p, h)}
    return out
