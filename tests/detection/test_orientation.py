"""The ways an image can be stored the wrong way round, and when a labelling vouches for the orientation."""

from __future__ import annotations

import numpy as np

from openspine.detection.orientation import TURNS, sure_labelling, turn_to_look
from openspine.detection.types import Detection
from openspine.levels import Level
from openspine.results import Vertebra

LUMBAR = [Level.L1, Level.L2, Level.L3, Level.L4, Level.L5, Level.S1]


def _detection(labels: list[Level | None], flags: tuple[str, ...] = ()) -> Detection:
    origin = (0.0, 0.0, 0.0)
    return Detection(tuple(Vertebra(lv, 0.9, origin, origin) for lv in labels), (), flags, ())


def test_the_seven_turns_are_the_wrong_ways_a_picture_can_lie_and_each_is_undone_by_one_of_them() -> None:
    names = [n for n, _ in TURNS]
    assert len(set(names)) == len(names) == 7
    probe = np.arange(12).reshape(3, 4, 1)
    looks = set()
    for _, undo in TURNS:
        stored = turn_to_look(undo)(probe)
        assert np.array_equal(undo(stored), probe) and not np.array_equal(stored, probe)
        looks.add(stored.tobytes() + bytes(stored.shape))
    assert len(looks) == 7  # seven distinct pictures: with the right one, all eight of the square's symmetries
    _, up = TURNS[0]
    assert np.array_equal(turn_to_look(up)(probe), probe[::-1])  # upside down is its own undoing


def test_a_sure_labelling_needs_the_sacrum_enough_bodies_and_no_labelling_flag() -> None:
    assert sure_labelling(_detection(LUMBAR))
    assert not sure_labelling(_detection(LUMBAR[:-1]))  # no S1
    assert not sure_labelling(_detection([Level.L5, Level.S1]))  # too few
    assert not sure_labelling(_detection(LUMBAR, ("labelling_ambiguous: no sacrum visible",)))
    assert sure_labelling(_detection(LUMBAR, ("low_confidence: …",)))  # not a labelling flag
