"""The jobs behind the command line, from plain arguments to typed results: load, fit, validate, demo.

Each job checks everything it was given before any heavy work, runs the engines and returns a
frozen result (tables, draws, the text lines to print, the files to write). The CLI
(:mod:`metapool.cli`) only parses arguments, prints these results, writes their files with
:func:`metapool.outputs.write_run` and chooses the exit status. Every failure a user can cause
is a :class:`~metapool.errors.InputError`.
"""

from __future__ import annotations

import functools
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from metapool import layout, outputs
from metapool.data import MetaData
from metapool.errors import InputError
from metapool.spec import ModelSpec, model_spec
from metapool.summaries import PlainTable

if TYPE_CHECKING:  # pandas is imported where it is used: `metapool --help` and argument errors do without it
    import pandas as pd

__all__ = [
    "ENGINES",
    "ENGINE_DEFAULTS",
    "NUTS_OPTIONS",
    "DEMO_DATASET",
    "DEMO_SEED",
    "FitResult",
    "ValidationResult",
    "load_data",
    "new_study",
    "check_engine_options",
    "fit",
    "nuts_fit",
    "fit_files",
    "read_newdata",
    "predict",
    "prediction_frame",
    "validate",
    "validation_file_names",
    "validation_files",
    "demo",
    "run_manifest",
]

ENGINES: tuple[str, ...] = ("exact", "nuts")
#: Draws and chains per engine: the exact engine's draws feed the coda table and figures (10,000
#: in one chain, the original analysis's Gibbs run); NUTS's are per chain.
ENGINE_DEFAULTS: Mapping[str, Mapping[str, int]] = {
    "exact": {"draws": 10_000, "chains": 1},
    "nuts": {"draws": 1000, "chains": 4, "tune": 1000},
}
#: Options that only the NUTS engine uses (an error with the exact engine).
NUTS_OPTIONS: tuple[str, ...] = ("tune", "parameterization", "sampler", "target_accept", "max_retries")
DEMO_DATASET = "seed_countries"
DEMO_SEED = 2025
#: Rows the demo prints (the original analysis's tau, mu, THETA[, 1:3] and TEj for j = 3).
DEMO_ROWS: tuple[str, ...] = ("tau", "mu", "theta[country_01]", "theta[country_02]", "theta[country_03]",
                              "theta_new", "y_pred[country_03]")


# ----------------------------------------------------------------------------- data
def _covariates_arg(text: str | Sequence[str] | None) -> str | list[str] | None:
    if text is None:
        return None
    if not isinstance(text, str):
        return list(text)
    if not text.strip():
        return None
    if "~" in text:
        return text
    return [c.strip() for c in text.split(",") if c.strip()]


def load_data(source: str | Path, *, effect: str | None = None, se: str | None = None,
              variance: str | None = None, label: str | None = None,
              covariates: str | Sequence[str] | None = None, measure: str | None = None,
              raw_columns: Mapping[str, str] | None = None, sep: str | None = None,
              encoding: str | None = None) -> MetaData:
    """The studies named by ``source``: a CSV file, or a bundled dataset's name.

    Parameters
    ----------
    source : str or path
        A CSV file with one row per study, or a name from :func:`metapool.datasets.list_datasets`.
    effect, se, variance, label : str, optional
        Columns of a CSV file (effects; standard errors or variances; study labels).
    covariates : str or list of str, optional
        A formula (``"~ ablat"``) or comma-separated numeric columns; for CSV files and for
        datasets that have covariates (bcg).
    measure : str, optional
        An effect-size measure of :mod:`metapool.effects` (``OR``, ``RR``, ``RD``, ``MD``,
        ``SMD``, ``ZCOR``) computed from the raw columns ``raw_columns`` (metafor's roles to
        column names, e.g. ``{"ai": "tpos", "bi": "tneg", "ci": "cpos", "di": "cneg"}``), instead
        of ``effect`` and ``se``.
    sep, encoding : str, optional
        The CSV file's separator and encoding (detected when not given; see :func:`metapool.io.sniff`).

    Returns
    -------
    MetaData
        Read by :func:`metapool.read_csv` or :func:`metapool.datasets.load`.

    Raises
    ------
    InputError
        Unknown file or dataset, missing column options, or any bad value (from the reader).
    """
    from metapool import datasets

    src = str(source)
    path = Path(src)
    cov = _covariates_arg(covariates)
    if measure is not None and (effect or se or variance):
        raise InputError("--measure computes the effects and their variances from raw columns: leave out "
                         "--effect, --se and --variance")
    if path.is_file():
        from metapool import io

        if measure is not None:
            from metapool import effects

            if not raw_columns:
                raise InputError(f"--measure {measure} needs the raw columns: --counts, --events, --means or --cor")
            table = io.read_table(path, label=label, sep=sep, encoding=encoding)
            return effects.to_metadata(measure, table, label=label, covariates=cov, name=path.name, **raw_columns)
        if not effect:
            raise InputError(f"{path} is a CSV file: name its effect column with --effect COL")
        if not (se or variance):
            raise InputError(f"{path} is a CSV file: name its standard errors with --se COL or its "
                             "variances with --variance COL")
        return io.read_csv(path, effect=effect, se=se, variance=variance, label=label, covariates=cov,
                           sep=sep, encoding=encoding)
    if raw_columns or sep or encoding:
        raise InputError("--counts, --events, --means, --cor, --sep and --encoding apply to CSV files")
    names = list(datasets.dataset_names())
    if src not in names:
        if path.exists():
            raise InputError(f"{src} is not a file")
        raise InputError(f"no such file or bundled dataset: {src!r} (datasets: {', '.join(names)})")
    given = [opt for opt, v in (("--effect", effect), ("--se", se), ("--variance", variance), ("--label", label))
             if v]
    if given:
        raise InputError(f"{', '.join(given)} {'apply' if len(given) > 1 else 'applies'} to CSV files; the "
                         f"bundled dataset {src!r} names its own columns")
    kwargs: dict[str, Any] = {} if measure is None else {"measure": measure}
    if measure is not None and not datasets.has_option(src, "measure"):
        raise InputError(f"the bundled dataset {src!r} has no raw counts or means: --measure applies to CSV files "
                         "and to " + ", ".join(n for n in names if datasets.has_option(n, "measure")))
    if cov is None:
        return datasets.load(src, **kwargs)
    if not datasets.has_option(src, "covariates"):
        with_cov = [n for n in names if datasets.has_option(n, "covariates")]
        raise InputError(f"the bundled dataset {src!r} has no covariates; --covariates applies to CSV files "
                         f"and to {', '.join(with_cov)}")
    return datasets.load(src, covariates=cov, **kwargs)


