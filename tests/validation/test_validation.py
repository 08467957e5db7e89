"""metapool.validation.compare and check_analytic: every threshold, failing reports, eight schools.

The NUTS fits come from the session cache in conftest.py (``nuts_fit``), with the same keys as
tests/test_models.py, so no extra fit is made. The unit tests build their draws from the exact
engine (independent draws) and then damage them in one known way each.
"""

from __future__ import annotations

import dataclasses
import math

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import metapool.datasets as datasets
from metapool import MetaData, analytic
from metapool.priors import HalfNormalTau
from metapool.validation import AnalyticCheckReport, ComparisonReport, check_analytic, compare, sampler_diagnostics
from metapool.validation._common import ks_pvalue, ks_uniform, sidak_alpha, z_critical, z_family_alpha

#: The centred fit at the samplers' usual target_accept (test_models.py uses the same with 1000 draws).
# 4000 draws: the funnel's bias of tau is fixed while its MCSE shrinks as 1 / sqrt(draws), so the bias stands
# well clear of z_crit (at 1000 draws its size in MCSE units varied with the seed around z_crit).
CENTERED = dict(parameterization="centered", target_accept=0.8, max_retries=0, draws=4000)
CHAINS, DRAWS = 4, 500


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def eight() -> MetaData:
    return datasets.load("eight_schools")


@pytest.fixture(scope="module")
def exact8(eight):
    return analytic.fit(eight)


