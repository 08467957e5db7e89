"""One description of the model for both engines: data, bound priors, a new study, parameterisation.

:class:`ModelSpec` is created and checked in one place, :meth:`ModelSpec.create`: prior specs
are parsed and bound to the data (DuMouchel's ``s0``), a vector coefficient prior is checked
against the design, the new study's covariates are encoded (a dict of covariate values or a
row), and the posterior is refused when it is improper. ``metapool.analytic.fit``,
``metapool.models.build`` / ``sample`` and ``metapool.validation.compare`` accept a spec, and
build one through :func:`model_spec` when given data and priors, so the rules live here only.
The split of a model description from the code that compiles it follows bambi.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import numpy as np
from numpy.typing import ArrayLike

from metapool import layout
from metapool.data import MetaData
from metapool.errors import InputError
from metapool.priors import BetaPrior, NormalBeta, TauPrior, parse_beta_prior, parse_tau_prior

__all__ = [
    "ModelSpec",
    "model_spec",
    "Parameterization",
    "PARAMETERIZATIONS",
    "normalize_parameterization",
    "tail_exponent",
]

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
    InputError
        For anything else, listing the valid values.
    """
    if not isinstance(parameterization, str):
        raise InputError(f"parameterization must be a string, got {type(parameterization).__name__}")
    key = parameterization.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    try:
        return _ALIASES[key]  # type: ignore[return-value]
    except KeyError:
        raise InputError(
            f"unknown parameterization {parameterization!r}; use 'noncentered' or 'centered'"
        ) from None


