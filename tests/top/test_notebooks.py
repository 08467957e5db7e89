"""The four notebooks: each .ipynb is its jupytext script executed, and every script runs (small draws)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext", reason="the notebook tests need the test extras (jupytext, nbclient)")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["01_original_analysis", "02_meta_regression", "03_model_comparison", "04_cross_checking"]


def _code(nb) -> list[str]:
    return [c.source.strip() for c in nb.cells if c.cell_type == "code"]


def test_the_four_notebooks_are_there_and_paired():
    assert sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py")) == NAMES
    assert not (NOTEBOOKS / "quickstart.ipynb").exists()
    for name in NAMES:
        script = jupytext.read(NOTEBOOKS / f"{name}.py")
        stored = jupytext.read(NOTEBOOKS / f"{name}.ipynb")
        assert _code(stored) == _code(script), f"{name}.ipynb is out of date: run .ci/build_notebooks.py"
        assert [c.source.strip() for c in stored.cells if c.cell_type == "markdown"] == \
            [c.source.strip() for c in script.cells if c.cell_type == "markdown"]
        # stored with outputs (figures), none of them errors
        outputs = [o for c in stored.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], name
        assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3, name
        assert all(c.get("execution_count") for c in stored.cells if c.cell_type == "code"), name


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, monkeypatch):
    monkeypatch.setenv("METAPOOL_FAST", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)   # the kernel's inline backend keeps the figures
    nb = jupytext.read(NOTEBOOKS / f"{name}.py")
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3
    text = "".join(o.get("text", "") for o in outputs)
    if name == "01_original_analysis":
        assert "Iterations = 1:2000" in text            # the parameter cell read METAPOOL_FAST
    if name == "04_cross_checking":
        assert "metapool SBC (exact engine): PASSED" in text
    assert os.environ["METAPOOL_FAST"] == "1"
