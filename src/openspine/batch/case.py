"""Analyse one case into its own folder, never raising: the result is a status record.

Outputs are written into a temporary sibling folder and renamed into place in one step, so an interrupted
run never leaves a half-written case folder that looks finished.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._logging import get_logger, naming_case
from ..io.paths import resolved
from ..writers import atomic_write_text
from .discover import Case

if TYPE_CHECKING:
    from ..config import AnalysisConfig

log = get_logger("batch")

CASES_DIR = "cases"
CASE_RECORD = "case.json"  # what the folder holds: the case's input, options and formats
FAILURE_RECORD = "failure.json"  # in the folder of a case that failed, instead of its outputs
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
    def case(self) -> str:
        """The case id as the tables name it (column ``case`` of failures.csv and cases.csv)."""
        return self.case_id

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
        doc = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    reason = doc.get("out_of_scope") if isinstance(doc, dict) else None
    return str(reason) if reason else None


def case_dir(out_root: Path, case_id: str) -> Path:
    return out_root / CASES_DIR / case_id


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def is_finished(folder: Path) -> bool:
    """A case is finished when its result.json exists and parses (it is written last, atomically)."""
    doc = _read_json(folder / "result.json")
    return doc is not None and "schema_version" in doc


def file_stamp(path: str | None) -> dict[str, int] | None:
    """A file's size and modification time (ns), which change when other content is saved under its name; None for
    a folder (a DICOM series is told by its SeriesInstanceUID) or a path that cannot be read."""
    if not path:
        return None
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return {"bytes": st.st_size, "modified_ns": st.st_mtime_ns} if Path(path).is_file() else None


def case_source(case: Case) -> dict[str, Any]:
    """What a case reads, as its folder's case.json records it: resolved paths, so that a case id that moves to
    another file (files added beside it, renamed) is never taken for the scan its folder holds, and each file's
    :func:`file_stamp`, so that another scan saved under the same name is not either."""
    return {
        "path": str(resolved(case.path)),
        "kind": case.kind,
        "series": case.series,
        "t1": str(resolved(case.t1)) if case.t1 else None,
        "t1_series": case.t1_series,
        "stamps": {"path": file_stamp(case.path), "t1": file_stamp(case.t1)},
    }


def _same_source(recorded: Any, now: dict[str, Any]) -> bool:
    """Whether a recorded :func:`case_source` names the same input as ``now``; a record written before the file
    stamps were kept is compared on the rest (a finished cohort is not redone for the upgrade)."""
    if not isinstance(recorded, dict):
        return False
    if "stamps" not in recorded:
        return recorded == {k: v for k, v in now.items() if k != "stamps"}
    return recorded == now


def case_config(case: Case, config: AnalysisConfig) -> AnalysisConfig:
    """The run's options with what discovery fixed for ``case``: its DICOM series, a picture's own pixel size; a
    scan that is no picture keeps its own voxel size, so batch's --pixel-spacing (which lets pictures in) is not
    passed to it (it had been, with a warning per case)."""
    if case.series:
        from ..io.dicom import ChosenSeries

        # discovery chose the series, not the user: the read gives its reason, not "as asked"
        reason = f"{case.series_reason} (chosen by batch discovery)" if case.series_reason else None
        config = replace(config, series=ChosenSeries(case.series, reason) if reason else case.series)
    if case.pixel_spacing is not None:
        config = replace(config, pixel_spacing=case.pixel_spacing)
    elif not _is_picture(case):
        config = replace(config, pixel_spacing=None)
    return config


def _is_picture(case: Case) -> bool:
    from ..io.formats import IMAGE

    return case.kind == IMAGE.name


def _options_not_applying(case: Case) -> set[str]:
    """Options that cannot change ``case``'s result, so a difference in them does not redo it: the pixel size of a
    scan that is no picture (adding or dropping batch's --pixel-spacing to let pictures in redid every DICOM and
    NIfTI case; user test)."""
    return set() if _is_picture(case) else {"pixel_spacing"}


def case_parameters(case: Case, config: AnalysisConfig) -> dict[str, Any]:
    """The analysis options of ``case`` (its DICOM series and pixel size included), as JSON gives them back."""
    return dict(json.loads(json.dumps(case_config(case, config).to_dict())))


def _case_record(case: Case, formats: tuple[str, ...], config: AnalysisConfig) -> dict[str, Any]:
    return {
        "case": case.case_id,
        "source": case_source(case),
        # the input as it lies under the root, links not followed (``source`` resolves them to compare inputs): the
        # name stale_cases.csv gives once the file is gone (it had named where a removed link pointed; user test)
        "named": os.path.abspath(case.path),
        "formats": sorted(formats),
        "parameters": case_parameters(case, config),
        "models": model_stamps(config),
    }


# model roles that an option may fill with a folder of its own; the other built-in models always run as shipped
_MODEL_ROLES = ("detector", "grader", "paired_grader")


def model_stamps(config: AnalysisConfig) -> dict[str, str]:
    """The weights each model of ``config`` runs with, as its card declares them (sha256): the built-in models and
    the folders of the model options; for SpineNet's weights folder, its checkpoints' sizes and times. A case made with
    other weights is analysed again: a grader fine-tuned again into the same folder had left every finished case
    graded by the old one (user test). Cards are read, not their weights hashed (the analysis checks those)."""
    from ..errors import OpenSpineError
    from ..models.registry import BUILTIN_DIR, builtin_names, model_folder

    folders = {name: BUILTIN_DIR / name for name in builtin_names()}
    for role in _MODEL_ROLES:
        value = getattr(config, role)
        if value is not None:
            try:
                folders[role] = model_folder(value, role)
            except OpenSpineError:  # the analysis says what is wrong with it
                folders.pop(role, None)
    out = {role: sha for role, folder in sorted(folders.items()) if (sha := _declared_sha256(folder / "card.json"))}
    # a user's own model folder: its card too, whose calibration and scope change results under the same weights
    # (user test: a card's temperature edited by hand, the batch kept every old grade); a built-in card changes only
    # with openspine itself, and its figures' wording must not redo a cohort
    for role in _MODEL_ROLES:
        if getattr(config, role) is not None and role in out and (card := _file_sha256(folders[role] / "card.json")):
            out[f"{role}_card"] = card
    if config.spinenet_weights:
        weights = _checkpoints_stamp(Path(config.spinenet_weights))
        out.update({"spinenet_weights": weights} if weights else {})
    return out


def _checkpoints_stamp(folder: Path) -> str | None:
    """The size and modification time of every checkpoint (``*.pt``) under SpineNet's weights folder, as one short
    digest (None: none there); its files are too large to hash for every case."""
    try:
        stats = [(p, p.stat()) for p in folder.rglob("*.pt")]
        found = sorted((str(p.relative_to(folder)), st.st_size, st.st_mtime_ns) for p, st in stats)
    except OSError:
        return None
    return hashlib.sha256(repr(found).encode()).hexdigest()[:16] if found else None


def _declared_sha256(card: Path) -> str | None:
    """The sha256 a model card declares (None: no readable card), read once per version of the file."""
    return _once_per_version(card, _card_sha256)


def _file_sha256(path: Path) -> str | None:
    """The sha256 of a small file's bytes (None: unreadable), computed once per version of the file."""
    return _once_per_version(path, _bytes_sha256)


