"""The recogniser's training pictures (numpy / scipy / nibabel; no torch): which items of the shared data folder,
read into the internal layout [S→I, A→P, L→R], with their plane-independent labels, and 2D cuts of them.

Used by :mod:`openspine.training.recognizer` (training) and :mod:`openspine.evaluation.recognition`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...errors import ScanReadError
from ...recognition.image import SEQUENCES

IGNORE = -1  # class target meaning "not known: no loss"
CERVICAL_IDS = ("sct-testing-t2", "sct-testing-t1")  # cervical crops: every picture of them is cervical
WHOLE_NECK_ID = "sct-example-t2"  # skull base → T5: cervical above C7, not below


# --- training pictures -----------------------------------------------------------------------------------------------
@dataclass
class Picture:
    """One training source: a 2D slice or a 3D volume in the internal layout [S→I, A→P, L→R] (uint8)."""

    id: str
    kind: str  # "spider-t2", "spider-t1", "volume", "sct"
    array: NDArray[np.uint8]  # (H, W) or (S, A, L)
    spacing: tuple[float, ...]
    sequence: int  # index into SEQUENCES or IGNORE
    cervical: int  # 1 / 0 for the whole picture; IGNORE when it depends on the crop (see c7_row)
    c7_row: float | None = None  # superior→inferior index of C7 (whole-neck volume)
    ap_spacing_range: tuple[float, float] | None = None  # uncertain A→P pixel size: drawn in this range


def _to_uint8(a: NDArray[Any]) -> NDArray[np.uint8]:
    if a.dtype == np.uint8:
        return a
    lo, hi = np.percentile(a, [0.0, 99.9])
    return np.clip((a.astype(np.float32) - lo) / max(float(hi - lo), 1e-6) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise ScanReadError(f"'{path.parent}' is not the shared data folder: it has no {path.name}")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_slice(path: Path) -> tuple[NDArray[Any], tuple[float, float]]:
    """A (H, W, 1) NIfTI slice in the internal layout → (image, (row mm, col mm))."""
    import nibabel as nib

    img: Any = nib.load(str(path))
    arr = np.asarray(img.dataobj)
    zooms = img.header.get_zooms()
    return arr[:, :, 0], (float(zooms[0]), float(zooms[1]))


def load_internal_volume(path: Path) -> tuple[NDArray[Any], tuple[float, float, float]]:
    """Any NIfTI volume → (array [S→I, A→P, L→R], spacing) via its closest canonical (RAS) orientation."""
    import nibabel as nib

    img: Any = nib.as_closest_canonical(nib.load(str(path)))
    a = np.asarray(img.dataobj)
    if a.ndim > 3:
        a = a[..., 0]
    z = img.header.get_zooms()
    arr = np.ascontiguousarray(np.transpose(a, (2, 1, 0))[::-1, ::-1, :])
    return arr, (float(z[2]), float(z[1]), float(z[0]))


def sequence_label(row: dict[str, str]) -> int:
    """The sequence class of an index row: VB2 / IVD / SCT T2 → T2, VB3 → other, T1 → T1, VB1 → unknown."""
    subset = row.get("subset", "")
    seq = row.get("sequence", "").strip()
    if subset == "VB3":
        return SEQUENCES.index("other")
    if subset == "VB1":
        return IGNORE
    if seq in ("T1", "T2"):
        return SEQUENCES.index(seq)
    return IGNORE


def c7_row(folder: Path) -> float:
    """C7's superior→inferior index in the whole-neck volume, interpolated between its cord labels C3 and T4."""
    arr, _ = load_internal_volume(folder / "points_vertlevel.nii.gz")
    pts = {int(arr[tuple(i)]): float(i[0]) for i in np.argwhere(arr > 0)}
    if 3 not in pts or 11 not in pts:
        raise ScanReadError(f"'{folder}': expected cord point labels 3 (C3) and 11 (T4), found {sorted(pts)}")
    return pts[3] + (7 - 3) * (pts[11] - pts[3]) / 8.0


def load_pictures(data: Path, split: str = "train", exclude: tuple[str, ...] = ()) -> list[Picture]:
    """Every training picture of ``split`` (needs nibabel); ``exclude`` drops items (and SPIDER patients) by id."""
    data = Path(data)
    rows = _read_csv(data / "index.csv")
    out: list[Picture] = []
    for row in rows:
        if row["split"] != split or row["id"] in exclude:
            continue
        folder = data / row["path"]
        if row["dataset"] == "spider":
            img, sp = load_slice(folder / row["image"])
            out.append(Picture(row["id"], "spider-t2", _to_uint8(img), sp, SEQUENCES.index("T2"), 0))
        elif row["dataset"] == "fastcleverseg":
            vol, sp3 = load_internal_volume(folder / row["image"])
            out.append(Picture(row["id"], "volume", _to_uint8(vol), sp3, sequence_label(row), 0))
        elif row["dataset"] == "sct":
            vol, sp3 = load_internal_volume(folder / row["image"].split(";")[0])
            seq = SEQUENCES.index("T1") if row["id"].endswith("t1") else SEQUENCES.index("T2")
            if row["id"] == WHOLE_NECK_ID:
                # the stored A→P voxel size (1 mm) makes the neck look twice as deep as it is; ~0.5 mm fits the
                # anatomy, so both are drawn
                out.append(Picture(row["id"], "sct", _to_uint8(vol), sp3, seq, IGNORE, c7_row(folder), (0.5, 1.0)))
            else:
                cerv = 1 if row["id"] in CERVICAL_IDS else 0
                out.append(Picture(row["id"], "sct" if cerv else "volume", _to_uint8(vol), sp3, seq, cerv))
    t1_path = data / "spider" / "t1.csv"
    if t1_path.is_file():
        for row in _read_csv(t1_path):
            if row["split"] != split or row["id"] in exclude or f"spider-{row['patient_id']}" in exclude:
                continue
            img, sp = load_slice(data / row["path"] / row["image"])
            out.append(Picture(row["id"], "spider-t1", _to_uint8(img), sp, SEQUENCES.index("T1"), 0))
    if not out:
        raise ScanReadError(f"no {split} items found in '{data}'")
    return out


# --- one picture → one 2D cut --------------------------------------------------------------------------------------
def cut(pic: Picture, plane: str, index: int) -> tuple[NDArray[np.uint8], tuple[float, float], str]:
    """A 2D slice of a volume picture in display layout (see :func:`cut_array`)."""
    return cut_array(pic.array, pic.spacing, plane, index)


def cut_array(
    a: NDArray[Any], s: tuple[float, ...], plane: str, index: int
) -> tuple[NDArray[Any], tuple[float, float], str]:
    """A 2D slice of a volume [S→I, A→P, L→R] in display layout, its pixel size and the in-plane row axis name.

    sagittal: rows S→I, cols A→P; axial: rows A→P, cols L→R; coronal: rows S→I, cols L→R.
    """
    if plane == "sagittal":
        return a[:, :, index], (s[0], s[1]), "SI"
    if plane == "axial":
        return a[index, :, :], (s[1], s[2]), "AP"
    return a[:, index, :], (s[0], s[2]), "SI"


def slice_axis(plane: str) -> int:
    """The array axis a cut of ``plane`` indexes (see :func:`cut_array`)."""
    return {"sagittal": 2, "axial": 0, "coronal": 1}[plane]
