"""overlay.png: the mid-sagittal slice with every vertebral body outlined and named and every disc marked
with its level and Pfirrmann grade, shown in radiological orientation (anterior left, head up) whatever the
input orientation, plus a strip of neighbouring slices for multi-slice scans. Drawn with Pillow only."""

from __future__ import annotations

import functools
import io
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from .._version import __version__
from ..levels import Grading, GradingName, grading_name
from ..scan import SagittalView
from ..vocabulary import DISCLAIMER, LOW_SCORE, T1_NOT_USED, score_text, set_aside_by
from .labelmap import drawable
from .report import LOW_CONFIDENCE, grading_columns, series_text

if TYPE_CHECKING:  # the records are read, never built here: results imports this module for result.overlay()
    from ..results import AnalysisResult, Grade, SliceOutline

# Pfirrmann 1 (healthy) → 5 (collapsed): a colour-blind-safe sequential ramp, light to dark red
PFIRRMANN_COLOURS = {
    1: (26, 152, 80),
    2: (145, 207, 96),
    3: (254, 224, 139),
    4: (252, 141, 89),
    5: (215, 48, 39),
}
UNGRADED_COLOUR = (160, 160, 255)
# the classes of a grading other than Pfirrmann (a fine-tuned one): Okabe-Ito, no order implied, none lavender
CLASS_COLOURS = ((230, 159, 0), (204, 121, 167), (240, 228, 66), (0, 158, 115), (213, 94, 0), (0, 114, 178))
VERTEBRA_COLOUR = (0, 220, 255)
TEXT_COLOUR = (255, 255, 255)
BACKGROUND = (16, 16, 16)
BANNER_COLOUR = (120, 60, 0)  # flags: amber banner under the title
NOTE_COLOUR = (60, 60, 60)  # a panel's notes where it has no flag (a series read beside the main one): grey
LOW_SCORE_COLOUR = (255, 200, 0)  # a body scored below vocabulary.LOW_SCORE: dashed, with its score
MAX_BANNER_LINES = 8  # up to twice this, a flag takes one or two lines; beyond it one line each


# PNG text key that marks openspine's own pictures: the picture reader refuses a PNG carrying it
OUTPUT_KEY = "openspine-output"


def overlay_png_bytes(image: Image.Image) -> bytes:
    """The overlay as PNG bytes, marked as openspine's output (``openspine-output: overlay`` and ``Software``)."""
    info = PngInfo()
    info.add_text(OUTPUT_KEY, "overlay")
    info.add_text("Software", f"openspine {__version__}")
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6, pnginfo=info)
    return buf.getvalue()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


# symbols the built-in font lacks, spelt in ASCII
_ASCII_SYMBOLS = {"×": "x", "–": "-", "—": "-", "≥": ">=", "≤": "<=", "µ": "u"}


@functools.cache
def _has_glyph(char: str) -> bool:
    """Whether the built-in font draws ``char`` (a missing one comes out as the 'no glyph' box)."""
    font = _font(16)
    try:
        mask = font.getmask(char)
        missing = font.getmask("\uffff")  # a noncharacter: never in a font
    except (UnicodeError, OSError):  # a bitmap font without FreeType: Latin-1 only
        return False
    return (mask.size, bytes(mask)) != (missing.size, bytes(missing))


def printable(text: str) -> str:
    """``text`` with the characters the built-in font cannot draw (CJK, Cyrillic, accented letters ...) replaced:
    by their unaccented letter where there is one, else '?', so that no box is drawn."""
    out = []
    for char in text:
        if char.isascii() or _has_glyph(char):
            out.append(char)
        elif char in _ASCII_SYMBOLS:
            out.append(_ASCII_SYMBOLS[char])
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            out.append(base if base and all(c.isascii() or _has_glyph(c) for c in base) else "?")
    return "".join(out)


