"""The wheel holds every sub-package of the one ``metapool`` namespace and the bundled data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What a clean clone would not have (see .gitignore): never copied into the build tree.
JUNK = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "out", "*.pyc")
EXPECTED = [
    "metapool/__init__.py",
    "metapool/data.py",
    "metapool/effects.py",
    "metapool/errors.py",
    "metapool/analytic/__init__.py",
    "metapool/models/__init__.py",
    "metapool/validation/__init__.py",
    "metapool/datasets/__init__.py",
    "metapool/datasets/make_seed_countries.py",
    "metapool/datasets/eight_schools.csv",
    "metapool/datasets/bcg_vaccine.csv",
    "metapool/datasets/seed_countries_simulated.csv",
    "metapool/datasets/normand1999.csv",
    "metapool/datasets/hine1989.csv",
    "metapool/datasets/molloy2014.csv",
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the repository root, so that setuptools' ``build/`` and
    ``*.egg-info`` land in a temporary folder and never in the checkout (where a stale
    ``build/lib`` could leak deleted modules into later wheels)."""
    pytest.importorskip("build")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*JUNK))
    out = tmp / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=src, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels = sorted(out.glob("metapool-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contains_subpackages_and_datasets(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in EXPECTED if n not in names]
    assert not missing, f"missing from {wheel.name}: {missing}"


def test_wheel_datasets_are_the_bundled_files(wheel):
    with zipfile.ZipFile(wheel) as zf:
        from metapool.datasets import _FILES

        for name in _FILES.values():
            assert zf.read(f"metapool/datasets/{name}") == (ROOT / "metapool" / "datasets" / name).read_bytes()


def test_wheel_declares_console_script(wheel):
    with zipfile.ZipFile(wheel) as zf:
        entry = next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))
        assert "metapool = metapool.cli:main" in zf.read(entry).decode()

