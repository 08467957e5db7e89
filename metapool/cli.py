"""The ``metapool`` command: ``fit``, ``validate``, ``demo`` and ``datasets``.

Run ``metapool --help`` (or ``python -m metapool --help``). Bad input exits with status 2 and
one line on stderr starting with ``metapool: error:``; engine warnings print as one line
``metapool: warning: ...``. Heavy libraries (the engines, PyMC, matplotlib) are imported only
by the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import re
import shlex
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from metapool import __version__
from metapool.data import MetaData

__all__ = ["main", "build_parser", "CLIError", "Fit", "load_data", "fit_from_args"]

PROG = "metapool"
#: Defaults per engine for --draws / --chains (the exact engine's draws feed the coda table
#: and figures; 10,000 in one chain is the original analysis's Gibbs run).
_DEFAULT_DRAWS = {"exact": 10_000, "nuts": 1000}
_DEFAULT_CHAINS = {"exact": 1, "nuts": 4}
_DEMO_DATASET = "seed_countries"
_DEMO_SEED = 2025
_NOISY_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


class CLIError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one ``metapool: error:`` line (status 2)."""

    def error(self, message: str):  # noqa: D102 - argparse hook
        raise CLIError(f"{message} (see '{self.prog} --help')")


# ----------------------------------------------------------------------------- argument types
def _int_at_least(low: int, what: str):
    """An argparse type: an integer >= low, else an error saying what was expected."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_nonneg_int = _int_at_least(0, "an integer >= 0")


def _assignment(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    value = value.strip()
    try:
        return name.strip(), float(value)
    except ValueError:
        return name.strip(), value  # a category level, e.g. alloc=random


# ----------------------------------------------------------------------------- parser
def _add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("data", metavar="CSV|DATASET",
                   help="a CSV file with one row per study, or a bundled dataset name (see 'metapool datasets')")
    g.add_argument("--effect", metavar="COL", help="column of effects (CSV only), e.g. X_beta")
    se = g.add_mutually_exclusive_group()
    se.add_argument("--se", metavar="COL", help="column of standard errors (CSV only), e.g. X_stderr")
    se.add_argument("--variance", metavar="COL", help="column of sampling variances (CSV only)")
    g.add_argument("--label", metavar="COL", help="column of unique study labels (CSV only; default 1..J)")
    g.add_argument("--covariates", metavar="FORMULA",
                   help="meta-regression design: a formula such as '~ ablat' or '~ 0 + alloc', or "
                        "comma-separated numeric columns; also for datasets that have covariates (bcg)")
    m = p.add_argument_group("model")
    m.add_argument("--tau-prior", metavar="SPEC", default="flat",
                   help="prior on tau: flat (default), uniform:0,UPPER, halfnormal:SCALE, halfcauchy:SCALE, "
                        "halft:NU,SCALE, exponential:SCALE, lognormal:MU,SIGMA, dumouchel")
    m.add_argument("--mu-prior", metavar="SPEC", default="flat",
                   help="prior on mu / every beta: flat (default) or normal:MEAN,SD")
    m.add_argument("--x-new", metavar="NAME=VALUE", type=_assignment, nargs="+", action="extend", default=None,
                   help="covariates of a new study for theta_new (default: the mean row of the design)")


def _add_sampling_options(p: argparse.ArgumentParser, nuts_only: bool = False) -> None:
    g = p.add_argument_group("draws and NUTS")
    g.add_argument("--draws", metavar="N", type=_positive_int,
                   help="draws per chain (exact engine: draws for the coda table and figures, default "
                        "10000; nuts: default 1000)")
    g.add_argument("--chains", metavar="N", type=_positive_int,
                   help="chains (default: exact 1, nuts 4)")
    g.add_argument("--tune", metavar="N", type=_nonneg_int, default=1000,
                   help="NUTS tuning steps per chain (default 1000)")
    g.add_argument("--seed", metavar="N", type=_nonneg_int, help="random seed (draws and NUTS)")
    g.add_argument("--parameterization", choices=("noncentered", "centered"), default="noncentered",
                   help="PyMC model parameterisation (default noncentered)")
    g.add_argument("--sampler", choices=("nutpie", "pymc"), default="nutpie",
                   help="NUTS implementation (default nutpie, PyMC's default backend)")


def build_parser() -> argparse.ArgumentParser:
    """The ``metapool`` argument parser (subcommands ``fit``, ``validate``, ``demo``, ``datasets``).

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = _Parser(
        prog=PROG,
        description="Bayesian hierarchical meta-analysis y_j ~ N(theta_j, s_j^2), theta_j ~ N(x_j'beta, tau^2): "
                    "exact posteriors by quadrature, cross-checked against PyMC/NUTS.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fit = sub.add_parser("fit", help="fit the model and print the posterior summary",
                         description="Fit the hierarchical model and print the posterior summary (exact "
                                     "by default; --engine nuts samples with PyMC/NUTS).")
    _add_data_options(fit)
    _add_sampling_options(fit)
    o = fit.add_argument_group("output")
    o.add_argument("--engine", choices=("exact", "nuts"), default="exact",
                   help="exact quadrature (default) or NUTS (adds mcse_mean, ess_bulk, ess_tail, r_hat)")
    o.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    o.add_argument("--out", metavar="DIR",
                   help="also write summary.csv/json, the draws, coda.csv, metadata.json and figures here")
    o.add_argument("--study", metavar="LABEL", action="append",
                   help="study for predictive_<LABEL>.png with --out (repeatable; default the third "
                        "study, as in the original analysis)")
    fit.set_defaults(handler=cmd_fit)

    val = sub.add_parser("validate", help="fit both engines and compare them (exit 0 if the check passes, 1 if not)",
                         description="Fit the exact and the NUTS engine and print metapool.validation's "
                                     "comparison; exit status 0 if it passed, 1 if not.")
    _add_data_options(val)
    _add_sampling_options(val)
    val.add_argument("--out", metavar="DIR", help="write report.csv and compare_densities.png here")
    val.set_defaults(handler=cmd_validate)

    demo = sub.add_parser("demo", help="the original analysis on the bundled seed_countries data (SIMULATED)",
                          description="Run the main job on seed_countries, a SIMULATED stand-in for the "
                                      "original 79-country data: exact summary, the coda table of 10,000 "
                                      "exact draws, and the NUTS-vs-exact verdict.")
    demo.add_argument("--seed", metavar="N", type=_nonneg_int, default=_DEMO_SEED,
                      help=f"random seed (default {_DEMO_SEED})")
    demo.add_argument("--draws", metavar="N", type=_positive_int, default=10_000,
                      help="exact draws for the coda table (default 10000, as the original)")
    demo.add_argument("--skip-nuts", action="store_true", help="skip the NUTS-vs-exact validation")
    demo.set_defaults(handler=cmd_demo)

    ds = sub.add_parser("datasets", help="list the bundled datasets",
                        description="List the bundled datasets (names usable wherever a CSV file is).")
    ds.set_defaults(handler=cmd_datasets)
    return parser


