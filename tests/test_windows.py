"""GPU windows: weights kept in the git history (runs/weights.json), runs that never block, an archive that never
comes back cut, the planner, and two windows played with nothing between them but the repository."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from rotnet_repro.cli import main
from rotnet_repro.config import PROFILES, apply_overrides
from rotnet_repro.errors import UserError
from rotnet_repro.experiments import EXPERIMENTS, rotnet
from rotnet_repro.files import DamagedFile, read_tensors
from rotnet_repro.runner import Runner
from rotnet_repro.runner import restored as restored_for_run
from rotnet_repro.weights import Manifest, ensure, store
from rotnet_repro.window import pack, read_archive, unpack

ROOT = Path(__file__).resolve().parent.parent
needs_git = pytest.mark.skipif(shutil.which("git") is None or shutil.which("bash") is None, reason="needs git, bash")


def git(repo, *args):
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.org")
    git(path, "config", "user.name", "t")
    (path / ".gitignore").write_text("/runs/*/*/*.pt\n")
    git(path, "add", ".gitignore")
    git(path, "commit", "-q", "-m", "init")
    return path


@needs_git
def test_stored_weights_leave_the_tree_stay_in_the_history_and_come_back_checked(tmp_path):
    repo = new_repo(tmp_path / "repo")
    folder = repo / "runs" / "smoke" / "rotnet-0123456789"
    folder.mkdir(parents=True)
    torch.save({"w": torch.arange(10.0)}, folder / "model.pt")
    torch.save({"epoch": 1}, folder / "ckpt.pt")
    (repo / "staged.txt").write_text("the user's own staged change\n")
    git(repo, "add", "staged.txt")
    lines = store(repo / "runs")
    assert len(lines) == 2 and all("history" in line for line in lines)
    assert git(repo, "ls-files", "runs").split() == ["runs/weights.json"]  # the tree carries the manifest only
    assert "staged.txt" in git(repo, "diff", "--cached", "--name-only")  # the user's index is left alone
    log = git(repo, "log", "--format=%s").splitlines()
    assert len(log) == 3 and log[1].startswith("weights: 2 file(s) committed to the history")
    sha = Manifest(repo / "runs").entry(folder / "model.pt")["sha256"]

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    restored = clone / "runs" / "smoke" / "rotnet-0123456789" / "model.pt"
    assert not restored.exists()
    assert restored_for_run(restored)  # what the runner does before a recipe reads a file: restored, checked
    assert torch.equal(read_tensors(restored)["w"], torch.arange(10.0))
    assert Manifest(clone / "runs").entry(restored)["sha256"] == sha
    with open(restored, "r+b") as f:
        f.seek(60)
        f.write(b"\1\2\3")
    with pytest.raises(DamagedFile, match="SHA-256"):
        restored_for_run(restored)
    assert main(["weights", "list", "--out", str(clone)]) == 0
    restored.unlink()
    assert main(["weights", "restore", "--out", str(clone)]) == 0 and restored.exists()
    assert store(repo / "runs") == []  # nothing new: no commit
    assert len(git(repo, "log", "--format=%s").splitlines()) == 3


def test_a_shallow_copy_without_history_says_how_to_get_the_weights(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "smoke" / "rotnet-0123456789").mkdir(parents=True)
    (runs / "weights.json").write_text(json.dumps({"smoke/rotnet-0123456789/model.pt": {
        "sha256": "0" * 64, "bytes": 3, "blob": "0" * 40, "where": "history"}}))
    assert not ensure(runs / "smoke" / "rotnet-0123456789" / "model.pt")
    assert main(["weights", "restore", "--out", str(tmp_path)]) == 2
    assert "git fetch --unshallow" in capsys.readouterr().err


def test_new_fields_at_their_default_keep_every_committed_run_id():
    """precision, bn_init and nesterov joined the config after runs were committed: at their defaults they stay
    out of the hash (every cell of the cpu and paper profiles still finds its committed folder); as variants
    they make other runs."""
    for name, seeds in (("cpu", (0, 1, 2)), ("paper", (0,))):
        committed = {p.name for p in (ROOT / "runs" / name).glob("*-*")}
        if not committed:
            pytest.skip("no committed runs in this checkout")
        found = set()
        for seed in seeds:
            for exp in EXPERIMENTS.values():
                found |= {c.spec.run_id for c in exp.build(PROFILES[name], seed, seed)} & committed
        assert len(found) >= (60 if name == "cpu" else 4)
    base = rotnet(PROFILES["paper"], 0)
    assert base.run_id == "rotnet-9e6957a33b"
    ids = {rotnet(apply_overrides(PROFILES["paper"], [o]), 0).run_id
           for o in ("precision=fp32", "bn_init=uniform", "nesterov=false", "pretext_epochs=200")}
    assert len(ids) == 4 and base.run_id not in ids
    assert rotnet(apply_overrides(PROFILES["paper"], ["precision=bf16"]), 0).run_id == base.run_id
    with pytest.raises(UserError, match="bf16 or fp32"):
        apply_overrides(PROFILES["paper"], ["precision=fp16"])


def test_bn_uniform_draws_batchnorm_weights_in_0_1():
    from rotnet_repro.models import NIN

    torch.manual_seed(0)
    w = torch.cat([m.weight for m in NIN(3, 4, 0.25, "uniform").modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert 0 <= w.min() and w.max() <= 1 and w.std() > 0.1
    assert all((m.weight == 1).all() for m in NIN(3, 4, 0.25).modules() if isinstance(m, torch.nn.BatchNorm2d))


def _interrupt_after(n):
    def hook(epoch):
        if epoch == n:
            raise KeyboardInterrupt

    return hook


def _rotnet_stopped_after_epoch_1(tmp_path, monkeypatch):
    """A smoke RotNet interrupted after its first epoch: (runner, spec), its checkpoint on disk."""
    r = Runner(PROFILES["smoke"], tmp_path, device="cpu")
    spec = rotnet(r.profile, 0)
    r.dev.epoch_hooks.append(_interrupt_after(1))
    with pytest.raises(KeyboardInterrupt):
        r.result(spec)
    r.dev.epoch_hooks.clear()
    return r, spec


@pytest.mark.slow
def test_a_record_without_weights_is_trained_again_from_its_checkpoint(tmp_path, monkeypatch, caplog):
    r, spec = _rotnet_stopped_after_epoch_1(tmp_path, monkeypatch)
    folder = r.folder(spec)
    assert folder.ckpt.exists() and not folder.model.exists()
    # a record written elsewhere whose weights were lost: the rotation cell reads it, the heads need weights
    folder.record_file.write_text(json.dumps({"metrics": [dict(metric="rotation_acc", value=50.0, selection="last",
                                                                   epoch=2, pretext_epoch=2)]}))
    r2 = Runner(PROFILES["smoke"], tmp_path, device="cpu")
    caplog.set_level("INFO", "rotnet_repro")
    assert r2.run_experiment(EXPERIMENTS["table3_comparison"], seed=0) > 0
    assert "has a record but no model.pt" in caplog.text and "resuming after epoch 1" in caplog.text
    assert folder.model.exists() and folder.record_file.with_suffix(".json.no-weights").exists()
    assert len(json.loads(folder.record_file.read_text())["history"]) == 2


@pytest.mark.slow
def test_a_missing_snapshot_skips_its_heads_with_a_line_and_blocks_nothing(tmp_path):
    r = Runner(PROFILES["smoke"], tmp_path, device="cpu")
    spec = rotnet(r.profile, 0)
    r.result(spec)
    r.folder(spec).snapshot(1).unlink()
    code = main(["run", "fig5a_epoch_curve", "table1_block_depth", "--profile", "smoke", "--out", str(tmp_path)])
    assert code == 0
    log = (tmp_path / "logs" / "smoke.log").read_text()
    assert log.count("has a record but no snapshot_1.pt") == 1
    df = pd.read_csv(tmp_path / "results" / "smoke.csv")
    assert set(df[df.experiment == "table1_block_depth"].row) >= {"RotNet 3 conv blocks", "RotNet 5 conv blocks"}
    assert not ((df.row == "object classification (conv2 non-linear)") & (df.column == "1")).any()


def test_a_frozen_head_checkpoint_holds_the_head_alone_and_resumes_to_the_same_numbers(tmp_path, monkeypatch):
    from dataclasses import replace

    exact = replace(PROFILES["smoke"], cache_features=False)
    a = Runner(exact, tmp_path / "a", device="cpu")
    cells = [c for c in EXPERIMENTS["table3_comparison"].build(exact, 0, 0) if c.row == "RotNet + conv"]
    a.runs.share_passes = b_share = False
    a.run_cells([(EXPERIMENTS["table3_comparison"], c) for c in cells])
    b = Runner(exact, tmp_path / "b", device="cpu")
    b.runs.share_passes = b_share
    b.result(cells[0].spec.backbone)
    b.dev.epoch_hooks.append(_interrupt_after(1))
    with pytest.raises(KeyboardInterrupt):
        b.result(cells[0].spec)
    state = torch.load(b.folder(cells[0].spec).ckpt, weights_only=True)
    assert state["model"] and not any(k.startswith(("backbone", "head.")) for k in state["model"])
    b.dev.epoch_hooks.clear()
    done = b.result(cells[0].spec)
    ref = json.loads(a.folder(cells[0].spec).record_file.read_text())
    assert [h["test_acc"] for h in done["history"]] == pytest.approx([h["test_acc"] for h in ref["history"]], abs=1e-6)


def test_the_pack_never_exceeds_the_limit_and_a_partial_archive_is_refused(tmp_path):
    import hashlib

    work, names = tmp_path / "w", []
    for i in range(4):
        spec = json.dumps({"i": i}, sort_keys=True)
        names.append(f"rotnet-{hashlib.md5(spec.encode()).hexdigest()[:10]}")
        d = work / "runs" / "paper" / names[-1]
        d.mkdir(parents=True)
        (d / "spec.json").write_text(spec)
        (d / "result.json").write_text('{"metrics": []}')
        (d / "model.pt").write_bytes(os.urandom(120_000))
        (d / "snapshot_20.pt").write_bytes(os.urandom(120_000))
    (work / "logs").mkdir()
    (work / "logs" / "paper.log").write_text("log\n")
    out = tmp_path / "out"
    index = pack(work, out, max_files=4, part_bytes=100_000)  # room for 3 parts: 300 kB, 960 kB of weights
    back = sorted(p.name for p in out.iterdir())
    assert len(back) <= 4 and all((out / n).stat().st_size <= 100_000 for n in back)
    assert index["dropped"] and all(d.endswith(".pt") for d in index["dropped"])
    snapshots = {f"runs/paper/{n}/snapshot_20.pt" for n in names}
    assert any(d.endswith("model.pt") for d in index["dropped"]) and snapshots <= set(index["dropped"])  # final first
    dest = tmp_path / "dest"
    lines = unpack(out, dest, "paper")
    assert any("left on the GPU machine" in line for line in lines)
    assert all((dest / "runs" / "paper" / n / "result.json").exists() for n in names)
    again = pack(work, tmp_path / "out2", max_files=4, part_bytes=100_000)  # the next call sends what was left first
    assert set(index["dropped"]) - set(again["dropped"])
    sent = {p for p in names_in(out) if p.endswith(".pt")}
    assert sent <= set(again["dropped"])  # packed before: last in line (it may not have come back), not left out
    (out / "back.01").write_bytes((out / "back.01").read_bytes()[:5000])
    with pytest.raises(UserError, match="came back partial: back.01 is cut"):
        read_archive(out)
    (out / "back.01").unlink()
    with pytest.raises(UserError, match="came back partial: back.01 of"):
        read_archive(out)
    (out / "back.json").unlink()
    with pytest.raises(UserError, match="nothing imported"):
        read_archive(out)


def names_in(out):
    """The files of a pack's archive."""
    import io
    import tarfile

    data, _ = read_archive(out)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def test_the_plan_lists_the_remaining_protocol_as_windows(capsys):
    assert main(["plan", "--out", str(ROOT)]) == 0
    out = capsys.readouterr().out
    assert "window 1:" in out and "remaining full protocol" in out and "staging calls" in out
    groups = [line.split("min  ", 1)[1] for line in out.split("window 1:")[0].splitlines() if " min  " in line]
    first = out[out.index("window 1:"):].splitlines()
    assert groups[0] in first[1]  # the first window starts on the first group the summary lists
    listed = json.loads((ROOT / "runs" / "weights.json").read_text())
    for key, entry in listed.items():  # a stored checkpoint of a RotNet with no final weights: its run resumes
        folder = key.rsplit("/", 1)[0]
        if key.endswith("/ckpt.pt") and f"{folder}/model.pt" not in listed:
            assert f"{folder.split('/')[-1]}  " in out and f"resumes after epoch {entry['epoch']}" in out
    assert "gap variant fp32" in out and "seeds 1 and 2" in out


