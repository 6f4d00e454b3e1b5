"""The grader network and its training machinery (PyTorch; imported only when training or fine-tuning).

Network (``openspine.disc_cnn``): a small residual CNN over one disc crop (1 × 48 × 96). Four stages of basic
residual blocks halve the resolution each time; the last feature map is read twice – a 1×1-reduced, flattened map
(keeps *where* things are: a posterior bulge is not an anterior osteophyte) and a global average – and a linear
layer turns both into a 128-d embedding. Each grading is a linear head on that embedding. The backbone is shared,
so new heads are cheap to add and train (fine-tuning).

Weights are saved as ``weights.npz`` (plain arrays: no pickle, readable without torch) beside ``model.onnx``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional as F

from .._logging import get_logger
from ..errors import ConfigError, ModelError
from ..grading.crop import CropSpec, Jitter, disc_crop, slice_indices
from ..grading.heads import HeadSpec
from .datasets.discs import DiscSample

log = get_logger("training.grader_network")

ARCHITECTURE = "openspine.disc_cnn"


@dataclass(frozen=True)
class NetConfig:
    """Shape of the backbone; stored in the model card so the network can be rebuilt from the folder alone."""

    widths: tuple[int, ...] = (16, 32, 64, 128)
    blocks: tuple[int, ...] = (1, 1, 1, 1)
    reduce: int = 32
    embedding: int = 128
    dropout: float = 0.3
    in_channels: int = 1  # one crop per series the grader reads (2: T2 and T1, see openspine.grading.pair)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "widths": list(self.widths),
            "blocks": list(self.blocks),
            "reduce": self.reduce,
            "embedding": self.embedding,
            "dropout": self.dropout,
        }
        if self.in_channels != 1:  # one-channel cards stay as they were
            d["in_channels"] = self.in_channels
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NetConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ModelError(f"unknown network settings {sorted(unknown)} in the model card")
        kw = dict(d)
        for k in ("widths", "blocks"):
            if k in kw:
                kw[k] = tuple(int(x) for x in kw[k])
        return cls(**kw)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.skip(x))


class Backbone(nn.Module):
    """Crop (N, C, H, W) → embedding (N, E); C = ``config.in_channels``."""

    def __init__(self, config: NetConfig, height: int, width: int) -> None:
        super().__init__()
        w0 = config.widths[0]
        if config.in_channels < 1:
            raise ConfigError(f"the network needs at least one input channel, got {config.in_channels}")
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_channels, w0, 3, 1, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU(inplace=True)
        )
        layers: list[nn.Module] = []
        cin = w0
        for w, n in zip(config.widths, config.blocks):
            for b in range(n):
                layers.append(_Block(cin, w, 2 if b == 0 else 1))
                cin = w
        self.stages = nn.Sequential(*layers)
        s = 2 ** len(config.widths)
        if height % s or width % s:
            raise ConfigError(f"crop size {height}×{width} must be divisible by {s} for this network")
        self.reduce = nn.Sequential(
            nn.Conv2d(cin, config.reduce, 1, bias=False), nn.BatchNorm2d(config.reduce), nn.ReLU(inplace=True)
        )
        flat = config.reduce * (height // s) * (width // s) + cin
        self.fc = nn.Linear(flat, config.embedding)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.stages(self.stem(x))
        z = torch.cat([self.reduce(f).flatten(1), f.mean(dim=(2, 3))], dim=1)
        return self.drop(F.relu(self.fc(z)))


class DiscNet(nn.Module):
    """Backbone plus one linear head per grading."""

    def __init__(self, config: NetConfig, spec: CropSpec, heads: Sequence[HeadSpec]) -> None:
        super().__init__()
        self.config = config
        self.spec = spec
        self.head_specs = list(heads)
        self.backbone = Backbone(config, spec.height, spec.width)
        self.heads = nn.ModuleDict({h.name: nn.Linear(config.embedding, len(h.classes)) for h in heads})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        e = self.backbone(x)
        return e, {name: head(e) for name, head in self.heads.items()}


class _Export(nn.Module):
    """ONNX face of a DiscNet: outputs ``embedding`` and ``logits_<head>`` in head order."""

    def __init__(self, net: DiscNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        e, logits = self.net(x)
        return (e, *(logits[h.name] for h in self.net.head_specs))


# --- weights ----------------------------------------------------------------------------------------------------


def fresh_network(heads: Sequence[HeadSpec], seed: int) -> DiscNet:
    """A new grader network (default architecture and crop) whose initial weights are drawn after seeding torch."""
    torch.manual_seed(seed)
    return DiscNet(NetConfig(), CropSpec(), heads)


def state_arrays(net: nn.Module) -> dict[str, NDArray[Any]]:
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def save_weights(net: nn.Module, path: Path) -> None:
    np.savez_compressed(path, **state_arrays(net))  # type: ignore[arg-type]


def load_weights(net: nn.Module, path: Path, skip_prefixes: Sequence[str] = ()) -> list[str]:
    """Load ``weights.npz`` into ``net`` (entries under ``skip_prefixes`` are ignored); returns the keys loaded."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    own = net.state_dict()
    loaded = []
    for k, v in arrays.items():
        if any(k.startswith(p) for p in skip_prefixes) or k not in own:
            continue
        if tuple(own[k].shape) != v.shape:
            raise ModelError(f"weights '{k}' have shape {v.shape}, the network expects {tuple(own[k].shape)}")
        own[k] = torch.from_numpy(v)
        loaded.append(k)
    net.load_state_dict(own)
    return loaded


