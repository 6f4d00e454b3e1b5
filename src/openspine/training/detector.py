"""Train the vertebra detection + labelling network and export it as an openspine model folder.

``openspine train detector --data ../shared/data --out DIR`` reproduces the built-in detector: it reads the
``train`` split only, trains with a fixed seed, writes ``DIR/model.onnx``, ``DIR/card.json``, ``DIR/checkpoint.pt``
and ``DIR/train.log``. Evaluate the result with ``openspine evaluate detection --model DIR``.

The network (:func:`build_network`) is a small U-Net-like CNN on one sagittal slice resampled to 1.25 mm pixels.
Its four output maps at stride 2 are the vertebral-body mask, the body-centre heat-map, the disc-centre heat-map
and the level (ordinal: C1 = 1 … L5 = 24, S1 = 25; a disc = upper + 0.5). See ``docs/detection.md``.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._command_parser import command_parser
from .._logging import get_logger, log_file
from .._optional import TRAIN_MODULES, import_optional, require_optional
from ..errors import ConfigError
from . import common
from .datasets.volumes import (
    SampleConfig,
    TrainVolume,
    add_sacrum_pseudo_labels,
    build_cache,
    cache_source,
    load_cache,
    prepare_volume,
    pseudo_label_spider,
    render_sample,
    save_cache,
)
from .onnx_weights import freeze_batch_norm, load_folded_onnx, model_reference, onnx_path

log = get_logger("training.detector")

MODEL_NAME = "detector"
MODEL_VERSION = "1.1.0"
LEVEL_CENTRE, LEVEL_SCALE = 22.0, 4.0  # raw level output r ↦ ordinal 22 + 4 r (keeps the regression target ~[-1, 1])
OUTPUT_CHANNELS = ("body_probability", "body_centre_heatmap", "disc_centre_heatmap", "level_ordinal")
# how often each subset is drawn: the two known-level body sets dominate, the disc-only IVD set teaches L5-S1
SUBSET_WEIGHTS = {"VB2": 0.32, "VB3": 0.28, "VB1": 0.22, "IVD": 0.18, "SPIDER": 0.3, "SPIDER-T1": 0.15}

_EPILOG = """examples:
  openspine train detector --data ../shared/data --out runs/detector              # the built-in recipe
  openspine train detector --data ../shared/data --out runs/quick --epochs 1 --samples-per-epoch 16  # smoke test
  openspine train detector --cache .devicedata/train --out runs/gpu --device cuda --workers 14
  openspine train detector --data ../shared/data --write-cache .devicedata/train --epochs 0 --out runs/none
  openspine train detector --data ../shared/data --out runs/det --time-limit 170           # stops at an epoch end
  openspine train detector --data ../shared/data --out runs/det --time-limit 170 --resume  # … and goes on

Only split == "train" items are read. Outputs: DIR/model.onnx, DIR/card.json (metrics are added by
'openspine evaluate detection --model DIR --split val --card'), DIR/checkpoint.pt, DIR/train.log.
"""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (saved in the card and the checkpoint)."""

    epochs: int = 60
    samples_per_epoch: int = 2048
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    widths: tuple[int, ...] = (16, 24, 48, 64, 96, 128)
    decoder_widths: tuple[int, ...] = (32, 32, 48, 64)
    sample: SampleConfig = field(default_factory=SampleConfig)
    loss_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 4.0)  # body, body heat, disc heat, level
    frozen_batch_norm: bool = False  # set when starting from a shipped (ONNX) model: see training.onnx_weights
    # > 0: train the level only; the body and heat-map outputs learn to stay what the --init model gives (the squared
    # difference of their logits, times this weight), so the geometry a grader was fitted on does not move
    keep_geometry: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"], d["decoder_widths"] = list(self.widths), list(self.decoder_widths)
        return d


# --- network -----------------------------------------------------------------------------------------------------
# What the trained model may answer (see openspine.scope): the training volumes' sequences and labelled levels.
DETECTOR_SCOPE = {
    "modalities": ["MR"],
    "sequences": ["T1", "T2", "STIR", "other"],
    "planes": ["sagittal"],
    "regions": ["thoracic", "lumbar", "sacral"],
    "levels": ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"],
    "basis": "trained on FastCleverSeg lumbar/thoraco-lumbar volumes (T2 TSE/FSE, water-fat GRE, mixed T1/T2/TIRM) "
    "with bodies labelled T11-L5, and (since version 1.1) on SPIDER train T2 and T1 mid-sagittal slices labelled "
    "T12-S1 by the earlier detector; S1 found as the body below L5 and validated through the SPIDER L5-S1 discs; "
    "no cervical or upper-thoracic training data",
}