@needs_git
def test_a_rotnet_whose_checkpoint_alone_is_stored_resumes_from_it_and_its_window_stages_it(tmp_path, capsys):
    repo = new_repo(tmp_path / "repo")
    spec = rotnet(PROFILES["paper"], 0, blocks=3)
    folder = repo / "runs" / "paper" / spec.run_id
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text('{"kind": "rotnet"}')
    torch.save({"epoch": 92}, folder / "ckpt.pt")
    store(repo / "runs")
    (folder / "ckpt.pt").unlink()  # not restored in this checkout: the window stages it from the history
    assert main(["plan", "--out", str(repo), "--window-file", str(tmp_path / "w.json")]) == 0
    first = capsys.readouterr().out.split("window 1:")[1].split("\n\n")[0].splitlines()
    assert spec.run_id in first[1] and "resumes after epoch 92" in first[1]
    assert json.loads((tmp_path / "w.json").read_text())["stage"] == [f"paper/{spec.run_id}/ckpt.pt"]


@needs_git
def test_store_keeps_a_checkpoint_listed_while_its_rotnet_has_no_final_weights(tmp_path):
    repo = new_repo(tmp_path / "repo")
    folder = repo / "runs" / "paper" / "rotnet-0123456789"
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text('{"kind": "rotnet"}')
    torch.save({"epoch": 92}, folder / "ckpt.pt")
    store(repo / "runs")
    (folder / "result.json").write_text('{"metrics": []}')  # a record whose weights were lost
    (folder / "ckpt.pt").unlink()  # not restored in this checkout
    assert store(repo / "runs") == []
    assert Manifest(repo / "runs").entries["paper/rotnet-0123456789/ckpt.pt"]["epoch"] == 92
    torch.save({"w": 1}, folder / "model.pt")  # its final weights: the checkpoint is no longer needed
    lines = store(repo / "runs")
    assert any("no longer listed" in line for line in lines)
    assert "paper/rotnet-0123456789/ckpt.pt" not in Manifest(repo / "runs").entries


