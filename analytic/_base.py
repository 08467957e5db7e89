"""Numpy-only building blocks of the exact engine: conditional posteriors given tau, quadrature rules
and one-dimensional normal mixtures.

Everything here works on plain arrays so it can be tested against closed forms in isolation;
``metapool.analytic.posterior`` assembles it into the user-facing object.
"""

from __future__ import annotations

import functools
import math
from functools import lru_cache
from typing import Callable, NamedTuple

import importlib

import numpy as np

from metapool.analytic._threads import run as run_threads
from metapool.summaries import shortest_interval

class LazyModule:
    """A module imported at its first attribute access, each attribute then kept on this object.

    ``import metapool.analytic`` does not import ``scipy.special`` (about 0.25 s of a 0.4 s
    import, most of it scipy's own array-API set-up): a fit needs none of it, and the summaries,
    which do, import it on their first call (``benchmarks/startup.py``).
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str):
        value = getattr(importlib.import_module(self._name), attr)
        setattr(self, attr, value)       # later lookups are plain attribute reads
        return value


#: ``scipy.special``, imported when first used (:class:`LazyModule`); the engine's modules use this.
special = LazyModule("scipy.special")

LOG_2PI = float(np.log(2.0 * np.pi))
# Elements per temporary (nodes x studies) block: bounds memory for a million studies.
BLOCK = 2_000_000


def wsum(w: np.ndarray, M: np.ndarray) -> np.ndarray:
    """sum_k w_k M[k, ...]: weighted sums over quadrature nodes.

    einsum rather than ``w @ M``: for a few long rows BLAS gemv (threaded) is slower than
    einsum's single pass, and its threads contend with the engine's own (benchmarks/).
    """
    return np.einsum("k,k...->...", w, M)


def log_sum_exp(x: np.ndarray) -> float:
    """log sum_k exp(x_k) for a 1-D array, shifted by its maximum (the plain numpy form of
    ``scipy.special.logsumexp``, without its per-call overhead: it normalises every rule)."""
    m = float(np.max(x))
    if not math.isfinite(m):            # all -inf (0 mass), or +inf / NaN passed through
        return m
    return m + math.log(float(np.exp(x - m).sum()))


def rowdot(W: np.ndarray, M: np.ndarray, MT: np.ndarray) -> np.ndarray:
    """W @ M for a wide W (k, J) and a thin M (J, q), given also as MT (q, J); both C-contiguous.

    For short rows (J <= 256) one matrix product with the C-contiguous M is fastest; for long
    rows, q matrix-vector products, one per row of MT, avoid the matrix product's tiny-m,
    tiny-n, huge-k case, which BLAS handles slowly (figures: DEVELOPERS.md, benchmarks/).
    """
    if W.shape[1] <= 256:
        return W @ M
    out = np.empty((W.shape[0], MT.shape[0]))
    for i in range(MT.shape[0]):
        np.matmul(W, MT[i], out=out[:, i])
    return out


# --------------------------------------------------------------------------- given tau
class Conditional(NamedTuple):
    """Everything that is normal given tau, at K values of tau.

    Attributes
    ----------
    log_post : (K,) unnormalised log p(tau | y) without the prior term.
    beta_hat : (K, p) posterior mean of beta given tau.
    beta_cov : (K, p, p) posterior covariance A^-1 of beta given tau.
    """

    log_post: np.ndarray
    beta_hat: np.ndarray
    beta_cov: np.ndarray


def chunks(n_rows: int, width: int) -> list[slice]:
    """Row slices so that each (rows x width) temporary stays under BLOCK elements."""
    step = max(1, BLOCK // max(1, width))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


class Prepared(NamedTuple):
    """Per-dataset quantities reused at every tau: effects centred at the fixed-effect fit,
    products of design columns, and the prior shifted to the same centre."""

    y_c: np.ndarray        # (J,) y - X beta_ref
    se2: np.ndarray        # (J,)
    beta_ref: np.ndarray   # (p,)
    prec0: np.ndarray      # (p,)
    mean0_c: np.ndarray    # (p,) prior mean minus beta_ref
    p: int
    # (J, p*p + p + 1) columns: row-wise outer products x_j x_j', then x_j y_c_j, then y_c_j^2, so
    # X'WX, X'Wy and y'Wy come from one call (rowdot); and the same transposed (C-contiguous),
    # rowdot's layout for long rows.
    stacked: np.ndarray
    stacked_T: np.ndarray
    # (p,) prior sds of a proper normal prior (capped where the prior is flat for all purposes),
    # or None for the flat prior: the stable form of the normal prior works with sds, not precisions.
    sd0: np.ndarray | None = None
    log_prec0: float = 0.0  # sum_k log P0_k = -2 sum_k log sd0_k (the prior's share of log|A|)
    mean0: np.ndarray | None = None  # (p,) prior mean, uncentred (beta_hat near it is offset from it)
    # Studies sharing (s_j^2, x_j) share their weight 1 / (s_j^2 + tau^2) at every tau: the sums over
    # studies that :func:`conditional` needs then run over the G distinct rows (see :func:`collapse`).
    groups: Collapsed | None = None


class Collapsed(NamedTuple):
    """The G distinct (s_j^2, x_j) rows of a dataset with the per-row columns of
    ``Prepared.stacked`` summed within each, and the number of studies in each."""

    se2: np.ndarray        # (G,)
    count: np.ndarray      # (G,) studies per row
    stacked: np.ndarray    # (G, p*p + p + 1) within-row sums of Prepared.stacked
    stacked_T: np.ndarray  # the same, transposed (C-contiguous)


# Collapsing pays when the distinct rows are few: at most this many, and at most 1/COLLAPSE_RATIO of J.
COLLAPSE_MAX_GROUPS = 4096
COLLAPSE_RATIO = 8


def collapse(se2: np.ndarray, X: np.ndarray, stacked: np.ndarray) -> Collapsed | None:
    """Sum the studies that share (s_j^2, x_j) into one row each, or None when that saves little.

    Notes
    -----
    Every tau-dependent sum of :func:`conditional` has the form sum_j z_j / (s_j^2 + tau^2) or
    sum_j log(s_j^2 + tau^2); for the n_g studies of one distinct row g they equal
    Z_g / (s_g^2 + tau^2) and n_g log(s_g^2 + tau^2) with Z_g = sum_{j in g} z_j: exact sufficient
    statistics, so a million studies with one common standard error cost as much per tau as one.
    The within-row sums are numpy's pairwise sums over contiguous slices (rounding O(eps log n)).
    """
    J = se2.size
    if J < 2 * COLLAPSE_RATIO:
        return None
    # A cheap look first: distinct values among a spread-out sample (sorting a million costs ~0.1 s).
    probe = se2[:: max(1, J // 1024)]
    if np.unique(probe).size > min(COLLAPSE_MAX_GROUPS, probe.size // COLLAPSE_RATIO):
        return None
    varying = X[:, np.any(X != X[:1], axis=0)]          # constant columns (the intercept) split nothing
    keys = np.column_stack([se2, varying])
    order = np.argsort(se2, kind="stable") if varying.shape[1] == 0 else np.lexsort(keys.T[::-1])
    sk = keys[order]
    new = np.empty(J, dtype=bool)
    new[0] = True
    np.any(sk[1:] != sk[:-1], axis=1, out=new[1:])
    starts = np.flatnonzero(new)
    G = starts.size
    if G > COLLAPSE_MAX_GROUPS or G * COLLAPSE_RATIO > J:
        return None
    ends = np.append(starts[1:], J)
    ss = stacked[order]
    sums = np.stack([ss[a:b].sum(axis=0) for a, b in zip(starts.tolist(), ends.tolist())])
    return Collapsed(np.ascontiguousarray(sk[starts, 0]), (ends - starts).astype(float),
                     np.ascontiguousarray(sums), np.ascontiguousarray(sums.T))


# A prior sd above this multiple of the data's sd of a coefficient changes nothing representable:
# sd0 is capped there so that sd0^2 x'Wx stays finite (the prior's log|P0| is kept exactly).
SD_CAP = 1e100


def prepare(y: np.ndarray, se2: np.ndarray, X: np.ndarray, prec0: np.ndarray, mean0: np.ndarray,
            sd0: np.ndarray | None = None) -> Prepared:
    """Centre y at the fixed-effect (tau = 0) estimate so every later quadratic form is a small residual.

    The model is invariant under y -> y + X d, m0 -> m0 + d, so the centring changes no result;
    it removes the cancellation in y'Wy - b'A^-1 b when y carries a large common shift.

    ``sd0`` (the prior sds) may be given instead of deriving it from ``prec0``; it is then used
    even where 1 / sd0^2 overflows (a prior sd below 1e-154: a coefficient known for all purposes).
    """
    w0 = 1.0 / se2
    A0 = (X * w0[:, None]).T @ X
    beta_ref = np.linalg.solve(A0, (X * w0[:, None]).T @ y)
    y_c = y - X @ beta_ref
    J, p = X.shape
    XX = (X[:, :, None] * X[:, None, :]).reshape(J, p * p)
    Xy, y2 = X * y_c[:, None], y_c * y_c
    stacked = np.ascontiguousarray(np.hstack([XX, Xy, y2[:, None]]))
    prec0 = np.asarray(prec0, dtype=float)
    if sd0 is None and np.all(prec0 > 0):
        sd0 = 1.0 / np.sqrt(prec0)
    log_prec0 = 0.0
    if sd0 is not None:
        sd0 = np.asarray(sd0, dtype=float)
        log_prec0 = float(-2.0 * np.log(sd0).sum())
        sd0 = np.minimum(sd0, SD_CAP / np.sqrt(np.diag(A0)))
    return Prepared(y_c, se2, beta_ref, prec0, mean0 - beta_ref, p, stacked, np.ascontiguousarray(stacked.T),
                    sd0, log_prec0, np.asarray(mean0, dtype=float), collapse(se2, X, stacked))


class BetaGivenTau(NamedTuple):
    """beta | tau, y at K values of tau, in the centred coordinates of :class:`Prepared`.

    Attributes
    ----------
    quad : (K,) the minimum over beta of (y_c - X beta)'W(y_c - X beta) + (beta - m0)'P0(beta - m0).
    logdet : (K,) log|A|, A = X'WX + P0.
    mean : (K, p) A^-1 (X'W y + P0 m0) (not centred: beta_ref is already added).
    factor : (K, p, p) lower-triangular L and ``scale`` (K, p) with A^-1 = D L'^-1 L^-1 D,
        D = diag(scale): a normal deviate is D L'^-1 z.
    """

    quad: np.ndarray
    logdet: np.ndarray
    mean: np.ndarray
    factor: np.ndarray
    scale: np.ndarray

    def cov(self) -> np.ndarray:
        p = self.factor.shape[-1]
        if p == 1:                        # one coefficient: A^-1 = (scale / L)^2, no solves
            return (self.scale / self.factor[:, 0, :])[:, :, None] ** 2
        inv = _cho_solve_mat(self.factor, np.broadcast_to(np.eye(p), self.factor.shape))
        return inv * self.scale[:, :, None] * self.scale[:, None, :]

    def deviates(self, z: np.ndarray) -> np.ndarray:
        """D L'^-1 z for standard normals z (K, p): draws of beta - mean."""
        if self.factor.shape[-1] == 1:
            return self.scale * z / self.factor[:, 0, :]
        return self.scale * np.linalg.solve(np.swapaxes(self.factor, 1, 2), z[..., None])[..., 0]


def beta_given_tau(G: np.ndarray, c: np.ndarray, yy: np.ndarray, pr: Prepared) -> BetaGivenTau:
    """The normal posterior of beta given tau and the quadratic form of log p(y | tau), stably.

    Parameters
    ----------
    G, c, yy : (K, p, p), (K, p), (K,)
        X'WX, X'W y_c and y_c'W y_c at K values of tau (W = diag 1 / (s^2 + tau^2)).
    pr : Prepared
        The prior (flat, or normal with sds ``sd0`` and centred mean d = ``mean0_c``).

    Notes
    -----
    Flat prior: A = G, beta_hat = G^-1 c, Q = yy - c'beta_hat (y_c is centred at the data, so
    nothing large cancels).

    Normal prior: with S = diag(sd0) the standardised coefficient u = S^-1 (beta - d) has
    prior N(0, I) and M = I + S G S (eigenvalues >= 1) is factored instead of A = S^-1 M S^-1,
    so log|A| = log|M| + log|P0| and A^-1 = S M^-1 S hold for any prior sd, down to a point mass
    (M -> I) and never overflow. The posterior offset from the prior mean is
    f = M^-1 S g with g = X'W (y_c - X d) = c - G d, and Q has two exact forms:

    - prior-centred (Woodbury): Q = r'Wr - (Sg)'f with r'Wr = yy - 2 d'c + d'Gd;
    - data-centred (sum of squares at the minimiser): Q = e'We + u'u with
      e'We = yy - 2 beta_hat'c + beta_hat'G beta_hat.

    Each is a sum of terms whose magnitudes bound its rounding error; the form with the smaller
    bound is taken at every tau. A tight prior (P0 >> G) makes the Woodbury correction small;
    a wide prior far from the data makes the data-centred terms small. beta_hat itself is
    d + S f where the prior dominates a coefficient (sd0_k^2 G_kk <= 1) and the data-centred
    S M^-1 (S c + S^-1 d) where the data do.

    References
    ----------
    Golub & Van Loan (2013), Matrix Computations, 4th ed., sec. 6.1 (Woodbury) and 5.3
    (least squares as a sum of squared residuals).
    """
    K, p = c.shape
    if pr.sd0 is None and p == 1 and not pr.prec0[0]:
        # Flat prior on one coefficient (an intercept-only model): the scalar case of the
        # branch below without the stacked-matrix calls, whose overhead dominates small problems.
        a, b = G[:, 0, 0], c[:, 0]
        bh = b / a
        return BetaGivenTau(yy - b * bh, np.log(a), (bh + pr.beta_ref[0])[:, None], np.sqrt(a)[:, None, None],
                            np.ones((K, 1)))
    if pr.sd0 is None:
        A = G + np.diag(pr.prec0)[None] if np.any(pr.prec0) else G
        b = c + (pr.prec0 * pr.mean0_c)[None]
        L = np.linalg.cholesky(A)
        bh = _cho_solve(L, b)
        quad = yy + float(pr.mean0_c @ (pr.prec0 * pr.mean0_c)) - np.einsum("kp,kp->k", b, bh)
        logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
        return BetaGivenTau(quad, logdet, bh + pr.beta_ref, L, np.ones((K, p)))
    s, d = pr.sd0, pr.mean0_c
    M = G * (s[:, None] * s[None, :])[None]
    M += np.eye(p)[None]
    L = np.linalg.cholesky(M)
    logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1) + pr.log_prec0
    Gd = np.einsum("kpq,q->kp", G, d)
    g = c - Gd
    f = _cho_solve(L, s * g)
    # Woodbury, centred at the prior mean
    yy_, dc, dGd, gf = yy, c @ d, Gd @ d, np.einsum("kp,kp->k", s * g, f)
    q_prior = yy_ - 2.0 * dc + dGd - gf
    bound_prior = np.abs(yy_) + 2.0 * np.abs(dc) + np.abs(dGd) + np.abs(gf)
    # beta_hat: prior-centred where the prior dominates, data-centred where the data do
    bh = d + s * f
    out = pr.mean0 + s * f               # the same, uncentred: offset from the prior mean as given
    data_dom = (s * s)[None, :] * np.diagonal(G, axis1=1, axis2=2) > 1.0
    if data_dom.any():
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            bh_data = s * _cho_solve(L, s * c + d / s)
        use = data_dom & np.isfinite(bh_data)
        bh = np.where(use, bh_data, bh)
        out = np.where(use, bh_data + pr.beta_ref, out)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(use, (bh - d) / s, f)
    else:
        u = f
    # sum of squares at beta_hat, centred at the data
    bc, bGb, uu = np.einsum("kp,kp->k", bh, c), np.einsum("kp,kpq,kq->k", bh, G, bh), np.einsum("kp,kp->k", u, u)
    q_data = yy_ - 2.0 * bc + bGb + uu
    bound_data = np.abs(yy_) + 2.0 * np.abs(bc) + np.abs(bGb) + uu
    quad = np.where(bound_data < bound_prior, q_data, q_prior)
    return BetaGivenTau(quad, logdet, out, L, np.broadcast_to(s, (K, p)).copy())


