"""Consistent level labels for a top-to-bottom sequence of detected vertebral bodies.

The network predicts a level (a real-valued :attr:`~openspine.levels.Level.ordinal`, C1 = 1 … L5 = 24, S1 = 25)
for every body on its own. The labels must be consecutive, so one integer offset is fitted for the whole sequence:
body ``i`` gets ``offset + index[i]``, where ``index`` counts positions along the spine (usually 0, 1, 2, …; a gap
where a body was clearly missed advances it by two). The offset minimises a robust (truncated L1) cost, so one
confused body cannot drag the others. How much better the best offset is than the runner-up tells whether the
labelling is ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..levels import Level

S1_ORDINAL = Level.S1.ordinal  # 25
MIN_ORDINAL = Level.C2.ordinal  # C1 has no vertebral body
TRUNCATE = 2.0  # residuals beyond this many levels cost the same (an outlier, not evidence)


def ordinal_to_level(o: int) -> Level:
    """Ordinal (C1 = 1 … L5 = 24, S1 = 25; :attr:`Level.ordinal`) → :class:`Level`."""
    return Level.from_ordinal(int(o))


def level_to_ordinal(level: Level) -> int:
    """:attr:`Level.ordinal`."""
    return level.ordinal


@dataclass(frozen=True)
class LabelFit:
    """The fitted labelling of one sequence."""

    ordinals: NDArray[np.int64]  # label ordinal of each body (top to bottom)
    residuals: NDArray[np.float64]  # predicted − fitted ordinal
    offset: int
    margin: float  # (cost of the runner-up offset − best cost) / total weight; small = ambiguous
    cost: float  # best cost / total weight (mean absolute residual, truncated)


def sequence_index(
    centres_mm: NDArray[np.floating], pred: NDArray[np.floating], gap_ratio: float = 1.65
) -> NDArray[np.int64]:
    """Position of each body along the spine: consecutive bodies are one apart, unless both the distance to the
    previous body (≥ ``gap_ratio`` × the median distance) and the predicted levels (≥ 1.5 apart) say one is missing.
    """
    c = np.asarray(centres_mm, dtype=float).reshape(-1, 2)
    n = len(c)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    d = np.linalg.norm(np.diff(c, axis=0), axis=1)
    p = np.asarray(pred, dtype=float)
    steps = np.ones(max(n - 1, 0), dtype=np.int64)
    if n >= 3:
        med = float(np.median(d))
        for i, di in enumerate(d):
            dp = p[i + 1] - p[i]
            if di >= gap_ratio * med and dp >= 1.5:
                steps[i] = max(2, round(float(min(di / med, dp))))
    return np.concatenate([[0], np.cumsum(steps)]).astype(np.int64)


def fit_labels(pred: NDArray[np.floating], weight: NDArray[np.floating], index: NDArray[np.integer]) -> LabelFit:
    """Fit ``ordinal_i = offset + index_i`` to predicted ordinals ``pred`` (weights ``weight``)."""
    p = np.asarray(pred, dtype=float)
    w = np.clip(np.asarray(weight, dtype=float), 1e-6, None)
    idx = np.asarray(index, dtype=np.int64)
    if len(p) == 0:
        return LabelFit(np.zeros(0, np.int64), np.zeros(0), 0, 0.0, 0.0)
    base = p - idx
    lo, hi = int(np.floor(base.min())) - 1, int(np.ceil(base.max())) + 1
    offsets = np.arange(lo, hi + 1)
    costs = np.array([float(np.sum(w * np.minimum(np.abs(base - o), TRUNCATE))) for o in offsets])
    order = np.argsort(costs, kind="stable")
    best = int(offsets[order[0]])
    total = float(w.sum())
    margin = float((costs[order[1]] - costs[order[0]]) / total) if len(order) > 1 else float(TRUNCATE)
    ords = best + idx
    return LabelFit(ords.astype(np.int64), p - ords, best, margin, float(costs[order[0]] / total))


def step_in_residuals(
    residuals: NDArray[np.floating], min_run: int = 3, jump: float = 0.8, spread: float = 0.3
) -> int | None:
    """Where the residuals jump by about one level (the upper run fits one offset, the lower run the next), the
    first index of the lower run; such a split is what an extra or missing lumbar vertebra (T13, L6, a sacralised
    L5) looks like. Both runs need ``min_run`` bodies that agree among themselves (median absolute deviation below
    ``spread``), so a gradual drift of the estimates is not mistaken for a step. ``None`` if there is no such jump."""
    r = np.asarray(residuals, dtype=float)
    n = len(r)
    best: tuple[float, int] | None = None
    for s in range(min_run, n - min_run + 1):
        a, b = float(np.median(r[:s])), float(np.median(r[s:]))
        mad = max(float(np.median(np.abs(r[:s] - a))), float(np.median(np.abs(r[s:] - b))))
        if abs(a - b) >= jump and mad < spread and (best is None or abs(a - b) > best[0]):
            best = (abs(a - b), s)
    return None if best is None else best[1]


@dataclass(frozen=True)
class SequenceLabels:
    """Labels of a top-to-bottom sequence of bodies: ``ordinals[i]`` is 0 for a body left out (below S1, or counted
    above C2)."""

    ordinals: NDArray[np.int64]
    residuals: NDArray[np.float64]  # network estimate − label (NaN for S1 and left-out bodies)
    index: NDArray[np.int64]  # position along the spine
    margin: float
    sacrum: bool  # True when S1 was identified (the anchor of the labelling)
    s1: int | None = None  # index of the body labelled S1 by the sacrum anchor (None: no anchor)
    s1_alternative: int | None = None  # another body that is nearly as good an S1 (cost within ``close_cost``)
    alternative: int = 0  # the likelier one-level shift of every label should these be wrong (-1, +1; 0: none)


def alternative_shift(pred: NDArray[np.floating], weight: NDArray[np.floating], ordinals: NDArray[np.integer]) -> int:
    """Which way the labels most likely run if they are wrong: -1 (every body one level further from the sacrum) or
    +1 (one level closer), whichever fits the estimates of the labelled bodies above S1 better (the truncated-L1 cost
    of :func:`fit_labels`; S1's own estimate is no level estimate, the network never saw a labelled sacrum). 0 when
    no body above S1 is labelled. Of the wrong labellings of train views cut and mirrored at random, 82 % were one
    level off in this direction (``python scripts/labelling_survey.py report``; 72 % on val)."""
    o = np.asarray(ordinals, dtype=np.int64)
    use = (o > 0) & (o < S1_ORDINAL)
    if not np.any(use):
        return 0
    p = np.asarray(pred, dtype=float)[use]
    w = np.clip(np.asarray(weight, dtype=float)[use], 1e-6, None)
    cost = {s: float(np.sum(w * np.minimum(np.abs(p - (o[use] + s)), TRUNCATE))) for s in (-1, 1)}
    return -1 if cost[-1] <= cost[1] else 1


def label_sequence(
    pred: NDArray[np.floating],
    weight: NDArray[np.floating],
    centres_mm: NDArray[np.floating],
    bottom_decay: float = 0.6,
    max_candidates: int = 4,
    close_cost: float = 0.1,
) -> SequenceLabels:
    """Label a top-to-bottom sequence of bodies consistently, anchored on the sacrum when it is seen.

    The network never saw a labelled sacrum, so its level estimate there is unreliable; but its estimates are most
    reliable near the lumbosacral junction. Each of the lowest ``max_candidates`` bodies is tried as S1: the bodies
    above it are fitted with weights that decay by ``bottom_decay`` per body upwards, and the candidate is accepted
    when that fit makes the body directly above it L5, its own estimate looks lumbosacral (≥ 22.5) and it is no
    farther below L5 than the usual spacing. Bodies below S1 (sacral segments, coccyx, pelvis) are left out.
    Without such a candidate one uniform-weight fit labels all bodies (flag: no sacrum). When another accepted
    candidate's cost is within ``close_cost`` levels of the best one, it is reported as ``s1_alternative`` (the S1
    choice, and with it every label, is then uncertain).
    """
    p = np.asarray(pred, dtype=float)
    w = np.asarray(weight, dtype=float)
    c = np.asarray(centres_mm, dtype=float).reshape(-1, 2)
    n = len(p)
    index = sequence_index(c, p)
    accepted: list[tuple[float, int, LabelFit]] = []
    if n >= 2:
        d = np.linalg.norm(np.diff(c, axis=0), axis=1)
        med = float(np.median(d)) if len(d) else 0.0
        for j in range(n - 1, max(0, n - 1 - max_candidates), -1):
            if p[j] < 22.5 or index[j] - index[j - 1] != 1 or d[j - 1] > 1.6 * max(med, 1e-6):
                continue
            decay = bottom_decay ** (index[j - 1] - index[:j]).astype(float)
            fit = fit_labels(p[:j], w[:j] * decay, index[:j])
            if int(fit.ordinals[-1]) != S1_ORDINAL - 1:
                continue
            accepted.append((fit.cost, j, fit))
    ords = np.zeros(n, dtype=np.int64)
    res = np.full(n, np.nan)
    if accepted:
        accepted.sort(key=lambda a: a[0])  # stable: equal costs keep the lowest body first
        cost, j, fit = accepted[0]
        alt = next((a[1] for a in accepted[1:] if a[0] - cost <= close_cost), None)
        above_c2 = fit.ordinals < MIN_ORDINAL  # a long run of bodies (or false ones) counted past C2: left out
        ords[:j] = np.where(above_c2, 0, fit.ordinals)
        ords[j] = S1_ORDINAL
        res[:j] = np.where(above_c2, np.nan, fit.residuals)
        return SequenceLabels(ords, res, index, fit.margin, True, j, alt, alternative_shift(p, w, ords))
    fit = fit_labels(p, w, index)
    keep = (fit.ordinals >= MIN_ORDINAL) & (fit.ordinals <= S1_ORDINAL)
    ords[keep] = fit.ordinals[keep]
    res[keep] = fit.residuals[keep]
    sacrum = bool(np.any(fit.ordinals == S1_ORDINAL))
    return SequenceLabels(ords, res, index, fit.margin, sacrum, alternative=alternative_shift(p, w, ords))
