"""The window planner: what is left of the full protocol, in the order the report needs it, cut into GPU windows.

    python -m rotnet_repro plan              # or gpu/paper.sh plan

A window is 15 minutes of device time, start-up and staging included, in calls of at most 10 minutes that each
carry 64 MiB, the tracked tree included. Each run is priced from what this project measured on a GPU:
  - a RotNet per rotated sample, from the finished RotNet records of runs/<profile>/ (by depth; else bench);
  - a batch-128 run (frozen heads, supervised NINs, fine-tuned and semi-supervised runs) per step, from the
    finished exact head records: such steps are bound by the host (3.7 ms on the H100 against about 0.7 ms of
    GPU work), so bench's per-image model time underprices them;
plus one evaluation pass per epoch, included in those records. Runs go one at a time (concurrency 1).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .config import ROTATION_SETS, Profile, RunSpec, apply_overrides
from .engine import checkpoint_epoch
from .experiments import EXPERIMENTS
from .rundir import RunFolder
from .runner import _describe
from .weights import Manifest

WINDOW_S = 900  # device time of a window, all calls together
START_S = 80  # start-up of the machine (measured: 83 s on the H200)
STAGE_CALL_S = 15  # one staging call: transfer and append (measured: about 12 s on the H100)
PACK_S = 60  # what `train` leaves at the end of its call to pack
CALL_BYTES = 64 * 2**20
MARGIN_BYTES = 2 * 2**20
# CIFAR-10's python batches as `gpu/paper.sh prepare` compresses them (gzip -1; measured here: 166,044,229 bytes)
DATA_BYTES = 166_044_229
CALL_S = 600  # the longest call

# What the report needs most first (the GPU-window issue): (why, experiment, rows regex, overrides, seeds)
PRIORITY: list[tuple[str, str, str | None, tuple[str, ...], tuple[int, ...]]] = [
    ("Table 1: 3- and 5-block rows (claims 1, 2)", "table1_block_depth", r"^RotNet [35] conv", (), (0,)),
    ("Table 2: the rotation RotNets and their heads (claim 3)", "table2_rotations", None, (), (0,)),
    ("Table 3: supervised NIN, fine-tuned heads (claim 4)", "table3_comparison", None, (), (0,)),
    ("Fig. 5(b) (claim 6)", "fig5b_semi_supervised", None, (), (0,)),
    ("Fig. 5(a): exact heads on the snapshots", "fig5a_epoch_curve", None, (), (0,)),
    ("Table 1: the rest of the 4-block row", "table1_block_depth", r"^RotNet 4 conv", (), (0,)),
]
VARIANTS = {  # the gap's suspects: one RotNet each, with Table 3's two exact heads on it (README, REPORT)
    "pretext200": ("pretext_epochs=200",),  # the official code's schedule
    "fp32": ("precision=fp32",),  # the paper trained in fp32; we train under bf16 autocast
    "bn_uniform": ("bn_init=uniform",),  # PyTorch 0.2 drew BatchNorm weights from U(0,1)
}
PRIORITY += [(f"gap variant {v}: RotNet + Table 3's exact heads", "table3_comparison",
              r"^RotNet \+ (non-linear|conv)$", o, (0,)) for v, o in VARIANTS.items()]
PRIORITY += [("seeds 1 and 2", e, None, (), (1, 2)) for e in
             ("table3_comparison", "fig5b_semi_supervised", "fig5a_epoch_curve", "table1_block_depth",
              "table2_rotations")]


@dataclass
class Prices:
    rotated_sample_s: dict[int, float]  # by RotNet depth
    step128_s: dict[str, float]  # a batch-128 step by head ("nonlinear", "conv"), evaluation included
    source: str

    def step(self, head: str) -> float:
        return self.step128_s.get(head) or max(self.step128_s.values())

    def of(self, s: RunSpec, done_epochs: int = 0) -> float:
        p = s.profile
        if s.kind == "rotnet":
            per = self.rotated_sample_s.get(s.blocks) or max(self.rotated_sample_s.values())
            samples = (p.n_pretext or 5000) * 10 * len(ROTATION_SETS[s.rotations])
            return (p.pretext_epochs - done_epochs) * samples * per
        schedule = "supervised" if s.kind == "supervised" else "finetune" if s.finetune else s.head
        epochs = getattr(p, f"{schedule}_epochs") - done_epochs
        return epochs * math.ceil(p.samples_per_epoch / p.batch_size) * self.step(s.head if s.kind == "classifier"
                                                                                    and not s.finetune else "")


def measured_prices(runs_root: Path, profile: str = "paper") -> Prices:
    """Per-sample and per-step costs from the profile's finished records (the GPU that trained them)."""
    rot: dict[int, list[float]] = {}
    steps: dict[str, list[float]] = {}
    for rec_file in sorted((Path(runs_root) / profile).glob("*/result.json")):
        folder = RunFolder(rec_file.parent)
        try:
            rec, spec = folder.read_record(), json.loads(folder.spec_file.read_text())
        except (ValueError, OSError):
            continue
        if "cuda" not in str(rec.get("device", "")).lower() and "nvidia" not in str(rec.get("device", "")).lower():
            continue
        pf, epochs = spec["profile"], len(rec.get("history", []))
        if not epochs:
            continue
        if spec["kind"] == "rotnet":
            samples = (pf["n_pretext"] or 5000) * 10 * len(ROTATION_SETS[spec["rotations"]]) * epochs
            rot.setdefault(spec["blocks"], []).append(rec["wall_s"] / samples)
        elif spec["kind"] == "classifier" and not spec["finetune"] and not pf.get("head_views") \
                and not pf.get("cache_features") and not rec.get("shared_backbone_pass"):
            steps.setdefault(spec["head"], []).append(
                rec["wall_s"] / (epochs * math.ceil(pf["samples_per_epoch"] / pf["batch_size"])))
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


