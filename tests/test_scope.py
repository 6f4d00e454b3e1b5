"""Model scope: what a card declares, and what is withheld outside it (pure functions, no model)."""

from __future__ import annotations

import json

import numpy as np

from openspine.levels import DiscLevel, Level
from openspine.models import BUILTIN_DIR
from openspine.results import Disc, Grade, Vertebra
from openspine.scope import (
    MIN_TURN_DOUBT_PROBABILITY,
    MODALITIES_ANALYSED,
    ModelScope,
    body_depth_reason,
    body_spacing_reason,
    decide_plane,
    decide_sequence,
    detector_label_reason,
    field_of_view,
    labels_in_scope,
    low_score_flag,
    maybe_wrong_way_round_flag,
    modality_reason,
    plane_conflict,
    plane_conflict_reason,
    signed_values_reason,
    withhold_labels,
    wrong_way_round,
    wrong_way_round_reason,
)


def _v(label: str | None, score: float = 0.9) -> Vertebra:
    """A body of ``label`` at its place on a spine whose bodies lie 35 mm apart."""
    level = Level.parse(label) if label else None
    z = -35.0 * level.ordinal if level else 0.0
    return Vertebra(level, score, (0.0, 0.0, 0.0), (0.0, 0.0, z))


def _d(level: str) -> Disc:
    return Disc(DiscLevel.parse(level), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))


def test_builtin_cards_declare_their_scope() -> None:
    det = ModelScope.from_card(json.loads((BUILTIN_DIR / "detector" / "card.json").read_text()))
    grader = ModelScope.from_card(json.loads((BUILTIN_DIR / "grader" / "card.json").read_text()))
    assert det.regions is not None and "cervical" not in det.regions
    assert det.levels is not None and det.levels[0] == "T11" and det.levels[-1] == "S1"
    assert grader.sequences == frozenset({"T2"})
    assert grader.levels is not None and "L5-S1" in grader.levels and "C5-C6" not in grader.levels


def test_a_card_without_scope_restricts_nothing() -> None:
    s = ModelScope.from_card({"name": "mine"})
    assert s.why_not_sequence({"value": "T1", "source": "header"}) is None
    assert s.why_not_level(Level.C3) is None


def test_sequence_outside_scope_is_named_with_its_source() -> None:
    s = ModelScope("grader", sequences=frozenset({"T2"}))
    why = s.why_not_sequence({"value": "T1", "source": "image", "probability": 0.97})
    assert why is not None and "T2 only" in why and "T1" in why and "image" in why and "0.97" in why
    assert s.why_not_sequence({"value": "T2", "source": "header"}) is None
    assert s.why_not_sequence({"value": None, "source": None}) is None  # nothing known: not withheld
    unsure_t1 = {"value": None, "source": "image", "probability": 0.64, "best_guess": "T1"}
    why = s.why_not_sequence(unsure_t1)
    assert why is not None and "uncertain" in why and "T1" in why and "--sequence" in why
    # an unsure call leaning to the model's own sequence is no better: a T1 picture leaning T2 at 0.5-0.8 (a gamma,
    # an arrow drawn on it) had been graded
    why = s.why_not_sequence({**unsure_t1, "best_guess": "T2"})
    assert why is not None and why.startswith("the sequence is uncertain: the image looks more like T2 but not surely")
    assert "answers only on T2" in why and "--sequence" in why
    # a header set aside by a sure image is no "unsure" image: the message names both words
    conflict = {"value": None, "source": "header", "header": "T1", "best_guess": "T2", "probability": 1.0}
    why = s.why_not_sequence({**conflict, "contradicted_by": "image"})
    assert why is not None and why.startswith("the header says T1 but the image reads as T2")
    assert "not surely" not in why


def test_sequence_decision_prefers_user_then_header_then_a_clear_image() -> None:
    image = {"T1": 0.9, "T2": 0.05, "other": 0.05}
    assert decide_sequence("STIR", "T2", image) == {
        "value": "STIR",
        "source": "user",
        "header_disagrees": {"value": "T2"},
    }
    assert decide_sequence(None, "T2", image) == {"value": "T2", "source": "header"}
    assert decide_sequence(None, None, image)["value"] == "T1"
    unsure = decide_sequence(None, None, {"T1": 0.55, "T2": 0.45, "other": 0.0})
    assert unsure["value"] is None and unsure["best_guess"] == "T1"


def test_a_picture_that_looks_axial_is_out_of_scope_a_volume_only_flagged() -> None:
    axial = {"sagittal": 0.03, "axial": 0.95, "coronal": 0.02}
    plane, why, flag = decide_plane("image", axial)
    assert plane["value"] == "axial" and why is not None and "axial" in why and flag is None
    assert "a sagittal picture turned a quarter turn: give it head up" in why  # what such a refusal often means
    plane, why, flag = decide_plane("nifti", axial)
    assert plane == {"value": "sagittal", "source": "geometry"} and why is None and flag is not None
    _, why, _ = decide_plane("image", {"sagittal": 0.9, "axial": 0.05, "coronal": 0.05})
    assert why is None


def test_colour_counts_only_around_the_spine() -> None:
    from openspine.scope import drawn_in_colour_reason

    mask = np.zeros((200, 200), bool)
    mask[:10, :10] = True  # a coloured caption in the corner
    centres = [(60.0, 100.0), (100.0, 100.0), (140.0, 100.0)]
    assert drawn_in_colour_reason(mask, centres, (1.0, 1.0)) is None
    mask[100, 80:120] = True  # a line drawn across a body
    why = drawn_in_colour_reason(mask, centres, (1.0, 1.0))
    assert why is not None and "around the spine are in colour" in why
    assert (
        drawn_in_colour_reason(None, centres, (1.0, 1.0)) is None and drawn_in_colour_reason(mask, [], (1, 1)) is None
    )


def test_a_plane_conflict_is_another_plane_read_with_at_least_the_bar() -> None:
    assert plane_conflict({"sagittal": 0.1, "axial": 0.1, "coronal": 0.8}) == ("coronal", 0.8)
    assert plane_conflict({"sagittal": 0.45, "axial": 0.1, "coronal": 0.45}) is None  # sagittal ties first
    assert plane_conflict({"sagittal": 0.52, "axial": 0.0, "coronal": 0.48}) is None
    assert plane_conflict({"sagittal": 0.2, "axial": 0.41, "coronal": 0.39}) is None  # below the bar
    assert plane_conflict(None) is None and plane_conflict({}) is None
    # a sure labelling needs the image to be clearer
    assert plane_conflict({"sagittal": 0.1, "axial": 0.1, "coronal": 0.8}, sure_labelling=True) is None
    assert plane_conflict({"sagittal": 0.02, "axial": 0.03, "coronal": 0.95}, sure_labelling=True) == ("coronal", 0.95)
    why = plane_conflict_reason("coronal", 0.89)
    assert "looks coronal (probability 0.89)" in why and "wrong axes" in why and "--trust-orientation" in why
    assert "unsure" in why and "unsure" not in plane_conflict_reason("coronal", 0.95, sure_labelling=True)


