"""The paper-scale RotNet, pretrained: skip pretraining and extract features.

    from rotnet_repro.pretrained import load_rotnet, preprocess
    net = load_rotnet()                      # 4 blocks, 4 rotations, pretext epoch 100, eval mode
    x = preprocess(uint8_images)             # (N, 3, 32, 32) or (N, 32, 32, 3) uint8 -> normalised float
    with torch.no_grad():                    # features only: no graph kept (2.7 GB against 6.1 GB for 1,000 images)
        feats = net.all_features(x)          # {"conv1": (N, 96, 16, 16), "conv2": (N, 192, 8, 8), ...}

The weights are the `paper` profile's shared RotNet (full width, 100 pretext epochs,
paper-text schedule), trained by this package on an H200 (its run record:
runs/paper/rotnet-9e6957a33b/result.json). They are plain tensors read with
`torch.load(weights_only=True)`, which cannot run code, after their SHA-256 is checked
against the table below. Epoch 100 is in the tracked tree (runs/paper/.../model.pt); the
snapshots at epochs 20/40/60/80 are committed to the git history and listed in
runs/weights.json (they would otherwise travel with every GPU call): in a clone of the
repository they are restored from the history when first loaded (`python -m rotnet_repro
weights restore` does it for all). Measured accuracies are in README.md ("Pretrained RotNet").
"""

from __future__ import annotations

from pathlib import Path

import torch

from .data import normalize
from .errors import UserError
from .models import NIN
from .rundir import Output
from .weights import MANIFEST, WeightsError, ensure, sha256

__all__ = ["load_rotnet", "preprocess", "weights_path", "WEIGHTS"]

RUN_ID = "rotnet-9e6957a33b"  # rotnet(PROFILES["paper"], seed 0): 4 blocks, rotations 0/90/180/270
# pretext epoch -> (file in the run folder, SHA-256)
WEIGHTS = {
    20: ("snapshot_20.pt", "c80c4f3c6d51cda9c217b7912d7e56a454e3d78b6194050eaaa317b57f1601c4"),
    40: ("snapshot_40.pt", "fe23efa145b604f1b9715596bf808de5d732b906ddaf7f909cbfae0b62832ab0"),
    60: ("snapshot_60.pt", "8515c86e9f69e67f73bede0ca026ee5b332f071bde91fcdf8f5357c0ab20aefc"),
    80: ("snapshot_80.pt", "abfe7826996ae2a4f9cff1a836d5b5e859f35e0f7ca22685732d1faf21ec9952"),
    100: ("model.pt", "ab770f34a7be0acf637cb16a8cc6dc2e33fcceea70f47402144fc603b33a73d6"),
}
DEFAULT_RUNS = Output(Path(__file__).resolve().parent.parent).runs / "paper"  # the repository's runs


def preprocess(images) -> torch.Tensor:
    """uint8 CIFAR-shaped images -> the network's input (the protocol's mean and std): a torch tensor or a numpy
    array, (N, 3, 32, 32) or (N, 32, 32, 3) (as CIFAR-10's pickles and torchvision's `.data` hold them). Anything
    else (floats already scaled, other shapes) is refused with a line that says what is expected."""
    import numpy as np

    x = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(x, torch.Tensor):
        raise UserError(f"preprocess takes a uint8 torch tensor or numpy array, not {type(images).__name__}")
    if x.dtype != torch.uint8:
        raise UserError(f"preprocess takes uint8 images (0-255), not {x.dtype}: for floats in [0, 1] pass "
                        "(x * 255).round().to(torch.uint8)")
    if x.dim() == 4 and x.shape[1:] == (32, 32, 3):
        x = x.permute(0, 3, 1, 2)
    if x.dim() != 4 or x.shape[1:] != (3, 32, 32):
        raise UserError(f"preprocess takes images of shape (N, 3, 32, 32) or (N, 32, 32, 3), not {tuple(x.shape)}")
    return normalize(x.contiguous())


def weights_path(epoch: int = 100, runs_dir: Path | str | None = None) -> Path:
    if epoch not in WEIGHTS:
        raise UserError(f"no pretrained RotNet at pretext epoch {epoch}: choose one of {sorted(WEIGHTS)}")
    path = Path(runs_dir or DEFAULT_RUNS) / RUN_ID / WEIGHTS[epoch][0]
    try:
        here = ensure(path)  # restored from the git history where runs/weights.json lists it
    except WeightsError:
        here = path.exists()  # its SHA-256 is checked below, with the published one
    if not here:
        hint = ("run `python -m rotnet_repro weights restore` in a full git clone of this repository (a shallow "
                "clone lacks the history that holds it: `git fetch --unshallow`)" if (path.parents[2] / MANIFEST).exists()
                else "pass runs_dir= to the runs/paper/ folder of a git clone of this repository")
        raise UserError(f"pretrained weights not found: {path}; {hint}")
    return path


def load_rotnet(epoch: int = 100, runs_dir: Path | str | None = None, device: str | torch.device = "cpu") -> NIN:
    """The pretrained 4-block RotNet (backbone and rotation head) at a pretext epoch, in eval mode."""
    path = weights_path(epoch, runs_dir)
    expected = WEIGHTS[epoch][1]
    if sha256(path) != expected:
        raise UserError(f"{path} does not match its published SHA-256 ({expected[:12]}...): the file is damaged "
                        "or not the published one; delete it and load again (it is restored from the git history: "
                        "`python -m rotnet_repro weights restore`), or import it again")
    state = torch.load(path, map_location=device, weights_only=True)
    net = NIN(4, 4, 1.0)
    net.load_state_dict(state)
    return net.to(device).eval()

