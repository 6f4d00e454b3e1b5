# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quick start: from a DICOM series to results
#
# This tutorial takes a real lumbar T2 volume, writes it out as an ordinary DICOM series (one file per sagittal
# slice, written with pydicom), and then does what you would do with a series from your scanner: look at what was
# read, analyse it, read the results as pandas tables, look at the overlay, and write every output file.
#
# **Data**: the validation volume `fcs-vb2-13` of the FastCleverSeg VB2 set (lumbar T2 TSE, 1.5 T; Chu et al.,
# *PLoS ONE* 10(11):e0143327, 2015, doi:10.1371/journal.pone.0143327, as packaged by Ramos et al., *Magnetic
# Resonance Imaging* 109:134–146, 2024, doi:10.1016/j.mri.2024.03.021), from the shared development data
# (`../shared/data`, or the folder named by `OPENSPINE_DATA`). The models never saw it in training.
#
# Needs `pip install '.[plot,pandas]'`.

# %%
# ruff: noqa: E402, B018, E501 (a notebook: imports where they are used, tables shown by a bare expression)
import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

import openspine

DATA = Path(os.environ.get("OPENSPINE_DATA", "../shared/data")).resolve()
WORK = Path(tempfile.mkdtemp(prefix="openspine-quickstart-"))
print("openspine", openspine.__version__, "| data:", DATA, "| outputs under:", WORK, "(remove it when done)")

# %% [markdown]
# ## 1. A DICOM series from a real volume
#
# The volume is stored `[superior→inferior, anterior→posterior, left→right]` with a RAS+ affine. To look like a
# clinical sagittal series we keep every third slice (3 mm apart) over the middle of the spine, and write each one
# as an MR image. The DICOM geometry comes straight from the affine: DICOM uses LPS coordinates, so x and y change
# sign; `ImageOrientationPatient` holds the direction of increasing column, then of increasing row;
# `ImagePositionPatient` is the centre of the slice's first pixel; `PixelSpacing` is `[row spacing, column spacing]`.
# The file names and `InstanceNumber`s are shuffled on purpose: openspine orders slices by position, not by either.

# %%
img = nib.load(DATA / "fastcleverseg" / "fcs-vb2-13" / "image.nii.gz")
volume = np.asanyarray(img.dataobj)
print("stored array:", volume.shape, volume.dtype, "axes", nib.aff2axcodes(img.affine))

