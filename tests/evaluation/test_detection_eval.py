"""Scoring rules of ``openspine evaluate detection`` on synthetic detections with exact answers."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from openspine.errors import ConfigError
from openspine.evaluation.detection import (
    ScanResult,
    _overall,
    build_parser,
    format_report,
    score_volume,
    spider_sequence_ok,
)
from openspine.levels import DiscLevel, Level

AFF = np.array([[0, 0, 1.0, 0], [0, -1.0, 0, 0], [-1.0, 0, 0, 0], [0, 0, 0, 1]])  # [S→I, A→P, L→R], 1 mm


def _mask() -> np.ndarray:
    m = np.zeros((120, 60, 5), np.int32)
    m[20:40, 10:40, :] = 23  # L4
    m[50:70, 10:40, :] = 24  # L5
    m[80:90, 10:40, :] = 124  # L5-S1 disc
    return m


def _v(label: str, vox: tuple[float, float, float]) -> SimpleNamespace:
    mm = tuple(float(x) for x in AFF[:3, :3] @ np.array(vox) + AFF[:3, 3])
    return SimpleNamespace(label=Level(label), centroid_voxel=vox, centroid_mm=mm)


def test_scoring_counts_detections_false_positives_and_unscored() -> None:
    det = SimpleNamespace(
        vertebrae=[
            _v("L3", (5.0, 25.0, 2.0)),  # above the annotated span: unscored
            _v("L4", (29.5, 24.5, 2.0)),  # in L4's mask, right level, at its centroid
            _v("L4", (31.0, 24.5, 2.0)),  # a second prediction in the same mask: a false positive
            _v("S1", (60.0, 24.5, 2.0)),  # in L5's mask with the wrong label
            _v("L5", (45.0, 50.0, 2.0)),  # inside the span, in no mask: a false positive
        ],
        discs=[SimpleNamespace(level=DiscLevel.L5_S1, centroid_voxel=(85.0, 25.0, 2.0))],
        flags=("x",),
    )
    res = score_volume(det, _mask(), AFF, True, ScanResult("s", "VB2", True))
    assert (res.n_gt, res.detected, res.false_positives, res.unscored) == (2, 2, 2, 1)
    assert (res.level_checked, res.level_correct) == (2, 1)
    assert res.errors_mm[0] == pytest.approx(0.0, abs=1e-6)
    assert res.errors_mm[1] == pytest.approx(0.5, abs=1e-6)
    assert (res.gt_discs, res.discs_detected, res.disc_level_correct) == (1, 1, 1)
    o = _overall([res], [{"complete": True}, {"complete": False}])
    assert o["detection_rate"] == 1.0 and o["false_positives_per_scan"] == 2.0 and o["level_accuracy"] == 0.5
    assert o["spider_lumbar_sequence_complete"] == 0.5
    assert o["targets_met"]["detection_rate"] and not o["targets_met"]["false_positives_per_scan"]
    text = format_report({"split": "val", "model": "m", "scans": [res.to_dict()], "spider": [], "overall": o})
    assert "detection_rate" in text and "NOT met" in text


def _d(level: str, z: float) -> SimpleNamespace:
    return SimpleNamespace(level=DiscLevel(level), centroid_mm=(0.0, 0.0, z))


def test_spider_sequence_needs_all_five_in_order() -> None:
    good = SimpleNamespace(
        discs=[_d("T12-L1", 60), _d("L1-L2", 40), _d("L2-L3", 20), _d("L3-L4", 0), _d("L4-L5", -20), _d("L5-S1", -40)]
    )
    assert spider_sequence_ok(good)
    assert not spider_sequence_ok(SimpleNamespace(discs=good.discs[:-1]))
    swapped = SimpleNamespace(
        discs=[_d("L1-L2", 40), _d("L2-L3", 20), _d("L3-L4", -30), _d("L4-L5", -20), _d("L5-S1", -40)]
    )
    assert not spider_sequence_ok(swapped)


def test_cli_help_has_examples(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert "openspine evaluate detection --data ../shared/data --split val" in capsys.readouterr().out


# --- robustness variants ------------------------------------------------------------------------------------------
def test_crop_and_flip_keep_every_voxel_at_its_world_position() -> None:
    from openspine.evaluation.detection import crop_axis, flip_axes

    arr = np.arange(120 * 60 * 5).reshape(120, 60, 5)
    aff = AFF.copy()
    aff[:3, 3] = (3.0, -7.0, 11.0)
    c, ca = crop_axis(arr, aff, 0, 30, 90)
    assert c.shape == (60, 60, 5) and c[0, 4, 2] == arr[30, 4, 2]
    np.testing.assert_allclose(ca @ [0, 4, 2, 1], aff @ [30, 4, 2, 1])
    f, fa = flip_axes(arr, aff, [1, 2])
    assert f[7, 0, 0] == arr[7, 59, 4]
    np.testing.assert_allclose(fa @ [7, 0, 0, 1], aff @ [7, 59, 4, 1])
    with pytest.raises(ValueError):
        crop_axis(arr, aff, 0, 50, 50)


def test_apply_variant_crops_superior_inferior_axis_and_mirrors_the_others() -> None:
    from openspine.evaluation.detection import Variant, apply_variant, si_axis

    assert si_axis(AFF) == (0, True)  # rows run superior → inferior
    img = np.random.default_rng(0).random((120, 60, 5))
    mask = _mask()
    (i2, m2), a2 = apply_variant([img, mask], AFF, Variant("crop-top+mirrored", (25, 100), True))
    assert i2.shape == m2.shape == (75, 60, 5)
    # the same world point carries the same image value and label
    w = AFF @ [55, 12, 1, 1]
    v2 = np.round(np.linalg.solve(a2, w)[:3]).astype(int)
    assert i2[tuple(v2)] == img[55, 12, 1] and m2[tuple(v2)] == 24
    assert a2[:3, 1] @ AFF[:3, 1] < 0 and a2[:3, 2] @ AFF[:3, 2] < 0  # A-P and L-R storage reversed


def test_make_variants_keeps_three_whole_units_and_is_seeded() -> None:
    from openspine.evaluation.detection import make_variants

    ext = [(10 + 40 * i, 40 + 40 * i) for i in range(6)]  # six bodies, 30 rows tall, 10-row discs
    v = make_variants(ext, 300, True, 6, np.random.default_rng(1))
    assert [x.name for x in v[:2]] == ["as-is", "mirrored"] and v[1].mirrored and v[0].keep is None
    crops = v[2:]
    assert [c.name.split("+")[0] for c in crops] == ["crop-top", "crop-bottom", "crop-both"] * 2
    assert [c.mirrored for c in crops] == [False, True] * 3
    for c in crops:
        assert c.keep is not None
        start, stop = c.keep
        assert sum(start <= a and b < stop for a, b in ext) >= 3
        if c.name.startswith("crop-bottom"):
            assert start == 0 and stop < 300
        if c.name.startswith("crop-top"):
            assert stop == 300
    again = make_variants(ext, 300, True, 6, np.random.default_rng(1))
    assert [x.keep for x in again] == [x.keep for x in v]
    # superior at the high index end: a top crop cuts the high end
    top = make_variants(ext, 300, False, 1, np.random.default_rng(2))[2]
    assert top.keep is not None and top.keep[0] == 0 and top.keep[1] <= 300
    assert len(make_variants(ext[:2], 300, True, 6, np.random.default_rng(0))) == 2  # too few units to crop


def test_case_scoring_and_summary() -> None:
    from openspine.evaluation.detection import (
        labelling_flagged,
        robustness_overall,
        spider_case_offset,
        spider_case_right,
        summarise_cases,
        volume_case_right,
    )

    assert labelling_flagged(["labelling_ambiguous: no sacrum visible"])
    assert labelling_flagged(["vertebra_not_detected: between T12 and L2"])
    assert not labelling_flagged(["cervical levels are outside the detector's training data"])
    assert volume_case_right(ScanResult("a", "", True, level_checked=3, level_correct=3))
    assert not volume_case_right(ScanResult("a", "", True, level_checked=3, level_correct=2))
    assert not volume_case_right(ScanResult("a", "", True))  # nothing scored is not right
    assert volume_case_right(ScanResult("a", "", True, discs_detected=2, disc_level_correct=2))
    ref = SimpleNamespace(discs=[_d("L3-L4", 0), _d("L4-L5", -30), _d("L5-S1", -60)])
    assert spider_case_right(ref, SimpleNamespace(discs=[_d("L4-L5", -28), _d("L5-S1", -61)])) == (True, 2)
    assert spider_case_right(ref, SimpleNamespace(discs=[_d("L3-L4", -29), _d("L4-L5", -59)])) == (False, 2)
    assert spider_case_right(ref, SimpleNamespace(discs=[_d("L1-L2", 90)])) == (False, 0)  # nothing in common
    # the offset of a variant's labels from the reference: + = closer to the sacrum
    assert spider_case_offset(ref, SimpleNamespace(discs=[_d("L4-L5", -28), _d("L5-S1", -61)])) == 0
    assert spider_case_offset(ref, SimpleNamespace(discs=[_d("L2-L3", -1), _d("L3-L4", -29)])) == -1
    assert spider_case_offset(ref, SimpleNamespace(discs=[_d("L1-L2", 90)])) is None

    def case(right: bool, flagged: bool, variant: str = "as-is", source: str = "volume") -> dict[str, object]:
        return {"right": right, "flagged": flagged, "variant": variant, "source": source}

    cases = [case(True, False)] * 6 + [case(True, True, "crop-top")] * 2 + [case(False, True, "crop-both")]
    cases += [case(False, False, "crop-top+mirrored", "spider")]
    s = summarise_cases(cases)
    assert s["cases"] == 10 and s["every_label_right"] == 0.8 and s["wrong"] == 2 and s["wrong_unflagged"] == 1
    assert s["flagged_share_of_wrong"] == 0.5 and s["right_or_flagged"] == 0.9 and s["right_flagged_share"] == 0.25
    o = robustness_overall(cases)
    assert o["by_variant"]["crop-top"]["cases"] == 3 and o["spider"]["cases"] == 1
    assert not o["targets_met"]["right_or_flagged"] and not o["targets_met"]["every_label_right"]
    assert summarise_cases([])["every_label_right"] is None
    assert s["alternative_right_share_of_wrong"] == 0.0  # no case names an alternative
    named = [
        {**case(False, True), "offset": 1, "alternative": -1},
        {**case(False, True), "offset": 1, "alternative": 1},
    ]
    assert summarise_cases([*named, case(True, False)])["alternative_right_share_of_wrong"] == 0.5
    # SPIDER T1 cases are summarised apart: the targets stay on the volumes and the T2 slices
    with_t1 = robustness_overall([*cases, case(False, False, "crop-top", "spider-t1")])
    assert with_t1["all"] == o["all"] and with_t1["by_variant"] == o["by_variant"]
    assert with_t1["spider-t1"]["cases"] == 1 and with_t1["spider-t1"]["wrong_unflagged"] == 1
    # apart by whether the labelling found a sacrum to count from (an S1 body or the L5-S1 disc)
    anchored = [{**case(True, False), "predicted": ["L4", "L5", "S1"]}, {**case(False, True), "predicted": ["L5-S1"]}]
    free = [{**case(False, True), "predicted": ["T11", "T12", "L1"]}, case(True, False)]
    by_anchor = robustness_overall([*anchored, *free])["by_anchor"]
    assert by_anchor["S1 labelled"]["cases"] == 2 and by_anchor["S1 labelled"]["every_label_right"] == 0.5
    assert by_anchor["no S1 labelled"]["cases"] == 2 and by_anchor["no S1 labelled"]["wrong"] == 1
    # and without a sacrum, apart by whether the view reaches L5 (graded) or ends above it (not graded)
    near = {**case(True, False), "predicted": ["L3-L4", "L4-L5"]}
    split = robustness_overall([*anchored, *free, near])["by_anchor"]
    assert split["no S1, reaches L5"]["cases"] == 1 and split["no S1, ends above L5"]["cases"] == 2


@pytest.mark.slow
def test_real_val_volume_cropped(shared_data) -> None:
    import nibabel as nib

    from openspine.detection import detect
    from openspine.evaluation.detection import volume_variant_cases

    folder = shared_data / "fastcleverseg" / "fcs-vb3-10"
    img = np.asarray(nib.load(str(folder / "image.nii.gz")).dataobj)  # type: ignore[attr-defined]
    m: Any = nib.load(str(folder / "mask.nii.gz"))
    mask = np.asarray(m.dataobj).astype(np.int32)
    calls: list[tuple[int, ...]] = []

    def detect_fn(scan: Any) -> Any:
        calls.append(scan.shape)
        return detect(scan.to_sagittal())

    as_is = SimpleNamespace(vertebrae=[], discs=[], flags=("no vertebral body detected",))  # reused, not re-run
    cases = volume_variant_cases("fcs-vb3-10", img, mask, np.asarray(m.affine, float), 1, 0, detect_fn, as_is)
    assert [c["variant"] for c in cases] == ["as-is", "mirrored", "crop-top"]
    assert len(calls) == 2 and calls[1][0] < img.shape[0]  # the crop is shorter along superior–inferior
    assert not cases[0]["right"] and cases[0]["flagged"]
    crop = cases[2]
    assert crop["checked"] >= 3 and crop["right"], crop
    assert cases[1]["right"] and cases[1]["predicted"]  # mirrored storage: same anatomy, same labels


# --- SPIDER T1 slices beside the T2 ones ----------------------------------------------------------------------------
def test_spider_t1_rows_of_the_split_and_none_without_the_list(tmp_path) -> None:
    from openspine.evaluation.detection import spider_t1_rows

    assert spider_t1_rows(tmp_path, "val") == []  # no spider/t1.csv: no T1 slices, no error
    (tmp_path / "spider").mkdir()
    (tmp_path / "spider" / "t1.csv").write_text(
        "id,patient_id,path,image,png,sequence,split,pixel_spacing_mm\n"
        "spider-1-t1,1,spider/1,t1.nii.gz,t1.png,T1,train,0.625;0.625\n"
        "spider-9-t1,9,spider/9,t1.nii.gz,t1.png,T1,val,0.8;0.8\n"
    )
    assert [r["id"] for r in spider_t1_rows(tmp_path, "val")] == ["spider-9-t1"]


def test_spider_t1_figure_beside_the_t2_one() -> None:
    from openspine.evaluation.detection import spider_entry

    full = SimpleNamespace(
        discs=[_d("L1-L2", 40), _d("L2-L3", 20), _d("L3-L4", 0), _d("L4-L5", -20), _d("L5-S1", -40)],
        vertebrae=[],
        flags=(),
    )
    short = SimpleNamespace(discs=full.discs[:3], vertebrae=[], flags=("labelling_ambiguous: x",))
    t2 = [spider_entry("spider-5", full, 0.1)]
    t1 = [spider_entry("spider-5-t1", full, 0.1), spider_entry("spider-6-t1", short, 0.1)]
    assert t1[1]["complete"] is False and t1[1]["discs"] == ["L1-L2", "L2-L3", "L3-L4"]
    o = _overall([], t2, t1)
    assert o["spider_lumbar_sequence_complete"] == 1.0
    assert (o["spider_t1_slices"], o["spider_t1_lumbar_sequence_complete"]) == (2, 0.5)
    assert _overall([], t2)["spider_t1_lumbar_sequence_complete"] is None  # no T1 slices: no figure
    text = format_report({"split": "val", "model": "m", "scans": [], "spider": t2, "spider_t1": t1, "overall": o})
    assert "SPIDER T2: 1/1 slices" in text and "SPIDER T1: 1/2 slices" in text
    assert "incomplete spider-6-t1: discs L1-L2 L2-L3 L3-L4" in text


def test_evaluate_only_the_ids_asked_for(shared_data, tmp_path) -> None:
    from openspine.evaluation.detection import cli_main

    ids = tmp_path / "ids.txt"
    ids.write_text("spider-100\n")  # a val patient with a T2 and a T1 slice
    out = tmp_path / "r.json"
    assert cli_main(["--data", str(shared_data), "--ids", str(ids), "--variants", "0", "--out", str(out)], True) == 0
    r = json.loads(out.read_text())
    assert [s["id"] for s in r["spider"]] == ["spider-100"] and r["scans"] == []
    assert [s["id"] for s in r["spider_t1"]] == ["spider-100-t1"]
    with pytest.raises(ConfigError, match="does not exist"):
        cli_main(["--data", str(shared_data), "--ids", str(tmp_path / "none.txt")], True)


def test_real_val_t1_slices_have_the_lumbar_sequence(shared_data) -> None:
    from openspine.detection import detect
    from openspine.evaluation.detection import spider_entry, spider_t1_rows
    from openspine.io import load_scan

    rows = spider_t1_rows(shared_data, "val")
    if not rows:
        pytest.skip("the shared data has no SPIDER T1 slices (spider/t1.csv)")
    assert len(rows) == 26
    for r in rows[:2]:
        det = detect(load_scan(shared_data / r["path"] / r["image"]).to_sagittal())
        entry = spider_entry(r["id"], det, 0.0)
        assert entry["complete"], entry


def test_shared_cases_compare_like_with_like() -> None:
    from openspine.evaluation.detection import shared_cases

    def case(item: str, variant: str, right: bool, flagged: bool, source: str = "spider") -> dict[str, Any]:
        return {"id": item, "variant": variant, "keep": [0, 9], "right": right, "flagged": flagged, "source": source}

    old = [case("a", "crop-top", False, True), case("b", "crop-top", True, False), case("c", "as-is", True, False),
           case("a-t1", "as-is", False, False, "spider-t1")]  # fmt: skip
    new = [case("a", "crop-top", True, False), case("b", "crop-top", False, False), case("d", "as-is", True, False),
           case("a-t1", "as-is", True, False, "spider-t1")]  # fmt: skip
    like = shared_cases(old, new)
    # only a and b are in both T2 runs: c (old only) and d (new only) are left out
    assert like["all"] == {"cases": 2, "right": [1, 1], "right_or_flagged": [2, 1]}
    assert like["spider-t1"] == {"cases": 1, "right": [0, 1], "right_or_flagged": [0, 1]}
    assert shared_cases(old, []) == {}


def test_the_report_path_the_card_and_the_subsets_are_checked_before_the_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An --out that is a folder had failed with a traceback after the whole evaluation, --card on train after it,
    and unknown --subsets had scored nothing with exit status 0 (user test)."""
    from openspine.cli import main
    from openspine.evaluation import detection, grading, recognition

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluated before the options were checked")

    monkeypatch.setattr(detection, "evaluate", no_work)
    monkeypatch.setattr(recognition, "evaluate_recognition", no_work)
    monkeypatch.setattr(grading, "evaluate", no_work)
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    for argv, said in (
        (["detection", "--split", "val", "--out", str(tmp_path)], "is a folder: give a file name"),
        (["detection", "--split", "train", "--card"], "--card stores validation figures"),
        (["detection", "--out", str(tmp_path / "afile" / "r.json")], "is a file, not a folder"),
        (["recognition", "--out", str(tmp_path)], "is a folder: give a file name"),
        (["grading", "--out", str(tmp_path)], "is a folder: give a file name"),
        (["grading", "--bootstrap", "-1"], "--bootstrap must be 0"),
    ):
        assert main(["-q", "evaluate", *argv, "--data", str(tmp_path)]) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], (argv, err)
    monkeypatch.undo()
    (tmp_path / "index.csv").write_text(
        "id,dataset,subset,path,image,split\nfcs-vb2-01,fastcleverseg,VB2,x,image.nii.gz,val\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="--subsets: VB9 not in split 'val'; its subsets: VB2"):
        detection.evaluate(tmp_path, "val", subsets=["vb2", "VB9"], spider=False, progress=False)
