"""Writes the six notebooks and executes them on the committed results, so that they read on a code host with
their tables, verdicts and figures. Run from the repository root: python notebooks/build.py (`--no-execute`:
without outputs). `make tables` reruns it. The CSVs are checked against the run records first, as `tables` checks
them: a CSV the records contradict (or a missing one whose records give rows) stops it with one line (exit 2),
nothing rewritten."""

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import nbformat as nbf

from rotnet_repro.errors import UserError
from rotnet_repro.experiments import EXPERIMENTS
from rotnet_repro.records import check_published
from rotnet_repro.results import write_atomic

ROOT = Path(__file__).resolve().parent.parent  # the notebooks' out_dir ("..")
try:
    check_published(ROOT / "results")  # what `tables` checks: the notebooks never show a value the records refuse
except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)

# one per experiment that names a notebook (the registry holds each one's name and opening line)
NOTEBOOKS = [(e.notebook, e.id, e.artifact if e.paper else "probes", e.about) for e in EXPERIMENTS.values()
             if e.notebook]

BUILT: dict[str, str] = {}  # each notebook's source, before it runs
for name, exp, artifact, what in NOTEBOOKS:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    every_scale = (
        "**Every scale.** This notebook opens on the committed results of every scale side by side, as "
        "`REPORT.md` shows them: the full protocol (GPU), the full RotNet (CPU), and the scaled CPU protocol (NIN "
        "width 1/4, short schedules), whose numbers sit well below full scale by design. Set `profile` to one scale "
        "(`\"cpu\"`, `\"paper\"`, `\"paper-views\"`, or `\"smoke\"` with `train_missing = True` to train a "
        "seconds-long run here) for that scale alone. The paper has no such numbers; a scale with no probe run yet "
        "is not shown, and a dash is a cell not run at that scale yet." if artifact == "probes" else
        "**Every scale.** This notebook opens on the committed results of every scale side by side, as "
        "`REPORT.md` shows them: the paper, the full protocol (GPU), the full RotNet with heads on cached views "
        "(CPU), and the scaled CPU protocol (NIN width 1/4, short schedules), whose numbers sit well below the "
        "paper's by design: its comparisons, not its absolute numbers, are what it can test. Set `profile` to "
        "one scale (`\"cpu\"`, `\"paper\"`, `\"paper-views\"`, or `\"smoke\"` with `train_missing = True` "
        "to train a seconds-long run here) for that scale's detail: ours at the last epoch, the difference, "
        "and the test-set-selected *oracle* figure.")
    nb.cells = [
        nbf.v4.new_markdown_cell(f"# {what}\n\n{every_scale}"),
        nbf.v4.new_code_cell(
            "# parameters\nprofile = \"all\"  # all (every scale) | cpu | paper | paper-views | smoke\n"
            "out_dir = \"..\"  # holds results/<profile>.csv\n"
            "data_dir = None  # CIFAR-10 folder; None = $ROTNET_DATA or ./data\n"
            "train_missing = False  # train the runs that have no results yet (finished runs are skipped)",
            metadata={"tags": ["parameters"]}),
    ]
    if artifact == "probes":
        nb.cells += [
            nbf.v4.new_code_cell(
                "from IPython.display import Markdown, display\n\nfrom rotnet_repro import notebook as nb\n\n"
                "if train_missing:\n"
                f"    nb.prepare(\"{exp}\", profile, out_dir, data_dir, train_missing)\n"
                "    nb.prepare(\"knn_probe_curve\", profile, out_dir, data_dir, train_missing)\n"
                "display(Markdown(nb.probes(profile, out_dir)))"),
            nbf.v4.new_code_cell("nb.probes_figure(profile, out_dir);"),
        ]
    else:
        nb.cells += [
            nbf.v4.new_code_cell(
                "from IPython.display import Markdown, display\n\nfrom rotnet_repro import notebook as nb\n\n"
                f"df = nb.prepare(\"{exp}\", profile, out_dir, data_dir, train_missing)\n"
                f"display(Markdown(nb.table(\"{artifact}\", df, profile, out_dir)))"),
            nbf.v4.new_code_cell(f"display(Markdown(nb.verdict(\"{artifact}\", profile, out_dir)))"),
            nbf.v4.new_code_cell(f"nb.figure(\"{artifact}\", df, profile, out_dir);"),
        ]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i}"  # stable ids keep diffs quiet
    BUILT[name] = nbf.writes(nb)


def execute(path: Path, source: str) -> None:
    """Run the notebook's source on the committed results and write it with its outputs, run-dependent metadata
    dropped. It runs in temporary copies (papermill writes its output as cells run): the committed notebook is
    replaced only once the executed one is whole, so an interrupted build leaves it as it was."""
    import papermill

    src, tmp = (path.with_name(f".{path.stem}.{k}.executing.ipynb") for k in ("source", "out"))
    try:
        src.write_text(source)
        papermill.execute_notebook(str(src), str(tmp), cwd=str(path.parent), progress_bar=False)
        nb = nbf.read(tmp, as_version=4)
    finally:
        src.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    nb.metadata.pop("papermill", None)
    nb.metadata.get("language_info", {}).pop("version", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.execution_count = None
            for out in cell.get("outputs", []):
                out.pop("execution_count", None)
    write_atomic(path, nbf.writes(nb))


@contextlib.contextmanager
def kernel_noise_dropped():
    """The kernels' stderr (inherited file descriptor 2) through a file, replayed without ipykernel's transport
    warning, which says nothing about the notebooks."""
    with tempfile.TemporaryFile(mode="w+b") as f:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            for line in f.read().decode(errors="replace").splitlines(keepends=True):
                if "Kernel is running over TCP without encryption" not in line:
                    sys.stderr.write(line)


with kernel_noise_dropped():
    for name, *_ in NOTEBOOKS:
        if "--no-execute" in sys.argv:
            write_atomic(Path(__file__).with_name(f"{name}.ipynb"), BUILT[name])
        else:
            execute(Path(__file__).with_name(f"{name}.ipynb"), BUILT[name])
print(f"notebooks: {len(NOTEBOOKS)} {'written' if '--no-execute' in sys.argv else 'executed on the committed results'}")
