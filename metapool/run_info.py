"""What a NUTS run did, as one typed record: :class:`RunInfo`, read from a fit by :func:`run_info`.

Exported by :mod:`metapool.models` (``metapool.models.run_info``, ``metapool.models.RunInfo``);
it lives in the core so that readers of saved fits (validation, the CLI) need not import PyMC.

:func:`metapool.models.sample` records its run facts in the DataTree's root and posterior attrs
(plain numbers, strings and lists, so saved netCDF files keep them). Those attrs are written by
:meth:`RunInfo.to_attrs` and read back by :meth:`RunInfo.from_attrs` (through
:func:`run_info`); nothing else should spell the keys.
"""

from __future__ import annotations

import functools

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import xarray as xr

from metapool.numfmt import format_pair

__all__ = ["package_versions", "Attempt", "RunInfo", "run_info", "treedepth_hits", "MAX_TREEDEPTH"]

#: The NUTS default maximum tree depth (nutpie and PyMC): depth >= this counts as a hit when
#: the sampler does not record the flag itself.
MAX_TREEDEPTH: int = 10


@dataclass(frozen=True)
class Attempt:
    """One NUTS run of :func:`metapool.models.sample` (the first, or an automatic rerun)."""

    target_accept: float
    draws: int
    divergences: int
    r_hat_max: float


def _floats(v: Any) -> tuple[float, ...]:
    return tuple(float(x) for x in np.atleast_1d(np.asarray(v, dtype=float)).ravel()) if v is not None else ()


def _ints(v: Any) -> tuple[int, ...]:
    return tuple(int(x) for x in np.atleast_1d(np.asarray(v)).ravel()) if v is not None else ()


