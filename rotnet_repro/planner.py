"""The window planner: what is left of the full protocol, in the order the report needs it, cut into GPU windows.

    python -m rotnet_repro plan              # or gpu/paper.sh plan

A window is 15 minutes of device time, start-up and staging included, in calls of at most 10 minutes that each
carry 64 MiB, the tracked tree included. Each run is priced from what this project measured on a GPU:
  - a RotNet per rotated sample, from the finished RotNet records of runs/<profile>/ (by depth; else bench);
  - a batch-128 run (frozen heads, supervised NINs, fine-tuned and semi-supervised runs) per step, from the
    finished exact head records: such steps are bound by the host (3.7 ms on the H100 against about 0.7 ms of
    GPU work), so bench's per-image model time underprices them;
plus the evaluations included in those records. Several runs at once (`--workers N`, as `run --workers N` on
CUDA trains them: the workers after the first take batch-128 runs first) are priced with each
process's speed beside the others, as `gpu/measure.sh` measured it on the card (`results/bench/throughput-*.json`);
until a card has been measured, runs go one at a time.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Kind, Profile, RunSpec, apply_overrides
from .cost import rotated_copies, spec_samples
from .experiments import EXPERIMENTS, Cell
from .files import saved_epoch
from .rundir import Output, RunFolder
from .weights import Manifest

ROT, HEAD = "rotnet step, batch 512", "conv head step, batch 128"  # the step kinds, as saved bench JSON names them
WINDOW_S = 900  # device time of a window, all calls together
# the planning figures below keep a margin over what was measured (results/bench/measurements.csv:
# h200_machine_start_s, h100_stage_call_s, h200_process_start_s, cpu_pack_s_96mb, cifar10_xz_bytes)
START_S = 85  # start-up of the machine
STAGE_CALL_S = 15  # one staging call: transfer and append
CALL_S = 600  # the longest call
CALL_GAP_S = 10  # between two calls of a window: the next call's tree travels and its command starts
TIMEOUT_SLACK_S = 15  # a training call's timeout_s over its own limit (`train SECONDS` packs and exits by SECONDS)
END_MARGIN_S = 10  # left unused at the window's end: the last call must pack before the device time runs out
# A training call (`gpu/paper.sh train SECONDS`): its process starts (imports, CIFAR-10 out of the staged archive,
# CUDA), trains the window's list until SECONDS minus PACK_S, then packs; both with room to spare.
PROCESS_S = 20
PACK_S = 10
NEW_RUN_S = 60  # a run starts only with this much of a call's training time left
CALL_BYTES = 64 * 2**20
MARGIN_BYTES = 2 * 2**20
# CIFAR-10's python batches as `gpu/paper.sh prepare` packs them (tar | xz --delta), measured by `prepare` (its
# index.json) where it has run, else this figure (measurements.csv: cifar10_xz_bytes)
DATA_BYTES = 128_019_360


# No card measured yet (results/bench/throughput-*.json): the first window's last call keeps this much for
# gpu/measure.sh's throughput part (saved after each of its parts), in place of training
MEASURE_S = 150


@dataclass(frozen=True)
class Call:
    """One call of a window: what runs there and for how long (`train`: its training seconds, pack excluded)."""

    what: str  # "stage" | "train"
    seconds: int  # the command's own limit (timeout_s: a few seconds more)
    train_s: float = 0.0
    measure_s: float = 0.0  # kept at its end for the card's measurement


def window_calls(staging_calls: int, window_s: float = WINDOW_S, measure_s: float = 0.0) -> list[Call]:
    """The calls of a window that stages `staging_calls` parts: start-up, all but the last part alone, then the last
    part with a training call of up to CALL_S, then a second training call with what is left of the window while
    the machine is warm (`last_call`: if a run fits in it), then give_back. A gap of CALL_GAP_S before every call
    but the first: `staging_calls` gaps in all with the second training call. `measure_s`: kept at the end of the
    last call for the card's measurement."""
    calls = [Call("stage", STAGE_CALL_S) for _ in range(staging_calls - 1)]
    # the last part is staged in the same call; a call, or what the staging calls leave of the window less the end
    # margin, whichever is less (many parts: a shorter first call and no second)
    left = window_s - START_S - (staging_calls - 1) * (STAGE_CALL_S + CALL_GAP_S)
    first = int(min(CALL_S, left - END_MARGIN_S)) - STAGE_CALL_S
    calls.append(Call("train", first, max(first - PROCESS_S - PACK_S, 0.0)))
    second = last_call(left - CALL_S)
    if second is not None:
        calls.append(second)
    if measure_s:
        calls[-1] = Call("train", calls[-1].seconds, max(calls[-1].train_s - measure_s, 0.0), measure_s)
    return calls


