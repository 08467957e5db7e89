"""The exact engine's paths for many studies: collapsing studies that share (s_j, x_j) into exact
sufficient sums, and quantiles of theta_j / y_pred_j interpolated across studies (analytic/_rows.py).

Each path must give the same numbers as the plain one: the collapse to rounding (1e-12), the
interpolation to 1e-9 of each row's posterior sd (0.1 rtol, the accuracy the engine claims)."""

from __future__ import annotations

import numpy as np
import pytest

from metapool import MetaData
from metapool.analytic import fit
from metapool.analytic import _base as B
from metapool.analytic import _rows


def _shape(shape: str, J: int) -> MetaData:
    rng = np.random.default_rng(20261201 + J)
    if shape == "equal":
        s = np.ones(J)
        y = rng.normal(0.0, np.sqrt(1 + 0.3**2), J)
    elif shape == "spread":
        s = np.exp(rng.uniform(np.log(0.1), np.log(10.0), J))
        y = rng.normal(0.0, np.sqrt(s**2 + 0.3**2))
    else:  # tau near 0
        s = np.ones(J)
        y = rng.normal(0.0, 1.0, J)
    return MetaData.from_arrays(y, s)


# ----------------------------------------------------------------------------- collapse
def _duplicated_design(J: int = 600):
    rng = np.random.default_rng(7)
    se2 = rng.choice([0.25, 1.0, 4.0], J)
    x = rng.choice([0.0, 1.0, 2.5], J)
    X = np.column_stack([np.ones(J), x])
    y = rng.normal(0.3 + 0.2 * x, np.sqrt(se2 + 0.5**2))
    return y, se2, X


@pytest.mark.parametrize("prior", ["flat", "normal"])
def test_collapsed_sums_equal_the_full_sums(prior):
    """Nine distinct (s^2, x) rows among 600 studies: log p(tau | y), E[beta | tau] and Cov[beta | tau]
    from the 9 collapsed rows equal those from all 600 at tau from 1e-3 to 1e2."""
    y, se2, X = _duplicated_design()
    prec0, mean0 = (np.zeros(2), np.zeros(2)) if prior == "flat" else (np.array([1.0, 4.0]), np.array([0.1, -0.2]))
    pr = B.prepare(y, se2, X, prec0, mean0)
    assert pr.groups is not None and pr.groups.se2.size == 9
    assert pr.groups.count.sum() == y.size
    tau = np.geomspace(1e-3, 1e2, 41)
    got = B.conditional(tau, y, se2, X, prec0, mean0, prepared=pr)
    want = B.conditional(tau, y, se2, X, prec0, mean0, prepared=pr._replace(groups=None))
    lp_got, lp_want = got.log_post - got.log_post.max(), want.log_post - want.log_post.max()
    assert np.max(np.abs(lp_got - lp_want)) < 1e-10
    sd = np.sqrt(np.diagonal(want.beta_cov, axis1=1, axis2=2))
    assert np.max(np.abs(got.beta_hat - want.beta_hat) / sd) < 1e-11
    np.testing.assert_allclose(got.beta_cov, want.beta_cov, rtol=1e-11)


def test_collapse_is_declined_when_rows_are_distinct():
    """Distinct standard errors (or too few studies) leave the sums over all studies."""
    rng = np.random.default_rng(3)
    J = 5000
    se2 = rng.uniform(0.1, 2.0, J)
    X = np.ones((J, 1))
    stacked = np.column_stack([X, rng.normal(size=J), rng.normal(size=J) ** 2])
    assert B.collapse(se2, X, stacked) is None
    assert B.collapse(np.ones(10), np.ones((10, 1)), stacked[:10]) is None


def test_collapsed_fit_equals_the_plain_fit(monkeypatch):
    """20,000 studies with three standard errors: fit + summary agree with the uncollapsed engine to
    1e-10 of every posterior sd."""
    rng = np.random.default_rng(11)
    J = 20_000
    s = rng.choice([0.5, 1.0, 2.0], J)
    d = MetaData.from_arrays(rng.normal(0.0, np.sqrt(s**2 + 0.3**2)), s)
    post = fit(d)
    assert post.problem.prepared.groups is not None
    got = post.summary()
    monkeypatch.setattr(B, "collapse", lambda *a: None)
    plain = fit(d)
    assert plain.problem.prepared.groups is None
    want = plain.summary()
    err = (got - want).abs().div(want["sd"], axis=0).to_numpy()
    assert np.nanmax(err) < 1e-10