def window(image: NDArray[np.floating]) -> NDArray[np.uint8]:
    """Grey levels for display: the 1st–99th percentile range stretched to 0–255."""
    finite = image[np.isfinite(image)]
    lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    return (np.clip((image - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def mid_slice(view: SagittalView, result: AnalysisResult) -> int:
    """The internal sagittal slice through the middle of the detected spine (the volume's middle if none)."""
    ks = [view.from_input_voxel(np.array(v.centroid_voxel))[2] for v in result.vertebrae]
    ks = [k for k in ks if np.isfinite(k)]
    if not ks:
        return view.scan.shape[2] // 2
    return int(np.clip(round(float(np.median(ks))), 0, view.scan.shape[2] - 1))


@dataclass(frozen=True)
class _Panel:
    """Maps internal (row, column) voxel coordinates of one slice to pixels of the picture."""

    x0: int
    y0: int
    scale_row: float
    scale_col: float

    def xy(self, row: float, col: float) -> tuple[float, float]:
        return self.x0 + (col + 0.5) * self.scale_col, self.y0 + (row + 0.5) * self.scale_row


def _slice_image(view: SagittalView, k: int, height_px: int) -> tuple[Image.Image, float, float]:
    arr = np.asarray(view.scan.array[:, :, k], dtype=np.float32)
    sr, sc, _ = view.scan.spacing
    scale_row = height_px / arr.shape[0]
    scale_col = scale_row * sc / sr  # square display pixels in mm
    width_px = max(1, round(arr.shape[1] * scale_col))
    img = Image.fromarray(window(arr)).resize((width_px, height_px), Image.Resampling.BILINEAR)
    return img.convert("RGB"), scale_row, scale_col


def _outline_on(outlines: tuple[SliceOutline, ...], view: SagittalView, k: int) -> NDArray[np.float64] | None:
    """Internal (row, col) corners of the outline nearest to slice k (within 1 slice), or None."""
    best, best_d = None, 2.0
    for o in outlines:
        pts = np.array([view.from_input_voxel(np.array(c)) for c in o.corners_voxel])
        if not drawable(pts):
            continue
        d = abs(float(np.mean(pts[:, 2])) - k)
        if d < best_d:
            best, best_d = pts[:, :2], d
    return best


def banner_lines(result: AnalysisResult, width: int, char_px: float | Callable[[str], float]) -> list[str]:
    """The lines of the flag banner: out-of-scope reason first, then every flag of ``result.flags`` (the ones the
    command line prints; ``steps_not_run`` is not a flag), each wrapped at spaces onto at most two lines (one line
    where that would take more than twice :data:`MAX_BANNER_LINES`: the banner grows, no flag is dropped) and, where
    longer, shortened at a clause (``; ``, `` (``, ``, ``) so that its key and first clause stay whole: the full
    text is in result.json and report.html. ``char_px`` is a character's width in pixels, or a function measuring a
    line's width."""
    items = ([f"OUT OF SCOPE: {result.out_of_scope}"] if result.out_of_scope else []) + list(result.flags)
    if not items:
        return []
    measure = char_px if callable(char_px) else (lambda text, px=float(char_px): len(text) * px)
    room = max(20 * measure("n"), float(width - 20))
    lines = [line for t in items for line in _wrap(t, measure, room, 2)]
    if len(lines) > 2 * MAX_BANNER_LINES:  # very many flags: one line each, however many, so that none is left out
        lines = [line for t in items for line in _wrap(t, measure, room, 1)]
    return lines


_INDENT = "    "  # a flag's second line, set in so that each flag's key starts a line
_CLAUSE_ENDS = ("; ", " (", ", ")


def _wrap(text: str, measure: Callable[[str], float], room: float, max_lines: int) -> list[str]:
    """``text`` on at most ``max_lines`` lines of ``room`` pixels, broken at spaces (a word wider than a line, such
    as a long path, at a character); what does not fit is left out (see :func:`_shortened`)."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else (_INDENT if lines else "") + word
        if measure(candidate) <= room:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = (_INDENT if lines else "") + word
        while measure(line) > room and len(line) > len(_INDENT) + 1:
            cut = max(len(_INDENT) + 1, *(n for n in range(1, len(line)) if measure(line[:n]) <= room))
            lines.append(line[:cut])
            line = _INDENT + line[cut:]
        if len(lines) >= max_lines:
            return _shortened(lines[:max_lines], measure, room)
    lines.append(line)
    return lines if len(lines) <= max_lines else _shortened(lines[:max_lines], measure, room)


def _shortened(lines: list[str], measure: Callable[[str], float], room: float) -> list[str]:
    """``lines`` (the start of a longer text) with the last one ending in '…' and the brackets left open closed:
    cut at its last clause boundary (``; ``, `` (``, ``, ``) where that keeps more than a third of it, else at its
    last space, until it fits ``room``. A reader keeps whole clauses, never half a word."""
    head, last = lines[:-1], lines[-1]
    opened_before = sum(line.count("(") - line.count(")") for line in head)
    while True:
        clause = max(last.rfind(sep) for sep in _CLAUSE_ENDS)
        cut = clause if clause > len(last) // 3 else last.rfind(" ")
        if cut <= len(_INDENT):  # one word left: it stays, cut by characters
            cut = len(last) - 1
        last = last[:cut].rstrip(" ;,")
        ending = " …" + ")" * max(0, opened_before + last.count("(") - last.count(")"))
        if measure(last + ending) <= room or len(last) <= 1:
            return [*head, last + ending]


def _shortened_name(name: str, rest: str, measure: Callable[[str], float], room: float) -> str:
    """``name + rest`` where it fits ``room`` pixels, else the name cut short with '…' (a long series description
    had run over the orientation note and off the panel)."""
    if measure(name + rest) <= room:
        return name + rest
    while len(name) > 1 and measure(f"{name}…{rest}") > room:
        name = name[:-1]
    return f"{name.rstrip()}…{rest}"


def _scale_height(small_px: int) -> int:
    """The colour scale's swatches: as tall as the legend's text, at least 16 px."""
    return max(16, small_px + 4)


def _dashed_polygon(draw: ImageDraw.ImageDraw, pts: list[tuple[float, float]], colour: Any, width: int) -> None:
    """A closed polygon drawn as dashes (an uncertain body)."""
    dash = 3.0 * max(2, width)
    for a, b in zip(pts, [*pts[1:], pts[0]]):
        d = float(np.hypot(b[0] - a[0], b[1] - a[1]))
        n = max(1, int(d // dash))
        for i in range(0, n, 2):
            t0, t1 = i / n, min(1.0, (i + 1) / n)
            p0 = (a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0)
            p1 = (a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1)
            draw.line([p0, p1], fill=colour, width=width)


def render_overlay(view: SagittalView, result: AnalysisResult, width: int = 1000) -> Image.Image:
    """Draw the overlay for ``result`` on ``view`` (the scan in the internal layout) at ``width`` pixels.

    ``width`` is each panel's: with a T1 series beside the main one the picture is two panels wide. Flags (and an
    out-of-scope reason) are printed in a banner under the title; a body scored below
    :data:`openspine.vocabulary.LOW_SCORE` is outlined with dashes and its score; a withheld label is shown as '?'.
    A series read beside the main one (``result.other_series``, e.g. the T1) is drawn to its right, same height,
    with its own bodies and the main series' grades at the discs matched to it.
    """
    main = _render_series(view, result, width, _role(result.input.sequence, "main"))
    others = [o for o in result.other_series if o.view is not None]
    if not others:
        return main
    panels = [main]
    for o in others:
        beside = _as_result(result, o)
        warns = (
            any(f.startswith(T1_NOT_USED) for f in result.flags) or bool(o.match.flags) or bool(_own_flags(result, o))
        )
        if o.view is not None:
            panels.append(
                _render_series(o.view, beside, width, _other_role(o), BANNER_COLOUR if warns else NOTE_COLOUR)
            )
    out = Image.new("RGB", (sum(p.width for p in panels) + 8 * (len(panels) - 1), max(p.height for p in panels)))
    out.paste(BACKGROUND, (0, 0, out.width, out.height))
    x = 0
    for panel in panels:
        out.paste(panel, (x, 0))
        x += panel.width + 8
    return out


def _role(sequence: Any, fallback: str) -> str:
    """How the title names the series: its sequence, or that the sequence is unsure (with the likeliest one) where
    it is not known, rather than a bare "main" that reads as nothing amiss."""
    seq = sequence or {}
    if seq.get("value"):
        return str(seq["value"])
    if seq.get("header") and seq.get("best_guess"):  # a header's word set aside
        said_by, read_by = seq.get("header_is") or "header", set_aside_by(seq)
        return f"sequence unsure ({said_by} {seq['header']}, {read_by} {seq['best_guess']})"
    reading = seq.get("image_reading")
    if seq.get("contradicted_by") == "csf_over_body" and isinstance(reading, dict):  # both witnesses named
        return f"sequence unsure (image {reading.get('value')}, spinal fluid {seq.get('best_guess')})"
    if seq.get("best_guess"):
        return f"sequence unsure ({seq['best_guess']} likeliest)"
    return fallback


def _other_role(other: Any) -> str:
    """How the title names a series read beside the main one: its role where it reads so, else as what it was
    offered and what it reads as (a "T1" whose image reads as T2 had been titled T1, then T2 as the main panel;
    user test, code review)."""
    reads = _role(other.input.sequence, other.role)
    return reads if reads == other.role else f"offered as {other.role}, {reads}"


def _as_result(result: AnalysisResult, other: Any) -> AnalysisResult:
    """The other series as a result to draw: its bodies, its discs carrying the grades of the main series' disc
    matched to them (the same disc), its match flags and why it was not used."""
    from dataclasses import replace

    matched = set(other.match.discs)
    grades = {d.level: d.grades for d in result.discs if d.level is not None and d.level.value in matched}
    discs = tuple(replace(d, grades=grades.get(d.level, {})) for d in other.discs)
    shown = any(g.grade is not None for d in discs for g in d.grades.values())
    main = _role(result.input.sequence, "main")
    # the grades at its discs are the main series' (user test: they read as grades read from the T1)
    whose = (f"grades drawn are the {main} series' at the discs matched to it",) if shown else ()
    notes = ((f"not used for grading: {other.note}",) if other.note else ()) + whose
    flags = _own_flags(result, other) + tuple(other.match.flags) + notes
    return replace(
        result, input=other.input, vertebrae=other.vertebrae, discs=discs, flags=flags, out_of_scope=None,
        other_series=(),
    )  # fmt: skip


def _own_flags(result: AnalysisResult, other: Any) -> tuple[str, ...]:
    """The flags said of a series read beside the main one (``low_confidence (T1): …``): its panel draws what they
    name (the dashed bodies, the '?'), so its banner carries them too."""
    return tuple(f for f in result.flags if f.split(":", 1)[0].endswith(f" ({other.role})"))


def _render_series(
    view: SagittalView,
    result: AnalysisResult,
    width: int,
    role: str,
    banner_colour: tuple[int, int, int] = BANNER_COLOUR,
) -> Image.Image:
    """One series' overlay (see :func:`render_overlay`); ``role`` names it in the title (e.g. T2, T1);
    ``banner_colour`` is grey for a banner of notes only (a series read beside the main one, with no flag of its
    own)."""
    k = mid_slice(view, result)
    n_slices = view.scan.shape[2]
    neighbours = [j for j in (k - 2, k - 1, k + 1, k + 2) if 0 <= j < n_slices] if n_slices > 1 else []
    small_px = max(12, width // 66)
    font, small = _font(max(14, width // 55)), _font(small_px)
    banner = banner_lines(result, width, lambda text: small.getlength(printable(text)))
    banner_h = (len(banner) * (small_px + 4) + 8) if banner else 0
    marks = marks_lines(width, lambda text: small.getlength(printable(text)), result.parameters.get("grade_levels"))
    disclaimer = disclaimer_lines(width, lambda text: small.getlength(printable(text)))
    title_h = 44 + banner_h
    # the colour scale's row, then the marks and the disclaimer, and a margin below: all grow with the font
    legend_h = 20 + _scale_height(small_px) + (len(marks) + len(disclaimer)) * (small_px + 4) + 2 + small_px
    sr, sc, _ = view.scan.spacing
    aspect = view.scan.shape[0] * sr / (view.scan.shape[1] * sc)  # height / width in mm
    main_w = int(width * (0.74 if neighbours else 1.0))
    main_h = max(200, min(int(main_w * aspect), 1100))
    canvas = Image.new("RGB", (width, title_h + main_h + legend_h), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    # a short, wide view (a strip a few bodies tall) fits the panel's width, centred in its height
    img, s_row, s_col = _slice_image(view, k, max(1, min(main_h, int(main_w * aspect))))
    x0, y0 = max(0, (main_w - img.width) // 2), title_h + (main_h - img.height) // 2
    canvas.paste(img, (x0, y0))
    panel = _Panel(x0, y0, s_row, s_col)

    series = series_text(result.input.series)  # which series of a study: '#4 T1 TSE SAG'
    name = printable((result.input.path or "scan").split("/")[-1] + (f" {series}" if series else ""))
    orientation = "anterior left, head up"
    if result.out_of_scope:  # not analysed: the picture is shown as stored, with no claim about its plane
        where, room = "not analysed", width - 20
    else:
        where = f"{role}, sagittal slice {view.input_slice_index(k)}"
        room = width - 30 - int(small.getlength(orientation))
        draw.text((width - 10, 12), orientation, fill=(200, 200, 200), font=small, anchor="ra")
    title = _shortened_name(name, f"  |  {where}", lambda text: font.getlength(text), room)
    draw.text((10, 8), title, fill=TEXT_COLOUR, font=font)
    if banner:
        draw.rectangle([0, 40, width, 40 + banner_h], fill=banner_colour)
        for i, line in enumerate(banner):
            draw.text((10, 44 + i * (small_px + 4)), printable(line), fill=TEXT_COLOUR, font=small)

    labels = _draw_vertebrae(draw, view, result, k, panel, font, line_w=max(2, width // 400))
    labels += _draw_discs(draw, view, result, panel, small, radius=max(5, width // 120))
    _place_labels(draw, labels, top=title_h, bottom=title_h + main_h)
    if neighbours:  # a strip of neighbouring slices on the right, each labelled with its input slice index
        strip_x, strip_w = main_w + 8, width - main_w - 16
        thumb_h = (main_h - 8 * (len(neighbours) - 1)) // len(neighbours)
        y = title_h
        for j in neighbours:
            thumb, _, _ = _slice_image(view, j, thumb_h)
            thumb.thumbnail((strip_w, thumb_h))
            canvas.paste(thumb, (strip_x, y))
            draw.text((strip_x + 4, y + 4), f"slice {view.input_slice_index(j)}", fill=TEXT_COLOUR, font=small)
            y += thumb_h + 8

    _draw_legend(draw, result, title_h + main_h + 10, small, small_px, marks, disclaimer)
    return canvas


_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class _Label:
    """A text to draw at ``xy`` (PIL ``anchor``: 'rm' ends it there, 'lm' starts it there)."""

    xy: tuple[float, float]
    text: str
    anchor: str
    colour: tuple[int, int, int]
    font: _Font


def _place_labels(draw: ImageDraw.ImageDraw, labels: list[_Label], top: float, bottom: float) -> None:
    """Draw ``labels`` in turn, each moved up or down by the least (in steps of a fifth of its height, at most twice
    its height) that keeps it clear of those drawn before it and between ``top`` and ``bottom`` (the image area):
    a body's label and its neighbouring disc's had run over each other, and a top body's under the banner (user
    test). Where no such place is near, it stays where it was asked for."""
    placed: list[tuple[float, float, float, float]] = []
    for label in labels:
        box = draw.textbbox(label.xy, label.text, font=label.font, anchor=label.anchor, stroke_width=2)
        height = box[3] - box[1]
        steps = [0.0] + [sign * height * i / 5 for i in range(1, 11) for sign in (1, -1)]
        free = (
            dy
            for dy in steps
            if top <= box[1] + dy
            and box[3] + dy <= bottom
            and not any(box[0] < b[2] and b[0] < box[2] and box[1] + dy < b[3] and b[1] < box[3] + dy for b in placed)
        )
        dy = next(free, 0.0)
        xy = (label.xy[0], label.xy[1] + dy)
        draw.text(xy, label.text, fill=label.colour, font=label.font, anchor=label.anchor, stroke_width=2,
                  stroke_fill=(0, 0, 0))  # fmt: skip
        placed.append((box[0], box[1] + dy, box[2], box[3] + dy))


def _draw_vertebrae(
    draw: ImageDraw.ImageDraw,
    view: SagittalView,
    result: AnalysisResult,
    k: int,
    panel: _Panel,
    font: _Font,
    line_w: int,
) -> list[_Label]:
    """Each body's outline on slice ``k`` (dashed below LOW_SCORE) or its centroid; its level as a label to place."""
    labels = []
    for v in result.vertebrae:
        corners = _outline_on(v.outlines, view, k)
        low = v.score < LOW_SCORE
        colour = LOW_SCORE_COLOUR if low else VERTEBRA_COLOUR
        label = (v.label.value if v.label else "?") + (f" {score_text(v.score)}" if low else "")
        if corners is not None:
            pts = [panel.xy(r, c) for r, c in corners]
            if low:
                _dashed_polygon(draw, pts, colour, line_w)
            else:
                draw.line([*pts, pts[0]], fill=colour, width=line_w)
            anchor_xy = (min(p[0] for p in pts) - 6, float(np.mean([p[1] for p in pts])))
        else:
            c = view.from_input_voxel(np.array(v.centroid_voxel))
            if not drawable(c):
                continue
            x, y = panel.xy(c[0], c[1])
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], outline=colour)
            anchor_xy = (x - 8, y)  # beside the marker, as beside an outline: the text never hides it
        labels.append(_Label(anchor_xy, label, "rm", colour, font))
    return labels


