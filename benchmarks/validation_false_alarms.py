"""False-alarm rate of ``metapool.validation.compare`` on correct NUTS fits, beside its nominal level.

Run:  python benchmarks/validation_false_alarms.py [--fits 300] [--draws 1000] [--tune 1000]
                                                   [--chains 4] [--seed 0] [--csv FILE]

Fits the non-centred model with NUTS (metapool.models.sample, flat priors, the sampler compiled
once per dataset and reused) to eight schools, bcg ~ ablat and seed_countries in turn, seeds
seed, seed + 1, ... (``--fits`` fits in all), and runs the verdict against the exact posterior.
These fits are correct (the non-centred model samples these posteriors without bias), so every
FAILED report is a false alarm. Prints per dataset and overall:

- the observed rate of FAILED reports (the whole report's false alarms, with a 95 %
  Clopper-Pearson interval) beside its nominal level 1 - (1 - alpha_z)(1 - pit_alpha):
  alpha_z = 2 Phi(-z_threshold) is the family-wise level of the Šidák-adjusted z tests,
  pit_alpha that of the PIT tests (R-hat, divergences and E-BFMI are fixed limits without a
  nominal level; the fits each of them failed are counted);
- the rate of INCONCLUSIVE reports (bulk or tail ESS below its minimum and nothing failed:
  "run more draws", not an alarm; no nominal level) and every shortfall (parameter, which
  ESS, its value);
- the same false-alarm rate with ArviZ's MCSE in the z scores instead of the exact-density ones
  (the report's ``arviz_z_*`` columns under the same limits);
- the calibration of the z scores (sd over all z tests, share beyond 1.96 and 3; N(0, 1) gives
  1, 5 %, 0.27 %) for both MCSEs, split by the row's min(bulk, tail) ESS below / above the
  minimum (are the z tests still calibrated where the ESS falls short?), and the observed rate
  of z alarms if the family-wise z level were 1e-2 or 1e-3 instead.

Exits 1 when the observed FAILED rate lies above the 95 % interval's reach of the nominal one
(the lower Clopper-Pearson bound exceeds the nominal level).
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


def _one(data, exact, seed: int, draws: int, tune: int, chains: int
         ) -> tuple[dict, list[dict], pd.DataFrame]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = models.sample(data, seed=seed, draws=draws, tune=tune, chains=chains, progressbar=False)
        rep = compare(dt, exact)
    t = rep.table
    zc = [c for c in t.columns if c.startswith("z_")]
    z_arviz = t[[f"arviz_{c}" for c in zc]].to_numpy(float)
    crit = rep.thresholds["z_crit"]
    kinds = sorted({_kind(f.check) for f in rep.problems})
    info = models.run_info(dt)
    row = {
        "seed": seed, "outcome": rep.outcome, "passed": rep.passed, "failed": rep.failed,
        "inconclusive": rep.inconclusive, "failed_checks": ",".join(kinds),
        "short_checks": ",".join(sorted({f.check for f in rep.shortfalls})),
        "z_alarm": "z" in kinds, "z_alarm_arviz": bool(np.nanmax(np.abs(z_arviz)) > crit),
        "other_alarm": bool(set(kinds) - {"z"}), "max_abs_z": float(t["max_abs_z"].max()),
        "max_abs_z_arviz": float(np.nanmax(np.abs(z_arviz))), "n_z": int(np.isfinite(t[zc].to_numpy(float)).sum()),
        "z_crit": crit, "min_ess": rep.thresholds["min_ess"], "reruns": info.reruns, "compiled": info.compiled,
        "sampling_s": info.sampling_time_total,
    }
    row["failed_arviz"] = row["z_alarm_arviz"] or row["other_alarm"]
    short = [{"seed": seed, "parameter": f.parameter, "check": f.check, "ess": float(f.value)} for f in rep.shortfalls]
    ess_low = np.minimum(t["ess_bulk"], t["ess_tail"]).to_numpy(float) < rep.thresholds["min_ess"]
    cells = pd.DataFrame({"z": t[zc].to_numpy(float).ravel(), "z_arviz": z_arviz.ravel(),
                          "ess_low": np.repeat(ess_low, len(zc))}).dropna(subset=["z"])
    return row, short, cells


def _rate_line(label: str, k: int, n: int, nominal: float) -> str:
    lo, hi = _clopper_pearson(k, n)
    return f"  {label}: {k}/{n} = {k / n:.3f} (95 % CI {lo:.3f}-{hi:.3f}); nominal {nominal:.4f}"


def _calibration(z: np.ndarray) -> str:
    z = z[np.isfinite(z)]
    if not z.size:
        return "no z scores"
    return (f"sd {np.std(z):.3f}, |z| > 1.96: {np.mean(np.abs(z) > 1.96):.2%}, |z| > 3: "
            f"{np.mean(np.abs(z) > 3):.3%}, max |z| {np.max(np.abs(z)):.2f} of {z.size} z scores")


def _counts(column: pd.Series) -> str:
    """``z 1, pit 2`` from comma-joined check names (``-`` when none)."""
    found = pd.Series([c for s in column for c in s.split(",") if c]).value_counts()
    return ", ".join(f"{k} {v}" for k, v in found.items()) or "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fits", type=int, default=300, help="fits in all, shared over the 3 datasets (default 300)")
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
    rows, shorts, cells = [], [], []
    per = math.ceil(args.fits / len(DATASETS))
    t_all = time.perf_counter()
    for k, (name, formula) in enumerate(DATASETS):
        n = min(per, args.fits - k * per)
        if n <= 0:
            break
        label = name + (f" {formula}" if formula else "")
        data = datasets.load(name, covariates=formula) if formula else datasets.load(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exact = analytic.fit(data)
        t0 = time.perf_counter()
        for i in range(n):
            row, short, c = _one(data, exact, args.seed + i, args.draws, args.tune, args.chains)
            rows.append({"dataset": label, **row})
            shorts += [{"dataset": label, **s} for s in short]
            cells.append(c)
        print(f"  {label}: {n} fits in {time.perf_counter() - t0:.0f} s")
    table = pd.DataFrame(rows)
    if args.csv:
        table.to_csv(args.csv, index=False)
    print(f"  all fits: {time.perf_counter() - t_all:.0f} s")
    print()
    for ds_name, part in [*table.groupby("dataset", sort=False), ("all", table)]:
        n = len(part)
        nz, zc = sorted(set(part["n_z"])), sorted(set(part["z_crit"]))
        print(f"{ds_name} ({n} fits, {'-'.join(map(str, nz[::len(nz) - 1 or 1]))} z tests per report, z_crit "
              f"{'-'.join(f'{c:.2f}' for c in zc[::len(zc) - 1 or 1])}):")
        print(_rate_line("FAILED (false alarms), exact-density MCSE", int(part["failed"].sum()), n, nominal))
        print(_rate_line("FAILED (false alarms), ArviZ MCSE        ", int(part["failed_arviz"].sum()), n, nominal))
        print(f"    fits failing each check: {_counts(part['failed_checks'])} (ArviZ MCSE: z "
              f"{int(part['z_alarm_arviz'].sum())})")
        k_inc = int(part["inconclusive"].sum())
        lo, hi = _clopper_pearson(k_inc, n)
        print(f"  INCONCLUSIVE (ESS short, nothing failed): {k_inc}/{n} = {k_inc / n:.3f} (95 % CI {lo:.3f}-{hi:.3f}); "
              f"fits short in each: {_counts(part['short_checks'])}")
        print(f"  not PASSED (either): {int((~part['passed']).sum())}/{n}")
    if shorts:
        sh = pd.DataFrame(shorts)
        print()
        print(f"ESS shortfalls on correct fits (minimum {table['min_ess'].iloc[0]:g}; {len(sh)} in "
              f"{sh.groupby(['dataset', 'seed']).ngroups} fits):")
        for (ds, param, chk), g in sh.groupby(["dataset", "parameter", "check"], sort=False):
            print(f"  {ds}: {param} {chk}: {len(g)} x, ESS " + ", ".join(f"{v:.0f}" for v in sorted(g["ess"])))
    print()
    allc = pd.concat(cells, ignore_index=True)
    low = allc["ess_low"].to_numpy(bool)
    print(f"z calibration, exact-density MCSE: {_calibration(allc['z'].to_numpy())}")
    print(f"z calibration, ArviZ MCSE:         {_calibration(allc['z_arviz'].to_numpy())}")
    print(f"  rows with min(bulk, tail) ESS below the minimum: exact {_calibration(allc['z'].to_numpy()[low])}")
    print(f"  rows with ESS at or above the minimum:           exact {_calibration(allc['z'].to_numpy()[~low])}")
    for level in (1e-2, 1e-3):
        thr = float(-special.ndtri(level / 2))
        hits_e = hits_a = 0
        for _, r in table.iterrows():
            crit = z_critical(thr, int(r["n_z"]))
            hits_e += r["max_abs_z"] > crit
            hits_a += r["max_abs_z_arviz"] > crit
        print(f"  if the z tests' family-wise level were {level:g}: z alarms exact {hits_e}/{len(table)}, "
              f"ArviZ {hits_a}/{len(table)}")
    k, n = int(table["failed"].sum()), len(table)
    lo, hi = _clopper_pearson(k, n)
    k_inc = int(table["inconclusive"].sum())
    print()
    print(f"observed false-alarm rate (FAILED) {k / n:.4f} ({k}/{n}, 95 % CI {lo:.4f}-{hi:.4f}) vs nominal "
          f"{nominal:.4f}; INCONCLUSIVE {k_inc / n:.4f} ({k_inc}/{n})")
    return 1 if lo > nominal else 0


if __name__ == "__main__":
    sys.exit(main())
