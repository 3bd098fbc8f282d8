"""The training loops: RotNet pretext, classifiers on taps, supervised NIN.

All three go through `fit`: SGD (Nesterov, momentum 0.9, wd 5e-4), a step lr table
(x0.2 at each milestone), one checkpoint per epoch written atomically, and a data
generator seeded per epoch, so that a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .config import ROTATION_SETS, Profile, RunSpec
from .data import Split, augment, epoch_indices, first_k_per_class, normalize, rotate_batch
from .errors import UserError
from .models import NIN, TapClassifier, make_head
from .views import ViewStore

log = logging.getLogger("rotnet_repro")
# Called with the epoch number after each epoch's checkpoint is on disk (tests
# use it to simulate an interruption).
EPOCH_HOOKS: list[Callable[[int], None]] = []
PROGRESS = True  # per-epoch progress bars (on a terminal); notebooks turn them off


@dataclass
class Device:
    """Where and how tensors compute: channels_last everywhere, bf16 autocast on CUDA."""

    device: torch.device
    # "" = eager; else torch.compile's mode for every model ("default"; "reduce-overhead" adds CUDA graphs)
    compile_mode: str = ""

    @classmethod
    def pick(cls, name: str = "auto", compile_mode: str = "") -> Device:
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
        return cls(device, compile_mode and _compile_works(device, compile_mode))

    def model(self, m: nn.Module) -> nn.Module:
        m = m.to(self.device, memory_format=torch.channels_last)
        if self.compile_mode:
            m.compile(mode=self.compile_mode)  # in place: parameter names and state_dict keys unchanged
        return m

    def prep(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def eval_batch(self, n: int) -> int:
        """Inference batch: large on a GPU; on a CPU big batches spill the caches (measured on 2 cores:
        batch 128 extracts conv2 features 2.9x faster than 1000 at width 1/4, 1.13x at width 1)."""
        return n if self.device.type == "cuda" else min(n, 128)

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


class DamagedFile(UserError):
    """A file of a run that cannot be read back (truncated, corrupt, or holding more than plain tensors)."""


def load_file(path: Path, device: torch.device | str = "cpu") -> object:
    """torch.load that runs no code (weights_only: tensors and plain containers only); a damaged file raises
    DamagedFile naming it."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # a truncated zip, a bad pickle, an unsafe global: all the same to the user
        raise DamagedFile(f"{path} cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None


def atomic_save(obj: object, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


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
    epochs, milestones = profile.schedule(schedule)
    opt = torch.optim.SGD(params, lr=profile.lr, momentum=profile.momentum, nesterov=True,
                          weight_decay=profile.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), gamma=profile.lr_decay)
    history: list[dict] = []
    wall, start = 0.0, 0
    state = None
    if ckpt.exists():
        try:
            state = load_file(ckpt, dev.device)
        except DamagedFile as e:
            log.warning("%s: %s; this run starts again from epoch 0", desc, e)
            ckpt.unlink()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        history, wall, start = state["history"], state["wall"], state["epoch"]
        log.info("%s: resuming after epoch %d/%d", desc, start, epochs)
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        model.train()
        total, n = torch.zeros((), device=dev.device), 0  # summed on the device: one read an epoch
        bar = tqdm(batches(epoch_generator(seed, epoch)), desc=f"{desc} {epoch + 1}/{epochs}", leave=False,
                   disable=None if PROGRESS else True, mininterval=2.0)
        for x, y in bar:
            with dev.autocast():
                loss = F.cross_entropy(model(dev.prep(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach().float() * len(y)
            n += len(y)
        sched.step()
        total = total.item()
        acc = evaluate() if evaluate is not None else float("nan")
        wall += time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "loss": total / max(n, 1), "test_acc": acc, "lr": opt.param_groups[0]["lr"]})
        test = "" if evaluate is None else f" test {acc:.2f}%"
        log.info("%s epoch %d/%d loss %.4f%s (%.0f samples/s)", desc, epoch + 1, epochs, total / max(n, 1), test,
                 n / (time.perf_counter() - t0))
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1)
        atomic_save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                     "history": history, "wall": wall, "epoch": epoch + 1}, ckpt)
        for hook in EPOCH_HOOKS:
            hook(epoch + 1)
    return history, wall


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


def rotation_accuracy(model: NIN, test: Split, rotations: str, dev: Device, batch: int) -> float:
    """Rotation-prediction accuracy over all rotated copies of the test set."""
    model.eval()
    correct = total = 0
    for xb in test.images.split(dev.eval_batch(batch)):
        x, y = rotate_batch(xb, rotations)
        with torch.no_grad(), dev.autocast():
            correct += (model(dev.prep(normalize(x))).argmax(1) == y).sum().item()
        total += len(y)
    return 100.0 * correct / total


