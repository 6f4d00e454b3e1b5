"""Training items for the level-context model: one sagittal slice at 1 mm pixels and the level of points on it.

Each :class:`LevelItem` holds a slice (rows S→I, cols A→P, uint8) and points ``(row, col, ordinal)`` in its pixels:

* FastCleverSeg volumes with known levels (VB2, VB3: body centroids; IVD: disc centroids, ordinal + 0.5) on the
  sagittal slabs near the midline where at least three labelled structures are seen; the S1 body the detector
  finds directly below the annotated L5 is added (the sacrum was never annotated);
* SPIDER T2 and T1 slices labelled by a detector's own confident whole-slice detection (S1 found, L1-L2 … L5-S1
  present, no labelling flag): pseudo-labels that teach what the whole field of view says to a cropped one.

Only ``split`` items are read; ``group`` keeps a patient's slices together (T1 and T2 of one SPIDER patient, the
slabs of one volume) for cross-validation.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..._logging import get_logger
from .volumes import _nifti_array, _pseudo_ok, _to_uint8, ordinal_of, read_index

log = get_logger("training.datasets.levels")

SLAB_MM = 3  # slices averaged into one item, as the detector sees a thin-slice volume
MIN_AREA_MM2 = 100  # a structure seen smaller than this on a slab is not a point of it
MIN_POINTS = 3
SLABS_PER_VOLUME = 5  # slabs nearest the midline (most structures, largest area)


@dataclass
class LevelItem:
    id: str
    group: str  # patient: items of one group stay on one side of a split
    source: str  # "volume", "spider-t2", "spider-t1"
    image: NDArray[np.uint8]  # (H, W) at 1 mm, rows S→I, cols A→P
    points: NDArray[np.float64]  # (n, 3): row, col (1 mm pixels), level ordinal; sorted by row


def _to_1mm(img: NDArray[np.floating], spacing: tuple[float, float]) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """A slice with (row, col) pixel ``spacing`` resampled to 1 mm pixels (anti-aliased); also returns the 1 mm
    pixel of source pixel (0, 0) per mm of source index, as (scale, offset) per axis for mapping points."""
    sr, sc = spacing
    H1, W1 = round(float(img.shape[0] * sr)), round(float(img.shape[1] * sc))
    rr = (np.arange(H1) + 0.5) / sr - 0.5
    cc = (np.arange(W1) + 0.5) / sc - 0.5
    sig = [max(0.0, (1.0 / s - 1.0) / 2.0) for s in (sr, sc)]
    src = ndimage.gaussian_filter(img.astype(np.float32), sig) if max(sig) > 0.05 else img.astype(np.float32)
    out = ndimage.map_coordinates(src, np.meshgrid(rr, cc, indexing="ij"), order=1, mode="nearest")
    return out.astype(np.float32), np.array([[sr, 0.5 * sr - 0.5], [sc, 0.5 * sc - 0.5]])


def spider_items(
    data_dir: str | os.PathLike[str], split: str, model: str | os.PathLike[str] | None = None, t1: bool = True
) -> list[LevelItem]:
    """SPIDER T2 (and T1) slices of ``split`` with the levels of ``model``'s confident whole-slice detection."""
    from ...detection import run_detection
    from ...io import load_scan

    data_dir = Path(data_dir)
    jobs = [
        (r["id"], r["id"], "spider-t2", data_dir / r["path"] / "image.nii.gz")
        for r in read_index(data_dir)
        if r["dataset"] == "spider" and r["split"] == split
    ]
    t1_csv = data_dir / "spider" / "t1.csv"
    if t1 and t1_csv.is_file():
        with open(t1_csv, newline="", encoding="utf-8") as f:
            jobs += [
                (r["id"], f"spider-{r['patient_id']}", "spider-t1", data_dir / r["path"] / r["image"])
                for r in csv.DictReader(f)
                if r["split"] == split
            ]
    out: list[LevelItem] = []
    for item_id, group, source, path in jobs:
        view = load_scan(path).to_sagittal()
        run = run_detection(view, model)
        det = run.detection
        if not _pseudo_ok(det):
            continue
        sr, sc = view.scan.spacing[0], view.scan.spacing[1]
        img1, m = _to_1mm(view.scan.array[:, :, 0], (sr, sc))
        pts = [
            (geo.centre[0] * m[0, 0] + m[0, 1], geo.centre[1] * m[1, 0] + m[1, 1], float(v.label.ordinal))
            for v, geo in zip(det.vertebrae, det.vertebra_geometry)
            if v.label is not None
        ]
        out.append(LevelItem(item_id, group, source, _to_uint8(img1), np.array(sorted(pts))))
    log.info("level items: %d of %d SPIDER %s slices kept", len(out), len(jobs), split)
    return out


