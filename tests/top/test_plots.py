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


# ----------------------------------------------------------------------------- both engines
from metapool.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def seed79():
    return analytic.fit(datasets.load("seed_countries"))


@pytest.fixture(scope="module")
def bcg_rr():
    return analytic.fit(datasets.load("bcg"))


def test_every_figure_renders_from_both_engines(eight, bcg_reg, nuts_fit, tmp_path):
    nuts = nuts_fit("eight_schools")
    nuts_reg = nuts_fit("bcg", "~ ablat")
    figures = {
        "tau": lambda f: plots.plot_tau_density(f),
        "cond": lambda f: plots.plot_conditional_means(f),
        "shrink": lambda f: plots.plot_shrinkage(f),
        "forest": lambda f: plots.plot_forest(f),
        "funnel": lambda f: plots.plot_funnel(f),
        "pred": lambda f: plots.plot_predictive(f, "C"),
    }
    for engine, fit in (("exact", eight), ("nuts", nuts)):
        for name, make in figures.items():
            obj = make(fit)
            _saves(getattr(obj, "figure", obj), tmp_path, f"{name}_{engine}.png")
            plt.close("all")
    for engine, fit in (("exact", bcg_reg), ("nuts", nuts_reg)):
        _saves(plots.plot_regression(fit).figure, tmp_path, f"reg_{engine}.png")
        _saves(plots.plot_forest(fit, sort="ablat").figure, tmp_path, f"forest_reg_{engine}.png")
    with pytest.raises(InputError, match="exact posterior"):
        plots.plot_compare_densities(nuts, nuts)
    with pytest.raises(InputError, match="expected an exact posterior"):
        plots.plot_forest(np.zeros(3))


def test_tau_density_of_draws_and_overlay(eight, nuts_fit):
    nuts = nuts_fit("eight_schools")
    ax = plots.plot_tau_density(nuts)
    tau = np.concatenate(np.asarray(nuts["posterior"]["tau"].values))
    lo, hi = plots.tau_hdi(nuts)
    inside = np.mean((tau >= lo) & (tau <= hi))
    assert inside == pytest.approx(0.95, abs=1.0 / tau.size)
    # the sample HDI is at most as wide as the exact one plus Monte Carlo error, and starts near 0
    elo, ehi = plots.tau_hdi(eight)
    assert lo < 0.5 and abs(hi - ehi) < 0.15 * ehi
    kde = ax.lines[0]
    assert np.trapezoid(kde.get_ydata(), kde.get_xdata()) == pytest.approx(1.0, abs=0.02)
    # exact with NUTS overlaid: density, median, prior (flat: scaled over the plot), NUTS
    ax2 = plots.plot_tau_density(eight, nuts)
    labels = [ln.get_label() for ln in ax2.lines]
    assert labels[0] == "exact posterior density" and labels[-1] == "NUTS (kernel density)"
    prior = ax2.lines[labels.index(next(lab for lab in labels if lab.startswith("prior")))]
    assert prior.get_linestyle() == "--"
    assert np.trapezoid(prior.get_ydata(), prior.get_xdata()) == pytest.approx(1.0, rel=1e-9)
    assert "improper" in prior.get_label()


def test_tau_density_proper_prior_is_the_prior():
    post = analytic.fit(datasets.load("eight_schools"), tau_prior="halfnormal:10")
    ax = plots.plot_tau_density(post)
    prior = next(ln for ln in ax.lines if ln.get_label().startswith("prior"))
    x, y = prior.get_xdata(), prior.get_ydata()
    np.testing.assert_allclose(y, 2 * np.exp(-0.5 * (x / 10) ** 2) / (10 * np.sqrt(2 * np.pi)), rtol=1e-10)


