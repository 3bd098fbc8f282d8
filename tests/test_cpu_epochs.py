"""scripts/cpu-epochs.sh on the smoke profile: a RotNet resumed one epoch at a time, its checkpoint stored in the
git history after each, stopped once its weights and record are written.

The script polls for an epoch's end (the checkpoint's mtime, in seconds) and then stops the run: how far a run gets
between two polls depends on the machine's speed. Here each `run` the script starts holds at every epoch's end
(after its checkpoint is written) until the script stops it, and gives the RotNet's checkpoint an mtime of its own
per epoch: the script sees every epoch, whatever the timing, and the sequence of stores is the same on any machine.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rotnet_repro.config import PROFILES
from rotnet_repro.experiments import EXPERIMENTS

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("bash") is None or shutil.which("git") is None, reason="needs bash, git")]


HOLD = textwrap.dedent("""
    # `python -m rotnet_repro ...`, but each checkpoint written holds the process until it is stopped (SIGINT)
    import itertools, os, runpy, signal, sys, time
    from pathlib import Path

    from rotnet_repro import engine

    assert sys.argv[1:3] == ["-m", "rotnet_repro"], sys.argv
    save, watched = engine._save_checkpoint, Path(os.environ["WATCHED_CKPT"]).resolve()

    def held(r, epochs_done):
        save(r, epochs_done)
        if Path(r.t.ckpt).resolve() != watched:  # a head (after the RotNet's record): the script stops it there
            while True:
                signal.pause()
        # the script compares mtimes in whole seconds, read when it started this process: a new value until it
        # stops it, so that it sees this epoch's end whenever it looks (whatever it read before), and never
        # mistakes two epochs written in one second for one
        for i in itertools.count(1):
            os.utime(watched, (epochs_done * 10**6 + i,) * 2)
            time.sleep(0.05)

    engine._save_checkpoint = held
    sys.argv = [sys.argv[0], *sys.argv[3:]]
    runpy.run_module("rotnet_repro", run_name="__main__", alter_sys=True)
""")


def _stored_checkpoint_epochs(repo: Path, key: str) -> list[int]:
    """The epoch of the checkpoint `key` in each commit of runs/weights.json that lists it, oldest first, repeats
    dropped."""
    commits = subprocess.run(["git", "log", "--reverse", "--format=%H", "--", "runs/weights.json"], cwd=repo,
                             capture_output=True, text=True, check=True).stdout.split()
    epochs = []
    for c in commits:
        listed = json.loads(subprocess.run(["git", "show", f"{c}:runs/weights.json"], cwd=repo, capture_output=True,
                                           text=True, check=True).stdout)
        if key in listed and (not epochs or epochs[-1] != listed[key]["epoch"]):
            epochs.append(listed[key]["epoch"])
    return epochs


def test_a_run_is_trained_stored_and_stopped_before_its_heads(tmp_path):
    profile = PROFILES["smoke"]
    cells = [c for c in EXPERIMENTS["table3_comparison"].build(profile, 0, 0) if c.row == "RotNet + non-linear"]
    rotnet = cells[0].spec.backbone
    folder = tmp_path / "runs" / "smoke" / rotnet.run_id
    (tmp_path / "hold.py").write_text(HOLD)
    py = tmp_path / "python"
    py.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{tmp_path / "hold.py"}" "$@"\n')
    py.chmod(0o755)
    env = {**os.environ, "PY": str(py), "PYTHONPATH": str(ROOT), "POLL": "0.2", "WATCHED_CKPT": str(folder / "ckpt.pt"),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "start"], cwd=tmp_path, env=env, check=True)
    (tmp_path / "logs").mkdir()
    r = subprocess.run(["bash", str(ROOT / "scripts" / "cpu-epochs.sh"), f"runs/smoke/{rotnet.run_id}",
                        "table3_comparison", "--profile", "smoke", "--rows", r"^RotNet \+ non-linear$"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    said = re.findall(r"^\d\d:\d\d:\d\d (.*)$", r.stdout, re.M)  # the script's lines, after their time
    epochs = profile.pretext_epochs
    # stopped and started again after every epoch, then once more when the weights and record were written
    assert said == ["an epoch ended: stopping to store its checkpoint"] * epochs + \
        ["final weights and record written: stopping before the heads"], r.stdout[-2000:]
    assert (folder / "model.pt").exists()
    assert json.loads((folder / "result.json").read_text())["run_id"] == rotnet.run_id
    listed = json.loads((tmp_path / "runs" / "weights.json").read_text())
    assert f"smoke/{rotnet.run_id}/model.pt" in listed
    log = subprocess.run(["git", "log", "--format=%s"], cwd=tmp_path, capture_output=True, text=True).stdout
    assert "committed to the history" in log  # each store is a commit
    # the checkpoint after every epoch was stored (in the history), with its epoch, in order
    assert _stored_checkpoint_epochs(tmp_path, f"smoke/{rotnet.run_id}/ckpt.pt") == list(range(1, epochs + 1))
