"""The exact engine against independent computations: scipy quadrature, closed forms, limits, invariances."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate, special, stats

from metapool import MetaData
from metapool.analytic import MomentWarning, fit
from metapool.analytic import _base as B
from metapool.priors import HalfCauchyTau, HalfNormalTau, NormalBeta, UniformTau

Y8 = np.array([28.0, 8, -3, 7, -1, 1, 18, 12])
S8 = np.array([15.0, 10, 16, 11, 9, 11, 10, 18])
LAB8 = list("ABCDEFGH")


@pytest.fixture(scope="module")
def eight():
    return MetaData.from_arrays(Y8, S8, labels=LAB8)


@pytest.fixture(scope="module")
def eight_post(eight):
    return fit(eight)


@pytest.fixture(scope="module")
def eight_summary(eight_post):
    return eight_post.summary()


# ----------------------------------------------------------------------------- independent reference
def _ref_logpost(t, y=Y8, s=S8, log_prior=lambda t: 0.0):
    """log p(tau | y) for the intercept-only model with flat mu, written out directly (seed's PostTau)."""
    v = s**2 + t**2
    w = 1 / v
    mh = (w @ y) / w.sum()
    return log_prior(t) - 0.5 * np.log(w.sum()) - 0.5 * np.log(v).sum() - 0.5 * (w * (y - mh) ** 2).sum()


class QuadReference:
    """Posterior expectations by scipy.integrate.quad over tau (independent of the engine)."""

    def __init__(self, y=Y8, s=S8, log_prior=lambda t: 0.0, upper=np.inf):
        self.y, self.s, self.lp, self.upper = y, s, log_prior, upper
        c = _ref_logpost(np.median(s), y, s, log_prior)
        self.p = lambda t: np.exp(_ref_logpost(t, y, s, log_prior) - c)
        self.Z = self.integrate(lambda t: 1.0)

    def integrate(self, g):
        val, _ = integrate.quad(lambda t: g(t) * self.p(t), 0, self.upper, epsabs=0, epsrel=1e-12, limit=1000)
        return val / getattr(self, "Z", 1.0)

    def mu_moments(self, t):
        w = 1 / (self.s**2 + t**2)
        return (w @ self.y) / w.sum(), 1 / w.sum()

    def theta_moments(self, t, j):
        mh, vm = self.mu_moments(t)
        sh = self.s[j] ** 2 / (self.s[j] ** 2 + t**2)  # 1 - w_j
        return self.y[j] - sh * (self.y[j] - mh), (1 - sh) * self.s[j] ** 2 + sh**2 * vm

    def mean_sd(self, cond):
        m = self.integrate(lambda t: cond(t)[0])
        second = self.integrate(lambda t: cond(t)[1] + cond(t)[0] ** 2)
        return m, np.sqrt(second - m**2)


@pytest.fixture(scope="module")
def ref():
    return QuadReference()


# ----------------------------------------------------------------------------- closed forms at fixed tau
@pytest.mark.parametrize("tau", [0.0, 0.5, 3.0, 12.0, 200.0])
def test_conditional_mu_matches_numerical_integration(tau):
    """beta | tau, y: mean and variance of the normalised product of likelihoods, by quad over mu."""
    v = S8**2 + tau**2
    loglik = lambda mu: stats.norm.logpdf(Y8, mu, np.sqrt(v)).sum()  # noqa: E731
    c = loglik(8.0)
    dens = lambda mu: np.exp(loglik(mu) - c)  # noqa: E731
    Z = integrate.quad(dens, -500, 500, epsabs=0, epsrel=1e-12, points=[0, 8, 20], limit=200)[0]
    m = integrate.quad(lambda mu: mu * dens(mu), -500, 500, epsabs=0, epsrel=1e-12, points=[0, 8, 20], limit=200)[0] / Z
    m2 = integrate.quad(lambda mu: mu**2 * dens(mu), -500, 500, epsabs=0, epsrel=1e-12, points=[0, 8, 20], limit=200)[0] / Z
    cond = B.conditional(np.array([tau]), Y8, S8**2, np.ones((8, 1)), np.zeros(1), np.zeros(1))
    assert cond.beta_hat[0, 0] == pytest.approx(m, rel=1e-9)
    assert cond.beta_cov[0, 0, 0] == pytest.approx(m2 - m**2, rel=1e-7)
    # log p(y | tau) up to a constant equals log of the normaliser Z (flat prior on mu)
    cond_ref = B.conditional(np.array([5.0]), Y8, S8**2, np.ones((8, 1)), np.zeros(1), np.zeros(1))
    direct = np.log(Z) + c
    v5 = S8**2 + 25
    ll5 = lambda mu: stats.norm.logpdf(Y8, mu, np.sqrt(v5)).sum()  # noqa: E731
    c5 = ll5(8.0)
    Z5 = integrate.quad(lambda mu: np.exp(ll5(mu) - c5), -500, 500, epsabs=0, epsrel=1e-12, points=[0, 8, 20])[0]
    expected = direct - (np.log(Z5) + c5)
    got = cond.log_post[0] - cond_ref.log_post[0]
    assert got == pytest.approx(expected, abs=1e-8)


def test_marginal_likelihood_with_normal_beta_prior_is_multivariate_normal():
    """With a proper normal prior, log p(y|tau) + 1/2 log|P0| - J/2 log 2 pi is N(y; X m0, V + X P0^-1 X')."""
    rng = np.random.default_rng(1)
    J = 9
    X = np.column_stack([np.ones(J), rng.normal(size=J), rng.normal(size=J)])
    y = rng.normal(size=J) * 2
    s = rng.uniform(0.5, 2, J)
    m0 = np.array([0.3, -1.0, 2.0])
    sd0 = np.array([2.0, 0.5, 3.0])
    P0 = 1 / sd0**2
    for tau in (0.0, 0.7, 4.0):
        cond = B.conditional(np.array([tau]), y, s**2, X, P0, m0)
        exact = stats.multivariate_normal(X @ m0, np.diag(s**2 + tau**2) + X @ np.diag(sd0**2) @ X.T).logpdf(y)
        got = cond.log_post[0] + 0.5 * np.log(P0).sum() - 0.5 * J * np.log(2 * np.pi)
        assert got == pytest.approx(exact, abs=1e-10)
        # posterior of beta by the textbook formula with an explicit inverse (fine at this size)
        W = np.diag(1 / (s**2 + tau**2))
        A = X.T @ W @ X + np.diag(P0)
        assert np.allclose(cond.beta_cov[0], np.linalg.inv(A), rtol=1e-10, atol=1e-14)
        assert np.allclose(cond.beta_hat[0], np.linalg.solve(A, X.T @ W @ y + P0 * m0), rtol=1e-10)


def test_theta_limits_of_the_original(eight_post):
    """tau -> 0: every theta_j -> mu (complete pooling); tau -> inf: theta_j -> y_j (no pooling)."""
    m0, sd0 = eight_post.conditional_theta(np.array([1e-9]))
    mu_fe = (Y8 / S8**2).sum() / (1 / S8**2).sum()
    assert np.allclose(m0[0], mu_fe, rtol=1e-12)
    m_inf, sd_inf = eight_post.conditional_theta(np.array([1e9]))
    assert np.allclose(m_inf[0], Y8, rtol=1e-9)
    assert np.allclose(sd_inf[0], S8, rtol=1e-9)


# ----------------------------------------------------------------------------- summaries vs scipy quad
def test_eight_schools_tau_mu_against_quad(eight_post, ref):
    t_mean = ref.integrate(lambda t: t)
    t_sd = np.sqrt(ref.integrate(lambda t: t * t) - t_mean**2)
    assert eight_post.mean("tau") == pytest.approx(t_mean, rel=1e-6)
    assert eight_post.sd("tau") == pytest.approx(t_sd, rel=1e-6)
    assert t_mean == pytest.approx(6.58, abs=0.01)  # the value issue 3 quotes
    m, sd = ref.mean_sd(ref.mu_moments)
    assert eight_post.mean("mu") == pytest.approx(m, rel=1e-6)
    assert eight_post.sd("mu") == pytest.approx(sd, rel=1e-6)


@pytest.mark.parametrize("j", range(8))
def test_eight_schools_theta_and_predictive_against_quad(eight_summary, ref, j):
    m, sd = ref.mean_sd(lambda t: ref.theta_moments(t, j))
    row = eight_summary.loc[f"theta[{LAB8[j]}]"]
    assert row["mean"] == pytest.approx(m, rel=1e-6)
    assert row["sd"] == pytest.approx(sd, rel=1e-6)
    pm_, psd = ref.mean_sd(lambda t: (ref.theta_moments(t, j)[0], ref.theta_moments(t, j)[1] + S8[j] ** 2))
    prow = eight_summary.loc[f"y_pred[{LAB8[j]}]"]
    assert prow["mean"] == pytest.approx(pm_, rel=1e-6)
    assert prow["sd"] == pytest.approx(psd, rel=1e-6)


def test_theta_new_against_quad(eight_summary, ref):
    m, sd = ref.mean_sd(lambda t: (ref.mu_moments(t)[0], ref.mu_moments(t)[1] + t * t))
    assert eight_summary.loc["theta_new", "mean"] == pytest.approx(m, rel=1e-6)
    assert eight_summary.loc["theta_new", "sd"] == pytest.approx(sd, rel=1e-6)


def test_quantiles_against_quad_cdf(eight_post, eight_summary, ref):
    """tau quantiles against the quad CDF; mixture quantiles against a quad mixture CDF."""
    for q in (0.025, 0.5, 0.975):
        t = eight_summary.loc["tau", f"q{100 * q:g}"]
        cdf = integrate.quad(ref.p, 0, t, epsabs=0, epsrel=1e-12, limit=500)[0] / ref.Z
        assert cdf == pytest.approx(q, abs=1e-8)
        x = eight_summary.loc["mu", f"q{100 * q:g}"]
        mix = ref.integrate(lambda u: special.ndtr((x - ref.mu_moments(u)[0]) / np.sqrt(ref.mu_moments(u)[1])))
        assert mix == pytest.approx(q, abs=1e-8)


def test_cdf_inverts_quantile_for_every_parameter(eight_post):
    for name in eight_post.parameters:
        for q in (0.01, 0.3, 0.9):
            assert eight_post.cdf(name, eight_post.quantile(name, q)) == pytest.approx(q, abs=1e-10)


def test_shortest_intervals(eight_post, eight_summary):
    # tau's density is largest at 0 for eight schools: the shortest interval starts there.
    assert eight_post.tau_pdf(np.array([0.0]))[0] > eight_post.tau_pdf(np.array([1.0]))[0]
    lo, hi = eight_summary.loc["tau", ["hdi95_low", "hdi95_high"]]
    assert lo == 0.0
    assert eight_post.tau_cdf(hi) == pytest.approx(0.95, abs=1e-9)
    for name in ("mu", "theta[A]", "theta_new", "y_pred[C]"):
        a, b = eight_summary.loc[name, ["hdi95_low", "hdi95_high"]]
        assert eight_post.cdf(name, b) - eight_post.cdf(name, a) == pytest.approx(0.95, abs=1e-9)
        # equal density at both ends (numerical derivative of the exact CDF)
        h = 1e-4 * eight_summary.loc[name, "sd"]
        fa = (eight_post.cdf(name, a + h) - eight_post.cdf(name, a - h)) / (2 * h)
        fb = (eight_post.cdf(name, b + h) - eight_post.cdf(name, b - h)) / (2 * h)
        assert fa == pytest.approx(fb, rel=1e-5)
        q_lo, q_hi = eight_summary.loc[name, ["q2.5", "q97.5"]]
        assert b - a <= q_hi - q_lo + 1e-12


def test_summary_layout(eight_summary):
    assert list(eight_summary.columns) == ["mean", "sd", "q2.5", "q25", "q50", "q75", "q97.5", "hdi95_low", "hdi95_high"]
    assert eight_summary.index.name == "parameter"
    assert list(eight_summary.index[:3]) == ["tau", "mu", "theta[A]"]
    assert "theta_new" in eight_summary.index and "y_pred[H]" in eight_summary.index
    assert eight_summary.notna().all().all()


def test_tau_density_integrates_to_one_and_matches_cdf(eight_post):
    t_hi = eight_post.tau_quantile(0.999999)
    val = integrate.quad(lambda t: eight_post.tau_pdf(np.array([t]))[0], 0, t_hi, epsabs=0, epsrel=1e-10, limit=500)[0]
    assert val == pytest.approx(0.999999, abs=1e-8)
    t = 4.0
    assert eight_post.tau_cdf(t) == pytest.approx(
        integrate.quad(lambda u: eight_post.tau_pdf(np.array([u]))[0], 0, t, epsabs=0, epsrel=1e-12)[0], abs=1e-9)


def test_error_estimate_below_tolerance(eight_post):
    assert eight_post.error_estimate < eight_post.rtol
    finer = fit(eight_post.data, rtol=1e-12)
    a, b = eight_post.summary(), finer.summary()
    scale = b["sd"].to_numpy()[:, None]
    assert np.max(np.abs(a.to_numpy() - b.to_numpy()) / scale) < 1e-7


# ----------------------------------------------------------------------------- proper priors, regression
def test_halfnormal_tau_and_normal_mu_against_quad():
    """Proper priors: log p(tau) added; mu's normal prior changes mu | tau (precision adds)."""
    post = fit(MetaData.from_arrays(Y8, S8, labels=LAB8), HalfNormalTau(5.0), NormalBeta(0.0, 10.0))
    P0, m0 = 1 / 100.0, 0.0

    def lp(t):
        v = S8**2 + t**2
        w = 1 / v
        A = w.sum() + P0
        b = (w * Y8).sum() + P0 * m0
        bh = b / A
        q = (w * (Y8 - bh) ** 2).sum() + P0 * (bh - m0) ** 2
        return stats.halfnorm(scale=5.0).logpdf(t) - 0.5 * np.log(A) - 0.5 * np.log(v).sum() - 0.5 * q

    c = lp(3.0)
    Z = integrate.quad(lambda t: np.exp(lp(t) - c), 0, np.inf, epsabs=0, epsrel=1e-12)[0]
    Et = integrate.quad(lambda t: t * np.exp(lp(t) - c), 0, np.inf, epsabs=0, epsrel=1e-12)[0] / Z

    def mu_hat(t):
        w = 1 / (S8**2 + t**2)
        return ((w * Y8).sum() + P0 * m0) / (w.sum() + P0)

    Em = integrate.quad(lambda t: mu_hat(t) * np.exp(lp(t) - c), 0, np.inf, epsabs=0, epsrel=1e-12)[0] / Z
    assert post.mean("tau") == pytest.approx(Et, rel=1e-7)
    assert post.mean("mu") == pytest.approx(Em, rel=1e-7)


def test_uniform_prior_support_is_respected():
    post = fit(MetaData.from_arrays(Y8, S8), UniformTau(10.0))
    assert post.tau_quantile(1.0) == pytest.approx(10.0)
    assert post.tau_cdf(10.0) == pytest.approx(1.0)
    assert post.tau_quantile(0.99) < 10.0
    ref = QuadReference(upper=10.0)
    assert post.mean("tau") == pytest.approx(ref.integrate(lambda t: t), rel=1e-7)


def _bcg_like():
    from metapool import datasets

    return datasets.load("bcg", covariates="~ ablat")


def test_meta_regression_tau_against_direct_quad():
    """bcg ~ ablat: an independent numpy implementation of p(tau|y) with X, integrated by quad."""
    d = _bcg_like()
    post = fit(d)
    X, y, s2 = d.X, d.y, d.variance

    def lp(t):
        W = 1 / (s2 + t * t)
        A = X.T @ (W[:, None] * X)
        bh = np.linalg.solve(A, X.T @ (W * y))
        r = y - X @ bh
        return -0.5 * np.linalg.slogdet(A)[1] - 0.5 * np.log(s2 + t * t).sum() - 0.5 * (W * r * r).sum()

    c = lp(0.1)
    p = lambda t: np.exp(lp(t) - c)  # noqa: E731
    Z = integrate.quad(p, 0, np.inf, epsabs=0, epsrel=1e-12, limit=500)[0]
    Et = integrate.quad(lambda t: t * p(t), 0, np.inf, epsabs=0, epsrel=1e-12, limit=500)[0] / Z

    def beta_hat(t, k):
        W = 1 / (s2 + t * t)
        A = X.T @ (W[:, None] * X)
        return np.linalg.solve(A, X.T @ (W * y))[k]

    Eb = integrate.quad(lambda t: beta_hat(t, 1) * p(t), 0, np.inf, epsabs=0, epsrel=1e-12, limit=500)[0] / Z
    assert post.mean("tau") == pytest.approx(Et, rel=1e-6)
    assert post.mean("beta[ablat]") == pytest.approx(Eb, rel=1e-6)
    sm = post.summary()
    assert {"beta[Intercept]", "beta[ablat]"} <= set(sm.index)
    assert "mu" not in sm.index


# ----------------------------------------------------------------------------- invariances
def test_permuting_studies_permutes_summaries(eight_summary):
    rng = np.random.default_rng(7)
    perm = rng.permutation(8)
    d = MetaData.from_arrays(Y8[perm], S8[perm], labels=[LAB8[i] for i in perm])
    sm = fit(d).summary()
    a = sm.loc[eight_summary.index].to_numpy()
    assert np.allclose(a, eight_summary.to_numpy(), rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("shift", [-1e6, -3.7, 250.0, 1e7])
def test_shifting_effects_shifts_locations_only(eight_summary, shift):
    sm = fit(MetaData.from_arrays(Y8 + shift, S8, labels=LAB8)).summary()
    loc_cols = ["mean", "q2.5", "q25", "q50", "q75", "q97.5", "hdi95_low", "hdi95_high"]
    others = sm.index != "tau"
    sd_scale = eight_summary.loc[others, "sd"].to_numpy()[:, None]
    diff = sm.loc[others, loc_cols].to_numpy() - shift - eight_summary.loc[others, loc_cols].to_numpy()
    assert np.max(np.abs(diff) / sd_scale) < 1e-7
    assert np.allclose(sm["sd"], eight_summary["sd"], rtol=1e-7)
    assert np.allclose(sm.loc["tau"], eight_summary.loc["tau"], rtol=1e-7)


@pytest.mark.parametrize("k", range(-6, 7))
def test_scaling_effects_and_errors_scales_everything(eight_summary, k):
    c = 10.0**k
    sm = fit(MetaData.from_arrays(Y8 * c, S8 * c, labels=LAB8)).summary()
    assert np.allclose(sm.to_numpy() / c, eight_summary.to_numpy(), rtol=1e-7, atol=1e-7 * 5)


# ----------------------------------------------------------------------------- extreme inputs
def test_500_studies_with_tiny_standard_errors():
    rng = np.random.default_rng(3)
    J = 500
    s = rng.uniform(1e-9, 3e-9, J)
    theta = rng.normal(2e-8, 5e-9, J)
    y = rng.normal(theta, s)
    post = fit(MetaData.from_arrays(y, s))
    sm = post.summary()
    assert np.isfinite(sm.to_numpy()).all()
    assert sm.loc["tau", "q2.5"] < 5e-9 < sm.loc["tau", "q97.5"]
    assert sm.loc["mu", "q2.5"] < 2e-8 < sm.loc["mu", "q97.5"]
    assert post.error_estimate < 1e-8


@pytest.mark.parametrize("c", [1e-150, 1e-100, 1e100, 1e130])
def test_extreme_scales_no_overflow(eight_summary, c):
    """Log-space numerics: effects and errors 100+ orders of magnitude away from 1 (the data range
    stops at 1e-150 <= se, |y| <= 1e150; at 1e-150 tau's left tail needs tau down to ~1e-170)."""
    sm = fit(MetaData.from_arrays(Y8 * c, S8 * c, labels=LAB8)).summary()
    assert np.isfinite(sm.to_numpy()).all()
    assert np.allclose(sm.to_numpy() / c, eight_summary.to_numpy(), rtol=1e-7, atol=5e-7)


def test_compressed_mixture_rule_matches_full_rule():
    """Many studies: quantiles from the compressed Gauss rule equal those from the full rule."""
    rng = np.random.default_rng(11)
    J = 40_000
    s = np.exp(rng.normal(np.log(0.02), 0.5, J))
    y = rng.normal(rng.normal(0.01, 0.003, J), s)
    post = fit(MetaData.from_arrays(y, s))
    tau_c, w_c, _ = post._mixture_rule("theta")
    assert tau_c.size < post.tau_nodes.size  # the compressed path is exercised
    sm = post.summary()
    rows = np.array([0, 17, 1234, J - 1])
    keep = post.weights > 0
    cond = B.Conditional(post.cond.log_post[keep], post.cond.beta_hat[keep], post.cond.beta_cov[keep])
    m, sd = post._group_moments("theta", post.tau_nodes[keep], cond, rows)
    for q in (0.025, 0.5, 0.975):
        full = B.mixture_quantile(q, post.weights[keep], m, sd)
        got = sm[f"q{100 * q:g}"].to_numpy()[1 + 1 + rows]
        row_sd = sm["sd"].to_numpy()[1 + 1 + rows]
        assert np.max(np.abs(got - full) / row_sd) < 1e-8


# ----------------------------------------------------------------------------- improper posteriors
def test_improper_posterior_raises():
    X = np.column_stack([np.ones(3), [0.0, 1.0, 3.0]])
    d = MetaData.from_arrays([1.0, 2.0, 0.5], [1.0, 1.0, 1.0], X=X, coef_names=["Intercept", "x"])
    with pytest.raises(ValueError, match="improper.*J - p >= 2"):
        fit(d)
    # a proper tau prior rescues it
    assert np.isfinite(fit(d, HalfNormalTau(1.0)).mean("tau"))


def test_missing_moments_warn_and_are_empty():
    d3 = MetaData.from_arrays([1.0, 2.0, 0.5], [1.0, 1.0, 1.0])
    with pytest.warns(MomentWarning, match="mean and sd of tau"):
        sm = fit(d3).summary()
    assert np.isnan(sm.loc["tau", ["mean", "sd"]]).all()
    assert np.isnan(sm.loc["mu", ["mean", "sd"]]).all()
    assert np.isfinite(sm.loc["tau", ["q2.5", "q50", "q97.5", "hdi95_high"]]).all()
    assert np.isfinite(sm.loc["theta[1]", ["mean", "sd"]]).all()
    d4 = MetaData.from_arrays([1.0, 2.0, 0.5, 1.5], [1.0, 1.0, 1.0, 1.0])
    with pytest.warns(MomentWarning, match="sd of tau"):
        sm4 = fit(d4).summary()
    assert np.isfinite(sm4.loc["tau", "mean"]) and np.isnan(sm4.loc["tau", "sd"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", MomentWarning)
        fit(d4, HalfCauchyTau(1.0)).summary()  # tail tau^-5: everything exists


# ----------------------------------------------------------------------------- user grid
def test_user_grid_agrees_and_truncation_warns(eight_post):
    wide = fit(eight_post.data, grid=np.concatenate([[0.0], np.geomspace(0.01, 1e7, 400)]))
    assert wide.mean("tau") == pytest.approx(eight_post.mean("tau"), rel=1e-6)
    with pytest.warns(RuntimeWarning, match="truncated"):
        fit(eight_post.data, grid=np.arange(0.0, 15.0, 0.5))  # the original's grid problem


# ----------------------------------------------------------------------------- draws
def test_draws_layout_and_moments(eight_post):
    import arviz as az

    dt = eight_post.sample(draws=2500, chains=4, seed=123)
    post = dt["posterior"]
    assert set(post.data_vars) == {"tau", "mu", "theta", "theta_new"}
    assert post["theta"].dims == ("chain", "draw", "study")
    assert list(post["study"].values) == LAB8
    assert dt["posterior_predictive"]["y"].dims == ("chain", "draw", "study")
    assert dt["log_likelihood"]["y"].shape == (4, 2500, 8)
    assert dt["constant_data"]["X"].dims == ("study", "coef")
    assert np.allclose(dt["observed_data"]["y"].values, Y8)
    tau = post["tau"].values.ravel()
    assert np.unique(tau).size == tau.size  # continuous, not grid values
    mcse = az.mcse(dt, var_names=["tau", "mu", "theta"])
    for name, exact in (("tau", eight_post.mean("tau")), ("mu", eight_post.mean("mu"))):
        z = (post[name].values.mean() - exact) / float(mcse[name])
        assert abs(z) < 4, (name, z)
    for j, lab in enumerate(LAB8):
        z = (post["theta"].values[..., j].mean() - eight_post.mean(f"theta[{lab}]")) / float(mcse["theta"][j])
        assert abs(z) < 4
    # exact CDF at the draws is uniform (KS, independent draws)
    u = eight_post.tau_cdf(tau)
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # log-likelihood: study-level N(y | mu, s^2 + tau^2) by default; given theta on request
    th = post["theta"].values[0, 0]
    tau, mu = post["tau"].values[0, 0], post["mu"].values[0, 0]
    assert np.allclose(dt["log_likelihood"]["y"].values[0, 0], stats.norm.logpdf(Y8, mu, np.sqrt(S8**2 + tau**2)))
    cond = eight_post.sample(draws=2500, chains=4, seed=123, log_likelihood="conditional")
    assert np.allclose(cond["log_likelihood"]["y"].values[0, 0], stats.norm.logpdf(Y8, th, S8))


def test_draws_are_reproducible(eight_post):
    a = eight_post.sample(draws=50, chains=2, seed=5)["posterior"]["theta"].values
    b = eight_post.sample(draws=50, chains=2, seed=5)["posterior"]["theta"].values
    assert np.array_equal(a, b)


def test_regression_draws_have_coef_dim():
    post = fit(_bcg_like())
    dt = post.sample(draws=100, chains=2, seed=1)
    assert dt["posterior"]["beta"].dims == ("chain", "draw", "coef")
    assert list(dt["posterior"]["coef"].values) == ["Intercept", "ablat"]


def test_regression_draws_match_exact_means():
    import arviz as az

    post = fit(_bcg_like(), tau_prior=HalfNormalTau(1.0), beta_prior=NormalBeta(0.0, 10.0))
    dt = post.sample(draws=4000, chains=2, seed=9)
    mcse = az.mcse(dt, var_names=["beta", "tau", "theta_new"])
    for k, name in enumerate(["Intercept", "ablat"]):
        draws = dt["posterior"]["beta"].values[..., k]
        z = (draws.mean() - post.mean(f"beta[{name}]")) / float(mcse["beta"][k])
        assert abs(z) < 4, (name, z)
        # the spread too: exact sd against the draws' sd (independent draws: se of sd ~ sd / sqrt(2n))
        assert draws.std() == pytest.approx(post.sd(f"beta[{name}]"), rel=4 / np.sqrt(2 * draws.size))
    for name in ("tau", "theta_new"):
        z = (dt["posterior"][name].values.mean() - post.mean(name)) / float(mcse[name])
        assert abs(z) < 4, (name, z)


def test_no_pymc_import():
    import subprocess
    import sys

    code = "import sys, metapool.analytic; assert 'pymc' not in sys.modules and 'pytensor' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sample_without_predictive_groups(eight_post):
    full = eight_post.sample(draws=200, chains=2, seed=4)
    lean = eight_post.sample(draws=200, chains=2, seed=4, predictive=False)
    assert "posterior_predictive" not in lean.children and "log_likelihood" not in lean.children
    for v in ("tau", "mu", "theta"):
        assert np.array_equal(lean["posterior"][v].values, full["posterior"][v].values)


def test_check_proper_reports_tail_exponent():
    from metapool.analytic import check_proper

    d = MetaData.from_arrays(Y8, S8)
    assert check_proper(d) == 7                       # J - p with flat priors
    assert check_proper(d, "halfcauchy:1") == 9       # half-Cauchy adds 2
    assert check_proper(d, "flat", "normal:0,10") == 8  # a proper beta prior: J
    assert check_proper(d, "uniform:0,5") == np.inf
    with pytest.raises(ValueError, match="improper"):
        check_proper(MetaData.from_arrays([1.0, 2.0], [1.0, 1.0]))


@pytest.mark.parametrize("spec", ["flat", "uniform:0,30", "halfnormal:5", "halfcauchy:25", "halft:3,2",
                                  "exponential:2", "lognormal:1,1", "lognormal:-3,0.5", "dumouchel"])
@pytest.mark.parametrize("dataset", ["eight_schools", "bcg"])
def test_every_tau_prior_against_quad(spec, dataset):
    """E[tau], sd and median under every shared prior against scipy quad of an independent density."""
    from metapool import datasets
    from metapool.priors import parse_tau_prior

    d = datasets.load(dataset)
    prior = parse_tau_prior(spec).bind(d)
    post = fit(d, prior)
    y, s = d.y, d.se
    with np.errstate(divide="ignore"):
        logp = lambda t: _ref_logpost(t, y, s, lambda u: float(prior.logpdf(np.array([u]))[0]))  # noqa: E731
    mode_guess = post.tau_quantile(0.5)
    c = logp(mode_guess)
    p = lambda t: np.exp(logp(t) - c)  # noqa: E731
    pts = [post.tau_quantile(q) for q in (0.01, 0.5, 0.99)]
    upper = min(prior.upper, np.inf)
    kw = dict(epsabs=0, epsrel=1e-11, limit=1000)
    lo_part = lambda g: integrate.quad(lambda t: g(t) * p(t), 0, pts[-1], points=pts[:-1], **kw)[0]  # noqa: E731
    hi_part = lambda g: integrate.quad(lambda t: g(t) * p(t), pts[-1], upper, **kw)[0]  # noqa: E731
    Z = lo_part(lambda t: 1.0) + hi_part(lambda t: 1.0)
    Et = (lo_part(lambda t: t) + hi_part(lambda t: t)) / Z
    Et2 = (lo_part(lambda t: t * t) + hi_part(lambda t: t * t)) / Z
    assert post.mean("tau") == pytest.approx(Et, rel=1e-6)
    assert post.sd("tau") == pytest.approx(np.sqrt(Et2 - Et**2), rel=1e-6)
    med = post.tau_quantile(0.5)
    cdf_med = integrate.quad(p, 0, med, **kw)[0] / Z
    assert cdf_med == pytest.approx(0.5, abs=1e-7)


# ----------------------------------------------------------------------------- draws: streams, threads
def _conditional_z(post, dt):
    """Standardised theta residuals given each draw's (tau, beta): iid N(0, 1) if the draws are right."""
    p = dt["posterior"]
    d = post.data
    tau = p["tau"].values.ravel()
    beta = (p["mu"].values.reshape(-1, 1) if d.intercept_only
            else p["beta"].values.reshape(-1, d.p))
    theta = p["theta"].values.reshape(tau.size, d.J)
    fit_ = beta @ d.X.T
    w = tau[:, None] ** 2 / (tau[:, None] ** 2 + d.variance[None, :])
    return (theta - fit_ - w * (d.y - fit_)) / np.sqrt(w * d.variance)


@pytest.mark.parametrize("regression", [False, True])
def test_draws_do_not_depend_on_threads_or_block_size(eight_post, regression):
    from metapool.analytic._draws import draw

    post = fit(_bcg_like()) if regression else eight_post
    ref = draw(post, 1500, 2, 11, True, threads=1)
    for kw in (dict(threads=2), dict(threads=3, block_cells=37), dict(threads=1, block_cells=1)):
        other = draw(post, 1500, 2, 11, True, **kw)
        for g in ("posterior", "posterior_predictive", "log_likelihood"):
            for v in ref[g].data_vars:
                np.testing.assert_allclose(other[g][v].values, ref[g][v].values, rtol=1e-12, atol=1e-12,
                                           err_msg=f"{g}/{v} {kw}")


def test_segment_streams_are_independent_normals(eight_post):
    from metapool.analytic._draws import SEGMENT_DRAWS

    dt = eight_post.sample(draws=4 * SEGMENT_DRAWS, chains=1, seed=3, threads=2)
    z = _conditional_z(eight_post, dt)
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    # the same positions in consecutive segments must not share a stream
    segs = z.reshape(4, SEGMENT_DRAWS, -1)
    for k in range(3):
        r = np.corrcoef(segs[k].ravel(), segs[k + 1].ravel())[0, 1]
        assert abs(r) < 4 / np.sqrt(segs[k].size), (k, r)
    # and y_rep's normals are not theta's
    yr = dt["posterior_predictive"]["y"].values.reshape(z.shape)
    e = (yr - dt["posterior"]["theta"].values.reshape(z.shape)) / eight_post.data.se
    assert stats.kstest(e.ravel(), "norm").pvalue > 1e-3
    assert abs(np.corrcoef(e.ravel(), z.ravel())[0, 1]) < 4 / np.sqrt(z.size)


def test_sample_rejects_bad_threads(eight_post):
    for bad in (0, -1, 1.5, "2", "two", True, [2]):
        with pytest.raises(ValueError, match="threads"):
            eight_post.sample(draws=10, chains=1, threads=bad)


def test_static_groups_are_shared_read_only(eight_post):
    a = eight_post.sample(draws=5, chains=1, seed=1)
    b = eight_post.sample(draws=5, chains=1, seed=2)
    assert np.array_equal(a["observed_data"]["y"].values, Y8)
    with pytest.raises(ValueError, match="read-only"):
        a["observed_data"]["y"].values[0] = 0.0
    assert np.array_equal(b["constant_data"]["se"].values, S8)


def test_tau_quantile_inverts_the_cdf_everywhere(eight_post):
    q = np.concatenate([np.linspace(1e-9, 1 - 1e-9, 401), eight_post._cum[1:-1]])  # incl. panel ends
    t = eight_post.tau_quantile(q)
    assert np.all(np.diff(t[:401]) > 0)
    np.testing.assert_allclose(eight_post.tau_cdf(t), q, rtol=0, atol=1e-13)
    # 0 and 1 give the ends of the support (issue 14): 0 and the flat prior's upper end, inf;
    # the CDF reaches 1 at the end of the integration domain.
    assert eight_post.tau_quantile(0.0) == 0.0 and eight_post.tau_quantile(1.0) == np.inf
    assert eight_post.tau_cdf(np.exp(eight_post.rule.edges[-1])) == 1.0
    assert np.ndim(eight_post.tau_quantile(0.5)) == 0


def test_invert_panel_cdf_known_polynomials():
    # F(u) = (u + 1) / 2 has Legendre coefficients [1/2, 1/2]
    lin = np.array([[0.5, 0.5, 0.0]])
    t = np.array([0.0, 0.1, 0.5, 0.999, 1.0])
    u = B.invert_panel_cdf(np.repeat(lin, t.size, axis=0), t)
    np.testing.assert_allclose(u, 2 * t - 1, atol=1e-15)
    # F(u) = (u + 1)^2 / 4 = 1/3 + P1 / 2 + P2 / 6, since u^2 = (2 P2 + 1) / 3
    quad = np.array([[1 / 3, 0.5, 1 / 6]])
    u = B.invert_panel_cdf(np.repeat(quad, t.size, axis=0), t)
    np.testing.assert_allclose(u, 2 * np.sqrt(t) - 1, atol=1e-14)
    # targets beyond the panel give its ends
    assert list(B.invert_panel_cdf(np.repeat(lin, 2, axis=0), np.array([-0.1, 1.2]))) == [-1.0, 1.0]


def test_threaded_draws_from_several_threads_and_errors_propagate(eight_post):
    from concurrent.futures import ThreadPoolExecutor

    from metapool.analytic import _draws

    ref = eight_post.sample(draws=3000, chains=2, seed=8, threads=2)["posterior"]["theta"].values
    with ThreadPoolExecutor(3) as ex:
        outs = list(ex.map(lambda k: eight_post.sample(draws=3000, chains=2, seed=8, threads=k)
                           ["posterior"]["theta"].values, [2, 3, 4, 2, 5]))
    for o in outs:
        np.testing.assert_array_equal(o, ref)

    # A helper thread's error reaches the caller (the runner every threaded loop goes through).
    from metapool.analytic._threads import run as run_threads

    done = []

    def broken():
        raise FloatingPointError("boom")

    with pytest.raises(FloatingPointError, match="boom"):
        run_threads([lambda: done.append(1), broken, lambda: done.append(2)], 2)


def test_threads_change_nothing_for_many_studies():
    # 30,000 studies: the node x study loops of the fit and the summary's row loop run in chunks,
    # which threads share; every number must be the same as on one thread.
    rng = np.random.default_rng(77)
    s = np.exp(rng.normal(np.log(0.02), 0.5, 30_000))
    d = MetaData.from_arrays(rng.normal(rng.normal(0.01, 0.003, s.size), s), s)
    one, three = fit(d, threads=1), fit(d, threads=3)
    assert one.problem.threads == 1 and three.problem.threads == 3
    np.testing.assert_array_equal(one.tau_nodes, three.tau_nodes)
    np.testing.assert_array_equal(one.weights, three.weights)
    a, b = one.summary(), three.summary()
    assert a.index.equals(b.index)
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    with pytest.raises(ValueError, match="threads"):
        fit(d, threads=0)


def test_helper_threads_take_the_callers_numpy_error_state():
    from metapool.analytic import _threads

    seen = []

    def task():
        seen.append(np.geterr()["divide"])

    with np.errstate(divide="raise"):
        _threads.run([task] * 6, 3)
    assert seen == ["raise"] * 6
    with np.errstate(divide="ignore"):
        _threads.run([lambda: np.log(np.zeros(3))] * 4, 2)  # no warning, no error


# ----------------------------------------------------------------------------- cost follows the posterior's shape
@pytest.mark.parametrize("sd", [0.2, 0.003, 0.0005])
def test_domain_scale_follows_a_narrow_posterior(sd):
    """The curvature scale of log tau's posterior is measured at the right step for any width: a
    tight log-normal prior (sd of log tau = sd) gives a posterior of that sd, and the rule keeps the
    same number of nodes (narrow posteriors used to get a scale 1000x too small and 5x the nodes)."""
    from metapool.analytic import posterior as P
    from metapool.spec import model_spec

    d = MetaData.from_arrays(Y8, S8)
    spec = model_spec(d, f"lognormal:1,{sd}")
    _, _, sigma, xm = P._find_domain(P._problem(d, spec.tau_prior, spec.beta_prior), 2)
    assert sigma == pytest.approx(sd, rel=0.05)
    assert xm == pytest.approx(1.0, abs=sd)
    wide = fit(d, "lognormal:1,0.2")
    post = fit(d, f"lognormal:1,{sd}")
    assert post.tau_nodes.size <= wide.tau_nodes.size
    # The likelihood of 8 studies is flat on this scale: log tau's posterior median is the prior's.
    assert np.log(post.tau_quantile(0.5)) == pytest.approx(1.0, abs=0.2 * sd)


def _equal_errors(J: int) -> MetaData:
    rng = np.random.default_rng(20261201 + J)
    return MetaData.from_arrays(rng.normal(0.0, np.sqrt(1 + 0.3**2), J), np.ones(J))


def test_mixture_rule_keeps_quantiles_where_moments_agree():
    """2,000 equal-error studies: compressed rules match the full rule's means and sds to 1e-15
    but not the quantiles (theta_j's posterior has a narrow component from tau near 0), so the
    summary's quantiles must still equal the full rule's to 1e-9 of a posterior sd."""
    d = _equal_errors(2_000)
    post = fit(d)
    sm = post.summary()
    rows = np.array([0, 1, 500, 1999])
    keep = post.weights > 0
    cond = B.Conditional(post.cond.log_post[keep], post.cond.beta_hat[keep], post.cond.beta_cov[keep])
    m, sd = post._group_moments("theta", post.tau_nodes[keep], cond, rows)
    for q in (0.025, 0.25, 0.5, 0.975):
        full = B.mixture_quantile(q, post.weights[keep], m, sd)
        got = sm[f"q{100 * q:g}"].to_numpy()[2 + rows]
        assert np.max(np.abs(got - full) / sm["sd"].to_numpy()[2 + rows]) < 1e-9


def test_node_count_follows_the_posterior_not_J():
    """Equal errors, 10^5 and 10^6 studies: p(tau | y) narrows by sqrt(10), the rule keeps its size
    (a million studies used to take 936 nodes against 192)."""
    n5 = fit(_equal_errors(100_000)).tau_nodes.size
    post6 = fit(_equal_errors(1_000_000))
    assert post6.tau_nodes.size <= 1.5 * n5
    assert post6.error_estimate < 1e-8


# ----------------------------------------------------------------------------- draws: fast paths
@pytest.mark.parametrize("prior", ["flat", "halfnormal:0.5", "uniform:0,30"])
def test_inverse_cdf_table_is_numpy_interp_bit_for_bit(eight, prior):
    """tau's bucket-table lookup gives numpy.interp's value exactly: at the table's points, next
    to them on either side, at 0 and just below 1, and at random uniforms."""
    from metapool.analytic._draws import CdfTable

    post = fit(eight, prior)
    F, t = post.inverse_cdf_table()
    inner = F[(F > 0) & (F < 1)]
    u = np.concatenate([[0.0, np.nextafter(1.0, 0.0)], inner, np.nextafter(inner, 0.0), np.nextafter(inner, 1.0),
                        np.random.default_rng(0).random(50_000)])
    u = u[u < 1.0]
    np.testing.assert_array_equal(CdfTable(F, t).tau(u), np.interp(u, F, t))


@pytest.mark.parametrize("scale", [1e-140, 1e-60, 1e60, 1e140])
def test_draws_are_scale_equivariant_at_extreme_scales(eight, scale):
    """The draws work in units scaled by a power of two: data multiplied by 10^+-140 give the same
    draws times the factor (tau^4 s^2 would overflow or underflow unscaled)."""
    ref = fit(eight).sample(draws=300, chains=1, seed=2, predictive=False)["posterior"]
    big = MetaData.from_arrays(eight.y * scale, eight.se * scale)
    got = fit(big).sample(draws=300, chains=1, seed=2, predictive=False)["posterior"]
    for v in ("tau", "mu", "theta", "theta_new"):
        np.testing.assert_allclose(got[v].values / scale, ref[v].values, rtol=1e-9, atol=1e-9 * S8.max(),
                                   err_msg=v)
