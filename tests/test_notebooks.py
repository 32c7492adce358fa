"""The three studies as notebooks (notebooks/*.ipynb): stored without outputs, each with an "Open in
Colab" badge and a first code cell that installs the package only when it does not import, using the
Python API only; and (slow) executed top to bottom with nbclient, in a fresh folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_the_three_studies_are_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["study1_labelling.ipynb", "study2_dpo.ipynb", "study3_grpo.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_are_stored_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs must be stripped"
    assert f"colab.research.google.com/github/llmscisci/llmscisci/blob/main/notebooks/{path.name}" in nb.cells[0].source
    first = code[0].source
    assert "import llmscisci" in first and "except ImportError" in first and "git+https://github.com/llmscisci/llmscisci" in first
    body = "\n".join(c.source for c in code[1:])
    assert "import llmscisci as ls" in body
    assert "from llmscisci" not in body and "llmscisci." not in body.replace("import llmscisci as ls", "")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env_path) if p)
    try:
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if env_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = env_path
    print(f"{path.name}: {time.perf_counter() - t0:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert (tmp_path / "runs").is_dir()
