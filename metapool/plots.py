"""Figures of a meta-analysis from either engine (matplotlib; ArviZ's kernel density estimates).

Every figure takes a *fit*: an :class:`~metapool.analytic.ExactPosterior` (the exact engine:
curves and exact intervals) or an ``xarray.DataTree`` of draws in the shared layout (NUTS, or
the exact engine's independent draws: kernel density estimates, histograms and sample
quantiles). They return the matplotlib Axes (or Figure) they drew on.

* :func:`plot_tau_density`: tau's posterior density, its prior (dashed) and the 95 % shortest
  interval; a second fit's density overlaid (exact against NUTS).
* :func:`plot_shrinkage`: E[theta_j | tau, y] +- 1 sd against tau with tau's posterior
  underneath (Gelman et al. BDA3 Fig. 5.6); :func:`plot_conditional_means` is its top panel alone.
* :func:`plot_forest`: observed effects and shrunken study effects, the pooled effect and the
  prediction interval of a new study; ratio axis for log-scale measures.
* :func:`plot_funnel`: contour-enhanced funnel plot.
* :func:`plot_predictive`: the posterior predictive of one study's effect (the original's histogram).
* :func:`plot_regression`: meta-regression bubble plot with credible and prediction bands.
* :func:`plot_compare_densities`: exact densities against NUTS kernel density estimates.
* :func:`plot_sbc_ranks`, :func:`plot_ecdf_difference`: simulation-based calibration.
* :func:`plot_pareto_k`, :func:`plot_loo_pit`: leave-one-out diagnostics from arrays.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from metapool import layout
from metapool.errors import InputError

__all__ = [
    "plot_model_comparison",
    "plot_tau_density",
    "plot_conditional_means",
    "plot_shrinkage",
    "plot_forest",
    "plot_funnel",
    "plot_predictive",
    "plot_regression",
    "plot_compare_densities",
    "plot_sbc_ranks",
    "plot_ecdf_difference",
    "plot_pareto_k",
    "plot_loo_pit",
    "exact_density",
    "tau_hdi",
    "linear_predictor",
    "FOREST_SORTS",
]

_EXACT_COLOR = "C0"
_NUTS_COLOR = "C1"
_OBS_COLOR = "0.15"
#: Orders of :func:`plot_forest` besides a covariate's name.
FOREST_SORTS: tuple[str, ...] = ("effect", "precision", "label", "data")


def _axes(ax, size=(6.4, 4.2)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)[1]


# ----------------------------------------------------------------------------- either engine
@dataclass(frozen=True)
class _Fit:
    """A fit seen through what the figures need: the data and either the exact posterior or draws."""

    data: Any
    exact: Any = None
    draws: Any = None

    @property
    def kind(self) -> str:
        return "exact" if self.exact is not None else "draws"

    @functools.cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        """The draws under their flat names (computed once per figure)."""
        return layout.flat_draw_arrays(self.draws)

    def flat(self, name: str) -> np.ndarray:
        arrays = self.arrays
        if name not in arrays:
            raise InputError(f"the draws have no {name!r}; they have {', '.join(list(arrays)[:6])} ...")
        return arrays[name].ravel()

    def tau_prior(self) -> Any:
        if self.exact is not None:
            return self.exact.tau_prior
        spec = self.draws["posterior"].attrs.get("tau_prior")
        if not spec:
            return None
        from metapool.priors import parse_tau_prior

        try:
            return parse_tau_prior(str(spec)).bind(self.data)
        except ValueError:
            return None

    def interval(self, name: str, prob: float = 0.95) -> tuple[float, float, float]:
        """Mean and equal-tailed ``prob`` interval of one flat parameter."""
        a = (1.0 - prob) / 2.0
        if self.exact is not None:
            lo, hi = np.asarray(self.exact.quantile(name, [a, 1.0 - a]), dtype=float)
            return float(self.exact.mean(name)), float(lo), float(hi)
        d = self.flat(name)
        lo, hi = np.quantile(d, [a, 1.0 - a])
        return float(d.mean()), float(lo), float(hi)


def _data_of_tree(dt: Any) -> Any:
    from metapool.data import MetaData

    try:
        y = dt["observed_data"]["y"]
        const = dt["constant_data"]
    except KeyError:
        raise InputError("the DataTree needs 'observed_data' (y) and 'constant_data' (se, X) groups, "
                         "as metapool.models.sample and ExactPosterior.sample write them") from None
    return MetaData.from_arrays(np.asarray(y.values, dtype=float), np.asarray(const["se"].values, dtype=float),
                                labels=[str(s) for s in y[layout.STUDY].values],
                                X=np.asarray(const["X"].values, dtype=float),
                                coef_names=[str(c) for c in const["X"][layout.COEF].values])


def _as_fit(fit: Any, data: Any = None) -> _Fit:
    """An exact posterior or a DataTree of draws as a :class:`_Fit`; anything else is an InputError."""
    if isinstance(fit, _Fit):
        return fit
    if hasattr(fit, "tau_pdf") and hasattr(fit, "conditional_theta"):
        return _Fit(data if data is not None else fit.data, exact=fit)
    import xarray as xr

    if isinstance(fit, xr.DataTree):
        if "posterior" not in fit.children:
            raise InputError("the DataTree has no 'posterior' group")
        return _Fit(data if data is not None else _data_of_tree(fit), draws=fit)
    raise InputError(f"expected an exact posterior (metapool.analytic.fit) or a DataTree of draws "
                     f"(metapool.models.sample, ExactPosterior.sample); got {type(fit).__name__}")


def _shortest(draws: np.ndarray, prob: float) -> tuple[float, float]:
    """Shortest interval holding ``prob`` of the draws (the sample HDI)."""
    s = np.sort(np.asarray(draws, dtype=float).ravel())
    n = s.size
    k = max(1, int(math.ceil(prob * n)))
    widths = s[k - 1:] - s[: n - k + 1]
    i = int(np.argmin(widths))
    return float(s[i]), float(s[i + k - 1])


def _kde(draws: np.ndarray, bounded: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """ArviZ's kernel density estimate (``arviz_stats``), boundary-corrected at the sample's ends when ``bounded``."""
    from arviz_stats.base import array_stats

    flat = np.asarray(draws, dtype=float).ravel()
    grid, pdf, _ = array_stats.kde(flat, axis=-1, bound_correction=bounded)
    return np.asarray(grid), np.asarray(pdf)


def _kde_line(ax: Any, draws: np.ndarray, bounded: bool, label: str = "NUTS (kernel density)",
              color: str = _NUTS_COLOR) -> Any:
    grid, pdf = _kde(draws, bounded)
    return ax.plot(grid, pdf, color=color, lw=1.5, label=label)[0]


# ----------------------------------------------------------------------------- exact quantities
def tau_hdi(post: Any, prob: float = 0.95) -> tuple[float, float]:
    """Shortest interval holding ``prob`` of tau's posterior: exact for an exact posterior, the
    sample HDI for a DataTree of draws."""
    f = _as_fit(post)
    if f.exact is not None:
        return f.exact.tau_hdi(prob)
    return _shortest(f.flat("tau"), prob)


def _scale(post: Any, parameter: str) -> float:
    lo, hi = np.asarray(post.quantile(parameter, [0.025, 0.975]), dtype=float)
    return max(float(hi - lo) / 4.0, np.finfo(float).tiny)


def exact_density(post: Any, parameter: str, x: ArrayLike) -> np.ndarray:
    """Exact posterior density of one scalar parameter.

    Parameters
    ----------
    post : ExactPosterior
    parameter : str
        A flat name: ``tau``, ``mu``, ``beta[NAME]``, ``theta[LABEL]``, ``theta_new``,
        ``y_pred[LABEL]``.
    x : array_like
        Points.

    Returns
    -------
    ndarray
        ``post.tau_pdf(x)`` for tau; otherwise the central difference
        (F(x + h) - F(x - h)) / 2h of the exact mixture CDF ``post.cdf`` with h = 1e-4 of the
        parameter's posterior scale (truncation error O(h^2), far below plotting resolution).
    """
    if not hasattr(post, "cdf"):
        raise InputError("exact_density needs the exact engine's posterior (metapool.analytic.fit); "
                         "for draws use a kernel density estimate")
    x = np.asarray(x, dtype=float)
    if parameter == "tau":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(post.tau_pdf(x), dtype=float).reshape(x.shape)
    h = 1e-4 * _scale(post, parameter)
    return (post.cdf(parameter, x + h) - post.cdf(parameter, x - h)) / (2.0 * h)


def _grid(post: Any, parameter: str, tail: float = 5e-4, n: int = 600) -> np.ndarray:
    if parameter == "tau":
        upper = float(post.tau_quantile(1.0 - 2 * tail))
        return np.linspace(0.0, upper, n)
    lo, hi = np.asarray(post.quantile(parameter, [tail, 1.0 - tail]), dtype=float)
    return np.linspace(lo, hi, n)


def _mixture_quantiles(w: np.ndarray, m: np.ndarray, s: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Quantiles of the mixtures sum_k w_k N(m_kg, s_kg^2), one per column g: array (len(qs), G).

    Bisection on the mixture CDF (60 halvings of the bracket [min m - 10 max s, max m + 10 max s]).
    """
    lo0 = (m - 10.0 * s).min(axis=0)
    hi0 = (m + 10.0 * s).max(axis=0)
    out = []
    for q in qs:
        lo, hi = lo0.copy(), hi0.copy()
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            cdf = w @ stats.norm.cdf((mid[None, :] - m) / s)
            below = cdf < q
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        out.append(0.5 * (lo + hi))
    return np.array(out)


