"""Train the two-series grader ``grader-t1t2`` on SPIDER: ``openspine train grader-t1t2``.

Radiologists grade marrow (Modic) change and endplate defects from the sagittal T1 and T2 series together. This
grader's network reads two channels per disc crop: the T2 crop and the T1 crop of the same disc
(:func:`openspine.grading.pair.paired_crops`, channel order ``("T2", "T1")``). Steps (seeded, CPU):

1. the SPIDER **train** patients that have a T1 slice (``spider/t1.csv``); on each, the built-in detector finds the
   discs of the T2 and of the T1 slice (cached in ``WORK/paired-detections.json``) and
   :func:`openspine.study.match_series` pairs them by level. A patient whose two series disagree (a
   ``series_mismatch`` flag) is left out and counted; so is a graded disc that either series misses;
2. cross-validation on train only: ``--folds`` folds by patient; every fold's network (trained with each channel
   augmented on its own and the T1 channel dropped, i.e. zeroed, with probability ``--t1-dropout``) predicts its
   held-out discs twice, with the T1 channel and with it zeroed; per head and per variant the stacker over
   [logits, disc features of the T2 slice] is fitted exactly as for the T2 grader
   (:mod:`openspine.training.stacking`) and the balanced accuracy on the lumbar discs (T12-L1 … L5-S1) of the
   decision that variant would ship is compared;
3. a head is kept only where "with T1" beats "T1 zeroed" by at least ``--min-gain`` balanced accuracy; the kept
   heads' stackers (fitted on all out-of-fold logits with T1) and temperatures (fitted on the same out-of-fold
   logits) go into the card;
4. the network is trained once more on all training pairs (same epochs) and exported with only the kept heads;
   with no head kept, nothing is exported (the cross-validation table says why).

No val patient is used at any step; ``openspine evaluate grading --t1 --update-card`` measures the result on val.
On the SPIDER train patients no head passed the rule (docs/grading.md, "T2 and T1 together"), so openspine ships no
built-in ``grader-t1t2``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._logging import get_logger, log_file
from .._optional import TRAIN_MODULES, import_optional, require_optional
from ..detection.types import DiscGeometry
from ..errors import ConfigError, ModelError, OpenSpineError
from ..grading.crop import CropSpec
from ..grading.pair import PAIRED_CHANNELS, paired_crops
from ..grading.stacker import Stacker
from ..levels import LUMBAR_DISCS
from ..scan import SagittalView
from . import common
from .datasets.discs import DiscSample

log = get_logger("training.paired")

NAME = "grader-t1t2"
SECOND_SERIES = "T1"
T1_DROPOUT = 0.3  # probability that a training crop's T1 channel is zeroed: the network learns to grade without it
MIN_T1_GAIN = 0.01  # balanced accuracy "with T1" must add over "T1 zeroed" in cross-validation for a head to be kept

SCOPE: dict[str, Any] = {
    "modalities": ["MR"],
    "sequences": ["T2"],
    "second_series": [SECOND_SERIES],
    "planes": ["sagittal"],
    "regions": ["thoracic", "lumbar"],
    "levels": ["T9-T10", "T10-T11", "T11-T12", "T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"],
    "basis": "trained and cross-validated on the SPIDER train patients' mid-sagittal lumbar T2 slices, each with the "
    "same patient's mid-sagittal T1 slice, discs paired by detected level, graded T9-T10 ... L5-S1",
}


@dataclass
class PairedSample(DiscSample):
    """One labelled disc seen in two series: the :class:`DiscSample` fields describe its T2 (main) crop, the rest
    its T1 (second) crop."""

    view: SagittalView | None = None  # the main series
    second_view: SagittalView | None = None
    second_geometry: DiscGeometry | None = None


@dataclass
class PairedData:
    """The paired, labelled discs of a set of patients, and what could not be used."""

    samples: list[PairedSample]
    mismatched: dict[str, list[str]]  # patient → the match's series_mismatch flags (patient left out)
    unpaired: list[str]  # "patient level" of each graded disc that either series' detection misses
    failed: dict[str, str]  # patient → why its slices gave nothing
    detector: str


def read_t1_slices(data_dir: str | os.PathLike[str]) -> dict[str, tuple[Path, str]]:
    """The SPIDER T1 slices of the shared data folder: patient → (T1 file, split).

    Raises:
        ConfigError: the folder has no ``spider/t1.csv``.
    """
    root = Path(data_dir)
    table = root / "spider" / "t1.csv"
    if not table.is_file():
        raise ConfigError(f"'{root}' has no SPIDER T1 slices: '{table}' is missing")
    with open(table, newline="", encoding="utf-8") as f:
        return {r["patient_id"]: (root / r["path"] / r["image"], r["split"]) for r in csv.DictReader(f)}


def paired_samples(
    data_dir: str | os.PathLike[str],
    splits: tuple[str, ...],
    cache_file: str | os.PathLike[str] | None,
    patients: int = 0,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda x: x,
) -> PairedData:
    """Step 1: the graded discs of the SPIDER patients of ``splits`` that have a T1 slice, paired by level.

    ``patients`` > 0 takes only the first that many patients (tests, smoke runs).
    """
    from ..detection import detect
    from ..grading.heads import BUILTIN_HEADS
    from ..study import MISMATCH_FLAG, match_series
    from .datasets.discs import DetectionCache, detector_id, disc_geometries, file_identity, load_view
    from .datasets.spider import read_spider

    t1 = read_t1_slices(data_dir)
    cases = [c for c in read_spider(data_dir, splits) if c.patient in t1]
    if patients:
        cases = cases[:patients]
    classes = {h.name: h.classes for h in BUILTIN_HEADS}
    cache = DetectionCache.open(cache_file, detector_id())
    matcher = _matcher_id()
    out = PairedData([], {}, [], {}, cache.detector)
    dirty = False
    for case in progress(cases):
        t1_path = t1[case.patient][0]
        try:
            v2, v1 = load_view(case.image), load_view(t1_path)
        except OpenSpineError as exc:
            out.failed[case.patient] = f"cannot read: {exc}"
            continue
        k2, k1 = str(Path(case.image).resolve()), str(Path(t1_path).resolve())
        i2, i1 = file_identity(case.image), file_identity(t1_path)  # a file changed at the same path is detected again
        g2, g1 = cache.get(k2, i2), cache.get(k1, i1)
        match = cache.entries.get(k1, {}).get("match")
        if g2 is None or g1 is None or not match or match.get("with") != k2 or match.get("matcher") != matcher:
            try:
                d2, d1 = detect(v2), detect(v1)
            except ModelError:
                raise  # no usable detector: every patient would fail the same way
            except OpenSpineError as exc:
                out.failed[case.patient] = f"detection failed: {exc}"
                continue
            g2, f2 = disc_geometries(v2, d2)
            g1, f1 = disc_geometries(v1, d1)
            m = match_series(d2, v2, d1, v1, names=PAIRED_CHANNELS)
            cache.put(k2, g2, f2, i2)
            cache.put(k1, g1, f1, i1)
            # the match is kept with the T1 slice's entry, so a rerun needs neither detection nor match
            match = {
                "with": k2,
                "matcher": matcher,
                "flags": list(m.flags),
                "levels": [d.level.value for d in m.discs],
            }
            cache.entries[k1]["match"] = match
            dirty = True
        bad = [f for f in match["flags"] if f.startswith(MISMATCH_FLAG)]
        if bad:
            out.mismatched[case.patient] = bad
            continue
        paired = set(match["levels"])
        arr2 = np.asarray(v2.scan.array)
        for level, grades in case.labels.items():
            lv = level.value
            if lv not in paired or lv not in g2 or lv not in g1:
                out.unpaired.append(f"{case.patient} {lv}")
                continue
            idx = {h: classes[h].index(v) for h, v in grades.items() if h in classes and v in classes[h]}
            if idx:
                out.samples.append(
                    PairedSample(
                        case.patient,
                        level,
                        arr2,
                        v2.scan.spacing,
                        g2[lv],
                        idx,
                        view=v2,
                        second_view=v1,
                        second_geometry=g1[lv],
                    )
                )
    if dirty:
        cache.save()
    return out


def _matcher_id() -> str:
    """A checksum of the level-matching code: a cached match made by other matching rules is made again."""
    import hashlib
    import inspect

    from ..study import match

    return hashlib.sha256(inspect.getsource(match).encode()).hexdigest()[:16]


def batch_crops(t1_dropout: float) -> Callable[..., NDArray[np.float32]]:
    """The training batches of a two-series grader: (N, 2, H, W), each channel cut from its own series with its own
    geometry noise, frame jitter and intensity change, at one random slice offset; the T1 channel zeroed with
    probability ``t1_dropout``."""
    from ..grading.crop import disc_crop
    from .grader_network import augment_geometry, augment_intensity

    def make(
        samples: Sequence[PairedSample], spec: CropSpec, rng: np.random.Generator, strength: float = 1.0
    ) -> NDArray[np.float32]:
        out = np.zeros((len(samples), 2, spec.height, spec.width), np.float32)
        for i, s in enumerate(samples):
            assert s.second_view is not None and s.second_geometry is not None  # built by paired_samples
            off = float(rng.choice(np.asarray(spec.slice_offsets_mm)))
            spec_i = replace(spec, slice_offsets_mm=(off,))
            g, j = augment_geometry(s.geometry, rng, strength)
            out[i, 0] = augment_intensity(disc_crop(s.array, g, s.spacing, spec_i, j)[0], rng, spec.clip)
            if rng.random() < t1_dropout:
                continue  # zeros: the grader must also work without T1
            second = s.second_view.scan
            g, j = augment_geometry(s.second_geometry, rng, strength)
            out[i, 1] = augment_intensity(disc_crop(second.array, g, second.spacing, spec_i, j)[0], rng, spec.clip)
        return out

    return make


def predict_paired(
    net: Any, samples: Sequence[PairedSample], zero_second: bool = False, batch: int = 64
) -> dict[str, NDArray[np.float32]]:
    """Per-sample logits of every head, from :func:`paired_crops` (as grading cuts them), averaged over the disc's
    slices; ``zero_second`` zeroes the T1 channel (the disc as seen without T1)."""
    from .grader_network import logits_by_owner

    net.eval()
    if not samples:
        return {h.name: np.zeros((0, len(h.classes)), np.float32) for h in net.head_specs}
    rows: list[NDArray[np.float32]] = []
    owners: list[list[int]] = []
    for s in samples:
        assert s.view is not None and s.second_view is not None and s.second_geometry is not None
        x = paired_crops(s.view, s.geometry, s.second_view, s.second_geometry, net.spec)
        owners.append(list(range(len(rows), len(rows) + len(x))))
        rows.extend(x)
    xs = np.stack(rows)
    if zero_second:
        xs[:, 1] = 0.0
    return logits_by_owner(net, xs, owners, batch)


@dataclass(frozen=True)
class PairedTrainingOptions:
    """Everything ``openspine train grader-t1t2`` needs (its flags, typed); the defaults are those of the runs in
    docs/grading.md ("T2 and T1 together")."""

    data: Path
    out: Path
    work: Path | None = None  # detection cache, train.log, cross-validation.json; default OUT/work
    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    class_weight_power: float = 0.5
    seed: int = 0
    threads: int = 1
    folds: int = 5
    stack_c: float = 0.03
    t1_dropout: float = T1_DROPOUT
    min_gain: float = MIN_T1_GAIN
    patients: int = 0  # smoke runs: only the first N train patients with a T1 slice
    heads: tuple[str, ...] = ()  # the heads the network learns (a subset of the built-in gradings); empty = all
    name: str = NAME
    version: str = "1.0.0+local"  # a locally trained model (none is shipped)

    @property
    def work_dir(self) -> Path:
        return self.work or self.out / "work"


@dataclass
class PairedTrainingResult:
    folder: Path | None  # None when no head was kept
    work: Path
    minutes: float
    kept: list[str]
    cross_validation: dict[str, Any]


def _decisions(
    h: Any,
    logits: NDArray[np.floating],
    features: NDArray[np.float64],
    y: NDArray[np.int64],
    folds: NDArray[np.int64],
    stacked: bool,
    c: float,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Out-of-fold decisions and probability logits of one head: the network's, or (``stacked``) its stacker's,
    refitted without each fold exactly as :func:`openspine.training.stacking.fit_stacker` cross-validates it."""
    from .stacking import fit_head

    z = np.asarray(logits, np.float64)
    if not stacked:
        return z.argmax(axis=1), z
    k = len(h.classes)
    dec = np.zeros(len(y), np.int64)
    out = np.zeros_like(z)
    lab = y >= 0
    x = np.hstack([z, features])
    for f in np.unique(folds):
        tr, te = lab & (folds != f), folds == f
        st = fit_head(x[tr], y[tr], k, c)
        dec[te] = st.balanced(x[te, :k], x[te, k:]).argmax(axis=1)
        out[te] = st.apply(x[te, :k], x[te, k:])
    return dec, out


