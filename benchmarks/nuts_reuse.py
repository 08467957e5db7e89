"""NUTS compiled once: a reused sampler against a fresh compile, in the same run.

Run:  python benchmarks/nuts_reuse.py [--calls 3] [--reps 100] [--fresh-reps 100] [--n-jobs -1]
                                      [--seed 0]

1. ``metapool.models.sample`` on eight schools, then on new effects of the same shape: seconds
   of each call with ``reuse=False`` (compiles the model every time, the old path) and with the
   default cache (the second and later calls reuse the compiled sampler). Target: a reused
   call under 1 s. The draws of the two paths are compared (identical for the same seed).
2. ``metapool.validation.sbc("nuts", ...)`` with 100 replications (eight schools design,
   tau ~ half-normal(10), mu ~ normal(0, 20), as benchmarks/sbc_nuts.py), in worker processes,
   with ``nuts_options={"reuse": False}`` (every replication compiles) and with the cache (each
   worker compiles once and reuses it for its replications). Target: at least 5x faster. With
   ``--fresh-reps`` below ``--reps`` the fresh path runs fewer replications and its time is
   scaled to ``--reps`` (per-replication cost is constant there: every replication compiles);
   the printout says so.

Exits 1 when a target is missed or the two paths' draws differ.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

import metapool.datasets as datasets
from metapool import models
from metapool.priors import HalfNormalTau, NormalBeta
from metapool.validation import sbc


def _same(a, b) -> bool:
    for group in ("posterior", "posterior_predictive", "log_likelihood", "sample_stats"):
        for var in a[group].data_vars:
            x, y = a[group][var].values, b[group][var].values
            if not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                return False
    return True


def _calls(n: int, seed: int) -> tuple[list[float], list[float], bool]:
    design = datasets.load("eight_schools")
    rng = np.random.default_rng(seed)
    datas = [design] + [design.with_effects(design.y + rng.normal(0.0, 5.0, design.J)) for _ in range(n - 1)]
    fresh, reused, same = [], [], True
    models.clear_compiled_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, d in enumerate(datas):
            t0 = time.perf_counter()
            a = models.sample(d, seed=seed + i, reuse=False, progressbar=False)
            fresh.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            b = models.sample(d, seed=seed + i, progressbar=False)
            reused.append(time.perf_counter() - t0)
            same &= _same(a, b)
    return fresh, reused, same


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=3, help="models.sample calls on datasets of one shape (default 3)")
    ap.add_argument("--reps", type=int, default=100, help="SBC replications with the cache (default 100)")
    ap.add_argument("--fresh-reps", type=int, default=None, help="SBC replications compiling every time "
                    "(default --reps; fewer are scaled to --reps)")
    ap.add_argument("--n-jobs", type=int, default=-1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    fresh_reps = args.reps if args.fresh_reps is None else args.fresh_reps
    ok = True
    print(f"metapool NUTS reuse benchmark; {os.cpu_count()} CPUs")

    fresh, reused, same = _calls(max(args.calls, 2), args.seed)
    print("1. models.sample, eight schools, 4 x 1000 draws, new effects each call:")
    print("   fresh compile: " + ", ".join(f"{t:.2f}" for t in fresh) + " s")
    print("   cached:        " + ", ".join(f"{t:.2f}" for t in reused) + " s (the first compiles)")
    later = max(reused[1:])
    print(f"   later cached calls: max {later:.2f} s (target < 1 s: {'met' if later < 1 else 'MISSED'}); "
          f"draws identical to the fresh compile: {same}")
    ok &= later < 1.0 and same

    design = datasets.load("eight_schools")
    tau_prior, beta_prior = HalfNormalTau(10.0), NormalBeta(0.0, 20.0)
    common = dict(n_draws=99, thin=10, seed=args.seed, n_jobs=args.n_jobs)
    t0 = time.perf_counter()
    cached = sbc("nuts", design, tau_prior, beta_prior, n_reps=args.reps, **common)
    t_cached = time.perf_counter() - t0
    t0 = time.perf_counter()
    fresh_res = sbc("nuts", design, tau_prior, beta_prior, n_reps=fresh_reps, nuts_options={"reuse": False},
                    **common)
    t_fresh = time.perf_counter() - t0
    scaled = t_fresh * args.reps / fresh_reps
    n = min(args.reps, fresh_reps)
    same_ranks = bool(np.array_equal(cached.ranks[:n], fresh_res.ranks[:n]))
    speedup = scaled / t_cached
    print(f"2. NUTS SBC, {args.reps} replications on {cached.n_jobs} process(es):")
    print(f"   cached:  {t_cached:.1f} s ({cached.replications['seconds'].median():.2f} s median per replication)")
    print(f"   fresh:   {t_fresh:.1f} s for {fresh_reps} replications"
          + (f" -> {scaled:.1f} s scaled to {args.reps}" if fresh_reps != args.reps else "")
          + f" ({fresh_res.replications['seconds'].median():.2f} s median per replication)")
    print(f"   speed-up {speedup:.1f}x (target >= 5x: {'met' if speedup >= 5 else 'MISSED'}); ranks of the "
          f"first {n} replications identical: {same_ranks}")
    ok &= speedup >= 5 and same_ranks
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
