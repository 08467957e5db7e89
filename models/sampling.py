"""NUTS sampling of the hierarchical model, with automatic ``target_accept`` and the shared layout."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading
import time
import warnings
from collections import OrderedDict
from typing import Iterator, Literal, NamedTuple

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import xarray as xr
from numpy.typing import ArrayLike

from metapool.data import MetaData
from metapool.models.pymc_model import build_from_spec, data_values, set_model_data
from metapool import layout
from metapool.numfmt import format_pair
from metapool.prior_groups import add_prior_groups
from metapool.run_info import package_versions, Attempt, RunInfo, treedepth_hits
from metapool.spec import ModelSpec, model_spec
from metapool.priors import BetaPrior, TauPrior
from metapool.likelihood import check_log_likelihood, marginal_log_likelihood

__all__ = [
    "sample",
    "compiled_sampler",
    "CompiledSampler",
    "compile_key",
    "clear_compiled_cache",
    "compiled_cache_info",
    "sample_prior_predictive",
    "divergences",
    "SamplingWarning",
    "DEFAULT_TARGET_ACCEPT",
    "RETRY_TARGET_ACCEPT",
]

_log = logging.getLogger("metapool.models")

#: ``target_accept`` of the first run. Higher than the samplers' 0.8 because the flat-prior
#: posterior of ``tau`` has a heavy right tail, where even the non-centred model is funnel-shaped.
DEFAULT_TARGET_ACCEPT: float = 0.9
#: Values tried, in order, while a run still has divergent transitions.
RETRY_TARGET_ACCEPT: tuple[float, ...] = (0.95, 0.99)
#: R-hat above which :func:`sample` warns (Vehtari et al. 2021).
RHAT_LIMIT: float = 1.01

SeedLike = int | np.random.Generator | None


class SamplingWarning(UserWarning):
    """NUTS left divergent transitions or R-hat above 1.01 after the automatic retries."""


# ----------------------------------------------------------------------------- helpers


def _default_progressbar() -> bool:
    """A progress bar only in interactive use: stdout is a terminal and pytest is not running."""
    if "PYTEST_CURRENT_TEST" in os.environ:
        return False
    try:
        return bool(sys.stdout.isatty())
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


def _seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**63))
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int, a numpy Generator or None, got {type(seed).__name__}")
    return np.random.SeedSequence(None if seed is None else int(seed))


def _int_seed(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1, dtype=np.uint32)[0] >> 1)  # < 2**31, fine for every backend


@contextlib.contextmanager
def _quiet_pymc(quiet: bool) -> Iterator[None]:
    """Silence PyMC's INFO chatter ("Sampling: [y]", "NUTS: [...]") when not interactive."""
    logger = logging.getLogger("pymc")
    old = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(old)


def _ladder(target_accept: float | None, max_retries: int) -> list[float]:
    first = DEFAULT_TARGET_ACCEPT if target_accept is None else float(target_accept)
    if not 0.0 < first < 1.0:
        raise ValueError(f"target_accept must be in (0, 1), got {target_accept!r}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries!r}")
    return [first] + [t for t in RETRY_TARGET_ACCEPT if t > first][: int(max_retries)]


def divergences(dt: xr.DataTree) -> int:
    """Number of divergent transitions after tuning.

    Parameters
    ----------
    dt : xarray.DataTree
        A fit from :func:`sample` (or any ArviZ DataTree).

    Returns
    -------
    int
        ``sample_stats.diverging.sum()``; 0 when there is no ``sample_stats`` group
        (independent draws from the exact engine).
    """
    if "sample_stats" not in dt.children or "diverging" not in dt["sample_stats"].data_vars:
        return 0
    return int(dt["sample_stats"]["diverging"].sum())


def _clean_sample_stats(ds: xr.Dataset) -> xr.Dataset:
    """Uniform, serialisable sample_stats: strings for object columns, ``tree_depth`` present."""
    out = ds.copy()
    for name, var in ds.data_vars.items():
        if var.dtype == object:
            vals = np.array(
                ["" if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v)
                 for v in var.values.ravel()],
                dtype=str,
            ).reshape(var.shape)
            out[name] = (var.dims, vals, var.attrs)
    if "tree_depth" not in out and "depth" in out:
        out["tree_depth"] = out["depth"]
    return out


