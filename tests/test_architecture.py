"""The layer contracts (pyproject's import-linter section) hold, and would catch a wrong import."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

spec = importlib.util.spec_from_file_location("check_layers", ROOT / ".ci" / "check_layers.py")
check_layers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_layers)

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (pip install -e .[test])")


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _copy(tmp_path: Path) -> Path:
    dest = tmp_path / "repo"
    for item in ["pyproject.toml", *tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values()]:
        if (ROOT / item).is_dir():
            shutil.copytree(ROOT / item, dest / item, ignore=shutil.ignore_patterns("__pycache__", "*.csv"))
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / item, dest / item)
    return dest


def test_the_package_keeps_its_layers():
    done = check_layers.check(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout and "Contracts: 3 kept, 0 broken." in done.stdout


@pytest.mark.parametrize("where, line", [
    ("analytic/_base.py", "import pymc\n"),                                # the exact engine imports PyMC
    ("metapool/data.py", "from metapool.analytic import fit\n"),           # the core imports an engine
    ("metapool/summaries.py", "import matplotlib\n"),                      # the core imports matplotlib
    ("models/sampling.py", "from metapool.analytic import fit\n"),         # one engine imports the other
    ("validation/compare.py", "from metapool import workflow\n"),          # validation imports the top
])
def test_a_deliberate_violation_fails(tmp_path, where, line):
    repo = _copy(tmp_path)
    target = repo / where
    target.write_text(target.read_text() + "\n" + line)
    done = check_layers.check(repo)
    assert done.returncode != 0 and "BROKEN" in done.stdout, done.stdout


def test_every_module_is_in_a_contract():
    """Each module of the core folder and each sub-package belongs to a layer or a core contract."""
    named = set()
    for c in _contracts():
        for key in ("layers", "source_modules"):
            for entry in c.get(key, []):
                named |= {m.strip() for m in entry.split("|")}
    core = {f"metapool.{p.stem}" for p in (ROOT / "metapool").glob("*.py") if p.stem not in ("__init__", "__main__")}
    core |= {f"metapool.{p.name}" for p in (ROOT / "metapool").iterdir() if (p / "__init__.py").exists()}
    packages = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]) - {"metapool"}
    missing = sorted((core | packages) - named)
    assert not missing, f"modules in no import-linter contract: {missing}"
