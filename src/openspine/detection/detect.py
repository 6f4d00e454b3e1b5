"""Vertebra detection: run the detector network on a sagittal scan and decode its maps (:mod:`.records`).

Steps (see ``docs/detection.md``):

1. slices are chosen (every slice of a thick-slice series; ~3 mm slabs of a thin-slice volume), resampled to the
   model's pixel size and normalised (:mod:`.preprocess`);
2. the detector network (ONNX, onnxruntime) gives four maps per slice: body probability, body-centre and
   disc-centre heat-maps, and the level;
3. the maps become labelled bodies and the discs between them (:func:`.records.decode_all`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import UnsupportedScanError
from ..geometry import MAX_EXTENT_MM
from ..models import LoadedModel, load_model
from ..results import ModelInfo
from ..scan import SagittalView
from . import decode as _decode
from .preprocess import PlaneGrid, choose_slices, normalise, plane_grid, resample_slices
from .records import ProcessedSlices, decode_all
from .types import Detection

BUILTIN_MODEL = "detector"


def _load(model: str | os.PathLike[str] | None) -> LoadedModel:
    # threads: the registry's default (one per core; 1 in batch workers)
    return load_model(model if model is not None else BUILTIN_MODEL, kind="detector")


def _level_model(detector: LoadedModel) -> LoadedModel | None:
    """The level-context model a detector's card names (``level_model``: a built-in name, or a folder relative to
    the detector's), or ``None``."""
    name = detector.card.data.get("level_model")
    if not name:
        return None
    local = detector.card.folder / str(name)
    return load_model(local if local.is_dir() else str(name))


def run_level_model(loaded: LoadedModel, images: NDArray[np.float32]) -> NDArray[np.float32]:
    """The level ordinal of every output row (N, H/2) of (N, H, W) normalised model-grid images."""
    outs = [
        loaded.run({"image": np.ascontiguousarray(images[i : i + 1, None], np.float32)})[0] for i in range(len(images))
    ]
    return np.concatenate(outs, axis=0) if outs else np.zeros((0, images.shape[1] // 2), np.float32)


def run_network(loaded: LoadedModel, images: NDArray[np.float32], batch: int = 4) -> NDArray[np.float32]:
    """Run the detector on (N, H, W) normalised model-grid images; returns (N, 4, H/2, W/2) maps."""
    outs = []
    for i in range(0, len(images), batch):
        x = np.ascontiguousarray(images[i : i + batch, None], dtype=np.float32)
        outs.append(loaded.run({"image": x})[0])
    return np.concatenate(outs, axis=0) if outs else np.zeros((0, 4, 1, 1), np.float32)


def detect(view: SagittalView, model: str | os.PathLike[str] | None = None) -> Detection:
    """Detect and label the vertebral bodies (and the discs between them) in a sagittal scan.

    Args:
        view: the scan in the internal layout (``scan.to_sagittal()``).
        model: a detector model folder, or a built-in model name; ``None`` = the built-in detector.

    Raises:
        ModelError: the model folder is missing or damaged.
    """
    return run_detection(view, model).detection


@dataclass(frozen=True)
class DetectionRun:
    """A detection with what produced it: the processed slices' grid and the body instances behind each vertebra
    (used to make pseudo-labels for training)."""

    detection: Detection
    groups: tuple[_decode.Group, ...]  # one per vertebra, same order; pixels on the model grid
    grid: PlaneGrid
    slice_groups: tuple[tuple[int, ...], ...]  # internal slices averaged into each processed slice
    spacing_mm: float


def model_images(view: SagittalView, card: dict[str, Any]) -> tuple[NDArray[np.float32], ProcessedSlices]:
    """The normalised model-grid images (N, H, W) a detector with this card reads, and where they lie."""
    spacing_model = float(card["input"]["spacing_mm"])
    multiple = int(card["input"].get("size_multiple", 32))
    slab_mm = float(card["input"].get("slab_mm", 3.0))
    arr = view.scan.array
    sr, sc, ss = view.scan.spacing
    H, W, S = arr.shape
    if max(H * sr, W * sc) > MAX_EXTENT_MM:  # a voxel size in the wrong unit: the model grid would not fit in memory
        raise UnsupportedScanError(
            f"at its voxel size ({sr:g} × {sc:g} mm) this sagittal image is {H * sr:.0f} × {W * sc:.0f} mm, larger "
            f"than any spine image ({MAX_EXTENT_MM:.0f} mm): check the voxel size in its header"
        )
    groups_k = choose_slices(S, ss, slab_mm)
    slabs = np.stack([arr[:, :, g].astype(np.float32).mean(axis=2) for g in groups_k])
    grid = plane_grid((H, W), (sr, sc), spacing_model, multiple)
    images = resample_slices(slabs, (sr, sc), grid)
    valid = np.zeros(grid.padded, bool)
    valid[: grid.shape[0], : grid.shape[1]] = True
    for i in range(len(images)):
        images[i] = normalise(images[i], valid)
    return images, ProcessedSlices(grid, groups_k, spacing_model)


def run_detection(view: SagittalView, model: str | os.PathLike[str] | None = None) -> DetectionRun:
    """:func:`detect`, keeping the intermediate results."""
    loaded = _load(model)
    card = loaded.card.data
    params = _decode.DecodeParams.from_card(card.get("decode"))
    images, slices = model_images(view, card)
    grid, groups_k, spacing_model = slices.grid, slices.slice_groups, slices.spacing_mm
    maps = run_network(loaded, images)
    models: tuple[ModelInfo, ...] = (loaded.card.info(),)
    level_model = _level_model(loaded)
    if level_model is not None:  # the level read from the whole field of view: a fifth map
        ctx = run_level_model(level_model, images)[:, : maps.shape[2], None]
        maps = np.concatenate([maps, np.broadcast_to(ctx, maps[:, 3].shape)[:, None]], axis=1)
        models += (level_model.card.info(),)
    det, groups = decode_all(view, maps, slices, params, models)
    return DetectionRun(det, tuple(groups), grid, tuple(tuple(g) for g in groups_k), spacing_model)


def decode_maps(
    view: SagittalView,
    maps: NDArray[np.float32],
    grid: PlaneGrid,
    slice_groups: list[list[int]],
    spacing_model: float,
    params: _decode.DecodeParams,
    models: tuple[ModelInfo, ...] = (),
) -> Detection:
    """Turn the network's maps of the processed slices into a :class:`Detection` (no model needed)."""
    return decode_all(view, maps, ProcessedSlices(grid, slice_groups, spacing_model), params, models)[0]