def conditional(tau: np.ndarray, y: np.ndarray, se2: np.ndarray, X: np.ndarray,
                prec0: np.ndarray, mean0: np.ndarray, prepared: Prepared | None = None,
                threads: int = 1) -> Conditional:
    """Conditional posterior of beta and the log marginal likelihood of tau (up to a constant).

    Parameters
    ----------
    tau : (K,) between-study standard deviations (>= 0).
    y, se2 : (J,) effects and sampling variances.
    X : (J, p) design matrix.
    prec0, mean0 : (p,) prior precision (0 = flat) and prior mean of beta.
    prepared : Prepared, optional
        The output of :func:`prepare` for these arguments (saves recomputing it).
    threads : int
        Threads for the chunks of nodes when K x J is large.

    Notes
    -----
    With v_j = s_j^2 + tau^2 and W = diag(1/v), A = X'WX + P0, b = X'Wy + P0 m0,
    beta | tau, y ~ N(A^-1 b, A^-1) and

        log p(y | tau) = -1/2 log|A| - 1/2 sum_j log v_j - 1/2 (y'Wy + m0'P0 m0 - b'A^-1 b)

    up to a constant. y is first centred at the fixed-effect fit (see :func:`prepare`); the
    quadratic form and log|A| are computed by :func:`beta_given_tau`, in a form that stays
    accurate for any prior sd (tight priors swamp X'WX in A, and the textbook difference
    then cancels); the sums over studies are matrix products.

    References
    ----------
    Gelman et al. (2013), Bayesian Data Analysis, 3rd ed., sec. 5.4.
    Röver & Friede (2023), Comput. Methods Programs Biomed. 229:107303.
    """
    pr = prepare(y, se2, X, prec0, mean0) if prepared is None else prepared
    tau = np.atleast_1d(np.asarray(tau, dtype=float))
    K, p = tau.size, pr.p
    grp = pr.groups
    se2, stacked, stacked_T, count = ((pr.se2, pr.stacked, pr.stacked_T, None) if grp is None
                                      else (grp.se2, grp.stacked, grp.stacked_T, grp.count))
    J = se2.size
    out_lp = np.empty(K)
    out_bh = np.empty((K, p))
    out_cov = np.empty((K, p, p))
    tau2 = tau * tau

    def one(sl: slice) -> None:
        if J > STUDY_BLOCK:
            logv, sums = _blocked_sums(tau2[sl], se2, stacked, count)
        else:
            v = np.add.outer(tau2[sl], se2)                    # (k, J)
            w = np.divide(1.0, v)                              # np.reciprocal is slower here
            np.log(v, out=v)                                   # in place: v is not needed again
            logv = v.sum(axis=1) if count is None else v @ count
            sums = rowdot(w, stacked, stacked_T)               # X'WX, X'Wy, y'Wy together
        G = sums[:, : p * p].reshape(-1, p, p)
        bt = beta_given_tau(G, sums[:, p * p: p * p + p], sums[:, -1], pr)
        out_lp[sl] = -0.5 * (bt.logdet + logv + bt.quad)
        out_bh[sl] = bt.mean
        out_cov[sl] = bt.cov()

    # Chunks write disjoint rows; several only when K x J is large (a million studies).
    parts = chunks(K, J) if J <= STUDY_BLOCK else [slice(i, min(i + NODE_BLOCK, K)) for i in range(0, K, NODE_BLOCK)]
    if len(parts) == 1:
        one(parts[0])
    else:
        run_threads([functools.partial(one, sl) for sl in parts], threads)
    return Conditional(out_lp, out_bh, out_cov)


