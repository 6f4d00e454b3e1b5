"""Write real volumes out as DICOM series of known geometry, for the DICOM reader tests.

The writer follows the standard (PS3.3 C.7.6.2.1.1) for a volume ``arr[i, j, k]`` with a voxel → RAS+ affine:
slice ``k`` is one image whose pixel ``(row i, column j)`` is ``arr[i, j, k]``; the first triplet of
ImageOrientationPatient is the direction of increasing column index ``j`` (affine column 1), the second triplet
the direction of increasing row index ``i`` (affine column 0), PixelSpacing is ``[row spacing, column spacing]``
= ``[|column 0|, |column 1|]``, and ImagePositionPatient is the centre of voxel ``(0, 0, k)``, all in LPS.
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pydicom.valuerep import DSfloat

if TYPE_CHECKING:
    from openspine.io.dicom import SeriesInfo

REPO_ROOT = Path(__file__).resolve().parents[1]
# CI clones the repository to another folder with shared/ beside it, so look next to the repository root
DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
LPS = np.diag([-1.0, -1.0, 1.0])  # RAS <-> LPS (its own inverse)

ENHANCED_MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
BASIC_TEXT_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.11"
# Fake identifiers: tests assert that they never reach any openspine output.
FAKE_PATIENT_NAME = "Doe^Jane"
FAKE_PATIENT_ID = "PID-SECRET-4711"


# --------------------------------------------------------------------------------------------------------------
# real data
# --------------------------------------------------------------------------------------------------------------
def data_path(rel: str) -> Path:
    """A file of the shared development data, or skip the test when the data is not beside the repository."""
    path = DATA_ROOT / rel
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (expected shared/data beside the repository root)")
    return path


@functools.lru_cache(maxsize=8)
def _load_nifti(rel: str) -> tuple[NDArray[np.generic], NDArray[np.float64]]:
    import nibabel as nib

    img = nib.load(str(data_path(rel)))
    arr = np.asanyarray(img.dataobj)
    arr.setflags(write=False)  # cached: callers must copy before changing it
    return arr, np.asarray(img.affine, dtype=float)


def real_crop(
    rel: str = "fastcleverseg/fcs-vb2-05/image.nii.gz",
    start: tuple[int, int, int] = (160, 150, 32),
    shape: tuple[int, int, int] = (64, 64, 12),
) -> tuple[NDArray[np.generic], NDArray[np.float64]]:
    """A crop of a real NIfTI volume and the crop's exact affine (the source affine shifted to the crop start)."""
    arr, affine = _load_nifti(rel)
    sl = tuple(slice(s, s + n) for s, n in zip(start, shape))
    crop = np.array(arr[sl])
    shift = np.eye(4)
    shift[:3, 3] = start
    return crop, affine @ shift


# --------------------------------------------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------------------------------------------
def rotation(axis: str, degrees: float) -> NDArray[np.float64]:
    """Right-handed rotation about world axis 'x', 'y' or 'z'."""
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def make_affine(
    directions: NDArray[np.floating] | Sequence[Sequence[float]],
    spacing: Sequence[float],
    origin: Sequence[float],
) -> NDArray[np.float64]:
    """4×4 RAS affine from unit axis directions (as columns), voxel sizes and the centre of voxel (0, 0, 0)."""
    aff = np.eye(4)
    aff[:3, :3] = np.asarray(directions, dtype=float) @ np.diag(np.asarray(spacing, dtype=float))
    aff[:3, 3] = origin
    return aff


def flip_k(affine: NDArray[np.float64], n_slices: int) -> NDArray[np.float64]:
    """The affine of the same volume with its third axis reversed."""
    flip = np.eye(4)
    flip[2, 2] = -1.0
    flip[2, 3] = n_slices - 1
    return affine @ flip