@dataclass
class Window:
    items: list[tuple[Item, float, bool]] = field(default_factory=list)  # (item, seconds here, continues)
    stage: set[str] = field(default_factory=set)
    left_s: float = 0.0


def _remaining(base: Profile, runs_root: Path, manifest: Manifest) -> list[Item]:
    """The unfinished runs of PRIORITY's steps, in order, each once (a RotNet whose heads need it counts as
    unfinished when its record is here but its weights are not: it trains again from its checkpoint)."""
    specs: dict[str, tuple[RunSpec, str]] = {}
    weights_needed: set[str] = set()
    for why, exp, rows, overrides, seeds in PRIORITY:
        profile = apply_overrides(base, list(overrides)) if overrides else base
        for seed in seeds:
            for c in EXPERIMENTS[exp].build(profile, seed, seed):
                if rows is not None and not re.search(rows, c.row):
                    continue
                for s in (c.spec.backbone, c.spec):
                    if s is not None:
                        specs.setdefault(s.run_id, (s, why))
                if c.spec.backbone is not None:
                    weights_needed.add(c.spec.backbone.run_id)
    out: list[Item] = []
    for run_id, (s, why) in specs.items():
        f = RunFolder.of(runs_root, s.profile.name, run_id)
        has_weights = f.model.exists() or manifest.entry(f.model) is not None
        if f.finished and (run_id not in weights_needed or has_weights):
            continue
        e = manifest.entry(f.ckpt)
        resume = max(checkpoint_epoch(f.ckpt), 0) if f.ckpt.exists() else (e or {}).get("epoch", 0)
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


def plan(base: Profile, runs_root: Path, tree_bytes: int, prices: Prices) -> tuple[list[Window], list[Item]]:
    manifest = Manifest(runs_root)
    items = _remaining(base, runs_root, manifest)
    for it in items:
        it.cost_s = prices.of(it.spec, it.resume_epoch)
    chunk = CALL_BYTES - tree_bytes - MARGIN_BYTES
    windows: list[Window] = []
    trained_here: set[str] = set()

    def new_window(extra_bytes: int) -> Window:
        calls = math.ceil((DATA_BYTES + extra_bytes) / chunk)
        w = Window(left_s=WINDOW_S - START_S - calls * STAGE_CALL_S - PACK_S)
        windows.append(w)
        return w

    def staged_bytes(names: set[str]) -> int:
        return sum(manifest.entries.get(n, {}).get("bytes", 0) for n in names)

    w = new_window(0)
    for it in items:
        cost = it.cost_s
        while cost > 0:
            if w.left_s < 60:
                w = new_window(0)
                trained_here = set()
            needs = {n for n in it.needs if n.split("/")[1] not in trained_here}
            w.stage |= needs
            here = min(cost, w.left_s)
            cost -= here
            w.items.append((it, here, cost > 0))
            w.left_s -= here
        trained_here.add(it.spec.run_id)
    for win in windows:  # staging calls eat into the window: recount with what each one stages
        win.left_s -= math.ceil(staged_bytes(win.stage) / chunk) * STAGE_CALL_S
    return windows, items


