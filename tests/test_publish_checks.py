"""Nothing published changes without a check: every path that publishes from the CSVs (`tables`, the notebooks'
build, the figure `run --no-train` redraws, a notebook executed on a scale) first checks them against the run
records, a record names its own run, dropping the rows of runs whose records are gone needs an explicit option, and
a damaged saved profile stops `tables`. Small trees of run records written here (no training, no data)."""

import json
import runpy
import shutil
import sys
from pathlib import Path

import pytest

from rotnet_repro.cli import main
from rotnet_repro.config import PROFILES
from rotnet_repro.experiments import EXPERIMENTS
from rotnet_repro.rundir import RunFolder

ROOT = Path(__file__).resolve().parent.parent


def _records(out: Path, seeds=(0,), profile=PROFILES["cpu"]) -> list[str]:
    """Finished records of a profile's Table 3 supervised cell, one run per seed, as `run` writes them (spec.json
    and result.json); their run ids."""
    ids = []
    for seed in seeds:
        for cell in EXPERIMENTS["table3_comparison"].build(profile, seed, seed):
            s = cell.spec
            if s.kind != "supervised" or s.run_id in ids:
                continue
            folder = RunFolder.of(out / "runs", profile.name, s.run_id)
            folder.path.mkdir(parents=True)
            folder.write_spec(s.canonical())
            folder.record_file.write_text(json.dumps(dict(
                run_id=s.run_id, config_hash=s.config_hash, git_sha="abc1234", torch_version="2.5.1+cpu",
                device="cpu x2", wall_s=1.0,
                metrics=[dict(metric="test_acc", value=v + seed, selection=sel, epoch=e, pretext_epoch=0)
                         for v, sel, e in ((90.5, "last", 200), (91.0, "oracle", 150))])))
            ids.append(s.run_id)
    return ids


def _tree(out: Path, seeds=(0,)) -> tuple[list[str], Path]:
    """Run records and the cpu.csv `rows` writes from them."""
    ids = _records(out, seeds)
    (out / "results").mkdir()
    assert main(["rows", "--out", str(out)]) == 0
    return ids, out / "results" / "cpu.csv"


def _edit_value(csv: Path, value: str = "69.99") -> None:
    """A value edited by hand in the CSV's first row."""
    head, first, *rest = csv.read_text().splitlines(keepends=True)
    cells = first.split(",")
    cells[head.split(",").index("value")] = value
    csv.write_text(head + ",".join(cells) + "".join(rest))


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_the_notebook_build_refuses_a_hand_edited_csv_and_rewrites_nothing(tmp_path, monkeypatch, capsys):
    books = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", books, ignore=shutil.ignore_patterns(".*"))
    _, csv = _tree(tmp_path)
    _edit_value(csv)
    before = {p.name: p.read_bytes() for p in books.glob("*.ipynb")}
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["build.py", "--no-execute"])  # even without executing: nothing rewritten
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(books / "build.py"), run_name="__main__")
    assert stop.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{csv} disagrees with the run records" in line and "python -m rotnet_repro rows" in line
    assert {p.name: p.read_bytes() for p in books.glob("*.ipynb")} == before


def test_run_no_train_draws_no_figure_from_a_value_tables_would_refuse(tmp_path, capsys):
    _, csv = _tree(tmp_path)
    _edit_value(csv)
    before = csv.read_text()
    capsys.readouterr()
    command = ["run", "table3_comparison", "--profile", "cpu", "--rows", "^Supervised", "--no-train", "--device",
               "cpu", "--out", str(tmp_path)]
    assert main(command) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{csv} disagrees with the run records" in line and "python -m rotnet_repro rows" in line
    assert not (tmp_path / "figures" / "cpu" / "table3.png").exists() and csv.read_text() == before
    assert main(["rows", "--out", str(tmp_path)]) == 0  # what the line says; then the figure is drawn
    assert main(command) == 0 and (tmp_path / "figures" / "cpu" / "table3.png").exists()


