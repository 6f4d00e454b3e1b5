"""``openspine evaluate detection``: detection and labelling figures of a detector on the shared data set.

Per scan and overall, on the chosen split (``val`` for reporting; never the split the model was trained on):

* **detection rate** – ground-truth vertebral bodies whose mask contains at least one predicted centroid;
* **false positives per scan** – predicted bodies whose centroid lies in no ground-truth body mask, or in a mask
  another prediction already claimed. Only predictions inside the *annotated span* count: between the top of the
  highest and the bottom of the lowest labelled body. Above and below it the images show real vertebrae that the
  annotators did not label (T12 above a VB3 L1, the sacrum below L5); those predictions are listed as
  ``unscored`` instead;
* **level accuracy** – detected bodies whose predicted label equals the ground truth (scans with known levels);
* **centroid error** – distance (mm) from a matched prediction to its mask's centroid (median, 95th percentile);
* **discs** (the IVD scans, which label discs only) – ground-truth discs whose mask contains a predicted disc
  centroid, and the share of those with the right level;
* **SPIDER lumbar disc sequence** – on each mid-sagittal SPIDER slice, whether the discs L1-L2 … L5-S1 are all found,
  in that order from top to bottom: on the T2 slices of ``index.csv`` (``spider``) and, beside them, on the same
  split's T1 slices listed in ``spider/t1.csv`` (``spider_t1``; another series of the same patients, not registered
  with the T2 slice). The T1 figure has no target of its own yet.

Bodies of unknown level (VB1) count for detection, false positives and centroid error, not for level accuracy.

With ``--variants N`` (on by default) every item with known levels is also run mirrored and with N crops of its field
of view (top, bottom, both), and each such **case** is scored: every checkable label right? flagged? (see
:func:`make_variants`, :func:`spider_variant_cases`, :func:`robustness_overall` and docs/detection.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import geometry
from .._command_parser import command_parser
from .._logging import get_logger
from ..detection.flags import labelling_flagged
from ..errors import ConfigError, ScanReadError
from ..levels import DiscLevel, Level

log = get_logger("evaluation.detection")

LUMBAR_SEQUENCE = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
TARGETS = {
    "detection_rate": (">=", 0.98),
    "level_accuracy": (">=", 0.97),
    "false_positives_per_scan": ("<=", 0.1),
    "centroid_error_mm_median": ("<=", 3.0),
    "spider_lumbar_sequence_complete": (">=", 0.95),
}

_EPILOG = """examples:
  openspine evaluate detection --data ../shared/data --split val
  openspine evaluate detection --data ../shared/data --split val --out val-detection.json
  openspine evaluate detection --data ../shared/data --split val --model runs/detector --card
  openspine evaluate detection --data ../shared/data --split train --no-spider     # a training-fit check only
  openspine evaluate detection --data ../shared/data --split val --variants 0     # without the robustness cases

