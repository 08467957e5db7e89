"""Reading meta-analysis data from CSV files (:func:`read_csv`).

The table's columns become a :class:`~metapool.MetaData` through
:meth:`~metapool.MetaData.from_dataframe`, which checks every value and never drops, clips or
reorders a study (:mod:`metapool.frames` has the column and design rules).
"""

from __future__ import annotations

import codecs
from decimal import Decimal, InvalidOperation
import csv
import gzip
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import numpy as np

from metapool.data import MetaData
from metapool.errors import InputError

if TYPE_CHECKING:  # pandas is imported where it is used: a plain file is read without it
    import pandas as pd

__all__ = ["read_csv", "read_csv_plain", "read_table", "CsvFormat", "sniff"]

#: Separators tried when none is given, in order of preference on a tie.
SEPARATORS: tuple[str, ...] = (",", ";", "\t", "|")


class CsvFormat(NamedTuple):
    """How a CSV file is written: separator, text encoding, compression (None or "gzip")."""

    sep: str
    encoding: str
    compression: str | None
    detected: tuple[str, ...]       # what was detected rather than given, for messages

    def describe(self) -> str:
        """``separator ';' (detected), encoding utf-8``."""
        sep = {"\t": "tab"}.get(self.sep, repr(self.sep))
        parts = [f"separator {sep}" + (" (detected)" if "sep" in self.detected else ""),
                 f"encoding {self.encoding}" + (" (detected)" if "encoding" in self.detected else "")]
        if self.compression:
            parts.append(f"{self.compression} compressed (detected)")
        return ", ".join(parts)


def _head_bytes(path: Path, n: int = 65536) -> tuple[bytes, str | None]:
    """The first bytes of the (decompressed) file and its compression."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read(n), "gzip"
        except (OSError, EOFError) as err:
            raise InputError(f"{path}: looks gzip-compressed but cannot be decompressed ({err})") from None
    with open(path, "rb") as fh:
        return fh.read(n), None


def sniff(path: str | os.PathLike, sep: str | None = None, encoding: str | None = None) -> CsvFormat:
    """Find a CSV file's separator, encoding and compression, naming the file in every error.

    Parameters
    ----------
    path : path
    sep : str, optional
        The separator; default: the one of ``,``, ``;``, tab, ``|`` found most often in the header.
    encoding : str, optional
        The text encoding; default UTF-8 (UTF-16 and UTF-8 with a byte-order mark are recognised).

    Returns
    -------
    CsvFormat

    Raises
    ------
    InputError
        A missing, empty or undecodable file (the message says which encoding was tried and
        suggests ``--encoding``), or an unknown encoding.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a CSV file")
    head, compression = _head_bytes(p)
    detected: list[str] = []
    if encoding is None:
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"
        elif head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        else:
            encoding = "utf-8"
        if encoding != "utf-8":
            detected.append("encoding")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r} for {p}") from None
    if not head.strip():
        raise InputError(f"{p}: the file is empty (expected a header line and one row per study)")
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError as err:
        if len(head) == 65536 and err.start > len(head) - 4:
            text = head[:err.start].decode(encoding)       # a character cut at the end of the sample
        else:
            line = head[:err.start].count(b"\n") + 1
            raise InputError(f"{p}: cannot be read as {encoding} text (byte {head[err.start]:#04x} on line "
                             f"{line}); give its encoding, e.g. --encoding latin-1 (Python: encoding='latin-1')"
                             ) from None
    header = text.splitlines()[0] if text.splitlines() else ""
    if sep is None:
        counts = {c: header.count(c) for c in SEPARATORS}
        sep = max(SEPARATORS, key=lambda c: (counts[c], -SEPARATORS.index(c)))
        if counts[sep] == 0:
            sep = ","
        if sep != ",":
            detected.append("sep")
    return CsvFormat(sep, encoding, compression, tuple(detected))


