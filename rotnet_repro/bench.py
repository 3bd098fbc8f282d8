"""`python -m rotnet_repro bench`: where the time of a pretext step goes.

Three ways to feed the same 4-block RotNet one training step of 128 images x 4
rotations, timed interleaved and reported as medians:
1. model compute alone: ready-made float tensors, no data work;
2. our data path: uint8 images on the device, batched crop/flip, rot90, normalise;
3. a naive loader like the original's: torchvision CIFAR10 + per-sample PIL
   transforms in a DataLoader (num_workers=0), per-sample np.rot90, stack.
Then the frozen-backbone classifier: cached features vs recomputing the backbone
every epoch, extrapolated to the paper's 100-epoch non-linear classifier. With
--compile the model is also timed compiled (torch.compile) and, on CUDA, graphed
(mode reduce-overhead: CUDA graphs). Achieved TFLOP/s come from torch's FLOP counter
on a training step, against a matmul peak measured on the same device; the ETA of a
profile's whole protocol (one seed, every run exact, heads on one backbone sharing its
pass as `run` trains them) multiplies the measured per-sample times by the registry's
sample counts.
"""

from __future__ import annotations

import copy
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .config import Kind, Profile, RunSpec, get_profile
from .cost import spec_samples
from .data import MEAN, STD, Split, augment, load_cifar10, normalize, rotate_batch, synthetic_cifar
from .engine import Device, sgd, train_step
from .errors import UserError
from .models import NIN, NonLinearHead, tap_dim
from .planner import HEAD, ROT, Concurrency, concurrency_eta

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


class _Paths:
    """The ways to feed the model one training step, by name, each a call that takes one step."""

    def __init__(self, profile: Profile, dev: Device, model: torch.nn.Module, train: Split, gpu: Split):
        self.profile, self.dev = profile, dev
        g = torch.Generator().manual_seed(0)
        self.synthetic = [(dev.prep(torch.randn(4 * BATCH, 3, 32, 32, device=dev.device)),
                           torch.randint(0, 4, (4 * BATCH,), device=dev.device)) for _ in range(3)]
        self.rounds = iter(range(1 << 30))
        step = self.stepper(model)

        # the batches' indices go to the device once, as the training loop moves an epoch's order once: no blocking
        # host-to-device copy inside the timed steps
        pool = torch.randint(0, len(gpu), (256, BATCH), generator=g).to(dev.device)
        turn = iter(range(1 << 30))

        def ours() -> None:
            idx = pool[next(turn) % len(pool)]
            x, y = rotate_batch(augment(gpu.images[idx], g), "4")
            step(normalize(x), y)

        loader = torch.utils.data.DataLoader(_RotatedPIL(train.images.permute(0, 2, 3, 1).numpy()),
                                             batch_size=BATCH, shuffle=True, num_workers=0)
        batches = iter(loader)

        def naive() -> None:
            x, y = next(batches)
            step(x.flatten(0, 1).to(dev.device), y.flatten().to(dev.device))

        self.fns = {"model compute alone": self.on_synthetic(step), "our data path": ours,
                    "naive per-sample loader": naive}

    def stepper(self, m: torch.nn.Module) -> Callable[[torch.Tensor, torch.Tensor], None]:
        dev = self.dev
        opt = sgd(m.parameters(), self.profile, fused=dev.device.type == "cuda")  # the training loop's optimiser and step
        return lambda x, y: train_step(lambda xb: m(dev.prep(xb)), opt, x, y, dev)

    def on_synthetic(self, step: Callable[[torch.Tensor, torch.Tensor], None]) -> Callable[[], None]:
        return lambda: step(*self.synthetic[next(self.rounds) % 3])

    def add_compiled(self, model: torch.nn.Module) -> dict[str, float]:
        """Model compute alone, compiled and (on CUDA) graphed, as two more paths; the seconds each took to compile."""
        compile_s = {}
        cuda = self.dev.device.type == "cuda"
        for label, mode in [("compiled", "default")] + ([("graphed", "reduce-overhead")] if cuda else []):
            m = copy.deepcopy(model)
            m.compile(mode=mode)
            fn = self.on_synthetic(self.stepper(m))
            t0 = time.perf_counter()
            try:
                for _ in range(3):  # compiles, then (graphed) records
                    _timed(fn, self.dev)
            except Exception as e:  # no compiler here: say so, time the rest
                print(f"  model compute alone ({label}): torch.compile failed ({type(e).__name__}): skipped")
                continue
            compile_s[label] = time.perf_counter() - t0
            self.fns[f"model compute alone ({label})"] = fn
        return compile_s

    def images_per_s(self, steps: int | None) -> tuple[dict[str, float], int]:
        """Images per second of each path, the median of `steps` interleaved rounds (None: about 45 s of them)."""
        from tqdm.auto import tqdm

        warm = sum(_timed(fn, self.dev) for fn in self.fns.values())  # warm-up, and the time of one round
        if steps is None:
            steps = max(3, min(30, round(45 / max(warm, 1e-6))))
        times: dict[str, list[float]] = {k: [] for k in self.fns}
        names = list(self.fns)
        for r in tqdm(range(steps), desc="bench rounds", leave=False):  # interleaved, the order rotating each round
            for k in names[r % len(names):] + names[:r % len(names)]:
                times[k].append(_timed(self.fns[k], self.dev))
        return {k: BATCH / statistics.median(v) for k, v in times.items()}, steps


