"""The ``metapool`` command, run in-process through ``metapool.cli.main`` (one subprocess run
proves the console script is wired)."""

from __future__ import annotations

import io
import json
import os
import runpy
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metapool import analytic, cli, datasets, validation, workflow
from metapool.priors import parse_beta_prior, parse_tau_prior

SUMMARY_KEYS = ["parameter", "mean", "sd", "q2.5", "q25", "q50", "q75", "q97.5", "hdi95_low", "hdi95_high"]
NUTS_KEYS = SUMMARY_KEYS + ["mcse_mean", "ess_bulk", "ess_tail", "r_hat"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def eight_exact():
    return analytic.fit(datasets.load("eight_schools"))


def _assert_one_line_error(code: int, out: str, err: str) -> None:
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("metapool: error: ")
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- fit: formats
def test_fit_json_matches_exact_engine(capsys, eight_exact):
    code, out, err = run(capsys, "fit", "eight_schools", "--format", "json")
    assert code == 0 and err == ""
    records = json.loads(out)
    assert isinstance(records, list)
    assert all(list(r) == SUMMARY_KEYS for r in records)
    exact = eight_exact.summary()
    assert [r["parameter"] for r in records] == list(exact.index)
    tau = records[0]
    assert tau["parameter"] == "tau"
    assert tau["mean"] == exact.loc["tau", "mean"]
    for r in records:
        np.testing.assert_allclose([r[k] for k in SUMMARY_KEYS[1:]], exact.loc[r["parameter"]].to_numpy(), rtol=1e-12)


def test_fit_csv_format(capsys, eight_exact):
    code, out, _ = run(capsys, "fit", "eight_schools", "--format", "csv")
    assert code == 0
    table = pd.read_csv(io.StringIO(out), index_col="parameter")
    assert list(table.columns) == SUMMARY_KEYS[1:]
    pd.testing.assert_frame_equal(table, eight_exact.summary(), check_exact=False, rtol=1e-12, check_names=False,
                                  check_index_type=False)


def test_fit_table_format(capsys, eight_exact):
    code, out, err = run(capsys, "fit", "eight_schools")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("eight_schools (J = 8); tau prior flat, mu prior flat; engine exact")
    header = lines[2].split()
    assert header == SUMMARY_KEYS[1:]
    tau = lines[3].split()
    assert tau[0] == "tau" and float(tau[1]) == pytest.approx(eight_exact.mean("tau"), rel=1e-3)
    assert any(line.startswith("y_pred[H]") for line in lines)
    assert "Exact summaries" in lines[-1]


def test_table_uses_scientific_notation_for_tiny_values(capsys):
    code, out, _ = run(capsys, "fit", "seed_countries")
    assert code == 0
    assert "SIMULATED" in out.splitlines()[0]
    tau = next(line for line in out.splitlines() if line.startswith("tau "))
    assert "e-04" in tau  # q2.5 of tau is about 1.2e-04
    assert "0.002" in tau  # the mean, fixed notation with 4 significant digits


# ----------------------------------------------------------------------------- fit: data sources
def test_csv_with_the_original_column_names(capsys, tmp_path):
    frame = datasets.load_frame("seed_countries").iloc[:20]
    path = tmp_path / "byCountry_testscores.csv"
    frame.to_csv(path, index=False)
    code, out, _ = run(capsys, "fit", str(path), "--effect", "X_beta", "--se", "X_stderr", "--label", "country",
                       "--format", "json")
    assert code == 0
    records = {r["parameter"]: r for r in json.loads(out)}
    data = datasets.load("seed_countries").subset(np.arange(20))
    expected = analytic.fit(data).summary()
    assert records["tau"]["mean"] == pytest.approx(expected.loc["tau", "mean"], rel=1e-12)
    assert records["theta[country_07]"]["q97.5"] == pytest.approx(expected.loc["theta[country_07]", "q97.5"], rel=1e-12)


def test_csv_with_variances(capsys, tmp_path):
    path = tmp_path / "bcg.csv"
    datasets.bcg_frame()[["label", "yi", "vi"]].to_csv(path, index=False)
    code, out, _ = run(capsys, "fit", str(path), "--effect", "yi", "--variance", "vi", "--label", "label",
                       "--format", "json")
    assert code == 0
    records = {r["parameter"]: r for r in json.loads(out)}
    expected = analytic.fit(datasets.load("bcg")).summary()
    assert records["mu"]["mean"] == pytest.approx(expected.loc["mu", "mean"], rel=1e-12)
    assert "theta[Aronson 1948]" in records


def test_covariates_on_bcg_and_x_new(capsys):
    code, out, _ = run(capsys, "fit", "bcg", "--covariates", "~ ablat", "--x-new", "ablat=30", "--format", "json")
    assert code == 0
    records = {r["parameter"]: r for r in json.loads(out)}
    assert "beta[ablat]" in records and "beta[Intercept]" in records and "mu" not in records
    data = datasets.load("bcg", covariates="~ ablat")
    expected = analytic.fit(data, x_new={"ablat": 30}).summary()
    assert records["beta[ablat]"]["mean"] == pytest.approx(expected.loc["beta[ablat]", "mean"], rel=1e-12)
    assert records["theta_new"]["mean"] == pytest.approx(expected.loc["theta_new", "mean"], rel=1e-12)
    assert records["beta[ablat]"]["q97.5"] < 0  # the latitude effect of the BCG meta-regression


@pytest.mark.parametrize("tau_spec", ["flat", "uniform:0,100", "uniform:50", "halfnormal:10", "halfcauchy:25",
                                      "halft:3,5", "exponential:2", "lognormal:1,1", "dumouchel"])
def test_every_tau_prior_spec(capsys, tau_spec):
    code, out, err = run(capsys, "fit", "eight_schools", "--tau-prior", tau_spec)
    assert code == 0, err
    # the prior as bound to the data (DuMouchel's s0 filled in)
    assert f"tau prior {parse_tau_prior(tau_spec).bind(datasets.load('eight_schools')).spec}," in out.splitlines()[0]


@pytest.mark.parametrize("mu_spec", ["flat", "normal:0,4", "normal:5,100"])
def test_every_mu_prior_spec(capsys, mu_spec):
    code, out, err = run(capsys, "fit", "eight_schools", "--mu-prior", mu_spec, "--format", "json")
    assert code == 0, err
    expected = analytic.fit(datasets.load("eight_schools"), beta_prior=parse_beta_prior(mu_spec))
    assert json.loads(out)[1]["mean"] == pytest.approx(expected.mean("mu"), rel=1e-12)


def test_moment_warning_is_one_line(capsys, tmp_path):
    path = tmp_path / "three.csv"
    path.write_text("country,X_beta,X_stderr\nA,0.01,0.02\nB,0.03,0.01\nC,-0.01,0.015\n")
    code, out, err = run(capsys, "fit", str(path), "--effect", "X_beta", "--se", "X_stderr", "--format", "json")
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("metapool: warning: the posterior mean and sd of tau")
    tau = json.loads(out)[0]
    assert tau["mean"] is None and tau["sd"] is None and tau["q50"] > 0


# ----------------------------------------------------------------------------- bad input
def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


BAD = {
    "missing file": lambda t: ["fit", str(t / "nope.csv"), "--effect", "y", "--se", "s"],
    "unknown dataset": lambda t: ["fit", "nine_schools"],
    "unknown column": lambda t: ["fit", _write(t, "a.csv", "y,s\n1,1\n2,1\n3,1\n"), "--effect", "y", "--se", "se"],
    "no effect option": lambda t: ["fit", _write(t, "b.csv", "y,s\n1,1\n2,1\n3,1\n"), "--se", "s"],
    "no se option": lambda t: ["fit", _write(t, "c.csv", "y,s\n1,1\n2,1\n3,1\n"), "--effect", "y"],
    "zero se": lambda t: ["fit", _write(t, "d.csv", "y,s\n1,1\n2,0\n3,1\n"), "--effect", "y", "--se", "s"],
    "text effect": lambda t: ["fit", _write(t, "e.csv", "y,s\n1,1\nabc,1\n3,1\n"), "--effect", "y", "--se", "s"],
    "negative variance": lambda t: ["fit", _write(t, "f.csv", "y,v\n1,1\n2,-1\n3,1\n"), "--effect", "y",
                                    "--variance", "v"],
    "improper posterior": lambda t: ["fit", _write(t, "g.csv", "y,s\n1,1\n2,1\n"), "--effect", "y", "--se", "s"],
    "improper posterior, nuts": lambda t: ["fit", _write(t, "h.csv", "y,s\n1,1\n2,1\n"), "--effect", "y",
                                           "--se", "s", "--engine", "nuts"],
    "bad tau prior": lambda t: ["fit", "eight_schools", "--tau-prior", "halfnormal:-1"],
    "unknown tau prior": lambda t: ["fit", "eight_schools", "--tau-prior", "gamma:1,1"],
    "bad mu prior": lambda t: ["fit", "eight_schools", "--mu-prior", "normal:0"],
    "bad formula": lambda t: ["fit", "bcg", "--covariates", "~ nosuch"],
    "formula syntax": lambda t: ["fit", "bcg", "--covariates", "~ ablat +"],
    "covariates on a dataset without them": lambda t: ["fit", "eight_schools", "--covariates", "~ x"],
    "column options on a dataset": lambda t: ["fit", "eight_schools", "--effect", "y"],
    "bad x-new": lambda t: ["fit", "bcg", "--covariates", "~ ablat", "--x-new", "latitude=3"],
    "malformed x-new": lambda t: ["fit", "bcg", "--x-new", "ablat"],
    "zero draws": lambda t: ["fit", "eight_schools", "--draws", "0"],
    "unknown engine": lambda t: ["fit", "eight_schools", "--engine", "gibbs"],
    "unknown command": lambda t: ["gibbs"],
    "missing data argument": lambda t: ["fit"],
    "unknown study for --out": lambda t: ["fit", "eight_schools", "--out", str(t / "o"), "--study", "Z",
                                          "--draws", "100"],
    "out is a file": lambda t: ["fit", "eight_schools", "--out", _write(t, "file.txt", "x"), "--draws", "100"],
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, case):
    code, out, err = run(capsys, *BAD[case](tmp_path))
    _assert_one_line_error(code, out, err)


def test_error_messages_name_the_problem(capsys, tmp_path):
    _, _, err = run(capsys, *BAD["unknown column"](tmp_path))
    assert "se" in err
    _, _, err = run(capsys, *BAD["zero se"](tmp_path))
    assert "0" in err and "s" in err
    _, _, err = run(capsys, *BAD["formula syntax"](tmp_path))
    assert "not a valid formula" in err and "\x1b" not in err  # no terminal colour codes
    _, _, err = run(capsys, *BAD["improper posterior"](tmp_path))
    assert "improper" in err
    _, _, err = run(capsys, *BAD["unknown dataset"](tmp_path))
    assert "eight_schools, bcg, seed_countries" in err
    _, _, err = run(capsys, *BAD["missing file"](tmp_path))
    assert "nope.csv" in err
    _, _, err = run(capsys, *BAD["unknown study for --out"](tmp_path))
    assert "--study 'Z'" in err and not (tmp_path / "o").exists()
    _, _, err = run(capsys, *BAD["out is a file"](tmp_path))
    assert "not a directory" in err


def test_help_and_version(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "fit" in out and "validate" in out and "demo" in out and "datasets" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("metapool ")
    code, _, err = run(capsys)
    assert code == 2 and "usage" in err


# ----------------------------------------------------------------------------- --out
def test_out_writes_the_original_outputs(capsys, tmp_path, eight_exact):
    out_dir = tmp_path / "results"
    code, out, err = run(capsys, "fit", "eight_schools", "--format", "json", "--out", str(out_dir),
                         "--draws", "2000", "--seed", "3", "--study", "A", "--study", "C")
    assert code == 0
    assert err.startswith("metapool: wrote summary.csv, summary.json")
    names = {p.name for p in out_dir.iterdir()}
    # the whole DataTree as draws.nc (h5netcdf is a dependency) and the flat draws as draws.csv beside it
    assert names == {"summary.csv", "summary.json", "draws.nc", "draws.csv", "coda.csv", "metadata.json", "tau_density.png",
                     "conditional_means.png", "shrinkage.png", "forest.png", "funnel.png", "predictive_A.png",
                     "predictive_C.png", "index.html"}
    assert json.loads((out_dir / "summary.json").read_text()) == json.loads(out)
    summary = pd.read_csv(out_dir / "summary.csv", index_col="parameter")
    assert summary.loc["tau", "mean"] == pytest.approx(eight_exact.mean("tau"), rel=1e-12)
    coda = pd.read_csv(out_dir / "coda.csv", index_col="parameter")
    assert list(coda.columns) == ["Mean", "SD", "Naive SE", "Time-series SE", "2.5%", "25%", "50%", "75%", "97.5%"]
    assert list(coda.index) == list(summary.index)
    # 2000 independent draws: the coda means are within 4 naive SE of the exact means
    z = (coda["Mean"] - summary["mean"]) / coda["Naive SE"]
    assert np.all(np.abs(z.drop("theta_new")) < 4.5)
    draws = pd.read_csv(out_dir / "draws.csv")
    assert list(draws.columns[:4]) == ["chain", "draw", "tau", "mu"]
    assert len(draws) == 2000
    assert draws["tau"].mean() == pytest.approx(coda.loc["tau", "Mean"], rel=1e-8)
    from metapool.outputs import read_draws

    tree = read_draws(out_dir / "draws.nc")
    # flat priors: log_prior, but no prior draws
    assert set(tree.children) == {"posterior", "posterior_predictive", "log_likelihood", "observed_data", "constant_data",
                                  "log_prior"}
    np.testing.assert_allclose(tree["posterior"]["tau"].values.ravel(), draws["tau"].to_numpy(), rtol=1e-9)
    meta = json.loads((out_dir / "metadata.json").read_text())
    assert meta["engine"] == "exact" and meta["seed"] == 3 and meta["draws"]["draws"] == 2000
    assert meta["data"]["J"] == 8 and meta["tau_prior"] == "flat"
    assert set(meta["files"]) == names
    for png in names - {"summary.csv", "summary.json", "draws.nc", "draws.csv", "coda.csv", "metadata.json", "index.html"}:
        assert (out_dir / png).read_bytes()[:4] == b"\x89PNG"


# ----------------------------------------------------------------------------- datasets
def test_datasets_lists_the_bundled_data(capsys):
    code, out, _ = run(capsys, "datasets")
    assert code == 0
    rows = [line.split()[0] for line in out.splitlines()[1:4]]
    assert rows == ["eight_schools", "bcg", "seed_countries"]
    assert "SIMULATED" in out


# ----------------------------------------------------------------------------- NUTS (one real run)
def test_fit_engine_nuts(capsys, tmp_path, eight_exact):
    out_dir = tmp_path / "nuts"
    code, out, err = run(capsys, "fit", "eight_schools", "--engine", "nuts", "--draws", "300", "--tune", "300",
                         "--chains", "2", "--seed", "1", "--out", str(out_dir))
    assert code == 0
    lines = out.splitlines()
    assert "engine NUTS" in lines[0]
    assert lines[2].split() == NUTS_KEYS[1:]
    assert lines[-1].startswith("divergences: ")
    records = json.loads((out_dir / "summary.json").read_text())
    assert all(list(r) == NUTS_KEYS for r in records)
    rec = {r["parameter"]: r for r in records}
    assert [r["parameter"] for r in records][:3] == ["tau", "mu", "theta[A]"]
    for name in ("tau", "mu"):
        assert abs(rec[name]["mean"] - eight_exact.mean(name)) < 5 * rec[name]["mcse_mean"]
    meta = json.loads((out_dir / "metadata.json").read_text())
    assert meta["engine"] == "nuts"
    assert meta["divergences"] == int(lines[-1].split()[1])
    assert meta["nuts"]["parameterization"] == "noncentered"
    # the figures of the draws (no exact conditional means) and the report
    assert {p.name for p in out_dir.iterdir() if p.suffix in (".png", ".html")} == {
        "tau_density.png", "shrinkage.png", "forest.png", "funnel.png", "predictive_C.png", "index.html"}
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- validate and demo (fakes)
@dataclass
class FakeReport:
    passed: bool
    table: pd.DataFrame

    @property
    def outcome(self) -> str:
        return "PASSED" if self.passed else "FAILED"

    def __str__(self) -> str:
        return f"fake validation report: {self.outcome}"

    def brief(self, rows, more: str = "") -> str:
        return str(self)


def _fake_engine(monkeypatch, passed: bool = True) -> list:
    """Replace NUTS by exact draws and ``compare`` by a fake with the documented interface
    (the public seams ``metapool.workflow.nuts_fit`` and ``metapool.validation.compare``)."""
    calls = []

    def fake_nuts(spec, **opts):
        calls.append({**opts, "parameterization": spec.parameterization})
        return analytic.fit(spec).sample(draws=200, chains=2, seed=0)

    def fake_compare(nuts_dt, exact):
        calls.append((nuts_dt, exact))
        table = pd.DataFrame({"exact_mean": [exact.mean("tau")], "passed": [passed]},
                             index=pd.Index(["tau"], name="parameter"))
        return FakeReport(passed, table)

    monkeypatch.setattr(workflow, "nuts_fit", fake_nuts)
    monkeypatch.setattr(validation, "compare", fake_compare)
    return calls


@pytest.mark.parametrize("passed", [True, False])
def test_validate_exit_status_and_out(capsys, tmp_path, monkeypatch, passed):
    calls = _fake_engine(monkeypatch, passed)
    out_dir = tmp_path / "val"
    code, out, _ = run(capsys, "validate", "eight_schools", "--parameterization", "centered", "--draws", "200",
                       "--out", str(out_dir))
    assert code == (0 if passed else 1)
    assert ("PASSED" if passed else "FAILED") in out
    assert calls[0]["parameterization"] == "centered" and calls[0]["draws"] == 200
    report = pd.read_csv(out_dir / "report.csv", index_col="parameter")
    assert list(report.index) == ["tau"]
    assert (out_dir / "compare_densities.png").read_bytes()[:4] == b"\x89PNG"
    assert set(json.loads((out_dir / "metadata.json").read_text())["files"]) == {p.name for p in out_dir.iterdir()}
    assert "index.html" in {p.name for p in out_dir.iterdir()}


def test_validate_regression_figure(capsys, tmp_path, monkeypatch):
    _fake_engine(monkeypatch)
    code, _, _ = run(capsys, "validate", "bcg", "--covariates", "~ ablat", "--out", str(tmp_path))
    assert code == 0 and (tmp_path / "compare_densities.png").exists()


def test_validate_bad_input(capsys, monkeypatch):
    _fake_engine(monkeypatch)
    code, out, err = run(capsys, "validate", "nine_schools")
    _assert_one_line_error(code, out, err)


def test_demo_with_fakes(capsys, monkeypatch):
    _fake_engine(monkeypatch)
    code, out, _ = run(capsys, "demo", "--draws", "2000")
    assert code == 0
    assert "SIMULATED" in out.splitlines()[0]
    assert "Iterations = 1:2000" in out and "Time-series SE" in out and "y_pred[country_03]" in out
    assert "fake validation report: PASSED" in out and ": PASSED" in out


def test_demo_without_nuts(capsys):
    code, out, _ = run(capsys, "demo", "--draws", "1000", "--skip-nuts")
    assert code == 0 and "skipped (--skip-nuts)" in out


# ----------------------------------------------------------------------------- wiring
def test_python_dash_m(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["metapool", "datasets"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("metapool", run_name="__main__")
    assert exc.value.code == 0
    assert "eight_schools" in capsys.readouterr().out


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("metapool")
    assert script.exists(), "the console script 'metapool' is not installed next to the interpreter"
    env = dict(os.environ, MPLBACKEND="Agg")
    done = subprocess.run([str(script), "fit", "eight_schools", "--format", "json"], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["parameter"] == "tau"


# ----------------------------------------------------------------------------- NUTS controls and honest numbers
# Centred eight schools at target_accept 0.6, seed 1, 4 x 200 draws: divergences and high R-hat, so the
# sampler reruns (the compiled centred model is shared with the session's other centred fits).
NUTS_CONTROLS = ("--parameterization", "centered", "--target-accept", "0.6", "--seed", "1", "--draws", "200",
                 "--tune", "200", "--chains", "4")
RERUN_ARGS = ("eight_schools", "--engine", "nuts", *NUTS_CONTROLS)


def _values_and_limits(pattern: str, text: str) -> list[tuple[str, str]]:
    import re

    return re.findall(pattern, text)


def test_fit_nuts_prints_every_rerun_and_the_final_draws(capsys):
    code, out, err = run(capsys, "fit", *RERUN_ARGS)
    assert code == 0
    reruns = [line for line in err.splitlines() if line.startswith("metapool: rerun ")]
    assert len(reruns) >= 2, err
    assert [line.split()[2] for line in reruns] == [f"{i}:" for i in range(1, len(reruns) + 1)]
    assert any("at target_accept 0.6 -> target_accept 0.95" in line for line in reruns)
    final = [line for line in err.splitlines() if line.startswith("metapool: kept run ")]
    assert len(final) == 1
    n_runs = len(reruns) + 1
    footer = out.splitlines()[-1]
    draws = int(footer.split(" chains x ")[1].split()[0])
    assert final[0].startswith(f"metapool: kept run {n_runs} of {n_runs}: target_accept ")
    assert final[0].endswith(f"4 chains x {draws} draws (200 requested)")
    assert "(tune 200, 200 requested)" in footer and "raised automatically" in footer
    # every doubling says why, and the R-hat it quotes prints above its limit
    doubled = [line for line in reruns if "draws " in line]
    assert sum(line.count(" -> ") for line in doubled) >= 1
    assert draws == 200 * 2 ** len(doubled)
    for value, limit in _values_and_limits(r"max r_hat (\S+) > (\S+)", err):
        assert float(value) > float(limit) == 1.01


def test_fit_nuts_max_retries_zero_keeps_the_first_run(capsys):
    code, out, err = run(capsys, "fit", *RERUN_ARGS, "--max-retries", "0")
    assert code == 0
    assert "rerun" not in err and "kept run" not in err
    footer = out.splitlines()[-1]
    assert "4 chains x 200 draws (tune 200)" in footer and "target_accept 0.6," in footer
    assert "raised automatically" not in footer


def test_validate_failures_never_print_equal_to_their_limit(capsys):
    code, out, err = run(capsys, "validate", "eight_schools", *NUTS_CONTROLS, "--max-retries", "0")
    assert code == 1 and "FAILED" in out
    checks = {
        r"r_hat = (\S+) > (\S+)": lambda v, lim: v > lim,
        r"(?:ess_bulk|ess_tail) = (\S+) < (\S+):": lambda v, lim: v < lim,
        r": z = ([+-]\S+) \(.*?\|z\| > (\S+)\)": lambda v, lim: abs(v) > lim,
        r"p = (\S+) < (\S+) ": lambda v, lim: v < lim,
    }
    found = 0
    for pattern, holds in checks.items():
        for value, limit in _values_and_limits(pattern, out):
            found += 1
            assert holds(float(value), float(limit)), (pattern, value, limit)
    assert found >= 3, out
    # the report table shows both Monte Carlo errors: exact-density and ArviZ's
    assert "arviz_mcse_mean" in out and "arviz_max_abs_z" in out
