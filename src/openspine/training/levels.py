"""Train the level-context model: the level of every row of a sagittal slice, read from the whole field of view.

The detector reads each body's level from the body and its neighbourhood. Where the sacrum is out of view its
estimates drift by up to a level over a whole sequence (see ``docs/detection.md``). This model sees the whole slice
at once: a small CNN at 2.5 mm pixels, pooled over the columns, and a bidirectional GRU along the rows, so it can
count bodies and use what lies above and below. It outputs one level ordinal per row of the detector's output grid
(stride 2 at 1.25 mm); the detector uses it in place of its own level map when its card names it
(``level_model``). Trained with crops of the field of view that cut the sacrum, the lumbar spine or the thoracic
spine at random heights.

``openspine train levels --data ../shared/data --out DIR`` reads the train split only (:mod:`.datasets.levels`).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from .._command_parser import command_parser
from .._logging import get_logger, log_file
from .._optional import TRAIN_MODULES, import_optional, require_optional
from ..detection.preprocess import normalise
from ..errors import ConfigError
from . import common
from .datasets.levels import LevelItem, load_items, save_items, spider_items, volume_items

log = get_logger("training.levels")

MODEL_NAME = "levels"
MODEL_VERSION = "1.0.0"
MODEL_SPACING = 1.25  # mm: the detector's grid
LEVEL_CENTRE, LEVEL_SCALE = 21.0, 4.0

_EPILOG = """examples:
  openspine train levels --data ../shared/data --out runs/levels            # the built-in recipe
  openspine train levels --data ../shared/data --out runs/cv0 --holdout 0   # train on 4/5 of train, report fold 0