def dicom_geometry(affine: NDArray[np.float64], k: int) -> tuple[list[float], list[float], list[float]]:
    """(ImagePositionPatient, ImageOrientationPatient, PixelSpacing) of slice ``k`` of an RAS affine."""
    lps = LPS @ np.asarray(affine, dtype=float)[:3, :]
    col_i, col_j = lps[:, 0], lps[:, 1]  # row index i, column index j
    row_spacing, col_spacing = float(np.linalg.norm(col_i)), float(np.linalg.norm(col_j))
    iop = [*(col_j / col_spacing), *(col_i / row_spacing)]  # X (along columns j) first, then Y (along rows i)
    ipp = lps @ np.array([0.0, 0.0, float(k), 1.0])
    return [float(v) for v in ipp], [float(v) for v in iop], [row_spacing, col_spacing]


def _ds(values: Sequence[float]) -> list[DSfloat]:
    # DS is limited to 16 characters: auto_format keeps as many digits as fit (≈1e-12 relative)
    return [DSfloat(float(v), auto_format=True) for v in values]


# --------------------------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeriesIds:
    """UIDs shared by the files of one written series."""

    series_uid: str
    study_uid: str
    frame_of_reference_uid: str


def new_ids(study_uid: str | None = None, frame_of_reference_uid: str | None = None) -> SeriesIds:
    return SeriesIds(generate_uid(), study_uid or generate_uid(), frame_of_reference_uid or generate_uid())


def _set_pixels(ds: Dataset, pixels: NDArray[np.generic]) -> None:
    arr = np.ascontiguousarray(pixels)
    if arr.dtype == np.uint8:
        bits, signed = 8, 0
    elif arr.dtype in (np.uint16, np.int16):
        bits, signed = 16, int(arr.dtype == np.int16)
    else:
        raise TypeError(f"fixture writes uint8, uint16 or int16 pixels, got {arr.dtype}")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = signed
    ds.PixelData = arr.tobytes()


def _base_dataset(sop_class: str, ids: SeriesIds, series_number: int | None, description: str | None) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.Manufacturer = "OpenSpineTest"
    ds.PatientName = FAKE_PATIENT_NAME
    ds.PatientID = FAKE_PATIENT_ID
    ds.StudyInstanceUID = ids.study_uid
    ds.SeriesInstanceUID = ids.series_uid
    ds.FrameOfReferenceUID = ids.frame_of_reference_uid
    if series_number is not None:
        ds.SeriesNumber = series_number
    if description is not None:
        ds.SeriesDescription = description
    return ds


def slice_dataset(
    pixels: NDArray[np.generic],
    ipp: Sequence[float],
    iop: Sequence[float],
    pixel_spacing: Sequence[float],
    ids: SeriesIds,
    *,
    instance_number: int = 1,
    series_number: int | None = 1,
    description: str | None = "t2_tse_sag",
    slice_thickness: float | None = None,
    slope: float | None = None,
    intercept: float | None = None,
) -> FileDataset:
    """One MR Image Storage slice, explicit VR little endian, with the given geometry (LPS)."""
    ds = _base_dataset(MRImageStorage, ids, series_number, description)
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = _ds(ipp)
    ds.ImageOrientationPatient = _ds(iop)
    ds.PixelSpacing = _ds(pixel_spacing)
    if slice_thickness is not None:
        ds.SliceThickness = DSfloat(slice_thickness, auto_format=True)
    if slope is not None:
        ds.RescaleSlope = DSfloat(slope, auto_format=True)
    if intercept is not None:
        ds.RescaleIntercept = DSfloat(intercept, auto_format=True)
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    _set_pixels(ds, pixels)
    return ds


