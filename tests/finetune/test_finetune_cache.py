"""The detection cache of fine-tuning: a scan changed at the same path is detected again (no torch needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openspine.training.datasets import discs as data


def test_a_scan_changed_at_the_same_path_is_detected_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []
    monkeypatch.setattr(data, "detect_discs", lambda view: (calls.append(view) or {}, []))
    scan = tmp_path / "a.nii.gz"
    scan.write_bytes(b"first")
    cache_file = tmp_path / "work" / "detections.json"

    def run() -> None:
        cache = data.DetectionCache.open(cache_file, "det@1")
        data.locate_discs([("a", scan)], cache, lambda p: p.read_bytes())

    run()
    run()
    assert calls == [b"first"]  # unchanged: reused
    scan.write_bytes(b"second, longer")
    run()
    assert calls == [b"first", b"second, longer"]
    st = scan.stat()
    scan.write_bytes(b"third, longer!")  # same size: the modification time tells
    os.utime(scan, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    run()
    assert calls[-1] == b"third, longer!"
