"""Fine-tuning machinery on synthetic scans with a stand-in detector and a tiny base grader (fast, no real data).

The real-data test (built-in detector and grader, SPIDER slices) is test_finetune_spider.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
from grading_helpers import AFFINE, LEVELS, add_random_stacker, fake_detection, synthetic_spine, tiny_grader

from openspine.errors import ConfigError

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    # with a stacker on its Pfirrmann head, as the built-in grader has
    return add_random_stacker(tiny_grader(tmp_path_factory.mktemp("base") / "tiny", pretrain_epochs=8))


@pytest.fixture
def dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """24 synthetic scans; a disc is 'stenotic' (1) when dark. The detector is replaced by the known geometry."""
    import openspine.finetune.core as core
    import openspine.training.datasets.discs as data

    rng = np.random.default_rng(0)
    scans = tmp_path / "scans"
    scans.mkdir()
    rows = ["scan,level,central_canal_stenosis,split"]
    geoms = None
    for i in range(24):
        dark = rng.random(5) < 0.5
        values = [float(rng.uniform(50, 90)) if d else float(rng.uniform(250, 330)) for d in dark]
        arr, geoms = synthetic_spine(values, seed=i)
        nib.save(nib.Nifti1Image(arr, AFFINE), str(scans / f"s{i:02d}.nii.gz"))
        split = "val" if i >= 18 else "train"
        rows += [f"s{i:02d}.nii.gz,{lv.value},{int(d)},{split}" for lv, d in zip(LEVELS, dark)]
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    assert geoms is not None
    found = {lv.value: g for lv, g in geoms.items()}
    monkeypatch.setattr(data, "detect_discs", lambda view: (dict(found), []))
    monkeypatch.setattr(core, "detector_id", lambda: "stand-in-detector")
    return scans, labels


def test_frozen_finetune_adds_a_head_and_keeps_the_rest(base: Path, dataset: tuple[Path, Path], tmp_path: Path):
    from openspine.finetune import read_labels
    from openspine.finetune.core import FinetuneOptions, finetune
    from openspine.grading import grade
    from openspine.grading.model import load_grader
    from openspine.io import load_scan
    from openspine.levels import Grading

    scans, labels = dataset
    out = tmp_path / "model"
    res = finetune(
        read_labels(labels, scans), out, FinetuneOptions(base=str(base), epochs=30, augment_copies=2, threads=1)
    )
    assert res.frozen_check.startswith("passed")
    assert (res.n_train, res.n_val) == (90, 30)
    m = res.metrics["central_canal_stenosis"]
    assert m["balanced_accuracy"]["value"] > 0.8  # dark vs bright discs: easy even for random features
    card = json.loads((out / "card.json").read_text())
    heads = [h["name"] for h in card["outputs"]["heads"]]
    assert heads[-1] == "central_canal_stenosis" and "pfirrmann" in heads
    assert card["finetuning"]["kept_base_heads"][0] == "pfirrmann"
    # the kept head's logits are the base model's, so its stacker comes along (the new head has none)
    assert card["finetuning"]["kept_base_stackers"] == ["pfirrmann"]
    assert list(card["outputs"]["stacker"]["heads"]) == ["pfirrmann"]
    assert card["base_model"]["name"] == "tiny-grader"
    assert card["metrics"]["gradings"]["central_canal_stenosis"]["n"] == 30
    # every kept weight equals the base's
    with np.load(base / "weights.npz") as a, np.load(out / "weights.npz") as b:
        for k in a.files:
            if not k.startswith("heads.central_canal_stenosis"):
                np.testing.assert_array_equal(a[k], b[k])
    # the new folder grades: the new head is available, the base heads give what the base model gives
    view = load_scan(scans / "s20.nii.gz").to_sagittal()
    _, geoms = synthetic_spine([300.0] * 5)
    det = fake_detection(view, geoms)
    new = grade(view, det, grader=out)
    old = grade(view, det, grader=base)
    d_new, d_old = new.discs[0], old.discs[0]
    assert d_new.grades[Grading.CENTRAL_CANAL_STENOSIS].available
    assert d_new.grades[Grading.PFIRRMANN].probabilities == pytest.approx(d_old.grades[Grading.PFIRRMANN].probabilities)
    assert not d_new.grades[Grading.FORAMINAL_STENOSIS_LEFT].available
    assert load_grader(out).name == "grader-finetuned"


def test_unfrozen_finetune_keeps_only_the_labelled_gradings(base: Path, dataset: tuple[Path, Path], tmp_path: Path):
    from openspine.finetune import read_labels
    from openspine.finetune.core import FinetuneOptions, finetune

    scans, labels = dataset
    out = tmp_path / "model"
    res = finetune(
        read_labels(labels, scans), out, FinetuneOptions(base=str(base), epochs=2, freeze_backbone=False, threads=1)
    )
    assert res.frozen_check.startswith("not applicable")
    card = json.loads((out / "card.json").read_text())
    assert [h["name"] for h in card["outputs"]["heads"]] == ["central_canal_stenosis"]
    assert "stacker" not in card["outputs"]  # new features: the base stacker no longer applies


def test_cli_runs_and_explains(base: Path, dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture):
    from openspine.finetune import cli_main

    with pytest.raises(SystemExit):
        cli_main(["--help"])
    assert "--freeze-backbone" in capsys.readouterr().out
    scans, labels = dataset
    rc = cli_main(
        ["--scans", str(scans), "--labels", str(labels), "--out", str(tmp_path / "m"), "--base", str(base),
         "--epochs", "3", "--augment-copies", "1", "--threads", "1", "--classes", "central_canal_stenosis=0,1"],
        quiet=True,
    )  # fmt: skip
    assert rc == 0 and (tmp_path / "m" / "card.json").is_file()
    with pytest.raises(ConfigError, match="--rsna"):
        cli_main(["--out", str(tmp_path / "x")])


def test_scope_is_what_the_heads_were_trained_on(
    base: Path, dataset: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A head trained on T1 scans at L4-L5/L5-S1 answers on T1 at those levels only; the kept base heads keep
    theirs (the tiny base declares none: unrestricted)."""
    import openspine.finetune.core as core
    from openspine.finetune import read_labels
    from openspine.grading import grade
    from openspine.io import load_scan
    from openspine.levels import Grading

    scans, labels = dataset
    monkeypatch.setattr(core, "scan_sequence", lambda view: "T1")
    low = tmp_path / "low.csv"
    lines = labels.read_text().splitlines()
    low.write_text("\n".join([lines[0]] + [r for r in lines[1:] if ",L4-L5," in r or ",L5-S1," in r]) + "\n")
    out = tmp_path / "model"
    core.finetune(read_labels(low, scans), out, core.FinetuneOptions(base=str(base), epochs=2, augment_copies=1))
    scope = json.loads((out / "card.json").read_text())["scope"]
    assert scope["heads"]["central_canal_stenosis"]["sequences"] == ["T1"]
    assert scope["heads"]["central_canal_stenosis"]["levels"] == ["L4-L5", "L5-S1"]
    coarsest = max(load_scan(p).spacing[0] for p in scans.glob("*.nii.gz"))  # the synthetic scans' pixels
    bound = scope["heads"]["central_canal_stenosis"]["max_pixel_spacing_mm"]
    assert bound == pytest.approx(1.25 * coarsest, abs=1e-3)  # a quarter coarser than its scans, as the base's
    assert scope["heads"]["pfirrmann"] == {}  # kept: the base's scope (none declared)
    assert "sequences" not in scope and "levels" not in scope  # the union: a kept head is unrestricted

    view = load_scan(scans / "s20.nii.gz").to_sagittal()
    _, geoms = synthetic_spine([300.0] * 5)
    det = fake_detection(view, geoms)
    ccs = Grading.CENTRAL_CANAL_STENOSIS
    on_t1 = grade(view, det, grader=out, levels=None, sequence={"value": "T1", "source": "header"})
    by_level = {d.level.value: d.grades for d in on_t1.discs}
    assert by_level["L4-L5"][ccs].available and by_level["L5-S1"][ccs].available
    assert not by_level["L2-L3"][ccs].available and "outside the levels" in (by_level["L2-L3"][ccs].note or "")
    assert by_level["L2-L3"][Grading.PFIRRMANN].available
    on_t2 = grade(view, det, grader=out, levels=None, sequence={"value": "T2", "source": "header"})
    assert not any(d.grades[ccs].available for d in on_t2.discs)
    assert any("trained and validated on T1 only" in f for f in on_t2.flags)  # its own scope: fine-tuned and measured
    assert all(d.grades[Grading.PFIRRMANN].available for d in on_t2.discs)


