"""Reading meta-analysis data from pandas DataFrames and CSV files, with covariates by formula.

The entry points are :func:`read_csv` and :meth:`metapool.MetaData.from_dataframe`; both check
every value and never drop, clip or reorder a study. Covariates are a list of numeric columns
(intercept plus those columns) or a one-sided formula evaluated by formulaic (imported only
when covariates are given, to keep the command line quick to start).
"""

from __future__ import annotations

import keyword
import os
import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from metapool.data import MetaData, _default_labels, _show, effects_and_se

__all__ = ["read_csv", "frame_to_metadata", "design_from_frame", "design_row_from_values"]

Design = tuple[np.ndarray, tuple[str, ...], "str | None", "pd.DataFrame | None", "object | None"]


# ----------------------------------------------------------------------------- public readers
def read_csv(
    path: str | os.PathLike | Any,
    effect: str,
    se: str | None = None,
    variance: str | None = None,
    label: str | None = None,
    covariates: str | Sequence[str] | None = None,
    name: str | None = None,
    **pandas_kwargs: Any,
) -> MetaData:
    """Read a CSV file with one row per study into a :class:`~metapool.MetaData`.

    Parameters
    ----------
    path : str, path-like or file-like
        The CSV file.
    effect : str
        Column of effects, e.g. ``"X_beta"`` for the original analysis's file.
    se, variance : str, optional
        Column of standard errors (e.g. ``"X_stderr"``) or of sampling variances; exactly one.
    label : str, optional
        Column of unique study labels; default ``"1".."J"``.
    covariates : str or list of str, optional
        A formula such as ``"~ ablat + year"`` or a list of numeric columns; see
        :meth:`metapool.MetaData.from_dataframe`.
    name : str, optional
        Description of the data; default the file name.
    **pandas_kwargs
        Passed to :func:`pandas.read_csv` (``sep``, ``decimal``, ``encoding``, ...).

    Returns
    -------
    MetaData

    Raises
    ------
    ValueError
        Naming the column, the study (label and row number, counting data rows from 1) and the
        value of the first bad entry; see :meth:`metapool.MetaData.from_dataframe`.

    Notes
    -----
    In the effect and standard-error columns only empty cells are read as missing; text such as
    ``NA`` or ``n/a`` is kept, so the error names the value exactly as the file has it (covariate
    columns follow pandas's defaults: a marker there is a missing covariate, reported as such).
    A missing or non-numeric value is reported, never dropped.

    Examples
    --------
    >>> data = read_csv("byCountry_testscores.csv", effect="X_beta", se="X_stderr")  # doctest: +SKIP
    """
    df = pd.read_csv(path, **pandas_kwargs)
    if not {"keep_default_na", "na_values", "usecols"} & set(pandas_kwargs):
        df = _verbatim_numbers(df, path, [c for c in (effect, se, variance) if c in df.columns], pandas_kwargs)
    if name is None and isinstance(path, (str, os.PathLike)):
        name = Path(path).name
    return frame_to_metadata(df, effect=effect, se=se, variance=variance, label=label,
                             covariates=covariates, name=name)


def _verbatim_numbers(df: pd.DataFrame, path, columns: list[str], pandas_kwargs: dict) -> pd.DataFrame:
    """Re-read the effect and standard-error columns keeping markers such as ``n/a`` as text.

    pandas turns ``NA``, ``n/a``, ``null``... into NaN; for these columns the error should quote
    the value as the file has it. Empty cells stay missing. Covariate columns keep pandas's
    default, so a marker there is a missing covariate (reported), not a new category.
    """
    if not columns:
        return df
    if hasattr(path, "seek"):
        path.seek(0)
    elif not isinstance(path, (str, os.PathLike)):
        return df  # a stream that cannot be read twice: keep pandas's reading
    raw = pd.read_csv(path, usecols=columns, keep_default_na=False, na_values=[""], **pandas_kwargs)
    if len(raw) != len(df):
        return df
    df = df.copy()
    for c in columns:
        df[c] = raw[c].to_numpy()
    return df


