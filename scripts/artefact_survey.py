"""What do MR acquisition artefacts do to the labels and the Pfirrmann grades of a scan the analysis has read well?

Every item of the split with known levels (the SPIDER T2 mid-sagittal slices and the FastCleverSeg volumes with
level-labelled masks) is analysed (:func:`openspine.analyze`) unaltered and under each artefact at three strengths
(0 mild, 1 moderate, 2 severe), made from the image itself:

* ``bias_ap`` / ``bias_si``: surface-coil shading, falling off anteriorly (with a smooth 10 % ripple) / inferiorly;
* ``ghost_ap`` / ``ghost_si``: periodic-motion ghosts, shifted copies along the anterior-posterior / superior-inferior
  phase-encode axis;
* ``wrap_ap``: a phase field of view too small in anterior-posterior: the anterior columns fold onto the posterior
  side (the image loses them; its affine follows, so positions in mm stay comparable);
* ``gibbs``: truncation ringing, only the central part of k-space kept;
* ``fat_band``: a band of brighter fat (inhomogeneous fat suppression) across the lumbar discs;
* ``zipper``: a column of alternating bright and dark pixels through the spine;
* ``rf_spike``: one bad k-space point, herringbone stripes over the whole image;
* ``fast_lowsnr``: a fast low-SNR scan, phase-encode lines undersampled (R = 2, 3, 4) and complex noise added.

Each artefact acts on the sagittal planes of the analysis layout (:meth:`openspine.scan.Scan.to_sagittal`: rows
superior to inferior, columns anterior to posterior), whatever the file's storage order; the altered planes are
stored as float32 (no clipping to the input's integer range) and analysed with the layout's affine. The random draws
of one artefact are seeded from (item, artefact, strength) with SHA-256, the same on every plane of a volume.

Per artefact and strength it prints: the cases; those refused as out of scope; among the others, those whose body
labels changed (a label gained, lost or moved by more than 12 mm), with and without a labelling flag
(:func:`openspine.detection.flags.labelling_flagged`); the Pfirrmann grades compared (a disc of the same level within
12 mm graded in both runs), changed, and changed by two grades or more; the exact agreement with the SPIDER
radiologists on T12-L1 … L5-S1, on the discs graded both unaltered and altered (unaltered → altered); and the runs
that raised an exception.

    python scripts/artefact_survey.py --data ../shared/data --split val
    python scripts/artefact_survey.py --data ../shared/data --split val --artefacts ghost_ap,wrap_ap --strengths 2
    python scripts/artefact_survey.py --items spider-73,fcs-ivd-46 --json artefacts-val.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

import openspine
from openspine import geometry
from openspine.detection.flags import labelling_flagged
from openspine.io import load_scan
from openspine.levels import LUMBAR_DISCS, grading_name
from openspine.scan import Scan
from openspine.training.datasets.spider import read_spider
from openspine.training.datasets.volumes import read_index

Plane = NDArray[np.float64]
TOLERANCE_MM = 12.0  # a body or disc of the same level further than this away is another one
STRENGTHS = ("mild", "moderate", "severe")
LUMBAR = frozenset(lv.value for lv in LUMBAR_DISCS)


# --- artefacts: each takes one sagittal plane (rows superior → inferior, columns anterior → posterior, values ≥ 0),
# a strength 0, 1 or 2 and a generator, and returns the altered plane (float64, ≥ 0)


def _check(plane: Plane, strength: int) -> None:
    """Refuse what the artefacts are not made for.

    Raises:
        ValueError: a plane that is not 2D or is smaller than 8 × 8 pixels; a strength other than 0, 1 or 2.
    """
    if plane.ndim != 2 or min(plane.shape) < 8:
        raise ValueError(f"an artefact needs a 2D plane of at least 8 × 8 pixels, got shape {plane.shape}")
    if strength not in (0, 1, 2):
        raise ValueError(f"strength must be 0 (mild), 1 (moderate) or 2 (severe), got {strength!r}")


def _kspace(plane: Plane) -> NDArray[np.complex128]:
    """The centred 2D k-space of a plane."""
    return np.fft.fftshift(np.fft.fft2(plane))


def _image(k: NDArray[np.complex128]) -> Plane:
    """The magnitude image of a centred k-space."""
    return np.abs(np.fft.ifft2(np.fft.ifftshift(k)))


def _smooth_random_field(shape: tuple[int, ...], rng: np.random.Generator, amp: float) -> Plane:
    """1 + ``amp`` × a smooth random field scaled to [-1, 1] (Gaussian-filtered noise, σ a quarter of each side)."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=[0.25 * n for n in shape], mode="reflect")
    return 1.0 + amp * f / (np.abs(f).max() + 1e-12)