def export_onnx(net: DiscNet, path: Path) -> None:
    """Write the network as ONNX (input ``crops`` float32 (N, C, H, W); dynamic batch)."""
    net.eval()
    x = torch.zeros(2, net.config.in_channels, net.spec.height, net.spec.width)
    names = ["embedding"] + [f"logits_{h.name}" for h in net.head_specs]
    dyn = {"crops": {0: "n"}, **{n: {0: "n"} for n in names}}
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of torch.export, which writes weights to a side file by
        # default and takes ~10× longer here; the single-file result of this exporter is checked in the tests
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            _Export(net),
            (x,),
            str(path),
            input_names=["crops"],
            output_names=names,
            dynamic_axes=dyn,
            opset_version=17,
            dynamo=False,
        )


# --- batches ----------------------------------------------------------------------------------------------------


def augment_geometry(g: Any, rng: np.random.Generator, strength: float) -> tuple[Any, Jitter]:
    """Corner noise of a disc geometry (as a detector would make) and a small frame perturbation."""
    from dataclasses import replace

    p = g.points()
    width_px = float(np.linalg.norm(p[1] - p[0]))
    noise = rng.normal(0.0, 0.015 * strength * width_px, size=p.shape)
    q = p + noise
    g2 = replace(
        g,
        upper_anterior=(float(q[0, 0]), float(q[0, 1])),
        upper_posterior=(float(q[1, 0]), float(q[1, 1])),
        lower_anterior=(float(q[2, 0]), float(q[2, 1])),
        lower_posterior=(float(q[3, 0]), float(q[3, 1])),
    )
    j = Jitter(
        angle_deg=float(np.clip(rng.normal(0.0, 4.0 * strength), -10, 10)),
        scale=float(np.exp(rng.uniform(-0.1, 0.1) * strength)),
        shift_u=float(rng.normal(0.0, 0.03 * strength)),
        shift_v=float(rng.normal(0.0, 0.03 * strength)),
    )
    return g2, j


def augment_intensity(x: NDArray[np.float32], rng: np.random.Generator, clip: float) -> NDArray[np.float32]:
    """Random gamma, gain and noise of a crop, clipped to [0, clip]."""
    gamma = float(np.exp(rng.uniform(-0.25, 0.25)))
    y = clip * (np.clip(x, 0, clip) / clip) ** gamma
    y = y * float(rng.uniform(0.85, 1.15))
    y = y + rng.normal(0.0, 0.03, size=y.shape).astype(np.float32)
    return np.clip(y, 0, clip).astype(np.float32)


def make_crops(
    samples: Sequence[DiscSample], spec: CropSpec, rng: np.random.Generator | None, strength: float = 1.0
) -> NDArray[np.float32]:
    """One crop per sample (N, 1, H, W): augmented with a random neighbouring slice when ``rng`` is given, else
    the mid slice."""
    out = np.empty((len(samples), 1, spec.height, spec.width), np.float32)
    for i, s in enumerate(samples):
        if rng is None:
            spec_i = CropSpec(**{**spec.to_dict(), "slice_offsets_mm": (0.0,)})
            out[i, 0] = disc_crop(s.array, s.geometry, s.spacing, spec_i)[0]
            continue
        g, j = augment_geometry(s.geometry, rng, strength)
        off = float(rng.choice(np.asarray(spec.slice_offsets_mm)))
        spec_i = CropSpec(**{**spec.to_dict(), "slice_offsets_mm": (off,)})
        out[i, 0] = augment_intensity(disc_crop(s.array, g, s.spacing, spec_i, j)[0], rng, spec.clip)
    return out


