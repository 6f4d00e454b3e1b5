"""The one image type of openspine: a voxel array with a 4×4 affine in RAS+ millimetres.

Spacing and orientation are derived from the affine, never stored twice. :meth:`Scan.to_sagittal` gives the
internal analysis layout (see :mod:`openspine.geometry`) together with the exact map back to the input grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import geometry
from .errors import ImageContentError, NoContrastError, NotSagittalError, OutOfScopeError, UnsupportedScanError

# no MR image has voxels smaller than this (mm): a smaller size is a header in another unit, or broken
MIN_VOXEL_MM = 0.001
# Thick or thin stacks tilted by more than this are resliced rather than permuted (3D volumes only).
OBLIQUE_RESLICE_DEGREES = 20.0
# A hand-built affine whose voxel axes are further than this from perpendicular is refused: the analysis layout is
# reached by permuting and flipping axes, which cannot undo a shear (DICOM orientations rounded to a few decimals and
# oblique scans are within a small fraction of a degree)
MAX_SHEAR_DEGREES = 1.0
# Voxel values larger than this in magnitude are scaled down by a power of two before analysis (Scan.in_safe_range):
# float32 sums and differences of values near its largest, 3.4e38 (a scan scaled by 1e36), overflow.
MAX_ANALYSED_MAGNITUDE = 2.0**64
# float32 holds every integer up to this magnitude exactly: integer voxels beyond it are shifted (Scan.in_safe_range)
FLOAT32_EXACT_INTEGERS = 2**24


@dataclass(frozen=True)
class NiftiTransforms:
    """A NIfTI header's two transforms as stored (the raw header fields of the sform, the qform and their codes),
    and the affine the scan was read with. The label map copies these fields, so a viewer that places the input by
    either transform places the label map on it."""

    fields: dict[str, Any]
    affine: NDArray[np.float64]


@dataclass(frozen=True)
class ScanSource:
    """Where a scan came from and what its header says. What it serialises (:meth:`to_dict`, result.json) holds no
    patient identifier; ``dicom_headers`` (never serialised) keeps the source headers whole, because the DICOM
    SEG/SR exports must carry the patient and study of the images they reference."""

    path: str | None = None
    format: str = "array"  # "nifti", "dicom", "image", "array"
    series_uid: str | None = None
    series_description: str | None = None
    series_number: int | None = None
    modality: str | None = None
    sequence_hint: str | None = None  # "T1", "T2", "STIR", ... guessed from header text
    manufacturer: str | None = None
    study_uid: str | None = None
    frame_of_reference_uid: str | None = None
    # why the file's header gives no orientation (a NIfTI whose sform and qform codes are 0), read as a picture is;
    # None when the header gives one
    orientation_unknown: str | None = None
    # what the header says that the result must flag (a NIfTI whose sform and qform disagree): whole flags, which
    # the analysis adds to the result's. Never serialised (the flags are)
    header_flags: tuple[str, ...] = field(default=(), compare=False)
    # a NIfTI's transforms as stored, for the label map; never serialised
    nifti_transforms: NiftiTransforms | None = field(default=None, repr=False, compare=False)
    # a file stored with other than three axes (a 2D NIfTI, a 4D one with a last axis of 1): its shape, so that the
    # label map is written in it; never serialised
    stored_shape: tuple[int, ...] | None = field(default=None, repr=False, compare=False)
    extra: dict[str, Any] = field(default_factory=dict)
    # why the file is no scan to analyse though it reads as one (a picture openspine wrote itself, its overlay), or
    # None; check_analysable refuses it as out of scope. Never serialised
    not_a_scan: str | None = field(default=None, compare=False)
    # a picture: which of its pixels are in colour (drawings, an overlay; grey MR has none), or None for one stored in
    # grey. Never serialised
    colour_mask: Any = field(default=None, repr=False, compare=False)
    # DICOM input: the headers (no pixel data) of the slices in array order, for the exports that reference them
    # (DICOM SEG/SR); never serialised
    dicom_headers: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        hidden = (
            "extra", "dicom_headers", "not_a_scan", "colour_mask", "header_flags", "nifti_transforms", "stored_shape",
        )  # fmt: skip
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in hidden}
        out.update(self.extra)
        return out


_CONVERTED_PICTURE_HINT = (
    " Its header keeps the default orientation that converting a picture to NIfTI writes: if it is a sagittal "
    "picture, analyse the PNG/JPEG itself with --pixel-spacing (ROW_MM COL_MM, or auto), or give the file its real "
    "orientation."
)
# the same for a Scan built in Python, which has no header and no command line (a notebook user had been told both)
_ARRAY_HINT = (
    " Its affine is unrotated (array axes along x, y, z: e.g. numpy.eye(4)): if the array is a sagittal slice, give "
    "the Scan the affine of its voxels in mm (nibabel's img.affine), or analyse the picture's file with "
    "pixel_spacing=(ROW_MM, COL_MM) or 'auto'."
)


def _one_value_repeated(arr: NDArray[Any]) -> bool:
    """Whether ``arr`` is one value broadcast over its shape (every stride 0): no voxels of its own."""
    return bool(arr.size) and not any(arr.strides)


@dataclass(frozen=True)
class _Repeated:
    """A pickled array of one value repeated over a shape (:meth:`Scan.__getstate__`)."""

    value: NDArray[Any]
    shape: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Scan:
    """A 3D voxel array (2D images have a third axis of length 1) and its voxel → RAS+ mm affine.

    Raises:
        UnsupportedScanError: an array that is not 2D or 3D; an affine that is not a finite, invertible 4×4 matrix
            with bottom row [0, 0, 0, 1]; one whose voxel axes are more than :data:`MAX_SHEAR_DEGREES` off
            perpendicular (a sheared grid, which no axis permutation brings to the analysis layout).
    """

    array: NDArray[Any]
    affine: NDArray[np.float64]
    source: ScanSource = field(default_factory=ScanSource)

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise UnsupportedScanError(f"a scan must be a 3D volume or a 2D slice, got an array of shape {arr.shape}")
        if self.affine is None:  # as numpy reads it, NaN: the message had shown [[nan]]
            raise UnsupportedScanError("the affine must be a finite, invertible 4×4 matrix of numbers, got None")
        try:
            aff = np.asarray(self.affine, dtype=np.float64)
        except (TypeError, ValueError) as exc:  # a string, a ragged list: said as any other bad affine
            raise UnsupportedScanError(
                f"the affine must be a finite, invertible 4×4 matrix of numbers, got {self.affine!r:.80}"
            ) from exc
        if aff.shape != (4, 4) or not np.all(np.isfinite(aff)) or abs(np.linalg.det(aff[:3, :3])) < 1e-12:
            matrix = geometry.matrix_text(aff)
            raise UnsupportedScanError(f"the affine must be a finite, invertible 4×4 matrix, got {matrix}")
        if not np.allclose(aff[3], (0.0, 0.0, 0.0, 1.0), rtol=0.0, atol=1e-9):  # a projective matrix, no affine
            raise UnsupportedScanError(
                f"the affine's bottom row must be [0, 0, 0, 1], got {geometry.matrix_text(aff[3])[1:-1]}: "
                f"{geometry.matrix_text(aff)} is not an affine"
            )
        angle, first, second = geometry.shear_degrees(aff)
        if angle > MAX_SHEAR_DEGREES:
            raise UnsupportedScanError(
                f"the affine's voxel axes {first} and {second} are {angle:.1f}° off perpendicular (a sheared grid, "
                f"up to {MAX_SHEAR_DEGREES:g}° accepted): openspine reads a grid whose axes are perpendicular; "
                "resample the image onto one first"
            )
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "affine", aff)

    def __getstate__(self) -> dict[str, Any]:
        # an array of one repeated value (a kept result's input: SagittalView.without_input_voxels) pickles as its
        # value, shape and type, not as every voxel (it had made a pickled volume result twice its size)
        state = dict(self.__dict__)
        arr = state["array"]
        if _one_value_repeated(arr):
            state["array"] = _Repeated(arr.reshape(-1)[:1].copy(), arr.shape)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        arr = state["array"]
        if isinstance(arr, _Repeated):
            state = {**state, "array": np.broadcast_to(arr.value.reshape(()), arr.shape)}
        self.__dict__.update(state)

    # --- derived geometry -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.array.shape
        return int(s[0]), int(s[1]), int(s[2])

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along each array axis."""
        return geometry.spacing(self.affine)

    @property
    def orientation(self) -> tuple[str, str, str]:
        """The world direction each array axis points to, e.g. ``('I', 'P', 'R')``."""
        return geometry.axcodes(self.affine)

    def voxel_to_world(self, ijk: NDArray[np.floating]) -> NDArray[np.float64]:
        return geometry.apply_affine(self.affine, ijk)

    def world_to_voxel(self, xyz: NDArray[np.floating]) -> NDArray[np.float64]:
        return geometry.apply_affine(np.linalg.inv(self.affine), xyz)

    @property
    def slice_axis(self) -> int | None:
        """The through-plane axis of the acquisition, or None for a near-isotropic 3D volume."""
        if 1 in self.shape:
            return self.shape.index(1)
        sp = np.asarray(self.spacing)
        thick = int(np.argmax(sp))
        others = np.delete(sp, thick)
        if float(others.max()) >= 0.95 * sp[thick]:  # two axes alike and coarsest (2 × 2 × 1 mm): no slice axis
            return None
        return thick if sp[thick] > 1.5 * float(others.max()) or sp[thick] > 2.0 else None

    def mirrored_front_to_back(self) -> Scan:
        """The same voxels with the anterior–posterior direction of the affine reversed: a picture shown with the
        front of the body on the right, read as the mirror image the analysis expects. Voxel indices are kept, so
        every voxel coordinate reported stays the input's own."""
        ax = next(i for i, c in enumerate(self.orientation) if c in ("A", "P"))
        return Scan(self.array, geometry.reversed_axis(self.affine, ax, self.shape[ax]), self.source)

    # --- analysis layout --------------------------------------------------------------------------
    @property
    def reads_two_ways(self) -> bool:
        """Whether the scan is a near-isotropic 3D volume turned more than :data:`OBLIQUE_RESLICE_DEGREES` off the
        world axes whose axis nearest left-right still points more left-right than any other way (the rule that
        calls a stack sagittal, :meth:`to_sagittal`): it can be resliced onto world axes
        (the default of :meth:`to_sagittal`) or read on its own grid, as a stack so turned is. Which shows the spine
        better depends on whether the anatomy lies along the grid (a slab planned along the spine) or along the
        world; the analysis reads both (user test: a volume whose affine alone was turned 30° had been resliced,
        its labels and grades lost)."""
        if len(self.shape) != 3 or self.slice_axis is not None:
            return False
        if geometry.obliquity_degrees(self.affine) <= OBLIQUE_RESLICE_DEGREES:
            return False
        dirs = np.abs(geometry.axis_directions(self.affine))  # columns: each array axis's world direction
        nearest = int(np.argmax(dirs[0]))  # the axis nearest left-right
        return float(dirs[0, nearest]) >= float(dirs[1:, nearest].max())

    def to_sagittal(self, reslice: bool | None = None) -> SagittalView:
        """The scan in the internal sagittal layout, or a clear refusal for a non-sagittal stack. A near-isotropic
        volume turned more than :data:`OBLIQUE_RESLICE_DEGREES` off the world axes is resliced onto them, unless
        ``reslice`` is False (read on its own grid, :attr:`reads_two_ways`)."""
        if sum(n == 1 for n in self.shape) >= 2:  # a line of pixels: no plane, nothing to call axial or sagittal
            raise OutOfScopeError(
                f"the image is a line of pixels ({' × '.join(str(n) for n in self.shape)}): a spine needs a plane of "
                "at least a few centimetres each way"
            )
        axis = self.slice_axis
        if axis is not None:
            normal = geometry.axis_directions(self.affine)[:, axis]
            if abs(normal[0]) < max(abs(normal[1]), abs(normal[2])):
                plane = "axial" if abs(normal[2]) >= abs(normal[1]) else "coronal"
                article = "an" if plane == "axial" else "a"
                # a single slice has no resolution along the spine to speak of: its plane is the reason
                what = (
                    f"a single {plane} slice, which shows no sagittal plane of the spine"
                    if self.shape[axis] == 1
                    else f"{article} {plane} acquisition ({self.shape[axis]} slices, {self.spacing[axis]:.1f} mm "
                    f"apart): a sagittal view would have {self.spacing[axis]:.1f} mm resolution along the spine"
                )
                raise NotSagittalError(
                    f"this is {what}. openspine needs a "
                    "sagittal series or a near-isotropic 3D volume; pick the sagittal series of the study."
                    + (self._converted_picture_hint() if self._looks_like_a_converted_picture() else ""),
                    plane={"value": plane, "source": "geometry"},
                )
        arr: NDArray[Any]
        oblique = geometry.obliquity_degrees(self.affine) > OBLIQUE_RESLICE_DEGREES
        if axis is None and (oblique if reslice is None else reslice and oblique):
            # an oblique 3D volume: no permutation gives sagittal slices, so reslice (interpolating)
            arr, aff = geometry.resample_to_internal(self.array, self.affine, min(self.spacing))
        else:
            arr, aff = geometry.reorient(self.array, self.affine, geometry.INTERNAL_CODES)
        return SagittalView(Scan(arr, aff, self.source), self)

    def as_stored(self) -> SagittalView:
        """The scan's own slices as stored, in the place of the analysis layout: its slice axis last (the last axis
        of a near-isotropic volume), rows and columns as in the file, no reslicing. What a result shows of a scan that
        was not analysed (not sagittal, no contrast): no claim about its plane, and every voxel maps back exactly."""
        axis = self.slice_axis
        axis = 2 if axis is None else axis
        order = [a for a in range(3) if a != axis] + [axis]
        affine = self.affine.copy()
        affine[:, :3] = self.affine[:, order]
        return SagittalView(Scan(np.transpose(self.array, order), affine, self.source), self)

    def _converted_picture_hint(self) -> str:
        return _ARRAY_HINT if self.source.format == "array" else _CONVERTED_PICTURE_HINT

    def _looks_like_a_converted_picture(self) -> bool:
        """One slice with an unrotated affine (array axes along x, y, z): the default orientation that converting
        a picture to NIfTI writes, which calls any picture axial."""
        return self.shape[2] == 1 and geometry.axcodes(self.affine) == ("R", "A", "S")

    def check_analysable(self) -> None:
        """Refuse what no model can use: no voxels, NaN/Inf, an image without contrast, or a picture that is an
        openspine output (:attr:`ScanSource.not_a_scan`, out of scope)."""
        if self.source.not_a_scan:
            raise OutOfScopeError(self.source.not_a_scan)
        arr = self.array
        if arr.size == 0:
            raise UnsupportedScanError(f"the image holds no voxels: its array has shape {arr.shape}")
        if arr.dtype.kind not in "iuf":  # timedelta64 passes as a number to numpy, and had failed deep inside
            what = "colour (RGB) voxels" if arr.dtype.names else f"voxels of type {arr.dtype}"
            name = f"'{Path(self.source.path).name}'" if self.source.path else "the image"
            raise ImageContentError(
                f"{name} holds {what}, not grey intensities: openspine reads one real number per voxel; convert the "
                "image to one grey channel (e.g. its magnitude or luminance) first"
            )
        if np.issubdtype(arr.dtype, np.floating):
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            if bad:
                raise ImageContentError(
                    f"the image has {bad} NaN or infinite voxels ({100 * bad / arr.size:.1f} %); "
                    "fix or mask them before analysis"
                )
        # along the axes that hold more than one voxel: a single slice's thickness is never used
        used = [v for v, n in zip(self.spacing, arr.shape, strict=True) if n > 1] or list(self.spacing)
        if not min(used) >= MIN_VOXEL_MM:  # the detector's grid at its pixel size had asked for 364 GiB (user test)
            raise UnsupportedScanError(
                f"the voxel size {' × '.join(f'{v:g}' for v in self.spacing)} mm is below any MR image's "
                f"({MIN_VOXEL_MM:g} mm): check the voxel size in its header (a pixel size in metres read as mm?)"
            )
        lo, hi = np.min(arr), np.max(arr)  # compared in the array's own type: a float of a large int rounds
        if hi <= lo:
            raise NoContrastError(
                f"the image has no contrast: every voxel equals {float(lo):g}; this is not a spine image"
            )

    def with_finite_voxels(self) -> tuple[Scan, str | None]:
        """The scan with its NaN and infinite voxels read as its lowest finite value, and the flag that says so (None
        where there are none). A volume resampled by SPM, ANTs or FSL carries NaN outside the field of view it was
        resampled from; read as blank, what it shows is analysed (it had failed the whole scan), and the blank-area
        checks keep a disc it cuts ungraded. A scan with no finite voxel at all is left as it is:
        :meth:`check_analysable` refuses it."""
        arr = self.array
        if arr.size == 0 or not np.issubdtype(arr.dtype, np.floating):
            return self, None
        bad = ~np.isfinite(arr)
        n_bad = int(np.count_nonzero(bad))
        if n_bad == 0 or n_bad == arr.size:
            return self, None
        filled = arr.copy()  # never the caller's array; and no copy of the finite voxels to find their least
        np.copyto(filled, np.min(arr, where=~bad, initial=np.inf), where=bad)
        flag = (
            f"non_finite_voxels: {n_bad} NaN or infinite voxels ({100 * n_bad / arr.size:.1f} % of the image) read as "
            "its lowest value (the blank outside a resampled field of view?); a disc in such a blank is not graded"
        )
        return Scan(filled, self.affine, self.source), flag

    def in_safe_range(self) -> Scan:
        """The scan with its voxel values multiplied by a power of two (exactly: every ratio, sign and zero kept) where
        their magnitude exceeds :data:`MAX_ANALYSED_MAGNITUDE`, so that the largest is about 2**32; the scan itself
        otherwise. Every model reads an image relative to its own intensities (percentiles, the bodies' median), so
        the scale changes nothing it sees, whereas float32 arithmetic on values near 3.4e38 overflows."""
        arr = self.array
        if arr.size > 0 and np.issubdtype(arr.dtype, np.integer):
            return self._integers_in_float32_range()
        if arr.size == 0 or not np.issubdtype(arr.dtype, np.floating):
            return self
        peak = float(np.max(np.abs(arr)))
        if not np.isfinite(peak) or peak <= MAX_ANALYSED_MAGNITUDE:
            return self
        shift = int(np.ceil(np.log2(peak))) - 32
        return Scan(np.ldexp(arr, -shift).astype(arr.dtype, copy=False), self.affine, self.source)

    def _integers_in_float32_range(self) -> Scan:
        """Integer voxels beyond float32's exact integers (2**24: a uint32 or int64 image stored with a large
        offset) moved down by their minimum, exactly in integer arithmetic: read as float32 (the models' input) the
        offset had left only a few grey levels, and bodies were lost. Every model reads intensities relative to the
        image's own (percentiles, the bodies' median), so the shift changes nothing else."""
        arr = self.array
        lo, hi = int(np.min(arr)), int(np.max(arr))
        if lo == 0 or max(abs(lo), abs(hi)) <= FLOAT32_EXACT_INTEGERS or hi - lo > np.iinfo(np.int64).max:
            return self
        shifted = arr - np.uint64(lo) if arr.dtype == np.uint64 else arr.astype(np.int64) - np.int64(lo)
        narrow = np.uint32 if hi - lo <= np.iinfo(np.uint32).max else np.int64
        return Scan(shifted.astype(narrow, copy=False), self.affine, self.source)

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.3g}" for s in self.spacing)
        return (
            f"Scan(shape={self.shape}, spacing_mm=({sp}), orientation={''.join(self.orientation)}, "
            f"dtype={self.array.dtype}, source={self.source.path!r})"
        )