@needs_git
def test_unpack_never_replaces_a_committed_weight_file_with_other_bytes(tmp_path):
    from rotnet_repro.runner import import_runs

    repo = new_repo(tmp_path / "repo")
    r = Runner(PROFILES["smoke"], repo, device="cpu")
    spec = rotnet(r.profile, 0)
    r.result(spec)
    store(repo / "runs")
    committed = Manifest(repo / "runs").entry(r.folder(spec).model)["sha256"]
    r.folder(spec).model.unlink()  # not restored in this checkout
    other = tmp_path / "other" / "smoke" / spec.run_id  # trained again elsewhere: other weights
    shutil.copytree(r.folder(spec).path, other)
    torch.save({"w": torch.ones(3)}, other / "model.pt")
    lines = import_runs(other.parent, repo / "runs")
    assert any("refused" in line and "set aside" in line for line in lines)
    assert ensure(r.folder(spec).model)  # the committed one comes back from the history, unchanged
    assert Manifest(repo / "runs").entry(r.folder(spec).model)["sha256"] == committed
    assert list((r.folder(spec).path / "rejected").glob("model-*.pt"))


def test_a_finished_rotnet_is_not_trained_again_for_heads_that_are_finished(tmp_path, caplog):
    r = Runner(PROFILES["smoke"], tmp_path, device="cpu")
    r.run_experiment(EXPERIMENTS["table3_comparison"], seed=0)
    spec = rotnet(r.profile, 0)
    r.folder(spec).model.unlink()  # lost; every head on it is finished
    caplog.set_level("INFO", "rotnet_repro")
    Runner(PROFILES["smoke"], tmp_path, device="cpu").run_experiment(EXPERIMENTS["table3_comparison"], seed=0)
    assert "trained again" not in caplog.text and not r.folder(spec).model.exists()
    assert r.folder(spec).record_file.exists()