def test_a_head_answers_only_where_it_was_also_validated(
    base: Path, dataset: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Trained on T2 scans and one T1 scan, validated on T2 alone and only at L4-L5/L5-S1: it had answered on T1
    and at every level with no figure behind either (user test of fine-tuning)."""
    import openspine.finetune.core as core
    from openspine.finetune import read_labels
    from openspine.grading import grade
    from openspine.io import load_scan
    from openspine.levels import Grading

    scans, labels = dataset
    one_t1 = load_scan(scans / "s00.nii.gz").to_sagittal().scan.array.tobytes()
    monkeypatch.setattr(core, "scan_sequence", lambda view: "T1" if view.scan.array.tobytes() == one_t1 else "T2")
    rows = labels.read_text().splitlines()
    kept = [r for r in rows[1:] if r.endswith(",train") or ",L4-L5," in r or ",L5-S1," in r]
    table = tmp_path / "val-low.csv"
    table.write_text("\n".join([rows[0], *kept]) + "\n")
    out = tmp_path / "model"
    core.finetune(read_labels(table, scans), out, core.FinetuneOptions(base=str(base), epochs=2, augment_copies=1))
    head = json.loads((out / "card.json").read_text())["scope"]["heads"]["central_canal_stenosis"]
    assert head["sequences"] == ["T2"] and head["levels"] == ["L4-L5", "L5-S1"]
    assert set(head["not_validated"]) == {"T1", "L1-L2", "L2-L3", "L3-L4"}

    view = load_scan(scans / "s20.nii.gz").to_sagittal()
    _, geoms = synthetic_spine([300.0] * 5)
    det = fake_detection(view, geoms)
    ccs = Grading.CENTRAL_CANAL_STENOSIS
    by_level = {d.level.value: d.grades[ccs] for d in grade(view, det, grader=out, levels=None).discs}
    assert by_level["L5-S1"].available and not by_level["L2-L3"].available
    on_t1 = grade(view, det, grader=out, levels=None, sequence={"value": "T1", "source": "header"})
    assert not any(d.grades[ccs].available for d in on_t1.discs)


def test_scope_without_a_validation_disc_or_sequence_says_so() -> None:
    """A head with no validation disc where it was trained answers nowhere, and says 'none' (it had said 'any');
    validated on scans of unknown sequence only, its training sequences stand and the card says they were not
    checked (regression sweep)."""
    pytest.importorskip("torch")
    from types import SimpleNamespace

    from openspine.finetune.core import derive_scope
    from openspine.levels import DiscLevel
    from openspine.scope import ModelScope

    head = SimpleNamespace(name="mine")
    train = [SimpleNamespace(case=c, level=lv, labels={"mine": "1"}, spacing=(0.5, 0.5, 4.0))
             for c in ("a", "b") for lv in (DiscLevel.L4_L5, DiscLevel.L5_S1)]  # fmt: skip
    seqs: dict[str, str | None] = {"a": "T1", "b": "T2", "v": None}
    nowhere = derive_scope({}, [], [head], train, seqs, "l.csv", {})  # type: ignore[arg-type]
    assert nowhere["heads"]["mine"]["levels"] == []
    card = {"name": "m", "scope": nowhere}
    reason = ModelScope.from_card(card).head_reason("mine", None, DiscLevel.L4_L5)
    assert reason is not None and reason.endswith("trained there but not validated (validated at no level)")
    unknown = derive_scope({}, [], [head], train, seqs, "l.csv", {"mine": (set(), {"L4-L5", "L5-S1"})})  # type: ignore[arg-type]
    entry = unknown["heads"]["mine"]
    assert entry["sequences"] == ["T1", "T2"] and entry["validation_sequence_unknown"] is True


def test_split_is_by_patient(tmp_path: Path):
    pytest.importorskip("torch")
    from openspine.finetune import read_labels
    from openspine.finetune.core import split_scans

    rows = ["scan,level,bulging"] + [f"p{i}/{s}.nii.gz,L4-L5,{i % 2}" for i in range(20) for s in ("t1", "t2")]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    split = split_scans(read_labels(tmp_path / "l.csv", tmp_path), 0.2, 0)
    for i in range(20):
        assert split[f"p{i}/t1.nii.gz"] == split[f"p{i}/t2.nii.gz"]  # a patient's T1 and T2 on one side
    assert sum(v == "val" for v in split.values()) == 8  # 4 of 20 patients
    # a fraction of 0 holds out nobody: the message names the ways out (it had contradicted the option's own check)
    with pytest.raises(ConfigError, match=r"--val-fraction 0 holds out no patient: .* or --no-validation"):
        split_scans(read_labels(tmp_path / "l.csv", tmp_path), 0.0, 0)


def _cli(base: Path, scans: Path, labels: Path, out: Path, *more: str) -> int:
    from openspine.finetune import cli_main

    args = ["--scans", str(scans), "--labels", str(labels), "--out", str(out), "--base", str(base)]
    return cli_main([*args, "--epochs", "1", "--augment-copies", "0", "--threads", "1", *more], quiet=True)


def test_out_is_never_overwritten_by_surprise(base: Path, dataset: tuple[Path, Path], tmp_path: Path):
    scans, labels = dataset
    with pytest.raises(ConfigError, match="base model's folder"):
        _cli(base, scans, labels, base)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    with pytest.raises(ConfigError, match="not a fine-tuned model"):
        _cli(base, scans, labels, mine)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    out = tmp_path / "model"
    (out / "work").mkdir(parents=True)  # an interrupted run leaves its cache alone: the rerun takes the folder
    (out / "work" / "detections.json").write_text("{}")
    (out / ".DS_Store").write_text("")  # a file manager's, beside it
    assert _cli(base, scans, labels, out) == 0
    with pytest.raises(ConfigError, match="--overwrite"):
        _cli(base, scans, labels, out, "--name", "second")
    assert _cli(base, scans, labels, out, "--name", "second", "--overwrite") == 0
    assert json.loads((out / "card.json").read_text())["name"] == "second"
    # the card says how the ECE was measured, and whether a temperature is applied
    card = json.loads((out / "card.json").read_text())
    ece = card["metrics"]["gradings"]["central_canal_stenosis"]["ece"]
    assert ece["measured"] in ("2-fold cross-fitted by patient", "no temperature applied")
    assert card["calibration"]["central_canal_stenosis"]["applied"] == (ece["measured"] != "no temperature applied")


def test_a_work_file_is_refused_before_any_scan_is_read(base: Path, dataset: tuple[Path, Path], tmp_path: Path):
    """A --work that is a file had failed with a traceback after the discs were found (user test)."""
    scans, labels = dataset
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="--work '.*afile' is an existing file"):
        _cli(base, scans, labels, tmp_path / "m", "--work", str(tmp_path / "afile"))
    assert not (tmp_path / "m").exists()


def test_a_wrong_base_is_refused_before_any_scan_is_read(dataset: tuple[Path, Path], tmp_path: Path):
    from openspine.errors import ModelError
    from openspine.models import builtin_model_dir

    scans, labels = dataset
    shutil.rmtree(scans)  # nothing to read: the base is checked first
    scans.mkdir()
    with pytest.raises(ModelError, match="is a detector model, not a grader"):
        _cli(builtin_model_dir("detector"), scans, labels, tmp_path / "m")
    with pytest.raises(ModelError, match="--base: no model folder at"):
        _cli(tmp_path / "nowhere", scans, labels, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_builtin_grading_with_other_classes_is_refused(base: Path, dataset: tuple[Path, Path], tmp_path: Path):
    scans, labels = dataset
    p = tmp_path / "p.csv"
    p.write_text(labels.read_text().replace("central_canal_stenosis", "pfirrmann"))  # classes 0/1, built-in 1..5
    with pytest.raises(ConfigError, match=r"built-in pfirrmann grading .*recode the values, or name the column"):
        _cli(base, scans, p, tmp_path / "m")
    # values that are built-in classes, only not all of them: declaring them is the fix, not recoding
    m = tmp_path / "m.csv"
    m.write_text(labels.read_text().replace("central_canal_stenosis", "marrow_change"))  # 0/1 of the built-in 0..3
    with pytest.raises(ConfigError, match=r"declare all of them: --classes marrow_change=0,1,2,3, or name the"):
        _cli(base, scans, m, tmp_path / "m")


def test_missing_scans_and_wrong_scans_folder(
    base: Path, dataset: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    scans, labels = dataset
    with pytest.raises(ConfigError, match="does not exist"):
        _cli(base, tmp_path / "nowhere", labels, tmp_path / "a")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"none of the 24 labelled scans exists .*s00.nii.gz"):
        _cli(base, empty, labels, tmp_path / "b")
    typo = tmp_path / "typo.csv"
    typo.write_text(labels.read_text().replace("s01.nii.gz", "s99.nii.gz"))
    with caplog.at_level("WARNING"):
        assert _cli(base, scans, typo, tmp_path / "c") == 0
    assert any("1 of 24 labelled scans do not exist" in r.getMessage() for r in caplog.records)
    assert not any("gave no disc" in r.getMessage() for r in caplog.records)  # the missing scan is counted once
    assert "s99.nii.gz" in json.loads((tmp_path / "c" / "card.json").read_text())["training_data"]["scans_failed"]


def test_no_validation_is_refused_unless_asked(base: Path, dataset: tuple[Path, Path], tmp_path: Path):
    scans, labels = dataset
    alltrain = tmp_path / "t.csv"
    alltrain.write_text(labels.read_text().replace(",val", ",train"))
    with pytest.raises(ConfigError, match="no 'val' row"):
        _cli(base, scans, alltrain, tmp_path / "a")
    assert _cli(base, scans, alltrain, tmp_path / "b", "--no-validation") == 0
    metrics = json.loads((tmp_path / "b" / "card.json").read_text())["metrics"]
    assert metrics["validated"] is False and metrics["gradings"] is None


def test_a_chained_finetune_knows_every_earlier_training_scan_and_its_card_keeps_the_warning(
    base: Path, dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    from openspine.finetune import read_labels
    from openspine.finetune.core import FinetuneOptions, finetune

    scans, labels = dataset
    quick = {"epochs": 2, "augment_copies": 1, "threads": 1}
    first = tmp_path / "first"
    finetune(read_labels(labels, scans), first, FinetuneOptions(base=str(base), **quick))  # type: ignore[arg-type]
    card = json.loads((first / "card.json").read_text())
    # the 18 training scans are listed (a fine-tuned card had listed none, so a fine-tune from it could not warn)
    assert len(card["training_data"]["patient_scans"]["fingerprints"]) == 18
    assert card["metrics"]["caveats"] == []
    # the sides swapped: the earlier training scans now validate a fine-tune of the fine-tuned model
    swapped = tmp_path / "swapped.csv"
    swapped.write_text(labels.read_text().replace(",train", ",x").replace(",val", ",train").replace(",x", ",val"))
    second = tmp_path / "second"
    finetune(read_labels(swapped, scans), second, FinetuneOptions(base=str(first), **quick))  # type: ignore[arg-type]
    caveats = json.loads((second / "card.json").read_text())["metrics"]["caveats"]
    # said on the console and kept in the card, which travels with the model and its optimistic figures
    assert len(caveats) == 1
    assert caveats[0].startswith("18 of 18 validation scans are scans of the base model's training patients")


def test_a_new_grading_of_text_classes_says_what_each_grade_number_means() -> None:
    from openspine.finetune.core import _new_grading_description

    # the report shows such grades by number; the names had reached no output
    text = _new_grading_description("mine.csv", ("none", "moderate", "severe"))
    assert text == "fine-tuned from mine.csv; grades 0 = none, 1 = moderate, 2 = severe"
    assert _new_grading_description("mine.csv", ("0", "1")) == "fine-tuned from mine.csv"


def test_a_new_heads_figures_count_only_discs_it_answers_on() -> None:
    from types import SimpleNamespace

    from openspine.finetune.core import _answers_on
    from openspine.levels import DiscLevel

    def disc(case: str, level: DiscLevel, labelled: bool = True) -> SimpleNamespace:
        return SimpleNamespace(case=case, level=level, labels={"mine": 1} if labelled else {})

    train = [disc("a-t2", DiscLevel.L4_L5), disc("b-t2", DiscLevel.L5_S1), disc("c-t1", DiscLevel.L3_L4, False)]
    sequences = {"a-t2": "T2", "b-t2": "T2", "c-t1": "T1", "v-t2": "T2", "v-t1": "T1", "v-x": None}
    answers = _answers_on("mine", train, sequences)  # type: ignore[arg-type]
    # T1 validation discs had been counted in the figures of a head the analysis withholds on T1
    assert answers(disc("v-t2", DiscLevel.L4_L5)) and not answers(disc("v-t1", DiscLevel.L4_L5))
    assert not answers(disc("v-t2", DiscLevel.L2_L3))  # a level that carried none of its labels
    assert answers(disc("v-x", DiscLevel.L5_S1))  # no known sequence: the image decides in the analysis


# --- what a fine-tune's validation can vouch for (user test of fine-tuning) ----------------------------------
def _flags(model: Path, scans: Path) -> list[str]:
    from openspine.grading import grade
    from openspine.io import load_scan

    view = load_scan(scans / "s20.nii.gz").to_sagittal()
    _, geoms = synthetic_spine([300.0] * 5)
    return [f for f in grade(view, fake_detection(view, geoms), grader=model).flags if "not_validated" in f]


def _finetune(base: Path, labels: Path, scans: Path, out: Path) -> object:
    from openspine.finetune import read_labels
    from openspine.finetune.core import FinetuneOptions, finetune

    return finetune(read_labels(labels, scans), out, FinetuneOptions(base=str(base), epochs=1, augment_copies=0))


def test_one_class_validation_has_no_kappa_and_is_flagged(base: Path, dataset: tuple[Path, Path], tmp_path: Path):
    scans, labels = dataset
    rows = labels.read_text().splitlines()
    one = tmp_path / "one.csv"
    one.write_text("\n".join([rows[0]] + [r.replace(",1,val", ",0,val") for r in rows[1:]]) + "\n")
    res = _finetune(base, one, scans, tmp_path / "m")
    m = json.loads((tmp_path / "m" / "card.json").read_text())["metrics"]
    ccs = m["gradings"]["central_canal_stenosis"]
    # it had read kappa 0.00 [0.00, 0.00] with no caveat
    assert ccs["kappa"]["value"] is None and ccs["kappa"]["ci95"] == [None, None]
    assert ccs["support"] == [30, 0]
    assert any("hold class 0 only" in c and "kappa is undefined" in c for c in m["caveats"])
    assert m["caveats"] == list(res.caveats)  # type: ignore[attr-defined]
    (flag,) = _flags(tmp_path / "m", scans)
    assert "central_canal_stenosis of the grader 'grader-finetuned' was validated on discs of one class only" in flag
    assert "pfirrmann" not in flag  # a kept head of a measured base (the tiny base's card names no evaluation)


def test_validation_on_one_patient_is_a_caveat_and_a_flag(base: Path, dataset: tuple[Path, Path], tmp_path: Path):
    scans, labels = dataset
    rows = labels.read_text().splitlines()
    thin = tmp_path / "thin.csv"
    thin.write_text("\n".join([rows[0]] + [r for r in rows[1:] if r.endswith("train") or r.startswith("s18")]) + "\n")
    _finetune(base, thin, scans, tmp_path / "m")
    m = json.loads((tmp_path / "m" / "card.json").read_text())["metrics"]
    assert any("validated on only 5 discs of 1 patient" in c and "fewer than 5 patients" in c for c in m["caveats"])
    (flag,) = _flags(tmp_path / "m", scans)
    assert "validated on only 5 discs of 1 patient" in flag


def test_a_class_with_fewer_than_two_training_rows_is_said_with_its_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("torch")
    from openspine.finetune import read_labels
    from openspine.finetune.core import rare_class_caveats, split_scans

    rows = ["scan,level,split,modic_any"] + [f"s{i},L4-L5,train,{i % 2}" for i in range(6)]
    for stray in ("2", "-1"):  # a single stray value in a val row had made a third, never-trained class in silence
        p = tmp_path / "l.csv"
        p.write_text("\n".join([*rows, "v1,L4-L5,val,0", f"v2,L4-L5,val,{stray}"]) + "\n")
        table = read_labels(p)
        split = split_scans(table, 0.2, 0)
        every = ",".join(table.classes["modic_any"])
        with caplog.at_level("WARNING", logger="openspine"):
            (said,) = rare_class_caveats(table, split)
        assert said.startswith(f"l.csv:9: modic_any = '{stray}' is in no training row") and f"={every})" in said
        assert said in caplog.text  # said where people look, and kept among the card's caveats by the caller
        # a head that starts from the base model's knows its classes: a built-in grading's class in val rows only
        assert rare_class_caveats(table, split, {"modic_any": tuple(table.classes["modic_any"])}) == []
    # a single training row of a class (a typo, or a rare real grade: SPIDER's Modic 1 has one patient) too
    one = tmp_path / "one.csv"
    one.write_text("\n".join([*rows[:-1], "s5,L4-L5,train,2", "v1,L4-L5,val,0"]) + "\n")
    single = read_labels(one)
    (said,) = rare_class_caveats(single, split_scans(single, 0.2, 0))
    assert said.startswith("one.csv:7: modic_any = '2' is in only 1 training row")
    with pytest.raises(ConfigError, match="declared classes"):  # declared: refused when read, as before
        read_labels(p, None, {"modic_any": ("0", "1")})
    declared = read_labels(p, None, {"modic_any": ("-1", "0", "1", "2")})
    assert rare_class_caveats(declared, split_scans(declared, 0.2, 0)) == []  # the user's own list


def test_a_temperature_on_its_search_bound_is_not_applied() -> None:
    pytest.importorskip("torch")
    from openspine.finetune.core import _calibration_if_it_helps, _cross_fitted_ece
    from openspine.grading.heads import HeadSpec

    head = HeadSpec("modic_any", ("0", "1"), temperature=19.99922)
    report = {"temperature": 19.99922, "ece_before": 0.3, "ece_after_2fold_cv": 0.09}
    assert _calibration_if_it_helps(head, report).temperature == 1.0
    assert report["applied"] is False and "search bound" in report["not_applied_because"]
    m = {"ece": {"uncalibrated": 0.3, "calibrated": 0.3}}
    _cross_fitted_ece(m, report)
    assert m["ece"]["calibration_applied"] is False and "did not settle" in m["ece"]["not_applied_because"]
    settled = {"temperature": 1.7, "ece_before": 0.3, "ece_after_2fold_cv": 0.09}
    assert _calibration_if_it_helps(HeadSpec("x", ("0", "1"), temperature=1.7), settled).temperature == 1.7
    # validation discs of one class: a temperature that settled inside its bounds is still no calibration (user
    # test: 11.57 applied)
    one = {"temperature": 11.57, "ece_before": 0.3, "ece_after_2fold_cv": 0.05}
    unsettled = HeadSpec("x", ("0", "1"), temperature=11.57)
    assert _calibration_if_it_helps(unsettled, one, one_class=True).temperature == 1.0
    assert one["applied"] is False and "one class" in one["not_applied_because"]


def test_the_basis_counts_every_training_scan_and_says_where_it_was_not_validated() -> None:
    pytest.importorskip("torch")
    from openspine.finetune.core import derive_scope
    from openspine.levels import DiscLevel

    head = SimpleNamespace(name="mine")
    train = [SimpleNamespace(case=c, level=DiscLevel.L4_L5, labels={"mine": "1"}, spacing=(0.5, 0.5, 4.0))
             for c in ("a", "b", "c", "d")]  # fmt: skip
    seqs: dict[str, str | None] = {"a": "T2", "b": "T1", "c": "T1", "d": None}
    scope = derive_scope({}, [], [head], train, seqs, "l.csv", {"mine": ({"T2"}, {"L4-L5"})})  # type: ignore[arg-type]
    # the T1 scans had been left out of the count (39 T2 + 39 T1 + 2 read "80 scans (39 T2, 2 sequence unknown)")
    assert scope["heads"]["mine"]["basis"] == (
        "fine-tuned on 4 scans (2 T1, 1 T2, 1 sequence unknown) of l.csv; not validated on T1, where it does not answer"
    )
    unvalidated = derive_scope({}, [], [head], train, seqs, "l.csv", None)  # type: ignore[arg-type]
    assert unvalidated["heads"]["mine"]["basis"].endswith("; not validated (--no-validation)")


def test_a_heads_pixel_bound_comes_from_the_scans_of_the_sequences_it_answers_on() -> None:
    """Coarser T1 slices beside T2 ones, validated on T2 alone: the head answers on T2 only, and its pixel bound is
    the T2 scans' (user test: 1.328 mm from the T1 slices, where the T2-only model had 1.172 mm)."""
    pytest.importorskip("torch")
    from openspine.finetune.core import PIXEL_MARGIN, derive_scope
    from openspine.levels import DiscLevel

    head = SimpleNamespace(name="mine")
    train = [SimpleNamespace(case=c, level=DiscLevel.L4_L5, labels={"mine": "1"}, spacing=(sp, sp, 4.0))
             for c, sp in (("a", 0.5), ("b", 0.9), ("c", 1.0))]  # fmt: skip
    seqs: dict[str, str | None] = {"a": "T2", "b": "T1", "c": None}
    scope = derive_scope({}, [], [head], train, seqs, "l.csv", {"mine": ({"T2"}, {"L4-L5"})})  # type: ignore[arg-type]
    assert scope["heads"]["mine"]["sequences"] == ["T2"]
    assert scope["heads"]["mine"]["max_pixel_spacing_mm"] == round(0.5 * PIXEL_MARGIN, 3)
    both = derive_scope({}, [], [head], train, seqs, "l.csv", {"mine": ({"T1", "T2"}, {"L4-L5"})})  # type: ignore[arg-type]
    assert both["heads"]["mine"]["max_pixel_spacing_mm"] == round(0.9 * PIXEL_MARGIN, 3)
    unknown = derive_scope({}, [], [head], train, {"a": None, "b": None, "c": None}, "l.csv", None)  # type: ignore[arg-type]
    assert unknown["heads"]["mine"]["max_pixel_spacing_mm"] == round(1.0 * PIXEL_MARGIN, 3)  # no sequence: every scan


def test_an_unevaluated_base_is_flagged_and_its_kept_heads_in_a_fine_tune(tmp_path: Path) -> None:
    from openspine.grading.grade import unvalidated_heads

    # a card of `openspine train grader --no-evaluate` written before cards said so: empty metrics
    old = {"name": "g", "metrics": {}, "training": {"command": "openspine train grader --data d --no-evaluate"}}
    every, _ = unvalidated_heads(old)
    assert every is not None and "never evaluated" in every
    assert unvalidated_heads({"name": "tiny", "metrics": {}}) == (None, {})  # nothing says it was not evaluated
    # a fine-tune of it carries the verdict for its kept heads; its own head was measured on enough discs
    tuned = {
        "name": "ft",
        "finetuning": {"trained_heads": ["mine"], "kept_base_heads": ["pfirrmann"]},
        "metrics": {
            "gradings": {"mine": {"n": 40, "patients": 8, "support": [20, 20]}},
            "kept_heads_not_validated": {"pfirrmann": every},
        },
    }
    assert unvalidated_heads(tuned) == (None, {"pfirrmann": f"{every} (in its base model)"})
    older = {"name": "ft", "metrics": {"gradings": {"mine": {"n": 3}}}}  # no patients, no support: not judged
    assert unvalidated_heads(older) == (None, {})


def test_a_missed_level_outside_the_detectors_is_said_so() -> None:
    pytest.importorskip("torch")
    from openspine.errors import ModelError
    from openspine.finetune.core import _missed_outside_detector

    try:
        outside, levels = _missed_outside_detector(["a C4-C5", "b T3-T4", "c L4-L5"])
    except ModelError:
        pytest.skip("no built-in detector")
    if levels is None:
        pytest.skip("no built-in detector card")
    assert outside == 2 and levels.endswith("S1")
