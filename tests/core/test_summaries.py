"""The coda-style table: formulas, ArviZ's mcse, autocorrelated chains, every input type, printing."""

from __future__ import annotations

import math

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from metapool import analytic, datasets
from metapool.summaries import (
    CODA_STAT_COLUMNS,
    coda_table,
    flat_draws,
    format_coda,
    format_number,
    format_table,
)

QCOLS = ["2.5%", "25%", "50%", "75%", "97.5%"]


def _ar1(phi: float, n: int, rng: np.random.Generator) -> np.ndarray:
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0] / math.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


@pytest.fixture(scope="module")
def eight_draws():
    post = analytic.fit(datasets.load("eight_schools"))
    return post.sample(draws=2000, chains=2, seed=11)


def test_columns_and_formulas_1d():
    x = np.random.default_rng(1).gamma(2.0, size=5000)
    t = coda_table(x, "tau")
    assert list(t.columns) == [*CODA_STAT_COLUMNS, *QCOLS]
    assert list(t.index) == ["tau"] and t.index.name == "parameter"
    row = t.loc["tau"]
    assert row["Mean"] == pytest.approx(x.mean(), rel=1e-14)
    assert row["SD"] == pytest.approx(x.std(ddof=1), rel=1e-14)
    assert row["Naive SE"] == pytest.approx(x.std(ddof=1) / math.sqrt(x.size), rel=1e-14)
    # R's quantile(type = 7) is numpy's linear interpolation
    assert row[QCOLS].to_numpy() == pytest.approx(np.quantile(x, [0.025, 0.25, 0.5, 0.75, 0.975]), rel=1e-14)
    assert t.attrs == {"chains": 1, "iterations": 5000}


def test_time_series_se_is_arviz_mcse():
    rng = np.random.default_rng(2)
    chains = np.stack([_ar1(0.5, 3000, rng) for _ in range(3)])
    t = coda_table(chains, "x")
    assert t.loc["x", "Time-series SE"] == pytest.approx(float(az.mcse(chains, method="mean")), rel=1e-12)
    one = chains[0]
    t1 = coda_table(one)
    assert t1.loc["var1", "Time-series SE"] == pytest.approx(float(az.mcse(one[None, :], method="mean")), rel=1e-12)
    # naive SE pools all chains
    assert t.loc["x", "Naive SE"] == pytest.approx(chains.std(ddof=1) / math.sqrt(chains.size), rel=1e-12)
    assert t.attrs == {"chains": 3, "iterations": 3000}


def test_iid_time_series_se_matches_naive():
    x = np.random.default_rng(3).normal(size=10_000)
    t = coda_table(x, "x").loc["x"]
    assert t["Time-series SE"] / t["Naive SE"] == pytest.approx(1.0, abs=0.10)


def test_ar1_time_series_se_inflation():
    phi = 0.9
    x = _ar1(phi, 100_000, np.random.default_rng(4))
    t = coda_table(x, "x").loc["x"]
    expected = math.sqrt((1 + phi) / (1 - phi))  # asymptotic variance inflation of an AR(1) mean
    assert t["Time-series SE"] / t["Naive SE"] == pytest.approx(expected, rel=0.15)


def test_datatree_expands_vectors(eight_draws):
    t = coda_table(eight_draws)
    labels = [f"theta[{s}]" for s in "ABCDEFGH"]
    assert list(t.index) == ["tau", "mu", *labels, "theta_new", *[f"y_pred[{s}]" for s in "ABCDEFGH"]]
    theta = eight_draws["posterior"]["theta"].sel(study="C").values
    assert t.loc["theta[C]", "Mean"] == pytest.approx(theta.mean(), rel=1e-13)
    assert t.loc["theta[C]", "Time-series SE"] == pytest.approx(float(az.mcse(theta, method="mean")), rel=1e-12)
    assert t.attrs == {"chains": 2, "iterations": 2000}


