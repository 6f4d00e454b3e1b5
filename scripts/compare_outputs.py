"""Write the outputs of every shared val scan, or compare two such runs: a check that a restructuring changed no result.

    python scripts/compare_outputs.py write before/ --data ../shared/data     # at the old commit
    python scripts/compare_outputs.py write after/ --data ../shared/data      # at the new one
    python scripts/compare_outputs.py compare before/ after/

``write`` analyses every val item of ``index.csv`` and every val SPIDER T1 slice and writes json, csv, png, html and
nifti outputs into one folder per item. ``compare`` reports every file that differs: ``result.json`` is compared
as data (``created`` and ``timings_s`` ignored, numbers equal within 1e-6), everything else byte by byte (the HTML
report without its creation time and analysis time, gzip files by their content). Exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import logging
import math
import re
import sys
from pathlib import Path
from typing import Any

FORMATS = ("json", "csv", "png", "html", "nifti")
VOLATILE_KEYS = ("created", "timings_s")
VOLATILE_HTML = re.compile(r"<dt>(created|analysis time)</dt><dd>[^<]*</dd>")


def val_items(data: Path) -> list[tuple[str, Path]]:
    items = []
    with (data / "index.csv").open() as f:
        for r in csv.DictReader(f):
            if r["split"] == "val":
                items.append((r["id"], data / r["path"] / r["image"].split(";")[0]))
    with (data / "spider" / "t1.csv").open() as f:
        for r in csv.DictReader(f):
            if r["split"] == "val":
                items.append((r["id"], data / r["path"] / r["image"]))
    return items


def write(out: Path, data: Path) -> int:
    import openspine
    from openspine.writers import write_result

    logging.getLogger("openspine").setLevel(logging.ERROR)
    for case, path in val_items(data):
        write_result(openspine.analyze(path), out / case, FORMATS)
    print(f"wrote {len(val_items(data))} cases to {out}")
    return 0


def _same(a: Any, b: Any, where: str, diffs: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in VOLATILE_KEYS:
                continue
            if k not in a or k not in b:
                diffs.append(f"{where}.{k}: only in {'after' if k in b else 'before'}")
            else:
                _same(a[k], b[k], f"{where}.{k}", diffs)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            diffs.append(f"{where}: {len(a)} vs {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]", diffs)
    elif isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, abs_tol=1e-6)):
            diffs.append(f"{where}: {a!r} vs {b!r}")
    elif a != b:
        diffs.append(f"{where}: {a!r} vs {b!r}")


def compare(before: Path, after: Path) -> int:
    diffs: list[str] = []
    cases = sorted(p.name for p in before.iterdir() if p.is_dir())
    for case in cases:
        names = sorted({p.name for p in (before / case).iterdir()} | {p.name for p in (after / case).iterdir()})
        for name in names:
            a, b = before / case / name, after / case / name
            if not a.exists() or not b.exists():
                diffs.append(f"{case}/{name}: only in {'after' if b.exists() else 'before'}")
            elif name.endswith(".json"):
                _same(json.loads(a.read_text()), json.loads(b.read_text()), f"{case}/{name}", diffs)
            elif name.endswith(".html"):
                if VOLATILE_HTML.sub("", a.read_text()) != VOLATILE_HTML.sub("", b.read_text()):
                    diffs.append(f"{case}/{name}: differs")
            elif name.endswith(".gz"):  # the gzip header carries the time of writing: compare the content
                if gzip.decompress(a.read_bytes()) != gzip.decompress(b.read_bytes()):
                    diffs.append(f"{case}/{name}: differs")
            elif a.read_bytes() != b.read_bytes():
                diffs.append(f"{case}/{name}: differs")
    for d in diffs[:200]:
        print(d)
    print(f"{len(cases)} cases compared: {len(diffs)} difference(s)")
    return 1 if diffs else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("out", type=Path)
    w.add_argument("--data", type=Path, default=Path("../shared/data"))
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = ap.parse_args(argv)
    return write(args.out, args.data) if args.cmd == "write" else compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
