"""Cached crop+flip views of a frozen backbone's tap features (`Profile.head_views`).

Training a head on a frozen full-width backbone by recomputing the backbone on a
fresh crop+flip at every step costs hours per head on a CPU; caching un-augmented
features lets the head memorise them. In between: `views` crop+flip views of every
training image, drawn once from a fixed generator (so that every head on a backbone
shares them), extracted in one pass for all the taps asked for, stored on disk as
uint8 with a per-channel scale; each epoch a head takes a random view per sample.

Layout of a store (one per backbone and pretext epoch, under the runner's cache/):
  meta.json               views, images, and per tap its shape and scale
  <tap>.u8                np.memmap (views, images, C*H*W) uint8, the training views
  <tap>.test.f16          np.memmap (test images, C*H*W) float16, the un-augmented test set
  <tap>.view<v>.done      written after view v of the tap is on disk (resume marker)
A view interrupted half-way is extracted again; nothing else is lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from .data import Split, augment
from .errors import UserError
from .features import extract
from .files import fcntl, locked, write_atomic
from .models import NIN

log = logging.getLogger("rotnet_repro")
VIEW_SEED = 7_000_003  # views belong to the data, not to a head's seed
SCALE_IMAGES = 1000  # the first training images set each channel's uint8 scale
SCALE_HEADROOM = 1.25  # values above 1.25x the largest of those are clipped (counted in meta.json)


def _autocast(device: torch.device):
    """Extraction runs in bf16 autocast, as the GPU path computes everything (results/bench/measurements.csv:
    cpu_bf16_extract_speedup)."""
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _features(backbone: NIN, taps: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The taps' features of raw images x (one batch), in one pass up to the deepest tap, fp32 on the CPU."""
    return extract(backbone, x, taps, len(x), lambda: _autocast(x.device), to="cpu")


def _calibrate(root: Path, backbone: NIN, taps: list[str], new: list[str], train: Split, test: Split,
               batch: int) -> dict[str, dict]:
    """The `new` taps' entries in meta.json, with per-channel uint8 scales from un-augmented training features;
    writes their test set's features (<tap>.test.f16.npy)."""
    calib = _features(backbone, taps, train.images[:SCALE_IMAGES])
    entries, tests = {}, {}
    for t in new:
        f = calib[t]
        chmax = f.amax(dim=(0, 2, 3)).clamp_min(1e-6)
        entries[t] = {"shape": list(f.shape[1:]), "scale": (chmax * SCALE_HEADROOM / 255).tolist(), "clipped": 0}
        tests[t] = np.lib.format.open_memmap(root / f"{t}.test.f16.npy", "w+", np.float16, (len(test), f[0].numel()))
    for s in range(0, len(test), batch):
        for t, f in _features(backbone, taps, test.images[s:s + batch]).items():
            if t in tests:
                tests[t][s:s + len(f)] = f.flatten(1).numpy()
    for mm in tests.values():
        mm.flush()
    return entries


