"""Measure how long grading takes: all lumbar discs of a scan, detector output given (issue target ≤ 0.5 s on 2 cores).

Usage::

    .venv/bin/python scripts/benchmark_grading.py                       # the embedded demo slice + shared volumes
    .venv/bin/python scripts/benchmark_grading.py SCAN [SCAN ...] --repeat 20 --threads 2 --json out.json

For each scan: read it, run the detector once, then time ``openspine.grading.grade`` (crop extraction + ONNX
inference + records) ``--repeat`` times after one warm-up call (the first call, which loads the model, is reported
separately as "cold"). Only the grading step is timed; detection time is shown for context.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCANS = [
    "src/openspine/data/demo/spider-21-t2.nii.gz",  # one 2D slice (SPIDER)
    "../shared/data/fastcleverseg/fcs-vb2-05/image.nii.gz",  # a 3D lumbar volume, 1 mm isotropic
    "../shared/data/fastcleverseg/fcs-ivd-11/image.nii.gz",
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scans", nargs="*", help="scans to grade (default: the demo slice and two shared volumes)")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    p.add_argument("--grader", default=None, help="grader model folder (default: built-in)")
    p.add_argument("--json", type=Path, default=None, help="write the timings here")
    args = p.parse_args(argv)

    from openspine.detection import detect
    from openspine.grading import grade
    from openspine.grading.model import load_grader
    from openspine.io import load_scan

    scans = [Path(s) for s in args.scans] or [REPO / s for s in DEFAULT_SCANS]
    t = time.perf_counter()
    load_grader(args.grader, threads=args.threads)
    cold_load = time.perf_counter() - t
    rows = []
    for path in scans:
        if not path.exists():
            print(f"skipped (missing): {path}", file=sys.stderr)
            continue
        view = load_scan(path).to_sagittal()
        t = time.perf_counter()
        det = detect(view)
        t_det = time.perf_counter() - t
        t = time.perf_counter()
        out = grade(view, det, grader=args.grader)
        first = time.perf_counter() - t
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = grade(view, det, grader=args.grader)
            times.append(time.perf_counter() - t)
        n = sum(1 for d in out.discs if d.grades)
        row = {
            "scan": str(path),
            "shape": list(view.scan.shape),
            "discs_graded": n,
            "detection_s": round(t_det, 3),
            "grading_first_call_s": round(first, 4),
            "grading_median_s": round(statistics.median(times), 4),
            "grading_max_s": round(max(times), 4),
        }
        rows.append(row)
        print(
            f"{path.parent.name + '/' + path.name:36s} shape {tuple(view.scan.shape)}  {n} discs graded  "
            f"grading median {row['grading_median_s']:.3f} s (max {row['grading_max_s']:.3f}, first "
            f"{row['grading_first_call_s']:.3f})  detection {row['detection_s']:.2f} s"
        )
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "threads": args.threads,
        "model_load_s": round(cold_load, 3),
        "repeat": args.repeat,
        "scans": rows,
        "target_s": 0.5,
    }
    print(f"model load (once per process): {cold_load:.3f} s; target: grading ≤ 0.5 s per scan on 2 cores")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
