"""Make the shared test helpers in tests/ importable (``from dicom_fixtures import ...``), and the real two-series
DICOM study fixture."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

if TYPE_CHECKING:
    from dicom_fixtures import T1T2Study


@pytest.fixture(scope="session")
def t1_t2_study(tmp_path_factory: pytest.TempPathFactory) -> T1T2Study:
    """A real DICOM study of two series, sagittal T2 (#3) and sagittal T1 (#2) of one patient, one folder each
    (why these volumes and which is which: :func:`dicom_fixtures.write_t1_t2_study`). Skips without the shared
    data; shared by the session, so read it only (copy it to change it)."""
    from dicom_fixtures import write_t1_t2_study

    return write_t1_t2_study(tmp_path_factory.mktemp("t1_t2_study"))
