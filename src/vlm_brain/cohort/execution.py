"""Run independent tasks in this process or on Dask (a local cluster or an existing one).

    reports = run_tasks(func, tasks, scheduler="local")            # LocalCluster sized to the machine
    reports = run_tasks(func, tasks, scheduler="tcp://head:8786")  # an existing cluster (SLURM, by hand)
    reports = run_tasks(func, tasks, scheduler="none")             # here, one after the other

``func(task)`` must be a module-level function (workers import it) that writes its own
result and returns a small report. Dask retries a task that raised up to ``retries``
times, and reschedules one lost with its worker (a killed or crashed process) by itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

#: ``scheduler`` values that run tasks in this process, without Dask
IN_PROCESS = ("none", "sequential")


def run_tasks(func: Callable[[Any], Any], tasks: Sequence[Any], *, scheduler: str = "local",
              n_workers: int | None = None, retries: int = 2, describe: Callable[[Any], str] = str,
              desc: str = "tasks") -> list[Any]:
    """``func(task)`` for every task, results in task order, with one progress bar and its ETA.

    Parameters
    ----------
    scheduler : "local" (a `distributed.LocalCluster` of ``n_workers`` single-threaded
        processes, by default one per core), the address of a running Dask scheduler,
        or "none" (this process, in order).
    retries : further attempts of a task that raised an error (Dask only).
    describe : the name of a task in the log.
    """
    if not tasks:
        return []
    if scheduler in IN_PROCESS:
        results = []
        for task in tqdm(tasks, desc=desc, unit="task"):
            results.append(func(task))
            logger.info("%s: done in this process", describe(task))
        return results
    from distributed import Client, as_completed

    cluster = None
    if scheduler == "local":
        cluster = _local_cluster(n_workers)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        workers = len(client.scheduler_info()["workers"])
        logger.info("Dask: %d tasks on %s (%d workers)", len(tasks), client.scheduler.address, workers)
        futures = [client.submit(func, task, retries=retries, pure=False, key=f"{desc}-{i}-{describe(task)}")
                   for i, task in enumerate(tasks)]
        index = {future.key: i for i, future in enumerate(futures)}
        results: list[Any] = [None] * len(tasks)
        for future in tqdm(as_completed(futures), total=len(futures), desc=desc, unit="task"):
            i = index[future.key]
            results[i] = future.result()
            logger.info("%s: done on %s", describe(tasks[i]), getattr(results[i], "worker", "a worker"))
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _local_cluster(n_workers: int | None):
    from distributed import LocalCluster

    n_workers = n_workers or max(1, len(os.sched_getaffinity(0)))
    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                        silence_logs=logging.WARNING)
