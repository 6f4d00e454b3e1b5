"""How well the orientation check tells an image stored the wrong way round (``openspine.recognition.orientation``).

``collect`` runs, for every item of a split — SPIDER T2 and T1 slices, FastCleverSeg volumes, SCT volumes —

* the item as stored and in the presentations of ``openspine evaluate detection`` (mirrored storage with the
  affine updated, and ``--crops`` random crops of the field of view): all the right way round;
* the item stored turned each way of ``TURNS`` (upside down, reversed front to back, by 180°, by a quarter turn,
  transposed) with the header left as it was (a wrong header, or a picture shown the other way round);

* the item with its header naming the wrong axes (``--axes``: each other order of the affine's three columns; the
  view the analysis then takes as sagittal is an axial or coronal one, or the sagittal one transposed), analysed
  end to end with and without the plane check (``openspine.scope.plane_conflict``);

and keeps whether the detector's labelling as stored is sure, the orientation recogniser's probabilities and the
image recogniser's plane probabilities.
``report`` scores the check as the analysis makes it (a turn read with at least ``p`` where the labelling is unsure;
``p`` = 0.9 ships) and the recogniser alone: every call on a view the right way round is a false alarm, a call that
names the turn on a turned view is a catch, a call naming another turn still refuses a turned view. The plane check
is scored the same way (another plane read with at least ``p`` where the labelling is unsure; 0.5 ships), and the
views with wrong header axes by what the analysis does with them.

    python scripts/orientation_survey.py collect --data ../shared/data --split val --out runs/orientation-val.pkl
    python scripts/orientation_survey.py report runs/orientation-val.pkl

The recogniser is trained on the train split: score it on val. Items whose source picture is itself stored the wrong
way round are counted apart (``--misstored``; default spider-57, whose T2 and T1 slices show the sacrum at the top).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import pickle
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import openspine
from openspine import scope
from openspine.detection import BUILTIN_MODEL, detect
from openspine.detection.orientation import TURNS, sure_labelling, turn_to_look
from openspine.errors import OpenSpineError
from openspine.evaluation import detection as ev
from openspine.io import load_scan
from openspine.models import load_model
from openspine.recognition import recognise
from openspine.recognition.orientation import RIGHT_WAY_ROUND, read_orientation
from openspine.scan import Scan
from openspine.scope import labels_in_scope

MISSTORED = ("spider-57",)


def _items(data: Path, split: str) -> list[tuple[str, str, Path]]:
    """(item, source, image path) of the split."""
    with (data / "index.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    out = [(r["id"], r["dataset"], data / r["path"] / r["image"].split(";")[0]) for r in rows]
    out += [(r["id"], "spider-t1", data / r["path"] / r["image"]) for r in ev.spider_t1_rows(data, split)]
    return out


def _record(scan: Scan, model: str | None) -> dict[str, Any]:
    """As the analysis gates it: the labels the detector's scope leaves (none on a cervical image) must be sure."""
    view = scan.to_sagittal()
    detection = detect(view)
    card = load_model(BUILTIN_MODEL).card.data
    seen = recognise(view)
    vertebrae, _, _, _ = labels_in_scope(detection.vertebrae, detection.discs, card, seen.cervical_probability)
    sure = sure_labelling(replace(detection, vertebrae=tuple(vertebrae)))
    # the same without the flag of a spine leaving the slab at its side, which says nothing of which way round it lies
    inside = tuple(f for f in detection.flags if not f.startswith("vertebra_at_volume_side"))
    sure_inside = sure_labelling(replace(detection, vertebrae=tuple(vertebrae), flags=inside))
    return {"sure": sure, "sure_inside": sure_inside, "reading": read_orientation(view, model).probabilities,
            "plane": seen.plane_probabilities}  # fmt: skip


def _plane_of_axis(affine: np.ndarray, axis: int) -> str:
    """The plane of the cuts across voxel ``axis`` of a scan with this (true) affine."""
    return ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(affine[:3, axis])))]


def _analysed(scan: Scan) -> dict[str, Any]:
    """What ``openspine.analyze`` makes of a scan: refused (and why) or how much it labelled and graded."""
    try:
        r = openspine.analyze(scan)
    except OpenSpineError as exc:
        return {"refused": f"{type(exc).__name__}: {exc}", "labelled": 0, "graded": 0}
    graded = sum(any(g.available for g in d.grades.values()) for d in r.discs)
    return {
        "refused": r.out_of_scope or "",
        "labelled": sum(v.label is not None for v in r.vertebrae),
        "graded": graded,
    }


