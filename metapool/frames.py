"""Tables of studies as arrays: columns, labels, values and the design matrix by formula.

Used by :meth:`metapool.MetaData.from_dataframe` (and so by :func:`metapool.read_csv` and
:mod:`metapool.effects`) and by :meth:`metapool.MetaData.design_row`. Every check names the
column, the study (label and row) and the value as written; nothing is dropped, clipped or
reordered. Covariates are a list of numeric columns (intercept plus those columns) or a one-sided
formula evaluated by formulaic (imported only when covariates are given). pandas is imported when
a table is handled, not with this module: :meth:`MetaData.from_arrays` uses only
:func:`default_labels` and :func:`show`, and the exact engine's import stays free of pandas.
"""

from __future__ import annotations

import keyword
import re
import warnings
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from metapool.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["require_columns", "column_values", "study_labels", "default_labels", "show",
           "design_from_frame", "design_row_from_values", "design_rows_from_frame", "default_new_study",
           "describe_new_study"]

Design = tuple[np.ndarray, tuple[str, ...], "str | None", "pd.DataFrame | None", "object | None"]


def is_numeric_dtype(s: Any) -> bool:
    """pandas' ``is_numeric_dtype`` (pandas imported on first use)."""
    from pandas.api.types import is_numeric_dtype as numeric

    return numeric(s)


def is_bool_dtype(s: Any) -> bool:
    """pandas' ``is_bool_dtype`` (pandas imported on first use)."""
    from pandas.api.types import is_bool_dtype as boolean

    return boolean(s)


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
    return labels_from_values(df[label].tolist(), label)


def labels_from_values(raw: Sequence[Any], label: Any) -> list[str]:
    """Study labels as strings from the values of the label column ``label``; missing or
    duplicates raise (rows counted from 1 within ``raw``)."""
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
    if isinstance(v, str):  # text is never missing (pandas.isna agrees), and needs no pandas
        return False
    import pandas as pd

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
    spec = _model_spec(data)
    if spec is None:
        return _row_by_names(data, values)
    expected = _expected_columns(data, spec)
    if "Intercept" in values and "Intercept" not in expected:
        raise InputError(f"new-study covariates: the intercept is 1 for every study; give only {expected}")
    _check_keys(values, expected, "covariates")
    import pandas as pd

    frame = pd.DataFrame({c: [values[c]] for c in expected}, index=[0])
    try:
        return _encode(data, spec, frame, expected)[0]
    except InputError as err:
        raise InputError(f"new-study covariates {dict(values)!r} cannot be encoded by {data.formula!r}: {err}") from None


def design_rows_from_frame(data: Any, newdata: pd.DataFrame) -> np.ndarray:
    """Encode a table of new studies' raw covariate values, one row each (see :meth:`MetaData.design_rows`).

    Parameters
    ----------
    data : MetaData
        The fitted data: its formula's model spec encodes the rows exactly as the studies were
        (categorical levels, stateful transforms such as ``center``).
    newdata : pandas.DataFrame
        One row per new study; columns the covariate columns of the fit (with a formula) or the
        coefficient names (without one; ``Intercept`` may be left out and is then 1).

    Returns
    -------
    ndarray, shape (len(newdata), p)

    Raises
    ------
    InputError
        Missing or unknown columns, missing or non-finite values, a category level the fit did
        not see (naming column, row and value), or a table without rows.
    """
    import pandas as pd

    if not isinstance(newdata, pd.DataFrame):
        raise InputError(f"newdata must be a pandas DataFrame of covariate values; got {type(newdata).__name__}")
    if len(newdata) == 0:
        raise InputError("newdata has no rows")
    spec = _model_spec(data)
    frame = newdata.copy()
    frame.columns = [str(c) for c in frame.columns]
    if spec is None:
        if "Intercept" in data.coef_names and "Intercept" not in frame.columns:
            frame["Intercept"] = 1.0
        _check_keys(dict.fromkeys(frame.columns), list(data.coef_names), "coefficients")
        rows = np.empty((len(frame), data.p))
        for k, nm in enumerate(data.coef_names):
            rows[:, k] = _numeric_column(frame, nm)
        return rows
    expected = _expected_columns(data, spec)
    if "Intercept" in frame.columns and "Intercept" not in expected:
        raise InputError(f"newdata: the intercept is 1 for every study; give only the columns {expected}")
    _check_keys(dict.fromkeys(frame.columns), expected, "covariates")
    return _encode(data, spec, frame[expected].reset_index(drop=True), expected, index=list(newdata.index))