def new_study(assignments: Sequence[tuple[str, Any]] | None) -> dict[str, Any] | None:
    """The covariates of a new study from ``NAME=VALUE`` pairs, each name at most once.

    Raises
    ------
    InputError
        A name given twice.
    """
    if not assignments:
        return None
    values: dict[str, Any] = {}
    for name, value in assignments:
        if name in values:
            raise InputError(f"--x-new {name} given twice ({values[name]!r} and {value!r})")
        values[name] = value
    return values


def check_engine_options(engine: str, given: Mapping[str, Any]) -> None:
    """Refuse options that the chosen engine would ignore.

    Parameters
    ----------
    engine : {"exact", "nuts"}
    given : mapping
        Option name (as in :data:`NUTS_OPTIONS`) to value; None means not given.

    Raises
    ------
    InputError
        An unknown engine or a NUTS option with the exact engine.
    """
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if engine == "exact":
        bad = [n for n in NUTS_OPTIONS if given.get(n) is not None]
        if bad:
            opts = ", ".join("--" + n.replace("_", "-") for n in bad)
            raise InputError(f"{opts} {'apply' if len(bad) > 1 else 'applies'} to the NUTS engine only; "
                             "add --engine nuts or leave them out")


# ----------------------------------------------------------------------------- fit
@dataclass(frozen=True)
class FitResult:
    """One fit: the model, the engine's summary table and what produced it.

    Attributes
    ----------
    spec : ModelSpec
    engine : {"exact", "nuts"}
    summary : PlainTable or pandas.DataFrame
        The summary as the engine made it (flat parameter names; MCMC columns for NUTS): the
        exact engine's is a :class:`~metapool.summaries.PlainTable`, which
        :func:`~metapool.summaries.format_table` prints without pandas.
    table : pandas.DataFrame
        The summary as a DataFrame (a property: made from ``summary`` on first use).
    exact : ExactPosterior or None
        The exact posterior (exact engine).
    draws : xarray.DataTree or None
        NUTS draws, or the exact engine's independent draws when asked for.
    seconds : float
    seed : int or None
    """

    spec: ModelSpec
    engine: str
    summary: PlainTable | pd.DataFrame
    exact: Any = None
    draws: Any = None
    seconds: float = 0.0
    seed: int | None = None

    @property
    def data(self) -> MetaData:
        return self.spec.data

    @functools.cached_property
    def table(self) -> pd.DataFrame:
        """The summary as a DataFrame (index ``parameter``)."""
        return self.summary.to_frame() if isinstance(self.summary, PlainTable) else self.summary

    def header(self) -> str:
        """The first line of the printed table: data, priors, engine."""
        engine = "exact (quadrature over tau)" if self.engine == "exact" else "NUTS (PyMC)"
        return f"{describe_model(self.spec)}; engine {engine}"

    def footer(self) -> str:
        """The last line: the exact engine's accuracy, or the NUTS run's facts."""
        if self.engine == "exact":
            return (f"Exact summaries (no Monte Carlo error; quadrature change on last refinement "
                    f"{self.exact.error_estimate:.1e}) in {self.seconds:.2f} s. "
                    "y_pred[LABEL]: posterior predictive of study LABEL's effect.")
        from metapool.models import run_info

        info = run_info(self.draws)
        more = f", {info.draws_requested} requested" if info.draws_requested not in (None, info.draws) else ""
        retried = f" (raised automatically: {', '.join(info.retry_reasons)})" if info.reruns else ""
        return (f"divergences: {info.divergences} | {info.chains} chains x {info.draws} draws (tune {info.tune}{more}), "
                f"target_accept {info.target_accept:g}{retried}, {info.parameterization}, {info.sampler} | "
                f"{self.seconds:.1f} s")

    def reruns(self) -> list[str]:
        """One line per automatic NUTS rerun (why, what changed, final draws); empty otherwise."""
        if self.engine != "nuts":
            return []
        from metapool.models import run_info

        info = run_info(self.draws)
        return [*info.reruns_text(), info.final_text()] if info.reruns else []


def check_ratio_scale(data: MetaData) -> None:
    """Raise InputError unless the effects are log odds or log risk ratios (``--transform exp``)."""
    from metapool import effects

    if not effects.is_log_scale(data.measure):
        raise InputError(f"--transform exp needs log odds or log risk ratios (--measure OR or RR); these effects "
                         f"are {data.measure or 'given directly'}")


