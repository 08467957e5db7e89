"""Tables of studies as arrays: columns, labels, values and the design matrix by formula.

Used by :meth:`metapool.MetaData.from_dataframe` (and so by :func:`metapool.read_csv` and
:mod:`metapool.effects`) and by :meth:`metapool.MetaData.design_row`. Every check names the
column, the study (label and row) and the value as written; nothing is dropped, clipped or
reordered. Covariates are a list of numeric columns (intercept plus those columns) or a one-sided
formula evaluated by formulaic (imported only when covariates are given).
"""

from __future__ import annotations

import keyword
import re
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from metapool.errors import InputError

__all__ = ["require_columns", "column_values", "study_labels", "default_labels", "show",
           "design_from_frame", "design_row_from_values"]

Design = tuple[np.ndarray, tuple[str, ...], "str | None", "pd.DataFrame | None", "object | None"]


def show(v: Any) -> str:
    """A value as written in error messages: numpy scalars as plain Python numbers (``nan``, ``-0.1``)."""
    if isinstance(v, np.generic):
        v = v.item()
    return repr(v)


def default_labels(n: int) -> list[str]:
    """Labels ``"1".."n"`` (CONVENTIONS.md)."""
    return list(map(str, range(1, n + 1)))


# ------------------------------------------------------------------------------------ columns
def require_columns(df: pd.DataFrame, roles: Sequence[tuple[str, Any]]) -> None:
    """Raise if a named column is absent (listing the available ones) or appears twice."""
    for role, col in roles:
        if col is None:
            continue
        if col not in df.columns:
            raise InputError(f"{role} column {col!r} not found; available columns: {list(df.columns)}")
        if int((df.columns == col).sum()) > 1:
            raise InputError(f"{role} column {col!r} appears more than once in the table")


def column_values(df: pd.DataFrame, col: Any) -> np.ndarray:
    """A column as floats when numeric (missing -> NaN), else as objects (text kept for messages)."""
    s = df[col]
    if is_numeric_dtype(s):
        return s.to_numpy(dtype=float, na_value=np.nan)
    return s.to_numpy(dtype=object)


def study_labels(df: pd.DataFrame, label: Any) -> list[str]:
    """Study labels as strings: the label column, or ``"1".."J"``; missing or duplicates raise."""
    if label is None:
        return default_labels(len(df))
    raw = df[label].tolist()
    labels: list[str] = []
    seen: dict[str, int] = {}
    for i, v in enumerate(raw):
        text = "" if _is_missing(v) else str(v)
        if not text.strip():
            raise InputError(f"column {label!r}, study in row {i + 1}: label value {show(v)} is missing")
        if text in seen:
            raise InputError(f"column {label!r}: duplicate study label {text!r} in rows {seen[text] + 1} and {i + 1}")
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
    require_columns(df, [("covariate", c) for c in cols])
    _check_numeric(df, cols, labels)
    formula = "~ " + " + ".join(_quote(c) for c in cols)
    return _formula_design(df, formula, labels, used=cols)


def _quote(col: Any) -> str:
    name = str(col)
    if name.isidentifier() and not keyword.iskeyword(name):
        return name
    if "`" in name:
        raise InputError(f"covariate column {name!r}: names containing a backtick cannot be used")
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
        raise InputError(
            f"covariate column {c!r} is not numeric (study {labels[i]!r} (row {i + 1}): value {show(vals[i])}); "
            f"a list of covariates takes numeric columns only: give a formula such as '~ {_quote(c)}' "
            "to expand a categorical column into indicator columns"
        )


