"""MetaData construction from arrays, DataFrames and CSV files; every bad input; covariates."""

from __future__ import annotations

import io
import pickle
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metapool
from metapool import MetaData, read_csv


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def frame() -> pd.DataFrame:
    """Six studies with labels in no sorted order, a numeric and a categorical covariate."""
    return pd.DataFrame({
        "study": ["s10", "s2", "s1", "zeta", "alpha", "s3"],
        "X_beta": [0.10, -0.20, 0.05, 0.30, 0.00, -0.05],
        "X_stderr": [0.10, 0.20, 0.15, 0.12, 0.30, 0.25],
        "ablat": [44.0, 55.0, 42.0, 13.0, 19.0, 33.0],
        "year": [1948, 1949, 1960, 1977, 1973, 1968],
        "alloc": ["random", "random", "alternate", "systematic", "random", "alternate"],
    })


def _bad(df: pd.DataFrame, **kwargs) -> None:
    kwargs.setdefault("effect", "X_beta")
    if "variance" not in kwargs:
        kwargs.setdefault("se", "X_stderr")
    kwargs.setdefault("label", "study")
    MetaData.from_dataframe(df, **kwargs)


# ------------------------------------------------------------------------- from_dataframe
def test_from_dataframe_keeps_order_count_and_values(frame):
    d = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", label="study")
    assert d.J == len(frame) == 6
    assert d.labels == ("s10", "s2", "s1", "zeta", "alpha", "s3")  # not sorted in any way
    np.testing.assert_array_equal(d.y, frame["X_beta"].to_numpy())
    np.testing.assert_array_equal(d.se, frame["X_stderr"].to_numpy())
    assert d.intercept_only and d.coef_names == ("Intercept",)
    assert d.formula is None and d.covariates is None


def test_default_labels_are_one_to_J(frame):
    d = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr")
    assert d.labels == tuple(str(i) for i in range(1, 7))


def test_non_default_index_is_ignored_and_rows_kept(frame):
    shuffled = frame.set_index(pd.Index([7, 3, 9, 1, 0, 5]))
    d = MetaData.from_dataframe(shuffled, effect="X_beta", se="X_stderr", label="study")
    assert d.labels == tuple(frame["study"])


def test_variance_and_se_are_equivalent(frame):
    frame = frame.assign(v=frame["X_stderr"] ** 2)
    a = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", label="study")
    b = MetaData.from_dataframe(frame, effect="X_beta", variance="v", label="study")
    np.testing.assert_allclose(b.se, a.se, rtol=1e-15)
    np.testing.assert_allclose(b.variance, frame["v"].to_numpy(), rtol=1e-15)
    c = MetaData.from_arrays(frame["X_beta"], variance=frame["v"])
    np.testing.assert_allclose(c.se, a.se, rtol=1e-15)


def test_integer_labels_become_strings(frame):
    d = MetaData.from_dataframe(frame.assign(id=[10, 2, 1, 4, 5, 3]), effect="X_beta", se="X_stderr", label="id")
    assert d.labels == ("10", "2", "1", "4", "5", "3")


def test_name_is_kept(frame):
    assert MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", name="toy").name == "toy"


# ------------------------------------------------------------------------------ read_csv
ORIGINAL_STYLE = "X_beta,X_stderr\n0.01,0.02\n-0.005,0.011\n0.03,0.04\n"


def test_read_csv_original_columns(tmp_path):
    path = tmp_path / "byCountry_testscores.csv"
    path.write_text(ORIGINAL_STYLE)
    d = read_csv(path, effect="X_beta", se="X_stderr")
    np.testing.assert_array_equal(d.y, [0.01, -0.005, 0.03])
    np.testing.assert_array_equal(d.se, [0.02, 0.011, 0.04])
    assert d.labels == ("1", "2", "3") and d.name == "byCountry_testscores.csv"
    assert metapool.read_csv is read_csv


def test_read_csv_passes_pandas_kwargs_and_covariates():
    text = "name;eff;v;lat\nA;0,1;0,04;10\nB;0,2;0,09;20\nC;-0,1;0,01;35\n"
    d = read_csv(io.StringIO(text), effect="eff", variance="v", label="name", covariates=["lat"],
                 sep=";", decimal=",")
    np.testing.assert_allclose(d.se, [0.2, 0.3, 0.1])
    assert d.coef_names == ("Intercept", "lat") and d.name is None