def ratio_table(table: pd.DataFrame, data: MetaData) -> pd.DataFrame | None:
    """Quantiles and shortest intervals of the location parameters on the ratio scale (``--transform exp``).

    For effects on the log scale (``data.measure`` ``OR`` or ``RR``), exp of a quantile is the
    quantile of the ratio, and exp of the shortest interval's ends bounds an interval of the same
    probability; means and sds do not carry over (E[exp g] != exp E[g]), so they are left out.
    ``tau`` stays on the log scale. None when the measure has no back-transform.

    Raises
    ------
    InputError
        When the data's effects are not log odds or log risk ratios.
    """
    from metapool import effects

    check_ratio_scale(data)
    cols = [c for c in table.columns if c.startswith(("q", "hdi"))]
    rows = [r for r in table.index if r != "tau"]
    out = effects.back_transform(data.measure)(table.loc[rows, cols])
    out.attrs["scale"] = effects.ratio_name(data.measure)
    return out


def describe_data(data: MetaData) -> str:
    """``bcg (J = 13, coefficients Intercept, ablat)``."""
    design = "" if data.intercept_only else f", coefficients {', '.join(data.coef_names)}"
    return f"{data.name or 'data'} (J = {data.J}{design})"


def describe_model(spec: ModelSpec) -> str:
    """Data and priors in one line, as every command's output starts; for a meta-regression also
    the covariates of the new study (``theta_new``)."""
    new = "" if spec.data.intercept_only else f"; new study: {spec.new_study_text()}"
    return (f"{describe_data(spec.data)}; tau prior {spec.tau_prior.spec}, "
            f"{spec.location} prior {spec.beta_prior.spec}{new}")


def check_draws(engine: str, draws: int | None, chains: int | None, sampling: bool = True) -> None:
    """Refuse draw counts too small for the tables (coda needs 2 draws; NUTS's R-hat 4 per chain)."""
    if not sampling:
        return
    d = ENGINE_DEFAULTS[engine]
    n, c = draws or d["draws"], chains or d["chains"]
    if engine == "exact" and n * c < 2:
        raise InputError(f"--draws {n} with --chains {c}: the coda table needs at least 2 draws")
    if engine == "nuts" and n < 4:
        raise InputError(f"--draws {n}: NUTS diagnostics (split R-hat, ESS) need at least 4 draws per chain")


def nuts_fit(spec: ModelSpec, *, draws: int | None = None, chains: int | None = None, tune: int | None = None,
             seed: int | None = None, sampler: str | None = None, target_accept: float | None = None,
             max_retries: int | None = None) -> Any:
    """Sample ``spec`` with NUTS (:func:`metapool.models.sample`) with the workflow's defaults.

    Returns
    -------
    xarray.DataTree
    """
    from metapool import models
    from metapool.checks import require_memory

    d = ENGINE_DEFAULTS["nuts"]
    n, c, J = draws or d["draws"], chains or d["chains"], spec.data.J
    # theta, z, the log-likelihood and the predictive draws (N x J each), the coefficients and
    # the sampler statistics, kept by PyMC and again by ArviZ's DataTree.
    require_memory(2 * 8 * n * c * (4 * J + 2 * spec.data.p + 16), f"{n * c:.3g} NUTS draws ({c} chains x {n}) of "
                   f"{J} studies", "ask for fewer draws or chains")
    opts: dict[str, Any] = dict(draws=draws or d["draws"], chains=chains or d["chains"],
                                tune=d["tune"] if tune is None else tune, seed=seed,
                                nuts_sampler=sampler or "nutpie", target_accept=target_accept)
    if max_retries is not None:
        opts["max_retries"] = max_retries
    return models.sample(spec, **opts)


def fit(data: MetaData | ModelSpec, *, engine: str = "exact", tau_prior: Any = None, beta_prior: Any = None,
        x_new: Any = None, parameterization: str | None = None, draws: int | None = None,
        chains: int | None = None, tune: int | None = None, seed: int | None = None, sampler: str | None = None,
        target_accept: float | None = None, max_retries: int | None = None,
        with_draws: bool = False) -> FitResult:
    """Fit one model with one engine and summarise it.

    Parameters
    ----------
    data : MetaData or ModelSpec
    engine : {"exact", "nuts"}
    tau_prior, beta_prior, x_new, parameterization
        As :meth:`metapool.spec.ModelSpec.create`.
    draws, chains, seed
        Exact engine: the independent draws made when ``with_draws`` (default 10,000 x 1);
        NUTS: draws per chain and chains (default 1000 x 4).
    tune, sampler, target_accept, max_retries
        NUTS only (see :func:`metapool.models.sample`); an error with the exact engine.
    with_draws : bool
        Also make the exact engine's draws (for the coda table, the draws file, figures).

    Returns
    -------
    FitResult
    """
    check_engine_options(engine, dict(tune=tune, parameterization=parameterization, sampler=sampler,
                                      target_accept=target_accept, max_retries=max_retries))
    spec = model_spec(data, tau_prior, beta_prior, parameterization, x_new)
    check_draws(engine, draws, chains, with_draws or engine == "nuts")
    t0 = time.perf_counter()
    if engine == "exact":
        from metapool import analytic

        post = analytic.fit(spec)
        table = post.summary_table()
        dt = None
        if with_draws:
            d = ENGINE_DEFAULTS["exact"]
            dt = post.sample(draws=draws or d["draws"], chains=chains or d["chains"], seed=seed, prior=True)
        return FitResult(spec, "exact", table, exact=post, draws=dt, seconds=time.perf_counter() - t0, seed=seed)
    from metapool import models

    dt = nuts_fit(spec, draws=draws, chains=chains, tune=tune, seed=seed, sampler=sampler,
                  target_accept=target_accept, max_retries=max_retries)
    return FitResult(spec, "nuts", models.summarize(dt), draws=dt, seconds=time.perf_counter() - t0, seed=seed)


# ----------------------------------------------------------------------------- predictions
#: A column of a ``--predict`` file that names its rows rather than holding a covariate.
NEWDATA_LABEL = "label"


