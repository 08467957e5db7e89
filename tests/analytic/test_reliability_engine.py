"""Numerical reliability of the exact engine (issue 14): any prior scale, any representable tau
prior, the error estimate bounds the true error, argument checks, and a hypothesis sweep.

The references here are written independently of the engine: the marginal likelihood of tau is
the multivariate normal y ~ N(X m0, diag(s^2 + tau^2) + X S0 X') (S0 = diag(prior sd^2)), the
conditional means are the covariance ("Kalman") form E[beta | tau, y] = m0 + S0 X' C^-1 (y - X m0),
E[theta | tau, y] = X m0 + (X S0 X' + tau^2 I) C^-1 (y - X m0), and the integrals over tau are
scipy.integrate.quad in log tau.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from metapool import MetaData, analytic, datasets
from metapool.errors import InputError
from metapool.priors import (ExponentialTau, FlatTau, HalfCauchyTau, HalfNormalTau, LogNormalTau,
                             NormalBeta)


@pytest.fixture(scope="module")
def eight():
    return datasets.load("eight_schools")


@pytest.fixture(scope="module")
def bcg():
    return datasets.load("bcg", covariates="~ ablat")


# --------------------------------------------------------------------------- independent reference
class Reference:
    """Posterior summaries by direct integration over x = log tau of the closed-form marginal."""

    def __init__(self, data: MetaData, m0: np.ndarray, sd0: np.ndarray, tau_logpdf, lo: float, hi: float,
                 points: np.ndarray):
        self.y, self.s2, self.X = data.y, data.variance, data.X
        self.m0, self.S0 = m0, np.diag(sd0**2)
        self.tau_logpdf = tau_logpdf
        self.lo, self.hi, self.points = lo, hi, np.sort(points)
        xs = np.linspace(lo, hi, 2001)
        self.c = max(self._logf(x) for x in xs)

    def _parts(self, tau: float):
        XS = self.X @ self.S0 @ self.X.T
        C = np.diag(self.s2 + tau**2) + XS
        r = self.y - self.X @ self.m0
        sol = np.linalg.solve(C, r)
        _, logdet = np.linalg.slogdet(C)
        loglik = -0.5 * (logdet + r @ sol + len(r) * math.log(2 * math.pi))
        beta = self.m0 + self.S0 @ self.X.T @ sol
        theta = self.X @ self.m0 + (XS + tau**2 * np.eye(len(r))) @ sol
        return loglik, beta, theta

    def _logf(self, x: float) -> float:
        tau = math.exp(x)
        return self._parts(tau)[0] + float(self.tau_logpdf(np.array([tau]))[0]) + x

    def integral(self, g) -> float:
        def f(x):
            tau = math.exp(x)
            ll, beta, theta = self._parts(tau)
            w = math.exp(ll + float(self.tau_logpdf(np.array([tau]))[0]) + x - self.c)
            return w * g(tau, beta, theta)
        edges = np.concatenate([[self.lo], self.points[(self.points > self.lo) & (self.points < self.hi)], [self.hi]])
        return sum(integrate.quad(f, a, b, epsabs=0, epsrel=1e-13, limit=1000)[0]
                   for a, b in zip(edges[:-1], edges[1:]))

    def summaries(self, centre: dict[str, float]) -> dict[str, float]:
        """E[tau], sd[tau], E[beta_k], E[theta_1]; each mean integrates g - centre[key] (any centre:
        it only keeps the quadrature's relative error away from a large common offset)."""
        Z = self.integral(lambda t, b, th: 1.0)
        c = centre
        e_tau = c["tau_mean"] + self.integral(lambda t, b, th: t - c["tau_mean"]) / Z
        sd_tau = math.sqrt(self.integral(lambda t, b, th: (t - e_tau) ** 2) / Z)
        out = {"tau_mean": e_tau, "tau_sd": sd_tau}
        for k in range(self.X.shape[1]):
            ck = c[f"beta{k}"]
            out[f"beta{k}"] = ck + self.integral(lambda t, b, th, k=k, ck=ck: b[k] - ck) / Z
        out["theta0"] = c["theta0"] + self.integral(lambda t, b, th: th[0] - c["theta0"]) / Z
        return out


def _engine_summaries(post) -> dict[str, float]:
    names = post.coef_param_names
    out = {"tau_mean": post.mean("tau"), "tau_sd": post.sd("tau")}
    for k, nm in enumerate(names):
        out[f"beta{k}"] = post.mean(nm)
    out["theta0"] = post.mean(f"theta[{post.data.labels[0]}]")
    return out


def _scales(post) -> dict[str, float]:
    """The scale each summary's error is measured in (the engine's own convention: the posterior sd
    for locations, the larger of |value| and the 95 % width for tau's moments)."""
    q = post.quantile("tau", [0.025, 0.975])
    width = float(q[1] - q[0])
    out = {"tau_mean": max(post.mean("tau"), width), "tau_sd": max(post.sd("tau"), width)}
    for k, nm in enumerate(post.coef_param_names):
        out[f"beta{k}"] = post.sd(nm)
    out["theta0"] = post.sd(f"theta[{post.data.labels[0]}]")
    return out


def _fe_scale(data: MetaData) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-effect estimate and its standard errors: the data's scale for each coefficient."""
    W = 1.0 / data.variance
    A = (data.X * W[:, None]).T @ data.X
    est = np.linalg.solve(A, (data.X * W[:, None]).T @ data.y)
    return est, np.sqrt(np.diag(np.linalg.inv(A)))


# 1e-6 is where the scipy reference itself needs the most subdivisions (half a minute a case on
# 2 cores): opt-in with -m slow; the neighbours 1e-4 and 1e-8 stay in the default suite.
SD_FACTORS = [1e2, 1.0, 1e-2, 1e-4, pytest.param(1e-6, marks=pytest.mark.slow), 1e-8, 1e-10, 1e-12]
OFFSETS = [0.0, 1e3]      # prior mean = fixed-effect estimate + offset x prior sd


@pytest.mark.parametrize("dataset", ["eight", "bcg"])
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("factor", SD_FACTORS)
def test_error_estimate_bounds_the_true_error_over_prior_scales(dataset, offset, factor, request):
    """Prior sds from 1e2 to 1e-12 times the data's scale, means at the data or 1e3 prior sds away:
    every summary agrees with direct integration, and the reported error estimate is not below
    the actual error (beyond the reference's own accuracy, 1e-9 of the scale)."""
    data = request.getfixturevalue(dataset)
    est, scale = _fe_scale(data)
    sd0 = factor * scale
    m0 = est + offset * sd0
    post = analytic.fit(data, tau_prior=HalfCauchyTau(float(np.sqrt(np.mean(data.variance)))),
                        beta_prior=NormalBeta(tuple(m0), tuple(sd0)))
    e = post.rule.edges
    ref = Reference(data, m0, sd0, post.tau_prior.logpdf, e[0], e[-1],
                    np.log(post.quantile("tau", [0.001, 0.1, 0.5, 0.9, 0.999])))
    got = _engine_summaries(post)
    want = ref.summaries(got)
    sc = _scales(post)
    actual = {k: abs(got[k] - want[k]) / sc[k] for k in want}
    # the reference's own error (1e-9 of the scale: quad), and a few rounding units of each value
    # (not counted by the estimate: docs of ExactPosterior)
    ref_err = {k: 1e-9 + 8 * np.finfo(float).eps * abs(want[k]) / sc[k] for k in want}
    assert all(actual[k] <= post.error_estimate + ref_err[k] for k in want), (actual, post.error_estimate)
    assert post.error_estimate < 1e-7


# --------------------------------------------------------------------------- issue 14: tight priors
def _pinned_tau_mean(y, s2, mu=0.0):
    """E[tau | y] with mu known and a flat tau prior, by quad over tau (independent reference)."""
    lik = lambda t: math.exp(stats.norm.logpdf(y, mu, np.sqrt(s2 + t * t)).sum() + 30.0)  # noqa: E731
    edges = [0, 1, 3, 10, 30, 100, 1e3, 1e4, np.inf]
    Z = sum(integrate.quad(lik, a, b, epsabs=0, epsrel=1e-12, limit=200)[0] for a, b in zip(edges[:-1], edges[1:]))
    M = sum(integrate.quad(lambda t: t * lik(t), a, b, epsabs=0, epsrel=1e-12, limit=200)[0]
            for a, b in zip(edges[:-1], edges[1:]))
    return M / Z


def test_tight_mu_prior_1e8_gives_the_pinned_answer(eight):
    """Issue 14: normal:0,1e-8 on mu reported E[tau] = 4.0057 (error estimate 1.7e-9); the answer,
    mu pinned at 0, is 7.5064."""
    post = analytic.fit(eight, beta_prior=NormalBeta(0.0, 1e-8))
    ref = _pinned_tau_mean(eight.y, eight.variance)
    assert ref == pytest.approx(7.5064, abs=1e-4)
    # prior sd 1e-8 moves E[tau] from the pinned value by O(1e-16 / 10^2): invisible
    assert post.mean("tau") == pytest.approx(ref, rel=1e-8)
    assert abs(post.mean("mu")) < 1e-14 and post.sd("mu") == pytest.approx(1e-8, rel=1e-6)


def test_tight_mu_prior_1e6_is_right_to_its_error_estimate(eight):
    """Issue 14: at sd 1e-6 the engine was wrong by 1.5e-4 relative while reporting 7e-6."""
    post = analytic.fit(eight, beta_prior=NormalBeta(0.0, 1e-6))
    e = post.rule.edges
    ref = Reference(eight, np.zeros(1), np.array([1e-6]), FlatTau().logpdf, e[0], e[-1],
                    np.log(post.quantile("tau", [0.01, 0.5, 0.99])))
    want = ref.summaries(_engine_summaries(post))["tau_mean"]
    assert abs(post.mean("tau") - want) / want <= post.error_estimate + 1e-9


def test_tight_prior_in_realistic_units(eight):
    """Issue 14: effects and errors of order 1e9 with normal:0,1 on mu (prior sd 1e-9 of the data)."""
    big = MetaData.from_arrays(eight.y * 1e8, eight.se * 1e8, labels=eight.labels)
    post = analytic.fit(big, beta_prior=NormalBeta(0.0, 1.0))
    ref = analytic.fit(eight, beta_prior=NormalBeta(0.0, 1e-8))     # the same model, rescaled
    assert post.mean("tau") / 1e8 == pytest.approx(ref.mean("tau"), rel=1e-8)
    assert post.mean("tau") / 1e8 == pytest.approx(_pinned_tau_mean(eight.y, eight.variance), rel=1e-8)


def test_tiny_prior_sd_is_a_known_coefficient(eight):
    """A prior sd of 1e-300 (1 / sd^2 overflows) is the point-mass limit: mu = its prior mean."""
    post = analytic.fit(eight, beta_prior=NormalBeta(3.0, 1e-300))
    assert post.mean("tau") == pytest.approx(_pinned_tau_mean(eight.y, eight.variance, mu=3.0), rel=1e-8)
    assert post.mean("mu") == 3.0 and post.quantile("mu", 0.5) == 3.0
    mu = post.sample(50, 2, seed=1, predictive=False).posterior["mu"].values
    assert np.all(np.abs(mu - 3.0) < 1e-290)


@pytest.mark.parametrize("sd", [1e6, 1e12, 1e100])
def test_very_wide_prior_approaches_the_flat_answer(bcg, sd):
    """A normal prior of sd 1e6..1e100 x the data scale gives the flat prior's posterior."""
    flat = analytic.fit(bcg).summary()
    wide = analytic.fit(bcg, beta_prior=NormalBeta(0.0, sd)).summary()
    cols = ["mean", "sd", "q2.5", "q50", "q97.5"]
    scale = flat["sd"].to_numpy()[:, None]
    # the prior's pull is (data sd / prior sd)^2 <= 1e-10 of the posterior sd
    assert np.max(np.abs(wide[cols].to_numpy() - flat[cols].to_numpy()) / scale) < 1e-7


def test_posterior_of_beta_given_tau_is_stable_in_both_regimes():
    """beta | tau from the engine equals the covariance form for prior sds 1e-12..1e12 of the data."""
    from metapool.analytic import _base as B

    rng = np.random.default_rng(7)
    J = 12
    X = np.column_stack([np.ones(J), rng.normal(size=J)])
    y = 5.0 + X[:, 1] + rng.normal(size=J)
    s2 = rng.uniform(0.5, 2.0, J)
    for f in (1e-12, 1e-6, 1.0, 1e6, 1e12):
        sd0 = np.array([f, 2 * f])
        m0 = np.array([1.0, -2.0])
        for tau in (0.0, 1.0, 30.0):
            C = np.diag(s2 + tau**2) + X @ np.diag(sd0**2) @ X.T
            r = y - X @ m0
            if f <= 1.0:    # covariance form: accurate where the prior is not wide
                mean = m0 + np.diag(sd0**2) @ X.T @ np.linalg.solve(C, r)
            else:           # precision form: accurate where the prior is wide
                W = np.diag(1 / (s2 + tau**2))
                mean = np.linalg.solve(X.T @ W @ X + np.diag(1 / sd0**2), X.T @ W @ y + m0 / sd0**2)
            cond = B.conditional(np.array([tau]), y, s2, X, 1 / sd0**2, m0)
            post_sd = np.sqrt(np.diag(cond.beta_cov[0]))
            assert np.all(np.abs(cond.beta_hat[0] - mean) <= 1e-9 * post_sd + 1e-12 * np.abs(mean))
            if f <= 1.0:   # the covariance form of the covariance is accurate where the prior is not wide
                cov = np.diag(sd0**2) - np.diag(sd0**2) @ X.T @ np.linalg.solve(C, X @ np.diag(sd0**2))
                np.testing.assert_allclose(np.sqrt(np.diag(cond.beta_cov[0])), np.sqrt(np.diag(cov)), rtol=1e-8)


def test_log_marginal_is_right_for_tight_priors():
    """log p(y | tau) up to the prior's constant equals the multivariate normal at prior sds 1e-10..1."""
    from metapool.analytic import _base as B

    rng = np.random.default_rng(3)
    J = 9
    X = np.column_stack([np.ones(J), rng.normal(size=J)])
    y, s2 = rng.normal(size=J) * 2, rng.uniform(0.5, 2, J)
    m0 = np.array([0.3, -1.0])
    for f in (1e-10, 1e-6, 1e-2, 1.0):
        sd0 = np.array([f, 3 * f])
        lp = []
        exact = []
        for tau in (0.0, 0.7, 4.0):
            cond = B.conditional(np.array([tau]), y, s2, X, 1 / sd0**2, m0)
            lp.append(cond.log_post[0] - np.log(sd0).sum() - 0.5 * J * np.log(2 * np.pi))
            exact.append(stats.multivariate_normal(X @ m0, np.diag(s2 + tau**2) + X @ np.diag(sd0**2) @ X.T).logpdf(y))
        np.testing.assert_allclose(lp, exact, rtol=0, atol=1e-9 * max(1.0, np.max(np.abs(exact))))


# --------------------------------------------------------------------------- issue 14: tau prior scales
def test_uniform_tau_prior_far_below_the_data(eight):
    """uniform:1e-300 used to end in 'could not bracket': the likelihood is constant there, so the
    posterior of tau is the prior, uniform on (0, 1e-300)."""
    post = analytic.fit(eight, tau_prior="uniform:1e-300")
    assert post.mean("tau") == pytest.approx(0.5e-300, rel=1e-8)
    assert post.sd("tau") == pytest.approx(1e-300 / math.sqrt(12), rel=1e-7)
    assert post.quantile("tau", 0.25) == pytest.approx(0.25e-300, rel=1e-7)
    assert post.quantile("tau", 1e-10) == pytest.approx(1e-310, rel=1e-6)   # in the closed-form tail
    assert post.tau_cdf(1e-310) == pytest.approx(1e-10, rel=1e-6)
    # mu: the tau -> 0 (complete pooling) answer
    w = 1 / eight.variance
    assert post.mean("mu") == pytest.approx((w * eight.y).sum() / w.sum(), rel=1e-12)
    tau = post.sample(200, 2, seed=3, predictive=False).posterior["tau"].values
    assert np.all((tau >= 0) & (tau <= 1e-300))


def test_exponential_tau_prior_in_the_subnormal_range_is_an_input_error(eight):
    """exponential:1e-320 puts tau among subnormal doubles (4 digits): a clear input error."""
    with pytest.raises(InputError, match="smallest normal double"):
        analytic.fit(eight, tau_prior="exponential:1e-320")


def test_lognormal_tau_prior_far_above_the_data(eight):
    """lognormal:300,1: for tau >> s the flat-mu likelihood is proportional to tau^-(J-1), so the
    posterior is lognormal(300 - 7, 1) exactly (to e^-580)."""
    post = analytic.fit(eight, tau_prior="lognormal:300,1")
    assert post.mean("tau") == pytest.approx(math.exp(293.5), rel=1e-8)
    assert post.quantile("tau", 0.5) == pytest.approx(math.exp(293.0), rel=1e-8)


@pytest.mark.parametrize("prior", ["halfnormal:1e-200", "halfcauchy:1e-300", "lognormal:-600,1"])
def test_tau_priors_far_below_the_data_fit(eight, prior):
    """Tau priors whose scale is 1e-200..1e-300 of the data: the posterior of tau below the data's
    scale is the prior times the constant tau -> 0 likelihood (half-normal: mean scale sqrt(2/pi))."""
    post = analytic.fit(eight, tau_prior=prior)
    assert post.error_estimate < 1e-8
    if prior.startswith("halfnormal"):
        assert post.mean("tau") == pytest.approx(1e-200 * math.sqrt(2 / math.pi), rel=1e-8)
    if prior.startswith("lognormal"):
        assert post.quantile("tau", 0.5) == pytest.approx(math.exp(-600.0), rel=1e-7)


def test_data_near_the_top_of_the_range_fit_or_say_what_to_do(eight):
    """Data x 1e145 used to end in 'could not bracket': the posterior scales with the data."""
    post = analytic.fit(MetaData.from_arrays(eight.y * 1e145, eight.se * 1e145, labels=eight.labels))
    ref = analytic.fit(eight)
    assert post.mean("tau") / 1e145 == pytest.approx(ref.mean("tau"), rel=1e-8)
    assert post.quantile("mu", 0.975) / 1e145 == pytest.approx(ref.quantile("mu", 0.975), rel=1e-8)
    # x 3e148 (the largest effect is 8.4e149 < 1e150): tau's posterior reaches where tau^2 overflows
    with pytest.raises(InputError, match="overflows"):
        analytic.fit(MetaData.from_arrays(eight.y * 3e148, eight.se * 3e148, labels=eight.labels))


def test_heavy_tail_second_moments_keep_every_node():
    """Half-Cauchy prior, J = 2, errors 1e3-1e4: E[tau^2] comes from tau up to e^60, nodes whose
    weight is below 1e-18 of the largest; the summary's sd of theta_new equals the direct one
    (found by the hypothesis test below: the summary dropped them and lost 2e-6 of the sd)."""
    y = np.array([1.12240203e-06, -6.34925540e-07])
    se = np.array([2792.36786351, 34698.5518692])
    post = analytic.fit(MetaData.from_arrays(y, se), tau_prior=HalfCauchyTau(1.0), beta_prior=NormalBeta(0.0, 1.0))
    table = post.summary()
    # reference by quad over log tau of the closed form (scipy, independent of the engine)
    def logf(t):
        C = np.diag(se**2 + t * t) + 1.0
        return -0.5 * (np.linalg.slogdet(C)[1] + y @ np.linalg.solve(C, y)) - math.log1p(t * t)

    def mom(g):
        f = lambda x: math.exp(logf(math.exp(x)) + x + 10) * g(math.exp(x))  # noqa: E731
        edges = [-40, -10, 0, 5, 8, 10, 12, 15, 20, 30, 60, 100]
        return sum(integrate.quad(f, a, b, epsabs=0, epsrel=1e-13, limit=400)[0] for a, b in zip(edges[:-1], edges[1:]))

    def cond_mu(t):
        C = np.diag(se**2 + t * t) + 1.0
        one = np.ones(2)
        return 1.0 - one @ np.linalg.solve(C, one), one @ np.linalg.solve(C, y)

    Z = mom(lambda t: 1.0)
    e_t2 = mom(lambda t: t * t) / Z
    e_v = mom(lambda t: cond_mu(t)[0]) / Z
    e_m = mom(lambda t: cond_mu(t)[1]) / Z
    e_m2 = mom(lambda t: cond_mu(t)[1] ** 2) / Z
    want = math.sqrt(e_t2 + e_v + e_m2 - e_m**2)
    assert table.loc["theta_new", "sd"] == pytest.approx(want, rel=1e-9)
    assert post.sd("theta_new") == pytest.approx(want, rel=1e-9)


def test_summary_agrees_with_direct_moments_across_many_orders_of_tau():
    """J = 2, half-Cauchy(1e14) on tau and normal(0, 1e14) on mu with data of scale 1: p(tau | y)
    spreads over 70 orders; the summary's sd of mu equals post.sd (all nodes) and is invariant
    under rescaling (found by the hypothesis test: the summary had dropped nodes near the mode)."""
    y, se = np.array([0.12573022, -0.13210486]), np.array([1.0, 1.0])
    c = 2.0**37
    sds = []
    for k in (1.0, c):
        post = analytic.fit(MetaData.from_arrays(y * k, se * k), tau_prior=HalfCauchyTau(1e14 * k),
                            beta_prior=NormalBeta(0.0, 1e14 * k))
        table = post.summary()
        assert table.loc["mu", "sd"] == pytest.approx(post.sd("mu"), rel=1e-9)
        sds.append(table.loc["mu", "sd"] / k)
    assert sds[1] == pytest.approx(sds[0], rel=1e-8)


def test_improper_posterior_is_an_input_error():
    d = MetaData.from_arrays([1.0, 2.0], [1.0, 1.0])
    with pytest.raises(InputError, match="improper"):
        analytic.fit(d)


# --------------------------------------------------------------------------- issue 14: API arguments
@pytest.fixture(scope="module")
def post(eight):
    return analytic.fit(eight)


def test_summary_quantiles_outside_0_1_are_input_errors(post):
    with pytest.raises(InputError, match=r"quantiles .*\[0, 1\].*1\.5"):
        post.summary(quantiles=[1.5])
    with pytest.raises(InputError, match="prob"):
        post.summary(prob=1.5)


@pytest.mark.parametrize("q", [-0.5, 1.5, float("nan")])
def test_quantile_outside_0_1_or_nan_is_an_input_error(post, q):
    for name in ("mu", "tau", "theta[A]"):
        with pytest.raises(InputError, match=r"q must be .*\[0, 1\]"):
            post.quantile(name, q)


def test_quantile_0_and_1_are_the_ends_of_the_support(post, eight):
    assert list(post.quantile("theta[A]", [0.0, 1.0])) == [-np.inf, np.inf]
    assert list(post.quantile("mu", [0.0, 1.0])) == [-np.inf, np.inf]
    assert list(post.quantile("tau", [0.0, 1.0])) == [0.0, np.inf]
    bounded = analytic.fit(eight, tau_prior="uniform:0,30")
    assert list(bounded.quantile("tau", [0.0, 1.0])) == [0.0, 30.0]
    table = post.summary(quantiles=[0.0, 0.5, 1.0])
    assert table.loc["mu", "q0"] == -np.inf and table.loc["mu", "q100"] == np.inf
    assert table.loc["tau", "q0"] == 0.0 and table.loc["tau", "q100"] == np.inf
    assert table.loc["mu", "q50"] == pytest.approx(post.quantile("mu", 0.5))


def test_cdf_nan_is_an_input_error_and_infinities_are_the_limits(post):
    with pytest.raises(InputError, match="x must be numbers"):
        post.cdf("mu", np.nan)
    assert list(post.cdf("mu", [-np.inf, np.inf])) == [0.0, 1.0]


@pytest.mark.parametrize("kw, name", [
    ({"draws": 2.5}, "draws"), ({"draws": 0}, "draws"), ({"draws": -3}, "draws"), ({"draws": True}, "draws"),
    ({"draws": "10"}, "draws"), ({"chains": 0}, "chains"), ({"chains": 1.0}, "chains"),
    ({"chains": False}, "chains"), ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"seed": True}, "seed"),
    ({"seed": "abc"}, "seed"),
])
def test_sample_arguments_are_checked(post, kw, name):
    with pytest.raises(InputError, match=f"^{name} must be"):
        post.sample(**kw)


