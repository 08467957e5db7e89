"""compare_models, the models of one dataset, heterogeneity posteriors, prior sensitivity and the CLI."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import metapool.datasets
import metapool.priors
from metapool import analytic
from metapool.comparison import COMPARE_COLUMNS, build_models, compare_models, parse_models
from metapool.errors import InputError
from metapool.heterogeneity import h_squared, i_squared


def _reload(formula):
    return metapool.datasets.load("bcg", covariates=formula) if formula else metapool.datasets.load("bcg")


@pytest.fixture(scope="module")
def bcg_models(bcg):
    return build_models(bcg, ["pooled", "hierarchical", "~ ablat"], reload=_reload)


def test_compare_models_table(bcg_models):
    table = compare_models(bcg_models, draws=1000, chains=4, seed=11)
    assert list(table.columns) == list(COMPARE_COLUMNS)
    assert list(table.index) == ["~ ablat", "hierarchical", "pooled"]
    exact = {n: analytic.loo(f) for n, f in bcg_models.items()}
    for name, res in exact.items():
        assert table.at[name, "elpd_exact"] == pytest.approx(res.elpd, rel=1e-12)
        assert table.at[name, "se_exact"] == pytest.approx(res.se, rel=1e-12)
    d = exact["hierarchical"].pointwise["elpd_loo"] - exact["~ ablat"].pointwise["elpd_loo"]
    assert table.at["hierarchical", "elpd_diff_exact"] == pytest.approx(d.sum(), rel=1e-12)
    assert table.at["hierarchical", "dse_exact"] == pytest.approx(math.sqrt(d.size * d.var(ddof=1)), rel=1e-12)
    assert table["weight"].sum() == pytest.approx(1.0, abs=1e-6)
    # PSIS agrees with the exact elpd within twice its SE where every k is small
    for name in ("~ ablat", "hierarchical"):
        if table.at[name, "max_k"] < 0.7:
            assert abs(table.at[name, "elpd"] - table.at[name, "elpd_exact"]) < 2 * table.at[name, "se"]
    # complete pooling is badly wrong on bcg: heavy Pareto tails, flagged
    assert table.at["pooled", "warning"]
    assert table.at["pooled", "max_k"] > 0.7


def test_compare_mixes_exact_and_nuts(nuts_fit):
    eight = metapool.datasets.load("eight_schools")
    fits = {"pooled": analytic.fit_pooled(eight), "nuts": nuts_fit("eight_schools")}
    table = compare_models(fits, seed=1)
    assert table.at["nuts", "engine"] == "draws" and math.isnan(table.at["nuts", "elpd_exact"])
    assert table.at["pooled", "engine"] == "exact"
    exact_h = analytic.loo(analytic.fit(eight)).elpd
    assert abs(table.at["nuts", "elpd"] - exact_h) < 2 * table.at["nuts", "se"]


def test_compare_rejects_conditional_and_single(bcg_models):
    dt = bcg_models["hierarchical"].sample(draws=50, chains=2, seed=1, log_likelihood="conditional")
    with pytest.raises(InputError, match="conditional"):
        compare_models({"a": dt, "b": bcg_models["pooled"]})
    with pytest.raises(InputError, match="at least two"):
        compare_models({"a": bcg_models["pooled"]})


def test_parse_models():
    assert parse_models("pooled, hierarchical,~ ablat") == ["pooled", "hierarchical", "~ ablat"]
    for bad, msg in (("pooled", "at least two"), ("pooled,hier", "unknown model 'hier'"),
                     ("pooled,pooled", "twice")):
        with pytest.raises(InputError, match=msg):
            parse_models(bad)


def test_heterogeneity_posterior_is_the_transform_of_tau(bcg, bcg_ablat):
    post = analytic.fit(bcg)
    t = analytic.heterogeneity_posterior(post)
    for q, col in ((0.025, "q2.5"), (0.5, "q50"), (0.975, "q97.5")):
        tq = post.tau_quantile(q)
        assert t.at["I2", col] == pytest.approx(i_squared(tq, bcg), rel=1e-12)
        assert t.at["H2", col] == pytest.approx(h_squared(tq, bcg), rel=1e-12)
    # the mean of I^2 by an independent integration of I^2(tau) p(tau | y) (scipy quad)
    from scipy import integrate

    f = lambda x: float(i_squared(x, bcg)) * float(post.tau_pdf(np.array([x]))[0])  # noqa: E731
    want = integrate.quad(f, 0, 20, limit=400, epsabs=1e-12)[0]
    assert t.at["I2", "mean"] == pytest.approx(want, rel=1e-7)
    assert t.at["tau", "mean"] == pytest.approx(post.mean("tau"), rel=1e-12)
    r2 = analytic.r2_posterior(analytic.fit(bcg_ablat), post)
    tau0_2 = post.tau_quantile(0.5) ** 2
    assert r2["q50"] == pytest.approx(max(0.0, 1 - analytic.fit(bcg_ablat).tau_quantile(0.5) ** 2 / tau0_2),
                                      rel=1e-10)
    assert 0 <= r2["q2.5"] <= r2["q50"] <= r2["q97.5"] <= 1


def test_sensitivity_rows_equal_separate_fits(bcg_ablat):
    priors = ["halfnormal:0.5", "halfcauchy:0.5", "flat"]
    table = analytic.sensitivity(bcg_ablat, priors, "normal:0,10")
    assert list(table.index) == priors
    for spec in priors:
        s = analytic.fit(bcg_ablat, spec, "normal:0,10").summary(quantiles=(0.025, 0.5, 0.975))
        for name in ("tau", "beta[Intercept]", "beta[ablat]", "theta_new"):
            for col in ("mean", "sd", "q2.5", "q50", "q97.5"):
                assert table.at[spec, f"{name}:{col}"] == pytest.approx(s.at[name, col], rel=1e-12), (spec, name, col)
    scaled = analytic.scale_sensitivity(bcg_ablat, "halfnormal", [0.1, 1.0])
    assert list(scaled.index) == ["halfnormal:0.1", "halfnormal:1"]
    assert scaled.at["halfnormal:0.1", "tau:q50"] < scaled.at["halfnormal:1", "tau:q50"]
    with pytest.raises(InputError, match="one-scale family"):
        analytic.scale_sensitivity(bcg_ablat, "lognormal", [1.0])


# ----------------------------------------------------------------------------- CLI
@pytest.fixture
def cli():
    """metapool.cli.main."""
    from metapool.cli import main

    return main


def test_cli_compare(cli, capsys):
    assert cli(["compare", "bcg", "--models", "pooled,hierarchical,~ ablat", "--format", "json",
                "--tau-prior", "halfnormal:0.5", "--mu-prior", "normal:0,2"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["model"]: r for r in out["comparison"]}
    assert rows["~ ablat"]["rank"] == 0
    fit = analytic.fit(metapool.datasets.load("bcg", covariates="~ ablat"), "halfnormal:0.5", "normal:0,2")
    assert rows["~ ablat"]["elpd_exact"] == pytest.approx(analytic.loo(fit).elpd, rel=1e-9)
    probs = {r["model"]: r["posterior"] for r in out["model_probabilities"]}
    assert sum(probs.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("argv,msg", [
    (["compare", "bcg", "--models", "pooled,bogus"], "unknown model 'bogus'"),
    (["compare", "bcg", "--models", "pooled,hierarchical", "--bayes-factors"], "flat prior"),
    (["compare", "bcg", "--models", "pooled,~ nope"], "bad model '~ nope'"),
    (["compare", "bcg", "--models", "pooled,unpooled"], "left-out study has no predictive distribution"),
])
def test_cli_compare_errors_exit_2_with_one_line(cli, capsys, argv, msg):
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1


def test_cli_fit_blocks(cli, capsys):
    assert cli(["fit", "bcg", "--heterogeneity", "--loo", "--sensitivity", "halfnormal:0.5,flat"]) == 0
    out = capsys.readouterr().out
    assert "Heterogeneity (tau^2 estimator: REML; k = 13)" in out
    assert "tau^2 = 0.3132 (SE 0.1664), 95% CI [0.1197, 1.1115] (Q-profile); tau = 0.5597" in out
    assert "I^2 = 92.22% [81.92, 97.68]   H^2 = 12.86 [5.53, 43.07]" in out
    assert "Q(df = 12) = 152.23, p < .0001" in out
    assert "Exact leave-one-study-out: elpd_loo = -14.542" in out
    assert "Prior sensitivity" in out and "halfnormal:0.5" in out


def test_cli_loo_improper_after_leaving_one_out(cli, capsys, tmp_path):
    path = tmp_path / "three.csv"
    path.write_text("label,y,se\na,0.1,0.2\nb,0.5,0.3\nc,-0.2,0.25\n")
    assert cli(["fit", str(path), "--effect", "y", "--se", "se", "--label", "label", "--loo"]) == 2
    assert "leaving out study 'a'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- prior groups
def test_prior_groups_exact_and_psense(bcg_ablat):
    import arviz as az
    from scipy import stats

    from metapool.prior_groups import add_prior_groups

    post = analytic.fit(bcg_ablat, "halfnormal:0.5", "normal:0,2")
    dt = add_prior_groups(post.sample(draws=500, chains=2, seed=1), post.spec, seed=2)
    tau = dt["posterior"]["tau"].values
    beta = dt["posterior"]["beta"].values
    np.testing.assert_allclose(dt["log_prior"]["tau"].values, stats.halfnorm.logpdf(tau, scale=0.5), rtol=1e-12)
    np.testing.assert_allclose(dt["log_prior"]["beta"].values, stats.norm.logpdf(beta, 0, 2).sum(-1), rtol=1e-12)
    pt = dt["prior"]["tau"].values.ravel()
    z = (pt.mean() - 0.5 * math.sqrt(2 / math.pi)) / (pt.std() / math.sqrt(pt.size))
    assert abs(z) < 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sens = az.psense_summary(dt, var_names=["tau"])
    assert np.isfinite(np.asarray(sens.iloc[:, :2], float)).all()


def test_prior_draws_need_proper_priors(bcg):
    from metapool.prior_groups import add_prior_groups, prior_draws

    post = analytic.fit(bcg)
    with pytest.raises(InputError, match="flat prior on tau"):
        prior_draws(post.spec)
    dt = add_prior_groups(post.sample(draws=20, chains=1, seed=1), post.spec)
    assert "log_prior" in dt.children and "prior" not in dt.children


def test_prior_groups_on_a_nuts_fit(nuts_fit):
    from metapool.prior_groups import add_prior_groups
    from metapool.spec import model_spec

    eight = metapool.datasets.load("eight_schools")
    dt = add_prior_groups(nuts_fit("eight_schools"), model_spec(eight))
    assert set(dt["log_prior"].data_vars) == {"tau", "mu"}
    assert float(np.abs(dt["log_prior"]["tau"]).max()) == 0.0  # flat priors: log density 0


# ----------------------------------------------------------------------------- Student-t random effects
@pytest.mark.parametrize("tau,mu,nu", [(0.01, -0.7, 1.0), (0.3, 0.0, 4.0), (2.0, 1.0, 30.0), (0.5, -0.3, 0.3)])
def test_student_t_study_level_likelihood_against_quad(tau, mu, nu):
    import xarray as xr
    from scipy import integrate, stats

    from metapool.models import student_t_log_likelihood

    d = metapool.datasets.load("bcg")
    post = xr.Dataset({"tau": (("chain", "draw"), [[tau]]), "mu": (("chain", "draw"), [[mu]])},
                      coords={"chain": [0], "draw": [0]})
    ll = student_t_log_likelihood(post, d, nu=nu).values[0, 0]
    for j in range(d.J):
        f = lambda th: stats.t.pdf(th, nu, mu, tau) * stats.norm.pdf(d.y[j], th, d.se[j])  # noqa: E731
        c = 50 * tau + 50 * d.se[j]
        v = integrate.quad(f, mu - c, mu + c, points=sorted([mu, d.y[j]]), epsabs=0, epsrel=1e-12, limit=1000)[0]
        v += integrate.quad(f, mu + c, np.inf, epsabs=0, epsrel=1e-10)[0]
        v += integrate.quad(f, -np.inf, mu - c, epsabs=0, epsrel=1e-10)[0]
        assert ll[j] == pytest.approx(math.log(v), abs=1e-7), j
    # large nu: the normal model's study-level likelihood
    big = student_t_log_likelihood(post, d, nu=1e7).values[0, 0]
    np.testing.assert_allclose(big, stats.norm.logpdf(d.y, mu, np.sqrt(d.variance + tau**2)), rtol=1e-5)


def test_student_t_nuts_fit_compares_with_the_normal_model():
    from metapool.models import sample_student_t

    eight = metapool.datasets.load("eight_schools")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = sample_student_t(eight, nu=4.0, draws=300, tune=300, chains=2, seed=3)
        table = compare_models({"t4": dt, "normal": analytic.fit(eight)}, seed=1)
    assert dt.attrs["random_effects"] == "student_t" and dt["log_likelihood"].attrs["likelihood"] == "marginal"
    assert set(table.index) == {"t4", "normal"}
    # eight schools has no outliers: the two predict about equally well
    assert abs(table.at["t4", "elpd"] - table.at["normal", "elpd_exact"]) < 2 * table.at["t4", "se"]
    with pytest.raises(InputError, match="nu"):
        sample_student_t(eight, nu=-1.0)


def test_cli_compare_out_writes_tables_figure_and_report(cli, capsys, tmp_path):
    from metapool.report import referenced_files

    out = tmp_path / "cmp"
    assert cli(["compare", "bcg", "--models", "pooled,hierarchical,~ ablat", "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"comparison.csv", "comparison.json", "comparison.png", "index.html", "metadata.json"}
    page = (out / "index.html").read_text()
    assert all((out / f).exists() for f in referenced_files(page))
    table = pd.read_csv(out / "comparison.csv", index_col=0)
    assert table.loc["~ ablat", "elpd_exact"] == pytest.approx(-11.245, abs=1e-3)
    # a second run replaces the first report only with --overwrite
    assert cli(["compare", "bcg", "--models", "pooled,hierarchical", "--out", str(out)]) == 2
    assert cli(["compare", "bcg", "--models", "pooled,hierarchical", "--out", str(out), "--overwrite"]) == 0
    assert "~ ablat" not in pd.read_csv(out / "comparison.csv", index_col=0).index
