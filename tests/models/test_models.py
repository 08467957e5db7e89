"""The PyMC engine (metapool.models): model structure, NUTS fits against the exact engine, layout.

NUTS fits come from the session cache in conftest.py (``nuts_fit``); each distinct fit is made
once per session. Every fit is seeded, so the assertions below are deterministic.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr

import metapool
import metapool.datasets as datasets
import metapool.models as mm
from metapool import analytic
from metapool.models.sampling import _default_progressbar, _run_with_retries
from metapool.priors import DuMouchelTau, FlatBeta, FlatTau, HalfCauchyTau, HalfNormalTau, NormalBeta

EXACT_TOL_MCSE = 4.0  # posterior means within 4 Monte Carlo standard errors of the exact means
GROUPS = {"posterior", "posterior_predictive", "log_likelihood", "observed_data", "constant_data",
          "sample_stats"}


@pytest.fixture(scope="module")
def eight() -> metapool.MetaData:
    return datasets.load("eight_schools")


@pytest.fixture(scope="module")
def bcg_ablat() -> metapool.MetaData:
    return datasets.load("bcg", covariates="~ ablat")


def _free(model: pm.Model) -> set[str]:
    return {v.name for v in model.free_RVs}


def _point_fn(model: pm.Model, names):
    """Evaluate model variables as functions of the free variables' (transformed) values."""
    outs = model.replace_rvs_by_values([model[n] for n in names])
    return model.compile_fn(outs, inputs=model.value_vars, point_fn=True, on_unused_input="ignore")


# ----------------------------------------------------------------------------- structure, no sampling


def test_build_noncentered_structure(eight):
    m = mm.build(eight)
    assert _free(m) == {"tau", "mu", "z", "z_new"}
    assert {v.name for v in m.deterministics} == {"theta", "theta_new"}
    assert [v.name for v in m.observed_RVs] == ["y"]
    assert m.coords["study"] == tuple("ABCDEFGH")
    assert m.coords["coef"] == ("Intercept",)
    dims = m.named_vars_to_dims
    assert dims["z"] == ("study",) and dims["theta"] == ("study",) and dims["y"] == ("study",)
    assert dims["se"] == ("study",) and dims["X"] == ("study", "coef")
    assert "tau" not in dims and "mu" not in dims and "theta_new" not in dims  # scalars
    np.testing.assert_array_equal(m["se"].get_value(), eight.se)
    np.testing.assert_array_equal(m["X"].get_value(), np.ones((8, 1)))
    assert m.rvs_to_values[m["y"]] is m["y_obs"]  # observed through a data container (compile once)
    np.testing.assert_array_equal(m.rvs_to_values[m["y"]].get_value(), eight.y)


def test_build_centered_structure(eight):
    m = mm.build(eight, parameterization="centered")
    assert _free(m) == {"tau", "mu", "theta", "theta_new"}
    assert m.deterministics == []
    assert m.named_vars_to_dims["theta"] == ("study",)


def test_build_regression_structure(bcg_ablat):
    m = mm.build(bcg_ablat)
    assert _free(m) == {"tau", "beta", "z", "z_new"}
    assert m.named_vars_to_dims["beta"] == ("coef",)
    assert m.coords["coef"] == ("Intercept", "ablat")
    assert m.coords["study"] == bcg_ablat.labels
    np.testing.assert_array_equal(m["X"].get_value(), bcg_ablat.X)


def test_noncentered_deterministics_are_x_beta_plus_tau_z(bcg_ablat):
    m = mm.build(bcg_ablat, x_new=[1.0, 30.0])
    f = _point_fn(m, ["theta", "theta_new"])
    beta, tau = np.array([0.5, -0.03]), 2.0
    z = np.linspace(-1.0, 1.0, bcg_ablat.J)
    theta, theta_new = f({"tau_log__": np.log(tau), "beta": beta, "z": z, "z_new": 1.5})
    np.testing.assert_allclose(theta, bcg_ablat.X @ beta + tau * z)
    assert float(theta_new) == pytest.approx(0.5 - 0.03 * 30.0 + 2.0 * 1.5)


