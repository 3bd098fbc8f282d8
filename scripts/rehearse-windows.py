#!/usr/bin/env python3
"""Rehearse the GPU windows on this machine: `gpu/paper.sh` played window after window on the project's own tree
and .gitignore, the device emulated here, until the planned protocol is finished; it must take exactly the windows
`plan` predicts.

    scripts/rehearse-windows.py [--repo .] [--scratch /tmp/rehearsal] [--steps REGEX] [--price S] [--chunk BYTES]

What is real: the repository (a `git clone` of --repo's committed HEAD is "home"; every window works in a fresh
clone of home and what it commits is pulled back into home), its .gitignore (runs/smoke is ignored), the scripts
and commands of docs/gpu-windows.md, the staging in several parts (--chunk bytes each: the data and the weights a
window stages take several parts), the machine side's extraction and packing, `unpack` and its commits.

What is emulated: the device. Each call runs in a copy of the clone's tracked tree plus what it carries (at most
64 MiB together), in a machine folder that lasts one window (the stage and work folders), and sends back at most 8
files of at most 16 MiB. The device's clock is the plan's: every epoch costs --price seconds (`train`'s BUDGET),
and the window's device time is counted call by call as the planner prices it (start-up, each staging call, a gap
before every call but the first, each training call up to its timeout_s): a window may not go past 15 minutes.
The last training call is sized from the device time left on that clock (`gpu/paper.sh last LEFT_S`), as it is
sized on a real device. The smoke profile trains on synthetic data; the CIFAR-10 that is staged is --data-bytes
of random bytes (only its size matters to the staging).

Checked: every window trains exactly its plan's list in its order; a run cut at a window's end has exactly the
epochs the plan gave it; no run trains twice; no committed weight file changes its bytes; the protocol finishes in
exactly the predicted windows. The log says, per window, its parts, what it staged (two files of one run folder,
Fig. 5(a)'s snapshots and their RotNet's weights, are marked) and its device time. Exit 0 when all hold, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from rotnet_repro.planner import (  # noqa: E402  (the planner's prices of a window's calls)
    CALL_GAP_S,
    CALL_S,
    END_MARGIN_S,
    STAGE_CALL_S,
    START_S,
    WINDOW_S,
)

LIMIT, BACK_FILES, BACK_BYTES = 64 * 2**20, 8, 16 * 2**20
# Table 1's 3- and 5-block rows, then Fig. 5(a): heads on a RotNet's snapshots and on its final weights, so that
# later windows stage two files of one run folder (a snapshot and model.pt) more than once
STEPS = r"^Table 1: 3- and 5-block|^Fig\. 5\(a\)"


class Failed(Exception):
    pass


def git(repo: Path, *args: str) -> str:
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if r.returncode:
        raise Failed(f"git {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def say(msg: str) -> None:
    print(msg, flush=True)


class Device:
    """The emulated device (see the module's docstring): one window at a time, its clock the plan's."""

    def __init__(self, scratch: Path, env: dict):
        self.scratch, self.env, self.calls, self.window = scratch, env, 0, 0

    def new_window(self) -> None:
        self.window += 1
        self.machine = self.scratch / f"machine{self.window}"  # what lasts between the calls of one window
        self.clock, self.calls_here = float(START_S), 0

    def left(self) -> float:
        return WINDOW_S - self.clock

    def call(self, checkout: Path, carry: list[str], commands: list[list[str]], charge_s: float, **env) -> tuple[str, Path]:
        """Run `commands` (gpu/paper.sh's arguments) as one call; the device clock is charged `charge_s` (the call's
        timeout_s as the planner prices it) and the gap before it."""
        self.calls += 1
        self.clock += (CALL_GAP_S if self.calls_here else 0) + charge_s
        self.calls_here += 1
        if self.clock + END_MARGIN_S > WINDOW_S + 1e-6:
            raise Failed(f"window {self.window}: call {self.calls_here} ends at {self.clock:.0f} s of device time, past "
                         f"{WINDOW_S} s less the {END_MARGIN_S} s margin")
        tree = [f for f in git(checkout, "ls-files", "-z").split("\0") if f]
        size = sum((checkout / f).stat().st_size for f in tree) + sum((checkout / c).stat().st_size for c in carry)
        if size > LIMIT:
            raise Failed(f"call {self.calls} carries {size} bytes, over {LIMIT}")
        there = self.scratch / f"call{self.calls}"  # a copy of the tracked tree and the carried paths
        for f in tree + carry:
            (there / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(checkout / f, there / f)
        out = self.scratch / f"out{self.calls}"
        out.mkdir()
        e = {**os.environ, **self.env, "PYTHONPATH": str(there), "STAGE": str(self.machine / "stage"),
             "WORK": str(self.machine / "work"), "OUT": str(out), **{k: str(v) for k, v in env.items()}}
        log = ""
        for cmd in commands:
            r = subprocess.run(["bash", "gpu/paper.sh", *cmd], capture_output=True, text=True, env=e, cwd=there)
            log += r.stdout + r.stderr
            if r.returncode:
                raise Failed(f"call {self.calls}: gpu/paper.sh {' '.join(cmd)}: rc {r.returncode}\n{log[-4000:]}")
        back = list(out.iterdir())
        if len(back) > BACK_FILES or any(p.stat().st_size > BACK_BYTES for p in back):
            raise Failed(f"call {self.calls} sends back {len(back)} files, over the limits")
        shutil.rmtree(there)
        return log, out


def sh(repo: Path, env: dict, *args: str, **more) -> str:
    e = {**os.environ, **env, "PYTHONPATH": str(repo), **{k: str(v) for k, v in more.items()}}
    r = subprocess.run(["bash", "gpu/paper.sh", *args], capture_output=True, text=True, cwd=repo, env=e)
    if r.returncode:
        raise Failed(f"gpu/paper.sh {' '.join(args)} in {repo}: rc {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout + r.stderr


def trained(log: str) -> list[str]:
    """The runs a train call trained (finished or stopped at the call's end), in order."""
    return re.findall(r"^((?:rotnet|classifier|supervised)-[0-9a-f]{10}): (?:finished \(|stopped \()", log, re.M)


def listed(repo: Path) -> dict:
    f = repo / "runs" / "weights.json"
    return json.loads(f.read_text()) if f.exists() else {}


def shared_folders(stage: list[str]) -> dict[str, list[str]]:
    """The run folders a window stages two files or more of."""
    by: dict[str, list[str]] = {}
    for key in stage:
        by.setdefault(key.rsplit("/", 1)[0], []).append(key.rsplit("/", 1)[1])
    return {d: f for d, f in by.items() if len(f) > 1}


def rehearse(a: argparse.Namespace) -> int:
    scratch = Path(a.scratch)
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    home = scratch / "home"
    git(scratch, "clone", "-q", str(Path(a.repo).resolve()), str(home))
    git(home, "config", "user.email", "rehearsal@example.org")
    git(home, "config", "user.name", "rehearsal")
    branch = git(home, "rev-parse", "--abbrev-ref", "HEAD").strip()
    data = scratch / "data" / "cifar-10-batches-py"
    data.mkdir(parents=True)
    (data / "data_batch_1").write_bytes(os.urandom(a.data_bytes))
    env = {"PY": sys.executable, "PROFILE": "smoke", "DEVICE": "cpu", "DATA": str(data.parent), "STEPS": a.steps,
           "PRICE_EPOCH_S": str(a.price), "CHUNK_BYTES": str(a.chunk)}
    sh(home, env, "prepare")  # the data as staged, measured (.device-data/index.json, ignored): the plan's parts
    said = sh(home, env, "plan")
    predicted = int(re.search(r"\((\d+) window\(s\)", said).group(1))
    say(f"home: a clone of {a.repo} at {git(home, 'rev-parse', '--short', 'HEAD').strip()} ({branch}); "
        f"steps {a.steps!r}, every epoch {a.price:g} s, parts of {a.chunk} bytes, {a.data_bytes} bytes of data")
    say(said.splitlines()[0])
    say(f"predicted: {predicted} window(s)")
    device, finished, weights, shared = Device(scratch, env), [], {}, []
    t0 = time.time()
    for n in range(1, predicted + 3):
        clone = scratch / f"clone{n}"  # nothing between windows but the repository
        git(scratch, "clone", "-q", str(home), str(clone))
        git(clone, "config", "user.email", "rehearsal@example.org")
        git(clone, "config", "user.name", "rehearsal")
        sh(clone, env, "prepare")
        window = json.loads((clone / ".device-data" / "cache" / "window.json").read_text())
        if not window["runs"]:
            say(f"window {n}: nothing left to train: the protocol is finished")
            break
        if n > predicted:
            raise Failed(f"window {n} has runs to train, past the {predicted} predicted")
        index = json.loads((clone / ".device-data" / "index.json").read_text())
        parts = index["parts"]
        if len(parts) > window["staging_calls"]:
            raise Failed(f"window {n}: prepare made {len(parts)} parts, the plan counted {window['staging_calls']}")
        # fewer parts than planned is allowed: the plan counts a staged weight file's bytes as they are, and xz packs
        # it a little smaller; the window then has a staging call's time more than planned
        two = shared_folders(window["stage"])
        if two:
            shared.append(n)
        device.new_window()
        for p in parts[:-1]:
            device.call(clone, [f".device-data/{p['name']}", ".device-data/index.json"], [["stage", p["name"][-2:]]],
                        STAGE_CALL_S)
        calls = [c for c in window["calls"] if c["what"] == "train"]
        here, sized = [], []
        for i, c in enumerate(calls):
            if i == 0:
                carry = [f".device-data/{parts[-1]['name']}", ".device-data/index.json"]
                cmds, seconds, budget = [["stage", parts[-1]["name"][-2:]]], c["seconds"], c["train_s"]
                charge = min(c["seconds"] + STAGE_CALL_S, CALL_S)  # its timeout_s, as prepare prints it
            else:  # the last call, sized from the device time left, as on a real device
                line = sh(clone, env, "last", f"{device.left():.0f}").strip()
                m = re.match(r"gpu/paper\.sh train (\d+) +\(timeout_s (\d+)", line)
                if m is None:
                    raise Failed(f"window {n}: `last {device.left():.0f}` said {line!r}; the plan has a call of "
                                 f"{c['seconds']} s")
                seconds, charge = int(m.group(1)), int(m.group(2))
                budget = c["train_s"] - (c["seconds"] - seconds)
                sized.append(f"last {device.left():.0f} -> train {seconds}"
                             + (f" (the plan: {c['seconds']})" if seconds != c["seconds"] else ""))
                if seconds < c["seconds"]:
                    raise Failed(f"window {n}: the last call sized {seconds} s from the time left, the plan {c['seconds']}")
                carry = []
            if i == 0 and len(parts) < window["staging_calls"]:
                sized.append(f"{window['staging_calls'] - len(parts)} staging call(s) fewer than planned")
            log, out = device.call(clone, carry, [*cmds, ["train", str(seconds)]] if i == 0 else [["train", str(seconds)]],
                                   charge, BUDGET=budget)
            cmds = []
            here += trained(log)
            said = sh(clone, env, "unpack", str(out), DEST=str(clone))  # committed at once
            if "git-ignored" not in said:
                raise Failed(f"window {n}: unpack did not say that runs/smoke is ignored:\n{said[-2000:]}")
        planned = [r["run_id"] for r in window["runs"]]
        if list(dict.fromkeys(here)) != planned:
            raise Failed(f"window {n} trained {list(dict.fromkeys(here))}, the plan {planned}")
        if git(clone, "status", "--porcelain", "--untracked-files=no").strip():
            raise Failed(f"window {n}: tracked files left uncommitted after unpack")
        ckpts = {k.split("/")[1]: e["epoch"] for k, e in listed(clone).items() if k.endswith("ckpt.pt")}
        for r in window["runs"]:
            if not r["continues"]:
                finished.append(r["run_id"])
                if not (clone / "runs" / "smoke" / r["run_id"] / "result.json").exists():
                    raise Failed(f"window {n}: {r['run_id']} has no record after unpack")
            else:  # cut at the window's end after whole epochs: at least one, no more than its planned seconds hold
                # (planned_s adds its seconds in both calls, a call too short for one of its epochs included)
                resumed = 2 - r["epochs_left"]  # smoke: 2 epochs each
                most = resumed + int(r["planned_s"] // r["epoch_s"] + 1e-9)
                if not resumed < (ckpts.get(r["run_id"]) or 0) <= min(most, 1):
                    raise Failed(f"window {n}: {r['run_id']} stored after epoch {ckpts.get(r['run_id'])}, planned "
                                 f"{resumed + 1} to {min(most, 1)}")
        now = {k: e["sha256"] for k, e in listed(clone).items() if not k.endswith("ckpt.pt")}
        if any(now.get(k, v) != v for k, v in weights.items()) or not set(weights) <= set(now):
            raise Failed(f"window {n}: a committed weight file changed or went missing")
        weights = now
        git(home, "pull", "-q", "--ff-only", str(clone), branch)
        say(f"window {n}: {len(parts)} parts ({', '.join(str(p['bytes']) for p in parts)} bytes); stages "
            f"{', '.join(window['stage']) or 'the data alone'}"
            + (f" [two files of one folder: {', '.join(f'{d}: {len(f)}' for d, f in two.items())}]" if two else "")
            + f"; trained {len(planned)} run(s) as planned ({', '.join(planned)}); {'; '.join(sized)}; "
            f"device time {device.clock + END_MARGIN_S:.0f} of {WINDOW_S} s (margin included); "
            f"{time.time() - t0:.0f} s here so far")
    else:
        raise Failed(f"the protocol did not finish within {predicted} + 2 windows")
    if len(finished) != len(set(finished)):
        raise Failed("a run trained twice")
    runs = [p for p in (home / "runs" / "smoke").glob("*-*") if (p / "spec.json").exists()]
    if {p.name for p in runs} != set(finished) or not all((p / "result.json").exists() for p in runs):
        raise Failed("home's records are not the runs the windows finished")
    tracked_pt = [f for f in git(home, "ls-files", "runs/smoke").split() if f.endswith(".pt")]
    if tracked_pt:
        raise Failed(f"weight files in the tracked tree: {tracked_pt}")
    say(f"windows staging two files of one run folder: {shared or 'none'}")
    say(f"finished: {len(finished)} runs in {device.window} window(s); predicted {predicted}: "
        f"{'as predicted' if device.window == predicted else 'NOT as predicted'} ({time.time() - t0:.0f} s here)")
    if not shared or len(shared) < 2:
        raise Failed("no two windows staged two files of one run folder: choose steps that do")
    return 0 if device.window == predicted else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", default=str(ROOT), help="the repository to rehearse (its committed HEAD; default: this one)")
    ap.add_argument("--scratch", default="/tmp/rehearsal", help="a scratch folder, emptied first (default /tmp/rehearsal)")
    ap.add_argument("--steps", default=STEPS, help=f"the protocol's steps to play (plan --steps; default {STEPS!r})")
    ap.add_argument("--price", type=float, default=120.0, help="seconds of device time per epoch (default 120)")
    ap.add_argument("--chunk", type=int, default=180_000, help="bytes per staging part (default 180000)")
    ap.add_argument("--data-bytes", type=int, default=500_000, help="bytes of data staged (default 500000)")
    a = ap.parse_args()
    try:
        return rehearse(a)
    except Failed as e:
        say(f"FAILED: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