def _bench_data(data_dir: str | None) -> tuple[Split, str]:
    """CIFAR-10's training images, else synthetic ones; and which."""
    try:
        train, _ = load_cifar10(data_dir)
        return train, "CIFAR-10"
    except UserError:
        train, _ = synthetic_cifar(n_train=5000, n_test=10)
        return train, "synthetic CIFAR-shaped data (no dataset found)"


def _print_speeds(ips: dict[str, float], compile_s: dict[str, float], overhead: float, flops: float, peak: float,
                  dev: Device) -> None:
    for k, v in ips.items():
        tf = 4 * v * flops / 1e12
        print(f"  {k:38s} {v:9.1f} images/s ({4 * v:.0f} rotated samples/s, {tf:.3g} TFLOP/s, "
              f"{100 * tf / peak:.1f}% of the measured matmul peak)")
    for label, sec in compile_s.items():
        print(f"  compiling ({label}) took {sec:.1f} s")
    print(f"  our data path adds {overhead:+.1f}% over model compute alone (target <= 2%)")
    print(f"  our data path is {ips['our data path'] / ips['naive per-sample loader']:.2f}x the naive loader")
    print(f"  {flops / 1e9:.2f} GFLOP per rotated sample (forward + backward, torch's FLOP counter); matmul peak "
          f"measured here {peak:.3g} TFLOP/s ({'bf16' if dev.device.type == 'cuda' else 'fp32'})")


def _bench_eta(profile: Profile, ips: dict[str, float], cached: dict, compiled: bool) -> dict:
    """The whole protocol's ETA in hours at our data path's speed, and (`compiled`) at the fastest variant's."""
    best = max(v for k, v in ips.items() if k.startswith("model compute alone"))
    sec_rot = 1 / (4 * ips["our data path"])  # per rotated sample, as training feeds it
    eta = protocol_eta(profile, sec_rot, cached["recompute_s_per_image"], cached["head_step_s_per_image"])
    eta_best = eta * ips["model compute alone"] / best  # if every step ran as fast as the fastest variant
    print(f"  whole {profile.name} protocol, one seed, exact heads sharing backbone passes (from the registry's "
          f"sample counts): "
          f"about {eta / 3600:.2f} h here" + (f"; {eta_best / 3600:.2f} h at the compiled speed" if compiled else ""))
    return {"eta_h": eta / 3600, "eta_compiled_h": eta_best / 3600 if compiled else None}


