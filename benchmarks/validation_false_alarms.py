"""False-alarm rate of ``metapool.validation.compare`` on correct NUTS fits, beside its nominal level.

Run:  python benchmarks/validation_false_alarms.py [--fits 102] [--draws 1000] [--tune 1000]
                                                   [--chains 4] [--seed 0] [--csv FILE]

Fits the non-centred model with NUTS (metapool.models.sample, flat priors, the sampler compiled
once per dataset and reused) to eight schools, bcg ~ ablat and seed_countries in turn, seeds
seed, seed + 1, ... (``--fits`` fits in all), and runs the verdict against the exact posterior.
These fits are correct (the non-centred model samples these posteriors without bias), so every
failed report is a false alarm. Prints per dataset and overall:

- the observed false-alarm rate of the whole report (with a 95 % Clopper-Pearson interval)
  beside its nominal level 1 - (1 - alpha_z)(1 - pit_alpha): alpha_z = 2 Phi(-z_threshold)
  is the family-wise level of the Šidák-adjusted z tests, pit_alpha that of the PIT tests
  (R-hat, ESS, divergences and E-BFMI are fixed limits without a nominal level; their
  failures are counted separately);
- the same with ArviZ's MCSE in the z scores instead of the exact-density ones (the report's
  ``arviz_z_*`` columns under the same limits);
- the calibration of the z scores (sd over all z tests, share beyond 1.96 and 3; N(0, 1) gives
  1, 5 %, 0.27 %) for both MCSEs, and the observed rate of z alarms if the family-wise z level
  were 1e-2 or 1e-3 instead.

Exits 1 when the observed rate lies above the 95 % interval's reach of the nominal one (the
lower Clopper-Pearson bound exceeds the nominal level).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings

import numpy as np
import pandas as pd
from scipy import special, stats

import metapool.datasets as datasets
from metapool import analytic, models
from metapool.validation import compare
from metapool.validation._common import z_critical, z_family_alpha
from metapool.validation.compare import PIT_ALPHA, Z_THRESHOLD

DATASETS = (("eight_schools", None), ("bcg", "~ ablat"), ("seed_countries", None))


def _clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    a = 1.0 - level
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def _kind(check: str) -> str:
    return "z" if check.startswith("z_") else check


def _one(data, exact, seed: int, draws: int, tune: int, chains: int) -> tuple[dict, np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = models.sample(data, seed=seed, draws=draws, tune=tune, chains=chains, progressbar=False)
        rep = compare(dt, exact)
    t = rep.table
    zc = [c for c in t.columns if c.startswith("z_")]
    z_exact = t[zc].to_numpy(float).ravel()
    z_arviz = t[[f"arviz_{c}" for c in zc]].to_numpy(float).ravel()
    kinds = sorted({_kind(f.check) for f in rep.failures})
    crit = rep.thresholds["z_crit"]
    others = [k for k in kinds if k != "z"]
    info = run_info = models.run_info(dt)
    row = {
        "seed": seed, "passed": rep.passed, "failed_checks": ",".join(kinds),
        "z_alarm": "z" in kinds, "z_alarm_arviz": bool(np.nanmax(np.abs(z_arviz)) > crit),
        "other_alarm": bool(others), "max_abs_z": float(np.nanmax(np.abs(z_exact))),
        "max_abs_z_arviz": float(np.nanmax(np.abs(z_arviz))), "n_z": int(np.isfinite(z_exact).sum()),
        "z_crit": crit, "reruns": info.reruns, "compiled": run_info.compiled,
        "sampling_s": info.sampling_time_total,
    }
    row["passed_arviz"] = not (row["z_alarm_arviz"] or row["other_alarm"])
    return row, z_exact[np.isfinite(z_exact)], z_arviz[np.isfinite(z_arviz)]


def _rate_line(label: str, k: int, n: int, nominal: float) -> str:
    lo, hi = _clopper_pearson(k, n)
    return f"  {label}: {k}/{n} = {k / n:.3f} (95 % CI {lo:.3f}-{hi:.3f}); nominal {nominal:.4f}"


def _calibration(z: np.ndarray) -> str:
    return (f"sd {np.std(z):.3f}, |z| > 1.96: {np.mean(np.abs(z) > 1.96):.2%}, |z| > 3: "
            f"{np.mean(np.abs(z) > 3):.3%} of {z.size} z scores")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fits", type=int, default=102, help="fits in all, shared over the 3 datasets (default 102)")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--csv", default=None, help="write the per-fit table here")
    args = ap.parse_args(argv)

    alpha_z = z_family_alpha(Z_THRESHOLD)
    nominal = 1.0 - (1.0 - alpha_z) * (1.0 - PIT_ALPHA)
    print(f"metapool validation false alarms: {args.fits} non-centred NUTS fits (flat priors), "
          f"{args.chains} x {args.draws} draws, tune {args.tune}")
    print(f"  nominal: z tests family-wise {alpha_z:.2g} (z_threshold {Z_THRESHOLD:g}, Sidak), PIT tests "
          f"{PIT_ALPHA:g}; whole report {nominal:.4f}")
    rows, zs_exact, zs_arviz = [], [], []
    per = math.ceil(args.fits / len(DATASETS))
    t_all = time.perf_counter()
    for k, (name, formula) in enumerate(DATASETS):
        n = min(per, args.fits - k * per)
        if n <= 0:
            break
        data = datasets.load(name, covariates=formula) if formula else datasets.load(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exact = analytic.fit(data)
        t0 = time.perf_counter()
        for i in range(n):
            row, ze, za = _one(data, exact, args.seed + i, args.draws, args.tune, args.chains)
            rows.append({"dataset": name + (f" {formula}" if formula else ""), **row})
            zs_exact.append(ze)
            zs_arviz.append(za)
        print(f"  {name}{' ' + formula if formula else ''}: {n} fits in {time.perf_counter() - t0:.0f} s")
    table = pd.DataFrame(rows)
    if args.csv:
        table.to_csv(args.csv, index=False)
    print(f"  all fits: {time.perf_counter() - t_all:.0f} s")
    print()
    ze, za = np.concatenate(zs_exact), np.concatenate(zs_arviz)
    for ds_name, part in [*table.groupby("dataset", sort=False), ("all", table)]:
        n = len(part)
        print(f"{ds_name} ({n} fits, {int(part['n_z'].iloc[0])} z tests per report, z_crit "
              f"{part['z_crit'].iloc[0]:.2f}):")
        print(_rate_line("false alarms, exact-density MCSE", int((~part["passed"]).sum()), n, nominal))
        print(_rate_line("false alarms, ArviZ MCSE        ", int((~part["passed_arviz"]).sum()), n, nominal))
        print(f"    of which z alarms: exact {int(part['z_alarm'].sum())}, ArviZ {int(part['z_alarm_arviz'].sum())}; "
              f"other checks: {int(part['other_alarm'].sum())} "
              f"({', '.join(sorted({c for s in part['failed_checks'] for c in s.split(',') if c and c != 'z'})) or '-'})")
    print()
    print(f"z calibration, exact-density MCSE: {_calibration(ze)}")
    print(f"z calibration, ArviZ MCSE:         {_calibration(za)}")
    for level in (1e-2, 1e-3):
        thr = float(-special.ndtri(level / 2))
        hits_e = hits_a = 0
        for _, r in table.iterrows():
            crit = z_critical(thr, int(r["n_z"]))
            hits_e += r["max_abs_z"] > crit
            hits_a += r["max_abs_z_arviz"] > crit
        print(f"  if the z tests' family-wise level were {level:g}: z alarms exact {hits_e}/{len(table)}, "
              f"ArviZ {hits_a}/{len(table)}")
    k, n = int((~table["passed"]).sum()), len(table)
    lo, _ = _clopper_pearson(k, n)
    print()
    print(f"observed false-alarm rate {k / n:.3f} ({k}/{n}) vs nominal {nominal:.4f}")
    return 1 if lo > nominal else 0


if __name__ == "__main__":
    sys.exit(main())