def _check_header(path: Path, fmt: CsvFormat) -> list[str]:
    """The header's column names as written; a name given twice is an error naming it."""
    opener = gzip.open if fmt.compression == "gzip" else open
    with opener(path, "rt", encoding=fmt.encoding, newline="") as fh:
        names = next(csv.reader(fh, delimiter=fmt.sep), [])
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        key = name.strip()
        if key in seen:
            raise InputError(f"{path}: column {key!r} appears twice in the header (columns {seen[key] + 1} and "
                             f"{i + 1}); rename one of them")
        seen[key] = i
    return names

# ----------------------------------------------------------------------------- public readers
def read_csv(
    path: str | os.PathLike | Any,
    effect: str,
    *,
    label: str | None = None,
    se: str | None = None,
    variance: str | None = None,
    covariates: str | Sequence[str] | None = None,
    name: str | None = None,
    **pandas_kwargs: Any,
) -> MetaData:
    """Read a CSV file with one row per study into a :class:`~metapool.MetaData`.

    Parameters
    ----------
    path : str, path-like or file-like
        The CSV file (gzip-compressed files are recognised by their content).
    effect : str
        Column of effects, e.g. ``"X_beta"`` for the original analysis's file.
    se, variance : str, optional
        Column of standard errors (e.g. ``"X_stderr"``) or of sampling variances; exactly one.
    label : str, optional
        Column of unique study labels; default ``"1".."J"``.
    covariates : str or list of str, optional
        A formula such as ``"~ ablat + year"`` or a list of numeric columns; see
        :meth:`metapool.MetaData.from_dataframe`.
    name : str, optional
        Description of the data; default the file name.
    **pandas_kwargs
        Passed to :func:`pandas.read_csv` (``sep``, ``decimal``, ``encoding``, ...). Without
        ``sep`` the separator is detected (``,``, ``;``, tab or ``|``; see :func:`sniff`), without
        ``encoding`` UTF-8 is assumed (UTF-16 and UTF-8 with a byte-order mark are recognised).

    Returns
    -------
    MetaData
        One study per data row, in the file's order.

    Raises
    ------
    InputError
        Naming the column, the study (label and row number, counting data rows from 1) and the
        value of the first bad entry as written; see :meth:`metapool.MetaData.from_dataframe`.
        File-level problems (missing, empty, undecodable, a column name given twice) name the
        file and what was tried.

    Notes
    -----
    In the effect and standard-error columns only empty cells are read as missing; text such as
    ``NA`` or ``n/a`` is kept, so the error names the value exactly as the file has it (covariate
    columns follow pandas's defaults: a marker there is a missing covariate, reported as such).
    A missing or non-numeric value is reported, never dropped.

    Examples
    --------
    >>> data = read_csv("byCountry_testscores.csv", effect="X_beta", se="X_stderr")  # doctest: +SKIP
    """
    if name is None and isinstance(path, (str, os.PathLike)):
        name = Path(path).name
    if (covariates is None and isinstance(path, (str, os.PathLike)) and set(pandas_kwargs) <= {"sep", "encoding"}
            and all(v is None for v in pandas_kwargs.values())):
        plain = read_csv_plain(path, effect, se=se, variance=variance, label=label, name=name)
        if plain is not None:
            return plain
    df, kwargs = _read_table(path, label, pandas_kwargs)
    if not {"keep_default_na", "na_values", "usecols", "dtype"} & set(pandas_kwargs):
        df = _verbatim_numbers(df, path, [c for c in (effect, se, variance) if c in df.columns], kwargs)
    return MetaData.from_dataframe(df, effect=effect, se=se, variance=variance, label=label,
                                   covariates=covariates, name=name)


def read_table(path: str | os.PathLike, *, label: str | None = None, **pandas_kwargs: Any) -> pd.DataFrame:
    """A CSV table of studies as a DataFrame, read as :func:`read_csv` reads it.

    The separator, encoding and compression are found by :func:`sniff` unless given; a column
    name given twice is an error; the ``label`` column is read as text exactly as written. For
    raw study tables that :func:`metapool.effects.to_metadata` turns into effects.

    Returns
    -------
    pandas.DataFrame
    """
    return _read_table(path, label, pandas_kwargs)[0]


