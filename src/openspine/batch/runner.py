"""Run a batch: discover, shard, skip finished cases, process on local workers or a Dask cluster, then
write the cohort tables, failures.csv, skipped.csv and a summary. One run per output folder and shard at a time."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from .._logging import get_logger, log_lines_over_the_bar, naming_case
from ..config import AnalysisConfig
from ..errors import BatchInterrupted, ConfigError, OutputError, OutputInUseError, ScanReadError
from ..io.paths import resolved
from ..writers import atomic_write_text, refuse_output_inside, utf8_bytes
from .case import (
    FORMATS_MISSING,
    INPUT_CHANGED,
    MODELS_CHANGED,
    NEW,
    OPTIONS_CHANGED,
    CaseStatus,
    Rerun,
    adopt_moved_folders,
    case_dir,
    finished_status,
    pid_alive,
    process_case,
    record_failure,
    remove_stale_temporaries,
    rerun_reason,
)
from .discover import Case, discover_cases
from .spacing import PictureSpacings, read_spacing_table
from .tables import (
    SHOWN,
    build_cohort_tables,
    failure_rows,
    find_stale_cases,
    parquet_writer_loaded,
    prefetch_parquet_writer,
    switched_series,
    write_failures,
    write_skipped,
    write_stale,
)

DICOM_KINDS = ("dicom", "dicom-zip")  # the readers whose cases can have DICOM SEG/SR outputs

log = get_logger("batch")


EXIT_OUT_OF_SCOPE = 3  # as `openspine analyze` for an out-of-scope scan


@dataclass
class BatchSummary:
    """Counts of a run, each case in one of them. ``done`` are the in-scope cases analysed now, ``skipped`` the
    in-scope ones finished earlier; ``out_of_scope`` counts the cases of this run (analysed now or earlier) whose
    result found nothing in scope: their outputs are written and they are listed in failures.csv with stage "scope";
    ``out_of_scope_earlier`` says how many of them were finished earlier. ``files_skipped`` counts the files under
    the input root that are no case (skipped.csv says why)."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    out_of_scope: int = 0
    out_of_scope_earlier: int = 0
    files_skipped: int = 0
    redone: int = 0  # finished earlier, analysed again: their input, options or formats differ from now
    stale: int = 0  # case folders whose input is no longer under the root (stale_cases.csv)
    seconds: float = 0.0
    failures: list[CaseStatus] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """1 when a case failed; else 3 when a case is out of scope (as `openspine analyze`); else 0."""
        if self.failed:
            return 1
        return EXIT_OUT_OF_SCOPE if self.out_of_scope else 0

    def line(self) -> str:
        analysed = self.done + sum(1 for f in self.failures if f.out_of_scope and f.status == "done")
        rate = (analysed / self.seconds * 3600) if self.seconds > 0 and analysed else 0.0
        # this run's own cases: none tried (a rerun with every case finished), or tried and every one failed
        pace = f"{rate:.0f} scans/hour" if analysed else "none analysed" if self.failed else "nothing left to analyse"
        earlier = f", {self.out_of_scope_earlier} finished earlier" if self.out_of_scope_earlier else ""
        listed = f" (in failures.csv{earlier})" if self.out_of_scope else ""
        # said only when it happens: a finished case analysed again, a case folder left without input
        # (apart from the counts: a case analysed again may have succeeded, failed or be out of scope)
        redone = f"; {self.redone} finished earlier, analysed again (input, options, model weights or formats changed)"
        stale = f", {self.stale} case folder(s) without a case in this run (stale_cases.csv)" if self.stale else ""
        return (
            f"{self.done} succeeded, {self.skipped} skipped (finished earlier), {self.failed} failed, "
            f"{self.out_of_scope} out of scope{listed}, {self.files_skipped} file(s) not analysed (skipped.csv)"
            f"{stale} in {self.seconds:.1f} s ({pace})" + (redone if self.redone else "")
        )

    def count(self, status: CaseStatus) -> None:
        """Add one case's status."""
        if status.out_of_scope:  # now or earlier: counted here alone, so the counts add up to the cases
            self.out_of_scope += 1
            self.out_of_scope_earlier += status.status == "skipped"
            self.failures.append(status)
        elif status.status == "done":
            self.done += 1
        elif status.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
            self.failures.append(status)
            with naming_case(status.case_id):  # "case <id>: failed at …", and "case" in a JSON record
                log.warning("failed at %s: %s: %s", status.stage, status.error_type, status.message)


def parse_part(text: str | None) -> tuple[int, int]:
    """'K/N' (1 ≤ K ≤ N) → (K, N); None → (1, 1)."""
    if text is None:
        return 1, 1
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--part must look like K/N (e.g. 3/10), got '{text}'") from None
    return checked_part((k, n))


def _checked_config(config: Any) -> AnalysisConfig:
    """``config`` as an :class:`AnalysisConfig`: None gives the defaults, a dict of its fields is read as
    :func:`openspine.analyze` reads one (it had failed with an AttributeError); anything else is a ConfigError."""
    if config is None:
        return AnalysisConfig()
    if isinstance(config, Mapping):
        return AnalysisConfig.from_mapping(dict(config))
    if not isinstance(config, AnalysisConfig):
        raise ConfigError(
            f"config must be an openspine.AnalysisConfig or a dict of its options, got {type(config).__name__}"
        )
    return config


