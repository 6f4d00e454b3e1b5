"""The file shell: write an AnalysisResult to a folder, atomically (write a temporary file, then rename).

Every output is declared once in :data:`OUTPUTS` (name, files, what it needs); ``--formats`` help, its validation
and the check for optional packages come from there, so a new output is one more :class:`OutputFormat`.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ._logging import get_logger
from ._optional import extra_of, require_optional
from .errors import ConfigError, MissingDependencyError, OutputError
from .results import DISC_COLUMNS, VERTEBRA_COLUMNS, AnalysisResult

if TYPE_CHECKING:
    from .scan import SagittalView

log = get_logger("writers")


def check_output_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path, after saying why it cannot be an output folder where a file is in its place."""
    out = Path(path)
    try:
        is_file = out.exists() and not out.is_dir()
    except OSError as exc:  # a name longer than the file system allows (it had ended in a traceback; user test)
        raise OutputError(f"the output folder '{out}' cannot be used: {exc.strerror or exc}") from exc
    if is_file:
        raise OutputError(f"the output folder '{out}' is an existing file; choose another --out")
    return out


def prepare_output_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents) as a folder, or say clearly why it cannot be one."""
    out = check_output_dir(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder '{out}': {exc.strerror or exc}") from exc
    if not os.access(out, os.W_OK):
        raise OutputError(f"the output folder '{out}' is not writable")
    return out


def refuse_output_inside(
    root: str | os.PathLike[str], out_root: str | os.PathLike[str], what: str = "the input folder"
) -> None:
    """ConfigError where the output folder lies inside ``root`` (a batch's input, whose outputs would be read as
    cases; a training's data set, which a model written into it would mix with)."""
    from .io.paths import resolved

    if resolved(out_root).is_relative_to(resolved(root)):
        raise ConfigError(f"the output folder '{out_root}' lies inside {what} '{root}'; choose one outside it")


def check_output_file(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """``path`` as a Path, after saying in one line why a file cannot be written there: a folder in its place, or a
    file where one of its folders should be. Checked before the work whose result it receives (it had failed with
    a traceback after the work)."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{option} '{p}' is a folder: give a file name, e.g. '{p / 'report.json'}'")
    blocking = next((a for a in p.parents if a.exists()), None)  # the nearest that exists must be a folder
    if blocking is not None and not blocking.is_dir():
        raise OutputError(f"{option} '{p}' cannot be written: '{blocking}' is a file, not a folder")
    return p


@functools.cache
def _new_file_mode() -> int:
    """The mode open() gives a new file: 0o666 less the umask (read once; there is no way to read it without
    setting it)."""
    umask = os.umask(0o077)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through, so that ``path`` is either absent/old or complete, never
    half-written: it replaces ``path`` when the block ends without an exception."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _new_file_mode())  # mkstemp's 0600 would hide results from the group on a shared volume
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` is either absent/old or complete, never half-written."""
    with atomic_file(path) as f:
        f.write(data)


def utf8_bytes(text: str) -> bytes:
    """``text`` as UTF-8; a file name that the locale could not decode (``LC_ALL=C``: its bytes kept as surrogates)
    is written back as its own bytes, where strict encoding had failed the write."""
    return text.encode("utf-8", errors="surrogateescape")


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, utf8_bytes(text))


def csv_text(rows: list[dict[str, object]], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


@dataclass(frozen=True)
class OutputFormat:
    """One output: what ``--formats`` calls it, the files it writes and what it needs.

    Attributes:
        name: its name in ``--formats``.
        files: the files it writes into the output folder.
        write: the files' bytes, in the order of ``files``.
        description: what it is, for the help text.
        default: written when no ``--formats`` is given.
        needs_image: needs the analysed image (a result read back from JSON holds none).
        needs_dicom: needs a scan read from DICOM.
        modules: the optional packages it needs (the extra that installs them is named when one is missing).
    """

    name: str
    files: tuple[str, ...]
    write: Callable[[_Outputs], tuple[bytes, ...]]
    description: str
    default: bool = False
    needs_image: bool = False
    needs_dicom: bool = False
    modules: tuple[str, ...] = ()


class _Outputs:
    """The result being written, with what several outputs share computed once (the overlay picture)."""

    def __init__(self, result: AnalysisResult, document: dict[str, Any]) -> None:
        self.result = result
        self.document = document

    @property
    def view(self) -> SagittalView:
        if self.result.view is None:
            raise OutputError("this output needs the image; this result holds none")
        return self.result.view

    @cached_property
    def overlay_png(self) -> bytes:
        from .render.overlay import overlay_png_bytes

        return overlay_png_bytes(self.result.overlay())


def _json(o: _Outputs) -> tuple[bytes, ...]:
    import json

    return (utf8_bytes(json.dumps(o.document, indent=2) + "\n"),)


def _csv(o: _Outputs) -> tuple[bytes, ...]:
    return (
        utf8_bytes(csv_text(o.result.vertebra_rows(), VERTEBRA_COLUMNS)),
        utf8_bytes(csv_text(o.result.disc_rows(), DISC_COLUMNS)),
    )


def _png(o: _Outputs) -> tuple[bytes, ...]:
    return (o.overlay_png,)


def _html(o: _Outputs) -> tuple[bytes, ...]:
    from .render.report import render_report

    return (utf8_bytes(render_report(o.result, o.overlay_png, grading_descriptions(o.result))),)


def grading_descriptions(result: AnalysisResult) -> dict[str, str]:
    """Each grading's meaning (``"marrow_change": "Modic type 0 (none) / 1 / 2 / 3 (nominal)"``), from the card of
    the grader that made ``result`` (built-in, or the folder in ``parameters``; a card whose weights' sha256 is not
    among ``result.models`` is not this result's); empty where no such card can be read."""
    from .errors import ModelError
    from .grading.heads import HeadSpec
    from .models.registry import builtin_model_dir, builtin_names

    made_by = {m.sha256 for m in result.models}
    folders = [builtin_model_dir(m.name) for m in result.models if m.name in builtin_names()]
    folders += [Path(str(v)) for k in ("grader", "paired_grader") if (v := result.parameters.get(k))]
    out: dict[str, str] = {}
    for folder in folders:
        try:
            card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(card, dict) or card.get("sha256") not in made_by:
            continue
        try:  # the card's heads, read as the grader reads them
            heads = [HeadSpec.from_dict(h) for h in card["outputs"]["heads"]]
        except (KeyError, TypeError, ModelError, ConfigError):
            continue
        for h in heads:
            if h.description:
                out.setdefault(h.name, h.description)
    return out


def _nifti(o: _Outputs) -> tuple[bytes, ...]:
    from .render.labelmap import write_label_map

    return (write_label_map(o.view, o.result),)


def _seg(o: _Outputs) -> tuple[bytes, ...]:
    from .render.dicom_objects import segmentation_bytes

    return (segmentation_bytes(o.result),)


def _sr(o: _Outputs) -> tuple[bytes, ...]:
    from .render.dicom_objects import structured_report_bytes

    return (structured_report_bytes(o.result),)


_DICOM_OUTPUT = ("highdicom",)
# in the order they are listed and written; result.json, whatever its place here, is written last
OUTPUTS: tuple[OutputFormat, ...] = (
    OutputFormat("json", ("result.json",), _json, "the result (always written)", default=True),
    OutputFormat("csv", ("vertebrae.csv", "discs.csv"), _csv, "one row per vertebra / disc grading", default=True),
    OutputFormat("png", ("overlay.png",), _png, "overlay picture", default=True, needs_image=True),
    OutputFormat("html", ("report.html",), _html, "self-contained report", default=True, needs_image=True),
    OutputFormat("nifti", ("labels.nii.gz",), _nifti, "label map on the input grid", needs_image=True),
    OutputFormat(
        "seg", ("vertebrae_seg.dcm",), _seg, "DICOM SEG", needs_image=True, needs_dicom=True, modules=_DICOM_OUTPUT
    ),
    OutputFormat(
        "sr", ("measurements_sr.dcm",), _sr, "DICOM SR", needs_image=True, needs_dicom=True, modules=_DICOM_OUTPUT
    ),
)
_BY_NAME = {f.name: f for f in OUTPUTS}
# every file name an output writes: in a reused folder, the ones a run does not write are an earlier scan's
OUTPUT_FILES = tuple(name for f in OUTPUTS for name in f.files)
FORMATS = tuple(_BY_NAME)
DEFAULT_FORMATS = tuple(f.name for f in OUTPUTS if f.default)


def formats_help() -> str:
    """The help text of ``--formats``, from :data:`OUTPUTS`."""
    dicom = [f.name for f in OUTPUTS if f.needs_dicom]
    extras = sorted({f"openspine[{extra_of(m) or m}]" for f in OUTPUTS if f.needs_dicom for m in f.modules})
    needs = f" ({' and '.join(dicom)} need DICOM input and {' and '.join(extras)})" if dicom else ""
    return f"outputs to write, comma-separated from {','.join(FORMATS)}, or 'all'{needs}"


def parse_formats(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"json,csv,png"`` or a list → a checked tuple; ``"all"`` → every format; None → the default."""
    if value is None:
        return DEFAULT_FORMATS
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [i.strip().lower() for i in items if i.strip()]
    if not items:  # "--formats ''" (a shell variable left empty?) had written result.json alone, without a word
        raise ConfigError(f"no output format given; choose from {', '.join(FORMATS)} (or 'all'), comma-separated")
    if items == ["all"]:
        return FORMATS
    for i in items:
        if i not in _BY_NAME:
            raise ConfigError(f"unknown output format '{i}'; choose from {', '.join(FORMATS)} (or 'all')")
    if "json" not in items:
        items.append("json")  # result.json always: it records provenance and marks a finished case
    return tuple(dict.fromkeys(items))


def require_for_formats(formats: Iterable[str], purpose: str, dicom_input: bool = True) -> None:
    """Check, without importing them, the optional packages that the output ``formats`` need (``seg``/``sr``:
    highdicom); raises MissingDependencyError naming the extra to install. With ``dicom_input`` False (no scan read
    from DICOM) the DICOM outputs are skipped at writing, so nothing they need is required."""
    needing = [
        _BY_NAME[f]
        for f in formats
        if f in _BY_NAME and _BY_NAME[f].modules and (dicom_input or not _BY_NAME[f].needs_dicom)
    ]
    if needing:
        what = ", ".join(f.description for f in needing)
        require_optional([m for f in needing for m in f.modules], f"{purpose} ({what} output)")


def write_result(
    result: AnalysisResult,
    out_dir: str | os.PathLike[str],
    formats: str | list[str] | tuple[str, ...] | None = None,
) -> dict[str, Path]:
    """Write the chosen outputs (default ``result.json``, CSVs, ``overlay.png``, ``report.html``).

    ``result.json`` is checked against the schema and written last, so its presence marks a finished case.
    DICOM SEG/SR are skipped for a scan not read from DICOM, and left out when they cannot be built (an enhanced
    multi-frame source, nothing detected, a source header highdicom refuses): one warning each, ``steps_not_run``
    in result.json says why, and every other output is written. Output files of an earlier run in the folder that
    this run does not write are removed.
    """
    from .schema import validate_result

    chosen = [_BY_NAME[name] for name in parse_formats(formats)]
    out = prepare_output_dir(out_dir)
    needs_image = sorted(f.name for f in chosen if f.needs_image)
    if needs_image and result.view is None:
        raise OutputError(f"{', '.join(needs_image)} output needs the image; this result holds none")
    chosen, result = _without_dicom_outputs(chosen, result)
    # SEG/SR first: one that cannot be built is left out and said in result.json, which is made after them
    built, result = _dicom_outputs([f for f in chosen if f.needs_dicom], result)
    document = result.to_dict()
    validate_result(document)
    outputs = _Outputs(result, document)
    payloads: list[tuple[str, bytes]] = []
    for f in sorted(chosen, key=lambda f: (f.name == "json", OUTPUTS.index(f))):
        if f.needs_dicom and f.name not in built:
            continue
        contents = built[f.name] if f.needs_dicom else f.write(outputs)
        payloads.extend(zip(f.files, contents, strict=True))
    files: dict[str, Path] = {}
    try:
        _remove_stale_outputs(out, {name for name, _ in payloads}, result)
        # an earlier run's result.json goes first: a run stopped halfway (full disk, Ctrl-C) must not leave it
        # marking the folder finished beside this run's CSVs
        marker = out / "result.json"
        if any(name == marker.name for name, _ in payloads) and marker.is_file() and not marker.is_symlink():
            marker.unlink()
        for name, data in payloads:
            atomic_write_bytes(out / name, data)
            files[name] = out / name
    except OSError as exc:
        # the files this run had written go too: CSVs without their result.json (a full disk) are half a result
        removed = [p for p in files.values() if _removed(p)]
        said = f"; the {len(removed)} file(s) it had written were removed" if removed else ""
        raise OutputError(f"cannot write results into '{out}': {exc.strerror or exc}{said}") from exc
    log.info("wrote %s", ", ".join(files))
    return files


def _removed(path: Path) -> bool:
    """Remove a file this run wrote; whether it is gone (a folder made read-only keeps it)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        return False
    return True


def _without_dicom_outputs(
    chosen: list[OutputFormat], result: AnalysisResult
) -> tuple[list[OutputFormat], AnalysisResult]:
    """``chosen`` less the DICOM outputs when the scan was not read from DICOM, and the result with a
    ``steps_not_run`` entry for each one left out (the other outputs are still written)."""
    dicom = [f for f in chosen if f.needs_dicom]
    source = result.view.input.source if result.view is not None else None
    if not dicom or (source is not None and source.format == "dicom" and source.path):
        return chosen, result
    kind = source.format if source is not None else "unknown"
    why = f"made for DICOM input only; this scan was read from {kind}"
    log.warning("%s not written: %s", " and ".join(f.description for f in dicom), why)
    not_run = {**result.steps_not_run, **{f"{f.name} output": f"{f.description} is {why}" for f in dicom}}
    return [f for f in chosen if not f.needs_dicom], dataclasses.replace(result, steps_not_run=not_run)


def _dicom_outputs(
    dicom: list[OutputFormat], result: AnalysisResult
) -> tuple[dict[str, tuple[bytes, ...]], AnalysisResult]:
    """The bytes of each DICOM output in ``dicom`` that can be built, and the result with a ``steps_not_run``
    entry for each one that cannot: SEG and SR are extras, a failure to build one never costs the other outputs."""
    built: dict[str, tuple[bytes, ...]] = {}
    failed: dict[str, list[OutputFormat]] = {}  # why → the outputs that failed for it
    outputs = _Outputs(result, {})  # SEG and SR are made from the result and the image, not from result.json
    for f in dicom:
        try:
            built[f.name] = f.write(outputs)
        except MissingDependencyError:
            raise  # highdicom missing: an installation to fix, checked before the analysis started
        except OutputError as exc:
            why = str(exc)
        except Exception as exc:  # highdicom validates the source headers with many exception types
            log.debug("building the %s failed", f.description, exc_info=True)
            why = f"highdicom could not build it from the source series' headers ({type(exc).__name__}: {exc})"
        else:
            continue
        failed.setdefault(why, []).append(f)
    if not failed:
        return built, result
    not_run: dict[str, str] = {}
    for why, formats in failed.items():  # one warning for SEG and SR failing alike (an enhanced source)
        log.warning("%s not written: %s", " and ".join(f.description for f in formats), why)
        not_run.update({f"{f.name} output": f"{f.description} not written: {why}" for f in formats})
    return built, dataclasses.replace(result, steps_not_run={**result.steps_not_run, **not_run})


def _remove_stale_outputs(out: Path, writing: set[str], result: AnalysisResult) -> None:
    """Remove the output files of an earlier run in ``out`` that this run does not write, so that no earlier
    scan's CSVs or overlay stay beside the new result.json; other files are never touched."""
    stale = remove_outputs(out, result.input.path, keep=writing)
    if stale:
        log.info("removed %s from '%s': an earlier run's output(s) that this run does not write", ", ".join(stale), out)


def remove_outputs(
    out: str | os.PathLike[str], source: str | os.PathLike[str] | None, keep: set[str] | frozenset[str] = frozenset()
) -> list[str]:
    """Remove openspine's output files (:data:`OUTPUT_FILES`, but those in ``keep``) from ``out``; other files, links
    and the scan ``source`` itself (a picture named overlay.png) are never touched. Returns the names removed."""
    removed = []
    for name in OUTPUT_FILES:
        path = Path(out) / name
        if name in keep or not path.is_file() or path.is_symlink():
            continue
        if source and Path(source).exists() and path.samefile(source):
            continue  # the scan analysed now: never remove an input
        path.unlink()
        removed.append(name)
    return removed
