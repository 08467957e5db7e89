"""The shared layout of results (docs/CONVENTIONS.md) in code: names, dims, columns, DataTree groups.

Both engines, the validation reports, the tables, the figures and the CLI ask this module for
every name they print or look up, so a name is spelled once:

- sample dims ``chain``, ``draw``; the study dim ``study`` and the coefficient dim ``coef``;
- posterior variables ``tau``, ``mu`` (intercept-only design) or ``beta`` (dims ``coef``),
  ``theta`` (dims ``study``), ``theta_new``; the observed ``y``;
- flat parameter names ``tau``, ``mu``, ``beta[NAME]``, ``theta[LABEL]``, ``theta_new``,
  ``y_pred[LABEL]`` (the posterior predictive of study LABEL's effect);
- summary columns ``mean, sd, q2.5, q25, q50, q75, q97.5, hdi95_low, hdi95_high`` and, for
  MCMC, ``mcse_mean, ess_bulk, ess_tail, r_hat``;
- the ``observed_data`` (y) and ``constant_data`` (se, X) groups every DataTree carries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:  # xarray is imported where it is used: it is slow to import
    import xarray as xr

__all__ = [
    "SAMPLE_DIMS",
    "STUDY",
    "COEF",
    "POSTERIOR_ORDER",
    "DEFAULT_QUANTILES",
    "DEFAULT_PROB",
    "SUMMARY_COLUMNS",
    "MCMC_COLUMNS",
    "PREDICTED",
    "prediction_index",
    "quantile_column",
    "interval_columns",
    "summary_columns",
    "location_name",
    "coef_parameters",
    "theta_parameters",
    "flat_names",
    "variable_dims",
    "data_coords",
    "data_groups",
    "flat_draws",
    "flat_draw_arrays",
    "flatten",
]

SAMPLE_DIMS: tuple[str, str] = ("chain", "draw")
STUDY = "study"
COEF = "coef"
#: Posterior variables in table order; `z` / `z_new` (PyMC's non-centred helpers) are not reported.
POSTERIOR_ORDER: tuple[str, ...] = ("tau", "mu", "beta", "theta", "theta_new")
#: Quantiles every summary reports unless asked otherwise (coda's ``summary.mcmc`` set).
DEFAULT_QUANTILES: tuple[float, ...] = (0.025, 0.25, 0.5, 0.75, 0.975)
#: Probability of the reported shortest (highest-density) interval.
DEFAULT_PROB = 0.95


def quantile_column(q: float) -> str:
    """Summary-table column of quantile ``q``: ``0.025 -> "q2.5"``, ``0.5 -> "q50"``."""
    return "q" + f"{100.0 * float(q):.10g}"


def interval_columns(prob: float = DEFAULT_PROB) -> tuple[str, str]:
    """Columns of the shortest interval of probability ``prob``: ``("hdi95_low", "hdi95_high")``."""
    head = f"hdi{100 * float(prob):.10g}"
    return f"{head}_low", f"{head}_high"


def summary_columns(quantiles: Sequence[float] = DEFAULT_QUANTILES, prob: float = DEFAULT_PROB) -> tuple[str, ...]:
    """Columns of a summary table: ``mean, sd``, one per quantile, then the interval's ends."""
    return ("mean", "sd", *(quantile_column(q) for q in quantiles), *interval_columns(prob))


#: Columns every engine reports (with the default quantiles and interval).
SUMMARY_COLUMNS: tuple[str, ...] = summary_columns()
#: Columns MCMC adds.
MCMC_COLUMNS: tuple[str, ...] = ("mcse_mean", "ess_bulk", "ess_tail", "r_hat")
#: Per row of a prediction table: the mean effect x'beta (credible interval) and a new study's
#: effect theta_new (prediction interval).
PREDICTED: tuple[str, str] = ("x'beta", "theta_new")


def prediction_index(rows: Sequence[Any]) -> "Any":
    """Index ``(row, parameter)`` of a prediction table: each row's ``x'beta``, then its ``theta_new``."""
    import pandas as pd

    rows = list(rows)
    labels = np.empty(2 * len(rows), dtype=object)
    labels[0::2] = rows
    labels[1::2] = rows
    return pd.MultiIndex.from_arrays([labels, list(PREDICTED) * len(rows)], names=["row", "parameter"])


# ----------------------------------------------------------------------------- names of a design
def location_name(data: Any) -> str:
    """Name of the coefficient variable: ``"mu"`` for the intercept-only design, else ``"beta"``."""
    return "mu" if data.intercept_only else "beta"


def coef_parameters(data: Any) -> tuple[str, ...]:
    """Flat names of the coefficients: ``("mu",)`` or ``("beta[Intercept]", "beta[ablat]", ...)``."""
    if data.intercept_only:
        return ("mu",)
    return tuple(f"beta[{c}]" for c in data.coef_names)


def theta_parameters(data: Any, name: str = "theta") -> tuple[str, ...]:
    """Flat names of one study-indexed quantity: ``theta[A], theta[B], ...`` (or ``y_pred[...]``)."""
    return tuple(f"{name}[{s}]" for s in data.labels)


def flat_names(data: Any) -> tuple[str, ...]:
    """Every reported parameter in table order: tau, coefficients, theta[..], theta_new, y_pred[..]."""
    return tuple(flat_name_array(data))


