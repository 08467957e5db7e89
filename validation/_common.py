"""Shared pieces of the validation reports: flat draws, multiplicity adjustment, PIT and MCSE tests.

Nothing here imports PyMC: the exact-engine SBC runs these in worker processes.
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable, Mapping, Sequence

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy import special, stats

from metapool.numfmt import format_pair
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
    "exact_mcse",
    "MCSE_METHODS",
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


MCSE_METHODS: tuple[str, ...] = ("exact", "arviz")


def exact_mcse(x: np.ndarray, exact, name: str, quantiles: Sequence[float], exact_q: Sequence[float],
               exact_sd: float) -> tuple[float, np.ndarray, float, np.ndarray]:
    """Monte Carlo errors of the mean and the quantiles of ``(chain, draw)`` draws, from the exact density.

    Parameters
    ----------
    x : ndarray, shape (chain, draw)
        Draws of one scalar parameter.
    exact : metapool.analytic.ExactPosterior
        Gives the density (:meth:`~metapool.analytic.ExactPosterior.pdf`).
    name : str
        Flat parameter name.
    quantiles, exact_q : sequence of float
        Probabilities p and the exact quantiles x_p.
    exact_sd : float
        Exact posterior sd (NaN where it does not exist).

    Returns
    -------
    (mcse_mean, mcse_q, ess_mean, ess_q)
        NaN where a value cannot be formed (no exact sd, zero density, constant indicator).

    Notes
    -----
    mcse(mean) = sd / sqrt(S_eff) with the exact sd and S_eff the ESS of the draws
    (:func:`arviz.ess`, ``method="mean"``). For the p-quantile (docs/MATH.md),

        mcse(q_hat_p) = sqrt(p (1 - p) / S_eff,p) / f(x_p),

    the delta method applied to the empirical CDF at the exact quantile x_p: F_hat(x_p) has
    variance p (1 - p) / S_eff,p, S_eff,p the ESS of the indicator draws 1{x <= x_p}
    (ArviZ's ``ess`` of the indicator, as its ``mcse(method="quantile")`` uses at the sample
    quantile), and f the exact posterior density. ArviZ estimates 1 / f(x_p) from the spacing
    of the order statistics, which is noisy in the tails; the exact density removes that noise.

    References
    ----------
    .. [1] Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021).
       Rank-normalization, folding, and localization: an improved R-hat for assessing
       convergence of MCMC. Bayesian Analysis 16(2), 667-718 (appendix: quantile MCSE).
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    qs = np.asarray(quantiles, dtype=float)
    xq = np.asarray(exact_q, dtype=float)
    ind = {f"i{k}": (("chain", "draw"), (x <= xq[k]).astype(float)) for k in range(qs.size)}
    ds = xr.Dataset({"x": (("chain", "draw"), x), **ind})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ess = az.ess(ds, method="mean")
        dens = np.asarray(exact.pdf(name, np.where(np.isfinite(xq), xq, 0.0)), dtype=float).reshape(qs.shape)
    ess_mean = float(ess["x"])
    ess_q = np.array([float(ess[f"i{k}"]) for k in range(qs.size)])
    mcse_mean = float(exact_sd / np.sqrt(ess_mean)) if np.isfinite(exact_sd) and ess_mean > 0 else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        mcse_q = np.sqrt(qs * (1.0 - qs) / ess_q) / dens
    bad = ~(np.isfinite(mcse_q) & (mcse_q > 0) & np.isfinite(xq) & (ess_q > 0))
    mcse_q[bad] = np.nan
    return mcse_mean, mcse_q, ess_mean, ess_q


