"""CIFAR-10 as uint8 tensors on the training device, with batched augmentation.

Everything per batch is a tensor operation: pad-4 random crop and horizontal flip
(protocol: "random crop 32 with zero padding 4, random horizontal flip"), the
rotated copies, and normalisation. No per-sample PIL work.
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import ROTATION_SETS
from .errors import UserError

# Protocol: mean = (125.3, 123.0, 113.9)/255, std = (63.0, 62.1, 66.7)/255.
MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)
DATA_ENV = "ROTNET_DATA"


@dataclass
class Split:
    images: torch.Tensor  # (N, 3, 32, 32) uint8
    labels: torch.Tensor  # (N,) int64

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def subset(self, idx: torch.Tensor) -> Split:
        return Split(self.images[idx], self.labels[idx])

    def __len__(self) -> int:
        return len(self.labels)


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_ENV, "data"))


def check_cifar10(root: Path) -> None:
    """Raise a UserError naming the missing or corrupt file (torchvision's md5s)."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    folder = root / CIFAR10.base_folder
    for name, md5 in CIFAR10.train_list + CIFAR10.test_list + [[CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]:
        path = folder / name
        if not path.exists():
            raise UserError(
                f"CIFAR-10 not found: {path} is missing. Pass --data-dir (or set {DATA_ENV}) to the folder "
                f"that holds {CIFAR10.base_folder}/, or add --download to fetch it there."
            )
        try:
            if not path.is_file():
                raise IsADirectoryError(21, "not a regular file")
            ok = check_integrity(str(path), md5)
        except OSError as e:  # unreadable: permissions, a folder in the file's place, an I/O error
            raise UserError(f"CIFAR-10 file {path} cannot be read ({e.strerror or e}). Make it readable, or pass "
                            f"--data-dir (or set {DATA_ENV}) to another copy of {CIFAR10.base_folder}/.") from None
        if not ok:
            raise UserError(
                f"CIFAR-10 file {path} is corrupt (md5 differs from torchvision's {md5}). "
                f"Delete {folder} and download again (--download)."
            )


def load_cifar10(root: Path | str | None = None, download: bool = False) -> tuple[Split, Split]:
    """(train, test) as uint8 NCHW tensors in the dataset's order, on the CPU."""
    from torchvision.datasets import CIFAR10

    root = Path(root) if root is not None else default_data_dir()
    if download:
        existed = root.exists()
        try:
            CIFAR10(str(root), train=True, download=True)
        except Exception as e:  # network errors come in many types
            if not existed:  # leave nothing behind
                shutil.rmtree(root, ignore_errors=True)
            raise UserError(f"could not download CIFAR-10 into {root}: {e}. Download it by hand "
                            f"or pass --data-dir to a folder that holds it.") from None
    check_cifar10(root)
    out = []
    for train in (True, False):
        ds = CIFAR10(str(root), train=train, download=False)
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        out.append(Split(images, torch.tensor(ds.targets, dtype=torch.int64)))
    return out[0], out[1]


def synthetic_cifar(n_train: int = 200, n_test: int = 100, seed: int = 0) -> tuple[Split, Split]:
    """CIFAR-shaped uint8 data with a learnable signal: class-dependent colour blobs."""
    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> Split:
        labels = torch.arange(n) % 10
        base = torch.randint(0, 256, (n, 3, 32, 32), generator=g).float() * 0.3
        yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
        # an off-centre blob whose position and colour depend on the class, so that
        # both rotations and classes can be learned
        cy, cx = 8 + (labels % 3) * 4, 6 + (labels % 5) * 3
        blob = ((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2 < 30).float()
        colour = torch.stack([(labels * 37) % 256, (labels * 91) % 256, (labels * 53) % 256], 1).float()
        img = base + blob[:, None] * colour[:, :, None, None] * 0.7
        return Split(img.clamp(0, 255).to(torch.uint8), labels)

    return make(n_train), make(n_test)


def first_k_per_class(labels: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the first k images of each class in the dataset's order (Fig. 5(b))."""
    if k <= 0:
        return torch.arange(len(labels))
    labels = labels.cpu()
    keep = torch.zeros(len(labels), dtype=torch.bool)
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        if len(idx) < k:
            raise UserError(f"class {int(c)} has {len(idx)} images, fewer than the {k} asked for")
        keep[idx[:k]] = True
    return keep.nonzero().flatten()


def epoch_indices(n: int, generator: torch.Generator, samples: int = 0) -> torch.Tensor:
    """A random order of range(n); cycled (fresh permutations) to `samples` if given."""
    if samples <= 0:
        return torch.randperm(n, generator=generator)
    reps = -(-samples // n)
    return torch.cat([torch.randperm(n, generator=generator) for _ in range(reps)])[:samples]


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Pad-4 (zeros) random 32x32 crop and random horizontal flip, batched, uint8 in/out."""
    n, device = images.shape[0], images.device
    padded = F.pad(images, (4, 4, 4, 4))
    # drawn on the CPU generator (the same draws on every device), then one copy, asynchronous from pinned memory
    draws = torch.stack([torch.randint(0, 9, (n,), generator=generator),
                         torch.randint(0, 9, (n,), generator=generator),
                         (torch.rand(n, generator=generator) < 0.5).long()])
    if device.type == "cuda":
        draws = draws.pin_memory().to(device, non_blocking=True)
    dy, dx, flip = draws[0], draws[1], draws[2].bool()
    ar = torch.arange(32, device=device)
    rows = (dy[:, None] + ar)[:, :, None]  # (n, 32, 1)
    cols = dx[:, None] + ar
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, :]  # (n, 1, 32)
    # advanced indices separated by a slice put their dims first: (n, 32, 32, C)
    out = padded[torch.arange(n, device=device)[:, None, None], :, rows, cols]
    return out.permute(0, 3, 1, 2)


@functools.cache
def _mean_std(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalisation constants, made once per device (no host-to-device copy per batch)."""
    return (torch.tensor(MEAN, dtype=dtype).to(device)[:, None, None],
            torch.tensor(STD, dtype=dtype).to(device)[:, None, None])


def normalize(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    x = images.to(dtype) / 255
    mean, std = _mean_std(x.device, dtype)
    return (x - mean) / std


@functools.cache
def _rotation_grid(angle: int, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The sampling grid of a counter-clockwise rotation by `angle` about the image centre, and the mask of the
    pixels it takes from inside the image: both made once per device, as torchvision's `rotate` makes them on every
    call (its matrix goes host-to-device each time), so that a step rotates with no host synchronisation."""
    from torchvision.transforms.functional import _get_inverse_affine_matrix

    theta = torch.tensor(_get_inverse_affine_matrix([0.0, 0.0], -angle, [0.0, 0.0], 1.0, [0.0, 0.0]),
                         dtype=torch.float32).reshape(1, 2, 3)
    base = torch.empty(1, h, w, 3)
    base[..., 0].copy_(torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w))
    base[..., 1].copy_(torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h).unsqueeze_(-1))
    base[..., 2].fill_(1)
    grid = base.view(1, h * w, 3).bmm(theta.transpose(1, 2).div_(torch.tensor([0.5 * w, 0.5 * h])))
    grid = grid.view(1, h, w, 2)
    mask = F.grid_sample(torch.ones(1, 1, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return grid.to(device), mask.to(device)


def rotate(images: torch.Tensor, angle: int) -> torch.Tensor:
    """Counter-clockwise rotation; right angles are exact (flip/transpose), others bilinear with black corners (the
    paper's "visual artifacts"), equal to torchvision's `rotate(..., BILINEAR, fill=0)` (tested)."""
    if angle % 90 == 0:
        return torch.rot90(images, angle // 90, dims=(2, 3))
    x = images.float() if images.dtype == torch.uint8 else images
    grid, mask = _rotation_grid(angle % 360, x.shape[-2], x.shape[-1], x.device)
    out = F.grid_sample(x, grid.to(x.dtype).expand(x.shape[0], -1, -1, -1), mode="bilinear", padding_mode="zeros",
                        align_corners=False) * mask.to(x.dtype)
    return out.round().clamp(0, 255).to(torch.uint8) if images.dtype == torch.uint8 else out


def rotate_batch(images: torch.Tensor, rotations: str = "4") -> tuple[torch.Tensor, torch.Tensor]:
    """All rotated copies of a batch, rotation-major, with labels 0..R-1."""
    angles = ROTATION_SETS[rotations]
    x = torch.cat([rotate(images, a) for a in angles])
    y = torch.arange(len(angles), device=images.device).repeat_interleave(images.shape[0])
    return x, y
