"""The exact engine's memory estimate for its draws (argument checks live in :mod:`metapool.checks`)."""

from __future__ import annotations

from metapool.checks import require_memory

def draws_bytes(draws: int, chains: int, J: int, p: int, predictive: bool) -> int:
    """Bytes that sample() allocates: theta (and y_rep, log-likelihood) of N x J doubles, plus tau,
    theta_new, beta and the random numbers (N x (p + 2) doubles) kept for them, N = draws x chains."""
    n = draws * chains
    per_draw = J * (3 if predictive else 1) + 2 * p + 4
    return 8 * n * per_draw


def memory_for_draws(draws: int, chains: int, J: int, p: int, predictive: bool,
                     available: int | None = None) -> None:
    """Raise InputError when the draws would not fit in the memory available (figures in the message)."""
    require_memory(draws_bytes(draws, chains, J, p, predictive),
                   f"{draws * chains:.3g} draws ({chains} chains x {draws} draws) of {J} studies",
                   "ask for fewer draws or chains" + (", or predictive=False (a third of the memory)" if predictive else ""),
                   available)