def _model_spec(data: Any) -> Any:
    spec = data.model_spec
    if spec is None and data.formula is not None and data.covariates is not None:
        spec = _formulaic().model_matrix(data.formula, data.covariates, na_action="raise").model_spec
    return spec


def _expected_columns(data: Any, spec: Any) -> list[str]:
    return [str(c) for c in data.covariates.columns] if data.covariates is not None else sorted(spec.required_variables)


def _row_name(index: Sequence[Any] | None, i: int) -> str:
    return f"row {i + 1}" if index is None else f"row {index[i]!r}"


def _numeric_column(frame: pd.DataFrame, col: str, index: Sequence[Any] | None = None) -> np.ndarray:
    """A column of new-study values as finite floats, naming the first bad value's row."""
    vals = frame[col].to_numpy(dtype=object)
    out = np.empty(len(vals))
    for i, v in enumerate(vals):
        ok = _parses_as_number(v) and not _is_missing(v)
        out[i] = float(v) if ok else np.nan
        if not (ok and np.isfinite(out[i])):
            raise InputError(f"new-study column {col!r}, {_row_name(index, i)}: value {show(v)} is not a finite number")
    return out


def _encode(data: Any, spec: Any, frame: pd.DataFrame, expected: Sequence[str],
            index: Sequence[Any] | None = None) -> np.ndarray:
    """Rows of the design for a frame of raw covariate values, checked column by column first."""
    refs = _categorical_columns(data, spec)
    for c in expected:
        vals = frame[c].to_numpy(dtype=object)
        miss = [i for i, v in enumerate(vals) if _is_missing(v)]
        if miss:
            i = miss[0]
            raise InputError(f"new-study column {c!r}, {_row_name(index, i)}: value {show(vals[i])} is missing")
        if c in refs:
            levels = refs[c][1]
            known = {_level_key(v) for v in levels}
            for i, v in enumerate(vals):
                if _level_key(v) not in known:
                    raise InputError(f"new-study column {c!r}, {_row_name(index, i)}: level {show(v)} was not seen "
                                     f"in the studies (levels: {', '.join(map(str, levels))})")
            frame[c] = _as_levels(vals, levels)
        elif is_numeric_dtype(data.covariates[c]) and not is_bool_dtype(data.covariates[c]):
            frame[c] = _numeric_column(frame, c, index)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            mm = spec.get_model_matrix(frame)
            rows = mm[list(data.coef_names)].to_numpy(dtype=float)
        except Exception as err:
            raise InputError(f"covariates cannot be encoded by {data.formula!r}: {err}") from None
    mismatch = [w for w in caught if "Mismatch" in w.category.__name__]  # e.g. an unseen level of a derived factor
    if mismatch or rows.shape[0] != len(frame) or not np.all(np.isfinite(rows)):
        why = "; ".join(str(w.message) for w in mismatch) or "non-finite result"
        raise InputError(f"covariates {frame.to_dict(orient='records')!r} cannot be encoded by {data.formula!r}: {why}")
    return rows


def _level_key(v: Any) -> Any:
    """Compare levels as written: ``"1"`` read from a file matches a level ``1``."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if _parses_as_number(v):
        f = float(v)
        return repr(f) if not f.is_integer() else str(int(f))
    return str(v)


def _as_levels(vals: np.ndarray, levels: Sequence[Any]) -> list[Any]:
    """Values given as text (from a file or the command line) as the fit's own level objects."""
    by_key = {_level_key(v): v for v in levels}
    return [by_key[_level_key(v)] for v in vals]


