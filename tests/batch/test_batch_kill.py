"""Batch after its process is killed: the worker processes end with it, no left-over process holds the output
folder's lock, and the resume finishes the cohort."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from openspine.batch import runner
from openspine.batch.runner import OutputLock
from openspine.errors import ConfigError, OutputError

LINUX_PROC = Path("/proc/self/task").is_dir()


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return kids
    for task in tasks:
        try:
            kids += [int(x) for x in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return kids


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


def _killed_while_busy(cmd: list[str], out: Path, sig: signal.Signals, log: Path) -> subprocess.Popen[bytes]:
    """Run ``cmd`` with 2 workers, send ``sig`` to its process once a case is written, and check that no worker
    outlives it."""
    started = time.time()
    with log.open("wb") as err:
        proc = subprocess.Popen([*cmd, "--workers", "2"], stdout=subprocess.DEVNULL, stderr=err)
    deadline, workers = time.time() + 60, []
    while time.time() < deadline and proc.poll() is None:
        workers = _children(proc.pid)
        written = [p / "result.json" for p in (out / "cases").iterdir()] if (out / "cases").is_dir() else []
        if len(workers) >= 2 and any(r.exists() and r.stat().st_mtime >= started for r in written):
            break
        time.sleep(0.02)
    assert proc.poll() is None and len(workers) >= 2, "the run ended before it could be killed"
    os.kill(proc.pid, sig)  # the run's process only, as the out-of-memory killer or a job's time limit does
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(_running(w) for w in workers):
        time.sleep(0.05)
    assert not any(_running(w) for w in workers), "a worker outlived the killed run"
    return proc


def _stamps(out: Path) -> dict[str, int]:
    return {p.name: (p / "result.json").stat().st_mtime_ns for p in (out / "cases").iterdir()}


def _said_how_far(proc: subprocess.Popen[bytes], log: Path, finished: int, n: int) -> None:
    """A job's time limit: the run says how far it got, and that a rerun goes on."""
    assert proc.returncode == 128 + signal.SIGTERM
    said = log.read_text()
    were = "was" if finished == 1 else "were"
    assert f"interrupted by SIGTERM: {finished} of the {n} cases to analyse {were} finished;" in said, said
    assert "the same command goes on with the rest" in said and "Traceback" not in said


_PYTHON_JOB = """
import sys
from openspine.batch.runner import run_batch
from openspine.errors import BatchInterrupted

if __name__ == "__main__":
    try:
        run_batch(sys.argv[1], sys.argv[2], formats="json")
    except BatchInterrupted as exc:
        print("stopped:", exc.finished, exc.to_analyse, exc.progress())
        sys.exit(5)
"""


def _finished_folders(cases: Path) -> list[Path]:
    return [p for p in cases.iterdir() if not p.name.startswith(".tmp-") and (p / "result.json").exists()]


def test_sigterm_stops_a_run_batch_from_python_with_how_far_it_got(tmp_path: Path) -> None:
    """A job that calls run_batch and reaches its time limit: SIGTERM had ended the process at once (status 143),
    BatchInterrupted never raised."""
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    n = 40
    for i in range(n):
        data = np.random.default_rng(i).random((24, 24, 4)).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(root / f"s{i:02d}.nii.gz"))
    script = tmp_path / "job.py"
    script.write_text(_PYTHON_JOB)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(root), str(out)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        # two cases in their final folders: the first is then counted (cases run one after the other), whereas a
        # result.json in a temporary folder, or the first final one, may come before its count (the test was flaky)
        if (out / "cases").is_dir() and len(_finished_folders(out / "cases")) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be stopped"
    os.kill(proc.pid, signal.SIGTERM)
    said = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 5 and said.startswith("stopped: "), said
    finished = int(said.split()[1])
    assert 1 <= finished < n and f"of the {n} cases to analyse" in said


