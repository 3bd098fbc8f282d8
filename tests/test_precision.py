"""Training precision on a CPU: bf16 autocast where the CPU computes bf16 natively, fp32 otherwise or where the
profile says so; every epoch stamped with what it was computed in, and a run resumed in another precision keeps
one segment per precision."""

import math

import torch
from torch import nn

from rotnet_repro.config import PROFILES, apply_overrides
from rotnet_repro.engine import Device, fit, segments


def test_compute_follows_the_profile_and_the_cpu():
    cpu = torch.device("cpu")
    assert Device(cpu, precision="bf16", cpu_bf16=True).compute == "bf16"
    assert Device(cpu, precision="bf16", cpu_bf16=False).compute == "fp32"  # emulated bf16 would be slower
    assert Device(cpu, precision="fp32", cpu_bf16=True).compute == "fp32"
    with Device(cpu, precision="bf16", cpu_bf16=True).autocast():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16
    with Device(cpu, precision="bf16", cpu_bf16=False).autocast():
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.float32


def test_segments_split_by_device_and_precision_and_read_unstamped_epochs_as_the_code_computed_them():
    history = ([{"epoch": e} for e in (1, 2)]  # before epochs named their device
               + [{"epoch": e, "device": "NVIDIA H200"} for e in (3, 4)]
               + [{"epoch": e, "device": "cpu x2"} for e in (5, 6)]  # a CPU computed fp32 before the stamp
               + [{"epoch": e, "device": "cpu x2", "precision": "bf16"} for e in (7, 8)])
    assert segments(history) == [
        {"device": "not recorded", "precision": "not recorded", "epochs": [1, 2]},
        {"device": "NVIDIA H200", "precision": "bf16", "epochs": [3, 4]},
        {"device": "cpu x2", "precision": "fp32", "epochs": [5, 6]},
        {"device": "cpu x2", "precision": "bf16", "epochs": [7, 8]}]
    assert segments(history[2:4], "fp32")[0]["precision"] == "fp32"  # an fp32 variant's GPU epochs


def _fit(tmp_path, dev: Device, name: str) -> list[dict]:
    """A small conv net on a separable synthetic task (the class is which quadrant is bright)."""
    p = apply_overrides(PROFILES["smoke"], ["supervised_epochs=6", "eval_every=6"])
    g = torch.Generator().manual_seed(1)
    x = torch.rand(256, 3, 8, 8, generator=g) * 0.5
    y = torch.randint(0, 4, (256,), generator=g)
    for i in range(4):
        r, c = divmod(i, 2)
        x[y == i, :, 4 * r:4 * r + 4, 4 * c:4 * c + 4] += 1.0
    torch.manual_seed(0)
    model = dev.model(nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                    nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 4)))

    def evaluate() -> float:
        with torch.no_grad(), dev.autocast():
            return float((model(dev.prep(x)).argmax(1) == y).float().mean() * 100)

    history, _ = fit(model, model.parameters(), p, "supervised",
                     lambda gen: [(dev.prep(x[i:i + 64]), y[i:i + 64]) for i in range(0, 256, 64)], evaluate, dev,
                     tmp_path / f"{name}.pt", 0, name)
    return history


def test_bf16_and_fp32_training_reach_the_same_accuracy_and_each_epoch_says_which(tmp_path):
    cpu = torch.device("cpu")
    h16 = _fit(tmp_path, Device(cpu, precision="bf16", cpu_bf16=True), "bf16")
    h32 = _fit(tmp_path, Device(cpu, precision="fp32"), "fp32")
    assert {h["precision"] for h in h16} == {"bf16"} and {h["precision"] for h in h32} == {"fp32"}
    a16, a32 = h16[-1]["test_acc"], h32[-1]["test_acc"]
    assert a32 > 90 and math.isfinite(a16) and abs(a16 - a32) <= 5  # same task learnt, within rounding noise
    assert h16[-1]["loss"] != h32[-1]["loss"]  # bf16 did compute differently


def test_bf16_only_where_the_cpu_has_bf16_instructions():
    from rotnet_repro.engine import cpu_has_bf16

    xeon = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni\n"  # AVX-512, no BF16: emulated
    zen4 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_bf16\n"
    spr = "flags\t\t: avx512f amx_bf16 amx_tile\n"
    arm = "Features\t: fp asimd sve bf16 i8mm\n"
    assert not cpu_has_bf16(xeon) and cpu_has_bf16(zen4) and cpu_has_bf16(spr) and cpu_has_bf16(arm)
    assert not cpu_has_bf16("")