def build_network(
    widths: tuple[int, ...] = (16, 24, 48, 64, 96, 128), decoder_widths: tuple[int, ...] = (32, 32, 48, 64)
) -> Any:
    """The detector CNN: (N, 1, H, W) → raw (N, 4, H/2, W/2); H and W must be multiples of 32.

    Encoder: a full-resolution stem, then five stride-2 stages (stride 2 … 32, receptive field > 250 mm so the
    level head sees from the thoraco-lumbar junction to the sacrum). Decoder: FPN-style (upsample + 1×1 lateral
    projection, added, then a 3×3 conv) back to stride 2, which keeps the cost low on CPU.
    """
    torch = import_optional("torch", "training the detector")
    nn = torch.nn

    def cbr(cin: int, cout: int, stride: int = 1) -> Any:
        return common.conv_bn_relu(torch, cin, cout, stride)

    class DetectorNet(nn.Module):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            w = widths
            self.stem = cbr(1, w[0])
            self.enc = nn.ModuleList(
                [nn.Sequential(cbr(w[i], w[i + 1], 2), cbr(w[i + 1], w[i + 1])) for i in range(len(w) - 1)]
            )
            # decoder levels: stride 2, 4, 8, 16 (the encoder outputs enc[0] … enc[3]); the top is enc[-1]
            d = decoder_widths
            n = len(d)
            self.lateral = nn.ModuleList([nn.Conv2d(w[i + 1], d[i], 1) for i in range(n)])
            self.topdown = nn.ModuleList([nn.Conv2d(d[i + 1] if i + 1 < n else w[-1], d[i], 1) for i in range(n)])
            self.smooth = nn.ModuleList([cbr(d[i], d[i]) for i in range(n)])
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.head = nn.Sequential(cbr(d[0], d[0]), nn.Conv2d(d[0], 4, 1))
            with torch.no_grad():
                self.head[-1].bias.zero_()
                self.head[-1].bias[1:3] = -2.19  # heat-maps start at p ≈ 0.1 (focal-loss prior)

        def forward(self, x: Any) -> Any:
            feats = []
            h = self.stem(x)
            for m in self.enc:
                h = m(h)
                feats.append(h)
            top = feats[-1]
            for i in reversed(range(len(self.smooth))):
                top = self.smooth[i](self.lateral[i](feats[i]) + self.topdown[i](self.up(top)))
            return self.head(top)

    return DetectorNet()


def export_wrapper(net: Any) -> Any:
    """The network as shipped: sigmoid on the probability / heat-map channels, the level as an ordinal."""
    torch = import_optional("torch", "exporting the detector")

    def head(raw: Any) -> Any:
        probs = torch.sigmoid(raw[:, 0:3])
        level = raw[:, 3:4] * LEVEL_SCALE + LEVEL_CENTRE
        return torch.cat([probs, level], dim=1)

    return common.shipped_wrapper(torch, net, head)


# --- data ---------------------------------------------------------------------------------------------------------
class _Samples(common.SeededSamples):
    """Training tiles: a subset drawn by :data:`SUBSET_WEIGHTS`, then one of its volumes (see
    :class:`~openspine.training.common.SeededSamples`)."""

    def __init__(self, volumes: list[TrainVolume], cfg: TrainConfig, length: int) -> None:
        super().__init__([v.subset for v in volumes], SUBSET_WEIGHTS, cfg.seed, length)
        self.volumes = volumes
        self.cfg = cfg

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        j, rng = self.draw(i)
        s = render_sample(self.volumes[j], rng, self.cfg.sample)
        return (
            s["image"][None],
            np.stack([s["body"], s["bheat"], s["dheat"], s["level"]]),
            np.stack([s["body_w"], s["bheat_w"], s["dheat_w"], s["level_w"]]),
        )


