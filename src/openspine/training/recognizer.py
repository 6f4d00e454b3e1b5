"""Train the image recogniser (plane, sequence, cervical field of view) and export it as an openspine model folder.

``openspine train recognizer --data ../shared/data --out DIR`` reads the ``train`` split only, trains a tiny CNN with a
fixed seed and writes ``DIR/model.onnx``, ``DIR/card.json``, ``DIR/checkpoint.pt`` and ``DIR/train.log``. Evaluate it
with ``openspine evaluate recognition --data ../shared/data --split val --model DIR --card``.

Training pictures (all drawn from the train split):

* SPIDER mid-sagittal slices: T2 (``image.nii.gz``) and T1 (``t1.nii.gz``), sagittal, not cervical;
* FastCleverSeg volumes cut into sagittal, axial and coronal slices at many positions: VB2 / IVD = T2, VB3 (water-fat
  GRE) = other, VB1 = sequence unknown (its sequence loss is masked); lumbar, not cervical;
* Spinal Cord Toolbox volumes (reoriented with their affine) cut in the three planes: ``sct-example-t2`` (skull base
  to ~T5) is cervical where the crop is centred above C7 and not cervical where the whole crop lies below C7 (C7 is
  interpolated between the cord point labels C3 and T4; crops in between are masked); ``sct-testing-t2`` / ``-t1``
  are cervical crops (T2 / T1).

Every sample is augmented: random field-of-view crops (height and width), anterior/posterior mirroring (left/right
too for axial and coronal slices), pixel-size jitter, 8-bit (or coarser) quantisation, gamma, blur and noise. The
sample stream is seeded per item, so a run is reproducible.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from .._command_parser import command_parser
from .._logging import get_logger, log_file
from .._optional import TRAIN_MODULES, import_optional, require_optional
from ..errors import ConfigError
from ..recognition.image import MODEL_SIZE, MODEL_SPACING_MM, PLANES, SEQUENCES, model_input, widened
from . import common
from .datasets.pictures import IGNORE, Picture, cut, load_pictures, slice_axis

log = get_logger("training.recognizer")

MODEL_NAME = "recognizer"
MODEL_VERSION = "1.1.0"  # 1.1: --widen 0.5 (1.0 had none)
# how often each kind of source is drawn
SOURCE_WEIGHTS = {"spider-t2": 0.15, "spider-t1": 0.2, "volume": 0.4, "sct": 0.25}
VOLUME_PLANE_P = (0.3, 0.35, 0.35)  # sagittal, axial, coronal when cutting a volume

_EPILOG = """examples:
  openspine train recognizer --data ../shared/data --out runs/recognizer            # the built-in recipe
  openspine train recognizer --data ../shared/data --out runs/quick --epochs 1      # a smoke test
  openspine train recognizer --data ../shared/data --out runs/no-neck --exclude sct-example-t2   # leave one out

Only split == "train" items are read. Outputs: DIR/model.onnx, DIR/card.json (metrics are added by
'openspine evaluate recognition --model DIR --split val --card'), DIR/checkpoint.pt, DIR/train.log.
"""


# What the trained model may answer (see openspine.scope); the cervical call's weak basis is stated in the card.
RECOGNIZER_SCOPE = {
    "modalities": ["MR"],
    "sequences": ["T1", "T2", "other"],
    "planes": ["sagittal", "axial", "coronal"],
    "regions": ["cervical", "thoracic", "lumbar", "sacral"],
    "basis": "trained on the train split: SPIDER T1/T2 mid-sagittal slices, FastCleverSeg volumes cut in three planes "
    "(T2, water-fat as 'other', mixed), SCT volumes; the cervical call rests on two cervical patients, both in "
    "training (left out, 3 of 42 of their crops recognised)",
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (saved in the card and the checkpoint)."""

    epochs: int = 40  # 14 before; 40 read a held-out fold of train better (scripts/recognizer_holdout.py)
    samples_per_epoch: int = 2048
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    widths: tuple[int, ...] = (16, 24, 48, 64, 80)
    exclude: tuple[str, ...] = ()
    source_weights: dict[str, float] = field(default_factory=lambda: dict(SOURCE_WEIGHTS))
    # share of samples whose content is reflected sideways to a random width up to WIDEN_MAX_MM: the volumes' axial
    # and coronal cuts are narrow strips, real ones are not (evaluation.recognition.WIDEN_MM)
    widen_p: float = 0.5  # 0.5 since version 1.1 (scripts/recognizer_holdout.py --widen 0 0.5); 1.0 had 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"], d["exclude"] = list(self.widths), list(self.exclude)
        return d


