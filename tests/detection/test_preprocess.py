"""Slice selection, model-grid mapping and normalisation (shared by inference and training)."""

from __future__ import annotations

import numpy as np
import pytest

from openspine.detection.preprocess import choose_slices, normalise, plane_grid, resample_slices


def test_thick_series_uses_every_slice_and_thin_volumes_use_slabs() -> None:
    assert choose_slices(15, 4.0) == [[i] for i in range(15)]
    assert choose_slices(1, 3.0) == [[0]]
    g = choose_slices(10, 1.0)
    assert g[0] == [0, 1, 2] and g[-1] == [9] and sum(len(x) for x in g) == 10
    assert len(choose_slices(300, 1.0, max_slices=32)) == 32


def test_plane_grid_maps_pixel_centres_exactly() -> None:
    g = plane_grid((100, 80), (0.5, 0.5), 1.25, 32)
    assert g.shape == (40, 32) and g.padded == (64, 32)
    # model pixel 0 covers slice pixels 0 … 2.5: its centre is slice pixel 0.75
    assert np.allclose(g.to_slice(np.array([[0.0, 0.0]])), [[0.75, 0.75]])
    pts = np.array([[3.2, 7.9], [10.0, 0.0]])
    assert np.allclose(g.to_model(g.to_slice(pts)), pts)


def test_resampling_preserves_a_ramp_and_pads_with_zeros() -> None:
    rows = np.arange(100, dtype=np.float32)[:, None] * np.ones((1, 80), np.float32)
    g = plane_grid((100, 80), (0.5, 0.5), 1.25, 32)
    out = resample_slices(rows[None], (0.5, 0.5), g)
    assert out.shape == (1, 64, 32)
    centres = g.to_slice(np.stack([np.arange(40), np.zeros(40)], 1))[:, 0]
    assert np.allclose(out[0, 5:35, 10], centres[5:35], atol=0.05)  # linear data survives (away from the edges)
    assert np.all(out[0, 40:] == 0)


def test_normalise_percentiles_and_valid_mask() -> None:
    a = np.linspace(0, 1000, 10001, dtype=np.float32).reshape(1, -1)
    n = normalise(a)
    assert n.min() == 0.0 and n.max() == 1.0
    assert float(np.mean(n == 0.0)) == pytest.approx(0.005, abs=0.001)
    valid = np.zeros_like(a, bool)
    valid[:, 5000:] = True
    n2 = normalise(a, valid)
    assert np.all(n2[:, :5000] == 0.0) and n2[:, -1] == 1.0
    assert np.all(normalise(np.full((4, 4), 7.0)) == 0.0)  # constant: no division by zero
