"""NUTS speed: centred vs non-centred, nutpie vs PyMC's NUTS, beside the exact engine.

Run ``python benchmarks/nuts_speed.py`` (a script, not a test; a few minutes, most of it in
PyMC's own NUTS). For eight schools and the simulated ``seed_countries`` data it fits the
flat-prior model with every combination of parameterisation (centred, non-centred) and NUTS
implementation (nutpie, PyMC), all with one fixed ``target_accept`` and no automatic reruns
(``max_retries=0``) so that the rows are comparable, and prints per row:

* ``compile_s``: compiling the model (nutpie: numba; PyMC: the pytensor functions and the
  process start-up of parallel chains), ``sample_s``: tuning plus drawing, ``wall_s``: the whole
  :func:`metapool.models.sample` call (log-likelihood and posterior predictive included);
* ``ess_tau``: bulk effective sample size of ``tau`` (ArviZ), ``ess_tau_per_s``: that per second
  of sampling, ``divergences``, ``r_hat_max`` (over every posterior variable);
* ``E_tau`` and ``z_tau = (E_tau - exact) / MCSE``: how far the posterior mean of ``tau`` is
  from the exact one, in Monte Carlo standard errors (the centred model's bias shows here).

The ``exact`` rows time :func:`metapool.analytic.fit` (quadrature over tau: ``compile_s``) and
``.sample(draws, chains)`` (``sample_s``) for the same number of draws, which are independent,
so their ESS is the number of draws.

Timings depend on the machine and on whether numba's caches are warm; the first nutpie compile
in a process pays numba's start-up (several seconds), so a throw-away warm-up fit runs first.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import arviz as az
import numpy as np
import pandas as pd

import metapool.datasets
import metapool.models as mm
from metapool import analytic


def _nuts_row(data, name: str, parameterization: str, sampler: str, args, exact_tau: float) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        dt = mm.sample(
            data, parameterization=parameterization, nuts_sampler=sampler, draws=args.draws,
            tune=args.tune, chains=args.chains, seed=args.seed, target_accept=args.target_accept,
            max_retries=0, progressbar=False,
        )
        wall = time.perf_counter() - t0
    tau = dt["posterior"].to_dataset()[["tau"]]
    ess = float(az.ess(tau, method="bulk")["tau"])
    mcse = float(az.mcse(tau)["tau"])
    mean = float(tau["tau"].mean())
    a = dt.attrs
    return {
        "dataset": name, "engine": "nuts", "sampler": sampler, "parameterization": parameterization,
        "compile_s": a["compile_time"], "sample_s": a["sampling_time"], "wall_s": wall,
        "ess_tau": ess, "ess_tau_per_s": ess / a["sampling_time"], "divergences": a["divergences"],
        "r_hat_max": a["r_hat_max"], "E_tau": mean, "z_tau": (mean - exact_tau) / mcse,
    }


def _exact_row(data, name: str, args) -> tuple[dict, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        post = analytic.fit(data)
        t1 = time.perf_counter()
        dt = post.sample(draws=args.draws, chains=args.chains, seed=args.seed)
        t2 = time.perf_counter()
    n = args.draws * args.chains
    exact_tau = float(post.mean("tau"))
    row = {
        "dataset": name, "engine": "exact", "sampler": "quadrature", "parameterization": "-",
        "compile_s": t1 - t0, "sample_s": t2 - t1, "wall_s": t2 - t0,
        "ess_tau": float(n), "ess_tau_per_s": n / (t2 - t1), "divergences": 0,
        "r_hat_max": np.nan, "E_tau": float(dt["posterior"]["tau"].mean()), "z_tau": np.nan,
    }
    return row, exact_tau


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=1000, help="draws per chain (default 1000)")
    p.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (default 1000)")
    p.add_argument("--chains", type=int, default=4, help="chains (default 4)")
    p.add_argument("--seed", type=int, default=1, help="seed (default 1)")
    p.add_argument("--target-accept", type=float, default=mm.DEFAULT_TARGET_ACCEPT,
                   help=f"NUTS target acceptance for every row (default {mm.DEFAULT_TARGET_ACCEPT})")
    p.add_argument("--datasets", nargs="+", default=["eight_schools", "seed_countries"])
    p.add_argument("--samplers", nargs="+", default=["nutpie", "pymc"], choices=["nutpie", "pymc"])
    args = p.parse_args(argv)

    # Warm-up: numba's first compile in a process is much slower than the following ones.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mm.sample(metapool.datasets.load("eight_schools"), draws=10, tune=10, chains=1, seed=0,
                  max_retries=0, progressbar=False)

    rows = []
    for name in args.datasets:
        data = metapool.datasets.load(name)
        row, exact_tau = _exact_row(data, name, args)
        rows.append(row)
        print(f"{name}: exact E[tau] = {exact_tau:.6g}", file=sys.stderr, flush=True)
        for sampler in args.samplers:
            for par in ("noncentered", "centered"):
                rows.append(_nuts_row(data, name, par, sampler, args, exact_tau))
                r = rows[-1]
                print(f"  {sampler:6s} {par:11s} compile {r['compile_s']:.1f}s sample {r['sample_s']:.2f}s "
                      f"divergences {r['divergences']}", file=sys.stderr, flush=True)

    table = pd.DataFrame(rows).set_index(["dataset", "engine", "sampler", "parameterization"])
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        print(f"\n{args.chains} chains x {args.draws} draws (tune {args.tune}), target_accept "
              f"{args.target_accept}, no automatic reruns, flat priors\n")
        print(table.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
