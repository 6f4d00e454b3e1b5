"""The recogniser's widening augmentation: the shared volumes' axial and coronal cuts are narrow strips, real ones are
not, so a share of the training samples (and the evaluation's widened view) reflect a picture's content sideways."""

from __future__ import annotations

import numpy as np

from openspine.recognition.image import widened
from openspine.training.datasets.pictures import Picture
from openspine.training.recognizer import TrainConfig, render


def test_widened_reflects_the_content_outwards_to_the_width() -> None:
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    wide = widened(img, 9)
    assert wide.shape == (3, 9)
    np.testing.assert_array_equal(wide[:, 2:6], img)  # the picture in the middle
    np.testing.assert_array_equal(wide[:, 1::-1], img[:, :2])  # mirrored copies beside it, no black
    assert widened(img, 4) is img and widened(img, 2) is img  # as wide already: unchanged


def _strip_volume() -> Picture:
    """A volume [S→I, A→P, L→R] 60 mm wide left to right, like the shared ones, with texture everywhere."""
    arr = np.random.default_rng(0).integers(40, 255, (120, 160, 60), dtype=np.uint8)
    return Picture("strip", "volume", arr, (1.0, 1.0, 1.0), 0, 0)


def test_widening_fills_the_width_of_a_strip_and_leaves_the_stream_of_zero_alone() -> None:
    pic = _strip_volume()
    plain = render(pic, np.random.default_rng(3), plane_p=(0.0, 0.0, 1.0))  # a coronal cut: 120 × 60 mm
    same = render(pic, np.random.default_rng(3), plane_p=(0.0, 0.0, 1.0), widen_p=0.0)
    np.testing.assert_array_equal(plain.image, same.image)  # widen_p 0 draws nothing more
    covered = []
    for seed in range(8):
        s = render(pic, np.random.default_rng(seed), plane_p=(0.0, 0.0, 1.0), widen_p=1.0)
        covered.append(float((s.image > 0).any(axis=0).mean()))  # share of model columns with picture in them
        assert s.plane == 2
    narrow = float((plain.image > 0).any(axis=0).mean())
    assert max(covered) > 2 * narrow  # widened well beyond the strip at least once in eight draws
    assert TrainConfig().widen_p == 0.5 and TrainConfig().to_dict()["widen_p"] == 0.5
