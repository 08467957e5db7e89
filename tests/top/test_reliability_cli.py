"""Reliability of the command line and the readers (issue 14): every case a careful user hit, kept.

Each test is one way the package once broke its promise: a traceback on valid or bad input, a
value rewritten, a file lost or mixed. The exact engine's own cases are in
``test_reliability_engine.py``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metapool import MetaData, cli, read_csv
from metapool.errors import InputError

EIGHT = "school,effect,se\nA,28,15\nB,8,10\nC,-3,16\nD,7,11\nE,-1,9\nF,1,11\nG,18,10\nH,12,18\n"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("metapool: error: "), err
    assert "Traceback" not in err
    return lines[0]


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# ----------------------------------------------------------------------------- input read as written
def test_repeated_column_name_is_an_error_naming_it(capsys, tmp_path):
    path = write(tmp_path, "dup.csv", "school,effect,effect,se\nA,1,2,1\nB,2,3,1\nC,3,4,1\n")
    line = one_line_error(*run(capsys, "fit", str(path), "--effect", "effect", "--se", "se"))
    assert "'effect' appears twice" in line and "dup.csv" in line


def test_labels_are_text_exactly_as_written(tmp_path):
    path = write(tmp_path, "lab.csv", "id,y,s\n001,1,1\n002,2,1\n010,3,1\n4.5,2,2\n")
    d = read_csv(path, effect="y", se="s", label="id")
    assert d.labels == ("001", "002", "010", "4.5")


def test_study_label_given_as_written_works_with_study_option(capsys, tmp_path):
    path = write(tmp_path, "lab.csv", "id,y,s\n001,1,1\n002,2,1\n010,3,1\n011,2,2\n")
    code, _, err = run(capsys, "fit", str(path), "--effect", "y", "--se", "s", "--label", "id",
                       "--tau-prior", "halfnormal:1", "--out", str(tmp_path / "o"), "--study", "001", "--draws", "100")
    assert code == 0, err
    assert (tmp_path / "o" / "predictive_001.png").exists()


@pytest.mark.parametrize("text, quoted", [("1e400", "'1e400'"), ("-1e999", "'-1e999'")])
def test_overflowing_values_are_quoted_as_written(capsys, tmp_path, text, quoted):
    path = write(tmp_path, "big.csv", f"y,s\n1,1\n{text},1\n3,1\n")
    line = one_line_error(*run(capsys, "fit", str(path), "--effect", "y", "--se", "s"))
    assert quoted in line and "row 2" in line and "'y'" in line


def test_underflowing_standard_error_is_quoted_as_written(capsys, tmp_path):
    path = write(tmp_path, "tiny.csv", "y,s\n1,1\n2,1e-400\n3,1\n")
    line = one_line_error(*run(capsys, "fit", str(path), "--effect", "y", "--se", "s"))
    assert "'1e-400'" in line and "reads as 0" in line


@pytest.mark.parametrize("name, content, words", [
    ("empty.csv", b"", ["empty.csv", "empty"]),
    ("blank.csv", b"\n\n", ["blank.csv", "empty"]),
    ("latin.csv", "land,y,s\nÖsterreich,1,1\nB,2,1\nC,3,1\n".encode("latin-1"), ["latin.csv", "utf-8", "--encoding"]),
])
def test_file_level_errors_name_the_file_and_what_was_tried(capsys, tmp_path, name, content, words):
    path = write(tmp_path, name, content)
    line = one_line_error(*run(capsys, "fit", str(path), "--effect", "y", "--se", "s"))
    assert all(w in line for w in words), line


def test_latin1_file_reads_with_encoding_option(capsys, tmp_path):
    path = write(tmp_path, "latin.csv", "land,y,s\nÖsterreich,1,1\nB,2,1\nC,3,1\nD,5,2\n".encode("latin-1"))
    code, out, err = run(capsys, "fit", str(path), "--effect", "y", "--se", "s", "--label", "land",
                         "--encoding", "latin-1", "--format", "json")
    assert code == 0, err
    assert "theta[Österreich]" in [r["parameter"] for r in json.loads(out)]


def test_utf16_and_gzip_files_are_recognised(tmp_path):
    ref = read_csv(write(tmp_path, "plain.csv", EIGHT), effect="effect", se="se", label="school")
    for name, data in (("u16.csv", EIGHT.encode("utf-16")), ("packed.csv", gzip.compress(EIGHT.encode())),
                       ("bom.csv", b"\xef\xbb\xbf" + EIGHT.encode())):
        d = read_csv(write(tmp_path, name, data), effect="effect", se="se", label="school")
        np.testing.assert_array_equal(d.y, ref.y)
        assert d.labels == ref.labels


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_separator_is_detected_and_reported(capsys, tmp_path, sep):
    path = write(tmp_path, "sep.csv", EIGHT.replace(",", sep))
    code, out, err = run(capsys, "fit", str(path), "--effect", "effect", "--se", "se", "--label", "school",
                         "--format", "json")
    assert code == 0, err
    assert "(detected)" in err and "separator" in err
    assert json.loads(out)[2]["parameter"] == "theta[A]"


def test_index_col_keeps_the_column_usable(tmp_path):
    path = write(tmp_path, "idx.csv", EIGHT)
    d = read_csv(path, effect="effect", se="se", label="school", index_col=0)
    assert d.labels[0] == "A" and d.J == 8


# ----------------------------------------------------------------------------- arguments
def test_from_arrays_refuses_2d_input_and_missing_labels():
    with pytest.raises(InputError, match="one-dimensional"):
        MetaData.from_arrays([[1.0, 2.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]])
    with pytest.raises(InputError, match="missing label"):
        MetaData.from_arrays([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], labels=["a", None, "c"])
    with pytest.raises(InputError, match="missing label"):
        MetaData.from_arrays([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], labels=["a", float("nan"), "c"])


@pytest.mark.parametrize("argv, words", [
    (["fit", "bcg", "--covariates", "~ ablat", "--x-new", "ablat=10", "--x-new", "ablat=20"], ["ablat", "twice"]),
    (["fit", "bcg", "--covariates", "~ ablat", "--x-new", "Intercept=2", "ablat=20"], ["intercept", "1"]),
    (["fit", "eight_schools", "--tune", "500"], ["--tune", "NUTS"]),
    (["fit", "eight_schools", "--parameterization", "centered"], ["--parameterization", "NUTS"]),
    (["fit", "eight_schools", "--transform", "exp"], ["--transform", "OR or RR"]),
    (["fit", "eight_schools", "--counts", "a,b,c,d"], ["--measure"]),
])
def test_options_that_do_not_apply_are_errors(capsys, argv, words):
    line = one_line_error(*run(capsys, *argv))
    assert all(w in line for w in words), line


def test_improper_posterior_refused_by_the_nuts_engine_too():
    from metapool import models

    with pytest.raises(InputError, match="improper"):
        models.sample(MetaData.from_arrays([1.0, 2.0], [1.0, 1.0]), draws=10, tune=10)


def test_huge_draws_are_refused_with_the_memory_figure_before_writing(capsys, tmp_path):
    out = tmp_path / "o"
    line = one_line_error(*run(capsys, "fit", "eight_schools", "--draws", "1000000000", "--out", str(out)))
    assert "GB" in line
    assert not out.exists()


def test_one_draw_is_an_error_naming_draws_and_writes_nothing(capsys, tmp_path):
    out = tmp_path / "o"
    line = one_line_error(*run(capsys, "fit", "eight_schools", "--draws", "1", "--out", str(out)))
    assert "--draws" in line
    assert not out.exists()


def test_an_internal_error_is_not_reported_as_bad_input(capsys, monkeypatch):
    from metapool import workflow

    def broken(*a, **k):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(workflow, "fit", broken)
    code, out, err = run(capsys, "fit", "eight_schools")
    assert code == 1 and "internal error: ZeroDivisionError: boom" in err and "Traceback" not in err
    code, out, err = run(capsys, "fit", "eight_schools", "--debug")
    assert code == 1 and "Traceback" in err


# ----------------------------------------------------------------------------- output that loses nothing
def test_figure_names_are_unique_with_the_mapping_in_the_manifest(capsys, tmp_path):
    path = write(tmp_path, "names.csv", "id,y,s\na b,1,1\na_b,2,1\na/b,3,1\nA B,2,2\n")
    out = tmp_path / "o"
    code, _, err = run(capsys, "fit", str(path), "--effect", "y", "--se", "s", "--label", "id",
                       "--tau-prior", "halfnormal:1", "--draws", "100", "--out", str(out),
                       "--study", "a b", "--study", "a_b", "--study", "a/b", "--study", "A B")
    assert code == 0, err
    meta = json.loads((out / "metadata.json").read_text())
    names = meta["figure_files"]
    assert set(names) == {"a b", "a_b", "a/b", "A B"}
    assert len({n.lower() for n in names.values()}) == 4
    assert all((out / n).exists() for n in names.values())
    assert set(meta["files"]) == {p.name for p in out.iterdir()}


def test_out_is_checked_before_the_fit(capsys, tmp_path):
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        if os.access(tmp_path / "ro", os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        line = one_line_error(*run(capsys, "fit", "eight_schools", "--out", str(tmp_path / "ro" / "x")))
        assert "cannot write" in line
    finally:
        os.chmod(tmp_path / "ro", 0o700)


def test_an_earlier_report_is_replaced_only_with_overwrite(capsys, tmp_path):
    out = tmp_path / "o"
    assert run(capsys, "fit", "eight_schools", "--draws", "100", "--seed", "1", "--out", str(out))[0] == 0
    (out / "notes.txt").write_text("mine")
    first = (out / "summary.csv").read_text()
    line = one_line_error(*run(capsys, "fit", "eight_schools", "--tau-prior", "halfnormal:5", "--draws", "100",
                               "--out", str(out)))
    assert "--overwrite" in line and (out / "summary.csv").read_text() == first
    code, _, err = run(capsys, "fit", "eight_schools", "--tau-prior", "halfnormal:5", "--draws", "100",
                       "--out", str(out), "--overwrite")
    assert code == 0, err
    assert (out / "summary.csv").read_text() != first
    assert (out / "notes.txt").read_text() == "mine"          # not ours: never touched
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["tau_prior"] == "halfnormal:5"


def test_a_file_metapool_did_not_write_is_never_replaced(capsys, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "summary.csv").write_text("precious")
    line = one_line_error(*run(capsys, "fit", "eight_schools", "--draws", "100", "--out", str(out), "--overwrite"))
    assert "summary.csv" in line and "did not write" in line
    assert (out / "summary.csv").read_text() == "precious"


def test_concurrent_runs_never_mix_one_folder(tmp_path):
    """Two runs aimed at one folder at once: one writes it whole, the other refuses (exit 2)."""
    out = tmp_path / "o"
    env = dict(os.environ, MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "metapool", "fit", "eight_schools", "--draws", "2000", "--format", "csv",
           "--out", str(out)]
    procs = [subprocess.Popen(cmd + ["--tau-prior", prior], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for prior in ("halfnormal:5", "halfcauchy:5")]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read(), prior)
               for p, prior in zip(procs, ("halfnormal:5", "halfcauchy:5"))]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    winner = next(r for r in results if r[0] == 0)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["tau_prior"] == winner[3]
    assert set(meta["files"]) == {p.name for p in out.iterdir()}
    written = pd.read_csv(out / "summary.csv", index_col="parameter")
    printed = pd.read_csv(io.StringIO(winner[1]), index_col="parameter")
    pd.testing.assert_frame_equal(written, printed)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]   # no temporary folder left
