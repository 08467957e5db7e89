"""The original analysis's ``summary(coda::mcmc(x))`` table for any set of draws, and table printing.

:func:`coda_table` reproduces the columns R's coda package prints for an MCMC object (mean, SD,
naive SE, time-series SE and the 2.5/25/50/75/97.5 % quantiles) for a 1-D array of draws, a
``(chain, draw)`` array, an xarray ``DataArray`` / ``Dataset`` or an ArviZ ``DataTree``; the
time-series SE is ArviZ's Monte Carlo standard error of the mean. :func:`format_coda` prints
it the way coda does, :func:`format_table` prints any summary table with sensible significant
digits (used by the ``metapool`` command).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from metapool import layout

if TYPE_CHECKING:  # pandas and xarray are imported where they are used: they are slow to import
    import pandas as pd
    import xarray as xr

__all__ = ["coda_table", "format_coda", "format_table", "format_number", "flat_draws", "CODA_QUANTILES",
           "CODA_STAT_COLUMNS", "shortest_interval", "PlainTable"]

#: Quantiles coda's ``summary.mcmc`` reports (the package's default set).
CODA_QUANTILES: tuple[float, ...] = layout.DEFAULT_QUANTILES
#: The first four columns of the table, named as coda prints them.
CODA_STAT_COLUMNS: tuple[str, ...] = ("Mean", "SD", "Naive SE", "Time-series SE")

# ----------------------------------------------------------------------------- draws -> (chain, draw)
def _quantile_header(q: float) -> str:
    return f"{100.0 * q:.10g}%"


def flat_draws(dt: xr.DataTree) -> dict[str, np.ndarray]:
    """The reported quantities of a fit as ``(chain, draw)`` arrays under their flat names.

    Parameters
    ----------
    dt : xarray.DataTree
        Draws in the shared layout (``metapool.analytic`` ``sample()`` or
        ``metapool.models.sample``).

    Returns
    -------
    dict of str to ndarray
        ``tau``, ``mu`` or ``beta[NAME]``, ``theta[LABEL]``, ``theta_new`` and ``y_pred[LABEL]``
        (the ``posterior_predictive`` ``y``), in that order; those absent are skipped.
    """
    if "posterior" not in dt.children:
        return {}
    return layout.flat_draw_arrays(dt)


def _from_tree(dt: xr.DataTree, name: str | None) -> dict[str, np.ndarray]:
    if name is None:
        out = flat_draws(dt)
        if not out:
            raise ValueError("the DataTree has no posterior variables (tau, mu/beta, theta, ...)")
        return out
    if name == "y_pred" and "posterior_predictive" in dt.children:
        return layout.flatten("y_pred", dt["posterior_predictive"]["y"])
    for group in ("posterior", "posterior_predictive"):
        if group in dt.children and name in dt[group].data_vars:
            return layout.flatten(name, dt[group][name])
    flat = flat_draws(dt)
    if name in flat:  # a flat name such as "theta[A]"
        return {name: flat[name]}
    known = sorted({n.split("[")[0] for n in flat})
    raise KeyError(f"no variable {name!r} in the draws; known: {', '.join(known)} (or a flat name such as theta[LABEL])")


def _from_array(arr: np.ndarray, name: str | None) -> dict[str, np.ndarray]:
    arr = np.asarray(arr, dtype=float)
    if arr.ndim == 1:
        return {name or "var1": arr[None, :]}
    if arr.ndim == 2:
        return {name or "var1": arr}
    if arr.ndim == 3:
        k = arr.shape[2]
        return {(f"{name}[{i + 1}]" if name else f"var{i + 1}"): arr[:, :, i] for i in range(k)}
    raise ValueError(f"draws must be 1-D (draw), 2-D (chain, draw) or 3-D (chain, draw, variable); got shape {arr.shape}")


def _named_draws(draws: Any, name: str | None) -> dict[str, np.ndarray]:
    import xarray as xr

    if isinstance(draws, xr.DataTree):
        return _from_tree(draws, name)
    if isinstance(draws, xr.Dataset):
        names = [name] if name is not None else list(draws.data_vars)
        out: dict[str, np.ndarray] = {}
        for n in names:
            out.update(layout.flatten(str(n), draws[n]))
        return out
    if isinstance(draws, xr.DataArray):
        return layout.flatten(name or (str(draws.name) if draws.name is not None else "var1"), draws)
    if isinstance(draws, Mapping):
        out = {}
        for n, v in draws.items():
            out.update(_from_array(np.asarray(v), str(n)))
        return out
    return _from_array(np.asarray(draws), name)


# ----------------------------------------------------------------------------- the table
def coda_table(
    draws: Any,
    name: str | None = None,
    *,
    quantiles: Sequence[float] = CODA_QUANTILES,
) -> pd.DataFrame:
    """``summary(coda::mcmc(x))`` of the original analysis, for any set of draws.

    Parameters
    ----------
    draws : array_like, xarray.DataArray, xarray.Dataset, xarray.DataTree or dict
        A 1-D array (one chain), a 2-D ``(chain, draw)`` array, a 3-D ``(chain, draw, k)``
        array (rows ``name[1]..name[k]``), a DataArray with ``draw`` (and optionally
        ``chain``) dimensions, a Dataset, a dict of arrays, or a DataTree in metapool's layout.
        Vector variables expand to one row per element, named by coordinate:
        ``theta[A]``, ``beta[ablat]``.
    name : str, optional
        Row name for an array; for a DataTree or Dataset, the one variable to summarise
        (``"tau"``, ``"theta"``, ``"y_pred"`` for the posterior predictive of ``y``, or a flat
        name such as ``"theta[A]"``). Default: every reported variable (``tau``, ``mu`` /
        ``beta``, ``theta``, ``theta_new``, ``y_pred``).
    quantiles : sequence of float
        Probabilities of the quantile columns (coda's 2.5, 25, 50, 75, 97.5 % by default).

    Returns
    -------
    pandas.DataFrame
        Index ``parameter``; columns ``Mean``, ``SD``, ``Naive SE``, ``Time-series SE`` and
        one ``P%`` column per quantile (``2.5%`` ... ``97.5%``). ``attrs`` holds ``chains``
        and ``iterations`` (draws per chain) for :func:`format_coda`.

    Notes
    -----
    With n = chains x draws pooled draws x_i: Mean = sum x_i / n,
    SD = sqrt(sum (x_i - Mean)^2 / (n - 1)), Naive SE = SD / sqrt(n) (the standard error if the
    draws were independent) and Time-series SE = ArviZ's ``mcse(method="mean")``, i.e.
    SD / sqrt(ESS_mean) with the effective sample size from the chains' autocorrelations [1]_
    (coda estimates the same quantity from the spectral density at frequency zero). For
    independent draws, such as the exact engine's, the two standard errors agree up to
    Monte Carlo noise. Quantiles interpolate linearly between order statistics (R's type 7,
    coda's default).

    References
    ----------
    .. [1] Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021).
       Rank-normalization, folding, and localization: an improved R-hat for assessing
       convergence of MCMC. Bayesian Analysis 16(2), 667-718.
    .. [2] Plummer, M., Best, N., Cowles, K. and Vines, K. (2006). CODA: convergence diagnosis
       and output analysis for MCMC. R News 6(1), 7-11.
    """
    import arviz as az

    named = _named_draws(draws, name)
    if not named:
        raise ValueError("no draws to summarise")
    shapes = {v.shape for v in named.values()}
    if len(shapes) != 1:
        raise ValueError(f"all variables need the same (chain, draw) shape; got {sorted(shapes)}")
    chains, iterations = shapes.pop()
    if chains * iterations < 2:
        raise ValueError("need at least two draws")
    stacked = np.stack(list(named.values()), axis=-1)          # (chain, draw, K)
    pooled = stacked.reshape(chains * iterations, -1)          # (n, K)
    n = pooled.shape[0]
    mean = pooled.mean(axis=0)
    sd = pooled.std(axis=0, ddof=1)
    naive = sd / math.sqrt(n)
    ts_se = np.atleast_1d(np.asarray(az.mcse(stacked, method="mean"), dtype=float))
    qs = [float(q) for q in quantiles]
    qv = np.quantile(pooled, qs, axis=0).T if qs else np.empty((len(named), 0))
    columns = [*CODA_STAT_COLUMNS, *(_quantile_header(q) for q in qs)]
    import pandas as pd

    table = pd.DataFrame(
        np.column_stack([mean, sd, naive, ts_se, qv]),
        index=pd.Index(list(named), name="parameter"),
        columns=columns,
    )
    table.attrs.update(chains=int(chains), iterations=int(iterations))
    return table


# ----------------------------------------------------------------------------- intervals
def shortest_interval(quantile: Callable[[float], float], prob: float = layout.DEFAULT_PROB,
                      lower_bound: float = -math.inf) -> tuple[float, float]:
    """Shortest interval holding ``prob`` of a unimodal distribution given its quantile function.

    Parameters
    ----------
    quantile : callable
        The distribution's quantile function Q(c).
    prob : float, default 0.95
    lower_bound : float, default -inf
        The support's lower end (0 for tau), checked as a candidate end of the interval.

    Returns
    -------
    (float, float)

    Notes
    -----
    For a unimodal density the width Q(c + prob) - Q(c) is unimodal in c in [0, 1 - prob]; it
    is minimised by bounded Brent search (scipy, to 1e-12 in c) and compared with the support's
    end c = 0 (a mode at the lower bound, as tau's posterior often has).
    """
    from scipy.optimize import minimize_scalar  # imported when used: scipy.optimize is slow to import

    res = minimize_scalar(lambda c: quantile(c + prob) - quantile(c), bounds=(0.0, 1.0 - prob),
                          method="bounded", options={"xatol": 1e-12})
    c = float(res.x)
    if math.isfinite(lower_bound) and quantile(prob) - lower_bound <= quantile(c + prob) - quantile(c):
        return lower_bound, quantile(prob)
    return quantile(c), quantile(c + prob)


# ----------------------------------------------------------------------------- plain tables
@dataclass(frozen=True, eq=False)
class PlainTable:
    """A numeric table without pandas: row names, column names and the values, rows x columns.

    What the exact engine's summary is before it becomes a DataFrame
    (:meth:`metapool.analytic.ExactPosterior.summary_table`): :func:`format_table` prints it
    exactly as it prints :meth:`to_frame`'s DataFrame, so a command that only prints a summary
    need not import pandas.

    Attributes
    ----------
    index : sequence of str
        Row names (flat parameter names such as ``tau``, ``theta[A]``).
    columns : tuple of str
        Column names (``mean``, ``sd``, ``q2.5``, ...), each once.
    values : ndarray, shape (len(index), len(columns))
        The numbers (float); :meth:`to_frame` hands this array to the DataFrame without a copy.
    index_name : str or None
        The name of the DataFrame's index (``parameter``).
    """

    index: Sequence[str]
    columns: tuple[str, ...]
    values: np.ndarray
    index_name: str | None = "parameter"

    def __post_init__(self) -> None:
        shape = (len(self.index), len(self.columns))
        if np.shape(self.values) != shape:
            raise ValueError(f"values have shape {np.shape(self.values)}; the names need {shape}")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"column names must be unique; got {list(self.columns)}")

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame (index named :attr:`index_name`, float columns).

        Returns
        -------
        pandas.DataFrame
        """
        import pandas as pd

        index = pd.Index(self.index, dtype=object, copy=False, name=self.index_name)
        return pd.DataFrame(self.values, index=index, columns=list(self.columns), copy=False)


# ----------------------------------------------------------------------------- printing
def format_number(value: float, digits: int = 4) -> str:
    """A number with ``digits`` significant figures; scientific when tiny or huge.

    Parameters
    ----------
    value : float
    digits : int, default 4

    Returns
    -------
    str
        ``"NA"`` for NaN (a moment that does not exist), ``"0"`` for zero, fixed notation for
        1e-3 <= |value| < 1e6 (``0.002765``, ``6.575``), scientific otherwise (``1.567e-05``).
    """
    v = float(value)
    if math.isnan(v):
        return "NA"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    if v == 0.0:
        return "0"
    if 1e-3 <= abs(v) < 1e6:
        return f"{v:.{digits}g}" if abs(v) < 10**digits else f"{v:.0f}"
    return f"{v:.{digits - 1}e}"


def _column_formatter(column: str, digits: int):
    if column.startswith("ess"):
        return lambda v: "NA" if math.isnan(v) else f"{v:.0f}"
    if column == "r_hat":
        return lambda v: "NA" if math.isnan(v) else f"{v:.3f}"
    return lambda v: format_number(v, digits)


def format_table(table: pd.DataFrame | PlainTable, digits: int = 4) -> str:
    """A summary table as fixed-width text with ``digits`` significant figures.

    Parameters
    ----------
    table : pandas.DataFrame or PlainTable
        Numeric columns (a summary from either engine, a coda table, a validation table). A
        :class:`PlainTable` prints without pandas, character for character as its
        :meth:`PlainTable.to_frame` would.
    digits : int, default 4
        Significant figures of location / scale columns; ``ess_*`` print as integers and
        ``r_hat`` with three decimals.

    Returns
    -------
    str
        ``DataFrame.to_string`` output; NaN prints as ``NA``.
    """
    if isinstance(table, PlainTable):
        return _format_plain(table, digits)
    import pandas as pd

    formatters = {
        c: _column_formatter(str(c), digits)
        for c in table.columns
        if pd.api.types.is_float_dtype(table[c]) or pd.api.types.is_integer_dtype(table[c])
    }
    shown = table.copy()
    shown.index.name = None
    for c in formatters:
        shown[c] = shown[c].astype(float)
    return shown.to_string(formatters=formatters, na_rep="NA")


def _escaped(label: Any) -> str:
    """A label as ``DataFrame.to_string`` writes it: tabs and line breaks escaped."""
    text = str(label)
    for char, escape in (("\t", "\\t"), ("\r", "\\r"), ("\n", "\\n")):
        text = text.replace(char, escape)
    return text


def _labels_as_pandas(labels: Sequence[Any]) -> list[str]:
    """Row or column labels as pandas formats an object Index: escaped, one leading space each,
    then the leading whitespace every label shares removed."""
    texts = [" " + _escaped(v) for v in labels]
    common = min(len(t) - len(t.lstrip()) for t in texts)
    return [t[common:] for t in texts]


def _format_plain(table: PlainTable, digits: int) -> str:
    """:func:`format_table` of a :class:`PlainTable` without pandas.

    ``DataFrame.to_string(formatters=..., na_rep="NA")`` of the same table: the index column
    left-justified under an empty header, each column's cells (NaN as ``NA``, else the column's
    formatter) and its name right-justified to a common width, columns joined by one space.
    """
    if len(table.index) == 0 or len(table.columns) == 0:
        return format_table(table.to_frame(), digits)  # pandas's own text for an empty table
    values = np.asarray(table.values, dtype=float)
    labels = _labels_as_pandas(table.index)
    width = max(map(len, labels))
    columns = [["", *(t.ljust(width) for t in labels)]]
    for j, (name, head) in enumerate(zip(table.columns, _labels_as_pandas(table.columns))):
        fmt = _column_formatter(str(name), digits)
        cells = ["NA" if math.isnan(v) else fmt(v) for v in values[:, j]]
        width = max(len(head), *map(len, cells))
        columns.append([c.rjust(width) for c in (head, *cells)])
    widths = [max(map(len, c)) + 1 for c in columns[:-1]] + [max(map(len, columns[-1]))]
    return "\n".join("".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in zip(*columns))


def format_coda(table: pd.DataFrame, digits: int = 4) -> str:
    """Print a :func:`coda_table` the way R's ``summary(coda::mcmc(x))`` does.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`coda_table` (its ``attrs`` give the chains and iterations).
    digits : int, default 4
        Significant figures.

    Returns
    -------
    str
        The header (iterations, thinning, chains, sample size per chain) and the two sections
        "1. Empirical mean and standard deviation ..." and "2. Quantiles for each variable".
    """
    chains = int(table.attrs.get("chains", 1))
    iterations = int(table.attrs.get("iterations", 0))
    stats = table[[c for c in CODA_STAT_COLUMNS if c in table.columns]]
    quants = table[[c for c in table.columns if c not in CODA_STAT_COLUMNS]]
    lines = [
        f"Iterations = 1:{iterations}",
        "Thinning interval = 1",
        f"Number of chains = {chains}",
        f"Sample size per chain = {iterations}",
        "",
        "1. Empirical mean and standard deviation for each variable,",
        "   plus standard error of the mean:",
        "",
        format_table(stats, digits),
        "",
        "2. Quantiles for each variable:",
        "",
        format_table(quants, digits),
    ]
    return "\n".join(lines)

