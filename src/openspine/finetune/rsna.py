"""Reader for the RSNA 2024 Lumbar Spine Degenerative Classification data, as fine-tuning input.

Expected layout (as downloaded from the challenge)::

    DIR/train.csv                        study_id, spinal_canal_stenosis_l1_l2, …,
                                         left/right_neural_foraminal_narrowing_l1_l2, …,
                                         left/right_subarticular_stenosis_l1_l2, …
    DIR/train_series_descriptions.csv    study_id, series_id, series_description ("Sagittal T2/STIR", "Sagittal T1",
                                         "Axial T2")
    DIR/train_label_coordinates.csv      study_id, series_id, instance_number, condition, level, x, y (optional)
    DIR/train_images/<study_id>/<series_id>/<instance>.dcm

:func:`prepare_rsna` writes a labels file in the fine-tuning form: one row per (study, disc level) with
``scan`` = ``<study_id>/<series_id>`` of the study's Sagittal T2/STIR series (relative to ``DIR/train_images``) and
the gradings ``central_canal_stenosis``, ``foraminal_stenosis_left`` and ``foraminal_stenosis_right`` mapped
Normal/Mild → 0, Moderate → 1, Severe → 2 (empty where the challenge gives no grade). Subarticular stenosis is an
axial finding and is not used. Note that the challenge annotated the foramina on the Sagittal T1 series; the
grade is per study, so it applies to the T2 series too, but foraminal stenosis is seen best off the midline.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .._logging import get_logger
from ..errors import ConfigError

log = get_logger("finetune.rsna")

RSNA_LEVELS: dict[str, str] = {"l1_l2": "L1-L2", "l2_l3": "L2-L3", "l3_l4": "L3-L4", "l4_l5": "L4-L5", "l5_s1": "L5-S1"}
RSNA_CONDITIONS: dict[str, str] = {
    "spinal_canal_stenosis": "central_canal_stenosis",
    "left_neural_foraminal_narrowing": "foraminal_stenosis_left",
    "right_neural_foraminal_narrowing": "foraminal_stenosis_right",
}
SEVERITY: dict[str, str] = {"normal/mild": "0", "moderate": "1", "severe": "2"}
SAGITTAL_T2 = "Sagittal T2/STIR"
GRADINGS: tuple[str, ...] = tuple(RSNA_CONDITIONS.values())
CLASSES: dict[str, tuple[str, ...]] = {g: ("0", "1", "2") for g in GRADINGS}


@dataclass(frozen=True)
class RsnaSummary:
    """What :func:`prepare_rsna` did."""

    labels_csv: Path
    scans_dir: Path
    studies: int  # studies written
    rows: int
    skipped: dict[str, str]  # study_id → why it was left out


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise ConfigError(f"'{path.parent}' is not an RSNA 2024 lumbar folder: '{path.name}' is missing")
    with open(path, newline="", encoding="utf-8-sig") as f:  # a BOM (Excel) is not part of the first name
        return [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(f)]


def prepare_rsna(root: str | os.PathLike[str], out_csv: str | os.PathLike[str]) -> RsnaSummary:
    """Turn an RSNA 2024 lumbar folder into a fine-tuning labels file (``scan`` relative to ``root/train_images``).

    Raises:
        ConfigError: the folder lacks ``train.csv`` / ``train_series_descriptions.csv`` / ``train_images``, a grade
            column is missing, or a severity value is unknown.
    """
    base = Path(root)
    train = _read_csv(base / "train.csv")
    series = _read_csv(base / "train_series_descriptions.csv")
    images = base / "train_images"
    if not images.is_dir():
        raise ConfigError(f"'{base}' is not an RSNA 2024 lumbar folder: 'train_images/' is missing")
    if train and "study_id" not in train[0]:
        raise ConfigError(f"'{base / 'train.csv'}' has no study_id column")
    needed = [f"{c}_{lv}" for c in RSNA_CONDITIONS for lv in RSNA_LEVELS]
    if train:
        absent = [c for c in needed if c not in train[0]]
        if absent:
            raise ConfigError(f"'{base / 'train.csv'}' lacks the columns {absent[:4]}{' …' if len(absent) > 4 else ''}")
    t2: dict[str, list[str]] = defaultdict(list)
    for r in series:
        if r.get("series_description", "").lower() == SAGITTAL_T2.lower():
            t2[r["study_id"]].append(r["series_id"])
    skipped: dict[str, str] = {}
    out_rows: list[dict[str, str]] = []
    for r in train:
        study = r["study_id"]
        cands = sorted(t2.get(study, []), key=lambda s: int(s) if s.isdigit() else s)
        present = [s for s in cands if (images / study / s).is_dir() and any((images / study / s).glob("*.dcm"))]
        if not present:
            skipped[study] = "no Sagittal T2/STIR series with DICOM files under train_images"
            continue
        if len(present) > 1:
            log.info("study %s has %d Sagittal T2/STIR series; using %s", study, len(present), present[0])
        for key, level in RSNA_LEVELS.items():
            row = {"scan": f"{study}/{present[0]}", "level": level}
            for cond, grading in RSNA_CONDITIONS.items():
                v = r.get(f"{cond}_{key}", "")
                if v == "":
                    row[grading] = ""
                    continue
                sev = SEVERITY.get(v.lower())
                if sev is None:
                    raise ConfigError(
                        f"study {study}: {cond}_{key} = {v!r}; expected one of Normal/Mild, Moderate, Severe"
                    )
                row[grading] = sev
            if any(row[g] for g in GRADINGS):
                out_rows.append(row)
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["scan", "level", *GRADINGS])
        w.writeheader()
        w.writerows(out_rows)
    for study, why in skipped.items():
        log.warning("RSNA study %s left out: %s", study, why)
    studies = len({r["scan"] for r in out_rows})
    log.info("RSNA: %d studies, %d disc rows written to %s", studies, len(out_rows), out)
    return RsnaSummary(labels_csv=out, scans_dir=images, studies=studies, rows=len(out_rows), skipped=skipped)
