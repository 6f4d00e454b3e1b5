"""MkDocs hooks: pages generated at build time from the code, so they cannot drift from it.

* ``cli.md`` – the ``--help`` of every command, rendered from ``openspine.cli.build_parser()`` and the
  parsers of the commands it hands over to (``finetune``, ``train KIND``, ``evaluate KIND``);
* ``models/*.md`` – the model cards shipped in ``src/openspine/models/*/card.json``;
* ``tutorials/*.md`` – the tutorials, from the jupytext percent-format files ``docs/tutorials/*.py`` (the same
  files ``tests/docs/test_docs.py`` executes).

Nothing here needs the network. Registered in ``mkdocs.yml`` under ``hooks:``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "src" / "openspine" / "models"
TUTORIALS = Path(__file__).resolve().parent / "tutorials"
HELP_WIDTH = 110

# Citation keys used in the model cards (as in the shared data's index.csv), with the data set's terms.
CITATIONS = {
    "vandergraaf2024": (
        'SPIDER: J. W. van der Graaf et al., "Lumbar spine segmentation in MR images: a dataset and a public '
        'benchmark", *Scientific Data* 11:264 (2024), doi:10.1038/s41597-024-03090-w; data '
        "doi:10.5281/zenodo.10159290",
        "CC BY 4.0",
    ),
    "ramos2024": (
        'FastCleverSeg: J. S. Ramos et al., "Fast and accurate 3-D spine MRI segmentation using FastCleverSeg", '
        "*Magnetic Resonance Imaging* 109:134–146 (2024), doi:10.1016/j.mri.2024.03.021",
        "GPL-3.0 redistribution; cite the original study of each set",
    ),
    "chu2015": (
        "FastCleverSeg VB2: C. Chu et al., *PLoS ONE* 10(11):e0143327 (2015), doi:10.1371/journal.pone.0143327; "
        "data doi:10.5281/zenodo.22304",
        "research use with citation",
    ),
    "burian2019": (
        "FastCleverSeg VB3 (MyoSegmenTUM spine): E. Burian et al., *BMC Musculoskeletal Disorders* 20:152 (2019), "
        "doi:10.1186/s12891-019-2528-x",
        "research use with citation",
    ),
    "zukic2014": (
        "FastCleverSeg VB1: D. Zukić et al., *Computer Graphics Forum* 33(6):190–204 (2014), doi:10.1111/cgf.12343",
        "research use with citation",
    ),
    "menezesreis2016": (
        "FastCleverSeg IVD: R. Menezes-Reis et al., *Quant Imaging Med Surg* 6(4):402–412 (2016), "
        "doi:10.21037/qims.2016.08.01",
        "research use with citation",
    ),
    "deleener2017": (
        'Spinal Cord Toolbox data: B. De Leener et al., "SCT: Spinal Cord Toolbox, an open-source software for '
        'processing spinal cord MRI data", *NeuroImage* 145:24–43 (2017), doi:10.1016/j.neuroimage.2016.10.009',
        "MIT",
    ),
}


# ----------------------------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _help_width(columns: int) -> Iterator[None]:
    """argparse wraps help text at $COLUMNS: fix it so the page does not depend on the terminal."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_block(parser: argparse.ArgumentParser) -> str:
    text = parser.format_help().rstrip()
    return f"```text\n{text}\n```\n"


def cli_markdown() -> str:
    from openspine import cli

    with _help_width(HELP_WIDTH):
        top = cli.build_parser()
        commands = _subparsers(top)
        out = [
            "# Command line\n",
            "Generated from the argparse parsers of the installed package when this site was built "
            "(`openspine.cli.build_parser()` and the parsers of the commands it hands over to), so every option "
            "below is exactly what `openspine ... --help` prints.\n",
            "| command | what |",
            "|---|---|",
        ]
        helps = {a.dest: a.help for a in _subparsers_actions(top)}
        for name in commands:
            out.append(f"| [`openspine {name}`](#openspine-{name}) | {_cell(helps.get(name) or '')} |")
        out += ["", "## `openspine`\n", _help_block(top)]
        for name, sub in commands.items():
            out.append(f"## `openspine {name}` {{ #openspine-{name} }}\n")
            if name == "finetune":
                module = importlib.import_module("openspine.finetune")
                out.append(_help_block(module.build_parser()))
                continue
            if name in ("train", "evaluate"):
                out.append(_help_block(sub))
                kinds = cli.TRAIN_KINDS if name == "train" else cli.EVALUATE_KINDS
                for kind, module_name in kinds.items():
                    out.append(f"### `openspine {name} {kind}` {{ #openspine-{name}-{kind} }}\n")
                    out.append(_help_block(importlib.import_module(module_name).build_parser()))
                continue
            out.append(_help_block(sub))
    return "\n".join(out) + "\n"