def _wrong_axes(scan: Scan, item: str, source: str) -> list[dict[str, Any]]:
    """The scan under each header that assigns its affine's columns to the wrong voxel axes, analysed with the plane
    check and without it (its probability bar set out of reach)."""
    recs = []
    arr = np.asarray(scan.array)
    for order in itertools.permutations(range(3)):
        if order == (0, 1, 2):
            continue
        aff = scan.affine.copy()
        aff[:3, :3] = scan.affine[:3, list(order)]
        wrong = Scan(arr, aff)
        slice_axis = int(np.argmax(np.abs(aff[0, :3])))  # the axis the wrong header makes left-right
        shows = _plane_of_axis(scan.affine, slice_axis)
        try:
            planes = dict(recognise(wrong.to_sagittal()).plane_probabilities)
        except OpenSpineError:
            planes = {}
        with_check = _analysed(wrong)
        bar, scope.MIN_PLANE_CONFLICT_PROBABILITY = scope.MIN_PLANE_CONFLICT_PROBABILITY, 2.0
        try:
            without = _analysed(wrong)
        finally:
            scope.MIN_PLANE_CONFLICT_PROBABILITY = bar
        recs.append({"id": item, "source": source, "variant": "axes " + "".join(map(str, order)), "truth": "axes",
                     "shows": shows, "plane": planes, "with_check": with_check, "without_check": without})  # fmt: skip
    return recs


def collect(data: Path, split: str, crops: int, seed: int, model: str | None, axes: bool) -> list[dict[str, Any]]:
    recs: list[dict[str, Any]] = []
    for k, (item, source, path) in enumerate(_items(data, split)):
        scan = load_scan(path)
        arr = np.asarray(scan.array)
        view = scan.to_sagittal()
        det = detect(view)
        ax, sup_low = ev.si_axis(scan.affine)
        ext = []
        for v in det.vertebrae:
            rows = [c[ax] for o in v.outlines for c in o.corners_voxel]
            if rows:
                ext.append((max(0, int(np.floor(min(rows)))), min(arr.shape[ax] - 1, int(np.ceil(max(rows))))))
        variants = ev.make_variants(ext, arr.shape[ax], sup_low, crops, ev._rng_for(seed, item))
        for var in variants if ext else variants[:2]:
            (img,), aff = ev.apply_variant([arr], scan.affine, var)
            rec = _record(Scan(img, aff), model)
            recs.append({"id": item, "source": source, "variant": var.name, "truth": None, **rec})
        internal = np.asarray(view.scan.array)
        for name, undo in TURNS:
            stored = Scan(np.ascontiguousarray(turn_to_look(undo)(internal)), view.scan.affine, view.scan.source)
            recs.append({"id": item, "source": source, "variant": "as-is", "truth": name, **_record(stored, model)})
        recs.extend(_wrong_axes(scan, item, source) if axes else [])
        print(f"{k + 1} {item}: {len(recs)} views", file=sys.stderr)
    return recs


def report(recs: list[dict[str, Any]], misstored: tuple[str, ...], gated: bool) -> None:
    """Calls at several probability thresholds (``gated``: only where the labelling as stored is unsure)."""
    print(f"orientation check{', where the labelling is unsure (as shipped)' if gated else ', recogniser alone'}:")
    for p in (0.5, 0.8, 0.9, 0.95, 0.99):
        tab: Counter[str] = Counter()
        by_source: Counter[tuple[str, bool]] = Counter()  # turned views of each source, and caught ones
        for r in recs:
            if r["truth"] == "axes":
                continue
            probs = r["reading"]
            best = max(probs, key=lambda k: probs[k])
            called = best if best != RIGHT_WAY_ROUND and probs[best] >= p and not (gated and r["sure"]) else None
            if r["id"].removesuffix("-t1") in misstored:
                tab["mis-stored views"] += 1
                tab["mis-stored, refused"] += called is not None
            elif r["truth"] is None:
                whole = r["variant"] in ("as-is", "mirrored")
                tab["right way round"] += 1
                tab["false alarms"] += called is not None
                tab["of them whole views"] += called is not None and whole
            else:
                tab["turned"] += 1
                tab["caught"] += called == r["truth"]
                tab["refused, another turn named"] += called is not None and called != r["truth"]
                by_source[(r["source"], False)] += 1
                by_source[(r["source"], True)] += called == r["truth"]
        print(f"  p ≥ {p:.2f}: " + ", ".join(f"{k} {v}" for k, v in tab.items()))
        sources = sorted({src for src, _ in by_source})
        print("    turned views caught, by source: " + ", ".join(
            f"{src} {by_source[(src, True)]}/{by_source[(src, False)]}" for src in sources))  # fmt: skip


