"""metapool.batch / ``metapool batch``: one meta-analysis per group, bad groups reported, order kept,
the same table in this process, on local processes and on a Dask cluster."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import metapool
from metapool import analytic, layout
from metapool.batches import BATCH_SUMMARY, BatchResult
from metapool.cli import main
from metapool.errors import InputError

COLUMNS = ["group", "parameter", *layout.SUMMARY_COLUMNS, "engine", "error", "warning"]


def _table(seed: int = 3) -> pd.DataFrame:
    """Groups b, a, c, bad, one (interleaved rows), plus a row without a group."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, J in (("b", 6), ("a", 9), ("c", 5)):
        for j in range(J):
            rows.append({"review": g, "study": f"{g}{j}", "y": rng.normal(0.3, 0.4), "se": rng.uniform(0.1, 0.5)})
    rows.insert(3, {"review": "a", "study": "late", "y": 0.2, "se": 0.3})      # a's rows are not contiguous
    rows += [{"review": "bad", "study": "x1", "y": 0.1, "se": 0.2},
             {"review": "bad", "study": "x2", "y": 0.4, "se": -0.3},
             {"review": "one", "study": "y1", "y": 0.1, "se": 0.2},
             {"review": None, "study": "z1", "y": 0.0, "se": 0.1},
             {"review": "c", "study": "c-last", "y": 0.5, "se": 0.2}]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return _table()


@pytest.fixture(scope="module")
def local(table) -> BatchResult:
    return metapool.batch(table, "review", effect="y", se="se", label="study", tau_prior="halfnormal:1",
                          n_jobs=1, progress=False)


def test_every_group_is_fitted_as_on_its_own_in_order_of_first_appearance(table, local):
    assert local.groups[:5] == ("b", "a", "c", "bad", "one") and pd.isna(local.groups[5])
    assert list(local.table.columns) == COLUMNS
    assert list(dict.fromkeys(local.table["group"].iloc[:-1])) == ["b", "a", "c", "bad", "one"]
    for g in ("b", "a", "c"):
        rows = local.table[local.table["group"] == g].set_index("parameter")
        data = metapool.MetaData.from_dataframe(table[table["review"] == g], "y", se="se", label="study")
        ref = analytic.fit(data, "halfnormal:1").summary()
        assert list(rows.index) == list(ref.index)          # tau, mu, theta[...] in the group's row order
        np.testing.assert_allclose(rows[list(layout.SUMMARY_COLUMNS)].to_numpy(float), ref.to_numpy(), rtol=1e-12)
        assert rows["error"].isna().all() and (rows["engine"] == "exact").all()
    a = local.table[local.table["group"] == "a"]
    assert "theta[late]" in set(a["parameter"]) and len(a) == 2 * 10 + 3     # tau, mu, 10 theta, theta_new, 10 y_pred
    c = local.table[local.table["group"] == "c"]
    assert list(c["parameter"])[-1] == "y_pred[c-last]"


def test_bad_groups_keep_one_row_with_their_error_and_the_others_go_on(local):
    failed = local.failed
    assert local.n_failed == 3 and local.n_groups == 6
    assert list(failed["group"].iloc[:2]) == ["bad", "one"] and pd.isna(failed["group"].iloc[2])
    bad, one, missing = failed["error"]
    assert "column 'se'" in bad and "x2" in bad and "-0.3" in bad
    assert "at least 2 studies" in one
    assert "column 'review'" in missing and "table rows 25," in missing   # 21 + 2 + 1 rows before it
    rows = local.table[local.table["error"].notna()]
    assert rows["parameter"].isna().all() and rows[list(layout.SUMMARY_COLUMNS)].isna().all().all()
    assert "3 failed" in local.describe() and "3 of 6 groups" in local.describe()


