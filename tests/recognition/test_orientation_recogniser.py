"""The orientation recogniser on real pictures: a val slice the right way round and turned each way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openspine.detection.orientation import TURNS, turn_to_look
from openspine.io import load_scan
from openspine.models import load_model
from openspine.recognition.orientation import MODEL_NAME, ORIENTATIONS, RIGHT_WAY_ROUND, read_orientation
from openspine.scan import Scan


def test_the_card_names_the_eight_ways_in_order() -> None:
    card = load_model(MODEL_NAME).card.data
    assert card["classes"]["orientation"] == list(ORIENTATIONS) and ORIENTATIONS[0] == RIGHT_WAY_ROUND
    assert "spider-57" in card["training_data"]["excluded"]  # stored upside down in the data set


@pytest.mark.parametrize("k", range(len(ORIENTATIONS)))
def test_a_val_slice_is_read_the_way_it_lies(shared_data: Path, k: int) -> None:
    view = load_scan(shared_data / "spider/32/image.nii.gz").to_sagittal()
    a = np.asarray(view.scan.array)
    stored = a if k == 0 else turn_to_look(TURNS[k - 1][1])(a)
    reading = read_orientation(Scan(np.ascontiguousarray(stored), view.scan.affine).to_sagittal())
    assert reading.likeliest == ORIENTATIONS[k]
    assert abs(sum(reading.probabilities.values()) - 1.0) < 1e-3
