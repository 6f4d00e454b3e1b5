"""Disc features on synthetic spines of known geometry and intensity."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from grading_helpers import LEVELS, SPACING, synthetic_spine

from openspine.errors import GeometryError
from openspine.grading.crop import DiscGeometry, disc_frame
from openspine.grading.features import FEATURE_NAMES, disc_features, features_for_discs
from openspine.levels import DiscLevel

# synthetic_spine: discs 9 mm high between bodies 38 mm wide (intensity 100), background 15
DISC_H, WIDTH = 9.0, 38.0


def _features(values: list[float], tilt: float = 8.0) -> dict[str, np.ndarray]:
    arr, geoms = synthetic_spine(values, tilt_deg=tilt)
    f = features_for_discs(arr, [geoms[lv] for lv in LEVELS], SPACING, list(LEVELS))
    return {n: f[:, i] for i, n in enumerate(FEATURE_NAMES)}


def test_one_value_per_name_for_every_disc():
    arr, geoms = synthetic_spine([300, 250, 200, 120, 60])
    f = features_for_discs(arr, [geoms[lv] for lv in LEVELS], SPACING, list(LEVELS))
    assert f.shape == (5, len(FEATURE_NAMES)) and np.isfinite(f).all()
    assert features_for_discs(arr, [], SPACING, []).shape == (0, len(FEATURE_NAMES))


def test_shape_features_are_exact():
    f = _features([300, 250, 200, 120, 60])
    np.testing.assert_allclose(f["height_over_width"], DISC_H / WIDTH, rtol=1e-6)
    np.testing.assert_allclose(f["anterior_height"], DISC_H / WIDTH, rtol=1e-6)
    np.testing.assert_allclose(f["posterior_height"], DISC_H / WIDTH, rtol=1e-6)
    np.testing.assert_allclose(f["width_mm"], WIDTH, rtol=1e-6)
    np.testing.assert_allclose(f["slip_posterior"], 0.0, atol=1e-9)
    np.testing.assert_allclose(f["endplate_angle"], 0.0, atol=1e-9)
    assert list(f["level"]) == [20, 21, 22, 23, 24]  # L1-L2 … L5-S1: the upper vertebra's number


def test_signal_is_measured_against_the_vertebral_bodies():
    values = [300.0, 250.0, 200.0, 120.0, 60.0]
    f = _features(values)
    # uniform discs inside, bodies of 100: the nucleus reads value / 100 (noise σ 2 on the background only)
    np.testing.assert_allclose(f["nucleus_mean"], np.array(values) / 100, rtol=0.01)
    np.testing.assert_allclose(f["nucleus_std"], 0.0, atol=0.02)
    assert list(np.argsort(-f["disc_mean"])) == [0, 1, 2, 3, 4]  # brighter disc, higher value


def test_independent_of_tilt():
    a, b = _features([300, 250, 200, 120, 60], tilt=0.0), _features([300, 250, 200, 120, 60], tilt=10.0)
    for name in ("height_over_width", "nucleus_mean", "disc_median", "annulus_anterior", "slip_posterior"):
        np.testing.assert_allclose(a[name], b[name], atol=0.02, err_msg=name)


def test_slip_of_the_upper_body():
    arr, geoms = synthetic_spine([300, 250, 200, 120, 60], tilt_deg=0.0)
    g = geoms[DiscLevel.L4_L5]
    shift_mm = 3.8  # the upper body 10 % of the width further anterior (columns run anterior → posterior)
    d = shift_mm / SPACING[1]
    slipped = replace(
        g,
        upper_anterior=(g.upper_anterior[0], g.upper_anterior[1] - d),
        upper_posterior=(g.upper_posterior[0], g.upper_posterior[1] - d),
    )
    f = disc_features(arr[:, :, 0], slipped, SPACING[:2], DiscLevel.L4_L5)
    width = disc_frame(slipped, SPACING[:2]).width_mm
    assert f[FEATURE_NAMES.index("slip_posterior")] == pytest.approx(-shift_mm / width, rel=1e-6)
    assert f[FEATURE_NAMES.index("slip_anterior")] == pytest.approx(-shift_mm / width, rel=1e-6)


def test_degenerate_geometry_is_refused():
    arr, _ = synthetic_spine([300, 250, 200, 120, 60])
    flat = DiscGeometry((10.0, 10.0), (10.0, 10.0), (20.0, 10.0), (20.0, 30.0), 0)
    with pytest.raises(GeometryError):
        disc_features(arr[:, :, 0], flat, SPACING[:2], DiscLevel.L4_L5)
