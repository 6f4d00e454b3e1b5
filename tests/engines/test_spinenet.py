"""--engine spinenet gives SpineNet's own answer: same labels, corners (after the geometry map) and grades.

SpineNet's weights cannot be downloaded here, so the checkpoints are random weights of SpineNet's own network
classes, saved where SpineNet loads them. Random weights detect nothing, so the detection network's output is
replaced, in both runs, by maps drawn from the scan's ground-truth body masks: SpineNet's post-processing
(corners → bodies → grouping across slices), its labelling networks and its grader then run for real.
"""

from __future__ import annotations

import copy
import html
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ..conftest import shared_data_or_skip

CASE = "fastcleverseg/fcs-vb2-13"  # lumbar T2, 1 mm iso, bodies T11-L5 labelled; stored as (I, P, R)
ROWS, COLS, SLICES = slice(20, 300), slice(100, 330), slice(31, 43)  # a crop that keeps the test quick
# SpineNet's 3D networks take about 4 s a body (labelling) and 8 s a disc (grading) on 2 CPU cores: by default
# three bodies (L3-L5) are seeded and the grader's trunk is replaced by pooling before its own heads;
# OPENSPINE_TEST_SPINENET_FULL=1 seeds all seven bodies and runs the whole grader (1 to 3.5 min)
FULL = os.environ.get("OPENSPINE_TEST_SPINENET_FULL") == "1"
SEEDED_BODIES = None if FULL else (22, 23, 24)  # mask values of L3, L4, L5


def _spinenet_or_skip() -> Any:
    try:
        import spinenet
    except (ImportError, RuntimeError, OSError) as exc:  # torchvision beside a mismatched torch: RuntimeError
        pytest.skip(f"SpineNet's package does not import here ({type(exc).__name__}: {exc}); see docs/spinenet.md")
    return spinenet


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight checkpoints of SpineNet's own classes, in the folders and file names SpineNet loads."""
    _spinenet_or_skip()
    import torch
    from spinenet.models import AppearanceModel, ContextModel, GradingModel, VFRResNetDetector

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("spinenet-weights")
    for sub, name, cls, key in (
        ("detect-vfr", "ckpt435.pt", VFRResNetDetector, "net"),
        ("appearance", "ckpt187.pt", AppearanceModel, "net"),
        ("context", "ckpt16.pt", ContextModel, "net"),
        ("grading", "ckpt1.pt", GradingModel, "model_weights"),
    ):
        (root / sub).mkdir()
        epoch = "epoch_no" if key == "model_weights" else "epoch"
        # half precision: half the bytes to write and hash; load_state_dict casts back to float32
        state = {k: v.half() if v.is_floating_point() else v for k, v in cls().state_dict().items()}
        torch.save({key: state, epoch: 0, "loss": 0.0}, root / sub / name)
    return root


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The cropped scan twice: as SpineNet's array (I, P, R) and as a NIfTI file stored in RAS order."""
    import nibabel as nib

    data = shared_data_or_skip()
    img = nib.load(data / CASE / "image.nii.gz")
    mask = np.asanyarray(nib.load(data / CASE / "mask.nii.gz").dataobj)[ROWS, COLS, SLICES]
    if SEEDED_BODIES is not None:
        mask = np.where(np.isin(mask, SEEDED_BODIES), mask, 0)
    volume = np.asanyarray(img.dataobj)[ROWS, COLS, SLICES]
    affine = img.affine.copy()
    affine[:3, 3] = img.affine[:3, :3] @ [ROWS.start, COLS.start, SLICES.start] + img.affine[:3, 3]
    assert nib.aff2axcodes(affine) == ("I", "P", "R")  # the SpineNet layout, as stored
    ras = nib.as_closest_canonical(nib.Nifti1Image(volume, affine))
    path = tmp_path_factory.mktemp("scan") / "scan_ras.nii.gz"
    nib.save(ras, path)
    # SpineNet array index (row, col, slice) → voxel of the RAS file
    to_file = np.linalg.inv(ras.affine) @ affine
    return {
        "volume": volume, "mask": mask, "spacing": [1.0, 1.0], "path": path, "to_file": to_file, "affine": affine
    }  # fmt: skip


