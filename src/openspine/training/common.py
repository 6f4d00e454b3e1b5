"""What the detector and recogniser trainers share: seeding, the seeded sample stream, the learning-rate schedule,
the ONNX export with its card, the command-line entry point, and typed options built from a parsed command line.

torch is passed in or imported inside the functions, so importing this module needs numpy only.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .._optional import import_optional

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    D = TypeVar("D", bound=DataclassInstance)
else:
    D = TypeVar("D")

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"  # train.log and `python -m openspine.training.…`


def seed_all(torch: Any, seed: int) -> None:
    """Seed Python, numpy and torch (and CUDA, with deterministic cuDNN; nothing changes for a CPU run)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def check_run_paths(data: str | os.PathLike[str] | None, out: str | os.PathLike[str], create: bool = True) -> Path:
    """Before a training run's work, one rule for every kind: ``data`` (where given) is the shared data folder (it
    has index.csv), and ``out`` can be the run's output folder: not a file, not inside the data set (a model written
    there would mix with the data). Creates ``out`` (unless ``create`` is false: a run whose own options are
    checked later makes it then) and returns it.

    Raises:
        ConfigError: ``data`` is not the shared data folder, or ``out`` lies inside it.
        OutputError: ``out`` cannot be made a folder.
    """
    from ..errors import ConfigError
    from ..writers import check_output_dir, prepare_output_dir, refuse_output_inside

    if data is not None:
        if not (Path(data) / "index.csv").is_file():
            raise ConfigError(f"--data '{data}' is not the shared data folder: it has no index.csv")
        refuse_output_inside(data, out, "the data folder")
    return prepare_output_dir(out) if create else check_output_dir(out)


def start_run(out: Path, threads: int, seed: int, purpose: str) -> Any:
    """Make the output folder, set torch's CPU threads and seed everything (:func:`seed_all`); returns torch."""
    torch = import_optional("torch", purpose)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    seed_all(torch, seed)
    return torch


class SeededSamples:
    """Map-style dataset base: item ``i`` is drawn from its own RNG seeded by (seed, i), so the stream of training
    samples is the same whatever the number of workers or the device.

    :meth:`draw` picks a group by its weight (``weights``, 0.1 for a group not named), then one of the group's
    sources uniformly; a subclass renders that source with the same RNG in ``__getitem__``.
    """

    def __init__(self, groups: Sequence[str], weights: Mapping[str, float], seed: int, length: int) -> None:
        """``groups``: the group of each source, in source order."""
        self.seed = seed
        self.length = length
        names = sorted(set(groups))
        self.by_group = {g: [i for i, s in enumerate(groups) if s == g] for g in names}
        w = np.array([weights.get(g, 0.1) for g in names], dtype=float)
        self.groups, self.p = names, w / w.sum()

    def __len__(self) -> int:
        return self.length

    def draw(self, i: int) -> tuple[int, np.random.Generator]:
        """The index of item ``i``'s source and the RNG to render it with."""
        rng = np.random.default_rng([self.seed, int(i)])
        group = self.groups[int(rng.choice(len(self.groups), p=self.p))]
        return int(rng.choice(self.by_group[group])), rng


def lr_schedule(torch: Any, opt: Any, lr: float, steps: int, pct_start: float) -> Any:
    """One cycle up to ``lr`` over ``steps``; a constant rate under 4 steps (the warm-up needs at least two steps,
    else torch divides by zero on a short smoke run)."""
    if steps >= 4:
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=pct_start)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def conv_bn_relu(torch: Any, cin: int, cout: int, stride: Any = 1) -> Any:
    """3×3 convolution (no bias), batch norm, ReLU: the block both convolutional networks are built of."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def shipped_wrapper(torch: Any, net: Any, head: Callable[[Any], Any]) -> Any:
    """``net`` as shipped: a module whose output is ``head`` applied to the network's raw output."""

    class Exported(torch.nn.Module):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, image: Any) -> Any:
            return head(self.net(image))

    return Exported()


