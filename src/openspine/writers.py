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


def write_result(result: AnalysisResult, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``result.json`` (checked against the schema), ``vertebrae.csv`` and ``discs.csv``."""
    from .schema import validate_result

    out = prepare_output_dir(out_dir)
    document = result.to_dict()
    validate_result(document)
    import json

    files = {
        "json": out / "result.json",
        "vertebrae_csv": out / "vertebrae.csv",
        "discs_csv": out / "discs.csv",
    }
    try:
        # the JSON goes last: its presence marks a finished case
        atomic_write_text(files["vertebrae_csv"], csv_text(result.vertebra_rows(), VERTEBRA_COLUMNS))
        atomic_write_text(files["discs_csv"], csv_text(result.disc_rows(), DISC_COLUMNS))
        atomic_write_text(files["json"], json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write results into '{out}': {exc.strerror or exc}") from exc
    log.info("wrote %s", ", ".join(p.name for p in files.values()))
    return files
