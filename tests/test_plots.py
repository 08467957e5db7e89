"""Figures: the lines hold the exact quantities they claim to, and they save as PNG."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from metapool import analytic, datasets, plots  # noqa: E402


@pytest.fixture(scope="module")
def eight():
    return analytic.fit(datasets.load("eight_schools"))


@pytest.fixture(scope="module")
def bcg_reg():
    return analytic.fit(datasets.load("bcg", covariates="~ ablat"))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _saves(fig, tmp_path, name):
    path = tmp_path / name
    fig.savefig(path)
    assert path.stat().st_size > 5000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tau_density(eight, tmp_path):
    ax = plots.plot_tau_density(eight)
    line = ax.lines[0]
    x, y = line.get_xdata(), line.get_ydata()
    assert x[0] == 0.0 and x[-1] == pytest.approx(float(eight.tau_quantile(0.999)))
    assert np.trapezoid(y, x) == pytest.approx(0.999, abs=2e-3)
    np.testing.assert_allclose(y, eight.tau_pdf(x), rtol=1e-12)
    # the shaded interval is the exact summary's shortest 95% interval
    lo, hi = plots.tau_hdi(eight)
    s = eight.summary().loc["tau"]
    assert lo == pytest.approx(s["hdi95_low"], abs=1e-6)
    assert hi == pytest.approx(s["hdi95_high"], rel=1e-5)
    assert len(ax.collections) == 1
    _saves(ax.figure, tmp_path, "tau.png")


def test_tau_hdi_interior_mode():
    # a proper prior that vanishes at 0 gives an interval away from 0
    post = analytic.fit(datasets.load("eight_schools"), tau_prior="lognormal:1,0.5")
    lo, hi = plots.tau_hdi(post)
    s = post.summary().loc["tau"]
    assert lo > 0
    assert (lo, hi) == pytest.approx((s["hdi95_low"], s["hdi95_high"]), rel=1e-4)
    assert float(post.tau_cdf(hi) - post.tau_cdf(lo)) == pytest.approx(0.95, abs=1e-6)


def test_conditional_means(eight, tmp_path):
    ax = plots.plot_conditional_means(eight, studies=["A", "C"])
    assert len(ax.lines) == 2
    x = ax.lines[1].get_xdata()
    lo, hi = eight.tau_quantile([0.005, 0.995])
    assert (x[0], x[-1]) == pytest.approx((lo, hi))
    mean, _ = eight.conditional_theta(x)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), mean[:, 2], rtol=1e-12)
    # the original's limits: near tau = 0 every curve is at the pooled mean, and the curves
    # move towards their own y_j as tau grows
    y = eight.data.y
    a, c = ax.lines[0].get_ydata(), ax.lines[1].get_ydata()
    assert abs(a[-1] - y[0]) < abs(a[0] - y[0]) and abs(c[-1] - y[2]) < abs(c[0] - y[2])
    all_ax = plots.plot_conditional_means(eight)
    assert len(all_ax.lines) == 8
    _saves(ax.figure, tmp_path, "cond.png")


def test_predictive(eight, tmp_path):
    ax = plots.plot_predictive(eight, "C")
    line = ax.lines[0]
    x, y = line.get_xdata(), line.get_ydata()
    assert np.trapezoid(y, x) == pytest.approx(0.999, abs=2e-3)
    vlines = [ln.get_xdata()[0] for ln in ax.lines[1:]]
    s = eight.summary().loc["y_pred[C]"]
    assert vlines[:3] == pytest.approx([s["mean"], s["q2.5"], s["q97.5"]], rel=1e-6)
    assert vlines[3] == pytest.approx(-3.0)  # observed y_C
    # the mean of the plotted density is the exact mean
    assert np.trapezoid(x * y, x) / np.trapezoid(y, x) == pytest.approx(s["mean"], abs=0.02 * s["sd"])
    assert plots.plot_predictive(eight, 2).get_title() == ax.get_title()  # position 2 is study C
    _saves(ax.figure, tmp_path, "pred.png")


def test_exact_density_matches_cdf(bcg_reg):
    name = "beta[ablat]"
    s = bcg_reg.summary().loc[name]
    x = np.linspace(s["q2.5"] - 3 * s["sd"], s["q97.5"] + 3 * s["sd"], 2001)
    f = plots.exact_density(bcg_reg, name, x)
    assert np.all(f >= 0)
    assert np.trapezoid(f, x) == pytest.approx(float(bcg_reg.cdf(name, x[-1]) - bcg_reg.cdf(name, x[0])), abs=1e-6)


def test_unknown_study(eight):
    with pytest.raises(KeyError, match="unknown study"):
        plots.plot_predictive(eight, "Z")


def test_compare_densities(eight, tmp_path):
    dt = eight.sample(draws=1000, chains=2, seed=5)  # stands in for NUTS draws
    fig = plots.plot_compare_densities(eight, dt)
    axes = [a for a in fig.axes if a.lines]
    assert len(axes) == 2
    for ax, name in zip(axes, ("tau", "mu")):
        labels = [ln.get_label() for ln in ax.lines]
        assert "exact" in labels and "NUTS (kernel density)" in labels
        exact = ax.lines[labels.index("exact")]
        x, y = exact.get_xdata(), exact.get_ydata()
        assert np.trapezoid(y, x) == pytest.approx(0.998, abs=5e-3)
        kde = ax.lines[labels.index("NUTS (kernel density)")]
        assert np.trapezoid(kde.get_ydata(), kde.get_xdata()) == pytest.approx(1.0, abs=0.02)
    _saves(fig, tmp_path, "compare.png")


def test_compare_densities_on_given_axes(bcg_reg, tmp_path):
    dt = bcg_reg.sample(draws=500, chains=2, seed=6)
    fig, axs = plt.subplots(1, 2)
    out = plots.plot_compare_densities(bcg_reg, dt, var_names=("tau", "beta[ablat]"), ax=axs)
    assert out is fig
    assert [len(a.lines) for a in axs] == [2, 2]
    assert axs[1].get_xlabel() == "beta[ablat]"
    with pytest.raises(ValueError, match="one Axes per variable"):
        plots.plot_compare_densities(bcg_reg, dt, var_names=("tau",), ax=axs)
    with pytest.raises(KeyError, match="no \\['mu'\\]"):
        plots.plot_compare_densities(bcg_reg, dt, var_names=("mu",))
    _saves(fig, tmp_path, "compare2.png")
