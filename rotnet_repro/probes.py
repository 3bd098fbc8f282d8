"""Frozen features read without a trained non-linear head: a weighted k-NN and a linear probe on each tap.

Both read a tap's un-augmented ("centre") features: one backbone pass over the 50,000 training and 10,000 test
images, whatever head path the profile's non-linear heads take, held in fp16 (the conv1 map of 60,000 images is
2.9 GB so at full width, the others 1.5 GB; one tap at a time).

- **k-NN** (`head="knn"`, no training): cosine similarity to every training image, the k most similar vote with
  weight exp(similarity / T); k = 20, T = 0.07 (DINO, solo-learn) and k = 200, T = 0.1 (lightly), on the flattened
  map the non-linear heads read and on its global average ("pooled"). One record holds the four accuracies.
- **Linear probe** (`head="linear"`): BatchNorm without affine parameters (standardises each pooled channel) and
  one linear layer on the globally averaged map, trained with the profile's SGD (lr, momentum, weight decay, batch)
  on the `linear` schedule, the last epoch reported, its weights initialised N(0, 0.01). No augmentation: the
  features are computed once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
from torch import nn

from .config import KNN, RunSpec
from .data import epoch_indices, first_k_per_class
from .engine import Device, accuracy, fit, predict
from .rundir import RunFolder

log = logging.getLogger("rotnet_repro")

# the heads this module evaluates (no crop+flip views, no shared backbone pass)
HEADS = ("knn", "linear")


def knn_metric(k: int, pooled: bool) -> str:
    """The record's metric name of one k-NN variant."""
    return f"knn{k}_acc" + ("_pooled" if pooled else "")




def pooled(f: torch.Tensor, chunk: int = 5000) -> torch.Tensor:
    """A map's global average per channel (fp32), `chunk` images at a time (no fp32 copy of all the maps)."""
    return torch.cat([f[i:i + chunk].float().mean(dim=(2, 3)) for i in range(0, len(f), chunk)]) if len(f) else \
        f.float().mean(dim=(2, 3))


@torch.no_grad()
def knn_accuracies(ftrain: torch.Tensor, ytrain: torch.Tensor, ftest: torch.Tensor, ytest: torch.Tensor,
                   knn: tuple[tuple[int, float], ...] = KNN, chunk: int = 2500) -> dict[tuple[int, float], float]:
    """Weighted k-NN test accuracy for each (k, T): cosine similarity over the flattened features, the k nearest
    training images vote for their class with weight exp(sim / T). Training features are read `chunk` at a time
    (in fp32), keeping the running top-k per test image, so memory stays near one chunk beside the test set."""
    kmax = min(max(k for k, _ in knn), len(ftrain))
    test = nn.functional.normalize(ftest.flatten(1).float(), dim=1)
    best_s = torch.full((len(test), 0), float("-inf"), device=test.device)
    best_y = torch.zeros((len(test), 0), dtype=torch.long, device=test.device)
    for start in range(0, len(ftrain), chunk):
        block = nn.functional.normalize(ftrain[start:start + chunk].flatten(1).float(), dim=1)
        sims = test @ block.T
        s = torch.cat([best_s, sims], 1)
        y = torch.cat([best_y, ytrain[start:start + chunk].expand(len(test), -1)], 1)
        best_s, at = s.topk(min(kmax, s.shape[1]), dim=1)
        best_y = y.gather(1, at)
    classes = int(max(ytrain.max(), ytest.max())) + 1
    out = {}
    for k, t in knn:
        votes = torch.zeros(len(test), classes, device=test.device)
        votes.scatter_add_(1, best_y[:, :k], (best_s[:, :k] / t).exp())
        out[(k, t)] = accuracy(votes, ytest)
    return out


def evaluate_knn(spec: RunSpec, ftrain: torch.Tensor, ytrain: torch.Tensor, ftest: torch.Tensor,
                 ytest: torch.Tensor, pretext_epoch: int) -> dict:
    t0 = time.time()
    metrics = []
    for is_pooled in (False, True):
        a, b = (pooled(ftrain), pooled(ftest)) if is_pooled else (ftrain, ftest)
        for (k, _), acc in knn_accuracies(a, ytrain, b, ytest).items():
            metrics.append(dict(metric=knn_metric(k, is_pooled), value=acc, selection="last", epoch=0,
                                pretext_epoch=pretext_epoch))
    log.info("%s: %s", spec.run_id, ", ".join(f"{m['metric']}={m['value']:.2f}" for m in metrics))
    return {"metrics": metrics, "wall_s": time.time() - t0, "history": []}


def linear_probe(channels: int, n_out: int = 10) -> nn.Module:
    """BatchNorm1d without affine parameters (standardises each channel) and one linear layer, N(0, 0.01) init."""
    linear = nn.Linear(channels, n_out)
    nn.init.normal_(linear.weight, 0.0, 0.01)
    nn.init.zeros_(linear.bias)
    return nn.Sequential(nn.BatchNorm1d(channels, affine=False), linear)


def train_linear(spec: RunSpec, ftrain: torch.Tensor, ytrain: torch.Tensor, ftest: torch.Tensor, ytest: torch.Tensor,
                 dev: Device, folder: RunFolder, metrics: Callable[[list[dict]], list[dict]]) -> dict:
    """The linear probe on the pooled features of the first K images per class (all: K = 0)."""
    p = spec.profile
    labelled = first_k_per_class(ytrain, spec.n_per_class).to(ytrain.device)
    xtrain, y = pooled(ftrain)[labelled], ytrain[labelled]  # pooled first: no copy of the maps
    xtest = pooled(ftest)
    torch.manual_seed(spec.seed + 1)
    model = linear_probe(xtrain.shape[1]).to(dev.device)

    def batches(g: torch.Generator):
        for b in epoch_indices(len(y), g, p.samples_per_epoch).to(y.device).split(p.batch_size):
            yield xtrain[b], y[b]

    def evaluate() -> float:
        model.eval()
        return accuracy(predict(model, xtest, dev, p.eval_batch), ytest)

    history, wall = fit(model, model.parameters(), p, "linear", batches, evaluate, dev, folder.ckpt, spec.seed,
                        spec.run_id)
    return {"metrics": metrics(history), "wall_s": wall, "history": history}