--card writes the overall figures into the model folder's card.json (val split only; the weights' sha256 is
unchanged). Targets (issue 3): detection ≥ 98 %, level accuracy ≥ 97 %, ≤ 0.1 false positives per scan,
median centroid error ≤ 3 mm, SPIDER lumbar disc sequence complete in ≥ 95 % of slices. Robustness (as-is,
mirrored and --variants crops per item): every label right in ≥ 95 % of cases, right or flagged in ≥ 99 %.
"""


def _body(v: int) -> bool:
    return 1 <= v < 100 or v >= 201


def _gt_level(v: int) -> Level | None:
    if 1 <= v <= 24 or v in (25, 28):
        return Level.from_label_value(v)
    if v == 26:
        return Level.S1
    return None


@dataclass
class ScanResult:
    id: str
    subset: str
    levels_known: bool
    n_gt: int = 0
    detected: int = 0
    false_positives: int = 0
    unscored: int = 0
    level_checked: int = 0
    level_correct: int = 0
    errors_mm: list[float] = field(default_factory=list)
    gt_discs: int = 0
    discs_detected: int = 0
    disc_level_correct: int = 0
    predicted: list[str] = field(default_factory=list)
    predicted_discs: list[str] = field(default_factory=list)
    level_offsets: list[int] = field(default_factory=list)  # predicted − true ordinal of every checked body or disc
    flags: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["errors_mm"] = [round(e, 2) for e in self.errors_mm]
        d["seconds"] = round(self.seconds, 3)
        return d


def score_volume(
    detection: Any, mask: np.ndarray, affine: np.ndarray, levels_known: bool, res: ScanResult
) -> ScanResult:
    """Compare a detection with a label map in the input voxel grid (fills ``res``)."""
    from scipy import ndimage

    from ..geometry import apply_affine
    from ..scan import Scan

    values = [int(v) for v in np.unique(mask) if v]
    bodies = [v for v in values if _body(v)]
    discs = [v for v in values if 100 <= v < 200]
    # the annotated span along the internal S→I axis (rows of the internal layout)
    view = Scan(np.zeros(mask.shape, np.uint8), affine).to_sagittal()
    lab_int = np.asarray(Scan(mask, affine).to_sagittal().scan.array)
    rows_of = {v: np.nonzero((lab_int == v).any(axis=(1, 2)))[0] for v in values}
    cents = {v: np.array(c) for v, c in zip(values, ndimage.center_of_mass(np.ones_like(mask), mask, values))}
    res.n_gt = len(bodies)
    res.gt_discs = len(discs)

    def lookup(vox: Sequence[float]) -> int:
        idx = tuple(round(float(float(x))) for x in vox)
        if any(i < 0 or i >= n for i, n in zip(idx, mask.shape)):
            return 0
        return int(mask[idx])

    claimed: set[int] = set()
    if bodies:
        top = min(int(rows_of[v].min()) for v in bodies)
        bot = max(int(rows_of[v].max()) for v in bodies)
    for vert in detection.vertebrae:
        res.predicted.append(vert.label.value if vert.label else "?")
        v = lookup(vert.centroid_voxel)
        if not bodies:
            continue
        row = float(view.from_input_voxel(np.asarray(vert.centroid_voxel, float))[0])
        if v and _body(v) and v not in claimed:
            claimed.add(v)
            res.detected += 1
            gt_mm = apply_affine(affine, cents[v])
            res.errors_mm.append(float(np.linalg.norm(np.asarray(vert.centroid_mm) - gt_mm)))
            gl = _gt_level(v)
            if levels_known and gl is not None:
                res.level_checked += 1
                res.level_correct += int(vert.label == gl)
                if vert.label is not None:
                    res.level_offsets.append(vert.label.ordinal - gl.ordinal)
        elif top <= row <= bot:
            res.false_positives += 1
        else:
            res.unscored += 1
    claimed_d: set[int] = set()
    for d in detection.discs:
        res.predicted_discs.append(d.level.value if d.level else "?")
        v = lookup(d.centroid_voxel)
        if v in discs and v not in claimed_d:
            claimed_d.add(v)
            res.discs_detected += 1
            upper = _gt_level(v - 100)
            lower = upper.below() if upper is not None else None
            if upper is not None and lower is not None:
                res.disc_level_correct += int(d.level == DiscLevel.between(upper, lower))
                if d.level is not None:
                    res.level_offsets.append(d.level.upper_vertebra.ordinal - upper.ordinal)
    res.flags = list(detection.flags)
    return res


def spider_sequence_ok(detection: Any) -> bool:
    """All of L1-L2 … L5-S1 present, ordered top to bottom (by the internal S→I position of their centroids)."""
    found = {d.level.value: d for d in detection.discs if d.level is not None}
    if not all(lv in found for lv in LUMBAR_SEQUENCE):
        return False
    z = [found[lv].centroid_mm[2] for lv in LUMBAR_SEQUENCE]  # RAS+: z decreases going down
    return all(z[i] > z[i + 1] for i in range(len(z) - 1))


# --- robustness: cropped and mirrored variants of each item --------------------------------------------------------
ROBUSTNESS_TARGETS = {"right_or_flagged": (">=", 0.99), "every_label_right": (">=", 0.95)}
CROP_KINDS = ("top", "bottom", "both")
DEFAULT_VARIANTS = 6


@dataclass(frozen=True)
class Variant:
    """One way of presenting an item to the detector.

    ``keep`` is the ``[start, stop)`` index range kept along the stored array's superior–inferior axis (``None``: the
    whole field of view); ``mirrored`` reverses the stored anterior–posterior and left–right axes, with the affine
    updated so every voxel keeps its world position (the same anatomy, stored the other way round).
    """

    name: str
    keep: tuple[int, int] | None = None
    mirrored: bool = False


def si_axis(affine: NDArray[np.floating]) -> tuple[int, bool]:
    """(the stored axis that runs superior–inferior, whether its index 0 is the superior end)."""
    codes = geometry.axcodes(affine)
    ax = next(i for i, c in enumerate(codes) if c in ("S", "I"))
    return ax, codes[ax] == "I"


def crop_axis(
    array: NDArray[Any], affine: NDArray[np.floating], axis: int, start: int, stop: int
) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """``array[start:stop]`` along ``axis`` with the affine moved so every kept voxel keeps its world position."""
    if not 0 <= start < stop <= array.shape[axis]:
        raise ValueError(f"crop [{start}, {stop}) outside axis {axis} of length {array.shape[axis]}")
    sl: list[slice] = [slice(None)] * array.ndim
    sl[axis] = slice(start, stop)
    shift = np.eye(4)
    shift[axis, 3] = start
    return np.ascontiguousarray(array[tuple(sl)]), np.asarray(affine, float) @ shift


def flip_axes(
    array: NDArray[Any], affine: NDArray[np.floating], axes: Sequence[int]
) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """Reverse the storage order along ``axes``; the affine follows, so the world image is unchanged."""
    aff = np.asarray(affine, float)
    for a in axes:
        aff = geometry.reversed_axis(aff, a, array.shape[a])
    out = np.flip(array, axis=tuple(axes)) if axes else array
    return np.ascontiguousarray(out), aff


def apply_variant(
    arrays: Sequence[NDArray[Any]], affine: NDArray[np.floating], variant: Variant
) -> tuple[list[NDArray[Any]], NDArray[np.float64]]:
    """The same variant applied to arrays on one grid (image, label map); returns them with their new affine."""
    out = list(arrays)
    aff = np.asarray(affine, float)
    if variant.keep is not None:
        ax, _ = si_axis(aff)
        res = [crop_axis(a, aff, ax, *variant.keep) for a in out]
        out, aff = [r[0] for r in res], res[0][1] if res else aff
    if variant.mirrored:
        codes = geometry.axcodes(aff)
        axes = [i for i, c in enumerate(codes) if c in ("A", "P", "L", "R")]
        res = [flip_axes(a, aff, axes) for a in out]
        out, aff = [r[0] for r in res], res[0][1] if res else aff
    return out, aff


def make_variants(
    extents: Sequence[tuple[int, int]],
    length: int,
    superior_at_low: bool,
    n_crops: int,
    rng: np.random.Generator,
    min_units: int = 3,
) -> list[Variant]:
    """The as-is and mirrored views and ``n_crops`` crops of an item (kinds cycle top, bottom, both; every second
    crop mirrored too).

    ``extents`` are the ``(first, last)`` indices of each labelled structure along the superior–inferior axis of
    length ``length``. A crop keeps at least ``min_units`` of them whole and cuts at a random height between the
    structures it keeps and the next ones, so the cut can run through a neighbour (left partly in view) or through
    the disc between them. No crops when fewer than ``min_units`` structures are labelled.
    """
    out = [Variant("as-is"), Variant("mirrored", None, True)]
    ext = sorted((int(a), int(b)) for a, b in extents)
    n = len(ext)
    if n < min_units:
        return out
    for k in range(n_crops):
        kind = CROP_KINDS[k % len(CROP_KINDS)]
        cut_sup = kind in ("top", "both")
        cut_inf = kind in ("bottom", "both")
        cut_low, cut_high = (cut_sup, cut_inf) if superior_at_low else (cut_inf, cut_sup)
        s, e = 0, n - 1
        if cut_low:
            s = int(rng.integers(0, n - min_units + 1))
        if cut_high:
            e = int(rng.integers(s + min_units - 1, n))
        if cut_low and cut_high and e - s + 1 < min_units:  # cannot happen; kept as a guard
            continue
        start, stop = 0, length
        if cut_low:
            lo = ext[s - 1][0] + 1 if s > 0 else 0
            start = int(rng.integers(lo, ext[s][0] + 1))
        if cut_high:
            hi = ext[e + 1][1] if e < n - 1 else length
            stop = int(rng.integers(ext[e][1] + 1, max(hi, ext[e][1] + 1) + 1))
        mirrored = k % 2 == 1
        out.append(Variant(f"crop-{kind}" + ("+mirrored" if mirrored else ""), (start, stop), mirrored))
    return out


def detected_variants(
    vertebrae: Sequence[Any],
    shape: Sequence[int],
    affine: NDArray[np.floating],
    n_crops: int,
    seed: int,
    item: str,
) -> list[Variant]:
    """:func:`make_variants` of an item whose vertebrae were detected (their outlines give each body's extent along
    the stored superior–inferior axis), with the item's own seeded crops."""
    ax, sup_low = si_axis(affine)
    ext = []
    for v in vertebrae:
        rows = [c[ax] for o in v.outlines for c in o.corners_voxel]
        if rows:
            ext.append((max(0, int(np.floor(min(rows)))), min(shape[ax] - 1, int(np.ceil(max(rows))))))
    return make_variants(ext, shape[ax], sup_low, n_crops, _rng_for(seed, item))


