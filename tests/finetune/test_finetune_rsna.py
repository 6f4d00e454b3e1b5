"""The RSNA 2024 lumbar reader on a small synthetic folder in the challenge's exact layout."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from dicom_fixtures import make_affine, write_series
from openspine.errors import ConfigError
from openspine.finetune.labels import read_labels
from openspine.finetune.rsna import RSNA_CONDITIONS, RSNA_LEVELS, prepare_rsna

SEVERITIES = ["Normal/Mild", "Moderate", "Severe"]


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def make_rsna(root: Path, with_missing_grade: bool = True) -> Path:
    """Three studies: 4003 (T2 + T1 + axial), 4010 (two T2 series), 5555 (no T2 series on disk)."""
    root.mkdir(parents=True, exist_ok=True)
    conds = [*list(RSNA_CONDITIONS), "left_subarticular_stenosis", "right_subarticular_stenosis"]
    header = ["study_id"] + [f"{c}_{lv}" for c in conds for lv in RSNA_LEVELS]
    rows = []
    rng = np.random.default_rng(0)
    for study in (4003, 4010, 5555):
        vals: list[object] = [study] + [SEVERITIES[int(rng.integers(0, 3))] for _ in header[1:]]
        rows.append(vals)
    if with_missing_grade:
        rows[0][header.index("spinal_canal_stenosis_l5_s1")] = ""
    _write_csv(root / "train.csv", header, rows)
    _write_csv(
        root / "train_series_descriptions.csv",
        ["study_id", "series_id", "series_description"],
        [
            [4003, 702807833, "Sagittal T2/STIR"],
            [4003, 1054713880, "Sagittal T1"],
            [4003, 2448190387, "Axial T2"],
            [4010, 99, "Sagittal T2/STIR"],
            [4010, 12, "Sagittal T2/STIR"],
            [5555, 7, "Sagittal T2/STIR"],
        ],
    )
    _write_csv(
        root / "train_label_coordinates.csv",
        ["study_id", "series_id", "instance_number", "condition", "level", "x", "y"],
        [[4003, 702807833, 3, "Spinal Canal Stenosis", "L1/L2", 20.5, 14.0]],
    )
    aff = make_affine([[0, 0, 1], [0, -1, 0], [-1, 0, 0]], (1.0, 1.0, 3.5), (0, 0, 0))
    vol = (np.arange(32 * 24 * 3).reshape(32, 24, 3) % 251).astype(np.uint16)
    for study, series in ((4003, 702807833), (4003, 1054713880), (4010, 12), (4010, 99)):
        folder = root / "train_images" / str(study) / str(series)
        folder.mkdir(parents=True)
        write_series(folder, vol, aff, prefix="", shuffle_seed=None)
    return root


def test_rsna_layout_becomes_a_labels_file(tmp_path: Path):
    root = make_rsna(tmp_path / "rsna")
    summary = prepare_rsna(root, tmp_path / "labels.csv")
    assert summary.scans_dir == root / "train_images"
    assert summary.studies == 2
    assert summary.skipped == {"5555": "no Sagittal T2/STIR series with DICOM files under train_images"}
    with open(summary.labels_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == summary.rows == 10
    assert {r["scan"] for r in rows} == {"4003/702807833", "4010/12"}  # the T2 series; the lowest id of two
    # the values are those of train.csv, mapped Normal/Mild → 0, Moderate → 1, Severe → 2
    with open(root / "train.csv", newline="") as f:
        src = {r["study_id"]: r for r in csv.DictReader(f)}
    code = {"Normal/Mild": "0", "Moderate": "1", "Severe": "2", "": ""}
    for r in rows:
        study = r["scan"].split("/")[0]
        key = {v: k for k, v in RSNA_LEVELS.items()}[r["level"]]
        for cond, grading in RSNA_CONDITIONS.items():
            assert r[grading] == code[src[study][f"{cond}_{key}"]]
    assert (
        next(r for r in rows if r["scan"].startswith("4003") and r["level"] == "L5-S1")["central_canal_stenosis"] == ""
    )
    # the file reads as fine-tuning labels and every scan path is a DICOM series folder
    table = read_labels(summary.labels_csv, summary.scans_dir, {g: ("0", "1", "2") for g in RSNA_CONDITIONS.values()})
    assert set(table.gradings) == {"central_canal_stenosis", "foraminal_stenosis_left", "foraminal_stenosis_right"}
    for p in table.scan_paths.values():
        assert p.is_dir() and len(list(p.glob("*.dcm"))) == 3


def test_rsna_series_is_readable_as_a_sagittal_scan(tmp_path: Path):
    from openspine.io import load_scan

    root = make_rsna(tmp_path / "rsna")
    summary = prepare_rsna(root, tmp_path / "labels.csv")
    scan = load_scan(summary.scans_dir / "4003" / "702807833")
    assert scan.to_sagittal().scan.shape == (32, 24, 3)


def test_rsna_errors_name_the_problem(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"train\.csv"):
        prepare_rsna(tmp_path, tmp_path / "x.csv")
    root = make_rsna(tmp_path / "rsna")
    text = (root / "train.csv").read_text().replace("Moderate", "Moderat", 1)
    (root / "train.csv").write_text(text)
    with pytest.raises(ConfigError, match="Moderat"):
        prepare_rsna(root, tmp_path / "x.csv")
