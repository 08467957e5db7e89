"""Running independent pieces of work (draw segments, row chunks) on a few threads.

numpy's random generators, ufuncs, scipy.special and BLAS release the GIL while they work, so
row chunks that write disjoint parts of preallocated outputs run in parallel. Threads are started
per call rather than kept in a pool: nothing lingers to trouble a later
fork, and concurrent calls cannot interfere. Results never depend on the number of threads:
each piece computes the same numbers wherever it runs.
"""

from __future__ import annotations

import os
import threading
from queue import Empty, SimpleQueue
from typing import Callable, Iterable, TypeVar

import numpy as np

T = TypeVar("T")

MAX_THREADS = 8


def default_threads() -> int:
    """The CPUs this process may run on (at most MAX_THREADS)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, n))


def check_threads(threads: int | None) -> None:
    """Raise ValueError unless threads is None or a positive integer."""
    if threads is None:
        return
    try:
        ok = not isinstance(threads, (bool, str)) and int(threads) == threads and threads >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        from metapool.errors import InputError

        raise InputError(f"threads must be a positive integer or None, got {threads!r}")


def run(tasks: Iterable[Callable[[], None]], threads: int, lead: Callable[[], T] | None = None) -> T | None:
    """Run the tasks on ``threads`` threads, the caller's included; return ``lead()``.

    Parameters
    ----------
    tasks : iterable of callables
        Independent pieces of work, taken from a queue in order by whichever thread is free.
    threads : int
        Threads in all; with 1 (or one task) everything runs in the calling thread.
    lead : callable, optional
        Run first by the calling thread while the helpers start on the queue (e.g. assembling
        a container around outputs the tasks are filling).

    Notes
    -----
    An exception in any task is re-raised in the caller once every thread has stopped (the
    caller's own first); the remaining tasks may or may not have run.
    """
    queue: SimpleQueue = SimpleQueue()
    n_tasks = 0
    for task in tasks:
        queue.put(task)
        n_tasks += 1
    errors: list[BaseException] = []

    def drain() -> None:
        while not errors:
            try:
                task = queue.get_nowait()
            except Empty:
                return
            task()

    errstate = np.geterr()  # numpy's error state is per thread: helpers take the caller's

    def work() -> None:
        try:
            with np.errstate(**errstate):
                drain()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    helpers = [threading.Thread(target=work, name=f"metapool-{i}", daemon=True)
               for i in range(min(threads, n_tasks) - 1)]
    for t in helpers:
        t.start()
    try:
        result = lead() if lead is not None else None
        drain()
    except BaseException as exc:
        errors.append(exc)
        raise
    finally:
        for t in helpers:
            t.join()
    if errors:
        raise errors[0]
    return result
