"""Paired T2/T1 crops of one disc (``openspine.grading.pair``) on a real SPIDER patient, and the grader card's
``input.channels`` (``openspine.grading.model``)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from openspine.errors import GeometryError, ModelError
from openspine.grading.crop import CropSpec, disc_crop
from openspine.grading.pair import PAIRED_CHANNELS, paired_crops
from openspine.scan import Scan

from ..model_fixtures import tiny_paired_grader

PATIENT = "2"  # a train patient with a T1 slice; its T2 and T1 slices differ in size and pixel spacing


@pytest.fixture(scope="module")
def real_pair():
    """(T2 view, T2 geometries by level, T1 view, T1 geometries by level) of one SPIDER patient."""
    from openspine.training.datasets.discs import detect_discs, load_view

    data = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # as tests/conftest.py finds it
    if not (data / "index.csv").is_file():
        pytest.skip(f"real test data not found at {data}")
    folder = data / "spider" / PATIENT
    if not (folder / "t1.nii.gz").is_file():
        pytest.skip("the shared data has no SPIDER T1 slices")
    v2, v1 = load_view(folder / "image.nii.gz"), load_view(folder / "t1.nii.gz")
    g2, _ = detect_discs(v2)
    g1, _ = detect_discs(v1)
    return v2, g2, v1, g1


def test_paired_crops_of_a_real_t2_t1_pair(real_pair) -> None:
    v2, g2, v1, g1 = real_pair
    assert v2.scan.spacing[:2] != v1.scan.spacing[:2]  # two grids: each crop is cut in its own
    spec = CropSpec()
    shared = sorted(set(g2) & set(g1))
    assert "L4-L5" in shared
    for lv in shared:
        x = paired_crops(v2, g2[lv], v1, g1[lv], spec)
        # a single-slice series: every offset lands on the mid slice, one row
        assert x.shape == (1, 2, spec.height, spec.width) and x.dtype == np.float32
        assert np.all(np.isfinite(x))
        for c in range(2):
            assert float(x[0, c].std()) > 0.05, (lv, c)  # both channels show anatomy, not a constant
        # channel 0 is exactly the single-series crop, channel 1 the T1 series' own crop of its own disc
        np.testing.assert_array_equal(x[0, 0], disc_crop(v2.scan.array, g2[lv], v2.scan.spacing, spec)[0])
        np.testing.assert_array_equal(x[0, 1], disc_crop(v1.scan.array, g1[lv], v1.scan.spacing, spec)[0])
        assert not np.allclose(x[0, 0], x[0, 1])
    assert PAIRED_CHANNELS == ("T2", "T1")


def test_paired_crops_refuse_a_degenerate_geometry_of_either_series(real_pair) -> None:
    v2, g2, v1, g1 = real_pair
    g = g2["L4-L5"]
    flat = replace(g, upper_posterior=g.upper_anterior, lower_posterior=g.lower_anterior)
    with pytest.raises(GeometryError, match="T2 series"):
        paired_crops(v2, flat, v1, g1["L4-L5"], CropSpec())
    with pytest.raises(GeometryError, match="T1 series.*degenerate"):
        paired_crops(v2, g, v1, replace(g1["L4-L5"], upper_posterior=g1["L4-L5"].upper_anterior), CropSpec())
    far = replace(g1["L4-L5"], slice_index=5)  # a mid slice outside the T1 series' single slice
    with pytest.raises(GeometryError, match="T1 series"):
        paired_crops(v2, g, v1, far, CropSpec())


def test_paired_crops_follow_each_series_own_slices(real_pair) -> None:
    """A three-slice main series gives one row per distinct slice; the one-slice second series is clamped to its
    mid slice in every row."""
    v2, g2, v1, g1 = real_pair
    arr = np.asarray(v2.scan.array)
    vol = np.concatenate([arr * 0.5, arr, arr * 0.25], axis=2)
    aff = v2.scan.affine.copy()
    aff[:3, 2] = aff[:3, 2] / np.linalg.norm(aff[:3, 2]) * 3.5  # 3.5 mm slices: the offsets land on 3 slices
    v3 = Scan(vol.astype(np.float32), aff).to_sagittal()
    assert v3.scan.array.shape[2] == 3
    g = replace(g2["L4-L5"], slice_index=1)
    x = paired_crops(v3, g, v1, g1["L4-L5"], CropSpec())
    assert x.shape[:2] == (3, 2)
    np.testing.assert_array_equal(x[0, 1], x[1, 1])
    np.testing.assert_array_equal(x[2, 1], x[1, 1])
    assert not np.allclose(x[0, 0], x[2, 0])


def _grader_copy(tmp_path: Path, channels: object) -> Path:
    from openspine.models import BUILTIN_DIR

    folder = tmp_path / "copy"
    shutil.copytree(BUILTIN_DIR / "grader", folder)
    card = json.loads((folder / "card.json").read_text())
    card["input"]["channels"] = channels
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def test_a_one_channel_card_loads_as_before(tmp_path: Path) -> None:
    from openspine.grading.model import load_grader

    base = load_grader()
    assert base.channels == ("T2",)
    crops = np.random.default_rng(0).uniform(0, 2, (3, base.crop.height, base.crop.width)).astype(np.float32)
    a = base.logits(crops)  # (N, H, W) is still accepted for one channel
    b = load_grader(_grader_copy(tmp_path, ["T2"])).logits(crops[:, None])
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-5)
    with pytest.raises(ModelError, match=r"\(N, 1, 48, 96\) \(channels T2\)"):
        base.logits(np.zeros((2, 2, 48, 96), np.float32))


@pytest.mark.parametrize(
    ("channels", "why"),
    [
        (["T2", "T1"], "card and weights disagree"),
        ("T2", "non-empty list"),
        ([], "non-empty list"),
        (["T2", "T2"], "twice"),
    ],
)
def test_card_channels_that_do_not_fit_are_refused(tmp_path: Path, channels: object, why: str) -> None:
    from openspine.grading.model import load_grader

    with pytest.raises(ModelError, match=why):
        load_grader(_grader_copy(tmp_path, channels))


@pytest.mark.train
def test_a_two_channel_grader_reads_a_real_pair_through_grade(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import openspine
    from openspine.detection import detect
    from openspine.grading import SecondSeries, grade
    from openspine.grading.model import load_grader
    from openspine.levels import Grading
    from openspine.study import match_series

    data = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    folder = data / "spider" / PATIENT
    if not (folder / "t1.nii.gz").is_file():
        pytest.skip("the shared data has no SPIDER T1 slices")
    model = load_grader(tiny_paired_grader(tmp_path / "paired", ("marrow_change", "endplate_defect_upper")))
    assert model.channels == ("T2", "T1")
    v2 = openspine.load_scan(folder / "image.nii.gz").to_sagittal()
    v1 = openspine.load_scan(folder / "t1.nii.gz").to_sagittal()
    d2, d1 = detect(v2), detect(v1)
    m = match_series(d2, v2, d1, v1, names=PAIRED_CHANNELS)
    assert m.agree, m.flags
    i2 = {id(d): i for i, d in enumerate(d2.discs)}
    i1 = {id(d): i for i, d in enumerate(d1.discs)}
    pairs = {i2[id(p.first)]: i1[id(p.second)] for p in m.discs}
    second = SecondSeries(name="T1", view=v1, detection=d1, pairs=pairs)
    out = grade(v2, d2, sequence={"value": "T2"}, second=second, paired_grader=tmp_path / "paired")
    read = [d for d in out.discs if d.grades.get(Grading.MARROW_CHANGE) and d.grades[Grading.MARROW_CHANGE].available]
    assert read
    for d in read:
        assert d.grades[Grading.MARROW_CHANGE].series == PAIRED_CHANNELS  # from the two-channel grader
        assert d.grades[Grading.PFIRRMANN].series == ("T2",)  # a head it lacks: the T2 grader's
    # the logits of the two-channel network on paired crops are finite and depend on the T1 channel
    g2, _ = _geoms(v2, d2)
    g1, _ = _geoms(v1, d1)
    lv = m.discs[0].level.value
    x = paired_crops(v2, g2[lv], v1, g1[lv], model.crop)
    z = model.logits(x)
    x0 = x.copy()
    x0[:, 1] = 0.0
    assert all(np.all(np.isfinite(v)) for v in z.values())
    assert any(not np.allclose(z[n], v) for n, v in model.logits(x0).items())
    with pytest.raises(ModelError, match=r"\(N, 2, 48, 96\) \(channels T2, T1\)"):
        model.logits(x[:, 0])


def _geoms(view, det):
    from openspine.training.datasets.discs import disc_geometries

    return disc_geometries(view, det)