def bias_ap(plane: Plane, strength: int, rng: np.random.Generator) -> Plane:
    """Spine array coil: gain 1 at the posterior edge decaying exponentially to 0.5 / 0.25 / 0.08 at the anterior
    edge, times a smooth random ripple of ±10 %."""
    _check(plane, strength)
    gmin = (0.5, 0.25, 0.08)[strength]
    w = plane.shape[1]
    d = (w - 1 - np.arange(w)) / (w - 1)  # 0 at the posterior edge, 1 at the anterior edge
    return plane * (gmin**d)[None, :] * _smooth_random_field(plane.shape, rng, 0.1)


def bias_si(plane: Plane, strength: int, rng: np.random.Generator) -> Plane:
    """Coil elements over the upper spine only: gain falling linearly from 1 at the top to 0.6 / 0.3 / 0.1 at the
    bottom."""
    _check(plane, strength)
    gmin = (0.6, 0.3, 0.1)[strength]
    h = plane.shape[0]
    return plane * (1.0 - (1.0 - gmin) * np.arange(h) / (h - 1))[:, None]


def _ghost(plane: Plane, strength: int, rng: np.random.Generator, axis: int) -> Plane:
    """Periodic motion: three pairs of copies shifted (wrapping) by ±1, 2, 3 periods of a fifth to a seventh of the
    side along ``axis``, weighted 0.06 / 0.12 / 0.22, half and a quarter of that; the original keeps the rest."""
    _check(plane, strength)
    amp = (0.06, 0.12, 0.22)[strength]
    period = plane.shape[axis] // int(rng.integers(5, 8))
    out = plane * (1 - 2 * amp * (1 + 0.5 + 0.25))
    for k, a in ((1, amp), (2, amp * 0.5), (3, amp * 0.25)):
        out = out + a * (np.roll(plane, k * period, axis=axis) + np.roll(plane, -k * period, axis=axis))
    return np.clip(out, 0, None)


def ghost_ap(plane: Plane, strength: int, rng: np.random.Generator) -> Plane:
    """Motion ghosts along the anterior-posterior (column) axis."""
    return _ghost(plane, strength, rng, axis=1)


def ghost_si(plane: Plane, strength: int, rng: np.random.Generator) -> Plane:
    """Motion ghosts along the superior-inferior (row) axis."""
    return _ghost(plane, strength, rng, axis=0)


def wrap_ap(plane: Plane, strength: int, rng: np.random.Generator) -> Plane:
    """Phase field of view too small in anterior-posterior: the anterior 15 / 25 / 35 % of the columns lie outside
    it and fold onto the posterior side. The plane returned lacks those columns (the first column it keeps is the
    input's column ``c``)."""
    _check(plane, strength)
    c = round((0.15, 0.25, 0.35)[strength] * plane.shape[1])
    out = plane[:, c:].copy()
    out[:, -c:] += plane[:, :c]
    return out


