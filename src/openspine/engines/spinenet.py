"""SpineNet's own models (VGG, University of Oxford) run through openspine, for users who hold its licence.

openspine reads the scan (its readers and geometry) and hands SpineNet's installed package the volume in the
layout SpineNet expects; SpineNet's own classes and functions detect, label and grade; openspine turns their
output into its records (input voxels and RAS+ mm), so every openspine output works. Nothing of SpineNet is
shipped with openspine: the user installs the ``spinenet`` package and downloads its weights (the recipe is in
docs/spinenet.md). Its licence allows non-commercial research only and covers the outputs: every result made
here says so (a flag, ``parameters.spinenet``, and one :class:`~openspine.results.ModelInfo` per checkpoint).

Layout handed to SpineNet: ``(rows, columns, slices)`` = superior→inferior, anterior→posterior, left→right
(openspine's internal sagittal layout), the scan's own voxel values, and ``pixel_spacing = (row, column)`` mm.
"""

from __future__ import annotations

import datetime as _dt
import os
import pickle
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import scope
from .._logging import get_logger
from ..errors import EngineError
from ..levels import DiscLevel, Grading, Level
from ..models.registry import sha256_of
from ..results import AnalysisResult, Disc, Grade, InputInfo, ModelInfo, SliceOutline, Vertebra, vec3
from ..scan import SagittalView, Scan

log = get_logger("engines.spinenet")

RECIPE = (
    "pip install torch==2.14.1 torchvision==0.29.1 && pip install --no-deps spinenet==2.1.4 && "
    "pip install opencv-python-headless scikit-image shapely pandas matplotlib requests (docs/spinenet.md#install)"
)
WEIGHTS_ENV = "OPENSPINE_SPINENET_WEIGHTS"
LICENCE_NOTICE = (
    "made with SpineNet's models (VGG, University of Oxford): its licence allows non-commercial research use "
    "only and covers these outputs (SpineNet's LICENCE.md)"
)

# SpineNet's weights: sub-folder of its weights/ folder → the file its download gives, and the key of the
# state dict inside the checkpoint
CHECKPOINTS: dict[str, tuple[str, str]] = {
    "detect-vfr": ("ckpt435.pt", "net"),
    "appearance": ("ckpt187.pt", "net"),
    "context": ("ckpt16.pt", "net"),
    "grading": ("ckpt1.pt", "model_weights"),
}

# SpineNet's grade_ivds columns, in the order of its grading network's outputs → (openspine grading name,
# the class value of the network's first output). Same name where the meaning and classes agree with openspine's
# own grading; a spinenet_ name where SpineNet's classes differ (docs/spinenet.md has the table).
GRADINGS: dict[str, tuple[str, int]] = {
    "Pfirrmann": (Grading.PFIRRMANN.value, 1),
    "Narrowing": ("spinenet_narrowing", 1),
    "CentralCanalStenosis": (Grading.CENTRAL_CANAL_STENOSIS.value, 1),
    "Spondylolisthesis": ("spinenet_spondylolisthesis", 0),
    "UpperEndplateDefect": (Grading.ENDPLATE_DEFECT_UPPER.value, 0),
    "LowerEndplateDefect": (Grading.ENDPLATE_DEFECT_LOWER.value, 0),
    "UpperMarrow": ("spinenet_marrow_upper", 0),
    "LowerMarrow": ("spinenet_marrow_lower", 0),
    "ForaminalStenosisLeft": (Grading.FORAMINAL_STENOSIS_LEFT.value, 0),
    "ForaminalStenosisRight": (Grading.FORAMINAL_STENOSIS_RIGHT.value, 0),
    "Herniation": (Grading.HERNIATION.value, 0),
}
# SpineNet was trained to grade lumbar discs of T2 scans
GRADED_LEVELS = frozenset({"T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"})
STAGES = ("read", "detect", "grade")


def import_spinenet() -> ModuleType:
    """SpineNet's package, or :class:`EngineError` naming the install recipe."""
    try:
        import spinenet
    except (ImportError, RuntimeError, OSError) as exc:  # torchvision beside a mismatched torch raises RuntimeError
        raise EngineError(
            f"--engine spinenet needs SpineNet's package, which does not import here ({type(exc).__name__}: "
            f"{exc}); install it with: {RECIPE}"
        ) from exc
    return spinenet


