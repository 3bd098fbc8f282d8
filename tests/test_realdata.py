"""Reads the real CIFAR-10 (skipped unless ROTNET_DATA is set)."""

import pytest
import torch

from rotnet_repro.data import first_k_per_class, load_cifar10

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def test_cifar10_loads_as_uint8_tensors():
    train, test = load_cifar10()
    assert train.images.shape == (50000, 3, 32, 32) and test.images.shape == (10000, 3, 32, 32)
    assert train.images.dtype == torch.uint8
    assert torch.bincount(train.labels).tolist() == [5000] * 10
    idx = first_k_per_class(train.labels, 20)
    assert len(idx) == 200 and idx.max() < 1000  # the first 20 of each class come early


def test_the_paper_window_stages_real_cifar10_within_the_real_sizes(tmp_path):
    """gpu/paper.sh prepare on the real CIFAR-10 and the paper profile's first window: every call within the
    session's upload limit with the tracked tree, as many parts as the plan's staging calls, the planner's CIFAR-10
    size within 1% of the real archive; staged on an emulated machine, the archive unpacks to the same files."""
    import hashlib
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from rotnet_repro.planner import CALL_BYTES, DATA_BYTES
    from rotnet_repro.weights import tracked_bytes

    root = Path(__file__).resolve().parent.parent
    if shutil.which("xz") is None or not (root / ".git").exists():
        pytest.skip("needs xz and a git checkout")
    data = Path(os.environ["ROTNET_DATA"])
    parts, stage, work, out = (tmp_path / n for n in ("parts", "stage", "work", "out"))
    out.mkdir()
    env = {**os.environ, "PY": sys.executable, "PYTHONPATH": str(root), "PROFILE": "paper", "DEVICE": "cpu",
           "DATA": str(data), "PARTS": str(parts), "STAGE": str(stage), "WORK": str(work), "OUT": str(out)}

    def sh(*args, **more):
        r = subprocess.run(["bash", "gpu/paper.sh", *args], capture_output=True, text=True, env={**env, **more},
                           cwd=root)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return r.stdout

    sh("prepare")
    index = json.loads((parts / "index.json").read_text())
    window, tree = index["window"], tracked_bytes(root)
    assert all(tree + p["bytes"] + (parts / "index.json").stat().st_size <= CALL_BYTES for p in index["parts"])
    assert len(index["parts"]) == window["staging_calls"]
    assert abs(index["data_bytes"] - DATA_BYTES) / DATA_BYTES < 0.01, index["data_bytes"]
    for p in index["parts"]:
        sh("stage", p["name"][-2:])
    sh("train", "600", BUDGET="0")  # on this CPU: unpacks, imports, starts no run (no time on the emulated device), packs
    for f in (data / "cifar-10-batches-py").iterdir():
        staged = stage / "cifar-10-batches-py" / f.name
        assert hashlib.md5(staged.read_bytes()).digest() == hashlib.md5(f.read_bytes()).digest()
    assert all((stage / "runs" / s).exists() for s in window["stage"])
    assert (out / "back.json").exists()