def test_a_window_never_trains_a_finished_rotnet_whose_weights_were_not_staged(tmp_path):
    from rotnet_repro.runner import RunNotTrained, RunOptions

    r, spec = None, rotnet(PROFILES["smoke"], 0)
    r = Runner(PROFILES["smoke"], tmp_path, device="cpu")
    r.result(spec)
    r.folder(spec).model.unlink()
    head = next(c.spec for c in EXPERIMENTS["table3_comparison"].build(r.profile, 0, 0) if c.row == "RotNet + conv")
    w = Runner(PROFILES["smoke"], tmp_path, device="cpu", options=RunOptions(retrain_lost_weights=False))
    with pytest.raises(RunNotTrained, match="not staged"):
        w.result(head)
    assert not r.folder(spec).model.exists() and r.folder(spec).record_file.exists()


def test_the_plan_puts_claim_5s_head_seeds_before_other_rotnet_seeds_and_plans_random_init():
    from rotnet_repro.planner import PRIORITY, snapshot_rotnets

    whys = [st.why for st in PRIORITY]
    claim5 = next(i for i, w in enumerate(whys) if "claim 5" in w)
    assert claim5 < whys.index("seeds 1 and 2")
    cells = [c for _, c in PRIORITY[claim5].cells(PROFILES["paper"])]
    assert {c.spec.seed for c in cells} == {1, 2} and {c.spec.backbone.run_id for c in cells} == {"rotnet-9e6957a33b"}
    assert {c.spec.pretext_epoch for c in cells} == {20, 40, 60, 80, 0}
    rows = {c.row for st in PRIORITY if st.experiment == "table1_block_depth" and st.seeds == (0,)
            for _, c in st.cells(PROFILES["paper"])}
    assert "Random Init." in rows
    assert snapshot_rotnets(PROFILES["paper"]) >= {"rotnet-9e6957a33b"}
    assert "rotnet-c1d3b2dff4" not in snapshot_rotnets(PROFILES["paper"])  # Fig. 5(a) reads 4-block RotNets only


