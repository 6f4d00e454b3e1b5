"""How cervical the SPIDER pictures of a split look when read at the size cervical bodies would give: the reading behind
``openspine.analysis.CERVICAL_DOUBT_AT_CERVICAL_SIZE``.

A picture read with ``--pixel-spacing auto`` is measured as if its bodies were lumbar; read again at the size that
makes them as far apart as cervical bodies (``CERVICAL_BODY_PITCH_MM`` over ``BODY_PITCH_MM`` of the estimate), a
neck looks cervical to the image recogniser again. From 0.9 the picture is read as a neck; from the doubt bar its
lumbar labels are flagged (and not graded). Printed: per split, the SPIDER T2 and T1 pictures, the percentiles of
that reading and how many reach the doubt bar (each would lose its grades); with ``--pictures DIR`` the same for
every PNG under DIR (e.g. windows of a cervical volume).

    python scripts/cervical_doubt_survey.py --data ../shared/data --split train
    python scripts/cervical_doubt_survey.py --pictures DIR
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

import numpy as np


def reading_at_cervical_size(path: Path) -> float | None:
    """The recogniser's cervical probability of a picture read at the size cervical bodies give (None: no estimate)."""
    import openspine.analysis as analysis
    from openspine import load_scan
    from openspine.detection.scale import BODY_PITCH_MM, CERVICAL_BODY_PITCH_MM, fallback_size, with_pixel_size

    scan = load_scan(path, pixel_spacing=(1.0, 1.0))  # any size: the picture is rescaled below
    guess = with_pixel_size(scan, fallback_size(*scan.shape[:2]))
    measured = scan.mirrored_front_to_back() if analysis._shows_front_right(guess) else scan
    estimate = analysis._estimate_with_panels(measured, None)
    if estimate.spacing_mm is None:
        return None
    seen = analysis._recognise_picture(
        with_pixel_size(measured, estimate.spacing_mm * CERVICAL_BODY_PITCH_MM / BODY_PITCH_MM)
    )
    return None if seen is None else float(seen.cervical_probability)


def spider_pictures(data: Path, split: str) -> list[Path]:
    with (data / "index.csv").open() as f:
        out = [
            data / r["path"] / "image.png"
            for r in csv.DictReader(f)
            if r["dataset"] == "spider" and r["split"] == split
        ]
    with (data / "spider" / "t1.csv").open() as f:
        out += [data / r["path"] / r["png"] for r in csv.DictReader(f) if r["split"] == split]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--split", default="train", choices=("train", "val"))
    ap.add_argument("--pictures", type=Path, default=None, help="read every PNG under this folder instead")
    args = ap.parse_args(argv)
    logging.getLogger("openspine").setLevel(logging.ERROR)
    from openspine.analysis import CERVICAL_DOUBT_AT_CERVICAL_SIZE, MIN_CERVICAL_AT_CERVICAL_SIZE

    paths = sorted(args.pictures.rglob("*.png")) if args.pictures else spider_pictures(args.data, args.split)
    readings = [(p, reading_at_cervical_size(p)) for p in paths]
    a = np.array([r for _, r in readings if r is not None])
    what = str(args.pictures) if args.pictures else f"SPIDER {args.split} T2 and T1 pictures"
    doubt, neck = CERVICAL_DOUBT_AT_CERVICAL_SIZE, MIN_CERVICAL_AT_CERVICAL_SIZE
    print(
        f"{what}: {len(paths)} pictures, {len(a)} estimated; cervical at the cervical size, percentiles 50/90/98/100 "
        f"{np.percentile(a, [50, 90, 98, 100]).round(3).tolist()}; {int((a >= doubt).sum())} at {doubt} or more "
        f"(labels flagged), {int((a >= neck).sum())} at {neck} or more (read as a neck)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