@pytest.mark.skipif(not LINUX_PROC, reason="finds the worker processes through /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_end_with_a_killed_run_and_the_resume_works(tmp_path: Path, sig: signal.Signals) -> None:
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    n = 40
    for i in range(n):  # small volumes (noise: out of scope), enough that the run is busy when killed
        data = np.random.default_rng(i).random((24, 24, 4)).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(root / f"s{i:02d}.nii.gz"))
    cmd = [sys.executable, "-m", "openspine", "-q", "batch", str(root), "--out", str(out), "--formats", "json"]
    log = tmp_path / "stderr.txt"
    proc = _killed_while_busy(cmd, out, sig, log)
    finished = sum((p / "result.json").exists() for p in (out / "cases").iterdir())
    assert finished < n
    if sig == signal.SIGTERM:
        _said_how_far(proc, log, finished, n)
    resume = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert resume.returncode == 3, resume.stderr[-2000:]  # every case out of scope: none failed
    assert sorted(p.name for p in (out / "cases").iterdir()) == [f"s{i:02d}" for i in range(n)]
    if sig == signal.SIGTERM:  # redoing every case: the results rewritten are counted, not those already there
        before = _stamps(out)
        proc = _killed_while_busy([*cmd, "--overwrite"], out, sig, log)
        after = _stamps(out)
        _said_how_far(proc, log, sum(after[k] != before[k] for k in before), n)


def _busy_run(tmp_path: Path, log: Path | None) -> tuple[subprocess.Popen[bytes], list[int]]:
    """A batch run of 40 small cases with 2 workers (stderr into ``log``, or dropped with -q), once both workers run
    and a case is written: the process and its workers."""
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    for i in range(40):
        data = np.random.default_rng(i).random((24, 24, 4)).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(root / f"s{i:02d}.nii.gz"))
    quiet = ["-q"] if log is None else []
    cmd = [sys.executable, "-m", "openspine", *quiet, "batch", str(root), "--out", str(out), "--formats", "json"]
    with open(log or os.devnull, "wb") as err:
        proc = subprocess.Popen([*cmd, "--workers", "2"], stdout=subprocess.DEVNULL, stderr=err)
    deadline, workers = time.time() + 60, []
    while time.time() < deadline and proc.poll() is None:
        workers = _children(proc.pid)
        if len(workers) >= 2 and list(out.glob("cases/*/result.json")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be stopped"
    return proc, workers


@pytest.mark.skipif(not LINUX_PROC, reason="finds the worker processes through /proc")
def test_a_second_sigterm_ends_an_interrupted_run_at_once(tmp_path: Path) -> None:
    # the second signal, while the first one's shutdown waited for the workers, had left the run hung for good
    proc, workers = _busy_run(tmp_path, None)
    os.kill(proc.pid, signal.SIGTERM)
    time.sleep(0.05)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) in (-signal.SIGTERM, 128 + signal.SIGTERM)
    deadline = time.time() + 5
    while time.time() < deadline and any(_running(w) for w in workers):
        time.sleep(0.05)
    assert not any(_running(w) for w in workers), "a worker outlived the stopped run"


@pytest.mark.skipif(not LINUX_PROC, reason="finds the worker processes through /proc")
def test_an_interrupted_run_waiting_on_a_stuck_worker_says_so(tmp_path: Path) -> None:
    # a stopped (stuck) worker: the first SIGTERM had left the run waiting with no word (user test)
    log = tmp_path / "err.txt"
    proc, workers = _busy_run(tmp_path, log)
    try:
        os.kill(workers[0], signal.SIGSTOP)
        os.kill(proc.pid, signal.SIGTERM)
        deadline = time.time() + 20
        while time.time() < deadline and "stopping: waiting for the" not in log.read_text():
            time.sleep(0.05)
        assert "the workers to finish the cases they hold; interrupt again to end at once" in log.read_text()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) in (-signal.SIGTERM, 128 + signal.SIGTERM)
    finally:
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(w, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


def test_an_interruption_before_the_first_status_shuts_the_workers_down(tmp_path: Path) -> None:
    # a signal between submitting the cases and taking the first status had left every case to run on
    from openspine.config import AnalysisConfig

    root = tmp_path / "in"
    root.mkdir()
    for i in range(6):
        nib.save(nib.Nifti1Image(np.zeros((8, 8, 2), np.float32), np.eye(4)), str(root / f"s{i}.nii.gz"))
    cases, _ = runner.discover_cases(root)
    statuses = runner._local_statuses(cases, tmp_path / "out", ("json",), AnalysisConfig(), False, 2)
    statuses.close()  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):  # the pool is shut down: it takes no more work
        statuses.pool.submit(print)  # type: ignore[attr-defined]


