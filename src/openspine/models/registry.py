"""The model registry: built-in models by name, model folders by path, their cards checked and sessions cached.

A model describes itself: a folder with ``model.onnx`` and ``card.json``.

Built-in models live in this package folder (``openspine/models/<name>/``); a user's fine-tuned model is any
folder of the same form. Loading checks the ONNX file against the sha256 in its card, so a damaged or
swapped file is refused before it can produce a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, cast

from ..errors import ModelError
from ..results import ModelInfo

BUILTIN_DIR = Path(__file__).parent
REQUIRED_CARD_KEYS = ("name", "version", "sha256", "architecture", "input", "outputs", "training_data", "metrics")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelCard:
    folder: Path
    data: dict[str, Any]
    card_sha256: str | None = None  # of card.json as read: its calibration and scope change results too

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def version(self) -> str:
        return str(self.data["version"])

    @property
    def sha256(self) -> str:
        return str(self.data["sha256"])

    @property
    def onnx_path(self) -> Path:
        return self.folder / str(self.data.get("file", "model.onnx"))

    @property
    def builtin(self) -> bool:
        """Whether this is a model shipped in the package (its folder is a built-in model folder)."""
        return self.folder.resolve().parent == BUILTIN_DIR.resolve()

    def info(self) -> ModelInfo:
        return ModelInfo(self.name, self.version, self.sha256, self.card_sha256)


def read_card(folder: str | os.PathLike[str]) -> ModelCard:
    """Read and check ``folder/card.json`` (keys present, weights file present and matching its sha256)."""
    folder = Path(folder)
    card_path = folder / "card.json"
    if not card_path.is_file():
        raise ModelError(f"'{folder}' is not a model folder: it has no card.json")
    raw = card_path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"'{card_path}' is not valid JSON: {exc}") from exc
    missing = [k for k in REQUIRED_CARD_KEYS if k not in data]
    if missing:
        raise ModelError(f"model card '{card_path}' lacks {', '.join(missing)}")
    card = ModelCard(folder, data, hashlib.sha256(raw).hexdigest())
    if not card.onnx_path.is_file():
        raise ModelError(f"model '{card.name}': weights file '{card.onnx_path}' is missing")
    actual = sha256_of(card.onnx_path)
    if actual != card.sha256:
        fix = (
            "reinstall openspine"
            if card.builtin
            else "copy the whole model folder (weights and card together), or train or export the model again"
        )
        raise ModelError(
            f"model '{card.name}': '{card.onnx_path.name}' has sha256 {actual[:12]}…, its card says "
            f"{card.sha256[:12]}…; the file is damaged or was replaced: {fix}"
        )
    return card


def builtin_names() -> list[str]:
    """The names of the built-in models (folders of this package with a card)."""
    return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / "card.json").is_file())


def builtin_model_dir(name: str) -> Path:
    folder = BUILTIN_DIR / name
    if not (folder / "card.json").is_file():
        raise ModelError(f"no built-in model named '{name}'; available: {', '.join(builtin_names()) or 'none'}")
    return folder


def looks_like_path(value: str | os.PathLike[str]) -> bool:
    """Whether a model option's value is meant as a folder (it has a path separator or starts with '.' or '~'),
    not a built-in model's name."""
    text = str(value)
    return any(sep and sep in text for sep in (os.sep, os.altsep, "/")) or text.startswith((".", "~"))


def model_folder(value: str | os.PathLike[str], option: str = "model") -> Path:
    """The folder a model option names: an existing folder, else a built-in model's name.

    Raises:
        ModelError: a path that does not exist ("no model folder at …"), or a bare name that is no built-in model
            (the built-in names are listed).
    """
    p = Path(value).expanduser()
    if p.is_dir():
        return p
    if looks_like_path(value):
        what = "a file, not a model folder" if p.exists() else "it does not exist"
        raise ModelError(f"{option}: no model folder at '{value}' ({what})")
    if not (BUILTIN_DIR / str(value) / "card.json").is_file():
        raise ModelError(
            f"{option}: no model folder '{value}' here and no built-in model of that name; built-in: "
            f"{', '.join(builtin_names()) or 'none'}"
        )
    return BUILTIN_DIR / str(value)


