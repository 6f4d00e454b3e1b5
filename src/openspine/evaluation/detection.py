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
  in that order from top to bottom.

Bodies of unknown level (VB1) count for detection, false positives and centroid error, not for level accuracy.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._logging import get_logger
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

--card writes the overall figures into the model folder's card.json (val split only; the weights' sha256 is
unchanged). Targets (issue 3): detection ≥ 98 %, level accuracy ≥ 97 %, ≤ 0.1 false positives per scan,
median centroid error ≤ 3 mm, SPIDER lumbar disc sequence complete in ≥ 95 % of slices.
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
    res.flags = list(detection.flags)
    return res


def spider_sequence_ok(detection: Any) -> bool:
    """All of L1-L2 … L5-S1 present, ordered top to bottom (by the internal S→I position of their centroids)."""
    found = {d.level.value: d for d in detection.discs if d.level is not None}
    if not all(lv in found for lv in LUMBAR_SEQUENCE):
        return False
    z = [found[lv].centroid_mm[2] for lv in LUMBAR_SEQUENCE]  # RAS+: z decreases going down
    return all(z[i] > z[i + 1] for i in range(len(z) - 1))


def evaluate(
    data_dir: Path,
    split: str = "val",
    model: str | None = None,
    spider: bool = True,
    subsets: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the detector on every scored item of ``split`` and return per-scan and overall figures."""
    import nibabel as nib
    from tqdm import tqdm

    from ..detection import detect
    from ..io import load_scan

    index_path = data_dir / "index.csv"
    if not index_path.is_file():
        raise ScanReadError(f"'{data_dir}' is not the shared data folder: it has no index.csv")
    import csv

    with open(index_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    if not rows:
        raise ConfigError(f"no items with split '{split}' in {index_path}")
    vol_rows = [r for r in rows if r["dataset"] == "fastcleverseg" and (not subsets or r["subset"] in subsets)]
    spider_rows = [r for r in rows if r["dataset"] == "spider"] if spider else []
    scans: list[ScanResult] = []
    spider_res: list[dict[str, Any]] = []
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
    for r in tqdm(spider_rows, desc="SPIDER", disable=not progress):
        scan = load_scan(data_dir / r["path"] / "image.nii.gz")
        t = time.perf_counter()
        det = detect(scan.to_sagittal(), model=model)
        spider_res.append(
            {
                "id": r["id"],
                "complete": spider_sequence_ok(det),
                "discs": [d.level.value if d.level else "?" for d in det.discs],
                "vertebrae": [v.label.value if v.label else "?" for v in det.vertebrae],
                "flags": list(det.flags),
                "seconds": round(time.perf_counter() - t, 3),
            }
        )
    return {
        "split": split,
        "model": model or "built-in",
        "overall": _overall(scans, spider_res),
        "scans": [s.to_dict() for s in scans],
        "spider": spider_res,
    }


def _overall(scans: list[ScanResult], spider_res: list[dict[str, Any]]) -> dict[str, Any]:
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
        "spider_lumbar_sequence_complete": round(float(np.mean([r["complete"] for r in spider_res])), 4)
        if spider_res
        else None,
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
    if report["spider"]:
        bad = [r for r in report["spider"] if not r["complete"]]
        lines.append("")
        lines.append(
            f"SPIDER: {len(report['spider']) - len(bad)}/{len(report['spider'])} slices with L1-L2 … L5-S1 in order"
        )
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
    return "\n".join(lines)


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
    (model_dir / "card.json").write_text(json.dumps(data, indent=2) + "\n")


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="openspine evaluate detection",
        description="Detection and labelling figures of the vertebra detector on the shared data set.",
        formatter_class=_Formatter,
        epilog=_EPILOG,
    )
    p.add_argument("--data", type=Path, required=True, help="the shared data folder (with index.csv)")
    p.add_argument("--split", default="val", help="which split to evaluate (report on val)")
    p.add_argument("--model", default=None, help="detector model folder (default: the built-in detector)")
    p.add_argument("--out", type=Path, default=None, help="write the full report as JSON here")
    p.add_argument("--subsets", nargs="*", default=None, help="FastCleverSeg subsets to score (default: all)")
    p.add_argument("--no-spider", action="store_true", help="skip the SPIDER disc-sequence check")
    p.add_argument("--card", action="store_true", help="write the overall val figures into the model's card.json")
    return p


def cli_main(argv: list[str], quiet: bool = False) -> int:
    """``openspine evaluate detection ARGS``."""
    args = build_parser().parse_args(argv)
    report = evaluate(
        args.data, args.split, args.model, spider=not args.no_spider, subsets=args.subsets, progress=not quiet
    )
    if not quiet:
        print(format_report(report))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.card:
        if args.split != "val":
            raise ConfigError("--card stores validation figures: use it with --split val")
        from ..detection import BUILTIN_MODEL
        from ..models import builtin_model_dir

        folder = Path(args.model) if args.model else builtin_model_dir(BUILTIN_MODEL)
        write_card_metrics(folder, report, "openspine evaluate detection " + " ".join(argv))
    return 0