def run_bench(profile: Profile, steps: int | None = None, data_dir: str | None = None, device: str = "auto",
              compile_model: bool = False) -> dict:
    dev = Device.pick(device)
    train, source = _bench_data(data_dir)
    print(f"bench: 4-block RotNet, width {profile.width:g} (profile {profile.name}), batch {BATCH} images x 4 "
          f"rotations, {dev.name}, torch {torch.__version__}, threads {torch.get_num_threads()}, data: {source}")
    torch.manual_seed(0)
    model = dev.model(NIN(4, 4, profile.width))
    gpu = train.to(dev.device)
    paths = _Paths(profile, dev, model, train, gpu)
    compile_s = paths.add_compiled(model) if compile_model else {}
    ips, steps = paths.images_per_s(steps)
    flops = _flops_per_rotated_sample(model, dev)
    peak = _matmul_peak_tflops(dev)
    overhead = 100 * (ips["model compute alone"] / ips["our data path"] - 1)
    _print_speeds(ips, compile_s, overhead, flops, peak, dev)
    out = {"profile": profile.name, "width": profile.width, "device": dev.name, "cpu": _cpu_model(),
           "torch_version": torch.__version__, "threads": torch.get_num_threads(), "data": source, "steps": steps,
           "images_per_s": ips, "data_overhead_pct": overhead,
           "speedup_vs_naive": ips["our data path"] / ips["naive per-sample loader"],
           "gflop_per_rotated_sample": flops / 1e9, "peak_tflops": peak,
           "tflops": {k: 4 * v * flops / 1e12 for k, v in ips.items()}, "compile_s": compile_s}
    out.update(_bench_cached(profile, gpu, dev, steps))
    out.update(_bench_eta(profile, ips, out, bool(compile_s)))
    return out


def protocol_eta(profile: Profile, sec_per_rotated_sample: float, sec_per_head_image: float,
                 sec_per_head_step_image: float | None = None) -> float:
    """Seconds of training for every run of the paper's artifacts at one seed (exact heads), from per-sample times:
    a RotNet's rotated sample, a supervised or fine-tuned image (a backbone forward and backward, about one rotated
    sample), a frozen head's image (backbone forward and head step, as timed). Given a head step's time alone,
    heads that share a backbone pass (`train.backbone_pass_key`) pay for that pass once, as `run` trains them."""
    from .experiments import EXPERIMENTS
    from .train import backbone_pass_key

    specs: dict[str, RunSpec] = {}
    for e in EXPERIMENTS.values():
        if e.paper:
            for c in e.build(profile, 0, 0):
                for s in (c.spec, c.spec.backbone):
                    if s is not None:
                        specs[s.run_id] = s
    total = 0.0
    passes: dict[tuple, int] = {}  # heads per shared backbone pass
    for s in specs.values():
        n = spec_samples(s)  # a RotNet's rotated samples; a supervised or fine-tuned run's images cost about as much
        if s.kind != Kind.CLASSIFIER or s.finetune:
            total += n * sec_per_rotated_sample
        else:
            total += n * sec_per_head_image
            key = backbone_pass_key(s) if sec_per_head_step_image is not None else None
            if key is not None and passes.setdefault(key, 0) > 0:  # a sibling's pass feeds it: only its own step
                total -= n * (sec_per_head_image - sec_per_head_step_image)
            if key is not None:
                passes[key] += 1
    return total


def flops_per_rotated_sample(width: float) -> float:
    """FLOPs of one rotated sample's training step (forward + backward) of the 4-block RotNet at this width."""
    return _flops_per_rotated_sample(NIN(4, 4, width), Device(torch.device("cpu")))