def test_cervical_field_of_view_withholds_every_label_and_the_discs_levels() -> None:
    det = ModelScope("detector", regions=frozenset({"thoracic", "lumbar", "sacral"}), levels=("T11", "L5", "S1"))
    verts = [_v("L3"), _v("L4"), _v("L5")]
    discs = [_d("L3-L4"), _d("L4-L5")]
    new_v, new_d, flags = withhold_labels(verts, discs, detector_label_reason(det, cervical=True))
    assert all(v.label is None and v.note and "cervical" in v.note for v in new_v)
    assert all(d.level is None for d in new_d)
    assert len(flags) == 1 and flags[0].startswith("labels_withheld: L3, L4, L5")


def test_levels_outside_the_card_are_withheld_the_rest_kept() -> None:
    det = ModelScope("detector", levels=("T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"))
    verts = [_v("T10"), _v("T11"), _v("T12")]
    discs = [_d("T10-T11"), _d("T11-T12")]
    new_v, new_d, flags = withhold_labels(verts, discs, detector_label_reason(det, cervical=False))
    assert [v.label for v in new_v] == [None, Level.T11, Level.T12]
    assert new_v[0].note is not None and new_v[0].note.startswith("label withheld: T10 (outside the levels")
    assert [d.level for d in new_d] == [None, DiscLevel.parse("T11-T12")]
    assert flags and "T10" in flags[0]


def test_labels_in_scope_reads_the_card_and_the_cervical_probability() -> None:
    card = {"name": "detector", "scope": {"regions": ["thoracic", "lumbar", "sacral"], "levels": ["L4", "L5", "S1"]}}
    verts, discs = [_v("L4"), _v("L5"), _v("S1")], [_d("L4-L5"), _d("L5-S1")]
    kept_v, kept_d, none, nothing = labels_in_scope(verts, discs, card, cervical_probability=0.49)
    assert [v.label for v in kept_v] == [Level.L4, Level.L5, Level.S1] and kept_d[0].level is not None and none == []
    assert nothing is None
    gone_v, gone_d, flags, nothing = labels_in_scope(verts, discs, card, cervical_probability=0.5)
    assert all(v.label is None for v in gone_v) and gone_d[0].level is None
    assert nothing is not None and "cervical" in nothing
    assert flags[0] == "cervical_field_of_view: the image shows the cervical spine (probability 0.50)"
    assert flags[1].startswith("labels_withheld: every body (3) and disc (2) (the image shows the cervical spine")
    # the detector's guesses are another region's count: neither the flag nor the notes name them
    assert not any("L4" in f or "L5" in f for f in flags)
    assert all(v.note is not None and "L4" not in v.note and "L5" not in v.note for v in gone_v)
    assert labels_in_scope(verts, discs, {}, cervical_probability=None)[2:] == ([], None)  # no scope, nothing read
    # a card that covers the cervical spine keeps its labels
    cervical_card = {"name": "detector", "scope": {"regions": ["cervical", "thoracic"]}}
    assert labels_in_scope(verts, discs, cervical_card, cervical_probability=0.9)[3] is None


def test_field_of_view_from_labels_and_the_image() -> None:
    assert field_of_view([Level.L4, Level.S1, None], None)["value"] == "lumbar+sacral"
    fov = field_of_view([Level.T12, Level.L1], 0.9)
    assert fov["value"] == "cervical+thoracic+lumbar" and fov["source"] == "image+detection"
    assert field_of_view([], 0.1)["value"] == "none"


def test_grade_probability_is_that_of_the_reported_grade() -> None:
    g = Grade(grade=3, probabilities={"1": 0.4, "3": 0.6}, balanced_grade=1)
    assert g.probability == 0.6
    assert g.to_dict()["balanced_grade"] == 1


def test_low_score_flag_names_the_bodies() -> None:
    assert low_score_flag([_v("L4", 0.9)]) is None
    flag = low_score_flag([_v("L4", 0.9), _v("L5", 0.1)])
    assert flag is not None and "L5 (0.10)" in flag and "1 of 2" in flag
    # an unlabelled body by its place from the top ('?' had said nothing outside the overlay's legend)
    flag = low_score_flag([_v(None, 0.0), _v(None, 0.9), _v(None, 0.17)])
    assert (
        flag == "low_confidence: 2 of 3 bodies scored below 0.25: unlabelled body #1 (0.00), unlabelled body #3 (0.17)"
    )
    # a body whose label the scope withheld says which, as labels_withheld names it (user test)
    high, _, _ = withhold_labels(
        [_v("T10", 0.01), _v("T11", 0.9)], [], lambda lv: "outside" if lv.value == "T10" else None
    )
    assert (
        low_score_flag(high)
        == "low_confidence: 1 of 2 bodies scored below 0.25: unlabelled body #1 (label T10 withheld, 0.01)"
    )


def test_fluid_signal_settles_an_unsure_image_call_and_questions_a_contradicted_one() -> None:
    from openspine.scope import check_sequence_by_fluid, uncertain_sequence_flag

    unsure = {"value": None, "source": "image", "probability": 0.6, "best_guess": "T1"}
    settled = check_sequence_by_fluid(unsure, 2.1)  # bright fluid: T2
    assert settled["value"] == "T2" and settled["settled_by"] == "csf_over_body" and "best_guess" not in settled
    sure_t2 = {"value": "T2", "source": "image", "probability": 0.9}
    questioned = check_sequence_by_fluid(sure_t2, 0.5)  # dark fluid contradicts a T2 call
    assert questioned["value"] is None and questioned["best_guess"] == "T1"
    flag = uncertain_sequence_flag(questioned)
    assert flag is not None and "fluid" in flag and "T1" in flag
    # the image's own call is kept apart: its probability had been quoted for the fluid's guess (user test)
    assert questioned["image_reading"] == {"value": "T2", "probability": 0.9} and "probability" not in questioned
    from openspine.scope import ModelScope
    from openspine.vocabulary import describe_source

    said = "the image reads T2, probability 0.90, but the spinal fluid's signal, x0.50 of bone, says T1"
    assert describe_source(questioned) == said
    why = ModelScope("grader", sequences=frozenset({"T2"})).why_not_sequence(questioned)
    assert why is not None and why.startswith(f"the sequence is uncertain: {said}, and the grader answers only on T2")
    assert check_sequence_by_fluid(sure_t2, 1.2)["value"] == "T2"  # between the thresholds: no say
    header = {"value": "T2", "source": "header"}
    assert check_sequence_by_fluid(header, 0.3) == header  # the header is checked by check_named_sequence
    other = {"value": "other", "source": "image", "probability": 0.95}
    assert check_sequence_by_fluid(other, 0.3)["value"] == "other"


def test_fluid_signal_settles_only_a_call_unsure_between_t1_and_t2() -> None:
    # bright fluid is no T2 where the image may be neither (a water-fat GRE tilted 30 degrees read "T2 0.57" with
    # "other" next had been settled as T2 and graded)
    from openspine.scope import check_sequence_by_fluid

    unsure = {"value": None, "source": "image", "probability": 0.57, "best_guess": "T2"}
    kept = check_sequence_by_fluid(unsure, 2.1, {"T1": 0.03, "T2": 0.57, "other": 0.40})
    assert kept["value"] is None and kept["best_guess"] == "T2" and "settled_by" not in kept
    settled = check_sequence_by_fluid(unsure, 2.1, {"T1": 0.40, "T2": 0.57, "other": 0.03})
    assert settled["value"] == "T2" and settled["settled_by"] == "csf_over_body"