class Users:
    """Processes that planned heads on a store hold a shared lock on `<store>.users` while they live; views are
    deleted only by a process that can take it exclusively, i.e. when no other process still plans to read them."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.f = open(path, "a")  # noqa: SIM115 (held for the process's life)
        if fcntl is not None:
            fcntl.flock(self.f, fcntl.LOCK_SH)

    def alone(self) -> bool:
        """Whether no other process holds the store (the lock is re-taken shared, either way)."""
        if fcntl is None:
            return True
        fcntl.flock(self.f, fcntl.LOCK_UN)
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            fcntl.flock(self.f, fcntl.LOCK_SH)


class ViewStore:
    def __init__(self, root: Path, views: int, taps: list[str]):
        self.root, self.views, self.taps = Path(root), views, list(taps)
        self.meta: dict = {}

    def _meta_path(self) -> Path:
        return self.root / "meta.json"

    def _done(self, tap: str, v: int) -> Path:
        return self.root / f"{tap}.view{v}.done"

    def missing(self) -> list[tuple[str, int]]:
        return [(t, v) for t in self.taps for v in range(self.views) if not self._done(t, v).exists()]

    def ensure(self, backbone: NIN, train: Split, test: Split, batch: int) -> ViewStore:
        """Extract what is missing (resumably), then open the store for reading."""
        self.root.mkdir(parents=True, exist_ok=True)
        with locked(self.root / ".lock"):  # one extracting process per store; others wait, then read
            if self.missing():
                self._extract(backbone, train, test, batch)
            self.meta = json.loads(self._meta_path().read_text())
        return self

    def _extract(self, backbone: NIN, train: Split, test: Split, batch: int) -> None:
        backbone.eval()
        meta = json.loads(self._meta_path().read_text()) if self._meta_path().exists() else {"taps": {}}
        meta.update(views=self.views, images=len(train), test_images=len(test))
        new = [t for t in self.taps if t not in meta["taps"]]
        if new:
            meta["taps"].update(_calibrate(self.root, backbone, self.taps, new, train, test, batch))
            self._write_meta(meta)
        mms = {t: self._open(t, meta, "r+" if (self.root / f"{t}.u8.npy").exists() else "w+") for t in self.taps}
        scales = {t: self._scale(meta, t) for t in self.taps}
        for v in range(self.views):
            todo = [t for t in self.taps if not self._done(t, v).exists()]
            if not todo:
                continue
            t0 = time.perf_counter()
            g = torch.Generator().manual_seed(VIEW_SEED + v)
            clipped = dict.fromkeys(todo, 0)
            for s in range(0, len(train), batch):
                x = augment(train.images[s:s + batch], g)
                for t, f in _features(backbone, self.taps, x).items():
                    if t in todo:
                        q = (f.flatten(1) / scales[t]).round_()
                        clipped[t] += int((q > 255).sum())
                        mms[t][v, s:s + len(f)] = q.clamp_(0, 255).to(torch.uint8).numpy()
            for t in todo:
                mms[t].flush()
                meta["taps"][t]["clipped"] += clipped[t]
            self._write_meta(meta)
            for t in todo:
                self._done(t, v).touch()
            log.info("views %s: view %d/%d of %s (%.0f images/s)", self.root.name, v + 1, self.views, ", ".join(todo),
                     len(train) / (time.perf_counter() - t0))

    def _write_meta(self, meta: dict) -> None:
        write_atomic(self._meta_path(), json.dumps(meta))

    def _open(self, tap: str, meta: dict, mode: str) -> np.memmap:
        d = int(np.prod(meta["taps"][tap]["shape"]))
        path = self.root / f"{tap}.u8.npy"
        if mode == "w+":
            return np.lib.format.open_memmap(path, "w+", np.uint8, (self.views, meta["images"], d))
        mm = np.load(path, mmap_mode=mode)
        if mm.shape != (self.views, meta["images"], d):
            raise UserError(f"{path} holds {mm.shape}, not {(self.views, meta['images'], d)}: delete {self.root} "
                            "and run again (the views are extracted anew)")
        return mm

    @staticmethod
    def _scale(meta: dict, tap: str) -> torch.Tensor:
        c, h, w = meta["taps"][tap]["shape"]
        return torch.tensor(meta["taps"][tap]["scale"]).repeat_interleave(h * w)

    def drop(self, tap: str) -> bool:
        """Delete a tap's views and test features (to free disk); returns whether there were any."""
        with locked(self.root / ".lock") if self.root.exists() else contextlib.nullcontext():
            files = [self.root / f"{tap}.u8.npy", self.root / f"{tap}.test.f16.npy", *self.root.glob(f"{tap}.view*.done")]
            if not any(f.exists() for f in files):
                return False
            if self._meta_path().exists():
                meta = json.loads(self._meta_path().read_text())
                meta["taps"].pop(tap, None)
                self._write_meta(meta)
            for f in files:
                f.unlink(missing_ok=True)
            return True

    # ---- reading ----

    def shape(self, tap: str) -> tuple[int, ...]:
        return tuple(self.meta["taps"][tap]["shape"])

    def reader(self, tap: str):
        """A function (image indices, view indices) -> float32 features (n, C*H*W)."""
        mm = self._open(tap, self.meta, "r")
        scale = self._scale(self.meta, tap)

        def read(idx: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
            order = np.lexsort((idx.numpy(), view.numpy()))  # read in file order, then put back
            out = torch.empty((len(idx), mm.shape[2]), dtype=torch.uint8)
            out[torch.from_numpy(order)] = torch.from_numpy(mm[view.numpy()[order], idx.numpy()[order]])
            return out.float() * scale

        return read

    def test_features(self, tap: str) -> torch.Tensor:
        return torch.from_numpy(np.load(self.root / f"{tap}.test.f16.npy"))
