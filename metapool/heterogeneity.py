"""Heterogeneity and the frequentist random-effects fit: Q, I^2, H^2, tau^2 estimators, Q_M, R^2.

Closed forms and one-dimensional root finding only (numpy, scipy, pandas, statsmodels); no
engine is imported. The model is the package's one (docs/MATH.md):
``y_j ~ N(x_j' beta, s_j^2 + tau^2)`` after integrating out theta_j.

Conventions (as metafor prints them, Viechtbauer 2010): I^2, R^2 are fractions in [0, 1]
(0.9222 is metafor's ``92.22%``); tau^2 estimates are truncated at 0; confidence and
prediction intervals use the normal quantile (metafor's default ``test="z"``).

The entry point is :func:`heterogeneity`; the pieces (:func:`cochran_q`, :func:`estimate_tau2`,
:func:`q_profile_ci`, :func:`i_squared`, :func:`pooled_estimate`, :func:`prediction_interval`)
are public for callers that need one of them (the exact engine's posterior of I^2 is
``i_squared(tau_draws_or_nodes, data)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, stats
from statsmodels.stats import meta_analysis as sm_meta

from metapool.data import MetaData
from metapool.errors import InputError

__all__ = [
    "METHODS", "QTest", "Tau2Estimate", "Coefficients", "PredictionInterval", "Heterogeneity",
    "cochran_q", "s2_typical", "i_squared", "h_squared", "estimate_tau2", "q_profile_ci",
    "log_likelihood", "pooled_estimate", "moderator_test", "prediction_interval", "heterogeneity",
]

METHODS = ("DL", "PM", "REML", "ML")
"""The tau^2 estimators: DerSimonian–Laird, Paule–Mandel, restricted and ordinary maximum likelihood."""

_RTOL = 4e-15  # relative tolerance of the 1-D root finders (a few ulps)


# ---------------------------------------------------------------------------- result types
class QTest(NamedTuple):
    """A chi-square test statistic with its degrees of freedom and upper-tail p-value."""

    q: float
    df: int
    pvalue: float


class Tau2Estimate(NamedTuple):
    """A tau^2 estimate with its standard error (as metafor computes it for the method)."""

    tau2: float
    se: float
    method: str


@dataclass(frozen=True)
class Coefficients:
    """Random-effects (GLS) coefficients at a given tau^2 with Wald z statistics and intervals.

    Attributes
    ----------
    names : tuple of str
        Coefficient names (``MetaData.coef_names``).
    estimate, se, z, pvalue, ci_low, ci_high : ndarray, shape (p,)
        Estimates ``(X'WX)^-1 X'Wy``, standard errors from ``(X'WX)^-1``, ``z = est / se``,
        two-sided normal p-values and normal-quantile confidence limits.
    cov : ndarray, shape (p, p)
        ``(X'WX)^-1`` with ``W = diag(1 / (s_j^2 + tau^2))``.
    level : float
        Confidence level of the intervals.
    """

    names: tuple[str, ...]
    estimate: np.ndarray
    se: np.ndarray
    z: np.ndarray
    pvalue: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    cov: np.ndarray
    level: float

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient: ``estimate, se, z, pvalue, ci_low, ci_high``."""
        return pd.DataFrame(
            {"estimate": self.estimate, "se": self.se, "z": self.z, "pvalue": self.pvalue,
             "ci_low": self.ci_low, "ci_high": self.ci_high},
            index=pd.Index(list(self.names), name="coef"),
        )


class PredictionInterval(NamedTuple):
    """Predicted mean effect at covariates ``x0``, its confidence interval and the prediction
    interval for the true effect of a new study (metafor's ``predict``: ``pi.lb``, ``pi.ub``)."""

    x0: np.ndarray
    mean: float
    se: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    level: float


@dataclass(frozen=True)
class Heterogeneity:
    """Everything :func:`heterogeneity` computes for one data set and one tau^2 estimator.

    Attributes
    ----------
    method : str
        The tau^2 estimator (one of :data:`METHODS`).
    J, p : int
        Studies and coefficients.
    q, df, q_pvalue : float, int, float
        Cochran's Q (residual Q_E with a design), its degrees of freedom ``J - p`` and p-value.
    s2_typical : float
        Typical within-study variance (:func:`s2_typical`).
    tau2, tau2_se : float
        The estimate of tau^2 and its standard error.
    tau2_ci : tuple of float
        Q-profile confidence interval for tau^2 (:func:`q_profile_ci`).
    tau : float
        ``sqrt(tau2)``; ``tau_ci`` its interval (square roots of ``tau2_ci``).
    i2, h2 : float
        I^2 = tau^2 / (tau^2 + s2_typical) (a fraction) and H^2 = 1 / (1 - I^2) at ``tau2``;
        ``i2_ci``, ``h2_ci`` the same transforms of ``tau2_ci`` (metafor's ``confint``).
    i2_q, h2_q : float
        Higgins & Thompson's Q-based statistics ``max(0, (Q - df) / Q)`` and ``Q / df``
        (equal to ``i2``, ``h2`` under DerSimonian–Laird without covariates).
    coefficients : Coefficients
        The random-effects estimate of mu (or beta) at ``tau2``.
    moderators : QTest or None
        Q_M, the Wald test of the non-intercept coefficients (``None`` without covariates).
    r2 : float or None
        max(0, (tau^2_0 - tau^2) / tau^2_0), tau^2_0 from the intercept-only fit with the same
        estimator; ``None`` without covariates or without an intercept column, ``nan`` when
        tau^2_0 = 0.
    tau2_intercept_only : float or None
        tau^2_0 used for ``r2``.
    prediction : PredictionInterval
        Prediction interval for the effect of a new study (at ``x_new``).
    level : float
        Level of every interval.
    """

    method: str
    J: int
    p: int
    q: float
    df: int
    q_pvalue: float
    s2_typical: float
    tau2: float
    tau2_se: float
    tau2_ci: tuple[float, float]
    tau: float
    tau_ci: tuple[float, float]
    i2: float
    i2_ci: tuple[float, float]
    h2: float
    h2_ci: tuple[float, float]
    i2_q: float
    h2_q: float
    coefficients: Coefficients
    moderators: QTest | None
    r2: float | None
    tau2_intercept_only: float | None
    prediction: PredictionInterval
    level: float

    def to_frame(self) -> pd.DataFrame:
        """The statistics as one ``value`` column indexed by ``statistic`` (for printing).

        Rows: ``Q, df, Q p-value, tau^2, SE(tau^2), tau^2 ci low/high, tau, I^2, I^2 ci low/high,
        H^2, H^2 ci low/high, s2 typical``; with covariates ``Q_M, Q_M df, Q_M p-value, R^2``;
        then the prediction (``mean, se, ci, pi``). Coefficients: ``coefficients.to_frame()``.
        """
        pct = f"{100 * self.level:g}%"
        rows: list[tuple[str, float]] = [
            ("k (studies)", self.J), ("Q" if self.p == 1 else "Q_E", self.q), ("df", self.df),
            ("Q p-value", self.q_pvalue), (f"tau^2 ({self.method})", self.tau2),
            ("SE(tau^2)", self.tau2_se), (f"tau^2 {pct} low (Q-profile)", self.tau2_ci[0]),
            (f"tau^2 {pct} high (Q-profile)", self.tau2_ci[1]), ("tau", self.tau),
            ("I^2", self.i2), (f"I^2 {pct} low", self.i2_ci[0]), (f"I^2 {pct} high", self.i2_ci[1]),
            ("H^2", self.h2), (f"H^2 {pct} low", self.h2_ci[0]), (f"H^2 {pct} high", self.h2_ci[1]),
            ("s2 typical", self.s2_typical),
        ]
        if self.moderators is not None:
            rows += [("Q_M", self.moderators.q), ("Q_M df", self.moderators.df),
                     ("Q_M p-value", self.moderators.pvalue)]
        if self.r2 is not None:
            rows.append(("R^2", self.r2))
        pr = self.prediction
        rows += [("prediction mean", pr.mean), ("prediction se", pr.se),
                 (f"prediction {pct} ci low", pr.ci_low), (f"prediction {pct} ci high", pr.ci_high),
                 (f"prediction {pct} pi low", pr.pi_low), (f"prediction {pct} pi high", pr.pi_high)]
        return pd.DataFrame({"value": [float(v) for _, v in rows]},
                            index=pd.Index([k for k, _ in rows], name="statistic"))


# ---------------------------------------------------------------------------- weighted least squares
class _Fit(NamedTuple):
    """GLS at one tau^2, through the QR factorisation of the whitened design."""

    w: np.ndarray        # 1 / (s^2 + tau^2)
    beta: np.ndarray     # (X'WX)^-1 X'Wy
    cov: np.ndarray      # (X'WX)^-1
    resid: np.ndarray    # whitened residuals e = sqrt(w) (y - X beta);  Q = e'e
    lev: np.ndarray      # leverages h_j = w_j x_j'(X'WX)^-1 x_j
    Qm: np.ndarray       # Q factor of sqrt(W) X, shape (J, p)
    logdet_a: float      # log |X'WX|

    @property
    def q(self) -> float:
        return float(self.resid @ self.resid)

    @property
    def tr_p(self) -> float:
        """tr P, P = W - W X (X'WX)^-1 X'W."""
        return float(self.w.sum() - self.w @ self.lev)

    @property
    def tr_pp(self) -> float:
        """tr(P P) = sum w^2 - 2 sum h w^2 + ||Q'WQ||_F^2, without forming the J x J matrix P."""
        qwq = self.Qm.T @ (self.w[:, None] * self.Qm)
        return float(self.w @ self.w - 2.0 * (self.lev * self.w) @ self.w + np.sum(qwq * qwq))

    @property
    def ypy2(self) -> float:
        """y' P P y = sum w e^2 (P y = sqrt(W) e)."""
        return float(self.w @ (self.resid * self.resid))


class _Std(NamedTuple):
    """The data in units of c = sqrt(median s_j^2): y / c, s^2 / c^2 (tau^2 / c^2 inside).

    Every internal computation runs here, where weights, their squares and tau^4 stay normal
    doubles for any data MetaData accepts; the public functions scale results back.
    """

    y: np.ndarray
    variance: np.ndarray
    X: np.ndarray
    intercept_only: bool
    c2: float

    J = property(lambda self: int(self.y.shape[0]))
    p = property(lambda self: int(self.X.shape[1]))


def _std(data: MetaData) -> _Std:
    c2 = float(np.median(data.variance))
    return _Std(data.y / np.sqrt(c2), data.variance / c2, data.X, data.intercept_only, c2)


def _gls(data: _Std, tau2: float) -> _Fit:
    w = 1.0 / (data.variance + tau2)
    sw = np.sqrt(w)
    Qm, R = np.linalg.qr(sw[:, None] * data.X)
    yw = sw * data.y
    qty = Qm.T @ yw
    beta = np.linalg.solve(R, qty)
    rinv = np.linalg.solve(R, np.eye(data.p))
    cov = rinv @ rinv.T
    resid = yw - Qm @ qty
    lev = np.einsum("ij,ij->i", Qm, Qm)
    logdet = 2.0 * float(np.sum(np.log(np.abs(np.diag(R)))))
    return _Fit(w, beta, cov, resid, lev, Qm, logdet)


def _check_data(data: Any, min_df: int = 1) -> MetaData:
    if not isinstance(data, MetaData):
        raise InputError(f"data must be a metapool.MetaData; got {type(data).__name__}")
    if data.J - data.p < min_df:
        raise InputError(
            f"data has J = {data.J} studies and p = {data.p} coefficients: heterogeneity needs "
            f"J - p >= {min_df} (Q has J - p degrees of freedom); add studies or drop covariates"
        )
    return data


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be strictly between 0 and 1 (e.g. 0.95); got {level!r}")
    return level


def _check_method(method: str) -> str:
    m = str(method).upper()
    if m not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    return m


# ---------------------------------------------------------------------------- Q, s2, I^2, H^2
def cochran_q(data: MetaData, tau2: float = 0.0) -> QTest:
    """Cochran's Q (the residual Q_E with a design) and its chi-square test on J - p df.

    Parameters
    ----------
    data : MetaData
    tau2 : float, default 0
        ``0`` gives Cochran's Q; a positive value gives the generalised Q(tau^2) that the
        Paule–Mandel estimator and the Q-profile interval invert.

    Returns
    -------
    QTest
        ``q``, ``df = J - p`` and the upper-tail chi-square p-value.

    Notes
    -----
    ``Q(tau^2) = sum_j w_j (y_j - x_j' beta_hat)^2`` with ``w_j = 1 / (s_j^2 + tau^2)`` and
    ``beta_hat = (X'WX)^-1 X'Wy``; under homogeneity (tau^2 = 0) ``Q ~ chi^2_{J-p}``.

    References
    ----------
    Cochran, W. G. (1954). The combination of estimates from different experiments.
    Biometrics 10, 101–129.
    """
    data = _check_data(data)
    sd = _std(data)
    q = _gls(sd, float(tau2) / sd.c2).q
    df = data.J - data.p
    return QTest(q, df, float(stats.chi2.sf(q, df)))


def s2_typical(data: MetaData) -> float:
    """Typical within-study variance of Higgins & Thompson (2002), as metafor generalises it.

    Returns
    -------
    float

    Notes
    -----
    ``s2_typ = (J - p) / tr P`` with ``P = W - W X (X'WX)^-1 X'W``, ``W = diag(1 / s_j^2)``.
    Without covariates this is ``(J - 1) sum w / ((sum w)^2 - sum w^2)``, ``w = 1 / s_j^2``.

    References
    ----------
    Higgins, J. P. T. & Thompson, S. G. (2002). Quantifying heterogeneity in a meta-analysis.
    Statistics in Medicine 21, 1539–1558.
    """
    data = _check_data(data)
    sd = _std(data)
    return sd.c2 * (data.J - data.p) / _gls(sd, 0.0).tr_p


def i_squared(tau: ArrayLike, data: MetaData) -> np.ndarray | float:
    """I^2 as a function of tau, vectorised: ``tau^2 / (tau^2 + s2_typical(data))``.

    Parameters
    ----------
    tau : array_like
        Values of tau >= 0 (an estimate, or posterior nodes or draws: the posterior of I^2 is
        this monotone transform of the posterior of tau).
    data : MetaData

    Returns
    -------
    ndarray or float
        Same shape as ``tau``; fractions in [0, 1).

    Notes
    -----
    ``I^2(tau) = tau^2 / (tau^2 + s2_typ)``; metafor's printed I^2 is this at its tau^2 estimate.

    References
    ----------
    Higgins, J. P. T. & Thompson, S. G. (2002). Statistics in Medicine 21, 1539–1558.
    """
    t2 = np.square(np.asarray(tau, dtype=float))
    out = t2 / (t2 + s2_typical(data))
    return out if out.ndim else float(out)


def h_squared(tau: ArrayLike, data: MetaData) -> np.ndarray | float:
    """H^2 as a function of tau, vectorised: ``1 / (1 - I^2) = (tau^2 + s2_typ) / s2_typ``.

    Parameters
    ----------
    tau : array_like
    data : MetaData

    Returns
    -------
    ndarray or float

    Notes
    -----
    ``H^2(tau) = 1 + tau^2 / s2_typ``.

    References
    ----------
    Higgins, J. P. T. & Thompson, S. G. (2002). Statistics in Medicine 21, 1539–1558.
    """
    t2 = np.square(np.asarray(tau, dtype=float))
    out = 1.0 + t2 / s2_typical(data)
    return out if out.ndim else float(out)


# ---------------------------------------------------------------------------- root finding
def _upper_bracket(f: Callable[[float], float], scale: float) -> float:
    """Smallest ``scale * 10^k`` where the decreasing ``f`` is <= 0."""
    hi = scale
    for _ in range(700):
        if f(hi) <= 0.0:
            return hi
        hi *= 10.0
        if not np.isfinite(hi):
            break
    raise InputError("tau^2 search found no upper bracket below 1e300: rescale the data")


def _decreasing_root(f: Callable[[float], float], scale: float) -> float:
    """Root in [0, inf) of a function that is positive at 0 and eventually negative."""
    hi = _upper_bracket(f, scale)
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-300, rtol=_RTOL, maxiter=500))


def _scale(data: _Std) -> float:
    """A tau^2 scale for brackets: the larger of the median sampling variance and var(y)."""
    return float(max(np.median(data.variance), np.var(data.y), np.finfo(float).tiny))


# ---------------------------------------------------------------------------- tau^2 estimators
def _statsmodels_tau2(data: _Std, **kwargs: Any) -> float:
    """tau^2 from statsmodels' ``combine_effects`` (its summaries divide by Q, 0 for equal effects)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(sm_meta.combine_effects(data.y, data.variance, **kwargs).tau2)


def _dl(data: _Std) -> Tau2Estimate:
    fe = _gls(data, 0.0)
    k_p = data.J - data.p
    tr_p = fe.tr_p
    if data.intercept_only:
        # statsmodels' "chi2" (= "dl") random-effects variance is DerSimonian-Laird, not
        # truncated at 0 (metafor's is)
        raw = _statsmodels_tau2(data, method_re="chi2")
    else:
        raw = (fe.q - k_p) / tr_p
    tau2 = max(0.0, raw)
    se = np.sqrt((2.0 * k_p + 4.0 * tau2 * tr_p + 2.0 * tau2**2 * fe.tr_pp) / tr_p**2)
    return Tau2Estimate(tau2, float(se), "DL")


def _pm_equation(data: _Std) -> Callable[[float], float]:
    k_p = data.J - data.p
    return lambda t2: _gls(data, t2).q - k_p


def _pm(data: _Std) -> Tau2Estimate:
    f = _pm_equation(data)
    tau2 = None
    if f(0.0) <= 0.0:
        tau2 = 0.0
    elif data.intercept_only:
        # statsmodels' Paule-Mandel iteration (DerSimonian & Kacker 2007, its
        # _fit_tau_iterative), kept where it solves the estimating equation Q(tau^2) = J - 1
        # (its atol is on Q, which is scale-free); otherwise Brent's method below
        t2 = _statsmodels_tau2(data, method_re="iterated", atol=1e-10, maxiter=200)
        if t2 > 0 and abs(f(t2)) <= 1e-8:
            tau2 = t2
    if tau2 is None:
        tau2 = _decreasing_root(f, _scale(data))
    w = 1.0 / (data.variance + tau2)
    se = np.sqrt(2.0 * data.J**2 / (data.J - data.p)) / w.sum()
    return Tau2Estimate(tau2, float(se), "PM")


def _score(data: _Std, restricted: bool) -> Callable[[float], float]:
    """2 x the derivative of the (restricted) log-likelihood in tau^2."""
    if restricted:
        return lambda t2: (lambda g: g.ypy2 - g.tr_p)(_gls(data, t2))
    return lambda t2: (lambda g: g.ypy2 - float(g.w.sum()))(_gls(data, t2))


def log_likelihood(data: MetaData, tau2: float, restricted: bool = True) -> float:
    """Restricted (REML) or ordinary (ML) log-likelihood of tau^2, beta profiled out.

    Parameters
    ----------
    data : MetaData
    tau2 : float
    restricted : bool, default True

    Returns
    -------
    float

    Notes
    -----
    ML: ``-1/2 [J log 2 pi + sum log v_j + Q(tau^2)]``; REML adds ``log |X'WX|`` and uses
    ``J - p`` in place of ``J`` (metafor's ``logLik``), ``v_j = s_j^2 + tau^2``.

    References
    ----------
    Viechtbauer, W. (2005). Bias and efficiency of meta-analytic variance estimators in the
    random-effects model. Journal of Educational and Behavioral Statistics 30, 261–293.
    """
    sd = _std(data)
    n = data.J - data.p if restricted else data.J
    return _loglik(sd, float(tau2) / sd.c2, restricted) - 0.5 * n * np.log(sd.c2)


def _loglik(data: _Std, tau2: float, restricted: bool) -> float:
    g = _gls(data, tau2)
    n = data.J - data.p if restricted else data.J
    ll = -0.5 * (n * np.log(2 * np.pi) + np.sum(np.log(data.variance + tau2)) + g.q)
    return float(ll - 0.5 * g.logdet_a) if restricted else float(ll)


def _likelihood(data: _Std, restricted: bool) -> Tau2Estimate:
    score = _score(data, restricted)
    tau2 = 0.0 if score(0.0) <= 0.0 else _decreasing_root(score, _scale(data))
    if tau2 > 0.0 and _loglik(data, 0.0, restricted) > _loglik(data, tau2, restricted):
        tau2 = 0.0  # a stationary point below the boundary value (metafor's ll0check)
    g = _gls(data, tau2)
    info = g.tr_pp if restricted else float(g.w @ g.w)
    return Tau2Estimate(tau2, float(np.sqrt(2.0 / info)), "REML" if restricted else "ML")


def estimate_tau2(data: MetaData, method: str = "REML") -> Tau2Estimate:
    """Frequentist estimate of tau^2 and its standard error.

    Parameters
    ----------
    data : MetaData
        Intercept-only or meta-regression design (``data.X``).
    method : {"REML", "ML", "DL", "PM"}, default "REML"

    Returns
    -------
    Tau2Estimate

    Raises
    ------
    InputError
        Unknown method, or J - p < 1.

    Notes
    -----
    With ``W = diag(1 / (s_j^2 + tau^2))``, ``P = W - W X (X'WX)^-1 X'W``:

    - DL: ``max(0, (Q - (J - p)) / tr P_0)`` (``P_0`` at tau^2 = 0); SE
      ``sqrt(2 (J-p) + 4 tau^2 tr P_0 + 2 tau^4 tr P_0^2) / tr P_0``. Without covariates the
      moment estimate is statsmodels' ``combine_effects(..., method_re="chi2")``.
    - PM: the root of ``Q(tau^2) = J - p`` (0 if ``Q(0) < J - p``); SE
      ``sqrt(2 J^2 / (J - p)) / sum w``. Without covariates statsmodels' iteration
      (``combine_effects(..., method_re="iterated")``) is used where it solves the equation
      to 1e-8, else (and with covariates) Brent's method.
    - REML: the root of ``y'PPy = tr P``, SE ``sqrt(2 / tr(PP))`` (Fisher information).
    - ML: the root of ``y'PPy = sum w``, SE ``sqrt(2 / sum w^2)``.

    ML and REML take tau^2 = 0 when the score at 0 is not positive (or the likelihood there is
    higher than at the interior root). The roots are bracketed by decades of a data scale and
    solved by Brent's method to a few ulps.

    References
    ----------
    DerSimonian, R. & Laird, N. (1986). Controlled Clinical Trials 7, 177–188.
    Paule, R. C. & Mandel, J. (1982). J. Res. Natl. Bur. Stand. 87, 377–385.
    DerSimonian, R. & Kacker, R. (2007). Contemporary Clinical Trials 28, 105–114.
    Viechtbauer, W. (2005). J. Educ. Behav. Stat. 30, 261–293.
    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
    J. Stat. Softw. 36(3).
    """
    method = _check_method(method)
    sd = _std(_check_data(data))
    if method == "DL":
        est = _dl(sd)
    elif method == "PM":
        est = _pm(sd)
    else:
        est = _likelihood(sd, restricted=(method == "REML"))
    return Tau2Estimate(est.tau2 * sd.c2, est.se * sd.c2, est.method)


def q_profile_ci(data: MetaData, level: float = 0.95) -> tuple[float, float]:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007).

    Parameters
    ----------
    data : MetaData
    level : float, default 0.95

    Returns
    -------
    tuple of float
        ``(low, high)``; a limit is 0 where ``Q(0)`` already lies below its quantile.

    Notes
    -----
    ``Q(tau^2)`` (:func:`cochran_q` with weights ``1 / (s^2 + tau^2)``) is ``chi^2_{J-p}`` at the
    true tau^2 and decreasing in tau^2; the limits solve ``Q(low) = chi^2_{J-p, 1 - a/2}`` and
    ``Q(high) = chi^2_{J-p, a/2}``, ``a = 1 - level``. The interval does not depend on the
    tau^2 estimator.

    References
    ----------
    Viechtbauer, W. (2007). Confidence intervals for the amount of heterogeneity in
    meta-analysis. Statistics in Medicine 26, 37–52.
    """
    level = _check_level(level)
    data = _check_data(data)
    df = data.J - data.p
    alpha = 1.0 - level
    q_hi, q_lo = stats.chi2.isf(alpha / 2, df), stats.chi2.isf(1 - alpha / 2, df)
    sd = _std(data)
    scale = _scale(sd)

    def limit(target: float) -> float:
        f = lambda t2: _gls(sd, t2).q - target  # noqa: E731
        return 0.0 if f(0.0) <= 0.0 else sd.c2 * _decreasing_root(f, scale)

    return limit(q_hi), limit(q_lo)


# ---------------------------------------------------------------------------- pooled estimate, Q_M, PI
def pooled_estimate(data: MetaData, tau2: float, level: float = 0.95) -> Coefficients:
    """Random-effects (GLS) estimate of mu or beta at a given tau^2, with Wald z intervals.

    Parameters
    ----------
    data : MetaData
    tau2 : float
        tau^2 (an estimate from :func:`estimate_tau2`; 0 gives the fixed-effect model).
    level : float, default 0.95

    Returns
    -------
    Coefficients

    Notes
    -----
    ``beta_hat = (X'WX)^-1 X'Wy``, ``Var = (X'WX)^-1``, ``W = diag(1 / (s_j^2 + tau^2))``;
    intervals ``beta_hat ± z_{(1+level)/2} se`` (metafor's default ``test="z"``).

    References
    ----------
    Viechtbauer, W. (2010). J. Stat. Softw. 36(3).
    """
    level = _check_level(level)
    data = _check_data(data, min_df=0)
    sd = _std(data)
    g = _gls(sd, float(tau2) / sd.c2)
    c = np.sqrt(sd.c2)
    beta, cov = c * g.beta, sd.c2 * g.cov
    se = c * np.sqrt(np.diag(g.cov))
    z = g.beta / np.sqrt(np.diag(g.cov))
    crit = stats.norm.isf((1.0 - level) / 2)
    return Coefficients(tuple(data.coef_names), beta, se, z, 2.0 * stats.norm.sf(np.abs(z)),
                        beta - crit * se, beta + crit * se, cov, level)


def _intercept_column(data: MetaData) -> int | None:
    for i, name in enumerate(data.coef_names):
        if name == "Intercept" and np.all(data.X[:, i] == 1.0):
            return i
    return None


def moderator_test(coefficients: Coefficients, data: MetaData) -> QTest | None:
    """Q_M: Wald chi-square test that every non-intercept coefficient is 0.

    Parameters
    ----------
    coefficients : Coefficients
        From :func:`pooled_estimate`.
    data : MetaData
        The design the coefficients belong to.

    Returns
    -------
    QTest or None
        ``None`` for an intercept-only design. Without an ``Intercept`` column all p
        coefficients are tested (metafor's convention).

    Notes
    -----
    ``Q_M = b' V^-1 b`` over the tested coefficients ``b`` with covariance block ``V``;
    ``Q_M ~ chi^2_m`` under the null, ``m`` = number tested (p - 1 with an intercept).

    References
    ----------
    Viechtbauer, W. (2010). J. Stat. Softw. 36(3).
    """
    if data.intercept_only:
        return None
    icpt = _intercept_column(data)
    keep = [i for i in range(data.p) if i != icpt]
    b = coefficients.estimate[keep]
    v = coefficients.cov[np.ix_(keep, keep)]
    qm = float(b @ np.linalg.solve(v, b))
    return QTest(qm, len(keep), float(stats.chi2.sf(qm, len(keep))))


def prediction_interval(data: MetaData, tau2: float, x_new: Mapping[str, Any] | ArrayLike | None = None,
                        level: float = 0.95) -> PredictionInterval:
    """Prediction interval for the true effect of a new study (metafor's ``predict``).

    Parameters
    ----------
    data : MetaData
    tau2 : float
    x_new : dict or array_like or None, optional
        Covariates of the new study, as :meth:`MetaData.design_row` reads them (default: the
        mean row of X; without covariates the intercept).
    level : float, default 0.95

    Returns
    -------
    PredictionInterval

    Notes
    -----
    ``m = x0' beta_hat``, ``se^2 = x0' (X'WX)^-1 x0``; CI ``m ± z se``; PI
    ``m ± z sqrt(se^2 + tau^2)`` with ``z = z_{(1+level)/2}`` (normal, not t).

    References
    ----------
    Riley, R. D., Higgins, J. P. T. & Deeks, J. J. (2011). Interpretation of random effects
    meta-analyses. BMJ 342, d549. Viechtbauer, W. (2010). J. Stat. Softw. 36(3).
    """
    level = _check_level(level)
    data = _check_data(data, min_df=0)
    x0 = np.ones(1) if data.intercept_only and x_new is None else data.design_row(x_new)
    sd = _std(data)
    t2 = float(tau2) / sd.c2
    g = _gls(sd, t2)
    c = float(np.sqrt(sd.c2))
    se_s = float(np.sqrt(x0 @ g.cov @ x0))
    mean, se = c * float(x0 @ g.beta), c * se_s
    crit = float(stats.norm.isf((1.0 - level) / 2))
    half = crit * c * np.sqrt(se_s**2 + t2)
    return PredictionInterval(x0, mean, se, mean - crit * se, mean + crit * se,
                              float(mean - half), float(mean + half), level)


# ---------------------------------------------------------------------------- entry point
def _intercept_only(data: MetaData) -> MetaData:
    return MetaData.from_arrays(data.y, data.se, labels=data.labels, name=data.name)


def heterogeneity(data: MetaData, method: str = "REML", level: float = 0.95,
                  x_new: Mapping[str, Any] | ArrayLike | None = None) -> Heterogeneity:
    """Heterogeneity statistics and the frequentist random-effects fit in one call.

    Parameters
    ----------
    data : MetaData
        Intercept-only or meta-regression design; needs J - p >= 1.
    method : {"REML", "ML", "DL", "PM"}, default "REML"
        The tau^2 estimator (:func:`estimate_tau2`).
    level : float, default 0.95
        Level of the tau^2, I^2, H^2, coefficient and prediction intervals.
    x_new : dict or array_like or None, optional
        Covariates of the new study for the prediction interval (:func:`prediction_interval`).

    Returns
    -------
    Heterogeneity

    Raises
    ------
    InputError
        Not a MetaData, J - p < 1, an unknown method or a level outside (0, 1).

    Notes
    -----
    Q and its test (:func:`cochran_q`); tau^2 and SE (:func:`estimate_tau2`); Q-profile interval
    (:func:`q_profile_ci`); ``I^2 = tau^2 / (tau^2 + s2_typ)``, ``H^2 = 1 / (1 - I^2)``
    (:func:`s2_typical`); Q_M (:func:`moderator_test`);
    ``R^2 = max(0, (tau^2_0 - tau^2) / tau^2_0)`` with tau^2_0 from the intercept-only model and
    the same estimator (metafor's pseudo-R^2); the prediction interval (:func:`prediction_interval`).
    Under flat priors on tau and beta the REML estimate of tau is the mode of the exact posterior
    of tau (``log p(tau | y)`` is the restricted log-likelihood at tau^2; docs/MATH.md).

    References
    ----------
    Higgins, J. P. T. & Thompson, S. G. (2002). Statistics in Medicine 21, 1539–1558.
    Viechtbauer, W. (2007). Statistics in Medicine 26, 37–52.
    Raudenbush, S. W. (2009). Analyzing effect sizes: random-effects models. In The Handbook
    of Research Synthesis and Meta-Analysis (2nd ed.), 295–315 (R^2).
    Viechtbauer, W. (2010). J. Stat. Softw. 36(3).
    """
    method = _check_method(method)
    level = _check_level(level)
    data = _check_data(data)
    qtest = cochran_q(data)
    est = estimate_tau2(data, method)
    ci = q_profile_ci(data, level)
    s2 = s2_typical(data)

    def i2(t2: float) -> float:
        return t2 / (t2 + s2)

    coefs = pooled_estimate(data, est.tau2, level)
    r2 = tau2_0 = None
    if not data.intercept_only and _intercept_column(data) is not None:
        tau2_0 = estimate_tau2(_intercept_only(data), method).tau2
        r2 = max(0.0, (tau2_0 - est.tau2) / tau2_0) if tau2_0 > 0 else float("nan")
    df = qtest.df
    return Heterogeneity(
        method=method, J=data.J, p=data.p, q=qtest.q, df=df, q_pvalue=qtest.pvalue,
        s2_typical=s2, tau2=est.tau2, tau2_se=est.se, tau2_ci=ci, tau=float(np.sqrt(est.tau2)),
        tau_ci=(float(np.sqrt(ci[0])), float(np.sqrt(ci[1]))), i2=i2(est.tau2),
        i2_ci=(i2(ci[0]), i2(ci[1])), h2=1.0 + est.tau2 / s2,
        h2_ci=(1.0 + ci[0] / s2, 1.0 + ci[1] / s2),
        i2_q=max(0.0, (qtest.q - df) / qtest.q) if qtest.q > 0 else 0.0, h2_q=qtest.q / df,
        coefficients=coefs, moderators=moderator_test(coefs, data), r2=r2,
        tau2_intercept_only=tau2_0, prediction=prediction_interval(data, est.tau2, x_new, level),
        level=level,
    )