def _max_rhat(dt: xr.DataTree) -> float:
    rhat = az.rhat(dt["posterior"].to_dataset())
    return float(max(float(rhat[v].max()) for v in rhat.data_vars))


def _versions(nuts_sampler: str) -> tuple[tuple[str, str], ...]:
    """(package, version) of the packages that made the draws."""
    names = ("metapool", "pymc", "pytensor", *(("nutpie",) if nuts_sampler == "nutpie" else ()), "arviz", "numpy")
    return tuple(v for v in package_versions(names) if v[1] != "unknown")


class _Attempt(NamedTuple):
    target_accept: float
    draws: int
    trace: xr.DataTree
    divergences: int
    r_hat_max: float
    sampling_time: float
    compile_time: float


# ----------------------------------------------------------------------------- compiled once
def _prior_key(prior) -> tuple:
    """A hashable, exact description of a bound prior (class and every parameter's bits)."""
    fields = dataclasses.fields(prior) if dataclasses.is_dataclass(prior) else ()
    vals = []
    for f in fields:
        v = getattr(prior, f.name)
        if v is None or isinstance(v, (str, bool)):
            vals.append((f.name, v))
        else:
            a = np.asarray(v, dtype=float)
            vals.append((f.name, a.shape, a.tobytes()))
    return (type(prior).__qualname__, tuple(vals), getattr(prior, "spec", None))


def compile_key(spec: ModelSpec, nuts_sampler: str = "nutpie") -> tuple:
    """What a compiled sampler depends on: (J, p), location name, priors, parameterisation, sampler.

    Two specs with the same key differ only in the model's data containers (effects, standard
    errors, design, x_new) and labels, which :meth:`CompiledSampler.bind` replaces.
    """
    data = spec.data
    return ((int(data.J), int(data.p)), spec.location, _prior_key(spec.tau_prior), _prior_key(spec.beta_prior),
            spec.parameterization, str(nuts_sampler))


class CompiledSampler:
    """A PyMC model and its compiled NUTS sampler, reusable for every dataset of one shape.

    Made by :func:`compiled_sampler` (cached per process) or directly. For nutpie the model is
    compiled once with numba (:func:`nutpie.compile_pymc_model`, the expensive step: seconds);
    :meth:`bind` swaps in another dataset's values with ``compiled.with_data`` (microseconds).
    For PyMC's own NUTS the ``pm.Model`` is kept and its data replaced with :func:`pymc.set_data`.

    Attributes
    ----------
    key : tuple
        :func:`compile_key` of the specs it serves.
    model : pymc.Model
        The model; after :meth:`bind` it holds that spec's data and labels.
    nuts_sampler : str
    compile_time : float
        Seconds spent building and compiling.
    uses : int
        Datasets bound so far.
    lock : threading.RLock
        Held by :func:`sample` while the model holds one call's data.
    """

    def __init__(self, spec: ModelSpec, nuts_sampler: str = "nutpie") -> None:
        t0 = time.perf_counter()
        self.key = compile_key(spec, nuts_sampler)
        self.nuts_sampler = str(nuts_sampler)
        self.model = build_from_spec(spec)
        self._compiled = None
        if self.nuts_sampler == "nutpie":
            import nutpie

            # Without numba fast-math: with PyTensor's default (numba__fastmath) LLVM may
            # reassociate and contract, so the log-density's rounding depends on whether its
            # kernels were compiled fresh or loaded from PyTensor's on-disk numba cache (shared by
            # every process of the user); NUTS amplifies the last bit, and the same seed gave
            # different draws depending on what had been compiled before (eight schools: mu q97.5
            # z = -6.2 against the exact posterior at seed 20250101). Without it the compiled
            # functions are IEEE-exact and the draws depend only on the seed; the cache key records
            # the flag, so fast-math kernels are never reused here.
            with pytensor.config.change_flags(numba__fastmath=False):
                self._compiled = nutpie.compile_pymc_model(self.model, backend="numba")
        self.compile_time = time.perf_counter() - t0
        self.uses = 0
        self.lock = threading.RLock()

    def bind(self, spec: ModelSpec):
        """Put ``spec``'s data into the model; return the nutpie compiled model holding it (or None).

        Raises
        ------
        ValueError
            When ``spec`` needs another compiled model (other shape, priors or parameterisation).
        """
        key = compile_key(spec, self.nuts_sampler)
        if key != self.key:
            raise ValueError("spec does not match this compiled sampler (shape, priors, parameterization "
                             "or sampler differ)")
        set_model_data(self.model, spec)
        self.uses += 1
        return None if self._compiled is None else self._compiled.with_data(**data_values(spec))

    def __repr__(self) -> str:
        (J, p), loc, *_ = self.key
        return (f"CompiledSampler({self.nuts_sampler}, J={J}, p={p}, {self.key[-2]}, "
                f"compile {self.compile_time:.1f} s, uses={self.uses})")