def shown_gradings(result: AnalysisResult) -> tuple[GradingName | None, list[GradingName]]:
    """The grading the overlay colours the discs by, and the fine-tuned gradings it names beside it.

    The first is Pfirrmann where the grader has a Pfirrmann head, else the first grading it has (built-in ones in
    their standard order, then its own by name), None when no disc was graded by anything. The second are the
    grader's own gradings (those a fine-tuned model adds; not the other built-in ones, which the report lists).
    A grading the grader has no head for is one whose every disc says 'not available' (a fine-tuned model without
    the Pfirrmann head still reports pfirrmann, unavailable, at each disc)."""
    has = [g for g in grading_columns(result) if any(_from_grader(d.grades.get(g)) for d in result.discs)]
    shown = Grading.PFIRRMANN if Grading.PFIRRMANN in has else (has[0] if has else None)
    return shown, [g for g in has if not isinstance(g, Grading) and g != shown]


def _from_grader(g: Grade | None) -> bool:
    """Whether a grade came from a head of the grader (graded, withheld or not graded by it), not from its lack."""
    return g is not None and (g.available or not (g.note or "").startswith("not available"))


def _mark(grading: GradingName, g: Grade | None) -> str | None:
    """How one grade is written at its disc ('P3', 'modic_any 1', 'withheld'), None where there is none."""
    if g is not None and g.available and g.grade is not None:
        text = f"P{g.grade}" if grading == Grading.PFIRRMANN else f"{grading_name(grading)} {g.grade}"
        p = g.probability
        # an unsure grade (the report highlights it) carries its probability, so it does not read as a firm one
        return f"{text} ({p:.2f})" if p is not None and round(p, 2) < LOW_CONFIDENCE else text
    if g is not None and (g.note or "").startswith("withheld"):
        return "withheld" if grading == Grading.PFIRRMANN else f"{grading_name(grading)} withheld"
    return None


