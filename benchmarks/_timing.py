"""Timing helper shared by the benchmark scripts (imported from their own folder)."""

from __future__ import annotations

import time
from typing import Callable


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Smallest wall time of ``repeat`` calls of ``fn`` (the least disturbed by other load)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def best_cpu(fn: Callable[[], object], repeat: int = 5) -> float:
    """Smallest CPU time of this process over ``repeat`` calls of ``fn``: for one-thread work on a
    shared machine, less disturbed by other load than the wall time (waiting for a CPU is not
    counted; caches shared with other processes still are)."""
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)