def checked_part(part: Any) -> tuple[int, int]:
    """``part`` as (K, N) with 1 ≤ K ≤ N, else ConfigError: from Python, part=(0, 3) had analysed no case and
    reported success, part=(1, 0) had ended in a ZeroDivisionError. ``"K/N"`` as the command line writes it is read
    too."""
    if isinstance(part, str):
        return parse_part(part)
    try:
        k, n = part
        ok = all(isinstance(x, int) and not isinstance(x, bool) for x in (k, n)) and 1 <= k <= n
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"part needs whole numbers with 1 ≤ K ≤ N, as (K, N) or 'K/N', got {part!r}")
    return k, n


def checked_workers(workers: Any) -> int:
    """``workers`` as a whole number of at least 1, else ConfigError (from Python, 0 and -1 had been taken)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers!r}")
    return workers


# how a case that failed to write for want of space says so (OutputError carries the system's words)
_NO_SPACE = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))


def disk_full(status: CaseStatus) -> bool:
    """Whether a case failed to write its outputs because the output disk (or the user's quota) is full."""
    return status.status == "failed" and status.stage == "write" and any(w in status.message for w in _NO_SPACE)


def disk_full_message(out: Path, status: CaseStatus, done: int) -> str:
    """The one line that ends a run on a full disk."""
    return (
        f"the output disk is full: case {status.case_id} could not be written into '{out}' ({status.message}); the "
        f"run stopped there, the {done} case(s) finished in this run are kept: make room (or choose another --out) "
        "and run the same command again to go on"
    )


def select_part(cases: list[Case], part: tuple[int, int]) -> list[Case]:
    """The deterministic K-th of N shares: every N-th case of the sorted list, starting at K."""
    k, n = part
    return [c for i, c in enumerate(sorted(cases, key=lambda c: c.case_id)) if i % n == k - 1]


# descriptors of the locks this process holds: a forked worker closes its copies, so that a worker left running
# never holds a run's lock (a flock lasts while any process holds a descriptor of it)
_HELD_LOCKS: set[int] = set()


_LOCK_NAME = re.compile(r"\.openspine-batch-(\d+)-of-(\d+)\.lock")  # the lock file of part P of M


class OutputLock:
    """An exclusive lock on (output folder, shard): a second run on the same shard is refused clearly. The lock
    itself is the truth: a lock file left by a killed run does not block, only a process still holding it."""

    def __init__(self, out_root: Path, part: tuple[int, int]) -> None:
        self.path = out_root / f".openspine-batch-{part[0]}-of-{part[1]}.lock"
        self.part = part
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a path too long, a folder that cannot be written: one line, not a traceback
            raise OutputError(
                f"cannot write into the output folder '{self.path.parent}': {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 100).decode(errors="replace").strip()
            os.close(fd)
            why, lasts = self._held_by(holder)
            # a live run ends by itself (75: try again later); a process left from a dead one does not (1)
            raise (OutputError(why) if lasts else OutputInUseError(why)) from None
        other = self._other_split_running()
        if other is not None:
            os.close(fd)
            raise OutputInUseError(
                f"another openspine batch runs (or starts) part {other} of this output folder "
                f"'{self.path.parent}', a split into other parts than {self.part[0]}/{self.part[1]}: their cases "
                "overlap; wait for it to finish, "
                "or run every part of one split"
            )
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {os.uname().nodename}".encode())
        except OSError as exc:  # a full disk: one line, not a traceback
            os.close(fd)
            raise OutputError(
                f"cannot write into the output folder '{self.path.parent}': {exc.strerror or exc}"
            ) from exc
        self.fd = fd
        _HELD_LOCKS.add(fd)
        return self

    def _other_split_running(self) -> str | None:
        """The part (``P/M``) of a run of another split into parts that holds this folder now, or None: parts 1/2
        and 1/1 (or 2/3) on one folder would analyse some cases twice, side by side."""
        import fcntl

        for path in sorted(self.path.parent.glob(".openspine-batch-*-of-*.lock")):
            named = _LOCK_NAME.fullmatch(path.name)
            if named is None or int(named[2]) == self.part[1]:
                continue
            try:
                probe = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return f"{named[1]}/{named[2]}"
            finally:
                os.close(probe)  # a shared lock taken here goes with it
        return None

    def _held_by(self, holder: str) -> tuple[str, bool]:
        """The refusal, in one line: who runs, or which left-over process holds the lock of a run that ended; and
        whether it is the latter (it holds the lock until it is ended)."""
        words = holder.split()
        pid = int(words[1]) if len(words) == 4 and words[0] == "pid" and words[1].isdigit() else None
        here = len(words) == 4 and words[3] == os.uname().nodename
        if pid is not None and here and not pid_alive(pid):
            holders = " ".join(map(str, _processes_holding(self.path)))
            which, end = (
                (f"process(es) {holders}", f"kill {holders}") if holders else ("a process", "fuser -v names it")
            )
            return (
                f"the lock '{self.path}' is held by {which} left from openspine batch pid {pid}, which no longer "
                f"runs (killed?); end what holds it ({end}) and rerun"
            ), True
        return (
            f"another openspine batch ({holder or 'unknown process'}) is writing this shard of "
            f"'{self.path.parent}'; wait for it to finish or use another --out"
        ), False

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            _HELD_LOCKS.discard(self.fd)
            os.close(self.fd)  # closing releases the flock
            self.fd = None


def _processes_holding(path: Path) -> list[int]:
    """The processes of this user with ``path`` open (Linux /proc; empty elsewhere)."""
    target = str(resolved(path))
    pids: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return pids
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) == target for fd in (entry / "fd").iterdir()):
                pids.append(int(entry.name))
        except OSError:  # another user's process, or one that has just ended
            continue
    return sorted(pids)


