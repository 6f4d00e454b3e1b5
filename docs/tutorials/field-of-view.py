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
# # Field of view and scope: what openspine does outside the lumbar spine
#
# The detector was trained on lumbar and thoraco-lumbar volumes with bodies labelled T11 … L5, the grader on lumbar
# T2 slices. Each model card declares that `scope`, and outside it openspine withholds the answer instead of
# guessing: a body keeps its position and outline but its label is withheld with a `note`, a disc without a level
# is not graded, a scan whose sequence the grader was not trained on gets no grades, and each of these raises a
# flag. This tutorial shows, on real scans, what that looks like today — including where it is weak.
#
# * a **thoraco-lumbar** T2 volume, about T9 to L3 (Spinal Cord Toolbox tutorial data, `sct-tutorial-t2-lumbar`);
# * a **cervical** T2 volume, skull base to about T5 (Spinal Cord Toolbox example data, `sct-example-t2`);
# * a **lumbar T1** slice (SPIDER patient 31, validation split);
# * the same patient's T2 slice stored **reversed front to back**.
#
# **Data**: Spinal Cord Toolbox data (MIT, © NeuroPoly; De Leener et al., *NeuroImage* 145:24–43, 2017,
# doi:10.1016/j.neuroimage.2016.10.009); SPIDER (van der Graaf et al., *Scientific Data* 11:264, 2024,
# doi:10.1038/s41597-024-03090-w, CC BY 4.0). Needs `pip install '.[plot,pandas]'`.

# %%
# ruff: noqa: E501 (a notebook: imports where they are used, tables shown by a bare expression)
import os
from pathlib import Path

import numpy as np
import pandas as pd

import openspine

DATA = Path(os.environ.get("OPENSPINE_DATA", "../shared/data")).resolve()


def summary(result: openspine.AnalysisResult) -> None:
    """What the scan was taken to be, and every flag."""
    doc = result.to_dict()["input"]
    print("sequence:     ", doc.get("sequence"))
    print("plane:        ", doc.get("plane"))
    print("field of view:", doc.get("field_of_view"))
    print("flags:")
    for flag in result.flags:
        print("   ", flag)


def vertebra_table(result: openspine.AnalysisResult) -> pd.DataFrame:
    return result.to_dataframe("vertebrae")[["label", "score", "centroid_mm_z", "note"]]


# %% [markdown]
# ## 1. A thoraco-lumbar scan (about T9 to L3)

# %%
tl_path = DATA / "sct" / "sct-tutorial-t2-lumbar" / "image.nii.gz"
tl_scan = openspine.load_scan(tl_path)
print(tl_scan)
tl = openspine.analyze(tl_scan)
summary(tl)

# %% [markdown]
# Reading the flags:
#
# * the header of a NIfTI file does not say the sequence, so the image recogniser judged it (`source: image`, with
#   its `probability`); the spinal fluid's signal measured at the detected discs (`csf_over_body`: bright fluid, as
#   on T2) is recorded beside it. An unsure image call is settled by that signal (`settled_by`); had neither been
#   clear, `value` would be null with a `best_guess` and a `sequence_uncertain` flag; give `sequence="T2"`
#   (`--sequence T2`) when you know it;
# * there is no sacrum in view, so the levels rest on the bodies' appearance alone (`labelling_ambiguous`), and the
#   level estimates show a one-level step (`transitional_vertebra_suspected`); `labelling_alternative` names the
#   likelier way the labels are wrong if they are (here every body one level further from the sacrum; on the val
#   split's cropped and mirrored views it names the correcting shift for 13 of the 17 wrong cases,
#   `openspine evaluate detection --data ../shared/data --split val`, see [Accuracy and speed](../accuracy.md));
# * L1 … L4 run on past a side of the imaged volume (`vertebra_at_volume_side`: a body whose section on the first or
#   last slice is at least 0.8 of its largest and that does not reach the other side, as where the spine leaves a
#   narrow, oblique or off-centre slab): their positions are those of the part in view, and a spine that leaves the
#   volume can lose a body at its ends, so this counts as a labelling flag too ([Detection](../detection.md#other-acquisitions-thick-slices-tilt-oblique-prescription-coarse-pixels));
# * the highest body would be T10, outside the levels the detector was trained and validated on (T11 … S1), so its
#   label is withheld and it keeps a `note`:

# %%
vertebra_table(tl)

# %% [markdown]
# The disc next to the unlabelled body has no level and is not graded. The lumbar discs in view keep their levels
# but are not graded either: with no sacrum in view, and no body the detector is sure of (scored 0.25 or more)
# reaching L5, nothing anchors the count of levels, so grades could land on the wrong disc (`grades_withheld`, with
# the reason in each disc's `note`). `L4-L5` and `L5-S1` lie below the lowest vertebra found, outside the field of
# view, and are listed as not graded for that reason.

# %%
discs = tl.to_dataframe("discs")
assert not any(g.available for d in tl.discs for g in d.grades.values())  # what the text above says
assert any(f.startswith("grades_withheld: T12-L1") and "no sacrum in view" in f for f in tl.flags)
assert any(f.startswith("not graded: L4-L5, L5-S1 (below the lowest vertebra found") for f in tl.flags)
discs[discs.grading.isna() | (discs.grading == "pfirrmann")][["level", "grading", "grade", "probability", "note"]]

# %% [markdown]
# Saying the sequence removes the guess (its source becomes `user`); the labels and grades stay the same:

