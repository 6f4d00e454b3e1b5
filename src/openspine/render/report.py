"""report.html: one self-contained file (images embedded, no network access) summarising one analysis."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..levels import Grading, GradingName, grading_name
from ..vocabulary import DISCLAIMER, LOW_SCORE, describe_source, score_text

if TYPE_CHECKING:
    from ..results import AnalysisResult

LOW_CONFIDENCE = 0.6  # a grade whose probability is below this is highlighted for review

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1b1b;max-width:1100px}
h1{font-size:1.5em;margin-bottom:0} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.disclaimer{background:#fff4e5;border-left:4px solid #f0a020;padding:8px 12px;margin:12px 0}
table{border-collapse:collapse;font-size:.92em} td,th{border:1px solid #ccc;padding:4px 8px;text-align:center}
th{background:#f2f2f2} td.low{background:#ffe0e0;font-weight:600} td.na{color:#999}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px} dt{font-weight:600}
img{max-width:100%;border:1px solid #ccc} .flags li{color:#a03000} code{font-size:.9em}
.wide{overflow-x:auto;max-width:100%}
"""


def _png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def grading_columns(result: AnalysisResult) -> list[GradingName]:
    """Built-in gradings in their standard order, then a fine-tuned model's own gradings by name."""
    present = {g for d in result.discs for g in d.grades}
    own = sorted((g for g in present if not isinstance(g, Grading)), key=grading_name)
    return [g for g in Grading if g in present] + own


def render_report(
    result: AnalysisResult, overlay_png: bytes | None, grading_meanings: Mapping[str, str] | None = None
) -> str:
    """The HTML text of the report (no patient identifiers: the header fields shown are technical)."""
    e = html.escape
    inp = result.input
    series = inp.series
    rows = [
        ("file", inp.path or "(in memory)"),
        ("format", inp.format),
        ("series", _series_text(series)),
        ("sequence", _recognised(inp.sequence)),
        ("plane", _recognised(inp.plane)),
        ("field of view", _recognised(inp.field_of_view)),
        ("shape", " × ".join(str(n) for n in inp.shape)),
        ("spacing (mm)", " × ".join(f"{s:g}" for s in inp.spacing_mm) + _estimated_note(result, "")),
        ("orientation", _orientation(result)),
        ("way round", _recognised(inp.way_round)),
    ]
    if inp.midline:  # a single slice: how surely it runs through the middle of the spine
        p_off = float(inp.midline["off_midline_probability"])
        rows.append(("off the midline", f"probability {p_off:.2f} (grades withheld at {inp.midline.get('bar', 0.5)})"))
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>openspine report — {e((inp.path or 'scan').split('/')[-1])}</title><style>{_CSS}</style></head><body>",
        f"<h1>openspine report</h1><p>{e((inp.path or 'scan').split('/')[-1])}</p>",
        f"<div class='disclaimer'><strong>{e(DISCLAIMER)}</strong></div>",
        *_flags_section(result),
        "<h2>Scan</h2><dl>",
        *(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in rows),
        "</dl>",
    ]
    if overlay_png is not None:
        parts += ["<h2>Overlay</h2>", f"<img alt='overlay of the detected spine' src='{_png_data_uri(overlay_png)}'>"]

    parts += _vertebrae_section(result)
    parts += _discs_section(result, grading_meanings or {})
    parts += _other_series_section(result)

    from .._version import __version__

    parts += ["<h2>Provenance</h2><dl>", f"<dt>openspine</dt><dd>{e(__version__)}</dd>"]
    for m in result.models:
        card = f" <code>card sha256 {e(m.card_sha256)}</code>" if m.card_sha256 else ""
        parts.append(f"<dt>model {e(m.name)}</dt><dd>{e(m.version)} <code>sha256 {e(m.sha256)}</code>{card}</dd>")
    parts.append(f"<dt>parameters</dt><dd><code>{e(str(dict(result.parameters)))}</code></dd>")
    parts.append(f"<dt>created</dt><dd>{e(result.created or '')}</dd>")
    total = result.timings_s.get("total")
    if total is not None:
        parts.append(
            f"<dt>analysis time</dt><dd>{total:.2f} s (reading to grading; writing the outputs not included)</dd>"
        )
    parts += ["</dl>", f"<p class='disclaimer'>{e(DISCLAIMER)}</p></body></html>"]
    return "\n".join(parts)


def _positions_text(match: Any) -> str:
    """Whether the T1's structures were compared with the main series' in world mm, by level only, or not at all."""
    if match.shared_frame:
        return "yes (one frame of reference)"
    if not match.agree and not match.discs and not match.flags:  # set aside before any matching
        return "no (not matched)"
    return "no (matched by level)"


def series_text(series: Mapping[str, Any]) -> str:
    """'#4 T1 TSE SAG': a DICOM series' number and description, '' where the file names neither."""
    number, description = series.get("series_number"), series.get("series_description") or ""
    return " ".join(x for x in (f"#{number}" if number is not None else "", description) if x)


