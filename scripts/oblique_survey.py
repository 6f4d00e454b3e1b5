"""Oblique near-isotropic volumes: read on their own grid, resliced onto the world axes, and as the analysis reads
them (the surer of the two, :func:`openspine.analysis.reading_sureness`).

Each FastCleverSeg volume with level-labelled masks (every ``--every``-th of the split) is turned 25° and 35° about
each world axis in two ways: ``grid``, the same voxels under a turned affine (the spine lies along the volume's axes,
as in a slab planned along it); ``world``, the volume resampled onto a turned grid (the spine lies along the world
axes). Each is detected both ways and scored against its mask as ``openspine evaluate detection`` scores a volume.
Printed per kind and axis: cases, every label right and wrong without a labelling flag, for each reading.

    python scripts/oblique_survey.py --data ../shared/data --split train --every 2
    python scripts/oblique_survey.py --data ../shared/data --split train --time
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from _survey import labelled_volumes, survey_parser  # scripts/_survey.py
from numpy.typing import NDArray
from scipy import ndimage

from openspine.analysis import reading_sureness
from openspine.detection import detect
from openspine.detection.flags import labelling_flagged
from openspine.evaluation.detection import ScanResult, score_volume, volume_case_right
from openspine.io import load_scan
from openspine.scan import Scan

AXES = {"left-right": 0, "front-back": 1, "head-foot": 2}


def turned(affine: NDArray[np.float64], shape: tuple[int, ...], axis: int, degrees: float) -> NDArray[np.float64]:
    """``affine`` turned by ``degrees`` about the world ``axis`` through the volume's centre."""
    a = np.radians(degrees)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    turn = np.eye(4)
    turn[i, i], turn[i, j], turn[j, i], turn[j, j] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a)
    centre = affine @ np.r_[(np.array(shape) - 1) / 2, 1.0]
    to_origin, back = np.eye(4), np.eye(4)
    to_origin[:3, 3], back[:3, 3] = -centre[:3], centre[:3]
    return back @ turn @ to_origin @ affine


def variant(img: NDArray[Any], msk: NDArray[Any], aff: NDArray[np.float64], kind: str, axis: int, degrees: float):  # type: ignore[no-untyped-def]
    new = turned(aff, img.shape, axis, degrees)
    if kind == "grid":
        return img, msk, new
    m = np.linalg.inv(aff) @ new  # each voxel of the turned grid samples the stored volume where it lies
    im = ndimage.affine_transform(img.astype(np.float32), m[:3, :3], offset=m[:3, 3], order=1)
    return im, ndimage.affine_transform(msk, m[:3, :3], offset=m[:3, 3], order=0), new


def survey(data: Path, split: str, every: int) -> Counter[tuple[str, str, str, str]]:
    tally: Counter[tuple[str, str, str, str]] = Counter()
    for r in labelled_volumes(data, split)[::every]:
        folder = data / r["path"]
        img = np.asarray(load_scan(folder / r["image"]).array)
        mimg: Any = nib.load(str(folder / r["mask"]))
        msk, aff = np.asarray(mimg.dataobj).astype(np.int32), np.asarray(mimg.affine, float)
        for kind in ("grid", "world"):
            for axis_name, axis in AXES.items():
                for degrees in (25, 35):
                    im, mk, af = variant(img, msk, aff, kind, axis, degrees)
                    scan = Scan(im, af)
                    readings = {}
                    for how, view in (("resliced", scan.to_sagittal()), ("own grid", scan.to_sagittal(reslice=False))):
                        det = detect(view)
                        res = score_volume(det, mk, af, True, ScanResult(r["id"], r["subset"], True))
                        readings[how] = (reading_sureness(det), volume_case_right(res), labelling_flagged(det.flags))
                    readings["as analysed"] = max(readings.values(), key=lambda x: x[0])
                    for how, (_, right, flagged) in readings.items():
                        key = (kind, axis_name, how)
                        tally[(*key, "cases")] += 1
                        tally[(*key, "right")] += right
                        tally[(*key, "wrong without a flag")] += not right and not flagged
    return tally


def timing(data: Path, split: str) -> str:
    """The whole analysis of the split's largest volume as stored and with its affine alone turned 30° about the
    front-back axis (read both ways, the surer analysed), wall seconds."""
    import tempfile
    import time

    import openspine

    def voxels(r: dict[str, str]) -> int:
        return int(np.prod(nib.load(str(data / r["path"] / r["image"])).shape))  # type: ignore[attr-defined]

    r = max(labelled_volumes(data, split), key=voxels)
    image = data / r["path"] / r["image"]
    img: Any = nib.load(str(image))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "turned.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj), turned(img.affine, img.shape, 1, 30)), str(path))
        for what, source in (("as stored", image), ("turned 30°", path)):
            openspine.analyze(source)  # the models loaded once, not timed
            t = time.perf_counter()
            openspine.analyze(source)
            out.append(f"{what} {time.perf_counter() - t:.1f} s")
    return f"{split}, {r['id']} analysed: " + ", ".join(out)


def main() -> int:
    ap = survey_parser(__doc__)
    ap.add_argument("--every", type=int, default=1, help="every n-th volume of the split")
    ap.add_argument("--time", action="store_true", help="only time one volume's analysis as stored and turned")
    args = ap.parse_args()
    if args.time:
        print(timing(args.data, args.split))
        return 0
    tally = survey(args.data, args.split, args.every)
    for kind in ("grid", "world"):
        for axis_name in AXES:
            line = []
            for how in ("resliced", "own grid", "as analysed"):
                n = tally[(kind, axis_name, how, "cases")]
                right, unflagged = (
                    tally[(kind, axis_name, how, "right")],
                    tally[(kind, axis_name, how, "wrong without a flag")],
                )
                line.append(f"{how} {right}/{n} right ({unflagged} wrong unflagged)")
            print(f"{args.split}, {kind} turned about {axis_name}: " + "; ".join(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
