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
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from metapool.analytic._base import special  # scipy.special, imported when first used

from metapool import layout
from metapool.data import MetaData
from metapool.errors import InputError
from metapool.spec import ModelSpec
from metapool.analytic import _base as B

if TYPE_CHECKING:  # pandas and xarray are imported where they are used: they are slow to import
    import pandas as pd
    import xarray as xr

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
    import pandas as pd

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


# A left-out posterior needs a refit when more than this share of it sits at the full rule's ends.
END_MASS = 1e-12


def _reweighted(post) -> tuple[list[StudyPredictive | None], np.ndarray]:
    """Every study's left-out predictive on the full posterior's nodes (None where a refit is needed).

    p(tau | y_-j) is proportional to p(tau | y) / p(y_j | y_-j, tau), and the downdated normal
    equations give p(y_j | y_-j, tau) = N(y_j | y_j - e_j v_j / (v_j - h_j), v_j^2 / (v_j - h_j)) with
    v_j = s_j^2 + tau^2, h_j = x_j' A^-1 x_j and e_j = y_j - x_j' beta_hat(tau) (Sherman–Morrison).
    """
    d = post.data
    keep = post.weights > 0
    w = post.weights[keep] / post.weights[keep].sum()
    tau = post.tau_nodes[keep]
    bh, cov = post.cond.beta_hat[keep], post.cond.beta_cov[keep]
    v = d.variance[None, :] + (tau**2)[:, None]                      # (K, J)
    h = np.einsum("jp,kpq,jq->kj", d.X, cov, d.X)
    e = d.y[None, :] - bh @ d.X.T
    gap = v - h
    out: list[StudyPredictive | None] = [None] * d.J
    with np.errstate(divide="ignore", invalid="ignore"):
        e_loo = e * v / gap
        var = v * v / gap
        logn = -0.5 * (B.LOG_2PI + np.log(var) + e_loo**2 / var)    # log p(y_j | y_-j, tau_k)
        lw = np.log(w)[:, None] - logn
    ok = np.all(gap > 1e-10 * v, axis=0) & np.all(np.isfinite(lw), axis=0)
    for j in np.flatnonzero(ok):
        wj = np.exp(lw[:, j] - special.logsumexp(lw[:, j]))
        if wj[:2].sum() + wj[-2:].sum() > END_MASS:
            continue                                                 # mass beyond the full rule: refit
        out[j] = StudyPredictive(wj, d.y[j] - e_loo[:, j], np.sqrt(var[:, j]))
    return out, ok


def loo(model: Any, *, rtol: float = 1e-8, method: str = "auto") -> ExactLOO:
    """Exact leave-one-study-out of an exact fit.

    Parameters
    ----------
    model : ExactPosterior, PooledPosterior or NoPoolingPosterior
        A fit from :func:`metapool.analytic.fit`, :func:`metapool.analytic.fit_pooled` or
        :func:`metapool.analytic.fit_unpooled` (those two carry their own closed form).
    rtol : float
        Tolerance of each refit's quadrature.
    method : {"auto", "refit"}
        ``auto`` reweights the full posterior's quadrature rule by 1 / p(y_j | y_-j, tau) (exact
        identity, rank-one downdate) and refits only the studies whose left-out posterior reaches
        the rule's ends; ``refit`` refits the model without every study.

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
    p(tau | y_-j) dtau; the predictive's mean, sd, quantiles and PIT are the same mixture's.
    Reweighting uses p(tau | y_-j) ∝ p(tau | y) / p(y_j | y_-j, tau), so that
    p(y_j | y_-j) = 1 / int p(tau | y) / p(y_j | y_-j, tau) dtau on the full posterior's nodes.
    elpd_loo = sum_j log p(y_j | y_-j); its SE is sqrt(J var_j) as in [1]_.

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
    if method not in ("auto", "refit"):
        raise InputError(f"method must be 'auto' or 'refit', got {method!r}")
    spec, d = model.spec, model.data
    specs = [leave_one_out_spec(spec, j) for j in range(d.J)]  # every error before any work
    preds = _reweighted(model)[0] if method == "auto" else [None] * d.J
    for j, sj in enumerate(specs):
        if preds[j] is None:
            post = fit(sj, rtol=rtol, threads=1)
            preds[j] = _predictive_hierarchical(post, d.X[j], float(d.variance[j]))
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
    import pandas as pd

    if "log_likelihood" not in dt.children:
        raise InputError("the fit has no log_likelihood group: sample with predictive=True")
    ll = dt["log_likelihood"]["y"]
    labels = [str(s) for s in ll[layout.STUDY].values]
    if np.all(np.ptp(ll.values.reshape(-1, ll.sizes[layout.STUDY]), axis=0) == 0):
        res = _constant_loo(ll)          # nothing learnt across studies (no pooling): exact
    else:
        res = az.loo(dt, pointwise=True)
    elpd_i = np.asarray(res.elpd_i).ravel()
    k = np.asarray(res.pareto_k).ravel()
    table = pd.DataFrame({"elpd_psis": elpd_i, "pareto_k": k},
                         index=pd.Index(labels, name=layout.STUDY))
    kind = str(dt["log_likelihood"].attrs.get("likelihood", "conditional"))
    return PsisLOO(float(res.elpd), float(res.se), float(res.p), table, res, kind)


def _constant_loo(ll):
    """ArviZ's ELPDData for a log-likelihood that is the same in every draw: the elpd is that value
    (importance weights are all equal; PSIS cannot fit its tail to constant values)."""
    from arviz_stats.utils import ELPDDataLOO

    vals = ll.isel(chain=0, draw=0).drop_vars(["chain", "draw"], errors="ignore")
    n = int(ll.sizes["chain"] * ll.sizes["draw"])
    res = ELPDDataLOO(elpd=float(vals.sum()), se=elpd_se(vals.values), p=0.0, n_samples=n,
                      n_data_points=int(vals.size), scale="log", warning=False,
                      good_k=min(1 - 1 / math.log10(n), 0.7), elpd_i=vals, pareto_k=xr_zeros(vals))
    return res


def xr_zeros(da):
    """An all-zero copy of a DataArray (Pareto k of equal importance weights)."""
    import xarray as xr

    return xr.zeros_like(da)


def compare_psis(exact: ExactLOO, psis: PsisLOO) -> pd.DataFrame:
    """Per study: exact log p(y_j | y_-j), the PSIS estimate, their difference and Pareto k.

    Returns
    -------
    pandas.DataFrame
        Index ``study``; columns ``elpd_exact``, ``elpd_psis``, ``diff`` (PSIS minus exact),
        ``pareto_k``, ``k_ok`` (k < 0.7).
    """
    import pandas as pd

    t = pd.DataFrame({"elpd_exact": exact.pointwise["elpd_loo"]})
    t["elpd_psis"] = psis.pointwise["elpd_psis"].reindex(t.index)
    t["diff"] = t["elpd_psis"] - t["elpd_exact"]
    t["pareto_k"] = psis.pointwise["pareto_k"].reindex(t.index)
    t["k_ok"] = t["pareto_k"] < 0.7
    return t