# --- loss ---------------------------------------------------------------------------------------------------------
def detector_loss(raw: Any, target: Any, weight: Any, loss_weights: tuple[float, ...]) -> tuple[Any, dict[str, float]]:
    """Masked losses: BCE + soft Dice for the body mask, CenterNet focal loss for the two heat-maps, smooth-L1 for
    the level. Pixels of weight 0 (unlabelled structures, unsupervised regions) contribute nothing."""
    torch = import_optional("torch", "training the detector")
    F = torch.nn.functional
    eps = 1e-6
    # body mask
    wb, tb = weight[:, 0], target[:, 0]
    bce = F.binary_cross_entropy_with_logits(raw[:, 0], tb, reduction="none")
    l_bce = (bce * wb).sum() / wb.sum().clamp_min(1.0)
    p = torch.sigmoid(raw[:, 0])
    inter = (p * tb * wb).sum()
    l_dice = 1.0 - (2 * inter + 1.0) / ((p * wb).sum() + (tb * wb).sum() + 1.0)
    l_body = l_bce + l_dice
    # heat-maps (focal loss normalised by the number of centres)
    heat_losses = []
    for c in (1, 2):
        t, w = target[:, c], weight[:, c]
        q = torch.sigmoid(raw[:, c]).clamp(eps, 1 - eps)
        pos = (t >= 1.0).float()
        lp = -torch.log(q) * (1 - q) ** 2 * pos
        ln = -torch.log(1 - q) * q**2 * (1 - t) ** 4 * (1 - pos)
        heat_losses.append(((lp + ln) * w).sum() / (pos * w).sum().clamp_min(1.0))
    # level
    wl = weight[:, 3]
    tl = (target[:, 3] - LEVEL_CENTRE) / LEVEL_SCALE
    sl1 = F.smooth_l1_loss(raw[:, 3], tl, beta=0.05, reduction="none")
    l_level = (sl1 * wl).sum() / wl.sum().clamp_min(1.0)
    parts = [l_body, heat_losses[0], heat_losses[1], l_level]
    total = sum(lw * x for lw, x in zip(loss_weights, parts))
    names = ("body", "bheat", "dheat", "level")
    return total, {n: float(x.detach()) for n, x in zip(names, parts)}


def geometry_anchor_loss(raw: Any, reference_raw: Any) -> Any:
    """The mean squared difference between the body-mask and heat-map logits (channels 0-2) of ``raw`` and of a
    reference network's output on the same tiles: what keeps a level-only fine-tune's geometry where it was."""
    torch = import_optional("torch", "training the detector")
    return torch.nn.functional.mse_loss(raw[:, :3], reference_raw[:, :3])


def level_only(weight: Any) -> Any:
    """The loss weights with the body-mask and heat-map channels switched off (the level channel kept)."""
    w = weight.clone()
    w[:, :3] = 0.0
    return w


# --- training -----------------------------------------------------------------------------------------------------
def _worker_init(_: int) -> None:
    import torch

    torch.set_num_threads(1)