def gibbs(plane: Plane, strength: int, rng: np.random.Generator) -> Plane:
    """Truncation: only the central 50 / 30 / 18 % of k-space along each axis kept, zero-filled to the same size."""
    _check(plane, strength)
    frac = (0.5, 0.3, 0.18)[strength]
    h, w = plane.shape
    hh, ww = int(h * frac / 2), int(w * frac / 2)
    keep = np.zeros((h, w), dtype=bool)
    keep[h // 2 - hh : h // 2 + hh, w // 2 - ww : w // 2 + ww] = True
    return _image(np.where(keep, _kspace(plane), 0))


def fat_band(plane: Plane, strength: int, rng: np.random.Generator) -> Plane:
    """Inhomogeneous fat suppression: a horizontal Gaussian band (σ a tenth of the height, centred between 40 and
    70 % of it) where bright, fat-like tissue (from the 60th to the 95th percentile, ramped) gains up to
    40 / 90 / 160 %."""
    _check(plane, strength)
    gain = (0.4, 0.9, 1.6)[strength]
    h = plane.shape[0]
    centre = rng.uniform(0.4, 0.7) * h
    band = np.exp(-0.5 * ((np.arange(h) - centre) / (0.1 * h)) ** 2)[:, None]
    p60, p95 = np.percentile(plane, [60, 95])
    bright = np.clip((plane - p60) / (p95 - p60 + 1e-9), 0, 1)
    return plane * (1 + gain * band * bright)


def zipper(plane: Plane, strength: int, rng: np.random.Generator) -> Plane:
    """A zipper: a 3-pixel wide column (between 45 and 70 % of the width) of rows alternately raised and lowered by
    0.25 / 0.5 / 1 × the 99th percentile."""
    _check(plane, strength)
    amp = (0.25, 0.5, 1.0)[strength] * np.percentile(plane, 99)
    h, w = plane.shape
    col = int(rng.uniform(0.45, 0.7) * w)
    out = plane.copy()
    out[:, col - 1 : col + 2] += (np.where(np.arange(h) % 2 == 0, 1.0, -1.0) * amp)[:, None]
    return np.clip(out, 0, None)


def rf_spike(plane: Plane, strength: int, rng: np.random.Generator) -> Plane:
    """An RF spike: one k-space point, an eighth to a quarter of each side from the centre, raised so that the
    stripes it makes have an amplitude of 0.1 / 0.24 / 0.5 × the mean signal, at a random phase."""
    _check(plane, strength)
    amp = (0.05, 0.12, 0.25)[strength] * plane.mean() * 2
    k = _kspace(plane)
    h, w = plane.shape
    ky = h // 2 + int(rng.integers(h // 8, h // 4)) * (1 if rng.random() < 0.5 else -1)
    kx = w // 2 + int(rng.integers(w // 8, w // 4)) * (1 if rng.random() < 0.5 else -1)
    k[ky, kx] += amp * h * w * np.exp(1j * rng.uniform(0, 2 * np.pi))
    return _image(k)


def fast_lowsnr(plane: Plane, strength: int, rng: np.random.Generator) -> Plane:
    """A fast low-SNR scan: phase-encode (superior-inferior) lines kept at random with probability 1/2, 1/3, 1/4,
    the central 8 % always; complex Gaussian noise of 2 / 4 / 7 % of the 99th percentile on the lines kept; the
    zero-filled magnitude image (its mean signal is kept: the centre line is never dropped)."""
    _check(plane, strength)
    r = (2, 3, 4)[strength]
    sigma = (0.02, 0.04, 0.07)[strength] * np.percentile(plane, 99)
    h, w = plane.shape
    k = _kspace(plane)
    keep = rng.random(h) < 1.0 / r
    c = int(0.04 * h)
    keep[h // 2 - c : h // 2 + c] = True
    noise = (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape)) * sigma * np.sqrt(h * w) / np.sqrt(2)
    return _image(np.where(keep[:, None], k + noise, 0))


Artefact = Callable[[Plane, int, np.random.Generator], Plane]
ARTEFACTS: dict[str, Artefact] = {
    "bias_ap": bias_ap,
    "bias_si": bias_si,
    "ghost_ap": ghost_ap,
    "ghost_si": ghost_si,
    "wrap_ap": wrap_ap,
    "gibbs": gibbs,
    "fat_band": fat_band,
    "zipper": zipper,
    "rf_spike": rf_spike,
    "fast_lowsnr": fast_lowsnr,
}


def seed_of(item: str, artefact: str, strength: int) -> int:
    """The seed of one (item, artefact, strength): the first 8 bytes of its SHA-256, the same in every run."""
    return int.from_bytes(hashlib.sha256(f"{item}|{artefact}|{strength}".encode()).digest()[:8], "little")


def altered(layout: Scan, artefact: str, strength: int, seed: int) -> Scan:
    """``layout`` (a scan in the analysis layout) with the artefact applied to each sagittal plane, every plane with
    a generator seeded alike (the same random field and positions throughout a volume), stored as float32. Where the
    artefact drops anterior columns (``wrap_ap``), the affine's origin moves to the first column kept.

    Raises:
        ValueError: ``layout`` is not in the analysis layout; an unknown artefact; see :func:`_check`.
    """
    if layout.orientation != geometry.INTERNAL_CODES:
        raise ValueError(f"expected a scan in the analysis layout {geometry.INTERNAL_CODES}, got {layout.orientation}")
    if artefact not in ARTEFACTS:
        raise ValueError(f"unknown artefact {artefact!r}; known: {', '.join(ARTEFACTS)}")
    make = ARTEFACTS[artefact]
    arr = layout.array
    planes = [make(arr[:, :, k].astype(np.float64), strength, np.random.default_rng(seed)) for k in range(arr.shape[2])]
    out = np.stack(planes, axis=2).astype(np.float32)
    affine = layout.affine.copy()
    dropped = arr.shape[1] - out.shape[1]
    affine[:3, 3] += layout.affine[:3, 1] * dropped
    return Scan(out, affine)


# --- items and what is compared


@dataclass
class Item:
    """One scan of the survey: its id, file and the radiologists' Pfirrmann grades by level (SPIDER only)."""

    id: str
    image: Path
    pfirrmann: dict[str, int] = field(default_factory=dict)


def survey_items(data: Path, split: str, wanted: set[str] | None) -> list[Item]:
    """The split's SPIDER T2 slices (with their radiologists' Pfirrmann grades) and its FastCleverSeg volumes whose
    masks carry known levels; only the ids in ``wanted`` when given."""
    items = [
        Item(f"spider-{c.patient}", c.image, {lv.value: int(g["pfirrmann"]) for lv, g in c.labels.items()})
        for c in read_spider(data, (split,))
    ]
    items += [
        Item(r["id"], data / r["path"] / r["image"])
        for r in read_index(data)
        if r["split"] == split and r["dataset"] == "fastcleverseg" and r["levels_known"] == "true"
    ]
    return [it for it in items if wanted is None or it.id in wanted]


@dataclass
class Reading:
    """What one analysis says that the survey compares: labelled bodies and Pfirrmann-graded discs by level (with
    their centroids in mm), the flags and whether it was refused."""

    bodies: dict[str, NDArray[np.float64]]
    pfirrmann: dict[str, tuple[int, NDArray[np.float64]]]
    flagged: bool
    out_of_scope: bool


def reading(result: Any) -> Reading:
    """The :class:`Reading` of one analysis result."""
    bodies = {v.label.value: np.asarray(v.centroid_mm, float) for v in result.vertebrae if v.label is not None}
    pfirrmann = {}
    for d in result.discs:
        g = next((g for k, g in d.grades.items() if grading_name(k) == "pfirrmann"), None)
        if d.level is not None and g is not None and g.available and g.grade is not None:
            pfirrmann[d.level.value] = (int(g.grade), np.asarray(d.centroid_mm, float))
    return Reading(bodies, pfirrmann, labelling_flagged(result.flags), result.out_of_scope is not None)


def _apart(a: NDArray[np.float64], b: NDArray[np.float64]) -> bool:
    return float(np.linalg.norm(a - b)) > TOLERANCE_MM


def labels_changed(ref: Reading, alt: Reading) -> bool:
    """Whether a level was gained or lost, or one moved to another body (further than 12 mm)."""
    return ref.bodies.keys() != alt.bodies.keys() or any(_apart(p, alt.bodies[lv]) for lv, p in ref.bodies.items())


def grade_changes(ref: Reading, alt: Reading) -> tuple[int, int, int]:
    """(discs compared, Pfirrmann changed, changed by ≥ 2): discs graded in both with the same level within 12 mm."""
    deltas = [
        abs(alt.pfirrmann[lv][0] - g)
        for lv, (g, p) in ref.pfirrmann.items()
        if lv in alt.pfirrmann and not _apart(p, alt.pfirrmann[lv][1])
    ]
    return len(deltas), sum(d > 0 for d in deltas), sum(d >= 2 for d in deltas)


def agreement(item: Item, ref: Reading, alt: Reading) -> tuple[int, int, int]:
    """(discs, unaltered exact, altered exact): the radiologists' lumbar discs graded in both runs (by level)."""
    levels = [lv for lv in item.pfirrmann if lv in LUMBAR and lv in ref.pfirrmann and lv in alt.pfirrmann]
    ref_ok = sum(ref.pfirrmann[lv][0] == item.pfirrmann[lv] for lv in levels)
    return len(levels), ref_ok, sum(alt.pfirrmann[lv][0] == item.pfirrmann[lv] for lv in levels)


# --- the survey


def survey(items: list[Item], artefacts: list[str], strengths: list[int]) -> tuple[list[dict[str, Any]], int]:
    """Every case (one per item, artefact and strength; artefact ``none`` for the unaltered run) as a record of what
    changed against the unaltered run; and the number of analyses run."""
    cases: list[dict[str, Any]] = []
    runs = 0
    for item in items:
        base: dict[str, Any] = {"id": item.id, "artefact": "none", "strength": None}
        try:
            layout = load_scan(item.image).to_sagittal().scan
            runs += 1
            ref = reading(openspine.analyze(Scan(layout.array, layout.affine)))
        except Exception as exc:  # a failure is a finding, reported as such
            cases.append(base | {"exception": f"{type(exc).__name__}: {exc}"})
            continue
        n, ok, _ = agreement(item, ref, ref)
        cases.append(base | {"out_of_scope": ref.out_of_scope, "agreement": [n, ok]})
        for name in artefacts:
            for s in strengths:
                case: dict[str, Any] = {"id": item.id, "artefact": name, "strength": s}
                try:
                    scan = altered(layout, name, s, seed_of(item.id, name, s))
                    runs += 1
                    alt = reading(openspine.analyze(scan))
                except Exception as exc:  # as above
                    cases.append(case | {"exception": f"{type(exc).__name__}: {exc}"})
                    continue
                case["out_of_scope"] = alt.out_of_scope
                if not alt.out_of_scope:
                    case.update(labels_changed=labels_changed(ref, alt), flagged=alt.flagged)
                case["pfirrmann"] = grade_changes(ref, alt)
                case["agreement"] = agreement(item, ref, alt)
                cases.append(case)
    return cases, runs


def _percent(ok: int, n: int) -> str:
    return f"{100 * ok / n:.1f} %" if n else "–"


def report(cases: list[dict[str, Any]], artefacts: list[str], strengths: list[int]) -> list[str]:
    """The unaltered runs' line and the table, one row per artefact and strength, then any exceptions."""
    base = [c for c in cases if c["artefact"] == "none"]
    ok_base = [c for c in base if "exception" not in c]
    n, ok = (sum(c["agreement"][i] for c in ok_base) for i in (0, 1))
    lines = [
        f"unaltered: {len(base)} cases, {sum(c['out_of_scope'] for c in ok_base)} out of scope, "
        f"{len(base) - len(ok_base)} exceptions; exact Pfirrmann agreement with the SPIDER radiologists on "
        f"T12-L1 … L5-S1: {ok}/{n} = {_percent(ok, n)}",
        "",
        "labels changed: among the cases not out of scope, a level gained, lost or moved > 12 mm; flagged: with a "
        "labelling flag",
        "Pfirrmann: discs graded in both runs at the same level (≤ 12 mm): changed / compared, changed by ≥ 2",
        "agreement: exact Pfirrmann agreement with the radiologists on the discs graded both unaltered and altered",
        "",
    ]
    header = (
        f"{'artefact':12s} {'strength':10s} {'cases':>5s} {'out of scope':>12s} {'labels changed':>14s} "
        f"{'flagged':>7s} {'unflagged':>9s} {'Pfirrmann changed':>17s} {'by ≥ 2':>6s} "
        f"{'agreement unaltered → altered (discs)':>37s} {'exceptions':>10s}"
    )
    lines += [header, "-" * len(header)]
    for name in artefacts:
        for s in strengths:
            cs = [c for c in cases if c["artefact"] == name and c["strength"] == s]
            done = [c for c in cs if "exception" not in c]
            changed = [c for c in done if c.get("labels_changed")]
            flagged = sum(c["flagged"] for c in changed)
            compared, pf_changed, pf_big = (sum(c["pfirrmann"][i] for c in done) for i in range(3))
            n, ok_ref, ok_alt = (sum(c["agreement"][i] for c in done) for i in range(3))
            agree = f"{_percent(ok_ref, n)} → {_percent(ok_alt, n)} ({n})"
            lines.append(
                f"{name:12s} {f'{s} {STRENGTHS[s]}':10s} {len(cs):5d} {sum(c['out_of_scope'] for c in done):12d} "
                f"{len(changed):14d} {flagged:7d} {len(changed) - flagged:9d} {f'{pf_changed}/{compared}':>17s} "
                f"{pf_big:6d} {agree:>37s} {len(cs) - len(done):10d}"
            )
    failed = [c for c in cases if "exception" in c]
    if failed:
        lines += ["", "exceptions:"]
        lines += [f"  {c['id']} {c['artefact']} {c['strength']}: {c['exception']}" for c in failed]
    return lines


def _names(text: str | None, known: list[str], what: str) -> list[str]:
    """A comma-separated list of names, each one of ``known`` (all of them when ``text`` is None)."""
    if text is None:
        return known
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in known]
    if unknown or not names:
        raise SystemExit(f"unknown {what}: {', '.join(unknown) or text!r}; known: {', '.join(known)}")
    return names


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder (index.csv)")
    ap.add_argument("--split", default="val", choices=("train", "val"))
    ap.add_argument("--artefacts", default=None, help=f"comma-separated (default all: {', '.join(ARTEFACTS)})")
    ap.add_argument("--strengths", default="0,1,2", help="comma-separated, of 0 (mild), 1 (moderate), 2 (severe)")
    ap.add_argument("--items", default=None, help="comma-separated item ids (default every item of the split)")
    ap.add_argument("--json", type=Path, default=None, help="also write every case here")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # the analyses' warnings: the survey counts what they say
    artefacts = _names(args.artefacts, list(ARTEFACTS), "artefact")
    strengths = [int(s) for s in _names(args.strengths, ["0", "1", "2"], "strength")]
    wanted = None if args.items is None else {t.strip() for t in args.items.split(",") if t.strip()}
    items = survey_items(args.data, args.split, wanted)
    missing = sorted((wanted or set()) - {it.id for it in items})
    if missing or not items:
        raise SystemExit(f"no item with known levels in split '{args.split}' under '{args.data}': {missing or 'none'}")
    t0 = time.perf_counter()
    cases, runs = survey(items, artefacts, strengths)
    seconds = time.perf_counter() - t0
    if args.json is not None:
        args.json.write_text(json.dumps(cases, indent=1) + "\n")
    print("\n".join(report(cases, artefacts, strengths)))
    print(f"\n{len(items)} items, {runs} analyses in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