def _detected_s1(data_dir: Path, row: dict[str, str], mask: NDArray[Any], model: Any) -> tuple[float, float] | None:
    """(row, col) of the S1 the detector finds directly below the annotated L5 of a volume, or ``None``."""
    from ...detection import run_detection
    from ...io import load_scan

    if 24 not in np.unique(mask):
        return None
    det = run_detection(load_scan(data_dir / row["path"] / row["image"]).to_sagittal(), model).detection
    labels = [v.label.value if v.label else "" for v in det.vertebrae]
    if "S1" not in labels or "L5" not in labels or labels.index("S1") != labels.index("L5") + 1:
        return None
    l5 = det.vertebrae[labels.index("L5")]
    if mask[tuple(round(float(x)) for x in l5.centroid_voxel)] != 24:
        return None
    c = det.vertebra_geometry[labels.index("S1")].centre
    return float(c[0]), float(c[1])


def volume_items(
    data_dir: str | os.PathLike[str], split: str, model: str | os.PathLike[str] | None = None
) -> list[LevelItem]:
    """Midline slabs of the FastCleverSeg volumes with known levels (1 mm volumes stored rows S→I, cols A→P)."""
    data_dir = Path(data_dir)
    rows = [
        r
        for r in read_index(data_dir)
        if r["dataset"] == "fastcleverseg" and r["split"] == split and r["levels_known"].strip().lower() == "true"
    ]
    out: list[LevelItem] = []
    for r in sorted(rows, key=lambda r: r["id"]):
        folder = data_dir / r["path"]
        img = _to_uint8(_nifti_array(folder / r["image"]))
        mask = _nifti_array(folder / r["mask"]).astype(np.int32)
        s1 = _detected_s1(data_dir, r, mask, model)
        values = [int(v) for v in np.unique(mask) if np.isfinite(ordinal_of(int(v)))]
        slabs: list[tuple[int, float, list[tuple[float, float, float]]]] = []
        for k in range(SLAB_MM // 2, mask.shape[2] - SLAB_MM // 2, 2):
            plane = mask[:, :, k]
            pts = []
            for v in values:
                rc = np.argwhere(plane == v)
                if len(rc) >= MIN_AREA_MM2:
                    pts.append((float(rc[:, 0].mean()), float(rc[:, 1].mean()), ordinal_of(v)))
            if len(pts) >= MIN_POINTS:
                slabs.append((k, float(np.sum(plane > 0)), pts))
        slabs.sort(key=lambda s: (-len(s[2]), -s[1]))
        for k, _, pts in sorted(slabs[:SLABS_PER_VOLUME]):
            if s1 is not None:
                pts = [*pts, (s1[0], s1[1], 25.0)]
            lo, hi = k - SLAB_MM // 2, k + SLAB_MM // 2 + 1
            slab = img[:, :, lo:hi].astype(np.float32).mean(axis=2)
            out.append(LevelItem(f"{r['id']}:{k}", r["id"], "volume", _to_uint8(slab), np.array(sorted(pts))))
    log.info("level items: %d slabs of %d %s volumes", len(out), len(rows), split)
    return out


def save_items(items: list[LevelItem], path: str | os.PathLike[str]) -> None:
    arrays: dict[str, Any] = {}
    for i, it in enumerate(items):
        arrays[f"image_{i}"] = it.image
        arrays[f"points_{i}"] = it.points
        arrays[f"meta_{i}"] = np.array([it.id, it.group, it.source])
    np.savez_compressed(path, **arrays)


def load_items(path: str | os.PathLike[str]) -> list[LevelItem]:
    z = np.load(path)
    n = len([k for k in z.files if k.startswith("image_")])
    out = []
    for i in range(n):
        meta = [str(x) for x in z[f"meta_{i}"]]
        out.append(LevelItem(meta[0], meta[1], meta[2], z[f"image_{i}"], z[f"points_{i}"]))
    return out