# ----------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``metapool`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 success; 1 a validation that did not pass; 2 bad input (one ``metapool: error:``
        line on stderr).
    """
    parser = build_parser()
    try:
        with _warnings_as_lines():
            argv = list(sys.argv[1:] if argv is None else argv)
            args = parser.parse_args(argv)
            args.argv = argv
            if args.command is None:
                parser.print_help(sys.stderr)
                return 2
            return int(args.handler(args) or 0)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BrokenPipeError:  # e.g. `metapool fit ... | head`: stop quietly
        _silence_stdout()
        return 0
    except (CLIError, ValueError, KeyError, FileNotFoundError, OSError) as exc:
        print(f"{PROG}: error: {_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (e.g. captured)
        pass


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _one_line(text: str) -> str:
    """Collapse whitespace (and drop terminal colour codes) into one line."""
    return " ".join(_ANSI.sub("", str(text)).split())


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return _one_line(exc.args[0])
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return _one_line(f"{exc.strerror}: {exc.filename}")
    return _one_line(str(exc)) or type(exc).__name__


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Show each warning once as ``metapool: warning: ...`` on stderr; hide library deprecations."""

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
        print(f"{PROG}: warning: {_one_line(message)}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        for cat in _NOISY_WARNINGS:
            warnings.simplefilter("ignore", cat)
        warnings.showwarning = show
        yield


def _info(text: str) -> None:
    print(f"{PROG}: {text}", file=sys.stderr)


# ----------------------------------------------------------------------------- data and priors
def _dataset_names() -> list[str]:
    from metapool import datasets

    return list(datasets.list_datasets()["name"])


def _covariates_arg(text: str | None) -> str | list[str] | None:
    if text is None or not text.strip():
        return None
    if "~" in text:
        return text
    return [c.strip() for c in text.split(",") if c.strip()]


def load_data(args: argparse.Namespace) -> MetaData:
    """The studies named on the command line: a CSV file or a bundled dataset.

    Parameters
    ----------
    args : argparse.Namespace
        With ``data``, ``effect``, ``se``, ``variance``, ``label``, ``covariates``.

    Returns
    -------
    MetaData

    Raises
    ------
    CLIError, ValueError, FileNotFoundError
        Unknown file or dataset, missing column options, bad values (from the reader).
    """
    src = str(args.data)
    path = Path(src)
    covariates = _covariates_arg(args.covariates)
    if path.is_file():
        return _load_csv(path, args, covariates)
    names = _dataset_names()
    if src in names:
        return _load_dataset(src, args, covariates)
    if path.exists():
        raise CLIError(f"{src} is not a file")
    raise CLIError(f"no such file or bundled dataset: {src!r} (datasets: {', '.join(names)})")


def _load_csv(path: Path, args: argparse.Namespace, covariates) -> MetaData:
    from metapool import read_csv

    if not args.effect:
        raise CLIError(f"{path} is a CSV file: name its effect column with --effect COL")
    if not (args.se or args.variance):
        raise CLIError(f"{path} is a CSV file: name its standard errors with --se COL or its variances with --variance COL")
    return read_csv(path, effect=args.effect, se=args.se, variance=args.variance, label=args.label,
                    covariates=covariates)


def _load_dataset(name: str, args: argparse.Namespace, covariates) -> MetaData:
    from metapool import datasets

    given = [opt for opt, v in (("--effect", args.effect), ("--se", args.se),
                                ("--variance", args.variance), ("--label", args.label)) if v]
    if given:
        raise CLIError(f"{', '.join(given)} {'apply' if len(given) > 1 else 'applies'} to CSV files; the bundled dataset {name!r} names its own columns")
    if covariates is None:
        return datasets.load(name)
    try:
        return datasets.load(name, covariates=covariates)
    except TypeError:
        raise CLIError(f"the bundled dataset {name!r} has no covariates; --covariates applies to CSV files "
                       "and to bcg") from None


def _priors(args: argparse.Namespace, data: MetaData):
    from metapool.priors import parse_beta_prior, parse_tau_prior

    try:
        tau_prior = parse_tau_prior(args.tau_prior)
    except ValueError as exc:
        raise CLIError(f"--tau-prior: {_message(exc)}") from None
    try:
        beta_prior = parse_beta_prior(args.mu_prior)
    except ValueError as exc:
        raise CLIError(f"--mu-prior: {_message(exc)}") from None
    return tau_prior, beta_prior


def _x_new(args: argparse.Namespace, data: MetaData) -> np.ndarray | None:
    if not args.x_new:
        return None
    values = dict(args.x_new)
    try:
        return np.asarray(data.design_row(values), dtype=float)
    except ValueError as exc:
        raise CLIError(f"--x-new: {_message(exc)}") from None


def _require_proper(data: MetaData, tau_prior, beta_prior) -> None:
    """Refuse an improper posterior before NUTS wanders off (same rule as the exact engine)."""
    from metapool.analytic import check_proper

    check_proper(data, tau_prior, beta_prior)


# ----------------------------------------------------------------------------- fitting
@dataclass
class Fit:
    """One fit made by the command: the data, priors, the summary table and what produced it."""

    data: MetaData
    tau_prior: Any
    beta_prior: Any
    engine: str
    table: pd.DataFrame
    x_new: np.ndarray | None = None
    exact: Any = None            # ExactPosterior (engine exact)
    draws: Any = None            # DataTree (nuts: the fit; exact: made on demand)
    seconds: float = 0.0

    @property
    def divergences(self) -> int | None:
        if self.engine != "nuts":
            return None
        from metapool.models import divergences

        return divergences(self.draws)


def _exact_fit(data: MetaData, tau_prior, beta_prior, x_new):
    from metapool import analytic

    return analytic.fit(data, tau_prior, beta_prior, x_new=x_new)


def _nuts_fit(data: MetaData, tau_prior, beta_prior, x_new, args: argparse.Namespace):
    _require_proper(data, tau_prior, beta_prior)
    from metapool import models

    return models.sample(
        data, tau_prior, beta_prior,
        parameterization=args.parameterization,
        draws=args.draws or _DEFAULT_DRAWS["nuts"],
        tune=args.tune,
        chains=args.chains or _DEFAULT_CHAINS["nuts"],
        seed=args.seed,
        nuts_sampler=args.sampler,
        x_new=x_new,
    )


def fit_from_args(args: argparse.Namespace) -> Fit:
    """Load the data, parse the priors and fit with ``args.engine``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``metapool fit`` arguments.

    Returns
    -------
    Fit
    """
    data = load_data(args)
    tau_prior, beta_prior = _priors(args, data)
    x_new = _x_new(args, data)
    _check_outputs(args, data)
    t0 = time.perf_counter()
    if args.engine == "exact":
        post = _exact_fit(data, tau_prior, beta_prior, x_new)
        table = post.summary()
        return Fit(data, tau_prior, beta_prior, "exact", table, x_new, exact=post,
                   seconds=time.perf_counter() - t0)
    from metapool import models

    dt = _nuts_fit(data, tau_prior, beta_prior, x_new, args)
    table = models.summarize(dt)
    return Fit(data, tau_prior, beta_prior, "nuts", table, x_new, draws=dt, seconds=time.perf_counter() - t0)


# ----------------------------------------------------------------------------- output
def _prepare_out(out: str | None) -> Path | None:
    """Create the --out directory (before any fitting, so that a bad path fails fast)."""
    if not out:
        return None
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise CLIError(f"--out {out}: exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_outputs(args: argparse.Namespace, data: MetaData) -> None:
    """Fail on a bad --out directory or --study label before fitting."""
    if getattr(args, "study", None):
        _predictive_studies(data, args.study)
    _prepare_out(getattr(args, "out", None))


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for name, row in table.iterrows():
        rec: dict[str, Any] = {"parameter": str(name)}
        for col, val in row.items():
            v = float(val)
            rec[str(col)] = None if not math.isfinite(v) else v
        out.append(rec)
    return out


def table_to_json(table: pd.DataFrame) -> str:
    """A summary as a JSON list of records ``{"parameter": ..., "mean": ..., ...}``; NaN as null."""
    return json.dumps(_records(table), indent=2)


def _location_name(data: MetaData) -> str:
    return "mu" if data.intercept_only else "beta"


def _describe_data(data: MetaData) -> str:
    design = "" if data.intercept_only else f", coefficients {', '.join(data.coef_names)}"
    return f"{data.name or 'data'} (J = {data.J}{design})"


def _header(fit: Fit) -> str:
    engine = "exact (quadrature over tau)" if fit.engine == "exact" else "NUTS (PyMC)"
    return (f"{_describe_data(fit.data)}; tau prior {fit.tau_prior.spec}, "
            f"{_location_name(fit.data)} prior {fit.beta_prior.spec}; engine {engine}")


def _footer(fit: Fit) -> str:
    if fit.engine == "exact":
        return (f"Exact summaries (no Monte Carlo error; quadrature change on last refinement "
                f"{fit.exact.error_estimate:.1e}) in {fit.seconds:.2f} s. "
                "y_pred[LABEL]: posterior predictive of study LABEL's effect.")
    a = fit.draws.attrs
    sizes = fit.draws["posterior"].sizes
    requested = a.get("draws_requested")
    more = (f", {requested} requested" if requested is not None and int(requested) != int(sizes["draw"]) else "")
    retried = f" (raised automatically: {a.get('retry_reason', 'divergences')})" if a.get("retried") else ""
    return (f"divergences: {fit.divergences} | {sizes['chain']} chains x {sizes['draw']} draws "
            f"(tune {a.get('tune')}{more}), target_accept {a.get('target_accept')}{retried}, "
            f"{a.get('parameterization')}, {a.get('nuts_sampler')} | {fit.seconds:.1f} s")


def print_fit(fit: Fit, fmt: str) -> None:
    """Print a fit's summary to stdout in ``table``, ``json`` or ``csv`` format."""
    from metapool.summaries import format_table

    if fmt == "json":
        print(table_to_json(fit.table))
    elif fmt == "csv":
        sys.stdout.write(fit.table.to_csv(index_label="parameter"))
    else:
        print(_header(fit))
        print()
        print(format_table(fit.table))
        print()
        print(_footer(fit))


def _safe_filename(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(label)).strip("_") or "study"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _netcdf_available() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("h5netcdf", "netCDF4"))


def write_draws(dt: Any, out: Path) -> str:
    """Write draws as ``draws.nc`` (NetCDF, when h5netcdf or netCDF4 is installed) or ``draws.csv``.

    Returns
    -------
    str
        The file name written. ``draws.csv`` has columns ``chain``, ``draw`` and one per flat
        parameter name (``tau``, ``mu``, ``theta[A]``, ..., ``y_pred[A]``).
    """
    if _netcdf_available():
        try:
            dt.to_netcdf(out / "draws.nc")
            return "draws.nc"
        except (ValueError, ImportError, OSError):
            (out / "draws.nc").unlink(missing_ok=True)
    from metapool.summaries import flat_draws

    flat = flat_draws(dt)
    chains, draws = next(iter(flat.values())).shape
    frame = pd.DataFrame({"chain": np.repeat(np.arange(chains), draws),
                          "draw": np.tile(np.arange(draws), chains)})
    frame = pd.concat([frame, pd.DataFrame({k: v.ravel() for k, v in flat.items()})], axis=1)
    frame.to_csv(out / "draws.csv", index=False, float_format="%.10g")
    return "draws.csv"


def _predictive_studies(data: MetaData, requested: Sequence[str] | None) -> list[str]:
    if requested:
        unknown = [s for s in requested if s not in data.labels]
        if unknown:
            raise CLIError(f"--study {unknown[0]!r}: no such study label (labels: {', '.join(data.labels[:6])}"
                           f"{' ...' if data.J > 6 else ''})")
        return list(requested)
    return [data.labels[2 if data.J >= 3 else 0]]


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _use_agg() -> None:
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")


def write_fit_outputs(fit: Fit, args: argparse.Namespace, out: Path) -> list[str]:
    """Write ``fit --out DIR``'s files and return their names."""
    from metapool.summaries import coda_table

    out.mkdir(parents=True, exist_ok=True)
    written = []
    fit.table.to_csv(out / "summary.csv", index_label="parameter")
    (out / "summary.json").write_text(table_to_json(fit.table) + "\n")
    written += ["summary.csv", "summary.json"]
    if fit.draws is None:  # exact: independent draws for the coda table and the draws file
        fit.draws = fit.exact.sample(draws=args.draws or _DEFAULT_DRAWS["exact"],
                                     chains=args.chains or _DEFAULT_CHAINS["exact"], seed=args.seed)
    written.append(write_draws(fit.draws, out))
    coda_table(fit.draws).to_csv(out / "coda.csv", index_label="parameter")
    written.append("coda.csv")
    if fit.engine == "exact":
        written += _write_figures(fit, args, out)
    meta = _metadata(fit, args, written + ["metadata.json"])
    (out / "metadata.json").write_text(json.dumps(_jsonable(meta), indent=2) + "\n")
    written.append("metadata.json")
    return written


def _write_figures(fit: Fit, args: argparse.Namespace, out: Path) -> list[str]:
    _use_agg()
    from metapool import plots

    post = fit.exact
    names = []
    _save(plots.plot_tau_density(post).figure, out / "tau_density.png")
    _save(plots.plot_conditional_means(post).figure, out / "conditional_means.png")
    names += ["tau_density.png", "conditional_means.png"]
    for label in _predictive_studies(fit.data, getattr(args, "study", None)):
        name = f"predictive_{_safe_filename(label)}.png"
        _save(plots.plot_predictive(post, label).figure, out / name)
        names.append(name)
    return names


def _metadata(fit: Fit, args: argparse.Namespace, files: list[str]) -> dict[str, Any]:
    d = fit.data
    meta: dict[str, Any] = {
        "metapool_version": __version__,
        "command": shlex.join([PROG, *getattr(args, "argv", [])]),
        "engine": fit.engine,
        "data": {"name": d.name, "J": d.J, "p": d.p, "coef_names": list(d.coef_names),
                 "labels": list(d.labels)},
        "tau_prior": fit.tau_prior.spec,
        "beta_prior": fit.beta_prior.spec,
        "x_new": None if fit.x_new is None else list(map(float, fit.x_new)),
        "seed": args.seed,
        "seconds": round(fit.seconds, 3),
        "files": files,
    }
    if fit.engine == "exact":
        meta["exact"] = {"quadrature_nodes": int(fit.exact.tau_nodes.size),
                         "error_estimate": float(fit.exact.error_estimate),
                         "rtol": float(fit.exact.rtol)}
        meta["draws"] = {"draws": int(fit.draws["posterior"].sizes["draw"]),
                         "chains": int(fit.draws["posterior"].sizes["chain"]), "independent": True}
    else:
        meta["divergences"] = fit.divergences
        meta["nuts"] = dict(fit.draws.attrs)
    return meta


# ----------------------------------------------------------------------------- commands
def cmd_fit(args: argparse.Namespace) -> int:
    """``metapool fit``: print the summary (and write ``--out``)."""
    fit = fit_from_args(args)
    print_fit(fit, args.format)
    if args.out:
        files = write_fit_outputs(fit, args, Path(args.out))
        _info(f"wrote {', '.join(files)} to {args.out}")
    return 0


def validation_compare() -> Callable[[Any, Any], Any] | None:
    """``metapool.validation.compare`` when that module provides it, else None."""
    try:
        from metapool.validation import compare
    except ImportError:
        return None
    return compare


def _coef_params(data: MetaData) -> tuple[str, ...]:
    return ("mu",) if data.intercept_only else tuple(f"beta[{c}]" for c in data.coef_names)


def run_validation(data: MetaData, tau_prior, beta_prior, x_new, args: argparse.Namespace, compare):
    """Fit both engines and compare them; returns (report, exact posterior, NUTS DataTree)."""
    post = _exact_fit(data, tau_prior, beta_prior, x_new)
    dt = _nuts_fit(data, tau_prior, beta_prior, x_new, args)
    return compare(dt, post), post, dt


def cmd_validate(args: argparse.Namespace) -> int:
    """``metapool validate``: exit 0 if the NUTS-vs-exact comparison passed, 1 if not."""
    compare = validation_compare()
    if compare is None:
        raise CLIError("metapool validate needs metapool.validation.compare, which this installation lacks")
    data = load_data(args)
    tau_prior, beta_prior = _priors(args, data)
    x_new = _x_new(args, data)
    _check_outputs(args, data)
    report, post, dt = run_validation(data, tau_prior, beta_prior, x_new, args, compare)
    print(f"{_describe_data(data)}; tau prior {tau_prior.spec}, {_location_name(data)} prior {beta_prior.spec}; "
          f"NUTS ({args.parameterization}) against the exact posterior")
    print()
    print(str(report))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(report.table).to_csv(out / "report.csv", index_label="parameter")
        _use_agg()
        from metapool import plots

        _save(plots.plot_compare_densities(post, dt, var_names=("tau",) + _coef_params(data)),
              out / "compare_densities.png")
        _info(f"wrote report.csv, compare_densities.png to {args.out}")
    return 0 if bool(report.passed) else 1


def cmd_datasets(args: argparse.Namespace) -> int:  # noqa: ARG001
    """``metapool datasets``: the bundled data."""
    from metapool import datasets

    table = datasets.list_datasets()
    print(table[["name", "J", "description"]].to_string(index=False))
    print()
    print("Sources:")
    for name, source in zip(table["name"], table["source"]):
        print(f"  {name}: {source}")
    print()
    print("Use a name wherever a CSV file goes: metapool fit eight_schools; metapool fit bcg --covariates '~ ablat'")
    return 0


# ----------------------------------------------------------------------------- demo
_DEMO_ROWS = ("tau", "mu", "theta[country_01]", "theta[country_02]", "theta[country_03]", "theta_new",
              "y_pred[country_03]")


def cmd_demo(args: argparse.Namespace) -> int:
    """``metapool demo``: the original analysis on the SIMULATED seed_countries data."""
    from metapool import analytic, datasets
    from metapool.summaries import coda_table, format_coda, format_table

    t_start = time.perf_counter()
    data = datasets.load(_DEMO_DATASET)
    print(f"metapool demo: {_DEMO_DATASET}, J = {data.J} studies. SIMULATED data: a stand-in for the "
          "original analysis's 79-country file, not real results.")
    print("Model: y_j ~ N(theta_j, s_j^2), theta_j ~ N(mu, tau^2); flat priors on tau >= 0 and mu "
          "(the original's).")
    print()
    t0 = time.perf_counter()
    post = analytic.fit(data)
    table = post.summary()
    print(f"1. Exact posterior summary ({time.perf_counter() - t0:.2f} s; "
          f"{data.J - 3} more theta rows: metapool fit {_DEMO_DATASET})")
    print()
    print(format_table(table.loc[list(_DEMO_ROWS)]))
    print()
    t0 = time.perf_counter()
    dt = post.sample(draws=args.draws, chains=1, seed=args.seed)
    coda = coda_table(dt)
    rows = [r for r in _DEMO_ROWS if r != "theta_new"]
    print(f"2. summary(coda::mcmc(x)) of {args.draws} independent exact draws "
          f"({time.perf_counter() - t0:.2f} s), as in the original analysis "
          "(tau, mu, THETA[, 1:3] and the predictive TEj for j = 3):")
    print()
    print(format_coda(coda.loc[rows]))
    print()
    print(_demo_validation(data, post, args))
    print()
    print(f"Total {time.perf_counter() - t_start:.1f} s. Figures and full tables: "
          f"metapool fit {_DEMO_DATASET} --out DIR")
    return 0


def _demo_validation(data: MetaData, post: Any, args: argparse.Namespace) -> str:
    head = "3. NUTS (PyMC, non-centred) against the exact posterior"
    if args.skip_nuts:
        return f"{head}: skipped (--skip-nuts)."
    compare = validation_compare()
    if compare is None:
        return (f"{head}: skipped; metapool.validation.compare is not available in this installation "
                "(run metapool fit seed_countries --engine nuts to sample without the verdict).")
    from metapool.priors import FlatBeta, FlatTau

    ns = argparse.Namespace(parameterization="noncentered", draws=None, tune=1000, chains=None,
                            seed=args.seed, sampler="nutpie")
    t0 = time.perf_counter()
    dt = _nuts_fit(data, FlatTau(), FlatBeta(), None, ns)
    report = compare(dt, post)
    verdict = "PASSED" if bool(report.passed) else "FAILED"
    return f"{head} ({time.perf_counter() - t0:.1f} s): {verdict}\n\n{_short_report(report)}"


def _short_report(report: Any) -> str:
    """The report's text up to its table, then the table's rows for the demo's parameters.

    Falls back to the whole ``str(report)`` when the table cannot be picked out.
    """
    from metapool.summaries import format_table

    text = str(report)
    table = getattr(report, "table", None)
    lines = text.splitlines()
    cut = next((i for i, line in enumerate(lines) if "exact_mean" in line and "mcmc_mean" in line), None)
    if cut is None or not isinstance(table, pd.DataFrame):
        return text
    rows = [r for r in _DEMO_ROWS if r in table.index]
    cols = [c for c in ("exact_mean", "mcmc_mean", "z_mean", "max_abs_z", "ess_bulk", "ess_tail", "r_hat", "pit_p")
            if c in table.columns]
    if not rows or not cols:
        return text
    shown = table.loc[rows, cols].astype(float)
    if "passed" in table.columns:
        shown["status"] = table.loc[rows, "passed"].map({True: "ok", False: "FAIL"})
    more = len(table) - len(rows)
    tail = f"({more} more rows: metapool validate {_DEMO_DATASET} --out DIR writes report.csv)" if more > 0 else ""
    return "\n".join(lines[:cut] + [format_table(shown), tail]).rstrip()
