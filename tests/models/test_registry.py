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
