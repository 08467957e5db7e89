"""Exact leave-one-study-out: log p(y_j | y_-j) and the predictive of the left-out effect by quadrature.

For every study j the model is refitted without it (:func:`metapool.analytic.fit` on
``data.subset``, the same bound priors), and the predictive of y_j is the mixture over the
refit's tau nodes of N(x_j' beta_hat_-j(tau), s_j^2 + tau^2 + x_j' A_-j^-1 x_j) (docs/MATH.md,
'Leave one study out, exactly'). No draws are involved, so the result carries no Monte Carlo
error. :func:`psis_loo` gives ArviZ's Pareto-smoothed importance-sampling estimate on draws of
the same model for the comparison :func:`compare_psis` tabulates per study.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import special

from metapool import layout
from metapool.data import MetaData
from metapool.errors import InputError
from metapool.spec import ModelSpec
from metapool.analytic import _base as B

__all__ = ["ExactLOO", "StudyPredictive", "loo", "psis_loo", "PsisLOO", "compare_psis", "elpd_se",
           "LOO_COLUMNS", "leave_one_out_spec"]

#: Columns of the per-study table of :class:`ExactLOO`.
LOO_COLUMNS: tuple[str, ...] = ("y", "se", "elpd_loo", "mean", "sd", "q2.5", "q97.5", "pit")


class StudyPredictive(NamedTuple):
    """A left-out study's predictive: a normal mixture with weights w (K,), means m and sds s (K,)."""

    w: np.ndarray
    m: np.ndarray
    s: np.ndarray


def elpd_se(pointwise: np.ndarray) -> float:
    """Standard error of a sum of J pointwise elpd values in ArviZ's / loo's convention.

    Notes
    -----
    se = sqrt(J Var(elpd_i)) with the sample variance (ddof = 1) [1]_ (eq. 23).

    References
    ----------
    .. [1] Vehtari, A., Gelman, A. and Gabry, J. (2017). Practical Bayesian model evaluation
       using leave-one-out cross-validation and WAIC. Statistics and Computing 27, 1413-1432.
    """
    x = np.asarray(pointwise, dtype=float)
    return float(math.sqrt(x.size * np.var(x, ddof=1))) if x.size > 1 else math.nan


@dataclass(frozen=True)
class ExactLOO:
    """Exact leave-one-study-out of one model.

    Attributes
    ----------
    pointwise : pandas.DataFrame
        Index ``study``; columns :data:`LOO_COLUMNS`: the observed effect and its se,
        ``elpd_loo`` = log p(y_j | y_-j), the mean, sd and 2.5 / 97.5 % points of the predictive
        of y_j given the other studies, and ``pit`` = P(y_j^rep <= y_j | y_-j).
    elpd : float
        sum_j log p(y_j | y_-j).
    se : float
        Its standard error, sqrt(J var(elpd_loo)) (ArviZ's convention).
    model : str
        A description of the model (priors).
    """

    pointwise: pd.DataFrame
    elpd: float
    se: float
    model: str

    def __str__(self) -> str:
        head = f"Exact leave-one-study-out ({self.model}): elpd_loo = {self.elpd:.3f} (SE {self.se:.3f})"
        return head + "\n" + self.pointwise.to_string(float_format=lambda v: f"{v:.4g}")


def _table(data: MetaData, preds: list[StudyPredictive]) -> pd.DataFrame:
    rows = []
    for j, pr in enumerate(preds):
        y = float(data.y[j])
        with np.errstate(divide="ignore"):
            lw = np.log(pr.w)
        lp = float(special.logsumexp(lw - 0.5 * ((y - pr.m) / pr.s) ** 2 - np.log(pr.s) - 0.5 * B.LOG_2PI))
        mean = float(pr.w @ pr.m)
        sd = float(math.sqrt(pr.w @ (pr.s**2 + (pr.m - mean) ** 2)))
        m, s = pr.m[:, None], pr.s[:, None]
        lo = float(B.mixture_quantile(0.025, pr.w, m, s)[0])
        hi = float(B.mixture_quantile(0.975, pr.w, m, s)[0])
        pit = float(B.mixture_cdf(np.array([y]), pr.w, m, s)[0])
        rows.append((y, float(data.se[j]), lp, mean, sd, lo, hi, pit))
    index = pd.Index(list(data.labels), name=layout.STUDY)
    return pd.DataFrame(rows, index=index, columns=list(LOO_COLUMNS))