def frame_to_metadata(
    df: pd.DataFrame,
    effect: str,
    se: str | None = None,
    variance: str | None = None,
    label: str | None = None,
    covariates: str | Sequence[str] | None = None,
    name: str | None = None,
) -> MetaData:
    """Implementation of :meth:`metapool.MetaData.from_dataframe` (see there)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame; got {type(df).__name__}")
    if (se is None) == (variance is None):
        raise ValueError("give exactly one of 'se' (a column of standard errors) and "
                         "'variance' (a column of sampling variances)")
    _require_columns(df, [("effect", effect), ("se", se), ("variance", variance), ("label", label)])
    if len(df) < 2:
        raise ValueError(f"need at least 2 studies for a hierarchical model; the table has {len(df)} row(s)")
    labels = _labels(df, label)
    columns = {"effect": effect, "se": se, "variance": variance}
    y, s = effects_and_se(
        _values(df, effect), None if se is None else _values(df, se),
        None if variance is None else _values(df, variance), labels,
        columns={k: v for k, v in columns.items() if v is not None},
    )
    X, names, formula, table, spec = design_from_frame(df, covariates, labels)
    return MetaData(y=y, se=s, labels=tuple(labels), X=X, coef_names=names, name=name,
                    covariates=table, formula=formula, model_spec=spec)


# ------------------------------------------------------------------------------------ columns
def _require_columns(df: pd.DataFrame, roles: Sequence[tuple[str, Any]]) -> None:
    """Raise if a named column is absent (listing the available ones) or appears twice."""
    for role, col in roles:
        if col is None:
            continue
        if col not in df.columns:
            raise ValueError(f"{role} column {col!r} not found; available columns: {list(df.columns)}")
        if int((df.columns == col).sum()) > 1:
            raise ValueError(f"{role} column {col!r} appears more than once in the table")


def _values(df: pd.DataFrame, col: Any) -> np.ndarray:
    """A column as floats when numeric (missing -> NaN), else as objects (text kept for messages)."""
    s = df[col]
    if is_numeric_dtype(s):
        return s.to_numpy(dtype=float, na_value=np.nan)
    return s.to_numpy(dtype=object)


def _labels(df: pd.DataFrame, label: Any) -> list[str]:
    """Study labels as strings: the label column, or ``"1".."J"``; missing or duplicates raise."""
    if label is None:
        return _default_labels(len(df))
    raw = df[label].tolist()
    labels: list[str] = []
    seen: dict[str, int] = {}
    for i, v in enumerate(raw):
        text = "" if _is_missing(v) else str(v)
        if not text.strip():
            raise ValueError(f"column {label!r}, study in row {i + 1}: label value {_show(v)} is missing")
        if text in seen:
            raise ValueError(f"column {label!r}: duplicate study label {text!r} in rows {seen[text] + 1} and {i + 1}")
        seen[text] = i
        labels.append(text)
    return labels


def _is_missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _parses_as_number(v: Any) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


# ------------------------------------------------------------------------------------- design
def design_from_frame(df: pd.DataFrame, covariates: str | Sequence[str] | None, labels: Sequence[str]) -> Design:
    """Build ``(X, coef_names, formula, covariate_table, model_spec)`` from a table.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per study.
    covariates : str or list of str or None
        A one-sided formula, a list of numeric columns (intercept plus those columns), or
        ``None`` (the single ``Intercept`` column).
    labels : sequence of str
        Study labels, for messages.

    Returns
    -------
    tuple
        ``X`` (J, p), the coefficient names as formulaic writes them, the formula (``None``
        without covariates), the covariate columns used and formulaic's ``ModelSpec``.
    """
    if covariates is None or (not isinstance(covariates, str) and len(covariates) == 0):
        return np.ones((len(df), 1)), ("Intercept",), None, None, None
    if isinstance(covariates, str):
        return _formula_design(df, covariates.strip(), labels, used=None)
    cols = list(covariates)
    _require_columns(df, [("covariate", c) for c in cols])
    _check_numeric(df, cols, labels)
    formula = "~ " + " + ".join(_quote(c) for c in cols)
    return _formula_design(df, formula, labels, used=cols)


def _quote(col: Any) -> str:
    name = str(col)
    if name.isidentifier() and not keyword.iskeyword(name):
        return name
    if "`" in name:
        raise ValueError(f"covariate column {name!r}: names containing a backtick cannot be used")
    return f"`{name}`"


def _check_numeric(df: pd.DataFrame, cols: Sequence[Any], labels: Sequence[str]) -> None:
    """A list of covariates takes numeric columns only: name the first text value otherwise."""
    for c in cols:
        s = df[c]
        if is_numeric_dtype(s) and not is_bool_dtype(s):
            continue
        vals = s.to_numpy(dtype=object)
        bad = [i for i, v in enumerate(vals) if not _is_missing(v) and not _parses_as_number(v)]
        i = bad[0] if bad else 0
        raise ValueError(
            f"covariate column {c!r} is not numeric (study {labels[i]!r} (row {i + 1}): value {_show(vals[i])}); "
            f"a list of covariates takes numeric columns only: give a formula such as '~ {_quote(c)}' "
            "to expand a categorical column into indicator columns"
        )


def _formula_design(df: pd.DataFrame, formula: str, labels: Sequence[str], used: Sequence[Any] | None) -> Design:
    formulaic = _formulaic()
    parsed = _parse_formula(formula)
    available = [str(c) for c in df.columns]
    missing = sorted(set(parsed.required_variables) - set(available))
    if missing:
        raise ValueError(f"covariates formula {formula!r}: column(s) {missing} not found; "
                         f"available columns: {list(df.columns)}")
    if used is None:
        used = _formula_columns(df, formula, parsed.required_variables)
    _check_covariate_values(df, used, labels)
    table = df[list(used)].reset_index(drop=True)
    table.columns = [str(c) for c in used]
    try:
        mm = formulaic.model_matrix(parsed, table, na_action="raise")
    except Exception as err:  # formulaic raises many types; report them all as bad input
        raise ValueError(f"covariates formula {formula!r} could not be evaluated: {err}; "
                         f"available columns: {list(df.columns)}") from None
    if mm.shape[0] != len(df):  # never let the formula library drop a study
        raise ValueError(f"covariates formula {formula!r} produced {mm.shape[0]} rows for {len(df)} studies")
    names = tuple(str(c) for c in mm.columns)
    return mm.to_numpy(dtype=float), names, formula, table, mm.model_spec


def _formulaic() -> Any:
    import formulaic

    return formulaic


def _parse_formula(formula: str) -> Any:
    """Parse a one-sided formula; a left-hand side or a syntax error raises ValueError."""
    from formulaic import Formula
    from formulaic.formula import SimpleFormula

    try:
        parsed = Formula(formula)
    except Exception as err:
        raise ValueError(f"covariates formula {formula!r} is not a valid formula: {err}") from None
    if not isinstance(parsed, SimpleFormula):
        raise ValueError(f"covariates formula {formula!r} must be one-sided, such as '~ ablat + year' "
                         "(the effect is given separately)")
    return parsed


def _formula_columns(df: pd.DataFrame, formula: str, required: set[str]) -> list[Any]:
    """Columns the formula reads, in table order: formulaic's required variables plus any column
    named in the formula text (stateful transforms such as ``center(x)`` are not always listed)."""
    cols = []
    for c in df.columns:
        name = str(c)
        named = re.search(rf"(?<![\w.`]){re.escape(name)}(?![\w`])", formula) or f"`{name}`" in formula
        if name in required or named:
            cols.append(c)
    return cols


def _check_covariate_values(df: pd.DataFrame, cols: Sequence[Any], labels: Sequence[str]) -> None:
    """Missing, infinite, mixed text/number and constant covariates raise (formulaic would drop
    rows with missing values silently; metapool never does)."""
    for c in cols:
        s = df[c]
        vals = s.to_numpy(dtype=object)
        miss = np.flatnonzero(s.isna().to_numpy())
        if miss.size:
            i = int(miss[0])
            raise ValueError(
                f"covariate column {c!r}, study {labels[i]!r} (row {i + 1}): value {_show(vals[i])} is missing; "
                "studies are never dropped: fill in the value or remove the study"
            )
        if is_numeric_dtype(s) and not is_bool_dtype(s):
            a = s.to_numpy(dtype=float)
            bad = np.flatnonzero(~np.isfinite(a))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"covariate column {c!r}, study {labels[i]!r} (row {i + 1}): value {_show(a[i])} is infinite")
        else:
            _check_not_mixed(c, vals, labels)
        if s.nunique(dropna=False) < 2:
            raise ValueError(f"covariate column {c!r} is constant (value {_show(vals[0])} in every study); "
                             "its coefficient cannot be estimated: drop it")


def _check_not_mixed(col: Any, vals: np.ndarray, labels: Sequence[str]) -> None:
    """A text column whose other values are numbers holds a typo, not a category."""
    numeric = [_parses_as_number(v) for v in vals]
    if any(numeric) and not all(numeric):
        i = numeric.index(False)
        raise ValueError(
            f"covariate column {col!r}, study {labels[i]!r} (row {i + 1}): value {_show(vals[i])} is not a number, "
            "but other values of the column are numbers"
        )


# ------------------------------------------------------------------------------ new-study row
def design_row_from_values(data: MetaData, values: Mapping[str, Any]) -> np.ndarray:
    """Encode the raw covariate values of a new study (see :meth:`MetaData.design_row`)."""
    spec = data.model_spec
    if spec is None and data.formula is not None and data.covariates is not None:
        spec = _formulaic().model_matrix(data.formula, data.covariates, na_action="raise").model_spec
    if spec is None:
        return _row_by_names(data, values)
    expected = [str(c) for c in data.covariates.columns] if data.covariates is not None else sorted(spec.required_variables)
    _check_keys(values, expected, "covariates")
    frame = pd.DataFrame({c: [values[c]] for c in expected}, index=[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            mm = spec.get_model_matrix(frame)
            row = mm[list(data.coef_names)].to_numpy(dtype=float)[0]
        except Exception as err:
            raise ValueError(f"new-study covariates {dict(values)!r} cannot be encoded by "
                             f"{data.formula!r}: {err}") from None
    mismatch = [w for w in caught if "Mismatch" in w.category.__name__]  # e.g. an unseen category level
    if mismatch or not np.all(np.isfinite(row)):
        why = "; ".join(str(w.message) for w in mismatch) or "non-finite result"
        raise ValueError(f"new-study covariates {dict(values)!r} cannot be encoded by {data.formula!r}: {why}")
    return row


def _check_keys(values: Mapping[str, Any], expected: Sequence[str], what: str) -> None:
    unknown = [k for k in values if k not in expected]
    missing = [k for k in expected if k not in values]
    if unknown or missing:
        parts = ([f"unknown {unknown}"] if unknown else []) + ([f"missing {missing}"] if missing else [])
        raise ValueError(f"new-study {what}: expected values for {list(expected)}; " + ", ".join(parts))


def _row_by_names(data: MetaData, values: Mapping[str, Any]) -> np.ndarray:
    """Without a formula the keys are the coefficient names; ``Intercept`` defaults to 1."""
    vals = dict(values)
    if "Intercept" in data.coef_names:
        vals.setdefault("Intercept", 1.0)
    _check_keys(vals, list(data.coef_names), "coefficients")
    row = np.empty(data.p)
    for k, nm in enumerate(data.coef_names):
        try:
            row[k] = float(vals[nm])
        except (TypeError, ValueError):
            raise ValueError(f"new-study value of {nm!r} is not a number: {_show(vals[nm])}") from None
    if not np.all(np.isfinite(row)):
        raise ValueError(f"new-study covariate row {dict(zip(data.coef_names, row))} is not finite")
    return row
