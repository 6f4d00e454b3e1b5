"""Batch throughput on this machine: scans per hour and peak memory per worker for 20 real scans with
1 and 2 local workers and with a 2-worker Dask LocalCluster.

Usage: python scripts/benchmark_batch.py [--data ../shared/data] [--out benchmark-batch.json]

The 20 scans: the 6 FastCleverSeg `val` volumes (3D lumbar, 1 mm) and 14 SPIDER `val` slices (2D lumbar T2),
copied into a temporary cohort folder. Each configuration runs --repeat times (default 3), each time in a fresh
process on an empty output folder, writing the default outputs (json, csv, png, html); the median is reported.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RUNNER = r"""
import json, resource, sys, time
from openspine.batch.runner import run_batch
root, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
kw = {"cluster": "local:2"} if mode == "dask" else {"workers": int(mode)}
peak = []
if mode == "dask":
    import distributed
    orig = distributed.Client.close
    def close(self, *a, **k):
        peak.extend(self.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss).values())
        return orig(self, *a, **k)
    distributed.Client.close = close
t = time.perf_counter()
s = run_batch(root, out, formats=("json", "csv", "png", "html"), **kw)
wall = time.perf_counter() - t
if mode != "dask":
    peak.append(resource.getrusage(resource.RUSAGE_CHILDREN if mode != "1" else resource.RUSAGE_SELF).ru_maxrss)
print(json.dumps({"done": s.done, "failed": s.failed, "wall_s": wall, "peak_rss_mb": max(peak) / 1024}))
"""


def make_cohort(data: Path, dst: Path) -> int:
    with open(data / "index.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "val"]
    fcs = [r for r in rows if r["dataset"] == "fastcleverseg"][:6]
    spider = [r for r in rows if r["dataset"] == "spider"][:14]
    for r in fcs + spider:
        shutil.copy(data / r["path"] / "image.nii.gz", dst / f"{r['id']}.nii.gz")
    return len(fcs) + len(spider)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path("benchmark-batch.json"))
    ap.add_argument("--modes", default="1,2,dask", help="comma-separated: 1, 2 (local workers), dask")
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration; the median is reported")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        cohort = Path(tmp) / "cohort"
        cohort.mkdir()
        n = make_cohort(args.data, cohort)
        for mode in args.modes.split(","):
            runs = []
            for i in range(args.repeat):  # alternate nothing: each run starts from an empty output folder
                out = Path(tmp) / f"out-{mode}-{i}"
                proc = subprocess.run(
                    [sys.executable, "-c", RUNNER, str(cohort), str(out), mode], capture_output=True, text=True
                )
                if proc.returncode != 0:
                    print(proc.stderr[-2000:], file=sys.stderr)
                    return 1
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            walls = sorted(r["wall_s"] for r in runs)
            r = {
                "scans": n,
                "done": runs[0]["done"],
                "wall_s_runs": [round(w, 2) for w in walls],
                "wall_s": statistics.median(walls),
                "peak_rss_mb": max(x["peak_rss_mb"] for x in runs),
            }
            r["scans_per_hour"] = 3600 * r["done"] / r["wall_s"]
            results[mode] = r
            print(f"{mode:>5}: {r['done']}/{n} scans, median {r['wall_s']:.1f} s of {r['wall_s_runs']} = "
                  f"{r['scans_per_hour']:.0f} scans/h, peak RSS per worker {r['peak_rss_mb']:.0f} MB")  # fmt: skip
    if "1" in results and "2" in results:
        ratio = results["2"]["scans_per_hour"] / (2 * results["1"]["scans_per_hour"])
        results["two_worker_efficiency"] = ratio
        print(f"2 workers reach {100 * ratio:.0f} % of twice the single-worker rate")
    args.out.write_text(json.dumps(results, indent=2))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