def test_the_table_is_the_same_on_local_processes_and_on_a_dask_cluster(table, local, dask_cluster):
    calls = []
    two = metapool.batch(table, "review", effect="y", se="se", label="study", tau_prior="halfnormal:1",
                         n_jobs=2, progress=lambda done, total: calls.append((done, total)))
    pd.testing.assert_frame_equal(two.table, local.table)
    assert two.workers == 2 and calls[-1] == (5, 5)         # the 5 groups with a group value
    on_dask = metapool.batch(table, "review", effect="y", se="se", label="study", tau_prior="halfnormal:1",
                             scheduler=dask_cluster.scheduler_address, progress=False)
    pd.testing.assert_frame_equal(on_dask.table, local.table)
    assert on_dask.scheduler == dask_cluster.scheduler_address and "Dask" in on_dask.describe()


def test_warnings_of_a_group_are_kept_in_its_rows():
    """Three studies under a flat tau prior: the posterior of tau decays like tau^-2, so its mean does
    not exist; that group's rows say so, the proper-prior group's rows carry no warning."""
    df = pd.DataFrame({"g": ["flat3"] * 3 + ["many"] * 8,
                       "y": [0.1, 0.3, -0.1, 0.2, 0.4, 0.1, 0.0, 0.3, 0.5, 0.2, 0.1],
                       "se": [0.2, 0.25, 0.3, 0.2, 0.2, 0.3, 0.1, 0.2, 0.2, 0.3, 0.25]})
    res = metapool.batch(df, "g", effect="y", se="se", n_jobs=1, progress=False)
    assert res.n_failed == 0
    flat3 = res.table[res.table["group"] == "flat3"].set_index("parameter")
    assert flat3["warning"].str.contains("do not exist").all() and np.isnan(flat3.loc["tau", "mean"])
    assert np.isfinite(flat3.loc["tau", "q50"])
    many = res.table[res.table["group"] == "many"].set_index("parameter")
    assert many["warning"].isna().all() and np.isfinite(many.loc["tau", "mean"])


@pytest.mark.parametrize("kwargs, message", [
    ({"by": "nope"}, "by column 'nope' not found"),
    ({"effect": "nope"}, "effect column 'nope' not found"),
    ({"engine": "gibbs"}, "engine must be one of"),
    ({"draws": 10}, "NUTS options"),
    ({"se": None}, "exactly one of 'se'"),
    ({"tau_prior": "halfnormal:-1"}, "halfnormal"),
])
def test_whole_table_errors_are_input_errors(table, kwargs, message):
    args = {"by": "review", "effect": "y", "se": "se", **kwargs}
    by = args.pop("by")
    with pytest.raises(InputError, match=message):
        metapool.batch(table, by, n_jobs=1, progress=False, **args)


