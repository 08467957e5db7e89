"""Timing helper shared by the benchmark scripts (imported from their own folder)."""

from __future__ import annotations

import time
from typing import Callable


def best_of(fn: Callable[[], object], repeat: int = 5, warmup: int = 0) -> float:
    """Smallest wall time of ``repeat`` calls of ``fn`` (the least disturbed by other load), after
    ``warmup`` untimed calls (the first calls of a job that allocates megabytes pay page faults
    and the allocator's adaptation: measured here, 10,000 draws of 79 studies took 1.3x their
    steady time in the first ten calls)."""
    return _best(fn, repeat, warmup, time.perf_counter)


def best_cpu(fn: Callable[[], object], repeat: int = 5, warmup: int = 0) -> float:
    """Smallest CPU time of this process over ``repeat`` calls of ``fn``: for one-thread work on a
    shared machine, less disturbed by other load than the wall time (waiting for a CPU is not
    counted; caches shared with other processes still are); ``warmup`` as :func:`best_of`."""
    return _best(fn, repeat, warmup, time.process_time)


def _best(fn: Callable[[], object], repeat: int, warmup: int, clock: Callable[[], float]) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = clock()
        fn()
        times.append(clock() - t)
    return min(times)