def _sample_stats(diverging=None, energy=None, depth=None, seed=0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = (CHAINS, DRAWS)
    return xr.Dataset({
        "diverging": (("chain", "draw"), np.zeros(shape, bool) if diverging is None else diverging),
        "energy": (("chain", "draw"), rng.standard_normal(shape) if energy is None else energy),
        "tree_depth": (("chain", "draw"), np.full(shape, 3) if depth is None else depth),
    })


def _fake_fit(exact, seed: int = 1, posterior: dict | None = None, **stats_kw) -> xr.DataTree:
    """Exact (independent) draws in the NUTS layout, with a sample_stats group and optional edits."""
    dt = exact.sample(draws=DRAWS, chains=CHAINS, seed=seed)
    groups = {k: dt[k].to_dataset() for k in dt.children}
    if posterior:
        post = groups["posterior"].copy()
        for name, fn in posterior.items():
            post[name] = fn(post[name])
        groups["posterior"] = post
    groups["sample_stats"] = _sample_stats(**stats_kw)
    return xr.DataTree.from_dict(groups)


def _failures(report, parameter: str, check: str | None = None) -> list:
    """The report's Failure records of one parameter (and check)."""
    return [f for f in report.failures if f.parameter == parameter and (check is None or f.check == check)]


# ----------------------------------------------------------------------------- multiplicity, KS
def test_z_critical_is_sidak_adjusted_from_the_one_test_threshold():
    assert z_family_alpha(4.0) == pytest.approx(2 * stats.norm.sf(4.0), rel=1e-12)
    assert z_critical(4.0, 1) == pytest.approx(4.0, rel=1e-12)
    # 66 tests (eight schools: 11 parameters x mean + 5 quantiles): same family-wise level.
    a66 = 1 - (1 - 2 * stats.norm.sf(4.0)) ** (1 / 66)
    assert z_critical(4.0, 66) == pytest.approx(stats.norm.isf(a66 / 2), rel=1e-10)
    assert z_critical(4.0, 66) == pytest.approx(4.8997, abs=1e-3)
    assert z_critical(4.0, 10) < z_critical(4.0, 100) < z_critical(4.0, 1000)
    assert sidak_alpha(0.01, 1) == pytest.approx(0.01)
    assert 0.01 / 10 < sidak_alpha(0.01, 10) < 0.01 / 9.9
    with pytest.raises(ValueError):
        sidak_alpha(1.5, 3)


def test_ks_statistic_and_ess_pvalue_match_scipy():
    u = np.random.default_rng(3).random(400)
    ref = stats.kstest(u, "uniform", method="exact")
    assert ks_uniform(u) == pytest.approx(ref.statistic, rel=1e-12)
    assert ks_pvalue(ks_uniform(u), 400) == pytest.approx(ref.pvalue, rel=1e-6)
    # a smaller effective sample size gives a larger p-value for the same distance
    assert ks_pvalue(0.08, 100) > ks_pvalue(0.08, 400)


# ----------------------------------------------------------------------------- unit tests of compare
def test_independent_exact_draws_pass_with_full_table(exact8, eight):
    rep = compare(_fake_fit(exact8), exact8)
    assert isinstance(rep, ComparisonReport)
    assert rep.passed, str(rep)
    assert rep.failures == ()
    names = ["tau", "mu", *(f"theta[{s}]" for s in eight.labels), "theta_new"]
    assert list(rep.table.index) == names
    for col in ["exact_mean", "exact_sd", "exact_q2.5", "exact_q97.5", "mcmc_mean", "mcmc_q50", "mcse_mean",
                "mcse_q2.5", "z_mean", "z_q2.5", "z_q25", "z_q50", "z_q75", "z_q97.5", "ess_bulk", "ess_tail",
                "r_hat", "pit_ks", "pit_p", "wasserstein_sd", "max_abs_z", "passed"]:
        assert col in rep.table.columns, col
    t = rep.table
    assert t.loc["tau", "exact_mean"] == pytest.approx(exact8.mean("tau"), rel=1e-12)
    assert t.loc["mu", "exact_q2.5"] == pytest.approx(float(exact8.quantile("mu", 0.025)), rel=1e-9)
    x = exact8.sample(draws=DRAWS, chains=CHAINS, seed=1)["posterior"]["tau"].values
    assert t.loc["tau", "mcmc_mean"] == pytest.approx(x.mean())
    assert t.loc["tau", "z_mean"] == pytest.approx((x.mean() - exact8.mean("tau")) / t.loc["tau", "mcse_mean"])
    assert np.isfinite(t.filter(like="z_").to_numpy()).all()
    # independent draws: ESS close to n, Wasserstein distance of two samples of 2000 is small
    assert (t["ess_bulk"] > 1000).all() and (t["r_hat"] < 1.01).all()
    assert (t["wasserstein_sd"] < 0.15).all()
    # the distance is ArviZ's marginal Wasserstein-1 (on all draws) to exact draws seeded with `seed`
    ref = exact8.sample(draws=DRAWS, chains=CHAINS, seed=0)["posterior"].to_dataset()[["tau"]]
    mine = exact8.sample(draws=DRAWS, chains=CHAINS, seed=1)["posterior"].to_dataset()[["tau"]]
    w = az.wasserstein(mine, ref, joint=False, num_samples=CHAINS * DRAWS, round_to="none")
    assert t.loc["tau", "wasserstein_sd"] == pytest.approx(w / exact8.sd("tau"), rel=1e-9)
    th = rep.thresholds
    assert th["n_z_tests"] == 66 and th["z_crit"] == pytest.approx(z_critical(4.0, 66))
    assert th["min_ess"] == 400 and th["rhat_max"] == 1.01 and th["bfmi_min"] == 0.3
    assert rep.divergences == 0 and rep.treedepth_hits == 0 and len(rep.bfmi) == CHAINS


def test_exact_density_is_the_derivative_of_the_exact_cdf(exact8):
    for name in ("tau", "mu", "theta[A]", "theta_new"):
        x = np.asarray(exact8.quantile(name, [0.025, 0.5, 0.975]))
        h = 1e-5 * exact8.sd(name)
        numeric = (exact8.cdf(name, x + h) - exact8.cdf(name, x - h)) / (2 * h)
        np.testing.assert_allclose(exact8.pdf(name, x), numeric, rtol=1e-6)
    assert exact8.pdf("mu", [np.inf, -np.inf]).tolist() == [0.0, 0.0]


def test_mcse_uses_the_exact_density_and_the_indicator_ess(exact8):
    dt = _fake_fit(exact8, seed=3)
    rep = compare(dt, exact8)
    t = rep.table
    post = dt["posterior"]
    for name, x in (("tau", post["tau"].values), ("theta[C]", post["theta"].sel(study="C").values)):
        for p in (0.025, 0.5, 0.975):
            lab = f"q{100 * p:g}"
            xp = float(exact8.quantile(name, p))
            ind = xr.Dataset({"i": (("chain", "draw"), (x <= xp).astype(float))})
            ess = float(az.ess(ind, method="mean")["i"])
            want = np.sqrt(p * (1 - p) / ess) / float(exact8.pdf(name, xp))
            assert t.loc[name, f"mcse_{lab}"] == pytest.approx(want, rel=1e-10)
            assert t.loc[name, f"ess_{lab}"] == pytest.approx(ess, rel=1e-12)
            assert t.loc[name, f"z_{lab}"] == pytest.approx((np.quantile(x, p) - xp) / want, rel=1e-9)
            arviz = float(az.mcse(xr.Dataset({"v": (("chain", "draw"), x)}), method="quantile", prob=p)["v"])
            assert t.loc[name, f"arviz_mcse_{lab}"] == pytest.approx(arviz, rel=1e-12)
        ess_mean = float(az.ess(xr.Dataset({"v": (("chain", "draw"), x)}), method="mean")["v"])
        assert t.loc[name, "mcse_mean"] == pytest.approx(exact8.sd(name) / np.sqrt(ess_mean), rel=1e-10)
    assert (t["mcse_fallbacks"] == 0).all()
    # ArviZ's z scores are reported, not tested: the tested count is unchanged
    assert rep.thresholds["n_z_tests"] == 66
    old = compare(dt, exact8, mcse="arviz").table
    np.testing.assert_allclose(old["mcse_q97.5"], t["arviz_mcse_q97.5"], rtol=1e-12)
    with pytest.raises(ValueError, match="mcse"):
        compare(dt, exact8, mcse="bootstrap")


def test_biased_draws_fail_the_z_test(exact8):
    sd = exact8.sd("theta[A]")
    shift = lambda da: da + xr.where(da.study == "A", 0.25 * sd, 0.0)  # noqa: E731
    rep = compare(_fake_fit(exact8, posterior={"theta": shift}), exact8)
    assert not rep.passed
    assert rep.failed_parameters == ("theta[A]",)
    (f,) = _failures(rep, "theta[A]", "z_mean")
    assert f.value == rep.table.loc["theta[A]", "z_mean"] > f.limit == rep.thresholds["z_crit"]
    assert (f.get("estimate"), f.get("exact"), f.get("mcse")) == tuple(
        rep.table.loc["theta[A]", ["mcmc_mean", "exact_mean", "mcse_mean"]])
    assert f.message.startswith("mean: z = +")
    assert rep.table.loc["theta[A]", "z_mean"] > 8      # 0.25 sd / (sd / sqrt(2000)) ~ 11
    assert not rep.table.loc["theta[A]", "passed"] and rep.table.loc["theta[B]", "passed"]
    # a threshold above the largest |z| lets it through
    loose = compare(_fake_fit(exact8, posterior={"theta": shift}), exact8, z_threshold=30.0)
    assert not [f for f in loose.failures if f.parameter == "theta[A]" and f.check.startswith("z_")]


def test_rhat_above_threshold_fails(exact8):
    # Chains 0 and 1 of mu moved apart (pooled mean unchanged): split R-hat about 1.05.
    def split(da):
        off = xr.DataArray([0.45, -0.45, 0.0, 0.0], dims="chain") * exact8.sd("mu")
        return da + off
    dt = _fake_fit(exact8, posterior={"mu": split})
    rhat = float(az.rhat(dt["posterior"].to_dataset()[["mu"]])["mu"])
    assert 1.04 < rhat < 1.07
    rep = compare(dt, exact8)
    assert not rep.passed
    (f,) = _failures(rep, "mu", "r_hat")
    assert f.value == pytest.approx(rhat) and f.limit == 1.01 and f.value > f.limit
    assert f.message.startswith("r_hat = 1.0") and f.message.endswith("> 1.01")
    assert rep.table.loc["mu", "r_hat"] == pytest.approx(rhat)
    ok = compare(dt, exact8, rhat_max=1.1)
    assert not _failures(ok, "mu", "r_hat")


def test_a_single_divergence_fails(exact8):
    div = np.zeros((CHAINS, DRAWS), bool)
    div[2, 17] = True
    dt = _fake_fit(exact8, diverging=div)
    rep = compare(dt, exact8)
    assert not rep.passed
    assert rep.divergences == 1
    assert rep.failed_parameters == ("sampler",)
    (f,) = _failures(rep, "sampler")
    assert (f.check, f.value, f.limit, f.get("per_chain")) == ("divergences", 1, 0, (0, 0, 1, 0))
    assert f.message.startswith("1 divergent transition (per chain 0, 0, 1, 0) > 0")
    assert compare(dt, exact8, max_divergences=1).passed


def test_low_ebfmi_fails(exact8):
    walk = np.cumsum(np.random.default_rng(5).standard_normal((CHAINS, DRAWS)), axis=1)  # E-BFMI << 0.3
    dt = _fake_fit(exact8, energy=walk)
    bfmi = np.asarray(az.bfmi(dt["sample_stats"].to_dataset()[["energy"]])["energy"].values)
    assert (bfmi < 0.3).all()
    rep = compare(dt, exact8)
    assert not rep.passed and rep.failed_parameters == ("sampler",)
    assert rep.bfmi == pytest.approx(tuple(bfmi))
    (f,) = _failures(rep, "sampler")
    assert f.check == "bfmi" and f.limit == 0.3 and f.value == pytest.approx(bfmi.min()) and f.value < 0.3
    assert [i for i, _ in f.get("chains")] == list(range(CHAINS))
    assert f.message.startswith("E-BFMI below 0.3 in chain(s) 0 (")
    # white-noise energies have E-BFMI near 2
    assert all(b > 1.5 for b in compare(_fake_fit(exact8), exact8).bfmi)


def test_too_few_effective_draws_fail(exact8):
    rep = compare(_fake_fit(exact8), exact8, min_ess=5000)   # 2000 independent draws
    assert not rep.passed
    (f,) = _failures(rep, "tau", "ess_bulk")
    assert f.limit == 5000 and f.value == rep.table.loc["tau", "ess_bulk"] < 5000
    assert f.message.startswith("ess_bulk = ") and "< 5000" in f.message


def test_too_few_effective_draws_alone_are_inconclusive_not_failed(exact8):
    rep = compare(_fake_fit(exact8), exact8, min_ess=5000)   # 2000 independent draws: every ESS short
    assert not rep.passed and not rep.failed and rep.inconclusive and rep.outcome == "INCONCLUSIVE"
    assert rep.problems == () and rep.shortfalls == rep.failures
    assert {f.check for f in rep.shortfalls} <= {"ess_bulk", "ess_tail"} and all(f.inconclusive for f in rep.failures)
    n_short = int((rep.table[["ess_bulk", "ess_tail"]] < 5000).to_numpy().sum())
    assert len(rep.shortfalls) == n_short == 2 * len(rep.table)
    text = str(rep)
    assert text.startswith(f"metapool validation: NUTS vs exact: INCONCLUSIVE ({n_short} ESS shortfalls: ")
    assert "FAILED" not in text and "\nfailures:" not in text
    # the block says how many times the draws bring the smallest ESS to the minimum
    factor = math.ceil(10 * 5000 / rep.table[["ess_bulk", "ess_tail"]].to_numpy().min()) / 10
    assert f"\ninconclusive (ESS below its minimum, the Monte Carlo errors are not yet trustworthy; about {factor:g}x " \
           "the draws reach it):\n" in text
    for f in rep.failures:
        assert f"  {f.parameter}: {f.message}\n" in text


def test_a_failed_cross_check_with_too_few_draws_is_failed(exact8):
    sd = exact8.sd("tau")
    rep = compare(_fake_fit(exact8, posterior={"tau": lambda da: da + 0.3 * sd}), exact8, min_ess=5000)
    assert rep.failed and not rep.inconclusive and rep.outcome == "FAILED"
    assert {f.check for f in rep.problems} >= {"z_mean"} and all(f.parameter == "tau" for f in rep.problems)
    assert len(rep.problems) + len(rep.shortfalls) == len(rep.failures)
    k = len(rep.shortfalls)
    assert str(rep).startswith(f"metapool validation: NUTS vs exact: FAILED ({len(rep.problems)} problems; "
                               f"{k} ESS shortfalls)")
    text = str(rep)
    assert text.index("\nfailures:\n  tau: ") < text.index("\ninconclusive (")


def test_treedepth_hits_are_reported_not_failed(exact8):
    depth = np.full((CHAINS, DRAWS), 3)
    depth[0, :7] = 10
    rep = compare(_fake_fit(exact8, depth=depth), exact8)
    assert rep.treedepth_hits == 7 and rep.passed
    assert any("maximum tree depth" in n for n in rep.notes)
    assert sampler_diagnostics(_fake_fit(exact8, depth=depth), max_treedepth=11)["treedepth_hits"] == 0


def test_wrong_distribution_fails_the_pit_test(exact8):
    # theta[B] replaced by normal draws with the exact mean and 1.3 x the exact sd
    rng = np.random.default_rng(11)
    m, s = exact8.mean("theta[B]"), exact8.sd("theta[B]")

    def widen(da):
        fake = m + 1.3 * s * rng.standard_normal((CHAINS, DRAWS))
        return xr.where(da.study == "B", xr.DataArray(fake, dims=("chain", "draw")), da)
    rep = compare(_fake_fit(exact8, posterior={"theta": widen}), exact8)
    assert rep.failed_parameters == ("theta[B]",)
    (f,) = _failures(rep, "theta[B]", "pit")
    assert f.value == rep.table.loc["theta[B]", "pit_p"] < f.limit == rep.thresholds["pit_p_min"]
    assert f.get("ks") == rep.table.loc["theta[B]", "pit_ks"] and f.message.startswith("PIT KS distance")
    assert rep.table.loc["theta[B]", "pit_p"] < rep.thresholds["pit_p_min"]
    assert rep.table.loc["theta[B]", "wasserstein_sd"] > rep.table.drop("theta[B]")["wasserstein_sd"].max()


def test_mean_z_is_skipped_where_the_exact_mean_does_not_exist():
    # J = 3 with flat priors: p(tau | y) ~ tau^-2, no posterior mean of tau, mu or theta_new.
    data = MetaData.from_arrays([28.0, 8.0, -3.0], [15.0, 10.0, 16.0], labels=["A", "B", "C"])
    with pytest.warns(analytic.MomentWarning):
        post = analytic.fit(data)
        assert np.isnan(post.summary().loc["tau", "mean"])
    rep = compare(_fake_fit(post, seed=4), post)
    for name in ("tau", "mu", "theta_new"):
        assert np.isnan(rep.table.loc[name, "z_mean"]) and np.isnan(rep.table.loc[name, "exact_mean"])
        assert np.isfinite(rep.table.loc[name, "z_q50"])
    assert np.isfinite(rep.table.loc["theta[A]", "z_mean"])
    assert rep.thresholds["n_z_tests"] == 6 * 6 - 3     # 6 parameters x (mean + 5 quantiles), 3 means missing
    assert any("mean z skipped for tau, mu, theta_new" in n for n in rep.notes)
    assert rep.passed, str(rep)


def test_draws_from_another_prior_fail_the_setup(exact8, eight):
    other = analytic.fit(eight, HalfNormalTau(5.0))
    rep = compare(_fake_fit(other), exact8)
    assert not rep.passed
    (f,) = _failures(rep, "setup")
    assert (f.check, f.value, f.limit) == ("tau_prior", "halfnormal:5", "flat")
    assert f.message == "tau_prior of the draws is 'halfnormal:5' but the exact posterior used 'flat'"


def test_failing_report_names_every_failed_parameter_and_why(exact8):
    div = np.zeros((CHAINS, DRAWS), bool)
    div[0, :3] = True
    sd = exact8.sd("tau")
    rep = compare(_fake_fit(exact8, posterior={"tau": lambda da: da + 0.3 * sd}, diverging=div), exact8)
    text = str(rep)
    assert text.startswith("metapool validation: ")
    assert "FAILED" in text and "PASSED" not in text
    for f in rep.failures:
        assert f"  {f.parameter}: {f.message}\n" in text
    assert {"sampler", "tau"} <= set(rep.failed_parameters)
    div = _failures(rep, "sampler", "divergences")[0]
    assert div.value == 3 and div.limit == 0
    assert _failures(rep, "tau", "z_mean")[0].value > rep.thresholds["z_crit"]
    assert "3 divergent transitions" in text
    assert "tau: mean: z = +" in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.failures = ()  # type: ignore[misc]


# ----------------------------------------------------------------------------- eight schools, NUTS
def test_centered_eight_schools_fails(nuts_fit, exact8):
    dt = nuts_fit("eight_schools", **CENTERED)
    rep = compare(dt, exact8)
    assert not rep.passed and rep.failed and rep.outcome == "FAILED"
    assert rep.divergences > 0
    (div,) = _failures(rep, "sampler", "divergences")
    assert div.value == rep.divergences > div.limit == 0
    # the funnel biases tau: its quantiles sit far outside the Monte Carlo error, R-hat is high
    tau = rep.table.loc["tau"]
    assert tau["max_abs_z"] > rep.thresholds["z_crit"]
    assert tau["mcmc_q2.5"] > tau["exact_q2.5"]          # too few small values of tau
    assert tau["r_hat"] > 1.01
    assert rep.failed_parameters[:2] == ("sampler", "tau")
    q = _failures(rep, "tau", "z_q2.5")[0]
    assert q.value == tau["z_q2.5"] > q.limit == rep.thresholds["z_crit"]
    assert "tau: quantile q2.5: z = +" in str(rep)


def test_noncentered_eight_schools_passes(nuts_fit, exact8):
    rep = compare(nuts_fit("eight_schools"), exact8)
    assert rep.passed and rep.outcome == "PASSED", str(rep)
    assert rep.divergences == 0
    assert str(rep).startswith("metapool validation: NUTS (noncentered) vs exact: PASSED")
    assert (rep.table["r_hat"] <= 1.01).all()


# ----------------------------------------------------------------------------- check_analytic
def test_check_analytic_passes_and_reports_tiny_differences(eight):
    rep = check_analytic(eight, seed=0)
    assert isinstance(rep, AnalyticCheckReport)
    assert rep.passed, str(rep)
    post = analytic.fit(eight)
    summary = post.summary()
    assert list(rep.differences.index) == list(summary.index)
    assert list(rep.differences.columns) == list(summary.columns)
    assert rep.max_abs_difference < 1e-7
    assert np.nanmax(rep.differences.abs().to_numpy()) == pytest.approx(rep.max_abs_difference)
    assert rep.max_relative_difference <= rep.thresholds["diff_tol"] == pytest.approx(1e-7)
    assert rep.summary.equals(summary)
    assert list(rep.table.index) == ["tau", "mu", *(f"theta[{s}]" for s in eight.labels), "theta_new"]
    assert (rep.table["max_abs_z"] <= rep.thresholds["z_crit"]).all()
    text = str(rep)
    assert "PASSED" in text and "rtol 1e-08 vs 1e-12" in text


def test_check_analytic_meta_regression_and_a_report_that_must_fail():
    bcg = datasets.load("bcg", covariates="~ ablat")
    rep = check_analytic(bcg, HalfNormalTau(1.0), draws=500)
    assert rep.passed, str(rep)
    assert {"beta[Intercept]", "beta[ablat]"} <= set(rep.table.index)
    strict = check_analytic(bcg, HalfNormalTau(1.0), draws=500, diff_tol=1e-30)
    assert not strict.passed
    assert all(f.check.startswith("change_") and f.value > f.limit == 1e-30 for f in strict.failures)
    first = strict.failures[0]
    col = first.check[len("change_"):]
    assert first.value == strict.relative_differences.at[first.parameter, col]
    assert first.get("difference") == strict.differences.at[first.parameter, col]
    assert "FAILED" in str(strict) and f"  {first.parameter}: {first.message}" in str(strict)
    with pytest.raises(ValueError):
        check_analytic(bcg, rtol=1e-8, fine_rtol=1e-6)


# ----------------------------------------------------------------------------- verdict records
def test_values_print_apart_from_their_limits():
    from metapool.numfmt import format_pair

    assert format_pair(1.0104, 1.01, 3, "f", limit_format="g") == ("1.0104", "1.01")
    assert format_pair(1.2345, 1.01, 3, "f", limit_format="g") == ("1.234", "1.01")
    assert format_pair(4.90004, 4.9, 2, "f") == ("4.90004", "4.90000")
    assert format_pair(0.0099996, 0.01, 2, "g") == ("0.0099996", "0.01")
    # the printed order is the true order even when rounding would flip it
    v, lim = format_pair(1.00999, 1.01, 2, "f", limit_format="g")
    assert float(v) < float(lim)


def test_failure_records_render_todays_text():
    from metapool.validation.verdict import Failure, Rule, check, verdict

    f = Failure("mu", "r_hat", 1.0104, 1.01)
    assert f.message == "r_hat = 1.0104 > 1.01" and str(f) == "mu: r_hat = 1.0104 > 1.01"
    z = Failure("tau", "z_q2.5", 4.9012, 4.9011, (("estimate", 1.5), ("exact", 1.0), ("mcse", 0.1)))
    assert z.message == "quantile q2.5: z = +4.9012 (draws 1.5 vs exact 1, mcse 0.1; |z| > 4.9011)"
    table = pd.DataFrame({"r_hat": [1.0, np.nan, 1.02], "z_mean": [0.5, np.nan, -6.0],
                          "mcmc_mean": [1.0, 2.0, 3.0], "exact_mean": [1.0, 2.0, 2.5], "mcse_mean": [1, 1, 0.1]},
                         index=pd.Index(["a", "b", "c"], name="parameter"))
    from metapool.validation.verdict import z_rules

    fails = verdict(table, [*z_rules(table, 4.0), Rule("r_hat", "r_hat", 1.01, missing_fails=True)])
    assert [(f.parameter, f.check, f.value, f.limit) for f in fails[:1]] == [("b", "r_hat", fails[0].value, 1.01)]
    assert np.isnan(fails[0].value)                      # a missing R-hat fails, a missing z is no test
    assert [(f.parameter, f.check, f.value, f.limit) for f in fails[1:]] == [("c", "z_mean", -6.0, 4.0),
                                                                             ("c", "r_hat", 1.02, 1.01)]
    assert fails[1].get("estimate") == 3.0 and fails[1].message.startswith("mean: z = -6.00 (draws 3 vs exact 2.5")
    assert check("sampler", "divergences", 0, 0) is None
    d = check("sampler", "divergences", 2, 0, per_chain=(1, 1))
    assert d.message == "2 divergent transitions (per chain 1, 1) > 0: the sampler missed part of the posterior"
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.value = 0  # type: ignore[misc]
