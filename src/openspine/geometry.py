"""Pure geometry on 4×4 affines in RAS+ millimetres.

World convention: RAS+ millimetres, as in NIfTI/nibabel: +x points to the patient's Right, +y Anterior,
+z Superior. DICOM's LPS patient coordinates are converted at the file boundary by negating x and y.

Internal layout: every analysis runs on a sagittal array whose axes point (Inferior, Posterior, Right):
``arr[:, :, k]`` is a sagittal slice with the head at the top and anterior on the left; ``k`` runs from the
patient's left to right.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

INTERNAL_CODES: tuple[str, str, str] = ("I", "P", "R")
WORLD_CONVENTION = "RAS+ mm (x: patient right, y: anterior, z: superior), as NIfTI/nibabel"

_POSITIVE = ("R", "A", "S")
_NEGATIVE = ("L", "P", "I")
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# no spine image is wider or taller than this (a whole-spine sagittal series is about 900 mm tall): a larger extent
# means a pixel size in the wrong unit (70 for 0.70 mm), which would also make the detector's grid huge
MAX_EXTENT_MM = 2000.0


def spacing(affine: NDArray[np.floating]) -> tuple[float, float, float]:
    """Voxel size along each array axis (mm), from the affine's column norms."""
    return tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))  # type: ignore[return-value]


def axis_directions(affine: NDArray[np.floating]) -> NDArray[np.float64]:
    """Unit world direction of each array axis, as columns."""
    m = np.asarray(affine, dtype=float)[:3, :3]
    return m / np.linalg.norm(m, axis=0, keepdims=True)


def axcodes(affine: NDArray[np.floating]) -> tuple[str, str, str]:
    """Orientation codes: the world direction each array axis points to, e.g. ('I', 'P', 'R').

    Each axis gets the world axis it is closest to; ties and oblique axes resolve greedily by the largest
    component, so every world axis is used once.
    """
    dirs = axis_directions(affine)
    codes: list[str] = ["", "", ""]
    used: set[int] = set()
    order = np.argsort(-np.max(np.abs(dirs), axis=0))  # most clearly aligned axes first
    for ax in order:
        comps = np.abs(dirs[:, ax]).copy()
        for u in used:
            comps[u] = -1.0
        world = int(np.argmax(comps))
        used.add(world)
        codes[ax] = _POSITIVE[world] if dirs[world, ax] > 0 else _NEGATIVE[world]
    return codes[0], codes[1], codes[2]


def _code_axis(code: str) -> tuple[int, int]:
    if code in _POSITIVE:
        return _POSITIVE.index(code), 1
    return _NEGATIVE.index(code), -1


def reorient(
    array: NDArray[np.generic], affine: NDArray[np.floating], target: tuple[str, str, str] = INTERNAL_CODES
) -> tuple[NDArray[np.generic], NDArray[np.float64]]:
    """Permute and flip axes so the array points along ``target`` codes; the affine follows exactly.

    No interpolation: a voxel's world position is unchanged, so results map back to the input grid exactly.
    """
    affine = np.asarray(affine, dtype=float)
    src = axcodes(affine)
    src_world = [_code_axis(c) for c in src]
    perm: list[int] = []
    flips: list[bool] = []
    for code in target:
        world, sign = _code_axis(code)
        ax = next(i for i, (w, _) in enumerate(src_world) if w == world)
        perm.append(ax)
        flips.append(src_world[ax][1] != sign)
    out = np.transpose(array, perm)
    # voxel-index transform: new index n -> old index o, o[perm[a]] = n[a] or (size-1-n[a]) when flipped
    t = np.zeros((4, 4))
    t[3, 3] = 1.0
    for new_ax, old_ax in enumerate(perm):
        size = array.shape[old_ax]
        if flips[new_ax]:
            t[old_ax, new_ax] = -1.0
            t[old_ax, 3] = size - 1
        else:
            t[old_ax, new_ax] = 1.0
    flip_axes = tuple(a for a, f in enumerate(flips) if f)
    if flip_axes:
        out = np.flip(out, axis=flip_axes)
    return np.ascontiguousarray(out), affine @ t


