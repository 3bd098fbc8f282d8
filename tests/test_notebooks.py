"""Every notebook runs top to bottom: on the smoke profile (training what is missing) and on committed results."""

from pathlib import Path

import pytest

papermill = pytest.importorskip("papermill")
pytestmark = pytest.mark.slow  # each executes notebooks or reads all of them (results/bench/test-times.csv)
ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernels inherit it; tiny models gain nothing from more


def execute(path: Path, out: Path, **parameters):
    """papermill on one notebook, its time limits only guarding against a hang: the kernel's start (papermill's
    60 s) and the wait for a cell's last output after its reply (4 s, an error in papermill) are what a loaded
    machine can overrun, and neither is what the tests check."""
    return papermill.execute_notebook(str(path), str(out), cwd=str(path.parent), progress_bar=False,
                                      parameters=parameters or None, start_timeout=600, iopub_timeout=600)


def stored(path: Path) -> list[str]:
    """The markdown outputs a committed notebook holds (its table, then its verdict)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return [o["data"]["text/markdown"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "text/markdown" in o.get("data", {})]


def test_there_is_one_notebook_per_artifact_committed_with_its_outputs():
    """Committed executed (python notebooks/build.py): each reads on a code host with its table, the verdict of
    its claims and its figure."""
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]
    for p in NOTEBOOKS:
        md = stored(p)
        if p.stem == "06_knn_linear_probe":  # beyond the paper: no claim of the paper to judge
            assert len(md) == 1 and "| backbone | readout |" in md[0], p.name
            assert '"image/png"' in p.read_text(), f"{p.name} holds no figure"
            continue
        assert len(md) == 2 and "| row | column |" in md[0] and "The paper's claims here" in md[1], p.name
        assert '"image/png"' in p.read_text(), f"{p.name} holds no figure"


@pytest.mark.skipif(not (ROOT / "results" / "cpu.csv").exists(), reason="no committed cpu results")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_committed_notebook_shows_the_tables_the_committed_results_give(path):
    from rotnet_repro import notebook
    from rotnet_repro.experiments import EXPERIMENTS

    if path.stem == "06_knn_linear_probe":  # REPORT's block, the same text
        assert stored(path) == [notebook.probes("all", ROOT)], "run `make tables` and commit"
        assert stored(path)[0] in (ROOT / "REPORT.md").read_text()
        return
    exp = next(e for e in EXPERIMENTS.values() if path.stem[3:] == e.id)
    df = notebook.prepare(exp.id, "all", ROOT)
    assert stored(path) == [notebook.table(exp.artifact, df, "all"), notebook.verdict(exp.artifact, "all", ROOT)], \
        "run `make tables` (it executes the notebooks again) and commit"
    assert "Every scale" in stored(path)[0] and "at every scale" in stored(path)[1]


def shows_its_figures(nb) -> None:
    """Every cell that draws a figure holds it as an image output; no cell shows progress bars."""
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        if "nb.figure(" in "".join(cell["source"]) or "nb.probes_figure(" in "".join(cell["source"]):
            assert any("image/png" in o.get("data", {}) for o in outputs), "".join(cell["source"])
        text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
        assert "it/s" not in text and "%|" not in text, text[:200]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_smoke_profile(path, tmp_path):
    nb = execute(path, tmp_path / path.name, profile="smoke", out_dir=str(tmp_path), train_missing=True)
    shows_its_figures(nb)


@pytest.mark.skipif(not (ROOT / "results" / "cpu.csv").exists(), reason="no committed cpu results")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_committed_results_at_every_scale_and_at_one(path, tmp_path):
    nb = execute(path, tmp_path / path.name)
    shows_its_figures(nb)
    assert stored(tmp_path / path.name) == stored(path)  # executing it again gives the committed tables
    one = tmp_path / f"cpu-{path.name}"
    nb = execute(path, one, profile="cpu")
    shows_its_figures(nb)
    if path.stem == "06_knn_linear_probe":
        assert "`--profile cpu`" in stored(one)[0] and "`--profile paper" not in stored(one)[0]
        return
    assert "cpu profile" in stored(one)[0] and "at the cpu profile" in stored(one)[1]


@pytest.mark.skipif(not (ROOT / "results" / "cpu.csv").exists(), reason="no committed cpu results")
@pytest.mark.parametrize("experiment", ["table1_block_depth", "table2_rotations", "table3_comparison",
                                        "fig5a_epoch_curve", "fig5b_semi_supervised"])
def test_a_notebook_table_equals_the_reports(experiment):
    """A notebook passes one experiment's rows; the current runs come from the rows' backbone_seed and the registry,
    so its table is the one REPORT.md shows (heads on RotNets 1 and 2 are not dropped)."""
    from rotnet_repro import notebook
    from rotnet_repro.experiments import EXPERIMENTS
    from rotnet_repro.report import comparison, load_all

    artifact = EXPERIMENTS[experiment].artifact
    rows = notebook.prepare(experiment, "cpu", ROOT)
    everything = load_all(ROOT / "results")
    assert notebook.table(artifact, rows, "cpu").split("\n", 2)[2] == \
        notebook.table(artifact, everything[everything.experiment == experiment], "cpu").split("\n", 2)[2]
    assert comparison(rows, artifact, "cpu").equals(comparison(everything, artifact, "cpu"))
    # every scale: the notebook's opening table is REPORT's "Results at every scale" table for the artifact
    from rotnet_repro.report import scales_markdown

    opening = notebook.table(artifact, notebook.prepare(experiment, "all", ROOT), "all").split("\n\n", 1)[1]
    assert opening == scales_markdown(everything, artifact) and opening in (ROOT / "REPORT.md").read_text()
