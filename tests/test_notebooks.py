"""The notebooks in docs/notebooks run end to end (nbclient, kernel python3, offline).

They are committed without outputs; each is executed in a fresh kernel from its own folder,
and any error in a cell fails the test. The kernel is the interpreter running the tests (the
``python3`` kernelspec's ``python`` resolves to it) with the same environment (PYTHONPATH, the
temporary user cache of conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "docs" / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks_without_outputs():
    import nbformat

    assert {p.stem for p in NOTEBOOKS} >= {"attention", "features", "interventions"}
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, p.name
        text = p.read_text()
        assert "steve_qt.core" not in text and "import steve_qt as sq" in text, p.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell; stops the kernel
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
