"""The detector refuses an image whose voxel size makes it larger than any spine image (a header in the wrong unit),
before it builds a model grid that would not fit in memory."""

from __future__ import annotations

import numpy as np
import pytest

from openspine.detection import detect
from openspine.errors import UnsupportedScanError
from openspine.scan import Scan


def test_voxels_in_the_wrong_unit_are_refused_before_the_network_runs() -> None:
    arr = np.random.default_rng(0).random((1, 48, 64)).astype(np.float32)
    affine = np.diag([1.0, 60.0, 60.0, 1.0])  # one sagittal slice of 60 mm pixels: 2880 × 3840 mm
    with pytest.raises(UnsupportedScanError, match=r"larger than any spine image .*check the voxel size"):
        detect(Scan(arr, affine).to_sagittal())
