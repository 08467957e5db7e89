"""Compare models of one dataset: ArviZ's PSIS-LOO table with the exact leave-one-study-out beside it.

``compare_models({name: fit})`` takes exact fits (:func:`metapool.analytic.fit`, ``fit_pooled``,
``fit_unpooled``), NUTS DataTrees (:func:`metapool.models.sample`) or any DataTree of draws, and
returns one table in ``arviz.compare``'s layout; exact fits add the exact elpd (no Monte Carlo
error) and its paired differences. Every log-likelihood is the study-level one (theta integrated
out, :mod:`metapool.likelihood`), so PSIS estimates leave-one-*study*-out.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from metapool.errors import InputError

__all__ = ["compare_models", "COMPARE_COLUMNS", "build_models", "parse_models"]

#: Columns of :func:`compare_models`, in order.
COMPARE_COLUMNS: tuple[str, ...] = (
    "rank", "elpd", "se", "p_loo", "elpd_diff", "dse", "weight", "warning", "max_k",
    "elpd_exact", "se_exact", "elpd_diff_exact", "dse_exact", "engine",
)


def _is_exact(fit: Any) -> bool:
    return hasattr(fit, "loo") or hasattr(fit, "tau_nodes")


def _draws_of(fit: Any, draws: int, chains: int, seed: int | None) -> xr.DataTree:
    if isinstance(fit, xr.DataTree):
        if "log_likelihood" not in fit.children:
            raise InputError("a DataTree in compare_models needs a log_likelihood group")
        kind = fit["log_likelihood"].attrs.get("likelihood", "conditional")
        if kind != "marginal":
            raise InputError("a DataTree in compare_models holds the conditional log-likelihood "
                             "p(y_j | theta_j), which scores each study against its own effect; sample "
                             "with log_likelihood='marginal' (the default)")
        return fit
    return fit.sample(draws=draws, chains=chains, seed=seed)


def compare_models(fits: Mapping[str, Any], *, draws: int = 1000, chains: int = 4, seed: int | None = 0,
                   method: str = "stacking") -> pd.DataFrame:
    """One table comparing models by leave-one-study-out predictive accuracy.

    Parameters
    ----------
    fits : dict of str to fit
        Exact fits (``metapool.analytic.fit``, ``fit_pooled``, ``fit_unpooled``) and/or DataTrees
        of draws with the study-level ``log_likelihood`` (NUTS: ``metapool.models.sample``), all
        of the same studies.
    draws, chains, seed : int
        Draws taken from exact fits for the PSIS columns (seeded, reproducible).
    method : {"stacking", "bb-pseudo-bma", "pseudo-bma"}
        How :func:`arviz.compare` weights the models.

    Returns
    -------
    pandas.DataFrame
        Index ``model`` ordered by ``arviz.compare``'s rank; columns :data:`COMPARE_COLUMNS`:
        PSIS-LOO ``elpd``, ``se``, ``p_loo``, ``elpd_diff``, ``dse``, ``weight`` and ``warning``
        (some Pareto k above ArviZ's threshold) with ``max_k``; for exact fits ``elpd_exact``,
        ``se_exact`` and ``elpd_diff_exact`` / ``dse_exact`` against the best exact model (NaN for
        NUTS fits); ``engine`` (``exact`` or ``draws``).

    Raises
    ------
    InputError
        Fewer than two models, models of different studies, a conditional log-likelihood, or a
        model without a predictive distribution for a left-out study.

    Notes
    -----
    elpd_loo = sum_j log p(y_j | y_-j). dse is the standard error of the paired pointwise
    differences, sqrt(J var(elpd_j^A - elpd_j^B)) [1]_.

    References
    ----------
    .. [1] Vehtari, A., Gelman, A. and Gabry, J. (2017). Practical Bayesian model evaluation
       using leave-one-out cross-validation and WAIC. Statistics and Computing 27, 1413-1432.
    .. [2] Yao, Y., Vehtari, A., Simpson, D. and Gelman, A. (2018). Using stacking to average
       Bayesian predictive distributions. Bayesian Analysis 13(3), 917-1007.
    """
    import arviz as az
    from metapool.analytic import loo, psis_loo

    if len(fits) < 2:
        raise InputError(f"compare_models needs at least two models, got {len(fits)}")
    psis, exact, engines = {}, {}, {}
    labels = None
    for i, (name, fit) in enumerate(fits.items()):
        dt = _draws_of(fit, draws, chains, None if seed is None else seed + i)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pareto k warnings: reported in the table
            psis[name] = psis_loo(dt)
        these = tuple(psis[name].pointwise.index)
        if labels is None:
            labels = these
        elif these != labels:
            raise InputError(f"model {name!r} is fitted to different studies than the first model")
        engines[name] = "exact" if _is_exact(fit) else "draws"
        if _is_exact(fit):
            exact[name] = loo(fit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = az.compare({n: p.elpd_data for n, p in psis.items()}, method=method, round_to="none")
    out = pd.DataFrame(index=pd.Index(list(table.index), name="model"))
    out["rank"] = table["rank"].astype(int)
    out["elpd"] = table["elpd"].astype(float)
    out["se"] = table["se"].astype(float)
    out["p_loo"] = table["p"].astype(float)
    out["elpd_diff"] = table["elpd_diff"].astype(float)
    out["dse"] = table["dse"].astype(float)
    out["weight"] = table["weight"].astype(float)
    out["max_k"] = [float(psis[n].pointwise["pareto_k"].max()) for n in out.index]
    out["warning"] = [bool(psis[n].elpd_data.warning) or bool(m > psis[n].elpd_data.good_k)
                      for n, m in zip(out.index, out["max_k"])]
    out["elpd_exact"] = [exact[n].elpd if n in exact else math.nan for n in out.index]
    out["se_exact"] = [exact[n].se if n in exact else math.nan for n in out.index]
    best = max(exact, key=lambda n: exact[n].elpd) if exact else None
    diffs, dses = [], []
    for n in out.index:
        if n not in exact:
            diffs.append(math.nan)
            dses.append(math.nan)
            continue
        d = exact[n].pointwise["elpd_loo"].to_numpy() - exact[best].pointwise["elpd_loo"].to_numpy()
        diffs.append(float(d.sum()))
        dses.append(float(math.sqrt(d.size * np.var(d, ddof=1))) if n != best else 0.0)
    out["elpd_diff_exact"] = diffs
    out["dse_exact"] = dses
    out["engine"] = [engines[n] for n in out.index]
    return out[list(COMPARE_COLUMNS)]


# --------------------------------------------------------------------------- models from one dataset
_POOLED = {"pooled", "complete", "fixed", "fe", "complete-pooling", "fixed-effect"}
_HIER = {"hierarchical", "partial", "re", "random", "random-effects", "partial-pooling"}
_NOPOOL = {"unpooled", "none", "no-pooling", "separate"}


def parse_models(text: str) -> list[str]:
    """Split ``"pooled,hierarchical,~ ablat"`` into model strings; InputError for an unknown one."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if len(items) < 2:
        raise InputError(f"--models needs at least two comma-separated models, got {text!r}")
    for t in items:
        if not (t.lower() in _POOLED | _HIER | _NOPOOL or t.startswith("~")):
            raise InputError(f"unknown model {t!r} in --models: use pooled, hierarchical, unpooled or a "
                             "formula such as '~ ablat'")
    if len(set(items)) != len(items):
        raise InputError(f"--models lists a model twice: {text!r}")
    return items


def build_models(data, models: list[str], *, tau_prior: Any = None, beta_prior: Any = None,
                 theta_prior: Any = None, reload=None) -> dict[str, Any]:
    """Exact fits of the named models of one dataset.

    Parameters
    ----------
    data : MetaData
        The studies (its own covariates are ignored: formulas in ``models`` set them).
    models : list of str
        ``pooled`` (tau = 0), ``hierarchical`` (intercept-only partial pooling), ``unpooled``
        (needs ``theta_prior``) or a formula ``~ x1 + x2`` (meta-regression).
    tau_prior, beta_prior : prior or spec
        For the hierarchical models and meta-regressions (``beta_prior`` also for pooled).
    theta_prior : prior or spec
        Each study's prior under no pooling (default ``beta_prior``).
    reload : callable, optional
        ``reload(formula) -> MetaData`` with the design of a formula (default: rebuild from
        the data's covariates table).

    Returns
    -------
    dict of str to exact fit
    """
    from metapool import analytic

    base = _intercept_only(data) if reload is None else reload(None)
    out = {}
    for name in models:
        key = name.lower()
        if key in _POOLED:
            out[name] = analytic.fit_pooled(base, beta_prior)
        elif key in _HIER:
            out[name] = analytic.fit(base, tau_prior, beta_prior)
        elif key in _NOPOOL:
            out[name] = analytic.fit_unpooled(base, theta_prior if theta_prior is not None else beta_prior)
        else:
            try:
                d = reload(name) if reload is not None else _with_formula(data, name)
            except ValueError as err:   # InputError included: say which model string it was
                raise InputError(f"bad model {name!r} in --models: {err}") from None
            out[name] = analytic.fit(d, tau_prior, beta_prior)
    return out


def _intercept_only(data):
    from metapool.data import MetaData

    if data.intercept_only:
        return data
    return MetaData.from_arrays(data.y, data.se, labels=list(data.labels))


def _with_formula(data, formula: str):
    from metapool.data import MetaData

    table = getattr(data, "covariates", None)
    if table is None:
        raise InputError(f"model {formula!r} needs covariates, but the data carry no covariate table")
    frame = pd.DataFrame(table).copy() if not isinstance(table, pd.DataFrame) else table.copy()
    frame = frame.reset_index(drop=True)
    frame["_y"], frame["_se"], frame["_label"] = data.y, data.se, list(data.labels)
    return MetaData.from_dataframe(frame, effect="_y", se="_se", label="_label", covariates=formula)