def _truth_maps(mask: np.ndarray) -> np.ndarray:
    """(13, H, W, S) detector maps from body masks: corner and centroid peaks, arrows corner → centroid (pixels).

    Channels as SpineNet's post-processing reads them: 0-3 corners (posterior-superior, posterior-inferior,
    anterior-inferior, anterior-superior), 4 centroid, 5-8 column and 9-12 row component of each corner's arrow.
    """
    h, w, s = mask.shape
    maps = np.zeros((13, h, w, s), dtype=np.float32)
    rr, cc = np.mgrid[0:h, 0:w]
    for k in range(s):
        for value in np.unique(mask[:, :, k]):
            if value == 0:
                continue
            r, c = np.nonzero(mask[:, :, k] == value)
            if r.size < 150:  # the body's edge slices: too small to outline
                continue
            centre = np.array([r.mean(), c.mean()])
            picks = [np.argmax(c - r), np.argmax(c + r), np.argmax(r - c), np.argmin(r + c)]
            maps[4, :, :, k] = np.maximum(
                maps[4, :, :, k], np.exp(-((rr - centre[0]) ** 2 + (cc - centre[1]) ** 2) / 18)
            )
            for ch, i in enumerate(picks):
                corner = np.array([r[i], c[i]], dtype=float)
                near = (rr - corner[0]) ** 2 + (cc - corner[1]) ** 2
                maps[ch, :, :, k] = np.maximum(maps[ch, :, :, k], np.exp(-near / 4.0))
                arrow = centre - corner
                disc = near <= 9
                maps[5 + ch, :, :, k][disc] = arrow[1]
                maps[9 + ch, :, :, k][disc] = arrow[0]
    return maps


class _SeededDetector:
    """Stands in for the detection network's forward: for each slice's patches (SpineNet calls it once per slice,
    in order) it returns the truth maps cut and resized exactly as SpineNet cut and resized the image."""

    def __init__(self, maps: np.ndarray) -> None:
        self.maps = maps
        self.tiles: list[list[dict[str, int]]] = []
        self.calls = 0

    def record(self, split: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            patches, info = split(*args, **kwargs)
            self.tiles = copy.deepcopy(info)
            self.calls = 0
            return patches, info

        return wrapped

    def forward(self, x: Any, with_output_feature_map: bool = False) -> Any:
        import cv2
        import torch

        k = self.calls
        self.calls += 1
        out = np.zeros((x.shape[0], 13, x.shape[2], x.shape[3]), dtype=np.float32)
        for j, t in enumerate(self.tiles[k]):
            y2 = None if t["y2"] == -1 else t["y2"]
            x2 = None if t["x2"] == -1 else t["x2"]
            scale = np.array([x.shape[2] / t["patch_edge_h"], x.shape[3] / t["patch_edge_w"]])
            for ch in range(13):
                tile = self.maps[ch, t["y1"] : y2, t["x1"] : x2, k]
                if ch in (0, 1, 2, 3, 4):
                    out[j, ch] = cv2.resize(tile, (x.shape[3], x.shape[2]), interpolation=cv2.INTER_NEAREST)
                else:  # arrows, in patch pixels
                    factor = scale[1] if ch < 9 else scale[0]
                    out[j, ch] = cv2.resize(tile, (x.shape[3], x.shape[2]), interpolation=cv2.INTER_NEAREST) * factor
        return torch.from_numpy(out)


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch, case: dict[str, Any]) -> _SeededDetector:
    _spinenet_or_skip()
    import importlib

    from spinenet.models import VFRResNetDetector

    dag = importlib.import_module("spinenet.utils.detect_and_group")  # the module: its name is also a function's

    fake = _SeededDetector(_truth_maps(case["mask"]))
    monkeypatch.setattr(
        dag, "split_into_patches_exhaustive_spacing", fake.record(dag.split_into_patches_exhaustive_spacing)
    )
    monkeypatch.setattr(VFRResNetDetector, "forward", lambda self, x, **kw: fake.forward(x, **kw))
    if not FULL:
        from spinenet.models import GradingModel

        monkeypatch.setattr(GradingModel, "forward", _pooled_grading)
    return fake


