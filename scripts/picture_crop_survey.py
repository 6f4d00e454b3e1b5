"""Cropped pictures read at an estimated pixel size: how many are graded, with or without a sacrum in view.

Every SPIDER T2 slice of the split is analysed as stored (its NIfTI, true pixel size: the reference labels) and cut
into the crops ``openspine evaluate detection`` makes of it (``--crops`` per slice, seeded; every second one also
mirrored); each crop of its PNG picture is read with ``--pixel-spacing auto``, as a cropped figure from a paper comes.
Printed per kind (the labelling flagged ``no sacrum visible`` or not): crops, crops with at least one disc graded,
discs graded, and graded crops where a graded disc carries another level than the reference disc within 12 mm.

    python scripts/picture_crop_survey.py --data ../shared/data --split train
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
from _survey import split_scans, survey_parser
from PIL import Image

import openspine
from openspine.evaluation.detection import detected_variants

TOLERANCE_MM = 12.0


def survey(data: Path, split: str, crops: int, seed: int) -> Counter[tuple[str, str]]:
    tally: Counter[tuple[str, str]] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "crop.png"
        for dataset, image in split_scans(data, split):
            if dataset != "spider":
                continue
            img = nib.load(image)
            reference = openspine.analyze(image)
            if reference.out_of_scope or not reference.vertebrae:
                continue
            picture = np.asarray(Image.open(image.parent / "image.png").convert("L"))  # the same pixels
            pixel_mm = float(img.header.get_zooms()[0])
            ref_discs = [(d.centroid_voxel[0], d.level) for d in reference.discs if d.level is not None]
            shape = np.asarray(img.dataobj).shape
            for variant in detected_variants(reference.vertebrae, shape, img.affine, crops, seed, image.parent.name):
                if variant.keep is None:
                    continue
                top, bottom = variant.keep  # rows of the stored slice: superior to inferior
                crop = picture[top:bottom, ::-1] if variant.mirrored else picture[top:bottom]
                Image.fromarray(np.ascontiguousarray(crop)).save(path)
                result = openspine.analyze(path, pixel_spacing="auto")
                kind = "no sacrum" if any("no sacrum visible" in f for f in result.flags) else "sacrum"
                graded = [
                    d for d in result.discs if d.level is not None and any(g.available for g in d.grades.values())
                ]
                differs = False
                for d in graded:
                    gaps = [abs(d.centroid_voxel[0] + top - row) * pixel_mm for row, _ in ref_discs]
                    if gaps and min(gaps) < TOLERANCE_MM:
                        differs |= ref_discs[int(np.argmin(gaps))][1] != d.level
                tally[(kind, "crops")] += 1
                tally[(kind, "graded crops")] += bool(graded)
                tally[(kind, "graded discs")] += len(graded)
                tally[(kind, "graded crops with a label unlike the whole slice's")] += bool(graded) and differs
    return tally


def main() -> int:
    ap = survey_parser(__doc__)
    ap.add_argument("--crops", type=int, default=6, help="crops per slice (default 6, as the detection evaluation)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tally = survey(args.data, args.split, args.crops, args.seed)
    for kind in ("sacrum", "no sacrum"):
        print(f"{args.split}, {kind}: " + ", ".join(f"{k[1]} {v}" for k, v in tally.items() if k[0] == kind))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
