"""The model registry's sessions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_model_session_writes_nothing_to_home_and_warns_nothing(tmp_path: Path) -> None:
    # onnxruntime's telemetry persists a device id under ~/.cache/Microsoft on import, and warns where it cannot
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"} | {"HOME": str(home)}
    code = "from openspine.models import load_model; load_model('detector', threads=1); print('loaded')"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "loaded"
    assert list(home.rglob("*")) == []
    assert "telemetry" not in run.stderr


def test_every_shipped_model_names_a_release_version_and_its_weights_hash() -> None:
    import hashlib
    import json

    from openspine.models import BUILTIN_DIR

    folders = sorted(p for p in BUILTIN_DIR.iterdir() if (p / "card.json").is_file())
    assert {p.name for p in folders} >= {"detector", "grader", "recognizer", "orientation", "midline"}
    for folder in folders:
        card = json.loads((folder / "card.json").read_text())
        # '+local' marks a model trained here and not shipped; the shipped midline model had carried it
        assert "+local" not in card["version"], folder.name
        assert hashlib.sha256((folder / card["file"]).read_bytes()).hexdigest() == card["sha256"], folder.name


def test_weights_that_do_not_match_their_card_say_what_to_do(tmp_path: Path) -> None:
    import shutil

    import pytest

    from openspine.errors import ModelError
    from openspine.models.registry import BUILTIN_DIR, read_card

    mine = tmp_path / "my-grader"
    shutil.copytree(BUILTIN_DIR / "orientation", mine)
    (mine / "model.onnx").write_bytes((mine / "model.onnx").read_bytes() + b"\0")
    # a user's own folder: "reinstall openspine" had been the advice
    with pytest.raises(ModelError, match="replaced: copy the whole model folder"):
        read_card(mine)


def test_a_model_is_recorded_with_the_hash_of_its_card_as_read() -> None:
    # a card edited by hand (a head's temperature, its scope) changes results under the same weights (user test)
    import hashlib

    from openspine.models import BUILTIN_DIR
    from openspine.models.registry import read_card
    from openspine.results import ModelInfo

    info = read_card(BUILTIN_DIR / "grader").info()
    assert info.card_sha256 == hashlib.sha256((BUILTIN_DIR / "grader" / "card.json").read_bytes()).hexdigest()
    assert ModelInfo.from_dict(info.to_dict()) == info and info.to_dict()["card_sha256"] == info.card_sha256
    older = {"name": "g", "version": "1", "sha256": "0" * 64}  # a result.json of schema 1.4 and older
    assert ModelInfo.from_dict(older).card_sha256 is None and "card_sha256" not in ModelInfo.from_dict(older).to_dict()
