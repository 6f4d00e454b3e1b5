"""Matching the structures of two series by level (``openspine.study.match_series``): synthetic detections with
known answers, and a real SPIDER T2/T1 pair of one patient."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest

from openspine.detection.types import Detection
from openspine.errors import ConfigError
from openspine.levels import DiscLevel, Level
from openspine.results import Disc, Vertebra
from openspine.scan import SagittalView, Scan
from openspine.study import MISMATCH_FLAG, SeriesMatch, match_series

# a SPIDER-like slice: rows superior→inferior, columns anterior→posterior, 1 mm pixels
AFF = np.array([[0, 0, 4.0, 0], [0, -1.0, 0, 100.0], [-1.0, 0, 0, 200.0], [0, 0, 0, 1]])
LUMBAR = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")


def _view() -> SagittalView:
    return Scan(np.zeros((400, 200, 1), np.uint8), AFF).to_sagittal()


def _detection(labels: Sequence[str | None], heights: Sequence[float], top: float = 150.0, y: float = 0.0) -> Detection:
    """Bodies top to bottom with the given labels; ``heights[i]`` is the distance (mm) from body i to body i + 1;
    discs half-way between neighbours (level from the two labels when both are known)."""
    z = [top]
    for h in heights[: len(labels) - 1]:
        z.append(z[-1] - h)
    verts = tuple(Vertebra(Level(lb) if lb else None, 0.9, (0.0, 0.0, 0.0), (0.0, y, zi)) for lb, zi in zip(labels, z))
    discs = []
    for (a, za), (b, zb) in zip(zip(labels, z), zip(labels[1:], z[1:])):
        level = None
        if a and b:
            try:
                level = DiscLevel.between(Level(a), Level(b))
            except ConfigError:  # not neighbours (a body missed in between): no disc level
                level = None
        discs.append(Disc(level, (0.0, 0.0, 0.0), (0.0, y, (za + zb) / 2)))
    return Detection(verts, tuple(discs), (), ())


def _mismatch(m: SeriesMatch) -> list[str]:
    return [f for f in m.flags if f.startswith(MISMATCH_FLAG)]


EVEN = [35.0] * 8
PATTERN = [30.0, 30.0, 50.0, 50.0, 30.0, 30.0, 40.0, 40.0]  # a distinctive (unrealistic) spacing pattern


def test_agreeing_series_pair_every_shared_level() -> None:
    t2 = _detection(LUMBAR, EVEN)
    t1 = _detection(("T11", *LUMBAR), [34.0] * 8, top=80.0, y=25.0)  # another frame: positions not comparable
    m = match_series(t2, _view(), t1, _view(), names=("T2", "T1"))
    assert m.agree and not m.flags and not m.shared_frame
    assert [p.level.value for p in m.vertebrae] == list(LUMBAR)
    assert [p.level for p in m.discs] == [DiscLevel.between(Level(a), Level(b)) for a, b in itertools.pairwise(LUMBAR)]
    assert all(p.distance_mm is None for p in m.vertebrae)
    pair = m.vertebra(Level.L3)
    assert pair is not None and pair.first is t2.vertebrae[3] and pair.second is t1.vertebrae[4]
    assert m.disc(DiscLevel.L5_S1) is not None and m.disc(DiscLevel.T11_T12) is None
    assert m.first_levels == tuple(Level(x) for x in LUMBAR)


def test_shared_frame_pairs_within_tolerance() -> None:
    t2 = _detection(LUMBAR, EVEN)
    t1 = _detection(LUMBAR, EVEN, top=153.0, y=2.0)  # the same anatomy, a few mm off
    m = match_series(t2, _view(), t1, _view(), shared_frame=True)
    assert m.agree and m.shared_frame
    assert all(p.distance_mm == pytest.approx(np.hypot(3.0, 2.0)) for p in m.vertebrae)


def test_levels_shifted_by_one_in_a_shared_frame_are_flagged() -> None:
    t2 = _detection(LUMBAR, EVEN)
    shifted = ("T11", "T12", "L1", "L2", "L3", "L4", "L5")  # the same bodies, every label one level too high
    t1 = _detection(shifted, EVEN)
    m = match_series(t2, _view(), t1, _view(), shared_frame=True, names=("T2", "T1"))
    assert not m.agree and m.vertebrae == () and m.discs == ()
    apart = [f for f in _mismatch(m) if "mm apart" in f]
    assert len(apart) == 1, "one flag names every structure too far apart"
    assert "structures (vertebra T12 … disc L4-L5) lie 35.0–35.0 mm apart in the T2 and T1 series" in apart[0]
    # without a shared frame an even spacing cannot tell the shift: the labels agree, the match is by level
    assert match_series(t2, _view(), t1, _view()).agree


def test_levels_shifted_by_one_show_in_the_disc_spacing_pattern() -> None:
    t2 = _detection(LUMBAR, PATTERN)
    t1 = _detection(("T11", "T12", "L1", "L2", "L3", "L4", "L5"), PATTERN, top=60.0)  # same spacings, labels up
    m = match_series(t2, _view(), t1, _view(), names=("T2", "T1"))
    assert not m.agree and m.vertebrae == ()
    (flag,) = _mismatch(m)
    assert "disc spacings" in flag and "T1 labels read one level higher" in flag and "level shift" in flag
    assert match_series(t2, _view(), _detection(LUMBAR, PATTERN, top=10.0), _view()).agree


def test_a_wrong_pixel_size_is_noted_not_taken_for_a_level_mismatch() -> None:
    t2 = _detection(LUMBAR, PATTERN)
    t1 = _detection(LUMBAR, [1.25 * s for s in PATTERN], top=10.0)  # every distance 1.25x: one pixel size is off
    m = match_series(t2, _view(), t1, _view(), names=("T2", "T1"))
    assert m.agree and not _mismatch(m)
    (note,) = [f for f in m.flags if f.startswith("series_scale")]
    assert "1.25×" in note and "pixel sizes may be wrong" in note
    # a level shift still shows through the scale
    up = _detection(("T11", "T12", "L1", "L2", "L3", "L4", "L5"), [1.25 * s for s in PATTERN], top=60.0)
    assert not match_series(t2, _view(), up, _view(), names=("T2", "T1")).agree


def test_a_body_missing_from_one_series_breaks_the_run() -> None:
    t2 = _detection(LUMBAR, EVEN)
    no_l3 = ("T12", "L1", "L2", "L4", "L5", "S1")  # L3 not found (or not counted) in the T1 series
    t1 = _detection(no_l3, [35.0, 35.0, 70.0, 35.0, 35.0])
    m = match_series(t2, _view(), t1, _view(), names=("T2", "T1"))
    assert not m.agree
    assert any("vertebra L3 found in the T2 series only" in f for f in _mismatch(m))


def test_unlabelled_bodies_are_not_matched() -> None:
    t2 = _detection(LUMBAR, EVEN)
    t1 = _detection((None, *LUMBAR), EVEN, top=185.0)  # an unlabelled body above T12
    m = match_series(t2, _view(), t1, _view())
    assert m.agree and len(m.vertebrae) == 7 and all(p.second.label is not None for p in m.vertebrae)
    assert m.second_levels == tuple(Level(x) for x in LUMBAR)


def test_no_common_level_repeated_level_and_bad_tolerance() -> None:
    upper = _detection(("T7", "T8", "T9"), EVEN)
    m = match_series(_detection(LUMBAR, EVEN), _view(), upper, _view())
    assert not m.agree and any("no vertebra level in common" in f for f in m.flags)
    twice = _detection(("L1", "L2", "L2", "L3"), EVEN)
    m = match_series(_detection(LUMBAR, EVEN), _view(), twice, _view(), names=("T2", "T1"))
    assert any("L2 appears more than once in the T1 series" in f for f in _mismatch(m))
    empty = Detection((), (), ("no vertebral body detected",), ())
    m = match_series(_detection(LUMBAR, EVEN), _view(), empty, _view())
    assert not m.agree and _mismatch(m)
    with pytest.raises(ConfigError):
        match_series(upper, _view(), upper, _view(), tolerance_mm=0.0)


def _real_pair(data: object, patient: str) -> tuple[Detection, SagittalView, Detection, SagittalView]:
    from pathlib import Path

    import openspine
    from openspine.detection import detect

    folder = Path(str(data)) / "spider" / patient
    v2 = openspine.load_scan(folder / "image.nii.gz").to_sagittal()
    v1 = openspine.load_scan(folder / "t1.nii.gz").to_sagittal()
    return detect(v2), v2, detect(v1), v1


def _without(det: Detection, gone: set[Level]) -> Detection:
    """``det`` as if the detector had missed the bodies ``gone``: no disc touching them (none across the gap)."""
    import dataclasses

    assert gone <= {v.label for v in det.vertebrae}, "the detection lacks a body to take out"
    keep_v = [i for i, v in enumerate(det.vertebrae) if v.label not in gone]
    keep_d = [
        i
        for i, d in enumerate(det.discs)
        if d.level is not None and not {d.level.upper_vertebra, d.level.lower_vertebra} & gone
    ]
    return dataclasses.replace(
        det,
        vertebrae=tuple(det.vertebrae[i] for i in keep_v),
        vertebra_geometry=tuple(det.vertebra_geometry[i] for i in keep_v),
        discs=tuple(det.discs[i] for i in keep_d),
        disc_geometry=tuple(det.disc_geometry[i] for i in keep_d),
    )


def test_real_spider_t2_t1_pair_matches_by_level(shared_data) -> None:
    if not (shared_data / "spider" / "33" / "t1.nii.gz").is_file():
        pytest.skip("the shared data has no SPIDER T1 slices")
    d2, v2, d1, v1 = _real_pair(shared_data, "33")  # val patient
    m = match_series(d2, v2, d1, v1, names=("T2", "T1"))
    assert m.agree, m.flags
    lumbar = {DiscLevel(x) for x in ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")}
    assert lumbar <= {p.level for p in m.discs}
    for p in m.discs:  # each pair: the same level, one disc of each series
        assert p.first in d2.discs and p.second in d1.discs and p.first.level == p.second.level == p.level
    # val patient 181: the pixel sizes of its T2 and T1 slices disagree (the T1's distances are 1.6x the T2's) but
    # the pattern of disc spacings agrees: matched, with a scale note
    d2, v2, d1, v1 = _real_pair(shared_data, "181")
    m = match_series(d2, v2, d1, v1, names=("T2", "T1"))
    assert m.agree and any(f.startswith("series_scale") for f in m.flags)
    # val patient 162 with T11 and T12 taken out of its T2 detection (detector 1.1 missed them there, the T1 one had
    # them): nothing is paired
    d2, v2, d1, v1 = _real_pair(shared_data, "162")
    d2 = _without(d2, {Level.T11, Level.T12})
    m = match_series(d2, v2, d1, v1, names=("T2", "T1"))
    assert not m.agree and m.discs == () and any("found in the T1 series only" in f for f in _mismatch(m))
