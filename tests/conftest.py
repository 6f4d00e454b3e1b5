"""Shared test fixtures: where the shared real data is, and small helpers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from dicom_fixtures import T1T2Study

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_data_or_skip() -> Path:
    if not (SHARED_DATA / "index.csv").is_file():
        pytest.skip(f"real test data not found at {SHARED_DATA} (the shared data folder beside the repository)")
    return SHARED_DATA


@pytest.fixture
def shared_data() -> Path:
    """The shared real data set (skips the test with a reason where it is absent)."""
    return shared_data_or_skip()


@pytest.fixture(scope="session")
def t1_t2_study(tmp_path_factory: pytest.TempPathFactory) -> T1T2Study:
    """A real DICOM study of two series, sagittal T2 (#3) and sagittal T1 (#2) of one patient, one folder each
    (why these volumes and which is which: :func:`dicom_fixtures.write_t1_t2_study`). Skips without the shared
    data; shared by the session, so read it only (copy it to change it)."""
    tests = str(Path(__file__).resolve().parent)
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from dicom_fixtures import write_t1_t2_study

    return write_t1_t2_study(tmp_path_factory.mktemp("t1_t2_study"))


@pytest.fixture(scope="session")
def paired_grader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained two-channel (T2, T1) grader folder (:func:`model_fixtures.tiny_paired_grader`); skips
    without torch. The installation ships no paired grader (docs/grading.md), so tests of the two-series grading
    path bring their own."""
    pytest.importorskip("torch", reason="building a test grader needs torch: pip install -e '.[train]'")
    tests = str(Path(__file__).resolve().parent)
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from model_fixtures import tiny_paired_grader

    return tiny_paired_grader(tmp_path_factory.mktemp("paired_grader") / "model")


@pytest.fixture(autouse=True)
def _restore_openspine_logger():
    """The command line configures the 'openspine' logger (level, handler, no propagation); give every test the
    logger as it found it, so that a test's caplog sees the records whatever ran before it."""
    import logging

    logger = logging.getLogger("openspine")
    saved = (logger.level, list(logger.handlers), logger.propagate)
    yield
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]
