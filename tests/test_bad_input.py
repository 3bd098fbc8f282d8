"""The bad-input battery's findings (scripts/bad-input-battery.py), one test each: the command line answers a wrong,
missing, damaged or interrupted input with one line that says what to do, never a traceback, a silent no-op or a
line that says the wrong thing. Synthetic inputs in temporary folders; nothing is trained."""

import shutil
import subprocess
from pathlib import Path

import pytest

from rotnet_repro import cli
from rotnet_repro.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "smoke_results.csv"


def _interrupt(monkeypatch, cmd):
    def stop(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, cmd, stop)


@pytest.mark.parametrize("argv", [["rows"], ["tables"], ["plan"], ["weights", "list"], ["window", "pack", "w"]])
def test_ctrl_c_of_a_command_that_trains_nothing_speaks_of_no_workers_or_epochs(argv, monkeypatch, capsys):
    _interrupt(monkeypatch, argv[0])
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.startswith(f"interrupted: `{argv[0]}` stopped") and "run the same command again" in err
    assert "worker" not in err and "epoch" not in err


@pytest.mark.parametrize("argv", [["run", "all"], ["window", "train", "w.json"]])
def test_ctrl_c_of_a_command_that_trains_says_it_resumes(argv, monkeypatch, capsys):
    _interrupt(monkeypatch, argv[0])
    assert main(argv) == 130
    assert "resume from the last finished epoch" in capsys.readouterr().err


def test_window_pack_of_a_mistyped_folder_is_refused_and_writes_nothing(tmp_path, capsys):
    assert main(["window", "pack", str(tmp_path / "wrok"), "--out", str(tmp_path / "parts")]) == 2
    assert "no work folder" in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == []


def test_plan_outside_git_asks_for_the_tree_size_instead_of_counting_it_as_nothing(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    if shutil.which("git") and subprocess.run(["git", "-C", str(tmp_path), "rev-parse"],
                                              capture_output=True).returncode == 0:
        pytest.skip("the temporary folder is inside a git checkout")
    assert main(["plan", "--profile", "gpu", "--out", str(tmp_path)]) == 2
    assert "unknown profile 'gpu'" in capsys.readouterr().err  # named before the checkout is
    assert main(["plan", "--profile", "cpu", "--out", str(tmp_path)]) == 2
    assert "not a git checkout" in capsys.readouterr().err
    assert main(["plan", "--profile", "cpu", "--out", str(tmp_path / "nope")]) == 2
    assert "no folder" in capsys.readouterr().err
    assert main(["plan", "--profile", "cpu", "--out", str(tmp_path), "--tree-bytes", "8000000"]) == 0


def test_prune_with_nothing_to_prune_says_so_and_asks_for_no_redraw(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "smoke.csv").write_text(FIXTURE.read_text().splitlines()[0] + "\n")
    assert main(["prune", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("nothing to prune") and "redraw" not in out


@pytest.mark.parametrize("flag,value", [("--workers", "100000"), ("--threads", "100000")])
def test_a_huge_worker_or_thread_count_is_refused_before_anything_starts(flag, value, tmp_path, capsys):
    argv = ["run", "table3_comparison", "--profile", "smoke", "--out", str(tmp_path / "o"), "--dry-run", flag, value]
    assert main(argv) == 2
    assert f"{flag} {value}: at most" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_weights_of_a_folder_without_runs_is_refused_and_an_empty_manifest_says_so(tmp_path, capsys):
    assert main(["weights", "list", "--out", str(tmp_path / "nope")]) == 2
    assert "no runs folder" in capsys.readouterr().err
    (tmp_path / "runs").mkdir()
    assert main(["weights", "list", "--out", str(tmp_path)]) == 0
    assert "no weight file listed" in capsys.readouterr().out


def test_verdicts_on_a_folder_without_csvs_or_outside_git_says_which(tmp_path, capsys, monkeypatch):
    (tmp_path / "results").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["verdicts", "--results", "results"]) == 2
    assert "no CSV in results" in capsys.readouterr().err
    shutil.copy(FIXTURE, tmp_path / "results" / "cpu.csv")
    if subprocess.run(["git", "rev-parse"], cwd=tmp_path, capture_output=True).returncode == 0:
        pytest.skip("the temporary folder is inside a git checkout")
    assert main(["verdicts", "--results", "results"]) == 2
    assert "is not a git checkout" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["cpu.csv"]  # no claims/ folder made


@pytest.mark.parametrize("flag", ["--tree-bytes", "--data-bytes"])
def test_plan_with_a_negative_size_is_refused(flag, tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    extra = [] if flag == "--tree-bytes" else ["--tree-bytes", "8000000"]
    assert main(["plan", "--profile", "cpu", "--out", str(tmp_path), *extra, flag, "-5"]) == 2
    assert f"{flag} -5: a size in bytes is 0 or more" in capsys.readouterr().err


def test_window_unpack_of_a_missing_folder_says_it_is_missing_not_that_the_archive_is_partial(tmp_path, capsys):
    assert main(["window", "unpack", str(tmp_path / "no-parts"), "--out", str(tmp_path), "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "no folder" in err and "back.json" not in err


def test_ctrl_c_while_the_package_loads_is_one_line_not_a_traceback(monkeypatch, capsys):
    import runpy
    import sys

    class Stop:
        def find_spec(self, name, path=None, target=None):
            if name == "rotnet_repro.cli":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "rotnet_repro.cli")
    monkeypatch.delitem(sys.modules, "rotnet_repro.__main__", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Stop(), *sys.meta_path])
    with pytest.raises(SystemExit) as e:
        try:
            runpy.run_module("rotnet_repro", run_name="__main__")
        except KeyboardInterrupt:  # what reached the user as a traceback
            pytest.fail("the KeyboardInterrupt of the import went through")
    assert e.value.code == 130
    assert capsys.readouterr().err == "interrupted while starting: nothing was done; run the same command again\n"


def _finished(runs, cell):
    """A finished run folder of `cell` (its spec.json and a record of its metric), nothing trained."""
    import json

    s = cell.spec
    folder = runs / s.profile.name / s.run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(json.dumps(s.canonical(), sort_keys=True, default=list))
    m = dict(metric=cell.metric, value=50.0, pretext_epoch=cell.pretext_epoch or s.profile.pretext_epochs,
             selection="last", epoch=1)
    (folder / "result.json").write_text(json.dumps(dict(run_id=s.run_id, config_hash=s.config_hash, git_sha="x",
                                                        torch_version="x", device="cpu", wall_s=1.0, metrics=[m])))
    return folder


def test_a_damaged_spec_beside_a_record_stops_rows_check_instead_of_agreeing(tmp_path, capsys):
    a, b = _two_records(tmp_path)
    assert main(["rows", "--out", str(tmp_path)]) == 0  # the CSV written from the two records
    capsys.readouterr()
    assert main(["rows", "--check", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    (b / "spec.json").write_text("{")
    assert main(["rows", "--check", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{b.name}/spec.json is damaged" in err and len(err.strip().splitlines()) == 1


def _two_records(tmp_path):
    from rotnet_repro.config import PROFILES
    from rotnet_repro.experiments import EXPERIMENTS

    cells = EXPERIMENTS["table3_comparison"].build(PROFILES["smoke"], 0, 0)
    return [_finished(tmp_path / "runs", c) for c in {c.spec.run_id: c for c in cells}.values()
            if c.spec.backbone is None]  # the supervised NIN and the random-init head


def test_a_csv_of_binary_garbage_is_a_damaged_csv_not_a_traceback(tmp_path, capsys):
    _two_records(tmp_path)
    assert main(["rows", "--out", str(tmp_path)]) == 0
    csv = tmp_path / "results" / "smoke.csv"
    good = csv.read_text()
    capsys.readouterr()
    csv.write_bytes(bytes(range(256)) * 20)
    assert main(["rows", "--check", "--out", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert "damaged line(s)" in out and "Traceback" not in err
    assert main(["rows", "--out", str(tmp_path)]) == 0  # written again from the records
    assert sorted(csv.read_text().splitlines()) == sorted(good.splitlines())
    capsys.readouterr()
    csv.write_bytes(bytes(range(256)) * 20)
    (tmp_path / "results" / "cpu.csv").write_bytes(b"\xff\xfe" * 50)
    assert main(["tables", "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