def _subparsers_actions(parser: argparse.ArgumentParser) -> list[Any]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action._choices_actions)
    return []


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# ----------------------------------------------------------------------------------------------------------------
# model cards
# ----------------------------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list) and len(value) > 12 and all(isinstance(v, (int, float)) for v in value):
        return f"({len(value)} numbers)"
    if isinstance(value, (list, dict)):
        return "`" + json.dumps(value, ensure_ascii=False).replace("`", "'") + "`"
    return str(value)


def _bullets(value: Any, depth: int = 0, max_depth: int = 3) -> list[str]:
    """A nested dict/list as a nested bullet list (long numeric lists are summarised)."""
    pad = "    " * depth
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v and depth < max_depth and not _is_flat_list(v):
                lines.append(f"{pad}* **{k}**:")
                lines.extend(_bullets(v, depth + 1, max_depth))
            else:
                lines.append(f"{pad}* **{k}**: {_fmt(v)}")
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)) and v and depth < max_depth and not _is_flat_list(v):
                lines.append(f"{pad}* item:")
                lines.extend(_bullets(v, depth + 1, max_depth))
            else:
                lines.append(f"{pad}* {_fmt(v)}")
    else:
        lines.append(f"{pad}* {_fmt(value)}")
    return lines


def _is_flat_list(v: Any) -> bool:
    return isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v)


def _with_ci(metric: Any, scale: float, fmt: str, unit: str = "") -> str:
    """'57.5 % [46.9, 68.4]' or '0.62 [0.52, 0.73] (linear)' from an evaluation metric with its 95 % interval."""
    if not isinstance(metric, dict) or "value" not in metric:
        return "—"
    text = f"{scale * metric['value']:{fmt}}{unit}"
    if metric.get("ci95"):
        lo, hi = metric["ci95"]
        text += f" [{scale * lo:{fmt}}, {scale * hi:{fmt}}]"
    if metric.get("weights") not in (None, "none"):
        text += f" ({metric['weights']})"
    return text


def _pct_ci(metric: Any) -> str:
    return _with_ci(metric, 100.0, ".1f", " %")


def _kappa(metric: Any) -> str:
    return _with_ci(metric, 1.0, ".2f")


