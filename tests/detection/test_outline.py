"""Endplate corners from masks: exact answers on rectangles, rotated rectangles and anisotropic pixels."""

from __future__ import annotations

import numpy as np
import pytest

from openspine.detection.outline import (
    mask_corners,
    posterior_of,
    principal_down,
    quad_area,
    quad_corners,
    quad_height_mm,
    spine_directions,
    unit_down,
)


def _rect_points(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    rr, cc = np.mgrid[r0 : r1 + 1, c0 : c1 + 1]
    return np.stack([rr.ravel(), cc.ravel()], 1)


def test_axis_aligned_rectangle_gives_its_corners_in_order() -> None:
    c = quad_corners(_rect_points(10, 30, 40, 80), tol_px=0.1)
    # AS, PS, PI, AI: (row, col) with anterior = small col, superior = small row
    assert np.allclose(c, [[10, 40], [10, 80], [30, 80], [30, 40]])


def test_mask_corners_match_point_version() -> None:
    m = np.zeros((50, 100), bool)
    m[10:31, 40:81] = True
    assert np.allclose(mask_corners(m), quad_corners(np.argwhere(m)))


@pytest.mark.parametrize("angle_deg", [-30.0, -12.0, 0.0, 17.0, 35.0])
def test_rotated_rectangle_corners_within_a_pixel(angle_deg: float) -> None:
    # a 24 x 40 (height x width) body rotated by angle about its centre, rasterised finely
    t = np.radians(angle_deg)
    u = np.array([np.cos(t), np.sin(t)])  # inferior direction (row, col)
    v = posterior_of(u)
    centre = np.array([100.0, 100.0])
    rr, cc = np.mgrid[0:200, 0:200]
    pts = np.stack([rr.ravel(), cc.ravel()], 1).astype(float)
    a, b = (pts - centre) @ u, (pts - centre) @ v
    inside = (np.abs(a) <= 12) & (np.abs(b) <= 20)
    got = quad_corners(pts[inside], u, tol_px=0.5)
    want = np.array(
        [centre - 12 * u - 20 * v, centre - 12 * u + 20 * v, centre + 12 * u + 20 * v, centre + 12 * u - 20 * v]
    )
    assert np.max(np.linalg.norm(got - want, axis=1)) < 2.0  # rasterisation blunts a tilted corner by up to ~1.5 px
    assert quad_height_mm(got) == pytest.approx(23.0, abs=1.0)  # pixel centres lie half a pixel inside
    assert quad_area(got) == pytest.approx(23.5 * 39.5, rel=0.07)  # pixel-centre extent


def test_anisotropic_pixels_use_mm_directions() -> None:
    # 2 mm rows, 1 mm columns: a 20 mm x 40 mm rectangle is 10 rows x 40 columns
    c = quad_corners(_rect_points(5, 15, 10, 50), spacing=(2.0, 1.0), tol_px=0.1)
    assert np.allclose(c, [[5, 10], [5, 50], [15, 50], [15, 10]])
    assert quad_height_mm(c, (2.0, 1.0)) == pytest.approx(20.0)


def test_empty_region_gives_nan() -> None:
    assert np.isnan(quad_corners(np.zeros((0, 2)))).all()


def test_directions() -> None:
    assert np.allclose(unit_down(None), [1, 0])
    assert np.allclose(unit_down(np.array([-2.0, 0.0])), [1, 0])  # always points inferiorly
    assert np.allclose(posterior_of(np.array([1.0, 0.0])), [0, 1])
    cents = np.array([[0.0, 0.0], [30.0, 0.0], [60.0, 30.0]])
    d = spine_directions(cents)
    assert np.allclose(d[0], [1, 0])
    assert np.allclose(d[2], np.array([30.0, 30.0]) / np.hypot(30, 30))
    assert np.allclose(spine_directions(cents[:1]), [[1, 0]])


def test_principal_down_of_wide_body_and_round_blob() -> None:
    wide = _rect_points(0, 19, 0, 39)  # wider than tall: the minor axis is vertical
    assert np.allclose(principal_down(wide), [1, 0], atol=1e-6)
    rr, cc = np.mgrid[-10:11, -10:11]
    disk = np.stack([rr.ravel(), cc.ravel()], 1)[(rr.ravel() ** 2 + cc.ravel() ** 2) <= 100]
    assert np.allclose(principal_down(disk), [1, 0])  # round: no preferred axis, straight down
