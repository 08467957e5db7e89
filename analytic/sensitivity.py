"""Bayesian heterogeneity summaries (I^2, H^2, R^2 as transforms of tau) and prior sensitivity tables.

The posteriors of I^2(tau), H^2(tau) and R^2(tau) are monotone transforms of tau's exact
posterior: their quantiles are the transforms of tau's quantiles and their means are the
quadrature's weighted sums, so every summary here is exact. Prior sensitivity refits the exact
model per prior.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from metapool import checks, layout
from metapool.errors import InputError
from metapool.priors import parse_tau_prior

if TYPE_CHECKING:  # pandas is imported where it is used: it is slow to import
    import pandas as pd

__all__ = ["transform_summary", "heterogeneity_posterior", "r2_posterior", "sensitivity",
           "scale_sensitivity", "SENSITIVITY_QUANTILES"]

#: Quantiles of each parameter in a sensitivity table.
SENSITIVITY_QUANTILES: tuple[float, ...] = (0.025, 0.5, 0.975)


def transform_summary(post, g: Callable[[np.ndarray], np.ndarray], increasing: bool = True,
                      quantiles: Sequence[float] = layout.DEFAULT_QUANTILES) -> dict[str, float]:
    """Exact mean, sd and quantiles of g(tau) for a monotone g.

    Notes
    -----
    E g = sum_k w_k g(tau_k) over the converged quadrature rule; the q-quantile of g(tau) is
    g(tau_q) for increasing g and g(tau_{1-q}) for decreasing g.
    """
    qs = checks.probability_tuple("quantiles", quantiles)
    vals = g(post.tau_nodes)
    mean = float(post.weights @ vals)
    sd = float(math.sqrt(max(post.weights @ (vals - mean) ** 2, 0.0)))
    out = {"mean": mean, "sd": sd}
    for q in qs:
        t = post.tau_quantile(q if increasing else 1.0 - q)
        out[layout.quantile_column(q)] = float(g(np.asarray(t, float)))
    return out


def heterogeneity_posterior(post, quantiles: Sequence[float] = layout.DEFAULT_QUANTILES) -> pd.DataFrame:
    """Posterior summaries of tau, tau^2, I^2 and H^2 (exact).

    Parameters
    ----------
    post : ExactPosterior
    quantiles : sequence of float

    Returns
    -------
    pandas.DataFrame
        Index ``tau, tau2, I2, H2``; columns ``mean, sd`` and the quantiles. I^2 is a fraction.
        Moments that do not exist (heavy tails of an improper prior) are NaN.

    Notes
    -----
    I^2(tau) = tau^2 / (tau^2 + s2_typ), H^2 = 1 / (1 - I^2) (Higgins & Thompson 2002), with
    the typical within-study variance of :func:`metapool.heterogeneity.s2_typical`. I^2 is
    bounded, so its mean and sd always exist.
    """
    import pandas as pd

    from metapool import heterogeneity as het  # statsmodels: imported when used

    d = post.data
    rows = {
        "tau": transform_summary(post, lambda t: t, True, quantiles),
        "tau2": transform_summary(post, np.square, True, quantiles),
        "I2": transform_summary(post, lambda t: np.asarray(het.i_squared(t, d)), True, quantiles),
        "H2": transform_summary(post, lambda t: np.asarray(het.h_squared(t, d)), True, quantiles),
    }
    table = pd.DataFrame(rows).T
    mean_ok, sd_ok = post.spec.moments_exist("tau")
    k = post.tail_exponent
    # tau^2 and H^2 grow like tau^2: their mean needs k > 3, their sd k > 5
    for name, (m_ok, s_ok) in {"tau": (mean_ok, sd_ok), "tau2": (k > 3, k > 5), "H2": (k > 3, k > 5)}.items():
        if not m_ok:
            table.loc[name, "mean"] = np.nan
        if not s_ok:
            table.loc[name, "sd"] = np.nan
    table.index.name = "parameter"
    return table


def r2_posterior(post, reference: Any, quantiles: Sequence[float] = layout.DEFAULT_QUANTILES) -> dict[str, float]:
    """Posterior summaries of R^2(tau) = max(0, 1 - tau^2 / tau0^2) for a meta-regression.

    Parameters
    ----------
    post : ExactPosterior
        The meta-regression.
    reference : ExactPosterior or float
        The intercept-only fit of the same studies (tau0^2 = its posterior median of tau^2) or
        tau0^2 itself.
    quantiles : sequence of float

    Returns
    -------
    dict
        ``mean, sd`` and quantile columns, plus ``tau0_2`` (the reference used).

    Notes
    -----
    R^2 (the proportional reduction of tau^2, Raudenbush 2009) is a decreasing transform of the
    meta-regression's tau, so its q-quantile is R^2 at tau's (1 - q)-quantile and its mean is the
    quadrature sum. The frequentist R^2 (:func:`metapool.heterogeneity.heterogeneity`) plugs both
    estimates in; here tau0^2 is held at the intercept-only posterior median.
    """
    tau0_2 = float(reference) if np.isscalar(reference) else float(reference.tau_quantile(0.5)) ** 2
    if not tau0_2 > 0:
        raise InputError(f"R^2 needs a positive reference tau0^2, got {tau0_2!r}")
    g = lambda t: np.maximum(0.0, 1.0 - np.square(t) / tau0_2)  # noqa: E731
    out = transform_summary(post, g, increasing=False, quantiles=quantiles)
    out["tau0_2"] = tau0_2
    return out


# --------------------------------------------------------------------------- prior sensitivity
def _row(post, quantiles) -> dict[str, float]:
    row: dict[str, float] = {}
    names = ["tau", *layout.coef_parameters(post.data), "theta_new"]
    summ = post.summary(quantiles=quantiles)
    for name in names:
        for col in ("mean", "sd", *(layout.quantile_column(q) for q in quantiles)):
            row[f"{name}:{col}"] = float(summ.at[name, col])
    return row


def sensitivity(data, tau_priors: Sequence[Any], beta_prior: Any = None, *, x_new: Any = None,
                quantiles: Sequence[float] = SENSITIVITY_QUANTILES, rtol: float = 1e-8) -> pd.DataFrame:
    """Summaries of tau, mu / beta and theta_new across tau priors (exact refits).

    Parameters
    ----------
    data : MetaData
    tau_priors : sequence of prior or spec string
        E.g. ``["halfnormal:0.5", "halfcauchy:0.5", "flat"]``.
    beta_prior : prior or spec, optional
    x_new : optional
        Covariates of the new study.
    quantiles : sequence of float
    rtol : float

    Returns
    -------
    pandas.DataFrame
        Index ``tau_prior`` (spec strings); columns ``PARAM:STAT`` for PARAM in tau, the
        coefficients and theta_new, STAT in mean, sd and the quantile columns.
    """
    import pandas as pd

    import warnings

    from metapool.analytic.posterior import MomentWarning, fit

    if len(tau_priors) == 0:
        raise InputError("sensitivity needs at least one tau prior")
    rows, index = [], []
    for spec in tau_priors:
        prior = parse_tau_prior(spec)
        post = fit(data, prior, beta_prior, x_new=x_new, rtol=rtol)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MomentWarning)  # NaN cells say it
            rows.append(_row(post, quantiles))
        index.append(post.tau_prior.spec)
    return pd.DataFrame(rows, index=pd.Index(index, name="tau_prior"))


def scale_sensitivity(data, family: str, scales: Sequence[float], beta_prior: Any = None, **kwargs: Any
                      ) -> pd.DataFrame:
    """:func:`sensitivity` across scales of one family: ``family:scale`` for every scale.

    Parameters
    ----------
    data : MetaData
    family : str
        A one-parameter tau prior family: ``halfnormal``, ``halfcauchy``, ``exponential`` or
        ``uniform`` (then the scale is the upper bound).
    scales : sequence of float
    beta_prior : optional
    **kwargs
        Passed to :func:`sensitivity`.
    """
    if family not in ("halfnormal", "halfcauchy", "exponential", "uniform"):
        raise InputError(f"scale_sensitivity needs a one-scale family (halfnormal, halfcauchy, exponential, "
                         f"uniform), got {family!r}")
    specs = [f"uniform:0,{s:g}" if family == "uniform" else f"{family}:{s:g}" for s in scales]
    return sensitivity(data, specs, beta_prior, **kwargs)
