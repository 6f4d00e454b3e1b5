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
# # A small cohort: batch run, tables, figures
#
# `openspine batch` (in Python: `openspine.batch.runner.run_batch`) analyses every scan under a folder and gathers
# the results into cohort tables. Here: every validation scan of the shared development data — the 3D lumbar and
# thoraco-lumbar volumes and the 30 mid-sagittal lumbar T2 slices — then pandas and matplotlib for the usual first
# look at a cohort: the grade distribution per level, which scans carry flags, and a per-level figure. At the end
# the slices' Pfirrmann grades are set beside the radiologists' for the same patients.
#
# **Data** (validation split, never trained on): FastCleverSeg volumes (Chu et al., *PLoS ONE* 10(11):e0143327,
# 2015; Burian et al., *BMC Musculoskeletal Disorders* 20:152, 2019; Zukić et al., *Computer Graphics Forum*
# 33(6):190–204, 2014; Menezes-Reis et al., *Quant Imaging Med Surg* 6(4):402–412, 2016; all as packaged by Ramos
# et al., *Magnetic Resonance Imaging* 109:134–146, 2024), a Spinal Cord Toolbox volume (De Leener et al.,
# *NeuroImage* 145:24–43, 2017, MIT) and SPIDER slices and gradings (van der Graaf et al., *Scientific Data*
# 11:264, 2024, doi:10.1038/s41597-024-03090-w, CC BY 4.0).
#
# Needs `pip install '.[plot,pandas]'`.

# %%
# ruff: noqa: B018, E501 (a notebook: imports where they are used, tables shown by a bare expression)
import json
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from openspine.batch.runner import run_batch

DATA = Path(os.environ.get("OPENSPINE_DATA", "../shared/data")).resolve()
WORK = Path(tempfile.mkdtemp(prefix="openspine-cohort-"))
print("outputs under:", WORK, "(a new temporary folder each run: remove it when done)")

# %% [markdown]
# ## 1. The cohort folder
#
# Any folder of DICOM studies, NIfTI files or a BIDS dataset will do. We copy the validation NIfTI files into one,
# named by their id. A text file is added on purpose: nothing under the input vanishes silently, it is listed in
# `skipped.csv` with the reason.

# %%
index = pd.read_csv(DATA / "index.csv")
val = index[index.split == "val"]
chosen = val.id.tolist()  # every validation scan: volumes and SPIDER slices
cohort = WORK / "cohort"
cohort.mkdir()
for item in chosen:
    row = index.set_index("id").loc[item]
    shutil.copy(DATA / row.path / row.image, cohort / f"{item}.nii.gz")
(cohort / "notes.txt").write_text("scan list exported from PACS\n")
print(len(chosen), "scans:", chosen)

# %% [markdown]
# ## 2. The run
#
# One call; the same as `openspine batch cohort/ --out results/ --formats json,csv --workers 2`. It never stops for one bad
# case; a rerun skips finished cases.

# %%
results = WORK / "results"
summary = run_batch(cohort, results, formats=("json", "csv"), workers=2)
print(summary.line())
print(f"{summary.seconds:.1f} s")
print(sorted(p.name for p in results.iterdir()))

# %%
pd.read_csv(results / "skipped.csv")

# %% [markdown]
# ## 3. The cohort tables
#
# `results/discs.csv` has one row per case × disc × grading (`results/vertebrae.csv` one per case × vertebra), built
# from each case's `result.json`.

# %%
discs = pd.read_csv(results / "discs.csv", keep_default_na=False)
vertebrae = pd.read_csv(results / "vertebrae.csv", keep_default_na=False)
print(discs.shape, vertebrae.shape)
discs.head()

# %% [markdown]
# Grade distribution per level: Pfirrmann grades counted per disc level, over the cohort.