def save(ds: Dataset, path: Path, transfer_syntax: str | None = None) -> Path:
    """Write ``ds`` (compressed with pydicom's encoders when ``transfer_syntax`` is given)."""
    if transfer_syntax is not None and transfer_syntax != ExplicitVRLittleEndian:
        ds.compress(transfer_syntax)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(
    folder: Path,
    array: NDArray[np.generic],
    affine: NDArray[np.float64],
    *,
    ids: SeriesIds | None = None,
    series_number: int | None = 1,
    description: str | None = "t2_tse_sag",
    transfer_syntax: str | None = None,
    slope: float | None = None,
    intercept: float | None = None,
    shuffle_seed: int | None = 0,
    prefix: str = "IM",
) -> tuple[SeriesIds, list[Path]]:
    """Write ``array[i, j, k]`` as one file per slice ``k``, placed by ``affine`` (voxel → RAS+ mm).

    With ``shuffle_seed`` set (the default) file names and InstanceNumbers are both in a random order unrelated
    to slice position, so a reader that sorts by either gets the volume wrong. Returns the ids and the files
    in slice order.
    """
    ids = ids or new_ids()
    n = array.shape[2]
    rng = np.random.default_rng(shuffle_seed)
    names = rng.permutation(n) if shuffle_seed is not None else np.arange(n)
    numbers = rng.permutation(n) + 1 if shuffle_seed is not None else np.arange(n) + 1
    thickness = float(np.linalg.norm(np.asarray(affine)[:3, 2]))
    files = []
    for k in range(n):
        ipp, iop, ps = dicom_geometry(affine, k)
        ds = slice_dataset(
            array[:, :, k],
            ipp,
            iop,
            ps,
            ids,
            instance_number=int(numbers[k]),
            series_number=series_number,
            description=description,
            slice_thickness=thickness,
            slope=slope,
            intercept=intercept,
        )
        files.append(save(ds, folder / f"{prefix}{int(names[k]):04d}.dcm", transfer_syntax))
    return ids, files


def write_enhanced(
    path: Path,
    array: NDArray[np.generic],
    affine: NDArray[np.float64],
    *,
    ids: SeriesIds | None = None,
    series_number: int | None = 1,
    description: str | None = "t2_tse_sag enhanced",
    frame_order: Sequence[int] | None = None,
    slope: float | None = None,
    intercept: float | None = None,
) -> SeriesIds:
    """Write ``array[i, j, k]`` as one Enhanced MR multi-frame object.

    Geometry lives in the functional groups: orientation, spacing and rescale in the shared groups, each
    frame's position in the per-frame groups. ``frame_order`` lists which slice ``k`` each stored frame holds
    (default: reversed, so frame order ≠ position order).
    """
    ids = ids or new_ids()
    n = array.shape[2]
    order = list(frame_order) if frame_order is not None else list(range(n))[::-1]
    ds = _base_dataset(ENHANCED_MR_STORAGE, ids, series_number, description)
    ds.InstanceNumber = 1
    ds.NumberOfFrames = n
    ds.Rows, ds.Columns = int(array.shape[0]), int(array.shape[1])
    _, iop, ps = dicom_geometry(affine, 0)

    measures = Dataset()
    measures.PixelSpacing = _ds(ps)
    measures.SliceThickness = DSfloat(float(np.linalg.norm(np.asarray(affine)[:3, 2])), auto_format=True)
    orient = Dataset()
    orient.ImageOrientationPatient = _ds(iop)
    shared = Dataset()
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PlaneOrientationSequence = DicomSequence([orient])
    if slope is not None or intercept is not None:
        trans = Dataset()
        trans.RescaleSlope = DSfloat(1.0 if slope is None else slope, auto_format=True)
        trans.RescaleIntercept = DSfloat(0.0 if intercept is None else intercept, auto_format=True)
        trans.RescaleType = "US"
        shared.PixelValueTransformationSequence = DicomSequence([trans])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])

    per_frame = []
    for k in order:
        item = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = _ds(dicom_geometry(affine, k)[0])
        item.PlanePositionSequence = DicomSequence([pos])
        content = Dataset()
        content.InStackPositionNumber = k + 1
        item.FrameContentSequence = DicomSequence([content])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    _set_pixels(ds, np.stack([array[:, :, k] for k in order]))
    save(ds, path)
    return ids


