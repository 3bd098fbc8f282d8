"""gpu/paper.sh end to end on the CPU: the data split into call-sized parts and staged back, the smoke profile
trained in place of the paper one, the results packed within the limits and unpacked into a checkout."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "gpu" / "paper.sh"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("bash") is None or not (ROOT / ".git").exists(),
                                reason="needs bash and a git checkout")]


def sh(*args, **env):
    e = {**os.environ, "PY": sys.executable, "PYTHONPATH": str(ROOT), **{k: str(v) for k, v in env.items()}}
    r = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=e)
    assert r.returncode == 0, f"gpu/paper.sh {args}: rc {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def test_stage_checks_itself_then_train_runs_the_plan_and_unpack_takes_it_in(tmp_path):
    data = tmp_path / "data" / "cifar-10-batches-py"
    data.mkdir(parents=True)
    (data / "data_batch_1").write_bytes(os.urandom(250_000))
    parts, stage, work, out, dest = (tmp_path / n for n in ("parts", "stage", "work", "out", "dest"))
    out.mkdir()
    common = dict(PARTS=parts, STAGE=stage, WORK=work, OUT=out, DEST=dest, PROFILE="smoke", DEVICE="cpu",
                  STEPS="^Table 3")
    said = sh("prepare", DATA=data.parent, CHUNK_BYTES=100_000, **common)
    assert "gpu/paper.sh stage 02 && gpu/paper.sh train 585" in said
    names = sorted(p.name for p in parts.iterdir() if p.name.startswith("part."))
    assert names == ["part.00", "part.01", "part.02"]
    sh("stage", "00", **common)
    r = run("stage", "02", **common)  # part 01 missing on the machine: said, and part 02 is kept
    assert r.returncode == 2 and "part(s) 01 are not on this machine" in r.stderr
    sh("stage", "01", **common)
    sh("stage", "02", **common)
    sh("stage", "00", **common)  # a repeated call is harmless
    good = (parts / "part.01").read_bytes()
    (parts / "part.01").write_bytes(good[:-10])
    r = run("stage", "01", **common)
    assert r.returncode == 2 and "SHA-256 differs" in r.stderr
    (parts / "part.01").write_bytes(good)
    with open(tmp_path / "ref.tar", "wb") as f:
        subprocess.run(["tar", "cf", "-", "-C", str(data.parent), "cifar-10-batches-py"], stdout=f, check=True)
    window = json.loads((parts / "cache" / "window.json").read_text())
    assert window["runs"] and window["steps"] == "^Table 3"

    log = sh("train", "3600", **common)
    assert (stage / "cifar-10-batches-py" / "data_batch_1").read_bytes() == (data / "data_batch_1").read_bytes()
    done = [line.split(":")[0] for line in log.splitlines() if ": finished (" in line]
    assert done == [r["run_id"] for r in window["runs"]]  # exactly the plan's list, in its order
    back = sorted(out.iterdir())
    assert 1 <= len(back) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in back)

    sh("unpack", str(out), **common)
    trained = {p.name for p in (work / "runs" / "smoke").iterdir() if (p / "result.json").exists()}
    assert trained == set(done) == {p.name for p in (dest / "runs" / "smoke").iterdir() if (p / "result.json").exists()}
    rows = pd.read_csv(dest / "results" / "smoke.csv")
    assert set(rows.run_id) == trained and (rows.profile == "smoke").all()
    r = run("train", "60", **{**common, "STAGE": str(tmp_path / "fresh")})  # a fresh machine: says what to do
    assert r.returncode == 2 and "run the stage calls first" in r.stderr


def run(*args, **env):
    e = {**os.environ, "PY": sys.executable, "PYTHONPATH": str(ROOT), **{k: str(v) for k, v in env.items()}}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=e)


def test_the_measurement_script_runs_on_the_cpu(tmp_path):
    """gpu/measure.sh end to end, eager, on the smoke width: it saves a bench JSON that REPORT's table reads."""
    import json

    from rotnet_repro.bench import bench_markdown

    e = {**os.environ, "PY": sys.executable, "PYTHONPATH": str(ROOT), "DEVICE": "cpu", "PROFILE": "smoke",
         "STEPS": "3", "COMPILE": "", "OUT": str(tmp_path), "PROCESSES": "2", "SECONDS_EACH": "1",
         "TIME_LIMITS": ""}  # the card's call cuts each part at its limit; here each part runs to its end, whatever the load
    r = subprocess.run(["bash", str(ROOT / "gpu" / "measure.sh")], capture_output=True, text=True, env=e)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    saved = json.loads((tmp_path / "smoke-width-cpu.json").read_text())
    assert json.loads((tmp_path / "throughput-smoke-width-cpu.json").read_text())["step_s"]
    assert saved["gflop_per_rotated_sample"] > 0 and saved["peak_tflops"] > 0 and saved["eta_h"] > 0
    assert "protocol" in (tmp_path / "bench.log").read_text() and "done in" in (tmp_path / "smoke.log").read_text()
    md = bench_markdown(tmp_path)
    assert "| width 0.0625 (smoke) |" in md
    assert "| conv head step, batch 128 |" in md  # the throughput part's table
    # processes side by side, with the remaining protocol at that count
    assert re.search(r"\| cpu\b[^|]* \(0.0625\) \| 2 \| [0-9.]+ \|", md)


