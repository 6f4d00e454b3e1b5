"""How well ``--pixel-spacing auto`` reads a picture's pixel size from its anatomy (:mod:`openspine.detection.scale`).

Every SPIDER T2 and T1 picture of the split (``spider/<patient>/image.png``, ``t1.png``; the true pixel size is in
their metadata) is read as if its pixel size were unknown. Per picture it records the estimate against the true
size, and the analysis (detection, labelling, grading) at the estimate against the analysis at the true size:
lumbar disc sequence L1-L2 … L5-S1 complete, the same labels (as lists, and body by body: a spine labelled a level off
from top to bottom has the same list), whether the analysis' size check flags the labels (``labelling_ambiguous: the
labels depend on the estimated pixel size``), and, on T2, the same Pfirrmann grade per disc. Prints
one line per sequence and writes every picture's figures to ``--out``.

``--variants`` also reads every T2 picture changed five ways with the pixel size estimated: saved as JPEG at quality
40, shrunk to 300 rows, framed by a 100-pixel black border, with burned-in text and a white bar, and mirrored (the
front of the body on the right): the L1-L2 … L5-S1 sequence complete and the pixel size error (of the shrunk
picture: against its own, larger, pixel size).

``--planes`` also cuts every volume of the split in the three planes (the pictures of ``openspine evaluate
recognition``) and analyses each cut at its true pixel size and with the pixel size estimated: how many axial and
coronal cuts are refused (exit status 3: not sagittal, or no vertebral body), and how many sagittal ones get labels.

    python scripts/pixel_size_survey.py --data ../shared/data --split val --out runs/pixel-size-val.json \
        --variants --planes
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageOps

import openspine
from openspine.analysis import (
    LABELS_DEPEND_ON_SIZE,
    UNSCALED,
    bodies_labelled_otherwise,
    picture_with_pixel_size,
)
from openspine.detection.scale import with_pixel_size
from openspine.evaluation.detection import spider_sequence_ok
from openspine.evaluation.recognition import split_pictures
from openspine.io.image2d import picture_affine
from openspine.scan import Scan, ScanSource


def _pictures(data: Path, split: str) -> list[tuple[str, Path, float]]:
    items = []
    with (data / "index.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            if r["dataset"] == "spider" and r["split"] == split:
                meta = json.loads((data / r["path"] / "meta.json").read_text())
                items.append((r["id"], data / r["path"] / "image.png", float(meta["pixel_spacing_mm"][0])))
    with (data / "spider" / "t1.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            if r["split"] == split:
                items.append((r["id"], data / r["path"] / r["png"], float(r["pixel_spacing_mm"].split(";")[0])))
    return items


def _pfirrmann(result: Any) -> dict[str, Any]:
    return {
        d.level.value: d.grades["pfirrmann"].grade
        for d in result.discs
        if d.level is not None and "pfirrmann" in d.grades and d.grades["pfirrmann"].available
    }


def survey(data: Path, split: str) -> list[dict[str, Any]]:
    rows = []
    for item, png, true in _pictures(data, split):
        t = time.perf_counter()
        scan, flag = picture_with_pixel_size(openspine.load_scan(png, pixel_spacing=(1.0, 1.0)))
        seconds = time.perf_counter() - t
        estimated = scan.spacing[0]
        at_estimate = openspine.analyze(png, pixel_spacing="auto")  # as the analysis reads it, with its checks
        at_truth = openspine.analyze(png, pixel_spacing=(true, true))
        labels = [[v.label.value for v in r.vertebrae if v.label] for r in (at_estimate, at_truth)]
        grades = [_pfirrmann(r) for r in (at_estimate, at_truth)]
        both = set(grades[0]) & set(grades[1])
        rows.append(
            {
                "id": item,
                "sequence": "T1" if item.endswith("-t1") else "T2",
                "true_mm": true,
                "estimated_mm": round(float(estimated), 4),
                "seconds": round(seconds, 3),
                "no_column": bool(flag and flag.startswith(UNSCALED)),
                "complete_at_estimate": spider_sequence_ok(at_estimate),
                "complete_at_truth": spider_sequence_ok(at_truth),
                "same_labels": labels[0] == labels[1],
                "same_body_labels": not bodies_labelled_otherwise(at_estimate.vertebrae, at_truth.vertebrae, true),
                "size_check_flag": any(f.startswith(LABELS_DEPEND_ON_SIZE) for f in at_estimate.flags),
                "pfirrmann_discs_both": len(both),
                "pfirrmann_same": sum(grades[0][k] == grades[1][k] for k in both),
            }
        )
        print(f"{item}: {true:.3f} mm, estimated {estimated:.3f} mm", file=sys.stderr)
    return rows


def summary(rows: list[dict[str, Any]], sequence: str) -> str:
    r = [x for x in rows if x["sequence"] == sequence]
    if not r:
        return f"{sequence}: no pictures"
    log_err = np.array([np.log(x["estimated_mm"] / x["true_mm"]) for x in r])
    err = np.exp(np.abs(log_err)) - 1
    complete = sum(x["complete_at_estimate"] for x in r), sum(x["complete_at_truth"] for x in r)
    seconds = float(np.median([x["seconds"] for x in r]))
    text = (
        f"{sequence}: {len(r)} pictures; pixel size error median {np.median(err) * 100:.1f} %, 90th percentile "
        f"{np.percentile(err, 90) * 100:.1f} %, largest {err.max() * 100:.0f} %, "
        f"mean bias {np.mean(log_err) * 100:+.1f} %, within 20 %: {np.mean(err < 0.2) * 100:.1f} %; "
        f"L1-L2 … L5-S1 complete at the estimate {complete[0]}/{len(r)} (true size {complete[1]}), "
        f"same labels {sum(x['same_labels'] for x in r)}/{len(r)}; estimate median {seconds:.2f} s"
    )
    otherwise = [x for x in r if not x["same_body_labels"]]
    caught = sum(x["size_check_flag"] for x in otherwise)
    flagged = sum(x["size_check_flag"] for x in r)
    text += (
        f"; a body labelled otherwise than at the true size: {len(otherwise)} "
        f"({', '.join(x['id'] for x in otherwise)}), of them flagged by the size check {caught}; "
        f"the others flagged {flagged - caught}"
    )
    unscaled = [x["id"] for x in r if x.get("no_column")]
    named = f" ({', '.join(unscaled)})" if unscaled else ""
    text += f"; no column of sure bodies at any size (refused): {len(unscaled)}{named}"
    n = sum(x["pfirrmann_discs_both"] for x in r)
    if n:
        text += f"; same Pfirrmann grade on {sum(x['pfirrmann_same'] for x in r)}/{n} discs graded at both"
    return text


def _degraded(im: Image.Image) -> list[tuple[str, Image.Image, float]]:
    """(name, picture, its pixel size relative to the original's)."""
    w, h = im.size
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=40)
    buffer.seek(0)
    framed = Image.new("L", (w + 200, h + 200))
    framed.paste(im, (100, 100))
    text = im.copy()
    draw = ImageDraw.Draw(text)
    draw.text((10, 10), "L-SPINE SAG T2 TSE 3mm  W:1200 L:600", fill=255)
    draw.rectangle((w - 60, h - 200, w - 55, h - 20), fill=255)
    return [
        ("jpeg40", Image.open(buffer).convert("L"), 1.0),
        ("300 rows", im.resize((round(w * 300 / h), 300), Image.Resampling.BILINEAR), h / 300),
        ("black border", framed, 1.0),
        ("burned-in text", text, 1.0),
        ("mirrored (front on the right)", ImageOps.mirror(im), 1.0),
    ]