def eta_from_saved(b: dict) -> float:
    """A saved bench's whole-protocol ETA in hours, heads sharing backbone passes. Files from before the head step
    was saved alone: from their timings, the head step taken as the cached classifier's per-image time (which
    includes one extraction, so a slight overestimate)."""
    from .config import get_profile

    if b.get("eta_h") is not None and "head_step_s_per_image" in b:
        return b["eta_h"]
    images = 100 * -(-50000 // BATCH) * BATCH
    per_head_image = b.get("recompute_s_per_image") or b["recompute_min"] * 60 / images
    per_step = b.get("head_step_s_per_image") or b["cached_min"] * 60 / images
    return protocol_eta(get_profile(b["profile"]), 1 / (4 * b["images_per_s"]["our data path"]), per_head_image,
                        per_step) / 3600


def _flops_per_rotated_sample(model: torch.nn.Module, dev: Device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    m = copy.deepcopy(model)
    x = dev.prep(torch.randn(8, 3, 32, 32, device=dev.device))
    with FlopCounterMode(display=False) as fc:
        m(x).float().sum().backward()
    return fc.get_total_flops() / 8


def _matmul_peak_tflops(dev: Device) -> float:
    """A large matmul's TFLOP/s on this device: bf16 on CUDA (what autocast computes in), fp32 on a CPU."""
    cuda = dev.device.type == "cuda"
    n, dtype = (8192, torch.bfloat16) if cuda else (1024, torch.float32)
    a, b = (torch.randn(n, n, device=dev.device, dtype=dtype) for _ in range(2))
    a @ b
    t = statistics.median(_timed(lambda: a @ b, dev) for _ in range(10 if cuda else 5))
    return 2 * n ** 3 / t / 1e12


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
    opt = sgd(head.parameters(), profile, fused=dev.device.type == "cuda")
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 10, (BATCH,), device=dev.device)

    def head_step(f: torch.Tensor) -> None:
        train_step(head, opt, f, y, dev)

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
    return {"cached_speedup": ratio, "cached_min": cached_total / 60, "recompute_min": recompute_total / 60,
            "recompute_s_per_image": t["recompute"] / BATCH, "head_step_s_per_image": t["cached"] / BATCH}


# ---- the first-call throughput measurement (gpu/measure.sh): steps as `run` takes them, and processes side by side ----


def _steps(profile: Profile, dev: Device, mode: str) -> dict[str, Callable[[], None]]:
    """One training step of each kind `run` takes, on synthetic data already on the device: a RotNet step (batch
    128 x 4 rotations = 512) and a conv head step at batch 128 on a frozen 4-block backbone. `mode`: eager, or a
    torch.compile mode ("default"; "reduce-overhead" captures CUDA graphs)."""
    from .models import TapClassifier, make_head

    torch.manual_seed(0)
    rot = dev.model(NIN(4, 4, profile.width))
    backbone = dev.model(NIN(4, 4, profile.width))
    head = dev.model(make_head("conv", "conv2", profile.width))
    clf = TapClassifier(backbone, "conv2", head)
    if mode != "eager":
        rot.compile(mode=mode)
        clf.compile(mode=mode)
    fused = dev.device.type == "cuda"
    opt_r = sgd(rot.parameters(), profile, fused=fused)
    opt_h = sgd(head.parameters(), profile, fused=fused)
    xr = dev.prep(torch.randn(4 * BATCH, 3, 32, 32, device=dev.device))
    yr = torch.randint(0, 4, (4 * BATCH,), device=dev.device)
    xh = dev.prep(torch.randn(BATCH, 3, 32, 32, device=dev.device))
    yh = torch.randint(0, 10, (BATCH,), device=dev.device)
    rot.train()
    clf.train()
    return {ROT: lambda: train_step(rot, opt_r, xr, yr, dev), HEAD: lambda: train_step(clf, opt_h, xh, yh, dev)}


def step_times(profile: Profile, device: str = "auto", steps: int = 20, modes: tuple[str, ...] = ("eager",)
               ) -> dict[str, dict[str, float]]:
    """Seconds per step of each kind, per mode (median of `steps` timed steps after 3 warm-up ones)."""
    dev = Device.pick(device)
    out: dict[str, dict[str, float]] = {}
    for mode in modes:
        try:
            fns = _steps(profile, dev, mode)
            for name, fn in fns.items():
                for _ in range(3):
                    _timed(fn, dev)
                out.setdefault(name, {})[mode] = statistics.median(_timed(fn, dev) for _ in range(steps))
        except Exception as e:  # no compiler, no CUDA graphs here: say so, time the rest
            print(f"  {mode}: failed ({type(e).__name__}: {str(e).splitlines()[0][:100]}): skipped")
    return out


def _step_worker(profile_name: str, device: str, seconds: float, kind: str, queue) -> None:
    from .config import get_profile

    dev = Device.pick(device)
    fn = _steps(get_profile(profile_name), dev, "eager")[kind]
    for _ in range(3):
        _timed(fn, dev)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    _sync(dev)
    queue.put((kind, n / (time.perf_counter() - t0)))


def _side_by_side(profile: Profile, device: str, kinds: list[str], seconds: float) -> dict[str, list[float]]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_step_worker, args=(profile.name, device, seconds, k, q)) for k in kinds]
    for p in procs:
        p.start()
    rates: dict[str, list[float]] = {}
    for _ in procs:
        kind, rate = q.get(timeout=seconds + 180)
        rates.setdefault(kind, []).append(rate)
    for p in procs:
        p.join()
    return rates