@contextmanager
def _tables_lock(out_root: Path) -> Iterator[None]:
    """Shards of one output folder build its tables one at a time: each reads every case folder and writes the
    tables whole, so the last shard to finish writes them with every shard's cases."""
    import fcntl

    fd = os.open(out_root / ".openspine-tables.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits: building the tables takes seconds
        yield
    finally:
        os.close(fd)


# which runs into one output folder have finished their cases, and up to which the tables hold them: parts of one
# run (--part K/N) finishing together build the tables once or twice, not once each in a queue (ten parts of a
# 3 000-case cohort had queued 13 s each)
_TABLES_STATE = ".openspine-tables.json"


@contextmanager
def _state_lock(out_root: Path) -> Iterator[dict[str, Any]]:
    """The tables' state (``finished``: runs that finished their cases, counted; ``built``: the count the tables
    last built hold; ``counts``: their row counts), held for a moment; what the block leaves in it is written."""
    import fcntl

    fd = os.open(out_root / ".openspine-tables-state.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = out_root / _TABLES_STATE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        state = state if isinstance(state, dict) else {}
        before = dict(state)
        yield state
        if state != before:
            atomic_write_text(path, json.dumps(state) + "\n")
    finally:
        os.close(fd)


def _state_count(state: dict[str, Any], key: str) -> int:
    """A count of the tables' state; 0 where the file holds none (or something else: a hand edit)."""
    value = state.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _tables_ticket(out_root: Path) -> int:
    """Count this run among those that finished their cases; its number."""
    with _state_lock(out_root) as state:
        state["finished"] = _state_count(state, "finished") + 1
        return int(state["finished"])


def _tables_state(out_root: Path) -> dict[str, Any]:
    with _state_lock(out_root) as state:
        return dict(state)


def _tables_built(out_root: Path, finished: int, cohort: str, counts: dict[str, int], stale: int) -> None:
    """The tables now hold the cases of every run counted up to ``finished`` (read before they were built), of the
    cohort ``cohort`` (:func:`_cohort_key`); ``stale``: the case folders listed in stale_cases.csv."""
    with _state_lock(out_root) as state:
        if finished >= _state_count(state, "built"):
            state.update(built=finished, cohort=cohort, counts=counts, stale=stale)


def _cohort_key(root: Path, found: list[Case]) -> str:
    """What the tables are built of: the input root and the cases found under it."""
    text = "\n".join([str(resolved(root)), *sorted(f"{c.case_id}\t{c.path}" for c in found)])
    return hashlib.sha256(utf8_bytes(text)).hexdigest()


def _local_statuses(
    cases: list[Case], out_root: Path, formats: tuple[str, ...], config: AnalysisConfig, overwrite: bool, workers: int
) -> Iterable[CaseStatus]:
    if workers <= 1:
        return _in_process(cases, out_root, formats, config, overwrite)
    args = (str(out_root), formats, config, overwrite)
    pool = _new_pool(workers)
    # submitting forks the workers now, before the caller starts a progress bar (forking beside threads is unsafe)
    futures = {pool.submit(process_case, c, *args): c for c in cases}
    return _PoolStatuses(_pool_statuses(pool, futures, args, workers), pool)


class _PoolStatuses:
    """A pool's statuses whose :meth:`close` also shuts the pool down when they were never asked for: an
    interruption between submitting the cases and taking the first status had left every case to run on (the
    generator's own clean-up runs only once it has started)."""

    def __init__(self, statuses: Generator[CaseStatus, None, None], pool: Any) -> None:
        self.statuses, self.pool = statuses, pool

    def __iter__(self) -> Iterator[CaseStatus]:
        return self.statuses

    def close(self) -> None:
        self.statuses.close()
        with _a_second_signal_ends_at_once():
            pending = list((getattr(self.pool, "_pending_work_items", None) or {}).values())  # before any status
            if any(getattr(w, "future", None) is not None and w.future.running() for w in pending):
                _say_stopping()
            self.pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _sigterm_stops_the_run() -> Iterator[None]:
    """From Python, SIGTERM (a job's time limit) stops a run's cases as Ctrl-C does, with :class:`BatchInterrupted`
    saying how far it got: it had ended the process at once, without a word. Only while the cases are analysed (before,
    nothing is done to say), where SIGTERM has its default action and this is the main thread (the command line sets
    its own handler; a program's own handler is left alone); the default action is back afterwards."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _say_stopping() -> None:
    """Said where a stopped run waits for the cases its workers hold: a stuck case had kept it waiting without a word
    (user test). A second signal ends it at once only where the handlers are set (the main thread)."""
    again = "; interrupt again to end at once" if threading.current_thread() is threading.main_thread() else ""
    log.warning("stopping: waiting for the workers to finish the cases they hold%s", again)


@contextmanager
def _a_second_signal_ends_at_once() -> Iterator[None]:
    """While an interrupted run waits for its workers, a second Ctrl-C or SIGTERM ends the process at once (its
    workers end with it, and the next run removes what they left): a second signal had left the run hung for good,
    its workers alive and its lock held. Handlers can be set in the main thread only; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, signal.SIG_DFL)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start_method() -> str:
    """How worker processes start now: "fork" or "spawn"."""
    from ..models.registry import sessions_started

    # fork is fastest (no re-import per worker) and safe while this process runs no other thread; otherwise a
    # clean interpreter per worker (spawn). PyTorch and onnxruntime count as other threads: once either has run in
    # this process (a model trained, fine-tuned or run in the same notebook) their native threads exist, and forked
    # workers hung for ever (reproduced: a two-channel grader trained with torch, or openspine.analyze on one scan,
    # then run_batch(workers=2) in the same process)
    forkable = threading.active_count() == 1 and "torch" not in sys.modules and not sessions_started()
    return "fork" if sys.platform == "linux" and forkable else "spawn"


def _new_pool(workers: int) -> Any:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    method = _start_method()
    if method == "spawn" and sys.platform == "linux" and _called_from_a_scripts_top_level():
        # a pool that replaces a broken one, in a script whose run_batch call is unguarded (run_batch refuses that
        # where its first pool would start fresh): fresh workers would re-run the script and die, so they fork as
        # the first pool's did, though a thread (the progress bar's monitor) now runs beside
        method = "fork"
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=mp.get_context(method), initializer=_worker_init, initargs=(os.getpid(),)
    )