def test_x_new_defaults_to_mean_row(bcg_ablat):
    spec = mm.ModelSpec.create(bcg_ablat)
    np.testing.assert_allclose(spec.x_new, bcg_ablat.X.mean(axis=0))
    m = mm.build(bcg_ablat)
    f = _point_fn(m, ["theta_new"])
    (theta_new,) = f({"tau_log__": 0.0, "beta": np.array([1.0, 2.0]), "z": np.zeros(bcg_ablat.J), "z_new": 0.0})
    assert float(theta_new) == pytest.approx(1.0 + 2.0 * bcg_ablat.X[:, 1].mean())


def test_centered_logp_is_the_hierarchical_normal(eight):
    m = mm.build(eight, parameterization="centered")
    logp = m.compile_logp()
    theta = np.linspace(-5.0, 20.0, 8)
    point = {"tau_log__": np.log(4.0), "mu": 3.0, "theta": theta, "theta_new": 1.0}
    from scipy import stats

    want = (stats.norm.logpdf(theta, 3.0, 4.0).sum() + stats.norm.logpdf(1.0, 3.0, 4.0)
            + stats.norm.logpdf(eight.y, theta, eight.se).sum() + np.log(4.0))  # + log-Jacobian of log(tau)
    assert float(logp(point)) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize(
    "prior, value",
    [(FlatTau(), 3.0), (HalfNormalTau(2.0), 3.0), (HalfCauchyTau(25.0), 3.0), ("halft:3,1", 0.7),
     ("exponential:2", 1.5), ("lognormal:-1,1", 0.4), ("uniform:0,10", 2.0)],
)
def test_tau_prior_is_the_shared_prior(eight, prior, value):
    m = mm.build(eight, tau_prior=prior)
    p = metapool.priors.parse_tau_prior(prior)
    # 1e-8: PyMC's half-t normalising constant differs from scipy's gammaln in the 9th digit
    assert float(pm.logp(m["tau"], value).eval()) == pytest.approx(float(p.logpdf(value)), rel=1e-8, abs=1e-12)


def test_dumouchel_prior_is_bound_to_the_data(eight):
    spec = mm.ModelSpec.create(eight, tau_prior="dumouchel")
    s0 = np.sqrt(eight.J / np.sum(eight.se**-2.0))
    assert isinstance(spec.tau_prior, DuMouchelTau)
    assert spec.tau_prior.s0 == pytest.approx(s0)
    m = mm.build(eight, tau_prior="dumouchel")
    assert float(pm.logp(m["tau"], 2.0).eval()) == pytest.approx(float(spec.tau_prior.logpdf(2.0)), rel=1e-9)


def test_beta_prior_is_the_shared_prior(bcg_ablat, eight):
    m = mm.build(bcg_ablat, beta_prior=NormalBeta([0.0, 0.1], [2.0, 0.5]))
    b = np.array([0.3, -0.2])
    want = NormalBeta([0.0, 0.1], [2.0, 0.5]).logpdf(b)
    assert float(pm.logp(m["beta"], b).eval().sum()) == pytest.approx(float(want), rel=1e-10)
    m = mm.build(eight, beta_prior="normal:0,4")
    assert float(pm.logp(m["mu"], 1.0).eval()) == pytest.approx(float(NormalBeta(0.0, 4.0).logpdf(1.0)))
    m = mm.build(eight, beta_prior=NormalBeta([1.0], [4.0]))  # length-1 vectors for the scalar mu
    assert m["mu"].ndim == 0


def test_default_priors_are_flat(eight):
    spec = mm.ModelSpec.create(eight)
    assert spec.tau_prior == FlatTau() and spec.beta_prior == FlatBeta()
    m = mm.build(eight)
    assert float(pm.logp(m["mu"], 123.0).eval()) == 0.0
    assert float(pm.logp(m["tau"], 50.0).eval()) == 0.0


def test_spec_names_match_the_model(eight, bcg_ablat):
    for data in (eight, bcg_ablat):
        for par in mm.PARAMETERIZATIONS:
            spec = mm.ModelSpec.create(data, parameterization=par)
            m = mm.build_from_spec(spec)
            assert set(spec.free_variables) == _free(m)
            assert set(spec.deterministics) == {v.name for v in m.deterministics}
            for name, dims in spec.dims.items():
                assert m.named_vars_to_dims.get(name, ()) == dims


@pytest.mark.parametrize("spelling, want", [("non-centered", "noncentered"), ("Non_Centred", "noncentered"),
                                            ("centred", "centered"), ("CENTERED", "centered")])
def test_parameterization_spellings(eight, spelling, want):
    assert mm.ModelSpec.create(eight, parameterization=spelling).parameterization == want


