"""Make the shared test helpers in tests/ importable (``from dicom_fixtures import ...``); the real two-series DICOM
study fixture ``t1_t2_study`` lives in tests/conftest.py (the study tests use it too)."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
