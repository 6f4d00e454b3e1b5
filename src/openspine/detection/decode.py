"""From the network's maps to vertebral-body instances: per slice, then grouped across slices.

All coordinates here are on the *model grid* (the slice resampled to the model's square pixel, rows S→I, cols
A→P); :mod:`openspine.detection` maps them to the scan. Pure numpy / scipy, no model needed, so every step is
unit-tested on synthetic maps.

Per slice: peaks of the body-centre heat-map inside the body mask seed instances; a connected component of the
mask holding several peaks (bodies touching across a thin disc) is split between its peaks. Across slices:
instances are grouped greedily, strongest first, with the nearest group whose in-plane centre is close enough and
that has no instance on that slice yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage


@dataclass(frozen=True)
class DecodeParams:
    """Decoding thresholds (stored in the model card's ``decode`` section; these are the defaults)."""

    body_threshold: float = 0.5
    peak_threshold: float = 0.2
    peak_window_mm: float = 22.5
    min_area_mm2: float = 60.0
    group_distance_mm: float = 12.0
    min_group_score: float = 0.2
    # levels by which the level-context model (if the card names one) may read the labelled bodies differently
    # before the labelling is flagged
    context_disagreement: float = 0.5

    @classmethod
    def from_card(cls, d: dict[str, Any] | None) -> DecodeParams:
        if not d:
            return cls()
        known = {k: float(v) for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)  # type: ignore[arg-type]


@dataclass
class Instance:
    """One vertebral body seen on one processed slice."""

    slice_pos: int  # index of the processed slice (network input) it was found on
    pixels: NDArray[np.int64]  # (N, 2) model-grid (row, col)
    centroid: NDArray[np.float64]  # (2,) model grid
    area_mm2: float
    score: float  # peak heat × mean body probability
    level: float  # median predicted ordinal over the instance
    corners: NDArray[np.float64] = field(default_factory=lambda: np.full((4, 2), np.nan))
    context_level: float = float("nan")  # the level-context model's ordinal at the instance (NaN: no such model)


@dataclass
class Group:
    """One vertebral body: its instances on the slices where it was seen."""

    members: list[Instance] = field(default_factory=list)

    @property
    def weights(self) -> NDArray[np.float64]:
        return np.array([m.area_mm2 for m in self.members], dtype=float)

    @property
    def centroid(self) -> NDArray[np.float64]:
        """Area-weighted in-plane centroid (model grid)."""
        w = self.weights
        return np.asarray((np.array([m.centroid for m in self.members]) * w[:, None]).sum(0) / w.sum(), dtype=float)

    @property
    def slice_pos(self) -> float:
        w = self.weights
        return float((np.array([m.slice_pos for m in self.members]) * w).sum() / w.sum())

    @property
    def score(self) -> float:
        return float(max(m.score for m in self.members))

    @property
    def level(self) -> float:
        """Area-weighted median of the members' predicted ordinals."""
        return self._weighted_median(np.array([m.level for m in self.members]))

    @property
    def context_level(self) -> float:
        """Area-weighted median of the members' level-context ordinals (NaN without a level-context model)."""
        return self._weighted_median(np.array([m.context_level for m in self.members]))

    def _weighted_median(self, lv: NDArray[np.float64]) -> float:
        w = self.weights
        o = np.argsort(lv)
        cw = np.cumsum(w[o])
        return float(lv[o][int(np.searchsorted(cw, cw[-1] / 2.0))])

    def mid_member(self) -> Instance:
        """The member with the largest area (the body's mid-sagittal view)."""
        return max(self.members, key=lambda m: m.area_mm2)

    def has_slice(self, pos: int) -> bool:
        return any(m.slice_pos == pos for m in self.members)


def find_peaks(heat: NDArray[np.floating], threshold: float, window: int) -> NDArray[np.int64]:
    """(N, 2) local maxima of ``heat`` above ``threshold`` in a ``window``-pixel neighbourhood, strongest first."""
    h = np.asarray(heat, dtype=np.float32)
    mx = ndimage.maximum_filter(h, size=max(1, int(window)), mode="constant", cval=0.0)
    pk = np.argwhere((h >= mx) & (h > threshold))
    if len(pk) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    order = np.argsort(-h[pk[:, 0], pk[:, 1]], kind="stable")
    return np.asarray(pk[order], dtype=np.int64)


def slice_instances(
    body: NDArray[np.floating],
    heat: NDArray[np.floating],
    level: NDArray[np.floating],
    spacing: float,
    params: DecodeParams,
    slice_pos: int = 0,
    heat_stride: int = 2,
    context: NDArray[np.floating] | None = None,
) -> list[Instance]:
    """Body instances on one slice.

    Args:
        body: body probability on the model grid (H, W).
        heat: body-centre heat-map on the output grid (H / heat_stride, W / heat_stride).
        level: predicted ordinal on the model grid (H, W).
        spacing: model-grid pixel size (mm).
        context: the level-context model's ordinal on the model grid (H, W), if there is one.
    """
    fg = np.asarray(body) > params.body_threshold
    if not fg.any():
        return []
    window = round(float(params.peak_window_mm / (spacing * heat_stride))) | 1
    peaks = find_peaks(heat, params.peak_threshold, window)
    if len(peaks) == 0:
        return []
    comp, _ = ndimage.label(fg)
    peaks_m = (peaks + 0.5) * heat_stride - 0.5  # output grid → model grid
    by_comp: dict[int, list[tuple[NDArray[np.float64], float]]] = {}
    for p, pm in zip(peaks, peaks_m):
        r, c = round(float(pm[0])), round(float(pm[1]))
        r, c = min(max(r, 0), fg.shape[0] - 1), min(max(c, 0), fg.shape[1] - 1)
        lab = int(comp[r, c])
        if lab == 0:  # the peak sits just outside the mask: take the mask pixel nearest to it within 2 pixels
            r0, r1, c0, c1 = max(r - 2, 0), r + 3, max(c - 2, 0), c + 3
            win = comp[r0:r1, c0:c1]
            if not win.any():
                continue
            nz = np.argwhere(win > 0)
            j = int(np.argmin(((nz - [r - r0, c - c0]) ** 2).sum(1)))
            lab = int(win[nz[j, 0], nz[j, 1]])
        by_comp.setdefault(lab, []).append((pm, float(heat[p[0], p[1]])))
    out: list[Instance] = []
    px_area = spacing * spacing
    objects = ndimage.find_objects(comp)
    for lab, pks in by_comp.items():
        sl = objects[lab - 1]
        if sl is None:
            continue
        local = np.argwhere(comp[sl] == lab) + np.array([sl[0].start, sl[1].start])
        if len(pks) == 1:
            parts = [local]
        else:  # several bodies in one component: each pixel goes to its nearest peak
            centres = np.array([p for p, _ in pks])
            d = ((local[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
            owner = np.argmin(d, axis=1)
            parts = [local[owner == i] for i in range(len(pks))]
        for (_, pv), pix in zip(pks, parts):
            area = len(pix) * px_area
            if area < params.min_area_mm2:
                continue
            prob = float(np.mean(body[pix[:, 0], pix[:, 1]]))
            lv = float(np.median(level[pix[:, 0], pix[:, 1]]))
            ctx = float(np.median(context[pix[:, 0], pix[:, 1]])) if context is not None else float("nan")
            out.append(Instance(slice_pos, pix, pix.mean(axis=0), area, pv * prob, lv, context_level=ctx))
    return out


def group_instances(instances: list[Instance], spacing: float, params: DecodeParams) -> list[Group]:
    """Group instances of all slices into bodies (strongest first; nearest compatible group within reach)."""
    reach = params.group_distance_mm / spacing
    groups: list[Group] = []
    for inst in sorted(instances, key=lambda m: -m.score):
        best, best_d = None, reach
        for g in groups:
            if g.has_slice(inst.slice_pos):
                continue
            d = float(np.linalg.norm(g.centroid - inst.centroid))
            if d < best_d:
                best, best_d = g, d
        if best is None:
            groups.append(Group([inst]))
        else:
            best.members.append(inst)
    return groups


def keep_groups(groups: list[Group], n_slices: int, params: DecodeParams) -> list[Group]:
    """Drop weak groups: too low a score, or (when several slices were processed) seen on one slice only and not
    convincingly."""
    out = []
    for g in groups:
        if g.score < params.min_group_score:
            continue
        if n_slices >= 3 and len(g.members) < 2 and g.score < 0.75:
            continue
        out.append(g)
    return sorted(out, key=lambda g: float(g.centroid[0]))


def drop_overlapping(groups: list[Group], spacing: float, min_distance_mm: float = 12.0) -> list[Group]:
    """Two groups closer than ``min_distance_mm`` in-plane are one body split across slices: keep the stronger."""
    kept: list[Group] = []
    for g in sorted(groups, key=lambda g: -g.score * len(g.members)):
        if all(np.linalg.norm(g.centroid - k.centroid) * spacing >= min_distance_mm for k in kept):
            kept.append(g)
    return sorted(kept, key=lambda g: float(g.centroid[0]))


def drop_crowded(groups: list[Group], spacing: float, ratio: float = 0.55) -> list[Group]:
    """Remove bodies that sit much closer to a neighbour than bodies do along this spine (a body split in two, or
    a fragment of an endplate): of two consecutive bodies closer along the column than ``ratio`` × the median
    spacing (:func:`_body_spacing`), the one with less evidence (score × area) goes. Along the column, because a body
    split front from back (a mark drawn into it, a cleft) gives two centres side by side, apart but at one height;
    one such pair at a time: several are two columns, not a split body. Needs at least four bodies to know the
    spacing."""
    out = sorted(groups, key=lambda g: float(g.centroid[0]))
    while len(out) >= 4:
        c = np.array([g.centroid for g in out]) * spacing
        med = _body_spacing(c, np.array([g.weights.sum() for g in out]))
        # side by side counts only within one spacing: farther off is another column (a montage, a ghost) or a
        # false body off the column (drop_off_column), not half of this body
        d = np.linalg.norm(np.diff(c, axis=0), axis=1)
        along = np.where(d < med, _along_column(c, 1.5 * med), d)
        beside = (along < ratio * med) & (d >= ratio * med)
        if int(beside.sum()) > 1:  # several pairs side by side: two columns (a ladder of shapes), no split body
            along = d
        i = int(np.argmin(along))
        if along[i] >= ratio * med:
            break

        def evidence(g: Group) -> float:
            return g.score * float(g.weights.sum())

        out.pop(i if evidence(out[i]) < evidence(out[i + 1]) else i + 1)
    return out


# bodies of at least this share of the median body area (summed over slices) set the spacing that crowding is judged
# against: fragments (a sliver at an endplate, a body's edge on a tilted volume's outer slice) split the intervals they
# sit in, and two of them had pulled the median spacing of a tilted train volume from 35 to 25 mm, under which they
# stayed and shifted every label above them
WHOLE_BODY_AREA_SHARE = 0.25


def _body_spacing(c: NDArray[np.float64], areas: NDArray[np.float64]) -> float:
    """The median distance between consecutive centres ``c`` (mm) of the whole bodies (:data:`WHOLE_BODY_AREA_SHARE`),
    or of all bodies where fewer than four are whole."""
    whole = areas >= WHOLE_BODY_AREA_SHARE * float(np.median(areas))
    use = c[whole] if int(whole.sum()) >= 4 else c
    return float(np.median(np.linalg.norm(np.diff(use, axis=0), axis=1)))


def _along_column(c: NDArray[np.float64], reach: float) -> NDArray[np.float64]:
    """How far apart consecutive top-to-bottom centres ``c`` (mm) lie along the column: each step projected on the
    direction from the centre before the pair to the centre after it, each counted only within ``reach`` of the
    pair (a body of another column, a montage's, must not turn the direction); the plain distance where neither is."""
    n = len(c)
    steps = np.diff(c, axis=0)
    out = np.linalg.norm(steps, axis=1)
    for i in range(n - 1):
        a = i - 1 if i >= 1 and np.linalg.norm(c[i] - c[i - 1]) <= reach else i
        b = i + 2 if i + 2 < n and np.linalg.norm(c[i + 2] - c[i + 1]) <= reach else i + 1
        way = c[b] - c[a]
        norm = float(np.linalg.norm(way))
        if (a, b) != (i, i + 1) and norm > 0:
            out[i] = abs(float(np.dot(steps[i], way))) / norm
    return out


# a body this far across the spine from the line through the bodies above and below it is not one of the column's (a
# false body in the face, the bowel or the pelvis); consecutive bodies' centres on a real spine stay within a few
# millimetres of that line, also at the lumbosacral turn and over a slipped vertebra. A body at either end is measured
# against the line through its two neighbours, extended, and allowed half as much again. Over the 324 shared scans
# one body was set aside besides the face one, below the sacrum, where the labelling leaves bodies out anyway
# (`python scripts/body_geometry_survey.py --data ../shared/data`)
OFF_COLUMN_MM = 35.0
OFF_COLUMN_END_FACTOR = 1.5
OFF_COLUMN_MAX_GAP = 1.6


def _across(c: NDArray[np.float64], i: int, a: int, b: int) -> float:
    """Distance (mm) of centre ``c[i]`` from the line through ``c[a]`` and ``c[b]``."""
    d = c[b] - c[a]
    n = float(np.hypot(d[0], d[1]))
    p = c[i] - c[a]
    return float(np.hypot(p[0], p[1])) if n == 0 else abs(float(d[0] * p[1] - d[1] * p[0])) / n


def off_column_ratio(c: NDArray[np.float64], areas: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """How far each of the top-to-bottom centres ``c`` (mm) lies from the column its neighbours form, as a share of
    what is allowed at its place (> 1: off the column). A body is judged only where the column there is known: its
    two neighbours no farther apart than about two bodies' spacing (:data:`OFF_COLUMN_MAX_GAP` × the median
    distance between consecutive centres, twice; between the whole bodies' centres where their ``areas`` are given,
    :func:`_body_spacing`), and an end body no farther along the column from its neighbour than one spacing; a line
    extended across a gap says little of where the column runs. 0 where not judged, and for fewer than four
    centres."""
    n = len(c)
    out = np.zeros(n)
    if n < 4:
        return out
    spacing = _body_spacing(c, areas) if areas is not None else float(np.median(np.hypot(*np.diff(c, axis=0).T)))
    step = OFF_COLUMN_MAX_GAP * spacing
    for i in range(1, n - 1):
        if np.hypot(*(c[i + 1] - c[i - 1])) <= 2 * step:
            out[i] = _across(c, i, i - 1, i + 1) / OFF_COLUMN_MM
    end = OFF_COLUMN_MM * OFF_COLUMN_END_FACTOR
    for i, a, b in ((0, 1, 2), (n - 1, n - 2, n - 3)):
        along = c[a] - c[b]
        span = float(np.hypot(*along))
        if 0 < span <= step and abs(float(np.dot(c[i] - c[a], along))) / span <= step:
            out[i] = _across(c, i, a, b) / end
    return out


def drop_off_column(groups: list[Group], spacing: float) -> list[Group]:
    """Remove bodies that lie off the column the others form (:data:`OFF_COLUMN_MM`), one at a time, worst first, and
    only where without it its neighbours form a column: two columns side by side (a montage of two spines) stay for
    the analysis to refuse. Needs at least four bodies."""
    out = sorted(groups, key=lambda g: float(g.centroid[0]))
    while len(out) >= 4:
        c = np.array([g.centroid for g in out]) * spacing
        areas = np.array([g.weights.sum() for g in out])  # the whole bodies set the spacing, as for crowding
        off = off_column_ratio(c, areas)
        i = int(np.argmax(off))
        if off[i] <= 1.0:
            break
        rest = off_column_ratio(np.delete(c, i, axis=0), np.delete(areas, i))
        if np.any(rest[max(0, i - 2) : i + 2] > 1.0):
            break
        out.pop(i)
    return out
