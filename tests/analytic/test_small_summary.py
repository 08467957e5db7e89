"""The summary of small problems: every kind in one stacked mixture, quantiles from a compressed
Gauss rule checked against the next smaller one, tau's shortest interval by Newton's method.

References are the per-kind summary on the full rule (the path every earlier release took, whose
numbers the quadrature tests in test_analytic.py check) and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from metapool import MetaData, datasets
from metapool.analytic import fit
from metapool.analytic import _base as B
from metapool.analytic import posterior as P

QS = P.DEFAULT_QUANTILES


def _per_kind(post) -> np.ndarray:
    """Rows after tau from the per-kind path on the full rule (below COMPRESS_CELLS)."""
    out = np.empty((len(post.parameters), 2 + len(QS) + 2))
    row = 1
    for kind in ("beta", "theta", "theta_new", "y_pred"):
        R = post._group_size(kind)
        post._group_summary(kind, QS, 0.95, out[row:row + R])
        row += R
    return out[1:]


def _joint(post, compress: bool) -> np.ndarray:
    out = np.empty((len(post.parameters), 2 + len(QS) + 2))
    post._joint_summary(QS, 0.95, out[1:], compress=compress)
    return out[1:]


def _tau0() -> MetaData:
    """100 equal-error studies with no heterogeneity: p(tau | y) piles up at 0."""
    rng = np.random.default_rng(20261301)
    return MetaData.from_arrays(rng.normal(0.0, 1.0, 100), np.ones(100))


def _cases(eight, bcg_ablat):
    return {"eight": (eight, None), "bcg_ablat": (bcg_ablat, None),
            "seed_countries": (datasets.load("seed_countries"), None), "tau0": (_tau0(), None),
            "seed_halfnormal": (datasets.load("seed_countries"), "halfnormal:1")}


@pytest.fixture(scope="module")
def posts(eight, bcg_ablat):
    return {k: fit(d, pr) for k, (d, pr) in _cases(eight, bcg_ablat).items()}


@pytest.mark.parametrize("name", ["eight", "bcg_ablat", "seed_countries", "tau0", "seed_halfnormal"])
def test_joint_summary_on_the_full_rule_equals_the_per_kind_summary(posts, name):
    post = posts[name]
    assert post._joint()
    ref, got = _per_kind(post), _joint(post, compress=False)
    sd = ref[:, 1:2]
    assert np.max(np.abs(got - ref) / sd) < 1e-12


@pytest.mark.parametrize("name", ["eight", "bcg_ablat", "seed_countries", "tau0", "seed_halfnormal"])
def test_compressed_quantiles_equal_the_full_rule_to_a_tenth_of_rtol(posts, name):
    post = posts[name]
    tau, w, cond = post._full_rule
    m, s = post._stacked_moments(tau, cond)
    mean, sd = B.mixture_mean_sd(w, m, s)
    parts = post._ladder_rules(tau, w, cond, mean, sd)
    rows = np.concatenate([cols for cols, _ in parts])
    assert np.array_equal(np.sort(rows), np.arange(m.shape[1]))     # every row once
    compressed = sum(cols.size for cols, rule in parts if rule is not None)
    assert compressed >= 0.5 * m.shape[1]                           # the compressed path is taken
    assert all(rule[0].size in P.LADDER[1:] for _, rule in parts if rule is not None)
    ref = _per_kind(post)
    got = post.summary().to_numpy()[1:]
    # means and sds: the full rule's (only the summation order differs)
    assert np.max(np.abs(got[:, :2] - ref[:, :2]) / ref[:, 1:2]) < 1e-13
    assert np.max(np.abs(got - ref) / ref[:, 1:2]) < 0.1 * post.rtol


def test_ladder_falls_back_to_the_full_rule_when_moments_do_not_exist():
    """Flat priors and J - p = 3: tau's sd does not exist (tail tau^-3), nothing is compressed."""
    d = MetaData.from_arrays([0.1, 0.9, -0.4, 1.6], [0.3, 0.5, 0.4, 0.6])
    with pytest.warns(P.MomentWarning):
        post = fit(d)
        post.summary()
    tau, w, cond = post._full_rule
    m, s = post._stacked_moments(tau, cond)
    mean, sd = B.mixture_mean_sd(w, m, s)
    parts = post._ladder_rules(tau, w, cond, mean, sd)
    assert len(parts) == 1 and parts[0][1] is None and np.array_equal(parts[0][0], np.arange(m.shape[1]))


