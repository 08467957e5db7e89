"""The shared vocabulary of docs/CONVENTIONS.md in code: sample dims, flat parameter names, columns.

Both engines, the validation report, the tables and the CLI use these, so a name is spelled once.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["SAMPLE_DIMS", "POSTERIOR_ORDER", "quantile_column", "flat_draws"]

SAMPLE_DIMS: tuple[str, str] = ("chain", "draw")
# Posterior variables in table order; `z` / `z_new` (PyMC's non-centred helpers) are not reported.
POSTERIOR_ORDER: tuple[str, ...] = ("tau", "mu", "beta", "theta", "theta_new")


def quantile_column(q: float) -> str:
    """Summary-table column of quantile ``q``: ``0.025 -> "q2.5"``, ``0.5 -> "q50"``."""
    return "q" + f"{100.0 * float(q):.10g}"


def _flatten(name: str, da: xr.DataArray, out: dict) -> None:
    """Split a (chain, draw[, dim]) array into one (chain, draw) variable per element ``name[label]``."""
    missing = [d for d in SAMPLE_DIMS if d not in da.dims]
    if missing:
        raise ValueError(f"variable {name!r} lacks the sample dims {missing}")
    extra = [d for d in da.dims if d not in SAMPLE_DIMS]
    if len(extra) > 1:
        raise ValueError(f"variable {name!r} has more than one non-sample dim: {extra}")
    vals = np.asarray(da.transpose(*SAMPLE_DIMS, *extra).values, dtype=float)
    if not extra:
        out[name] = (SAMPLE_DIMS, vals)
        return
    dim = extra[0]
    labels = da[dim].values if dim in da.coords else np.arange(1, da.sizes[dim] + 1)
    for i, lab in enumerate(labels):
        out[f"{name}[{lab}]"] = (SAMPLE_DIMS, vals[..., i])


def flat_draws(dt: xr.DataTree | xr.Dataset, variables=POSTERIOR_ORDER, predictive: bool = True) -> xr.Dataset:
    """The reported quantities of a fit as one ``(chain, draw)`` variable per flat parameter name.

    Parameters
    ----------
    dt : xarray.DataTree or xarray.Dataset
        Draws in the shared layout (``metapool.analytic`` ``sample()`` or ``metapool.models.sample``),
        or a posterior Dataset.
    variables : iterable of str
        Posterior variables to take, in order; absent ones are skipped.
    predictive : bool
        Add ``y_pred[LABEL]`` from ``posterior_predictive`` ``y`` when present.

    Returns
    -------
    xarray.Dataset
        ``tau``, ``mu`` or ``beta[NAME]``, ``theta[LABEL]``, ``theta_new`` and ``y_pred[LABEL]``,
        in that order, dims ``(chain, draw)``.
    """
    if isinstance(dt, xr.DataTree):
        if "posterior" not in dt.children:
            raise ValueError("the DataTree has no 'posterior' group")
        post = dt["posterior"].to_dataset()
    else:
        post, predictive = dt, False
    out: dict = {}
    for name in variables:
        if name in post.data_vars:
            _flatten(name, post[name], out)
    if predictive and "posterior_predictive" in dt.children and "y" in dt["posterior_predictive"].data_vars:
        _flatten("y_pred", dt["posterior_predictive"]["y"], out)
    if not out:
        raise ValueError("no posterior variables found (expected tau, mu/beta, theta, theta_new)")
    return xr.Dataset(out)