Only split == "train" items are read. Outputs: DIR/model.onnx, DIR/card.json, DIR/checkpoint.pt, DIR/train.log.
"""


@dataclass(frozen=True)
class LevelTrainConfig:
    steps: int = 1500
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    canvas: tuple[int, int] = (320, 224)  # model-grid pixels (1.25 mm): 400 × 280 mm
    scale: tuple[float, float] = (0.85, 1.15)
    p_crop: float = 0.75  # share of samples with the field of view cut (top, bottom or both)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["canvas"], d["scale"] = list(self.canvas), list(self.scale)
        return d


def build_level_network() -> Any:
    torch = import_optional("torch", "the level-context model")
    nn = torch.nn

    def cbr(cin: int, cout: int, stride: Any = 1) -> Any:
        return common.conv_bn_relu(torch, cin, cout, stride)

    class LevelNet(nn.Module):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(
                nn.AvgPool2d(2),  # 2.5 mm
                cbr(1, 16),
                cbr(16, 24, 2),  # 5 mm
                cbr(24, 32),
                cbr(32, 48),
                cbr(48, 48, (1, 2)),  # 5 mm rows, 10 mm columns
                cbr(48, 64, (1, 2)),  # 20 mm columns
                cbr(64, 64),
            )
            self.rows = nn.Conv1d(128, 64, 3, padding=1)
            self.gru = nn.GRU(64, 48, batch_first=True, bidirectional=True)
            self.out = nn.Conv1d(96, 1, 1)

        def forward(self, x: Any) -> Any:
            f = self.encoder(x)  # (N, C, H/4, W/16)
            g = torch.cat([f.mean(dim=3), f.amax(dim=3)], dim=1)  # (N, 2C, H/4)
            g = torch.relu(self.rows(g)).transpose(1, 2)  # (N, H/4, 64)
            h, _ = self.gru(g)
            y = self.out(h.transpose(1, 2))  # (N, 1, H/4)
            y = torch.nn.functional.interpolate(y, scale_factor=2.0, mode="linear", align_corners=False)
            return y[:, 0]  # (N, H/2): raw

    return LevelNet()


def to_ordinal(raw: Any) -> Any:
    return raw * LEVEL_SCALE + LEVEL_CENTRE


# --- samples -----------------------------------------------------------------------------------------------------
def _between(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def render(item: LevelItem, rng: np.random.Generator, cfg: LevelTrainConfig) -> tuple[NDArray[np.float32], ...]:
    """One training sample of ``item``: the normalised model-grid image on the canvas (1, H, W), the target level
    of each output row (H/2,) and its weight (0 where the row is not between two labelled points or not seen)."""
    HP, WP = cfg.canvas
    z = float(rng.uniform(*cfg.scale)) / MODEL_SPACING  # model pixels per 1 mm pixel
    img = item.image.astype(np.float32)
    if rng.random() < 0.5:
        img = ndimage.gaussian_filter(img, float(rng.uniform(0.3, 1.2)))
    img = ndimage.zoom(img, z, order=1)
    pts = item.points.copy()
    pts[:, :2] = (pts[:, :2] + 0.5) * z - 0.5
    H, W = img.shape
    top, bottom = 0, H
    r = pts[:, 0]
    n = len(r)
    if rng.random() < cfg.p_crop and n >= 3:
        kind = rng.choice(["top", "bottom", "both"], p=[0.3, 0.45, 0.25])
        s, e = 0, n - 1
        if kind in ("top", "both"):
            s = int(rng.integers(0, n - 2))
        if kind in ("bottom", "both"):
            e = int(rng.integers(s + 2, n))
        if kind in ("top", "both"):
            lo = r[s - 1] if s > 0 else 0.0
            top = int(_between(rng, lo, r[s] - 4))
        if kind in ("bottom", "both"):
            hi = r[e + 1] if e < n - 1 else float(H)
            bottom = int(_between(rng, r[e] + 4, hi))
        top, bottom = max(0, top), min(H, max(bottom, top + 16))
    # columns: a random window holding the spine, at least 160 mm wide
    c_lo, c_hi = float(pts[:, 1].min()), float(pts[:, 1].max())
    width = int(min(W, WP, max(160 / MODEL_SPACING, rng.uniform(0.6, 1.0) * W)))
    left_min, left_max = max(0, int(c_hi) + 24 - width), min(W - width, int(c_lo) - 24)
    left = int(rng.integers(min(left_min, left_max), max(left_min, left_max) + 1)) if width < W else 0
    left = int(np.clip(left, 0, max(0, W - width)))
    crop = img[top:bottom, left : left + width]
    if crop.shape[0] > HP:  # too tall for the canvas: a random window that keeps some labelled rows
        off = int(rng.integers(0, crop.shape[0] - HP + 1))
        crop, top = crop[off : off + HP], top + off
    h, w = crop.shape
    g = float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
    crop = normalise(crop) ** g
    crop = crop + rng.normal(0, rng.uniform(0, 0.04), crop.shape).astype(np.float32)
    x = np.zeros((1, HP, WP), np.float32)
    x[0, :h, :w] = np.clip(crop, 0, 1)
    rows = 2.0 * np.arange(HP // 2) + 0.5 + top  # output row centres in the zoomed image
    order = np.argsort(r)
    target = np.interp(rows, r[order], pts[order, 2]).astype(np.float32)
    weight = ((rows >= r.min()) & (rows <= r.max()) & (rows < top + h)).astype(np.float32)
    return x, target, weight


class _Samples:
    def __init__(self, items: list[LevelItem], cfg: LevelTrainConfig, length: int) -> None:
        self.items, self.cfg, self.length = items, cfg, length
        # each group (patient) equally likely, whatever its number of slabs; volumes and SPIDER half each
        groups: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            groups.setdefault(it.group, []).append(i)
        self.groups = list(groups.values())
        vol = np.array([items[g[0]].source == "volume" for g in self.groups])
        p = np.where(vol, 0.5 / max(1, vol.sum()), 0.5 / max(1, (~vol).sum()))
        self.p = p / p.sum()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        rng = np.random.default_rng([self.cfg.seed, i])
        g = self.groups[int(rng.choice(len(self.groups), p=self.p))]
        return render(self.items[int(rng.choice(g))], rng, self.cfg)


def split_folds(items: list[LevelItem], folds: int, holdout: int) -> tuple[list[LevelItem], list[LevelItem]]:
    """Items of the groups in fold ``holdout`` (groups assigned by a hash of their name) and the rest."""
    import hashlib

    def fold(g: str) -> int:
        return int(hashlib.sha256(f"levels-cv:{g}".encode()).hexdigest(), 16) % folds

    held = [it for it in items if fold(it.group) == holdout]
    return [it for it in items if fold(it.group) != holdout], held


def train(items: list[LevelItem], out: Path, cfg: LevelTrainConfig, threads: int = 2, workers: int = 0,
          progress: bool = True, command: str = "", data: dict[str, Any] | None = None) -> Path:  # fmt: skip
    torch = common.start_run(out, threads, cfg.seed, "training the level-context model")
    from tqdm import tqdm

    net = build_level_network()
    ds = _Samples(items, cfg, cfg.steps * cfg.batch_size)
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, shuffle=False, num_workers=workers)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = common.lr_schedule(torch, opt, cfg.lr, cfg.steps, pct_start=0.1)
    net.train()
    running: dict[str, float] = {}
    history: list[dict[str, float]] = []
    bar = tqdm(total=cfg.steps, desc="train levels", unit="batch", disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    for step, (x, y, w) in enumerate(loader, start=1):
        pred = to_ordinal(net(x))
        err = torch.nn.functional.smooth_l1_loss(pred, y, reduction="none", beta=0.5)
        loss = (err * w).sum() / w.sum().clamp_min(1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            mae = float(((pred - y).abs() * w).sum() / w.sum().clamp_min(1.0))
        for k, v in (("loss", float(loss.detach())), ("mae", mae)):
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in running.items()})
        if step % 250 == 0 or step == cfg.steps:
            history.append({"step": step, **running})
            log.info("step %d/%d %s", step, cfg.steps, " ".join(f"{k}={v:.4f}" for k, v in running.items()))
    bar.close()
    train_s = time.perf_counter() - t0
    net = net.eval()
    meta = common.finish_run(
        torch, net, out, cfg.to_dict(), history, running,
        run={"train_seconds": round(train_s, 1), "command": command, "device": "cpu"},
        data=data or {},
    )  # fmt: skip
    export_model(net, out, cfg, meta)
    log.info("trained in %.0f s; model folder: %s", train_s, out)
    return out


def export_model(net: Any, out: Path, cfg: LevelTrainConfig, meta: dict[str, Any]) -> Path:
    torch = import_optional("torch", "exporting the level-context model")
    wrapper = common.shipped_wrapper(torch, net, to_ordinal).eval()
    kwargs: dict[str, Any] = {
        "input_names": ["image"],
        "output_names": ["levels"],
        "dynamic_axes": {"image": {0: "n", 2: "h", 3: "w"}, "levels": {0: "n", 1: "h2"}},
        "opset_version": 17,
    }
    return common.export_with_card(
        wrapper, torch.zeros(2, 1, 128, 96), out, kwargs, lambda sha, size: model_card(cfg, meta, sha, size)
    )


def model_card(cfg: LevelTrainConfig, meta: dict[str, Any], sha256: str, size: int) -> dict[str, Any]:
    return {
        **common.card_head(MODEL_NAME, MODEL_VERSION, "level of every row of a sagittal slice", sha256, size),
        "architecture": {
            "type": "CNN at 2.5 mm pooled over columns + bidirectional GRU along the rows",
            "parameters": meta.get("parameters"),
            "framework": "PyTorch (training) → ONNX opset 17 (inference with onnxruntime)",
        },
        "input": {
            "name": "image",
            "shape": "(N, 1, H, W), the detector's normalised model-grid slice; H a multiple of 4",
            "spacing_mm": MODEL_SPACING,
            "layout": "one sagittal slice: rows superior→inferior, columns anterior→posterior",
        },
        "outputs": {
            "name": "levels",
            "shape": "(N, H/2): level ordinal of each row at stride 2 (the detector's output grid)",
            "level_encoding": "C1 = 1 … T12 = 19, L1 = 20 … L5 = 24, S1 = 25; a disc = upper vertebra + 0.5",
        },
        "training_data": {
            "source": "openspine shared development set, split == 'train' only: FastCleverSeg VB2/VB3/IVD "
            "(annotated levels; S1 as detected below the annotated L5) and SPIDER T2/T1 slices labelled by the "
            "built-in detector's confident whole-slice detection",
            "items": meta.get("items"),
            "citations": ["ramos2024", "chu2015", "burian2019", "menezesreis2016", "vandergraaf2024"],
        },
        "training": common.training_record(cfg.to_dict(), meta, ("items",)),
        "metrics": {},
    }


# --- command -------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "openspine train levels",
        "Train the level-context model (the level of every row, from the whole field of view) on the train split.",
        _EPILOG,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="the shared data folder (with index.csv)")
    src.add_argument("--items", type=Path, help="training items saved by --write-items")
    p.add_argument("--out", type=Path, required=True, help="output model folder")
    common.add_version_option(p, MODEL_NAME, MODEL_VERSION)
    p.add_argument("--steps", type=int, default=LevelTrainConfig.steps)
    p.add_argument("--batch-size", type=int, default=LevelTrainConfig.batch_size)
    p.add_argument("--lr", type=float, default=LevelTrainConfig.lr)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--holdout", type=int, default=None, help="leave this fold of train out (cross-validation)")
    p.add_argument("--write-items", type=Path, default=None, help="save the training items (.npz) here")
    return p


def cli_main(argv: list[str], quiet: bool = False) -> int:
    args = build_parser().parse_args(argv)
    cfg = common.options_from(LevelTrainConfig, args)
    require_optional(TRAIN_MODULES, "openspine train levels")
    if args.items is not None and not args.items.is_file():
        raise ConfigError(f"--items '{args.items}' does not exist")
    common.check_run_paths(args.data, args.out)
    command = "openspine train levels " + " ".join(argv)
    with log_file(args.out / "train.log", common.LOG_FORMAT):
        log.info("%s", command)
        if args.data is not None:
            items = volume_items(args.data, "train") + spider_items(args.data, "train")
            if args.write_items:
                save_items(items, args.write_items)
        else:
            items = load_items(args.items)
        held: list[LevelItem] = []
        if args.holdout is not None:
            items, held = split_folds(items, args.folds, args.holdout)
            (args.out / "holdout.txt").write_text("\n".join(sorted({it.group for it in held})) + "\n", encoding="utf-8")
        data = {"items": len(items), "groups": sorted({it.group for it in items})}
        train(items, args.out, cfg, args.threads, args.workers, not quiet, command, data)
    common.set_card_version(args.out, args.version)
    if not quiet:
        print(f"model written to {args.out} (model.onnx, card.json, checkpoint.pt, train.log)")
    return 0


def main() -> None:  # pragma: no cover
    common.module_main(cli_main)


if __name__ == "__main__":  # pragma: no cover
    main()
