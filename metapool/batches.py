"""Batches of meta-analyses: one fit per group of a long table, one tidy summary table.

:func:`batch` (also ``metapool.batch``) splits a table with one row per study and a group
column (a review, an outcome, a database's meta-analysis id) into groups, fits each group's
hierarchical model with the exact engine or NUTS, and stacks the summaries into one table with
the columns ``group, parameter``, the summary columns, ``engine``, ``error`` and ``warning``.
A group whose data are bad (any :class:`~metapool.errors.InputError`: too few studies, a missing
standard error, an improper posterior ...) keeps one row with its message in ``error`` and the
others go on; nothing is dropped silently. Groups keep the order of their first row in the
table. The work runs in this process, on local processes or on a Dask cluster
(:mod:`metapool.parallel`); group i's NUTS seed is the i-th child of ``SeedSequence(seed)``, so
the table is the same wherever it ran. The module is called ``batches`` so that the package
attribute ``metapool.batch`` stays the function.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from metapool import layout, outputs
from metapool.data import MetaData
from metapool.errors import InputError
from metapool.parallel import Progress, contiguous_chunks, describe_scheduler, runner
from metapool.summaries import PlainTable

__all__ = ["batch", "BatchResult", "BATCH_SUMMARY", "batch_files", "batch_manifest", "TerminalProgress"]

#: The tidy table's file name in ``--out``.
BATCH_SUMMARY = "batch_summary.csv"
ENGINES: tuple[str, ...] = ("exact", "nuts")
#: NUTS defaults of a batch (per group): fewer draws than a single fit, one process per group.
NUTS_DEFAULTS: Mapping[str, int] = {"draws": 1000, "chains": 4, "tune": 1000}
#: Groups per task: enough tasks to balance the workers and show progress, few enough to keep
#: the per-task overhead (pickling, scheduling) small next to the fits.
GROUPS_PER_TASK: int = 100


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class BatchResult:
    """The fits of every group of a table.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy: one row per group and parameter (one row with ``parameter`` missing for a failed
        group), columns ``group, parameter``, the summary columns (NUTS adds ``mcse_mean,
        ess_bulk, ess_tail, r_hat``), ``engine``, ``error`` (the InputError's message, missing
        when the group fitted) and ``warning`` (the fit's warnings joined by ``"; "``, missing
        when none).
    groups : tuple
        The group values in the order of their first row.
    by : str
        The group column.
    engine : str
    seconds : float
        Wall time of the fits.
    workers : int
        Parallel slots used (processes, or the Dask cluster's worker threads).
    scheduler : str or None
        The Dask scheduler's address (None: local).
    settings : Mapping[str, object]
        Columns, priors, seed and engine options.
    """

    table: pd.DataFrame
    groups: tuple[Any, ...]
    by: str
    engine: str
    seconds: float
    workers: int
    scheduler: str | None
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> pd.DataFrame:
        """One row per failed group: ``group`` and ``error``, in group order."""
        rows = self.table.loc[self.table["error"].notna(), ["group", "error"]]
        return rows.reset_index(drop=True)

    @property
    def n_groups(self) -> int:
        """Number of groups."""
        return len(self.groups)

    @property
    def n_failed(self) -> int:
        """Number of groups that could not be fitted."""
        return int(self.table["error"].notna().sum())

    def describe(self) -> str:
        """One line: groups fitted, failed, engine, time and where it ran."""
        where = (f"{self.workers} Dask worker(s) at {self.scheduler}" if self.scheduler
                 else f"{self.workers} process(es)")
        per = self.seconds / max(self.n_groups, 1) * 1e3
        return (f"{self.n_groups - self.n_failed} of {self.n_groups} groups (by {self.by!r}) fitted with the "
                f"{self.engine} engine in {self.seconds:.1f} s on {where} ({per:.1f} ms per group)"
                + (f"; {self.n_failed} failed (see the error column)" if self.n_failed else ""))

    def __repr__(self) -> str:
        return (f"BatchResult(groups={self.n_groups}, failed={self.n_failed}, engine={self.engine!r}, "
                f"rows={len(self.table)})")


# ----------------------------------------------------------------------------- the work in a worker
@dataclass(frozen=True)
class _Job:
    """What every group's fit needs besides its rows (sent once with each task)."""

    effect: str
    se: str | None
    variance: str | None
    label: str | None
    covariates: Any
    tau_prior: Any
    beta_prior: Any
    engine: str
    rtol: float
    nuts: Mapping[str, Any]
    columns: tuple[str, ...]


class _Columns:
    """A task's data columns taken out of its frame once (``frames.column_values``), so that a
    group without covariates is built from slices of them (:meth:`MetaData._from_columns`, the
    checks and messages of :meth:`MetaData.from_dataframe`) instead of a frame of its own."""

    def __init__(self, frame: pd.DataFrame, job: _Job) -> None:
        from metapool import frames

        self.y = frames.column_values(frame, job.effect)
        self.se = None if job.se is None else frames.column_values(frame, job.se)
        self.variance = None if job.variance is None else frames.column_values(frame, job.variance)
        self.labels = None if job.label is None else frame[job.label].tolist()

    def data(self, a: int, b: int, key: Any, job: _Job) -> MetaData:
        return MetaData._from_columns(
            b - a, self.y[a:b], None if self.se is None else self.se[a:b],
            None if self.variance is None else self.variance[a:b],
            None if self.labels is None else self.labels[a:b], job.effect, job.se, job.variance, job.label,
            str(key))


def _no_covariates(covariates: Any) -> bool:
    return covariates is None or (not isinstance(covariates, str) and len(covariates) == 0)


def _fit_group(frame: pd.DataFrame | MetaData, key: Any, seed: np.random.SeedSequence, job: _Job
               ) -> PlainTable | pd.DataFrame:
    """The summary of one group (raises InputError for bad data): its rows, or its data already built;
    a plain table from the exact engine, a DataFrame from NUTS."""
    data = frame if isinstance(frame, MetaData) else MetaData.from_dataframe(
        frame, job.effect, se=job.se, variance=job.variance, label=job.label, covariates=job.covariates,
        name=str(key))
    if job.engine == "exact":
        from metapool import analytic

        # The plain table: a DataFrame per group cost about a tenth of a small group's fit.
        return analytic.fit(data, job.tau_prior, job.beta_prior, rtol=job.rtol, threads=1).summary_table()
    from metapool import models

    dt = models.sample(data, job.tau_prior, job.beta_prior, seed=int(seed.generate_state(1)[0]),
                       progressbar=False, cores=1, **job.nuts)
    return models.summarize(dt)


def _fit_chunk(task: tuple[pd.DataFrame, list[tuple[int, Any, int, int, np.random.SeedSequence]]],
               job: _Job) -> tuple[np.ndarray, list[Any], np.ndarray, dict[int, str], dict[int, str]]:
    """Fit the groups of one task: (group position per row, parameters, values, errors, warnings)."""
    frame, spans = task
    pos: list[np.ndarray] = []
    params: list[Any] = []
    blocks: list[np.ndarray] = []
    errors: dict[int, str] = {}
    warned: dict[int, str] = {}
    width = len(job.columns)
    columns = _Columns(frame, job) if _no_covariates(job.covariates) else None
    for i, key, a, b, seed in spans:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                rows = columns.data(a, b, key, job) if columns is not None else frame.iloc[a:b].reset_index(drop=True)
                table = _fit_group(rows, key, seed, job)
            except InputError as exc:
                table = None
                errors[i] = " ".join(str(exc).split())
        messages = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
        if messages:
            warned[i] = "; ".join(messages)
        if table is None:
            pos.append(np.array([i]))
            params.append(None)
            blocks.append(np.full((1, width), np.nan))
        else:
            pos.append(np.full(len(table.index), i))
            params.extend(table.index)
            blocks.append(_values(table, job.columns))
    return np.concatenate(pos), params, np.vstack(blocks), errors, warned


def _values(table: PlainTable | pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """A group's summary as floats in the batch's column order (a column it lacks: NaN)."""
    if tuple(table.columns) == columns:
        return np.asarray(table.values, dtype=float)
    frame = table.to_frame() if isinstance(table, PlainTable) else table
    return frame.reindex(columns=list(columns)).to_numpy(dtype=float)


# ----------------------------------------------------------------------------- progress
class TerminalProgress:
    """``metapool batch: 1200/10000 groups`` rewritten in place on a terminal's stderr.

    Parameters
    ----------
    stream : file, optional
        Default ``sys.stderr``.
    min_interval : float
        Seconds between redraws.
    """

    def __init__(self, stream: Any = None, min_interval: float = 0.2) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.min_interval = min_interval
        self._last = -math.inf

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < self.min_interval:
            return
        self._last = now
        end = "\n" if done >= total else ""
        self.stream.write(f"\rmetapool batch: {done}/{total} groups{end}")
        self.stream.flush()


def _progress(progress: bool | Progress | None) -> Progress | None:
    if progress is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return TerminalProgress() if isatty is not None and isatty() else None
    if progress is True:
        return TerminalProgress()
    if progress is False:
        return None
    if not callable(progress):
        raise InputError(f"progress must be True, False, None or a callable(done, total); got {progress!r}")
    return progress


# ----------------------------------------------------------------------------- the job
def _read(table: pd.DataFrame | str | os.PathLike, by: str, label: str | None) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, (str, os.PathLike)):
        from metapool.io import read_table

        text = {c: str for c in (by, label) if c is not None}    # group values and labels as written
        return read_table(table, dtype=text)
    raise InputError(f"table must be a pandas DataFrame or a CSV file path, got {type(table).__name__}")


def _check_columns(df: pd.DataFrame, by: str, effect: str | None, se: str | None, variance: str | None,
                   label: str | None) -> None:
    from metapool import frames

    if not isinstance(by, str) or not by:
        raise InputError(f"by must name the group column, got {by!r}")
    if effect is None:
        raise InputError("give the column of effects (effect=, --effect COL)")
    if (se is None) == (variance is None):
        raise InputError("give exactly one of 'se' (a column of standard errors) and "
                         "'variance' (a column of sampling variances)")
    frames.require_columns(df, [("by", by), ("effect", effect), ("se", se), ("variance", variance),
                                ("label", label)])
    if df.empty:
        raise InputError("the table has no rows (expected one row per study and a group column)")


def _missing_group_error(by: str, rows: np.ndarray) -> str:
    shown = ", ".join(str(r + 1) for r in rows[:5]) + (" ..." if rows.size > 5 else "")
    return (f"column {by!r}: {rows.size} row(s) have no group value (table rows {shown}, counted from 1 after "
            "the header); give every study a group")


def batch(
    table: pd.DataFrame | str | os.PathLike,
    by: str,
    *,
    effect: str | None = None,
    se: str | None = None,
    variance: str | None = None,
    label: str | None = None,
    covariates: str | Sequence[str] | None = None,
    tau_prior: Any = None,
    beta_prior: Any = None,
    engine: str = "exact",
    rtol: float = 1e-8,
    draws: int | None = None,
    chains: int | None = None,
    tune: int | None = None,
    seed: int | None = 0,
    n_jobs: int | None = -1,
    scheduler: Any = None,
    progress: bool | Progress | None = None,
) -> BatchResult:
    """Fit one hierarchical meta-analysis per group of a long table.

    Parameters
    ----------
    table : pandas.DataFrame or path
        One row per study; a CSV file is read by :func:`metapool.io.read_table` (the group and
        label columns as text, as written).
    by : str
        The group column: one meta-analysis per distinct value.
    effect, se, variance, label, covariates
        As :meth:`metapool.MetaData.from_dataframe`, applied to each group (labels default to
        1..J within the group; study rows in error messages count within the group).
    tau_prior, beta_prior : prior or spec string, optional
        As :func:`metapool.analytic.fit` (default flat; DuMouchel's is bound per group).
    engine : {"exact", "nuts"}
        The exact engine (``rtol``) or NUTS (``draws``, ``chains``, ``tune`` per chain; default
        1000, 4, 1000).
    rtol : float
        Exact engine tolerance.
    draws, chains, tune : int, optional
        NUTS only.
    seed : int, default 0
        Root seed: group i's NUTS seed comes from ``SeedSequence(seed).spawn(n_groups)[i]``.
    n_jobs : int, default -1
        Local worker processes (-1: all CPUs; 1: this process). Ignored with ``scheduler``.
    scheduler : distributed.Client, cluster or str, optional
        Run on a Dask distributed cluster (:func:`metapool.parallel.runner`); every worker needs
        metapool installed. The table is the same as a local run's. For the exact engine's many
        small fits, start the workers with Dask's ``distributed.nanny.pre-spawn-environ.
        MALLOC_TRIM_THRESHOLD_`` unset (null), ``distributed.worker.profile.enabled: false`` and
        longer housekeeping intervals (``benchmarks/batch.py``'s ``DASK_WORKER_CONFIG``): Dask's
        defaults (memory trimmed eagerly, so numpy's temporaries are mapped afresh; a
        stack-sampling profiler; 20 ms ticks) made them about 35 % slower here.
    progress : bool or callable, optional
        None (default): ``metapool batch: done/total groups`` on stderr when it is a terminal;
        True: always; False: never; or a callable ``progress(done, total)``.

    Returns
    -------
    BatchResult

    Raises
    ------
    InputError
        For the whole table: a missing column (the group column or a data column), no rows, an
        unknown engine or prior, options of the other engine, an unreachable scheduler. Bad data
        within a group is not raised: it is that group's ``error``. Rows without a group value
        form one failed group (its ``group`` missing).

    Notes
    -----
    Each group g is the model y_j ~ N(theta_j, s_j^2), theta_j ~ N(x_j'beta, tau^2) on its own
    rows, fitted independently of the others (no pooling across groups). The groups are split
    into tasks of about ``GROUPS_PER_TASK`` consecutive groups; the exact engine runs one thread
    per task, so the workers are the only parallelism.

    References
    ----------
    .. [1] Gelman, A., Carlin, J. B., Stern, H. S., Dunson, D. B., Vehtari, A. and Rubin, D. B.
       (2013). Bayesian Data Analysis, 3rd ed., ch. 5. CRC Press.
    """
    from metapool.priors import parse_beta_prior, parse_tau_prior

    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "exact" and any(v is not None for v in (draws, chains, tune)):
        raise InputError("draws, chains and tune are NUTS options; the exact engine's summaries need no draws")
    for name, v, low in (("draws", draws, 1), ("chains", chains, 1), ("tune", tune, 0)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low):
            raise InputError(f"{name} must be an integer >= {low}, got {v!r}")
    df = _read(table, by, label)
    _check_columns(df, by, effect, se, variance, label)
    tp = None if tau_prior is None else parse_tau_prior(tau_prior)
    bp = None if beta_prior is None else parse_beta_prior(beta_prior)
    columns = layout.SUMMARY_COLUMNS + (layout.MCMC_COLUMNS if engine == "nuts" else ())
    nuts = {k: (v if v is not None else NUTS_DEFAULTS[k]) for k, v in
            (("draws", draws), ("chains", chains), ("tune", tune))} if engine == "nuts" else {}
    job = _Job(effect, se, variance, label, covariates, tp, bp, engine, float(rtol), nuts, tuple(columns))

    codes, uniques = pd.factorize(df[by], use_na_sentinel=False)     # first-appearance order
    keys = list(uniques)
    missing = [i for i, k in enumerate(keys) if _is_missing(k)]
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(keys)))])
    seeds = np.random.SeedSequence(seed).spawn(len(keys))
    fit_groups = sorted(set(range(len(keys))) - set(missing))
    shown = _progress(progress)
    t0 = time.perf_counter()
    with runner(n_jobs, scheduler) as run:
        n_tasks = max(math.ceil(len(fit_groups) / GROUPS_PER_TASK), 4 * run.workers if run.workers > 1 else 1)
        tasks = []
        for part in contiguous_chunks(len(fit_groups), n_tasks):
            ids = [fit_groups[k] for k in part]
            rows = np.concatenate([order[bounds[i]:bounds[i + 1]] for i in ids])
            spans, start = [], 0
            for i in ids:
                n = int(bounds[i + 1] - bounds[i])
                spans.append((i, keys[i], start, start + n, seeds[i]))
                start += n
            tasks.append((df.iloc[rows], spans))
        sizes = [len(t[1]) for t in tasks]
        done = [0]

        def tick(k: int) -> None:
            done[0] += sizes[k]
            if shown is not None:
                shown(done[0], len(fit_groups))

        parts = run.map(_fit_chunk, tasks, job, progress=tick if shown is not None else None)
        workers = run.workers
    seconds = time.perf_counter() - t0
    for i in missing:
        rows = np.flatnonzero(codes == i)
        parts.append((np.array([i]), [None], np.full((1, len(columns)), np.nan),
                      {i: _missing_group_error(by, rows)}, {}))
    out = _assemble(parts, keys, columns, engine)
    settings = {"effect": effect, "se": se, "variance": variance, "label": label, "covariates": covariates,
                "tau_prior": tp.spec if tp is not None else "flat", "beta_prior": bp.spec if bp is not None else "flat",
                "seed": seed, "rtol": float(rtol) if engine == "exact" else None, "nuts": dict(nuts) or None}
    return BatchResult(table=out, groups=tuple(keys), by=by, engine=engine, seconds=seconds, workers=workers,
                       scheduler=describe_scheduler(scheduler), settings=settings)


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _assemble(parts: list, keys: list[Any], columns: Sequence[str], engine: str) -> pd.DataFrame:
    """Stack the tasks' blocks in group order into the tidy table."""
    pos = np.concatenate([p[0] for p in parts])
    params = np.asarray([x for p in parts for x in p[1]], dtype=object)
    values = np.vstack([p[2] for p in parts])
    errors = {i: m for p in parts for i, m in p[3].items()}
    warned = {i: m for p in parts for i, m in p[4].items()}
    order = np.argsort(pos, kind="stable")                        # groups in first-appearance order
    pos, params, values = pos[order], params[order], values[order]
    key_arr = np.empty(len(keys), dtype=object)
    key_arr[:] = keys
    out = pd.DataFrame({"group": key_arr[pos], "parameter": params})
    out = pd.concat([out, pd.DataFrame(values, columns=list(columns))], axis=1)
    out["engine"] = engine
    out["error"] = pd.Series([errors.get(i) for i in pos], dtype=object)
    out["warning"] = pd.Series([warned.get(i) for i in pos], dtype=object)
    return out


# ----------------------------------------------------------------------------- files
def batch_files(result: BatchResult) -> list[outputs.OutputFile]:
    """The files of ``metapool batch --out``: the tidy table as ``batch_summary.csv``."""
    table = result.table
    return [outputs.OutputFile(BATCH_SUMMARY, lambda p: table.to_csv(p, index=False, float_format="%.10g"))]


def batch_manifest(argv: Sequence[str], result: BatchResult) -> dict[str, Any]:
    """What ``metadata.json`` records: command, versions, settings, groups, failures, time."""
    from metapool import __version__

    from metapool.run_info import package_versions

    versions = dict(package_versions(("metapool", "numpy", "scipy", "pandas", "dask", "distributed",
                                      *(("pymc", "nutpie") if result.engine == "nuts" else ()))))
    failed = result.failed
    return {
        "metapool_version": __version__,
        "command": shlex.join(["metapool", *argv]),
        "versions": versions,
        "engine": result.engine,
        "by": result.by,
        "settings": dict(result.settings),
        "groups": result.n_groups,
        "failed_groups": [{"group": g, "error": e} for g, e in zip(failed["group"], failed["error"])],
        "workers": result.workers,
        "scheduler": result.scheduler,
        "seconds": round(result.seconds, 3),
    }