def test_shrinkage_labels_only_the_extremes(seed79, tmp_path):
    fig = plots.plot_shrinkage(seed79)
    top, bottom = fig.axes
    assert len(top.lines) == 79 and len(top.collections) == 79          # curves and their +-1 sd bands
    named = [t.get_text() for t in top.texts]
    assert len(named) == 6
    # the labelled ones are the 3 highest and 3 lowest conditional means at the largest tau
    t = top.lines[0].get_xdata()
    mean, sd = seed79.conditional_theta(t[-1:])
    order = np.argsort(mean[0])
    expect = {seed79.data.labels[j] for j in (*order[:3], *order[-3:])}
    assert set(named) == expect
    np.testing.assert_allclose(top.collections[5].get_paths()[0].vertices[:, 1].max(),
                               (seed79.conditional_theta(t)[0][:, 5] + seed79.conditional_theta(t)[1][:, 5]).max(),
                               rtol=1e-10)
    dens = bottom.lines[0]
    np.testing.assert_allclose(dens.get_ydata(), seed79.tau_pdf(dens.get_xdata()), rtol=1e-10)
    _saves(fig, tmp_path, "shrink79.png")


def test_shrinkage_from_draws_bins_the_draws(eight):
    dt = eight.sample(draws=4000, chains=1, seed=11)
    ax = plots.plot_conditional_means(dt, studies=["A"])
    x, y = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
    tau = np.sort(np.asarray(dt["posterior"]["tau"].values).ravel())
    bins = np.array_split(tau, 16)
    assert x == pytest.approx([np.median(b) for b in bins])
    # each bin's mean of theta_A estimates E[theta_A | tau in bin]: within 4 standard errors of the
    # exact conditional mean, widened by the exact curve's range over the bin (the binning bias)
    for xb, yb, b in zip(x, y, bins):
        m, sd = eight.conditional_theta(b)
        spread = m[:, 0].max() - m[:, 0].min()
        assert abs(yb - eight.conditional_theta(xb)[0][0, 0]) < 4 * sd[:, 0].max() / np.sqrt(b.size) + spread


def test_forest_rows_and_intervals(eight, tmp_path):
    ax = plots.plot_forest(eight, sort="effect")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    d = eight.data
    assert len(labels) == d.J + 2
    order = np.argsort(-d.y, kind="stable")
    assert labels[:-2] == [d.labels[j] for j in order]
    assert labels[-2:] == ["pooled effect mu", "new study (prediction)"]
    obs = [ln for ln in ax.lines if ln.get_color() == plots._OBS_COLOR]
    assert len(obs) == d.J
    for ln, j in zip(obs, order):
        np.testing.assert_allclose(ln.get_xdata(), [d.y[j] - 1.959964 * d.se[j], d.y[j] + 1.959964 * d.se[j]],
                                   rtol=1e-6)
    s = eight.summary()
    shrunk = [ln for ln in ax.lines if len(ln.get_xdata()) == 2 and ln.get_color() == plots._EXACT_COLOR]
    assert len(shrunk) == d.J
    for ln, j in zip(shrunk, order):
        row = s.loc[f"theta[{d.labels[j]}]"]
        np.testing.assert_allclose(ln.get_xdata(), [row["q2.5"], row["q97.5"]], rtol=1e-6)
    diamond = ax.patches[0].get_xy()
    assert diamond[1, 0] == pytest.approx(s.loc["mu", "mean"], rel=1e-9)
    assert (diamond[0, 0], diamond[2, 0]) == pytest.approx((s.loc["mu", "q2.5"], s.loc["mu", "q97.5"]), rel=1e-6)
    pred = next(ln for ln in ax.lines if ln.get_label().startswith("prediction"))
    assert tuple(pred.get_xdata()) == pytest.approx((s.loc["theta_new", "q2.5"], s.loc["theta_new", "q97.5"]), rel=1e-6)
    assert plots.plot_forest(eight, sort="precision").get_yticklabels()[0].get_text() == d.labels[int(np.argmin(d.se))]
    with pytest.raises(InputError, match="sort='size'"):
        plots.plot_forest(eight, sort="size")
    _saves(ax.figure, tmp_path, "forest.png")