@dataclass(frozen=True)
class RunInfo:
    """The facts of one :func:`metapool.models.sample` call.

    Every field is None (or empty) when the DataTree does not record it (draws from the exact
    engine, or files written before the field existed).

    Attributes
    ----------
    engine : str or None
        ``"nuts"`` for :func:`metapool.models.sample`.
    sampler : str or None
        ``"nutpie"`` or ``"pymc"``.
    parameterization, tau_prior, beta_prior : str or None
        The model (spec strings of the priors).
    x_new : tuple of float or None
        Covariates of ``theta_new``.
    seed : int or None
        The seed given (None when it was not an int).
    chains, tune : int or None
    draws_requested : int or None
        Draws per chain asked for.
    draws : int or None
        Draws per chain of the run kept (doubled by R-hat reruns).
    target_accept : float or None
        ``target_accept`` of the run kept.
    attempts : tuple of Attempt
        Every run, the kept one last.
    rhat_limit : float or None
        R-hat above which the draws were doubled.
    divergences : int or None
        Divergent transitions of the run kept.
    treedepth_hits : int or None
        Transitions of the run kept that hit the maximum tree depth.
    r_hat_max, ess_bulk_min : float or None
        Largest R-hat, smallest bulk ESS over every posterior variable of the run kept.
    compile_time, sampling_time, sampling_time_total, wall_time : float or None
        Seconds: model compilation (all runs), the run kept, all runs, the whole call.
    compiled : str or None
        ``"fresh"`` (compiled by this call) or ``"reused"`` (a compiled sampler from an earlier
        call on data of the same shape, :func:`metapool.models.compiled_sampler`).
    versions : tuple of (str, str)
        (package, version) of metapool, pymc, pytensor, nutpie, arviz, numpy.
    """

    engine: str | None = None
    sampler: str | None = None
    parameterization: str | None = None
    tau_prior: str | None = None
    beta_prior: str | None = None
    x_new: tuple[float, ...] | None = None
    seed: int | None = None
    chains: int | None = None
    tune: int | None = None
    draws_requested: int | None = None
    draws: int | None = None
    target_accept: float | None = None
    attempts: tuple[Attempt, ...] = ()
    rhat_limit: float | None = None
    divergences: int | None = None
    treedepth_hits: int | None = None
    r_hat_max: float | None = None
    ess_bulk_min: float | None = None
    compile_time: float | None = None
    sampling_time: float | None = None
    sampling_time_total: float | None = None
    wall_time: float | None = None
    versions: tuple[tuple[str, str], ...] = ()
    compiled: str | None = None

    # ----------------------------------------------------------------- derived facts
    @property
    def reruns(self) -> int:
        """Automatic reruns (attempts after the first)."""
        return max(len(self.attempts) - 1, 0)

    @property
    def target_accept_attempts(self) -> tuple[float, ...]:
        """``target_accept`` of every run, the kept one last."""
        return tuple(a.target_accept for a in self.attempts)

    @property
    def draws_doubled(self) -> int:
        """How many times the draws were doubled because of R-hat."""
        return sum(b.draws > a.draws for a, b in zip(self.attempts, self.attempts[1:]))

    @property
    def retry_reasons(self) -> tuple[str, ...]:
        """``("divergences",)``, ``("r_hat",)``, both or ``()``: why reruns were made."""
        out = []
        if any(a.divergences for a in self.attempts[:-1]):
            out.append("divergences")
        if self.draws_doubled:
            out.append("r_hat")
        return tuple(out)

    def reruns_text(self) -> tuple[str, ...]:
        """One line per automatic rerun, saying what changed and why.

        Examples
        --------
        >>> info = RunInfo(attempts=(Attempt(0.8, 1000, 3, 1.013), Attempt(0.95, 1000, 0, 1.013),
        ...                          Attempt(0.95, 2000, 0, 1.004)), rhat_limit=1.01)
        >>> print("\\n".join(info.reruns_text()))
        rerun 1: 3 divergences at target_accept 0.8 -> target_accept 0.95
        rerun 2: draws 1000 -> 2000 because max r_hat 1.013 > 1.01
        """
        lines = []
        for i, (a, b) in enumerate(zip(self.attempts, self.attempts[1:]), start=1):
            parts = []
            if b.target_accept != a.target_accept:
                parts.append(f"{a.divergences} divergence{'s' * (a.divergences != 1)} at target_accept "
                             f"{a.target_accept:g} -> target_accept {b.target_accept:g}")
            if b.draws != a.draws:
                why = f"draws {a.draws} -> {b.draws}"
                if self.rhat_limit is not None and math.isfinite(a.r_hat_max):
                    rh, lim = format_pair(a.r_hat_max, self.rhat_limit, 3, "f", limit_format="g")
                    why += f" because max r_hat {rh} > {lim}"
                parts.append(why)
            lines.append(f"rerun {i}: " + ("; ".join(parts) or "same settings"))
        return tuple(lines)

    def final_text(self) -> str:
        """One line on the run kept: which attempt, its target_accept and its draws.

        Examples
        --------
        >>> RunInfo(chains=4, draws=2000, draws_requested=1000, target_accept=0.95,
        ...         attempts=(Attempt(0.9, 1000, 2, 1.0), Attempt(0.95, 1000, 0, 1.02),
        ...                   Attempt(0.95, 2000, 0, 1.004))).final_text()
        'kept run 3 of 3: target_accept 0.95, 4 chains x 2000 draws (1000 requested)'
        """
        n = len(self.attempts)
        more = f" ({self.draws_requested} requested)" if self.draws_requested not in (None, self.draws) else ""
        ta = "n/a" if self.target_accept is None else f"{self.target_accept:g}"
        return f"kept run {n} of {n}: target_accept {ta}, {self.chains} chains x {self.draws} draws{more}"

    def describe(self) -> str:
        """The run in a few lines: sampler, sizes, target_accept, reruns, diagnostics, seconds."""
        lines = [f"{self.sampler or 'NUTS'} ({self.parameterization}): {self.chains} chains x {self.draws} draws"
                 + (f" ({self.draws_requested} requested)" if self.draws_requested not in (None, self.draws) else "")
                 + f", tune {self.tune}, target_accept {self.target_accept}"]
        lines += [f"  {r}" for r in self.reruns_text()]
        lines.append(f"  divergences {self.divergences}, max tree depth hits {self.treedepth_hits}, "
                     f"max r_hat {_num(self.r_hat_max, '.4f')}, min ess_bulk {_num(self.ess_bulk_min, '.0f')}")
        reused = " (reused)" if self.compiled == "reused" else ""
        lines.append(f"  seconds: compile {_num(self.compile_time, '.1f')}{reused}, sampling {_num(self.sampling_time, '.1f')}"
                     f" (all runs {_num(self.sampling_time_total, '.1f')}), whole call {_num(self.wall_time, '.1f')}")
        return "\n".join(lines)

    # ----------------------------------------------------------------- attrs
    def to_attrs(self) -> dict[str, Any]:
        """The DataTree attrs (plain numbers, strings and lists) that :meth:`from_attrs` reads back.

        Keys (as written since the first release, plus ``treedepth_hits``, ``r_hat_limit``,
        ``versions``): ``engine, nuts_sampler, parameterization, tau_prior, beta_prior, x_new,
        seed`` (-1 for None), ``draws, draws_requested, tune, chains, target_accept, retried,
        retry_reason, target_accept_attempts, draws_attempts, divergences_attempts,
        r_hat_max_attempts, r_hat_limit, divergences, treedepth_hits, r_hat_max, ess_bulk_min,
        compile_time, sampling_time, sampling_time_total, wall_time, versions, compiled``.
        """
        out: dict[str, Any] = {
            "engine": self.engine, "nuts_sampler": self.sampler, "parameterization": self.parameterization,
            "tau_prior": self.tau_prior, "beta_prior": self.beta_prior,
            "x_new": None if self.x_new is None else list(self.x_new),
            "seed": -1 if self.seed is None else int(self.seed),
            "draws": self.draws, "draws_requested": self.draws_requested, "tune": self.tune, "chains": self.chains,
            "target_accept": self.target_accept,
            "retried": int(self.reruns > 0),
            "retry_reason": ",".join(self.retry_reasons),
            "target_accept_attempts": [float(a.target_accept) for a in self.attempts],
            "draws_attempts": [int(a.draws) for a in self.attempts],
            "divergences_attempts": [int(a.divergences) for a in self.attempts],
            "r_hat_max_attempts": [float(a.r_hat_max) for a in self.attempts],
            "r_hat_limit": self.rhat_limit,
            "divergences": self.divergences, "treedepth_hits": self.treedepth_hits,
            "r_hat_max": self.r_hat_max, "ess_bulk_min": self.ess_bulk_min,
            "compile_time": self.compile_time, "sampling_time": self.sampling_time,
            "sampling_time_total": self.sampling_time_total, "wall_time": self.wall_time,
            "versions": ";".join(f"{k}={v}" for k, v in self.versions),
            "compiled": self.compiled,
        }
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> "RunInfo":
        """Read the record back from DataTree attrs (:meth:`to_attrs`); missing keys give None."""
        a = attrs

        def get(key, conv):
            v = a.get(key)
            return None if v is None else conv(v)

        tas, drs = _floats(a.get("target_accept_attempts")), _ints(a.get("draws_attempts"))
        dvs, rhs = _ints(a.get("divergences_attempts")), _floats(a.get("r_hat_max_attempts"))
        n = min(len(tas), len(drs), len(dvs))
        rhs = rhs + (math.nan,) * (n - len(rhs))
        seed = get("seed", int)
        versions = tuple(tuple(kv.split("=", 1)) for kv in str(a.get("versions", "")).split(";") if "=" in kv)
        return cls(
            engine=get("engine", str), sampler=get("nuts_sampler", str),
            parameterization=get("parameterization", str), tau_prior=get("tau_prior", str),
            beta_prior=get("beta_prior", str), x_new=None if a.get("x_new") is None else _floats(a["x_new"]),
            seed=None if seed is None or seed < 0 else seed, chains=get("chains", int), tune=get("tune", int),
            draws_requested=get("draws_requested", int), draws=get("draws", int),
            target_accept=get("target_accept", float),
            attempts=tuple(Attempt(tas[i], drs[i], dvs[i], rhs[i]) for i in range(n)),
            rhat_limit=get("r_hat_limit", float), divergences=get("divergences", int),
            treedepth_hits=get("treedepth_hits", int), r_hat_max=get("r_hat_max", float),
            ess_bulk_min=get("ess_bulk_min", float), compile_time=get("compile_time", float),
            sampling_time=get("sampling_time", float), sampling_time_total=get("sampling_time_total", float),
            wall_time=get("wall_time", float), versions=versions,  # type: ignore[arg-type]
            compiled=get("compiled", str),
        )


