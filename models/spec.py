"""What the PyMC model is, kept apart from the PyMC code that builds it.

A :class:`ModelSpec` is a small frozen description of one normal–normal hierarchical model:
the data, the two (bound) priors, the parameterisation and the covariates of a new study. It
knows which variables the model has and which of them NUTS samples, so that tests,
summaries and the CLI can ask the description instead of the compiled model
(the split follows bambi's model description / backend design).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from metapool.data import MetaData
from metapool.priors import (
    BetaPrior,
    FlatBeta,
    FlatTau,
    NormalBeta,
    TauPrior,
    parse_beta_prior,
    parse_tau_prior,
)

__all__ = ["ModelSpec", "Parameterization", "PARAMETERIZATIONS", "normalize_parameterization"]

Parameterization = Literal["noncentered", "centered"]
PARAMETERIZATIONS: tuple[str, ...] = ("noncentered", "centered")

_ALIASES = {
    "noncentered": "noncentered",
    "noncentred": "noncentered",
    "nc": "noncentered",
    "centered": "centered",
    "centred": "centered",
    "c": "centered",
}


def normalize_parameterization(parameterization: str) -> Parameterization:
    """Return ``"noncentered"`` or ``"centered"`` for any usual spelling.

    Accepts ``non-centered``, ``non_centred``, ``NC``, ``centred`` and so on (case and
    ``-``/``_``/space insensitive).

    Raises
    ------
    ValueError
        For anything else, listing the valid values.
    """
    if not isinstance(parameterization, str):
        raise TypeError(
            f"parameterization must be a string, got {type(parameterization).__name__}"
        )
    key = parameterization.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    try:
        return _ALIASES[key]  # type: ignore[return-value]
    except KeyError:
        raise ValueError(
            f"unknown parameterization {parameterization!r}; use 'noncentered' or 'centered'"
        ) from None


def _scalar_normal(prior: BetaPrior) -> BetaPrior:
    """A NormalBeta given with length-1 vectors, as a scalar prior (for the scalar ``mu``)."""
    if isinstance(prior, NormalBeta) and (isinstance(prior.loc, tuple) or isinstance(prior.sd, tuple)):
        loc = np.atleast_1d(np.asarray(prior.loc, dtype=float))
        sd = np.atleast_1d(np.asarray(prior.sd, dtype=float))
        if loc.size == 1 and sd.size == 1:
            return NormalBeta(float(loc[0]), float(sd[0]))
    return prior


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """Frozen description of the hierarchical model that :func:`metapool.models.build` compiles.

    Build it with :meth:`create`, which parses prior specs, binds data-dependent priors and
    checks every argument; the constructor itself does no conversion.

    Parameters
    ----------
    data : MetaData
        Effects ``y``, standard errors ``se``, labels and design ``X``.
    tau_prior : TauPrior
        Prior on the between-study sd, already bound to ``data``.
    beta_prior : BetaPrior
        Prior on ``mu`` (intercept-only design) or on every ``beta``.
    parameterization : {"noncentered", "centered"}
        How the study effects are written (see Notes).
    x_new : tuple of float
        Covariate row ``x0`` (length ``p``) of a new study, for ``theta_new``.

    Notes
    -----
    The model is

    .. math::
        y_j \\mid \\theta_j \\sim N(\\theta_j, s_j^2), \\qquad
        \\theta_j \\sim N(x_j'\\beta, \\tau^2), \\qquad
        \\theta_{new} \\sim N(x_0'\\beta, \\tau^2).

    Centred: ``theta`` and ``theta_new`` are free normal variables. Non-centred:
    ``z_j, z_new ~ N(0, 1)`` are the free variables and ``theta = X beta + tau z``,
    ``theta_new = x0' beta + tau z_new`` are deterministic. Both define the same joint
    distribution of ``(tau, beta, theta, theta_new, y)``; they differ only in the geometry NUTS
    sees. When the data are weak relative to ``tau`` the centred form has a funnel
    (the scale of ``theta`` shrinks with ``tau``) that makes HMC diverge and underexplore small
    ``tau``; non-centring removes that dependence [1]_ [2]_.

    References
    ----------
    .. [1] Papaspiliopoulos, O., Roberts, G. O. and Sköld, M. (2007). A general framework for
       the parametrization of hierarchical models. Statistical Science 22(1), 59-73.
    .. [2] Betancourt, M. and Girolami, M. (2015). Hamiltonian Monte Carlo for hierarchical
       models. In Current Trends in Bayesian Methodology with Applications, 79-101. CRC Press.
       arXiv:1312.0906.
    """

    data: MetaData
    tau_prior: TauPrior
    beta_prior: BetaPrior
    parameterization: Parameterization
    x_new: tuple[float, ...]

    @classmethod
    def create(
        cls,
        data: MetaData,
        tau_prior: TauPrior | str | None = None,
        beta_prior: BetaPrior | str | None = None,
        parameterization: str = "noncentered",
        x_new: ArrayLike | None = None,
    ) -> "ModelSpec":
        """Check and normalise the arguments of :func:`metapool.models.build`.

        Parameters
        ----------
        data : MetaData
        tau_prior : TauPrior or str, optional
            Default :class:`~metapool.priors.FlatTau`; a string is read by
            :func:`~metapool.priors.parse_tau_prior`. Bound to ``data`` (DuMouchel's ``s0``).
        beta_prior : BetaPrior or str, optional
            Default :class:`~metapool.priors.FlatBeta`; strings as
            :func:`~metapool.priors.parse_beta_prior`.
        parameterization : str, default "noncentered"
            ``"noncentered"`` or ``"centered"`` (British spellings and hyphens accepted).
        x_new : array_like, shape (p,), optional
            Covariates of a new study; default ``data.x_mean`` (the intercept for an
            intercept-only design). A scalar is accepted when ``p == 1``.

        Returns
        -------
        ModelSpec

        Raises
        ------
        TypeError
            If ``data`` is not a :class:`metapool.MetaData`.
        ValueError
            For an unknown parameterisation, a bad prior spec, a prior whose length does not
            match the design, or an ``x_new`` of the wrong length or with non-finite entries.
        """
        if not isinstance(data, MetaData):
            raise TypeError(
                f"data must be a metapool.MetaData (see MetaData.from_arrays / metapool.read_csv), "
                f"got {type(data).__name__}"
            )
        tau = parse_tau_prior(FlatTau() if tau_prior is None else tau_prior).bind(data)
        beta = parse_beta_prior(FlatBeta() if beta_prior is None else beta_prior)
        if data.intercept_only:
            beta = _scalar_normal(beta)
        beta.mean(data.p)  # raises ValueError if a vector prior does not match the design
        beta.precision(data.p)
        if x_new is None:
            x0 = np.asarray(data.x_mean, dtype=float)
        else:
            x0 = np.atleast_1d(np.asarray(x_new, dtype=float)).ravel()
            if x0.size != data.p:
                raise ValueError(
                    f"x_new has {x0.size} values but the design has p = {data.p} columns "
                    f"{list(data.coef_names)} (give the intercept's 1 too)"
                )
            if not np.all(np.isfinite(x0)):
                raise ValueError(f"x_new must be finite, got {x0.tolist()}")
        return cls(
            data=data,
            tau_prior=tau,
            beta_prior=beta,
            parameterization=normalize_parameterization(parameterization),
            x_new=tuple(float(v) for v in x0),
        )

    # ------------------------------------------------------------------ names
    @property
    def noncentered(self) -> bool:
        """True for the non-centred parameterisation."""
        return self.parameterization == "noncentered"

    @property
    def location(self) -> str:
        """Name of the coefficient variable: ``"mu"`` (intercept-only) or ``"beta"``."""
        return "mu" if self.data.intercept_only else "beta"

    @property
    def coords(self) -> dict[str, tuple[str, ...]]:
        """Model coordinates: ``study`` (labels) and ``coef`` (design column names)."""
        return {"study": tuple(self.data.labels), "coef": tuple(self.data.coef_names)}

    @property
    def free_variables(self) -> tuple[str, ...]:
        """Names of the variables NUTS samples (the model's free random variables)."""
        if self.noncentered:
            return ("tau", self.location, "z", "z_new")
        return ("tau", self.location, "theta", "theta_new")

    @property
    def deterministics(self) -> tuple[str, ...]:
        """Names of the deterministic variables (non-centred only)."""
        return ("theta", "theta_new") if self.noncentered else ()

    @property
    def posterior_variables(self) -> tuple[str, ...]:
        """Every variable in the posterior group of a fit, shared names first."""
        shared = ("tau", self.location, "theta", "theta_new")
        return shared + (("z", "z_new") if self.noncentered else ())

    @property
    def dims(self) -> dict[str, tuple[str, ...]]:
        """Dimensions (besides ``chain``, ``draw``) of every model variable and data container."""
        d: dict[str, tuple[str, ...]] = {
            "tau": (),
            self.location: () if self.location == "mu" else ("coef",),
            "theta": ("study",),
            "theta_new": (),
            "y": ("study",),
            "se": ("study",),
            "X": ("study", "coef"),
        }
        if self.noncentered:
            d.update(z=("study",), z_new=())
        return d

    @property
    def proper(self) -> bool:
        """Whether both priors are proper (needed for prior predictive sampling)."""
        return bool(self.tau_prior.proper and self.beta_prior.proper)

    def describe(self) -> dict[str, object]:
        """Plain-type description for DataTree attrs, JSON and reports."""
        return {
            "model": "normal-normal hierarchical (y ~ N(theta, se^2), theta ~ N(X beta, tau^2))",
            "parameterization": self.parameterization,
            "tau_prior": self.tau_prior.spec,
            "beta_prior": self.beta_prior.spec,
            "location": self.location,
            "x_new": list(self.x_new),
            "n_studies": self.data.J,
            "coef": list(self.data.coef_names),
        }

    def __repr__(self) -> str:
        return (
            f"ModelSpec({self.data!r}, tau_prior={self.tau_prior.spec!r}, "
            f"beta_prior={self.beta_prior.spec!r}, parameterization={self.parameterization!r})"
        )