def compare_variants(
    heads: Sequence[Any],
    samples: Sequence[PairedSample],
    folds: NDArray[np.int64],
    oof: Mapping[str, Mapping[str, NDArray[np.floating]]],
    features: NDArray[np.float64],
    c: float,
    min_gain: float,
) -> tuple[dict[str, Any], Stacker, dict[str, NDArray[np.float64]]]:
    """Step 2-3: per head and variant ("with_t1", "t1_zeroed"), the stacker fitted as for the T2 grader and the
    cross-validated balanced accuracy of the decision that variant would ship; which heads T1 helps.

    Returns the report per head, the with-T1 stackers (all heads that kept one) and the with-T1 out-of-fold
    probability logits per head (for the temperatures).
    """
    from .metrics import balanced_accuracy, score
    from .stacking import fit_stacker

    lumbar = np.array([s.level in LUMBAR_DISCS for s in samples])
    fitted: dict[str, tuple[Stacker, dict[str, Any]]] = {
        v: fit_stacker(heads, oof[v], features, samples, folds, c) for v in oof
    }
    report: dict[str, Any] = {}
    prob_logits: dict[str, NDArray[np.float64]] = {}
    for h in heads:
        y = np.array([s.labels.get(h.name, -1) for s in samples], np.int64)
        m = (y >= 0) & lumbar
        row: dict[str, Any] = {"discs": int(m.sum())}
        for v, (_, rep) in fitted.items():
            kept = bool(rep.get(h.name, {}).get("kept", False))
            dec, z = _decisions(h, oof[v][h.name], features, y, folds, kept, c)
            if v == "with_t1":
                prob_logits[h.name] = z
            r = {
                "network_only": score(y[m], np.asarray(oof[v][h.name])[m].argmax(axis=1), h),
                "stacker_kept": kept,
                "shipped_decision": "stacker" if kept else "network",
                **score(y[m], dec[m], h),
            }
            if h.name == "marrow_change":  # any change (types 1-3) against none
                r["any_vs_none_balanced_accuracy"] = round(balanced_accuracy(y[m] > 0, dec[m] > 0, 2), 4)
            row[v] = r
        gain = row["with_t1"]["balanced_accuracy"] - row["t1_zeroed"]["balanced_accuracy"]
        row["gain"] = round(gain, 4)
        row["kept"] = bool(gain >= min_gain)
        report[h.name] = row
        log.info(
            "cross-validation %s: with T1 %.4f, T1 zeroed %.4f (gain %+.4f) -> %s",
            h.name,
            row["with_t1"]["balanced_accuracy"],
            row["t1_zeroed"]["balanced_accuracy"],
            gain,
            "kept" if row["kept"] else "dropped",
        )
    return report, fitted["with_t1"][0], prob_logits


