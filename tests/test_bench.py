"""bench's whole-protocol ETA: heads that share a backbone pass pay for it once, as `run` trains them."""

import pytest

from rotnet_repro.bench import protocol_eta
from rotnet_repro.config import get_profile
from rotnet_repro.experiments import EXPERIMENTS
from rotnet_repro.train import shares_backbone_pass


def _frozen_heads(profile):
    specs = {}
    for e in EXPERIMENTS.values():
        if e.paper:
            for c in e.build(profile, 0, 0):
                specs[c.spec.run_id] = c.spec
    return [s for s in specs.values() if s.kind == "classifier" and not s.finetune]


def test_eta_counts_one_backbone_pass_per_group_of_sibling_heads():
    p = get_profile("paper")
    heads = _frozen_heads(p)
    groups: list[list] = []
    for s in heads:  # grouped pairwise, as the runner finds siblings
        g = next((g for g in groups if shares_backbone_pass(g[0], s)), None)
        (g.append(s) if g is not None else groups.append([s]))
    assert len(groups) < len(heads)  # Table 1's taps on one RotNet share a pass
    images = {id(s): getattr(p, f"{s.head}_epochs") * p.samples_per_epoch for s in heads}
    # rotated samples and supervised images free, a head's step free: what is left is one pass per group
    assert protocol_eta(p, 0.0, 1.0, 0.0) == sum(images[id(g[0])] for g in groups)
    # a step as dear as the whole pass: no saving, the ETA of separate runs
    assert protocol_eta(p, 1e-4, 1.0, 1.0) == protocol_eta(p, 1e-4, 1.0)
    assert protocol_eta(p, 0.0, 1.0) == sum(images.values())


def test_heads_of_a_views_profile_never_share_a_pass():
    p = get_profile("cpu")
    assert protocol_eta(p, 1e-4, 1.0, 0.0) == protocol_eta(p, 1e-4, 1.0)


@pytest.mark.slow
def test_the_throughput_measurement_runs_on_the_cpu(tmp_path, monkeypatch):
    """bench --throughput (gpu/measure.sh's first part) on the smoke width: step times per kind, 1 and 2 processes
    side by side (heads alone, a RotNet beside a head), the speeds they give, the remaining protocol's ETA at each
    count, the top ops."""
    from rotnet_repro.bench import throughput
    from rotnet_repro.config import PROFILES

    monkeypatch.chdir(tmp_path)  # no runs/ here: the whole smoke protocol remains
    out = throughput(PROFILES["smoke"], "cpu", steps=2, processes=2, seconds=0.5, compile_model=False)
    assert set(out["step_s"]) == {"rotnet step, batch 512", "conv head step, batch 128"}
    assert all(v["eager"] > 0 for v in out["step_s"].values())
    assert set(out["head_steps_per_s_by_processes"]) == {1, 2}
    mixed = out["rotnet_beside_heads"]
    assert mixed[1]["heads"] == 0 and mixed[2]["rotnet"] > 0 and mixed[2]["heads"] > 0
    assert out["speeds"]["head"][1] == 1.0 and set(out["speeds"]["head_beside"]) == {2}
    eta = out["remaining_eta"]
    assert eta[1]["runs"] == eta[2]["runs"] > 0 and eta[1]["device_h"] > 0 and eta[2]["device_h"] > 0
    ops = out["top_ops"]
    assert len(ops) == 10 and ops[0]["self_ms"] >= ops[-1]["self_ms"] > 0


def test_bench_precision_times_both_precisions_and_reports_ratios_and_peak_fractions(tmp_path):
    import json

    from rotnet_repro.bench import bench_markdown, precision

    out = precision(widths=(1 / 16,), repeats=1, device="cpu")
    row = out["widths"][str(1 / 16)]
    assert row["bf16_over_fp32"] == row["fp32"]["step_s"] / row["bf16"]["step_s"]
    assert all(0 < row[k]["peak_fraction"] and row[k]["samples_per_s"] > 0 for k in ("fp32", "bf16"))
    assert set(out["peak_tflops"]) == {"fp32", "bf16"} and out["date"]
    (tmp_path / "p.json").write_text(json.dumps(out))
    md = bench_markdown(tmp_path)
    assert "`bench --precision`" in md and f"| {1 / 16:g} |" in md
