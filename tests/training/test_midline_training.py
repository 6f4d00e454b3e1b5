"""The midline recogniser's training samples (numpy) and a smoke run to an exported model (torch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from openspine.errors import ScanReadError
from openspine.recognition.midline import AT_MM, OFF_MM
from openspine.training.datasets.pictures import Picture
from openspine.training.midline import SHADING_MIN_GAIN, TrainConfig, body_midline, render, sagittal_sample, shaded


def _volume() -> Picture:
    """A volume [S→I, A→P, L→R] of 1 mm voxels, 80 mm wide, whose left–right index encodes itself."""
    vol = np.broadcast_to(np.arange(80, dtype=np.uint8)[None, None, :] * 3, (120, 90, 80)).copy()
    return Picture("volume-1", "volume", vol, (1.0, 1.0, 1.0), 1, 0)


def test_the_midline_is_the_median_of_the_labelled_structures() -> None:
    mask = np.zeros((10, 10, 50), np.int16)
    mask[2:4, :, 20:30] = 20  # centre 24.5
    mask[5:7, :, 22:32] = 21  # centre 26.5
    mask[8:9, :, 24:36] = 22  # centre 29.5
    assert body_midline(mask) == 26.5
    with pytest.raises(ScanReadError, match="labels nothing"):
        body_midline(np.zeros((4, 4, 4), np.int16))


def test_volume_cuts_are_labelled_by_their_distance_from_the_midline_and_never_in_between() -> None:
    pic, mid = _volume(), 40.0
    labels = []
    for i in range(300):
        img, sp, label = sagittal_sample(pic, mid, np.random.default_rng(i))
        assert img.shape == (120, 90) and sp == (1.0, 1.0)
        k = float(np.median(img)) / 3  # the slice index (or the middle of the averaged slices)
        d = abs(k - mid)
        assert (label == 1 and d >= OFF_MM - 0.5) or (label == 0 and d <= AT_MM + 0.5), (k, label)
        labels.append(label)
    assert 0 < np.mean(labels) < 1  # both classes drawn


def test_a_slice_picture_is_at_the_midline_and_samples_stay_on_the_model_grid() -> None:
    pic = Picture("spider-1", "spider-t2", np.full((300, 120), 90, np.uint8), (0.5, 1.0), 1, 0)
    for i in range(20):
        x, label = render(pic, None, np.random.default_rng(i))
        assert label == 0 and x.shape == (128, 128) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1


def test_a_coils_shading_falls_smoothly_across_the_picture_and_is_drawn_only_when_asked() -> None:
    flat = np.full((60, 40), 100.0, np.float32)
    for seed in range(20):
        out = shaded(flat, np.random.default_rng(seed))
        assert out.shape == flat.shape and out.dtype == np.float32
        assert float(out.max()) <= 110.0 + 1e-3 and float(out.min()) >= 100.0 * SHADING_MIN_GAIN * 0.9 - 1e-3
    pic = _volume()
    x0, _ = render(pic, 40.0, np.random.default_rng(5))
    x1, _ = render(pic, 40.0, np.random.default_rng(5), shading_p=0.0)
    assert np.array_equal(x0, x1)  # the built-in recipe's samples are unchanged
    assert TrainConfig().shading_p == 0.0


def test_training_exports_a_model_that_reads_one_probability(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from openspine.models import load_model
    from openspine.models.registry import model_kind
    from openspine.training.midline import train

    cfg = TrainConfig(epochs=1, samples_per_epoch=8, batch_size=4)
    pictures = [_volume(), Picture("spider-1", "spider-t2", np.full((200, 100), 90, np.uint8), (0.5, 0.5), 1, 0)]
    out = train(pictures, {"volume-1": 40.0}, tmp_path / "midline", cfg)
    card = json.loads((out / "card.json").read_text())
    assert card["name"] == "midline" and model_kind(card) == "midline"
    probs = load_model(out).run({"image": np.zeros((2, 1, 128, 128), np.float32)})[0]
    assert probs.shape == (2,) and np.all((probs >= 0) & (probs <= 1))