def _read_table(path: Any, label: str | None, pandas_kwargs: dict) -> tuple[pd.DataFrame, dict]:
    kwargs = dict(pandas_kwargs)
    if isinstance(path, (str, os.PathLike)):
        fmt = sniff(path, kwargs.pop("sep", None), kwargs.pop("encoding", None))
        _check_header(Path(path), fmt)
        kwargs.update(sep=fmt.sep, encoding=fmt.encoding, compression=fmt.compression)
    if label is not None:
        # Labels are text exactly as written: 001 stays 001, 4.5 stays 4.5.
        kwargs.setdefault("dtype", {label: str})
    df = _read(path, kwargs)
    if kwargs.get("index_col") is not None:
        df = df.reset_index()      # the index column stays a column the caller can name
    return df, kwargs


def _read(path: Any, kwargs: dict) -> pd.DataFrame:
    """pandas.read_csv with its file-level failures as input errors naming the file."""
    import pandas as pd

    where = path if isinstance(path, (str, os.PathLike)) else "the CSV input"
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(f"{where}: the file is empty (expected a header line and one row per study)") from None
    except pd.errors.ParserError as err:
        raise InputError(f"{where}: not a well-formed CSV table ({' '.join(str(err).split())})") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{where}: cannot be read as {kwargs.get('encoding', 'utf-8')} text ({err.reason} at byte "
                         f"{err.start}); give its encoding, e.g. --encoding latin-1") from None


def _as_written(parsed: Any, text: Any, point: str) -> Any:
    """pandas's number where it is an ordinary number, else the text as written (NaN if empty)."""
    try:
        value = float(parsed)
    except (TypeError, ValueError):
        value = None
    if not isinstance(text, str):
        return parsed if value is None else value
    if value is not None and np.isfinite(value) and value != 0.0:
        return value
    clean = text.strip().replace(point, ".") if point != "." else text.strip()
    try:
        if value == 0.0 and Decimal(clean) == 0:
            return value
    except InvalidOperation:
        pass
    return clean if value is not None else text


def _verbatim_numbers(df: pd.DataFrame, path, columns: list[str], pandas_kwargs: dict) -> pd.DataFrame:
    """Re-read the effect and standard-error columns keeping markers such as ``n/a`` as text.

    pandas turns ``NA``, ``n/a``, ``null``... into NaN; for these columns the error should quote
    the value as the file has it. Empty cells stay missing. Covariate columns keep pandas's
    default, so a marker there is a missing covariate (reported), not a new category.
    """
    if not columns:
        return df
    import pandas as pd

    if hasattr(path, "seek"):
        path.seek(0)
    elif not isinstance(path, (str, os.PathLike)):
        return df  # a stream that cannot be read twice: keep pandas's reading
    # As text, so that an error quotes a value as written ('1e400', not inf; '1e-400', not 0.0).
    raw = pd.read_csv(path, usecols=columns, keep_default_na=False, na_values=[""], **{**pandas_kwargs, "dtype": str, "index_col": None})
    if len(raw) != len(df):
        return df
    df = df.copy()
    point = pandas_kwargs.get("decimal", ".")
    for c in columns:
        df[c] = [_as_written(p, t, point) for p, t in zip(df[c].to_numpy(dtype=object), raw[c].to_numpy(dtype=object))]
    return df


# ----------------------------------------------------------------------------- plain files without pandas
#: pandas's default missing-value markers (``pandas._libs.parsers.STR_NA_VALUES``; a test keeps
#: them equal): :func:`read_csv` reads a label written as one of them as missing.
PANDAS_NA_MARKERS: frozenset[str] = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
    "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
#: Rows a plain file may have: pandas reads longer files in chunks, whose type inference may warn.
PLAIN_MAX_ROWS = 100_000
_PLAIN_MAX_BYTES = 64 * 2**20
# A number pandas's parser and Python's float() turn into the same double: at most 15 digits in
# all, leading zeros included (pandas's parser keeps 17, counting them; 15 make an integer below
# 2^53, exact in double precision) times a power of ten 10^k with |k| <= 22 (exact too), so the
# one multiplication or division each makes is correctly rounded.
_PLAIN_NUMBER = re.compile(r"(-?)(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d{1,3}))?")
_PLAIN_MAX_DIGITS = 15
_PLAIN_MAX_POWER = 22
# Characters that make a file less than plain: quotes (pandas's quoting), carriage returns, NUL,
# and the line breaks of str.splitlines other than "\n" (sniff splits the header line with it).
_NOT_PLAIN = re.compile('["\r\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]')


