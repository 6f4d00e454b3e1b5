"""Matching the structures of two series of one study (e.g. a sagittal T2 and a sagittal T1 series) by level.

:func:`match_series` takes the detections of two series with their :class:`~openspine.scan.SagittalView` and returns
a :class:`SeriesMatch`: the vertebral bodies and discs that both series found, paired by level. Unlabelled bodies and
discs are never paired. Before anything is paired the two sequences of levels must agree; a disagreement yields a
``series_mismatch: …`` flag and **no pairs** (never a silent merge):

* each series names every level at most once, top to bottom in anatomical order;
* the levels both series found (the overlap) are non-empty and consecutive in each series: a level that one series
  found between two shared levels and the other did not (a missed body, or a transitional vertebra counted in one
  series only) breaks the run;
* the *pattern* of the disc centres' spacings (mm, from each disc to the next) of the discs both series found agrees,
  after scaling one series' spacings to the other's: a body missed or added in one series changes the pattern (the
  flag says when moving one series by a level fits clearly better: a level shift). A uniform scale (a wrong pixel
  size in one series) does not change it: it is noted as ``series_scale: …``, never taken for a level mismatch.
  Lumbar spacings are much alike, so a clean shift of a whole sequence is not always visible here; with a shared
  frame the positions catch it;
* when both series share a frame of reference (``shared_frame``: e.g. two DICOM series with the same
  FrameOfReferenceUID; the caller knows this, the detections do not), every paired structure must lie within
  ``tolerance_mm`` of its partner in world (RAS+) mm. A level shift moves a structure by a whole vertebral spacing
  (about 30–40 mm in the lumbar spine), far beyond the default tolerance. Without a shared frame the positions of
  the two series are not comparable and the match is by level alone.

Measured on the SPIDER patients with a T1 slice (T2 and T1 mid-sagittal slices, separate series, no shared frame),
``python scripts/match_series_survey.py --data ../shared/data --split train`` (and ``--split val``): **108 of 109**
train pairs and **26 of 26** val pairs match with agreeing level sequences with detector 1.3 (with 1.1: 105 and 25;
flagged now: train patient 58, whose T1 detection reaches T5 and S1, its T2 T10 … L5). What the match cannot do is
tell patients apart: with ``--other-patients`` (each T2 slice beside the next patient's T1) 107 of 109 train and 26
of 26 val pairs match just as well, because lumbar level sequences and disc spacings are much alike. So a T1 given
separately is also checked by what the two files name (:mod:`openspine.study.identity`). 16 train and 2 val pairs
carry a ``series_scale`` note: in these renders both series often share one matrix size while their recorded pixel
spacings differ (e.g. 0.47 vs 0.59 mm, a 1.25× scale), which the pattern check first took for level mismatches (16
train pairs). No SPIDER pair shares a frame of reference; the world-mm check is tested on synthetic detections and on
the real two-series DICOM test study (``tests/dicom_fixtures.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from .._logging import get_logger
from ..detection.types import Detection
from ..errors import ConfigError
from ..levels import DiscLevel, Level
from ..results import Disc, Vertebra
from ..scan import SagittalView

log = get_logger("study.match")

__all__ = ["DEFAULT_TOLERANCE_MM", "MISMATCH_FLAG", "MatchedDisc", "MatchedVertebra", "SeriesMatch", "match_series"]

MISMATCH_FLAG = "series_mismatch"
DEFAULT_TOLERANCE_MM = 15.0
# disc-spacing pattern: the two series disagree when the spacings of the discs both found differ by more than this
# share of the mean spacing (median over the shared spacings; on the 26 SPIDER val T2/T1 pairs that agree it is at
# most 0.06); at least this many shared spacings are needed for the comparison
SPACING_MISFIT = 0.15
SPACING_MIN_SHARED = 3
# the two series' distances differ in scale by more than this share: noted (``series_scale``), not a mismatch
SCALE_FLAG = "series_scale"
SCALE_NOTE = 0.1

_L = TypeVar("_L", Level, DiscLevel)


_R = TypeVar("_R", Vertebra, Disc)


@dataclass(frozen=True)
class Matched(Generic[_L, _R]):
    """One structure found in both series (``distance_mm``: between the two centroids, shared frame only)."""

    level: _L
    first: _R
    second: _R
    distance_mm: float | None = None


MatchedVertebra = Matched[Level, Vertebra]  # a vertebral body found in both series
MatchedDisc = Matched[DiscLevel, Disc]  # a disc found in both series


@dataclass(frozen=True)
class SeriesMatch:
    """The structures of two series paired by level, or the reasons they were not.

    ``vertebrae`` and ``discs`` are empty whenever ``flags`` holds a ``series_mismatch`` flag. ``shared_frame`` says
    whether positions were compared in world mm; ``first_levels`` and ``second_levels`` are each series' labelled
    bodies top to bottom (what the check compared).
    """

    names: tuple[str, str]
    vertebrae: tuple[MatchedVertebra, ...]
    discs: tuple[MatchedDisc, ...]
    flags: tuple[str, ...]
    shared_frame: bool
    first_levels: tuple[Level, ...]
    second_levels: tuple[Level, ...]

    @property
    def agree(self) -> bool:
        """The two level sequences agree (no ``series_mismatch`` flag) and at least one structure is paired."""
        return not any(f.startswith(MISMATCH_FLAG) for f in self.flags) and bool(self.vertebrae or self.discs)

    def vertebra(self, level: Level) -> MatchedVertebra | None:
        return next((m for m in self.vertebrae if m.level == level), None)

    def disc(self, level: DiscLevel) -> MatchedDisc | None:
        return next((m for m in self.discs if m.level == level), None)


def _order(level: Enum) -> int:
    """Anatomical position of a level in its enum (C1 … T12, T13, L1 … L5, L6, S1; discs likewise)."""
    return list(type(level)).index(level)


def _vertebra_world(det: Detection, view: SagittalView) -> list[NDArray[np.float64]]:
    if len(det.vertebra_geometry) == len(det.vertebrae):
        return [view.to_world(np.asarray(g.centre, float)) for g in det.vertebra_geometry]
    return [np.asarray(v.centroid_mm, float) for v in det.vertebrae]


def _disc_world(det: Detection, view: SagittalView) -> list[NDArray[np.float64]]:
    if len(det.disc_geometry) == len(det.discs):
        return [
            view.to_world(np.asarray(g.centre, float)) if g.centre is not None else np.asarray(d.centroid_mm, float)
            for g, d in zip(det.disc_geometry, det.discs)
        ]
    return [np.asarray(d.centroid_mm, float) for d in det.discs]


def _labelled(levels: Sequence[_L | None], name: str, what: str, flags: list[str]) -> list[tuple[int, _L]]:
    """(index, level) of the labelled structures, top to bottom; flags repeated or out-of-order levels."""
    out = [(i, lv) for i, lv in enumerate(levels) if lv is not None]
    seen: set[_L] = set()
    for _, lv in out:
        if lv in seen:
            flags.append(f"{MISMATCH_FLAG}: {what} {lv.value} appears more than once in the {name} series")
        seen.add(lv)
    order = [_order(lv) for _, lv in out]
    if any(a >= b for a, b in itertools.pairwise(order)):
        flags.append(f"{MISMATCH_FLAG}: the {name} series' {what} levels are not in anatomical order")
    return out


def _check_overlap(a: Sequence[_L], b: Sequence[_L], names: tuple[str, str], what: str, flags: list[str]) -> list[_L]:
    """The levels both series found, top to bottom; flags an overlap that is empty or not consecutive in a series."""
    common = [lv for lv in a if lv in set(b)]
    if not common:
        if a and b:
            flags.append(
                f"{MISMATCH_FLAG}: no {what} level in common ({names[0]} {a[0].value}…{a[-1].value}, "
                f"{names[1]} {b[0].value}…{b[-1].value})"
            )
        return common
    for name, seq in zip(names, (a, b)):
        idx = [seq.index(lv) for lv in common]
        gaps = [seq[i].value for lo, hi in itertools.pairwise(idx) for i in range(lo + 1, hi)]
        if gaps:
            flags.append(
                f"{MISMATCH_FLAG}: {what} {', '.join(gaps)} found in the {name} series only, between levels both "
                f"series found ({common[0].value}…{common[-1].value}): a missed or extra {what} shifts the count"
            )
    return common


def _apart_flag(apart: Sequence[tuple[str, float]], names: tuple[str, str], tolerance_mm: float) -> str:
    """One ``series_mismatch`` flag for the structures that lie further apart than the tolerance in a shared frame:
    the one, or how many, at which distances, from the first to the last."""
    where = f"in the {names[0]} and {names[1]} series (shared frame, tolerance {tolerance_mm:g} mm)"
    if len(apart) == 1:
        ((what, dist),) = apart
        return f"{MISMATCH_FLAG}: {what} lies {dist:.1f} mm apart {where}"
    dists = [d for _, d in apart]
    return (
        f"{MISMATCH_FLAG}: {len(apart)} structures ({apart[0][0]} … {apart[-1][0]}) lie {min(dists):.1f}–"
        f"{max(dists):.1f} mm apart {where}: the two series may not show the same anatomy where the header says"
    )


def _spacings(levels: Sequence[DiscLevel], pos: dict[DiscLevel, NDArray[np.float64]]) -> dict[DiscLevel, float]:
    """Distance (mm) from each disc to the next one down, keyed by the upper disc (consecutive found discs only)."""
    out: dict[DiscLevel, float] = {}
    for up, lo in itertools.pairwise(levels):
        if _order(lo) - _order(up) == 1 or (up.lower_vertebra == lo.upper_vertebra):
            out[up] = float(np.linalg.norm(pos[up] - pos[lo]))
    return out


def _spacing_shift(
    a: Sequence[DiscLevel],
    pa: dict[DiscLevel, NDArray[np.float64]],
    b: Sequence[DiscLevel],
    pb: dict[DiscLevel, NDArray[np.float64]],
) -> tuple[float | None, int, float | None, float | None]:
    """(misfit as labelled, best shift of ``b`` against ``a`` in discs, misfit at that shift, scale of ``b`` against
    ``a`` as labelled). A misfit compares the *pattern* of spacings: ``b``'s spacings over their median ratio to
    ``a``'s, median absolute difference over the mean spacing (``None`` with too few shared spacings). The pattern,
    not the size, because a wrong pixel size (seen in real pairs: both series rendered at one matrix size with the
    other's pixel spacing) scales every distance of one series alike and says nothing about the levels."""
    sa, sb = _spacings(a, pa), _spacings(b, pb)
    order_b = {i: lv for lv, i in ((lv, _order(lv)) for lv in sb)}

    def fit(shift: int) -> tuple[float, float] | None:
        pairs = [(sa[lv], sb[order_b[_order(lv) + shift]]) for lv in sa if _order(lv) + shift in order_b]
        if len(pairs) < SPACING_MIN_SHARED:
            return None
        arr = np.asarray(pairs, float)
        scale = float(np.median(arr[:, 1] / np.maximum(arr[:, 0], 1e-6)))
        return float(np.median(np.abs(arr[:, 0] * scale - arr[:, 1])) / np.mean(arr[:, 1])), scale

    f0 = fit(0)
    m0, scale = (f0[0], f0[1]) if f0 is not None else (None, None)
    best, m_best = 0, m0
    for s in (-1, 1):
        f = fit(s)
        if f is not None and (m_best is None or f[0] < m_best):
            best, m_best = s, f[0]
    return m0, best, m_best, scale


def match_series(
    first: Detection,
    first_view: SagittalView,
    second: Detection,
    second_view: SagittalView,
    *,
    shared_frame: bool = False,
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    names: tuple[str, str] = ("first", "second"),
) -> SeriesMatch:
    """Pair the bodies and discs of two series of one study by level, after checking that their levels agree.

    Args:
        first: the detection of the first series (e.g. the T2 series).
        first_view: the view it was detected on (its map to world mm).
        second: the detection of the second series (e.g. the T1 series).
        second_view: the view it was detected on.
        shared_frame: both series share a frame of reference (e.g. DICOM series with one FrameOfReferenceUID), so
            their world positions are comparable and paired structures must lie within ``tolerance_mm``.
        tolerance_mm: the largest distance between the two positions of one structure (shared frame only).
        names: the series' names in flags (e.g. ``("T2", "T1")``).

    Raises:
        ConfigError: a tolerance that is not positive.
    """
    if not tolerance_mm > 0:
        raise ConfigError(f"the matching tolerance must be positive, not {tolerance_mm}")
    flags: list[str] = []
    va = _labelled([v.label for v in first.vertebrae], names[0], "vertebra", flags)
    vb = _labelled([v.label for v in second.vertebrae], names[1], "vertebra", flags)
    da = _labelled([d.level for d in first.discs], names[0], "disc", flags)
    db = _labelled([d.level for d in second.discs], names[1], "disc", flags)
    common_v = _check_overlap([lv for _, lv in va], [lv for _, lv in vb], names, "vertebra", flags)
    common_d = _check_overlap([lv for _, lv in da], [lv for _, lv in db], names, "disc", flags)
    if not common_v and not common_d and not any(f.startswith(MISMATCH_FLAG) for f in flags):
        flags.append(f"{MISMATCH_FLAG}: no labelled structure in common between the {names[0]} and {names[1]} series")

    wa_v, wb_v = _vertebra_world(first, first_view), _vertebra_world(second, second_view)
    wa_d, wb_d = _disc_world(first, first_view), _disc_world(second, second_view)
    pa = {lv: wa_d[i] for i, lv in da}
    pb = {lv: wb_d[i] for i, lv in db}
    m0, shift, m_best, scale = _spacing_shift([lv for _, lv in da], pa, [lv for _, lv in db], pb)
    if scale is not None and abs(np.log(scale)) > np.log(1 + SCALE_NOTE):
        # a note, not a mismatch: the levels can still agree (with a shared frame the positions are checked below)
        flags.append(
            f"{SCALE_FLAG}: distances in the {names[1]} series are {scale:.2f}× those in the {names[0]} series: "
            "one of the two pixel sizes may be wrong"
        )
    if m0 is not None and m0 > SPACING_MISFIT:
        why = "the same discs lie at other distances in the two series"
        if m_best is not None and shift != 0 and m_best < m0 / 2:
            why = (
                f"they fit with the {names[1]} labels read one level {'higher' if shift < 0 else 'lower'} "
                f"(misfit {m_best:.2f}): a level shift"
            )
        flags.append(
            f"{MISMATCH_FLAG}: the pattern of disc spacings of the {names[0]} and {names[1]} series differs by "
            f"{m0:.0%} of a spacing as labelled; {why}"
        )

    def pair(
        kind: str,
        common: list[Any],
        a: list[tuple[int, Any]],
        b: list[tuple[int, Any]],
        wa: Any,
        wb: Any,
        records: tuple[tuple[Any, ...], tuple[Any, ...]],
    ) -> list[Any]:
        """Pair the structures of ``kind`` found at the same level; in a shared frame, check their distance."""
        ia, ib = {lv: i for i, lv in a}, {lv: i for i, lv in b}
        out = []
        for lv in common:
            i, j = ia[lv], ib[lv]
            dist = float(np.linalg.norm(wa[i] - wb[j])) if shared_frame else None
            if dist is not None and dist > tolerance_mm:
                apart.append((f"{kind} {lv.value}", dist))
            out.append(Matched(lv, records[0][i], records[1][j], dist))
        return out

    apart: list[tuple[str, float]] = []  # structures too far apart in a shared frame: one flag names them all
    verts: list[MatchedVertebra] = pair("vertebra", common_v, va, vb, wa_v, wb_v, (first.vertebrae, second.vertebrae))
    discs: list[MatchedDisc] = pair("disc", common_d, da, db, wa_d, wb_d, (first.discs, second.discs))
    if apart:
        flags.append(_apart_flag(apart, names, tolerance_mm))

    mismatch = any(f.startswith(MISMATCH_FLAG) for f in flags)
    if mismatch:
        log.info("%s and %s series not matched: %s", names[0], names[1], "; ".join(flags))
    return SeriesMatch(
        names=names,
        vertebrae=() if mismatch else tuple(verts),
        discs=() if mismatch else tuple(discs),
        flags=tuple(flags),
        shared_frame=shared_frame,
        first_levels=tuple(lv for _, lv in va),
        second_levels=tuple(lv for _, lv in vb),
    )
