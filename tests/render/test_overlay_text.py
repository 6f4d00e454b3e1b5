"""What the overlay and the report say in words: the flag banner (whole words, each flag's key and first clause
kept), the same flags in the banner, the report and ``result.flags`` (steps not run apart), the grading a disc is
marked with when the grader has no Pfirrmann head, and an estimated pixel size named beside the grades."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from PIL import ImageDraw

from openspine.analysis import analyze
from openspine.levels import Grading
from openspine.render import overlay
from openspine.render.overlay import banner_lines, disc_labels, legend_title, shown_gradings
from openspine.render.report import render_report
from openspine.results import AnalysisResult, Grade

CHAR_PX = 6.0  # a character's width for banner_lines: 1000 px hold (1000 - 20) / 6 = 163 characters

GRADES_WITHHELD = (
    "grades_withheld: T12-L1, L1-L2, L2-L3, L3-L4, L4-L5, L5-S1 (the grader was trained on T2 only; this scan is "
    "T1 (from the image, probability 1.00))"
)
ESTIMATED = (
    "pixel_spacing_estimated: 0.545 mm per pixel, from the size and spacing of the vertebral bodies (no pixel size "
    "given); grades may differ from those at the true pixel size, and positions and lengths in mm carry its error "
    "(often 10 %, sometimes 30 % or more: docs/reading-scans.md)"
)
NOT_RUN = "no disc level is known (the image shows the cervical spine; the detector was trained on … only)"


@pytest.fixture(scope="module")
def demo() -> AnalysisResult:
    """The analysed demo scan (a NIfTI file; six graded discs)."""
    from openspine.data import demo_scan_path

    return analyze(demo_scan_path())


@pytest.fixture
def drawn() -> Iterator[list[str]]:
    """Every string the overlay draws, in order (ImageDraw.text is recorded, then drawn as usual)."""
    texts: list[str] = []
    real = ImageDraw.ImageDraw.text

    def recording(self, xy, text, *args, **kwargs):  # type: ignore[no-untyped-def]
        texts.append(str(text))
        return real(self, xy, text, *args, **kwargs)

    ImageDraw.ImageDraw.text = recording  # type: ignore[method-assign]
    try:
        yield texts
    finally:
        ImageDraw.ImageDraw.text = real  # type: ignore[method-assign]


def _flags(*flags: str, out_of_scope: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(flags=flags, out_of_scope=out_of_scope)


# --- the banner (D20) ---


def test_a_flag_that_fits_two_lines_is_wrapped_at_spaces_whole() -> None:
    lines = banner_lines(_flags(ESTIMATED), 1000, CHAR_PX)  # type: ignore[arg-type]
    assert len(lines) == 2 and lines[0].startswith("pixel_spacing_estimated: ") and lines[1].startswith("    ")
    assert " ".join(line.strip() for line in lines) == ESTIMATED  # nothing lost, no word split
    assert all(len(line) * CHAR_PX <= 1000 - 20 for line in lines)


def test_a_long_flag_is_cut_at_a_clause_and_its_brackets_closed() -> None:
    # a narrow picture: 60 characters a line, two lines for the flag
    lines = banner_lines(_flags(GRADES_WITHHELD), 380, CHAR_PX)  # type: ignore[arg-type]
    assert len(lines) == 2 and all(len(line) <= 60 for line in lines)
    assert lines[0].startswith("grades_withheld: T12-L1, L1-L2")
    assert lines[1] == "    (the grader was trained on T2 only …)"  # its first clause whole, no half word
    joined = " ".join(lines)
    assert joined.count("(") == joined.count(")")


def test_the_t1_flag_is_not_cut_at_the_default_width() -> None:
    # the user test's T1 slice: the banner ended '(this scan is T1 (from …' at 1000 px
    lines = banner_lines(_flags(GRADES_WITHHELD), 1000, CHAR_PX)  # type: ignore[arg-type]
    assert " ".join(line.strip() for line in lines) == GRADES_WITHHELD and "…" not in "".join(lines)


def test_many_flags_take_one_line_each_and_every_key_is_seen() -> None:
    # up to twice the usual lines, each flag keeps two (at 500 px one line each had cut off every reason)
    flags = [f"flag_{i}: {'reason ' * 30}(why; more)" for i in range(7)]
    lines = banner_lines(_flags(*flags), 1000, CHAR_PX)  # type: ignore[arg-type]
    assert len(lines) == 14 and [line.split(":")[0] for line in lines[::2]] == [f"flag_{i}" for i in range(7)]
    # more flags than that: one line each, the banner grows, none is dropped (the user test's thoraco-lumbar scan
    # had 9 flags and the banner showed 7, the last two, low_confidence among them, only as '2 more')
    many = [f"flag_{i}: {'reason ' * 30}(why; more)" for i in range(14)]
    lines = banner_lines(_flags(*many), 1000, CHAR_PX)  # type: ignore[arg-type]
    assert [line.split(":")[0] for line in lines] == [f"flag_{i}" for i in range(14)]
    assert all(line.endswith("…") for line in lines)


def test_banner_report_and_flags_list_the_same_flags_and_steps_not_run_stand_apart(
    demo: AnalysisResult, drawn: list[str]
) -> None:
    # the SCT cervical scan: three flags on the command line and in the banner, a fourth ('grading not run') in
    # the report's flag list; steps not run are not flags
    flags = (
        "cervical_field_of_view: the image shows the cervical spine (probability 0.95)",
        "labels_withheld: every body (7) and disc (6) (the image shows the cervical spine; …)",
        "low_confidence: 3 of 7 bodies scored below 0.25: unlabelled body #1 (0.00), unlabelled body #2 (0.00), "
        "unlabelled body #7 (0.17)",
    )
    result = dataclasses.replace(demo, flags=flags, steps_not_run={"grading": NOT_RUN})
    result.overlay()
    banner = [t for t in drawn if t.split(":")[0] in {f.split(":")[0] for f in flags}]
    assert banner == list(flags)
    assert not [t for t in drawn if "not run" in t or NOT_RUN in t]
    html = render_report(result, None)
    assert "<h2>Flags (3)</h2>" in html
    listed = html.split("<h2>Flags (3)</h2>")[1].split("</ul>")[0]
    assert listed.count("<li>") == 3 and "not run" not in listed
    assert "<h2>Steps not run (1)</h2>" in html and "<li>grading: no disc level is known" in html


def test_out_of_scope_is_said_apart_from_the_flags_in_the_report(demo: AnalysisResult) -> None:
    result = dataclasses.replace(
        demo, out_of_scope="no vertebral body found", flags=(), steps_not_run={"grading": "no vertebral body found"}
    )
    html = render_report(result, None)
    assert "<strong>Out of scope:</strong> no vertebral body found" in html
    assert "<h2>Flags</h2><p>None.</p>" in html and "Steps not run" not in html  # the same reason, said once


# --- the grading marked at each disc (D16) ---


def _finetuned(result: AnalysisResult, with_pfirrmann: bool) -> AnalysisResult:
    """``result`` as a fine-tuned grader with a 'modic_any' head (and Pfirrmann or not) would give it."""
    lacking = "not available from grader model 'mine': it has no 'pfirrmann' output; add it with 'openspine finetune'"
    discs = []
    for i, d in enumerate(result.discs):
        if not d.grades:  # not graded at all (no level, not requested): stays so
            discs.append(d)
            continue
        p = d.grades[Grading.PFIRRMANN] if with_pfirrmann else Grade(None, None, available=False, note=lacking)
        modic = Grade(i % 2, {"0": 0.3, "1": 0.7} if i % 2 else {"0": 0.7, "1": 0.3})
        discs.append(dataclasses.replace(d, grades={Grading.PFIRRMANN: p, "modic_any": modic}))
    return dataclasses.replace(result, discs=tuple(discs))


def test_without_a_pfirrmann_head_the_discs_show_the_graders_own_grading(
    demo: AnalysisResult, drawn: list[str]
) -> None:
    result = _finetuned(demo, with_pfirrmann=False)
    assert shown_gradings(result) == ("modic_any", [])
    labels = disc_labels(result)
    graded = [(d, lab) for d, lab in zip(result.discs, labels) if d.grades]
    assert graded and all(f"modic_any {d.grades['modic_any'].grade}" in text for d, (text, _) in graded)
    assert all(colour != overlay.UNGRADED_COLOUR for _, (_, colour) in graded)  # graded: not 'not graded'
    assert {colour for _, (_, colour) in graded} == set(overlay.CLASS_COLOURS[:2])  # one colour per class
    assert legend_title(result) == "modic_any (this grader has no Pfirrmann grade):"
    result.overlay()
    assert "modic_any (this grader has no Pfirrmann grade):" in drawn and "Pfirrmann grade:" not in drawn
    assert [t for t in drawn if "modic_any 1" in t] and not [t for t in drawn if " P" in t and t[-1].isdigit()]


def test_with_a_pfirrmann_head_pfirrmann_is_shown_and_the_new_grading_named_beside_it(demo: AnalysisResult) -> None:
    result = _finetuned(demo, with_pfirrmann=True)
    assert shown_gradings(result) == (Grading.PFIRRMANN, ["modic_any"])
    for d, (text, colour) in zip(result.discs, disc_labels(result)):
        if d.grades:
            p = d.grades[Grading.PFIRRMANN].grade
            assert p is not None and f"P{p}" in text and f"modic_any {d.grades['modic_any'].grade}" in text
            assert colour == overlay.PFIRRMANN_COLOURS[p]
    assert legend_title(result) == "Pfirrmann grade:"


def test_the_built_in_grader_still_marks_pfirrmann_and_not_graded_only_where_nothing_was(
    demo: AnalysisResult,
) -> None:
    assert shown_gradings(demo) == (Grading.PFIRRMANN, [])  # the built-in gradings are the report's to list
    ungraded = dataclasses.replace(demo.discs[0], grades={})
    result = dataclasses.replace(demo, discs=(ungraded, *demo.discs[1:]))
    labels = disc_labels(result)
    assert labels[0][1] == overlay.UNGRADED_COLOUR and labels[0][0] == (
        ungraded.level.value if ungraded.level else "disc"
    )
    assert all(colour in overlay.PFIRRMANN_COLOURS.values() for _, colour in labels[1:])
    none = dataclasses.replace(demo, discs=(ungraded,))
    assert shown_gradings(none) == (None, []) and legend_title(none) == "Pfirrmann grade:"


def test_an_unlabelled_disc_is_numbered_on_the_overlay_as_its_flag_names_it(demo: AnalysisResult) -> None:
    unlabelled = dataclasses.replace(demo.discs[1], level=None, grades={})
    flagged = ("not graded: unlabelled disc #2 (level unknown)",)
    result = dataclasses.replace(demo, discs=(demo.discs[0], unlabelled, *demo.discs[2:]), flags=flagged)
    assert disc_labels(result)[1][0] == "disc #2"
    # no flag names it (a series read beside the main one): no number that would point at the main series' disc
    assert disc_labels(dataclasses.replace(result, flags=()))[1][0] == "disc"


# --- an estimated pixel size (D14) ---


def test_the_report_says_an_estimated_pixel_size_is_not_the_files_and_grades_may_differ(demo: AnalysisResult) -> None:
    html = render_report(dataclasses.replace(demo, flags=(ESTIMATED,)), None)
    assert "(estimated, not from the file: see the flag pixel_spacing_estimated)</dd>" in html
    assert "grades may differ from those at the true pixel size" in html.split("Discs × gradings")[1]
    plain = render_report(demo, None)
    assert "estimated" not in plain and "grades may differ" not in plain


def test_the_banner_keeps_the_estimate_and_its_warning_about_grades(demo: AnalysisResult, drawn: list[str]) -> None:
    dataclasses.replace(demo, flags=(ESTIMATED,)).overlay()
    banner = [t for t in drawn if t.startswith(("pixel_spacing_estimated", "    "))]
    assert " ".join(t.strip() for t in banner) == ESTIMATED


def test_the_title_names_an_unsure_sequence_rather_than_a_bare_main() -> None:
    # a T2 image under a T1 header, or an unsure image call, had been titled "main", as if nothing were amiss
    assert overlay._role({"value": "T2", "source": "header"}, "main") == "T2"
    unsure = {"value": None, "source": "image", "best_guess": "T1", "probability": 0.6}
    assert overlay._role(unsure, "main") == "sequence unsure (T1 likeliest)"
    conflict = {"value": None, "source": "header", "header": "T1", "best_guess": "T2", "contradicted_by": "image"}
    assert overlay._role(conflict, "main") == "sequence unsure (header T1, image T2)"
    by_fluid = {**conflict, "fluid_says": "T2", "image_reading": {"value": "T1", "probability": 0.8}}
    assert overlay._role(by_fluid, "main") == "sequence unsure (header T1, spinal fluid T2)"
    assert overlay._role({"value": None, "source": None}, "main") == "main"
    # a series offered as T1 is titled by what it reads as too, and as what it was offered (user test, code review)
    offered = types.SimpleNamespace(role="T1", input=types.SimpleNamespace(sequence={"value": "T2", "source": "image"}))
    assert overlay._other_role(offered) == "offered as T1, T2"
    offered.input.sequence = {"value": "T1", "source": "header"}
    assert overlay._other_role(offered) == "T1"


def test_a_narrow_overlay_wraps_its_legend_and_disclaimer_rather_than_cut_them(demo: AnalysisResult) -> None:
    """At 700 px the legend's last clause ran off the right edge (regression sweep)."""
    from openspine.render.overlay import MARKS, disclaimer_lines, marks_lines
    from openspine.vocabulary import DISCLAIMER

    def measure(text: str) -> float:
        return 7.0 * len(text)

    for width in (400, 700, 1000, 2000):
        marks, disclaimer = marks_lines(width, measure), disclaimer_lines(width, measure)

        def words(lines: list[str] | tuple[str, ...]) -> list[str]:
            return " ".join(lines).replace(";", "").split()

        assert words(marks) == words(MARKS) and words(disclaimer) == words([DISCLAIMER])  # nothing lost or cut
        assert all(measure(line) <= width - 20 for line in marks + disclaimer)
    assert len(marks_lines(400, measure)) > 1 and len(marks_lines(2000, measure)) == 1
    # --levels names the levels graded: the discs outside them are "not graded" with no flag to say why (user test)
    asked = " ".join(marks_lines(1000, measure, ["L4-L5", "L5-S1"]))
    assert asked.endswith("graded only at the levels asked: L4-L5, L5-S1")
    assert marks_lines(1000, measure, "all") == marks_lines(1000, measure)
    default = ["T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]  # result.json's parameters hold the default so
    assert marks_lines(1000, measure, default) == marks_lines(1000, measure)
    narrow, wide = demo.overlay(width=500), demo.overlay(width=1000)
    assert narrow.width == 500 and wide.width == 1000


def test_a_long_series_name_is_shortened_before_the_orientation_note_and_the_legend_keeps_a_margin(
    demo: AnalysisResult,
) -> None:
    """A 105-character series description ran over 'anterior left, head up' and off the panel; at 1600 px the
    disclaimer's last line touched the bottom edge (second user test of pictures)."""
    import numpy as np

    from openspine.render.overlay import BACKGROUND, _shortened_name

    def measure(text: str) -> float:
        return 10.0 * len(text)

    long = "study #3 " + "Wirbelsaule T2 TSE sagittal " * 4
    title = _shortened_name(long, "  |  T2, sagittal slice 29", measure, 400)
    assert measure(title) <= 400 and title.endswith("…  |  T2, sagittal slice 29") and title.startswith("study #3")
    assert _shortened_name("scan", "  |  T2", measure, 400) == "scan  |  T2"
    for width in (500, 1000, 1600):
        bottom = np.asarray(demo.overlay(width=width))[-4:]
        assert (bottom == np.asarray(BACKGROUND)).all(), width  # nothing drawn in the last rows


def test_labels_are_moved_off_each_other_and_into_the_image_area() -> None:
    """A body's label and its neighbouring disc's had run over each other, a top body's under the banner (user
    test): each is moved up or down by the least that clears those drawn before it, inside the image area."""
    from PIL import Image, ImageDraw

    from openspine.render.overlay import _font, _Label, _place_labels

    canvas = Image.new("RGB", (300, 300))
    draw = ImageDraw.Draw(canvas)
    font = _font(14)
    drawn: list[tuple[float, float, float, float]] = []
    real_text = draw.text

    def record(xy, text, **kw):  # type: ignore[no-untyped-def]
        drawn.append(draw.textbbox(xy, text, font=kw["font"], anchor=kw["anchor"], stroke_width=2))
        real_text(xy, text, **kw)

    draw.text = record  # type: ignore[method-assign]
    labels = [
        _Label((150, 150), "S1", "rm", (255, 255, 255), font),
        _Label((140, 150), "L5-S1  P5", "lm", (255, 255, 255), font),  # over the S1 label
        _Label((150, 52), "T11 0.24", "rm", (255, 255, 255), font),  # under a banner that ends at 50
    ]
    _place_labels(draw, labels, top=50, bottom=290)
    s1, disc, top = drawn
    first = draw.textbbox((150, 150), "S1", font=font, anchor="rm", stroke_width=2)
    assert s1 == pytest.approx(first)  # the first stays where it was asked for
    assert disc[3] <= s1[1] or disc[1] >= s1[3], "the disc's label clears the body's"
    assert top[1] >= 50