def test_bad_arguments(eight, bcg_ablat):
    with pytest.raises(ValueError, match="parameterization"):
        mm.build(eight, parameterization="sideways")
    with pytest.raises(ValueError, match="x_new has 1 values"):
        mm.build(bcg_ablat, x_new=[1.0])
    with pytest.raises(ValueError, match="finite"):
        mm.build(eight, x_new=[np.nan])
    with pytest.raises(ValueError, match="invalid tau prior"):
        mm.build(eight, tau_prior="halfcauchy")
    with pytest.raises(ValueError, match="3 values"):
        mm.build(bcg_ablat, beta_prior=NormalBeta([0.0, 0.0, 0.0], 1.0))
    with pytest.raises(TypeError, match="MetaData"):
        mm.build({"y": [1, 2]})
    with pytest.raises(ValueError, match="nuts_sampler"):
        mm.sample(eight, nuts_sampler="stan")
    with pytest.raises(ValueError, match="target_accept"):
        mm.sample(eight, target_accept=1.5)
    with pytest.raises(ValueError, match="draws"):
        mm.sample(eight, draws=0)


def test_progressbar_off_under_pytest():
    assert _default_progressbar() is False


# ----------------------------------------------------------------------------- retry logic (fake runs)


def _fake_trace(n_div: int, rhat_bad: bool, draws: int) -> xr.DataTree:
    rng = np.random.default_rng(n_div + 10 * draws)
    tau = rng.normal(size=(4, draws))
    if rhat_bad:
        tau = tau + np.arange(4)[:, None]  # chains disagree
    div = np.zeros((4, draws), bool)
    div.flat[:n_div] = True
    return xr.DataTree.from_dict({
        "posterior": xr.Dataset({"tau": (("chain", "draw"), tau)}),
        "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), div)}),
    })


def test_retry_raises_target_accept_then_doubles_draws():
    calls = []
    script = {(0.9, 100): (3, False), (0.95, 100): (0, True), (0.95, 200): (0, False)}

    def run(ta, draws):
        calls.append((ta, draws))
        n_div, bad = script[(ta, draws)]
        return _fake_trace(n_div, bad, draws), 0.1, 0.0

    attempts = _run_with_retries(run, [0.9, 0.95, 0.99], 100, 2)
    assert calls == [(0.9, 100), (0.95, 100), (0.95, 200)]
    assert [a.divergences for a in attempts] == [3, 0, 0]
    assert attempts[1].r_hat_max > 1.01 >= attempts[2].r_hat_max


def test_retry_stops_at_the_top_of_the_ladder_and_after_max_doublings():
    calls = []

    def run(ta, draws):
        calls.append((ta, draws))
        return _fake_trace(5, True, draws), 0.1, 0.0

    attempts = _run_with_retries(run, [0.9, 0.95, 0.99], 50, 2)
    assert calls == [(0.9, 50), (0.95, 50), (0.99, 50), (0.99, 100), (0.99, 200)]
    assert attempts[-1].divergences == 5
    calls.clear()
    _run_with_retries(run, [0.8], 50, 0)  # max_retries=0: one run, whatever happens
    assert calls == [(0.8, 50)]


# ----------------------------------------------------------------------------- NUTS fits (shared)


def _check_layout(dt: xr.DataTree, data: metapool.MetaData, location: str, noncentered: bool) -> None:
    assert GROUPS <= set(dt.children)
    post = dt["posterior"]
    want = {"tau", location, "theta", "theta_new"} | ({"z", "z_new"} if noncentered else set())
    assert set(post.data_vars) == want
    for name, var in post.data_vars.items():
        assert var.dims[:2] == ("chain", "draw"), name
    assert post["tau"].dims == ("chain", "draw") and post["theta_new"].dims == ("chain", "draw")
    assert post["theta"].dims == ("chain", "draw", "study")
    assert post[location].dims == (("chain", "draw") if location == "mu" else ("chain", "draw", "coef"))
    assert [str(s) for s in post["study"].values] == list(data.labels)
    if location == "beta":
        assert [str(c) for c in post["coef"].values] == list(data.coef_names)
    for group in ("posterior_predictive", "log_likelihood"):
        assert list(dt[group].data_vars) == ["y"]
        assert dt[group]["y"].dims == ("chain", "draw", "study")
    assert dt["posterior_predictive"]["y"].shape == post["theta"].shape
    np.testing.assert_array_equal(dt["observed_data"]["y"].values, data.y)
    assert set(dt["constant_data"].data_vars) == {"se", "X"}
    assert dt["constant_data"]["X"].dims == ("study", "coef")
    np.testing.assert_array_equal(dt["constant_data"]["se"].values, data.se)
    np.testing.assert_array_equal(dt["constant_data"]["X"].values, data.X)
    for stat in ("diverging", "tree_depth", "energy", "step_size"):
        assert stat in dt["sample_stats"].data_vars, stat


