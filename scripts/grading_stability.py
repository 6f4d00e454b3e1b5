"""Do a disc's grades stay the same when the same scan is cropped, stored the other way round or given as a picture?

Every SPIDER T2 slice of the split is analysed as stored (the reference), stored mirrored (anterior–posterior and
left–right reversed, affine kept true: the same anatomy), in ``--crops`` crops of its field of view (cut at random
heights at the top, bottom or both, keeping at least three vertebrae whole; the same crops as ``openspine evaluate
detection``), and as its PNG picture at its true pixel size and with ``--pixel-spacing auto``. A disc of a variant
is compared with the reference disc of the same level within 12 mm; a disc whose label differs from the
reference's there is a labelling difference, counted apart and not compared; so is a disc whose grades were all
withheld in the variant (e.g. a view without the sacrum, whose labels may be one level off). Prints, per variant
kind, the discs compared and the share of them whose ``grade`` is identical, per grading; and the mean absolute
change of the expected Pfirrmann grade. No label is read: it measures consistency, not accuracy.

``--volumes`` measures the FastCleverSeg volumes of the split instead: each as stored (the reference), mirrored left
to right in the world (the same voxels under an affine whose x axis is reversed: a header's left–right mistake, or
the other side's view of the same anatomy), and with its first or its last sagittal slice left out (the same
anatomy sampled one slice to the side). A thin-slice volume is read in slabs of about 3 mm from one side to the
other, and the grader's crops are cut around the middle slice of a disc's slab, so these views move the slices a
disc is graded from by one. Discs are matched by their in-plane position.

    python scripts/grading_stability.py --data ../shared/data --split val
    python scripts/grading_stability.py --data ../shared/data --split val --volumes
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from _survey import survey_parser

import openspine
from openspine.evaluation.detection import apply_variant, detected_variants
from openspine.results import grading_name

TOLERANCE_MM = 12.0


def disc_grades(result: Any, pixel_mm: float | None = None) -> list[tuple[str, np.ndarray, dict[str, Any]]]:
    """(level, position mm, {grading: (grade, expected Pfirrmann or None)}) of every graded, labelled disc. The
    position is the centroid in world mm, or with ``pixel_mm`` its (row, column) pixel times that size: a picture of
    the slice has the same pixels but not the same world frame."""
    out = []
    for d in result.discs:
        if d.level is None or not d.grades:
            continue
        grades = {}
        for key, g in d.grades.items():
            if not g.available:
                continue
            name = grading_name(key)
            expected = None
            if name == "pfirrmann" and g.probabilities:
                expected = sum(int(k) * float(v) for k, v in g.probabilities.items())
            grades[name] = (g.grade, expected)
        where = np.asarray(d.centroid_voxel[:2], float) * pixel_mm if pixel_mm else np.asarray(d.centroid_mm, float)
        out.append((d.level.value, where, grades))
    return out


def compare(reference: list, variant: list, tally: dict[str, Any]) -> None:
    """Add one variant's discs to ``tally`` (see the module docstring)."""
    for level, centre, grades in variant:
        dist = [float(np.linalg.norm(centre - c)) for _, c, _ in reference]
        if not dist or min(dist) > TOLERANCE_MM:
            continue
        ref_level, _, ref_grades = reference[int(np.argmin(dist))]
        if ref_level != level:
            tally["label_differs"] += 1
            continue
        if not grades and ref_grades:  # withheld in the variant
            tally["withheld"] += 1
            continue
        tally["discs"] += 1
        for name, (grade, expected) in grades.items():
            if name not in ref_grades:
                continue
            tally["same"][name] += int(grade == ref_grades[name][0])
            tally["n"][name] += 1
            if expected is not None and ref_grades[name][1] is not None:
                tally["pfirrmann_shift"].append(abs(expected - ref_grades[name][1]))


def in_plane_grades(result: Any, lr_axis: int, spacing: np.ndarray) -> list[tuple[str, np.ndarray, dict[str, Any]]]:
    """:func:`disc_grades` with each disc placed by its voxel position in mm along the two stored axes other than
    ``lr_axis`` (the one closest to left–right): a volume mirrored in the world or cut by a slice keeps them."""
    keep = [a for a in range(3) if a != lr_axis]
    by_level = {d.level.value: d for d in result.discs if d.level is not None}
    return [
        (level, np.asarray(by_level[level].centroid_voxel, float)[keep] * spacing[keep], grades)
        for level, _, grades in disc_grades(result)
    ]


