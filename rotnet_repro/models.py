"""Network in Network with named feature taps conv1..convN, and the heads.

Architecture from protocol.md: each conv is Conv(bias=False) -> BN -> ReLU with
"same" padding; block 1 ends in MaxPool(3, 2, 1), block 2 in AvgPool(3, 2, 1),
blocks 3-5 have no pooling on CIFAR.

Initialisation as in the official code: the backbone keeps PyTorch's default init
(the official NIN defines an init but never calls it); the heads on frozen or
fine-tuned features get the official classifier module's init, which it does call
(`init_head`: Conv2d ~ N(0, sqrt(2 / (k*k*out_channels))), BatchNorm weight 1 and
bias 0, Linear ~ N(0, sqrt(2 / out_features)) with bias 0).
"""

from __future__ import annotations

import math

import torch
from torch import nn

# (out channels, kernel) of each conv, per block; protocol.md's table.
BLOCK_CONVS = {
    1: ((192, 5), (160, 1), (96, 1)),
    2: ((192, 5), (192, 1), (192, 1)),
    3: ((192, 3), (192, 1), (192, 1)),
}


def _ch(c: int, width: float) -> int:
    return max(1, round(c * width))


def tap_channels(tap: str, width: float) -> int:
    return _ch(96 if tap == "conv1" else 192, width)


def tap_dim(tap: str, width: float) -> int:
    """Flattened size of a tap's map: conv1 = 96*16*16, others 192*8*8 at full width."""
    side = 16 if tap == "conv1" else 8
    return tap_channels(tap, width) * side * side


def nin_block(index: int, in_ch: int, width: float = 1.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for out, k in BLOCK_CONVS[min(index, 3)]:
        out = _ch(out, width)
        layers += [nn.Conv2d(in_ch, out, k, padding=k // 2, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
        in_ch = out
    if index == 1:
        layers.append(nn.MaxPool2d(3, stride=2, padding=1))
    elif index == 2:
        layers.append(nn.AvgPool2d(3, stride=2, padding=1))
    return nn.Sequential(*layers)


class NIN(nn.Module):
    """NIN with `blocks` blocks and a GAP + Linear head of `n_out` classes."""

    def __init__(self, blocks: int = 4, n_out: int = 4, width: float = 1.0, bn_init: str = "ones"):
        super().__init__()
        self.width = width
        self.blocks = nn.ModuleDict()
        ch = 3
        for i in range(1, blocks + 1):
            self.blocks[f"conv{i}"] = nin_block(i, ch, width)
            ch = tap_channels(f"conv{i}", width)
        self.fc = nn.Linear(ch, n_out)
        if bn_init == "uniform":  # PyTorch 0.2, which the official code ran on, drew BN weights from U(0, 1)
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    nn.init.uniform_(m.weight, 0.0, 1.0)
        elif bn_init != "ones":
            raise ValueError(f"unknown bn_init {bn_init!r}: ones or uniform")

    @property
    def taps(self) -> list[str]:
        return list(self.blocks)

    def features(self, x: torch.Tensor, tap: str) -> torch.Tensor:
        """The output of block `tap`, running only the blocks up to it."""
        for name, block in self.blocks.items():
            x = block(x)
            if name == tap:
                return x
        raise KeyError(f"unknown tap {tap!r}; this NIN has {self.taps}")

    def all_features(self, x: torch.Tensor, upto: str | None = None) -> dict[str, torch.Tensor]:
        out = {}
        for name, block in self.blocks.items():
            x = out[name] = block(x)
            if name == upto:
                break
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks.values():
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))


class NonLinearHead(nn.Sequential):
    """Protocol: flatten -> Linear(d,200) -> BN1d -> ReLU -> Linear(200,200) -> BN1d -> ReLU -> Linear(200,10).

    BatchNorm1d, where the original used BatchNorm2d on 2-D input (fails on current PyTorch).
    """

    def __init__(self, in_dim: int, n_out: int = 10, hidden: int = 200):
        super().__init__(
            nn.Flatten(),
            nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, n_out),
        )


class ConvHead(nn.Module):
    """"RotNet + conv": a freshly initialised NIN block 3 on the tap, GAP, Linear."""

    def __init__(self, in_ch: int, n_out: int = 10, width: float = 1.0):
        super().__init__()
        self.block = nin_block(3, in_ch, width)
        self.fc = nn.Linear(_ch(192, width), n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.block(x).mean(dim=(2, 3)))


# Part of every classifier's identity (config.RunSpec.canonical): heads trained with
# another init are other runs.
HEAD_INIT = "official"


def init_head(module: nn.Module) -> nn.Module:
    """The official classifier init (protocol.md, "Head init"), applied to every layer of a head."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (k * m.out_channels)))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / m.out_features))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def make_head(head: str, tap: str, width: float, n_out: int = 10) -> nn.Module:
    """A freshly (officially) initialised classifier head for a tap."""
    if head == "nonlinear":
        return init_head(NonLinearHead(tap_dim(tap, width), n_out))
    if head == "conv":
        return init_head(ConvHead(tap_channels(tap, width), n_out, width))
    raise ValueError(f"unknown head {head!r}")


class TapClassifier(nn.Module):
    """Backbone blocks up to `tap` feeding a head; frozen unless fine-tuned."""

    def __init__(self, backbone: NIN, tap: str, head: nn.Module, frozen: bool = True):
        super().__init__()
        self.backbone, self.tap, self.head, self.frozen = backbone, tap, head, frozen
        if frozen:
            backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> TapClassifier:
        super().train(mode)
        if self.frozen:  # BN running stats of a frozen backbone are never updated
            self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen:
            with torch.no_grad():
                f = self.backbone.features(x, self.tap)
        else:
            f = self.backbone.features(x, self.tap)
        return self.head(f)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