# Above this many studies the sums over studies run in blocks of studies, NODE_BLOCK nodes at a time,
# whose (nodes x studies) temporaries of BLOCK_CELLS stay in cache: half the time of whole rows of a
# million studies, which stream through memory once per pass (benchmarks/scaling.py).
STUDY_BLOCK = 1 << 14
NODE_BLOCK = 16
BLOCK_CELLS = 1 << 18


def _blocked_sums(tau2: np.ndarray, se2: np.ndarray, stacked: np.ndarray, count: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """sum_j n_j log(s_j^2 + tau^2) and the columns of ``stacked`` weighted by 1 / (s_j^2 + tau^2),
    at each tau^2, accumulated over blocks of studies."""
    k, J = tau2.size, se2.size
    b = max(1024, BLOCK_CELLS // k)
    logv = np.zeros(k)
    sums = np.zeros((k, stacked.shape[1]))
    v, w = np.empty((k, b)), np.empty((k, b))
    for a in range(0, J, b):
        e = min(a + b, J)
        vv, ww = v[:, : e - a], w[:, : e - a]
        np.add(tau2[:, None], se2[None, a:e], out=vv)
        np.divide(1.0, vv, out=ww)
        np.log(vv, out=vv)
        logv += vv.sum(axis=1) if count is None else vv @ count[a:e]
        sums += ww @ stacked[a:e]
    return logv, sums


def _cho_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve (L L') x = b for stacks of lower-triangular L (k, p, p) and b (k, p)."""
    if L.shape[-1] == 1:
        return b / (L[:, 0, 0, None] ** 2)
    z = np.linalg.solve(L, b[..., None])
    return np.linalg.solve(np.swapaxes(L, 1, 2), z)[..., 0]


def _cho_solve_mat(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    if L.shape[-1] == 1:
        return 1.0 / L**2
    Z = np.linalg.solve(L, B)
    return np.linalg.solve(np.swapaxes(L, 1, 2), Z)


def theta_moments(tau: np.ndarray, cond: Conditional, y: np.ndarray, se2: np.ndarray,
                  X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of theta_j | tau, y with beta integrated out, shape (K, J).

    Notes
    -----
    With shrinkage weight w_j = tau^2 / (tau^2 + s_j^2):

        E[theta_j | tau, y]   = w_j y_j + (1 - w_j) x_j' beta_hat
        Var[theta_j | tau, y] = w_j s_j^2 + (1 - w_j)^2 x_j' A^-1 x_j
    """
    tau2 = np.asarray(tau, dtype=float)[:, None] ** 2
    # Three (K, J) arrays, the rest in place: fresh temporaries of this size cost more in page
    # faults than in arithmetic (0.75 against 0.15 ms for 360 nodes x 79 studies, measured here).
    one_minus_w = np.add(se2[None, :], tau2)
    np.divide(se2[None, :], one_minus_w, out=one_minus_w)
    if X.shape[1] == 1:            # outer products: einsum's general path is several times slower
        x = X[:, 0][None, :]
        mean = cond.beta_hat[:, :1] * x
        var = cond.beta_cov[:, 0, :1] * (x * x)
    else:
        mean = np.einsum("kp,jp->kj", cond.beta_hat, X)
        var = np.einsum("jp,kpq,jq->kj", X, cond.beta_cov, X)
    # mean = y - (1 - w)(y - x'beta_hat)
    np.subtract(y[None, :], mean, out=mean)
    mean *= one_minus_w
    np.subtract(y[None, :], mean, out=mean)
    # var = w s^2 + (1 - w)^2 lev = (1 - w) (tau^2 + (1 - w) lev), as w s^2 = tau^2 (1 - w)
    var *= one_minus_w
    var += tau2
    var *= one_minus_w
    return mean, var


# --------------------------------------------------------------------------- quadrature
@lru_cache(maxsize=8)
def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] (cached)."""
    t, w = np.polynomial.legendre.leggauss(n)
    t.setflags(write=False)
    w.setflags(write=False)
    return t, w


class Rule(NamedTuple):
    """A composite Gauss-Legendre rule on panels of a coordinate x (here x = log tau or tau).

    Attributes
    ----------
    edges : (P + 1,) panel boundaries.
    x : (P, n) nodes.
    w : (P, n) quadrature weights (dx).
    """

    edges: np.ndarray
    x: np.ndarray
    w: np.ndarray

    @property
    def n(self) -> int:
        return self.x.shape[1]


def make_rule(edges: np.ndarray, n: int) -> Rule:
    t, wt = gauss_legendre(n)
    lo, hi = edges[:-1, None], edges[1:, None]
    half = 0.5 * (hi - lo)
    return Rule(edges, lo + half * (t[None, :] + 1.0), half * wt[None, :])


def bisect(rule: Rule) -> Rule:
    mid = 0.5 * (rule.edges[:-1] + rule.edges[1:])
    edges = np.sort(np.concatenate([rule.edges, mid]))
    return make_rule(edges, rule.n)


def panel_cdf_coefficients(dens: np.ndarray, rule: Rule) -> np.ndarray:
    """Legendre coefficients of the antiderivative, per panel, of the degree n-1 interpolant.

    The density values at Gauss nodes determine an interpolating polynomial per panel; its
    coefficients follow from discrete orthogonality, c_k = (2k+1)/2 sum_i w_i f_i P_k(t_i).
    Integrating it gives a CDF inside each panel that agrees with the quadrature at panel ends.
    Both steps are linear in the density values: one (n, n+1) matrix, :func:`_cdf_matrix`.
    """
    half = 0.5 * (rule.edges[1:] - rule.edges[:-1])
    ci = dens @ _cdf_matrix(rule.n)                            # (P, n+1), in reference units
    ci *= half[:, None]
    return ci


@lru_cache(maxsize=8)
def _cdf_matrix(n: int) -> np.ndarray:
    """M (n, n+1) with f @ M the Legendre coefficients of the antiderivative from u = -1 of the
    degree n-1 interpolant of values f at the n Gauss nodes (see :func:`panel_cdf_coefficients`)."""
    t, wt = gauss_legendre(n)
    V = np.polynomial.legendre.legvander(t, n - 1) * ((2 * np.arange(n) + 1) / 2.0)[None, :]   # (n, n)
    M = wt[:, None] * (V @ np.polynomial.legendre.legint(np.eye(n), lbnd=-1.0).T)
    M.setflags(write=False)
    return M


@lru_cache(maxsize=16)
def _recurrence(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The Legendre recurrence's constants (2k+1)/(k+1) and (k+1)/(k+2) for k = n-1 down to 1."""
    ks = range(n - 1, 0, -1)
    return tuple((2 * k + 1) / (k + 1) for k in ks), tuple((k + 1) / (k + 2) for k in ks)


def _clenshaw(u: float, c: list[float]) -> float:
    """sum_k c_k P_k(u) for one scalar u (pure Python: for one value numpy's call overhead dominates)."""
    A, Bk = _recurrence(len(c))
    b1 = b2 = 0.0
    for ck, ak, bk in zip(c[:0:-1], A, Bk):
        b1, b2 = ck + ak * u * b1 - bk * b2, b1
    return c[0] + u * b1 - 0.5 * b2


def _clenshaw2(u: float, c: list[float], d: list[float]) -> tuple[float, float]:
    """:func:`_clenshaw` of two series at once, c (n terms) and d (n - 1 terms: a derivative),
    in one loop (the same operations, so the same values, as two calls)."""
    A, Bk = _recurrence(len(c))
    b1 = b2 = e1 = e2 = 0.0
    for ck, dk, ak, bk in zip(c[:0:-1], [0.0, *d[:0:-1]], A, Bk):
        au = ak * u
        b1, b2 = ck + au * b1 - bk * b2, b1
        e1, e2 = dk + au * e1 - bk * e2, e1
    return c[0] + u * b1 - 0.5 * b2, d[0] + u * e1 - 0.5 * e2


def legendre_derivative(coef: np.ndarray) -> np.ndarray:
    """Coefficients of the derivative of sum_k c_k P_k for every row of coef (m, n): (m, n - 1).

    Notes
    -----
    P'_{k+1} - P'_{k-1} = (2k + 1) P_k, so d_k = (2k + 1) sum_{j > k, j - k odd} c_j: one
    product with a fixed (n, n - 1) matrix (:func:`_derivative_matrix`).
    """
    coef = np.asarray(coef, dtype=float)
    return coef @ _derivative_matrix(coef.shape[-1])


@lru_cache(maxsize=8)
def _derivative_matrix(n: int) -> np.ndarray:
    """D (n, max(n - 1, 1)): D[j, k] = 2k + 1 for j > k with j - k odd (:func:`legendre_derivative`)."""
    j, k = np.ogrid[:n, : max(n - 1, 1)]
    D = np.where((j > k) & ((j - k) % 2 == 1), 2.0 * k + 1.0, 0.0)
    D.setflags(write=False)
    return D


def invert_panel_cdf(coef: np.ndarray, target: np.ndarray, max_iter: int = 100,
                     dcoef: np.ndarray | None = None) -> np.ndarray:
    """u in [-1, 1] with legval(u, coef_i) = target_i for each row: the within-panel CDF inverted.

    Parameters
    ----------
    coef : (m, n) Legendre coefficients of increasing within-panel CDFs (from
        :func:`panel_cdf_coefficients`, one row per requested quantile).
    target : (m,) probability to reach within each panel.
    max_iter : int
        Iteration limit per row (bisection alone needs about 55 to reach machine precision).
    dcoef : (m, n - 1) array, optional
        The rows' derivative coefficients (``legder`` of ``coef``), when the caller has them.

    Notes
    -----
    Safeguarded Newton: a step that leaves the current bracket [lo, hi] (kept by the sign of the
    residual) is replaced by bisection, so it converges quadratically near the root and never
    fails; a target at or beyond a panel end returns that end.
    """
    coef = np.asarray(coef, dtype=float)
    if dcoef is None:
        dcoef = legendre_derivative(coef)
    out = np.empty(len(coef))
    eps = 4 * np.finfo(float).eps
    for i, (c, dc, t) in enumerate(zip(coef.tolist(), dcoef.tolist(), np.asarray(target, float).tolist())):
        g_lo, g_hi = math.fsum(c[::2]) - math.fsum(c[1::2]) - t, math.fsum(c) - t    # P_k(+-1) = (+-1)^k
        if g_lo >= 0 or g_hi <= 0:
            out[i] = -1.0 if g_lo >= 0 else 1.0
            continue
        lo, hi = -1.0, 1.0
        u = -1.0 - 2.0 * g_lo / (g_hi - g_lo)                  # linear start
        for _ in range(max_iter):
            g, d = _clenshaw2(u, c, dc)
            g -= t
            if g == 0:
                break
            if g < 0:
                lo = u
            else:
                hi = u
            un = u - g / d if d > 0 else lo - 1.0
            if not lo < un < hi:
                un = 0.5 * (lo + hi)
            if abs(un - u) <= eps:
                u = un
                break
            u = un
        out[i] = u
    return out


def gauss_rule_for_measure(t: np.ndarray, w: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """An n-point Gauss rule for the discrete measure sum_k w_k delta(t_k) (Stieltjes + Golub-Welsch).

    Used to compress a fine rule over tau into a few nodes that integrate smooth functions
    of tau (the mixture CDFs of a million studies) to the same accuracy.

    References
    ----------
    Gautschi (2004), Orthogonal Polynomials: Computation and Approximation, sec. 2.2.
    Golub & Welsch (1969), Math. Comp. 23:221-230.
    """
    return gauss_rules_for_measure(t, w, (n,))[0]


def gauss_rules_for_measure(t: np.ndarray, w: np.ndarray, ns: tuple[int, ...]
                            ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The Gauss rules of every size in ``ns`` for the discrete measure sum_k w_k delta(t_k),
    from one run of the Stieltjes procedure (the n-point rule needs the first n recurrence
    coefficients: the eigenvalues and first eigenvector components of the leading n x n
    Jacobi matrix, Golub & Welsch)."""
    w = w / w.sum()
    n_max = min(max(ns), int((w > 0).sum()))
    alpha, beta = np.zeros(n_max), np.zeros(n_max)
    p_prev, p_cur = np.zeros_like(t), np.ones_like(t)
    norm_prev = 1.0
    for k in range(n_max):
        wp = w * p_cur
        norm = float(wp @ p_cur)
        if not (norm > 0.0 and math.isfinite(norm)):   # fewer distinct points than asked (numerically)
            n_max = k
            break
        alpha[k] = float(wp @ (t * p_cur)) / norm
        beta[k] = norm / norm_prev if k > 0 else 1.0
        p_next = (t - alpha[k]) * p_cur - (beta[k] if k > 0 else 0.0) * p_prev
        p_prev, p_cur, norm_prev = p_cur, p_next, norm
    from scipy.linalg import lapack

    off = np.sqrt(beta[1:])
    out = []
    for n in ns:
        n = min(n, n_max)
        if n == 0:
            out.append((np.zeros(0), np.zeros(0)))
            continue
        if n == 1:
            out.append((alpha[:1].copy(), np.ones(1)))
            continue
        # LAPACK's implicit QL (dsteqr): dense eigh and the MRRR driver (scipy's
        # eigh_tridiagonal) call threaded BLAS that stalled up to 0.1 s per 48 x 48 problem on a
        # busy machine; this one never did (benchmarks/scaling.py).
        nodes, vecs, info = lapack.dstev(alpha[:n], off[:n - 1])
        if info != 0:
            raise np.linalg.LinAlgError(f"tridiagonal eigenproblem did not converge (dstev info {info})")
        out.append((nodes, vecs[0, :] ** 2))
    return out


def _point_mass_safe(fn):
    """Run a mixture routine with floating-point warnings off: a conditional sd of 0 (a coefficient
    known for all purposes, from a prior sd below ~1e-154) makes z = +-inf or nan, which the
    routines handle (ndtr(+-inf) is 0 or 1; non-finite Newton steps fall back to bisection)."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            return fn(*args, **kwargs)
    return wrapped


# --------------------------------------------------------------------------- normal mixtures
@_point_mass_safe
def mixture_cdf(x: np.ndarray, w: np.ndarray, m: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """P(g <= x) for rows r of sum_k w_k N(m_kr, sd_kr^2); x (R,), w (K,), m and sd (K, R)."""
    return wsum(w, special.ndtr((x[None, :] - m) / sd))


@_point_mass_safe
def mixture_pdf(x: np.ndarray, w: np.ndarray, m: np.ndarray, sd: np.ndarray) -> np.ndarray:
    z = (x[None, :] - m) / sd
    return wsum(w, np.exp(-0.5 * z * z - 0.5 * LOG_2PI) / sd)


@_point_mass_safe
def mixture_quantile(q: float | np.ndarray, w: np.ndarray, m: np.ndarray, sd: np.ndarray,
                     start: np.ndarray | None = None, max_iter: int = 200) -> np.ndarray:
    """Quantile q of every row of a normal mixture by bracketed Halley iteration (vectorised).

    ``q`` is one probability for every row or an array of one per row (R,), so that many
    quantiles of many mixtures are solved in one loop (columns of m and sd repeated per q).

    Notes
    -----
    Solves sum_k w_k Phi((x - m_k)/sd_k) = q. The bracket [min(m - 40 sd), max(m + 40 sd)]
    always contains the root; a Newton step that leaves the current bracket is replaced by
    bisection, so the iteration converges for any mixture. Halley's iteration converges cubically,
    so a step below 1e-4 of the row's scale leaves an error of order 1e-12 of it: iteration stops there.
    """
    lo = (m - 40.0 * sd).min(axis=0)
    hi = (m + 40.0 * sd).max(axis=0)
    q = np.broadcast_to(np.asarray(q, dtype=float), lo.shape)
    if start is None:
        mean = wsum(w, m)
        sdm = np.sqrt(np.maximum(wsum(w, sd**2 + (m - mean) ** 2), 0.0))
        start = mean + special.ndtri(q) * sdm
    x = np.clip(np.where(np.isfinite(start), start, 0.5 * (lo + hi)), lo, hi)
    unit = sd.min(axis=0)
    inv_sqrt_2pi = 1.0 / np.sqrt(2.0 * np.pi)
    # Only the rows still moving are iterated: most start within a step or two of their root.
    active = np.arange(x.size)
    ma, sa = m, sd
    for _ in range(max_iter):
        xa, la, ha = x[active], lo[active], hi[active]
        z = (xa[None, :] - ma) / sa
        phi = np.exp(-0.5 * z * z) * inv_sqrt_2pi / sa
        F = wsum(w, special.ndtr(z)) - q[active]
        f = wsum(w, phi)
        fp = -wsum(w, phi * z / sa)
        la = np.where(F < 0, xa, la)
        ha = np.where(F > 0, xa, ha)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = F / f
            new = xa - d / (1.0 - 0.5 * d * fp / f)          # Halley: cubic convergence
        bad = ~np.isfinite(new) | (new < la) | (new > ha)
        new = np.where(bad, 0.5 * (la + ha), new)
        step = np.abs(new - xa)
        x[active] = np.where(F == 0.0, xa, new)
        lo[active], hi[active] = la, ha
        # Cubic convergence: after a step of size d the error is O(d^3 / scale^2).
        done = (step <= 1e-4 * unit[active]) | (F == 0.0) | (ha - la <= 1e-13 * unit[active])
        if done.all():
            break
        if done.any():
            keep = ~done
            active = active[keep]
            ma, sa = ma[:, keep], sa[:, keep]
    return x


def cornish_fisher(w: np.ndarray, m: np.ndarray, sd: np.ndarray, mean: np.ndarray, sdv: np.ndarray
                   ) -> Callable[[float], np.ndarray | None]:
    """Starting values for mixture quantiles from the mixture's exact skewness and kurtosis.

    Notes
    -----
    Central moments of sum_k w_k N(m_k, v_k) about its mean M, with d_k = m_k - M:
    mu3 = sum w (3 d v + d^3), mu4 = sum w (3 v^2 + 6 d^2 v + d^4). The Cornish-Fisher expansion
    x_q = M + sd (z + (z^2 - 1) g1 / 6 + (z^3 - 3z) g2 / 24 - (2 z^3 - 5 z) g1^2 / 36)
    is then within O(g^3) of the quantile, so one or two Halley steps finish it.

    References
    ----------
    Cornish & Fisher (1938), Rev. Inst. Int. Statist. 5:307-320.
    """
    if not np.all(np.isfinite(sdv)) or not np.all(sdv > 0):
        return lambda q: None
    d = (m - mean) / sdv          # standardised first: no overflow at extreme scales
    v = sd / sdv
    v *= v
    d2 = d * d
    g1 = wsum(w, d * (3 * v + d2))
    g2 = wsum(w, v * (3 * v + 6 * d2) + d2 * d2) - 3.0

    def start(q: float) -> np.ndarray:
        z = special.ndtri(q)
        return mean + sdv * (z + (z * z - 1) * g1 / 6 + (z**3 - 3 * z) * g2 / 24 - (2 * z**3 - 5 * z) * g1**2 / 36)

    return start


@_point_mass_safe
def mixture_hdi(prob: float, w: np.ndarray, m: np.ndarray, sd: np.ndarray,
                lo0: np.ndarray, hi0: np.ndarray, max_iter: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Shortest interval of probability ``prob`` for every row of a unimodal normal mixture.

    Notes
    -----
    Solves F(b) - F(a) = prob and log f(b) = log f(a) by Newton's method in (a, b), starting from
    the equal-tailed interval (lo0, hi0); for a unimodal density these two conditions characterise
    the highest-density interval. Rows where Newton fails fall back to minimising the width
    Q(c + prob) - Q(c) over c.
    """
    a, b = lo0.copy(), hi0.copy()
    ok = np.zeros(a.shape, dtype=bool)

    def parts(x, idx):
        z = (x[None, :] - m[:, idx]) / sd[:, idx]
        phi = np.exp(-0.5 * z * z - 0.5 * LOG_2PI) / sd[:, idx]
        F = wsum(w, special.ndtr(z))
        f = wsum(w, phi)
        df = -wsum(w, phi * z / sd[:, idx])
        return F, f, df

    active = np.arange(a.size)
    for _ in range(max_iter):
        if active.size == 0:
            break
        Fa, fa, dfa = parts(a[active], active)
        Fb, fb, dfb = parts(b[active], active)
        g1 = Fb - Fa - prob
        with np.errstate(divide="ignore", invalid="ignore"):
            g2 = np.log(fb) - np.log(fa)
            j11, j12 = -fa, fb
            j21, j22 = -dfa / fa, dfb / fb
            det = j11 * j22 - j12 * j21
            da = (g1 * j22 - j12 * g2) / det
            db = (j11 * g2 - j21 * g1) / det
        width = b[active] - a[active]
        good = np.isfinite(da) & np.isfinite(db)
        # Damp steps that would cross or flip the interval.
        lim = 0.5 * width
        da = np.clip(np.where(good, da, 0.0), -lim, lim)
        db = np.clip(np.where(good, db, 0.0), -lim, lim)
        a[active[good]] -= da[good]
        b[active[good]] -= db[good]
        # Newton converges quadratically: a step below 1e-7 of the width leaves ~1e-14 of it (a
        # looser 1e-5 left ~1e-9 sd, as large as the tolerance that interpolation across studies is
        # checked against, analytic/_rows.py).
        conv = good & (np.maximum(np.abs(da), np.abs(db)) <= 1e-7 * width) & (np.abs(g1) < 1e-9)
        ok[active[conv]] = True
        active = active[good & ~conv]
    fail = np.flatnonzero(~ok)
    for r in fail:  # rare: multimodal or flat rows
        a[r], b[r] = shortest_interval(lambda qq: mixture_quantile(qq, w, m[:, [r]], sd[:, [r]])[0], prob)
    return a, b


class MixtureSummary(NamedTuple):
    """Summaries of R normal mixtures (see :func:`summarise_mixtures`)."""

    mean: np.ndarray        # (R,)
    sd: np.ndarray          # (R,)
    quantiles: np.ndarray   # (Q, R)
    hdi_low: np.ndarray     # (R,)
    hdi_high: np.ndarray    # (R,)


def mixture_mean_sd(w: np.ndarray, m: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of every row of sum_k w_k N(m_kr, s_kr^2) (w normalised), shifted before
    squaring (by the heaviest node's mean) so that a large common offset does not cancel."""
    return mixture_mean_sd_var(w, m, s * s)


def mixture_mean_sd_var(w: np.ndarray, m: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mixture_mean_sd` from the component variances ``var`` (K, R) instead of the sds."""
    ref = m[np.argmax(w)]
    mu = wsum(w, m - ref) + ref
    d = m - mu
    d *= d
    d += var
    return mu, np.sqrt(wsum(w, d))


def write_summary(out: np.ndarray, rows: slice | np.ndarray, res: MixtureSummary,
                  exists: tuple[bool, bool]) -> None:
    """Write summaries into the rows ``rows`` of a summary array (columns mean, sd, quantiles,
    interval low and high); means and sds that do not exist (``exists``) are NaN."""
    out[rows, 0] = res.mean if exists[0] else np.nan
    out[rows, 1] = res.sd if exists[1] else np.nan
    out[rows, 2:-2] = res.quantiles.T
    out[rows, -2], out[rows, -1] = res.hdi_low, res.hdi_high


def summarise_mixtures(w: np.ndarray, m: np.ndarray, s: np.ndarray, quantiles: tuple[float, ...],
                       prob: float, rule: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                       moments: tuple[np.ndarray, np.ndarray] | None = None) -> MixtureSummary:
    """Mean, sd, quantiles and shortest interval of every row of sum_k w_k N(m_kr, s_kr^2).

    Parameters
    ----------
    w : (K,) normalised weights; m, s : (K, R) conditional means and sds.
    quantiles : probabilities in [0, 1] (0 and 1 give -inf and inf).
    prob : probability of the shortest interval.
    rule : (w, m, s), optional
        Another rule for the same mixtures (fewer nodes: a compressed Gauss rule) used for the
        quantiles and intervals; the means and sds always come from (w, m, s).
    moments : (mean, sd), optional
        :func:`mixture_mean_sd` of (w, m, s), when the caller has them.

    Notes
    -----
    Every quantile of every row, with the equal-tailed interval that starts the shortest-interval
    search, is solved in one bracketed Halley loop (:func:`mixture_quantile` with one column per
    (quantile, row) pair, started from the Cornish-Fisher expansion of :func:`cornish_fisher`),
    and every shortest interval in one Newton loop (:func:`mixture_hdi`): the number of numpy
    calls does not grow with the number of quantiles or groups of rows. Only nodes of weight
    above 1e-18 of the largest enter those loops (the far tail kept for the second moments would
    widen the root brackets by many orders for nothing).
    """
    mu, sdv = mixture_mean_sd(w, m, s) if moments is None else moments
    wq, mq, sq = (w, m, s) if rule is None else rule
    sig = wq > 1e-18 * wq.max()
    if not sig.all():
        wq, mq, sq = wq[sig] / wq[sig].sum(), mq[sig], sq[sig]
    R = m.shape[1]
    tail = (1.0 - prob) / 2.0
    inner = [q for q in quantiles if 0.0 < q < 1.0]
    solve = list(dict.fromkeys(inner + [tail, 1.0 - tail]))
    start = cornish_fisher(wq, mq, sq, mu, sdv)
    starts = [start(q) for q in solve]
    cols = np.tile(np.arange(R), len(solve))
    x = mixture_quantile(np.repeat(solve, R), wq, mq[:, cols], sq[:, cols],
                         start=None if starts[0] is None else np.concatenate(starts))
    found = dict(zip(solve, x.reshape(len(solve), R)))
    qout = np.empty((len(quantiles), R))
    for i, q in enumerate(quantiles):
        qout[i] = -np.inf if q == 0.0 else np.inf if q == 1.0 else found[q]
    a, b = mixture_hdi(prob, wq, mq, sq, found[tail], found[1.0 - tail])
    return MixtureSummary(mu, sdv, qout, a, b)
