"""`run`s side by side on one output folder: started together on a new --out, each exits 0 and their rows together
equal one process's (what `--workers N` and the README's "split the work" do)."""

import os
import subprocess
import sys
from pathlib import Path

from rotnet_repro.results import read_results

KEY = ["experiment", "row", "column", "run_id", "metric", "selection", "value", "epoch"]


def _run(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-m", "rotnet_repro", "run", "table2_rotations", "--profile", "smoke",
                             "--device", "cpu", "--threads", "1", "--out", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _rows(out: Path):
    df = read_results(out / "results" / "smoke.csv")
    return df[KEY].astype(str).sort_values(KEY).reset_index(drop=True)


def test_four_runs_started_together_on_one_new_out_all_succeed_and_write_one_process_rows(tmp_path):
    alone = _run(tmp_path / "alone")
    log, _ = alone.communicate(timeout=900)
    assert alone.returncode == 0, log
    together = tmp_path / "new" / "out"  # neither exists: every process makes it
    procs = [_run(together) for _ in range(4)]  # whatever order they get the CPU in, the outcome is the same
    logs = [p.communicate(timeout=1800)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(logs)
    assert _rows(together).equals(_rows(tmp_path / "alone"))
    runs = list((together / "runs" / "smoke").glob("*/result.json"))
    assert len(runs) == len({r.parent.name for r in runs}) == len(list((tmp_path / "alone" / "runs" / "smoke")
                                                                        .glob("*/result.json")))
