"""Marginal likelihoods, Bayes factors, posterior model probabilities and model averaging (exact engine).

Everything is a closed form given tau integrated by the exact engine's quadrature
(docs/MATH.md): p(y | tau) = N(y | X m0, V(tau) + X P0^-1 X') with V(tau) = diag(s_j^2 + tau^2),
and p(y) = int p(y | tau) p(tau) dtau. Both priors must be proper: with a flat prior the
marginal likelihood is defined only up to an arbitrary constant, and so is any Bayes factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from metapool.analytic._base import special  # scipy.special, imported when first used

from metapool import layout
from metapool.errors import InputError
from metapool.analytic import _base as B

if TYPE_CHECKING:  # pandas and xarray are imported where they are used: they are slow to import
    import pandas as pd
    import xarray as xr

__all__ = ["log_evidence", "log_likelihood_tau", "BayesFactors", "bayes_factors", "model_probabilities",
           "ModelAverage", "model_average"]


def _require_proper(post, what: str) -> None:
    bad = [f"the {p.spec} prior on {name}" for name, p in
           (("tau", post.tau_prior), (layout.location_name(post.data), post.beta_prior)) if not p.proper]
    if bad:
        raise InputError(f"{what} is undefined with {' and '.join(bad)} (an improper prior leaves the "
                         "marginal likelihood an arbitrary constant): use proper priors, e.g. "
                         "--tau-prior halfnormal:0.5 --mu-prior normal:0,4")


def _constant(post) -> float:
    """+1/2 log|P0| - J/2 log 2 pi: turns the engine's log p(tau | y) terms into log p(y | tau)."""
    d = post.data
    return 0.5 * float(np.sum(np.log(post.beta_prior.precision(d.p)))) - 0.5 * d.J * B.LOG_2PI


def log_likelihood_tau(post, tau: Any) -> np.ndarray:
    """log p(y | tau) with beta integrated over its proper normal prior, at the given tau values.

    Notes
    -----
    log p(y | tau) = 1/2 log|P0| - J/2 log 2 pi - 1/2 log|A| - 1/2 sum_j log v_j
    - 1/2 (y'Wy + m0'P0 m0 - b'A^-1 b) = log N(y | X m0, V(tau) + X P0^-1 X').
    """
    _require_proper(post, "log p(y | tau)")
    from metapool.analytic.posterior import _conditional

    tau = np.atleast_1d(np.asarray(tau, dtype=float))
    return _conditional(tau, post.problem).log_post + _constant(post)


def log_evidence(model) -> float:
    """log p(y | model): the marginal likelihood of an exact fit (proper priors only).

    Parameters
    ----------
    model : ExactPosterior, PooledPosterior or NoPoolingPosterior

    Returns
    -------
    float

    Raises
    ------
    InputError
        Naming the improper prior that leaves it undefined.

    Notes
    -----
    For partial pooling and meta-regression, log p(y) = log int p(y | tau) p(tau) dtau, which is
    the quadrature's normaliser (``log_norm``) plus 1/2 log|P0| - J/2 log 2 pi. Complete pooling
    and no pooling are single normals (their own ``log_evidence``).

    References
    ----------
    Röver, C. (2020). Bayesian random-effects meta-analysis using the bayesmeta R package.
    Journal of Statistical Software 93(6), sec. 2.4.
    """
    if hasattr(model, "log_evidence"):
        return float(model.log_evidence())
    _require_proper(model, "the marginal likelihood")
    return float(model.log_norm + _constant(model))


# --------------------------------------------------------------------------- Bayes factors
@dataclass(frozen=True)
class BayesFactors:
    """Bayes factors of the point nulls tau = 0 and coefficient = 0 (null over alternative, BF01).

    Attributes
    ----------
    tau0 : float
        BF01 for tau = 0 against tau > 0: p(y | tau = 0) / p(y).
    tau0_savage_dickey : float
        p(tau = 0 | y) / p(tau = 0) where the prior density at 0 is finite and positive, else NaN.
    coef0 : dict of str to float
        BF01 for each coefficient = 0 (Savage–Dickey): p(b_c = 0 | y) / p(b_c = 0).
    """

    tau0: float
    tau0_savage_dickey: float
    coef0: dict

    def to_frame(self) -> pd.DataFrame:
        """One row per hypothesis: ``BF01``, ``BF10``, ``log10_BF10``, ``method``."""
        import pandas as pd

        rows = [("tau = 0", self.tau0, "ratio of marginal likelihoods")]
        rows += [(f"{name} = 0", bf, "Savage-Dickey") for name, bf in self.coef0.items()]
        t = pd.DataFrame(rows, columns=["hypothesis", "BF01", "method"]).set_index("hypothesis")
        t.insert(1, "BF10", 1.0 / t["BF01"])
        t.insert(2, "log10_BF10", -np.log10(t["BF01"]))
        return t