def test_a_window_is_priced_from_its_calls():
    from rotnet_repro.planner import CALL_S, NEW_RUN_S, PACK_S, PROCESS_S, START_S, WINDOW_S, window_calls

    for staging in (1, 2, 3, 4):
        calls = window_calls(staging)
        assert [c.what for c in calls[:staging - 1]] == ["stage"] * (staging - 1)
        train = [c for c in calls if c.what == "train"]
        assert train[0].seconds + 15 <= CALL_S and all(c.train_s == c.seconds - PROCESS_S - PACK_S for c in train)
        assert START_S + sum(c.seconds for c in calls) <= WINDOW_S  # the whole 15 minutes, no more
        assert len(train) == 2 and train[1].train_s >= NEW_RUN_S


def test_every_gap_between_a_windows_calls_is_counted():
    """A window of n staging parts makes n + 1 calls (n - 1 staging calls, the last part with the first training
    call, the second training call): n gaps. With them, the start-up, each call up to its timeout_s and the end
    margin, the window is its 15 minutes exactly (to the second the calls are rounded to), never more."""
    from rotnet_repro.planner import (
        CALL_GAP_S,
        CALL_S,
        END_MARGIN_S,
        STAGE_CALL_S,
        START_S,
        TIMEOUT_SLACK_S,
        WINDOW_S,
        window_calls,
    )

    for staging in range(1, 14):
        calls = window_calls(staging)
        train = [c for c in calls if c.what == "train"]
        assert len(calls) == staging - 1 + len(train) and train[0] is calls[staging - 1]
        device = (START_S + sum(c.seconds for c in calls if c.what == "stage") + train[0].seconds + STAGE_CALL_S
                  + sum(c.seconds + TIMEOUT_SLACK_S for c in train[1:]) + (len(calls) - 1) * CALL_GAP_S + END_MARGIN_S)
        assert device <= WINDOW_S, (staging, device)
        if len(train) == 2:  # the whole window used, to the second the calls are rounded to
            assert device > WINDOW_S - 1, (staging, device)
    assert window_calls(3)[-1].seconds == 130 and window_calls(2)[-1].seconds == 155  # three parts: three gaps
    assert window_calls(12)[-1].seconds < CALL_S - STAGE_CALL_S  # many parts: a shorter first call, no second