def resolve_model(value: str | os.PathLike[str] | None, kind: str, option: str = "--model") -> Path:
    """The checked folder of a command's model option (``value``; None = the built-in model named ``kind``): it
    exists (:func:`model_folder`), its card and weights are sound (:func:`read_card`) and it is a ``kind`` model."""
    folder = model_folder(value, option) if value is not None else builtin_model_dir(kind)
    check_kind(read_card(folder), kind)
    return folder


def model_kind(data: dict[str, Any]) -> str | None:
    """What a card describes, from its outputs: 'detector', 'grader', 'levels', 'recognizer', 'orientation'
    (None: unknown; a card may also say it in 'kind', as 'midline' does)."""
    if isinstance(data.get("kind"), str):
        return str(data["kind"])
    out = data.get("outputs")
    if not isinstance(out, dict):
        return None
    if "heads" in out:
        return "grader"
    if out.get("name") == "maps" or ("channels" in out and "stride" in out):
        return "detector"
    if out.get("name") == "levels":
        return "levels"
    if "plane" in out and "sequence" in out:
        return "recognizer"
    if "orientation" in out:
        return "orientation"
    return None


def check_kind(card: ModelCard, kind: str) -> ModelCard:
    """``card`` if it is a ``kind`` model; else one line naming what it is (e.g. "'X' is a grader model, not a
    detector"). A card whose kind cannot be told passes (its own checks then speak)."""
    actual = model_kind(card.data)
    if actual is not None and actual != kind:
        raise ModelError(f"'{card.folder}' is a {actual} model, not a {kind}")
    return card


F = TypeVar("F", bound=Callable[..., Any])
_SESSION_CACHES: list[Any] = []  # every per-process cache that holds an onnxruntime session


def session_cache(maxsize: int) -> Callable[[F], F]:
    """``functools.lru_cache`` for a function whose results hold onnxruntime sessions, registered so that
    :func:`forget_sessions` empties it: a process forked from one that ran a session must not reuse it (its thread
    pool's threads are not in the child, which can then wait for them for ever)."""

    def wrap(fn: F) -> F:
        cached = lru_cache(maxsize=maxsize)(fn)
        _SESSION_CACHES.append(cached)
        return cast(F, cached)

    return wrap


def forget_sessions() -> None:
    """Drop every cached model session of this process (a forked batch worker calls it first)."""
    for cached in _SESSION_CACHES:
        cached.cache_clear()


_sessions_started = False


def sessions_started() -> bool:
    """Whether this process has started an onnxruntime session: its runtime's thread pool then exists, and a process
    forked from it hangs in its first session even after :func:`forget_sessions` (reproduced: ``openspine.analyze``
    then ``run_batch(workers=2)`` in one notebook)."""
    return _sessions_started


# onnxruntime's own telemetry, on by default, persists a device id under ~/.cache/Microsoft when it is first
# imported and warns on stderr where home is read-only (seen in batch workers on a cluster account). openspine sends
# nothing anywhere; a user who wants the telemetry sets ORT_DISABLE_TELEMETRY=0.
TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY"


@session_cache(maxsize=8)
def _session(onnx_path: str, threads: int) -> Any:
    os.environ.setdefault(TELEMETRY_ENV, "1")  # read when onnxruntime is imported, so before the import
    import onnxruntime as ort

    global _sessions_started
    _sessions_started = True

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(onnx_path, sess_options=opts, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class LoadedModel:
    card: ModelCard
    session: Any  # onnxruntime.InferenceSession

    def run(self, inputs: dict[str, Any]) -> list[Any]:
        return list(self.session.run(None, inputs))


_default_threads: int | None = None


def get_default_threads() -> int | None:
    return _default_threads


def set_default_threads(n: int | None) -> None:
    """Threads per model session in this process (batch workers use 1 so N workers use N cores)."""
    global _default_threads
    _default_threads = n


def load_model(
    name_or_folder: str | os.PathLike[str], threads: int | None = None, kind: str | None = None
) -> LoadedModel:
    """Load a built-in model by name, or a model folder by path; sessions are cached per process. With ``kind``
    the card must describe that kind of model (:func:`check_kind`)."""
    card = read_card(model_folder(name_or_folder))
    if kind is not None:
        check_kind(card, kind)
    n = threads or _default_threads or max(1, min(os.cpu_count() or 1, 4))
    return LoadedModel(card, _session(str(card.onnx_path.resolve()), n))
