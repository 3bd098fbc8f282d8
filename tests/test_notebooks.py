"""Every notebook runs top to bottom: on the smoke profile (training what is missing) and on committed results."""

from pathlib import Path

import pytest

papermill = pytest.importorskip("papermill")
ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernels inherit it; tiny models gain nothing from more


def test_there_is_one_notebook_per_artifact():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05"]
    for p in NOTEBOOKS:
        assert '"output_type"' not in p.read_text(), f"{p.name} holds stored outputs"


def shows_its_figures(nb) -> None:
    """Every cell that draws a figure holds it as an image output; no cell shows progress bars."""
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        if "nb.figure(" in "".join(cell["source"]):
            assert any("image/png" in o.get("data", {}) for o in outputs), "".join(cell["source"])
        text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
        assert "it/s" not in text and "%|" not in text, text[:200]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_smoke_profile(path, tmp_path):
    nb = papermill.execute_notebook(str(path), str(tmp_path / path.name), cwd=str(path.parent), progress_bar=False,
                                    parameters={"profile": "smoke", "out_dir": str(tmp_path), "train_missing": True})
    shows_its_figures(nb)


@pytest.mark.skipif(not (ROOT / "results" / "cpu.csv").exists(), reason="no committed cpu results")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_committed_cpu_results(path, tmp_path):
    nb = papermill.execute_notebook(str(path), str(tmp_path / path.name), cwd=str(path.parent), progress_bar=False)
    shows_its_figures(nb)