def train_paired(
    options: PairedTrainingOptions, quiet: bool = False, command: str = "openspine train grader-t1t2"
) -> PairedTrainingResult:
    """Steps 1-4 (see the module docstring); writes ``OUT`` (model.onnx, weights.npz, card.json) when at least one
    head is kept, and ``WORK/cross-validation.json`` always.

    Raises:
        ConfigError: the data folder, the options or the output folder are not usable, or no training pair is left.
        MissingDependencyError: the ``train`` extra is not installed.
    """
    require_optional(TRAIN_MODULES, "openspine train grader-t1t2")
    if options.epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {options.epochs}")
    if options.folds < 2:
        raise ConfigError(f"--folds must be at least 2 (the heads are chosen by cross-validation), got {options.folds}")
    if not 0.0 <= options.t1_dropout < 1.0:
        raise ConfigError(f"--t1-dropout must be in [0, 1), got {options.t1_dropout}")
    from .grader import chosen_heads

    chosen_heads(options.heads)  # a misspelt head is said now, not after every pair's discs are found
    common.check_run_paths(options.data, options.out)
    torch = import_optional("torch", "training the grader")
    work = options.work_dir
    work.mkdir(parents=True, exist_ok=True)
    with log_file(work / "train.log"):
        torch.set_num_threads(options.threads)
        t0 = time.perf_counter()
        log.info("train %s: %s", options.name, json.dumps({k: str(v) for k, v in asdict(options).items()}))
        data = _train_pairs(options, work, quiet)
        result = _fit(options, data, work, quiet, t0, command)
    return result


