"""GPU throughput work checked on the CPU: the evaluation cadence, and concurrency in the planner's and bench's ETA."""

import math

import pytest
import torch
from torch import nn

from rotnet_repro.config import PROFILES, apply_overrides
from rotnet_repro.engine import Device, fit
from rotnet_repro.train import acc_metrics


def _fit_counting_evaluations(tmp_path, eval_every: int, epochs: int = 5):
    p = apply_overrides(PROFILES["smoke"], [f"supervised_epochs={epochs}", f"eval_every={eval_every}"])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x, y = torch.randn(16, 3, 2, 2), torch.randint(0, 3, (16,))
    calls = []

    def evaluate() -> float:
        calls.append(1)
        return float(len(calls))  # later evaluations score higher: the oracle is the last evaluated epoch

    history, _ = fit(model, model.parameters(), p, "supervised", lambda g: [(x, y)], evaluate, Device.pick("cpu"),
                     tmp_path / "ckpt.pt", 0, "t")
    return history, calls


def test_evaluation_runs_every_kth_epoch_and_the_last_and_the_oracle_reads_only_those(tmp_path):
    history, calls = _fit_counting_evaluations(tmp_path, eval_every=2)
    evaluated = [h["epoch"] for h in history if math.isfinite(h["test_acc"])]
    assert evaluated == [2, 4, 5] and len(calls) == 3
    assert all(h["eval_s"] >= 0 for h in history)
    last, oracle = acc_metrics(history, 0)
    assert (last["epoch"], last["value"]) == (5, 3.0) and (oracle["epoch"], oracle["value"]) == (5, 3.0)


def test_evaluation_cadence_changes_no_run_id_and_every_epoch_is_the_cpu_default(tmp_path):
    from rotnet_repro.experiments import EXPERIMENTS

    for name in ("paper", "cpu"):
        p = PROFILES[name]
        q = apply_overrides(p, ["eval_every=3"])
        a = [c.spec.run_id for c in EXPERIMENTS["table3_comparison"].build(p, 0, 0)]
        assert a == [c.spec.run_id for c in EXPERIMENTS["table3_comparison"].build(q, 0, 0)]
    assert PROFILES["cpu"].eval_every == PROFILES["paper-views"].eval_every == 1 and PROFILES["paper"].eval_every > 1
    history, calls = _fit_counting_evaluations(tmp_path, eval_every=1, epochs=3)
    assert len(calls) == 3


def _items():
    from rotnet_repro.experiments import probe, rotnet
    from rotnet_repro.planner import Item

    p = PROFILES["smoke"]
    out = []
    for seed in (0, 1):
        r = rotnet(p, seed)
        out.append(Item(r, "t", 300.0))
        out += [Item(probe(p, 0, r, tap, "nonlinear"), "t", 100.0) for tap in ("conv1", "conv2", "conv3")]
    return out


SPEEDS = {"head": {1: 1.0, 2: 0.9, 3: 0.8, 4: 0.7}, "rotnet_beside": {1: 1.0, 2: 0.9, 3: 0.85, 4: 0.8},
          "head_beside": {2: 0.95, 3: 0.85, 4: 0.75}}


def test_runs_side_by_side_wait_for_their_rotnet_and_each_gets_its_measured_speed():
    from rotnet_repro.planner import Concurrency, schedule

    items = _items()
    conc = Concurrency(**{k: dict(v) for k, v in SPEEDS.items()})
    (serial, t1), = schedule(items, 1, conc)
    assert [it.spec.run_id for it, _, _ in serial] == [it.spec.run_id for it in items]  # priority order, alone
    assert t1 == sum(it.cost_s for it in items)
    (side, t4), = schedule(items, 4, conc)
    assert t4 < t1 and len(side) == len(items)
    # every head ends after its RotNet, and took at least its cost (speeds are at most 1)
    done = {it.spec.run_id: here for it, here, _ in side}
    for it in items:
        assert done[it.spec.run_id] >= it.cost_s - 1e-6
    order = [it.spec.run_id for it, _, _ in side]
    for it in items:
        if it.spec.backbone is not None:
            assert order.index(it.spec.backbone.run_id) < order.index(it.spec.run_id)


def test_runs_cut_at_a_window_end_continue_in_the_next_with_their_time_kept():
    from rotnet_repro.planner import Concurrency, schedule

    items = _items()
    conc = Concurrency(**{k: dict(v) for k, v in SPEEDS.items()})
    segs = schedule(items, 2, conc, lambda k: 250.0)
    assert len(segs) > 2 and all(took <= 250.0 + 1e-6 for _, took in segs)
    spent: dict[str, float] = {}
    for entries, _ in segs:
        for it, here, _ in entries:
            spent[it.spec.run_id] = spent.get(it.spec.run_id, 0.0) + here
    assert set(spent) == {it.spec.run_id for it in items}
    assert all(spent[it.spec.run_id] >= it.cost_s - 1e-6 for it in items)
    assert all(cont for entries, _ in segs[:-1] for it, _, cont in entries if it.spec.run_id not in
               {i.spec.run_id for i, _, c in entries if not c})


