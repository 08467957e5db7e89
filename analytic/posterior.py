"""The exact posterior of the normal-normal hierarchical model by one-dimensional quadrature over tau."""

from __future__ import annotations

import bisect
import dataclasses
import functools
import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, NamedTuple, Sequence

import numpy as np
from numpy.typing import ArrayLike
from metapool.analytic._base import special  # scipy.special, imported when first used

from metapool.data import MetaData
from metapool.errors import InputError
from metapool.spec import ModelSpec, model_spec
from metapool import layout
from metapool.summaries import PlainTable, shortest_interval
from metapool.analytic import _base as B
from metapool.analytic import _rows
from metapool import checks as K
from metapool.analytic import _checks as C
from metapool.analytic import _threads as T

if TYPE_CHECKING:  # pandas is imported where it is used: it is slow to import
    import pandas as pd

__all__ = ["fit", "check_proper", "ExactPosterior", "MomentWarning", "DEFAULT_QUANTILES"]

DEFAULT_QUANTILES = layout.DEFAULT_QUANTILES
# Mass left outside the integration domain: integrands are followed until they fall this many
# nats below their maximum (e^-46 ~ 1e-20 of the peak).
TAIL_NATS = 46.0
# The log-tau domain searched: tau^2 must stay finite (tau < 1.34e154); below, tau^2 may underflow
# to 0 harmlessly (the likelihood is then its tau -> 0 limit), down to the smallest normal double
# (2.2e-308; tau below it has fewer significant digits). Mass below the lower end is added in
# closed form (see _left_tail).
X_RANGE = (-708.0, 354.5)
# Mixtures of a group over more (nodes x rows) cells than this use a compressed Gauss rule when
# one reproduces the full rule's summaries (_mixture_rule): below it the full rule is cheap.
COMPRESS_CELLS = 200_000
# Node counts of the compressed rules tried, in order, for the summaries of small problems
# (ExactPosterior._ladder_rule): consecutive rules are compared, so each is at most 1.5x the last.
LADDER = (16, 24, 32, 48)


class MomentWarning(UserWarning):
    """A posterior mean or standard deviation does not exist (heavy tails of an improper prior)."""


