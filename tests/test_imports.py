"""A fast start: the exact engine and the CLI's exact path import only what they use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import metapool
from metapool import analytic

HEAVY = ("pymc", "pytensor", "matplotlib", "statsmodels", "formulaic", "arviz_plots")
#: Not needed to fit and summarise exactly (nor to print the CLI's help): imported where used.
LAZY = ("pandas", "xarray", "scipy.stats", "scipy.optimize", "metapool.effects", "metapool.datasets",
        "metapool.io", "metapool.heterogeneity")

PROBE = r"""
import json, sys
{body}
print(json.dumps(sorted(sys.modules)))
"""

EIGHT_Y = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]
EIGHT_SE = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]


def _all_modules(body: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], capture_output=True, text=True,
                         check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _modules(body: str) -> set[str]:
    return {m.split(".")[0] for m in _all_modules(body)}


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The names (packages or submodules) among ``modules``."""
    return sorted(n for n in names if n in modules)


@pytest.mark.parametrize("module", ["metapool.analytic", "metapool.cli", "metapool.workflow"])
def test_import_leaves_heavy_packages_out(module):
    loaded = _modules(f"import {module}")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_analytic_import_leaves_xarray_out():
    """xarray is needed only for draws (DataTrees); a fit and its summary do without it."""
    assert "xarray" not in _modules("import metapool.analytic")


@pytest.mark.parametrize("module", ["metapool", "metapool.analytic"])
def test_import_leaves_pandas_and_the_rest_out(module):
    """pandas, scipy.stats/optimize, effect sizes, datasets and CSV reading load when first used."""
    assert _loaded(_all_modules(f"import {module}"), HEAVY + LAZY) == []


def test_engine_import_and_fit_leave_scipy_out_until_a_summary():
    """scipy.special (most of the engine's import time) loads at the first summary, not before."""
    body = ("from metapool import MetaData, analytic\n"
            "before = sorted(sys.modules)\n"
            f"post = analytic.fit(MetaData.from_arrays({EIGHT_Y}, {EIGHT_SE}))\n"
            "after_fit = sorted(sys.modules)\n"
            "post.summary_table()\n"
            "print(json.dumps([before, after_fit]))")
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], capture_output=True, text=True,
                         check=True)
    before, after_fit = (set(m) for m in json.loads(out.stdout.strip().splitlines()[-2]))
    after_summary = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert _loaded(before, ("scipy",)) == [] and _loaded(after_fit, ("scipy",)) == []
    assert "scipy.special" in after_summary


def test_lazy_special_is_scipy_special():
    """The engine's lazy scipy.special hands out scipy's own functions."""
    from scipy import special as real

    from metapool.analytic._base import special

    assert special.ndtr is real.ndtr and special.ndtri is real.ndtri and special.logsumexp is real.logsumexp
    with pytest.raises(AttributeError):
        special.no_such_function


def test_fit_and_summary_in_a_fresh_process():
    """Fitting and summarising work after importing only the engine (pandas loads for the table),
    and give the same numbers as in this process; still no statsmodels, formulaic, xarray or scipy.stats."""
    body = ("from metapool import MetaData, analytic\n"
            f"post = analytic.fit(MetaData.from_arrays({EIGHT_Y}, {EIGHT_SE}))\n"
            "table = post.summary()\n"
            "print(json.dumps([type(table).__name__, list(table.index), table.to_numpy().tolist()]))")
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], capture_output=True, text=True,
                         check=True)
    kind, index, values = json.loads(out.stdout.strip().splitlines()[-2])
    modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    here = analytic.fit(metapool.MetaData.from_arrays(EIGHT_Y, EIGHT_SE)).summary()
    assert kind == "DataFrame" and index == list(here.index)
    np.testing.assert_array_equal(np.array(values, dtype=float), here.to_numpy())
    assert _loaded(modules, HEAVY + ("xarray", "scipy.stats", "metapool.datasets", "metapool.io")) == []


def test_every_public_name_resolves_lazily():
    """``from metapool import X`` works for every name of ``__all__`` in a fresh process, each the
    object its own module defines; unknown names are AttributeErrors."""
    body = ("import importlib, metapool\n"
            "names = {}\n"
            "for name in metapool.__all__:\n"
            "    exec(f'from metapool import {name} as value')\n"
            "    names[name] = value is getattr(metapool, name)\n"
            "names['read_csv is io.read_csv'] = metapool.read_csv is importlib.import_module('metapool.io').read_csv\n"
            "names['datasets is the module'] = metapool.datasets is sys.modules['metapool.datasets']\n"
            "names['batch is batches.batch'] = metapool.batch is sys.modules['metapool.batches'].batch\n"
            "names['in dir'] = set(metapool.__all__) <= set(dir(metapool))\n"
            "try:\n"
            "    metapool.no_such_name\n"
            "    names['AttributeError'] = False\n"
            "except AttributeError as err:\n"
            "    names['AttributeError'] = 'no_such_name' in str(err)\n"
            "print(json.dumps(names))")
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], capture_output=True, text=True,
                         check=True)
    checks = json.loads(out.stdout.strip().splitlines()[-2])
    assert set(metapool.__all__) <= set(checks)
    assert all(checks.values()), {k: v for k, v in checks.items() if not v}


@pytest.mark.parametrize("argv", [["--help"], ["fit", "--help"], ["validate", "--help"]])
def test_cli_help_imports_neither_pandas_nor_scipy(argv):
    """Building the parser (help texts list the priors and effect-size measures) needs numpy only."""
    body = ("import contextlib, io\n"
            "from metapool.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n"
            f"        main({argv!r})\n"
            "    except SystemExit as exc:\n"
            "        assert exc.code == 0, exc.code\n"
            "assert 'usage:' in out.getvalue()")
    unused = tuple(m for m in LAZY if m != "metapool.effects") + ("scipy",)  # effects: the measures' names
    assert _loaded(_all_modules(body), HEAVY + unused) == []


def test_cli_exact_fit_imports_no_heavy_package():
    body = ("import contextlib, io\n"
            "from metapool.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    rc = main(['fit', 'seed_countries', '--format', 'csv'])\n"
            "assert rc == 0 and out.getvalue().startswith('parameter,'), (rc, out.getvalue()[:200])")
    loaded = _all_modules(body)
    assert _loaded(loaded, HEAVY + ("xarray", "scipy.stats", "scipy.optimize", "metapool.heterogeneity")) == []


SEED_CSV = str(Path(metapool.__file__).parent / "datasets" / "seed_countries_simulated.csv")


@pytest.mark.parametrize("argv", [["fit", "seed_countries"],
                                  ["fit", SEED_CSV, "--effect", "X_beta", "--se", "X_stderr", "--label", "country"]],
                         ids=["by name", "readme csv"])
def test_cold_exact_fit_table_imports_no_pandas(argv):
    """The default ``metapool fit`` (exact, table, no --out) reads, fits and prints without pandas
    (nor pyarrow, xarray, arviz, matplotlib, pymc): issue 13's cold-start target."""
    body = ("import contextlib, io\n"
            "from metapool.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            f"    rc = main({argv!r})\n"
            "lines = out.getvalue().splitlines()\n"
            "assert rc == 0 and lines[3].startswith('tau ') and len(lines) == 166, (rc, lines[:4])")
    loaded = _all_modules(body)
    assert _loaded(loaded, HEAVY + ("pandas", "pyarrow", "xarray", "arviz", "scipy.stats", "scipy.optimize")) == []
