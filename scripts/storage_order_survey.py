"""Are the labels the same whatever order a volume's voxels are stored in?

A NIfTI or DICOM volume can store its axes in any order and direction; the affine says where each voxel lies, so
the anatomy is the same. Every FastCleverSeg volume of the split is detected as stored (the reference), then stored
in each of the five other axis orders, each with a seeded random choice of axes reversed, the affine kept true. A
case is the same when its vertebrae carry the reference's labels in the same order; the largest centroid shift (mm)
of those cases is printed too.

    python scripts/storage_order_survey.py --data ../shared/data --split val
"""

from __future__ import annotations

import csv
import itertools

import nibabel as nib
import numpy as np
from _survey import survey_parser

from openspine.detection import detect
from openspine.evaluation.detection import flip_axes
from openspine.scan import Scan


def permuted(array: np.ndarray, affine: np.ndarray, order: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``array`` with its axes in ``order``, and the affine that keeps every voxel at its world position."""
    swap = np.zeros((4, 4))
    swap[3, 3] = 1
    for new, old in enumerate(order):
        swap[old, new] = 1
    return np.transpose(array, order), affine @ swap


def main() -> None:
    ap = survey_parser(__doc__)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = [
        r
        for r in csv.DictReader((args.data / "index.csv").open())
        if r["dataset"] == "fastcleverseg" and r["split"] == args.split
    ]
    cases = same = 0
    worst = 0.0
    for r in rows:
        img = nib.load(args.data / r["path"] / r["image"])
        array, affine = np.asarray(img.dataobj), img.affine
        reference = detect(Scan(array, affine).to_sagittal())
        labels = [v.label for v in reference.vertebrae]
        centres = np.array([v.centroid_mm for v in reference.vertebrae])
        for order in itertools.permutations(range(3)):
            if order == (0, 1, 2):
                continue
            stored, aff = permuted(array, affine, order)
            stored, aff = flip_axes(stored, aff, [i for i in range(3) if rng.random() < 0.5])
            det = detect(Scan(stored, aff).to_sagittal())
            cases += 1
            if [v.label for v in det.vertebrae] == labels:
                same += 1
                moved = np.abs(np.array([v.centroid_mm for v in det.vertebrae]) - centres)
                worst = max(worst, float(moved.max()) if moved.size else 0.0)
            else:
                print(f"{r['id']} stored as {order}: labels {[str(v.label) for v in det.vertebrae]}")
    print(f"{same} of {cases} storage orders labelled as stored; largest centroid shift among them {worst:.2f} mm")


if __name__ == "__main__":
    main()
