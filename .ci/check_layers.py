"""Check the import-linter layer contracts in pyproject.toml on the package as it installs.

The four source folders (metapool/, analytic/, models/, validation/) form one `metapool` tree only
when installed (pyproject's package-dir); an editable install maps them with an import hook that
import-linter cannot see. So copy the .py files into a temporary tree laid out as installed and
run `lint-imports` there. Usage: python .ci/check_layers.py [ROOT]; exit status of lint-imports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path


def staged_tree(root: Path, dest: Path) -> Path:
    """Copy every package folder of pyproject's package-dir to where it installs; return dest."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    package_dir = config["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(package_dir.items(), key=lambda kv: kv[0].count(".")):
        target = dest.joinpath(*package.split("."))
        shutil.copytree(root / folder, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.csv"))
    return dest


def check(root: Path) -> subprocess.CompletedProcess:
    """Run lint-imports with pyproject's contracts over a staged copy of ``root``."""
    lint = Path(sys.executable).with_name("lint-imports")
    with tempfile.TemporaryDirectory() as tmp:
        staged = staged_tree(root, Path(tmp) / "src")
        env = dict(os.environ, PYTHONPATH=str(staged))
        return subprocess.run([str(lint), str(root / "pyproject.toml"), "--no-cache"],
                              cwd=tmp, env=env, capture_output=True, text=True)


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
    done = check(root)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    sys.exit(done.returncode)
