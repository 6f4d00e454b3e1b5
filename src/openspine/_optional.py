"""Lazy imports of optional heavy dependencies, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

_EXTRA_OF = {
    "torch": "train",
    "highdicom": "dicom",
    "dask": "distributed",
    "distributed": "distributed",
    "matplotlib": "plot",
}


def import_optional(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` saying how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_OF.get(top)
        how = f"pip install 'openspine[{extra}]'" if extra else f"pip install {top}"
        raise MissingDependencyError(
            f"{purpose} needs the optional package '{top}', which is not installed. Install it with: {how}"
        ) from exc