def test_the_last_call_is_sized_from_the_device_time_left():
    """After a retry the window's last call is shorter by what the retry took: sized from the time left (the gap
    before it, its timeout slack and the end margin kept), never a fixed length; no call where no run could start."""
    from rotnet_repro.planner import (
        CALL_GAP_S,
        CALL_S,
        END_MARGIN_S,
        NEW_RUN_S,
        PACK_S,
        PROCESS_S,
        STAGE_CALL_S,
        START_S,
        TIMEOUT_SLACK_S,
        WINDOW_S,
        last_call,
        window_calls,
    )

    left = WINDOW_S - START_S - 2 * (STAGE_CALL_S + CALL_GAP_S) - CALL_S  # three parts, after the first training call
    assert last_call(left) == window_calls(3)[-1]  # no retry: the plan's call
    retried = last_call(left - (STAGE_CALL_S + CALL_GAP_S))  # one staging call made twice
    assert retried.seconds == window_calls(3)[-1].seconds - STAGE_CALL_S - CALL_GAP_S
    assert retried.seconds + TIMEOUT_SLACK_S + CALL_GAP_S + END_MARGIN_S <= left - STAGE_CALL_S - CALL_GAP_S
    assert retried.train_s == retried.seconds - PROCESS_S - PACK_S
    assert last_call(CALL_GAP_S + TIMEOUT_SLACK_S + END_MARGIN_S + PROCESS_S + PACK_S + NEW_RUN_S - 1) is None
    assert last_call(10_000).seconds + TIMEOUT_SLACK_S == CALL_S  # never more than one call


def test_the_script_sizes_the_last_call_from_the_time_left():
    import sys

    def last(left):
        r = subprocess.run(["bash", str(ROOT / "gpu" / "paper.sh"), "last", left], capture_output=True, text=True,
                           env={**os.environ, "PY": sys.executable, "PYTHONPATH": str(ROOT)})
        return r.returncode, r.stdout + r.stderr

    assert last("165") == (0, "gpu/paper.sh train 130   (timeout_s 145; then give_back)\n")
    assert last("140") == (0, "gpu/paper.sh train 105   (timeout_s 120; then give_back)\n")
    rc, said = last("80")
    assert rc == 0 and "no run can start" in said and "give_back" in said
    rc, said = last("soon")
    assert rc == 2 and "seconds" in said


def test_a_chosen_part_size_is_the_plans_too(tmp_path, capsys):
    """`plan --chunk-bytes N` (gpu/paper.sh's CHUNK_BYTES) plans the staging calls that parts of N bytes make,
    as prepare splits them: a window of more parts has a shorter second call."""
    assert main(["plan", "--out", str(tmp_path), "--profile", "smoke", "--steps", "^Table 1: 3- and 5-block",
                 "--price-epoch-s", "100", "--data-bytes", "500000", "--chunk-bytes", "180000",
                 "--tree-bytes", "1000000", "--window-file", str(tmp_path / "w.json")]) == 0
    w = json.loads((tmp_path / "w.json").read_text())
    assert w["chunk_bytes"] == 180000 and w["staging_calls"] == 3
    assert [c["what"] for c in w["calls"]] == ["stage", "stage", "train", "train"] and w["calls"][-1]["seconds"] == 130
    assert "(a part size chosen)" in capsys.readouterr().out
    capsys.readouterr()
    assert main(["plan", "--out", str(tmp_path), "--profile", "smoke", "--tree-bytes", "1000000",
                 "--chunk-bytes", "0"]) == 2
    assert "--chunk-bytes" in capsys.readouterr().err


def test_a_window_stages_a_snapshot_its_rotnet_resumed_in_the_same_window_will_not_write_again(tmp_path):
    """Fig. 5(a) on the smoke profile, its RotNet cut after epoch 1 in an earlier window (its checkpoint and its
    epoch-1 snapshot in the history): the window that resumes the RotNet and then trains the head on that snapshot
    stages the snapshot too (the resumed RotNet writes epoch 2's weights only). Found by scripts/rehearse-windows.py:
    the head was skipped for want of it."""
    from rotnet_repro.planner import PRIORITY, Prices, Remaining, plan

    fig5a = next(st for st in PRIORITY if st.why.startswith("Fig. 5(a): exact"))
    rot = next(c.spec.backbone for _, c in fig5a.cells(PROFILES["smoke"]) if c.spec.pretext_epoch == 1)
    listed = {f"smoke/{rot.run_id}/ckpt.pt": dict(sha256="a" * 64, bytes=1000, blob="b" * 40, where="history", epoch=1),
              f"smoke/{rot.run_id}/snapshot_1.pt": dict(sha256="c" * 64, bytes=1000, blob="d" * 40, where="history")}
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "weights.json").write_text(json.dumps(listed))
    prices = Prices({}, {}, "test", epoch_s=100)
    todo = Remaining.of(PROFILES["smoke"], runs, prices, r"^Fig\. 5\(a\): exact")
    windows, _ = plan(PROFILES["smoke"], runs, 10 * 2**20, prices, todo=todo, data=500_000, chunk=180_000)
    first = windows[0]
    ids = [it.spec.run_id for it, _, _ in first.items]
    head = next(it.spec.run_id for it, _, _ in first.items if it.spec.pretext_epoch == 1)
    assert ids.index(rot.run_id) < ids.index(head)  # the RotNet resumes first, then the head on its snapshot
    assert set(listed) <= first.stage