def test_forest_grows_with_J_and_back_transforms(seed79, bcg_rr):
    small = plots.plot_forest(analytic.fit(datasets.load("eight_schools"))).figure.get_figheight()
    big = plots.plot_forest(seed79).figure
    assert big.get_figheight() > 3 * small
    assert len(big.axes[0].get_yticklabels()) == 81
    ax = plots.plot_forest(bcg_rr)
    assert ax.get_xscale() == "log" and ax.get_xlabel().startswith("risk ratio")
    obs = [ln for ln in ax.lines if ln.get_color() == plots._OBS_COLOR]
    d = bcg_rr.data
    j = int(np.argmax(d.y))
    np.testing.assert_allclose(obs[0].get_xdata(), np.exp([d.y[j] - 1.959964 * d.se[j], d.y[j] + 1.959964 * d.se[j]]),
                               rtol=1e-6)


def test_funnel(eight, bcg_reg):
    ax = plots.plot_funnel(eight)
    lo, hi = ax.get_ylim()
    assert lo == pytest.approx(1.08 * eight.data.se.max()) and hi == 0.0
    mu = eight.mean("mu")
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(dashed) == 2
    s = dashed[0].get_ydata()
    np.testing.assert_allclose(dashed[0].get_xdata(), mu - 1.96 * s)
    assert [t.get_text() for t in ax.get_legend().get_texts()][:3] == ["0.05 < p < 0.1", "0.01 < p < 0.05", "p < 0.01"]
    assert ax.collections[-1].get_offsets().shape == (8, 2)
    with pytest.raises(InputError, match="intercept-only"):
        plots.plot_funnel(bcg_reg)


def test_predictive_histogram_of_draws(eight):
    dt = eight.sample(draws=3000, chains=2, seed=3)
    ax = plots.plot_predictive(dt, "C")
    draws = np.asarray(dt["posterior_predictive"]["y"].sel(study="C").values).ravel()
    v = [ln.get_xdata()[0] for ln in ax.lines]
    assert v == pytest.approx([draws.mean(), *np.quantile(draws, [0.025, 0.975]), -3.0])
    assert len(ax.patches) == 40
    s = eight.summary().loc["y_pred[C]"]
    assert abs(v[0] - s["mean"]) < 4 * s["sd"] / np.sqrt(6000)


def test_linear_predictor_exact_matches_the_marginals(bcg_reg):
    # x = (1, 0) picks the intercept, whose marginal is the exact engine's own mixture
    lp = plots.linear_predictor(bcg_reg, [[1.0, 0.0], [1.0, 30.0]])
    q = bcg_reg.quantile("beta[Intercept]", [0.025, 0.975])
    assert lp["mean"][0] == pytest.approx(bcg_reg.mean("beta[Intercept]"), rel=1e-9)
    assert (lp["lower"][0], lp["upper"][0]) == pytest.approx(tuple(q), rel=1e-7)
    # linearity of the mean
    assert lp["mean"][1] == pytest.approx(bcg_reg.mean("beta[Intercept]") + 30 * bcg_reg.mean("beta[ablat]"), rel=1e-9)
    # the prediction interval at x_new is theta_new's
    lpn = plots.linear_predictor(bcg_reg, bcg_reg.x_new[None, :])
    qn = bcg_reg.quantile("theta_new", [0.025, 0.975])
    assert (lpn["pred_lower"][0], lpn["pred_upper"][0]) == pytest.approx(tuple(qn), rel=1e-6)
    # draws agree within Monte Carlo error
    dt = bcg_reg.sample(draws=4000, chains=2, seed=9)
    ld = plots.linear_predictor(dt, [[1.0, 30.0]])
    sd = np.sqrt(bcg_reg.sd("beta[Intercept]") ** 2 + 900 * bcg_reg.sd("beta[ablat]") ** 2)
    assert abs(ld["mean"][0] - lp["mean"][1]) < 4 * sd / np.sqrt(8000)
    with pytest.raises(InputError, match="columns"):
        plots.linear_predictor(bcg_reg, [[1.0]])