def test_datatree_one_variable_and_flat_name(eight_draws):
    tau = coda_table(eight_draws, "tau")
    assert list(tau.index) == ["tau"]
    theta = coda_table(eight_draws, "theta")
    assert list(theta.index) == [f"theta[{s}]" for s in "ABCDEFGH"]
    pred = coda_table(eight_draws, "y_pred")
    y = eight_draws["posterior_predictive"]["y"].sel(study="A").values
    assert pred.loc["y_pred[A]", "SD"] == pytest.approx(y.std(ddof=1), rel=1e-13)
    one = coda_table(eight_draws, "theta[B]")
    pd.testing.assert_frame_equal(one, theta.loc[["theta[B]"]], check_exact=False, rtol=1e-14)
    with pytest.raises(KeyError, match="no variable 'omega'"):
        coda_table(eight_draws, "omega")


def test_dataarray_dataset_and_3d_inputs(eight_draws):
    da = eight_draws["posterior"]["theta"]
    from_da = coda_table(da)
    assert list(from_da.index) == [f"theta[{s}]" for s in "ABCDEFGH"]
    ds = eight_draws["posterior"].to_dataset()[["tau", "mu"]]
    from_ds = coda_table(ds)
    assert list(from_ds.index) == ["tau", "mu"]
    np.testing.assert_allclose(from_ds.to_numpy(), coda_table(eight_draws).loc[["tau", "mu"]].to_numpy(), rtol=1e-13)
    # a DataArray with only a draw dimension is one chain
    d1 = xr.DataArray(np.arange(10.0), dims=["draw"], name="k")
    assert coda_table(d1).loc["k", "Mean"] == pytest.approx(4.5)
    arr = np.random.default_rng(5).normal(size=(2, 500, 3))
    t3 = coda_table(arr, "b")
    assert list(t3.index) == ["b[1]", "b[2]", "b[3]"]
    assert t3.loc["b[2]", "Mean"] == pytest.approx(arr[:, :, 1].mean())


def test_bad_inputs():
    with pytest.raises(ValueError, match="1-D"):
        coda_table(np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match="two draws"):
        coda_table(np.array([1.0]))


def test_flat_draws_names(eight_draws):
    flat = flat_draws(eight_draws)
    assert list(flat)[:3] == ["tau", "mu", "theta[A]"]
    assert flat["tau"].shape == (2, 2000)


def test_format_number():
    assert format_number(0.0023566) == "0.002357"
    assert format_number(1.567e-05) == "1.567e-05"
    assert format_number(6.575483) == "6.575"
    assert format_number(float("nan")) == "NA"
    assert format_number(0.0) == "0"
    assert format_number(123456.0) == "123456"
    assert format_number(-2.0e-7) == "-2.000e-07"


def test_format_coda_looks_like_coda():
    x = np.random.default_rng(6).normal(0.00235, 0.0018, size=10_000)
    text = format_coda(coda_table(x, "tau"))
    lines = text.splitlines()
    assert lines[:4] == ["Iterations = 1:10000", "Thinning interval = 1", "Number of chains = 1",
                         "Sample size per chain = 10000"]
    assert "1. Empirical mean and standard deviation for each variable," in text
    assert "2. Quantiles for each variable:" in text
    header = next(line for line in lines if "Naive SE" in line)
    assert header.split()[-4:] == ["Naive", "SE", "Time-series", "SE"]
    tau_line = next(line for line in lines if line.startswith("tau") and "e-05" in line)
    assert len(tau_line.split()) == 5  # name, mean, sd, naive SE, time-series SE


def test_format_table_columns():
    t = pd.DataFrame({"mean": [0.002765, float("nan")], "ess_bulk": [1234.4, 99.6], "r_hat": [1.0012, 1.0]},
                     index=pd.Index(["tau", "mu"], name="parameter"))
    text = format_table(t)
    assert "parameter" not in text
    assert "0.002765" in text and "NA" in text and "1234" in text and "1.001" in text and "100" in text
