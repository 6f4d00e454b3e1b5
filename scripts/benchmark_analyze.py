"""Time the whole analysis (read, recognise, detect, label, grade; no output files) on a few real scans.

    python scripts/benchmark_analyze.py                       # a SPIDER slice, a T2 volume, a water-fat volume
    python scripts/benchmark_analyze.py SCAN [SCAN ...] --repeat 9
    python scripts/benchmark_analyze.py --t1-pairs                # T2 alone against T2 + T1, on SPIDER val pairs
    python scripts/benchmark_analyze.py ../shared/data/spider/32/image.png --pixel-spacing 0.6 0.6 --repeat 15

Each scan is analysed once to warm up (model loading), then ``--repeat`` times; the median is printed. To compare two
versions, run the script in a checkout of each, alternating, on the same machine.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

DEFAULT_SCANS = [
    "../shared/data/spider/32/image.nii.gz",
    "../shared/data/fastcleverseg/fcs-vb2-13/image.nii.gz",
    "../shared/data/fastcleverseg/fcs-vb3-08/image.nii.gz",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scans", nargs="*", type=Path, default=[Path(p) for p in DEFAULT_SCANS])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--t1-pairs", action="store_true", help="time T2 alone and T2 + T1 on the SPIDER val patients' slice pairs"
    )
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--pixel-spacing", nargs=2, type=float, default=None, help="ROW COL mm of PNG/JPEG scans")
    args = ap.parse_args(argv)
    logging.getLogger("openspine").setLevel(logging.ERROR)
    import openspine

    if args.t1_pairs:
        return _t1_pairs(args.data, args.repeat)
    options = {"pixel_spacing": tuple(args.pixel_spacing)} if args.pixel_spacing else {}
    for path in args.scans:
        openspine.analyze(path, **options)
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            openspine.analyze(path, **options)
            times.append(time.perf_counter() - t)
        print(f"{path}: median {statistics.median(times):.3f} s over {args.repeat} runs (min {min(times):.3f})")
    return 0


def _t1_pairs(data: Path, repeat: int) -> int:
    """Median time per study of T2 alone and of T2 + T1 over the val patients with a T1 slice (each analysed once
    to warm up), alternating the two so that drifts of the machine's speed hit both alike."""
    import csv

    import openspine

    rows = [r for r in csv.DictReader((data / "spider" / "t1.csv").open()) if r["split"] == "val"]
    pairs = [(data / r["path"] / "image.nii.gz", data / r["path"] / r["image"]) for r in rows]
    openspine.analyze(pairs[0][0], t1=pairs[0][1])
    alone: list[float] = []
    both: list[float] = []
    for _ in range(repeat):
        for t2, t1 in pairs:
            t = time.perf_counter()
            openspine.analyze(t2)
            alone.append(time.perf_counter() - t)
            t = time.perf_counter()
            openspine.analyze(t2, t1=t1)
            both.append(time.perf_counter() - t)
    a, b = statistics.median(alone), statistics.median(both)
    print(f"{len(pairs)} val pairs x {repeat}: T2 alone median {a:.3f} s, T2 + T1 median {b:.3f} s ({b / a:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
