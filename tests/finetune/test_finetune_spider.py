"""Fine-tuning on a tiny real subset: a new grading, `disc_bulge` (SPIDER's bulging labels under a name the
built-in model does not have), learns on the built-in backbone from SPIDER slices.

Training discs come from SPIDER *train* patients only; the fine-tuning validation split (where calibration and the
reported metric come from) are SPIDER *val* patients. The saved model then runs through ``openspine.analyze``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.train


def test_new_head_learns_and_the_model_runs_in_analyze(shared_data: Path, tmp_path: Path):
    pytest.importorskip("torch")
    import openspine
    from openspine.errors import ModelError
    from openspine.finetune import read_labels
    from openspine.finetune.core import FinetuneOptions, finetune
    from openspine.levels import LUMBAR_DISCS, Grading
    from openspine.training.datasets.spider import read_spider

    try:
        from openspine.grading.model import load_grader
        from openspine.models import builtin_model_dir

        builtin_model_dir("detector")
        load_grader(None)
    except ModelError as exc:
        pytest.skip(f"built-in models not available: {exc}")
    cases = read_spider(shared_data, ("train",))[:24] + read_spider(shared_data, ("val",))[:12]
    rows = ["scan,level,split,disc_bulge"]
    for c in cases:
        for level, lab in c.labels.items():
            if level in LUMBAR_DISCS:
                rows.append(f"{c.patient}/image.nii.gz,{level.value},{c.split},{lab['bulging']}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    out = tmp_path / "bulging-model"
    table = read_labels(labels, shared_data / "spider")
    opts = FinetuneOptions(fresh_heads=True, epochs=40, augment_copies=3, threads=2, name="bulging-test")
    res = finetune(table, out, opts)
    assert res.frozen_check.startswith("passed")
    assert res.n_train >= 130 and res.n_val >= 65
    ba = res.metrics["disc_bulge"]["balanced_accuracy"]["value"]
    assert ba >= 0.62, f"the new head did not learn: balanced accuracy {ba} on {res.n_val} val discs (chance 0.5)"
    card = json.loads((out / "card.json").read_text())
    assert "disc_bulge" in [h["name"] for h in card["outputs"]["heads"]]
    assert "disc_bulge" in card["finetuning"]["reinitialised_heads"]
    # the new model folder works in the full pipeline, and its other gradings are the built-in model's
    scan = shared_data / "spider" / cases[-1].patient / "image.nii.gz"
    new = openspine.analyze(scan, grader=str(out))
    old = openspine.analyze(scan)
    assert any(m.name == "bulging-test" for m in new.models)
    from openspine.schema import validate_result

    validate_result(new.to_dict())
    assert any(r["grading"] == "disc_bulge" for r in new.disc_rows())
    for d_new, d_old in zip(new.discs, old.discs):
        if d_new.graded:  # not a disc left ungraded, with its reason (between two bodies scored below 0.25)
            assert d_new.grades["disc_bulge"].available
            assert d_new.grades[Grading.PFIRRMANN].probabilities == pytest.approx(
                d_old.grades[Grading.PFIRRMANN].probabilities
            )
