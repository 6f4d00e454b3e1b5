"""How well the midline check tells a single sagittal slice cut off the middle of the spine
(``openspine.recognition.midline``), read as the analysis reads it (one slice, its own affine, ``Scan.to_sagittal``).

For every FastCleverSeg volume of the split, one-slice scans are cut every ``--step`` mm from its midline (the median
left–right position of its labelled bodies, from the mask) out to ±30 mm: at the midline (≤ 5 mm), in between, and
off it (≥ 14 mm; 18–24 mm is where the pedicles and foramina are cut). Every SPIDER mid-sagittal slice of the split
(T2 and T1) is read as stored and in presentations a picture may come in: mirrored front to back, cropped, 8-bit,
gamma 0.6 / 1.6, on a black canvas twice its size, as a screenshot (in a corner of a black canvas, with text), and
under a surface coil's shading (front to back, head to feet: :func:`shadings`).
Each call at or above ``p`` is off the midline; on a SPIDER slice it is a false alarm (its grades would be withheld).

    python scripts/midline_survey.py --data ../shared/data --split val
    python scripts/midline_survey.py --data ../shared/data --split val --model runs/midline --step 1
    python scripts/midline_survey.py --data ../shared/data --split val --card   # into the built-in card's metrics
    python scripts/midline_survey.py --data ../shared/data --split train --scales   # as for an estimated pixel size

``--scales`` reads every slice as the analysis reads a picture whose pixel size is estimated (``--pixel-spacing
auto``): at its size and 1.15 times smaller and larger (``openspine.scope.ESTIMATE_SCALES``), the calls averaged.
``--size-error F`` first gives every slice a pixel size F times its true one, as an estimate off by that much would:

    python scripts/midline_survey.py --data ../shared/data --split val --size-error 1.12 [--scales]

The model is trained on the train split: score it on val.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np

from openspine.evaluation import detection as ev
from openspine.io import load_scan
from openspine.recognition.midline import AT_MM, OFF_MM, _at_scale, off_midline_probability
from openspine.scan import SagittalView, Scan
from openspine.scope import ESTIMATE_SCALES

THRESHOLDS = (0.5, 0.7, 0.9)
SHIPPED = 0.5  # openspine.scope.OFF_MIDLINE_PROBABILITY
SCALES: tuple[float, ...] = (1.0,)  # ESTIMATE_SCALES with --scales
SIZE_ERROR = 1.0  # --size-error: each slice read as if its pixels were this many times their true size


def _probability(view: SagittalView, model: str | None) -> float:
    return off_midline_probability(_at_scale(view, SIZE_ERROR), model, scales=SCALES)


def _rows(data: Path, split: str) -> tuple[list[dict[str, str]], list[tuple[str, Path]]]:
    with open(data / "index.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    volumes = [r for r in rows if r["dataset"] == "fastcleverseg"]
    slices = [(r["id"], data / r["path"] / r["image"]) for r in rows if r["dataset"] == "spider"]
    t1 = data / "spider" / "t1.csv"
    if t1.is_file():
        with open(t1, newline="") as f:
            slices += [(r["id"], data / r["path"] / r["image"]) for r in csv.DictReader(f) if r["split"] == split]
    return volumes, slices


def _lr_axis(affine: Any) -> int:
    return int(np.argmax(np.abs(np.asarray(affine)[0, :3])))  # the stored axis that runs left–right (RAS x)


def volume_offsets(row: dict[str, str], data: Path, step: float, model: str | None) -> list[tuple[float, float]]:
    """(distance from the midline in mm, probability off the midline) of one-slice cuts of a volume."""
    import nibabel as nib

    folder = data / row["path"]
    scan = load_scan(folder / row["image"])
    mask = np.asarray(nib.load(str(folder / row["mask"])).dataobj)
    arr, aff = np.asarray(scan.array), np.asarray(scan.affine, float)
    ax = _lr_axis(aff)
    centres = [float(np.median(np.nonzero(mask == v)[ax])) for v in np.unique(mask) if v]
    mid = float(np.median(centres))
    mm = float(np.linalg.norm(aff[:3, ax]))
    out = []
    for d in np.arange(-30.0, 30.0 + 1e-6, step):
        k = round(mid + d / mm)
        if not 0 <= k < arr.shape[ax]:
            continue
        one, aff1 = ev.crop_axis(arr, aff, ax, k, k + 1)
        out.append((float(d), _probability(Scan(one, aff1).to_sagittal(), model)))
    return out


def presentations(arr: Any) -> dict[str, Any]:
    """A 2D slice (rows, cols) as a picture may come: as stored, mirrored, cropped, 8-bit, gamma, on a canvas."""
    a = np.asarray(arr, dtype=np.float32)
    lo, hi = np.percentile(a, [0.5, 99.5])
    u = np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1)
    h, w = a.shape
    canvas = np.zeros((2 * h, 2 * w), np.float32)
    canvas[h // 2 : h // 2 + h, w // 2 : w // 2 + w] = u
    return {"screenshot": screenshot(u)} | {
        "as stored": a,
        "mirrored": a[:, ::-1],
        "cropped": a[h // 6 : h - h // 6, w // 8 : w - w // 8],
        "8-bit": np.round(u * 255),
        "gamma 0.6": u**0.6,
        "gamma 1.6": u**1.6,
        "canvas": canvas,
    }


def screenshot(u: Any) -> Any:
    """A slice (values 0-1) in the lower right of a black canvas 1.6 × 1.3 its size, with a viewer's white text in the
    upper left corner."""
    from PIL import Image, ImageDraw

    h, w = u.shape
    canvas = Image.new("L", (int(w * 1.6), int(h * 1.3)), 0)
    canvas.paste(Image.fromarray(np.round(u * 255).astype(np.uint8)), (canvas.width - w, canvas.height - h))
    ImageDraw.Draw(canvas).text((5, 5), "Se: 4  Im: 8/15\nSAG T2\nW 1200 L 600", fill=255)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def slice_probabilities(path: Path, model: str | None) -> dict[str, float]:
    scan = load_scan(path)
    arr = np.asarray(scan.array)
    ax = _lr_axis(scan.affine)
    if arr.shape[ax] != 1:
        raise SystemExit(f"{path}: expected one sagittal slice, got shape {arr.shape}")
    out = {}
    for name, img in presentations(np.take(arr, 0, axis=ax)).items():
        stored = np.expand_dims(np.ascontiguousarray(img), ax)
        aff = np.asarray(scan.affine, float)
        out[name] = _probability(Scan(stored, aff).to_sagittal(), model)
    view = scan.to_sagittal().scan  # rows head → feet, columns front → back: where a coil's shading falls
    for name, gain in shadings(view.array.shape[:2]).items():
        shaded = np.asarray(view.array, np.float32) * gain[:, :, None]
        out[name] = _probability(Scan(shaded, view.affine).to_sagittal(), model)
    return out


def shadings(shape: tuple[int, ...]) -> dict[str, Any]:
    """Gains of a surface coil's shading over a (rows head → feet, columns front → back) slice: a spine array's
    fall-off from 1 at the back to 0.25 at the front (exponential), and coil elements over the upper spine only, 1
    at the top to 0.3 at the bottom (linear)."""
    h, w = shape
    front_back = np.broadcast_to((0.25 ** (1 - np.arange(w) / max(w - 1, 1)))[None, :], (h, w))
    head_feet = np.broadcast_to((1 - 0.7 * np.arange(h) / max(h - 1, 1))[:, None], (h, w))
    return {"shaded A-P": front_back.astype(np.float32), "shaded S-I": head_feet.astype(np.float32)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--model", default=None, help="a midline model folder (default: the built-in one)")
    p.add_argument("--step", type=float, default=3.0, help="mm between the cuts of a volume")
    p.add_argument("--card", action="store_true", help="write the figures at the shipped threshold into the model's "
                   "card.json (val split only)")  # fmt: skip
    p.add_argument("--scales", action="store_true", help="read each slice as for an estimated pixel size: at it and "
                   "1.15 times smaller and larger, the calls averaged")  # fmt: skip
    p.add_argument("--size-error", type=float, default=1.0, help="read each slice as if its pixels were this many "
                   "times their true size (an estimate's error, e.g. 1.12)")  # fmt: skip
    args = p.parse_args(argv)
    global SCALES, SIZE_ERROR
    SCALES, SIZE_ERROR = (ESTIMATE_SCALES if args.scales else (1.0,)), args.size_error
    if args.card and args.split != "val":
        raise SystemExit("--card writes val figures only: use --split val")
    volumes, slices = _rows(args.data, args.split)
    print(f"midline check on split '{args.split}' (model: {args.model or 'built-in'}); a call is p >= threshold\n")
    bands = {
        "at (<= 5 mm)": (0, AT_MM),
        "between": (AT_MM, OFF_MM),
        "off (>= 14 mm)": (OFF_MM, 99),
        "18-24 mm": (18, 24),
    }
    calls: dict[str, list[float]] = {b: [] for b in bands}
    for row in volumes:
        res = volume_offsets(row, args.data, args.step, args.model)
        print(f"{row['id']:<12} " + " ".join(f"{d:+.0f}:{q:.2f}" for d, q in res))
        for d, q in res:
            for b, (lo, hi) in bands.items():
                if lo <= abs(d) <= hi and not (b == "between" and abs(d) in (AT_MM, OFF_MM)):
                    calls[b].append(q)
    print("\nvolume cuts called off the midline, by distance (share at each threshold)")
    for b, qs in calls.items():
        q = np.asarray(qs)
        shares = ", ".join(f"{(q >= t).sum()}/{len(q)}" for t in THRESHOLDS)
        print(f"  {b:<16} {shares}   (thresholds {', '.join(map(str, THRESHOLDS))})")
    metrics: dict[str, Any] = {
        "split": args.split,
        "threshold": SHIPPED,
        "command": "python scripts/midline_survey.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "volumes": [r["id"] for r in volumes],
        "volume_cuts_called_off": {b: f"{(np.asarray(q) >= SHIPPED).sum()}/{len(q)}" for b, q in calls.items()},
    }
    per: dict[str, list[float]] = {}
    worst: list[tuple[float, str, str]] = []
    for item, path in slices:
        for name, q in slice_probabilities(path, args.model).items():
            per.setdefault(name, []).append(q)
            worst.append((q, item, name))
    print(f"\nSPIDER mid-sagittal slices ({len(slices)}, T2 and T1): false alarms at each threshold")
    for name, qs in per.items():
        q = np.asarray(qs)
        shares = ", ".join(f"{(q >= t).sum()}/{len(q)}" for t in THRESHOLDS)
        print(f"  {name:<10} {shares}   highest {q.max():.3f}")
    print("  highest: " + ", ".join(f"{i} {n} {q:.2f}" for q, i, n in sorted(worst, reverse=True)[:6]))
    metrics["spider_slices_false_alarms"] = {n: f"{(np.asarray(q) >= SHIPPED).sum()}/{len(q)}" for n, q in per.items()}
    if args.card:
        write_card_metrics(Path(args.model) if args.model else None, metrics)
    return 0


def write_card_metrics(model: Path | None, metrics: dict[str, Any]) -> None:
    """The survey's val figures as the ``metrics`` of the model folder's card (the weights are unchanged)."""
    import json

    from openspine.models.registry import builtin_model_dir

    card_path = (model or builtin_model_dir("midline")) / "card.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["metrics"] = {**metrics, "note": "see docs/grading.md (Limits)"}
    card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"metrics written to {card_path}")


if __name__ == "__main__":
    sys.exit(main())