def variant_survey(data: Path, split: str, work: Path) -> list[dict[str, Any]]:
    rows = []
    for item, png, true in _pictures(data, split):
        if item.endswith("-t1"):
            continue
        for name, picture, factor in _degraded(Image.open(png).convert("L")):
            path = work / "variant.png"
            picture.save(path)
            scan, _ = picture_with_pixel_size(openspine.load_scan(path, pixel_spacing=(1.0, 1.0)))
            result = openspine.analyze(scan)
            err = float(np.exp(abs(np.log(scan.spacing[0] / (true * factor)))) - 1)
            rows.append({"id": item, "variant": name, "complete": spider_sequence_ok(result), "error": round(err, 4)})
        print(f"{item}: variants done", file=sys.stderr)
    return rows


def variant_summary(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for name in dict.fromkeys(r["variant"] for r in rows):
        r = [x for x in rows if x["variant"] == name]
        err = np.array([x["error"] for x in r])
        out.append(
            f"T2 pictures, {name}: L1-L2 … L5-S1 complete {sum(x['complete'] for x in r)}/{len(r)}, pixel size error "
            f"median {np.median(err) * 100:.1f} %, 90th percentile {np.percentile(err, 90) * 100:.1f} %"
        )
    return out


def plane_survey(data: Path, split: str) -> list[dict[str, Any]]:
    rows = []
    for pic in split_pictures(data, split):
        if pic.source != "volume":
            continue
        picture = Scan(pic.image[:, :, None], picture_affine(1.0, 1.0), ScanSource(path=pic.id, format="image"))
        row: dict[str, Any] = {"id": pic.id, "plane": pic.plane}
        for how in ("true", "auto"):
            scan = with_pixel_size(picture, pic.spacing[0])
            if how == "auto":
                scan, _ = picture_with_pixel_size(picture)
            r = openspine.analyze(scan)
            row[f"refused_{how}"] = r.out_of_scope is not None
            row[f"labelled_{how}"] = sum(v.label is not None for v in r.vertebrae)
        rows.append(row)
        print(f"{pic.id}: {row}", file=sys.stderr)
    return rows


def plane_summary(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for plane in ("axial", "coronal", "sagittal"):
        r = [x for x in rows if x["plane"] == plane]
        what = "refused" if plane != "sagittal" else "not refused, with labels"
        count = {
            how: sum(
                x[f"refused_{how}"] if plane != "sagittal" else (not x[f"refused_{how}"] and x[f"labelled_{how}"] > 0)
                for x in r
            )
            for how in ("true", "auto")
        }
        out.append(f"{plane} volume cuts: {len(r)}; {what}: true pixel size {count['true']}, estimated {count['auto']}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--planes", action="store_true", help="also the volume cuts in three planes")
    ap.add_argument("--variants", action="store_true", help="also each T2 picture degraded four ways")
    ap.add_argument("--no-pictures", action="store_true", help="skip the SPIDER pictures (with --planes)")
    args = ap.parse_args(argv)
    rows = [] if args.no_pictures else survey(args.data, args.split)
    with tempfile.TemporaryDirectory() as work:
        variants = variant_survey(args.data, args.split, Path(work)) if args.variants else []
    planes = plane_survey(args.data, args.split) if args.planes else []
    if args.out:
        args.out.write_text(json.dumps({"pictures": rows, "variants": variants, "volume_cuts": planes}, indent=1))
    for seq in ("T2", "T1") if rows else ():
        print(f"{args.split} {summary(rows, seq)}")
    for line in variant_summary(variants) if variants else []:
        print(f"{args.split} {line}")
    for line in plane_summary(planes) if planes else []:
        print(f"{args.split} {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
