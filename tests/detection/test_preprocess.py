"""Slice selection, model-grid mapping and normalisation (shared by inference and training)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from openspine.detection.preprocess import (
    BLOCK_FROM_STEP,
    choose_slices,
    normalise,
    plane_grid,
    resample_slices,
    sample_grid,
)


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


def _blurred_then_sampled(img: np.ndarray, rows: np.ndarray, cols: np.ndarray, step: tuple[float, float]) -> np.ndarray:
    a = ndimage.gaussian_filter(img, sigma=[(f - 1.0) / 2.0 for f in step], mode="nearest")
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return ndimage.map_coordinates(a, np.stack([rr, cc]), order=1, mode="nearest", prefilter=False)


def test_sampling_a_much_larger_image_averages_blocks_first_with_the_same_result() -> None:
    rng = np.random.default_rng(0)
    # smooth anatomy-like content with noise, 12 times finer than the grid on rows and 20 times on columns
    yy, xx = np.mgrid[0:1200, 0:1000].astype(np.float32)
    img = (100 + 80 * np.sin(yy / 90.0) * np.cos(xx / 70.0) + rng.normal(0, 10, yy.shape)).astype(np.float32)
    step = (12.0, 20.0)
    rows, cols = np.arange(0, 1200, step[0]) + 0.3, np.arange(0, 1000, step[1]) - 0.4
    out = sample_grid(img, rows, cols, step)
    assert out.shape == (len(rows), len(cols)) and out.dtype == np.float32
    difference = np.abs(out - _blurred_then_sampled(img, rows, cols, step))
    assert difference[2:-2, 2:-2].max() < 0.5  # of a 160-unit range
    assert difference.max() < 3.0  # at the edges a block's mean stands in for the image extended by its edge pixel
    # below the block step the result is exactly the blur then the linear sample
    small = (BLOCK_FROM_STEP - 0.5, 3.0)
    rows, cols = np.arange(0, 1200, small[0]), np.arange(0, 1000, small[1])
    assert np.array_equal(sample_grid(img, rows, cols, small), _blurred_then_sampled(img, rows, cols, small))


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
