"""Effect sizes and sampling variances from raw study tables, as metafor's ``escalc`` computes them.

Measures (metafor's names and definitions, Viechtbauer 2010):

=========  =====================================================  ===============================
measure    effect ``yi``                                          raw columns (roles)
=========  =====================================================  ===============================
``OR``     log odds ratio                                         ``ai, bi, ci, di`` or
``RR``     log risk ratio                                         ``ai, n1i, ci, n2i``
``RD``     risk difference
``MD``     raw mean difference                                    ``m1i, sd1i, n1i, m2i, sd2i, n2i``
``SMD``    standardised mean difference (Hedges' g)
``ZCOR``   Fisher's z of a correlation                            ``ri, ni``
=========  =====================================================  ===============================

``ai, bi`` are the events and non-events in the treated group, ``ci, di`` those in the control
group; ``n1i, n2i`` the group sizes. :func:`escalc` appends ``yi`` and ``vi`` to a table like
metafor's ``escalc``; :func:`to_metadata` builds a :class:`~metapool.MetaData` that remembers the
measure; :func:`back_transform` says which measures are on the log scale (``OR``, ``RR``: exp).

Bad input raises :class:`metapool.errors.InputError` naming the column, the study and the value as
written; a study whose effect is undefined is reported, never carried into a fit as NaN.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING, Any, Callable, Mapping, NoReturn, Sequence

import numpy as np
from numpy.typing import ArrayLike

from metapool.data import MetaData, _as_float_vector
from metapool.frames import default_labels as _default_labels
from metapool.frames import show as _show
from metapool.errors import InputError

if TYPE_CHECKING:  # pandas is imported where it is used: the CLI's help lists the measures without it
    import pandas as pd

__all__ = [
    "MEASURES", "LAYOUTS", "DESCRIPTIONS", "LOG_MEASURES", "TO_OPTIONS", "VTYPES",
    "escalc", "to_metadata", "back_transform", "is_log_scale", "ratio_name", "hedges_correction",
]

#: Column roles of each raw-data layout, in the order the command line lists them.
LAYOUTS: dict[str, tuple[str, ...]] = {
    "counts": ("ai", "bi", "ci", "di"),
    "events": ("ai", "n1i", "ci", "n2i"),
    "means": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "cor": ("ri", "ni"),
}

#: The layouts each measure accepts.
MEASURES: dict[str, tuple[str, ...]] = {
    "OR": ("counts", "events"),
    "RR": ("counts", "events"),
    "RD": ("counts", "events"),
    "MD": ("means",),
    "SMD": ("means",),
    "ZCOR": ("cor",),
}

DESCRIPTIONS: dict[str, str] = {
    "OR": "log odds ratio",
    "RR": "log risk ratio",
    "RD": "risk difference",
    "MD": "mean difference",
    "SMD": "standardised mean difference (Hedges' g)",
    "ZCOR": "Fisher's z-transformed correlation",
}

#: Measures on the log scale: exp gives the ratio.
LOG_MEASURES = frozenset({"OR", "RR"})
_RATIO_NAMES = {"OR": "odds ratio", "RR": "risk ratio"}

#: Sampling-variance types per measure (metafor's ``vtype``); the first is the default.
VTYPES: dict[str, tuple[str, ...]] = {
    "OR": ("LS",), "RR": ("LS",), "RD": ("LS", "UB"), "MD": ("LS", "HO"), "SMD": ("LS", "UB"), "ZCOR": ("LS",),
}

#: When the continuity correction ``add`` is applied (metafor's ``to``).
TO_OPTIONS = ("only0", "all", "if0all", "none")

_COUNT_MEASURES = frozenset({"OR", "RR", "RD"})
_MIN_GROUP = {"MD": 2, "SMD": 2}
_MIN_CORRELATION_N = 5  # metafor leaves vi of ZCOR undefined (NA) for ni <= 4


# ----------------------------------------------------------------------------- transforms
def _check_measure(measure: Any) -> str:
    if not isinstance(measure, str) or measure not in MEASURES:
        raise InputError(f"unknown measure {measure!r}; available: {', '.join(MEASURES)}")
    return measure


def is_log_scale(measure: str | None) -> bool:
    """True for the measures on the log scale (``OR``, ``RR``), False otherwise (also for None)."""
    return measure is not None and _check_measure(measure) in LOG_MEASURES


def back_transform(measure: str | None) -> Callable[[np.ndarray], np.ndarray] | None:
    """The function that takes a measure back to its natural scale, or None if it has none.

    Parameters
    ----------
    measure : str or None
        One of :data:`MEASURES`, or None (effects given directly).

    Returns
    -------
    callable or None
        :func:`numpy.exp` for ``OR`` and ``RR`` (log odds and log risk ratios: summaries and
        interval ends of ``exp`` are odds and risk ratios; means are not, so back-transform
        quantiles, not means); None for ``RD``, ``MD``, ``SMD``, ``ZCOR`` and None.

    Notes
    -----
    Fisher's z has a back-transform too (tanh, to a correlation), but metafor's convention and
    the command line's ``--transform exp`` concern the ratio measures only.
    """
    return np.exp if is_log_scale(measure) else None


def ratio_name(measure: str | None) -> str | None:
    """``"odds ratio"`` for ``OR``, ``"risk ratio"`` for ``RR``; None otherwise."""
    return _RATIO_NAMES.get(measure) if is_log_scale(measure) else None


def hedges_correction(m: ArrayLike) -> np.ndarray:
    """Hedges' exact small-sample correction factor c(m) for a standardised mean difference.

    Parameters
    ----------
    m : array_like
        Degrees of freedom ``n1 + n2 - 2``; every value > 1.

    Returns
    -------
    ndarray
        c(m), in (0, 1), increasing to 1.

    Notes
    -----
    c(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)), approximately 1 - 3/(4m - 1). The gamma
    ratio is evaluated in log space by :func:`scipy.special.poch` (``poch(z, 1/2) =
    Gamma(z + 1/2) / Gamma(z)``), so it neither overflows (Gamma(172) already does) nor loses the
    correction to cancellation as ``exp(lgamma(m/2) - lgamma((m-1)/2))`` does for m > 10^6.

    References
    ----------
    Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size and related
    estimators. Journal of Educational Statistics 6(2), 107-128.
    """
    m = np.asarray(m, dtype=float)
    if np.any(~(m > 1)):
        raise InputError(f"Hedges' correction needs degrees of freedom m > 1; got {m[~(m > 1)].ravel()[0]!r}")
    from scipy.special import poch

    return poch((m - 1.0) / 2.0, 0.5) / np.sqrt(m / 2.0)


# ----------------------------------------------------------------------------------- escalc
def escalc(
    measure: str,
    data: pd.DataFrame | None = None,
    *,
    label: str | Sequence[str] | None = None,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
    vtype: str = "LS",
    **columns: Any,
) -> pd.DataFrame:
    """Effect sizes ``yi`` and sampling variances ``vi`` from raw study data (metafor's ``escalc``).

    Parameters
    ----------
    measure : {"OR", "RR", "RD", "MD", "SMD", "ZCOR"}
        The effect-size measure (see the module docstring).
    data : pandas.DataFrame, optional
        One row per study. Then each column role names a column of ``data``; without ``data``
        each role is given as an array.
    label : str or sequence of str, optional
        Study labels for messages: a column of ``data``, or (without ``data``) a sequence.
        Default ``"1".."J"``.
    add : float, default 0.5
        Continuity correction added to every cell of a 2x2 table (OR, RR, RD only).
    to : {"only0", "all", "if0all", "none"}, default "only0"
        Which tables get ``add``: those with a zero cell (``only0``), all (``all``), all when any
        table has a zero cell (``if0all``), none (``none``; same as ``add=0``).
    drop00 : bool, default False
        Leave out studies with no events, or only events, in both groups (OR, RR, RD only): they
        are removed from the result, listed in ``result.attrs["dropped"]``, and a warning says so.
    vtype : str, default "LS"
        Sampling-variance type (metafor's ``vtype``): ``"LS"`` (large-sample, the default) for
        every measure; ``"HO"`` (pooled SD) for MD; ``"UB"`` (unbiased) for RD and SMD.
    **columns
        The raw columns by role: ``ai, bi, ci, di`` or ``ai, n1i, ci, n2i`` (OR, RR, RD);
        ``m1i, sd1i, n1i, m2i, sd2i, n2i`` (MD, SMD); ``ri, ni`` (ZCOR).

    Returns
    -------
    pandas.DataFrame
        A copy of ``data`` (or a table of the given arrays under their role names) with the
        columns ``yi`` and ``vi`` appended (replacing any of that name), ``attrs["measure"]``
        set to the measure and ``attrs["dropped"]`` to the labels left out by ``drop00``.

    Raises
    ------
    InputError
        Naming the column, the study (label and row) and the value as written: an unknown
        measure, option or column; missing or non-numeric values; counts that are negative, not
        whole numbers, or events above the group size; a group with no participants; standard
        deviations not > 0; group sizes below 2 (MD, SMD); correlations outside (-1, 1); sample
        sizes below 5 (ZCOR); a study whose effect or variance is undefined (e.g. a zero cell
        with the correction turned off).

    Notes
    -----
    With ``p1 = ai/n1i``, ``p2 = ci/n2i`` (after the correction), as metafor computes them:

    - OR: ``yi = log(p1/(1-p1)) - log(p2/(1-p2))``, ``vi = 1/ai + 1/bi + 1/ci + 1/di``.
    - RR: ``yi = log(p1) - log(p2)``, ``vi = 1/ai - 1/n1i + 1/ci - 1/n2i``.
    - RD: ``yi = p1 - p2``, ``vi = p1(1-p1)/n1i + p2(1-p2)/n2i`` (``UB``: divide by n - 1).
    - MD: ``yi = m1i - m2i``, ``vi = sd1i^2/n1i + sd2i^2/n2i`` (``HO``: ``sp^2 (1/n1i + 1/n2i)``
      with the pooled SD ``sp^2 = ((n1i-1) sd1i^2 + (n2i-1) sd2i^2) / m``, ``m = n1i + n2i - 2``).
    - SMD: ``yi = c(m) (m1i - m2i) / sp`` (Hedges' g, :func:`hedges_correction`),
      ``vi = 1/n1i + 1/n2i + yi^2 / (2 (n1i + n2i))`` (``UB``:
      ``1/n1i + 1/n2i + (1 - (m-2)/(m c(m)^2)) yi^2``).
    - ZCOR: ``yi = atanh(ri)``, ``vi = 1/(ni - 3)``.

    The continuity correction follows metafor's defaults exactly (``add=1/2, to="only0",
    drop00=FALSE``): ``add`` goes to all four cells of each table with a zero cell, and the
    corrected counts give both ``yi`` and ``vi`` -- for RD too, which metafor treats like OR and
    RR (it sets ``add=0`` by default only for measures such as AS, PHI, RTET, PFT). Where metafor
    returns NA (division by zero, ``ni <= 4`` for ZCOR, ``drop00``), metapool raises or drops.

    References
    ----------
    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. Journal of
    Statistical Software 36(3), 1-48 (``escalc``, R/escalc.r). Hedges, L. V. (1982). Estimation
    of effect size from a series of independent experiments. Psychological Bulletin 92(2),
    490-499. Fisher, R. A. (1921). On the "probable error" of a coefficient of correlation
    deduced from a small sample. Metron 1, 1-32.

    Examples
    --------
    >>> from metapool import datasets
    >>> dat = escalc("RR", datasets.load_frame("bcg"), ai="tpos", bi="tneg", ci="cpos", di="cneg")
    >>> round(float(dat["yi"][0]), 4), round(float(dat["vi"][0]), 4)
    (-0.8893, 0.3256)
    """
    measure = _check_measure(measure)
    _check_options(measure, add, to, drop00, vtype)
    layout, names, raw, base, labels = _resolve(measure, data, label, columns)
    values = {role: _numbers(raw[role], names[role], labels) for role in raw}
    keep = np.ones(len(labels), dtype=bool)
    if layout in ("counts", "events"):
        a, b, c, d = _cells(layout, values, raw, names, labels)
        if drop00:
            keep = ~(((a == 0) & (c == 0)) | ((b == 0) & (d == 0)))
        yi, vi = _two_by_two(measure, a, b, c, d, keep, float(add), to, vtype)
    elif layout == "means":
        _check_means(measure, values, raw, names, labels)
        yi, vi = _means(measure, values, vtype)
    else:
        _check_correlations(values, raw, names, labels)
        yi, vi = _correlations(values)
    _check_defined(measure, yi, vi, keep, raw, names, labels, add, to)
    out = base.copy()
    dropped = [labels[i] for i in np.flatnonzero(~keep)]
    out["yi"] = yi
    out["vi"] = vi
    if dropped:
        out = out.loc[keep]
        warnings.warn(f"drop00: left out {len(dropped)} stud{'y' if len(dropped) == 1 else 'ies'} with no events "
                      f"(or only events) in both groups: {dropped}", UserWarning, stacklevel=2)
    out.attrs["measure"] = measure
    out.attrs["dropped"] = dropped
    return out


def to_metadata(
    measure: str,
    data: pd.DataFrame | None = None,
    *,
    label: str | Sequence[str] | None = None,
    covariates: str | Sequence[str] | None = None,
    name: str | None = None,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
    vtype: str = "LS",
    **columns: Any,
) -> MetaData:
    """Compute effects with :func:`escalc` and build a :class:`~metapool.MetaData` remembering the measure.

    Parameters
    ----------
    measure, data, label, add, to, drop00, vtype, **columns
        As for :func:`escalc`.
    covariates : str or list of str, optional
        A formula or a list of numeric columns of ``data``, as for
        :meth:`metapool.MetaData.from_dataframe` (needs ``data``).
    name : str, optional
        Description of the data.

    Returns
    -------
    MetaData
        Effects ``yi``, sampling variances ``vi``, ``measure`` set; labels, covariates and the
        checks exactly as :meth:`metapool.MetaData.from_dataframe` makes them.

    Raises
    ------
    InputError
        As :func:`escalc`, and for covariates without ``data``.
    ValueError
        From :meth:`metapool.MetaData.from_dataframe` (labels, covariates).

    Examples
    --------
    >>> from metapool import datasets
    >>> d = to_metadata("OR", datasets.load_frame("hine1989"), ai="ai", n1i="n1i", ci="ci", n2i="n2i",
    ...                 label="source")
    >>> d.measure, d.J
    ('OR', 6)
    """
    table = escalc(measure, data, label=label, add=add, to=to, drop00=drop00, vtype=vtype, **columns)
    if data is None:
        if covariates is not None:
            raise InputError("covariates need a table: pass the raw columns as column names of 'data'")
        given = None if label is None else [str(v) for v in label]
        labels = None if given is None else [given[i] for i in table.index]  # the rows drop00 kept
        md = MetaData.from_arrays(table["yi"].to_numpy(), variance=table["vi"].to_numpy(), labels=labels, name=name)
    else:
        md = MetaData.from_dataframe(table.reset_index(drop=True), effect="yi", variance="vi", label=label,
                                     covariates=covariates, name=name)
    return dataclasses.replace(md, measure=measure)


# ------------------------------------------------------------------------------- arguments
def _check_options(measure: str, add: Any, to: Any, drop00: Any, vtype: Any) -> None:
    try:
        ok = float(add) >= 0 and np.isfinite(float(add)) and not isinstance(add, (bool, np.bool_))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"add must be a finite number >= 0 (the continuity correction); got {add!r}")
    if to not in TO_OPTIONS:
        raise InputError(f"to must be one of {', '.join(TO_OPTIONS)}; got {to!r}")
    if not isinstance(drop00, (bool, np.bool_)):
        raise InputError(f"drop00 must be True or False; got {drop00!r}")
    if vtype not in VTYPES[measure]:
        raise InputError(f"vtype {vtype!r} is not available for measure {measure!r}; "
                         f"available: {', '.join(VTYPES[measure])}")


def _resolve(
    measure: str, data: pd.DataFrame | None, label: Any, columns: Mapping[str, Any]
) -> tuple[str, dict[str, str], dict[str, np.ndarray], pd.DataFrame, list[str]]:
    """Pick the layout from the roles given; return (layout, column names, raw values, base table, labels)."""
    import pandas as pd

    layout = _layout(measure, set(columns))
    roles = LAYOUTS[layout]
    if data is not None:
        if not isinstance(data, pd.DataFrame):
            raise InputError(f"data must be a pandas DataFrame; got {type(data).__name__}")
        from metapool.frames import require_columns, study_labels

        for role in roles:
            if not isinstance(columns[role], str):
                raise InputError(f"with data, {role} must name a column of data; got {columns[role]!r}")
        try:
            require_columns(data, [(role, columns[role]) for role in roles]
                             + [("label", label if isinstance(label, str) else None)])
        except ValueError as err:
            raise InputError(str(err)) from None
        if label is not None and not isinstance(label, str):
            raise InputError(f"with data, label must name a column of data; got {label!r}")
        names = {role: columns[role] for role in roles}
        raw = {role: data[names[role]].to_numpy() for role in roles}
        base = data
        try:
            labels = study_labels(data, label)
        except ValueError as err:
            raise InputError(str(err)) from None
    else:
        names = {role: role for role in roles}
        raw = {role: _raw_vector(columns[role], role) for role in roles}
        sizes = {role: raw[role].size for role in roles}
        if len(set(sizes.values())) > 1:
            raise InputError(f"the columns have different lengths: {sizes}")
        base = pd.DataFrame({role: raw[role] for role in roles})
        n = next(iter(sizes.values()))
        labels = _default_labels(n) if label is None else [str(v) for v in label]
        if len(labels) != n:
            raise InputError(f"label has {len(labels)} entries for {n} studies")
    if len(labels) == 0:
        raise InputError("the table has no studies")
    return layout, names, raw, base, labels


def _layout(measure: str, given: set[str]) -> str:
    for layout in MEASURES[measure]:
        if given == set(LAYOUTS[layout]):
            return layout
    options = " or ".join(", ".join(LAYOUTS[k]) for k in MEASURES[measure])
    raise InputError(f"measure {measure!r} takes the columns {options}; got {', '.join(sorted(given)) or 'none'}")


def _raw_vector(values: Any, role: str) -> np.ndarray:
    import pandas as pd

    if isinstance(values, (str, bytes)):
        raise InputError(f"without data, {role} must be an array of values; got the string {values!r} "
                         "(pass data=... to name columns)")
    a = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values)
    return a.ravel() if a.ndim else a.reshape(1)


# --------------------------------------------------------------------------------- checking
def _where(labels: Sequence[str], i: int) -> str:
    return f"study {labels[i]!r} (row {i + 1})"


def _fail(column: str, labels: Sequence[str], i: int, value: Any, what: str) -> NoReturn:
    raise InputError(f"column {column!r}, {_where(labels, i)}: value {_show(value)} {what}")


def _numbers(raw: np.ndarray, column: str, labels: Sequence[str]) -> np.ndarray:
    """Floats of a column; text, missing and infinite values raise naming the value as written."""
    try:
        a = _as_float_vector(raw, column, labels)
    except ValueError as err:
        raise InputError(str(err)) from None
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        i = int(bad[0])
        _fail(column, labels, i, raw[i], "is missing (NaN)" if np.isnan(a[i]) else "is infinite")
    return a


def _first(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def _check_whole(a: np.ndarray, raw: np.ndarray, column: str, labels: Sequence[str], low: int, what: str) -> None:
    i = _first(a != np.floor(a))
    if i is not None:
        _fail(column, labels, i, raw[i], f"is not a whole number; {what} must be whole numbers >= {low}")
    i = _first(a < low)
    if i is not None:
        why = "is negative" if a[i] < 0 else f"is below {low}"
        _fail(column, labels, i, raw[i], f"{why}; {what} must be whole numbers >= {low}")


def _cells(layout: str, v: Mapping[str, np.ndarray], raw: Mapping[str, np.ndarray],
           names: Mapping[str, str], labels: Sequence[str]) -> tuple[np.ndarray, ...]:
    """The four cells ai, bi, ci, di after checking counts (and group sizes for the events layout)."""
    if layout == "counts":
        for role in LAYOUTS["counts"]:
            _check_whole(v[role], raw[role], names[role], labels, 0, "counts")
        a, b, c, d = (v[r] for r in LAYOUTS["counts"])
        for x, y, group in ((a, b, "treated"), (c, d, "control")):
            i = _first(x + y == 0)
            if i is not None:
                rx, ry = ("ai", "bi") if group == "treated" else ("ci", "di")
                raise InputError(f"columns {names[rx]!r} and {names[ry]!r}, {_where(labels, i)}: values "
                                 f"{_show(raw[rx][i])} and {_show(raw[ry][i])}: the {group} group has no "
                                 "participants, so the study has no defined effect")
        return a, b, c, d
    for ev, n, group in (("ai", "n1i", "treated"), ("ci", "n2i", "control")):
        _check_whole(v[ev], raw[ev], names[ev], labels, 0, "event counts")
        _check_whole(v[n], raw[n], names[n], labels, 0, "group sizes")
        i = _first(v[n] == 0)
        if i is not None:
            _fail(names[n], labels, i, raw[n][i], f"is a group size of 0: the {group} group has no participants, "
                  "so the study has no defined effect")
        i = _first(v[ev] > v[n])
        if i is not None:
            _fail(names[ev], labels, i, raw[ev][i], f"is larger than the group size {_show(raw[n][i])} "
                  f"(column {names[n]!r}); events cannot exceed the group size")
    return v["ai"], v["n1i"] - v["ai"], v["ci"], v["n2i"] - v["ci"]


def _check_means(measure: str, v: Mapping[str, np.ndarray], raw: Mapping[str, np.ndarray],
                 names: Mapping[str, str], labels: Sequence[str]) -> None:
    for sd in ("sd1i", "sd2i"):
        i = _first(~(v[sd] > 0))
        if i is not None:
            _fail(names[sd], labels, i, raw[sd][i], "is not > 0; standard deviations must be positive")
    low = _MIN_GROUP[measure]
    for n in ("n1i", "n2i"):
        _check_whole(v[n], raw[n], names[n], labels, low,
                     "group sizes (a standard deviation needs at least 2 observations)")


def _check_correlations(v: Mapping[str, np.ndarray], raw: Mapping[str, np.ndarray],
                        names: Mapping[str, str], labels: Sequence[str]) -> None:
    i = _first(~(np.abs(v["ri"]) < 1))
    if i is not None:
        _fail(names["ri"], labels, i, raw["ri"][i], "is outside (-1, 1); a correlation's Fisher z is finite "
              "only strictly between -1 and 1")
    _check_whole(v["ni"], raw["ni"], names["ni"], labels, _MIN_CORRELATION_N,
                 "sample sizes (the variance 1/(ni - 3) of Fisher's z is left undefined by metafor for ni <= 4)")


def _check_defined(measure: str, yi: np.ndarray, vi: np.ndarray, keep: np.ndarray, raw: Mapping[str, np.ndarray],
                   names: Mapping[str, str], labels: Sequence[str], add: float, to: str) -> None:
    """Raise for a kept study whose effect or variance is not a finite number (variance > 0)."""
    bad = keep & ~(np.isfinite(yi) & np.isfinite(vi) & (vi > 0))
    i = _first(bad)
    if i is None:
        return
    cols = list(names)
    shown = ", ".join(f"{names[r]}={_show(raw[r][i])}" for r in cols)
    if not np.isfinite(yi[i]):
        what = f"the {DESCRIPTIONS[measure]} is undefined (not finite)"
    elif not np.isfinite(vi[i]):
        what = "its sampling variance is undefined (not finite)"
    else:
        what = f"its sampling variance is {_show(vi[i])}, not > 0"
    hint = ""
    if measure in _COUNT_MEASURES:
        hint = ("; with a zero cell use the continuity correction (add=0.5, to='only0', the default), or "
                "drop00=True to leave out studies with no events (or only events) in both groups")
        if to != "none" and add > 0:
            hint = "; the values are too extreme for double precision"
    else:
        hint = "; the values are too extreme for double precision: rescale them"
    more = int(bad.sum()) - 1
    raise InputError(f"columns {', '.join(repr(names[r]) for r in cols)}, {_where(labels, i)}: values {shown}: "
                     f"{what}{hint}" + (f" (and {more} more)" if more else ""))


# ----------------------------------------------------------------------------- computations
def _correction(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, keep: np.ndarray,
                add: float, to: str) -> np.ndarray:
    """Which tables get ``add`` (metafor's ``to``); tables left out by drop00 do not count."""
    zero = keep & ((a == 0) | (b == 0) | (c == 0) | (d == 0))
    if to == "all":
        return np.ones_like(zero)
    if to == "only0":
        return zero
    if to == "if0all":
        return np.full_like(zero, bool(zero.any()))
    return np.zeros_like(zero)


def _two_by_two(measure: str, a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, keep: np.ndarray,
                add: float, to: str, vtype: str) -> tuple[np.ndarray, np.ndarray]:
    cc = _correction(a, b, c, d, keep, add, to) * add
    a, b, c, d = a + cc, b + cc, c + cc, d + cc
    n1, n2 = a + b, c + d
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p1, p2 = a / n1, c / n2
        if measure == "OR":
            yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
            vi = 1 / a + 1 / b + 1 / c + 1 / d
        elif measure == "RR":
            yi = np.log(p1) - np.log(p2)
            vi = 1 / a - 1 / n1 + 1 / c - 1 / n2
        else:
            yi = p1 - p2
            k = 0.0 if vtype == "LS" else 1.0
            vi = p1 * (1 - p1) / (n1 - k) + p2 * (1 - p2) / (n2 - k)
    return yi, vi


def _means(measure: str, v: Mapping[str, np.ndarray], vtype: str) -> tuple[np.ndarray, np.ndarray]:
    m1, s1, n1, m2, s2, n2 = (v[r] for r in LAYOUTS["means"])
    m = n1 + n2 - 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sp2 = ((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / m
        if measure == "MD":
            yi = m1 - m2
            vi = s1**2 / n1 + s2**2 / n2 if vtype == "LS" else sp2 * (1 / n1 + 1 / n2)
            return yi, vi
        cm = hedges_correction(m)
        yi = cm * (m1 - m2) / np.sqrt(sp2)
        if vtype == "LS":
            vi = 1 / n1 + 1 / n2 + yi**2 / (2 * (n1 + n2))
        else:
            vi = 1 / n1 + 1 / n2 + (1 - (m - 2) / (m * cm**2)) * yi**2
    return yi, vi


def _correlations(v: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.arctanh(v["ri"]), 1.0 / (v["ni"] - 3)
