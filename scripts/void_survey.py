"""Signal voids (:mod:`openspine.grading.void`): how dark real discs get, and whether a drawn void is caught.

    python scripts/void_survey.py --data ../shared/data --split train
    python scripts/void_survey.py --data ../shared/data --split val --draw 10 14 --draw 6 9

Without ``--draw``: over every disc the detector finds in the split's shared scans (SPIDER T2 and T1 slices,
FastCleverSeg volumes; the SPIDER T2 slices also shaded, windowed and squared: :func:`presentations`), the largest and
99th-percentile share of void samples in the disc and in the bodies above and below it, and how many discs the
grading leaves ungraded as a void (none should be: these are native discs). With ``--draw A B`` (half-axes in mm,
superior-inferior and anterior-posterior; repeatable): into each SPIDER T2 slice of the split an elliptic void
(noise at 1 % of the bright level, a bright rim, as a titanium cage leaves on a T2 image) is drawn over each lumbar
disc in turn, L1-L2 … L5-S1, and the slice analysed: how often that disc is withheld, how often another disc is,
and how often the disc is no longer found. The voids are synthetic: the figures show what the rule does with such
a hole, not how real implants look.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from openspine import analyze, load_scan
from openspine.detection import detect
from openspine.errors import OpenSpineError
from openspine.grading.geometry import disc_geometry
from openspine.grading.intensity import without_black_level
from openspine.grading.void import CLIPPED, MAX_CLIPPED, VOID_LEVEL, VOID_SHARE, void_shares
from openspine.scan import Scan

LUMBAR = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")


def draw_void(
    arr: NDArray[np.floating],
    centre_rc: tuple[float, float],
    spacing_rc: tuple[float, float],
    half_axes_mm: tuple[float, float],
    seed: int = 0,
) -> NDArray[np.float32]:
    """A copy of the (rows, cols, slices) array with an elliptic void centred on ``centre_rc`` in every slice:
    noise at 1 % of the bright level inside, a rim up to 1.3 × the bright level around it (signal piled up at the
    edge of a metal artefact)."""
    out = np.array(arr, dtype=np.float32)
    ii, jj = np.meshgrid(np.arange(out.shape[0]), np.arange(out.shape[1]), indexing="ij")
    r = np.hypot(
        (ii - centre_rc[0]) * spacing_rc[0] / half_axes_mm[0], (jj - centre_rc[1]) * spacing_rc[1] / half_axes_mm[1]
    )
    bright = float(np.percentile(out[out > 0], 99))
    noise = np.abs(np.random.default_rng(seed).normal(0, 0.01 * bright, out.shape[:2]))
    rim = (r >= 1) & (r < 1.25)
    for k in range(out.shape[2]):
        sl = out[:, :, k]
        sl[rim] = np.maximum(sl[rim], 1.3 * bright * (1.25 - r[rim]) / 0.25)
        sl[r < 1] = noise[r < 1]
    return out


def scans(data: Path, split: str, t2_only: bool = False) -> list[tuple[str, Path]]:
    with open(data / "index.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split and r["dataset"] in ("spider", "fastcleverseg")]
    out = [(("spider-t2" if r["dataset"] == "spider" else "volume"), data / r["path"] / r["image"]) for r in rows]
    if t2_only:
        return [s for s in out if s[0] == "spider-t2"]
    with open(data / "spider" / "t1.csv", newline="") as f:
        out += [("spider-t1", data / r["path"] / r["image"]) for r in csv.DictReader(f) if r["split"] == split]
    return out


def presentations(view: Scan) -> dict[str, Scan]:
    """The view (rows head → feet, columns front → back) as it may also come: under a surface coil's strong shading
    (a spine array's fall-off from 1 at the back to 0.08 at the front; coil elements over the upper spine only, 1 at
    the top to 0.1 at the bottom), exported through a display window that blacks out its darkest 30 % (8-bit), and
    with its intensities squared (gamma 2, 8-bit)."""
    arr = np.asarray(view.array, np.float32)
    h, w = arr.shape[:2]
    front_back = (0.08 ** (1 - np.arange(w) / max(w - 1, 1)))[None, :, None]
    head_feet = (1 - 0.9 * np.arange(h) / max(h - 1, 1))[:, None, None]
    low, high = float(np.percentile(arr, 30)), float(arr.max())
    windowed = np.round(np.clip((arr - low) / max(high - low, 1e-6), 0, 1) * 255)
    squared = np.round((arr / max(high, 1e-6)) ** 2 * 255)
    out = {"shaded A-P": arr * front_back, "shaded S-I": arr * head_feet, "windowed": windowed, "gamma 2": squared}
    return {name: Scan(a.astype(np.float32), view.affine) for name, a in out.items()}


def native(data: Path, split: str) -> None:
    shares: dict[str, list[dict[str, float]]] = {}
    for source, path in scans(data, split):
        view = load_scan(path).to_sagittal()
        det = detect(view)
        views = {source: view.scan} | (
            {f"{source} {k}": v for k, v in presentations(view.scan).items()} if source == "spider-t2" else {}
        )
        for name, scan in views.items():
            seen, _ = without_black_level(scan.to_sagittal())
            arr, sp = seen.scan.array, seen.scan.spacing
            for i in range(len(det.discs)):
                try:
                    g = disc_geometry(seen, det, i)
                    shares.setdefault(name, []).append(void_shares(arr[:, :, g.slice_index], g, (sp[0], sp[1])))
                except OpenSpineError:  # a disc without usable corners is not graded anyway
                    continue
    print(
        f"split {split}: share of void samples, below {VOID_LEVEL:.0%} of the tissue around the disc "
        f"(a void from {VOID_SHARE:.0%}, judged where less than {MAX_CLIPPED:.0%} of the tissue beside it is clipped)"
    )
    for source, rows in sorted(shares.items()):
        parts = []
        for region in ("disc", "body above", "body below", CLIPPED):
            x = np.array([r[region] for r in rows])
            parts.append(f"{region} max {x.max():.2f} p99 {np.percentile(x, 99):.2f}")
        regions = [max(v for k, v in r.items() if k != CLIPPED) for r in rows]
        voids = sum(m >= VOID_SHARE for m in regions)
        judged = sum(m >= VOID_SHARE and r[CLIPPED] < MAX_CLIPPED for m, r in zip(regions, rows))
        print(f"{source:21s} {len(rows):5d} discs: " + "; ".join(parts) + f"; void {voids}, withheld {judged}")


def drawn(data: Path, split: str, half_axes_mm: tuple[float, float]) -> None:
    caught = other = lost = tried = 0
    for _, path in scans(data, split, t2_only=True):
        scan = load_scan(path)
        found = {d.level.value: d for d in detect(scan.to_sagittal()).discs if d.level is not None}
        for level in LUMBAR:
            if level not in found:
                continue
            tried += 1
            c = found[level].centroid_voxel
            arr = draw_void(np.asarray(scan.array), (c[0], c[1]), scan.spacing[:2], half_axes_mm)
            result = analyze(Scan(arr, scan.affine))
            grades = {d.level.value: d.grades for d in result.discs if d.level is not None}
            note = next((g.note or "" for g in grades.get(level, {}).values()), "")
            lost += level not in grades
            caught += "signal void" in note
            other += any(
                "signal void" in (g.note or "") for lv, gs in grades.items() if lv != level for g in gs.values()
            )
    print(
        f"void {half_axes_mm[0]:g} x {half_axes_mm[1]:g} mm drawn on {tried} lumbar discs of the {split} SPIDER T2 "
        f"slices: withheld as a void {caught}, the disc no longer found {lost}, another disc withheld {other}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--split", default="train")
    ap.add_argument("--draw", nargs=2, type=float, action="append", metavar=("SI_MM", "AP_MM"))
    args = ap.parse_args()
    if not args.draw:
        native(args.data, args.split)
    for axes in args.draw or ():
        drawn(args.data, args.split, (axes[0], axes[1]))


if __name__ == "__main__":
    main()
