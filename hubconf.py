"""torch.hub entry points for the published RotNet (from a clone of this repository):

    net = torch.hub.load("path/to/rotnet-repro", "rotnet", source="local")             # pretext epoch 100
    net = torch.hub.load("path/to/rotnet-repro", "rotnet", epoch=40, source="local")   # a Fig. 5(a) snapshot

The weights are checked against their published SHA-256 (rotnet_repro/pretrained.py); the snapshots are restored
from the git history where they are not in the tree (a full clone, not a shallow one).
"""

dependencies = ["torch"]


def rotnet(pretrained: bool = True, epoch: int = 100, device: str = "cpu"):
    """The full-protocol 4-block RotNet (NIN, CIFAR-10, 4 rotations) in eval mode; `net.all_features(x)` gives the
    conv1..conv4 taps of `rotnet_repro.pretrained.preprocess(images)`. pretrained=False: the same network, untrained."""
    from rotnet_repro.models import NIN
    from rotnet_repro.pretrained import load_rotnet

    if not pretrained:
        return NIN(4, 4, 1.0).to(device).eval()
    return load_rotnet(epoch, device=device)