def test_a_header_the_image_and_the_fluid_contradict_is_set_aside_and_the_user_is_not() -> None:
    from openspine.scope import check_named_sequence, uncertain_sequence_flag

    header_t2 = {"value": "T2", "source": "header"}
    looks_t1 = {"T1": 0.99, "T2": 0.01, "other": 0.0}
    conflict = check_named_sequence(header_t2, looks_t1, 0.6)  # dark fluid too
    assert conflict["value"] is None and conflict["best_guess"] == "T1" and conflict["header"] == "T2"
    assert conflict["contradicted_by"] == "image" and conflict["csf_over_body"] == 0.6
    flag = uncertain_sequence_flag(conflict)
    assert flag is not None and flag.startswith("sequence_conflict: the header says T2") and "T1" in flag
    # the fluid siding with the header, an image not sure enough, or no image: the header stands
    kept = check_named_sequence(header_t2, looks_t1, 2.0)
    assert kept["value"] == "T2" and kept["source"] == "header"
    # the image's reading and the fluid are kept beside the header's word, for audit
    assert kept["image_reading"] == {"value": "T1", "probability": 0.99} and kept["csf_over_body"] == 2.0
    assert check_named_sequence(header_t2, {"T1": 0.65, "T2": 0.35}, None)["value"] == "T2"  # a lean below 0.7
    assert check_named_sequence(header_t2, None, 0.6) == header_t2
    # the image leaning to the other one (its likeliest class) at 0.7 or more, the fluid not siding with the header
    # (a T1 slice under a T2 series' header, tilted 15°, read T1 at 0.78-0.88 and had been graded)
    leans_t1 = {"T1": 0.78, "T2": 0.21, "other": 0.01}
    lean = check_named_sequence(header_t2, leans_t1, 1.2)  # the fluid between its bars says nothing
    assert lean["value"] is None and lean["best_guess"] == "T1" and lean["contradicted_by"] == "image"
    assert lean["probability"] == 0.78 and "fluid_says" not in lean
    assert check_named_sequence(header_t2, leans_t1, 2.0)["value"] == "T2"  # bright fluid sides with the header
    # a weaker lean stands alone, not with dark fluid beside it (two witnesses)
    weak_t1 = {"T1": 0.6, "T2": 0.38, "other": 0.02}
    assert check_named_sequence(header_t2, weak_t1, 1.2)["value"] == "T2"
    both = check_named_sequence(header_t2, weak_t1, 0.52)
    assert both["value"] is None and both["best_guess"] == "T1" and both["fluid_says"] == "T1"
    # dark fluid sets the header aside where the image is not sure of its word either (a T1 slice read T2 at 0.84,
    # fluid at 0.62 of bone, had been graded under a T2 header), and the flag says the fluid decided it
    fluid_t1 = check_named_sequence(header_t2, {"T1": 0.16, "T2": 0.84}, 0.62)
    assert fluid_t1["value"] is None and fluid_t1["best_guess"] == "T1" and fluid_t1["fluid_says"] == "T1"
    said = uncertain_sequence_flag(fluid_t1)
    assert said is not None and "the spinal fluid's signal (x0.62 of bone) says T1" in said
    assert "the image reads T2 only with probability 0.84" in said
    assert check_named_sequence(header_t2, {"T1": 0.05, "T2": 0.95}, 0.52)["value"] == "T2"  # a sure image: kept
    # the grades' reason says the same, not "the image looks more like T1" for an image that read T2
    why = ModelScope("grader", sequences=frozenset({"T2"})).why_not_sequence(fluid_t1)
    assert why is not None and why.startswith("the header says T2 but the spinal fluid's signal (x0.62 of bone)")
    # the lean's bar is 0.7 exactly, and no fluid measured leaves the image's lean to decide
    assert check_named_sequence(header_t2, {"T1": 0.7, "T2": 0.3}, None)["value"] is None
    assert check_named_sequence(header_t2, {"T1": 0.69, "T2": 0.31}, None)["value"] == "T2"
    # the same rules under a T1 header: a lean to T2, bright fluid beside a T1 call not sure, dark fluid keeping it
    header_t1 = {"value": "T1", "source": "header"}
    assert check_named_sequence(header_t1, {"T1": 0.25, "T2": 0.75}, 1.2)["best_guess"] == "T2"
    assert check_named_sequence(header_t1, {"T1": 0.25, "T2": 0.75}, 0.6)["value"] == "T1"
    by_fluid = check_named_sequence(header_t1, {"T1": 0.8, "T2": 0.2}, 2.0)
    assert by_fluid["value"] is None and by_fluid["best_guess"] == "T2" and by_fluid["fluid_says"] == "T2"
    assert check_named_sequence(header_t1, {"T1": 0.95, "T2": 0.05}, 2.0)["value"] == "T1"
    # a lean to other under a T1 header stands aside for dark fluid (fluid is bright on a water-fat GRE), not a sure
    # call of other
    assert check_named_sequence(header_t1, {"T1": 0.2, "T2": 0.0, "other": 0.8}, 0.6)["value"] == "T1"
    assert check_named_sequence(header_t1, {"T1": 0.2, "T2": 0.0, "other": 0.8}, 1.2)["best_guess"] == "other"
    assert check_named_sequence({"value": "T1", "source": "header"}, {"T1": 0.3, "T2": 0.7}, 2.0)["value"] is None
    # fluid between the thresholds (no say) does not save the header from a sure image
    assert check_named_sequence(header_t2, looks_t1, 1.2)["value"] is None
    # a header's T2 or T1 on an image that reads clearly as neither (a water-fat GRE exported as "T2_TSE_SAG") is
    # set aside whatever the fluid says: bright fluid does not tell T2 from other
    gre = {"T1": 0.0, "T2": 0.02, "other": 0.98}
    for named, fluid in (("T2", 1.7), ("T2", None), ("T1", 0.6)):
        set_aside = check_named_sequence({"value": named, "source": "header"}, gre, fluid)
        assert set_aside["value"] is None and set_aside["best_guess"] == "other" and set_aside["header"] == named
        assert set_aside["probability"] == 0.98
    leans_other = check_named_sequence(header_t2, {"T1": 0.0, "T2": 0.15, "other": 0.85}, 2.0)  # likeliest, ≥ 0.7
    assert leans_other["value"] is None and leans_other["best_guess"] == "other"
    assert check_named_sequence(header_t2, {"T1": 0.0, "T2": 0.4, "other": 0.6}, None)["value"] == "T2"
    # STIR and "other" are not checked (the image knows T1 and T2 apart, not STIR from T2)
    stir = {"value": "STIR", "source": "header"}
    assert check_named_sequence(stir, looks_t1, 0.6)["value"] == "STIR"
    # the user's word stands, with the image's reading beside it and a note
    user = check_named_sequence({"value": "T2", "source": "user"}, looks_t1, 0.6)
    assert user["value"] == "T2"
    assert user["image_disagrees"] == {"value": "T1", "probability": 0.99, "csf_over_body": 0.6}
    note = uncertain_sequence_flag(user)
    assert note is not None and note.startswith("sequence_note: read as T2 as asked")
    # any sequence the user names is checked against a clear image reading that contradicts it: a water-fat GRE
    # (read 'other') forced to T2, a T2 called other, a T1 called STIR; a STIR image reads T2 or other, no note
    looks_other, looks_t2 = {"T1": 0.0, "T2": 0.0, "other": 1.0}, {"T1": 0.0, "T2": 0.99, "other": 0.01}
    gre_as_t2 = check_named_sequence({"value": "T2", "source": "user"}, looks_other, 1.7)  # bright fluid, as on T2
    assert gre_as_t2["image_disagrees"] == {"value": "other", "probability": 1.0, "csf_over_body": 1.7}
    assert (
        check_named_sequence({"value": "other", "source": "user"}, looks_t2, None)["image_disagrees"]["value"] == "T2"
    )
    assert check_named_sequence({"value": "STIR", "source": "user"}, looks_t1, None)["image_disagrees"]["value"] == "T1"
    for image in (looks_t2, looks_other):
        assert "image_disagrees" not in check_named_sequence({"value": "STIR", "source": "user"}, image, None)
    assert "image_disagrees" not in check_named_sequence({"value": "T2", "source": "user"}, looks_t2, None)
    # a header the user's word overrules is said too (a sidecar's T1 overridden by --sequence T2 went unsaid)
    overruled = decide_sequence("T2", "T1", looks_t2)
    assert overruled == {"value": "T2", "source": "user", "header_disagrees": {"value": "T1"}}
    note = uncertain_sequence_flag({**overruled, "header_disagrees": {"value": "T1", "named_by": "sidecar"}})
    assert note == "sequence_note: read as T2 as asked (--sequence), though the sidecar says T1"
    both = uncertain_sequence_flag({**overruled, "image_disagrees": {"value": "T1", "probability": 0.99}})
    assert both is not None and both.endswith("though the header says T1 and the image reads as T1 (probability 0.99)")
    assert decide_sequence("T2", "T2", looks_t2) == {"value": "T2", "source": "user"}


