"""examples/notebooks/quickstart.ipynb runs top to bottom in a real Jupyter kernel (nbclient + ipykernel), and is
kept in the repository without outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "notebooks" / "quickstart.ipynb"

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def test_the_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_the_quickstart_notebook_runs_in_a_jupyter_kernel(tmp_path, monkeypatch):
    # A kernel spec for this interpreter, so the kernel imports the opl under test (not whatever `python` is).
    spec = tmp_path / "jupyter" / "kernels" / "opl-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "opl test", "language": "python"}), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel picks its inline backend (figures as PNG)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="opl-test", timeout=600,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if o.output_type == "execute_result" and "text/html" in o["data"]]
    assert any("recommended size" in h for h in html)  # the simulation's rich display
    assert any("median_monthly_return" in h for h in html)  # the size sweep DataFrame
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # payoff, equity fan, returns, size sweep
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "error[E" in text and "stop:" in text  # the located error and the loop's answer
