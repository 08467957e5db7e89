"""The cold ``metapool fit`` without pandas prints exactly what the pandas path prints.

The fast path has two parts: the exact summary as a :class:`~metapool.summaries.PlainTable`
printed without pandas, and plain CSV files (and the bundled ``seed_countries`` and
``eight_schools``) read by :func:`metapool.io.read_csv_plain`. ``slow`` turns both off (the
summary as a DataFrame, every file read by pandas), so each command runs both ways here and
must give the same exit status, stdout and stderr, byte for byte (the footer's fit time aside).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from metapool import cli, datasets, io
from metapool.analytic.posterior import ExactPosterior

SEED_CSV = str(Path(datasets.__path__[0]) / "seed_countries_simulated.csv")
README_CSV = ["fit", SEED_CSV, "--effect", "X_beta", "--se", "X_stderr", "--label", "country"]
_SECONDS = re.compile(r" in \d+\.\d\d s\. ")


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, _SECONDS.sub(" in T s. ", out), err


def _both_ways(capsys, monkeypatch, argv: list[str]) -> tuple[int, str, str]:
    """Run ``argv`` on the fast path, then with pandas reading and printing; they must agree."""
    fast = _run(capsys, argv)
    with monkeypatch.context() as m:
        m.setattr(io, "read_csv_plain", lambda *a, **k: None)
        m.setattr(ExactPosterior, "summary_table", lambda self, quantiles=None, prob=0.95: self.summary(quantiles, prob))
        slow = _run(capsys, argv)
    assert fast == slow
    return fast


def _write(tmp_path: Path, text: str, name: str = "studies.csv") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


@pytest.mark.parametrize("argv", [
    ["fit", "seed_countries"],
    README_CSV,
    ["fit", "eight_schools"],
    ["fit", "eight_schools", "--tau-prior", "halfcauchy:5", "--mu-prior", "normal:0,20"],
    ["fit", "bcg", "--covariates", "~ ablat + alloc"],
], ids=["seed_countries", "readme csv", "eight_schools", "priors", "bcg covariates"])
def test_fit_prints_the_same_both_ways(capsys, monkeypatch, argv):
    code, out, err = _both_ways(capsys, monkeypatch, argv)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[1] == "" and lines[2].split() == ["mean", "sd", "q2.5", "q25", "q50", "q75", "q97.5", "hdi95_low",
                                                   "hdi95_high"]
    assert lines[3].startswith("tau ") and lines[-1].startswith("Exact summaries")


def test_seed_countries_by_name_and_as_csv_print_the_same_table(capsys):
    """The README's CSV command and the dataset name give one table (the name differs in the header)."""
    _, by_name, _ = _run(capsys, ["fit", "seed_countries"])
    _, by_file, _ = _run(capsys, README_CSV)
    assert by_name.splitlines()[1:] == by_file.splitlines()[1:]
    assert len(by_name.splitlines()) == 3 + 2 + 79 + 1 + 79 + 2  # header, tau, mu, theta, theta_new, y_pred, footer


# Files that read (plain or not), with what they print on stderr.
GOOD = {
    "plain": ("y,s,lab\n0.1,0.2,a\n-0.3,0.25,b\n0.05,0.1,c\n0.2,0.3,d\n0.15,0.2,e\n-0.1,0.15,f\n", ""),
    "semicolons": ("y;s;lab\n0.1;0.2;a\n-0.3;0.25;b\n0.05;0.1;c\n0.2;0.3;d\n0.15;0.2;e\n-0.1;0.15;f\n", "separator ';' (detected)"),
    "BOM": ("\ufeffy,s,lab\n0.1,0.2,a\n-0.3,0.25,b\n0.05,0.1,c\n0.2,0.3,d\n0.15,0.2,e\n-0.1,0.15,f\n", "encoding utf-8-sig (detected)"),
    "CRLF": ("y,s,lab\r\n0.1,0.2,a\r\n-0.3,0.25,b\r\n0.05,0.1,c\r\n0.2,0.3,d\r\n0.15,0.2,e\r\n-0.1,0.15,f\r\n", ""),
    "quoted labels": ('y,s,lab\n0.1,0.2,"a"\n-0.3,0.25,"b, c"\n0.05,0.1,c\n0.2,0.3,d\n0.15,0.2,e\n-0.1,0.15,f\n', ""),
    "NA in another column": ("y,s,lab,note\n0.1,0.2,a,NA\n-0.3,0.25,b,\n0.05,0.1,c,x\n0.2,0.3,d,1\n0.15,0.2,e,2\n-0.1,0.15,f,3\n", ""),
    "heavy tails (moment warning)": ("y,s,lab\n0.01,0.02,A\n0.03,0.01,B\n-0.01,0.015,C\n",
                                     "metapool: warning: the posterior mean and sd of tau"),
}


