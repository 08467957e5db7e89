"""Priors shared by both engines: the between-study sd ``tau`` and the coefficients ``beta`` / ``mu``.

Every prior is an immutable (frozen) dataclass. The analytic engine uses the numpy
log-densities (:meth:`TauPrior.logpdf`, :meth:`BetaPrior.precision`, :meth:`BetaPrior.mean`).
The sampling engine translates each prior class into its own variables
(``metapool.models.priors``); this module knows nothing of that engine.

The defaults everywhere are the original analysis's: :class:`FlatTau` (improper flat prior on
``tau >= 0``) and :class:`FlatBeta` (improper flat prior on every coefficient).

One table per kind of prior (:data:`TAU_FAMILIES`, :data:`BETA_FAMILIES`) holds each family's
command-line keyword, class and parameters. It drives parsing (:func:`parse_tau_prior`,
:func:`parse_beta_prior`), the spelling (``spec``), the list of valid forms
(:func:`prior_forms`, used in help texts and error messages) and the validation of the
parameters (the machinery that reads the tables is :mod:`metapool.prior_registry`). A
family's class holds only what differs: log-density, draws, support, tail exponent and
properness. The valid forms are::

    tau:  flat | uniform:UPPER | uniform:0,UPPER | halfnormal:SCALE | halfcauchy:SCALE
          | halft:NU,SCALE | exponential:SCALE | lognormal:MU,SIGMA | dumouchel | dumouchel:S0
    beta: flat | normal:MEAN,SD

References
----------
.. [1] Gelman, A. (2006). Prior distributions for variance parameters in hierarchical models.
   Bayesian Analysis 1(3), 515-534.
.. [2] DuMouchel, W. (1994). Hierarchical Bayes linear models for meta-analysis. Technical
   Report 27, National Institute of Statistical Sciences.
.. [3] Röver, C. (2020). Bayesian random-effects meta-analysis using the bayesmeta R package.
   Journal of Statistical Software 93(6), 1-51.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from metapool.errors import InputError
from metapool.prior_registry import Family, Param, Registered, forms, parse_spec, register

__all__ = [
    "TauPrior",
    "FlatTau",
    "UniformTau",
    "HalfNormalTau",
    "HalfCauchyTau",
    "HalfStudentTTau",
    "ExponentialTau",
    "LogNormalTau",
    "DuMouchelTau",
    "dumouchel_s0",
    "BetaPrior",
    "FlatBeta",
    "NormalBeta",
    "UnboundPriorError",
    "Param",
    "Family",
    "TAU_FAMILIES",
    "BETA_FAMILIES",
    "prior_forms",
    "parse_tau_prior",
    "parse_beta_prior",
    "TAU_PRIOR_FORMS",
    "BETA_PRIOR_FORMS",
]

_LOG_2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)


class UnboundPriorError(ValueError):
    """A data-dependent prior (:class:`DuMouchelTau` without ``s0``) was used before ``bind(data)``."""


def _log(t: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(t)


def _finish(out: np.ndarray) -> np.ndarray | float:
    """0-d results come back as numpy scalars, everything else as arrays."""
    return out[()] if out.ndim == 0 else out


# --------------------------------------------------------------------------- tau priors


class TauPrior(Registered):
    """Base class of the priors on the between-study standard deviation ``tau``.

    Attributes
    ----------
    upper : float
        End of the support ``[0, upper]`` (``inf`` except for :class:`UniformTau`).
    proper : bool
        Whether the density integrates to one (only :class:`FlatTau` is improper).
    tail_exponent : float
        ``k`` such that the density behaves like ``tau**-k`` as ``tau -> inf``: 0 for the flat
        prior, 2 for half-Cauchy and DuMouchel, ``nu + 1`` for half-Student-t and ``inf`` for
        light-tailed priors (half-normal, exponential, log-normal, uniform).

    Notes
    -----
    Subclasses implement ``_logpdf_support(t)`` for ``t`` in the closed support (``t`` may be
    0 or ``inf``; return the limit of the log-density there) and, if proper, ``_rvs``.
    :meth:`logpdf` handles the support, NaN and the shape; the registry handles the rest.
    """

    upper: float = math.inf
    proper: bool = True
    tail_exponent: float = math.inf

    def logpdf(self, tau: ArrayLike) -> np.ndarray:
        """Log prior density of ``tau``, vectorised.

        Parameters
        ----------
        tau : array_like
            Values of the between-study sd.

        Returns
        -------
        ndarray
            Same shape as ``tau`` (a numpy scalar for scalar input): the normalised
            log-density for proper priors, 0 for the flat prior, ``-inf`` outside
            ``[0, upper]`` and NaN where ``tau`` is NaN. Computed in log space: no overflow,
            underflow to NaN or warnings for ``tau`` from 1e-300 to 1e300.
        """
        t = np.asarray(tau, dtype=float)
        with np.errstate(invalid="ignore"):
            inside = (t >= 0.0) & (t <= self.upper)
        if inside.all():                 # the usual case (quadrature nodes): no masking needed
            with np.errstate(all="ignore"):
                return _finish(np.asarray(self._logpdf_support(t), dtype=float))
        out = np.full(t.shape, -np.inf)
        if np.any(inside):
            with np.errstate(all="ignore"):
                out[inside] = self._logpdf_support(t[inside])
        out[np.isnan(t)] = np.nan
        return _finish(out)

    def _logpdf_support(self, t: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def bind(self, data: Any) -> "TauPrior":
        """Return the prior to use with ``data`` (a :class:`metapool.MetaData`).

        Only :class:`DuMouchelTau` depends on the data; every other prior returns itself.
        """
        return self

    def rvs(self, rng: np.random.Generator | int | None = None, size: int | tuple[int, ...] | None = None):
        """Draw from the prior.

        Parameters
        ----------
        rng : numpy.random.Generator or int or None
            Random generator (an int or None is passed to ``numpy.random.default_rng``).
        size : int or tuple of int, optional
            Output shape; a single float when omitted.

        Raises
        ------
        InputError
            For the improper :class:`FlatTau` (and :class:`UnboundPriorError` for an unbound
            :class:`DuMouchelTau`).
        """
        if not self.proper:
            raise InputError(
                f"{type(self).__name__} ({self.spec}) is improper: it has no random draws; "
                "use a proper tau prior (e.g. halfnormal:SCALE) to simulate"
            )
        return self._rvs(np.random.default_rng(rng), size)

    def _rvs(self, rng: np.random.Generator, size):  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class FlatTau(TauPrior):
    """Improper flat prior on ``tau >= 0`` (the original analysis's default).

    Notes
    -----
    .. math:: p(\\tau) \\propto 1, \\qquad \\tau \\ge 0.

    ``logpdf`` returns 0 on the support. With flat priors on the coefficients the posterior
    is proper only when ``J - p >= 2``.

    References
    ----------
    .. [1] Gelman, A. (2006). Prior distributions for variance parameters in hierarchical
       models. Bayesian Analysis 1(3), 515-534 (section 4.1 on the uniform prior on tau).
    """

    proper = False
    tail_exponent = 0.0

    def _logpdf_support(self, t):
        return np.zeros_like(t)


@dataclass(frozen=True)
class UniformTau(TauPrior):
    """Uniform prior on ``(0, upper)``.

    Parameters
    ----------
    upper : float
        End of the support, finite and > 0.

    Notes
    -----
    .. math:: p(\\tau) = 1 / U, \\qquad 0 \\le \\tau \\le U.

    The truncation at ``U`` is part of the model: posterior mass beyond ``U`` is removed.

    References
    ----------
    .. [1] Gelman, A. (2006). Prior distributions for variance parameters in hierarchical
       models. Bayesian Analysis 1(3), 515-534.
    """

    upper: float = field()

    def _logpdf_support(self, t):
        return np.full_like(t, -math.log(self.upper))

    def _rvs(self, rng, size):
        return rng.uniform(0.0, self.upper, size)


@dataclass(frozen=True)
class HalfNormalTau(TauPrior):
    """Half-normal prior with scale ``scale``.

    Parameters
    ----------
    scale : float
        Scale (the sd of the normal before folding), finite and > 0.

    Notes
    -----
    .. math:: p(\\tau) = \\frac{2}{s\\sqrt{2\\pi}} \\exp\\left(-\\frac{\\tau^2}{2 s^2}\\right),
       \\qquad \\tau \\ge 0.

    Light tailed (``tail_exponent = inf``).

    References
    ----------
    .. [1] Gelman, A. (2006). Prior distributions for variance parameters in hierarchical
       models. Bayesian Analysis 1(3), 515-534.
    """

    scale: float

    def _logpdf_support(self, t):
        z = t / self.scale
        return _LOG_2 - 0.5 * _LOG_2PI - math.log(self.scale) - 0.5 * z * z

    def _rvs(self, rng, size):
        return np.abs(rng.normal(0.0, self.scale, size))


@dataclass(frozen=True)
class HalfCauchyTau(TauPrior):
    """Half-Cauchy prior with scale ``scale`` (Gelman 2006's recommended weakly informative prior).

    Parameters
    ----------
    scale : float
        Scale (the median of the prior), finite and > 0.

    Notes
    -----
    .. math:: p(\\tau) = \\frac{2}{\\pi s \\,(1 + (\\tau / s)^2)}, \\qquad \\tau \\ge 0.

    The density falls like ``tau**-2`` (``tail_exponent = 2``), so the prior mean does not
    exist. ``log(1 + z**2)`` is computed as ``logaddexp(0, 2 log z)``, which stays finite for
    ``tau`` up to 1e300.

    References
    ----------
    .. [1] Gelman, A. (2006). Prior distributions for variance parameters in hierarchical
       models. Bayesian Analysis 1(3), 515-534.
    .. [2] Polson, N. G. and Scott, J. G. (2012). On the half-Cauchy prior for a global scale
       parameter. Bayesian Analysis 7(4), 887-902.
    """

    scale: float
    tail_exponent = 2.0

    def _logpdf_support(self, t):
        log_z = _log(t) - math.log(self.scale)
        return _LOG_2 - _LOG_PI - math.log(self.scale) - np.logaddexp(0.0, 2.0 * log_z)

    def _rvs(self, rng, size):
        return np.abs(self.scale * rng.standard_cauchy(size))


@dataclass(frozen=True)
class HalfStudentTTau(TauPrior):
    """Half-Student-t prior with ``nu`` degrees of freedom and scale ``scale``.

    Parameters
    ----------
    nu : float
        Degrees of freedom, finite and > 0 (``nu = 1`` is the half-Cauchy).
    scale : float
        Scale, finite and > 0.

    Notes
    -----
    .. math:: p(\\tau) = \\frac{2\\,\\Gamma((\\nu+1)/2)}{\\Gamma(\\nu/2)\\sqrt{\\nu\\pi}\\, s}
       \\left(1 + \\frac{(\\tau/s)^2}{\\nu}\\right)^{-(\\nu+1)/2}, \\qquad \\tau \\ge 0,

    twice the Student-t density on the positive half line. The density falls like
    ``tau**-(nu+1)`` (``tail_exponent = nu + 1``).

    References
    ----------
    .. [1] Gelman, A. (2006). Prior distributions for variance parameters in hierarchical
       models. Bayesian Analysis 1(3), 515-534.
    """

    nu: float
    scale: float

    @property
    def tail_exponent(self) -> float:  # type: ignore[override]
        return self.nu + 1.0

    def _logpdf_support(self, t):
        from scipy import special  # imported when used: parsing priors (the CLI's help) needs no scipy

        nu, s = self.nu, self.scale
        const = (
            _LOG_2
            + special.gammaln(0.5 * (nu + 1.0))
            - special.gammaln(0.5 * nu)
            - 0.5 * (math.log(nu) + _LOG_PI)
            - math.log(s)
        )
        log_z2_over_nu = 2.0 * (_log(t) - math.log(s)) - math.log(nu)
        return const - 0.5 * (nu + 1.0) * np.logaddexp(0.0, log_z2_over_nu)

    def _rvs(self, rng, size):
        return np.abs(self.scale * rng.standard_t(self.nu, size))


@dataclass(frozen=True)
class ExponentialTau(TauPrior):
    """Exponential prior with scale ``scale`` (the prior mean; rate ``1 / scale``).

    Parameters
    ----------
    scale : float
        Scale = mean = 1 / rate, finite and > 0.

    Notes
    -----
    .. math:: p(\\tau) = \\frac{1}{s} e^{-\\tau / s}, \\qquad \\tau \\ge 0.

    Light tailed. This is the penalised-complexity prior of Simpson et al. (2017) for the
    distance ``tau`` from the base model ``tau = 0``.

    References
    ----------
    .. [1] Simpson, D., Rue, H., Riebler, A., Martins, T. G. and Sørbye, S. H. (2017).
       Penalising model component complexity: a principled, practical approach to
       constructing priors. Statistical Science 32(1), 1-28.
    """

    scale: float

    def _logpdf_support(self, t):
        return -math.log(self.scale) - t / self.scale

    def _rvs(self, rng, size):
        return rng.exponential(self.scale, size)


@dataclass(frozen=True)
class LogNormalTau(TauPrior):
    """Log-normal prior: ``log tau ~ N(mu, sigma^2)``.

    Parameters
    ----------
    mu : float
        Mean of ``log tau`` (finite); ``exp(mu)`` is the prior median.
    sigma : float
        Sd of ``log tau``, finite and > 0.

    Notes
    -----
    .. math:: p(\\tau) = \\frac{1}{\\tau \\sigma \\sqrt{2\\pi}}
       \\exp\\left(-\\frac{(\\log\\tau - \\mu)^2}{2\\sigma^2}\\right), \\qquad \\tau > 0,

    with density 0 (log-density ``-inf``) at ``tau = 0``. Lighter tailed than any power
    (``tail_exponent = inf``). Turner et al. (2015) give empirical log-normal priors for
    ``tau^2`` by outcome and comparison type.

    References
    ----------
    .. [1] Turner, R. M., Jackson, D., Wei, Y., Thompson, S. G. and Higgins, J. P. T. (2015).
       Predictive distributions for between-study heterogeneity and simple methods for their
       application in Bayesian meta-analysis. Statistics in Medicine 34(6), 984-998.
    """

    mu: float
    sigma: float

    def _logpdf_support(self, t):
        log_t = _log(t)
        z = (log_t - self.mu) / self.sigma
        val = -log_t - math.log(self.sigma) - 0.5 * _LOG_2PI - 0.5 * z * z
        return np.where(t > 0.0, val, -np.inf)

    def _rvs(self, rng, size):
        return rng.lognormal(self.mu, self.sigma, size)


def dumouchel_s0(se: ArrayLike) -> float:
    """DuMouchel's scale ``s0 = sqrt(J / sum_j s_j^-2)`` (harmonic mean of the variances, square-rooted).

    Parameters
    ----------
    se : array_like
        The studies' standard errors, finite and > 0.

    Returns
    -------
    float

    Notes
    -----
    Computed in log space, so standard errors from 1e-200 to 1e200 are fine.
    """
    s = np.asarray(se, dtype=float).ravel()
    if s.size == 0 or not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise InputError("DuMouchelTau: standard errors must be finite and > 0 to compute s0")
    from scipy import special

    log_sum_prec = special.logsumexp(-2.0 * np.log(s))
    return float(math.exp(0.5 * (math.log(s.size) - log_sum_prec)))


@dataclass(frozen=True)
class DuMouchelTau(TauPrior):
    """DuMouchel's prior ``p(tau) = s0 / (s0 + tau)^2`` with the data-dependent scale ``s0``.

    Parameters
    ----------
    s0 : float, optional
        Scale (the prior median), finite and > 0. Leave it ``None`` to have :meth:`bind` set it
        to ``sqrt(J / sum_j s_j^-2)`` from the data; an explicit ``s0`` is kept by ``bind``.

    Notes
    -----
    .. math:: p(\\tau) = \\frac{s_0}{(s_0 + \\tau)^2}, \\qquad \\tau \\ge 0,
       \\qquad s_0 = \\sqrt{J \\Big/ \\textstyle\\sum_j s_j^{-2}}.

    Equivalently ``s0^2 / (s0^2 + tau^2)``, the prior share of between-study variance in a
    "typical" study, is uniform. The CDF is ``tau / (s0 + tau)``, so the median is ``s0`` and
    draws are ``s0 u / (1 - u)`` with ``u`` uniform. The density falls like ``tau**-2``
    (``tail_exponent = 2``); the prior mean does not exist.

    References
    ----------
    .. [1] DuMouchel, W. (1990). Bayesian meta-analysis. In D. A. Berry (ed.), Statistical
       Methodology in the Pharmaceutical Sciences, 509-529. Marcel Dekker.
    .. [2] DuMouchel, W. (1994). Hierarchical Bayes linear models for meta-analysis. Technical
       Report 27, National Institute of Statistical Sciences.
    .. [3] DuMouchel, W. and Normand, S.-L. (2000). Computer-modeling and graphical strategies
       for meta-analysis. In D. K. Stangl and D. A. Berry (eds.), Meta-Analysis in Medicine
       and Health Policy, 127-178. Marcel Dekker.
    .. [4] Röver, C. (2020). Bayesian random-effects meta-analysis using the bayesmeta R
       package. Journal of Statistical Software 93(6), 1-51 (``dlomax`` / the "DuMouchel"
       prior in ``bayesmeta``).
    """

    s0: float | None = None
    tail_exponent = 2.0

    @property
    def bound(self) -> bool:
        """Whether ``s0`` is known (given or filled in by :meth:`bind`)."""
        return self.s0 is not None

    def require_s0(self) -> float:
        """Return ``s0``, or raise :class:`UnboundPriorError` if :meth:`bind` has not set it."""
        if self.s0 is None:
            raise UnboundPriorError(
                "DuMouchelTau has no s0 yet: call prior.bind(data) first "
                "(s0 = sqrt(J / sum_j se_j^-2)), or give s0 explicitly"
            )
        return self.s0

    def bind(self, data: Any) -> "DuMouchelTau":
        """Return the prior with ``s0 = sqrt(J / sum_j se_j^-2)`` from ``data.se`` (an explicit ``s0`` is kept)."""
        if self.s0 is not None:
            return self
        return DuMouchelTau(s0=dumouchel_s0(data.se))

    def logpdf(self, tau: ArrayLike) -> np.ndarray:
        self.require_s0()
        return super().logpdf(tau)

    def _logpdf_support(self, t):
        log_s0 = math.log(self.s0)
        return log_s0 - 2.0 * np.logaddexp(log_s0, _log(t))

    def _rvs(self, rng, size):
        s0 = self.require_s0()
        u = rng.uniform(0.0, 1.0, size)
        return s0 * u / (1.0 - u)


# --------------------------------------------------------------------------- beta priors


def _broadcast(prior: str, name: str, value: float | tuple[float, ...], p: int) -> np.ndarray:
    p = int(p)
    if p < 1:
        raise InputError(f"{prior}: the number of coefficients p must be >= 1, got {p}")
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.size == 1:
        return np.full(p, float(arr[0]))
    if arr.size != p:
        raise InputError(f"{prior}: {name} has {arr.size} values but the design has p = {p} coefficients")
    return arr.copy()


def _as_beta(beta: ArrayLike) -> np.ndarray:
    b = np.asarray(beta, dtype=float)
    return b[..., None] if b.ndim == 0 else b


class BetaPrior(Registered):
    """Base class of the priors on the coefficients (``mu`` or every ``beta``).

    The coefficients are a priori independent: ``beta_k ~ N(mean_k, sd_k^2)`` or flat.

    Attributes
    ----------
    proper : bool
        Whether the prior integrates to one.
    """

    proper: bool = True

    def precision(self, p: int) -> np.ndarray:  # pragma: no cover - abstract
        """Prior precisions ``1 / sd_k^2``, shape ``(p,)`` (zeros for the flat prior)."""
        raise NotImplementedError

    def mean(self, p: int) -> np.ndarray:  # pragma: no cover - abstract
        """Prior means, shape ``(p,)`` (zeros for the flat prior)."""
        raise NotImplementedError


@dataclass(frozen=True)
class FlatBeta(BetaPrior):
    """Improper flat prior on every coefficient (the original analysis's default).

    Notes
    -----
    .. math:: p(\\beta) \\propto 1.

    ``precision(p)`` and ``mean(p)`` are zeros and ``logpdf`` is 0.
    """

    proper = False

    def precision(self, p: int) -> np.ndarray:
        return _broadcast("FlatBeta", "precision", 0.0, p)

    def mean(self, p: int) -> np.ndarray:
        return _broadcast("FlatBeta", "mean", 0.0, p)

    def logpdf(self, beta: ArrayLike) -> np.ndarray:
        """0 for every finite coefficient vector; ``beta`` has the coefficients on its last axis."""
        b = _as_beta(beta)
        out = np.where(np.all(np.isfinite(b), axis=-1), 0.0, -np.inf)
        out = np.where(np.any(np.isnan(b), axis=-1), np.nan, out)
        return _finish(np.asarray(out, dtype=float))

    def rvs(self, rng=None, size=None, p: int = 1):
        """Not available: the flat prior is improper (raises InputError)."""
        raise InputError(
            "FlatBeta (flat) is improper: it has no random draws; use normal:MEAN,SD to simulate"
        )


@dataclass(frozen=True, init=False, repr=False)
class NormalBeta(BetaPrior):
    """Independent normal priors ``beta_k ~ N(mean_k, sd_k^2)``.

    Parameters
    ----------
    mean : float or sequence of float, default 0
        Prior mean(s), finite; a scalar applies to every coefficient.
    sd : float or sequence of float
        Prior sd(s), finite and > 0; a scalar applies to every coefficient.

    Attributes
    ----------
    loc : float or tuple of float
        The prior mean(s) as given (``mean`` is the method ``mean(p)``).
    sd : float or tuple of float
        The prior sd(s) as given.

    Notes
    -----
    .. math:: p(\\beta) = \\prod_{k=1}^p \\frac{1}{sd_k\\sqrt{2\\pi}}
       \\exp\\left(-\\frac{(\\beta_k - m_k)^2}{2 sd_k^2}\\right).

    Scalars broadcast over the ``p`` coefficients; sequences must have length ``p``. The
    analytic engine uses ``precision(p) = 1 / sd^2`` and ``mean(p)``.
    """

    loc: float | tuple[float, ...]
    sd: float | tuple[float, ...]

    def __init__(self, mean: float | Sequence[float] = 0.0, sd: float | Sequence[float] | None = None):
        if sd is None:
            raise TypeError("NormalBeta needs sd (the prior standard deviation), e.g. NormalBeta(0.0, 4.0)")
        object.__setattr__(self, "loc", mean)
        object.__setattr__(self, "sd", sd)
        self.__post_init__()
        if isinstance(self.loc, tuple) and isinstance(self.sd, tuple) and len(self.loc) != len(self.sd):
            raise InputError(f"NormalBeta: mean has {len(self.loc)} values but sd has {len(self.sd)}")

    def __repr__(self) -> str:
        return f"NormalBeta(mean={self.loc!r}, sd={self.sd!r})"

    def precision(self, p: int) -> np.ndarray:
        return 1.0 / self._sd(p) ** 2

    def mean(self, p: int) -> np.ndarray:  # type: ignore[override]
        return _broadcast("NormalBeta", "mean", self.loc, p)

    def _sd(self, p: int) -> np.ndarray:
        return _broadcast("NormalBeta", "sd", self.sd, p)

    def logpdf(self, beta: ArrayLike) -> np.ndarray:
        """Sum over coefficients (the last axis of ``beta``; a scalar is one coefficient) of the normal log-densities."""
        b = _as_beta(beta)
        p = b.shape[-1]
        sd = self._sd(p)
        z = (b - self.mean(p)) / sd
        with np.errstate(over="ignore"):
            out = np.sum(-0.5 * z * z - np.log(sd) - 0.5 * _LOG_2PI, axis=-1)
        return _finish(np.asarray(out, dtype=float))

    def rvs(self, rng: np.random.Generator | int | None = None, size: int | None = None, p: int | None = None):
        """Draws of shape ``(size, p)`` (``(p,)`` when ``size`` is None).

        ``p`` defaults to the length of vector parameters, else 1.
        """
        if p is None:
            sizes = [len(v) for v in (self.loc, self.sd) if isinstance(v, tuple)]
            p = sizes[0] if sizes else 1
        p = int(p)
        shape = (p,) if size is None else (int(size), p)
        return self.mean(p) + self._sd(p) * np.random.default_rng(rng).standard_normal(shape)


# --------------------------------------------------------------------------- the tables

TAU_FAMILIES: Mapping[str, Family] = register(
    Family("flat", FlatTau),
    Family("uniform", UniformTau, (Param("upper"),), fixed=(("lower end", 0.0),)),
    Family("halfnormal", HalfNormalTau, (Param("scale"),)),
    Family("halfcauchy", HalfCauchyTau, (Param("scale"),)),
    Family("halft", HalfStudentTTau, (Param("nu"), Param("scale"))),
    Family("exponential", ExponentialTau, (Param("scale"),)),
    Family("lognormal", LogNormalTau, (Param("mu", positive=False), Param("sigma"))),
    Family("dumouchel", DuMouchelTau, (Param("s0", optional=True),)),
)
"""The tau prior families by command-line keyword, in the order of the help text."""

BETA_FAMILIES: Mapping[str, Family] = register(
    Family("flat", FlatBeta),
    Family("normal", NormalBeta, (Param("loc", positive=False, label="mean"), Param("sd")), vector=True),
)
"""The mu / beta prior families by command-line keyword."""


def prior_forms(kind: Literal["tau", "beta"]) -> list[str]:
    """The valid spellings of a ``"tau"`` or ``"beta"`` (``mu`` / every ``beta``) prior.

    Parameters
    ----------
    kind : {"tau", "beta"}

    Returns
    -------
    list of str
        For help texts and error messages, in table order, e.g. ``["flat", "normal:MEAN,SD"]``.
    """
    return forms({"tau": TAU_FAMILIES, "beta": BETA_FAMILIES}[kind])


TAU_PRIOR_FORMS: str = ", ".join(prior_forms("tau"))
BETA_PRIOR_FORMS: str = ", ".join(prior_forms("beta"))


# --------------------------------------------------------------------------- parsers


def parse_tau_prior(spec: "str | TauPrior") -> TauPrior:
    """Read a tau prior from its command-line spelling.

    Parameters
    ----------
    spec : str or TauPrior
        One of ``prior_forms("tau")``: ``flat``, ``uniform:UPPER``, ``uniform:0,UPPER``,
        ``halfnormal:SCALE``, ``halfcauchy:SCALE``, ``halft:NU,SCALE``, ``exponential:SCALE``,
        ``lognormal:MU,SIGMA``, ``dumouchel`` (``s0`` from the data via ``bind``) or
        ``dumouchel:S0``. Names are case-insensitive; spaces around the parts are ignored. A
        prior object is returned unchanged.

    Returns
    -------
    TauPrior

    Raises
    ------
    InputError
        One line naming the bad spec, saying what is wrong, and listing the valid forms.
    TypeError
        If ``spec`` is neither a string nor a :class:`TauPrior`.

    Examples
    --------
    >>> parse_tau_prior("halfcauchy:25")
    HalfCauchyTau(scale=25.0)
    >>> parse_tau_prior("uniform:0,10").spec
    'uniform:0,10'
    """
    return parse_spec(spec, TauPrior, "tau", TAU_FAMILIES)


def parse_beta_prior(spec: "str | BetaPrior") -> BetaPrior:
    """Read a prior for ``mu`` / every ``beta`` from its command-line spelling.

    Parameters
    ----------
    spec : str or BetaPrior
        ``flat`` or ``normal:MEAN,SD`` (applied to every coefficient). Per-coefficient values
        may be given as ``[a;b;c]`` (this is how ``NormalBeta.spec`` writes vectors). A prior
        object is returned unchanged.

    Returns
    -------
    BetaPrior

    Raises
    ------
    InputError, TypeError
        As :func:`parse_tau_prior` (the valid forms listed are ``prior_forms("beta")``).

    Examples
    --------
    >>> parse_beta_prior("normal:0,4")
    NormalBeta(mean=0.0, sd=4.0)
    """
    return parse_spec(spec, BetaPrior, "mu/beta", BETA_FAMILIES)
