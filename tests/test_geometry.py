"""Exact geometry: orientation codes, reorientation to the internal layout, voxel ↔ world maps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from openspine import geometry


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def test_axcodes_of_identity_and_of_the_shared_layout() -> None:
    assert geometry.axcodes(np.eye(4)) == ("R", "A", "S")
    ipr = np.array([[0, 0, 1, -38], [0, -1, 0, 190], [-1, 0, 0, 190], [0, 0, 0, 1]], dtype=float)
    assert geometry.axcodes(ipr) == ("I", "P", "R")


def test_spacing_from_affine_columns() -> None:
    aff = np.diag([0.5, 0.7, 4.0, 1.0])
    aff[:3, :3] = aff[:3, :3] @ np.eye(3)
    assert geometry.spacing(aff) == pytest.approx((0.5, 0.7, 4.0))
    rotated = np.eye(4)
    rotated[:3, :3] = _rotation(2, 30) @ np.diag([0.5, 0.7, 4.0])
    assert geometry.spacing(rotated) == pytest.approx((0.5, 0.7, 4.0))


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
@pytest.mark.parametrize("flips", [(1, 1, 1), (-1, 1, -1), (-1, -1, -1)])
def test_reorient_keeps_every_voxel_at_its_world_position(perm: tuple[int, int, int], flips: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    shape = (5, 6, 7)
    arr = rng.integers(0, 1000, size=shape)
    lin = np.zeros((3, 3))
    for ax, (w, f) in enumerate(zip(perm, flips)):
        lin[w, ax] = f * (0.5 + ax)  # distinct spacing per axis: 0.5, 1.5, 2.5 mm
    lin = _rotation(0, 12) @ lin  # oblique by 12°: still closest to the same axes
    aff = np.eye(4)
    aff[:3, :3] = lin
    aff[:3, 3] = [10.0, -20.0, 30.0]
    out, out_aff = geometry.reorient(arr, aff, geometry.INTERNAL_CODES)
    assert geometry.axcodes(out_aff) == geometry.INTERNAL_CODES
    # every voxel of the output is the input voxel at the same world position
    inv = np.linalg.inv(aff)
    for idx in itertools.product(*(range(n) for n in out.shape)):
        world = geometry.apply_affine(out_aff, np.array(idx, dtype=float))
        src = np.rint(geometry.apply_affine(inv, world)).astype(int)
        assert out[idx] == arr[tuple(src)]
    assert sorted(out.shape) == sorted(shape)


def test_reorient_of_the_internal_layout_is_the_identity() -> None:
    aff = np.array([[0, 0, 1.0, 0], [0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]])
    arr = np.arange(24).reshape(2, 3, 4)
    out, out_aff = geometry.reorient(arr, aff)
    np.testing.assert_array_equal(out, arr)
    np.testing.assert_allclose(out_aff, aff)


def test_apply_affine_single_point_and_batch() -> None:
    aff = np.diag([2.0, 3.0, 4.0, 1.0])
    aff[:3, 3] = [1, 1, 1]
    np.testing.assert_allclose(geometry.apply_affine(aff, [1, 1, 1]), [3, 4, 5])
    np.testing.assert_allclose(geometry.apply_affine(aff, [[0, 0, 0], [1, 0, 0]]), [[1, 1, 1], [3, 1, 1]])
