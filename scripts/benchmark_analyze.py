"""Time the whole analysis (read, recognise, detect, label, grade; no output files) on a few real scans.

    python scripts/benchmark_analyze.py                       # a SPIDER slice, a T2 volume, a water-fat volume
    python scripts/benchmark_analyze.py SCAN [SCAN ...] --repeat 9

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
    args = ap.parse_args(argv)
    logging.getLogger("openspine").setLevel(logging.ERROR)
    import openspine

    for path in args.scans:
        openspine.analyze(path)
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            openspine.analyze(path)
            times.append(time.perf_counter() - t)
        print(f"{path}: median {statistics.median(times):.3f} s over {args.repeat} runs (min {min(times):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
