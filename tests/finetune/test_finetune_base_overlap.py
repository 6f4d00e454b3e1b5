"""A fine-tune whose validation scans are the base model's training patients says so: the base card lists content
fingerprints of those patients' files, and the run compares its validation scans with them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from openspine.scan import Scan
from openspine.training.datasets.discs import view_fingerprint

# a sagittal slice: rows run down, columns to the front, the single slice left-right
SAGITTAL = np.array([[0, 0, 1, 0], [0, 0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]], dtype=float)


def _view(seed: int, shape: tuple[int, int] = (64, 48)) -> Scan:
    rng = np.random.default_rng(seed)
    return Scan(rng.integers(0, 255, shape).astype(np.uint8), SAGITTAL)


def test_fingerprint_is_the_voxels_not_the_file():
    a, b = _view(1), _view(1)
    assert view_fingerprint(a.to_sagittal()) == view_fingerprint(b.to_sagittal())
    assert view_fingerprint(a.to_sagittal()) != view_fingerprint(_view(2).to_sagittal())
    # the same values in another shape are another image
    flat = Scan(a.array.reshape(48, 64), SAGITTAL)
    assert view_fingerprint(flat.to_sagittal()) != view_fingerprint(a.to_sagittal())


def test_validation_scans_of_base_training_patients_are_warned(caplog: pytest.LogCaptureFixture):
    pytest.importorskip("torch")
    from openspine.finetune.core import _warn_base_overlap

    seen, unseen = _view(1).to_sagittal(), _view(2).to_sagittal()
    card = {"training_data": {"patient_scans": {"fingerprints": [view_fingerprint(seen)]}}}
    with caplog.at_level(logging.WARNING, logger="openspine"):
        _warn_base_overlap(card, {"p07/t2.nii.gz": seen, "p99/t2.nii.gz": unseen})
    assert "1 of 2 validation scans are scans of the base model's training patients (e.g. p07/t2.nii.gz)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="openspine"):
        _warn_base_overlap(card, {"p99/t2.nii.gz": unseen})
        _warn_base_overlap({"training_data": {}}, {"p07/t2.nii.gz": seen})  # a card without the list: no word
    assert caplog.text == ""


def test_builtin_card_lists_the_training_patients_and_no_val_patient(shared_data: Path):
    from openspine.io import load_scan
    from openspine.models import builtin_model_dir
    from openspine.training.datasets.spider import read_spider

    card = json.loads((builtin_model_dir("grader") / "card.json").read_text())
    listed = set(card["training_data"]["patient_scans"]["fingerprints"])
    train, val = read_spider(shared_data, ("train",))[0], read_spider(shared_data, ("val",))[0]

    def fingerprint(case, name: str) -> str:
        path = case.image.parent / name
        return view_fingerprint(load_scan(path, pixel_spacing=1.0 if name.endswith(".png") else None).to_sagittal())

    for name in ("image.nii.gz", "image.png", "t1.nii.gz"):
        if (train.image.parent / name).is_file():
            assert fingerprint(train, name) in listed, name
        if (val.image.parent / name).is_file():
            assert fingerprint(val, name) not in listed, name