def flat_name_array(data: Any) -> np.ndarray:
    """:func:`flat_names` as an object array, filled in place (no intermediate tuples: a million
    studies give two million names)."""
    coef, labels = coef_parameters(data), data.labels
    J, p = len(labels), len(coef)
    out = np.empty(2 * J + p + 2, dtype=object)
    out[0], out[1:1 + p], out[1 + p + J] = "tau", coef, "theta_new"
    out[1 + p:1 + p + J] = [f"theta[{s}]" for s in labels]
    out[2 + p + J:] = [f"y_pred[{s}]" for s in labels]
    return out


def variable_dims(data: Any) -> dict[str, tuple[str, ...]]:
    """Dims (besides ``chain``, ``draw``) of every shared variable and data container."""
    return {
        "tau": (),
        location_name(data): () if data.intercept_only else (COEF,),
        "theta": (STUDY,),
        "theta_new": (),
        "y": (STUDY,),
        "se": (STUDY,),
        "X": (STUDY, COEF),
    }


def data_coords(data: Any) -> dict[str, tuple[str, ...]]:
    """Coordinates ``study`` (the labels) and ``coef`` (the design column names)."""
    return {STUDY: tuple(data.labels), COEF: tuple(data.coef_names)}


def _readonly(a: Any) -> np.ndarray:
    out = np.array(a, dtype=float)
    out.flags.writeable = False
    return out


def data_groups(data: Any) -> tuple[xr.Dataset, xr.Dataset]:
    """The ``observed_data`` (y) and ``constant_data`` (se, X) groups of a fit, arrays read-only.

    Parameters
    ----------
    data : MetaData

    Returns
    -------
    (xarray.Dataset, xarray.Dataset)
        ``observed_data`` with ``y`` (dims ``study``) and ``constant_data`` with ``se`` (dims
        ``study``) and ``X`` (dims ``study, coef``), coordinates from :func:`data_coords`.
    """
    coords = data_coords(data)
    study = {STUDY: np.asarray(coords[STUDY], dtype=object)}
    both = {**study, COEF: np.asarray(coords[COEF], dtype=object)}
    import xarray as xr

    obs = xr.Dataset({"y": ((STUDY,), _readonly(data.y))}, coords=study)
    const = xr.Dataset({"se": ((STUDY,), _readonly(data.se)), "X": ((STUDY, COEF), _readonly(data.X))},
                       coords=both)
    return obs, const


# ----------------------------------------------------------------------------- flat draws
def flatten(name: str, da: xr.DataArray) -> dict[str, np.ndarray]:
    """Split draws into one ``(chain, draw)`` array per scalar element, named ``name[label]``.

    A 1-D array is taken as one chain of draws; missing ``chain`` is added. Elements of several
    extra dims are named ``name[a,b]``.
    """
    if "draw" not in da.dims:
        if da.ndim != 1:
            raise ValueError(f"draws of {name!r} need a 'draw' dimension; got dims {da.dims}")
        da = da.rename({da.dims[0]: "draw"})
    if "chain" not in da.dims:
        da = da.expand_dims("chain")
    extra = [d for d in da.dims if d not in SAMPLE_DIMS]
    values = np.asarray(da.transpose(*SAMPLE_DIMS, *extra).values, dtype=float)
    if not extra:
        return {name: values}
    labels = [[str(v) for v in (da[d].values if d in da.coords else np.arange(1, da.sizes[d] + 1))]
              for d in extra]
    flat = values.reshape(values.shape[0], values.shape[1], -1)
    return {f"{name}[{','.join(labels[i][j] for i, j in enumerate(combo))}]": flat[:, :, k]
            for k, combo in enumerate(np.ndindex(*[len(lab) for lab in labels]))}


def flat_draw_arrays(dt: xr.DataTree | xr.Dataset, variables: Iterable[str] = POSTERIOR_ORDER,
                     predictive: bool = True) -> dict[str, np.ndarray]:
    """The reported quantities of a fit as ``(chain, draw)`` arrays under their flat names.

    Parameters
    ----------
    dt : xarray.DataTree or xarray.Dataset
        Draws in the shared layout (the exact engine's ``sample()`` or
        :func:`metapool.models.sample`), or a posterior Dataset.
    variables : iterable of str
        Posterior variables to take, in order; absent ones are skipped.
    predictive : bool
        Add ``y_pred[LABEL]`` from ``posterior_predictive`` ``y`` when present.

    Returns
    -------
    dict of str to ndarray
        ``tau``, ``mu`` or ``beta[NAME]``, ``theta[LABEL]``, ``theta_new`` and ``y_pred[LABEL]``
        in that order.
    """
    import xarray as xr

    if isinstance(dt, xr.DataTree):
        if "posterior" not in dt.children:
            raise ValueError("the DataTree has no 'posterior' group")
        post = dt["posterior"].to_dataset()
    else:
        post, predictive = dt, False
    out: dict[str, np.ndarray] = {}
    for name in variables:
        if name in post.data_vars:
            out.update(flatten(name, post[name]))
    if predictive and "posterior_predictive" in dt.children and "y" in dt["posterior_predictive"].data_vars:
        out.update(flatten("y_pred", dt["posterior_predictive"]["y"]))
    if not out:
        raise ValueError("no posterior variables found (expected tau, mu/beta, theta, theta_new)")
    return out


def flat_draws(dt: xr.DataTree | xr.Dataset, variables: Iterable[str] = POSTERIOR_ORDER,
               predictive: bool = True) -> xr.Dataset:
    """:func:`flat_draw_arrays` as one Dataset of ``(chain, draw)`` variables (for ArviZ)."""
    arrays = flat_draw_arrays(dt, variables, predictive)
    import xarray as xr

    return xr.Dataset({k: (SAMPLE_DIMS, v) for k, v in arrays.items()})