FAKE_PY = """#!/bin/bash
# the real Python, but for the package's commands: plan writes the window the test gives, the rest do nothing
if [ "${1:-}" = -m ] && [ "${2:-}" = rotnet_repro ]; then
  case "$3" in
    plan) while [ $# -gt 0 ]; do [ "$1" != --window-file ] || cp "$FAKE_WINDOW" "$2"; shift; done
          echo "window 1: (the test's)"; exit 0 ;;
    weights|window) exit 0 ;;
  esac
  echo "unexpected: $*" >&2; exit 3
fi
exec "$REAL_PY" "$@"
"""


def test_a_window_staging_two_files_of_one_folder_unpacks_on_the_machine(tmp_path):
    """prepare lists each path once (a folder staging Fig. 5(a)'s snapshots and its weights has one spec.json and
    one result.json in the archive), so the machine's streaming extraction (tarfile "r|") takes the parts: tar
    stores a repeat as a hard link, which a stream cannot follow. The script runs in a tree of its own, with the
    package's commands stubbed: only the archive is under test."""
    import lzma
    import tarfile

    repo = tmp_path / "repo"
    (repo / "gpu").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "gpu" / "paper.sh")
    files = {}
    for rel, size in [("paper/rotnet-aaaaaaaaaa/snapshot-20.pt", 3000), ("paper/rotnet-aaaaaaaaaa/snapshot-40.pt", 3000),
                      ("paper/rotnet-aaaaaaaaaa/model.pt", 3000), ("paper/rotnet-aaaaaaaaaa/spec.json", 40),
                      ("paper/rotnet-aaaaaaaaaa/result.json", 40), ("paper/classifier-bbbbbbbbbb/ckpt.pt", 3000),
                      ("paper/classifier-bbbbbbbbbb/spec.json", 40)]:  # the second is still training: no record
        p = repo / "runs" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
        files[f"runs/{rel}"] = p.read_bytes()
    stage = ["paper/rotnet-aaaaaaaaaa/model.pt", "paper/rotnet-aaaaaaaaaa/snapshot-20.pt",
             "paper/rotnet-aaaaaaaaaa/snapshot-40.pt", "paper/classifier-bbbbbbbbbb/ckpt.pt"]
    window = tmp_path / "window.json"
    window.write_text(json.dumps({"stage": stage, "chunk_bytes": 4000, "staging_calls": 9, "pack_s": 0,
                                  "runs": [], "calls": [{"what": "train", "seconds": 60, "measure_s": 0}]}))
    data = tmp_path / "data" / "cifar-10-batches-py"
    data.mkdir(parents=True)
    (data / "data_batch_1").write_bytes(os.urandom(5000))
    fake = tmp_path / "python"
    fake.write_text(FAKE_PY)
    fake.chmod(0o755)
    parts, machine = tmp_path / "parts", tmp_path / "machine"
    (tmp_path / "out").mkdir()
    env = {**os.environ, "PY": str(fake), "REAL_PY": sys.executable, "FAKE_WINDOW": str(window), "PARTS": str(parts),
           "STAGE": str(machine), "DATA": str(data.parent), "DEVICE": "cpu", "OUT": str(tmp_path / "out"),
           "WORK": str(tmp_path / "work")}

    def script(*args):
        r = subprocess.run(["bash", str(repo / "gpu" / "paper.sh"), *args], capture_output=True, text=True, env=env)
        assert r.returncode == 0, f"gpu/paper.sh {args}: rc {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r.stdout

    script("prepare")
    with lzma.open(parts / "cache" / "runs.tar.xz") as f, tarfile.open(fileobj=f, mode="r|") as tar:
        members = list(tar)
    names = [m.name for m in members]
    assert names == ["window.json", *(f"runs/{s}" for s in stage[:1]), "runs/paper/rotnet-aaaaaaaaaa/spec.json",
                     "runs/paper/rotnet-aaaaaaaaaa/result.json", *(f"runs/{s}" for s in stage[1:3]),
                     f"runs/{stage[3]}", "runs/paper/classifier-bbbbbbbbbb/spec.json"]  # each once, in order
    assert all(m.isfile() for m in members)  # no hard link
    n = len(list(parts.glob("part.*")))
    assert n >= 3  # several parts: the data and the weights cross part boundaries
    for i in range(n):
        script("stage", f"{i:02d}")
    script("train", "60")  # the machine's extraction, then the (stubbed) training and packing
    assert (machine / ".unpacked").exists() and (machine / "window.json").exists()
    assert (machine / "cifar-10-batches-py" / "data_batch_1").read_bytes() == (data / "data_batch_1").read_bytes()
    assert {rel: (machine / rel).read_bytes() for rel in files} == files