def _classes(result: AnalysisResult, grading: GradingName) -> list[int]:
    """The classes of a grading as its grades' probabilities name them (Pfirrmann: 1 … 5), in order."""
    if grading == Grading.PFIRRMANN:
        return list(PFIRRMANN_COLOURS)
    names = {k for d in result.discs for g in [d.grades.get(grading)] if g and g.probabilities for k in g.probabilities}
    return sorted(int(k) for k in names if k.lstrip("-").isdigit())


def _class_colours(result: AnalysisResult, grading: GradingName) -> dict[int, tuple[int, int, int]]:
    """Pfirrmann's green-to-red ramp; another grading's classes in distinct colour-blind-safe colours (Okabe-Ito),
    none of them implying that a higher class is worse, since a fine-tuned grading's meaning is its own."""
    if grading == Grading.PFIRRMANN:
        return dict(PFIRRMANN_COLOURS)
    return {c: CLASS_COLOURS[i % len(CLASS_COLOURS)] for i, c in enumerate(_classes(result, grading))}


def disc_labels(result: AnalysisResult) -> list[tuple[str, tuple[int, int, int]]]:
    """The text and colour of each disc's mark, in ``result.discs`` order: its level, then the grade of the shown
    grading (:func:`shown_gradings`) and of the grader's own gradings. 'not graded' colour only where no grading
    of the disc has a grade; a disc graded, but not by the shown grading, is drawn white."""
    shown, own = shown_gradings(result)
    colours = _class_colours(result, shown) if shown is not None else {}
    out = []
    numbered = any("unlabelled disc #" in f for f in result.flags)
    for i, d in enumerate(result.discs):
        marks = [m for g in ([shown] if shown is not None else []) + own if (m := _mark(g, d.grades.get(g)))]
        # an unlabelled disc is numbered as the flags name it ("not graded: unlabelled disc #2"), where they do (the
        # discs of a series read beside the main one are named by no flag: a number would point at the main's)
        name = f"disc #{i + 1}" if numbered else "disc"
        text = "  ".join([d.level.value if d.level else name, *marks])
        g = d.grades.get(shown) if shown is not None else None
        if g is not None and g.available and g.grade is not None:
            colour = colours.get(g.grade, TEXT_COLOUR)
        elif d.graded:
            colour = TEXT_COLOUR
        else:
            colour = UNGRADED_COLOUR
        out.append((text, colour))
    return out


