"""Exact predictions over covariates: x'beta and a new study's theta_new at many covariate rows.

Given tau, x'beta | tau, y ~ N(x'beta_hat(tau), x'A(tau)^-1 x) and a new study with covariates x
has theta_new | tau, y ~ N(x'beta_hat(tau), x'A(tau)^-1 x + tau^2) (docs/MATH.md), so both are
mixtures of normals over the quadrature nodes of p(tau | y), exactly as the summary's
``theta_new`` row; here they are computed for every row of a table at once.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from metapool import checks, layout
from metapool.errors import InputError
from metapool.analytic import _base as B

if TYPE_CHECKING:
    import pandas as pd

    from metapool.analytic.posterior import ExactPosterior

__all__ = ["predict"]


def _rows_and_index(post: "ExactPosterior", newdata: Any) -> tuple[np.ndarray, list[Any]]:
    import pandas as pd

    X = post.data.design_rows(newdata)
    index = list(newdata.index) if isinstance(newdata, pd.DataFrame) else list(range(X.shape[0]))
    return X, index


def predict(post: "ExactPosterior", newdata: Any, quantiles: Sequence[float] | None = None,
            prob: float = layout.DEFAULT_PROB) -> pd.DataFrame:
    """Exact posterior of x'beta and of a new study's theta_new at many covariate rows.

    Parameters
    ----------
    post : ExactPosterior
    newdata : pandas.DataFrame or array_like
        One row per new study: raw covariate values (the fit's formula encodes them as it did
        the studies; categorical levels are checked), or a ``(G, p)`` array of design rows
        (:meth:`metapool.MetaData.design_rows`).
    quantiles : sequence of float, optional
        Quantile columns (default 2.5, 25, 50, 75, 97.5 %).
    prob : float, default 0.95
        Probability of the shortest intervals (``hdi95_low``, ``hdi95_high``).

    Returns
    -------
    pandas.DataFrame
        Index ``(row, parameter)``: ``row`` the label of the new study (``newdata``'s index, or
        0..G-1 for an array), ``parameter`` ``x'beta`` (the mean effect at x: its credible
        interval) and ``theta_new`` (a new study's effect at x: its prediction interval).
        Columns :func:`metapool.layout.summary_columns` (``mean, sd, q2.5, ..., hdi95_low,
        hdi95_high``). Means and sds that do not exist (heavy tails of an improper posterior)
        are NaN, as in :meth:`ExactPosterior.summary`.

    Notes
    -----
    With quadrature nodes tau_k and weights w_k of p(tau | y),

    .. math::
        p(x'\\beta \\mid y) = \\sum_k w_k N(x'\\hat\\beta_k, x'A_k^{-1}x), \\qquad
        p(\\theta_{new} \\mid y) = \\sum_k w_k N(x'\\hat\\beta_k, x'A_k^{-1}x + \\tau_k^2);

    means and variances are the mixture's, quantiles solve the mixture CDF and the shortest
    interval solves F(b) - F(a) = prob, f(a) = f(b) (the routines of the summary). The
    ``theta_new`` row at ``x = spec.x_new`` is the summary's ``theta_new``.

    References
    ----------
    .. [1] Higgins, J. P. T., Thompson, S. G. and Spiegelhalter, D. J. (2009). A re-evaluation
       of random-effects meta-analysis. JRSS A 172(1), 137-159 (prediction intervals).
    """
    import pandas as pd

    qs = checks.probability_tuple("quantiles", layout.DEFAULT_QUANTILES if quantiles is None else quantiles)
    if not (isinstance(prob, numbers.Real) and 0.0 < prob < 1.0):
        raise InputError(f"prob must be a probability in (0, 1), got {prob!r}")
    X, index = _rows_and_index(post, newdata)
    keep = np.asarray(post.weights) > 0
    w = np.asarray(post.weights, dtype=float)[keep]
    w = w / w.sum()
    tau = np.asarray(post.tau_nodes, dtype=float)[keep]
    beta_hat = np.asarray(post.cond.beta_hat)[keep]
    beta_cov = np.asarray(post.cond.beta_cov)[keep]
    cols = list(layout.summary_columns(qs, prob))
    G = X.shape[0]
    out = np.empty((2 * G, len(cols)))
    for sl in B.chunks(G, w.size * 4):
        Xs = X[sl]
        m = beta_hat @ Xs.T                                              # (K, g)
        v = np.maximum(np.einsum("gp,kpq,gq->kg", Xs, beta_cov, Xs), 0.0)
        rows = np.arange(sl.start, sl.stop)
        _fill(out, 2 * rows, w, m, np.sqrt(v), qs, prob, post.spec.moments_exist("beta"))
        _fill(out, 2 * rows + 1, w, m, np.sqrt(v + tau[:, None] ** 2), qs, prob,
              post.spec.moments_exist("theta_new"))
    return pd.DataFrame(out, index=layout.prediction_index(index), columns=cols)


def _fill(out: np.ndarray, rows: np.ndarray, w: np.ndarray, m: np.ndarray, s: np.ndarray,
          qs: Sequence[float], prob: float, exists: tuple[bool, bool]) -> None:
    """Mean, sd, quantiles and shortest interval of the mixtures sum_k w_k N(m[k, g], s[k, g]^2)
    (quantiles with the sds kept above the smallest double: a point mass solves as a narrow normal)."""
    res = B.summarise_mixtures(w, m, s, tuple(qs), prob, rule=(w, m, np.maximum(s, np.finfo(float).tiny)))
    B.write_summary(out, rows, res, exists)
