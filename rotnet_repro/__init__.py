"""rotnet_repro: a reproduction of RotNet (Gidaris, Singh & Komodakis, ICLR 2018) on CIFAR-10.

The pieces, to reuse on data of your own (each imported on first use, so that `import rotnet_repro` stays light;
README.md, "Use the pieces", trains a tiny RotNet with them):

    load_rotnet(epoch=100), preprocess(images)    the published 4-block RotNet (SHA-256 checked); uint8 -> its input
    NIN, NonLinearHead, ConvHead, TapClassifier,  the network-in-network with feature taps conv1..convN; the paper's
      make_head                                     heads on a tap
    Split, load_cifar10, synthetic_cifar,         uint8 images and labels; CIFAR-10 (md5 checked) or synthetic; the
      augment, normalize, rotate_batch,             protocol's crop+flip, normalisation, rotations; the first K
      first_k_per_class                             images of each class
    pretext, PretextTask                          the pretext-task registry (pretext.register, .transform, .TASKS)
    Device, fit, fit_many, Trainee, sgd,          the training loop: device and precision, epochs with checkpoints
      train_step, predict, accuracy                 and resume, the paper's SGD, one step, evaluation
    train_rotnet, train_classifier,               the recipes: a RotNet, a head on a tap (frozen or fine-tuned), a
      train_supervised, rotation_accuracy           supervised NIN; a RotNet's pretext accuracy
    FeatureCache, extract                         a frozen backbone's tap features (what train_classifier reads)
    knn_accuracies, linear_probe, train_linear    k-NN and linear probe on frozen features
    Profile, PROFILES, get_profile, RunSpec,      the protocols (smoke, cpu, paper, paper-views) and one run's
      Kind, apply_overrides, RunFolder              config (hashed: its run id), `--set` overrides, its folder
    EXPERIMENTS, Experiment, Cell                 the registry: one experiment per paper artifact, its cells
    run(*experiments, **options)                  `python -m rotnet_repro run` as a call (RunRequest, run_request)

The command line (`python -m rotnet_repro`) does the same and more; README.md lists it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__version__ = "0.1.0"

# each public name -> the module that defines it
_HOME = {
    "pretrained": ["load_rotnet", "preprocess"],
    "models": ["NIN", "NonLinearHead", "ConvHead", "TapClassifier", "make_head"],
    "data": ["Split", "load_cifar10", "synthetic_cifar", "augment", "normalize", "rotate_batch", "first_k_per_class"],
    "pretext": ["PretextTask"],
    "engine": ["Device", "fit", "fit_many", "Trainee", "sgd", "train_step", "predict", "accuracy"],
    "train": ["train_rotnet", "train_classifier", "train_supervised", "rotation_accuracy"],
    "features": ["FeatureCache", "extract"],
    "probes": ["knn_accuracies", "linear_probe", "train_linear"],
    "config": ["Profile", "PROFILES", "get_profile", "RunSpec", "Kind", "apply_overrides"],
    "rundir": ["RunFolder"],
    "experiments": ["EXPERIMENTS", "Experiment", "Cell"],
    "request": ["RunRequest", "run_request"],
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}
_MODULES = ("pretext",)  # submodules that are public names themselves
__all__ = [*_MODULE_OF, *_MODULES, "run"]


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def run(*experiments: str, say: Callable[[str], None] | None = None, **options) -> int:
    """`python -m rotnet_repro run EXPERIMENT... [options]` as a call: train what the experiments (ids of EXPERIMENTS,
    or "all") need, resuming interrupted runs and skipping finished ones, write their rows to
    `<out>/results/<profile>.csv` and redraw their figures. `options` are RunRequest's fields, the command's option
    names (profile="cpu", seeds=1, first_seed=0, out=".", device="auto", overrides=["key=value"], no_train=False,
    time_limit="45m", ...). `say` gets what the command prints (nothing by default). Returns the rows added."""
    from .request import RunRequest, run_request

    if "out" in options:
        options["out"] = str(options["out"])
    return run_request(RunRequest(list(experiments), **options), say or (lambda _: None))
