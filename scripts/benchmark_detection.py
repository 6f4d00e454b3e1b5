#!/usr/bin/env python
"""Speed and memory of vertebra detection + labelling on a clinical-like sagittal series.

The series is built from a real shared volume (default: the val scan ``fcs-vb2-13``, 1 mm isotropic): 15 sagittal
slices 4 mm apart around the middle, each resampled in-plane to 512 × 512 pixels (≈ 0.74 mm), as a clinical
lumbar T2 series would be. Measured in this fresh process:

* model load: the first ``load_model`` of the detector (reading the card, checking the sha256, creating the
  onnxruntime session);
* detection: ``detect(view)`` wall time after the model is loaded (median of ``--repeats`` runs, first run apart);
* peak memory: the process's peak resident set size (ru_maxrss) after all runs.

Targets (issue 3): detection ≤ 1.0 s on 2 CPU cores, model load ≤ 0.5 s, peak memory ≤ 1 GB.

usage: python scripts/benchmark_detection.py [--data ../shared/data] [--scan fcs-vb2-13] [--repeats 5] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def clinical_series(data: Path, scan_id: str, n_slices: int = 15, gap_mm: float = 4.0, size: int = 512) -> Any:
    """A (size, size, n_slices) sagittal series resampled from a shared 1 mm volume, as an openspine Scan."""
    import nibabel as nib
    from scipy import ndimage

    from openspine.scan import Scan, ScanSource

    img: Any = nib.load(str(data / "fastcleverseg" / scan_id / "image.nii.gz"))
    arr = np.asarray(img.dataobj).astype(np.float32)  # [S→I, A→P, L→R], 1 mm
    H, W, S = arr.shape
    centre = (S - 1) / 2
    ks = centre + (np.arange(n_slices) - (n_slices - 1) / 2) * gap_mm
    ks = np.clip(ks, 0, S - 1)
    # thick slices: average the 1 mm slices within each 4 mm slab, then resample in-plane to size × size
    out = np.zeros((size, size, n_slices), np.uint16)
    fov_r, fov_c = H * 1.0, W * 1.0
    sp_r, sp_c = fov_r / size, fov_c / size
    rr = (np.arange(size) + 0.5) * sp_r - 0.5
    cc = (np.arange(size) + 0.5) * sp_c - 0.5
    grid = np.meshgrid(rr, cc, indexing="ij")
    for i, k in enumerate(ks):
        k0, k1 = int(max(0, np.floor(k - gap_mm / 2 + 0.5))), int(min(S, np.floor(k + gap_mm / 2 + 0.5)))
        slab = arr[:, :, k0 : max(k1, k0 + 1)].mean(axis=2)
        out[:, :, i] = np.clip(ndimage.map_coordinates(slab, grid, order=1, mode="nearest") * 4.0, 0, 65535)
    affine = np.array(
        [
            [0.0, 0.0, gap_mm, -gap_mm * (n_slices - 1) / 2],
            [0.0, -sp_c, 0.0, fov_c / 2],
            [-sp_r, 0.0, 0.0, fov_r / 2],
            [0, 0, 0, 1.0],
        ]
    )
    return Scan(out, affine, ScanSource(path=f"{scan_id} resampled to {n_slices}×{size}²", format="array"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--scan", default="fcs-vb2-13")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default=None, help="detector model folder (default: built-in)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)

    from openspine.detection import BUILTIN_MODEL, detect
    from openspine.models import load_model

    scan = clinical_series(args.data, args.scan)
    view = scan.to_sagittal()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    load_model(args.model or BUILTIN_MODEL, threads=max(1, min(os.cpu_count() or 1, 4)))
    load_s = time.perf_counter() - t
    times = []
    det = None
    for _ in range(args.repeats + 1):
        t = time.perf_counter()
        det = detect(view, model=args.model)
        times.append(time.perf_counter() - t)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert det is not None
    detect_median = float(np.median(times[1:]))
    res: dict[str, Any] = {
        "series": f"{scan.shape} spacing {tuple(round(s, 3) for s in scan.spacing)} from {args.scan}",
        "cpu_count": os.cpu_count(),
        "model_load_s": round(load_s, 3),
        "detect_first_s": round(times[0], 3),
        "detect_median_s": round(detect_median, 3),
        "detect_max_s": round(float(np.max(times[1:])), 3),
        "peak_rss_mb": round(peak_mb, 1),
        "rss_before_model_mb": round(rss_before, 1),
        "vertebrae": [v.label.value if v.label else "?" for v in det.vertebrae],
        "discs": [d.level.value if d.level else "?" for d in det.discs],
        "flags": list(det.flags),
        "targets": {"detect_s": 1.0, "model_load_s": 0.5, "peak_rss_mb": 1024},
    }
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    ok = detect_median <= 1.0 and load_s <= 0.5 and peak_mb <= 1024
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
