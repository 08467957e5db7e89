"""Quantiles and intervals of many studies' theta_j (or y_pred_j) by interpolation across studies.

In the intercept-only model the posterior of theta_j is a normal mixture whose components depend
on study j only through (y_j, s_j), smoothly; its quantiles and shortest intervals, standardised by
the row's own mean and sd, are then smooth functions of two variables. With a million studies it is
far cheaper to solve the mixtures exactly on a Chebyshev grid over those two variables and
interpolate than to solve a million mixtures; the interpolant is accepted only where it reproduces
the exact answers of check studies (the extremes of both variables and a spread of ranks) to the
engine's tolerance, and the caller solves every row exactly otherwise.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

# Groups with fewer rows are solved row by row (a grid and its checks cost about as much as
# a few thousand rows).
MIN_ROWS = 4096
# Chebyshev nodes (in z, in log s) tried in turn; the second only if the first fails its check.
SIZES = ((33, 33), (65, 65))
# Rows per interpolation block: bounds the (rows x nodes) temporaries to a few MB.
BLOCK_ROWS = 16_384

Exact = Callable[[np.ndarray, np.ndarray], np.ndarray]


def applies(data, rows: int) -> bool:
    """Whether a study-indexed group of ``rows`` rows of ``data`` is summarised by interpolation:
    intercept-only models (theta_j then depends on j only through y_j and s_j) with many studies."""
    return bool(rows >= MIN_ROWS and data.intercept_only)


def chebyshev_points(lo: float, hi: float, n: int) -> np.ndarray:
    """n Chebyshev points of the second kind on [lo, hi]: (lo + hi)/2 + (hi - lo)/2 cos(j pi / (n - 1))."""
    if n == 1:
        return np.array([0.5 * (lo + hi)])
    return 0.5 * (lo + hi) + 0.5 * (hi - lo) * np.cos(np.arange(n) * np.pi / (n - 1))


def chebyshev_coefficients(values: np.ndarray) -> np.ndarray:
    """Coefficients c_k (along axis 0) of the polynomial through values at :func:`chebyshev_points`.

    Notes
    -----
    For f_j at x_j = cos(j pi / N), N = n - 1: c_k = (2 / N) sum''_j f_j cos(j k pi / N), the sums
    halving the terms j = 0 and j = N, and c_0 and c_N halved (a discrete cosine transform; Trefethen
    2019, ch. 3). Then p(x) = sum_k c_k T_k(x) interpolates f at every x_j.

    References
    ----------
    Trefethen (2019), Approximation Theory and Approximation Practice, extended ed., SIAM.
    """
    n = values.shape[0]
    if n == 1:
        return values.copy()
    N = n - 1
    j = np.arange(n)
    M = np.cos(np.outer(j, j) * np.pi / N) * (2.0 / N)
    M[:, [0, N]] *= 0.5
    M[[0, N], :] *= 0.5
    return np.tensordot(M, values, axes=(1, 0))


def chebyshev_basis(t: np.ndarray, degree: int) -> np.ndarray:
    """T_0(t) .. T_degree(t) at t in [-1, 1], shape (R, degree + 1), by the three-term recurrence."""
    out = np.empty((t.size, degree + 1))
    out[:, 0] = 1.0
    if degree >= 1:
        out[:, 1] = t
    for k in range(2, degree + 1):
        np.multiply(out[:, k - 1], 2.0 * t, out=out[:, k])
        out[:, k] -= out[:, k - 2]
    return out


def truncation_degree(coef: np.ndarray, tol: float) -> int:
    """The smallest degree d such that the coefficients above d sum (in absolute value, for every
    column) to at most tol: dropping them moves no value by more than tol (|T_k| <= 1)."""
    size = np.abs(coef).reshape(coef.shape[0], -1).max(axis=1)
    tail = np.cumsum(size[::-1])[::-1]              # tail[k] = sum_{i >= k} size_i
    above = np.flatnonzero(tail > tol)
    return int(above[-1]) if above.size else 0


class Axis(NamedTuple):
    """An interval of one coordinate, mapped to [-1, 1] for the Chebyshev series."""

    lo: float
    hi: float

    def unit(self, x: np.ndarray) -> np.ndarray:
        if self.hi == self.lo:
            return np.zeros_like(x)
        return np.clip((2.0 * x - (self.lo + self.hi)) / (self.hi - self.lo), -1.0, 1.0)


class Grid(NamedTuple):
    """Chebyshev series in (z, log s) of the standardised columns: coef (d_z + 1, d_s + 1, C)."""

    z: Axis
    log_s: Axis
    coef: np.ndarray
    infinite: np.ndarray   # (C,) columns infinite everywhere (quantiles 0 and 1), and their values
    values: np.ndarray     # (C,) those values (+-inf; 0 elsewhere)


def interpolate(grid: Grid, z: np.ndarray, log_s: np.ndarray) -> np.ndarray:
    """The series at the points (z, log s), shape (R, C)."""
    dz, ds, C = grid.coef.shape
    Tz = chebyshev_basis(grid.z.unit(z), dz - 1)
    if ds == 1:
        out = Tz @ grid.coef[:, 0, :]
    else:
        # One matrix product over the longer series, then a short weighted sum over the other.
        Ts = chebyshev_basis(grid.log_s.unit(log_s), ds - 1)
        if dz <= ds:
            tmp = (Ts @ grid.coef.transpose(1, 0, 2).reshape(ds, dz * C)).reshape(z.size, dz, C)
            short = Tz
        else:
            tmp = (Tz @ grid.coef.reshape(dz, ds * C)).reshape(z.size, ds, C)
            short = Ts
        out = tmp[:, 0, :] * short[:, :1]
        for k in range(1, short.shape[1]):
            out += tmp[:, k, :] * short[:, k:k + 1]
    if grid.infinite.any():
        out[:, grid.infinite] = grid.values[grid.infinite]
    return out


def standardised(values: np.ndarray) -> np.ndarray:
    """(quantile columns - mean) / sd from rows [mean, sd, columns...]."""
    with np.errstate(invalid="ignore"):
        return (values[:, 2:] - values[:, :1]) / values[:, 1:2]


class Plan(NamedTuple):
    """How rows map to the grid: z = (y - centre) / sqrt(s^2 + spread2), and log s."""

    centre: float
    spread2: float

    def coordinates(self, y: np.ndarray, se2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (y - self.centre) / np.sqrt(se2 + self.spread2), 0.5 * np.log(se2)

    def study(self, z: np.ndarray, log_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        se2 = np.exp(2.0 * log_s)
        return self.centre + z * np.sqrt(se2 + self.spread2), se2


def _span(v: np.ndarray) -> tuple[float, float]:
    lo, hi = float(v.min()), float(v.max())
    if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        return lo, lo
    return lo, hi


def build_grid(plan: Plan, z_axis: Axis, s_axis: Axis, n_z: int, n_s: int, exact: Exact, tol: float) -> Grid:
    """Solve the mixtures exactly at Chebyshev points in (z, log s) and fit their standardised columns
    with a tensor Chebyshev series, truncated where the dropped terms sum to under tol / 10."""
    n_z = n_z if z_axis.hi > z_axis.lo else 1
    n_s = n_s if s_axis.hi > s_axis.lo else 1
    Z, LS = np.meshgrid(chebyshev_points(z_axis.lo, z_axis.hi, n_z), chebyshev_points(s_axis.lo, s_axis.hi, n_s),
                        indexing="ij")
    y, se2 = plan.study(Z.ravel(), LS.ravel())
    vals = standardised(exact(y, se2)).reshape(n_z, n_s, -1)
    infinite = np.all(np.isinf(vals), axis=(0, 1))
    fill = np.where(infinite, vals[0, 0], 0.0)
    vals = np.where(infinite[None, None, :], 0.0, vals)
    coef = chebyshev_coefficients(chebyshev_coefficients(vals).swapaxes(0, 1)).swapaxes(0, 1)
    dz = truncation_degree(coef, 0.05 * tol)
    ds = truncation_degree(coef.swapaxes(0, 1), 0.05 * tol)
    return Grid(z_axis, s_axis, np.ascontiguousarray(coef[: dz + 1, : ds + 1]), infinite, fill)


def check_error(grid: Grid, plan: Plan, y: np.ndarray, se2: np.ndarray, exact_values: np.ndarray) -> float:
    """Largest difference, in units of each row's sd, between interpolated and exact columns
    (inf when any value is not finite)."""
    z, ls = plan.coordinates(y, se2)
    cols = ~grid.infinite
    err = np.abs(interpolate(grid, z, ls)[:, cols] - standardised(exact_values)[:, cols])
    if not err.size:
        return 0.0
    return float(err.max()) if np.all(np.isfinite(err)) else np.inf


def summarise(y: np.ndarray, se2: np.ndarray, plan: Plan, exact: Exact, mean: np.ndarray, sd: np.ndarray,
              check: np.ndarray, tol: float, out: np.ndarray) -> bool:
    """Fill ``out[:, 2:]`` (quantile and interval columns of every row) by interpolation, if it passes.

    Parameters
    ----------
    y, se2 : (R,) the rows' effects and sampling variances.
    plan : Plan
        The map from (y, s^2) to grid coordinates.
    exact : callable
        ``exact(y, se2)`` -> (n, 2 + C) array [mean, sd, columns...] solved exactly (mean and sd as
        computed, whether or not they exist as posterior moments).
    mean, sd : (R,) the rows' mixture means and sds, computed exactly by the caller.
    check : indices of rows solved exactly to check the interpolant.
    tol : float
        Largest accepted error, in units of a row's sd.
    out : (R, 2 + C) array; only columns 2: are written, and only when the check passes.

    Returns
    -------
    bool
        True when the interpolant passed its check and ``out`` was filled.

    Notes
    -----
    Each column is interpolated in the standardised form u = (x - mean) / sd, whose error is the
    reported error in sd units, and x = mean + sd u; columns that are infinite on the whole grid
    (quantiles 0 and 1) stay infinite. The check rows include the rows at both ends of z and of
    log s, where polynomial interpolation errs most.
    """
    z, ls = plan.coordinates(y, se2)
    check = np.unique(np.concatenate([check, [np.argmin(z), np.argmax(z), np.argmin(ls), np.argmax(ls)]]))
    want = exact(y[check], se2[check])
    z_axis, s_axis = Axis(*_span(z)), Axis(*_span(ls))
    for n_z, n_s in SIZES:
        grid = build_grid(plan, z_axis, s_axis, n_z, n_s, exact, tol)
        if check_error(grid, plan, y[check], se2[check], want) <= tol:
            break
    else:
        return False
    for a in range(0, y.size, BLOCK_ROWS):
        sl = slice(a, min(a + BLOCK_ROWS, y.size))
        u = interpolate(grid, z[sl], ls[sl])
        u *= sd[sl, None]
        u += mean[sl, None]
        out[sl, 2:] = u
    return True
