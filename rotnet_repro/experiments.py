"""The experiment registry: each paper artifact as data, expanded into cells of runs.

A cell is one number of the artifact (row, column, as in paper_reported.csv) and
the run that produces it. Runs shared between experiments (the 4-block,
4-rotation RotNet and its conv2 heads) have the same spec, hence the same hash,
and are trained once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from .config import Kind, Profile, RunSpec
from .errors import UserError

PER_CLASS_ALL = 5000  # CIFAR-10 has 5000 training images per class: K = 5000 is "all"


# Every row that code refers to, by a stable key. The value is the row's label: what tables show and what the
# results CSVs and paper_reported.csv hold. Modules name rows by key (ROW["rotnet_conv"]), so a label is typed once.
ROW = {
    "supervised": "Supervised NIN",
    "random_conv": "Random Init. + conv",
    "rotnet_nonlinear": "RotNet + non-linear",
    "rotnet_conv": "RotNet + conv",
    "rotnet_nonlinear_ft": "RotNet + non-linear (fine-tuned)",
    "rotnet_conv_ft": "RotNet + conv (fine-tuned)",
    "random": "Random Init.",
    "rotnet3": "RotNet 3 conv blocks",
    "rotnet4": "RotNet 4 conv blocks",
    "rotnet5": "RotNet 5 conv blocks",
    "rot4": "4 rotations (0/90/180/270)",
    "rot8": "8 rotations (multiples of 45)",
    "rot0_180": "2 rotations (0/180)",
    "rot90_270": "2 rotations (90/270)",
    "object_curve": "object classification (conv2 non-linear)",
    "rotation_curve": "rotation prediction",
    "semi_rotnet": "RotNet + conv",
    "semi_supervised": "Supervised",
    "exact_path": "exact path",
}


@dataclass(frozen=True)
class Cell:
    row: str
    column: str
    spec: RunSpec
    metric: str = "test_acc"
    pretext_epoch: int = 0  # a RotNet's rotation accuracy after this pretext epoch (a snapshot); 0 = its last

    def wants(self, m: dict) -> bool:
        """Whether a metric of the cell's run record is the cell's number."""
        if m["metric"] != self.metric:
            return False
        if self.spec.kind != Kind.ROTNET:
            return True
        return m["pretext_epoch"] == (self.pretext_epoch or self.spec.profile.pretext_epochs)


@dataclass(frozen=True)
class Experiment:
    """One artifact and everything the report, plots and notebooks say of it (its metadata has this one home)."""

    id: str
    artifact: str  # the artifact key of paper_reported.csv
    title: str
    build: Callable[[Profile, int, int], list[Cell]]  # (profile, seed, backbone seed)
    paper: bool = True  # an artifact of the paper (tables, figures); False: a check of ours
    short: str = ""  # its tag in README's table of cells ("T1")
    claims: tuple[int, ...] = ()  # the paper's claims (protocol.md's numbers) its cells check
    notebook: str = ""  # its notebook under notebooks/ (name without .ipynb)
    about: str = ""  # the notebook's opening line: what the artifact shows and what it checks
    gap: bool = False  # its test-accuracy cells enter the ours − paper summary (Fig. 5(a) gives a plot only)


def shared(p: Profile) -> Profile:
    """The profile of the runs that do not depend on the head path (see Profile.shared_runs)."""
    return replace(p, name=p.shared_runs) if p.shared_runs else p


def rotnet(p: Profile, seed: int, blocks: int = 4, rotations: str = "4") -> RunSpec:
    return RunSpec(Kind.ROTNET, shared(p), seed, blocks=blocks, rotations=rotations)


def probe(p: Profile, seed: int, backbone: RunSpec | None, tap: str, head: str, finetune: bool = False,
          k: int = 0, pretext_epoch: int = 0) -> RunSpec:
    """A classifier on a tap of a RotNet (or of a random init: backbone None, blocks 1-2)."""
    blocks = backbone.blocks if backbone else 2
    rotations = backbone.rotations if backbone else ""
    return RunSpec(Kind.CLASSIFIER, shared(p) if finetune else p, seed, blocks=blocks, rotations=rotations, tap=tap, head=head,
                   backbone=backbone, pretext_epoch=pretext_epoch, finetune=finetune,
                   n_per_class=0 if k == PER_CLASS_ALL else k)


def supervised(p: Profile, seed: int, k: int = 0) -> RunSpec:
    return RunSpec(Kind.SUPERVISED, shared(p), seed, blocks=3, rotations="", n_per_class=0 if k == PER_CLASS_ALL else k)


def table1(p: Profile, seed: int, bseed: int) -> list[Cell]:
    cells = []
    for blocks in (3, 4, 5):
        r, row = rotnet(p, bseed, blocks), ROW[f"rotnet{blocks}"]
        cells.append(Cell(row, "rotation", r, "rotation_acc"))
        cells += [Cell(row, f"ConvB{i}", probe(p, seed, r, f"conv{i}", "nonlinear")) for i in range(1, blocks + 1)]
    # not in the paper: the random-init reference that says what pretraining adds
    cells += [Cell(ROW["random"], f"ConvB{i}", probe(p, seed, None, f"conv{i}", "nonlinear")) for i in (1, 2)]
    return cells


ROTATION_ROWS = {"4": ROW["rot4"], "8": ROW["rot8"], "2_0_180": ROW["rot0_180"], "2_90_270": ROW["rot90_270"]}


def table2(p: Profile, seed: int, bseed: int) -> list[Cell]:
    cells = []
    for rotations, row in ROTATION_ROWS.items():
        r = rotnet(p, bseed, 4, rotations)
        cells += [Cell(row, "ConvB2", probe(p, seed, r, "conv2", "nonlinear")), Cell(row, "rotation", r, "rotation_acc")]
    return cells


def table3(p: Profile, seed: int, bseed: int) -> list[Cell]:
    r = rotnet(p, bseed)
    return [
        Cell(ROW["supervised"], "accuracy", supervised(p, seed)),
        Cell(ROW["random_conv"], "accuracy", probe(p, seed, None, "conv2", "conv")),
        Cell(ROW["rotnet_nonlinear"], "accuracy", probe(p, seed, r, "conv2", "nonlinear")),
        Cell(ROW["rotnet_conv"], "accuracy", probe(p, seed, r, "conv2", "conv")),
        Cell(ROW["rotnet_nonlinear_ft"], "accuracy", probe(p, seed, r, "conv2", "nonlinear", finetune=True)),
        Cell(ROW["rotnet_conv_ft"], "accuracy", probe(p, seed, r, "conv2", "conv", finetune=True)),
    ]


def snapshot_epochs(p: Profile) -> list[int]:
    epochs = list(range(p.snapshot_every, p.pretext_epochs + 1, p.snapshot_every))
    return epochs if epochs and epochs[-1] == p.pretext_epochs else epochs + [p.pretext_epochs]


def fig5a(p: Profile, seed: int, bseed: int) -> list[Cell]:
    r = rotnet(p, bseed)
    cells = [Cell(ROW["supervised"], "reference", supervised(p, seed))]
    for e in snapshot_epochs(p):
        last = e == p.pretext_epochs  # the last snapshot is the RotNet itself: shared runs
        c = probe(p, seed, r, "conv2", "nonlinear", pretext_epoch=0 if last else e)
        # a snapshot's rotation accuracy is the RotNet's own (its record holds one per snapshot)
        cells += [Cell(ROW["object_curve"], str(e), c),
                  Cell(ROW["rotation_curve"], str(e), r, "rotation_acc", pretext_epoch=0 if last else e)]
    return cells


def fig5b(p: Profile, seed: int, bseed: int) -> list[Cell]:
    r = rotnet(p, bseed)
    cells = []
    for k in p.semi_k:
        cells += [Cell(ROW["semi_rotnet"], str(k), probe(p, seed, r, "conv2", "conv", k=k)),
                  Cell(ROW["semi_supervised"], str(k), supervised(p, seed, k))]
    return cells


# The head-path check: a profile's head path (cached views or features) against the exact path (a fresh
# crop+flip and a backbone pass at every step) on one cell made cheap enough for a CPU: the conv2 non-linear
# head of the shared RotNet on the first K images per class (K = 400 in the paper and cpu profiles: the largest
# Fig. 5(b) K below 1000), its epochs each one pass over those 10 K images.
def head_path(p: Profile, seed: int, bseed: int) -> list[Cell]:
    r = rotnet(p, bseed)
    k = max(k for k in p.semi_k if k < 1000)
    small = replace(p, samples_per_epoch=10 * k)
    exact = replace(small, head_views=0, cache_features=False)
    ours = (ROW["exact_path"] if small == exact else f"{p.head_views} cached views" if p.head_views
            else "cached un-augmented features")
    column = f"conv2, K={k}, {small.nonlinear_epochs} epochs of {small.samples_per_epoch}"
    cells = [] if small == exact else [Cell(ours, column, probe(small, seed, r, "conv2", "nonlinear", k=k))]
    return cells + [Cell(ROW["exact_path"], column, probe(exact, seed, r, "conv2", "nonlinear", k=k))]


# Beyond the paper (probes.py): k-NN and linear-probe accuracy on every tap of a frozen backbone, the readings today's
# self-supervised comparisons use, beside the paper's non-linear heads. A k-NN has no seed of its own: one run per
# backbone (seed 0; a random init's seed is its backbone's).
PROBE_METHODS = {  # row suffix -> (head, record metric)
    "k-NN k=20 T=0.07": ("knn", "knn20_acc"),
    "k-NN k=200 T=0.1": ("knn", "knn200_acc"),
    "k-NN k=20 T=0.07, pooled": ("knn", "knn20_acc_pooled"),
    "k-NN k=200 T=0.1, pooled": ("knn", "knn200_acc_pooled"),
    "linear probe, pooled": ("linear", "test_acc"),
}


def _probe_cells(p: Profile, seed: int, backbone: RunSpec | None, taps: list[str], row: str, column,
                 pretext_epoch: int = 0) -> list[Cell]:
    """A backbone's probe cells: for each tap, every method (the k-NN and the linear probe of a tap adjacent, so
    that one extraction of its features serves both)."""
    cells = []
    for tap in taps:
        for method, (head, metric) in PROBE_METHODS.items():
            s = seed if head == "linear" or backbone is None else 0
            cells.append(Cell(f"{row}: {method}", column(tap), probe(p, s, backbone, tap, head,
                                                                     pretext_epoch=pretext_epoch), metric))
    return cells


def probes_table(p: Profile, seed: int, bseed: int) -> list[Cell]:
    """Every block of Table 1's RotNets, conv2 of Table 2's (other rotation sets), and the random init's blocks."""
    cells = []
    for blocks in (4, 3, 5):  # the published 4-block RotNet first
        r = rotnet(p, bseed, blocks)
        cells += _probe_cells(p, seed, r, [f"conv{i}" for i in range(1, blocks + 1)], ROW[f"rotnet{blocks}"],
                              lambda tap: f"ConvB{tap[4:]}")
    for rotations, row in ROTATION_ROWS.items():
        if rotations != "4":  # the 4-rotation one is Table 1's 4-block RotNet
            cells += _probe_cells(p, seed, rotnet(p, bseed, 4, rotations), ["conv2"], row, lambda tap: "ConvB2")
    return cells + _probe_cells(p, seed, None, ["conv1", "conv2"], ROW["random"], lambda tap: f"ConvB{tap[4:]}")