def _draw_discs(
    draw: ImageDraw.ImageDraw, view: SagittalView, result: AnalysisResult, panel: _Panel, font: _Font, radius: int
) -> list[_Label]:
    """Each disc as a dot in the colour of its grade (:func:`disc_labels`); its level and grades as a label."""
    r = radius
    labels = []
    for d, (text, colour) in zip(result.discs, disc_labels(result)):
        c = view.from_input_voxel(np.array(d.centroid_voxel))
        if not drawable(c):
            continue
        x, y = panel.xy(c[0], c[1])
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=(0, 0, 0))
        # right of the dot, or left of it where the text would run off the picture (a narrow one): grades stay whole
        right = x + 2.2 * r + draw.textlength(text, font=font) <= draw.im.size[0] - 4
        xy, anchor = ((x + 2.2 * r, y), "lm") if right else ((x - 2.2 * r, y), "rm")
        labels.append(_Label(xy, text, anchor, legible(colour), font))
    return labels


def legible(colour: tuple[int, int, int], least: float = 150.0) -> tuple[int, int, int]:
    """``colour`` mixed with white until its luminance is at least ``least`` (of 255): text in a dark colour (the
    dark green of Pfirrmann 1) is hard to read over a dark image; the dot beside it keeps the scale's colour."""
    lum = 0.2126 * colour[0] + 0.7152 * colour[1] + 0.0722 * colour[2]
    if lum >= least:
        return colour
    t = (least - lum) / (255.0 - lum)
    r, g, b = (round(c + (255 - c) * t) for c in colour)
    return r, g, b


