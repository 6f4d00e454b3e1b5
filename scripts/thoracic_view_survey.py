"""Views that show no lumbar spine: each volume cut just above L1 (or above T12), labels and flags.

A thoracic-only field of view (the middle station of a whole-spine study) is outside what the detector was trained
on: no sacrum anchors the labels, and the level estimates of thoracic bodies are compressed. The volumes of the
split whose masks label T11, T12 and L1 (FastCleverSeg VB2) are cut along the superior–inferior axis so that only
what lies above L1 (``above-L1``: T12, T11 and whatever the field of view holds above) or above T12 (``above-T12``)
stays in view, and each view is analysed as a user's scan would be (labels outside the detector's scope withheld).
A view is right when every detected body inside a labelled mask carries that mask's level and at least one does,
withheld when none of them carries a label; printed per view: the labels and whether the labelling is flagged.

    python scripts/thoracic_view_survey.py --data ../shared/data --split train

``--upper-windows`` instead slides windows 60 to 170 mm tall, 10 mm apart (``--step-mm``), down ``sct-example-t2``
(skull base to about T5: no lumbar vertebra in it), as stored and mirrored, and counts the windows whose bodies get a
lumbar or sacral label (each such label is wrong), flagged or not, and graded or not:

    python scripts/thoracic_view_survey.py --data ../shared/data --upper-windows

``--coarse MM …`` first resamples that volume as a clinical scanner might have stored it: 3 mm thick sagittal slices
(the mean of the stored 1 mm ones) and MM mm in-plane pixels (smoothed, then sampled), one pass per MM:

    python scripts/thoracic_view_survey.py --data ../shared/data --upper-windows --coarse 1.2 1.4 1.6 \
        --heights 60 70 80 90 100 110 120 130 140 150 160 170

``--picture-windows`` cuts windows 60 to 200 mm tall, 10 mm apart, from three sagittal slices of that volume (the
middle one and 2 mm to either side), saves each as an 8-bit picture and reads it with ``--pixel-spacing auto``, as a
picture from a paper or a teaching file comes. ``--unknown-neck`` reads every image as one whose cervical field of
view the image recogniser does not know (its cervical probability taken as 0): the recogniser was trained on this
volume, and left out of its training each of the two cervical patients was recognised in only 3 of 42 crops, so a
new patient's neck must be caught by what the bodies show:

    python scripts/thoracic_view_survey.py --data ../shared/data --picture-windows --unknown-neck [--upscale 2]

``--columns FIRST END`` cuts each picture window to those columns (the front of the body is on the right; ``64 264``
keeps the spine and little else, as a figure is often cut):

    python scripts/thoracic_view_survey.py --data ../shared/data --picture-windows --upscale 2 --columns 64 264 \
        --own-contrast

``--own-contrast`` exports each window at its own contrast (its 99.5th percentile white) rather than the slice's.

``--upscale F`` enlarges each window F times (bicubic) before it is saved: the volume's 1 mm pixels make small
pictures, whose estimated pixels are coarser than the grader reads; pictures in papers and teaching files are larger.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from _survey import labelled_volumes, survey_parser  # scripts/_survey.py

import openspine
from openspine.evaluation import detection as ev
from openspine.levels import Level
from openspine.scan import Scan

CUTS = {"above-L1": Level.L1, "above-T12": Level.T12}  # the view ends just above this body


def _keep_above(mask: np.ndarray, affine: np.ndarray, level: Level) -> tuple[int, int] | None:
    """The index range along the superior–inferior axis that lies above ``level``'s mask (None: no such body)."""
    ax, superior_first = ev.si_axis(affine)
    other = tuple(a for a in range(3) if a != ax)
    rows = np.nonzero((mask == level.label_value).any(axis=other))[0]
    if rows.size == 0:
        return None
    keep = (0, int(rows.min())) if superior_first else (int(rows.max()) + 1, mask.shape[ax])
    return keep if keep[1] > keep[0] else None


UPPER_SPINE = "sct/sct-example-t2/image.nii.gz"  # skull base to about T5
WINDOWS_MM = (60, 80, 110, 140, 170)


