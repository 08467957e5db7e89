"""Student-t random effects (PyMC engine only): theta_j ~ t_nu(x_j' beta, tau) for data with outlying studies.

The same model as :mod:`metapool.models.pymc_model` with the normal random-effects distribution
replaced by a Student-t with ``nu`` degrees of freedom, fixed or with a Gamma(2, 0.1) prior
(Juárez & Steel 2010). Non-centred: z_j ~ t_nu(0, 1), theta_j = x_j' beta + tau z_j. The
study-level log-likelihood log p(y_j | beta, tau, nu) = log int N(y_j | theta, s_j^2)
t_nu(theta | x_j' beta, tau) dtheta is computed per draw by Gauss quadrature over the t's
normal scale mixture, so PSIS-LOO and :func:`metapool.compare_models` compare it with the
normal model on the same footing.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import special, stats

from metapool import layout
from metapool.errors import InputError
from metapool.likelihood import LOG_2PI, check_log_likelihood
from metapool.spec import ModelSpec, model_spec
from metapool.models.priors import pymc_beta, pymc_tau

__all__ = ["build_student_t", "sample_student_t", "student_t_log_likelihood", "NU_PRIOR"]

#: Gamma(shape, rate) prior of nu when it is not fixed (Juárez & Steel 2010).
NU_PRIOR: tuple[float, float] = (2.0, 0.1)
# Trapezoid nodes in log lambda over the t's mixing variable.
_NODES = 241


def _check_nu(nu: float | None) -> None:
    if nu is not None and not (np.isfinite(nu) and nu > 0):
        raise InputError(f"nu (Student-t degrees of freedom) must be a positive number or None (a prior), got {nu!r}")


def build_student_t(spec: ModelSpec, nu: float | None = 4.0) -> pm.Model:
    """The PyMC model with Student-t random effects.

    Parameters
    ----------
    spec : ModelSpec
        Data, priors and new study (its parameterisation is used as for the normal model).
    nu : float or None
        Degrees of freedom; None gives ``nu`` a Gamma(2, 0.1) prior (:data:`NU_PRIOR`).

    Returns
    -------
    pymc.Model
        Variables as :func:`metapool.models.build` plus ``nu`` when it has a prior.
    """
    _check_nu(nu)
    data = spec.data
    with pm.Model(coords=spec.coords) as model:
        se = pm.Data("se", data.se, dims="study")
        X = pm.Data("X", data.X, dims=("study", "coef"))
        x0 = pt.as_tensor_variable(np.asarray(spec.x_new, dtype=float))
        tau = pymc_tau(spec.tau_prior, "tau")
        if spec.location == "mu":
            coef = pt.atleast_1d(pymc_beta(spec.beta_prior, "mu"))
        else:
            coef = pymc_beta(spec.beta_prior, "beta", dims="coef")
        df = pm.Gamma("nu", alpha=NU_PRIOR[0], beta=NU_PRIOR[1]) if nu is None else float(nu)
        loc, loc_new = pt.dot(X, coef), pt.dot(x0, coef)
        if spec.noncentered:
            z = pm.StudentT("z", nu=df, mu=0.0, sigma=1.0, dims="study")
            theta = pm.Deterministic("theta", loc + tau * z, dims="study")
            z_new = pm.StudentT("z_new", nu=df, mu=0.0, sigma=1.0)
            pm.Deterministic("theta_new", loc_new + tau * z_new)
        else:
            theta = pm.StudentT("theta", nu=df, mu=loc, sigma=tau, dims="study")
            pm.StudentT("theta_new", nu=df, mu=loc_new, sigma=tau)
        pm.Normal("y", mu=theta, sigma=se, observed=data.y, dims="study")
    return model


def _log_lambda_rule(a: float, n: int = _NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes lambda_i and weights w_i with sum_i w_i f(lambda_i) = E[f(lambda)], lambda ~ Gamma(a, rate a).

    The trapezoid rule in u = log lambda over the quantiles 1e-17 .. 1 - 1e-17: the integrand
    Gamma density x lambda decays exponentially in u at both ends, where the trapezoid rule
    converges geometrically; it resolves the likelihood's transition at lambda ~ tau^2 / s^2
    however small tau is (a Gauss–Laguerre rule in lambda does not).
    """
    lo = stats.gamma.ppf(1e-17, a, scale=1.0 / a)
    hi = stats.gamma.isf(1e-17, a, scale=1.0 / a)
    # P(lambda < x) ~ (a x)^a / Gamma(a + 1) for small x: its 1e-17 point where ppf underflows
    u_lo = np.log(lo) if lo > 0 else (np.log(1e-17) + special.gammaln(a + 1)) / a - np.log(a)
    u_lo = max(u_lo, -700.0)
    span = np.log(hi) - u_lo
    u = np.linspace(u_lo, np.log(hi), min(max(n, int(span / 0.25) + 1), 4000))  # steps <= 0.25 in log lambda
    lam = np.exp(u)
    w = np.exp(stats.gamma.logpdf(lam, a, scale=1.0 / a) + u) * (u[1] - u[0])
    w[[0, -1]] *= 0.5
    return lam, w