def from_predictives(data: MetaData, preds: list[StudyPredictive], model: str) -> ExactLOO:
    """Assemble an :class:`ExactLOO` from each left-out study's predictive mixture."""
    table = _table(data, preds)
    e = table["elpd_loo"].to_numpy()
    return ExactLOO(table, float(e.sum()), elpd_se(e), model)


def leave_one_out_spec(spec: ModelSpec, j: int) -> ModelSpec:
    """The model without study ``j``: same bound priors and new study; InputError if it is improper.

    Raises
    ------
    InputError
        When the posterior without the study is improper (flat priors need J - 1 - p >= 2) or
        the design without it is rank-deficient, naming the study.
    """
    d = spec.data
    keep = np.ones(d.J, dtype=bool)
    keep[j] = False
    sub = d.subset(keep)
    label = d.labels[j]
    if not spec.beta_prior.proper and np.linalg.matrix_rank(sub.X) < d.p:
        raise InputError(f"leaving out study {label!r} leaves the design rank-deficient (a covariate "
                         "level seen only in that study): with flat coefficient priors it has no "
                         "predictive distribution; use a proper beta prior (normal:MEAN,SD)")
    try:
        return ModelSpec.create(sub, spec.tau_prior, spec.beta_prior, spec.parameterization,
                                np.asarray(spec.x_new))
    except InputError as err:
        raise InputError(f"leaving out study {label!r}: J - p = {sub.J - sub.p} < 2 with the "
                         f"{spec.tau_prior.spec} tau prior and {spec.beta_prior.spec} coefficient prior, "
                         f"so the posterior without it is improper and y[{label}] has no predictive "
                         f"distribution ({err})") from None


def _predictive_hierarchical(post, x: np.ndarray, s2: float) -> StudyPredictive:
    keep = post.weights > 0
    tau, w = post.tau_nodes[keep], post.weights[keep]
    m = post.cond.beta_hat[keep] @ x
    v = s2 + tau**2 + np.einsum("p,kpq,q->k", x, post.cond.beta_cov[keep], x)
    return StudyPredictive(w / w.sum(), m, np.sqrt(v))


def loo(model: Any, *, rtol: float = 1e-8) -> ExactLOO:
    """Exact leave-one-study-out of an exact fit.

    Parameters
    ----------
    model : ExactPosterior, PooledPosterior or NoPoolingPosterior
        A fit from :func:`metapool.analytic.fit`, :func:`metapool.analytic.fit_pooled` or
        :func:`metapool.analytic.fit_unpooled` (those two carry their own closed form).
    rtol : float
        Tolerance of each refit's quadrature.

    Returns
    -------
    ExactLOO

    Raises
    ------
    InputError
        When a study's left-out posterior is improper or its design rank-deficient (naming it).

    Notes
    -----
    p(y_j | y_-j) = int N(y_j | x_j' beta_hat_-j(tau), s_j^2 + tau^2 + x_j' A_-j^-1 x_j)
    p(tau | y_-j) dtau, with p(tau | y_-j) the exact posterior of the data without study j on its
    own converged quadrature rule; the predictive's mean, sd, quantiles and PIT are the same
    mixture's. elpd_loo = sum_j log p(y_j | y_-j); its SE is sqrt(J var_j) as in [1]_.

    References
    ----------
    .. [1] Vehtari, A., Gelman, A. and Gabry, J. (2017). Practical Bayesian model evaluation
       using leave-one-out cross-validation and WAIC. Statistics and Computing 27, 1413-1432.
    """
    if hasattr(model, "loo") and not hasattr(model, "tau_nodes"):
        return model.loo()
    from metapool.analytic.posterior import ExactPosterior, fit

    if not isinstance(model, ExactPosterior):
        raise TypeError(f"loo needs an exact fit (metapool.analytic.fit / fit_pooled / fit_unpooled), "
                        f"got {type(model).__name__}")
    spec, d = model.spec, model.data
    specs = [leave_one_out_spec(spec, j) for j in range(d.J)]  # every error before any work
    preds = []
    for j, sj in enumerate(specs):
        post = fit(sj, rtol=rtol, threads=1)
        preds.append(_predictive_hierarchical(post, d.X[j], float(d.variance[j])))
    return from_predictives(d, preds, f"tau {spec.tau_prior.spec}, beta {spec.beta_prior.spec}")


