"""The engine every recipe trains through: the device, checkpoints, the generic loop, batched inference.

`fit`: SGD (Nesterov, momentum 0.9, wd 5e-4), a step lr table (x0.2 at each milestone), one checkpoint per
epoch written atomically, and a data generator seeded per epoch, so that a resumed run repeats an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .config import Profile
from .errors import UserError
from .files import DamagedFile, read_tensors, save_tensors

log = logging.getLogger("rotnet_repro")
def epoch_precision(h: dict, profile_precision: str = "bf16") -> str:
    """What one history entry was computed in: its own stamp, else what the code computed in before epochs were
    stamped (fp32 on a CPU; the profile's precision on CUDA); "not recorded" where the device is not either."""
    if "precision" in h:
        return h["precision"]
    dev = h.get("device", "not recorded")
    return "fp32" if dev.startswith("cpu") else "not recorded" if dev == "not recorded" else profile_precision


def segments(history: list[dict], profile_precision: str = "bf16") -> list[dict]:
    """Where and in what a run's epochs were trained: consecutive epochs on one device in one precision form a
    segment (a run resumed on another machine, or in another precision, has several). Epochs from before the
    history named its device are "not recorded"."""
    out: list[dict] = []
    for h in history:
        dev, prec = h.get("device", "not recorded"), epoch_precision(h, profile_precision)
        if out and out[-1]["device"] == dev and out[-1]["precision"] == prec:
            out[-1]["epochs"][1] = h["epoch"]
        else:
            out.append({"device": dev, "precision": prec, "epochs": [h["epoch"], h["epoch"]]})
    return out


CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}  # x86 AVX-512 BF16 or AMX; an ARM core's BF16 ("Features")


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has bf16 instructions (its flags in /proc/cpuinfo: AVX-512 BF16 or AMX on x86, BF16 on ARM).
    Without them bf16 autocast is emulated and slower than fp32 (`bench --precision`; results/bench/measurements.csv,
    cpu_emulated_bf16_step_ratio), so such a CPU trains in fp32. oneDNN's own check
    (torch.ops.mkldnn._is_mkldnn_bf16_supported) says yes on any AVX-512 core,
    emulation included, so it is not used. No /proc/cpuinfo (not Linux): fp32."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags |= set(value.split())
    return bool(flags & CPU_BF16_FLAGS)


