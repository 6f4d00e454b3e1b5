"""The orientation recogniser's training samples (numpy) and a smoke run to an exported model (torch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from openspine.recognition.orientation import ORIENTATIONS
from openspine.training.datasets.pictures import Picture
from openspine.training.orientation import MISSTORED, TrainConfig, render


def _picture(kind: str = "spider-t2") -> Picture:
    """A tall picture, bright at the top-left (head, front) corner, 0.5 × 1 mm pixels."""
    img = np.full((300, 120), 40, np.uint8)
    img[:60, :30] = 220
    return Picture(f"{kind}-1", kind, img, (0.5, 1.0), 1, 0)


def test_samples_cover_the_eight_ways_round_and_stay_on_the_model_grid() -> None:
    pic = _picture()
    seen = set()
    for i in range(200):
        x, k = render(pic, np.random.default_rng(i))
        assert x.shape == (128, 128) and x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
        seen.add(k)
    assert seen == set(range(len(ORIENTATIONS)))


def test_the_misstored_patient_is_left_out_by_default() -> None:
    assert set(MISSTORED) <= set(TrainConfig().exclude)


def test_training_exports_a_model_that_reads_eight_probabilities(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from openspine.models import load_model
    from openspine.training.orientation import train

    cfg = TrainConfig(epochs=1, samples_per_epoch=8, batch_size=4)
    out = train([_picture(), _picture("volume")], tmp_path / "orientation", cfg)
    card = json.loads((out / "card.json").read_text())
    assert card["name"] == "orientation" and card["classes"]["orientation"] == list(ORIENTATIONS)
    probs = load_model(out).run({"image": np.zeros((2, 1, 128, 128), np.float32)})[0]
    assert probs.shape == (2, 8) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_samples_can_be_tilted_within_the_plane() -> None:
    # a spine tilted 30 degrees had been read as upside down; the option lets a model be trained on tilted samples
    pic = _picture()
    for i in range(20):
        x, k = render(pic, np.random.default_rng(i), max_tilt_deg=35.0)
        assert x.shape == (128, 128) and x.dtype == np.float32 and 0 <= k < len(ORIENTATIONS)
    plain, _ = render(pic, np.random.default_rng(3))
    tilted, _ = render(pic, np.random.default_rng(3), max_tilt_deg=35.0)
    assert not np.array_equal(plain, tilted)


def test_the_tilt_option_reaches_the_training(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from openspine.errors import ConfigError
    from openspine.training import orientation

    seen: list[float] = []

    def fake_train(data: Path, out: Path, *args: object, max_tilt_deg: float = 0.0) -> Path:
        seen.append(max_tilt_deg)
        out.mkdir(parents=True, exist_ok=True)  # made by the command's check of its paths
        (out / "card.json").write_text(json.dumps({"name": "orientation", "version": "0"}))
        return out

    monkeypatch.setattr(orientation, "train_orientation", fake_train)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "index.csv").write_text("id,split\n")  # the shared data folder's mark
    argv = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "m"), "--max-tilt-deg", "35"]
    assert orientation.cli_main(argv, quiet=True) == 0 and seen == [35.0]
    with pytest.raises(ConfigError, match="between 0 and 90"):
        orientation.cli_main([*argv[:4], "--max-tilt-deg", "120"], quiet=True)
