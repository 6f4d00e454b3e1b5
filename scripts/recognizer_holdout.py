"""How long to train the image recogniser, decided on train alone: a fold of train left out, several schedules.

    python scripts/recognizer_holdout.py --data ../shared/data --epochs 14 40 --work runs/rec-holdout
    python scripts/recognizer_holdout.py --data ../shared/data --epochs 40 --widen 0 0.5 --work runs/rec-holdout

The fold is every fourth FastCleverSeg train volume and every fourth SPIDER train patient (T2 and T1 slice), in
sorted order; the Spinal Cord Toolbox items stay in training (three cervical items are too few to hold one out). For
each number of epochs the recogniser is trained without the fold (``openspine train recognizer --exclude``) and
scored on it with ``openspine evaluate recognition --split train --ids``: plane by truth and sequence, as stored,
cropped and mirrored. Val is not read.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from openspine.evaluation.recognition import evaluate_recognition
from openspine.training.recognizer import train_recognizer


def fold(data: Path) -> list[str]:
    """Every fourth FastCleverSeg train volume and SPIDER train patient (sorted)."""
    with (data / "index.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
    volumes = sorted(r["id"] for r in rows if r["dataset"] == "fastcleverseg")
    spider = sorted((r["id"] for r in rows if r["dataset"] == "spider"), key=lambda i: int(i.split("-")[1]))
    return volumes[::4] + spider[::4]


def summary(result: dict[str, Any]) -> dict[str, str]:
    out = {}
    for view in ("as_stored", "cropped", "mirrored", "widened"):
        r = result[view]
        planes = ", ".join(f"{k} {v['correct']}/{v['total']}" for k, v in r["plane_by_truth"].items())
        out[view] = (
            f"plane {r['plane']['correct']}/{r['plane']['total']} ({planes}); sequence SPIDER "
            f"{r['sequence_spider']['correct']}/{r['sequence_spider']['total']}, volume cuts "
            f"{r['sequence_volume_cuts']['correct']}/{r['sequence_volume_cuts']['total']}"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--epochs", type=int, nargs="+", default=[14, 40])
    p.add_argument("--widen", type=float, nargs="+", default=[0.0, 0.5], help="--widen shares to try, each epochs")
    p.add_argument("--work", type=Path, required=True)
    args = p.parse_args(argv)
    ids = fold(args.data)
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "fold.txt").write_text("\n".join(ids) + "\n")
    report: dict[str, Any] = {"fold": ids}
    for epochs in args.epochs:
        for widen in args.widen:
            name = f"e{epochs}-w{widen:g}"
            folder = args.work / name
            if not (folder / "model.onnx").is_file():
                train_recognizer(
                    args.data, folder, epochs=epochs, exclude=tuple(ids), command=f"holdout {name}", widen_p=widen
                )
            report[name] = summary(evaluate_recognition(args.data, "train", folder, ids=ids))
            for view, text in report[name].items():
                print(f"{name:9s}, {view:9s}: {text}", flush=True)
    (args.work / "holdout.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