FAKE_UNPACK = """#!/bin/bash
# the real Python, but `window unpack` stands for an import: it writes a finished run's folder into the checkout
if [ "${1:-}" = -m ] && [ "${2:-}" = rotnet_repro ] && [ "$3" = window ] && [ "$4" = unpack ]; then
  d="$7/runs/smoke/rotnet-aaaaaaaaaa"
  mkdir -p "$d/rejected" "$7/runs/smoke/logs/window-1" "$7/results"
  echo '{"kind": "rotnet"}' > "$d/spec.json"; echo '{"history": []}' > "$d/result.json"
  head -c 3000 /dev/urandom > "$d/model.pt"; head -c 300 /dev/urandom > "$d/rejected/model.pt"
  echo "epoch 1" > "$7/runs/smoke/logs/window-1/train.log"; echo "run_id" > "$7/results/smoke.csv"
  exit 0
fi
exec "$REAL_PY" "$@"
"""


def test_unpack_of_an_ignored_profile_commits_its_records(tmp_path):
    """runs/smoke is git-ignored (the project's .gitignore): unpack commits the window's records, specs and logs all
    the same (they exist nowhere else once the machine is gone) and says so in one line; no weight file enters the
    tracked tree (weights go to the history by `weights store`), the rows stay ignored; exit 0."""
    repo = tmp_path / "repo"
    (repo / "gpu").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "gpu" / "paper.sh")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    for args in (["init", "-q"], ["config", "user.email", "t@example.org"], ["config", "user.name", "t"],
                 ["add", "."], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    assert subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", "runs/smoke"]).returncode == 0
    fake = tmp_path / "python"
    fake.write_text(FAKE_UNPACK)
    fake.chmod(0o755)
    (tmp_path / "back").mkdir()
    env = {**os.environ, "PY": str(fake), "REAL_PY": sys.executable, "PROFILE": "smoke", "DEST": str(repo)}
    r = subprocess.run(["bash", str(repo / "gpu" / "paper.sh"), "unpack", str(tmp_path / "back")], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "runs/smoke is git-ignored: its records, specs and logs are committed all the same" in r.stdout
    files = subprocess.run(["git", "-C", str(repo), "ls-files"], capture_output=True, text=True, check=True).stdout.split()
    assert {f for f in files if f.startswith("runs/")} == {"runs/smoke/rotnet-aaaaaaaaaa/spec.json",
                                                          "runs/smoke/rotnet-aaaaaaaaaa/result.json",
                                                          "runs/smoke/logs/window-1/train.log"}
    assert "results/smoke.csv" not in files
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True).stdout
    assert status == ""  # nothing left over that is not ignored
    r = subprocess.run(["bash", str(repo / "gpu" / "paper.sh"), "unpack", str(tmp_path / "back")], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0 and "nothing new to commit" in r.stdout  # the same again: nothing new
