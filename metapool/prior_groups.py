"""The ``prior`` and ``log_prior`` groups of a fit, for ArviZ's prior-posterior plots and ``psense``.

Both engines' DataTrees share the layout of docs/CONVENTIONS.md, so one function adds the groups
to either: ``log_prior`` holds log p(tau) and log p(mu / beta) (summed over coefficients) per
posterior draw -- the hyperpriors a meta-analyst varies, which :func:`arviz.psense` power-scales
against the study-level ``log_likelihood`` -- and ``prior`` holds draws of tau, mu / beta, theta
and theta_new from the prior (proper priors only).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from metapool import layout
from metapool.errors import InputError

__all__ = ["log_prior", "prior_draws", "add_prior_groups"]


def log_prior(posterior: xr.Dataset, spec) -> xr.Dataset:
    """log p(tau) and log p(mu) / log p(beta) at every posterior draw.

    Parameters
    ----------
    posterior : xarray.Dataset
        Draws with ``tau`` and ``mu`` or ``beta`` (dims ``chain, draw[, coef]``).
    spec : metapool.spec.ModelSpec
        The model (its bound priors).

    Returns
    -------
    xarray.Dataset
        ``tau`` and ``mu`` / ``beta`` (chain, draw); flat priors give 0 (an improper density's
        log up to a constant).

    Notes
    -----
    log p(beta) = sum_c log N(beta_c | m0_c, sd0_c^2) for the independent normal prior.
    """
    d = spec.data
    loc = layout.location_name(d)
    tau = posterior["tau"].transpose(*layout.SAMPLE_DIMS)
    lt = np.asarray(spec.tau_prior.logpdf(np.asarray(tau.values, float)), float)
    b = np.asarray(posterior[loc].transpose(*layout.SAMPLE_DIMS, ...).values, float)
    b = b[..., None] if d.intercept_only else b
    prec, mean = spec.beta_prior.precision(d.p), spec.beta_prior.mean(d.p)
    if spec.beta_prior.proper:
        lb = np.sum(0.5 * np.log(prec / (2 * np.pi)) - 0.5 * prec * (b - mean) ** 2, axis=-1)
    else:
        lb = np.zeros(b.shape[:2])
    coords = {"chain": posterior["chain"].values, "draw": posterior["draw"].values}
    return xr.Dataset({"tau": (layout.SAMPLE_DIMS, lt), loc: (layout.SAMPLE_DIMS, lb)}, coords=coords,
                      attrs={"tau_prior": spec.tau_prior.spec, "beta_prior": spec.beta_prior.spec})


def prior_draws(spec, draws: int = 1000, chains: int = 1, seed=None) -> xr.Dataset:
    """Draws of tau, mu / beta, theta and theta_new from the prior (both priors proper).

    Raises
    ------
    InputError
        Naming the improper prior (it has no draws).
    """
    d = spec.data
    bad = [f"the {p.spec} prior on {n}" for n, p in (("tau", spec.tau_prior),
                                                      (layout.location_name(d), spec.beta_prior)) if not p.proper]
    if bad:
        raise InputError(f"prior draws need proper priors: {' and '.join(bad)} has no draws")
    rng = np.random.default_rng(seed)
    n = draws * chains
    tau = np.asarray(spec.tau_prior.rvs(rng, n), float).reshape(n)
    beta = np.asarray(spec.beta_prior.rvs(rng, n, d.p), float).reshape(n, d.p)
    theta = beta @ d.X.T + tau[:, None] * rng.standard_normal((n, d.J))
    theta_new = beta @ np.asarray(spec.x_new, float) + tau * rng.standard_normal(n)
    sh = lambda a: a.reshape((chains, draws) + a.shape[1:])  # noqa: E731
    coords = {"chain": np.arange(chains), "draw": np.arange(draws),
              layout.STUDY: np.asarray(d.labels, dtype=object)}
    pv = {"tau": (layout.SAMPLE_DIMS, sh(tau))}
    if d.intercept_only:
        pv["mu"] = (layout.SAMPLE_DIMS, sh(beta[:, 0]))
    else:
        pv["beta"] = ((*layout.SAMPLE_DIMS, layout.COEF), sh(beta))
        coords[layout.COEF] = np.asarray(d.coef_names, dtype=object)
    pv["theta"] = ((*layout.SAMPLE_DIMS, layout.STUDY), sh(theta))
    pv["theta_new"] = (layout.SAMPLE_DIMS, sh(theta_new))
    return xr.Dataset(pv, coords=coords)


def add_prior_groups(dt: xr.DataTree, spec, *, draws: int | None = None, seed=None) -> xr.DataTree:
    """A copy of ``dt`` with ``log_prior`` and, when both priors are proper, ``prior``.

    Parameters
    ----------
    dt : xarray.DataTree
        Draws of either engine (needs ``posterior``).
    spec : metapool.spec.ModelSpec
    draws : int, optional
        Prior draws per chain (default the posterior's draws; chains as the posterior's).
    seed : optional
        Seed of the prior draws.

    Returns
    -------
    xarray.DataTree
    """
    out = dt.copy()
    post = dt["posterior"].to_dataset()
    out["log_prior"] = xr.DataTree(log_prior(post, spec))
    if spec.tau_prior.proper and spec.beta_prior.proper:
        n = int(post.sizes["draw"]) if draws is None else int(draws)
        out["prior"] = xr.DataTree(prior_draws(spec, n, int(post.sizes["chain"]), seed))
    return out