# --------------------------------------------------------------------------- PSIS beside it
@dataclass(frozen=True)
class PsisLOO:
    """ArviZ's PSIS-LOO on a DataTree's ``log_likelihood`` group.

    Attributes
    ----------
    elpd, se, p_loo : float
    pointwise : pandas.DataFrame
        Index ``study``; columns ``elpd_psis`` and ``pareto_k``.
    elpd_data : object
        ArviZ's ELPDData (for ``arviz.compare``).
    likelihood : str
        ``marginal`` or ``conditional`` (the group's ``likelihood`` attr).
    """

    elpd: float
    se: float
    p_loo: float
    pointwise: pd.DataFrame
    elpd_data: Any
    likelihood: str


def psis_loo(dt) -> PsisLOO:
    """PSIS-LOO (:func:`arviz.loo`, pointwise) of a fit's draws, with per-study Pareto k.

    Parameters
    ----------
    dt : xarray.DataTree
        Draws of either engine with a ``log_likelihood`` group (the study-level likelihood by
        default; see :mod:`metapool.likelihood`).

    Returns
    -------
    PsisLOO

    Notes
    -----
    Importance weights p(y_j | beta, tau)^-1 over posterior draws, Pareto-smoothed [1]_; k < 0.7
    marks a trustworthy estimate.

    References
    ----------
    .. [1] Vehtari, A., Simpson, D., Gelman, A., Yao, Y. and Gabry, J. (2024). Pareto smoothed
       importance sampling. Journal of Machine Learning Research 25(72), 1-58.
    """
    import arviz as az

    if "log_likelihood" not in dt.children:
        raise InputError("the fit has no log_likelihood group: sample with predictive=True")
    res = az.loo(dt, pointwise=True)
    labels = [str(s) for s in dt["log_likelihood"][layout.STUDY].values]
    elpd_i = np.asarray(res.elpd_i).ravel()
    k = np.asarray(res.pareto_k).ravel()
    table = pd.DataFrame({"elpd_psis": elpd_i, "pareto_k": k},
                         index=pd.Index(labels, name=layout.STUDY))
    kind = str(dt["log_likelihood"].attrs.get("likelihood", "conditional"))
    return PsisLOO(float(res.elpd), float(res.se), float(res.p), table, res, kind)


def compare_psis(exact: ExactLOO, psis: PsisLOO) -> pd.DataFrame:
    """Per study: exact log p(y_j | y_-j), the PSIS estimate, their difference and Pareto k.

    Returns
    -------
    pandas.DataFrame
        Index ``study``; columns ``elpd_exact``, ``elpd_psis``, ``diff`` (PSIS minus exact),
        ``pareto_k``, ``k_ok`` (k < 0.7).
    """
    t = pd.DataFrame({"elpd_exact": exact.pointwise["elpd_loo"]})
    t["elpd_psis"] = psis.pointwise["elpd_psis"].reindex(t.index)
    t["diff"] = t["elpd_psis"] - t["elpd_exact"]
    t["pareto_k"] = psis.pointwise["pareto_k"].reindex(t.index)
    t["k_ok"] = t["pareto_k"] < 0.7
    return t