def last_call(left_s: float) -> Call | None:
    """A window's next training call sized from the device time left just before it (`left_s`: what the device's
    status says is left once the call before has ended, a retry's time already spent): the gap before it, its
    timeout slack and the end margin kept, at most a whole call; None if no run could start in it (give_back)."""
    seconds = int(min(CALL_S - TIMEOUT_SLACK_S, left_s - CALL_GAP_S - TIMEOUT_SLACK_S - END_MARGIN_S))
    if seconds - PROCESS_S - PACK_S < NEW_RUN_S:
        return None
    return Call("train", seconds, seconds - PROCESS_S - PACK_S)


def data_bytes(parts_dir: Path = Path(".device-data")) -> tuple[int, str]:
    """CIFAR-10 as `prepare` packs it: measured by the last prepare (its index.json), else DATA_BYTES."""
    try:
        return int(json.loads((Path(parts_dir) / "index.json").read_text())["data_bytes"]), "measured by prepare"
    except (OSError, ValueError, KeyError, TypeError):
        return DATA_BYTES, "measured 2026-12-05"


@dataclass(frozen=True)
class Step:
    """A step of the protocol in the order the report needs it: an experiment's cells (rows matching `rows`) at
    `seeds`, each seed's heads on its own RotNet or on the RotNet of `backbone_seed`."""

    why: str
    experiment: str
    rows: str | None = None
    overrides: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    backbone_seed: int | None = None

    def cells(self, base: Profile) -> list[tuple[Profile, Cell]]:
        profile = apply_overrides(base, list(self.overrides)) if self.overrides else base
        return [(profile, c) for seed in self.seeds
                for c in EXPERIMENTS[self.experiment].build(profile, seed, seed if self.backbone_seed is None
                                                            else self.backbone_seed)
                if self.rows is None or re.search(self.rows, c.row)]


# What the report needs most first
PRIORITY: list[Step] = [
    Step("Table 1: 3- and 5-block rows (claims 1, 2)", "table1_block_depth", r"^RotNet [35] conv"),
    Step("Table 2: the rotation RotNets and their heads (claim 3)", "table2_rotations"),
    Step("Table 3: supervised NIN, fine-tuned heads (claim 4)", "table3_comparison"),
    Step("Fig. 5(b) (claim 6)", "fig5b_semi_supervised"),
    Step("Fig. 5(a): exact heads on the snapshots", "fig5a_epoch_curve"),
    # claim 5's plateau check needs several head seeds on one RotNet: before any other RotNet seed
    Step("Fig. 5(a): head seeds 1 and 2 on the seed-0 RotNet (claim 5)", "fig5a_epoch_curve", r"^object",
         seeds=(1, 2), backbone_seed=0),
    Step("Table 1: the rest of the 4-block row, and Random Init.", "table1_block_depth",
         r"^(RotNet 4 conv|Random Init\.$)"),
]
VARIANTS = {  # the gap's suspects: one RotNet each, with Table 3's two exact heads on it (README, REPORT)
    "pretext200": ("pretext_epochs=200",),  # the official code's schedule
    "fp32": ("precision=fp32",),  # the paper trained in fp32; we train under bf16 autocast
    "bn_uniform": ("bn_init=uniform",),  # PyTorch 0.2 drew BatchNorm weights from U(0,1)
}
for v, o in VARIANTS.items():  # (Table 2's 4-rotation row adds no run: its rotation accuracy and conv2 head)
    PRIORITY += [Step(f"gap variant {v}: RotNet + Table 3's exact heads", "table3_comparison",
                      r"^RotNet \+ (non-linear|conv)$", o),
                 Step(f"gap variant {v}: RotNet + Table 3's exact heads", "table2_rotations", r"^4 rotations", o)]
PRIORITY += [Step("seeds 1 and 2", e, seeds=(1, 2)) for e in
             ("table3_comparison", "fig5b_semi_supervised", "fig5a_epoch_curve", "table1_block_depth",
              "table2_rotations")]


def steps(only: str | None = None) -> list[Step]:
    """PRIORITY, or its steps whose reason matches `only` (a regex: a rehearsal plays part of the protocol)."""
    return [s for s in PRIORITY if only is None or re.search(only, s.why)]


def snapshot_rotnets(base: Profile) -> set[str]:
    """The RotNets whose pretext snapshots a planned cell reads (Fig. 5(a)'s): only theirs are worth sending back."""
    return {c.spec.backbone.run_id for st in PRIORITY for _, c in st.cells(base)
            if c.spec.backbone is not None and c.spec.pretext_epoch}


