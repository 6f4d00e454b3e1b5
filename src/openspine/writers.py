"""The file shell: write an AnalysisResult to a folder, atomically (write a temporary file, then rename)."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

from ._logging import get_logger
from .errors import OutputError
from .results import DISC_COLUMNS, VERTEBRA_COLUMNS, AnalysisResult

log = get_logger("writers")


def prepare_output_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents) as a folder, or say clearly why it cannot be one."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"the output folder '{out}' is an existing file; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder '{out}': {exc.strerror or exc}") from exc
    if not os.access(out, os.W_OK):
        raise OutputError(f"the output folder '{out}' is not writable")
    return out


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` is either absent/old or complete, never half-written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def csv_text(rows: list[dict[str, object]], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


FORMATS = ("json", "csv", "png", "html", "nifti", "seg", "sr")
DEFAULT_FORMATS = ("json", "csv", "png", "html")
FILE_NAMES = {
    "csv": ("vertebrae.csv", "discs.csv"),
    "png": ("overlay.png",),
    "html": ("report.html",),
    "nifti": ("labels.nii.gz",),
    "seg": ("vertebrae_seg.dcm",),
    "sr": ("measurements_sr.dcm",),
    "json": ("result.json",),
}


def parse_formats(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"json,csv,png"`` or a list → a checked tuple; ``"all"`` → every format; None → the default."""
    if value is None:
        return DEFAULT_FORMATS
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [i.strip().lower() for i in items if i.strip()]
    if items == ["all"]:
        return FORMATS
    from .errors import ConfigError

    for i in items:
        if i not in FORMATS:
            raise ConfigError(f"unknown output format '{i}'; choose from {', '.join(FORMATS)} (or 'all')")
    if "json" not in items:
        items.append("json")  # result.json always: it records provenance and marks a finished case
    return tuple(dict.fromkeys(items))


def write_result(
    result: AnalysisResult,
    out_dir: str | os.PathLike[str],
    formats: str | list[str] | tuple[str, ...] | None = None,
) -> dict[str, Path]:
    """Write the chosen outputs (default ``result.json``, CSVs, ``overlay.png``, ``report.html``).

    ``result.json`` is checked against the schema and written last, so its presence marks a finished case.
    """
    import json

    from .schema import validate_result

    chosen = parse_formats(formats)
    out = prepare_output_dir(out_dir)
    document = result.to_dict()
    validate_result(document)
    files: dict[str, Path] = {}
    payloads: list[tuple[str, bytes]] = []
    if "csv" in chosen:
        payloads.append(("vertebrae.csv", csv_text(result.vertebra_rows(), VERTEBRA_COLUMNS).encode()))
        payloads.append(("discs.csv", csv_text(result.disc_rows(), DISC_COLUMNS).encode()))
    needs_image = {"png", "html", "nifti"} & set(chosen)
    if needs_image and result.view is None:
        raise OutputError(f"{', '.join(sorted(needs_image))} output needs the image; this result holds none")
    from .render.report import png_bytes, render_report

    overlay = png_bytes(result.overlay()) if {"png", "html"} & set(chosen) else None
    if "png" in chosen and overlay is not None:
        payloads.append(("overlay.png", overlay))
    if "html" in chosen:
        payloads.append(("report.html", render_report(result, overlay).encode()))
    if "nifti" in chosen:
        from .render.labelmap import write_label_map

        payloads.append(("labels.nii.gz", write_label_map(result.view, result)))
    if "seg" in chosen or "sr" in chosen:
        from .render.dicom_objects import dicom_outputs

        payloads.extend(dicom_outputs(result, seg="seg" in chosen, sr="sr" in chosen))
    payloads.append(("result.json", (json.dumps(document, indent=2) + "\n").encode()))
    try:
        for name, data in payloads:
            atomic_write_bytes(out / name, data)
            files[name] = out / name
    except OSError as exc:
        raise OutputError(f"cannot write results into '{out}': {exc.strerror or exc}") from exc
    log.info("wrote %s", ", ".join(files))
    return files
