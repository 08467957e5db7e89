"""Predictions over covariates (exact and from draws), the categorical default new study, and
lossless draws.nc output."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import integrate, special, stats

from metapool import analytic, cli, datasets, outputs, workflow
from metapool.errors import InputError
from metapool.priors import UniformTau

ROWS = pd.DataFrame({"ablat": [0.0, 13.0, 33.5, 55.0]}, index=["a", "b", "c", "d"])


@pytest.fixture(scope="module")
def bcg_ablat():
    return datasets.load("bcg", covariates="~ ablat")


@pytest.fixture(scope="module")
def post_ablat(bcg_ablat):
    return analytic.fit(bcg_ablat)


@pytest.fixture(scope="module")
def bcg_alloc():
    return datasets.load("bcg", covariates="~ ablat + alloc")


# ----------------------------------------------------------------------------- exact
def test_predict_at_fixed_tau_is_the_closed_form(bcg_ablat):
    """tau confined to [0, 1e-7]: x'beta | y is the fixed-effect GLS normal, N(x'b, x'(X'S^-1X)^-1 x)."""
    post = analytic.fit(bcg_ablat, tau_prior=UniformTau(1e-7))
    pred = post.predict(ROWS)
    X = np.column_stack([np.ones(4), ROWS["ablat"]])
    W = np.diag(1.0 / bcg_ablat.variance)
    cov = np.linalg.inv(bcg_ablat.X.T @ W @ bcg_ablat.X)
    b = cov @ bcg_ablat.X.T @ W @ bcg_ablat.y
    mean, sd = X @ b, np.sqrt(np.einsum("gp,pq,gq->g", X, cov, X))
    for name in ("x'beta", "theta_new"):      # tau^2 <= 1e-14 adds nothing visible to theta_new
        t = pred.xs(name, level="parameter")
        np.testing.assert_allclose(t["mean"], mean, rtol=1e-9)
        np.testing.assert_allclose(t["sd"], sd, rtol=1e-8)
        for q in (0.025, 0.25, 0.5, 0.75, 0.975):
            np.testing.assert_allclose(t[f"q{100 * q:g}"], mean + sd * special.ndtri(q), rtol=0, atol=1e-8 * sd.max())
        # a normal's shortest interval is the equal-tailed one
        np.testing.assert_allclose(t["hdi95_low"], mean - 1.959963984540054 * sd, atol=1e-7 * sd.max())


def _reference(data, x, extra_tau2: bool):
    """Mean, sd and CDF of x'beta (or theta_new) under flat priors by scipy's adaptive quadrature over tau."""
    y, s2, X = data.y, data.variance, data.X

    def given(t):
        w = 1.0 / (s2 + t * t)
        A = X.T @ (w[:, None] * X)
        cov = np.linalg.inv(A)
        b = cov @ X.T @ (w * y)
        r = y - X @ b
        logp = 0.5 * np.sum(np.log(w)) - 0.5 * np.linalg.slogdet(A)[1] - 0.5 * np.sum(w * r * r)
        return logp, x @ b, x @ cov @ x + (t * t if extra_tau2 else 0.0)

    shift = given(0.3)[0]

    def integral(f):
        return integrate.quad(lambda t: np.exp(given(t)[0] - shift) * f(*given(t)[1:]), 0, np.inf,
                              epsabs=0, epsrel=1e-11, limit=400, points=None)[0]

    norm = integral(lambda m, v: 1.0)
    mean = integral(lambda m, v: m) / norm
    var = integral(lambda m, v: v + (m - mean) ** 2) / norm
    cdf = lambda z: integral(lambda m, v: stats.norm.cdf(z, m, np.sqrt(v))) / norm  # noqa: E731
    return mean, np.sqrt(var), cdf


@pytest.mark.parametrize("ablat", [0.0, 50.0])
def test_predict_matches_adaptive_quadrature(bcg_ablat, post_ablat, ablat):
    pred = post_ablat.predict(pd.DataFrame({"ablat": [ablat]}))
    for name, extra in (("x'beta", False), ("theta_new", True)):
        row = pred.loc[(0, name)]
        mean, sd, cdf = _reference(bcg_ablat, np.array([1.0, ablat]), extra)
        assert row["mean"] == pytest.approx(mean, rel=1e-7, abs=1e-8 * sd)
        assert row["sd"] == pytest.approx(sd, rel=1e-7)
        assert cdf(row["q2.5"]) == pytest.approx(0.025, abs=1e-7)
        assert cdf(row["q97.5"]) == pytest.approx(0.975, abs=1e-7)
        assert cdf(row["hdi95_high"]) - cdf(row["hdi95_low"]) == pytest.approx(0.95, abs=1e-7)


def test_theta_new_row_is_the_summary_theta_new(bcg_ablat, post_ablat):
    pred = post_ablat.predict(ROWS)
    for label, ablat in ROWS["ablat"].items():
        summary = analytic.fit(bcg_ablat, x_new={"ablat": ablat}).summary().loc["theta_new"]
        row = pred.loc[(label, "theta_new")]
        np.testing.assert_allclose(row.to_numpy(), summary.to_numpy(), rtol=0, atol=1e-7 * summary["sd"])
    # the default new study (the mean ablat) is the summary's own theta_new
    mean_row = post_ablat.predict(pd.DataFrame({"ablat": [bcg_ablat.covariates["ablat"].mean()]}))
    np.testing.assert_allclose(mean_row.loc[(0, "theta_new")].to_numpy(),
                               post_ablat.summary().loc["theta_new"].to_numpy(), rtol=0, atol=1e-8)


def test_vectorised_rows_equal_row_by_row_and_arrays(post_ablat, bcg_ablat):
    together = post_ablat.predict(ROWS)
    assert list(together.index.names) == ["row", "parameter"]
    assert list(together.index) == [(r, p) for r in ROWS.index for p in ("x'beta", "theta_new")]
    assert list(together.columns) == ["mean", "sd", "q2.5", "q25", "q50", "q75", "q97.5", "hdi95_low", "hdi95_high"]
    for label in ROWS.index:
        alone = post_ablat.predict(ROWS.loc[[label]])
        np.testing.assert_allclose(alone.to_numpy(), together.loc[[label]].to_numpy(), rtol=1e-10, atol=1e-12)
    X = bcg_ablat.design_rows(ROWS)
    np.testing.assert_array_equal(X, np.column_stack([np.ones(4), ROWS["ablat"]]))
    np.testing.assert_allclose(post_ablat.predict(X).to_numpy(), together.to_numpy(), rtol=0, atol=0)


def test_predict_categorical_levels(bcg_alloc):
    post = analytic.fit(bcg_alloc)
    rows = pd.DataFrame({"ablat": [20, 20], "alloc": ["random", "systematic"]})
    pred = post.predict(rows)
    for i, level in enumerate(["random", "systematic"]):
        ref = analytic.fit(bcg_alloc, x_new={"ablat": 20, "alloc": level}).summary().loc["theta_new"]
        np.testing.assert_allclose(pred.loc[(i, "theta_new")].to_numpy(), ref.to_numpy(), rtol=0,
                                   atol=1e-7 * ref["sd"])
    with pytest.raises(InputError, match=r"column 'alloc', row 1: level 'bogus' was not seen.*alternate, random"):
        post.predict(pd.DataFrame({"ablat": [1.0, 2.0], "alloc": ["random", "bogus"]}))
    with pytest.raises(InputError, match=r"missing \['alloc'\]"):
        post.predict(pd.DataFrame({"ablat": [1.0]}))
    with pytest.raises(InputError, match=r"column 'ablat', row 0: value nan is missing"):
        post.predict(pd.DataFrame({"ablat": [np.nan], "alloc": ["random"]}))
    with pytest.raises(InputError, match=r"column 'ablat', row 0: value 'north' is not a finite number"):
        post.predict(pd.DataFrame({"ablat": ["north"], "alloc": ["random"]}))


# ----------------------------------------------------------------------------- default new study
def test_categorical_default_new_study_is_the_reference_level(bcg_alloc):
    ablat = bcg_alloc.covariates["ablat"].mean()
    assert bcg_alloc.default_new_study() == {"ablat": pytest.approx(ablat), "alloc": "alternate"}
    np.testing.assert_allclose(bcg_alloc.design_row(), [1.0, ablat, 0.0, 0.0])
    spec = workflow.model_spec(bcg_alloc)
    assert spec.new_study_text() == "ablat = 33.46, alloc = alternate (reference level)"
    assert "new study: ablat = 33.46, alloc = alternate (reference level)" in workflow.describe_model(spec)
    # a reference level the formula names
    other = datasets.load("bcg", covariates="~ ablat + C(alloc, contr.treatment('random'))")
    assert other.default_new_study()["alloc"] == "random"
    np.testing.assert_allclose(other.design_row(), [1.0, ablat, 0.0, 0.0])
    # numeric designs keep the mean row
    numeric = datasets.load("bcg", covariates="~ ablat + year")
    assert numeric.default_new_study() is None
    np.testing.assert_array_equal(numeric.design_row(), numeric.x_mean)
    given = workflow.model_spec(bcg_alloc, x_new={"ablat": 10, "alloc": "random"})
    assert given.new_study_text() == "ablat = 10, alloc = random"


# ----------------------------------------------------------------------------- NUTS
def test_nuts_predict_within_mcse_of_exact(nuts_fit, bcg_ablat, post_ablat):
    from metapool import models

    dt = nuts_fit("bcg", "~ ablat")
    exact = post_ablat.predict(ROWS)
    draws = models.predict(dt, bcg_ablat, ROWS, seed=7)
    assert list(draws.index) == list(exact.index)
    z = (draws["mean"] - exact["mean"]) / draws["mcse_mean"]
    assert np.all(np.abs(z) < 4.0), z
    np.testing.assert_allclose(draws["sd"], exact["sd"], rtol=0.1)
    # 95 % quantiles: the exact CDF there is 0.025 / 0.975 within 4 binomial MCSE (from ess_tail)
    X = bcg_ablat.design_rows(ROWS)
    w, bh, bc = post_ablat.weights, post_ablat.cond.beta_hat, post_ablat.cond.beta_cov
    for g, label in enumerate(ROWS.index):
        m, v = bh @ X[g], np.einsum("p,kpq,q->k", X[g], bc, X[g])
        for name, var in (("x'beta", v), ("theta_new", v + post_ablat.tau_nodes**2)):
            row = draws.loc[(label, name)]
            for col, q in (("q2.5", 0.025), ("q97.5", 0.975)):
                F = float(w @ stats.norm.cdf(row[col], m, np.sqrt(var)))
                assert abs(F - q) < 4 * np.sqrt(q * (1 - q) / row["ess_tail"]), (label, name, col, F)
    again = models.predict(dt, bcg_ablat, ROWS, seed=7)
    pd.testing.assert_frame_equal(draws, again)
    # rows from the same seed share their normals: theta_new - x'beta is one tau * e per draw
    assert draws.loc[("a", "x'beta"), "r_hat"] < 1.01


# ----------------------------------------------------------------------------- draws.nc
def _assert_same_tree(a: xr.DataTree, b: xr.DataTree, dtypes: bool = True) -> None:
    assert set(a.children) == set(b.children)
    for node in a.subtree:
        other = b[node.path]
        assert other.to_dataset(inherit=False).identical(node.to_dataset(inherit=False)), node.path
        assert dict(other.attrs) == dict(node.attrs), node.path
        for c in node.coords:
            np.testing.assert_array_equal(other[c].values, node[c].values)
            if dtypes:
                assert other[c].dtype == node[c].dtype, (node.path, c)
        for v in node.data_vars:
            assert other[v].dims == node[v].dims and other[v].dtype == node[v].dtype
            assert dict(other[v].attrs) == dict(node[v].attrs)


def test_exact_draws_round_trip_through_netcdf(tmp_path, bcg_alloc):
    from metapool.prior_groups import add_prior_groups

    spec = workflow.model_spec(bcg_alloc, tau_prior="halfnormal:1", beta_prior="normal:0,10")
    dt = analytic.fit(spec).sample(draws=100, chains=2, seed=3)
    dt = add_prior_groups(dt, spec)
    dt["posterior"].attrs.update(none=None, flag=True, one=[0.8], nested={"a": [1, None]}, empty=[])
    path = tmp_path / "draws.nc"
    outputs.write_draws(dt, path)
    back = outputs.read_draws(path)
    _assert_same_tree(dt, back)
    assert back["posterior"]["study"].dtype == object
    plain = xr.open_datatree(path, engine="h5netcdf")        # what any xarray / ArviZ user reads
    for node in dt.subtree:
        assert plain[node.path].to_dataset(inherit=False).equals(node.to_dataset(inherit=False)), node.path
    assert float(plain["posterior"].attrs["one"]) == 0.8
    plain.close()


def test_nuts_draws_round_trip_through_netcdf(tmp_path, nuts_fit):
    from metapool.run_info import run_info

    dt = nuts_fit("bcg", "~ ablat")
    assert {"posterior", "posterior_predictive", "log_likelihood", "sample_stats", "observed_data",
            "constant_data"} <= set(dt.children)
    path = tmp_path / "draws.nc"
    outputs.write_draws(dt, path)
    back = outputs.read_draws(path)
    _assert_same_tree(dt, back)
    with xr.open_datatree(path, engine="h5netcdf") as plain:
        assert run_info(plain) == run_info(dt)         # lists of numbers stay numbers for plain readers
        for node in dt.subtree:
            np.testing.assert_equal({k: np.asarray(v.values) for k, v in plain[node.path].data_vars.items()},
                                    {k: np.asarray(v.values) for k, v in node.data_vars.items()})


# ----------------------------------------------------------------------------- CLI
def _run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_predict_prints_and_writes(capsys, tmp_path, post_ablat):
    newdata = tmp_path / "new.csv"
    newdata.write_text("label,ablat\nequator,0\nnorth,55\n")
    code, out, err = _run(capsys, "fit", "bcg", "--covariates", "~ ablat", "--predict", str(newdata),
                          "--format", "json")
    assert code == 0, err
    records = json.loads(out)["predictions"]
    exact = post_ablat.predict(pd.DataFrame({"ablat": [0.0, 55.0]}, index=["equator", "north"]))
    assert [(r["row"], r["parameter"]) for r in records] == list(exact.index)
    for r in records:
        np.testing.assert_allclose([r[c] for c in exact.columns], exact.loc[(r["row"], r["parameter"])].to_numpy(),
                                   rtol=1e-12)
    code, out, err = _run(capsys, "fit", "bcg", "--covariates", "~ ablat", "--predict", str(newdata))
    assert code == 0 and "Predictions (x'beta" in out and "equator" in out
    assert "new study: ablat = 33.46 (means of the studies)" in out.splitlines()[0]
    out_dir = tmp_path / "res"
    code, _, err = _run(capsys, "fit", "bcg", "--covariates", "~ ablat", "--predict", str(newdata), "--out",
                        str(out_dir), "--draws", "200", "--seed", "1")
    assert code == 0, err
    table = pd.read_csv(out_dir / "predictions.csv")
    assert list(table.columns[:3]) == ["row", "parameter", "ablat"]
    np.testing.assert_allclose(table["mean"], exact["mean"].to_numpy(), rtol=1e-12)
    assert "predictions.csv" in json.loads((out_dir / "metadata.json").read_text())["files"]


def test_cli_predict_errors(capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("ablat,alloc\n10,bogus\n")
    code, out, err = _run(capsys, "fit", "bcg", "--covariates", "~ ablat + alloc", "--predict", str(bad))
    assert code == 2 and out == ""
    assert "--predict" in err and "'alloc', row 1: level 'bogus' was not seen" in err
    code, out, err = _run(capsys, "fit", "bcg", "--covariates", "~ ablat", "--predict", str(tmp_path / "none.csv"))
    assert code == 2 and "no such file" in err
    typo = tmp_path / "typo.csv"
    typo.write_text("ablt\n10\n")
    code, out, err = _run(capsys, "fit", "bcg", "--covariates", "~ ablat", "--predict", str(typo))
    assert code == 2 and "unknown ['ablt']" in err and "missing ['ablat']" in err


def test_cli_predict_with_nuts_uses_the_draws(capsys, tmp_path, monkeypatch, nuts_fit, bcg_ablat):
    from metapool import models

    dt = nuts_fit("bcg", "~ ablat")
    monkeypatch.setattr(workflow, "nuts_fit", lambda spec, **opts: dt)
    newdata = tmp_path / "new.csv"
    newdata.write_text("ablat\n0\n55\n")
    code, out, err = _run(capsys, "fit", "bcg", "--covariates", "~ ablat", "--engine", "nuts", "--seed", "5",
                          "--predict", str(newdata), "--format", "json")
    assert code == 0, err
    records = json.loads(out)["predictions"]
    expected = models.predict(dt, bcg_ablat, pd.DataFrame({"ablat": [0.0, 55.0]}, index=[1, 2]), seed=5)
    assert [(r["row"], r["parameter"]) for r in records] == list(expected.index)
    for r in records:
        np.testing.assert_allclose([r[c] for c in expected.columns],
                                   expected.loc[(r["row"], r["parameter"])].to_numpy(), rtol=1e-12)


def test_prior_draws_have_their_own_stream(eight):
    """sample(prior=True) leaves the posterior draws as without prior groups, and draws the prior from
    the stream spawned after the draws' segment streams (child n_segments of the seed's sequence),
    not from segment 0's seed: with one segment, child 1."""
    import xarray as xr

    from metapool.prior_groups import add_prior_groups

    post = analytic.fit(eight, tau_prior="halfnormal:10", beta_prior="normal:0,20")
    with_prior = post.sample(draws=200, chains=2, seed=7, prior=True)
    plain = post.sample(draws=200, chains=2, seed=7)
    xr.testing.assert_identical(with_prior.posterior.to_dataset(), plain.posterior.to_dataset())
    own = add_prior_groups(plain, post.spec, seed=np.random.default_rng(np.random.SeedSequence(7).spawn(2)[1]))
    xr.testing.assert_identical(with_prior.prior.to_dataset(), own.prior.to_dataset())
    reused = add_prior_groups(plain, post.spec, seed=np.random.default_rng(np.random.SeedSequence(7).spawn(1)[0]))
    assert not np.array_equal(with_prior.prior["tau"].values, reused.prior["tau"].values)
