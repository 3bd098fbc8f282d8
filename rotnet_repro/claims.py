"""The paper's six claims (protocol.md) as data, each checked on the results by one stated rule.

A claim needs some cells (artifact, row, column, metric) and makes one or more *checks*: a margin computed from
those cells' values that the claim says is positive (e.g. conv2 − conv1 > 0; 2.0 − (supervised − RotNet + conv) > 0
for "within about 1.6 points").

Replicates. The unit of replication is the RotNet: head seeds trained on one RotNet share its pretraining, so
they are averaged within it first (each cell's value for RotNet seed b is the mean over the head seeds on it), and
a check's margin is computed once per RotNet seed. A cell without a RotNet (the supervised NIN, a random-init
head) pairs with the RotNet of its own seed number (supervised seed b with RotNet seed b): independent seeds, each
used once. A check whose cells have no RotNet at all is replicated over its seeds.

The rule, for a check with margins m_1..m_n over its n RotNet seeds:
- **holds** if every m_i > 0 and the 95% t-interval of their mean (scipy.stats.t) lies above 0;
- **does not hold** if every m_i < 0 and that interval lies below 0;
- **inconclusive** otherwise: the replicates disagree, the interval contains 0, or n = 1 (no interval);
- **not measurable** if no replicate has every cell.
A correlation (claim 5) is averaged on Fisher's z scale and its interval mapped back, so it stays within [−1, 1].
A claim holds if all its checks hold, does not hold if any does not hold, is not measurable if no check is
measurable, and is inconclusive otherwise; where only some checks are measurable (some RotNets not trained at that
scale) the verdict is partial: what the measured checks show ("holds" only if all of them hold), and what is
missing ("inconclusive for RotNet-4; RotNet-3, RotNet-5 not measurable"), never "holds" for the whole claim.
Every check passes on the paper's own numbers wherever the paper reports its cells (tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .experiments import ROW

Cell = tuple[str, str, str, str]  # artifact, row, column, metric
Values = dict[Cell, float]

HOLDS, FAILS, INCONCLUSIVE, MISSING = "holds", "does not hold", "inconclusive", "not measurable (runs missing)"
MIXED = "not measurable (superseded and current runs mixed)"
RULE = ("the unit of replication is the RotNet: head seeds on one RotNet are averaged first, and a baseline without "
        "a RotNet (supervised NIN, random init) pairs with the RotNet of its own seed, so no seed is used twice. A "
        "check holds when its margin is positive for every RotNet seed and the 95% t-interval (scipy.stats) of the "
        "mean margin lies above 0; it does not hold when the margin is negative for every seed and the interval lies "
        "below 0; otherwise (seeds disagree, the interval contains 0, or one seed only) it is inconclusive. "
        "Correlations get a Fisher-z interval. A claim holds when all its checks hold and does not hold when any "
        "check does not; where only some of its checks can be measured (RotNets not trained at that scale) its verdict "
        "is partial: what the measured checks show, and what is missing.")
NOISE: Cell = ("noise", "", "", "")  # the check's measured noise, passed to its margin with the cell values


def t975(df: int) -> float:
    """The two-sided 95% Student t quantile."""
    from scipy import stats  # imported here: the training path (a GPU machine) never needs scipy

    return float(stats.t.ppf(0.975, df))


@dataclass(frozen=True)
class Check:
    label: str  # what the margin is, e.g. "conv2 − conv1"
    cells: tuple[Cell, ...]
    margin: Callable[[Values], float]
    correlation: bool = False  # the margin is a Pearson r: averaged and bounded on Fisher's z scale
    noise_cells: tuple[Cell, ...] = ()  # cells whose head-seed spread is the margin's noise (values[NOISE])


@dataclass(frozen=True)
class Claim:
    number: int
    text: str
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class CheckResult:
    check: Check
    verdict: str
    margins: tuple[float, ...]
    mean: float = math.nan
    low: float = math.nan
    high: float = math.nan

    @property
    def n(self) -> int:
        return len(self.margins)

    def describe(self) -> str:
        if self.verdict == MIXED:
            return f"{self.check.label}: heads of superseded and of current runs (retraining in progress)"
        if not self.n:
            return f"{self.check.label}: runs missing"
        if math.isnan(self.mean) and self.check.noise_cells:
            return f"{self.check.label}: no head-seed noise measured (one head seed per RotNet), n={self.n}"
        if math.isnan(self.mean):
            return f"{self.check.label}: undefined (constant values), n={self.n}"
        interval = f" [{self.low:+.2f}, {self.high:+.2f}]" if self.n > 1 else " (no interval)"
        return f"{self.check.label}: {self.mean:+.2f}{interval}, n={self.n}"


def judge(check: Check, margins: list[float]) -> CheckResult:
    """The rule above, for one check's margins over its replicates (RotNet seeds)."""
    m = tuple(float(x) for x in margins)
    if not m:
        return CheckResult(check, MISSING, m)
    if any(math.isnan(x) for x in m):  # e.g. a correlation of constant values, or no noise measured
        return CheckResult(check, INCONCLUSIVE, m)
    z = np.arctanh(np.clip(m, -0.999999, 0.999999)) if check.correlation else np.asarray(m)
    mean = float(np.mean(z))
    back = (lambda x: float(np.tanh(x))) if check.correlation else float
    if len(m) == 1:
        return CheckResult(check, INCONCLUSIVE, m, back(mean))
    half = t975(len(m) - 1) * float(np.std(z, ddof=1)) / math.sqrt(len(m))
    low, high = back(mean - half), back(mean + half)
    if all(x > 0 for x in m) and low > 0:
        verdict = HOLDS
    elif all(x < 0 for x in m) and high < 0:
        verdict = FAILS
    else:
        verdict = INCONCLUSIVE
    return CheckResult(check, verdict, m, back(mean), low, high)


