"""Argument checks shared by every public function: each failure is an InputError naming the
argument and the value given; and the one memory check made before a large allocation."""

from __future__ import annotations

import numbers
import os

import numpy as np
from numpy.typing import ArrayLike

from metapool.errors import InputError

__all__ = ["probabilities", "probability_tuple", "points", "positive_int", "seed", "available_memory",
           "human_bytes", "require_memory"]


def probabilities(name: str, q: ArrayLike) -> np.ndarray:
    """``q`` as a float array of probabilities in [0, 1]; InputError naming ``name`` otherwise."""
    try:
        arr = np.asarray(q, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be probabilities in [0, 1], got {q!r}") from None
    bad = ~((arr >= 0.0) & (arr <= 1.0))          # NaN fails both comparisons
    if np.any(bad):
        first = float(arr[bad].ravel()[0]) if arr.ndim else float(arr)
        raise InputError(f"{name} must be probabilities in [0, 1], got {first!r}"
                         + (f" (and {int(bad.sum()) - 1} more)" if bad.sum() > 1 else ""))
    return arr


def points(name: str, x: ArrayLike) -> np.ndarray:
    """``x`` as a float array without NaN (+-inf allowed); InputError naming ``name`` otherwise."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numbers, got {x!r}") from None
    if np.any(np.isnan(arr)):
        raise InputError(f"{name} must be numbers (+-inf allowed), got NaN")
    return arr


def positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1; bools, non-integral floats, strings, 0 and negatives are InputErrors."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and value >= 1
    if not ok:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def seed(value: object) -> object:
    """``value`` if numpy's default_rng accepts it as a seed (None, an int >= 0, a sequence of them,
    a SeedSequence, BitGenerator or Generator); bools and floats are InputErrors."""
    if isinstance(value, (bool, np.bool_, float, np.floating, str, bytes)):
        raise InputError(f"seed must be None, a non-negative integer or a numpy Generator, got {value!r}")
    try:
        np.random.default_rng(value)
    except (TypeError, ValueError) as err:
        raise InputError(f"seed must be None, a non-negative integer or a numpy Generator, got {value!r} "
                         f"({err})") from None
    return value


def available_memory() -> int | None:
    """Bytes of memory this machine can give: MemAvailable (Linux), else the physical memory; None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def probability_tuple(name: str, q: ArrayLike) -> tuple[float, ...]:
    """:func:`probabilities` as a tuple of floats (for column lists such as a summary's quantiles)."""
    return tuple(float(v) for v in np.atleast_1d(probabilities(name, q)))


def human_bytes(nbytes: float) -> str:
    """``960 GB``, ``64 MB``: a byte count for messages."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= size:
            return f"{nbytes / size:.3g} {unit}"
    return f"{nbytes / 1e3:.3g} kB"



def require_memory(need: int, what: str, hint: str = "", available: int | None = None) -> None:
    """Raise InputError when ``need`` bytes would not fit in the memory available (figures in the message).

    Below 64 MB the system's figures are not read (nothing that small fails).
    """
    if need < 1 << 26 and available is None:
        return
    have = available_memory() if available is None else available
    if have is not None and need > have:
        raise InputError(f"{what} need about {human_bytes(need)} of memory and about {human_bytes(have)} is "
                         f"available: {hint or 'ask for less'}")
