"""Priors shared by both engines: the between-study sd ``tau`` and the coefficients ``beta`` / ``mu``.

Every prior is an immutable (frozen) dataclass. The analytic engine uses the numpy
log-densities (:meth:`TauPrior.logpdf`, :meth:`BetaPrior.precision`, :meth:`BetaPrior.mean`);
the PyMC engine calls ``to_pymc`` inside a ``pm.Model`` context to create the same
distribution. PyMC is imported lazily inside ``to_pymc`` only, so importing this module (and
``metapool.analytic``, which imports it) never imports PyMC.

The defaults everywhere are the original analysis's: :class:`FlatTau` (improper flat prior on
``tau >= 0``) and :class:`FlatBeta` (improper flat prior on every coefficient).

Command-line spellings (``spec``; read back by :func:`parse_tau_prior` and
:func:`parse_beta_prior`)::

    tau:  flat | uniform:UPPER | uniform:0,UPPER | halfnormal:SCALE | halfcauchy:SCALE
          | halft:NU,SCALE | exponential:SCALE | lognormal:MU,SIGMA | dumouchel[:S0]
    beta: flat | normal:MEAN,SD

References
----------
.. [1] Gelman, A. (2006). Prior distributions for variance parameters in hierarchical models.
   Bayesian Analysis 1(3), 515-534.
.. [2] DuMouchel, W. (1990). Bayesian meta-analysis. In D. A. Berry (ed.), Statistical
   Methodology in the Pharmaceutical Sciences, 509-529. Marcel Dekker.
.. [3] Röver, C. (2020). Bayesian random-effects meta-analysis using the bayesmeta R package.
   Journal of Statistical Software 93(6), 1-51.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln, logsumexp

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
    "parse_tau_prior",
    "parse_beta_prior",
    "TAU_PRIOR_FORMS",
    "BETA_PRIOR_FORMS",
]

TAU_PRIOR_FORMS = (
    "flat, uniform:UPPER, uniform:0,UPPER, halfnormal:SCALE, halfcauchy:SCALE, "
    "halft:NU,SCALE, exponential:SCALE, lognormal:MU,SIGMA, dumouchel, dumouchel:S0"
)
BETA_PRIOR_FORMS = "flat, normal:MEAN,SD"

_LOG_2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)


class UnboundPriorError(ValueError):
    """A data-dependent prior (:class:`DuMouchelTau` without ``s0``) was used before ``bind(data)``."""


# --------------------------------------------------------------------------- helpers


def _positive(prior: str, name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise ValueError unless it is finite and > 0."""
    x = _finite(prior, name, value)
    if not x > 0:
        raise ValueError(f"{prior}: {name} must be finite and > 0, got {value!r}")
    return x


def _finite(prior: str, name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise ValueError unless it is a finite number."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{prior}: {name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{prior}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{prior}: {name} must be finite, got {value!r}")
    return x


