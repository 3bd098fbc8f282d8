"""The README's commands on a fresh machine: nothing trained without saying what and how long, nothing created
when the data is missing, no silent no-op."""

import os
from pathlib import Path

import pytest

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


def _smoke(tmp_path, *extra):
    from rotnet_repro.cli import main as m

    return m(["run", "table3_comparison", "--profile", "smoke", "--out", str(tmp_path), *extra])


def test_a_diverged_run_stops_with_one_line_and_writes_no_rows(tmp_path, capsys):
    assert _smoke(tmp_path, "--set", "lr=1e30") == 2
    err = capsys.readouterr().err
    assert "diverged" in err and "Traceback" not in err
    assert not (tmp_path / "results" / "smoke-custom-" "x").exists()
    assert not list(tmp_path.glob("results/*.csv")) or all(
        len(p.read_text().splitlines()) <= 1 for p in tmp_path.glob("results/*.csv"))


def test_tables_refuses_values_outside_0_100_and_non_numbers(tmp_path, capsys):
    import shutil
    from pathlib import Path

    results = tmp_path / "results"
    results.mkdir()
    src = (Path(__file__).parent / "fixtures" / "smoke_results.csv").read_text().splitlines(keepends=True)
    for bad in ("250", "abc"):
        head, first, *rest = src
        cols = first.split(",")
        i = head.split(",").index("value")
        cols[i] = bad
        (results / "cpu.csv").write_text(head + ",".join(cols) + "".join(rest))
        assert main(["tables", "--results", str(results)]) == 2
        err = capsys.readouterr().err
        assert "not a percentage" in err and "Traceback" not in err
    shutil.rmtree(results)