def export_with_card(
    wrapper: Any, dummy: Any, out: Path, onnx_kwargs: dict[str, Any], card: Callable[[str, int], dict[str, Any]]
) -> Path:
    """Export ``wrapper`` (traced on ``dummy``) to ``out/model.onnx`` and write ``out/card.json``; ``card`` makes
    the card from the file's sha256 and size. Metrics an evaluation already wrote for the same weights are kept."""
    torch = import_optional("torch", "exporting a model")
    from ..models import sha256_of

    path = out / "model.onnx"
    try:
        torch.onnx.export(wrapper, (dummy,), str(path), dynamo=False, **onnx_kwargs)
    except TypeError:  # older torch without the dynamo switch
        torch.onnx.export(wrapper, (dummy,), str(path), **onnx_kwargs)
    new = card(sha256_of(path), path.stat().st_size)
    old = out / "card.json"
    if old.is_file():
        prev = json.loads(old.read_text(encoding="utf-8"))
        if prev.get("sha256") == new["sha256"]:
            new["metrics"] = prev.get("metrics", new["metrics"])
    old.write_text(json.dumps(new, indent=2) + "\n", encoding="utf-8")
    return path


def local_version(name: str, fallback: str) -> str:
    """The default version of a locally trained model: the shipped model's version (``fallback`` where none is
    shipped) with the PEP 440 local label ``+local``, so a smoke run never claims to be the shipped model."""
    from ..models import BUILTIN_DIR, read_card

    folder = BUILTIN_DIR / name
    shipped = read_card(folder).data.get("version") if (folder / "card.json").is_file() else None
    return f"{shipped or fallback}+local"


def add_version_option(p: Any, name: str, fallback: str) -> None:
    """``--version`` of a ``train`` command (default :func:`local_version`)."""
    default = local_version(name, fallback)
    p.add_argument(
        "--version",
        default=default,
        help=f"model version written into the card (default: {default}, the shipped model's version marked local, "
        "so a local model is never taken for the shipped one)",
    )


def set_card_version(out: Path, version: str) -> None:
    """Write ``version`` into ``out/card.json`` (the weights' sha256 is unchanged)."""
    card = out / "card.json"
    data = json.loads(card.read_text(encoding="utf-8"))
    data["version"] = version
    card.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def card_head(name: str, version: str, task: str, sha256: str, size: int) -> dict[str, Any]:
    """The first keys of a model card (see :mod:`openspine.models`), created now."""
    return {
        "name": name,
        "version": version,
        "task": task,
        "file": "model.onnx",
        "sha256": sha256,
        "size_bytes": size,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def finish_run(
    torch: Any,
    net: Any,
    out: Path,
    config: dict[str, Any],
    history: list[dict[str, Any]],
    running: Mapping[str, float],
    run: Mapping[str, Any],
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """Save the final checkpoint and return the run's record for the card: ``run`` (train_seconds, device, …), the
    software versions, the network's size, ``data`` (what it was trained on), the command and the final losses."""
    torch.save({"state_dict": net.state_dict(), "config": config, "history": history}, out / "checkpoint.pt")
    n_params = int(sum(p.numel() for p in net.parameters()))
    command = run.get("command", "")
    return {
        **{k: v for k, v in run.items() if k != "command"},
        "torch": torch.__version__,
        "python": platform.python_version(),
        "parameters": n_params,
        **data,
        "command": command,
        "final_losses": {k: round(v, 5) for k, v in running.items()},
    }


def training_record(config: dict[str, Any], meta: dict[str, Any], leave_out: tuple[str, ...]) -> dict[str, Any]:
    """The card's ``training`` entry: the command, the config and ``meta`` less the keys in ``leave_out``."""
    return {
        "command": meta.get("command", ""),
        "config": config,
        **{k: v for k, v in meta.items() if k not in leave_out},
    }


def module_main(cli_main: Callable[..., int]) -> None:
    """``python -m openspine.training.…``: run ``cli_main`` on the command line, logging to stderr."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    sys.exit(cli_main(sys.argv[1:], quiet=os.environ.get("OPENSPINE_QUIET") == "1"))


def options_from(cls: type[D], source: object, **overrides: Any) -> D:
    """The dataclass ``cls`` with each field taken from the same-named attribute of ``source`` (a parsed command
    line, or other options) where it has one, from ``overrides`` where given, else the field's default."""
    values = {f.name: getattr(source, f.name) for f in fields(cls) if hasattr(source, f.name)}
    return cls(**(values | overrides))
