"""The image-noise measure and its flag: real slices as stored are not flagged, the same with heavy noise are."""

from __future__ import annotations

import numpy as np
import pytest

import openspine
from openspine.grading.noise import NOISY_ABOVE, noise_ratio

from ..conftest import shared_data_or_skip


def _rician(plane: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sd = share * float(np.percentile(plane, 99.5))
    return np.hypot(plane + rng.normal(0, sd, plane.shape), rng.normal(0, sd, plane.shape))


def test_noise_grows_with_added_noise_and_ignores_smooth_structure() -> None:
    rows, cols = np.mgrid[0:128, 0:128]
    smooth = 100.0 + 50.0 * np.sin(rows / 20.0) * np.cos(cols / 15.0)  # structure, no noise
    assert noise_ratio(smooth) == pytest.approx(0.0, abs=0.01)
    measured = [noise_ratio(_rician(smooth, share)) for share in (0.03, 0.06, 0.12)]
    assert all(m is not None for m in measured) and measured == sorted(measured)
    assert noise_ratio(np.zeros((64, 64))) is None  # no tissue: no measure


def test_a_real_slice_is_flagged_noisy_only_with_heavy_noise_added() -> None:
    import nibabel as nib

    data = shared_data_or_skip()
    img = nib.load(data / "spider" / "100" / "image.nii.gz")
    arr = np.asarray(img.dataobj, dtype=np.float64)
    assert noise_ratio(arr[:, :, 0]) < NOISY_ABOVE
    clean = openspine.analyze(openspine.Scan(arr, img.affine))
    assert not any(f.startswith("image_noisy") for f in clean.flags)
    noisy = openspine.analyze(openspine.Scan(_rician(arr[:, :, 0], 0.15)[:, :, None], img.affine))
    said = [f for f in noisy.flags if f.startswith("image_noisy")]
    assert said and "far above the scans the grader was trained on" in said[0]
    assert any(g.available for d in noisy.discs for g in d.grades.values())  # a flag, the grades kept


def test_no_noise_flag_where_nothing_is_graded() -> None:
    """The flag is about grades: a T1 slice (no grade) carries none however noisy."""
    import nibabel as nib

    data = shared_data_or_skip()
    img = nib.load(data / "spider" / "100" / "t1.nii.gz")
    arr = np.asarray(img.dataobj, dtype=np.float64)
    result = openspine.analyze(openspine.Scan(_rician(arr[:, :, 0], 0.15)[:, :, None], img.affine), sequence="T1")
    assert not any(g.available for d in result.discs for g in d.grades.values())
    assert not any(f.startswith("image_noisy") for f in result.flags)


def test_a_lone_hot_voxel_does_not_make_a_slice_noisy() -> None:
    # one voxel at 1e6 (a spike, a conversion error) had put image_noisy on 5 of 22 real scans (user test)
    import nibabel as nib

    data = shared_data_or_skip()
    for pid in ("162", "100", "31"):
        plane = np.asarray(nib.load(data / "spider" / pid / "image.nii.gz").dataobj, dtype=np.float64)[:, :, 0]
        clean = noise_ratio(plane)
        assert clean is not None
        for r, c in ((plane.shape[0] // 2, plane.shape[1] // 2), (plane.shape[0] // 3, plane.shape[1] // 2 + 7)):
            hot = plane.copy()
            hot[r, c] = 1e6
            assert noise_ratio(hot) == pytest.approx(clean, rel=0.05)