@dataclass(frozen=True)
class Sample:
    image: NDArray[np.float32]  # (MODEL_SIZE, MODEL_SIZE)
    plane: int
    sequence: int
    cervical: int


def _window(rng: np.random.Generator, n: int, px_mm: float, min_mm: float = 70.0) -> tuple[int, int]:
    """A random [start, stop) window of at least ``min_mm`` (or all) along an axis of ``n`` pixels."""
    if rng.random() < 0.45:
        return 0, n
    lo = min(n, max(8, int(min_mm / px_mm)))
    length = int(rng.integers(lo, n + 1))
    start = int(rng.integers(0, n - length + 1))
    return start, start + length


def augment_intensity(rng: np.random.Generator, x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Gamma, blur and noise on a normalised model input (zeros outside the picture stay zero)."""
    valid = x > 0
    if rng.random() < 0.8:
        x = np.power(x, np.float32(np.exp(rng.uniform(-0.45, 0.45)))).astype(np.float32)
    if rng.random() < 0.3:
        x = ndimage.gaussian_filter(x, float(rng.uniform(0.3, 1.2))).astype(np.float32)
    if rng.random() < 0.5:
        x = x + rng.normal(0.0, rng.uniform(0.005, 0.06), x.shape).astype(np.float32)
    x = np.clip(x, 0.0, 1.0)
    if valid.mean() < 0.999:
        x[~valid] = 0.0
    return x.astype(np.float32)


WIDEN_MAX_MM = 320.0


def render(
    pic: Picture,
    rng: np.random.Generator,
    plane_p: tuple[float, float, float] = VOLUME_PLANE_P,
    widen_p: float = 0.0,
) -> Sample:
    """One augmented training sample of ``pic`` (``widen_p``: see :attr:`TrainConfig.widen_p`)."""
    cerv = pic.cervical
    if pic.array.ndim == 2:
        plane = "sagittal"
        img, sp, rows_axis = pic.array, pic.spacing[:2], "SI"
        pos_si: float | None = None
    else:
        plane = PLANES[int(rng.choice(3, p=np.asarray(plane_p)))]
        ax = slice_axis(plane)
        n = pic.array.shape[ax]
        idx = int(np.clip(round(n / 2 + rng.normal(0.0, 0.22 * n)), 0, n - 1))
        img, sp2, rows_axis = cut(pic, plane, idx)
        sp = (float(sp2[0]), float(sp2[1]))
        pos_si = float(idx) if plane == "axial" else None
    # field-of-view crop
    r0, r1 = _window(rng, img.shape[0], sp[0])
    c0, c1 = _window(rng, img.shape[1], sp[1], min_mm=40.0)
    if pic.c7_row is not None:  # whole neck: the label follows where the crop sits relative to C7
        if pos_si is None and rows_axis == "SI":
            n = img.shape[0]
            c7 = int(pic.c7_row)
            if rng.random() < 0.5:  # a cervical crop: centre above C7
                r0 = 0 if rng.random() < 0.5 else int(rng.integers(0, max(1, c7 - 40)))
                r1 = int(rng.integers(min(n, max(r0 + 40, c7)), n + 1))
                r1 = min(r1, n)
            else:  # a thoracic crop: nothing above C7
                r0 = int(rng.integers(c7, max(c7 + 1, n - 50)))
                r1 = n
            centre = (r0 + r1) / 2
            cerv = 1 if centre < pic.c7_row else 0 if r0 >= pic.c7_row else IGNORE
        elif pos_si is not None:
            cerv = 1 if pos_si < pic.c7_row else 0 if pos_si > pic.c7_row + 25 else IGNORE
    img = img[r0:r1, c0:c1]
    # mirrored storage: anterior/posterior (and left/right in axial and coronal pictures)
    if plane == "sagittal" and rng.random() < 0.5:
        img = img[:, ::-1]
    if plane == "axial":
        if rng.random() < 0.5:
            img = img[::-1, :]
        if rng.random() < 0.5:
            img = img[:, ::-1]
    if plane == "coronal" and rng.random() < 0.5:
        img = img[:, ::-1]
    if widen_p > 0 and rng.random() < widen_p:  # drawn only when asked for: the stream of widen_p 0 stays as it was
        width_mm = float(rng.uniform(img.shape[1] * sp[1], max(img.shape[1] * sp[1], WIDEN_MAX_MM)))
        img = widened(img, round(width_mm / sp[1]))
    # pixel size: the A→P size of the whole-neck volume is uncertain; every picture gets a jitter
    if pic.ap_spacing_range is not None:
        ap = float(rng.uniform(*pic.ap_spacing_range))
        if plane == "sagittal":
            sp = (sp[0], ap)
        elif plane == "axial":
            sp = (ap, sp[1])
    jit = float(np.exp(rng.uniform(-0.22, 0.22)))
    aniso = float(np.exp(rng.uniform(-0.05, 0.05)))
    sp = (sp[0] * jit * aniso, sp[1] * jit / aniso)
    # quantisation of the stored picture
    src = img.astype(np.float32)
    if rng.random() < 0.5:
        levels = float(rng.choice([16.0, 32.0, 64.0, 128.0]))
        src = (np.round(src / 255.0 * levels) / levels).astype(np.float32)
    x = model_input(src, sp)
    x = augment_intensity(rng, x)
    return Sample(x, PLANES.index(plane), pic.sequence, cerv)


class _Samples(common.SeededSamples):
    """Training samples: a kind of source drawn by ``cfg.source_weights``, then one of its pictures (see
    :class:`~openspine.training.common.SeededSamples`)."""

    def __init__(self, pictures: list[Picture], cfg: TrainConfig, length: int) -> None:
        super().__init__([p.kind for p in pictures], cfg.source_weights, cfg.seed, length)
        self.pictures = pictures
        self.cfg = cfg

    def __getitem__(self, i: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        j, rng = self.draw(i)
        s = render(self.pictures[j], rng, widen_p=self.cfg.widen_p)
        return s.image[None], np.array([s.plane, s.sequence, s.cervical], dtype=np.int64)


# --- network ---------------------------------------------------------------------------------------------------------
def build_network(widths: tuple[int, ...] = TrainConfig.widths, outputs: int = 7) -> Any:
    """(N, 1, 128, 128) → raw logits (N, ``outputs``): for the recogniser plane (3), sequence (3), cervical (1).

    Five stride-2 stages (a strided 3×3 conv, then a 3×3 conv from the third stage on), global average and max
    pooling, one linear layer per head.
    """
    torch = import_optional("torch", "training the recogniser")
    nn = torch.nn

    def cbr(cin: int, cout: int, stride: int = 1) -> Any:
        return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    class RecognizerNet(nn.Module):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            layers: list[Any] = []
            cin = 1
            for i, w in enumerate(widths):
                layers += cbr(cin, w, 2)
                if i > 1:  # the 32 × 32 stage has one conv only (the cost on CPU is there)
                    layers += cbr(w, w)
                cin = w
            self.features = nn.Sequential(*layers)
            self.drop = nn.Dropout(0.2)
            self.head = nn.Linear(2 * cin, outputs)

        def forward(self, x: Any) -> Any:
            h = self.features(x)
            pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
            return self.head(self.drop(pooled))

    return RecognizerNet()


def export_wrapper(net: Any) -> Any:
    """The network as shipped: softmax plane and sequence probabilities, sigmoid cervical probability."""
    torch = import_optional("torch", "exporting the recogniser")

    def head(raw: Any) -> Any:
        return torch.softmax(raw[:, 0:3], dim=1), torch.softmax(raw[:, 3:6], dim=1), torch.sigmoid(raw[:, 6])

    return common.shipped_wrapper(torch, net, head)


def recognizer_loss(raw: Any, target: Any) -> tuple[Any, dict[str, float]]:
    """Cross-entropy for plane and sequence, BCE for cervical; targets of -1 are ignored."""
    torch = import_optional("torch", "training the recogniser")
    F = torch.nn.functional
    zero = raw.sum() * 0.0
    l_plane = F.cross_entropy(raw[:, 0:3], target[:, 0], ignore_index=IGNORE, label_smoothing=0.02)
    seq_ok = target[:, 1] != IGNORE
    l_seq = F.cross_entropy(raw[seq_ok, 3:6], target[seq_ok, 1], label_smoothing=0.02) if seq_ok.any() else zero
    c_ok = target[:, 2] != IGNORE
    l_cerv = F.binary_cross_entropy_with_logits(raw[c_ok, 6], target[c_ok, 2].float()) if c_ok.any() else zero
    total = l_plane + l_seq + l_cerv
    parts = {"plane": l_plane, "sequence": l_seq, "cervical": l_cerv}
    return total, {k: float(v.detach()) for k, v in parts.items()}


# --- training --------------------------------------------------------------------------------------------------------
def train(
    pictures: list[Picture],
    out: Path,
    cfg: TrainConfig,
    threads: int = 2,
    workers: int = 0,
    data_source: str = "",
    command: str = "",
) -> Path:
    """Train on ``pictures`` (train split) and write the model folder ``out``; returns ``out``."""
    torch = common.start_run(out, threads, cfg.seed, "training the recogniser")
    net = build_network(cfg.widths).to(memory_format=torch.channels_last)  # ~10 % faster on CPU
    n_params = sum(p.numel() for p in net.parameters())
    log.info("network: %d parameters; %d training pictures", n_params, len(pictures))
    steps = max(1, cfg.epochs * cfg.samples_per_epoch // cfg.batch_size)
    ds = _Samples(pictures, cfg, steps * cfg.batch_size)
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, shuffle=False, num_workers=workers)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = common.lr_schedule(torch, opt, cfg.lr, steps, pct_start=0.1)
    net.train()
    running: dict[str, float] = {}
    history: list[dict[str, float]] = []
    spe = max(1, cfg.samples_per_epoch // cfg.batch_size)
    t0 = time.perf_counter()
    for step, (x, y) in enumerate(loader, start=1):
        raw = net(x.to(memory_format=torch.channels_last))
        loss, parts = recognizer_loss(raw, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        parts["total"] = float(loss.detach())
        for k, v in parts.items():
            running[k] = 0.95 * running.get(k, v) + 0.05 * v
        if step % spe == 0 or step == steps:
            rec = {"epoch": round(step / spe, 2), "seconds": round(time.perf_counter() - t0, 1), **running}
            history.append(rec)
            log.info(
                "epoch %.0f/%d (%.0f s) %s",
                step / spe,
                cfg.epochs,
                rec["seconds"],
                " ".join(f"{k}={v:.4f}" for k, v in running.items()),
            )
    train_s = time.perf_counter() - t0
    net = net.eval().to(memory_format=torch.contiguous_format)
    counts: dict[str, int] = {}
    for p in pictures:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    meta = common.finish_run(
        torch, net, out, cfg.to_dict(), history, running,
        run={"train_seconds": round(train_s, 1), "device": "cpu", "threads": threads, "command": command},
        data={"pictures": sorted(p.id for p in pictures), "picture_counts": counts, "data_source": data_source},
    )  # fmt: skip
    export_model(net, out, cfg, meta)
    log.info("trained in %.0f s; model folder: %s", train_s, out)
    return out


def export_model(net: Any, out: Path, cfg: TrainConfig, meta: dict[str, Any]) -> Path:
    """Export ``net`` to ``out/model.onnx`` and write ``out/card.json`` (keeps metrics of identical weights)."""
    torch = import_optional("torch", "exporting the recogniser")
    wrapper = export_wrapper(net).eval()
    dummy = torch.zeros(2, 1, MODEL_SIZE, MODEL_SIZE)
    kwargs: dict[str, Any] = {
        "input_names": ["image"],
        "output_names": ["plane", "sequence", "cervical"],
        "dynamic_axes": {"image": {0: "n"}, "plane": {0: "n"}, "sequence": {0: "n"}, "cervical": {0: "n"}},
        "opset_version": 17,
    }
    return common.export_with_card(
        wrapper, dummy, out, kwargs, lambda sha256, size: model_card(cfg, meta, sha256, size)
    )


def input_card(layout: str) -> dict[str, Any]:
    """The card's ``input`` entry of a network that reads :func:`~openspine.recognition.image.model_input`."""
    return {
        "name": "image",
        "shape": f"(N, 1, {MODEL_SIZE}, {MODEL_SIZE})",
        "spacing_mm": MODEL_SPACING_MM,
        "size": MODEL_SIZE,
        "layout": layout,
        "normalisation": "0.5 / 99.5 percentiles of the pixels the picture covers → 0 / 1, clipped; padding 0",
    }


def model_card(cfg: TrainConfig, meta: dict[str, Any], sha256: str, size: int) -> dict[str, Any]:
    """The card of a recogniser model folder (see :mod:`openspine.models`)."""
    task = "what a 2D spine MRI picture shows: imaging plane, sequence (contrast), cervical field of view"
    return {
        **common.card_head(MODEL_NAME, MODEL_VERSION, task, sha256, size),
        "architecture": {
            "type": "tiny 2D CNN: five stride-2 conv stages, global mean + max pooling, one linear layer, three heads",
            "widths": list(cfg.widths),
            "parameters": meta.get("parameters"),
            "framework": "PyTorch (training) → ONNX opset 17 (inference with onnxruntime)",
        },
        "input": input_card(
            "one 2D picture as displayed; for a sagittal scan rows superior→inferior, columns anterior→posterior. "
            "Resampled (linear, anti-aliased) to square pixels, centred, cropped / zero-padded"
        ),
        "outputs": {
            "plane": {"shape": "(N, 3)", "classes": list(PLANES), "activation": "softmax"},
            "sequence": {"shape": "(N, 3)", "classes": list(SEQUENCES), "activation": "softmax"},
            "cervical": {"shape": "(N,)", "meaning": "probability that the picture shows the cervical spine"},
        },
        "classes": {"plane": list(PLANES), "sequence": list(SEQUENCES), "cervical": ["no", "yes"]},
        "training_data": {
            "source": "openspine shared development set, split == 'train' only",
            "pictures": meta.get("picture_counts", {}),
            "ids": meta.get("pictures", []),
            "excluded": list(cfg.exclude),
            "citations": "cite each source as its index.csv citation_key column says (SPIDER, the FastCleverSeg "
            "subsets, the Spinal Cord Toolbox data; see the data README)",
            "labels_used": {
                "plane": "SPIDER slices = sagittal; volumes cut along their three axes (FastCleverSeg in the stored "
                "[S→I, A→P, L→R] layout, SCT via nibabel.as_closest_canonical)",
                "sequence": "SPIDER image = T2, SPIDER t1 = T1, FastCleverSeg VB2 / IVD = T2, VB3 (water-fat GRE) = "
                "other, VB1 = unknown (sequence loss masked), SCT T2 / T1 as named",
                "cervical": "sct-testing-t2 / -t1 crops = cervical; sct-example-t2: crops centred above C7 = "
                "cervical, crops entirely below C7 = not (C7 interpolated between the cord labels C3 and T4; "
                "crops in between masked); everything lumbar / thoraco-lumbar = not cervical",
            },
            "augmentation": "field-of-view crops, anterior/posterior mirroring (and left/right in axial / coronal), "
            "pixel-size jitter ×0.8–1.25, sct-example-t2 A→P pixel size drawn in 0.5–1.0 mm (its stored 1 mm "
            "looks stretched), quantisation to 16–128 grey levels, gamma, blur, Gaussian noise",
        },
        "training": common.training_record(cfg.to_dict(), meta, leave_out=("pictures", "picture_counts")),
        "metrics": {"note": "not evaluated yet: run 'openspine evaluate recognition --model DIR --split val --card'"},
        "scope": RECOGNIZER_SCOPE,
        "intended_use": "research; lets the analysis refuse or flag pictures it was not built for (non-sagittal, "
        "non-T2 for the grader, cervical); not a medical device",
        "limitations": [
            "cervical positives come from two patients only (one whole neck, one pair of small crops): leave-one-"
            "patient-out (see metrics) shows the cervical head does not generalise to a new patient; a low "
            "cervical_probability does not mean the picture is lumbar",
            "T1 training pictures are sagittal lumbar SPIDER slices (plus one small cervical T1 crop): T1 in other "
            "planes or regions is barely represented",
            "no STIR, PD, FLAIR or diffusion pictures: 'other' was learned from water-fat GRE only",
            "axial and coronal pictures are cut from volumes interpolated from thick sagittal slices, not native "
            "axial / coronal acquisitions",
        ],
    }


def train_recognizer(
    data: Path,
    out: Path,
    epochs: int = TrainConfig.epochs,
    seed: int = 0,
    samples_per_epoch: int = TrainConfig.samples_per_epoch,
    exclude: tuple[str, ...] = (),
    threads: int = 2,
    workers: int = 0,
    command: str = "train_recognizer()",
    widen_p: float = TrainConfig.widen_p,
) -> Path:
    """Train the recogniser on the train split of the shared data folder ``data`` (leaving out the items
    ``exclude``); returns the model folder ``out``.

    Raises:
        ConfigError: ``epochs`` or ``samples_per_epoch`` below 1.
        MissingDependencyError: torch, onnx or onnxscript (openspine[train]) is not installed.
    """
    if epochs < 1 or samples_per_epoch < 1:
        raise ConfigError("--epochs and --samples-per-epoch must be ≥ 1")
    if not 0.0 <= widen_p <= 1.0:
        raise ConfigError(f"--widen must be a share between 0 and 1, got {widen_p}")
    require_optional(TRAIN_MODULES, "openspine train recognizer")  # before training: the ONNX export at its end too
    cfg = TrainConfig(
        epochs=epochs, samples_per_epoch=samples_per_epoch, seed=seed, exclude=tuple(exclude), widen_p=widen_p
    )
    out = common.check_run_paths(data, out)
    with log_file(out / "train.log", common.LOG_FORMAT):
        t0 = time.perf_counter()
        pictures = load_pictures(Path(data), "train", cfg.exclude)
        log.info("read %d training pictures in %.1f s", len(pictures), time.perf_counter() - t0)
        return train(
            pictures,
            out,
            cfg,
            threads=threads,
            workers=workers,
            data_source=f"{data} (split=train)",
            command=command,
        )


# --- command line ----------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "openspine train recognizer",
        "Train the picture recogniser (plane, sequence, cervical) on the train split of the shared data "
        "set and write an openspine model folder (model.onnx + card.json).",
        _EPILOG,
    )
    p.add_argument("--data", type=Path, required=True, help="the shared data folder (with index.csv)")
    p.add_argument("--out", type=Path, required=True, help="output model folder")
    common.add_version_option(p, MODEL_NAME, MODEL_VERSION)
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs, help="epochs of --samples-per-epoch samples")
    p.add_argument("--samples-per-epoch", type=int, default=TrainConfig.samples_per_epoch)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=0, help="data-loader worker processes (0 = in the main process)")
    p.add_argument("--exclude", nargs="*", default=[], help="item ids to leave out (leave-one-patient-out runs)")
    p.add_argument(
        "--widen",
        type=float,
        default=TrainConfig.widen_p,
        metavar="P",
        help="share of samples whose content is reflected sideways to a random width (axial and coronal cuts of the "
        "shared volumes are narrow strips; real ones are not)",
    )
    return p


def cli_main(argv: list[str], quiet: bool = False) -> int:
    """``openspine train recognizer ARGS``."""
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    train_recognizer(
        args.data,
        args.out,
        args.epochs,
        args.seed,
        args.samples_per_epoch,
        tuple(args.exclude),
        args.threads,
        args.workers,
        "openspine train recognizer " + " ".join(argv),
        args.widen,
    )
    common.set_card_version(args.out, args.version)
    if not quiet:
        print(f"model written to {args.out} (model.onnx, card.json, checkpoint.pt, train.log) "
              f"in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    return 0


def main() -> None:  # pragma: no cover - for `python -m openspine.training.recognizer`
    common.module_main(cli_main)


if __name__ == "__main__":  # pragma: no cover
    main()
