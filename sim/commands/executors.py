"""Where tasks run: a local process pool sized to the machine, or a Dask cluster.

Results come back in task order whichever executor ran them, so a sweep's output does not depend
on the executor. Dask connects to ``--scheduler`` or ``DASK_SCHEDULER_ADDRESS``, or starts a
LocalCluster; an unreachable scheduler is one clear line within seconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from sim.errors import BadInput

__all__ = ["run_tasks"]

Task = tuple[Callable[..., Any], tuple[Any, ...]]


def _local(tasks: Sequence[Task], tick: Callable[[], None], workers: int) -> list[Any]:
    results: list[Any] = [None] * len(tasks)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(fn, *args): i for i, (fn, args) in enumerate(tasks)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            tick()
    return results


def _dask(tasks: Sequence[Task], tick: Callable[[], None], scheduler: str | None) -> list[Any]:
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as dask_completed
    except ImportError:
        raise BadInput("--executor dask needs Dask: pip install 'pmsim[dask]'") from None
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    cluster = None
    try:
        if address:
            try:
                client = Client(address, timeout="5s")
            except (OSError, TimeoutError) as exc:
                raise BadInput(f"dask scheduler {address}: cannot connect: {exc}") from None
        else:
            cluster = LocalCluster(
                n_workers=max(1, min(os.cpu_count() or 1, 4)),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,
            )
            client = Client(cluster)
        try:
            futures = [client.submit(fn, *args, pure=False) for fn, args in tasks]
            index = {f.key: i for i, f in enumerate(futures)}
            results: list[Any] = [None] * len(tasks)
            for fut in dask_completed(futures):
                results[index[fut.key]] = fut.result()
                tick()
            return results
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def check_scheduler(executor: str, scheduler: str | None) -> None:
    """Fail fast, before any work, when the chosen executor cannot be had."""
    if executor not in ("local", "dask"):
        raise BadInput(f"--executor {executor}: use local or dask")
    if executor == "dask":
        address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
        try:
            from distributed import Client
        except ImportError:
            raise BadInput("--executor dask needs Dask: pip install 'pmsim[dask]'") from None
        if address:
            try:
                Client(address, timeout="5s").close()
            except (OSError, TimeoutError) as exc:
                raise BadInput(f"dask scheduler {address}: cannot connect: {exc}") from None


def run_tasks(
    tasks: Sequence[Task],
    *,
    executor: str = "local",
    scheduler: str | None = None,
    tick: Callable[[], None] = lambda: None,
    workers: int | None = None,
) -> list[Any]:
    """Run ``fn(*args)`` for every task; results in task order."""
    if not tasks:
        return []
    if executor == "dask":
        return _dask(tasks, tick, scheduler)
    return _local(tasks, tick, workers or max(1, min(os.cpu_count() or 1, len(tasks))))