def test_read_csv_na_marker_reported_not_dropped(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("country,X_beta,X_stderr\nAA,0.01,0.02\nBB,n/a,0.011\nCC,0.03,0.04\n")
    # the marker is reported verbatim, as the file has it
    with pytest.raises(ValueError, match=r"column 'X_beta', study 'BB' \(row 2\): value 'n/a' is not a number"):
        read_csv(path, effect="X_beta", se="X_stderr", label="country")


def test_read_csv_empty_cell_reported_as_missing(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("country,X_beta,X_stderr\nAA,0.01,0.02\nBB,,0.011\nCC,0.03,0.04\n")
    with pytest.raises(ValueError, match=r"column 'X_beta', study 'BB' \(row 2\): value nan is missing"):
        read_csv(path, effect="X_beta", se="X_stderr", label="country")


def test_read_csv_text_in_number_column(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("country,X_beta,X_stderr\nAA,0.01,0.02\nBB,0.02,0.011\nCC,0.03,0.04?\n")
    with pytest.raises(ValueError, match=r"column 'X_stderr', study 'CC' \(row 3\): value '0.04\?' is not a number"):
        read_csv(path, effect="X_beta", se="X_stderr", label="country")


# ----------------------------------------------------------------------- bad effect / se
@pytest.mark.parametrize("col,value,pattern", [
    ("X_beta", np.nan, r"column 'X_beta', study 's1' \(row 3\): value nan is missing"),
    ("X_beta", np.inf, r"column 'X_beta', study 's1' \(row 3\): value inf is infinite"),
    ("X_beta", -np.inf, r"column 'X_beta', study 's1' \(row 3\): value -inf is infinite"),
    ("X_stderr", np.nan, r"column 'X_stderr', study 's1' \(row 3\): value nan is missing"),
    ("X_stderr", np.inf, r"column 'X_stderr', study 's1' \(row 3\): value inf is infinite"),
    ("X_stderr", 0.0, r"column 'X_stderr', study 's1' \(row 3\): value 0.0 is zero"),
    ("X_stderr", -0.1, r"column 'X_stderr', study 's1' \(row 3\): value -0.1 is negative"),
])
def test_bad_effect_or_se_names_column_study_value(frame, col, value, pattern):
    frame.loc[2, col] = value
    with pytest.raises(ValueError, match=pattern):
        _bad(frame)


@pytest.mark.parametrize("col,value,rng", [
    ("X_beta", 2e150, r"\|effect\| <= 1e\+150"),
    ("X_beta", -3e151, r"\|effect\| <= 1e\+150"),
    ("X_stderr", 1e-151, r"1e-150 <= se <= 1e\+150"),
    ("X_stderr", 5e150, r"1e-150 <= se <= 1e\+150"),
])
def test_effects_and_se_beyond_double_precision_range(frame, col, value, rng):
    frame.loc[2, col] = value
    with pytest.raises(ValueError, match=rf"column '{col}', study 's1' \(row 3\): value {re.escape(repr(value))} is outside {rng}.*rescale"):
        _bad(frame)


def test_variance_beyond_double_precision_range(frame):
    frame = frame.assign(v=frame["X_stderr"] ** 2)
    frame.loc[4, "v"] = 1e-301
    with pytest.raises(ValueError, match=r"column 'v', study 'alpha' \(row 5\): value 1e-301 is outside 1e-300 <= variance"):
        _bad(frame, variance="v")
    # the ends of the range are accepted
    ok = MetaData.from_arrays([0.0, 1e150, -1e150], [1e-150, 1.0, 1e150])
    assert ok.J == 3


def test_text_in_effect_column(frame):
    frame["X_beta"] = frame["X_beta"].astype(object)
    frame.loc[3, "X_beta"] = "n/a"
    with pytest.raises(ValueError, match=r"column 'X_beta', study 'zeta' \(row 4\): value 'n/a' is not a number"):
        _bad(frame)


def test_pandas_na_in_nullable_column_is_missing(frame):
    frame["X_beta"] = frame["X_beta"].astype("Float64")
    frame.loc[1, "X_beta"] = pd.NA
    with pytest.raises(ValueError, match=r"column 'X_beta', study 's2' \(row 2\): value nan is missing"):
        _bad(frame)


@pytest.mark.parametrize("value,kind", [(-0.01, "negative"), (0.0, "zero")])
def test_bad_variance(frame, value, kind):
    frame = frame.assign(v=frame["X_stderr"] ** 2)
    frame.loc[4, "v"] = value
    with pytest.raises(ValueError, match=rf"column 'v', study 'alpha' \(row 5\): value {value!r} is {kind}"):
        _bad(frame, variance="v")


def test_se_and_variance_exclusive(frame):
    with pytest.raises(ValueError, match="exactly one of 'se'"):
        MetaData.from_dataframe(frame, effect="X_beta")
    with pytest.raises(ValueError, match="exactly one of 'se'"):
        MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", variance="X_stderr")


@pytest.mark.parametrize("kwargs,role,col", [
    ({"effect": "beta"}, "effect", "beta"),
    ({"se": "stderr"}, "se", "stderr"),
    ({"variance": "vi"}, "variance", "vi"),
    ({"label": "country"}, "label", "country"),
    ({"covariates": ["ablat", "latitude"]}, "covariate", "latitude"),
])
def test_unknown_column_lists_available(frame, kwargs, role, col):
    with pytest.raises(ValueError, match=rf"{role} column '{col}' not found; available columns: \['study', 'X_beta'"):
        _bad(frame, **kwargs)


def test_unknown_column_in_formula(frame):
    with pytest.raises(ValueError, match=r"\['latitude'\] not found; available columns: \['study', 'X_beta'"):
        _bad(frame, covariates="~ ablat + latitude")


def test_duplicate_labels(frame):
    frame.loc[4, "study"] = "s2"
    with pytest.raises(ValueError, match=r"column 'study': duplicate study label 's2' in rows 2 and 5"):
        _bad(frame)


def test_missing_label(frame):
    frame.loc[1, "study"] = None
    with pytest.raises(ValueError, match=r"column 'study', study in row 2: label value .* is missing"):
        _bad(frame)


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_studies(frame, n):
    with pytest.raises(ValueError, match=rf"at least 2 studies.*{n} row"):
        _bad(frame.iloc[:n])
    with pytest.raises(ValueError, match=rf"at least 2 studies.*got {n}"):
        MetaData.from_arrays(np.zeros(n), np.ones(n))


# --------------------------------------------------------------------------- from_arrays
def test_from_arrays_length_mismatch():
    with pytest.raises(ValueError, match="length mismatch: effect has 3, se has 2, labels has 3"):
        MetaData.from_arrays([1.0, 2.0, 3.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="length mismatch: .*labels has 2"):
        MetaData.from_arrays([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], labels=["a", "b"])
    with pytest.raises(ValueError, match=r"length mismatch: .*X \(rows\) has 2"):
        MetaData.from_arrays([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], X=np.ones((2, 1)))


def test_from_arrays_messages_name_study_and_value():
    with pytest.raises(ValueError, match=r"column 'se', study 'b' \(row 2\): value -1.0 is negative"):
        MetaData.from_arrays([1.0, 2.0], [1.0, -1.0], labels=["a", "b"])
    with pytest.raises(ValueError, match=r"column 'effect', study 'b' \(row 2\): value 'x' is not a number"):
        MetaData.from_arrays([1.0, "x"], [1.0, 1.0], labels=["a", "b"])
    with pytest.raises(ValueError, match=r"column 'variance', study '1' \(row 1\): value -2.0 is negative"):
        MetaData.from_arrays([1.0, 2.0], variance=[-2.0, 1.0])
    with pytest.raises(ValueError, match=r"duplicate study label 'a' in rows 1 and 2"):
        MetaData.from_arrays([1.0, 2.0], [1.0, 1.0], labels=["a", "a"])


def test_arrays_are_read_only():
    d = MetaData.from_arrays([1.0, 2.0, 3.0], [1.0, 1.0, 2.0])
    with pytest.raises(ValueError):
        d.y[0] = 5.0
    with pytest.raises(AttributeError):
        d.y = np.zeros(3)  # type: ignore[misc]


# ---------------------------------------------------------------------------- covariates
def test_formula_numeric(frame):
    d = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", label="study", covariates="~ ablat + year")
    assert d.coef_names == ("Intercept", "ablat", "year")
    np.testing.assert_array_equal(d.X, np.column_stack([np.ones(6), frame["ablat"], frame["year"]]))
    assert d.formula == "~ ablat + year" and not d.intercept_only
    assert set(d.covariates.columns) == {"ablat", "year"} and len(d.covariates) == 6


def test_formula_without_intercept_expands_categories(frame):
    d = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", label="study", covariates="~ 0 + alloc")
    assert d.coef_names == ("alloc[alternate]", "alloc[random]", "alloc[systematic]")
    np.testing.assert_array_equal(d.X.sum(axis=1), np.ones(6))
    np.testing.assert_array_equal(d.X[:, 1], (frame["alloc"] == "random").to_numpy(float))


def test_formula_treatment_coding(frame):
    d = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", label="study", covariates="~ ablat + alloc")
    assert d.coef_names == ("Intercept", "ablat", "alloc[T.random]", "alloc[T.systematic]")


def test_formula_drug_levels():
    df = pd.DataFrame({"y": [0.1, 0.2, 0.3, 0.0], "se": [0.1] * 4, "drug": ["A", "B", "A", "B"]})
    d = MetaData.from_dataframe(df, effect="y", se="se", covariates="~ 0 + drug")
    assert d.coef_names == ("drug[A]", "drug[B]") and not d.intercept_only


def test_list_of_columns_equals_formula(frame):
    a = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", covariates=["ablat", "year"])
    b = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", covariates="~ ablat + year")
    assert a.coef_names == b.coef_names == ("Intercept", "ablat", "year")
    np.testing.assert_array_equal(a.X, b.X)
    assert a.formula == "~ ablat + year"


def test_list_with_awkward_column_name(frame):
    frame = frame.rename(columns={"ablat": "abs lat"})
    d = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", covariates=["abs lat"])
    assert d.coef_names == ("Intercept", "abs lat")
    np.testing.assert_array_equal(d.X[:, 1], frame["abs lat"])


def test_empty_list_is_intercept_only(frame):
    assert MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", covariates=[]).intercept_only


def test_list_rejects_text_column(frame):
    with pytest.raises(ValueError, match=r"covariate column 'alloc' is not numeric \(study 's10' \(row 1\): "
                                         r"value 'random'\).*'~ alloc'"):
        _bad(frame, covariates=["ablat", "alloc"])


@pytest.mark.parametrize("covariates", ["~ ablat + year", ["ablat", "year"], "~ center(ablat)"])
def test_missing_covariate_raises_instead_of_dropping(frame, covariates):
    frame.loc[3, "ablat"] = np.nan
    with pytest.raises(ValueError, match=r"covariate column 'ablat', study 'zeta' \(row 4\): value nan is missing"):
        _bad(frame, covariates=covariates)


def test_missing_categorical_covariate(frame):
    frame.loc[5, "alloc"] = None
    with pytest.raises(ValueError, match=r"covariate column 'alloc', study 's3' \(row 6\): value .* is missing"):
        _bad(frame, covariates="~ alloc")


def test_infinite_covariate(frame):
    frame.loc[0, "ablat"] = np.inf
    with pytest.raises(ValueError, match=r"covariate column 'ablat', study 's10' \(row 1\): value inf is infinite"):
        _bad(frame, covariates="~ ablat")


def test_number_column_with_a_text_value(frame):
    frame["ablat"] = frame["ablat"].astype(object)
    frame.loc[2, "ablat"] = "42?"
    with pytest.raises(ValueError, match=r"covariate column 'ablat', study 's1' \(row 3\): value '42\?' is not a number"):
        _bad(frame, covariates="~ ablat")


@pytest.mark.parametrize("covariates", ["~ ablat + year", ["year", "ablat"]])
def test_constant_covariate(frame, covariates):
    frame["ablat"] = 30.0
    with pytest.raises(ValueError, match=r"covariate column 'ablat' is constant \(value 30.0 in every study\)"):
        _bad(frame, covariates=covariates)


def test_constant_categorical_covariate(frame):
    frame["alloc"] = "random"
    with pytest.raises(ValueError, match=r"covariate column 'alloc' is constant \(value 'random'"):
        _bad(frame, covariates="~ ablat + alloc")


@pytest.mark.parametrize("covariates,col", [
    ("~ ablat + lat2", "lat2"),
    (["ablat", "year", "both"], "both"),
])
def test_collinear_covariates(frame, covariates, col):
    frame = frame.assign(lat2=2 * frame["ablat"] + 1, both=frame["ablat"] - 3 * frame["year"])
    with pytest.raises(ValueError, match=rf"covariate '{col}' is collinear with .*rank"):
        _bad(frame, covariates=covariates)


def test_collinear_categorical_without_intercept(frame):
    frame = frame.assign(one=1.0)
    with pytest.raises(ValueError, match=r"'one' is constant"):
        _bad(frame, covariates="~ 0 + alloc + one")


@pytest.mark.parametrize("formula,pattern", [
    ("X_beta ~ ablat", "must be one-sided"),
    ("~ ablat +", "not a valid formula"),
])
def test_bad_formula(frame, formula, pattern):
    with pytest.raises(ValueError, match=pattern):
        _bad(frame, covariates=formula)


# ---------------------------------------------------------------------------- design_row
def test_design_row_default_is_x_mean(frame):
    # issue 11: with a categorical covariate the default new study is the reference level (a study type
    # that exists), numeric covariates at their mean; it was the mean indicator row [1, 34.33, 0.5, 0.167]
    d = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", covariates="~ ablat + alloc")
    np.testing.assert_array_equal(d.design_row(), [1.0, d.x_mean[1], 0.0, 0.0])
    assert d.default_new_study() == {"ablat": d.x_mean[1], "alloc": "alternate"}
    e = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", covariates="~ ablat")
    np.testing.assert_array_equal(e.design_row(), e.x_mean)
    np.testing.assert_array_equal(MetaData.from_arrays([1.0, 2.0], [1.0, 1.0]).design_row(), [1.0])


def test_design_row_from_raw_values(frame):
    d = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", covariates="~ ablat + alloc")
    np.testing.assert_array_equal(d.design_row({"ablat": 30, "alloc": "systematic"}), [1.0, 30.0, 0.0, 1.0])
    np.testing.assert_array_equal(d.design_row({"ablat": 30, "alloc": "alternate"}), [1.0, 30.0, 0.0, 0.0])
    e = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", covariates="~ ablat")
    np.testing.assert_array_equal(e.design_row({"ablat": 30}), [1.0, 30.0])


def test_design_row_uses_stateful_transform_of_the_studies(frame):
    d = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", covariates="~ center(ablat)")
    np.testing.assert_allclose(d.design_row({"ablat": 40.0}), [1.0, 40.0 - frame["ablat"].mean()])


def test_design_row_after_subset_keeps_encoding(frame):
    d = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", label="study", covariates="~ ablat + alloc")
    sub = d.subset(np.array([0, 1, 2, 3]))
    assert sub.formula == d.formula and len(sub.covariates) == 4
    assert list(sub.covariates["ablat"]) == [44.0, 55.0, 42.0, 13.0]
    np.testing.assert_array_equal(sub.design_row({"ablat": 1, "alloc": "systematic"}), [1, 1, 0, 1])


def test_design_row_errors(frame):
    d = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", covariates="~ ablat + alloc")
    with pytest.raises(ValueError, match=r"missing \['alloc'\]"):
        d.design_row({"ablat": 30})
    with pytest.raises(ValueError, match=r"unknown \['ablt'\]"):
        d.design_row({"ablt": 30, "ablat": 1, "alloc": "random"})
    with pytest.raises(ValueError, match=r"cannot be encoded.*'none'"):
        d.design_row({"ablat": 30, "alloc": "none"})
    with pytest.raises(ValueError, match="must be 4 finite numbers"):
        d.design_row([1.0, 2.0])


def test_design_row_without_formula_uses_coef_names():
    d = MetaData.from_arrays([0.1, 0.2, 0.4], [0.1, 0.1, 0.1], X=np.column_stack([np.ones(3), [1.0, 2.0, 4.0]]),
                             coef_names=["Intercept", "dose"])
    np.testing.assert_array_equal(d.design_row({"dose": 3.0}), [1.0, 3.0])
    np.testing.assert_array_equal(d.design_row([1.0, 5.0]), [1.0, 5.0])
    with pytest.raises(ValueError, match=r"missing \['dose'\]"):
        d.design_row({})


def test_with_effects_and_pickle_keep_covariates(frame):
    d = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", covariates="~ ablat + alloc")
    e = d.with_effects(np.zeros(6))
    assert e.formula == d.formula and e.covariates is d.covariates and e.model_spec is d.model_spec
    f = pickle.loads(pickle.dumps(d))
    np.testing.assert_array_equal(f.design_row({"ablat": 2, "alloc": "random"}), [1, 2, 1, 0])


# -------------------------------------------------------------------- property-based tests
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-6, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def studies(draw):
    n = draw(st.integers(2, 25))
    y = draw(st.lists(finite, min_size=n, max_size=n))
    se = draw(st.lists(positive, min_size=n, max_size=n))
    x = draw(st.lists(st.floats(-100, 100, allow_nan=False), min_size=n, max_size=n, unique=True))
    return np.array(y), np.array(se), np.array(x)


@settings(max_examples=40, deadline=None)
@given(studies())
def test_round_trip_arrays_frame(data):
    y, se, _ = data
    labels = [f"study {i}" for i in range(len(y))][::-1]
    a = MetaData.from_arrays(y, se, labels=labels)
    b = MetaData.from_dataframe(pd.DataFrame({"lab": labels, "y": y, "s": se}), effect="y", se="s", label="lab")
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.se, b.se)
    assert a.labels == b.labels and a.coef_names == b.coef_names
    np.testing.assert_array_equal(a.X, b.X)


@settings(max_examples=40, deadline=None)
@given(studies(), st.randoms(use_true_random=False))
def test_permuting_rows_permutes_everything(data, rnd):
    y, se, x = data
    x = x + np.arange(len(x))  # keep the covariate non-constant and unique
    if np.ptp(x) == 0:
        return
    df = pd.DataFrame({"lab": [f"L{i}" for i in range(len(y))], "y": y, "se": se, "x": x})
    perm = list(range(len(y)))
    rnd.shuffle(perm)
    a = MetaData.from_dataframe(df, effect="y", se="se", label="lab", covariates="~ x")
    b = MetaData.from_dataframe(df.iloc[perm], effect="y", se="se", label="lab", covariates="~ x")
    assert b.labels == tuple(a.labels[i] for i in perm)
    np.testing.assert_array_equal(b.y, a.y[perm])
    np.testing.assert_array_equal(b.se, a.se[perm])
    np.testing.assert_array_equal(b.X, a.X[perm])
    np.testing.assert_array_equal(b.covariates["x"].to_numpy(), a.covariates["x"].to_numpy()[perm])


def test_messages_are_single_line(frame):
    frame.loc[0, "X_beta"] = np.nan
    with pytest.raises(ValueError) as err:
        _bad(frame)
    assert "\n" not in str(err.value) and re.search(r"'s10'", str(err.value))


def test_intercept_only_formula(frame):
    d = MetaData.from_dataframe(frame, effect="X_beta", se="X_stderr", covariates="~ 1")
    assert d.intercept_only and d.formula == "~ 1"
    np.testing.assert_array_equal(d.design_row({}), [1.0])


def test_read_csv_empty_covariate_cell_is_reported(tmp_path):
    path = tmp_path / "bcg.csv"
    path.write_text("trial,y,v,ablat\n1,-0.9,0.33,44\n2,-1.6,0.19,\n3,-1.3,0.42,42\n4,-0.2,0.01,52\n")
    with pytest.raises(ValueError, match=r"covariate column 'ablat', study '2' \(row 2\): value nan is missing"):
        read_csv(path, effect="y", variance="v", label="trial", covariates="~ ablat")
    d = read_csv(path, effect="y", variance="v", label="trial")  # without covariates all 4 rows load
    assert d.J == 4 and d.labels == ("1", "2", "3", "4")


def test_read_csv_marker_in_categorical_covariate_is_missing_not_a_level(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("study,eff,se,alloc\nA,0.1,0.1,random\nB,0.3,0.2,NA\nC,0.2,0.1,random\nD,0.25,0.1,systematic\n")
    with pytest.raises(ValueError, match=r"covariate column 'alloc', study 'B' \(row 2\).*missing"):
        read_csv(path, effect="eff", se="se", label="study", covariates="~ alloc")