def labelled_batches(data: Split, p: Profile) -> Callable[[torch.Generator], Iterable]:
    """Augmented, normalised image batches; `samples_per_epoch` samples an epoch (a subset is cycled)."""

    def batches(g: torch.Generator):
        for b in epoch_indices(len(data), g, p.samples_per_epoch).to(data.images.device).split(p.batch_size):
            yield normalize(augment(data.images[b], g)), data.labels[b]

    return batches


def image_eval(model: nn.Module, test: Split, dev: Device, p: Profile) -> Callable[[], float]:
    def evaluate() -> float:
        model.eval()
        return accuracy(predict(model, test.images, dev, p.eval_batch, normalize), test.labels)

    return evaluate


def pretext_train_set(train: Split, profile: Profile) -> Split:
    return train.subset(first_k_per_class(train.labels, profile.n_pretext).to(train.labels.device))


def train_rotnet(spec: RunSpec, train: Split, test: Split, dev: Device, run_dir: Path) -> dict:
    p = spec.profile
    torch.manual_seed(spec.seed)
    model = dev.model(NIN(spec.blocks, len(ROTATION_SETS[spec.rotations]), p.width))
    data = pretext_train_set(train, p)

    def batches(g: torch.Generator):
        for b in epoch_indices(len(data), g).to(data.images.device).split(p.batch_size):
            # crop/flip once per image, then all its rotated copies (protocol)
            x, y = rotate_batch(augment(data.images[b], g), spec.rotations)
            yield normalize(x), y

    def snapshot(epoch: int) -> None:
        if epoch % p.snapshot_every == 0:
            atomic_save(model.state_dict(), run_dir / f"snapshot_{epoch}.pt")

    history, wall = fit(model, model.parameters(), p, "pretext", batches, None, dev, run_dir / "ckpt.pt",
                        spec.seed, spec.run_id, snapshot)
    atomic_save(model.state_dict(), run_dir / "model.pt")
    rot = rotation_accuracy(model, test, spec.rotations, dev, p.eval_batch)
    epochs = len(history)
    return {"metrics": [dict(metric="rotation_acc", value=rot, selection="last", epoch=epochs, pretext_epoch=epochs)],
            "wall_s": wall, "history": history}


def load_backbone(spec: RunSpec, runs_dir: Path, dev: Device) -> tuple[NIN, int]:
    """The classifier's frozen/fine-tuned backbone: a RotNet (snapshot, from runs_dir/<its profile>/) or a random
    init."""
    p = spec.profile
    if spec.backbone is None:
        torch.manual_seed(spec.seed)  # random init is part of the run's identity
        return dev.model(NIN(spec.blocks, 4, p.width)), 0
    b = spec.backbone
    model = dev.model(NIN(b.blocks, len(ROTATION_SETS[b.rotations]), p.width))
    name = f"snapshot_{spec.pretext_epoch}.pt" if spec.pretext_epoch else "model.pt"
    path = runs_dir / b.profile.name / b.run_id / name
    try:
        model.load_state_dict(load_file(path, dev.device))
    except DamagedFile as e:
        raise DamagedFile(f"{e}: restore it (git checkout, or `python -m rotnet_repro import` from where it was "
                          f"trained), or delete {path.parent} to train that RotNet again") from None
    return model, spec.pretext_epoch or b.profile.pretext_epochs


