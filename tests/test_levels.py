"""Level, disc-level and grading vocabularies."""

from __future__ import annotations

import pytest

from openspine.errors import ConfigError
from openspine.levels import LUMBAR_DISCS, DiscLevel, Grading, Level


def test_levels_accept_strings_in_any_case() -> None:
    assert Level.parse("l4") is Level.L4
    assert DiscLevel.parse("l4/l5") is DiscLevel.L4_L5
    assert Grading.parse("Pfirrmann") is Grading.PFIRRMANN


def test_disc_levels_in_the_clinical_shorthand() -> None:
    # 'L4-5' had been refused without a suggestion (a labels file written as reports write it)
    assert DiscLevel.parse("L4-5") is DiscLevel.L4_L5 and DiscLevel.parse("t11-12") is DiscLevel.T11_T12
    assert DiscLevel.parse("C5/6") is DiscLevel.C5_C6
    with pytest.raises(ConfigError, match="unknown disc level 'L5-1'"):  # the shorthand stays in one region
        DiscLevel.parse("L5-1")


def test_unknown_names_suggest_the_closest() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'pfirrmann'"):
        Grading.parse("pfirman")
    with pytest.raises(ConfigError, match="unknown vertebral level 'X9'"):
        Level.parse("X9")


def test_a_level_of_another_region_is_no_typo() -> None:
    with pytest.raises(ConfigError, match=r"unknown disc level 'L7-L8'. Disc levels run C2-C3 … ") as info:
        DiscLevel.parse("L7-L8")
    assert "T7-T8" not in str(info.value)  # the closest string is of another region: no suggestion
    with pytest.raises(ConfigError, match="Did you mean 'L4-L5'"):
        DiscLevel.parse("L4L5")
    # as near one level as the next: both are named (naming one had misled; user test)
    with pytest.raises(ConfigError, match="Did you mean 'L4-L5' or 'L5-L6'"):
        DiscLevel.parse("L4-L6")


def test_label_values_follow_verse() -> None:
    assert Level.C1.label_value == 1
    assert Level.T12.label_value == 19
    assert Level.L5.label_value == 24
    assert (Level.L6.label_value, Level.S1.label_value, Level.T13.label_value) == (25, 26, 28)
    assert Level.from_label_value(20) is Level.L1
    assert DiscLevel.L5_S1.label_value == 124
    assert DiscLevel.T12_L1.label_value == 119


def test_sequence_and_neighbours() -> None:
    seq = Level.standard_sequence()
    assert seq[0] is Level.C1 and seq[-1] is Level.S1 and len(seq) == 25
    assert Level.L5.below() is Level.S1
    assert Level.T12.below() is Level.L1
    assert DiscLevel.between(Level.L5, Level.S1) is DiscLevel.L5_S1
    assert [d.is_lumbar for d in LUMBAR_DISCS] == [True] * 6
    assert not DiscLevel.T11_T12.is_lumbar
