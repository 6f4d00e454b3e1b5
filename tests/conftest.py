"""Shared test fixtures: where the shared real data is, and small helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

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
