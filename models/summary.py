"""Posterior summary table with flat parameter names, computed by ArviZ."""

from __future__ import annotations

from typing import Sequence

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.base import array_stats

from metapool import checks, layout
from metapool.layout import MCMC_COLUMNS, SUMMARY_COLUMNS, flat_draws, quantile_column

__all__ = ["summarize", "flat_draws", "SUMMARY_COLUMNS", "MCMC_COLUMNS", "quantile_column"]

def summarize(
    dt: xr.DataTree,
    quantiles: Sequence[float] = layout.DEFAULT_QUANTILES,
) -> pd.DataFrame:
    """Summary table of a NUTS fit (or of any draws in the shared layout).

    Parameters
    ----------
    dt : xarray.DataTree
        Output of :func:`metapool.models.sample` (the exact engine's ``sample()`` works too).
    quantiles : sequence of float, default (0.025, 0.25, 0.5, 0.75, 0.975)
        Probabilities of the quantile columns, each in [0, 1].

    Returns
    -------
    pandas.DataFrame
        Index ``parameter``: ``tau``, ``mu`` or ``beta[NAME]``, ``theta[LABEL]``,
        ``theta_new``, ``y_pred[LABEL]``. Columns ``mean, sd``, one ``qP`` per quantile
        (``q2.5, q25, q50, q75, q97.5`` by default), ``hdi95_low, hdi95_high, mcse_mean,
        ess_bulk, ess_tail, r_hat``. Unrounded floats.

    Notes
    -----
    Everything comes from ArviZ: ``mean``, ``sd``, the 95% highest-density interval, the
    Monte Carlo standard error of the mean, the bulk and tail effective sample sizes and the
    rank-normalised split R-hat [1]_ from :func:`arviz.summary`; the quantiles from ArviZ's
    array quantile (linear interpolation over the pooled draws of every chain).

    References
    ----------
    .. [1] Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021).
       Rank-normalization, folding, and localization: an improved R-hat for assessing
       convergence of MCMC. Bayesian Analysis 16(2), 667-718.
    """
    qs = list(checks.probability_tuple("quantiles", quantiles))
    ds = flat_draws(dt)
    if not ds.data_vars:
        raise ValueError("no posterior variables to summarise (expected tau, mu/beta, theta ...)")
    low, high = layout.interval_columns(layout.DEFAULT_PROB)
    table = az.summary(ds, kind="all", ci_prob=layout.DEFAULT_PROB, ci_kind="hdi", round_to="none", fmt="wide")
    table = pd.DataFrame(table).rename(columns={"hdi95_lb": low, "hdi95_ub": high})
    names = list(ds.data_vars)
    if qs:
        values = np.stack([ds[n].transpose(*layout.SAMPLE_DIMS).values for n in names], axis=-1)
        qvals = np.asarray(array_stats.quantile(values, qs, axis=(0, 1)))  # (K, len(qs))
        qtab = pd.DataFrame(qvals, index=names, columns=[quantile_column(q) for q in qs])
    else:
        qtab = pd.DataFrame(index=names)
    columns = ["mean", "sd", *qtab.columns, low, high, *MCMC_COLUMNS]
    out = pd.concat([table.loc[names], qtab], axis=1)[columns].astype(float)
    out.index = pd.Index(names, name="parameter")
    return out