def test_no_grading_where_every_body_is_unsure() -> None:
    from openspine.scope import unsure_spine_reason

    assert unsure_spine_reason([]) is None
    assert unsure_spine_reason([_v("L4", 0.1), _v("L5", 0.3)]) is None  # one sure body is enough
    why = unsure_spine_reason([_v("L4", 0.1), _v("L5", 0.2), _v("S1", 0.05)])
    assert why is not None and "every vertebral body scored below 0.25 (best 0.20)" in why


def test_a_turn_is_named_only_when_the_recogniser_is_sure_of_it() -> None:
    probs = {"right way round": 0.02, "upside down": 0.95, "reversed front to back": 0.03}
    assert wrong_way_round(probs) == "upside down"
    assert wrong_way_round({**probs, "upside down": 0.85, "right way round": 0.12}) is None  # not sure enough
    assert wrong_way_round({"right way round": 0.97, "upside down": 0.03}) is None
    assert wrong_way_round({}) is None
    # the likeliest reading, below the refusal: flagged where the labelling is unsure (the caller's rule)
    assert wrong_way_round({**probs, "upside down": 0.6, "right way round": 0.3}, MIN_TURN_DOUBT_PROBABILITY) == (
        "upside down"
    )
    assert wrong_way_round({"right way round": 0.45, "upside down": 0.4}, MIN_TURN_DOUBT_PROBABILITY) is None
    flag = maybe_wrong_way_round_flag("upside down", 0.62, picture=False)
    assert flag.startswith("orientation_suspect: the image may be upside down (probability 0.62)")
    assert "no disc is graded" in flag and "--trust-orientation" in flag
    assert "the labels may be wrong" in flag
    # reversed front to back, the labels still run head to feet: the doubt is which side is the front
    mirrored = maybe_wrong_way_round_flag("reversed front to back", 0.7, picture=False)
    assert "front and back may be swapped" in mirrored and "labels may be wrong" not in mirrored
    assert "turn it head up" in maybe_wrong_way_round_flag("turned by 180°", 0.7, picture=True)
    picture = wrong_way_round_reason("upside down", 0.95, picture=True)
    assert "picture looks upside down (probability 0.95)" in picture and "head up" in picture
    assert "--trust-orientation" in picture
    assert "orientation header" in wrong_way_round_reason("turned by 180°", 0.99, picture=False)


def test_spines_side_by_side_counts_columns_of_bodies_that_overlap_in_height() -> None:
    from openspine.scope import spines_side_by_side

    lordosis = [(40.0 * i, 15.0 * np.sin(i / 2)) for i in range(7)]  # one spine, curved: one column
    assert spines_side_by_side(lordosis) == 1
    beside = [(r, c + 180.0) for r, c in lordosis]  # the same spine again, a panel to the right
    assert spines_side_by_side(lordosis + beside) == 2
    below = [(r + 400.0, c + 180.0) for r, c in lordosis]  # another column, but lower down: not side by side
    assert spines_side_by_side(lordosis + below) == 1
    stray = [(100.0, 150.0)]  # one stray detection in front of a spine is no second column
    assert spines_side_by_side(lordosis + stray) == 1
    # two bodies of a second spine beside it are: the one label sequence would zigzag between them
    assert spines_side_by_side([*lordosis, (100.0, 150.0), (140.0, 155.0)]) == 2
    assert spines_side_by_side(lordosis[:1]) == 0 and spines_side_by_side([]) == 0


def test_labels_need_three_bodies() -> None:
    card = {"name": "detector", "scope": {"regions": ["thoracic", "lumbar", "sacral"]}}
    two_v, one_d = [_v("L5"), _v("S1")], [_d("L5-S1")]
    gone_v, gone_d, flags, nothing = labels_in_scope(two_v, one_d, card, cervical_probability=0.0)
    assert all(v.label is None for v in gone_v) and gone_d[0].level is None
    assert nothing is not None and "only 2 vertebral bodies" in nothing
    assert flags == [f"labels_withheld: every body (2) and disc (1) ({nothing})"]
    three_v = [_v("L4"), _v("L5"), _v("S1")]
    assert labels_in_scope(three_v, [_d("L4-L5"), _d("L5-S1")], card, cervical_probability=0.0)[3] is None
    assert labels_in_scope([], [], card, cervical_probability=0.0)[3] is None  # no body: refused elsewhere


def test_a_header_naming_another_modality_than_mr_is_refused_one_naming_none_is_not() -> None:
    for undeclared in ("MR", None, "", "OT", " sc "):  # other / secondary capture: a screenshot of an MR image
        assert modality_reason(undeclared) is None, undeclared
    ct = modality_reason("CT")
    assert ct is not None and ct.startswith("the series is a CT (DICOM Modality CT), not MR")
    assert "a radiograph (DICOM Modality DX)" in (modality_reason("dx") or "")
    assert "modality XC (DICOM Modality XC)" in (modality_reason("XC") or "")


