"""The data model shared by every engine: effects, standard errors, labels and a design matrix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from metapool import frames
from metapool.errors import InputError

if TYPE_CHECKING:
    import pandas

__all__ = ["MetaData"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float, copy=True)
    a.setflags(write=False)
    return a


def _as_float_vector(values: ArrayLike, column: str, labels: Sequence[str] | None) -> np.ndarray:
    """Convert to a float vector, naming the study and value of the first entry that is not a number."""
    raw = np.asarray(values, dtype=object).ravel() if not isinstance(values, np.ndarray) else values.ravel()
    try:
        return np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        for i, v in enumerate(raw):
            try:
                float(v)
            except (TypeError, ValueError):
                if _is_missing(v):
                    continue
                who = labels[i] if labels is not None and i < len(labels) else str(i + 1)
                raise InputError(
                    f"column {column!r}, study {who!r} (row {i + 1}): value {frames.show(v)} is not a number"
                ) from None
        return np.array([np.nan if _is_missing(v) else float(v) for v in raw], dtype=float)


def _label_texts(labels: Sequence[Any]) -> list[str]:
    """Labels as text; a missing label (None, NaN, empty) is an error naming its position."""
    if np.ndim(labels) != 1:
        raise InputError(f"labels must be one-dimensional (one per study); got shape {np.shape(labels)}")
    out = []
    for i, v in enumerate(labels):
        if _is_missing(v) or not str(v).strip():
            raise InputError(f"labels: study {i + 1} has a missing label ({frames.show(v)})")
        out.append(str(v))
    return out


def _is_missing(v: Any) -> bool:
    """True for scalar missing markers (None, NaN, pandas.NA, NaT)."""
    try:
        return bool(v is None or v != v)
    except (TypeError, ValueError):  # pandas.NA refuses bool()
        return True


def _written(a: np.ndarray, raw: Any, i: int) -> str:
    """Value i as the user wrote it (the text read from a file), else as parsed."""
    if raw is not None and isinstance(raw[i], str):
        return repr(raw[i])
    return frames.show(a[i])


def _nonzero_text(v: Any) -> bool:
    """True for text that writes a nonzero number (``'1e-400'``), however small."""
    from decimal import Decimal, InvalidOperation

    try:
        return isinstance(v, str) and Decimal(v.strip()) != 0
    except InvalidOperation:
        return False


def _check_finite(a: np.ndarray, column: str, labels: Sequence[str], raw: Any = None) -> None:
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        i = int(bad[0])
        what = "missing (NaN)" if np.isnan(a[i]) else "infinite"
        if raw is not None and isinstance(raw[i], str) and np.isinf(a[i]):
            what = "too large for double precision (infinite)"
        more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
        raise InputError(
            f"column {column!r}, study {labels[i]!r} (row {i + 1}): value {_written(a, raw, i)} is {what}{more}"
        )


# Effects and standard errors must stay where their squares (and tau^2 beside them) are normal
# doubles; beyond, the model still holds but double precision does not: rescale the data.
MAX_MAGNITUDE = 1e150
MIN_SE = 1e-150


def _check_range(a: np.ndarray, column: str, labels: Sequence[str], low: float, high: float, what: str,
                 raw: Any = None) -> None:
    bad = np.flatnonzero((np.abs(a) > high) | (np.abs(a) < low))
    if bad.size:
        i = int(bad[0])
        more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
        raise InputError(
            f"column {column!r}, study {labels[i]!r} (row {i + 1}): value {_written(a, raw, i)} is outside {what}{more}, "
            "the range where the model's squares fit in double precision; rescale effects and standard "
            "errors together (the model is scale-equivariant; a prior's scale rescales with them)"
        )


@dataclass(frozen=True, eq=False)
class MetaData:
    """Immutable meta-analysis data: J studies with effects, known standard errors and a design.

    Parameters
    ----------
    y : ndarray, shape (J,)
        Estimated effects.
    se : ndarray, shape (J,)
        Known standard errors, all > 0.
    labels : tuple of str
        Unique study labels (default ``"1".."J"``).
    X : ndarray, shape (J, p)
        Full-rank design matrix (a single ``Intercept`` column by default).
    coef_names : tuple of str
        Names of the columns of ``X`` as the formula library writes them.
    name : str, optional
        A short description (the dataset or file name).
    covariates : pandas.DataFrame, optional
        The raw covariate columns ``X`` was built from (one row per study), if any.
    formula : str, optional
        The covariate formula ``X`` was built from, e.g. ``"~ ablat + year"``.
    model_spec : formulaic.ModelSpec, optional
        The formula library's spec that built ``X``; :meth:`design_row` uses it to encode the
        covariates of a new study.
    measure : str, optional
        The effect-size measure the effects were computed as (``"OR"``, ``"RR"``, ``"RD"``,
        ``"MD"``, ``"SMD"``, ``"ZCOR"``; see :mod:`metapool.effects`), so that tables and figures
        can back-transform ratio measures (:func:`metapool.effects.back_transform`). ``None``
        (default) when the effects were given directly.

    Notes
    -----
    Construct with :meth:`from_arrays`, :meth:`from_dataframe` or :func:`metapool.read_csv`;
    every constructor validates and never drops, clips or reorders studies.
    """

    y: np.ndarray
    se: np.ndarray
    labels: tuple[str, ...]
    X: np.ndarray
    coef_names: tuple[str, ...]
    name: str | None = None
    covariates: "object | None" = field(default=None, repr=False)  # the covariate table (pandas) used to build X, if any
    formula: str | None = None
    model_spec: "object | None" = field(default=None, repr=False)  # formulaic ModelSpec that built X, if any
    measure: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "y", _readonly(self.y))
        object.__setattr__(self, "se", _readonly(self.se))
        object.__setattr__(self, "X", _readonly(np.atleast_2d(np.asarray(self.X, dtype=float))))
        object.__setattr__(self, "labels", tuple(map(str, self.labels)))
        object.__setattr__(self, "coef_names", tuple(map(str, self.coef_names)))
        _validate(self)

    # ------------------------------------------------------------------ shape
    @property
    def J(self) -> int:
        """Number of studies."""
        return int(self.y.shape[0])

    @property
    def p(self) -> int:
        """Number of regression coefficients (columns of X)."""
        return int(self.X.shape[1])

    @property
    def variance(self) -> np.ndarray:
        """Sampling variances s_j^2."""
        return self.se**2

    @property
    def intercept_only(self) -> bool:
        """True when X is the single intercept column (the parameter is then called ``mu``)."""
        return self.p == 1 and self.coef_names == ("Intercept",) and bool(np.all(self.X == 1.0))

    @property
    def x_mean(self) -> np.ndarray:
        """Mean row of X: the default covariates of a new study."""
        return self.X.mean(axis=0)

    def __len__(self) -> int:
        return self.J

    def __repr__(self) -> str:
        cov = "" if self.intercept_only else f", coef={list(self.coef_names)}"
        nm = f"{self.name!r}, " if self.name else ""
        return f"MetaData({nm}J={self.J}{cov})"

    # ------------------------------------------------------------ transforms
    def subset(self, keep: ArrayLike) -> "MetaData":
        """Return the studies selected by a boolean mask or index array (used for leave-one-out).

        The covariate table and the formula's model spec are carried along, so
        :meth:`design_row` still encodes new studies exactly as the full data did.
        """
        idx = np.arange(self.J)[np.asarray(keep)]
        table = None if self.covariates is None else self.covariates.iloc[idx].reset_index(drop=True)
        return MetaData(
            y=self.y[idx], se=self.se[idx], labels=tuple(self.labels[i] for i in idx),
            X=self.X[idx], coef_names=self.coef_names, name=self.name, covariates=table,
            formula=self.formula, model_spec=self.model_spec, measure=self.measure,
        )

    def with_effects(self, y: ArrayLike) -> "MetaData":
        """Same design and standard errors with new effects (simulation studies, SBC)."""
        return MetaData(y=np.asarray(y, float), se=self.se, labels=self.labels, X=self.X,
                        coef_names=self.coef_names, name=self.name, covariates=self.covariates,
                        formula=self.formula, model_spec=self.model_spec, measure=self.measure)

    def design_row(self, values: Mapping[str, Any] | ArrayLike | None = None) -> np.ndarray:
        """Covariate row ``x_new`` of a new study, in the columns of ``X``.

        Parameters
        ----------
        values : dict or array_like or None, optional
            ``None`` (default): the mean row of ``X`` (:attr:`x_mean`); when the formula has
            categorical covariates, the row of :meth:`default_new_study` instead (numeric
            covariates at their mean, categorical ones at their reference level: a study type
            that exists, not a mean of indicator columns). A dict of raw covariate
            values, e.g. ``{"ablat": 30}`` or ``{"alloc": "random", "ablat": 30}``: encoded by the
            stored formula's model spec exactly as the studies were (categorical levels,
            stateful transforms); without a formula the keys are the coefficient names and
            ``Intercept`` defaults to 1. An array of length ``p``: taken as the row itself.

        Returns
        -------
        ndarray, shape (p,)

        Raises
        ------
        ValueError
            Unknown or missing covariates, an unseen category level, or a row of the wrong length.
        """
        if values is None:
            default = self.default_new_study()
            return self.x_mean.copy() if default is None else frames.design_row_from_values(self, default)
        if not isinstance(values, Mapping):
            row = np.atleast_1d(np.asarray(values, dtype=float))
            if row.shape != (self.p,):
                raise InputError(f"x_new has {row.size} values but must be {self.p} finite numbers, one per "
                                 f"design column {list(self.coef_names)} (give the intercept's 1 too); got {values!r}")
            if not np.all(np.isfinite(row)):
                raise InputError(f"x_new must be finite numbers for {list(self.coef_names)}; got {values!r}")
            return row
        return frames.design_row_from_values(self, values)

    def default_new_study(self) -> dict[str, Any] | None:
        """Raw covariate values of the default new study, when the formula has categorical covariates.

        Returns
        -------
        dict or None
            Numeric covariates at their mean over the studies, categorical ones at their
            reference level (the baseline formulaic's treatment contrasts use: the first level
            unless the formula names another); ``None`` when no covariate is categorical (the
            default row is then :attr:`x_mean`).
        """
        return frames.default_new_study(self)

    def design_rows(self, newdata: "pandas.DataFrame | ArrayLike") -> np.ndarray:
        """Design rows of many new studies: a table of raw covariate values, one row each.

        Parameters
        ----------
        newdata : pandas.DataFrame or array_like
            A DataFrame with the covariate columns of the fit (encoded by the stored formula as
            the studies were; categorical levels checked), or, without a formula, with the
            coefficient names as columns (``Intercept`` may be left out). A 2-D array of shape
            ``(G, p)``: taken as the rows themselves.

        Returns
        -------
        ndarray, shape (G, p)

        Raises
        ------
        InputError
            Missing or unknown columns, missing or non-finite values, a category level the
            studies do not have (naming column, row and value), an array of the wrong width.
        """
        import pandas as pd

        if isinstance(newdata, pd.DataFrame):
            return frames.design_rows_from_frame(self, newdata)
        rows = np.asarray(newdata, dtype=float)
        if rows.ndim != 2 or rows.shape[1] != self.p or rows.shape[0] == 0:
            raise InputError(f"newdata array has shape {rows.shape}; it must be (G, {self.p}): one column per "
                             f"design column {list(self.coef_names)}")
        if not np.all(np.isfinite(rows)):
            raise InputError(f"newdata rows must be finite numbers for {list(self.coef_names)}")
        return rows

    # ---------------------------------------------------------- constructors
    @classmethod
    def from_arrays(
        cls,
        y: ArrayLike,
        se: ArrayLike | None = None,
        *,
        variance: ArrayLike | None = None,
        labels: Sequence[str] | None = None,
        X: ArrayLike | None = None,
        coef_names: Sequence[str] | None = None,
        name: str | None = None,
    ) -> "MetaData":
        """Build from arrays of effects and standard errors (or sampling variances).

        Parameters
        ----------
        y : array_like, shape (J,)
            Effects.
        se : array_like, shape (J,), optional
            Standard errors (> 0). Give exactly one of ``se`` and ``variance``.
        variance : array_like, shape (J,), optional
            Sampling variances (> 0), as metafor users give them.
        labels : sequence of str, optional
            Unique study labels; default ``"1".."J"``.
        X : array_like, shape (J, p), optional
            Design matrix; default a single intercept column.
        coef_names : sequence of str, optional
            Column names of X; default ``Intercept`` for the default design, ``x1..xp`` otherwise.
        name : str, optional
            Description of the data.

        Returns
        -------
        MetaData

        Raises
        ------
        InputError
            Naming the column, the study and the value of the first bad entry; for arrays that
            are not one-dimensional; for missing (None, NaN, empty) labels.
        """
        for what, arr in (("y", y), ("se", se), ("variance", variance)):
            if arr is not None and np.ndim(arr) != 1:
                raise InputError(f"{what} must be one-dimensional (one value per study); got shape {np.shape(arr)}")
        labels = frames.default_labels(np.size(y)) if labels is None else _label_texts(labels)
        x_rows = None
        if X is not None:
            x_rows = np.atleast_2d(np.asarray(X)).shape[0] if np.ndim(X) > 1 else np.size(X)
        yv, sv = effects_and_se(y, se, variance, labels, x_rows=x_rows)
        if X is None:
            Xa = np.ones((yv.size, 1))
            names = ("Intercept",) if coef_names is None else tuple(coef_names)
        else:
            Xa = np.asarray(X, dtype=float)
            if Xa.ndim == 1:
                Xa = Xa[:, None]
            names = tuple(coef_names) if coef_names is not None else tuple(f"x{k + 1}" for k in range(Xa.shape[1]))
        return cls(y=yv, se=sv, labels=tuple(labels), X=Xa, coef_names=names, name=name)

    @classmethod
    def from_dataframe(
        cls,
        df: "pandas.DataFrame",
        effect: str,
        se: str | None = None,
        variance: str | None = None,
        label: str | None = None,
        covariates: str | Sequence[str] | None = None,
        name: str | None = None,
    ) -> "MetaData":
        """Build from the columns of a pandas DataFrame.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per study, in the order kept by the result.
        effect : str
            Column of effects (e.g. ``"X_beta"`` in the original analysis's file).
        se, variance : str, optional
            Column of standard errors or of sampling variances; give exactly one.
        label : str, optional
            Column of unique study labels (converted to str); default ``"1".."J"``.
        covariates : str or list of str, optional
            A formula such as ``"~ ablat + year"``, ``"~ 0 + drug"`` or ``"~ ablat + alloc"``,
            evaluated by formulaic (text columns expanded to indicator columns, a ``0`` drops
            the intercept; coefficient names as formulaic writes them: ``Intercept``,
            ``alloc[T.random]``, ``drug[A]``), or a list of numeric columns (an intercept plus
            those columns). Default: the single ``Intercept`` column.
        name : str, optional
            Description of the data.

        Returns
        -------
        MetaData
            With ``covariates`` (the covariate columns used), ``formula`` and ``model_spec``
            stored, so that :meth:`design_row` can encode a new study.

        Raises
        ------
        ValueError
            Naming the column, the study (label and row) and the value: a column that does not
            exist (the available ones are listed), missing, infinite or non-numeric effects or
            standard errors, standard errors <= 0, variances <= 0, duplicate or missing labels,
            fewer than 2 studies, missing covariate values (never dropped), constant or collinear
            covariates.

        Notes
        -----
        Rows are neither dropped, clipped nor reordered: study ``j`` of the result is row ``j``.
        """
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame; got {type(df).__name__}")
        if (se is None) == (variance is None):
            raise InputError("give exactly one of 'se' (a column of standard errors) and "
                             "'variance' (a column of sampling variances)")
        frames.require_columns(df, [("effect", effect), ("se", se), ("variance", variance), ("label", label)])
        return cls._from_columns(
            len(df), frames.column_values(df, effect), None if se is None else frames.column_values(df, se),
            None if variance is None else frames.column_values(df, variance),
            None if label is None else df[label].tolist(), effect, se, variance, label, name,
            design=lambda labels: frames.design_from_frame(df, covariates, labels))

    @classmethod
    def _from_columns(cls, n: int, y: np.ndarray, se: np.ndarray | None, variance: np.ndarray | None,
                      label_values: list | None, effect: str, se_col: str | None, variance_col: str | None,
                      label_col: str | None, name: str | None, design=None) -> "MetaData":
        """The checks and construction of :meth:`from_dataframe` on a table's columns already taken
        out (``frames.column_values``; label values as a list): :func:`metapool.batch` slices
        them per group. ``design(labels)`` gives ``(X, names, formula, table, spec)`` (default:
        the intercept only)."""
        if n < 2:
            raise InputError(f"need at least 2 studies for a hierarchical model; the table has {n} row(s)")
        labels = frames.default_labels(n) if label_col is None else frames.labels_from_values(label_values, label_col)
        columns = {"effect": effect, "se": se_col, "variance": variance_col}
        y, s = effects_and_se(y, se, variance, labels, columns={k: v for k, v in columns.items() if v is not None})
        if design is None:
            X, names, formula, table, spec = np.ones((n, 1)), ("Intercept",), None, None, None
        else:
            X, names, formula, table, spec = design(labels)
        return cls(y=y, se=s, labels=tuple(labels), X=X, coef_names=names, name=name,
                   covariates=table, formula=formula, model_spec=spec)


_ROLES = {"effect": "effect", "se": "se", "variance": "variance"}


def effects_and_se(
    y: ArrayLike,
    se: ArrayLike | None,
    variance: ArrayLike | None,
    labels: Sequence[str],
    columns: Mapping[str, str] | None = None,
    x_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Parse and check effects and standard errors (or variances); return ``(y, se)`` as floats.

    ``columns`` maps the roles ``effect``, ``se``, ``variance`` to the names used in messages
    (the user's column names when reading a table).
    """
    cols = {**_ROLES, **(columns or {})}
    if (se is None) == (variance is None):
        raise InputError("give exactly one of 'se' (standard errors) and 'variance' (sampling variances)")
    role = "se" if se is not None else "variance"
    yv = _as_float_vector(y, cols["effect"], labels)
    sv = _as_float_vector(se if se is not None else variance, cols[role], labels)
    raw_y = np.asarray(y, dtype=object).ravel()
    raw_s = np.asarray(se if se is not None else variance, dtype=object).ravel()
    lengths = {cols["effect"]: yv.size, cols[role]: sv.size, "labels": len(labels)}
    if x_rows is not None:
        lengths["X (rows)"] = x_rows
    if len(set(lengths.values())) != 1:
        raise InputError("length mismatch: " + ", ".join(f"{k} has {v}" for k, v in lengths.items()))
    _check_finite(yv, cols["effect"], labels, raw_y)
    _check_finite(sv, cols[role], labels, raw_s)
    bad = np.flatnonzero(sv <= 0)
    if bad.size:
        i = int(bad[0])
        kind = "negative" if sv[i] < 0 else ("below the smallest double (it reads as 0)"
                                              if _nonzero_text(raw_s[i]) else "zero")
        must = "standard errors must be > 0" if role == "se" else "sampling variances must be > 0"
        raise InputError(f"column {cols[role]!r}, study {labels[i]!r} (row {i + 1}): value "
                         f"{_written(sv, raw_s, i)} is {kind}; {must}")
    _check_range(yv, cols["effect"], labels, 0.0, MAX_MAGNITUDE, f"|effect| <= {MAX_MAGNITUDE:g}", raw_y)
    if role == "se":
        _check_range(sv, cols[role], labels, MIN_SE, MAX_MAGNITUDE, f"{MIN_SE:g} <= se <= {MAX_MAGNITUDE:g}", raw_s)
    else:
        _check_range(sv, cols[role], labels, MIN_SE**2, MAX_MAGNITUDE**2,
                     f"{MIN_SE**2:g} <= variance <= {MAX_MAGNITUDE**2:g}", raw_s)
    return yv, (sv if role == "se" else np.sqrt(sv))


def _validate(d: MetaData) -> None:
    """Check the invariants every engine relies on; raise ValueError naming column, study and value."""
    J = d.y.shape[0]
    if d.y.ndim != 1 or d.se.ndim != 1:
        raise InputError("effects and standard errors must be one-dimensional")
    if not (d.se.shape[0] == J == len(d.labels) == d.X.shape[0]):
        raise InputError(
            f"length mismatch: effect has {J}, se has {d.se.shape[0]}, labels has {len(d.labels)}, "
            f"X has {d.X.shape[0]} rows"
        )
    if J < 2:
        raise InputError(f"need at least 2 studies for a hierarchical model; got {J}")
    if len(set(d.labels)) != J:
        seen: dict[str, int] = {}
        for i, lab in enumerate(d.labels):
            if lab in seen:
                raise InputError(f"column 'label': duplicate study label {lab!r} in rows {seen[lab] + 1} and {i + 1}")
            seen[lab] = i
    _check_finite(d.y, "effect", d.labels)
    _check_finite(d.se, "se", d.labels)
    bad = np.flatnonzero(d.se <= 0)
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"column 'se', study {d.labels[i]!r} (row {i + 1}): value {frames.show(d.se[i])} is not > 0; "
            "standard errors must be positive"
        )
    _check_range(d.y, "effect", d.labels, 0.0, MAX_MAGNITUDE, f"|effect| <= {MAX_MAGNITUDE:g}")
    _check_range(d.se, "se", d.labels, MIN_SE, MAX_MAGNITUDE, f"{MIN_SE:g} <= se <= {MAX_MAGNITUDE:g}")
    if len(d.coef_names) != d.X.shape[1]:
        raise InputError(f"X has {d.X.shape[1]} columns but {len(d.coef_names)} coefficient names")
    for k, nm in enumerate(d.coef_names):
        col = d.X[:, k]
        badx = np.flatnonzero(~np.isfinite(col))
        if badx.size:
            i = int(badx[0])
            raise InputError(f"covariate {nm!r}, study {d.labels[i]!r} (row {i + 1}): value {frames.show(col[i])} is missing or infinite")
    if d.X.shape[1] > J:
        raise InputError(f"design has {d.X.shape[1]} columns but only {J} studies")
    if d.measure is not None and not (isinstance(d.measure, str) and d.measure.strip()):
        raise InputError(f"measure must be a non-empty string such as 'OR' or None; got {d.measure!r}")
    _check_rank(d)