#: Compiled samplers kept per process (least recently used dropped first).
CACHE_SIZE: int = 16
_CACHE: "OrderedDict[tuple, CompiledSampler]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_STATS = {"hits": 0, "misses": 0}


def compiled_sampler(
    data: MetaData | ModelSpec,
    tau_prior: TauPrior | str | None = None,
    beta_prior: BetaPrior | str | None = None,
    *,
    parameterization: str | None = None,
    x_new: ArrayLike | None = None,
    nuts_sampler: Literal["nutpie", "pymc"] = "nutpie",
) -> CompiledSampler:
    """The process's compiled sampler for this model's shape, priors and parameterisation.

    Parameters
    ----------
    data, tau_prior, beta_prior, parameterization, x_new
        As :func:`sample`; only the shape of the data matters for the choice.
    nuts_sampler : {"nutpie", "pymc"}

    Returns
    -------
    CompiledSampler
        From this process's cache (at most :data:`CACHE_SIZE` entries) when one with the same
        :func:`compile_key` was made before, else compiled now and cached. :func:`sample`
        uses it; worker processes (joblib, Dask) each keep their own.

    Notes
    -----
    The model holds y, se, X and x_new in ``pm.Data`` containers; nothing else depends on the
    data, so the sampler compiled for one dataset gives, for the same seed, the same draws on
    another dataset of the same shape as a freshly compiled one (tests check it).
    """
    spec = model_spec(data, tau_prior, beta_prior, parameterization, x_new)
    key = compile_key(spec, nuts_sampler)
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None:
            _CACHE.move_to_end(key)
            _CACHE_STATS["hits"] += 1
            return entry
    entry = CompiledSampler(spec, nuts_sampler)
    with _CACHE_LOCK:
        _CACHE_STATS["misses"] += 1
        entry = _CACHE.setdefault(key, entry)
        _CACHE.move_to_end(key)
        while len(_CACHE) > max(int(CACHE_SIZE), 0):
            _CACHE.popitem(last=False)
    return entry


def clear_compiled_cache() -> None:
    """Forget every compiled sampler of this process (and reset :func:`compiled_cache_info`)."""
    with _CACHE_LOCK:
        _CACHE.clear()
        _CACHE_STATS.update(hits=0, misses=0)


def compiled_cache_info() -> dict[str, int]:
    """``{"hits", "misses", "size"}`` of this process's compiled-sampler cache."""
    with _CACHE_LOCK:
        return {**_CACHE_STATS, "size": len(_CACHE)}


def _nutpie_runner(compiled, tune, chains, cores, seed, progressbar):
    import nutpie

    def run(target_accept: float, draws: int) -> tuple[xr.DataTree, float, float]:
        t1 = time.perf_counter()
        trace = nutpie.sample(
            compiled, draws=draws, tune=max(tune, 1), chains=chains, cores=cores, seed=seed,
            save_warmup=False, progress_bar=progressbar, target_accept=target_accept,
        )
        return trace, time.perf_counter() - t1, 0.0

    return run


def _pymc_runner(model, tune, chains, cores, seed, progressbar):
    def run(target_accept: float, draws: int) -> tuple[xr.DataTree, float, float]:
        t1 = time.perf_counter()
        trace = pm.sample(
            draws=draws, tune=tune, chains=chains, cores=cores, random_seed=seed,
            nuts_sampler="pymc", target_accept=target_accept, progressbar=progressbar,
            quiet=not progressbar, compute_convergence_checks=False, model=model,
        )
        wall = time.perf_counter() - t1
        t_sample = float(trace["posterior"].attrs.get("sampling_time", wall))
        return trace, t_sample, max(wall - t_sample, 0.0)

    return run


