"""Why a grading is unavailable comes from the grader's card, not from its name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openspine.grading.heads import unavailable_note
from openspine.models import BUILTIN_DIR, ModelCard

SPIDER_TRAINING = {"dataset": "SPIDER (a citation), slices", "labels": {"pfirrmann": "Pfirrman grade"}}


def _card(folder: Path, name: str, training_data: Any) -> ModelCard:
    return ModelCard(folder, {"name": name, "training_data": training_data})


def test_builtin_card_names_its_training_data(tmp_path: Path) -> None:
    card = _card(BUILTIN_DIR / "grader", "grader", SPIDER_TRAINING)
    assert card.builtin
    assert unavailable_note("central_canal_stenosis", card) == (
        "not available from the built-in grader: its training data (SPIDER) has no canal stenosis labels; "
        "add it with 'openspine finetune' (e.g. from the RSNA 2024 lumbar data: --rsna DIR)"
    )
    mine = _card(tmp_path / "grader", "grader", SPIDER_TRAINING)
    assert not mine.builtin
    assert unavailable_note("foraminal_stenosis_left", mine).startswith(
        "not available from grader model 'grader': its training data (SPIDER) has no foraminal stenosis labels"
    )


def test_card_without_a_dataset_gets_the_plain_note(tmp_path: Path) -> None:
    card = _card(tmp_path / "mine", "mine", {"labels": "labels.csv"})
    assert unavailable_note("central_canal_stenosis", card) == (
        "not available from grader model 'mine': it has no 'central_canal_stenosis' output; "
        "add it with 'openspine finetune'"
    )
    builtin = _card(BUILTIN_DIR / "grader", "grader", SPIDER_TRAINING)
    assert "it has no 'bulging' output" in unavailable_note("bulging", builtin)  # not a label the notes know