class FeatureCache:
    """Tap features of the last backbone used, for every tap at once (one pass)."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.feats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def get(self, key: tuple, backbone: NIN, train: Split, test: Split, tap: str, dev: Device,
            batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        if key != self.key:
            self.key, self.feats = None, {}  # free the old features first
            backbone.eval()
            out = []
            for split in (train, test):
                feats: dict[str, torch.Tensor] = {}  # filled in place: one copy of the features in memory
                step = dev.eval_batch(batch)
                for start in range(0, len(split), step):
                    with torch.no_grad(), dev.autocast():
                        for t, f in backbone.all_features(dev.prep(normalize(split.images[start:start + step]))).items():
                            if t not in feats:
                                feats[t] = torch.empty((len(split), *f.shape[1:]), device=f.device)
                            feats[t][start:start + len(f)] = f.float()
                out.append(feats)
            self.feats = {t: (out[0][t], out[1][t]) for t in backbone.taps}
            self.key = key
        return self.feats[tap]


def train_classifier(spec: RunSpec, train: Split, test: Split, dev: Device, run_dir: Path, runs_dir: Path,
                     cache: FeatureCache, views: ViewStore | None = None) -> dict:
    p = spec.profile
    backbone, pretext_epoch = load_backbone(spec, runs_dir, dev)
    metrics = []
    if spec.backbone is not None and spec.pretext_epoch:  # Fig. 5(a): the snapshot's own accuracy
        rot = rotation_accuracy(backbone, test, spec.backbone.rotations, dev, p.eval_batch)
        metrics.append(dict(metric="rotation_acc", value=rot, selection="last", epoch=pretext_epoch,
                            pretext_epoch=pretext_epoch))
    torch.manual_seed(spec.seed + 1)
    head = dev.model(make_head(spec.head, spec.tap, p.width))
    labelled = first_k_per_class(train.labels, spec.n_per_class).to(train.labels.device)
    schedule = "finetune" if spec.finetune else spec.head

    if p.head_views and not spec.finetune:
        # cached crop+flip views (see views.py): a random one of `head_views` per sample and epoch
        assert views is not None, "the runner provides the view store of a head_views profile"
        views.ensure(backbone, train, test, dev.eval_batch(p.eval_batch))
        read, shape = views.reader(spec.tap), views.shape(spec.tap)
        as_input = (lambda f: f) if spec.head == "nonlinear" else (lambda f: f.view(-1, *shape))
        ytrain, index = train.labels[labelled], labelled.cpu()
        model, params = head, head.parameters()

        def batches(g: torch.Generator):
            order = epoch_indices(len(index), g, p.samples_per_epoch)
            view = torch.randint(0, p.head_views, (len(order),), generator=g)
            for b, v in zip(order.split(p.batch_size), view.split(p.batch_size), strict=True):
                yield as_input(read(index[b], v).to(dev.device)), ytrain[b.to(ytrain.device)]

        ftest = views.test_features(spec.tap)

        def evaluate() -> float:
            head.eval()
            logits = predict(head, ftest, dev, p.eval_batch, lambda f: as_input(f.to(dev.device).float()))
            return accuracy(logits, test.labels)
    elif p.cache_features and not spec.finetune:
        # cached path: un-augmented features, computed once per backbone (see REPORT.md)
        key = (spec.backbone.config_hash if spec.backbone else ("random", spec.seed, spec.blocks), spec.pretext_epoch)
        ftrain, ftest = cache.get(key, backbone, train, test, spec.tap, dev, p.eval_batch)
        ftrain, ytrain = ftrain[labelled], train.labels[labelled]
        if spec.head == "nonlinear":  # flatten once, not a channels_last copy in every step
            ftrain, ftest = ftrain.flatten(1), ftest.flatten(1)
        model, params = head, head.parameters()

        def batches(g: torch.Generator):
            for b in epoch_indices(len(ytrain), g, p.samples_per_epoch).to(ytrain.device).split(p.batch_size):
                yield ftrain[b], ytrain[b]

        def evaluate() -> float:
            head.eval()
            return accuracy(predict(head, ftest, dev, p.eval_batch), test.labels)
    else:
        model = TapClassifier(backbone, spec.tap, head, frozen=not spec.finetune)
        params = [q for q in model.parameters() if q.requires_grad]
        batches = labelled_batches(train.subset(labelled), p)
        if spec.finetune:
            evaluate = image_eval(model, test, dev, p)
        else:
            # a frozen backbone gives the (un-augmented) test images the same features every epoch: compute them
            # once, in the same batches, and evaluate the head on them (the same numbers, one backbone pass)
            backbone.eval()
            ftest = predict(lambda x: backbone.features(x, spec.tap), test.images, dev, p.eval_batch, normalize)

            def evaluate() -> float:
                head.eval()
                return accuracy(predict(head, ftest, dev, p.eval_batch), test.labels)

    history, wall = fit(model, params, p, schedule, batches, evaluate, dev, run_dir / "ckpt.pt", spec.seed,
                        spec.run_id)
    return {"metrics": metrics + acc_metrics(history, pretext_epoch), "wall_s": wall, "history": history}


def train_supervised(spec: RunSpec, train: Split, test: Split, dev: Device, run_dir: Path) -> dict:
    """The supervised 3-block NIN, on all labels or the first K per class (cycled)."""
    p = spec.profile
    torch.manual_seed(spec.seed)
    model = dev.model(NIN(spec.blocks, 10, p.width))
    data = train.subset(first_k_per_class(train.labels, spec.n_per_class).to(train.labels.device))
    batches, evaluate = labelled_batches(data, p), image_eval(model, test, dev, p)
    history, wall = fit(model, model.parameters(), p, "supervised", batches, evaluate, dev, run_dir / "ckpt.pt",
                        spec.seed, spec.run_id)
    return {"metrics": acc_metrics(history, 0), "wall_s": wall, "history": history}


def acc_metrics(history: list[dict], pretext_epoch: int) -> list[dict]:
    """The last epoch's test accuracy (reported) and the best test epoch's (labelled oracle)."""
    last = history[-1]
    best = max(history, key=lambda h: h["test_acc"])
    return [dict(metric="test_acc", value=last["test_acc"], selection="last", epoch=last["epoch"],
                 pretext_epoch=pretext_epoch),
            dict(metric="test_acc", value=best["test_acc"], selection="oracle", epoch=best["epoch"],
                 pretext_epoch=pretext_epoch)]
