"""metapool.heterogeneity against metafor's published bcg figures, its own defining equations,
statsmodels, the exact engine's flat-prior posterior mode, and invariances.

Published figures (log risk ratios, metafor; Viechtbauer 2010, J. Stat. Softw. 36(3), and the
package's test suite, github.com/wviechtb/metafor tests/testthat):
- test_misc_metan_vs_rma.uni_with_dat.bcg.r (DL): tau^2 0.3088, I^2 92.1173 %, mu -0.7141
  [-1.0644, -0.3638], Q (fixed effect) 152.2330.
- test_misc_confint.r (DL fit): Q-profile tau^2 CI [0.1197, 1.1115], I^2 CI [81.9177, 97.6781] %,
  H^2 12.6861 with CI [5.5303, 43.0680].
- test_misc_rma_uni.r: iterated DL and iterated SJ both give 0.3181; their common fixed point is
  the Paule–Mandel equation Q(tau^2) = k - 1, so PM = 0.3181.
- test_misc_fitstats.r / test_misc_anova.r (ML): logLik -12.6651 (intercept only) and -7.6857
  (~ ablat), LRT 9.9588.
- rma print-out (REML): tau^2 0.3132 (SE 0.1664), I^2 92.22 %, H^2 12.86; ~ ablat: tau^2 0.0764
  (SE 0.0591), Q_E 30.7331 on 11 df, Q_M 16.3582 (p 5.2e-5), R^2 75.62 %, ablat -0.0291.
metafor stops its Fisher scoring at a change below 1e-5 in tau^2 and its uniroot at 1.2e-4, so
the tolerances below are those of the printed digits, widened where that accuracy shows.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats
from statsmodels.stats.meta_analysis import combine_effects

from metapool import MetaData, datasets
from metapool.errors import InputError
from metapool.heterogeneity import (
    METHODS, Heterogeneity, cochran_q, estimate_tau2, h_squared, heterogeneity, i_squared,
    log_likelihood, pooled_estimate, prediction_interval, q_profile_ci, s2_typical,
)


@pytest.fixture(scope="module")
def bcg() -> MetaData:
    return datasets.load("bcg")


@pytest.fixture(scope="module")
def bcg_ablat() -> MetaData:
    return datasets.load("bcg", covariates="~ ablat")


@pytest.fixture(scope="module")
def schools() -> MetaData:
    return datasets.load("eight_schools")


def _explicit_p(data: MetaData, tau2: float) -> np.ndarray:
    """P = W - W X (X'WX)^-1 X'W, formed explicitly (an independent check of the trace forms)."""
    W = np.diag(1.0 / (data.variance + tau2))
    X = data.X
    return W - W @ X @ np.linalg.solve(X.T @ W @ X, X.T @ W)


def _derivative(f, x: float, h: float) -> float:
    return (f(x + h) - f(x - h)) / (2 * h)


# ----------------------------------------------------------------------------- published figures
def test_bcg_reml_matches_metafor(bcg):
    h = heterogeneity(bcg, "REML")
    assert isinstance(h, Heterogeneity)
    assert h.tau2 == pytest.approx(0.3132, abs=5e-5)
    assert h.tau2_se == pytest.approx(0.1664, abs=5e-5)
    assert h.q == pytest.approx(152.2330, abs=5e-4)
    assert h.df == 12
    assert h.q_pvalue == pytest.approx(stats.chi2.sf(152.2330, 12), rel=1e-4)
    assert h.i2 == pytest.approx(0.9222, abs=5e-5)
    assert h.h2 == pytest.approx(12.86, abs=5e-3)
    assert h.h2 == pytest.approx(1.0 / (1.0 - h.i2), rel=1e-12)
    assert h.moderators is None and h.r2 is None
    assert h.coefficients.names == ("Intercept",)


def test_bcg_dl_and_q_profile_match_metafor(bcg):
    h = heterogeneity(bcg, "DL")
    assert h.tau2 == pytest.approx(0.3088, abs=5e-5)
    assert h.i2 == pytest.approx(0.921173, abs=5e-7)
    assert h.i2 == pytest.approx(h.i2_q, rel=1e-12)  # DL without covariates: I^2 = (Q - df) / Q
    assert h.h2 == pytest.approx(12.6861, abs=5e-5)
    c = h.coefficients
    assert c.estimate[0] == pytest.approx(-0.7141, abs=5e-5)
    assert (c.ci_low[0], c.ci_high[0]) == pytest.approx((-1.0644, -0.3638), abs=5e-5)
    # metafor's predict(res, transf=exp)
    assert np.exp([c.estimate[0], c.ci_low[0], c.ci_high[0]]) == pytest.approx([0.4896, 0.3449, 0.6950], abs=5e-5)
    assert h.tau2_ci == pytest.approx((0.1197, 1.1115), abs=5e-5)
    assert h.i2_ci == pytest.approx((0.819177, 0.976781), abs=5e-5)
    assert h.h2_ci[0] == pytest.approx(5.5303, abs=2e-3)
    assert h.h2_ci[1] == pytest.approx(43.0680, abs=2e-3)


def test_bcg_pm_matches_metafor_fixed_point(bcg):
    est = estimate_tau2(bcg, "PM")
    assert est.tau2 == pytest.approx(0.3181, abs=5e-5)


def test_bcg_ml_log_likelihoods_match_metafor(bcg, bcg_ablat):
    t0 = estimate_tau2(bcg, "ML").tau2
    t1 = estimate_tau2(bcg_ablat, "ML").tau2
    l0 = log_likelihood(bcg, t0, restricted=False)
    l1 = log_likelihood(bcg_ablat, t1, restricted=False)
    assert l0 == pytest.approx(-12.6651, abs=5e-5)
    assert l1 == pytest.approx(-7.6857, abs=5e-5)
    assert 2 * (l1 - l0) == pytest.approx(9.9588, abs=5e-4)


def test_bcg_ablat_reml_matches_metafor(bcg_ablat):
    h = heterogeneity(bcg_ablat, "REML")
    # The exact root is 0.076348 (its score is zero, tested below). metafor's Fisher scoring
    # stops at a step below 1e-5; its printed tau^2 0.0764, SE 0.0591 and R^2 75.62 % all
    # point to its value 0.07636..0.07639, so these three get one more unit of tolerance.
    assert h.tau2 == pytest.approx(0.0764, abs=1e-4)
    assert h.tau2 == pytest.approx(0.07635, abs=1e-5)
    assert h.tau2_se == pytest.approx(0.0591, abs=1e-4)
    assert h.q == pytest.approx(30.7331, abs=5e-4)
    assert h.df == 11
    assert h.moderators.q == pytest.approx(16.3582, abs=5e-4)
    assert h.moderators.df == 1
    assert h.moderators.pvalue == pytest.approx(5.2e-5, abs=5e-7)
    assert h.r2 == pytest.approx(0.7562, abs=1e-4)
    assert h.tau2_intercept_only == pytest.approx(0.3132, abs=5e-5)
    assert h.r2 == pytest.approx((h.tau2_intercept_only - h.tau2) / h.tau2_intercept_only, rel=1e-12)
    c = h.coefficients
    assert c.names == ("Intercept", "ablat")
    assert c.estimate[1] == pytest.approx(-0.0291, abs=5e-5)
    # Q_M with one moderator is the square of its z statistic
    assert h.moderators.q == pytest.approx(c.z[1] ** 2, rel=1e-12)


# ----------------------------------------------------------------------------- defining equations
@pytest.mark.parametrize("name", ["bcg", "bcg_ablat"])
def test_pm_solves_its_estimating_equation(name, request):
    data = request.getfixturevalue(name)
    est = estimate_tau2(data, "PM")
    assert est.tau2 > 0
    assert cochran_q(data, est.tau2).q == pytest.approx(data.J - data.p, abs=1e-9)
    w = 1.0 / (data.variance + est.tau2)
    assert est.se == pytest.approx(np.sqrt(2 * data.J**2 / (data.J - data.p)) / w.sum(), rel=1e-12)


@pytest.mark.parametrize("name", ["bcg", "bcg_ablat"])
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_likelihood_estimates_zero_the_score_and_use_fisher_information(name, method, request):
    data = request.getfixturevalue(name)
    restricted = method == "REML"
    est = estimate_tau2(data, method)
    assert est.tau2 > 0
    f = lambda t2: log_likelihood(data, t2, restricted)  # noqa: E731
    h = 1e-5 * est.tau2
    assert _derivative(f, est.tau2, h) == pytest.approx(0.0, abs=1e-7)
    # a maximum: lower on both sides
    assert f(est.tau2) > max(f(0.9 * est.tau2), f(1.1 * est.tau2))
    P = _explicit_p(data, est.tau2)
    w = 1.0 / (data.variance + est.tau2)
    info = np.sum(P * P) if restricted else np.sum(w * w)
    assert est.se == pytest.approx(np.sqrt(2.0 / info), rel=1e-10)
    # the score itself, from the explicit P: y'PPy = tr P (REML) or sum w (ML)
    ypp = data.y @ P @ P @ data.y
    assert ypp == pytest.approx(np.trace(P) if restricted else w.sum(), rel=1e-9)


@pytest.mark.parametrize("name", ["bcg", "bcg_ablat"])
def test_dl_is_the_moment_estimator_with_metafors_se(name, request):
    data = request.getfixturevalue(name)
    est = estimate_tau2(data, "DL")
    P = _explicit_p(data, 0.0)
    k_p = data.J - data.p
    q = data.y @ P @ data.y
    tau2 = (q - k_p) / np.trace(P)
    assert est.tau2 == pytest.approx(tau2, rel=1e-12)
    se = np.sqrt(2 * k_p + 4 * tau2 * np.trace(P) + 2 * tau2**2 * np.sum(P * P)) / np.trace(P)
    assert est.se == pytest.approx(se, rel=1e-12)
    assert cochran_q(data).q == pytest.approx(q, rel=1e-12)


def test_statsmodels_agrees_on_dl_pm_and_the_pooled_mean(bcg):
    v = bcg.variance
    sm_dl = combine_effects(bcg.y, v, method_re="chi2")
    sm_pm = combine_effects(bcg.y, v, method_re="iterated")
    assert estimate_tau2(bcg, "DL").tau2 == pytest.approx(sm_dl.tau2, rel=1e-12)
    # statsmodels stops at |Q - (k-1)| < 1e-5 by default
    assert estimate_tau2(bcg, "PM").tau2 == pytest.approx(sm_pm.tau2, abs=1e-6)
    assert cochran_q(bcg).q == pytest.approx(sm_dl.q, rel=1e-12)
    c = pooled_estimate(bcg, sm_dl.tau2)
    assert c.estimate[0] == pytest.approx(sm_dl.mean_effect_re, rel=1e-12)
    assert c.se[0] == pytest.approx(sm_dl.sd_eff_w_re, rel=1e-12)
    assert pooled_estimate(bcg, 0.0).estimate[0] == pytest.approx(sm_dl.mean_effect_fe, rel=1e-12)


def test_typical_variance_and_i2_h2_functions(bcg, bcg_ablat):
    w = 1.0 / bcg.variance
    ht = (bcg.J - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())
    assert s2_typical(bcg) == pytest.approx(ht, rel=1e-12)
    P = _explicit_p(bcg_ablat, 0.0)
    assert s2_typical(bcg_ablat) == pytest.approx((bcg_ablat.J - 2) / np.trace(P), rel=1e-12)
    taus = np.array([[0.0, 0.1], [0.5, 2.0]])
    i2 = i_squared(taus, bcg)
    assert i2.shape == (2, 2)
    assert i2 == pytest.approx(taus**2 / (taus**2 + ht), rel=1e-12)
    assert h_squared(taus, bcg) == pytest.approx(1.0 / (1.0 - i2), rel=1e-12)
    h = heterogeneity(bcg, "REML")
    assert i_squared(h.tau, bcg) == pytest.approx(h.i2, rel=1e-12)
    assert isinstance(i_squared(0.3, bcg), float)


@pytest.mark.parametrize("name", ["bcg", "bcg_ablat", "schools"])
def test_q_profile_limits_solve_their_equations(name, request):
    data = request.getfixturevalue(name)
    low, high = q_profile_ci(data, 0.9)
    df = data.J - data.p
    if low > 0:
        assert cochran_q(data, low).q == pytest.approx(stats.chi2.isf(0.05, df), rel=1e-10)
    else:  # only where Q(0) is already below the upper quantile
        assert cochran_q(data).q <= stats.chi2.isf(0.05, df)
    assert high > low
    assert cochran_q(data, high).q == pytest.approx(stats.chi2.ppf(0.05, df), rel=1e-10)


def test_eight_schools_boundary(schools):
    # Q = 4.05 on 7 df: every estimator gives tau^2 = 0, the CI starts at 0
    for m in METHODS:
        assert estimate_tau2(schools, m).tau2 == 0.0
    h = heterogeneity(schools)
    assert h.tau2_ci[0] == 0.0 and h.tau2_ci[1] > 0
    assert h.i2 == 0.0 and h.h2 == 1.0 and h.i2_q == 0.0


def test_prediction_interval_formula(bcg, bcg_ablat):
    pr = heterogeneity(bcg, "REML").prediction
    tau2 = estimate_tau2(bcg, "REML").tau2
    w = 1.0 / (bcg.variance + tau2)
    mu, se = (w @ bcg.y) / w.sum(), 1.0 / np.sqrt(w.sum())
    z = stats.norm.isf(0.025)
    assert (pr.mean, pr.se) == pytest.approx((mu, se), rel=1e-12)
    assert (pr.pi_low, pr.pi_high) == pytest.approx((mu - z * np.hypot(se, np.sqrt(tau2)),
                                                     mu + z * np.hypot(se, np.sqrt(tau2))), rel=1e-12)
    assert (pr.ci_low, pr.ci_high) == pytest.approx((mu - z * se, mu + z * se), rel=1e-12)
    t2 = estimate_tau2(bcg_ablat, "REML").tau2
    c = pooled_estimate(bcg_ablat, t2)
    p30 = prediction_interval(bcg_ablat, t2, {"ablat": 30})
    x0 = np.array([1.0, 30.0])
    assert p30.mean == pytest.approx(x0 @ c.estimate, rel=1e-12)
    assert p30.se == pytest.approx(np.sqrt(x0 @ c.cov @ x0), rel=1e-12)
    half = z * np.sqrt(p30.se**2 + t2)
    assert (p30.pi_low, p30.pi_high) == pytest.approx((p30.mean - half, p30.mean + half), rel=1e-12)
    assert heterogeneity(bcg_ablat, x_new=[1.0, 30.0]).prediction.mean == pytest.approx(p30.mean, rel=1e-12)


# ----------------------------------------------------------------------------- exact engine cross-check
@pytest.mark.parametrize("name", ["bcg", "bcg_ablat", "schools"])
def test_reml_tau_is_the_flat_prior_posterior_mode(name, request):
    from metapool.analytic import fit

    data = request.getfixturevalue(name)
    post = fit(data)
    tau_reml = np.sqrt(estimate_tau2(data, "REML").tau2)
    grid = np.linspace(0.0, 5.0 * np.sqrt(max(tau_reml**2, np.median(data.variance))), 20001)
    i = int(np.argmax(post.tau_logpdf(grid)))
    if i == 0:
        mode = 0.0
    else:
        res = optimize.minimize_scalar(lambda t: -post.tau_logpdf(np.array([t]))[0],
                                       bounds=(grid[i - 1], grid[i + 1]), method="bounded",
                                       options={"xatol": 1e-12})
        mode = res.x
    assert mode == pytest.approx(tau_reml, abs=1e-7 * max(1.0, tau_reml))


# ----------------------------------------------------------------------------- invariances
@pytest.mark.parametrize("c", [3.7, 1e120, 1e-120])
@pytest.mark.parametrize("method", METHODS)
def test_permutation_and_scale_invariance(method, c, bcg_ablat):
    rng = np.random.default_rng(20261202)
    base = heterogeneity(bcg_ablat, method)
    perm = rng.permutation(bcg_ablat.J)
    hp = heterogeneity(bcg_ablat.subset(perm), method)
    for field in ("tau2", "tau2_se", "q", "i2", "h2", "r2"):
        assert getattr(hp, field) == pytest.approx(getattr(base, field), rel=1e-9)
    assert hp.tau2_ci == pytest.approx(base.tau2_ci, rel=1e-9)
    assert hp.coefficients.estimate == pytest.approx(base.coefficients.estimate, rel=1e-9)
    scaled = MetaData.from_arrays(c * bcg_ablat.y, c * bcg_ablat.se, X=bcg_ablat.X,
                                  coef_names=bcg_ablat.coef_names)
    hs = heterogeneity(scaled, method, x_new=bcg_ablat.x_mean)
    assert hs.tau2 == pytest.approx(c**2 * base.tau2, rel=1e-9)
    assert hs.tau2_se == pytest.approx(c**2 * base.tau2_se, rel=1e-9)
    assert hs.tau2_ci == pytest.approx(tuple(c**2 * np.array(base.tau2_ci)), rel=1e-9)
    for field in ("q", "i2", "h2", "r2", "q_pvalue"):
        assert getattr(hs, field) == pytest.approx(getattr(base, field), rel=1e-9)
    assert hs.moderators.q == pytest.approx(base.moderators.q, rel=1e-9)
    assert hs.prediction.pi_high == pytest.approx(c * base.prediction.pi_high, rel=1e-9)
    assert hs.coefficients.se == pytest.approx(c * base.coefficients.se, rel=1e-9)
    assert hs.s2_typical == pytest.approx(c**2 * base.s2_typical, rel=1e-9)
    # log-likelihoods shift by -(J - p) log c (REML) and -J log c (ML)
    for restricted, n in ((True, bcg_ablat.J - bcg_ablat.p), (False, bcg_ablat.J)):
        assert log_likelihood(scaled, c**2 * base.tau2, restricted) == pytest.approx(
            log_likelihood(bcg_ablat, base.tau2, restricted) - n * np.log(c), rel=1e-9)


def test_homogeneous_effects_give_zero_tau2():
    data = MetaData.from_arrays(np.full(6, 0.4), [0.1, 0.2, 0.3, 0.15, 0.25, 0.5])
    for m in METHODS:
        h = heterogeneity(data, m)
        assert h.tau2 == 0.0 and h.q == pytest.approx(0.0, abs=1e-20)
        assert h.tau2_ci == (0.0, 0.0)
        assert h.coefficients.estimate[0] == pytest.approx(0.4, rel=1e-14)


# ----------------------------------------------------------------------------- output and errors
def test_to_frame(bcg_ablat):
    h = heterogeneity(bcg_ablat)
    f = h.to_frame()
    assert list(f.columns) == ["value"]
    assert f.loc["Q_E", "value"] == pytest.approx(h.q)
    assert f.loc["R^2", "value"] == pytest.approx(h.r2)
    assert f.loc["tau^2 (REML)", "value"] == pytest.approx(h.tau2)
    assert f.loc["Q_M p-value", "value"] == pytest.approx(h.moderators.pvalue)
    cf = h.coefficients.to_frame()
    assert list(cf.index) == ["Intercept", "ablat"]
    assert cf.loc["ablat", "estimate"] == pytest.approx(h.coefficients.estimate[1])
    assert "Q_M" not in heterogeneity(datasets.load("bcg")).to_frame().index


def test_bad_input_raises_input_error(bcg):
    with pytest.raises(InputError, match="method must be one of DL, PM, REML, ML; got 'EB'"):
        heterogeneity(bcg, "EB")
    with pytest.raises(InputError, match="level must be strictly between 0 and 1"):
        heterogeneity(bcg, level=95)
    with pytest.raises(InputError, match="must be a metapool.MetaData; got ndarray"):
        heterogeneity(np.zeros(3))
    two = MetaData.from_arrays([0.1, 0.3], [0.1, 0.1], X=[[1, 0.0], [1, 1.0]], coef_names=["Intercept", "x"])
    with pytest.raises(InputError, match="J = 2 studies and p = 2 coefficients"):
        heterogeneity(two)
    assert issubclass(InputError, ValueError)
    assert heterogeneity(bcg, "reml").method == "REML"


def test_core_module_imports_no_engine():
    import subprocess
    import sys

    code = ("import sys, metapool.heterogeneity; "
            "bad = [m for m in ('pymc', 'metapool.analytic', 'metapool.models') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
