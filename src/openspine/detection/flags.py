"""Labelling flags: what the level fit of one scan's bodies says about its own reliability.

Ambiguity is flagged, never hidden: no sacrum seen, a small margin between the best and the runner-up fit, an S1
cut by the image edge, a step in the residuals (a transitional vertebra), a body missed between two labelled ones,
and cervical labels (outside the detector's training data).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ..scope import FIT_MARGIN, MISSED_BODY, S1_BY_FIT
from . import decode as _decode
from .labelling import MIN_ORDINAL, S1_ORDINAL, SequenceLabels, ordinal_to_level, step_in_residuals

# flags that say a detection's labels may be wrong (or a body is missing)
LABELLING_FLAG_PREFIXES = (
    "labelling_ambiguous",
    "transitional_vertebra_suspected",
    MISSED_BODY,
    "no vertebral body detected",
    "vertebra_at_volume_side",  # the spine leaves the imaged volume: its count may break at the side
)
EDGE_S1_RESIDUAL = -0.25  # bodies above an S1 cut by the image edge reading this much below L5/L4: flag
MIN_MARGIN = 0.25  # a level fit whose runner-up is closer than this (levels) is ambiguous


def labelling_flagged(flags: Sequence[str]) -> bool:
    """Whether a detection says its labels may be wrong (or a body is missing)."""
    return any(f.startswith(LABELLING_FLAG_PREFIXES) for f in flags)


def labelling_flags(
    lab: SequenceLabels,
    groups_all: list[_decode.Group],
    rows: int,
    ordinals: NDArray[np.int64],
    residuals: NDArray[np.float64],
    index: NDArray[np.int64],
    context_limit: float = 0.5,
) -> list[str]:
    """The flags of one labelled sequence (``groups_all``: every body, before those below S1 are dropped; ``rows``:
    the model grid's height; ``ordinals``, ``residuals``, ``index``: of the kept bodies; ``context_limit``: see
    :func:`context_flags`)."""
    flags: list[str] = []
    if not lab.sacrum:
        flags.append("labelling_ambiguous: no sacrum visible; levels rest on the bodies' appearance alone")
    elif lab.s1 is None:  # S1 given by the uniform fit, not by the sacrum anchor's checks
        flags.append(f"{S1_BY_FIT}; the lowest body is S1 by the level fit alone")
    if lab.margin < MIN_MARGIN:
        flags.append(f"{FIT_MARGIN}{lab.margin:.2f} levels)")
    flags.extend(_sacrum_flags(lab, groups_all, rows))
    flags.extend(context_flags(lab, groups_all, context_limit))
    split = step_in_residuals(residuals[np.isfinite(residuals)])
    if split is not None:
        flags.append(
            "transitional_vertebra_suspected: the level estimates above and below "
            f"{ordinal_to_level(int(ordinals[split])).value} disagree by one level"
        )
    if np.any(np.diff(index) > 1):
        for i in np.nonzero(np.diff(index) > 1)[0].tolist():
            flags.append(
                f"{MISSED_BODY}: between {ordinal_to_level(int(ordinals[i])).value} and "
                f"{ordinal_to_level(int(ordinals[i + 1])).value}"
            )
    if any(f.startswith("labelling_ambiguous") for f in flags):
        flags.extend(alternative_flags(lab.alternative, ordinals))
    if any(ordinal_to_level(int(o)).region == "cervical" for o in ordinals):
        flags.append("cervical levels are outside the detector's training data; treat cervical labels with caution")
    return flags


def _touches_lower_edge(group: _decode.Group, rows: int, margin_px: int = 2) -> bool:
    """Whether a body reaches the lower edge of the image (model-grid rows ``rows``): it is cut, partly in view."""
    return any(len(m.pixels) and int(m.pixels[:, 0].max()) >= rows - 1 - margin_px for m in group.members)


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


def context_flags(lab: SequenceLabels, groups: list[_decode.Group], limit: float) -> list[str]:
    """A second reading of the levels: where the level-context model (which sees the whole field of view at once)
    reads the labelled bodies, by their median, ``limit`` levels or more away from their labels. Nothing without
    that model (NaN estimates)."""
    kept = lab.ordinals > 0
    ctx = np.array([g.context_level for g in groups], dtype=float)[kept]
    if not len(ctx) or not np.isfinite(ctx).all():
        return []
    d = float(np.median(ctx - lab.ordinals[kept]))
    if abs(d) < limit:
        return []
    return [
        f"labelling_ambiguous: read from the whole field of view the bodies sit {abs(d):.2f} levels "
        f"{'closer to' if d > 0 else 'further from'} the sacrum than labelled"
    ]


def alternative_flags(shift: int, ordinals: NDArray[np.int64]) -> list[str]:
    """Beside an ambiguous labelling, the likelier way it is wrong (:func:`~.labelling.alternative_shift`): every
    body one level closer to (``shift`` +1) or further from (-1) the sacrum, with the labels that would then hold."""
    above = [int(o) for o in ordinals if 0 < int(o) < S1_ORDINAL]
    lo, hi = (min(above), max(above)) if above else (0, 0)
    if shift not in (-1, 1) or not above or lo + shift < MIN_ORDINAL:
        return []
    name = ordinal_to_level
    now = name(lo).value if lo == hi else f"{name(lo).value} … {name(hi).value}"
    then = name(lo + shift).value if lo == hi else f"{name(lo + shift).value} … {name(hi + shift).value}"
    where = "closer to" if shift > 0 else "further from"
    return [f"labelling_alternative: if wrong, most likely one level {where} the sacrum: {now} would be {then}"]
