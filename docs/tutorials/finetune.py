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
# # Fine-tuning a grading, in two minutes
#
# A small, runnable version of [the fine-tuning tutorial](../tutorial-finetune.md): write a labels file, train a
# new head for one grading on top of the built-in network with `openspine finetune`, read its validation figures
# from its card, and use the new model with `openspine.analyze`. To stay within about two CPU minutes it uses a
# subset of patients and fewer epochs, so its figures are far less certain than the full tutorial's.
#
# Here the grading is `bulging`, taught as a fresh head (`--fresh-heads`) on the built-in backbone. That backbone
# learnt from these very bulging labels, so this is the optimistic case; the full tutorial holds the labels out of
# the base model to show the realistic one.
#
# **Data**: SPIDER slices and gradings (van der Graaf et al., *Scientific Data* 11:264, 2024,
# doi:10.1038/s41597-024-03090-w, CC BY 4.0): 40 `train` patients to train, 10 `val` patients to validate.
# Needs `pip install '.[train,pandas]' torch==2.13.0` in the openspine clone (PyTorch; pandas for the last table).

# %%
# ruff: noqa: E402 (a notebook: imports where they are used)
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import openspine
from openspine.training.datasets.spider import read_spider

DATA = Path(os.environ.get("OPENSPINE_DATA", "../shared/data")).resolve()
WORK = Path(tempfile.mkdtemp(prefix="openspine-finetune-"))
print("outputs under:", WORK, "(a new temporary folder each run: remove it when done)")

# %% [markdown]
# ## 1. The labels file
#
# One row per (scan, disc level), one column per grading named as in `result.json`, and a `split` column.

# %%
cases = read_spider(DATA, ("train", "val"))
train = [c for c in cases if c.split == "train"][:40]
val = [c for c in cases if c.split == "val"][:10]
labels = WORK / "bulging-labels.csv"
with labels.open("w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["scan", "level", "split", "bulging"])
    for c in train + val:
        for level, grades in c.labels.items():
            w.writerow([f"{c.patient}/image.nii.gz", level.value, c.split, grades["bulging"]])
print(labels.read_text().splitlines()[:4], "…", sum(1 for _ in labels.open()) - 1, "rows")

# %% [markdown]
# ## 2. Fine-tune
#
# `cli_main` takes the command line's arguments: this call is `openspine finetune --scans ../shared/data/spider
# --labels bulging-labels.csv --out bulging-grader --fresh-heads --epochs 20 --augment-copies 2 --seed 0 --threads 2
# --name grader-bulging-tutorial` (with this run's folders as the paths). The detector finds the discs (labelled
# discs it does not find are counted and left out), the frozen backbone turns each disc crop into an embedding, a new
# head is trained on the training discs, and the run checks that every other weight is unchanged. A temperature is
# then fitted on the validation discs, but kept only where it lowers the expected calibration error (ECE) measured
# 2-fold cross-fitted by patient; otherwise the head keeps temperature 1 and the run says `(no temperature
# applied)`, as here.

# %%
from openspine.finetune import cli_main

out = WORK / "bulging-grader"
t0 = time.perf_counter()
status = cli_main(
    ["--scans", str(DATA / "spider"), "--labels", str(labels), "--out", str(out), "--fresh-heads",
     "--epochs", "20", "--augment-copies", "2", "--seed", "0", "--threads", "2", "--name", "grader-bulging-tutorial"],
)  # fmt: skip
print(f"exit status {status}, {time.perf_counter() - t0:.0f} s")
assert status == 0
print(sorted(p.name for p in out.iterdir()))

# %% [markdown]
# ## 3. The new model's card
#
# The card records the new head with its classes and temperature (1 where none was kept; `calibration` gives the
# fitted temperature, the ECE before it and after it, cross-fitted, and whether it was `applied`), the validation
# figures (10 patients here: wide intervals), the base model's identity and the data used.

# %%
card = json.loads((out / "card.json").read_text())
print(card["name"], card.get("version"))
print(json.dumps(card.get("metrics", {}), indent=1)[:1500])

# %% [markdown]
# ## 4. Use it
#
# `grader=` (the command line's `--grader`) points the analysis at the new model folder. Its name and sha256 appear
# under `models` in the result; every disc gets `bulging` from the new head and the other gradings from the base
# model. Not every scan is graded: the first val patient (20) reads T2 at only 0.57, and the analysis withholds every
# grade of it (`sequence_uncertain`), the new head's and the built-in ones alike; so this takes the first val patient
# it grades and says which were withheld.

# %%
for case in val:
    result = openspine.analyze(DATA / "spider" / str(case.patient) / "image.nii.gz", grader=str(out))
    if any(g.available for d in result.discs for g in d.grades.values()):
        break
    print(f"patient {case.patient}: no grade ({result.flags[0][:80]} …)")
print("patient", case.patient, [m.name for m in result.models])
discs = result.to_dataframe("discs")
discs[discs.grading == "bulging"][["level", "grade", "probability", "note"]]