def legend_title(result: AnalysisResult) -> str:
    """The name of the colour scale: 'Pfirrmann grade:', or the grading shown instead and that the grader has no
    Pfirrmann grade (a fine-tuned model without that head)."""
    shown, _ = shown_gradings(result)
    if shown is None or shown == Grading.PFIRRMANN:
        return "Pfirrmann grade:"
    return f"{grading_name(shown)} (this grader has no Pfirrmann grade):"


MARKS = (
    "outline: vertebral body, level on the anterior side",
    f"dashed: score < {LOW_SCORE}",
    "? = label withheld",
    f"(0.49) after a grade: its probability, shown where below {LOW_CONFIDENCE}",
)


def marks_lines(width: int, measure: Callable[[str], float], levels_asked: Any = None) -> list[str]:
    """What the marks mean (:data:`MARKS`), joined by '; ' on as few lines as fit ``width`` pixels: a narrow overlay
    wraps the legend rather than cut it at its right edge. ``levels_asked``, a list (``--levels``), is named: the
    discs outside it are marked "not graded" (with no flag, the overlay had not said why; user test)."""
    from ..levels import levels_given

    given = levels_given(levels_asked)
    asked = [f"graded only at the levels asked: {', '.join(given)}"] if given else []
    return _joined((*MARKS, *asked), "; ", width, measure)


