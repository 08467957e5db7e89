"""The ``metapool`` command: ``fit``, ``compare``, ``validate``, ``batch``, ``demo`` and ``datasets``.

Parsing, printing and exit statuses only; the jobs are :mod:`metapool.workflow`'s and the files
:mod:`metapool.outputs`'. Run ``metapool --help`` (or ``python -m metapool --help``).

Exit statuses: 0 success; 1 a validation that did not pass, or an internal error (a bug: one
``metapool: internal error:`` line, the traceback with ``--debug``); 2 bad input (one
``metapool: error:`` line on stderr). Warnings print as one line ``metapool: warning: ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import sys
import traceback
import warnings
from typing import Any, Iterator, Sequence

from metapool import __version__
from metapool.errors import InputError

__all__ = ["main", "build_parser"]

PROG = "metapool"
_NOISY_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one ``metapool: error:`` line (status 2)."""

    def error(self, message: str):  # noqa: D102 - argparse hook
        raise InputError(f"{message} (see '{self.prog} --help')")


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


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _assignment(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    value = value.strip()
    try:
        return name.strip(), float(value)
    except ValueError:
        return name.strip(), value  # a category level, e.g. alloc=random


def _columns(n: int):
    """An argparse type: n comma-separated column names."""
    def parse(text: str) -> tuple[str, ...]:
        cols = tuple(c.strip() for c in text.split(","))
        if len(cols) != n or not all(cols):
            raise argparse.ArgumentTypeError(f"expected {n} comma-separated column names, got {text!r}")
        return cols

    return parse


def _layout(name: str) -> tuple[str, ...]:
    from metapool.effects import LAYOUTS

    return LAYOUTS[name]


def _measures() -> tuple[str, ...]:
    from metapool.effects import MEASURES

    return tuple(MEASURES)


# ----------------------------------------------------------------------------- parser
def _prior_help(kind: str) -> str:
    from metapool.priors import prior_forms

    return ", ".join(prior_forms(kind))


def _add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("data", metavar="CSV|DATASET",
                   help="a CSV file with one row per study, or a bundled dataset name (see 'metapool datasets')")
    g.add_argument("--effect", metavar="COL", help="column of effects (CSV only), e.g. X_beta")
    se = g.add_mutually_exclusive_group()
    se.add_argument("--se", metavar="COL", help="column of standard errors (CSV only), e.g. X_stderr")
    se.add_argument("--variance", metavar="COL", help="column of sampling variances (CSV only)")
    g.add_argument("--label", metavar="COL", help="column of unique study labels (CSV only; default 1..J)")
    g.add_argument("--sep", metavar="CHAR", help="the CSV file's separator (default: detected among , ; tab |)")
    g.add_argument("--encoding", metavar="NAME", help="the CSV file's text encoding (default utf-8; e.g. latin-1)")
    e = p.add_argument_group("effect sizes from raw columns (instead of --effect and --se)")
    e.add_argument("--measure", choices=_measures(), help="effect size: log odds ratio OR, log risk ratio RR, risk "
                   "difference RD (from counts or events), mean difference MD, Hedges' g SMD (from means), "
                   "Fisher's z ZCOR (from correlations); metafor's escalc definitions")
    for flag, layout, what in (("--counts", "counts", "events and non-events, treated then control"),
                               ("--events", "events", "events and group size, treated then control"),
                               ("--means", "means", "mean, SD, size of the treated then the control group"),
                               ("--cor", "cor", "correlation and sample size")):
        e.add_argument(flag, metavar=",".join(r.upper() for r in _layout(layout)), type=_columns(len(_layout(layout))),
                       dest=f"raw_{layout}", help=f"columns of {what}")
    e.add_argument("--transform", choices=("exp",),
                   help="also print quantiles and intervals on the ratio scale (OR, RR)")
    g.add_argument("--covariates", metavar="FORMULA",
                   help="meta-regression design: a formula such as '~ ablat' or '~ 0 + alloc', or "
                        "comma-separated numeric columns; also for datasets that have covariates (bcg)")
    m = p.add_argument_group("model")
    m.add_argument("--tau-prior", metavar="SPEC", default="flat",
                   help=f"prior on tau: {_prior_help('tau')} (default flat)")
    m.add_argument("--mu-prior", metavar="SPEC", default="flat",
                   help=f"prior on mu / every beta: {_prior_help('beta')} (default flat)")
    m.add_argument("--x-new", metavar="NAME=VALUE", type=_assignment, nargs="+", action="extend", default=None,
                   help="covariates of a new study for theta_new, each name once (default: the mean of each "
                        "numeric covariate and the reference level of each categorical one); --predict FILE.csv "
                        "gives many new studies")


def _add_sampling_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("draws and NUTS")
    g.add_argument("--draws", metavar="N", type=_positive_int,
                   help="draws per chain (exact engine: draws for the coda table and figures, default "
                        "10000; nuts: default 1000)")
    g.add_argument("--chains", metavar="N", type=_positive_int, help="chains (default: exact 1, nuts 4)")
    g.add_argument("--seed", metavar="N", type=_nonneg_int, help="random seed (draws and NUTS)")
    g.add_argument("--tune", metavar="N", type=_nonneg_int, help="NUTS tuning steps per chain (default 1000)")
    g.add_argument("--parameterization", choices=("noncentered", "centered"),
                   help="NUTS model parameterisation (default noncentered)")
    g.add_argument("--sampler", choices=("nutpie", "pymc"),
                   help="NUTS implementation (default nutpie, PyMC's default backend)")
    g.add_argument("--target-accept", metavar="P", type=_probability,
                   help="NUTS target acceptance of the first run (default 0.9; raised automatically to "
                        "0.95, 0.99 while divergences remain)")
    g.add_argument("--max-retries", metavar="N", type=_nonneg_int,
                   help="automatic NUTS reruns of each kind (higher target_accept; doubled draws while "
                        "r_hat > 1.01); default 2, 0 turns them off")


def _add_out_options(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", help=f"also write {what} into DIR (written completely or not at all)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an earlier metapool report in --out DIR (only the files it wrote)")


def build_parser() -> argparse.ArgumentParser:
    """The ``metapool`` argument parser (subcommands ``fit``, ``validate``, ``demo``, ``datasets``).

    Returns
    -------
    argparse.ArgumentParser
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an internal error")
    parser = _Parser(
        prog=PROG, parents=[common],
        description="Bayesian hierarchical meta-analysis y_j ~ N(theta_j, s_j^2), theta_j ~ N(x_j'beta, tau^2): "
                    "exact posteriors by quadrature, cross-checked against PyMC/NUTS.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    fit = sub.add_parser("fit", parents=[common], help="fit the model and print the posterior summary",
                         description="Fit the hierarchical model and print the posterior summary (exact "
                                     "by default; --engine nuts samples with PyMC/NUTS).")
    _add_data_options(fit)
    _add_sampling_options(fit)
    fit.add_argument("--engine", choices=("exact", "nuts"), default="exact",
                     help="exact quadrature (default) or NUTS (adds mcse_mean, ess_bulk, ess_tail, r_hat)")
    fit.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    _add_out_options(fit, "summary.csv/json, the draws, coda.csv, the figures, index.html and metadata.json")
    fit.add_argument("--predict", metavar="FILE.csv",
                     help="also print x'beta (credible interval) and a new study's theta_new (prediction interval) "
                          "for each row of FILE.csv: columns the covariates (as in --covariates; a 'label' "
                          "column names the rows); written as predictions.csv with --out")
    fit.add_argument("--study", metavar="LABEL", action="append",
                     help="study for predictive_<LABEL>.png with --out (repeatable; default "
                          "the third study, as in the original analysis)")
    extra = fit.add_argument_group("model checking and comparison")
    extra.add_argument("--heterogeneity", nargs="?", const="REML", default=None, metavar="METHOD",
                       choices=("DL", "PM", "REML", "ML"),
                       help="add the heterogeneity block: Q, tau^2 (METHOD: DL, PM, REML (default), ML) with "
                            "its Q-profile interval, I^2, H^2, R^2 and the Bayesian I^2")
    extra.add_argument("--loo", action="store_true",
                       help="add the per-study leave-one-study-out table (exact; PSIS with Pareto k for NUTS)")
    extra.add_argument("--sensitivity", metavar="SPEC,SPEC,...",
                       help="add exact summaries of tau, mu/beta and theta_new under each tau prior")
    fit.set_defaults(handler=cmd_fit)

    cmp_ = sub.add_parser("compare", parents=[common], help="compare models of one dataset by leave-one-study-out",
                          description="Fit several models of one dataset and print one table in ArviZ's "
                                      "compare layout (PSIS-LOO) with the exact leave-one-study-out beside "
                                      "it, and posterior model probabilities where the priors are proper.")
    _add_data_options(cmp_)
    cmp_.add_argument("--models", metavar="LIST", required=True,
                      help="comma-separated models: pooled (tau = 0), hierarchical, unpooled (needs a proper "
                           "--mu-prior) and formulas, e.g. \"pooled,hierarchical,~ ablat\"")
    cmp_.add_argument("--engine", choices=("exact", "nuts"), default="exact",
                      help="fit the hierarchical models exactly (default) or with NUTS")
    cmp_.add_argument("--bayes-factors", action="store_true",
                      help="require marginal likelihoods (exit 2 naming an improper prior)")
    cmp_.add_argument("--draws", metavar="N", type=_positive_int, help="draws per chain for PSIS (default 1000)")
    cmp_.add_argument("--chains", metavar="N", type=_positive_int, help="chains (default 4)")
    cmp_.add_argument("--seed", metavar="N", type=_nonneg_int, help="random seed of the draws")
    cmp_.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    _add_out_options(cmp_, "comparison.csv/json, model probabilities, comparison.png, index.html and metadata.json")
    cmp_.set_defaults(handler=cmd_compare)

    val = sub.add_parser("validate", parents=[common],
                         help="fit both engines and compare them (exit 0 if the check passes, 1 if not: "
                              "FAILED or INCONCLUSIVE)",
                         description="Fit the exact and the NUTS engine and print metapool.validation's "
                                     "comparison; exit status 0 if it passed, 1 if not (FAILED, or INCONCLUSIVE: "
                                     "too few effective draws).")
    _add_data_options(val)
    _add_sampling_options(val)
    _add_out_options(val, "report.csv, the figures, index.html and metadata.json")
    val.set_defaults(handler=cmd_validate)

    from metapool.workflow import DEMO_SEED

    demo = sub.add_parser("demo", parents=[common],
                          help="the original analysis on the bundled seed_countries data (SIMULATED)",
                          description="Run the main job on seed_countries, a SIMULATED stand-in for the "
                                      "original 79-country data: exact summary, the coda table of 10,000 "
                                      "exact draws, and the NUTS-vs-exact verdict.")
    demo.add_argument("--seed", metavar="N", type=_nonneg_int, default=DEMO_SEED,
                      help=f"random seed (default {DEMO_SEED})")
    demo.add_argument("--draws", metavar="N", type=_positive_int, default=10_000,
                      help="exact draws for the coda table (default 10000, as the original)")
    demo.add_argument("--skip-nuts", action="store_true", help="skip the NUTS-vs-exact validation")
    demo.set_defaults(handler=cmd_demo)

    bat = sub.add_parser("batch", parents=[common], help="fit one meta-analysis per group of a long table",
                         description="Fit one hierarchical meta-analysis per group of a long CSV table (one row "
                                     "per study, a group column) and write one tidy summary table (group, "
                                     "parameter, the summary columns, engine, error, warning). A group with bad "
                                     "data keeps one row with its error and the others go on; the exit status "
                                     "is 0 with a warning line counting the failed groups.")
    bat.add_argument("data", metavar="CSV", help="a CSV file with one row per study")
    bat.add_argument("--by", metavar="COL", required=True, help="the group column: one meta-analysis per value")
    bat.add_argument("--effect", metavar="COL", required=True, help="column of effects")
    bse = bat.add_mutually_exclusive_group(required=True)
    bse.add_argument("--se", metavar="COL", help="column of standard errors")
    bse.add_argument("--variance", metavar="COL", help="column of sampling variances")
    bat.add_argument("--label", metavar="COL", help="column of study labels, unique within a group (default 1..J)")
    bat.add_argument("--covariates", metavar="FORMULA", help="meta-regression design of every group, e.g. '~ year'")
    bat.add_argument("--tau-prior", metavar="SPEC", default="flat", help=f"prior on tau: {_prior_help('tau')} (default flat)")
    bat.add_argument("--mu-prior", metavar="SPEC", default="flat",
                     help=f"prior on mu / every beta: {_prior_help('beta')} (default flat)")
    bat.add_argument("--engine", choices=("exact", "nuts"), default="exact", help="exact quadrature (default) or NUTS")
    bat.add_argument("--draws", metavar="N", type=_positive_int, help="NUTS draws per chain (default 1000)")
    bat.add_argument("--chains", metavar="N", type=_positive_int, help="NUTS chains (default 4)")
    bat.add_argument("--tune", metavar="N", type=_nonneg_int, help="NUTS tuning steps per chain (default 1000)")
    bat.add_argument("--seed", metavar="N", type=_nonneg_int, default=0,
                     help="root seed; group i's NUTS seed is its SeedSequence child (default 0)")
    bat.add_argument("--jobs", metavar="N", type=int, default=-1, help="local worker processes (default -1: all CPUs)")
    bat.add_argument("--scheduler", metavar="ADDRESS",
                     help="run on a Dask distributed cluster, e.g. tcp://10.0.0.5:8786 (workers need metapool)")
    _add_out_options(bat, "batch_summary.csv and metadata.json")
    bat.set_defaults(handler=cmd_batch)

    ds = sub.add_parser("datasets", parents=[common], help="list the bundled datasets",
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
        0 success; 1 a validation that did not pass, or an internal error; 2 bad input (one
        ``metapool: error:`` line on stderr).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        with _warnings_as_lines():
            args = build_parser().parse_args(argv)
            args.argv = argv
            if args.command is None:
                build_parser().print_help(sys.stderr)
                return 2
            return int(args.handler(args) or 0)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BrokenPipeError:  # e.g. `metapool fit ... | head`: stop quietly
        _silence_stdout()
        return 0
    except InputError as exc:
        print(f"{PROG}: error: {_one_line(str(exc)) or type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input
        if debug:
            traceback.print_exc()
        print(f"{PROG}: internal error: {type(exc).__name__}: {_one_line(str(exc))} (a bug in metapool; "
              f"{'please report it with the traceback above' if debug else 'rerun with --debug for the traceback'})",
              file=sys.stderr)
        return 1


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


def _use_agg() -> None:
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")


# ----------------------------------------------------------------------------- commands
def _model_args(args: argparse.Namespace) -> dict[str, Any]:
    """The data, model and sampling options shared by ``fit`` and ``validate``, for the workflow."""
    from metapool import workflow

    given = [(name, cols) for name in ("counts", "events", "means", "cor")
             if (cols := getattr(args, f"raw_{name}")) is not None]
    if len(given) > 1:
        raise InputError(f"give one of --counts, --events, --means, --cor (got --{given[0][0]} and --{given[1][0]})")
    raw = dict(zip(_layout(given[0][0]), given[0][1])) if given else None
    if raw and not args.measure:
        raise InputError(f"--{given[0][0]} needs --measure (e.g. --measure RR)")
    data = workflow.load_data(args.data, effect=args.effect, se=args.se, variance=args.variance,
                              label=args.label, covariates=args.covariates, measure=args.measure,
                              raw_columns=raw, sep=args.sep, encoding=args.encoding)
    _describe_file(args)
    return dict(data=data, tau_prior=_prior_option("--tau-prior", args.tau_prior, "tau"),
                beta_prior=_prior_option("--mu-prior", args.mu_prior, "beta"),
                x_new=workflow.new_study(args.x_new), parameterization=args.parameterization,
                draws=args.draws, chains=args.chains, tune=args.tune, seed=args.seed, sampler=args.sampler,
                target_accept=args.target_accept, max_retries=args.max_retries)


def _describe_file(args: argparse.Namespace) -> None:
    """Say how a CSV file was read when something about it was detected rather than given."""
    from pathlib import Path

    if Path(args.data).is_file():
        from metapool.io import sniff

        fmt = sniff(args.data, args.sep, args.encoding)
        if fmt.detected:
            _info(f"read {args.data}: {fmt.describe()}")


def _prior_option(option: str, text: str, kind: str):
    from metapool.priors import parse_beta_prior, parse_tau_prior

    try:
        return (parse_tau_prior if kind == "tau" else parse_beta_prior)(text)
    except ValueError as exc:
        raise InputError(f"{option}: {_one_line(str(exc))}") from None


def cmd_fit(args: argparse.Namespace) -> int:
    """``metapool fit``: print the summary (and write ``--out``)."""
    from metapool import outputs, workflow

    opts = _model_args(args)
    workflow.check_engine_options(args.engine, {**opts, "study": args.study})
    spec = workflow.model_spec(opts.pop("data"), opts.pop("tau_prior"), opts.pop("beta_prior"),
                               opts.pop("parameterization"), opts.pop("x_new"))
    if args.transform:
        if args.format != "table":
            raise InputError("--transform exp adds a table to --format table; JSON and CSV keep the model's scale")
        workflow.check_ratio_scale(spec.data)
    newdata = workflow.read_newdata(args.predict, spec.data, sep=args.sep, encoding=args.encoding) if args.predict else None
    if args.out:
        names = workflow.fit_file_names(args.engine, spec.data, args.study, newdata is not None)
        outputs.check_out_dir(args.out, [*names.values(), outputs.MANIFEST], args.overwrite)
    result = workflow.fit(spec, engine=args.engine, with_draws=bool(args.out or (args.loo and args.engine == "exact")),
                          **opts)
    blocks = _fit_blocks(args, result)
    predictions = None
    if newdata is not None:
        predictions = workflow.prediction_frame(workflow.predict(result, newdata), newdata)
        blocks["predictions"] = predictions.set_index(["row", "parameter"])
    if args.format == "json":
        import pandas as pd

        if blocks:
            print(json.dumps(outputs.jsonable({"summary": outputs.table_records(result.table),
                                               **{k: (v.reset_index().to_dict(orient="records")  # full precision
                                                      if isinstance(v, pd.DataFrame) else v)
                                                  for k, v in blocks.items()}}), indent=2))
        else:
            print(outputs.table_to_json(result.table))
    elif args.format == "csv":
        sys.stdout.write(result.table.to_csv(index_label="parameter"))
        for key, value in blocks.items():
            if not isinstance(value, str):  # a DataFrame
                sys.stdout.write(f"\n# {key}\n" + value.to_csv())
    else:
        from metapool.summaries import format_table

        print(result.header())
        print()
        print(format_table(result.summary))  # the exact engine's summary prints without pandas
        print()
        print(result.footer())
        for key, value in blocks.items():
            print()
            if key == "sensitivity":  # one column per prior reads better
                value = value.T.rename_axis("summary")
                print("Prior sensitivity (exact; one column per tau prior):")
            if key == "predictions":
                print("Predictions (x'beta: the mean effect at the covariates, credible interval; theta_new: a new "
                      "study's effect, prediction interval):")
                print(format_table(value))
                continue
            print(value if isinstance(value, str) else value.to_string(float_format=lambda v: f"{v:.4g}"))
        if args.transform:
            ratios = workflow.ratio_table(result.table, result.data)
            print()
            print(f"On the {ratios.attrs['scale']} scale (exp of quantiles and interval ends; tau stays on the log scale):")
            print()
            print(format_table(ratios))
    for line in result.reruns():
        _info(line)
    if args.out:
        _use_agg()
        files = outputs.write_run(args.out, workflow.fit_files(result, args.study, shlex.join(["metapool", *args.argv]),
                                                               predictions),
                                  workflow.run_manifest(args.argv, result, args.study), args.overwrite)
        _info(f"wrote {', '.join(files)} to {args.out}")
    return 0


def _fit_blocks(args: argparse.Namespace, result) -> dict[str, Any]:
    """The extra blocks ``fit`` prints: heterogeneity text, the LOO table, the sensitivity table."""
    if not (args.heterogeneity or args.loo or args.sensitivity):
        return {}
    import pandas as pd

    from metapool import workflow

    blocks: dict[str, Any] = {}
    if args.heterogeneity:
        blocks["heterogeneity"] = workflow.heterogeneity_text(result.data, args.heterogeneity, exact=result.exact)
    if args.loo:
        table, head = workflow.loo_table(result)
        blocks["loo_headline"] = head
        blocks["loo"] = table
    if args.sensitivity:
        blocks["sensitivity"] = workflow.sensitivity_table(result.spec, args.sensitivity)
    if args.format == "json":
        return {k: (outputs_records(v) if isinstance(v, pd.DataFrame) else v) for k, v in blocks.items()}
    return blocks


def outputs_records(table) -> list[dict[str, Any]]:
    """A table as JSON records with its index as the first field."""
    return json.loads(table.reset_index().to_json(orient="records"))


def cmd_compare(args: argparse.Namespace) -> int:
    """``metapool compare``: the model-comparison table (and model probabilities)."""
    from metapool import outputs, workflow

    tau = _prior_option("--tau-prior", args.tau_prior, "tau")
    beta = _prior_option("--mu-prior", args.mu_prior, "beta")
    load = lambda f: workflow.load_data(args.data, effect=args.effect, se=args.se, variance=args.variance,  # noqa: E731
                                        label=args.label, covariates=f)
    if args.out:
        outputs.check_out_dir(args.out, ["comparison.csv", "comparison.json", "model_probabilities.csv",
                                         "comparison.png", "index.html", outputs.MANIFEST], args.overwrite)
    res = workflow.compare(args.data, args.models, tau_prior=tau, beta_prior=beta, engine=args.engine,
                           draws=args.draws, chains=args.chains, seed=args.seed,
                           bayes_factors=args.bayes_factors, load=load)
    table = res.table
    if args.format == "json":
        obj = {"comparison": outputs_records(table)}
        if res.probabilities is not None:
            obj["model_probabilities"] = outputs_records(res.probabilities)
        print(json.dumps(outputs.jsonable(obj), indent=2))
    elif args.format == "csv":
        sys.stdout.write(table.to_csv())
    else:
        print(f"Model comparison on {args.data}: leave-one-study-out (PSIS-LOO on the study-level likelihood; "
              "elpd_exact: exact by quadrature)")
        print(table.to_string(float_format=lambda v: f"{v:.3f}"))
        if res.probabilities is not None:
            print()
            print("Marginal likelihoods, posterior model probabilities (equal prior probabilities) and "
                  "Bayes factors against the best model:")
            print(res.probabilities.to_string(float_format=lambda v: f"{v:.4g}"))
        elif res.bayes_note:
            print()
            print(res.bayes_note)
    if args.out:
        _use_agg()
        files, manifest = workflow.comparison_files(res, load(None), args.argv)
        manifest.update(models=args.models, engine=args.engine)
        written = outputs.write_run(args.out, files, manifest, args.overwrite)
        _info(f"wrote {', '.join(written)} to {args.out}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """``metapool validate``: exit 0 if the NUTS-vs-exact comparison passed, 1 if not."""
    from metapool import outputs, workflow

    opts = _model_args(args)
    spec = workflow.model_spec(opts.pop("data"), opts.pop("tau_prior"), opts.pop("beta_prior"),
                               opts.pop("parameterization"), opts.pop("x_new"))
    if args.out:
        outputs.check_out_dir(args.out, [*workflow.validation_file_names(spec.data).values(), outputs.MANIFEST],
                              args.overwrite)
    result = workflow.validate(spec, **opts)
    print(result.header())
    print()
    print(str(result.report))
    if args.out:
        _use_agg()
        files = outputs.write_run(args.out, workflow.validation_files(result, shlex.join(["metapool", *args.argv])),
                                  workflow.run_manifest(args.argv, result), args.overwrite)
        _info(f"wrote {', '.join(files)} to {args.out}")
    return 0 if result.passed else 1


def cmd_batch(args: argparse.Namespace) -> int:
    """``metapool batch``: one fit per group; the tidy table on stdout (CSV) or in ``--out``."""
    from metapool import outputs
    from metapool.batches import BATCH_SUMMARY, batch, batch_files, batch_manifest

    if args.out:
        outputs.check_out_dir(args.out, [BATCH_SUMMARY, outputs.MANIFEST], args.overwrite)
    result = batch(args.data, args.by, effect=args.effect, se=args.se, variance=args.variance, label=args.label,
                   covariates=args.covariates, tau_prior=_prior_option("--tau-prior", args.tau_prior, "tau"),
                   beta_prior=_prior_option("--mu-prior", args.mu_prior, "beta"), engine=args.engine,
                   draws=args.draws, chains=args.chains, tune=args.tune, seed=args.seed, n_jobs=args.jobs,
                   scheduler=args.scheduler)
    if args.out:
        files = outputs.write_run(args.out, batch_files(result), batch_manifest(args.argv, result), args.overwrite)
        print(result.describe())
        _info(f"wrote {', '.join(files)} to {args.out}")
    else:
        sys.stdout.write(result.table.to_csv(index=False, float_format="%.10g"))
        _info(result.describe())
    if result.n_failed:
        _info(f"warning: {result.n_failed} of {result.n_groups} groups could not be fitted; their rows carry the "
              "message in the error column")
    return 0


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


def cmd_demo(args: argparse.Namespace) -> int:
    """``metapool demo``: the original analysis on the SIMULATED seed_countries data."""
    from metapool import workflow

    print("\n\n".join(workflow.demo(seed=args.seed, draws=args.draws, nuts=not args.skip_nuts)))
    return 0