def probes_curve(p: Profile, seed: int, bseed: int) -> list[Cell]:
    """The 4-block RotNet's snapshots (Fig. 5(a)'s), conv2: k-NN and linear probe over pretext training."""
    r, cells = rotnet(p, bseed), []
    for e in snapshot_epochs(p):
        cells += _probe_cells(p, seed, r, ["conv2"], "conv2", lambda _, e=e: str(e),
                              pretext_epoch=0 if e == p.pretext_epochs else e)
    return cells


EXPERIMENTS: dict[str, Experiment] = {e.id: e for e in [
    Experiment("table1_block_depth", "table1", "Table 1: non-linear classifiers on each block of 3/4/5-block RotNets", table1,
               short="T1", claims=(1, 2), notebook="01_table1_block_depth", gap=True, about=(
                   "Table 1: non-linear classifiers on the features of each block (conv1..convN) of RotNets with 3, 4 "
                   "and 5 blocks. Claims checked: conv2 is the best block in every RotNet; deeper RotNets improve early "
                   "blocks.")),
    Experiment("table2_rotations", "table2", "Table 2: number and set of rotations (conv2, non-linear)", table2,
               short="T2", claims=(3,), notebook="02_table2_rotations", gap=True, about=(
                   "Table 2: the 4-block RotNet trained with 4, 8, 2 (0/180) and 2 (90/270) rotations; non-linear "
                   "classifier on conv2. Claim checked: 4 > 8 > 2 rotations and (0,180) > (90,270).")),
    Experiment("table3_comparison", "table3", "Table 3: RotNet features vs supervised NIN", table3,
               short="T3", claims=(4,), notebook="03_table3_comparison", gap=True, about=(
                   "Table 3: RotNet features (non-linear and conv classifiers, frozen and fine-tuned) against a "
                   "supervised NIN and a random-init baseline. Claim checked: RotNet + conv within about 1.6 points of "
                   "supervised.")),
    Experiment("fig5a_epoch_curve", "fig5a", "Fig. 5(a): object vs rotation accuracy over pretext epochs", fig5a,
               short="5a", claims=(5,), notebook="04_fig5a_epoch_curve", about=(
                   "Figure 5(a): object classification accuracy (non-linear classifier on conv2) of RotNet snapshots "
                   "against their rotation-prediction accuracy over pretext training, with the supervised NIN as "
                   "reference.")),
    Experiment("fig5b_semi_supervised", "fig5b", "Fig. 5(b): semi-supervised, K labels per class", fig5b,
               short="5b", claims=(6,), notebook="05_fig5b_semi_supervised", gap=True, about=(
                   "Figure 5(b): RotNet + conv vs a supervised NIN trained on the first K labelled images per class, "
                   "K = 20, 100, 400, 1000, 5000. Claim checked: RotNet wins below 1000 labels per class.")),
    Experiment("head_path", "head_path", "Head path: the profile's cached heads against the exact path, one cell",
               head_path, paper=False),
    Experiment("knn_probe", "knn_probe", "k-NN and linear probe on each block of Table 1's RotNets and conv2 of Table "
               "2's (beyond the paper)",
               probes_table, paper=False, notebook="06_knn_linear_probe", about=(
                   "Beyond the paper: weighted k-NN (k = 20, T = 0.07; k = 200, T = 0.1) and a linear probe on each "
                   "block's frozen, un-augmented features, beside the paper's non-linear heads, and on conv2 over "
                   "pretext training (REPORT.md, 'Beyond the paper', states every choice).")),
    Experiment("knn_probe_curve", "knn_probe_curve",
               "k-NN and linear probe on conv2 over pretext epochs (beyond the paper)", probes_curve, paper=False),
]}
# `run all` order: the shared RotNet and everything built on it first, ablations last,
# so that an interrupted cpu run has already produced the most-used numbers.
ALL_ORDER = ["table3_comparison", "fig5b_semi_supervised", "fig5a_epoch_curve", "table1_block_depth",
             "table2_rotations", "head_path", "knn_probe", "knn_probe_curve"]


def resolve(names: list[str]) -> list[Experiment]:
    out = []
    for name in names:
        if name == "all":
            out += [EXPERIMENTS[i] for i in ALL_ORDER]
        elif name in EXPERIMENTS:
            out.append(EXPERIMENTS[name])
        else:
            raise UserError(f"unknown experiment {name!r}: choose from {', '.join(EXPERIMENTS)} or 'all' "
                            f"(python -m rotnet_repro list)")
    return out
