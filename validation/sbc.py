"""Simulation-based calibration (SBC) of either engine, in parallel across processes."""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from metapool.data import MetaData
from metapool.parallel import describe_scheduler, runner
from metapool.run_info import run_info
from metapool.validation._common import flat_posterior, sidak_alpha
from metapool.validation.verdict import Verdict, Failure, Rule, failure_lines, passed_column, verdict

__all__ = ["sbc", "SBCResult", "rank_uniformity", "ecdf_uniformity_test", "chi2_uniformity_test"]

Engine = Literal["exact", "nuts"]
#: Null simulations behind the ECDF-band p-values (resolution 1 / (N_SIM + 1)).
N_SIM: int = 20_000
#: Options of :func:`metapool.models.sample` used by the NUTS engine unless overridden.
NUTS_DEFAULTS: Mapping[str, Any] = {"chains": 4, "tune": 500, "parameterization": "noncentered", "cores": 1,
                                    "progressbar": False}


# ----------------------------------------------------------------------------- uniformity tests
def _pointwise_gamma(counts_below: np.ndarray, n: int, z: np.ndarray) -> np.ndarray:
    """min_i 2 min(P(X <= c_i), P(X >= c_i)) for X ~ Bin(n, z_i), along the last axis."""
    c = np.asarray(counts_below, dtype=float)
    lower = special.bdtr(c, n, z)                             # P(X <= c)
    upper = np.where(c > 0, special.bdtrc(c - 1, n, z), 1.0)  # P(X >= c)
    return np.minimum(1.0, 2.0 * np.minimum(lower, upper)).min(axis=-1)


