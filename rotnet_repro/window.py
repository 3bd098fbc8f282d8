"""A GPU window: its plan trained as written, what it sends back, and taking that in (whole or refused).

`plan_file` is the first window of `planner.plan`, as `gpu/paper.sh prepare` stages it; `train` runs exactly its
list in one process (`Clock`: wall time, or the plan's prices on an emulated device); `write_rows` writes the rows
of every finished run of the protocol at home.

A call of a remote GPU session returns at most 8 files of at most 16 MiB. `pack` writes the window's work as one tar split
into parts of 15 MiB plus `back.json` (how many parts, their SHA-256, what was left out), adding files by
priority (records, rows and logs; then final weights; then checkpoints; then snapshots) and checking the
archive's size after every file, so it never exceeds the limit: what does not fit is named in back.json and in
the log, and stays in the machine's work folder for the next call. `unpack` checks every part against back.json
and refuses a partial archive before it imports anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from .config import Kind
from .errors import UserError
from .rundir import Output
from .weights import Manifest, sha256

log = logging.getLogger("rotnet_repro")

PART_BYTES = 15 * 2**20
MAX_FILES = 8  # what a call returns; one of them is back.json
INDEX = "back.json"


def _rank(rel: str) -> int:
    name = rel.rsplit("/", 1)[-1]
    if name == "model.pt":
        return 1
    if name == "ckpt.pt":
        return 2
    if name.startswith("snapshot_"):
        return 3
    return 0  # records, specs, rows, logs: small, and what the rest is read by


def _tar_bytes(size: int) -> int:
    return 512 + -(-size // 512) * 512  # a header, the content in 512-byte blocks


def window_files(work: Path, known: set[str], snapshots_of: set[str] | None = None) -> dict[Path, str]:
    """The files of a window's work folder worth sending back, each with its SHA-256 for a weight file (else ""):
    rows, logs, run records and specs, and the weight files (final weights, checkpoints, snapshots) whose SHA-256
    is not in `known` (at home already: listed in runs/weights.json, or sent back by an earlier call). Snapshots
    only of the RotNets in `snapshots_of` where it is given (the ones a planned cell reads: Fig. 5(a)'s)."""
    out = {}
    w = Output(work)
    for folder in (w.results, w.logs, w.runs):
        for p in sorted(folder.rglob("*")):
            if not p.is_file() or p.name.endswith((".lock", ".tmp")):
                continue
            if p.name.startswith("snapshot_") and snapshots_of is not None and p.parent.name not in snapshots_of:
                continue
            if p.suffix == ".pt":
                digest = sha256(p)
                if digest not in known:
                    out[p] = digest
            elif p.suffix in (".csv", ".json", ".log", ".damaged") or ".json." in p.name:
                out[p] = ""
    return out


def pack(work: Path, out: Path, home_runs: Path | None = None, max_files: int = MAX_FILES,
         part_bytes: int = PART_BYTES, snapshots_of: set[str] | None = None) -> dict:
    """Pack the window's work into `out` as parts of `part_bytes` and an index; returns the index. Weight files
    listed in `home_runs`/weights.json, or sent by an earlier call (work/.sent.json), are not sent again; snapshots
    only of `snapshots_of` (if given)."""
    work, out = Path(work), Path(out)
    work.mkdir(parents=True, exist_ok=True)  # nothing trained yet: an archive of nothing, not an error
    sent_file = work / ".sent.json"
    sent = set(json.loads(sent_file.read_text())) if sent_file.exists() else set()
    known = {e["sha256"] for e in Manifest(home_runs).entries.values()} if home_runs else set()
    digests = window_files(work, known, snapshots_of)
    # a weight file an earlier call packed goes last, not nowhere: that call's files may not have come back whole
    # (what came home is in runs/weights.json, which travels with the next call)
    files = sorted(digests, key=lambda p: (digests[p] in sent, _rank(p.relative_to(work).as_posix()), str(p)))
    budget = (max_files - 1) * part_bytes - 1024 - 10240  # the tar's end blocks and a margin
    chosen, dropped, total = [], [], 0
    for p in files:
        size = _tar_bytes(p.stat().st_size)
        if total + size <= budget:  # checked after every file: the archive never outgrows the limit
            chosen.append(p)
            total += size
        else:
            dropped.append(p.relative_to(work).as_posix())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for p in chosen:
            tar.add(p, arcname=p.relative_to(work).as_posix(), recursive=False)
    data = buf.getvalue()
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(0, max(len(data), 1), part_bytes):
        name = f"back.{len(parts):02d}"
        (out / name).write_bytes(data[i:i + part_bytes])
        parts.append(dict(name=name, sha256=hashlib.sha256(data[i:i + part_bytes]).hexdigest()))
    if len(parts) > max_files - 1:  # cannot happen by construction; a guard against a wrong estimate
        raise RuntimeError(f"packed {len(parts)} parts, more than {max_files - 1}")
    index = dict(parts=parts, bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                 files=len(chosen), dropped=dropped)
    (out / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    sent_file.write_text(json.dumps(sorted(sent | {digests[p] for p in chosen if digests[p]})))
    for d in dropped:
        log.warning("pack: %s left out (over the %d-file limit); it stays in %s for the next call", d, max_files, work)
    return index


def read_archive(src: Path) -> tuple[bytes, dict]:
    """The archive that came back, whole, and its index; or a UserError that says what is missing (nothing is
    imported)."""
    src = Path(src)
    if not (src / INDEX).exists():
        raise UserError(f"{src} holds no {INDEX}: the archive did not come back whole (or was packed by an older "
                        "script); nothing imported")
    index = json.loads((src / INDEX).read_text())
    data = b""
    for part in index["parts"]:
        p = src / part["name"]
        if not p.exists():
            raise UserError(f"the archive came back partial: {part['name']} of {len(index['parts'])} parts is "
                            f"missing from {src}; nothing imported")
        chunk = p.read_bytes()
        if hashlib.sha256(chunk).hexdigest() != part["sha256"]:
            raise UserError(f"the archive came back partial: {part['name']} is cut or damaged "
                            f"({len(chunk)} bytes); nothing imported")
        data += chunk
    if hashlib.sha256(data).hexdigest() != index["sha256"]:
        raise UserError(f"the archive in {src} does not match its {INDEX}; nothing imported")
    return data, index


def unpack(src: Path, dest: Path, profile: str) -> list[str]:
    """Import what came back into `dest` (a checkout): run folders (records, specs, weights), the window's logs
    (runs/<profile>/logs/). Returns what was done, a line each."""
    from .runner import import_runs

    data, index = read_archive(src)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            try:
                tar.extractall(tmp, filter="data")
            except TypeError:  # a Python without extraction filters (before 3.10.12): our own archive
                tar.extractall(tmp)
        came, home = Output(tmp), Output(dest)
        runs = came.runs / profile
        if runs.is_dir() and any(runs.glob("*-*/spec.json")):
            lines += import_runs(runs, home.runs)
        bench = came.bench
        for f in sorted(bench.glob("throughput-*.json")) if bench.is_dir() else []:
            target = home.bench / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
            lines.append(f"{target}: the card's measurement")
        logs = came.logs
        if logs.is_dir():
            stamp = max((p.stat().st_mtime for p in logs.rglob("*") if p.is_file()), default=0)
            target = home.runs / profile / "logs" / f"window-{int(stamp)}"
            shutil.copytree(logs, target, dirs_exist_ok=True)
            lines.append(f"{target}: the window's logs")
    for d in index.get("dropped", []):
        lines.append(f"{d}: left on the GPU machine (over the limit): the next call packs it")
    return lines


# ---- one window, as planned: the plan file, its training in one process, and the rows at home ----

PLAN_FILE = "window.json"


def plan_file(windows: list, items: list, profile: str, prices, workers: int, only: str | None,
              tree_bytes: int, chunk: int | None = None) -> dict:
    """The first window of a plan, as `prepare` stages it and `window train` runs it: its runs in order (each with
    its price per epoch), what it stages and in parts of how many bytes, its calls."""
    from .planner import PACK_S, Window, chunk_bytes, staging_calls

    w: Window | None = windows[0] if windows else None
    return dict(profile=profile, steps=only, workers=workers, price_epoch_s=prices.epoch_s,
                chunk_bytes=chunk_bytes(tree_bytes, chunk),
                staging_calls=staging_calls(w.stage_bytes, tree_bytes, chunk) if w else 0, pack_s=PACK_S,
                runs=[dict(run_id=it.spec.run_id, what=it.spec.describe(), why=it.why, epochs_left=it.epochs_left,
                           epoch_s=it.epoch_s, planned_s=round(here, 1), continues=cont)
                      for it, here, cont in (w.items if w else [])],
                stage=sorted(w.stage) if w else [], stage_bytes=w.stage_bytes if w else 0,
                calls=[dict(what=c.what, seconds=c.seconds, train_s=c.train_s, measure_s=c.measure_s)
                       for c in (w.calls if w else [])])


class Clock:
    """A call's training time: the wall clock up to `until` (epoch seconds), or, on an emulated device (`budget`),
    the priced seconds of the epochs trained. After each epoch (its checkpoint on disk) the run stops if the next
    epoch would not fit, as the planner cuts it; `KeyboardInterrupt` is how a run stops (nothing is lost)."""

    def __init__(self, until: float | None = None, budget: float | None = None):
        self.virtual = budget is not None
        self.end = float(budget) if self.virtual else float(until if until is not None else math.inf)
        self.t, self.epoch_s, self.epochs, self.last = 0.0, 0.0, 0, time.time()

    def now(self) -> float:
        return self.t if self.virtual else time.time()

    def left(self) -> float:
        return self.end - self.now()

    def start(self, epoch_s: float, epochs: int) -> None:
        self.epoch_s, self.epochs, self.last, self.first = epoch_s, epochs, time.time(), True

    def epoch_done(self, epoch: int) -> None:
        if self.virtual:
            self.t += self.epoch_s
            need = self.epoch_s
        else:  # the next epoch takes about as long as the last; the first also held the run's start (data, compile)
            t = time.time()
            need, self.last = t - self.last, t
            if self.first:
                need, self.first = min(need, max(2 * self.epoch_s, 1.0)), False
        if epoch < self.epochs and self.left() < need - 1e-9:
            raise KeyboardInterrupt(f"the call's time is up after epoch {epoch}")


def train(plan: dict, work: Path, data_dir: Path | None, device: str = "auto", until: float | None = None,
          budget: float | None = None, bench_dir: Path | None = None, helper: bool = False) -> list[str]:
    """Train a window's runs, exactly its list, in its order, in this process: each resumes from its last finished
    epoch; a finished run is skipped (never trained again, a finished RotNet whose weights were not staged
    included); a run starts only with NEW_RUN_S left; the time is `Clock`'s. With the plan's `workers` > 1 the
    helpers (`helper`) take the batch-128 runs first, as the planner schedules them; a run another process holds
    is taken up again once the rest are done. Returns a line per run."""
    from .config import get_profile
    from .planner import NEW_RUN_S, compile_as_measured, steps
    from .runner import Runner, RunOptions

    base = get_profile(plan["profile"])
    specs = {s.run_id: s for st in steps(plan.get("steps")) for _, c in st.cells(base)
             for s in (c.spec.backbone, c.spec) if s is not None}
    runner = Runner(base, work, data_dir, device=device, options=RunOptions(
        share_passes=budget is None, retrain_lost_weights=False, batch_runs_first=helper))  # emulated: one run per hook
    lines = []
    if bench_dir is not None:
        said = compile_as_measured(runner.dev, bench_dir.parent.parent)
        if said:
            lines.append(f"compile as measured: {said}")
    todo = list(plan["runs"])
    if helper:  # stable: the batch-128 runs first, in the plan's order
        todo.sort(key=lambda e: e["run_id"].startswith("rotnet-"))
    clock = Clock(until, budget)
    runner.dev.epoch_hooks.append(clock.epoch_done)
    try:
        while todo:
            waiting = []
            for entry in todo:
                line = _train_one(entry, specs, runner, clock, NEW_RUN_S)
                if line is None:
                    waiting.append(entry)
                    continue
                lines.append(line)
                if "stopped (" in line or " s left" in line:  # the call's time is up: nothing later starts
                    return lines
            if waiting and len(waiting) == len(todo):
                time.sleep(2)  # held by the other processes of this window: wait for them
            todo = waiting
    finally:
        runner.dev.epoch_hooks.remove(clock.epoch_done)
    return lines


def _train_one(entry: dict, specs: dict, runner, clock: Clock, new_run_s: float) -> str | None:
    """One run of the plan: a line saying what became of it, or None while another process holds it."""
    from . import engine
    from .rundir import RunBusy
    from .runner import RunNotTrained

    spec = specs.get(entry["run_id"])
    if spec is None:
        return f"{entry['run_id']}: not a run of this code's protocol (the plan is stale): skipped"
    folder = runner.folder(spec)
    if folder.finished and (spec.kind != Kind.ROTNET or folder.model.exists()):
        return f"{spec.run_id}: finished already"
    if spec.backbone is not None and not runner.folder(spec.backbone).finished:
        try:
            with runner.folder(spec.backbone).lock():
                pass
        except RunBusy:
            return None  # another process of this window trains it: wait
        return f"{spec.run_id}: its RotNet {spec.backbone.run_id} is not finished: not started"
    # as the planner starts runs: a new one with a minute and an epoch left, one cut earlier (its checkpoint here)
    # with an epoch left
    if clock.left() < (entry["epoch_s"] if folder.ckpt.exists() else max(new_run_s, entry["epoch_s"])):
        return f"{spec.run_id}: not started, {max(clock.left(), 0):.0f} s left"
    clock.start(entry["epoch_s"], spec.profile.schedule(spec.schedule)[0])
    # a planned RotNet with a record but no weights anywhere (its heads need them) trains again from its checkpoint;
    # nothing else is trained again (a head whose RotNet's weights were not staged is skipped)
    runner.runs.retrain_lost_weights = spec.kind == Kind.ROTNET
    try:
        runner.result(spec, weights_of=0 if spec.kind == Kind.ROTNET else None)
        return f"{spec.run_id}: finished ({entry['what']})"
    except KeyboardInterrupt as e:
        return f"{spec.run_id}: stopped ({e or 'interrupted'}); it resumes from its checkpoint"
    except RunBusy:
        return None
    except (RunNotTrained, engine.DamagedFile) as e:
        return f"{spec.run_id}: skipped: {e}"
    except (UserError, RuntimeError) as e:  # diverged, out of memory: the call goes on with the next run
        log.exception("run %s failed", spec.run_id)
        return f"{spec.run_id}: failed ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})"
    finally:
        runner.runs.retrain_lost_weights = False


def write_rows(profile: str, dest: Path, only: str | None = None) -> int:
    """The rows of every finished run of the planned protocol (variants in their own CSVs, beside their profile),
    written into `dest`'s results/ from the run records; returns how many were added."""
    from .config import custom_label, get_profile, save_profile
    from .experiments import EXPERIMENTS
    from .planner import steps
    from .runner import Runner, RunOptions

    base = get_profile(profile)
    groups: dict[str, tuple] = {}
    for st in steps(only):
        for p, c in st.cells(base):
            groups.setdefault(custom_label(base, p), (p, []))[1].append((EXPERIMENTS[st.experiment], c))
    added = 0
    for label, (p, cells) in groups.items():
        if label != base.name:
            save_profile(Output(dest).saved_profile(label), p)
        runner = Runner(p, dest, device="cpu", label=label, options=RunOptions(train_missing=False))
        added += runner.run_cells(cells)
    return added
