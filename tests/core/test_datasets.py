"""Bundled data sets: values against their sources, the listing, and the simulated seed file."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import metapool
from metapool import datasets
from metapool.datasets import make_seed_countries

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NAMES = ["eight_schools", "bcg", "seed_countries", "normand1999", "hine1989", "molloy2014"]


# ---------------------------------------------------------------------------- listing
def test_listing():
    table = datasets.list_datasets()
    assert list(table.columns) == ["name", "J", "description", "source"]
    assert list(table["name"]) == NAMES
    for name, J in zip(table["name"], table["J"]):
        assert datasets.load(name).J == J
    seed_row = table.set_index("name").loc["seed_countries"]
    assert "SIMULATED" in seed_row["description"] and "simulated" in seed_row["source"]
    assert metapool.datasets is datasets


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match=r"unknown dataset 'schools'; available: \['bcg', 'eight_schools', 'hine1989', 'molloy2014', 'normand1999', 'seed_countries'\]"):
        datasets.load("schools")
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load_frame("schools")


@pytest.mark.parametrize("loader,source", [
    (datasets.eight_schools, "Rubin"), (datasets.eight_schools, "Table 5.2"), (datasets.eight_schools, "bayesmeta"),
    (datasets.bcg, "Colditz"), (datasets.bcg, "dat.bcg"),
    (datasets.seed_countries, "SIMULATED"), (datasets.seed_countries, "make_seed_countries"),
    (datasets.normand1999, "Normand"), (datasets.normand1999, "dat.normand1999"),
    (datasets.hine1989, "Hine"), (datasets.hine1989, "dat.hine1989"),
    (datasets.molloy2014, "Molloy"), (datasets.molloy2014, "dat.molloy2014"),
])
def test_docstrings_name_the_source(loader, source):
    assert source in loader.__doc__


# ------------------------------------------------------------------------ eight schools
def test_eight_schools_rounded():
    d = datasets.load("eight_schools")
    assert d.labels == tuple("ABCDEFGH") and d.intercept_only
    np.testing.assert_array_equal(d.y, [28, 8, -3, 7, -1, 1, 18, 12])
    np.testing.assert_array_equal(d.se, [15, 10, 16, 11, 9, 11, 10, 18])


def test_eight_schools_unrounded():
    d = datasets.load("eight_schools", unrounded=True)
    np.testing.assert_array_equal(d.y, [28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16])
    np.testing.assert_array_equal(d.se, [14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6])
    assert d.labels == tuple("ABCDEFGH")
    assert list(datasets.load_frame("eight_schools")["n_students"]) == [50, 79, 39, 91, 99, 72, 94, 35]


# ---------------------------------------------------------------------------------- bcg
def test_bcg_trial_one_by_hand():
    d = datasets.load("bcg")
    y1 = math.log((4 / 123) / (11 / 139))
    v1 = 1 / 4 - 1 / 123 + 1 / 11 - 1 / 139
    assert y1 == pytest.approx(-0.8893113339, abs=1e-9) and v1 == pytest.approx(0.3255847, abs=1e-7)
    assert d.y[0] == pytest.approx(y1, rel=1e-14)
    assert d.variance[0] == pytest.approx(v1, rel=1e-14)
    assert d.labels[0] == "Aronson 1948" and d.J == 13
    assert len(set(d.labels)) == 13


def test_bcg_all_trials_match_formula():
    raw = datasets.load_frame("bcg")
    d = datasets.load("bcg")
    for j, row in enumerate(raw.itertuples()):
        n_t, n_c = row.tpos + row.tneg, row.cpos + row.cneg
        assert d.y[j] == pytest.approx(math.log((row.tpos / n_t) / (row.cpos / n_c)), rel=1e-13)
        assert d.variance[j] == pytest.approx(1 / row.tpos - 1 / n_t + 1 / row.cpos - 1 / n_c, rel=1e-13)


def test_bcg_covariates():
    d = datasets.load("bcg", covariates="~ ablat")
    assert d.coef_names == ("Intercept", "ablat") and d.X.shape == (13, 2)
    np.testing.assert_array_equal(d.X[:, 1], datasets.load_frame("bcg")["ablat"])
    np.testing.assert_array_equal(d.design_row({"ablat": 30}), [1.0, 30.0])
    full = datasets.load("bcg", covariates="~ ablat + year + alloc")
    assert full.coef_names == ("Intercept", "ablat", "year", "alloc[T.random]", "alloc[T.systematic]")


def test_bcg_raw_frame_columns():
    assert list(datasets.load_frame("bcg").columns) == [
        "trial", "author", "year", "tpos", "tneg", "cpos", "cneg", "ablat", "alloc"]


@pytest.mark.parametrize("bundled,shared", [("eight_schools", "eight_schools.csv"), ("bcg", "bcg_vaccine.csv")])
def test_bundled_copies_match_shared_sources(bundled, shared):
    if not (SHARED / shared).exists():
        pytest.skip("shared source data not present on this machine")
    path = resources.files("metapool.datasets").joinpath(datasets._FILES[bundled])
    assert path.read_bytes() == (SHARED / shared).read_bytes()


# ------------------------------------------------------------------- seed_countries (SIMULATED)
def test_seed_generator_reproduces_bundled_csv():
    path = resources.files("metapool.datasets").joinpath("seed_countries_simulated.csv")
    assert make_seed_countries.csv_text() == path.read_text(encoding="utf-8")


def test_seed_countries_shape_and_labels():
    d = datasets.load("seed_countries")
    assert d.J == 79 and d.intercept_only
    assert d.labels[0] == "country_01" and d.labels[-1] == "country_79"
    assert "SIMULATED" in d.name
    assert list(datasets.load_frame("seed_countries").columns) == ["country", "X_beta", "X_stderr"]


def test_seed_countries_summary_matches_original_print():
    d = datasets.load("seed_countries")
    # the original's summary(): Min, 1st Qu, Median, Mean, 3rd Qu, Max
    eff = make_seed_countries.r_summary(d.y)
    se = make_seed_countries.r_summary(d.se)
    np.testing.assert_allclose(eff[[0, -1]], [-0.03993, 0.06387], atol=1e-12)
    np.testing.assert_allclose(se[[0, -1]], [0.00513, 0.08538], atol=1e-12)
    np.testing.assert_allclose(eff[1:5], [0.00243, 0.00875, 0.01107, 0.02189], atol=0.003)
    np.testing.assert_allclose(se[1:5], [0.01164, 0.01855, 0.02294, 0.02630], atol=0.0015)


def test_seed_is_the_documented_choice():
    assert make_seed_countries.search_seed() == make_seed_countries.SEED


def test_seed_file_reads_by_naming_original_columns():
    path = resources.files("metapool.datasets").joinpath("seed_countries_simulated.csv")
    with resources.as_file(path) as p:
        d = metapool.read_csv(p, effect="X_beta", se="X_stderr")
    ref = datasets.load("seed_countries")
    np.testing.assert_array_equal(d.y, ref.y)
    np.testing.assert_array_equal(d.se, ref.se)
    assert d.labels == tuple(str(i) for i in range(1, 80))