mid, step, n = volume.shape[2] // 2, 3, 15
keep = np.arange(mid - step * (n // 2), mid + step * (n // 2) + 1, step)
series = np.ascontiguousarray(volume[:, :, keep]).astype(np.uint16)
affine = img.affine.copy()
affine[:3, 3] = img.affine[:3, :3] @ [0, 0, keep[0]] + img.affine[:3, 3]  # voxel (0, 0, 0) of the kept slices
affine[:3, 2] = img.affine[:3, 2] * step
print("series:", series.shape, "slice spacing", np.linalg.norm(affine[:3, 2]), "mm")

# %%
LPS = np.diag([-1.0, -1.0, 1.0])


def write_dicom_series(folder: Path, array: np.ndarray, affine: np.ndarray) -> list[Path]:
    folder.mkdir(parents=True)
    study, series_uid, frame = generate_uid(), generate_uid(), generate_uid()
    lps = LPS @ affine[:3, :]
    row_step, col_step = lps[:, 0], lps[:, 1]  # moving down one row (index i), right one column (index j)
    row_mm, col_mm = np.linalg.norm(row_step), np.linalg.norm(col_step)
    iop = [*(col_step / col_mm), *(row_step / row_mm)]
    order = np.random.default_rng(0).permutation(array.shape[2])  # shuffled names and instance numbers
    files = []
    for k in range(array.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesDescription, ds.SeriesNumber = "MR", "t2_tse_sag", 3
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series_uid, frame
        ds.PatientName, ds.PatientID = "Anonymous^Tutorial", "tutorial"
        ds.InstanceNumber = int(order[k]) + 1
        ds.ImagePositionPatient = [round(float(v), 4) for v in lps @ [0.0, 0.0, float(k), 1.0]]
        ds.ImageOrientationPatient = [round(float(v), 6) for v in iop]
        ds.PixelSpacing = [round(float(row_mm), 4), round(float(col_mm), 4)]
        ds.SliceThickness = round(float(np.linalg.norm(affine[:3, 2])), 4)
        ds.Rows, ds.Columns = array.shape[:2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.ascontiguousarray(array[:, :, k]).tobytes()
        path = folder / f"IM{int(order[k]):04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


study = WORK / "study"
files = write_dicom_series(study / "t2_sag", series, affine)
print(len(files), "files, e.g.", sorted(p.name for p in files)[:3])

# %% [markdown]
# ## 2. What was read
#
# `openspine.list_series` (the command `openspine info study/`) lists every series under a folder and marks the one
# an analysis would use; `openspine.load_scan` reads it into a `Scan`: the voxel array and its voxel → RAS+ mm
# affine. The affine read back from the files is the one we wrote: the geometry survived the round trip.

# %%
for s in openspine.list_series(study):
    print(s)

scan = openspine.load_scan(study)
print(scan)
print("shape", scan.shape, "| spacing (mm)", scan.spacing, "| orientation", scan.orientation)
assert np.allclose(scan.affine, affine, atol=1e-3), "the affine read back differs from the one written"
assert np.array_equal(scan.array, series), "the voxels read back differ from those written"

# %% [markdown]
# ## 3. Analyse
#
# One call detects and labels the vertebral bodies, finds the discs between them and grades the lumbar discs.
# The result says what the scan was taken to be (sequence from the DICOM header here, plane, field of view) and
# lists every flag.

# %%
result = openspine.analyze(scan)
print("sequence:", result.input.sequence)
print("field of view:", result.input.field_of_view)
print("flags:", list(result.flags) or "none")
print("vertebrae:", [v.label.value if v.label else None for v in result.vertebrae])
print("discs:", [d.level.value if d.level else None for d in result.discs])
print("timings (s):", {k: round(v, 2) for k, v in result.timings_s.items()})

# %% [markdown]
# What the flags say: this volume reaches above T11, the highest level the detector was trained and validated on,
# so the bodies up there keep their position and outline but get no label (`labels_withheld`, and a `note` on each);
# the discs between them have no level and are not graded; bodies the detector is unsure of are named in
# `low_confidence`; T11-T12 is detected but not graded because the default grades T12-L1 … L5-S1
# (`grade_levels="all"`, or `--levels all` on the command line, grades every labelled disc inside the grader's
# scope); a disc left out so is no flag.
#
# ## 4. Results as tables
#
# `to_dataframe("vertebrae")` has one row per vertebral body: its level, detection score, centroid as an index of
# the input array (`centroid_voxel_*`, here `(row, column, slice)` of the DICOM series) and in RAS+ millimetres
# (`centroid_mm_*`), and a `note` when its label is withheld.

# %%
vertebrae = result.to_dataframe("vertebrae")
vertebrae

# %% [markdown]
# The two coordinates agree through the scan's affine:

# %%
v = result.vertebrae[len(result.vertebrae) // 2]
print(v.label.value if v.label else None, "voxel", np.round(v.centroid_voxel, 1), "→ mm", np.round(scan.voxel_to_world(np.array([v.centroid_voxel]))[0], 1),
      "| stored mm", np.round(v.centroid_mm, 1))  # fmt: skip
assert np.allclose(scan.voxel_to_world(np.array([v.centroid_voxel]))[0], v.centroid_mm, atol=1e-3)

# %% [markdown]
# `to_dataframe("discs")` has one row per disc × grading: `grade` (the most probable class), its `probability`,
# `balanced_grade` (the class-balanced decision, for heads that have one), every class probability and a `note`
# when a grading is withheld or not available (canal and foraminal stenosis: no training labels). A disc between
# unlabelled bodies, or one outside the levels asked for (default T12-L1 … L5-S1), has one row with an empty
# `grading`. Numbers are float columns with NaN where a grade is missing (the CSV writes empty cells).
# Pivot the graded rows for one row per disc:

# %%
discs = result.to_dataframe("discs")
print(discs.columns.tolist())
graded = discs[discs.level.fillna("").ne("") & discs.grading.fillna("").ne("")]
graded.pivot(index="level", columns="grading", values="grade")

# %%
discs[discs.grading == "pfirrmann"][["level", "grade", "probability", "balanced_grade", "probabilities"]]

# %%
discs[discs.note.fillna("").ne("")][["level", "grading", "note"]].drop_duplicates("grading")

# %% [markdown]
# ## 5. The overlay
#
# `result.plot()` is a matplotlib figure of the overlay picture (`result.overlay()` gives the PIL image): the
# mid-sagittal slice, anterior left and head up, bodies outlined and named, discs marked with level and Pfirrmann
# grade, and a strip of neighbouring slices for a multi-slice scan.

# %%
fig = result.plot(width=700)

# %% [markdown]
# ## 6. Every output file
#
# `openspine.writers.write_result` writes what `openspine analyze --out` writes. With `formats="all"` and a DICOM
# input that includes the DICOM Segmentation and Structured Report (these need `pip install '.[dicom]'`;
# without it, leave them out: the default is `json,csv,png,html`).

# %%
from openspine.writers import write_result

try:
    import highdicom  # noqa: F401

    formats = "all"
except ImportError:
    formats = "json,csv,png,html,nifti"
written = write_result(result, WORK / "out", formats=formats)
for name, path in written.items():
    print(f"{name:22s} {path.stat().st_size:>9,d} bytes  {path}")

# %% [markdown]
# | file | what |
# |---|---|
# | `result.json` | everything, versioned schema; written last, so its presence marks a finished case |
# | `vertebrae.csv`, `discs.csv` | the two tables above |
# | `overlay.png` | the picture above |
# | `report.html` | one self-contained page: summary, overlay, levels × gradings table with probabilities, flags, provenance |
# | `labels.nii.gz` | label map on the input's own voxel grid and affine (for 3D Slicer, ITK-SNAP) |
# | `vertebrae_seg.dcm` | DICOM Segmentation of the bodies and discs, referencing the source series |
# | `measurements_sr.dcm` | DICOM SR (TID 1500) with each level and grading |
#
# The label map sits on the grid of the DICOM series we wrote: same shape, same affine.

# %%
if "labels.nii.gz" in written:
    labels = nib.load(written["labels.nii.gz"])
    print("label map", labels.shape, "values", sorted(np.unique(np.asanyarray(labels.dataobj)).tolist()))
    assert labels.shape == scan.shape and np.allclose(labels.affine, scan.affine, atol=1e-3)

# %% [markdown]
# `result.json` can be read back without openspine (it is plain JSON), or as the same result records with
# `AnalysisResult.read` (the file, or the output folder), which give the same tables:

# %%
import json

from openspine import AnalysisResult

doc = json.loads((WORK / "out" / "result.json").read_text())
print(doc["schema_version"], [m["name"] + "@" + m["sha256"][:12] for m in doc["models"]])
again = AnalysisResult.read(WORK / "out")
assert again.to_dataframe("discs").equals(discs), "the table read back differs from the one analysed"
