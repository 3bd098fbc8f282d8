"""`tables` on folders other than the project's own: one that holds only an overridden profile's CSV (what
`run --set ... --out D` leaves) gets that override's tables and figures; one whose run records give a scale's rows
but whose CSV of that scale is missing is a disagreement (exit 2, nothing written), never a scale dropped in
silence. Small trees: the smoke fixture's rows, and run records written here."""

import json
import shutil
from pathlib import Path

import pytest

from rotnet_repro.cli import main
from rotnet_repro.config import PROFILES, apply_overrides, custom_label, save_profile
from rotnet_repro.experiments import EXPERIMENTS
from rotnet_repro.rundir import RunFolder

FIXTURES = Path(__file__).parent / "fixtures"
DOCS = {"REPORT.md": "# report\n<!-- BEGIN GENERATED: results -->\nold\n<!-- END GENERATED: results -->\n",
        "README.md": "# readme\n<!-- BEGIN GENERATED: headline -->\nold\n<!-- END GENERATED: headline -->\n"}


def _docs(root: Path) -> dict:
    for name, text in DOCS.items():
        (root / name).write_text(text)
    return {name: (root / name).read_text() for name in DOCS}


def test_a_folder_holding_only_an_override_gets_its_own_tables_and_figures(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    base = PROFILES["smoke"]
    profile = apply_overrides(base, ["nesterov=false"])
    label = custom_label(base, profile)
    save_profile(results / f"{label}.profile.json", profile)
    (results / f"{label}.csv").write_text((FIXTURES / "smoke_results.csv").read_text().replace(",smoke,", f",{label},"))
    before = _docs(tmp_path)

    assert main(["tables", "--results", str(results)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"found in {results}: {label}.csv (")
    assert out[1].startswith("wrote ") and out[1].endswith(f"markdown tables of {label}")
    assert len(out) == 3 and "needs the base's rows (smoke.csv" in out[2]
    table3 = tmp_path / "figures" / label / "table3.md"
    assert (tmp_path / "figures" / label / "table3.png").exists()
    assert "| Supervised NIN | accuracy | test acc. | 92.80 (confirmed) | 10.00 ± 0.00 (n=2) |" in table3.read_text()
    assert {name: (tmp_path / name).read_text() for name in DOCS} == before  # the comparison needs the base's rows

    (results / f"{label}.profile.json").unlink()  # no saved profile: nothing of it is shown, as before
    assert main(["tables", "--results", str(results)]) == 2
    assert "nothing to make" in capsys.readouterr().err


def _records(out: Path, profile=PROFILES["cpu"]) -> list[str]:
    """Finished run records of a profile's Table 3 supervised cell (seed 0), as `run` writes them: spec.json and
    result.json."""
    ids = []
    for cell in EXPERIMENTS["table3_comparison"].build(profile, 0, 0):
        s = cell.spec
        if s.kind != "supervised" or s.run_id in ids:
            continue
        folder = RunFolder.of(out / "runs", "cpu", s.run_id)
        folder.path.mkdir(parents=True)
        folder.write_spec(s.canonical())
        folder.record_file.write_text(json.dumps(dict(
            run_id=s.run_id, config_hash=s.config_hash, git_sha="abc1234", torch_version="2.5.1+cpu", device="cpu x2",
            wall_s=1.0, metrics=[dict(metric="test_acc", value=v, selection=sel, epoch=e, pretext_epoch=0)
                                 for v, sel, e in ((90.5, "last", 200), (91.0, "oracle", 150))])))
        ids.append(s.run_id)
    return ids


@pytest.mark.slow
def test_a_deleted_csv_of_a_scale_whose_runs_exist_stops_tables_and_changes_nothing(tmp_path, capsys):
    ids = _records(tmp_path)
    assert ids
    (tmp_path / "results").mkdir()
    assert main(["rows", "--out", str(tmp_path)]) == 0  # the CSV the records give
    csv = tmp_path / "results" / "cpu.csv"
    assert csv.exists() and ids[0] in csv.read_text()
    shutil.copyfile(FIXTURES / "smoke_results.csv", tmp_path / "results" / "smoke.csv")  # not a scale: no rows of cpu
    before = _docs(tmp_path)
    capsys.readouterr()

    csv.unlink()
    assert main(["tables", "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{csv} is missing" in err[0] and "python -m rotnet_repro rows" in err[0] \
        and "git checkout" in err[0] and ids[0] in err[0]
    assert {name: (tmp_path / name).read_text() for name in DOCS} == before and not (tmp_path / "figures").exists()

    assert main(["rows", "--out", str(tmp_path)]) == 0  # what the line says: the CSV back from the records
    assert csv.exists()
    assert main(["tables", "--results", str(tmp_path / "results")]) == 0


def test_a_deleted_csv_of_a_saved_override_whose_runs_exist_stops_tables_too(tmp_path, capsys):
    """An overridden profile saved beside the CSVs (REPORT's ablation row) whose records give rows: its CSV
    missing is a disagreement as a scale's is."""
    _records(tmp_path)
    results = tmp_path / "results"
    results.mkdir()
    base = PROFILES["cpu"]
    variant = apply_overrides(base, ["nesterov=false"])  # every run its own
    label = custom_label(base, variant)
    save_profile(results / f"{label}.profile.json", variant)
    own = _records(tmp_path, variant)
    assert main(["rows", "--out", str(tmp_path)]) == 0
    assert own[0] in (results / f"{label}.csv").read_text()
    (results / f"{label}.csv").unlink()
    capsys.readouterr()
    assert main(["tables", "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{label}.csv is missing" in err[0] and own[0] in err[0]


def test_an_override_only_folder_whose_runs_its_base_shares_lacks_no_base_csv(tmp_path, capsys):
    """`run --set semi_k=...` trains Table 3's runs as the base profile's (the same run ids, under runs/cpu): the
    folder holds no cpu.csv, and that is no CSV missing: the override's CSV holds those runs' rows."""
    ids = _records(tmp_path)
    results = tmp_path / "results"
    results.mkdir()
    base = PROFILES["cpu"]
    shared = apply_overrides(base, ["semi_k=5"])
    label = custom_label(base, shared)
    save_profile(results / f"{label}.profile.json", shared)
    assert main(["rows", "--out", str(tmp_path)]) == 0
    assert ids[0] in (results / f"{label}.csv").read_text()
    (results / "cpu.csv").unlink()
    capsys.readouterr()
    assert main(["tables", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "needs the base's rows (cpu.csv" in out and (tmp_path / "figures" / label / "table3.png").exists()
