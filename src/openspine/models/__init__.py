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
    builtin_names,
    check_kind,
    forget_sessions,
    get_default_threads,
    load_model,
    looks_like_path,
    model_folder,
    model_kind,
    read_card,
    resolve_model,
    session_cache,
    set_default_threads,
    sha256_of,
)

__all__ = [
    "BUILTIN_DIR",
    "REQUIRED_CARD_KEYS",
    "LoadedModel",
    "ModelCard",
    "builtin_model_dir",
    "builtin_names",
    "check_kind",
    "forget_sessions",
    "get_default_threads",
    "load_model",
    "looks_like_path",
    "model_folder",
    "model_kind",
    "read_card",
    "resolve_model",
    "session_cache",
    "set_default_threads",
    "sha256_of",
]
