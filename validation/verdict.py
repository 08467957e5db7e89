"""One verdict for every validation report: rules against limits, and a structured failure record.

:func:`compare`, :func:`check_analytic` and :func:`sbc` state their checks as :class:`Rule` s
(a table column, a limit and which side of it passes) and get their failures from
:func:`verdict`; scalar checks (divergences, E-BFMI, the setup) go through :func:`check`. A
failure is a :class:`Failure` (parameter, check, value, limit and the numbers its text
shows); the report text is rendered from the records, so tests read the fields and the CLI
prints :attr:`Failure.message`.

Nothing here imports PyMC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Sequence

import numpy as np
import pandas as pd

from metapool.numfmt import distinct_digits, format_pair

__all__ = ["Failure", "Rule", "verdict", "check", "z_rules", "failed_parameters", "failure_lines",
           "INCONCLUSIVE_CHECKS", "OUTCOMES"]

Bound = Literal["upper", "lower"]

#: Checks whose failure means "too few draws to decide", not "the draws disagree with the
#: reference": a report whose only failures are these is INCONCLUSIVE (rerun with more draws),
#: not FAILED (see :attr:`Verdict.outcome`).
INCONCLUSIVE_CHECKS: frozenset[str] = frozenset({"ess_bulk", "ess_tail"})

#: The three verdicts of a report, as its first line prints them.
OUTCOMES: tuple[str, ...] = ("PASSED", "FAILED", "INCONCLUSIVE")


def _g(v: Any, digits: int = 4) -> str:
    if v is None or not np.isfinite(v):
        return str(v)
    return f"{v:.{digits}g}"


# ----------------------------------------------------------------------------- messages
def _stat(check: str) -> str:
    what = check[2:]
    return "mean" if what == "mean" else f"quantile {what}"


def _msg_z(f: "Failure") -> str:
    d = distinct_digits(abs(float(f.value)), float(f.limit), 2, "f")
    arviz = f.get("arviz_mcse")
    other = "" if arviz is None else f", ArviZ's {_g(arviz)}"
    return (f"{_stat(f.check)}: z = {float(f.value):+.{d}f} (draws {_g(f.get('estimate'))} vs exact "
            f"{_g(f.get('exact'))}, mcse {_g(f.get('mcse'))}{other}; |z| > {float(f.limit):.{d}f})")


def _msg_rhat(f: "Failure") -> str:
    v, lim = format_pair(float(f.value), float(f.limit), 3, "f", limit_format="g")
    return f"r_hat = {v} > {lim}"


def _msg_ess(f: "Failure") -> str:
    v, lim = format_pair(float(f.value), float(f.limit), 0, "f", limit_format="g")
    return f"{f.check} = {v} < {lim}: too few effective draws to trust the MCSE"


def _msg_pit(f: "Failure") -> str:
    p, lim = format_pair(float(f.value), float(f.limit), 2, "g")
    n_eff = f.get("n_eff")
    with_n = "" if n_eff is None else f" with n_eff {n_eff:.0f}"
    return (f"PIT KS distance {f.get('ks'):.3f}{with_n}: p = {p} < {lim} "
            f"(draws not distributed as the exact {f.get('reference', 'posterior')})")


def _msg_divergences(f: "Failure") -> str:
    nd = int(f.value)
    per = f.get("per_chain")
    per_txt = "" if per is None else f" (per chain {', '.join(map(str, per))})"
    return (f"{nd} divergent transition{'s' * (nd != 1)}{per_txt} > {int(f.limit)}: "
            "the sampler missed part of the posterior")


def _msg_bfmi(f: "Failure") -> str:
    chains = f.get("chains") or ()
    return (f"E-BFMI below {float(f.limit):g} in chain(s) "
            + ", ".join(f"{i} ({format_pair(b, float(f.limit), 2, 'f', limit_format='g')[0]})" for i, b in chains))


def _msg_change(f: "Failure") -> str:
    v, lim = format_pair(float(f.value), float(f.limit), 3, "g", limit_format="g")
    return (f"{f.check[len('change_'):]} changes by {v} posterior sds ({f.get('difference'):+.3g}) between "
            f"rtol={f.get('rtol'):g} and {f.get('fine_rtol'):g} (> {lim})")


def _msg_ranks(f: "Failure") -> str:
    p, lim = format_pair(float(f.value), float(f.limit), 2, "g")
    mean_rank = f.get("mean_rank")
    side = ("the posterior sits below the truth (underestimates)" if mean_rank > 0.5
            else "the posterior sits above the truth (overestimates)")
    return (f"ranks not uniform: {f.get('test')} p = {p} < {lim}; "
            f"mean rank {mean_rank:.3f} of 1 ({side} on average)")


def _msg_observed(f: "Failure") -> str:
    return "the draws were fitted to other effects (observed_data.y) than the exact posterior"


def _msg_x_new(f: "Failure") -> str:
    return f"theta_new of the draws is at x_new = {list(f.value)} but the exact posterior's at {list(f.limit)}"


def _msg_prior(f: "Failure") -> str:
    return f"{f.check} of the draws is {f.value!r} but the exact posterior used {f.limit!r}"


_MESSAGES: dict[str, Callable[["Failure"], str]] = {
    "r_hat": _msg_rhat, "ess_bulk": _msg_ess, "ess_tail": _msg_ess, "pit": _msg_pit,
    "divergences": _msg_divergences, "bfmi": _msg_bfmi, "ranks": _msg_ranks,
    "observed_data": _msg_observed, "x_new": _msg_x_new, "tau_prior": _msg_prior, "beta_prior": _msg_prior,
}


def _message_for(check_name: str) -> Callable[["Failure"], str]:
    if check_name.startswith("z_"):
        return _msg_z
    if check_name.startswith("change_"):
        return _msg_change
    return _MESSAGES.get(check_name, lambda f: f"{f.check} = {f.value!r} (limit {f.limit!r})")


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Failure:
    """One failed check of a validation report.

    Attributes
    ----------
    parameter : str
        Flat parameter name (``tau``, ``mu``, ``beta[ablat]``, ``theta[A]``, ``theta_new``) or
        ``"sampler"`` (divergences, E-BFMI) or ``"setup"`` (draws and exact posterior disagree
        on the data, the priors or x_new).
    check : str
        What failed: ``z_mean``, ``z_qP`` (z of the mean / quantile P, as the table columns),
        ``r_hat``, ``ess_bulk``, ``ess_tail``, ``pit`` (PIT KS p-value), ``divergences``,
        ``bfmi`` (smallest E-BFMI of the failing chains), ``change_COLUMN`` (quadrature change
        of a summary column, in posterior sds), ``ranks`` (SBC uniformity p-value),
        ``observed_data``, ``x_new``, ``tau_prior``, ``beta_prior``.
    value : float, str or tuple
        The measured value (signed z for the z checks; spec strings / x_new for the setup).
    limit : float, str or tuple
        The threshold it broke (|z| <= limit, r_hat <= limit, ESS >= limit, p >= limit,
        divergences <= limit, E-BFMI >= limit, change <= limit) or, for the setup, the exact
        posterior's value.
    context : tuple of (str, object)
        Further numbers the message shows (e.g. ``estimate``, ``exact``, ``mcse`` of a z test).
    """

    parameter: str
    check: str
    value: Any
    limit: Any
    context: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        """A context value by name."""
        return dict(self.context).get(key, default)

    @property
    def inconclusive(self) -> bool:
        """True for a shortfall of draws (:data:`INCONCLUSIVE_CHECKS`) rather than a failed cross-check."""
        return self.check in INCONCLUSIVE_CHECKS

    @property
    def message(self) -> str:
        """The failure in words (without the parameter), as the report prints it."""
        return _message_for(self.check)(self)

    def __str__(self) -> str:
        return f"{self.parameter}: {self.message}"


@dataclass(frozen=True)
class Rule:
    """A check of one table column against a limit.

    Attributes
    ----------
    check : str
        :attr:`Failure.check` of its failures.
    column : str
        Table column holding the value.
    limit : float
    bound : {"upper", "lower"}
        ``"upper"``: the value must be <= limit; ``"lower"``: >= limit.
    absolute : bool
        Compare |value| (z scores).
    missing_fails : bool
        A NaN value fails (R-hat, ESS) instead of being skipped (a z of a mean that does not
        exist, a PIT test that could not be made).
    context : tuple of str
        Columns copied into the failure's context, as (name, value) with names given by
        ``context_names`` (default the column names).
    context_names : tuple of str
    """

    check: str
    column: str
    limit: float
    bound: Bound = "upper"
    absolute: bool = False
    missing_fails: bool = False
    context: tuple[str, ...] = ()
    context_names: tuple[str, ...] = ()

    def fails(self, value: float) -> bool:
        """True when ``value`` breaks the rule."""
        return _fails(value, self.limit, self.bound, self.absolute, self.missing_fails)


def _fails(value: float, limit: float, bound: Bound, absolute: bool, missing_fails: bool) -> bool:
    v = float(value)
    if math.isnan(v):
        return missing_fails
    if absolute:
        v = abs(v)
    return v > limit if bound == "upper" else v < limit


def check(parameter: str, check_name: str, value: float, limit: float, bound: Bound = "upper", *,
          missing_fails: bool = True, **context: Any) -> Failure | None:
    """The verdict on one scalar: a :class:`Failure` when ``value`` breaks ``limit``, else None."""
    if not _fails(value, limit, bound, False, missing_fails):
        return None
    return Failure(str(parameter), check_name, value, limit, tuple(context.items()))


def verdict(table: pd.DataFrame, rules: Sequence[Rule], **context: Any) -> tuple[Failure, ...]:
    """Failures of every row of ``table`` (index: parameter) under every rule, row by row.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per parameter.
    rules : sequence of Rule
        Checked in order within each row.
    **context
        Added to every failure's context (e.g. ``reference="CDF"``, ``test="ecdf"``).

    Returns
    -------
    tuple of Failure
    """
    out = []
    for name, row in table.iterrows():
        for rule in rules:
            value = row[rule.column]
            if rule.fails(value):
                names = rule.context_names or rule.context
                ctx = tuple((n, float(row[c])) for n, c in zip(names, rule.context)) + tuple(context.items())
                out.append(Failure(str(name), rule.check, float(value), float(rule.limit), ctx))
    return tuple(out)


def z_rules(table: pd.DataFrame, z_crit: float) -> list[Rule]:
    """|z| <= z_crit for every ``z_`` column of a draws table (NaN z: no test)."""
    rules = []
    for col in (c for c in table.columns if c.startswith("z_")):
        what = col[2:]
        ctx, names = (f"mcmc_{what}", f"exact_{what}", f"mcse_{what}"), ("estimate", "exact", "mcse")
        if f"arviz_mcse_{what}" in table.columns:
            ctx, names = ctx + (f"arviz_mcse_{what}",), names + ("arviz_mcse",)
        rules.append(Rule(col, col, float(z_crit), "upper", absolute=True, context=ctx, context_names=names))
    return rules


class Verdict:
    """The verdict every report shares: ``passed``, ``outcome`` and ``failed_parameters`` from its ``failures``.

    Notes
    -----
    A report has one of three outcomes (:data:`OUTCOMES`): PASSED (no failure), FAILED (at
    least one failed cross-check: a z or PIT test, R-hat, divergences, E-BFMI, the setup) and
    INCONCLUSIVE (the only failures are too few effective draws, :data:`INCONCLUSIVE_CHECKS`).
    Low ESS says nothing against the draws; it says the Monte Carlo errors that the z tests
    divide by, and R-hat, cannot be trusted yet (Vehtari et al. 2021 ask for bulk and tail ESS
    of at least 100 per chain before using them), so the answer is "run more draws", not
    "the sampler is wrong". Keeping it apart gives the FAILED outcome the nominal false-alarm
    level of its tests on correct fits (benchmarks/validation_false_alarms.py measures both
    rates). ``passed`` is True only for PASSED; an INCONCLUSIVE report has not passed.

    References
    ----------
    .. [1] Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021).
       Rank-normalization, folding, and localization: an improved R-hat for assessing
       convergence of MCMC. Bayesian Analysis 16(2), 667-718.
    """

    failures: tuple["Failure", ...]

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return not self.failures

    @property
    def problems(self) -> tuple["Failure", ...]:
        """The failed cross-checks (every failure that is not a shortfall of draws)."""
        return tuple(f for f in self.failures if not f.inconclusive)

    @property
    def shortfalls(self) -> tuple["Failure", ...]:
        """The shortfalls of draws (bulk or tail ESS below its minimum)."""
        return tuple(f for f in self.failures if f.inconclusive)

    @property
    def failed(self) -> bool:
        """True when a cross-check failed (outcome FAILED)."""
        return bool(self.problems)

    @property
    def inconclusive(self) -> bool:
        """True when nothing failed but there were too few effective draws (outcome INCONCLUSIVE)."""
        return not self.problems and bool(self.failures)

    @property
    def outcome(self) -> str:
        """``"PASSED"``, ``"FAILED"`` or ``"INCONCLUSIVE"`` (see Notes)."""
        return "FAILED" if self.failed else "INCONCLUSIVE" if self.inconclusive else "PASSED"

    @property
    def failed_parameters(self) -> tuple[str, ...]:
        """Parameters (and ``sampler`` / ``setup``) with at least one failure, in report order."""
        return failed_parameters(self.failures)

    def verdict_text(self, unit: str = "problem") -> str:
        """``PASSED``, ``FAILED (3 problems)`` or ``INCONCLUSIVE (2 ESS shortfalls: ...)``, as the first lines say."""
        n, k = len(self.problems), len(self.shortfalls)
        short = f"{k} ESS shortfall{'s' * (k != 1)}"
        if self.failed:
            return f"FAILED ({n} {unit}{'s' * (n != 1)}{'; ' + short if k else ''})"
        if self.inconclusive:
            return f"INCONCLUSIVE ({short}: too few effective draws to decide; rerun with more draws)"
        return "PASSED"


def failed_parameters(failures: Iterable[Failure]) -> tuple[str, ...]:
    """Parameters (and ``sampler`` / ``setup``) with at least one failure, in report order."""
    return tuple(dict.fromkeys(f.parameter for f in failures))


def failure_lines(failures: Sequence[Failure]) -> list[str]:
    """The ``failures:`` and ``inconclusive:`` blocks of a report (empty when there are none).

    Failed cross-checks go under ``failures:``; shortfalls of draws (:attr:`Failure.inconclusive`)
    under their own heading, which says how many times the draws would bring every ESS to its
    minimum (ESS grows about in proportion to the draws).
    """
    problems = [f for f in failures if not f.inconclusive]
    short = [f for f in failures if f.inconclusive]
    lines = ["failures:", *(f"  {f}" for f in problems)] if problems else []
    if short:
        ratios = [float(f.limit) / float(f.value) for f in short
                  if np.isfinite(f.value) and float(f.value) > 0]
        more = f"; about {math.ceil(max(ratios) * 10) / 10:g}x the draws reach it" if ratios else ""
        lines += [f"inconclusive (ESS below its minimum, the Monte Carlo errors are not yet trustworthy{more}):",
                  *(f"  {f}" for f in short)]
    return lines


def draw_limits(table: pd.DataFrame, z_threshold: float, pit_alpha: float) -> tuple[int, float, int, float]:
    """``(n_z, z_crit, n_pit, pit_p_min)``: the Šidák-adjusted limits of a draws table's tests.

    Notes
    -----
    With m z tests (cells with both an exact value and an MCSE) and P PIT tests,
    z_crit = Phi^-1(1 - alpha_m / 2), alpha_m = 1 - (1 - 2 Phi(-z_threshold))^(1/m), and
    pit_p_min = 1 - (1 - pit_alpha)^(1/P) (:func:`~metapool.validation._common.z_critical`,
    :func:`~metapool.validation._common.sidak_alpha`).
    """
    from metapool.validation._common import count_z_tests, sidak_alpha, z_critical

    n_z = count_z_tests(table)
    n_pit = int(np.isfinite(table["pit_p"]).sum())
    return n_z, z_critical(z_threshold, n_z), n_pit, sidak_alpha(pit_alpha, n_pit)


def pit_rule(pit_p_min: float, with_n_eff: bool = True) -> Rule:
    """PIT KS p-value >= pit_p_min (NaN: no test); the failure shows the distance (and n_eff)."""
    cols = ("pit_ks", "pit_n_eff") if with_n_eff else ("pit_ks",)
    return Rule("pit", "pit_p", float(pit_p_min), "lower", context=cols,
                context_names=("ks", "n_eff")[: len(cols)])


def passed_column(table: pd.DataFrame, failures: Iterable[Failure]) -> list[bool]:
    """For the table's ``passed`` column: True for rows without a failure."""
    bad = {f.parameter for f in failures}
    return [str(n) not in bad for n in table.index]