@dataclass
class Prices:
    rotated_sample_s: dict[int, float]  # by RotNet depth
    step128_s: dict[str, float]  # a batch-128 step by head ("nonlinear", "conv"), evaluation included
    source: str
    epoch_s: float = 0.0  # > 0: every epoch of every run at this price (a rehearsal's emulated device)

    def step(self, head: str) -> float:
        return self.step128_s.get(head) or max(self.step128_s.values())

    def of(self, s: RunSpec, done_epochs: int = 0) -> float:
        p = s.profile
        if self.epoch_s:
            return (p.schedule(s.schedule)[0] - done_epochs) * self.epoch_s
        if s.kind == Kind.ROTNET:
            per = self.rotated_sample_s.get(s.blocks) or max(self.rotated_sample_s.values())
            return (p.pretext_epochs - done_epochs) * (spec_samples(s) // p.pretext_epochs) * per
        epochs = p.schedule(s.schedule)[0] - done_epochs
        return epochs * math.ceil(p.samples_per_epoch / p.batch_size) * self.step(s.head if s.kind == Kind.CLASSIFIER
                                                                                    and not s.finetune else "")


def measured_prices(runs_root: Path, profile: str = "paper") -> Prices:
    """Per-sample and per-step costs from the profile's finished records (the GPU that trained them)."""
    rot: dict[int, list[float]] = {}
    steps: dict[str, list[float]] = {}
    backbones: dict[str, RunSpec] = {}  # each RotNet's spec read once
    for rec_file in sorted((Path(runs_root) / profile).glob("*/result.json")):
        folder = RunFolder(rec_file.parent)
        try:
            rec, spec = folder.read_record(), folder.read_spec(backbones)
        except (ValueError, OSError):
            continue
        if "cuda" not in str(rec.get("device", "")).lower() and "nvidia" not in str(rec.get("device", "")).lower():
            continue
        p, epochs = spec.profile, len(rec.get("history", []))
        if not epochs:
            continue
        if spec.kind == Kind.ROTNET:
            per_epoch = spec_samples(spec) // p.pretext_epochs
            rot.setdefault(spec.blocks, []).append(rec["wall_s"] / (per_epoch * epochs))
        elif spec.kind == Kind.CLASSIFIER and not spec.finetune and spec.head != "knn" and _head_path(spec) == "exact" \
                and not rec.get("shared_backbone_pass"):  # a k-NN takes no steps
            steps.setdefault(spec.head, []).append(
                rec["wall_s"] / (epochs * math.ceil(p.samples_per_epoch / p.batch_size)))
    if not rot or not steps:  # nothing measured for this profile: the H100/H200 figures of the paper profile
        return Prices({3: 17.5e-6, 4: 18.6e-6}, {"nonlinear": 3.7e-3, "conv": 4.5e-3},
                      f"no finished GPU records in runs/{profile}/: the paper profile's H100/H200 figures")
    return Prices({b: statistics.median(v) for b, v in rot.items()}, {h: statistics.median(v) for h, v in steps.items()},
                  f"{sum(map(len, rot.values()))} RotNet and {sum(map(len, steps.values()))} exact head records of "
                  f"runs/{profile}/")


@dataclass
class Item:
    spec: RunSpec
    why: str
    cost_s: float
    resume_epoch: int = 0
    needs: list[str] = field(default_factory=list)  # weight files (runs/-relative) to stage

    @property
    def epochs_left(self) -> int:
        return self.spec.profile.schedule(self.spec.schedule)[0] - self.resume_epoch

    @property
    def epoch_s(self) -> float:
        """The price of one of its epochs (a run cut at a call's end has done whole epochs only)."""
        return self.cost_s / max(self.epochs_left, 1)


@dataclass
class Window:
    items: list[tuple[Item, float, bool]] = field(default_factory=list)  # (item, seconds here, continues)
    stage: set[str] = field(default_factory=set)
    left_s: float = 0.0
    used_s: float = 0.0  # seconds of training, the runs side by side counted once
    calls: list[Call] = field(default_factory=list)
    stage_bytes: int = 0  # what its staging calls carry: CIFAR-10 and the weights in `stage`


def _remaining(base: Profile, runs_root: Path, manifest: Manifest, only: str | None = None) -> list[Item]:
    """The unfinished runs of PRIORITY's steps, in order, each once. A finished RotNet is planned again only when an
    unfinished head needs its weights and they are nowhere (not here, not in runs/weights.json): it trains again
    from its checkpoint. A finished run is never planned otherwise."""
    specs: dict[str, tuple[RunSpec, str]] = {}
    heads_on: dict[str, list[RunSpec]] = {}
    for st in steps(only):
        for _, c in st.cells(base):
            for s in (c.spec.backbone, c.spec):
                if s is not None:
                    specs.setdefault(s.run_id, (s, st.why))
            if c.spec.backbone is not None:
                heads_on.setdefault(c.spec.backbone.run_id, []).append(c.spec)
    out: list[Item] = []
    for run_id, (s, why) in specs.items():
        f = RunFolder.of(runs_root, s.profile.name, run_id)
        if f.finished:
            has_weights = f.model.exists() or manifest.entry(f.model) is not None
            needed = any(not RunFolder.of(runs_root, h.profile.name, h.run_id).finished for h in heads_on.get(run_id, ()))
            if has_weights or not needed:
                continue
        e = manifest.entry(f.ckpt)
        resume = max(saved_epoch(f.ckpt), 0) if f.ckpt.exists() else (e or {}).get("epoch", 0)
        item = Item(s, why, 0.0, resume)
        if e is not None and not f.ckpt.exists():
            item.needs.append(manifest.key(f.ckpt))
        elif f.ckpt.exists():
            item.needs.append(f.ckpt.relative_to(runs_root).as_posix())
        if s.backbone is not None:
            w = RunFolder.of(runs_root, s.backbone.profile.name, s.backbone.run_id).weights(s.pretext_epoch)
            we = manifest.entry(w)
            if we is not None and we["where"] == "history":
                item.needs.append(manifest.key(w))
        out.append(item)
    return out


@dataclass
class Concurrency:
    """Each process's speed relative to running alone, by processes on the device (bench.concurrency_speeds):
    `head`: a batch-128 run among batch-128 runs; `rotnet_beside` / `head_beside`: a RotNet beside batch-128 runs,
    and one of those. Past the measured counts the processes share the largest count's throughput (unmeasured:
    plain time-slicing, no gain); RotNets at once share one RotNet's throughput."""

    head: dict[int, float] = field(default_factory=lambda: {1: 1.0})
    rotnet_beside: dict[int, float] = field(default_factory=lambda: {1: 1.0})
    head_beside: dict[int, float] = field(default_factory=dict)
    source: str = "no measurement yet (gpu/measure.sh): plain time-slicing, no gain"
    rotnets_share: bool = True  # False: RotNets side by side each keep the table's speed (a CPU's recorded times)

    @property
    def measured_workers(self) -> int:
        return max(self.head)

    @staticmethod
    def _at(table: dict[int, float], n: int) -> float:
        """A process's speed among n; past the measured counts, the largest count's throughput shared (no gain)."""
        if n in table:
            return table[n]
        m = max((k for k in table if k <= n), default=None)
        return 1.0 if m is None else table[m] * m / n

    def speeds(self, rotnets: int, others: int) -> tuple[float, float]:
        """(a RotNet's speed, a batch-128 run's speed) with this many of each on the device."""
        n = rotnets + others
        if rotnets == 0:
            return 0.0, self._at(self.head, n)
        rot = self._at(self.rotnet_beside, n)
        if self.rotnets_share:
            rot = min(rot, 1 / rotnets)  # RotNets are GPU-bound: together at most one RotNet's throughput
        return rot, (self._at(self.head_beside, n) if others and self.head_beside else self._at(self.head, n))

    def best(self) -> int:
        """The process count with the most work per second as `run` mixes them (a RotNet beside batch-128 runs),
        the smallest within 2% of the most."""
        rate = {n: self._at(self.rotnet_beside, n) + (n - 1) * self._at(self.head_beside or self.head, n)
                for n in range(1, self.measured_workers + 1)}
        top = max(rate.values())
        return min(n for n, r in rate.items() if r >= 0.98 * top)

    @classmethod
    def from_speeds(cls, sp: dict, source: str) -> Concurrency:
        """From bench.concurrency_speeds' dict (JSON keys are strings)."""
        return cls(*({int(k): v for k, v in sp[t].items()} for t in ("head", "rotnet_beside", "head_beside")), source)

    @classmethod
    def load(cls, bench_dir: Path, device: str = "") -> Concurrency:
        """From a GPU's throughput measurement in `bench_dir` (`gpu_measurements`), else one run at a time."""
        for name, b in gpu_measurements(bench_dir, device):
            try:
                return cls.from_speeds(b["speeds"], name)
            except (KeyError, ValueError, AttributeError):
                continue
        return cls()


def gpu_measurements(bench_dir: Path, device: str = "") -> list[tuple[str, dict]]:
    """The GPU throughput measurements in `bench_dir`, the last by name first (of `device`'s kind if given, e.g.
    "h200"); measurements on a CPU never price a GPU."""
    out = []
    files = sorted(Path(bench_dir).glob(f"throughput-*{device.lower()}*.json" if device else "throughput-*.json"))
    for f in reversed(files):
        try:
            b = json.loads(f.read_text())
        except (ValueError, OSError):
            continue
        if isinstance(b, dict) and any(w in str(b.get("device", "")).lower() for w in ("nvidia", "cuda", "gpu")):
            out.append((f.name, b))
    return out


STEP_KINDS = {ROT: "rotnet", HEAD: "head"}  # a measured step kind -> the kind of model `Device.model` compiles


def measured_compile_modes(bench_dir: Path, device: str = "") -> tuple[dict[str, str], str]:
    """`run --compile auto`: per kind of model, the torch.compile mode whose step measured fastest on this card
    ("" = eager: where no mode beats eager by 5%), and the file it comes from; ({}, why) without a measurement."""
    for name, b in gpu_measurements(bench_dir, device):
        modes = {}
        for step, by_mode in b.get("step_s", {}).items():
            if step in STEP_KINDS and "eager" in by_mode:
                best = min(by_mode, key=by_mode.get)
                modes[STEP_KINDS[step]] = "" if by_mode[best] > 0.95 * by_mode["eager"] else best
        if modes:
            return modes, name
    return {}, "no GPU measurement in results/bench/ (gpu/measure.sh): eager"


def compile_as_measured(dev: Any, out: str | Path) -> str:
    """`--compile auto`: on CUDA, compile each kind of model in the mode measured fastest on this card (results/bench
    under `out`); says what it chose ("" where nothing was measured, or on a CPU: eager)."""
    if dev.device.type != "cuda":
        return ""
    modes, source = measured_compile_modes(Output(out).bench, dev.card)
    dev.use_measured_compile(modes)
    return ", ".join(f"{k} {m or 'eager'}" for k, m in modes.items()) + f" ({source})" if modes else ""


def _is_rotnet(it: Item) -> bool:
    return it.spec.kind == Kind.ROTNET


class _Lanes:
    """`schedule`'s state: the runs waiting, those running on the lanes, and the segments so far."""

    def __init__(self, items: list[Item], workers: int, conc: Concurrency, capacity: Any):
        self.workers, self.conc, self.capacity = workers, conc, capacity
        self.pending = list(items)
        self.waiting_for = {it.spec.run_id for it in items}
        self.running: list[dict] = []
        self.segments: list[tuple[list[tuple[Item, float, bool]], float]] = []
        self.entries: list[tuple[Item, float, bool]] = []
        self.left = capacity(0) if capacity else math.inf
        self.took = 0.0
        self.work_at_cuts: list[float] = []

    def ready(self, it: Item) -> bool:
        return it.spec.backbone is None or it.spec.backbone.run_id not in self.waiting_for

    def fits(self, it: Item) -> bool:
        """Whether a whole epoch of `it` fits in what is left, at its speed beside the runs already going."""
        rot_n = sum(_is_rotnet(r["item"]) for r in self.running) + _is_rotnet(it)
        v_rot, v_other = self.conc.speeds(rot_n, len(self.running) + 1 - rot_n)
        return it.epoch_s <= 1e-9 or it.epoch_s / max(v_rot if _is_rotnet(it) else v_other, 1e-9) <= self.left + 1e-9

    def start(self) -> bool:
        """Start the next run on each free lane; whether a lane waits (its next run's epoch would not fit)."""
        idle = False
        for lane in range(self.workers):
            if any(r["lane"] == lane for r in self.running):
                continue
            order = [i for i in self.pending if self.ready(i)]
            if lane > 0:  # stable: the first batch-128 run in priority order, else the first run
                order.sort(key=_is_rotnet)
            if order and self.fits(order[0]):
                self.pending.remove(order[0])
                self.running.append(dict(item=order[0], left=order[0].cost_s, lane=lane, here=0.0))
            elif order:
                idle = True
        return idle

    def advance(self) -> None:
        """Train the running runs, each at its speed beside the others, until one ends or the segment does."""
        rot_n = sum(_is_rotnet(r["item"]) for r in self.running)
        v_rot, v_other = self.conc.speeds(rot_n, len(self.running) - rot_n)
        for r in self.running:
            r["v"] = max(v_rot if _is_rotnet(r["item"]) else v_other, 1e-9)
        dt = min(min(r["left"] / r["v"] for r in self.running), self.left)
        self.left -= dt
        self.took += dt
        for r in self.running:
            r["left"] -= r["v"] * dt
            r["here"] += dt
        for r in [r for r in self.running if r["left"] <= 1e-6]:
            self.running.remove(r)
            self.entries.append((r["item"], r["here"], False))
            self.waiting_for.discard(r["item"].spec.run_id)

    def cut(self) -> None:
        """End the segment at the call's end: each running run continues from its checkpoint in the next."""
        for r in self.running:
            self.entries.append((r["item"], r["here"], True))
            r["here"] = 0.0
            pe = r["item"].epoch_s
            if pe > 0:  # whole epochs only
                r["left"] = math.ceil(r["left"] / pe - 1e-6) * pe
        self.work_at_cuts.append(sum(r["left"] for r in self.running) + sum(i.cost_s for i in self.pending))
        if len(self.work_at_cuts) > 3 and self.work_at_cuts[-4] - self.work_at_cuts[-1] <= 1e-6:
            raise ValueError("the plan is stuck: three calls in a row finish no epoch (an epoch longer than a "
                             "call at the speeds measured?)")
        self.segments.append((self.entries, self.took))
        self.entries, self.took = [], 0.0
        self.left = self.capacity(len(self.segments))


def schedule(items: list[Item], workers: int, conc: Concurrency, capacity: Any = None
             ) -> list[tuple[list[tuple[Item, float, bool]], float]]:
    """Run `items` (in priority order; a run waits for its RotNet) on `workers` processes: worker 1 takes the next
    run, the others the next batch-128 run if there is one, each at its measured speed beside the others. `capacity(k)` gives
    segment k's seconds (a training call's time; None: one endless segment); a new run starts only with NEW_RUN_S
    and one of its epochs (at its speed beside the others) left. A run cut at a segment's end keeps whole epochs
    only (the one under way is trained again), as `window train` stops. Returns, per segment, its (item, seconds
    in it, continues in the next) and the seconds it took."""
    s = _Lanes(items, workers, conc, capacity)
    while s.pending or s.running:
        idle = s.start() if s.left >= NEW_RUN_S else False
        if not s.running and s.left >= NEW_RUN_S and not idle:
            raise ValueError("the plan is stuck: a run waits for a RotNet that is not planned")
        if s.running:
            s.advance()
        if ((s.left < NEW_RUN_S or idle) and not s.running or s.left <= 1e-6) and (s.pending or s.running):
            s.cut()
    s.segments.append((s.entries, s.took))
    return s.segments


@dataclass
class Remaining:
    """The unfinished runs of the protocol, priced, and the weights manifest: read once, planned at any count."""

    items: list[Item]
    manifest: Manifest

    @classmethod
    def of(cls, base: Profile, runs_root: Path, prices: Prices, only: str | None = None) -> Remaining:
        manifest = Manifest(runs_root)
        items = _remaining(base, runs_root, manifest, only)
        for it in items:
            it.cost_s = prices.of(it.spec, it.resume_epoch)
        return cls(items, manifest)


def chunk_bytes(tree_bytes: int, chunk: int | None = None) -> int:
    """What one call can carry beside the tracked tree: a staging part's size (`chunk`: a smaller one chosen, as a
    rehearsal stages in several small parts)."""
    return chunk or CALL_BYTES - tree_bytes - MARGIN_BYTES


def staging_calls(nbytes: int, tree_bytes: int, chunk: int | None = None) -> int:
    return max(1, math.ceil(nbytes / chunk_bytes(tree_bytes, chunk)))


def plan(base: Profile, runs_root: Path, tree_bytes: int, prices: Prices, workers: int = 1,
         conc: Concurrency | None = None, todo: Remaining | None = None, data: int = DATA_BYTES,
         window_s: float = WINDOW_S, measure_s: float = 0.0, chunk: int | None = None
         ) -> tuple[list[Window], list[Item]]:
    """The remaining runs cut into windows of calls (`window_calls`): each training call is a segment of the
    schedule (the first window keeps `measure_s` for the card's measurement; `chunk`: the staging part size, as
    `chunk_bytes`). A window's staging calls depend on the weights it stages, which depend on what it trains:
    planned again until they agree."""
    todo = todo or Remaining.of(base, runs_root, prices)
    items, manifest = todo.items, todo.manifest
    parts: dict[int, int] = {}  # window -> its staging calls, where more than the data alone
    for _ in range(5):
        segs_of: list[tuple[int, Call]] = []  # each training call of the protocol: (window, call)

        def capacity(k: int, segs_of: list[tuple[int, Call]] = segs_of) -> float:
            while len(segs_of) <= k:
                w = segs_of[-1][0] + 1 if segs_of else 0
                calls = window_calls(parts.get(w, staging_calls(data, tree_bytes, chunk)), window_s,
                                     measure_s if w == 0 else 0)
                segs_of.extend((w, c) for c in calls if c.what == "train")
            return segs_of[k][1].train_s

        segs = schedule(items, workers, conc or Concurrency(), capacity)
        windows: list[Window] = []
        for (w, _), (entries, took) in zip(segs_of, segs, strict=False):
            if w == len(windows):
                windows.append(Window(calls=window_calls(parts.get(w, staging_calls(data, tree_bytes, chunk)), window_s,
                                                         measure_s if w == 0 else 0)))
            win = windows[w]
            for it, here, cont in entries:  # a run in both calls of a window is one line
                same = [i for i, (x, _, _) in enumerate(win.items) if x is it]
                if same:
                    _, before, _ = win.items[same[0]]
                    win.items[same[0]] = (it, before + here, cont)
                else:
                    win.items.append((it, here, cont))
            win.used_s += took
        changed = False
        for w, win in enumerate(windows):
            for it, _, _ in win.items:  # what each run needs, even where its RotNet trains on in the same window:
                # a file a run's needs list is at home already, from epochs its RotNet has done (a snapshot the
                # resumed RotNet does not write again)
                win.stage |= set(it.needs)
            win.stage_bytes = data + sum(manifest.entries.get(n, {}).get("bytes", 0) + 1024 for n in win.stage)
            need = staging_calls(win.stage_bytes, tree_bytes, chunk)
            if need != parts.get(w, staging_calls(data, tree_bytes, chunk)):
                parts[w], changed = need, True
            win.left_s = sum(c.train_s for c in win.calls) - win.used_s
        if not changed:
            break
    return windows, items


def best_workers(base: Profile, runs_root: Path, tree_bytes: int, prices: Prices, conc: Concurrency,
                 todo: Remaining | None = None) -> int:
    """The measured process count that finishes the remaining protocol soonest (1 until a card is measured)."""
    todo = todo or Remaining.of(base, runs_root, prices)
    best = {n: sum(w.used_s for w in plan(base, runs_root, tree_bytes, prices, n, conc, todo)[0])
            for n in range(1, conc.measured_workers + 1)}
    return min(best, key=lambda n: (round(best[n]), n))


def concurrency_eta(profile: Profile, speeds: dict, counts: tuple[int, ...], runs_root: Path = Path("runs"),
                    tree_bytes: int | None = None) -> dict[int, dict[str, float]]:
    """The remaining protocol (runs_root's unfinished runs of `profile`) with 1..N processes at the measured
    speeds: hours of device time and windows, per N; printed, and saved with the measurement."""
    from .weights import tracked_bytes

    conc = Concurrency.from_speeds(speeds, "this measurement")
    tree = tracked_bytes(Path(".")) if tree_bytes is None else tree_bytes
    prices = measured_prices(runs_root, profile.shared_runs or profile.name)
    out = {}
    todo = Remaining.of(profile, runs_root, prices)
    for n in counts:
        windows, items = plan(profile, runs_root, tree, prices, n, conc, todo)
        hours = sum(w.used_s for w in windows) / 3600
        out[n] = {"device_h": hours, "windows": len(windows), "runs": len(items)}
    base = out[counts[0]]["device_h"] or 1e-9
    print("  remaining protocol by the planner (" + prices.source + "): " + "; ".join(
        f"{n} process(es) {v['device_h'] * 60:.0f} min of training in {v['windows']} window(s), "
        f"{base / max(v['device_h'], 1e-9):.2f}x" for n, v in out.items()))
    return out


def render(windows: list[Window], items: list[Item], prices: Prices, tree_bytes: int,
           workers: int = 1, conc: Concurrency | None = None, data: tuple[int, str] = (DATA_BYTES, ""),
           chunk: int | None = None) -> str:
    total = sum(it.cost_s for it in items)
    side = sum(w.used_s for w in windows)
    how = "runs one at a time" if workers == 1 else (
        f"{workers} processes side by side: {side / 60:.0f} min of device time; speeds beside each other from "
        f"{(conc or Concurrency()).source}")
    part = chunk_bytes(tree_bytes, chunk)
    calls = window_calls(staging_calls(data[0], tree_bytes, chunk))
    lines = [f"remaining full protocol: {len(items)} runs, {total / 60:.0f} min of GPU training, each run priced alone "
             f"({len(windows)} window(s) of {WINDOW_S // 60} min; {how})",
             f"priced from {prices.source}" + (f": every epoch {prices.epoch_s:g} s" if prices.epoch_s else
                                              ": RotNet " + ", ".join(f"{b} blocks {v * 1e6:.2f} us" for b, v in
                                                                       sorted(prices.rotated_sample_s.items()))
                                              + " per rotated sample; batch-128 step " + ", ".join(
                f"{h} head {v * 1e3:.2f} ms" for h, v in sorted(prices.step128_s.items()))
                + " (host-bound, evaluation included; supervised and fine-tuned runs at the slower)"),
             f"each call carries the tracked tree ({tree_bytes / 2**20:.1f} MiB) + {part / 2**20:.1f} MiB of staged "
             f"data{' (a part size chosen)' if chunk else ''}; CIFAR-10 ({data[0] / 2**20:.0f} MiB, xz, {data[1]}) takes "
             f"{staging_calls(data[0], tree_bytes, chunk)} "
             "call(s)",
             f"a window: start {START_S} s, " + ", ".join(
                 f"a {c.what} call ({c.seconds} s" + (f", {c.train_s:.0f} s of training)" if c.what == "train" else ")")
                 for c in calls) + f", then give_back: {sum(c.train_s for c in calls):.0f} s of training"]
    groups: dict[str, float] = {}
    for it in items:
        groups[it.why] = groups.get(it.why, 0.0) + it.cost_s
    lines += [f"  {v / 60:6.1f} min  {k}" for k, v in groups.items()]
    for i, w in enumerate(windows, 1):
        lines.append(f"\nwindow {i}: {w.used_s / 60:.1f} min of training; stages CIFAR-10"
                     + (f" + {', '.join(sorted(w.stage))}" if w.stage else "")
                     + f" ({staging_calls(w.stage_bytes, tree_bytes, chunk)} staging calls); calls: "
                     + ", ".join(f"{c.what} {c.seconds} s" + (
                         f" (up to {min(c.measure_s, c.seconds - PROCESS_S - PACK_S):.0f} s of it: the card's "
                         "measurement)" if c.measure_s else "") for c in w.calls))
        for it, here, cont in w.items:
            resume = f", resumes after epoch {it.resume_epoch}" if it.resume_epoch else ""
            tail = " (continues next window)" if cont else ""
            lines.append(f"  {here:6.0f} s  {it.spec.run_id}  {it.spec.describe()}{resume}{tail}  [{it.why}]")
    return "\n".join(lines)


def _price_key(s: RunSpec) -> tuple:
    if s.kind == Kind.ROTNET:
        return ("rotnet", s.blocks, rotated_copies(s.rotations, s.profile.rotations_per_image))
    if s.kind == Kind.SUPERVISED:
        return ("supervised", bool(s.n_per_class))
    return ("classifier", s.head, s.finetune, s.tap, bool(s.n_per_class), s.pretext_epoch > 0)


def _cost_key(s: RunSpec) -> tuple:
    """What a run's cost per sample depends on besides the device: its kind (and tap, head, blocks), the width,
    and a head's path (exact, cached features, or cached views: as its spec holds it)."""
    return (*_price_key(s), s.profile.width, _head_path(s) if s.kind == Kind.CLASSIFIER else "")


def _head_path(s: RunSpec) -> str:
    pf = s.canonical()["profile"]  # a fine-tuned run, a k-NN or a linear probe holds neither: exact
    return "views" if pf.get("head_views") else "cached" if pf.get("cache_features") else "exact"


def device_class(name: str) -> str:
    """'cuda' for a GPU record or device ('NVIDIA H200', 'cuda:0'), else 'cpu'."""
    return "cuda" if "nvidia" in name.lower() or "cuda" in name.lower() else "cpu"


def to_train(specs: list[RunSpec], runs_root: Path, device: str = "cpu"
             ) -> list[tuple[RunSpec, float | None]]:
    """The unfinished runs among `specs` and their backbones, each priced from its own schedule: the samples it
    trains on times the median cost per sample of finished records of the same kind, width and path on the same
    kind of `device` ('cpu' or 'cuda'; None where no such record exists)."""
    todo: dict[str, RunSpec] = {}
    for s in specs:
        for x in (s.backbone, s):
            if x is not None and not RunFolder.of(runs_root, x.profile.name, x.run_id).finished:
                todo.setdefault(x.run_id, x)
    per_sample: dict[tuple, list[float]] = {}
    backbones: dict[str, RunSpec] = {}  # each RotNet's spec read once
    for rec_file in Path(runs_root).glob("*/*/result.json"):
        folder = RunFolder(rec_file.parent)
        try:
            spec, rec = folder.read_spec(backbones), folder.read_record()
            if device_class(str(rec.get("device", ""))) != device_class(device) or "not recorded" in rec["device"]:
                continue
            per_sample.setdefault(_cost_key(spec), []).append(rec["wall_s"] / spec_samples(spec))
        except (ValueError, OSError, KeyError, TypeError, ZeroDivisionError):
            continue
    out = []
    for s in todo.values():
        cost = per_sample.get(_cost_key(s))
        ckpt = RunFolder.of(runs_root, s.profile.name, s.run_id).ckpt
        epochs = s.profile.schedule(s.schedule)[0]
        left = 1 - min(max(saved_epoch(ckpt), 0), epochs) / epochs if ckpt.exists() else 1.0
        out.append((s, statistics.median(cost) * spec_samples(s) * left if cost else None))
    return out


def eta_line(priced: list[tuple[RunSpec, float | None]], workers: int = 1, conc: Concurrency | None = None) -> str:
    """The training time left, and with `workers` processes the wall time they take side by side (the same
    scheduler as the planner's; `conc`: each process's speed beside the others)."""
    known = [(s, w) for s, w in priced if w is not None]
    unknown = len(priced) - len(known)
    line = (f"{len(priced)} run(s) to train: about {sum(w for _, w in known) / 3600:.1f} h of training, from each "
            "run's schedule and the median time per sample of finished runs of its kind on this kind of device")
    if workers > 1 and known:
        (_, took), = schedule([Item(s, "", w) for s, w in known], workers, conc or Concurrency())
        line += f"; about {took / 3600:.1f} h of wall time with {workers} workers ({(conc or Concurrency()).source})"
    if not known:
        line = (f"{len(priced)} run(s) to train: no ETA (no finished run of their kinds on this kind of device to "
                "time them by)")
    return line + (f" ({unknown} of a kind never trained on this kind of device: not counted)"
                   if unknown and known else "")