def volume_case_right(res: ScanResult) -> bool:
    """Every detected body (or disc, for disc-labelled scans) that lies in a labelled structure has its level, and
    at least one does."""
    checked = res.level_checked + res.discs_detected
    return checked > 0 and res.level_correct == res.level_checked and res.disc_level_correct == res.discs_detected


def _matched_discs(reference: Any, detection: Any, tolerance_mm: float) -> list[tuple[Any, Any]]:
    """(detected level, reference level) of every detected disc within ``tolerance_mm`` of a labelled reference
    disc (the nearest one)."""
    ref = [(np.asarray(d.centroid_mm, float), d.level) for d in reference.discs if d.level is not None]
    pairs = []
    for d in detection.discs if ref else ():
        dist = [float(np.linalg.norm(np.asarray(d.centroid_mm, float) - c)) for c, _ in ref]
        i = int(np.argmin(dist))
        if dist[i] <= tolerance_mm:
            pairs.append((d.level, ref[i][1]))
    return pairs


def spider_case_right(reference: Any, detection: Any, tolerance_mm: float = 12.0) -> tuple[bool, int]:
    """Disc levels of a variant against the item's own as-is detection (SPIDER has no positions; only an as-is
    detection with L1-L2 … L5-S1 in order serves as a reference). Every detected disc within ``tolerance_mm`` of a
    reference disc must carry its level; discs cut out of view are not scored. Returns (right, discs scored)."""
    pairs = _matched_discs(reference, detection, tolerance_mm)
    return bool(pairs) and all(a == b for a, b in pairs), len(pairs)


