"""Starting a detector run from a shipped ONNX model (openspine.training.onnx_weights)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from openspine.errors import ConfigError

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from openspine.models import builtin_model_dir  # noqa: E402
from openspine.training.datasets.volumes import SampleConfig, TrainVolume, prepare_volume  # noqa: E402
from openspine.training.detector import TrainConfig, build_network, export_model, export_wrapper, train  # noqa: E402
from openspine.training.onnx_weights import load_folded_onnx, onnx_path  # noqa: E402

SMALL = {"widths": (4, 6, 8, 8, 8, 8), "decoder_widths": (6, 6, 8, 8)}


def _onnx_maps(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {"image": x})[0])


def _torch_maps(net, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return export_wrapper(net).eval()(torch.from_numpy(x)).numpy()


def _exported_small_net(folder: Path):
    """A small detector with non-trivial batch-norm statistics (so folding them matters), exported to ``folder``."""
    torch.manual_seed(1)
    net = build_network(**SMALL)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    net.eval()
    cfg = TrainConfig(**SMALL)
    folder.mkdir(parents=True, exist_ok=True)
    export_model(net, folder, cfg, {"parameters": 1, "volumes": ["synthetic"]})
    return net


def _three_body_volume() -> TrainVolume:
    """Three labelled bodies (L3, L4, L5) 30 px tall on 3 stored slices."""
    img = np.full((200, 120, 3), 40, np.uint8)
    msk = np.zeros((200, 120, 3), np.uint8)
    for i, v in enumerate((22, 23, 24)):
        img[20 + i * 38 : 50 + i * 38, 30:80] = 160
        msk[20 + i * 38 : 50 + i * 38, 30:80] = v
    return prepare_volume(TrainVolume("synthetic", "VB2", True, img, msk))


def test_the_copied_weights_compute_what_the_onnx_file_computes(tmp_path: Path) -> None:
    _exported_small_net(tmp_path)
    x = np.random.default_rng(0).random((2, 1, 64, 96)).astype(np.float32)
    fresh = build_network(**SMALL)
    assert load_folded_onnx(torch, fresh, tmp_path / "model.onnx") == sum(
        isinstance(m, torch.nn.Conv2d) for m in fresh.modules()
    )
    fresh.eval()
    assert np.allclose(_torch_maps(fresh, x), _onnx_maps(tmp_path / "model.onnx", x), atol=1e-4)


def test_the_built_in_detector_loads_back_exactly() -> None:
    folder = builtin_model_dir("detector")
    path = onnx_path(folder)
    assert path == folder / "model.onnx"
    net = build_network()  # the built-in architecture (the defaults)
    load_folded_onnx(torch, net, path)
    net.eval()
    x = np.random.default_rng(1).random((1, 1, 128, 96)).astype(np.float32)
    assert np.allclose(_torch_maps(net, x), _onnx_maps(path, x), atol=1e-3)


def test_another_architecture_is_refused(tmp_path: Path) -> None:
    _exported_small_net(tmp_path)
    with pytest.raises(ConfigError, match="expects"):
        load_folded_onnx(torch, build_network(), tmp_path / "model.onnx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="model.onnx"):
        onnx_path(tmp_path / "empty")
    assert onnx_path(tmp_path / "checkpoint.pt") is None  # a torch checkpoint is read as before


def test_a_run_started_from_a_model_folder_keeps_its_batch_norms(tmp_path: Path) -> None:
    _exported_small_net(tmp_path / "start")
    vol = _three_body_volume()
    cfg = TrainConfig(epochs=1, samples_per_epoch=8, batch_size=4, sample=SampleConfig(tile=96), **SMALL)
    cfg = dataclasses.replace(cfg, frozen_batch_norm=True)
    out = train([vol], tmp_path / "tuned", cfg, progress=False, checkpoint_every=0, init=tmp_path / "start")
    assert out is not None
    state = torch.load(out / "checkpoint.pt", weights_only=True)["state_dict"]
    variances = [v for k, v in state.items() if k.endswith("running_var")]
    assert variances and all(torch.allclose(v, torch.full_like(v, 1.0 - 1e-5)) for v in variances)  # not re-estimated
    x = np.zeros((1, 1, 96, 96), np.float32)
    assert np.isfinite(_onnx_maps(out / "model.onnx", x)).all()


def test_a_run_started_from_a_model_folder_resumes_with_frozen_batch_norms(tmp_path: Path) -> None:
    _exported_small_net(tmp_path / "start")
    vol = _three_body_volume()
    cfg = TrainConfig(epochs=2, samples_per_epoch=8, batch_size=4, sample=SampleConfig(tile=96), **SMALL)
    start = tmp_path / "start"
    frozen = dataclasses.replace(cfg, frozen_batch_norm=True)
    straight = train([vol], tmp_path / "straight", frozen, progress=False, init=start)
    stopped = tmp_path / "stopped"
    assert train([vol], stopped, frozen, progress=False, init=start, time_limit_s=0.0) is None
    # the resumed command repeats neither --init nor the flag it implied
    assert train([vol], stopped, cfg, progress=False, resume=True) == stopped
    assert straight is not None
    a = torch.load(straight / "checkpoint.pt", weights_only=True)["state_dict"]
    b = torch.load(stopped / "checkpoint.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_keep_geometry_run_moves_the_level_and_keeps_the_geometry(tmp_path: Path) -> None:
    _exported_small_net(tmp_path / "start")
    vol = _three_body_volume()
    base = TrainConfig(epochs=2, samples_per_epoch=16, batch_size=4, lr=1e-2, sample=SampleConfig(tile=96), **SMALL)
    start = tmp_path / "start"
    runs = {}
    for name, weight in (("free", 0.0), ("kept", 100.0)):
        cfg = dataclasses.replace(base, frozen_batch_norm=True, keep_geometry=weight)
        out = train([vol], tmp_path / name, cfg, progress=False, checkpoint_every=0, init=start)
        assert out is not None
        runs[name] = out / "model.onnx"
    x = np.random.default_rng(2).random((2, 1, 96, 96)).astype(np.float32)
    before = _onnx_maps(start / "model.onnx", x)
    moved = {name: np.abs(_onnx_maps(path, x) - before).mean(axis=(0, 2, 3)) for name, path in runs.items()}
    # the anchored run changes the body and heat-map outputs far less than a free run, and still learns the level
    assert (moved["kept"][:3] < 0.2 * moved["free"][:3]).all()
    assert moved["kept"][3] > 0.01


def test_keep_geometry_needs_a_starting_model(tmp_path: Path) -> None:
    from openspine.training.detector import train_detector

    cfg = TrainConfig(epochs=1, keep_geometry=1.0)
    with pytest.raises(ConfigError, match="--init"):
        train_detector(tmp_path / "out", cfg, cache=tmp_path)
    with pytest.raises(ConfigError, match="resumed"):
        train_detector(tmp_path / "out", cfg, cache=tmp_path, init=builtin_model_dir("detector"), time_limit_min=1.0)