def spinenet_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spinenet")
    except PackageNotFoundError:
        return "unknown"


def default_weights_dir() -> Path:
    """Where SpineNet's ``download_weights()`` puts them: the ``weights`` folder of its package (or the folder
    named by the environment variable OPENSPINE_SPINENET_WEIGHTS)."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env)
    return Path(str(import_spinenet().__file__)).parent / "weights"


def find_checkpoints(weights_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """The checkpoint file of each SpineNet network: the file SpineNet downloads, else (as SpineNet itself loads)
    the newest ``*.pt`` of that sub-folder. One line naming what is missing otherwise."""
    root = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    found: dict[str, Path] = {}
    missing: list[str] = []
    for sub, (name, _) in CHECKPOINTS.items():
        named = root / sub / name
        if named.is_file():
            found[sub] = named
            continue
        others = sorted((root / sub).glob("*.pt"), key=lambda p: p.stat().st_ctime) if (root / sub).is_dir() else []
        if others:
            found[sub] = others[-1]
        else:
            missing.append(f"{sub}/{name}")
    if missing:
        raise EngineError(
            f"SpineNet's weights are missing under '{root}': {', '.join(missing)}; download them (licence: "
            'non-commercial) with python -c "import spinenet; spinenet.download_weights(verbose=True)" or give '
            "their folder with --spinenet-weights DIR"
        )
    return found


def _load_checkpoint(path: Path) -> Mapping[str, Any]:
    """torch.load of a SpineNet checkpoint with tensors and plain numbers only (PyTorch ≥ 2.6 loads
    weights_only by default; SpineNet was written for 2.5); NumPy scalars in its bookkeeping are allowed too."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]
    except pickle.UnpicklingError:
        pass
    numpy_globals: list[Any] = [np.dtype, np.float64, np.float32, np.int64, np.int32]
    try:
        numpy_globals.append(np.dtypes.Float64DType)
        from numpy._core.multiarray import scalar
    except (AttributeError, ImportError):  # NumPy 1
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    numpy_globals.append(scalar)
    try:
        with torch.serialization.safe_globals(numpy_globals):
            return torch.load(path, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]
    except pickle.UnpicklingError as exc:
        raise EngineError(f"SpineNet checkpoint '{path}' holds objects other than weights and numbers: {exc}") from exc


@contextmanager
def _weights_from(files: Mapping[str, Path]) -> Iterator[None]:
    """While SpineNet's constructor runs, its networks load from ``files`` instead of its package folder."""
    from spinenet.models import AppearanceModel, ContextModel, GradingModel, VFRResNetDetector

    classes = {
        "detect-vfr": VFRResNetDetector,
        "appearance": AppearanceModel,
        "context": ContextModel,
        "grading": GradingModel,
    }
    saved = {sub: cls.__dict__["load_weights"] for sub, cls in classes.items()}

    def loader(sub: str) -> Callable[..., None]:
        def load_weights(self: Any, save_path: str, verbose: bool = True) -> None:
            checkpoint = _load_checkpoint(files[sub])
            self.load_state_dict(checkpoint[CHECKPOINTS[sub][1]])

        return load_weights

    try:
        for sub, cls in classes.items():
            cls.load_weights = loader(sub)
        yield
    finally:
        for sub, cls in classes.items():
            cls.load_weights = saved[sub]


