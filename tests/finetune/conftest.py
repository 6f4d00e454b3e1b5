"""Make the shared test helpers in tests/ importable (``from dicom_fixtures import ...``)."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
_GRADING = str(Path(__file__).resolve().parents[1] / "grading")
if _GRADING not in sys.path:
    sys.path.insert(0, _GRADING)