def read_newdata(path: str | Path, data: MetaData, *, sep: str | None = None,
                 encoding: str | None = None) -> pd.DataFrame:
    """The covariate rows of new studies from a CSV file (``fit --predict FILE.csv``).

    Parameters
    ----------
    path : str or path
        One row per new study; columns the covariates of the fit (``ablat``, ``alloc``; without a
        formula the coefficient names) and optionally ``label``, which names the rows.
    data : MetaData
        The fitted data: its covariate columns are checked against the file's.
    sep, encoding : str, optional
        As for the data file (detected when not given).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``label`` (or 1..G), the covariate columns only; the rows are encoded and
        checked (levels, missing values) here, so a bad file fails before any fitting.

    Raises
    ------
    InputError
        No such file, no rows, unknown or missing columns, bad values.
    """
    import pandas as pd

    from metapool import io

    p = Path(path)
    if not p.is_file():
        raise InputError(f"--predict {path}: no such file")
    table = io.read_table(p, label=NEWDATA_LABEL, sep=sep, encoding=encoding)   # labels as text, as written
    if NEWDATA_LABEL in table.columns and NEWDATA_LABEL not in _covariate_names(data):
        labels = [str(v) for v in table[NEWDATA_LABEL]]
        if len(set(labels)) != len(labels):
            raise InputError(f"--predict {path}: column {NEWDATA_LABEL!r} has duplicate labels")
        table = table.drop(columns=NEWDATA_LABEL).set_axis(pd.Index(labels, name="row"))
    else:
        table.index = pd.RangeIndex(1, len(table) + 1, name="row")
    try:
        data.design_rows(table)
    except InputError as err:
        raise InputError(f"--predict {path}: {err}") from None
    return table


def _covariate_names(data: MetaData) -> list[str]:
    return [str(c) for c in data.covariates.columns] if data.covariates is not None else list(data.coef_names)


def predict(result: FitResult, newdata: Any, seed: int | None = None) -> pd.DataFrame:
    """x'beta and a new study's theta_new at each row of ``newdata``, by the fit's engine.

    Exact engine: :meth:`metapool.analytic.ExactPosterior.predict` (exact mixtures); NUTS:
    :func:`metapool.models.predict` from the draws (seeded by ``seed``, else the fit's seed,
    else 0).

    Returns
    -------
    pandas.DataFrame
        Index ``(row, parameter)``, the summary columns (NUTS adds the MCMC columns).
    """
    if result.engine == "exact":
        return result.exact.predict(newdata)
    from metapool import models

    use = seed if seed is not None else (result.seed if result.seed is not None else 0)
    return models.predict(result.draws, result.data, newdata, seed=use)


def prediction_frame(predictions: pd.DataFrame, newdata: pd.DataFrame) -> pd.DataFrame:
    """A prediction table with each row's covariate values beside it (``predictions.csv``)."""
    import pandas as pd

    flat = predictions.reset_index()
    cov = newdata.copy()
    cov.index = pd.Index(list(newdata.index), dtype=object, name="row")
    cov = cov.reset_index()
    cov["row"] = cov["row"].astype(object)
    flat["row"] = flat["row"].astype(object)
    merged = flat.merge(cov, on="row", how="left", sort=False)
    first = ["row", "parameter", *[c for c in cov.columns if c != "row"]]
    return merged[first + [c for c in merged.columns if c not in first]]


def predictive_studies(data: MetaData, requested: Sequence[str] | None) -> list[str]:
    """Studies for the predictive figures: those requested (checked), else the third, as in the original."""
    if requested:
        unknown = [s for s in requested if s not in data.labels]
        if unknown:
            raise InputError(f"--study {unknown[0]!r}: no such study label (labels: {', '.join(data.labels[:6])}"
                             f"{' ...' if data.J > 6 else ''})")
        return list(dict.fromkeys(requested))
    return [data.labels[2 if data.J >= 3 else 0]]


def fit_file_names(engine: str, data: MetaData, studies: Sequence[str] | None = None,
                   predictions: bool = False) -> dict[str, str]:
    """Every file ``fit --out`` writes (besides ``metadata.json``), by role, before fitting.

    Predictive figures are keyed ``predictive:LABEL``. Both engines write the tau density, the
    shrinkage, forest and predictive figures, the funnel plot (intercept-only designs) or the
    regression bubble plot (meta-regressions) and the report ``index.html``; the exact engine
    also the conditional means.
    """
    from metapool.report import REPORT

    names = {"summary_csv": "summary.csv", "summary_json": "summary.json", "draws": outputs.draws_file_name(),
             "draws_csv": outputs.FLAT_DRAWS, "coda": "coda.csv", "tau_density": "tau_density.png"}
    if predictions:
        names["predictions"] = "predictions.csv"
    if engine == "exact":
        names["conditional_means"] = "conditional_means.png"
    names.update(shrinkage="shrinkage.png", forest="forest.png")
    if data.intercept_only:
        names["funnel"] = "funnel.png"
    else:
        names["regression"] = "regression.png"
    pred = safe_names_for(predictive_studies(data, studies))
    names.update({f"predictive:{k}": v for k, v in pred.items()})
    names["report"] = REPORT
    return names


def safe_names_for(studies: Sequence[str]) -> dict[str, str]:
    """File names of the predictive figures, unique and portable (``predictive_<label>.png``)."""
    return outputs.safe_names(studies, prefix="predictive_", suffix=".png")


