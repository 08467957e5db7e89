"""Compile a :class:`~metapool.spec.ModelSpec` into a ``pymc.Model``."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from numpy.typing import ArrayLike

from metapool.data import MetaData
from metapool.models.priors import pymc_beta, pymc_tau
from metapool.spec import ModelSpec, model_spec
from metapool.priors import BetaPrior, TauPrior

__all__ = ["build", "build_from_spec", "data_values", "set_model_data", "Y_DATA", "X_NEW_DATA"]

#: Name of the ``pm.Data`` container holding the observed effects (the observed variable is ``y``).
Y_DATA: str = "y_obs"
#: Name of the ``pm.Data`` container holding the new study's design row.
X_NEW_DATA: str = "x_new"


def data_values(spec: ModelSpec) -> dict[str, np.ndarray]:
    """The model's data containers for ``spec``: ``{Y_DATA: y, "se": se, "X": X, X_NEW_DATA: x_new}``.

    Everything in the model that depends on the data (not on the priors or the
    parameterisation) is one of these, so a model built for one dataset serves any other of
    the same shape after :func:`set_model_data` (and a compiled sampler after
    ``compiled.with_data(**data_values(spec))``).
    """
    data = spec.data
    return {Y_DATA: np.asarray(data.y, dtype=float), "se": np.asarray(data.se, dtype=float),
            "X": np.asarray(data.X, dtype=float), X_NEW_DATA: np.asarray(spec.x_new, dtype=float).reshape(data.p)}


def set_model_data(model: pm.Model, spec: ModelSpec) -> None:
    """Put ``spec``'s data and study / coefficient labels into a model built for the same shape.

    Raises
    ------
    ValueError
        When the model was built for another number of studies or coefficients.
    """
    values = data_values(spec)
    shape = tuple(model["X"].get_value().shape)
    if shape != values["X"].shape:
        raise ValueError(f"the model was built for X of shape {shape}, the data have {values['X'].shape}")
    pm.set_data(values, model=model, coords=spec.coords)


def build_from_spec(spec: ModelSpec) -> pm.Model:
    """Create the PyMC model that ``spec`` describes.

    Parameters
    ----------
    spec : ModelSpec

    Returns
    -------
    pymc.Model
        See :func:`build` for the variables.
    """
    with pm.Model(coords=spec.coords) as model:
        values = data_values(spec)
        y_obs = pm.Data(Y_DATA, values[Y_DATA], dims="study")
        se = pm.Data("se", values["se"], dims="study")
        X = pm.Data("X", values["X"], dims=("study", "coef"))
        x0 = pm.Data(X_NEW_DATA, values[X_NEW_DATA], dims="coef")

        tau = pymc_tau(spec.tau_prior, "tau")
        if spec.location == "mu":
            mu = pymc_beta(spec.beta_prior, "mu")
            coef = pt.atleast_1d(mu)
        else:
            coef = pymc_beta(spec.beta_prior, "beta", dims="coef")
        loc = pt.dot(X, coef)
        loc_new = pt.dot(x0, coef)

        if spec.noncentered:
            z = pm.Normal("z", 0.0, 1.0, dims="study")
            theta = pm.Deterministic("theta", loc + tau * z, dims="study")
            z_new = pm.Normal("z_new", 0.0, 1.0)
            pm.Deterministic("theta_new", loc_new + tau * z_new)
        else:
            theta = pm.Normal("theta", mu=loc, sigma=tau, dims="study")
            pm.Normal("theta_new", mu=loc_new, sigma=tau)

        pm.Normal("y", mu=theta, sigma=se, observed=y_obs, dims="study")
    return model


def build(
    data: MetaData | ModelSpec,
    tau_prior: TauPrior | str | None = None,
    beta_prior: BetaPrior | str | None = None,
    parameterization: str | None = None,
    x_new: ArrayLike | Mapping[str, Any] | None = None,
) -> pm.Model:
    """Build the normal–normal hierarchical meta-analysis model in PyMC.

    Parameters
    ----------
    data : MetaData or ModelSpec
        Effects, standard errors, labels and design matrix; or a whole model description
        (:class:`metapool.spec.ModelSpec`, then leave out the priors and ``x_new``).
    tau_prior : TauPrior or str, optional
        Prior on the between-study sd ``tau``; default :class:`~metapool.priors.FlatTau`
        (``pm.HalfFlat``). Strings are read by :func:`~metapool.priors.parse_tau_prior`
        (``"halfcauchy:25"``). Data-dependent priors are bound with ``tau_prior.bind(data)``.
    beta_prior : BetaPrior or str, optional
        Prior on ``mu`` / every ``beta``; default :class:`~metapool.priors.FlatBeta`
        (``pm.Flat``). Strings as :func:`~metapool.priors.parse_beta_prior`.
    parameterization : {"noncentered", "centered"}, optional
        Default the spec's, or "noncentered". Non-centred ``theta = X beta + tau z`` with ``z ~ N(0, 1)``, or centred
        ``theta ~ N(X beta, tau)``.
    x_new : dict or array_like, shape (p,), optional
        Covariates of the new study whose effect is ``theta_new``: a dict of covariate values
        (``{"ablat": 20}``) or a design row; default ``data.x_mean``.

    Returns
    -------
    pymc.Model
        Coordinates ``study`` (the labels) and ``coef`` (the design column names). Data
        containers ``y_obs`` (the observed effects, dims ``study``), ``se`` (dims ``study``),
        ``X`` (dims ``study, coef``) and ``x_new`` (dims ``coef``), so that one model (and one
        compiled sampler) serves every dataset of the same shape (:func:`set_model_data`);
        ``se`` and ``X`` end up in the ``constant_data`` group. Variables:

        * ``tau`` (scalar), created by ``pymc_tau(tau_prior)``;
        * ``mu`` (scalar) when ``data.intercept_only``, else ``beta`` (dims ``coef``), created
          by ``pymc_beta(beta_prior, name)``;
        * non-centred: free ``z`` (dims ``study``) and ``z_new``; deterministic ``theta``
          (dims ``study``) and ``theta_new``;
        * centred: free ``theta`` (dims ``study``) and ``theta_new``;
        * observed ``y ~ N(theta, se)`` (dims ``study``).

    Notes
    -----
    .. math::
        y_j \\mid \\theta_j \\sim N(\\theta_j, s_j^2), \\quad
        \\theta_j = x_j'\\beta + \\tau z_j, \\quad z_j \\sim N(0, 1)

    (non-centred), or :math:`\\theta_j \\sim N(x_j'\\beta, \\tau^2)` (centred); the new study
    has :math:`\\theta_{new} = x_0'\\beta + \\tau z_{new}`. Flat priors are PyMC's improper
    ``Flat`` / ``HalfFlat``, as in the original analysis; the posterior is then proper when
    ``J - p >= 2``. The non-centred form is the default because the centred one has a funnel
    between ``tau`` and ``theta`` when the studies are noisy, where NUTS diverges and
    overestimates ``tau`` [1]_ [2]_.

    References
    ----------
    .. [1] Betancourt, M. and Girolami, M. (2015). Hamiltonian Monte Carlo for hierarchical
       models. In Current Trends in Bayesian Methodology with Applications, 79-101. CRC Press.
    .. [2] Papaspiliopoulos, O., Roberts, G. O. and Sköld, M. (2007). A general framework for
       the parametrization of hierarchical models. Statistical Science 22(1), 59-73.

    Examples
    --------
    >>> import metapool, metapool.models as mm
    >>> d = metapool.MetaData.from_arrays([28, 8, -3], [15, 10, 16])
    >>> sorted(v.name for v in mm.build(d).free_RVs)
    ['mu', 'tau', 'z', 'z_new']
    """
    return build_from_spec(model_spec(data, tau_prior, beta_prior, parameterization, x_new))