def processes_side_by_side(profile: Profile, device: str = "auto", counts: tuple[int, ...] = (1, 4),
                           seconds: float = 8.0) -> dict[int, float]:
    """Batch-128 head steps per second of all processes together, with 1, ..., N processes on the same device
    (each its own loop, as `run --workers N` starts them)."""
    return {n: float(sum(_side_by_side(profile, device, [HEAD] * n, seconds)[HEAD])) for n in counts}


def rotnet_beside_heads(profile: Profile, device: str = "auto", counts: tuple[int, ...] = (1, 2, 4),
                        seconds: float = 8.0) -> dict[int, dict[str, float]]:
    """One RotNet process beside n-1 batch-128 head processes (as `run --workers n` on CUDA schedules them): the
    RotNet's steps/s and the heads' steps/s all together, per n."""
    out = {}
    for n in counts:
        r = _side_by_side(profile, device, [ROT] + [HEAD] * (n - 1), seconds)
        out[n] = {"rotnet": float(r[ROT][0]), "heads": float(sum(r.get(HEAD, [])))}
    return out


def concurrency_speeds(heads: dict, mixed: dict) -> dict[str, dict[int, float]]:
    """Each process's speed relative to running alone, per processes on the device, from the two measurements:
    `head`: a batch-128 run among n batch-128 runs; `rotnet_beside`: a RotNet beside n-1 of them; `head_beside`:
    one of those n-1 batch-128 runs."""
    heads = {int(k): v for k, v in heads.items()}
    mixed = {int(k): v for k, v in mixed.items()}
    h1, r1 = heads[1], mixed[1]["rotnet"]
    return {"head": {n: v / (n * h1) for n, v in heads.items()},
            "rotnet_beside": {n: m["rotnet"] / r1 for n, m in mixed.items()},
            "head_beside": {n: m["heads"] / ((n - 1) * h1) for n, m in mixed.items() if n > 1}}


