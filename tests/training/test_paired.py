"""The two-series (T2 + T1) grader's training (``openspine.training.paired``): pairing real SPIDER discs by level,
the two-channel batches, the head-keeping rule, and a tiny end-to-end run that writes a loadable model."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from openspine.levels import DiscLevel

pytestmark = pytest.mark.train

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # as tests/conftest.py finds it


def _data_or_skip() -> Path:
    if not (DATA / "spider" / "t1.csv").is_file():
        pytest.skip(f"SPIDER T1 slices not found under {DATA}")
    return DATA


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory):
    from openspine.training.paired import paired_samples

    cache = tmp_path_factory.mktemp("paired") / "paired-detections.json"
    return paired_samples(_data_or_skip(), ("train",), cache, patients=4), cache


def test_discs_are_paired_by_level_from_each_series_own_detection(pairs, monkeypatch) -> None:
    data, cache = pairs
    assert data.samples and not data.failed
    for s in data.samples:
        assert s.view is not None and s.second_view is not None and s.second_geometry is not None
        assert s.view is not s.second_view and s.array is s.view.scan.array
        assert s.labels  # class indices of the built-in heads
    cases = {s.case for s in data.samples} | set(data.mismatched)
    assert len(cases) == 4
    # a rerun reads detections and matches from the cache: the detector is not called again
    import openspine.detection
    from openspine.training.paired import paired_samples

    def no_detection(*_a, **_k):
        raise AssertionError("detected again")

    monkeypatch.setattr(openspine.detection, "detect", no_detection)
    again = paired_samples(_data_or_skip(), ("train",), cache, patients=4)
    assert [(s.case, s.level) for s in again.samples] == [(s.case, s.level) for s in data.samples]
    entry = next(v for k, v in json.loads(cache.read_text())["scans"].items() if k.endswith("t1.nii.gz"))
    assert "match" in entry and entry["match"]["levels"]
    assert entry["file"]["size"] > 0  # each entry records the file it was detected on
    # a scan changed at the same path (another size or time) is detected again, not read from the cache
    saved = cache.read_text()
    doc = json.loads(saved)
    for v in doc["scans"].values():
        v["file"] = {"size": 1, "mtime_ns": 0}
    cache.write_text(json.dumps(doc))
    with pytest.raises(AssertionError, match="detected again"):
        paired_samples(_data_or_skip(), ("train",), cache, patients=1)
    cache.write_text(saved)
    # a match made by other matching rules is not trusted: the pair is detected and matched again
    import openspine.training.paired as paired

    monkeypatch.setattr(paired, "_matcher_id", lambda: "other rules")
    with pytest.raises(AssertionError, match="detected again"):
        paired_samples(_data_or_skip(), ("train",), cache, patients=1)


def test_batches_have_two_channels_each_from_its_series_and_drop_t1(pairs) -> None:
    from openspine.grading.crop import CropSpec
    from openspine.training.paired import batch_crops

    samples = pairs[0].samples[:16]
    spec = CropSpec()
    x = batch_crops(0.0)(samples, spec, np.random.default_rng(0), 1.0)
    assert x.shape == (len(samples), 2, spec.height, spec.width) and np.all(np.isfinite(x))
    assert all(x[i, c].std() > 0.05 for i in range(len(samples)) for c in range(2))
    many = samples * 8
    y = batch_crops(0.3)(many, spec, np.random.default_rng(1), 1.0)
    dropped = np.array([not y[i, 1].any() for i in range(len(many))])
    assert 0.15 < dropped.mean() < 0.45  # about 30 % of the T1 channels zeroed
    assert all(y[i, 0].std() > 0.05 for i in range(len(many)))  # never the T2 channel


def test_a_head_is_kept_only_where_t1_adds_balanced_accuracy() -> None:
    from openspine.grading.heads import HeadSpec
    from openspine.training.paired import compare_variants

    rng = np.random.default_rng(0)
    n = 200
    heads = [HeadSpec("marrow_change", ("0", "1", "2", "3")), HeadSpec("bulging", ("0", "1"))]
    y_m, y_b = rng.integers(0, 4, n), rng.integers(0, 2, n)
    samples = [
        SimpleNamespace(case=f"p{i // 5}", level=DiscLevel.L4_L5, labels={"marrow_change": int(a), "bulging": int(b)})
        for i, (a, b) in enumerate(zip(y_m, y_b))
    ]
    folds = np.array([(i // 5) % 4 for i in range(n)])
    good_m = np.eye(4)[y_m] * 3 + rng.normal(0, 1, (n, 4))
    good_b = np.eye(2)[y_b] * 3 + rng.normal(0, 1, (n, 2))
    noise_m = rng.normal(0, 1, (n, 4))
    oof = {
        "with_t1": {"marrow_change": good_m, "bulging": good_b},  # T1 tells marrow change, bulging as without it
        "t1_zeroed": {"marrow_change": noise_m, "bulging": good_b},
    }
    feats = rng.normal(0, 1, (n, 28))
    report, stacker, logits = compare_variants(heads, samples, folds, oof, feats, 0.03, 0.01)
    assert report["marrow_change"]["kept"] and not report["bulging"]["kept"]
    assert report["bulging"]["gain"] == 0.0
    m = report["marrow_change"]
    assert m["with_t1"]["any_vs_none_balanced_accuracy"] > m["t1_zeroed"]["any_vs_none_balanced_accuracy"]
    assert logits["marrow_change"].shape == (n, 4)
    # the with-T1 stackers of the heads where a stacker won, as the T2 grader's are chosen
    assert set(stacker.heads) == {h for h in report if report[h]["with_t1"]["stacker_kept"]}


def test_a_tiny_training_run_writes_a_two_channel_grader(tmp_path: Path) -> None:
    for module in ("torch", "onnx", "onnxscript"):
        pytest.importorskip(module)
    from openspine.grading.model import load_grader
    from openspine.grading.pair import paired_crops
    from openspine.training.paired import PairedTrainingOptions, paired_samples, train_paired

    options = PairedTrainingOptions(
        data=_data_or_skip(), out=tmp_path / "m", epochs=1, folds=2, patients=5, threads=1, min_gain=-1.0
    )
    res = train_paired(options, quiet=True)
    assert res.folder == tmp_path / "m" and res.kept  # min_gain -1: every head "wins"
    cv = json.loads((res.work / "cross-validation.json").read_text())
    for h in res.kept:
        row = cv["heads"][h]
        assert {"with_t1", "t1_zeroed", "gain", "kept"} <= set(row)
    card = json.loads((res.folder / "card.json").read_text())
    assert card["input"]["channels"] == ["T2", "T1"] and card["input"]["shape"][1] == 2
    assert card["scope"]["second_series"] == ["T1"]
    assert card["training"]["cross_validation"]["kept"] == res.kept
    model = load_grader(res.folder)
    assert model.channels == ("T2", "T1")
    s = paired_samples(options.data, ("train",), res.work / "paired-detections.json", patients=1).samples[0]
    x = paired_crops(s.view, s.geometry, s.second_view, s.second_geometry, model.crop)
    logits = model.logits(x)
    assert set(logits) == set(res.kept) and all(np.all(np.isfinite(z)) for z in logits.values())


def test_command_defaults_are_the_function_defaults(tmp_path: Path) -> None:
    from openspine.training.common import options_from
    from openspine.training.paired import PairedTrainingOptions, build_parser

    args = build_parser().parse_args(["--out", str(tmp_path / "m")])
    assert options_from(PairedTrainingOptions, args) == PairedTrainingOptions(
        data=Path("../shared/data"), out=tmp_path / "m"
    )