def test_a_worker_ends_when_its_parent_changes_where_linux_cannot_tell_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The portable fallback: a thread that sees the parent gone (re-parented) ends the worker."""
    monkeypatch.setattr(runner, "_set_parent_death_signal", lambda sig: False)
    monkeypatch.setattr(runner, "PARENT_CHECK_S", 0.05)
    pid = os.fork()
    if pid == 0:  # the child: its parent "dies" (is another pid than the one it was started by)
        try:
            runner._end_with_parent(os.getppid() + 1_000_000)
            time.sleep(10)
        finally:
            os._exit(0)
    t0 = time.time()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1 and time.time() - t0 < 5


def test_a_worker_lets_go_of_the_runs_lock(tmp_path: Path) -> None:
    with OutputLock(tmp_path, (1, 1)) as lock:
        fd = lock.fd
        assert fd in runner._HELD_LOCKS
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                runner._HELD_LOCKS.discard(-1)
                held = set(runner._HELD_LOCKS)
                runner._worker_init(os.getppid())
                try:
                    os.fstat(fd)
                except OSError:
                    code = 0 if held == {fd} else 2  # closed in the worker
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert not runner._HELD_LOCKS


def test_a_worker_ends_on_sigterm_whatever_handler_it_inherited() -> None:
    # the command line turns SIGTERM into KeyboardInterrupt; a forked worker inheriting that caught the pool's own
    # terminate() as a case's error and lived on, and the run hung for good
    pid = os.fork()
    if pid == 0:
        signal.alarm(30)  # a child that blocks must not hang the test session
        try:
            signal.signal(signal.SIGTERM, lambda signum, frame: None)
            runner._worker_init(os.getppid())
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM


@pytest.mark.skipif(not LINUX_PROC, reason="names the holders through /proc")
def test_a_lock_left_held_after_its_run_died_is_explained(tmp_path: Path) -> None:
    import fcntl

    dead = subprocess.Popen(["true"])
    dead.wait()
    path = tmp_path / ".openspine-batch-1-of-1.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a left-over worker of the dead run holds it
        os.write(fd, f"pid {dead.pid} on {os.uname().nodename}".encode())
        with (
            pytest.raises(OutputError, match=rf"pid {dead.pid}, which no longer runs") as info,
            OutputLock(tmp_path, (1, 1)),
        ):
            pass
        assert str(os.getpid()) in str(info.value) and "\n" not in str(info.value)
        # it lasts until ended, so no "try again later" (exit 75): a job script retrying on 75 would loop
        from openspine.errors import OutputInUseError

        assert not isinstance(info.value, OutputInUseError)
    finally:
        os.close(fd)
    with OutputLock(tmp_path, (1, 1)):  # free now: the file left behind does not block
        pass


def test_an_output_folder_the_lock_cannot_be_made_in_is_one_error(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["d" * 200] * 25)  # longer than a path may be
    with pytest.raises(OutputError, match="cannot write into the output folder"):
        OutputLock(deep, (1, 1)).__enter__()


def test_the_temporary_folder_of_a_case_with_the_longest_name_fits_a_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openspine.batch.case import MAX_NAME_BYTES, TMP_PREFIX, remove_stale_temporaries, temporary_name

    assert temporary_name("spider_1") == f"{TMP_PREFIX}spider_1@{temporary_name('x').rsplit('@', 1)[1]}"
    for case_id in ("b" * 248, "é" * 124, "b" * 248 + "x"):
        name = temporary_name(case_id)
        assert len(name.encode()) <= MAX_NAME_BYTES and name.startswith(TMP_PREFIX)
    assert temporary_name("b" * 248) != temporary_name("b" * 247 + "c")  # the digest tells long ids apart
    # one that its process left (it no longer runs) is still found and removed
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    monkeypatch.setattr(os, "getpid", lambda: ended.pid)
    left = tmp_path / "cases" / temporary_name("b" * 248)
    monkeypatch.undo()
    left.mkdir(parents=True)
    assert remove_stale_temporaries(tmp_path) == 1 and not left.exists()


def test_run_batch_in_a_workers_import_of_its_script_says_what_to_do(tmp_path: Path) -> None:
    # a script without the main guard: each worker started fresh re-ran it, and good cases failed as "out of memory"
    script = compile("from openspine.batch.runner import run_batch\nrun_batch(ROOT, OUT)\n", "script.py", "exec")
    with pytest.raises(ConfigError, match=r'put the call under `if __name__ == "__main__":`'):
        exec(script, {"__name__": "__mp_main__", "ROOT": str(tmp_path), "OUT": str(tmp_path / "out")})
    assert "run_batch" not in runner.DEATH_CAUSES  # refused up front now: the command line's message names it not


_SCRIPT = """
import sys, threading, time
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # a thread: the workers are started fresh
from openspine.batch.runner import run_batch
from openspine.errors import ConfigError
def run():
    try:
        run_batch(sys.argv[1], sys.argv[2], workers=2)
    except ConfigError as exc:
        print("REFUSED", exc)
        return
    print("RAN")
