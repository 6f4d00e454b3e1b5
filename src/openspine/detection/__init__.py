"""Vertebra detection and labelling: :func:`detect` finds the vertebral bodies of a sagittal scan, labels them with
consecutive levels and derives the discs between neighbours.

Steps (see ``docs/detection.md``):

1. slices are chosen (every slice of a thick-slice series; ~3 mm slabs of a thin-slice volume), resampled to the
   model's pixel size and normalised (:mod:`.preprocess`);
2. the detector network (ONNX, onnxruntime) gives four maps per slice: body probability, body-centre and
   disc-centre heat-maps, and the level;
3. body instances per slice, grouped across slices (:mod:`.decode`), four endplate corners per slice
   (:mod:`.outline`);
4. one consistent label sequence fitted to the network's level estimates (:mod:`.labelling`); bodies fitted below
   S1 (sacral segments, coccyx) are dropped; ambiguity is flagged, not hidden;
5. a disc between every two consecutive labelled bodies, outlined by their facing endplates.

Coordinates in the records follow :mod:`openspine.results`: ``*_voxel`` indexes the input array, ``*_mm`` is RAS+.
The internal geometry that the grader needs (endplate corners on the mid-sagittal slice, in the internal layout)
is in :attr:`Detection.disc_geometry` and :attr:`Detection.vertebra_geometry`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .._logging import get_logger
from ..errors import ModelError
from ..geometry import apply_affine
from ..levels import DiscLevel, Level
from ..models import LoadedModel, load_model
from ..results import Disc, ModelInfo, SliceOutline, Vertebra, vec3
from ..scan import SagittalView
from . import decode as _decode
from .labelling import SequenceLabels, label_sequence, ordinal_to_level, step_in_residuals
from .outline import quad_corners, quad_height_mm, spine_directions
from .preprocess import PlaneGrid, choose_slices, normalise, plane_grid, resample_slices

log = get_logger("detection")

BUILTIN_MODEL = "detector"
Point = tuple[float, float]

__all__ = [
    "BUILTIN_MODEL",
    "Detection",
    "DetectionRun",
    "DiscGeometry",
    "VertebraGeometry",
    "detect",
    "run_detection",
    "run_network",
]


@dataclass(frozen=True)
class VertebraGeometry:
    """A detected body in the internal layout (rows S→I, cols A→P, slices L→R; voxel indices, floats).

    ``corners`` maps an internal slice index to the body's four corners on it, (row, col) in the order
    anterior-superior, posterior-superior, posterior-inferior, anterior-inferior.
    """

    label: Level | None
    mid_slice: int  # internal slice index of the body's largest cross-section
    centre: tuple[float, float, float]  # internal (row, col, slice)
    corners: dict[int, tuple[Point, Point, Point, Point]]
    height_mm: float  # mean of the anterior and posterior heights on the mid slice
    level_estimate: float  # the network's raw ordinal estimate (C1 = 1 … L5 = 24, S1 = 25)


@dataclass(frozen=True)
class DiscGeometry:
    """A disc between two detected bodies on its mid-sagittal slice, in the internal layout.

    Points are (row, col) internal voxel indices; the field names match the grader's crop geometry
    (:class:`openspine.grading.crop.DiscGeometry`).
    """

    level: DiscLevel | None
    slice_index: int  # internal slice index (the upper and lower bodies both seen there)
    upper_anterior: Point  # anterior-inferior corner of the body above
    upper_posterior: Point  # posterior-inferior corner of the body above
    lower_anterior: Point  # anterior-superior corner of the body below
    lower_posterior: Point  # posterior-superior corner of the body below
    centre: tuple[float, float, float]  # internal (row, col, slice)
    upper_height_mm: float  # vertebral-body heights of the two neighbours
    lower_height_mm: float
    height_anterior_mm: float  # disc height at its anterior and posterior edges
    height_posterior_mm: float


@dataclass(frozen=True)
class Detection:
    """What :func:`detect` found in one scan."""

    vertebrae: tuple[Vertebra, ...]  # top to bottom
    discs: tuple[Disc, ...]  # between detected neighbours, top to bottom; grades empty
    flags: tuple[str, ...]
    models: tuple[ModelInfo, ...]
    vertebra_geometry: tuple[VertebraGeometry, ...] = ()  # one per vertebra, same order
    disc_geometry: tuple[DiscGeometry, ...] = ()  # one per disc, same order
    slices_used: tuple[int, ...] = ()  # internal slice indices the network saw (slab centres)


# --- model --------------------------------------------------------------------------------------------------------
def _load(model: str | os.PathLike[str] | None) -> LoadedModel:
    target = model if model is not None else BUILTIN_MODEL
    if model is not None and not Path(model).is_dir() and os.sep in str(model):
        raise ModelError(f"detector model folder '{model}' does not exist")
    return load_model(target)  # threads: the registry's default (one per core; 1 in batch workers)


def run_network(loaded: LoadedModel, images: NDArray[np.float32], batch: int = 4) -> NDArray[np.float32]:
    """Run the detector on (N, H, W) normalised model-grid images; returns (N, 4, H/2, W/2) maps."""
    outs = []
    for i in range(0, len(images), batch):
        x = np.ascontiguousarray(images[i : i + batch, None], dtype=np.float32)
        outs.append(loaded.run({"image": x})[0])
    return np.concatenate(outs, axis=0) if outs else np.zeros((0, 4, 1, 1), np.float32)


def _upsample2(a: NDArray[np.floating]) -> NDArray[np.float32]:
    """Stride-2 output grid → model grid: bilinear with pixel centres aligned (model pixel 2i + δ sits at output
    coordinate i + (δ − 0.5) / 2), edges clamped. Separable and vectorised (it runs on every processed slice)."""

    def up(x: NDArray[np.float32], axis: int) -> NDArray[np.float32]:
        prev = np.concatenate([np.take(x, [0], axis=axis), np.take(x, np.arange(x.shape[axis] - 1), axis=axis)], axis)
        nxt = np.concatenate([np.take(x, np.arange(1, x.shape[axis]), axis=axis), np.take(x, [-1], axis=axis)], axis)
        even, odd = 0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt
        out = np.stack([even, odd], axis=axis + 1)
        shape = list(x.shape)
        shape[axis] *= 2
        return out.reshape(shape)

    a32 = np.asarray(a, dtype=np.float32)
    return up(up(a32, 0), 1)


# --- detect -------------------------------------------------------------------------------------------------------
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


def run_detection(view: SagittalView, model: str | os.PathLike[str] | None = None) -> DetectionRun:
    """:func:`detect`, keeping the intermediate results."""
    loaded = _load(model)
    card = loaded.card.data
    spacing_model = float(card["input"]["spacing_mm"])
    multiple = int(card["input"].get("size_multiple", 32))
    slab_mm = float(card["input"].get("slab_mm", 3.0))
    params = _decode.DecodeParams.from_card(card.get("decode"))

    arr = view.scan.array
    sr, sc, ss = view.scan.spacing
    H, W, S = arr.shape
    groups_k = choose_slices(S, ss, slab_mm)
    slabs = np.stack([arr[:, :, g].astype(np.float32).mean(axis=2) for g in groups_k])
    grid = plane_grid((H, W), (sr, sc), spacing_model, multiple)
    images = resample_slices(slabs, (sr, sc), grid)
    valid = np.zeros(grid.padded, bool)
    valid[: grid.shape[0], : grid.shape[1]] = True
    for i in range(len(images)):
        images[i] = normalise(images[i], valid)
    maps = run_network(loaded, images)
    det, groups = _decode_all(view, maps, grid, groups_k, spacing_model, params, (loaded.card.info(),))
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
    return _decode_all(view, maps, grid, slice_groups, spacing_model, params, models)[0]


def _decode_all(
    view: SagittalView,
    maps: NDArray[np.float32],
    grid: PlaneGrid,
    slice_groups: list[list[int]],
    spacing_model: float,
    params: _decode.DecodeParams,
    models: tuple[ModelInfo, ...] = (),
) -> tuple[Detection, list[_decode.Group]]:
    n = len(slice_groups)
    h0, w0 = grid.shape
    instances: list[_decode.Instance] = []
    for i in range(n):
        body = _upsample2(maps[i, 0])[:h0, :w0]
        level = _upsample2(maps[i, 3])[:h0, :w0]
        heat = maps[i, 1][: (h0 + 1) // 2, : (w0 + 1) // 2]
        instances.extend(_decode.slice_instances(body, heat, level, spacing_model, params, slice_pos=i))
    groups = _decode.keep_groups(_decode.group_instances(instances, spacing_model, params), n, params)
    groups = _decode.drop_overlapping(groups, spacing_model)
    groups = _decode.drop_crowded(groups, spacing_model)
    flags: list[str] = []
    k_centre = [round(float(float(np.mean(g)))) for g in slice_groups]
    if not groups:
        flags.append("no vertebral body detected")
        return Detection((), (), tuple(flags), models, slices_used=tuple(k_centre)), []

    # --- labels
    sp2 = (spacing_model, spacing_model)
    cents = np.array([g.centroid for g in groups])
    preds = np.array([g.level for g in groups])
    weights = np.array([g.score * min(len(g.members), 3) for g in groups])
    lab = label_sequence(preds, weights, cents * spacing_model)
    groups_all = groups
    keep = lab.ordinals > 0
    if int(np.sum(~keep)):
        log.debug("left out %d bodies outside C2 … S1 (below the sacrum)", int(np.sum(~keep)))
    groups = [g for g, k in zip(groups, keep) if k]
    ordinals = lab.ordinals[keep]
    residuals = lab.residuals[keep]
    index = lab.index[keep]
    if not groups:
        flags.append("no vertebral body detected within C2 … S1")
        return Detection((), (), tuple(flags), models, slices_used=tuple(k_centre)), []
    if not lab.sacrum:
        flags.append("labelling_ambiguous: no sacrum visible; levels rest on the bodies' appearance alone")
    elif lab.s1 is None:  # S1 given by the uniform fit, not by the sacrum anchor's checks
        flags.append("labelling_ambiguous: the sacrum was not identified; the lowest body is S1 by the level fit alone")
    if lab.margin < 0.25:
        flags.append(f"labelling_ambiguous: the level fit is uncertain (margin {lab.margin:.2f} levels)")
    flags.extend(_sacrum_flags(lab, groups_all, h0))
    split = step_in_residuals(residuals[np.isfinite(residuals)])
    if split is not None:
        flags.append(
            "transitional_vertebra_suspected: the level estimates above and below "
            f"{ordinal_to_level(int(ordinals[split])).value} disagree by one level"
        )
    if np.any(np.diff(index) > 1):
        for i in np.nonzero(np.diff(index) > 1)[0].tolist():
            flags.append(
                f"vertebra_not_detected: between {ordinal_to_level(int(ordinals[i])).value} and "
                f"{ordinal_to_level(int(ordinals[i + 1])).value}"
            )
    if any(ordinal_to_level(int(o)).region == "cervical" for o in ordinals):
        flags.append("cervical levels are outside the detector's training data; treat cervical labels with caution")

    # --- corners on every slice, with the spine direction from the neighbours
    downs = spine_directions(np.array([g.centroid for g in groups]), sp2)
    for g, u in zip(groups, downs):
        for m in g.members:
            m.corners = quad_corners(m.pixels, u, sp2)

    to_input = np.linalg.inv(view.input.affine) @ view.scan.affine
    slice_in = {k: int(view.input_slice_index(k)) for k in set(k_centre)}

    def outline(ci: NDArray[np.floating]) -> SliceOutline:
        return _outline(view, ci, to_input, slice_in)

    def internal(rc: NDArray[np.floating], pos: int | float) -> NDArray[np.float64]:
        """Model-grid (row, col) on processed slice ``pos`` → internal voxel (row, col, slice)."""
        p = grid.to_slice(np.atleast_2d(rc))
        k = float(np.interp(pos, np.arange(n), k_centre)) if n > 1 else float(k_centre[0])
        return np.column_stack([p, np.full(len(p), k)])

    vertebrae: list[Vertebra] = []
    vgeo: list[VertebraGeometry] = []
    for g, o, r in zip(groups, ordinals, residuals):
        label = ordinal_to_level(int(o))
        cen_int = internal(g.centroid, g.slice_pos)[0]
        outlines = []
        corners_int: dict[int, tuple[Point, Point, Point, Point]] = {}
        for m in sorted(g.members, key=lambda m: m.slice_pos):
            ci = internal(m.corners, m.slice_pos)
            k_int = round(float(k_centre[m.slice_pos]))
            corners_int[k_int] = tuple((float(a), float(b)) for a, b in ci[:, :2])  # type: ignore[assignment]
            outlines.append(outline(ci))
        mid = g.mid_member()
        k_mid = round(float(k_centre[mid.slice_pos]))
        # label confidence: agreement of the network's estimate with the label, and how clear the fit was;
        # S1 has no estimate of its own (never labelled in training): it inherits the fit's clarity
        agree = float(np.exp(-(r**2) / (2 * 0.4**2))) if np.isfinite(r) else 1.0
        conf = agree * min(1.0, 0.5 + lab.margin)
        score = float(np.clip(g.score, 0, 1)) * conf
        vertebrae.append(
            Vertebra(
                label=label,
                score=score,
                centroid_voxel=vec3(view.to_input_voxel(cen_int)),
                centroid_mm=vec3(view.to_world(cen_int)),
                outlines=tuple(outlines),
                mid_slice=int(view.input_slice_index(k_mid)),
            )
        )
        vgeo.append(
            VertebraGeometry(
                label=label,
                mid_slice=k_mid,
                centre=(float(cen_int[0]), float(cen_int[1]), float(cen_int[2])),
                corners=corners_int,
                height_mm=quad_height_mm(grid.to_slice(mid.corners), (view.scan.spacing[0], view.scan.spacing[1])),
                level_estimate=float(g.level),
            )
        )

    # --- discs between consecutive bodies
    discs: list[Disc] = []
    dgeo: list[DiscGeometry] = []
    sp_in = (view.scan.spacing[0], view.scan.spacing[1])
    for i in range(len(groups) - 1):
        if index[i + 1] - index[i] != 1:
            continue
        up, lo = groups[i], groups[i + 1]
        dlevel = DiscLevel.between(vertebrae[i].label, vertebrae[i + 1].label)  # type: ignore[arg-type]
        shared = sorted({m.slice_pos for m in up.members} & {m.slice_pos for m in lo.members})
        if not shared:
            continue
        ups = {m.slice_pos: m for m in up.members}
        los = {m.slice_pos: m for m in lo.members}
        outlines = []
        cents_d, wts = [], []
        best_pos, best_w = shared[0], -1.0
        for pos in shared:
            cu, cl = ups[pos].corners, los[pos].corners
            quad = np.array([cu[3], cu[2], cl[1], cl[0]])
            ci = internal(quad, pos)
            outlines.append(outline(ci))
            wgt = min(ups[pos].area_mm2, los[pos].area_mm2)
            cents_d.append(ci.mean(axis=0))
            wts.append(wgt)
            if wgt > best_w:
                best_pos, best_w = pos, wgt
        wv = np.array(wts)
        cen = (np.array(cents_d) * wv[:, None]).sum(0) / wv.sum()
        discs.append(
            Disc(
                level=dlevel,
                centroid_voxel=vec3(view.to_input_voxel(cen)),
                centroid_mm=vec3(view.to_world(cen)),
                outlines=tuple(outlines),
            )
        )
        cu_s = grid.to_slice(ups[best_pos].corners)
        cl_s = grid.to_slice(los[best_pos].corners)
        spv = np.asarray(sp_in)
        dgeo.append(
            DiscGeometry(
                level=dlevel,
                slice_index=round(float(k_centre[best_pos])),
                upper_anterior=(float(cu_s[3, 0]), float(cu_s[3, 1])),
                upper_posterior=(float(cu_s[2, 0]), float(cu_s[2, 1])),
                lower_anterior=(float(cl_s[0, 0]), float(cl_s[0, 1])),
                lower_posterior=(float(cl_s[1, 0]), float(cl_s[1, 1])),
                centre=(float(cen[0]), float(cen[1]), float(cen[2])),
                upper_height_mm=quad_height_mm(cu_s, sp_in),
                lower_height_mm=quad_height_mm(cl_s, sp_in),
                height_anterior_mm=float(np.linalg.norm((cl_s[0] - cu_s[3]) * spv)),
                height_posterior_mm=float(np.linalg.norm((cl_s[1] - cu_s[2]) * spv)),
            )
        )
    return Detection(
        vertebrae=tuple(vertebrae),
        discs=tuple(discs),
        flags=tuple(flags),
        models=models,
        vertebra_geometry=tuple(vgeo),
        disc_geometry=tuple(dgeo),
        slices_used=tuple(k_centre),
    ), groups


def _touches_lower_edge(group: _decode.Group, rows: int, margin_px: int = 2) -> bool:
    """Whether a body reaches the lower edge of the image (model-grid rows ``rows``): it is cut, partly in view."""
    return any(len(m.pixels) and int(m.pixels[:, 0].max()) >= rows - 1 - margin_px for m in group.members)


EDGE_S1_RESIDUAL = -0.25  # bodies above an S1 cut by the image edge reading this much below L5/L4: flag


def _sacrum_flags(lab: SequenceLabels, groups: list[_decode.Group], rows: int) -> list[str]:
    """Labelling flags about the sacrum anchor (``groups``: every body, before those below S1 are dropped).

    * S1 cut by the lower edge of the image while the two bodies above it read lower than L5 and L4 (mean residual
      ≤ ``EDGE_S1_RESIDUAL``): a partly seen L5 at the edge looks like a sacrum, and the estimates lean that way.
      An edge-cut S1 alone is no reason (many lumbar fields of view end in the sacrum).
    * the body below the one taken as S1 is nearly as good an S1 (then every label may be one level too high).
    """
    out: list[str] = []
    if lab.s1 is None:
        return out
    above = lab.residuals[max(0, lab.s1 - 2) : lab.s1]
    above = above[np.isfinite(above)]
    if len(above) and float(np.mean(above)) <= EDGE_S1_RESIDUAL and _touches_lower_edge(groups[lab.s1], rows):
        out.append(
            "labelling_ambiguous: the body taken as S1 is cut by the lower edge of the image and the bodies above "
            f"it read {-float(np.mean(above)):.2f} levels lower than L5/L4"
        )
    if lab.s1_alternative is not None and lab.s1_alternative > lab.s1:
        out.append("labelling_ambiguous: the body below the one taken as S1 is nearly as likely S1")
    return out


def _outline(
    view: SagittalView, corners_internal: NDArray[np.floating], to_input: NDArray[np.float64], slice_in: dict[int, int]
) -> SliceOutline:
    """A :class:`SliceOutline` from four internal (row, col, slice) corners (``to_input``: internal → input voxel)."""
    c = np.asarray(corners_internal, dtype=float)
    vox = apply_affine(to_input, c)
    mm = apply_affine(view.scan.affine, c)
    k = round(float(np.median(c[:, 2])))
    return SliceOutline(
        slice_index=slice_in[k] if k in slice_in else int(view.input_slice_index(k)),
        corners_voxel=tuple(vec3(v) for v in vox),  # type: ignore[arg-type]
        corners_mm=tuple(vec3(v) for v in mm),  # type: ignore[arg-type]
    )