def _coef_density_at(post, c: int, x: float) -> float:
    keep = post.weights > 0
    m = post.cond.beta_hat[keep, c]
    s = np.sqrt(post.cond.beta_cov[keep, c, c])
    return float(B.mixture_pdf(np.array([x]), post.weights[keep], m[:, None], s[:, None])[0])


def bayes_factors(post) -> BayesFactors:
    """Bayes factors for tau = 0 vs tau > 0 and for each coefficient = 0 vs != 0, as bayesmeta reports them.

    Parameters
    ----------
    post : ExactPosterior
        A fit with proper tau and coefficient priors.

    Returns
    -------
    BayesFactors

    Raises
    ------
    InputError
        Naming the improper prior that makes the Bayes factor undefined.

    Notes
    -----
    tau: BF01 = p(y | tau = 0) / int p(y | tau) p(tau) dtau; when 0 < p(tau = 0) < inf this
    equals the Savage–Dickey ratio p(tau = 0 | y) / p(tau = 0) [1]_. Coefficient c (``mu`` for
    the intercept-only model): BF01 = p(b_c = 0 | y) / p(b_c = 0) (Savage–Dickey; valid because
    the independent normal prior of the other coefficients does not depend on b_c), the posterior
    density being the exact normal mixture over tau.

    References
    ----------
    .. [1] Dickey, J. M. (1971). The weighted likelihood ratio, linear hypotheses on normal
       location parameters. Annals of Mathematical Statistics 42(1), 204-223.
    Röver, C. (2020). J. Stat. Softw. 93(6) (bayesmeta's ``bayesfactor``).
    """
    _require_proper(post, "the Bayes factor")
    le = log_evidence(post)
    bf_tau = math.exp(float(log_likelihood_tau(post, 0.0)[0]) - le)
    with np.errstate(divide="ignore"):
        prior0 = float(np.exp(post.tau_prior.logpdf(np.array([0.0]))[0]))
    if np.isfinite(prior0) and prior0 > 0:
        sd = float(post.tau_pdf(np.array([0.0]))[0]) / prior0
    else:
        sd = math.nan
    d = post.data
    m0, p0 = post.beta_prior.mean(d.p), post.beta_prior.precision(d.p)
    coef = {}
    for c, name in enumerate(layout.coef_parameters(d)):
        prior_c = math.sqrt(p0[c] / (2 * math.pi)) * math.exp(-0.5 * p0[c] * m0[c] ** 2)
        coef[name] = _coef_density_at(post, c, 0.0) / prior_c
    return BayesFactors(bf_tau, sd, coef)


def model_probabilities(models: Mapping[str, Any], prior: Mapping[str, float] | Sequence[float] | None = None
                        ) -> pd.DataFrame:
    """Posterior model probabilities p(M | y) ∝ p(y | M) p(M) for a set of exact fits.

    Parameters
    ----------
    models : dict of str to exact fit
        Fits of the same data with proper priors.
    prior : dict or sequence of float, optional
        Prior model probabilities (normalised here); default equal.

    Returns
    -------
    pandas.DataFrame
        Index ``model``; columns ``log_evidence``, ``prior``, ``posterior`` and ``bayes_factor``
        (p(y | M) / p(y | M_best) against the model with the largest marginal likelihood).
    """
    import pandas as pd

    names = list(models)
    if not names:
        raise InputError("model_probabilities needs at least one model")
    if prior is None:
        pri = np.full(len(names), 1.0 / len(names))
    else:
        pri = np.asarray([prior[n] for n in names] if isinstance(prior, Mapping) else list(prior), float)
        if pri.shape != (len(names),) or np.any(pri < 0) or not np.isfinite(pri).all() or pri.sum() <= 0:
            raise InputError(f"prior model probabilities must be {len(names)} non-negative numbers, got {prior!r}")
        pri = pri / pri.sum()
    le = np.array([log_evidence(models[n]) for n in names])
    with np.errstate(divide="ignore"):
        lp = le + np.log(pri)
    post = np.exp(lp - special.logsumexp(lp))
    return pd.DataFrame({"log_evidence": le, "prior": pri, "posterior": post,
                         "bayes_factor": np.exp(le - le.max())}, index=pd.Index(names, name="model"))


