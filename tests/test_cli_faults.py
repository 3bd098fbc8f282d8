"""The README's commands on a fresh machine: nothing trained without saying what and how long, nothing created
when the data is missing, no silent no-op."""

import os

from rotnet_repro.cli import main


def test_dry_run_lists_what_would_train_with_an_eta_and_writes_nothing(tmp_path, capsys):
    assert main(["run", "table3_comparison", "--profile", "smoke", "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "supervised NIN" in out and "run(s) to train" in out
    assert not (tmp_path / "o").exists()
    assert main(["run", "table3_comparison", "--profile", "smoke", "--out", str(tmp_path / "o")]) == 0
    capsys.readouterr()
    assert main(["run", "table3_comparison", "--profile", "smoke", "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    assert "nothing to train" in capsys.readouterr().out


def test_missing_data_fails_in_one_line_before_anything_is_created(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ROTNET_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    code = main(["run", "table3_comparison", "--profile", "cpu", "--out", "o", "--data-dir", "nodata"])
    err = capsys.readouterr().err
    assert code == 2 and "CIFAR-10 not found" in err and len(err.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []


def test_rows_matching_nothing_is_an_error_not_zero_rows(tmp_path, capsys):
    code = main(["run", "table3_comparison", "--profile", "smoke", "--out", str(tmp_path), "--rows", "^nothing$"])
    assert code == 2 and "matches --rows/--columns" in capsys.readouterr().err


def test_a_huge_seed_count_is_refused_at_once(tmp_path, capsys):
    assert main(["run", "all", "--profile", "smoke", "--out", str(tmp_path), "--seeds", "100000"]) == 2
    assert "at most 100 seeds" in capsys.readouterr().err
