"""A grader model: an ONNX network over disc crops plus the card that says what its outputs mean.

The card (``card.json``) of a grader holds, besides the common keys:

* ``input.crop`` – the :class:`~openspine.grading.crop.CropSpec` the model was trained with;
* ``input.name`` – the ONNX input (float32, shape (N, C, height, width), one crop slice per row);
* ``input.channels`` (optional) – the series each of the C input channels shows, e.g. ``["T2", "T1"]`` for a grader
  that reads the T2 and T1 crops of a disc together (:mod:`openspine.grading.pair`); absent = ``["T2"]``, one channel;
* ``outputs.heads`` – one entry per grading (``name``, ``classes``, ``ordinal``, ``temperature``); the ONNX model
  has one output ``logits_<name>`` per head, plus ``embedding`` (the backbone features, used by fine-tuning);
* ``outputs.slice_aggregation`` – ``mean_logits``: a disc seen on several slices gets the mean of their logits;
* ``outputs.stacker`` (optional) – per head, a logistic regression over those logits and measured disc features
  (:mod:`openspine.grading.stacker`); its output replaces the head's logits.

So any set of heads works: the grading code reads the head names and classes from the card, never from code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError
from ..models import BUILTIN_DIR, LoadedModel, load_model, session_cache
from ..results import ModelInfo
from .crop import CropSpec
from .heads import HeadSpec
from .stacker import Stacker

BUILTIN_NAME = "grader"


@dataclass(frozen=True)
class GraderModel:
    """A loaded grader: ONNX session, crop recipe and heads."""

    loaded: LoadedModel
    crop: CropSpec
    heads: tuple[HeadSpec, ...]
    input_name: str
    stacker: Stacker | None = None
    channels: tuple[str, ...] = ("T2",)  # the series of each input channel, in order

    @property
    def info(self) -> ModelInfo:
        return self.loaded.card.info()

    @property
    def name(self) -> str:
        return self.loaded.card.name

    @property
    def folder(self) -> Path:
        return self.loaded.card.folder

    def head(self, name: str) -> HeadSpec:
        for h in self.heads:
            if h.name == name:
                return h
        raise ModelError(f"grader '{self.name}' has no head '{name}'; it has {[h.name for h in self.heads]}")

    def logits(self, crops: NDArray[np.float32], batch: int = 64) -> dict[str, NDArray[np.float32]]:
        """Raw logits of every head for crops of shape (N, C, H, W), C = ``len(self.channels)`` (or (N, H, W) for a
        one-channel grader)."""
        x = np.asarray(crops, dtype=np.float32)
        c = len(self.channels)
        if x.ndim == 3 and c == 1:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1:] != (c, self.crop.height, self.crop.width):
            raise ModelError(
                f"grader '{self.name}' takes crops of shape (N, {c}, {self.crop.height}, {self.crop.width}) "
                f"(channels {', '.join(self.channels)}), got {x.shape}"
            )
        names = [f"logits_{h.name}" for h in self.heads]
        parts: dict[str, list[NDArray[np.float32]]] = {n: [] for n in names}
        for i in range(0, len(x), batch):
            outs = self.loaded.session.run(names, {self.input_name: x[i : i + batch]})
            for n, o in zip(names, outs):
                parts[n].append(np.asarray(o, dtype=np.float32))
        return {
            h.name: np.concatenate(parts[n]) if len(x) else np.zeros((0, len(h.classes)), np.float32)
            for h, n in zip(self.heads, names)
        }


def softmax(z: NDArray[np.floating], temperature: float = 1.0) -> NDArray[np.float64]:
    """Row-wise softmax of ``z / temperature``."""
    a = np.asarray(z, dtype=np.float64) / float(temperature)
    a = a - a.max(axis=-1, keepdims=True)
    e = np.exp(a)
    return e / e.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def builtin_available() -> bool:
    return (BUILTIN_DIR / BUILTIN_NAME / "card.json").is_file()


def load_grader(grader: str | os.PathLike[str] | None = None, threads: int | None = None) -> GraderModel:
    """Load the built-in grader (``None``), a built-in model by name, or a grader model folder.

    Raises:
        ModelError: no such model, a damaged file, or a card that does not describe a grader.
    """
    if grader is None and not builtin_available():
        raise ModelError(
            "this installation has no built-in grader model yet (openspine/models/grader/card.json is missing); "
            "train one with 'openspine train grader' or pass a grader model folder"
        )
    key = str(grader) if grader is not None else BUILTIN_NAME
    p = Path(key)
    if p.is_dir():
        key = str(p.resolve())
    return _load_cached(key, threads)


@session_cache(maxsize=4)
def _load_cached(key: str, threads: int | None) -> GraderModel:
    loaded = load_model(key, threads=threads)
    data = loaded.card.data
    try:
        inp = data["input"]
        crop = CropSpec.from_dict(dict(inp["crop"]))
        input_name = str(inp.get("name", "crops"))
        channels = _channels(inp.get("channels", ["T2"]), loaded.card.name)
        heads = tuple(HeadSpec.from_dict(h) for h in data["outputs"]["heads"])
    except (KeyError, TypeError) as exc:
        raise ModelError(
            f"model '{loaded.card.name}' ({loaded.card.folder}) is not a grader: its card lacks {exc}"
        ) from None
    if not heads:
        raise ModelError(f"grader '{loaded.card.name}' declares no heads in its card")
    names = {o.name for o in loaded.session.get_outputs()}
    missing = [h.name for h in heads if f"logits_{h.name}" not in names]
    if missing:
        raise ModelError(
            f"grader '{loaded.card.name}': its ONNX file has no output for heads {missing}; card and weights disagree"
        )
    declared = loaded.session.get_inputs()[0].shape
    if len(declared) == 4 and isinstance(declared[1], int) and declared[1] != len(channels):
        raise ModelError(
            f"grader '{loaded.card.name}': its card names {len(channels)} input channels ({', '.join(channels)}), "
            f"its ONNX file takes {declared[1]}; card and weights disagree"
        )
    stacker = Stacker.from_card(
        data["outputs"].get("stacker"), {h.name: len(h.classes) for h in heads}, loaded.card.name
    )
    return GraderModel(loaded=loaded, crop=crop, heads=heads, input_name=input_name, stacker=stacker, channels=channels)


def _channels(value: Any, name: str) -> tuple[str, ...]:
    """The card's ``input.channels``: a non-empty list of distinct series names.

    Raises:
        ModelError: anything else.
    """
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise ModelError(f"grader '{name}': input.channels must be a non-empty list of series names, got {value!r}")
    out = tuple(str(v) for v in value)
    if len(set(out)) != len(out):
        raise ModelError(f"grader '{name}': input.channels names a series twice: {list(out)}")
    return out


def card_summary(model: GraderModel) -> dict[str, Any]:
    """What a result should record about the grader (name, version, heads)."""
    return {"name": model.name, "version": model.info.version, "heads": [h.name for h in model.heads]}