def combine(results: list[CheckResult]) -> str:
    """The claim's verdict from its checks'. Where only some checks can be measured (a claim over several RotNets,
    some not trained at this scale), a partial verdict: what the measured ones show and what is missing, never
    "holds" for the whole claim."""
    verdicts = {r.verdict for r in results}
    if FAILS in verdicts:
        return FAILS
    if MIXED in verdicts:
        return MIXED
    missing = [r for r in results if r.verdict == MISSING]
    if missing and len(missing) < len(results):
        measured = [r for r in results if r.verdict != MISSING]
        part = HOLDS if all(r.verdict == HOLDS for r in measured) else INCONCLUSIVE
        have, lack = (sorted({r.check.label.split(":")[0] for r in rs}) for rs in (measured, missing))
        if all(x.startswith("RotNet-") for x in have + lack) and not set(have) & set(lack):
            return f"{part} for {', '.join(have)}; {', '.join(lack)} not measurable (runs missing)"
        return f"{part} on {len(measured)} of {len(results)} checks; the others not measurable (runs missing)"
    if MISSING in verdicts:
        return MISSING
    return HOLDS if verdicts == {HOLDS} else INCONCLUSIVE


# ---- replicates: (RotNet seed, head seed) -> value, per cell ----

ANY = -1  # a cell that does not vary with this seed


def _key(r) -> tuple[int, int]:
    bseed = r.backbone_seed if "backbone_seed" in r._fields and not pd.isna(r.backbone_seed) else ANY
    if r.metric == "rotation_acc":  # a RotNet's own number: every head seed on it
        return (int(r.seed) if r.kind == "rotnet" else int(bseed)), ANY
    if r.kind == "classifier" and isinstance(r.rotations, str) and r.rotations:  # a head on a RotNet
        return int(bseed), int(r.seed)
    return ANY, int(r.seed)  # supervised, or a head on a random-init NIN: every RotNet seed


def _per_cell(df: pd.DataFrame, cells: tuple[Cell, ...]) -> dict[Cell, dict[tuple[int, int], float]]:
    d = df[df.selection == "last"]
    per_cell: dict[Cell, dict[tuple[int, int], float]] = {}
    for c in cells:
        rows = d[(d.artifact == c[0]) & (d.row == c[1]) & (d.column.astype(str) == c[2]) & (d.metric == c[3])]
        per_cell[c] = {_key(r): float(r.value) for r in rows.itertuples()}
    return per_cell


