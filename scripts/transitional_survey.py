"""Transitional anatomy, made by editing real slices: one lumbar segment more or fewer, labels and flags.

Five or six lumbar-type vertebrae above the sacrum occur in some 5-10 % of people (a lumbarised S1, a sacralised L5),
and the data here has no such scan. Each SPIDER T2 slice of the split is edited along the spine, guided by its own
detection (the disc centres it finds, rows superior→inferior):

* ``six``: the full-width band from the middle of the L2-L3 disc to the middle of the L3-L4 disc (the L3 body and one
  disc) is copied in below itself, the part above moved front-to-back so the copies join (the canvas grows);
* ``four``: that band is removed, the part above moved down to close the gap.

Each edited picture is analysed as a user's would be (its own pixel size). Printed per variant: how many slices got
the labels counted up from the sacrum (what a reader without a view of the whole spine would give too: in ``six`` the
original L1 is then "T12"), how many carry a labelling flag and the transitional flag, and the spread of the drift
of the network's level estimates (the two upper bodies' estimate minus label, less the two lowest lumbar ones'), the
only trace such anatomy leaves; ``--drift`` gives the same drift for the unedited slices, as a reference.

    python scripts/transitional_survey.py --data ../shared/data --split val

Synthetic evidence only: what the edits cannot show is how real transitional anatomy looks to the network.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from _survey import survey_parser  # scripts/_survey.py
from PIL import Image
from scipy import ndimage

from openspine.detection.detect import detect
from openspine.detection.flags import labelling_flagged
from openspine.io.image2d import picture_affine
from openspine.levels import DiscLevel, Level
from openspine.scan import Scan, ScanSource
from openspine.training.datasets.volumes import read_index

VARIANTS = ("six", "four")


def _picture(pixels: np.ndarray, spacing: tuple[float, ...]) -> Scan:
    """A picture's scan from its pixels, as reading a PNG with ``--pixel-spacing`` gives it."""
    return Scan(pixels[:, :, None], picture_affine(spacing[0], spacing[1]), ScanSource(format="image"))


def _disc_rows(scan: Scan) -> dict[DiscLevel, tuple[float, float]] | None:
    """The (row, column) centre of every labelled disc of an unedited slice, None when L2-L3 or L3-L4 is missing."""
    found = {g.level: g.centre[:2] for g in detect(scan.to_sagittal()).disc_geometry if g.level and g.centre}
    return found if {DiscLevel.L2_L3, DiscLevel.L3_L4} <= set(found) else None


def edit(pixels: np.ndarray, discs: dict[DiscLevel, tuple[float, float]], variant: str) -> np.ndarray:
    """``pixels`` with the L3 segment (mid L2-L3 disc to mid L3-L4 disc) doubled (``six``) or removed (``four``)."""
    (ra, ca), (rb, cb) = discs[DiscLevel.L2_L3], discs[DiscLevel.L3_L4]
    a, b = round(ra), round(rb)
    if variant == "six":
        upper = ndimage.shift(pixels[:b], (0, ca - cb), order=1, mode="nearest")
        return np.vstack([upper, pixels[a:b], pixels[b:]])
    upper = ndimage.shift(pixels[:a], (0, cb - ca), order=1, mode="nearest")
    return np.vstack([upper, pixels[b:]])


def _outcome(scan: Scan, variant: str | None) -> dict[str, object]:
    det = detect(scan.to_sagittal())
    labelled = [(g.label, float(g.level_estimate)) for g in det.vertebra_geometry if g.label is not None]
    lumbar = [lab for lab, _ in labelled if lab.region == "lumbar"]
    # counted up from the sacrum, the lumbar labels end at L5 above an S1 and run without a gap
    counted = bool(lumbar) and lumbar[-1] == Level.L5 and any(lab == Level.S1 for lab, _ in labelled)
    above_s1 = [(lab.ordinal, est) for lab, est in labelled if Level.T11.ordinal <= lab.ordinal <= Level.L5.ordinal]
    drift = None
    if len(above_s1) >= 4:
        res = [est - o for o, est in sorted(above_s1)]
        drift = float(np.mean(res[:2]) - np.mean(res[-2:]))
    return {
        "variant": variant,
        "counted_from_sacrum": counted,
        "labelling_flag": labelling_flagged(det.flags),
        "transitional_flag": any(f.startswith("transitional_vertebra_suspected") for f in det.flags),
        "drift": drift,
        "labels": [lab.value for lab, _ in labelled],
    }


def main() -> None:
    ap = survey_parser(__doc__)
    ap.add_argument("--json", type=Path, help="also write every outcome here")
    args = ap.parse_args()
    out: list[dict[str, object]] = []
    for row in read_index(args.data):
        if row["split"] != args.split or row["dataset"] != "spider":
            continue
        folder = args.data / row["path"]
        spacing = tuple(json.loads((folder / "meta.json").read_text())["pixel_spacing_mm"])
        pixels = np.asarray(Image.open(folder / "image.png").convert("L"), dtype=np.float32)
        scan = _picture(pixels, spacing)
        discs = _disc_rows(scan)
        if discs is None:
            continue
        out.append({"id": row["id"], **_outcome(scan, None)})
        for variant in VARIANTS:
            edited = np.clip(edit(pixels, discs, variant), 0, 255).astype(np.uint8)
            out.append({"id": row["id"], **_outcome(_picture(edited.astype(np.float32), spacing), variant)})
    print(f"SPIDER {args.split} T2 slices, as stored and edited (one lumbar segment more or fewer)")
    print(f"{'variant':10}{'slices':>8}{'counted':>9}{'flagged':>9}{'transit.':>9}   drift p5 / median / p95")
    shown: tuple[str | None, ...] = (None, *VARIANTS)
    for name in shown:
        rows = [o for o in out if o["variant"] == name]
        drifts = np.array([o["drift"] for o in rows if o["drift"] is not None], dtype=float)
        spread = " / ".join(f"{v:+.2f}" for v in np.percentile(drifts, [5, 50, 95])) if len(drifts) else "-"
        print(
            f"{name or 'as stored':10}{len(rows):8d}{sum(bool(o['counted_from_sacrum']) for o in rows):9d}"
            f"{sum(bool(o['labelling_flag']) for o in rows):9d}{sum(bool(o['transitional_flag']) for o in rows):9d}"
            f"   {spread}"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
