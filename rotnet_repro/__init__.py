"""rotnet_repro: a reproduction of RotNet (Gidaris, Singh & Komodakis, ICLR 2018) on CIFAR-10.

The names a user needs, imported on first use (so that `import rotnet_repro` stays light):

    load_rotnet(epoch=100)      the published full-protocol 4-block RotNet (SHA-256 checked), a `NIN`
    preprocess(images)          uint8 images (NCHW or NHWC, torch or numpy) -> the normalised float batch
    NIN                         the network-in-network with feature taps conv1..convN
    PROFILES, get_profile       the protocols: smoke, cpu (scaled), paper (full), paper-views
    EXPERIMENTS                 the registry: one experiment per paper artifact
    run(experiment, ...)        train what an experiment needs (finished runs skipped) and write its rows

The command line (`python -m rotnet_repro`) does the same and more; README.md lists it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

__version__ = "0.1.0"
__all__ = ["load_rotnet", "preprocess", "NIN", "PROFILES", "get_profile", "EXPERIMENTS", "run"]

_HOME = {"load_rotnet": "pretrained", "preprocess": "pretrained", "NIN": "models", "PROFILES": "config",
         "get_profile": "config", "EXPERIMENTS": "experiments"}


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(experiment: str, profile: str = "cpu", seed: int = 0, out: str | Path = ".", data_dir: str | Path | None = None,
        download: bool = False, device: str = "auto", train: bool = True) -> int:
    """Train what `experiment` (an id of EXPERIMENTS) needs at `profile` for one seed, resuming interrupted runs
    and skipping finished ones, and append its rows to `<out>/results/<profile>.csv`; returns how many rows were
    added. `train=False`: only the rows of finished runs."""
    from .config import get_profile
    from .experiments import resolve
    from .runner import Runner, RunOptions

    runner = Runner(get_profile(profile), out, data_dir, download, device, options=RunOptions(train_missing=train))
    return runner.run_experiment(resolve([experiment])[0], seed)
