"""The data model shared by every engine: effects, standard errors, labels and a design matrix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

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
                who = labels[i] if labels is not None and i < len(labels) else str(i + 1)
                raise ValueError(
                    f"column {column!r}, study {who!r} (row {i + 1}): value {v!r} is not a number"
                ) from None
        raise


def _check_finite(a: np.ndarray, column: str, labels: Sequence[str]) -> None:
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        i = int(bad[0])
        what = "missing (NaN)" if np.isnan(a[i]) else "infinite"
        more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
        raise ValueError(
            f"column {column!r}, study {labels[i]!r} (row {i + 1}): value {a[i]!r} is {what}{more}"
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "y", _readonly(self.y))
        object.__setattr__(self, "se", _readonly(self.se))
        object.__setattr__(self, "X", _readonly(np.atleast_2d(np.asarray(self.X, dtype=float))))
        object.__setattr__(self, "labels", tuple(str(s) for s in self.labels))
        object.__setattr__(self, "coef_names", tuple(str(s) for s in self.coef_names))
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
        """Return the studies selected by a boolean mask or index array (used for leave-one-out)."""
        idx = np.arange(self.J)[np.asarray(keep)]
        return MetaData(
            y=self.y[idx], se=self.se[idx], labels=tuple(self.labels[i] for i in idx),
            X=self.X[idx], coef_names=self.coef_names, name=self.name, formula=self.formula,
        )

    def with_effects(self, y: ArrayLike) -> "MetaData":
        """Same design and standard errors with new effects (simulation studies, SBC)."""
        return MetaData(y=np.asarray(y, float), se=self.se, labels=self.labels, X=self.X,
                        coef_names=self.coef_names, name=self.name, formula=self.formula)

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
        ValueError
            Naming the column, the study and the value of the first bad entry.
        """
        if (se is None) == (variance is None):
            raise ValueError("give exactly one of 'se' (standard errors) and 'variance' (sampling variances)")
        n_y = np.size(y)
        if labels is None:
            labels = [str(i + 1) for i in range(n_y)]
        labels = [str(s) for s in labels]
        yv = _as_float_vector(y, "effect", labels)
        if se is not None:
            sv = _as_float_vector(se, "se", labels)
            col = "se"
        else:
            vv = _as_float_vector(variance, "variance", labels)
            col = "variance"
        lengths = {"effect": yv.size, col: (sv if se is not None else vv).size, "labels": len(labels)}
        if X is not None:
            lengths["X (rows)"] = np.atleast_2d(np.asarray(X)).shape[0] if np.ndim(X) > 1 else np.size(X)
        if len(set(lengths.values())) != 1:
            raise ValueError("length mismatch: " + ", ".join(f"{k} has {v}" for k, v in lengths.items()))
        if se is None:
            _check_finite(vv, "variance", labels)
            bad = np.flatnonzero(vv <= 0)
            if bad.size:
                i = int(bad[0])
                kind = "negative" if vv[i] < 0 else "zero"
                raise ValueError(
                    f"column 'variance', study {labels[i]!r} (row {i + 1}): value {vv[i]!r} is {kind}; "
                    "sampling variances must be > 0"
                )
            sv = np.sqrt(vv)
        if X is None:
            Xa = np.ones((yv.size, 1))
            names = ("Intercept",) if coef_names is None else tuple(coef_names)
        else:
            Xa = np.asarray(X, dtype=float)
            if Xa.ndim == 1:
                Xa = Xa[:, None]
            names = tuple(coef_names) if coef_names is not None else tuple(f"x{k + 1}" for k in range(Xa.shape[1]))
        return cls(y=yv, se=sv, labels=tuple(labels), X=Xa, coef_names=names, name=name)


def _validate(d: MetaData) -> None:
    """Check the invariants every engine relies on; raise ValueError naming column, study and value."""
    J = d.y.shape[0]
    if d.y.ndim != 1 or d.se.ndim != 1:
        raise ValueError("effects and standard errors must be one-dimensional")
    if not (d.se.shape[0] == J == len(d.labels) == d.X.shape[0]):
        raise ValueError(
            f"length mismatch: effect has {J}, se has {d.se.shape[0]}, labels has {len(d.labels)}, "
            f"X has {d.X.shape[0]} rows"
        )
    if J < 2:
        raise ValueError(f"need at least 2 studies for a hierarchical model; got {J}")
    seen: dict[str, int] = {}
    for i, lab in enumerate(d.labels):
        if lab in seen:
            raise ValueError(f"column 'label': duplicate study label {lab!r} in rows {seen[lab] + 1} and {i + 1}")
        seen[lab] = i
    _check_finite(d.y, "effect", d.labels)
    _check_finite(d.se, "se", d.labels)
    bad = np.flatnonzero(d.se <= 0)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"column 'se', study {d.labels[i]!r} (row {i + 1}): value {d.se[i]!r} is not > 0; "
            "standard errors must be positive"
        )
    if len(d.coef_names) != d.X.shape[1]:
        raise ValueError(f"X has {d.X.shape[1]} columns but {len(d.coef_names)} coefficient names")
    for k, nm in enumerate(d.coef_names):
        col = d.X[:, k]
        badx = np.flatnonzero(~np.isfinite(col))
        if badx.size:
            i = int(badx[0])
            raise ValueError(f"covariate {nm!r}, study {d.labels[i]!r} (row {i + 1}): value {col[i]!r} is missing or infinite")
    if d.X.shape[1] > J:
        raise ValueError(f"design has {d.X.shape[1]} columns but only {J} studies")
    _check_rank(d)


def _check_rank(d: MetaData) -> None:
    """Reject rank-deficient designs, naming the constant or collinear column."""
    X = d.X
    # Scale columns so the rank test does not depend on units.
    norms = np.linalg.norm(X, axis=0)
    for k, nm in enumerate(d.coef_names):
        if norms[k] == 0:
            raise ValueError(f"covariate {nm!r} is zero for every study; drop it")
    Xs = X / norms
    has_intercept = any(np.allclose(X[:, k], X[0, k]) for k in range(X.shape[1]) if "Intercept" in d.coef_names[k])
    for k in range(X.shape[1]):
        if d.coef_names[k] != "Intercept" and np.ptp(X[:, k]) == 0 and (has_intercept or X.shape[1] > 1):
            raise ValueError(
                f"covariate {d.coef_names[k]!r} is constant ({X[0, k]!r} in every study); it is collinear "
                "with the intercept and cannot be estimated"
            )
    rank = np.linalg.matrix_rank(Xs)
    if rank < X.shape[1]:
        # Find the first column that is a linear combination of the earlier ones.
        for k in range(1, X.shape[1]):
            if np.linalg.matrix_rank(Xs[:, : k + 1]) <= k:
                raise ValueError(
                    f"covariate {d.coef_names[k]!r} is collinear with {list(d.coef_names[:k])}: the design "
                    f"matrix has rank {rank} < {X.shape[1]} columns"
                )
        raise ValueError(f"the design matrix has rank {rank} < {X.shape[1]} columns")