def student_t_log_likelihood(posterior: xr.Dataset, data, nu: float | None = None) -> xr.DataArray:
    """log p(y_j | beta, tau, nu) with theta_j ~ t_nu(x_j'beta, tau) integrated out, per draw.

    Parameters
    ----------
    posterior : xarray.Dataset
        Draws of ``tau``, ``mu`` / ``beta`` and, when ``nu`` is None, ``nu``.
    data : MetaData
    nu : float, optional
        Fixed degrees of freedom (else the draws of ``nu``).

    Returns
    -------
    xarray.DataArray
        Dims ``chain, draw, study``.

    Notes
    -----
    t_nu(theta | m, tau) = int N(theta | m, tau^2 / lambda) Gamma(lambda | nu/2, nu/2) dlambda, so
    p(y_j | .) = E_lambda[N(y_j | m_j, s_j^2 + tau^2 / lambda)], taken by the trapezoid rule in
    log lambda (241 nodes over the Gamma's 1e-17 .. 1 - 1e-17 quantiles).
    """
    tau = np.asarray(posterior["tau"].transpose(*layout.SAMPLE_DIMS).values, float)
    loc = layout.location_name(data)
    coef = np.asarray(posterior[loc].transpose(*layout.SAMPLE_DIMS, ...).values, float)
    fit = coef[..., None] if data.intercept_only else coef @ data.X.T
    r2 = (data.y - fit) ** 2                                        # (C, D, J)
    t2 = (tau * tau)[..., None]
    nus = np.full(tau.shape, float(nu)) if nu is not None else np.asarray(
        posterior["nu"].transpose(*layout.SAMPLE_DIMS).values, float)
    out = np.empty(r2.shape)
    for value in np.unique(nus):
        sel = np.flatnonzero(nus.ravel() == value)
        lam, w = _log_lambda_rule(value / 2.0)
        L = lam[:, None, None]
        for lo in range(0, sel.size, 256):                          # (K, 256, J) blocks
            idx = np.unravel_index(sel[lo:lo + 256], nus.shape)
            d = data.variance * L + t2[idx][None]                  # lambda (s^2 + tau^2 / lambda)
            lg = -0.5 * (LOG_2PI + np.log(d) - np.log(L) + r2[idx][None] * L / d)
            out[idx] = special.logsumexp(lg, b=w[:, None, None], axis=0)
    coords = {"chain": posterior["chain"].values, "draw": posterior["draw"].values,
              layout.STUDY: np.asarray(data.labels, dtype=object)}
    return xr.DataArray(out, dims=(*layout.SAMPLE_DIMS, layout.STUDY), coords=coords, name="y")


def sample_student_t(data: Any, tau_prior: Any = None, beta_prior: Any = None, *, nu: float | None = 4.0,
                     parameterization: str | None = None, draws: int = 1000, tune: int = 1000, chains: int = 4,
                     seed: int | None = None, target_accept: float = 0.9, x_new: Any = None,
                     log_likelihood: str = "marginal", progressbar: bool = False) -> xr.DataTree:
    """Sample the Student-t random-effects model with NUTS (nutpie).

    Parameters
    ----------
    data : MetaData or ModelSpec
    tau_prior, beta_prior, parameterization, x_new
        As :func:`metapool.models.sample`.
    nu : float or None
        Degrees of freedom, or None for a Gamma(2, 0.1) prior.
    draws, tune, chains, seed, target_accept, progressbar
        NUTS settings (no automatic reruns).
    log_likelihood : {"marginal", "conditional"}
        ``marginal``: log p(y_j | beta, tau, nu) (theta_j integrated out, for LOO);
        ``conditional``: log N(y_j | theta_j, s_j^2).

    Returns
    -------
    xarray.DataTree
        The shared layout (``posterior`` adds ``nu`` when it has a prior); attrs
        ``random_effects = "student_t"`` and ``nu``.

    References
    ----------
    Juárez, M. A. and Steel, M. F. J. (2010). Model-based clustering of non-Gaussian panel data
    based on skew-t distributions. Journal of Business & Economic Statistics 28(1), 52-66.
    Baker, R. and Jackson, D. (2008). A new approach to outliers in meta-analysis. Health Care
    Management Science 11, 121-131.
    """
    spec = model_spec(data, tau_prior, beta_prior, parameterization, x_new)
    kind = check_log_likelihood(log_likelihood)
    model = build_student_t(spec, nu)
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        dt = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed, nuts_sampler="nutpie",
                       target_accept=target_accept, progressbar=progressbar)
    obs, const = layout.data_groups(spec.data)
    dt["observed_data"] = xr.DataTree(obs)
    dt["constant_data"] = xr.DataTree(const)
    if kind == "conditional":
        out = pm.compute_log_likelihood(dt, model=model, progressbar=False, extend_inferencedata=True)
        dt = dt if out is None else out
    else:
        ll = student_t_log_likelihood(dt["posterior"].to_dataset(), spec.data, nu)
        dt["log_likelihood"] = xr.DataTree(ll.to_dataset())
    dt["log_likelihood"].attrs["likelihood"] = kind
    attrs = {"engine": "nuts", "random_effects": "student_t", "nu": "prior gamma:2,0.1" if nu is None else float(nu),
             "tau_prior": spec.tau_prior.spec, "beta_prior": spec.beta_prior.spec,
             "parameterization": spec.parameterization}
    dt.attrs.update(attrs)
    dt["posterior"].attrs.update(attrs)
    return dt
