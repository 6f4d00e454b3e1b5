"""Where the level labelling goes wrong in cropped and mirrored views, and the ideas tried against it (train only).

``collect`` runs the built-in detector on every item of a split with known levels — SPIDER T2 and T1 slices, and the
FastCleverSeg volumes with level-labelled masks — as is, mirrored and with ``--crops`` random crops of the field of
view (the crops of ``openspine evaluate detection``, another ``--seed``). An item serves only when its as-is detection
is confident (S1 found, no labelling flag; SPIDER: L1-L2 … L5-S1 complete), and that detection is the reference: every
body found in a variant gets the level of the reference body within 15 mm (world coordinates), 26 when it lies below
the reference S1 (a sacral segment), -1 otherwise. Per variant it keeps what the labelling saw (each body's level
estimate, weight and centre), the flags, and a 96 × 96 patch (1.25 mm pixels) around each of the lowest five bodies.

``report`` prints, from such a collection:

* ``bias``: the estimate minus the level, per level, with and without S1 in view (the estimates are compressed);
* ``calibration``: labels of the views without a sacrum when the estimates are first mapped through a calibration
  learnt on the other patients (5 folds), against the labels as shipped;
* ``anchor``: where the sacrum anchor picked the wrong body, whether the true S1 was a candidate;
* ``alternative``: how often a wrong labelling is off by the one-level shift its ``labelling_alternative`` flag names;
* ``flags``: a flag for a small fit margin together with bodies above S1 reading off their labels — how many wrong
  unflagged views it would catch and how many right unflagged views it would flag.

``sacrum-cv`` (needs torch) trains a small CNN on the patches to tell S1 from the bodies around it, 5-fold by patient,
and scores its out-of-fold probabilities as the anchor's judge and as a flag.

``collect --tta NAME …`` also runs each view with the network input resampled (``zoom0.85``, ``zoom1.15``: the
card's pixel size × 0.85 / 1.15) or its intensities raised to a power (``gamma0.7``, ``gamma1.4``); ``tta`` then
scores labels from the estimates averaged over these inputs and a flag for when one of them labels a body otherwise.
``reliability`` (needs torch; ``--with-tta`` adds the ``zoom0.85`` disagreement) learns a flag from ten numbers of an
anchored fit (margin, residuals above S1, S1's estimate and extent, the room below it, …) with a class-balanced
logistic regression, 5-fold by patient, and prints what it catches for a given share of right views flagged.

    python scripts/labelling_survey.py collect --data ../shared/data --crops 10 --seed 1 --out runs/lab.pkl
    python scripts/labelling_survey.py report runs/lab.pkl
    python scripts/labelling_survey.py sacrum-cv runs/lab.pkl --epochs 10
    python scripts/labelling_survey.py collect --data ../shared/data --crops 10 --seed 1 --out runs/lab-tta.pkl \
        --tta zoom0.85 zoom1.15 gamma0.7 gamma1.4
    python scripts/labelling_survey.py tta runs/lab-tta.pkl
    python scripts/labelling_survey.py reliability runs/lab-tta.pkl --with-tta

Never run it on val to choose anything: it exists to decide on train.
"""

from __future__ import annotations

import argparse
import csv
import pickle
import sys
import time
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from openspine.detection import decode, detect
from openspine.detection.detect import _load, model_images, run_network
from openspine.detection.labelling import MIN_ORDINAL, S1_ORDINAL, fit_labels, label_sequence, sequence_index
from openspine.detection.records import _Frame, decode_all, find_bodies
from openspine.evaluation import detection as ev
from openspine.io import load_scan
from openspine.levels import Level
from openspine.scan import Scan

PATCH = 96
LOWEST = 5
BELOW_S1 = 26  # a body below the reference S1