# --------------------------------------------------------------------------- the object
@dataclass(frozen=True, eq=False)
class ExactPosterior:
    """Exact posterior of (tau, beta, theta) given y, represented by a converged quadrature rule over tau.

    Do not construct directly: use :func:`fit`. All summaries are mixtures over tau of the
    closed-form conditional normals (docs/MATH.md) and carry no Monte Carlo error; their
    numerical error is below ``rtol`` (``error_estimate`` reports the achieved change on the
    last refinement, relative to each summary's scale: its posterior sd for locations). It does
    not count the rounding of each reported number to a double (a few units in its last place),
    which matters only where a posterior sd is below about 1e-12 of the value (a coefficient
    pinned by a very tight prior far from 0).
    """

    spec: ModelSpec                  # the model: data, bound priors, the new study
    data: MetaData
    tau_prior: object
    beta_prior: object
    problem: "Problem" = field(repr=False)
    rtol: float
    coordinate: str                  # "log" (x = log tau) or "tau" (a user grid)
    rule: B.Rule
    logf: np.ndarray                 # (P, n) log density in the coordinate, unnormalised
    log_norm: float
    weights: np.ndarray              # (K,) normalised node weights (sum 1)
    tau_nodes: np.ndarray            # (K,)
    cond: B.Conditional              # at the nodes
    x_new: np.ndarray                # covariate row of a new study
    tail_exponent: float
    error_estimate: float
    levels: int
    _cdf_coef: np.ndarray = field(repr=False)
    _cum: np.ndarray = field(repr=False)    # CDF at the panel edges (_cum[0]: mass below the first)

    # ----------------------------------------------------------- names
    @property
    def coef_param_names(self) -> tuple[str, ...]:
        return layout.coef_parameters(self.data)

    @property
    def parameters(self) -> tuple[str, ...]:
        """Flat parameter names, in summary order."""
        return tuple(self._names)

    @functools.cached_property
    def _names(self) -> np.ndarray:
        """The flat names as an object array, built once (2J + p + 2 strings)."""
        return layout.flat_name_array(self.data)

    def _exists(self, kind: str) -> tuple[bool, bool]:
        return self.spec.moments_exist(kind)

    # ----------------------------------------------------------- tau
    def tau_cdf(self, t: ArrayLike) -> np.ndarray:
        """Posterior CDF of tau (piecewise-polynomial interpolant of the quadrature, exact at panel ends)."""
        t = np.asarray(t, dtype=float)
        with np.errstate(divide="ignore"):
            x = np.log(t) if self.coordinate == "log" else t
        e = self.rule.edges
        idx = np.clip(np.searchsorted(e, x, side="right") - 1, 0, len(e) - 2)
        half = 0.5 * (e[idx + 1] - e[idx])
        u = np.clip((x - e[idx]) / half - 1.0, -1.0, 1.0)
        within = np.polynomial.legendre.legval(u, self._cdf_coef[idx].T, tensor=False)
        out = self._cum[idx] + within
        with np.errstate(over="ignore"):
            # below the first edge: the closed-form tail c0 e^(x - e0) (see _left_tail)
            below = self._cum[0] * np.exp(np.minimum(x - e[0], 0.0)) if self.coordinate == "log" else 0.0
        out = np.where(x <= e[0], below, np.where(x >= e[-1], 1.0, out))
        return np.clip(out, 0.0, 1.0)

    def tau_hdi(self, prob: float = layout.DEFAULT_PROB) -> tuple[float, float]:
        """Shortest interval holding ``prob`` of tau's posterior (``hdi95_low``, ``hdi95_high``).

        Notes
        -----
        For a unimodal density the interval [a, b] is shortest where F(b) - F(a) = prob and the
        density is equal at both ends. If the density at tau = 0 is at least that at Q(prob)
        (the mode at 0, as it often is for tau) the interval is [0, Q(prob)]. Otherwise both
        conditions are solved by Newton's method in (a, b) in the quadrature coordinate x
        (log tau, or tau on a user grid), on the CDF interpolant and its first two derivatives
        (closed form per panel: :meth:`_tau_panel`), from the equal-tailed interval: with
        log f = log f_x(x) - x (f_x the density in x), G1 = F(b) - F(a) - prob and
        G2 = log f(a) - log f(b) have the Jacobian [[-f_x(a), f_x(b)], [k(a), -k(b)]],
        k = f_x' / f_x - 1. Where Newton does not converge (a density that is not unimodal, or
        flat), the root of g(c) = f(Q(c)) - f(Q(c + prob)) on [0, 1 - prob] is bracketed and
        found by the Illinois variant of regula falsi (:meth:`_tau_hdi_bracketed`).

        References
        ----------
        Dowell & Jarratt (1971), BIT 11:168-174 (the Illinois method).
        """
        tail = (1.0 - prob) / 2.0
        t = self.tau_quantile(np.array([prob, 1.0 - prob, tail, 1.0 - tail]))
        low = 0.0 if self.coordinate == "log" else float(self.rule.edges[0])
        f0, f_top, f_bottom, f_end = self._tau_density_interp(np.array([low, t[0], t[1], self.tau_prior.upper]))
        if f0 - f_top >= 0:
            return low, float(t[0])
        if not f_bottom - f_end > 0:        # not unimodal as assumed: the general search
            return shortest_interval(lambda c: float(self.tau_quantile(c)), prob, lower_bound=0.0)
        ends = self._tau_hdi_newton(prob, float(t[2]), float(t[3]))
        if ends is None:
            return self._tau_hdi_bracketed(prob)
        lo, hi = ends
        if t[0] - low <= hi - lo:          # a density flat near 0: the support's end is as short
            return low, float(t[0])
        return lo, hi

    @functools.cached_property
    def _tau_panels(self) -> tuple[list[float], list[list[float]], list[list[float]], list[list[float]]]:
        """Panel edges and, per panel, the CDF interpolant's Legendre coefficients and those of its
        first and second derivatives, as Python lists (for scalar evaluation in :meth:`_tau_panel`)."""
        d1 = self._cdf_dcoef
        return (self.rule.edges.tolist(), self._cdf_coef.tolist(), d1.tolist(), B.legendre_derivative(d1).tolist())

    def _tau_panel(self, x: float) -> tuple[float, float, float]:
        """The CDF interpolant F, its density f_x = dF/dx and f_x' at one x of the quadrature coordinate."""
        edges, c, d1, d2 = self._tau_panels
        if x <= edges[0]:
            if self.coordinate != "log":
                return 0.0, 0.0, 0.0
            F = float(self._cum[0]) * math.exp(x - edges[0])   # the closed-form tail (_left_tail)
            return F, F, F
        if x >= edges[-1]:
            return 1.0, 0.0, 0.0
        i = min(bisect.bisect_right(edges, x) - 1, len(edges) - 2)
        half = 0.5 * (edges[i + 1] - edges[i])
        u = (x - edges[i]) / half - 1.0
        F, f = B._clenshaw2(u, c[i], d1[i])
        return float(self._cum[i]) + F, f / half, B._clenshaw(u, d2[i]) / (half * half)

    def _tau_hdi_newton(self, prob: float, lo: float, hi: float, max_iter: int = 50) -> tuple[float, float] | None:
        """Newton's method for the shortest interval from (lo, hi) (see :meth:`tau_hdi`); None if it
        does not converge to an interval inside the support."""
        log = self.coordinate == "log"
        if not (0.0 < lo < hi and math.isfinite(hi)) if log else not (lo < hi and math.isfinite(hi)):
            return None
        lc = 1.0 if log else 0.0
        a, b = (math.log(lo), math.log(hi)) if log else (lo, hi)
        for _ in range(max_iter):
            Fa, fa, da = self._tau_panel(a)
            Fb, fb, db = self._tau_panel(b)
            if not (fa > 0.0 and fb > 0.0):
                return None
            g1 = Fb - Fa - prob
            ka, kb = da / fa - lc, db / fb - lc
            g2 = (math.log(fa) - lc * a) - (math.log(fb) - lc * b)
            det = fa * kb - fb * ka
            if not (det != 0.0 and math.isfinite(det)):
                return None
            step_a = (-kb * g1 - fb * g2) / det
            step_b = (-fa * g2 - ka * g1) / det
            width = b - a
            lim = 0.5 * width                    # damp steps that would cross or flip the interval
            step_a, step_b = max(-lim, min(lim, step_a)), max(-lim, min(lim, step_b))
            a, b = a - step_a, b - step_b
            # Quadratic convergence: a step below 1e-9 of the width leaves ~1e-18 of it.
            if max(abs(step_a), abs(step_b)) <= 1e-9 * width and abs(g1) <= 1e-12:
                if not b > a:
                    return None
                return (math.exp(a), math.exp(b)) if log else (a, b)
        return None

    def _tau_hdi_bracketed(self, prob: float) -> tuple[float, float]:
        """The shortest interval by the Illinois method on g(c) = f(Q(c)) - f(Q(c + prob)) (see
        :meth:`tau_hdi`): the fallback where Newton's method does not converge."""
        def g(c: float) -> float:
            t = self.tau_quantile(np.array([c, c + prob]))
            f = self._tau_density_interp(t)
            return float(f[0] - f[1])

        a, b = 0.0, 1.0 - prob
        ga = g(a)
        if ga >= 0:
            low = 0.0 if self.coordinate == "log" else float(self.rule.edges[0])
            return low, float(self.tau_quantile(prob))
        gb = g(b)
        if not gb > 0:        # not unimodal as assumed: the general search
            return shortest_interval(lambda c: float(self.tau_quantile(c)), prob, lower_bound=0.0)
        side = 0
        for _ in range(200):
            c = (a * gb - b * ga) / (gb - ga)
            if not a < c < b:
                c = 0.5 * (a + b)
            gc = g(c)
            if gc == 0:
                a = b = c
                break
            if gc < 0:
                a, ga = c, gc
                if side == -1:
                    gb *= 0.5
                side = -1
            else:
                b, gb = c, gc
                if side == +1:
                    ga *= 0.5
                side = +1
            if b - a <= 1e-14:
                break
        c = 0.5 * (a + b)
        lo, hi = self.tau_quantile(np.array([c, c + prob]))
        low = 0.0 if self.coordinate == "log" else float(self.rule.edges[0])
        top = float(self.tau_quantile(prob))
        if top - low <= hi - lo:          # a density flat near 0: the support's end is as short
            return low, top
        return float(lo), float(hi)

    def _tau_density_interp(self, t: np.ndarray) -> np.ndarray:
        """Posterior density of tau from the CDF interpolant's derivative (consistent with tau_cdf)."""
        e = self.rule.edges
        with np.errstate(divide="ignore"):
            x = np.log(t) if self.coordinate == "log" else np.asarray(t, dtype=float)
        idx = np.clip(np.searchsorted(e, x, side="right") - 1, 0, len(e) - 2)
        half = 0.5 * (e[idx + 1] - e[idx])
        u = np.clip((x - e[idx]) / half - 1.0, -1.0, 1.0)
        fx = np.polynomial.legendre.legval(u, self._cdf_dcoef[idx].T, tensor=False) / half
        if self.coordinate == "log":
            # Below the first edge tau's density is constant (the integrand in x is f(e0) e^(x - e0)).
            f0 = float(np.polynomial.legendre.legval(-1.0, self._cdf_dcoef[0]) / (0.5 * (e[1] - e[0])))
            with np.errstate(over="ignore"):
                tail = f0 * np.exp(-e[0])
            with np.errstate(divide="ignore", invalid="ignore"):
                f = np.where(x <= e[0], tail, fx / t)
        else:
            f = np.where(x < e[0], 0.0, fx)
        return np.where(x >= e[-1], 0.0, f)

    def tau_logpdf(self, t: ArrayLike) -> np.ndarray:
        """Exact normalised log posterior density of tau (evaluated directly, not interpolated)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        out = np.full(t.shape, -np.inf)
        ok = (t >= 0) & (t <= self.tau_prior.upper)
        if ok.any():
            # log_norm normalises int p(tau) dtau in either coordinate (dx = dtau / tau in log).
            out[ok] = _log_post_tau(t[ok], self.problem) - self.log_norm
        return out

    def tau_pdf(self, t: ArrayLike) -> np.ndarray:
        """Exact normalised posterior density of tau."""
        return np.exp(self.tau_logpdf(t))

    def tau_quantile(self, q: ArrayLike) -> np.ndarray:
        """Quantiles of tau, solved on the CDF interpolant (continuous, not restricted to nodes).

        q = 0 gives 0 and q = 1 the end of the prior's support (inf unless bounded); q outside
        [0, 1] or NaN raises :class:`metapool.errors.InputError`.
        """
        qs = np.atleast_1d(K.probabilities("q", q))
        e = self.rule.edges
        p = np.clip(np.searchsorted(self._cum, qs, side="right") - 1, 0, len(e) - 2)
        u = B.invert_panel_cdf(self._cdf_coef[p], qs - self._cum[p], dcoef=self._cdf_dcoef[p])
        out = self._from_x(e[p] + (u + 1.0) * 0.5 * (e[p + 1] - e[p]))
        low = 0.0 if self.coordinate == "log" else e[0]
        c0 = self._cum[0]
        if c0 > 0:                       # inside the closed-form tail below the first edge
            with np.errstate(divide="ignore"):
                tail = np.exp(e[0] + np.log(np.maximum(qs, 0.0) / c0))
            out = np.where(qs < c0, tail, out)
        out = np.where(qs <= 0, low, np.where(qs >= 1, self.tau_prior.upper, out))
        return out if np.ndim(q) else out[0]

    @functools.cached_property
    def _cdf_dcoef(self) -> np.ndarray:
        """Derivative coefficients of every panel's CDF polynomial (the density interpolant)."""
        return B.legendre_derivative(self._cdf_coef)

    def _from_x(self, x):
        return np.exp(x) if self.coordinate == "log" else x

    def _tau_moments(self) -> tuple[float, float]:
        mean_ok, sd_ok = self._exists("tau")
        t = self.tau_nodes
        mean = float(self.weights @ t) if mean_ok else np.nan
        sd = float(np.sqrt(self.weights @ (t - mean) ** 2)) if sd_ok else np.nan
        return mean, sd

    # ----------------------------------------------------------- conditional curves (plots)
    def conditional_theta(self, tau: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd of every theta_j given tau (beta integrated out): arrays (len(tau), J).

        Notes
        -----
        E[theta_j | tau, y] = w_j y_j + (1 - w_j) x_j' beta_hat(tau), w_j = tau^2 / (tau^2 + s_j^2);
        the curves of the original analysis's commented-out code, computed exactly.
        """
        tau = np.atleast_1d(np.asarray(tau, dtype=float))
        d = self.data
        cond = _conditional(tau, self.problem)
        m, v = B.theta_moments(tau, cond, d.y, d.variance, d.X)
        return m, np.sqrt(v)

    # ----------------------------------------------------------- mixtures
    def _group_moments(self, kind: str, tau: np.ndarray, cond: B.Conditional,
                       rows: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Conditional mean and sd (K, R) of the rows of one group at the given tau nodes."""
        d = self.data
        if kind == "beta":
            m = cond.beta_hat[:, rows]
            sd = np.sqrt(np.diagonal(cond.beta_cov, axis1=1, axis2=2)[:, rows])
            return m, sd
        if kind == "theta_new":
            x0 = self.x_new
            m = (cond.beta_hat @ x0)[:, None]
            var = np.einsum("p,kpq,q->k", x0, cond.beta_cov, x0) + tau**2
            return m, np.sqrt(var)[:, None]
        return self._study_moments(kind, tau, cond, d.y[rows], d.variance[rows], d.X[rows])

    @staticmethod
    def _study_moments(kind: str, tau: np.ndarray, cond: B.Conditional, y: np.ndarray, se2: np.ndarray,
                       X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Conditional mean and sd (K, R) of theta (or y_pred) of studies (y, se2, X), real or not."""
        m, v = ExactPosterior._study_moments_var(kind, tau, cond, y, se2, X)
        return m, np.sqrt(v)

    @staticmethod
    def _study_moments_var(kind: str, tau: np.ndarray, cond: B.Conditional, y: np.ndarray, se2: np.ndarray,
                           X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_study_moments` with variances instead of sds (y_pred adds s^2 to theta's)."""
        m, v = B.theta_moments(tau, cond, y, se2, X)
        if kind == "y_pred":
            v += se2[None, :]
        return m, v

    def _group_size(self, kind: str) -> int:
        return {"beta": self.data.p, "theta_new": 1}.get(kind, self.data.J)

    def _compressed(self, n: int, coordinate: str = "tau2", h: float = 0.0):
        """An n-node Gauss rule for the tau posterior (for mixtures over many rows).

        ``coordinate`` is the variable the rule is Gaussian in: ``"tau2"`` (tau^2, in which the
        conditional moments w_j = tau^2 / (tau^2 + s_j^2) are rational with poles at -s_j^2, off the
        support) or ``"logv"``: log(tau^2 + h). theta_j's conditional variance is about
        tau^2 + h near tau = 0 (h: the variance of x_j'beta at tau = 0), a branch point at
        tau^2 = -h that lies next to the support when the posterior of tau reaches 0 and h is
        small (many studies); the logarithm moves it to -infinity, so Gauss rules converge there.
        """
        keep = self.weights > 0
        [(tau, w)] = self._compressed_nodes((n,), coordinate, h, self.tau_nodes[keep], self.weights[keep])
        return tau, w, _conditional(tau, self.problem)

    @staticmethod
    def _compressed_nodes(ns: tuple[int, ...], coordinate: str, h: float, t: np.ndarray, wt: np.ndarray
                          ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Nodes (tau) and weights of the Gauss rules of :meth:`_compressed` with ``ns`` nodes for
        the discrete measure (t, wt)."""
        x = t * t if coordinate == "tau2" else np.log(t * t + h)
        wt = wt / wt.sum()
        c = float(wt @ x)
        s = math.sqrt(float(wt @ (x - c) ** 2)) or 1.0
        out = []
        for u, w in B.gauss_rules_for_measure((x - c) / s, wt, ns):
            xn = c + s * u
            out.append((np.sqrt(np.maximum(xn if coordinate == "tau2" else np.exp(xn) - h, 0.0)), w))
        return out

    @functools.cached_property
    def _full_rule(self) -> tuple[np.ndarray, np.ndarray, B.Conditional]:
        """The full rule's nodes, normalised weights and conditionals, less the nodes whose weight
        is negligible even for second moments (tau^2 grows along a heavy tail: dropping by weight
        alone lost 2e-6 of theta_new's sd under a half-Cauchy prior)."""
        t_ref = self.tau_nodes[np.argmax(self.weights)] or 1.0
        contrib = self.weights * (1.0 + (self.tau_nodes / t_ref) ** 2)
        keep = (contrib > 1e-18 * contrib.max()) | (self.weights > 1e-18 * self.weights.max())
        tau, w = self.tau_nodes[keep], self.weights[keep] / self.weights[keep].sum()
        return tau, w, B.Conditional(self.cond.log_post[keep], self.cond.beta_hat[keep], self.cond.beta_cov[keep])

    def _mixture_rule(self, kind: str):
        """Nodes for the mixture of one group: the full rule, or the smallest compressed Gauss rule
        that reproduces the means and sds of representative rows to rtol, when the group is large
        enough that (nodes x rows) work dominates.

        Compression is tried in tau^2 first (the conditional moments are smooth there, and a
        concentrated posterior needs a handful of nodes whatever its left tail in log tau), then
        in log(tau^2 + h) (see :meth:`_compressed`). A candidate must reproduce the means, sds and
        CDFs (in quantile units) of representative rows to 0.1 rtol of their sd
        (:func:`_mixture_probe`): moments alone can agree to 1e-15 while quantiles differ by 1e-3.
        """
        tau, w, cond = self._full_rule
        R = self._group_size(kind)
        if tau.size * R <= COMPRESS_CELLS or tau.size <= 24:
            return tau, w, cond
        rows = self.problem.representative if kind in ("theta", "y_pred") else slice(None)
        ref = _mixture_probe(self, kind, tau, w, cond, rows)
        k0 = int(np.argmin(tau))
        X = self.data.X[rows] if kind in ("theta", "y_pred") else self.data.X
        h = float(np.median(np.einsum("jp,pq,jq->j", X, cond.beta_cov[k0], X)))
        for coordinate, sizes in (("tau2", (3, 4, 6, 8)), ("logv", (12, 16, 24, 32))):
            if coordinate == "logv" and not h > 0:
                continue
            for n in sizes:
                tc, wc, cc = self._compressed(n, coordinate, h)
                if _mixture_probe(self, kind, tc, wc, cc, rows, ref) < 0.1 * self.rtol:
                    return tc, wc, cc
        return tau, w, cond

    def _group_mean_sd(self, kind, tau, w, cond, rows=None) -> tuple[np.ndarray, np.ndarray]:
        idx = np.arange(self._group_size(kind))[slice(None) if rows is None else rows]
        mean, sd = np.empty(idx.size), np.empty(idx.size)
        d = self.data
        for sl in B.chunks(idx.size, tau.size) if kind in ("theta", "y_pred") else [slice(None)]:
            if kind in ("theta", "y_pred"):        # from the variances: no square root and square again
                r = idx[sl]
                mean[sl], sd[sl] = B.mixture_mean_sd_var(
                    w, *self._study_moments_var(kind, tau, cond, d.y[r], d.variance[r], d.X[r]))
                continue
            m, s = self._group_moments(kind, tau, cond, idx[sl] if kind != "theta_new" else slice(None))
            mean[sl], sd[sl] = B.mixture_mean_sd(w, m, s)
        return mean, sd

    def _group_summary(self, kind: str, quantiles: Sequence[float], prob: float, out: np.ndarray) -> None:
        """Fill ``out`` (R, 2 + len(quantiles) + 2): mean, sd, quantiles, hdi low/high for one group."""
        tau, w, cond = self._mixture_rule(kind)
        R = self._group_size(kind)
        exists = self._exists(kind)
        if kind in ("theta", "y_pred") and _rows.applies(self.data, R):
            if self._interpolated_rows(kind, tau, w, cond, quantiles, prob, out):
                return

        def rows(sl: slice) -> None:
            m, s = self._group_moments(kind, tau, cond, sl)
            B.write_summary(out, sl, B.summarise_mixtures(w, m, s, tuple(quantiles), prob), exists)

        # Row chunks write disjoint rows of out; several only for large groups.
        parts = B.chunks(R, tau.size * 8) if kind in ("theta", "y_pred") else [slice(None)]
        T.run([functools.partial(rows, sl) for sl in parts], self.problem.threads)

    def _interpolated_rows(self, kind: str, tau: np.ndarray, w: np.ndarray, cond: B.Conditional,
                           quantiles: Sequence[float], prob: float, out: np.ndarray) -> bool:
        """Fill ``out`` for theta or y_pred of an intercept-only model by interpolation across studies
        (:mod:`metapool.analytic._rows`); False (nothing written) when the interpolant fails its check."""
        d = self.data
        mean_ok, sd_ok = self._exists(kind)

        def exact(y: np.ndarray, se2: np.ndarray) -> np.ndarray:
            res = np.empty((y.size, out.shape[1]))
            m, s = self._study_moments(kind, tau, cond, y, se2, np.ones((y.size, 1)))
            B.write_summary(res, slice(None), B.summarise_mixtures(w, m, s, tuple(quantiles), prob), (True, True))
            return res

        mean, sd = self._group_mean_sd(kind, tau, w, cond)
        plan = _rows.Plan(centre=float(B.wsum(w, cond.beta_hat[:, 0])), spread2=float(B.wsum(w, tau * tau)))
        if not _rows.summarise(d.y, d.variance, plan, exact, mean, sd, self.problem.representative,
                               0.1 * self.rtol, out):
            return False
        out[:, 0] = mean if mean_ok else np.nan
        out[:, 1] = sd if sd_ok else np.nan
        return True

    def _joint(self) -> bool:
        """Whether the summary takes every kind together (:meth:`_joint_summary`): while the full
        rule over all of theta's rows stays under COMPRESS_CELLS cells (small problems)."""
        return self.tau_nodes.size * self.data.J <= COMPRESS_CELLS

    def _stacked_moments(self, tau: np.ndarray, cond: B.Conditional) -> tuple[np.ndarray, np.ndarray]:
        """Conditional means and sds (K, R) of every row of beta, theta, theta_new and y_pred, in
        summary order (theta's moments computed once: y_pred adds s_j^2 to their variance)."""
        d = self.data
        mb, sb = self._group_moments("beta", tau, cond)
        mt, vt = B.theta_moments(tau, cond, d.y, d.variance, d.X)
        mn, sn = self._group_moments("theta_new", tau, cond)
        return (np.hstack([mb, mt, mn, mt]),
                np.hstack([sb, np.sqrt(vt), sn, np.sqrt(vt + d.variance[None, :])]))

    def _joint_summary(self, quantiles: Sequence[float], prob: float, out: np.ndarray,
                       compress: bool = True) -> None:
        """Fill ``out`` (every row after tau) for all kinds at once: one stacked mixture
        (:meth:`_stacked_moments`), means and sds from the full rule, quantiles and intervals
        of each row from the compressed rule that passes :meth:`_ladder_rules` for it (or the full
        rule), solved in one loop per rule (:func:`metapool.analytic._base.summarise_mixtures`)."""
        tau, w, cond = self._full_rule
        m, s = self._stacked_moments(tau, cond)
        R = m.shape[1]
        mean, sd = B.mixture_mean_sd(w, m, s)
        parts = self._ladder_rules(tau, w, cond, mean, sd) if compress else [(np.arange(R), None)]
        if len(parts) == 1:
            res = B.summarise_mixtures(w, m, s, tuple(quantiles), prob, rule=parts[0][1], moments=(mean, sd))
        else:
            res = B.MixtureSummary(np.empty(R), np.empty(R), np.empty((len(quantiles), R)), np.empty(R), np.empty(R))
            for cols, rule in parts:
                got = B.summarise_mixtures(w, m[:, cols], s[:, cols], tuple(quantiles), prob, rule=rule,
                                           moments=(mean[cols], sd[cols]))
                for full, part in zip(res, got):
                    full[..., cols] = part
        row = 0
        for kind in ("beta", "theta", "theta_new", "y_pred"):
            n = self._group_size(kind)
            sl = slice(row, row + n)
            B.write_summary(out, sl, B.MixtureSummary(*(v[..., sl] for v in res)), self._exists(kind))
            row += n

    def _ladder_rules(self, tau: np.ndarray, w: np.ndarray, cond: B.Conditional, mean: np.ndarray,
                      sd: np.ndarray) -> list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None]]:
        """The rows (columns of the stacked mixture) that a compressed Gauss rule of LADDER passes,
        with that rule (weights, means and sds of those rows): each row's mixtures agree with the
        next smaller rule's and with the full rule's moments to 0.1 rtol; and the rows that no
        rule passes, with None (the full rule); all rows with None when a moment does not exist
        or the full rule is not much larger than the candidates.

        Notes
        -----
        The n-node Gauss rule for the posterior of v = log(tau^2 + h) (:meth:`_compressed`)
        integrates every polynomial in v of degree 2n - 1 exactly against the full rule's
        discrete measure. Where a row's mixture CDF Phi((x - m(tau)) / s(tau)) and moments are
        analytic in v near the support, the n-node rule's error falls geometrically, like
        rho^(-2n) for some rho > 1: a rule with more nodes is more accurate, and the difference
        between two consecutive rules of LADDER (ratio <= 1.5) is within a factor
        1 + rho^(-2 (n' - n)) of the smaller rule's own error. A rule n' is accepted for a row when

        (i) its CDF at mean + (-2, -0.7, 0, 0.7, 2) sd differs from rule n's by less than 0.1 rtol
        of the row's sd in quantile units, dF / (f sd) (a CDF error dF moves a quantile by
        dF / f; f, a scale only, is the density of the first rule compared, which a 24-node rule
        gives far better than the factor of 2 that would matter), and
        (ii) its mean and sd equal the full rule's (computed exactly anyway) to 0.1 rtol of the sd.

        n' is then at least as accurate as that bound, and the row's quantiles and shortest
        interval (solved from those CDFs) are within 0.1 rtol of the full rule's. Rows whose
        singularities lie close to the support converge slowly (a pole of
        w_j = tau^2 / (tau^2 + s_j^2) or a zero of s(tau)^2 next to log h) and fall through to the
        full rule, row by row. The rows that pass take the largest rule that any of them needed
        (more accurate still for the others; one solve for all of them). The reported means and
        sds always come from the full rule. Moments alone are not enough: they can agree to
        1e-15 while quantiles differ by 1e-3 (a narrow component of theta_j's posterior from tau
        near 0), hence the CDF comparison; comparing consecutive rules instead of each against
        the full rule saves the full rule's special functions at every probe point (~2-4 ms per
        kind for 79 studies). Measured on 30 simulated batch groups, eight schools, bcg ~ ablat,
        seed_countries and equal-error data up to J = 500, the accepted rules' quantiles and
        intervals were within 1e-11 of a posterior sd of the full rule's (tests/analytic/
        test_small_summary.py checks 1e-9).

        References
        ----------
        Gautschi (2004), Orthogonal Polynomials: Computation and Approximation, sec. 1.4
        (Gauss rules for discrete measures) and Trefethen (2008), SIAM Review 50:67-87
        (geometric convergence of Gauss quadrature for analytic integrands).
        """
        R = mean.size
        everything = [(np.arange(R), None)]
        if tau.size < 3 * LADDER[-1] or not all(
                all(self._exists(k)) for k in ("tau", "beta", "theta", "theta_new", "y_pred")):
            return everything
        X = self.data.X
        k0 = int(np.argmin(tau))
        h = float(np.median(np.einsum("jp,pq,jq->j", X, cond.beta_cov[k0], X)))
        if not (h > 0 and np.all(np.isfinite(sd)) and np.all(sd > 0)):
            return everything
        pts = mean + np.array([-2.0, -0.7, 0.0, 0.7, 2.0])[:, None] * sd
        tol = 0.1 * self.rtol
        todo = np.ones(R, dtype=bool)
        best = None
        prev = dens = None
        for sizes in (LADDER[:-1], LADDER[-1:]):        # the largest only when needed
            nodes = self._compressed_nodes(sizes, "logv", h, tau, w)
            if any(t.size != n or not np.all(np.isfinite(t)) for (t, _), n in zip(nodes, sizes)):
                break             # a measure on fewer distinct points (numerically) than a rule's nodes
            both = np.concatenate([t for t, _ in nodes])
            M, S = self._stacked_moments(both, _conditional(both, self.problem))
            start = 0
            for tn, wn in nodes:
                sl = slice(start, start + tn.size)
                start += tn.size
                mn, sn = M[sl], S[sl]
                with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
                    z = (pts[:, None, :] - mn[None]) / sn[None]
                    cdf = np.einsum("k,pkr->pr", wn, special.ndtr(z))
                    if prev is not None:
                        if dens is None:      # a scale only: the first compared rule's density serves
                            dens = np.einsum("k,pkr->pr", wn, np.exp(-0.5 * z * z) / sn[None]) / math.sqrt(2 * math.pi)
                            dens = np.maximum(dens * sd, np.finfo(float).tiny)
                        mu_n, sd_n = B.mixture_mean_sd(wn, mn, sn)
                        err = np.maximum(np.max(np.abs(cdf - prev) / dens, axis=0),
                                         np.maximum(np.abs(mu_n - mean), np.abs(sd_n - sd)) / sd)
                        ok = todo & (err < tol)       # NaN errors never pass
                        if ok.any():
                            todo &= ~ok
                            best = (wn, mn, sn)
                            if not todo.any():
                                break
                prev = cdf
            if not todo.any():
                break
        out = []
        if best is not None:            # every row that passed, on the largest rule any needed
            cols = np.flatnonzero(~todo)
            out.append((cols, (best[0], best[1][:, cols], best[2][:, cols])))
        if todo.any():
            out.append((np.flatnonzero(todo), None))
        return out

    # ----------------------------------------------------------- public summaries
    def summary(self, quantiles: Sequence[float] | None = None, prob: float = 0.95) -> pd.DataFrame:
        """Exact posterior summaries, one row per parameter: :meth:`summary_table` as a DataFrame.

        Parameters
        ----------
        quantiles : sequence of float, optional
            Probabilities of the reported quantiles (default 2.5, 25, 50, 75, 97.5 %).
        prob : float
            Probability of the shortest (highest-density) interval.

        Returns
        -------
        pandas.DataFrame
            Index ``parameter``; the columns and rows of :meth:`summary_table`.
        """
        return self._summary_table(quantiles, prob).to_frame()

    def summary_table(self, quantiles: Sequence[float] | None = None, prob: float = 0.95) -> PlainTable:
        """Exact posterior summaries, one row per parameter, without pandas.

        Parameters
        ----------
        quantiles : sequence of float, optional
            Probabilities of the reported quantiles (default 2.5, 25, 50, 75, 97.5 %).
        prob : float
            Probability of the shortest (highest-density) interval, reported as ``hdi95_low`` /
            ``hdi95_high`` for the default 0.95 (``hdi{100 prob}_low`` otherwise).

        Returns
        -------
        PlainTable
            Rows (index ``parameter``) ``tau``, ``mu`` or ``beta[NAME]``, ``theta[LABEL]``,
            ``theta_new``, ``y_pred[LABEL]``; columns ``mean, sd, q2.5, q25, q50, q75, q97.5,
            hdi95_low, hdi95_high``. Means and sds that do not exist (heavy posterior tails
            under improper priors) are NaN, with a :class:`MomentWarning`.

        Notes
        -----
        For g with conditional N(m(tau), v(tau)): E[g] = int m p(tau|y) dtau,
        Var[g] = int (v + (m - E g)^2) p(tau|y) dtau and P(g <= x) = int Phi((x - m)/sqrt v) p(tau|y) dtau,
        inverted by bracketed Newton iteration; the shortest interval solves F(b) - F(a) = prob,
        f(a) = f(b).
        """
        return self._summary_table(quantiles, prob)

    def _summary_table(self, quantiles: Sequence[float] | None, prob: float) -> PlainTable:
        qs = tuple(float(v) for v in np.atleast_1d(K.probabilities("quantiles", DEFAULT_QUANTILES if quantiles is None
                                                                      else quantiles)))
        if not (isinstance(prob, numbers.Real) and 0.0 < prob < 1.0):
            raise InputError(f"prob must be a probability in (0, 1), got {prob!r}")
        cols = list(layout.summary_columns(qs, prob))
        self._warn_moments()
        # Column-major, so the DataFrame takes the array without a transposing copy.
        out = np.empty((len(self._names), len(cols)), order="F")
        out[0, :2] = self._tau_moments()
        out[0, 2:2 + len(qs)] = self.tau_quantile(np.asarray(qs))
        out[0, -2:] = self.tau_hdi(prob)
        if self._joint():
            self._joint_summary(qs, prob, out[1:])
        else:
            row = 1
            for kind in ("beta", "theta", "theta_new", "y_pred"):
                R = self._group_size(kind)
                self._group_summary(kind, qs, prob, out[row:row + R])
                row += R
        return PlainTable(self._names, tuple(cols), out, "parameter")

    def _warn_moments(self) -> None:
        mean_ok, sd_ok = self._exists("tau")
        if mean_ok and sd_ok:
            return
        d = self.data
        what = "mean and sd" if not mean_ok else "sd"
        warnings.warn(
            f"the posterior {what} of tau (and of theta_new{'' if self.beta_prior.proper else ' and the coefficients'}) "
            f"do not exist: the posterior of tau decays like tau^-{self.tail_exponent:g} (J = {d.J}, p = {d.p}, "
            f"tau prior {self.tau_prior.spec}); those cells are left empty (NaN). Quantiles and intervals are exact. "
            "Use a proper tau prior (e.g. halfnormal or halfcauchy) or more studies to get them.",
            MomentWarning, stacklevel=4,
        )

    def _kind_of(self, parameter: str) -> tuple[str, int]:
        d = self.data
        if parameter == "tau":
            return "tau", 0
        if parameter == "theta_new":
            return "theta_new", 0
        if parameter == "mu" and d.intercept_only:
            return "beta", 0
        for kind, names in (("beta", self.coef_param_names),
                            ("theta", layout.theta_parameters(d, "theta")),
                            ("y_pred", layout.theta_parameters(d, "y_pred"))):
            if parameter in names:
                return kind, names.index(parameter)
        raise KeyError(f"unknown parameter {parameter!r}; known: tau, {', '.join(self.coef_param_names)}, "
                       "theta[LABEL], theta_new, y_pred[LABEL]")

    def _row_mixture(self, parameter: str):
        kind, r = self._kind_of(parameter)
        keep = self.weights > 0
        cond = B.Conditional(self.cond.log_post[keep], self.cond.beta_hat[keep], self.cond.beta_cov[keep])
        m, s = self._group_moments(kind, self.tau_nodes[keep], cond, [r] if kind != "theta_new" else slice(None))
        return self.weights[keep], m, s

    def _mixture_at(self, parameter: str, x: np.ndarray, fn) -> np.ndarray:
        """``fn`` (B.mixture_cdf or B.mixture_pdf) of one parameter's mixture at the finite x, in chunks."""
        w, m, s = self._row_mixture(parameter)
        flat = x.ravel()
        out = np.zeros(flat.shape)
        idx = np.flatnonzero(np.isfinite(flat))
        for sl in B.chunks(idx.size, w.size):
            pts = flat[idx[sl]]
            out[idx[sl]] = fn(pts, w, np.broadcast_to(m, (m.shape[0], pts.size)),
                              np.broadcast_to(s, (s.shape[0], pts.size)))
        return out

    def cdf(self, parameter: str, x: ArrayLike) -> np.ndarray:
        """Exact posterior CDF of one scalar parameter (flat name) at the points x (+-inf allowed;
        NaN raises :class:`metapool.errors.InputError`)."""
        x = K.points("x", x)
        if self._kind_of(parameter)[0] == "tau":
            return self.tau_cdf(x)
        flat = x.ravel()
        out = self._mixture_at(parameter, x, B.mixture_cdf)
        out = np.clip(np.where(flat == np.inf, 1.0, np.where(flat == -np.inf, 0.0, out)), 0.0, 1.0)
        return out.reshape(x.shape)

    def pdf(self, parameter: str, x: ArrayLike) -> np.ndarray:
        """Exact posterior density of one scalar parameter (flat name) at the points x (shape of x).

        Notes
        -----
        ``tau_pdf`` for tau; otherwise the normal mixture over the quadrature nodes,
        p(x | y) = sum_k w_k N(x | m_k, s_k^2), with the conditional mean m_k and sd s_k of the
        parameter given tau_k (the same mixture as :meth:`cdf`). Used by
        :func:`metapool.validation.compare` for the Monte Carlo error of a quantile estimate.
        """
        shape = np.shape(x)
        x = K.points("x", x)
        if self._kind_of(parameter)[0] == "tau":
            return np.asarray(self.tau_pdf(x), dtype=float).reshape(shape)
        return self._mixture_at(parameter, x, B.mixture_pdf).reshape(shape)

    def quantile(self, parameter: str, q: ArrayLike) -> np.ndarray:
        """Exact posterior quantiles of one scalar parameter.

        Probabilities must lie in [0, 1] (else :class:`metapool.errors.InputError`); 0 and 1 give
        the ends of the support: 0 and the prior's upper end (inf unless bounded) for tau,
        -inf and inf for the others.
        """
        qarr = K.probabilities("q", q)
        if self._kind_of(parameter)[0] == "tau":
            return self.tau_quantile(qarr)
        w, m, s = self._row_mixture(parameter)
        qs = np.atleast_1d(qarr)
        out = np.array([-np.inf if qq == 0 else np.inf if qq == 1 else B.mixture_quantile(float(qq), w, m, s)[0]
                        for qq in qs.ravel()]).reshape(qs.shape)
        return out if np.ndim(q) else out[0]

    def mean(self, parameter: str) -> float:
        """Exact posterior mean of one scalar parameter (NaN where it does not exist)."""
        return float(self._moments_of(parameter)[0])

    def sd(self, parameter: str) -> float:
        """Exact posterior standard deviation of one scalar parameter (NaN where it does not exist)."""
        return float(self._moments_of(parameter)[1])

    def _moments_of(self, parameter: str) -> tuple[float, float]:
        kind, _ = self._kind_of(parameter)
        if kind == "tau":
            return self._tau_moments()
        w, m, s = self._row_mixture(parameter)
        mean_ok, sd_ok = self._exists(kind)
        ref = m[np.argmax(w), 0]                   # shift before summing: no rounding of a large offset
        mu = float(w @ (m[:, 0] - ref) + ref)
        sd = float(np.sqrt(w @ (s[:, 0] ** 2 + (m[:, 0] - mu) ** 2)))
        return (mu if mean_ok else np.nan), (sd if sd_ok else np.nan)

    # ----------------------------------------------------------- predictions over covariates
    def predict(self, newdata, quantiles: Sequence[float] | None = None,
                prob: float = layout.DEFAULT_PROB) -> pd.DataFrame:
        """Exact posterior of x'beta (credible interval) and of a new study's theta_new (prediction
        interval) for every row of ``newdata``: see :func:`metapool.analytic.predict.predict`.

        Parameters
        ----------
        newdata : pandas.DataFrame or array_like
            Raw covariate values, one row per new study (encoded by the fit's formula; category
            levels checked), or a ``(G, p)`` array of design rows.
        quantiles : sequence of float, optional
        prob : float, default 0.95

        Returns
        -------
        pandas.DataFrame
            Index ``(row, parameter)`` with parameters ``x'beta`` and ``theta_new``; the summary
            columns.
        """
        from metapool.analytic.predict import predict

        return predict(self, newdata, quantiles=quantiles, prob=prob)

    # ----------------------------------------------------------- draws
    def sample(self, draws: int = 1000, chains: int = 4, seed: int | np.random.Generator | None = None,
               predictive: bool = True, threads: int | None = None, log_likelihood: str = "marginal",
               prior: bool = False):
        """Independent posterior draws as an ArviZ DataTree laid out like the PyMC engine's.

        Parameters
        ----------
        draws : int
            Draws per chain (as in PyMC).
        chains : int
            Number of chains (independent here; kept for layout and diagnostics).
        seed : int or numpy.random.Generator, optional
            Seed of the random number generator.
        predictive : bool
            Also draw ``posterior_predictive`` y and compute ``log_likelihood`` (default). False
            gives only the original analysis's job (tau, mu / beta, theta, theta_new), faster;
            theta is the same either way.
        threads : int, optional
            Threads that fill theta (and y_rep) segment by segment (default: the ``threads`` the
            posterior was fitted with; jobs under 131,072 draw x study cells then run on one).
            The draws do not depend on it.
        log_likelihood : {"marginal", "conditional"}
            What ``log_likelihood["y"]`` holds: the study-level log N(y_j | x_j'beta, s_j^2 +
            tau^2) with theta_j integrated out (default; the likelihood of leaving one study
            out), or log N(y_j | theta_j, s_j^2). Recorded in the group's ``likelihood`` attr.
        prior : bool, default False
            Also add the ``log_prior`` group (log p(tau) + log p(beta) per draw, for ArviZ's
            ``psense``) and, when both priors are proper, the ``prior`` group (as many prior
            draws, for prior-posterior plots); seeded from ``seed``. Off by default because it
            doubles the work of the draws; the NUTS engine adds both by default.

        Returns
        -------
        xarray.DataTree
            Groups ``posterior`` (tau; mu or beta[coef]; theta[study]; theta_new),
            ``posterior_predictive`` (y), ``log_likelihood`` (y), ``observed_data`` (y),
            ``constant_data`` (se, X).

        Notes
        -----
        tau is drawn by inverting its CDF, linearly interpolated inside fine cells of each
        panel (never restricted to quadrature nodes); then beta | tau ~ N(A^-1 b, A^-1),
        theta_j | beta, tau ~ N(w_j y_j + (1 - w_j) x_j'beta, w_j s_j^2), theta_new ~
        N(x0'beta, tau^2) and y_rep_j ~ N(theta_j, s_j^2).

        Random streams: the seed's stream gives tau, beta's and theta_new's normals; each segment
        of 1024 draws gets its own stream (an SFC64 generator seeded from a SeedSequence spawned
        from the seed's) for theta's and then y_rep's normals, which lets segments run in
        parallel with reproducible results.
        """
        from metapool.analytic._draws import draw

        draws, chains = K.positive_int("draws", draws), K.positive_int("chains", chains)
        K.seed(seed)
        T.check_threads(threads)
        C.memory_for_draws(draws, chains, self.data.J, self.data.p, bool(predictive))
        rng = np.random.default_rng(seed)       # the same draws as from the seed itself
        dt = draw(self, draws, chains, rng, predictive, threads, log_likelihood=log_likelihood)
        if prior:
            from metapool.prior_groups import add_prior_groups

            # The next stream spawned from the seed's, after the draws' segment streams: independent
            # of every posterior draw (the first spawned child was segment 0's own seed).
            try:
                prior_rng = rng.spawn(1)[0]
            except (AttributeError, NotImplementedError, TypeError):  # no SeedSequence to spawn from
                prior_rng = np.random.default_rng(rng.integers(2**63, size=4))
            dt = add_prior_groups(dt, self.spec, seed=prior_rng)
        return dt

    def inverse_cdf_table(self, per_panel: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """(F, tau) table for inverse-CDF sampling: the CDF interpolant at fine points of every panel."""
        F, x = self._cdf_table if per_panel == 64 else self._make_cdf_table(per_panel)
        return F, self._from_x(x)

    @functools.cached_property
    def _static_groups(self):
        """observed_data / constant_data groups and coordinates shared by every sample() call."""
        from metapool.analytic._draws import static_groups

        return static_groups(self)

    @functools.cached_property
    def _cdf_table(self) -> tuple[np.ndarray, np.ndarray]:
        return self._make_cdf_table(64)

    def _make_cdf_table(self, per_panel: int) -> tuple[np.ndarray, np.ndarray]:
        """(F, x) at per_panel evenly spaced points of every panel, in the quadrature coordinate."""
        e = self.rule.edges
        u = np.linspace(-1.0, 1.0, per_panel + 1)[:-1]
        F = self._cum[:-1, None] + np.polynomial.legendre.legval(u, self._cdf_coef.T, tensor=True)
        x = e[:-1, None] + (u[None, :] + 1.0) * 0.5 * (e[1:] - e[:-1])[:, None]
        F = np.append(F.ravel(), 1.0)
        x = np.append(x.ravel(), e[-1])
        if self._cum[0] > 0:             # the closed-form tail: from tau = 0 up to the first edge
            F, x = np.concatenate([[0.0], F]), np.concatenate([[-np.inf], x])
        F = np.maximum.accumulate(np.clip(F, 0.0, 1.0))
        F[0] = 0.0
        return F, x

    def __repr__(self) -> str:
        return (f"ExactPosterior({self.data!r}, tau_prior={self.tau_prior.spec!r}, "
                f"beta_prior={self.beta_prior.spec!r}, nodes={self.tau_nodes.size}, "
                f"error_estimate={self.error_estimate:.2g})")


# --------------------------------------------------------------------------- fitting
class Problem(NamedTuple):
    """Data, bound priors and the per-dataset quantities every evaluation at tau reuses."""

    data: MetaData
    tau_prior: object
    beta_prior: object
    prepared: B.Prepared
    threads: int = 1            # for the large (nodes x studies) loops and the draws
    representative: np.ndarray | None = None   # _representative_rows(data), found once


def _problem(data: MetaData, tau_prior, beta_prior, threads: int = 1) -> Problem:
    p = data.p
    sd0 = None
    if beta_prior.proper:   # the sds themselves: 1 / sd^2 overflows for sds below 1e-154
        sd0 = np.broadcast_to(np.asarray(beta_prior.sd, dtype=float), (p,)).copy()
    with np.errstate(over="ignore", divide="ignore"):
        prec0 = beta_prior.precision(p)
    prep = B.prepare(data.y, data.variance, data.X, prec0, beta_prior.mean(p), sd0=sd0)
    return Problem(data, tau_prior, beta_prior, prep, threads, _representative_rows(data))


def _conditional(tau, prob: Problem) -> B.Conditional:
    d = prob.data
    pr = prob.prepared
    return B.conditional(tau, d.y, d.variance, d.X, pr.prec0, pr.mean0_c + pr.beta_ref, prepared=pr,
                         threads=prob.threads)


def _log_post_tau(tau, prob: Problem) -> np.ndarray:
    """Unnormalised log p(tau | y) (density in tau)."""
    with np.errstate(divide="ignore"):
        return _conditional(tau, prob).log_post + prob.tau_prior.logpdf(np.asarray(tau, float))


def check_proper(data: MetaData, tau_prior=None, beta_prior=None) -> float:
    """Raise InputError if the posterior is improper; return the tail exponent of p(tau | y).

    Parameters
    ----------
    data : MetaData
    tau_prior, beta_prior : prior object or spec string, optional
        Defaults: flat on tau >= 0 and flat on every coefficient.

    Returns
    -------
    float
        k such that p(tau | y) ~ tau^-k as tau -> infinity (inf for light or bounded tails).

    Notes
    -----
    The rule lives in :meth:`metapool.spec.ModelSpec.check_proper`: with a flat tau prior and
    flat coefficients, p(tau | y) ~ tau^-(J - p), proper iff J - p >= 2 (docs/MATH.md, 'Tail').
    """
    return model_spec(data, tau_prior, beta_prior).tail_exponent


def _logf_log(x: np.ndarray, prob: Problem) -> np.ndarray:
    """log density of x = log tau: log p(tau | y) + log tau."""
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):   # far outside the posterior: -inf or nan, handled
        out = _log_post_tau(np.exp(x), prob) + x
    return np.where(np.isnan(out), -np.inf, out)


def _find_domain(prob: Problem, m_right: int) -> tuple[float, float, float, float]:
    """Interval of x = log tau holding all but ~e^-46 of every integrand, the posterior scale and mode in x."""
    data, tau_prior = prob.data, prob.tau_prior
    f = lambda x: _logf_log(x, prob)  # noqa: E731
    upper_x = math.log(tau_prior.upper) if math.isfinite(tau_prior.upper) else math.inf
    if upper_x <= X_RANGE[0]:
        raise InputError(
            f"the {tau_prior.spec} prior puts tau below {math.exp(X_RANGE[0]):.1e}, under the smallest "
            "normal double precision number; use a larger upper bound (or a flat tau prior) or rescale "
            "effects and standard errors")
    if upper_x >= X_RANGE[1]:
        upper_x = math.inf      # beyond the range: the posterior must end inside it (checked below)
    xs = _scan_points(prob, upper_x)
    fs = f(xs)
    if not np.any(np.isfinite(fs)):
        raise InputError(
            f"the posterior density of tau is zero or not finite everywhere in {math.exp(X_RANGE[0]):.1e} < tau "
            f"< {math.exp(X_RANGE[1]):.1e} (tau prior {tau_prior.spec}, beta prior {prob.beta_prior.spec}): "
            "the prior's scale and the data's are too far apart for double precision; rescale the "
            "effects and standard errors together with the priors' scales")
    i = int(np.argmax(np.where(np.isfinite(fs), fs, -np.inf)))
    a, b = xs[max(i - 1, 0)], xs[min(i + 1, xs.size - 1)]
    # Zoom on the mode with batches of points (one evaluation per round, cheap for small J).
    xm, fm = float(xs[i]), float(fs[i])
    # Each round narrows the bracket 16-fold (33 points) or 4-fold (9); an evaluation costs
    # O(points x J p), so small designs take fewer, wider rounds and large ones cheaper rounds.
    n_zoom = 33 if data.J * data.p <= 20_000 else 9
    for _ in range(6):
        grid = np.linspace(a, b, n_zoom)
        fg = f(grid)
        j = int(np.argmax(fg))       # _logf_log maps NaN to -inf
        if fg[j] >= fm:
            xm, fm = float(grid[j]), float(fg[j])
        step = grid[1] - grid[0]
        a, b = max(xm - step, grid[0]), min(xm + step, grid[-1])
        # Stop once the bracket is well inside the posterior scale (curvature checked below).
        if j not in (0, n_zoom - 1) and 0 < fg[j] - min(fg[j - 1], fg[j + 1]) < 1e-3:
            break
    # Curvature scale from second differences at three step sizes, in one evaluation.
    hs = np.array([1e-4, 1e-2, 0.3])
    # Ordered [xm - 0.3, xm - 1e-2, xm - 1e-4, xm, xm + 1e-4, xm + 1e-2, xm + 0.3]: the points at
    # +-hs[k] are fv[2 - k] and fv[4 + k].
    pts = np.concatenate([xm - hs[::-1], [xm], xm + hs])
    if math.isfinite(upper_x):
        pts = np.minimum(pts, upper_x)
    fv = f(pts)
    sigma = 1.0
    for k in range(hs.size - 1, -1, -1):          # the largest step whose sigma it resolves
        with np.errstate(invalid="ignore", over="ignore"):
            d2 = (fv[2 - k] - 2 * fv[3] + fv[4 + k]) / hs[k] ** 2
        if d2 < 0 and np.isfinite(d2):
            sigma = 1.0 / math.sqrt(-d2)
            if hs[k] <= sigma:
                break
    sigma = min(max(sigma, 1e-8), 5.0)

    # Walk out from the mode in geometric steps x_k = xm +- sigma (1.5^k - 1) / 0.5, both sides in
    # one evaluation per batch, until the integrand (times e^{moment x} on the right) falls
    # TAIL_NATS below its running maximum, within X_RANGE.
    ends: dict[int, float] = {}
    best = {-1: fm, +1: fm + m_right * xm}
    for ks in (np.arange(1, 13), np.arange(13, 25), np.arange(25, 61)):
        xs_dir = {}
        for direction in (-1, +1):
            if direction in ends:
                continue
            x = xm + direction * sigma * (1.5 ** ks - 1.0) / 0.5
            edge = X_RANGE[0] if direction < 0 else X_RANGE[1]
            beyond = np.any(x < X_RANGE[0]) if direction < 0 else np.any(x > X_RANGE[1])
            x = x[(x >= X_RANGE[0]) & (x <= X_RANGE[1])]
            if beyond and direction * (edge - xm) > 0:   # the walk would leave the range: try its end
                x = np.append(x, edge)
            if direction > 0 and math.isfinite(upper_x):
                x = x[x < upper_x]
            if x.size == 0:
                ends[direction] = upper_x if direction > 0 and math.isfinite(upper_x) else math.nan
                continue
            xs_dir[direction] = x
        if not xs_dir:
            break
        fv = f(np.concatenate(list(xs_dir.values())))
        start = 0
        for direction, x in xs_dir.items():
            g = fv[start: start + x.size] + (m_right * x if direction > 0 else 0.0)
            start += x.size
            run = np.maximum.accumulate(np.maximum(g, best[direction]))
            below = np.flatnonzero(g < run - TAIL_NATS)
            if below.size:
                ends[direction] = float(x[below[0]])
            else:
                best[direction] = float(run[-1])
    if not math.isfinite(ends.get(+1, math.nan)):
        if math.isfinite(upper_x):
            ends[+1] = upper_x
        else:
            raise InputError(
                f"the posterior of tau (tau prior {tau_prior.spec}, beta prior {prob.beta_prior.spec}) still holds "
                f"mass near tau = {math.exp(X_RANGE[1]):.2g}, where tau^2 overflows double precision: either it is "
                "nearly improper (use a proper tau prior with a finite scale, a proper coefficient prior of "
                "moderate sd, or more studies), or a coefficient prior's mean is that far from the data, or the "
                "effects and standard errors are too large (divide them, and the priors' scales, by a common "
                "factor such as 1e100)")
    if not math.isfinite(ends.get(-1, math.nan)):
        # Below 2.2e-308, tau^2 is 0 next to every s_j^2 (>= 1e-300): the likelihood is its tau -> 0
        # limit, so a prior density constant near 0 makes the integrand C e^x there (_left_tail).
        ends[-1] = X_RANGE[0]
        t0 = math.exp(X_RANGE[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = tau_prior.logpdf(np.array([t0, t0 * 1e-6]))
        if not (np.all(np.isfinite(lp)) and abs(lp[0] - lp[1]) < 1e-9):
            raise InputError(
                f"the {tau_prior.spec} prior puts the posterior of tau below {t0:.1e}, under the smallest normal "
                "double precision number, where its density is not constant: use a tau prior with a larger "
                "scale, or rescale the effects, standard errors and the priors' scales together")
    return ends[-1], ends[+1], sigma, xm


def _scan_points(prob: Problem, upper_x: float) -> np.ndarray:
    """Coarse x = log tau points that cannot miss the posterior mode: every 4 around the data's scale,
    around the mode of the tau prior's own log-tau density, and between the two.

    The prior's mode is found on a grid of the whole range from its density alone (no data: cheap);
    the posterior mode lies between the prior's and the likelihood's scales.
    """
    data, tau_prior = prob.data, prob.tau_prior
    ref = math.log(max(float(np.sqrt(np.mean(data.variance))), float(np.std(data.y)), 1e-300))
    grid = np.arange(X_RANGE[0], min(X_RANGE[1], upper_x), 1.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g = tau_prior.logpdf(np.exp(grid)) + grid
    pm = float(grid[int(np.argmax(np.where(np.isfinite(g), g, -np.inf)))]) if np.any(np.isfinite(g)) else ref
    lo, hi = min(ref, pm) - 40.0, max(ref, pm) + 40.5
    xs = np.arange(lo, hi, 4.0)
    xs = xs[(xs >= X_RANGE[0]) & (xs <= X_RANGE[1])]
    if math.isfinite(upper_x):
        xs = np.append(xs[xs < upper_x], upper_x)
    if xs.size == 0:
        xs = np.array([X_RANGE[0]])
    return xs


def graded_edges(lo: float, hi: float, centre: float, sigma: float, core: float = 2.5,
                 growth: float = 1.6) -> np.ndarray:
    """Panel edges: width ``core * sigma`` within 3 sigma of the mode, growing geometrically beyond.

    The log-tau integrand is near-Gaussian around its mode and decays exponentially (like e^x or
    e^-(k-1)x) in the tails, where a 12-point Gauss rule is accurate on much wider panels.
    """
    def side(length: float) -> list[float]:
        out, pos, w = [], 0.0, core * sigma
        while pos < length:
            pos = min(length, pos + w)
            out.append(pos)
            if pos > 3.0 * sigma:
                w *= growth
        return out

    right = [centre + d for d in side(hi - centre)] if hi > centre else []
    left = [centre - d for d in side(centre - lo)] if centre > lo else []
    return np.unique(np.array(left[::-1] + [centre] + right))


def _representative_rows(data: MetaData, limit: int = 256) -> np.ndarray:
    """Studies whose summaries stand in for all J in convergence checks when J is large.

    theta_j's conditional moments depend on j only through (y_j, s_j, x_j), smoothly; the rows at
    evenly spaced ranks of s_j plus the largest standardised deviations cover that range.
    """
    if data.J <= limit:
        return np.arange(data.J)
    ranks = np.linspace(0, data.J - 1, limit // 2).astype(int)
    by_se = np.argpartition(data.se, ranks)[ranks]
    z = np.abs(data.y - np.median(data.y)) / data.se
    by_dev = np.argpartition(z, data.J - limit // 2)[-(limit // 2):]
    return np.unique(np.concatenate([by_se, by_dev]))


class _Probe(NamedTuple):
    """Means, sds and CDF values of representative rows under the full rule (see _mixture_probe)."""

    mean: np.ndarray
    sd: np.ndarray
    points: np.ndarray      # (3, R) x = mean + (-2, 0, 2) sd
    cdf: np.ndarray         # (3, R) P(g <= x)
    pdf: np.ndarray         # (3, R) density at x


def _mixture_probe(post: ExactPosterior, kind: str, tau, w, cond, rows, ref: _Probe | None = None):
    """The reference summaries of a group's representative rows (``ref`` None), or the largest
    difference of a candidate rule's from them, each relative to the row's posterior sd.

    Notes
    -----
    A CDF difference dF at x moves the quantile there by about dF / f(x); in units of the sd that
    is dF / (f(x) sd). The points mean and mean +- 2 sd cover the centre and the reported tails.
    """
    mean, sd = post._group_mean_sd(kind, tau, w, cond, rows)
    idx = np.arange(post._group_size(kind))[slice(None) if rows is None else rows]
    m, s = post._group_moments(kind, tau, cond, idx if kind != "theta_new" else slice(None))
    scale = np.maximum(sd if ref is None else ref.sd, np.finfo(float).tiny)
    if ref is None:
        pts = (mean + np.array([-2.0, 0.0, 2.0])[:, None] * scale)
    else:
        pts = ref.points
    cdf = np.array([B.mixture_cdf(x, w, m, s) for x in pts])
    if ref is None:
        pdf = np.array([B.mixture_pdf(x, w, m, s) for x in pts])
        return _Probe(mean, sd, pts, cdf, pdf)
    with np.errstate(invalid="ignore", divide="ignore"):
        moments = max(np.max(np.abs(mean - ref.mean) / scale), np.max(np.abs(sd - ref.sd) / scale))
        dens = np.maximum(ref.pdf * scale, np.finfo(float).tiny)
        quant = np.max(np.abs(cdf - ref.cdf) / dens)
    err = max(moments, quant)
    return err if np.isfinite(err) else np.inf


def _summary_keys(post: ExactPosterior) -> tuple[np.ndarray, np.ndarray]:
    """Numbers whose change between refinements decides convergence, with their scales."""
    vals, scales = [], []
    tq = post.tau_quantile(np.array([0.025, 0.25, 0.5, 0.75, 0.975]))
    tscale = max(tq[-1] - tq[0], np.finfo(float).tiny)
    vals += list(tq)
    scales += [tscale] * 5
    tm, ts = post._tau_moments()
    for v in (tm, ts):
        if np.isfinite(v):
            vals.append(v)
            scales.append(max(abs(v), tscale))
    keep = post.weights > 0
    cond = B.Conditional(post.cond.log_post[keep], post.cond.beta_hat[keep], post.cond.beta_cov[keep])
    w = post.weights[keep]
    for kind in ("beta", "theta", "theta_new"):
        rows = post.problem.representative if kind == "theta" else None
        m, s = post._group_mean_sd(kind, post.tau_nodes[keep], w, cond, rows)
        mean_ok, sd_ok = post._exists(kind)
        sc = np.maximum(s, np.finfo(float).tiny) if sd_ok else np.maximum(np.abs(m), 1.0)
        if mean_ok:
            vals += list(m)
            scales += list(sc)
        if sd_ok:
            vals += list(s)
            scales += list(sc)
    return np.asarray(vals), np.asarray(scales)


def _assemble(prob: Problem, spec: ModelSpec, rtol, coordinate, rule, err, levels) -> ExactPosterior:
    data, tau_prior, beta_prior = prob.data, prob.tau_prior, prob.beta_prior
    xs = rule.x.ravel()
    tau = np.exp(xs) if coordinate == "log" else xs
    tail = coordinate == "log" and rule.edges[0] <= X_RANGE[0]
    if tail:                  # one more node: the closed-form tail below the first edge (_left_tail)
        tau = np.append(tau, math.exp(rule.edges[0]))
    cond = _conditional(tau, prob)
    with np.errstate(divide="ignore"):
        lp_all = cond.log_post + tau_prior.logpdf(tau) + (np.log(tau) if coordinate == "log" else 0.0)
    n_rule = xs.size
    lp = lp_all[:n_rule].reshape(rule.x.shape)
    logw = np.log(rule.w) + lp
    logw_all = np.append(logw.ravel(), lp_all[n_rule:])  # the tail's weight: its integral, f(e0)
    log_norm = B.log_sum_exp(logw_all)
    dens = np.exp(lp - log_norm)
    weights = np.exp(logw_all - log_norm)
    coef = B.panel_cdf_coefficients(dens, rule)
    masses = (dens * rule.w).sum(axis=1)
    below = float(weights[n_rule]) if tail else 0.0
    cum = np.concatenate([[below], below + np.cumsum(masses)])
    cum /= cum[-1]
    return ExactPosterior(
        spec=spec, data=data, tau_prior=tau_prior, beta_prior=beta_prior, problem=prob, rtol=rtol,
        coordinate=coordinate, rule=rule, logf=lp, log_norm=log_norm, weights=weights, tau_nodes=tau, cond=cond,
        x_new=np.asarray(spec.x_new, dtype=float), tail_exponent=spec.tail_exponent, error_estimate=err,
        levels=levels, _cdf_coef=coef, _cum=cum,
    )


def _left_tail() -> None:
    """Documentation anchor: the mass of tau below exp(X_RANGE[0]) = 2.5e-308.

    Notes
    -----
    There tau^2 < 6e-616 is 0 next to every s_j^2 (>= 1e-300), so p(y | tau) = p(y | 0); when the
    prior density is constant near 0 (checked in _find_domain; true for every prior with a scale
    above ~1e-300), the integrand in x = log tau is f(x) = f(e0) e^(x - e0) for x < e0, whose
    integral is f(e0): one extra node at tau = e^e0 carries that weight (its conditionals are the
    tau -> 0 limits), the CDF below e0 is c0 e^(x - e0) and its quantiles invert that.
    """


def fit(
    data: MetaData | ModelSpec,
    tau_prior=None,
    beta_prior=None,
    *,
    rtol: float = 1e-8,
    grid: ArrayLike | None = None,
    x_new: ArrayLike | Mapping[str, float] | None = None,
    nodes_per_panel: int = 12,
    max_levels: int = 8,
    threads: int | None = None,
) -> ExactPosterior:
    """Exact posterior of the normal-normal hierarchical model by quadrature over tau.

    Parameters
    ----------
    data : MetaData or ModelSpec
        Effects, standard errors and design; or a whole model description
        (:class:`metapool.spec.ModelSpec`, then leave out the priors and ``x_new``).
    tau_prior, beta_prior : prior object or spec string, optional
        Default: flat on tau >= 0 and flat on mu / every beta (the original model).
    rtol : float
        Target tolerance: panels are bisected until every key summary (tau quantiles and moments,
        means and sds of beta, theta_j, theta_new) changes by less than rtol times its scale (the
        larger of its magnitude and the posterior sd, for locations).
    grid : array_like, optional
        A user grid of tau values used as panel edges (each panel still gets Gauss nodes).
        Never needed; a warning is raised if it truncates the posterior.
    x_new : array_like or dict, optional
        Covariates of a new study for ``theta_new``: a dict of covariate values or a design row
        (default: the mean row of X).
    nodes_per_panel : int
        Gauss-Legendre nodes per panel.
    max_levels : int
        Maximum number of global bisections.
    threads : int, optional
        Threads for the large loops (nodes x studies, rows of the summary, the draws), which
        run in parallel only when the work is large (e.g. a million studies, 10,000 draws of
        79 studies). Default: the CPUs this process may use, at most 8. Results do not depend
        on it.

    Returns
    -------
    ExactPosterior

    Notes
    -----
    log p(tau | y) = log p(tau) - 1/2 log|A| - 1/2 sum_j log v_j - 1/2 Q(tau), with
    v_j = s_j^2 + tau^2, A = X'WX + P0 and Q the weighted residual sum of squares at
    beta_hat(tau) (docs/MATH.md). The integral over tau is taken in x = log tau, where the
    integrand decays exponentially at both ends whenever the posterior (and the requested moment)
    exists. The domain is followed until every integrand falls e^-46 below its peak, divided into
    panels of about two posterior scales with Gauss-Legendre nodes, and bisected globally until the
    summaries converge.

    References
    ----------
    Gelman et al. (2013), Bayesian Data Analysis, 3rd ed., sec. 5.4-5.5.
    Röver (2020), Bayesian random-effects meta-analysis using the bayesmeta R package,
    J. Stat. Softw. 93(6).
    """
    spec = model_spec(data, tau_prior, beta_prior, x_new=x_new)
    if not (0 < rtol < 1):
        raise InputError(f"rtol must be in (0, 1), got {rtol!r}")
    data, tp, bp, k = spec.data, spec.tau_prior, spec.beta_prior, spec.tail_exponent
    T.check_threads(threads)
    prob = _problem(data, tp, bp, T.default_threads() if threads is None else int(threads))
    m_right = 2 if k > 3 else (1 if k > 2 else 0)

    if grid is not None:
        coordinate = "tau"
        edges = np.unique(np.asarray(grid, dtype=float))
        if edges.size < 2 or edges[0] < 0 or not np.all(np.isfinite(edges)):
            raise InputError(f"grid needs at least two distinct finite tau values >= 0, got {grid!r}")
        rule = B.make_rule(edges, nodes_per_panel)
    else:
        coordinate = "log"
        lo, hi, sigma, xm = _find_domain(prob, m_right)
        # A node costs O(J p): for small designs start finer and usually skip a refinement round;
        # for large ones start coarse and refine only where needed.
        core = 1.25 if data.J * data.p <= 20_000 else 2.5
        rule = B.make_rule(graded_edges(lo, hi, xm, sigma, core=core), nodes_per_panel)

    post = _assemble(prob, spec, rtol, coordinate, rule, np.inf, 0)
    vals, scales = _summary_keys(post)
    err = np.inf
    for level in range(1, max_levels + 1):
        finer = _assemble(prob, spec, rtol, coordinate, B.bisect(post.rule), np.inf, level)
        new_vals, new_scales = _summary_keys(finer)
        err = _refinement_change(vals, new_vals, new_scales)
        post, vals = finer, new_vals
        if err < rtol:
            break
    else:
        warnings.warn(f"quadrature over tau did not reach rtol={rtol:g} after {max_levels} refinements "
                      f"(achieved {err:.2g})", RuntimeWarning, stacklevel=2)
    post = dataclasses.replace(post, error_estimate=err)
    if grid is not None:
        _warn_truncated_grid(post)
    return post


def _refinement_change(old: np.ndarray, new: np.ndarray, scales: np.ndarray) -> float:
    """Largest change of a key summary between two refinements, relative to its scale, beyond the
    rounding of the values themselves (16 units in the last place: a summary whose posterior sd
    is 1e-13 of its value cannot settle closer than that, and that is not quadrature error)."""
    rounding = 16.0 * np.finfo(float).eps * np.maximum(np.abs(old), np.abs(new))
    change = np.maximum(np.abs(new - old) - rounding, 0.0)
    return float(np.max(change / np.maximum(scales, np.finfo(float).tiny)))


def _warn_truncated_grid(post: ExactPosterior) -> None:
    e = post.rule.edges
    lp = _log_post_tau(np.array([e[0], e[-1]]), post.problem) - post.log_norm
    # Mass a density of that height would put beyond the grid over one grid width.
    width = e[-1] - e[0]
    beyond = np.exp(lp[1]) * width
    if beyond > post.rtol and e[-1] < post.tau_prior.upper:
        warnings.warn(f"the tau grid ends at {e[-1]:.4g} where the posterior density is still "
                      f"{np.exp(lp[1]):.3g}; the posterior is truncated there (about {beyond:.2g} of the mass "
                      "would lie beyond). Omit grid= to let metapool choose the domain.", RuntimeWarning,
                      stacklevel=3)