def all_slice_crops(samples: Sequence[DiscSample], spec: CropSpec) -> tuple[NDArray[np.float32], list[list[int]]]:
    """Un-augmented crops of every distinct slice of every sample, and the rows of each sample (as inference)."""
    rows: list[NDArray[np.float32]] = []
    owners: list[list[int]] = []
    for s in samples:
        stack = disc_crop(s.array, s.geometry, s.spacing, spec)
        idx = slice_indices(s.array.shape[2], s.geometry.slice_index, s.spacing[2], spec.slice_offsets_mm)
        seen: set[int] = set()
        mine: list[int] = []
        for k, c in zip(idx, stack):
            if k not in seen:
                seen.add(k)
                mine.append(len(rows))
                rows.append(c)
        owners.append(mine)
    return np.stack(rows)[:, None], owners


# --- training ---------------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    epochs: int = 60
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-3
    class_weight_power: float = 0.5  # class weights ∝ frequency^-power (0 = plain, 1 = fully balanced)
    # herniation (5 % positive) is never predicted without full balancing; spondylolisthesis (2 %, 17 training
    # discs) is not learnt either way (5-fold CV on train) and full balancing made it call nearly every disc
    # positive, so it keeps the default weighting (calibrated, rarely positive)
    class_weight_power_by_head: dict[str, float] = field(default_factory=lambda: {"herniation": 1.0})
    label_smoothing: float = 0.05
    ordinal_weight: float = 0.5  # extra loss on the expected grade of ordinal heads (|E[k] - k| / (K-1))
    augment: float = 1.0
    warmup_epochs: int = 2
    seed: int = 0
    train_backbone: bool = True
    device: str = "cpu"
    head_loss_weights: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.__dict__.items()}


def class_weights(samples: Sequence[DiscSample], head: HeadSpec, power: float) -> torch.Tensor:
    counts = np.zeros(len(head.classes))
    for s in samples:
        if head.name in s.labels:
            counts[s.labels[head.name]] += 1
    w = np.where(counts > 0, (np.maximum(counts, 1) / max(counts.sum(), 1)) ** -power, 0.0)
    present = counts > 0
    if present.any():
        w = w / (w[present] * counts[present]).sum() * counts[present].sum()
    return torch.tensor(w, dtype=torch.float32)


def _loss(
    logits: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    heads: Sequence[HeadSpec],
    weights: Mapping[str, torch.Tensor],
    cfg: TrainConfig,
) -> torch.Tensor:
    total = torch.zeros((), device=next(iter(logits.values())).device)
    for h in heads:
        t = targets[h.name]
        m = t >= 0
        if not bool(m.any()):
            continue
        z = logits[h.name][m]
        y = t[m]
        ce = F.cross_entropy(z, y, weight=weights[h.name], label_smoothing=cfg.label_smoothing)
        if h.ordinal and len(h.classes) > 2 and cfg.ordinal_weight > 0:
            k = torch.arange(len(h.classes), dtype=torch.float32, device=z.device)
            expected = (F.softmax(z, dim=1) * k).sum(dim=1)
            wy = weights[h.name][y]
            ce = ce + cfg.ordinal_weight * ((expected - y.float()).abs() * wy).sum() / wy.sum() / (len(h.classes) - 1)
        total = total + cfg.head_loss_weights.get(h.name, 1.0) * ce
    return total


def _targets(samples: Sequence[DiscSample], heads: Sequence[HeadSpec]) -> dict[str, torch.Tensor]:
    return {h.name: torch.tensor([s.labels.get(h.name, -1) for s in samples], dtype=torch.long) for h in heads}


