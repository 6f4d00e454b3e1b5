"""The SPIDER part of the shared development set: which slices, which split, which radiologists' grades.

``spider/gradings.csv`` holds one row per graded disc (SPIDER's own columns plus ``level``); ``index.csv`` gives
each patient's folder and split. Labels are mapped to the grader's head names (:data:`SPIDER_COLUMNS`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ConfigError
from ...levels import DiscLevel

# The built-in grader's heads (openspine.grading.heads.BUILTIN_HEADS) and the SPIDER column each one is learnt
# from (spider/gradings.csv, spelling as in SPIDER).
SPIDER_COLUMNS: dict[str, str] = {
    "pfirrmann": "Pfirrman grade",
    "narrowing": "Disc narrowing",
    "spondylolisthesis": "Spondylolisthesis",
    "endplate_defect_upper": "UP endplate",
    "endplate_defect_lower": "LOW endplate",
    "marrow_change": "Modic",
    "herniation": "Disc herniation",
    "bulging": "Disc bulging",
}


@dataclass(frozen=True)
class SpiderCase:
    """One SPIDER patient: its slice, split and the grades of each graded disc (head name → class string)."""

    patient: str
    image: Path
    split: str
    labels: dict[DiscLevel, dict[str, str]] = field(default_factory=dict)


def read_spider(data_dir: str | os.PathLike[str], splits: tuple[str, ...] = ("train", "val")) -> list[SpiderCase]:
    """Read the SPIDER cases of the given splits, sorted by patient number.

    Raises:
        ConfigError: ``data_dir`` is not the shared data folder (no index.csv or spider/gradings.csv).
    """
    root = Path(data_dir)
    index, grades = root / "index.csv", root / "spider" / "gradings.csv"
    for p in (index, grades):
        if not p.is_file():
            raise ConfigError(f"'{root}' is not the shared data folder: '{p}' is missing")
    cases: dict[str, SpiderCase] = {}
    with open(index, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["dataset"] != "spider" or row["split"] not in splits:
                continue
            pid = row["id"].removeprefix("spider-")
            image = root / row["path"] / "image.nii.gz"
            cases[pid] = SpiderCase(patient=pid, image=image, split=row["split"])
    with open(grades, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            case = cases.get(row["Patient"])
            if case is None:
                continue
            level = DiscLevel.parse(row["level"])
            case.labels[level] = {head: str(int(float(row[col]))) for head, col in SPIDER_COLUMNS.items()}
    return sorted(cases.values(), key=lambda c: int(c.patient) if c.patient.isdigit() else c.patient)


# every file of a SPIDER patient that a user could fine-tune on: the T2 and T1 slices, as NIfTI and as PNG
PATIENT_FILES = ("image.nii.gz", "image.png", "t1.nii.gz", "t1.png")


def patient_scan_fingerprints(cases: Iterable[SpiderCase]) -> list[str]:
    """The content fingerprints (:func:`.discs.view_fingerprint`) of every file of these patients' folders, sorted:
    a model card lists them so that a fine-tune can tell when its validation scans are a base model's training
    patients (their figures would be optimistic)."""
    from ...io import load_scan
    from .discs import view_fingerprint

    out: set[str] = set()
    for case in cases:
        for name in PATIENT_FILES:
            path = case.image.parent / name
            if path.is_file():
                # a picture's array does not depend on its pixel size: any placeholder reads the same voxels
                spacing = 1.0 if path.suffix == ".png" else None
                out.add(view_fingerprint(load_scan(path, pixel_spacing=spacing).to_sagittal()))
    return sorted(out)
