"""Execute the notebooks' jupytext scripts and store them, with outputs, as the paired .ipynb files.

    .venv/bin/python .ci/build_notebooks.py [notebooks/01_original_analysis.py ...]

The percent scripts (notebooks/NN_*.py) are the reviewed sources; the .ipynb files are their
executed copies (full draw counts unless METAPOOL_FAST=1 is set).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def execute(script: Path, timeout: int = 1200) -> nbformat.NotebookNode:
    """The notebook of a percent script, executed in its folder."""
    nb = jupytext.read(script)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(script.parent)}}).execute()
    return nb


def main(argv: list[str]) -> int:
    scripts = [Path(a) for a in argv] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    for script in scripts:
        t0 = time.perf_counter()
        nb = execute(script)
        jupytext.write(nb, script.with_suffix(".ipynb"), fmt="ipynb")
        print(f"{script.name}: executed in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
