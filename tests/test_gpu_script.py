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

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or not (ROOT / ".git").exists(),
                                reason="needs bash and a git checkout")


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
         "STEPS": "3", "COMPILE": "", "OUT": str(tmp_path), "PROCESSES": "2", "SECONDS_EACH": "1"}
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