def test_tables_says_what_it_found_and_refuses_an_empty_folder(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    assert main(["tables", "--results", str(results)]) == 2
    assert "nothing to make" in capsys.readouterr().err
    (results / "cpu.csv").write_text("")
    (results / "smoke.csv").write_text("")
    assert main(["tables", "--results", str(results)]) == 2
    out = capsys.readouterr()
    assert "cpu.csv (0 rows)" in out.out and "test rows, not tabled" in out.out and "Traceback" not in out.err
    (results / "cpu.csv").write_text("a,b\n1,2\n")
    assert main(["tables", "--results", str(results)]) == 2
    assert "not a results CSV of this package" in capsys.readouterr().err


@pytest.mark.slow
def test_tables_without_the_readme_markers_warns_and_writes_the_rest(tmp_path, capsys, caplog):
    import shutil
    from pathlib import Path

    results = tmp_path / "results"
    results.mkdir()
    shutil.copyfile(Path(__file__).parent.parent / "results" / "cpu.csv", results / "cpu.csv")
    (tmp_path / "README.md").write_text("# my notes, no markers\n")
    assert main(["tables", "--results", str(results)]) == 0
    captured = capsys.readouterr()
    said = captured.err + caplog.text
    assert "no <!-- BEGIN/END GENERATED: headline --> markers" in said and "Traceback" not in said
    assert (tmp_path / "figures" / "cpu" / "table3.png").exists()


def test_a_full_disk_during_a_checkpoint_leaves_the_last_one_and_says_so(tmp_path, capsys, monkeypatch):
    import torch

    from rotnet_repro import engine

    real = torch.save
    calls = []

    def full(obj, path, *a, **k):
        calls.append(path)
        if len(calls) == 3:  # a later epoch's checkpoint
            raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file")
        return real(obj, path, *a, **k)

    monkeypatch.setattr(engine.torch, "save", full)
    assert _smoke(tmp_path) == 2
    err = capsys.readouterr().err
    assert "is the disk full?" in err and "intact" in err and "Traceback" not in err
    assert not list(tmp_path.rglob("*.tmp"))
    monkeypatch.setattr(engine.torch, "save", real)
    assert _smoke(tmp_path) == 0  # the rerun completes


def test_import_names_what_it_skips_and_checks_every_folder_first(tmp_path, capsys):
    import json

    out = tmp_path / "a"
    assert _smoke(out) == 0
    src = out / "runs" / "smoke"
    assert main(["import", str(tmp_path / "missing"), "--out", str(tmp_path / "b")]) == 2
    assert "does not exist" in capsys.readouterr().err
    folders = sorted(p for p in src.iterdir() if p.is_dir())
    (folders[0] / "spec.json").unlink()
    (folders[1] / "result.json").write_text('{"metrics": [')
    assert main(["import", str(src), "--out", str(tmp_path / "b")]) == 0
    out_lines = capsys.readouterr().out
    assert f"{folders[0]}: skipped: no spec.json" in out_lines and "damaged" in out_lines
    (folders[2] / "spec.json").write_text(json.dumps({"edited": 1}))
    assert main(["import", str(src), "--out", str(tmp_path / "c")]) == 2
    assert "nothing imported" in capsys.readouterr().err and not (tmp_path / "c" / "runs").exists()


def test_a_finished_run_whose_spec_was_deleted_gets_it_back(tmp_path):
    assert _smoke(tmp_path) == 0
    spec = next((tmp_path / "runs" / "smoke").glob("rotnet-*/spec.json"))
    spec.unlink()
    assert _smoke(tmp_path) == 0
    assert spec.exists()
    assert "spec.json was missing" in (tmp_path / "logs" / "smoke.log").read_text()


ANNOUNCE = """
# in every Python process of the test (sitecustomize): a `run` says on stdout, with its pid, when its cells begin
# (its helpers started, its signal handlers set)
import os

if os.environ.get("ANNOUNCE_CELLS") == "1":
    import atexit

    import rotnet_repro.request as request
    from rotnet_repro.runner import Runner

    run_request = request.run_request

    def tracked(*args, **kwargs):  # a `run` that ends early says so: the test fails at once instead of hanging
        atexit.register(lambda pid=os.getpid(): print(f"process ends {pid}", flush=True))
        return run_request(*args, **kwargs)

    request.run_request = tracked

    run_cells = Runner.run_cells

    def announced(self, *args, **kwargs):
        print(f"cells begin {os.getpid()}", flush=True)
        return run_cells(self, *args, **kwargs)

    Runner.run_cells = announced
"""


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_sigterm_stops_every_worker(tmp_path):
    """SIGTERM once the process and both its helpers are in their cells (each says so: no poll, no deadline): it
    stops every helper, each stops as on Ctrl-C, and it waits for each, so that none is left when it has exited."""
    import signal
    import subprocess
    import sys
    import threading

    import pytest

    if not Path("/proc/self/stat").exists():
        pytest.skip("needs Linux /proc to find the worker processes")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(ANNOUNCE)
    root = Path(__file__).resolve().parent.parent
    with open(tmp_path / "stderr", "w") as err:
        p = subprocess.Popen([sys.executable, "-m", "rotnet_repro", "run", "all", "--profile", "smoke", "--out",
                              str(tmp_path), "--workers", "3", "--set", "pretext_epochs=400"],
                             stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True,
                             env={**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{root}", "ANNOUNCE_CELLS": "1"})
        guard = threading.Timer(900, os.killpg, (p.pid, signal.SIGKILL))  # a hang ends the test, nothing else
        guard.start()
        try:
            begun = set()
            for line in p.stdout:  # blocks until a line comes; ends when every process has ended
                if line.startswith("process ends "):  # before its cells began, or before the others': a failure
                    break
                if line.startswith("cells begin "):
                    begun.add(int(line.split()[-1]))
                    if len(begun) == 3:
                        break
            workers = [c for c in _children(p.pid) if "--batch-worker" in Path(f"/proc/{c}/cmdline").read_text()]
            assert p.pid in begun and begun == {p.pid, *workers} and len(workers) == 2, \
                (begun, workers, (tmp_path / "stderr").read_text()[-2000:])
            p.send_signal(signal.SIGTERM)
            p.communicate()
        finally:
            guard.cancel()
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    said = (tmp_path / "stderr").read_text()
    assert p.returncode == 130 and said.count("interrupted by SIGTERM: every worker stopped") == 3, said[-2000:]
    assert not [w for w in workers if _alive(w)], "workers still running"  # each waited for (reaped) before it exited


def test_every_subcommand_is_dispatched_and_named_in_the_docstring():
    import argparse

    from rotnet_repro import cli

    subs = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subs.choices) == set(cli.COMMANDS)
    first = cli.__doc__.splitlines()[0]
    assert all(name in first for name in subs.choices)


def test_a_folder_where_a_results_csv_belongs_and_a_closed_pipe_give_no_traceback(tmp_path, capsys):
    import subprocess
    import sys

    (tmp_path / "results" / "cpu.csv").mkdir(parents=True)
    assert main(["tables", "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "cpu.csv" in err[0]
    p = subprocess.run(f"{sys.executable} -m rotnet_repro plan | head -c 10", shell=True, capture_output=True,
                       text=True, timeout=300)
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr


def test_a_weights_manifest_of_the_wrong_shape_is_one_line(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    for bad in ("[]", '{"a": 1}', '{"paper/x/model.pt": "not a dict"}'):
        (tmp_path / "runs" / "weights.json").write_text(bad)
        assert main(["weights", "restore", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "weights.json is damaged" in err[0]


def test_weights_restore_replaces_a_damaged_weight_file_and_list_says_it_is_damaged(tmp_path, capsys):
    """A listed weight file present with other bytes: `weights list` says so, and a plain `weights restore` keeps it
    aside and writes the listed bytes back from the git history (a clone of this repository)."""
    import subprocess

    from rotnet_repro.weights import Manifest, sha256

    root = Path(__file__).resolve().parent.parent
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    m = Manifest(clone / "runs")
    key = next(k for k, e in sorted(m.entries.items()) if k.endswith("snapshot_20.pt"))
    assert main(["weights", "restore", key, "--out", str(clone)]) == 0
    (clone / "runs" / key).write_bytes(b"not the weights")
    capsys.readouterr()
    assert main(["weights", "list", "--out", str(clone)]) == 0
    assert f"{key}" in (out := capsys.readouterr().out) and "damaged" in out.split(key)[1].splitlines()[0]
    assert main(["weights", "restore", "--out", str(clone)]) == 0
    assert sha256(clone / "runs" / key) == m.entries[key]["sha256"]
    assert (clone / "runs" / (key + ".damaged")).read_bytes() == b"not the weights"


def test_processes_on_one_new_out_all_find_it_writable(tmp_path):
    """`run`s started together on one new --out (workers, or runs side by side): each probe has a name of its own,
    so none deletes another's and reads a false "not writable". The threads start at one barrier; whatever order
    they then run in, every call must pass (and leave no probe behind)."""
    import threading

    from rotnet_repro.request import check_writable

    for round_ in range(10):
        out = tmp_path / f"new-{round_}" / "out"
        gate, failed = threading.Barrier(8), []

        def check(out=out, gate=gate, failed=failed):
            gate.wait()
            try:
                check_writable(out)
            except Exception as e:  # noqa: BLE001 - every failure is the test's
                failed.append(e)

        threads = [threading.Thread(target=check) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failed, failed
        assert out.is_dir() and not list(out.iterdir())


def test_a_probe_left_by_an_older_version_does_not_matter(tmp_path):
    from rotnet_repro.request import check_writable

    (tmp_path / ".write-test").write_text("")  # the fixed name every process once shared
    check_writable(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [".write-test"]


def test_an_out_that_cannot_be_written_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "sub"  # under a regular file: no folder can be made there (root too)
    assert main(["run", "table3_comparison", "--profile", "smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == f"error: --out {out} is not writable (Not a directory): pass a folder you " \
                                       "can write to"
    assert not out.exists()