def test_a_measurement_prices_the_plan_and_a_cpu_one_never_does(tmp_path):
    import json

    from rotnet_repro.planner import Concurrency

    (tmp_path / "throughput-paper-width-cpu.json").write_text(json.dumps({"device": "cpu (AMD EPYC)",
                                                                           "speeds": SPEEDS}))
    assert Concurrency.load(tmp_path).measured_workers == 1
    (tmp_path / "throughput-paper-width-h200.json").write_text(json.dumps({"device": "NVIDIA H200", "speeds": SPEEDS}))
    c = Concurrency.load(tmp_path)
    assert c.measured_workers == 4 and c.source == "throughput-paper-width-h200.json"
    assert c.speeds(1, 3) == (0.8, 0.75) and c.speeds(0, 2) == (0.0, 0.9) and c.speeds(2, 0) == (0.5, 0.9)
    assert c.best() == 4  # 0.8 + 3 x 0.75 of a process's work per second, against 0.85 + 2 x 0.85 with 3
    assert Concurrency().best() == 1
    assert c.speeds(0, 6) == pytest.approx((0.0, 0.7 * 4 / 6))  # past the measured counts: no further gain
    assert Concurrency().speeds(0, 3) == pytest.approx((0.0, 1 / 3))  # unmeasured: time-slicing


def test_speeds_from_the_two_measurements():
    from rotnet_repro.bench import concurrency_speeds

    sp = concurrency_speeds({1: 100.0, 2: 180.0}, {1: {"rotnet": 10.0, "heads": 0.0}, 2: {"rotnet": 8.0, "heads": 90.0}})
    assert sp["head"] == {1: 1.0, 2: 0.9} and sp["rotnet_beside"] == {1: 1.0, 2: 0.8} and sp["head_beside"] == {2: 0.9}



def test_compile_auto_takes_the_mode_measured_fastest_for_each_kind_of_model(tmp_path, monkeypatch):
    import json

    from rotnet_repro import engine
    from rotnet_repro.planner import measured_compile_modes

    assert measured_compile_modes(tmp_path) == ({}, measured_compile_modes(tmp_path)[1])  # nothing measured: eager
    step_s = {"rotnet step, batch 512": {"eager": 9.0e-3, "default": 6.0e-3, "reduce-overhead": 6.1e-3},
              "conv head step, batch 128": {"eager": 3.0e-3, "default": 2.9e-3, "reduce-overhead": 1.0e-3}}
    (tmp_path / "throughput-paper-width-h200.json").write_text(json.dumps({"device": "NVIDIA H200", "step_s": step_s}))
    modes, source = measured_compile_modes(tmp_path, "h200")
    assert modes == {"rotnet": "default", "head": "reduce-overhead"} and source == "throughput-paper-width-h200.json"
    step_s["rotnet step, batch 512"].update(default=8.8e-3, **{"reduce-overhead": 8.9e-3})  # under 5% faster
    (tmp_path / "throughput-paper-width-h200.json").write_text(json.dumps({"device": "NVIDIA H200", "step_s": step_s}))
    assert measured_compile_modes(tmp_path)[0]["rotnet"] == ""

    compiled = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, mode=None: compiled.append((type(self).__name__, mode)))
    monkeypatch.setattr(engine, "_compile_works", lambda device, mode: mode)
    dev = Device.pick("cpu")
    dev.use_measured_compile({"rotnet": "", "head": "reduce-overhead"})
    dev.model(nn.Linear(2, 2), "rotnet")
    dev.model(nn.Linear(2, 2), "head")
    dev.model(nn.Linear(2, 2))  # no kind: the device's own mode (eager here)
    assert compiled == [("Linear", "reduce-overhead")]


def test_plan_with_a_measured_card_runs_side_by_side_in_fewer_windows(tmp_path, capsys):
    """`plan` on the committed runs, with a card measured (results/bench/throughput-*.json): it defaults to the
    process count that does the most work, and the same protocol takes fewer windows than one at a time."""
    import json
    import re
    from pathlib import Path

    from rotnet_repro.cli import main

    root = Path(__file__).resolve().parent.parent
    (tmp_path / "runs").symlink_to(root / "runs")
    (tmp_path / "results" / "bench").mkdir(parents=True)
    sp = {"head": {1: 1.0, 2: 0.8, 3: 0.67, 4: 0.55}, "rotnet_beside": {1: 1.0, 2: 0.9, 3: 0.85, 4: 0.8},
          "head_beside": {2: 0.8, 3: 0.7, 4: 0.6}}
    (tmp_path / "results" / "bench" / "throughput-paper-width-h200.json").write_text(
        json.dumps({"device": "NVIDIA H200", "speeds": sp}))
    windows = {}
    for args in (["--workers", "1"], []):
        assert main(["plan", "--out", str(tmp_path), "--tree-bytes", "8000000", *args]) == 0
        out = capsys.readouterr().out
        windows[len(args)] = int(re.search(r"\((\d+) window\(s\)", out).group(1))
    assert "4 processes side by side" in out and "throughput-paper-width-h200.json" in out
    if windows[2] <= 2:
        pytest.skip("the committed runs leave too little of the protocol to compare window counts")
    assert windows[0] < windows[2]
