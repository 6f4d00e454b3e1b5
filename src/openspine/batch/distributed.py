"""Send batch cases to a Dask distributed cluster (``openspine[distributed]``).

Workers write each case folder straight into the output folder (which must be on a file system they share
with the client, as on any cluster); the client gathers the status records and writes the cohort tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._logging import console_setting, get_logger, log_to_stderr
from .._optional import import_optional
from ..errors import ConfigError
from .case import CaseStatus, one_line, process_case
from .discover import Case

if TYPE_CHECKING:
    from ..config import AnalysisConfig

log = get_logger("batch")
CONNECT_TIMEOUT_S = 30.0  # how long a --scheduler address is tried before the run stops


def checked_cluster(cluster: str) -> int:
    """The number of workers of a ``--cluster local:N`` value; ConfigError for any other value."""
    kind, _, n = cluster.partition(":")
    if kind != "local" or not n.isdigit() or int(n) < 1:
        raise ConfigError(f"--cluster must look like local:N (N workers on this machine), got '{cluster}'")
    return int(n)


def _client(scheduler: str | None, cluster: str | None) -> tuple[Any, Any]:
    distributed = import_optional("distributed", "batch --scheduler/--cluster")
    if scheduler:
        try:
            address = distributed.comm.resolve_address(scheduler)  # a malformed one is refused before connecting
        except ValueError as exc:
            raise ConfigError(
                f"--scheduler: '{scheduler}' is no Dask scheduler address ({exc}); give tcp://HOST:PORT (the "
                "scheduler's port, 8786 by default, not its dashboard's)"
            ) from exc
        except OSError as exc:  # a host name that does not resolve (socket.gaierror): one line, not a traceback
            raise ConfigError(
                f"--scheduler: the host of '{scheduler}' cannot be found ({exc}); give the address the scheduler "
                "printed when it started (tcp://HOST:PORT)"
            ) from exc
        try:
            return distributed.Client(address, timeout=CONNECT_TIMEOUT_S), None
        except (OSError, TimeoutError) as exc:  # no scheduler there: one line, not Dask's traceback
            raise ConfigError(
                f"--scheduler: no Dask scheduler answered at '{scheduler}' within {CONNECT_TIMEOUT_S:g} s ({exc}); "
                "start one (`dask scheduler`, or your cluster's) and give its address, or use --cluster local:N"
            ) from exc
    local = distributed.LocalCluster(
        n_workers=checked_cluster(cluster or ""),
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    return distributed.Client(local), local


def dask_statuses(
    cases: list[Case],
    out_root: Path,
    formats: tuple[str, ...],
    config: AnalysisConfig,
    overwrite: bool,
    scheduler: str | None,
    cluster: str | None,
) -> Iterator[CaseStatus]:
    distributed = import_optional("distributed", "batch --scheduler/--cluster")
    client, local = _client(scheduler, cluster)
    try:
        log.info("sending %d cases to the Dask scheduler %s", len(cases), client.scheduler.address)
        client.run(_limit_threads)
        client.run(log_to_stderr, *console_setting())  # the per-case lines, as local workers write them
        futures = [
            client.submit(
                process_case, c, str(out_root), formats, config, overwrite, key=f"openspine-{c.case_id}", pure=False
            )
            for c in cases
        ]
        for fut in distributed.as_completed(futures):
            try:
                yield fut.result()
            except Exception as exc:  # a worker died: the case is reported, the run goes on
                case_id = str(fut.key).removeprefix("openspine-")
                yield CaseStatus(case_id, "failed", "worker", type(exc).__name__, one_line(str(exc)))
    finally:
        client.close()
        if local is not None:
            local.close()


def _limit_threads() -> None:
    from ..models import set_default_threads

    set_default_threads(1)
