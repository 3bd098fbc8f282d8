"""The GPU windows rehearsed on an emulated device: `gpu/paper.sh` played window after window on the smoke profile,
with the device's limits and nothing kept between windows but the repository.

The emulated device: each call runs in a copy of the checkout's tracked tree plus what the call carries (at most
64 MiB together), in a machine folder that lasts one window (the stage and work folders), and sends back at most
8 files of at most 16 MiB. Its speed is the plan's prices (every epoch PRICE_EPOCH_S seconds, `train`'s BUDGET),
so that what the plan says a call trains and what the call trains can be compared exactly. Between windows: the
checkout is a fresh clone of home, and what each call sent back is unpacked and committed there at once.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT, BACK_FILES, BACK_BYTES = 64 * 2**20, 8, 16 * 2**20
# Table 1's 3- and 5-block rows: 2 RotNets and 8 heads of 2 epochs each, at 100 s an epoch: at least 4 windows
STEPS, PRICE = r"^Table 1: 3- and 5-block", "100"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("git") is None or shutil.which("bash") is None
                                or shutil.which("xz") is None, reason="needs git, bash and xz")]


def git(repo, *args):
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


class Device:
    """An emulated device machine (see the module's docstring)."""

    def __init__(self, tmp: Path, env: dict):
        self.tmp, self.env, self.calls, self.window = tmp, env, 0, 0

    def new_window(self) -> None:
        self.window += 1
        self.machine = self.tmp / f"machine{self.window}"  # what lasts between the calls of one window

    def call(self, checkout: Path, carry: list[str], *commands: list[str], **env) -> tuple[str, Path]:
        self.calls += 1
        tree = [f for f in git(checkout, "ls-files", "-z").split("\0") if f]
        size = sum((checkout / f).stat().st_size for f in tree) + sum((checkout / c).stat().st_size for c in carry)
        assert size <= LIMIT, f"call {self.calls} carries {size} bytes"
        there = self.tmp / f"call{self.calls}"  # a copy of the tracked tree and the carried paths
        for f in tree + carry:
            (there / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(checkout / f, there / f)
        out = self.tmp / f"out{self.calls}"
        out.mkdir()
        e = {**os.environ, **self.env, "STAGE": str(self.machine / "stage"), "WORK": str(self.machine / "work"),
             "OUT": str(out), **{k: str(v) for k, v in env.items()}}
        log = ""
        for cmd in commands:
            r = subprocess.run(["bash", "gpu/paper.sh", *cmd], capture_output=True, text=True, env=e, cwd=there)
            log += r.stdout + r.stderr
            assert r.returncode == 0, f"call {self.calls}: {cmd}: rc {r.returncode}\n{log[-4000:]}"
        back = list(out.iterdir())
        assert len(back) <= BACK_FILES and all(p.stat().st_size <= BACK_BYTES for p in back)
        shutil.rmtree(there)
        return log, out


def sh(repo: Path, env: dict, *args, **more) -> str:
    r = subprocess.run(["bash", "gpu/paper.sh", *args], capture_output=True, text=True, cwd=repo,
                       env={**os.environ, **env, **{k: str(v) for k, v in more.items()}})
    assert r.returncode == 0, f"gpu/paper.sh {args}: rc {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


def trained(log: str) -> list[str]:
    """The runs a train call trained (finished or stopped at the call's end), in order."""
    return re.findall(r"^((?:rotnet|classifier|supervised)-[0-9a-f]{10}): (?:finished \(|stopped \()", log, re.M)


def final_weights(repo: Path) -> dict[str, str]:
    m = json.loads((repo / "runs" / "weights.json").read_text()) if (repo / "runs" / "weights.json").exists() else {}
    return {k: e["sha256"] for k, e in m.items() if not k.endswith("ckpt.pt")}


def test_the_smoke_protocol_through_several_windows_trains_exactly_the_plan(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    git(home, "init", "-q", "-b", "main")
    git(home, "config", "user.email", "t@example.org")
    git(home, "config", "user.name", "t")
    (home / ".gitignore").write_text("/runs/*/*/*.pt\n/.device-data/\n")
    shutil.copytree(ROOT / "gpu", home / "gpu")
    git(home, "add", ".")
    git(home, "commit", "-q", "-m", "init")
    data = tmp_path / "data" / "cifar-10-batches-py"
    data.mkdir(parents=True)
    (data / "data_batch_1").write_bytes(os.urandom(40_000))
    env = {"PY": sys.executable, "PYTHONPATH": str(ROOT), "PROFILE": "smoke", "DEVICE": "cpu", "DATA": str(data.parent),
           "STEPS": STEPS, "PRICE_EPOCH_S": PRICE}
    predicted = int(re.search(r"\((\d+) window\(s\)", sh(home, env, "plan")).group(1))
    assert predicted >= 4
    device, finished, weights = Device(tmp_path, env), [], {}
    for n in range(1, predicted + 2):
        clone = tmp_path / f"clone{n}"  # nothing between windows but the repository
        git(tmp_path, "clone", "-q", str(home), str(clone))
        git(clone, "config", "user.email", "t@example.org")
        git(clone, "config", "user.name", "t")
        sh(clone, env, "prepare")
        window = json.loads((clone / ".device-data" / "cache" / "window.json").read_text())
        if not window["runs"]:
            break
        parts = json.loads((clone / ".device-data" / "index.json").read_text())["parts"]
        device.new_window()
        for p in parts[:-1]:
            device.call(clone, [f".device-data/{p['name']}", ".device-data/index.json"], ["stage", p["name"][-2:]])
        calls = [c for c in window["calls"] if c["what"] == "train"]
        here = []
        for i, c in enumerate(calls):
            first = [["stage", parts[-1]["name"][-2:]]] if i == 0 else []
            carry = [f".device-data/{parts[-1]['name']}", ".device-data/index.json"] if i == 0 else []
            log, out = device.call(clone, carry, *first, ["train", str(c["seconds"])], BUDGET=c["train_s"])
            here += trained(log)
            sh(clone, env, "unpack", str(out), DEST=clone)  # committed at once
        # the window trained exactly its plan, in its order (a run cut between its calls counted once)
        assert list(dict.fromkeys(here)) == [r["run_id"] for r in window["runs"]], n
        ckpts = {k.split("/")[1]: e["epoch"] for k, e in
                 json.loads((clone / "runs" / "weights.json").read_text()).items() if k.endswith("ckpt.pt")}
        for r in window["runs"]:
            if not r["continues"]:
                finished.append(r["run_id"])
            else:  # cut at the window's end after the whole epochs the plan gave it, no more, no fewer
                total = 2  # the smoke profile's epochs, every schedule
                done = total - r["epochs_left"] + int(r["planned_s"] // r["epoch_s"] + 1e-9)
                assert ckpts.get(r["run_id"]) == done, (n, r, ckpts)
        # no committed weight file changes its bytes
        now = final_weights(clone)
        assert all(now[k] == v for k, v in weights.items() if k in now) and set(weights) <= set(now)
        weights = now
        git(home, "pull", "-q", "--no-rebase", str(clone), "main")
    else:
        pytest.fail(f"the protocol did not finish within {predicted} + 1 windows")
    assert device.window <= predicted + 1
    assert len(finished) == len(set(finished)), "a run trained twice"
    runs = [p for p in (home / "runs" / "smoke").glob("*-*") if (p / "spec.json").exists()]
    assert len(runs) == 10 and all((p / "result.json").exists() for p in runs)
    assert {p.name for p in runs} == set(finished)
    for p in runs:  # each run's epochs once, in order, whatever the windows that trained them
        history = json.loads((p / "result.json").read_text())["history"]
        assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ROTNET_SLOW") != "1", reason="minutes of work: set ROTNET_SLOW=1")
def test_the_rehearsal_script_on_the_projects_own_tree_finishes_as_predicted(tmp_path):
    """scripts/rehearse-windows.py on this checkout's committed HEAD (a fresh clone per window, its own .gitignore,
    the staging in small parts, the device on the plan's clock): Fig. 5(a)'s steps at 150 s an epoch (runs cut
    between windows), whose later windows stage a snapshot and its RotNet's weights (two files of one folder) more
    than once, finish in the windows plan predicts. Its clock is the plan's: the outcome does not depend on this
    machine's speed."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "rehearse-windows.py"), "--repo", str(ROOT),
                        "--scratch", str(tmp_path / "r"), "--steps", r"^Fig\. 5\(a\)", "--price", "150"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    predicted = int(re.search(r"^predicted: (\d+) window", r.stdout, re.M).group(1))
    assert re.search(rf"^finished: \d+ runs in {predicted} window\(s\); predicted {predicted}: as predicted", r.stdout, re.M)
