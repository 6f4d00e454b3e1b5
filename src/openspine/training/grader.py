"""Train the built-in disc grader on SPIDER: :func:`train_grader` (``openspine train grader``, whose argparse
wrapper is :mod:`openspine.train_grader_cli`: it evaluates the model on val afterwards, step 6).

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

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._logging import get_logger, log_file
from .._optional import TRAIN_MODULES, import_optional, require_optional
from .._version import __version__
from ..errors import ConfigError
from ..grading.grade import NOT_EVALUATED
from . import common

log = get_logger("training.grader")

# What the trained model may answer (see openspine.scope): the SPIDER training data's sequence and levels.
GRADER_SCOPE = {
    "modalities": ["MR"],
    "sequences": ["T2"],
    "planes": ["sagittal"],
    "regions": ["thoracic", "lumbar"],
    "levels": ["T9-T10", "T10-T11", "T11-T12", "T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"],
    # "validated" is the metrics' to say: a card written before (or without: --no-evaluate) the evaluation has none
    "basis": "trained on SPIDER mid-sagittal lumbar T2 slices graded T9-T10 ... L5-S1 (measured: see metrics)",
    # SPIDER's pixels are 0.29-1.0 mm (the coarsest, widened by a quarter); train slices downsampled to 1.25 mm lose
    # 4.0 points of exact Pfirrmann agreement, to 1.5 mm 7.6 (python scripts/grading_pixel_size.py --split train)
    "max_pixel_spacing_mm": 1.25,
}


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
            "shape": [None, net.config.in_channels, net.spec.height, net.spec.width],
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
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return out


def _local_version() -> str:
    from .common import local_version

    return local_version("grader", "1.0.0")


@dataclass(frozen=True)
class GraderTrainingOptions:
    """Everything ``openspine train grader`` needs (its flags, typed); the defaults reproduce the built-in grader."""

    data: Path
    out: Path
    work: Path | None = None  # detection cache, train.log, stacking-oof.npz; default OUT/work
    epochs: int = 60
    batch_size: int = 32
    lr: float = 2e-3
    class_weight_power: float = 0.5
    seed: int = 0
    threads: int = 2
    holdout: int = 0  # development: validate on the last N train patients instead of val
    heads: tuple[str, ...] = ()  # a subset of the built-in gradings; empty = all
    stack_folds: int = 5  # 0: no stacker
    stack_c: float = 0.03
    name: str = "grader"
    version: str = field(default_factory=lambda: _local_version())  # never the shipped model's version

    @property
    def work_dir(self) -> Path:
        return self.work or self.out / "work"


@dataclass
class GraderTrainingResult:
    """What :func:`train_grader` wrote: the model folder and its work folder (``train.log``, detections)."""

    folder: Path
    work: Path
    minutes: float


def train_grader(
    options: GraderTrainingOptions,
    quiet: bool = False,
    command: str = "openspine.training.grader.train_grader",
    after_export: Callable[[Path], None] | None = None,
) -> GraderTrainingResult:
    """Train, calibrate and export a grader on SPIDER (see the module docstring, steps 1-5).

    ``command`` is recorded in the card; ``after_export(folder)`` runs once the folder is written, while the
    training log is still open (``openspine train grader`` evaluates on val there).

    Raises:
        ConfigError: the data folder, the options or the output folder are not usable.
        MissingDependencyError: the ``train`` extra is not installed.
    """
    # before any detection or training: the packages (the ONNX export at the end needs onnx and onnxscript),
    # the data and the output folder
    require_optional(TRAIN_MODULES, "openspine train grader")
    common.check_run_paths(options.data, options.out)
    torch = import_optional("torch", "training the grader")
    if options.epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {options.epochs}")
    if options.stack_folds == 1 or options.stack_folds < 0:
        raise ConfigError(f"--stack-folds must be 0 (no stacker) or at least 2, got {options.stack_folds}")
    if options.holdout < 0:
        raise ConfigError(f"--holdout must be 0 (validate on val) or more patients, got {options.holdout}")
    chosen_heads(options.heads)  # a misspelt head is said now, not after every scan's discs are found
    work = options.work_dir
    work.mkdir(parents=True, exist_ok=True)
    with log_file(work / "train.log"):
        torch.set_num_threads(options.threads)
        t0 = time.perf_counter()
        log.info("train grader: %s", json.dumps({k: str(v) for k, v in asdict(options).items()}))
        data = _grader_samples(options, work, quiet)
        heads, net, losses, stacker, stack_report = _fit_grader(options, data.train, quiet)
        from . import stacking
        from .grader_network import predict_logits

        val_logits: dict[str, Any] = dict(predict_logits(net, data.val))
        if stacker is not None:
            val_logits = stacker.apply(val_logits, stacking.sample_features(data.val))
        heads, calib = calibrate(heads, val_logits, data.val, options.seed)
        offsets = stacker.decision_offsets() if stacker is not None else {}
        quick = _quick_metrics(heads, val_logits, data.val, offsets)
        for name, r in calib.items():
            log.info("calibration %s: %s", name, r)
        for name, r in quick.items():
            log.info("validation %s: %s", name, r)
        minutes = (time.perf_counter() - t0) / 60
        extra = {
            "training_data": _training_data_card(options, data, heads),
            "training": {
                "config": _train_config(options).to_dict(),
                "network": net.config.to_dict(),
                "final_loss": round(losses[-1], 4),
                "minutes_cpu": round(minutes, 1),
                "threads": options.threads,
                "command": command,
            },
            "calibration": calib,
            **(
                {"stacking": {"folds": options.stack_folds, "c": options.stack_c, "heads": stack_report}}
                if stack_report is not None
                else {}
            ),
            "validation_quick": {"note": "crops from cached detections, for training logs only", **quick},
            "scope": GRADER_SCOPE,
            # replaced by the evaluation on val (openspine train grader without --no-evaluate or --holdout); until
            # then the analysis flags every grade grader_not_validated
            "metrics": {"validated": False, "evaluated_on": None, "reason": NOT_EVALUATED},
            "intended_use": "research: grading degenerative findings of lumbar discs on sagittal T2 MRI; "
            "not a medical device",
        }
        write_model_folder(options.out, net, heads, extra, options.name, options.version, stacker)
        log.info("model written to %s (%.1f min)", options.out, minutes)
        if after_export is not None:
            after_export(options.out)
    return GraderTrainingResult(folder=options.out, work=work, minutes=minutes)


@dataclass
class _GraderData:
    """The located, labelled discs of one training run, split into train and validation."""

    train: list[Any]
    val: list[Any]
    missing: list[str]
    split_of: dict[str, str]
    detector: str


def chosen_heads(names: Sequence[str]) -> list[Any]:
    """The built-in heads ``--heads`` names (all where it names none); ConfigError for a name that is none (the
    grader and the T1+T2 grader check it before any work)."""
    from ..grading.heads import BUILTIN_HEADS
    from .datasets.spider import SPIDER_COLUMNS

    if not names:
        return list(BUILTIN_HEADS)
    wanted = [h.strip() for h in names if h.strip()]
    if not wanted:
        raise ConfigError("--heads names no grading; leave it out to train every built-in one")
    unknown = [h for h in wanted if h not in SPIDER_COLUMNS]
    if unknown:
        raise ConfigError(f"--heads: unknown gradings {unknown}; built-in ones are {list(SPIDER_COLUMNS)}")
    return [h for h in BUILTIN_HEADS if h.name in wanted]


def _grader_samples(options: GraderTrainingOptions, work: Path, quiet: bool) -> _GraderData:
    """Steps 1-2: the SPIDER cases, their discs found by the built-in detector (cached), as training samples."""
    from tqdm import tqdm

    from ..grading.heads import BUILTIN_HEADS
    from .datasets.discs import located_samples
    from .datasets.spider import read_spider

    cases = read_spider(options.data, ("train", "val"))
    train_ids = [c.patient for c in cases if c.split == "train"]
    if options.holdout >= len(train_ids):  # before the discs are found (it had failed with a traceback after)
        raise ConfigError(
            f"--holdout {options.holdout} leaves no training patient: the train split has {len(train_ids)}"
        )
    if options.holdout:
        dev = _split_holdout(train_ids, options.holdout)
        split_of = {c.patient: ("val" if c.patient in dev else "train") for c in cases if c.split == "train"}
    else:
        split_of = {c.patient: c.split for c in cases}
    used = [c for c in cases if c.patient in split_of]

    def bar(x: Any) -> Any:
        return tqdm(x, desc="detecting discs", unit="scan", disable=quiet, file=sys.stderr)

    located = located_samples(
        ((c.patient, c.image) for c in used),
        {c.patient: c.labels for c in used},
        {h.name: h.classes for h in BUILTIN_HEADS},
        work / "detections.json",
        bar,
    )
    for case, why in located.failed.items():
        log.warning("SPIDER %s: %s", case, why)
    samples, missing = located.samples, located.missing
    n_labelled = sum(len(c.labels) for c in used)
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
    return _GraderData(train_s, val_s, missing, split_of, located.detector)


def _train_config(options: GraderTrainingOptions) -> Any:
    from .common import options_from
    from .grader_network import TrainConfig

    return options_from(TrainConfig, options)  # epochs, batch size, learning rate, class weighting, seed


def _fit_grader(
    options: GraderTrainingOptions, train_s: Sequence[Any], quiet: bool
) -> tuple[list[Any], Any, list[float], Any, dict[str, Any] | None]:
    """Step 3: the stacker (out-of-fold networks, when ``stack_folds``), then the network on all training discs."""
    from tqdm import tqdm

    from . import grader_network as engine
    from . import stacking

    heads = chosen_heads(options.heads)
    cfg = _train_config(options)

    def train_net(discs: Sequence[Any], what: str) -> Any:
        net = engine.fresh_network(heads, options.seed)
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
    if options.stack_folds:
        folds = stacking.patient_folds([s.case for s in train_s], options.stack_folds, options.seed)

        def train_fold(discs: Sequence[Any], fold: int) -> Any:
            net_f, _ = train_net(discs, f"stacker cross-validation, without fold {fold + 1}/{options.stack_folds}")
            return lambda ss: engine.predict_logits(net_f, ss)

        oof = stacking.out_of_fold_logits(train_s, folds, train_fold)
        features = stacking.sample_features(train_s)
        stacking.save_out_of_fold(options.work_dir / "stacking-oof.npz", heads, oof, features, train_s, folds)
        stacker, stack_report = stacking.fit_stacker(heads, oof, features, train_s, folds, options.stack_c)
    net, losses = train_net(train_s, "all training discs")
    return heads, net, losses, stacker, stack_report


# what the card's training_data.patient_scans lists, and what reads it
PATIENT_SCANS_NOTE = (
    "content fingerprints (openspine.training.datasets.discs.view_fingerprint) of the training patients' SPIDER "
    "files (T2 and T1 slices, NIfTI and PNG): openspine finetune warns when validation scans are among them"
)


def _training_data_card(options: GraderTrainingOptions, data: _GraderData, heads: Sequence[Any]) -> dict[str, Any]:
    from .datasets.spider import SPIDER_COLUMNS, patient_scan_fingerprints, read_spider

    trained_on = [c for c in read_spider(options.data, ("train",)) if data.split_of.get(c.patient) == "train"]
    return {
        "dataset": "SPIDER (van der Graaf et al. 2024, CC BY 4.0), mid-sagittal lumbar T2 slices",
        "split": "train" if not options.holdout else f"train minus {options.holdout} holdout patients",
        "patients": len({s.case for s in data.train}),
        "discs": len(data.train),
        "levels": "T9-T10 … L5-S1 as graded in SPIDER",
        "labels": {h.name: SPIDER_COLUMNS[h.name] for h in heads},
        "disc_positions": "built-in detector (" + data.detector + ")",
        "discs_missed_by_detector": {
            sp: sum(1 for m in data.missing if data.split_of.get(m.split(" ")[0]) == sp) for sp in ("train", "val")
        },
        "calibration": "temperature per head fitted on " + ("val" if not options.holdout else "holdout"),
        "patient_scans": {
            "what": PATIENT_SCANS_NOTE,
            "fingerprints": patient_scan_fingerprints(trained_on),
        },
    }


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
