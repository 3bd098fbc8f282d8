"""`python -m rotnet_repro bench`: where the time of a pretext step goes.

Three ways to feed the same 4-block RotNet one training step of 128 images x 4
rotations, timed interleaved and reported as medians:
1. model compute alone: ready-made float tensors, no data work;
2. our data path: uint8 images on the device, batched crop/flip, rot90, normalise;
3. a naive loader like the original's: torchvision CIFAR10 + per-sample PIL
   transforms in a DataLoader (num_workers=0), per-sample np.rot90, stack.
Then the frozen-backbone classifier: cached features vs recomputing the backbone
every epoch, extrapolated to the paper's 100-epoch non-linear classifier.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .config import Profile
from .data import MEAN, STD, Split, augment, load_cifar10, normalize, rotate_batch, synthetic_cifar
from .errors import UserError
from .models import NIN, NonLinearHead, tap_dim
from .train import Device

BATCH = 128


def _sync(dev: Device) -> None:
    if dev.device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn: Callable[[], None], dev: Device) -> float:
    _sync(dev)
    t = time.perf_counter()
    fn()
    _sync(dev)
    return time.perf_counter() - t


class _RotatedPIL(torch.utils.data.Dataset):
    """The original's pipeline: PIL transforms per image, then np.rot90 copies per image."""

    def __init__(self, images: np.ndarray):
        import torchvision.transforms as T

        self.images = images  # (N, 32, 32, 3) uint8
        self.tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                             T.Normalize(MEAN, STD)])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        img = self.tf(Image.fromarray(self.images[i])).permute(1, 2, 0).numpy()
        rots = [torch.from_numpy(np.ascontiguousarray(np.rot90(img, k))).permute(2, 0, 1) for k in range(4)]
        return torch.stack(rots), torch.arange(4)


def run_bench(profile: Profile, steps: int = 4, data_dir: str | None = None, device: str = "auto") -> dict:
    dev = Device.pick(device)
    try:
        train, _ = load_cifar10(data_dir)
        source = "CIFAR-10"
    except UserError:
        train, _ = synthetic_cifar(n_train=5000, n_test=10)
        source = "synthetic CIFAR-shaped data (no dataset found)"
    print(f"bench: 4-block RotNet, width {profile.width:g} (profile {profile.name}), batch {BATCH} images x 4 "
          f"rotations, {dev.name}, torch {torch.__version__}, threads {torch.get_num_threads()}, data: {source}")
    torch.manual_seed(0)
    model = dev.model(NIN(4, 4, profile.width))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    gpu = train.to(dev.device)
    g = torch.Generator().manual_seed(0)
    synthetic = [(dev.prep(torch.randn(4 * BATCH, 3, 32, 32, device=dev.device)),
                  torch.randint(0, 4, (4 * BATCH,), device=dev.device)) for _ in range(3)]
    rounds = iter(range(1 << 30))

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with dev.autocast():
            loss = F.cross_entropy(model(dev.prep(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def ours() -> None:
        idx = torch.randint(0, len(gpu), (BATCH,), generator=g).to(dev.device)
        x, y = rotate_batch(augment(gpu.images[idx], g), "4")
        step(normalize(x), y)

    loader = torch.utils.data.DataLoader(_RotatedPIL(train.images.permute(0, 2, 3, 1).numpy()), batch_size=BATCH,
                                         shuffle=True, num_workers=0)
    batches = iter(loader)

    def naive() -> None:
        x, y = next(batches)
        step(x.flatten(0, 1).to(dev.device), y.flatten().to(dev.device))

    paths = {"model compute alone": lambda: step(*synthetic[next(rounds) % 3]), "our data path": ours,
             "naive per-sample loader": naive}
    for fn in paths.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in paths}
    names = list(paths)
    for r in range(steps):  # interleaved, the order rotating each round
        for k in names[r % 3:] + names[:r % 3]:
            times[k].append(_timed(paths[k], dev))
    ips = {k: BATCH / statistics.median(v) for k, v in times.items()}
    for k, v in ips.items():
        print(f"  {k:26s} {v:9.1f} images/s ({4 * v:.0f} rotated samples/s)")
    overhead = 100 * (ips["model compute alone"] / ips["our data path"] - 1)
    print(f"  our data path adds {overhead:+.1f}% over model compute alone (target <= 2%)")
    print(f"  our data path is {ips['our data path'] / ips['naive per-sample loader']:.2f}x the naive loader")
    out = {"profile": profile.name, "width": profile.width, "device": dev.name, "cpu": _cpu_model(),
           "torch_version": torch.__version__, "threads": torch.get_num_threads(), "data": source, "steps": steps,
           "images_per_s": ips, "data_overhead_pct": overhead,
           "speedup_vs_naive": ips["our data path"] / ips["naive per-sample loader"]}
    out.update(_bench_cached(profile, gpu, dev, steps))
    return out


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _bench_cached(profile: Profile, data: Split, dev: Device, steps: int) -> dict:
    """Non-linear classifier on conv2 for 100 epochs of 50,000 images: cached vs recomputed."""
    torch.manual_seed(0)
    backbone = dev.model(NIN(4, 4, profile.width)).eval().requires_grad_(False)
    head = dev.model(NonLinearHead(tap_dim("conv2", profile.width)))
    opt = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 10, (BATCH,), device=dev.device)

    def head_step(f: torch.Tensor) -> None:
        with dev.autocast():
            loss = F.cross_entropy(head(f), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def features(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), dev.autocast():
            return backbone.features(dev.prep(normalize(x)), "conv2").float()

    cached = features(data.images[:BATCH]).flatten(1)  # as the cached path stores them for this head

    def recompute() -> None:
        idx = torch.randint(0, len(data), (BATCH,), generator=g).to(dev.device)
        head_step(features(augment(data.images[idx], g)))

    extract_batch = data.images[:dev.eval_batch(profile.eval_batch)]
    fns = {"recompute": recompute, "cached": lambda: head_step(cached), "extract": lambda: features(extract_batch)}
    for fn in fns.values():
        fn()
    t = {k: statistics.median(_timed(fn, dev) for _ in range(max(steps, 3))) for k, fn in fns.items()}
    steps_per_epoch = -(-50000 // BATCH)
    recompute_total = 100 * steps_per_epoch * t["recompute"]
    cached_total = 100 * steps_per_epoch * t["cached"] + (60000 / len(extract_batch)) * t["extract"]
    ratio = recompute_total / cached_total
    print(f"  non-linear classifier on conv2, 100 epochs x 50,000 images (extrapolated from timed steps): "
          f"recompute backbone {recompute_total / 60:.1f} min, cached features {cached_total / 60:.1f} min "
          f"(one 60,000-image extraction included): {ratio:.1f}x faster (target >= 20x)")
    return {"cached_speedup": ratio, "cached_min": cached_total / 60, "recompute_min": recompute_total / 60}