#: Captions of the figures in the report, by role.
FIGURE_CAPTIONS: Mapping[str, str] = {
    "tau_density": "Posterior density of tau (between-study sd) with its prior (dashed) and 95% shortest interval.",
    "conditional_means": "E[theta_j | tau, y] against tau: how each study's effect moves from the pooled "
                         "estimate to its own y_j as tau grows.",
    "shrinkage": "Shrinkage (BDA3 Fig. 5.6): conditional means +- 1 sd against tau, the tau posterior underneath.",
    "forest": "Forest plot: observed effects +- 1.96 s_j, shrunken study effects, pooled effect and prediction "
              "interval for a new study.",
    "funnel": "Contour-enhanced funnel plot (shaded: two-sided significance at 10%, 5%, 1%).",
    "regression": "Meta-regression: effects against the first covariate (area by precision), posterior mean "
                  "with credible and prediction bands.",
    "compare_densities": "Exact posterior densities against NUTS kernel density estimates.",
}


def _figure_makers(fit_obj: Any, data: MetaData, names: Mapping[str, str]) -> dict[str, Any]:
    """Role -> function making the figure, for the figure roles in ``names``."""
    from metapool import plots

    makers = {
        "tau_density": lambda: plots.plot_tau_density(fit_obj),
        "conditional_means": lambda: plots.plot_conditional_means(fit_obj),
        "shrinkage": lambda: plots.plot_shrinkage(fit_obj),
        "forest": lambda: plots.plot_forest(fit_obj, measure=data.measure),
        "funnel": lambda: plots.plot_funnel(fit_obj),
        "regression": lambda: plots.plot_regression(fit_obj),
    }
    out = {k: makers[k] for k in names if k in makers}
    for key in names:
        if key.startswith("predictive:"):
            label = key.split(":", 1)[1]
            out[key] = lambda label=label: plots.plot_predictive(fit_obj, label)
    return out


def _caption(key: str) -> str:
    if key.startswith("predictive:"):
        label = key.split(":", 1)[1]
        return (f"Posterior predictive of study {label}'s effect: mean (red), 2.5% and 97.5% quantiles (green), "
                "observed (dotted); the original analysis's histogram.")
    return FIGURE_CAPTIONS.get(key, key)


def _main_rows(table: pd.DataFrame, data: MetaData) -> pd.DataFrame:
    rows = [r for r in ("tau", *layout.coef_parameters(data), "theta_new") if r in table.index]
    return table.loc[rows]


def _run_facts(result: FitResult) -> list[str]:
    """The footer and rerun lines of a fit, for the report; none while ``metapool.models.run_info`` is absent."""
    try:
        return [result.footer(), *result.reruns()]
    except ImportError:  # an older metapool.models without run_info
        return []


def fit_files(result: FitResult, studies: Sequence[str] | None = None,
              command: str | None = None, predictions: pd.DataFrame | None = None) -> list[outputs.OutputFile]:
    """The files of ``fit --out``: summary (CSV, JSON), draws, the coda table, figures, ``index.html``.

    Parameters
    ----------
    result : FitResult
        With draws (``fit(..., with_draws=True)`` for the exact engine).
    studies : sequence of str, optional
        Studies for the predictive figures (default the third study).
    command : str, optional
        The command line, shown in the report.
    predictions : pandas.DataFrame, optional
        A :func:`prediction_frame` to write as ``predictions.csv``.
    """
    from metapool import report
    from metapool.summaries import coda_table

    if result.draws is None:
        raise ValueError("fit_files needs the fit's draws: fit(..., with_draws=True)")
    names = fit_file_names(result.engine, result.data, studies, predictions is not None)
    dt = result.draws
    files = [
        outputs.OutputFile(names["summary_csv"], outputs.write_table(result.table)),
        outputs.OutputFile(names["summary_json"], outputs.write_table(result.table, "json")),
        outputs.OutputFile(names["draws"], lambda p: outputs.write_draws(dt, p)),
        outputs.OutputFile(names["coda"], outputs.write_table(coda_table(dt))),
    ]
    if names["draws_csv"] != names["draws"]:
        files.append(outputs.OutputFile(names["draws_csv"], lambda p: outputs.write_draws(dt, p)))
    if predictions is not None:
        files.append(outputs.OutputFile(names["predictions"], lambda p: predictions.to_csv(p, index=False)))
    fit_obj = result.exact if result.engine == "exact" else dt
    makers = _figure_makers(fit_obj, result.data, names)
    files += [outputs.OutputFile(names[k], outputs.write_figure(make)) for k, make in makers.items()]
    all_names = [*names.values(), outputs.MANIFEST]
    figures = [report.ReportFigure(names[k], _caption(k)) for k in makers]
    tables = [report.ReportTable("Posterior summary: tau, coefficients, new study", _main_rows(result.table, result.data),
                                 file=names["summary_csv"]),
              report.ReportTable("Posterior summary: every parameter", result.table, file=names["summary_csv"],
                                 collapsed=True)]
    notes = [result.header(), *_run_facts(result)]
    title = f"metapool fit: {describe_data(result.data)}"
    files.append(outputs.OutputFile(names["report"], report.report_writer(
        lambda: report.render_html(title, command, result.data, tables, figures, notes, all_names))))
    return files


def _versions(engine: str) -> dict[str, str]:
    from metapool.run_info import package_versions

    extra = ("pymc", "nutpie") if engine != "exact" else ()
    return dict(package_versions(("metapool", "numpy", "scipy", "pandas", "xarray", "arviz", *extra)))