@dataclass
class SpineNetEngine:
    """SpineNet's networks loaded once (from the user's weights), reused for every scan."""

    net: Any  # spinenet.SpineNet
    models: tuple[ModelInfo, ...]
    version: str
    checkpoints: Mapping[str, Path]
    device: str = "cpu"

    @classmethod
    def load(cls, weights_dir: str | os.PathLike[str] | None = None, device: str = "cpu") -> SpineNetEngine:
        spinenet = import_spinenet()
        files = find_checkpoints(weights_dir)
        version = spinenet_version()
        with _weights_from(files):
            net = spinenet.SpineNet(device=device, verbose=False, scan_type="lumbar")
        models = tuple(ModelInfo(f"spinenet/{sub}/{p.name}", version, sha256_of(p)) for sub, p in files.items())
        log.info("SpineNet %s loaded from %s", version, files["grading"].parent.parent)
        return cls(net, models, version, files, device)

    @classmethod
    def cached(cls, weights_dir: str | os.PathLike[str] | None = None, device: str = "cpu") -> SpineNetEngine:
        """Loaded once per process and weights folder (a batch worker analyses many scans)."""
        key = (str(Path(weights_dir).resolve()) if weights_dir is not None else "", device)
        if key not in _LOADED:
            _LOADED[key] = cls.load(weights_dir, device)
        return _LOADED[key]

    def grade(self, ivd_dicts: list[dict[str, Any]]) -> tuple[Any, list[list[NDArray[np.float64]]]]:
        """SpineNet's grade_ivds, with each disc's network outputs kept (for the class probabilities)."""
        logits: list[list[NDArray[np.float64]]] = []

        def keep(module: Any, inputs: Any, outputs: Any) -> None:
            logits.append([o.detach().cpu().double().numpy().reshape(-1) for o in outputs])

        handle = self.net.grading_model.register_forward_hook(keep)
        try:
            table = self.net.grade_ivds(ivd_dicts)
        finally:
            handle.remove()
        return table, logits


_LOADED: dict[tuple[str, str], SpineNetEngine] = {}


def spinenet_volume(view: SagittalView) -> tuple[NDArray[Any], tuple[float, float]]:
    """The volume and (row, column) pixel spacing as SpineNet takes them, from openspine's sagittal layout."""
    arr = np.asarray(view.scan.array)
    if arr.dtype not in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        arr = arr.astype(np.float32)  # SpineNet's resizing (OpenCV) takes no other voxel type
    row, col, _ = view.scan.spacing
    return np.ascontiguousarray(arr), (float(row), float(col))


def _detect(engine: SpineNetEngine, volume: NDArray[Any], spacing: tuple[float, float]) -> list[dict[str, Any]]:
    """SpineNet's detect_vb; a body seen on one slice only is kept where the scan has one slice (SpineNet drops
    those, which leaves a 2D picture nothing)."""
    try:
        return list(engine.net.detect_vb(volume, list(spacing), remove_single_slice_detections=volume.shape[2] > 1))
    except ValueError as exc:
        if "non-empty list" in str(exc):  # SpineNet's labelling fails on an empty detection
            return []
        raise