def write_text_sr(path: Path, ids: SeriesIds | None = None, series_number: int = 99) -> Path:
    """A Basic Text SR: a DICOM object without pixel data."""
    ds = _base_dataset(BASIC_TEXT_SR_STORAGE, ids or new_ids(), series_number, "report")
    ds.Modality = "SR"
    ds.ValueType = "CONTAINER"
    return save(ds, path)


def zip_folder(folder: Path, zip_path: Path) -> Path:
    """Zip every file under ``folder`` (member names relative to it, in a sub-folder like real exports)."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, arcname=str(Path("export") / p.relative_to(folder)))
    return zip_path


def world(affine: NDArray[np.float64], ijk: Sequence[float]) -> NDArray[np.float64]:
    """RAS+ mm position of voxel ``ijk``."""
    return (np.asarray(affine, dtype=float) @ np.array([*ijk, 1.0]))[:3]


def read_dataset(path: Path) -> FileDataset:
    return pydicom.dcmread(path)


# --------------------------------------------------------------------------------------------------------------
# a real study of two series: sagittal T2 and sagittal T1 of one patient
# --------------------------------------------------------------------------------------------------------------
T2_VOLUME = "fastcleverseg/fcs-vb1-07/image.nii.gz"
T1_VOLUME = "fastcleverseg/fcs-vb1-06/image.nii.gz"


@dataclass(frozen=True)
class T1T2Study:
    """A study written by :func:`write_t1_t2_study`: its folder, the two series' ids and the source arrays."""

    folder: Path
    t2: SeriesIds
    t1: SeriesIds
    t2_array: NDArray[np.generic]
    t1_array: NDArray[np.generic]
    affine: NDArray[np.float64]


def write_t1_t2_study(
    folder: Path, *, shuffle_names: bool = False, t2: bool = True, t1: bool = True, stir_crop: bool = False
) -> T1T2Study:
    """Write one real patient's sagittal T2 and sagittal T1 volumes as two DICOM series of one study.

    The volumes are FastCleverSeg VB1 ``fcs-vb1-07`` (T2) and ``fcs-vb1-06`` (T1): the same patient (the shared
    data's README keeps 06/07/08 in one split group) on one grid, 361×361×57 at 1 mm. Which is which was decided by
    looking, not by a record (the source does not say): on the mid-sagittal slice 07 has bright CSF in the canal and
    bright disc nuclei over darker vertebral bodies, with the subcutaneous fat still bright (T2, not a fat-suppressed
    TIRM); 06 has dark CSF and discs and bodies brighter than the discs (T1). ``openspine analyze`` agrees from the
    image: 07 T2 (CSF over body 2.19), 06 T1 (probability 0.95, CSF over body 0.73). 08 is a second T1 of that
    patient, a few millimetres off the others, and is not used here. The vertebral-body masks of 06 and 07
    coincide within one voxel, so the two really share one frame of reference: they are written with one
    StudyInstanceUID and one FrameOfReferenceUID, SeriesDescriptions that the header rules read as T2 and T1
    ("T2 TSE SAG", "T1 TSE SAG"), SeriesNumbers 3 (T2) and 2 (T1), and the same (scanner-less) affine.

    Args:
        shuffle_names: write both series' files into one flat folder under meaningless shuffled names (IMxxxxx),
            so that only the headers tell the series apart; otherwise one sub-folder per series.
        t2, t1: which of the two series to write (a T1-only or a T2-only study).
        stir_crop: also write a small sagittal series described as STIR (a crop of the T2 pixels: a fixture for
            the STIR role, not a real STIR image).
    """
    t2_arr, affine = _load_nifti(T2_VOLUME)
    t1_arr, t1_affine = _load_nifti(T1_VOLUME)
    if not np.allclose(affine, t1_affine):
        raise AssertionError("the T1 and T2 source volumes no longer share a grid")
    study, frame = generate_uid(), generate_uid()
    t2_ids, t1_ids = new_ids(study, frame), new_ids(study, frame)
    flat = shuffle_names
    if t2:
        write_series(folder if flat else folder / "series3_t2", np.array(t2_arr), affine, ids=t2_ids,
                     series_number=3, description="T2 TSE SAG", prefix="IMA" if flat else "IM")  # fmt: skip
    if t1:
        write_series(folder if flat else folder / "series2_t1", np.array(t1_arr), affine, ids=t1_ids,
                     series_number=2, description="T1 TSE SAG", prefix="IMB" if flat else "IM")  # fmt: skip
    if stir_crop:
        shift = np.eye(4)
        shift[:3, 3] = (100, 100, 20)
        write_series(folder if flat else folder / "series4_stir", np.array(t2_arr[100:164, 100:164, 20:28]),
                     affine @ shift, ids=new_ids(study, frame), series_number=4, description="STIR SAG",
                     prefix="IMC" if flat else "IM")  # fmt: skip
    if flat:
        # names that say nothing: a random order across both series
        files = sorted(folder.glob("IM*.dcm"))
        order = np.random.default_rng(1).permutation(len(files))
        staged = [f.rename(f.with_name(f"tmp-{k}")) for k, f in enumerate(files)]
        for k, f in zip(order, staged):
            f.rename(folder / f"IM{int(k):05d}")
    return T1T2Study(folder, t2_ids, t1_ids, t2_arr, t1_arr, affine)