def test_rows_that_converge_slowly_fall_back_to_the_full_rule(bcg_ablat):
    """bcg ~ ablat: theta of study 7 (a small standard error) needs more than 48 nodes; it alone
    keeps the full rule, and its numbers are the full rule's."""
    post = fit(bcg_ablat)
    tau, w, cond = post._full_rule
    m, s = post._stacked_moments(tau, cond)
    mean, sd = B.mixture_mean_sd(w, m, s)
    parts = post._ladder_rules(tau, w, cond, mean, sd)
    full = np.concatenate([cols for cols, rule in parts if rule is None])
    assert 0 < full.size <= 3
    ref = _per_kind(post)
    got = post.summary().to_numpy()[1:]
    assert np.max(np.abs(got[full] - ref[full]) / ref[full, 1:2]) < 1e-12


def test_gauss_rules_for_measure_integrate_polynomials_of_degree_2n_minus_1():
    rng = np.random.default_rng(4)
    t = np.sort(rng.normal(size=300))
    w = rng.uniform(size=300)
    w /= w.sum()
    for n, (x, v) in zip((3, 8, 16), B.gauss_rules_for_measure(t, w, (3, 8, 16))):
        assert x.size == n and np.isclose(v.sum(), 1.0, rtol=1e-13)
        for k in range(2 * n):
            assert v @ x**k == pytest.approx(w @ t**k, rel=1e-9, abs=1e-12)
        # degree 2n is not exact (the rule has only n nodes)
        assert abs(v @ x ** (2 * n) - w @ t ** (2 * n)) > 1e-6
    # the one-rule form gives the same nodes
    x8, v8 = B.gauss_rule_for_measure(t, w, 8)
    x, v = B.gauss_rules_for_measure(t, w, (8,))[0]
    np.testing.assert_array_equal(x8, x)


def test_gauss_rules_stop_at_the_number_of_distinct_points():
    x, v = B.gauss_rules_for_measure(np.array([-1.0, -1.0, -1.0, 2.0]), np.full(4, 0.25), (3,))[0]
    assert x.size <= 2
    np.testing.assert_allclose(v @ x, 0.25 * (-3.0 + 2.0), atol=1e-14)


def test_mixture_quantile_with_one_probability_per_column_equals_separate_calls():
    rng = np.random.default_rng(8)
    K, R = 30, 7
    w = rng.uniform(size=K)
    w /= w.sum()
    m, s = rng.normal(size=(K, R)), rng.uniform(0.2, 2.0, size=(K, R))
    qs = np.array([0.025, 0.5, 0.9])
    cols = np.tile(np.arange(R), qs.size)
    got = B.mixture_quantile(np.repeat(qs, R), w, m[:, cols], s[:, cols]).reshape(qs.size, R)
    for i, q in enumerate(qs):
        np.testing.assert_allclose(got[i], B.mixture_quantile(q, w, m, s), rtol=0, atol=1e-13)
        np.testing.assert_allclose(B.mixture_cdf(got[i], w, m, s), q, atol=1e-13)


@pytest.mark.parametrize("name", ["eight", "bcg_ablat", "seed_countries", "tau0", "seed_halfnormal"])
@pytest.mark.parametrize("prob", [0.5, 0.95])
def test_tau_hdi_by_newton_equals_the_bracketed_search(posts, name, prob):
    post = posts[name]
    got, ref = post.tau_hdi(prob), post._tau_hdi_bracketed(prob)
    sd = post._tau_moments()[1] if np.isfinite(post._tau_moments()[1]) else ref[1] - ref[0]
    assert max(abs(got[0] - ref[0]), abs(got[1] - ref[1])) < 1e-10 * sd
    assert float(np.diff(post.tau_cdf(np.array(got)))[0]) == pytest.approx(prob, abs=1e-12)


def test_tau_hdi_newton_path_is_taken_and_gives_equal_densities():
    """bcg: the mode of tau is away from 0, so both ends are interior (the Newton path)."""
    post = fit(datasets.load("bcg"))
    tail = 0.025
    lo, hi = post.tau_quantile(np.array([tail, 1 - tail]))
    ends = post._tau_hdi_newton(0.95, float(lo), float(hi))
    assert ends is not None and ends[0] > 0
    assert ends == post.tau_hdi(0.95)
    f = post._tau_density_interp(np.array(ends))
    assert f[0] == pytest.approx(f[1], rel=1e-9)