def spider_case_offset(reference: Any, detection: Any, tolerance_mm: float = 12.0) -> int | None:
    """How many levels the variant's disc labels sit from the reference's (median; + = closer to the sacrum)."""
    offs = [a.upper_vertebra.ordinal - b.upper_vertebra.ordinal for a, b in _matched_discs(reference, detection,
            tolerance_mm) if a is not None]  # fmt: skip
    return _median_offset(offs)


def _median_offset(offsets: Sequence[int]) -> int | None:
    return round(float(np.median(offsets))) if len(offsets) else None


def summarise_cases(cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Subject-level figures of robustness cases (each with ``right`` and ``flagged``)."""
    n = len(cases)
    right = sum(bool(c["right"]) for c in cases)
    wrong = n - right
    wrong_flagged = sum(bool(c["flagged"]) and not c["right"] for c in cases)
    right_flagged = sum(bool(c["flagged"]) and bool(c["right"]) for c in cases)
    # a wrong case whose labelling_alternative flag names the shift that corrects it
    alt_right = sum(
        not c["right"] and bool(c.get("alternative")) and c.get("offset") == -c["alternative"] for c in cases
    )

    def share(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    return {
        "cases": n,
        "every_label_right": share(right, n),
        "wrong": wrong,
        "wrong_unflagged": wrong - wrong_flagged,
        "wrong_unflagged_share": share(wrong - wrong_flagged, n),
        "flagged_share_of_wrong": share(wrong_flagged, wrong),
        "right_or_flagged": share(right + wrong_flagged, n),
        "right_flagged_share": share(right_flagged, right),
        "alternative_right_share_of_wrong": share(alt_right, wrong),
    }


def case_key(case: Mapping[str, Any]) -> tuple[str, str, str]:
    """What identifies a robustness case across two runs: the item, the variant and the rows it keeps."""
    return str(case["id"]), str(case["variant"]), str(case.get("keep"))


def shared_cases(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Two detectors' robustness cases compared on the cases both score (like with like): SPIDER cases are scored
    against each detector's own confident whole-slice labelling, so the two case sets differ and the overall shares
    mix a change of labels with a change of cases. Per group (``all``: T2 and volumes, ``spider-t1``): the shared
    cases and, for each run, how many have every label right and how many are right or flagged."""
    by_key = {case_key(c): c for c in b}
    out: dict[str, dict[str, Any]] = {}
    for group, t1 in (("all", False), ("spider-t1", True)):
        pairs = [(c, by_key[case_key(c)]) for c in a if (c["source"] == "spider-t1") == t1 and case_key(c) in by_key]
        if not pairs:
            continue
        out[group] = {
            "cases": len(pairs),
            "right": [sum(bool(x["right"]) for x, _ in pairs), sum(bool(y["right"]) for _, y in pairs)],
            "right_or_flagged": [
                sum(bool(x["right"] or x["flagged"]) for x, _ in pairs),
                sum(bool(y["right"] or y["flagged"]) for _, y in pairs),
            ],
        }
    return out


def sacrum_labelled(case: dict[str, Any]) -> bool:
    """Whether the case's labelling names S1 (a body) or L5-S1 (a disc): it found a sacrum to count from."""
    return any(p in ("S1", "L5-S1") for p in case.get("predicted", ()))


def reaches_l5(case: dict[str, Any]) -> bool:
    """Whether the case's view reaches the lumbosacral junction: the lowest body the detector is sure of is labelled
    L5 or lower (``lowest_sure``, as :func:`openspine.scope.unanchored_levels_reason` judges it); in a report written
    before that field, whether its labelling names L5 (a body) or L4-L5 (a disc)."""
    if "lowest_sure" in case:
        return case["lowest_sure"] is not None and Level(case["lowest_sure"]).ordinal >= Level.L5.ordinal
    return any(p in ("L5", "L4-L5") for p in case.get("predicted", ()))


def _lowest_sure(detection: Any) -> str | None:
    from ..scope import lowest_sure_level

    level = lowest_sure_level(detection.vertebrae)
    return None if level is None else level.value


def robustness_overall(cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Summary over the T2 and volume cases (``all``, with the targets), per source (volumes / SPIDER T2 / SPIDER
    T1) and per variant kind. The SPIDER T1 cases are summarised on their own: the targets are set on the rest."""
    t1 = [c for c in cases if c["source"] == "spider-t1"]
    cases = [c for c in cases if c["source"] != "spider-t1"]
    out: dict[str, Any] = {"all": summarise_cases(cases)}
    for src in ("volume", "spider"):
        sub = [c for c in cases if c["source"] == src]
        if sub:
            out[src] = summarise_cases(sub)
    if t1:
        out["spider-t1"] = summarise_cases(t1)
    kinds = sorted({str(c["variant"]).split("+")[0] for c in cases})
    out["by_variant"] = {k: summarise_cases([c for c in cases if str(c["variant"]).split("+")[0] == k]) for k in kinds}
    # what a user sees: labels anchored on a sacrum found in the view, or resting on the bodies' appearance alone
    # and without a sacrum, whether the view reaches L5 (graded) or ends above it (not graded:
    # openspine.scope.unanchored_levels_reason)
    groups: tuple[tuple[str, Callable[[dict[str, Any]], bool]], ...] = (
        ("S1 labelled", sacrum_labelled),
        ("no S1 labelled", lambda c: not sacrum_labelled(c)),
        ("no S1, reaches L5", lambda c: not sacrum_labelled(c) and reaches_l5(c)),
        ("no S1, ends above L5", lambda c: not sacrum_labelled(c) and not reaches_l5(c)),
    )
    out["by_anchor"] = {name: summarise_cases(sub) for name, keep in groups if (sub := [c for c in cases if keep(c)])}
    a = out["all"]
    out["targets_met"] = {
        k: (a[k] is not None and (a[k] >= t if op == ">=" else a[k] <= t)) for k, (op, t) in ROBUSTNESS_TARGETS.items()
    }
    return out


def _rng_for(seed: int, item: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{item}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def volume_variant_cases(
    item: str,
    image: NDArray[Any],
    mask: NDArray[np.integer],
    affine: NDArray[np.floating],
    n_crops: int,
    seed: int,
    detect_fn: Callable[[Any], Any],
    as_is: Any | None = None,
) -> list[dict[str, Any]]:
    """Robustness cases of one volume with known levels (``detect_fn``: Scan → Detection; ``as_is`` reuses an
    existing detection of the unchanged scan)."""
    from ..scan import Scan

    values = [int(v) for v in np.unique(mask) if v]
    units = [v for v in values if _body(v)] or [v for v in values if 100 <= v < 200]
    ax, sup_low = si_axis(affine)
    other = tuple(a for a in range(3) if a != ax)
    ext = []
    for v in units:
        idx = np.nonzero((mask == v).any(axis=other))[0]
        ext.append((int(idx.min()), int(idx.max())))
    cases = []
    for var in make_variants(ext, mask.shape[ax], sup_low, n_crops, _rng_for(seed, item)):
        (img_v, msk_v), aff_v = apply_variant([image, mask], affine, var)
        t = time.perf_counter()
        det = as_is if (var.name == "as-is" and as_is is not None) else detect_fn(Scan(img_v, aff_v))
        res = score_volume(det, msk_v, aff_v, True, ScanResult(item, "", True))
        cases.append(
            {
                "id": item,
                "source": "volume",
                "variant": var.name,
                "keep": list(var.keep) if var.keep else None,
                "right": volume_case_right(res),
                "flagged": labelling_flagged(det.flags),
                "offset": _median_offset(res.level_offsets),
                "alternative": int(getattr(det, "alternative_shift", 0)),
                "checked": res.level_checked + res.discs_detected,
                "predicted": res.predicted,
                "lowest_sure": _lowest_sure(det),
                "flags": list(det.flags),
                "seconds": round(time.perf_counter() - t, 3),
            }
        )
    return cases


def spider_variant_cases(
    item: str,
    image: NDArray[Any],
    affine: NDArray[np.floating],
    as_is: Any,
    n_crops: int,
    seed: int,
    detect_fn: Callable[[Any], Any],
    source: str = "spider",
) -> list[dict[str, Any]]:
    """Robustness cases of one SPIDER slice (``source``: ``spider`` for the T2 slices, ``spider-t1``).

    The as-is case is right when L1-L2 … L5-S1 are complete and in order; crops and mirrored views are scored
    against that as-is detection, and only when it is complete and carries no labelling flag (otherwise the disc
    positions are not known well enough and the item contributes its as-is case alone). SPIDER has no disc
    positions, so this is a consistency check: a crop is right when it labels the discs still in view as the
    confident whole-slice detection does."""
    from ..scan import Scan

    ok = spider_sequence_ok(as_is)
    cases = [
        {
            "id": item,
            "source": source,
            "variant": "as-is",
            "keep": None,
            "right": ok,
            "flagged": labelling_flagged(as_is.flags),
            "offset": None,
            "alternative": int(getattr(as_is, "alternative_shift", 0)),
            "checked": len(as_is.discs),
            "predicted": [d.level.value if d.level else "?" for d in as_is.discs],
            "lowest_sure": _lowest_sure(as_is),
            "flags": list(as_is.flags),
            "seconds": 0.0,
        }
    ]
    if not ok or labelling_flagged(as_is.flags):
        return cases
    for var in detected_variants(as_is.vertebrae, image.shape, affine, n_crops, seed, item)[1:]:
        (img_v,), aff_v = apply_variant([image], affine, var)
        t = time.perf_counter()
        det = detect_fn(Scan(img_v, aff_v))
        right, scored = spider_case_right(as_is, det)
        cases.append(
            {
                "id": item,
                "source": source,
                "variant": var.name,
                "keep": list(var.keep) if var.keep else None,
                "right": right,
                "flagged": labelling_flagged(det.flags),
                "offset": spider_case_offset(as_is, det),
                "alternative": int(getattr(det, "alternative_shift", 0)),
                "checked": scored,
                "predicted": [d.level.value if d.level else "?" for d in det.discs],
                "lowest_sure": _lowest_sure(det),
                "flags": list(det.flags),
                "seconds": round(time.perf_counter() - t, 3),
            }
        )
    return cases


def evaluate(
    data_dir: Path,
    split: str = "val",
    model: str | None = None,
    spider: bool = True,
    subsets: Sequence[str] | None = None,
    progress: bool = False,
    variants: int = 0,
    seed: int = 0,
    ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run the detector on every scored item of ``split`` and return per-scan and overall figures.

    ``variants`` > 0 adds the robustness evaluation: every item with known levels (FastCleverSeg volumes with
    level-labelled masks, SPIDER slices) is also detected mirrored and with ``variants`` crops of its field of view
    (seeded by ``seed`` and the item id); see :func:`make_variants` and :func:`robustness_overall`. ``ids`` limits
    the evaluation to these items (e.g. a held-out fold of train; SPIDER T1 slices follow their patient's item).
    """
    import nibabel as nib
    from tqdm import tqdm

    from ..detection import detect
    from ..io import load_scan

    index_path = data_dir / "index.csv"
    if not index_path.is_file():
        raise ScanReadError(f"'{data_dir}' is not the shared data folder: it has no index.csv")
    import csv

    with open(index_path, newline="", encoding="utf-8") as f:
        all_rows = [r for r in csv.DictReader(f) if r["split"] == split]
    rows = [r for r in all_rows if ids is None or r["id"] in set(ids)]
    if ids is not None:
        unknown = sorted(set(ids) - {r["id"] for r in all_rows})
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise ConfigError(f"--ids: {len(unknown)} id(s) not in split '{split}' of {index_path}: {shown}")
    if not rows:
        raise ConfigError(f"no items with split '{split}' in {index_path}")
    known = sorted({r["subset"] for r in all_rows if r["dataset"] == "fastcleverseg"})
    by_lower = {k.lower(): k for k in known}  # vb2 is VB2, as --sequence t2 is T2
    unknown_subsets = sorted(s for s in subsets or () if s.lower() not in by_lower)
    if unknown_subsets:  # scoring nothing had passed as an evaluation
        raise ConfigError(
            f"--subsets: {', '.join(unknown_subsets)} not in split '{split}'; its subsets: {', '.join(known)}"
        )
    subsets = [by_lower[s.lower()] for s in subsets] if subsets else subsets
    vol_rows = [r for r in rows if r["dataset"] == "fastcleverseg" and (not subsets or r["subset"] in subsets)]
    spider_rows = [r for r in rows if r["dataset"] == "spider"] if spider else []
    t1_rows = spider_t1_rows(data_dir, split) if spider else []
    if ids is not None:
        t1_rows = [r for r in t1_rows if f"spider-{r['patient_id']}" in set(ids)]
    scans: list[ScanResult] = []
    spider_res: list[dict[str, Any]] = []
    spider_t1_res: list[dict[str, Any]] = []
    cases: list[dict[str, Any]] = []
    t_variants = 0.0

    def detect_fn(s: Any) -> Any:
        return detect(s.to_sagittal(), model=model)

    for r in tqdm(vol_rows, desc="volumes", disable=not progress):
        folder = data_dir / r["path"]
        scan = load_scan(folder / r["image"])
        t = time.perf_counter()
        det = detect(scan.to_sagittal(), model=model)
        dt = time.perf_counter() - t
        mimg: Any = nib.load(str(folder / r["mask"]))
        mask = np.asarray(mimg.dataobj).astype(np.int32)
        res = ScanResult(r["id"], r["subset"], r["levels_known"].strip().lower() == "true", seconds=dt)
        scans.append(score_volume(det, mask, np.asarray(mimg.affine, float), res.levels_known, res))
        if variants > 0 and res.levels_known:
            t = time.perf_counter()
            cases += volume_variant_cases(
                r["id"], np.asarray(scan.array), mask, np.asarray(mimg.affine, float), variants, seed, detect_fn, det
            )
            t_variants += time.perf_counter() - t
    for r in tqdm(spider_rows, desc="SPIDER", disable=not progress):
        scan = load_scan(data_dir / r["path"] / "image.nii.gz")
        t = time.perf_counter()
        det = detect(scan.to_sagittal(), model=model)
        spider_res.append(spider_entry(r["id"], det, time.perf_counter() - t))
        if variants > 0:
            t = time.perf_counter()
            cases += spider_variant_cases(r["id"], np.asarray(scan.array), scan.affine, det, variants, seed, detect_fn)
            t_variants += time.perf_counter() - t
    for r in tqdm(t1_rows, desc="SPIDER T1", disable=not progress):
        scan = load_scan(data_dir / r["path"] / r["image"])
        t = time.perf_counter()
        det = detect(scan.to_sagittal(), model=model)
        spider_t1_res.append(spider_entry(r["id"], det, time.perf_counter() - t))
        if variants > 0:
            t = time.perf_counter()
            cases += spider_variant_cases(
                r["id"], np.asarray(scan.array), scan.affine, det, variants, seed, detect_fn, source="spider-t1"
            )
            t_variants += time.perf_counter() - t
    report: dict[str, Any] = {
        "split": split,
        "model": model or "built-in",
        "overall": _overall(scans, spider_res, spider_t1_res),
        "scans": [s.to_dict() for s in scans],
        "spider": spider_res,
        "spider_t1": spider_t1_res,
    }
    if variants > 0:
        rob = robustness_overall(cases)
        rob["crops_per_item"] = variants
        rob["seed"] = seed
        rob["seconds"] = round(t_variants, 1)
        report["robustness"] = {"overall": rob, "cases": cases}
    return report


def spider_t1_rows(data_dir: Path, split: str) -> list[dict[str, str]]:
    """The SPIDER T1 slices of ``split`` listed in ``spider/t1.csv`` (none, with a log line, where it is absent)."""
    import csv

    path = data_dir / "spider" / "t1.csv"
    if not path.is_file():
        log.info("no SPIDER T1 slices: %s not found", path)
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["split"] == split]


def spider_entry(item: str, detection: Any, seconds: float) -> dict[str, Any]:
    """One SPIDER slice's line of the report: the lumbar disc sequence complete? and what was found."""
    return {
        "id": item,
        "complete": spider_sequence_ok(detection),
        "discs": [d.level.value if d.level else "?" for d in detection.discs],
        "vertebrae": [v.label.value if v.label else "?" for v in detection.vertebrae],
        "flags": list(detection.flags),
        "seconds": round(seconds, 3),
    }


def _share_complete(res: Sequence[dict[str, Any]]) -> float | None:
    return round(float(np.mean([r["complete"] for r in res])), 4) if res else None


def _overall(
    scans: list[ScanResult], spider_res: list[dict[str, Any]], spider_t1_res: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    body_scans = [s for s in scans if s.n_gt]
    n_gt = sum(s.n_gt for s in body_scans)
    errs = np.array([e for s in scans for e in s.errors_mm])
    lc = sum(s.level_checked for s in scans)
    gd = sum(s.gt_discs for s in scans)
    dd = sum(s.discs_detected for s in scans)
    out: dict[str, Any] = {
        "volumes_with_body_masks": len(body_scans),
        "gt_bodies": n_gt,
        "detection_rate": round(sum(s.detected for s in body_scans) / n_gt, 4) if n_gt else None,
        "false_positives_per_scan": round(sum(s.false_positives for s in body_scans) / len(body_scans), 4)
        if body_scans
        else None,
        "unscored_predictions_per_scan": round(sum(s.unscored for s in body_scans) / len(body_scans), 3)
        if body_scans
        else None,
        "level_accuracy": round(sum(s.level_correct for s in scans) / lc, 4) if lc else None,
        "level_checked": lc,
        "centroid_error_mm_median": round(float(np.median(errs)), 3) if len(errs) else None,
        "centroid_error_mm_p95": round(float(np.percentile(errs, 95)), 3) if len(errs) else None,
        "disc_detection_rate": round(dd / gd, 4) if gd else None,
        "disc_level_accuracy": round(sum(s.disc_level_correct for s in scans) / dd, 4) if dd else None,
        "spider_slices": len(spider_res),
        "spider_lumbar_sequence_complete": _share_complete(spider_res),
        "spider_t1_slices": len(spider_t1_res),
        "spider_t1_lumbar_sequence_complete": _share_complete(spider_t1_res),
        "seconds_per_volume_median": round(float(np.median([s.seconds for s in scans])), 3) if scans else None,
    }
    out["targets_met"] = {
        k: (out[k] is not None and (out[k] >= t if op == ">=" else out[k] <= t)) for k, (op, t) in TARGETS.items()
    }
    return out


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of the per-scan and overall figures."""
    lines = [f"detection evaluation on split '{report['split']}' (model: {report['model']})", ""]
    hdr = f"{'scan':<14}{'GT':>4}{'det':>5}{'FP':>4}{'unsc':>5}{'lvl ok':>8}{'err mm':>8}  predicted"
    lines.append(hdr)
    for s in report["scans"]:
        err = f"{np.median(s['errors_mm']):.1f}" if s["errors_mm"] else "-"
        lvl = f"{s['level_correct']}/{s['level_checked']}" if s["level_checked"] else "-"
        pred = " ".join(s["predicted"]) + (f" | discs {s['discs_detected']}/{s['gt_discs']}" if s["gt_discs"] else "")
        counts = f"{s['n_gt']:>4}{s['detected']:>5}{s['false_positives']:>4}{s['unscored']:>5}"
        lines.append(f"{s['id']:<14}{counts}{lvl:>8}{err:>8}  {pred}")
    for key, name in (("spider", "SPIDER T2"), ("spider_t1", "SPIDER T1")):
        res = report.get(key) or []
        if not res:
            continue
        bad = [r for r in res if not r["complete"]]
        lines.append("")
        lines.append(f"{name}: {len(res) - len(bad)}/{len(res)} slices with L1-L2 … L5-S1 in order")
        for r in bad:
            lines.append(f"  incomplete {r['id']}: discs {' '.join(r['discs']) or '-'}")
    lines.append("")
    o = report["overall"]
    for k, v in o.items():
        if k == "targets_met":
            continue
        tgt = TARGETS.get(k)
        mark = ""
        if tgt is not None:
            mark = f"   target {tgt[0]} {tgt[1]}: {'met' if o['targets_met'][k] else 'NOT met'}"
        lines.append(f"{k:<34}{v!s:>10}{mark}")
    if "robustness" in report:
        lines.extend(_format_robustness(report["robustness"]))
    return "\n".join(lines)


def _format_robustness(rob: dict[str, Any]) -> list[str]:
    o = rob["overall"]
    lines = [
        "",
        f"robustness: as-is, mirrored and {o['crops_per_item']} crops per item (seed {o['seed']}, "
        f"{o['seconds']} s); a case is right when every scored label is right",
        f"{'':<21}{'cases':>6}{'right':>8}{'wrong':>6}{'unflag':>7}{'flag|wrong':>11}{'right|flag':>11}"
        f"{'flag|right':>11}{'alt|wrong':>10}",
    ]

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    rows = [(k, o[k]) for k in ("all", "volume", "spider") if k in o] + list(o["by_variant"].items())
    rows += list(o.get("by_anchor", {}).items())
    rows += [("T1 (apart)", o["spider-t1"])] if "spider-t1" in o else []
    for name, f in rows:
        lines.append(
            f"{name:<21}{f['cases']:>6}{pct(f['every_label_right']):>8}{f['wrong']:>6}{f['wrong_unflagged']:>7}"
            f"{pct(f['flagged_share_of_wrong']):>11}{pct(f['right_or_flagged']):>11}{pct(f['right_flagged_share']):>11}"
            f"{pct(f.get('alternative_right_share_of_wrong')):>10}"
        )
    for k, (op, t) in ROBUSTNESS_TARGETS.items():
        lines.append(f"{k:<41}{o['all'][k]!s:>10}   target {op} {t}: {'met' if o['targets_met'][k] else 'NOT met'}")
    for c in rob["cases"]:
        if not c["right"]:
            state = "flagged" if c["flagged"] else "UNFLAGGED"
            lines.append(f"  wrong ({state}) {c['id']} {c['variant']} keep={c['keep']}: {' '.join(c['predicted'])}")
    return lines


def write_card_metrics(model_dir: Path, report: dict[str, Any], command: str) -> None:
    """Store the overall figures of a ``val`` evaluation in ``model_dir/card.json``."""
    from ..models import read_card

    card = read_card(model_dir)
    data = dict(card.data)
    data["metrics"] = {
        "split": report["split"],
        "evaluated_with": command,
        "date": time.strftime("%Y-%m-%d"),
        **{k: v for k, v in report["overall"].items()},
    }
    (model_dir / "card.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "openspine evaluate detection",
        "Detection and labelling figures of the vertebra detector on the shared data set.",
        _EPILOG,
    )
    p.add_argument("--data", type=Path, required=True, help="the shared data folder (with index.csv)")
    p.add_argument("--split", default="val", help="which split to evaluate (report on val)")
    p.add_argument("--model", default=None, help="detector model folder (default: the built-in detector)")
    p.add_argument("--out", type=Path, default=None, help="write the full report as JSON here")
    p.add_argument("--subsets", nargs="*", default=None, help="FastCleverSeg subsets to score (default: all)")
    p.add_argument("--no-spider", action="store_true", help="skip the SPIDER disc-sequence checks (T2 and T1 slices)")
    p.add_argument("--card", action="store_true", help="write the overall val figures into the model's card.json")
    p.add_argument(
        "--variants",
        type=int,
        default=DEFAULT_VARIANTS,
        help="robustness evaluation: crops of the field of view per item, besides the as-is and mirrored views "
        "(0 = off)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the robustness crops")
    p.add_argument("--ids", type=Path, default=None, help="a text file of item ids (one per line): evaluate only these")
    return p


def read_ids(path: Path) -> list[str]:
    """The item ids of an ``--ids`` file (one per line)."""
    if not path.is_file():
        raise ConfigError(f"--ids '{path}' does not exist")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cli_main(argv: list[str], quiet: bool = False) -> int:
    """``openspine evaluate detection ARGS``."""
    from ..models import resolve_model
    from ..writers import check_output_file

    args = build_parser().parse_args(argv)
    if args.variants < 0:
        build_parser().error(f"--variants must be 0 (off) or more, got {args.variants}")
    if args.card and args.split != "val":  # before the work, not after it
        raise ConfigError("--card stores validation figures: use it with --split val")
    if args.out is not None:
        check_output_file(args.out)
    if args.model is not None:
        resolve_model(args.model, "detector")  # a missing folder or another kind of model: one line, before work
    report = evaluate(
        args.data,
        args.split,
        args.model,
        spider=not args.no_spider,
        subsets=args.subsets,
        progress=not quiet,
        variants=args.variants,
        seed=args.seed,
        ids=read_ids(args.ids) if args.ids is not None else None,
    )
    if not quiet:
        print(format_report(report))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.card:
        from ..detection import BUILTIN_MODEL
        from ..models import builtin_model_dir

        folder = Path(args.model) if args.model else builtin_model_dir(BUILTIN_MODEL)
        write_card_metrics(folder, report, "openspine evaluate detection " + " ".join(argv))
    return 0