def tail_exponent(data: MetaData, tau_prior: TauPrior, beta_prior: BetaPrior) -> float:
    """k such that p(tau | y) ~ tau^-k as tau -> infinity.

    Notes
    -----
    With a flat tau prior and flat coefficients, p(tau | y) ~ tau^-(J - p) (docs/MATH.md,
    'Tail'); a prior with tail tau^-a adds a; a proper coefficient prior replaces J - p by J;
    a bounded prior makes k infinite.
    """
    if math.isfinite(tau_prior.upper):
        return math.inf
    p_flat = 0 if beta_prior.proper else data.p
    return (data.J - p_flat) + tau_prior.tail_exponent


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
    """Frozen description of one normal–normal hierarchical model, for either engine.

    Build it with :meth:`create` (or :func:`model_spec`), which parses prior specs, binds
    data-dependent priors, encodes the new study and refuses an improper posterior; the
    constructor itself does no checking.

    Parameters
    ----------
    data : MetaData
        Effects ``y``, standard errors ``se``, labels and design ``X``.
    tau_prior : TauPrior
        Prior on the between-study sd, already bound to ``data``.
    beta_prior : BetaPrior
        Prior on ``mu`` (intercept-only design) or on every ``beta``.
    parameterization : {"noncentered", "centered"}
        How the PyMC engine writes the study effects (see Notes); the exact engine ignores it.
    x_new : tuple of float
        Covariate row ``x0`` (length ``p``) of a new study, for ``theta_new``.
    x_new_values : tuple of (str, value) pairs, optional
        The raw covariate values ``x_new`` was encoded from, when given as a dict (for the
        tables' description of the new study, :meth:`new_study_text`).

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

    The posterior is proper iff p(tau | y) ~ tau^-k with k > 1 (:func:`tail_exponent`); with
    flat priors on tau and the p coefficients that is J - p >= 2, and the posterior mean and sd
    of tau exist iff k > 2 and k > 3.

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
    x_new_values: tuple[tuple[str, Any], ...] | None = None

    @classmethod
    def create(
        cls,
        data: MetaData,
        tau_prior: TauPrior | str | None = None,
        beta_prior: BetaPrior | str | None = None,
        parameterization: str = "noncentered",
        x_new: ArrayLike | Mapping[str, Any] | None = None,
    ) -> "ModelSpec":
        """Check and normalise the description of a model.

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
        x_new : dict or array_like, optional
            Covariates of a new study: a dict of covariate values (``{"ablat": 20}``, encoded
            by the data's formula as the studies were) or a design row of length ``p``. Default
            ``data.design_row(None)``: the mean row of the design (the intercept for an
            intercept-only design), or, when the formula has categorical covariates, numeric
            covariates at their mean and categorical ones at their reference level.

        Returns
        -------
        ModelSpec

        Raises
        ------
        TypeError
            If ``data`` is not a :class:`metapool.MetaData`.
        InputError
            For an unknown parameterisation, a bad prior spec, a prior whose length does not
            match the design, a bad ``x_new``, or an improper posterior.
        """
        if not isinstance(data, MetaData):
            raise TypeError(
                f"data must be a metapool.MetaData (see MetaData.from_arrays / metapool.read_csv), "
                f"got {type(data).__name__}"
            )
        tau = parse_tau_prior(tau_prior if tau_prior is not None else "flat").bind(data)
        beta = parse_beta_prior(beta_prior if beta_prior is not None else "flat")
        if data.intercept_only:
            beta = _scalar_normal(beta)
        beta.mean(data.p)  # raises if a vector prior does not match the design
        beta.precision(data.p)
        spec = cls(
            data=data,
            tau_prior=tau,
            beta_prior=beta,
            parameterization=normalize_parameterization(parameterization),
            x_new=tuple(float(v) for v in data.design_row(x_new)),
            x_new_values=tuple(x_new.items()) if isinstance(x_new, Mapping) else None,
        )
        spec.check_proper()
        return spec

    # ------------------------------------------------------------------ the posterior's tails
    @property
    def tail_exponent(self) -> float:
        """k such that p(tau | y) ~ tau^-k as tau -> infinity (inf for bounded priors)."""
        return tail_exponent(self.data, self.tau_prior, self.beta_prior)

    def check_proper(self) -> float:
        """Raise :class:`~metapool.errors.InputError` if the posterior is improper; return k."""
        k = self.tail_exponent
        if k > 1:
            return k
        d = self.data
        coefs = (f"flat priors on the {d.p} coefficient(s)" if not self.beta_prior.proper
                 else "this prior")
        raise InputError(
            f"the posterior is improper: with the {self.tau_prior.spec} prior on tau and {coefs}, "
            f"p(tau | y) decays like tau^-{k:g} and does not integrate (a flat tau prior with flat "
            f"coefficients needs J - p >= 2; here J = {d.J}, p = {d.p}). Use a proper tau prior "
            "(e.g. halfnormal:SCALE) or more studies."
        )

    def moments_exist(self, kind: str) -> tuple[bool, bool]:
        """Whether the posterior mean and sd of a group of parameters exist.

        ``kind`` is ``"tau"``, ``"beta"``, ``"theta"``, ``"theta_new"`` or ``"y_pred"``. The mean
        of tau (and theta_new, and flat-prior coefficients) needs k > 2, the sd k > 3; theta_j
        and y_pred_j always have both (their conditional variance is bounded in tau).
        """
        k = self.tail_exponent
        heavy = (k > 2, k > 3)
        if kind in ("tau", "theta_new"):
            return heavy
        if kind == "beta":
            return (True, True) if self.beta_prior.proper else heavy
        return (True, True)

    # ------------------------------------------------------------------ names
    @property
    def noncentered(self) -> bool:
        """True for the non-centred parameterisation."""
        return self.parameterization == "noncentered"

    @property
    def location(self) -> str:
        """Name of the coefficient variable: ``"mu"`` (intercept-only) or ``"beta"``."""
        return layout.location_name(self.data)

    @property
    def coords(self) -> dict[str, tuple[str, ...]]:
        """Model coordinates: ``study`` (labels) and ``coef`` (design column names)."""
        return layout.data_coords(self.data)

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
        """Every variable in the posterior group of a NUTS fit, shared names first."""
        shared = ("tau", self.location, "theta", "theta_new")
        return shared + (("z", "z_new") if self.noncentered else ())

    @property
    def dims(self) -> dict[str, tuple[str, ...]]:
        """Dimensions (besides ``chain``, ``draw``) of every model variable and data container."""
        d = layout.variable_dims(self.data)
        if self.noncentered:
            d.update(z=(layout.STUDY,), z_new=())
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

    def new_study_text(self) -> str:
        """The new study's covariates in words: ``ablat = 33.46, alloc = alternate (reference level)``."""
        from metapool.frames import describe_new_study

        values = dict(self.x_new_values) if self.x_new_values is not None else None
        return describe_new_study(self.data, self.x_new, values)

    def __repr__(self) -> str:
        return (
            f"ModelSpec({self.data!r}, tau_prior={self.tau_prior.spec!r}, "
            f"beta_prior={self.beta_prior.spec!r}, parameterization={self.parameterization!r})"
        )


def model_spec(
    data: "MetaData | ModelSpec",
    tau_prior: TauPrior | str | None = None,
    beta_prior: BetaPrior | str | None = None,
    parameterization: str | None = None,
    x_new: ArrayLike | Mapping[str, Any] | None = None,
) -> ModelSpec:
    """The spec every engine entry point works from: ``data`` itself when it is a spec, else a new one.

    Parameters
    ----------
    data : MetaData or ModelSpec
    tau_prior, beta_prior, parameterization, x_new
        As :meth:`ModelSpec.create`. With a spec, they must be left out, except
        ``parameterization``, which replaces the spec's (NUTS only).

    Returns
    -------
    ModelSpec

    Raises
    ------
    InputError
        Priors or ``x_new`` given together with a spec (the spec already fixes them).
    """
    if isinstance(data, ModelSpec):
        given = [n for n, v in (("tau_prior", tau_prior), ("beta_prior", beta_prior), ("x_new", x_new))
                 if v is not None]
        if given:
            raise InputError(f"{', '.join(given)} given together with a ModelSpec, which already fixes "
                             "them: create the spec with them instead")
        if parameterization is None or normalize_parameterization(parameterization) == data.parameterization:
            return data
        from dataclasses import replace

        return replace(data, parameterization=normalize_parameterization(parameterization))
    return ModelSpec.create(data, tau_prior, beta_prior, parameterization or "noncentered", x_new)