def analyze_with_spinenet(
    scan: Scan,
    weights_dir: str | os.PathLike[str] | None = None,
    *,
    engine: SpineNetEngine | None = None,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> AnalysisResult:
    """Detect, label and grade ``scan`` with SpineNet's models; records as :func:`openspine.analyze` gives them.

    ``engine`` reuses networks already loaded (:meth:`SpineNetEngine.load`), else they load from ``weights_dir``
    (default: SpineNet's own weights folder).
    """
    step = progress or (lambda stage: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if engine is None:
        engine = SpineNetEngine.load(weights_dir, device)
        timings["model_load"] = time.perf_counter() - t0
    scan, non_finite = scan.with_finite_voxels()  # as openspine's own engine reads them: blank, flagged
    scan.check_analysable()
    not_mr = scope.not_mr_magnitude_reason(scan)  # SpineNet's models, too, were trained on MR images
    view = scan.to_sagittal()
    volume, spacing = spinenet_volume(view)
    not_run: dict[str, str] = {"detection": not_mr} if not_mr else {}
    vert_dicts: list[dict[str, Any]] = []
    if not not_mr:
        step("detect")
        t = time.perf_counter()
        vert_dicts = _detect(engine, volume, spacing)
        timings["detection"] = time.perf_counter() - t
    vertebrae = [_vertebra(v, view) for v in sorted(vert_dicts, key=_height)]
    discs: list[Disc] = []
    if len(vert_dicts) >= 2:
        step("grade")
        t = time.perf_counter()
        ivd_dicts = engine.net.get_ivds_from_vert_dicts(vert_dicts, volume, pixel_spacing=list(spacing))
        table, logits = engine.grade(ivd_dicts)
        discs = _discs(vert_dicts, ivd_dicts, table, logits, view)
        timings["grading"] = time.perf_counter() - t
    else:
        not_run["grading"] = "grading needs two detected vertebrae"
    timings["total"] = time.perf_counter() - t0
    # what the file's header says (e.g. its transforms disagree), and NaN read as blank
    flags = [LICENCE_NOTICE, *scan.source.header_flags, *([non_finite] if non_finite else [])]
    out_of_scope = not_mr or (None if vertebrae else "SpineNet detected no vertebral body")
    if out_of_scope:
        not_run["grading"] = out_of_scope
    fov = scope.field_of_view((v.label for v in vertebrae), None)
    parameters = {
        "engine": "spinenet",
        "spinenet": {
            "version": engine.version,
            "licence": LICENCE_NOTICE,
            "checkpoints": {m.name: m.sha256 for m in engine.models},
            "pixel_spacing": list(spacing),
            "layout": "rows superior→inferior, columns anterior→posterior, slices left→right",
            "vertebra_score": "SpineNet gives no detection score: 1.0 is written",
            "single_slice_bodies_kept": bool(volume.shape[2] == 1),
        },
    }
    for stage, why in not_run.items():
        log.warning("%s not run: %s", stage, why)
    return AnalysisResult(
        input=replace(InputInfo.from_scan(scan), field_of_view=fov),
        vertebrae=tuple(vertebrae),
        discs=tuple(discs),
        models=engine.models,
        flags=tuple(flags),
        steps_not_run=not_run,
        out_of_scope=out_of_scope,
        parameters=parameters,
        timings_s=timings,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        view=view.without_input_voxels(),  # the input's geometry, not a second copy of its voxels
    )


def analyze(
    source: Scan | str | os.PathLike[str],
    weights_dir: str | os.PathLike[str] | None = None,
    *,
    engine: SpineNetEngine | None = None,
    device: str = "cpu",
    series: str | int | None = None,
    pixel_spacing: float | tuple[float, float] | None = None,
    progress: Callable[[str], None] | None = None,
) -> AnalysisResult:
    """:func:`openspine.analyze` with SpineNet's models: a :class:`Scan` or a path openspine reads.

    Example::

        from openspine.engines import spinenet
        result = spinenet.analyze("study/", weights_dir="~/spinenet-weights")
        result.to_dataframe("discs")
    """
    step = progress or (lambda stage: None)
    if engine is None:  # fail on a missing package or weights before reading
        engine = SpineNetEngine.cached(weights_dir, device)
    step("read")
    if isinstance(source, Scan):
        scan = source
    else:
        from ..io import load_scan

        scan = load_scan(Path(source), series=series, pixel_spacing=pixel_spacing)
    return analyze_with_spinenet(scan, engine=engine, progress=step)


# --- SpineNet's output → openspine's records ----------------------------------------------------------------------


def _height(vert: Mapping[str, Any]) -> float:
    return float(np.mean(np.asarray(vert["average_polygon"], dtype=float)[:, 1]))


def _corners(poly: Any, k: float, view: SagittalView) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """SpineNet's polygon (x = column, y = row; corners posterior-superior, posterior-inferior, anterior-inferior,
    anterior-superior) on slice ``k`` → openspine's corner order, as input voxels and RAS+ mm."""
    p = np.asarray(poly, dtype=float)[[3, 0, 1, 2]]
    ijk = np.column_stack([p[:, 1], p[:, 0], np.full(4, float(k))])
    return view.to_input_voxel(ijk), view.to_world(ijk)


def _outline(poly: Any, k: int, view: SagittalView) -> SliceOutline:
    vox, mm = _corners(poly, k, view)
    return SliceOutline(
        slice_index=int(k),
        corners_voxel=(vec3(vox[0]), vec3(vox[1]), vec3(vox[2]), vec3(vox[3])),
        corners_mm=(vec3(mm[0]), vec3(mm[1]), vec3(mm[2]), vec3(mm[3])),
    )


def _mid_slice(vert: Mapping[str, Any]) -> int:
    return int(np.round(np.median(vert["slice_nos"])))  # as SpineNet picks a body's middle slice


def _poly_on(vert: Mapping[str, Any], k: int) -> NDArray[np.float64]:
    """The body's polygon on slice k, else its average polygon (SpineNet's own fallback)."""
    for poly, s in zip(vert["polys"], vert["slice_nos"]):
        if s == k:
            return np.asarray(poly, dtype=float)
    return np.asarray(vert["average_polygon"], dtype=float)


def _vertebra(vert: Mapping[str, Any], view: SagittalView) -> Vertebra:
    name = vert.get("predicted_label")
    label, note = None, None
    try:
        label = Level(name)
    except ValueError:
        note = f"SpineNet's label {name!r} is not a level openspine names"
    k = _mid_slice(vert)
    avg = np.asarray(vert["average_polygon"], dtype=float)
    centre = np.array([[avg[:, 1].mean(), avg[:, 0].mean(), float(k)]])
    outlines = tuple(_outline(p, s, view) for p, s in sorted(zip(vert["polys"], vert["slice_nos"]), key=_slice_of))
    return Vertebra(
        label=label,
        score=1.0,
        centroid_voxel=vec3(view.to_input_voxel(centre)[0]),
        centroid_mm=vec3(view.to_world(centre)[0]),
        outlines=outlines,
        mid_slice=k,
        note=note,
    )


def _slice_of(item: tuple[Any, int]) -> int:
    return int(item[1])


def _discs(
    vert_dicts: list[dict[str, Any]],
    ivd_dicts: list[dict[str, Any]],
    table: Any,
    logits: list[list[NDArray[np.float64]]],
    view: SagittalView,
) -> list[Disc]:
    """One Disc per SpineNet IVD (its IVDs run from the lowest up, between consecutive bodies)."""
    bottom_up = sorted(vert_dicts, key=_height, reverse=True)
    discs = []
    for i, ivd in enumerate(ivd_dicts):
        lower, upper = bottom_up[i], bottom_up[i + 1]
        k = int(np.round(np.mean([_mid_slice(lower), _mid_slice(upper)])))
        up, lo = _poly_on(upper, k), _poly_on(lower, k)
        # the disc between: the upper body's inferior corners, the lower body's superior corners (SpineNet's order)
        poly = np.array([up[1], lo[0], lo[3], up[2]])
        centre_ivd = (np.array(ivd["volume"].shape, dtype=float) - 1) / 2
        centre = (np.asarray(ivd["voxel_to_scan"], dtype=float) @ np.append(centre_ivd, 1.0))[:3][None, :]
        name = str(ivd["level_name"])
        level = _disc_level(name)
        row = table.iloc[len(ivd_dicts) - 1 - i]  # SpineNet's table lists the discs top down
        if str(table.index[len(ivd_dicts) - 1 - i]) != name:
            raise EngineError(f"SpineNet's gradings and discs disagree at {name}: is this SpineNet version supported?")
        note = None if name in GRADED_LEVELS else "outside SpineNet's grading scope (lumbar discs T12-L1 … L5-S1)"
        grades = {}
        for h, (column, (key, first)) in enumerate(GRADINGS.items()):
            grades[key] = _grade(int(row[column]), logits[i][h], first, note)
        discs.append(
            Disc(
                level=level,
                centroid_voxel=vec3(view.to_input_voxel(centre)[0]),
                centroid_mm=vec3(view.to_world(centre)[0]),
                outlines=(_outline(poly, k, view),),
                grades=grades,
            )
        )
    return discs[::-1]  # top down, as openspine lists discs


def _disc_level(name: str) -> DiscLevel | None:
    try:
        return DiscLevel(name)
    except ValueError:
        return None


def _grade(value: int, logit: NDArray[np.float64], first: int, note: str | None) -> Grade:
    """SpineNet's grade (its argmax) and the softmax of the same network output as class probabilities."""
    e = np.exp(logit - logit.max())
    p = e / e.sum()
    probabilities = {str(first + c): float(p[c]) for c in range(len(p))}
    if first + int(np.argmax(p)) != value:
        log.warning("SpineNet's grade %s is not the most probable class of its output", value)
    return Grade(grade=value, probabilities=probabilities, note=note)
