"""Independent tasks on local processes or on a Dask cluster, results in task order.

One place decides where work runs, for :func:`metapool.validation.sbc` and
:func:`metapool.batch`: in this process, on local worker processes (joblib's loky backend), or
on a Dask distributed cluster given as a ``distributed.Client``, a ``LocalCluster`` (anything
with a ``scheduler_address``) or a scheduler address such as ``"tcp://10.0.0.5:8786"``. Callers
seed every task themselves (a ``SeedSequence`` child per replication or group), so the results
do not depend on where they ran; the runners only return them in the order of the tasks.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from metapool.errors import InputError

__all__ = ["Runner", "runner", "n_jobs", "contiguous_chunks", "describe_scheduler", "Progress"]

#: How long to try to reach a scheduler address before giving up.
CONNECT_TIMEOUT: str = "10s"
#: A progress callback: ``progress(done, total)`` in the caller's units (replications, groups).
Progress = Callable[[int, int], None]


def n_jobs(value: int | None) -> int:
    """Worker processes for a joblib-style ``n_jobs``: None or 0 -> 1, -1 -> all CPUs, -2 -> all but one.

    Parameters
    ----------
    value : int or None

    Returns
    -------
    int
        At least 1.
    """
    if isinstance(value, bool) or (value is not None and not isinstance(value, int)):
        raise InputError(f"n_jobs must be an integer (-1 for all CPUs), got {value!r}")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if value is None or value == 0:
        return 1
    return max(1, cpus + 1 + value if value < 0 else value)


def contiguous_chunks(n: int, n_chunks: int) -> list[range]:
    """Split ``range(n)`` into at most ``n_chunks`` contiguous ranges of nearly equal length."""
    n_chunks = max(1, min(int(n_chunks), int(n)))
    edges = [round(k * n / n_chunks) for k in range(n_chunks + 1)]
    return [range(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def describe_scheduler(scheduler: Any) -> str | None:
    """The scheduler's address as text (None for local processes)."""
    if scheduler is None:
        return None
    if isinstance(scheduler, str):
        return scheduler
    address = getattr(scheduler, "scheduler_address", None)
    if address is None and getattr(scheduler, "scheduler", None) is not None:
        address = getattr(scheduler.scheduler, "address", None)
    return str(address) if address is not None else repr(scheduler)


@dataclass(frozen=True)
class Runner:
    """Runs ``func(chunk, *args)`` for every chunk and returns the results in chunk order.

    Attributes
    ----------
    workers : int
        Parallel slots: local processes, or the Dask cluster's worker threads.
    kind : str
        ``"in-process"``, ``"processes"`` or ``"dask"``.
    client : object or None
        The ``distributed.Client`` (Dask only).
    """

    workers: int
    kind: str
    client: Any = None

    def map(self, func: Callable[..., Any], chunks: Sequence[Any], *args: Any,
            progress: Callable[[int], None] | None = None) -> list[Any]:
        """``[func(c, *args) for c in chunks]``, run where this runner runs.

        Parameters
        ----------
        func : callable
            A module-level function (it is pickled by reference for worker processes).
        chunks : sequence
            One task each.
        *args
            Passed to every task.
        progress : callable, optional
            Called with the index of each chunk as its result arrives (in chunk order).

        Returns
        -------
        list
            The results in the order of ``chunks``. An exception in a task is raised here.
        """
        if not chunks:
            return []
        if self.kind == "dask":
            return self._map_dask(func, chunks, args, progress)
        if self.kind == "in-process" or len(chunks) == 1:
            out = []
            for i, c in enumerate(chunks):
                out.append(func(c, *args))
                if progress is not None:
                    progress(i)
            return out
        from joblib import Parallel, delayed

        par = Parallel(n_jobs=min(self.workers, len(chunks)), backend="loky", return_as="generator")
        out = []
        for i, res in enumerate(par(delayed(func)(c, *args) for c in chunks)):
            out.append(res)
            if progress is not None:
                progress(i)
        return out

    def _map_dask(self, func, chunks, args, progress) -> list[Any]:
        futures = [self.client.submit(func, c, *args, pure=False) for c in chunks]
        try:
            out = []
            for i, f in enumerate(futures):     # in task order; a task's exception is raised here
                out.append(f.result())
                if progress is not None:
                    progress(i)
            return out
        finally:
            for f in futures:
                f.release()


def _connect(scheduler: Any) -> tuple[Any, bool]:
    """(client, owned): a ``distributed.Client`` for a client, a cluster or an address."""
    try:
        from distributed import Client
    except ImportError as err:                      # pragma: no cover - a dependency
        raise InputError(f"a Dask scheduler needs the 'distributed' package ({err})") from None
    if isinstance(scheduler, Client):
        return scheduler, False
    address = scheduler if isinstance(scheduler, str) else getattr(scheduler, "scheduler_address", None)
    if not isinstance(address, str) or not address.strip():
        raise InputError(f"scheduler must be a distributed.Client, a cluster or a scheduler address such as "
                         f"'tcp://127.0.0.1:8786'; got {scheduler!r}")
    try:
        return Client(address.strip(), set_as_default=False, timeout=CONNECT_TIMEOUT), True
    except (OSError, TimeoutError) as err:
        raise InputError(f"scheduler {address!r}: cannot connect to a Dask scheduler there ({err})") from None


@contextlib.contextmanager
def runner(jobs: int | None = 1, scheduler: Any = None) -> Iterator[Runner]:
    """Where to run: a Dask cluster when ``scheduler`` is given, else ``jobs`` local processes.

    Parameters
    ----------
    jobs : int, optional
        Local worker processes (joblib's convention: -1 all CPUs; 1 or None: this process).
        Ignored with a scheduler.
    scheduler : distributed.Client, cluster or str, optional
        A Dask client (used as it is, not closed), a cluster object with a ``scheduler_address``
        or an address (a client is opened for the run and closed after it).

    Yields
    ------
    Runner

    Raises
    ------
    InputError
        An address that cannot be reached, or a cluster without workers.
    """
    if scheduler is None:
        w = n_jobs(jobs)
        yield Runner(w, "in-process" if w == 1 else "processes")
        return
    client, owned = _connect(scheduler)
    try:
        threads = sum(client.nthreads().values())
        if threads < 1:
            raise InputError(f"scheduler {describe_scheduler(scheduler)!r}: the cluster has no workers")
        yield Runner(int(threads), "dask", client)
    finally:
        if owned:
            client.close()
