"""A fast start: the exact engine and the CLI's exact path import only what they use."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pymc", "pytensor", "matplotlib", "statsmodels", "formulaic", "arviz_plots")

PROBE = r"""
import json, sys
{body}
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""


def _modules(body: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], capture_output=True, text=True,
                         check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", ["metapool.analytic", "metapool.cli", "metapool.workflow"])
def test_import_leaves_heavy_packages_out(module):
    loaded = _modules(f"import {module}")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_analytic_import_leaves_xarray_out():
    """xarray is needed only for draws (DataTrees); a fit and its summary do without it."""
    assert "xarray" not in _modules("import metapool.analytic")


def test_cli_exact_fit_imports_no_heavy_package():
    body = ("import contextlib, io\n"
            "from metapool.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    rc = main(['fit', 'seed_countries', '--format', 'csv'])\n"
            "assert rc == 0 and out.getvalue().startswith('parameter,'), (rc, out.getvalue()[:200])")
    loaded = _modules(body)
    assert not loaded & set(HEAVY + ("xarray",)), sorted(loaded & set(HEAVY + ("xarray",)))