def _fmt(x: float) -> str:
    """The shortest spelling of ``x`` that parses back to exactly ``x``."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e16:
        return str(int(x))
    return repr(x)


def _log(t: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(t)


def _finish(out: np.ndarray) -> np.ndarray | float:
    """0-d results come back as numpy scalars, everything else as arrays."""
    return out[()] if out.ndim == 0 else out


def _f64(x: Any) -> np.ndarray:
    """Parameters for PyMC as float64 arrays (PyTensor would store exactly representable Python
    floats as float32 constants and compute their logs in single precision)."""
    return np.asarray(x, dtype=np.float64)


def _as_rng(rng: Any) -> np.random.Generator:
    return np.random.default_rng(rng)


# --------------------------------------------------------------------------- tau priors


class TauPrior:
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
    0 or ``inf``; return the limit of the log-density there), ``spec``, ``_rvs`` and
    ``to_pymc``. :meth:`logpdf` handles the support, NaN and the shape.
    """

    upper: float = math.inf
    proper: bool = True
    tail_exponent: float = math.inf

    # -- evaluation -----------------------------------------------------------------------
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
        out = np.full(t.shape, -np.inf)
        with np.errstate(invalid="ignore"):
            inside = (t >= 0.0) & (t <= self.upper)
        if np.any(inside):
            with np.errstate(all="ignore"):
                out[inside] = self._logpdf_support(t[inside])
        out[np.isnan(t)] = np.nan
        return _finish(out)

    def _logpdf_support(self, t: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- data dependence ------------------------------------------------------------------
    def bind(self, data: Any) -> "TauPrior":
        """Return the prior to use with ``data`` (a :class:`metapool.MetaData`).

        Only :class:`DuMouchelTau` depends on the data; every other prior returns itself.
        """
        return self

    # -- simulation -----------------------------------------------------------------------
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
        ValueError
            For the improper :class:`FlatTau` (and :class:`UnboundPriorError` for an unbound
            :class:`DuMouchelTau`).
        """
        if not self.proper:
            raise ValueError(
                f"{type(self).__name__} ({self.spec}) is improper: it has no random draws; "
                "use a proper tau prior (e.g. halfnormal:SCALE) to simulate"
            )
        return self._rvs(_as_rng(rng), size)

    def _rvs(self, rng: np.random.Generator, size):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- spelling and PyMC ----------------------------------------------------------------
    @property
    def spec(self) -> str:  # pragma: no cover - abstract
        """The command-line spelling, read back by :func:`parse_tau_prior`."""
        raise NotImplementedError

    def to_pymc(self, name: str = "tau", **kwargs: Any):  # pragma: no cover - abstract
        """Create the equivalent PyMC variable inside the current ``pm.Model`` context."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.spec


@dataclass(frozen=True)
class FlatTau(TauPrior):
    """Improper flat prior on ``tau >= 0`` (the original analysis's default).

    Notes
    -----
    .. math:: p(\\tau) \\propto 1, \\qquad \\tau \\ge 0.

    ``logpdf`` returns 0 on the support. With flat priors on the coefficients the posterior
    is proper only when ``J - p >= 2``. In PyMC this is ``pm.HalfFlat``.

    References
    ----------
    .. [1] Gelman, A. (2006). Prior distributions for variance parameters in hierarchical
       models. Bayesian Analysis 1(3), 515-534 (section 4.1 on the uniform prior on tau).
    """

    proper = False
    tail_exponent = 0.0

    def _logpdf_support(self, t):
        return np.zeros_like(t)

    @property
    def spec(self) -> str:
        return "flat"

    def to_pymc(self, name: str = "tau", **kwargs: Any):
        import pymc as pm

        return pm.HalfFlat(name, **kwargs)


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

    The truncation at ``U`` is part of the model: posterior mass beyond ``U`` is removed. In
    PyMC this is ``pm.Uniform(lower=0, upper=U)``.

    References
    ----------
    .. [1] Gelman, A. (2006). Prior distributions for variance parameters in hierarchical
       models. Bayesian Analysis 1(3), 515-534.
    """

    upper: float = field()

    def __post_init__(self):
        object.__setattr__(self, "upper", _positive("UniformTau", "upper", self.upper))

    def _logpdf_support(self, t):
        return np.full_like(t, -math.log(self.upper))

    def _rvs(self, rng, size):
        return rng.uniform(0.0, self.upper, size)

    @property
    def spec(self) -> str:
        return f"uniform:0,{_fmt(self.upper)}"

    def to_pymc(self, name: str = "tau", **kwargs: Any):
        import pymc as pm

        return pm.Uniform(name, lower=_f64(0.0), upper=_f64(self.upper), **kwargs)


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

    Light tailed (``tail_exponent = inf``). In PyMC this is ``pm.HalfNormal(sigma=s)``.

    References
    ----------
    .. [1] Gelman, A. (2006). Prior distributions for variance parameters in hierarchical
       models. Bayesian Analysis 1(3), 515-534.
    """

    scale: float

    def __post_init__(self):
        object.__setattr__(self, "scale", _positive("HalfNormalTau", "scale", self.scale))

    def _logpdf_support(self, t):
        z = t / self.scale
        return _LOG_2 - 0.5 * _LOG_2PI - math.log(self.scale) - 0.5 * z * z

    def _rvs(self, rng, size):
        return np.abs(rng.normal(0.0, self.scale, size))

    @property
    def spec(self) -> str:
        return f"halfnormal:{_fmt(self.scale)}"

    def to_pymc(self, name: str = "tau", **kwargs: Any):
        import pymc as pm

        return pm.HalfNormal(name, sigma=_f64(self.scale), **kwargs)


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
    ``tau`` up to 1e300. In PyMC this is ``pm.HalfCauchy(beta=s)``.

    References
    ----------
    .. [1] Gelman, A. (2006). Prior distributions for variance parameters in hierarchical
       models. Bayesian Analysis 1(3), 515-534.
    .. [2] Polson, N. G. and Scott, J. G. (2012). On the half-Cauchy prior for a global scale
       parameter. Bayesian Analysis 7(4), 887-902.
    """

    scale: float
    tail_exponent = 2.0

    def __post_init__(self):
        object.__setattr__(self, "scale", _positive("HalfCauchyTau", "scale", self.scale))

    def _logpdf_support(self, t):
        log_z = _log(t) - math.log(self.scale)
        return _LOG_2 - _LOG_PI - math.log(self.scale) - np.logaddexp(0.0, 2.0 * log_z)

    def _rvs(self, rng, size):
        return np.abs(self.scale * rng.standard_cauchy(size))

    @property
    def spec(self) -> str:
        return f"halfcauchy:{_fmt(self.scale)}"

    def to_pymc(self, name: str = "tau", **kwargs: Any):
        import pymc as pm

        return pm.HalfCauchy(name, beta=_f64(self.scale), **kwargs)


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
    ``tau**-(nu+1)`` (``tail_exponent = nu + 1``). In PyMC this is
    ``pm.HalfStudentT(nu=nu, sigma=s)``.

    References
    ----------
    .. [1] Gelman, A. (2006). Prior distributions for variance parameters in hierarchical
       models. Bayesian Analysis 1(3), 515-534.
    """

    nu: float
    scale: float

    def __post_init__(self):
        object.__setattr__(self, "nu", _positive("HalfStudentTTau", "nu", self.nu))
        object.__setattr__(self, "scale", _positive("HalfStudentTTau", "scale", self.scale))

    @property
    def tail_exponent(self) -> float:  # type: ignore[override]
        return self.nu + 1.0

    def _logpdf_support(self, t):
        nu, s = self.nu, self.scale
        const = (
            _LOG_2
            + gammaln(0.5 * (nu + 1.0))
            - gammaln(0.5 * nu)
            - 0.5 * (math.log(nu) + _LOG_PI)
            - math.log(s)
        )
        log_z2_over_nu = 2.0 * (_log(t) - math.log(s)) - math.log(nu)
        return const - 0.5 * (nu + 1.0) * np.logaddexp(0.0, log_z2_over_nu)

    def _rvs(self, rng, size):
        return np.abs(self.scale * rng.standard_t(self.nu, size))

    @property
    def spec(self) -> str:
        return f"halft:{_fmt(self.nu)},{_fmt(self.scale)}"

    def to_pymc(self, name: str = "tau", **kwargs: Any):
        import pymc as pm

        return pm.HalfStudentT(name, nu=_f64(self.nu), sigma=_f64(self.scale), **kwargs)


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
    distance ``tau`` from the base model ``tau = 0``. In PyMC this is
    ``pm.Exponential(scale=s)``.

    References
    ----------
    .. [1] Simpson, D., Rue, H., Riebler, A., Martins, T. G. and Sørbye, S. H. (2017).
       Penalising model component complexity: a principled, practical approach to
       constructing priors. Statistical Science 32(1), 1-28.
    """

    scale: float

    def __post_init__(self):
        object.__setattr__(self, "scale", _positive("ExponentialTau", "scale", self.scale))

    def _logpdf_support(self, t):
        return -math.log(self.scale) - t / self.scale

    def _rvs(self, rng, size):
        return rng.exponential(self.scale, size)

    @property
    def spec(self) -> str:
        return f"exponential:{_fmt(self.scale)}"

    def to_pymc(self, name: str = "tau", **kwargs: Any):
        import pymc as pm

        return pm.Exponential(name, scale=_f64(self.scale), **kwargs)


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
    ``tau^2`` by outcome and comparison type. In PyMC this is ``pm.LogNormal(mu, sigma)``.

    References
    ----------
    .. [1] Turner, R. M., Jackson, D., Wei, Y., Thompson, S. G. and Higgins, J. P. T. (2015).
       Predictive distributions for between-study heterogeneity and simple methods for their
       application in Bayesian meta-analysis. Statistics in Medicine 34(6), 984-998.
    """

    mu: float
    sigma: float

    def __post_init__(self):
        object.__setattr__(self, "mu", _finite("LogNormalTau", "mu", self.mu))
        object.__setattr__(self, "sigma", _positive("LogNormalTau", "sigma", self.sigma))

    def _logpdf_support(self, t):
        log_t = _log(t)
        z = (log_t - self.mu) / self.sigma
        val = -log_t - math.log(self.sigma) - 0.5 * _LOG_2PI - 0.5 * z * z
        return np.where(t > 0.0, val, -np.inf)

    def _rvs(self, rng, size):
        return rng.lognormal(self.mu, self.sigma, size)

    @property
    def spec(self) -> str:
        return f"lognormal:{_fmt(self.mu)},{_fmt(self.sigma)}"

    def to_pymc(self, name: str = "tau", **kwargs: Any):
        import pymc as pm

        return pm.LogNormal(name, mu=_f64(self.mu), sigma=_f64(self.sigma), **kwargs)


def dumouchel_s0(se: ArrayLike) -> float:
    """DuMouchel's scale ``s0 = sqrt(J / sum_j s_j^-2)`` (harmonic mean of the variances, square-rooted).

    Computed in log space, so standard errors from 1e-200 to 1e200 are fine.
    """
    s = np.asarray(se, dtype=float).ravel()
    if s.size == 0 or not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise ValueError("DuMouchelTau: standard errors must be finite and > 0 to compute s0")
    log_sum_prec = logsumexp(-2.0 * np.log(s))
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
    (``tail_exponent = 2``); the prior mean does not exist. In PyMC this is a
    ``pm.CustomDist`` with exactly this log-density on a log-transformed value.

    References
    ----------
    .. [1] DuMouchel, W. (1990). Bayesian meta-analysis. In D. A. Berry (ed.), Statistical
       Methodology in the Pharmaceutical Sciences, 509-529. Marcel Dekker.
    .. [2] DuMouchel, W. and Normand, S.-L. (2000). Computer-modeling and graphical strategies
       for meta-analysis. In D. K. Stangl and D. A. Berry (eds.), Meta-Analysis in Medicine
       and Health Policy, 127-178. Marcel Dekker.
    .. [3] Röver, C. (2020). Bayesian random-effects meta-analysis using the bayesmeta R
       package. Journal of Statistical Software 93(6), 1-51 (``dlomax`` / the "DuMouchel"
       prior in ``bayesmeta``).
    """

    s0: float | None = None
    tail_exponent = 2.0

    def __post_init__(self):
        if self.s0 is not None:
            object.__setattr__(self, "s0", _positive("DuMouchelTau", "s0", self.s0))

    @property
    def bound(self) -> bool:
        """Whether ``s0`` is known (given or filled in by :meth:`bind`)."""
        return self.s0 is not None

    def _require_s0(self) -> float:
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
        self._require_s0()
        return super().logpdf(tau)

    def _logpdf_support(self, t):
        log_s0 = math.log(self.s0)
        return log_s0 - 2.0 * np.logaddexp(log_s0, _log(t))

    def _rvs(self, rng, size):
        s0 = self._require_s0()
        u = rng.uniform(0.0, 1.0, size)
        return s0 * u / (1.0 - u)

    @property
    def spec(self) -> str:
        return "dumouchel" if self.s0 is None else f"dumouchel:{_fmt(self.s0)}"

    def to_pymc(self, name: str = "tau", **kwargs: Any):
        s0 = self._require_s0()
        import pymc as pm
        import pytensor.tensor as pt
        from pymc.distributions.transforms import log as log_transform

        def logp(value, s0_):
            log_s0 = pt.log(s0_)
            inside = pt.ge(value, 0.0)
            safe = pt.switch(inside, value, 0.0)
            return pt.switch(inside, log_s0 - 2.0 * pt.logaddexp(log_s0, pt.log(safe)), -np.inf)

        def logcdf(value, s0_):
            inside = pt.ge(value, 0.0)
            safe = pt.switch(inside, value, 0.0)
            return pt.switch(inside, pt.log(safe) - pt.logaddexp(pt.log(s0_), pt.log(safe)), -np.inf)

        def dist(s0_, size):
            # tau = s0 u / (1 - u), u ~ U(0, 1): the inverse CDF; its support point is s0 (the median)
            u = pm.Uniform.dist(lower=0.0, upper=1.0, size=size)
            return s0_ * u / (1.0 - u)

        kwargs.setdefault("default_transform", log_transform)
        return pm.CustomDist(
            name,
            _f64(s0),
            dist=dist,
            logp=logp,
            logcdf=logcdf,
            signature="()->()",
            **kwargs,
        )


# --------------------------------------------------------------------------- beta priors


def _coef_param(prior: str, name: str, value: Any, positive: bool) -> float | tuple[float, ...]:
    """A scalar or a tuple of floats (hashable, so the dataclass stays frozen and comparable)."""
    check = _positive if positive else _finite
    arr = np.asarray(value, dtype=object)
    if arr.ndim == 0:
        return check(prior, name, value)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{prior}: {name} must be a scalar or a non-empty 1-d sequence, got {value!r}")
    return tuple(check(prior, f"{name}[{i}]", v) for i, v in enumerate(arr))


def _broadcast(prior: str, name: str, value: float | tuple[float, ...], p: int) -> np.ndarray:
    p = int(p)
    if p < 1:
        raise ValueError(f"{prior}: the number of coefficients p must be >= 1, got {p}")
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.size == 1:
        return np.full(p, float(arr[0]))
    if arr.size != p:
        raise ValueError(f"{prior}: {name} has {arr.size} values but the design has p = {p} coefficients")
    return arr.copy()


def _fmt_param(v: float | tuple[float, ...]) -> str:
    if isinstance(v, tuple):
        return "[" + ";".join(_fmt(x) for x in v) + "]"
    return _fmt(v)


def _as_beta(beta: ArrayLike) -> np.ndarray:
    b = np.asarray(beta, dtype=float)
    return b[..., None] if b.ndim == 0 else b


class BetaPrior:
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

    @property
    def spec(self) -> str:  # pragma: no cover - abstract
        """The command-line spelling, read back by :func:`parse_beta_prior`."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.spec


@dataclass(frozen=True)
class FlatBeta(BetaPrior):
    """Improper flat prior on every coefficient (the original analysis's default).

    Notes
    -----
    .. math:: p(\\beta) \\propto 1.

    ``precision(p)`` and ``mean(p)`` are zeros and ``logpdf`` is 0. In PyMC this is ``pm.Flat``.
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
        """Not available: the flat prior is improper."""
        raise ValueError(
            "FlatBeta (flat) is improper: it has no random draws; use normal:MEAN,SD to simulate"
        )

    @property
    def spec(self) -> str:
        return "flat"

    def to_pymc(self, name: str, dims=None, shape=None, **kwargs: Any):
        """Create ``pm.Flat(name, dims=dims, shape=shape)`` in the current model."""
        import pymc as pm

        return pm.Flat(name, dims=dims, shape=shape, **kwargs)


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
    analytic engine uses ``precision(p) = 1 / sd^2`` and ``mean(p)``. In PyMC this is
    ``pm.Normal(mu=mean, sigma=sd)``.
    """

    loc: float | tuple[float, ...]
    sd: float | tuple[float, ...]

    def __init__(self, mean: float | Sequence[float] = 0.0, sd: float | Sequence[float] | None = None):
        if sd is None:
            raise TypeError("NormalBeta needs sd (the prior standard deviation), e.g. NormalBeta(0.0, 4.0)")
        object.__setattr__(self, "loc", _coef_param("NormalBeta", "mean", mean, positive=False))
        object.__setattr__(self, "sd", _coef_param("NormalBeta", "sd", sd, positive=True))
        if isinstance(self.loc, tuple) and isinstance(self.sd, tuple) and len(self.loc) != len(self.sd):
            raise ValueError(
                f"NormalBeta: mean has {len(self.loc)} values but sd has {len(self.sd)}"
            )

    def __repr__(self) -> str:
        return f"NormalBeta(mean={self.loc!r}, sd={self.sd!r})"

    def precision(self, p: int) -> np.ndarray:
        return 1.0 / _broadcast("NormalBeta", "sd", self.sd, p) ** 2

    def mean(self, p: int) -> np.ndarray:  # type: ignore[override]
        return _broadcast("NormalBeta", "mean", self.loc, p)

    def _p(self, p: int | None) -> int:
        if p is not None:
            return int(p)
        sizes = [len(v) for v in (self.loc, self.sd) if isinstance(v, tuple)]
        return sizes[0] if sizes else 1

    def logpdf(self, beta: ArrayLike) -> np.ndarray:
        """Sum over coefficients (the last axis of ``beta``; a scalar is one coefficient) of the normal log-densities."""
        b = _as_beta(beta)
        p = b.shape[-1]
        m = self.mean(p)
        sd = _broadcast("NormalBeta", "sd", self.sd, p)
        z = (b - m) / sd
        with np.errstate(over="ignore"):
            out = np.sum(-0.5 * z * z - np.log(sd) - 0.5 * _LOG_2PI, axis=-1)
        return _finish(np.asarray(out, dtype=float))

    def rvs(self, rng: np.random.Generator | int | None = None, size: int | None = None, p: int | None = None):
        """Draws of shape ``(size, p)`` (``(p,)`` when ``size`` is None).

        ``p`` defaults to the length of vector parameters, else 1.
        """
        rng = _as_rng(rng)
        p = self._p(p)
        m = self.mean(p)
        sd = _broadcast("NormalBeta", "sd", self.sd, p)
        shape = (p,) if size is None else (int(size), p)
        return m + sd * rng.standard_normal(shape)

    @property
    def spec(self) -> str:
        return f"normal:{_fmt_param(self.loc)},{_fmt_param(self.sd)}"

    def to_pymc(self, name: str, dims=None, shape=None, **kwargs: Any):
        """Create ``pm.Normal(name, mu=mean, sigma=sd, dims=dims, shape=shape)`` in the current model."""
        import pymc as pm

        return pm.Normal(
            name, mu=_f64(self.loc), sigma=_f64(self.sd),
            dims=dims, shape=shape, **kwargs,
        )


# --------------------------------------------------------------------------- parsers


def _split(spec: str) -> tuple[str, list[str]]:
    name, sep, rest = spec.strip().partition(":")
    name = name.strip().lower()
    args = [a.strip() for a in rest.split(",")] if sep else []
    return name, args


def _num(text: str) -> float:
    if text.startswith("[") and text.endswith("]"):
        raise ValueError(f"expected a number, got {text!r}")
    return float(text)


def _num_or_vector(text: str) -> float | tuple[float, ...]:
    if text.startswith("[") and text.endswith("]"):
        return tuple(float(x) for x in text[1:-1].split(";"))
    return float(text)


def parse_tau_prior(spec: "str | TauPrior") -> TauPrior:
    """Read a tau prior from its command-line spelling.

    Parameters
    ----------
    spec : str or TauPrior
        One of ``flat``, ``uniform:UPPER``, ``uniform:0,UPPER``, ``halfnormal:SCALE``,
        ``halfcauchy:SCALE``, ``halft:NU,SCALE``, ``exponential:SCALE``, ``lognormal:MU,SIGMA``,
        ``dumouchel`` (``s0`` from the data via ``bind``) or ``dumouchel:S0``. Names are
        case-insensitive; spaces around the parts are ignored. A prior object is returned
        unchanged.

    Returns
    -------
    TauPrior

    Raises
    ------
    ValueError
        One line naming the bad spec, saying what is wrong, and listing the valid forms.

    Examples
    --------
    >>> parse_tau_prior("halfcauchy:25")
    HalfCauchyTau(scale=25.0)
    >>> parse_tau_prior("uniform:0,10").spec
    'uniform:0,10'
    """
    if isinstance(spec, TauPrior):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"tau prior must be a spec string or a TauPrior, got {type(spec).__name__}")
    name, args = _split(spec)
    n = len(args)

    def bad(why: str) -> ValueError:
        return ValueError(f"invalid tau prior {spec!r}: {why}; valid forms: {TAU_PRIOR_FORMS}")

    arity = {"flat": (0,), "uniform": (1, 2), "halfnormal": (1,), "halfcauchy": (1,), "halft": (2,),
             "exponential": (1,), "lognormal": (2,), "dumouchel": (0, 1)}
    if name not in arity:
        raise bad(f"unknown prior {name!r}")
    if n not in arity[name]:
        want = " or ".join(str(k) for k in arity[name])
        raise bad(f"{name} takes {want} parameter(s), got {n}")
    try:
        x = [_num(a) for a in args]
    except ValueError:
        raise bad("parameters must be numbers") from None
    try:
        if name == "flat":
            return FlatTau()
        if name == "uniform":
            if n == 2 and x[0] != 0.0:
                raise bad(f"the lower end of a uniform prior on tau must be 0, got {args[0]}")
            return UniformTau(x[-1])
        if name == "halfnormal":
            return HalfNormalTau(x[0])
        if name == "halfcauchy":
            return HalfCauchyTau(x[0])
        if name == "halft":
            return HalfStudentTTau(x[0], x[1])
        if name == "exponential":
            return ExponentialTau(x[0])
        if name == "lognormal":
            return LogNormalTau(x[0], x[1])
        return DuMouchelTau(x[0] if n else None)
    except ValueError as err:
        if str(err).startswith("invalid tau prior"):
            raise
        raise bad(str(err)) from None


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
    ValueError
        One line naming the bad spec, saying what is wrong, and listing the valid forms.

    Examples
    --------
    >>> parse_beta_prior("normal:0,4")
    NormalBeta(mean=0.0, sd=4.0)
    """
    if isinstance(spec, BetaPrior):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"beta prior must be a spec string or a BetaPrior, got {type(spec).__name__}")
    name, args = _split(spec)

    def bad(why: str) -> ValueError:
        return ValueError(f"invalid mu/beta prior {spec!r}: {why}; valid forms: {BETA_PRIOR_FORMS}")

    if name == "flat":
        if args:
            raise bad(f"flat takes no parameters, got {len(args)}")
        return FlatBeta()
    if name == "normal":
        if len(args) != 2:
            raise bad(f"normal takes 2 parameters (MEAN,SD), got {len(args)}")
        try:
            mean, sd = (_num_or_vector(a) for a in args)
        except ValueError:
            raise bad("parameters must be numbers") from None
        try:
            return NormalBeta(mean, sd)
        except ValueError as err:
            raise bad(str(err)) from None
    raise bad(f"unknown prior {name!r}")
