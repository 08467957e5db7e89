"""Batch benchmark (issue 12): 10,000 simulated meta-analyses of 5-80 studies, exact engine.

Target: under 60 s on 2 cores with local processes; the same table on a local Dask cluster of
2 worker processes (1 thread each). Prints both wall times and the cost per group, and checks
that the two tables are identical.

    .venv/bin/python benchmarks/batch.py [--groups 10000] [--workers 2] [--skip-dask]

Data (seeded, ``numpy.random.default_rng(20261202)``): per group J ~ U{5..80}, tau_g ~
half-normal(0.3), mu_g ~ N(0, 0.5), s_j ~ U(0.05, 0.5), theta_j ~ N(mu_g, tau_g^2),
y_j ~ N(theta_j, s_j^2); fitted with tau ~ halfnormal(1), flat mu.

Measured 2026-12-02 on the 2-core development machine, idle (load average about 1): three full
runs after the small-fit fast paths (fit of a group ~3 ms, summary ~5 ms, the rest ~0.5 ms of one
core): 2 local processes 42.1, 42.8 and 41.7 s (8.3-8.6 ms of one core per group), a 2-worker Dask
LocalCluster 44.2, 48.7 and 44.9 s, tables identical. Earlier the same day, before them (fit ~4 ms per
group), 49.7-66.3 s local and 57.7-67.4 s on Dask, while the machine's speed drifted by about
30 % (numpy's 810,000 normals took 7.6 to 10.1 ms). The Dask workers run without Dask's eager
malloc trimming and its stack profiler (DASK_WORKER_CONFIG below; with Dask's defaults a run
took 82 s against 57-62 s) and with longer housekeeping intervals. Before the stacked summary a
group cost about 27 ms of one core (the summary alone ~20 ms).
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np
import pandas as pd


DASK_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                      "distributed.worker.profile.enabled": False,
                      # Housekeeping every 20-500 ms took ~10 % of a core idle (workers, scheduler and
                      # client together), ~2 % at these intervals (measured here).
                      "distributed.admin.tick.interval": "500ms",
                      "distributed.admin.system-monitor.interval": "2s",
                      "distributed.worker.memory.monitor-interval": "1s"}


def simulate(n_groups: int, seed: int = 20261202) -> pd.DataFrame:
    """A long table: columns review, study, y, se (one row per study)."""
    rng = np.random.default_rng(seed)
    J = rng.integers(5, 81, size=n_groups)
    tau = np.abs(rng.normal(0.0, 0.3, size=n_groups))
    mu = rng.normal(0.0, 0.5, size=n_groups)
    g = np.repeat(np.arange(n_groups), J)
    se = rng.uniform(0.05, 0.5, size=g.size)
    theta = mu[g] + tau[g] * rng.standard_normal(g.size)
    y = theta + se * rng.standard_normal(g.size)
    return pd.DataFrame({"review": [f"r{k:05d}" for k in g], "y": y, "se": se})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-dask", action="store_true")
    args = ap.parse_args()

    import metapool

    table = simulate(args.groups)
    print(f"{args.groups} groups, {len(table)} studies (J from {table.groupby('review').size().min()} to "
          f"{table.groupby('review').size().max()}), exact engine, tau ~ halfnormal(1); CPUs available: "
          f"{len(os.sched_getaffinity(0))}")
    opts = dict(effect="y", se="se", tau_prior="halfnormal:1", progress=False)

    t0 = time.perf_counter()
    local = metapool.batch(table, "review", n_jobs=args.workers, **opts)
    wall_local = time.perf_counter() - t0
    print(f"local processes ({local.workers}): {wall_local:.1f} s wall, {wall_local / args.groups * 1e3:.2f} ms per "
          f"group ({wall_local * local.workers / args.groups * 1e3:.1f} ms of one core per group); "
          f"failed groups: {local.n_failed}; target < 60 s: {'met' if wall_local < 60 else 'NOT met'}")

    if not args.skip_dask:
        import dask
        from distributed import Client, LocalCluster

        t0 = time.perf_counter()
        # Worker settings for many small numpy-heavy tasks (measured here on 200 fits of 40 studies):
        # - Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's
        #   mmap threshold, so every numpy temporary over 128 KiB is mapped and unmapped afresh
        #   (~30 % slower); None unsets it;
        # - the workers' statistical profiler samples every thread's stack every 10 ms under the
        #   GIL (~5 % slower); it is switched off.
        with dask.config.set(DASK_WORKER_CONFIG), LocalCluster(n_workers=args.workers, processes=True, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
                Client(cluster, set_as_default=False) as client:
            start = time.perf_counter() - t0
            t1 = time.perf_counter()
            on_dask = metapool.batch(table, "review", scheduler=client, **opts)
            wall_dask = time.perf_counter() - t1
        same = on_dask.table.equals(local.table)
        print(f"Dask LocalCluster ({on_dask.workers} workers): {wall_dask:.1f} s wall (+ {start:.1f} s cluster start), "
              f"{wall_dask / args.groups * 1e3:.2f} ms per group; target < 60 s: "
              f"{'met' if wall_dask < 60 else 'NOT met'}; table identical to the local run: {same}")


if __name__ == "__main__":
    main()
