"""Exact leave-one-study-out, the study-level log-likelihood of both engines, and PSIS beside it."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, stats

import metapool.datasets
from metapool import MetaData, analytic
from metapool.errors import InputError


def _log_marg_tau(tau: float, y, v0, X) -> float:
    """log p(y | tau) under flat priors on tau and beta, up to a constant, by direct linear algebra."""
    V = v0 + tau * tau
    W = np.diag(1.0 / V)
    A = X.T @ W @ X
    bh = np.linalg.solve(A, X.T @ W @ y)
    r = y - X @ bh
    return float(-0.5 * np.linalg.slogdet(A)[1] - 0.5 * np.sum(np.log(V)) - 0.5 * r @ W @ r)


def _direct_loo_density(data: MetaData, j: int) -> float:
    """p(y_j | y_-j) by scipy quad over tau of the predictive N(x_j' bh_-j, s_j^2 + tau^2 + x_j' A_-j^-1 x_j)
    against p(tau | y_-j) (flat priors), normalised by a second quad."""
    keep = np.arange(data.J) != j
    y, v0, X = data.y[keep], data.variance[keep], data.X[keep]
    x, yj, vj = data.X[j], data.y[j], data.variance[j]
    ref = max(_log_marg_tau(t, y, v0, X) for t in np.geomspace(1e-3, 1e3, 200) * np.sqrt(np.median(v0)))

    def post(t):
        return math.exp(_log_marg_tau(t, y, v0, X) - ref)

    def joint(t):
        V = v0 + t * t
        W = np.diag(1.0 / V)
        A = X.T @ W @ X
        bh = np.linalg.solve(A, X.T @ W @ y)
        var = vj + t * t + x @ np.linalg.solve(A, x)
        return post(t) * stats.norm.pdf(yj, x @ bh, math.sqrt(var))

    scale = math.sqrt(np.median(v0))
    pts = [0.0, 0.1 * scale, scale, 10 * scale]
    num = sum(integrate.quad(joint, a, b, epsabs=0, epsrel=1e-11, limit=400)[0] for a, b in zip(pts, pts[1:]))
    num += integrate.quad(joint, pts[-1], np.inf, epsabs=0, epsrel=1e-11, limit=400)[0]
    den = sum(integrate.quad(post, a, b, epsabs=0, epsrel=1e-11, limit=400)[0] for a, b in zip(pts, pts[1:]))
    den += integrate.quad(post, pts[-1], np.inf, epsabs=0, epsrel=1e-11, limit=400)[0]
    return num / den


@pytest.mark.parametrize("name", ["eight", "bcg_ablat"])
def test_exact_loo_against_refits_and_direct_integration(name, request):
    data = request.getfixturevalue(name)
    res = analytic.loo(analytic.fit(data))
    refit = analytic.loo(analytic.fit(data), method="refit")
    np.testing.assert_allclose(res.pointwise.to_numpy(), refit.pointwise.to_numpy(), rtol=1e-7, atol=1e-9)
    for j in (0, data.J // 2, data.J - 1):
        direct = math.log(_direct_loo_density(data, j))
        assert res.pointwise["elpd_loo"].iloc[j] == pytest.approx(direct, abs=1e-7)
    e = res.pointwise["elpd_loo"].to_numpy()
    assert res.elpd == pytest.approx(e.sum(), rel=1e-14)
    assert res.se == pytest.approx(math.sqrt(e.size * np.var(e, ddof=1)), rel=1e-14)


def test_predictive_summaries_are_the_left_out_mixture(eight):
    """Mean, sd, 2.5/97.5 % points and PIT of the left-out predictive, checked against a brute-force
    mixture from an independent refit of the other seven schools (its exact y_pred row has the same
    mixture for tau and beta, plus theta's own noise -- so compare with theta_new, which is exactly
    N(x'beta, tau^2), plus s_j^2)."""
    res = analytic.loo(analytic.fit(eight)).pointwise
    j = 0
    keep = np.arange(eight.J) != j
    post = analytic.fit(eight.subset(keep))
    w = post.weights[post.weights > 0]
    w = w / w.sum()
    tau = post.tau_nodes[post.weights > 0]
    m = post.cond.beta_hat[post.weights > 0, 0]
    s = np.sqrt(eight.variance[j] + tau**2 + post.cond.beta_cov[post.weights > 0, 0, 0])
    mean = w @ m
    assert res["mean"].iloc[j] == pytest.approx(mean, rel=1e-10)
    assert res["sd"].iloc[j] == pytest.approx(math.sqrt(w @ (s**2 + (m - mean) ** 2)), rel=1e-10)
    cdf = lambda x: float(w @ stats.norm.cdf((x - m) / s))  # noqa: E731
    assert cdf(res["q2.5"].iloc[j]) == pytest.approx(0.025, abs=1e-9)
    assert cdf(res["q97.5"].iloc[j]) == pytest.approx(0.975, abs=1e-9)
    assert res["pit"].iloc[j] == pytest.approx(cdf(eight.y[j]), abs=1e-12)
    # the same predictive as the refit's theta_new with s_j^2 of noise: its mean and variance
    assert res["mean"].iloc[j] == pytest.approx(post.mean("theta_new"), rel=1e-8)
    assert res["sd"].iloc[j] ** 2 == pytest.approx(post.sd("theta_new") ** 2 + eight.variance[j], rel=1e-8)


def test_bcg_latitude_improves_the_exact_elpd(bcg, bcg_ablat):
    """The issue's numbers (flat priors): about -14.5 intercept-only against -11.2 with ~ ablat."""
    e0 = analytic.loo(analytic.fit(bcg)).elpd
    e1 = analytic.loo(analytic.fit(bcg_ablat)).elpd
    assert e0 == pytest.approx(-14.54, abs=0.01)
    assert e1 == pytest.approx(-11.25, abs=0.01)
    assert e1 - e0 == pytest.approx(3.3, abs=0.05)


@pytest.mark.parametrize("name", ["eight", "bcg", "bcg_ablat"])
def test_psis_loo_agrees_with_exact_where_k_is_small(name, request):
    data = request.getfixturevalue(name)
    post = analytic.fit(data)
    exact = analytic.loo(post)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        psis = analytic.psis_loo(post.sample(draws=2000, chains=4, seed=2024))
    assert psis.likelihood == "marginal"
    table = analytic.compare_psis(exact, psis)
    assert list(table.index) == list(data.labels)
    np.testing.assert_allclose(table["diff"], table["elpd_psis"] - table["elpd_exact"])
    if (table["pareto_k"] < 0.7).all():
        assert abs(psis.elpd - exact.elpd) < 2 * psis.se
        assert np.abs(table["diff"]).max() < 0.1


def test_conditional_log_likelihood_is_todays(eight):
    post = analytic.fit(eight)
    dt = post.sample(draws=50, chains=2, seed=7, log_likelihood="conditional")
    th = dt["posterior"]["theta"].values
    np.testing.assert_allclose(dt["log_likelihood"]["y"].values, stats.norm.logpdf(eight.y, th, eight.se),
                               rtol=1e-12)
    assert dt["log_likelihood"].attrs["likelihood"] == "conditional"
    marg = post.sample(draws=50, chains=2, seed=7)
    assert marg["log_likelihood"].attrs["likelihood"] == "marginal"
    # same draws either way; the marginal likelihood integrates theta out
    np.testing.assert_array_equal(marg["posterior"]["theta"].values, th)
    tau = marg["posterior"]["tau"].values[..., None]
    mu = marg["posterior"]["mu"].values[..., None]
    np.testing.assert_allclose(marg["log_likelihood"]["y"].values,
                               stats.norm.logpdf(eight.y, mu, np.sqrt(eight.variance + tau**2)), rtol=1e-12)


def test_marginal_log_likelihood_regression(bcg_ablat):
    dt = analytic.fit(bcg_ablat).sample(draws=40, chains=2, seed=3)
    beta = dt["posterior"]["beta"].values
    tau = dt["posterior"]["tau"].values[..., None]
    fit = beta @ bcg_ablat.X.T
    np.testing.assert_allclose(dt["log_likelihood"]["y"].values,
                               stats.norm.logpdf(bcg_ablat.y, fit, np.sqrt(bcg_ablat.variance + tau**2)),
                               rtol=1e-11)


def test_bad_log_likelihood_keyword(eight):
    with pytest.raises(InputError, match="log_likelihood"):
        analytic.fit(eight).sample(draws=5, chains=1, log_likelihood="joint")


def test_improper_after_leaving_one_out_names_the_study():
    data = MetaData.from_arrays([0.1, 0.5, -0.2], [0.2, 0.3, 0.25], labels=["a", "b", "c"])
    post = analytic.fit(data)  # J - p = 2: proper
    with pytest.raises(InputError, match="leaving out study 'a'.*J - p = 1"):
        analytic.loo(post)
    ok = analytic.loo(analytic.fit(data, "halfnormal:0.5", "normal:0,1"))
    assert np.isfinite(ok.elpd)


def test_pooled_loo_closed_form_and_refits(bcg_ablat):
    pooled = analytic.fit_pooled(bcg_ablat)
    res = analytic.loo(pooled)
    for j in (0, 5, 12):
        keep = np.arange(bcg_ablat.J) != j
        sub = analytic.fit_pooled(bcg_ablat.subset(keep))
        x = bcg_ablat.X[j]
        m, v = x @ sub.beta_hat, bcg_ablat.variance[j] + x @ sub.beta_cov @ x
        assert res.pointwise["elpd_loo"].iloc[j] == pytest.approx(stats.norm.logpdf(bcg_ablat.y[j], m, math.sqrt(v)),
                                                                  rel=1e-12)
    # tau -> 0 limit of the hierarchical model: the pooled fit equals a fit with a tiny uniform tau prior
    tiny = analytic.fit(bcg_ablat, "uniform:0,1e-9")
    np.testing.assert_allclose(tiny.cond.beta_hat[0], pooled.beta_hat, rtol=1e-8)


def test_unpooled_needs_a_proper_prior(eight):
    flat = analytic.fit_unpooled(eight)
    with pytest.raises(InputError, match="left-out study has no predictive distribution"):
        analytic.loo(flat)
    res = analytic.loo(analytic.fit_unpooled(eight, "normal:0,20"))
    np.testing.assert_allclose(res.pointwise["elpd_loo"], stats.norm.logpdf(eight.y, 0, np.sqrt(eight.variance + 400)))


def test_exact_loo_speed_path_matches_refit_for_79_studies():
    data = metapool.datasets.load("seed_countries")
    post = analytic.fit(data)
    fast = analytic.loo(post)
    slow = analytic.loo(post, method="refit")
    np.testing.assert_allclose(fast.pointwise["elpd_loo"], slow.pointwise["elpd_loo"], rtol=1e-8, atol=1e-10)


def test_nuts_marginal_and_conditional_log_likelihood(nuts_fit, eight):
    dt = nuts_fit("eight_schools")
    assert dt["log_likelihood"].attrs["likelihood"] == "marginal"
    post = dt["posterior"]
    tau, mu = post["tau"].values[..., None], post["mu"].values[..., None]
    np.testing.assert_allclose(dt["log_likelihood"]["y"].values,
                               stats.norm.logpdf(eight.y, mu, np.sqrt(eight.variance + tau**2)), rtol=1e-10)
    cond = nuts_fit("eight_schools", draws=100, tune=200, max_retries=0, log_likelihood="conditional")
    assert cond["log_likelihood"].attrs["likelihood"] == "conditional"
    th = cond["posterior"]["theta"].values
    np.testing.assert_allclose(cond["log_likelihood"]["y"].values, stats.norm.logpdf(eight.y, th, eight.se),
                               rtol=1e-6)