UNGUARDED_SCRIPT = (
    "run_batch with worker processes is called in the top level of a script that each of them, started fresh, "
    'would re-run: put the call under `if __name__ == "__main__":` (or give workers=1, without a local cluster)'
)


def _called_from_a_scripts_top_level() -> bool:
    """Whether this call runs in the top level of the ``__main__`` module that a worker process started fresh (spawn)
    re-runs: a script file or a module run with ``-m`` (not a package's ``__main__``, nor a notebook or ``-c``, which
    multiprocessing does not re-run)."""
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    if spec_name is not None:
        rerun = spec_name != "__main__" and not spec_name.endswith(".__main__")
    else:
        rerun = getattr(main, "__file__", None) is not None
    if not rerun or main is None:
        return False
    frame = _module_frame(lambda globals_: globals_ is vars(main))
    return frame is not None and not _under_a_main_guard(getattr(main, "__file__", None), frame.f_lineno)


def _module_frame(which: Callable[[dict[str, Any]], bool]) -> FrameType | None:
    """The innermost frame of this call's stack that runs a module's top level whose globals ``which`` accepts."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and which(frame.f_globals):
            return frame
        frame = frame.f_back
    return None


def _under_a_main_guard(path: str | None, line: int | None) -> bool:
    """Whether ``line`` of the script ``path`` lies where a worker importing the script (as ``__mp_main__``) does not
    run it: in the branch of an ``if`` on ``__name__`` that ``__mp_main__`` does not take (True where the script
    cannot be read or parsed, or a test cannot be told: nothing is refused on a guess)."""
    import ast

    try:
        tree = ast.parse(Path(str(path)).read_text(encoding="utf-8"))
    except (OSError, ValueError, SyntaxError):
        return True
    if line is None:
        return True
    for node in ast.walk(tree):
        if not isinstance(node, ast.If) or not node.lineno <= line <= (node.end_lineno or line):
            continue
        taken = _test_in_a_worker(node.test)
        if taken is None and _reads_name(node.test):
            return True  # a test on __name__ that cannot be told: guarded, on no guess
        in_else = any(o.lineno <= line <= (o.end_lineno or o.lineno) for o in node.orelse)
        if taken is not None and taken == in_else:  # the branch a worker does not take
            return True
    return False


def _reads_name(test: object) -> bool:
    import ast

    return isinstance(test, ast.AST) and any(isinstance(n, ast.Name) and n.id == "__name__" for n in ast.walk(test))


def _test_in_a_worker(test: object) -> bool | None:
    """The value of an ``if`` test in a worker's import of the script (``__name__`` is ``"__mp_main__"``): for
    comparisons of ``__name__`` with a string, ``not``, ``and``, ``or`` (``if __name__ == "__main__":``,
    ``if __name__ != "__main__": … else: …``, ``if __name__ == "__main__" and …``); None where it cannot be told."""
    import ast

    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _test_in_a_worker(test.operand)
        return None if inner is None else not inner
    if isinstance(test, ast.BoolOp):
        values = [_test_in_a_worker(v) for v in test.values]
        if isinstance(test.op, ast.And):
            return False if False in values else (None if None in values else True)
        return True if True in values else (None if None in values else False)
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq)):
        sides = [test.left, test.comparators[0]]
        if any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides):
            text = next((x.value for x in sides if isinstance(x, ast.Constant) and isinstance(x.value, str)), None)
            if text is None:
                return None
            return (text == "__mp_main__") == isinstance(test.ops[0], ast.Eq)
    return None


def _in_a_workers_import_of_the_script() -> bool:
    """Whether this call runs in the top level of a script that a worker process started fresh is importing (as
    ``__mp_main__``): the script calls run_batch outside ``if __name__ == "__main__":``."""
    return _module_frame(lambda globals_: globals_.get("__name__") == "__mp_main__") is not None


WORKER_DIED = "WorkerDied"
# why a worker may die, as the messages say it. A script whose unguarded run_batch call fresh workers would re-run is
# refused before any case (UNGUARDED_SCRIPT), so the command line's message no longer names that cause (user test)
DEATH_CAUSES = "killed, or out of memory, or a crash in a native library"


def _pool_statuses(
    pool: Any, futures: dict[Any, Case], args: tuple[Any, ...], workers: int
) -> Generator[CaseStatus, None, None]:
    """Statuses as cases finish, surviving the death of a worker (killed, out of memory, crashed library).

    A dead worker breaks the whole pool; finished cases are kept. The first time, the unfinished cases simply go
    on in a fresh pool (deaths from outside - the out-of-memory killer, a preempted node - are the common kind).
    If that pool breaks too, the cases that may have been running (the first ``workers + 1`` unfinished ones: the
    pool hands out cases in order and queues one ahead) are retried one at a time in a single-worker pool, so a
    case that kills its worker even alone is reported failed without taking others with it; the rest go on in a
    fresh pool.
    """
    queue: list[Case] = []
    suspects: list[Case] = []
    alone = False
    broke_before = False
    while True:
        broken, leftovers = yield from _drain(pool, futures)
        if broken:
            remove_stale_temporaries(Path(args[0]))  # the half-written folder of the case the worker was on
        if broken and alone:
            case = leftovers[0]
            log.warning("case %s made its worker process die when analysed alone; reported as failed", case.case_id)
            yield CaseStatus(
                case.case_id,
                "failed",
                "worker",
                WORKER_DIED,
                f"the worker process died while analysing this case alone ({DEATH_CAUSES})",
            )
        elif broken and not broke_before:
            log.warning(
                "a worker process died (%s); the %d unfinished case(s) go on in a fresh pool",
                DEATH_CAUSES,
                len(leftovers),
            )
            queue = leftovers + queue
            broke_before = True
        elif broken:
            log.warning(
                "a worker process died again; %d case(s) it may have been running are retried one at a time, "
                "%d more continue afterwards",
                min(len(leftovers), workers + 1),
                max(0, len(leftovers) - workers - 1),
            )
            suspects += leftovers[: workers + 1]
            queue = leftovers[workers + 1 :] + queue
        if suspects:
            case, alone = suspects.pop(0), True
            pool = _new_pool(1)
            futures = {pool.submit(process_case, case, *args): case}
        elif queue:
            pool, alone = _new_pool(workers), False
            futures = {pool.submit(process_case, c, *args): c for c in queue}
            queue = []
        else:
            return


def _drain(pool: Any, futures: dict[Any, Case]) -> Generator[CaseStatus, None, tuple[bool, list[Case]]]:
    """Yield the statuses of ``futures`` as they complete; return (pool broke, unfinished cases in order)."""
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    yielded: set[Any] = set()
    broken = False
    try:
        for fut in as_completed(futures):
            try:
                status = fut.result()
            except BrokenProcessPool:
                broken = True
                break
            yielded.add(fut)
            yield status
    finally:
        if broken:
            _kill_workers(pool)
        with _a_second_signal_ends_at_once():  # this waits for the cases handed out (after Ctrl-C too)
            if not broken and any(f.running() for f in futures):  # stopped early (Ctrl-C, SIGTERM)
                _say_stopping()
            pool.shutdown(wait=True, cancel_futures=True)
    leftovers: list[Case] = []
    for fut, case in futures.items():
        if fut in yielded:
            continue
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            yield fut.result()  # finished just before the pool broke
        else:
            leftovers.append(case)
    return broken, leftovers


def _kill_workers(pool: Any) -> None:
    """SIGKILL a broken pool's remaining workers: the pool only sends them SIGTERM and then waits for them, and a
    worker that outlives it (a library's own handler, a lock a dead worker held) would hang the run for good. Their
    cases are handed out again."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with suppress(OSError, ValueError):  # ended already, or closed
            process.kill()


def _result_stamp(out: Path, case: Case) -> tuple[int, int] | None:
    """The case's result.json as (inode, modification time in ns), None where there is none: a result written since
    the stamp was taken has another (written elsewhere and renamed into place)."""
    try:
        st = (case_dir(out, case.case_id) / "result.json").stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _in_process(
    cases: list[Case], out_root: Path, formats: tuple[str, ...], config: AnalysisConfig, overwrite: bool
) -> Iterator[CaseStatus]:
    from ..models import get_default_threads, set_default_threads

    # one worker = one core, as in the worker processes: use --workers N to use N cores
    before = get_default_threads()
    set_default_threads(1)
    try:
        for c in cases:
            yield process_case(c, str(out_root), formats, config, overwrite)
    finally:
        set_default_threads(before)


def _worker_init(parent: int) -> None:
    """Keep each worker to one compute thread so N workers use N cores, not N × cores; let go of the run's
    locks; and end the worker when the run's process ``parent`` ends (killed: the worker would otherwise live on,
    idle, for ever)."""
    for fd in list(_HELD_LOCKS):  # inherited by fork: the run's process alone holds its locks
        with suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()
    # a forked worker inherits the command line's SIGTERM handler, which turns the signal into KeyboardInterrupt; the
    # pool's own terminate() of a broken pool's workers was then caught as the case's error and the worker lived on,
    # waiting for work behind a queue lock the dead worker held, and the run hung for good (seen on a slow machine);
    # one worker stopped by SIGTERM also stopped the whole run as Ctrl-C would
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _end_with_parent(parent)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from ..models import forget_sessions, set_default_threads

    # a forked worker must not run the parent's model sessions: their thread pools' threads are not here, and a
    # worker forked after an analysis in the same process (a notebook) could wait for them for ever
    forget_sessions()
    set_default_threads(1)


PARENT_CHECK_S = 1.0  # how often a worker looks whether the run's process still lives, where Linux cannot say


def _end_with_parent(parent: int) -> None:
    """Linux kills this process when ``parent`` dies (prctl PR_SET_PDEATHSIG); elsewhere a thread looks every
    second whether the parent changed (the process was re-parented: its parent died) and ends the process."""
    if sys.platform.startswith("linux") and _set_parent_death_signal(signal.SIGKILL):
        if os.getppid() != parent:  # the parent died before the signal was asked for
            os._exit(1)
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="openspine-parent-watch", daemon=True).start()


