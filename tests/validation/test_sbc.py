"""metapool.validation.sbc: rank uniformity tests, reproducibility, the exact engine's calibration
and a negative control that must be flagged.

The 1,000-replication exact-engine SBC takes about 8-12 s on 2 cores (measured: 15 ms per
replication per worker plus process start-up), so it runs in CI; the NUTS SBC is a benchmark
(benchmarks/sbc_nuts.py), here only a 1-replication smoke test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import metapool.datasets as datasets
from metapool.priors import FlatTau, HalfNormalTau, NormalBeta
from metapool.validation import SBCResult, rank_uniformity, sbc
from metapool.validation.sbc import _ranks, chi2_uniformity_test, ecdf_uniformity_test

TAU_PRIOR, BETA_PRIOR = HalfNormalTau(10.0), NormalBeta(0.0, 20.0)
L = 99


@pytest.fixture(scope="module")
def eight():
    return datasets.load("eight_schools")


# ----------------------------------------------------------------------------- uniformity tests
def test_uniform_ranks_pass_and_skewed_ranks_fail():
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, L + 1, size=(1000, 4))
    ranks[:, 2] = np.minimum(L, rng.integers(0, L + 1, size=1000) + 8)   # shifted: posterior too low
    ranks[:, 3] = np.clip(np.round(L / 2 + 15 * rng.standard_normal(1000)), 0, L)  # posterior too wide
    table = rank_uniformity(ranks, L, ["a", "b", "shifted", "narrow"])
    assert list(table.index) == ["a", "b", "shifted", "narrow"]
    assert table.loc["a", "passed"] and table.loc["b", "passed"]
    assert not table.loc["shifted", "passed"] and not table.loc["narrow", "passed"]
    assert table.loc["shifted", "mean_rank"] > 0.5
    np.testing.assert_allclose(table["p_min"], 1 - 0.99 ** (1 / 4), rtol=1e-12)
    chi = rank_uniformity(ranks, L, ["a", "b", "shifted", "narrow"], test="chi2")
    assert list(chi["passed"]) == [True, True, False, False]


def test_chi2_test_matches_scipy():
    ranks = np.random.default_rng(1).integers(0, L + 1, size=400)
    chi2, p, df = chi2_uniformity_test(ranks, L)
    obs = np.bincount(ranks, minlength=L + 1).reshape(20, 5).sum(axis=1)   # 20 bins of 5 ranks
    ref = stats.chisquare(obs)
    assert df == 19
    assert chi2 == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)


def test_ecdf_test_is_calibrated_and_exact_at_the_extremes():
    rng = np.random.default_rng(2)
    ps = np.array([ecdf_uniformity_test(rng.integers(0, 20, size=100), 19, n_sim=4000)[1] for _ in range(300)])
    assert 0.02 < np.mean(ps < 0.1) < 0.18
    # every rank equal to L: the ECDF is 0 until the last point; the smallest possible p-value
    g, p = ecdf_uniformity_test(np.full(100, 19), 19, n_sim=4000)
    assert g == pytest.approx(2 * 0.05**100, rel=1e-9)     # 2 P(Bin(100, 19/20) <= 0) at z = 19/20
    assert p == pytest.approx(1 / 4001)
    with pytest.raises(ValueError):
        ecdf_uniformity_test(np.array([0, 20]), 19)


def test_ranks_break_ties_at_random():
    rng = np.random.default_rng(0)
    draws = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    r = np.array([_ranks(np.array([1.5, 1.0]), draws, rng) for _ in range(2000)])
    assert (r[:, 0] == 2).all()
    assert set(np.unique(r[:, 1])) == {0, 1, 2, 3, 4}
    assert np.bincount(r[:, 1]).min() > 300


# ----------------------------------------------------------------------------- sbc()
def test_sbc_checks_its_inputs(eight):
    with pytest.raises(ValueError, match="proper"):
        sbc("exact", eight, FlatTau(), BETA_PRIOR, n_reps=2)
    with pytest.raises(ValueError, match="engine"):
        sbc("mcmc", eight, TAU_PRIOR, BETA_PRIOR, n_reps=2)
    with pytest.raises(ValueError, match="draws"):
        sbc("nuts", eight, TAU_PRIOR, BETA_PRIOR, n_reps=2, nuts_options={"draws": 10})


def test_sbc_results_do_not_depend_on_the_number_of_processes(eight):
    one = sbc("exact", eight, TAU_PRIOR, BETA_PRIOR, n_reps=12, n_draws=19, seed=5, n_jobs=1)
    two = sbc("exact", eight, TAU_PRIOR, BETA_PRIOR, n_reps=12, n_draws=19, seed=5, n_jobs=2)
    np.testing.assert_array_equal(one.ranks, two.ranks)
    np.testing.assert_array_equal(one.replications["tau"], two.replications["tau"])
    assert two.n_jobs == 2 and one.n_jobs == 1
    other = sbc("exact", eight, TAU_PRIOR, BETA_PRIOR, n_reps=12, n_draws=19, seed=6, n_jobs=1)
    assert not np.array_equal(one.ranks, other.ranks)


def test_exact_engine_passes_1000_replications(eight):
    """The acceptance check of issue 4: 1,000 replications, eight schools' se, halfnormal(10), normal(0, 20)."""
    res = sbc("exact", eight, TAU_PRIOR, BETA_PRIOR, n_reps=1000, n_draws=L, seed=0, n_jobs=2)
    assert isinstance(res, SBCResult)
    assert res.passed, str(res)
    assert res.ranks.shape == (1000, 10) and res.ranks.min() >= 0 and res.ranks.max() <= L
    assert res.parameters == ("tau", "mu", *(f"theta[{s}]" for s in eight.labels))
    assert list(res.table.index) == list(res.parameters)
    assert (res.table["p"] >= res.table["p_min"]).all()
    assert np.abs(res.table["mean_rank"] - 0.5).max() < 0.03
    # the simulated tau are draws from the prior: half-normal(10) has mean 10 sqrt(2 / pi)
    assert res.replications["tau"].mean() == pytest.approx(10 * np.sqrt(2 / np.pi), rel=0.06)
    assert res.failures == () and "PASSED" in str(res)


