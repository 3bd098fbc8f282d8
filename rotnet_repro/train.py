"""The recipes: RotNet pretext, classifiers on taps (frozen or fine-tuned), supervised NIN.

Each builds its model, data and evaluation, then trains through `engine.fit`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from . import engine, pretext, probes
from .config import Kind, Profile, RunSpec
from .data import Split, augment, epoch_indices, first_k_per_class, normalize
from .engine import Device, accuracy, fit, predict
from .features import FeatureCache, frozen_test_features
from .files import DamagedFile, read_tensors, save_tensors
from .models import NIN, TapClassifier, make_head
from .rundir import RunFolder
from .views import ViewStore

log = logging.getLogger("rotnet_repro")


def rotation_accuracy(model: NIN, test: Split, rotations: str, dev: Device, batch: int) -> float:
    """Pretext accuracy (rotation prediction, for the paper's task) over all transformed copies of the test set."""
    model.eval()
    correct = total = 0
    for xb in test.images.split(dev.eval_batch(batch)):
        x, y = pretext.transform(xb, rotations)
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


def train_rotnet(spec: RunSpec, train: Split, test: Split, dev: Device, folder: RunFolder) -> dict:
    p = spec.profile
    torch.manual_seed(spec.seed)
    model = dev.model(NIN(spec.blocks, pretext.classes(spec.rotations), p.width, p.bn_init), "rotnet")
    data = pretext_train_set(train, p)

    def batches(g: torch.Generator):
        for b in epoch_indices(len(data), g).to(data.images.device).split(p.batch_size):
            # crop/flip once per image, then all its rotated copies (protocol)
            x, y = pretext.transform(augment(data.images[b], g), spec.rotations)
            if p.rotations_per_image and p.rotations_per_image < pretext.classes(spec.rotations):
                x, y = some_rotations(x, y, len(b), p.rotations_per_image, g)
            yield normalize(x), y

    def snapshot(epoch: int) -> None:
        if epoch in kept_snapshots(p):  # the last epoch's weights are model.pt
            save_tensors(model.state_dict(), folder.snapshot(epoch))

    history, wall = fit(model, model.parameters(), p, "pretext", batches, None, dev, folder.ckpt,
                        spec.seed, spec.run_id, snapshot)
    save_tensors(model.state_dict(), folder.model)
    rot = rotation_accuracy(model, test, spec.rotations, dev, p.eval_batch)
    epochs = len(history)
    return {"metrics": snapshot_metrics(spec, folder, test, dev) + [
        dict(metric="rotation_acc", value=rot, selection="last", epoch=epochs, pretext_epoch=epochs)],
        "wall_s": wall, "history": history}


def some_rotations(x: torch.Tensor, y: torch.Tensor, n: int, k: int, g: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """k of each image's rotated copies (rotation-major batches of n images), drawn without replacement per image:
    a RotNet with more rotations then sees as many rotated samples as one with k (e.g. 8 rotations at the 4-rotation
    RotNet's budget)."""
    r = len(x) // n
    choice = torch.rand(n, r, generator=g).argsort(1)[:, :k]  # per image, k distinct rotations
    idx = (choice * n + torch.arange(n)[:, None]).T.flatten().to(x.device)  # rotation-major again
    return x[idx], y[idx]


def kept_snapshots(p: Profile) -> range:
    """The pretext epochs before the last after which a RotNet saves its weights (Fig. 5(a))."""
    return range(p.snapshot_every, p.pretext_epochs, p.snapshot_every)


def snapshot_metrics(spec: RunSpec, folder: RunFolder, test: Split, dev: Device, skip: frozenset[int] = frozenset()
                     ) -> list[dict]:
    """A RotNet's rotation accuracy after each earlier pretext epoch it kept a snapshot of (Fig. 5(a)), but those
    in `skip`: one metric each, with that epoch as its pretext_epoch."""
    p = spec.profile
    model = dev.model(NIN(spec.blocks, pretext.classes(spec.rotations), p.width), "head")
    out = []
    for e in kept_snapshots(p):
        path = folder.snapshot(e)
        if e in skip or not path.exists():
            continue
        try:
            model.load_state_dict(read_tensors(path, dev.device))
        except DamagedFile as e:
            raise DamagedFile(f"{e}: restore it, or delete {folder.path} to train that RotNet again") from None
        rot = rotation_accuracy(model, test, spec.rotations, dev, p.eval_batch)
        out.append(dict(metric="rotation_acc", value=rot, selection="last", epoch=e, pretext_epoch=e))
    return out


def load_backbone(spec: RunSpec, runs_dir: Path, dev: Device) -> tuple[NIN, int]:
    """The classifier's frozen/fine-tuned backbone: a RotNet (snapshot, from runs_dir/<its profile>/) or a random
    init."""
    p = spec.profile
    kind = "rotnet" if spec.finetune else "head"  # a fine-tuned backbone steps like a supervised NIN
    if spec.backbone is None:
        torch.manual_seed(spec.seed)  # random init is part of the run's identity
        return dev.model(NIN(spec.blocks, 4, p.width, p.bn_init), kind), 0
    b = spec.backbone
    model = dev.model(NIN(b.blocks, pretext.classes(b.rotations), p.width), kind)
    path = RunFolder.of(runs_dir, b.profile.name, b.run_id).weights(spec.pretext_epoch)
    try:
        model.load_state_dict(read_tensors(path, dev.device))
    except DamagedFile as e:
        raise DamagedFile(f"{e}: restore it (git checkout, or `python -m rotnet_repro import` from where it was "
                          f"trained), or delete {path.parent} to train that RotNet again") from None
    return model, spec.pretext_epoch or b.profile.pretext_epochs


def head_path(s: RunSpec) -> str:
    """How a classifier run reads its backbone: "probe" (k-NN or linear probe on un-augmented features, probes.py),
    "finetune" (backbone trained too), "views" (a frozen backbone's cached crop+flip views, views.py), "cached" (its
    un-augmented features, computed once) or "exact" (a fresh crop+flip through the frozen backbone every step)."""
    p = s.profile
    return ("probe" if s.head in probes.HEADS else "finetune" if s.finetune else "views" if p.head_views else
            "cached" if p.cache_features else "exact")


def train_classifier(spec: RunSpec, train: Split, test: Split, dev: Device, folder: RunFolder, runs_dir: Path,
                     cache: FeatureCache, views: ViewStore | None = None) -> dict:
    p, path = spec.profile, head_path(spec)
    backbone, pretext_epoch = load_backbone(spec, runs_dir, dev)
    if path == "probe":
        return _probe(spec, backbone, pretext_epoch, train, test, dev, folder, cache)
    torch.manual_seed(spec.seed + 1)
    head = dev.model(make_head(spec.head, spec.tap, p.width), "head")
    labelled = first_k_per_class(train.labels, spec.n_per_class).to(train.labels.device)
    model, params, batches, evaluate = HEAD_PATHS[path](spec, backbone, head, labelled, train, test, dev, cache, views)
    history, wall = fit(model, params, p, spec.schedule, batches, evaluate, dev, folder.ckpt, spec.seed,
                        spec.run_id)
    return {"metrics": acc_metrics(history, pretext_epoch), "wall_s": wall, "history": history}


def _through_backbone(spec: RunSpec, backbone: NIN, head: nn.Module, labelled: torch.Tensor, train: Split,
                      test: Split, dev: Device, cache: FeatureCache, views: ViewStore | None):
    """The head on the backbone's taps, images in: frozen ("exact": the test features computed once) or fine-tuned."""
    p = spec.profile
    model = TapClassifier(backbone, spec.tap, head, frozen=not spec.finetune)
    params = [q for q in model.parameters() if q.requires_grad]
    evaluate = (image_eval(model, test, dev, p) if spec.finetune else
                _frozen_eval(backbone, spec.tap, head, test, dev, p))
    return model, params, labelled_batches(train.subset(labelled), p), evaluate


def _on_views(spec: RunSpec, backbone: NIN, head: nn.Module, labelled: torch.Tensor, train: Split, test: Split,
              dev: Device, cache: FeatureCache, views: ViewStore | None):
    """The head alone, on cached crop+flip views (views.py): a random one of `head_views` per sample and epoch."""
    assert views is not None, "the runner provides the view store of a head_views profile"
    p = spec.profile
    views.ensure(backbone, train, test, dev.eval_batch(p.eval_batch))
    read, shape = views.reader(spec.tap), views.shape(spec.tap)
    as_input = (lambda f: f) if spec.head == "nonlinear" else (lambda f: f.view(-1, *shape))
    ytrain, index = train.labels[labelled], labelled.cpu()

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

    return head, head.parameters(), batches, evaluate


def _on_cached_features(spec: RunSpec, backbone: NIN, head: nn.Module, labelled: torch.Tensor, train: Split,
                        test: Split, dev: Device, cache: FeatureCache, views: ViewStore | None):
    """The head alone, on un-augmented features computed once per backbone (see REPORT.md)."""
    p = spec.profile
    ftrain, ftest = cache.get(_backbone_key(spec), backbone, train, test, spec.tap, dev, p.eval_batch)
    ftrain, ytrain = ftrain[labelled], train.labels[labelled]
    if spec.head == "nonlinear":  # flatten once, not a channels_last copy in every step
        ftrain, ftest = ftrain.flatten(1), ftest.flatten(1)

    def batches(g: torch.Generator):
        for b in epoch_indices(len(ytrain), g, p.samples_per_epoch).to(ytrain.device).split(p.batch_size):
            yield ftrain[b], ytrain[b]

    def evaluate() -> float:
        head.eval()
        return accuracy(predict(head, ftest, dev, p.eval_batch), test.labels)

    return head, head.parameters(), batches, evaluate


# a classifier path's (model, parameters, batches, evaluation), by head_path; "probe" trains no head (_probe)
HEAD_PATHS: dict[str, Callable] = {"exact": _through_backbone, "finetune": _through_backbone,
                                   "views": _on_views, "cached": _on_cached_features}


def _backbone_key(spec: RunSpec) -> tuple:
    """What a frozen backbone's features depend on: its RotNet (or random init) and snapshot."""
    return (spec.backbone.config_hash if spec.backbone else ("random", spec.seed, spec.blocks), spec.pretext_epoch)


def _probe(spec: RunSpec, backbone: NIN, pretext_epoch: int, train: Split, test: Split, dev: Device,
           folder: RunFolder, cache: FeatureCache) -> dict:
    """A k-NN or linear probe on the tap's un-augmented features (probes.py)."""
    ftrain, ftest = cache.centre.get(_backbone_key(spec), backbone, train, test, spec.tap, dev, spec.profile.eval_batch)
    if spec.head == "knn":
        ytrain = train.labels
        if spec.n_per_class:  # a subset: its rows copied (all of them: the maps as they are, no copy)
            labelled = first_k_per_class(train.labels, spec.n_per_class).to(train.labels.device)
            ftrain, ytrain = ftrain[labelled], train.labels[labelled]
        rec = probes.evaluate_knn(spec, ftrain, ytrain, ftest, test.labels, pretext_epoch)
    else:
        rec = probes.train_linear(spec, ftrain, train.labels, ftest, test.labels, dev, folder,
                                  lambda history: acc_metrics(history, pretext_epoch))
    return dict(rec, features=cache.centre.cost)  # the features' extraction: its time and size


def _frozen_eval(backbone: NIN, tap: str, head: nn.Module, test: Split, dev: Device, p: Profile) -> Callable[[], float]:
    """A frozen backbone gives the (un-augmented) test images the same features every epoch: compute them once, in
    the same batches, and evaluate the head on them (the same numbers, one backbone pass)."""
    ftest = frozen_test_features(backbone, tap, test, dev, p.eval_batch)

    def evaluate() -> float:
        head.eval()
        return accuracy(predict(head, ftest, dev, p.eval_batch), test.labels)

    return evaluate


def backbone_pass_key(s: RunSpec) -> tuple | None:
    """What an exact frozen head's batches depend on (backbone, snapshot, seed, labels, epochs, profile): heads with
    equal keys can share one backbone pass a step. None for every other run."""
    p = s.profile
    if s.kind != Kind.CLASSIFIER or head_path(s) != "exact":
        return None
    return (s.backbone.run_id if s.backbone else ("random", s.blocks), s.pretext_epoch, s.seed, s.n_per_class,
            p.schedule(s.head)[0], p)


def shares_backbone_pass(a: RunSpec, b: RunSpec) -> bool:
    """Exact frozen heads that see the same batches: one backbone pass a step can feed both, with the numbers of
    separate runs."""
    key = backbone_pass_key(a)
    return key is not None and key == backbone_pass_key(b)


def train_frozen_heads(specs: list[RunSpec], train: Split, test: Split, dev: Device, folders: list[RunFolder],
                       runs_dir: Path) -> list[dict]:
    """Exact frozen heads on one backbone (`shares_backbone_pass`), trained together: each step runs the backbone
    once up to the deepest tap, then every head takes its step. Each run's numbers equal a separate run's."""
    s0, p = specs[0], specs[0].profile
    backbone, pretext_epoch = load_backbone(s0, runs_dir, dev)
    trainees = []
    for spec, folder in zip(specs, folders, strict=True):
        torch.manual_seed(spec.seed + 1)
        head = dev.model(make_head(spec.head, spec.tap, p.width), "head")
        model = TapClassifier(backbone, spec.tap, head, frozen=True)
        trainees.append(engine.Trainee(model, [q for q in model.parameters() if q.requires_grad], spec.head,
                                       _frozen_eval(backbone, spec.tap, head, test, dev, p), folder.ckpt, spec.run_id,
                                       lambda x, f, head=head, tap=spec.tap: head(f[tap])))
    labelled = first_k_per_class(train.labels, s0.n_per_class).to(train.labels.device)
    upto = max((s.tap for s in specs), key=backbone.taps.index)
    out = engine.fit_many(trainees, p, labelled_batches(train.subset(labelled), p), dev, s0.seed,
                          shared=lambda x: backbone.all_features(x, upto))
    others = [s.run_id for s in specs]
    return [{"metrics": acc_metrics(history, pretext_epoch), "wall_s": wall, "history": history,
             "shared_backbone_pass": [r for r in others if r != spec.run_id]}
            for spec, (history, wall) in zip(specs, out, strict=True)]


def train_supervised(spec: RunSpec, train: Split, test: Split, dev: Device, folder: RunFolder) -> dict:
    """The supervised 3-block NIN, on all labels or the first K per class (cycled)."""
    p = spec.profile
    torch.manual_seed(spec.seed)
    model = dev.model(NIN(spec.blocks, 10, p.width, p.bn_init), "rotnet")
    data = train.subset(first_k_per_class(train.labels, spec.n_per_class).to(train.labels.device))
    batches, evaluate = labelled_batches(data, p), image_eval(model, test, dev, p)
    history, wall = fit(model, model.parameters(), p, "supervised", batches, evaluate, dev, folder.ckpt,
                        spec.seed, spec.run_id)
    return {"metrics": acc_metrics(history, 0), "wall_s": wall, "history": history}


def acc_metrics(history: list[dict], pretext_epoch: int) -> list[dict]:
    """The last epoch's test accuracy (reported) and the best evaluated epoch's (labelled oracle; the profile's
    `eval_every` sets which epochs are evaluated, the last always)."""
    last = history[-1]
    best = max((h for h in history if math.isfinite(h["test_acc"])), key=lambda h: h["test_acc"], default=last)
    return [dict(metric="test_acc", value=last["test_acc"], selection="last", epoch=last["epoch"],
                 pretext_epoch=pretext_epoch),
            dict(metric="test_acc", value=best["test_acc"], selection="oracle", epoch=best["epoch"],
                 pretext_epoch=pretext_epoch)]