@dataclass
class Device:
    """Where and how tensors compute: channels_last everywhere; bf16 autocast on CUDA and on CPUs with bf16
    instructions (`cpu_has_bf16`, checked once when the device is picked), unless the profile says fp32."""

    device: torch.device
    # "" = eager; else torch.compile's mode for every model ("default"; "reduce-overhead" adds CUDA graphs)
    compile_mode: str = ""
    precision: str = "bf16"  # the profile's: "fp32" turns autocast off
    cpu_bf16: bool = False  # this CPU computes bf16 natively (set by `pick`)
    # per kind of model ("rotnet": RotNets and supervised NINs; "head": a head and its frozen backbone), where it
    # differs from compile_mode: `--compile auto` fills it with the modes measured fastest on this card
    compile_kinds: dict[str, str] = field(default_factory=dict)
    progress: bool = True  # per-epoch progress bars (on a terminal); a notebook turns them off
    # called with the epoch number after each epoch's checkpoint is on disk: a GPU window's clock (it stops the
    # call in time), a test's simulated interruption
    epoch_hooks: list[Callable[[int], None]] = field(default_factory=list)
    # called with the epoch index before each epoch starts (its run's last checkpoint on disk): `run --time-limit`
    # raises there when the epoch would not fit
    before_epoch_hooks: list[Callable[[int], None]] = field(default_factory=list)

    @classmethod
    def pick(cls, name: str = "auto", compile_mode: str = "", precision: str = "bf16") -> Device:
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            device = torch.device(name)
        except RuntimeError:
            raise UserError(f"unknown device {name!r}: use auto, cpu or cuda[:N]") from None
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise UserError(f"--device {name}: this machine has no usable CUDA GPU; use --device cpu (or auto)")
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} GPU(s)")
            torch.backends.cudnn.benchmark = True
        elif device.type != "cpu":
            raise UserError(f"unsupported device {name!r}: use auto, cpu or cuda[:N]")
        if compile_mode and compile_mode not in COMPILE_MODES:
            raise UserError(f"unknown compile mode {compile_mode!r}: use one of {', '.join(COMPILE_MODES)}")
        return cls(device, compile_mode and _compile_works(device, compile_mode), precision,
                   cpu_bf16=device.type == "cpu" and cpu_has_bf16())

    def use_measured_compile(self, modes: dict[str, str]) -> None:
        """Compile each kind of model in the mode measured fastest for it ("" = eager), where compiling works."""
        self.compile_kinds = {k: m and _compile_works(self.device, m) for k, m in modes.items()}

    def model(self, m: nn.Module, kind: str = "") -> nn.Module:
        m = m.to(self.device, memory_format=torch.channels_last)
        mode = self.compile_kinds.get(kind, self.compile_mode)
        if mode:
            m.compile(mode=mode)  # in place: parameter names and state_dict keys unchanged
            self._eager_on_failure(m, kind, mode)
        return m

    def _eager_on_failure(self, m: nn.Module, kind: str, mode: str) -> None:
        """A compile (or CUDA-graph) failure on the real model, at its first calls, falls back to eager for this
        model and every later one of its kind, with one line, instead of failing its runs."""
        compiled = getattr(m, "_compiled_call_impl", None)
        if compiled is None:  # a torch without in-place compile internals: nothing to guard
            return

        def guarded(*args, **kwargs):
            try:
                return compiled(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 (any compiler failure: the model runs eager)
                if isinstance(e, torch.cuda.OutOfMemoryError):
                    raise
                log.warning("torch.compile (%s) failed on a %s model (%s: %s): eager for this kind from now on", mode,
                            kind or "", type(e).__name__, str(e).splitlines()[0][:120] if str(e) else "")
                m._compiled_call_impl = None
                self.compile_kinds[kind] = ""
                return m._call_impl(*args, **kwargs)

        m._compiled_call_impl = guarded

    def prep(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    @property
    def compute(self) -> str:
        """What the forward passes compute in: "bf16" (autocast; BatchNorm, softmax and the loss stay fp32 as
        autocast keeps them) or "fp32"."""
        native = self.device.type == "cuda" or self.cpu_bf16
        return "bf16" if self.precision == "bf16" and native else "fp32"

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.compute == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def eval_batch(self, n: int) -> int:
        """Inference batch: large on a GPU; on a CPU big batches spill the caches (batch 128 against 1000:
        results/bench/measurements.csv, cpu_eval_batch128_speedup_*)."""
        return n if self.device.type == "cuda" else min(n, 128)

    @property
    def card(self) -> str:
        """The card's model as measurement files name it ("NVIDIA H200" -> "h200"; gpu/measure.sh); "" on a CPU."""
        parts = self.name.split()
        return parts[1].lower() if self.device.type == "cuda" and len(parts) > 1 else ""

    @property
    def name(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return f"cpu x{torch.get_num_threads()}"


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


def _compile_works(device: torch.device, mode: str) -> str:
    """`mode` if torch.compile works here (a compiler toolchain, a supported Python), else "" with a warning:
    compiling is a speed option, never a reason to stop."""
    try:
        torch.compile(lambda x: x * 2 + 1, mode=mode)(torch.ones(8, device=device))
        return mode
    except Exception as e:  # missing compiler, unsupported platform: all fall back the same way
        log.warning("torch.compile unavailable (%s: %s): running eager", type(e).__name__, str(e).splitlines()[0][:120])
        return ""


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


@dataclass
class Trainee:
    """One run trained by `fit_many`: its model (what is checkpointed), trained parameters, schedule, evaluation
    and checkpoint; `forward(x, shared)` gives its logits from the batch and the shared pass's output."""

    model: nn.Module
    params: list[nn.Parameter]
    schedule: str
    evaluate: Callable[[], float] | None
    ckpt: Path
    desc: str
    forward: Callable[[torch.Tensor, object], torch.Tensor]


def sgd(params: Iterable[nn.Parameter], profile: Profile, fused: bool = False) -> torch.optim.SGD:
    """The paper's optimiser (SGD, Nesterov momentum, weight decay) at the profile's settings; `fused`: one kernel
    for the whole update (CUDA), where foreach takes several ops a step (same update, float rounding aside)."""
    return torch.optim.SGD(params, lr=profile.lr, momentum=profile.momentum, nesterov=profile.nesterov,
                           weight_decay=profile.weight_decay, **({"fused": True} if fused else {}))


def train_step(forward: Callable[..., torch.Tensor], opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               dev: Device, *args: object) -> torch.Tensor:
    """One optimisation step on a batch (logits = forward(x, *args)); returns the loss as a device tensor (no host
    synchronisation)."""
    with dev.autocast():
        loss = F.cross_entropy(forward(x, *args), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach().float()


def _checkpointed(model: nn.Module) -> nn.Module:
    """What a checkpoint holds: a frozen-backbone classifier's head alone (its backbone is the RotNet's weights,
    read again on resume), else the whole model."""
    return model.head if getattr(model, "frozen", False) and isinstance(getattr(model, "head", None), nn.Module) \
        else model


def fit(
    model: nn.Module,
    params: Iterable[nn.Parameter],
    profile: Profile,
    schedule: str,
    batches: Callable[[torch.Generator], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    evaluate: Callable[[], float] | None,
    dev: Device,
    ckpt: Path,
    seed: int,
    desc: str,
    on_epoch_end: Callable[[int], None] | None = None,
) -> tuple[list[dict], float]:
    """Train for the profile's `schedule`; resume from `ckpt` if it exists. Returns (history, wall seconds)."""
    t = Trainee(model, list(params), schedule, evaluate, ckpt, desc, lambda x, _: model(dev.prep(x)))
    return fit_many([t], profile, batches, dev, seed, on_epoch_end=on_epoch_end)[0]


@dataclass
class _Run:
    """A trainee's optimiser, scheduler and progress inside `fit_many`."""

    t: Trainee
    epochs: int
    opt: torch.optim.SGD
    sched: torch.optim.lr_scheduler.MultiStepLR
    history: list[dict] = field(default_factory=list)
    wall: float = 0.0
    start: int = 0  # epochs finished before this call
    total: torch.Tensor | None = None  # the epoch's summed loss, on the device: one read an epoch


def _start_run(t: Trainee, profile: Profile, dev: Device) -> _Run:
    """A trainee's optimiser and lr schedule, restored from its checkpoint if it has one."""
    epochs, milestones = profile.schedule(t.schedule)
    opt = sgd(t.params, profile, fused=dev.device.type == "cuda")
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), gamma=profile.lr_decay)
    r = _Run(t, epochs, opt, sched)
    state = _read_checkpoint(t, dev)
    if state is not None:
        saved, sd = _checkpointed(t.model), state["model"]
        if saved is not t.model and any(k.startswith("head.") for k in sd):  # written with the backbone
            sd = {k.removeprefix("head."): v for k, v in sd.items() if k.startswith("head.")}
        saved.load_state_dict(sd)
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        r.history, r.wall, r.start = state["history"], state["wall"], state["epoch"]
        log.info("%s: resuming after epoch %d/%d", t.desc, r.start, epochs)
    return r


def _read_checkpoint(t: Trainee, dev: Device) -> dict | None:
    """The trainee's checkpoint; None if there is none, or it is damaged (then deleted: the run starts again). The
    runner has put every file a run reads in place first (restored from the git history where it is listed)."""
    if not t.ckpt.exists():
        return None
    try:
        return read_tensors(t.ckpt, dev.device)
    except DamagedFile as e:
        log.warning("%s: %s; this run starts again from epoch 0", t.desc, e)
        t.ckpt.unlink()
        return None


def _train_epoch(runs: list[_Run], batches: Callable[[torch.Generator], Iterable[tuple[torch.Tensor, torch.Tensor]]],
                 g: torch.Generator, dev: Device, shared: Callable[[torch.Tensor], object] | None, desc: str) -> int:
    """One epoch's steps for every run (each batch through `shared` once); returns the samples seen."""
    for r in runs:
        r.t.model.train()
        r.total = torch.zeros((), device=dev.device)
    n = 0
    for x, y in tqdm(batches(g), desc=desc, leave=False, disable=None if dev.progress else True, mininterval=2.0):
        common = None
        if shared is not None:
            with torch.no_grad(), dev.autocast():
                common = shared(dev.prep(x))
        for r in runs:
            r.total += train_step(r.t.forward, r.opt, x, y, dev, common) * len(y)
        n += len(y)
    return n


def _stop_if_diverged(runs: list[_Run], n: int, epoch: int) -> None:
    """A diverged run stops here, before its checkpoint or any row is written."""
    for r in runs:
        loss = r.total.item() / max(n, 1)
        if not math.isfinite(loss):
            raise UserError(f"{r.t.desc}: the training loss is {loss} in epoch {epoch + 1}: the run diverged "
                            "(an lr or other --set value too large?); stopped, nothing recorded for it (its last "
                            "checkpoint is the epoch before)")


def _end_epoch(r: _Run, profile: Profile, dev: Device, epoch: int, n: int, shared_s: float, t0: float) -> None:
    """Step the run's lr schedule, evaluate it when due, and add the epoch to its history and wall time."""
    t, t1 = r.t, time.perf_counter()
    used_lr = r.opt.param_groups[0]["lr"]  # the rate this epoch trained at (before the scheduler's step)
    r.sched.step()
    total = r.total.item()
    due = t.evaluate is not None and ((epoch + 1) % profile.eval_every == 0 or epoch + 1 == r.epochs)
    t2 = time.perf_counter()
    acc = t.evaluate() if due else float("nan")
    eval_s = time.perf_counter() - t2
    r.wall += shared_s + time.perf_counter() - t1
    r.history.append({"epoch": epoch + 1, "loss": total / max(n, 1), "test_acc": acc, "lr": used_lr,
                      "device": dev.name, "precision": dev.compute, "eval_s": round(eval_s, 4)})
    test = f" test {acc:.2f}%" if due else ""
    log.info("%s epoch %d/%d loss %.4f%s (%.0f samples/s)", t.desc, epoch + 1, r.epochs, total / max(n, 1),
             test, n / (time.perf_counter() - t0))


def _save_checkpoint(r: _Run, epochs_done: int) -> None:
    # a checkpoint every epoch, so that an interrupted run loses at most that epoch: about 1% of an epoch on an
    # H100/H200 at paper width (results/bench/measurements.csv: cpu_checkpoint_ms_*)
    save_tensors({"model": _checkpointed(r.t.model).state_dict(), "opt": r.opt.state_dict(),
                 "sched": r.sched.state_dict(), "history": r.history, "wall": r.wall, "epoch": epochs_done}, r.t.ckpt)


def fit_many(
    trainees: list[Trainee],
    profile: Profile,
    batches: Callable[[torch.Generator], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    dev: Device,
    seed: int,
    shared: Callable[[torch.Tensor], object] | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
) -> list[tuple[list[dict], float]]:
    """Train runs that see the same batches (same data, seed and epochs) in one loop: each batch goes through
    `shared` once (e.g. a frozen backbone's pass), then each run takes its own step. Each run resumes from its
    checkpoint; all must have finished the same epochs. Returns (history, wall seconds) per run; the shared
    time is split evenly between them."""
    runs = [_start_run(t, profile, dev) for t in trainees]
    if len({(r.start, r.epochs) for r in runs}) != 1:
        raise ValueError("runs trained together must have finished the same epochs of the same number")
    start, epochs = runs[0].start, runs[0].epochs
    desc = runs[0].t.desc if len(runs) == 1 else f"{runs[0].t.desc} (+{len(runs) - 1} sharing its pass)"
    for epoch in range(start, epochs):
        for hook in dev.before_epoch_hooks:
            hook(epoch)
        t0 = time.perf_counter()
        n = _train_epoch(runs, batches, epoch_generator(seed, epoch), dev, shared, f"{desc} {epoch + 1}/{epochs}")
        shared_s = (time.perf_counter() - t0) / len(runs)
        _stop_if_diverged(runs, n, epoch)
        for r in runs:
            _end_epoch(r, profile, dev, epoch, n, shared_s, t0)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1)
        for r in runs:
            _save_checkpoint(r, epoch + 1)
        for hook in dev.epoch_hooks:
            hook(epoch + 1)
    return [(r.history, r.wall) for r in runs]


@torch.no_grad()
def predict(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, dev: Device, batch: int,
            transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    outs = []
    for xb in x.split(dev.eval_batch(batch)):
        if transform is not None:
            xb = transform(xb)
        with dev.autocast():
            outs.append(model(dev.prep(xb)).float())
    return torch.cat(outs)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return 100.0 * (logits.argmax(1) == y).float().mean().item()