def test_sample_accepts_numpy_integers_and_generators(post):
    dt = post.sample(np.int64(5), np.int32(2), seed=np.random.default_rng(1), predictive=False)
    assert dt.posterior["tau"].shape == (2, 5)


def test_sample_refuses_a_request_too_large_for_memory(post):
    """10^9 draws x 4 chains of 8 studies: 8 bytes x 4e9 x (3 x 8 + 6) = 960 GB, refused before allocating."""
    from metapool.analytic import _checks

    assert _checks.draws_bytes(10**9, 4, 8, 1, True) == 8 * 4 * 10**9 * (3 * 8 + 2 + 4)
    with pytest.raises(InputError, match=r"4e\+09 draws .* of 8 studies need about 960 GB"):
        _checks.memory_for_draws(10**9, 4, 8, 1, True, available=64 * 10**9)
    with pytest.raises(InputError, match="need about"):
        post.sample(draws=10**12)


# --------------------------------------------------------------------------- hypothesis
TAU_PRIORS = {
    "halfnormal": lambda s: HalfNormalTau(s),
    "halfcauchy": lambda s: HalfCauchyTau(s),
    "exponential": lambda s: ExponentialTau(s),
    "lognormal": lambda s: LogNormalTau(math.log(s), 1.0),
}


def _rescaled_prior(kind: str, scale: float):
    return TAU_PRIORS[kind](scale)