def run_manifest(argv: Sequence[str], result: FitResult | "ValidationResult",
                 studies: Sequence[str] | None = None) -> dict[str, Any]:
    """What ``metadata.json`` records besides the file list: command, versions, data, model, engine facts."""
    from metapool import __version__

    spec = result.spec
    d = spec.data
    engine = result.engine if isinstance(result, FitResult) else "exact+nuts"
    meta: dict[str, Any] = {
        "metapool_version": __version__,
        "command": shlex.join(["metapool", *argv]),
        "versions": _versions(engine),
        "engine": engine,
        "data": {"name": d.name, "J": d.J, "p": d.p, "coef_names": list(d.coef_names), "labels": list(d.labels)},
        "tau_prior": spec.tau_prior.spec,
        "beta_prior": spec.beta_prior.spec,
        "x_new": list(spec.x_new),
        "new_study": spec.new_study_text(),
        "seed": result.seed,
        "seconds": round(result.seconds, 3),
    }
    if isinstance(result, FitResult) and result.engine == "exact":
        post = result.exact
        meta["exact"] = {"quadrature_nodes": int(post.tau_nodes.size), "error_estimate": float(post.error_estimate),
                         "rtol": float(post.rtol)}
        meta["draws"] = {"draws": int(result.draws["posterior"].sizes["draw"]),
                         "chains": int(result.draws["posterior"].sizes["chain"]), "independent": True}
    if isinstance(result, FitResult):   # both engines write the predictive figures
        meta["figure_files"] = {k: v for k, v in safe_names_for(predictive_studies(d, studies)).items()}
    if result.draws is not None and result.engine != "exact":
        from metapool.models import divergences, run_info

        meta["divergences"] = divergences(result.draws)
        meta["nuts"] = run_info(result.draws).to_attrs()
    return meta


# ----------------------------------------------------------------------------- validate
@dataclass(frozen=True)
class ValidationResult:
    """NUTS against the exact posterior: the report and both fits."""

    spec: ModelSpec
    report: Any
    exact: Any
    draws: Any
    seconds: float = 0.0
    seed: int | None = None
    engine: str = field(default="exact+nuts")

    @property
    def passed(self) -> bool:
        return bool(self.report.passed)

    def header(self) -> str:
        return f"{describe_model(self.spec)}; NUTS ({self.spec.parameterization}) against the exact posterior"


def validate(data: MetaData | ModelSpec, *, tau_prior: Any = None, beta_prior: Any = None, x_new: Any = None,
             parameterization: str | None = None, draws: int | None = None, chains: int | None = None,
             tune: int | None = None, seed: int | None = None, sampler: str | None = None,
             target_accept: float | None = None, max_retries: int | None = None) -> ValidationResult:
    """Fit the exact engine and NUTS to the same model and compare them (:func:`metapool.validation.compare`).

    Returns
    -------
    ValidationResult
    """
    from metapool import analytic
    from metapool.validation import compare

    spec = model_spec(data, tau_prior, beta_prior, parameterization, x_new)
    t0 = time.perf_counter()
    post = analytic.fit(spec)
    dt = nuts_fit(spec, draws=draws, chains=chains, tune=tune, seed=seed, sampler=sampler,
                  target_accept=target_accept, max_retries=max_retries)
    return ValidationResult(spec, compare(dt, post), post, dt, time.perf_counter() - t0, seed)


def validation_file_names(data: MetaData) -> dict[str, str]:
    """Every file ``validate --out`` writes (besides ``metadata.json``), by role."""
    from metapool.report import REPORT

    return {"report_csv": "report.csv", "compare_densities": "compare_densities.png",
            "tau_density": "tau_density.png", "shrinkage": "shrinkage.png", "forest": "forest.png",
            "report": REPORT}


def validation_files(result: ValidationResult, command: str | None = None) -> list[outputs.OutputFile]:
    """``report.csv`` (the comparison table), ``compare_densities.png`` (tau and the coefficients),
    the tau density (exact with the NUTS density overlaid), the shrinkage and forest plots of the
    NUTS draws, and ``index.html``."""
    import pandas as pd

    from metapool import plots, report

    names = validation_file_names(result.spec.data)
    var_names = ("tau",) + layout.coef_parameters(result.spec.data)
    table = pd.DataFrame(result.report.table)
    data = result.spec.data
    makers = {
        "compare_densities": lambda: plots.plot_compare_densities(result.exact, result.draws, var_names=var_names),
        "tau_density": lambda: plots.plot_tau_density(result.exact, result.draws),
        "shrinkage": lambda: plots.plot_shrinkage(result.draws),
        "forest": lambda: plots.plot_forest(result.draws, measure=data.measure),
    }
    captions = {**FIGURE_CAPTIONS,
                "tau_density": "Posterior density of tau: exact (solid) with the NUTS kernel density (dash-dot), "
                               "the prior (dashed) and the exact 95% shortest interval.",
                "shrinkage": FIGURE_CAPTIONS["shrinkage"] + " From the NUTS draws (binned by tau).",
                "forest": FIGURE_CAPTIONS["forest"] + " From the NUTS draws."}
    files = [outputs.OutputFile(names["report_csv"], outputs.write_table(table))]
    files += [outputs.OutputFile(names[k], outputs.write_figure(m)) for k, m in makers.items()]
    notes = [result.header(), f"NUTS against the exact posterior: {result.report.outcome}."]
    figures = [report.ReportFigure(names[k], captions[k]) for k in makers]
    tables = [report.ReportTable("NUTS against the exact posterior", table, file=names["report_csv"],
                                 collapsed=len(table) > 40)]
    all_names = [*names.values(), outputs.MANIFEST]
    title = f"metapool validate: {describe_data(data)}"
    files.append(outputs.OutputFile(names["report"], report.report_writer(
        lambda: report.render_html(title, command, data, tables, figures, notes, all_names))))
    return files


