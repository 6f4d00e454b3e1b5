"""The level-context model: its training samples (numpy), network, export and use by the detector (torch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from openspine.training.datasets.levels import LevelItem, load_items, save_items
from openspine.training.levels import LevelTrainConfig, render, split_folds


def _item(group: str = "a", source: str = "volume") -> LevelItem:
    """Five bright bodies 30 px tall, 40 px apart, levels T12 … L4 (ordinals 19 … 23)."""
    img = np.full((260, 160), 30, np.uint8)
    pts = []
    for i in range(5):
        r0 = 30 + 40 * i
        img[r0 : r0 + 30, 50:100] = 170
        pts.append((r0 + 15.0, 75.0, 19.0 + i))
    return LevelItem(f"{group}:0", group, source, img, np.array(pts))


def test_render_targets_follow_the_points_and_only_where_seen() -> None:
    cfg = LevelTrainConfig(canvas=(256, 160), p_crop=0.0, scale=(1.0, 1.0))
    x, target, weight = render(_item(), np.random.default_rng(0), cfg)
    assert x.shape == (1, 256, 160) and target.shape == weight.shape == (128,)
    assert x.min() >= 0.0 and x.max() <= 1.0
    seen = target[weight > 0]
    assert seen.min() >= 19.0 and seen.max() <= 23.0 and np.all(np.diff(seen) >= 0)
    # at 1.25 mm the first body centre (row 45 at 1 mm) sits at output row ≈ 45 / 1.25 / 2 = 18
    assert weight[:17].sum() == 0 and weight[19] == 1 and target[18] == pytest.approx(19.0, abs=0.1)


def test_render_crops_keep_targets_consistent() -> None:
    cfg = LevelTrainConfig(canvas=(256, 160), p_crop=1.0)
    for seed in range(20):
        x, _, weight = render(_item(), np.random.default_rng(seed), cfg)
        rows = np.nonzero(weight)[0]
        assert len(rows) > 0
        img_rows = np.nonzero(x[0].max(axis=1) > 0)[0]
        assert rows.max() * 2 <= img_rows.max() + 2  # no target below the image's lowest row


def test_folds_are_disjoint_by_group_and_stable(tmp_path: Path) -> None:
    items = [_item(f"g{i}") for i in range(30)]
    train, held = split_folds(items, 5, 0)
    assert {i.group for i in train}.isdisjoint({i.group for i in held}) and len(train) + len(held) == 30
    assert [i.group for i in split_folds(items, 5, 0)[1]] == [i.group for i in held]
    save_items(items[:2], tmp_path / "items.npz")
    back = load_items(tmp_path / "items.npz")
    assert [b.id for b in back] == [i.id for i in items[:2]] and np.array_equal(back[0].points, items[0].points)


@pytest.mark.train
def test_training_exports_a_model_the_detector_uses(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from openspine.detection.detect import _level_model, run_level_model
    from openspine.models import builtin_model_dir, load_model
    from openspine.training.levels import train

    cfg = LevelTrainConfig(steps=3, batch_size=2, canvas=(256, 160))
    out = train([_item("a"), _item("b", "spider-t2")], tmp_path / "levels", cfg, progress=False)
    card = json.loads((out / "card.json").read_text())
    assert card["name"] == "levels" and card["outputs"]["name"] == "levels"
    lm = load_model(out)
    prof = run_level_model(lm, np.zeros((2, 128, 96), np.float32))
    assert prof.shape == (2, 64) and np.isfinite(prof).all()
    # a detector folder whose card names the level model loads it; the built-in detector names none
    det = tmp_path / "detector"
    shutil.copytree(builtin_model_dir("detector"), det)
    data = json.loads((det / "card.json").read_text())
    data["level_model"] = "../levels"
    (det / "card.json").write_text(json.dumps(data))
    assert _level_model(load_model(det)) is not None
    assert _level_model(load_model("detector")) is None
