"""The two limits of partial pooling, in closed form: complete pooling (tau = 0) and no pooling.

Complete pooling is the fixed-effect model y_j ~ N(x_j' beta, s_j^2): beta | y is normal, so
summaries, draws, leave-one-study-out and the marginal likelihood are closed forms. No pooling
gives every study its own effect with an independent prior theta_j ~ N(m0, sd0^2); a left-out
study is then predicted by that prior alone, which must be proper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
from metapool.analytic._base import special  # scipy.special, imported when first used

from metapool import checks, layout
from metapool.data import MetaData
from metapool.errors import InputError
from metapool.likelihood import LOG_2PI, check_log_likelihood
from metapool.priors import BetaPrior, parse_beta_prior
from metapool.analytic.loo import ExactLOO, StudyPredictive, from_predictives

if TYPE_CHECKING:  # pandas and xarray are imported where they are used: they are slow to import
    import pandas as pd
    import xarray as xr

__all__ = ["PooledPosterior", "NoPoolingPosterior", "fit_pooled", "fit_unpooled", "normal_summary"]


def normal_summary(mean: np.ndarray, sd: np.ndarray, quantiles: Sequence[float] = layout.DEFAULT_QUANTILES,
                   prob: float = layout.DEFAULT_PROB) -> np.ndarray:
    """Summary columns (mean, sd, quantiles, shortest interval) of independent normals, one row each.

    A normal's shortest interval is its central one; sd 0 gives a point mass.
    """
    mean, sd = np.atleast_1d(np.asarray(mean, float)), np.atleast_1d(np.asarray(sd, float))
    zq = special.ndtri(np.asarray(quantiles, float))
    zi = special.ndtri(0.5 + prob / 2.0)
    cols = [mean, sd] + [mean + z * sd for z in zq] + [mean - zi * sd, mean + zi * sd]
    return np.column_stack(cols)


def _frame(names: Sequence[str], rows: np.ndarray, quantiles, prob) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows, index=pd.Index(list(names), name="parameter"),
                        columns=list(layout.summary_columns(quantiles, prob)))


def _log_normal(y, m, v):
    return -0.5 * (LOG_2PI + np.log(v) + (y - m) ** 2 / v)


def _groups(data: MetaData, tau, beta, theta, theta_new, y_rep, loglik, kind: str, attrs: dict) -> xr.DataTree:
    """A DataTree in the shared layout from (N,) / (N, p) / (N, J) arrays of one chain-major block."""
    chains, draws = theta.shape[:2]
    coords = {"chain": np.arange(chains), "draw": np.arange(draws),
              layout.STUDY: np.asarray(data.labels, dtype=object)}
    pv = {} if tau is None else {"tau": (layout.SAMPLE_DIMS, tau)}
    if beta is not None:
        if data.intercept_only:
            pv["mu"] = (layout.SAMPLE_DIMS, beta[..., 0])
        else:
            pv["beta"] = ((*layout.SAMPLE_DIMS, layout.COEF), beta)
            coords[layout.COEF] = np.asarray(data.coef_names, dtype=object)
    pv["theta"] = ((*layout.SAMPLE_DIMS, layout.STUDY), theta)
    if theta_new is not None:
        pv["theta_new"] = (layout.SAMPLE_DIMS, theta_new)
    sdims = (*layout.SAMPLE_DIMS, layout.STUDY)
    scoords = {k: v for k, v in coords.items() if k != layout.COEF}
    obs, const = layout.data_groups(data)
    import xarray as xr

    root = xr.DataTree()
    root.children = {
        "posterior": xr.DataTree(xr.Dataset(pv, coords=coords, attrs=attrs)),
        "posterior_predictive": xr.DataTree(xr.Dataset({"y": (sdims, y_rep)}, coords=scoords, attrs=attrs)),
        "log_likelihood": xr.DataTree(xr.Dataset({"y": (sdims, loglik)}, coords=scoords,
                                                 attrs={**attrs, "likelihood": kind})),
        "observed_data": xr.DataTree(obs),
        "constant_data": xr.DataTree(const),
    }
    return root


# --------------------------------------------------------------------------- complete pooling
@dataclass(frozen=True, eq=False)
class PooledPosterior:
    """Complete pooling (the fixed-effect model, tau = 0): beta | y ~ N(beta_hat, A^-1).

    Build with :func:`fit_pooled`. ``A = X' S^-1 X + P0``, ``beta_hat = A^-1 (X' S^-1 y + P0 m0)``.
    """

    data: MetaData
    beta_prior: BetaPrior
    x_new: np.ndarray
    beta_hat: np.ndarray      # (p,)
    beta_cov: np.ndarray      # (p, p)

    name = "complete pooling (tau = 0)"

    @property
    def tau_spec(self) -> str:
        return "point mass at 0"

    def summary(self, quantiles: Sequence[float] | None = None, prob: float = layout.DEFAULT_PROB) -> pd.DataFrame:
        """Exact summaries in the shared layout: tau (0), mu / beta, theta[j] = x_j'beta, theta_new, y_pred."""
        qs = checks.probability_tuple("quantiles", layout.DEFAULT_QUANTILES if quantiles is None else quantiles)
        d = self.data
        X = d.X
        fit_m = X @ self.beta_hat
        fit_v = np.einsum("jp,pq,jq->j", X, self.beta_cov, X)
        x0 = self.x_new
        mean = np.concatenate([[0.0], self.beta_hat, fit_m, [x0 @ self.beta_hat], fit_m])
        var = np.concatenate([[0.0], np.diag(self.beta_cov), fit_v, [x0 @ self.beta_cov @ x0], fit_v + d.variance])
        return _frame(layout.flat_names(d), normal_summary(mean, np.sqrt(var), qs, prob), qs, prob)

    def normal_of(self, parameter: str) -> tuple[float, float]:
        """Mean and sd of the normal posterior of one flat parameter (not tau, a point mass at 0)."""
        if parameter == "tau":
            raise InputError("tau is fixed at 0 under complete pooling")
        s = self.summary(quantiles=())
        if parameter not in s.index:
            raise KeyError(f"unknown parameter {parameter!r}")
        return float(s.at[parameter, "mean"]), float(s.at[parameter, "sd"])

    def sample(self, draws: int = 1000, chains: int = 4, seed=None, log_likelihood: str = "marginal") -> xr.DataTree:
        """Independent draws in the shared layout (tau = 0, theta_j = x_j'beta, theta_new = x0'beta).

        With tau = 0 the marginal and conditional likelihoods coincide: log N(y_j | x_j'beta, s_j^2).
        """
        kind = check_log_likelihood(log_likelihood)
        rng = np.random.default_rng(seed)
        d = self.data
        L = np.linalg.cholesky(self.beta_cov)
        beta = self.beta_hat + rng.standard_normal((chains, draws, d.p)) @ L.T
        theta = beta @ d.X.T
        y_rep = theta + d.se * rng.standard_normal(theta.shape)
        ll = _log_normal(d.y, theta, d.variance)
        attrs = {"inference_library": "metapool.analytic", "model": self.name, "tau_prior": self.tau_spec,
                 "beta_prior": self.beta_prior.spec, "independent_draws": 1}
        return _groups(d, np.zeros((chains, draws)), beta, theta, beta @ self.x_new, y_rep, ll, kind, attrs)

    def loo(self) -> ExactLOO:
        """Exact leave-one-study-out: y_j | y_-j ~ N(x_j' beta_hat_-j, s_j^2 + x_j' A_-j^-1 x_j).

        Raises
        ------
        InputError
            With flat coefficient priors, when the other studies do not identify beta.
        """
        d = self.data
        P0, m0 = np.diag(self.beta_prior.precision(d.p)), self.beta_prior.mean(d.p)
        preds = []
        for j in range(d.J):
            keep = np.arange(d.J) != j
            X, w = d.X[keep], 1.0 / d.variance[keep]
            A = (X * w[:, None]).T @ X + P0
            if np.linalg.matrix_rank(A) < d.p:
                raise InputError(f"leaving out study {d.labels[j]!r}: the other studies do not identify "
                                 f"the {d.p} coefficient(s) under flat priors, so it has no predictive "
                                 "distribution; use a proper beta prior (normal:MEAN,SD)")
            bh = np.linalg.solve(A, (X * w[:, None]).T @ d.y[keep] + P0 @ m0)
            x = d.X[j]
            v = d.variance[j] + x @ np.linalg.solve(A, x)
            preds.append(StudyPredictive(np.ones(1), np.array([x @ bh]), np.array([math.sqrt(v)])))
        return from_predictives(d, preds, f"{self.name}, beta {self.beta_prior.spec}")

    def log_evidence(self) -> float:
        """log p(y) = log N(y | X m0, S + X P0^-1 X') (proper normal coefficient prior only)."""
        d = self.data
        if not self.beta_prior.proper:
            raise InputError(f"the marginal likelihood of complete pooling needs a proper coefficient prior; "
                             f"the {self.beta_prior.spec} prior on {layout.location_name(d)} makes it (and "
                             "any Bayes factor) undefined: use normal:MEAN,SD")
        P0 = self.beta_prior.precision(d.p)
        cov = np.diag(d.variance) + (d.X / P0) @ d.X.T
        from scipy import stats

        return float(stats.multivariate_normal.logpdf(d.y, d.X @ self.beta_prior.mean(d.p), cov))


