"""From the detector network's maps to a :class:`~openspine.detection.types.Detection` (no model needed).

Steps, each a function:

1. :func:`find_bodies` – body instances per processed slice, grouped across slices (:mod:`.decode`);
2. :func:`label_bodies` – one consistent label sequence (:mod:`.labelling`); bodies below S1 are dropped;
   :func:`~openspine.detection.flags.labelling_flags` says how reliable it is;
3. :func:`outline_bodies` – four endplate corners per body and slice, with the spine direction from the neighbours;
4. :func:`vertebra_records` and :func:`disc_records` – the result records and their internal geometry, a disc
   between every two consecutive labelled bodies, outlined by their facing endplates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .._logging import get_logger
from ..geometry import apply_affine
from ..levels import DiscLevel
from ..results import Disc, ModelInfo, SliceOutline, Vertebra, vec3
from ..scan import SagittalView
from . import decode as _decode
from .flags import labelling_flags
from .labelling import SequenceLabels, label_sequence, ordinal_to_level
from .outline import quad_corners, quad_height_mm, spine_directions
from .preprocess import PlaneGrid
from .types import Detection, DiscGeometry, Point, VertebraGeometry

log = get_logger("detection")

LABEL_SD = 0.4  # levels: how far the network's estimate may stray from the label before confidence drops


@dataclass(frozen=True)
class ProcessedSlices:
    """What the network saw: the model grid, the internal slices averaged into each processed slice, and the
    model's pixel size (mm)."""

    grid: PlaneGrid
    slice_groups: list[list[int]]
    spacing_mm: float


def decode_all(
    view: SagittalView,
    maps: NDArray[np.float32],
    slices: ProcessedSlices,
    params: _decode.DecodeParams,
    models: tuple[ModelInfo, ...] = (),
) -> tuple[Detection, list[_decode.Group]]:
    """The detection, and the body instances behind each of its vertebrae (model grid, same order)."""
    grid, spacing_model = slices.grid, slices.spacing_mm
    k_centre = [round(float(float(np.mean(g)))) for g in slices.slice_groups]
    groups = find_bodies(maps, grid, spacing_model, params)
    if not groups:
        return _nothing("no vertebral body detected", models, k_centre), []
    labelled = label_bodies(groups, spacing_model)
    if not labelled.groups:
        return _nothing("no vertebral body detected within C2 … S1", models, k_centre), []
    flags = labelling_flags(
        labelled.fit, groups, grid.shape[0], labelled.ordinals, labelled.residuals, labelled.index,
        context_limit=params.context_disagreement,
    )  # fmt: skip
    outline_bodies(labelled.groups, spacing_model)
    frame = _Frame.of(view, grid, k_centre, [(min(g), max(g)) for g in slices.slice_groups])
    vertebrae, vgeo = vertebra_records(frame, labelled)
    side = side_flag(vertebrae)
    flags += [side] if side else []
    discs, dgeo = disc_records(frame, labelled, vertebrae)
    detection = Detection(
        vertebrae=tuple(vertebrae),
        discs=tuple(discs),
        flags=tuple(flags),
        models=models,
        vertebra_geometry=tuple(vgeo),
        disc_geometry=tuple(dgeo),
        slices_used=tuple(k_centre),
        alternative_shift=labelled.fit.alternative if any(f.startswith("labelling_alternative") for f in flags) else 0,
        sacrum_seen=bool(labelled.fit.sacrum),
    )
    return detection, labelled.groups


def _nothing(flag: str, models: tuple[ModelInfo, ...], k_centre: list[int]) -> Detection:
    return Detection((), (), (flag,), models, slices_used=tuple(k_centre))


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