def _categorical_columns(data: Any, spec: Any) -> dict[str, tuple[Any, list[Any], bool]]:
    """Covariate columns that the formula encodes as categories: column -> (reference level, levels,
    treatment-coded). A column enters directly (``alloc``) or as the first argument of ``C(...)``;
    categories derived from a transform (``C(year > 1960)``) leave their column numeric."""
    if data.covariates is None:
        return {}
    columns = [str(c) for c in data.covariates.columns]
    out: dict[str, tuple[Any, list[Any], bool]] = {}
    for expr, (kind, state) in getattr(spec, "encoder_state", {}).items():
        if getattr(kind, "value", kind) != "categorical" or not isinstance(state, Mapping):
            continue
        expr = str(expr)
        col = next((c for c in columns if expr in (c, f"`{c}`")
                    or re.fullmatch(rf"C\(\s*`?{re.escape(c)}`?\s*(,.*)?\)", expr, flags=re.S)), None)
        levels = list(state.get("categories") or [])
        if col is None or not levels:
            continue
        contrasts = getattr(state.get("contrasts"), "contrasts", None)
        base = getattr(contrasts, "base", None)
        treatment = type(contrasts).__name__ == "TreatmentContrasts"
        ref = base if treatment and any(_level_key(base) == _level_key(v) for v in levels) else levels[0]
        out[col] = (ref, levels, treatment)
    return out


def default_new_study(data: Any) -> dict[str, Any] | None:
    """The covariate values of the default new study when the design has categorical covariates.

    Numeric covariates take their mean over the studies, categorical ones their reference level
    (the baseline of treatment contrasts, else the first level): a study type that exists,
    rather than the mean indicator row. ``None`` when no covariate is categorical (the default
    is then the mean row of ``X``, :attr:`MetaData.x_mean`).
    """
    spec = data.model_spec
    if spec is None or data.covariates is None:
        return None
    refs = _categorical_columns(data, spec)
    if not refs:
        return None
    values: dict[str, Any] = {}
    for c in data.covariates.columns:
        name = str(c)
        s = data.covariates[c]
        if name in refs:
            values[name] = refs[name][0]
        elif is_numeric_dtype(s) and not is_bool_dtype(s):
            values[name] = float(s.mean())
        else:
            return None
    return values


def describe_new_study(data: Any, x_new: Sequence[float], values: Mapping[str, Any] | None = None) -> str:
    """``ablat = 33.46, alloc = alternate (reference level)``: the covariates of the new study.

    Parameters
    ----------
    data : MetaData
    x_new : sequence of float
        The new study's design row.
    values : mapping, optional
        The raw covariate values it was encoded from; default: the default new study's
        (:func:`default_new_study`) when ``x_new`` is its row, the mean row of ``X`` when it is
        that, else the design row by coefficient name.
    """
    row = np.asarray(x_new, dtype=float)
    refs = _categorical_columns(data, data.model_spec) if data.model_spec is not None else {}
    if values is None:
        default = default_new_study(data)
        if default is not None and np.array_equal(row, data.design_row(None)):
            values = default
        elif default is None and np.allclose(row, data.x_mean, rtol=1e-12, atol=0.0):
            if data.covariates is not None and all(is_numeric_dtype(data.covariates[c]) for c in data.covariates):
                cols = [str(c) for c in data.covariates.columns]
                # the mean design row is the mean covariate row when the formula is linear in them
                if all(c in data.coef_names for c in cols) and len(cols) == data.p - ("Intercept" in data.coef_names):
                    return ", ".join(f"{c} = {_fmt(data.covariates[c].mean())}" for c in cols) + " (means of the studies)"
            named = [(n, v) for n, v in zip(data.coef_names, row) if n != "Intercept"]
            return ", ".join(f"{n} = {_fmt(v)}" for n, v in named) + " (mean design row)" if named else "intercept only"
    if values is None:
        return ", ".join(f"{n} = {_fmt(v)}" for n, v in zip(data.coef_names, row))
    parts = []
    for k, v in values.items():
        if k in refs and _level_key(v) == _level_key(refs[k][0]):
            parts.append(f"{k} = {v} ({'reference' if refs[k][2] else 'first'} level)")
        else:
            parts.append(f"{k} = {_fmt(v) if _parses_as_number(v) and not isinstance(v, str) else v}")
    return ", ".join(parts)


def _fmt(v: Any) -> str:
    return f"{float(v):.4g}"


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
