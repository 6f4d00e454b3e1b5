"""How much memory each analysis result kept in a list costs (RSS growth per result, Linux /proc), and its pickle.

python scripts/kept_result_memory.py ../shared/data/fastcleverseg/fcs-vb2-13/image.nii.gz --keep 10
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import openspine


def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scan", type=Path)
    ap.add_argument("--keep", type=int, default=10)
    args = ap.parse_args(argv)
    kept = [openspine.analyze(args.scan)]  # the first loads the models
    before = _rss_mb()
    kept += [openspine.analyze(args.scan) for _ in range(args.keep)]
    print(f"{(_rss_mb() - before) / args.keep:.1f} MB per kept result ({args.keep} kept; {args.scan.name})")
    print(f"pickled: {len(pickle.dumps(kept[0])) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