# %%
LUMBAR = ["T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
pf = discs[(discs.grading == "pfirrmann") & (discs.grade != "")].copy()
pf["grade"] = pf.grade.astype(int)
table = pd.crosstab(pd.Categorical(pf.level, LUMBAR, ordered=True), pf.grade).rename_axis(
    index="level", columns="Pfirrmann"
)
table

# %% [markdown]
# The same for every grading, as the share of discs called present (grade ≥ 1; Pfirrmann ≥ 3; Modic any type):

# %%
graded = discs[(discs.grade != "") & discs.level.isin(LUMBAR)].copy()
graded["grade"] = graded.grade.astype(int)
threshold = {"pfirrmann": 3}
graded["positive"] = graded.grade >= graded.grading.map(threshold).fillna(1)
graded.pivot_table(index="level", columns="grading", values="positive", aggfunc="mean").reindex(LUMBAR).round(2)

# %% [markdown]
# ## 4. Which scans are flagged, and why
#
# Every case's `result.json` says what the scan was taken to be and lists its flags (labels withheld, low
# confidence, uncertain sequence, …). One row per case:

# %%
rows = []
for case_dir in sorted((results / "cases").iterdir()):
    if not (case_dir / "result.json").is_file():
        continue  # a failed case holds its failure record instead (failures.csv lists it)
    doc = json.loads((case_dir / "result.json").read_text())
    rows.append(
        {
            "case": case_dir.name,
            "sequence": (doc["input"].get("sequence") or {}).get("value"),
            "sequence source": (doc["input"].get("sequence") or {}).get("source"),
            "field of view": (doc["input"].get("field_of_view") or {}).get("value"),
            "vertebrae": len(doc["vertebrae"]),
            "n_flags": len(doc["flags"]),
            "flag_kinds": sorted({f.split(":")[0] for f in doc["flags"]}),
        }
    )
cases = pd.DataFrame(rows)
cases

# %%
flagged = cases[cases.n_flags > 0]
print(f"{len(flagged)} of {len(cases)} scans carry at least one flag")
cases.explode("flag_kinds").groupby("flag_kinds").case.count().sort_values(ascending=False)

# %% [markdown]
# Low-confidence calls per level are in the probabilities: the share of graded discs whose chosen Pfirrmann grade
# has a probability below 0.6 (the report highlights those cells):

# %%
pf.assign(unsure=pf.probability.astype(float) < 0.6).groupby("level", observed=True).unsure.mean().reindex(
    LUMBAR
).round(2)

# %% [markdown]
# ## 5. A per-level figure

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
table.plot(kind="bar", stacked=True, ax=axes[0], colormap="RdYlGn_r", width=0.8)
axes[0].set(title="Pfirrmann grade per level", xlabel="disc level", ylabel="discs")
axes[0].legend(title="Pfirrmann", fontsize=8)
mean_p = pf.groupby("level").probability.apply(lambda s: s.astype(float).mean()).reindex(LUMBAR)
axes[1].bar(mean_p.index, mean_p.values, color="tab:blue")
axes[1].set(title="mean probability of the chosen Pfirrmann grade", xlabel="disc level", ylim=(0, 1))
fig.tight_layout()

# %% [markdown]
# ## 6. Beside the radiologists' grades
#
# The 30 SPIDER slices come with the radiologists' Pfirrmann grades (`spider/gradings.csv`, graded on the whole 3D
# study, not on the one slice openspine sees). The validation figures with their intervals come from
# `openspine evaluate grading --data ../shared/data --split val` (see *Accuracy and speed*); the join below is how
# you would check a cohort of your own.

# %%
reference = pd.read_csv(DATA / "spider" / "gradings.csv")
reference["case"] = "spider-" + reference.Patient.astype(str)
ours = pf[pf.case.str.startswith("spider-")][["case", "level", "grade", "probability"]]
both = ours.merge(reference[["case", "level", "Pfirrman grade"]], on=["case", "level"], how="inner")
both = both.rename(columns={"grade": "openspine", "Pfirrman grade": "radiologists"})
print(f"{len(both)} discs; same grade: {(both.openspine == both.radiologists).mean():.0%}; "
      f"within one grade: {((both.openspine - both.radiologists).abs() <= 1).mean():.0%}")  # fmt: skip
pd.crosstab(both.radiologists, both.openspine)