# %%
tl_t2 = openspine.analyze(tl_scan, sequence="T2")
print(tl_t2.input.sequence)
print([f for f in tl_t2.flags if f.startswith("sequence")] or "no sequence flag")
assert [v.label for v in tl_t2.vertebrae] == [v.label for v in tl.vertebrae]
assert [d.to_dict()["grades"] for d in tl_t2.discs] == [d.to_dict()["grades"] for d in tl.discs]

# %% [markdown]
# **A cross-check, not a validation.** The Spinal Cord Toolbox tutorial places the T9-T10 disc at voxel
# (27, 76, 187) of this file (not verified; its labels sit on the spinal cord, posterior to the disc). openspine's
# highest disc — the one between the bodies it calls T10 (withheld) and T11 — lies at that height, so by that
# reference **every label here is one level toward the sacrum**: the bodies are T9 … L3, not T10 … L4, and the discs
# labelled T12-L1 … L3-L4 are T11-T12 … L2-L3. This is the error the flags above warn of, and
# `labelling_alternative` names the right shift. Without a sacrum in view, read the labels as a guess:

# %%
reference_mm = tl_scan.voxel_to_world(np.array([[27.0, 76.0, 187.0]]))[0]
for disc in tl.discs[:3]:
    distance = np.linalg.norm(np.asarray(disc.centroid_mm) - reference_mm)
    height = disc.centroid_mm[2] - reference_mm[2]
    print(f"{disc.level.value if disc.level else 'unlabelled':>10}: voxel {np.round(disc.centroid_voxel, 1)}, "
          f"{distance:5.1f} mm from the reference, {height:+5.1f} mm above it")  # fmt: skip

# %%
alternative = next(f for f in tl.flags if f.startswith("labelling_alternative"))
print(alternative)
assert "further from the sacrum" in alternative  # what the text above reads from it

# %%
fig = tl.plot(width=600)

# %% [markdown]
# ## 2. A cervical scan (skull base to about T5)
#
# The detector has never seen a cervical spine: by itself it calls cervical bodies L1 … S1 (see *Accuracy and
# speed*). The image recogniser looks at the picture first; when it sees the cervical spine, every label is
# withheld (`cervical_field_of_view`, `labels_withheld`), the bodies are kept unlabelled, and nothing is graded.

# %%
c_scan = openspine.load_scan(DATA / "sct" / "sct-example-t2" / "image.nii.gz")
print(c_scan)
cervical = openspine.analyze(c_scan)
summary(cervical)

# %%
vertebra_table(cervical)

# %%
print("graded discs:", sum(1 for d in cervical.discs for g in d.grades.values() if g.grade is not None))
fig = cervical.plot(width=600)

# %% [markdown]
# The cervical screen is coarse: the recogniser's cervical positives come from two patients only (its card lists
# this under *limitations*). Where it misses a cervical scan, the labels would be lumbar names on cervical bodies —
# check the field of view of any scan that is not lumbar.

# %% [markdown]
# ## 3. A lumbar T1 slice: labels yes, grades withheld
#
# The detector was trained on T1, T2 and water-fat images, so a lumbar T1 slice gets its labels. The grader was
# trained on T2 only, so every grading is withheld, with the reason, and `grades_withheld` says so once.

# %%
t1 = openspine.analyze(DATA / "spider" / "31" / "t1.nii.gz")
summary(t1)

# %%
t1_discs = t1.to_dataframe("discs")
t1_discs[t1_discs.level == "L4-L5"][["level", "grading", "grade", "note"]]

# %%
assert all(not g.available for d in t1.discs for g in d.grades.values()), "a T1 scan got a grade"
fig = t1.plot(width=500)

# %% [markdown]
# ## 4. A slice stored the wrong way round: refused, with what to turn
#
# A wrong orientation header, or a picture shown facing right, puts the spine backwards in front of the models. The
# same val slice as above, stored reversed front to back with its header left as it was: the labelling is unsure,
# the orientation recogniser reads the turn, and the scan is refused (`out_of_scope`, exit status 3 on the command
# line). `input.way_round` records who vouched for the orientation.

# %%
img = openspine.load_scan(DATA / "spider" / "31" / "image.nii.gz")
backwards = openspine.Scan(np.ascontiguousarray(np.asarray(img.array)[:, ::-1]), img.affine)
turned = openspine.analyze(backwards)
print(turned.out_of_scope)
print("way round:", turned.input.way_round)
print("as stored:", openspine.analyze(img).input.way_round)

# %%
assert turned.out_of_scope is not None and not turned.vertebrae, "a backwards slice was analysed"
fig = turned.plot(width=500)

# %% [markdown]
# ## Where this leaves you
#
# | scan | labels | grades | what to do |
# |---|---|---|---|
# | lumbar / thoraco-lumbar T2 | T11 … S1; higher bodies kept unlabelled; without a sacrum in view flagged, and may be a level off or more | lumbar discs, where a sacrum (or a sure body at L5) anchors the levels; none otherwise | give `--sequence` when the header does not say it; check flagged labels by counting from the sacrum on another series |
# | cervical | withheld (bodies kept) | none | not covered yet: no cervical training masks |
# | lumbar T1, STIR, other | T11 … S1 | withheld | a T2 series of the same study |
# | stored upside down, backwards or turned | none (refused) | none | fix the header, or turn the picture |
#
# In a cohort, `flags` and the `note` columns of `vertebrae.csv` and `discs.csv` find these cases (see the cohort
# tutorial); `openspine batch` counts a scan where nothing is in scope (no vertebral body, not a sagittal image) as
# out of scope, exit status 3.
