"""results/*.csv against the run records: `rows` rebuilds what the records say, `tables` refuses a CSV they
contradict, and an overridden profile's rows are never shown under its base profile."""

import logging

import pytest

from rotnet_repro.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("records")
    assert main(["run", "table3_comparison", "--profile", "smoke", "--out", str(out)]) == 0
    return out


def _copy(trained, tmp_path):
    import shutil

    shutil.copytree(trained / "runs", tmp_path / "runs")
    shutil.copytree(trained / "results", tmp_path / "results")
    return tmp_path / "results" / "smoke.csv"


def _sorted_lines(path):
    return sorted(path.read_text().splitlines())


def test_the_rows_a_run_writes_are_the_rows_its_records_give(trained, capsys):
    assert main(["rows", "--check", "--out", str(trained)]) == 0
    assert "as the records say" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["empty", "header only", "deleted", "duplicated", "cut line"])
def test_rows_rebuilds_a_damaged_csv_from_the_records(trained, tmp_path, capsys, damage):
    csv = _copy(trained, tmp_path)
    before = _sorted_lines(csv)
    text = csv.read_text()
    if damage == "empty":
        csv.write_text("")
    elif damage == "header only":
        csv.write_text(text.splitlines(keepends=True)[0])
    elif damage == "deleted":
        csv.unlink()
    elif damage == "duplicated":
        csv.write_text(text + "".join(text.splitlines(keepends=True)[1:]))
    else:
        csv.write_text(text[:-40])
    assert main(["rows", "--check", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr()
    assert "smoke.csv: " in err.out and "disagree with the run records" in err.err
    assert main(["rows", "--out", str(tmp_path)]) == 0
    assert _sorted_lines(csv) == before
    assert main(["rows", "--check", "--out", str(tmp_path)]) == 0


def test_tables_refuse_a_value_no_record_gives_with_one_line(trained, tmp_path, capsys):
    csv = _copy(trained, tmp_path)
    head, first, *rest = csv.read_text().splitlines(keepends=True)
    cells = first.split(",")
    at = head.split(",").index("value")
    cells[at] = "12.5"
    csv.write_text(head + ",".join(cells) + "".join(rest))
    assert main(["tables", "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1 row(s) with other values than their records" in err[0] and "rows" in err[0]
    assert main(["rows", "--out", str(tmp_path)]) == 0
    assert f",{cells[at]}," not in csv.read_text().splitlines()[1]


def test_an_overridden_profile_without_its_saved_profile_is_left_out_not_relabelled(trained, tmp_path, caplog):
    from rotnet_repro.tables import load_all

    csv = _copy(trained, tmp_path)
    results = tmp_path / "results"
    base = csv.read_text().replace(",smoke,", ",cpu,")
    (results / "cpu.csv").write_text(base)
    (results / "cpu-custom-abc123.csv").write_text(base.replace(",cpu,", ",cpu-custom-abc123,"))
    csv.unlink()
    with caplog.at_level(logging.WARNING, "rotnet_repro"):
        df = load_all(results)
    assert set(df.profile) == {"cpu"}
    assert "cpu-custom-abc123.profile.json" in caplog.text and "left out" in caplog.text
    (results / "cpu-custom-abc123.profile.json").write_text("{not json")
    caplog.clear()
    with caplog.at_level(logging.WARNING, "rotnet_repro"):
        df = load_all(results)
    assert set(df.profile) == {"cpu"} and "is not a saved profile" in caplog.text


def test_the_eta_follows_the_schedule_and_the_device(trained, capsys):
    """A RotNet of ten times the epochs is priced ten times its finished sibling on the same kind of device; on a
    kind of device no run was trained on, there is no number."""
    import json

    from rotnet_repro.config import PROFILES, apply_overrides
    from rotnet_repro.experiments import rotnet
    from rotnet_repro.planner import to_train

    base = PROFILES["smoke"]
    done = [json.loads(p.read_text())["wall_s"] for p in (trained / "runs" / "smoke").glob("rotnet-*/result.json")]
    longer = apply_overrides(base, [f"pretext_epochs={base.pretext_epochs * 10}"])
    (_, wall), = to_train([rotnet(longer, 0)], trained / "runs", "cpu")
    assert len(done) == 1 and wall == pytest.approx(10 * done[0])
    (_, wall), = to_train([rotnet(longer, 0)], trained / "runs", "cuda")
    assert wall is None
    assert main(["run", "table1_block_depth", "--profile", "smoke", "--out", str(trained), "--dry-run",
                 "--device", "cpu", "--set", f"pretext_epochs={base.pretext_epochs * 10}"]) == 0
    assert "from each run's schedule" in capsys.readouterr().out


def test_a_record_holding_a_value_out_of_range_stops_rows_and_tables_with_one_line(trained, tmp_path, capsys):
    import json

    csv = _copy(trained, tmp_path)
    rec_file = next((tmp_path / "runs" / "smoke").glob("classifier-*/result.json"))
    rec = json.loads(rec_file.read_text())
    rec["metrics"][0]["value"] = 250.0
    rec_file.write_text(json.dumps(rec))
    before = csv.read_text()
    for command in (["rows", "--out", str(tmp_path)], ["tables", "--results", str(tmp_path / "results")]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not a percentage" in err[0] and rec_file.parent.name in err[0]
    assert csv.read_text() == before  # nothing written
    assert main(["run", "table3_comparison", "--profile", "smoke", "--out", str(tmp_path), "--no-train"]) == 2
    assert rec_file.exists()  # --no-train leaves a damaged record where it is


def test_a_damaged_line_beside_whole_rows_is_repaired_not_reported_as_agreeing(trained, tmp_path):
    csv = _copy(trained, tmp_path)
    before = _sorted_lines(csv)
    csv.write_text(csv.read_text() + "e,table1,r,ConvB2,rotnet-abc,cut\n")
    assert main(["rows", "--check", "--out", str(tmp_path)]) == 2
    assert main(["rows", "--out", str(tmp_path)]) == 0
    assert _sorted_lines(csv) == before


def test_an_empty_weight_file_is_a_damaged_file_not_a_traceback(tmp_path):
    from rotnet_repro.files import DamagedFile, read_tensors, saved_epoch

    empty = tmp_path / "ckpt.pt"
    empty.write_bytes(b"")
    assert saved_epoch(empty) == -1
    with pytest.raises(DamagedFile, match="cannot be read"):
        read_tensors(empty)


def test_a_run_folder_reads_its_spec_back_as_the_runspec_it_was_trained_from(trained, tmp_path):
    import json
    from pathlib import Path

    from rotnet_repro.rundir import RunFolder

    folders = sorted(p.parent for p in (trained / "runs").glob("*/*/spec.json"))
    heads = [f for f in folders if json.loads((f / "spec.json").read_text()).get("backbone")]
    assert folders and heads
    for f in folders:
        spec = RunFolder(f).read_spec()
        as_json = json.loads(json.dumps(spec.canonical(), default=list))
        assert spec.run_id == f.name and as_json == json.loads((f / "spec.json").read_text())
    assert RunFolder(heads[0]).read_spec().backbone.kind == "rotnet"
    # every committed run, a paper-views head on the paper profile's RotNet among them
    committed = sorted(p.parent for p in (Path(__file__).resolve().parent.parent / "runs").glob("*/*/spec.json"))
    assert all(RunFolder(f).read_spec().run_id == f.name for f in committed)
    # edited by hand: the file is named, not read as another run
    bad = tmp_path / "runs" / heads[0].parent.name / heads[0].name
    bad.mkdir(parents=True)
    d = json.loads((heads[0] / "spec.json").read_text())
    (bad / "spec.json").write_text(json.dumps({**d, "seed": d["seed"] + 1}))
    with pytest.raises(ValueError, match="spec.json"):
        RunFolder(bad).read_spec()
