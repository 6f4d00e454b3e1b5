"""The contract between detection and grading: one DiscGeometry, its cache form, and the one level numbering."""

from __future__ import annotations

import json

import pytest

from openspine.detection import DiscGeometry
from openspine.detection.labelling import S1_ORDINAL, level_to_ordinal, ordinal_to_level
from openspine.errors import ConfigError
from openspine.grading.crop import DiscGeometry as CropGeometry
from openspine.levels import DiscLevel, Level


def _geometry() -> DiscGeometry:
    return DiscGeometry(
        upper_anterior=(10.0, 5.0),
        upper_posterior=(11.0, 25.0),
        lower_anterior=(16.0, 5.0),
        lower_posterior=(17.0, 25.0),
        slice_index=3,
        level=DiscLevel.L4_L5,
        centre=(13.5, 15.0, 3.0),
        upper_height_mm=24.0,
        lower_height_mm=23.0,
        height_anterior_mm=9.0,
        height_posterior_mm=7.0,
    )


def test_one_disc_geometry_for_detection_and_grading() -> None:
    assert CropGeometry is DiscGeometry


def test_cache_form_keeps_the_endplates_only() -> None:
    g = _geometry()
    d = json.loads(json.dumps(g.to_dict()))
    assert set(d) == {"upper_anterior", "upper_posterior", "lower_anterior", "lower_posterior", "slice_index"}
    back = DiscGeometry.from_dict(d)
    assert back == g.endplates()
    assert back.level is None and back.height_anterior_mm is None
    assert back.points().tolist() == g.points().tolist()


def test_training_ordinal_derives_from_the_level_sequence() -> None:
    assert Level.C1.ordinal == 1 and Level.L5.ordinal == 24 and Level.S1.ordinal == S1_ORDINAL == 25
    assert all(Level.from_ordinal(lv.ordinal) is lv for lv in Level.standard_sequence())
    assert all(lv.ordinal == lv.label_value for lv in Level.standard_sequence() if lv is not Level.S1)
    assert ordinal_to_level(25) is Level.S1 and level_to_ordinal(Level.T12) == 19
    for bad in (0, 26, -1):
        with pytest.raises(ConfigError):
            Level.from_ordinal(bad)
    with pytest.raises(ConfigError):
        _ = Level.L6.ordinal