def train(
    net: DiscNet,
    samples: Sequence[DiscSample],
    heads_to_train: Sequence[HeadSpec],
    cfg: TrainConfig,
    progress: Callable[..., Any] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    batch_crops: Callable[..., NDArray[np.float32]] | None = None,
) -> list[float]:
    """Train ``heads_to_train`` (and the backbone when ``cfg.train_backbone``) on ``samples``; returns epoch losses.

    ``batch_crops(samples, spec, rng, strength)`` cuts the augmented input of a batch (default :func:`make_crops`,
    one channel; a two-series grader passes its own, see :mod:`openspine.training.paired`).

    With a frozen backbone its BatchNorm statistics stay frozen too (eval mode), so every backbone weight and
    buffer is left exactly as it was.
    """
    if not samples:
        raise ConfigError("no training samples: no labelled disc was found by the detector")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    params: list[nn.Parameter] = []
    for h in heads_to_train:
        params += list(net.heads[h.name].parameters())
    if cfg.train_backbone:
        params += list(net.backbone.parameters())
    for p in net.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(samples)
    steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
    total_steps = cfg.epochs * steps_per_epoch
    warm = cfg.warmup_epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total_steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    dev = torch.device(cfg.device)
    net.to(dev)
    weights = {
        h.name: class_weights(samples, h, cfg.class_weight_power_by_head.get(h.name, cfg.class_weight_power)).to(dev)
        for h in heads_to_train
    }
    losses: list[float] = []
    epochs = range(cfg.epochs)
    bar = progress(epochs, desc="training", unit="epoch") if progress else epochs
    t0 = time.perf_counter()
    for epoch in bar:
        net.train()
        if not cfg.train_backbone:
            net.backbone.eval()
        order = rng.permutation(n)
        run = 0.0
        for b in range(steps_per_epoch):
            batch = [samples[i] for i in order[b * cfg.batch_size : (b + 1) * cfg.batch_size]]
            if len(batch) < 2 and cfg.train_backbone:
                continue  # BatchNorm needs two samples
            x = torch.from_numpy((batch_crops or make_crops)(batch, net.spec, rng, cfg.augment)).to(dev)
            _, logits = net(x)
            targets = {k: v.to(dev) for k, v in _targets(batch, heads_to_train).items()}
            loss = _loss(logits, targets, heads_to_train, weights, cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            run += float(loss.detach()) * len(batch)
        losses.append(run / n)
        if progress is not None and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if on_epoch:
            on_epoch(epoch, losses[-1])
        log.debug("epoch %d loss %.4f (%.0f s)", epoch + 1, losses[-1], time.perf_counter() - t0)
    net.eval()
    net.to(torch.device("cpu"))
    for p in net.parameters():
        p.requires_grad_(True)
    return losses


@torch.no_grad()
def predict_logits(net: DiscNet, samples: Sequence[DiscSample], batch: int = 64) -> dict[str, NDArray[np.float32]]:
    """Per-sample logits of every head, averaged over the sample's slices (as at inference)."""
    net.eval()
    if not samples:
        return {h.name: np.zeros((0, len(h.classes)), np.float32) for h in net.head_specs}
    x, owners = all_slice_crops(samples, net.spec)
    return logits_by_owner(net, x, owners, batch)


@torch.no_grad()
def logits_by_owner(
    net: DiscNet, x: NDArray[np.float32], owners: Sequence[Sequence[int]], batch: int = 64
) -> dict[str, NDArray[np.float32]]:
    """The network's logits for crops ``x`` (N, C, H, W), in batches, averaged over each owner's rows (a disc's
    slices), as grading averages them."""
    parts: dict[str, list[NDArray[np.float32]]] = {h.name: [] for h in net.head_specs}
    dev = next(net.parameters()).device
    for i in range(0, len(x), batch):
        _, lg = net(torch.from_numpy(x[i : i + batch]).to(dev))
        for k, v in lg.items():
            parts[k].append(v.cpu().numpy())
    full = {k: np.concatenate(v) for k, v in parts.items()}
    return {k: np.stack([v[list(rows)].mean(axis=0) for rows in owners]).astype(np.float32) for k, v in full.items()}


@torch.no_grad()
def embed(net: DiscNet, samples: Sequence[DiscSample], rng: np.random.Generator | None = None) -> torch.Tensor:
    """Backbone embeddings of one crop per sample (augmented when ``rng`` is given)."""
    net.eval()
    x = torch.from_numpy(make_crops(samples, net.spec, rng))
    return net.backbone(x)


def param_count(net: nn.Module) -> int:
    return int(sum(p.numel() for p in net.parameters()))


def compare_to_base(net: DiscNet, base_weights: Path, trained_heads: Sequence[str]) -> list[str]:
    """Names of weights that differ from ``base_weights``, outside the heads that were trained."""
    with np.load(base_weights, allow_pickle=False) as z:
        base = {k: z[k] for k in z.files}
    changed = []
    for k, v in state_arrays(net).items():
        if any(k.startswith(f"heads.{h}.") for h in trained_heads):
            continue
        if k.startswith("heads.") and k not in base:
            changed.append(f"{k} (not in the base model)")
        elif k in base and not np.array_equal(base[k], v):
            changed.append(k)
    return changed