def _train_pairs(options: PairedTrainingOptions, work: Path, quiet: bool) -> PairedData:
    from tqdm import tqdm

    def bar(x: Any) -> Any:
        return tqdm(x, desc="detecting and pairing discs", unit="patient", disable=quiet, file=sys.stderr)

    data = paired_samples(options.data, ("train",), work / "paired-detections.json", options.patients, bar)
    for p, why in data.failed.items():
        log.warning("SPIDER %s: %s", p, why)
    for p, flags in data.mismatched.items():
        log.info("SPIDER %s left out: %s", p, "; ".join(flags))
    n_pat = len({s.case for s in data.samples})
    log.info(
        "training pairs: %d discs of %d patients; %d patients left out (T2 and T1 series disagree), %d graded discs "
        "not found in both series, %d patients failed",
        len(data.samples),
        n_pat,
        len(data.mismatched),
        len(data.unpaired),
        len(data.failed),
    )
    if n_pat < options.folds:
        raise ConfigError(f"only {n_pat} patients with paired discs: too few for {options.folds} folds")
    return data


def _fit(
    options: PairedTrainingOptions, data: PairedData, work: Path, quiet: bool, t0: float, command: str
) -> PairedTrainingResult:
    from tqdm import tqdm

    from . import grader_network as engine
    from . import stacking
    from .common import options_from
    from .grader import calibrate, chosen_heads, write_model_folder

    heads = chosen_heads(options.heads)
    cfg = options_from(engine.TrainConfig, options)
    make = batch_crops(options.t1_dropout)
    samples = data.samples

    def train_net(discs: Sequence[PairedSample], what: str) -> tuple[Any, list[float]]:
        torch = import_optional("torch", "training the grader")
        torch.manual_seed(options.seed)
        net = engine.DiscNet(engine.NetConfig(in_channels=len(PAIRED_CHANNELS)), CropSpec(), heads)
        log.info("network (%d parameters) on %d discs: %s", engine.param_count(net), len(discs), what)
        losses = engine.train(
            net,
            discs,
            heads,
            cfg,
            progress=None if quiet else tqdm,
            on_epoch=lambda e, loss: log.info("epoch %d/%d loss %.4f", e + 1, cfg.epochs, loss),
            batch_crops=make,
        )
        return net, losses

    folds = stacking.patient_folds([s.case for s in samples], options.folds, options.seed)
    oof: dict[str, dict[str, NDArray[np.float32]]] = {"with_t1": {}, "t1_zeroed": {}}
    for f in range(options.folds):
        test = [s for s, g in zip(samples, folds) if g == f]
        net_f, _ = train_net([s for s, g in zip(samples, folds) if g != f], f"fold {f + 1}/{options.folds}")
        for v, zero in (("with_t1", False), ("t1_zeroed", True)):
            for name, z in predict_paired(net_f, test, zero_second=zero).items():
                oof[v].setdefault(name, np.zeros((len(samples), z.shape[1]), np.float32))[folds == f] = z
    features = stacking.sample_features(samples)  # of the T2 slice, as grading measures them
    report, fitted, prob_logits = compare_variants(
        heads, samples, folds, oof, features, options.stack_c, options.min_gain
    )
    kept = [h.name for h in heads if report[h.name]["kept"]]
    any_vs_none = {
        v: report["marrow_change"][v].get("any_vs_none_balanced_accuracy") if "marrow_change" in report else None
        for v in ("with_t1", "t1_zeroed")
    }
    cv = {
        "folds": options.folds,
        "unit": "patient",
        "patients": len({s.case for s in samples}),
        "discs": len(samples),
        "scored_on": "lumbar discs T12-L1 ... L5-S1, out-of-fold",
        "heads_trained": [h.name for h in heads],
        "variants": {
            "with_t1": "the fold's network on the T2 and T1 crops",
            "t1_zeroed": "the same network with the T1 channel zeroed (as trained with T1 dropout)",
        },
        "decision": "per variant as the T2 grader ships it: the stacker over [logits, T2 disc features] where it "
        "wins in this cross-validation (balanced argmax), else the network's argmax",
        "rule": f"a head is kept only where 'with_t1' beats 't1_zeroed' by >= {options.min_gain} balanced accuracy",
        "marrow_change_any_vs_none_balanced_accuracy": any_vs_none,
        "heads": report,
        "kept": kept,
    }
    (work / "cross-validation.json").write_text(json.dumps(cv, indent=2) + "\n", encoding="utf-8")
    log.info("heads kept (T1 helps in cross-validation): %s", kept or "none")
    if not kept:
        minutes = (time.perf_counter() - t0) / 60
        log.warning("no head gains from T1 in cross-validation: no model written (see %s)", work)
        return PairedTrainingResult(None, work, minutes, kept, cv)
    net, losses = train_net(samples, "all training pairs")
    kept_heads = [h for h in heads if h.name in kept]
    stacker = Stacker(heads={k: v for k, v in fitted.heads.items() if k in kept})
    # temperatures from the out-of-fold logits of train (never val), stacked where the head ships its stacker
    kept_heads, calib = calibrate(kept_heads, {k: prob_logits[k] for k in kept}, samples, options.seed)
    minutes = (time.perf_counter() - t0) / 60
    extra = {
        "training_data": _training_data_card(data, kept),
        "training": {
            "config": cfg.to_dict(),
            "network": net.config.to_dict(),
            "t1_dropout": options.t1_dropout,
            "augmentation": "each channel on its own: corner noise, frame jitter, gamma / gain / noise",
            "final_loss": round(losses[-1], 4),
            "minutes_cpu": round(minutes, 1),
            "threads": options.threads,
            "command": command,
            "cross_validation": cv,
        },
        "calibration": {"fitted_on": "out-of-fold logits of the train patients (with T1)", "heads": calib},
        "scope": SCOPE,
        "basis": SCOPE["basis"] + f"; heads kept where {options.folds}-fold cross-validation on those train "
        "patients showed that the T1 crop adds balanced accuracy",
        "intended_use": "research: grading marrow (Modic) change and endplate defects of lumbar discs from the "
        "sagittal T2 and T1 series together; not a medical device",
        "limitations": [
            "one mid-sagittal slice per series (SPIDER provides one T2 and one T1 slice per patient)",
            "trained on 8-bit, per-image min-max normalised renders, not original intensities",
            "the two series are not registered: each is cut from its own detected disc geometry, paired by level",
            "heads not listed here are graded by the T2 grader",
        ],
    }
    write_model_folder(options.out, net, kept_heads, extra, options.name, options.version, stacker)
    card_path = options.out / "card.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["input"]["channels"] = list(PAIRED_CHANNELS)
    card["input"]["description"] = (
        "channel 0: the T2 crop of the disc, channel 1: the T1 crop of the same disc (paired by level), each cut "
        "from its own series (openspine.grading.pair.paired_crops)"
    )
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    log.info("model written to %s (%.1f min)", options.out, minutes)
    return PairedTrainingResult(options.out, work, minutes, kept, cv)