def _series_text(series: Mapping[str, Any]) -> str:
    return series_text(series) or "—"


def _orientation(result: AnalysisResult) -> str:
    """Where the axes point ('IPR'), read as a sagittal scan's; a picture or scan refused as another plane says so
    rather than claim a sagittal reading of its axes."""
    plane = (result.input.plane or {}).get("value")
    if result.out_of_scope and plane not in (None, "sagittal"):
        return f"not read (the image looks {plane}, not sagittal)"
    return "".join(result.input.orientation)


def _estimated_note(result: AnalysisResult, which: str) -> str:
    """' (estimated, not from the file: …)' after a pixel size that openspine estimated (``--pixel-spacing auto``)
    or assumed (no estimate possible)."""
    if not estimated_spacing(result.flags, which):
        return ""
    return f" (estimated, not from the file: see the flag pixel_spacing_estimated{which})"


def _recognised(item: Any) -> str:
    """'T2 (from the header)', 'lumbar (from the detection)', 'unknown'."""
    if not item or item.get("value") is None:
        guess = f"; best guess {item['best_guess']}" if item and item.get("best_guess") else ""
        if item and item.get("contradicted_by") == "csf_over_body":  # the two witnesses, as the flag names them
            guess = f": {describe_source(item)}"
        return f"unknown{guess}"
    read_as = "; read mirrored" if item.get("read_mirrored") else ""  # a picture shown with the front on the right
    return f"{item['value']} ({describe_source(item)}{read_as})"


def _flags_section(result: AnalysisResult) -> list[str]:
    """At the top, where a reader looks first: why the scan is out of scope, the flags (``result.flags``, the same
    list the command line prints and the overlay's banner shows) and, apart, the steps not run (they are the
    consequence of a flag or a choice, not flags themselves)."""
    e = html.escape
    parts = []
    if result.out_of_scope:
        parts.append(f"<p class='flags'><strong>Out of scope:</strong> {e(result.out_of_scope)}</p>")
    if result.flags:
        parts += [f"<h2>Flags ({len(result.flags)})</h2><ul class='flags'>"]
        parts += [f"<li>{e(f)}</li>" for f in result.flags] + ["</ul>"]
    else:
        parts += ["<h2>Flags</h2><p>None.</p>"]
    not_run = {k: v for k, v in result.steps_not_run.items() if v != result.out_of_scope}
    if not_run:
        parts += [f"<h2>Steps not run ({len(not_run)})</h2><ul>"]
        parts += [f"<li>{e(k)}: {e(v)}</li>" for k, v in not_run.items()] + ["</ul>"]
    return parts


def estimated_spacing(flags: tuple[str, ...] | list[str], which: str = "") -> bool:
    """Whether the pixel size was not read from the file but estimated or assumed (``pixel_spacing_estimated``
    flag; ``which`` = ' (T1)' for the T1 series)."""
    return any(f.startswith(f"pixel_spacing_estimated{which}:") for f in flags)


def _levels_asked(asked: Any) -> str:
    """The levels asked for, as the run gave them: 'here L4-L5, L5-S1' for a list (--levels), else the default (the
    paragraph had named the default under --levels; user test)."""
    from ..levels import levels_given

    given = levels_given(asked)
    if given:
        return f"here {', '.join(given)}"
    if asked == "all":
        return "here all"
    return "default T12-L1 … L5-S1"


def _vertebrae_section(result: AnalysisResult) -> list[str]:
    """The table of vertebrae: level, score (low ones highlighted), centroid, note."""
    e = html.escape
    parts: list[str] = []
    parts.append(f"<h2>Vertebrae ({len(result.vertebrae)})</h2>")
    if result.vertebrae:
        # a picture read mirrored (its front on the right) is counted from its top-right corner (user test)
        corner = "top-right" if (result.input.way_round or {}).get("read_mirrored") else "top-left"
        frame = f"mm from the picture's {corner} corner, axes RAS+" if result.input.format == "image" else "mm, RAS+"
        parts.append(f"<table><tr><th>level</th><th>score</th><th>centroid ({frame})</th><th>note</th></tr>")
        for v in result.vertebrae:
            mm = ", ".join(f"{c:.1f}" for c in v.centroid_mm)
            low = " class='low'" if v.score < LOW_SCORE else ""
            parts.append(
                f"<tr><td>{e(v.label.value if v.label else '?')}</td><td{low}>{score_text(v.score)}</td><td>{mm}</td>"
                f"<td>{e(v.note or '')}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>No vertebra detected.</p>")
    return parts


