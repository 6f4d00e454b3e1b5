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
# # T1 with T2: reading a study, not one series
#
# Radiologists read a lumbar study from its sagittal T1 and T2 series together. openspine reads a T1 series beside
# the main (T2) one: from a DICOM study folder that holds both, or given separately (`t1=` in Python, `--t1` on the
# command line). This tutorial reads real T2 / T1 pairs of one patient:
#
# 1. one patient's mid-sagittal T2 and T1 slices: recognised, detected, matched by level;
# 2. a pair whose two series disagree about the levels: flagged, nothing merged;
# 3. every validation patient with a T1 slice: how often the two series agree, and what the T1 adds to the grades
#    today (nothing yet: why, and how to train a grader that reads both).
#
# **Data**: SPIDER (van der Graaf et al., *Scientific Data* 11:264, 2024, doi:10.1038/s41597-024-03090-w,
# CC BY 4.0): the T2 slice and the T1 slice of each patient come from two separate series (not registered:
# other position, size and pixel spacing). Needs `pip install '.[plot,pandas]'`.

# %%
import os
from pathlib import Path

import pandas as pd

import openspine

DATA = Path(os.environ.get("OPENSPINE_DATA", "../shared/data")).resolve()
SPIDER = DATA / "spider"

# %% [markdown]
# ## 1. One patient, two series
#
# `openspine.analyze(T2, t1=T1)` (on the command line `openspine analyze T2 --t1 T1 --out DIR`) detects the spine on
# both series, checks that the T1 reads as T1, and matches the bodies and discs by level.

# %%
result = openspine.analyze(SPIDER / "32" / "image.nii.gz", t1=SPIDER / "32" / "t1.nii.gz")
(other,) = result.other_series
print("T1 sequence:      ", other.input.sequence)
print("levels agree:     ", other.match.agree)
print("discs matched:    ", ", ".join(other.match.discs))
print("used for grading: ", other.used_for_grading)
print("note:             ", other.note)
for flag in result.flags:
    print("flag:", flag)

# %% [markdown]
# Each grade says which series it was read from (`series`; `T2+T1` where a grader read both series). openspine
# ships no grader that reads both (section 3 says why), so every grade here is read from the T2 series:

# %%
discs = result.to_dataframe("discs")
graded = discs[discs["grade"].notna()]
graded.pivot(index="level", columns="grading", values="series")

# %% [markdown]
# The overlay shows both series side by side: the T1 panel carries the bodies found on the T1 slice and, at each
# matched disc, the same disc's grades. `width` is each panel's width in pixels, so this picture is two panels
# (2 × 900 + 8 pixels) wide.

# %%
fig = result.plot(width=900)

# %% [markdown]
# ## 2. When the two series disagree
#
# On patient 58 (a training patient) the detector finds no sacrum on the T2 slice, so the T2 labels rest on the
# bodies' appearance alone (`labelling_ambiguous`), while the T1 labels are anchored at S1; the two patterns of disc
# spacings fit only with one series' labels shifted by a level. openspine does not guess which one is right: the
# match is refused with a `series_mismatch` flag and nothing is paired. Read beside the T2, the T1 series is a check
# of the T2's level labels. (Up to detector 1.1 a validation patient, 162, showed this; since 1.2 its two series
# agree, and all validation pairs below do.)

# %%
mismatch = openspine.analyze(SPIDER / "58" / "image.nii.gz", t1=SPIDER / "58" / "t1.nii.gz")
(other,) = mismatch.other_series
print("levels agree:", other.match.agree, "| used for grading:", other.used_for_grading)
for flag in mismatch.flags:
    if flag.startswith(("series_mismatch", "t1_not_used", "labelling_ambiguous")):
        print("flag:", flag)
assert not other.match.agree  # what the text above describes

# %% [markdown]
# ## 3. Every validation patient with a T1 slice
#
# How often do the two series agree? A `series_scale` note means that the distances of one series are a constant
# multiple of the other's: in these renders both series often share one matrix size while their recorded pixel
# sizes differ, so one of the two pixel sizes is wrong (the levels can still agree).

# %%
t1_rows = pd.read_csv(SPIDER / "t1.csv")
val = t1_rows[t1_rows["split"] == "val"]
rows = []
for patient in val["patient_id"]:
    folder = SPIDER / str(patient)
    res = openspine.analyze(folder / "image.nii.gz", t1=folder / "t1.nii.gz")
    (o,) = res.other_series
    rows.append(
        {
            "patient": patient,
            "agree": o.match.agree,
            "discs matched": len(o.match.discs),
            "scale note": any(f.startswith("series_scale") for f in o.match.flags),
            "mismatch": "; ".join(f for f in o.match.flags if f.startswith("series_mismatch"))[:80],
        }
    )
survey = pd.DataFrame(rows)
print(f"{survey['agree'].sum()} of {len(survey)} pairs agree; {survey['scale note'].sum()} carry a scale note")
survey[~survey["agree"] | survey["scale note"]]

# %% [markdown]
# **What the T1 adds to the grades.** A grader that reads each disc's T2 and T1 crops together was built and trained
# on the SPIDER training patients (`openspine train grader-t1t2`). It keeps a grading only where a 5-fold
# cross-validation on the training patients shows that the T1 crop adds balanced accuracy over the same network with
# the T1 channel blanked, and ships it only where no grading then falls below the T2 grader on val. On detector
# 1.0's discs no grading passed; on detector 1.1's three passed on train (by 1.4-2.0 points) but Pfirrmann fell on
# val ([Disc grading](../grading.md#t2-and-t1-together-grader-t1t2-tried-not-shipped) has the tables), so openspine
# ships none and grades from T2. A grader trained on your own data can be used with
# `openspine analyze T2 --t1 T1 --paired-grader DIR` (`paired_grader=` in Python); its grades then carry
# `series: ["T2", "T1"]`.