def _training_data_card(data: PairedData, kept: Sequence[str]) -> dict[str, Any]:
    from .datasets.spider import SPIDER_COLUMNS

    return {
        "dataset": "SPIDER: J. W. van der Graaf et al., 'Lumbar spine segmentation in MR images: a dataset and a "
        "public benchmark', Scientific Data 11:264 (2024), doi:10.1038/s41597-024-03090-w; CC BY 4.0; "
        "mid-sagittal lumbar T2 slice and T1 slice per patient",
        "split": "train (patients with a T1 slice)",
        "patients": len({s.case for s in data.samples}),
        "discs": len(data.samples),
        "patients_left_out_series_mismatch": len(data.mismatched),
        "graded_discs_not_in_both_series": len(data.unpaired),
        "levels": "as graded in SPIDER, discs found and paired by level in both series",
        "labels": {k: SPIDER_COLUMNS[k] for k in kept},
        "disc_positions": f"built-in detector ({data.detector}) on each series, paired by openspine.study.match_series",
    }


def build_parser() -> argparse.ArgumentParser:
    from .._command_parser import command_parser

    p = command_parser(
        "openspine train grader-t1t2",
        "Train the two-series (T2 + T1) disc grader on the SPIDER train patients with a T1 slice; keep the heads "
        "where cross-validation on train shows that T1 helps; export ONNX with a card.",
        """examples:
  openspine train grader-t1t2 --data ../shared/data --out grader-t1t2
  openspine train grader-t1t2 --data ../shared/data --out /tmp/smoke --patients 8 --epochs 1 --folds 2

The network is trained folds times, plus once on all pairs when a head is kept (40 epochs each; 18-20 min of
cross-validation on one thread of a 2-core CPU). The log, the detection cache and the cross-validation table go to
WORK (default OUT/work). Val is never used; measure with 'openspine evaluate grading --t1 --paired-grader OUT'.
""",
        show_defaults=False,
    )
    d = PairedTrainingOptions(Path("."), Path("."))
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder (index.csv)")
    p.add_argument("--out", type=Path, required=True, help="model folder to write (model.onnx, weights.npz, card.json)")
    p.add_argument("--work", type=Path, default=None, help="cache and log folder (default: OUT/work)")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"training epochs per network (default {d.epochs})")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW, cosine schedule)")
    p.add_argument("--class-weight-power", type=float, default=d.class_weight_power)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=d.threads, help="CPU threads for torch")
    p.add_argument("--folds", type=int, default=d.folds, help="cross-validation folds of train patients")
    p.add_argument("--stack-c", type=float, default=d.stack_c, help="inverse L2 strength of the stackers")
    p.add_argument("--t1-dropout", type=float, default=d.t1_dropout, help="probability of zeroing the T1 channel")
    p.add_argument("--min-gain", type=float, default=d.min_gain, help="balanced accuracy T1 must add to keep a head")
    p.add_argument("--patients", type=int, default=0, help="smoke runs: only the first N train patients")
    p.add_argument(
        "--heads",
        type=lambda t: tuple(x.strip() for x in t.split(",") if x.strip()),
        default=(),
        help="comma-separated built-in gradings the network learns (default: all)",
    )
    p.add_argument("--name", default=d.name, help="model name written into the card")
    from .common import add_version_option

    add_version_option(p, "grader-t1t2", "1.0.0")
    return p


def cli_main(argv: Sequence[str], quiet: bool = False) -> int:
    """``openspine train grader-t1t2``: returns 0 when a model was written, 1 when no head was kept."""
    from .common import options_from

    args = build_parser().parse_args(list(argv))
    options = options_from(PairedTrainingOptions, args)
    res = train_paired(options, quiet, "openspine train grader-t1t2 " + " ".join(argv))
    if not quiet:
        print(f"heads kept: {', '.join(res.kept) or 'none'} ({res.minutes:.1f} min; log: {res.work / 'train.log'})")
        if res.folder is not None:
            print(f"model written to {res.folder}")
    return 0 if res.folder is not None else 1
