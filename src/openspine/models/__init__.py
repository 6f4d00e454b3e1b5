"""Models that describe themselves: a folder with ``model.onnx`` and ``card.json`` (see :mod:`.registry`).

Built-in models live in this package folder (``openspine/models/<name>/``); a user's fine-tuned model is any
folder of the same form.
"""

from __future__ import annotations

from .registry import (
    BUILTIN_DIR,
    REQUIRED_CARD_KEYS,
    LoadedModel,
    ModelCard,
    builtin_model_dir,
    get_default_threads,
    load_model,
    read_card,
    set_default_threads,
    sha256_of,
)

__all__ = [
    "BUILTIN_DIR",
    "REQUIRED_CARD_KEYS",
    "LoadedModel",
    "ModelCard",
    "builtin_model_dir",
    "get_default_threads",
    "load_model",
    "read_card",
    "set_default_threads",
    "sha256_of",
]