def linear_predictor(fit: Any, X_new: ArrayLike, prob: float = 0.95, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Posterior mean, credible and prediction intervals of x' beta at rows of ``X_new``.

    Parameters
    ----------
    fit : ExactPosterior or xarray.DataTree
    X_new : array_like, shape (G, p)
        Covariate rows (with the intercept column), in the design's coefficient order.
    prob : float, default 0.95
    seed : int, default 0
        Seed of the normal draws that turn draws of (beta, tau) into predictions (draws only).

    Returns
    -------
    dict of str to ndarray (G,)
        ``mean``, ``lower``, ``upper`` (credible interval of x' beta) and ``pred_lower``,
        ``pred_upper`` (prediction interval of a new study's theta = x' beta + tau e).

    Notes
    -----
    Exact engine: given tau, x' beta ~ N(x' beta_hat(tau), x' A(tau)^-1 x) (docs/MATH.md), so
    x' beta | y is the mixture over the quadrature nodes sum_k w_k N(x' beta_hat_k, x' A_k^-1 x)
    and theta_new | y the same mixture with tau_k^2 added to each variance; the quantiles are
    solved on the mixture CDF. Draws: sample quantiles of x' beta^(s) and of
    x' beta^(s) + tau^(s) e^(s), e ~ N(0, 1), one e per draw shared by all rows.
    """
    f = _as_fit(fit)
    Xn = np.atleast_2d(np.asarray(X_new, dtype=float))
    if Xn.shape[1] != f.data.p:
        raise InputError(f"X_new has {Xn.shape[1]} columns; the design has {f.data.p} ({', '.join(f.data.coef_names)})")
    a = (1.0 - prob) / 2.0
    if f.exact is not None:
        post = f.exact
        w = np.asarray(post.weights, dtype=float)
        m = post.cond.beta_hat @ Xn.T                                      # (K, G)
        v = np.einsum("gp,kpq,gq->kg", Xn, post.cond.beta_cov, Xn)
        s = np.sqrt(np.maximum(v, 1e-300))
        sp = np.sqrt(v + np.asarray(post.tau_nodes, dtype=float)[:, None] ** 2)
        lo, hi = _mixture_quantiles(w, m, s, (a, 1.0 - a))
        plo, phi = _mixture_quantiles(w, m, sp, (a, 1.0 - a))
        return {"mean": w @ m, "lower": lo, "upper": hi, "pred_lower": plo, "pred_upper": phi}
    post = f.draws["posterior"]
    name = layout.location_name(f.data)
    beta = np.asarray(post[name].values, dtype=float).reshape(-1, f.data.p)   # (S, p)
    tau = np.asarray(post["tau"].values, dtype=float).ravel()
    lin = beta @ Xn.T                                                           # (S, G)
    # one normal per draw, shared by every row (common random numbers: smooth bands, same marginals)
    pred = lin + tau[:, None] * np.random.default_rng(seed).standard_normal((lin.shape[0], 1))
    lo, hi = np.quantile(lin, [a, 1.0 - a], axis=0)
    plo, phi = np.quantile(pred, [a, 1.0 - a], axis=0)
    return {"mean": lin.mean(axis=0), "lower": lo, "upper": hi, "pred_lower": plo, "pred_upper": phi}


# ----------------------------------------------------------------------------- tau
def _tau_curve(f: _Fit, n: int) -> tuple[np.ndarray, np.ndarray]:
    """tau's posterior density: the exact curve from 0 to the 99.9 % quantile, or a boundary-corrected KDE."""
    if f.exact is not None:
        t = _grid(f.exact, "tau", n=n)
        return t, exact_density(f.exact, "tau", t)
    return _kde(f.flat("tau"), bounded=True)


def _density_at(x: np.ndarray, grid: np.ndarray, pdf: np.ndarray) -> np.ndarray:
    return np.interp(x, grid, pdf, left=0.0, right=0.0)


def _prior_line(ax: Any, prior: Any, t: np.ndarray) -> Any:
    """The tau prior's density over ``t`` (dashed); an improper or unbounded-flat prior is drawn
    normalised over the plotted range and says so in its label."""
    if prior is None:
        return None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        dens = np.exp(np.asarray(prior.logpdf(t), dtype=float))
    label = f"prior ({prior.spec})"
    if not prior.proper:
        area = np.trapezoid(dens, t)
        if not np.isfinite(area) or area <= 0:
            return None
        dens = dens / area
        label = f"prior ({prior.spec}, improper: scaled to the plotted range)"
    return ax.plot(t, dens, color="0.35", ls="--", lw=1.2, label=label)[0]


def plot_tau_density(fit: Any, other: Any = None, *, ax: Any = None, prob: float = 0.95, n: int = 500,
                     prior: bool = True) -> Any:
    """Posterior density of tau with its prior (dashed) and the shortest ``prob`` interval shaded.

    Parameters
    ----------
    fit : ExactPosterior or xarray.DataTree
        The exact engine gives the exact density and interval; draws give ArviZ's
        boundary-corrected kernel density estimate and the sample's shortest interval.
    other : ExactPosterior or xarray.DataTree, optional
        A second fit of the same model whose density is overlaid (NUTS against the exact curve).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when None.
    prob : float, default 0.95
        Probability of the shaded shortest interval.
    n : int, default 500
        Grid points of the exact curve (0 to tau's 99.9 % quantile).
    prior : bool, default True
        Overlay the tau prior (dashed). An improper prior (the flat default) is drawn normalised
        over the plotted range.

    Returns
    -------
    matplotlib.axes.Axes
        Its first line is ``fit``'s density (x: tau, y: density), then the posterior median
        (dotted vertical), the prior (dashed) and ``other``'s density; the one shaded region is
        the interval.

    Notes
    -----
    The shortest interval [a, b] solves F(b) - F(a) = prob with p(a) = p(b) (or a = 0 when the
    density decreases from 0); for draws it is the narrowest window holding ceil(prob S) draws.
    """
    f = _as_fit(fit)
    own = ax is None
    ax = _axes(ax)
    t, dens = _tau_curve(f, n)
    color = _EXACT_COLOR if f.kind == "exact" else _NUTS_COLOR
    name = "exact posterior density" if f.kind == "exact" else "posterior (kernel density of draws)"
    ax.plot(t, dens, color=color, lw=2, label=name)
    lo, hi = tau_hdi(f.exact if f.exact is not None else f.draws, prob)
    ts = np.linspace(lo, hi, 200)
    fill = exact_density(f.exact, "tau", ts) if f.exact is not None else _density_at(ts, t, dens)
    ax.fill_between(ts, fill, color=color, alpha=0.25,
                    label=f"{100 * prob:g}% shortest interval [{lo:.3g}, {hi:.3g}]")
    med = float(f.exact.tau_quantile(0.5)) if f.exact is not None else float(np.median(f.flat("tau")))
    ax.axvline(med, color="k", ls=":", lw=1, label=f"median {med:.3g}")
    upper = float(t[-1]) if f.kind == "exact" else float(np.quantile(f.flat("tau"), 0.999))
    if prior:
        _prior_line(ax, f.tau_prior(), np.linspace(0.0, upper, 400))
    if other is not None:
        g = _as_fit(other)
        t2, d2 = _tau_curve(g, n)
        label = "exact posterior density" if g.kind == "exact" else "NUTS (kernel density)"
        ax.plot(t2, d2, color=_EXACT_COLOR if g.kind == "exact" else _NUTS_COLOR, lw=1.5,
                ls="-" if g.kind == "exact" else "-.", label=label)
    ax.set(xlabel="tau (between-study sd)", ylabel="density", title="Posterior density of tau",
           xlim=(0.0, upper))
    ax.set_ylim(bottom=0.0, top=1.12 * float(np.nanmax(dens)))
    if own:   # its own figure: the legend to the right of the curves
        ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:     # a panel among others: inside, over the thin right tail
        ax.legend(frameon=True, framealpha=0.85, fontsize="x-small", loc="upper right")
    return ax


# ----------------------------------------------------------------------------- shrinkage
def _study_labels(data: Any, studies: Sequence[Any] | None) -> list[str]:
    labels = list(data.labels)
    if studies is None:
        return labels
    out = []
    for s in studies:
        if isinstance(s, (int, np.integer)) and not isinstance(s, bool) and str(s) not in labels:
            if not 0 <= int(s) < len(labels):
                raise KeyError(f"unknown study {s!r}: positions run 0..{len(labels) - 1}")
            out.append(labels[int(s)])
        elif str(s) in labels:
            out.append(str(s))
        else:
            raise KeyError(f"unknown study {s!r}; studies are {labels[:5]}{' ...' if len(labels) > 5 else ''}")
    return out


def _conditional_curves(f: _Fit, idx: list[int], n: int, bins: int = 16):
    """tau grid and E[theta_j | tau, y], sd[theta_j | tau, y] at it, columns ``idx``.

    Exact: the closed form on a grid over tau's central 99 %. Draws: means and sds of the theta
    draws within ``bins`` equal-count bins of the tau draws (x: each bin's median tau).
    """
    if f.exact is not None:
        lo, hi = np.asarray(f.exact.tau_quantile([0.005, 0.995]), dtype=float)
        t = np.linspace(lo, hi, n)
        mean, sd = f.exact.conditional_theta(t)
        return t, mean[:, idx], sd[:, idx]
    tau = f.flat("tau")
    theta = np.column_stack([f.flat(f"theta[{f.data.labels[j]}]") for j in idx])
    order = np.argsort(tau)
    groups = np.array_split(order, min(bins, max(2, tau.size // 50)))
    t = np.array([np.median(tau[g]) for g in groups])
    mean = np.array([theta[g].mean(axis=0) for g in groups])
    sd = np.array([theta[g].std(axis=0, ddof=1) for g in groups])
    return t, mean, sd


def _spread(y: np.ndarray, gap: float) -> np.ndarray:
    """Move sorted label positions apart to at least ``gap``, keeping their mean order."""
    order = np.argsort(y)
    ys = y[order].astype(float).copy()
    for i in range(1, ys.size):
        ys[i] = max(ys[i], ys[i - 1] + gap)
    shift = (ys - y[order]).mean()
    ys -= shift
    out = np.empty_like(ys)
    out[order] = ys
    return out


def _extremes(values: np.ndarray, k: int) -> list[int]:
    """Positions of the ``k`` lowest and ``k`` highest values (all when there are at most 2k + 2)."""
    if values.size <= 2 * k + 2:
        return list(range(values.size))
    order = np.argsort(values)
    return sorted(set(order[:k].tolist()) | set(order[-k:].tolist()))


def _draw_conditional(ax: Any, f: _Fit, labels: list[str], n: int, bands: bool, n_labels: int) -> list[str]:
    idx = [list(f.data.labels).index(s) for s in labels]
    t, mean, sd = _conditional_curves(f, idx, n)
    few = len(idx) <= 2 * n_labels + 2
    named = _extremes(mean[-1], n_labels)
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    rank = np.argsort(np.argsort(mean[-1]))
    for c, lab in enumerate(labels):
        col = cmap(0.05 + 0.85 * rank[c] / max(1, len(labels) - 1)) if not few else f"C{c % 10}"
        strong = c in named
        ax.plot(t, mean[:, c], lw=1.6 if (few or strong) else 0.7, alpha=1.0 if (few or strong) else 0.55,
                color=col, label=lab)
        if bands:
            ax.fill_between(t, mean[:, c] - sd[:, c], mean[:, c] + sd[:, c], color=col,
                            alpha=0.10 if few else 0.035, lw=0)
    lo, hi = ax.get_ylim()
    ys = _spread(mean[-1, named], 0.045 * (hi - lo))
    from matplotlib.transforms import offset_copy

    shifted = offset_copy(ax.transData, fig=ax.figure, x=4, y=0, units="points")
    for c, yv in zip(named, ys):
        ax.text(t[-1], yv, labels[c], transform=shifted, fontsize="x-small", va="center", clip_on=False)
    ax.set_xlim(t[0], t[-1])
    return [labels[c] for c in named]


def plot_conditional_means(post: Any, studies: Sequence[Any] | None = None, ax: Any = None,
                           n: int = 200, bands: bool = False, n_labels: int = 3) -> Any:
    """E[theta_j | tau, y] against tau over the central 99 % of tau's posterior.

    Parameters
    ----------
    post : ExactPosterior or xarray.DataTree
        Exact: closed-form curves. Draws: the theta draws' means within equal-count bins of tau.
    studies : sequence of str or int, optional
        Study labels (or 0-based positions); default every study.
    ax : matplotlib.axes.Axes, optional
    n : int, default 200
        Grid points between tau's 0.5 % and 99.5 % quantiles (exact).
    bands : bool, default False
        Shade +- 1 conditional sd around each curve.
    n_labels : int, default 3
        With more than 2 n_labels + 2 studies only the ``n_labels`` highest and lowest curves
        (at the largest tau) are drawn strong and labelled; otherwise all are.

    Returns
    -------
    matplotlib.axes.Axes
        One line per study, in the order of ``studies`` (x: tau, y: conditional mean), labelled
        with the study; the labelled studies' names at the right end of their curves.

    Notes
    -----
    E[theta_j | tau, y] = w_j y_j + (1 - w_j) x_j' beta_hat(tau), w_j = tau^2 / (tau^2 + s_j^2)
    (beta integrated out): every curve starts near the pooled estimate at small tau and moves
    towards its own y_j as tau grows, the shrinkage the original analysis describes.

    References
    ----------
    Gelman, Carlin, Stern, Dunson, Vehtari & Rubin (2013), Bayesian Data Analysis, 3rd ed.,
    Fig. 5.6.
    """
    f = _as_fit(post)
    ax = _axes(ax)
    labels = _study_labels(f.data, studies)
    _draw_conditional(ax, f, labels, n, bands, n_labels)
    ax.set(xlabel="tau", ylabel="E[theta_j | tau, y]", title="Conditional posterior means of the study effects")
    return ax


def plot_shrinkage(fit: Any, studies: Sequence[Any] | None = None, *, n: int = 200, n_labels: int = 3,
                   figsize: tuple[float, float] | None = None) -> Any:
    """Shrinkage: E[theta_j | tau, y] +- 1 sd against tau for every study, tau's posterior underneath.

    Parameters
    ----------
    fit : ExactPosterior or xarray.DataTree
    studies : sequence of str or int, optional
        Default every study.
    n : int, default 200
        Grid points over tau's central 99 % (exact engine).
    n_labels : int, default 3
        Studies labelled at each end (the most extreme conditional means at the largest tau).
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure
        Two Axes sharing x: the curves (one line per study, +- 1 sd bands) on top and tau's
        posterior density below.

    Notes
    -----
    See :func:`plot_conditional_means` for the curves: at tau -> 0 every study is pooled to
    x_j' beta_hat(0); as tau grows each moves to its own y_j (no pooling).

    References
    ----------
    Gelman et al. (2013), Bayesian Data Analysis, 3rd ed., Fig. 5.6.
    """
    import matplotlib.pyplot as plt

    f = _as_fit(fit)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=figsize or (7.0, 6.4),
                                      gridspec_kw={"height_ratios": [3, 1.1], "hspace": 0.08})
    labels = _study_labels(f.data, studies)
    _draw_conditional(top, f, labels, n, True, n_labels)
    top.set(ylabel="E[theta_j | tau, y]  (+- 1 sd)",
            title=f"Shrinkage of the {len(labels)} study effects as tau grows")
    t, dens = _tau_curve(f, 400)
    bottom.plot(t, dens, color=_EXACT_COLOR if f.kind == "exact" else _NUTS_COLOR, lw=1.5)
    bottom.fill_between(t, dens, alpha=0.2, color=_EXACT_COLOR if f.kind == "exact" else _NUTS_COLOR)
    bottom.set(xlabel="tau (between-study sd)", ylabel="p(tau | y)")
    bottom.set_ylim(bottom=0.0)
    lo, hi = top.get_xlim()
    top.set_xlim(lo, hi)
    fig.subplots_adjust(right=0.82)
    return fig


# ----------------------------------------------------------------------------- forest
def _log_measure(measure: str | None) -> bool:
    from metapool import effects

    return measure is not None and effects.is_log_scale(measure)


def _sort_order(data: Any, sort: str | None) -> np.ndarray:
    """Row order of the studies, top to bottom."""
    if sort is None or sort == "data":
        return np.arange(data.J)
    if sort == "effect":
        return np.argsort(-np.asarray(data.y), kind="stable")
    if sort == "precision":
        return np.argsort(np.asarray(data.se), kind="stable")
    if sort == "label":
        return np.argsort(np.asarray(data.labels, dtype=str), kind="stable")
    if sort in data.coef_names:
        return np.argsort(data.X[:, list(data.coef_names).index(sort)], kind="stable")
    cov = getattr(data, "covariates", None)
    if cov is not None and sort in getattr(cov, "columns", ()):
        return np.argsort(np.asarray(cov[sort]), kind="stable")
    raise InputError(f"sort={sort!r}: choose one of {', '.join(FOREST_SORTS)} or a covariate "
                     f"({', '.join(data.coef_names[1:]) or 'none in this design'})")


def _pooled_row(f: _Fit, prob: float) -> tuple[str, float, float, float]:
    """Label, mean and interval of the pooled effect (mu, or x' beta at the new study's covariates
    for the exact engine, at the mean covariate row for draws)."""
    if f.data.intercept_only:
        return ("pooled effect mu", *f.interval("mu", prob))
    if f.exact is not None:
        x, name = f.exact.x_new, "mean effect at x_new"
    else:   # draws do not record x_new: the mean covariate row
        x, name = f.data.x_mean, "mean effect at mean x"
    lp = linear_predictor(f, np.asarray(x, dtype=float)[None, :], prob)
    return (name, float(lp["mean"][0]), float(lp["lower"][0]), float(lp["upper"][0]))


def plot_forest(fit: Any, *, sort: str | None = "effect", prob: float = 0.95, ax: Any = None,
                measure: str | None = None, shrunken: bool = True, title: str | None = None) -> Any:
    """Forest plot: observed y_j +- 1.96 s_j, shrunken theta_j, the pooled effect and a new study.

    Parameters
    ----------
    fit : ExactPosterior or xarray.DataTree
    sort : {"effect", "precision", "label", "data"} or str, default "effect"
        Row order: by observed effect (largest on top), by precision (most precise on top), by
        label, as in the data, or by a covariate (a design column or a covariate table column).
    prob : float, default 0.95
        Probability of the posterior intervals (equal-tailed).
    ax : matplotlib.axes.Axes, optional
        Default a new figure whose height grows with the number of studies.
    measure : str, optional
        Effect measure; default the data's (``data.measure``). For log-scale measures (``OR``,
        ``RR``) the axis shows the back-transformed ratio on a log axis.
    shrunken : bool, default True
        Draw the posterior intervals of theta_j beside the observed ones.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
        y ticks: the J study labels (top to bottom in ``sort`` order), then the pooled row and
        the prediction row (``new study (prediction)``). Lines ``observed`` (J error bars),
        ``shrunken`` (J), the pooled diamond is the one polygon patch.

    Notes
    -----
    Observed: y_j +- z_{0.975} s_j. Shrunken: the posterior interval of theta_j. Pooled: mu
    (x_new' beta for a meta-regression). Prediction: the interval of theta_new, a new study's
    true effect, which adds tau to the pooled uncertainty.
    """
    from metapool import effects

    f = _as_fit(fit)
    d = f.data
    measure = measure if measure is not None else getattr(d, "measure", None)
    back = effects.back_transform(measure) if measure is not None else None
    tr = back if back is not None else (lambda v: v)
    order = _sort_order(d, sort)
    J = d.J
    height = 1.6 + 0.24 * (J + 3)
    ax = _axes(ax, size=(7.2, height))
    z = stats.norm.ppf(0.5 + prob / 2.0)
    ypos = np.arange(J + 2, 2, -1, dtype=float)          # studies at J+2 .. 3; pooled 1; prediction 0
    off = 0.17 if shrunken else 0.0
    y = np.asarray(d.y)[order]
    se = np.asarray(d.se)[order]
    w = 1.0 / se ** 2
    size = 3.0 + 7.0 * np.sqrt(w / w.max())
    for k in range(J):
        ax.plot(tr(np.array([y[k] - z * se[k], y[k] + z * se[k]])), [ypos[k] + off] * 2, color=_OBS_COLOR, lw=1.1,
                label="observed y_j +- 1.96 s_j" if k == 0 else None)
    ax.scatter(tr(y), ypos + off, s=size ** 2, marker="s", color=_OBS_COLOR, zorder=3)
    if shrunken:
        for k, j in enumerate(order):
            m, lo, hi = f.interval(f"theta[{d.labels[j]}]", prob)
            ax.plot(tr(np.array([lo, hi])), [ypos[k] - off] * 2, color=_EXACT_COLOR if f.kind == "exact" else _NUTS_COLOR,
                    lw=1.6, label=f"shrunken theta_j ({100 * prob:g}% interval)" if k == 0 else None)
            ax.plot([tr(m)], [ypos[k] - off], "o", ms=3.5, color=_EXACT_COLOR if f.kind == "exact" else _NUTS_COLOR)
    name, m, lo, hi = _pooled_row(f, prob)
    from matplotlib.patches import Polygon

    ax.add_patch(Polygon([(tr(lo), 1.0), (tr(m), 1.28), (tr(hi), 1.0), (tr(m), 0.72)], closed=True,
                         color="black", label=f"{name} ({100 * prob:g}%)"))
    pm, plo, phi = f.interval("theta_new", prob)
    ax.plot(tr(np.array([plo, phi])), [0.0, 0.0], color="firebrick", lw=2.5,
            label=f"prediction for a new study ({100 * prob:g}%)")
    ax.plot([tr(pm)], [0.0], "|", ms=9, color="firebrick")
    ax.axvline(tr(0.0), color="0.6", lw=0.8, ls=":")
    ax.axvline(tr(m), color="0.3", lw=0.8, ls="--")
    ax.axhline(2.0, color="0.8", lw=0.8)
    ticks = list(ypos) + [1.0, 0.0]
    ax.set_yticks(ticks, [str(d.labels[j]) for j in order] + [name, "new study (prediction)"],
                  fontsize="small" if J <= 30 else "x-small")
    ax.set_ylim(-0.8, J + 2.8)
    if back is not None:
        from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:.3g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"{effects.ratio_name(measure) or measure} (log scale)")
    else:
        ax.set_xlabel(f"effect{f' ({measure})' if measure else ''}")
    ax.set_title(title or f"{d.name or 'data'} (J = {J}): {'exact posterior' if f.kind == 'exact' else 'posterior draws'}")
    fig = ax.figure
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, frameon=False, fontsize="x-small", loc="lower center", ncol=2)
    fig.subplots_adjust(left=0.28, bottom=1.15 / fig.get_figheight(), top=1.0 - 0.45 / fig.get_figheight())
    return ax


# ----------------------------------------------------------------------------- funnel
def plot_funnel(fit: Any, *, ax: Any = None, levels: Sequence[float] = (0.10, 0.05, 0.01)) -> Any:
    """Contour-enhanced funnel plot: effect against standard error, the pooled-effect funnel.

    Parameters
    ----------
    fit : ExactPosterior or xarray.DataTree
        Supplies the data and the pooled effect (posterior mean of mu).
    ax : matplotlib.axes.Axes, optional
    levels : sequence of float, default (0.10, 0.05, 0.01)
        Two-sided significance levels whose regions (|y| / s > z_{1-a/2}) are shaded, darker
        for smaller a.

    Returns
    -------
    matplotlib.axes.Axes
        The y axis (standard error) is inverted, 0 at the top. Lines: the pooled effect
        (vertical) and its funnel mu +- 1.96 s (two dashed lines); one scatter of the J studies.

    Raises
    ------
    InputError
        For a meta-regression (the funnel needs one pooled effect).

    References
    ----------
    Peters, Sutton, Jones, Abrams & Rushton (2008), J. Clin. Epidemiol. 61:991-996.
    """
    f = _as_fit(fit)
    d = f.data
    if not d.intercept_only:
        raise InputError("plot_funnel needs an intercept-only model (one pooled effect); use plot_regression "
                         "for a meta-regression")
    ax = _axes(ax)
    mu = f.interval("mu")[0]
    se_max = 1.08 * float(np.max(d.se))
    s = np.linspace(0.0, se_max, 200)
    span = 1.08 * max(float(np.max(np.abs(d.y))), float(np.abs(mu) + 1.96 * se_max))
    levels = sorted(levels, reverse=True)
    shades = np.linspace(0.88, 0.6, len(levels))
    for i, (a, g) in enumerate(zip(levels, shades)):
        zc = stats.norm.ppf(1.0 - a / 2.0)
        name = f"{levels[i + 1]:g} < p < {a:g}" if i + 1 < len(levels) else f"p < {a:g}"
        for sign in (1, -1):
            ax.fill_betweenx(s, sign * zc * s, sign * span * 1.1, color=str(g), lw=0,
                             label=name if sign == 1 else None)
    ax.plot([mu, mu], [0, se_max], color="k", lw=1, label=f"pooled effect {mu:.3g}")
    ax.plot(mu - 1.96 * s, s, "k--", lw=0.9, label="pooled +- 1.96 se")
    ax.plot(mu + 1.96 * s, s, "k--", lw=0.9)
    ax.scatter(d.y, d.se, s=22, color=_EXACT_COLOR, edgecolor="k", lw=0.5, zorder=3, label="studies")
    ax.set(xlim=(-span, span), ylim=(se_max, 0.0), xlabel="effect y_j", ylabel="standard error s_j",
           title=f"Contour-enhanced funnel plot: {d.name or 'data'} (J = {d.J})")
    ax.legend(frameon=False, fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


# ----------------------------------------------------------------------------- predictive
def plot_predictive(post: Any, study: Any, ax: Any = None, n: int = 600, bins: int = 40) -> Any:
    """Posterior predictive of one study's observed effect, with its mean and 2.5 / 97.5 % quantiles.

    Parameters
    ----------
    post : ExactPosterior or xarray.DataTree
        Exact: the predictive density as a curve. Draws: a histogram of ``y_pred[LABEL]``
        (the ``posterior_predictive`` group), as the original analysis drew it.
    study : str or int
        Study label (or 0-based position); the original analysis used its third study.
    ax : matplotlib.axes.Axes, optional
    n : int, default 600
        Grid points between the 0.05 % and 99.95 % quantiles (exact).
    bins : int, default 40
        Histogram bins (draws).

    Returns
    -------
    matplotlib.axes.Axes
        Exact: first line the density of ``y_pred[LABEL]``. Then vertical lines at its mean
        (red, dashed), its 2.5 % and 97.5 % quantiles (green, dashed), as in the original's
        histogram, and the observed y_j (black, dotted).
    """
    f = _as_fit(post)
    own = ax is None
    ax = _axes(ax)
    label = _study_labels(f.data, [study])[0]
    name = f"y_pred[{label}]"
    if f.exact is not None:
        x = _grid(f.exact, name, n=n)
        ax.plot(x, exact_density(f.exact, name, x), color=_EXACT_COLOR, lw=2, label="exact predictive density")
        mean = f.exact.mean(name)
        q_lo, q_hi = np.asarray(f.exact.quantile(name, [0.025, 0.975]), dtype=float)
    else:
        draws = f.flat(name)
        ax.hist(draws, bins=bins, density=True, color="tab:blue", edgecolor="k", lw=0.4, alpha=0.8,
                label=f"{draws.size} predictive draws")
        mean = float(draws.mean())
        q_lo, q_hi = np.quantile(draws, [0.025, 0.975])
    ax.axvline(mean, color="red", ls="--", lw=1.2, label=f"mean {mean:.3g}")
    ax.axvline(q_lo, color="green", ls="--", lw=1.2, label=f"2.5% {q_lo:.3g}")
    ax.axvline(q_hi, color="green", ls="--", lw=1.2, label=f"97.5% {q_hi:.3g}")
    y_obs = float(f.data.y[list(f.data.labels).index(label)])
    ax.axvline(y_obs, color="k", ls=":", lw=1, label=f"observed {y_obs:.3g}")
    ax.set(xlabel=f"effect of study {label}", ylabel="density", title=f"Posterior predictive: {name}")
    ax.set_ylim(bottom=0.0, top=1.3 * ax.get_ylim()[1])
    if own:
        ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(frameon=True, framealpha=0.85, fontsize="x-small", loc="upper left", ncol=2)
    return ax


# ----------------------------------------------------------------------------- regression
def plot_regression(fit: Any, covariate: str | None = None, *, ax: Any = None, prob: float = 0.95,
                    n: int = 80, seed: int = 0) -> Any:
    """Meta-regression bubble plot: effects against a covariate, area by precision, fitted line and bands.

    Parameters
    ----------
    fit : ExactPosterior or xarray.DataTree
        A meta-regression (design with more than the intercept).
    covariate : str, optional
        Design column on the x axis; default the first after the intercept. The other columns
        are held at their means over the studies.
    ax : matplotlib.axes.Axes, optional
    prob : float, default 0.95
        Probability of both bands.
    n : int, default 80
        Grid points over the covariate's range (+- 5 %).
    seed : int, default 0
        Seed of the prediction draws (draws only; see :func:`linear_predictor`).

    Returns
    -------
    matplotlib.axes.Axes
        One scatter (the J studies, marker area proportional to 1 / s_j^2), the line
        ``posterior mean of x' beta``, and two shaded bands: the credible band of x' beta
        (darker) and the prediction band of a new study's theta (lighter).

    Raises
    ------
    InputError
        An intercept-only design or an unknown covariate.

    Notes
    -----
    See :func:`linear_predictor`: credible band of x' beta | y, prediction band of
    x' beta + tau e, both exact mixtures over tau for the exact engine.
    """
    f = _as_fit(fit)
    d = f.data
    if d.intercept_only:
        raise InputError("plot_regression needs a meta-regression (covariates); this design has only the intercept")
    names = list(d.coef_names)
    cols = [c for c in names if c != "Intercept"]
    covariate = covariate or cols[0]
    if covariate not in names or covariate == "Intercept":
        raise InputError(f"covariate={covariate!r}: choose one of {', '.join(cols)}")
    c = names.index(covariate)
    xj = d.X[:, c]
    pad = 0.05 * (xj.max() - xj.min() or 1.0)
    grid = np.linspace(xj.min() - pad, xj.max() + pad, n)
    Xg = np.tile(d.x_mean, (n, 1))
    Xg[:, c] = grid
    lp = linear_predictor(f, Xg, prob, seed=seed)
    ax = _axes(ax)
    color = _EXACT_COLOR if f.kind == "exact" else _NUTS_COLOR
    ax.fill_between(grid, lp["pred_lower"], lp["pred_upper"], color=color, alpha=0.12, lw=0,
                    label=f"{100 * prob:g}% prediction band (new study)")
    ax.fill_between(grid, lp["lower"], lp["upper"], color=color, alpha=0.3, lw=0,
                    label=f"{100 * prob:g}% credible band of x'beta")
    ax.plot(grid, lp["mean"], color=color, lw=2, label="posterior mean of x'beta")
    w = 1.0 / d.se ** 2
    ax.scatter(xj, d.y, s=30 + 470 * w / w.max(), facecolor="none", edgecolor="k", lw=0.9,
               label="studies (area ~ precision)")
    ax.axhline(0.0, color="0.6", lw=0.8, ls=":")
    others = [n_ for n_ in cols if n_ != covariate]
    note = f" ({', '.join(others)} at their means)" if others else ""
    measure = getattr(d, "measure", None)
    ax.set(xlabel=covariate, ylabel=f"effect{f' (log {measure})' if _log_measure(measure) else ''}",
           title=f"Meta-regression on {covariate}{note}")
    ax.legend(frameon=False, fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


# ----------------------------------------------------------------------------- validation overlay
def _nuts_flat(nuts_dt: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    flat = layout.flat_draw_arrays(nuts_dt)
    missing = [v for v in names if v not in flat]
    if missing:
        raise KeyError(f"the NUTS draws have no {missing}; they have {list(flat)[:6]} ...")
    return {v: flat[v] for v in names}


def _overlay_exact(ax: Any, post: Any, name: str, draws: np.ndarray) -> None:
    x = _grid(post, name, tail=1e-3, n=400)
    if name == "tau":
        x = np.linspace(0.0, max(x[-1], float(np.max(draws))), 400)
    ax.plot(x, exact_density(post, name, x), color=_EXACT_COLOR, lw=2, label="exact")
    lo, hi = np.asarray(post.quantile(name, [0.005, 0.995]) if name != "tau"
                        else post.tau_quantile([0.005, 0.995]), dtype=float)
    if name == "tau":
        lo = 0.0
    ax.set_xlim(lo, hi)
    ax.set_xlabel(name)
    ax.set_ylabel("density")
    ax.set_ylim(bottom=0.0)


def plot_compare_densities(post: Any, nuts_dt: Any, var_names: Sequence[str] = ("tau", "mu"),
                           ax: Any = None) -> Any:
    """Exact posterior densities against the NUTS kernel density estimates.

    Parameters
    ----------
    post : ExactPosterior
    nuts_dt : xarray.DataTree
        Draws in the shared layout (``metapool.models.sample``).
    var_names : sequence of str, default ("tau", "mu")
        Flat parameter names; use ``("tau", "beta[Intercept]", "beta[ablat]")`` for a
        meta-regression.
    ax : sequence of matplotlib.axes.Axes, optional
        One Axes per name. When None, ArviZ's :func:`arviz_plots.plot_dist` draws the NUTS
        densities on a new figure; otherwise the ArviZ kernel density estimate
        (``arviz_stats``) is drawn on the given axes.

    Returns
    -------
    matplotlib.figure.Figure
        In each panel the NUTS density (orange) and a line labelled ``exact`` (blue), x cut to
        the exact 0.5-99.5 % quantiles (0 for tau), y labelled ``density``; one legend below
        the panels.
    """
    if not hasattr(post, "cdf"):
        raise InputError("plot_compare_densities needs the exact posterior as its first argument "
                         "(metapool.analytic.fit); it draws the exact curves")
    names = list(var_names)
    draws = _nuts_flat(nuts_dt, names)
    if ax is None:
        axes = _arviz_panels(draws)
    else:
        axes = list(np.atleast_1d(ax))
        if len(axes) != len(names):
            raise ValueError(f"need one Axes per variable ({len(names)}), got {len(axes)}")
        for a, n in zip(axes, names):
            _kde_line(a, draws[n], bounded=(n == "tau"))
    for a, n in zip(axes, names):
        _overlay_exact(a, post, n, draws[n])
        a.set_title(n, fontsize="medium")
        leg = a.get_legend()
        if leg is not None:
            leg.remove()
    fig = axes[0].figure
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, fontsize="small")
    fig.suptitle("Exact posterior against NUTS draws", fontsize="medium")
    fig.subplots_adjust(top=0.84, bottom=0.26, wspace=0.3)
    return fig


def _arviz_panels(draws: dict[str, np.ndarray]) -> list[Any]:
    import arviz_plots as azp
    import xarray as xr

    ds = xr.Dataset({n: (("chain", "draw"), v) for n, v in draws.items()})
    pc = azp.plot_dist(
        ds, kind="kde", backend="matplotlib",
        visuals={"point_estimate": False, "point_estimate_text": False, "credible_interval": False,
                 "remove_axis": False},
    )
    axes = [pc.viz["plot"][n].item() for n in draws]
    for a, n in zip(axes, draws):
        line = pc.viz["dist"][n].item()
        line.set_color(_NUTS_COLOR)
        line.set_label("NUTS (kernel density)")
    fig = axes[0].figure
    fig.set_size_inches(4.2 * len(axes), 3.8)
    return axes


# ----------------------------------------------------------------------------- calibration
def _panels(n: int, width: float = 3.2, height: float = 2.6):
    import matplotlib.pyplot as plt

    cols = min(n, 3)
    rows = int(math.ceil(n / cols))
    fig, axs = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.6), squeeze=False)
    for a in axs.ravel()[n:]:
        a.set_visible(False)
    return fig, list(axs.ravel()[:n])


def _sbc_columns(result: Any, parameters: Sequence[str] | None, limit: int = 6) -> list[str]:
    names = list(result.parameters)
    if parameters is None:
        return names[:limit]
    bad = [p for p in parameters if p not in names]
    if bad:
        raise InputError(f"parameters {bad} are not in the SBC result ({', '.join(names[:6])} ...)")
    return list(parameters)


def _ecdf_diff(ax: Any, u: np.ndarray, level: float, color: str = _EXACT_COLOR) -> None:
    """ECDF of ``u`` minus the uniform CDF, with a pointwise ``level`` band +- z sqrt(z (1 - z) / n)
    (the normal approximation of the binomial ECDF count under uniformity)."""
    n = u.size
    z = np.linspace(0.0, 1.0, 201)
    ecdf = np.searchsorted(np.sort(u), z, side="right") / n
    half = stats.norm.ppf(0.5 + level / 2.0) * np.sqrt(z * (1.0 - z) / n)
    ax.fill_between(z, -half, half, color="0.85", lw=0, label=f"{100 * level:g}% pointwise band (uniform)")
    ax.plot(z, ecdf - z, color=color, lw=1.4, label="ECDF - uniform CDF")
    ax.axhline(0.0, color="0.5", lw=0.7)
    ax.set_xlim(0.0, 1.0)


def plot_sbc_ranks(result: Any, parameters: Sequence[str] | None = None, *, bins: int | None = None,
                   level: float = 0.99) -> Any:
    """Rank histograms of a simulation-based calibration (:func:`metapool.validation.sbc`).

    Parameters
    ----------
    result : SBCResult
    parameters : sequence of str, optional
        Flat names; default the first six (tau, the coefficients, the first thetas).
    bins : int, optional
        Histogram bins over the ranks 0..L; default the largest divisor of L + 1 that is at
        most 20 (equal bins), and at most n_reps / 5.
    level : float, default 0.99
        The grey band holds each bin's count with this probability under uniform ranks
        (binomial(n_reps, 1 / bins) quantiles).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per parameter: a histogram of the ranks and the band.

    References
    ----------
    Talts, Betancourt, Simpson, Vehtari & Gelman (2018), arXiv:1804.06788.
    """
    cols = _sbc_columns(result, parameters)
    L = int(result.n_draws)
    n = int(result.n_reps)
    if bins is None:
        cap = max(2, min(20, n // 5))
        bins = max(b for b in range(1, cap + 1) if (L + 1) % b == 0) if L + 1 > 1 else 1
    fig, axes = _panels(len(cols))
    edges = np.linspace(-0.5, L + 0.5, bins + 1)
    a = (1.0 - level) / 2.0
    lo, hi = stats.binom.ppf([a, 1.0 - a], n, 1.0 / bins)
    for ax, name in zip(axes, cols):
        r = result.ranks[:, list(result.parameters).index(name)]
        ax.axhspan(lo, hi, color="0.85", lw=0, label=f"{100 * level:g}% band (uniform)")
        ax.axhline(n / bins, color="0.5", lw=0.8)
        ax.hist(r, bins=edges, color=_EXACT_COLOR, edgecolor="white", lw=0.5, label="ranks")
        ax.set(title=name, xlabel=f"rank of the truth among {L} draws", ylabel="replications")
        ax.set_xlim(edges[0], edges[-1])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False, fontsize="small")
    fig.suptitle(f"SBC rank histograms ({result.engine} engine, {n} replications)", fontsize="medium")
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return fig


def plot_ecdf_difference(result: Any, parameters: Sequence[str] | None = None, *, level: float = 0.99) -> Any:
    """ECDF-difference plots of SBC ranks: ECDF of (rank + U) / (L + 1) minus the uniform CDF.

    Parameters
    ----------
    result : SBCResult
    parameters : sequence of str, optional
        Default the first six.
    level : float, default 0.99
        Pointwise band of the ECDF under uniform ranks (normal approximation).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per parameter with the band and the ECDF difference line.

    Notes
    -----
    Ranks r in 0..L are spread to u = (r + 0.5) / (L + 1); under calibration u is uniform on
    (0, 1) up to the rank grid, so ECDF(z) - z stays inside the band for most z. A curve above
    the band at mid z means too many low ranks: the posterior sits above the truth.

    References
    ----------
    Säilynoja, Bürkner & Vehtari (2022), Statistics and Computing 32:32.
    """
    cols = _sbc_columns(result, parameters)
    L = int(result.n_draws)
    fig, axes = _panels(len(cols))
    for ax, name in zip(axes, cols):
        r = result.ranks[:, list(result.parameters).index(name)]
        _ecdf_diff(ax, (np.asarray(r, dtype=float) + 0.5) / (L + 1), level)
        ax.set(title=name, xlabel="fractional rank", ylabel="ECDF difference")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False, fontsize="small")
    fig.suptitle(f"SBC ECDF differences ({result.engine} engine, {result.n_reps} replications)", fontsize="medium")
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return fig


# ----------------------------------------------------------------------------- leave-one-out
def plot_pareto_k(k: ArrayLike, labels: Sequence[str] | None = None, *, ax: Any = None,
                  n_draws: int | None = None, n_labels: int = 5) -> Any:
    """Pareto k of the PSIS leave-one-out weights, one point per study.

    Parameters
    ----------
    k : array_like (J,)
        Pareto shape estimates (``arviz_stats.loo(...).pareto_k``).
    labels : sequence of str, optional
        Study labels (x ticks when J <= 30; otherwise the ``n_labels`` largest k are annotated).
    ax : matplotlib.axes.Axes, optional
    n_draws : int, optional
        Posterior draws S; the threshold is min(1 - 1 / log10(S), 0.7) (0.7 when not given).
    n_labels : int, default 5

    Returns
    -------
    matplotlib.axes.Axes
        One scatter; horizontal lines at the threshold and at 1.

    References
    ----------
    Vehtari, Simpson, Gelman, Yao & Gabry (2024), JMLR 25(72):1-58.
    """
    k = np.asarray(k, dtype=float).ravel()
    labels = [str(s) for s in (labels if labels is not None else range(1, k.size + 1))]
    if len(labels) != k.size:
        raise InputError(f"labels has {len(labels)} entries for {k.size} Pareto k values")
    thr = 0.7 if n_draws is None else min(1.0 - 1.0 / math.log10(n_draws), 0.7)
    ax = _axes(ax)
    x = np.arange(k.size)
    bad = k > thr
    ax.scatter(x, k, c=np.where(bad, "firebrick", _EXACT_COLOR), s=24, zorder=3)
    ax.axhline(thr, color="firebrick", ls="--", lw=1, label=f"threshold {thr:.2f}")
    ax.axhline(1.0, color="k", ls=":", lw=1, label="k = 1")
    if k.size <= 30:
        ax.set_xticks(x, labels, rotation=60 if k.size > 10 else 0, ha="right" if k.size > 10 else "center",
                      fontsize="small")
    else:
        for i in np.argsort(k)[-n_labels:]:
            ax.annotate(labels[i], (x[i], k[i]), xytext=(3, 3), textcoords="offset points", fontsize="x-small")
        ax.set_xlabel("study (data order)")
    ax.set(ylabel="Pareto k", title=f"PSIS-LOO Pareto k ({int(bad.sum())} of {k.size} above {thr:.2f})")
    ax.set_ylim(min(-0.1, float(np.nanmin(k)) - 0.05), max(1.1, float(np.nanmax(k)) + 0.1))
    ax.legend(frameon=False, fontsize="x-small")
    return ax


def plot_loo_pit(pit: ArrayLike, *, ax: Any = None, level: float = 0.99) -> Any:
    """LOO-PIT values against uniformity: ECDF difference with a pointwise band.

    Parameters
    ----------
    pit : array_like (J,)
        Leave-one-out probability integral transforms P(y_rep_j <= y_j | y_-j).
    ax : matplotlib.axes.Axes, optional
    level : float, default 0.99

    Returns
    -------
    matplotlib.axes.Axes
        The band (one shaded region) and the line ``ECDF - uniform CDF``.

    Notes
    -----
    With a well-calibrated model the PIT values are close to uniform; an S shape below then
    above zero means the predictive distributions are too wide, the opposite too narrow.
    """
    u = np.asarray(pit, dtype=float).ravel()
    if u.size == 0 or np.any(~np.isfinite(u)) or np.any((u < 0) | (u > 1)):
        raise InputError("pit must be finite values in [0, 1]")
    ax = _axes(ax)
    _ecdf_diff(ax, u, level)
    ax.set(xlabel="LOO-PIT", ylabel="ECDF difference", title=f"LOO-PIT of {u.size} studies")
    ax.legend(frameon=False, fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    return ax


def plot_model_comparison(table: Any, ax: Any = None) -> Any:
    """Expected log predictive density of each compared model with +-2 standard errors.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`metapool.compare_models`'s table (index: model names); the exact ``elpd_exact`` /
        ``se_exact`` columns when present, else PSIS's ``elpd`` / ``se``.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    import numpy as np

    exact = "elpd_exact" in table.columns and np.isfinite(table["elpd_exact"].astype(float)).any()
    col, se = ("elpd_exact", "se_exact") if exact else ("elpd", "se")
    t = table.sort_values(col, ascending=True)
    ax = _axes(ax)
    y = np.arange(len(t))
    ax.errorbar(t[col].astype(float), y, xerr=2 * t[se].astype(float), fmt="o", color=_EXACT_COLOR, capsize=3,
                label="exact" if exact else "PSIS-LOO")
    if exact and "elpd" in t.columns:
        ax.plot(t["elpd"].astype(float), y + 0.15, "s", color=_NUTS_COLOR, label="PSIS-LOO")
    ax.set_ylim(-0.6, len(t) - 0.4)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_yticks(y, [str(n) for n in t.index])
    ax.set_xlabel("elpd (leave one study out)" + (", exact" if exact else ", PSIS-LOO") + "  +- 2 se")
    ax.set_title("Model comparison (higher is better)")
    return ax
