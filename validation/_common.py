"""Shared pieces of the validation reports: flat draws, multiplicity adjustment, PIT and MCSE tests.

Nothing here imports PyMC: the exact-engine SBC runs these in worker processes.
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable, Sequence

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy import special, stats

from metapool.layout import DEFAULT_QUANTILES, POSTERIOR_ORDER, SAMPLE_DIMS, flat_draws, quantile_column

__all__ = [
    "DEFAULT_QUANTILES",
    "SAMPLE_DIMS",
    "flat_posterior",
    "sidak_alpha",
    "z_critical",
    "z_family_alpha",
    "ks_uniform",
    "ks_pvalue",
    "quantile_label",
    "draws_table",
    "format_report_table",
]



quantile_label = quantile_column


def flat_posterior(dt: xr.DataTree | xr.Dataset, variables: Iterable[str] = POSTERIOR_ORDER) -> xr.Dataset:
    """One ``(chain, draw)`` variable per scalar posterior parameter (no ``y_pred``), flat names."""
    return flat_draws(dt, variables, predictive=False)


# ----------------------------------------------------------------------------- multiplicity
def sidak_alpha(alpha: float, m: int) -> float:
    """Per-test level that keeps the family-wise false-alarm probability at ``alpha`` over m tests.

    Notes
    -----
    Šidák: alpha_m = 1 - (1 - alpha)^(1/m) (exact for independent tests, conservative for
    positively dependent ones, and slightly larger than Bonferroni's alpha / m).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    m = max(int(m), 1)
    return float(-math.expm1(math.log1p(-alpha) / m))


def z_family_alpha(z_threshold: float) -> float:
    """Two-sided tail probability 2 Phi(-z_threshold) of one z test (4 -> 6.3e-5)."""
    return float(special.erfc(z_threshold / math.sqrt(2.0)))


def z_critical(z_threshold: float, m: int) -> float:
    """Critical |z| for m simultaneous two-sided z tests, adjusted from the one-test threshold.

    Notes
    -----
    The family-wise false-alarm probability is held at that of one test at ``z_threshold``,
    alpha = 2 Phi(-z_threshold), by Šidák's rule: z_crit = Phi^-1(1 - alpha_m / 2) with
    alpha_m = 1 - (1 - alpha)^(1/m). For z_threshold = 4: 4.00 (m = 1), 4.90 (m = 66),
    5.28 (m = 500).
    """
    if not z_threshold > 0:
        raise ValueError(f"z_threshold must be positive, got {z_threshold!r}")
    alpha_m = sidak_alpha(z_family_alpha(z_threshold), m)
    return float(-special.ndtri(alpha_m / 2.0))


# ----------------------------------------------------------------------------- PIT / KS
def ks_uniform(u: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance of the empirical CDF of u from the uniform CDF on [0, 1].

    Notes
    -----
    D = max_i max(i/n - u_(i), u_(i) - (i - 1)/n) over the order statistics u_(1) <= ... <= u_(n).
    """
    u = np.sort(np.clip(np.asarray(u, dtype=float).ravel(), 0.0, 1.0))
    n = u.size
    if n == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - u), np.max(u - (i - 1) / n)))


def ks_pvalue(d: float, n_eff: float) -> float:
    """p-value of the KS distance d with the effective sample size n_eff in place of n.

    Notes
    -----
    p = P(D_n >= d) for the exact finite-sample Kolmogorov distribution of n = round(n_eff)
    independent uniforms (``scipy.stats.kstwo``). For autocorrelated draws the variance of the
    ECDF at u is about u(1 - u) / ESS rather than u(1 - u) / n, so n_eff = min(ESS_bulk,
    ESS_tail, n) keeps the test close to its nominal level (Vehtari et al. 2021).
    """
    if not (np.isfinite(d) and np.isfinite(n_eff)) or n_eff < 1:
        return float("nan")
    return float(stats.kstwo.sf(d, max(int(round(n_eff)), 1)))


# ----------------------------------------------------------------------------- the shared table
def _exact_summary(exact, quantiles: Sequence[float]) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MomentWarning: a non-existent mean is NaN, reported in notes
        return exact.summary(quantiles=tuple(quantiles))


def draws_table(flat: xr.Dataset, exact, quantiles: Sequence[float] = DEFAULT_QUANTILES,
                exact_summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compare draws of every flat parameter with the exact posterior, in units of Monte Carlo error.

    Parameters
    ----------
    flat : xarray.Dataset
        ``(chain, draw)`` draws per flat parameter (:func:`flat_posterior`).
    exact : metapool.analytic.ExactPosterior
        The reference posterior.
    quantiles : sequence of float
        Probabilities of the compared quantiles.
    exact_summary : DataFrame, optional
        ``exact.summary(quantiles)`` when already computed.

    Returns
    -------
    pandas.DataFrame
        Index ``parameter``; columns ``exact_mean, exact_sd, exact_qP..., mcmc_mean,
        mcmc_qP..., mcse_mean, mcse_qP..., z_mean, z_qP..., ess_bulk, ess_tail, r_hat, pit_ks,
        pit_n_eff, pit_p``.

    Notes
    -----
    z of an estimate = (estimate from the draws - exact value) / MCSE, where the MCSE of the
    mean is sd / sqrt(ESS_mean) and that of the quantile q comes from the ESS of the indicator
    I(x <= x_q) (:func:`arviz.mcse`, ``method="mean"`` / ``"quantile"``). The quantile of the
    draws is the linear-interpolation quantile of all chains pooled. PIT:
    u_i = F_exact(x_i) is uniform on (0, 1) when the draws come from the exact posterior;
    ``pit_ks`` is the Kolmogorov-Smirnov distance of the u_i from uniform and ``pit_p`` its
    p-value with n replaced by min(ESS_bulk, ESS_tail, n) (:func:`ks_pvalue`).
    """
    qs = tuple(float(q) for q in quantiles)
    qlab = [quantile_label(q) for q in qs]
    names = list(flat.data_vars)
    unknown = [n for n in names if n not in exact.parameters]
    if unknown:
        raise ValueError(f"parameters {unknown} of the draws are not parameters of the exact posterior "
                         f"({', '.join(exact.parameters)})")
    ex = _exact_summary(exact, qs) if exact_summary is None else exact_summary
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mcse_mean = az.mcse(flat, method="mean")
        mcse_q = [az.mcse(flat, method="quantile", prob=q) for q in qs]
        ess_bulk = az.ess(flat, method="bulk")
        ess_tail = az.ess(flat, method="tail")
        rhat = az.rhat(flat)
    rows = []
    for n in names:
        x = np.asarray(flat[n].values, dtype=float)
        pooled = x.ravel()
        row: dict[str, float] = {"exact_mean": ex.at[n, "mean"], "exact_sd": ex.at[n, "sd"]}
        for lab in qlab:
            row[f"exact_{lab}"] = ex.at[n, lab]
        row["mcmc_mean"] = float(pooled.mean())
        mq = np.quantile(pooled, qs) if qs else []
        for lab, v in zip(qlab, mq):
            row[f"mcmc_{lab}"] = float(v)
        row["mcse_mean"] = float(mcse_mean[n])
        for lab, m in zip(qlab, mcse_q):
            row[f"mcse_{lab}"] = float(m[n])
        row["z_mean"] = _z(row["mcmc_mean"], row["exact_mean"], row["mcse_mean"])
        for lab in qlab:
            row[f"z_{lab}"] = _z(row[f"mcmc_{lab}"], row[f"exact_{lab}"], row[f"mcse_{lab}"])
        row["ess_bulk"] = float(ess_bulk[n])
        row["ess_tail"] = float(ess_tail[n])
        row["r_hat"] = float(rhat[n])
        u = exact.cdf(n, pooled)
        d = ks_uniform(u)
        n_eff = float(np.nanmin([row["ess_bulk"], row["ess_tail"], pooled.size]))
        row["pit_ks"] = d
        row["pit_n_eff"] = n_eff
        row["pit_p"] = ks_pvalue(d, n_eff)
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index(names, name="parameter"))
    return table.astype(float)


def _z(est: float, exact: float, mcse: float) -> float:
    """(est - exact) / mcse; NaN when the exact value does not exist; +-inf for a zero MCSE."""
    if not (np.isfinite(exact) and np.isfinite(est)):
        return float("nan")
    diff = est - exact
    if not np.isfinite(mcse):
        return float("nan")
    if mcse <= 0:
        return 0.0 if diff == 0 else float(np.copysign(np.inf, diff))
    return float(diff / mcse)


def z_columns(table: pd.DataFrame) -> list[str]:
    """The z-score columns of a :func:`draws_table` (``z_mean`` first)."""
    return [c for c in table.columns if c.startswith("z_")]


def count_z_tests(table: pd.DataFrame) -> int:
    """Number of z tests a table holds (cells where both the exact value and the MCSE exist)."""
    cols = z_columns(table)
    return int((~np.isnan(table[cols].to_numpy(dtype=float))).sum())


def _g(v: float, digits: int = 4) -> str:
    if v is None or not np.isfinite(v):
        return str(v)
    return f"{v:.{digits}g}"


def format_report_table(table: pd.DataFrame, columns: Sequence[str], status: pd.Series | None = None) -> str:
    """A compact fixed-width rendering of selected columns (4 significant digits)."""
    cols = [c for c in columns if c in table.columns]
    shown = table[cols].copy()
    if status is not None:
        shown["status"] = status
    fmt = {c: (lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else _g(v)) for c in cols}
    return shown.to_string(formatters=fmt)