def draws_table(flat: xr.Dataset, exact, quantiles: Sequence[float] = DEFAULT_QUANTILES,
                exact_summary: pd.DataFrame | None = None, mcse: str = "exact") -> pd.DataFrame:
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
    mcse : {"exact", "arviz"}, default "exact"
        Which Monte Carlo errors the z scores divide by: from the exact sd and density
        (:func:`exact_mcse`; ArviZ's where those do not exist) or ArviZ's alone.

    Returns
    -------
    pandas.DataFrame
        Index ``parameter``; columns ``exact_mean, exact_sd, exact_qP..., mcmc_mean,
        mcmc_qP..., mcse_mean, mcse_qP..., z_mean, z_qP..., ess_bulk, ess_tail, r_hat, pit_ks,
        pit_n_eff, pit_p``, then ``arviz_mcse_mean, arviz_mcse_qP..., arviz_z_mean,
        arviz_z_qP...`` (ArviZ's estimates, shown beside, not tested), ``ess_mean, ess_qP...``
        (ESS of the draws and of the indicators 1{x <= exact x_P}) and ``mcse_fallbacks``
        (statistics whose exact MCSE could not be formed and ArviZ's was used).

    Notes
    -----
    z of an estimate = (estimate from the draws - exact value) / MCSE. With ``mcse="exact"``
    the MCSE of the mean is exact_sd / sqrt(ESS_mean) and that of the p-quantile is
    sqrt(p (1 - p) / ESS_p) / f(x_p), f the exact density at the exact quantile x_p and ESS_p
    the ESS of the indicator draws (:func:`exact_mcse`); ArviZ's (:func:`arviz.mcse`,
    ``method="mean"`` / ``"quantile"``) estimate the sd and 1 / f from the draws themselves.
    The quantile of the draws is the linear-interpolation quantile of all chains pooled. PIT:
    u_i = F_exact(x_i) is uniform on (0, 1) when the draws come from the exact posterior;
    ``pit_ks`` is the Kolmogorov-Smirnov distance of the u_i from uniform and ``pit_p`` its
    p-value with n replaced by min(ESS_bulk, ESS_tail, n) (:func:`ks_pvalue`).
    """
    if mcse not in MCSE_METHODS:
        raise ValueError(f"mcse must be one of {', '.join(MCSE_METHODS)}, got {mcse!r}")
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
        arviz = {"mean": float(mcse_mean[n]), **{lab: float(m[n]) for lab, m in zip(qlab, mcse_q)}}
        if mcse == "exact":
            m_mean, m_q, e_mean, e_q = exact_mcse(x, exact, n, qs, [row[f"exact_{lab}"] for lab in qlab],
                                                   row["exact_sd"])
            mine = {"mean": m_mean, **dict(zip(qlab, m_q))}
            ess_ind = {"mean": e_mean, **dict(zip(qlab, e_q))}
        else:
            mine, ess_ind = dict(arviz), {k: float("nan") for k in arviz}
        fallbacks = 0
        for what in arviz:
            value = mine[what]
            if not np.isfinite(value):
                value = arviz[what]
                fallbacks += mcse == "exact"
            row[f"mcse_{what}"] = value
        for what in arviz:
            row[f"z_{what}"] = _z(row[f"mcmc_{what}"], row[f"exact_{what}"], row[f"mcse_{what}"])
        later = {**{f"arviz_mcse_{w}": arviz[w] for w in arviz},
                 **{f"arviz_z_{w}": _z(row[f"mcmc_{w}"], row[f"exact_{w}"], arviz[w]) for w in arviz},
                 **{f"ess_{w}": ess_ind[w] for w in arviz}, "mcse_fallbacks": float(fallbacks)}
        row["ess_bulk"] = float(ess_bulk[n])
        row["ess_tail"] = float(ess_tail[n])
        row["r_hat"] = float(rhat[n])
        u = exact.cdf(n, pooled)
        d = ks_uniform(u)
        n_eff = float(np.nanmin([row["ess_bulk"], row["ess_tail"], pooled.size]))
        row["pit_ks"] = d
        row["pit_n_eff"] = n_eff
        row["pit_p"] = ks_pvalue(d, n_eff)
        row.update(later)
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
    """The tested z-score columns of a :func:`draws_table` (``z_mean`` first; not ``arviz_z_``)."""
    return [c for c in table.columns if c.startswith("z_")]


def count_z_tests(table: pd.DataFrame) -> int:
    """Number of z tests a table holds (cells where both the exact value and the MCSE exist)."""
    cols = z_columns(table)
    return int((~np.isnan(table[cols].to_numpy(dtype=float))).sum())


def _g(v: float, digits: int = 4) -> str:
    if v is None or not np.isfinite(v):
        return str(v)
    return f"{v:.{digits}g}"


def format_report_table(table: pd.DataFrame, columns: Sequence[str], status: pd.Series | None = None,
                        limits: Mapping[str, tuple[float, str]] | None = None) -> str:
    """A compact fixed-width rendering of selected columns (4 significant digits).

    ``limits`` maps a column to ``(limit, format of the limit as the report prints it)``; its
    values get the digits it takes to print apart from that limit
    (:func:`metapool.numfmt.format_pair`), so r_hat 1.0104 shows as ``1.0104``, not ``1.01``.
    """
    cols = [c for c in columns if c in table.columns]
    shown = table[cols].copy()
    if status is not None:
        shown["status"] = status
    limits = dict(limits or {})

    def fmt_for(col: str):
        def fmt(v):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                return ""
            if col in limits and np.isfinite(v) and np.isfinite(limits[col][0]):
                limit, spec = limits[col]
                return format_pair(float(v), float(limit), 4, "g", limit_format=spec)[0]
            return _g(v)
        return fmt

    return shown.to_string(formatters={c: fmt_for(c) for c in cols})
