"""Runs experiments: trains what is missing (resuming), skips what is done, writes rows."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import Kind, Profile, RunSpec, hash_of, save_profile
from .data import Split, load_cifar10, synthetic_cifar
from .engine import Device, segments
from .errors import UserError
from .experiments import Cell, Experiment
from .features import FeatureCache
from .files import DamagedFile, saved_epoch
from .records import row_of
from .results import append_rows
from .rundir import Output, RecordMismatch, RunBusy, RunFolder
from .train import (
    head_path,
    kept_snapshots,
    shares_backbone_pass,
    snapshot_metrics,
    train_classifier,
    train_frozen_heads,
    train_rotnet,
    train_supervised,
)
from .views import Users, ViewStore
from .weights import MANIFEST, WeightsError
from .weights import ensure as ensure_weights

log = logging.getLogger("rotnet_repro")


def restored(path: Path) -> bool:
    """Whether a file a run reads is here, restored from the git history where runs/weights.json lists it (a final
    weight file checked against its SHA-256 there): the core reads only files on disk, this puts them there."""
    try:
        return ensure_weights(path)
    except WeightsError as e:
        raise DamagedFile(str(e)) from None


def checkpoint_epoch(ckpt: Path) -> int:
    """Finished epochs in a run's checkpoint (restored from the git history where it is listed); -1 if there is
    none, or it is damaged."""
    try:
        restored(ckpt)
    except DamagedFile:
        return -1
    return saved_epoch(ckpt)


def files_in(spec: RunSpec, folder: RunFolder, runs_root: Path) -> None:
    """Every file a run reads, in place before its recipe runs: its checkpoint, a RotNet's snapshots, a classifier's
    backbone weights (restored from the git history where listed)."""
    paths = [folder.ckpt]
    if spec.kind == Kind.ROTNET:
        paths += [folder.snapshot(e) for e in kept_snapshots(spec.profile)]
    elif spec.backbone is not None:
        b = spec.backbone
        paths.append(RunFolder.of(runs_root, b.profile.name, b.run_id).weights(spec.pretext_epoch))
    for path in paths:
        restored(path)


class TimeUp(KeyboardInterrupt):
    """`run --time-limit`: the next epoch would not fit in the time left. It is raised before that epoch starts,
    so every finished epoch is on disk and the same command resumes from it (a KeyboardInterrupt: whatever stops
    on Ctrl-C stops on it too)."""


class TimeLimit:
    """Stop a process's training after the last epoch that fits in `seconds`: before each epoch, if one is
    timed (the last epoch this process trained, of any run) and the time left is shorter, `TimeUp`. The first
    epoch a process trains is never refused while time is left (nothing times it yet). `now`: the clock."""

    def __init__(self, seconds: float, now: Callable[[], float] = time.monotonic):
        self.now, self.seconds = now, seconds
        self.end = now() + seconds
        self.started: float | None = None
        self.epoch_s: float | None = None  # the last epoch's duration, its checkpoint included
        self.stopped = ""

    def attach(self, dev: Device) -> None:
        dev.before_epoch_hooks.append(self.before_epoch)
        dev.epoch_hooks.append(self.epoch_done)

    def before_epoch(self, epoch: int) -> None:
        t = self.now()
        left = self.end - t
        if left <= 0 or (self.epoch_s is not None and left < self.epoch_s):
            self.stopped = (f"{max(left, 0):.0f} s left, an epoch takes about {self.epoch_s or 0:.0f} s: stopped "
                            f"before epoch {epoch + 1}")
            raise TimeUp(self.stopped)
        self.started = t

    def epoch_done(self, epoch: int) -> None:
        if self.started is not None:
            self.epoch_s = self.now() - self.started


def parse_duration(text: str) -> float:
    """'90s', '45m', '2h', '1h30m' or H:MM:SS (a scheduler's form) in seconds; a UserError saying the forms."""
    t = text.strip().lower()
    m = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", t)
    h = re.fullmatch(r"(\d+):([0-5]\d):([0-5]\d)", t)
    if t and m and any(m.groups()):
        seconds = sum(float(v) * k for v, k in zip(m.groups(), (3600, 60, 1), strict=True) if v)
    elif h:
        seconds = int(h[1]) * 3600 + int(h[2]) * 60 + int(h[3])
    else:
        raise UserError(f"--time-limit {text!r}: give a duration with its unit, e.g. 90s, 45m, 2h, 1h30m or 1:30:00")
    if seconds <= 0:
        raise UserError(f"--time-limit {text!r}: the limit must be longer than 0 s")
    return seconds


class RunNotTrained(UserError):
    """A run this process does not train: another profile's (Profile.shared_runs), or any with --no-train."""


def git_sha() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        return sha or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@dataclass(frozen=True)
class RunOptions:
    """What a Runner runs and how (given at construction; the command line's `run` options)."""

    rows: re.Pattern | None = None  # run only the cells whose row matches
    columns: re.Pattern | None = None  # ... and whose column matches
    train_missing: bool = True  # False: only finished runs give rows
    share_passes: bool = True  # train planned exact frozen heads on one backbone together (same numbers)
    # a finished RotNet whose weights are nowhere here is trained again from its checkpoint for the heads that need
    # it; False (a GPU window, which trains only its plan): its heads are skipped with a line instead
    retrain_lost_weights: bool = True
    # a helper process beside a first one on one GPU (`--workers N`): the batch-128 runs before RotNets
    batch_runs_first: bool = False


class Trainer:
    """Trains runs on one device and stamps their records with where and how they were made: one run, exact frozen
    heads sharing a backbone pass, or the rotation accuracy of a RotNet's snapshots."""

    def __init__(self, profile: Profile, runs_root: Path, data_dir: Path | str | None, download: bool, dev: Device):
        self.profile, self.runs_root, self.dev = profile, runs_root, dev
        self.data_dir, self.download = data_dir, download
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

    def train(self, spec: RunSpec, folder: RunFolder, views: ViewStore | None) -> dict:
        folder.write_spec(spec.canonical())
        train, test = self.data()
        log.info("run %s: %s", spec.run_id, spec.describe())
        files_in(spec, folder, self.runs_root)
        t0, c0 = time.time(), time.process_time()
        if spec.kind == Kind.ROTNET:
            rec = train_rotnet(spec, train, test, self.dev, folder)
        elif spec.kind == Kind.CLASSIFIER:
            rec = train_classifier(spec, train, test, self.dev, folder, self.runs_root, self.cache, views)
        else:
            rec = train_supervised(spec, train, test, self.dev, folder)
        self.finish(spec, folder, rec, t0, c0=c0)
        return rec

    def train_together(self, specs: list[RunSpec], folders: list[RunFolder]) -> list[dict]:
        for s, f in zip(specs, folders, strict=True):
            f.write_spec(s.canonical())
            log.info("run %s: %s", s.run_id, s.describe())
            files_in(s, f, self.runs_root)
        train, test = self.data()
        log.info("runs %s: one backbone pass a step feeds all %d heads", ", ".join(s.run_id for s in specs), len(specs))
        t0, c0 = time.time(), time.process_time()
        recs = train_frozen_heads(specs, train, test, self.dev, folders, self.runs_root)
        for s, f, rec in zip(specs, folders, recs, strict=True):
            self.finish(s, f, rec, t0, f" (its share; {len(specs)} heads in this process)", c0)
        return recs

    def finish(self, spec: RunSpec, folder: RunFolder, rec: dict, t0: float, note: str = "",
               c0: float | None = None) -> None:
        """Stamp the record with where and how it was made (and what this process spent on it: CPU seconds of
        all its threads, its peak resident memory so far), write it, and say so."""
        rec.update(run_id=spec.run_id, config_hash=spec.config_hash, git_sha=self.sha,
                   torch_version=torch.__version__, device=self.dev.name, finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                   segments=segments(rec.get("history", []), spec.profile.precision), cost=process_cost(t0, c0))
        if len(rec["segments"]) > 1:  # resumed elsewhere: `device` is where it finished, `segments` where each part ran
            log.info("run %s trained in %d segments: %s", spec.run_id, len(rec["segments"]), "; ".join(
                f"epochs {s['epochs'][0]}-{s['epochs'][1]} on {s['device']} ({s['precision']})" for s in rec["segments"]))
        folder.finish(rec)
        log.info("run %s done: %.0f s of training in all, %.0f s in this process%s: %s", spec.run_id, rec["wall_s"],
                 time.time() - t0, note,
                 ", ".join(f"{m['metric']}[{m['selection']}]={m['value']:.2f}" for m in rec["metrics"]))

    def with_snapshot_metrics(self, spec: RunSpec, folder: RunFolder, rec: dict) -> dict:
        """A finished RotNet's record with a rotation accuracy for each snapshot it keeps: records from before
        RotNets measured their snapshots get the missing ones when a cell asks for one, measured here (the metric
        names this device) and written back."""
        if spec.kind != Kind.ROTNET:
            return rec
        have = frozenset(m["pretext_epoch"] for m in rec["metrics"])
        if all(e in have or not folder.snapshot(e).exists() for e in kept_snapshots(spec.profile)):
            return rec
        with folder.lock():  # RunBusy while another process does it: the cell is taken up again later
            rec = folder.read_record()
            have = frozenset(m["pretext_epoch"] for m in rec["metrics"])
            for e in kept_snapshots(spec.profile):  # those still to measure; the measured ones stay in the history
                if e not in have:
                    restored(folder.snapshot(e))
            new = snapshot_metrics(spec, folder, self.data()[1], self.dev, skip=have)
            if new:
                log.info("run %s: measured the rotation accuracy of snapshot(s) %s on %s", spec.run_id,
                         ", ".join(str(m["pretext_epoch"]) for m in new), self.dev.name)
                rec["metrics"] = sorted(rec["metrics"] + [dict(m, device=self.dev.name, git_sha=self.sha,
                                                              torch_version=torch.__version__) for m in new],
                                        key=lambda m: m["pretext_epoch"])
                folder.finish(rec)
        return rec


class Runs:
    """The runs of an output folder as this process sees them: a finished one's record read (a RotNet's weights
    restored where its heads need them), a missing one trained after what it needs, and the planned exact heads on
    one backbone trained together."""

    def __init__(self, profile: Profile, layout: Output, trainer: Trainer, options: RunOptions):
        self.profile, self.trainer, self.root = profile, trainer, layout.runs
        self.train_missing, self.share_passes = options.train_missing, options.share_passes
        self.retrain_lost_weights = options.retrain_lost_weights
        self.views = ViewPlan(layout.cache(profile.name), self.folder)  # scratch: cached views of frozen backbones
        self.heads: dict[str, RunSpec] = {}  # every classifier planned: exact frozen heads share backbone passes

    def folder(self, spec: RunSpec) -> RunFolder:
        return RunFolder.of(self.root, spec.profile.name, spec.run_id)

    def plan(self, spec: RunSpec) -> None:
        if spec.kind == Kind.CLASSIFIER:
            self.heads[spec.run_id] = spec
        self.views.note(spec)

    def result(self, spec: RunSpec, weights_of: int | None = None) -> dict:
        """The run's finished record, training it (and what it depends on) first if needed. `weights_of`: the
        caller needs the RotNet's weights after that pretext epoch (0: its last), not only its record."""
        folder = self.spec_back(spec)
        if folder.finished:
            try:
                rec = folder.read_record()
                if weights_of is None or self._has_weights(spec, folder, weights_of):
                    return rec
            except ValueError as e:
                if not self.train_missing:  # --no-train: said, and left as it is
                    raise DamagedFile(f"{e}: restore it (git checkout runs/), or run without --no-train to train "
                                      "the run again") from None
                log.warning("%s; moved to result.json.damaged, the run is trained again", e)
                folder.set_aside_record()
        if not self.train_missing:
            raise RunNotTrained(f"{spec.describe()} ({spec.run_id}) is not finished (--no-train)")
        if spec.profile.name != self.profile.name:
            raise RunNotTrained(f"{spec.describe()} ({spec.run_id}) is a run of the {spec.profile.name} profile, "
                                   f"not finished in {folder.path.parent}: train it with --profile {spec.profile.name} "
                                   "(on a GPU: README, 'On a GPU') or import it (python -m rotnet_repro import)")
        if spec.backbone is not None:
            self.result(spec.backbone, weights_of=spec.pretext_epoch)
        with contextlib.ExitStack() as held:
            held.enter_context(folder.lock())
            if folder.finished:  # finished by another process while this one waited on the backbone
                return folder.read_record()
            group = [spec] + self._siblings(spec, held)
            if len(group) > 1:
                return self.trainer.train_together(group, [self.folder(s) for s in group])[0]
            store = self.views.store(spec)
            rec = self.trainer.train(spec, folder, store)
            if store is not None:  # a run that read no views deletes none (its store key may be shared)
                self.views.release(spec)
            return rec

    def spec_back(self, spec: RunSpec) -> RunFolder:
        """The run's folder, its spec.json written again if a finished run lost it (deleted by hand: the run's
        config is known here)."""
        folder = self.folder(spec)
        if folder.finished and not folder.spec_file.exists():
            log.warning("run %s: its spec.json was missing; written again from the run's config", spec.run_id)
            folder.write_spec(spec.canonical())
        return folder

    def _has_weights(self, spec: RunSpec, folder: RunFolder, epoch: int) -> bool:
        """Whether a finished RotNet's weights after `epoch` are here (restored from the git history if listed in
        runs/weights.json). A missing snapshot skips its heads; a missing model.pt makes the run unfinished for
        them: its record is set aside and the run trained again, from its checkpoint where one exists."""
        path = folder.weights(epoch)
        try:
            if restored(path):
                return True
        except DamagedFile as e:
            raise DamagedFile(f"{e}; or delete {folder.path} to train that RotNet again") from None
        what = f"{spec.describe()} ({spec.run_id}) has a record but no {path.name}"
        if epoch or not self.train_missing or spec.profile.name != self.profile.name:
            raise RunNotTrained(f"{what} (not in the tree, nor in runs/{MANIFEST}): import it (python -m "
                                "rotnet_repro import), or delete the run folder to train that RotNet again")
        if not self.retrain_lost_weights:
            raise RunNotTrained(f"{what}: it was not staged, and this process trains no finished run again")
        start = checkpoint_epoch(folder.ckpt)
        log.warning("run %s: %s: not finished for its heads; trained again (%s); its old record kept as "
                    "result.json.no-weights", spec.run_id, what,
                    f"resuming after epoch {start}" if start > 0 else "from epoch 0")
        os.replace(folder.record_file, folder.record_file.with_suffix(".json.no-weights"))
        return False

    def _siblings(self, spec: RunSpec, held: contextlib.ExitStack) -> list[RunSpec]:
        """Planned, unfinished exact heads that can share this one's backbone pass, locked for this process (those
        another process holds, or with a checkpoint at another epoch, train on their own)."""
        if not self.share_passes:
            return []
        out, epochs = [], checkpoint_epoch(self.folder(spec).ckpt)
        for other in self.heads.values():
            if other.run_id == spec.run_id or not shares_backbone_pass(spec, other):
                continue
            f = self.folder(other)
            if f.finished or checkpoint_epoch(f.ckpt) != epochs:
                continue
            try:
                held.enter_context(f.lock())
            except RunBusy:
                continue
            if not f.finished:
                out.append(other)
        return out


class Runner:
    """Runs experiments: the cells an experiment builds (those the row/column patterns select), their runs read or
    trained (`Runs`), and their rows appended to the results CSV."""

    def __init__(self, profile: Profile, out: Path | str = ".", data_dir: Path | str | None = None,
                 download: bool = False, device: str = "auto", label: str | None = None, compile_mode: str = "",
                 options: RunOptions = RunOptions()):
        self.profile, self.layout = profile, Output(out)
        self.label = label or profile.name  # the results CSV and its rows' profile column
        self.results_path = self.layout.csv(self.label)
        self.dev = Device.pick(device, compile_mode, profile.precision)
        self.runs_root = self.layout.runs
        self.trainer = Trainer(profile, self.runs_root, data_dir, download, self.dev)
        self.runs = Runs(profile, self.layout, self.trainer, options)
        self.data, self.folder, self.result = self.trainer.data, self.runs.folder, self.runs.result
        self.views, self.heads = self.runs.views, self.runs.heads
        self.rows, self.columns = options.rows, options.columns
        # a worker started by `run --workers N` on CUDA beside the first one: batch-128 runs before RotNets
        self.batch_runs_first = options.batch_runs_first and self.dev.device.type == "cuda"
        self.damaged: list[str] = []  # why cells were skipped: an input file missing or damaged

    @property
    def train_missing(self) -> bool:
        return self.runs.train_missing

    def save_label_profile(self) -> None:
        """An overridden profile's results label: the profile saved beside its CSV (its tables are made from it,
        read back by `config.load_profiles`). Nothing for a base profile."""
        if self.label != self.profile.name:
            save_profile(self.layout.saved_profile(self.label), self.profile)

    def selected(self, cells: list[Cell]) -> list[Cell]:
        return [c for c in cells if (self.rows is None or self.rows.search(c.row))
                and (self.columns is None or self.columns.search(c.column))]

    def plan(self, cells: list[Cell]) -> None:
        """Note the heads planned on each view store: one pass extracts all the taps they read, and each tap's
        views (GBs at full width) are deleted once the planned heads that read it are finished."""
        for c in self.selected(cells):
            self.runs.plan(c.spec)

    def view_store(self, spec: RunSpec) -> ViewStore | None:
        return self.views.store(spec)

    def run_experiment(self, exp: Experiment, seed: int, backbone_seed: int | None = None) -> int:
        """Train what the experiment needs; append its rows. Returns the number of rows added."""
        cells = self.selected(exp.build(self.profile, seed, seed if backbone_seed is None else backbone_seed))
        self.plan(cells)
        return self.run_cells([(exp, c) for c in cells])

    def run_cells(self, cells: list[tuple[Experiment, Cell]], poll_s: float = 2.0) -> int:
        """Train what the cells need and append their rows; returns the number of rows added. Cells whose shared
        runs (another profile's) are missing are skipped with a log line; a cell whose run, or a run it needs, is
        being trained by another process (another worker on the same --out) is put back and taken up again when
        the rest are done, so that several workers split the work and each run is trained once."""
        added, todo = 0, list(cells)
        if self.batch_runs_first:
            # a helper worker beside a RotNet on one GPU: the batch-128 runs that need no unfinished RotNet first
            # (host-bound, they fill the GPU the RotNet leaves idle), then the rest in order; the first worker
            # trains the RotNets
            def ready(c: Cell) -> bool:
                return c.spec.kind != Kind.ROTNET and (c.spec.backbone is None or self.folder(c.spec.backbone).finished)
            todo = [x for x in todo if ready(x[1])] + [x for x in todo if not ready(x[1])]
        else:
            self._rotnets_first([c for _, c in cells])
        while todo:
            waiting = []
            for exp, cell in todo:
                n = self._take(exp, cell)
                if n is None:
                    waiting.append((exp, cell))
                added += n or 0
            if waiting and len(waiting) == len(todo):
                time.sleep(poll_s)  # everything left is in other workers' hands: wait for them
            todo = waiting
        return added

    def _rotnets_first(self, cells: list[Cell]) -> None:
        """Every RotNet first (those of rotation cells and those the heads need), so that a head whose input is
        missing or damaged cannot keep a RotNet from training."""
        rotnets: dict[str, tuple[RunSpec, int | None]] = {}
        for c in cells:
            if c.spec.kind == Kind.ROTNET:
                rotnets.setdefault(c.spec.run_id, (c.spec, None))
            if c.spec.backbone is not None and not self.folder(c.spec).finished:
                rotnets[c.spec.backbone.run_id] = (c.spec.backbone, 0)  # an unfinished head needs its final weights
            elif c.spec.backbone is not None:
                self.runs.spec_back(c.spec.backbone)  # its heads are finished: nothing to train, nothing to restore
        for s, weights_of in (rotnets.values() if self.train_missing else ()):  # --no-train: rows only
            try:
                self.result(s, weights_of)
            except (RunNotTrained, RunBusy, DamagedFile):
                pass  # said again, once per cell, in _take

    def _take(self, exp: Experiment, cell: Cell) -> int | None:
        """The cell's rows appended (how many), once its run is read or trained; None: another process holds it."""
        try:
            rec = self.result(cell.spec)
            if cell.pretext_epoch and not any(cell.wants(m) for m in rec["metrics"]):
                rec = self.trainer.with_snapshot_metrics(cell.spec, self.folder(cell.spec), rec)
        except RunNotTrained as e:
            log.info("skipped %s / %s: %s", cell.row, cell.column, e)
            return 0
        except DamagedFile as e:  # one missing or damaged input never stops the other cells
            log.warning("skipped %s / %s: %s", cell.row, cell.column, e)
            self.damaged.append(str(e))
            return 0
        except RunBusy:
            return None
        rows = [row_of(exp, cell, rec, m, self.label) for m in rec["metrics"] if cell.wants(m)]
        if not rows:
            log.info("skipped %s / %s: %s (%s) has no such metric (a snapshot it does not keep?)", cell.row,
                     cell.column, cell.spec.describe(), cell.spec.run_id)
        return append_rows(self.results_path, rows)


class ViewPlan:
    """The view stores a process plans heads on (cache/<profile>/<backbone>-e<epoch>/): which heads read each, the
    shared lock that keeps another process from deleting a store it reads, and the deletion of a tap's views once
    its planned heads are finished."""

    def __init__(self, cache_dir: Path, folder: Callable[[RunSpec], RunFolder]):
        self.cache_dir, self.folder = cache_dir, folder
        self.planned: dict[str, dict[str, RunSpec]] = {}  # view store -> the heads planned on it
        self.users: dict[str, Users] = {}  # view stores this process plans to read (shared locks)

    @staticmethod
    def key(spec: RunSpec) -> str:
        if spec.backbone is None:
            return f"random-{spec.blocks}b-s{spec.seed}"
        return f"{spec.backbone.run_id}-e{spec.pretext_epoch or spec.backbone.profile.pretext_epochs}"

    def note(self, s: RunSpec) -> None:
        """A planned run: a head on views is noted on its store (one pass extracts every tap its heads read)."""
        if _on_views(s):
            key = self.key(s)
            self.planned.setdefault(key, {})[s.run_id] = s
            if key not in self.users:
                self.users[key] = Users(self.cache_dir / f"{key}.users")

    def store(self, spec: RunSpec) -> ViewStore | None:
        """The cached crop+flip views a frozen head of a head_views profile reads (None for every other run: the k-NN
        and the linear probe read un-augmented features)."""
        if not _on_views(spec):
            return None
        key = self.key(spec)
        pending = [s for s in self.planned.get(key, {}).values() if not self.folder(s).finished]
        taps = {s.tap for s in pending} | {spec.tap}
        return ViewStore(self.cache_dir / key, spec.profile.head_views, sorted(taps))

    def release(self, spec: RunSpec) -> None:
        """Delete the views of each tap of the spec's store whose planned heads are all finished."""
        key = self.key(spec)
        if key not in self.planned:  # only stores this process planned on (a bare result() call deletes nothing)
            return
        heads = self.planned[key].values()
        store = ViewStore(self.cache_dir / key, spec.profile.head_views, [])
        if key in self.users and not self.users[key].alone():
            log.info("views %s: kept, another process plans heads on them", key)
            return
        for tap in {s.tap for s in heads} | {spec.tap}:
            if all(self.folder(s).finished for s in heads if s.tap == tap) and store.drop(tap):
                log.info("views %s: the planned heads on %s are finished; its views deleted", key, tap)


def _on_views(s: RunSpec) -> bool:
    """Whether a run reads cached crop+flip views: a frozen non-linear or conv head of a head_views profile."""
    return s.kind == Kind.CLASSIFIER and head_path(s) == "views"


def process_cost(t0: float, c0: float | None) -> dict:
    """What this process spent on a run: wall and CPU seconds (all threads) since (t0, c0), and its peak resident
    memory so far (GiB; the process's, so it may include earlier runs of the same process)."""
    import resource

    cost = dict(wall_s=round(time.time() - t0, 1), peak_rss_gib=round(resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 2**20, 2), threads=torch.get_num_threads())
    if c0 is not None:
        cost["cpu_s"] = round(time.process_time() - c0, 1)
    return cost


def import_runs(source: Path, runs_root: Path) -> list[str]:
    """Copy run folders of `source` (runs/<profile>/) into runs_root/<profile>/: a finished run where none is,
    an unfinished one where ours has fewer epochs, and the weight files a finished one of ours lacks. Every folder
    is checked before anything is copied (its spec.json must hash to its name, its record must read); folders that
    are not run folders are named, with the reason, and skipped."""
    source = Path(source)
    if not source.is_dir():
        raise UserError(f"{source} does not exist (or is not a folder): pass a runs/<profile>/ folder")
    folders, lines = _run_folders(source)
    for src in folders:
        dest = RunFolder.of(runs_root, source.name, src.path.name)
        if dest.finished:
            lines.append(_import_weights(src, dest))
            continue
        if not src.finished and checkpoint_epoch(dest.ckpt) >= checkpoint_epoch(src.ckpt):
            lines.append(f"{dest.path}: ours has as many epochs, left as it is")
            continue
        dest.path.mkdir(parents=True, exist_ok=True)
        for f in src.path.iterdir():  # contents only: the source may be read-only, ours must stay writable
            if f.is_file():
                refused = _committed_elsewise(f, dest.path / f.name) if f.suffix == ".pt" else None
                if refused:
                    lines.append(refused)
                else:
                    shutil.copyfile(f, dest.path / f.name)
        state = "finished" if dest.finished else f"resumable after epoch {checkpoint_epoch(dest.ckpt)}"
        lines.append(f"{dest.path}: imported ({state})")
    return lines


def _run_folders(source: Path) -> tuple[list[RunFolder], list[str]]:
    """The run folders of `source`, each checked (its spec.json hashes to its name, its record reads), and a line
    for each folder skipped; UserError if one is not a run folder of this package, or none is there."""
    lines, folders, bad = [], [], []
    for d in sorted(p for p in source.iterdir() if p.is_dir() and "-" in p.name):
        src = RunFolder(d)
        if not src.spec_file.exists():
            lines.append(f"{d}: skipped: no spec.json (not a run folder, or its config was deleted)")
            continue
        try:
            spec = json.loads(src.spec_file.read_text())
        except ValueError:
            bad.append(f"{src.spec_file} is not JSON")
            continue
        digest = hash_of(spec)
        if not d.name.endswith(digest[:10]):
            bad.append(f"{src.spec_file} hashes to {digest[:10]}, not its folder name: not a run folder of this "
                       "package (or edited by hand)")
            continue
        if src.finished:
            try:
                src.read_record()
            except RecordMismatch as e:  # another run's record: never imported as this one's
                bad.append(str(e))
                continue
            except ValueError as e:
                lines.append(f"{d}: skipped: {e}")
                continue
        folders.append(src)
    if bad:
        raise UserError(f"nothing imported: {bad[0]}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
    if not folders:
        raise UserError(f"no run folders (with spec.json) in {source}: pass a runs/<profile>/ folder"
                        + (f"; {len(lines)} skipped: {lines[0]}" if lines else ""))
    return folders, lines


def _committed_elsewise(src_file: Path, dest_file: Path) -> str | None:
    """None if `src_file` may be copied to `dest_file`; else (a final weight file listed in runs/weights.json with
    other bytes: the weights finished heads were trained on) it is kept aside, never in its place, and the line
    says so."""
    from .weights import Manifest, is_final, runs_root_of, sha256

    if not is_final(dest_file):
        return None
    e = Manifest(runs_root_of(dest_file)).entry(dest_file)
    digest = sha256(src_file)
    if e is None or e["sha256"] == digest:
        return None
    aside = dest_file.parent / "rejected" / f"{dest_file.stem}-{digest[:12]}.pt"
    aside.parent.mkdir(exist_ok=True)
    shutil.copyfile(src_file, aside)
    return (f"{dest_file}: refused: the committed file (sha256 {e['sha256'][:12]}...) differs from the one that came "
            f"back ({digest[:12]}...); the committed one is kept, the new one set aside as {aside}")


def _import_weights(src: RunFolder, dest: RunFolder) -> str:
    """Into a finished run of ours: the weight files it lacks (snapshots; its model.pt), or, where its record has
    no weights at all (none here, none listed in runs/weights.json), the source's checkpoint or the run trained
    again. A committed weight file is never replaced by other bytes."""
    from .weights import Manifest, runs_root_of

    listed = Manifest(runs_root_of(dest.model)).entry(dest.model) is not None
    if not dest.model.exists() and not listed and src.model.exists() and src.finished:  # trained again elsewhere
        os.replace(dest.record_file, dest.record_file.with_suffix(".json.no-weights"))
        refused = []
        for f in src.path.iterdir():
            if f.is_file() and f.name != "ckpt.pt":
                line = _committed_elsewise(f, dest.path / f.name) if f.suffix == ".pt" else None
                if line:  # a committed snapshot that finished heads read: kept, the new one set aside
                    refused.append(line)
                else:
                    shutil.copyfile(f, dest.path / f.name)
        dest.ckpt.unlink(missing_ok=True)
        ensure_weights(dest.model)
        return "\n".join(refused + [f"{dest.path}: its record had no weights; imported the run trained again (record, "
                                    "weights), the old record kept as result.json.no-weights"])
    names = sorted(f.name for f in src.path.glob("*.pt") if f.name != "ckpt.pt" and not (dest.path / f.name).exists())
    if not dest.model.exists() and not listed and not (src.path / "model.pt").exists() and src.ckpt.exists() \
            and checkpoint_epoch(src.ckpt) > checkpoint_epoch(dest.ckpt):
        names.append("ckpt.pt")
    refused = [line for name in names if (line := _committed_elsewise(src.path / name, dest.path / name))]
    names = [n for n in names if not any(f"/{n}: refused" in line for line in refused)]
    for name in names:
        shutil.copyfile(src.path / name, dest.path / name)
        if name != "ckpt.pt":
            ensure_weights(dest.path / name)  # checked against runs/weights.json where it is listed
    if not names:
        return "\n".join(refused) or f"{dest.path}: finished already, nothing to add"
    what = ", ".join(names)
    if "ckpt.pt" in names:
        what += f" (after epoch {checkpoint_epoch(dest.ckpt)}; its record has no weights: trained again from it when needed)"
    return "\n".join(refused + [f"{dest.path}: finished already; imported {what}"])

