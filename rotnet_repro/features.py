"""A frozen backbone's tap features: the one extraction every frozen-feature path calls, and the cache that keeps
them for the next run on the same backbone.

Who reads them:
- exact frozen heads (a fresh crop+flip through the backbone every step): their un-augmented test features, once
  per run (`frozen_test_features`);
- heads on un-augmented training features (`Profile.cache_features`): every tap at once, fp32 (`FeatureCache()`);
- the k-NN and linear probes (probes.py): one tap, fp16 (the cache's `centre`; the conv1
  map of 60,000 images is 2.9 GB so at full width);
- the view store (views.py): crop+flip views of every training image, a batch at a time, written to disk as uint8.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

import torch

from .data import Split, normalize
from .models import NIN

log = logging.getLogger("rotnet_repro")


@torch.no_grad()
def extract(backbone: NIN, images: torch.Tensor, taps: list[str], step: int,
            autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
            dtype: torch.dtype = torch.float32, to: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """The `taps`' features of raw uint8 `images`, `step` images a pass up to the deepest tap, in `dtype` on `to`
    (default: where the backbone computes). One copy in memory: each batch is written in place."""
    upto = max(taps, key=backbone.taps.index)
    out: dict[str, torch.Tensor] = {}
    for start in range(0, len(images), step):
        x = normalize(images[start:start + step]).contiguous(memory_format=torch.channels_last)
        with autocast():
            feats = backbone.all_features(x, upto)
        for t in taps:
            f = feats[t]
            if t not in out:
                out[t] = torch.empty((len(images), *f.shape[1:]), dtype=dtype, device=f.device if to is None else to)
            out[t][start:start + len(f)] = f
    return out


class FeatureCache:
    """The un-augmented train and test features of the last backbone asked for, kept for the next run on it: every
    tap at once (one pass) or only the tap asked for. `cost` says what the last `get` took (its extraction, or
    `reused`)."""

    def __init__(self, dtype: torch.dtype = torch.float32, every_tap: bool = True) -> None:
        self.dtype, self.every_tap = dtype, every_tap
        self.key: tuple | None = None
        self.feats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.cost: dict = {}
        if every_tap:  # beside it, one tap's fp16 features for the probes (a run reads one or the other)
            self.centre = FeatureCache(torch.float16, every_tap=False)

    def get(self, key: tuple, backbone: NIN, train: Split, test: Split, tap: str, dev, batch: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """The (train, test) features of `tap` of `backbone` (`key` names the backbone: its run and snapshot)."""
        key = key if self.every_tap else (*key, tap)
        if key == self.key:
            self.cost = dict(self.cost, extract_s=0.0, reused=True)  # extracted by an earlier run of this process
            return self.feats[tap]
        self.key, self.feats = None, {}  # the old ones freed first
        backbone.eval()
        taps = list(backbone.taps) if self.every_tap else [tap]
        t0 = time.time()
        ftrain, ftest = (extract(backbone, s.images, taps, dev.eval_batch(batch), dev.autocast, self.dtype)
                         for s in (train, test))
        self.feats = {t: (ftrain[t], ftest[t]) for t in taps}
        a, b = self.feats[tap]
        size = sum(f.numel() * f.element_size() for pair in self.feats.values() for f in pair)
        self.cost = dict(tap=tap, shape=list(a.shape[1:]), dtype=str(self.dtype).removeprefix("torch."),
                         extract_s=round(time.time() - t0, 1), gib=round(size / 2**30, 2))
        log.info("features of %s: %s + %s in %.0f s (%.2f GiB)", ", ".join(taps), tuple(a.shape), tuple(b.shape),
                 self.cost["extract_s"], self.cost["gib"])
        self.key = key
        return a, b


def frozen_test_features(backbone: NIN, tap: str, test: Split, dev, batch: int) -> torch.Tensor:
    """A frozen backbone's un-augmented test features of `tap` (fp32), in the batches `engine.predict` takes."""
    backbone.eval()
    return extract(backbone, test.images, [tap], dev.eval_batch(batch), dev.autocast)[tap]