# ----------------------------------------------------------------------------- demo
def demo(seed: int = DEMO_SEED, draws: int = 10_000, nuts: bool = True) -> list[str]:
    """The original analysis on the SIMULATED seed_countries data, as printed sections of text.

    1. the exact posterior summary of tau, mu, three thetas, theta_new and one predictive;
    2. ``summary(coda::mcmc(x))`` of ``draws`` independent exact draws, as the original printed;
    3. the NUTS-vs-exact verdict (unless ``nuts`` is False).

    Returns
    -------
    list of str
        The sections, to be printed one after another.
    """
    from metapool import analytic, datasets
    from metapool.summaries import coda_table, format_coda, format_table

    t_start = time.perf_counter()
    data = datasets.load(DEMO_DATASET)
    sections = [f"metapool demo: {DEMO_DATASET}, J = {data.J} studies. SIMULATED data: a stand-in for the "
                "original analysis's 79-country file, not real results.\n"
                "Model: y_j ~ N(theta_j, s_j^2), theta_j ~ N(mu, tau^2); flat priors on tau >= 0 and mu "
                "(the original's)."]
    t0 = time.perf_counter()
    post = analytic.fit(data)
    table = post.summary()
    sections.append(f"1. Exact posterior summary ({time.perf_counter() - t0:.2f} s; {data.J - 3} more theta rows: "
                    f"metapool fit {DEMO_DATASET})\n\n" + format_table(table.loc[list(DEMO_ROWS)]))
    t0 = time.perf_counter()
    dt = post.sample(draws=draws, chains=1, seed=seed)
    coda = coda_table(dt)
    rows = [r for r in DEMO_ROWS if r != "theta_new"]
    sections.append(f"2. summary(coda::mcmc(x)) of {draws} independent exact draws ({time.perf_counter() - t0:.2f} s), "
                    "as in the original analysis (tau, mu, THETA[, 1:3] and the predictive TEj for j = 3):\n\n"
                    + format_coda(coda.loc[rows]))
    head = "3. NUTS (PyMC, non-centred) against the exact posterior"
    if not nuts:
        sections.append(f"{head}: skipped (--skip-nuts).")
    else:
        from metapool.validation import compare

        t0 = time.perf_counter()
        report = compare(nuts_fit(post.spec, seed=seed), post)
        sections.append(f"{head} ({time.perf_counter() - t0:.1f} s): {report.outcome}\n\n"
                        + report.brief(DEMO_ROWS, more=f"metapool validate {DEMO_DATASET} --out DIR writes report.csv"))
    sections.append(f"Total {time.perf_counter() - t_start:.1f} s. Figures and full tables: "
                    f"metapool fit {DEMO_DATASET} --out DIR")
    return sections


# ----------------------------------------------------------------------------- model comparison
def heterogeneity_text(data: MetaData, method: str = "REML", level: float = 0.95, exact: Any = None) -> str:
    """The ``fit --heterogeneity`` block: Q, tau^2 with its SE and Q-profile interval, I^2, H^2, R^2,
    the pooled estimate and the prediction interval (metafor's layout), plus the exact posterior
    of I^2 when ``exact`` (an ExactPosterior) is given.
    """
    from metapool.heterogeneity import heterogeneity

    h = heterogeneity(data, method, level)
    pct = f"{100 * level:g}%"
    p = "p < .0001" if h.q_pvalue < 1e-4 else f"p = {h.q_pvalue:.4f}"
    qname = "Q" if h.p == 1 else "Q_E"
    lines = [
        f"Heterogeneity (tau^2 estimator: {h.method}; k = {h.J})",
        f"tau^2 = {h.tau2:.4f} (SE {h.tau2_se:.4f}), {pct} CI [{h.tau2_ci[0]:.4f}, {h.tau2_ci[1]:.4f}] "
        f"(Q-profile); tau = {h.tau:.4f}",
        f"I^2 = {100 * h.i2:.2f}% [{100 * h.i2_ci[0]:.2f}, {100 * h.i2_ci[1]:.2f}]   "
        f"H^2 = {h.h2:.2f} [{h.h2_ci[0]:.2f}, {h.h2_ci[1]:.2f}]",
        f"{qname}(df = {h.df}) = {h.q:.2f}, {p}",
    ]
    if h.moderators is not None:
        mp = "p < .0001" if h.moderators.pvalue < 1e-4 else f"p = {h.moderators.pvalue:.4f}"
        lines.append(f"Q_M(df = {h.moderators.df}) = {h.moderators.q:.2f}, {mp}"
                     + (f"; R^2 = {100 * h.r2:.2f}%" if h.r2 is not None else ""))
    c = h.coefficients
    for i, name in enumerate(c.names):
        label = "mu" if data.intercept_only else f"beta[{name}]"
        lines.append(f"{label} = {c.estimate[i]:.4f} (SE {c.se[i]:.4f}), {pct} CI [{c.ci_low[i]:.4f}, "
                     f"{c.ci_high[i]:.4f}]")
    pr = h.prediction
    lines.append(f"prediction interval for a new study: {pr.mean:.4f} [{pr.pi_low:.4f}, {pr.pi_high:.4f}]")
    if exact is not None:
        from metapool.analytic import heterogeneity_posterior

        t = heterogeneity_posterior(exact)
        lines.append(f"Bayesian (exact posterior, tau prior {exact.tau_prior.spec}): I^2 median "
                     f"{100 * t.at['I2', 'q50']:.2f}% [{100 * t.at['I2', 'q2.5']:.2f}, {100 * t.at['I2', 'q97.5']:.2f}]; "
                     f"tau median {t.at['tau', 'q50']:.4f} [{t.at['tau', 'q2.5']:.4f}, {t.at['tau', 'q97.5']:.4f}]")
    return "\n".join(lines)