def _set_parent_death_signal(sig: int) -> bool:
    """prctl(PR_SET_PDEATHSIG, sig) through libc; False where it is not available."""
    import ctypes

    pr_set_pdeathsig = 1  # linux/prctl.h
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(pr_set_pdeathsig, sig, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def run_batch(
    input_root: str | os.PathLike[str],
    out_root: str | os.PathLike[str],
    *,
    formats: str | tuple[str, ...] | list[str] | None = None,
    config: AnalysisConfig | Mapping[str, Any] | None = None,
    overwrite: bool = False,
    part: tuple[int, int] | str = (1, 1),
    workers: int = 1,
    scheduler: str | None = None,
    cluster: str | None = None,
    progress: Callable[[Iterable[CaseStatus], int], Iterable[CaseStatus]] | None = None,
    pixel_spacing_table: str | os.PathLike[str] | None = None,
) -> BatchSummary:
    """Process every case under ``input_root`` into ``out_root`` with the analysis options ``config`` (an
    :class:`~openspine.config.AnalysisConfig` or a dict of its fields; default: its defaults); never stops for one bad
    case. ``part``: ``(K, N)`` or ``"K/N"``, the K-th of N disjoint shares of the cases. Raises ScanReadError when
    no case at all is found under ``input_root`` (skipped.csv says why each entry there was passed over).
    ``pixel_spacing_table``: a CSV giving pictures their own pixel size (:mod:`.spacing`); ``config.pixel_spacing``
    then applies to the pictures it does not list (without it they are skipped)."""
    from .._optional import DISTRIBUTED_MODULES, install_hint, is_installed, require_optional
    from ..writers import parse_formats, prepare_output_dir

    if _in_a_workers_import_of_the_script():
        raise ConfigError(
            "run_batch was called again by a worker process importing the script that calls it: put the call under "
            '`if __name__ == "__main__":` (each worker process started fresh re-runs the script\'s top level)'
        )
    t0 = time.perf_counter()
    part, workers = checked_part(part), checked_workers(workers)
    local = scheduler is None and cluster is None
    # a local Dask cluster starts its workers fresh too (a remote scheduler's workers import no script of ours)
    fresh = (local and workers > 1 and _start_method() == "spawn") or str(cluster or "").startswith("local")
    if fresh and _called_from_a_scripts_top_level():
        # each fresh worker would re-run the script and die, and every case be retried alone, about 9 s each, all to
        # fail (user test: 21 of 30 cases in 200 s, 33 tracebacks): refused before the output folder is made
        raise ConfigError(UNGUARDED_SCRIPT)
    formats = parse_formats(formats)  # None: json, csv, png, html (as the command line)
    # before discovery and the first case: the optional packages, the input and the output folder
    if scheduler is not None and not scheduler.strip():  # an unset variable in a job script: not "run here"
        raise ConfigError("--scheduler is empty: give the Dask scheduler's address (tcp://HOST:8786)")
    if scheduler or cluster:
        require_optional(DISTRIBUTED_MODULES, "batch --scheduler/--cluster")
    if not is_installed("pyarrow"):  # said at the start too: the tables come after every case (user test)
        log.warning("Parquet tables will not be written: install pyarrow (%s)", install_hint(["pyarrow"]))
    if not str(os.fspath(input_root)).strip():  # Path("") is the working folder
        raise ConfigError("the batch input is an empty path: give the folder that holds the scans")
    root = Path(input_root)
    if not root.exists():
        raise ConfigError(f"batch input '{root}' does not exist")
    if not root.is_dir():
        raise ConfigError(f"batch input '{root}' is not a folder")
    config = _checked_config(config)
    spacings = read_spacing_table(pixel_spacing_table, root) if pixel_spacing_table is not None else None
    _require_for_formats(formats, root, config)
    refuse_output_inside(root, out_root)  # before the folder is made: it would be a case
    made = _first_missing(Path(out_root))  # the highest folder this run makes, None where the output folder exists
    out = prepare_output_dir(out_root)
    with OutputLock(out, part) as lock:
        (out / "cases").mkdir(exist_ok=True)
        removed = remove_stale_temporaries(out)
        if removed:
            log.info("removed %d unfinished case folder(s) left by an interrupted run", removed)
        log.info("looking for cases under %s", root)  # a minute at tens of thousands of files: say what goes on
        found, skipped_files = discover_cases(root, pictures=config.pixel_spacing is not None, spacings=spacings)
        if spacings is not None:
            say_unlisted(spacings, found)
        write_skipped(out, skipped_files)
        if not found:  # a wrong or empty root must not pass as a successful run
            n = len(skipped_files)
            listed = "the 1 entry there is" if n == 1 else f"the {n} entries there are"
            why = f"{listed} listed in {out / 'skipped.csv'} with the reason" if n else "it is empty"
            # a wrong root given with an earlier run's output folder: its tables are that run's, not this one's
            earlier = f"; the cohort tables in '{out}' are an earlier run's" if (out / "cases.csv").exists() else ""
            if made is not None:  # a mistyped root leaves no output folder of empty files behind
                _unmake(out, lock.path, made, keep_skipped=n > 0)
            raise ScanReadError(f"no inputs found under '{root}': {why}{earlier}")
        cases = select_part(found, part)
        adopt_moved_folders(out, cases, found)
        log.info("checking which of the %d case(s) were finished earlier", len(cases))
        reasons = {
            c.case_id: Rerun(NEW) if overwrite else rerun_reason(c, case_dir(out, c.case_id), formats, config)
            for c in cases
        }
        todo = [c for c in cases if reasons[c.case_id] is not None]
        summary = BatchSummary(files_skipped=len(skipped_files))
        summary.redone = _say_why_again(reasons)
        for c in cases:  # finished earlier: counted, and listed in failures.csv again when out of scope
            if reasons[c.case_id] is None:
                summary.count(finished_status(c.case_id, case_dir(out, c.case_id)))
        by_id = {c.case_id: c for c in todo}
        before = {c.case_id: _result_stamp(out, c) for c in todo}  # to tell the results this run writes
        seen: set[str] = set()
        statuses: Iterable[CaseStatus] | None = None
        building_tables = False  # an interruption from here on leaves the earlier cohort tables (or none)
        prefetch = None
        with _sigterm_stops_the_run():  # from here on, SIGTERM ends in BatchInterrupted (below)
            try:
                if scheduler or cluster:
                    from .distributed import dask_statuses

                    statuses = dask_statuses(todo, out, formats, config, overwrite, scheduler, cluster)
                else:
                    statuses = _local_statuses(todo, out, formats, config, overwrite, workers)
                prefetch = prefetch_parquet_writer()  # after the local workers have forked
                for status in progress(statuses, len(todo)) if progress else statuses:
                    if disk_full(status):  # every case after it would fail the same way: stop, keep what is done
                        close = getattr(statuses, "close", None)
                        if close is not None:
                            close()
                        raise OutputError(disk_full_message(out, status, summary.done))
                    if status.status == "skipped" and status.case_id in by_id:
                        # a case to analyse now, found finished when it was handed out again after a worker died: a
                        # worker of this run finished it (a fresh run had said "5 skipped (finished earlier)")
                        status = replace(status, status="done")
                    summary.count(status)
                    seen.add(status.case_id)
                    if status.status == "failed" and status.case_id in by_id:  # failures.csv is built from the folders
                        record_failure(out, by_id[status.case_id], status, formats, config)
                parquet_writer_loaded(prefetch)  # before any table is written (an interruption here rebuilds none)
                building_tables = True
                try:
                    cohort = _cohort_key(root, found)
                    ticket = _tables_ticket(out)  # every case of this run is in its final folder now
                    with _tables_lock(out):
                        state = _tables_state(out)
                        # another part of the same cohort built them after this part's cases were final
                        if _state_count(state, "built") >= ticket and state.get("cohort") == cohort:
                            log.info("the cohort tables already hold this part's cases (another part built them since)")
                            counts = state.get("counts")
                            summary.tables = dict(counts) if isinstance(counts, dict) else {}
                            summary.stale = _state_count(state, "stale")
                        else:
                            stale = find_stale_cases(out, found, skipped_files, root)
                            write_stale(out, stale)
                            summary.stale = len(stale)
                            amended = switched_series(out, root, found, skipped_files)
                            write_skipped(out, amended)
                            summary.files_skipped = len(amended)
                            write_failures(out, failure_rows(out, found, summary.failures), found, root)
                            summary.tables = build_cohort_tables(out, found, root)
                            _tables_built(out, _state_count(state, "finished"), cohort, summary.tables, len(stale))
                    building_tables = False  # built: an interruption from here on leaves them whole
                except OSError as exc:  # a full disk, a folder made read-only meanwhile: one line, the cases are kept
                    raise OutputError(
                        f"cannot write the cohort tables into '{out}': {exc.strerror or exc}; the finished cases are "
                        "kept: make room (or fix the folder) and run the same command again to build them"
                    ) from exc
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM from the command line: say how far the run got
                close = getattr(statuses, "close", None)
                if close is not None:  # the workers are shut down now (they finish the cases handed to them)
                    close()
                # with the cases that workers finished after the last status was taken
                seen |= {c.case_id for c in todo if _result_stamp(out, c) not in (None, before[c.case_id])}
                raise BatchInterrupted(len(seen), len(todo), len(cases) - len(todo), building_tables) from exc
    summary.seconds = time.perf_counter() - t0
    return summary


def _first_missing(path: Path) -> Path | None:
    """The highest folder of ``path`` (itself or a parent) that does not exist yet, None where ``path`` exists."""
    if path.exists():
        return None
    highest = path
    while not highest.parent.exists() and highest.parent != highest:
        highest = highest.parent
    return highest


def _unmake(out: Path, lock_file: Path, made: Path, keep_skipped: bool) -> None:
    """Remove what a run that found no case made in the output folder it created: the empty ``cases/``, and, where
    skipped.csv has no entry to read, the folder itself and the parents the run made for it (up to ``made``)."""
    (out / "cases").rmdir()
    if keep_skipped:
        return
    for name in ("skipped.csv", lock_file.name):
        (out / name).unlink(missing_ok=True)
    folder = out.absolute()
    top = made.absolute()
    with suppress(OSError):  # a file put there meanwhile: the folder stays
        while True:
            folder.rmdir()
            if folder == top:
                break
            folder = folder.parent


def say_unlisted(spacings: PictureSpacings, found: list[Case]) -> None:
    """Warn about rows of the pixel-size table that name no picture found under the input (typos, moved files)."""
    unlisted = spacings.unlisted({str(resolved(c.path)) for c in found if c.pixel_spacing is not None})
    if unlisted:
        log.warning(
            "%d of %d rows of the pixel-size table %s name no picture under the input folder (e.g. %s)",
            len(unlisted), len(spacings.sizes), spacings.path, unlisted[0],
        )  # fmt: skip


def _say_why_again(reasons: dict[str, Rerun | None]) -> int:
    """Log why finished cases are analysed again (one line per case whose folder holds another scan's result, one
    line for the cases made with other options or without the outputs asked now); return how many."""
    again = {case_id: r for case_id, r in reasons.items() if r is not None and r.kind != NEW}
    moved = [(case_id, r) for case_id, r in again.items() if r.kind == INPUT_CHANGED]
    for case_id, r in moved[:SHOWN]:
        log.warning("case %s: %s; analysed again, its folder replaced", case_id, r.detail)
    if len(moved) > SHOWN:
        log.warning("%d more case folders hold another input's result; analysed again", len(moved) - SHOWN)
    other = [r for r in again.values() if r.kind != INPUT_CHANGED]
    if other:
        why = sorted({_WHY[r.kind] + r.detail for r in other})
        log.warning(
            "%d finished case(s) were made with other options or model weights, or lack an output asked now (%s): "
            "analysed again",
            len(other), "; ".join(why),
        )  # fmt: skip
    return len(again)


_WHY = {
    OPTIONS_CHANGED: "other options: ",
    FORMATS_MISSING: "outputs missing: ",
    MODELS_CHANGED: "other model weights or cards: ",
}


def _require_for_formats(formats: Iterable[str], root: Path, config: AnalysisConfig) -> None:
    """The optional packages of the output ``formats``: DICOM SEG/SR are written for DICOM cases only, so a missing
    highdicom fails the run only when the root holds one (a NIfTI cohort with ``--formats all`` runs)."""
    from ..errors import MissingDependencyError
    from ..writers import require_for_formats

    try:
        require_for_formats(formats, "batch --formats")
    except MissingDependencyError:
        found, _ = discover_cases(root, pictures=config.pixel_spacing is not None, log_counts=False)
        if any(c.kind in DICOM_KINDS for c in found):
            raise


def tqdm_progress(quiet: bool) -> Callable[[Iterable[CaseStatus], int], Iterable[CaseStatus]]:
    """A progress bar with rate and ETA over the cases (on stderr; off when quiet). Where stderr is no terminal (a
    cluster job's log file), whose lines a bar redrawn in place would run into the log lines, progress lines
    instead (:func:`progress_lines`)."""
    if not quiet and sys.stderr.isatty():
        log_lines_over_the_bar()  # now: the workers are forked before the bar starts, and keep what they inherit

    def wrap(statuses: Iterable[CaseStatus], total: int) -> Iterable[CaseStatus]:
        if quiet:
            return statuses
        if not sys.stderr.isatty():
            return progress_lines(statuses, total)
        from tqdm import tqdm

        return tqdm(statuses, total=total, unit="scan", desc="openspine batch", file=sys.stderr)

    return wrap


PROGRESS_EVERY_S = 60.0  # a progress line at least this often (and at every 10 % of the cases)


def _duration(seconds: float) -> str:
    """A time left as people say it: seconds under a minute (a short run had said "about 0 min"), else minutes,
    else hours and minutes."""
    if seconds < 59.5:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def progress_lines(
    statuses: Iterable[CaseStatus], total: int, every_s: float = PROGRESS_EVERY_S
) -> Iterator[CaseStatus]:
    """``statuses`` passed on, with a log line of the cases done, the rate and the time left at every 10 % of
    ``total`` and at least every ``every_s`` seconds."""
    start = last = time.perf_counter()
    step = max(1, total // 10)
    done = 0
    for status in statuses:
        yield status
        done += 1
        now = time.perf_counter()
        if done % step and done != total and now - last < every_s:
            continue
        last = now
        rate = done / max(now - start, 1e-9)
        left = f", about {_duration((total - done) / rate)} left" if done < total else ""
        log.info("%d of %d cases done (%.0f %%), %.0f scans/hour%s", done, total,
                 100 * done / max(total, 1), rate * 3600, left)  # fmt: skip