def apply_affine(affine: NDArray[np.floating], points: NDArray[np.floating]) -> NDArray[np.float64]:
    """Map (N, 3) points (or one point) through a 4×4 affine."""
    pts = np.asarray(points, dtype=float)
    single = pts.ndim == 1
    pts2 = np.atleast_2d(pts)
    out = pts2 @ np.asarray(affine, dtype=float)[:3, :3].T + np.asarray(affine, dtype=float)[:3, 3]
    return out[0] if single else out


def matrix_text(matrix: NDArray[np.floating]) -> str:
    """A matrix (an affine) as one line of text, for one-line messages: ``[[1, 0, 0, 0], …, [0, 0, 0, 1]]``."""
    return "[" + ", ".join("[" + ", ".join(f"{float(x):g}" for x in row) + "]" for row in np.atleast_2d(matrix)) + "]"


def reversed_axis(affine: NDArray[np.floating], axis: int, length: int) -> NDArray[np.float64]:
    """The affine that reads an array's ``axis`` (of ``length`` voxels) the other way: voxel i of the result lies
    where voxel ``length - 1 - i`` lay. With the array reversed too, the world image is unchanged; with the array
    kept, the image is mirrored in the world."""
    t = np.eye(4)
    t[axis, axis] = -1.0
    t[axis, 3] = length - 1
    return np.asarray(affine, dtype=float) @ t


def obliquity_degrees(affine: NDArray[np.floating]) -> float:
    """The largest angle between an array axis and the world axis nearest to it."""
    dirs = np.abs(axis_directions(affine))
    return float(np.degrees(np.arccos(np.clip(dirs.max(axis=0).min(), -1.0, 1.0))))


def shear_degrees(affine: NDArray[np.floating]) -> tuple[float, int, int]:
    """How far the voxel axes of an affine are from perpendicular: the largest angle, in degrees, by which two
    axes miss 90°, and the two axes (array axis numbers, 0–2). 0 for any rotation, flip or scaling."""
    dirs = axis_directions(affine)
    worst = (0.0, 0, 1)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        angle = float(np.degrees(np.arcsin(min(1.0, abs(float(dirs[:, a] @ dirs[:, b]))))))
        worst = max(worst, (angle, a, b), key=lambda w: w[0])
    return worst


def resample_to_internal(
    array: NDArray[np.generic], affine: NDArray[np.floating], spacing_mm: float
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Reslice a volume onto a world-aligned grid in the internal layout (linear interpolation).

    Used only for oblique near-isotropic volumes, where no axis permutation gives sagittal slices.
    The output grid covers the input's bounding box; voxels outside the input are 0.
    """
    from scipy import ndimage

    affine = np.asarray(affine, dtype=float)
    corners = np.array([[i, j, k] for i in (0, array.shape[0] - 1) for j in (0, array.shape[1] - 1)
                        for k in (0, array.shape[2] - 1)], dtype=float)  # fmt: skip
    world = apply_affine(affine, corners)
    lo, hi = world.min(axis=0), world.max(axis=0)
    # internal axes point to I, P, R: start at the superior, anterior, left corner of the box
    out_aff = np.eye(4)
    out_aff[:3, :3] = np.array([[0, 0, 1], [0, -1, 0], [-1, 0, 0]], dtype=float) * spacing_mm
    out_aff[:3, 3] = [lo[0], hi[1], hi[2]]
    extent = hi - lo
    shape = (
        int(np.floor(extent[2] / spacing_mm)) + 1,
        int(np.floor(extent[1] / spacing_mm)) + 1,
        int(np.floor(extent[0] / spacing_mm)) + 1,
    )
    m = np.linalg.inv(affine) @ out_aff
    out = ndimage.affine_transform(
        np.asarray(array, dtype=np.float32), m[:3, :3], offset=m[:3, 3], output_shape=shape, order=1, cval=0.0
    )
    return out, out_aff