def _once_per_version(path: Path, read: Callable[[str, int, int], str | None]) -> str | None:
    """``read(path, size, modification time)``, a cached reading of one version of a file; None where it is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return read(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _bytes_sha256(path: str, size: int, modified_ns: int) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


@functools.lru_cache(maxsize=64)
def _card_sha256(card: str, size: int, modified_ns: int) -> str | None:
    try:
        sha = json.loads(Path(card).read_text(encoding="utf-8")).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None
    return str(sha) if sha else None


def recorded_source(folder: Path) -> str | None:
    """The input path a case folder records (its case.json; result.json's ``input.path`` in a folder written by an
    openspine without case.json), or None."""
    record = _read_json(folder / CASE_RECORD)
    if record is not None and isinstance(record.get("source"), dict):
        return str(record["source"].get("path"))
    found = (_read_json(folder / "result.json") or {}).get("input")
    path = found.get("path") if isinstance(found, dict) else None
    return str(path) if path else None


def recorded_name(folder: Path) -> str | None:
    """The input as it lay under the root when the folder was made, links not followed (case.json's ``named``), else
    :func:`recorded_source`: what stale_cases.csv names once the input is gone (a removed link had been named by
    where it pointed; user test). Inputs are matched by :func:`recorded_source`, which follows links."""
    record = _read_json(folder / CASE_RECORD)
    if record is not None and isinstance(record.get("named"), str):
        return str(record["named"])
    return recorded_source(folder)


def holds_case(case: Case, folder: Path) -> bool:
    """Whether ``folder`` records ``case``'s own input (a result or a failure of another scan does not count)."""
    record = _read_json(folder / CASE_RECORD)
    if record is not None:
        return _same_source(record.get("source"), case_source(case))
    path = recorded_source(folder)  # an older folder: result.json's input path, relative to where it ran
    if path is None:
        return False
    mine, theirs = resolved(case.path), resolved(path)
    return theirs == mine or (mine.is_dir() and theirs.is_relative_to(mine))


# why a case is analysed (again): the kinds of :class:`Rerun`
NEW, INPUT_CHANGED, OPTIONS_CHANGED, FORMATS_MISSING, MODELS_CHANGED = "new", "input", "options", "formats", "models"


@dataclass(frozen=True)
class Rerun:
    """Why a case is analysed in this run: ``kind`` one of new (no finished result), input (its folder holds
    another scan's result), options (made with other analysis options), formats (outputs asked now are missing),
    models (made with other weights or another card of a model: :func:`model_stamps`); ``detail`` in words."""

    kind: str
    detail: str = ""


def rerun_reason(case: Case, folder: Path, formats: tuple[str, ...], config: AnalysisConfig) -> Rerun | None:
    """None when ``folder`` holds ``case``'s finished result, made with ``config`` and holding every output of
    ``formats``; else why the case must be analysed (again)."""
    doc = _read_json(folder / "result.json")
    if doc is None or "schema_version" not in doc:
        return Rerun(NEW)
    if not holds_case(case, folder):
        other = recorded_source(folder) or "an unknown input"
        if other == str(resolved(case.path)):
            recorded = _read_json(folder / CASE_RECORD) or {}
            stamps = (recorded.get("source") or {}).get("stamps") or {}
            which = case.t1 if case.t1 and stamps.get("t1") != file_stamp(case.t1) else case.path
            return Rerun(INPUT_CHANGED, f"'{which}' changed (size or modification time) since its result was made")
        return Rerun(INPUT_CHANGED, f"its folder holds the result of '{other}', not of '{case.path}'")
    record = _read_json(folder / CASE_RECORD)
    wanted = case_parameters(case, config)
    stored = record.get("parameters") if record is not None else doc.get("parameters")
    if isinstance(stored, dict):
        # only the options both name: one added by a newer openspine must not redo a whole finished cohort
        same_keys = (wanted.keys() & stored.keys()) - _options_not_applying(case)
        changed = sorted(k for k in same_keys if stored[k] != wanted[k])
        if changed:
            return Rerun(OPTIONS_CHANGED, ", ".join(changed))
    made_with = record.get("models") if record is not None else None
    if isinstance(made_with, dict):  # a folder from an openspine that kept no stamps is not redone for it
        now = model_stamps(config)
        changed = sorted(k for k in now.keys() & made_with.keys() if now[k] != made_with[k])
        if changed:
            return Rerun(MODELS_CHANGED, ", ".join(changed))
    written = set(record.get("formats") or ()) if record is not None else _formats_in(folder, doc)
    missing = sorted(set(formats) - written)
    if missing:
        return Rerun(FORMATS_MISSING, ", ".join(missing))
    return None


def _formats_in(folder: Path, doc: dict[str, Any]) -> set[str]:
    """The formats an older case folder (no case.json) holds: all of a format's files, or a note in
    ``steps_not_run`` that it was asked for and left out (DICOM SEG/SR of a scan not read from DICOM)."""
    from ..writers import OUTPUTS

    steps = doc.get("steps_not_run")
    not_run: dict[str, Any] = steps if isinstance(steps, dict) else {}
    return {
        f.name for f in OUTPUTS if all((folder / name).is_file() for name in f.files) or f"{f.name} output" in not_run
    }


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
    if not overwrite and rerun_reason(case, final, formats, config) is None:
        return finished_status(case.case_id, final)
    stage = "read"

    def track(name: str) -> None:
        nonlocal stage
        stage = name

    # every log line of the case, its reading, analysis and writing, names it in a log that several workers share
    with naming_case(case.case_id):
        tmp = final.parent / temporary_name(case.case_id)
        try:
            if case.problem:
                from ..errors import ScanReadError

                raise ScanReadError(case.problem)
            options = case_config(case, config)
            if case.t1:
                # a file pair (BIDS T2w + T1w); a DICOM study's T1 series the analysis finds in the study itself
                result = analyze(case.path, options, progress=track, t1=case.t1)
            else:
                result = analyze(case.path, options, progress=track)
            stage = "write"
            shutil.rmtree(tmp, ignore_errors=True)
            write_result(result, tmp, formats)
            atomic_write_text(tmp / CASE_RECORD, json.dumps(_case_record(case, formats, config), indent=2) + "\n")
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
            message = one_line(message)
            return CaseStatus(
                case.case_id, "failed", stage, type(exc).__name__, message, round(time.perf_counter() - t0, 3)
            )


def one_line(message: str) -> str:
    """A failure's message on one line (a library's may span several: nibabel's on a truncated file), its spaces
    otherwise kept (a path in it stays as it is)."""
    return re.sub(r"[ \t]*[\r\n]+[ \t]*", " ", message).strip()


def record_failure(
    out_root: Path, case: Case, status: CaseStatus, formats: tuple[str, ...], config: AnalysisConfig
) -> None:
    """Replace the case's folder by one that records the failure (case.json, failure.json), so that failures.csv,
    rebuilt from the case folders, lists it whichever shard ran it; earlier outputs in the folder go (they are
    another scan's or other options' result, and the case now counts as failed). Never raises: the run goes on."""
    final = case_dir(out_root, case.case_id)
    tmp = final.parent / temporary_name(case.case_id)
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        atomic_write_text(tmp / CASE_RECORD, json.dumps(_case_record(case, formats, config), indent=2) + "\n")
        atomic_write_text(tmp / FAILURE_RECORD, json.dumps(status.to_dict(), indent=2) + "\n")
        _swap_into_place(tmp, final)
    except OSError as exc:  # failures.csv still lists it from this run's statuses
        shutil.rmtree(tmp, ignore_errors=True)
        log.warning("case %s: cannot record its failure in %s: %s", case.case_id, final, exc.strerror or exc)


def recorded_failure(folder: Path) -> CaseStatus | None:
    """The failure a case folder records (failure.json), or None."""
    doc = _read_json(folder / FAILURE_RECORD)
    if doc is None or is_finished(folder):
        return None
    fields = ("case_id", "status", "stage", "error_type", "message", "seconds")
    try:
        return CaseStatus(**{k: doc[k] for k in fields if k in doc})
    except TypeError:  # not a record this code wrote
        return None


def adopt_moved_folders(out_root: Path, cases: list[Case], found: list[Case]) -> int:
    """Give each of ``cases`` without a folder the folder that records its input under another id that no case
    found now has (its id changed: a file added beside it whose path gives the same id), renamed in one step, so
    that its result is kept rather than analysed again; return how many moved. ``found``: every case found now."""
    base = out_root / CASES_DIR
    if not base.is_dir():
        return 0
    ids = {c.case_id for c in found}
    orphans: dict[str, Path] = {}
    for folder in base.iterdir():
        source = None if folder.name in ids or folder.name.startswith(TMP_PREFIX) else recorded_source(folder)
        if source:
            orphans[str(resolved(source))] = folder
    moved = 0
    for case in cases:
        old, final = orphans.get(str(resolved(case.path))), case_dir(out_root, case.case_id)
        if old is None or final.exists() or not holds_case(case, old):
            continue
        try:
            os.rename(old, final)
        except OSError as exc:  # another run took it first, or the file system refuses: analysed again instead
            log.debug("case folder %s not renamed to %s: %s", old.name, final.name, exc)
            continue
        _record_new_id(final, case.case_id)
        log.info("case folder %s renamed %s: its input's case id changed", old.name, final.name)
        moved += 1
    return moved


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp`` (a finished case folder appears in one rename)."""
    if final.exists():
        old = final.parent / temporary_name(f"old-{final.name}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _record_new_id(folder: Path, case_id: str) -> None:
    """Write ``case_id`` into the case.json (and failure.json) of a folder renamed to it: the records had kept the
    old id (user test)."""
    for name, key in ((CASE_RECORD, "case"), (FAILURE_RECORD, "case_id")):
        doc = _read_json(folder / name)
        if isinstance(doc, dict) and key in doc and doc[key] != case_id:
            atomic_write_text(folder / name, json.dumps({**doc, key: case_id}, indent=2) + "\n")


def _last_frame(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    return f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""


# the longest file name most file systems take (bytes): a case id may use it all, its temporary folder may not
MAX_NAME_BYTES = 255


def temporary_name(name: str) -> str:
    """The name of this process's temporary folder for ``name`` (a case id): ``.tmp-<name>@<host>-<pid>``, the
    name shortened with a digest of it where the whole would pass :data:`MAX_NAME_BYTES` (a case from a file whose
    name is already 255 bytes long could otherwise never be written)."""
    tail = f"@{_HOST}-{os.getpid()}"
    whole = f"{TMP_PREFIX}{name}{tail}"
    if len(whole.encode()) <= MAX_NAME_BYTES:
        return whole
    digest = "~" + hashlib.sha256(name.encode()).hexdigest()[:12]
    room = MAX_NAME_BYTES - len(f"{TMP_PREFIX}{digest}{tail}".encode())
    kept = name.encode()[: max(room, 0)].decode(errors="ignore")
    return f"{TMP_PREFIX}{kept}{digest}{tail}"


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
        if host != _HOST or (pid_text.isdigit() and pid_alive(int(pid_text))):
            continue  # another machine's, or a live process's: not ours to remove
        shutil.rmtree(p, ignore_errors=True)
        removed += 1
    return removed


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie, ended but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not Path("/proc").is_dir():  # not Linux: the signal check is all there is
        return True
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:  # reaped just now
        return False
