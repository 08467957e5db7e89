"""Independent draws from the exact posterior, laid out as an ArviZ DataTree."""

from __future__ import annotations

import numpy as np
import xarray as xr

from metapool.analytic import _base as B

LOG_2PI = B.LOG_2PI


def _beta_draws(R: np.ndarray, post, rng: np.random.Generator) -> np.ndarray:
    """beta | tau, y ~ N(A^-1 b, A^-1) for every draw, given R = 1 / (s^2 + tau^2) of shape (N, J).

    Uses the engine's centred quantities (effects centred at the fixed-effect fit), so
    A = R @ (x x') + P0 and b = R @ (x y_c) + P0 (m0 - beta_ref) are matrix products.
    """
    pr = post.problem.prepared
    p, N = pr.p, R.shape[0]
    A = B.rowdot(R, pr.XX).reshape(N, p, p)
    A += np.diag(pr.prec0)[None]
    b = B.rowdot(R, pr.Xy) + (pr.prec0 * pr.mean0_c)[None]
    z = rng.standard_normal((N, p))
    if p == 1:
        a = A[:, 0, 0]
        return (b[:, 0] / a + z[:, 0] / np.sqrt(a))[:, None] + pr.beta_ref
    L = np.linalg.cholesky(A)
    bh = np.linalg.solve(A, b[..., None])[..., 0]
    # L L' = A, so L'^-1 z has covariance A^-1.
    dev = np.linalg.solve(np.swapaxes(L, 1, 2), z[..., None])[..., 0]
    return bh + dev + pr.beta_ref


def draw(post, draws: int, chains: int, seed, predictive: bool = True) -> xr.DataTree:
    """Draw (chains x draws) independent samples; see ExactPosterior.sample."""
    if draws < 1 or chains < 1:
        raise ValueError(f"draws and chains must be >= 1, got draws={draws}, chains={chains}")
    rng = np.random.default_rng(seed)
    d = post.data
    N = draws * chains
    F, t = post.inverse_cdf_table()
    tau = np.interp(rng.random(N), F, t)
    se, y, var = d.se, d.y, d.variance
    # One (N, J) reciprocal serves beta | tau and the shrinkage weights.
    R = np.add.outer(tau * tau, var)
    np.reciprocal(R, out=R)
    beta = _beta_draws(R, post, rng)
    # x_j'beta: a broadcast column for the intercept-only model, an (N, J) product otherwise.
    fit = beta[:, :1] if d.intercept_only else np.einsum("np,jp->nj", beta, d.X)
    w = R
    w *= -var[None, :]
    w += 1.0                                               # w = tau^2 / (tau^2 + s^2)
    theta = y[None, :] - fit
    theta *= w                                             # shrunken deviation w (y - x'beta)
    theta += fit
    np.sqrt(w, out=w)
    w *= se[None, :]                                       # conditional sd sqrt(w) s
    w *= rng.standard_normal((N, d.J))
    theta += w
    theta_new = beta @ post.x_new + tau * rng.standard_normal(N)
    if not predictive:
        return to_datatree(post, tau, beta, theta, theta_new, None, None, chains, draws)
    y_rep = rng.standard_normal((N, d.J))
    y_rep *= se[None, :]
    y_rep += theta
    # log N(y | theta, s)
    r = y[None, :] - theta
    r /= se[None, :]
    r *= r
    r *= -0.5
    r -= (np.log(se) + 0.5 * LOG_2PI)[None, :]
    return to_datatree(post, tau, beta, theta, theta_new, y_rep, r, chains, draws)


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
    obs = xr.Dataset({"y": (("study",), d.y.copy())}, coords=study)
    const = xr.Dataset(
        {"se": (("study",), d.se.copy()), "X": (("study", "coef"), d.X.copy())},
        coords=dict(study, coef=np.asarray(d.coef_names, dtype=object)),
    )
    groups = {"posterior": posterior}
    if y_rep is not None:
        groups["posterior_predictive"] = xr.Dataset({"y": (("chain", "draw", "study"), sh(y_rep))},
                                                    coords=dict(cd, **study), attrs=attrs)
        groups["log_likelihood"] = xr.Dataset({"y": (("chain", "draw", "study"), sh(loglik))},
                                              coords=dict(cd, **study), attrs=attrs)
    groups.update(observed_data=obs, constant_data=const)
    return xr.DataTree.from_dict(groups)
