"""Marginal likelihoods, Bayes factors, model probabilities and model averaging against direct integration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from metapool import analytic
from metapool.errors import InputError
from metapool.priors import parse_tau_prior


CASES = [("eight", "halfnormal:10", "normal:0,20"), ("eight", "halfcauchy:5", "normal:5,10"),
         ("bcg_ablat", "halfcauchy:0.5", "normal:0,2"), ("bcg_ablat", "uniform:0,3", "normal:0,1")]


def _direct_evidence(data, tau_prior: str, m0, sd0, drop: int | None = None) -> float:
    """log int N(y | X m0, diag(s^2 + tau^2) + X P0^-1 X') p(tau) dtau by scipy quad; ``drop`` removes
    a design column (that coefficient fixed at 0)."""
    X = data.X if drop is None else np.delete(data.X, drop, axis=1)
    m0 = np.broadcast_to(np.asarray(m0, float), (data.p,))
    sd0 = np.broadcast_to(np.asarray(sd0, float), (data.p,))
    if drop is not None:
        m0, sd0 = np.delete(m0, drop), np.delete(sd0, drop)
    prior = parse_tau_prior(tau_prior)
    mean = X @ m0
    B = (X * sd0**2) @ X.T

    def logf(t):
        return stats.multivariate_normal.logpdf(data.y, mean, np.diag(data.variance + t * t) + B)

    ref = max(logf(t) for t in np.linspace(0.0, 5 * math.sqrt(np.median(data.variance)), 50))
    f = lambda t: math.exp(logf(t) - ref + float(prior.logpdf(np.array([t]))[0]))  # noqa: E731
    upper = prior.upper
    if math.isfinite(upper):
        val = integrate.quad(f, 0, upper, epsabs=0, epsrel=1e-11, limit=400)[0]
    else:
        s = math.sqrt(np.median(data.variance))
        val = sum(integrate.quad(f, a, b, epsabs=0, epsrel=1e-11, limit=400)[0]
                  for a, b in ((0, s), (s, 10 * s)))
        val += integrate.quad(f, 10 * s, np.inf, epsabs=0, epsrel=1e-11, limit=400)[0]
    return math.log(val) + ref


def _normal(spec: str):
    m, s = spec.split(":")[1].split(",")
    return float(m), float(s)


@pytest.mark.parametrize("name,tau_prior,beta_prior", CASES)
def test_log_evidence_against_direct_integration(name, tau_prior, beta_prior, request):
    data = request.getfixturevalue(name)
    post = analytic.fit(data, tau_prior, beta_prior)
    m0, sd0 = _normal(beta_prior)
    assert analytic.log_evidence(post) == pytest.approx(_direct_evidence(data, tau_prior, m0, sd0), abs=1e-7)


def test_log_likelihood_given_tau_is_the_multivariate_normal(bcg_ablat):
    post = analytic.fit(bcg_ablat, "halfnormal:1", "normal:0,2")
    for t in (0.0, 0.3, 2.0):
        cov = np.diag(bcg_ablat.variance + t * t) + 4.0 * bcg_ablat.X @ bcg_ablat.X.T
        want = stats.multivariate_normal.logpdf(bcg_ablat.y, np.zeros(bcg_ablat.J), cov)
        assert analytic.log_likelihood_tau(post, t)[0] == pytest.approx(want, rel=1e-11)


def test_pooled_evidence(bcg_ablat):
    pooled = analytic.fit_pooled(bcg_ablat, "normal:0,2")
    cov = np.diag(bcg_ablat.variance) + 4.0 * bcg_ablat.X @ bcg_ablat.X.T
    assert analytic.log_evidence(pooled) == pytest.approx(
        stats.multivariate_normal.logpdf(bcg_ablat.y, np.zeros(bcg_ablat.J), cov), rel=1e-12)


@pytest.mark.parametrize("name,tau_prior,beta_prior", CASES)
def test_bayes_factor_tau_is_the_ratio_of_marginal_likelihoods_and_savage_dickey(name, tau_prior, beta_prior,
                                                                                 request):
    data = request.getfixturevalue(name)
    post = analytic.fit(data, tau_prior, beta_prior)
    bf = analytic.bayes_factors(post)
    ratio = math.exp(analytic.log_evidence(analytic.fit_pooled(data, beta_prior)) - analytic.log_evidence(post))
    assert bf.tau0 == pytest.approx(ratio, rel=1e-7)
    # Savage–Dickey: the prior density at 0 is finite and positive for all four priors
    assert bf.tau0_savage_dickey == pytest.approx(bf.tau0, rel=1e-6)


@pytest.mark.parametrize("name,tau_prior,beta_prior", CASES)
def test_bayes_factor_coefficient_zero_savage_dickey_against_marginal_likelihoods(name, tau_prior, beta_prior,
                                                                                  request):
    data = request.getfixturevalue(name)
    post = analytic.fit(data, tau_prior, beta_prior)
    bf = analytic.bayes_factors(post)
    m0, sd0 = _normal(beta_prior)
    full = _direct_evidence(data, tau_prior, m0, sd0)
    for c, key in enumerate(bf.coef0):
        null = _direct_evidence(data, tau_prior, m0, sd0, drop=c)
        assert bf.coef0[key] == pytest.approx(math.exp(null - full), rel=1e-6), key
    table = bf.to_frame()
    assert table.loc["tau = 0", "BF10"] == pytest.approx(1 / bf.tau0)


def test_improper_priors_name_the_prior(eight):
    with pytest.raises(InputError, match="flat prior on tau"):
        analytic.bayes_factors(analytic.fit(eight, "flat", "normal:0,20"))
    with pytest.raises(InputError, match="flat prior on mu"):
        analytic.log_evidence(analytic.fit(eight, "halfnormal:10"))
    with pytest.raises(InputError, match="flat prior on mu"):
        analytic.log_evidence(analytic.fit_pooled(eight))


def test_model_probabilities_and_average(eight):
    models = {"pooled": analytic.fit_pooled(eight, "normal:0,20"),
              "hier": analytic.fit(eight, "halfnormal:10", "normal:0,20")}
    le = np.array([analytic.log_evidence(m) for m in models.values()])
    probs = analytic.model_probabilities(models, prior={"pooled": 0.25, "hier": 0.75})
    want = np.exp(le + np.log([0.25, 0.75]))
    np.testing.assert_allclose(probs["posterior"], want / want.sum(), rtol=1e-12)
    np.testing.assert_allclose(probs["bayes_factor"], np.exp(le - le.max()), rtol=1e-12)
    avg = analytic.model_average(models, "mu", prior={"pooled": 0.25, "hier": 0.75})
    p = probs["posterior"].to_numpy()
    m = np.array([models["pooled"].normal_of("mu")[0], models["hier"].mean("mu")])
    s = avg.summary()
    assert s["mean"] == pytest.approx(p @ m, rel=1e-10)
    cdf_at = lambda x: p[0] * stats.norm.cdf(x, *models["pooled"].normal_of("mu")) + p[1] * models["hier"].cdf("mu", x)  # noqa: E731
    assert float(cdf_at(s["q50"])) == pytest.approx(0.5, abs=1e-9)
    draws = avg.sample(4000, 1, seed=1).values.ravel()
    z = (draws.mean() - s["mean"]) / (draws.std() / math.sqrt(draws.size))
    assert abs(z) < 4
    new = analytic.model_average(models, "theta_new")
    assert np.isfinite(new.summary()["sd"])
