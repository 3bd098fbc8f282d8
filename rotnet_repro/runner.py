"""Runs experiments: trains what is missing (resuming), skips what is done, writes rows."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from .config import Profile, RunSpec
from .data import Split, load_cifar10, synthetic_cifar
from .errors import UserError
from .experiments import Experiment
from .results import append_rows, locked
from .train import Device, FeatureCache, train_classifier, train_rotnet, train_supervised

log = logging.getLogger("rotnet_repro")


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory for this process: two processes never train one run at once."""
    with locked(run_dir / ".lock", wait=False) as held:
        if not held:
            raise UserError(f"run {run_dir.name} is being trained by another process; wait for it to finish "
                            "(or stop it) and run again: finished runs are skipped")
        yield


def git_sha() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        return sha or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Runner:
    def __init__(self, profile: Profile, out: Path | str = ".", data_dir: Path | str | None = None,
                 download: bool = False, device: str = "auto", label: str | None = None):
        self.profile, self.out = profile, Path(out)
        self.label = label or profile.name  # the results CSV and its rows' profile column
        self.data_dir, self.download = data_dir, download
        self.dev = Device.pick(device)
        self.runs_dir = self.out / "runs" / profile.name
        self.results_path = self.out / "results" / f"{self.label}.csv"
        self._data: tuple[Split, Split] | None = None
        self.cache = FeatureCache()
        self.sha = git_sha()

    def data(self) -> tuple[Split, Split]:
        if self._data is None:
            if self.profile.data == "synthetic":
                train, test = synthetic_cifar()
            else:
                train, test = load_cifar10(self.data_dir, self.download)
            self._data = (train.to(self.dev.device), test.to(self.dev.device))
        return self._data

    def result(self, spec: RunSpec) -> dict:
        """The run's finished record, training it (and what it depends on) first if needed."""
        run_dir = self.runs_dir / spec.run_id
        done = run_dir / "result.json"
        if done.exists():
            return json.loads(done.read_text())
        if spec.backbone is not None:
            self.result(spec.backbone)
        with run_lock(run_dir):
            if done.exists():  # finished by another process while this one waited on the backbone
                return json.loads(done.read_text())
            return self._train(spec, run_dir, done)

    def _train(self, spec: RunSpec, run_dir: Path, done: Path) -> dict:
        (run_dir / "spec.json").write_text(json.dumps(spec.canonical(), indent=1, sort_keys=True, default=list))
        train, test = self.data()
        log.info("run %s: %s", spec.run_id, _describe(spec))
        t0 = time.time()
        if spec.kind == "rotnet":
            rec = train_rotnet(spec, train, test, self.dev, run_dir)
        elif spec.kind == "classifier":
            rec = train_classifier(spec, train, test, self.dev, run_dir, self.runs_dir, self.cache)
        else:
            rec = train_supervised(spec, train, test, self.dev, run_dir)
        rec.update(run_id=spec.run_id, config_hash=spec.config_hash, git_sha=self.sha,
                   torch_version=torch.__version__, device=self.dev.name, finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        tmp = done.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=1))
        os.replace(tmp, done)
        (run_dir / "ckpt.pt").unlink(missing_ok=True)  # optimizer state is no longer needed
        log.info("run %s done: %.0f s of training in all, %.0f s in this process: %s", spec.run_id, rec["wall_s"],
                 time.time() - t0,
                 ", ".join(f"{m['metric']}[{m['selection']}]={m['value']:.2f}" for m in rec["metrics"]))
        return rec

    def run_experiment(self, exp: Experiment, seed: int, backbone_seed: int | None = None) -> int:
        """Train what the experiment needs; append its rows. Returns the number of rows added."""
        added = 0
        for cell in exp.build(self.profile, seed, seed if backbone_seed is None else backbone_seed):
            rec = self.result(cell.spec)
            rows = [self._row(exp, cell, rec, m) for m in rec["metrics"] if m["metric"] == cell.metric]
            added += append_rows(self.results_path, rows)
        return added

    def _row(self, exp: Experiment, cell, rec: dict, m: dict) -> dict:
        s = cell.spec
        return dict(experiment=exp.id, artifact=exp.artifact, row=cell.row, column=cell.column, run_id=rec["run_id"],
                    config_hash=rec["config_hash"], profile=self.label, seed=s.seed, kind=s.kind,
                    blocks=s.blocks, rotations=s.rotations, tap=s.tap, head=s.head, finetune=int(s.finetune),
                    n_per_class=s.n_per_class, pretext_epoch=m["pretext_epoch"], metric=m["metric"],
                    value=round(m["value"], 4), selection=m["selection"], epoch=m["epoch"], git_sha=rec["git_sha"],
                    torch_version=rec["torch_version"], device=rec["device"], wall_s=round(rec["wall_s"], 1))


def _describe(s: RunSpec) -> str:
    if s.kind == "rotnet":
        return f"RotNet {s.blocks} blocks, rotations {s.rotations}, seed {s.seed}"
    if s.kind == "supervised":
        return f"supervised NIN, K={s.n_per_class or 'all'}, seed {s.seed}"
    src = f"RotNet-{s.blocks}/{s.rotations}" if s.backbone else "random init"
    ft = " fine-tuned" if s.finetune else ""
    snap = f" @epoch {s.pretext_epoch}" if s.pretext_epoch else ""
    return f"{s.head}{ft} on {src}{snap} {s.tap}, K={s.n_per_class or 'all'}, seed {s.seed}"
