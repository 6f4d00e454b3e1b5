"""The embedded example scan and its attribution."""

from __future__ import annotations

from pathlib import Path

DEMO_SCAN = Path(__file__).parent / "demo" / "spider-21-t2.nii.gz"
DEMO_ATTRIBUTION = Path(__file__).parent / "demo" / "ATTRIBUTION.md"


def demo_scan_path() -> Path:
    """Path of the embedded example scan (a real lumbar T2 slice, CC BY 4.0; see ATTRIBUTION.md)."""
    return DEMO_SCAN