def find_bodies(
    maps: NDArray[np.float32], grid: PlaneGrid, spacing_model: float, params: _decode.DecodeParams
) -> list[_decode.Group]:
    """Body instances on each processed slice, grouped across slices, overlapping, off-column and crowded groups
    dropped (off-column first: a false body beside the column must not count as half of a body there)."""
    n = len(maps)
    h0, w0 = grid.shape
    instances: list[_decode.Instance] = []
    for i in range(n):
        body = _upsample2(maps[i, 0])[:h0, :w0]
        level = _upsample2(maps[i, 3])[:h0, :w0]
        context = _upsample2(maps[i, 4])[:h0, :w0] if maps.shape[1] > 4 else None  # the level-context model's
        heat = maps[i, 1][: (h0 + 1) // 2, : (w0 + 1) // 2]
        instances.extend(
            _decode.slice_instances(body, heat, level, spacing_model, params, slice_pos=i, context=context)
        )
    groups = _decode.keep_groups(_decode.group_instances(instances, spacing_model, params), n, params)
    groups = _decode.drop_overlapping(groups, spacing_model)
    return _decode.drop_crowded(_decode.drop_off_column(groups, spacing_model), spacing_model)


@dataclass(frozen=True)
class Labelled:
    """The bodies kept by the labelling (C2 … S1), top to bottom, with the fit that labelled them."""

    fit: SequenceLabels  # of every body found (before those below S1 were dropped)
    groups: list[_decode.Group]
    ordinals: NDArray[np.int64]  # :attr:`Level.ordinal` of each kept body
    residuals: NDArray[np.float64]  # network estimate − label
    index: NDArray[np.int64]  # position along the spine (a gap where a body was missed)


def label_bodies(groups: list[_decode.Group], spacing_model: float) -> Labelled:
    """Fit one label sequence to the bodies' level estimates and keep the labelled ones."""
    cents = np.array([g.centroid for g in groups])
    preds = np.array([g.level for g in groups])
    weights = np.array([g.score * min(len(g.members), 3) for g in groups])
    lab = label_sequence(preds, weights, cents * spacing_model)
    keep = lab.ordinals > 0
    if int(np.sum(~keep)):
        log.debug("left out %d bodies outside C2 … S1 (below the sacrum)", int(np.sum(~keep)))
    kept = [g for g, k in zip(groups, keep) if k]
    return Labelled(lab, kept, lab.ordinals[keep], lab.residuals[keep], lab.index[keep])


def outline_bodies(groups: list[_decode.Group], spacing_model: float) -> None:
    """Set the four corners of every body instance, with the spine direction from its neighbours."""
    sp2 = (spacing_model, spacing_model)
    downs = spine_directions(np.array([g.centroid for g in groups]), sp2)
    for g, u in zip(groups, downs):
        for m in g.members:
            m.corners = quad_corners(m.pixels, u, sp2)


@dataclass(frozen=True)
class _Frame:
    """Where the processed slices lie: model grid → internal voxels → input voxels and RAS+ mm."""

    view: SagittalView
    grid: PlaneGrid
    k_centre: list[int]  # internal slice index of each processed slice
    to_input: NDArray[np.float64]  # internal → input voxel
    k_range: list[tuple[int, int]]  # the first and last internal slice averaged into each processed slice

    @classmethod
    def of(cls, view: SagittalView, grid: PlaneGrid, k_centre: list[int], k_range: list[tuple[int, int]]) -> _Frame:
        to_input = np.linalg.inv(view.input.affine) @ view.scan.affine
        return cls(view, grid, k_centre, to_input, k_range)

    @property
    def spacing_rc(self) -> tuple[float, float]:
        return (self.view.scan.spacing[0], self.view.scan.spacing[1])

    def internal(self, rc: NDArray[np.floating], pos: int | float) -> NDArray[np.float64]:
        """Model-grid (row, col) on processed slice ``pos`` → internal voxel (row, col, slice)."""
        n = len(self.k_centre)
        p = self.grid.to_slice(np.atleast_2d(rc))
        k = float(np.interp(pos, np.arange(n), self.k_centre)) if n > 1 else float(self.k_centre[0])
        return np.column_stack([p, np.full(len(p), k)])

    def slice_of(self, pos: int) -> int:
        """Internal slice index of processed slice ``pos``."""
        return round(float(self.k_centre[pos]))

    def outline(self, corners_internal: NDArray[np.floating]) -> SliceOutline:
        """A :class:`SliceOutline` from four internal (row, col, slice) corners."""
        c = np.asarray(corners_internal, dtype=float)
        vox = apply_affine(self.to_input, c)
        mm = apply_affine(self.view.scan.affine, c)
        k = round(float(np.median(c[:, 2])))
        at = (float(np.mean(c[:, 0])), float(np.mean(c[:, 1])))  # the outline's centre, for a resliced volume
        return SliceOutline(
            slice_index=int(self.view.input_slice_index(k, at)),
            corners_voxel=tuple(vec3(v) for v in vox),  # type: ignore[arg-type]
            corners_mm=tuple(vec3(v) for v in mm),  # type: ignore[arg-type]
        )


# a body whose section on the first or last slice is at least this share of its largest section, and which does not
# reach the other side, runs on past that side of the imaged volume: the part in view is cut near its middle, so its
# centre lies toward that side (a body wider than the slab, cut on both sides, keeps its centre in view)
SIDE_AREA_SHARE = 0.8
AT_SIDE_NOTE = "cut by the side of the imaged volume: its centre may lie outside it (its position: the part in view)"


def at_volume_side(group: _decode.Group, n_slices: int) -> bool:
    """Whether the body runs on past the first or the last of ``n_slices`` processed slices, but not both (never for
    one or two slices: a mid-sagittal slice is expected to cut every body)."""
    if n_slices < 3 or not group.members:
        return False
    largest = max(m.area_mm2 for m in group.members)
    ends = {m.slice_pos for m in group.members if m.slice_pos in (0, n_slices - 1)}
    cut = {m.slice_pos for m in group.members if m.slice_pos in ends and m.area_mm2 >= SIDE_AREA_SHARE * largest}
    return len(ends) == 1 and len(cut) == 1


def side_flag(vertebrae: Sequence[Vertebra]) -> str | None:
    """The scan's flag naming the bodies cut by the side of the volume (None: none is)."""
    cut = [v for v in vertebrae if v.note == AT_SIDE_NOTE]
    if not cut:
        return None
    names = ", ".join(v.label.value if v.label else "an unlabelled body" for v in cut)
    return (
        f"vertebra_at_volume_side: {names} run on past the side of the imaged volume (a spine leaving the slab: "
        "scoliosis, an oblique or narrow slab); their positions are those of the part in view, and the labels of a "
        "spine that leaves the volume may be off"
    )


def vertebra_records(frame: _Frame, labelled: Labelled) -> tuple[list[Vertebra], list[VertebraGeometry]]:
    """One :class:`Vertebra` and its internal geometry per kept body."""
    view = frame.view
    margin = labelled.fit.margin
    vertebrae: list[Vertebra] = []
    vgeo: list[VertebraGeometry] = []
    for g, o, r in zip(labelled.groups, labelled.ordinals, labelled.residuals):
        label = ordinal_to_level(int(o))
        cen_int = frame.internal(g.centroid, g.slice_pos)[0]
        outlines = []
        corners_int: dict[int, tuple[Point, Point, Point, Point]] = {}
        for m in sorted(g.members, key=lambda m: m.slice_pos):
            ci = frame.internal(m.corners, m.slice_pos)
            corners_int[frame.slice_of(m.slice_pos)] = tuple((float(a), float(b)) for a, b in ci[:, :2])  # type: ignore[assignment]
            outlines.append(frame.outline(ci))
        mid = g.mid_member()
        k_mid = frame.slice_of(mid.slice_pos)
        vertebrae.append(
            Vertebra(
                label=label,
                score=float(np.clip(g.score, 0, 1)) * label_confidence(float(r), margin),
                centroid_voxel=vec3(view.to_input_voxel(cen_int)),
                centroid_mm=vec3(view.to_world(cen_int)),
                outlines=tuple(outlines),
                mid_slice=int(view.input_slice_index(k_mid, (float(cen_int[0]), float(cen_int[1])))),
                note=AT_SIDE_NOTE if at_volume_side(g, len(frame.k_centre)) else None,
            )
        )
        vgeo.append(
            VertebraGeometry(
                label=label,
                mid_slice=k_mid,
                centre=(float(cen_int[0]), float(cen_int[1]), float(cen_int[2])),
                corners=corners_int,
                height_mm=quad_height_mm(frame.grid.to_slice(mid.corners), frame.spacing_rc),
                level_estimate=float(g.level),
            )
        )
    return vertebrae, vgeo


def label_confidence(residual: float, margin: float) -> float:
    """How sure a body's label is: the network's estimate agreeing with it, and how clear the fit was. S1 has no
    estimate of its own (never labelled in training; residual NaN): it inherits the fit's clarity."""
    agree = float(np.exp(-(residual**2) / (2 * LABEL_SD**2))) if np.isfinite(residual) else 1.0
    return agree * min(1.0, 0.5 + margin)


def disc_records(frame: _Frame, labelled: Labelled, vertebrae: list[Vertebra]) -> tuple[list[Disc], list[DiscGeometry]]:
    """A disc between every two consecutive bodies (no body missed between them) that share a processed slice."""
    discs: list[Disc] = []
    dgeo: list[DiscGeometry] = []
    groups, index = labelled.groups, labelled.index
    for i in range(len(groups) - 1):
        if index[i + 1] - index[i] != 1:
            continue
        up, lo = groups[i], groups[i + 1]
        shared = sorted({m.slice_pos for m in up.members} & {m.slice_pos for m in lo.members})
        if not shared:
            continue
        dlevel = DiscLevel.between(vertebrae[i].label, vertebrae[i + 1].label)  # type: ignore[arg-type]
        disc, best_pos, centre = _disc_record(frame, dlevel, up, lo, shared)
        discs.append(disc)
        ups = {m.slice_pos: m for m in up.members}
        los = {m.slice_pos: m for m in lo.members}
        dgeo.append(_disc_geometry(frame, dlevel, ups[best_pos], los[best_pos], best_pos, centre))
    return discs, dgeo


def _disc_record(
    frame: _Frame, level: DiscLevel, up: _decode.Group, lo: _decode.Group, shared: list[int]
) -> tuple[Disc, int, NDArray[np.float64]]:
    """The disc's record (outlined by the facing endplates on every shared slice), the slice that shows it best
    (where the smaller of its two bodies is largest) and its internal centre."""
    ups = {m.slice_pos: m for m in up.members}
    los = {m.slice_pos: m for m in lo.members}
    outlines = []
    cents_d, wts = [], []
    best_pos, best_w = shared[0], -1.0
    for pos in shared:
        cu, cl = ups[pos].corners, los[pos].corners
        quad = np.array([cu[3], cu[2], cl[1], cl[0]])
        ci = frame.internal(quad, pos)
        outlines.append(frame.outline(ci))
        wgt = min(ups[pos].area_mm2, los[pos].area_mm2)
        cents_d.append(ci.mean(axis=0))
        wts.append(wgt)
        if wgt > best_w:
            best_pos, best_w = pos, wgt
    wv = np.array(wts)
    cen = (np.array(cents_d) * wv[:, None]).sum(0) / wv.sum()
    disc = Disc(
        level=level,
        centroid_voxel=vec3(frame.view.to_input_voxel(cen)),
        centroid_mm=vec3(frame.view.to_world(cen)),
        outlines=tuple(outlines),
    )
    return disc, best_pos, cen


def _disc_geometry(
    frame: _Frame,
    level: DiscLevel,
    upper: _decode.Instance,
    lower: _decode.Instance,
    pos: int,
    centre: NDArray[np.float64],
) -> DiscGeometry:
    """The disc's internal geometry from its two bodies' instances on processed slice ``pos``."""
    sp_in = frame.spacing_rc
    cu_s = frame.grid.to_slice(upper.corners)
    cl_s = frame.grid.to_slice(lower.corners)
    spv = np.asarray(sp_in)
    # the slice the grader reads: of the slab that shows the disc best, the one nearest the disc's centre from left to
    # right (over every slab it is seen on). A slab's own middle slice had made the grades depend on where the slabs
    # of a thin-slice volume begin: one slice more on one side (or the volume mirrored) had moved the slice graded by
    # one and changed 12–17 % of the val volumes' Pfirrmann grades (scripts/grading_stability.py --volumes)
    first, last = frame.k_range[pos]
    return DiscGeometry(
        level=level,
        slice_index=int(np.clip(round(float(centre[2])), first, last)),
        upper_anterior=(float(cu_s[3, 0]), float(cu_s[3, 1])),
        upper_posterior=(float(cu_s[2, 0]), float(cu_s[2, 1])),
        lower_anterior=(float(cl_s[0, 0]), float(cl_s[0, 1])),
        lower_posterior=(float(cl_s[1, 0]), float(cl_s[1, 1])),
        centre=(float(centre[0]), float(centre[1]), float(centre[2])),
        upper_height_mm=quad_height_mm(cu_s, sp_in),
        lower_height_mm=quad_height_mm(cl_s, sp_in),
        height_anterior_mm=float(np.linalg.norm((cl_s[0] - cu_s[3]) * spv)),
        height_posterior_mm=float(np.linalg.norm((cl_s[1] - cu_s[2]) * spv)),
    )
