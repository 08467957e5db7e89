"""Figures of the original analysis, drawn from the exact posterior (matplotlib; ArviZ for NUTS densities).

* :func:`plot_tau_density`: the posterior density of tau with its 95% shortest interval (the
  original's "Density tau" plot, without its grid truncation).
* :func:`plot_conditional_means`: E[theta_j | tau, y] against tau (the curves of the original's
  commented-out code, computed exactly).
* :func:`plot_predictive`: the posterior predictive density of one study's effect with its mean
  and 2.5 / 97.5 % quantiles (the original's histogram of ``TEj``, as an exact density).
* :func:`plot_compare_densities`: exact densities against NUTS kernel density estimates
  (``metapool validate --out``).

Every function takes an :class:`~metapool.analytic.ExactPosterior` and returns the matplotlib
Axes (or Figure) it drew on.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "plot_tau_density",
    "plot_conditional_means",
    "plot_predictive",
    "plot_compare_densities",
    "exact_density",
    "tau_hdi",
]

_EXACT_COLOR = "C0"
_NUTS_COLOR = "C1"


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, 4.2))[1]


# ----------------------------------------------------------------------------- exact quantities
def tau_hdi(post: Any, prob: float = 0.95) -> tuple[float, float]:
    """Shortest interval holding ``prob`` of tau's posterior (the exact engine's ``tau_hdi``)."""
    return post.tau_hdi(prob)


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


# ----------------------------------------------------------------------------- figures
def plot_tau_density(post: Any, ax: Any = None, prob: float = 0.95, n: int = 500) -> Any:
    """Exact posterior density of tau with the shortest ``prob`` interval shaded.

    Parameters
    ----------
    post : ExactPosterior
        From :func:`metapool.analytic.fit`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when None.
    prob : float, default 0.95
        Probability of the shaded shortest interval.
    n : int, default 500
        Grid points from 0 to tau's 99.9 % quantile.

    Returns
    -------
    matplotlib.axes.Axes
        Its first line is the density (x: tau, y: density), the shaded region the interval
        and a dashed vertical line the posterior median.
    """
    ax = _axes(ax)
    t = _grid(post, "tau", n=n)
    dens = exact_density(post, "tau", t)
    ax.plot(t, dens, color=_EXACT_COLOR, lw=2, label="exact posterior density")
    lo, hi = tau_hdi(post, prob)
    ts = np.linspace(lo, hi, 200)
    ax.fill_between(ts, exact_density(post, "tau", ts), color=_EXACT_COLOR, alpha=0.25,
                    label=f"{100 * prob:g}% shortest interval [{lo:.3g}, {hi:.3g}]")
    med = float(post.tau_quantile(0.5))
    ax.axvline(med, color="k", ls="--", lw=1, label=f"median {med:.3g}")
    ax.set(xlabel="tau", ylabel="density", title="Posterior density of tau", xlim=(0.0, t[-1]))
    ax.set_ylim(bottom=0.0)
    ax.legend(frameon=False, fontsize="small")
    return ax


def _study_labels(post: Any, studies: Sequence[Any] | None) -> list[str]:
    labels = list(post.data.labels)
    if studies is None:
        return labels
    out = []
    for s in studies:
        if isinstance(s, (int, np.integer)) and not isinstance(s, bool) and str(s) not in labels:
            out.append(labels[int(s)])
        elif str(s) in labels:
            out.append(str(s))
        else:
            raise KeyError(f"unknown study {s!r}; studies are {labels[:5]}{' ...' if len(labels) > 5 else ''}")
    return out


def plot_conditional_means(post: Any, studies: Sequence[Any] | None = None, ax: Any = None,
                           n: int = 200) -> Any:
    """E[theta_j | tau, y] against tau over the central 99 % of tau's posterior.

    Parameters
    ----------
    post : ExactPosterior
    studies : sequence of str or int, optional
        Study labels (or 0-based positions); default every study. With more than 10 studies
        the lines are thin and unlabelled.
    ax : matplotlib.axes.Axes, optional
    n : int, default 200
        Grid points between tau's 0.5 % and 99.5 % quantiles.

    Returns
    -------
    matplotlib.axes.Axes
        One line per study, in the order of ``studies`` (x: tau, y: conditional mean).

    Notes
    -----
    E[theta_j | tau, y] = w_j y_j + (1 - w_j) x_j' beta_hat(tau), w_j = tau^2 / (tau^2 + s_j^2)
    (mu integrated out): every curve starts near the pooled estimate at small tau and moves
    towards its own y_j as tau grows, the shrinkage the original analysis describes.
    """
    ax = _axes(ax)
    labels = _study_labels(post, studies)
    idx = [list(post.data.labels).index(s) for s in labels]
    lo, hi = np.asarray(post.tau_quantile([0.005, 0.995]), dtype=float)
    t = np.linspace(lo, hi, n)
    mean, _ = post.conditional_theta(t)
    few = len(idx) <= 10
    for j, lab in zip(idx, labels):
        ax.plot(t, mean[:, j], lw=1.5 if few else 0.6, alpha=1.0 if few else 0.6,
                label=f"theta[{lab}]" if few else None)
    ax.set(xlabel="tau", ylabel="E[theta_j | tau, y]",
           title="Conditional posterior means of the study effects")
    if few:
        ax.legend(frameon=False, fontsize="small", ncol=2)
    return ax


def plot_predictive(post: Any, study: Any, ax: Any = None, n: int = 600) -> Any:
    """Posterior predictive density of one study's observed effect, with mean and 95 % quantiles.

    Parameters
    ----------
    post : ExactPosterior
    study : str or int
        Study label (or 0-based position); the original analysis used its third study.
    ax : matplotlib.axes.Axes, optional
    n : int, default 600
        Grid points between the 0.05 % and 99.95 % quantiles.

    Returns
    -------
    matplotlib.axes.Axes
        First line: the exact density of ``y_pred[LABEL]``; vertical lines at its mean (red,
        dashed), its 2.5 % and 97.5 % quantiles (green, dashed) as in the original's histogram,
        and the observed y_j (black, dotted).
    """
    ax = _axes(ax)
    label = _study_labels(post, [study])[0]
    name = f"y_pred[{label}]"
    x = _grid(post, name, n=n)
    ax.plot(x, exact_density(post, name, x), color=_EXACT_COLOR, lw=2, label="exact predictive density")
    mean = post.mean(name)
    q_lo, q_hi = np.asarray(post.quantile(name, [0.025, 0.975]), dtype=float)
    ax.axvline(mean, color="red", ls="--", lw=1.2, label=f"mean {mean:.3g}")
    ax.axvline(q_lo, color="green", ls="--", lw=1.2, label=f"2.5% {q_lo:.3g}")
    ax.axvline(q_hi, color="green", ls="--", lw=1.2, label=f"97.5% {q_hi:.3g}")
    y_obs = float(post.data.y[list(post.data.labels).index(label)])
    ax.axvline(y_obs, color="k", ls=":", lw=1, label=f"observed {y_obs:.3g}")
    ax.set(xlabel=f"effect of study {label}", ylabel="density",
           title=f"Posterior predictive: {name}")
    ax.set_ylim(bottom=0.0)
    ax.legend(frameon=False, fontsize="small")
    return ax


def _nuts_flat(nuts_dt: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    from metapool.summaries import flat_draws

    flat = flat_draws(nuts_dt)
    missing = [v for v in names if v not in flat]
    if missing:
        raise KeyError(f"the NUTS draws have no {missing}; they have {list(flat)[:6]} ...")
    return {v: flat[v] for v in names}


def _overlay_exact(ax: Any, post: Any, name: str, draws: np.ndarray) -> None:
    x = _grid(post, name, tail=1e-3, n=400)
    if name == "tau":
        x = np.linspace(0.0, max(x[-1], float(np.max(draws))), 400)
    ax.plot(x, exact_density(post, name, x), color=_EXACT_COLOR, lw=2, label="exact")
    ax.set_xlabel(name)
    ax.legend(frameon=False, fontsize="small")


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
        In each panel the NUTS density (orange) and a line labelled ``exact`` (blue).
    """
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
    fig = axes[0].figure
    fig.suptitle("Exact posterior against NUTS draws", fontsize="medium")
    fig.subplots_adjust(top=0.80, bottom=0.17)
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
    fig.set_size_inches(4.2 * len(axes), 3.6)
    return axes


def _kde_line(ax: Any, draws: np.ndarray, bounded: bool) -> None:
    from arviz_stats.base import array_stats

    flat = np.asarray(draws, dtype=float).ravel()
    grid, pdf, _ = array_stats.kde(flat, axis=-1, bound_correction=bounded)
    ax.plot(grid, pdf, color=_NUTS_COLOR, lw=1.5, label="NUTS (kernel density)")
