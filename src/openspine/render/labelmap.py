"""labels.nii.gz: a label map in the input's own voxel grid and affine, each vertebral body filled with its
level's value and each disc with 100 + the value of the vertebra above (see docs/outputs.md for the mapping
to VerSe, SPINEPS and TotalSpineSeg values). Bodies of unknown level get 200 + their rank from the top among the
bodies, discs of unknown level 150 + their rank from the top among the discs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from .. import geometry
from .._logging import get_logger
from ..scan import SagittalView

if TYPE_CHECKING:
    from ..results import AnalysisResult, SliceOutline

log = get_logger("render")

UNKNOWN_LEVEL_BASE = 200
# discs of unknown level: above every disc value (100 + v, v at most 28) and below the bodies' 200, within uint8
UNKNOWN_DISC_BASE = 150
SCANNER_ANATOMY, ALIGNED_ANATOMY = 1, 2  # NIfTI xform codes
MAX_COORDINATE = 1e6  # voxels: an outline corner farther out than this is not drawn (a broken outline)


def drawable(points: NDArray[np.floating]) -> bool:
    """Whether outline corners (internal voxel coordinates) can be drawn: finite and not absurdly far out."""
    p = np.asarray(points, dtype=float)
    return p.size > 0 and bool(np.all(np.isfinite(p))) and bool(np.all(np.abs(p) < MAX_COORDINATE))


def _fill(target: NDArray[np.uint8], view: SagittalView, outlines: tuple[SliceOutline, ...], value: int) -> None:
    """Fill each outline's quadrilateral on its slice; slices between two outlined ones (the detector looks
    at a subset of thin slices) take the polygon of the nearest outlined slice."""
    rows, cols, n = target.shape
    polygons: dict[int, list[tuple[float, float]]] = {}
    for o in outlines:
        pts = np.array([view.from_input_voxel(np.array(c, dtype=float)) for c in o.corners_voxel], dtype=float)
        if not drawable(pts):
            log.debug("label %d: outline on slice %d not drawn (corners not finite or far out)", value, o.slice_index)
            continue
        k = round(float(np.mean(pts[:, 2])))
        if 0 <= k < n:
            polygons[k] = [(float(c), float(r)) for r, c in pts[:, :2]]
    if not polygons:
        return
    ks = np.array(sorted(polygons))
    for k in range(int(ks[0]), int(ks[-1]) + 1):
        nearest = int(ks[np.argmin(np.abs(ks - k))])
        mask = Image.new("L", (cols, rows), 0)
        ImageDraw.Draw(mask).polygon(polygons[nearest], fill=1, outline=1)
        m = np.asarray(mask, dtype=bool)
        target[:, :, k][m & (target[:, :, k] == 0)] = value


def label_map_internal(view: SagittalView, result: AnalysisResult) -> NDArray[np.uint8]:
    """The label map in the internal sagittal layout."""
    out = np.zeros(view.scan.shape, dtype=np.uint8)
    for rank, v in enumerate(result.vertebrae, start=1):
        _fill(out, view, v.outlines, v.label.label_value if v.label else UNKNOWN_LEVEL_BASE + rank)
    for rank, d in enumerate(result.discs, start=1):
        _fill(out, view, d.outlines, d.level.label_value if d.level else UNKNOWN_DISC_BASE + rank)
    return out


def label_map(view: SagittalView, result: AnalysisResult) -> NDArray[np.uint8]:
    """The label map on the input's voxel grid (same shape and affine as the input array)."""
    internal = label_map_internal(view, result)
    src = view.input
    m = np.linalg.inv(view.scan.affine) @ src.affine  # input voxel -> internal voxel
    if np.allclose(m[:3, :3], np.rint(m[:3, :3]), atol=1e-6):  # permuted/flipped: exact inverse
        arr, _ = geometry.reorient(internal, view.scan.affine, src.orientation)
        return np.ascontiguousarray(arr, dtype=np.uint8)
    from scipy import ndimage  # resliced oblique volume: nearest-neighbour back onto the input grid

    return ndimage.affine_transform(internal, m[:3, :3], offset=m[:3, 3], output_shape=src.shape, order=0)


def write_label_map(view: SagittalView, result: AnalysisResult) -> bytes:
    """labels.nii.gz as bytes (written atomically by the caller)."""
    import gzip

    import nibabel as nib

    labels = label_map(view, result)
    source = view.input.source
    if source.stored_shape is not None and int(np.prod(source.stored_shape)) == labels.size:
        # a 2D file, or a 4D one with a last axis of 1: the label map in its shape, so that arrays of the two match
        labels = labels.reshape(source.stored_shape)
    img = nib.Nifti1Image(labels, view.input.affine)
    img.header.set_xyzt_units("mm")
    stored = source.nifti_transforms
    if stored is not None and np.allclose(stored.affine, view.input.affine, rtol=0.0, atol=1e-6):
        # a NIfTI input's sform and qform, codes included, as stored: a viewer that resolves the input by either
        # transform (they may disagree) places the label map on it
        header = img.header
        for key, value in stored.fields.items():
            header[key] = value
        # the image's affine is nibabel's choice of the two, or nibabel would write it over the sform when saving
        img = nib.Nifti1Image(labels, header.get_best_affine(), header=header)
    else:
        # an input whose header gives no orientation (NIfTI sform and qform codes 0) was read in an assumed frame:
        # the label map claims none either, so a viewer places it exactly as it places the input (voxel sizes kept).
        # A picture's frame is anatomical (head up, front left) but starts at its top-left corner, no scanner's:
        # code 2, aligned anatomy, not 1, scanner anatomy (user test)
        code = 0 if source.orientation_unknown else ALIGNED_ANATOMY if source.format == "image" else SCANNER_ANATOMY
        img.set_qform(view.input.affine, code=code)
        img.set_sform(view.input.affine, code=code)
    # no time stamp in the gzip header: identical runs write identical files (checksum-based pipelines)
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)