def report_side_gate(recs: list[dict[str, Any]], misstored: tuple[str, ...]) -> None:
    """The check at the shipped bar with the labelling judged sure also where its only labelling flag is
    ``vertebra_at_volume_side`` (a spine leaving the slab at its side, which says nothing of which way round it lies;
    tried against a false refusal of an off-centre, tilted volume): what it would spare and what it would let pass."""
    bar = scope.MIN_TURN_PROBABILITY
    tab: Counter[str] = Counter()
    for r in recs:
        if r["truth"] == "axes" or r["id"].removesuffix("-t1") in misstored:
            continue
        probs = r["reading"]
        best = max(probs, key=lambda k: probs[k])
        for gate in ("sure", "sure_inside"):
            called = best != RIGHT_WAY_ROUND and probs[best] >= bar and not r[gate]
            tab[f"{gate}: {'false alarms' if r['truth'] is None else 'turned views caught'}"] += called
    print(f"orientation check at p ≥ {bar}, the side flag not counted against a sure labelling: " + ", ".join(
        f"{k} {v}" for k, v in sorted(tab.items())))  # fmt: skip


def report_planes(recs: list[dict[str, Any]], misstored: tuple[str, ...]) -> None:
    """The plane check at several bars (another plane read where the labelling is unsure; where it is sure, the
    shipped bar for sure labellings), on the views that are sagittal and stored with their true header; then the
    views with wrong header axes as the analysis treats them."""
    sure_bar = scope.MIN_PLANE_CONFLICT_PROBABILITY_SURE
    print(f"plane check (another plane read: where the labelling is unsure with p, where it is sure with "
          f"{sure_bar}), views with their true header:")  # fmt: skip
    right = [r for r in recs if r["truth"] is None and r["id"].removesuffix("-t1") not in misstored]
    turned = [r for r in recs if r["truth"] not in (None, "axes") and r["id"].removesuffix("-t1") not in misstored]
    top = max((max(v for k, v in r["plane"].items() if k != "sagittal") for r in right), default=0.0)
    print(f"  highest probability of another plane on a view the right way round: {top:.2f}")
    for p in (0.3, 0.5, 0.75, 0.9):

        def fires(r: dict[str, Any], p: float = p) -> bool:
            best = max(r["plane"], key=lambda k: r["plane"][k])
            return best != "sagittal" and r["plane"][best] >= (sure_bar if r["sure"] else p)

        alarms = [r for r in right if fires(r)]
        whole = sum(r["variant"] in ("as-is", "mirrored") for r in alarms)
        print(f"  p ≥ {p:.2f}: right way round {len(right)}, refused {len(alarms)} ({whole} whole views); "
              f"turned in plane {len(turned)}, refused {sum(fires(r) for r in turned)}")  # fmt: skip
    axes = [r for r in recs if r["truth"] == "axes"]
    if not axes:
        return
    print("header naming the wrong axes (openspine.analyze with the plane check as shipped / without it):")
    for shows in ("sagittal", "coronal", "axial"):
        rs = [r for r in axes if r["shows"] == shows]
        if not rs:
            continue
        line = []
        for key in ("with_check", "without_check"):
            refused = sum(bool(r[key]["refused"]) for r in rs)
            graded = sum(r[key]["graded"] > 0 for r in rs)
            labelled = sum(r[key]["labelled"] > 0 and not r[key]["refused"] for r in rs)
            line.append(f"refused {refused}, labelled {labelled}, graded {graded}")
        print(f"  view shows {shows:8s} ({len(rs)} views): with {line[0]}; without {line[1]}")
    for r in axes:
        if r["with_check"]["graded"] and r["shows"] != "sagittal":
            print(f"    graded: {r['id']} {r['variant']} (shows {r['shows']}, plane read {r['plane']})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--data", type=Path, required=True)
    c.add_argument("--split", default="val")
    c.add_argument("--crops", type=int, default=6)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--model", default=None, help="orientation model folder (default: the built-in one)")
    c.add_argument("--axes", action="store_true", help="also each item under headers naming the wrong axes")
    r = sub.add_parser("report")
    r.add_argument("collection", type=Path)
    r.add_argument("--misstored", nargs="*", default=list(MISSTORED))
    args = ap.parse_args(argv)
    if args.cmd == "collect":
        recs = collect(args.data, args.split, args.crops, args.seed, args.model, args.axes)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("wb") as f:
            pickle.dump(recs, f)
        print(f"{len(recs)} views → {args.out}")
        return 0
    with args.collection.open("rb") as f:
        recs = pickle.load(f)
    for gated in (True, False):
        report(recs, tuple(args.misstored), gated)
    if all("sure_inside" in r for r in recs):
        report_side_gate(recs, tuple(args.misstored))
    if all("plane" in r for r in recs):  # a collection from before the plane was kept has none
        report_planes(recs, tuple(args.misstored))
    return 0


if __name__ == "__main__":
    sys.exit(main())