@pytest.mark.parametrize("case", list(GOOD))
def test_files_print_the_same_both_ways(capsys, monkeypatch, tmp_path, case):
    text, stderr = GOOD[case]
    code, out, err = _both_ways(capsys, monkeypatch,
                                ["fit", _write(tmp_path, text), "--effect", "y", "--se", "s", "--label", "lab"])
    assert code == 0 and stderr in err and (err == "") == (stderr == "")
    assert "\ntau " in out


# Bad files: the message must be the pandas path's, word for word.
BAD = {
    "missing value": ("y,s,lab\n1,1,a\n,1,b\n3,1,c\n", "column 'y', study 'b' (row 2): value nan is missing (NaN)"),
    "non-number": ("y,s,lab\n1,1,a\nabc,1,b\n3,1,c\n", "column 'y', study 'b' (row 2): value 'abc' is not a number"),
    "NA marker": ("y,s,lab\n1,1,a\nn/a,1,b\n3,1,c\n", "value 'n/a' is not a number"),
    "negative se": ("y,s,lab\n1,1,a\n2,-1,b\n3,1,c\n", "column 's', study 'b' (row 2): value -1.0 is negative"),
    "zero se": ("y,s,lab\n1,1,a\n2,0,b\n3,1,c\n", "column 's', study 'b' (row 2): value 0.0 is zero"),
    "duplicate label": ("y,s,lab\n1,1,a\n2,1,a\n3,1,c\n", "duplicate study label 'a' in rows 1 and 2"),
    "missing label": ("y,s,lab\n1,1,a\n2,1,\n3,1,c\n", "column 'lab', study in row 2: label value nan is missing"),
    "infinite": ("y,s,lab\n1,1,a\n1e400,1,b\n3,1,c\n", "too large for double precision"),
    "below the smallest double": ("y,s,lab\n1,1,a\n2,1e-400,b\n3,1,c\n", "below the smallest double"),
    "one study": ("y,s,lab\n1,1,a\n", "need at least 2 studies"),
    "unknown column": ("y,se,lab\n1,1,a\n2,1,b\n3,1,c\n", "se column 's' not found"),
    "duplicate column": ("y,s,s\n1,1,1\n2,1,2\n3,1,3\n", "column 's' appears twice in the header"),
    "ragged row": ("y,s,lab\n1,1,a\n2,1,b,extra,more\n3,1,c\n", "not a well-formed CSV table"),
    "semicolons, missing value": ("y;s;lab\n1;1;a\n;1;b\n3;1;c\n", "value nan is missing"),
    "header only": ("y,s,lab\n", "need at least 2 studies"),
    "empty": ("", "the file is empty"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_give_the_pandas_message(capsys, monkeypatch, tmp_path, case):
    text, message = BAD[case]
    code, out, err = _both_ways(capsys, monkeypatch,
                                ["fit", _write(tmp_path, text), "--effect", "y", "--se", "s", "--label", "lab"])
    error = [line for line in err.splitlines() if line.startswith("metapool: error:")]
    assert code == 2 and out == "" and len(error) == 1 and message in error[0], err


def test_latin1_file_gives_the_pandas_message(capsys, monkeypatch, tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("y,s,lab\n1,1,Zürich\n2,1,b\n3,1,c\n".encode("latin-1"))
    code, out, err = _both_ways(capsys, monkeypatch, ["fit", str(path), "--effect", "y", "--se", "s", "--label", "lab"])
    assert code == 2 and "cannot be read as utf-8 text" in err and "--encoding latin-1" in err