HEADS = ("fc_pf", "fc_nar", "fc_ccs", "fc_spn", "fc_ued", "fc_led", "fc_umc", "fc_lmc", "fc_fsl", "fc_fsr", "fc_hrn")


def _pooled_grading(self: Any, x: Any) -> tuple[Any, ...]:
    """SpineNet's own (random) grading heads on the disc volume pooled to their 512 inputs: grades that depend
    on the volume each disc hands the grader, without the 3D trunk's seconds."""
    import torch.nn.functional as F

    features = F.adaptive_avg_pool3d(x, (1, 8, 64)).flatten(1)
    return tuple(getattr(self, head)(features) for head in HEADS)


def _spinenet_alone(weights: Path, case: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    """SpineNet as its README runs it, on the same volume (weights put where SpineNet looks for them)."""
    import spinenet
    from spinenet.models import AppearanceModel, ContextModel, GradingModel, VFRResNetDetector

    loaders = {}
    for cls, sub in (
        (VFRResNetDetector, "detect-vfr"),
        (AppearanceModel, "appearance"),
        (ContextModel, "context"),
        (GradingModel, "grading"),
    ):
        original = cls.load_weights
        loaders[cls] = original
        cls.load_weights = (lambda orig, d: lambda self, path, verbose=True: orig(self, str(d), verbose))(
            original, weights / sub
        )
    try:
        net = spinenet.SpineNet(device="cpu", verbose=False)
    finally:
        for cls, original in loaders.items():
            cls.load_weights = original
    vert_dicts = net.detect_vb(case["volume"], case["spacing"])
    ivd_dicts = net.get_ivds_from_vert_dicts(vert_dicts, case["volume"], pixel_spacing=case["spacing"])
    return vert_dicts, net.grade_ivds(ivd_dicts)


def test_same_answer_as_spinenet(weights: Path, case: dict[str, Any], seeded: _SeededDetector, tmp_path: Path) -> None:
    import openspine
    from openspine.engines import spinenet as engine
    from openspine.schema import validate_result

    t = time.perf_counter()
    vert_dicts, table = _spinenet_alone(weights, case)
    alone_s = time.perf_counter() - t
    t = time.perf_counter()
    scan = openspine.load_scan(case["path"])
    # a header flag of the reading (here made up) reaches the result as on openspine's own path
    header_flag = "nifti_transforms_disagree: stand-in for this test"
    scan = replace(scan, source=replace(scan.source, header_flags=(header_flag,)))
    result = engine.analyze(scan, weights_dir=weights)
    ours_s = time.perf_counter() - t
    print(f"SpineNet alone {alone_s:.1f} s, through openspine {ours_s:.1f} s (load + run)")

    # non-empty: the seeded detections went through SpineNet's post-processing, labelling and grading
    assert len(vert_dicts) >= (7 if FULL else 3) and len(table) >= (6 if FULL else 2)
    assert len(result.vertebrae) == len(vert_dicts) and len(result.discs) == len(table)

    # labels and corners, top down; SpineNet's (x, y) pixels on slice k mapped by hand to the RAS file's voxels
    theirs = sorted(vert_dicts, key=lambda v: np.mean(np.asarray(v["average_polygon"])[:, 1]))
    for ours, v in zip(result.vertebrae, theirs):
        assert (ours.label.value if ours.label else None) == v["predicted_label"]
        assert [o.slice_index for o in ours.outlines] == sorted(v["slice_nos"])
        for outline in ours.outlines:
            poly = np.asarray(v["polys"][v["slice_nos"].index(outline.slice_index)], dtype=float)
            ijk = np.column_stack([poly[:, 1], poly[:, 0], np.full(4, outline.slice_index), np.ones(4)])
            expected = (case["to_file"] @ ijk.T).T[:, :3][[3, 0, 1, 2]]  # anterior-superior first
            np.testing.assert_allclose(np.array(outline.corners_voxel), expected, atol=1e-3)

    # grades: every SpineNet column, every disc, the same class value
    by_level = {d.level.value: d for d in result.discs if d.level}
    assert len(by_level) == len(table)
    for level, row in table.iterrows():
        for column, (key, _) in engine.GRADINGS.items():
            assert by_level[level].grades[key].grade == int(row[column]), (level, column)

    assert engine.LICENCE_NOTICE in result.flags and header_flag in result.flags
    assert {m.name for m in result.models} == {
        "spinenet/detect-vfr/ckpt435.pt",
        "spinenet/appearance/ckpt187.pt",
        "spinenet/context/ckpt16.pt",
        "spinenet/grading/ckpt1.pt",
    }
    validate_result(result.to_dict())

    # every output openspine writes for a NIfTI input works on SpineNet's records, the licence where people look
    from openspine.writers import write_result

    files = write_result(result, tmp_path / "out", ("json", "csv", "png", "html", "nifti"))
    assert len(files) >= 6 and all(Path(f).stat().st_size > 0 for f in files.values())
    assert html.escape(engine.LICENCE_NOTICE) in (tmp_path / "out" / "report.html").read_text()
    assert "spinenet" in (tmp_path / "out" / "discs.csv").read_text()


def test_a_dicom_series_gives_every_output_seg_and_sr_included(
    weights: Path, case: dict[str, Any], seeded: _SeededDetector, tmp_path: Path
) -> None:
    """The same scan as a DICOM series (files in shuffled order): the same labels as from the NIfTI file, and every
    output, DICOM SEG and SR (which reference the source images) among them, from SpineNet's records."""
    pytest.importorskip("highdicom", reason="DICOM SEG/SR need highdicom: pip install 'openspine[dicom]'")
    import sys

    import openspine
    from openspine.engines import spinenet as engine
    from openspine.writers import write_result

    tests = str(Path(__file__).resolve().parents[1])
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from dicom_fixtures import write_series

    write_series(tmp_path / "dicom", np.asarray(case["volume"]), case["affine"])
    from_dicom = engine.analyze(tmp_path / "dicom", weights_dir=weights)
    from_nifti = engine.analyze(openspine.load_scan(case["path"]), weights_dir=weights)
    labels = [v.label for v in from_dicom.vertebrae]
    assert labels and labels == [v.label for v in from_nifti.vertebrae]
    assert [d.level for d in from_dicom.discs] == [d.level for d in from_nifti.discs]
    files = write_result(from_dicom, tmp_path / "out", "all")
    assert {"vertebrae_seg.dcm", "measurements_sr.dcm", "labels.nii.gz"} <= {Path(f).name for f in files.values()}
    import pydicom

    sr = pydicom.dcmread(tmp_path / "out" / "measurements_sr.dcm")
    described = [item.ContributionDescription for item in sr.ContributingEquipmentSequence]
    assert len(described) == 4 and all(engine.LICENCE_NOTICE in d and "sha256" in d for d in described)


def test_missing_weights_name_the_fix(tmp_path: Path) -> None:
    _spinenet_or_skip()
    from openspine.engines.spinenet import find_checkpoints
    from openspine.errors import EngineError

    with pytest.raises(EngineError, match="download_weights"):
        find_checkpoints(tmp_path)


def test_cli_without_spinenet_names_the_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    from openspine.cli import main
    from openspine.data import demo_scan_path

    if importlib.util.find_spec("spinenet") is not None:
        pytest.skip("SpineNet's package is installed here")
    out = tmp_path / "out"
    assert main(["analyze", str(demo_scan_path()), "--out", str(out), "--engine", "spinenet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("openspine: error: --engine spinenet needs SpineNet's package") and err.count("\n") == 1
    assert "pip install --no-deps spinenet==2.1.4" in err and "Traceback" not in err
    assert not (out / "result.json").exists()


def test_cli_missing_weights_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _spinenet_or_skip()
    from openspine.cli import main
    from openspine.data import demo_scan_path

    argv = ["analyze", str(demo_scan_path()), "--out", str(tmp_path / "out"), "--engine", "spinenet"]
    assert main([*argv, "--spinenet-weights", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert "SpineNet's weights are missing" in err and "--spinenet-weights DIR" in err and err.count("\n") == 1


def test_batch_without_spinenet_stops_before_the_first_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util
    import shutil

    from openspine.cli import main
    from openspine.data import demo_scan_path

    if importlib.util.find_spec("spinenet") is not None:
        pytest.skip("SpineNet's package is installed here")
    root = tmp_path / "cohort"
    root.mkdir()
    shutil.copy(demo_scan_path(), root / "a.nii.gz")
    out = tmp_path / "out"
    assert main(["batch", str(root), "--out", str(out), "--engine", "spinenet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("openspine: error: --engine spinenet needs SpineNet's package") and err.count("\n") == 1
    assert not (out / "cases").exists(), "no case was started"


def test_the_engine_is_an_analysis_option() -> None:
    from openspine.config import AnalysisConfig
    from openspine.errors import ConfigError

    cfg = AnalysisConfig.from_mapping({"engine": "spinenet", "spinenet_weights": Path("/w")})
    assert cfg.engine == "spinenet" and cfg.spinenet_weights == "/w"
    assert AnalysisConfig().engine == "openspine"
    with pytest.raises(ConfigError, match="engine must be one of openspine, spinenet"):
        AnalysisConfig.from_mapping({"engine": "other"})


def test_a_ct_is_out_of_scope_before_spinenet_looks_at_it() -> None:
    """SpineNet's models, too, were trained on MR images: a scan in Hounsfield units is refused with the reason, and
    no network runs (the stub engine has none)."""
    from types import SimpleNamespace

    from openspine import Scan
    from openspine.engines.spinenet import analyze_with_spinenet

    rng = np.random.default_rng(0)
    tissue = rng.gamma(2.0, 100.0, size=(96, 80, 3))
    hounsfield = np.where(tissue > 150, tissue * 3, -1000.0).astype(np.float32)
    sagittal = np.array([[0, 0, 3.0, 0], [0, -1.0, 0, 0], [-1.0, 0, 0, 0], [0, 0, 0, 1]])  # rows S→I, cols A→P
    result = analyze_with_spinenet(Scan(hounsfield, sagittal), engine=SimpleNamespace(version="stub", models=()))
    assert result.out_of_scope is not None and "Hounsfield units" in result.out_of_scope
    assert result.steps_not_run["detection"] == result.steps_not_run["grading"] == result.out_of_scope
    assert not result.vertebrae and not result.discs


def test_options_of_openspines_own_analysis_are_said_ignored_and_recorded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """--paired-grader, --no-t1 and --trust-orientation had been dropped without a word by the SpineNet engine."""
    import openspine.engines.spinenet as engine
    from openspine.analysis import analyze
    from openspine.config import AnalysisConfig
    from openspine.data import demo_scan_path
    from openspine.io import load_scan
    from openspine.results import AnalysisResult, InputInfo

    def stand_in(source: Any, weights: Any, **kwargs: Any) -> AnalysisResult:  # SpineNet need not be installed
        scan = load_scan(source)
        return AnalysisResult(input=InputInfo.from_scan(scan), parameters={"engine": "spinenet"})

    monkeypatch.setattr(engine, "analyze", stand_in)
    cfg = AnalysisConfig(engine="spinenet", paired_grader="some/grader", use_t1=False, check_orientation=False)
    with caplog.at_level("WARNING", logger="openspine"):
        result = analyze(demo_scan_path(), cfg)
    assert "ignores: paired_grader, use_t1, check_orientation" in caplog.text
    assert set(result.parameters["not_applied"]) == {"paired_grader", "use_t1", "check_orientation"}
    assert result.parameters["engine"] == "spinenet"
    assert "not_applied" not in analyze(demo_scan_path(), AnalysisConfig(engine="spinenet")).parameters
