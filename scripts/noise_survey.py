"""How noisy the shared scans are, as openspine measures it, and how much added noise moves that measure.

For every SPIDER T2 and T1 slice and FastCleverSeg volume of a split (the middle sagittal slice of a volume), prints
:func:`openspine.grading.noise.noise_ratio` as stored and with Rician noise of 3, 6 and 12 % of the slice's 99.5th
percentile added (seeded), per data set: the median, 95th percentile and maximum as stored, the 5th percentile and
median with noise. The flag ``image_noisy`` fires above :data:`openspine.grading.noise.NOISY_ABOVE`; its bar was set
on train.

    python scripts/noise_survey.py --data ../shared/data --split train
"""

from __future__ import annotations

import sys

import numpy as np
from _survey import split_scans, survey_parser  # scripts/_survey.py


def main(argv: list[str] | None = None) -> int:
    import nibabel as nib

    from openspine.grading.noise import NOISY_ABOVE, noise_ratio

    args = survey_parser(__doc__).parse_args(argv)
    items = split_scans(args.data, args.split)
    rng = np.random.default_rng(0)
    added = (0.03, 0.06, 0.12)
    table: dict[str, list[list[float]]] = {}
    for name, path in items:
        if name not in ("spider", "spider-t1", "fastcleverseg", "sct"):
            continue
        img = nib.load(str(path))
        arr = np.asarray(img.dataobj, dtype=np.float64)
        side = next(i for i, c in enumerate(nib.aff2axcodes(img.affine)) if c in "LR")
        plane = np.take(arr, arr.shape[side] // 2, axis=side)
        bright = float(np.percentile(plane, 99.5))
        row = [noise_ratio(plane)]
        for share in added:
            noisy = np.hypot(
                plane + rng.normal(0, share * bright, plane.shape), rng.normal(0, share * bright, plane.shape)
            )
            row.append(noise_ratio(noisy))
        table.setdefault(name, []).append([np.nan if v is None else v for v in row])
    print(f"noise / tissue median, split {args.split}; image_noisy above {NOISY_ABOVE}")
    for name, rows in sorted(table.items()):
        v = np.asarray(rows)
        clean = v[:, 0][np.isfinite(v[:, 0])]
        stored = f"median {np.median(clean):.3f}, p95 {np.percentile(clean, 95):.3f}, max {clean.max():.3f}"
        parts = [f"{name:14s} n={len(v):3d} as stored: {stored}"]
        for k, share in enumerate(added, start=1):
            col = v[:, k][np.isfinite(v[:, k])]
            flagged = int(np.sum(col > NOISY_ABOVE))
            spread = f"p5 {np.percentile(col, 5):.3f}, median {np.median(col):.3f}"
            parts.append(f"+{share:.0%}: {spread}, flagged {flagged}/{len(col)}")
        print("; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