def volume_views(arr: np.ndarray, aff: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """The views of ``--volumes``: name → (array, affine, stored axis closest to left–right)."""
    lr = int(np.argmax(np.abs(aff[0, :3])))
    first, last = [slice(None)] * 3, [slice(None)] * 3
    first[lr], last[lr] = slice(1, None), slice(None, -1)
    shift = np.eye(4)
    shift[lr, 3] = 1.0  # the array starts one voxel further along that axis: every voxel stays where it was
    return {
        "mirrored left to right in the world": (arr, np.diag([-1.0, 1.0, 1.0, 1.0]) @ aff, lr),
        "first sagittal slice left out": (arr[tuple(first)], aff @ shift, lr),
        "last sagittal slice left out": (arr[tuple(last)], aff, lr),
    }


def new_tally() -> dict[str, Any]:
    return {"discs": 0, "label_differs": 0, "withheld": 0, "same": defaultdict(int), "n": defaultdict(int),
            "pfirrmann_shift": []}  # fmt: skip


def main() -> None:
    ap = survey_parser(__doc__)
    ap.add_argument("--crops", type=int, default=6, help="crops per slice (default 6, as the detection evaluation)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--volumes", action="store_true", help="the FastCleverSeg volumes, mirrored and cut by a slice")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    tallies: dict[str, dict[str, Any]] = defaultdict(new_tally)
    if args.volumes:
        survey_volumes(args.data, args.split, tallies)
    else:
        survey_slices(args.data, args.split, args.crops, args.seed, tallies)
    report(tallies, args.json)


def survey_volumes(data: Path, split: str, tallies: dict[str, dict[str, Any]]) -> None:
    """``--volumes``: see the module docstring."""
    rows = [
        r
        for r in csv.DictReader((data / "index.csv").open())
        if r["dataset"] == "fastcleverseg" and r["split"] == split
    ]
    for r in rows:
        img = nib.load(data / r["path"] / r["image"])
        arr, aff = np.asarray(img.dataobj), img.affine
        spacing = np.asarray(img.header.get_zooms()[:3], float)
        lr = int(np.argmax(np.abs(aff[0, :3])))
        reference = in_plane_grades(openspine.analyze(openspine.Scan(arr, aff)), lr, spacing)
        if not reference:
            continue
        for kind, (arr_v, aff_v, lr_v) in volume_views(arr, aff).items():
            view = in_plane_grades(openspine.analyze(openspine.Scan(arr_v, aff_v)), lr_v, spacing)
            compare(reference, view, tallies[kind])
        print(f"{r['id']}: {len(reference)} graded discs as stored")


def survey_slices(data: Path, split: str, crops: int, seed: int, tallies: dict[str, dict[str, Any]]) -> None:
    """The SPIDER T2 slices: see the module docstring."""
    rows = [r for r in csv.DictReader((data / "index.csv").open()) if r["dataset"] == "spider" and r["split"] == split]
    for r in rows:
        img = nib.load(data / r["path"] / r["image"])
        arr, aff = np.asarray(img.dataobj), img.affine
        ref_result = openspine.analyze(openspine.Scan(arr, aff))
        reference = disc_grades(ref_result)
        if not reference:
            continue
        for var in detected_variants(ref_result.vertebrae, arr.shape, aff, crops, seed, r["id"])[1:]:
            (arr_v,), aff_v = apply_variant([arr], aff, var)
            kind = var.name.replace("+mirrored", "")
            compare(reference, disc_grades(openspine.analyze(openspine.Scan(arr_v, aff_v))), tallies[kind])
        # the same slice as its 8-bit PNG, at its true pixel size and with the pixel size estimated
        pixel = float(img.header.get_zooms()[0])
        in_pixels = disc_grades(ref_result, pixel)
        png = data / r["path"] / "image.png"
        for kind, spacing in (("picture", (pixel, pixel)), ("picture, pixel size estimated", "auto")):
            picture = openspine.analyze(png, pixel_spacing=spacing)
            compare(in_pixels, disc_grades(picture, pixel), tallies[kind])


def report(tallies: dict[str, dict[str, Any]], json_path: Path | None) -> None:
    """Print the figures of each kind of view (and write them to ``json_path``)."""
    figures = {}
    for kind, t in tallies.items():
        figures[kind] = {
            "discs_compared": t["discs"],
            "label_differs": t["label_differs"],
            "withheld": t["withheld"],
            "same_grade": {name: round(t["same"][name] / t["n"][name], 4) for name in sorted(t["n"])},
            "graded_in_both": dict(sorted(t["n"].items())),
            "pfirrmann_expected_grade_mean_abs_change": round(float(np.mean(t["pfirrmann_shift"])), 4)
            if t["pfirrmann_shift"]
            else None,
        }
        same = ", ".join(f"{k} {100 * v:.1f} %" for k, v in figures[kind]["same_grade"].items())
        shift = figures[kind]["pfirrmann_expected_grade_mean_abs_change"]
        print(
            f"{kind}: {t['discs']} discs compared ({t['label_differs']} with another label, {t['withheld']} with every "
            f"grade withheld, not compared; {t['n'].get('pfirrmann', 0)} Pfirrmann-graded in both); "
            f"same grade: {same}; expected Pfirrmann changes by {shift}"
        )
    if json_path:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
