"""openspine: detect, label and grade the spine in sagittal MRI.

Research software, not a medical device. Importing the package does no work and loads no model; heavy
modules are imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .analysis import analyze
    from .config import AnalysisConfig
    from .io import list_series, load_scan, load_study
    from .results import AnalysisResult
    from .scan import Scan

__all__ = [
    "AnalysisConfig",
    "AnalysisResult",
    "Scan",
    "__version__",
    "analyze",
    "list_series",
    "load_scan",
    "load_study",
]

_LAZY = {
    "Scan": ("scan", "Scan"),
    "load_scan": ("io", "load_scan"),
    "load_study": ("io", "load_study"),
    "list_series": ("io", "list_series"),
    "analyze": ("analysis", "analyze"),
    "AnalysisConfig": ("config", "AnalysisConfig"),
    "AnalysisResult": ("results", "AnalysisResult"),
}


def __dir__() -> list[str]:
    """The package's names, the lazily imported API included (for tab completion)."""
    return sorted(n for n in {*globals(), *_LAZY} if n not in ("Any", "TYPE_CHECKING", "annotations"))


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'openspine' has no attribute '{name}'")