def top_kernels(profile: Profile, device: str = "auto", k: int = 10) -> list[dict]:
    """The k ops with the most self time over 5 steps of each kind (the profiler's device time on CUDA, else CPU)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    dev = Device.pick(device)
    fns = _steps(profile, dev, "eager")
    for fn in fns.values():
        _timed(fn, dev)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.device.type == "cuda" else [])
    with torch_profile(activities=acts) as prof:
        for fn in fns.values():
            for _ in range(5):
                fn()
        _sync(dev)
    cuda = dev.device.type == "cuda"
    rows = []
    for e in prof.key_averages():
        t = getattr(e, "self_device_time_total", 0) if cuda else e.self_cpu_time_total
        rows.append({"name": e.key, "self_ms": t / 1000, "calls": e.count})
    return sorted(rows, key=lambda r: -r["self_ms"])[:k]


def throughput(profile: Profile, device: str = "auto", steps: int = 20, processes: int = 4, seconds: float = 8.0,
               compile_model: bool = True, save: Callable[[dict], None] | None = None) -> dict:
    """The first-call measurement: steps eager, 1 process against `processes` side by side, steps compiled /
    graphed, top kernels; `save` gets what is measured so far after each part (a call cut short keeps it)."""
    dev = Device.pick(device)
    modes = (("default",) if compile_model else ()) + (
        ("reduce-overhead",) if compile_model and dev.device.type == "cuda" else ())
    t0 = time.perf_counter()
    out = {"device": dev.name, "torch_version": torch.__version__, "profile": profile.name, "width": profile.width,
           "step_s": step_times(profile, device, steps, ("eager",))}

    def part_done() -> None:
        out["wall_s"] = time.perf_counter() - t0
        if save is not None:
            save(out)

    part_done()
    counts = tuple(range(1, max(processes, 1) + 1))
    out["head_steps_per_s_by_processes"] = processes_side_by_side(profile, device, counts, seconds)
    part_done()
    out["rotnet_beside_heads"] = rotnet_beside_heads(profile, device, counts, seconds)
    out["speeds"] = concurrency_speeds(out["head_steps_per_s_by_processes"], out["rotnet_beside_heads"])
    part_done()
    for kind, by_mode in step_times(profile, device, steps, modes).items():
        out["step_s"].setdefault(kind, {}).update(by_mode)
    part_done()
    out["top_ops"] = top_kernels(profile, device)
    part_done()
    for kind, by_mode in out["step_s"].items():
        print(f"  {kind}: " + ", ".join(f"{m} {s * 1e3:.2f} ms" for m, s in by_mode.items()))
    rates = out["head_steps_per_s_by_processes"]
    print("  conv head steps/s, all processes: " + ", ".join(f"{n} process(es) {r:.0f}" for n, r in rates.items()))
    print("  a RotNet beside n-1 heads, steps/s (RotNet / heads together): " + ", ".join(
        f"n={n} {m['rotnet']:.0f} / {m['heads']:.0f}" for n, m in out["rotnet_beside_heads"].items()))
    print("  top ops: " + "; ".join(f"{r['name']} {r['self_ms']:.1f} ms" for r in out["top_ops"][:5]))
    out["remaining_eta"] = concurrency_eta(profile, out["speeds"], counts)
    part_done()
    return out


def _speed_table(saved: list[dict]) -> list[str]:
    """`bench`'s measurements, one row per file and one per compiled variant."""
    lines = ["| model (profile) | machine | model compute alone, img/s | our data path, img/s | naive loader, img/s "
             "| data path overhead | ours vs naive | cached vs recomputed classifier (100 epochs) "
             "| our data path, TFLOP/s (% of measured matmul peak) "
             "| protocol ETA (one seed, exact heads sharing backbone passes) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    flops: dict[float, float] = {}
    for b in saved:
        ips = b["images_per_s"]
        gf = b.get("gflop_per_rotated_sample") or flops.setdefault(b["width"], flops_per_rotated_sample(b["width"]) / 1e9)
        tf = 4 * ips["our data path"] * gf / 1e3
        peak = f" ({100 * tf / b['peak_tflops']:.1f}%)" if b.get("peak_tflops") else " (peak not measured)"
        lines.append(
            f"| width {b['width']:g} ({b['profile']}) | {b['cpu']}, {b['device']}, torch {b['torch_version']} "
            f"| {ips['model compute alone']:.1f} | {ips['our data path']:.1f} | {ips['naive per-sample loader']:.1f} "
            f"| {b['data_overhead_pct']:+.1f}% | {b['speedup_vs_naive']:.2f}x "
            f"| {b['recompute_min']:.0f} min vs {b['cached_min']:.1f} min: {b['cached_speedup']:.1f}x "
            f"| {tf:.3g}{peak} | {eta_from_saved(b):.2f} h |")
        lines += [f"| … compiled: {k} | | {ips[k]:.1f} | | | | | | {4 * ips[k] * gf / 1e3:.3g} | |"
                  for k in ips if k.startswith("model compute alone (")]
    return lines + ["", "Images are 32x32 CIFAR-10 images; each makes 4 rotated samples. Medians of "
                    "interleaved steps; the classifier times are extrapolated from timed steps. TFLOP/s: "
                    "torch's FLOP counter on a training step times the measured rate. ETA: every run of "
                    "the paper's artifacts at one seed, heads by the exact path (those on one backbone, "
                    "snapshot and schedule sharing its pass, as `run` trains them), from the measured "
                    "per-sample times and the registry's sample counts (evaluations not counted)."]


def _step_table(tp: list[dict]) -> list[str]:
    """`bench --throughput`'s seconds per step by compile mode, and head steps/s of 1 and N processes."""
    lines = ["", "`bench --throughput` (the first GPU call's measurement): seconds per training step as `run` "
             "takes them, and batch-128 head steps per second of all processes together.", "",
             "| machine (width) | step | eager | compiled | graphed | head steps/s: 1 process | N processes |",
             "|---|---|---|---|---|---|---|"]
    for b in tp:
        rates = {int(k): v for k, v in b.get("head_steps_per_s_by_processes", {}).items()}
        many = max(rates) if rates else 0
        for i, (kind, by_mode) in enumerate(b["step_s"].items()):
            ms = [f"{by_mode[m] * 1e3:.2f} ms" if m in by_mode else "–" for m in ("eager", "default",
                                                                                   "reduce-overhead")]
            procs = [f"{rates.get(1, float('nan')):.0f}", f"{rates[many]:.0f} ({many})"] if i == 0 and rates \
                else ["", ""]
            lines.append(f"| {b['device']} ({b['width']:g}) | {kind} | " + " | ".join(ms + procs) + " |")
    return lines


def _side_by_side_table(side: list[dict]) -> list[str]:
    """Each process's speed beside others, and the remaining protocol by the planner, per process count."""
    lines = ["", "Processes side by side (`run --workers N` on one device): each process's speed against "
             "running alone, and the remaining protocol by the planner at that count (device time, "
             "windows; the speedup against one process at a time).", "",
             "| machine (width) | processes | a head among heads | a RotNet beside heads | a head beside a "
             "RotNet | remaining protocol | vs 1 process |", "|---|---|---|---|---|---|---|"]
    for b in side:
        c = Concurrency.from_speeds(b["speeds"], "")
        eta = {int(n): v for n, v in b.get("remaining_eta", {}).items()}
        for n in sorted(c.head):
            e = eta.get(n)
            left = f"{e['device_h'] * 60:.0f} min ({e['windows']})" if e else "–"
            vs = f"{eta[1]['device_h'] / e['device_h']:.2f}x" if e and 1 in eta and e["device_h"] else "–"
            beside = f"{c.head_beside[n]:.2f}" if n in c.head_beside else "–"
            lines.append(f"| {b['device']} ({b['width']:g}) | {n} | {c.head[n]:.2f} | "
                         f"{c.rotnet_beside.get(n, float('nan')):.2f} | {beside} | {left} | {vs} |")
    return lines


def bench_markdown(bench_dir: Path) -> str:
    """The saved `bench` measurements, one row per file (REPORT's "Speed")."""
    files = sorted(Path(bench_dir).glob("*.json"))
    if not files:
        return "No saved measurements: run `python -m rotnet_repro bench --save results/bench/NAME.json`."
    saved = [json.loads(f.read_text()) for f in files]
    lines = _speed_table([b for b in saved if "images_per_s" in b])  # not `bench --throughput`: its own tables
    tp = [b for b in saved if "step_s" in b]
    if tp:
        lines += _step_table(tp)
        side = [b for b in tp if "speeds" in b]
        if side:
            lines += _side_by_side_table(side)
    prec = [b for b in saved if "bf16_over_fp32" in json.dumps(b)]
    if prec:
        lines += _precision_table(prec)
    return "\n".join(lines)


# ---- fp32 against bf16 autocast on this device, at the cpu profile's width and the paper's ----

def _matmul_tflops(dev: Device, dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = (torch.randn(n, n, device=dev.device, dtype=dtype) for _ in range(2))
    a @ b
    return 2 * n ** 3 / min(_timed(lambda: a @ b, dev) for _ in range(repeats)) / 1e12


def precision(widths: tuple[float, ...] = (0.25, 1.0), repeats: int = 4, device: str = "auto") -> dict:
    """One SGD step of 128 images x 4 rotations of the 4-block RotNet in fp32 (what a CPU computed in before
    2026-12-07) and under bf16 autocast (after, where the CPU computes bf16 natively), interleaved in one process,
    best of `repeats`, at each width; with the fp32 and bf16 matmul peaks measured in the same run and the fraction of
    each that the step reaches."""
    base = Device.pick(device)
    devs = {"fp32": Device(base.device, precision="fp32"),
            "bf16": Device(base.device, precision="bf16", cpu_bf16=base.device.type == "cpu" or base.cpu_bf16)}
    peak = {"fp32": _matmul_tflops(base, torch.float32), "bf16": _matmul_tflops(base, torch.bfloat16)}
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4 * BATCH, 3, 32, 32, generator=g).to(base.device)
    y = torch.randint(0, 4, (4 * BATCH,), generator=g).to(base.device)
    out = {"device": base.name, "cpu": _cpu_model(), "torch_version": torch.__version__,
           "threads": torch.get_num_threads(), "native_bf16": base.device.type == "cuda" or base.cpu_bf16,
           "date": time.strftime("%Y-%m-%d"), "peak_tflops": peak, "widths": {}}
    print(f"bench --precision: 4-block RotNet, one SGD step of {BATCH} images x 4 rotations, {base.name}, "
          f"{out['cpu']}, torch {torch.__version__}; native bf16: {out['native_bf16']}; matmul peak fp32 "
          f"{peak['fp32']:.3g}, bf16 {peak['bf16']:.3g} TFLOP/s")
    for w in widths:
        torch.manual_seed(0)
        models = {k: d.model(NIN(4, 4, w)) for k, d in devs.items()}
        opts = {k: sgd(m.parameters(), get_profile("cpu")) for k, m in models.items()}
        steps = {k: (lambda m=models[k], o=opts[k], d=devs[k]: train_step(m, o, d.prep(x), y, d)) for k in devs}
        for f in steps.values():
            f()
        best = {k: math.inf for k in devs}
        for _ in range(repeats):
            for k, f in steps.items():
                best[k] = min(best[k], _timed(f, devs[k]))
        flops = _flops_per_rotated_sample(models["fp32"], devs["fp32"]) * 4 * BATCH
        row = {k: {"step_s": best[k], "samples_per_s": 4 * BATCH / best[k],
                   "peak_fraction": flops / best[k] / 1e12 / peak[k]} for k in devs}
        row["bf16_over_fp32"] = best["fp32"] / best["bf16"]
        out["widths"][str(w)] = row
        print(f"  width {w:g}: fp32 {best['fp32'] * 1e3:.0f} ms a step ({row['fp32']['samples_per_s']:.0f} rotated "
              f"samples/s, {100 * row['fp32']['peak_fraction']:.0f}% of the fp32 peak), bf16 {best['bf16'] * 1e3:.0f} "
              f"ms ({row['bf16']['samples_per_s']:.0f}/s, {100 * row['bf16']['peak_fraction']:.0f}% of the bf16 "
              f"peak): bf16 {row['bf16_over_fp32']:.2f}x fp32")
    return out


def _precision_table(saved: list[dict]) -> list[str]:
    lines = ["", "`bench --precision`: one SGD step of 128 images x 4 rotations, fp32 (a CPU's precision before "
             "2026-12-07) against bf16 autocast, interleaved, best of 4, with the fraction of each precision's "
             "matmul peak measured in the same run", "",
             "| machine (date) | width | fp32 ms a step (% of fp32 peak) | bf16 ms a step (% of bf16 peak) | bf16 / fp32 "
             "speed |", "|---|---|---|---|---|"]
    for b in saved:
        for w, r in b["widths"].items():
            lines.append(f"| {b['cpu']}, {b['device']}, torch {b['torch_version']} ({b['date']}) | {float(w):g} | "
                         f"{r['fp32']['step_s'] * 1e3:.0f} ({100 * r['fp32']['peak_fraction']:.0f}%) | "
                         f"{r['bf16']['step_s'] * 1e3:.0f} ({100 * r['bf16']['peak_fraction']:.0f}%) | "
                         f"{r['bf16_over_fp32']:.2f}x |")
    return lines
