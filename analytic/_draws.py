"""Independent draws from the exact posterior, laid out as an ArviZ DataTree."""

from __future__ import annotations

import numpy as np
import xarray as xr

from metapool.analytic import _base as B

LOG_2PI = B.LOG_2PI


def _beta_draws(tau: np.ndarray, post, rng: np.random.Generator) -> np.ndarray:
    """beta | tau, y ~ N(A^-1 b, A^-1) for every tau draw, shape (N, p)."""
    d = post.data
    p = d.p
    prec0, mean0 = post.beta_prior.precision(p), post.beta_prior.mean(p)
    z = rng.standard_normal((tau.size, p))
    if p == 1 and not prec0.any():
        # Intercept-only flat-prior fast path: A = sum_j x_j^2 / v_j, no matrices.
        out = np.empty((tau.size, 1))
        x = d.X[:, 0]
        for sl in B.chunks(tau.size, d.J):
            w = 1.0 / (d.variance[None, :] + tau[sl, None] ** 2)
            A = w @ (x * x)
            out[sl, 0] = (w @ (x * d.y)) / A + z[sl, 0] / np.sqrt(A)
        return out
    cond = B.conditional(tau, d.y, d.variance, d.X, prec0, mean0)
    L = np.linalg.cholesky(cond.beta_cov)
    return cond.beta_hat + np.einsum("kpq,kq->kp", L, z)


def draw(post, draws: int, chains: int, seed) -> xr.DataTree:
    """Draw (chains x draws) independent samples; see ExactPosterior.sample."""
    if draws < 1 or chains < 1:
        raise ValueError(f"draws and chains must be >= 1, got draws={draws}, chains={chains}")
    rng = np.random.default_rng(seed)
    d = post.data
    N = draws * chains
    F, t = post.inverse_cdf_table()
    tau = np.interp(rng.random(N), F, t)
    beta = _beta_draws(tau, post, rng)
    se, y = d.se, d.y
    fit = beta @ d.X.T                                     # (N, J)
    t2 = (tau * tau)[:, None]
    w = t2 / (d.variance[None, :] + t2)                    # shrinkage weight tau^2 / (tau^2 + s^2)
    theta = rng.standard_normal((N, d.J))
    theta *= np.sqrt(w) * se[None, :]
    theta += fit + w * (y[None, :] - fit)
    theta_new = beta @ post.x_new + tau * rng.standard_normal(N)
    noise = rng.standard_normal((N, d.J)) * se[None, :]
    y_rep = theta + noise
    # log N(y | theta, s): the residual is the drawn noise's counterpart, computed directly
    r = (y[None, :] - theta) / se[None, :]
    loglik = -0.5 * r * r - (np.log(se) + 0.5 * LOG_2PI)[None, :]
    return to_datatree(post, tau, beta, theta, theta_new, y_rep, loglik, chains, draws)


def to_datatree(post, tau, beta, theta, theta_new, y_rep, loglik, chains: int, draws: int) -> xr.DataTree:
    """Assemble the groups with the names and dims of docs/CONVENTIONS.md."""
    d = post.data
    cd = {"chain": np.arange(chains), "draw": np.arange(draws)}
    study = {"study": np.asarray(d.labels, dtype=object)}
    sh = lambda a: a.reshape((chains, draws) + a.shape[1:])  # noqa: E731
    pv = {"tau": (("chain", "draw"), sh(tau))}
    coords = dict(cd, **study)
    if d.intercept_only:
        pv["mu"] = (("chain", "draw"), sh(beta[:, 0]))
    else:
        pv["beta"] = (("chain", "draw", "coef"), sh(beta))
        coords["coef"] = np.asarray(d.coef_names, dtype=object)
    pv["theta"] = (("chain", "draw", "study"), sh(theta))
    pv["theta_new"] = (("chain", "draw"), sh(theta_new))
    attrs = {
        "inference_library": "metapool.analytic",
        "tau_prior": post.tau_prior.spec,
        "beta_prior": post.beta_prior.spec,
        "quadrature_nodes": int(post.tau_nodes.size),
        "quadrature_error_estimate": float(post.error_estimate),
        "independent_draws": 1,
    }
    posterior = xr.Dataset(pv, coords=coords, attrs=attrs)
    ppc = xr.Dataset({"y": (("chain", "draw", "study"), sh(y_rep))}, coords=dict(cd, **study), attrs=attrs)
    ll = xr.Dataset({"y": (("chain", "draw", "study"), sh(loglik))}, coords=dict(cd, **study), attrs=attrs)
    obs = xr.Dataset({"y": (("study",), d.y.copy())}, coords=study)
    const = xr.Dataset(
        {"se": (("study",), d.se.copy()), "X": (("study", "coef"), d.X.copy())},
        coords=dict(study, coef=np.asarray(d.coef_names, dtype=object)),
    )
    return xr.DataTree.from_dict({
        "posterior": posterior, "posterior_predictive": ppc, "log_likelihood": ll,
        "observed_data": obs, "constant_data": const,
    })