def test_regression_bubble(bcg_reg, tmp_path):
    ax = plots.plot_regression(bcg_reg)
    assert ax.get_xlabel() == "ablat"
    line = ax.lines[0]
    x = line.get_xdata()
    np.testing.assert_allclose(line.get_ydata(), bcg_reg.mean("beta[Intercept]") + x * bcg_reg.mean("beta[ablat]"),
                               rtol=1e-8)
    sizes = ax.collections[-1].get_sizes()
    w = 1 / bcg_reg.data.se ** 2
    np.testing.assert_allclose(sizes, 30 + 470 * w / w.max())
    assert len(ax.collections) == 3   # prediction band, credible band, studies
    with pytest.raises(InputError, match="only the intercept"):
        plots.plot_regression(analytic.fit(datasets.load("eight_schools")))
    with pytest.raises(InputError, match="covariate='lat'"):
        plots.plot_regression(bcg_reg, "lat")
    _saves(ax.figure, tmp_path, "reg.png")


def test_compare_densities_is_legible(eight):
    dt = eight.sample(draws=1000, chains=2, seed=5)
    fig = plots.plot_compare_densities(eight, dt)
    axes = [a for a in fig.axes if a.lines]
    assert all(a.get_legend() is None for a in axes) and len(fig.legends) == 1
    assert all(a.get_ylabel() == "density" for a in axes)
    assert axes[0].get_xlim() == pytest.approx((0.0, float(eight.tau_quantile(0.995))))
    assert axes[1].get_xlim() == pytest.approx(tuple(eight.quantile("mu", [0.005, 0.995])))


@pytest.fixture(scope="module")
def sbc_result():
    from metapool.validation import sbc

    return sbc("exact", datasets.load("eight_schools"), "halfnormal:5", "normal:0,10", n_reps=60, n_draws=19,
               n_jobs=1, seed=4)


def test_sbc_figures(sbc_result, tmp_path):
    fig = plots.plot_sbc_ranks(sbc_result)
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in axes] == list(sbc_result.parameters[:6])
    for a, name in zip(axes, sbc_result.parameters):
        heights = [p.get_height() for p in a.patches[1:]]   # after the band
        assert len(heights) == 10 and sum(heights) == 60          # 20 rank values in 10 equal bins
        r = sbc_result.ranks[:, list(sbc_result.parameters).index(name)]
        assert heights[0] == np.sum(r <= 1)
    _saves(fig, tmp_path, "sbc.png")
    fig2 = plots.plot_ecdf_difference(sbc_result, ["tau", "mu"])
    a = fig2.axes[0]
    line = a.lines[0]
    u = (sbc_result.ranks[:, 0] + 0.5) / 20
    z = line.get_xdata()
    np.testing.assert_allclose(line.get_ydata(), np.searchsorted(np.sort(u), z, side="right") / 60 - z)
    with pytest.raises(InputError, match="not in the SBC result"):
        plots.plot_sbc_ranks(sbc_result, ["sigma"])
    _saves(fig2, tmp_path, "ecdf.png")


def test_pareto_k_and_loo_pit(tmp_path):
    rng = np.random.default_rng(0)
    k = np.array([0.1, 0.8, 0.3, 1.2])
    ax = plots.plot_pareto_k(k, ["a", "b", "c", "d"], n_draws=4000)
    assert ax.get_title() == "PSIS-LOO Pareto k (2 of 4 above 0.70)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", "d"]
    with pytest.raises(InputError, match="labels"):
        plots.plot_pareto_k(k, ["a"])
    ax2 = plots.plot_loo_pit(rng.uniform(size=50))
    assert ax2.lines[0].get_label() == "ECDF - uniform CDF" and ax2.get_xlim() == (0.0, 1.0)
    with pytest.raises(InputError, match="pit"):
        plots.plot_loo_pit([0.5, 1.5])
    _saves(ax.figure, tmp_path, "k.png")