# ----------------------------------------------------------------------------- interpolation
def test_chebyshev_series_reproduces_a_polynomial_and_a_smooth_function():
    """The interpolant through 17 points is exact for a degree-5 polynomial (coefficients above 5 are
    rounding) and within 1e-12 of exp on [-3, 2]."""
    x = _rows.chebyshev_points(-3.0, 2.0, 17)
    t = (2 * x + 1.0) / 5.0                                  # x mapped to [-1, 1]
    poly = 2.0 - t + 0.5 * (16 * t**5 - 20 * t**3 + 5 * t)   # 2 T_0 - T_1 + 0.5 T_5
    c = _rows.chebyshev_coefficients(poly)
    np.testing.assert_allclose(c[[0, 1, 5]], [2.0, -1.0, 0.5], atol=1e-14)
    assert np.max(np.abs(np.delete(c, [0, 1, 5]))) < 1e-14
    assert _rows.truncation_degree(c, 1e-12) == 5
    coef = _rows.chebyshev_coefficients(np.exp(x))
    grid = _rows.Grid(_rows.Axis(-3.0, 2.0), _rows.Axis(0.0, 0.0), coef[:, None, None], np.zeros(1, bool),
                      np.zeros(1))
    pts = np.linspace(-3.0, 2.0, 201)
    assert np.max(np.abs(_rows.interpolate(grid, pts, np.zeros_like(pts))[:, 0] - np.exp(pts))) < 1e-12


@pytest.mark.parametrize("shape", ["equal", "spread", "tau0"])
def test_interpolated_rows_equal_the_exact_rows(shape, monkeypatch):
    """6,000 studies of each shape: every theta and y_pred quantile and interval end from the
    interpolation equals the row-by-row solution to 1e-9 of the row's posterior sd (rows of a group
    whose interpolant fails its check are solved one by one)."""
    post = fit(_shape(shape, 6_000))
    assert _rows.applies(post.data, post.data.J)
    calls = []
    orig = _rows.summarise
    monkeypatch.setattr(_rows, "summarise", lambda *a, **k: calls.append(orig(*a, **k)) or calls[-1])
    got = post.summary()
    # theta_j of equal-error data near the pooled mean is not smooth enough at this J (a narrow
    # component from tau near 0): that group falls back to row-by-row solving, by its check
    assert calls[1] and (calls[0] or shape == "equal")
    monkeypatch.setattr(_rows, "MIN_ROWS", 10**12)
    want = post.summary()
    err = (got - want).abs().div(want["sd"], axis=0).to_numpy()
    assert np.nanmax(err) < 1e-9


def test_interpolation_is_refused_when_its_check_fails():
    """An interpolant that cannot meet the tolerance leaves ``out`` untouched and returns False."""
    rng = np.random.default_rng(5)
    y, se2 = rng.normal(size=500), np.exp(rng.uniform(-2, 2, 500))
    w, tau2 = np.array([0.5, 0.5]), np.array([0.3, 1.0])

    def exact(yy, ss):
        m = yy[None, :] * (tau2[:, None] / (tau2[:, None] + ss[None, :]))
        sd = np.sqrt(tau2[:, None] * ss[None, :] / (tau2[:, None] + ss[None, :]))
        out = np.empty((yy.size, 3))
        out[:, 0] = B.wsum(w, m)
        out[:, 1] = np.sqrt(B.wsum(w, sd**2 + (m - out[:, 0]) ** 2))
        out[:, 2] = B.mixture_quantile(0.9, w, m, sd)
        return out

    full = exact(y, se2)
    out = np.full((500, 3), -7.0)
    plan = _rows.Plan(0.0, 0.5)
    assert not _rows.summarise(y, se2, plan, exact, full[:, 0], full[:, 1], np.arange(0, 500, 7), 0.0, out)
    assert np.all(out == -7.0)
    assert _rows.summarise(y, se2, plan, exact, full[:, 0], full[:, 1], np.arange(0, 500, 7), 1e-9, out)
    assert np.max(np.abs(out[:, 2] - full[:, 2]) / full[:, 1]) < 1e-9


def test_mixture_hdi_is_converged_to_rounding():
    """The shortest interval of a skewed two-component mixture: F(b) - F(a) = prob to 1e-13 and
    f(a) = f(b) to 1e-10 relative."""
    w = np.array([0.7, 0.3])
    m = np.array([[0.0, 1.0], [2.0, -4.0]])
    sd = np.array([[1.0, 0.5], [1.5, 3.0]])
    lo = B.mixture_quantile(0.025, w, m, sd)
    hi = B.mixture_quantile(0.975, w, m, sd)
    a, b = B.mixture_hdi(0.95, w, m, sd, lo, hi)
    np.testing.assert_allclose(B.mixture_cdf(b, w, m, sd) - B.mixture_cdf(a, w, m, sd), 0.95, atol=1e-13)
    fa, fb = B.mixture_pdf(a, w, m, sd), B.mixture_pdf(b, w, m, sd)
    np.testing.assert_allclose(fa, fb, rtol=1e-10)
    assert np.all(b - a < hi - lo)