def loo_table(result: FitResult) -> tuple[pd.DataFrame, str]:
    """The ``fit --loo`` per-study table and its headline: exact LOO (exact engine) with PSIS beside
    it when draws exist, or PSIS-LOO with Pareto k (NUTS)."""
    from metapool import analytic

    if result.engine == "exact":
        ex = analytic.loo(result.exact)
        table = ex.pointwise
        head = f"Exact leave-one-study-out: elpd_loo = {ex.elpd:.3f} (SE {ex.se:.3f})"
        if result.draws is not None and "log_likelihood" in result.draws.children:
            ps = _quiet_psis(result.draws)
            table = table.join(analytic.compare_psis(ex, ps)[["elpd_psis", "pareto_k"]])
            head += f"; PSIS-LOO = {ps.elpd:.3f} (SE {ps.se:.3f})"
        return table, head
    ps = _quiet_psis(result.draws)
    return ps.pointwise, f"PSIS leave-one-study-out: elpd_loo = {ps.elpd:.3f} (SE {ps.se:.3f}), p_loo = {ps.p_loo:.2f}"


def _quiet_psis(dt: Any):
    import warnings

    from metapool import analytic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return analytic.psis_loo(dt)


def sensitivity_table(spec: ModelSpec, priors: str | Sequence[str]) -> pd.DataFrame:
    """``fit --sensitivity SPEC,SPEC``: exact summaries of tau, mu / beta, theta_new per tau prior."""
    from metapool import analytic

    items = [s.strip() for s in priors.split(",")] if isinstance(priors, str) else list(priors)
    items = [s for s in items if s]
    if not items:
        raise InputError("--sensitivity needs at least one tau prior, e.g. halfnormal:0.5,halfcauchy:0.5")
    return analytic.sensitivity(spec.data, items, spec.beta_prior, x_new=np.asarray(spec.x_new))


@dataclass(frozen=True)
class ComparisonResult:
    """``metapool compare``: the comparison table and, with proper priors, model probabilities."""

    table: pd.DataFrame
    probabilities: pd.DataFrame | None
    bayes_note: str
    seconds: float


def comparison_files(res: ComparisonResult, data: MetaData, argv: Sequence[str]) -> tuple[list[outputs.OutputFile],
                                                                                             dict[str, Any]]:
    """The files of ``compare --out`` and its manifest: ``comparison.csv`` / ``.json``, the model
    probabilities (with proper priors), ``comparison.png`` and ``index.html``."""
    from metapool import __version__, plots, report

    table = res.table
    files = [outputs.OutputFile("comparison.csv", outputs.write_table(table)),
             outputs.OutputFile("comparison.json", outputs.write_json(outputs.table_records(table)))]
    tables = [report.ReportTable("Leave-one-study-out comparison", table, file="comparison.csv")]
    if res.probabilities is not None:
        files.append(outputs.OutputFile("model_probabilities.csv", outputs.write_table(res.probabilities)))
        tables.append(report.ReportTable("Marginal likelihoods and model probabilities", res.probabilities,
                                         file="model_probabilities.csv"))
    files.append(outputs.OutputFile("comparison.png", outputs.write_figure(lambda: plots.plot_model_comparison(table))))
    figures = [report.ReportFigure("comparison.png", "Expected log predictive density of each model (exact where "
                                   "the exact engine gives it, PSIS-LOO beside it) with +-2 standard errors.")]
    names = [f.name for f in files] + ["index.html", outputs.MANIFEST]
    notes = [res.bayes_note] if res.bayes_note else []
    command = shlex.join(["metapool", *argv])
    files.append(outputs.OutputFile("index.html", report.report_writer(
        lambda: report.render_html(f"metapool compare: {describe_data(data)}", command, data, tables, figures,
                                   notes, names))))
    manifest = {"metapool_version": __version__, "command": command, "versions": _versions("nuts"),
                "seconds": round(res.seconds, 3)}
    return files, manifest


def compare(source: str, models: str, *, tau_prior: Any = None, beta_prior: Any = None, engine: str = "exact",
            draws: int | None = None, chains: int | None = None, seed: int | None = None,
            bayes_factors: bool = False, load: Any = None) -> ComparisonResult:
    """Fit the listed models of one dataset and compare them (``metapool compare``).

    Parameters
    ----------
    source : str
        CSV path or bundled dataset name.
    models : str
        Comma-separated: ``pooled``, ``hierarchical``, ``unpooled``, formulas ``~ x``.
    tau_prior, beta_prior : prior or spec
    engine : {"exact", "nuts"}
        ``nuts`` samples the hierarchical models with NUTS (pooled and unpooled stay closed forms).
    draws, chains, seed : int, optional
    bayes_factors : bool
        Require marginal likelihoods (InputError naming the improper prior otherwise).
    load : callable, optional
        ``load(formula_or_None) -> MetaData`` (default :func:`load_data` on ``source``).
    """
    from metapool import analytic
    from metapool.comparison import build_models, compare_models, parse_models

    names = parse_models(models)
    load = load or (lambda f: load_data(source, covariates=f))
    t0 = time.perf_counter()
    fits = build_models(load(None), names, tau_prior=tau_prior, beta_prior=beta_prior, reload=load)
    if engine == "nuts":
        for name, fit_ in list(fits.items()):
            if hasattr(fit_, "tau_nodes"):
                fits[name] = nuts_fit(fit_.spec, draws=draws, chains=chains, seed=seed)
    elif engine != "exact":
        raise InputError(f"--engine must be exact or nuts, got {engine!r}")
    d = ENGINE_DEFAULTS["nuts"]
    table = compare_models(fits, draws=draws or d["draws"], chains=chains or d["chains"],
                           seed=0 if seed is None else seed)
    exact_fits = {n: f for n, f in fits.items() if not hasattr(f, "children")}
    probs, note = None, ""
    try:
        if len(exact_fits) != len(fits):
            raise InputError("marginal likelihoods need every model fitted by the exact engine (--engine exact)")
        probs = analytic.model_probabilities(exact_fits)
    except InputError as err:
        if bayes_factors:
            raise
        note = f"Bayes factors not shown: {err}"
    return ComparisonResult(table, probs, note, time.perf_counter() - t0)