@st.composite
def problems(draw):
    J = draw(st.integers(2, 50))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    unit = 10.0 ** draw(st.floats(-60, 60))              # overall data scale
    spread = draw(st.floats(0, 20))                      # orders of magnitude spanned within the data
    y = unit * rng.normal(size=J) * 10.0 ** rng.uniform(-spread / 2, spread / 2, J)
    se = unit * 10.0 ** rng.uniform(-spread / 2, spread / 2, J)
    kind = draw(st.sampled_from(sorted(TAU_PRIORS)))
    tau_scale = unit * 10.0 ** draw(st.floats(-30, 30))
    sd_beta = unit * 10.0 ** draw(st.floats(-30, 30))
    mean_beta = unit * draw(st.floats(-1e3, 1e3))
    return y, se, kind, tau_scale, mean_beta, sd_beta


def _key_summaries(post) -> np.ndarray:
    t = post.summary()
    return t[["mean", "sd", "q2.5", "q50", "q97.5"]].to_numpy()


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(problems())
def test_random_data_fit_invariantly_or_raise_input_error(problem):
    """Random finite data (J 2..50, 40 orders of magnitude of scale and up to 20 within a data set)
    and random proper priors either fit, with summaries invariant under permutation of the studies
    and joint rescaling of y, se and the priors' scales (to 1e-6 of a posterior sd), or raise
    InputError: never another exception."""
    y, se, kind, tau_scale, mean_beta, sd_beta = problem
    try:
        data = MetaData.from_arrays(y, se)
    except ValueError:        # outside the documented data range: data.py's own (tested) message
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)    # "did not reach rtol" is allowed
            post = analytic.fit(data, tau_prior=_rescaled_prior(kind, tau_scale),
                                beta_prior=NormalBeta(mean_beta, sd_beta))
            base = _key_summaries(post)
    except InputError:
        return
    assert np.all(np.isfinite(base[:, :2])) and np.all(base[:, 1] >= 0)
    # permutation: same rows, relabelled
    perm = np.random.default_rng(0).permutation(len(y))
    labels = np.array(data.labels)
    pdata = MetaData.from_arrays(y[perm], se[perm], labels=list(labels[perm]))
    c = 2.0 ** 37                                         # exact in binary: rescaling adds no rounding
    sdata = MetaData.from_arrays(y * c, se * c, labels=list(labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ppost = analytic.fit(pdata, tau_prior=_rescaled_prior(kind, tau_scale),
                             beta_prior=NormalBeta(mean_beta, sd_beta))
        spost = analytic.fit(sdata, tau_prior=_rescaled_prior(kind, tau_scale * c),
                             beta_prior=NormalBeta(mean_beta * c, sd_beta * c))
    pt = ppost.summary()[["mean", "sd", "q2.5", "q50", "q97.5"]]
    names = list(post.summary().index)
    permuted = pt.loc[names].to_numpy()
    scaled = _key_summaries(spost) / c
    scale = np.maximum(base[:, 1:2], np.finfo(float).tiny).copy()
    # tau's row is measured as the engine measures it: against the larger of |E tau| and its sd
    scale[0] = max(abs(base[0, 0]), base[0, 1])
    # 1e-6 of a posterior sd, or the quadrature's own estimates, or a few dozen rounding units of
    # the value where the posterior sd is below 1e-10 of it (e.g. y / se = 1e11)
    tol = (1e-6 + 10 * max(post.error_estimate, ppost.error_estimate, spost.error_estimate)
           + 64 * np.finfo(float).eps * np.abs(base) / scale)
    assert np.all(np.abs(permuted - base) / scale <= tol)
    assert np.all(np.abs(scaled - base) / scale <= tol)
