"""Plain tables and plain CSV files: what a cold ``metapool fit`` reads and prints without pandas.

:class:`metapool.summaries.PlainTable` must print through ``format_table`` exactly as its
DataFrame prints, and :func:`metapool.io.read_csv_plain` must either return exactly what
:func:`metapool.read_csv` returns (pandas) or None, so that pandas reports every problem.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metapool import MetaData, analytic, datasets, io, read_csv
from metapool.summaries import PlainTable, format_table


# ----------------------------------------------------------------------------- printing
def _plain(frame: pd.DataFrame) -> PlainTable:
    return PlainTable(tuple(frame.index), tuple(frame.columns), frame.to_numpy(dtype=float), frame.index.name)


def _assert_prints_as_pandas(table: PlainTable) -> str:
    text = format_table(table)
    assert text == format_table(table.to_frame())
    return text


@pytest.fixture(scope="module")
def real_summaries() -> dict[str, PlainTable]:
    three = MetaData.from_arrays([0.01, 0.03, -0.01], [0.02, 0.01, 0.015], labels=["A", "B", "C"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", analytic.MomentWarning)
        improper_moments = analytic.fit(three).summary_table()
    return {
        "seed_countries": analytic.fit(datasets.load("seed_countries")).summary_table(),
        "eight_schools": analytic.fit(datasets.load("eight_schools")).summary_table(),
        "bcg ~ ablat + alloc": analytic.fit(datasets.load("bcg", covariates="~ ablat + alloc")).summary_table(),
        "NaN moments": improper_moments,
        "other quantiles": analytic.fit(datasets.load("eight_schools")).summary_table((0.1, 0.5, 0.9), prob=0.8),
    }


@pytest.mark.parametrize("name", ["seed_countries", "eight_schools", "bcg ~ ablat + alloc", "NaN moments",
                                  "other quantiles"])
def test_real_summaries_print_as_their_dataframes(real_summaries, name):
    text = _assert_prints_as_pandas(real_summaries[name])
    assert len(text.splitlines()) == len(real_summaries[name].index) + 1


def test_summary_is_the_plain_table_as_a_dataframe():
    """One owner of the numbers: ``summary()`` is ``summary_table()``'s frame, bit for bit."""
    post = analytic.fit(datasets.load("bcg", covariates="~ ablat"))
    plain, frame = post.summary_table(), post.summary()
    assert frame.index.name == "parameter" and list(frame.index) == list(plain.index)
    assert list(frame.columns) == list(plain.columns) and frame.dtypes.eq(float).all()
    np.testing.assert_array_equal(frame.to_numpy(), plain.values)
    assert plain.values.shape == (len(plain.index), 9) and "beta[ablat]" in plain.index


def test_nan_prints_as_na_and_labels_stay_left_justified():
    table = PlainTable(("tau", "a much longer parameter name[with spaces]", "x"), ("mean", "sd", "ess_bulk", "r_hat"),
                       np.array([[-1.5e-7, math.nan, 1234.4, 1.0042],
                                 [2.0, -0.0, math.nan, math.nan],
                                 [-123456789.0, math.inf, 0.5, -math.inf]]))
    text = _assert_prints_as_pandas(table)
    lines = text.splitlines()
    assert lines[1].startswith("tau ") and " NA " in lines[1] and lines[2].endswith("NA")
    assert "1234" in lines[1] and "1.004" in lines[1] and "-1.235e+08" in lines[3]


def test_long_labels_are_not_cut():
    label = "study " + "x" * 80
    table = PlainTable((label, "b"), ("mean",), np.array([[1.0], [2.0]]))
    assert label in _assert_prints_as_pandas(table)


def test_labels_with_tabs_newlines_and_leading_spaces():
    table = PlainTable(("  two spaces", " one\tspace", "line\nbreak\r"), ("q2.5", "tab\tcol"),
                       np.arange(6.0).reshape(3, 2) - 2.5)
    _assert_prints_as_pandas(table)


def test_empty_table_prints_as_pandas():
    _assert_prints_as_pandas(PlainTable((), ("mean", "sd"), np.empty((0, 2))))


def test_shape_must_match_the_names_and_columns_be_unique():
    with pytest.raises(ValueError, match="shape"):
        PlainTable(("a", "b"), ("mean",), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="unique"):
        PlainTable(("a",), ("mean", "mean"), np.zeros((1, 2)))


_LABEL = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
_COLUMN = st.sampled_from(["mean", "sd", "q2.5", "q97.5", "hdi95_low", "ess_bulk", "ess_tail", "r_hat",
                           "mcse_mean", "Naive SE", " x", "a\tb"])
_VALUE = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.floats(min_value=-1e7, max_value=1e7),
                   st.sampled_from([0.0, -0.0, 1e-3, 9.9995e-4, 999999.5, 1e6, 9999.5, -0.00099999]))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_tables_print_as_their_dataframes(data):
    rows = data.draw(st.lists(_LABEL, min_size=1, max_size=6))
    cols = data.draw(st.lists(_COLUMN, min_size=1, max_size=5, unique=True))
    values = np.array(data.draw(st.lists(st.lists(_VALUE, min_size=len(cols), max_size=len(cols)),
                                         min_size=len(rows), max_size=len(rows))), dtype=float)
    digits = data.draw(st.integers(2, 6))
    table = PlainTable(tuple(rows), tuple(cols), values)
    assert format_table(table, digits) == format_table(table.to_frame(), digits)