def test_the_plan_file_is_the_plans_first_window(tmp_path, capsys):
    assert main(["plan", "--out", str(ROOT), "--window-file", str(tmp_path / "w.json")]) == 0
    out = capsys.readouterr().out
    first = out[out.index("window 1:"):].split("\n\n")[0].splitlines()[1:]
    window = json.loads((tmp_path / "w.json").read_text())
    assert [line.split()[2] for line in first] == [r["run_id"] for r in window["runs"]]
    listed = json.loads((ROOT / "runs" / "weights.json").read_text())
    assert window["stage"] and set(window["stage"]) <= set(listed)  # what it stages is stored in the history
    for key in window["stage"]:  # a checkpoint its runs resume from, or a finished RotNet its heads read
        run_id = key.split("/")[-2]
        spec = json.loads((ROOT / "runs" / key.rsplit("/", 1)[0] / "spec.json").read_text())
        if key.endswith("/ckpt.pt"):
            assert run_id in [r["run_id"] for r in window["runs"]]
        else:
            assert key.endswith("/model.pt") and spec["kind"] == "rotnet"
            assert any(f"RotNet-{spec['blocks']}/{spec['rotations']} " in r["what"] for r in window["runs"])


def test_a_resumed_run_records_each_segment_and_the_lr_each_epoch_trained_at(tmp_path, monkeypatch):
    r, spec = _rotnet_stopped_after_epoch_1(tmp_path, monkeypatch)
    ckpt = r.folder(spec).ckpt
    state = torch.load(ckpt, weights_only=True)
    state["history"][0]["device"] = "NVIDIA H200"  # as if epoch 1 ran on another machine
    torch.save(state, ckpt)
    rec = Runner(PROFILES["smoke"], tmp_path, device="cpu").result(spec)
    assert [s["device"] for s in rec["segments"]] == ["NVIDIA H200", rec["device"]]
    assert [s["epochs"] for s in rec["segments"]] == [[1, 1], [2, 2]]
    p = PROFILES["smoke"]  # 2 epochs, a drop after the first: epoch 1 at lr, epoch 2 at lr x decay
    assert [h["lr"] for h in rec["history"]] == pytest.approx([p.lr, p.lr * p.lr_decay])


def test_a_variant_reaches_reports_ablation_table(tmp_path):
    from rotnet_repro.config import load_profiles
    from rotnet_repro.report import ablation_markdown, load_all

    assert main(["run", "table2_rotations", "table3_comparison", "--profile", "smoke", "--out", str(tmp_path),
                 "--rows", r"^(4 rotations|RotNet \+ (non-linear|conv)$)", "--columns", "^(rotation|accuracy)$",
                 "--set", "bn_init=uniform"]) == 0
    saved = load_profiles(tmp_path / "results")
    df = load_all(tmp_path / "results", saved)
    line = next(x for x in ablation_markdown(df, saved).splitlines() if "bn_init=uniform" in x)
    assert line.startswith("| smoke-custom-") and line.count("(n=1)") == 3
    assert "No variant trained yet" in ablation_markdown(df[~df.profile.str.contains("-custom-")], saved)


def test_the_window_clock_stops_a_run_when_its_next_epoch_would_not_fit():
    from rotnet_repro.window import Clock

    c = Clock(budget=250.0)  # an emulated device: 100 s an epoch
    c.start(100.0, 5)
    c.epoch_done(1)
    with pytest.raises(KeyboardInterrupt, match="after epoch 2"):
        c.epoch_done(2)  # 50 s left: the third epoch would not fit
    c = Clock(budget=200.0)
    c.start(100.0, 2)
    c.epoch_done(1)
    c.epoch_done(2)  # its last epoch: it finishes, whatever is left
    assert c.left() == 0
