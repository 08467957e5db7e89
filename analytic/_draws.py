"""Independent draws from the exact posterior, laid out as an ArviZ DataTree."""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import xarray as xr

from metapool import layout
from metapool.likelihood import check_log_likelihood
from metapool.analytic import _base as B
from metapool.analytic import _threads as T

LOG_2PI = B.LOG_2PI


# Draws are computed in blocks of about this many (draw, study) cells: a block's scratch arrays
# (1 MB each) stay in cache across the dozen passes, and only the outputs are full size.
BLOCK_CELLS = 1 << 17
# theta's and then y_rep's normals come from one random stream per segment of this many draws
# (spawned from the seed), so segments can run on several threads and the draws depend on neither
# the number of threads nor the block size.
SEGMENT_DRAWS = 1024
# Below this many (draw, study) cells threads cost more than they save.
THREADS_MIN_CELLS = 1 << 17


def _beta_given_R(R: np.ndarray, pr: B.Prepared, z: np.ndarray) -> np.ndarray:
    """beta | tau, y ~ N(A^-1 b, A^-1) for every row, given R = 1 / (s^2 + tau^2) of shape (n, J)
    and standard normals z of shape (n, p).

    Uses the engine's centred quantities (effects centred at the fixed-effect fit), so
    X'WX, X'Wy_c and y_c'Wy_c are one matrix product; the mean and the deviate come from
    :func:`metapool.analytic._base.beta_given_tau`, stable for any prior sd.
    """
    p, n = pr.p, R.shape[0]
    sums = B.rowdot(R, pr.stacked, pr.stacked_T)           # A and b in one call
    if p == 1 and pr.sd0 is None:                          # scalars per draw: plain vector arithmetic
        a = sums[:, 0] + pr.prec0[0]
        out = sums[:, 1] + pr.prec0[0] * pr.mean0_c[0]
        out /= a
        np.sqrt(a, out=a)
        dev = z[:, 0] / a
        out += dev
        out += pr.beta_ref[0]
        return out[:, None]
    bt = B.beta_given_tau(sums[:, : p * p].reshape(n, p, p), sums[:, p * p: p * p + p], sums[:, -1], pr)
    return bt.mean + bt.deviates(z)


class _Job(NamedTuple):
    """Inputs and outputs shared by the segments of one call (each segment writes its own rows)."""

    pr: B.Prepared
    y: np.ndarray
    se: np.ndarray
    var: np.ndarray
    XT: np.ndarray | None          # (p, J), or None for the intercept-only model
    one_var: np.ndarray            # (2, J) rows 1 and s^2
    y_one: np.ndarray              # (2, J) rows y and 1
    u: np.ndarray                  # (N,) uniforms that give tau by the inverse CDF
    table: tuple                   # (F, tau) inverse-CDF table
    tau: np.ndarray                # (N,) out
    z_beta: np.ndarray             # (N, p)
    beta: np.ndarray               # (N, p) out
    theta: np.ndarray              # (N, J) out
    y_rep: np.ndarray | None       # (N, J) out
    loglik: np.ndarray | None      # (N, J) out
    rows: int                      # rows per block
    marginal: bool = True          # log N(y | x'beta, s^2 + tau^2); False: log N(y | theta, s^2)


