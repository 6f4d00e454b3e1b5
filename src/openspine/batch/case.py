"""Analyse one case into its own folder, never raising: the result is a status record.

Outputs are written into a temporary sibling folder and renamed into place in one step, so an interrupted
run never leaves a half-written case folder that looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .discover import Case

if TYPE_CHECKING:
    from ..config import AnalysisConfig

CASES_DIR = "cases"
_HOST = socket.gethostname().replace("-", "_").replace("@", "_")
TMP_PREFIX = ".tmp-"


SCOPE_STAGE = "scope"
OUT_OF_SCOPE = "OutOfScope"


@dataclass(frozen=True)
class CaseStatus:
    """What became of one case. A case whose result is out of scope (nothing in scope found: no spine, not a
    sagittal plane) is "done" or "skipped" with its outputs written, and has stage "scope" and the reason."""

    case_id: str
    status: str  # "done", "skipped" (finished earlier), "failed"
    stage: str = ""
    error_type: str = ""
    message: str = ""
    seconds: float = 0.0

    @property
    def out_of_scope(self) -> bool:
        return self.status != "failed" and self.stage == SCOPE_STAGE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finished_status(case_id: str, folder: Path) -> CaseStatus:
    """The status of a case finished earlier: "skipped", with the out-of-scope reason its result.json records."""
    reason = out_of_scope_reason(folder)
    if reason:
        return CaseStatus(case_id, "skipped", SCOPE_STAGE, OUT_OF_SCOPE, reason)
    return CaseStatus(case_id, "skipped")


def out_of_scope_reason(folder: Path) -> str | None:
    """``out_of_scope`` of the case's result.json (None when in scope, or unreadable)."""
    try:
        doc = json.loads((folder / "result.json").read_text())
    except (OSError, ValueError):
        return None
    reason = doc.get("out_of_scope") if isinstance(doc, dict) else None
    return str(reason) if reason else None


def case_dir(out_root: Path, case_id: str) -> Path:
    return out_root / CASES_DIR / case_id


def is_finished(folder: Path) -> bool:
    """A case is finished when its result.json exists and parses (it is written last, atomically)."""
    try:
        doc = json.loads((folder / "result.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "schema_version" in doc


def process_case(
    case: Case,
    out_root: str,
    formats: tuple[str, ...],
    config: AnalysisConfig,
    overwrite: bool = False,
) -> CaseStatus:
    """Analyse ``case`` into ``out_root/cases/<case_id>/`` with ``config`` (the case's DICOM series chosen by
    discovery; a paired T1 file read beside the main scan); every error becomes a failed status."""
    from ..analysis import analyze
    from ..writers import write_result

    t0 = time.perf_counter()
    final = case_dir(Path(out_root), case.case_id)
    if not overwrite and is_finished(final):
        return finished_status(case.case_id, final)
    stage = "read"

    def track(name: str) -> None:
        nonlocal stage
        stage = name

    tmp = final.parent / f"{TMP_PREFIX}{case.case_id}@{_HOST}-{os.getpid()}"
    try:
        if case.problem:
            from ..errors import ScanReadError

            raise ScanReadError(case.problem)
        case_config = replace(config, series=case.series) if case.series else config
        if case.t1:
            # a file pair (BIDS T2w + T1w); a DICOM study's T1 series the analysis finds in the study itself
            result = analyze(case.path, case_config, progress=track, t1=case.t1)
        else:
            result = analyze(case.path, case_config, progress=track)
        stage = "write"
        shutil.rmtree(tmp, ignore_errors=True)
        write_result(result, tmp, formats)
        _swap_into_place(tmp, final)
        seconds = round(time.perf_counter() - t0, 3)
        # the analysis found nothing in scope: outputs are kept, and the run lists the case in failures.csv
        reason = getattr(result, "out_of_scope", None)
        if reason:
            return CaseStatus(case.case_id, "done", SCOPE_STAGE, OUT_OF_SCOPE, str(reason), seconds)
        return CaseStatus(case.case_id, "done", seconds=seconds)
    except Exception as exc:  # isolation: one bad case must never stop the cohort
        shutil.rmtree(tmp, ignore_errors=True)
        from ..errors import OpenSpineError

        message = str(exc) if isinstance(exc, OpenSpineError) else f"{exc} | {_last_frame(exc)}"
        return CaseStatus(
            case.case_id, "failed", stage, type(exc).__name__, message, round(time.perf_counter() - t0, 3)
        )


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp`` (a finished case folder appears in one rename)."""
    if final.exists():
        old = final.parent / f"{TMP_PREFIX}old-{final.name}@{_HOST}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _last_frame(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    return f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""


def remove_stale_temporaries(out_root: Path) -> int:
    """Delete temporary case folders left by processes that no longer run (after a kill)."""
    removed = 0
    base = out_root / CASES_DIR
    if not base.is_dir():
        return 0
    for p in base.iterdir():
        if not p.name.startswith(TMP_PREFIX):
            continue
        host_pid = p.name.rsplit("@", 1)[-1]
        host, _, pid_text = host_pid.rpartition("-")
        if host != _HOST or (pid_text.isdigit() and _pid_alive(int(pid_text))):
            continue  # another machine's, or a live process's: not ours to remove
        shutil.rmtree(p, ignore_errors=True)
        removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
