"""Detection and labelling on other acquisitions of the same anatomy: the FastCleverSeg volumes with level-labelled
masks (VB2, VB3, IVD), each also presented as a clinical scanner might have stored it.

Variants (image and label map changed together; each case scored against the masks as ``openspine evaluate
detection`` scores a volume: every detected body, IVD: disc, inside a labelled structure has its level):

* ``thick4`` / ``thick5``: 2D sagittal slices 3 / 4 mm thick, 4 / 5 mm apart (stored slices averaged);
* ``tilt+15`` / ``tilt-15``: the spine tilted by 15° in the sagittal plane (image resampled, affine kept);
* ``oblique20``: the same voxels with the affine turned 20° about the left-right axis (an oblique prescription);
* ``coarse2``: 2 mm in-plane pixels (2 × 2 × 1 mm voxels); ``thick4+coarse2``: both;
* ``scaled``: float intensities × 37.5 + 1200; ``noise``: Rician noise of 6 % of the 99th percentile;
* ``roll+20``: the spine turned 20° in the coronal plane (image resampled in the volume's own 77 mm wide grid, so the
  upper and lower ends leave it on either side, as a scoliotic spine leaves a slab); ``half``: only the first half of
  the sagittal slices kept (every body cut through its middle).

Besides the labels: how many cases carry ``vertebra_at_volume_side`` (a body cut by the side of the volume).

    python scripts/acquisition_survey.py --data ../shared/data --split val --out runs/acquisition-val.json
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from _survey import labelled_volumes, survey_parser  # scripts/_survey.py
from numpy.typing import NDArray
from scipy import ndimage

from openspine import geometry
from openspine.detection import detect
from openspine.detection.flags import labelling_flagged
from openspine.evaluation.detection import ScanResult, score_volume, volume_case_right
from openspine.io import load_scan
from openspine.scan import Scan

Arrays = tuple[NDArray[Any], NDArray[Any], NDArray[np.float64]]


def _axis(affine: NDArray[np.float64], letters: str) -> int:
    return next(i for i, c in enumerate(geometry.axcodes(affine)) if c in letters)


def thick(img: NDArray[Any], msk: NDArray[Any], aff: NDArray[np.float64], step: int, width: int) -> Arrays:
    ax = _axis(aff, "LR")
    starts = range(0, img.shape[ax] - width + 1, step)
    im = np.stack([np.take(img, range(s, s + width), axis=ax).astype(np.float32).mean(axis=ax) for s in starts], ax)
    mk = np.stack([np.take(msk, s + width // 2, axis=ax) for s in starts], ax)
    t = np.eye(4)
    t[ax, ax], t[ax, 3] = step, (width - 1) / 2
    return im, mk, aff @ t


def tilt(img: NDArray[Any], msk: NDArray[Any], aff: NDArray[np.float64], degrees: float) -> Arrays:
    axes = (_axis(aff, "SI"), _axis(aff, "AP"))
    im = ndimage.rotate(img.astype(np.float32), degrees, axes=axes, reshape=False, order=1)
    return im, ndimage.rotate(msk, degrees, axes=axes, reshape=False, order=0), aff


def roll(img: NDArray[Any], msk: NDArray[Any], aff: NDArray[np.float64], degrees: float) -> Arrays:
    axes = (_axis(aff, "SI"), _axis(aff, "LR"))
    im = ndimage.rotate(img.astype(np.float32), degrees, axes=axes, reshape=False, order=1)
    return im, ndimage.rotate(msk, degrees, axes=axes, reshape=False, order=0), aff


def half(img: NDArray[Any], msk: NDArray[Any], aff: NDArray[np.float64]) -> Arrays:
    ax = _axis(aff, "LR")
    keep = np.arange(img.shape[ax] // 2)
    return np.take(img, keep, axis=ax), np.take(msk, keep, axis=ax), aff


def oblique(img: NDArray[Any], msk: NDArray[Any], aff: NDArray[np.float64], degrees: float) -> Arrays:
    a = np.radians(degrees)
    turn = np.eye(4)
    turn[1:3, 1:3] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]  # about the world left-right axis
    centre = aff @ np.r_[(np.array(img.shape) - 1) / 2, 1.0]
    to_origin, back = np.eye(4), np.eye(4)
    to_origin[:3, 3], back[:3, 3] = -centre[:3], centre[:3]
    return img, msk, back @ turn @ to_origin @ aff


def coarse(img: NDArray[Any], msk: NDArray[Any], aff: NDArray[np.float64], factor: float) -> Arrays:
    ax = _axis(aff, "LR")
    zoom = [1.0 if i == ax else 1.0 / factor for i in range(3)]
    im, mk = ndimage.zoom(img.astype(np.float32), zoom, order=1), ndimage.zoom(msk, zoom, order=0)
    step = np.array(img.shape) / np.array(im.shape)
    t = np.eye(4)
    for i in range(3):
        t[i, i], t[i, 3] = step[i], (step[i] - 1) / 2
    return im, mk, aff @ t


def scaled(img: NDArray[Any], msk: NDArray[Any], aff: NDArray[np.float64]) -> Arrays:
    return img.astype(np.float32) * 37.5 + 1200.0, msk, aff


def noisy(img: NDArray[Any], msk: NDArray[Any], aff: NDArray[np.float64]) -> Arrays:
    rng = np.random.default_rng(0)
    f = img.astype(np.float32)
    sd = 0.06 * float(np.percentile(f, 99))
    return np.hypot(f + rng.normal(0, sd, f.shape), rng.normal(0, sd, f.shape)).astype(np.float32), msk, aff


VARIANTS: dict[str, Callable[[NDArray[Any], NDArray[Any], NDArray[np.float64]], Arrays]] = {
    "as-is": lambda i, m, a: (i, m, a),
    "thick4": lambda i, m, a: thick(i, m, a, 4, 3),
    "thick5": lambda i, m, a: thick(i, m, a, 5, 4),
    "tilt+15": lambda i, m, a: tilt(i, m, a, 15),
    "tilt-15": lambda i, m, a: tilt(i, m, a, -15),
    "oblique20": lambda i, m, a: oblique(i, m, a, 20),
    "coarse2": lambda i, m, a: coarse(i, m, a, 2),
    "thick4+coarse2": lambda i, m, a: coarse(*thick(i, m, a, 4, 3), 2),
    "scaled": scaled,
    "noise": noisy,
    "roll+20": lambda i, m, a: roll(i, m, a, 20),
    "half": half,
}


def survey(data: Path, split: str) -> list[dict[str, Any]]:
    cases = []
    for r in labelled_volumes(data, split):
        folder = data / r["path"]
        img = np.asarray(load_scan(folder / r["image"]).array)
        mimg: Any = nib.load(str(folder / r["mask"]))
        msk, aff = np.asarray(mimg.dataobj).astype(np.int32), np.asarray(mimg.affine, float)
        for name, make in VARIANTS.items():
            t = time.perf_counter()
            case: dict[str, Any] = {"id": r["id"], "variant": name}
            try:
                im, mk, af = make(img, msk, aff)
                det = detect(Scan(im, af).to_sagittal())
                res = score_volume(det, mk, af, True, ScanResult(r["id"], r["subset"], True))
                case["side_flagged"] = any(f.startswith("vertebra_at_volume_side") for f in det.flags)
                case.update(
                    right=volume_case_right(res), flagged=labelling_flagged(det.flags), predicted=res.predicted,
                    bodies=[res.detected, res.n_gt], discs=[res.discs_detected, res.gt_discs], flags=list(det.flags),
                    seconds=round(time.perf_counter() - t, 2),
                )  # fmt: skip
            except Exception as exc:  # a variant that fails is a finding, reported as such
                case["error"] = f"{type(exc).__name__}: {exc}"
            cases.append(case)
    return cases


def summary(cases: list[dict[str, Any]]) -> list[str]:
    out = []
    for name in VARIANTS:
        cs = [c for c in cases if c["variant"] == name]
        ok = [c for c in cs if "error" not in c]
        right = sum(c["right"] for c in ok)
        unflagged = sum(not c["right"] and not c["flagged"] for c in ok)
        bodies = [sum(c["bodies"][i] for c in ok) for i in (0, 1)]
        side = sum(c["side_flagged"] for c in ok)
        out.append(
            f"{name:15s} {len(cs):3d} cases, {len(cs) - len(ok)} failed, every label right {right}, wrong without a "
            f"flag {unflagged}, bodies found {bodies[0]}/{bodies[1]}, flagged vertebra_at_volume_side {side}"
        )
    return out


def main() -> int:
    ap = survey_parser(__doc__)
    ap.add_argument("--out", type=Path, default=None, help="every case as JSON")
    args = ap.parse_args()
    cases = survey(args.data, args.split)
    if args.out is not None:
        args.out.write_text(json.dumps(cases, indent=1))
    print("\n".join(summary(cases)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