def test_negative_control_wrong_tau_prior_is_flagged(eight):
    """Data from tau ~ halfnormal(10), fitted with halfnormal(1): tau's posterior sits below the truth."""
    res = sbc("exact", eight, TAU_PRIOR, BETA_PRIOR, n_reps=200, n_draws=L, seed=1, n_jobs=2,
              fit_tau_prior=HalfNormalTau(1.0))
    assert not res.passed
    (f,) = [f for f in res.failures if f.parameter == "tau"]
    assert f.check == "ranks" and f.value == res.table.loc["tau", "p"] < f.limit == res.table.loc["tau", "p_min"]
    assert f.get("mean_rank") == res.table.loc["tau", "mean_rank"] and f.get("test") == res.test
    assert res.table.loc["tau", "mean_rank"] > 0.8
    assert res.table.loc["tau", "ecdf_p"] < res.table.loc["tau", "p_min"]
    text = str(res)
    assert "FAILED" in text and "tau: ranks not uniform" in text and "halfnormal:1" in text


def test_nuts_engine_smoke(eight):
    """One NUTS replication (compiling the model is most of its ~9 s): the path works, ranks in range."""
    res = sbc("nuts", eight, TAU_PRIOR, BETA_PRIOR, n_reps=1, n_draws=19, thin=2, seed=3, n_jobs=1,
              nuts_options={"chains": 2, "tune": 200})
    assert res.ranks.shape == (1, 10) and res.ranks.max() <= 19
    assert {"divergences", "r_hat_max", "seconds"} <= set(res.replications.columns)
    assert res.settings["nuts_options"]["parameterization"] == "noncentered"


def test_sbc_on_a_dask_cluster_gives_the_local_ranks(eight, dask_cluster):
    """Issue 12: the same seed gives identical ranks on local processes and on 2 Dask workers,
    whether the cluster is given as a client, the cluster object or its address."""
    from distributed import Client

    local = sbc("exact", eight, TAU_PRIOR, BETA_PRIOR, n_reps=40, n_draws=19, seed=11, n_jobs=1)
    with Client(dask_cluster, set_as_default=False) as client:
        on_dask = sbc("exact", eight, TAU_PRIOR, BETA_PRIOR, n_reps=40, n_draws=19, seed=11, scheduler=client)
        assert not client.status == "closed"           # a client given is left open
    np.testing.assert_array_equal(on_dask.ranks, local.ranks)
    np.testing.assert_array_equal(on_dask.replications["tau"], local.replications["tau"])
    pd.testing.assert_frame_equal(on_dask.table, local.table)
    assert on_dask.n_jobs == 2 and on_dask.settings["scheduler"] == dask_cluster.scheduler_address
    assert "Dask worker(s)" in str(on_dask)
    by_address = sbc("exact", eight, TAU_PRIOR, BETA_PRIOR, n_reps=8, n_draws=19, seed=11,
                     scheduler=dask_cluster.scheduler_address)
    # replication i's seed is the i-th SeedSequence child whatever n_reps is
    np.testing.assert_array_equal(by_address.ranks, local.ranks[:8])


def test_sbc_names_an_unreachable_scheduler(eight, monkeypatch):
    from metapool import parallel
    from metapool.errors import InputError

    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", "1s")

    with pytest.raises(InputError, match="tcp://127.0.0.1:9"):
        sbc("exact", eight, TAU_PRIOR, BETA_PRIOR, n_reps=2, scheduler="tcp://127.0.0.1:9")
