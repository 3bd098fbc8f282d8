"""The compiled path (`--compile`): same numbers as eager within float tolerance, and a clean fallback."""

import logging

import pytest
import torch

from rotnet_repro import engine
from rotnet_repro.engine import Device
from rotnet_repro.errors import UserError
from rotnet_repro.models import NIN


@pytest.mark.slow
def test_compiled_model_matches_eager_and_keeps_its_state_dict_keys():
    dev = Device.pick("cpu", "default")
    if not dev.compile_mode:
        pytest.skip("torch.compile cannot run here")
    torch.manual_seed(0)
    eager = Device.pick("cpu").model(NIN(4, 4, 1 / 16))
    compiled = dev.model(NIN(4, 4, 1 / 16))
    compiled.load_state_dict(eager.state_dict())
    assert list(compiled.state_dict()) == list(eager.state_dict())
    x = torch.randn(8, 3, 32, 32)
    for m in (eager, compiled):
        m.zero_grad()
        m(dev.prep(x)).square().mean().backward()
    assert torch.allclose(eager(x), compiled(x), atol=1e-4, rtol=1e-4)
    g_eager = torch.cat([p.grad.flatten() for p in eager.parameters()])
    g_comp = torch.cat([p.grad.flatten() for p in compiled.parameters()])
    assert torch.allclose(g_eager, g_comp, atol=1e-4, rtol=1e-3)
    # compiled once per architecture: the next run's model of the same shape reuses the graphs (no new capture)
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    again = dev.model(NIN(4, 4, 1 / 16))
    again(dev.prep(x)).square().mean().backward()
    assert counters["stats"]["unique_graphs"] == graphs


def test_compile_falls_back_to_eager_with_a_warning(monkeypatch, caplog):
    def broken(*a, **k):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(engine.torch, "compile", broken)
    with caplog.at_level(logging.WARNING, logger="rotnet_repro"):
        dev = Device.pick("cpu", "default")
    assert dev.compile_mode == "" and "running eager" in caplog.text


def test_unknown_compile_mode_is_refused():
    with pytest.raises(UserError, match="unknown compile mode"):
        Device.pick("cpu", "fastest")


def test_a_compile_failure_on_the_real_model_falls_back_to_eager_for_its_kind(monkeypatch, caplog):
    """Only a tiny function is probed before a run: a failure on the real model (a lowering the compiler lacks, CUDA
    graphs that cannot capture) shows at its first call, and must not fail the run."""
    import torch
    from torch import nn

    from rotnet_repro.engine import Device

    def broken(fn, **kwargs):
        def call(*args, **kw):
            raise RuntimeError("InductorError: no lowering for this op")
        return call

    dev = Device(torch.device("cpu"), compile_mode="default")
    monkeypatch.setattr(torch, "compile", broken)
    m = dev.model(nn.Linear(3, 2), "head")
    caplog.set_level("WARNING", "rotnet_repro")
    x = torch.ones(4, 3)
    assert torch.equal(m(x), m._call_impl(x)) and m(x).shape == (4, 2)
    assert dev.compile_kinds["head"] == "" and caplog.text.count("eager for this kind") == 1
    assert dev.model(nn.Linear(3, 2), "head")._compiled_call_impl is None  # the next model of the kind: eager
