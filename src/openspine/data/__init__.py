"""Files shipped with the package: the embedded example scan (:mod:`.example`)."""

from __future__ import annotations

from .example import DEMO_ATTRIBUTION, DEMO_SCAN, demo_scan_path

__all__ = ["DEMO_ATTRIBUTION", "DEMO_SCAN", "demo_scan_path"]
