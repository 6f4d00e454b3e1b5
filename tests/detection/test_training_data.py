"""Training targets and augmentation of the detector (numpy only; the torch parts are marked ``train``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from openspine.training.datasets.volumes import (
    SampleConfig,
    TrainVolume,
    _cut_below_row,
    is_body,
    is_disc,
    ordinal_of,
    prepare_volume,
    render_sample,
)


def _volume(levels_known: bool = True, values: tuple[int, int, int] = (22, 23, 24)) -> TrainVolume:
    """Three bodies 30 px tall, 8 px discs between them, on 3 stored slices; a fourth unlabelled body below."""
    img = np.full((200, 120, 3), 40, np.uint8)
    msk = np.zeros((200, 120, 3), np.uint8)
    for i, v in enumerate(values):
        r0 = 20 + i * 38
        img[r0 : r0 + 30, 30:80] = 160
        msk[r0 : r0 + 30, 30:80] = v
    img[134:164, 30:80] = 160  # the sacrum-like body nobody labelled
    return prepare_volume(TrainVolume("synthetic", "VB2", levels_known, img, msk))


def test_ordinals_and_kinds() -> None:
    assert ordinal_of(24) == 24 and ordinal_of(26) == 25 and ordinal_of(124) == 24.5
    assert np.isnan(ordinal_of(201)) and np.isnan(ordinal_of(0))
    assert is_body(20) and is_body(205) and not is_body(120)
    assert is_disc(124) and not is_disc(24)


def test_prepare_volume_supervises_only_the_labelled_span() -> None:
    vol = _volume()
    w = vol.body_weight
    assert w[35, 55] == 1 and w[125, 55] == 1  # inside the labelled bodies and the disc between
    assert w[5, 55] == 0  # above the top body's superior endplate (+ 3 mm margin): unlabelled anatomy
    assert w[150, 55] == 0  # the unlabelled body below the lowest labelled one is not taught as background
    s = vol.slices[1]
    assert s.disc_ok and s.areas == {22: 1500, 23: 1500, 24: 1500}
    # disc centres half-way between the facing endplates, with the level of the upper body + 0.5
    assert s.disc_centres[:, 2].tolist() == [22.5, 23.5]
    assert s.disc_centres[0, 0] == pytest.approx(53.5, abs=0.6)


def test_unknown_levels_give_nan_disc_levels() -> None:
    vol = _volume(levels_known=False, values=(201, 202, 203))
    assert np.isnan(vol.slices[0].disc_centres[:, 2]).all()


def test_render_sample_shapes_and_targets() -> None:
    vol = _volume()
    cfg = SampleConfig(tile=192, p_fov=0.0, rotation_deg=0.0, scale=(1.0, 1.0))
    rng = np.random.default_rng(3)
    s = render_sample(vol, rng, cfg)
    assert s["image"].shape == (192, 192)
    for k in ("body", "body_w", "bheat", "bheat_w", "dheat", "dheat_w", "level", "level_w"):
        assert s[k].shape == (96, 96), k
        assert np.isfinite(s[k]).all()
    assert s["image"].min() >= 0.0 and s["image"].max() <= 1.0
    assert s["body"].max() == pytest.approx(1.0)
    lv = s["level"][s["level_w"] > 0]
    assert set(np.unique(np.round(lv * 2) / 2)) <= {22.0, 22.5, 23.0, 23.5, 24.0}
    assert (s["bheat"] == 1.0).sum() >= 1  # each visible centre has an exact positive pixel


def test_render_sample_is_reproducible_from_its_seed() -> None:
    vol = _volume()
    a = render_sample(vol, np.random.default_rng([0, 7]))
    b = render_sample(vol, np.random.default_rng([0, 7]))
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_cut_below_row_keeps_two_bodies_above_and_cuts_through_or_below_a_third() -> None:
    labels = np.zeros((200, 50), np.int64)
    spans = [(10, 40), (50, 80), (90, 120), (130, 160)]
    for v, (top, bottom) in zip((21, 22, 23, 24), spans, strict=True):
        labels[top : bottom + 1, 10:40] = v
    cuts = [_cut_below_row(labels, np.random.default_rng(k)) for k in range(200)]
    assert all(c is not None for c in cuts)
    # a quarter of the way into the third or fourth body, at the latest a third of its height below it
    assert min(c for c in cuts if c is not None) >= 90 + 0.25 * 30 - 1
    assert max(c for c in cuts if c is not None) <= 160 + 0.33 * 30 + 1
    assert any(c is not None and c < 130 for c in cuts) and any(c is not None and c > 130 for c in cuts)
    assert _cut_below_row(labels[:85], np.random.default_rng(0)) is None  # two bodies: none to cut with two above
    disc_only = np.where(labels > 0, labels + 100, 0)
    assert _cut_below_row(disc_only, np.random.default_rng(0)) is None  # discs are not bodies


def test_render_sample_cut_below_blanks_the_rows_under_the_cut() -> None:
    img = np.full((230, 120, 1), 40, np.uint8)
    msk = np.zeros((230, 120, 1), np.uint8)
    for i, v in enumerate(range(20, 25)):  # L1 … L5, 28 px tall, 8 px apart
        img[10 + 36 * i : 38 + 36 * i, 30:80] = 160
        msk[10 + 36 * i : 38 + 36 * i, 30:80] = v
    vol = prepare_volume(TrainVolume("synthetic", "VB2", True, img, msk))
    cfg = SampleConfig(tile=192, p_fov=0.0, p_cut_below=1.0, rotation_deg=0.0, scale=(1.0, 1.0))
    plain = dataclasses.replace(cfg, p_cut_below=0.0)
    for seed in range(5):
        cut = render_sample(vol, np.random.default_rng(seed), cfg)
        whole = render_sample(vol, np.random.default_rng(seed), plain)
        blank = ~cut["image"].any(axis=1)
        assert blank[-1] and blank.sum() > (~whole["image"].any(axis=1)).sum()  # rows at the bottom are gone
        below = (len(blank) - np.argmin(blank[::-1])) // 2 + 1  # first output row wholly under the cut
        for k in ("body", "level_w"):  # nothing is taught there but background, and no body centre lies there
            assert not cut[k][below:].any(), k
        assert not (cut["bheat"][below:] == 1).any()
        assert cut["body_w"][below:].any()  # the blank rows are supervised as background
        assert 2 <= (cut["bheat"] == 1).sum() <= (whole["bheat"] == 1).sum()  # at least the two bodies above the cut


@pytest.mark.train
def test_network_loss_and_onnx_export(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import onnxruntime as ort

    from openspine.training.detector import TrainConfig, _Samples, build_network, detector_loss, export_model

    torch.manual_seed(0)
    net = build_network((4, 6, 8, 8, 8, 8), (6, 6, 8, 8))
    x = torch.rand(2, 1, 64, 96)
    raw = net(x)
    assert tuple(raw.shape) == (2, 4, 32, 48)
    vol = _volume()
    cfg = TrainConfig(widths=(4, 6, 8, 8, 8, 8), decoder_widths=(6, 6, 8, 8), sample=SampleConfig(tile=64))
    ds = _Samples([vol], cfg, 4)
    xb, yb, wb = (torch.from_numpy(np.stack([ds[i][j] for i in range(2)])) for j in range(3))
    loss, parts = detector_loss(net(xb), yb, wb, cfg.loss_weights)
    assert torch.isfinite(loss) and set(parts) == {"body", "bheat", "dheat", "level"}
    zero, _ = detector_loss(net(xb), yb, torch.zeros_like(wb), cfg.loss_weights)
    assert float(zero) == pytest.approx(0.0, abs=1e-6)  # nothing supervised, nothing learned
    net.eval()
    path = export_model(net, tmp_path, cfg, {"parameters": 1, "volumes": ["synthetic"]})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        ref = net(x)
    assert np.allclose(out[:, :3], torch.sigmoid(ref[:, :3]).numpy(), atol=1e-4)
    assert np.allclose(out[:, 3], ref[:, 3].numpy() * 4 + 22, atol=1e-3)
    from openspine.models import read_card

    card = read_card(tmp_path)
    assert card.data["input"]["spacing_mm"] == 1.25


@pytest.mark.train
@pytest.mark.parametrize("samples", [8, 64])  # 2 steps (constant rate) and 16 steps (one-cycle schedule)
def test_training_loop_runs_and_exports(tmp_path, samples: int) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import onnxruntime as ort

    from openspine.training.detector import TrainConfig, train

    cfg = TrainConfig(
        epochs=1,
        samples_per_epoch=samples,
        batch_size=4,
        widths=(4, 6, 8, 8, 8, 8),
        decoder_widths=(6, 6, 8, 8),
        sample=SampleConfig(tile=96),  # ≥ 110 mm: the field-of-view crops need it,
    )
    out = train([_volume()], tmp_path / "m", cfg, progress=False, checkpoint_every=0)
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    maps = sess.run(None, {"image": np.zeros((1, 1, 96, 96), np.float32)})[0]
    assert maps.shape == (1, 4, 48, 48) and np.isfinite(maps).all()
    assert (out / "card.json").is_file() and (out / "checkpoint.pt").is_file()


def test_a_stopped_run_resumes_to_the_same_weights(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from openspine.errors import ConfigError
    from openspine.training.detector import TrainConfig, train

    cfg = TrainConfig(
        epochs=3,
        samples_per_epoch=8,
        batch_size=4,
        widths=(4, 6, 8, 8, 8, 8),
        decoder_widths=(6, 6, 8, 8),
        sample=SampleConfig(tile=96),
    )
    straight = train([_volume()], tmp_path / "straight", cfg, progress=False)
    assert straight is not None
    stopped = tmp_path / "stopped"
    assert train([_volume()], stopped, cfg, progress=False, time_limit_s=0.0) is None  # stops after epoch 1
    saved = torch.load(stopped / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 2 and "optimizer" in saved and not (stopped / "model.onnx").exists()
    with pytest.raises(ConfigError, match="other options"):
        train([_volume()], stopped, dataclasses.replace(cfg, lr=1e-3), progress=False, resume=True)
    assert train([_volume()], stopped, cfg, progress=False, resume=True) == stopped
    a = torch.load(straight / "checkpoint.pt", weights_only=True)["state_dict"]
    b = torch.load(stopped / "checkpoint.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the same tiles, in the same order
    with pytest.raises(ConfigError, match="finished run"):
        train([_volume()], stopped, cfg, progress=False, resume=True)


def test_a_cache_keeps_where_its_volumes_came_from(tmp_path) -> None:
    from openspine.training.datasets.volumes import cache_source, load_cache, save_cache

    vol = TrainVolume("spider-7-t1", "SPIDER-T1", True, np.zeros((8, 6, 1), np.uint8), np.zeros((8, 6, 1), np.uint8))
    save_cache([vol], tmp_path / "a", "data (split=train); pseudo-labels by M")
    save_cache([vol], tmp_path / "b")
    assert cache_source(tmp_path / "a") == "data (split=train); pseudo-labels by M"
    assert cache_source(tmp_path / "b") == ""  # an older cache says nothing: no made-up provenance
    assert [v.id for v in load_cache(tmp_path / "a")] == ["spider-7-t1"]


def test_the_card_names_pseudo_labelled_training_slices() -> None:
    from openspine.training.detector import training_data_record

    plain = training_data_record(["fcs-vb2-01", "fcs-ivd-11"], "data (split=train)")
    assert "pseudo" not in plain["source"] and "vandergraaf2024" not in plain["citations"]
    mixed = training_data_record(["fcs-vb2-01", "spider-3", "spider-3-t1", "spider-9"], "cache C (made by X)")
    assert "3 SPIDER train slices (2 T2, 1 T1) pseudo-labelled" in mixed["source"]
    assert mixed["source"].endswith("data: cache C (made by X)")
    assert "vandergraaf2024" in mixed["citations"] and mixed["volumes"][1] == "spider-3"
