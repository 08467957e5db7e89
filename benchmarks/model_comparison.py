"""Model comparison speed: exact leave-one-study-out against refitting with NUTS, in one process.

Run:  python benchmarks/model_comparison.py [--nuts-draws 300] [--nuts-tune 300] [--skip-nuts]

Prints
1. Exact leave-one-study-out of seed_countries (79 studies, flat priors): the default path
   (reweighting the full posterior's quadrature rule, refits only where needed) and one
   quadrature refit per study. Target: under 1 s.
2. A 4-model exact comparison on bcg (complete pooling, partial pooling, ~ ablat, no pooling
   with normal:0,2 per study): fits and exact LOO of all four. Target: under 2 s. Also the same
   comparison with ArviZ's PSIS columns (4 x 4000 exact draws).
3. The NUTS alternative for exact LOO: refitting the partial-pooling model without each of the
   13 bcg studies with NUTS (small runs; the model compiles once per refit), timed in the same
   run, against the exact LOO of the same model.

Timings are the best of several runs (the least disturbed by other load on the machine).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from metapool import analytic, datasets
from metapool.comparison import build_models, compare_models
from _timing import best_of  # noqa: E402  (benchmarks/ is on sys.path when run as a script)




def _bcg(formula):
    return datasets.load("bcg", covariates=formula) if formula else datasets.load("bcg")


def four_models():
    return build_models(_bcg(None), ["pooled", "hierarchical", "~ ablat", "unpooled"],
                        theta_prior="normal:0,2", reload=_bcg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nuts-draws", type=int, default=300)
    ap.add_argument("--nuts-tune", type=int, default=300)
    ap.add_argument("--skip-nuts", action="store_true")
    args = ap.parse_args()

    seed = datasets.load("seed_countries")
    _bcg("~ ablat")  # formula machinery imported before timing
    post = analytic.fit(seed)
    t_fast = best_of(lambda: analytic.loo(analytic.fit(seed)))
    t_refit = best_of(lambda: analytic.loo(post, method="refit"), repeat=1)
    res = analytic.loo(post)
    print(f"1. exact LOO, seed_countries (J = {seed.J}): fit + LOO {t_fast:.3f} s "
          f"(target < 1 s; one refit per study {t_refit:.3f} s); elpd_loo = {res.elpd:.3f} (SE {res.se:.3f})")

    t_exact4 = best_of(lambda: [analytic.loo(m) for m in four_models().values()])
    loos = {n: analytic.loo(m).elpd for n, m in four_models().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_psis4 = best_of(lambda: compare_models(four_models()), repeat=1)
    print(f"2. 4-model exact comparison on bcg: {t_exact4:.3f} s (target < 2 s); with PSIS columns "
          f"(compare_models, 4 x 4000 draws) {t_psis4:.3f} s")
    print("   exact elpd_loo: " + ", ".join(f"{n} {v:.3f}" for n, v in loos.items()))

    if args.skip_nuts:
        return
    from metapool import models

    data = _bcg(None)
    t0 = time.perf_counter()
    lp = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(data.J):
            keep = np.arange(data.J) != j
            dt = models.sample(data.subset(keep), draws=args.nuts_draws, tune=args.nuts_tune, chains=2,
                               seed=j, max_retries=0, progressbar=False)
            tau = dt["posterior"]["tau"].values.ravel()
            mu = dt["posterior"]["mu"].values.ravel()
            v = data.variance[j] + tau**2
            dens = np.exp(-0.5 * (data.y[j] - mu) ** 2 / v) / np.sqrt(2 * np.pi * v)
            lp.append(np.log(dens.mean()))
    t_nuts = time.perf_counter() - t0
    t_exact = best_of(lambda: analytic.loo(analytic.fit(data)))
    print(f"3. LOO of partial pooling on bcg: NUTS refits ({data.J} x {args.nuts_draws} x 2 draws) {t_nuts:.1f} s, "
          f"elpd {sum(lp):.3f}; exact {t_exact:.3f} s, elpd {analytic.loo(analytic.fit(data)).elpd:.3f} "
          f"({t_nuts / t_exact:.0f}x)")


if __name__ == "__main__":
    main()