# --------------------------------------------------------------------------- model averaging
def _mixture_of(model, parameter: str):
    """(w, m, s) arrays: the model's posterior of ``parameter`` as a normal mixture."""
    if hasattr(model, "normal_of"):
        m, s = model.normal_of(parameter)
        return np.ones(1), np.array([m]), np.array([s])
    if parameter == "tau":
        raise InputError("model averaging covers normal-mixture parameters (mu, beta[..], theta[..], theta_new), not tau")
    w, m, s = model._row_mixture(parameter)
    return w, m[:, 0], s[:, 0]


@dataclass(frozen=True)
class ModelAverage:
    """The model-averaged posterior of one parameter: a mixture over models of normal mixtures.

    Attributes
    ----------
    parameter : str
    probabilities : pandas.Series
        p(M | y) per model.
    w, m, s : ndarray
        The pooled normal mixture (weights sum to 1).
    """

    parameter: str
    probabilities: pd.Series
    w: np.ndarray
    m: np.ndarray
    s: np.ndarray

    def cdf(self, x: Any) -> np.ndarray:
        """Exact CDF of the averaged posterior."""
        x = np.atleast_1d(np.asarray(x, float))
        return B.mixture_cdf(x, self.w, np.broadcast_to(self.m[:, None], (self.m.size, x.size)),
                             np.broadcast_to(self.s[:, None], (self.s.size, x.size)))

    def quantile(self, q: float) -> float:
        """Exact quantile (root of the CDF)."""
        lo = float(np.min(self.m - 40 * self.s))
        hi = float(np.max(self.m + 40 * self.s))
        from scipy import optimize

        return float(optimize.brentq(lambda x: self.cdf(x)[0] - q, lo, hi, xtol=1e-12, rtol=1e-12))

    def summary(self, quantiles: Sequence[float] = layout.DEFAULT_QUANTILES) -> pd.Series:
        """mean, sd and quantiles of the averaged posterior (exact)."""
        import pandas as pd

        mean = float(self.w @ self.m)
        sd = float(math.sqrt(self.w @ (self.s**2 + (self.m - mean) ** 2)))
        vals = {"mean": mean, "sd": sd}
        vals.update({layout.quantile_column(q): self.quantile(q) for q in quantiles})
        return pd.Series(vals, name=self.parameter)

    def sample(self, draws: int = 1000, chains: int = 4, seed=None) -> xr.DataArray:
        """Draws (chain, draw) of the averaged posterior: a component by its weight, then its normal."""
        rng = np.random.default_rng(seed)
        k = rng.choice(self.w.size, size=(chains, draws), p=self.w / self.w.sum())
        vals = self.m[k] + self.s[k] * rng.standard_normal((chains, draws))
        import xarray as xr

        return xr.DataArray(vals, dims=layout.SAMPLE_DIMS, name=self.parameter)


def model_average(models: Mapping[str, Any], parameter: str = "mu",
                  prior: Mapping[str, float] | Sequence[float] | None = None) -> ModelAverage:
    """Model-averaged posterior of ``mu`` / ``theta_new`` (or any shared parameter) over exact fits.

    Parameters
    ----------
    models : dict of str to exact fit
        Fits with proper priors that all report ``parameter``.
    parameter : str
        A flat parameter name, e.g. ``mu``, ``theta_new``, ``beta[Intercept]``.
    prior : optional
        Prior model probabilities (default equal).

    Returns
    -------
    ModelAverage

    Notes
    -----
    p(g | y) = sum_M p(M | y) p(g | y, M); each p(g | y, M) is the model's exact normal mixture
    over tau, so the average is one longer normal mixture.
    """
    probs = model_probabilities(models, prior)["posterior"]
    ws, ms, ss = [], [], []
    for name, model in models.items():
        w, m, s = _mixture_of(model, parameter)
        ws.append(probs[name] * w / w.sum())
        ms.append(m)
        ss.append(s)
    return ModelAverage(parameter, probs, np.concatenate(ws), np.concatenate(ms), np.concatenate(ss))