def fit_pooled(data: MetaData, beta_prior: BetaPrior | str | None = None, *, x_new=None) -> PooledPosterior:
    """Complete pooling (fixed-effect model, tau = 0) in closed form.

    Parameters
    ----------
    data : MetaData
    beta_prior : BetaPrior or str, optional
        Default flat.
    x_new : dict or array_like, optional
        Covariates of a new study (default the mean row of X).

    Returns
    -------
    PooledPosterior

    Notes
    -----
    beta | y ~ N(A^-1 b, A^-1), A = X' S^-1 X + P0, b = X' S^-1 y + P0 m0, S = diag(s_j^2).
    """
    prior = parse_beta_prior(beta_prior if beta_prior is not None else "flat")
    p = data.p
    P0, m0 = prior.precision(p), prior.mean(p)
    w = 1.0 / data.variance
    A = (data.X * w[:, None]).T @ data.X + np.diag(P0)
    if np.linalg.matrix_rank(A) < p:
        raise InputError(f"the design does not identify the {p} coefficient(s) under a flat prior; "
                         "use a proper beta prior or fewer covariates")
    cov = np.linalg.inv(A)
    bh = cov @ ((data.X * w[:, None]).T @ data.y + P0 * m0)
    return PooledPosterior(data, prior, np.asarray(data.design_row(x_new), float), bh, cov)