def series_info(
    number: int, plane: str, n: int, seq: str | None, study: str = "1.2.3", description: str | None = None
) -> SeriesInfo:
    """Header facts of one series, no files: for the series-choice and role rules."""
    from openspine.io.dicom import SeriesInfo

    return SeriesInfo(
        series_uid=f"1.2.3.{number}",
        study_uid=study,
        series_number=number,
        description=description or f"series {number}",
        modality="MR",
        n_slices=n,
        rows=64,
        columns=64,
        plane=plane,
        files=(),
        sequence_hint=seq,
    )


def whole_spine_study(
    folder: Path, one_frame: bool = True, lumbar: str = "T2_TSE_SAG_2", lumbar_rows: slice = slice(None)
) -> SeriesIds:
    """A cervico-thoracic T2 (sct-example-t2, 52 slices) written as the upper station above a lumbar T2
    (fcs-vb2-13, its middle 40 slices), overlapping by 40 mm, as a whole-spine study is exported: in one frame of
    reference, or (``one_frame`` False) each station in its own. Returns the lumbar station's ids."""

    def height(arr: np.ndarray, aff: np.ndarray) -> tuple[float, float]:
        ends = [(0, n - 1) for n in arr.shape[:2]]
        corners = np.array([[i, j, 0.0, 1.0] for i in ends[0] for j in ends[1]])
        z = (aff @ corners.T)[2]
        return float(z.min()), float(z.max())

    description = lumbar
    lumbar, lumbar_aff = _load_nifti("fastcleverseg/fcs-vb2-13/image.nii.gz")
    lumbar, shift = np.array(lumbar[lumbar_rows, :, 18:58]), np.eye(4)
    shift[0, 3], shift[2, 3] = lumbar_rows.start or 0, 18
    lumbar_aff = lumbar_aff @ shift
    neck, neck_aff = _load_nifti("sct/sct-example-t2/image.nii.gz")
    neck_aff = neck_aff.copy()
    neck_aff[2, 3] += height(lumbar, lumbar_aff)[1] - 40.0 - height(neck, neck_aff)[0]
    ids = new_ids()
    upper = SeriesIds(generate_uid(), ids.study_uid, ids.frame_of_reference_uid if one_frame else generate_uid())
    write_series(folder, np.array(neck), neck_aff, ids=upper, series_number=1, description="T2_TSE_SAG_1")
    write_series(folder, lumbar, lumbar_aff, ids=ids, series_number=2, description=description, prefix="L")
    return ids
