"""Independent draws from the exact posterior, laid out as an ArviZ DataTree."""

from __future__ import annotations

import functools
import weakref
from queue import Empty, SimpleQueue
from typing import NamedTuple

import numpy as np
import xarray as xr

from metapool import layout
from metapool.likelihood import check_log_likelihood
from metapool.analytic import _base as B
from metapool.analytic import _threads as T

LOG_2PI = B.LOG_2PI


# Draws are computed in blocks of at most this many (draw, study) cells (and at most a segment):
# a block's two scratch arrays (1 MB each, reused by the segments a thread runs in turn) stay in
# cache across its passes, and only the outputs are full size.
BLOCK_CELLS = 1 << 17
# theta's and then y_rep's normals come from one random stream per segment of this many draws
# (an SFC64 generator seeded from a SeedSequence spawned from the seed's), so segments can run on
# several threads and the draws depend on neither the number of threads nor the block size.
SEGMENT_DRAWS = 1024
# Below this many (draw, study) cells threads cost more than they save.
THREADS_MIN_CELLS = 1 << 17


def _beta_given_R(R: np.ndarray, pr: B.Prepared, z: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """beta | tau, y ~ N(A^-1 b, A^-1) for every row, given R = 1 / (s^2 + tau^2) of shape (n, J)
    (or R / scale, scale a power of two) and standard normals z of shape (n, p).

    Uses the engine's centred quantities (effects centred at the fixed-effect fit), so
    X'WX, X'Wy_c and y_c'Wy_c are one matrix product; the mean and the deviate come from
    :func:`metapool.analytic._base.beta_given_tau`, stable for any prior sd.
    """
    p, n = pr.p, R.shape[0]
    sums = B.rowdot(R, pr.stacked, pr.stacked_T)           # A and b in one call
    if scale != 1.0:
        sums *= scale                                      # exact: a power of two
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


class CdfTable:
    """tau by the inverse CDF: ``numpy.interp(u, F, tau)`` for uniforms u in [0, 1), bit for bit,
    with the cell of each u found from a bucket table instead of a binary search per u.

    F rises from 0 to 1 (ties allowed). The cell j of u (F_j <= u < F_{j+1}) starts at the last
    F_j <= k / K for u's bucket k = floor(K u) (exact: K is a power of two) and moves up once if
    F_{j+1} <= u; the few u in buckets crowded with table points are finished by a binary search.
    The value is numpy.interp's own arithmetic, slope_j (u - F_j) + tau_j with slope_j =
    (tau_{j+1} - tau_j) / (F_{j+1} - F_j); a non-finite value (never seen) is left to numpy.interp.
    """

    BUCKETS = 2048

    def __init__(self, F: np.ndarray, tau: np.ndarray):
        self.F, self.fp = F, tau
        self.start = np.searchsorted(F, np.arange(self.BUCKETS) / self.BUCKETS, side="right") - 1
        with np.errstate(divide="ignore", invalid="ignore"):  # tied F: cells no u falls in
            self.slope = np.diff(tau) / np.diff(F)

    def tau(self, u: np.ndarray) -> np.ndarray:
        """tau at the uniforms u (0 <= u < 1)."""
        F, F1 = self.F, self.F[1:]
        j = self.start[(u * self.BUCKETS).astype(np.intp)]
        j += F1[j] <= u
        late = np.flatnonzero(F1[j] <= u)
        if late.size:
            j[late] = np.searchsorted(F, u[late], side="right") - 1
        out = u - F[j]
        out *= self.slope[j]
        out += self.fp[j]
        if not np.isfinite(out).all():
            bad = np.flatnonzero(~np.isfinite(out))
            out[bad] = np.interp(u[bad], F, self.fp)
        return out


class _Job(NamedTuple):
    """Inputs and outputs shared by the segments of one call (each segment writes its own rows)."""

    pr: B.Prepared
    y: np.ndarray                  # (J,)
    scale: float                   # c, a power of two near 1 / s^2: the blocks work with c tau^2, c s^2
    q_rows: np.ndarray             # (2, J) rows 1, c s^2:          [c tau^2, 1] @ q_rows = c (tau^2 + s^2)
    p_rows: np.ndarray             # (2, J) rows s^2, c s^4:        [(c tau^2)^2, c tau^2] @ p_rows = c^2 P
    m_rows: np.ndarray             # (2 + p, J) rows y, 0, c s^2 X': [c tau^2, 1, beta] @ m_rows = c M
    tau: np.ndarray                # (N,)
    L: np.ndarray                  # (N, 3 + p) rows [(c tau^2)^2, c tau^2, 1, beta]; beta's columns out
    z_beta: np.ndarray             # (N, p)
    theta: np.ndarray              # (N, J) out
    y_rep: np.ndarray | None       # (N, J) out
    loglik: np.ndarray | None      # (N, J) out
    rows: int                      # rows per block (at most)
    se_rows: np.ndarray | None     # (rows, J) s in every row (same-shape products are faster)
    resid_rows: np.ndarray | None  # (1 + p, J) rows y, -X':   [1, beta] @ resid_rows = y - x'beta
    var_rows: np.ndarray | None    # (2, J) rows 1 / c, s^2:  [c tau^2, 1] @ var_rows = tau^2 + s^2
    half_prec: np.ndarray | None   # (J,) -1 / (2 s^2)
    log_const: np.ndarray | None   # (J,) -log(s) - log(2 pi) / 2
    scratch: SimpleQueue           # (R, V) block buffers, reused by the segments that run in turn
    marginal: bool = True          # log N(y | x'beta, s^2 + tau^2); False: log N(y | theta, s^2)


def _blocks(seg: slice, rows: int) -> list[slice]:
    """``seg`` cut into as few blocks of at most ``rows`` rows as possible, of nearly equal size."""
    m = seg.stop - seg.start
    k = -(-m // max(1, rows))
    size = -(-m // k)
    return [slice(lo, min(seg.stop, lo + size)) for lo in range(seg.start, seg.stop, size)]


def _segment(job: _Job, seg: slice, stream: np.random.SeedSequence) -> None:
    """beta, theta (and y_rep, log-likelihood) for the draws in ``seg``, block by block.

    theta = x'beta + w (y - x'beta) + z sqrt(w) s with w = tau^2 / (tau^2 + s^2) is computed as

        theta = (M + sqrt(P) z) / Q,  Q = tau^2 + s^2,  M = tau^2 y + s^2 x'beta,  P = tau^2 s^2 Q,

    in five passes over a block besides its normals (which go straight into theta's rows): Q, P
    and M are matrix products of rank 2 (2 + p) of per-draw rows with per-study rows, then
    1 / Q, sqrt(P) and three same-shape in-place ufuncs (numpy's broadcast over short rows is
    slower). The blocks work with c tau^2 and c s^2 for a power of two c near 1 / s^2 (exact), so
    P's fourth powers neither overflow nor underflow for any scale of the data. R = 1 / Q also
    gives beta | tau (before theta, which needs it). All of theta's normals are drawn before any
    of y_rep's, so theta is the same with or without the predictive groups.
    """
    J = job.theta.shape[1]
    rng = _generator(stream)        # built here, in the segment's thread: off the serial path
    blocks = _blocks(seg, job.rows)
    try:                                                   # buffers a finished segment left
        R, V = job.scratch.get_nowait()
    except Empty:
        R, V = np.empty((job.rows, J)), np.empty((job.rows, J))
    for sl in blocks:
        n = sl.stop - sl.start
        r, v, th, lt = R[:n], V[:n], job.theta[sl], job.L[sl]
        np.matmul(lt[:, 1:3], job.q_rows, out=r)           # c Q (products by 1: exact sums)
        np.divide(1.0, r, out=r)                           # R / c
        lt[:, 3:] = _beta_given_R(r, job.pr, job.z_beta[sl], job.scale)
        np.matmul(lt[:, :2], job.p_rows, out=v)            # c^2 P
        np.sqrt(v, out=v)
        rng.standard_normal(out=th)
        th *= v
        np.matmul(lt[:, 1:], job.m_rows, out=v)            # c M
        th += v
        th *= r                                            # (M + sqrt(P) z) / Q
    if job.y_rep is not None:
        _predictive(job, blocks, rng, V)
    job.scratch.put((R, V))


def _predictive(job: _Job, blocks: list[slice], rng: np.random.Generator, V: np.ndarray) -> None:
    """y_rep ~ N(theta, s^2) and the log-likelihood for the draws in ``blocks``, after theta.

    The marginal log N(y | x'beta, s^2 + tau^2) takes y - x'beta = [1, beta] @ [y; -X'] and
    tau^2 + s^2 = [c tau^2, 1] @ [1 / c; s^2] as matrix products (exact: products by 1 and by
    powers of two), so no pass broadcasts over short rows; ``V`` is a block's scratch buffer.
    """
    for sl in blocks:
        n = sl.stop - sl.start
        th, yr, L = job.theta[sl], job.y_rep[sl], job.loglik[sl]
        rng.standard_normal(out=yr)
        yr *= job.se_rows[:n]
        yr += th                                           # y_rep ~ N(theta, s^2)
        if job.marginal:
            lt, q = job.L[sl], V[:n]
            np.matmul(lt[:, 2:], job.resid_rows, out=L)    # y - x'beta
            L *= L
            np.matmul(lt[:, 1:3], job.var_rows, out=q)     # tau^2 + s^2
            L /= q
            np.log(q, out=q)
            L += q
            L += LOG_2PI
            L *= -0.5                                      # log N(y | x'beta, s^2 + tau^2)
        else:
            np.subtract(job.y, th, out=L)
            L *= L
            L *= job.half_prec
            L += job.log_const                             # log N(y | theta, s^2)


def _spawn(rng: np.random.Generator, n: int) -> list[np.random.SeedSequence]:
    """The segments' seeds: n SeedSequences spawned from rng's (each becomes a stream by
    :func:`_generator`).

    Spawned sequences make the streams independent of each other and of the seed's own stream.
    """
    try:
        return rng.bit_generator.seed_seq.spawn(n)
    except (AttributeError, NotImplementedError):  # a bit generator built without a SeedSequence
        return np.random.SeedSequence(rng.integers(2**63, size=4)).spawn(n)


def _generator(seq: np.random.SeedSequence) -> np.random.Generator:
    """A segment's stream: an SFC64 generator seeded from its SeedSequence.

    SFC64 rather than the seed's PCG64 because theta's normals are most of the draws' cost and
    numpy draws normals about a fifth faster from SFC64 (7.3 against 9.2 ns each measured here).
    """
    return np.random.Generator(np.random.SFC64(seq))


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
    tau = CdfTable(*post.inverse_cdf_table()).tau(u)
    z_beta = rng.standard_normal((N, p))
    z_new = rng.standard_normal(N)
    segs = [slice(lo, min(N, lo + SEGMENT_DRAWS)) for lo in range(0, N, SEGMENT_DRAWS)]
    streams = _spawn(rng, len(segs))
    var = d.variance
    c = float(np.ldexp(1.0, -int(np.round(np.log2(np.median(var))))))  # a power of two near 1 / s^2
    L = np.empty((N, 3 + p))
    np.multiply(tau, tau, out=L[:, 1])
    L[:, 1] *= c
    np.multiply(L[:, 1], L[:, 1], out=L[:, 0])
    L[:, 2] = 1.0
    rows = min(SEGMENT_DRAWS, max(1, block_cells // J))
    job = _Job(
        pr=post.problem.prepared, y=d.y, scale=c, q_rows=np.stack([np.ones(J), c * var]), p_rows=np.stack([var, c * var * var]),
        m_rows=np.concatenate([d.y[None, :], np.zeros((1, J)), c * var * d.X.T]),
        tau=tau, L=L, z_beta=z_beta, theta=np.empty((N, J)),
        y_rep=np.empty((N, J)) if predictive else None, loglik=np.empty((N, J)) if predictive else None,
        rows=rows, scratch=SimpleQueue(), marginal=kind == "marginal",
        se_rows=np.tile(d.se, (rows, 1)) if predictive else None,
        resid_rows=np.concatenate([d.y[None, :], -d.X.T]), var_rows=np.stack([np.full(J, 1.0 / c), var]),
        half_prec=-0.5 / var, log_const=-(np.log(d.se) + 0.5 * LOG_2PI),
    )
    n_threads = post.problem.threads if threads is None else int(threads)
    if threads is None and N * J < THREADS_MIN_CELLS:
        n_threads = 1
    beta, theta_new = np.empty((N, p)), np.empty(N)
    outputs = (tau, beta, job.theta, theta_new, job.y_rep, job.loglik)
    tasks = [functools.partial(_segment, job, sg, st) for sg, st in zip(segs, streams)]
    # The tree only wraps the output arrays, so the calling thread assembles it first while any
    # helper threads start filling them.
    tree = T.run(tasks, n_threads, lead=lambda: to_datatree(post, *outputs, chains, draws, kind))
    np.copyto(beta, L[:, 3:])
    np.matmul(beta, post.x_new, out=theta_new)             # theta_new = x_new'beta + tau z
    z_new *= tau
    theta_new += z_new
    if not _wraps(tree, job.theta, theta_new):  # never seen; guards against a copying xarray
        tree = to_datatree(post, *outputs, chains, draws, kind)
    return tree


def _wraps(tree: xr.DataTree, theta: np.ndarray, theta_new: np.ndarray) -> bool:
    v = tree.children["posterior"].variables
    return np.may_share_memory(v["theta"].values, theta) and np.may_share_memory(v["theta_new"].values, theta_new)


class StaticGroups(NamedTuple):
    """The parts of every DataTree that do not depend on the draws, built once per data object."""

    study: xr.Coordinates          # the study coordinate (and its index)
    coef: xr.Coordinates
    observed_data: xr.Dataset
    constant_data: xr.Dataset
    sample: dict                   # (chains, draws, coef) -> sample coordinates (see sample_coords)


SAMPLE_COORDS_KEPT = 4


def sample_coords(st: StaticGroups, chains: int, draws: int, coef: bool = False) -> xr.Coordinates:
    """The chain, draw and study (and with ``coef`` the coef) coordinates and their indexes of
    ``chains`` x ``draws`` draws, built once for each shape (up to a few shapes kept)."""
    key = (chains, draws, coef)
    coords = st.sample.get(key)
    if coords is None:
        coords = xr.Coordinates({"chain": np.arange(chains), "draw": np.arange(draws)}).merge(st.study).coords
        if coef:
            coords = coords.merge(st.coef).coords
        if len(st.sample) >= SAMPLE_COORDS_KEPT:
            st.sample.clear()                              # one call: safe with concurrent samplers
        st.sample[key] = coords
    return coords


# The static groups depend on the data only (MetaData is immutable, its arrays read-only), so
# posteriors of the same data share them: refitting (other priors, a benchmark loop) skips the
# millisecond of xarray construction.
_STATIC: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def static_groups(post) -> StaticGroups:
    """observed_data (y) and constant_data (se, X) with their coordinates; arrays are read-only.

    Built once per data object (kept while the data are) and shared by its posteriors' trees.
    """
    try:
        return _STATIC[post.data]
    except (KeyError, TypeError):  # TypeError: data that cannot be weakly referenced
        pass
    obs, const = layout.data_groups(post.data)
    study = xr.Coordinates({layout.STUDY: const[layout.STUDY].values})
    coef = xr.Coordinates({layout.COEF: const[layout.COEF].values})
    groups = StaticGroups(study, coef, obs, const, {})
    try:
        _STATIC[post.data] = groups
    except TypeError:
        pass
    return groups


def to_datatree(post, tau, beta, theta, theta_new, y_rep, loglik, chains: int, draws: int,
                log_likelihood: str = "marginal") -> xr.DataTree:
    """Assemble the groups with the names and dims of docs/CONVENTIONS.md."""
    d = post.data
    st = post._static_groups
    sample = sample_coords(st, chains, draws)
    cd, cds = ("chain", "draw"), ("chain", "draw", "study")
    var = lambda dims, a: xr.Variable(dims, a.reshape((chains, draws) + a.shape[1:]))  # noqa: E731
    pv = {"tau": var(cd, tau)}
    coords = sample
    if d.intercept_only:
        pv["mu"] = var(cd, beta[:, 0])
    else:
        pv["beta"] = var(cd + ("coef",), beta)
        coords = sample_coords(st, chains, draws, coef=True)
    pv["theta"] = var(cds, theta)
    pv["theta_new"] = var(cd, theta_new)
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
        groups["posterior_predictive"] = xr.Dataset({"y": var(cds, y_rep)}, coords=sample, attrs=attrs)
        groups["log_likelihood"] = xr.Dataset({"y": var(cds, loglik)}, coords=sample,
                                              attrs={**attrs, "likelihood": log_likelihood})
    groups.update(observed_data=st.observed_data, constant_data=st.constant_data)
    # Children assigned at once, rather than through the slower DataTree.from_dict.
    root = xr.DataTree()
    root.children = {name: xr.DataTree(ds) for name, ds in groups.items()}
    return root