def _plain_number(text: str) -> float | None:
    """The number a cell writes, when pandas reads it as exactly this double; else None."""
    m = _PLAIN_NUMBER.fullmatch(text)
    if m is None:
        return None
    sign, whole, frac, exp = m.groups()
    frac = frac or ""
    power = int(exp or 0) - len(frac)
    if len(whole) + len(frac) > _PLAIN_MAX_DIGITS or abs(power) > _PLAIN_MAX_POWER:
        return None
    value = float(text)
    if sign and value == 0.0:
        return None  # -0: pandas reads an integer column's -0 as +0
    return value


def read_csv_plain(path: str | os.PathLike, effect: str, *, se: str | None = None, variance: str | None = None,
                   label: str | None = None, name: str | None = None) -> MetaData | None:
    """Read a plain CSV file of studies without pandas, as :func:`read_csv` would; None if not plain.

    :func:`read_csv` tries this first (no covariates, separator and encoding not given) and
    reads the file with pandas whenever it returns None, so every message about a file stays
    :func:`read_csv`'s. A file is plain when nothing about it needs a rule of pandas's or of
    the checks: UTF-8 text without a byte-order mark, not compressed, comma-separated (no
    ``;``, tab or ``|`` in the header, which :func:`sniff` would choose), no quotes, carriage
    returns or blank lines, unique header names without surrounding spaces, every row with
    the header's number of fields, at most :data:`PLAIN_MAX_ROWS` rows; the effect and
    standard-error (or variance) columns plain decimal numbers that pandas reads as the same
    double (at most 15 digits in all, powers of ten up to 22, no ``-0``); labels without surrounding
    spaces and none a pandas missing-value marker (:data:`PANDAS_NA_MARKERS`); and the data
    passing :class:`~metapool.MetaData`'s checks (any failure: None, so that :func:`read_csv`
    reports it).

    Parameters
    ----------
    path : str or path-like
    effect, se, variance, label, name
        As :func:`read_csv` (exactly one of ``se`` and ``variance``); ``name`` is used as given.

    Returns
    -------
    MetaData or None
        Equal, field for field, to what :func:`read_csv` returns for the file; None when the
        file is not plain.
    """
    if (se is None) == (variance is None):
        return None
    try:
        if Path(path).stat().st_size > _PLAIN_MAX_BYTES:
            return None
        raw = Path(path).read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if raw.startswith((b"\x1f\x8b", codecs.BOM_UTF8)) or _NOT_PLAIN.search(text):
        return None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if len(lines) < 3 or len(lines) > PLAIN_MAX_ROWS + 1 or "" in lines:
        return None
    header = lines[0].split(",")
    if any(c in lines[0] for c in SEPARATORS[1:]) or len(set(header)) != len(header) \
            or any(h != h.strip() or h in PANDAS_NA_MARKERS for h in header):
        return None
    numeric = [c for c in (effect, se, variance) if c is not None]
    if any(c not in header for c in numeric) or (label is not None and (label not in header or label in numeric)):
        return None
    rows = [line.split(",") for line in lines[1:]]
    if any(len(r) != len(header) for r in rows):
        return None
    values: dict[str, np.ndarray] = {}
    for col in numeric:
        k = header.index(col)
        cells = [_plain_number(r[k]) for r in rows]
        if None in cells:
            return None
        values[col] = np.array(cells, dtype=float)
    labels = None
    if label is not None:
        k = header.index(label)
        labels = [r[k] for r in rows]
        if any(t != t.strip() or t in PANDAS_NA_MARKERS for t in labels):
            return None
    try:
        return MetaData._from_columns(len(rows), values[effect], None if se is None else values[se],
                                      None if variance is None else values[variance], labels, effect, se,
                                      variance, label, name)
    except InputError:
        return None