def train(
    volumes: list[TrainVolume],
    out: Path,
    cfg: TrainConfig,
    device: str = "cpu",
    workers: int = 0,
    threads: int = 2,
    progress: bool = True,
    data_source: str = "",
    checkpoint_every: int = 1,
    init: Path | None = None,
    command: str = "",
    resume: bool = False,
    time_limit_s: float | None = None,
    version: str = MODEL_VERSION,
) -> Path | None:
    """Train on ``volumes`` (train split) and write the model folder ``out``; returns ``out``.

    Every ``checkpoint_every`` epochs ``out/checkpoint.pt`` records the whole state of the run (weights, optimiser,
    schedule, step). ``resume`` continues from it; since every tile is drawn from its own seeded RNG, a resumed run
    trains on the same tiles in the same order as one that was never stopped. With ``time_limit_s`` the run stops at
    the first checkpoint after that many seconds and returns None (nothing exported yet): resume it later, e.g. in
    the next job of a cluster queue with a wall-time limit.
    """
    torch = common.start_run(out, threads, cfg.seed, "training the detector")
    from tqdm import tqdm

    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu")
    dev = torch.device(device)
    t0 = time.perf_counter()
    for v in volumes:
        if not v.slices:
            prepare_volume(v)
    log.info("prepared %d training volumes in %.1f s", len(volumes), time.perf_counter() - t0)

    net = build_network(cfg.widths, cfg.decoder_widths)
    saved = _resumable(torch, out / "checkpoint.pt", cfg, volumes) if resume else None
    if saved is not None:  # a run started from a shipped model resumes with its batch norms still frozen
        cfg = replace(cfg, frozen_batch_norm=bool(saved["config"].get("frozen_batch_norm", False)))
    if init is not None:  # a stage-1 checkpoint, or a shipped model folder / ONNX file (fine-tuning)
        shipped = onnx_path(init)
        if shipped is not None:
            n = load_folded_onnx(torch, net, shipped)
            log.info("initialised from %s (%d convolutions; batch norms frozen)", shipped, n)
        else:
            state = torch.load(init, map_location="cpu", weights_only=True)
            net.load_state_dict(state.get("state_dict", state))
            log.info("initialised from %s", init)
    if saved is not None:
        net.load_state_dict(saved["state_dict"])
    # channels-last convolutions ran 1.8x faster on CPU (a 32-tile step, 2 cores, measured); GPU runs are data-bound
    net = net.to(dev, memory_format=torch.channels_last)
    reference = None
    if cfg.keep_geometry > 0:  # the starting network, frozen: its geometry outputs are the targets
        reference = copy.deepcopy(net).eval()
        for prm in reference.parameters():
            prm.requires_grad_(False)
    n_params = sum(p.numel() for p in net.parameters())
    log.info("network: %d parameters", n_params)
    total = cfg.epochs * cfg.samples_per_epoch
    steps = max(1, total // cfg.batch_size)
    start = int(saved["step"]) if saved is not None else 0
    ds = _Samples(volumes, cfg, steps * cfg.batch_size)
    todo = torch.utils.data.Subset(ds, range(start * cfg.batch_size, steps * cfg.batch_size))  # tiles not yet seen
    loader = torch.utils.data.DataLoader(
        todo,
        batch_size=cfg.batch_size,
        shuffle=False,
        num_workers=workers,
        worker_init_fn=_worker_init if workers else None,
        pin_memory=device == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = common.lr_schedule(torch, opt, cfg.lr, steps, pct_start=max(0.05, 2.0 / steps))
    history: list[dict[str, float]] = []
    running: dict[str, float] = {}
    seconds_before = 0.0
    if saved is not None:
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        history, running, seconds_before = list(saved["history"]), dict(saved["running"]), saved["train_seconds"]
        log.info("resumed at step %d of %d", start, steps)
    net.train()
    if cfg.frozen_batch_norm:
        freeze_batch_norm(torch, net)
    bar = tqdm(
        total=steps, initial=start, desc="train detector", unit="batch", disable=not progress, dynamic_ncols=True
    )
    t_train = time.perf_counter()
    for step, (x, y, w) in enumerate(loader, start=start + 1):
        x = x.to(dev, non_blocking=True, memory_format=torch.channels_last)
        y, w = y.to(dev, non_blocking=True), w.to(dev, non_blocking=True)
        raw = net(x)
        if reference is None:
            loss, parts = detector_loss(raw, y, w, cfg.loss_weights)
        else:
            loss, parts = detector_loss(raw, y, level_only(w), cfg.loss_weights)
            with torch.no_grad():
                reference_raw = reference(x)
            anchor = geometry_anchor_loss(raw, reference_raw)
            loss = loss + cfg.keep_geometry * anchor
            parts["anchor"] = float(anchor.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        sched.step()
        parts["total"] = float(loss.detach())
        for k, val in parts.items():
            running[k] = 0.98 * running.get(k, val) + 0.02 * val
        bar.update(1)
        if step % 20 == 0 or step == steps:
            bar.set_postfix({k: f"{v:.3f}" for k, v in running.items()})
        spe = max(1, cfg.samples_per_epoch // cfg.batch_size)
        if step % spe == 0 or step == steps:
            rec = {"step": step, "epoch": step / spe, "lr": float(sched.get_last_lr()[0]), **running}
            history.append(rec)
            log.info("epoch %.0f/%d %s", rec["epoch"], cfg.epochs, " ".join(f"{k}={v:.4f}" for k, v in running.items()))
            if step < steps and checkpoint_every and (step // spe) % checkpoint_every == 0:
                progress_state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "history": history}
                elapsed = seconds_before + time.perf_counter() - t_train
                _save_checkpoint(torch, out, net, cfg, volumes, step, progress_state, running, elapsed)
                if time_limit_s is not None and time.perf_counter() - t_train >= time_limit_s:
                    bar.close()
                    log.info("stopped at step %d of %d (time limit); continue with --resume", step, steps)
                    return None
    bar.close()
    train_s = seconds_before + time.perf_counter() - t_train
    net = net.eval().cpu().to(memory_format=torch.contiguous_format)
    meta = common.finish_run(
        torch, net, out, cfg.to_dict(), history, running,
        run={"train_seconds": round(train_s, 1), "command": command,
             "device": device if device == "cpu" else torch.cuda.get_device_name(0)},
        data={"volumes": [v.id for v in volumes], "data_source": data_source,
              "init": model_reference(init) if init else None},
    )  # fmt: skip
    export_model(net, out, cfg, {**meta, "version": version})
    log.info("trained in %.0f s; model folder: %s", train_s, out)
    return out


def _save_checkpoint(
    torch: Any,
    out: Path,
    net: Any,
    cfg: TrainConfig,
    volumes: list[TrainVolume],
    step: int,
    progress_state: dict[str, Any],
    running: dict[str, float],
    seconds: float,
) -> None:
    """Write the run's whole state to ``out/checkpoint.pt`` (replaced in one step: a run killed while writing
    keeps the previous checkpoint)."""
    state = {
        "state_dict": net.state_dict(),
        "config": cfg.to_dict(),
        "step": step,
        "volumes": [v.id for v in volumes],
        "running": running,
        "train_seconds": seconds,
        **progress_state,
    }
    tmp = out / ".checkpoint.pt.part"
    torch.save(state, tmp)
    os.replace(tmp, out / "checkpoint.pt")


def _resumable(torch: Any, path: Path, cfg: TrainConfig, volumes: list[TrainVolume]) -> dict[str, Any]:
    """The state saved in ``path`` by an unfinished run with this configuration and these volumes."""
    if not path.is_file():
        raise ConfigError(f"nothing to resume: {path} does not exist (start the run without --resume)")
    saved: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    if "optimizer" not in saved:
        raise ConfigError(f"nothing to resume: {path} is the checkpoint of a finished run")
    config = cfg.to_dict()
    # frozen_batch_norm follows from --init, which a resumed run does not repeat: taken from the checkpoint
    differ = sorted(k for k in config if k != "frozen_batch_norm" and saved.get("config", {}).get(k) != config[k])
    if differ:
        raise ConfigError(f"{path} was written with other options ({', '.join(differ)}): resume with the same ones")
    if saved.get("volumes") != [v.id for v in volumes]:
        raise ConfigError(f"{path} was trained on other volumes: resume with the same --data or --cache")
    return saved


def export_model(net: Any, out: Path, cfg: TrainConfig, meta: dict[str, Any]) -> Path:
    """Export ``net`` to ``out/model.onnx`` and write ``out/card.json``."""
    torch = import_optional("torch", "exporting the detector")
    wrapper = export_wrapper(net).eval()
    dummy = torch.zeros(2, 1, 128, 96)
    kwargs: dict[str, Any] = {
        "input_names": ["image"],
        "output_names": ["maps"],
        "dynamic_axes": {"image": {0: "n", 2: "h", 3: "w"}, "maps": {0: "n", 2: "h2", 3: "w2"}},
        "opset_version": 17,
    }
    return common.export_with_card(
        wrapper, dummy, out, kwargs, lambda sha256, size: model_card(cfg, meta, sha256, size)
    )


def model_card(cfg: TrainConfig, meta: dict[str, Any], sha256: str, size: int) -> dict[str, Any]:
    """The card of a detector model folder (see :mod:`openspine.models`)."""
    sc = cfg.sample
    task = "vertebral body detection and level labelling on sagittal spine MRI"
    return {
        **common.card_head(MODEL_NAME, meta.get("version", MODEL_VERSION), task, sha256, size),
        "architecture": {
            "type": "2D U-Net-like CNN (FPN-style decoder), one sagittal slice in, four maps out at stride 2",
            "encoder_widths": list(cfg.widths),
            "decoder_widths": list(cfg.decoder_widths),
            "parameters": meta.get("parameters"),
            "framework": "PyTorch (training) → ONNX opset 17 (inference with onnxruntime)",
        },
        "input": {
            "name": "image",
            "shape": "(N, 1, H, W), H and W multiples of 32",
            "spacing_mm": sc.spacing,
            "size_multiple": 32,
            "layout": "one sagittal slice: rows superior→inferior, columns anterior→posterior",
            "normalisation": "per slice: 0.5 / 99.5 percentiles → 0 / 1, clipped to [0, 1]",
            "slab_mm": 3.0,
        },
        "outputs": {
            "name": "maps",
            "shape": "(N, 4, H/2, W/2)",
            "stride": sc.stride,
            "channels": list(OUTPUT_CHANNELS),
            "level_encoding": "ordinal: C1 = 1 … T12 = 19, L1 = 20 … L5 = 24, S1 = 25; a disc = upper vertebra + 0.5",
        },
        "classes": {
            "levels_trained": ["T11", "T12", "L1", "L2", "L3", "L4", "L5"],
            "levels_output": "C2 … S1 by sequence; reliable only T10 … S1 (see limitations)",
            "discs_trained": ["T11-T12", "T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"],
        },
        "decode": {
            "body_threshold": 0.5,
            "peak_threshold": 0.2,
            "peak_window_mm": 22.5,
            "min_area_mm2": 60.0,
            "group_distance_mm": 12.0,
            "min_group_score": 0.2,
        },
        "training_data": training_data_record(meta.get("volumes", []), meta.get("data_source", "")),
        "training": common.training_record(cfg.to_dict(), meta, leave_out=("volumes",)),
        "metrics": {"note": "not evaluated yet: run 'openspine evaluate detection --model DIR --split val --card'"},
        "scope": DETECTOR_SCOPE,
        "intended_use": "research; lumbar and lower thoracic sagittal MRI (T1, T2, water/fat); not a medical device",
        "limitations": _limitations(bool(_pseudo_ids(meta.get("volumes", [])))),
    }


def _limitations(pseudo: bool) -> list[str]:
    """The card's limitations; ``pseudo``: SPIDER slices pseudo-labelled by an earlier detector were trained on."""
    if not pseudo:
        sacrum = "the sacrum (S1) was never labelled: S1 is output only where the network finds a body below L5"
        levels = "levels were learned from 23 lumbar volumes"
    else:
        sacrum = (
            "the sacrum (S1) was never annotated: it was supervised only through S1 bodies an earlier detector found "
            "below the annotated L5 and on the pseudo-labelled SPIDER slices"
        )
        levels = (
            "levels were learned from 23 lumbar volumes with annotated levels and SPIDER slices labelled by an earlier "
            "detector (whose labelling errors it can inherit)"
        )
    return [
        "no cervical or upper-thoracic training masks: cervical vertebrae are not detected reliably",
        sacrum,
        levels + "; transitional anatomy is flagged, not resolved",
    ]


def _pseudo_ids(volume_ids: list[str]) -> list[str]:
    """The pseudo-labelled SPIDER slices among a run's training volumes (ids ``spider-<patient>[-t1]``)."""
    return [v for v in volume_ids if v.startswith("spider-")]


def training_data_record(volume_ids: list[str], data_source: str) -> dict[str, Any]:
    """The card's ``training_data``: what the run trained on, pseudo-labelled SPIDER slices named as such."""
    pseudo = _pseudo_ids(volume_ids)
    record: dict[str, Any] = {
        "source": "openspine shared development set (FastCleverSeg VB1, VB2, VB3, IVD), split == 'train' only",
        "volumes": volume_ids,
        "citations": ["ramos2024", "chu2015", "burian2019", "zukic2014", "menezesreis2016"],
        "labels_used": "VB2/VB3 body masks with levels, VB1 body masks (levels unknown: mask and centres only), "
        "IVD disc masks L1-L2 … L5-S1; unlabelled structures (e.g. the sacrum, T12 above a VB3 L1) are excluded "
        "from the loss",
    }
    if pseudo:
        n_t1 = sum(v.endswith("-t1") for v in pseudo)
        record["source"] += (
            f"; plus {len(pseudo)} SPIDER train slices ({len(pseudo) - n_t1} T2, {n_t1} T1) pseudo-labelled by an "
            f"earlier detector (only whole, unflagged L1-L2 … L5-S1 labellings kept); data: {data_source}"
        )
        record["citations"] = [*record["citations"], "vandergraaf2024"]
        record["labels_used"] += (
            "; the pseudo-labelled slices: the earlier detector's bodies (masks, centres, levels T12 … L5) and discs; "
            "S1 as that detector found it below the annotated L5 painted into VB2/VB3 volumes where found"
        )
    return record


# --- command line ---------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "openspine train detector",
        "Train the vertebra detection + labelling network on the train split of the shared data set "
        "and write an openspine model folder (model.onnx + card.json).",
        _EPILOG,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="the shared data folder (with index.csv)")
    src.add_argument("--cache", type=Path, help="a folder of cached training volumes (*.npz, see --write-cache)")
    p.add_argument("--out", type=Path, required=True, help="output model folder")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs, help="epochs of --samples-per-epoch tiles")
    p.add_argument("--samples-per-epoch", type=int, default=TrainConfig.samples_per_epoch)
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--workers", type=int, default=0, help="data-loader worker processes (0 = in the main process)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--write-cache", type=Path, default=None, help="also save the training volumes as .npz here")
    p.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from these weights: a checkpoint.pt, or a model folder / model.onnx (e.g. the built-in "
        "src/openspine/models/detector; its batch norms then stay frozen)",
    )
    p.add_argument(
        "--fov-crop",
        type=float,
        default=SampleConfig.p_fov,
        metavar="P",
        help="share of training tiles cut to a random smaller field of view (default %(default)s)",
    )
    p.add_argument(
        "--cut-below",
        type=float,
        default=SampleConfig.p_cut_below,
        metavar="P",
        help="share of training tiles whose field of view ends inside or just below a random vertebral body (no "
        "sacrum in view, the lowest body cut; default %(default)s)",
    )
    p.add_argument(
        "--keep-geometry",
        type=float,
        default=TrainConfig.keep_geometry,
        metavar="W",
        help="with --init: train the level only and keep the body and heat-map outputs what the --init model gives "
        "(weight W of their logits' squared difference; e.g. 10), so the disc geometry a grader was fitted on stays "
        "(default %(default)s: off)",
    )
    common.add_version_option(p, MODEL_NAME, MODEL_VERSION)
    p.add_argument(
        "--pseudo-labels",
        default=None,
        metavar="MODEL_DIR",
        help="stage 2 (self-training): add SPIDER train slices and sacrum (S1) masks labelled by this stage-1 "
        "detector (needs --data)",
    )
    p.add_argument(
        "--pseudo-t1",
        action="store_true",
        help="with --pseudo-labels: add the SPIDER train patients' T1 slices too (spider/t1.csv)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished run in --out from its last checkpoint (give the same options and data)",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="MINUTES",
        help="stop at the first epoch end after this many minutes, leaving a checkpoint for --resume",
    )
    return p


def train_detector(
    out: Path,
    config: TrainConfig | None = None,
    data: Path | None = None,
    cache: Path | None = None,
    init: Path | None = None,
    pseudo_labels: str | None = None,
    write_cache: Path | None = None,
    device: str = "cpu",
    workers: int = 0,
    threads: int = 2,
    quiet: bool = False,
    command: str = "openspine.training.detector.train_detector",
    resume: bool = False,
    time_limit_min: float | None = None,
    pseudo_t1: bool = False,
    version: str = MODEL_VERSION,
) -> Path | None:
    """``openspine train detector`` as a function: read the train split of ``data`` (or the volumes cached in
    ``cache``), train with ``config`` and write the model folder ``out``; returns it (``None`` for 0 epochs, which
    only writes ``write_cache``, and for a run stopped by ``time_limit_min``, which ``resume`` continues).

    Raises:
        ConfigError: the options, the inputs or the output folder are not usable.
        MissingDependencyError: the ``train`` extra is not installed.
    """
    cfg = config if config is not None else TrainConfig()
    if cfg.epochs < 0 or cfg.batch_size < 1 or cfg.samples_per_epoch < 1:
        raise ConfigError("--epochs must be ≥ 0, --batch-size and --samples-per-epoch ≥ 1")
    if cfg.epochs == 0 and write_cache is None:  # it had ended with exit status 0 and nothing written
        raise ConfigError("--epochs 0 trains nothing: it only writes a cache, so give --write-cache DIR with it")
    if (data is None) == (cache is None):
        raise ConfigError("give one of --data or --cache")
    # before reading data or training: the packages (the ONNX export at the end needs onnx and onnxscript),
    # the inputs and the output folder
    require_optional(TRAIN_MODULES if cfg.epochs > 0 else ("torch",), "openspine train detector")
    given_paths = (("--data", data), ("--cache", cache), ("--init", init))
    for name, given in (*given_paths, ("--pseudo-labels", pseudo_labels)):
        if given is not None and not Path(given).exists():
            raise ConfigError(f"{name} '{given}' does not exist")
    if pseudo_t1 and not pseudo_labels:
        raise ConfigError("--pseudo-t1 adds T1 slices to the pseudo-labelled ones: give --pseudo-labels MODEL_DIR too")
    if resume and init is not None:
        raise ConfigError("--resume continues a run from its own checkpoint; leave out --init")
    if resume and not (out / "checkpoint.pt").is_file():
        raise ConfigError(f"nothing to resume: {out / 'checkpoint.pt'} does not exist (start without --resume)")
    if time_limit_min is not None and time_limit_min < 0:
        raise ConfigError("--time-limit must be ≥ 0 minutes")
    if init is not None and onnx_path(init) is not None and not cfg.frozen_batch_norm:
        cfg = replace(cfg, frozen_batch_norm=True)  # the shipped file holds folded batch norms only
    if not 0.0 <= cfg.sample.p_fov <= 1.0:
        raise ConfigError("--fov-crop must be a share between 0 and 1")
    if not 0.0 <= cfg.sample.p_cut_below <= 1.0:
        raise ConfigError("--cut-below must be a share between 0 and 1")
    if cfg.keep_geometry < 0:
        raise ConfigError("--keep-geometry must be ≥ 0")
    if cfg.keep_geometry > 0 and (resume or time_limit_min is not None):
        raise ConfigError("a --keep-geometry run cannot be stopped and resumed: leave out --time-limit and --resume")
    if cfg.keep_geometry > 0 and init is None:
        raise ConfigError("--keep-geometry keeps the geometry of the --init model: give --init too")
    common.check_run_paths(data, out)
    with log_file(out / "train.log", common.LOG_FORMAT, append=resume):
        log.info("%s", command)
        if data is not None:
            volumes = build_cache(data, split="train")
            source = f"{data} (split=train)"
            if pseudo_labels:
                n_s1 = add_sacrum_pseudo_labels(volumes, data, pseudo_labels)
                spider = pseudo_label_spider(data, pseudo_labels, split="train", t1=pseudo_t1)
                volumes = volumes + spider
                labeller = model_reference(Path(pseudo_labels))
                source += f"; pseudo-labels by {labeller}: S1 in {n_s1} volumes, {len(spider)} SPIDER slices"
        else:
            assert cache is not None
            volumes = load_cache(cache)
            written_from = cache_source(cache)
            source = f"cache {cache}" + (f" ({written_from})" if written_from else "")
            if pseudo_labels:
                raise ConfigError("--pseudo-labels needs --data (a cache written with it already holds them)")
        if write_cache is not None:
            save_cache(volumes, write_cache, source)
            log.info("wrote %d cached volumes to %s", len(volumes), write_cache)
        if cfg.epochs == 0:
            return None
        return train(
            volumes,
            out,
            cfg,
            device,
            workers,
            threads,
            progress=not quiet,
            data_source=source,
            init=init,
            command=command,
            resume=resume,
            time_limit_s=None if time_limit_min is None else 60.0 * time_limit_min,
            version=version,
        )


def cli_main(argv: list[str], quiet: bool = False) -> int:
    """``openspine train detector ARGS``."""
    args = build_parser().parse_args(argv)
    sample = SampleConfig(p_fov=args.fov_crop, p_cut_below=args.cut_below)
    cfg = common.options_from(TrainConfig, args, sample=sample)  # epochs, samples per epoch, batch size, lr, seed
    folder = train_detector(
        args.out,
        cfg,
        args.data,
        args.cache,
        args.init,
        args.pseudo_labels,
        args.write_cache,
        args.device,
        args.workers,
        args.threads,
        quiet,
        "openspine train detector " + " ".join(argv),
        args.resume,
        args.time_limit,
        args.pseudo_t1,
        args.version,
    )
    if not quiet and folder is not None:
        print(f"model written to {args.out} (model.onnx, card.json, checkpoint.pt, train.log)")
    elif not quiet and args.epochs > 0:
        print(f"stopped at the time limit; continue with the same command and --resume ({args.out}/checkpoint.pt)")
    return 0


def main() -> None:  # pragma: no cover - for `python -m openspine.training.detector` on machines without the CLI
    common.module_main(cli_main)


if __name__ == "__main__":  # pragma: no cover
    main()