def _check_rank(d: MetaData) -> None:
    """Reject rank-deficient designs, naming the constant or collinear column."""
    X = d.X
    # Scale columns so the rank test does not depend on units.
    norms = np.linalg.norm(X, axis=0)
    for k, nm in enumerate(d.coef_names):
        if norms[k] == 0:
            raise InputError(f"covariate {nm!r} is zero for every study; drop it")
    Xs = X / norms
    has_intercept = any(np.allclose(X[:, k], X[0, k]) for k in range(X.shape[1]) if "Intercept" in d.coef_names[k])
    for k in range(X.shape[1]):
        if d.coef_names[k] != "Intercept" and np.ptp(X[:, k]) == 0 and (has_intercept or X.shape[1] > 1):
            raise InputError(
                f"covariate {d.coef_names[k]!r} is constant ({frames.show(X[0, k])} in every study); it is collinear "
                "with the intercept and cannot be estimated"
            )
    rank = np.linalg.matrix_rank(Xs)
    if rank < X.shape[1]:
        # Find the first column that is a linear combination of the earlier ones.
        for k in range(1, X.shape[1]):
            if np.linalg.matrix_rank(Xs[:, : k + 1]) <= k:
                raise InputError(
                    f"covariate {d.coef_names[k]!r} is collinear with {list(d.coef_names[:k])}: the design "
                    f"matrix has rank {rank} < {X.shape[1]} columns"
                )
        raise InputError(f"the design matrix has rank {rank} < {X.shape[1]} columns")
