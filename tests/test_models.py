import pytest
import torch
import torch.nn.functional as F

from rotnet_repro.models import NIN, TapClassifier, make_head, n_params


@pytest.mark.parametrize("blocks,expected", [(3, 1_004_484), (4, 1_411_140), (5, 1_817_796)])
def test_parameter_counts_match_protocol(blocks, expected):
    assert n_params(NIN(blocks, 4)) == expected


CASES = [(b, f"conv{t}", h) for b in (3, 4, 5) for t in range(1, b + 1) for h in ("nonlinear", "conv")]


@pytest.mark.parametrize("blocks,tap,head", CASES)
def test_shapes_of_every_tap_and_head(blocks, tap, head):
    width = 0.25
    net = NIN(blocks, 4, width).eval()
    x = torch.randn(2, 3, 32, 32)
    f = net.features(x, tap)
    side = 16 if tap == "conv1" else 8
    assert f.shape == (2, round((96 if tap == "conv1" else 192) * width), side, side)
    assert net(x).shape == (2, 4)
    assert make_head(head, tap, width).eval()(f).shape == (2, 10)


def test_full_width_tap_dims():
    net = NIN(4, 4).eval()
    feats = net.all_features(torch.randn(1, 3, 32, 32))
    assert [f[0].numel() for f in feats.values()] == [24_576, 12_288, 12_288, 12_288]


def test_loss_decreases_on_a_tiny_batch():
    torch.manual_seed(0)
    net = NIN(3, 4, 0.125)
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 4, (16,))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("head", ["nonlinear", "conv"])
def test_frozen_backbone_is_untouched_by_classifier_steps(head):
    torch.manual_seed(0)
    backbone = NIN(4, 4, 0.125)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    model = TapClassifier(backbone, "conv2", make_head(head, "conv2", 0.125))
    params = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in params} == {id(p) for p in model.head.parameters()}
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
    model.train()
    assert not backbone.training and model.head.training
    for _ in range(3):
        loss = F.cross_entropy(model(torch.randn(8, 3, 32, 32)), torch.randint(0, 10, (8,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in backbone.state_dict().items():  # weights and BN buffers alike
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in backbone.parameters())


def test_finetuned_backbone_learns():
    torch.manual_seed(0)
    backbone = NIN(4, 4, 0.125)
    before = backbone.blocks.conv1[0].weight.clone()
    model = TapClassifier(backbone, "conv2", make_head("conv", "conv2", 0.125), frozen=False).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = F.cross_entropy(model(torch.randn(8, 3, 32, 32)), torch.randint(0, 10, (8,)))
    loss.backward()
    opt.step()
    assert backbone.training and not torch.equal(before, backbone.blocks.conv1[0].weight)


@pytest.mark.parametrize("head", ["nonlinear", "conv"])
def test_heads_get_the_official_init(head):
    torch.manual_seed(0)
    h = make_head(head, "conv2", 1.0)
    seen = set()
    for m in h.modules():
        if isinstance(m, torch.nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            assert m.weight.std().item() == pytest.approx((2 / (k * m.out_channels)) ** 0.5, rel=0.05)
            seen.add("conv")
        elif isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and not m.bias.any()
        elif isinstance(m, torch.nn.Linear):
            assert m.weight.std().item() == pytest.approx((2 / m.out_features) ** 0.5, rel=0.1)
            assert m.bias is None or not m.bias.any()
            seen.add("linear")
    assert seen == ({"conv", "linear"} if head == "conv" else {"linear"})


def test_backbone_keeps_pytorch_default_init():
    torch.manual_seed(0)
    conv = NIN(4, 4).blocks.conv2[0]
    bound = (1 / (conv.in_channels * 25)) ** 0.5  # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert conv.weight.abs().max().item() <= bound


def test_fused_sgd_takes_the_same_steps_as_foreach():
    """The fused optimiser (used on CUDA) against the default one, on the CPU where torch supports it."""
    from rotnet_repro.config import PROFILES
    from rotnet_repro.engine import sgd

    torch.manual_seed(0)
    a = torch.nn.Linear(8, 4)
    b = torch.nn.Linear(8, 4)
    b.load_state_dict(a.state_dict())
    try:
        opts = [sgd(a.parameters(), PROFILES["paper"]), sgd(b.parameters(), PROFILES["paper"], fused=True)]
    except (RuntimeError, ValueError) as e:
        pytest.skip(f"fused SGD not supported here: {e}")
    x, y = torch.randn(16, 8), torch.randint(0, 4, (16,))
    for _ in range(3):
        for m, o in zip((a, b), opts, strict=True):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
    assert torch.allclose(a.weight, b.weight, atol=1e-6)