def _grading_table(gradings: dict[str, Any]) -> list[str]:
    lines = [
        "| grading | discs | `grade`: balanced accuracy [95 % CI] | κ [95 % CI] | `balanced_grade`: balanced accuracy "
        "[95 % CI] | κ [95 % CI] | ECE calibrated / uncalibrated |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in gradings.items():
        ece = m.get("ece") or {}
        ece_text = f"{ece.get('calibrated', float('nan')):.2f} / {ece.get('uncalibrated', float('nan')):.2f}"
        bal = m.get("balanced_grade") or {}
        lines.append(
            f"| {name} | {m.get('n', '')} | {_pct_ci(m.get('balanced_accuracy'))} | {_kappa(m.get('kappa'))} | "
            f"{_pct_ci(bal.get('balanced_accuracy'))} | {_kappa(bal.get('kappa'))} | {ece_text} |"
        )
    return lines


def _citation_lines(keys: list[str]) -> list[str]:
    lines = []
    for key in keys:
        ref, terms = CITATIONS.get(key, (f"`{key}`", "see the data set's terms"))
        lines.append(f"* `{key}` – {ref}. Terms: {terms}.")
    return lines


def _citation_keys(card: dict[str, Any]) -> list[str]:
    data = card.get("training_data") or {}
    keys = list(data.get("citations") or [])
    if not keys and "SPIDER" in str(data.get("dataset", "")):
        keys = ["vandergraaf2024"]
    return keys


# the card keys shown in their own sections, in this order; every other key follows under "Everything else"
_CARD_SECTIONS = (
    ("scope", "Scope: what it answers, and what is withheld"),
    ("training_data", "Training data"),
    ("metrics", "Figures (validation)"),
    ("speed", "Speed"),
    ("limitations", "Limitations"),
    ("training", "How it was trained"),
    ("architecture", "Architecture"),
    ("input", "Input"),
    ("outputs", "Outputs"),
)
_SUMMARY_KEYS = ("name", "version", "task", "file", "sha256", "size_bytes", "created", "openspine_version")


def card_markdown(name: str, card: dict[str, Any]) -> str:
    out = [f"# {name.capitalize()} model card\n"]
    out.append(
        f"Rendered when this site was built from `src/openspine/models/{name}/card.json`, the card shipped with "
        "the model inside the package. The name, version and sha256 below are also written into every "
        "`result.json` the model contributed to (`models`).\n"
    )
    if card.get("intended_use"):
        out.append(f'!!! note "Intended use"\n    {card["intended_use"]}\n')
    out += ["| field | value |", "|---|---|"]
    for key in _SUMMARY_KEYS:
        if key in card:
            value = card[key]
            shown = f"`{value}`" if key == "sha256" else _fmt(value)
            out.append(f"| {key} | {_cell(shown)} |")
    params = (card.get("architecture") or {}).get("parameters")
    if params:
        out.append(f"| parameters | {params:,} |")
    out.append("")

    out.append("## Licence\n")
    out.append(
        "The model files ship inside the openspine package, distributed under Apache-2.0 (`LICENSE`). The data "
        "they were trained on keep their own terms, listed with each citation under *Training data*; cite those "
        "sets when you publish results made with this model ([How to cite](../cite.md)).\n"
    )

    shown = set(_SUMMARY_KEYS) | {"intended_use"}
    for key, title in _CARD_SECTIONS:
        if key not in card:
            continue
        shown.add(key)
        value = card[key]
        out.append(f"## {title}\n")
        if key == "limitations" and isinstance(value, list):
            out += [f"* {item}" for item in value] + [""]
            continue
        if key == "metrics" and isinstance(value, dict) and isinstance(value.get("gradings"), dict):
            rest = {k: v for k, v in value.items() if k != "gradings"}
            out += [*_bullets(rest), "", *_grading_table(value["gradings"]), ""]
            out.append(
                "For the heads with a stacker these are the figures of `balanced_grade`; "
                "[Accuracy and speed](../accuracy.md#disc-grading) gives both decisions (`grade` and "
                "`balanced_grade`) with the command that measures them.\n"
            )
            continue
        if key == "training_data":
            out += [*_bullets({k: v for k, v in value.items() if k != "citations"}, max_depth=2), ""]
            keys = _citation_keys(card)
            if keys:
                out += ["Cite:", "", *_citation_lines(keys), ""]
            continue
        if key == "outputs" and isinstance(value, dict) and isinstance(value.get("heads"), list):
            out += [
                "| head | classes | meaning |",
                "|---|---|---|",
            ]
            for head in value["heads"]:
                out.append(
                    f"| `{head.get('name')}` | {', '.join(map(str, head.get('classes', [])))} | "
                    f"{_cell(head.get('description', ''))} |"
                )
            out.append("")
            rest = {k: v for k, v in value.items() if k not in ("heads", "stacker")}
            out += [*_bullets(rest), ""]
            if "stacker" in value:
                stacker = value["stacker"]
                out.append(
                    f"A stacker (per-head logistic regression, features version `{stacker.get('features_version')}`) "
                    f"combines the network's logits with {len(stacker.get('features', []))} measured disc features "
                    f"for the heads {', '.join(f'`{h}`' for h in (stacker.get('heads') or {}))}; its coefficients "
                    "are in the card file.\n"
                )
            continue
        out += [*_bullets(value, max_depth=2), ""]

    rest = {k: v for k, v in card.items() if k not in shown}
    if rest:
        out.append("## Everything else on the card\n")
        out += [*_bullets(rest, max_depth=2), ""]
    return "\n".join(out) + "\n"


def models_index_markdown(cards: dict[str, dict[str, Any]]) -> str:
    out = [
        "# Models\n",
        "Three small networks ship inside the package (no download, no GPU, no PyTorch needed to run them; "
        "onnxruntime runs them). Each has a card with its data, figures, scope and provenance; the pages below "
        "are rendered from those cards when the site is built.\n",
        "| model | task | scope: sequences / regions / levels | size | card |",
        "|---|---|---|---|---|",
    ]
    for name, card in cards.items():
        scope = card.get("scope") or {}
        scope_text = " / ".join(
            ", ".join(map(str, scope.get(k, []))) or "—" for k in ("sequences", "regions", "levels")
        )
        size = card.get("size_bytes")
        size_text = f"{size / 1e6:.1f} MB" if size else "—"
        task = card.get("task") or card.get("intended_use") or ""
        out.append(f"| {name} | {_cell(task)} | {_cell(scope_text)} | {size_text} | [card]({name}.md) |")
    out += [
        "",
        "How the detector and the grader work, what was tried and what was kept: [detection](../detection.md), "
        "[grading](../grading.md). Outside a card's `scope` an answer is withheld, never guessed "
        "([outputs](../outputs.md#what-the-scan-is-and-what-is-withheld)).",
        "",
    ]
    return "\n".join(out)


def load_cards() -> dict[str, dict[str, Any]]:
    cards = {}
    for path in sorted(MODELS.glob("*/card.json")):
        cards[path.parent.name] = json.loads(path.read_text(encoding="utf-8"))
    return cards


# ----------------------------------------------------------------------------------------------------------------
# tutorials
# ----------------------------------------------------------------------------------------------------------------
def tutorial_markdown(path: Path) -> str:
    import jupytext

    nb = jupytext.read(path)
    parts: list[str] = []
    header_done = False
    for cell in nb.cells:
        source = cell.source.rstrip()
        if not source:
            continue
        if cell.cell_type == "markdown":
            parts.append(source + "\n")
            if not header_done and source.lstrip().startswith("# "):
                parts.append(
                    f'!!! info "Run it yourself"\n'
                    f"    This page is the notebook `docs/tutorials/{path.name}` (jupytext percent format); the test "
                    "suite executes it on the shared data (`tests/docs/test_docs.py`). The page shows its code, not "
                    "its outputs: the tables and pictures the text speaks of appear as you run it. Run it as a "
                    "script from the "
                    f"repository root (`python docs/tutorials/{path.name}`), where its default data folder "
                    "`../shared/data` is found; or open it as a notebook with "
                    f"`jupytext --to ipynb docs/tutorials/{path.name}`, after setting `OPENSPINE_DATA` to the data "
                    "folder's absolute path (a notebook runs in `docs/tutorials/`, where the relative default "
                    "misses it).\n"
                )
                header_done = True
        elif cell.cell_type == "code":
            code = "\n".join(line for line in source.splitlines() if not line.startswith("# ruff: noqa")).strip()
            if code:
                parts.append(f"```python\n{code}\n```\n")
    return "\n".join(parts)


# ----------------------------------------------------------------------------------------------------------------
# outputs, shown on the embedded example scan
# ----------------------------------------------------------------------------------------------------------------
def _md_table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c)
            cells.append("" if v is None else _cell(f"{v:.3g}" if isinstance(v, float) else v))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _trim_outlines(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {
            k: (
                f"[{len(v)} outlines: slice_index, corners_voxel, corners_mm]" if k == "outlines" else _trim_outlines(v)
            )
            for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [_trim_outlines(v) for v in doc]
    return doc


def gallery_pages() -> dict[str, str | bytes]:
    """The outputs of the embedded example scan, made while the site is built."""
    import io

    import openspine
    from openspine.data import demo_scan_path
    from openspine.results import DISC_COLUMNS, VERTEBRA_COLUMNS

    result = openspine.analyze(demo_scan_path())
    buf = io.BytesIO()
    result.overlay(width=700).convert("RGB").save(buf, format="PNG", optimize=True)
    doc = result.to_dict()
    first_disc = doc["discs"][len(doc["discs"]) // 2] if doc["discs"] else None
    excerpt = {k: doc[k] for k in ("schema_version", "openspine_version", "input", "models", "flags", "steps_not_run")}
    excerpt["input"] = {k: v for k, v in excerpt["input"].items() if k != "affine"}
    disc_level = first_disc["level"] if first_disc else None
    disc_rows = [r for r in result.disc_rows() if r.get("level") == disc_level]
    out = [
        "# What the outputs look like\n",
        "Made from the embedded example scan (`openspine demo`: one mid-sagittal lumbar T2 slice of SPIDER, "
        "CC BY 4.0, van der Graaf et al. 2024) **while this site was built**, with the installed package, so the "
        "pictures and tables below are what the current code writes. Every file is described in "
        "[Outputs](outputs.md).\n",
        "```bash\nopenspine demo --out demo-out   # the same files, on your machine\n```\n",
        "## `overlay.png`\n",
        "Mid-sagittal slice, anterior left and head up whatever the input orientation, the vertebral bodies "
        "outlined and named, discs marked with level and Pfirrmann grade; flags in a banner at the top.\n",
        '![overlay.png of the example scan](img/generated/demo-overlay.png){ width="560" }\n',
        "## `report.html`\n",
    ]
    if (Path(__file__).parent / "img" / "report-demo.png").is_file():
        out.append(
            "One self-contained HTML file (images embedded, no network access): scan summary, overlay, levels × "
            "gradings table with the probability of each chosen grade (cells below 0.6 highlighted), flags, "
            "provenance and the disclaimer. The top of the report of this scan, rendered in headless Chromium "
            "(`python scripts/screenshot_report.py demo-out/report.html report.png`):\n"
        )
        out.append('![the top of report.html of the example scan](img/report-demo.png){ width="700" }\n')
    else:
        out.append("One self-contained HTML file; open `demo-out/report.html` in a browser.\n")
    out += [
        "## `vertebrae.csv`\n",
        *_md_table(result.vertebra_rows(), VERTEBRA_COLUMNS),
        "",
        f"## `discs.csv` (the rows of one disc, {disc_level})\n",
        "One row per disc × grading; `probabilities` holds every class probability as JSON.\n",
        *_md_table(disc_rows, [c for c in DISC_COLUMNS if not c.startswith("centroid")]),
        "",
        "## `result.json` (an excerpt)\n",
        "Everything, in a versioned schema (`src/openspine/schema/result.schema.json`). Below: the input, the "
        "models and the flags; the `vertebrae` and `discs` lists hold the records of the two tables above, with "
        "their outlines. One disc:\n",
        "```json\n" + json.dumps(excerpt, indent=2, ensure_ascii=False) + "\n```\n",
        "```json\n" + json.dumps(_trim_outlines(first_disc), indent=2, ensure_ascii=False) + "\n```\n",
    ]
    return {"outputs-gallery.md": "\n".join(out) + "\n", "img/generated/demo-overlay.png": buf.getvalue()}


# ----------------------------------------------------------------------------------------------------------------
# hook
# ----------------------------------------------------------------------------------------------------------------
def generated_pages() -> dict[str, str | bytes]:
    """Every generated file: site path → markdown (or picture bytes)."""
    pages: dict[str, str | bytes] = {"cli.md": cli_markdown()}
    cards = load_cards()
    pages["models/index.md"] = models_index_markdown(cards)
    for name, card in cards.items():
        pages[f"models/{name}.md"] = card_markdown(name, card)
    for path in sorted(TUTORIALS.glob("*.py")):
        pages[f"tutorials/{path.stem}.md"] = tutorial_markdown(path)
    pages.update(gallery_pages())
    return pages


def on_files(files: Files, config: Any) -> Files:
    for src_uri, content in generated_pages().items():
        existing = files.get_file_from_path(src_uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, src_uri, content=content))
    return files