def test_every_builtin_card_is_scoped_to_the_modality_the_analysis_reads() -> None:
    for name in ("detector", "grader", "recognizer", "orientation"):
        card = json.loads((BUILTIN_DIR / name / "card.json").read_text())
        assert tuple(card["scope"]["modalities"]) == MODALITIES_ANALYSED, name


def test_hounsfield_units_and_phase_images_are_no_mr_magnitude_image() -> None:
    rng = np.random.default_rng(0)
    magnitude = rng.gamma(2.0, 100.0, size=(96, 96, 3))
    assert signed_values_reason(magnitude) is None
    # offsets a magnitude image may be stored with: z-scored, mean-centred, a baseline below zero
    rescaled = 2 * (magnitude - magnitude.min()) / np.ptp(magnitude) - 1  # to [-1, 1]: its range symmetric about 0
    stored_ways = (
        (magnitude - magnitude.mean()) / magnitude.std(),
        magnitude - magnitude.mean(),
        magnitude - 20,
        rescaled,
    )
    for stored in stored_ways:
        assert signed_values_reason(stored) is None
    ringing = magnitude.copy()
    ringing.flat[::100] = -1000  # 1 % at air's value (a few reconstruction artefacts): tolerated
    assert signed_values_reason(ringing) is None
    assert signed_values_reason(np.round(magnitude / 8) - 1000) is None  # an 8-bit MR offset by -1000: no bone
    ct = signed_values_reason(np.where(magnitude > 150, magnitude * 3, -1000.0))  # air at -1000, tissue above 0
    assert ct is not None and ct.startswith("44 % of its voxels are at -900 or lower (air in a CT is -1000): this")
    padded = np.where(magnitude > 60, magnitude * 3 - 100, -3024.0)  # fat below 0, padding outside the field
    assert "Hounsfield" in (signed_values_reason(padded) or "")
    phase = signed_values_reason(rng.uniform(-np.pi, np.pi, size=(96, 96, 3)))  # radians
    assert phase is not None and phase.startswith("its values are symmetric about 0") and "MR phase image" in phase
    assert "MR phase image" in (signed_values_reason(rng.uniform(-4096, 4096, size=(96, 96, 3))) or "")  # scaled


def _at(label: str | None, z: float) -> Vertebra:
    return Vertebra(Level.parse(label) if label else None, 0.9, (0.0, 0.0, 0.0), (0.0, 0.0, z))


def test_bodies_are_labelled_only_at_the_spacing_lumbar_bodies_have() -> None:
    lumbar = [_at(lab, -35.0 * i) for i, lab in enumerate(["L3", "L4", "L5", "S1"])]
    assert body_spacing_reason(lumbar) is None
    close = [_at(lab, -16.0 * i) for i, lab in enumerate(["L4", "L5", "S1"])]
    why = body_spacing_reason(close)
    assert why is not None and why.startswith("the vertebral bodies lie 16 mm apart (centre to centre), closer")
    far = [_at(lab, -90.0 * i) for i, lab in enumerate(["L4", "L5", "S1"])]
    assert "lie 90 mm apart" in (body_spacing_reason(far) or "") and "too large" in (body_spacing_reason(far) or "")
    # only consecutive labelled bodies count: a gap where a body was missed is no spacing
    gap = [_at("L1", 0.0), _at("L2", -35.0), _at("L4", -105.0), _at("L5", -140.0)]
    assert body_spacing_reason(gap) is None and body_spacing_reason([_at(None, 0.0), _at(None, -16.0)]) is None


def _sized(label: str | None, depth_mm: float, z: float) -> Vertebra:
    """A body whose mid-slice outline is ``depth_mm`` deep front to back and 25 mm tall."""
    from openspine.results import SliceOutline

    corners = ((0.0, 0.0, z), (0.0, -depth_mm, z), (0.0, -depth_mm, z - 25.0), (0.0, 0.0, z - 25.0))
    outline = SliceOutline(3, ((0.0, 0.0, 0.0),) * 4, corners)  # type: ignore[arg-type]
    level = Level.parse(label) if label else None
    return Vertebra(level, 0.9, (0.0, 0.0, 0.0), (0.0, -depth_mm / 2, z - 12.5), (outline,), mid_slice=3)