"""


GUARDS = {
    "none": "run()\n",
    "plain": 'if __name__ == "__main__":\n    run()\n',
    "and": 'if __name__ == "__main__" and not sys.argv[0].endswith(".txt"):\n    run()\n',  # guarded all the same
    "else": 'if __name__ != "__main__":\n    pass\nelse:\n    run()\n',
    "no guard": "if True:\n    run()\n",  # an if that does not read __name__ guards nothing
}
REFUSED = ("none", "no guard")


@pytest.mark.parametrize("guard", list(GUARDS))
def test_an_unguarded_script_whose_workers_start_fresh_is_refused_before_any_case(tmp_path: Path, guard: str) -> None:
    # each fresh worker re-ran the script and died, and every case was retried alone: 21 of 30 in 200 s (user test)
    root = tmp_path / "in"
    root.mkdir()
    for i in range(2):
        nib.save(nib.Nifti1Image(np.random.default_rng(i).random((24, 24, 4)).astype(np.float32), np.eye(4)),
                 str(root / f"s{i}.nii.gz"))  # fmt: skip
    script = tmp_path / "script.py"
    script.write_text(_SCRIPT + GUARDS[guard])
    done = subprocess.run(
        [sys.executable, str(script), str(root), str(tmp_path / "out")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    if guard not in REFUSED:
        assert done.stdout.strip().endswith("RAN") and "worker process died" not in done.stderr
    else:
        assert done.stdout.startswith("REFUSED") and 'if __name__ == "__main__":' in done.stdout
        assert not (tmp_path / "out").exists()  # refused before the output folder is made


def test_a_local_cluster_is_refused_and_a_replacement_pool_forks_for_an_unguarded_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dask's local workers start fresh too; a pool replacing a broken one would spawn once a thread runs (code review)
    from openspine.batch.runner import run_batch

    (tmp_path / "in").mkdir()
    monkeypatch.setattr(runner, "_called_from_a_scripts_top_level", lambda: True)
    with pytest.raises(ConfigError, match="without a local cluster"):
        run_batch(tmp_path / "in", tmp_path / "out", cluster="local:2")
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(runner, "_start_method", lambda: "spawn")
    pool = runner._new_pool(1)
    try:
        assert pool._mp_context.get_start_method() == ("fork" if sys.platform == "linux" else "spawn")
    finally:
        pool.shutdown()


def test_which_branch_of_an_if_on_name_a_workers_import_takes() -> None:
    # a worker imports the script as __mp_main__: the else of `if __name__ == "__main__":` is its branch (code review)
    import ast

    def taken(source: str) -> bool | None:
        return runner._test_in_a_worker(ast.parse(source, mode="eval").body)

    assert taken('__name__ == "__main__"') is False and taken('"__main__" == __name__') is False
    assert taken('__name__ != "__main__"') is True and taken('not __name__ == "__main__"') is True
    assert taken('__name__ == "__main__" and flag') is False and taken('__name__ != "__main__" or flag') is True
    assert taken('__name__ == "__main__" or flag') is None and taken("__name__.startswith('__')") is None
    assert taken("flag") is None


def test_run_batch_leaves_sigterm_as_it_found_it(tmp_path: Path) -> None:
    from openspine.batch.runner import run_batch

    root = tmp_path / "in"
    root.mkdir()
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((24, 24, 4)).astype(np.float32), np.eye(4)),
             str(root / "s.nii.gz"))  # fmt: skip
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    run_batch(root, tmp_path / "out", formats="json")
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