@lru_cache(maxsize=32)
def _null_gamma(n: int, n_draws: int, n_sim: int, seed: int) -> np.ndarray:
    """Sorted null draws of the ECDF statistic for n uniform ranks on {0, ..., n_draws}."""
    rng = np.random.default_rng(seed)
    L = n_draws
    z = np.arange(1, L + 1) / (L + 1)
    out = np.empty(n_sim)
    step = max(1, 2_000_000 // max(L, 1))
    if L * (n + 1) <= 4_000_000:
        # Tabulate the pointwise two-sided tail probability of every count at every z_i once.
        k = np.arange(n + 1, dtype=float)[None, :]
        zz = z[:, None]
        lower = special.bdtr(k, n, zz)
        upper = np.where(k > 0, special.bdtrc(k - 1, n, zz), 1.0)
        table = np.minimum(1.0, 2.0 * np.minimum(lower, upper))        # (L, n + 1)
        rows = np.arange(L)[None, :]
    else:
        table = None
    for a in range(0, n_sim, step):
        b = min(n_sim, a + step)
        counts = rng.multinomial(n, np.full(L + 1, 1.0 / (L + 1)), size=b - a)
        below = np.cumsum(counts, axis=1)[:, :L]            # #(rank < i), i = 1..L
        out[a:b] = table[rows, below].min(axis=1) if table is not None else _pointwise_gamma(below, n, z)
    out.sort()
    return out


def ecdf_uniformity_test(ranks: np.ndarray, n_draws: int, *, n_sim: int = N_SIM, seed: int = 0) -> tuple[float, float]:
    """Simultaneous ECDF-band test that ranks are uniform on {0, ..., n_draws}.

    Parameters
    ----------
    ranks : array_like of int, shape (N,)
        Ranks of the true values among ``n_draws`` posterior draws.
    n_draws : int
        L, the number of posterior draws per replication.
    n_sim : int
        Null simulations for the p-value.
    seed : int
        Seed of the null simulations.

    Returns
    -------
    (gamma, p) : tuple of float
        The statistic and its p-value.

    Notes
    -----
    With z_i = i / (L + 1) and c_i = #{ranks < i}, i = 1..L, uniform ranks give
    c_i ~ Binomial(N, z_i) at every i. The statistic is the smallest two-sided pointwise tail
    probability gamma = min_i 2 min(P(X <= c_i), P(X >= c_i)); the ECDF leaves the simultaneous
    1 - a band of Säilynoja et al. (2022) exactly when gamma is below the a-quantile of its null
    distribution, so the p-value is P0(gamma* <= gamma), estimated from ``n_sim`` multinomial
    draws of uniform ranks as (1 + #{gamma* <= gamma}) / (n_sim + 1).
    """
    r = np.asarray(ranks).ravel()
    n = r.size
    L = int(n_draws)
    if n == 0:
        return float("nan"), float("nan")
    if r.min() < 0 or r.max() > L:
        raise ValueError(f"ranks must lie in 0..{L}")
    z = np.arange(1, L + 1) / (L + 1)
    below = np.cumsum(np.bincount(r.astype(int), minlength=L + 1))[:L]
    g = float(_pointwise_gamma(below, n, z))
    null = _null_gamma(n, L, int(n_sim), int(seed))
    p = (1.0 + np.searchsorted(null, g, side="right")) / (null.size + 1.0)
    return g, float(min(p, 1.0))


def _bins(n_draws: int, n: int, n_bins: int | None) -> list[np.ndarray]:
    L1 = n_draws + 1
    if n_bins is None:
        n_bins = int(max(2, min(20, L1, n // 5)))
    return np.array_split(np.arange(L1), min(n_bins, L1))


def chi2_uniformity_test(ranks: np.ndarray, n_draws: int, n_bins: int | None = None) -> tuple[float, float, int]:
    """Pearson chi-square test of uniform ranks on {0, ..., n_draws} over contiguous bins.

    Returns
    -------
    (chi2, p, df) : tuple

    Notes
    -----
    chi2 = sum_b (O_b - E_b)^2 / E_b with E_b = N |b| / (L + 1) over B contiguous bins of rank
    values (default B = min(20, L + 1, N / 5), so E_b >= 5), df = B - 1 (Talts et al. 2018).
    """
    r = np.asarray(ranks).ravel().astype(int)
    n = r.size
    bins = _bins(int(n_draws), n, n_bins)
    counts = np.bincount(r, minlength=n_draws + 1)
    obs = np.array([counts[b].sum() for b in bins], dtype=float)
    exp = np.array([n * b.size / (n_draws + 1) for b in bins])
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    df = len(bins) - 1
    return chi2, float(stats.chi2.sf(chi2, df)), df


def rank_uniformity(
    ranks: np.ndarray,
    n_draws: int,
    parameters: Sequence[str] | None = None,
    *,
    alpha: float = 0.01,
    test: Literal["ecdf", "chi2", "both"] = "ecdf",
    n_sim: int = N_SIM,
    seed: int = 0,
) -> pd.DataFrame:
    """Uniformity test of the SBC ranks of every parameter, with a Šidák multiplicity adjustment.

    Parameters
    ----------
    ranks : array_like of int, shape (N, P)
        Ranks in 0..n_draws (a 1-D array is one parameter).
    n_draws : int
        L, posterior draws per replication.
    parameters : sequence of str, optional
        Names of the P columns.
    alpha : float, default 0.01
        Family-wise false-alarm probability over the P parameters.
    test : {"ecdf", "chi2", "both"}
        Which p-value decides ``passed`` ("both": the smaller).
    n_sim : int
        Null simulations of the ECDF test.
    seed : int
        Seed of the null simulations.

    Returns
    -------
    pandas.DataFrame
        Index ``parameter``; columns ``ecdf_gamma, ecdf_p, chi2, chi2_df, chi2_p, mean_rank``
        (mean rank / L, 0.5 under uniformity; above: the posterior sits below the truth),
        ``p`` (the deciding p-value), ``p_min`` (alpha_P = 1 - (1 - alpha)^(1/P)) and ``passed``.
    """
    r = np.asarray(ranks)
    if r.ndim == 1:
        r = r[:, None]
    P = r.shape[1]
    names = list(parameters) if parameters is not None else [f"x{i}" for i in range(P)]
    if len(names) != P:
        raise ValueError(f"{len(names)} names for {P} columns of ranks")
    if test not in ("ecdf", "chi2", "both"):
        raise ValueError(f"test must be 'ecdf', 'chi2' or 'both', got {test!r}")
    p_min = sidak_alpha(alpha, P)
    rows = []
    for k in range(P):
        g, pe = ecdf_uniformity_test(r[:, k], n_draws, n_sim=n_sim, seed=seed)
        c2, pc, df = chi2_uniformity_test(r[:, k], n_draws)
        p = {"ecdf": pe, "chi2": pc, "both": min(pe, pc)}[test]
        rows.append({"ecdf_gamma": g, "ecdf_p": pe, "chi2": c2, "chi2_df": df, "chi2_p": pc,
                     "mean_rank": float(r[:, k].mean() / n_draws), "p": p, "p_min": p_min})
    table = pd.DataFrame(rows, index=pd.Index(names, name="parameter"))
    table["passed"] = passed_column(table, verdict(table, [ranks_rule(p_min)]))
    return table


def ranks_rule(p_min: float) -> Rule:
    """The SBC verdict on one parameter: uniformity p-value >= p_min (a NaN p fails)."""
    return Rule("ranks", "p", float(p_min), "lower", missing_fails=True, context=("mean_rank",))


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class SBCResult(Verdict):
    """Ranks and verdict of :func:`sbc`.

    Attributes
    ----------
    ranks : numpy.ndarray of int, shape (n_reps, P)
        Rank of the true value of each parameter among the ``n_draws`` posterior draws
        (0..n_draws; ties broken at random).
    parameters : tuple of str
        Flat names of the P columns: ``tau``, ``mu`` or ``beta[NAME]``, ``theta[LABEL]``.
    n_draws : int
        L, posterior draws per replication (after thinning).
    table : pandas.DataFrame
        :func:`rank_uniformity` of the ranks.
    replications : pandas.DataFrame
        One row per replication: the true ``tau``, ``seconds`` (fit and draws) and, for NUTS,
        ``divergences``, ``r_hat_max``, ``ess_bulk_min``.
    engine : str
    alpha : float
        Family-wise level of the uniformity tests.
    test : str
    wall_time : float
        Seconds for all replications (parallel).
    n_jobs : int
        Worker processes used (with a Dask scheduler: the cluster's worker threads).
    seed : int
    settings : Mapping[str, object]
        Priors of the simulation and of the fit, thinning and engine options.
    """

    ranks: np.ndarray
    parameters: tuple[str, ...]
    n_draws: int
    table: pd.DataFrame
    replications: pd.DataFrame
    engine: str
    alpha: float
    test: str
    wall_time: float
    n_jobs: int
    seed: int
    settings: Mapping[str, object]

    @property
    def n_reps(self) -> int:
        """Number of replications."""
        return int(self.ranks.shape[0])

    @property
    def passed(self) -> bool:
        """True when every parameter's ranks pass the uniformity test."""
        return bool(self.table["passed"].all())

    @property
    def failures(self) -> tuple[Failure, ...]:
        """A :class:`~metapool.validation.verdict.Failure` (check ``ranks``: value the uniformity
        p-value, limit ``p_min``, context ``mean_rank`` and ``test``) per parameter whose ranks
        are not uniform."""
        if self.table.empty:
            return ()
        return verdict(self.table, [ranks_rule(float(self.table["p_min"].iloc[0]))], test=self.test)

    @property
    def seconds_per_replication(self) -> float:
        """Mean fit-and-draw time of one replication inside a worker."""
        return float(self.replications["seconds"].mean())

    def __repr__(self) -> str:
        return (f"SBCResult(engine={self.engine!r}, passed={self.passed}, n_reps={self.n_reps}, "
                f"n_draws={self.n_draws}, parameters={len(self.parameters)})")

    def __str__(self) -> str:
        s = self.settings
        verdict = self.verdict_text("parameter")
        lines = [
            f"metapool SBC ({self.engine} engine): {verdict}",
            f"  {self.n_reps} replications, {self.n_draws} posterior draws each (thin {s.get('thin')}); simulated from "
            f"tau ~ {s.get('tau_prior')}, coefficients ~ {s.get('beta_prior')}; fitted with tau ~ "
            f"{s.get('fit_tau_prior')}, coefficients ~ {s.get('fit_beta_prior')}",
            f"  uniformity: {self.test} test per parameter, p >= {float(self.table['p_min'].iloc[0]):.2g} "
            f"(Sidak, family-wise alpha {self.alpha:g} over {len(self.parameters)} parameters)",
            f"  time: {self.wall_time:.1f} s on {self.n_jobs} "
            f"{'Dask worker(s) at ' + str(s['scheduler']) if s.get('scheduler') else 'process(es)'}, {self.seconds_per_replication * 1e3:.0f} ms "
            "per replication",
        ]
        lines += failure_lines(self.failures)
        t = self.table.copy()
        t["status"] = t["passed"].map({True: "ok", False: "FAIL"})
        lines.append(t[["mean_rank", "ecdf_p", "chi2_p", "status"]].to_string(
            float_format=lambda v: f"{v:.3g}"))
        return "\n".join(lines)


# ----------------------------------------------------------------------------- replications
def _param_names(design: MetaData) -> tuple[str, ...]:
    coef = ("mu",) if design.intercept_only else tuple(f"beta[{c}]" for c in design.coef_names)
    return ("tau",) + coef + tuple(f"theta[{s}]" for s in design.labels)


def _simulate(design: MetaData, tau_prior, beta_prior, rng: np.random.Generator):
    """(truth (P,), y (J,)): tau, beta from the prior, theta ~ N(X beta, tau^2), y ~ N(theta, s^2)."""
    tau = float(tau_prior.rvs(rng))
    beta = np.asarray(beta_prior.rvs(rng, None, design.p), dtype=float).reshape(design.p)
    theta = design.X @ beta + tau * rng.standard_normal(design.J)
    y = theta + design.se * rng.standard_normal(design.J)
    return np.concatenate([[tau], beta, theta]), y


def _ranks(truth: np.ndarray, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of truth[k] among draws[:, k] (0..L), ties broken uniformly at random."""
    below = (draws < truth[None, :]).sum(axis=0)
    ties = (draws == truth[None, :]).sum(axis=0)
    return below + np.array([rng.integers(0, t + 1) if t else 0 for t in ties])


def _posterior_matrix(dt, names: Sequence[str], thin: int, n_draws: int) -> np.ndarray:
    flat = flat_posterior(dt)
    cols = []
    for n in names:
        x = np.asarray(flat[n].values, dtype=float)[:, ::thin]     # thin within each chain
        cols.append(x.ravel()[:n_draws])
    return np.column_stack(cols)


def _one_replication(ss: np.random.SeedSequence, design: MetaData, engine: str, tau_prior, beta_prior,
                     fit_tau_prior, fit_beta_prior, n_draws: int, thin: int, rtol: float,
                     nuts_options: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, float]]:
    rng = np.random.default_rng(ss)
    truth, y = _simulate(design, tau_prior, beta_prior, rng)
    data = design.with_effects(y)
    names = _param_names(design)
    t0 = time.perf_counter()
    info: dict[str, float] = {"tau": float(truth[0])}
    if engine == "exact":
        from metapool.analytic import fit

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = fit(data, fit_tau_prior, fit_beta_prior, rtol=rtol)
            dt = post.sample(draws=n_draws * thin, chains=1, seed=rng)
        info["error_estimate"] = float(post.error_estimate)
    else:
        from metapool.models import sample

        opts = dict(nuts_options)
        chains = int(opts.pop("chains"))
        per_chain = math.ceil(n_draws / chains) * thin
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dt = sample(data, fit_tau_prior, fit_beta_prior, draws=per_chain, chains=chains,
                        seed=int(rng.integers(2**31 - 1)), **opts)
        run = run_info(dt)
        for key in ("divergences", "r_hat_max", "ess_bulk_min"):
            value = getattr(run, key)
            info[key] = np.nan if value is None else float(value)
    draws = _posterior_matrix(dt, names, thin, n_draws)
    info["seconds"] = time.perf_counter() - t0
    return _ranks(truth, draws, rng), info


def _run_batch(items, *args) -> list[tuple[int, np.ndarray, dict[str, float]]]:
    out = []
    for i, ss in items:
        r, info = _one_replication(ss, *args)
        out.append((i, r, info))
    return out


def _n_jobs(n_jobs: int | None) -> int:
    cpus = os.cpu_count() or 1
    if n_jobs is None or n_jobs == 0:
        return 1
    return max(1, cpus + 1 + n_jobs if n_jobs < 0 else n_jobs)


def sbc(
    engine: Engine = "exact",
    data_design: MetaData | None = None,
    tau_prior=None,
    beta_prior=None,
    *,
    n_reps: int = 1000,
    n_draws: int = 99,
    thin: int | None = None,
    seed: int = 0,
    n_jobs: int | None = -1,
    fit_tau_prior=None,
    fit_beta_prior=None,
    rtol: float = 1e-8,
    nuts_options: Mapping[str, Any] | None = None,
    alpha: float = 0.01,
    test: Literal["ecdf", "chi2", "both"] = "ecdf",
    n_sim: int = N_SIM,
    scheduler: Any = None,
) -> SBCResult:
    """Simulation-based calibration of the exact or the NUTS engine.

    Parameters
    ----------
    engine : {"exact", "nuts"}
        :func:`metapool.analytic.fit` + ``sample`` (independent draws) or
        :func:`metapool.models.sample`.
    data_design : MetaData
        Supplies the standard errors, the design X and the labels (its effects are not used).
    tau_prior, beta_prior : prior or spec string
        Proper priors to simulate from (and to fit with, unless ``fit_*`` are given).
    n_reps : int, default 1000
        Replications.
    n_draws : int, default 99
        L, posterior draws the true value is ranked among (ranks 0..L).
    thin : int, optional
        Keep every ``thin``-th draw of each chain (default 1 for the independent exact draws,
        10 for NUTS), so the L draws are nearly independent.
    seed : int, default 0
        Root seed; replication i uses ``SeedSequence(seed).spawn(n_reps)[i]``, so the ranks do
        not depend on ``n_jobs`` or ``scheduler``.
    n_jobs : int, optional
        Worker processes (joblib, loky backend); -1 = all cores, 1 = in this process.
        Ignored when ``scheduler`` is given.
    fit_tau_prior, fit_beta_prior : prior or spec string, optional
        Priors of the fit, when they should differ from the simulation's (a negative control:
        a wrong prior must be flagged).
    rtol : float, default 1e-8
        Tolerance of the exact fits.
    nuts_options : mapping, optional
        Keyword arguments of :func:`metapool.models.sample` (default ``chains=4, tune=500,
        parameterization="noncentered", cores=1``); draws per chain are ceil(L / chains) * thin.
    alpha : float, default 0.01
        Family-wise false-alarm probability of the uniformity tests over the parameters.
    test : {"ecdf", "chi2", "both"}
        Test deciding ``passed`` (both are always reported).
    n_sim : int
        Null simulations of the ECDF test.
    scheduler : distributed.Client, cluster or str, optional
        Run the replications on a Dask distributed cluster instead of local processes: a
        ``distributed.Client`` (left open), a cluster with a ``scheduler_address`` (e.g.
        ``LocalCluster``) or an address such as ``"tcp://10.0.0.5:8786"`` (see
        :func:`metapool.parallel.runner`). Every worker needs metapool installed. The ranks are
        identical to a local run with the same seed.

    Returns
    -------
    SBCResult

    Notes
    -----
    For each replication: tau ~ p(tau), beta ~ p(beta), theta_j ~ N(x_j'beta, tau^2),
    y_j ~ N(theta_j, s_j^2); fit y; the rank of each true parameter among L posterior draws,
    r = #{draws < true value}, is uniform on {0, ..., L} for every parameter if and only if the
    engine returns the correct posterior (averaged over the prior predictive) [1]_. Uniformity
    is tested per parameter with the simultaneous ECDF bands of [3]_ (statistic
    gamma = min_i 2 min(F_Bin(c_i), 1 - F_Bin(c_i - 1)), c_i = #{ranks < i}, a binomial(N,
    i/(L+1)) count under the null; p-value by simulation) or Pearson's chi-square on binned
    ranks, each at the Šidák level 1 - (1 - alpha)^(1/P) over the P parameters. A mean rank
    above 0.5 means the posterior sits below the truth on average. SBC is a test of the
    average calibration over the prior; a sensitive test needs enough replications [2]_.

    References
    ----------
    .. [1] Talts, S., Betancourt, M., Simpson, D., Vehtari, A. and Gelman, A. (2018).
       Validating Bayesian inference algorithms with simulation-based calibration.
       arXiv:1804.06788.
    .. [2] Modrák, M., Moon, A. H., Kim, S., Bürkner, P., Huurre, N., Faltejsková, K., Gelman,
       A. and Vehtari, A. (2023). Simulation-based calibration checking for Bayesian
       computation: the choice of test quantities shapes sensitivity. Bayesian Analysis.
    .. [3] Säilynoja, T., Bürkner, P.-C. and Vehtari, A. (2022). Graphical test for discrete
       uniformity and its applications in goodness-of-fit evaluation and multiple sample
       comparison. Statistics and Computing 32, 32.
    """
    from metapool import priors as P

    if engine not in ("exact", "nuts"):
        raise ValueError(f"engine must be 'exact' or 'nuts', got {engine!r}")
    if not isinstance(data_design, MetaData):
        raise TypeError("data_design must be a metapool.MetaData (its se and X are used)")
    if tau_prior is None or beta_prior is None:
        raise ValueError("SBC simulates from the prior: give proper tau_prior and beta_prior "
                         "(e.g. HalfNormalTau(10), NormalBeta(0, 20))")
    tp = P.parse_tau_prior(tau_prior).bind(data_design)
    bp = P.parse_beta_prior(beta_prior)
    for what, pr in (("tau", tp), ("beta", bp)):
        if not pr.proper:
            raise ValueError(f"SBC needs a proper {what} prior to simulate from, got {pr.spec!r}")
    ftp = tp if fit_tau_prior is None else P.parse_tau_prior(fit_tau_prior).bind(data_design)
    fbp = bp if fit_beta_prior is None else P.parse_beta_prior(fit_beta_prior)
    for name, v, low in (("n_reps", n_reps, 1), ("n_draws", n_draws, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    thin = (1 if engine == "exact" else 10) if thin is None else int(thin)
    if thin < 1:
        raise ValueError(f"thin must be >= 1, got {thin}")
    opts = dict(NUTS_DEFAULTS, **(nuts_options or {}))
    for bad in ("draws", "seed"):
        if bad in opts:
            raise ValueError(f"nuts_options may not set {bad!r} (set by n_draws, thin and seed)")

    names = _param_names(data_design)
    seeds = np.random.SeedSequence(seed).spawn(int(n_reps))
    args = (data_design, engine, tp, bp, ftp, fbp, int(n_draws), thin, float(rtol), opts)
    jobs = min(_n_jobs(n_jobs), int(n_reps))
    items = list(enumerate(seeds))
    t0 = time.perf_counter()
    with runner(jobs, scheduler) as run:   # local processes, or the Dask cluster's workers
        jobs = run.workers
        n_batches = min(len(items), jobs * 4)
        batches = [items[k::n_batches] for k in range(n_batches)]
        parts = run.map(_run_batch, batches, *args)
    results = [r for part in parts for r in part]
    wall = time.perf_counter() - t0
    results.sort(key=lambda t: t[0])
    ranks = np.vstack([r for _, r, _ in results]).astype(int)
    reps = pd.DataFrame([info for _, _, info in results], index=pd.RangeIndex(len(results), name="replication"))
    table = rank_uniformity(ranks, int(n_draws), names, alpha=alpha, test=test, n_sim=n_sim, seed=seed)
    settings = {
        "tau_prior": tp.spec, "beta_prior": bp.spec, "fit_tau_prior": ftp.spec, "fit_beta_prior": fbp.spec,
        "thin": thin, "rtol": float(rtol) if engine == "exact" else None,
        "nuts_options": opts if engine == "nuts" else None,
        "scheduler": describe_scheduler(scheduler),
    }
    return SBCResult(ranks=ranks, parameters=names, n_draws=int(n_draws), table=table, replications=reps,
                     engine=engine, alpha=float(alpha), test=test, wall_time=wall, n_jobs=jobs, seed=int(seed),
                     settings=settings)