def replicates(df: pd.DataFrame, cells: tuple[Cell, ...]) -> list[Values]:
    """One {cell: value} per RotNet seed for which every cell has a last-epoch value: a head cell's value is the
    mean over the head seeds on that RotNet, a cell without a RotNet takes its own seed equal to the RotNet's.
    Cells with no RotNet at all are replicated over their seeds."""
    per_cell = _per_cell(df, cells)
    bseeds = sorted({k[0] for v in per_cell.values() for k in v if k[0] != ANY})
    units = bseeds or sorted({k[1] for v in per_cell.values() for k in v if k[1] != ANY}) or [ANY]
    out = []
    for u in units:
        vals = {}
        for c, v in per_cell.items():
            own = [x for k, x in v.items() if k[0] == u] if bseeds else []
            x = float(np.mean(own)) if own else next((v[k] for k in ((ANY, u), (ANY, ANY), (u, ANY)) if k in v), None)
            if x is None:
                break
            vals[c] = x
        else:
            out.append(vals)
    return out


def head_seed_noise(df: pd.DataFrame, cells: tuple[Cell, ...]) -> float:
    """The pooled standard deviation of the cells' values across head seeds on one RotNet (over every RotNet and
    cell with at least two head seeds); NaN where no RotNet carries two head seeds."""
    ss, dof = 0.0, 0
    for v in _per_cell(df, cells).values():
        for b in {k[0] for k in v if k[0] != ANY}:
            xs = [x for k, x in v.items() if k[0] == b and k[1] != ANY]
            if len(xs) > 1:
                ss += float(np.var(xs, ddof=1)) * (len(xs) - 1)
                dof += len(xs) - 1
    return math.sqrt(ss / dof) if dof else math.nan


def _head_rows(df: pd.DataFrame, cells: tuple[Cell, ...]) -> pd.DataFrame:
    """The last-epoch test-accuracy rows (trained heads and baselines) of the cells."""
    d = df[(df.selection == "last") & (df.metric == "test_acc")]
    keys = {(c[0], c[1], c[2]) for c in cells if c[3] == "test_acc"}
    return d[[k in keys for k in zip(d.artifact, d.row, d.column.astype(str), strict=True)]]


def _mixed(df: pd.DataFrame, cells: tuple[Cell, ...], superseded: frozenset[str]) -> bool:
    """Whether the check compares trained heads of superseded runs with those of current ones: unlike
    configurations, as while a profile is being retrained."""
    return _head_rows(df, cells)["run_id"].isin(superseded).nunique() > 1


def uses(df: pd.DataFrame, claim: Claim, runs: frozenset[str]) -> bool:
    """Whether any of the claim's head rows comes from one of `runs`."""
    return bool(_head_rows(df, tuple(c for ch in claim.checks for c in ch.cells))["run_id"].isin(runs).any())


def evaluate(df: pd.DataFrame, claim: Claim, superseded: frozenset[str] = frozenset()
             ) -> tuple[str, list[CheckResult]]:
    """The claim's verdict and its checks' results; a check that would compare heads of `superseded` runs with
    current ones is not measured."""
    results = []
    for ch in claim.checks:
        if superseded and _mixed(df, ch.cells, superseded):
            results.append(CheckResult(ch, MIXED, ()))
        else:
            noise = {NOISE: head_seed_noise(df, ch.noise_cells)} if ch.noise_cells else {}
            results.append(judge(ch, [ch.margin(v | noise) for v in replicates(df, ch.cells)]))
    return combine(results), results


# ---- the six claims ----

def _diff(label: str, a: Cell, b: Cell, threshold: float = 0.0) -> Check:
    """a − b > threshold."""
    return Check(label, (a, b), lambda v: v[a] - v[b] - threshold)


def _tap(blocks: int, i: int) -> Cell:
    return ("table1", ROW[f"rotnet{blocks}"], f"ConvB{i}", "test_acc")


def _claim1() -> Claim:
    checks = []
    for b in (3, 4, 5):
        checks += [_diff(f"RotNet-{b}: conv2 − conv{i}", _tap(b, 2), _tap(b, i)) for i in range(1, b + 1) if i != 2]
        checks += [_diff(f"RotNet-{b}: conv{i} − conv{i + 1}", _tap(b, i), _tap(b, i + 1)) for i in range(3, b)]
    return Claim(1, "In every RotNet, conv2 gives the best object accuracy; accuracy falls after block 2", tuple(checks))


