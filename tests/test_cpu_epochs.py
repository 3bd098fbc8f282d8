"""scripts/cpu-epochs.sh on the smoke profile: a RotNet resumed one epoch at a time, its checkpoint stored in the
git history after each, stopped once its weights and record are written."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rotnet_repro.config import PROFILES
from rotnet_repro.experiments import EXPERIMENTS

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("git") is None, reason="needs bash, git")


def test_a_run_is_trained_stored_and_stopped_before_its_heads(tmp_path):
    cells = [c for c in EXPERIMENTS["table3_comparison"].build(PROFILES["smoke"], 0, 0)
             if c.row == "RotNet + non-linear"]
    rotnet = cells[0].spec.backbone
    env = {**os.environ, "PY": sys.executable, "PYTHONPATH": str(ROOT), "POLL": "0.2", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "start"], cwd=tmp_path, env=env, check=True)
    (tmp_path / "logs").mkdir()
    r = subprocess.run(["bash", str(ROOT / "scripts" / "cpu-epochs.sh"), f"runs/smoke/{rotnet.run_id}",
                        "table3_comparison", "--profile", "smoke", "--rows", r"^RotNet \+ non-linear$"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "an epoch ended: stopping to store its checkpoint" in r.stdout  # stopped and started again
    folder = tmp_path / "runs" / "smoke" / rotnet.run_id
    assert (folder / "model.pt").exists()
    assert json.loads((folder / "result.json").read_text())["run_id"] == rotnet.run_id
    listed = json.loads((tmp_path / "runs" / "weights.json").read_text())
    assert f"smoke/{rotnet.run_id}/model.pt" in json.dumps(listed)
    log = subprocess.run(["git", "log", "--format=%s"], cwd=tmp_path, capture_output=True, text=True).stdout
    assert "committed to the history" in log  # each store is a commit
    manifests = subprocess.run(["git", "log", "-p", "--", "runs/weights.json"], cwd=tmp_path, capture_output=True,
                               text=True).stdout
    assert '"epoch": 1' in manifests  # the checkpoint after epoch 1 was stored, with its epoch