# --------------------------------------------------------------------------- no pooling
@dataclass(frozen=True, eq=False)
class NoPoolingPosterior:
    """No pooling: independent theta_j ~ N(m0, sd0^2); theta_j | y ~ N((y_j/s_j^2 + m0/sd0^2) / a_j, 1/a_j).

    Build with :func:`fit_unpooled`. With a flat prior (sd0 infinite) theta_j | y ~ N(y_j, s_j^2).
    """

    data: MetaData
    theta_prior: BetaPrior
    name = "no pooling"

    def _prior(self) -> tuple[float, float]:
        return float(self.theta_prior.mean(1)[0]), float(self.theta_prior.precision(1)[0])

    def _post(self) -> tuple[np.ndarray, np.ndarray]:
        m0, p0 = self._prior()
        a = 1.0 / self.data.variance + p0
        return (self.data.y / self.data.variance + p0 * m0) / a, 1.0 / a

    def summary(self, quantiles: Sequence[float] | None = None, prob: float = layout.DEFAULT_PROB) -> pd.DataFrame:
        """Exact summaries of theta[j] and y_pred[j]."""
        qs = checks.probability_tuple("quantiles", layout.DEFAULT_QUANTILES if quantiles is None else quantiles)
        d = self.data
        m, v = self._post()
        names = layout.theta_parameters(d) + layout.theta_parameters(d, "y_pred")
        rows = normal_summary(np.concatenate([m, m]), np.sqrt(np.concatenate([v, v + d.variance])), qs, prob)
        return _frame(names, rows, qs, prob)

    def _require_proper(self, what: str) -> None:
        if not self.theta_prior.proper:
            raise InputError(f"no pooling with the flat prior on every study's effect: {what}; give each "
                             "effect a proper prior, e.g. theta_prior='normal:0,10' (--mu-prior normal:0,10 for "
                             "metapool compare)")

    def sample(self, draws: int = 1000, chains: int = 4, seed=None, log_likelihood: str = "marginal") -> xr.DataTree:
        """Independent draws of theta (and y_rep). The marginal log-likelihood is log N(y_j | m0, s_j^2 + sd0^2)
        (the same every draw: nothing is learnt across studies); the conditional log N(y_j | theta_j, s_j^2)."""
        kind = check_log_likelihood(log_likelihood)
        if kind == "marginal":
            self._require_proper("the study-level likelihood p(y_j) is improper, so a left-out study has no "
                                 "predictive distribution")
        rng = np.random.default_rng(seed)
        d = self.data
        m, v = self._post()
        theta = m + np.sqrt(v) * rng.standard_normal((chains, draws, d.J))
        y_rep = theta + d.se * rng.standard_normal(theta.shape)
        if kind == "marginal":
            m0, p0 = self._prior()
            ll = np.broadcast_to(_log_normal(d.y, m0, d.variance + 1.0 / p0), theta.shape).copy()
        else:
            ll = _log_normal(d.y, theta, d.variance)
        attrs = {"inference_library": "metapool.analytic", "model": self.name,
                 "theta_prior": self.theta_prior.spec, "independent_draws": 1}
        return _groups(d, None, None, theta, None, y_rep, ll, kind, attrs)

    def loo(self) -> ExactLOO:
        """p(y_j | y_-j) = p(y_j) = N(y_j | m0, s_j^2 + sd0^2): the other studies tell nothing about it."""
        self._require_proper("a left-out study has no predictive distribution")
        d = self.data
        m0, p0 = self._prior()
        preds = [StudyPredictive(np.ones(1), np.array([m0]), np.array([math.sqrt(v + 1.0 / p0)]))
                 for v in d.variance]
        return from_predictives(d, preds, f"{self.name}, theta {self.theta_prior.spec}")

    def log_evidence(self) -> float:
        """log p(y) = sum_j log N(y_j | m0, s_j^2 + sd0^2) (proper prior only)."""
        self._require_proper("the marginal likelihood (and any Bayes factor) is undefined")
        m0, p0 = self._prior()
        return float(np.sum(_log_normal(self.data.y, m0, self.data.variance + 1.0 / p0)))


def fit_unpooled(data: MetaData, theta_prior: BetaPrior | str | None = None) -> NoPoolingPosterior:
    """No pooling: every study's effect with its own independent prior N(m0, sd0^2).

    Parameters
    ----------
    data : MetaData
        Covariates are ignored (each study has its own effect).
    theta_prior : BetaPrior or str
        A scalar ``normal:MEAN,SD`` (needed for leave-one-out and the marginal likelihood);
        flat is allowed for the summaries only.

    Returns
    -------
    NoPoolingPosterior
    """
    prior = parse_beta_prior(theta_prior if theta_prior is not None else "flat")
    if prior.proper and (np.size(prior.mean(1)) != 1):
        raise InputError("theta_prior must be a scalar normal prior (normal:MEAN,SD)")
    return NoPoolingPosterior(data, prior)
