"""What the recognisers with one head (orientation, midline) share: the recogniser's small CNN trained on rendered
pictures with AdamW and a one-cycle schedule, its export with a card, and the command line around it."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .._command_parser import command_parser
from .._logging import get_logger
from .._optional import TRAIN_MODULES, require_optional
from ..errors import ConfigError
from ..recognition.image import MODEL_SIZE
from . import common
from .datasets.pictures import Picture
from .recognizer import TrainConfig

log = get_logger("training")
C = TypeVar("C", bound=TrainConfig)  # a one-head model's own options


def prepare(kind: str, epochs: int, out: Path) -> Path:
    """Check ``openspine train KIND``'s options and dependencies before any work, and make the output folder.

    Raises:
        ConfigError: ``epochs`` below 1.
        MissingDependencyError: torch, onnx or onnxscript (openspine[train]) is not installed.
    """
    if epochs < 1:
        raise ConfigError("--epochs must be ≥ 1")
    require_optional(TRAIN_MODULES, f"openspine train {kind}")  # before training: the ONNX export at its end too
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def fit(
    torch: Any, net: Any, samples: Any, cfg: TrainConfig, loss: Callable[[Any, Any], Any], name: str
) -> tuple[list[dict[str, float]], dict[str, float], float]:
    """Train ``net`` on ``samples`` (a dataset of (image, target)) with ``loss(raw, target)``; the running loss is
    logged once an epoch under ``name``. Returns the per-epoch history, the last running loss and the seconds."""
    steps = max(1, cfg.epochs * cfg.samples_per_epoch // cfg.batch_size)
    loader = torch.utils.data.DataLoader(samples, batch_size=cfg.batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = common.lr_schedule(torch, opt, cfg.lr, steps, pct_start=0.1)
    net.train()
    running: dict[str, float] = {}
    history: list[dict[str, float]] = []
    spe = max(1, cfg.samples_per_epoch // cfg.batch_size)
    t0 = time.perf_counter()
    for step, (x, y) in enumerate(loader, start=1):
        value_t = loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        value_t.backward()
        opt.step()
        sched.step()
        value = float(value_t.detach())
        running[name] = 0.95 * running.get(name, value) + 0.05 * value
        if step % spe == 0 or step == steps:
            rec = {"epoch": round(step / spe, 2), "seconds": round(time.perf_counter() - t0, 1), **running}
            history.append(rec)
            log.info("epoch %.0f/%d (%.0f s) loss %.4f", step / spe, cfg.epochs, rec["seconds"], running[name])
    return history, running, time.perf_counter() - t0


def export(
    torch: Any,
    net: Any,
    out: Path,
    cfg: C,
    pictures: list[Picture],
    fitted: tuple[list[dict[str, float]], dict[str, float], float],
    run: dict[str, Any],
    head: tuple[str, Callable[[Any], Any]],
    card: Callable[[C, dict[str, Any], str, int], dict[str, Any]],
) -> Path:
    """Save the run (checkpoint, history) and export ``net`` with its output ``head`` (name, activation on the raw
    output) to ``out/model.onnx`` with the card ``card(cfg, meta, sha256, size)``; returns ``out``."""
    history, running, seconds = fitted
    net = net.eval()
    counts: dict[str, int] = {}
    for p in pictures:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    meta = common.finish_run(
        torch, net, out, cfg.to_dict(), history, running,
        run={"train_seconds": round(seconds, 1), "device": "cpu", **run},
        data={"pictures": sorted(p.id for p in pictures), "picture_counts": counts},
    )  # fmt: skip
    output, activation = head
    wrapper = common.shipped_wrapper(torch, net, activation).eval()
    kwargs = {
        "input_names": ["image"],
        "output_names": [output],
        "dynamic_axes": {"image": {0: "n"}, output: {0: "n"}},
        "opset_version": 17,
    }
    dummy = torch.zeros(2, 1, MODEL_SIZE, MODEL_SIZE)
    common.export_with_card(wrapper, dummy, out, kwargs, lambda sha, size: card(cfg, meta, sha, size))
    log.info("trained in %.0f s; model folder: %s", seconds, out)
    return out


def build_parser(
    kind: str, description: str, epilog: str, model_name: str, version: str, epochs: int
) -> argparse.ArgumentParser:
    """``openspine train KIND``'s options: --data, --out, --version, --epochs, --seed, --threads."""
    p = command_parser(f"openspine train {kind}", description, epilog)
    p.add_argument("--data", type=Path, required=True, help="the shared data folder (with index.csv)")
    p.add_argument("--out", type=Path, required=True, help="output model folder")
    common.add_version_option(p, model_name, version)
    p.add_argument("--epochs", type=int, default=epochs, help="epochs of 2048 samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return p


def cli_main(
    kind: str,
    parser: argparse.ArgumentParser,
    train_fn: Callable[..., Path],
    argv: list[str],
    quiet: bool,
    options: Callable[[argparse.Namespace], dict[str, Any]] | None = None,
) -> int:
    """``openspine train KIND ARGS`` for ``train_fn(data, out, epochs, seed, threads, command, **options(args))``:
    ``options`` turns the kind's own command-line options into keyword arguments of ``train_fn``."""
    args = parser.parse_args(argv)
    extra = options(args) if options is not None else {}
    # before the pictures are read (a traceback had said it); the folder is made once the run's options pass
    common.check_run_paths(args.data, args.out, create=False)
    t0 = time.perf_counter()
    command = f"openspine train {kind} " + " ".join(argv)
    train_fn(args.data, args.out, args.epochs, args.seed, args.threads, command, **extra)
    common.set_card_version(args.out, args.version)
    if not quiet:
        print(f"model written to {args.out} in {time.perf_counter() - t0:.0f} s")
    return 0