def _relabel(dt: xr.DataTree, spec: ModelSpec) -> xr.DataTree:
    """Study and coefficient labels of ``spec`` on every group (a reused sampler keeps its first labels)."""
    coords = {k: np.asarray(v, dtype=object) for k, v in spec.coords.items()}
    for node in dt.subtree:
        ds = node.to_dataset(inherit=False)
        want = {k: v for k, v in coords.items() if k in ds.dims}
        if want and any(k not in ds.coords or not np.array_equal(ds[k].values, v) for k, v in want.items()):
            node.dataset = ds.assign_coords(want)
    return dt


def _posterior_predictive(dt: xr.DataTree, spec: ModelSpec, seed: int) -> xr.Dataset:
    """y_rep ~ N(theta, se^2) per draw: the ``posterior_predictive`` group (normals from ``seed``)."""
    theta = dt["posterior"]["theta"].transpose("chain", "draw", "study")
    rng = np.random.default_rng(seed)
    y_rep = theta.values + np.asarray(spec.data.se, dtype=float) * rng.standard_normal(theta.shape)
    return xr.Dataset({"y": (("chain", "draw", "study"), y_rep)}, coords=theta.coords)


def _run_with_retries(run, ladder: list[float], draws: int, max_retries: int) -> list[_Attempt]:
    """Run NUTS; raise target_accept along ``ladder`` while there are divergences, and double
    the draws (at most ``max_retries`` times) while R-hat exceeds ``RHAT_LIMIT``.

    ``run(target_accept, draws)`` returns ``(trace, sampling seconds, compile seconds)``.
    """
    attempts: list[_Attempt] = []
    rung, n_draws, doublings = 0, draws, 0
    while True:
        trace, t_sample, t_compile = run(ladder[rung], n_draws)
        a = _Attempt(ladder[rung], n_draws, trace, divergences(trace), _max_rhat(trace), t_sample, t_compile)
        attempts.append(a)
        if a.divergences and rung + 1 < len(ladder):
            rung += 1
        elif a.r_hat_max > RHAT_LIMIT and doublings < max_retries:
            n_draws *= 2
            doublings += 1
        else:
            return attempts


# ----------------------------------------------------------------------------- public


def _add_log_likelihood(dt: xr.DataTree, model, spec: ModelSpec, kind: str) -> xr.DataTree:
    """The ``log_likelihood`` group: study-level (marginal) from the draws, or PyMC's conditional."""
    if kind == "conditional":
        out = pm.compute_log_likelihood(dt, model=model, progressbar=False, extend_inferencedata=True)
        dt = dt if out is None else out
    else:
        ll = marginal_log_likelihood(dt["posterior"].to_dataset(), spec.data)
        dt["log_likelihood"] = xr.DataTree(ll.to_dataset())
    dt["log_likelihood"].attrs["likelihood"] = kind
    return dt


