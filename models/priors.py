"""The PyMC translation of the shared priors (:mod:`metapool.priors`, imported as ``P``).

Each prior class maps to a function that creates the equivalent PyMC variable inside the
current ``pm.Model`` context, the way PyMC maps distributions to ops: :func:`pymc_tau` and
:func:`pymc_beta` are :func:`functools.singledispatch` functions keyed by the prior's class. A
new prior family is added to the engine with ``@pymc_tau.register`` (or ``pymc_beta``); a
class without a translation raises a TypeError naming it.

Parameters go to PyMC as float64 arrays: PyTensor would store exactly representable Python
floats as float32 constants and compute their logs in single precision.
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any, Callable

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.transforms import log as log_transform
from pytensor.tensor.variable import TensorVariable

from metapool import priors as P

__all__ = ["pymc_tau", "pymc_beta"]


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _unregistered(prior: Any, which: str) -> TypeError:
    return TypeError(
        f"no PyMC translation for the {which} prior class {type(prior).__name__}: "
        f"register one with @metapool.models.priors.pymc_{which}.register"
    )


# --------------------------------------------------------------------------- tau


@singledispatch
def pymc_tau(prior: P.TauPrior, name: str = "tau", **kwargs: Any) -> TensorVariable:
    """Create the PyMC variable for the tau prior ``prior`` in the current model.

    Parameters
    ----------
    prior : TauPrior
        A bound prior (:class:`~metapool.priors.DuMouchelTau` needs ``s0``).
    name : str, default "tau"
        The variable's name.
    **kwargs
        Passed on to the PyMC distribution (``dims``, ``initval``, ...).

    Returns
    -------
    TensorVariable
        A free variable on ``[0, upper]``, sampled on an unconstrained (log or interval) scale,
        whose log-density equals ``prior.logpdf``.

    Raises
    ------
    TypeError
        If ``prior``'s class has no registered translation.
    UnboundPriorError
        For a :class:`~metapool.priors.DuMouchelTau` without ``s0``.

    Notes
    -----
    ``FlatTau`` is ``pm.HalfFlat``; ``UniformTau(U)`` is ``pm.Uniform(0, U)``;
    ``HalfNormalTau(s)`` is ``pm.HalfNormal(sigma=s)``; ``HalfCauchyTau(s)`` is
    ``pm.HalfCauchy(beta=s)``; ``HalfStudentTTau(nu, s)`` is ``pm.HalfStudentT(nu, sigma=s)``;
    ``ExponentialTau(s)`` is ``pm.Exponential(scale=s)``; ``LogNormalTau(mu, sigma)`` is
    ``pm.LogNormal(mu, sigma)``; ``DuMouchelTau(s0)`` is a ``pm.CustomDist`` with log-density
    :math:`\\log s_0 - 2 \\log(s_0 + \\tau)` on a log-transformed value.
    """
    raise _unregistered(prior, "tau")


# PyMC distribution and its parameters for each tau family with a built-in PyMC counterpart
_TAU_DISTRIBUTIONS: dict[type, tuple[Any, Callable[[Any], dict[str, float]]]] = {
    P.FlatTau: (pm.HalfFlat, lambda p: {}),
    P.UniformTau: (pm.Uniform, lambda p: {"lower": 0.0, "upper": p.upper}),
    P.HalfNormalTau: (pm.HalfNormal, lambda p: {"sigma": p.scale}),
    P.HalfCauchyTau: (pm.HalfCauchy, lambda p: {"beta": p.scale}),
    P.HalfStudentTTau: (pm.HalfStudentT, lambda p: {"nu": p.nu, "sigma": p.scale}),
    P.ExponentialTau: (pm.Exponential, lambda p: {"scale": p.scale}),
    P.LogNormalTau: (pm.LogNormal, lambda p: {"mu": p.mu, "sigma": p.sigma}),
}


def _builtin(distribution: Any, params: Callable[[Any], dict[str, float]]) -> Callable[..., TensorVariable]:
    def translate(prior: P.TauPrior, name: str = "tau", **kwargs: Any) -> TensorVariable:
        return distribution(name, **{k: _f64(v) for k, v in params(prior).items()}, **kwargs)

    return translate


for _cls, (_distribution, _params) in _TAU_DISTRIBUTIONS.items():
    pymc_tau.register(_cls, _builtin(_distribution, _params))
del _cls, _distribution, _params


def _dumouchel_logp(value, s0):
    log_s0 = pt.log(s0)
    inside = pt.ge(value, 0.0)
    safe = pt.switch(inside, value, 0.0)
    return pt.switch(inside, log_s0 - 2.0 * pt.logaddexp(log_s0, pt.log(safe)), -np.inf)


def _dumouchel_logcdf(value, s0):
    inside = pt.ge(value, 0.0)
    safe = pt.switch(inside, value, 0.0)
    return pt.switch(inside, pt.log(safe) - pt.logaddexp(pt.log(s0), pt.log(safe)), -np.inf)


def _dumouchel_dist(s0, size):
    # tau = s0 u / (1 - u), u ~ U(0, 1): the inverse CDF; its support point is s0 (the median)
    u = pm.Uniform.dist(lower=0.0, upper=1.0, size=size)
    return s0 * u / (1.0 - u)


@pymc_tau.register
def _(prior: P.DuMouchelTau, name: str = "tau", **kwargs: Any) -> TensorVariable:
    s0 = prior.require_s0()
    kwargs.setdefault("default_transform", log_transform)
    return pm.CustomDist(
        name,
        _f64(s0),
        dist=_dumouchel_dist,
        logp=_dumouchel_logp,
        logcdf=_dumouchel_logcdf,
        signature="()->()",
        **kwargs,
    )


# --------------------------------------------------------------------------- beta / mu


@singledispatch
def pymc_beta(prior: P.BetaPrior, name: str, dims: Any = None, shape: Any = None, **kwargs: Any) -> TensorVariable:
    """Create the PyMC variable for the coefficient prior ``prior`` in the current model.

    Parameters
    ----------
    prior : BetaPrior
    name : str
        The variable's name (``"mu"`` or ``"beta"``).
    dims, shape : optional
        As in PyMC (``dims="coef"`` for the meta-regression coefficients).
    **kwargs
        Passed on to the PyMC distribution.

    Returns
    -------
    TensorVariable

    Raises
    ------
    TypeError
        If ``prior``'s class has no registered translation.

    Notes
    -----
    ``FlatBeta`` is ``pm.Flat``; ``NormalBeta(mean, sd)`` is ``pm.Normal(mu=mean, sigma=sd)``
    (vector parameters broadcast against ``dims`` / ``shape``).
    """
    raise _unregistered(prior, "beta")


@pymc_beta.register
def _(prior: P.FlatBeta, name: str, dims: Any = None, shape: Any = None, **kwargs: Any) -> TensorVariable:
    return pm.Flat(name, dims=dims, shape=shape, **kwargs)


@pymc_beta.register
def _(prior: P.NormalBeta, name: str, dims: Any = None, shape: Any = None, **kwargs: Any) -> TensorVariable:
    return pm.Normal(name, mu=_f64(prior.loc), sigma=_f64(prior.sd), dims=dims, shape=shape, **kwargs)