def coarse(image: np.ndarray, affine: np.ndarray, slice_mm: float, pixel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` with ``slice_mm`` thick sagittal slices (the mean of as many stored ones) and ``pixel_mm`` in-plane
    pixels (smoothed against aliasing, then sampled at the new pixel centres), and its affine."""
    from scipy import ndimage

    from openspine import geometry

    arr, aff = np.asarray(image, np.float32), np.asarray(affine, float)
    lr = next(i for i, c in enumerate(geometry.axcodes(aff)) if c in "LR")
    k = max(1, round(slice_mm / float(np.linalg.norm(aff[:3, lr]))))
    moved = np.moveaxis(arr, lr, 0)
    n = moved.shape[0] // k
    arr = np.moveaxis(moved[: n * k].reshape(n, k, *moved.shape[1:]).mean(axis=1), 0, lr)
    scale = np.eye(4)
    scale[lr, lr], scale[lr, 3] = k, (k - 1) / 2  # new slice j: the mean of old k*j ... k*j+k-1
    aff = aff @ scale
    for ax in (a for a in range(3) if a != lr):
        f = pixel_mm / float(np.linalg.norm(aff[:3, ax]))
        sigma = [0.0, 0.0, 0.0]
        sigma[ax] = 0.5 * float(np.sqrt(max(f * f - 1.0, 0.0)))
        arr = ndimage.gaussian_filter(arr, sigma)
        centres = (np.arange(round(arr.shape[ax] / f)) + 0.5) * f - 0.5
        grid = np.meshgrid(*[centres if i == ax else np.arange(arr.shape[i]) for i in range(3)], indexing="ij")
        arr = ndimage.map_coordinates(arr, grid, order=1, mode="nearest")
        scale = np.eye(4)
        scale[ax, ax], scale[ax, 3] = f, 0.5 * f - 0.5
        aff = aff @ scale
    return arr, aff


def count_window(result: Any, tally: Counter[str]) -> tuple[list[str], bool, bool, bool]:
    """Add one window's analysis to ``tally``; its labels, and whether any is lumbar or sacral (each such label is
    wrong here), whether the labelling is flagged, whether any disc is graded."""
    labels = [v.label.value for v in result.vertebrae if v.label is not None]
    lumbar = any(label.startswith(("L", "S")) for label in labels)
    graded = any(g.available for d in result.discs for g in d.grades.values())
    flagged = ev.labelling_flagged(result.flags)
    tally["windows"] += 1
    tally["lumbar or sacral labels"] += lumbar
    tally["... flagged"] += lumbar and flagged
    tally["... not flagged"] += lumbar and not flagged
    tally["... graded"] += lumbar and graded
    tally["refused (out of scope)"] += result.out_of_scope is not None
    return labels, lumbar, flagged, graded


def upper_windows(
    data: Path, step_mm: float = 10.0, pixel_mm: float | None = None, heights: tuple[int, ...] = WINDOWS_MM
) -> int:
    """Windows of a cervical and upper thoracic volume: how many get lumbar or sacral labels, flagged, graded."""
    img = nib.load(data / UPPER_SPINE)
    image, affine = np.asarray(img.dataobj), np.asarray(img.affine)
    if pixel_mm is not None:
        image, affine = coarse(image, affine, 3.0, pixel_mm)
        print(f"3 mm slices, {pixel_mm:g} mm pixels: {image.shape}")
    ax, superior_first = ev.si_axis(affine)
    step = float(np.linalg.norm(affine[:3, ax]))
    n = image.shape[ax]
    tally: Counter[str] = Counter()
    for height in heights:
        rows = max(1, round(height / step))
        for start in range(0, max(1, n - rows + 1), max(1, round(step_mm / step))):
            for mirrored in (False, True):
                name = f"{height} mm, {start * step:.0f} mm from the {'top' if superior_first else 'bottom'}"
                variant = ev.Variant(name, keep=(start, min(n, start + rows)), mirrored=mirrored)
                (img_v,), aff_v = ev.apply_variant([image], affine, variant)
                labels, lumbar, flagged, graded = count_window(openspine.analyze(Scan(img_v, aff_v)), tally)
                if lumbar:
                    print(f"{variant.name}{' mirrored' if mirrored else ''}: [{' '.join(labels)}]"
                          f"{', flagged' if flagged else ''}{', graded' if graded else ''}")  # fmt: skip
    print(", ".join(f"{k} {v}" for k, v in tally.items()))
    return 0


PICTURE_WINDOWS_MM = (60, 80, 100, 120, 140, 170, 200)


def picture_windows(
    data: Path, upscale: float = 1.0, columns: tuple[int, int] | None = None, own_contrast: bool = False
) -> int:
    """Windows of the cervical and upper thoracic volume's middle slices as pictures read at an estimated pixel
    size: how many get lumbar or sacral labels, flagged, graded."""
    import tempfile

    from PIL import Image

    img = nib.as_closest_canonical(nib.load(data / UPPER_SPINE))  # RAS: arr[x] is a sagittal slice
    volume = np.asarray(img.dataobj, dtype=np.float32)
    row_mm = float(img.header.get_zooms()[2])
    tally: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "window.png"
        for dx in (-2, 0, 2):
            plane = np.rot90(volume[volume.shape[0] // 2 + dx])  # head up
            plane = (255 * np.clip(plane / np.percentile(plane, 99.5), 0, 1)).astype(np.uint8)
            if columns is not None:  # cut close around the spine, as a figure is
                plane = plane[:, columns[0] : columns[1]]
            for height in PICTURE_WINDOWS_MM:
                rows = round(height / row_mm)
                for start in range(0, max(1, plane.shape[0] - rows + 1), round(10 / row_mm)):
                    cut = plane[start : start + rows]
                    if own_contrast:  # each window exported at its own contrast (its 99.5th percentile white)
                        high = max(float(np.percentile(cut, 99.5)), 1.0)
                        cut = (255 * np.clip(cut / high, 0, 1)).astype(np.uint8)
                    window = Image.fromarray(cut)
                    if upscale != 1.0:
                        size = (round(window.size[0] * upscale), round(window.size[1] * upscale))
                        window = window.resize(size, Image.Resampling.BICUBIC)
                    window.save(path)
                    labels, lumbar, flagged, graded = count_window(openspine.analyze(path, pixel_spacing="auto"), tally)
                    if lumbar and (graded or not flagged):
                        print(f"slice {dx:+d}, {height} mm, {start * row_mm:.0f} mm from the top: [{' '.join(labels)}]"
                              f"{', flagged' if flagged else ''}{', graded' if graded else ''}")  # fmt: skip
    print(", ".join(f"{k} {v}" for k, v in tally.items()))
    return 0


def unknown_neck() -> None:
    """Take every image's cervical probability as 0 (a neck the image recogniser was not trained on)."""
    from dataclasses import replace

    from openspine.recognition import model

    run = model._run

    def without_the_neck(*args: object, **kwargs: object) -> model.ImageRecognition:
        return replace(run(*args, **kwargs), cervical_probability=0.0)  # type: ignore[arg-type]

    model._run = without_the_neck  # type: ignore[assignment]


def main() -> int:
    ap = survey_parser(__doc__)
    ap.add_argument("--upper-windows", action="store_true", help="windows of a cervical/upper thoracic volume")
    ap.add_argument("--step-mm", type=float, default=10.0, help="how far apart the upper windows start (mm)")
    ap.add_argument("--coarse", type=float, nargs="+", default=None, help="3 mm slices and these pixel sizes (mm)")
    ap.add_argument("--heights", type=int, nargs="+", default=WINDOWS_MM, help="window heights (mm)")
    ap.add_argument("--picture-windows", action="store_true", help="windows of it as pictures, pixel size auto")
    ap.add_argument("--upscale", type=float, default=1.0, help="picture windows enlarged this many times")
    ap.add_argument("--unknown-neck", action="store_true", help="take every cervical probability as 0")
    ap.add_argument("--own-contrast", action="store_true", help="each picture window at its own contrast")
    ap.add_argument("--columns", type=int, nargs=2, default=None, metavar=("FIRST", "END"),
                    help="picture windows cut to these columns (front on the right)")  # fmt: skip
    args = ap.parse_args()
    if args.unknown_neck:
        unknown_neck()
    if args.picture_windows:
        columns = (args.columns[0], args.columns[1]) if args.columns else None
        return picture_windows(args.data, args.upscale, columns, args.own_contrast)
    if args.upper_windows:
        for pixel_mm in args.coarse or [None]:
            upper_windows(args.data, args.step_mm, pixel_mm, tuple(args.heights))
        return 0
    tally: Counter[tuple[str, str]] = Counter()
    for row in labelled_volumes(args.data, args.split):
        item, folder = row["id"], args.data / row["path"]
        img = nib.load(folder / "image.nii.gz")
        mask = np.asarray(nib.load(folder / "mask.nii.gz").dataobj).astype(np.int16)
        image = np.asarray(img.dataobj)
        if not {Level.T11.label_value, Level.T12.label_value, Level.L1.label_value} <= set(np.unique(mask).tolist()):
            continue
        for name, level in CUTS.items():
            keep = _keep_above(mask, img.affine, level)
            if keep is None:
                continue
            (img_v, msk_v), aff_v = ev.apply_variant([image, mask], img.affine, ev.Variant(name, keep=keep))
            result = openspine.analyze(Scan(img_v, aff_v))
            scored = ev.score_volume(result, msk_v, aff_v, True, ev.ScanResult(item, "", True))
            right = ev.volume_case_right(scored)
            flagged = ev.labelling_flagged(result.flags)
            labelled_in_mask = len(scored.level_offsets)  # bodies inside a labelled mask that carry a label
            if right:
                verdict = "right"
            elif scored.level_checked == 0:
                verdict = "no body in a mask"
            elif labelled_in_mask == 0:
                verdict = "withheld"  # no label given (e.g. fewer than three bodies: too little to count from)
            else:
                verdict = "wrong"
            tally[(name, verdict)] += 1
            tally[(name, f"{verdict}, flagged")] += flagged
            labels = " ".join(v.label.value if v.label else "-" for v in result.vertebrae)
            print(f"{item} {name}: {len(result.vertebrae)} bodies [{labels}] {verdict}{', flagged' if flagged else ''}")
    for name in CUTS:
        parts = [f"{k[1]} {v}" for k, v in sorted(tally.items()) if k[0] == name]
        print(f"{args.split} {name}: " + ", ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
