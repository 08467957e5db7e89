"""Which likelihood the ``log_likelihood`` group of a fit holds, and the study-level one from draws.

Both engines write ``log_likelihood["y"]`` per draw and study. By default it is the study-level
(marginal) likelihood with the study's own effect integrated out,

    log p(y_j | beta, tau) = log N(y_j | x_j' beta, s_j^2 + tau^2),

the likelihood of leaving one *study* out: PSIS-LOO and ``arviz.compare`` on it estimate
log p(y_j | y_-j). The conditional log N(y_j | theta_j, s_j^2) scores each study against its own
effect theta_j, which the posterior has already fitted to y_j, so it cannot tell models apart
(on bcg the intercept-only model and ``~ ablat`` tie); it stays available with
``log_likelihood="conditional"``. The group's attrs record the choice (``likelihood``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from metapool import layout
from metapool.errors import InputError

if TYPE_CHECKING:  # xarray is imported where it is used: it is slow to import
    import xarray as xr

__all__ = ["LogLikelihood", "LOG_LIKELIHOODS", "check_log_likelihood", "marginal_log_likelihood",
           "LOG_2PI"]

LogLikelihood = Literal["marginal", "conditional"]
#: The accepted values of the ``log_likelihood`` keyword of both engines' sampling functions.
LOG_LIKELIHOODS: tuple[str, ...] = ("marginal", "conditional")
LOG_2PI = float(np.log(2.0 * np.pi))


def check_log_likelihood(kind: str) -> LogLikelihood:
    """Return ``kind`` if it is ``"marginal"`` or ``"conditional"``; else raise InputError naming it."""
    if kind not in LOG_LIKELIHOODS:
        raise InputError(f"log_likelihood must be 'marginal' (theta integrated out, the default) or "
                         f"'conditional' (given theta), got {kind!r}")
    return kind  # type: ignore[return-value]


def marginal_log_likelihood(posterior: xr.Dataset, data) -> xr.DataArray:
    """log N(y_j | x_j' beta, s_j^2 + tau^2) for every draw of ``tau`` and ``mu`` / ``beta``.

    Parameters
    ----------
    posterior : xarray.Dataset
        Draws with ``tau`` (chain, draw) and ``mu`` (chain, draw) or ``beta`` (chain, draw, coef).
    data : MetaData
        The studies (y, se, X) in the order of the ``study`` coordinate.

    Returns
    -------
    xarray.DataArray
        Dims ``chain, draw, study`` with the study coordinate of the data.

    Notes
    -----
    Integrating theta_j ~ N(x_j' beta, tau^2) out of y_j | theta_j ~ N(theta_j, s_j^2) gives
    y_j | beta, tau ~ N(x_j' beta, s_j^2 + tau^2) (docs/MATH.md).
    """
    tau = np.asarray(posterior["tau"].transpose(*layout.SAMPLE_DIMS).values, dtype=float)
    loc = layout.location_name(data)
    coef = np.asarray(posterior[loc].transpose(*layout.SAMPLE_DIMS, ...).values, dtype=float)
    fit = coef[..., None] if data.intercept_only else coef @ np.asarray(data.X, dtype=float).T
    v = data.variance + (tau * tau)[..., None]
    r = data.y - fit
    ll = -0.5 * (LOG_2PI + np.log(v) + r * r / v)
    coords = {"chain": posterior["chain"].values, "draw": posterior["draw"].values,
              layout.STUDY: np.asarray(data.labels, dtype=object)}
    import xarray as xr

    return xr.DataArray(ll, dims=(*layout.SAMPLE_DIMS, layout.STUDY), coords=coords, name="y")