def test_eight_schools_fit_layout(nuts_fit, eight):
    dt = nuts_fit("eight_schools")
    _check_layout(dt, eight, "mu", noncentered=True)
    assert dt.attrs["engine"] == "nuts" and dt.attrs["nuts_sampler"] == "nutpie"
    assert dt.attrs["parameterization"] == "noncentered"
    assert dt.attrs["tau_prior"] == "flat" and dt.attrs["beta_prior"] == "flat"
    assert dt["posterior"].attrs["target_accept"] == dt.attrs["target_accept"]
    assert dt.attrs["chains"] == 4 and dt["posterior"].sizes["draw"] == dt.attrs["draws"]


def test_fits_keep_the_noncentered_identities(nuts_fit, eight):
    post = nuts_fit("eight_schools")["posterior"]
    np.testing.assert_allclose(post["theta"], post["mu"] + post["tau"] * post["z"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(post["theta_new"], post["mu"] + post["tau"] * post["z_new"], rtol=1e-10, atol=1e-10)


def test_bcg_ablat_fit_layout(nuts_fit, bcg_ablat):
    dt = nuts_fit("bcg", "~ ablat")
    _check_layout(dt, bcg_ablat, "beta", noncentered=True)
    post = dt["posterior"]
    xb = xr.dot(dt["constant_data"]["X"], post["beta"], dim="coef")
    want = (xb + post["tau"] * post["z"]).transpose(*post["theta"].dims)
    np.testing.assert_allclose(post["theta"].values, want.values, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dataset, formula", [("eight_schools", None), ("bcg", "~ ablat"), ("bcg", None),
                                              ("seed_countries", None)])
def test_default_settings_sample_cleanly(nuts_fit, dataset, formula):
    """Zero divergences and R-hat <= 1.01 on every variable with the default settings."""
    dt = nuts_fit(dataset, formula)
    assert mm.divergences(dt) == 0
    assert dt.attrs["divergences"] == 0
    rhat = az.rhat(dt["posterior"].to_dataset())
    worst = max(float(rhat[v].max()) for v in rhat.data_vars)
    assert worst <= 1.01
    assert dt.attrs["r_hat_max"] == pytest.approx(worst)
    # the attrs say what was done automatically
    a = dt.attrs
    assert len(a["target_accept_attempts"]) == len(a["divergences_attempts"]) == len(a["draws_attempts"])
    assert a["retried"] == int(len(a["divergences_attempts"]) > 1)
    assert a["target_accept"] == a["target_accept_attempts"][-1] and a["draws"] == a["draws_attempts"][-1]
    if any(a["divergences_attempts"][:-1]):
        assert "divergences" in a["retry_reason"] and a["target_accept"] > mm.DEFAULT_TARGET_ACCEPT


def _exact_comparison(dt: xr.DataTree, exact) -> pd.DataFrame:
    """z-scores (NUTS mean - exact mean) / MCSE for every reported posterior quantity."""
    post = dt["posterior"].to_dataset()
    flat = mm.flat_draws(xr.DataTree.from_dict({"posterior": post}))
    mcse = az.mcse(flat)
    rows = []
    for name in flat.data_vars:
        est = float(flat[name].mean())
        want = float(exact.mean(name))
        se = float(mcse[name])
        rows.append((name, est, want, se, (est - want) / se))
    return pd.DataFrame(rows, columns=["parameter", "nuts", "exact", "mcse", "z"]).set_index("parameter")


def test_eight_schools_noncentered_matches_exact(nuts_fit, eight):
    exact = analytic.fit(eight)
    assert exact.mean("tau") == pytest.approx(6.58, abs=0.01)
    cmp = _exact_comparison(nuts_fit("eight_schools"), exact)
    assert set(cmp.index) == {"tau", "mu", "theta_new", *(f"theta[{s}]" for s in eight.labels)}
    bad = cmp[cmp["z"].abs() > EXACT_TOL_MCSE]
    assert bad.empty, f"NUTS means more than {EXACT_TOL_MCSE} MCSE from exact:\n{bad}"


def test_bcg_ablat_noncentered_matches_exact(nuts_fit, bcg_ablat):
    exact = analytic.fit(bcg_ablat)
    cmp = _exact_comparison(nuts_fit("bcg", "~ ablat"), exact)
    assert {"tau", "beta[Intercept]", "beta[ablat]", "theta_new"} <= set(cmp.index)
    assert sum(i.startswith("theta[") for i in cmp.index) == bcg_ablat.J
    bad = cmp[cmp["z"].abs() > EXACT_TOL_MCSE]
    assert bad.empty, f"NUTS means more than {EXACT_TOL_MCSE} MCSE from exact:\n{bad}"


CENTERED = dict(parameterization="centered", target_accept=0.8, max_retries=0)


def test_centered_eight_schools_diverges(nuts_fit, eight):
    """The centred funnel: divergences at the samplers' usual target_accept, reported and warned."""
    dt = nuts_fit("eight_schools", **CENTERED)
    _check_layout(dt, eight, "mu", noncentered=False)
    n = mm.divergences(dt)
    assert n > 0
    assert dt.attrs["divergences"] == n and dt.attrs["retried"] == 0
    assert dt.attrs["target_accept_attempts"] == [0.8]
    caught = nuts_fit.warnings("eight_schools", **CENTERED)
    assert any(issubclass(w.category, mm.SamplingWarning) and "divergent" in str(w.message) for w in caught)


def test_seeded_fits_are_reproducible(nuts_fit, eight):
    ref = nuts_fit("eight_schools")
    again = mm.sample(eight, seed=nuts_fit.seed)
    for group, var in [("posterior", "tau"), ("posterior", "theta"), ("posterior_predictive", "y"),
                       ("log_likelihood", "y"), ("sample_stats", "diverging")]:
        np.testing.assert_array_equal(again[group][var].values, ref[group][var].values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SamplingWarning)  # 100 draws: R-hat may exceed 1.01
        other = mm.sample(eight, seed=nuts_fit.seed + 1, draws=100, tune=100, max_retries=0)
    assert not np.array_equal(other["posterior"]["tau"].values, ref["posterior"]["tau"].values[:, :100])


def _assert_same_arrays(a: xr.DataTree, b: xr.DataTree) -> None:
    for group in GROUPS:
        for var in a[group].data_vars:
            x, y = a[group][var].values, b[group][var].values
            np.testing.assert_array_equal(x, y, err_msg=f"{group}/{var}")


def test_reused_sampler_gives_the_freshly_compiled_draws(nuts_fit, eight):
    ref = nuts_fit("eight_schools")
    cached = mm.compiled_sampler(eight)  # this process's sampler for 8 studies, flat priors, non-centred
    assert cached is mm.compiled_sampler(eight.with_effects(eight.y + 1.0))
    other = metapool.MetaData.from_arrays(eight.y[::-1] + 3.0, eight.se * 1.5, labels=[f"s{i}" for i in range(8)])
    kw = {"seed": 7, "draws": 200, "tune": 200, "max_retries": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SamplingWarning)
        fresh = mm.sample(other, reuse=False, **kw)
        reused = mm.sample(other, **kw)
    assert (mm.run_info(fresh).compiled, mm.run_info(reused).compiled) == ("fresh", "reused")
    assert mm.run_info(reused).compile_time == 0.0 < mm.run_info(fresh).compile_time
    _assert_same_arrays(fresh, reused)
    for group in ("posterior", "posterior_predictive", "log_likelihood", "observed_data", "constant_data"):
        assert list(reused[group]["study"].values) == list(other.labels), group
    np.testing.assert_array_equal(reused["observed_data"]["y"].values, other.y)
    # the effects moved the posterior: mu's mean is near the new data's, not eight schools'
    assert float(reused["posterior"]["mu"].mean()) > float(ref["posterior"]["mu"].mean()) + 1.5
    # and back: the cached sampler, now holding `other`, reproduces the first fit exactly
    _assert_same_arrays(mm.sample(eight, seed=nuts_fit.seed), ref)


def test_compiled_sampler_refuses_another_shape(eight, bcg_ablat):
    cached = mm.compiled_sampler(eight)
    with pytest.raises(ValueError, match="does not match"):
        cached.bind(mm.model_spec(bcg_ablat))
    with pytest.raises(ValueError, match="does not match"):
        cached.bind(mm.model_spec(eight, tau_prior="halfnormal:5"))
    key = mm.sampling.compile_key
    assert key(mm.model_spec(eight)) == key(mm.model_spec(eight.with_effects(eight.y * 2)))
    assert key(mm.model_spec(eight, tau_prior="halfnormal:5")) != key(mm.model_spec(eight, tau_prior="halfnormal:5.000001"))
    assert key(mm.model_spec(eight)) != key(mm.model_spec(eight, parameterization="centered"))
    assert key(mm.model_spec(eight)) != key(mm.model_spec(eight), "pymc")


# ----------------------------------------------------------------------------- summaries


def test_summarize_table(nuts_fit, eight):
    dt = nuts_fit("eight_schools")
    table = mm.summarize(dt)
    assert list(table.columns) == [*mm.SUMMARY_COLUMNS, *mm.MCMC_COLUMNS]
    assert table.index.name == "parameter"
    want = ["tau", "mu", *(f"theta[{s}]" for s in eight.labels), "theta_new", *(f"y_pred[{s}]" for s in eight.labels)]
    assert list(table.index) == want
    assert list(table.index) == list(analytic.fit(eight).summary().index)  # same names as the exact engine
    tau = dt["posterior"]["tau"]
    row = table.loc["tau"]
    assert row["mean"] == pytest.approx(float(tau.mean()))
    assert row["q50"] == pytest.approx(float(np.median(tau.values)))
    assert row["q2.5"] == pytest.approx(float(np.quantile(tau.values, 0.025)))
    hdi = az.hdi(dt["posterior"].to_dataset()[["tau"]], prob=0.95)["tau"].values
    assert (row["hdi95_low"], row["hdi95_high"]) == pytest.approx(tuple(hdi))
    assert row["r_hat"] == pytest.approx(float(az.rhat(dt["posterior"].to_dataset()[["tau"]])["tau"]))
    assert row["ess_bulk"] == pytest.approx(float(az.ess(dt["posterior"].to_dataset()[["tau"]])["tau"]))
    y_a = dt["posterior_predictive"]["y"].sel(study="A")
    assert table.loc["y_pred[A]", "mean"] == pytest.approx(float(y_a.mean()))
    assert (table["hdi95_low"] <= table["q50"]).all() and (table["q50"] <= table["hdi95_high"]).all()


def test_summarize_regression_names_and_quantiles(nuts_fit):
    table = mm.summarize(nuts_fit("bcg", "~ ablat"), quantiles=(0.1, 0.9))
    assert {"beta[Intercept]", "beta[ablat]", "y_pred[Aronson 1948]"} <= set(table.index)
    assert "mu" not in table.index and not any(i.startswith("z") for i in table.index)
    assert list(table.columns[2:4]) == ["q10", "q90"]


def test_divergences_counts_sample_stats(nuts_fit):
    dt = nuts_fit("eight_schools", **CENTERED)
    assert mm.divergences(dt) == int(dt["sample_stats"]["diverging"].values.sum())
    assert mm.divergences(xr.DataTree.from_dict({"posterior": dt["posterior"].to_dataset()})) == 0


# ----------------------------------------------------------------------------- other samplers, prior predictive


def test_pymc_nuts_sampler_gives_the_same_layout(eight):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = mm.sample(eight, draws=150, tune=150, chains=2, cores=1, seed=3, nuts_sampler="pymc", max_retries=0)
    assert dt.attrs["nuts_sampler"] == "pymc"
    assert dt["posterior"].sizes["chain"] == 2 and dt["posterior"].sizes["draw"] == 150
    _check_layout(dt, eight, "mu", noncentered=True)


def test_prior_predictive(eight):
    dt = mm.sample_prior_predictive(eight, "halfnormal:5", "normal:0,10", draws=400, seed=1)
    prior = dt["prior"]
    assert {"tau", "mu", "theta", "theta_new", "z", "z_new"} <= set(prior.data_vars)
    assert dt["prior_predictive"]["y"].dims == ("chain", "draw", "study")
    assert dt["prior_predictive"].sizes["draw"] == 400
    assert float(prior["tau"].min()) >= 0.0
    # tau ~ half-normal(5): E[tau] = 5 sqrt(2 / pi) = 3.99; sd of the mean over 400 draws ~ 0.15
    assert float(prior["tau"].mean()) == pytest.approx(5 * np.sqrt(2 / np.pi), abs=0.6)
    again = mm.sample_prior_predictive(eight, "halfnormal:5", "normal:0,10", draws=400, seed=1)
    np.testing.assert_array_equal(again["prior_predictive"]["y"].values, dt["prior_predictive"]["y"].values)


def test_prior_predictive_refuses_flat_priors(eight):
    with pytest.raises(ValueError, match="tau prior 'flat'.*improper"):
        mm.sample_prior_predictive(eight, "flat", "normal:0,1", draws=10)
    with pytest.raises(ValueError, match="mu prior 'flat'"):
        mm.sample_prior_predictive(eight, "halfnormal:1", None, draws=10)


# ----------------------------------------------------------------------------- run facts
def test_run_info_reads_the_fit_attrs(nuts_fit):
    dt = nuts_fit("eight_schools", **CENTERED)
    info = mm.run_info(dt)
    assert isinstance(info, mm.RunInfo)
    assert (info.engine, info.sampler, info.parameterization) == ("nuts", "nutpie", "centered")
    assert (info.tau_prior, info.beta_prior, info.x_new) == ("flat", "flat", (1.0,))
    assert (info.seed, info.chains, info.tune) == (nuts_fit.seed, 4, 1000)
    assert info.draws == info.draws_requested == dt["posterior"].sizes["draw"] == 1000
    assert info.target_accept == 0.8 and info.target_accept_attempts == (0.8,)
    assert info.reruns == 0 and info.draws_doubled == 0 and info.reruns_text() == ()
    assert info.divergences == mm.divergences(dt) > 0
    assert info.attempts == (mm.Attempt(0.8, 1000, info.divergences, info.r_hat_max),)
    depth = dt["sample_stats"]
    flag = "maxdepth_reached" if "maxdepth_reached" in depth else None
    want = int(depth[flag].values.sum()) if flag else int((depth["tree_depth"].values >= 10).sum())
    assert info.treedepth_hits == want
    assert info.r_hat_max == pytest.approx(max(float(v.max()) for v in az.rhat(dt["posterior"].to_dataset()).data_vars.values()))
    assert info.rhat_limit == 1.01
    assert 0 < info.sampling_time <= info.sampling_time_total < info.wall_time
    assert dict(info.versions)["pymc"] == pm.__version__
    # the record and the attrs are one pair of functions: attrs -> record -> attrs is the identity
    assert mm.RunInfo.from_attrs(info.to_attrs()) == info
    assert {k: dt.attrs[k] for k in info.to_attrs()} == info.to_attrs()
    assert mm.run_info(xr.DataTree.from_dict({"posterior": dt["posterior"].to_dataset()})) == info


def test_reruns_are_described_one_line_each():
    info = mm.RunInfo(attempts=(mm.Attempt(0.8, 1000, 3, 1.0104), mm.Attempt(0.95, 2000, 0, 1.004)), rhat_limit=1.01)
    assert info.reruns == 1 and info.draws_doubled == 1 and info.retry_reasons == ("divergences", "r_hat")
    assert info.reruns_text() == ("rerun 1: 3 divergences at target_accept 0.8 -> target_accept 0.95; "
                                  "draws 1000 -> 2000 because max r_hat 1.0104 > 1.01",)
    again = mm.RunInfo.from_attrs(info.to_attrs())
    assert again == info and info.to_attrs()["retry_reason"] == "divergences,r_hat"
    assert mm.RunInfo.from_attrs({}) == mm.RunInfo()                  # draws without run facts


def test_the_shared_fit_cache_refuses_modified_fits():
    """nuts_fit's DataTrees are shared across tests: in-place changes raise, other changes are caught."""
    from conftest import NutsFitCache, _freeze, fingerprint

    cache = NutsFitCache()
    key = cache._key("eight_schools", None, "noncentered", {})
    dt = xr.DataTree.from_dict({"posterior": xr.Dataset({"mu": (("chain", "draw"), np.zeros((2, 3)))})})
    _freeze(dt)
    cache._fits[key], cache._prints[key] = dt, fingerprint(dt)
    assert cache("eight_schools") is dt
    with pytest.raises(ValueError, match="read-only"):
        dt["posterior"]["mu"].values[0, 0] = 1.0
    dt["posterior"].attrs["changed"] = 1
    with pytest.raises(AssertionError, match="modified by an earlier test"):
        cache("eight_schools")