def _segment(job: _Job, seg: slice, rng: np.random.Generator) -> None:
    """beta, theta (and y_rep, log-likelihood) for the draws in ``seg``, block by block.

    All of theta's normals are drawn before any of y_rep's, so theta is the same with or without
    the predictive groups.
    """
    J = job.theta.shape[1]
    n0 = min(job.rows, seg.stop - seg.start)
    tau = job.tau[seg] = np.interp(job.u[seg], *job.table)
    t2 = np.empty(seg.stop - seg.start)
    np.multiply(tau, tau, out=t2)
    S, M = np.empty((n0, J)), np.empty((n0, J))
    # Outer sums as rank-2 matrix products: [tau^2, 1] @ [1; s^2] and [1, -mu] @ [y; 1]. Every
    # product is by 1, so a rank-2 BLAS product gives the same cells (one rounding each) as the
    # broadcast sum, without numpy's per-row broadcasting overhead on short rows.
    Lt, Lm = np.ones((n0, 2)), np.ones((n0, 2))
    blocks = [slice(lo, min(seg.stop, lo + job.rows)) for lo in range(seg.start, seg.stop, job.rows)]
    y, var = job.y, job.var
    for sl in blocks:
        n = sl.stop - sl.start
        R, D, th = S[:n], M[:n], job.theta[sl]
        tc = t2[sl.start - seg.start: sl.stop - seg.start, None]
        Lt[:n, 0] = tc[:, 0]
        np.matmul(Lt[:n], job.one_var, out=R)              # tau^2 + s^2
        np.divide(1.0, R, out=R)                           # R = 1 / (s^2 + tau^2)
        b = job.beta[sl] = _beta_given_R(R, job.pr, job.z_beta[sl])
        R *= tc                                            # w = tau^2 / (tau^2 + s^2)
        if job.XT is None:                                 # x_j'beta = mu: no (n, J) fit
            np.negative(b[:, 0], out=Lm[:n, 1])
            np.matmul(Lm[:n], job.y_one, out=D)            # y - mu
            D *= R
            np.add(D, b, out=th)                           # mu + w (y - mu)
        else:
            np.matmul(b, job.XT, out=th)
            np.subtract(y, th, out=D)
            D *= R
            th += D                                        # x'beta + w (y - x'beta)
        R *= var
        np.sqrt(R, out=R)                                  # conditional sd sqrt(w) s
        rng.standard_normal(out=D)
        D *= R
        th += D
    if job.y_rep is None:
        return
    half_prec = -0.5 / var
    const = -(np.log(job.se) + 0.5 * LOG_2PI)
    for sl in blocks:
        th, yr, L = job.theta[sl], job.y_rep[sl], job.loglik[sl]
        rng.standard_normal(out=yr)
        yr *= job.se
        yr += th                                           # y_rep ~ N(theta, s^2)
        if job.marginal:
            _marginal_loglik(job, sl, L)
            continue
        np.subtract(y, th, out=L)
        L *= L
        L *= half_prec
        L += const                                         # log N(y | theta, s^2)


def _marginal_loglik(job: _Job, sl: slice, L: np.ndarray) -> None:
    """log N(y_j | x_j'beta, s_j^2 + tau^2) for the draws in ``sl`` into L (theta integrated out)."""
    b = job.beta[sl]
    fit = b[:, :1] if job.XT is None else b @ job.XT
    np.subtract(job.y, fit, out=L)                         # y - x'beta
    L *= L
    v = np.add.outer(job.tau[sl] ** 2, job.var)            # s^2 + tau^2
    L /= v
    np.log(v, out=v)
    L += v
    L += LOG_2PI
    L *= -0.5


def _spawn(rng: np.random.Generator, n: int) -> list[np.random.Generator]:
    try:
        return rng.spawn(n)
    except TypeError:  # a bit generator built without a SeedSequence
        return [np.random.default_rng(s) for s in np.random.SeedSequence(rng.integers(2**63, size=4)).spawn(n)]