def _claim2() -> Claim:
    return Claim(2, "Deeper RotNets improve the early blocks' features (after block 1)", (
        _diff("conv2: 4 − 3 blocks", _tap(4, 2), _tap(3, 2)), _diff("conv2: 5 − 4 blocks", _tap(5, 2), _tap(4, 2)),
        _diff("conv3: 5 − 4 blocks", _tap(5, 3), _tap(4, 3))))


def _rot(key: str) -> Cell:
    return ("table2", ROW[key], "ConvB2", "test_acc")


def _claim3() -> Claim:
    r4, r8, r0, r9 = _rot("rot4"), _rot("rot8"), _rot("rot0_180"), _rot("rot90_270")
    return Claim(3, "4 rotations > 8 rotations > 2 rotations; (0,180) > (90,270)", (
        _diff("4 − 8 rotations", r4, r8), _diff("8 − 0/180", r8, r0), _diff("8 − 90/270", r8, r9),
        _diff("0/180 − 90/270", r0, r9)))


# "within about 1.6 points": the paper's own gap is 92.80 − 91.16 = 1.64, which a threshold of 1.6 would fail. We
# read "about 1.6" as "under 2 points" (1.6 rounded up to the next whole point): the paper's numbers pass with 0.36
# to spare, and a gap of 2 points or more, a quarter larger than the paper's, does not.
CLAIM4_GAP = 2.0


def _claim4() -> Claim:
    sup, conv, ft = (("table3", ROW[k], "accuracy", "test_acc") for k in ("supervised", "rotnet_conv", "rotnet_conv_ft"))
    return Claim(4, f"RotNet + conv comes within about 1.6 points of the supervised NIN (checked: under {CLAIM4_GAP:g}); "
                    "fine-tuning narrows the gap", (
        Check(f"{CLAIM4_GAP} − (supervised − RotNet + conv)", (sup, conv), lambda v: CLAIM4_GAP - (v[sup] - v[conv])),
        _diff("fine-tuned − frozen RotNet + conv", ft, conv)))


def _claim5(epochs: list[int]) -> Claim:
    obj = [("fig5a", ROW["object_curve"], str(e), "test_acc") for e in epochs]
    rot = [("fig5a", ROW["rotation_curve"], str(e), "rotation_acc") for e in epochs]
    cells = tuple(obj + rot)

    def r(v: Values) -> float:
        o, q = [v[c] for c in obj], [v[c] for c in rot]
        return float(np.corrcoef(o, q)[0, 1]) if np.std(o) > 0 and np.std(q) > 0 else math.nan

    o1, o2, r1, r2 = obj[-2], obj[-1], rot[-2], rot[-1]
    return Claim(5, "Object accuracy rises with rotation accuracy over pretext training, and plateaus while rotation "
                    "accuracy still rises", (
        Check("Pearson r (object, rotation) over the snapshots", cells, r, correlation=True),
        _diff(f"object accuracy: epoch {epochs[-1]} − epoch {epochs[0]}", obj[-1], obj[0]),
        # the plateau, judged against measured noise: over the last interval the object accuracy moves by less than
        # twice its head-seed standard deviation (pooled over the snapshots), while the rotation accuracy still rises
        Check(f"plateau {epochs[-2]}→{epochs[-1]}: 2 x head-seed sd − abs(object gain)", (o1, o2), lambda v:
              2 * v[NOISE] - abs(v[o2] - v[o1]), noise_cells=tuple(obj)),
        _diff(f"rotation gain {epochs[-2]}→{epochs[-1]}", r2, r1)))


def _claim6(ks: list[int]) -> Claim:
    def cell(key: str, k: int) -> Cell:
        return ("fig5b", ROW[key], str(k), "test_acc")
    return Claim(6, "With fewer than 1000 labels per class, RotNet + conv beats the supervised NIN", tuple(
        _diff(f"K={k}: RotNet + conv − supervised", cell("semi_rotnet", k), cell("semi_supervised", k))
        for k in ks if k < 1000))


def paper_claims(snapshot_epochs: list[int], semi_ks: list[int]) -> list[Claim]:
    """The six claims for a profile's Fig. 5(a) snapshots and Fig. 5(b) label counts."""
    return [_claim1(), _claim2(), _claim3(), _claim4(), _claim5(snapshot_epochs), _claim6(semi_ks)]