def _discs_section(result: AnalysisResult, meaning: Mapping[str, str]) -> list[str]:
    """The table of discs × gradings: grade (probability), balanced grade where it differs, withheld/n/a."""
    e = html.escape
    parts: list[str] = []
    cols = grading_columns(result)
    parts.append(f"<h2>Discs × gradings ({len(result.discs)} discs)</h2>")
    if result.discs:
        parts.append(
            "<p>Each cell: grade (its probability) = the most probable class. Where a head's class-balanced decision "
            "differs (it favours rare findings: more found, more false alarms), it follows as 'balanced: k'. "
            f"Cells below {LOW_CONFIDENCE:.0%} are highlighted; 'n/a' = not available from the model used; "
            "'withheld' = outside the model's scope; 'not graded' = not graded for what was seen at the disc (hover "
            "over either for why); '+T1' = read from the T1 series too. Discs "
            f"outside the levels asked for ({e(_levels_asked(result.parameters.get('grade_levels')))}; --levels all "
            "grades every labelled one), and discs whose level is unknown ('?'), are not graded ('—').</p>"
        )
        if estimated_spacing(result.flags):  # the grader's crops are cut at the estimated scale
            parts.append(
                "<p class='flags'>The pixel size is not the file's (none was given; see the flag "
                "pixel_spacing_estimated): grades may differ from those at the true pixel size.</p>"
            )
        if not cols:  # no grading ran at all: say why here, where the empty table is
            asked = result.parameters.get("grade_levels")
            found = {d.level.value for d in result.discs if d.level is not None}
            # --levels naming none of the discs found (T1-T2 on a lumbar scan)
            outside = (
                f"no disc found is among the levels asked for ({', '.join(asked)})"
                if isinstance(asked, list) and found and not found & set(asked)
                else None
            )
            why = result.steps_not_run.get("grading") or result.out_of_scope or outside or "see the flags above"
            parts.append(f"<p class='flags'>No disc was graded: {e(why)}</p>")
        head = "".join(f"<th title='{e(meaning.get(grading_name(g), ''))}'>{e(grading_name(g))}</th>" for g in cols)
        # a wide table scrolls in its own box rather than running off the page
        parts.append(f"<div class='wide'><table><tr><th>level</th>{head}</tr>")
        for d in result.discs:
            cells = []
            for g in cols:
                r = d.grades.get(g)
                if r is None:
                    cells.append("<td class='na'>—</td>")
                elif not r.available or r.grade is None:
                    note = r.note or ""
                    # a disc not graded for what was seen there (unsure bodies beside it) had read 'n/a', which the
                    # legend gives to a grading the model lacks (user test)
                    word = next((w for w in ("withheld", "not graded") if note.startswith(w)), "n/a")
                    cells.append(f"<td class='na' title='{e(r.note or '')}'>{word}</td>")
                else:
                    p = r.probability or 0.0
                    cls = " class='low'" if round(p, 2) < LOW_CONFIDENCE else ""  # as shown: 0.5968 reads 0.60
                    bal = f"; balanced: {r.balanced_grade}" if r.balanced_grade not in (None, r.grade) else ""
                    both = " <sup>+" + e("+".join(r.series[1:])) + "</sup>" if r.series and len(r.series) > 1 else ""
                    cells.append(f"<td{cls}>{r.grade} ({p:.2f}{bal}){both}</td>")
            parts.append(f"<tr><td>{e(d.level.value if d.level else '?')}</td>{''.join(cells)}</tr>")
        parts.append("</table></div>")
        shown = [(grading_name(g), meaning[grading_name(g)]) for g in cols if grading_name(g) in meaning]
        if shown:  # what a grade means (marrow_change 2 is Modic type 2), as the grader's card says it
            parts += ["<h3>What the grades mean</h3><dl>", *(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in shown)]
            parts.append("</dl>")
    else:
        parts.append("<p>No disc found.</p>")
    return parts


def _other_series_section(result: AnalysisResult) -> list[str]:
    """Each series read beside the main one: what it is, which levels were matched, whether grading used it."""
    e = html.escape
    parts: list[str] = []
    for o in result.other_series:
        m = o.match
        series = o.input.series
        rows = [
            ("file", o.input.path or "(in memory)"),
            ("series", _series_text(series)),
            ("same patient and study", m.same_patient_by or "not recorded"),
            ("sequence", _recognised(o.input.sequence)),
            ("shape", " × ".join(str(n) for n in o.input.shape)),
            ("spacing (mm)", " × ".join(f"{s:g}" for s in o.input.spacing_mm) + _estimated_note(result, " (T1)")),
            ("bodies found", str(len(o.vertebrae))),
            ("discs matched", ", ".join(m.discs) or "none"),
            ("positions compared", _positions_text(m)),
            ("used for grading", "yes" if o.used_for_grading else f"no: {o.note or 'see flags'}"),
        ]
        parts += [f"<h2>{e(o.role)} series</h2><dl>", *(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows), "</dl>"]
        if m.flags:
            parts += ["<ul class='flags'>", *(f"<li>{e(f)}</li>" for f in m.flags), "</ul>"]
    return parts