def draw(post, draws: int, chains: int, seed, predictive: bool = True, threads: int | None = None,
         block_cells: int = BLOCK_CELLS, log_likelihood: str = "marginal") -> xr.DataTree:
    """Draw (chains x draws) independent samples; see ExactPosterior.sample.

    ``log_likelihood`` is ``"marginal"`` (log N(y_j | x_j'beta, s_j^2 + tau^2), the default) or
    ``"conditional"`` (log N(y_j | theta_j, s_j^2)); see :mod:`metapool.likelihood`.

    The seed's stream gives tau (uniforms), the normals of beta and of theta_new; theta's and
    y_rep's normals come from a stream spawned per segment of SEGMENT_DRAWS draws. The draws
    therefore do not depend on ``threads`` or ``block_cells``.
    """
    if draws < 1 or chains < 1:
        raise ValueError(f"draws and chains must be >= 1, got draws={draws}, chains={chains}")
    if block_cells < 1:
        raise ValueError(f"block_cells must be >= 1, got {block_cells}")
    T.check_threads(threads)
    kind = check_log_likelihood(log_likelihood)
    rng = np.random.default_rng(seed)
    d = post.data
    N, J, p = draws * chains, d.J, d.p
    u = rng.random(N)
    z_beta = rng.standard_normal((N, p))
    z_new = rng.standard_normal(N)
    segs = [slice(lo, min(N, lo + SEGMENT_DRAWS)) for lo in range(0, N, SEGMENT_DRAWS)]
    streams = _spawn(rng, len(segs))
    job = _Job(
        pr=post.problem.prepared, y=d.y, se=d.se, var=d.variance,
        XT=None if d.intercept_only else np.ascontiguousarray(d.X.T), u=u,
        one_var=np.stack([np.ones(J), d.variance]), y_one=np.stack([d.y, np.ones(J)]),
        table=post.inverse_cdf_table(), tau=np.empty(N), z_beta=z_beta,
        beta=np.empty((N, p)), theta=np.empty((N, J)),
        y_rep=np.empty((N, J)) if predictive else None, loglik=np.empty((N, J)) if predictive else None,
        rows=max(1, block_cells // J), marginal=kind == "marginal",
    )
    n_threads = post.problem.threads if threads is None else int(threads)
    if threads is None and N * J < THREADS_MIN_CELLS:
        n_threads = 1
    theta_new = np.empty(N)
    tau = job.tau
    outputs = (tau, job.beta, job.theta, theta_new, job.y_rep, job.loglik)
    # The tree only wraps the output arrays, so the calling thread assembles it first while any
    # helper threads start filling them.
    tree = T.run([functools.partial(_segment, job, sg, st) for sg, st in zip(segs, streams)], n_threads,
                 lead=lambda: to_datatree(post, *outputs, chains, draws, kind))
    np.matmul(job.beta, post.x_new, out=theta_new)
    theta_new += tau * z_new
    if not _wraps(tree, job.theta, theta_new):  # never seen; guards against a copying xarray
        tree = to_datatree(post, *outputs, chains, draws, kind)
    return tree


def _wraps(tree: xr.DataTree, theta: np.ndarray, theta_new: np.ndarray) -> bool:
    v = tree.children["posterior"].variables
    return np.may_share_memory(v["theta"].values, theta) and np.may_share_memory(v["theta_new"].values, theta_new)


class StaticGroups(NamedTuple):
    """The parts of every DataTree that do not depend on the draws, built once per posterior."""

    study: xr.Coordinates          # the study coordinate (and its index)
    coef: xr.Coordinates
    observed_data: xr.Dataset
    constant_data: xr.Dataset


def static_groups(post) -> StaticGroups:
    """observed_data (y) and constant_data (se, X) with their coordinates; arrays are read-only."""
    obs, const = layout.data_groups(post.data)
    study = xr.Coordinates({layout.STUDY: const[layout.STUDY].values})
    coef = xr.Coordinates({layout.COEF: const[layout.COEF].values})
    return StaticGroups(study, coef, obs, const)


def to_datatree(post, tau, beta, theta, theta_new, y_rep, loglik, chains: int, draws: int,
                log_likelihood: str = "marginal") -> xr.DataTree:
    """Assemble the groups with the names and dims of docs/CONVENTIONS.md."""
    d = post.data
    st = post._static_groups
    sample = xr.Coordinates({"chain": np.arange(chains), "draw": np.arange(draws)}).merge(st.study).coords
    sh = lambda a: a.reshape((chains, draws) + a.shape[1:])  # noqa: E731
    pv = {"tau": (("chain", "draw"), sh(tau))}
    coords = sample
    if d.intercept_only:
        pv["mu"] = (("chain", "draw"), sh(beta[:, 0]))
    else:
        pv["beta"] = (("chain", "draw", "coef"), sh(beta))
        coords = sample.merge(st.coef).coords
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
    groups = {"posterior": xr.Dataset(pv, coords=coords, attrs=attrs)}
    if y_rep is not None:
        groups["posterior_predictive"] = xr.Dataset({"y": (("chain", "draw", "study"), sh(y_rep))},
                                                    coords=sample, attrs=attrs)
        groups["log_likelihood"] = xr.Dataset({"y": (("chain", "draw", "study"), sh(loglik))},
                                              coords=sample, attrs={**attrs, "likelihood": log_likelihood})
    groups.update(observed_data=st.observed_data, constant_data=st.constant_data)
    # Children assigned at once, rather than through the slower DataTree.from_dict.
    root = xr.DataTree()
    root.children = {name: xr.DataTree(ds) for name, ds in groups.items()}
    return root