def sample(
    data: MetaData | ModelSpec,
    tau_prior: TauPrior | str | None = None,
    beta_prior: BetaPrior | str | None = None,
    *,
    parameterization: str | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: SeedLike = None,
    nuts_sampler: Literal["nutpie", "pymc"] = "nutpie",
    target_accept: float | None = None,
    max_retries: int = 2,
    progressbar: bool | None = None,
    x_new: ArrayLike | None = None,
    cores: int | None = None,
    log_likelihood: str = "marginal",
    reuse: bool = True,
    prior: bool = True,
) -> xr.DataTree:
    """Sample the hierarchical model's posterior with NUTS.

    Parameters
    ----------
    data : MetaData or ModelSpec
        The studies, or a whole model description (:class:`metapool.spec.ModelSpec`; then
        leave out the priors and ``x_new``).
    tau_prior, beta_prior : prior or str, optional
        As in :func:`build`; default flat priors.
    parameterization : {"noncentered", "centered"}, optional
        See :func:`build`; default the spec's, or "noncentered".
    draws, tune, chains : int
        Draws kept per chain (before any automatic doubling), tuning steps per chain, chains.
    seed : int or numpy.random.Generator, optional
        Makes the whole result (NUTS, every automatic rerun and the posterior predictive
        draws) reproducible. None draws fresh entropy.
    nuts_sampler : {"nutpie", "pymc"}, default "nutpie"
        nutpie (PyMC's default NUTS backend; the model is compiled once with numba and reused
        by every rerun and, through :func:`compiled_sampler`, by every later call on data of
        the same shape) or PyMC's own NUTS.
    target_accept : float, optional
        Target acceptance of the first run; default ``DEFAULT_TARGET_ACCEPT`` (0.9).
    max_retries : int, default 2
        Automatic reruns, each kind at most this many times: while a run has divergent
        transitions, rerun with the next of ``RETRY_TARGET_ACCEPT`` (0.95, 0.99) above the
        current ``target_accept``; then, while the largest R-hat exceeds 1.01, rerun with twice
        the draws. 0 disables both (the first run is returned as is).
    progressbar : bool, optional
        Default: on only when stdout is a terminal and pytest is not running.
    x_new : array_like, optional
        Covariates of the new study (``theta_new``); default the mean row of X.
    cores : int, optional
        Chains run in parallel on this many cores (sampler default when None).
    log_likelihood : {"marginal", "conditional"}
        What ``log_likelihood["y"]`` holds: the study-level log N(y_j | x_j'beta, s_j^2 + tau^2)
        with theta_j integrated out (default; the likelihood of leaving one study out, computed
        from the draws of tau and mu / beta), or PyMC's log N(y_j | theta_j, s_j^2). Recorded
        in the group's ``likelihood`` attr (:mod:`metapool.likelihood`).
    prior : bool, default True
        Add the ``log_prior`` group (log p(tau) + log p(beta) at every draw, for ArviZ's
        power-scaling sensitivity ``psense``) and, when both priors are proper, the ``prior``
        group (as many prior draws, for ArviZ's prior-posterior plots).
    reuse : bool, default True
        Take the compiled sampler from this process's cache (:func:`compiled_sampler`: one per
        shape, priors, parameterisation and sampler), compiling only on the first call; False
        compiles a private one (the draws are the same either way for the same seed).

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (``tau``, ``mu`` or ``beta``, ``theta``, ``theta_new`` and, when
        non-centred, ``z``, ``z_new``), ``posterior_predictive`` (``y``), ``log_likelihood``
        (``y``), ``observed_data`` (``y``), ``constant_data`` (``se``, ``X``) and
        ``sample_stats`` (``diverging``, ``tree_depth``, ``energy``, ``step_size``, ...),
        with dims ``chain, draw`` first and coords ``study`` / ``coef``. The root and the
        posterior carry the same attrs (plain numbers, strings and lists, kept by netCDF
        files): the run facts of :class:`~metapool.models.RunInfo`, written by
        :meth:`RunInfo.to_attrs` and read back, typed, by :func:`metapool.models.run_info`
        (model and settings, ``target_accept`` and draws of every run and of the run kept, why
        reruns were made, divergences, max tree depth hits, max R-hat, min bulk ESS, seconds,
        package versions).

    Warns
    -----
    SamplingWarning
        When divergences remain after the last rerun, or some R-hat still exceeds 1.01.

    Notes
    -----
    NUTS [1]_ adapts its step size during tuning so that the mean acceptance statistic reaches
    ``target_accept``. A divergent transition marks a region of high curvature the step size
    cannot resolve; the chain then under-visits it and the estimates are biased. Raising
    ``target_accept`` shrinks the step and usually removes divergences at the cost of longer
    trajectories. The centred parameterisation's funnel is the classic case [2]_; the
    non-centred default still meets a milder funnel in the far tail of ``tau`` under the flat
    prior, which 0.9-0.95 resolves. Studies measured much more precisely than ``tau`` (bcg)
    make the non-centred posterior strongly correlated and lower the effective sample size;
    if R-hat then exceeds 1.01 [3]_ the run is repeated with twice the draws (with a fixed
    seed nutpie reproduces the same warm-up, so this extends the same chains). The
    study-level log-likelihood is computed from the draws (:mod:`metapool.likelihood`; the
    conditional one with :func:`pymc.compute_log_likelihood`) and the predictive
    y_rep ~ N(theta, s^2) with numpy from the seed's own stream (no compiled forward function,
    so a reused sampler costs only the sampling).

    References
    ----------
    .. [1] Hoffman, M. D. and Gelman, A. (2014). The No-U-Turn sampler: adaptively setting path
       lengths in Hamiltonian Monte Carlo. Journal of Machine Learning Research 15, 1593-1623.
    .. [2] Betancourt, M. and Girolami, M. (2015). Hamiltonian Monte Carlo for hierarchical
       models. In Current Trends in Bayesian Methodology with Applications, 79-101. CRC Press.
    .. [3] Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021).
       Rank-normalization, folding, and localization: an improved R-hat for assessing
       convergence of MCMC. Bayesian Analysis 16(2), 667-718.

    Examples
    --------
    >>> import metapool.datasets, metapool.models as mm
    >>> dt = mm.sample(metapool.datasets.load("eight_schools"), seed=1)  # doctest: +SKIP
    >>> mm.summarize(dt).loc["tau", ["mean", "r_hat"]]  # doctest: +SKIP
    """
    spec = model_spec(data, tau_prior, beta_prior, parameterization, x_new)
    ll_kind = check_log_likelihood(log_likelihood)
    if nuts_sampler not in ("nutpie", "pymc"):
        raise ValueError(f"nuts_sampler must be 'nutpie' or 'pymc', got {nuts_sampler!r}")
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains), ("max_retries", max_retries)):
        low = 0 if name in ("tune", "max_retries") else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    ladder = _ladder(target_accept, max_retries)
    if progressbar is None:
        progressbar = _default_progressbar()
    ss_nuts, ss_ppc = _seed_sequence(seed).spawn(2)
    nuts_seed, ppc_seed = _int_seed(ss_nuts), _int_seed(ss_ppc)

    t_start = time.perf_counter()
    sampler = (compiled_sampler(spec, nuts_sampler=nuts_sampler) if reuse
               else CompiledSampler(spec, nuts_sampler))
    with sampler.lock, _quiet_pymc(not progressbar):
        fresh = sampler.uses == 0
        compiled = sampler.bind(spec)
        model = sampler.model
        if nuts_sampler == "nutpie":
            runner = _nutpie_runner(compiled, int(tune), int(chains), cores, nuts_seed, bool(progressbar))
        else:
            runner = _pymc_runner(model, int(tune), int(chains), cores, nuts_seed, bool(progressbar))
        attempts = _run_with_retries(runner, ladder, int(draws), int(max_retries))
        kept = attempts[-1]
        dt = _relabel(kept.trace, spec)

        obs, const = layout.data_groups(spec.data)
        dt["constant_data"] = xr.DataTree(const)
        dt["observed_data"] = xr.DataTree(obs)
        dt["sample_stats"] = xr.DataTree(_clean_sample_stats(dt["sample_stats"].to_dataset()))
        dt = _add_log_likelihood(dt, model, spec, ll_kind)
        dt["posterior_predictive"] = xr.DataTree(_posterior_predictive(dt, spec, ppc_seed))
    compile_time = (sampler.compile_time if fresh else 0.0) + sum(a.compile_time for a in attempts)

    ess = az.ess(dt["posterior"].to_dataset(), method="bulk")
    described = spec.describe()
    info = RunInfo(
        engine="nuts", sampler=nuts_sampler, parameterization=str(described["parameterization"]),
        tau_prior=str(described["tau_prior"]), beta_prior=str(described["beta_prior"]),
        x_new=tuple(float(v) for v in described["x_new"]),
        seed=int(seed) if isinstance(seed, (int, np.integer)) else None,
        chains=int(chains), tune=int(tune), draws_requested=int(draws), draws=int(kept.draws),
        target_accept=float(kept.target_accept),
        attempts=tuple(Attempt(float(a.target_accept), int(a.draws), int(a.divergences), float(a.r_hat_max))
                       for a in attempts),
        rhat_limit=RHAT_LIMIT, divergences=int(kept.divergences),
        treedepth_hits=treedepth_hits(dt["sample_stats"].to_dataset()),
        r_hat_max=float(kept.r_hat_max),
        ess_bulk_min=float(min(float(ess[v].min()) for v in ess.data_vars)),
        compile_time=float(compile_time), compiled="fresh" if fresh else "reused",
        sampling_time=float(kept.sampling_time),
        sampling_time_total=float(sum(a.sampling_time for a in attempts)),
        wall_time=float(time.perf_counter() - t_start),
        versions=_versions(nuts_sampler),
    )
    attrs = info.to_attrs()
    dt.attrs.update(attrs)
    dt["posterior"].attrs.update(attrs)
    # log p(tau) + log p(beta) per draw (ArviZ's power-scaling sensitivity, psense) and, for
    # proper priors, prior draws (ArviZ's prior-posterior plots).
    if prior:
        dt = add_prior_groups(dt, spec, seed=_int_seed(_seed_sequence(seed).spawn(1)[0]))

    if len(attempts) > 1:
        _log.info("metapool: reran NUTS automatically (kept target_accept=%s, draws=%d): %s",
                  kept.target_accept, kept.draws, "; ".join(info.reruns_text()))
    if kept.divergences:
        warnings.warn(
            f"{kept.divergences} divergent transitions remain at target_accept={kept.target_accept} "
            f"({spec.parameterization} parameterisation, tau prior {spec.tau_prior.spec}); the "
            "posterior may be biased. The non-centred parameterisation, a proper tau prior or "
            "the exact engine (metapool.analytic) avoid this.",
            SamplingWarning,
            stacklevel=2,
        )
    if kept.r_hat_max > RHAT_LIMIT:
        warnings.warn(
            f"max R-hat {' > '.join(format_pair(kept.r_hat_max, RHAT_LIMIT, 3, 'f', limit_format='g'))} with "
            f"{kept.draws} draws per chain: "
            "the chains disagree; use more draws or check the model",
            SamplingWarning,
            stacklevel=2,
        )
    return dt