def _formula_design(df: pd.DataFrame, formula: str, labels: Sequence[str], used: Sequence[Any] | None) -> Design:
    formulaic = _formulaic()
    parsed = _parse_formula(formula)
    available = [str(c) for c in df.columns]
    missing = sorted(set(parsed.required_variables) - set(available))
    if missing:
        raise InputError(f"covariates formula {formula!r}: column(s) {missing} not found; "
                         f"available columns: {list(df.columns)}")
    if used is None:
        used = _formula_columns(df, formula, parsed.required_variables)
    _check_covariate_values(df, used, labels)
    table = df[list(used)].reset_index(drop=True)
    table.columns = [str(c) for c in used]
    try:
        mm = formulaic.model_matrix(parsed, table, na_action="raise")
    except Exception as err:  # formulaic raises many types; report them all as bad input
        raise InputError(f"covariates formula {formula!r} could not be evaluated: {err}; "
                         f"available columns: {list(df.columns)}") from None
    if mm.shape[0] != len(df):  # never let the formula library drop a study
        raise InputError(f"covariates formula {formula!r} produced {mm.shape[0]} rows for {len(df)} studies")
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
        raise InputError(f"covariates formula {formula!r} is not a valid formula: {err}") from None
    if not isinstance(parsed, SimpleFormula):
        raise InputError(f"covariates formula {formula!r} must be one-sided, such as '~ ablat + year' "
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
            raise InputError(
                f"covariate column {c!r}, study {labels[i]!r} (row {i + 1}): value {show(vals[i])} is missing; "
                "studies are never dropped: fill in the value or remove the study"
            )
        if is_numeric_dtype(s) and not is_bool_dtype(s):
            a = s.to_numpy(dtype=float)
            bad = np.flatnonzero(~np.isfinite(a))
            if bad.size:
                i = int(bad[0])
                raise InputError(f"covariate column {c!r}, study {labels[i]!r} (row {i + 1}): value {show(a[i])} is infinite")
        else:
            _check_not_mixed(c, vals, labels)
        if s.nunique(dropna=False) < 2:
            raise InputError(f"covariate column {c!r} is constant (value {show(vals[0])} in every study); "
                             "its coefficient cannot be estimated: drop it")


def _check_not_mixed(col: Any, vals: np.ndarray, labels: Sequence[str]) -> None:
    """A text column whose other values are numbers holds a typo, not a category."""
    numeric = [_parses_as_number(v) for v in vals]
    if any(numeric) and not all(numeric):
        i = numeric.index(False)
        raise InputError(
            f"covariate column {col!r}, study {labels[i]!r} (row {i + 1}): value {show(vals[i])} is not a number, "
            "but other values of the column are numbers"
        )


# ------------------------------------------------------------------------------ new-study row
def design_row_from_values(data: Any, values: Mapping[str, Any]) -> np.ndarray:
    """Encode the raw covariate values of a new study (see :meth:`MetaData.design_row`)."""
    spec = data.model_spec
    if spec is None and data.formula is not None and data.covariates is not None:
        spec = _formulaic().model_matrix(data.formula, data.covariates, na_action="raise").model_spec
    if spec is None:
        return _row_by_names(data, values)
    expected = [str(c) for c in data.covariates.columns] if data.covariates is not None else sorted(spec.required_variables)
    if "Intercept" in values and "Intercept" not in expected:
        raise InputError(f"new-study covariates: the intercept is 1 for every study; give only {expected}")
    _check_keys(values, expected, "covariates")
    frame = pd.DataFrame({c: [values[c]] for c in expected}, index=[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            mm = spec.get_model_matrix(frame)
            row = mm[list(data.coef_names)].to_numpy(dtype=float)[0]
        except Exception as err:
            raise InputError(f"new-study covariates {dict(values)!r} cannot be encoded by "
                             f"{data.formula!r}: {err}") from None
    mismatch = [w for w in caught if "Mismatch" in w.category.__name__]  # e.g. an unseen category level
    if mismatch or not np.all(np.isfinite(row)):
        why = "; ".join(str(w.message) for w in mismatch) or "non-finite result"
        raise InputError(f"new-study covariates {dict(values)!r} cannot be encoded by {data.formula!r}: {why}")
    return row


def _check_keys(values: Mapping[str, Any], expected: Sequence[str], what: str) -> None:
    unknown = [k for k in values if k not in expected]
    missing = [k for k in expected if k not in values]
    if unknown or missing:
        parts = ([f"unknown {unknown}"] if unknown else []) + ([f"missing {missing}"] if missing else [])
        raise InputError(f"new-study {what}: expected values for {list(expected)}; " + ", ".join(parts))


def _row_by_names(data: Any, values: Mapping[str, Any]) -> np.ndarray:
    """Without a formula the keys are the coefficient names; ``Intercept`` is always 1."""
    vals = dict(values)
    if "Intercept" in data.coef_names:
        if "Intercept" in vals:
            raise InputError("new-study covariates: the intercept is 1 for every study; give only the covariates "
                             f"{[c for c in data.coef_names if c != 'Intercept']}")
        vals["Intercept"] = 1.0
    _check_keys(vals, list(data.coef_names), "coefficients")
    row = np.empty(data.p)
    for k, nm in enumerate(data.coef_names):
        try:
            row[k] = float(vals[nm])
        except (TypeError, ValueError):
            raise InputError(f"new-study value of {nm!r} is not a number: {show(vals[nm])}") from None
    if not np.all(np.isfinite(row)):
        raise InputError(f"new-study covariate row {dict(zip(data.coef_names, row))} is not finite")
    return row
