"""Predictions over covariates from posterior draws: x'beta and a new study's theta_new at many rows."""

from __future__ import annotations

from typing import Any, Sequence

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.base import array_stats

from metapool import checks, layout
from metapool.data import MetaData
from metapool.errors import InputError

__all__ = ["predict"]


def predict(dt: xr.DataTree, data: MetaData, newdata: Any, *, seed: int | np.random.Generator = 0,
            quantiles: Sequence[float] = layout.DEFAULT_QUANTILES) -> pd.DataFrame:
    """Posterior of x'beta and of a new study's theta_new at many covariate rows, from draws.

    Parameters
    ----------
    dt : xarray.DataTree
        Draws in the shared layout (:func:`metapool.models.sample`, or the exact engine's
        ``sample()``): ``tau`` and ``mu`` / ``beta`` in the ``posterior`` group.
    data : MetaData
        The fitted data (its formula encodes ``newdata``).
    newdata : pandas.DataFrame or array_like
        One row per new study: raw covariate values, or a ``(G, p)`` array of design rows
        (:meth:`metapool.MetaData.design_rows`).
    seed : int or numpy.random.Generator, default 0
        Seed of the standard normals e that turn draws of (beta, tau) into a new study's effect.
    quantiles : sequence of float

    Returns
    -------
    pandas.DataFrame
        Index ``(row, parameter)`` (``x'beta``, ``theta_new`` per row, as
        :meth:`metapool.analytic.ExactPosterior.predict`); columns the summary columns plus
        ``mcse_mean, ess_bulk, ess_tail, r_hat`` (ArviZ, as :func:`metapool.models.summarize`).

    Notes
    -----
    Per draw s: x'beta^(s) and theta_new^(s) = x'beta^(s) + tau^(s) e^(s), e^(s) ~ N(0, 1), one e
    per draw shared by every row (common random numbers: smooth curves over rows, the same
    marginal distribution for each). The summaries are those of :func:`metapool.models.summarize`.
    """
    post = dt["posterior"]
    name = layout.location_name(data)
    if name not in post or "tau" not in post:
        raise InputError(f"the draws have no {name!r} and 'tau' in their posterior group")
    X = data.design_rows(newdata)
    rows = list(newdata.index) if isinstance(newdata, pd.DataFrame) else list(range(X.shape[0]))
    beta = post[name]
    beta = beta.expand_dims(layout.COEF, axis=-1) if layout.COEF not in beta.dims else beta
    b = np.asarray(beta.transpose(*layout.SAMPLE_DIMS, layout.COEF).values, dtype=float)   # (C, D, p)
    tau = np.asarray(post["tau"].transpose(*layout.SAMPLE_DIMS).values, dtype=float)       # (C, D)
    if b.shape[-1] != X.shape[1]:
        raise InputError(f"the draws have {b.shape[-1]} coefficients; the design has {X.shape[1]}")
    lin = b @ X.T                                                                           # (C, D, G)
    e = np.random.default_rng(seed).standard_normal(tau.shape)
    new = lin + (tau * e)[..., None]
    names = [f"{k}:{q}" for k in range(X.shape[0]) for q in layout.PREDICTED]
    values = np.stack([lin, new], axis=-1).reshape(*tau.shape, -1)                          # (C, D, 2G)
    return _summary(values, names, rows, quantiles)


def _summary(values: np.ndarray, names: list[str], rows: list[Any], quantiles: Sequence[float]) -> pd.DataFrame:
    qs = list(checks.probability_tuple("quantiles", quantiles))
    ds = xr.Dataset({n: (layout.SAMPLE_DIMS, values[..., i]) for i, n in enumerate(names)})
    low, high = layout.interval_columns(layout.DEFAULT_PROB)
    table = az.summary(ds, kind="all", ci_prob=layout.DEFAULT_PROB, ci_kind="hdi", round_to="none", fmt="wide")
    table = pd.DataFrame(table).rename(columns={"hdi95_lb": low, "hdi95_ub": high}).loc[names]
    qvals = np.asarray(array_stats.quantile(values, qs, axis=(0, 1))) if qs else np.empty((len(names), 0))
    qtab = pd.DataFrame(qvals.reshape(len(names), len(qs)), index=names,
                        columns=[layout.quantile_column(q) for q in qs])
    columns = ["mean", "sd", *qtab.columns, low, high, *layout.MCMC_COLUMNS]
    out = pd.concat([table, qtab], axis=1)[columns].astype(float)
    out.index = layout.prediction_index(rows)
    return out
