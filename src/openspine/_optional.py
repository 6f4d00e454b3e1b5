"""Lazy imports of optional heavy dependencies, with an error that names the extra to install.

:func:`import_optional` imports one module when it is needed; :func:`require_optional` checks, without importing
them, that every optional module a command will need is installed, so that a command fails in one line before its
long work (training, a cohort) instead of at its end (the ONNX export, the first DICOM SEG).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from types import ModuleType

from .errors import MissingDependencyError

_EXTRA_OF = {
    "torch": "train",
    "onnx": "train",
    "onnxscript": "train",
    "highdicom": "dicom",
    "dask": "distributed",
    "distributed": "distributed",
    "pyarrow": "batch",
    "matplotlib": "plot",
    "pandas": "pandas",
}

# what each kind of work needs, beyond the core dependencies
TRAIN_MODULES = ("torch", "onnx", "onnxscript")  # training, then the ONNX export at its end
DISTRIBUTED_MODULES = ("distributed",)  # batch --scheduler / --cluster


def extra_of(module: str) -> str | None:
    """The extra of openspine that installs ``module`` (``highdicom`` → ``dicom``), or None."""
    return _EXTRA_OF.get(module.split(".")[0])


def install_hint(tops: Iterable[str]) -> str:
    """The pip command that installs the top-level modules ``tops`` (their openspine extras, else the modules)."""
    extras = sorted({_EXTRA_OF[t] for t in tops if t in _EXTRA_OF})
    plain = sorted(t for t in tops if t not in _EXTRA_OF)
    # the package is installed from a clone until it is published: name both forms
    joined = ",".join(extras)
    clone = f"(in a clone of openspine: pip install '.[{joined}]')"
    parts = [f"pip install 'openspine[{joined}]' {clone}"] if extras else []
    if plain:
        parts.append(f"pip install {' '.join(plain)}")
    hint = " and ".join(parts)
    if "train" in extras:  # pip's default PyTorch wheel on Linux is the CUDA build, several GB
        hint += (
            "; for a CPU-only PyTorch install it first from its CPU index: pip install torch==2.13.0 --index-url "
            "https://download.pytorch.org/whl/cpu (the version the tests run on; docs/getting-started.md)"
        )
    return hint


def import_optional(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` saying how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingDependencyError(
            f"{purpose} needs the optional package '{top}', which is not installed. "
            f"Install it with: {install_hint([top])}"
        ) from exc


def _import_error(module: str) -> str | None:
    """Why ``module`` fails to import (its exception, in one line), or None when it imports."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # an installed package can fail in any way on import (a broken build, an ABI clash)
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    return None


def is_installed(module: str) -> bool:
    """True when ``module`` can be imported (found on the path and not blocked), without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, or a module set to None in sys.modules
        return False


def require_optional(modules: Iterable[str], purpose: str) -> None:
    """Raise :class:`MissingDependencyError` in one line naming every missing module of ``modules`` and the extra
    that installs them; do nothing when all are installed and import. Call it before long work: the modules found are
    imported (as the work will import them), so that one installed but broken fails here, not at the end (a broken
    onnx had let a 10-minute training start, to fail at its ONNX export; user test)."""
    wanted = list(dict.fromkeys(modules))
    missing = [m for m in wanted if not is_installed(m)]
    if not missing:  # a missing one is named first: another may fail to import for want of it
        broken = [(m, why) for m in wanted if (why := _import_error(m)) is not None]
        if not broken:
            return
        said = "; ".join(f"'{m}' ({why})" for m, why in broken)
        raise MissingDependencyError(
            f"{purpose} needs the optional packages {said}, which are installed but do not import. Reinstall with: "
            f"{install_hint([m.split('.')[0] for m, _ in broken])}"
        )
    names = ", ".join(f"'{m}'" for m in missing)
    noun = "package" if len(missing) == 1 else "packages"
    verb = "is" if len(missing) == 1 else "are"
    raise MissingDependencyError(
        f"{purpose} needs the optional {noun} {names}, which {verb} not installed. "
        f"Install with: {install_hint([m.split('.')[0] for m in missing])}"
    )