def sample_prior_predictive(
    data: MetaData,
    tau_prior: TauPrior | str,
    beta_prior: BetaPrior | str,
    draws: int = 500,
    seed: SeedLike = None,
    *,
    parameterization: str | None = None,
    x_new: ArrayLike | None = None,
) -> xr.DataTree:
    """Draw from the prior and the prior predictive distribution of the effects.

    Parameters
    ----------
    data : MetaData
        Supplies the design, the standard errors and the labels (the effects are not used).
    tau_prior, beta_prior : prior or str
        Both must be proper (flat priors have no draws).
    draws : int, default 500
    seed : int or numpy.random.Generator, optional
    parameterization : {"noncentered", "centered"}
    x_new : array_like, optional

    Returns
    -------
    xarray.DataTree
        Groups ``prior`` (the model variables, dims ``chain`` (1), ``draw``),
        ``prior_predictive`` (``y``), ``observed_data`` and ``constant_data``.

    Raises
    ------
    ValueError
        When either prior is improper, naming it.

    Notes
    -----
    Draws ``tau`` and ``beta`` from their priors, then ``theta_j ~ N(x_j'beta, tau^2)`` and
    ``y_j ~ N(theta_j, s_j^2)`` (ancestral sampling).
    """
    spec = model_spec(data, tau_prior, beta_prior, parameterization, x_new)
    improper = [f"{what} prior {p.spec!r}" for what, p in (("tau", spec.tau_prior), (spec.location, spec.beta_prior))
                if not p.proper]
    if improper:
        raise ValueError(
            "prior predictive sampling needs proper priors, but the "
            + " and the ".join(improper)
            + (" is" if len(improper) == 1 else " are")
            + " improper; give e.g. tau_prior='halfnormal:1' and beta_prior='normal:0,1'"
        )
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ValueError(f"draws must be an integer >= 1, got {draws!r}")
    model = build_from_spec(spec)
    with _quiet_pymc(True):
        dt = pm.sample_prior_predictive(draws=int(draws), model=model, random_seed=_int_seed(_seed_sequence(seed)))
    obs, const = layout.data_groups(spec.data)
    dt["constant_data"] = xr.DataTree(const)
    dt["observed_data"] = xr.DataTree(obs)
    attrs = {k: v for k, v in spec.describe().items() if k in ("parameterization", "tau_prior", "beta_prior", "x_new")}
    dt.attrs.update(attrs)
    return dt