@dataclass(frozen=True, eq=False)
class SagittalView:
    """A scan in the internal sagittal layout plus the exact map back to the input voxel grid."""

    scan: Scan
    input: Scan

    def without_input_voxels(self) -> SagittalView:
        """The same view whose input keeps its shape, data type, affine and source but not its voxels (a read-only
        array of zeros that takes no memory): what a result keeps for its overlay and label map, which read the
        analysed image and the input's geometry only. A kept result had held two full copies of the image (a
        notebook keeping 25 volume results grew by 530 MB; user test)."""
        if self.input.array is self.scan.array or not self.input.array.size:
            return self
        placeholder = np.broadcast_to(np.zeros((), dtype=self.input.array.dtype), self.input.array.shape)
        return SagittalView(self.scan, replace(self.input, array=placeholder))

    @property
    def has_input_voxels(self) -> bool:
        """Whether the input keeps its voxels (False for a result's view: :meth:`without_input_voxels`)."""
        return not _one_value_repeated(self.input.array)

    @property
    def stored_voxels(self) -> NDArray[Any]:
        """The input's voxels as stored, or where a result's view keeps none (:meth:`without_input_voxels`) the
        analysed ones (the same values, reordered; interpolated for a resliced oblique volume)."""
        return self.input.array if self.has_input_voxels else self.scan.array

    def to_input_voxel(self, ijk: NDArray[np.floating]) -> NDArray[np.float64]:
        """Internal voxel indices → the input array's voxel indices (as the file stores them)."""
        m = np.linalg.inv(self.input.affine) @ self.scan.affine
        return geometry.apply_affine(m, ijk)

    def to_world(self, ijk: NDArray[np.floating]) -> NDArray[np.float64]:
        """Internal voxel indices → RAS+ mm."""
        return self.scan.voxel_to_world(ijk)

    def from_input_voxel(self, ijk: NDArray[np.floating]) -> NDArray[np.float64]:
        m = np.linalg.inv(self.scan.affine) @ self.input.affine
        return geometry.apply_affine(m, ijk)

    @property
    def resliced(self) -> bool:
        """Whether the internal slices were interpolated from an oblique volume (not the input's own, reordered)."""
        m = np.linalg.inv(self.input.affine) @ self.scan.affine
        return not np.allclose(m[:3, :3], np.round(m[:3, :3]), atol=1e-6)

    def input_slice_index(self, k: int, at: tuple[float, float] | None = None) -> int:
        """The index, along the input array's left-right axis, of internal sagittal slice ``k``. Where an oblique
        volume was resliced for the analysis, its internal slices cross the input's: then the index of the input
        voxel nearest to the point ``at`` (internal row, column; default the middle of the slice) on slice ``k``,
        within the input's slices (reslicing had given indices below 0 and past the last slice)."""
        ax, sign, offset = _sagittal_input_axis(self)
        if not self.resliced:  # the input's own slices, reordered
            return offset + sign * int(k)
        m = np.linalg.inv(self.input.affine) @ self.scan.affine
        r, c = at if at is not None else ((self.scan.shape[0] - 1) / 2, (self.scan.shape[1] - 1) / 2)
        index = round(float(geometry.apply_affine(m, np.array([[r, c, float(k)]]))[0, ax]))
        return int(min(max(index, 0), self.input.shape[ax] - 1))


def _sagittal_input_axis(view: SagittalView) -> tuple[int, int, int]:
    """(input axis that the internal slice axis maps to, sign, offset): input index = offset + sign * k."""
    m = np.linalg.inv(view.input.affine) @ view.scan.affine
    col = m[:3, 2]
    ax = int(np.argmax(np.abs(col)))
    return ax, round(float(col[ax])), round(float(m[ax, 3]))
