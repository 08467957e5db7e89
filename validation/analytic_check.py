"""Checks of the exact engine itself: quadrature convergence and agreement with its own draws."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from metapool.data import MetaData
from metapool.validation._common import (
    DEFAULT_QUANTILES,
    draws_table,
    flat_posterior,
    format_report_table,
    _exact_summary,
)
from metapool.validation.verdict import Failure, Verdict, check, draw_limits, failure_lines
from metapool.validation.verdict import passed_column, pit_rule, verdict, z_rules

__all__ = ["check_analytic", "AnalyticCheckReport"]


@dataclass(frozen=True, eq=False)
class AnalyticCheckReport(Verdict):
    """The verdict of :func:`check_analytic`.

    Attributes
    ----------
    differences : pandas.DataFrame
        Summary at ``rtol`` minus summary at ``fine_rtol``: index ``parameter`` (every row of
        :meth:`ExactPosterior.summary`, ``y_pred`` included), the summary columns (``mean, sd,
        q2.5, ..., hdi95_high``); NaN where the moment does not exist.
    relative_differences : pandas.DataFrame
        ``|differences|`` divided by the parameter's posterior scale (the fine sd, or IQR / 1.349
        where the sd does not exist).
    summary : pandas.DataFrame
        The summary at ``rtol``.
    table : pandas.DataFrame
        The exact summaries against the engine's own independent draws, in the layout of
        :attr:`ComparisonReport.table` (``exact_*``, ``mcmc_*``, ``mcse_*``, ``z_*``, ESS,
        R-hat, PIT test), plus ``max_abs_z`` and ``passed``.
    max_abs_difference, max_relative_difference : float
        Largest entries of the two difference tables.
    error_estimate, fine_error_estimate : float
        The engine's own error estimates at the two tolerances.
    failures : tuple of Failure
        Every failed check (:class:`~metapool.validation.verdict.Failure`): ``change_COLUMN``
        (quadrature change of a summary in posterior sds, limit ``diff_tol``), ``z_mean`` /
        ``z_qP`` (limit ``z_crit``) and ``pit`` (limit ``pit_p_min``).
    notes : tuple of str
    thresholds : Mapping[str, float]
        ``diff_tol``, ``z_crit``, ``n_z_tests``, ``pit_p_min``, ``n_pit_tests``, ``alpha``,
        ``z_threshold``, ``rtol``, ``fine_rtol``.
    """

    differences: pd.DataFrame
    relative_differences: pd.DataFrame
    summary: pd.DataFrame
    table: pd.DataFrame
    max_abs_difference: float
    max_relative_difference: float
    error_estimate: float
    fine_error_estimate: float
    failures: tuple[Failure, ...]
    notes: tuple[str, ...]
    thresholds: Mapping[str, float]
    draws: int
    chains: int

    def __repr__(self) -> str:
        return (f"AnalyticCheckReport(passed={self.passed}, failures={len(self.failures)}, "
                f"max_relative_difference={self.max_relative_difference:.2g})")

    def __str__(self) -> str:
        t = self.thresholds
        verdict = self.verdict_text()
        lines = [
            f"metapool analytic check: {verdict}",
            f"  quadrature: rtol {t['rtol']:g} vs {t['fine_rtol']:g}: largest change of any summary "
            f"{self.max_abs_difference:.3g} (absolute), {self.max_relative_difference:.3g} (in posterior sds; "
            f"limit {t['diff_tol']:g}); error estimates {self.error_estimate:.2g} and {self.fine_error_estimate:.2g}",
            f"  own draws: {self.chains} x {self.draws} independent draws; |z| <= {t['z_crit']:.2f} over "
            f"{int(t['n_z_tests'])} means and quantiles, PIT KS p >= {t['pit_p_min']:.2g}",
        ]
        lines += failure_lines(self.failures)
        if self.notes:
            lines.append("notes:")
            lines += [f"  {n}" for n in self.notes]
        lines.append("largest relative change per parameter (rtol vs fine_rtol):")
        rel = self.relative_differences.max(axis=1, skipna=True).rename("max_rel_diff").to_frame()
        lines.append(format_report_table(rel, ["max_rel_diff"]))
        lines.append("exact summaries vs the engine's own draws:")
        status = self.table["passed"].map({True: "ok", False: "FAIL"})
        lines.append(format_report_table(self.table, ["exact_mean", "mcmc_mean", "z_mean", "max_abs_z", "pit_p"], status))
        return "\n".join(lines)


def _fit(fit, data, tau_prior, beta_prior, rtol, x_new, notes):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        post = fit(data, tau_prior, beta_prior, rtol=rtol, x_new=x_new)
    for w in caught:
        if issubclass(w.category, RuntimeWarning):
            notes.append(f"rtol={rtol:g}: {w.message}")
    return post


def _scale(summary: pd.DataFrame, post) -> pd.Series:
    scale = summary["sd"].copy()
    for n in scale.index[~np.isfinite(scale.to_numpy())]:
        q25, q75 = post.quantile(str(n), [0.25, 0.75])
        scale[n] = (q75 - q25) / 1.349
    return scale


def check_analytic(
    data: MetaData,
    tau_prior=None,
    beta_prior=None,
    *,
    rtol: float = 1e-8,
    fine_rtol: float = 1e-12,
    diff_tol: float | None = None,
    draws: int = 1000,
    chains: int = 4,
    seed: int = 0,
    z_threshold: float = 4.0,
    alpha: float = 0.01,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    x_new=None,
) -> AnalyticCheckReport:
    """Check the exact engine: quadrature convergence and agreement with its own independent draws.

    Parameters
    ----------
    data : MetaData
        The studies.
    tau_prior, beta_prior : prior or spec string, optional
        As in :func:`metapool.analytic.fit` (default flat).
    rtol : float, default 1e-8
        Tolerance of the fit under test.
    fine_rtol : float, default 1e-12
        Tolerance of the reference fit.
    diff_tol : float, optional
        Largest acceptable change of any summary between the two fits, in posterior sds;
        default ``10 * rtol``.
    draws, chains : int
        Independent draws per chain and chains from the fit under test (``sample``).
    seed : int, default 0
        Seed of those draws.
    z_threshold : float, default 4.0
        One-test critical |z|, adjusted for the number of tests as in
        :func:`metapool.validation.compare`.
    alpha : float, default 0.01
        Family-wise level of the PIT tests.
    quantiles : sequence of float
        Quantiles compared with the draws.
    x_new : array_like, optional
        Covariates of the new study (``theta_new``).

    Returns
    -------
    AnalyticCheckReport

    Notes
    -----
    Quadrature: every summary (means, sds, quantiles, HDI ends of tau, the coefficients, every
    theta_j, theta_new and every y_pred_j) is computed at ``rtol`` and at ``fine_rtol``; the
    check passes when max |S(rtol) - S(fine)| / scale <= ``diff_tol``, scale being the
    parameter's posterior sd (IQR / 1.349 where the sd does not exist). Draws: the draws are
    independent, so z = (statistic of the draws - exact value) / mcse is approximately N(0, 1)
    for every mean and quantile (mcse from :func:`arviz.mcse`); the test uses the critical
    value of :func:`compare` (z_crit = Phi^-1(1 - alpha_m / 2), alpha_m = 1 - (1 - alpha_z)^(1/m),
    alpha_z = 2 Phi(-z_threshold), Šidák over the m tests), and the PIT u = F_exact(draw) must
    pass a Kolmogorov-Smirnov test at 1 - (1 - alpha)^(1/P). This tests the inverse-CDF sampler of tau and the conditional
    normal draws against the quadrature CDFs.

    References
    ----------
    .. [1] Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021).
       Rank-normalization, folding, and localization: an improved R-hat for assessing
       convergence of MCMC. Bayesian Analysis 16(2), 667-718.
    .. [2] Röver, C. (2020). Bayesian random-effects meta-analysis using the bayesmeta R
       package. Journal of Statistical Software 93(6).
    """
    from metapool.analytic import fit

    if not 0 < fine_rtol < rtol:
        raise ValueError(f"fine_rtol must be in (0, rtol), got fine_rtol={fine_rtol!r}, rtol={rtol!r}")
    diff_tol = 10.0 * rtol if diff_tol is None else float(diff_tol)
    qs = tuple(float(q) for q in quantiles)
    notes: list[str] = []
    failures: list[Failure] = []
    coarse = _fit(fit, data, tau_prior, beta_prior, rtol, x_new, notes)
    fine = _fit(fit, data, tau_prior, beta_prior, fine_rtol, x_new, notes)

    s_c = _exact_summary(coarse, DEFAULT_QUANTILES)
    s_f = _exact_summary(fine, DEFAULT_QUANTILES)
    diff = s_c - s_f
    scale = _scale(s_f, fine)
    rel = diff.abs().div(scale, axis=0)
    max_abs = float(np.nanmax(diff.abs().to_numpy())) if np.isfinite(diff.to_numpy()).any() else 0.0
    max_rel = float(np.nanmax(rel.to_numpy())) if np.isfinite(rel.to_numpy()).any() else 0.0
    for n, r in rel.iterrows():
        for col, v in r.items():
            f = check(str(n), f"change_{col}", float(v), diff_tol, missing_fails=False,
                      difference=float(diff.at[n, col]), rtol=float(rtol), fine_rtol=float(fine_rtol))
            if f is not None:
                failures.append(f)
    nan_moments = [str(n) for n in s_f.index if not np.isfinite(s_f.at[n, "mean"])]
    if nan_moments:
        notes.append(f"no posterior mean for {', '.join(nan_moments)} (heavy tail): those cells are NaN and "
                     "their mean z is skipped")

    # The engine's own independent draws against its exact summaries.
    flat = flat_posterior(coarse.sample(draws=draws, chains=chains, seed=seed))
    ex = s_c if qs == DEFAULT_QUANTILES else _exact_summary(coarse, qs)
    table = draws_table(flat, coarse, qs, exact_summary=ex)
    n_z, z_crit, n_pit, pit_min = draw_limits(table, z_threshold, alpha)
    zc = [c for c in table.columns if c.startswith("z_")]
    table["max_abs_z"] = table[zc].abs().max(axis=1, skipna=True)
    draw_fail = verdict(table, [*z_rules(table, z_crit), pit_rule(pit_min, with_n_eff=False)], reference="CDF")
    table["passed"] = passed_column(table, draw_fail)
    failures += draw_fail

    thresholds = {
        "diff_tol": diff_tol, "z_crit": z_crit, "n_z_tests": float(n_z), "pit_p_min": pit_min,
        "n_pit_tests": float(n_pit), "alpha": float(alpha), "z_threshold": float(z_threshold),
        "rtol": float(rtol), "fine_rtol": float(fine_rtol),
    }
    return AnalyticCheckReport(
        differences=diff, relative_differences=rel, summary=s_c, table=table,
        max_abs_difference=max_abs, max_relative_difference=max_rel,
        error_estimate=float(coarse.error_estimate), fine_error_estimate=float(fine.error_estimate),
        failures=tuple(failures), notes=tuple(notes), thresholds=thresholds, draws=int(draws), chains=int(chains),
    )