def _items(data: Path, split: str) -> list[tuple[str, str, Path]]:
    """(item, patient group, image path) of the split's items with known levels."""
    with (data / "index.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    out = [(r["id"], r["id"], data / r["path"] / "image.nii.gz") for r in rows if r["dataset"] == "spider"]
    out += [
        (r["id"], f"spider-{r['patient_id']}", data / r["path"] / r["image"]) for r in ev.spider_t1_rows(data, split)
    ]
    out += [
        (r["id"], r["id"], data / r["path"] / r["image"])
        for r in rows
        if r["dataset"] == "fastcleverseg" and r["levels_known"].strip().lower() == "true"
    ]
    return out


def _patch(img: np.ndarray, rc: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A PATCH × PATCH window of ``img`` centred on ``rc``; zero outside the picture (``shape``)."""
    out = np.zeros((PATCH, PATCH), np.float32)
    r0, c0 = round(float(rc[0])) - PATCH // 2, round(float(rc[1])) - PATCH // 2
    a0, b0, a1, b1 = max(r0, 0), max(c0, 0), min(r0 + PATCH, shape[0]), min(c0 + PATCH, shape[1])
    if a1 > a0 and b1 > b0:
        out[a0 - r0 : a1 - r0, b0 - c0 : b1 - c0] = img[a0:a1, b0:b1]
    return out


def _view_record(
    view: Any, loaded: Any, params: Any, ref: list[tuple[np.ndarray, int]], tta: tuple[float, float] | None = None
) -> dict[str, Any] | None:
    """What the labelling saw in one view; ``tta`` = (zoom, gamma): the network input resampled to the card's pixel
    size × zoom and its intensities raised to gamma (then only the bodies, no flags or patches)."""
    card = loaded.card.data
    if tta is not None:
        card = {**card, "input": {**card["input"], "spacing_mm": float(card["input"]["spacing_mm"]) * tta[0]}}
    images, slices = model_images(view, card)
    if tta is not None and tta[1] != 1.0:
        images = np.power(images, tta[1], dtype=np.float32)
    maps = run_network(loaded, images)
    groups = find_bodies(maps, slices.grid, slices.spacing_mm, params)
    if not groups:
        return None
    groups_k = slices.slice_groups
    frame = _Frame.of(
        view, slices.grid, [round(float(np.mean(g))) for g in groups_k], [(min(g), max(g)) for g in groups_k]
    )
    s1_z = next(c for c, o in ref if o == S1_ORDINAL)[2]
    truth = []
    for g in groups:
        w = view.to_world(frame.internal(g.centroid, g.slice_pos)[0])
        d = [float(np.linalg.norm(w - c)) for c, _ in ref]
        i = int(np.argmin(d))
        truth.append(ref[i][1] if d[i] <= 15 else BELOW_S1 if w[2] < s1_z - 10 else -1)
    lowest = range(max(0, len(groups) - LOWEST), len(groups))
    bodies = {
        "preds": np.array([g.level for g in groups]),
        "weights": np.array([g.score * min(len(g.members), 3) for g in groups]),
        "cents": np.array([g.centroid for g in groups]) * slices.spacing_mm,
        "truth": np.array(truth),
        # each body's lowest and highest pixel row, and the picture's height (mm on the model grid)
        "bottom": np.array([max(int(m.pixels[:, 0].max()) for m in g.members if len(m.pixels)) for g in groups])
        * slices.spacing_mm,
        "top": np.array([min(int(m.pixels[:, 0].min()) for m in g.members if len(m.pixels)) for g in groups])
        * slices.spacing_mm,
        "height": slices.grid.shape[0] * slices.spacing_mm,
    }
    if tta is not None:
        return bodies
    det, _ = decode_all(view, maps, slices, params)
    return {
        **bodies,
        "flagged": ev.labelling_flagged(det.flags),
        "patches": [
            (j, _patch(images[groups[j].mid_member().slice_pos], groups[j].mid_member().centroid, slices.grid.shape))
            for j in lowest
        ],
    }


TTA = {"zoom0.85": (0.85, 1.0), "zoom1.15": (1.15, 1.0), "gamma0.7": (1.0, 0.7), "gamma1.4": (1.0, 1.4)}


def collect(data: Path, split: str, crops: int, seed: int, tta: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    loaded = _load(None)
    params = decode.DecodeParams.from_card(loaded.card.data.get("decode"))
    recs: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    items = _items(data, split)
    for k, (item, group, path) in enumerate(items):
        scan = load_scan(path)
        det = detect(scan.to_sagittal())
        labels = [v.label for v in det.vertebrae]
        spider_ok = ev.spider_sequence_ok(det) or item.startswith("fcs")
        if ev.labelling_flagged(det.flags) or Level.S1 not in labels or not spider_ok:
            continue
        ref = [(np.asarray(v.centroid_mm, float), v.label.ordinal) for v in det.vertebrae if v.label is not None]
        ax, sup_low = ev.si_axis(scan.affine)
        ext = []
        for v in det.vertebrae:
            rows = [c[ax] for o in v.outlines for c in o.corners_voxel]
            if rows:
                ext.append((max(0, int(np.floor(min(rows)))), min(scan.array.shape[ax] - 1, int(np.ceil(max(rows))))))
        arr = np.asarray(scan.array)
        for var in ev.make_variants(ext, arr.shape[ax], sup_low, crops, ev._rng_for(seed, item)):
            (img_v,), aff_v = ev.apply_variant([arr], scan.affine, var)
            view = Scan(img_v, aff_v).to_sagittal()
            rec = _view_record(view, loaded, params, ref)
            if rec is not None:
                if tta:
                    rec["tta"] = {k: _view_record(view, loaded, params, ref, TTA[k]) for k in tta}
                recs.append({"id": item, "group": group, "variant": var.name, **rec})
        print(f"{k + 1}/{len(items)} {item}: {len(recs)} views, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return recs


# --- analyses --------------------------------------------------------------------------------------------------------
def _fold(group: str, k: int = 5) -> int:
    return zlib.crc32(group.encode()) % k


def _right(ords: np.ndarray, truth: np.ndarray) -> bool:
    known = (truth >= 17) & (truth <= S1_ORDINAL)
    return (
        bool(known.any()) and bool(np.all(ords[known] == truth[known])) and bool(np.all(ords[truth == BELOW_S1] == 0))
    )


def _source(rec: dict[str, Any]) -> str:
    return "volume" if rec["id"].startswith("fcs") else "spider-t1" if rec["id"].endswith("-t1") else "spider-t2"


def bias(recs: list[dict[str, Any]]) -> None:
    agg: dict[tuple[bool, int], list[float]] = defaultdict(list)
    for r in recs:
        s1 = bool(np.any(r["truth"] == S1_ORDINAL))
        for p, t in zip(r["preds"], r["truth"]):
            if 17 <= t <= S1_ORDINAL:
                agg[(s1, int(t))].append(float(p - t))
    print("estimate − level (mean, sd, bodies) by level; views with / without S1 in view")
    for t in range(17, S1_ORDINAL + 1):
        cells = []
        for s1 in (True, False):
            a = np.array(agg.get((s1, t), []))
            cells.append(f"{a.mean():+.2f} {a.std():.2f} ({len(a)})" if len(a) else "-")
        print(f"  {Level.from_ordinal(t).value:4s} with S1 {cells[0]:22s} without {cells[1]}")


def _calibration(train: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    agg: dict[int, list[float]] = defaultdict(list)
    for r in train:
        if label_sequence(r["preds"], r["weights"], r["cents"]).s1 is None:
            for p, t in zip(r["preds"], r["truth"]):
                if 17 <= t <= S1_ORDINAL:
                    agg[int(t)].append(float(p))
    t = np.array(sorted(k for k in agg if len(agg[k]) >= 30), float)
    mu = np.maximum.accumulate(np.array([np.mean(agg[int(k)]) for k in t]) + 1e-3 * np.arange(len(t)))
    sd = np.array([np.std(agg[int(k)]) for k in t])
    return t, mu, sd


def calibration(recs: list[dict[str, Any]]) -> None:
    """The no-sacrum fit on calibrated estimates (inverse of the mean estimate per level), weighted by how well an
    estimate separates levels there ((slope / sd)²), against the shipped fit; 5 folds by patient."""
    tab: Counter[tuple[str, str, bool]] = Counter()
    for k in range(5):
        t, mu, sd = _calibration([r for r in recs if _fold(r["group"]) != k])
        for r in (r for r in recs if _fold(r["group"]) == k):
            lab = label_sequence(r["preds"], r["weights"], r["cents"])
            if lab.s1 is not None or not np.any((r["truth"] >= 17) & (r["truth"] <= S1_ORDINAL)):
                continue
            p = r["preds"]
            q = np.interp(p, mu, t) + np.where(p < mu[0], p - mu[0], 0) + np.where(p > mu[-1], p - mu[-1], 0)
            info = (np.interp(q, t, np.gradient(mu, t)) / np.interp(q, t, sd)) ** 2
            fit = fit_labels(q, r["weights"] * np.clip(info / np.median(info), 0.05, 3), lab.index)
            keep = (fit.ordinals >= MIN_ORDINAL) & (fit.ordinals <= S1_ORDINAL)
            tab[("shipped", _source(r), _right(lab.ordinals, r["truth"]))] += 1
            tab[("calibrated", _source(r), _right(np.where(keep, fit.ordinals, 0), r["truth"]))] += 1
    print("views without an S1 anchor, every label right (5-fold calibration by patient)")
    for src in ("volume", "spider-t2", "spider-t1"):
        for how in ("shipped", "calibrated"):
            n = tab[(how, src, True)] + tab[(how, src, False)]
            print(f"  {src:10s} {how:10s} {tab[(how, src, True)]}/{n}")


def anchor(recs: list[dict[str, Any]]) -> None:
    tab: Counter[str] = Counter()
    for r in recs:
        lab = label_sequence(r["preds"], r["weights"], r["cents"])
        if lab.s1 is None:
            continue
        t = r["truth"]
        if t[lab.s1] == S1_ORDINAL:
            tab["S1 right"] += 1
        elif not np.any(t == S1_ORDINAL):
            tab["wrong: S1 not among the bodies found (cut away or missed)"] += 1
        elif lab.s1_alternative is not None and t[lab.s1_alternative] == S1_ORDINAL:
            tab["wrong: the true S1 was the close runner-up"] += 1
        else:
            tab["wrong: the true S1 was found but lost"] += 1
    print("views with an S1 anchor:")
    for k, v in tab.most_common():
        print(f"  {v:5d}  {k}")


def alternative(recs: list[dict[str, Any]]) -> None:
    """How often a wrong labelling is off by the shift its ``labelling_alternative`` flag names."""
    tab: Counter[tuple[bool, str]] = Counter()
    for r in recs:
        lab = label_sequence(r["preds"], r["weights"], r["cents"])
        t = r["truth"]
        both = (lab.ordinals > 0) & (t >= 17) & (t <= S1_ORDINAL)
        if not both.any():
            continue
        err = int(np.median(lab.ordinals[both] - t[both]))
        what = "right" if err == 0 else "wrong, the alternative right" if err == -lab.alternative else "wrong, both"
        tab[(lab.s1 is not None, what)] += 1
    print("labels and their named alternative (views with known levels in view):")
    for (anchored, what), v in sorted(tab.items()):
        print(f"  {'anchored on S1' if anchored else 'no S1 anchor':15s} {what:28s} {v}")


def flags(recs: list[dict[str, Any]]) -> None:
    rows = []
    for r in recs:
        lab = label_sequence(r["preds"], r["weights"], r["cents"])
        if lab.s1 is None:
            continue
        above = lab.residuals[max(0, lab.s1 - 2) : lab.s1]
        above = above[np.isfinite(above)]
        res = float(np.mean(above)) if len(above) else 0.0
        rows.append((_right(lab.ordinals, r["truth"]), r["flagged"], lab.margin, res))
    a = np.array(rows, float)
    right, flagged, margin, res = a[:, 0] > 0, a[:, 1] > 0, a[:, 2], np.abs(a[:, 3])
    print(f"anchored views: {len(a)}; wrong {int((~right).sum())}, of them unflagged {int((~right & ~flagged).sum())}")
    for tm in (0.4, 0.5, 0.6):
        for tr in (0.15, 0.2, 0.25):
            f = (margin < tm) & (res >= tr)
            print(
                f"  flag margin < {tm} and |residual above S1| ≥ {tr}: catches {int((f & ~right & ~flagged).sum())} "
                f"unflagged wrong, flags {int((f & right & ~flagged).sum())} of {int((right & ~flagged).sum())} "
                "unflagged right"
            )


def _match(c0: np.ndarray, c1: np.ndarray, tol_mm: float = 8.0) -> np.ndarray:
    """For each body centre in ``c0`` the index of the nearest in ``c1`` within ``tol_mm``, else -1."""
    if not len(c1):
        return np.full(len(c0), -1)
    d = np.linalg.norm(c0[:, None, :] - c1[None, :, :], axis=2)
    j = d.argmin(axis=1)
    return np.where(d[np.arange(len(c0)), j] <= tol_mm, j, -1)


def tta(recs: list[dict[str, Any]]) -> None:
    """Test-time augmentation (a ``collect --tta`` collection): labels from the estimates averaged over the zoomed
    and gamma-corrected inputs, and a flag when one of them labels a body otherwise than the plain input."""
    tab: dict[str, Counter[str]] = defaultdict(Counter)
    for r in recs:
        lab = label_sequence(r["preds"], r["weights"], r["cents"])
        right, flagged = _right(lab.ordinals, r["truth"]), r["flagged"]
        whole = "whole" if r["variant"] in ("as-is", "mirrored") else "crop"
        kind = f"{'anchored' if lab.s1 is not None else 'no anchor'} {whole}"
        shifts, stack = [], [r["preds"]]
        for t in (r.get("tta") or {}).values():
            if t is None:
                shifts.append(99)
                continue
            lt = label_sequence(t["preds"], t["weights"], t["cents"])
            j = _match(r["cents"], t["cents"])
            both = (j >= 0) & (lab.ordinals > 0)
            d = lt.ordinals[j[both]] - lab.ordinals[both] if both.any() else np.array([99])
            shifts.append(int(np.median(d)) if np.all(d == np.median(d)) else 99)
            stack.append(np.where(j >= 0, t["preds"][np.maximum(j, 0)], r["preds"]))
        avg = label_sequence(np.mean(stack, axis=0), r["weights"], r["cents"])
        ttaflag = any(s != 0 for s in shifts)
        for k in (kind, "all"):
            c = tab[k]
            c["views"] += 1
            c["right"] += right
            c["right (TTA mean)"] += _right(avg.ordinals, r["truth"])
            c["wrong unflagged"] += (not right) and not flagged
            c["wrong unflagged, TTA flag"] += (not right) and not flagged and ttaflag
            c["right unflagged"] += right and not flagged
            c["right unflagged, TTA flag"] += right and not flagged and ttaflag
            c["wrong unflagged (TTA mean)"] += (not _right(avg.ordinals, r["truth"])) and not flagged
    for k in sorted(tab):
        print(k + ": " + ", ".join(f"{n} {v}" for n, v in tab[k].items()))


RELIABILITY_FEATURES = (
    "margin",
    "residual above S1",
    "|residual above S1|",
    "S1 estimate",
    "room below S1 (body spacings)",
    "bodies below S1",
    "S1 at the lower edge",
    "S1 height / median body height",
    "bodies above S1",
    "another S1 candidate",
)


def _reliability_features(r: dict[str, Any], lab: Any) -> list[float]:
    """What the fit and the bodies' extent say about an anchored labelling (see RELIABILITY_FEATURES)."""
    j = int(lab.s1)
    above = lab.residuals[max(0, j - 2) : j]
    above = above[np.isfinite(above)]
    res = float(np.mean(above)) if len(above) else 0.0
    c = r["cents"]
    spacing = float(np.median(np.linalg.norm(np.diff(c, axis=0), axis=1))) if len(c) > 1 else 30.0
    heights = r["bottom"] - r["top"]
    return [
        lab.margin,
        res,
        abs(res),
        float(r["preds"][j]),
        (r["height"] - r["bottom"][j]) / max(spacing, 1.0),
        float(len(c) - 1 - j),
        float(r["bottom"][j] >= r["height"] - 4.0),
        float(heights[j] / max(float(np.median(heights)), 1.0)),
        float(j),
        float(lab.s1_alternative is not None),
    ]


def reliability(recs: list[dict[str, Any]], extra_tta: bool = False) -> None:
    """A flag learnt from the anchored views' fit and extent (class-balanced logistic regression, 5-fold by patient):
    how many unflagged wrong views it catches for a given share of unflagged right views it newly flags."""
    from openspine.training.stacking import fit_head

    xs, ys, fl, groups, whole = [], [], [], [], []
    for r in recs:
        lab = label_sequence(r["preds"], r["weights"], r["cents"])
        if lab.s1 is None:
            continue
        f = _reliability_features(r, lab)
        if extra_tta:
            t = r["tta"]["zoom0.85"]
            shift = 0.0
            if t is not None:
                lt = label_sequence(t["preds"], t["weights"], t["cents"])
                jm = _match(r["cents"], t["cents"])
                both = (jm >= 0) & (lab.ordinals > 0)
                shift = float(np.any(lt.ordinals[jm[both]] != lab.ordinals[both])) if both.any() else 1.0
            f.append(shift)
        xs.append(f)
        ys.append(int(not _right(lab.ordinals, r["truth"])))
        fl.append(bool(r["flagged"]))
        groups.append(r["group"])
        whole.append(r["variant"] in ("as-is", "mirrored"))
    x, y, flagged, whole_a = np.array(xs), np.array(ys), np.array(fl), np.array(whole)
    folds = np.array([_fold(g) for g in groups])
    score = np.zeros(len(y))
    for k in range(5):
        tr, te = folds != k, folds == k
        head = fit_head(x[tr], y[tr], 2, 0.03)
        b = head.balanced(np.zeros((int(te.sum()), 0)), x[te])
        score[te] = b[:, 1] - b[:, 0]
    wrong_u, right_u = (y == 1) & ~flagged, (y == 0) & ~flagged
    print(f"anchored views {len(y)}: wrong {int(y.sum())}, unflagged wrong {int(wrong_u.sum())}, unflagged right "
          f"{int(right_u.sum())} (whole views {int((right_u & whole_a).sum())})")  # fmt: skip
    for share in (0.02, 0.04, 0.06, 0.08, 0.10):
        tau = float(np.quantile(score[right_u], 1 - share))
        hit = score > tau
        print(
            f"  flag the top {100 * share:.0f} % of unflagged right: catches {int((hit & wrong_u).sum())} of "
            f"{int(wrong_u.sum())} unflagged wrong; whole views flagged {int((hit & right_u & whole_a).sum())}"
        )
    head = fit_head(x, y, 2, 0.03)
    names = list(RELIABILITY_FEATURES) + (["zoom 0.85 disagrees"] if extra_tta else [])
    coef = head.coef[:, 1] - head.coef[:, 0]
    print("  coefficients (standardised):", ", ".join(f"{n} {c:+.2f}" for n, c in zip(names, coef)))


# --- S1 patch classifier ---------------------------------------------------------------------------------------------
def sacrum_cv(recs: list[dict[str, Any]], epochs: int, folds: int = 5) -> None:
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    X, Y, F, R, J = [], [], [], [], []
    for ri, r in enumerate(recs):
        for j, p in r["patches"]:
            if r["truth"][j] >= 0:
                X.append(p)
                Y.append(float(r["truth"][j] == S1_ORDINAL))
                F.append(_fold(r["group"], folds))
                R.append(ri)
                J.append(j)
    x, y, f = np.stack(X).astype(np.float32), np.array(Y, np.float32), np.array(F)
    print(f"{len(x)} patches, {y.mean():.1%} S1")

    def net() -> Any:
        def blk(a: int, b: int) -> list[Any]:
            return [torch.nn.Conv2d(a, b, 3, padding=1, bias=False), torch.nn.BatchNorm2d(b), torch.nn.ReLU()]

        nn = torch.nn
        return nn.Sequential(
            nn.AvgPool2d(2), *blk(1, 16), nn.MaxPool2d(2), *blk(16, 32), nn.MaxPool2d(2), *blk(32, 48),
            nn.MaxPool2d(2), *blk(48, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, 1),
        )  # fmt: skip

    def augment(b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        b = b.copy()
        for i in range(len(b)):
            b[i] = np.roll(b[i], tuple(rng.integers(-6, 7, 2)), (0, 1))
            b[i] = np.clip(b[i], 0, 1) ** np.exp(rng.normal(0, 0.25))
            if rng.random() < 0.25:  # an image edge through the patch
                c = int(rng.integers(40, PATCH))
                if rng.random() < 0.5:
                    b[i, c:] = 0
                else:
                    b[i, : PATCH - c] = 0
        return b

    oof = np.full(len(x), np.nan)
    for k in range(folds):
        tr, te = np.nonzero(f != k)[0], np.nonzero(f == k)[0]
        rng = np.random.default_rng(k)
        m = net()
        opt = torch.optim.AdamW(m.parameters(), 2e-3, weight_decay=1e-4)
        steps = epochs * (len(tr) // 64)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
        pos = float(y[tr].mean())
        loss_f = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((1 - pos) / pos))
        m.train()
        for _ in range(steps):
            b = rng.choice(tr, 64)
            loss = loss_f(m(torch.from_numpy(augment(x[b], rng))[:, None])[:, 0], torch.from_numpy(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        m.eval()
        with torch.no_grad():
            oof[te] = torch.sigmoid(m(torch.from_numpy(x[te])[:, None])[:, 0]).numpy()
        print(f"fold {k + 1}/{folds}: accuracy {((oof[te] > 0.5) == (y[te] > 0.5)).mean():.3f}", file=sys.stderr)
    truth = np.array([recs[r]["truth"][j] for r, j in zip(R, J)])
    for lv in (22, 23, 24, S1_ORDINAL, BELOW_S1):
        sel = truth == lv
        name = Level.from_ordinal(lv).value if lv <= S1_ORDINAL else "below S1"
        print(f"  {name:9s} {int(sel.sum()):5d} patches: out-of-fold P(S1) > 0.5 for {(oof[sel] > 0.5).mean():.1%}")
    prob: dict[int, dict[int, float]] = defaultdict(dict)
    for r, j, p in zip(R, J, oof):
        prob[int(r)][int(j)] = float(p)
    _judge(recs, prob)


def _judge(recs: list[dict[str, Any]], prob: dict[int, dict[int, float]]) -> None:
    """The classifier as the anchor's judge (its candidates must read P(S1) ≥ tau) and as a flag (P < tau)."""
    for tau in (None, 0.3, 0.5, 0.7):
        right = anchored = 0
        for ri, r in enumerate(recs):
            ords, ok = _anchor_with(r, prob[ri], tau)
            right += _right(ords, r["truth"])
            anchored += ok
        name = "shipped anchor" if tau is None else f"anchor needs P(S1) ≥ {tau}"
        print(f"  {name:26s} every label right {right}/{len(recs)} ({right / len(recs):.1%}), anchored {anchored}")
    for tau in (0.05, 0.1, 0.2):
        caught = inflated = 0
        for ri, r in enumerate(recs):
            lab = label_sequence(r["preds"], r["weights"], r["cents"])
            if lab.s1 is None or prob[ri].get(lab.s1, 1.0) >= tau:
                continue
            ok = _right(lab.ordinals, r["truth"])
            caught += (not ok) and not r["flagged"]
            inflated += ok and not r["flagged"]
        print(f"  flag P(S1) < {tau}: catches {caught} unflagged wrong views, flags {inflated} unflagged right views")


def _anchor_with(r: dict[str, Any], prob: dict[int, float], tau: float | None) -> tuple[np.ndarray, bool]:
    p, w, c = r["preds"], r["weights"], r["cents"]
    if tau is None:
        lab = label_sequence(p, w, c)
        return lab.ordinals, lab.s1 is not None
    n, index = len(p), sequence_index(c, p)
    d = np.linalg.norm(np.diff(c, axis=0), axis=1)
    med = float(np.median(d)) if len(d) else 0.0
    best: tuple[float, int] | None = None
    for j in range(n - 1, max(0, n - 5), -1):
        if j < 1 or p[j] < 22.5 or index[j] - index[j - 1] != 1 or d[j - 1] > 1.6 * max(med, 1e-6):
            continue
        fit = fit_labels(p[:j], w[:j] * 0.6 ** (index[j - 1] - index[:j]).astype(float), index[:j])
        if int(fit.ordinals[-1]) == S1_ORDINAL - 1 and prob.get(j, 0.0) >= tau and (best is None or fit.cost < best[0]):
            best = (fit.cost, j)
    ords = np.zeros(n, np.int64)
    if best is None:
        fit = fit_labels(p, w, index)
        keep = (fit.ordinals >= MIN_ORDINAL) & (fit.ordinals <= S1_ORDINAL)
        ords[keep] = fit.ordinals[keep]
        return ords, False
    j = best[1]
    ords[: j + 1] = S1_ORDINAL - (index[j] - index[: j + 1])
    ords[ords < MIN_ORDINAL] = 0
    return ords, True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--data", type=Path, required=True)
    c.add_argument("--split", default="train")
    c.add_argument("--crops", type=int, default=10)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--tta", nargs="*", default=[], choices=sorted(TTA), help="also run each view zoomed / gamma'd")
    r = sub.add_parser("report")
    r.add_argument("collection", type=Path)
    t = sub.add_parser("tta")
    t.add_argument("collection", type=Path)
    rl = sub.add_parser("reliability")
    rl.add_argument("collection", type=Path)
    rl.add_argument("--with-tta", action="store_true", help="add the zoom 0.85 disagreement (needs collect --tta)")
    s = sub.add_parser("sacrum-cv")
    s.add_argument("collection", type=Path)
    s.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args(argv)
    if args.cmd == "collect":
        recs = collect(args.data, args.split, args.crops, args.seed, tuple(args.tta))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("wb") as f:
            pickle.dump(recs, f)
        print(f"{len(recs)} views → {args.out}")
        return 0
    with args.collection.open("rb") as f:
        recs = pickle.load(f)
    if args.cmd == "report":
        for part in (bias, calibration, anchor, alternative, flags):
            part(recs)
            print()
    elif args.cmd == "tta":
        tta(recs)
    elif args.cmd == "reliability":
        reliability(recs, args.with_tta)
    else:
        sacrum_cv(recs, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