def test_cli_batch_end_to_end(tmp_path, table, local, capsys):
    path = tmp_path / "reviews.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "run"
    argv = ["batch", str(path), "--by", "review", "--effect", "y", "--se", "se", "--label", "study",
            "--tau-prior", "halfnormal:1", "--jobs", "1", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "3 of 6 groups" in captured.out
    assert "warning: 3 of 6 groups could not be fitted" in captured.err
    assert sorted(p.name for p in out.iterdir()) == [BATCH_SUMMARY, "metadata.json"]
    written = pd.read_csv(out / BATCH_SUMMARY, dtype={"group": str})
    assert list(written.columns) == COLUMNS
    expected = local.table
    assert list(written["group"].fillna("<NA>")) == list(expected["group"].fillna("<NA>"))
    np.testing.assert_allclose(written[list(layout.SUMMARY_COLUMNS)].to_numpy(float),
                               expected[list(layout.SUMMARY_COLUMNS)].to_numpy(float), rtol=1e-9)
    assert list(written["error"].notna()) == list(expected["error"].notna())
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["files"] == [BATCH_SUMMARY, "metadata.json"] and meta["groups"] == 6
    assert [f["group"] for f in meta["failed_groups"]] == ["bad", "one", None]
    # a second run into the same folder needs --overwrite; a missing column is exit 2 before any work
    assert main(argv) == 2 and "--overwrite" in capsys.readouterr().err
    assert main(["batch", str(path), "--by", "nope", "--effect", "y", "--se", "se"]) == 2
    assert "by column 'nope' not found" in capsys.readouterr().err


def test_cli_batch_without_out_writes_the_table_to_stdout(tmp_path, table, capsys):
    path = tmp_path / "reviews.csv"
    table[table["review"].isin(["a", "b"])].to_csv(path, index=False)
    assert main(["batch", str(path), "--by", "review", "--effect", "y", "--se", "se", "--jobs", "1"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 1 + (2 * 6 + 3) + (2 * 10 + 3)
    assert "2 of 2 groups" in captured.err and "warning" not in captured.err.replace("warning,", "")


def test_nuts_groups_get_their_own_seed_sequence_child(table, monkeypatch):
    """The NUTS path without compiling: models.sample replaced by the exact engine's draws, seeded by
    the seed the batch passes; group i's seed is SeedSequence(seed).spawn(n)[i]'s first word."""
    from metapool import models

    seeds = []

    def fake_sample(data, tau_prior, beta_prior, *, seed, draws, chains, tune, progressbar, cores):
        seeds.append((data.name, seed, draws, chains, tune))
        return analytic.fit(data, tau_prior, beta_prior).sample(draws=draws, chains=chains, seed=seed)

    monkeypatch.setattr(models, "sample", fake_sample)
    res = metapool.batch(table, "review", effect="y", se="se", label="study", tau_prior="halfnormal:1",
                         engine="nuts", draws=50, chains=2, tune=5, seed=9, n_jobs=1, progress=False)
    children = np.random.SeedSequence(9).spawn(6)
    assert seeds == [(g, int(children[i].generate_state(1)[0]), 50, 2, 5)
                     for i, g in enumerate(["b", "a", "c"])]
    assert list(res.table.columns) == ["group", "parameter", *layout.SUMMARY_COLUMNS, *layout.MCMC_COLUMNS,
                                       "engine", "error", "warning"]
    ok = res.table[res.table["error"].isna()]
    assert (ok["engine"] == "nuts").all() and ok["ess_bulk"].gt(0).all() and res.n_failed == 3


def _bad_groups_table() -> pd.DataFrame:
    """Groups that fail in every way a group's data can (each message is MetaData.from_dataframe's),
    text in a numeric column, variances instead of standard errors, and good groups between."""
    rows = [("g1", "s1", 0.1, 0.04), ("g1", "s2", 0.5, 0.09), ("g1", "s3", -0.2, 0.01),
            ("dup", "s1", 0.1, 0.04), ("dup", "s1", 0.2, 0.04), ("dup", "s3", 0.3, 0.04),
            ("nan", "s1", float("nan"), 0.04), ("nan", "s2", 0.1, 0.04),
            ("zero", "s1", 0.1, 0.0), ("zero", "s2", 0.1, 0.04),
            ("nolabel", None, 0.1, 0.04), ("nolabel", "s2", 0.2, 0.04),
            ("single", "s1", 0.1, 0.04),
            ("g2", "t1", 0.3, 0.02), ("g2", "t2", 0.1, 0.05), ("g2", "t3", 0.6, 0.03), ("g2", "t4", 0.2, 0.08)]
    return pd.DataFrame(rows, columns=["review", "study", "y", "v"])


@pytest.mark.parametrize("label", ["study", None])
def test_groups_built_from_column_slices_equal_groups_built_from_frames(monkeypatch, label):
    """The fast path (no covariates: each group from slices of the task's columns) gives the same
    table, byte for byte, as building every group with MetaData.from_dataframe, errors included."""
    from metapool import batches

    table = _bad_groups_table()
    opts = dict(effect="y", variance="v", label=label, tau_prior="halfnormal:1", n_jobs=1, progress=False)
    fast = metapool.batch(table, "review", **opts)
    monkeypatch.setattr(batches, "_no_covariates", lambda covariates: False)
    slow = metapool.batch(table, "review", **opts)
    assert fast.table.equals(slow.table)
    errors = fast.table.set_index("group")["error"]
    assert errors.loc["single"].startswith("need at least 2 studies")
    assert ("duplicate study label" in errors.loc["dup"]) == (label is not None)
    assert errors.loc["nan"].startswith("column 'y'") and "zero" in errors.loc["zero"]
    assert fast.n_failed == (5 if label is not None else 3)