def test_bodies_labelled_lumbar_must_be_as_deep_as_lumbar_bodies_are() -> None:
    labels = ["L3", "L4", "L5", "S1"]
    lumbar = [_sized(lab, 30.0, -35.0 * i) for i, lab in enumerate(labels)]
    assert body_depth_reason(lumbar) is None
    # upper thoracic bodies (the detector never saw them) read as L2 ... S1: 9-16 mm deep on a real scan's windows
    small = [_sized(lab, 11.0, -20.0 * i) for i, lab in enumerate(labels)]
    why = body_depth_reason(small)
    assert why is not None and why.startswith("the bodies labelled lumbar are 11.0 mm deep (front to back), smaller")
    assert "or the voxel or pixel size given is too small" in why
    # said to a tenth of a mm, so a body just under the bound never reads as deep as the bound
    edge = body_depth_reason([_sized(lab, 12.96, -35.0 * i) for i, lab in enumerate(labels)])
    assert edge is not None and "are 13.0 mm deep" not in edge and "labels are given from 13 mm" in edge
    # only bodies labelled lumbar count (small thoracic ones above them, the sacrum below, do not)
    mixed = [_sized("T10", 9.0, 0.0), _sized("T11", 9.0, -25.0), *lumbar]
    assert body_depth_reason(mixed) is None and body_depth_reason([_v("L4"), _v("L5")]) is None  # no outline
    # the analysis gives such bodies no label at all, as it does bodies too close together
    card = {"scope": {"levels": ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"]}}
    new_v, _, flags, nothing = labels_in_scope(small, [_d("L3-L4"), _d("L4-L5")], card, cervical_probability=0.0)
    assert nothing == why and all(v.label is None for v in new_v) and flags[0].startswith("labels_withheld: every body")


def test_grades_are_withheld_only_where_no_sacrum_anchors_the_labels_and_the_view_ends_above_l5() -> None:
    from openspine.scope import unanchored_levels_reason

    high = [_v("T10"), _v("T11"), _v(None), _v("L1"), _v("L2")]
    to_l5 = [_v("L2"), _v("L3"), _v("L4"), _v("L5")]
    assert unanchored_levels_reason(True, high) is None
    assert unanchored_levels_reason(None, high) is None  # a detection read back from records: not known
    # the sacrum just out of view (or only its top in view): labels read near the junction, graded
    assert unanchored_levels_reason(False, to_l5) is None
    assert unanchored_levels_reason(False, [_v(None), _v(None)]) is None  # nothing labelled: nothing graded anyway
    why = unanchored_levels_reason(False, high)
    assert why is not None and why.startswith("no sacrum in view to count the levels from and the view ends above L5")
    assert "lowest body labelled L2)" in why


def test_a_view_reaches_l5_only_through_a_body_the_detector_is_sure_of() -> None:
    # crops of an upper thoracic view (user test): labelled L2 … L5, their L4 and L5 scored 0.00, and graded
    from openspine.scope import lowest_sure_level, unanchored_levels_reason

    doubtful_end = [_v("L2", 0.33), _v("L3", 0.39), _v("L4", 0.0), _v("L5", 0.0)]
    assert lowest_sure_level(doubtful_end) == Level.L3
    why = unanchored_levels_reason(False, doubtful_end)
    assert why is not None and "the view does not surely reach L5 (the lowest body scored 0.25 or more is " in why
    assert "labelled L3; L4 (0.00), L5 (0.00) below it scored less)" in why
    rounded = unanchored_levels_reason(False, [_v("L2"), _v("L3"), _v("L4", 0.249)]) or ""
    assert "L4 (0.24) below it" in rounded  # rounded down: 0.249 does not read as the 0.25 it falls short of
    assert unanchored_levels_reason(True, doubtful_end) is None  # a sacrum found anchors the labels
    assert unanchored_levels_reason(False, [_v("L3"), _v("L4"), _v("L5", 0.25)]) is None  # sure enough
    unsure = [_v("L4", 0.1), _v("L5", 0.1)]  # sure of none: the lowest labelled body (all withheld elsewhere)
    assert lowest_sure_level(unsure) == Level.L5 and unanchored_levels_reason(False, unsure) is None


def test_a_sacrum_anchors_the_labels_only_where_the_detector_is_sure_of_it() -> None:
    # a window of an upper thoracic view: S1 (0.00) by the level fit alone, L4 and L5 doubtful too, and graded
    from openspine.scope import unanchored_levels_reason

    doubtful_s1 = [_v("L3", 0.41), _v("L4", 0.01), _v("L5", 0.03), _v("S1", 0.0)]
    why = unanchored_levels_reason(True, doubtful_s1)
    assert why is not None and why.startswith("the body labelled S1 scored under 0.25: no sacrum to count the levels")
    assert "(the lowest body scored 0.25 or more is labelled L3; L4 (0.01), L5 (0.03), S1 (0.00) below it" in why
    assert unanchored_levels_reason(True, [_v("L3"), _v("L4"), _v("L5"), _v("S1", 0.4)]) is None
    assert unanchored_levels_reason(True, [_v("L4"), _v("L5", 0.3), _v("S1", 0.1)]) is None  # reaches L5 surely
    assert unanchored_levels_reason(True, [_v("T12"), _v("L1"), _v("L2")]) is None  # no S1 labelled: as found


def test_a_card_s_pixel_bound_withholds_coarser_images_only() -> None:
    bounded = ModelScope.from_card({"name": "grader", "scope": {"max_pixel_spacing_mm": 1.25}})
    assert bounded.why_not_pixels(1.25) is None and bounded.why_not_pixels(0.3) is None
    why = bounded.why_not_pixels(2.0)
    assert why is not None and "2.00 mm" in why and "1.25 mm" in why and "grader" in why
    assert ModelScope.from_card({"name": "grader", "scope": {}}).why_not_pixels(5.0) is None  # no bound declared
    assert ModelScope.from_card({"name": "g", "scope": {"max_pixel_spacing_mm": "x"}}).why_not_pixels(5.0) is None


def test_a_head_s_own_pixel_bound_withholds_that_head_only() -> None:
    card = {"name": "grader", "scope": {"heads": {"pfirrmann": {"max_pixel_spacing_mm": 1.25}, "mine": {}}}}
    s = ModelScope.from_card(card)
    assert s.why_not_pixels(3.0) is None  # no bound on top: a fine-tuned head may answer there
    assert "coarser" in (s.head_reason("pfirrmann", None, DiscLevel.L4_L5, 3.0) or "")
    assert s.head_reason("pfirrmann", None, DiscLevel.L4_L5, 1.0) is None
    assert s.head_reason("mine", None, DiscLevel.L4_L5, 3.0) is None


def test_spines_stacked_finds_where_the_level_count_starts_again_across_a_gap() -> None:
    from openspine.scope import spines_stacked, stacked_reason

    def column(n: int, gap_after: int | None = None) -> list[tuple[float, float]]:
        """Bodies 35 mm apart down one column; 90 mm (two images meeting) after body ``gap_after``."""
        rows = [35.0 * i + (55.0 if gap_after is not None and i > gap_after else 0.0) for i in range(n)]
        return [(r, 0.0) for r in rows]

    one = [17.8, 18.1, 18.9, 19.8, 20.9, 22.0, 23.2, 24.1, 24.9]
    assert spines_stacked(one, column(9)) is None
    falls = [20.0, 20.8, 21.0, 21.0, 20.0, 20.0, 20.7, 21.1]  # real: a fall of 0.97 levels
    assert spines_stacked(falls, column(8)) is None
    two = [18.1, 19.2, 20.1, 25.1, 18.9, 20.0, 21.0]
    assert spines_stacked(two, column(7, gap_after=3)) == 4
    # the same fall between neighbours at the usual spacing: one continuous spine whose upper bodies read wrongly
    # (a whole-spine view: the detector never saw a cervical spine)
    assert spines_stacked(two, column(7)) is None
    assert spines_stacked([*one, 17.0], column(10, gap_after=8)) is None  # one stray body below the sacrum
    assert spines_stacked([25.0, *one], column(10, gap_after=0)) is None
    why = stacked_reason(25.1, 18.9, picture=True)
    assert "S1" in why and "T12" in why and "crop the picture" in why


def test_a_pixel_a_hair_above_the_bound_from_a_tilted_plane_is_inside_it() -> None:
    bounded = ModelScope.from_card({"name": "grader", "scope": {"max_pixel_spacing_mm": 1.25}})
    assert bounded.why_not_pixels(1.2500001) is None and bounded.why_not_pixels(1.255) is None
    assert bounded.why_not_pixels(1.26) is not None


def test_scores_are_written_rounded_down_where_they_fall_below_a_bar() -> None:
    from openspine.vocabulary import LOW_SCORE, score_text

    assert score_text(0.249) == "0.24" and score_text(LOW_SCORE) == "0.25" and score_text(0.999) == "0.99"
    assert score_text(0.0) == "0.00"
    # elsewhere rounded as the CSV's four decimals are, so the two read alike (user test: 0.4887 shown as 0.48)
    assert score_text(0.4887) == "0.49" and score_text(0.0495) == "0.05" and score_text(0.046) == "0.05"
    assert score_text(1.0) == "1.00" and score_text(0.2449) == "0.24"


def test_a_head_trained_where_it_was_not_validated_says_so_and_claims_no_validation_it_lacks() -> None:
    from openspine.levels import DiscLevel
    from openspine.scope import ModelScope

    heads = {"mine": {"sequences": ["T2"], "levels": ["L4-L5", "L5-S1"], "not_validated": ["T1", "L3-L4"]}}
    card = {"name": "ft", "scope": {"heads": heads}, "finetuning": {"trained_heads": ["mine"]}}
    scope = ModelScope.from_card(card)
    on_t1 = scope.head_reason("mine", {"value": "T1", "source": "header"}, DiscLevel.L4_L5)
    assert on_t1 is not None and on_t1.startswith("the ft was trained on T1 scans too but validated on T2 only")
    # the model-wide reason, checked first, says the same (it had said "trained and validated on T2 only")
    card_wide = {**card, "scope": {"sequences": ["T2"], "heads": heads}}
    wide = ModelScope.from_card(card_wide).why_not_sequence({"value": "T1", "source": "header"})
    assert wide is not None and wide.startswith("the ft was trained on T1 scans too but validated on T2 only")
    at_l3 = scope.head_reason("mine", {"value": "T2", "source": "header"}, DiscLevel.L3_L4)
    assert at_l3 == "L3-L4: the ft was trained there but not validated (validated at L4-L5 … L5-S1 only)"
    at_l1 = scope.head_reason("mine", {"value": "T2", "source": "header"}, DiscLevel.L1_L2)
    assert at_l1 == "outside the levels the ft was trained and validated on (L4-L5 … L5-S1)"
    # a model fine-tuned without validation (--no-validation) claims none (it had said "trained and validated on")
    unvalidated = ModelScope.from_card({**card, "metrics": {"validated": False}})
    said = unvalidated.head_reason("mine", {"value": "T2", "source": "header"}, DiscLevel.L1_L2)
    assert said == "outside the levels the ft was trained on (L4-L5 … L5-S1)"


def test_an_older_card_never_evaluated_claims_no_validation_in_its_reasons() -> None:
    from openspine.levels import DiscLevel
    from openspine.scope import ModelScope, never_evaluated

    card = {"name": "g", "scope": {"levels": ["L4-L5"]}, "metrics": {}, "training": {"command": "x --no-evaluate"}}
    assert never_evaluated(card) and not never_evaluated({**card, "metrics": {"validated": True}})
    said = ModelScope.from_card(card).why_not_level(DiscLevel.L1_L2)
    assert said == "outside the levels the g was trained on (L4-L5)"


def test_panels_stand_apart_by_a_band_of_one_value_from_top_to_bottom() -> None:
    from openspine.scope import picture_panels

    rng = np.random.default_rng(0)
    scan = rng.integers(1, 255, (200, 120)).astype(np.uint8)
    assert picture_panels(scan) == 1
    for gap, value in ((4, 0), (8, 255), (30, 0)):
        figure = np.hstack([scan, np.full((200, gap), value, np.uint8), scan])
        assert picture_panels(figure) == 2, (gap, value)
        assert picture_panels(np.hstack([figure, np.full((200, gap), value, np.uint8), scan])) == 3
    assert picture_panels(np.hstack([scan, np.zeros((200, 3), np.uint8), scan])) == 1  # a line's width: no band
    noisy = np.hstack([scan, rng.integers(0, 3, (200, 8)).astype(np.uint8), scan])  # air: noise, not one value
    assert picture_panels(noisy) == 1
    side_bar = np.hstack([scan, np.zeros((200, 8), np.uint8), scan[:, :20]])  # a narrow strip is no panel
    assert picture_panels(side_bar) == 1
    text = np.zeros((200, 100), np.uint8)
    text[10:20, 10:40] = 255  # a side bar of a few words: wide enough, but hardly any of it differs from the band
    assert picture_panels(np.hstack([scan, np.zeros((200, 8), np.uint8), text])) == 1


def test_a_line_of_one_value_drawn_over_a_real_slice_parts_nothing() -> None:
    """A cross-reference line or a ruler drawn top to bottom over a slice (2–3 pixels of one value; code review): the
    anatomy goes on across it, so the slice is no figure of two panels."""
    from PIL import Image

    from openspine.scope import picture_panels

    from .conftest import shared_data_or_skip

    image = np.asarray(Image.open(shared_data_or_skip() / "spider/32/image.png").convert("L")).copy()
    for at in (0.4, 0.5, 0.6):
        c = int(at * image.shape[1])
        lined, thin = image.copy(), image.copy()
        lined[:, c : c + 3] = 255
        thin[:, c] = 255
        assert picture_panels(lined) == 1, at
        doubled = np.repeat(np.repeat(thin, 2, axis=0), 2, axis=1)  # a screenshot at twice the resolution
        assert picture_panels(doubled) == 1, at


def test_panel_ranges_and_bodies_standing_in_two_panels_at_one_height() -> None:
    from openspine.scope import bodies_in_panels_side_by_side, panel_of, panel_ranges

    rng = np.random.default_rng(1)
    scan = rng.integers(1, 255, (200, 100)).astype(np.uint8)
    ranges = panel_ranges(np.hstack([scan, np.zeros((200, 10), np.uint8), scan]))
    assert ranges == [(0, 100), (110, 210)] and panel_ranges(scan) == []
    assert panel_of(50, ranges) == 0 and panel_of(105, ranges) is None and panel_of(150, ranges) == 1
    # one spine's twin in each panel, at one height (rows in pixels of 0.5 mm)
    assert bodies_in_panels_side_by_side([(40, 50), (42, 160)], ranges, 0.5)
    # a spine that a stripe crosses: its neighbours either side a level apart (20 mm)
    assert not bodies_in_panels_side_by_side([(40, 90), (80, 120)], ranges, 0.5)


def test_a_refusal_s_reason_is_logged_once_for_every_step_it_stopped(caplog) -> None:  # type: ignore[no-untyped-def]
    from openspine.analysis import _say_not_run

    with caplog.at_level("WARNING", logger="openspine"):
        _say_not_run({"labelling": "why", "grading": "why", "orientation": "other"})
    said = [r.getMessage() for r in caplog.records]
    assert said == ["labelling and grading not run: why", "orientation not run: other"]


def test_a_header_standing_against_an_image_that_leans_elsewhere_is_said() -> None:
    # a T1 slice under a T2 header, read T1 at 0.67 with fluid between the bars, had been graded without a word
    from openspine.scope import check_named_sequence, uncertain_sequence_flag

    kept = check_named_sequence({"value": "T2", "source": "header"}, {"T1": 0.67, "T2": 0.33}, 0.899)
    assert kept["value"] == "T2"
    note = uncertain_sequence_flag(kept)
    assert note == (
        "sequence_note: read as T2 as the header says, though the image leans to T1 (probability 0.67; spinal fluid "
        "x0.899 of bone); give --sequence if the header is wrong"
    )
    # a weaker lean, an image that agrees, or a STIR header over a T2-looking image: no note
    assert uncertain_sequence_flag(check_named_sequence(kept | {"value": "T2"}, {"T1": 0.45, "T2": 0.4}, 1.0)) is None
    assert uncertain_sequence_flag(check_named_sequence({"value": "T2", "source": "header"}, {"T2": 0.9}, 1.0)) is None
    stir = check_named_sequence({"value": "STIR", "source": "header"}, {"T1": 0.1, "T2": 0.9}, 2.0)
    assert uncertain_sequence_flag(stir) is None


def test_bodies_labelled_lumbar_shallower_than_any_seen_are_flagged_at_the_scale_said() -> None:
    from openspine.scope import (
        LABELS_MAY_BE_WRONG,
        SIZE_ESTIMATED,
        labels_in_scope,
        unseen_depth_reason,
        unseen_size_reasons,
    )

    labels = ["L3", "L4", "L5", "S1"]

    def column(depth: float, gap: float = 35.0) -> list[Vertebra]:
        return [_sized(lab, depth, -gap * i) for i, lab in enumerate(labels)]

    # the seen range starts at 15.7 mm less 2 % (15.386 mm): flagged below it, and told to a tenth rounded down
    assert unseen_depth_reason(column(15.3861)) is None and unseen_depth_reason(column(30.0)) is None
    edge = unseen_depth_reason(column(15.385))
    assert edge is not None and edge.startswith("the bodies labelled lumbar are 15.3 mm deep (front to back)")
    assert "shallower than on any scan the detector was trained and validated on (15.7 mm and more)" in edge
    assert edge.endswith("the voxel or pixel size given may be too small (or the spine a child's)")
    # under 13 mm the detector's labels are all withheld; labels a card lets through that shallow are flagged here
    assert unseen_depth_reason(column(13.0)) is not None and unseen_depth_reason(column(12.99)) is not None
    # a picture's estimated scale is named as such, with how to give the picture's own
    estimated = unseen_depth_reason(column(15.0), SIZE_ESTIMATED)
    assert estimated is not None and "the pixel size estimated from the bodies (--pixel-spacing gives" in estimated
    # with the spacing unseen too, both reasons are given, each flag once with what follows from it
    both = column(14.0, gap=20.5)
    assert len(unseen_size_reasons(both)) == 2
    card = {"scope": {"levels": ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"]}}
    _, _, flags, nothing = labels_in_scope(both, [], card, None)
    ambiguous = [f for f in flags if f.startswith("labelling_ambiguous:")]
    assert nothing is None and len(ambiguous) == 2 and all(f.endswith(LABELS_MAY_BE_WRONG) for f in ambiguous)


def test_bright_fluid_against_a_t1_header_where_the_image_leans_to_other_guesses_other() -> None:
    # bright fluid says "not T1", and cannot tell T2 from other: where the image leans to other, other is the guess
    from openspine.scope import check_named_sequence, uncertain_sequence_flag

    header_t1 = {"value": "T1", "source": "header"}
    leans_other = check_named_sequence(header_t1, {"T1": 0.35, "T2": 0.05, "other": 0.6}, 2.0)
    assert leans_other["value"] is None and leans_other["best_guess"] == "other" and "fluid_says" not in leans_other
    flag = uncertain_sequence_flag(leans_other)
    assert flag is not None and "the image reads as other (probability 0.60; spinal fluid x2.0 of bone)" in flag
    # dark fluid under a T2 header where the image leans to other: the fluid's T1, the image's reading beside it
    header_t2 = {"value": "T2", "source": "header"}
    dark = check_named_sequence(header_t2, {"T1": 0.05, "T2": 0.35, "other": 0.6}, 0.6)
    assert dark["best_guess"] == "T1" and dark["fluid_says"] == "T1"
    said = uncertain_sequence_flag(dark)
    assert said is not None and "says T1, and the image reads other (probability 0.60)" in said
    # a header standing while the image leans to other at 0.5 or more is said too
    note = uncertain_sequence_flag(check_named_sequence(header_t2, {"T1": 0.0, "T2": 0.45, "other": 0.55}, 2.0))
    assert note is not None and note.startswith("sequence_note: read as T2 as the header says, though the image leans")


def test_flagged_labels_at_an_estimated_pixel_size_withhold_the_grades() -> None:
    # the estimate makes any spine's bodies lumbar-sized: a neck picture read so had been labelled L1 ... S1 and graded
    from openspine.analysis import ESTIMATED_FROM_BODIES, _flagged_at_an_estimated_size, _State
    from openspine.scope import FLAGGED_AT_AN_ESTIMATED_SIZE

    estimated = f"pixel_spacing_estimated: 1.137 {ESTIMATED_FROM_BODIES} (no pixel size given)"
    flagged = "labelling_ambiguous: the level fit is uncertain (margin 0.16 levels)"
    assert _flagged_at_an_estimated_size(_State(flags=[estimated, flagged])) == FLAGGED_AT_AN_ESTIMATED_SIZE
    assert _flagged_at_an_estimated_size(_State(flags=[estimated, "vertebra_not_detected: between L2 and L4"]))
    assert _flagged_at_an_estimated_size(_State(flags=[estimated])) is None  # unflagged labels: graded
    assert _flagged_at_an_estimated_size(_State(flags=[flagged])) is None  # a size given: the size rules judge
    # a T1 picture's estimate beside the main series is not the main picture's
    t1 = f"pixel_spacing_estimated (T1): 0.5 {ESTIMATED_FROM_BODIES}"
    assert _flagged_at_an_estimated_size(_State(flags=[t1, flagged])) is None


def test_no_body_in_a_tiny_image_names_its_voxel_size() -> None:
    """An image of 0.007 mm pixels (a few mm across) had been told only that it did not look like a spine (user
    test); an image of a spine's size is told nothing more."""
    from openspine.scope import no_body_reason

    assert no_body_reason({}, None, (2.0, 3.0)).endswith(
        "at its voxel size it is only 2 × 3 mm: if it is a spine image, check its voxel size (the header, or "
        "--pixel-spacing)"
    )
    assert no_body_reason({}, None, (300.0, 250.0)) == (
        "no vertebral body detected: this does not look like a sagittal spine image"
    )


def test_a_body_missed_between_two_labelled_ones_withholds_the_grades_and_names_the_gap() -> None:
    from openspine.scope import missed_body_reason

    assert missed_body_reason(["labelling_ambiguous: no sacrum visible; …", "low_confidence: …"]) is None
    why = missed_body_reason(["vertebra_not_detected: between L3 and L5", "vertebra_not_detected: between T12 and L2"])
    assert why is not None and "(between L3 and L5; between T12 and L2)" in why and "a level off" in why


def test_a_level_fit_without_a_sacrum_anchor_or_a_near_tie_withholds_the_grades() -> None:
    from openspine.detection.flags import MIN_MARGIN
    from openspine.scope import FIT_MARGIN, NEAR_TIE_MARGIN, S1_BY_FIT, unsure_fit_reason

    assert NEAR_TIE_MARGIN < MIN_MARGIN  # a near tie is a flagged margin, not every flagged one
    assert unsure_fit_reason([f"{FIT_MARGIN}0.10 levels)", "labelling_alternative: …"]) is None
    tie = unsure_fit_reason([f"{FIT_MARGIN}0.01 levels)"])
    assert tie is not None and "near tie (margin 0.01 levels)" in tie and "a level off" in tie
    anchorless = unsure_fit_reason([f"{S1_BY_FIT}; the lowest body is S1 by the level fit alone"])
    assert anchorless is not None and "placed by the level fit alone" in anchorless
    assert unsure_fit_reason([]) is None


def test_fluid_brighter_than_on_any_t2_seen_is_a_reason_to_withhold_grades() -> None:
    from openspine.scope import CSF_T2_SEEN_MAX, CSF_UNSEEN_ABOVE, fluid_too_bright_reason

    assert CSF_UNSEEN_ABOVE > CSF_T2_SEEN_MAX
    assert fluid_too_bright_reason(None) is None and fluid_too_bright_reason(CSF_T2_SEEN_MAX) is None
    why = fluid_too_bright_reason(6.04)
    assert why is not None and "6.0 times as bright" in why and "a display gamma" in why