def render(windows: list[Window], items: list[Item], prices: Prices, tree_bytes: int,
           manifest_bytes: dict[str, int] | None = None) -> str:
    manifest_bytes = manifest_bytes or {}
    chunk = CALL_BYTES - tree_bytes - MARGIN_BYTES
    total = sum(it.cost_s for it in items)
    lines = [f"remaining full protocol: {len(items)} runs, {total / 60:.0f} min of GPU training "
             f"({len(windows)} window(s) of {WINDOW_S // 60} min; runs one at a time)",
             f"priced from {prices.source}: RotNet "
             + ", ".join(f"{b} blocks {v * 1e6:.2f} us" for b, v in sorted(prices.rotated_sample_s.items()))
             + " per rotated sample; batch-128 step " + ", ".join(f"{h} head {v * 1e3:.2f} ms" for h, v in
                                                             sorted(prices.step128_s.items()))
             + " (host-bound, evaluation included; supervised and fine-tuned runs at the slower)",
             f"each call carries the tracked tree ({tree_bytes / 2**20:.1f} MiB) + {chunk / 2**20:.1f} MiB of staged "
             f"data; CIFAR-10 ({DATA_BYTES / 2**20:.0f} MiB, gzip -1) takes {math.ceil(DATA_BYTES / chunk)} calls"]
    groups: dict[str, float] = {}
    for it in items:
        groups[it.why] = groups.get(it.why, 0.0) + it.cost_s
    lines += [f"  {v / 60:6.1f} min  {k}" for k, v in groups.items()]
    for i, w in enumerate(windows, 1):
        used = sum(h for _, h, _ in w.items)
        stage_bytes = DATA_BYTES + sum(manifest_bytes.get(n, 0) for n in w.stage)
        lines.append(f"\nwindow {i}: {used / 60:.1f} min of training; stages CIFAR-10"
                     + (f" + {', '.join(sorted(w.stage))}" if w.stage else "")
                     + f" ({math.ceil(stage_bytes / chunk)} staging calls)")
        for it, here, cont in w.items:
            resume = f", resumes after epoch {it.resume_epoch}" if it.resume_epoch else ""
            tail = " (continues next window)" if cont else ""
            lines.append(f"  {here:6.0f} s  {it.spec.run_id}  {_describe(it.spec)}{resume}{tail}  [{it.why}]")
    return "\n".join(lines)


def _price_key(s: RunSpec) -> tuple:
    if s.kind == "rotnet":
        return ("rotnet", s.blocks, len(ROTATION_SETS[s.rotations]))
    if s.kind == "supervised":
        return ("supervised", bool(s.n_per_class))
    return ("classifier", s.head, s.finetune, s.tap, bool(s.n_per_class), s.pretext_epoch > 0)


def to_train(specs: list[RunSpec], runs_root: Path) -> list[tuple[RunSpec, float | None]]:
    """The unfinished runs among `specs` and their backbones, each priced at the median training time of the
    finished records of its kind in the same profile (None where there is none to go by)."""
    todo: dict[str, RunSpec] = {}
    for s in specs:
        for x in (s.backbone, s):
            if x is not None and not RunFolder.of(runs_root, x.profile.name, x.run_id).finished:
                todo.setdefault(x.run_id, x)
    walls: dict[tuple, list[float]] = {}
    for name in {s.profile.name for s in todo.values()}:
        for rec_file in (Path(runs_root) / name).glob("*/result.json"):
            try:
                spec = json.loads(rec_file.with_name("spec.json").read_text())
                wall = json.loads(rec_file.read_text())["wall_s"]
            except (ValueError, OSError, KeyError):
                continue
            key = ("rotnet", spec["blocks"], len(ROTATION_SETS.get(spec["rotations"], ()))) if spec["kind"] == "rotnet" \
                else ("supervised", bool(spec["n_per_class"])) if spec["kind"] == "supervised" \
                else ("classifier", spec["head"], spec["finetune"], spec["tap"], bool(spec["n_per_class"]),
                      spec["pretext_epoch"] > 0)
            walls.setdefault((name, *key), []).append(wall)
    out = []
    for s in todo.values():
        w = walls.get((s.profile.name, *_price_key(s)))
        out.append((s, statistics.median(w) if w else None))
    return out


def eta_line(priced: list[tuple[RunSpec, float | None]]) -> str:
    known = [w for _, w in priced if w is not None]
    unknown = len(priced) - len(known)
    return (f"{len(priced)} run(s) to train: about {sum(known) / 3600:.1f} h of training by the median time of "
            f"finished runs of each kind in runs/" + (f" ({unknown} of a kind never trained here: not counted)"
                                                      if unknown else ""))