def disclaimer_lines(width: int, measure: Callable[[str], float]) -> list[str]:
    """The disclaimer on one line, or broken after its colon where the overlay is too narrow for it."""
    head, tail = DISCLAIMER.split(": ", 1)
    return _joined((f"{head}:", tail), " ", width, measure)


def _joined(parts: tuple[str, ...], sep: str, width: int, measure: Callable[[str], float]) -> list[str]:
    """``parts`` joined by ``sep`` on lines of ``width`` pixels less the margins; a part wider than a line is
    broken at spaces (:func:`_wrap`)."""
    room = float(width - 20)
    lines: list[str] = []
    for part in parts:
        if lines and measure(f"{lines[-1]}{sep}{part}") <= room:
            lines[-1] = f"{lines[-1]}{sep}{part}"
        else:
            lines.extend(_wrap(part, measure, room, 4) if measure(part) > room else [part])
    return lines


def _draw_legend(
    draw: ImageDraw.ImageDraw,
    result: AnalysisResult,
    y: int,
    small: _Font,
    small_px: int,
    marks: list[str],
    disclaimer: list[str],
) -> None:
    """The colour scale of the grading shown, what the marks mean, and the disclaimer (the disclaimer alone where
    nothing is drawn: a scan refused with no body found)."""
    if result.vertebrae or result.discs:
        _draw_grade_scale(draw, result, y, small, _scale_height(small_px))
        y += _scale_height(small_px) + 10
        for i, line in enumerate(marks):
            draw.text((10, y + i * (small_px + 4)), line, fill=(170, 170, 170), font=small)
        y += len(marks) * (small_px + 4) + 2
    for i, line in enumerate(disclaimer):
        draw.text((10, y + i * (small_px + 4)), line, fill=(170, 170, 170), font=small)


def _draw_grade_scale(draw: ImageDraw.ImageDraw, result: AnalysisResult, y: int, small: _Font, h: int) -> None:
    """The colour scale of the grading shown, its swatches ``h`` pixels tall (and wide enough for their digits)."""
    shown, _ = shown_gradings(result)
    title = legend_title(result)
    draw.text((10, y + h // 2), title, fill=TEXT_COLOUR, font=small, anchor="lm")
    x = 10 + int(draw.textlength(title, font=small)) + 10
    w = max(34, 2 * h)
    colours = _class_colours(result, shown) if shown is not None else dict(PFIRRMANN_COLOURS)
    for grade_value, colour in colours.items():
        draw.rectangle([x, y, x + w, y + h], fill=colour)
        draw.text((x + w // 2, y + h // 2), str(grade_value), fill=(0, 0, 0), font=small, anchor="mm")
        x += w + 4
    draw.rectangle([x + 6, y, x + 6 + w, y + h], fill=UNGRADED_COLOUR)
    draw.text((x + 12 + w, y + h // 2), "not graded", fill=TEXT_COLOUR, font=small, anchor="lm")
