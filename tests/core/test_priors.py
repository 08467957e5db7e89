"""Tests of metapool.priors (densities against scipy, normalisation, tails, draws, specs, the registry)
and of its PyMC translation in metapool.models.priors."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from metapool import MetaData
from metapool.errors import InputError
from metapool.priors import (
    BETA_FAMILIES,
    BETA_PRIOR_FORMS,
    TAU_FAMILIES,
    TAU_PRIOR_FORMS,
    BetaPrior,
    DuMouchelTau,
    ExponentialTau,
    FlatBeta,
    FlatTau,
    HalfCauchyTau,
    HalfNormalTau,
    HalfStudentTTau,
    LogNormalTau,
    NormalBeta,
    TauPrior,
    UnboundPriorError,
    UniformTau,
    parse_beta_prior,
    parse_tau_prior,
    prior_forms,
)

# tau grid from tiny to large; scipy's own formulas overflow beyond ~1e150, tested separately below
GRID = np.array([0.0, 1e-300, 1e-100, 1e-10, 1e-3, 0.1, 0.5, 1.0, 2.0, 7.5, 10.0, 100.0, 1e6, 1e100])


def _dumouchel_pdf(t, s0):
    return s0 / (s0 + t) ** 2


# prior, scipy log-density (None: none in scipy), scipy frozen distribution for draws
PROPER = {
    "uniform": (UniformTau(10.0), lambda t: stats.uniform.logpdf(t, 0, 10.0), stats.uniform(0, 10.0)),
    "halfnormal": (HalfNormalTau(0.5), lambda t: stats.halfnorm.logpdf(t, scale=0.5), stats.halfnorm(scale=0.5)),
    "halfcauchy": (HalfCauchyTau(25.0), lambda t: stats.halfcauchy.logpdf(t, scale=25.0), stats.halfcauchy(scale=25.0)),
    "halft": (
        HalfStudentTTau(3.0, 1.5),
        lambda t: np.where(t >= 0, math.log(2) + stats.t.logpdf(t, 3.0, scale=1.5), -np.inf),  # 2 * t.pdf
        None,
    ),
    "exponential": (ExponentialTau(2.0), lambda t: stats.expon.logpdf(t, scale=2.0), stats.expon(scale=2.0)),
    "lognormal": (
        LogNormalTau(-1.0, 0.7),
        lambda t: stats.lognorm.logpdf(t, 0.7, scale=math.exp(-1.0)),
        stats.lognorm(0.7, scale=math.exp(-1.0)),
    ),
    "dumouchel": (
        DuMouchelTau(0.2),
        lambda t: np.where(t >= 0, np.log(_dumouchel_pdf(t, 0.2)), -np.inf),
        None,
    ),
}
ALL_TAU = [FlatTau()] + [v[0] for v in PROPER.values()]


def _quiet(f, *args):
    with np.errstate(all="ignore"):
        return f(*args)


# --------------------------------------------------------------------------- import hygiene


def test_importing_priors_does_not_import_pymc():
    code = "import metapool.priors, sys; assert 'pymc' not in sys.modules and 'pytensor' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_core_priors_modules_do_not_mention_pymc():
    import metapool.prior_registry
    import metapool.priors

    for module in (metapool.priors, metapool.prior_registry):
        text = Path(module.__file__).read_text(encoding="utf-8").lower()
        assert "pymc" not in text and "pytensor" not in text, module.__name__


# --------------------------------------------------------------------------- densities


@pytest.mark.parametrize("key", sorted(PROPER))
def test_logpdf_matches_scipy_on_grid(key):
    prior, ref, _ = PROPER[key]
    got = prior.logpdf(GRID)
    want = _quiet(ref, GRID)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # negative values are outside the support
    assert np.all(prior.logpdf(np.array([-1e-300, -1.0, -np.inf])) == -np.inf)


@pytest.mark.parametrize("prior", ALL_TAU, ids=lambda p: p.spec)
def test_logpdf_extremes_are_finite_or_minus_inf_and_silent(prior):
    t = np.array([0.0, 1e-300, 5e-324, 1e300, 1.7e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            out = prior.logpdf(t)
    assert not np.any(np.isnan(out))
    assert np.all(out < np.inf)


@pytest.mark.parametrize(
    "prior, asymptote",
    [
        # log density for tau >> scale, written as leading power times log1p correction
        (HalfCauchyTau(25.0), lambda t: math.log(2 * 25.0 / math.pi) - 2 * math.log(t) - math.log1p((25.0 / t) ** 2)),
        (
            HalfStudentTTau(3.0, 1.5),
            lambda t: (
                math.log(2)
                + math.lgamma(2.0)
                - math.lgamma(1.5)
                - 0.5 * math.log(3 * math.pi)
                - math.log(1.5)
                - 2.0 * (2 * math.log(t / 1.5) - math.log(3.0) + math.log1p(3.0 * (1.5 / t) ** 2))
            ),
        ),
        (DuMouchelTau(0.2), lambda t: math.log(0.2) - 2 * math.log(t) - 2 * math.log1p(0.2 / t)),
        (LogNormalTau(-1.0, 0.7), lambda t: stats.norm.logpdf(math.log(t), -1.0, 0.7) - math.log(t)),
        (ExponentialTau(2.0), lambda t: -math.log(2.0) - t / 2.0),
    ],
    ids=lambda x: getattr(x, "spec", ""),
)
@pytest.mark.parametrize("t", [1e150, 1e300])
def test_logpdf_huge_tau_matches_asymptote(prior, asymptote, t):
    assert prior.logpdf(t) == pytest.approx(asymptote(t), rel=1e-13)


def test_logpdf_tiny_tau_equals_density_at_zero():
    for prior, ref, _ in PROPER.values():
        if isinstance(prior, LogNormalTau):
            assert prior.logpdf(0.0) == -np.inf
            assert prior.logpdf(1e-300) == pytest.approx(ref(np.array(1e-300)), rel=1e-13)
        else:
            assert prior.logpdf(1e-300) == pytest.approx(float(ref(np.array(0.0))), rel=1e-13, abs=1e-13)


def test_flat_logpdf():
    out = FlatTau().logpdf(np.array([-1.0, 0.0, 1e-300, 3.0, 1e300]))
    np.testing.assert_array_equal(out, [-np.inf, 0.0, 0.0, 0.0, 0.0])


def test_uniform_support_ends_at_upper():
    p = UniformTau(10.0)
    np.testing.assert_array_equal(p.logpdf([0.0, 10.0, np.nextafter(10.0, 11.0), 11.0]), [-math.log(10)] * 2 + [-np.inf] * 2)
    assert p.upper == 10.0
    assert all(q.upper == math.inf for q in ALL_TAU if not isinstance(q, UniformTau))


def test_logpdf_shapes_scalars_and_nan():
    p = HalfNormalTau(1.0)
    assert np.ndim(p.logpdf(0.3)) == 0 and isinstance(p.logpdf(0.3), float)
    assert p.logpdf(np.ones((2, 3))).shape == (2, 3)
    assert p.logpdf([1.0, 2.0]).shape == (2,)
    assert np.isnan(p.logpdf(np.nan))


@pytest.mark.parametrize("key", sorted(PROPER))
def test_proper_priors_integrate_to_one(key):
    prior = PROPER[key][0]
    assert prior.proper
    # integrate over u = log(tau), which handles both the spike near 0 and the heavy tails
    f = lambda u: math.exp(float(prior.logpdf(math.exp(u))) + u)  # noqa: E731
    if math.isfinite(prior.upper):
        total, err = integrate.quad(lambda t: math.exp(prior.logpdf(t)), 0.0, prior.upper, epsabs=1e-13, epsrel=1e-13)
    else:
        # |u| <= 700 leaves out under 1e-300 of mass for every prior here
        cuts = [-700.0, -40.0, -10.0, -3.0, 0.0, 3.0, 10.0, 40.0, 700.0]
        pieces = list(zip(cuts[:-1], cuts[1:]))
        total = sum(integrate.quad(f, a, b, epsabs=1e-14, epsrel=1e-13, limit=200)[0] for a, b in pieces)
    assert abs(total - 1.0) < 1e-8


def test_flat_is_improper():
    p = FlatTau()
    assert not p.proper
    assert p.tail_exponent == 0.0
    with pytest.raises(ValueError, match="improper"):
        p.rvs(np.random.default_rng(0), 3)


# --------------------------------------------------------------------------- tails


@pytest.mark.parametrize("prior", ALL_TAU, ids=lambda p: p.spec)
def test_tail_exponent_matches_slope_of_logpdf(prior):
    k = prior.tail_exponent
    if isinstance(prior, UniformTau):
        assert k == math.inf and prior.logpdf(prior.upper * 1.01) == -np.inf
        return
    if math.isfinite(k):
        t1, t2 = 1e10, 1e12
        slope = (prior.logpdf(t2) - prior.logpdf(t1)) / (math.log(t2) - math.log(t1))
        assert slope == pytest.approx(-k, abs=1e-6)
    else:
        # lighter than any power: falls faster than tau^-50 between 1e20 and 1e40
        t1, t2 = 1e20, 1e40
        assert prior.logpdf(t2) - prior.logpdf(t1) < -50 * (math.log(t2) - math.log(t1))


def test_tail_exponents_documented_values():
    assert HalfCauchyTau(1.0).tail_exponent == 2.0
    assert DuMouchelTau(1.0).tail_exponent == 2.0
    assert HalfStudentTTau(4.0, 1.0).tail_exponent == 5.0
    for p in (HalfNormalTau(1.0), ExponentialTau(1.0), LogNormalTau(0.0, 1.0), UniformTau(1.0)):
        assert p.tail_exponent == math.inf


# --------------------------------------------------------------------------- draws


@pytest.mark.parametrize("key", sorted(PROPER))
def test_rvs_match_distribution(key):
    prior, _, frozen = PROPER[key]
    rng = np.random.default_rng(20240611)
    x = prior.rvs(rng, 4000)
    assert x.shape == (4000,) and np.all(x >= 0) and np.all(x <= prior.upper)
    if frozen is not None:
        cdf = frozen.cdf
    elif isinstance(prior, HalfStudentTTau):
        cdf = lambda t: 2 * stats.t.cdf(t, prior.nu, scale=prior.scale) - 1  # noqa: E731
    else:
        cdf = lambda t: t / (prior.s0 + t)  # noqa: E731
    assert stats.kstest(x, cdf).pvalue > 1e-3
    # the median is a moment every prior here has
    med = _median(prior)
    assert np.mean(x <= med) == pytest.approx(0.5, abs=4 * 0.5 / math.sqrt(4000))


def _median(prior):
    if isinstance(prior, DuMouchelTau):
        return prior.s0
    if isinstance(prior, HalfStudentTTau):
        return stats.t.ppf(0.75, prior.nu, scale=prior.scale)
    return PROPER[[k for k, v in PROPER.items() if v[0] == prior][0]][2].median()


def test_rvs_means_of_light_tailed_priors():
    rng = np.random.default_rng(7)
    n = 20000
    for prior, mean, sd in [
        (HalfNormalTau(0.5), 0.5 * math.sqrt(2 / math.pi), 0.5 * math.sqrt(1 - 2 / math.pi)),
        (ExponentialTau(2.0), 2.0, 2.0),
        (UniformTau(10.0), 5.0, 10 / math.sqrt(12)),
        (LogNormalTau(-1.0, 0.7), math.exp(-1 + 0.245), math.exp(-1 + 0.245) * math.sqrt(math.exp(0.49) - 1)),
    ]:
        x = prior.rvs(rng, n)
        assert np.mean(x) == pytest.approx(mean, abs=4 * sd / math.sqrt(n))


def test_rvs_seeded_reproducible_and_scalar():
    p = HalfCauchyTau(1.0)
    np.testing.assert_array_equal(p.rvs(np.random.default_rng(3), 5), p.rvs(np.random.default_rng(3), 5))
    assert np.ndim(p.rvs(np.random.default_rng(3))) == 0
    assert p.rvs(np.random.default_rng(3), (2, 3)).shape == (2, 3)


# --------------------------------------------------------------------------- DuMouchel binding


def test_dumouchel_bind_fills_s0():
    se = np.array([0.1, 0.2, 0.4, 0.05])
    data = MetaData.from_arrays(np.zeros(4), se)
    bound = DuMouchelTau().bind(data)
    assert bound.s0 == pytest.approx(math.sqrt(4 / np.sum(se**-2)), rel=1e-14)
    assert bound.logpdf(0.3) == pytest.approx(math.log(bound.s0 / (bound.s0 + 0.3) ** 2), rel=1e-14)
    # an explicit s0 is kept, other priors ignore the data
    assert DuMouchelTau(1.5).bind(data).s0 == 1.5
    for p in ALL_TAU:
        if not isinstance(p, DuMouchelTau):
            assert p.bind(data) is p


def test_dumouchel_bind_extreme_standard_errors():
    # the ends of the data range (1e-150 <= se <= 1e150)
    for scale in (1e-150, 2.5e149):
        data = MetaData.from_arrays(np.zeros(3), np.array([1.0, 2.0, 4.0]) * scale)
        s0 = DuMouchelTau().bind(data).s0
        assert s0 == pytest.approx(scale * math.sqrt(3 / (1 + 0.25 + 0.0625)), rel=1e-12)


def test_dumouchel_unbound_raises_clearly():
    p = DuMouchelTau()
    assert p.spec == "dumouchel" and p.proper and p.tail_exponent == 2.0
    for call in (lambda: p.logpdf(1.0), lambda: p.rvs(np.random.default_rng(0), 2)):
        with pytest.raises(UnboundPriorError, match=r"bind\(data\)"):
            call()
    assert issubclass(UnboundPriorError, ValueError)


# --------------------------------------------------------------------------- parameters and specs


@pytest.mark.parametrize(
    "make, label",
    [
        (lambda v: UniformTau(v), "UniformTau"),
        (lambda v: HalfNormalTau(v), "HalfNormalTau"),
        (lambda v: HalfCauchyTau(v), "HalfCauchyTau"),
        (lambda v: HalfStudentTTau(v, 1.0), "HalfStudentTTau"),
        (lambda v: HalfStudentTTau(1.0, v), "HalfStudentTTau"),
        (lambda v: ExponentialTau(v), "ExponentialTau"),
        (lambda v: LogNormalTau(0.0, v), "LogNormalTau"),
        (lambda v: DuMouchelTau(v), "DuMouchelTau"),
        (lambda v: NormalBeta(0.0, v), "NormalBeta"),
    ],
)
@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan, "x"])
def test_bad_parameters_raise_naming_prior_and_value(make, label, bad):
    with pytest.raises(ValueError, match=label) as info:
        make(bad)
    assert repr(bad) in str(info.value)


def test_non_finite_location_parameters_raise():
    with pytest.raises(ValueError, match="LogNormalTau: mu"):
        LogNormalTau(math.inf, 1.0)
    with pytest.raises(ValueError, match="NormalBeta: mean"):
        NormalBeta(math.nan, 1.0)
    with pytest.raises(TypeError, match="sd"):
        NormalBeta(0.0)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("flat", FlatTau()),
        ("uniform:0,10", UniformTau(10.0)),
        ("uniform:10", UniformTau(10.0)),
        ("halfnormal:0.5", HalfNormalTau(0.5)),
        ("halfcauchy:25", HalfCauchyTau(25.0)),
        ("halft:3,1", HalfStudentTTau(3.0, 1.0)),
        ("exponential:2", ExponentialTau(2.0)),
        ("lognormal:-1,1", LogNormalTau(-1.0, 1.0)),
        ("dumouchel", DuMouchelTau()),
        ("dumouchel:0.02", DuMouchelTau(0.02)),
        ("  HalfNormal: 1e-3 ", HalfNormalTau(1e-3)),
    ],
)
def test_parse_tau_prior(spec, expected):
    got = parse_tau_prior(spec)
    assert got == expected and type(got) is type(expected)
    assert parse_tau_prior(got.spec) == got
    assert parse_tau_prior(got) is got


def test_canonical_specs():
    assert [p.spec for p in ALL_TAU] == [
        "flat", "uniform:0,10", "halfnormal:0.5", "halfcauchy:25", "halft:3,1.5", "exponential:2",
        "lognormal:-1,0.7", "dumouchel:0.2",
    ]
    assert str(HalfCauchyTau(25)) == "halfcauchy:25"
    assert FlatBeta().spec == "flat" and NormalBeta(0, 4).spec == "normal:0,4"


@pytest.mark.parametrize(
    "spec",
    ["", "foo", "normal:0,1", "halfnormal", "halfnormal:", "halfnormal:-1", "halfnormal:abc", "halfnormal:0.5,1",
     "uniform:1,10", "uniform:0,-10", "uniform:0,inf", "halft:3", "lognormal:nan,1", "flat:1", "dumouchel:0",
     "exponential:[1;2]"],
)
def test_parse_tau_prior_errors(spec):
    with pytest.raises(ValueError) as info:
        parse_tau_prior(spec)
    msg = str(info.value)
    assert repr(spec) in msg and "valid forms" in msg and "halfcauchy:SCALE" in msg and "\n" not in msg


@pytest.mark.parametrize("spec", ["", "halfnormal:1", "normal", "normal:0", "normal:0,0", "normal:a,1", "flat:2", "normal:0,1,2"])
def test_parse_beta_prior_errors(spec):
    with pytest.raises(ValueError) as info:
        parse_beta_prior(spec)
    msg = str(info.value)
    assert repr(spec) in msg and "normal:MEAN,SD" in msg and "\n" not in msg


def test_parse_beta_prior():
    assert parse_beta_prior("flat") == FlatBeta()
    assert parse_beta_prior("normal:0,4") == NormalBeta(0.0, 4.0)
    assert parse_beta_prior(" Normal: -1.5 , 2 ") == NormalBeta(-1.5, 2.0)
    b = NormalBeta([0.0, 1.0], 2.0)
    assert parse_beta_prior(b) is b
    assert parse_beta_prior(b.spec) == b


def test_parsers_reject_other_types():
    with pytest.raises(TypeError):
        parse_tau_prior(3.0)
    with pytest.raises(TypeError):
        parse_beta_prior(None)


_pos = st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False)
_real = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["flat", "uniform", "halfnormal", "halfcauchy", "halft", "exponential", "lognormal", "dumouchel"]),
    a=_pos,
    b=_pos,
    m=_real,
)
def test_tau_spec_round_trip(kind, a, b, m):
    prior = {
        "flat": FlatTau(),
        "uniform": UniformTau(a),
        "halfnormal": HalfNormalTau(a),
        "halfcauchy": HalfCauchyTau(a),
        "halft": HalfStudentTTau(a, b),
        "exponential": ExponentialTau(a),
        "lognormal": LogNormalTau(m, b),
        "dumouchel": DuMouchelTau(a),
    }[kind]
    back = parse_tau_prior(prior.spec)
    assert back == prior and back.spec == prior.spec


@settings(max_examples=40, deadline=None)
@given(mean=st.one_of(_real, st.lists(_real, min_size=1, max_size=4)), sd=_pos)
def test_beta_spec_round_trip(mean, sd):
    prior = NormalBeta(mean, sd)
    back = parse_beta_prior(prior.spec)
    assert back == prior and back.spec == prior.spec


def test_priors_are_frozen_and_hashable():
    p = HalfNormalTau(1.0)
    with pytest.raises(AttributeError):
        p.scale = 2.0  # type: ignore[misc]
    assert len({HalfNormalTau(1.0), HalfNormalTau(1), NormalBeta(0, [1, 2]), NormalBeta(0.0, (1.0, 2.0))}) == 2
    assert all(isinstance(p, TauPrior) for p in ALL_TAU)


# --------------------------------------------------------------------------- beta priors


def test_beta_precision_and_mean():
    np.testing.assert_array_equal(FlatBeta().precision(3), np.zeros(3))
    np.testing.assert_array_equal(FlatBeta().mean(2), np.zeros(2))
    assert not FlatBeta().proper and NormalBeta(0, 1).proper
    b = NormalBeta(1.0, 4.0)
    np.testing.assert_array_equal(b.precision(2), [1 / 16, 1 / 16])
    np.testing.assert_array_equal(b.mean(2), [1.0, 1.0])
    v = NormalBeta([0.0, 2.0], [1.0, 0.5])
    np.testing.assert_array_equal(v.precision(2), [1.0, 4.0])
    np.testing.assert_array_equal(v.mean(2), [0.0, 2.0])
    with pytest.raises(ValueError, match="p = 3"):
        v.precision(3)
    with pytest.raises(ValueError, match="mean has 2 values but sd has 3"):
        NormalBeta([0, 1], [1, 2, 3])
    assert repr(v) == "NormalBeta(mean=(0.0, 2.0), sd=(1.0, 0.5))"


def test_beta_logpdf():
    v = NormalBeta([0.0, 2.0], [1.0, 0.5])
    beta = np.array([[0.3, 1.0], [-2.0, 2.5], [0.0, 0.0]])
    want = stats.norm.logpdf(beta, [0.0, 2.0], [1.0, 0.5]).sum(axis=1)
    np.testing.assert_allclose(v.logpdf(beta), want, rtol=1e-14)
    assert NormalBeta(1.0, 2.0).logpdf(0.5) == pytest.approx(stats.norm.logpdf(0.5, 1.0, 2.0), rel=1e-14)
    np.testing.assert_array_equal(FlatBeta().logpdf(beta), np.zeros(3))
    assert FlatBeta().logpdf(0.5) == 0.0


def test_beta_rvs():
    v = NormalBeta([0.0, 2.0], [1.0, 0.5])
    x = v.rvs(np.random.default_rng(11), 20000, 2)
    assert x.shape == (20000, 2)
    np.testing.assert_allclose(x.mean(axis=0), [0.0, 2.0], atol=4 * 1.0 / math.sqrt(20000))
    np.testing.assert_allclose(x.std(axis=0), [1.0, 0.5], rtol=0.03)
    assert NormalBeta(0, 1).rvs(np.random.default_rng(1), 5, 3).shape == (5, 3)
    with pytest.raises(ValueError, match="improper"):
        FlatBeta().rvs(np.random.default_rng(0), 5, 2)


# --------------------------------------------------------------------------- PyMC


TAU_PTS = np.array([1e-4, 0.05, 0.3, 2.0, 9.0])


@pytest.mark.parametrize("prior", ALL_TAU, ids=lambda p: p.spec)
def test_pymc_tau_logp_matches_logpdf(prior):
    pm = pytest.importorskip("pymc")
    pt = pytest.importorskip("pytensor.tensor")
    from metapool.models.priors import pymc_tau

    with pm.Model() as model:
        rv = pymc_tau(prior)
    assert rv.name == "tau" and model.free_RVs == [rv]
    # natural scale, no Jacobian: pm.logp of the variable at tau values
    got = pm.logp(rv, TAU_PTS).eval()
    want = prior.logpdf(TAU_PTS)
    np.testing.assert_allclose(got - got[0], want - want[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)  # PyMC computes some constants in float32
    # the model's own log-density on the unconstrained value variable, without the Jacobian
    transform = model.rvs_to_transforms[rv]
    assert transform is not None  # sampled on an unconstrained scale
    value = model.rvs_to_values[rv]
    f = model.compile_logp(jacobian=False)
    model_lp = np.array([f({value.name: transform.forward(pt.as_tensor(t), *rv.owner.inputs).eval()}) for t in TAU_PTS])
    np.testing.assert_allclose(model_lp - model_lp[0], want - want[0], rtol=0, atol=1e-10)


def test_pymc_tau_dumouchel_draws_and_custom_name():
    pm = pytest.importorskip("pymc")
    from metapool.models.priors import pymc_tau

    prior = DuMouchelTau(0.2)
    with pm.Model() as model:
        rv = pymc_tau(prior, "sigma_between")
    assert "sigma_between" in model.named_vars
    assert model.initial_point()["sigma_between_log__"] == pytest.approx(math.log(0.2))
    x = pm.draw(rv, draws=4000, random_seed=5)
    assert stats.kstest(x, lambda t: t / (0.2 + t)).pvalue > 1e-3


def test_pymc_beta():
    pm = pytest.importorskip("pymc")
    from metapool.models.priors import pymc_beta

    v = NormalBeta([0.0, 2.0], [1.0, 0.5])
    with pm.Model(coords={"coef": ["Intercept", "ablat"]}) as model:
        beta = pymc_beta(v, "beta", dims="coef")
        mu = pymc_beta(FlatBeta(), "mu")
        b3 = pymc_beta(NormalBeta(1.0, 3.0), "b3", shape=3)
    assert model.named_vars_to_dims["beta"] == ("coef",)
    x = np.array([0.3, 1.0])
    assert pm.logp(beta, x).eval().sum() == pytest.approx(v.logpdf(x), rel=1e-12)
    assert pm.logp(mu, 0.7).eval() == 0.0
    assert pm.logp(b3, np.zeros(3)).eval().sum() == pytest.approx(NormalBeta(1.0, 3.0).logpdf(np.zeros(3)), rel=1e-12)


def test_pymc_tau_unbound_dumouchel_raises_clearly():
    pytest.importorskip("pymc")
    from metapool.models.priors import pymc_tau

    with pytest.raises(UnboundPriorError, match=r"bind\(data\)"):
        pymc_tau(DuMouchelTau())


def test_every_registered_family_has_a_pymc_translation():
    pytest.importorskip("pymc")
    from metapool.models.priors import pymc_beta, pymc_tau

    for families, dispatch in ((TAU_FAMILIES, pymc_tau), (BETA_FAMILIES, pymc_beta)):
        for family in families.values():
            assert dispatch.dispatch(family.cls) is not dispatch.dispatch(object), family.keyword


def test_unregistered_prior_class_is_a_type_error_naming_the_class():
    pm = pytest.importorskip("pymc")
    from metapool.models.priors import pymc_beta, pymc_tau

    class MyTau(TauPrior):
        pass

    class MyBeta(BetaPrior):
        pass

    with pm.Model():
        with pytest.raises(TypeError, match="tau prior class MyTau"):
            pymc_tau(MyTau())
        with pytest.raises(TypeError, match="beta prior class MyBeta"):
            pymc_beta(MyBeta(), "mu")


# --------------------------------------------------------------------------- the registry


def test_valid_forms_come_from_the_registry():
    assert prior_forms("tau") == [
        "flat", "uniform:UPPER", "uniform:0,UPPER", "halfnormal:SCALE", "halfcauchy:SCALE", "halft:NU,SCALE",
        "exponential:SCALE", "lognormal:MU,SIGMA", "dumouchel", "dumouchel:S0",
    ]
    assert prior_forms("beta") == ["flat", "normal:MEAN,SD"]
    assert TAU_PRIOR_FORMS == ", ".join(prior_forms("tau"))
    assert BETA_PRIOR_FORMS == "flat, normal:MEAN,SD"
    assert list(TAU_FAMILIES) == ["flat", "uniform", "halfnormal", "halfcauchy", "halft", "exponential",
                                  "lognormal", "dumouchel"]
    # every family's longest form, filled in, parses to its class and is its canonical spelling
    for families, parse in ((TAU_FAMILIES, parse_tau_prior), (BETA_FAMILIES, parse_beta_prior)):
        for family in families.values():
            spelled = re.sub(r"[A-Z][A-Z0-9]*", "2", family.forms()[-1])
            prior = parse(spelled)
            assert type(prior) is family.cls and prior.spec == spelled


@pytest.mark.parametrize(
    "call, want",
    [
        (lambda: parse_tau_prior("halfnormal:-1"),
         "invalid tau prior 'halfnormal:-1': HalfNormalTau: scale must be finite and > 0, got -1.0; valid forms: flat,"),
        (lambda: parse_tau_prior("uniform:1,10"), "the lower end of a uniform prior must be 0, got 1;"),
        (lambda: parse_tau_prior("halft:3"), "halft takes 2 parameter(s), got 1;"),
        (lambda: parse_tau_prior("dumouchel:1,2"), "dumouchel takes 0 or 1 parameter(s), got 2;"),
        (lambda: parse_beta_prior("normal:0,[1;2]x"), "parameters must be numbers;"),
        (lambda: parse_beta_prior("normal:[0;1],[1;2;3]"), "NormalBeta: mean has 2 values but sd has 3;"),
        (lambda: HalfStudentTTau(2.0, 0.0), "HalfStudentTTau: scale must be finite and > 0, got 0.0"),
        (lambda: NormalBeta([0.0, math.inf], 1.0), "NormalBeta: mean[1] must be finite, got inf"),
        (lambda: NormalBeta(0.0, 1.0).precision(0), "p must be >= 1, got 0"),
    ],
)
def test_input_errors_are_the_packages_input_error(call, want):
    with pytest.raises(InputError) as info:
        call()
    assert want in str(info.value)