def _num(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def run_info(dt: xr.DataTree) -> RunInfo:
    """The run facts of a fit from :func:`metapool.models.sample`, as a :class:`RunInfo`.

    Parameters
    ----------
    dt : xarray.DataTree
        A NUTS fit (or any DataTree: fields it does not record are None). The root attrs are
        read, with the posterior's attrs filling keys the root lacks (a file that kept only
        the posterior group).

    Returns
    -------
    RunInfo
    """
    if not isinstance(dt, xr.DataTree):
        raise TypeError(f"dt must be an xarray.DataTree, got {type(dt).__name__}")
    attrs: dict[str, Any] = {}
    if "posterior" in dt.children:
        attrs.update(dt["posterior"].attrs)
    attrs.update(dt.attrs)
    return RunInfo.from_attrs(attrs)


def treedepth_hits(sample_stats: xr.Dataset, max_treedepth: int = MAX_TREEDEPTH) -> int | None:
    """Transitions that hit the maximum tree depth (None when ``sample_stats`` does not say).

    Uses the sampler's own flag (nutpie ``maxdepth_reached``, PyMC ``reached_max_treedepth``)
    and otherwise counts ``tree_depth`` / ``depth`` >= ``max_treedepth``.
    """
    for flag in ("maxdepth_reached", "reached_max_treedepth"):
        if flag in sample_stats:
            return int(np.asarray(sample_stats[flag].values, dtype=bool).sum())
    for depth in ("tree_depth", "depth"):
        if depth in sample_stats:
            return int((np.asarray(sample_stats[depth].values) >= max_treedepth).sum())
    return None


@functools.lru_cache(maxsize=None)
def package_versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(package, version) of installed packages, in order; "unknown" for one not installed.

    The one place that asks the installation which versions made a result (run attrs,
    ``metadata.json``); looked up once per process.
    """
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in names:
        try:
            out.append((name, version(name)))
        except PackageNotFoundError:
            out.append((name, "unknown"))
    return tuple(out)