def test_a_notebook_on_a_folder_whose_scale_csv_is_missing_says_so_in_one_line(tmp_path):
    from rotnet_repro import notebook

    _, csv = _tree(tmp_path)
    fixture = (ROOT / "tests" / "fixtures" / "smoke_results.csv").read_text()
    (tmp_path / "results" / "paper-views.csv").write_text(fixture.replace(",smoke,", ",paper-views,"))  # another scale
    whole = notebook.prepare("table3_comparison", "all", tmp_path)
    assert "is missing" not in notebook.table("table3", whole, "all", tmp_path)
    csv.unlink()
    df = notebook.prepare("table3_comparison", "all", tmp_path)
    assert set(df.profile) == {"paper-views"}
    for shown in (notebook.table("table3", df, "all", tmp_path), notebook.probes("all", tmp_path)):
        first = shown.split("\n\n", 1)[0]
        assert "\n" not in first and "cpu.csv is missing" in first and "python -m rotnet_repro rows" in first
    for one in (lambda: notebook.prepare("table3_comparison", "cpu", tmp_path), lambda: notebook.probes("cpu", tmp_path)):
        with pytest.raises(FileNotFoundError, match="cpu.csv is missing.*rotnet_repro rows"):
            one()


@pytest.mark.parametrize("how", ["copied", "run id edited to the folder's"])
def test_a_record_of_another_run_is_refused_by_rows_tables_and_import_naming_its_folder(tmp_path, capsys, how):
    ids, csv = _tree(tmp_path / "home", seeds=(0, 1))
    runs = tmp_path / "home" / "runs" / "cpu"
    other = json.loads((runs / ids[0] / "result.json").read_text())
    if how != "copied":  # the run id made the folder's, the config hash still the other run's
        other["run_id"] = ids[1]
    (runs / ids[1] / "result.json").write_text(json.dumps(other))
    before = csv.read_text()
    capsys.readouterr()
    home = tmp_path / "home"
    for command in (["rows", "--out", str(home)], ["rows", "--check", "--out", str(home)],
                    ["tables", "--results", str(home / "results")]):
        assert main(command) == 2, command
        line = _one_line(capsys.readouterr().err)
        assert f"{runs / ids[1]}" in line and "another run's record" in line
    assert csv.read_text() == before  # never shown in another cell
    dest = tmp_path / "dest"
    assert main(["import", str(runs), "--out", str(dest)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "nothing imported" in line and f"{runs / ids[1]}" in line and not (dest / "runs").exists()


def test_rows_drops_the_rows_of_a_deleted_run_folder_only_when_told(tmp_path, capsys):
    ids, csv = _tree(tmp_path, seeds=(0, 1))
    before = csv.read_text()
    gone = sum(ids[1] in line for line in before.splitlines())
    assert gone and ids[0] in before
    shutil.rmtree(tmp_path / "runs" / "cpu" / ids[1])
    capsys.readouterr()
    assert main(["rows", "--out", str(tmp_path)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{gone} row(s) of 1 run(s) in cpu.csv" in line and ids[1] in line and "--drop-missing" in line
    assert csv.read_text() == before  # nothing written
    assert main(["rows", "--drop-missing", "--out", str(tmp_path)]) == 0
    assert ids[1] not in csv.read_text() and ids[0] in csv.read_text()
    assert main(["rows", "--out", str(tmp_path)]) == 0 and main(["rows", "--check", "--out", str(tmp_path)]) == 0


@pytest.mark.parametrize("damage", ['{"bogus": 1}', '{"name": "cpu", "width"'])
def test_a_damaged_saved_profile_stops_tables_and_leaves_the_report_as_it_was(tmp_path, capsys, damage):
    _, csv = _tree(tmp_path)
    label = "cpu-custom-abc123"
    (tmp_path / "results" / f"{label}.csv").write_text(csv.read_text().replace(",cpu,", f",{label},"))
    saved = tmp_path / "results" / f"{label}.profile.json"
    saved.write_text(damage)
    report = tmp_path / "REPORT.md"
    report.write_text("# report\n<!-- BEGIN GENERATED: ablations -->\nold\n<!-- END GENERATED: ablations -->\n")
    before = report.read_text()
    capsys.readouterr()
    assert main(["tables", "--results", str(tmp_path / "results")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{saved} is not a saved profile" in line
    assert report.read_text() == before and not (tmp_path / "figures").exists()