def test_plain_table_of_a_frame_round_trips():
    frame = analytic.fit(datasets.load("eight_schools")).summary()
    pd.testing.assert_frame_equal(_plain(frame).to_frame(), frame)


# ----------------------------------------------------------------------------- reading
def _fields(data: MetaData) -> dict:
    out = {}
    for f in dataclasses.fields(data):
        v = getattr(data, f.name)
        out[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
    return out


def _same_as_pandas(monkeypatch, path, **kwargs) -> MetaData:
    """read_csv_plain reads the file (not None) and gives exactly what the pandas path gives."""
    plain = io.read_csv_plain(path, **kwargs, name="f")
    assert plain is not None
    with monkeypatch.context() as m:
        m.setattr(io, "read_csv_plain", lambda *a, **k: None)
        slow = read_csv(path, **kwargs, name="f")
    assert _fields(plain) == _fields(slow)
    for a, b in ((plain.y, slow.y), (plain.se, slow.se)):
        assert a.tobytes() == b.tobytes()  # bit for bit, signs of zero included
    return plain


def test_the_bundled_file_reads_plainly_and_as_pandas_reads_it(monkeypatch):
    path = datasets.__path__[0] + "/seed_countries_simulated.csv"
    data = _same_as_pandas(monkeypatch, path, effect="X_beta", se="X_stderr", label="country")
    assert data.J == 79 and data.labels[0] == "country_01"


@pytest.mark.parametrize("name, kwargs", [("seed_countries", {}), ("eight_schools", {}),
                                          ("eight_schools", {"unrounded": True})])
def test_bundled_datasets_load_plainly_as_from_their_frames(monkeypatch, name, kwargs):
    fast = datasets.load(name, **kwargs)
    monkeypatch.setattr(io, "read_csv_plain", lambda *a, **k: None)
    slow = datasets.load(name, **kwargs)
    assert _fields(fast) == _fields(slow)


GOOD = {
    "integers and decimals": "y,s,lab\n1,0.5,a\n-2,1,b\n3.25,2.,c\n",
    "exponents": "lab,y,s\nA,1e-3,2.5E-1\nB,-4.2e+2,1e1\nC,0.000123,3e0\n",
    "zeros": "y,s,lab,other\n0,1,x1,anything\n0.0,2,x2,n/a\n0.5,3,x3,\n",
    "15 digits": "y,s,lab\n0.12345678901234,1,a\n123456789012345,2,b\n-1.23456789012345e-7,3,c\n",
    "labels like numbers": "y,s,lab\n1,1,001\n2,1,4.5\n3,1,1e3\n",
    "no final newline": "y,s,lab\n1,1,a\n2,1,b\n3,1,c",
    "unicode labels": "y,s,lab\n1,1,Zürich\n2,1,北京\n3,1,São Paulo\n",
}


@pytest.mark.parametrize("case", list(GOOD))
def test_plain_files_read_as_pandas_reads_them(monkeypatch, tmp_path, case):
    path = tmp_path / "good.csv"
    path.write_text(GOOD[case], encoding="utf-8")
    _same_as_pandas(monkeypatch, path, effect="y", se="s", label="lab")


def test_variances_and_default_labels(monkeypatch, tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("y,v\n1,0.25\n2,4\n3,1\n")
    data = _same_as_pandas(monkeypatch, path, effect="y", variance="v")
    assert data.labels == ("1", "2", "3") and data.se.tolist() == [0.5, 2.0, 1.0]


NOT_PLAIN = {
    "missing value": "y,s,lab\n1,1,a\n,1,b\n3,1,c\n",
    "text value": "y,s,lab\n1,1,a\nabc,1,b\n3,1,c\n",
    "NA marker": "y,s,lab\n1,1,a\nNA,1,b\n3,1,c\n",
    "negative se": "y,s,lab\n1,1,a\n2,-1,b\n3,1,c\n",
    "zero se": "y,s,lab\n1,1,a\n2,0,b\n3,1,c\n",
    "duplicate label": "y,s,lab\n1,1,a\n2,1,a\n3,1,c\n",
    "missing label": "y,s,lab\n1,1,a\n2,1,\n3,1,c\n",
    "label NA": "y,s,lab\n1,1,a\n2,1,NA\n3,1,c\n",
    "label with spaces": "y,s,lab\n1,1,a\n2,1, b\n3,1,c\n",
    "semicolons": "y;s;lab\n1;1;a\n2;1;b\n3;1;c\n",
    "tabs": "y\ts\tlab\n1\t1\ta\n2\t1\tb\n3\t1\tc\n",
    "decimal commas": "y;s;lab\n1,5;1;a\n2;1;b\n3;1;c\n",
    "quoted fields": 'y,s,lab\n1,1,"a"\n2,1,b\n3,1,c\n',
    "quoted comma": 'y,s,lab\n1,1,"a,b"\n2,1,b\n3,1,c\n',
    "BOM": "\ufeffy,s,lab\n1,1,a\n2,1,b\n3,1,c\n",
    "CRLF": "y,s,lab\r\n1,1,a\r\n2,1,b\r\n3,1,c\r\n",
    "blank line": "y,s,lab\n1,1,a\n\n2,1,b\n3,1,c\n",
    "ragged row": "y,s,lab\n1,1,a\n2,1,b,extra\n3,1,c\n",
    "short row": "y,s,lab\n1,1,a\n2,1\n3,1,c\n",
    "duplicate column": "y,s,y\n1,1,1\n2,1,2\n3,1,3\n",
    "spaced header": "y , s,lab\n1,1,a\n2,1,b\n3,1,c\n",
    "spaced number": "y,s,lab\n1, 1,a\n2,1,b\n3,1,c\n",
    "plus sign": "y,s,lab\n+1,1,a\n2,1,b\n3,1,c\n",
    "leading point": "y,s,lab\n.5,1,a\n2,1,b\n3,1,c\n",
    "16 digits": "y,s,lab\n0.1234567890123456,1,a\n2,1,b\n3,1,c\n",
    "16 digits with leading zeros": "y,s,lab\n0.000000000000123,1,a\n2,1,b\n3,1,c\n",
    "four-digit exponent": "y,s,lab\n1e0001,1,a\n2,1,b\n3,1,c\n",
    "power beyond 22": "y,s,lab\n1e23,1,a\n2,1,b\n3,1,c\n",
    "tiny": "y,s,lab\n1,1e-400,a\n2,1,b\n3,1,c\n",
    "negative zero": "y,s,lab\n-0,1,a\n2,1,b\n3,1,c\n",
    "inf": "y,s,lab\ninf,1,a\n2,1,b\n3,1,c\n",
    "thousands": "y,s,lab\n1_000,1,a\n2,1,b\n3,1,c\n",
    "one study": "y,s,lab\n1,1,a\n",
    "unknown column": "y,se,lab\n1,1,a\n2,1,b\n3,1,c\n",
    "header only": "y,s,lab\n",
}


@pytest.mark.parametrize("case", list(NOT_PLAIN))
def test_files_in_doubt_are_left_to_pandas(tmp_path, case):
    path = tmp_path / "doubt.csv"
    path.write_text(NOT_PLAIN[case], encoding="utf-8", newline="")
    assert io.read_csv_plain(path, "y", se="s", label="lab") is None


def test_undecodable_gzip_and_missing_files_are_left_to_pandas(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("y,s,lab\n1,1,Zürich\n2,1,b\n3,1,c\n".encode("latin-1"))
    gz = tmp_path / "g.csv.gz"
    import gzip

    gz.write_bytes(gzip.compress(b"y,s,lab\n1,1,a\n2,1,b\n3,1,c\n"))
    for path in (latin, gz, tmp_path / "nope.csv", tmp_path):
        assert io.read_csv_plain(path, "y", se="s", label="lab") is None


def test_label_column_cannot_be_a_number_column(tmp_path):
    path = tmp_path / "same.csv"
    path.write_text("y,s\n1,1\n2,1\n3,1\n")
    assert io.read_csv_plain(path, "y", se="s", label="y") is None
    assert io.read_csv_plain(path, "y") is None and io.read_csv_plain(path, "y", se="s", variance="s") is None


def test_na_markers_are_pandas_markers():
    from pandas._libs.parsers import STR_NA_VALUES

    assert io.PANDAS_NA_MARKERS == frozenset(STR_NA_VALUES)


_DIGITS = st.text("0123456789", min_size=1, max_size=8)


@st.composite
def _plain_numbers(draw) -> str:
    """Decimal text of at most 15 digits times 10^k, |k| <= 22: what the plain reader accepts."""
    whole = draw(st.text("0123456789", min_size=1, max_size=8))
    frac = draw(st.text("0123456789", max_size=15 - len(whole)))
    point = draw(st.booleans())
    text = f"{whole}.{frac}" if point else whole + frac
    if draw(st.booleans()):
        shift = len(frac) if point else 0  # the exponent's room: the power of ten is exp - decimals
        text += draw(st.sampled_from("eE")) + str(draw(st.integers(-22 + shift, 22 + shift)))
    return ("-" if draw(st.booleans()) and float(text) != 0 else "") + text


@settings(max_examples=80, deadline=None)
@given(st.lists(_plain_numbers(), min_size=3, max_size=8))
def test_plain_numbers_are_the_doubles_pandas_reads(tmp_path_factory, cells):
    """Any number the plain reader accepts is the double pandas's parser makes of it."""
    path = tmp_path_factory.mktemp("num") / "n.csv"
    path.write_text("y,s\n" + "".join(f"{c},1\n" for c in cells))
    plain = io.read_csv_plain(path, "y", se="s")
    assert plain is not None
    assert plain.y.tobytes() == pd.read_csv(path)["y"].to_numpy(dtype=float).tobytes()
